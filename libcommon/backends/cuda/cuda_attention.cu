/* cuda_attention.cu — backends layer (CUDA kernels): attention over a
 * ragged batch, forward and backward, flash-style: keys and values stream
 * through shared memory in tiles, the softmax is accumulated online, and no
 * [T, T] score matrix is ever stored. Float32 throughout.
 *
 * A sequence's keys are its shared prefix (n_pre rows of another sequence,
 * training only) followed by its main block: its cache 0 .. n_past + n_new
 * (after this call's rows are appended) or, without a cache, its own new
 * rows. Causal: query row i (0-based among the new rows) sees keys
 * 0 .. n_pre + n_main - n_new + i.
 *
 * Every output element is written by one block, in a fixed loop order: the
 * results do not depend on scheduling (the backward's dk/dv of a shared
 * prefix go through per-sequence scratch, added in sequence order).
 */
#include "cuda_kernels.h"
#include "cuda_launch.h"
#include "cuda_reduce.cuh"

#include <math.h>

/* Raises a kernel's dynamic shared memory limit once it needs more than
 * the default 48 KB. */
#define RAISE_SMEM(kernel, bytes)                                                          \
    do {                                                                                   \
        static size_t raised_ = 48 * 1024;                                                 \
        if ((bytes) > raised_) {                                                           \
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,      \
                                 (int)(bytes));                                            \
            raised_ = (bytes);                                                             \
        }                                                                                  \
    } while (0)

#define AT_THREADS 128
#define AT_WARPS (AT_THREADS / 32)
#define AT_Q 16    /* query rows per block */
#define AT_K 64    /* keys per tile, forward (two per lane in the softmax) */
#define AB_K 32    /* keys per tile, backward */

#include <cuda_bf16.h>
#include <cuda_fp16.h>

/* Where one sequence's keys and values are, for one kv head (column col):
 * a shared prefix's rows, then its cache pages or its own new rows. */
struct kv_view {
    const float *pre_k, *pre_v, *own_k, *own_v;
    int64_t ldkv, n_pre, n_main, n_new, col;
    const int32_t *page_ids;
    cuk_pages pg;
};

__device__ __forceinline__ kv_view make_view(const cuk_attn_seq *sq, const float *k,
                                             const float *v, int64_t ldkv, int64_t col,
                                             const cuk_pages &pg)
{
    kv_view w;
    w.pre_k = k + sq->pre_row0 * ldkv + col;
    w.pre_v = v + sq->pre_row0 * ldkv + col;
    w.own_k = k + sq->q_row0 * ldkv + col;
    w.own_v = v + sq->q_row0 * ldkv + col;
    w.ldkv = ldkv;
    w.n_pre = sq->n_pre;
    w.n_new = sq->n_new;
    w.col = col;
    w.page_ids = sq->page_ids;
    w.pg = pg;
    w.n_main = sq->page_ids ? sq->n_past + sq->n_new : sq->n_new;
    return w;
}

__device__ __forceinline__ float page_load(const void *base, cuk_dtype dt, int64_t i)
{
    if (dt == CUK_BF16) return __bfloat162float(((const __nv_bfloat16 *)base)[i]);
    if (dt == CUK_F16) return __half2float(((const __half *)base)[i]);
    return ((const float *)base)[i];
}

/* Element (position, col + c) of a layer's cache: its slab and index. */
__device__ __forceinline__ int64_t page_index(const cuk_pages &pg, int32_t id, int64_t pos_in_page,
                                              int64_t col)
{
    int64_t i = id % pg.slab_pages;
    return (((int64_t)pg.layer * pg.slab_pages + i) * pg.page + pos_in_page) * pg.width + col;
}

/* Value c of key (value: vals) j of the view. */
__device__ __forceinline__ float kv_at(const kv_view &w, bool vals, int64_t j, int c)
{
    if (j < w.n_pre) return (vals ? w.pre_v : w.pre_k)[j * w.ldkv + c];
    j -= w.n_pre;
    if (!w.page_ids) return (vals ? w.own_v : w.own_k)[j * w.ldkv + c];
    int32_t id = w.page_ids[j / w.pg.page];
    const void *slab = (vals ? w.pg.v_slabs : w.pg.k_slabs)[id / w.pg.slab_pages];
    return page_load(slab, w.pg.dt, page_index(w.pg, id, j % w.pg.page, w.col + c));
}

/* The last key query row i may see, plus one. */
__device__ __forceinline__ int64_t key_limit(const kv_view &w, bool causal, int64_t i)
{
    int64_t n_keys = w.n_pre + w.n_main;
    if (!causal) return n_keys;
    int64_t lim = w.n_pre + w.n_main - w.n_new + i + 1;
    return lim < n_keys ? lim : n_keys;
}

/* Copies keys [t0, t0 + nk) of the view into Ks/Vs [tile][hd + 1] (zeros
 * past nk). */
__device__ void load_kv_tile(float *Ks, float *Vs, const kv_view &w, int64_t t0, int nk,
                             int tile, int hd)
{
    for (int e = threadIdx.x; e < tile * hd; e += blockDim.x) {
        int j = e / hd, c = e % hd;
        bool in = j < nk;
        Ks[j * (hd + 1) + c] = in ? kv_at(w, false, t0 + j, c) : 0.0f;
        Vs[j * (hd + 1) + c] = in ? kv_at(w, true, t0 + j, c) : 0.0f;
    }
}

/* Copies rows [r0, r0 + nq) of m (columns col ..) into dst [AT_Q][hd]. */
__device__ void load_rows(float *dst, const float *m, int64_t ld, int64_t r0, int64_t col,
                          int nq, int hd)
{
    for (int e = threadIdx.x; e < AT_Q * hd; e += blockDim.x) {
        int i = e / hd, c = e % hd;
        dst[e] = i < nq ? m[(r0 + i) * ld + col + c] : 0.0f;
    }
}

__device__ __forceinline__ float dot_rows(const float *a, const float *b, int hd)
{
    float s = 0.0f;
    for (int c = 0; c < hd; c++) s += a[c] * b[c];
    return s;
}

/* One row's online-softmax step over a 64-key tile, a warp per row, each
 * lane holding scores a and b: the new running max mn, the lane's terms
 * exp(score - mn) and alpha, the factor that rescales what the row summed
 * before. A row without any key yet (max -inf) gets zeros and alpha 1. */
struct softmax_step {
    float pa, pb, alpha, mn;
};
__device__ __forceinline__ softmax_step online_softmax_step(float a, float b, float mo)
{
    float mx = warp_max(fmaxf(a, b));
    softmax_step st = {0.0f, 0.0f, 1.0f, fmaxf(mo, mx)};
    if (st.mn != -INFINITY) {
        st.pa = expf(a - st.mn);
        st.pb = expf(b - st.mn);
        st.alpha = expf(mo - st.mn);
    }
    return st;
}

/* Lane 0 keeps the row's running max, sum (with this tile's sum) and the
 * factor its output rows are rescaled by. */
__device__ __forceinline__ void online_softmax_keep(const softmax_step &st, float sum, int lane,
                                                    float *m, float *l, float *al)
{
    if (lane != 0) return;
    *l = *l * st.alpha + sum;
    *m = st.mn;
    *al = st.alpha;
}

