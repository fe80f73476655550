/* test_attn_prefix.c — attention with a shared prefix (be_attn_seq.n_pre)
 * on the CPU backend, causal with grouped kv heads and bidirectional:
 *  - forward: a sequence that continues another's first rows gives the
 *    outputs of the same sequence written out whole (prefix rows copied in
 *    front of it), computed as an ordinary sequence;
 *  - backward against that explicit concatenation: dq and the own rows'
 *    dk/dv equal, and the prefix rows' dk/dv are the owner's own share plus
 *    each sharing sequence's share of the copies;
 *  - backward against central finite differences of a float64 reference
 *    with prefixes (as test_train_gradcheck.c does for plain attention);
 *  - the same bits with 1 and 3 threads.
 * Layout: sequence A owns rows 0..8 (its first P = 5 rows are the shared
 * prompt), B (3 rows) and C (2 rows) continue A's first 5 rows, D (4 rows)
 * is an ordinary sequence after them. */
#include "backend.h"
#include "check.h"
#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { H = 4, HD = 8, P = 5, NA = 9, NB = 3, NC = 2, ND = 4, R = NA + NB + NC + ND };

static uint64_t rng_state = 777;
static double urand(void) /* [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
static void fill(float *x, int64_t n, double s)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(s * urand());
}

/* The batch with prefixes: A, B (prefix A[0..P)), C (prefix A[0..P)), D. */
static void prefixed_seqs(be_attn_seq *s)
{
    memset(s, 0, sizeof(be_attn_seq) * 4);
    int64_t n[4] = {NA, NB, NC, ND}, row = 0;
    for (int i = 0; i < 4; i++) {
        s[i].q_row0 = row;
        s[i].n_new = n[i];
        row += n[i];
    }
    s[1].n_pre = s[2].n_pre = P; /* pre_row0 0: A's first rows */
}

typedef struct {
    float *q, *k, *v, *dout;      /* [rows, H*HD], [rows, KVH*HD] x2, [rows, H*HD] */
    int64_t rows;
    int kvh;
} att_data;

static att_data data_new(int64_t rows, int kvh)
{
    att_data d = {xcalloc((size_t)(rows * H * HD), sizeof(float)),
                  xcalloc((size_t)(rows * kvh * HD), sizeof(float)),
                  xcalloc((size_t)(rows * kvh * HD), sizeof(float)),
                  xcalloc((size_t)(rows * H * HD), sizeof(float)), rows, kvh};
    return d;
}
static void data_free(att_data *d) { free(d->q), free(d->k), free(d->v), free(d->dout); }

/* Row r of src into row r2 of dst, every array (dout zeroed when !with_dout). */
static void copy_row(att_data *dst, int64_t r2, const att_data *src, int64_t r, bool with_dout)
{
    int qw = H * HD, kw = src->kvh * HD;
    memcpy(dst->q + r2 * qw, src->q + r * qw, sizeof(float) * (size_t)qw);
    memcpy(dst->k + r2 * kw, src->k + r * kw, sizeof(float) * (size_t)kw);
    memcpy(dst->v + r2 * kw, src->v + r * kw, sizeof(float) * (size_t)kw);
    if (with_dout) memcpy(dst->dout + r2 * qw, src->dout + r * qw, sizeof(float) * (size_t)qw);
}

/* The explicit batch: A, [A's P rows, B], [A's P rows, C], D as ordinary
 * sequences; the copies' dout is 0 (they are not outputs of the prefixed
 * batch). map[r] = the explicit row of prefixed row r. */
static att_data explicit_batch(const att_data *d, be_attn_seq *s, int64_t *map)
{
    int64_t n[4] = {NA, P + NB, P + NC, ND}, row = 0;
    memset(s, 0, sizeof(be_attn_seq) * 4);
    for (int i = 0; i < 4; i++) {
        s[i].q_row0 = row;
        s[i].n_new = n[i];
        row += n[i];
    }
    att_data e = data_new(row, d->kvh);
    int64_t src = 0;
    for (int i = 0; i < 4; i++) {
        int64_t own = (i == 1 || i == 2) ? P : 0;
        for (int64_t j = 0; j < own; j++) copy_row(&e, s[i].q_row0 + j, d, j, false);
        for (int64_t j = own; j < n[i]; j++, src++) {
            copy_row(&e, s[i].q_row0 + j, d, src, true);
            map[src] = s[i].q_row0 + j;
        }
    }
    return e;
}

typedef struct {
    float *out, *dq, *dk, *dv;
} att_result;

static void result_free(att_result *r) { free(r->out), free(r->dq), free(r->dk), free(r->dv); }

static float *download(be_backend *be, be_mat m)
{
    float *h = xmalloc(sizeof(float) * (size_t)(m.rows * m.cols));
    be->download(be, m, h);
    return h;
}

