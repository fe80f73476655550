/* test_mpi_base.c — base layer under MPI: failed MPI calls give readable,
 * located errors; rank-tagged error records. Every rank checks; the counts
 * are summed so rank 0's "N passed, N failed" line covers all ranks. */
#include "check.h"
#include "mpi_test.h"
#include "err.h"
#include "libcheck.h"

#include <string.h>

/* Provoke an MPI error (a negative count) with errors returned, not fatal. */
static int send_negative_count(void)
{
    int x = 0;
    CHECK_MPI(MPI_Bcast(&x, -1, MPI_INT, 0, MPI_COMM_WORLD));
    return 0;
}

static int allreduce_sum(int *v)
{
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    return 0;
}

int main(int argc, char **argv)
{
    MUST_MPI(MPI_Init(&argc, &argv));
    int rank, size;
    MUST_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MUST_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
    err_set_program("test_mpi_base");
    err_set_rank(rank);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);

    err_clear();
    CHECK(send_negative_count() == -1);
    CHECK_MSG(strstr(err_msg(), "MPI_Bcast failed: ") != NULL, "got \"%s\"", err_msg());
    CHECK_MSG(strlen(err_msg()) > strlen("MPI_Bcast failed: "), "no reason in \"%s\"", err_msg());
    CHECK(strstr(err_where(), "test_mpi_base.c:") != NULL);
    CHECK_EQ(err_rank(), rank);

    int v = rank + 1;
    CHECK_OK(allreduce_sum(&v));
    CHECK_EQ(v, size * (size + 1) / 2);

    return test_mpi_finish_ranks();
}
