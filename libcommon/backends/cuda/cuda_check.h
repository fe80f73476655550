/* cuda_check.h — backends layer (CUDA, private): checks around CUDA runtime,
 * cuBLAS and NCCL calls. A failure inside a backend operation cannot be
 * handed back (operations return nothing), so it ends the process with one
 * line naming the call, its file:line and the library's reason; mpirun then
 * stops the other ranks. */
#ifndef SIMA_BACKENDS_CUDA_CHECK_H
#define SIMA_BACKENDS_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

_Noreturn void cu_die_cuda(const char *file, int line, const char *call, cudaError_t e);
_Noreturn void cu_die_cublas(const char *file, int line, const char *call, cublasStatus_t s);

#define CU_CHECK(call)                                                         \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess) cu_die_cuda(__FILE__, __LINE__, #call, e_);     \
    } while (0)

#define CUBLAS_CHECK(call)                                                     \
    do {                                                                       \
        cublasStatus_t s_ = (call);                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS) cu_die_cublas(__FILE__, __LINE__, #call, s_); \
    } while (0)

/* After kernel launches: a launch error (bad configuration, no kernel image
 * for this GPU) surfaces here. */
#define CU_CHECK_LAUNCH() CU_CHECK(cudaGetLastError())

/* Returning checks for functions that can report an error: record
 * "call failed: reason" at file:line and return -1. */
int cu_error_at(const char *file, int line, const char *call, cudaError_t e);
#define CU_TRY(call)                                                           \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess) return cu_error_at(__FILE__, __LINE__, #call, e_); \
    } while (0)

#endif
