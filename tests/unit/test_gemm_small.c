/* test_gemm_small.c — the CPU backend's small-row matrix product kernel
 * (batched decode), every instruction set this CPU runs (scalar, AVX2,
 * AVX-512), against a double-precision product:
 *  - M 1..70 rows on shapes whose N and K are not multiples of 16 (nor of
 *    8), weights of float32 values and of values rounded to float16 and
 *    bfloat16 (what a checkpoint stored in those types loads as), within
 *    the worst-case float32 summation bound;
 *  - row strides wider than the row, and accumulation (y += x W^T);
 *  - a row's result is the same bits whatever M (1..8, 9..70) and its
 *    place in the batch;
 *  - through be->linear: the same bits with 1 and 3 threads. */
#include "backend.h"
#include "check.h"
#include "cpu/cpu_gemm_small.h"
#include "err.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum { W_F32, W_F16, W_BF16 } w_kind;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* uniform in [-1, 1) */
static float rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) % 20000) / 10000.0f - 1.0f;
}

/* v rounded to the nearest bfloat16 (8 significant bits), ties to even. */
static float round_bf16(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&v, &u, 4);
    return v;
}

/* v rounded to 11 significant bits (float16's significand; the values here
 * are far inside float16's exponent range). */
static float round_f16(float v)
{
    int e;
    double f = frexp((double)v, &e); /* v = f 2^e, 0.5 <= |f| < 1 */
    return (float)ldexp(nearbyint(ldexp(f, 11)), e - 11);
}

static float *rnd_weights(int64_t n, w_kind kind)
{
    float *w = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        float v = rnd();
        w[i] = kind == W_BF16 ? round_bf16(v) : kind == W_F16 ? round_f16(v) : v;
    }
    return w;
}

static const char *isa_name(cpu_isa isa)
{
    return isa == CPU_ISA_SCALAR ? "scalar" : isa == CPU_ISA_AVX2 ? "avx2" : "avx512";
}

/* Largest |y - exact| / bound over y [M, N] (ld ldy), exact in double; the
 * bound is the worst case of any float32 summation order: K u sum|x w|
 * (u = 2^-24), doubled for the rounding of the products. */
static double worst_ratio(const float *y, int64_t ldy, const float *y0, const float *x,
                          int64_t ldx, const float *W, int64_t M, int64_t N, int64_t K, float beta)
{
    double worst = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t j = 0; j < N; j++) {
            double s = beta != 0.0f ? y0[m * ldy + j] : 0.0, a = 0;
            for (int64_t k = 0; k < K; k++) {
                s += (double)x[m * ldx + k] * W[j * K + k];
                a += fabs((double)x[m * ldx + k] * W[j * K + k]);
            }
            double bound = 2.0 * (double)(K + 1) * (FLT_EPSILON / 2) * (a + fabs(s)) + 1e-30;
            double r = fabs(y[m * ldy + j] - s) / bound;
            if (r > worst) worst = r;
        }
    return worst;
}

/* One product on fresh random data, checked against the double product. */
static void check_product(cpu_gemm_small_fn fn, const char *isa, int64_t M, int64_t N, int64_t K,
                          int64_t pad, w_kind kind, float beta)
{
    int64_t ldx = K + pad, ldy = N + pad;
    float *x = rnd_weights(M * ldx, W_F32), *W = rnd_weights(N * K, kind);
    float *y = rnd_weights(M * ldy, W_F32), *y0 = malloc(sizeof(float) * (size_t)(M * ldy));
    memcpy(y0, y, sizeof(float) * (size_t)(M * ldy));
    cpu_gemm_small(fn, y, ldy, x, ldx, M, W, K, N, beta);
    double r = worst_ratio(y, ldy, y0, x, ldx, W, M, N, K, beta);
    /* the pad columns of y are untouched */
    int pad_kept = 1;
    for (int64_t m = 0; m < M; m++)
        for (int64_t j = N; j < ldy; j++) pad_kept &= y[m * ldy + j] == y0[m * ldy + j];
    CHECK_MSG(r <= 1.0 && pad_kept,
              "%s M %lld N %lld K %lld pad %lld w %d beta %g: error %.3g of the bound, pad %s",
              isa, (long long)M, (long long)N, (long long)K, (long long)pad, (int)kind,
              (double)beta, r, pad_kept ? "kept" : "overwritten");
    free(x), free(W), free(y), free(y0);
}

