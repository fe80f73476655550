/* cuda_kernels.h — backends layer (CUDA, private): the kernels of the CUDA
 * backend, as host functions that enqueue them on a stream. Implemented in
 * the .cu files beside this one; called by cuda_backend.c and cuda_train.c.
 *
 * Conventions: matrices are row-major with a row stride (ld) in elements;
 * activations are float32; a weight table (embedding, position embedding)
 * may be stored F32, BF16 or F16 (cuk_dtype); norm scales and biases are
 * float32. Pointers are device pointers unless named host_*. Every
 * reduction runs in a fixed order: results do not depend on timing.
 */
#ifndef SIMA_BACKENDS_CUDA_KERNELS_H
#define SIMA_BACKENDS_CUDA_KERNELS_H

#include <stdint.h>
#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CUK_F32 = 0, CUK_BF16 = 1, CUK_F16 = 2 } cuk_dtype;

/* Paged KV caches (be_kv_pages) as the kernels see them: slab s's base in
 * k_slabs[s] / v_slabs[s] (device arrays of device pointers), slab_pages
 * pages a slab, each [n_layers][slab_pages][page][width] in dtype dt. */
typedef struct {
    void *const *k_slabs;
    void *const *v_slabs;
    int64_t slab_pages, page, width;
    int layer;
    cuk_dtype dt;
} cuk_pages;

/* One sequence of a ragged attention batch (see be_attn_seq): page_ids
 * (device) of its cache, or NULL. For the backward of a sequence with a
 * shared prefix, pre_dk/pre_dv: zeroed scratch [n_pre, n_kv_heads * hd]
 * for its part of the prefix rows' dk/dv. */
typedef struct {
    int64_t q_row0, n_new, n_past, pre_row0, n_pre;
    const int32_t *page_ids;
    float *pre_dk, *pre_dv;
} cuk_attn_seq;

/* Every layer's page dst, positions 0 .. n = page src's. */
void cuk_pages_copy(cuk_pages pg, int n_layers, int32_t dst, int32_t src, int64_t n,
                    cudaStream_t s);

typedef struct {
    int n_heads, n_kv_heads, head_dim, causal;
    float scale;
    int64_t rows;             /* R: rows of the batch */
    cuk_dtype half_dt;        /* tensor-core forward in this type; CUK_F32: float32 only */
} cuk_attn_shape;

/* ---- conversions and elementwise (cuda_elementwise.cu) ---- */
/* dst [rows, cols] packed, in dtype = src [rows, cols] (stride lds) */
void cuk_convert_from_f32(void *dst, cuk_dtype dt, const float *src, int64_t lds, int64_t rows,
                          int64_t cols, cudaStream_t s);
/* dst [rows, cols] (stride ldd) = src [rows, cols] packed, in dtype */
void cuk_convert_to_f32(float *dst, int64_t ldd, const void *src, cuk_dtype dt, int64_t rows,
                        int64_t cols, cudaStream_t s);
void cuk_add_bias(float *y, int64_t ld, int64_t rows, int64_t cols, const float *bias,
                  cudaStream_t s);
void cuk_add(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows, int64_t cols,
             cudaStream_t s);
void cuk_scale(float *x, int64_t ld, int64_t rows, int64_t cols, float a, cudaStream_t s);
/* y [rows, cols] += table rows row0 .. row0 + rows (table [*, cols] packed) */
void cuk_add_rows(float *y, int64_t ld, int64_t rows, int64_t cols, const void *table,
                  cuk_dtype dt, int64_t row0, cudaStream_t s);
void cuk_gelu_erf(float *x, int64_t ld, int64_t rows, int64_t cols, cudaStream_t s);
void cuk_quick_gelu(float *x, int64_t ld, int64_t rows, int64_t cols, cudaStream_t s);
void cuk_silu_mul(float *out, int64_t ldo, const float *gate, int64_t ldg, const float *up,
                  int64_t ldu, int64_t rows, int64_t cols, cudaStream_t s);
/* out [rows, cols] = table [ids[r]] (table [V, cols] packed) */
void cuk_embed(float *out, int64_t ld, int64_t rows, int64_t cols, const void *table,
               cuk_dtype dt, const int32_t *ids, cudaStream_t s);
/* Rotate-half RoPE in place on x [rows, n_heads * hd] at positions pos
 * [rows], frequencies inv_freq [hd / 2]; sign -1 applies the transpose
 * rotation (the backward). */
void cuk_rope(float *x, int64_t ld, int64_t rows, int n_heads, int hd, const int32_t *pos,
              const float *inv_freq, float sign, cudaStream_t s);

/* ---- row reductions (cuda_rows.cu) ---- */
void cuk_rmsnorm(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows, int64_t cols,
                 const float *w, float eps, cudaStream_t s);
void cuk_layernorm(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows,
                   int64_t cols, const float *w, const float *b, float eps, cudaStream_t s);
/* Per row of logits [rows, V]: logp[r] = log_softmax[target[r]] (when logp
 * is non-NULL; target NULL: of the argmax), argmax[r] (when non-NULL; the
 * first maximum). */
void cuk_token_logprobs(const float *logits, int64_t ld, int64_t rows, int64_t V,
                        const int32_t *target, float *logp, int32_t *argmax, cudaStream_t s);