/* ------------------------------------------------------------ forward -- */

__device__ __forceinline__ void page_store(void *base, cuk_dtype dt, int64_t i, float x)
{
    if (dt == CUK_BF16) ((__nv_bfloat16 *)base)[i] = __float2bfloat16(x);
    else if (dt == CUK_F16) ((__half *)base)[i] = __float2half(x);
    else ((float *)base)[i] = x;
}

/* grid (.., sequences): the new rows of each cached sequence into its pages. */
__global__ void k_cache_append(const float *k, const float *v, int64_t ldkv,
                               const cuk_attn_seq *seqs, cuk_pages pg)
{
    const cuk_attn_seq *sq = &seqs[blockIdx.y];
    if (!sq->page_ids) return;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < sq->n_new * pg.width;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = e / pg.width, c = e % pg.width, pos = sq->n_past + r;
        int32_t id = sq->page_ids[pos / pg.page];
        int64_t at = page_index(pg, id, pos % pg.page, c);
        page_store(pg.k_slabs[id / pg.slab_pages], pg.dt, at, k[(sq->q_row0 + r) * ldkv + c]);
        page_store(pg.v_slabs[id / pg.slab_pages], pg.dt, at, v[(sq->q_row0 + r) * ldkv + c]);
    }
}

static size_t fwd_smem(int hd)
{
    return sizeof(float) *
           (size_t)(2 * AT_Q * hd + 2 * AT_K * (hd + 1) + AT_Q * AT_K + 3 * AT_Q);
}

/* grid (query tiles, heads, sequences): AT_Q query rows of one head. */
__global__ void __launch_bounds__(AT_THREADS)
    k_attn_fwd(float *out, int64_t ldo, const float *q, int64_t ldq, const float *k,
               const float *v, int64_t ldkv, const cuk_attn_seq *seqs, cuk_pages pg,
               cuk_attn_shape sh, float *lse, int n_splits, float *part)
{
    const cuk_attn_seq *sq = &seqs[blockIdx.z];
    int h = blockIdx.y, hd = sh.head_dim, kvh = h / (sh.n_heads / sh.n_kv_heads);
    int split = (int)(blockIdx.x % (unsigned)n_splits);
    int64_t i0 = (int64_t)(blockIdx.x / (unsigned)n_splits) * AT_Q;
    if (i0 >= sq->n_new) return;
    int nq = (int)(sq->n_new - i0 < AT_Q ? sq->n_new - i0 : AT_Q);
    kv_view w = make_view(sq, k, v, ldkv, (int64_t)kvh * hd, pg);
    int64_t kend = key_limit(w, sh.causal, i0 + nq - 1);

    CU_DYN_SMEM(float, sm);
    float *Qs = sm;                       /* [AT_Q][hd] */
    float *Os = Qs + AT_Q * hd;           /* [AT_Q][hd] running output */
    float *Ks = Os + AT_Q * hd;           /* [AT_K][hd + 1] */
    float *Vs = Ks + AT_K * (hd + 1);     /* [AT_K][hd + 1] */
    float *S = Vs + AT_K * (hd + 1);      /* [AT_Q][AT_K] scores, then probabilities */
    float *m = S + AT_Q * AT_K, *l = m + AT_Q, *al = l + AT_Q;   /* [AT_Q] each */

    load_rows(Qs, q, ldq, sq->q_row0 + i0, (int64_t)h * hd, nq, hd);
    for (int e = threadIdx.x; e < AT_Q * hd; e += blockDim.x) Os[e] = 0.0f;
    for (int i = threadIdx.x; i < AT_Q; i += blockDim.x) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    /* this split's share of the key tiles (all of them without a split) */
    int64_t n_tiles = (kend + AT_K - 1) / AT_K;
    int64_t t_lo = n_tiles * split / n_splits * AT_K, t_hi = n_tiles * (split + 1) / n_splits * AT_K;
    if (t_hi > kend) t_hi = kend;
    for (int64_t t0 = t_lo; t0 < t_hi; t0 += AT_K) {
        int nk = (int)(t_hi - t0 < AT_K ? t_hi - t0 : AT_K);
        __syncthreads();
        load_kv_tile(Ks, Vs, w, t0, nk, AT_K, hd);
        __syncthreads();
        for (int e = threadIdx.x; e < AT_Q * AT_K; e += blockDim.x) {
            int i = e / AT_K, j = e % AT_K;
            float sc = -INFINITY;
            if (i < nq && j < nk && t0 + j < key_limit(w, sh.causal, i0 + i))
                sc = sh.scale * dot_rows(Qs + i * hd, Ks + j * (hd + 1), hd);
            S[e] = sc;
        }
        __syncthreads();
        /* online softmax: each warp owns rows warp, warp + AT_WARPS, ... */
        for (int i = warp; i < nq; i += AT_WARPS) {
            softmax_step st =
                online_softmax_step(S[i * AT_K + lane], S[i * AT_K + lane + 32], m[i]);
            float sum = warp_sum(st.pa + st.pb);
            S[i * AT_K + lane] = st.pa;
            S[i * AT_K + lane + 32] = st.pb;
            online_softmax_keep(st, sum, lane, &m[i], &l[i], &al[i]);
        }
        __syncthreads();
        /* only the block's nq rows (a decode step has one) */
        for (int e = threadIdx.x; e < nq * hd; e += blockDim.x) {
            int i = e / hd, c = e % hd;
            float acc = Os[e] * al[i];
            for (int j = 0; j < nk; j++) acc += S[i * AT_K + j] * Vs[j * (hd + 1) + c];
            Os[e] = acc;
        }
    }
    __syncthreads();
    if (n_splits > 1) {
        /* partial results [split][row][head]: hd unnormalised outputs, m, l */
        for (int e = threadIdx.x; e < nq * (hd + 2); e += blockDim.x) {
            int i = e / (hd + 2), c = e % (hd + 2);
            int64_t r = sq->q_row0 + i0 + i;
            float *dst = part + ((int64_t)split * sh.rows + r) * sh.n_heads * (hd + 2) +
                         (int64_t)h * (hd + 2);
            dst[c] = c < hd ? Os[i * hd + c] : c == hd ? m[i] : l[i];
        }
        return;
    }
    for (int e = threadIdx.x; e < nq * hd; e += blockDim.x) {
        int i = e / hd, c = e % hd;
        out[(sq->q_row0 + i0 + i) * ldo + (int64_t)h * hd + c] = Os[e] / l[i];
    }
    if (lse && (int)threadIdx.x < nq)
        lse[(sq->q_row0 + i0 + threadIdx.x) * sh.n_heads + h] =
            m[threadIdx.x] + logf(l[threadIdx.x]);
}

/* One (row, head) per thread: the splits' partial results combined in
 * split order into the output (and log-sum-exp). */
