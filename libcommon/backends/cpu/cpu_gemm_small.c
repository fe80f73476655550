/* cpu_gemm_small.c — backends layer: small-row matrix products y = x W^T
 * on the stored weight layout (see cpu_gemm_small.h).
 *
 * Tiles of NR output columns (weight rows) × V vectors of activation rows:
 * for each k, V loads of xT[k] and NR broadcasts of W[j][k] feed NR·V fused
 * multiply-adds into accumulators that stay in registers for the whole of
 * K; the tile is then stored transposed into y. Rows past n alias the
 * tile's first row: computed and discarded, so one loop shape serves every
 * n. */
#include "cpu_gemm_small.h"

#include "err.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* the tile loops must unroll so that the accumulators live in registers */
#define UNROLL _Pragma("GCC unroll 32")

int64_t cpu_gemm_small_lanes(int64_t M)
{
    return (M + 15) / 16 * 16;
}

float *cpu_gemm_small_alloc_x(int64_t M, int64_t K)
{
    /* K + 1 rows: room for the paired layout's padded last pair */
    size_t bytes = sizeof(float) * (size_t)(cpu_gemm_small_lanes(M) * (K + 1));
    float *p = aligned_alloc(64, bytes); /* bytes: a multiple of 64 */
    if (!p) DIE("out of memory (%zu bytes for transposed activations)", bytes);
    return p;
}

void cpu_gemm_small_pack_x(float *xT, const float *x, int64_t ldx, int64_t M, int64_t K)
{
    int64_t Mp = cpu_gemm_small_lanes(M);
    if (M <= CPU_GEMM_SMALL_PAIRED_M) {
        /* row kp: lane 2m + e = x[m][2kp + e]; zero past M and past K */
        for (int64_t kp = 0; kp < (K + 1) / 2; kp++) {
            float *row = xT + kp * Mp;
            for (int64_t l = 0; l < Mp; l++) {
                int64_t m = l / 2, k = 2 * kp + l % 2;
                row[l] = m < M && k < K ? x[m * ldx + k] : 0.0f;
            }
        }
        return;
    }
    for (int64_t k = 0; k < K; k++) {
        float *row = xT + k * Mp;
        for (int64_t m = 0; m < M; m++) row[m] = x[m * ldx + k];
        for (int64_t m = M; m < Mp; m++) row[m] = 0.0f;
    }
}

void cpu_gemm_small(cpu_gemm_small_fn fn, float *y, int64_t ldy, const float *x, int64_t ldx,
                    int64_t M, const float *W, int64_t K, int64_t n, float beta)
{
    float *xT = cpu_gemm_small_alloc_x(M, K);
    cpu_gemm_small_pack_x(xT, x, ldx, M, K);
    fn(y, ldy, xT, cpu_gemm_small_lanes(M), M, W, K, n, beta);
    free(xT);
}

/* y[m, j] = s or y[m, j] += s */
static inline void gemm_small_put(float *y, float s, float beta)
{
    *y = beta != 0.0f ? *y + s : s;
}

/* A finished tile acc [NR][lanes] (lane m: activation row m0 + m) into y;
 * paired layout: row m is lanes 2m (even k) + 2m + 1 (odd k). */
static inline void gemm_small_store(float *y, int64_t ldy, const float *acc, int nr, int lanes,
                                    int64_t j0, int64_t n, int64_t m0, int64_t M, float beta)
{
    int paired = M <= CPU_GEMM_SMALL_PAIRED_M, rows = paired ? lanes / 2 : lanes;
    for (int i = 0; i < nr && j0 + i < n; i++)
        for (int m = 0; m < rows && m0 + m < M; m++) {
            const float *a = acc + i * lanes;
            float s = paired ? a[2 * m] + a[2 * m + 1] : a[m];
            gemm_small_put(y + (m0 + m) * ldy + j0 + i, s, beta);
        }
}

/* W[k], W[k + 1] as one 64-bit value, for a broadcast of the pair */
static inline double gemm_small_wpair(const float *w)
{
    double d;
    memcpy(&d, w, sizeof d);
    return d;
}

/* ---- scalar: the fallback for CPUs without AVX2 ---------------------- */

static void gemm_small_scalar(float *y, int64_t ldy, const float *xT, int64_t Mp, int64_t M,
                              const float *W, int64_t K, int64_t n, float beta)
{
    for (int64_t j = 0; j < n; j++)
        for (int64_t m = 0; m < M; m++) {
            const float *w = W + j * K;
            float s = 0.0f;
            if (M <= CPU_GEMM_SMALL_PAIRED_M) {
                float odd = 0.0f;
                for (int64_t k = 0; k < K; k++)
                    if (k % 2) odd += xT[k / 2 * Mp + 2 * m + 1] * w[k];
                    else s += xT[k / 2 * Mp + 2 * m] * w[k];
                s += odd;
            } else {
                for (int64_t k = 0; k < K; k++) s += xT[k * Mp + m] * w[k];
            }
            gemm_small_put(y + m * ldy + j, s, beta);
        }
}