/* Forward and backward of the backend on one batch. */
static att_result run(be_backend *be, const att_data *d, const be_attn_seq *s, int n_seqs,
                      bool causal)
{
    int qw = H * HD, kw = d->kvh * HD;
    be_attn_shape sh = {H, d->kvh, HD, causal, 1.0f / sqrtf((float)HD)};
    be_mat q = be->mat_new(be, d->rows, qw), k = be->mat_new(be, d->rows, kw),
           v = be->mat_new(be, d->rows, kw), dout = be->mat_new(be, d->rows, qw),
           out = be->mat_new(be, d->rows, qw), dq = be->mat_new(be, d->rows, qw),
           dk = be->mat_new(be, d->rows, kw), dv = be->mat_new(be, d->rows, kw);
    be->upload(be, q, d->q);
    be->upload(be, k, d->k);
    be->upload(be, v, d->v);
    be->upload(be, dout, d->dout);
    be->attention(be, out, q, k, v, s, n_seqs, sh);
    be->attention_backward(be, dq, dk, dv, dout, q, k, v, s, n_seqs, sh);
    att_result r = {download(be, out), download(be, dq), download(be, dk), download(be, dv)};
    be_mat *all[] = {&q, &k, &v, &dout, &out, &dq, &dk, &dv};
    for (int i = 0; i < 8; i++) be->mat_free(be, all[i]);
    return r;
}

/* max |a - b| over a row of n, relative to 1 + max |b| */
static double row_diff(const float *a, const float *b, int n)
{
    double d = 0, mx = 0;
    for (int i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)b[i]));
    }
    return d / (1.0 + mx);
}

static void test_against_explicit(be_backend *be, bool causal, int kvh)
{
    int qw = H * HD, kw = kvh * HD;
    att_data d = data_new(R, kvh);
    fill(d.q, R * qw, 1), fill(d.k, R * kw, 1), fill(d.v, R * kw, 1), fill(d.dout, R * qw, 1);
    be_attn_seq ps[4], es[4];
    int64_t map[R];
    prefixed_seqs(ps);
    att_data e = explicit_batch(&d, es, map);
    att_result rp = run(be, &d, ps, 4, causal), re = run(be, &e, es, 4, causal);

    double w_out = 0, w_dq = 0, w_own = 0, w_pre = 0;
    for (int64_t r = 0; r < R; r++) {
        int64_t x = map[r];
        w_out = fmax(w_out, row_diff(rp.out + r * qw, re.out + x * qw, qw));
        w_dq = fmax(w_dq, row_diff(rp.dq + r * qw, re.dq + x * qw, qw));
        if (r >= P) {
            w_own = fmax(w_own, row_diff(rp.dk + r * kw, re.dk + x * kw, kw));
            w_own = fmax(w_own, row_diff(rp.dv + r * kw, re.dv + x * kw, kw));
        }
    }
    /* prefix rows: A's own share + B's and C's shares of their copies */
    for (int64_t r = 0; r < P; r++) {
        float sk[64], sv[64];
        for (int c = 0; c < kw; c++) {
            sk[c] = re.dk[r * kw + c] + re.dk[(es[1].q_row0 + r) * kw + c] +
                    re.dk[(es[2].q_row0 + r) * kw + c];
            sv[c] = re.dv[r * kw + c] + re.dv[(es[1].q_row0 + r) * kw + c] +
                    re.dv[(es[2].q_row0 + r) * kw + c];
        }
        w_pre = fmax(w_pre, row_diff(rp.dk + r * kw, sk, kw));
        w_pre = fmax(w_pre, row_diff(rp.dv + r * kw, sv, kw));
    }
    const char *what = causal ? "causal GQA" : "bidirectional";
    CHECK_MSG(w_out < 1e-6, "%s prefix forward vs explicit sequence: %.3g", what, w_out);
    CHECK_MSG(w_dq < 1e-6, "%s prefix dq vs explicit sequence: %.3g", what, w_dq);
    CHECK_MSG(w_own < 1e-6, "%s prefix own-row dk/dv vs explicit sequence: %.3g", what, w_own);
    CHECK_MSG(w_pre < 1e-6, "%s prefix rows' dk/dv vs the sum of the explicit shares: %.3g", what,
              w_pre);
    result_free(&rp);
    result_free(&re);
    data_free(&d);
    data_free(&e);
}

/* ------------------------------------------- float64 reference with prefixes */
typedef struct {
    double *q, *k, *v;
    const float *c;
    const be_attn_seq *s;
    int n_seqs, kvh;
    bool causal;
} ref_ctx;

/* Key j of sequence sq: prefix rows first, then its own rows. */
static int64_t key_row(const be_attn_seq *sq, int64_t j)
{
    return j < sq->n_pre ? sq->pre_row0 + j : sq->q_row0 + j - sq->n_pre;
}