__global__ void k_attn_combine(float *out, int64_t ldo, float *lse, const float *part,
                               int n_splits, int64_t rows, int n_heads, int hd)
{
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < rows * n_heads;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = e / n_heads;
        int h = (int)(e % n_heads);
        const float *p0 = part + (r * n_heads + h) * (hd + 2);
        int64_t stride = rows * n_heads * (hd + 2);
        float mx = -INFINITY;
        for (int s = 0; s < n_splits; s++) mx = fmaxf(mx, p0[s * stride + hd]);
        float L = 0.0f;
        for (int s = 0; s < n_splits; s++) {
            float ms = p0[s * stride + hd];
            L += ms == -INFINITY ? 0.0f : p0[s * stride + hd + 1] * expf(ms - mx);
        }
        for (int c = 0; c < hd; c++) {
            float acc = 0.0f;
            for (int s = 0; s < n_splits; s++) {
                float ms = p0[s * stride + hd];
                if (ms != -INFINITY) acc += p0[s * stride + c] * expf(ms - mx);
            }
            out[r * ldo + (int64_t)h * hd + c] = acc / L;
        }
        if (lse) lse[r * n_heads + h] = mx + logf(L);
    }
}

/* ------------------------------------------- forward on tensor cores -- */

/* With bf16/f16 weights (not float32: its results must match the CPU's
 * float32), prefill-sized work runs here: Q, K, V and the probabilities in
 * the weight type on the tensor cores (16x16x16 warp tiles, float32
 * accumulation), the online softmax in float32. A block: TQ query rows of
 * one head, four warps of 16 rows each; keys in tiles of TK. The output
 * accumulates in shared memory, rescaled row by row as the maximum moves. */
#include <mma.h>

#define TQ 64
#define TK 64
#define TPAD 8      /* bf16/f16 row padding: 16 bytes, keeps rows off one bank */
#define TFPAD 4     /* float row padding */

/* rows of new work from which the tensor-core forward pays (prefill) */
#define TC_MIN_ROWS 32

__device__ __forceinline__ float half_value(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float half_value(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T to_half_t(float x);
template <> __device__ __forceinline__ __nv_bfloat16 to_half_t<__nv_bfloat16>(float x)
{
    return __float2bfloat16(x);
}
template <> __device__ __forceinline__ __half to_half_t<__half>(float x) { return __float2half(x); }

template <int HD, typename T> static size_t tc_smem(void)
{
    return sizeof(T) * (size_t)((TQ + 2 * TK) * (HD + TPAD) + TQ * (TK + TPAD)) +
           sizeof(float) * (size_t)(TQ * (TK + TFPAD) + TQ * (HD + TFPAD) + 3 * TQ);
}

/* A tile of rows r0.. of m (cols col..) as the half type in dst [64][ld]
 * (zeros past n rows). */
template <int HD, typename T>
__device__ void tc_load_rows(T *dst, int ld, const float *m, int64_t ldm, int64_t r0, int64_t col,
                             int n)
{
    for (int e = threadIdx.x; e < 64 * HD; e += blockDim.x) {
        int i = e / HD, c = e % HD;
        dst[i * ld + c] = to_half_t<T>(i < n ? m[(r0 + i) * ldm + col + c] : 0.0f);
    }
}

/* C [16 rows of warp w][64] (float, ldc) = A [16][HD] B^T, A rows at
 * a + 16w*lda, B's 64 rows at b (both the half type, row-major). */
template <int HD, typename T>
__device__ void tc_abt(float *c, int ldc, const T *a, int lda, const T *b, int ldb)
{
    using namespace nvcuda;
    int r0 = (threadIdx.x / 32) * 16;
    for (int n = 0; n < 4; n++) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int kk = 0; kk < HD / 16; kk++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
            wmma::load_matrix_sync(fa, a + r0 * lda + kk * 16, lda);
            wmma::load_matrix_sync(fb, b + n * 16 * ldb + kk * 16, ldb);
            wmma::mma_sync(acc, fa, fb, acc);
        }
        wmma::store_matrix_sync(c + r0 * ldc + n * 16, acc, ldc, wmma::mem_row_major);
    }
}

/* acc [16 rows of warp w][HD] (float, in smem at acc_s) += A [16][64] B
 * [64][HD]; A = rows of a (row-major) or, a_t, columns of a (a transposed:
 * element (i, k) at a[k * lda + i]). */
template <int HD, typename T>
__device__ void tc_acc_ab(float *acc_s, int ldacc, const T *a, int lda, bool a_t, const T *b,
                          int ldb)
{
    using namespace nvcuda;
    int r0 = (threadIdx.x / 32) * 16;
    for (int n = 0; n < HD / 16; n++) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::load_matrix_sync(acc, acc_s + r0 * ldacc + n * 16, ldacc, wmma::mem_row_major);
        for (int kk = 0; kk < 4; kk++) {
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
            wmma::load_matrix_sync(fb, b + kk * 16 * ldb + n * 16, ldb);
            if (a_t) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::col_major> fa;
                wmma::load_matrix_sync(fa, a + kk * 16 * lda + r0, lda);
                wmma::mma_sync(acc, fa, fb, acc);
            } else {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
                wmma::load_matrix_sync(fa, a + r0 * lda + kk * 16, lda);
                wmma::mma_sync(acc, fa, fb, acc);
            }
        }
        wmma::store_matrix_sync(acc_s + r0 * ldacc + n * 16, acc, ldacc, wmma::mem_row_major);
    }
}

