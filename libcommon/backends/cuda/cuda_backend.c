/* cuda_backend.c — backends layer: the CUDA backend's memory, matrix
 * products (cuBLAS) and forward operations (kernels in the .cu files).
 * Activations are float32; weight matrices are stored bf16 (default), f16
 * or f32; products run on tensor cores with float32 accumulation (f32
 * weights: plain float32, no TF32). Tested against the CPU backend, which
 * defines every operation (tests/unit/test_cuda_backend.c). */
#include "cuda_check.h"
#include "cuda_internal.h"
#include "err.h"
#include "log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

/* ------------------------------------------------------------- checks -- */

_Noreturn void cu_die_cuda(const char *file, int line, const char *call, cudaError_t e)
{
    err_die_at(file, line, "%s:%d: %s failed: %s (%s)", file, line, call, cudaGetErrorString(e),
               cudaGetErrorName(e));
}

_Noreturn void cu_die_cublas(const char *file, int line, const char *call, cublasStatus_t s)
{
    err_die_at(file, line, "%s:%d: %s failed: %s", file, line, call, cublasGetStatusString(s));
}

int cu_error_at(const char *file, int line, const char *call, cudaError_t e)
{
    return err_set_at(file, line, "%s failed: %s (%s)", call, cudaGetErrorString(e),
                      cudaGetErrorName(e));
}

/* ------------------------------------------------------------- memory -- */

void cu_release(cu_state *st, void *p, size_t bytes)
{
    if (!p) return;
    CU_CHECK(cudaStreamSynchronize(st->stream));
    CU_CHECK(cudaFree(p));
    st->held -= bytes;
}

static void cache_release(cu_state *st)
{
    if (st->n_cache == 0) return;
    for (int i = 0; i < st->n_cache; i++) cu_release(st, st->cache[i].p, st->cache[i].bytes);
    st->n_cache = 0;
    st->cache_bytes = 0;
}

_Noreturn static void die_out_of_memory(cu_state *st, size_t bytes)
{
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    DIE("out of GPU memory: %.1f MiB more needed on GPU %d (%s), %.1f of %.1f MiB free. Lower "
        "--batch (generation) or --micro-batch / --max-length (training), train with --shard "
        "across more GPUs, or run with --device cpu",
        (double)bytes / 1048576.0, st->device, st->gpu_name, (double)free_b / 1048576.0,
        (double)total_b / 1048576.0);
}

void *cu_alloc(cu_state *st, size_t bytes)
{
    void *p = NULL;
    if (bytes == 0) bytes = 16;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();   /* clear the sticky-free error state */
        cache_release(st);
        e = cudaMalloc(&p, bytes);
    }
    if (e == cudaErrorMemoryAllocation) die_out_of_memory(st, bytes);
    CU_CHECK(e);
    st->held += bytes;
    if (st->held > st->held_peak) st->held_peak = st->held;
    return p;
}

/* Keep up to this much freed memory for reuse. */
#define CU_CACHE_MAX ((size_t)8 << 30)

void cu_free(cu_state *st, void *p, size_t bytes)
{
    if (!p) return;
    if (st->cache_bytes + bytes > CU_CACHE_MAX) {
        cu_release(st, p, bytes);
        return;
    }
    if (st->n_cache == st->cap_cache) {
        st->cap_cache = st->cap_cache ? 2 * st->cap_cache : 64;
        st->cache = xrealloc(st->cache, sizeof(cu_block) * (size_t)st->cap_cache);
    }
    st->cache[st->n_cache++] = (cu_block){p, bytes};
    st->cache_bytes += bytes;
}

/* A cached block of exactly `bytes`, or a new one. Reuse is safe: every
 * operation runs in order on the one stream. */
static void *cu_get(cu_state *st, size_t bytes)
{
    for (int i = st->n_cache - 1; i >= 0; i--)
        if (st->cache[i].bytes == bytes) {
            void *p = st->cache[i].p;
            st->cache[i] = st->cache[--st->n_cache];
            st->cache_bytes -= bytes;
            return p;
        }
    return cu_alloc(st, bytes);
}

