/* cpu_train.c — backends layer: the float32 CPU backward operations.
 * The same rules as the forward ops: matrix products through OpenBLAS in
 * fixed blocks of output columns (or rows), one single-threaded BLAS call per
 * block, so every element's arithmetic is independent of the thread count;
 * reductions over rows (weight and bias gradients) run in a fixed order. */
#include "cpu_train.h"
#include "cpu_attn.h"
#include "err.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CPU_TRAIN_BLOCK 256

static int64_t n_blocks(int64_t n) { return (n + CPU_TRAIN_BLOCK - 1) / CPU_TRAIN_BLOCK; }
static int64_t block_len(int64_t n, int64_t b)
{
    int64_t rest = n - b * CPU_TRAIN_BLOCK;
    return rest < CPU_TRAIN_BLOCK ? rest : CPU_TRAIN_BLOCK;
}

static void cpu_scale(be_backend *be, be_mat x, float s)
{
    (void)be;
#pragma omp parallel for if (x.rows * x.cols > 16384)
    for (int64_t r = 0; r < x.rows; r++)
        for (int64_t c = 0; c < x.cols; c++) x.data[r * x.ld + c] *= s;
}

static void cpu_weight_set(be_backend *be, be_weight *w, const float *host)
{
    (void)be;
    memcpy(w->data, host, sizeof(float) * (size_t)(w->rows * w->cols));
}

static void cpu_weight_get(be_backend *be, const be_weight *w, float *host)
{
    (void)be;
    memcpy(host, w->data, sizeof(float) * (size_t)(w->rows * w->cols));
}

/* dx [M, K] += dy [M, N] . W [N, K], blocks of dx columns. */
static void cpu_linear_dx(be_backend *be, be_mat dx, be_mat dy, const be_weight *w)
{
    (void)be;
    const float *W = w->data;
    int64_t M = dy.rows, N = w->rows, K = w->cols;
    if (M == 0) return;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_blocks(K); b++) {
        int64_t k0 = b * CPU_TRAIN_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)block_len(K, b),
                    (int)N, 1.0f, dy.data, (int)dy.ld, W + k0, (int)K, 1.0f, dx.data + k0,
                    (int)dx.ld);
    }
}

/* dW [N, K] += dy^T [N, M] . x [M, K], blocks of dW rows; db [N] += sum_m dy. */
static void cpu_linear_dw(be_backend *be, be_mat dw, be_mat db, be_mat dy, be_mat x)
{
    (void)be;
    int64_t M = dy.rows, N = dy.cols, K = x.cols;
    if (M == 0) return;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_blocks(N); b++) {
        int64_t n0 = b * CPU_TRAIN_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)block_len(N, b), (int)K,
                    (int)M, 1.0f, dy.data + n0, (int)dy.ld, x.data, (int)x.ld, 1.0f,
                    dw.data + n0 * dw.ld, (int)dw.ld);
    }
    if (!db.data) return;
#pragma omp parallel for if (N > 256)
    for (int64_t n = 0; n < N; n++) {
        double s = 0;
        for (int64_t m = 0; m < M; m++) s += dy.data[m * dy.ld + n];
        db.data[n] += (float)s;
    }
}

/* y = g * x * inv, inv = 1/sqrt(mean(x^2) + eps):
 * dx = inv * (g.dy) - x * inv^3 / D * sum(g.dy.x);  dg += sum_rows dy * x * inv. */
static void cpu_rmsnorm_backward(be_backend *be, be_mat dx, be_mat dw, be_mat dy, be_mat x,
                                 const be_weight *w, float eps)
{
    (void)be;
    const float *g = w->data;
    int64_t R = x.rows, D = x.cols;
    float *inv = xmalloc(sizeof(float) * (size_t)(R ? R : 1));
#pragma omp parallel for if (R > 4)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x.data + r * x.ld, *dyr = dy.data + r * dy.ld;
        float *dxr = dx.data + r * dx.ld;
        double ss = 0, dot = 0;
        for (int64_t c = 0; c < D; c++) ss += (double)xr[c] * xr[c];
        double iv = 1.0 / sqrt((double)(float)(ss / (double)D) + eps);
        inv[r] = (float)iv;
        for (int64_t c = 0; c < D; c++) dot += (double)g[c] * dyr[c] * xr[c];
        double k = dot * iv * iv * iv / (double)D;
        for (int64_t c = 0; c < D; c++) dxr[c] += (float)(iv * g[c] * dyr[c] - k * xr[c]);
    }
    if (dw.data) {
#pragma omp parallel for if (D > 256)
        for (int64_t c = 0; c < D; c++) {
            double s = 0;
            for (int64_t r = 0; r < R; r++)
                s += (double)dy.data[r * dy.ld + c] * x.data[r * x.ld + c] * inv[r];
            dw.data[c] += (float)s;
        }
    }
    free(inv);
}