template <int HD, typename T>
__global__ void __launch_bounds__(128)
    k_attn_fwd_tc(float *out, int64_t ldo, const float *q, int64_t ldq, const float *k,
                  const float *v, int64_t ldkv, const cuk_attn_seq *seqs, cuk_pages pg,
                  cuk_attn_shape sh, float *lse)
{
    static_assert(TQ == 64 && TK == 64, "the tile helpers work on 64 x 64 tiles");
    const cuk_attn_seq *sq = &seqs[blockIdx.z];
    int h = blockIdx.y, kvh = h / (sh.n_heads / sh.n_kv_heads);
    int64_t i0 = (int64_t)blockIdx.x * TQ;
    if (i0 >= sq->n_new) return;
    int nq = (int)(sq->n_new - i0 < TQ ? sq->n_new - i0 : TQ);
    kv_view w = make_view(sq, k, v, ldkv, (int64_t)kvh * HD, pg);
    int64_t kend = key_limit(w, sh.causal, i0 + nq - 1);

    CU_DYN_SMEM(float, sm);
    const int LH = HD + TPAD, LK = TK + TPAD, LS = TK + TFPAD, LO = HD + TFPAD;
    T *Qs = (T *)sm, *Ks = Qs + TQ * LH, *Vs = Ks + TK * LH, *Ps = Vs + TK * LH; /* [.][LH], [TQ][LK] */
    float *Ss = (float *)(Ps + TQ * LK);      /* [TQ][LS] scores */
    float *Os = Ss + TQ * LS;                 /* [TQ][LO] running output */
    float *m = Os + TQ * LO, *l = m + TQ, *al = l + TQ;

    for (int e = threadIdx.x; e < TQ * HD; e += blockDim.x) {
        int i = e / HD, c = e % HD;
        Qs[i * LH + c] = to_half_t<T>(i < nq ? q[(sq->q_row0 + i0 + i) * ldq + (int64_t)h * HD + c] : 0.0f);
        Os[i * LO + c] = 0.0f;
    }
    for (int i = threadIdx.x; i < TQ; i += blockDim.x) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r0 = warp * 16;
    for (int64_t t0 = 0; t0 < kend; t0 += TK) {
        int nk = (int)(kend - t0 < TK ? kend - t0 : TK);
        __syncthreads();
        for (int e = threadIdx.x; e < TK * HD; e += blockDim.x) {
            int j = e / HD, c = e % HD;
            bool in = j < nk;
            Ks[j * LH + c] = to_half_t<T>(in ? kv_at(w, false, t0 + j, c) : 0.0f);
            Vs[j * LH + c] = to_half_t<T>(in ? kv_at(w, true, t0 + j, c) : 0.0f);
        }
        __syncthreads();
        tc_abt<HD>(Ss, LS, Qs, LH, Ks, LH); /* S [16 rows of this warp][TK] = Q K^T */
        __syncwarp();
        /* online softmax of the warp's rows; P in the half type */
        for (int i = r0; i < r0 + 16; i++) {
            float a = -INFINITY, b = -INFINITY;
            int64_t lim = key_limit(w, sh.causal, i0 + i);
            if (i < nq && lane < nk && t0 + lane < lim) a = sh.scale * Ss[i * LS + lane];
            if (i < nq && lane + 32 < nk && t0 + lane + 32 < lim) b = sh.scale * Ss[i * LS + lane + 32];
            softmax_step st = online_softmax_step(a, b, m[i]);
            T ha = to_half_t<T>(st.pa), hb = to_half_t<T>(st.pb);
            /* the row sum of what the product will use: the rounded values */
            float sum = warp_sum(half_value(ha) + half_value(hb));
            Ps[i * LK + lane] = ha;
            Ps[i * LK + lane + 32] = hb;
            online_softmax_keep(st, sum, lane, &m[i], &l[i], &al[i]);
        }
        __syncwarp();
        for (int e = lane; e < 16 * HD; e += 32) {
            int i = r0 + e / HD, c = e % HD;
            Os[i * LO + c] *= al[i];
        }
        __syncwarp();
        tc_acc_ab<HD>(Os, LO, Ps, LK, false, Vs, LH); /* O [16][HD] += P [16][TK] V [TK][HD] */
    }
    __syncthreads();
    for (int e = threadIdx.x; e < nq * HD; e += blockDim.x) {
        int i = e / HD, c = e % HD;
        out[(sq->q_row0 + i0 + i) * ldo + (int64_t)h * HD + c] = Os[i * LO + c] / l[i];
    }
    if (lse)
        for (int i = threadIdx.x; i < nq; i += blockDim.x)
            lse[(sq->q_row0 + i0 + i) * sh.n_heads + h] = m[i] + logf(l[i]);
}

/* Launches the tensor-core forward when it applies (head_dim 64 or 128,
 * half-precision storage, rows enough to fill its tiles); false otherwise. */
template <typename T>
static bool launch_tc(int64_t mn, float *out, int64_t ldo, const float *q, int64_t ldq,
                      const float *k, const float *v, int64_t ldkv, const cuk_attn_seq *seqs_dev,
                      int n_seqs, cuk_pages pg, cuk_attn_shape sh, float *lse, cudaStream_t s)
{
    dim3 grid(cu_blocks(mn, TQ), (unsigned)sh.n_heads, (unsigned)n_seqs);
    if (sh.head_dim == 64) {
        size_t smem = tc_smem<64, T>();
        auto kernel = k_attn_fwd_tc<64, T>;
        RAISE_SMEM(kernel, smem);
        CU_LAUNCH(kernel, grid, 128, smem, s, out, ldo, q, ldq, k, v, ldkv, seqs_dev, pg, sh, lse);
        return true;
    }
    if (sh.head_dim == 128) {
        size_t smem = tc_smem<128, T>();
        auto kernel = k_attn_fwd_tc<128, T>;
        RAISE_SMEM(kernel, smem);
        CU_LAUNCH(kernel, grid, 128, smem, s, out, ldo, q, ldq, k, v, ldkv, seqs_dev, pg, sh, lse);
        return true;
    }
    return false;
}

/* ----------------------------------------------------------- backward -- */

/* drow [R, H] = rowsum(dout . o) per head: the softmax backward's D. */
__global__ void k_attn_drow(float *drow, const float *dout, int64_t lddo, const float *o,
                            int64_t ldo, int64_t rows, int n_heads, int hd)
{
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < rows * n_heads;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = e / n_heads;
        int h = (int)(e % n_heads);
        const float *a = dout + r * lddo + (int64_t)h * hd, *b = o + r * ldo + (int64_t)h * hd;
        double s = 0;
        for (int c = 0; c < hd; c++) s += (double)a[c] * b[c];
        drow[e] = (float)s;
    }
}

/* P and dS of query tile rows [i0, i0 + nq) against keys [t0, t0 + nk):
 * p = exp(scale q.k - lse), ds = p (dout.v - D); zero where masked. */
__device__ void tile_p_ds(float *P, float *dS, const float *Qs, const float *dOs,
                          const float *Ks, const float *Vs, const float *lse_s, const float *D_s,
                          const kv_view &w, int64_t i0, int nq, int64_t t0, int nk, int hd,
                          cuk_attn_shape sh)
{
    for (int e = threadIdx.x; e < AT_Q * AB_K; e += blockDim.x) {
        int i = e / AB_K, j = e % AB_K;
        float p = 0.0f, ds = 0.0f;
        if (i < nq && j < nk && t0 + j < key_limit(w, sh.causal, i0 + i)) {
            p = expf(sh.scale * dot_rows(Qs + i * hd, Ks + j * (hd + 1), hd) - lse_s[i]);
            ds = p * (dot_rows(dOs + i * hd, Vs + j * (hd + 1), hd) - D_s[i]);
        }
        if (P) P[e] = p;
        dS[e] = ds;
    }
}

__device__ void load_row_stats(float *lse_s, float *D_s, const float *lse, const float *drow,
                               int64_t r0, int h, int n_heads, int nq)
{
    for (int i = threadIdx.x; i < AT_Q; i += blockDim.x) {
        lse_s[i] = i < nq ? lse[(r0 + i) * n_heads + h] : 0.0f;
        D_s[i] = i < nq ? drow[(r0 + i) * n_heads + h] : 0.0f;
    }
}

static size_t dkdv_smem(int hd)
{
    return sizeof(float) *
           (size_t)(2 * AB_K * (hd + 1) + 2 * AB_K * hd + 2 * AT_Q * hd + 2 * AT_Q * AB_K + 2 * AT_Q);
}

/* grid (key tiles, kv heads, sequences): dk/dv of AB_K keys, summed over
 * the kv head's query heads and every query tile that sees the keys. */