void *cu_scratch_get(cu_state *st, cu_scratch *s, size_t bytes)
{
    if (bytes <= s->bytes) return s->p;
    cu_release(st, s->p, s->bytes);
    size_t grow = s->bytes + s->bytes / 2;
    s->bytes = bytes > grow ? bytes : grow;
    s->p = cu_alloc(st, s->bytes);
    return s->p;
}

void cu_arena_begin(cu_state *st, size_t bytes)
{
    size_t want = bytes + 16 * CU_ARENA_PIECES;
    if (want < ((size_t)1 << 20)) want = (size_t)1 << 20;
    cu_scratch_get(st, &st->arena, want);
    st->arena_used = 0;
}

void *cu_arena_alloc(cu_state *st, size_t bytes)
{
    size_t at = (st->arena_used + 15) & ~(size_t)15;
    if (at + bytes > st->arena.bytes)
        DIE("CUDA backend: an operation took more upload space than it reserved");
    st->arena_used = at + bytes;
    return (char *)st->arena.p + at;
}

void *cu_arena_put(cu_state *st, const void *host, size_t bytes)
{
    void *d = cu_arena_alloc(st, bytes);
    if (bytes) CU_CHECK(cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, st->stream));
    return d;
}

const void *cu_upload_cached(cu_state *st, cu_cached *c, const void *host, size_t bytes)
{
    if (c->dev && bytes == c->bytes && memcmp(c->host, host, bytes) == 0) return c->dev;
    if (bytes > c->cap) {
        cu_free(st, c->dev, c->cap);
        free(c->host);
        c->cap = bytes + bytes / 2 + 64;
        c->dev = cu_alloc(st, c->cap);
        c->host = xmalloc(c->cap);
    }
    memcpy(c->host, host, bytes);
    c->bytes = bytes;
    /* ordered after the kernels that read the previous contents */
    if (bytes) CU_CHECK(cudaMemcpyAsync(c->dev, host, bytes, cudaMemcpyHostToDevice, st->stream));
    return c->dev;
}

void cu_download_bytes(cu_state *st, void *host, const void *dev, size_t bytes)
{
    if (bytes) CU_CHECK(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, st->stream));
    CU_CHECK(cudaStreamSynchronize(st->stream));
}

static be_mat cu_mat_new(be_backend *be, int64_t rows, int64_t cols)
{
    cu_state *st = cu_st(be);
    size_t bytes = sizeof(float) * (size_t)(rows * cols);
    be_mat m = {cu_get(st, bytes ? bytes : 16), rows, cols, cols};
    if (bytes) CU_CHECK(cudaMemsetAsync(m.data, 0, bytes, st->stream));
    return m;
}

static void cu_mat_free(be_backend *be, be_mat *m)
{
    size_t bytes = sizeof(float) * (size_t)(m->rows * m->cols);
    if (m->data) cu_free(cu_st(be), m->data, bytes ? bytes : 16);
    m->data = NULL;
    m->rows = m->cols = m->ld = 0;
}

static void cu_upload(be_backend *be, be_mat dst, const float *host)
{
    if (dst.rows * dst.cols == 0) return;
    CU_CHECK(cudaMemcpy2DAsync(dst.data, sizeof(float) * dst.ld, host, sizeof(float) * dst.cols,
                               sizeof(float) * dst.cols, dst.rows, cudaMemcpyHostToDevice,
                               cu_st(be)->stream));
}

static void cu_download(be_backend *be, be_mat src, float *host)
{
    cu_state *st = cu_st(be);
    if (src.rows * src.cols == 0) return;
    CU_CHECK(cudaMemcpy2DAsync(host, sizeof(float) * src.cols, src.data, sizeof(float) * src.ld,
                               sizeof(float) * src.cols, src.rows, cudaMemcpyDeviceToHost,
                               st->stream));
    CU_CHECK(cudaStreamSynchronize(st->stream));
}

