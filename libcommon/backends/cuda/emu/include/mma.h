/* mma.h (CPU emulation) — backends layer, test support: the warp matrix
 * operations (nvcuda::wmma) the kernels use, 16x16x16 tiles of bf16/f16
 * with float accumulators. Every lane of a warp holds and computes the
 * whole tile here (the GPU spreads it over the lanes): kernels must use
 * fragments only through these calls, never element by element. A load is
 * collective as on the GPU: every lane has loaded before any goes on (so a
 * lane cannot store into the tile another lane is about to load). */
#ifndef SIMA_CUEMU_MMA_H
#define SIMA_CUEMU_MMA_H

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuemu.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

static inline float wmma_widen(__nv_bfloat16 x) { return __bfloat162float(x); }
static inline float wmma_widen(__half x) { return __half2float(x); }
static inline float wmma_widen(float x) { return x; }

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment;

/* A [M, K] and B [K, N] tiles as floats (row-major), C [M, N]. */
template <int M, int N, int K, typename T, typename Layout>
struct fragment<matrix_a, M, N, K, T, Layout> {
    float v[M * K];
};
template <int M, int N, int K, typename T, typename Layout>
struct fragment<matrix_b, M, N, K, T, Layout> {
    float v[K * N];
};
template <int M, int N, int K, typename T> struct fragment<accumulator, M, N, K, T, void> {
    float v[M * N];
};

/* rows x cols floats from p (leading dimension ldm), read row-major or,
 * with by_col, transposed; a warp-collective load as the real one is. */
template <typename T>
static inline void wmma_load_tile(float *v, int rows, int cols, const T *p, unsigned ldm,
                                  bool by_col)
{
    __syncwarp();
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            v[i * cols + j] = wmma_widen(by_col ? p[j * ldm + i] : p[i * ldm + j]);
    __syncwarp();
}
template <int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<matrix_a, M, N, K, T, row_major> &f, const T *p,
                                    unsigned ldm)
{
    wmma_load_tile(f.v, M, K, p, ldm, false);
}
template <int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<matrix_a, M, N, K, T, col_major> &f, const T *p,
                                    unsigned ldm)
{
    wmma_load_tile(f.v, M, K, p, ldm, true);
}
template <int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<matrix_b, M, N, K, T, row_major> &f, const T *p,
                                    unsigned ldm)
{
    wmma_load_tile(f.v, K, N, p, ldm, false);
}
template <int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<matrix_b, M, N, K, T, col_major> &f, const T *p,
                                    unsigned ldm)
{
    wmma_load_tile(f.v, K, N, p, ldm, true);
}
template <int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<accumulator, M, N, K, T> &f, const T *p, unsigned ldm,
                                    layout_t layout)
{
    wmma_load_tile(f.v, M, N, p, ldm, layout != mem_row_major);
}
template <int M, int N, int K, typename T>
static inline void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T> &f, unsigned ldm,
                                     layout_t layout)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            (layout == mem_row_major ? p[i * ldm + j] : p[j * ldm + i]) = f.v[i * N + j];
}
template <typename F, typename V> static inline void fill_fragment(F &f, V value)
{
    for (auto &x : f.v) x = (float)value;
}
template <int M, int N, int K, typename TA, typename LA, typename LB, typename TC>
static inline void mma_sync(fragment<accumulator, M, N, K, TC> &d,
                            const fragment<matrix_a, M, N, K, TA, LA> &a,
                            const fragment<matrix_b, M, N, K, TA, LB> &b,
                            const fragment<accumulator, M, N, K, TC> &c)
{
    float out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = c.v[i * N + j];
            for (int k = 0; k < K; k++) s += a.v[i * K + k] * b.v[k * N + j];
            out[i * N + j] = s;
        }
    for (int i = 0; i < M * N; i++) d.v[i] = out[i];
}

} // namespace wmma
} // namespace nvcuda

#endif