/* y = xhat * g + b, xhat = (x - mean) * inv:
 * dx = inv * (dxhat - mean(dxhat) - xhat * mean(dxhat . xhat)), dxhat = dy . g. */
static void cpu_layernorm_backward(be_backend *be, be_mat dx, be_mat dw, be_mat db, be_mat dy,
                                   be_mat x, const be_weight *w, float eps)
{
    (void)be;
    const float *g = w->data;
    int64_t R = x.rows, D = x.cols;
    double *mean = xmalloc(sizeof(double) * (size_t)(R ? R : 1));
    double *inv = xmalloc(sizeof(double) * (size_t)(R ? R : 1));
#pragma omp parallel for if (R > 4)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x.data + r * x.ld, *dyr = dy.data + r * dy.ld;
        float *dxr = dx.data + r * dx.ld;
        double mu = 0, var = 0, s1 = 0, s2 = 0;
        for (int64_t c = 0; c < D; c++) mu += xr[c];
        mu /= (double)D;
        for (int64_t c = 0; c < D; c++) var += (xr[c] - mu) * (xr[c] - mu);
        var /= (double)D;
        double iv = 1.0 / sqrt(var + eps);
        mean[r] = mu;
        inv[r] = iv;
        for (int64_t c = 0; c < D; c++) {
            double dxh = (double)dyr[c] * g[c], xh = (xr[c] - mu) * iv;
            s1 += dxh;
            s2 += dxh * xh;
        }
        s1 /= (double)D;
        s2 /= (double)D;
        for (int64_t c = 0; c < D; c++) {
            double dxh = (double)dyr[c] * g[c], xh = (xr[c] - mu) * iv;
            dxr[c] += (float)(iv * (dxh - s1 - xh * s2));
        }
    }
#pragma omp parallel for if (D > 256)
    for (int64_t c = 0; c < D; c++) {
        double sg = 0, sb = 0;
        for (int64_t r = 0; r < R; r++) {
            double d = dy.data[r * dy.ld + c];
            sg += d * (x.data[r * x.ld + c] - mean[r]) * inv[r];
            sb += d;
        }
        if (dw.data) dw.data[c] += (float)sg;
        if (db.data) db.data[c] += (float)sb;
    }
    free(mean);
    free(inv);
}

static void cpu_gelu_erf_backward(be_backend *be, be_mat dx, be_mat dy, be_mat x)
{
    (void)be;
#pragma omp parallel for if (x.rows * x.cols > 16384)
    for (int64_t r = 0; r < x.rows; r++)
        for (int64_t c = 0; c < x.cols; c++) {
            double v = x.data[r * x.ld + c];
            double d = 0.5 * (1.0 + erf(v * 0.70710678118654752440)) +
                       v * exp(-0.5 * v * v) * 0.39894228040143267794;
            dx.data[r * dx.ld + c] += (float)(d * dy.data[r * dy.ld + c]);
        }
}

static void cpu_quick_gelu_backward(be_backend *be, be_mat dx, be_mat dy, be_mat x)
{
    (void)be;
#pragma omp parallel for if (x.rows * x.cols > 16384)
    for (int64_t r = 0; r < x.rows; r++)
        for (int64_t c = 0; c < x.cols; c++) {
            double v = x.data[r * x.ld + c], s = 1.0 / (1.0 + exp(-1.702 * v));
            double d = s + 1.702 * v * s * (1.0 - s);
            dx.data[r * dx.ld + c] += (float)(d * dy.data[r * dy.ld + c]);
        }
}

static void cpu_silu_mul_backward(be_backend *be, be_mat dgate, be_mat dup, be_mat dout,
                                  be_mat gate, be_mat up)
{
    (void)be;
#pragma omp parallel for if (gate.rows * gate.cols > 16384)
    for (int64_t r = 0; r < gate.rows; r++)
        for (int64_t c = 0; c < gate.cols; c++) {
            double g = gate.data[r * gate.ld + c], u = up.data[r * up.ld + c];
            double d = dout.data[r * dout.ld + c], s = 1.0 / (1.0 + exp(-g));
            dgate.data[r * dgate.ld + c] += (float)(d * u * s * (1.0 + g * (1.0 - s)));
            dup.data[r * dup.ld + c] += (float)(d * g * s);
        }
}

/* Threads own column ranges, rows are added in order: deterministic. */
static void cpu_embed_backward(be_backend *be, be_mat dtable, be_mat dy, const int32_t *ids)
{
    (void)be;
    int64_t D = dy.cols;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_blocks(D); b++) {
        int64_t c0 = b * CPU_TRAIN_BLOCK, n = block_len(D, b);
        for (int64_t r = 0; r < dy.rows; r++) {
            if (ids[r] < 0) continue;
            float *dst = dtable.data + (int64_t)ids[r] * dtable.ld + c0;
            const float *src = dy.data + r * dy.ld + c0;
            for (int64_t c = 0; c < n; c++) dst[c] += src[c];
        }
    }
}

