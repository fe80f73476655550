/* cuda_internal.h — backends layer (CUDA, private): the state of a CUDA
 * backend and the helpers its forward (cuda_backend.c) and backward
 * (cuda_train.c) operations share.
 *
 * Memory: activations (be_mat) are float32 device buffers from a cache of
 * freed blocks (a forward pass frees and asks again for the same sizes;
 * cudaMalloc and cudaFree synchronise the device). Weights: be_weight.data
 * points to a cu_weight holding the device buffer and its type: matrices in
 * the backend's weight type (bf16 by default), vectors (norm scales,
 * biases) always float32. Everything runs in order on one stream.
 */
#ifndef SIMA_BACKENDS_CUDA_INTERNAL_H
#define SIMA_BACKENDS_CUDA_INTERNAL_H

#include "backend.h"
#include "cuda_kernels.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    void *dev;          /* [rows, cols] packed */
    cuk_dtype dt;
} cu_weight;

typedef struct {
    void *p;
    size_t bytes;
} cu_block;

/* A device buffer that grows on demand (scratch). */
typedef struct {
    void *p;
    size_t bytes;
} cu_scratch;

enum { CU_CONV_A, CU_CONV_B, CU_CONV_N };

/* What a conversion scratch holds: float32 rows of src converted, valid
 * while no operation other than a product has run (gen unchanged) and no
 * product wrote over src. Products of the same activation in a row (q, k,
 * v; gate, up; a linear's dx then dw) convert it once. */
typedef struct {
    const float *src;
    int64_t rows, cols, ld;
    cuk_dtype dt;
    uint64_t gen;
    bool valid;
} cu_conv_key;

/* A device copy of small host data that is often the same from one call
 * to the next (positions, sequence tables): uploaded only when it changed. */
typedef struct {
    void *dev, *host;
    size_t bytes, cap;
} cu_cached;

typedef struct {
    int device;
    char gpu_name[256];
    int n_sms;                    /* multiprocessors: how far to split attention */
    cudaStream_t stream;
    cublasHandle_t blas;
    cuk_dtype wdt;                /* storage of weight matrices */
    /* freed activation buffers kept for reuse */
    cu_block *cache;
    int n_cache, cap_cache;
    size_t cache_bytes;
    size_t held, held_peak;       /* bytes from cudaMalloc, now and at most */
    /* GEMM operands converted to the weight type: [CU_CONV_N] */
    cu_scratch conv[CU_CONV_N];
    cu_conv_key conv_key[CU_CONV_N];
    uint64_t gen;                 /* operations other than products run so far */
    /* per-operation uploads (ids, positions, sequence tables): an arena
     * reset by each operation; reused in stream order */
    cu_scratch arena;
    size_t arena_used;
    /* float scratch of the backward passes; attention's split partials */
    cu_scratch bw[4], attn_part;
    /* every layer rotates and attends at the same positions and sequences */
    cu_cached pos_up, seq_up, pages_up;
    void *nccl;                   /* ncclComm_t of the data-parallel ranks, or NULL */
    void *host_comm;              /* MPI_Comm * when ranks share GPUs: sums via the host */
    float *host_stage;            /* its staging buffer */
    size_t host_stage_n;
    /* RoPE frequencies for (head_dim, theta) */
    float *rope_freq;
    int rope_hd;
    double rope_theta;
} cu_state;

/* The backend's state, for an operation that may write device memory: it
 * ends the validity of converted operands (products use cu_st_product). */
static inline cu_state *cu_st(be_backend *be)
{
    cu_state *st = (cu_state *)be->impl;
    st->gen++;
    return st;
}
static inline cu_state *cu_st_product(be_backend *be) { return (cu_state *)be->impl; }
static inline const cu_weight *cu_w(const be_weight *w) { return (const cu_weight *)w->data; }

/* Device memory that kills the process with advice when the GPU is full;
 * cu_release gives it back to the device (cu_free keeps it for reuse). */
void *cu_alloc(cu_state *st, size_t bytes);
void cu_release(cu_state *st, void *p, size_t bytes);
void cu_free(cu_state *st, void *p, size_t bytes);
/* A scratch buffer of at least `bytes` (contents not kept on growth). */
void *cu_scratch_get(cu_state *st, cu_scratch *s, size_t bytes);
/* Per-operation uploads: an operation first reserves the bytes of all its
 * pieces (at most CU_ARENA_PIECES of them), then copies host arrays in
 * (16-byte aligned pieces of one arena, reused by the next operation in
 * stream order). */
#define CU_ARENA_PIECES 8
void cu_arena_begin(cu_state *st, size_t bytes);
void *cu_arena_put(cu_state *st, const void *host, size_t bytes);
void *cu_arena_alloc(cu_state *st, size_t bytes);
/* The device copy of host[bytes] kept in c, uploaded when it differs. */
const void *cu_upload_cached(cu_state *st, cu_cached *c, const void *host, size_t bytes);
/* Host <- device copy that waits for the stream. */
void cu_download_bytes(cu_state *st, void *host, const void *dev, size_t bytes);

/* Row-major GEMM on the stream: C [m, n] = alpha op(A) op(B) + beta C,
 * A/B float32 activations or weights (a cu_weight). Float32 operands meet
 * a bf16/f16 weight by conversion into scratch first (tensor cores take
 * equal types); float32 weights multiply in float32 without TF32. */
typedef struct {
    const void *p;      /* float32 matrix, or NULL when w is set */
    int64_t ld;
    const cu_weight *w; /* a weight [rows, cols] packed (ld = cols) */
    int64_t w_cols;
} cu_operand;

void cu_gemm(cu_state *st, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
             cu_operand a, cu_operand b, float beta, float *c, int64_t ldc);

static inline cu_operand cu_act(const be_mat *x)
{
    cu_operand o = {x->data, x->ld, NULL, 0};
    return o;
}
static inline cu_operand cu_wop(const be_weight *w)
{
    cu_operand o = {NULL, w->cols, cu_w(w), w->cols};
    return o;
}

/* The kernels' table of attention sequences (malloc'd host copy; their
 * page ids uploaded, all in one copy) and the paged caches they use. */
cuk_attn_seq *cu_attn_host(cu_state *st, const be_attn_seq *seqs, int n_seqs);
cuk_pages cu_attn_pages(const be_attn_seq *seqs, int n_seqs);
cuk_pages cu_pages_view(const be_kv_pages *p, int layer);
void cu_kv_install(be_backend *be);
/* half_dt: the type of a tensor-core forward (CUK_F32: float32 kernels only) */
cuk_attn_shape cu_attn_shape(be_attn_shape sh, int64_t rows, cuk_dtype half_dt);
/* RoPE frequencies on the device for (head_dim, theta), as the CPU computes them */
const float *cu_rope_freq(cu_state *st, int head_dim, double theta);

/* Installs the backward and optimizer operations (cuda_train.c), the
 * collective ones (cuda_comm.c). */
void cu_train_install(be_backend *be);
void cu_comm_install(be_backend *be);
void cu_comm_free(cu_state *st);

#endif
