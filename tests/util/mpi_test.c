/* mpi_test.c — MPI start and end for unit tests, LeakSanitizer-aware. */
#include "mpi_test.h"
#include "check.h"
#include "err.h"
#include "libcheck.h"

#ifdef __SANITIZE_ADDRESS__
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#ifdef TEST_ASAN
#include <sanitizer/lsan_interface.h>
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "use_tls=0"; }
#define UNCHECKED_ALLOCS(call)                                                 \
    do {                                                                       \
        __lsan_disable();                                                      \
        call;                                                                  \
        __lsan_enable();                                                       \
    } while (0)
#else
#define UNCHECKED_ALLOCS(call) call
#endif

void test_mpi_init(int *argc, char ***argv) { UNCHECKED_ALLOCS(MUST_MPI(MPI_Init(argc, argv))); }

void test_mpi_finalize(void) { UNCHECKED_ALLOCS(MPI_Finalize()); }

int test_mpi_finish_ranks(void)
{
    int rank, counts[2] = {check_passed, check_failed};
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    check_passed = counts[0];
    check_failed = counts[1];
    int rc = rank == 0 ? check_finish() : (check_failed ? 1 : 0);
    MPI_Finalize();
    return rc;
}
