/* test_engine_golden.c — the generation engine against transformers.
 * For every case under golden.h5/forward: the llava_hf template and the
 * tokenizer rebuild input_ids from the case's question; the engine's greedy
 * generation equals the reference tokens wherever the reference margin is
 * above 1e-3. For every pair under golden.h5/dpo: scoring mode's per-token
 * log-probs of chosen and rejected equal the reference model's (no adapter)
 * within 1e-4 relative, and their sums equal the summed attributes. */
#include "chat.h"
#include "check.h"
#include "test_backend.h"
#include "err.h"
#include "generate.h"
#include "golden.h"
#include "llava.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t numel(const int64_t *dims, int nd)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= dims[i];
    return n;
}

static int32_t *to_i32(const int64_t *v, int64_t n)
{
    int32_t *o = xmalloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) o[i] = (int32_t)v[i];
    return o;
}

static void check_prompt_ids(llava_model *m, const tok_tokenizer *tok, const chat_template *tpl,
                             hid_t f, const char *cas, const int64_t *ref, int64_t n)
{
    char obj[128];
    snprintf(obj, sizeof obj, "/forward/%s", cas);
    char *question = gh5_attr_str(f, obj, "question");
    char *image = gh5_attr_str(f, obj, "image");
    CHECK_MSG(question != NULL, "%s: no question attribute", cas);
    if (!question) return;
    bool with_image = image && image[0];
    tok_ids ids = {0};
    CHECK_OK(chat_prompt_ids(tpl, tok, question, with_image, m->cfg.image_token_index,
                             m->image_tokens, &ids));
    int same = (int64_t)ids.n == n;
    for (int64_t i = 0; same && i < n; i++) same = ids.ids[i] == ref[i];
    CHECK_MSG(same, "%s: prompt ids from the template differ from input_ids (%zu vs %lld ids)", cas,
              ids.n, (long long)n);
    tok_ids_free(&ids);
    free(question);
    free(image);
}

static void check_generation(llava_model *m, hid_t f, const char *cas, const int32_t *ids,
                             int64_t n)
{
    char path[256];
    int64_t dims[8];
    int nd, n_img = 0;
    snprintf(path, sizeof path, "/forward/%s/pixel_values", cas);
    float *pixels = gh5_read_pixels(f, path, m->cfg.vision.image_size, &n_img);
    int64_t n_img_tok = 0;
    for (int64_t i = 0; i < n; i++) n_img_tok += ids[i] == m->cfg.image_token_index;
    snprintf(path, sizeof path, "/forward/%s/greedy_tokens", cas);
    int64_t *ref = gh5_read_i64(f, path, dims, &nd);
    int64_t n_ref = ref ? numel(dims, nd) : 0;
    snprintf(path, sizeof path, "/forward/%s/greedy_margins", cas);
    float *margins = n_ref > 0 ? gh5_read_f32_n(f, path, n_ref) : NULL;
    bool ok = CHECK_MSG(n_ref > 0 && margins, "%s: greedy reference missing or misshapen", cas) &&
              CHECK_MSG(n_img_tok == (int64_t)n_img * m->image_tokens,
                        "%s: %lld image tokens for %d image(s)", cas, (long long)n_img_tok, n_img);
    if (!ok) {
        free(ref);
        free(margins);
        free(pixels);
        return;
    }
    gen_request q = {ids, n, pixels, n_img, {0, 1, 0}, 0, (int)n_ref, -1};
    gen_output out;
    CHECK_OK(gen_generate(m, &q, 1, NULL, &out));
    int64_t compared = 0;
    for (int64_t i = 0; i < n_ref && i < out.n; i++) {
        if (margins[i] > 1e-3) {
            CHECK_MSG(out.tokens[i] == ref[i], "%s: generated token %lld is %d, reference %lld",
                      cas, (long long)i, out.tokens[i], (long long)ref[i]);
            compared++;
        }
        if (out.tokens[i] != ref[i]) break;
    }
    CHECK_MSG(compared > 0, "%s: nothing compared", cas);
    /* the reference stops at EOS or its length; so must we, when all matched */
    if (out.n == n_ref || ref[n_ref - 1] == m->cfg.text.eos_token_id)
        CHECK_EQ(out.n, n_ref);
    gen_output_free(&out);
    free(ref);
    free(margins);
    free(pixels);
}