__global__ void __launch_bounds__(AT_THREADS)
    k_attn_dkdv(float *dk, float *dv, int64_t lddkv, const float *dout, int64_t lddo,
                const float *q, int64_t ldq, const float *k, const float *v, int64_t ldkv,
                const float *lse, const float *drow, const cuk_attn_seq *seqs, cuk_attn_shape sh)
{
    const cuk_attn_seq *sq = &seqs[blockIdx.z];
    int kvh = blockIdx.y, hd = sh.head_dim, group = sh.n_heads / sh.n_kv_heads;
    int64_t kc = (int64_t)kvh * hd;
    cuk_pages none = {};
    kv_view w = make_view(sq, k, v, ldkv, kc, none);
    int64_t t0 = (int64_t)blockIdx.x * AB_K, n_keys = w.n_pre + w.n_main;
    if (t0 >= n_keys) return;
    int nk = (int)(n_keys - t0 < AB_K ? n_keys - t0 : AB_K);

    CU_DYN_SMEM(float, sm);
    float *Ks = sm, *Vs = Ks + AB_K * (hd + 1);          /* [AB_K][hd + 1] */
    float *dKs = Vs + AB_K * (hd + 1), *dVs = dKs + AB_K * hd;   /* [AB_K][hd] */
    float *Qs = dVs + AB_K * hd, *dOs = Qs + AT_Q * hd;  /* [AT_Q][hd] */
    float *P = dOs + AT_Q * hd, *dS = P + AT_Q * AB_K;   /* [AT_Q][AB_K] */
    float *lse_s = dS + AT_Q * AB_K, *D_s = lse_s + AT_Q;

    load_kv_tile(Ks, Vs, w, t0, nk, AB_K, hd);
    for (int e = threadIdx.x; e < AB_K * hd; e += blockDim.x) dKs[e] = dVs[e] = 0.0f;
    /* the first query row that sees key t0 */
    int64_t first = sh.causal ? t0 - (w.n_pre + w.n_main - w.n_new) : 0;
    first = first < 0 ? 0 : (first / AT_Q) * AT_Q;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int64_t i0 = first; i0 < sq->n_new; i0 += AT_Q) {
            int nq = (int)(sq->n_new - i0 < AT_Q ? sq->n_new - i0 : AT_Q);
            __syncthreads();
            load_rows(Qs, q, ldq, sq->q_row0 + i0, (int64_t)h * hd, nq, hd);
            load_rows(dOs, dout, lddo, sq->q_row0 + i0, (int64_t)h * hd, nq, hd);
            load_row_stats(lse_s, D_s, lse, drow, sq->q_row0 + i0, h, sh.n_heads, nq);
            __syncthreads();
            tile_p_ds(P, dS, Qs, dOs, Ks, Vs, lse_s, D_s, w, i0, nq, t0, nk, hd, sh);
            __syncthreads();
            for (int e = threadIdx.x; e < AB_K * hd; e += blockDim.x) {
                int j = e / hd, c = e % hd;
                float a = 0.0f, b = 0.0f;
                for (int i = 0; i < AT_Q; i++) {
                    a += P[i * AB_K + j] * dOs[i * hd + c];
                    b += dS[i * AB_K + j] * Qs[i * hd + c];
                }
                dVs[e] += a;
                dKs[e] += sh.scale * b;
            }
        }
    }
    __syncthreads();
    int64_t width = (int64_t)sh.n_kv_heads * hd;
    for (int e = threadIdx.x; e < nk * hd; e += blockDim.x) {
        int j = e / hd, c = e % hd;
        int64_t key = t0 + j;
        if (key < w.n_pre) {
            sq->pre_dk[key * width + kc + c] = dKs[e];
            sq->pre_dv[key * width + kc + c] = dVs[e];
        } else {
            int64_t r = sq->q_row0 + key - w.n_pre;
            dk[r * lddkv + kc + c] += dKs[e];
            dv[r * lddkv + kc + c] += dVs[e];
        }
    }
}

static size_t dq_smem(int hd)
{
    return sizeof(float) * (size_t)(3 * AT_Q * hd + 2 * AB_K * (hd + 1) + AT_Q * AB_K + 2 * AT_Q);
}

/* grid (query tiles, heads, sequences): dq of AT_Q rows of one head. */
__global__ void __launch_bounds__(AT_THREADS)
    k_attn_dq(float *dq, int64_t lddq, const float *dout, int64_t lddo, const float *q,
              int64_t ldq, const float *k, const float *v, int64_t ldkv, const float *lse,
              const float *drow, const cuk_attn_seq *seqs, cuk_attn_shape sh)
{
    const cuk_attn_seq *sq = &seqs[blockIdx.z];
    int h = blockIdx.y, hd = sh.head_dim, kvh = h / (sh.n_heads / sh.n_kv_heads);
    int64_t i0 = (int64_t)blockIdx.x * AT_Q;
    if (i0 >= sq->n_new) return;
    int nq = (int)(sq->n_new - i0 < AT_Q ? sq->n_new - i0 : AT_Q);
    cuk_pages none = {};
    kv_view w = make_view(sq, k, v, ldkv, (int64_t)kvh * hd, none);
    int64_t kend = key_limit(w, sh.causal, i0 + nq - 1);

    CU_DYN_SMEM(float, sm);
    float *Qs = sm, *dOs = Qs + AT_Q * hd, *dQs = dOs + AT_Q * hd;   /* [AT_Q][hd] */
    float *Ks = dQs + AT_Q * hd, *Vs = Ks + AB_K * (hd + 1);        /* [AB_K][hd + 1] */
    float *dS = Vs + AB_K * (hd + 1);                                /* [AT_Q][AB_K] */
    float *lse_s = dS + AT_Q * AB_K, *D_s = lse_s + AT_Q;

    load_rows(Qs, q, ldq, sq->q_row0 + i0, (int64_t)h * hd, nq, hd);
    load_rows(dOs, dout, lddo, sq->q_row0 + i0, (int64_t)h * hd, nq, hd);
    load_row_stats(lse_s, D_s, lse, drow, sq->q_row0 + i0, h, sh.n_heads, nq);
    for (int e = threadIdx.x; e < AT_Q * hd; e += blockDim.x) dQs[e] = 0.0f;
    for (int64_t t0 = 0; t0 < kend; t0 += AB_K) {
        int nk = (int)(kend - t0 < AB_K ? kend - t0 : AB_K);
        __syncthreads();
        load_kv_tile(Ks, Vs, w, t0, nk, AB_K, hd);
        __syncthreads();
        tile_p_ds(nullptr, dS, Qs, dOs, Ks, Vs, lse_s, D_s, w, i0, nq, t0, nk, hd, sh);
        __syncthreads();
        for (int e = threadIdx.x; e < AT_Q * hd; e += blockDim.x) {
            int i = e / hd, c = e % hd;
            float a = 0.0f;
            for (int j = 0; j < nk; j++) a += dS[i * AB_K + j] * Ks[j * (hd + 1) + c];
            dQs[e] += sh.scale * a;
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < nq * hd; e += blockDim.x) {
        int i = e / hd, c = e % hd;
        dq[(sq->q_row0 + i0 + i) * lddq + (int64_t)h * hd + c] += dQs[e];
    }
}

__global__ void k_prefix_add(float *dk, float *dv, int64_t ld, const float *pre_dk,
                             const float *pre_dv, int64_t pre_row0, int64_t n_pre, int64_t width)
{
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n_pre * width;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = e / width, c = e % width;
        dk[(pre_row0 + r) * ld + c] += pre_dk[e];
        dv[(pre_row0 + r) * ld + c] += pre_dv[e];
    }
}

