/* cpu_gemm_small.c — backends layer: small-row matrix products y = x W^T
 * on the stored weight layout (see cpu_gemm_small.h).
 *
 * Register tiles of NR weight rows × MR activation rows: each step over K
 * loads NR weight vectors and MR activation vectors and does NR·MR fused
 * multiply-adds into per-lane partial sums, so every weight row is read
 * from cache once per MR activation rows instead of once per row. Rows past
 * the end of a tile alias the tile's first row: computed and discarded, so
 * one loop shape serves every M and n. */
#include "cpu_gemm_small.h"

#include <immintrin.h>
#include <stddef.h>

/* y[m, j] = s or y[m, j] += s */
static inline void gemm_small_put(float *y, float s, float beta)
{
    *y = beta != 0.0f ? *y + s : s;
}

/* ---- scalar: the fallback for CPUs without AVX2 ---------------------- */

static void gemm_small_scalar(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t M,
                              const float *W, int64_t K, int64_t n, float beta)
{
    for (int64_t j = 0; j < n; j++)
        for (int64_t m = 0; m < M; m++) {
            const float *w = W + j * K, *xr = x + m * ldx;
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++) s += xr[k] * w[k];
            gemm_small_put(y + m * ldy + j, s, beta);
        }
}

/* ---- AVX2 + FMA: 8 lanes, tiles of 2 weight rows × 4 activation rows -- */

#define A2_NR 2
#define A2_MR 4

__attribute__((target("avx2,fma"))) static inline float a2_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); /* [4] */
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                        /* [2] */
    s = _mm_add_ss(s, _mm_movehdup_ps(s));                                         /* [1] */
    return _mm_cvtss_f32(s);
}

/* One tile: w[A2_NR] weight rows, xr[A2_MR] activation rows, all of K. */
__attribute__((target("avx2,fma"), always_inline)) static inline void a2_tile(__m256 acc[A2_NR][A2_MR],
                                                        const float *const w[A2_NR],
                                                        const float *const xr[A2_MR], int64_t K)
{
    static const int32_t lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    int64_t k_full = K & ~(int64_t)7, rest = K - k_full;
    for (int i = 0; i < A2_NR; i++)
        for (int r = 0; r < A2_MR; r++) acc[i][r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < k_full; k += 8) {
        __m256 wv[A2_NR];
        for (int i = 0; i < A2_NR; i++) wv[i] = _mm256_loadu_ps(w[i] + k);
        for (int r = 0; r < A2_MR; r++) {
            __m256 xv = _mm256_loadu_ps(xr[r] + k);
            for (int i = 0; i < A2_NR; i++) acc[i][r] = _mm256_fmadd_ps(wv[i], xv, acc[i][r]);
        }
    }
    if (rest) {
        /* masked loads read only the K - k_full valid floats */
        __m256i mask = _mm256_loadu_si256((const __m256i *)(lanes + 8 - rest));
        __m256 wv[A2_NR];
        for (int i = 0; i < A2_NR; i++) wv[i] = _mm256_maskload_ps(w[i] + k_full, mask);
        for (int r = 0; r < A2_MR; r++) {
            __m256 xv = _mm256_maskload_ps(xr[r] + k_full, mask);
            for (int i = 0; i < A2_NR; i++) acc[i][r] = _mm256_fmadd_ps(wv[i], xv, acc[i][r]);
        }
    }
}

__attribute__((target("avx2,fma"))) static void gemm_small_avx2(float *y, int64_t ldy,
                                                                const float *x, int64_t ldx,
                                                                int64_t M, const float *W,
                                                                int64_t K, int64_t n, float beta)
{
    for (int64_t j0 = 0; j0 < n; j0 += A2_NR) {
        const float *w[A2_NR];
        for (int i = 0; i < A2_NR; i++) w[i] = W + (j0 + i < n ? j0 + i : j0) * K;
        for (int64_t m0 = 0; m0 < M; m0 += A2_MR) {
            const float *xr[A2_MR];
            for (int r = 0; r < A2_MR; r++) xr[r] = x + (m0 + r < M ? m0 + r : m0) * ldx;
            __m256 acc[A2_NR][A2_MR];
            a2_tile(acc, w, xr, K);
            for (int i = 0; i < A2_NR && j0 + i < n; i++)
                for (int r = 0; r < A2_MR && m0 + r < M; r++)
                    gemm_small_put(y + (m0 + r) * ldy + j0 + i, a2_hsum(acc[i][r]), beta);
        }
    }
}

