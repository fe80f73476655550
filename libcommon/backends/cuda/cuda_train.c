/* cuda_train.c — backends layer: the CUDA backend's backward operations
 * (see be_backend in backend.h; each adds into its outputs). Products run
 * through cu_gemm, the rest in the kernels of cuda_backward.cu and
 * cuda_attention.cu, which sum in a fixed order: two runs of a training
 * step give the same bits. */
#include "cuda_check.h"
#include "cuda_internal.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

enum { BW_INV = 0, BW_STATS = 1, BW_ATTN = 2 };

static void cu_scale(be_backend *be, be_mat x, float s)
{
    cuk_scale(x.data, x.ld, x.rows, x.cols, s, cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

/* dx [M, K] += dy [M, N] . W [N, K] */
static void cu_linear_dx(be_backend *be, be_mat dx, be_mat dy, const be_weight *w)
{
    cu_gemm(cu_st_product(be), false, false, dy.rows, w->cols, w->rows, 1.0f, cu_act(&dy), cu_wop(w), 1.0f,
            dx.data, dx.ld);
}

/* dW [N, K] += dy^T [N, M] . x [M, K]; db [N] += column sums of dy */
static void cu_linear_dw(be_backend *be, be_mat dw, be_mat db, be_mat dy, be_mat x)
{
    cu_state *st = cu_st_product(be);
    if (dy.rows == 0) return;
    cu_gemm(st, true, false, dy.cols, x.cols, dy.rows, 1.0f, cu_act(&dy), cu_act(&x), 1.0f,
            dw.data, dw.ld);
    if (db.data) cuk_col_sums(db.data, dy.data, dy.ld, dy.rows, dy.cols, st->stream);
    CU_CHECK_LAUNCH();
}

static void cu_rmsnorm_backward(be_backend *be, be_mat dx, be_mat dw, be_mat dy, be_mat x,
                                const be_weight *w, float eps)
{
    cu_state *st = cu_st(be);
    float *inv = cu_scratch_get(st, &st->bw[BW_INV], sizeof(float) * (size_t)(x.rows + 1));
    cuk_rmsnorm_backward(dx.data, dx.ld, dw.data, dy.data, dy.ld, x.data, x.ld, x.rows, x.cols,
                         cu_w(w)->dev, eps, inv, st->stream);
    CU_CHECK_LAUNCH();
}

static void cu_layernorm_backward(be_backend *be, be_mat dx, be_mat dw, be_mat db, be_mat dy,
                                  be_mat x, const be_weight *w, float eps)
{
    cu_state *st = cu_st(be);
    double *stats = cu_scratch_get(st, &st->bw[BW_STATS], sizeof(double) * (size_t)(2 * x.rows + 2));
    cuk_layernorm_backward(dx.data, dx.ld, dw.data, db.data, dy.data, dy.ld, x.data, x.ld, x.rows,
                           x.cols, cu_w(w)->dev, eps, stats, st->stream);
    CU_CHECK_LAUNCH();
}

static void cu_gelu_erf_backward(be_backend *be, be_mat dx, be_mat dy, be_mat x)
{
    cuk_gelu_erf_backward(dx.data, dx.ld, dy.data, dy.ld, x.data, x.ld, x.rows, x.cols,
                          cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_quick_gelu_backward(be_backend *be, be_mat dx, be_mat dy, be_mat x)
{
    cuk_quick_gelu_backward(dx.data, dx.ld, dy.data, dy.ld, x.data, x.ld, x.rows, x.cols,
                            cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_silu_mul_backward(be_backend *be, be_mat dgate, be_mat dup, be_mat dout,
                                 be_mat gate, be_mat up)
{
    cuk_silu_mul_backward(dgate.data, dgate.ld, dup.data, dup.ld, dout.data, dout.ld, gate.data,
                          gate.ld, up.data, up.ld, gate.rows, gate.cols, cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_embed_backward(be_backend *be, be_mat dtable, be_mat dy, const int32_t *ids)
{
    cu_state *st = cu_st(be);
    cu_arena_begin(st, sizeof(int32_t) * (size_t)dy.rows);
    const int32_t *d_ids = cu_arena_put(st, ids, sizeof(int32_t) * (size_t)dy.rows);
    cuk_embed_backward(dtable.data, dtable.ld, dy.data, dy.ld, dy.rows, dy.cols, d_ids,
                       st->stream);
    CU_CHECK_LAUNCH();
}

static void cu_rope_backward(be_backend *be, be_mat dx, int n_heads, int head_dim,
                             const int32_t *positions, double theta)
{
    cu_state *st = cu_st(be);
    const float *freq = cu_rope_freq(st, head_dim, theta);
    const int32_t *d_pos = cu_upload_cached(st, &st->pos_up, positions, sizeof(int32_t) * (size_t)dx.rows);
    cuk_rope(dx.data, dx.ld, dx.rows, n_heads, head_dim, d_pos, freq, -1.0f, st->stream);
    CU_CHECK_LAUNCH();
}

/* The forward is recomputed first (its output and per-row log-sum-exp),
 * then dk/dv and dq by the flash-style backward kernels. */
static void cu_attention_backward(be_backend *be, be_mat dq, be_mat dk, be_mat dv, be_mat dout,
                                  be_mat q, be_mat k, be_mat v, const be_attn_seq *seqs,
                                  int n_seqs, be_attn_shape sh)
{
    cu_state *st = cu_st(be);
    if (n_seqs == 0) return;
    int64_t R = q.rows, kw = (int64_t)sh.n_kv_heads * sh.head_dim;
    for (int i = 0; i < n_seqs; i++)
        if (seqs[i].pages) DIE("attention_backward: sequence %d has a KV cache", i);
    if (dk.ld != dv.ld) DIE("attention_backward: dk and dv must have the same row stride");
    be_mat o = be->mat_new(be, R, (int64_t)sh.n_heads * sh.head_dim);
    float *stats = cu_scratch_get(st, &st->bw[BW_ATTN], 2 * sizeof(float) * (size_t)(R * sh.n_heads));
    float *lse = stats, *drow = stats + R * sh.n_heads;
    /* scratch for each sequence's share of its shared prefix's dk/dv */
    float **pre = xcalloc((size_t)n_seqs, sizeof(float *));
    size_t *pre_bytes = xcalloc((size_t)n_seqs, sizeof(size_t));
    cuk_attn_seq *host = cu_attn_host(st, seqs, n_seqs);
    for (int i = 0; i < n_seqs; i++) {
        if (seqs[i].n_pre <= 0) continue;
        pre_bytes[i] = 2 * sizeof(float) * (size_t)(seqs[i].n_pre * kw);
        pre[i] = cu_alloc(st, pre_bytes[i]);
        CU_CHECK(cudaMemsetAsync(pre[i], 0, pre_bytes[i], st->stream));
        host[i].pre_dk = pre[i];
        host[i].pre_dv = pre[i] + seqs[i].n_pre * kw;
    }
    const cuk_attn_seq *dev = cu_upload_cached(st, &st->seq_up, host, sizeof *host * (size_t)n_seqs);
    /* the forward recomputed by the kernels the backward pairs with (the
     * tensor cores' with half-precision weights, else float32): the
     * statistics of the same scores the backward computes */
    cuk_attn_shape ks = cu_attn_shape(sh, R, st->wdt);
    cuk_pages none = {0};
    cuk_attention(o.data, o.ld, q.data, q.ld, k.data, v.data, k.ld, dev, host, n_seqs, none, ks, lse,
                  1, NULL, st->stream);
    cuk_attention_backward(dq.data, dq.ld, dk.data, dv.data, dk.ld, dout.data, dout.ld, q.data,
                           q.ld, k.data, v.data, k.ld, o.data, o.ld, lse, drow, dev, host, n_seqs,
                           ks, st->stream);
    CU_CHECK_LAUNCH();
    for (int i = 0; i < n_seqs; i++)
        if (pre[i]) cu_free(st, pre[i], pre_bytes[i]);
    be->mat_free(be, &o);
    free(pre);
    free(pre_bytes);
    free(host);
}

static void cu_token_logprobs_backward(be_backend *be, be_mat dlogits, be_mat logits,
                                       const int32_t *target, const float *dlogp)
{
    cu_state *st = cu_st(be);
    int64_t R = logits.rows;
    if (R == 0) return;
    cu_arena_begin(st, (sizeof(int32_t) + sizeof(float)) * (size_t)R);
    const int32_t *d_t = cu_arena_put(st, target, sizeof(int32_t) * (size_t)R);
    const float *d_g = cu_arena_put(st, dlogp, sizeof(float) * (size_t)R);
    cuk_token_logprobs_backward(dlogits.data, dlogits.ld, logits.data, logits.ld, R, logits.cols,
                                d_t, d_g, st->stream);
    CU_CHECK_LAUNCH();
}

static void cu_best_other_token(be_backend *be, be_mat logits, const int32_t *exclude,
                                int32_t *out)
{
    cu_state *st = cu_st(be);
    int64_t R = logits.rows;
    if (R == 0) return;
    cu_arena_begin(st, 2 * sizeof(int32_t) * (size_t)R);
    const int32_t *d_x = cu_arena_put(st, exclude, sizeof(int32_t) * (size_t)R);
    int32_t *d_out = cu_arena_alloc(st, sizeof(int32_t) * (size_t)R);
    cuk_best_other(logits.data, logits.ld, R, logits.cols, d_x, d_out, st->stream);
    CU_CHECK_LAUNCH();
    cu_download_bytes(st, out, d_out, sizeof(int32_t) * (size_t)R);
}

/* ------------------------------------------------- optimizer on the GPU -- */

static void cu_axpy(be_backend *be, be_mat y, be_mat x, double a)
{
    cuk_axpy(y.data, y.ld, x.data, x.ld, y.rows, y.cols, a, cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void require_packed(be_mat x, const char *op)
{
    if (x.rows > 1 && x.ld != x.cols) DIE("%s: needs a packed matrix (ld %lld, %lld columns)", op,
                                          (long long)x.ld, (long long)x.cols);
}

static double cu_sum_squares(be_backend *be, be_mat x)
{
    cu_state *st = cu_st(be);
    require_packed(x, "sum_squares");
    double *scratch = cu_scratch_get(st, &st->bw[BW_STATS], cuk_sum_squares_scratch() + sizeof(double));
    double *out = scratch + cuk_sum_squares_scratch() / sizeof(double), host = 0;
    cuk_sum_squares(out, x.data, x.rows * x.cols, scratch, st->stream);
    CU_CHECK_LAUNCH();
    cu_download_bytes(st, &host, out, sizeof host);
    return host;
}

static void cu_adamw(be_backend *be, be_mat param, be_mat m, be_mat v, be_mat g,
                     const be_adamw_step *s)
{
    require_packed(param, "adamw");
    cuk_adamw(param.data, m.data, v.data, g.data, param.rows * param.cols, s->lr, s->beta1, s->beta2,
              s->eps, s->weight_decay, s->t, s->grad_scale, cu_st(be)->stream);
    CU_CHECK_LAUNCH();
}

static void cu_weight_from(be_backend *be, be_weight *w, be_mat src)
{
    cu_state *st = cu_st(be);
    cu_weight *cw = w->data;
    if (cw->dt == CUK_F32)
        CU_CHECK(cudaMemcpy2DAsync(cw->dev, sizeof(float) * (size_t)w->cols, src.data,
                                   sizeof(float) * (size_t)src.ld, sizeof(float) * (size_t)w->cols,
                                   (size_t)w->rows, cudaMemcpyDeviceToDevice, st->stream));
    else
        cuk_convert_from_f32(cw->dev, cw->dt, src.data, src.ld, w->rows, w->cols, st->stream);
    CU_CHECK_LAUNCH();
}

void cu_train_install(be_backend *be)
{
    be->axpy = cu_axpy;
    be->sum_squares = cu_sum_squares;
    be->adamw = cu_adamw;
    be->weight_from = cu_weight_from;
    be->scale = cu_scale;
    be->linear_dx = cu_linear_dx;
    be->linear_dw = cu_linear_dw;
    be->rmsnorm_backward = cu_rmsnorm_backward;
    be->layernorm_backward = cu_layernorm_backward;
    be->gelu_erf_backward = cu_gelu_erf_backward;
    be->quick_gelu_backward = cu_quick_gelu_backward;
    be->silu_mul_backward = cu_silu_mul_backward;
    be->embed_backward = cu_embed_backward;
    be->rope_backward = cu_rope_backward;
    be->attention_backward = cu_attention_backward;
    be->token_logprobs_backward = cu_token_logprobs_backward;
    be->best_other_token = cu_best_other_token;
}
