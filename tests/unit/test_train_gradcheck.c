/* test_train_gradcheck.c — every backward op of the CPU backend against
 * central finite differences of a float64 reference forward.
 *
 * For an op y = f(inputs) and fixed random weights c, the scalar
 * L = sum(c . y) has dL/dy = c: the backend's backward (float32) gets c as
 * dy, and a few entries of each input gradient are compared with
 * (L(x + h) - L(x - h)) / 2h computed in float64 on the same values. */
#include "backend.h"
#include "check.h"
#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 12345;
static double urand(void) /* [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
static void fill(float *x, int64_t n, double s)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(s * urand());
}

/* The op under test as a float64 function of its (float) inputs. */
typedef double (*loss_fn)(void *ctx);

/* Compare analytic grad[idx] with the central difference on x[idx]. */
static void fd_check(const char *what, loss_fn L, void *ctx, double *x, const float *grad,
                     int64_t n, int n_checks)
{
    double worst = 0;
    for (int c = 0; c < n_checks; c++) {
        int64_t i = (int64_t)((c * 7919 + 13) % n);
        double keep = x[i], h = 1e-5;
        x[i] = keep + h;
        double lp = L(ctx);
        x[i] = keep - h;
        double lm = L(ctx);
        x[i] = keep;
        double fd = (lp - lm) / (2 * h), err = fabs(fd - grad[i]) / (1e-3 + fabs(fd));
        worst = err > worst ? err : worst;
    }
    CHECK_MSG(worst < 2e-3, "%s: analytic vs finite-difference gradient off by %.3g", what, worst);
}