/* The forward rotates (a, b) = (x[i], x[i+half]) by the angle; the gradient
 * rotates (da, db) back by the same angle. cos/sin in float32 exactly as the
 * forward's table computes them. */
static void cpu_rope_backward(be_backend *be, be_mat dx, int n_heads, int head_dim,
                              const int32_t *positions, double theta)
{
    (void)be;
    int half = head_dim / 2;
    float *inv_freq = xmalloc(sizeof(float) * (size_t)half);
    for (int i = 0; i < half; i++)
        inv_freq[i] = 1.0f / powf((float)theta, (float)(2 * i) / (float)head_dim);
#pragma omp parallel for if (dx.rows > 4)
    for (int64_t r = 0; r < dx.rows; r++) {
        float *row = dx.data + r * dx.ld;
        for (int i = 0; i < half; i++) {
            float ang = (float)positions[r] * inv_freq[i], c = cosf(ang), s = sinf(ang);
            for (int h = 0; h < n_heads; h++) {
                float *v = row + (int64_t)h * head_dim;
                float da = v[i], db = v[i + half];
                v[i] = da * c + db * s;
                v[i + half] = db * c - da * s;
            }
        }
    }
    free(inv_freq);
}

/* Scratch for the dk/dv that sequences with a shared prefix owe its rows:
 * [n_pre, KW] each, NULL for sequences without a prefix. Filled by the
 * parallel tasks, added into the prefix rows afterwards in sequence order. */
typedef struct {
    float **dk, **dv;
} prefix_grads;

static prefix_grads prefix_grads_new(const be_attn_seq *seqs, int n_seqs, int64_t kw)
{
    prefix_grads pg = {xcalloc((size_t)(n_seqs ? n_seqs : 1), sizeof(float *)),
                       xcalloc((size_t)(n_seqs ? n_seqs : 1), sizeof(float *))};
    for (int s = 0; s < n_seqs; s++) {
        if (seqs[s].n_pre <= 0) continue;
        pg.dk[s] = xcalloc((size_t)(seqs[s].n_pre * kw), sizeof(float));
        pg.dv[s] = xcalloc((size_t)(seqs[s].n_pre * kw), sizeof(float));
    }
    return pg;
}

/* dk/dv prefix rows += each sequence's scratch, sequences in order; threads
 * own kv heads (column ranges), so the sum's order is fixed. */
static void prefix_grads_add(prefix_grads *pg, be_mat dk, be_mat dv, const be_attn_seq *seqs,
                             int n_seqs, int n_kv_heads, int hd)
{
    int64_t kw = (int64_t)n_kv_heads * hd;
#pragma omp parallel for schedule(static)
    for (int kvh = 0; kvh < n_kv_heads; kvh++)
        for (int s = 0; s < n_seqs; s++) {
            if (!pg->dk[s]) continue;
            for (int64_t i = 0; i < seqs[s].n_pre; i++) {
                float *k = dk.data + (seqs[s].pre_row0 + i) * dk.ld + (int64_t)kvh * hd;
                float *v = dv.data + (seqs[s].pre_row0 + i) * dv.ld + (int64_t)kvh * hd;
                const float *sk = pg->dk[s] + i * kw + (int64_t)kvh * hd;
                const float *sv = pg->dv[s] + i * kw + (int64_t)kvh * hd;
                for (int c = 0; c < hd; c++) {
                    k[c] += sk[c];
                    v[c] += sv[c];
                }
            }
        }
    for (int s = 0; s < n_seqs; s++) {
        free(pg->dk[s]);
        free(pg->dv[s]);
    }
    free(pg->dk);
    free(pg->dv);
}

/* Sequence s's key blocks for kv head kvh: its shared prefix (gradients into
 * the scratch) and its own rows. */
static void seq_kv_blocks(cpu_kv_block *kv, const be_attn_seq *sq, const prefix_grads *pg, int s,
                          int64_t kc, be_mat k, be_mat v, be_mat dk, be_mat dv, int64_t kw)
{
    kv[CPU_KV_PRE] = (cpu_kv_block){0};
    if (sq->n_pre > 0)
        kv[CPU_KV_PRE] = (cpu_kv_block){k.data + sq->pre_row0 * k.ld + kc,
                                        v.data + sq->pre_row0 * v.ld + kc, pg->dk[s] + kc,
                                        pg->dv[s] + kc, sq->n_pre, k.ld, kw};
    int64_t r0 = sq->q_row0;
    kv[CPU_KV_MAIN] = (cpu_kv_block){k.data + r0 * k.ld + kc, v.data + r0 * v.ld + kc,
                                     dk.data + r0 * dk.ld + kc, dv.data + r0 * dv.ld + kc,
                                     sq->n_new, k.ld, dk.ld};
}

