/* mpi_test.h — MPI start and end for single-process unit tests that run
 * under LeakSanitizer. Open MPI leaks at MPI_Finalize from components it has
 * unloaded (unnamed in leak reports, so not suppressible): its own start-up
 * and shut-down allocations are not checked (ours still are), and the
 * thread-local storage of those unloaded components, which crashes the
 * leak scan, is not scanned. */
#ifndef SIMA_TEST_MPI_TEST_H
#define SIMA_TEST_MPI_TEST_H

void test_mpi_init(int *argc, char ***argv);
void test_mpi_finalize(void);
/* The end of a test run under mpirun: the check counts of every rank
 * summed, printed by rank 0, MPI finalized; main's exit status. */
int test_mpi_finish_ranks(void);

#endif
