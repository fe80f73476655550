/* test_cuda_ops.c — every operation of the CUDA backend against the CPU
 * backend (the reference), on fresh random inputs of awkward sizes (not
 * multiples of the kernels' tiles, strided views, grouped kv heads, caches
 * with earlier positions, shared prefixes, ties in argmax).
 *
 * Built twice: against the CPU emulation of CUDA (runs everywhere: the
 * kernels' arithmetic and indexing) and against the real CUDA library (runs
 * on a GPU; skipped, exit 77, where none is visible). SIMA_TEST_DTYPE picks
 * the weight storage: f32 (default) compares to float rounding; bf16/f16
 * round every input to that type first, so that the GPU's conversions are
 * exact and only summation order differs.
 */
#include "backend.h"
#include "check.h"
#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static be_backend *cpu, *gpu;
static be_dtype dtype = BE_F32;
static uint64_t rng = 0x5eed;

static double urand(void) /* [-1, 1) */
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Rounds to the weight type, so GPU conversions of this value are exact. */
static float round_dtype(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if (dtype == BE_BF16) {
        u += 0x7fffu + ((u >> 16) & 1u);
        u &= 0xffff0000u;
    } else if (dtype == BE_F16) {
        /* keep 10 mantissa bits, values well inside half's range */
        u += 0xfffu + ((u >> 13) & 1u);
        u &= 0xffffe000u;
    }
    memcpy(&x, &u, 4);
    return x;
}

static float *rand_host(int64_t n, double scale)
{
    float *h = xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) h[i] = round_dtype((float)(scale * urand()));
    return h;
}

/* One matrix on both backends with the same contents. */
typedef struct {
    be_mat c, g;
    int64_t rows, cols;
} pair;

static pair pair_from(const float *h, int64_t rows, int64_t cols)
{
    pair p = {cpu->mat_new(cpu, rows, cols), gpu->mat_new(gpu, rows, cols), rows, cols};
    cpu->upload(cpu, p.c, h);
    gpu->upload(gpu, p.g, h);
    return p;
}

static pair pair_rand(int64_t rows, int64_t cols, double scale)
{
    float *h = rand_host(rows * cols, scale);
    pair p = pair_from(h, rows, cols);
    free(h);
    return p;
}

static void pair_free(pair *p)
{
    cpu->mat_free(cpu, &p->c);
    gpu->mat_free(gpu, &p->g);
}

/* Both copies set to the CPU's values rounded to the weight type: an input
 * the GPU converts exactly (a product of the GPU's bf16 operands differs
 * from the CPU's float32 ones otherwise). */
static void round_pair(pair p)
{
    int64_t n = p.rows * p.cols;
    float *h = xmalloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    cpu->download(cpu, p.c, h);
    for (int64_t i = 0; i < p.rows * p.cols; i++) h[i] = round_dtype(h[i]);
    cpu->upload(cpu, p.c, h);
    gpu->upload(gpu, p.g, h);
    free(h);
}

/* Columns [c0, c0 + n) of a pair: strided views. */
static pair pair_cols(pair p, int64_t c0, int64_t n)
{
    pair v = {be_cols(p.c, c0, n), be_cols(p.g, c0, n), p.rows, n};
    return v;
}

static pair pair_rows(pair p, int64_t r0, int64_t n)
{
    pair v = {be_rows(p.c, r0, n), be_rows(p.g, r0, n), n, p.cols};
    return v;
}

typedef struct {
    be_weight c, g;
} wpair;

static wpair wpair_rand(int64_t rows, int64_t cols, double scale)
{
    float *h = rand_host(rows * cols, scale);
    wpair w;
    CHECK_OK(cpu->weight_new(cpu, h, rows, cols, &w.c));
    CHECK_OK(gpu->weight_new(gpu, h, rows, cols, &w.g));
    free(h);
    return w;
}

static void wpair_free(wpair *w)
{
    cpu->weight_free(cpu, &w->c);
    gpu->weight_free(gpu, &w->g);
}

/* max |gpu - cpu| / rms(cpu) over the pair's elements must be within tol
 * (relative to the typical size of the values, so that a wrong few rows
 * among many show); names the operation on failure. */