/* Per row: the first maximum over columns other than exclude[r]. */
void cuk_best_other(const float *logits, int64_t ld, int64_t rows, int64_t V,
                    const int32_t *exclude, int32_t *out, cudaStream_t s);

/* ---- attention (cuda_attention.cu) ---- */
/* Appends each cached sequence's new k/v rows to its cache, then
 * out [R, H*hd] = attention; lse [R, H] (optional) receives each query
 * row's log-sum-exp of its scores (the backward's statistics). With
 * n_splits > 1 each block takes a share of the keys (few long sequences,
 * as in small-batch decoding, fill the GPU) and a second kernel combines
 * them: part is scratch of cuk_attention_part_floats() floats. */
void cuk_attention(float *out, int64_t ldo, const float *q, int64_t ldq, const float *k,
                   const float *v, int64_t ldkv, const cuk_attn_seq *seqs_dev,
                   const cuk_attn_seq *seqs_host, int n_seqs, cuk_pages pg, cuk_attn_shape sh,
                   float *lse, int n_splits, float *part, cudaStream_t s);
/* The splits that fill a GPU of n_sms multiprocessors (1: none). */
int cuk_attention_splits(const cuk_attn_seq *seqs_host, int n_seqs, cuk_attn_shape sh, int n_sms);
/* size of the dynamic shared memory the attention kernels need, to check
 * against the device's limit */
size_t cuk_attention_smem(int head_dim);

/* ---- training: backward kernels (cuda_backward.cu, cuda_attention.cu) ---- */
/* dx += ..., dw/db += ... (NULL: skipped); see be_backend for the formulas.
 * Scratch: inv [rows] floats (rmsnorm), stats [2 * rows] doubles (layernorm). */
void cuk_rmsnorm_backward(float *dx, int64_t lddx, float *dw, const float *dy, int64_t lddy,
                          const float *x, int64_t ldx, int64_t rows, int64_t cols,
                          const float *w, float eps, float *inv_scratch, cudaStream_t s);
void cuk_layernorm_backward(float *dx, int64_t lddx, float *dw, float *db, const float *dy,
                            int64_t lddy, const float *x, int64_t ldx, int64_t rows,
                            int64_t cols, const float *w, float eps, double *stats_scratch,
                            cudaStream_t s);
void cuk_gelu_erf_backward(float *dx, int64_t lddx, const float *dy, int64_t lddy,
                           const float *x, int64_t ldx, int64_t rows, int64_t cols,
                           cudaStream_t s);
void cuk_quick_gelu_backward(float *dx, int64_t lddx, const float *dy, int64_t lddy,
                             const float *x, int64_t ldx, int64_t rows, int64_t cols,
                             cudaStream_t s);
void cuk_silu_mul_backward(float *dgate, int64_t ldg, float *dup, int64_t ldu,
                           const float *dout, int64_t ldo, const float *gate, int64_t ldga,
                           const float *up, int64_t ldup, int64_t rows, int64_t cols,
                           cudaStream_t s);
/* dtable [V, cols] (stride ldt) row ids[r] += dy[r] (ids < 0 skipped),
 * rows added in order */
void cuk_embed_backward(float *dtable, int64_t ldt, const float *dy, int64_t lddy,
                        int64_t rows, int64_t cols, const int32_t *ids, cudaStream_t s);
/* db [cols] += column sums of dy [rows, cols] */
void cuk_col_sums(float *db, const float *dy, int64_t ld, int64_t rows, int64_t cols,
                  cudaStream_t s);
void cuk_token_logprobs_backward(float *dlogits, int64_t ldd, const float *logits, int64_t ld,
                                 int64_t rows, int64_t V, const int32_t *target,
                                 const float *dlogp, cudaStream_t s);
/* Attention backward (sequences without a cache): dq, dk, dv += ...
 * o [R, H*hd] and lse [R, H]: the forward's output and statistics
 * (recomputed by the caller with cuk_attention); drow: scratch [R, H].
 * A shared prefix's part goes to the sequences' pre_dk/pre_dv scratch and
 * is added into dk/dv afterwards, sequence by sequence in order. */
void cuk_attention_backward(float *dq, int64_t lddq, float *dk, float *dv, int64_t lddkv,
                            const float *dout, int64_t lddo, const float *q, int64_t ldq,
                            const float *k, const float *v, int64_t ldkv, const float *o,
                            int64_t ldo, const float *lse, float *drow,
                            const cuk_attn_seq *seqs_dev, const cuk_attn_seq *seqs_host,
                            int n_seqs, cuk_attn_shape sh, cudaStream_t s);

/* ---- optimizer (cuda_optim.cu) ---- */
/* y [rows, cols] += (float)(a * x), in double */
void cuk_axpy(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows, int64_t cols,
              double a, cudaStream_t s);
/* out[0] (device) = sum of squares of x [n]; partial: cuk_sum_squares_scratch() bytes */
void cuk_sum_squares(double *out, const float *x, int64_t n, double *partial, cudaStream_t s);
size_t cuk_sum_squares_scratch(void);
/* AdamW (train/optim.h) on n parameters, the gradient scaled by grad_scale */
void cuk_adamw(float *param, float *m, float *v, const float *grad, int64_t n, double lr,
               double beta1, double beta2, double eps, double weight_decay, int64_t t,
               double grad_scale, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