/* ------------------------------------------------------------ launchers -- */

static int64_t max_new(const cuk_attn_seq *seqs, int n)
{
    int64_t m = 0;
    for (int i = 0; i < n; i++) m = seqs[i].n_new > m ? seqs[i].n_new : m;
    return m;
}

static int64_t max_keys(const cuk_attn_seq *seqs, int n)
{
    int64_t m = 0;
    for (int i = 0; i < n; i++) {
        int64_t nk = seqs[i].n_pre + (seqs[i].page_ids ? seqs[i].n_past : 0) + seqs[i].n_new;
        m = nk > m ? nk : m;
    }
    return m;
}

/* ------------------------------------------ backward on tensor cores -- */

/* With half-precision weights and the tensor-core forward (the same
 * products, so the same scores): dk/dv per key tile and dq per query tile
 * as the float32 kernels do, the products S = QK^T, dP = dO V^T, dV += P^T
 * dO, dK += dS^T Q and dQ += dS K on the tensor cores with P and dS in the
 * half type. 64 x 64 tiles, four warps. */

/* P = exp(scale S - lse) and dS = P (dP - D) over the 64 x 64 tile (zero
 * where masked), into the half type; query rows i0.., keys t0... */
template <typename T>
__device__ void tc_p_ds(T *Ps, T *dSs, int ld, const float *Ss, const float *dPs, int lds,
                        const float *lse_s, const float *D_s, const kv_view &w, int64_t i0,
                        int nq, int64_t t0, int nk, cuk_attn_shape sh)
{
    for (int e = threadIdx.x; e < 64 * 64; e += blockDim.x) {
        int i = e / 64, j = e % 64;
        float p = 0.0f, ds = 0.0f;
        if (i < nq && j < nk && t0 + j < key_limit(w, sh.causal, i0 + i)) {
            p = expf(sh.scale * Ss[i * lds + j] - lse_s[i]);
            ds = p * (dPs[i * lds + j] - D_s[i]);
        }
        Ps[i * ld + j] = to_half_t<T>(p);
        dSs[i * ld + j] = to_half_t<T>(ds);
    }
}

template <int HD, typename T> static size_t tc_dkdv_smem(void)
{
    return sizeof(T) * (size_t)(4 * 64 * (HD + TPAD) + 2 * 64 * (64 + TPAD)) +
           sizeof(float) * (size_t)(2 * 64 * (64 + TFPAD) + 2 * 64 * (HD + TFPAD) + 2 * 64);
}

template <int HD, typename T>
__global__ void __launch_bounds__(128)
    k_attn_dkdv_tc(float *dk, float *dv, int64_t lddkv, const float *dout, int64_t lddo,
                   const float *q, int64_t ldq, const float *k, const float *v, int64_t ldkv,
                   const float *lse, const float *drow, const cuk_attn_seq *seqs, cuk_attn_shape sh)
{
    const cuk_attn_seq *sq = &seqs[blockIdx.z];
    int kvh = blockIdx.y, group = sh.n_heads / sh.n_kv_heads;
    int64_t kc = (int64_t)kvh * HD;
    cuk_pages none = {};
    kv_view w = make_view(sq, k, v, ldkv, kc, none);
    int64_t t0 = (int64_t)blockIdx.x * 64, n_keys = w.n_pre + w.n_main;
    if (t0 >= n_keys) return;
    int nk = (int)(n_keys - t0 < 64 ? n_keys - t0 : 64);

    CU_DYN_SMEM(float, sm);
    const int LH = HD + TPAD, LK = 64 + TPAD, LS = 64 + TFPAD, LA = HD + TFPAD;
    T *Ks = (T *)sm, *Vs = Ks + 64 * LH, *Qs = Vs + 64 * LH, *dOs = Qs + 64 * LH;
    T *Ps = dOs + 64 * LH, *dSs = Ps + 64 * LK;
    float *Ss = (float *)(dSs + 64 * LK), *dPs = Ss + 64 * LS, *dKs = dPs + 64 * LS;
    float *dVs = dKs + 64 * LA, *lse_s = dVs + 64 * LA, *D_s = lse_s + 64;

    for (int e = threadIdx.x; e < 64 * HD; e += blockDim.x) {
        int j = e / HD, c = e % HD;
        bool in = j < nk;
        Ks[j * LH + c] = to_half_t<T>(in ? kv_at(w, false, t0 + j, c) : 0.0f);
        Vs[j * LH + c] = to_half_t<T>(in ? kv_at(w, true, t0 + j, c) : 0.0f);
        dKs[j * LA + c] = dVs[j * LA + c] = 0.0f;
    }
    int64_t first = sh.causal ? t0 - (w.n_pre + w.n_main - w.n_new) : 0;
    first = first < 0 ? 0 : (first / 64) * 64;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int64_t i0 = first; i0 < sq->n_new; i0 += 64) {
            int nq = (int)(sq->n_new - i0 < 64 ? sq->n_new - i0 : 64);
            __syncthreads();
            tc_load_rows<HD>(Qs, LH, q, ldq, sq->q_row0 + i0, (int64_t)h * HD, nq);
            tc_load_rows<HD>(dOs, LH, dout, lddo, sq->q_row0 + i0, (int64_t)h * HD, nq);
            for (int i = threadIdx.x; i < 64; i += blockDim.x) {
                lse_s[i] = i < nq ? lse[(sq->q_row0 + i0 + i) * sh.n_heads + h] : 0.0f;
                D_s[i] = i < nq ? drow[(sq->q_row0 + i0 + i) * sh.n_heads + h] : 0.0f;
            }
            __syncthreads();
            tc_abt<HD>(Ss, LS, Qs, LH, Ks, LH);     /* S = Q K^T */
            tc_abt<HD>(dPs, LS, dOs, LH, Vs, LH);   /* dP = dO V^T */
            __syncthreads();
            tc_p_ds(Ps, dSs, LK, Ss, dPs, LS, lse_s, D_s, w, i0, nq, t0, nk, sh);
            __syncthreads();
            tc_acc_ab<HD>(dVs, LA, Ps, LK, true, dOs, LH);  /* dV += P^T dO */
            tc_acc_ab<HD>(dKs, LA, dSs, LK, true, Qs, LH);  /* dK += dS^T Q (scaled below) */
        }
    }
    __syncthreads();
    int64_t width = (int64_t)sh.n_kv_heads * HD;
    for (int e = threadIdx.x; e < nk * HD; e += blockDim.x) {
        int j = e / HD, c = e % HD;
        int64_t key = t0 + j;
        float gk = sh.scale * dKs[j * LA + c], gv = dVs[j * LA + c];
        if (key < w.n_pre) {
            sq->pre_dk[key * width + kc + c] = gk;
            sq->pre_dv[key * width + kc + c] = gv;
        } else {
            int64_t r = sq->q_row0 + key - w.n_pre;
            dk[r * lddkv + kc + c] += gk;
            dv[r * lddkv + kc + c] += gv;
        }
    }
}

