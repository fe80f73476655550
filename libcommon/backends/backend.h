/* backend.h — backends layer: the interface between the model and its kernels.
 *
 * The model code (model/) is written once against this interface; the CPU
 * backend (fp32, OpenBLAS, OpenMP) is the reference implementation and a CUDA
 * backend implements the same operations on the GPU.
 *
 * Activations are 2-D float32 matrices [rows, cols], row-major, in backend
 * memory (host memory on CPU, device memory on CUDA). A be_mat is a
 * plain-value view: be_rows() selects a block of rows without copying, so the
 * model can address one sequence's rows of a ragged batch or one position of
 * a KV cache. Weights are created once from float32 host data; the backend
 * chooses how to store them (float32 on CPU, bf16 on CUDA).
 */
#ifndef SIMA_BACKENDS_BACKEND_H
#define SIMA_BACKENDS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct be_backend be_backend;

/* A matrix view [rows, cols] with row stride ld (>= cols), elements float. */
typedef struct {
    float *data;   /* backend memory; element (r, c) at data[r * ld + c] */
    int64_t rows, cols, ld;
} be_mat;

/* A weight matrix [rows, cols] (a Linear's [out, in]) or a vector (rows 1). */
typedef struct be_weight {
    void *data;    /* backend-owned storage in the backend's weight dtype */
    int64_t rows, cols;
} be_weight;

/* Paged key/value caches of every layer: `page` positions per page, a
 * position a row of `width` values (keys and values apart), in the
 * backend's cache type (float32 on the CPU; on CUDA the weight type, bf16 by
 * default). Pages are numbered 0 .. n_pages; a sequence's cache is a list
 * of page ids in position order (its position p is page ids[p / page], row
 * p % page), the same ids in every layer. kv_pages_grow adds pages without
 * moving the ones in use. Owned by the backend (kv_pages_new/free). */
typedef struct {
    int64_t page, width, n_layers;
    int64_t n_pages;
    void *impl;
} be_kv_pages;

/* One sequence of a ragged batch as attention sees it: its new rows in the
 * batch (q_row0 .. q_row0 + n_new) and its key/value cache (pages of layer
 * `layer`, page_ids in host memory), which already holds n_past positions
 * and receives the new ones at n_past .. n_past + n_new (its pages cover
 * them all).
 *
 * Shared prefix (sequences without a cache only; n_past 0): a sequence may
 * continue n_pre rows of the batch that another sequence owns (rows
 * pre_row0 .. pre_row0 + n_pre, e.g. the prompt of a DPO pair computed
 * once). Its keys are then those n_pre rows followed by its own rows; its
 * own row i sees all n_pre of them and, when causal, its own rows 0..i. The
 * caller gives its rows positions n_pre.. (rope). The backward adds the
 * sequence's share of the prefix rows' dk/dv into those rows. n_pre 0 (the
 * zero default): no prefix. */
typedef struct {
    int64_t q_row0, n_new, n_past;
    const be_kv_pages *pages;  /* NULL: no cache */
    const int32_t *page_ids;   /* [ceil((n_past + n_new) / page)] */
    int layer;
    int64_t pre_row0, n_pre;   /* shared prefix rows of k/v; n_pre 0: none */
} be_attn_seq;

typedef struct {
    int n_heads, n_kv_heads, head_dim;
    bool causal;               /* LLaMA: causal; CLIP: bidirectional */
    float scale;               /* usually 1/sqrt(head_dim) */
} be_attn_shape;

/* One AdamW update (train/optim.h's optim_adamw_step, the same arithmetic)
 * with the gradient first scaled by grad_scale (global-norm clipping). */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t t;                 /* 1-based step */
    double grad_scale;         /* 1: no clipping */
} be_adamw_step;

struct be_backend {
    const char *name;          /* "cpu", "cuda" */