static double ref_loss(void *p)
{
    ref_ctx *t = p;
    int qw = H * HD, kw = t->kvh * HD, g = H / t->kvh;
    double L = 0, scale = 1.0 / sqrt((double)HD), sc[32];
    for (int s = 0; s < t->n_seqs; s++) {
        const be_attn_seq *sq = &t->s[s];
        int64_t nk = sq->n_pre + sq->n_new;
        for (int h = 0; h < H; h++)
            for (int64_t i = 0; i < sq->n_new; i++) {
                int64_t ri = sq->q_row0 + i, vis = t->causal ? sq->n_pre + i + 1 : nk;
                double mx = -1e300, sum = 0;
                for (int64_t j = 0; j < vis; j++) {
                    double dot = 0;
                    for (int e = 0; e < HD; e++)
                        dot += t->q[ri * qw + h * HD + e] * t->k[key_row(sq, j) * kw + (h / g) * HD + e];
                    sc[j] = dot * scale;
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int64_t j = 0; j < vis; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int e = 0; e < HD; e++) {
                    double o = 0;
                    for (int64_t j = 0; j < vis; j++)
                        o += sc[j] / sum * t->v[key_row(sq, j) * kw + (h / g) * HD + e];
                    L += t->c[ri * qw + h * HD + e] * o;
                }
            }
    }
    return L;
}

static double *to_f64(const float *x, int64_t n)
{
    double *d = xmalloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* Entries of rows [r0, r1) of x [*, width]: analytic vs central difference. */
static void fd_rows(const char *what, ref_ctx *t, double *x, const float *grad, int width,
                    int64_t r0, int64_t r1, int n_checks)
{
    double worst = 0;
    int64_t n = (r1 - r0) * width;
    for (int c = 0; c < n_checks; c++) {
        int64_t i = r0 * width + (int64_t)((c * 7919 + 13) % n);
        double keep = x[i], h = 1e-5;
        x[i] = keep + h;
        double lp = ref_loss(t);
        x[i] = keep - h;
        double lm = ref_loss(t);
        x[i] = keep;
        double fd = (lp - lm) / (2 * h), err = fabs(fd - grad[i]) / (1e-3 + fabs(fd));
        worst = err > worst ? err : worst;
    }
    CHECK_MSG(worst < 2e-3, "%s: analytic vs finite-difference gradient off by %.3g", what, worst);
}

static void test_finite_differences(be_backend *be, bool causal, int kvh)
{
    int qw = H * HD, kw = kvh * HD;
    att_data d = data_new(R, kvh);
    fill(d.q, R * qw, 1), fill(d.k, R * kw, 1), fill(d.v, R * kw, 1), fill(d.dout, R * qw, 1);
    be_attn_seq ps[4];
    prefixed_seqs(ps);
    att_result rp = run(be, &d, ps, 4, causal);
    ref_ctx t = {to_f64(d.q, R * qw), to_f64(d.k, R * kw), to_f64(d.v, R * kw), d.dout, ps, 4,
                 kvh, causal};
    const char *what = causal ? "causal GQA" : "bidirectional";
    char name[96];
    snprintf(name, sizeof name, "%s prefix rows dk", what);
    fd_rows(name, &t, t.k, rp.dk, kw, 0, P, 16);
    snprintf(name, sizeof name, "%s prefix rows dv", what);
    fd_rows(name, &t, t.v, rp.dv, kw, 0, P, 16);
    snprintf(name, sizeof name, "%s sharing rows dq", what);
    fd_rows(name, &t, t.q, rp.dq, qw, NA, NA + NB + NC, 16);
    snprintf(name, sizeof name, "%s sharing rows dk", what);
    fd_rows(name, &t, t.k, rp.dk, kw, NA, NA + NB + NC, 16);
    snprintf(name, sizeof name, "%s all rows dv", what);
    fd_rows(name, &t, t.v, rp.dv, kw, 0, R, 16);
    free(t.q), free(t.k), free(t.v);
    result_free(&rp);
    data_free(&d);
}

/* Fixed blocks: the thread count does not change a bit. */
static void test_threads(void)
{
    int kvh = 2, qw = H * HD, kw = kvh * HD;
    att_data d = data_new(R, kvh);
    fill(d.q, R * qw, 1), fill(d.k, R * kw, 1), fill(d.v, R * kw, 1), fill(d.dout, R * qw, 1);
    be_attn_seq ps[4];
    prefixed_seqs(ps);
    be_backend *b1 = be_cpu_new(1);
    att_result r1 = run(b1, &d, ps, 4, true);
    b1->destroy(b1);
    be_backend *b3 = be_cpu_new(3);
    att_result r3 = run(b3, &d, ps, 4, true);
    b3->destroy(b3);
    size_t nq = sizeof(float) * (size_t)(R * qw), nk = sizeof(float) * (size_t)(R * kw);
    CHECK_MSG(memcmp(r1.out, r3.out, nq) == 0 && memcmp(r1.dq, r3.dq, nq) == 0 &&
                  memcmp(r1.dk, r3.dk, nk) == 0 && memcmp(r1.dv, r3.dv, nk) == 0,
              "prefix attention differs between 1 and 3 threads");
    result_free(&r1);
    result_free(&r3);
    data_free(&d);
}

int main(void)
{
    be_backend *be = be_cpu_new(0);
    test_against_explicit(be, true, 2);
    test_against_explicit(be, false, 4);
    test_finite_differences(be, true, 2);
    test_finite_differences(be, false, 4);
    be->destroy(be);
    test_threads();
    return check_finish();
}