template <int HD, typename T> static size_t tc_dq_smem(void)
{
    return sizeof(T) * (size_t)(4 * 64 * (HD + TPAD) + 2 * 64 * (64 + TPAD)) +
           sizeof(float) * (size_t)(2 * 64 * (64 + TFPAD) + 64 * (HD + TFPAD) + 2 * 64);
}

template <int HD, typename T>
__global__ void __launch_bounds__(128)
    k_attn_dq_tc(float *dq, int64_t lddq, const float *dout, int64_t lddo, const float *q,
                 int64_t ldq, const float *k, const float *v, int64_t ldkv, const float *lse,
                 const float *drow, const cuk_attn_seq *seqs, cuk_attn_shape sh)
{
    const cuk_attn_seq *sq = &seqs[blockIdx.z];
    int h = blockIdx.y, kvh = h / (sh.n_heads / sh.n_kv_heads);
    int64_t i0 = (int64_t)blockIdx.x * 64;
    if (i0 >= sq->n_new) return;
    int nq = (int)(sq->n_new - i0 < 64 ? sq->n_new - i0 : 64);
    cuk_pages none = {};
    kv_view w = make_view(sq, k, v, ldkv, (int64_t)kvh * HD, none);
    int64_t kend = key_limit(w, sh.causal, i0 + nq - 1);

    CU_DYN_SMEM(float, sm);
    const int LH = HD + TPAD, LK = 64 + TPAD, LS = 64 + TFPAD, LA = HD + TFPAD;
    T *Qs = (T *)sm, *dOs = Qs + 64 * LH, *Ks = dOs + 64 * LH, *Vs = Ks + 64 * LH;
    T *Ps = Vs + 64 * LH, *dSs = Ps + 64 * LK;
    float *Ss = (float *)(dSs + 64 * LK), *dPs = Ss + 64 * LS, *dQs = dPs + 64 * LS;
    float *lse_s = dQs + 64 * LA, *D_s = lse_s + 64;

    tc_load_rows<HD>(Qs, LH, q, ldq, sq->q_row0 + i0, (int64_t)h * HD, nq);
    tc_load_rows<HD>(dOs, LH, dout, lddo, sq->q_row0 + i0, (int64_t)h * HD, nq);
    for (int i = threadIdx.x; i < 64; i += blockDim.x) {
        lse_s[i] = i < nq ? lse[(sq->q_row0 + i0 + i) * sh.n_heads + h] : 0.0f;
        D_s[i] = i < nq ? drow[(sq->q_row0 + i0 + i) * sh.n_heads + h] : 0.0f;
    }
    for (int e = threadIdx.x; e < 64 * HD; e += blockDim.x) dQs[(e / HD) * LA + e % HD] = 0.0f;
    for (int64_t t0 = 0; t0 < kend; t0 += 64) {
        int nk = (int)(kend - t0 < 64 ? kend - t0 : 64);
        __syncthreads();
        for (int e = threadIdx.x; e < 64 * HD; e += blockDim.x) {
            int j = e / HD, c = e % HD;
            bool in = j < nk;
            Ks[j * LH + c] = to_half_t<T>(in ? kv_at(w, false, t0 + j, c) : 0.0f);
            Vs[j * LH + c] = to_half_t<T>(in ? kv_at(w, true, t0 + j, c) : 0.0f);
        }
        __syncthreads();
        tc_abt<HD>(Ss, LS, Qs, LH, Ks, LH);
        tc_abt<HD>(dPs, LS, dOs, LH, Vs, LH);
        __syncthreads();
        tc_p_ds(Ps, dSs, LK, Ss, dPs, LS, lse_s, D_s, w, i0, nq, t0, nk, sh);
        __syncthreads();
        tc_acc_ab<HD>(dQs, LA, dSs, LK, false, Ks, LH); /* dQ += dS K (scaled below) */
    }
    __syncthreads();
    for (int e = threadIdx.x; e < nq * HD; e += blockDim.x) {
        int i = e / HD, c = e % HD;
        dq[(sq->q_row0 + i0 + i) * lddq + (int64_t)h * HD + c] += sh.scale * dQs[i * LA + c];
    }
}

/* The tensor-core backward when it applies (the forward's conditions). */
template <int HD, typename T>
static void launch_tc_backward(float *dq, int64_t lddq, float *dk, float *dv, int64_t lddkv,
                               const float *dout, int64_t lddo, const float *q, int64_t ldq,
                               const float *k, const float *v, int64_t ldkv, const float *lse,
                               const float *drow, const cuk_attn_seq *seqs_dev,
                               const cuk_attn_seq *seqs_host, int n_seqs, cuk_attn_shape sh,
                               cudaStream_t s)
{
    size_t smem_kv = tc_dkdv_smem<HD, T>(), smem_q = tc_dq_smem<HD, T>();
    auto kkv = k_attn_dkdv_tc<HD, T>;
    auto kq = k_attn_dq_tc<HD, T>;
    RAISE_SMEM(kkv, smem_kv);
    RAISE_SMEM(kq, smem_q);
    dim3 gkv(cu_blocks(max_keys(seqs_host, n_seqs), 64), (unsigned)sh.n_kv_heads, (unsigned)n_seqs);
    CU_LAUNCH(kkv, gkv, 128, smem_kv, s, dk, dv, lddkv, dout, lddo, q, ldq, k, v, ldkv, lse, drow,
              seqs_dev, sh);
    dim3 gq(cu_blocks(max_new(seqs_host, n_seqs), 64), (unsigned)sh.n_heads, (unsigned)n_seqs);
    CU_LAUNCH(kq, gq, 128, smem_q, s, dq, lddq, dout, lddo, q, ldq, k, v, ldkv, lse, drow, seqs_dev,
              sh);
}

/* Whether the tensor-core kernels take this attention (forward and backward alike). */
static bool tc_applies(int64_t max_new_rows, cuk_attn_shape sh)
{
    return max_new_rows >= TC_MIN_ROWS && sh.half_dt != CUK_F32 &&
           (sh.head_dim == 64 || sh.head_dim == 128);
}