static void expect_close(const char *what, pair p, double tol)
{
    int64_t n = p.rows * p.cols;
    float *a = xmalloc(sizeof(float) * (size_t)(n ? n : 1)), *b = xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    cpu->download(cpu, p.c, a);
    gpu->download(gpu, p.g, b);
    double worst = 0, mag = 0;
    int64_t at = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) mag += (double)a[i] * a[i];
    mag = sqrt(mag / (double)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        if (isnan(b[i]) || isnan(a[i])) bad++;
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    double rel = worst / fmax(mag, 1e-30);
    CHECK_MSG(bad == 0 && rel <= tol,
              "%s [%lld x %lld]: max error %.3g relative to rms(ref) %.3g (tol %.1g) at %lld "
              "(cpu %.9g gpu %.9g), %lld NaN",
              what, (long long)p.rows, (long long)p.cols, rel, mag, tol, (long long)at,
              n ? a[at] : 0.0, n ? b[at] : 0.0, (long long)bad);
    free(a);
    free(b);
}

static double tol_sum(void) { return 1e-5; }

/* ------------------------------------------------------------ forward -- */

static void test_memory(void)
{
    pair a = pair_rand(13, 21, 1.0), b = pair_rand(13, 21, 1.0);
    expect_close("upload/download", a, 0);
    cpu->copy(cpu, pair_cols(b, 3, 7).c, pair_cols(a, 5, 7).c);
    gpu->copy(gpu, pair_cols(b, 3, 7).g, pair_cols(a, 5, 7).g);
    expect_close("copy of strided views", b, 0);
    be_mat z = gpu->mat_new(gpu, 5, 9);
    float h[45];
    gpu->download(gpu, z, h);
    int zero = 1;
    for (int i = 0; i < 45; i++) zero &= h[i] == 0.0f;
    CHECK_MSG(zero, "mat_new returns zeros");
    gpu->mat_free(gpu, &z);
    pair_free(&a);
    pair_free(&b);
}

static void test_weights(void)
{
    float *h = rand_host(11 * 17, 1.0), *back = xmalloc(sizeof(float) * 11 * 17);
    be_weight w;
    CHECK_OK(gpu->weight_new(gpu, h, 11, 17, &w));
    gpu->weight_get(gpu, &w, back);
    CHECK_MSG(memcmp(h, back, sizeof(float) * 11 * 17) == 0, "weight_get returns what weight_new got");
    for (int i = 0; i < 11 * 17; i++) h[i] = round_dtype(h[i] * 0.5f);
    gpu->weight_set(gpu, &w, h);
    gpu->weight_get(gpu, &w, back);
    CHECK_MSG(memcmp(h, back, sizeof(float) * 11 * 17) == 0, "weight_get returns what weight_set got");
    gpu->weight_free(gpu, &w);
    free(h);
    free(back);
}

static void test_linear(int64_t M, int64_t N, int64_t K)
{
    pair x = pair_rand(M, K + 3, 1.0), y = pair_rand(M, N + 5, 1.0);
    wpair w = wpair_rand(N, K, 0.5), b = wpair_rand(1, N, 1.0);
    pair xv = pair_cols(x, 2, K), yv = pair_cols(y, 4, N);
    cpu->linear(cpu, yv.c, xv.c, &w.c, &b.c, false);
    gpu->linear(gpu, yv.g, xv.g, &w.g, &b.g, false);
    expect_close("linear + bias", y, tol_sum());
    cpu->linear(cpu, yv.c, xv.c, &w.c, NULL, true);
    gpu->linear(gpu, yv.g, xv.g, &w.g, NULL, true);
    expect_close("linear accumulate", y, tol_sum());
    /* the same x again after it changed: by an operation, then by a product
     * writing into it (a converted copy of the old x must not be reused) */
    pair d = pair_rand(M, K, 0.25);
    cpu->add(cpu, xv.c, d.c);
    gpu->add(gpu, xv.g, d.g);
    round_pair(x);
    cpu->linear(cpu, yv.c, xv.c, &w.c, NULL, false);
    gpu->linear(gpu, yv.g, xv.g, &w.g, NULL, false);
    expect_close("linear after its input changed", y, tol_sum());
    pair_free(&d);
    pair_free(&x);
    pair_free(&y);
    wpair_free(&w);
    wpair_free(&b);
}

static void test_norms(void)
{
    int64_t R = 19, D = 300;
    pair x = pair_rand(R, D, 2.0), y = pair_rand(R, D + 1, 1.0);
    wpair g = wpair_rand(1, D, 1.0), b = wpair_rand(1, D, 1.0);
    pair yv = pair_cols(y, 1, D);
    cpu->rmsnorm(cpu, yv.c, x.c, &g.c, 1e-5f);
    gpu->rmsnorm(gpu, yv.g, x.g, &g.g, 1e-5f);
    expect_close("rmsnorm", y, 1e-6);
    cpu->layernorm(cpu, yv.c, x.c, &g.c, &b.c, 1e-5f);
    gpu->layernorm(gpu, yv.g, x.g, &g.g, &b.g, 1e-5f);
    expect_close("layernorm", y, 1e-6);
    pair_free(&x);
    pair_free(&y);
    wpair_free(&g);
    wpair_free(&b);
}