static double *to_f64(const float *x, int64_t n)
{
    double *d = xmalloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static be_mat up(be_backend *be, const float *x, int64_t r, int64_t c)
{
    be_mat m = be->mat_new(be, r, c);
    be->upload(be, m, x);
    return m;
}
static float *down(be_backend *be, be_mat m)
{
    float *h = xmalloc(sizeof(float) * (size_t)(m.rows * m.cols));
    be->download(be, m, h);
    return h;
}

/* ---------------------------------------------------------------- linear */
typedef struct { double *x, *w, *b, *c; int M, N, K; } lin_ctx;
static double lin_loss(void *p)
{
    lin_ctx *t = p;
    double L = 0;
    for (int m = 0; m < t->M; m++)
        for (int n = 0; n < t->N; n++) {
            double y = t->b[n];
            for (int k = 0; k < t->K; k++) y += t->x[m * t->K + k] * t->w[n * t->K + k];
            L += t->c[m * t->N + n] * y;
        }
    return L;
}
static void test_linear(be_backend *be)
{
    int M = 5, N = 300, K = 7; /* N > one column block */
    float x[35], *w = xmalloc(sizeof(float) * N * K), b[300], *c = xmalloc(sizeof(float) * M * N);
    fill(x, M * K, 1), fill(w, N * K, 1), fill(b, N, 1), fill(c, M * N, 1);
    be_weight W;
    be->weight_new(be, w, N, K, &W);
    be_mat dx = be->mat_new(be, M, K), dw = be->mat_new(be, N, K), db = be->mat_new(be, 1, N),
           dy = up(be, c, M, N), xm = up(be, x, M, K);
    be->linear_dx(be, dx, dy, &W);
    be->linear_dw(be, dw, db, dy, xm);
    lin_ctx t = {to_f64(x, M * K), to_f64(w, N * K), to_f64(b, N), to_f64(c, M * N), M, N, K};
    float *gx = down(be, dx), *gw = down(be, dw), *gb = down(be, db);
    fd_check("linear dx", lin_loss, &t, t.x, gx, M * K, 10);
    fd_check("linear dW", lin_loss, &t, t.w, gw, N * K, 10);
    fd_check("linear db", lin_loss, &t, t.b, gb, N, 10);
    free(gx), free(gw), free(gb), free(t.x), free(t.w), free(t.b), free(t.c), free(w), free(c);
    be_mat *ms[] = {&dx, &dw, &db, &dy, &xm};
    for (int i = 0; i < 5; i++) be->mat_free(be, ms[i]);
    be->weight_free(be, &W);
}

/* ------------------------------------------------------------- rms/layer norm */
typedef struct { double *x, *w, *b, *c; int R, D; bool layer; } norm_ctx;
static double norm_loss(void *p)
{
    norm_ctx *t = p;
    double L = 0, eps = 1e-5;
    for (int r = 0; r < t->R; r++) {
        const double *x = t->x + r * t->D;
        double mu = 0, ss = 0;
        if (t->layer) {
            for (int i = 0; i < t->D; i++) mu += x[i];
            mu /= t->D;
        }
        for (int i = 0; i < t->D; i++) ss += (x[i] - mu) * (x[i] - mu);
        double inv = 1.0 / sqrt(ss / t->D + eps);
        for (int i = 0; i < t->D; i++)
            L += t->c[r * t->D + i] * ((x[i] - mu) * inv * t->w[i] + (t->layer ? t->b[i] : 0));
    }
    return L;
}
static void test_norm(be_backend *be, bool layer)
{
    int R = 4, D = 24;
    float x[96], w[24], b[24], c[96];
    fill(x, R * D, 2), fill(w, D, 1), fill(b, D, 1), fill(c, R * D, 1);
    be_weight W, B;
    be->weight_new(be, w, 1, D, &W);
    be->weight_new(be, b, 1, D, &B);
    be_mat dx = be->mat_new(be, R, D), dw = be->mat_new(be, 1, D), db = be->mat_new(be, 1, D),
           dy = up(be, c, R, D), xm = up(be, x, R, D);
    if (layer) be->layernorm_backward(be, dx, dw, db, dy, xm, &W, 1e-5f);
    else be->rmsnorm_backward(be, dx, dw, dy, xm, &W, 1e-5f);
    norm_ctx t = {to_f64(x, R * D), to_f64(w, D), to_f64(b, D), to_f64(c, R * D), R, D, layer};
    float *gx = down(be, dx), *gw = down(be, dw), *gb = down(be, db);
    fd_check(layer ? "layernorm dx" : "rmsnorm dx", norm_loss, &t, t.x, gx, R * D, 12);
    fd_check(layer ? "layernorm dw" : "rmsnorm dw", norm_loss, &t, t.w, gw, D, 8);
    if (layer) fd_check("layernorm db", norm_loss, &t, t.b, gb, D, 8);
    free(gx), free(gw), free(gb), free(t.x), free(t.w), free(t.b), free(t.c);
    be_mat *ms[] = {&dx, &dw, &db, &dy, &xm};
    for (int i = 0; i < 5; i++) be->mat_free(be, ms[i]);
    be->weight_free(be, &W);
    be->weight_free(be, &B);
}

/* ----------------------------------------------------------- activations */
typedef struct { double *x, *u, *c; int n, kind; } act_ctx; /* kind 0 gelu, 1 quick, 2 silu*up */
static double act_loss(void *p)
{
    act_ctx *t = p;
    double L = 0;
    for (int i = 0; i < t->n; i++) {
        double v = t->x[i], y;
        if (t->kind == 0) y = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        else if (t->kind == 1) y = v / (1 + exp(-1.702 * v));
        else y = v / (1 + exp(-v)) * t->u[i];
        L += t->c[i] * y;
    }
    return L;
}
static void test_activation(be_backend *be, int kind)
{
    int n = 40;
    float x[40], u[40], c[40];
    fill(x, n, 3), fill(u, n, 1), fill(c, n, 1);
    be_mat dx = be->mat_new(be, 4, 10), du = be->mat_new(be, 4, 10), dy = up(be, c, 4, 10),
           xm = up(be, x, 4, 10), um = up(be, u, 4, 10);
    if (kind == 0) be->gelu_erf_backward(be, dx, dy, xm);
    else if (kind == 1) be->quick_gelu_backward(be, dx, dy, xm);
    else be->silu_mul_backward(be, dx, du, dy, xm, um);
    act_ctx t = {to_f64(x, n), to_f64(u, n), to_f64(c, n), n, kind};
    float *gx = down(be, dx), *gu = down(be, du);
    const char *names[] = {"gelu(erf)", "quick_gelu", "silu*up gate"};
    fd_check(names[kind], act_loss, &t, t.x, gx, n, 12);
    if (kind == 2) fd_check("silu*up up", act_loss, &t, t.u, gu, n, 12);
    free(gx), free(gu), free(t.x), free(t.u), free(t.c);
    be_mat *ms[] = {&dx, &du, &dy, &xm, &um};
    for (int i = 0; i < 5; i++) be->mat_free(be, ms[i]);
}

/* -------------------------------------------------------------- embedding */
static void test_embed(be_backend *be)
{
    /* exact: dE[id] = sum of the dy rows with that id; rows with id -1 skipped */
    int V = 6, D = 5, T = 4;
    int32_t ids[4] = {2, 5, 2, -1};
    float c[20];
    fill(c, T * D, 1);
    be_mat dE = be->mat_new(be, V, D), dy = up(be, c, T, D);
    be->embed_backward(be, dE, dy, ids);
    float *g = down(be, dE);
    int ok = 1;
    for (int v = 0; v < V; v++)
        for (int d = 0; d < D; d++) {
            float want = 0;
            for (int t = 0; t < T; t++)
                if (ids[t] == v) want += c[t * D + d];
            ok &= g[v * D + d] == want;
        }
    CHECK_MSG(ok, "embedding backward is not the scatter-add of dy");
    free(g);
    be->mat_free(be, &dE);
    be->mat_free(be, &dy);
}

/* ------------------------------------------------------------------- rope */
typedef struct { double *x, *c; const int32_t *pos; int R, H, hd; } rope_ctx;
static double rope_loss(void *p)
{
    rope_ctx *t = p;
    double L = 0;
    int half = t->hd / 2;
    for (int r = 0; r < t->R; r++)
        for (int h = 0; h < t->H; h++)
            for (int i = 0; i < half; i++) {
                float f = 1.0f / powf(10000.0f, (float)(2 * i) / (float)t->hd);
                float ang = (float)t->pos[r] * f;
                double cs = cosf(ang), sn = sinf(ang);
                int64_t o = (int64_t)r * t->H * t->hd + h * t->hd + i;
                double a = t->x[o], b = t->x[o + half];
                L += t->c[o] * (a * cs - b * sn) + t->c[o + half] * (b * cs + a * sn);
            }
    return L;
}
static void test_rope(be_backend *be)
{
    int R = 5, H = 2, hd = 8, n = R * H * hd;
    int32_t pos[5] = {0, 1, 2, 7, 30};
    float x[80], c[80];
    fill(x, n, 1), fill(c, n, 1);
    be_mat g = up(be, c, R, H * hd);
    be->rope_backward(be, g, H, hd, pos, 10000.0);
    rope_ctx t = {to_f64(x, n), to_f64(c, n), pos, R, H, hd};
    float *gx = down(be, g);
    fd_check("rope", rope_loss, &t, t.x, gx, n, 16);
    free(gx), free(t.x), free(t.c);
    be->mat_free(be, &g);
}

/* -------------------------------------------------------------- attention */
typedef struct { double *q, *k, *v, *c; int n_seq, T, H, KVH, hd; bool causal; } att_ctx;
static double att_loss(void *p)
{
    att_ctx *t = p;
    int qw = t->H * t->hd, kw = t->KVH * t->hd, g = t->H / t->KVH;
    double L = 0, scale = 1.0 / sqrt((double)t->hd);
    double s[16];
    for (int q0 = 0; q0 < t->n_seq; q0++)
        for (int h = 0; h < t->H; h++)
            for (int i = 0; i < t->T; i++) {
                int ri = q0 * t->T + i, n_keys = t->causal ? i + 1 : t->T;
                double mx = -1e300, sum = 0;
                for (int j = 0; j < n_keys; j++) {
                    double d = 0;
                    for (int e = 0; e < t->hd; e++)
                        d += t->q[ri * qw + h * t->hd + e] * t->k[(q0 * t->T + j) * kw + (h / g) * t->hd + e];
                    s[j] = d * scale;
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j < n_keys; j++) sum += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < t->hd; e++) {
                    double o = 0;
                    for (int j = 0; j < n_keys; j++)
                        o += s[j] / sum * t->v[(q0 * t->T + j) * kw + (h / g) * t->hd + e];
                    L += t->c[ri * qw + h * t->hd + e] * o;
                }
            }
    return L;
}
static void test_attention(be_backend *be, bool causal)
{
    int n_seq = 2, T = 6, H = 4, KVH = causal ? 2 : 4, hd = 8, R = n_seq * T;
    int qw = H * hd, kw = KVH * hd;
    float *q = xmalloc(sizeof(float) * R * qw), *k = xmalloc(sizeof(float) * R * kw),
          *v = xmalloc(sizeof(float) * R * kw), *c = xmalloc(sizeof(float) * R * qw);
    fill(q, R * qw, 1), fill(k, R * kw, 1), fill(v, R * kw, 1), fill(c, R * qw, 1);
    be_attn_seq seqs[2] = {{.q_row0 = 0, .n_new = T}, {.q_row0 = T, .n_new = T}};
    be_attn_shape sh = {H, KVH, hd, causal, 1.0f / sqrtf((float)hd)};
    be_mat dq = be->mat_new(be, R, qw), dk = be->mat_new(be, R, kw), dv = be->mat_new(be, R, kw),
           dout = up(be, c, R, qw), qm = up(be, q, R, qw), km = up(be, k, R, kw), vm = up(be, v, R, kw);
    be->attention_backward(be, dq, dk, dv, dout, qm, km, vm, seqs, n_seq, sh);
    att_ctx t = {to_f64(q, R * qw), to_f64(k, R * kw), to_f64(v, R * kw), to_f64(c, R * qw),
                 n_seq, T, H, KVH, hd, causal};
    float *gq = down(be, dq), *gk = down(be, dk), *gv = down(be, dv);
    fd_check(causal ? "causal GQA attention dq" : "attention dq", att_loss, &t, t.q, gq, R * qw, 16);
    fd_check(causal ? "causal GQA attention dk" : "attention dk", att_loss, &t, t.k, gk, R * kw, 16);
    fd_check(causal ? "causal GQA attention dv" : "attention dv", att_loss, &t, t.v, gv, R * kw, 16);
    free(gq), free(gk), free(gv), free(t.q), free(t.k), free(t.v), free(t.c);
    free(q), free(k), free(v), free(c);
    be_mat *ms[] = {&dq, &dk, &dv, &dout, &qm, &km, &vm};
    for (int i = 0; i < 7; i++) be->mat_free(be, ms[i]);
}

