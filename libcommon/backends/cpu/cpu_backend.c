/* cpu_backend.c — backends layer: the float32 CPU reference backend.
 * Matrix products through OpenBLAS, everything else as plain loops spread
 * over OpenMP threads. Clarity and exactness first: every CUDA kernel is
 * tested against these functions. */
#include "backend.h"
#include "err.h"
#include "log.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static be_mat cpu_mat_new(be_backend *be, int64_t rows, int64_t cols)
{
    be_mat m = {xcalloc((size_t)(rows * cols), sizeof(float)), rows, cols, cols};
    return m;
}

static void cpu_mat_free(be_backend *be, be_mat *m)
{
    free(m->data);
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

/* y [M, N] = x [M, K] . W [N, K]^T (+ bias) */
static void cpu_linear(be_backend *be, be_mat y, be_mat x, const be_weight *w,
                       const be_weight *bias, bool accumulate)
{
    const float *W = w->data;
    int64_t M = x.rows, K = x.cols, N = w->rows;
    float beta = accumulate ? 1.0f : 0.0f;
    if (M == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)K, 1.0f, W, (int)K, x.data, 1,
                    beta, y.data, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f,
                    x.data, (int)x.ld, W, (int)K, beta, y.data, (int)y.ld);
    if (bias) {
        const float *b = bias->data;
#pragma omp parallel for if (M * N > 16384)
        for (int64_t r = 0; r < M; r++)
            for (int64_t c = 0; c < N; c++) y.data[r * y.ld + c] += b[c];
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

/* Rotate-half RoPE, computed in float32 as transformers does: inv_freq =
 * 1 / theta^(2i/d), angle = pos * inv_freq, both float32. */
static void cpu_rope(be_backend *be, be_mat x, int n_heads, int head_dim,
                     const int32_t *positions, double theta)
{
    int half = head_dim / 2;
    float *inv_freq = xmalloc(sizeof(float) * half);
    for (int i = 0; i < half; i++)
        inv_freq[i] = 1.0f / powf((float)theta, (float)(2 * i) / (float)head_dim);
#pragma omp parallel for if (x.rows > 4)
    for (int64_t r = 0; r < x.rows; r++) {
        float *row = x.data + r * x.ld;
        for (int i = 0; i < half; i++) {
            float ang = (float)positions[r] * inv_freq[i];
            float c = cosf(ang), s = sinf(ang);
            for (int h = 0; h < n_heads; h++) {
                float *v = row + (int64_t)h * head_dim;
                float a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
    }
    free(inv_freq);
}

/* Softmax of row[0..n) in place; entries >= n_valid are masked to 0. */
static void softmax_prefix(float *row, int64_t n_valid, int64_t n)
{
    float mx = -FLT_MAX;
    for (int64_t j = 0; j < n_valid; j++) mx = row[j] > mx ? row[j] : mx;
    double sum = 0;
    for (int64_t j = 0; j < n_valid; j++) {
        row[j] = expf(row[j] - mx);
        sum += row[j];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < n_valid; j++) row[j] *= inv;
    for (int64_t j = n_valid; j < n; j++) row[j] = 0.0f;
}

/* One sequence, one head: out_h [n, hd] = softmax(q_h k_h^T * scale) v_h with
 * keys 0..n_keys; causal rows see keys up to n_past + i. */
static void attend_head(float *scores /* [n, n_keys] */, const float *q, int64_t ldq,
                        const float *k, const float *v, int64_t ldkv, float *out,
                        int64_t ldo, int64_t n, int64_t n_keys, int64_t n_past, int hd,
                        bool causal, float scale)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n_keys, hd, scale, q,
                (int)ldq, k, (int)ldkv, 0.0f, scores, (int)n_keys);
    for (int64_t i = 0; i < n; i++)
        softmax_prefix(scores + i * n_keys, causal ? n_past + i + 1 : n_keys, n_keys);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, hd, (int)n_keys, 1.0f,
                scores, (int)n_keys, v, (int)ldkv, 0.0f, out, (int)ldo);
}

/* Where one sequence's keys and values are: its cache (after appending the
 * new rows) or, without a cache, its own new rows. */
typedef struct {
    const float *keys, *vals;
    int64_t ldkv, n_keys, n_past;
} kv_view;

static kv_view attn_kv_view(be_backend *be, be_mat k, be_mat v, const be_attn_seq *sq)
{
    kv_view w;
    if (sq->k_cache.data) {
        cpu_copy(be, be_rows(sq->k_cache, sq->n_past, sq->n_new), be_rows(k, sq->q_row0, sq->n_new));
        cpu_copy(be, be_rows(sq->v_cache, sq->n_past, sq->n_new), be_rows(v, sq->q_row0, sq->n_new));
        w = (kv_view){sq->k_cache.data, sq->v_cache.data, sq->k_cache.ld, sq->n_past + sq->n_new,
                      sq->n_past};
    } else {
        w = (kv_view){k.data + sq->q_row0 * k.ld, v.data + sq->q_row0 * v.ld, k.ld, sq->n_new, 0};
    }
    return w;
}

/* (sequence, head) pairs run in parallel; the BLAS calls inside run on one
 * thread each (OpenBLAS's OpenMP build does so inside a parallel region). */
static void cpu_attention(be_backend *be, be_mat out, be_mat q, be_mat k, be_mat v,
                          const be_attn_seq *seqs, int n_seqs, be_attn_shape sh)
{
    int hd = sh.head_dim, group = sh.n_heads / sh.n_kv_heads;
    kv_view *views = xmalloc(sizeof(kv_view) * (size_t)(n_seqs ? n_seqs : 1));
    for (int s = 0; s < n_seqs; s++) views[s] = attn_kv_view(be, k, v, &seqs[s]);
    int64_t n_tasks = (int64_t)n_seqs * sh.n_heads;
#pragma omp parallel for schedule(dynamic)
    for (int64_t task = 0; task < n_tasks; task++) {
        int s = (int)(task / sh.n_heads), h = (int)(task % sh.n_heads), kvh = h / group;
        const be_attn_seq *sq = &seqs[s];
        const kv_view *w = &views[s];
        float *scores = xmalloc(sizeof(float) * (size_t)(sq->n_new * w->n_keys));
        attend_head(scores, q.data + sq->q_row0 * q.ld + (int64_t)h * hd, q.ld,
                    w->keys + (int64_t)kvh * hd, w->vals + (int64_t)kvh * hd, w->ldkv,
                    out.data + sq->q_row0 * out.ld + (int64_t)h * hd, out.ld, sq->n_new,
                    w->n_keys, w->n_past, hd, sh.causal, sh.scale);
        free(scores);
    }
    free(views);
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
        if (out_logp) out_logp[r] = (float)((double)x[target[r]] - mx - log(sum));
        if (argmax) argmax[r] = (int32_t)best;
    }
}

static void cpu_destroy(be_backend *be) { free(be); }

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
    return be;
}