extern "C" {

size_t cuk_attention_smem(int head_dim)
{
    size_t a = fwd_smem(head_dim), b = dkdv_smem(head_dim), c = dq_smem(head_dim);
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

int cuk_attention_splits(const cuk_attn_seq *seqs_host, int n_seqs, cuk_attn_shape sh, int n_sms)
{
    int64_t blocks = cu_blocks(max_new(seqs_host, n_seqs), AT_Q) * (int64_t)sh.n_heads * n_seqs;
    int64_t keys = max_keys(seqs_host, n_seqs);
    if (blocks >= 2 * (int64_t)n_sms || keys <= 4 * AT_K) return 1;
    int64_t by_blocks = (2 * (int64_t)n_sms + blocks - 1) / blocks, by_keys = keys / (4 * AT_K);
    int64_t n = by_blocks < by_keys ? by_blocks : by_keys;
    return (int)(n < 1 ? 1 : n > 16 ? 16 : n);
}

void cuk_attention(float *out, int64_t ldo, const float *q, int64_t ldq, const float *k,
                   const float *v, int64_t ldkv, const cuk_attn_seq *seqs_dev,
                   const cuk_attn_seq *seqs_host, int n_seqs, cuk_pages pg, cuk_attn_shape sh,
                   float *lse, int n_splits, float *part, cudaStream_t s)
{
    if (n_seqs == 0) return;
    int64_t mn = max_new(seqs_host, n_seqs), width = (int64_t)sh.n_kv_heads * sh.head_dim;
    bool any_cache = false;
    for (int i = 0; i < n_seqs; i++) any_cache |= seqs_host[i].page_ids != nullptr;
    if (any_cache)
        CU_LAUNCH_NOSYNC(k_cache_append, dim3(cu_blocks(mn * width, 256), (unsigned)n_seqs), 256,
                         0, s, k, v, ldkv, seqs_dev, pg);
    /* prefill-sized work with half-precision storage: tensor cores */
    if (n_splits <= 1 && tc_applies(mn, sh) &&
        (sh.half_dt == CUK_BF16
             ? launch_tc<__nv_bfloat16>(mn, out, ldo, q, ldq, k, v, ldkv, seqs_dev, n_seqs, pg, sh, lse, s)
             : launch_tc<__half>(mn, out, ldo, q, ldq, k, v, ldkv, seqs_dev, n_seqs, pg, sh, lse, s)))
        return;
    size_t smem = fwd_smem(sh.head_dim);
    RAISE_SMEM(k_attn_fwd, smem);
    if (n_splits < 1) n_splits = 1;
    dim3 grid(cu_blocks(mn, AT_Q) * (unsigned)n_splits, (unsigned)sh.n_heads, (unsigned)n_seqs);
    CU_LAUNCH(k_attn_fwd, grid, AT_THREADS, smem, s, out, ldo, q, ldq, k, v, ldkv, seqs_dev, pg,
              sh, lse, n_splits, part);
    if (n_splits > 1)
        CU_LAUNCH_NOSYNC(k_attn_combine, cu_blocks(sh.rows * sh.n_heads, 128), 128, 0, s, out, ldo,
                         lse, part, n_splits, sh.rows, sh.n_heads, sh.head_dim);
}

void cuk_attention_backward(float *dq, int64_t lddq, float *dk, float *dv, int64_t lddkv,
                            const float *dout, int64_t lddo, const float *q, int64_t ldq,
                            const float *k, const float *v, int64_t ldkv, const float *o,
                            int64_t ldo, const float *lse, float *drow,
                            const cuk_attn_seq *seqs_dev, const cuk_attn_seq *seqs_host,
                            int n_seqs, cuk_attn_shape sh, cudaStream_t s)
{
    if (n_seqs == 0) return;
    int64_t rows = 0;
    for (int i = 0; i < n_seqs; i++) {
        int64_t end = seqs_host[i].q_row0 + seqs_host[i].n_new;
        rows = end > rows ? end : rows;
    }
    CU_LAUNCH_NOSYNC(k_attn_drow, cu_blocks(rows * sh.n_heads, 256), 256, 0, s, drow, dout, lddo, o,
              ldo, rows, sh.n_heads, sh.head_dim);
    int64_t mn = max_new(seqs_host, n_seqs);
    if (tc_applies(mn, sh)) {
        bool bf = sh.half_dt == CUK_BF16;
        if (sh.head_dim == 64 && bf)
            launch_tc_backward<64, __nv_bfloat16>(dq, lddq, dk, dv, lddkv, dout, lddo, q, ldq, k, v,
                                                  ldkv, lse, drow, seqs_dev, seqs_host, n_seqs, sh, s);
        else if (sh.head_dim == 64)
            launch_tc_backward<64, __half>(dq, lddq, dk, dv, lddkv, dout, lddo, q, ldq, k, v, ldkv,
                                           lse, drow, seqs_dev, seqs_host, n_seqs, sh, s);
        else if (bf)
            launch_tc_backward<128, __nv_bfloat16>(dq, lddq, dk, dv, lddkv, dout, lddo, q, ldq, k,
                                                   v, ldkv, lse, drow, seqs_dev, seqs_host, n_seqs,
                                                   sh, s);
        else
            launch_tc_backward<128, __half>(dq, lddq, dk, dv, lddkv, dout, lddo, q, ldq, k, v, ldkv,
                                            lse, drow, seqs_dev, seqs_host, n_seqs, sh, s);
    } else {
        size_t smem_kv = dkdv_smem(sh.head_dim), smem_q = dq_smem(sh.head_dim);
        RAISE_SMEM(k_attn_dkdv, smem_kv);
        RAISE_SMEM(k_attn_dq, smem_q);
        dim3 gkv(cu_blocks(max_keys(seqs_host, n_seqs), AB_K), (unsigned)sh.n_kv_heads,
                 (unsigned)n_seqs);
        CU_LAUNCH(k_attn_dkdv, gkv, AT_THREADS, smem_kv, s, dk, dv, lddkv, dout, lddo, q, ldq, k, v,
                  ldkv, lse, drow, seqs_dev, sh);
        dim3 gq(cu_blocks(mn, AT_Q), (unsigned)sh.n_heads, (unsigned)n_seqs);
        CU_LAUNCH(k_attn_dq, gq, AT_THREADS, smem_q, s, dq, lddq, dout, lddo, q, ldq, k, v, ldkv,
                  lse, drow, seqs_dev, sh);
    }
    int64_t width = (int64_t)sh.n_kv_heads * sh.head_dim;
    for (int i = 0; i < n_seqs; i++) {
        const cuk_attn_seq *sq = &seqs_host[i];
        if (sq->n_pre <= 0) continue;
        CU_LAUNCH_NOSYNC(k_prefix_add, cu_blocks(sq->n_pre * width, 256), 256, 0, s, dk, dv, lddkv,
                  sq->pre_dk, sq->pre_dv, sq->pre_row0, sq->n_pre, width);
    }
}

} /* extern "C" */

/* grid (positions x width, layers): page dst's first n positions = src's */
__global__ void k_pages_copy(cuk_pages pg, int32_t dst, int32_t src, int64_t n)
{
    pg.layer = blockIdx.y;
    void *kd = pg.k_slabs[dst / pg.slab_pages], *vd = pg.v_slabs[dst / pg.slab_pages];
    const void *ks = pg.k_slabs[src / pg.slab_pages], *vs = pg.v_slabs[src / pg.slab_pages];
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n * pg.width;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t pos = e / pg.width, c = e % pg.width;
        page_store(kd, pg.dt, page_index(pg, dst, pos, c), page_load(ks, pg.dt, page_index(pg, src, pos, c)));
        page_store(vd, pg.dt, page_index(pg, dst, pos, c), page_load(vs, pg.dt, page_index(pg, src, pos, c)));
    }
}

extern "C" void cuk_pages_copy(cuk_pages pg, int n_layers, int32_t dst, int32_t src, int64_t n,
                               cudaStream_t s)
{
    if (n <= 0) return;
    CU_LAUNCH_NOSYNC(k_pages_copy, dim3(cu_blocks(n * pg.width, 256), (unsigned)n_layers), 256, 0,
                     s, pg, dst, src, n);
}
