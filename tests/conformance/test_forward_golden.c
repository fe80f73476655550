/* test_forward_golden.c — the LLaVA forward pass against transformers.
 * For every case under golden.h5/forward: CLIP embeddings and selected layer,
 * image features, final hidden state and logits within 1e-4 + 1e-4·|ref|, and
 * greedy decoding with the KV cache equal to the reference tokens wherever
 * the reference margin between the top two logits is above 1e-3. */
#include "check.h"
#include "test_backend.h"
#include "err.h"
#include "golden.h"
#include "llava.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t numel(const int64_t *dims, int nd)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= dims[i];
    return n;
}

/* Compare n values; report the worst element once. */
static void check_close(const char *what, const char *cas, const float *got, const float *ref,
                        int64_t n)
{
    int64_t bad = 0, worst = -1;
    double worst_excess = 0;
    for (int64_t i = 0; i < n; i++) {
        double tol = 1e-4 + 1e-4 * fabs(ref[i]);
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= tol)) {
            bad++;
            if (d - tol > worst_excess || worst < 0) {
                worst_excess = d - tol;
                worst = i;
            }
        }
    }
    CHECK_MSG(bad == 0, "%s/%s: %lld of %lld values out of tolerance (worst at %lld: %.7g vs %.7g)",
              cas, what, (long long)bad, (long long)n, (long long)worst,
              worst >= 0 ? got[worst] : 0.0, worst >= 0 ? ref[worst] : 0.0);
}

static float *download(llava_model *m, be_mat x)
{
    float *h = xmalloc(sizeof(float) * (size_t)(x.rows * x.cols));
    m->be->download(m->be, x, h);
    return h;
}

/* Greedy decoding with the cache; compare while the reference margin is clear. */
static void check_greedy(llava_model *m, const char *cas, const int32_t *ids, int64_t n,
                         be_mat feats, const int64_t *ref, const float *margins, int64_t n_ref)
{
    be_backend *be = m->be;
    llama_kv kv;
    llama_kv_new(m, n + n_ref + 1, &kv);
    int64_t V = m->cfg.text.vocab_size, D = m->cfg.text.hidden_size;
    llama_seq seq = {0, n, &kv, feats.rows > 0};
    llama_batch b = {n, ids, 1, &seq, feats};
    be_mat hid = be->mat_new(be, n, D), logits = be->mat_new(be, 1, V);
    CHECK_OK(llama_forward(m, &b, hid));
    int32_t tok = -1;
    int64_t compared = 0;
    for (int64_t step = 0; step < n_ref; step++) {
        llama_logits(m, be_rows(hid, hid.rows - 1, 1), logits);
        be->token_logprobs(be, logits, (int32_t[]){0}, NULL, &tok);
        if (margins[step] > 1e-3) {
            CHECK_MSG(tok == ref[step], "%s: greedy step %lld: token %d, reference %lld (margin %.4g)",
                      cas, (long long)step, tok, (long long)ref[step], margins[step]);
            compared++;
        }
        if (tok != ref[step]) break; /* the continuations differ from here on */
        if (tok == m->cfg.text.eos_token_id) break;
        be->mat_free(be, &hid);
        hid = be->mat_new(be, 1, D);
        llama_seq s1 = {0, 1, &kv, false};
        be_mat none = {0};
        llama_batch b1 = {1, &tok, 1, &s1, none};
        CHECK_OK(llama_forward(m, &b1, hid));
    }
    CHECK_MSG(compared > 0, "%s: no greedy step compared", cas);
    be->mat_free(be, &hid);
    be->mat_free(be, &logits);
    llama_kv_free(m, &kv);
}

/* Compare an n-value reference at `path` (if present) with backend matrix x. */
static void check_mat(llava_model *m, hid_t f, const char *path, const char *what, const char *cas,
                      be_mat x, bool required)
{
    int64_t n = x.rows * x.cols;
    float *ref = gh5_read_f32_n(f, path, n);
    if (required) CHECK_MSG(ref != NULL, "%s: %s missing or of another size", cas, what);
    if (!ref) return;
    float *got = download(m, x);
    check_close(what, cas, got, ref, n);
    free(got);
    free(ref);
}

