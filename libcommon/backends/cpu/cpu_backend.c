/* cpu_backend.c — backends layer: the float32 CPU reference backend.
 * Matrix products through OpenBLAS (2..64 rows: our own small-row kernel,
 * cpu_gemm_small.c), everything else as plain loops spread
 * over OpenMP threads. Clarity and exactness first: every CUDA kernel is
 * tested against these functions. */
#include "backend.h"
#include "cpu_attn.h"
#include "cpu_gemm_small.h"
#include "cpu_kv.h"
#include "cpu_train.h"
#include "err.h"
#include "log.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Backend state: a few freed buffers kept for reuse (a forward pass frees
 * and reallocates the same sizes every step; fresh pages cost page faults),
 * and the rotary table of the last positions seen (every layer rotates q
 * and k at the same positions). */
#define CPU_POOL 32
typedef struct {
    float *buf[CPU_POOL];
    size_t len[CPU_POOL];
    int n;
    float *rope_cos, *rope_sin;   /* [rows, head_dim / 2] */
    int32_t *rope_pos;            /* [rows] */
    int64_t rope_rows, rope_cap;
    int rope_hd;
    double rope_theta;
    cpu_gemm_small_fn gemm_small; /* the small-row kernel for this CPU */
    float *xT;                    /* its transposed activations [K, Mp] */
    size_t xT_cap;                /* floats */
} cpu_state;

static be_mat cpu_mat_new(be_backend *be, int64_t rows, int64_t cols)
{
    cpu_state *st = be->impl;
    size_t n = (size_t)(rows * cols);
    float *p = NULL;
    for (int i = 0; i < st->n; i++)
        if (st->len[i] == n) {
            p = st->buf[i];
            st->buf[i] = st->buf[--st->n];
            st->len[i] = st->len[st->n];
            memset(p, 0, n * sizeof(float));
            break;
        }
    if (!p) p = xcalloc(n ? n : 1, sizeof(float));
    be_mat m = {p, rows, cols, cols};
    return m;
}

static void cpu_mat_free(be_backend *be, be_mat *m)
{
    cpu_state *st = be->impl;
    if (m->data && st->n < CPU_POOL) {
        st->buf[st->n] = m->data;
        st->len[st->n++] = (size_t)(m->rows * m->cols);
    } else {
        free(m->data);
    }
    m->data = NULL;
    m->rows = m->cols = m->ld = 0;
}

static void cpu_upload(be_backend *be, be_mat dst, const float *host)
{
    for (int64_t r = 0; r < dst.rows; r++)
        memcpy(dst.data + r * dst.ld, host + r * dst.cols, sizeof(float) * dst.cols);
}

static void cpu_download(be_backend *be, be_mat src, float *host)
{
    for (int64_t r = 0; r < src.rows; r++)
        memcpy(host + r * src.cols, src.data + r * src.ld, sizeof(float) * src.cols);
}

static void cpu_copy(be_backend *be, be_mat dst, be_mat src)
{
    for (int64_t r = 0; r < src.rows; r++)
        memcpy(dst.data + r * dst.ld, src.data + r * src.ld, sizeof(float) * src.cols);
}

static int cpu_weight_new(be_backend *be, const float *host, int64_t rows, int64_t cols,
                          be_weight *out)
{
    size_t n = (size_t)(rows * cols);
    float *w = xmalloc(n * sizeof(float));
    memcpy(w, host, n * sizeof(float));
    out->data = w;
    out->rows = rows;
    out->cols = cols;
    return 0;
}

static void cpu_weight_free(be_backend *be, be_weight *w)
{
    free(w->data);
    w->data = NULL;
}

/* y [M, N] = x [M, K] . W [N, K]^T (+ bias). The output columns are cut
 * into fixed blocks of CPU_COL_BLOCK, spread over the threads, each block
 * one single-threaded BLAS call (OpenBLAS runs single-threaded inside a
 * parallel region). Fixed blocks make every output element's arithmetic the
 * same whatever the thread count, so results do not depend on how many
 * threads or ranks a job uses. */
#define CPU_COL_BLOCK 256

/* Rows 2..CPU_GEMM_SMALL_MAX_M (batched decode): our own kernel reads W in
 * place (cpu_gemm_small.c) from the transposed activations xT [K, Mp];
 * OpenBLAS would copy (pack) the whole W block on every call, which costs
 * more than the arithmetic at so few rows. One row: sgemv, already at
 * memory bandwidth. */