    /* memory */
    be_mat (*mat_new)(be_backend *be, int64_t rows, int64_t cols);  /* zeroed */
    void (*mat_free)(be_backend *be, be_mat *m);
    void (*upload)(be_backend *be, be_mat dst, const float *host);   /* [rows, cols] */
    void (*download)(be_backend *be, be_mat src, float *host);       /* [rows, cols] */
    void (*copy)(be_backend *be, be_mat dst, be_mat src);            /* same shape */
    int (*weight_new)(be_backend *be, const float *host, int64_t rows, int64_t cols,
                      be_weight *out);
    void (*weight_free)(be_backend *be, be_weight *w);

    /* y [M, N] = x [M, K] . W[N, K]^T (+ bias [N]) ; accumulate: y += ... */
    void (*linear)(be_backend *be, be_mat y, be_mat x, const be_weight *w,
                   const be_weight *bias, bool accumulate);
    /* y [M, D] = rmsnorm(x) * w  /  layernorm(x) * w + b */
    void (*rmsnorm)(be_backend *be, be_mat y, be_mat x, const be_weight *w, float eps);
    void (*layernorm)(be_backend *be, be_mat y, be_mat x, const be_weight *w,
                      const be_weight *b, float eps);
    /* y += x, same shape (residual connections) */
    void (*add)(be_backend *be, be_mat y, be_mat x);
    /* y [M, D] += row vector v [1, D] broadcast (position embeddings etc.) */
    void (*add_rows)(be_backend *be, be_mat y, const be_weight *v_rows, int64_t v_row0);
    /* elementwise activations, in place */
    void (*gelu_erf)(be_backend *be, be_mat x);
    void (*quick_gelu)(be_backend *be, be_mat x);
    /* out [M, F] = silu(gate) * up */
    void (*silu_mul)(be_backend *be, be_mat out, be_mat gate, be_mat up);
    /* out [T, D] = table rows ids[t] (ids in host memory) */
    void (*embed)(be_backend *be, be_mat out, const be_weight *table, const int32_t *ids);
    /* rotary position embedding on x [T, n_heads * head_dim] in place, the
     * rotate-half (GPT-NeoX / HF LLaMA) layout; positions in host memory. */
    void (*rope)(be_backend *be, be_mat x, int n_heads, int head_dim,
                 const int32_t *positions, double theta);
    /* Attention for a ragged batch. q [R, n_heads*hd], k/v [R, n_kv*hd] are the
     * new rows of all sequences; each sequence's k/v rows are appended to its
     * cache first, then out [R, n_heads*hd] attends over cache 0..n_past+n_new
     * (causal: row i sees up to n_past + i). Sequences without a cache (CLIP,
     * training) pass pages == NULL and attend over their prefix rows
     * (n_pre, usually 0) and their own new rows. */
    void (*attention)(be_backend *be, be_mat out, be_mat q, be_mat k, be_mat v,
                      const be_attn_seq *seqs, int n_seqs, be_attn_shape shape);
    /* For each row r of logits [R, V]: out_logp[r] = log_softmax(logits[r])[target[r]]
     * (target NULL: of the row's argmax, the greedy choice); also writes the
     * row's argmax (the first maximum) when argmax != NULL. Targets/outputs
     * in host memory. */
    void (*token_logprobs)(be_backend *be, be_mat logits, const int32_t *target,
                           float *out_logp, int32_t *argmax);