static void test_elementwise(void)
{
    int64_t R = 23, C = 77;
    pair x = pair_rand(R, C, 3.0), y = pair_rand(R, C, 1.0), u = pair_rand(R, C, 1.0);
    cpu->add(cpu, y.c, x.c);
    gpu->add(gpu, y.g, x.g);
    expect_close("add", y, 0);
    wpair pos = wpair_rand(40, C, 1.0);
    cpu->add_rows(cpu, y.c, &pos.c, 9);
    gpu->add_rows(gpu, y.g, &pos.g, 9);
    expect_close("add_rows", y, 1e-7);
    cpu->gelu_erf(cpu, x.c);
    gpu->gelu_erf(gpu, x.g);
    expect_close("gelu_erf", x, 1e-6);
    cpu->quick_gelu(cpu, y.c);
    gpu->quick_gelu(gpu, y.g);
    expect_close("quick_gelu", y, 1e-6);
    cpu->silu_mul(cpu, u.c, x.c, y.c);
    gpu->silu_mul(gpu, u.g, x.g, y.g);
    expect_close("silu_mul", u, 1e-6);
    cpu->scale(cpu, u.c, 0.37f);
    gpu->scale(gpu, u.g, 0.37f);
    expect_close("scale", u, 1e-7);
    wpair_free(&pos);
    pair_free(&x);
    pair_free(&y);
    pair_free(&u);
}

static void test_embed_rope(void)
{
    int64_t R = 31, D = 48, V = 57;
    wpair table = wpair_rand(V, D, 1.0);
    int32_t ids[31], pos[31];
    for (int i = 0; i < R; i++) {
        ids[i] = (int32_t)((i * 13 + 5) % V);
        pos[i] = i * 37 + (i % 3) * 400;   /* large positions: long-context angles */
    }
    pair y = pair_rand(R, D, 1.0);
    cpu->embed(cpu, y.c, &table.c, ids);
    gpu->embed(gpu, y.g, &table.g, ids);
    expect_close("embed", y, 0);
    pair x = pair_rand(R, 4 * 12 + 6, 1.0);
    pair xv = pair_cols(x, 6, 4 * 12);
    cpu->rope(cpu, xv.c, 4, 12, pos, 10000.0);
    gpu->rope(gpu, xv.g, 4, 12, pos, 10000.0);
    expect_close("rope", x, 2e-6);
    cpu->rope_backward(cpu, xv.c, 4, 12, pos, 10000.0);
    gpu->rope_backward(gpu, xv.g, 4, 12, pos, 10000.0);
    expect_close("rope_backward", x, 2e-6);
    pair dt = pair_rand(V, D, 1.0);
    ids[4] = ids[9] = ids[20];   /* repeated ids add up */
    ids[7] = -1;                 /* skipped (image rows) */
    cpu->embed_backward(cpu, dt.c, y.c, ids);
    gpu->embed_backward(gpu, dt.g, y.g, ids);
    expect_close("embed_backward", dt, 1e-6);
    wpair_free(&table);
    pair_free(&y);
    pair_free(&x);
    pair_free(&dt);
}