static void linear_slice(cpu_gemm_small_fn small, const float *xT, be_mat y, be_mat x,
                         const float *W, int64_t n0, int64_t n, float beta)
{
    int64_t K = x.cols;
    if (xT)
        small(y.data + n0, y.ld, xT, cpu_gemm_small_lanes(x.rows), x.rows, W + n0 * K, K, n, beta);
    else if (x.rows == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)K, 1.0f, W + n0 * K, (int)K, x.data,
                    1, beta, y.data + n0, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)x.rows, (int)n, (int)K, 1.0f,
                    x.data, (int)x.ld, W + n0 * K, (int)K, beta, y.data + n0, (int)y.ld);
}

/* The small-row kernel's transposed activations for x, or NULL when x has
 * one row or more than CPU_GEMM_SMALL_MAX_M (kept in the backend state:
 * every decode step needs the same sizes). */
static const float *linear_small_x(cpu_state *st, be_mat x)
{
    if (x.rows < 2 || x.rows > CPU_GEMM_SMALL_MAX_M) return NULL;
    size_t need = (size_t)(cpu_gemm_small_lanes(x.rows) * (x.cols + 1));
    if (need > st->xT_cap) {
        free(st->xT);
        st->xT = cpu_gemm_small_alloc_x(CPU_GEMM_SMALL_MAX_M, x.cols);
        st->xT_cap = (size_t)(cpu_gemm_small_lanes(CPU_GEMM_SMALL_MAX_M) * (x.cols + 1));
    }
    cpu_gemm_small_pack_x(st->xT, x.data, x.ld, x.rows, x.cols);
    return st->xT;
}

static void cpu_linear(be_backend *be, be_mat y, be_mat x, const be_weight *w,
                       const be_weight *bias, bool accumulate)
{
    cpu_state *st = be->impl;
    const float *W = w->data, *xT = linear_small_x(st, x);
    int64_t M = x.rows, N = w->rows;
    float beta = accumulate ? 1.0f : 0.0f;
    int64_t n_blocks = (N + CPU_COL_BLOCK - 1) / CPU_COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t n0 = b * CPU_COL_BLOCK, n = N - n0 < CPU_COL_BLOCK ? N - n0 : CPU_COL_BLOCK;
        linear_slice(st->gemm_small, xT, y, x, W, n0, n, beta);
    }
    if (bias) {
        const float *bv = bias->data;
#pragma omp parallel for if (M * N > 16384)
        for (int64_t r = 0; r < M; r++)
            for (int64_t c = 0; c < N; c++) y.data[r * y.ld + c] += bv[c];
    }
}

static void cpu_rmsnorm(be_backend *be, be_mat y, be_mat x, const be_weight *w, float eps)
{
    const float *g = w->data;
#pragma omp parallel for if (x.rows > 4)
    for (int64_t r = 0; r < x.rows; r++) {
        const float *xr = x.data + r * x.ld;
        float *yr = y.data + r * y.ld;
        double ss = 0;
        for (int64_t c = 0; c < x.cols; c++) ss += (double)xr[c] * xr[c];
        float inv = 1.0f / sqrtf((float)(ss / (double)x.cols) + eps);
        for (int64_t c = 0; c < x.cols; c++) yr[c] = g[c] * (xr[c] * inv);
    }
}

static void cpu_layernorm(be_backend *be, be_mat y, be_mat x, const be_weight *w,
                          const be_weight *b, float eps)
{
    const float *g = w->data, *bb = b->data;
#pragma omp parallel for if (x.rows > 4)
    for (int64_t r = 0; r < x.rows; r++) {
        const float *xr = x.data + r * x.ld;
        float *yr = y.data + r * y.ld;
        double mean = 0, var = 0;
        for (int64_t c = 0; c < x.cols; c++) mean += xr[c];
        mean /= (double)x.cols;
        for (int64_t c = 0; c < x.cols; c++) var += ((double)xr[c] - mean) * ((double)xr[c] - mean);
        var /= (double)x.cols;
        float inv = (float)(1.0 / sqrt(var + eps));
        for (int64_t c = 0; c < x.cols; c++) yr[c] = ((xr[c] - (float)mean) * inv) * g[c] + bb[c];
    }
}