    /* ---- training: backward operations ------------------------------------
     * Every backward op ADDS into its outputs (input and parameter gradients),
     * so residual branches and shared weights accumulate; callers zero first.
     * Forward inputs are passed as the forward saw them. */
    /* x [M, D] *= s, in place (LoRA scaling, loss scaling) */
    void (*scale)(be_backend *be, be_mat x, float s);
    /* replace a weight's values from float32 host data (an optimizer step) */
    void (*weight_set)(be_backend *be, be_weight *w, const float *host);
    /* a weight's values as float32 host data [rows, cols] (merging adapters) */
    void (*weight_get)(be_backend *be, const be_weight *w, float *host);
    /* linear y = x W^T + b: dx [M, K] += dy [M, N] . W [N, K] */
    void (*linear_dx)(be_backend *be, be_mat dx, be_mat dy, const be_weight *w);
    /* dW [N, K] += dy^T . x ; db [1, N] += column sums of dy (skipped when
     * db.data is NULL) */
    void (*linear_dw)(be_backend *be, be_mat dw, be_mat db, be_mat dy, be_mat x);
    /* rmsnorm: dx += dL/dx, dw [1, D] += dL/dw (skipped when dw.data NULL) */
    void (*rmsnorm_backward)(be_backend *be, be_mat dx, be_mat dw, be_mat dy, be_mat x,
                             const be_weight *w, float eps);
    void (*layernorm_backward)(be_backend *be, be_mat dx, be_mat dw, be_mat db, be_mat dy,
                               be_mat x, const be_weight *w, float eps);
    /* activations: x is the activation's input (pre-activation) */
    void (*gelu_erf_backward)(be_backend *be, be_mat dx, be_mat dy, be_mat x);
    void (*quick_gelu_backward)(be_backend *be, be_mat dx, be_mat dy, be_mat x);
    /* out = silu(gate) * up: dgate += .., dup += .. */
    void (*silu_mul_backward)(be_backend *be, be_mat dgate, be_mat dup, be_mat dout,
                              be_mat gate, be_mat up);
    /* embedding: dtable [V, D] row ids[t] += dy[t]; rows with ids[t] < 0 skipped */
    void (*embed_backward)(be_backend *be, be_mat dtable, be_mat dy, const int32_t *ids);
    /* rope: dx in place becomes the gradient w.r.t. the unrotated input
     * (the transpose rotation) */
    void (*rope_backward)(be_backend *be, be_mat dx, int n_heads, int head_dim,
                          const int32_t *positions, double theta);
    /* Attention without cache (every sequence's pages NULL), q/k/v the
     * forward's inputs (after rope); dq += .., dk += .., dv += .. (a shared
     * prefix's rows receive every sharing sequence's part). The
     * probabilities are recomputed, nothing is saved by the forward. */
    void (*attention_backward)(be_backend *be, be_mat dq, be_mat dk, be_mat dv, be_mat dout,
                               be_mat q, be_mat k, be_mat v, const be_attn_seq *seqs,
                               int n_seqs, be_attn_shape shape);
    /* logp[r] = log_softmax(logits[r])[target[r]]: dlogits [R, V] +=
     * dlogp[r] * (onehot(target[r]) - softmax(logits[r])); host dlogp/target */
    void (*token_logprobs_backward)(be_backend *be, be_mat dlogits, be_mat logits,
                                    const int32_t *target, const float *dlogp);
    /* ---- paged KV caches (see be_kv_pages) ---- */
    /* Caches of n_layers layers, `width` values a position, with room for
     * n_pages pages (at least one); the backend picks the page size. */
    be_kv_pages *(*kv_pages_new)(be_backend *be, int n_layers, int64_t width, int64_t n_pages);
    /* Room for at least n_pages pages in all (the ones in use keep their place). */
    void (*kv_pages_grow)(be_backend *be, be_kv_pages *p, int64_t n_pages);
    /* Every layer's page dst, positions 0 .. n = page src's (copy on write). */
    void (*kv_pages_copy)(be_backend *be, be_kv_pages *p, int32_t dst, int32_t src, int64_t n);
    void (*kv_pages_free)(be_backend *be, be_kv_pages *p);

    /* For each row: the most likely token other than exclude[r] (host ids) */
    void (*best_other_token)(be_backend *be, be_mat logits, const int32_t *exclude,
                             int32_t *out);