static void cu_copy(be_backend *be, be_mat dst, be_mat src)
{
    if (src.rows * src.cols == 0) return;
    CU_CHECK(cudaMemcpy2DAsync(dst.data, sizeof(float) * dst.ld, src.data, sizeof(float) * src.ld,
                               sizeof(float) * src.cols, src.rows, cudaMemcpyDeviceToDevice,
                               cu_st(be)->stream));
}

/* ------------------------------------------------------------ weights -- */

static size_t dtype_size(cuk_dtype dt) { return dt == CUK_F32 ? 4 : 2; }

/* Converts host float32 into the weight's storage through a float32
 * staging buffer, a slice at a time (a 7B model's largest matrix would
 * need 500 MB of staging at once). */
static void weight_upload(cu_state *st, cu_weight *w, const float *host, int64_t n)
{
    if (w->dt == CUK_F32) {
        CU_CHECK(cudaMemcpyAsync(w->dev, host, sizeof(float) * (size_t)n, cudaMemcpyHostToDevice,
                                 st->stream));
        return;
    }
    const int64_t slice = (int64_t)1 << 22;
    float *stage = cu_scratch_get(st, &st->bw[3], sizeof(float) * (size_t)(n < slice ? n : slice));
    for (int64_t i = 0; i < n; i += slice) {
        int64_t len = n - i < slice ? n - i : slice;
        CU_CHECK(cudaMemcpyAsync(stage, host + i, sizeof(float) * (size_t)len,
                                 cudaMemcpyHostToDevice, st->stream));
        cuk_convert_from_f32((char *)w->dev + (size_t)i * dtype_size(w->dt), w->dt, stage, len, 1,
                             len, st->stream);
    }
    CU_CHECK_LAUNCH();
}

static int cu_weight_new(be_backend *be, const float *host, int64_t rows, int64_t cols,
                         be_weight *out)
{
    cu_state *st = cu_st(be);
    cu_weight *w = xcalloc(1, sizeof *w);
    w->dt = rows > 1 ? st->wdt : CUK_F32;
    size_t n = (size_t)(rows * cols);
    w->dev = cu_alloc(st, n * dtype_size(w->dt));
    weight_upload(st, w, host, (int64_t)n);
    out->data = w;
    out->rows = rows;
    out->cols = cols;
    return 0;
}

static void cu_weight_free(be_backend *be, be_weight *w)
{
    cu_weight *cw = w->data;
    if (!cw) return;
    cu_release(cu_st(be), cw->dev, dtype_size(cw->dt) * (size_t)(w->rows * w->cols));
    free(cw);
    w->data = NULL;
}

static void cu_weight_set(be_backend *be, be_weight *w, const float *host)
{
    weight_upload(cu_st(be), w->data, host, w->rows * w->cols);
}

static void cu_weight_get(be_backend *be, const be_weight *w, float *host)
{
    cu_state *st = cu_st(be);
    const cu_weight *cw = cu_w(w);
    int64_t n = w->rows * w->cols;
    if (cw->dt == CUK_F32) {
        cu_download_bytes(st, host, cw->dev, sizeof(float) * (size_t)n);
        return;
    }
    float *tmp = cu_scratch_get(st, &st->bw[3], sizeof(float) * (size_t)(n ? n : 1));
    cuk_convert_to_f32(tmp, n, cw->dev, cw->dt, 1, n, st->stream);
    CU_CHECK_LAUNCH();
    cu_download_bytes(st, host, tmp, sizeof(float) * (size_t)n);
}

/* ----------------------------------------------------------- products -- */

static cudaDataType blas_type(cuk_dtype dt)
{
    return dt == CUK_BF16 ? CUDA_R_16BF : dt == CUK_F16 ? CUDA_R_16F : CUDA_R_32F;
}

/* An operand as cuBLAS takes it: its pointer, leading dimension and type,
 * converted into scratch `slot` when it is float32 but the product runs in
 * the weight type. rows x cols: the operand as stored (row-major). */