static void cpu_add(be_backend *be, be_mat y, be_mat x)
{
#pragma omp parallel for if (x.rows * x.cols > 16384)
    for (int64_t r = 0; r < x.rows; r++)
        for (int64_t c = 0; c < x.cols; c++) y.data[r * y.ld + c] += x.data[r * x.ld + c];
}

static void cpu_add_rows(be_backend *be, be_mat y, const be_weight *v, int64_t v_row0)
{
    const float *src = (const float *)v->data + v_row0 * v->cols;
    for (int64_t r = 0; r < y.rows; r++)
        for (int64_t c = 0; c < y.cols; c++) y.data[r * y.ld + c] += src[r * v->cols + c];
}

static void cpu_gelu_erf(be_backend *be, be_mat x)
{
#pragma omp parallel for if (x.rows * x.cols > 16384)
    for (int64_t r = 0; r < x.rows; r++)
        for (int64_t c = 0; c < x.cols; c++) {
            float v = x.data[r * x.ld + c];
            x.data[r * x.ld + c] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f));
        }
}

static void cpu_quick_gelu(be_backend *be, be_mat x)
{
#pragma omp parallel for if (x.rows * x.cols > 16384)
    for (int64_t r = 0; r < x.rows; r++)
        for (int64_t c = 0; c < x.cols; c++) {
            float v = x.data[r * x.ld + c];
            x.data[r * x.ld + c] = v / (1.0f + expf(-1.702f * v));
        }
}

static void cpu_silu_mul(be_backend *be, be_mat out, be_mat gate, be_mat up)
{
#pragma omp parallel for if (out.rows * out.cols > 16384)
    for (int64_t r = 0; r < out.rows; r++)
        for (int64_t c = 0; c < out.cols; c++) {
            float g = gate.data[r * gate.ld + c];
            out.data[r * out.ld + c] = g / (1.0f + expf(-g)) * up.data[r * up.ld + c];
        }
}

static void cpu_embed(be_backend *be, be_mat out, const be_weight *table, const int32_t *ids)
{
    const float *t = table->data;
    for (int64_t r = 0; r < out.rows; r++)
        memcpy(out.data + r * out.ld, t + (int64_t)ids[r] * table->cols,
               sizeof(float) * out.cols);
}

/* cos/sin of every (row, frequency) for these positions, computed in
 * float32 as transformers does (inv_freq = 1 / theta^(2i/d), angle =
 * pos * inv_freq); reused while the positions stay the same. */
static void rope_table(cpu_state *st, int64_t rows, int head_dim, const int32_t *positions,
                       double theta)
{
    int half = head_dim / 2;
    if (st->rope_rows == rows && st->rope_hd == head_dim && st->rope_theta == theta &&
        memcmp(st->rope_pos, positions, sizeof(int32_t) * (size_t)rows) == 0)
        return;
    if (rows > st->rope_cap || head_dim != st->rope_hd) {
        st->rope_cap = rows > st->rope_cap ? rows : st->rope_cap;
        free(st->rope_cos);
        free(st->rope_sin);
        free(st->rope_pos);
        st->rope_cos = xmalloc(sizeof(float) * (size_t)(st->rope_cap * half));
        st->rope_sin = xmalloc(sizeof(float) * (size_t)(st->rope_cap * half));
        st->rope_pos = xmalloc(sizeof(int32_t) * (size_t)st->rope_cap);
    }
    float *inv_freq = xmalloc(sizeof(float) * (size_t)half);
    for (int i = 0; i < half; i++)
        inv_freq[i] = 1.0f / powf((float)theta, (float)(2 * i) / (float)head_dim);
#pragma omp parallel for if (rows > 16)
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < half; i++) {
            float ang = (float)positions[r] * inv_freq[i];
            st->rope_cos[r * half + i] = cosf(ang);
            st->rope_sin[r * half + i] = sinf(ang);
        }
    free(inv_freq);
    memcpy(st->rope_pos, positions, sizeof(int32_t) * (size_t)rows);
    st->rope_rows = rows;
    st->rope_hd = head_dim;
    st->rope_theta = theta;
}