/* --------------------------------------------------------- log-softmax */
typedef struct { double *x; const int32_t *tgt; const float *w; int R, V; } lsm_ctx;
static double lsm_loss(void *p)
{
    lsm_ctx *t = p;
    double L = 0;
    for (int r = 0; r < t->R; r++) {
        const double *x = t->x + r * t->V;
        double mx = -1e300, s = 0;
        for (int i = 0; i < t->V; i++) mx = x[i] > mx ? x[i] : mx;
        for (int i = 0; i < t->V; i++) s += exp(x[i] - mx);
        L += t->w[r] * (x[t->tgt[r]] - mx - log(s));
    }
    return L;
}
static void test_logprobs(be_backend *be)
{
    int R = 3, V = 50;
    float x[150], w[3] = {0.7f, -1.3f, 0.25f};
    int32_t tgt[3] = {4, 49, 0}, other[3];
    fill(x, R * V, 4);
    be_mat xm = up(be, x, R, V), dx = be->mat_new(be, R, V);
    be->token_logprobs_backward(be, dx, xm, tgt, w);
    lsm_ctx t = {to_f64(x, R * V), tgt, w, R, V};
    float *g = down(be, dx);
    fd_check("log-softmax", lsm_loss, &t, t.x, g, R * V, 20);
    be->best_other_token(be, xm, tgt, other);
    int ok = 1;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < V; i++) ok &= other[r] != tgt[r] && (i == tgt[r] || x[r * V + i] <= x[r * V + other[r]]);
    CHECK_MSG(ok, "best_other_token is not the most likely other token");
    free(g), free(t.x);
    be->mat_free(be, &xm);
    be->mat_free(be, &dx);
}

int main(void)
{
    be_backend *be = be_cpu_new(0);
    test_linear(be);
    test_norm(be, false);
    test_norm(be, true);
    for (int k = 0; k < 3; k++) test_activation(be, k);
    test_embed(be);
    test_rope(be);
    test_attention(be, true);
    test_attention(be, false);
    test_logprobs(be);
    be->destroy(be);
    return check_finish();
}