static void test_logprobs(void)
{
    int64_t R = 9, V = 1003;
    float *h = rand_host(R * V, 4.0);
    h[2 * V + 17] = h[2 * V + 600] = 9.0f;   /* a tie: the first wins */
    h[5 * V + V - 1] = 11.0f;                /* the last column */
    pair lg = pair_from(h, R, V);
    int32_t target[9], am_c[9], am_g[9], ex[9], bo_c[9], bo_g[9];
    float lp_c[9], lp_g[9], dlp[9];
    for (int i = 0; i < R; i++) {
        target[i] = (int32_t)((i * 101) % V);
        ex[i] = i == 2 ? 17 : (int32_t)((i * 7) % V);
        dlp[i] = (float)urand();
    }
    cpu->token_logprobs(cpu, lg.c, target, lp_c, am_c);
    gpu->token_logprobs(gpu, lg.g, target, lp_g, am_g);
    for (int i = 0; i < R; i++) {
        CHECK_EQ(am_g[i], am_c[i]);
        CHECK_NEAR(lp_g[i], lp_c[i], 1e-5 * (1.0 + fabs(lp_c[i])));
    }
    CHECK_EQ(am_g[2], 17);
    gpu->token_logprobs(gpu, lg.g, NULL, NULL, am_g);   /* argmax only */
    CHECK_EQ(am_g[5], V - 1);
    /* no target: the log-prob of the argmax (the greedy choice) */
    cpu->token_logprobs(cpu, lg.c, NULL, lp_c, am_c);
    gpu->token_logprobs(gpu, lg.g, NULL, lp_g, am_g);
    for (int i = 0; i < R; i++) {
        CHECK_EQ(am_g[i], am_c[i]);
        CHECK_NEAR(lp_g[i], lp_c[i], 1e-5 * (1.0 + fabs(lp_c[i])));
    }
    cpu->best_other_token(cpu, lg.c, ex, bo_c);
    gpu->best_other_token(gpu, lg.g, ex, bo_g);
    for (int i = 0; i < R; i++) CHECK_EQ(bo_g[i], bo_c[i]);
    CHECK_EQ(bo_g[2], 600);
    pair d = pair_rand(R, V, 1.0);
    cpu->token_logprobs_backward(cpu, d.c, lg.c, target, dlp);
    gpu->token_logprobs_backward(gpu, d.g, lg.g, target, dlp);
    expect_close("token_logprobs_backward", d, 1e-6);
    pair_free(&lg);
    pair_free(&d);
    free(h);
}

/* ---------------------------------------------------------- attention -- */

enum { AH = 4, AKV = 2, AHD = 16 };

static be_attn_shape ashape(bool causal)
{
    be_attn_shape s = {AH, AKV, AHD, causal, 1.0f / sqrtf((float)AHD)};
    return s;
}

/* Page ids for NS sequences of need[s] pages each, handed out in a
 * scrambled order (no kernel may assume a sequence's pages are adjacent). */
static int32_t **scrambled_pages(const int64_t *need, int ns, int64_t *total)
{
    int64_t n = 0;
    for (int s = 0; s < ns; s++) n += need[s];
    int32_t **ids = xcalloc((size_t)ns, sizeof *ids);
    int64_t next = 0;
    for (int s = 0; s < ns; s++) {
        ids[s] = xmalloc(sizeof(int32_t) * (size_t)(need[s] ? need[s] : 1));
        for (int64_t j = 0; j < need[s]; j++, next++) ids[s][j] = (int32_t)((next * 7 + 3) % n);
    }
    *total = n;
    return ids;
}

static void scrambled_pages_free(int32_t **ids, int ns)
{
    for (int s = 0; s < ns; s++) free(ids[s]);
    free(ids);
}

/* Sequences with paged caches, in two calls as the engine makes them: the
 * first fills earlier positions (a prompt), the second appends new rows (a
 * prefill longer than a key tile, a one-token decode step) and attends over
 * all. Then a copy of a partly filled page (copy on write) continued by
 * another sequence. */