static const void *gemm_operand(cu_state *st, cu_operand o, int64_t rows, int64_t cols,
                                cuk_dtype want, int slot, int64_t *ld)
{
    if (o.w) {
        *ld = o.w_cols;
        return o.w->dev;
    }
    if (want == CUK_F32) {
        *ld = o.ld;
        return o.p;
    }
    cu_conv_key *key = &st->conv_key[slot];
    *ld = cols;
    if (key->valid && key->src == o.p && key->rows == rows && key->cols == cols &&
        key->ld == o.ld && key->dt == want && key->gen == st->gen)
        return st->conv[slot].p;
    void *dst = cu_scratch_get(st, &st->conv[slot], dtype_size(want) * (size_t)(rows * cols));
    cuk_convert_from_f32(dst, want, o.p, o.ld, rows, cols, st->stream);
    CU_CHECK_LAUNCH();
    *key = (cu_conv_key){o.p, rows, cols, o.ld, want, st->gen, true};
    return dst;
}

/* A product wrote c [rows, ldc]: a converted copy of memory it overlaps is stale. */
static void conv_written(cu_state *st, const float *c, int64_t rows, int64_t ldc)
{
    for (int i = 0; i < CU_CONV_N; i++) {
        cu_conv_key *k = &st->conv_key[i];
        if (!k->valid) continue;
        const float *lo = k->src, *hi = k->src + (k->rows - 1) * k->ld + k->cols;
        if (lo < c + rows * ldc && c < hi) k->valid = false;
    }
}