/* Rotate-half RoPE (HF LLaMA layout): x[i], x[i + d/2] rotated together. */
static void cpu_rope(be_backend *be, be_mat x, int n_heads, int head_dim,
                     const int32_t *positions, double theta)
{
    cpu_state *st = be->impl;
    int half = head_dim / 2;
    rope_table(st, x.rows, head_dim, positions, theta);
    const float *cs = st->rope_cos, *sn = st->rope_sin;
#pragma omp parallel for if (x.rows > 4)
    for (int64_t r = 0; r < x.rows; r++) {
        float *row = x.data + r * x.ld;
        for (int h = 0; h < n_heads; h++) {
            float *v = row + (int64_t)h * head_dim;
            for (int i = 0; i < half; i++) {
                float c = cs[r * half + i], s = sn[r * half + i];
                float a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
    }
}

/* Appends a cached sequence's new k/v rows to its pages. */
static void cache_append(be_mat k, be_mat v, const be_attn_seq *sq)
{
    const be_kv_pages *p = sq->pages;
    size_t bytes = sizeof(float) * (size_t)p->width;
    for (int64_t j = 0; j < sq->n_new; j++) {
        int64_t pos = sq->n_past + j, row = pos % p->page;
        int32_t id = sq->page_ids[pos / p->page];
        memcpy(cpu_kv_keys(p, sq->layer, id) + row * p->width, k.data + (sq->q_row0 + j) * k.ld,
               bytes);
        memcpy(cpu_kv_values(p, sq->layer, id) + row * p->width, v.data + (sq->q_row0 + j) * v.ld,
               bytes);
    }
}

/* One sequence's key blocks at column kvc (a kv head): its pages (after
 * the append), or without a cache its shared prefix rows and its own new
 * rows. kv has room for ceil(n_keys / page) + 1 blocks; returns the count. */
static int seq_blocks(cpu_kv_block *kv, const be_attn_seq *sq, be_mat k, be_mat v, int64_t kvc)
{
    if (!sq->pages) {
        kv[CPU_KV_PRE] = (cpu_kv_block){0};
        if (sq->n_pre > 0)
            kv[CPU_KV_PRE] = (cpu_kv_block){k.data + sq->pre_row0 * k.ld + kvc,
                                            v.data + sq->pre_row0 * v.ld + kvc, NULL, NULL,
                                            sq->n_pre, k.ld, 0};
        kv[CPU_KV_MAIN] = (cpu_kv_block){k.data + sq->q_row0 * k.ld + kvc,
                                         v.data + sq->q_row0 * v.ld + kvc, NULL, NULL, sq->n_new,
                                         k.ld, 0};
        return CPU_KV_N;
    }
    const be_kv_pages *p = sq->pages;
    int64_t n_keys = sq->n_past + sq->n_new;
    int n = 0;
    for (int64_t pos = 0; pos < n_keys; pos += p->page, n++) {
        int32_t id = sq->page_ids[pos / p->page];
        int64_t len = n_keys - pos < p->page ? n_keys - pos : p->page;
        kv[n] = (cpu_kv_block){cpu_kv_keys(p, sq->layer, id) + kvc,
                               cpu_kv_values(p, sq->layer, id) + kvc, NULL, NULL, len, p->width, 0};
    }
    return n;
}

static int max_blocks(const be_attn_seq *seqs, int n_seqs)
{
    int64_t m = CPU_KV_N;
    for (int s = 0; s < n_seqs; s++)
        if (seqs[s].pages) {
            int64_t b = (seqs[s].n_past + seqs[s].n_new + seqs[s].pages->page - 1) / seqs[s].pages->page;
            m = b > m ? b : m;
        }
    return (int)m;
}

/* One sequence, one head: out_h [n, hd] = softmax(scale q_h K_h^T) V_h over
 * its key blocks (cpu_attn.h). */
static void attend_head(const cpu_kv_block *kv, int n_kv, const float *q, int64_t ldq, float *out,
                        int64_t ldo, int64_t n, int hd, bool causal, float scale)
{
    float *scores = xmalloc(sizeof(float) * (size_t)(n * cpu_attn_n_keys(kv, n_kv))); /* [n, n_keys] */
    cpu_attn_probs(scores, q, ldq, kv, n_kv, n, hd, causal, scale);
    cpu_attn_apply(out, ldo, scores, kv, n_kv, n, hd);
    free(scores);
}

/* (sequence, head) pairs run in parallel; the BLAS calls inside run on one
 * thread each (OpenBLAS's OpenMP build does so inside a parallel region). */
static void cpu_attention(be_backend *be, be_mat out, be_mat q, be_mat k, be_mat v,
                          const be_attn_seq *seqs, int n_seqs, be_attn_shape sh)
{
    (void)be;
    int hd = sh.head_dim, group = sh.n_heads / sh.n_kv_heads, cap = max_blocks(seqs, n_seqs);
    for (int s = 0; s < n_seqs; s++)
        if (seqs[s].pages) cache_append(k, v, &seqs[s]);
    int64_t n_tasks = (int64_t)n_seqs * sh.n_heads;
#pragma omp parallel for schedule(dynamic)
    for (int64_t task = 0; task < n_tasks; task++) {
        int s = (int)(task / sh.n_heads), h = (int)(task % sh.n_heads), kvh = h / group;
        const be_attn_seq *sq = &seqs[s];
        cpu_kv_block *kv = xmalloc(sizeof(cpu_kv_block) * (size_t)cap);
        int n_kv = seq_blocks(kv, sq, k, v, (int64_t)kvh * hd);
        attend_head(kv, n_kv, q.data + sq->q_row0 * q.ld + (int64_t)h * hd, q.ld,
                    out.data + sq->q_row0 * out.ld + (int64_t)h * hd, out.ld, sq->n_new, hd,
                    sh.causal, sh.scale);
        free(kv);
    }
}

static void cpu_token_logprobs(be_backend *be, be_mat logits, const int32_t *target,
                               float *out_logp, int32_t *argmax)
{
#pragma omp parallel for if (logits.rows > 1)
    for (int64_t r = 0; r < logits.rows; r++) {
        const float *x = logits.data + r * logits.ld;
        float mx = x[0];
        int64_t best = 0;
        for (int64_t c = 1; c < logits.cols; c++)
            if (x[c] > mx) {
                mx = x[c];
                best = c;
            }
        double sum = 0;
        for (int64_t c = 0; c < logits.cols; c++) sum += exp((double)x[c] - mx);
        int64_t t = target ? target[r] : best;
        if (out_logp) out_logp[r] = (float)((double)x[t] - mx - log(sum));
        if (argmax) argmax[r] = (int32_t)best;
    }
}

static void cpu_destroy(be_backend *be)
{
    cpu_state *st = be->impl;
    for (int i = 0; i < st->n; i++) free(st->buf[i]);
    free(st->rope_cos);
    free(st->rope_sin);
    free(st->rope_pos);
    free(st->xT);
    free(st);
    free(be);
}

/* OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to its
 * generic Prescott kernels, several times slower; it reads
 * OPENBLAS_CORETYPE only at load time, so all we can do is say so. */
static void warn_generic_blas(void)
{
    const char *core = openblas_get_corename();
    if (!core || strcmp(core, "Prescott") != 0 || getenv("OPENBLAS_CORETYPE")) return;
    const char *better = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                         : __builtin_cpu_supports("avx2")  ? "Haswell"
                                                           : NULL;
    if (better && err_rank() <= 0)
        log_warn("OpenBLAS runs its generic Prescott kernels on this CPU; export "
                 "OPENBLAS_CORETYPE=%s for several times faster matrix products",
                 better);
}

be_backend *be_cpu_new(int n_threads)
{
    static int warned;
    if (!warned++) warn_generic_blas();
#ifdef _OPENMP
    if (n_threads > 0) omp_set_num_threads(n_threads);
#endif
    be_backend *be = xcalloc(1, sizeof *be);
    be->name = "cpu";
    cpu_state *st = xcalloc(1, sizeof(cpu_state));
    st->gemm_small = cpu_gemm_small_kernel(CPU_ISA_BEST);
    be->impl = st;
    be->mat_new = cpu_mat_new;
    be->mat_free = cpu_mat_free;
    be->upload = cpu_upload;
    be->download = cpu_download;
    be->copy = cpu_copy;
    be->weight_new = cpu_weight_new;
    be->weight_free = cpu_weight_free;
    be->linear = cpu_linear;
    be->rmsnorm = cpu_rmsnorm;
    be->layernorm = cpu_layernorm;
    be->add = cpu_add;
    be->add_rows = cpu_add_rows;
    be->gelu_erf = cpu_gelu_erf;
    be->quick_gelu = cpu_quick_gelu;
    be->silu_mul = cpu_silu_mul;
    be->embed = cpu_embed;
    be->rope = cpu_rope;
    be->attention = cpu_attention;
    be->token_logprobs = cpu_token_logprobs;
    be->destroy = cpu_destroy;
    cpu_train_install(be);
    cpu_kv_install(be);
    return be;
}