static void test_attention_cache(void)
{
    enum { NS = 3 };
    int64_t n_past[NS] = {5, 0, 133}, n_new[NS] = {20, 150, 1}, kw = AKV * AHD;
    be_kv_pages *pc = cpu->kv_pages_new(cpu, 2, kw, 4), *pg = gpu->kv_pages_new(gpu, 2, kw, 4);
    int64_t need_c[NS], need_g[NS], tot_c, tot_g;
    for (int s = 0; s < NS; s++) {
        need_c[s] = (n_past[s] + n_new[s] + pc->page - 1) / pc->page;
        need_g[s] = (n_past[s] + n_new[s] + pg->page - 1) / pg->page;
    }
    int32_t **ic = scrambled_pages(need_c, NS, &tot_c), **ig = scrambled_pages(need_g, NS, &tot_g);
    cpu->kv_pages_grow(cpu, pc, tot_c + 1);
    gpu->kv_pages_grow(gpu, pg, tot_g + 1);
    for (int call = 0; call < 2; call++) {
        int64_t R = 0;
        be_attn_seq sc[NS], sg[NS];
        int n = 0;
        for (int s = 0; s < NS; s++) {
            int64_t past = call == 0 ? 0 : n_past[s], fresh = call == 0 ? n_past[s] : n_new[s];
            if (fresh == 0) continue;
            sc[n] = (be_attn_seq){.q_row0 = R, .n_new = fresh, .n_past = past, .pages = pc,
                                  .page_ids = ic[s], .layer = 1};
            sg[n] = sc[n];
            sg[n].pages = pg;
            sg[n].page_ids = ig[s];
            R += fresh;
            n++;
        }
        pair q = pair_rand(R, AH * AHD, 1.0), k = pair_rand(R, kw, 1.0), v = pair_rand(R, kw, 1.0);
        pair out = pair_rand(R, AH * AHD, 1.0);
        cpu->attention(cpu, out.c, q.c, k.c, v.c, sc, n, ashape(true));
        gpu->attention(gpu, out.g, q.g, k.g, v.g, sg, n, ashape(true));
        expect_close(call == 0 ? "attention filling paged caches" : "attention over paged caches",
                     out, tol_sum());
        pair *all[] = {&q, &k, &v, &out};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
    }
    /* a fourth sequence continues the third's first 130 positions: its pages
     * are the third's, the last one a copy (positions of that page < 130; 134 were filled) */
    int64_t keep = 130;
    int32_t last_c = (int32_t)tot_c, last_g = (int32_t)tot_g;
    cpu->kv_pages_copy(cpu, pc, last_c, ic[2][keep / pc->page], keep % pc->page);
    gpu->kv_pages_copy(gpu, pg, last_g, ig[2][keep / pg->page], keep % pg->page);
    int32_t *jc = xmalloc(sizeof(int32_t) * (size_t)(keep / pc->page + 1));
    int32_t *jg = xmalloc(sizeof(int32_t) * (size_t)(keep / pg->page + 1));
    memcpy(jc, ic[2], sizeof(int32_t) * (size_t)(keep / pc->page));
    memcpy(jg, ig[2], sizeof(int32_t) * (size_t)(keep / pg->page));
    jc[keep / pc->page] = last_c;
    jg[keep / pg->page] = last_g;
    pair q = pair_rand(1, AH * AHD, 1.0), k = pair_rand(1, kw, 1.0), v = pair_rand(1, kw, 1.0);
    pair out = pair_rand(1, AH * AHD, 1.0);
    be_attn_seq c1 = {.q_row0 = 0, .n_new = 1, .n_past = keep, .pages = pc, .page_ids = jc, .layer = 1};
    be_attn_seq g1 = {.q_row0 = 0, .n_new = 1, .n_past = keep, .pages = pg, .page_ids = jg, .layer = 1};
    cpu->attention(cpu, out.c, q.c, k.c, v.c, &c1, 1, ashape(true));
    gpu->attention(gpu, out.g, q.g, k.g, v.g, &g1, 1, ashape(true));
    expect_close("attention after a copied page", out, tol_sum());
    pair *all[] = {&q, &k, &v, &out};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
    scrambled_pages_free(ic, NS);
    scrambled_pages_free(ig, NS);
    free(jc);
    free(jg);
    cpu->kv_pages_free(cpu, pc);
    gpu->kv_pages_free(gpu, pg);
}

/* One decode step over a long cache: few blocks for the GPU, so the
 * attention splits the keys between blocks and combines them. */
static void test_attention_split(void)
{
    int64_t past = 700, kw = AKV * AHD;
    be_kv_pages *pc = cpu->kv_pages_new(cpu, 1, kw, 8), *pg = gpu->kv_pages_new(gpu, 1, kw, 32);
    int64_t need_c[1] = {(past + 1 + pc->page - 1) / pc->page};
    int64_t need_g[1] = {(past + 1 + pg->page - 1) / pg->page}, tc, tg;
    int32_t **ic = scrambled_pages(need_c, 1, &tc), **ig = scrambled_pages(need_g, 1, &tg);
    cpu->kv_pages_grow(cpu, pc, tc);
    gpu->kv_pages_grow(gpu, pg, tg);
    for (int call = 0; call < 2; call++) {
        int64_t R = call == 0 ? past : 1;
        be_attn_seq c = {.q_row0 = 0, .n_new = R, .n_past = call == 0 ? 0 : past, .pages = pc,
                         .page_ids = ic[0]};
        be_attn_seq g = c;
        g.pages = pg;
        g.page_ids = ig[0];
        pair q = pair_rand(R, AH * AHD, 1.0), k = pair_rand(R, kw, 1.0), v = pair_rand(R, kw, 1.0);
        pair out = pair_rand(R, AH * AHD, 1.0);
        cpu->attention(cpu, out.c, q.c, k.c, v.c, &c, 1, ashape(true));
        gpu->attention(gpu, out.g, q.g, k.g, v.g, &g, 1, ashape(true));
        expect_close(call == 0 ? "attention, long prompt" : "attention, decode over 700 keys (split)",
                     out, tol_sum());
        pair *all[] = {&q, &k, &v, &out};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
    }
    scrambled_pages_free(ic, 1);
    scrambled_pages_free(ig, 1);
    cpu->kv_pages_free(cpu, pc);
    gpu->kv_pages_free(gpu, pg);
}