void cu_gemm(cu_state *st, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
             cu_operand a, cu_operand b, float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0) return;
    /* the product's input type: the weight's, or float32 between activations
     * of an f32 backend; two activations meet in the backend's weight type */
    cuk_dtype dt = a.w ? a.w->dt : b.w ? b.w->dt : st->wdt;
    int64_t lda, ldb;
    const void *pa = gemm_operand(st, a, ta ? k : m, ta ? m : k, dt, CU_CONV_A, &lda);
    const void *pb = gemm_operand(st, b, tb ? n : k, tb ? k : n, dt, CU_CONV_B, &ldb);
    /* row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T */
    CUBLAS_CHECK(cublasGemmEx(st->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                              ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &alpha, pb,
                              blas_type(dt), (int)ldb, pa, blas_type(dt), (int)lda, &beta, c,
                              CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    conv_written(st, c, m, ldc);
}

/* y [M, N] (+)= x [M, K] W [N, K]^T (+ bias) */
static void cu_linear(be_backend *be, be_mat y, be_mat x, const be_weight *w,
                      const be_weight *bias, bool accumulate)
{
    cu_state *st = cu_st_product(be);
    cu_gemm(st, false, true, x.rows, w->rows, w->cols, 1.0f, cu_act(&x), cu_wop(w),
            accumulate ? 1.0f : 0.0f, y.data, y.ld);
    if (bias) cuk_add_bias(y.data, y.ld, y.rows, y.cols, cu_w(bias)->dev, st->stream);
    CU_CHECK_LAUNCH();
}

/* ------------------------------------------------------- elementwise -- */

static void cu_rmsnorm(be_backend *be, be_mat y, be_mat x, const be_weight *w, float eps)
{
    cuk_rmsnorm(y.data, y.ld, x.data, x.ld, x.rows, x.cols, cu_w(w)->dev, eps, cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_layernorm(be_backend *be, be_mat y, be_mat x, const be_weight *w,
                         const be_weight *b, float eps)
{
    cuk_layernorm(y.data, y.ld, x.data, x.ld, x.rows, x.cols, cu_w(w)->dev, cu_w(b)->dev, eps,
                  cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_add(be_backend *be, be_mat y, be_mat x)
{
    cuk_add(y.data, y.ld, x.data, x.ld, x.rows, x.cols, cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_add_rows(be_backend *be, be_mat y, const be_weight *v, int64_t v_row0)
{
    const cu_weight *cw = cu_w(v);
    cuk_add_rows(y.data, y.ld, y.rows, y.cols, cw->dev, cw->dt, v_row0, cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_gelu_erf(be_backend *be, be_mat x)
{
    cuk_gelu_erf(x.data, x.ld, x.rows, x.cols, cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_quick_gelu(be_backend *be, be_mat x)
{
    cuk_quick_gelu(x.data, x.ld, x.rows, x.cols, cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_silu_mul(be_backend *be, be_mat out, be_mat gate, be_mat up)
{
    cuk_silu_mul(out.data, out.ld, gate.data, gate.ld, up.data, up.ld, out.rows, out.cols,
                 cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_embed(be_backend *be, be_mat out, const be_weight *table, const int32_t *ids)
{
    cu_state *st = cu_st(be);
    cu_arena_begin(st, sizeof(int32_t) * (size_t)out.rows);
    const int32_t *d_ids = cu_arena_put(st, ids, sizeof(int32_t) * (size_t)out.rows);
    const cu_weight *cw = cu_w(table);
    cuk_embed(out.data, out.ld, out.rows, out.cols, cw->dev, cw->dt, d_ids, st->stream);
    CU_CHECK_LAUNCH();
}

const float *cu_rope_freq(cu_state *st, int head_dim, double theta)
{
    if (st->rope_freq && st->rope_hd == head_dim && st->rope_theta == theta) return st->rope_freq;
    int half = head_dim / 2;
    float *host = xmalloc(sizeof(float) * (size_t)(half ? half : 1));
    /* float32 exactly as the CPU backend computes them */
    for (int i = 0; i < half; i++)
        host[i] = 1.0f / powf((float)theta, (float)(2 * i) / (float)head_dim);
    cu_release(st, st->rope_freq, sizeof(float) * (size_t)(st->rope_hd / 2 ? st->rope_hd / 2 : 1));
    st->rope_freq = cu_alloc(st, sizeof(float) * (size_t)(half ? half : 1));
    CU_CHECK(cudaMemcpy(st->rope_freq, host, sizeof(float) * (size_t)half, cudaMemcpyHostToDevice));
    free(host);
    st->rope_hd = head_dim;
    st->rope_theta = theta;
    return st->rope_freq;
}

static void cu_rope(be_backend *be, be_mat x, int n_heads, int head_dim, const int32_t *positions,
                    double theta)
{
    cu_state *st = cu_st(be);
    const float *freq = cu_rope_freq(st, head_dim, theta);
    const int32_t *d_pos = cu_upload_cached(st, &st->pos_up, positions, sizeof(int32_t) * (size_t)x.rows);
    cuk_rope(x.data, x.ld, x.rows, n_heads, head_dim, d_pos, freq, 1.0f, st->stream);
    CU_CHECK_LAUNCH();
}

/* ---------------------------------------------------------- attention -- */

cuk_attn_shape cu_attn_shape(be_attn_shape sh, int64_t rows, cuk_dtype half_dt)
{
    cuk_attn_shape s = {sh.n_heads, sh.n_kv_heads, sh.head_dim, sh.causal ? 1 : 0, sh.scale, rows,
                        half_dt};
    return s;
}

static int64_t seq_pages(const be_attn_seq *s)
{
    return s->pages ? (s->n_past + s->n_new + s->pages->page - 1) / s->pages->page : 0;
}

cuk_attn_seq *cu_attn_host(cu_state *st, const be_attn_seq *seqs, int n_seqs)
{
    int64_t n_ids = 0;
    for (int i = 0; i < n_seqs; i++) n_ids += seq_pages(&seqs[i]);
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)(n_ids ? n_ids : 1));
    n_ids = 0;
    for (int i = 0; i < n_seqs; i++) {
        memcpy(ids + n_ids, seqs[i].page_ids, sizeof(int32_t) * (size_t)seq_pages(&seqs[i]));
        n_ids += seq_pages(&seqs[i]);
    }
    const int32_t *dev = cu_upload_cached(st, &st->pages_up, ids, sizeof(int32_t) * (size_t)n_ids);
    free(ids);
    cuk_attn_seq *h = xcalloc((size_t)(n_seqs ? n_seqs : 1), sizeof *h);
    n_ids = 0;
    for (int i = 0; i < n_seqs; i++) {
        const be_attn_seq *s = &seqs[i];
        h[i] = (cuk_attn_seq){s->q_row0, s->n_new, s->n_past, s->pre_row0, s->n_pre,
                              s->pages ? dev + n_ids : NULL, NULL, NULL};
        n_ids += seq_pages(s);
    }
    return h;
}

cuk_pages cu_attn_pages(const be_attn_seq *seqs, int n_seqs)
{
    for (int i = 0; i < n_seqs; i++)
        if (seqs[i].pages) return cu_pages_view(seqs[i].pages, seqs[i].layer);
    cuk_pages none = {0};
    return none;
}

static void check_attention_smem(cu_state *st, int head_dim)
{
    static size_t limit;
    if (!limit) {
        struct cudaDeviceProp p;
        CU_CHECK(cudaGetDeviceProperties(&p, st->device));
        limit = p.sharedMemPerBlockOptin;
    }
    if (cuk_attention_smem(head_dim) > limit)
        DIE("attention with head_dim %d needs %zu bytes of shared memory per block; GPU %d (%s) "
            "has %zu: this model cannot run on the CUDA backend (use --device cpu)",
            head_dim, cuk_attention_smem(head_dim), st->device, st->gpu_name, limit);
}

static void cu_attention(be_backend *be, be_mat out, be_mat q, be_mat k, be_mat v,
                         const be_attn_seq *seqs, int n_seqs, be_attn_shape sh)
{
    cu_state *st = cu_st(be);
    check_attention_smem(st, sh.head_dim);
    cuk_attn_seq *host = cu_attn_host(st, seqs, n_seqs);
    const cuk_attn_seq *dev = cu_upload_cached(st, &st->seq_up, host, sizeof *host * (size_t)n_seqs);
    cuk_attn_shape ks = cu_attn_shape(sh, q.rows, st->wdt);
    int splits = cuk_attention_splits(host, n_seqs, ks, st->n_sms);
    float *part = NULL;
    if (splits > 1)
        part = cu_scratch_get(st, &st->attn_part, sizeof(float) * (size_t)splits *
                                                      (size_t)(q.rows * sh.n_heads * (sh.head_dim + 2)));
    cuk_attention(out.data, out.ld, q.data, q.ld, k.data, v.data, k.ld, dev, host, n_seqs,
                  cu_attn_pages(seqs, n_seqs), ks, NULL, splits, part, st->stream);
    CU_CHECK_LAUNCH();
    free(host);
}

/* ----------------------------------------------------- vocabulary rows -- */

static void cu_token_logprobs(be_backend *be, be_mat logits, const int32_t *target,
                              float *out_logp, int32_t *argmax)
{
    cu_state *st = cu_st(be);
    int64_t R = logits.rows;
    if (R == 0) return;
    cu_arena_begin(st, 3 * sizeof(int32_t) * (size_t)R);
    const int32_t *d_t = out_logp && target ? cu_arena_put(st, target, sizeof(int32_t) * (size_t)R)
                                            : NULL;
    float *d_lp = out_logp ? cu_arena_alloc(st, sizeof(float) * (size_t)R) : NULL;
    int32_t *d_am = argmax ? cu_arena_alloc(st, sizeof(int32_t) * (size_t)R) : NULL;
    cuk_token_logprobs(logits.data, logits.ld, R, logits.cols, d_t, d_lp, d_am, st->stream);
    CU_CHECK_LAUNCH();
    if (out_logp) CU_CHECK(cudaMemcpyAsync(out_logp, d_lp, sizeof(float) * (size_t)R,
                                           cudaMemcpyDeviceToHost, st->stream));
    if (argmax) CU_CHECK(cudaMemcpyAsync(argmax, d_am, sizeof(int32_t) * (size_t)R,
                                         cudaMemcpyDeviceToHost, st->stream));
    CU_CHECK(cudaStreamSynchronize(st->stream));
}

/* ---------------------------------------------------------- lifecycle -- */

static void cu_mem_stats(be_backend *be, size_t *in_use, size_t *peak)
{
    cu_state *st = cu_st(be);
    if (in_use) *in_use = st->held - st->cache_bytes;
    if (peak) *peak = st->held_peak;
}

static void cu_destroy(be_backend *be)
{
    cu_state *st = cu_st(be);
    cudaStreamSynchronize(st->stream);
    cu_comm_free(st);
    for (int i = 0; i < st->n_cache; i++) cudaFree(st->cache[i].p);
    free(st->cache);
    for (int i = 0; i < CU_CONV_N; i++) cudaFree(st->conv[i].p);
    for (int i = 0; i < 4; i++) cudaFree(st->bw[i].p);
    cudaFree(st->attn_part.p);
    cudaFree(st->arena.p);
    cudaFree(st->rope_freq);
    cu_cached *cached[] = {&st->pos_up, &st->seq_up, &st->pages_up};
    for (int i = 0; i < 3; i++) {
        cudaFree(cached[i]->dev);
        free(cached[i]->host);
    }
    cublasDestroy(st->blas);
    cudaStreamDestroy(st->stream);
    free(st);
    free(be);
}

static cuk_dtype kernel_dtype(be_dtype d)
{
    return d == BE_F32 ? CUK_F32 : d == BE_F16 ? CUK_F16 : CUK_BF16;
}

static int cu_init_state(cu_state *st, int device, be_dtype weights)
{
    struct cudaDeviceProp p;
    st->device = device;
    st->wdt = kernel_dtype(weights);
    CU_TRY(cudaSetDevice(device));
    CU_TRY(cudaGetDeviceProperties(&p, device));
    snprintf(st->gpu_name, sizeof st->gpu_name, "%s", p.name);
    st->n_sms = p.multiProcessorCount;
    CU_TRY(cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking));
    cublasStatus_t bs = cublasCreate(&st->blas);
    if (bs != CUBLAS_STATUS_SUCCESS)
        return ERR("cublasCreate failed on GPU %d: %s", device, cublasGetStatusString(bs));
    CUBLAS_CHECK(cublasSetStream(st->blas, st->stream));
    /* float32 products stay float32: no TF32 */
    CUBLAS_CHECK(cublasSetMathMode(st->blas, CUBLAS_DEFAULT_MATH));
    log_debug("CUDA backend on GPU %d (%s, %.1f GiB), weights %s", device, p.name,
              (double)p.totalGlobalMem / 1073741824.0, weights == BE_F32   ? "f32"
                                                        : weights == BE_F16 ? "f16"
                                                                            : "bf16");
    return 0;
}

static be_backend *cu_create(int device, be_dtype weights)
{
    cu_state *st = xcalloc(1, sizeof *st);
    if (cu_init_state(st, device, weights) != 0) {
        free(st);
        return NULL;
    }
    be_backend *be = xcalloc(1, sizeof *be);
    be->name = "cuda";
    be->impl = st;
    be->mat_new = cu_mat_new;
    be->mat_free = cu_mat_free;
    be->upload = cu_upload;
    be->download = cu_download;
    be->copy = cu_copy;
    be->weight_new = cu_weight_new;
    be->weight_free = cu_weight_free;
    be->linear = cu_linear;
    be->rmsnorm = cu_rmsnorm;
    be->layernorm = cu_layernorm;
    be->add = cu_add;
    be->add_rows = cu_add_rows;
    be->gelu_erf = cu_gelu_erf;
    be->quick_gelu = cu_quick_gelu;
    be->silu_mul = cu_silu_mul;
    be->embed = cu_embed;
    be->rope = cu_rope;
    be->attention = cu_attention;
    be->token_logprobs = cu_token_logprobs;
    be->weight_set = cu_weight_set;
    be->weight_get = cu_weight_get;
    be->mem_stats = cu_mem_stats;
    be->destroy = cu_destroy;
    cu_train_install(be);
    cu_comm_install(be);
    cu_kv_install(be);
    return be;
}

static int cu_device_count(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        ERR("no CUDA GPU: %s", cudaGetErrorString(e));
        return 0;
    }
    if (n == 0) ERR("no CUDA GPU is visible");
    return n;
}

static const be_gpu_impl cu_impl = {"cuda", cu_device_count, cu_create};

const be_gpu_impl *be_cuda_impl(void) { return &cu_impl; }