/* ---- AVX-512: 16 lanes, tiles of 3 weight rows × 8 activation rows ----
 * 24 accumulators + 3 weight vectors + 1 activation vector fit the 32
 * vector registers. */

#define A5_NR 3
#define A5_MR 8

__attribute__((target("avx512f"), always_inline)) static inline void a5_tile(__m512 acc[A5_NR][A5_MR],
                                                       const float *const w[A5_NR],
                                                       const float *const xr[A5_MR], int64_t K)
{
    int64_t k_full = K & ~(int64_t)15, rest = K - k_full;
    for (int i = 0; i < A5_NR; i++)
        for (int r = 0; r < A5_MR; r++) acc[i][r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < k_full; k += 16) {
        __m512 wv[A5_NR];
        for (int i = 0; i < A5_NR; i++) wv[i] = _mm512_loadu_ps(w[i] + k);
        for (int r = 0; r < A5_MR; r++) {
            __m512 xv = _mm512_loadu_ps(xr[r] + k);
            for (int i = 0; i < A5_NR; i++) acc[i][r] = _mm512_fmadd_ps(wv[i], xv, acc[i][r]);
        }
    }
    if (rest) {
        /* masked loads read only the K - k_full valid floats */
        __mmask16 mask = (__mmask16)((1u << rest) - 1u);
        __m512 wv[A5_NR];
        for (int i = 0; i < A5_NR; i++) wv[i] = _mm512_maskz_loadu_ps(mask, w[i] + k_full);
        for (int r = 0; r < A5_MR; r++) {
            __m512 xv = _mm512_maskz_loadu_ps(mask, xr[r] + k_full);
            for (int i = 0; i < A5_NR; i++) acc[i][r] = _mm512_fmadd_ps(wv[i], xv, acc[i][r]);
        }
    }
}

__attribute__((target("avx512f"))) static void gemm_small_avx512(float *y, int64_t ldy,
                                                                const float *x, int64_t ldx,
                                                                int64_t M, const float *W,
                                                                int64_t K, int64_t n, float beta)
{
    for (int64_t m0 = 0; m0 < M; m0 += A5_MR) {
        const float *xr[A5_MR];
        for (int r = 0; r < A5_MR; r++) xr[r] = x + (m0 + r < M ? m0 + r : m0) * ldx;
        for (int64_t j0 = 0; j0 < n; j0 += A5_NR) {
            const float *w[A5_NR];
            for (int i = 0; i < A5_NR; i++) w[i] = W + (j0 + i < n ? j0 + i : j0) * K;
            __m512 acc[A5_NR][A5_MR];
            a5_tile(acc, w, xr, K);
            for (int i = 0; i < A5_NR && j0 + i < n; i++)
                for (int r = 0; r < A5_MR && m0 + r < M; r++)
                    gemm_small_put(y + (m0 + r) * ldy + j0 + i, _mm512_reduce_add_ps(acc[i][r]),
                                   beta);
        }
    }
}

cpu_gemm_small_fn cpu_gemm_small_kernel(cpu_isa isa)
{
    int has512 = __builtin_cpu_supports("avx512f");
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    switch (isa) {
    case CPU_ISA_SCALAR: return gemm_small_scalar;
    case CPU_ISA_AVX2: return has2 ? gemm_small_avx2 : NULL;
    case CPU_ISA_AVX512: return has512 ? gemm_small_avx512 : NULL;
    case CPU_ISA_BEST: break;
    }
    return has512 ? gemm_small_avx512 : has2 ? gemm_small_avx2 : gemm_small_scalar;
}
