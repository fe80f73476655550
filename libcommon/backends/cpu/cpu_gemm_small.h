/* cpu_gemm_small.h — backends layer: matrix products with few rows (batched
 * decode steps), reading the weight matrix in its stored [N, K] row-major
 * layout with no packing copy.
 *
 * y [M, n] = x [M, K] . W [n, K]^T, or y += that when beta is 1. The
 * activations are first transposed into xT [K, Mp] (Mp: M rounded up to 16,
 * zero lanes past M), a small copy made once per product; the kernel then
 * keeps a tile of output rows × activation rows in vector registers, with
 * the activation rows along the vector lanes, and for each k broadcasts one
 * weight per output row. Every output element is therefore one plain sum
 * over k = 0, 1, .., K-1 (fused multiply-adds in the vector kernels), the
 * same whatever M, the row's place in the batch or the thread count.
 *
 * Up to CPU_GEMM_SMALL_PAIRED_M rows, xT holds pairs of k instead (row kp:
 * lane 2m + e = x[m][2kp + e]) so that 8 rows still fill 16 lanes; an
 * element is then the sum over even k plus the sum over odd k, the same for
 * every M from 1 to 8 (and independent of the thread count). */
#ifndef SIMA_BACKENDS_CPU_GEMM_SMALL_H
#define SIMA_BACKENDS_CPU_GEMM_SMALL_H

#include <stdint.h>

/* Rows up to which the small-row kernel is used (above it: sgemm). */
#define CPU_GEMM_SMALL_MAX_M 64
/* Rows up to which xT uses the paired-k layout. */
#define CPU_GEMM_SMALL_PAIRED_M 8

/* y [M, n] (row stride ldy) = or += xT^T . W [n, K]^T, xT [K, Mp] from
 * cpu_gemm_small_pack_x. */
typedef void (*cpu_gemm_small_fn)(float *y, int64_t ldy, const float *xT, int64_t Mp, int64_t M,
                                  const float *W, int64_t K, int64_t n, float beta);

typedef enum { CPU_ISA_SCALAR, CPU_ISA_AVX2, CPU_ISA_AVX512, CPU_ISA_BEST } cpu_isa;

/* The kernel for an instruction set, or NULL when this CPU lacks it;
 * CPU_ISA_BEST: the fastest one this CPU runs. */
cpu_gemm_small_fn cpu_gemm_small_kernel(cpu_isa isa);

/* Lanes of the transposed activations: M rounded up to 16. */
int64_t cpu_gemm_small_lanes(int64_t M);

/* xT [K, Mp] = x [M, K]^T (row stride ldx), lanes M..Mp zero (M <= 8:
 * the paired layout, [ceil(K/2), 16]); xT from cpu_gemm_small_alloc_x
 * (64-byte aligned). */
void cpu_gemm_small_pack_x(float *xT, const float *x, int64_t ldx, int64_t M, int64_t K);
float *cpu_gemm_small_alloc_x(int64_t M, int64_t K);

/* The whole product with a temporary xT: y [M, n] = or += x . W^T. */
void cpu_gemm_small(cpu_gemm_small_fn fn, float *y, int64_t ldy, const float *x, int64_t ldx,
                    int64_t M, const float *W, int64_t K, int64_t n, float beta);

#endif