/* M 1..70 on odd shapes, the three weight kinds, both beta. */
static void test_against_double(cpu_gemm_small_fn fn, const char *isa)
{
    static const int64_t shapes[][2] = {{1, 1}, {5, 7}, {17, 33}, {3, 259}, {37, 100}};
    for (int s = 0; s < 5; s++)
        for (int64_t M = 1; M <= 70; M++) {
            w_kind kind = (w_kind)(M % 3);
            check_product(fn, isa, M, shapes[s][0], shapes[s][1], 0, kind, 0.0f);
        }
    check_product(fn, isa, 11, 29, 45, 3, W_F32, 1.0f);
    check_product(fn, isa, 64, 256, 512, 0, W_BF16, 0.0f);
    check_product(fn, isa, 9, 19, 1376, 5, W_F16, 1.0f);
}

/* A row's bits do not depend on M or on where it sits in the batch: row r
 * of a 70-row (a 9-row) product equals the same row in a 9-row (alone),
 * within each layout (1..8 rows: paired k, 9 and more: plain). */
static int rows_match(cpu_gemm_small_fn fn, const float *x, const float *W, int64_t K, int64_t N,
                      int64_t M_big, int64_t M_small)
{
    float *y = calloc((size_t)(M_big * N), sizeof(float));
    float *y1 = calloc((size_t)(M_small * N), sizeof(float));
    cpu_gemm_small(fn, y, N, x, K, M_big, W, K, N, 0.0f);
    int same = 1;
    for (int64_t r = 0; r + M_small <= M_big; r++) {
        cpu_gemm_small(fn, y1, N, x + r * K, K, M_small, W, K, N, 0.0f);
        same &= memcmp(y1, y + r * N, sizeof(float) * (size_t)(M_small * N)) == 0;
    }
    free(y), free(y1);
    return same;
}

static void test_row_independence(cpu_gemm_small_fn fn, const char *isa)
{
    int64_t N = 23, K = 71;
    float *x = rnd_weights(70 * K, W_F32), *W = rnd_weights(N * K, W_F32);
    CHECK_MSG(rows_match(fn, x, W, K, N, 70, 9), "%s: rows of 9 differ from the same rows of 70",
              isa);
    CHECK_MSG(rows_match(fn, x, W, K, N, 8, 1), "%s: a row alone differs from it in 8 rows", isa);
    CHECK_MSG(rows_match(fn, x, W, K, N, 8, 3), "%s: rows of 3 differ from the same rows of 8",
              isa);
    free(x), free(W);
}

/* be->linear at decode-sized M: same bits with 1 and 3 threads, close to
 * the double product (columns span several of the backend's blocks). */
static float *run_linear(int n_threads, const float *x, const float *W, int64_t M, int64_t N,
                         int64_t K)
{
    be_backend *be = be_cpu_new(n_threads);
    be_weight w;
    CHECK_OK(be->weight_new(be, W, N, K, &w));
    be_mat bx = be->mat_new(be, M, K), by = be->mat_new(be, M, N);
    be->upload(be, bx, x);
    be->linear(be, by, bx, &w, NULL, false);
    float *y = malloc(sizeof(float) * (size_t)(M * N));
    be->download(be, by, y);
    be->mat_free(be, &bx), be->mat_free(be, &by);
    be->weight_free(be, &w);
    be->destroy(be);
    return y;
}

static void test_linear_threads(void)
{
    int64_t M = 32, N = 600, K = 77;
    float *x = rnd_weights(M * K, W_F32), *W = rnd_weights(N * K, W_F32);
    float *y1 = run_linear(1, x, W, M, N, K), *y3 = run_linear(3, x, W, M, N, K);
    CHECK_MSG(memcmp(y1, y3, sizeof(float) * (size_t)(M * N)) == 0,
              "linear at 32 rows differs between 1 and 3 threads");
    CHECK(worst_ratio(y1, N, NULL, x, K, W, M, N, K, 0.0f) <= 1.0);
    free(x), free(W), free(y1), free(y3);
}

int main(void)
{
    for (cpu_isa isa = CPU_ISA_SCALAR; isa <= CPU_ISA_AVX512; isa++) {
        cpu_gemm_small_fn fn = cpu_gemm_small_kernel(isa);
        if (!fn) {
            printf("%s: not supported by this CPU, not tested\n", isa_name(isa));
            continue;
        }
        test_against_double(fn, isa_name(isa));
        test_row_independence(fn, isa_name(isa));
    }
    CHECK(cpu_gemm_small_kernel(CPU_ISA_BEST) != NULL);
    test_linear_threads();
    return check_finish();
}