/* Prefill-sized attention at the head sizes of real models (64, 128): with
 * bf16/f16 weights it runs on the tensor cores (the half type's rounding:
 * a looser bound), with f32 weights on the float32 kernels. Paged caches
 * after a first call, and a shared prefix without cache. */
static void test_attention_heads(int hd)
{
    int64_t kw = 2 * hd, qw = 4 * hd;
    be_attn_shape sh = {4, 2, hd, true, 1.0f / sqrtf((float)hd)};
    double tol = dtype == BE_F32 ? tol_sum() : 2e-2; /* bf16 probabilities: ~1% */
    char what[96];
    be_kv_pages *pc = cpu->kv_pages_new(cpu, 1, kw, 4), *pg = gpu->kv_pages_new(gpu, 1, kw, 16);
    int64_t n_past = 50, n_new = 100;
    int64_t need_c[1] = {(n_past + n_new + pc->page - 1) / pc->page};
    int64_t need_g[1] = {(n_past + n_new + pg->page - 1) / pg->page}, tc, tg;
    int32_t **ic = scrambled_pages(need_c, 1, &tc), **ig = scrambled_pages(need_g, 1, &tg);
    cpu->kv_pages_grow(cpu, pc, tc);
    gpu->kv_pages_grow(gpu, pg, tg);
    for (int call = 0; call < 2; call++) {
        int64_t R = call == 0 ? n_past : n_new;
        be_attn_seq c = {.q_row0 = 0, .n_new = R, .n_past = call == 0 ? 0 : n_past, .pages = pc,
                         .page_ids = ic[0]};
        be_attn_seq g = c;
        g.pages = pg;
        g.page_ids = ig[0];
        pair q = pair_rand(R, qw, 1.0), k = pair_rand(R, kw, 1.0), v = pair_rand(R, kw, 1.0);
        pair out = pair_rand(R, qw, 1.0);
        cpu->attention(cpu, out.c, q.c, k.c, v.c, &c, 1, sh);
        gpu->attention(gpu, out.g, q.g, k.g, v.g, &g, 1, sh);
        snprintf(what, sizeof what, "attention, head_dim %d, paged cache, call %d", hd, call + 1);
        expect_close(what, out, tol);
        pair *all[] = {&q, &k, &v, &out};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
    }
    /* without cache: A (70 rows), B continues A's first 40 with 45 of its own */
    be_attn_seq s[2] = {{.q_row0 = 0, .n_new = 70}, {.q_row0 = 70, .n_new = 45, .n_pre = 40}};
    pair q = pair_rand(115, qw, 1.0), k = pair_rand(115, kw, 1.0), v = pair_rand(115, kw, 1.0);
    pair out = pair_rand(115, qw, 1.0);
    cpu->attention(cpu, out.c, q.c, k.c, v.c, s, 2, sh);
    gpu->attention(gpu, out.g, q.g, k.g, v.g, s, 2, sh);
    snprintf(what, sizeof what, "attention, head_dim %d, shared prefix", hd);
    expect_close(what, out, tol);
    /* and its backward (bf16: the probabilities and dS rounded to it) */
    pair dout = pair_rand(115, qw, 1.0), dq = pair_rand(115, qw, 1.0);
    pair dk = pair_rand(115, kw, 1.0), dv = pair_rand(115, kw, 1.0);
    cpu->attention_backward(cpu, dq.c, dk.c, dv.c, dout.c, q.c, k.c, v.c, s, 2, sh);
    gpu->attention_backward(gpu, dq.g, dk.g, dv.g, dout.g, q.g, k.g, v.g, s, 2, sh);
    double tolb = dtype == BE_F32 ? 1e-5 : 2e-2; /* bf16 P, dS: under 1% seen */
    snprintf(what, sizeof what, "attention_backward, head_dim %d: dq", hd);
    expect_close(what, dq, tolb);
    snprintf(what, sizeof what, "attention_backward, head_dim %d: dk", hd);
    expect_close(what, dk, tolb);
    snprintf(what, sizeof what, "attention_backward, head_dim %d: dv", hd);
    expect_close(what, dv, tolb);
    pair *all[] = {&q, &k, &v, &out, &dout, &dq, &dk, &dv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
    scrambled_pages_free(ic, 1);
    scrambled_pages_free(ig, 1);
    cpu->kv_pages_free(cpu, pc);
    gpu->kv_pages_free(gpu, pg);
}

/* Sequences without caches: A owns 90 rows, B continues A's first 70 rows
 * with 30 of its own, C (17 rows) stands alone; forward and backward. */
static void test_attention_prefix(bool causal)
{
    enum { NS = 3 };
    int64_t n_new[NS] = {90, 30, 17}, R = 137, kw = AKV * AHD;
    be_attn_seq sc[NS], sg[NS];
    int64_t row = 0;
    for (int s = 0; s < NS; s++) {
        sc[s] = (be_attn_seq){.q_row0 = row, .n_new = n_new[s]};
        row += n_new[s];
    }
    sc[1].n_pre = 70;   /* pre_row0 0: A's first rows */
    memcpy(sg, sc, sizeof sc);
    pair q = pair_rand(R, AH * AHD, 1.0), k = pair_rand(R, kw, 1.0), v = pair_rand(R, kw, 1.0);
    pair out = pair_rand(R, AH * AHD, 1.0);
    cpu->attention(cpu, out.c, q.c, k.c, v.c, sc, NS, ashape(causal));
    gpu->attention(gpu, out.g, q.g, k.g, v.g, sg, NS, ashape(causal));
    expect_close(causal ? "attention, shared prefix, causal" : "attention, shared prefix",
                 out, tol_sum());
    pair dout = pair_rand(R, AH * AHD, 1.0), dq = pair_rand(R, AH * AHD, 1.0);
    pair dk = pair_rand(R, kw, 1.0), dv = pair_rand(R, kw, 1.0);
    cpu->attention_backward(cpu, dq.c, dk.c, dv.c, dout.c, q.c, k.c, v.c, sc, NS, ashape(causal));
    gpu->attention_backward(gpu, dq.g, dk.g, dv.g, dout.g, q.g, k.g, v.g, sg, NS, ashape(causal));
    expect_close("attention_backward dq", dq, 1e-5);
    expect_close("attention_backward dk", dk, 1e-5);
    expect_close("attention_backward dv", dv, 1e-5);
    pair *all[] = {&q, &k, &v, &out, &dout, &dq, &dk, &dv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

/* ------------------------------------------------------------ backward -- */

static void test_linear_backward(int64_t M, int64_t N, int64_t K)
{
    wpair w = wpair_rand(N, K, 0.5);
    pair dy = pair_rand(M, N, 1.0), x = pair_rand(M, K, 1.0);
    pair dx = pair_rand(M, K + 2, 1.0), dw = pair_rand(N, K, 1.0), db = pair_rand(1, N, 1.0);
    pair dxv = pair_cols(dx, 1, K);
    cpu->linear_dx(cpu, dxv.c, dy.c, &w.c);
    gpu->linear_dx(gpu, dxv.g, dy.g, &w.g);
    expect_close("linear_dx", dx, tol_sum());
    cpu->linear_dw(cpu, dw.c, db.c, dy.c, x.c);
    gpu->linear_dw(gpu, dw.g, db.g, dy.g, x.g);
    expect_close("linear_dw", dw, tol_sum());
    expect_close("linear_dw bias", db, 1e-6);
    be_mat no_db = {0};
    cpu->linear_dw(cpu, dw.c, no_db, pair_rows(dy, 3, M - 3).c, pair_rows(x, 3, M - 3).c);
    gpu->linear_dw(gpu, dw.g, no_db, pair_rows(dy, 3, M - 3).g, pair_rows(x, 3, M - 3).g);
    expect_close("linear_dw without bias, row views", dw, tol_sum());
    /* x changed by a product between two gradients that read it: written by
     * a permutation (exact, so no other operation runs in between) */
    float *perm = xcalloc((size_t)(K * K), sizeof(float));
    for (int64_t i = 0; i < K; i++) perm[i * K + (i * 7 + 1) % K] = 1.0f; /* K coprime to 7 */
    wpair pw;
    CHECK_OK(cpu->weight_new(cpu, perm, K, K, &pw.c));
    CHECK_OK(gpu->weight_new(gpu, perm, K, K, &pw.g));
    free(perm);
    pair x2 = pair_rand(M, K, 1.0);
    cpu->linear_dw(cpu, dw.c, no_db, dy.c, x.c);
    gpu->linear_dw(gpu, dw.g, no_db, dy.g, x.g);
    cpu->linear(cpu, x.c, x2.c, &pw.c, NULL, false);
    gpu->linear(gpu, x.g, x2.g, &pw.g, NULL, false);
    cpu->linear_dw(cpu, dw.c, no_db, dy.c, x.c);
    gpu->linear_dw(gpu, dw.g, no_db, dy.g, x.g);
    expect_close("linear_dw after a product wrote its x", dw, tol_sum());
    wpair_free(&pw);
    pair_free(&x2);
    wpair_free(&w);
    pair *all[] = {&dy, &x, &dx, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

static void test_norm_backward(void)
{
    int64_t R = 21, D = 133;
    wpair g = wpair_rand(1, D, 1.0);
    pair x = pair_rand(R, D, 2.0), dy = pair_rand(R, D, 1.0);
    pair dx = pair_rand(R, D, 1.0), dw = pair_rand(1, D, 1.0), db = pair_rand(1, D, 1.0);
    cpu->rmsnorm_backward(cpu, dx.c, dw.c, dy.c, x.c, &g.c, 1e-5f);
    gpu->rmsnorm_backward(gpu, dx.g, dw.g, dy.g, x.g, &g.g, 1e-5f);
    expect_close("rmsnorm_backward dx", dx, 1e-6);
    expect_close("rmsnorm_backward dw", dw, 1e-6);
    be_mat none = {0};
    cpu->rmsnorm_backward(cpu, dx.c, none, dy.c, x.c, &g.c, 1e-5f);
    gpu->rmsnorm_backward(gpu, dx.g, none, dy.g, x.g, &g.g, 1e-5f);
    expect_close("rmsnorm_backward dx without dw", dx, 1e-6);
    wpair b = wpair_rand(1, D, 1.0);
    cpu->layernorm_backward(cpu, dx.c, dw.c, db.c, dy.c, x.c, &g.c, 1e-5f);
    gpu->layernorm_backward(gpu, dx.g, dw.g, db.g, dy.g, x.g, &g.g, 1e-5f);
    expect_close("layernorm_backward dx", dx, 1e-6);
    expect_close("layernorm_backward dw", dw, 1e-6);
    expect_close("layernorm_backward db", db, 1e-6);
    wpair_free(&g);
    wpair_free(&b);
    pair *all[] = {&x, &dy, &dx, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

static void test_activation_backward(void)
{
    int64_t R = 17, C = 61;
    pair x = pair_rand(R, C, 3.0), u = pair_rand(R, C, 1.0), dy = pair_rand(R, C, 1.0);
    pair dx = pair_rand(R, C, 1.0), du = pair_rand(R, C, 1.0);
    cpu->gelu_erf_backward(cpu, dx.c, dy.c, x.c);
    gpu->gelu_erf_backward(gpu, dx.g, dy.g, x.g);
    expect_close("gelu_erf_backward", dx, 1e-6);
    cpu->quick_gelu_backward(cpu, dx.c, dy.c, x.c);
    gpu->quick_gelu_backward(gpu, dx.g, dy.g, x.g);
    expect_close("quick_gelu_backward", dx, 1e-6);
    cpu->silu_mul_backward(cpu, dx.c, du.c, dy.c, x.c, u.c);
    gpu->silu_mul_backward(gpu, dx.g, du.g, dy.g, x.g, u.g);
    expect_close("silu_mul_backward dgate", dx, 1e-6);
    expect_close("silu_mul_backward dup", du, 1e-6);
    pair *all[] = {&x, &u, &dy, &dx, &du};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

/* Setting up: the GPU backend, or exit 77 (skip) with the reason. */
static void open_backends(void)
{
    const char *dt = getenv("SIMA_TEST_DTYPE");
    if (dt && *dt && be_dtype_parse(dt, &dtype) != 0) {
        err_print();
        exit(1);
    }
    be_open_opts o;
    be_open_opts_default(&o);
    o.device = "cuda";
    o.weights = dtype;
    gpu = be_open(&o);
    if (!gpu) {
        printf("SKIP: %s\n", err_msg());
        exit(77);
    }
    cpu = be_cpu_new(0);
    printf("CUDA backend (%s weights) against the CPU backend\n", be_dtype_name(dtype));
}

int main(void)
{
    open_backends();
    test_memory();
    test_weights();
    test_linear(1, 19, 40);
    test_linear(7, 33, 65);
    test_linear(70, 130, 96);
    test_norms();
    test_elementwise();
    test_embed_rope();
    test_logprobs();
    test_attention_cache();
    test_attention_split();
    test_attention_heads(64);
    test_attention_heads(128);
    test_attention_prefix(true);
    test_attention_prefix(false);
    test_linear_backward(29, 45, 38);
    test_linear_backward(5, 128, 300);
    test_norm_backward();
    test_activation_backward();
    gpu->destroy(gpu);
    cpu->destroy(cpu);
    return check_finish();
}