static void run_case(llava_model *m, hid_t f, const char *cas)
{
    be_backend *be = m->be;
    char path[256];
    int64_t dims[8];
    int nd;
#define P(name) (snprintf(path, sizeof path, "/forward/%s/%s", cas, name), path)
    int64_t *ids64 = gh5_read_i64(f, P("input_ids"), dims, &nd);
    if (!CHECK_MSG(ids64 != NULL, "%s: input_ids missing", cas)) return;
    int64_t n = numel(dims, nd);
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int64_t n_img_tok = 0;
    for (int64_t i = 0; i < n; i++) {
        ids[i] = (int32_t)ids64[i];
        n_img_tok += ids[i] == m->cfg.image_token_index;
    }
    int64_t D = m->cfg.text.hidden_size, C = m->cfg.vision.hidden_size;
    be_mat feats = {0};
    int n_img = 0;
    float *pixels = gh5_read_pixels(f, P("pixel_values"), m->cfg.vision.image_size, &n_img);
    /* the prompt's image tokens must be those of the images given */
    if (!CHECK_MSG(n_img_tok == (int64_t)n_img * m->image_tokens,
                   "%s: %lld image tokens for %d image(s) of %d tokens", cas,
                   (long long)n_img_tok, n_img, m->image_tokens)) {
        free(pixels);
        free(ids);
        free(ids64);
        return;
    }
    if (n_img > 0) {
        int64_t T = m->n_patches + 1;
        be_mat hs = be->mat_new(be, n_img * T, C), emb = be->mat_new(be, n_img * T, C);
        CHECK_OK(clip_forward(m, pixels, n_img, hs, &emb));
        check_mat(m, f, P("vision_embeddings"), "vision_embeddings", cas, emb, false);
        check_mat(m, f, P("vision_layer_m2"), "vision_layer_m2", cas, hs, false);
        be->mat_free(be, &hs);
        be->mat_free(be, &emb);
        feats = be->mat_new(be, (int64_t)n_img * m->image_tokens, D);
        CHECK_OK(llava_image_features(m, pixels, n_img, feats));
        check_mat(m, f, P("image_features"), "image_features", cas, feats, false);
    }

    /* whole prompt, no cache */
    int64_t V = m->cfg.text.vocab_size;
    llama_seq seq = {0, n, NULL, feats.rows > 0};
    llama_batch b = {n, ids, 1, &seq, feats};
    be_mat hid = be->mat_new(be, n, D), logits = be->mat_new(be, n, V);
    CHECK_OK(llama_forward(m, &b, hid));
    llama_logits(m, hid, logits);
    check_mat(m, f, P("final_hidden"), "final_hidden", cas, hid, true);
    check_mat(m, f, P("logits"), "logits", cas, logits, true);
    be->mat_free(be, &hid);
    be->mat_free(be, &logits);

    int64_t *gref = gh5_read_i64(f, P("greedy_tokens"), dims, &nd);
    int64_t n_ref = gref ? numel(dims, nd) : 0;
    float *margins = gref ? gh5_read_f32_n(f, P("greedy_margins"), n_ref) : NULL;
    if (gref && margins && n_ref > 0) check_greedy(m, cas, ids, n, feats, gref, margins, n_ref);
    free(gref);
    free(margins);
    if (feats.data) be->mat_free(be, &feats);
    free(pixels);
    free(ids);
    free(ids64);
#undef P
}

int main(void)
{
    be_backend *be = test_backend_new();
    llava_model *m = NULL;
    char *dir = golden_path("tiny-llava");
    if (llava_load(dir, be, &m) != 0) {
        fprintf(stderr, "cannot load %s: %s\n", dir, err_msg());
        return 1;
    }
    hid_t f = gh5_open();
    size_t n_cases;
    char **cases = gh5_list(f, "/forward", &n_cases);
    CHECK(n_cases > 0);
    for (size_t i = 0; i < n_cases; i++) {
        int before = check_failed;
        run_case(m, f, cases[i]);
        printf("forward/%s: %s\n", cases[i], check_failed == before ? "ok" : "FAILED");
    }
    gh5_free_list(cases, n_cases);
    H5Fclose(f);
    llava_free(m);
    be->destroy(be);
    free(dir);
    return check_finish();
}
