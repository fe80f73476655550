/* libcheck.h — base layer: checks around MPI calls.
 *
 * CHECK_MPI(call) records "MPI_Xxx failed: <MPI's error string>" at the
 * caller's file:line and returns -1 from the enclosing function;
 * MUST_MPI(call) prints the same and exits (for calls no caller can recover
 * from, like MPI_Init). HDF5 checks live in io/h5util.h, CUDA checks with the
 * CUDA backend.
 */
#ifndef SIMA_BASE_LIBCHECK_H
#define SIMA_BASE_LIBCHECK_H

#include <mpi.h>

int mpi_error_at(const char *file, int line, const char *call, int code);

#define CHECK_MPI(call)                                                        \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != MPI_SUCCESS) return mpi_error_at(__FILE__, __LINE__, #call, rc_); \
    } while (0)

#define MUST_MPI(call)                                                         \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != MPI_SUCCESS) {                                              \
            mpi_error_at(__FILE__, __LINE__, #call, rc_);                      \
            err_exit();                                                        \
        }                                                                      \
    } while (0)

#endif