/* ---- AVX-512: 16 lanes; V vectors (16 V activation rows) × NR columns,
 * NR·V = 24 accumulators of the 32 vector registers ------------------- */

#define A5_TILE(V, NR)                                                                          \
    __attribute__((target("avx512f"))) static void a5_tile_##V(                                 \
        float *y, int64_t ldy, const float *xT, int64_t Mp, int64_t m0, int64_t M,              \
        const float *W, int64_t K, int64_t j0, int64_t n, float beta)                           \
    {                                                                                           \
        const float *w[NR];                                                                     \
        UNROLL for (int i = 0; i < NR; i++) w[i] = W + (j0 + i < n ? j0 + i : j0) * K;          \
        __m512 acc[NR][V];                                                                      \
        UNROLL for (int i = 0; i < NR; i++) UNROLL for (int v = 0; v < V; v++) acc[i][v] =      \
            _mm512_setzero_ps();                                                                \
        const float *xk = xT + m0;                                                              \
        for (int64_t k = 0; k < K; k++, xk += Mp) {                                             \
            __m512 xv[V];                                                                       \
            UNROLL for (int v = 0; v < V; v++) xv[v] = _mm512_loadu_ps(xk + 16 * v);            \
            UNROLL for (int i = 0; i < NR; i++)                                                 \
            {                                                                                   \
                __m512 wb = _mm512_set1_ps(w[i][k]);                                            \
                UNROLL for (int v = 0; v < V; v++) acc[i][v] =                                  \
                    _mm512_fmadd_ps(wb, xv[v], acc[i][v]);                                      \
            }                                                                                   \
        }                                                                                       \
        float out[NR * V * 16];                                                                 \
        UNROLL for (int i = 0; i < NR; i++) UNROLL for (int v = 0; v < V; v++)                  \
            _mm512_storeu_ps(out + (i * V + v) * 16, acc[i][v]);                                \
        gemm_small_store(y, ldy, out, NR, V * 16, j0, n, m0, M, beta);                          \
    }

/* Paired layout (M <= 8): 8 rows × 2 k per vector, 24 columns. */
__attribute__((target("avx512f"))) static void a5_tile_pair(float *y, int64_t ldy,
                                                           const float *xT, int64_t M,
                                                           const float *W, int64_t K, int64_t j0,
                                                           int64_t n, float beta)
{
    enum { NR = 24 };
    const float *w[NR];
    UNROLL for (int i = 0; i < NR; i++) w[i] = W + (j0 + i < n ? j0 + i : j0) * K;
    __m512 acc[NR];
    UNROLL for (int i = 0; i < NR; i++) acc[i] = _mm512_setzero_ps();
    int64_t kp = 0;
    for (; 2 * kp + 1 < K; kp++) {
        __m512 xv = _mm512_loadu_ps(xT + kp * 16);
        UNROLL for (int i = 0; i < NR; i++)
        {
            __m512 wb = _mm512_castpd_ps(_mm512_set1_pd(gemm_small_wpair(w[i] + 2 * kp)));
            acc[i] = _mm512_fmadd_ps(wb, xv, acc[i]);
        }
    }
    if (2 * kp < K) { /* odd K: the last k alone; its odd lanes of xT are zero */
        __m512 xv = _mm512_loadu_ps(xT + kp * 16);
        UNROLL for (int i = 0; i < NR; i++) acc[i] =
            _mm512_fmadd_ps(_mm512_set1_ps(w[i][2 * kp]), xv, acc[i]);
    }
    float out[NR * 16];
    UNROLL for (int i = 0; i < NR; i++) _mm512_storeu_ps(out + i * 16, acc[i]);
    gemm_small_store(y, ldy, out, NR, 16, j0, n, 0, M, beta);
}

A5_TILE(1, 24)
A5_TILE(2, 12)
A5_TILE(3, 8)
A5_TILE(4, 6)

__attribute__((target("avx512f"))) static void gemm_small_avx512(float *y, int64_t ldy,
                                                                const float *xT, int64_t Mp,
                                                                int64_t M, const float *W,
                                                                int64_t K, int64_t n, float beta)
{
    static const int nr[5] = {0, 24, 12, 8, 6};
    if (M <= CPU_GEMM_SMALL_PAIRED_M) {
        for (int64_t j0 = 0; j0 < n; j0 += 24) a5_tile_pair(y, ldy, xT, M, W, K, j0, n, beta);
        return;
    }
    for (int64_t m0 = 0; m0 < Mp; m0 += 64) {
        int V = (int)((Mp - m0) / 16 < 4 ? (Mp - m0) / 16 : 4);
        for (int64_t j0 = 0; j0 < n; j0 += nr[V]) switch (V) {
            case 1: a5_tile_1(y, ldy, xT, Mp, m0, M, W, K, j0, n, beta); break;
            case 2: a5_tile_2(y, ldy, xT, Mp, m0, M, W, K, j0, n, beta); break;
            case 3: a5_tile_3(y, ldy, xT, Mp, m0, M, W, K, j0, n, beta); break;
            default: a5_tile_4(y, ldy, xT, Mp, m0, M, W, K, j0, n, beta); break;
            }
    }
}