    /* ---- training state on the device (GPU backends; NULL on the CPU,
     * where the tools keep the optimizer on the host) ----------------------
     * Flat vectors are be_mats [1, n]. */
    /* y [rows, cols] += (float)(a * x), the product in double */
    void (*axpy)(be_backend *be, be_mat y, be_mat x, double a);
    /* the sum of x's squares, in double, in a fixed order */
    double (*sum_squares)(be_backend *be, be_mat x);
    /* AdamW on param, m, v [1, n] with gradient g [1, n] */
    void (*adamw)(be_backend *be, be_mat param, be_mat m, be_mat v, be_mat g,
                  const be_adamw_step *s);
    /* a weight's values from float32 backend data [rows, cols] (its master copy) */
    void (*weight_from)(be_backend *be, be_weight *w, be_mat src);
    /* The data-parallel ranks' collective: set up once over the MPI
     * communicator *mpi_comm (an MPI_Comm), then allreduce_sum sums a packed
     * x in place across the ranks. -1 with an error when it cannot start. */
    int (*comm_init)(be_backend *be, void *mpi_comm);
    void (*allreduce_sum)(be_backend *be, be_mat x);
    /* Sharding across the ranks (packed [1, n] vectors, n = ranks x part):
     * part = this rank's slice of the sum of every rank's full; full = the
     * ranks' parts in rank order (this rank's part may lie inside full). */
    void (*reduce_scatter_sum)(be_backend *be, be_mat full, be_mat part);
    void (*all_gather)(be_backend *be, be_mat part, be_mat full);

    /* Device memory held by the backend now and at most so far, in bytes
     * (NULL on the CPU backend: see the process's RSS instead). */
    void (*mem_stats)(be_backend *be, size_t *in_use, size_t *peak);

    void (*destroy)(be_backend *be);
    void *impl;
};

/* A view of rows [row0, row0 + n) of m. */
static inline be_mat be_rows(be_mat m, int64_t row0, int64_t n)
{
    be_mat v = {m.data + row0 * m.ld, n, m.cols, m.ld};
    return v;
}
/* A view of columns [col0, col0 + n) of m (same rows). */
static inline be_mat be_cols(be_mat m, int64_t col0, int64_t n)
{
    be_mat v = {m.data + col0, m.rows, n, m.ld};
    return v;
}

/* The CPU backend (always available). n_threads <= 0: OpenMP's default. */
be_backend *be_cpu_new(int n_threads);

/* ---- choosing a backend ---------------------------------------------- */

/* How a GPU backend stores weight matrices (activations are float32). */
typedef enum { BE_BF16 = 0, BE_F16 = 1, BE_F32 = 2 } be_dtype;

const char *be_dtype_name(be_dtype d);           /* "bf16", "f16", "f32" */
int be_dtype_parse(const char *s, be_dtype *out);  /* -1 + ERR on an unknown name */

/* A GPU backend, provided by a library that registers itself when a
 * program links it (the CUDA backend: libcommon/backends/cuda). */
typedef struct {
    const char *name;                                   /* "cuda" */
    /* GPUs this process can see; 0 (with an error recorded) when none */
    int (*device_count)(void);
    /* the backend on GPU `device`; NULL with an error recorded */
    be_backend *(*create)(int device, be_dtype weights);
} be_gpu_impl;

void be_register_gpu(const be_gpu_impl *impl);
const be_gpu_impl *be_gpu(void);   /* NULL: this program has no GPU backend */

typedef struct {
    const char *device;   /* "auto" (a GPU when one is visible, else the CPU), "cpu", "cuda" */
    be_dtype weights;     /* GPU weight storage (default bf16) */
    int local_rank;       /* this rank's index among the ranks on its node: picks the GPU */
    int local_size;       /* ranks on the node */
    int cpu_threads;      /* CPU backend threads; 0: OpenMP's default */
} be_open_opts;

void be_open_opts_default(be_open_opts *o);
/* The backend the options ask for; NULL with an error that says what to
 * change (no GPU visible, no CUDA in this build, ...). Rank r of a node
 * takes GPU r modulo the GPUs it sees (one GPU per rank under Slurm's
 * --gpus-per-task, whose CUDA_VISIBLE_DEVICES leaves each rank one). */
be_backend *be_open(const be_open_opts *o);

#endif