static void check_scoring(llava_model *m, hid_t f, const char *pair)
{
    char path[256], obj[128];
    int64_t dims[8];
    int nd;
    snprintf(obj, sizeof obj, "/dpo/%s", pair);
#define P(name) (snprintf(path, sizeof path, "%s/%s", obj, name), path)
    int64_t *p64 = gh5_read_i64(f, P("prompt_ids"), dims, &nd);
    int64_t n_prompt = p64 ? numel(dims, nd) : 0;
    CHECK_MSG(p64 != NULL, "%s: prompt_ids missing", pair);
    int n_img = 0;
    float *pixels = gh5_read_pixels(f, P("pixel_values"), m->cfg.vision.image_size, &n_img);
    const char *sides[2] = {"chosen", "rejected"};
    for (int s = 0; p64 && s < 2; s++) {
        char name[64];
        snprintf(name, sizeof name, "%s_ids", sides[s]);
        int64_t *all64 = gh5_read_i64(f, P(name), dims, &nd);
        int64_t n_all = all64 ? numel(dims, nd) : 0;
        snprintf(name, sizeof name, "ref_%s_token_logp", sides[s]);
        float *ref = n_all > n_prompt ? gh5_read_f32_n(f, P(name), n_all - n_prompt) : NULL;
        int64_t n_ref = n_all - n_prompt;
        if (!CHECK_MSG(all64 && ref, "%s/%s: ids or reference log-probs missing or inconsistent",
                       pair, sides[s])) {
            free(all64);
            free(ref);
            continue;
        }
        int32_t *ids = to_i32(all64, n_all);
        gen_score_request q = {ids, n_all, n_prompt, pixels, n_img};
        float *logp = NULL;
        CHECK_OK(gen_score(m, &q, 1, NULL, &logp));
        double sum = 0, worst = 0;
        for (int64_t i = 0; logp && i < n_ref; i++) {
            double d = fabs((double)logp[i] - ref[i]) / fmax(1.0, fabs(ref[i]));
            worst = fmax(worst, d);
            sum += logp[i];
        }
        CHECK_MSG(worst <= 1e-4, "%s/%s: per-token log-prob off by %.3g (relative)", pair, sides[s], worst);
        snprintf(name, sizeof name, "ref_%s_logp", sides[s]);
        double ref_sum;
        if (gh5_attr_double(f, obj, name, &ref_sum) == 0)
            CHECK_MSG(fabs(sum - ref_sum) <= 1e-4 * fmax(1.0, fabs(ref_sum)),
                      "%s: summed %s log-prob %.6f, reference %.6f", pair, sides[s], sum, ref_sum);
        free(logp);
        free(ids);
        free(all64);
        free(ref);
    }
    free(p64);
    free(pixels);
#undef P
}

int main(void)
{
    be_backend *be = test_backend_new();
    llava_model *m = NULL;
    tok_tokenizer *tok = NULL;
    char *dir = golden_path("tiny-llava");
    if (llava_load(dir, be, &m) != 0 || tok_load(dir, &tok) != 0) {
        fprintf(stderr, "cannot load %s: %s\n", dir, err_msg());
        return 1;
    }
    chat_template tpl;
    CHECK_OK(chat_template_load("llava_hf", &tpl));
    hid_t f = gh5_open();
    size_t n_cases;
    char **cases = gh5_list(f, "/forward", &n_cases);
    CHECK(n_cases > 0);
    for (size_t i = 0; i < n_cases; i++) {
        char path[256];
        int64_t dims[8];
        int nd;
        snprintf(path, sizeof path, "/forward/%s/input_ids", cases[i]);
        int64_t *ids64 = gh5_read_i64(f, path, dims, &nd);
        if (!CHECK_MSG(ids64 != NULL, "%s missing", path)) continue;
        int64_t n = numel(dims, nd);
        int32_t *ids = to_i32(ids64, n);
        check_prompt_ids(m, tok, &tpl, f, cases[i], ids64, n);
        check_generation(m, f, cases[i], ids, n);
        free(ids);
        free(ids64);
    }
    gh5_free_list(cases, n_cases);
    if (gh5_exists(f, "/dpo")) {
        size_t n_items;
        char **items = gh5_list(f, "/dpo", &n_items);
        size_t pairs = 0;
        for (size_t i = 0; i < n_items; i++)
            if (!strncmp(items[i], "pair", 4)) {
                check_scoring(m, f, items[i]);
                pairs++;
            }
        CHECK(pairs > 0);
        gh5_free_list(items, n_items);
    }
    H5Fclose(f);
    chat_template_free(&tpl);
    tok_free(tok);
    llava_free(m);
    be->destroy(be);
    free(dir);
    return check_finish();
}