/* Tasks are (sequence, kv head): the query heads sharing a kv head add into
 * its dk/dv one after another, so no two threads write the same rows; a
 * shared prefix's part goes through scratch (prefix_grads). */
static void cpu_attention_backward(be_backend *be, be_mat dq, be_mat dk, be_mat dv, be_mat dout,
                                   be_mat q, be_mat k, be_mat v, const be_attn_seq *seqs,
                                   int n_seqs, be_attn_shape sh)
{
    (void)be;
    int hd = sh.head_dim, group = sh.n_heads / sh.n_kv_heads;
    int64_t kw = (int64_t)sh.n_kv_heads * hd;
    int64_t n_tasks = (int64_t)n_seqs * sh.n_kv_heads;
    prefix_grads pg = prefix_grads_new(seqs, n_seqs, kw);
#pragma omp parallel for schedule(dynamic)
    for (int64_t task = 0; task < n_tasks; task++) {
        int s = (int)(task / sh.n_kv_heads), kvh = (int)(task % sh.n_kv_heads);
        int64_t r0 = seqs[s].q_row0, n = seqs[s].n_new, kc = (int64_t)kvh * hd;
        cpu_kv_block kv[CPU_KV_N];
        seq_kv_blocks(kv, &seqs[s], &pg, s, kc, k, v, dk, dv, kw);
        int64_t nk = cpu_attn_n_keys(kv, CPU_KV_N);
        float *P = xmalloc(sizeof(float) * (size_t)(n * nk));   /* [n, n_keys] */
        float *dP = xmalloc(sizeof(float) * (size_t)(n * nk));
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            int64_t qc = (int64_t)h * hd;
            cpu_attn_head_backward(P, dP, q.data + r0 * q.ld + qc, dq.data + r0 * dq.ld + qc, q.ld,
                                   kv, CPU_KV_N, dout.data + r0 * dout.ld + qc, dout.ld, n, hd,
                                   sh.causal, sh.scale);
        }
        free(P);
        free(dP);
    }
    prefix_grads_add(&pg, dk, dv, seqs, n_seqs, sh.n_kv_heads, hd);
}

static void cpu_token_logprobs_backward(be_backend *be, be_mat dlogits, be_mat logits,
                                        const int32_t *target, const float *dlogp)
{
    (void)be;
#pragma omp parallel for if (logits.rows > 1)
    for (int64_t r = 0; r < logits.rows; r++) {
        const float *x = logits.data + r * logits.ld;
        float *d = dlogits.data + r * dlogits.ld;
        float mx = x[0];
        for (int64_t c = 1; c < logits.cols; c++) mx = x[c] > mx ? x[c] : mx;
        double sum = 0;
        for (int64_t c = 0; c < logits.cols; c++) sum += exp((double)x[c] - mx);
        double g = dlogp[r];
        for (int64_t c = 0; c < logits.cols; c++)
            d[c] -= (float)(g * exp((double)x[c] - mx) / sum);
        d[target[r]] += (float)g;
    }
}

static void cpu_best_other_token(be_backend *be, be_mat logits, const int32_t *exclude,
                                 int32_t *out)
{
    (void)be;
#pragma omp parallel for if (logits.rows > 1)
    for (int64_t r = 0; r < logits.rows; r++) {
        const float *x = logits.data + r * logits.ld;
        int64_t best = -1;
        for (int64_t c = 0; c < logits.cols; c++)
            if (c != exclude[r] && (best < 0 || x[c] > x[best])) best = c;
        out[r] = (int32_t)best;
    }
}

void cpu_train_install(be_backend *be)
{
    be->scale = cpu_scale;
    be->weight_set = cpu_weight_set;
    be->weight_get = cpu_weight_get;
    be->linear_dx = cpu_linear_dx;
    be->linear_dw = cpu_linear_dw;
    be->rmsnorm_backward = cpu_rmsnorm_backward;
    be->layernorm_backward = cpu_layernorm_backward;
    be->gelu_erf_backward = cpu_gelu_erf_backward;
    be->quick_gelu_backward = cpu_quick_gelu_backward;
    be->silu_mul_backward = cpu_silu_mul_backward;
    be->embed_backward = cpu_embed_backward;
    be->rope_backward = cpu_rope_backward;
    be->attention_backward = cpu_attention_backward;
    be->token_logprobs_backward = cpu_token_logprobs_backward;
    be->best_other_token = cpu_best_other_token;
}