/* ---- AVX2 + FMA: 8 lanes; 2 vectors (16 activation rows) × 6 columns,
 * 12 accumulators of the 16 vector registers --------------------------- */

#define A2_NR 6

__attribute__((target("avx2,fma"))) static void a2_tile(float *y, int64_t ldy, const float *xT,
                                                        int64_t Mp, int64_t m0, int64_t M,
                                                        const float *W, int64_t K, int64_t j0,
                                                        int64_t n, float beta)
{
    const float *w[A2_NR];
    UNROLL for (int i = 0; i < A2_NR; i++) w[i] = W + (j0 + i < n ? j0 + i : j0) * K;
    __m256 acc[A2_NR][2];
    UNROLL for (int i = 0; i < A2_NR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    const float *xk = xT + m0;
    for (int64_t k = 0; k < K; k++, xk += Mp) {
        __m256 x0 = _mm256_loadu_ps(xk), x1 = _mm256_loadu_ps(xk + 8);
        UNROLL for (int i = 0; i < A2_NR; i++)
        {
            __m256 wb = _mm256_broadcast_ss(w[i] + k);
            acc[i][0] = _mm256_fmadd_ps(wb, x0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(wb, x1, acc[i][1]);
        }
    }
    float out[A2_NR * 16];
    UNROLL for (int i = 0; i < A2_NR; i++)
    {
        _mm256_storeu_ps(out + i * 16, acc[i][0]);
        _mm256_storeu_ps(out + i * 16 + 8, acc[i][1]);
    }
    gemm_small_store(y, ldy, out, A2_NR, 16, j0, n, m0, M, beta);
}

/* Paired layout (M <= 8): two vectors of 4 rows × 2 k, 6 columns. */
__attribute__((target("avx2,fma"))) static void a2_tile_pair(float *y, int64_t ldy,
                                                             const float *xT, int64_t M,
                                                             const float *W, int64_t K,
                                                             int64_t j0, int64_t n, float beta)
{
    const float *w[A2_NR];
    UNROLL for (int i = 0; i < A2_NR; i++) w[i] = W + (j0 + i < n ? j0 + i : j0) * K;
    __m256 acc[A2_NR][2];
    UNROLL for (int i = 0; i < A2_NR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    int64_t kp = 0;
    for (; 2 * kp + 1 < K; kp++) {
        __m256 x0 = _mm256_loadu_ps(xT + kp * 16), x1 = _mm256_loadu_ps(xT + kp * 16 + 8);
        UNROLL for (int i = 0; i < A2_NR; i++)
        {
            __m256 wb = _mm256_castpd_ps(_mm256_set1_pd(gemm_small_wpair(w[i] + 2 * kp)));
            acc[i][0] = _mm256_fmadd_ps(wb, x0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(wb, x1, acc[i][1]);
        }
    }
    if (2 * kp < K) { /* odd K: the last k alone; its odd lanes of xT are zero */
        __m256 x0 = _mm256_loadu_ps(xT + kp * 16), x1 = _mm256_loadu_ps(xT + kp * 16 + 8);
        UNROLL for (int i = 0; i < A2_NR; i++)
        {
            __m256 wb = _mm256_set1_ps(w[i][2 * kp]);
            acc[i][0] = _mm256_fmadd_ps(wb, x0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(wb, x1, acc[i][1]);
        }
    }
    float out[A2_NR * 16];
    UNROLL for (int i = 0; i < A2_NR; i++)
    {
        _mm256_storeu_ps(out + i * 16, acc[i][0]);
        _mm256_storeu_ps(out + i * 16 + 8, acc[i][1]);
    }
    gemm_small_store(y, ldy, out, A2_NR, 16, j0, n, 0, M, beta);
}

__attribute__((target("avx2,fma"))) static void gemm_small_avx2(float *y, int64_t ldy,
                                                                const float *xT, int64_t Mp,
                                                                int64_t M, const float *W,
                                                                int64_t K, int64_t n, float beta)
{
    if (M <= CPU_GEMM_SMALL_PAIRED_M) {
        for (int64_t j0 = 0; j0 < n; j0 += A2_NR) a2_tile_pair(y, ldy, xT, M, W, K, j0, n, beta);
        return;
    }
    for (int64_t m0 = 0; m0 < Mp; m0 += 16)
        for (int64_t j0 = 0; j0 < n; j0 += A2_NR) a2_tile(y, ldy, xT, Mp, m0, M, W, K, j0, n, beta);
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
