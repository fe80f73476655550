/* cpu_gemm_small.h — backends layer: matrix products with few rows (batched
 * decode steps), reading the weight matrix in its stored [N, K] row-major
 * layout with no packing copy.
 *
 * y [M, n] = x [M, K] . W [n, K]^T, or y += that when beta is 1. Each output
 * element is a dot product whose summation order depends only on K and on
 * the instruction set chosen (lanes of 16 (AVX-512), 8 (AVX2) or 1, then a
 * fixed reduction tree), never on M, the thread count or the position of
 * the row in the batch. */
#ifndef SIMA_BACKENDS_CPU_GEMM_SMALL_H
#define SIMA_BACKENDS_CPU_GEMM_SMALL_H

#include <stdint.h>

/* Rows up to which the small-row kernel is used (above it: sgemm). */
#define CPU_GEMM_SMALL_MAX_M 64

typedef void (*cpu_gemm_small_fn)(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t M,
                                  const float *W, int64_t K, int64_t n, float beta);

typedef enum { CPU_ISA_SCALAR, CPU_ISA_AVX2, CPU_ISA_AVX512, CPU_ISA_BEST } cpu_isa;

/* The kernel for an instruction set, or NULL when this CPU lacks it;
 * CPU_ISA_BEST: the fastest one this CPU runs. */
cpu_gemm_small_fn cpu_gemm_small_kernel(cpu_isa isa);

#endif
