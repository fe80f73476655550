/* test_engine_batch.c — the generation engine's batch independence and
 * sampling rules, on the golden tiny model:
 *  - a batch of different prompts (with and without images, of different
 *    lengths) gives the same tokens and log-probs (1e-5) as each run alone,
 *    greedy and sampled, whatever the batch size and order;
 *  - a sampled sequence with seed s is the same in any batch, and another
 *    seed changes it;
 *  - top-k = 1 and a tiny top-p equal greedy; stopping rules and finish
 *    reasons; scoring a generated continuation returns its log-probs. */
#include "check.h"
#include "err.h"
#include "generate.h"
#include "golden.h"
#include "llava.h"
#include "sampling.h"
#include "tiny_llava.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_REQ 6

static float *test_pixels(const llava_model *m, int n_img, unsigned salt)
{
    int S = m->cfg.vision.image_size;
    size_t n = (size_t)n_img * 3 * S * S;
    float *p = xmalloc(sizeof(float) * n);
    uint64_t x = 0x1234 + salt;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((x >> 40) % 2000) / 1000.0f - 1.0f;
    }
    return p;
}

/* Prompts: BOS, some text ids of the model's vocabulary, an image run for
 * even requests. */
static int32_t *test_prompt(const llava_model *m, int i, int64_t *n, int *n_img)
{
    int len = 5 + 7 * i;
    *n_img = (i % 2 == 0) ? 1 : 0;
    int64_t total = len + (*n_img) * m->image_tokens;
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)total);
    int64_t k = 0;
    ids[k++] = m->cfg.text.bos_token_id;
    for (int j = 1; j < len; j++) {
        if (j == 2 && *n_img)
            for (int t = 0; t < m->image_tokens; t++) ids[k++] = m->cfg.image_token_index;
        ids[k++] = test_text_token(m, (uint64_t)(j * 37 + i * 101));
    }
    *n = k;
    return ids;
}

static void make_requests(llava_model *m, gen_request *req, int32_t **prompts, float **pix,
                          float temperature)
{
    for (int i = 0; i < N_REQ; i++) {
        int n_img;
        int64_t n;
        prompts[i] = test_prompt(m, i, &n, &n_img);
        pix[i] = n_img ? test_pixels(m, n_img, (unsigned)i) : NULL;
        req[i] = (gen_request){prompts[i], n, pix[i], n_img, {temperature, 0.9f, 0},
                               smp_derive_seed(42, (uint64_t)i, 1), 6 + 3 * i, -1};
    }
}

static int same_output(const gen_output *a, const gen_output *b, double tol)
{
    if (a->n != b->n || a->finish != b->finish) return 0;
    for (int64_t i = 0; i < a->n; i++)
        if (a->tokens[i] != b->tokens[i] || fabs(a->logprobs[i] - b->logprobs[i]) > tol) return 0;
    return 1;
}

static void check_batch_independence(llava_model *m, float temperature)
{
    gen_request req[N_REQ];
    int32_t *prompts[N_REQ];
    float *pix[N_REQ];
    make_requests(m, req, prompts, pix, temperature);
    gen_output alone[N_REQ] = {{0}}, batched[N_REQ] = {{0}}, reversed[N_REQ] = {{0}};
    gen_options one, many;
    gen_options_default(&one);
    one.max_batch = 1;
    gen_options_default(&many);
    many.max_batch = 4;       /* fewer slots than requests: continuous batching */
    many.max_prefill_rows = 64;
    bool ran = true; /* outputs are compared only when every run succeeded */
    for (int i = 0; i < N_REQ; i++) ran &= CHECK_OK(gen_generate(m, &req[i], 1, &one, &alone[i]));
    ran &= CHECK_OK(gen_generate(m, req, N_REQ, &many, batched));
    gen_request rev[N_REQ];
    for (int i = 0; i < N_REQ; i++) rev[i] = req[N_REQ - 1 - i];
    ran &= CHECK_OK(gen_generate(m, rev, N_REQ, &many, reversed));
    for (int i = 0; ran && i < N_REQ; i++) {
        CHECK_MSG(alone[i].n > 0, "request %d generated nothing", i);
        CHECK_MSG(same_output(&alone[i], &batched[i], 1e-5),
                  "T=%.1f request %d: batched output differs from running alone", temperature, i);
        CHECK_MSG(same_output(&alone[i], &reversed[N_REQ - 1 - i], 1e-5),
                  "T=%.1f request %d: output depends on batch order", temperature, i);
    }
    if (ran && temperature > 0) {
        /* another seed gives another sample for at least one request */
        int differs = 0;
        for (int i = 0; i < N_REQ; i++) {
            gen_request r = req[i];
            r.seed = smp_derive_seed(43, (uint64_t)i, 1);
            gen_output o = {0};
            if (CHECK_OK(gen_generate(m, &r, 1, &one, &o))) differs += !same_output(&o, &alone[i], 0);
            gen_output_free(&o);
        }
        CHECK_MSG(differs > 0, "changing the seed changed no sampled output");
    }
    for (int i = 0; i < N_REQ; i++) {
        gen_output_free(&alone[i]);
        gen_output_free(&batched[i]);
        gen_output_free(&reversed[i]);
        free(prompts[i]);
        free(pix[i]);
    }
}

/* Scoring the greedy continuation g of `greedy` gives back its log-probs,
 * and an EOS id equal to its first token stops at once. */
static void check_score_and_stop(llava_model *m, const gen_request *greedy, const gen_output *g)
{
    int64_t n = greedy->n_prompt;
    int32_t *all = xmalloc(sizeof(int32_t) * (size_t)(n + g->n));
    memcpy(all, greedy->prompt, sizeof(int32_t) * (size_t)n);
    memcpy(all + n, g->tokens, sizeof(int32_t) * (size_t)g->n);
    gen_score_request sq = {all, n + g->n, n, greedy->pixels, greedy->n_images};
    float *lp = NULL;
    CHECK_OK(gen_score(m, &sq, 1, NULL, &lp));
    for (int64_t i = 0; lp && i < g->n; i++)
        CHECK_MSG(fabs(lp[i] - g->logprobs[i]) <= 1e-5, "scored log-prob %lld: %g vs generated %g",
                  (long long)i, lp[i], g->logprobs[i]);
    free(lp);
    free(all);

    gen_request stop = *greedy;
    stop.eos_id = g->tokens[0];
    gen_output s = {0};
    if (CHECK_OK(gen_generate(m, &stop, 1, NULL, &s))) {
        CHECK_EQ(s.n, 1);
        CHECK(s.finish == GEN_EOS);
        CHECK(strcmp(gen_finish_name(s.finish), "eos") == 0);
    }
    gen_output_free(&s);
}

static void check_sampling_rules(llava_model *m)
{
    int n_img;
    int64_t n;
    int32_t *prompt = test_prompt(m, 2, &n, &n_img);
    float *pix = test_pixels(m, n_img, 7);
    gen_request greedy = {prompt, n, pix, n_img, {0, 1, 0}, 1, 12, -1};
    gen_request topk1 = greedy, topp = greedy;
    topk1.sampling = (smp_params){0.8f, 1.0f, 1};
    topp.sampling = (smp_params){0.8f, 1e-6f, 0};
    gen_output g = {0}, a = {0}, b = {0};
    bool ran = CHECK_OK(gen_generate(m, &greedy, 1, NULL, &g)) &&
               CHECK_OK(gen_generate(m, &topk1, 1, NULL, &a)) &&
               CHECK_OK(gen_generate(m, &topp, 1, NULL, &b)) && CHECK(g.n > 0);
    if (ran) {
        CHECK_MSG(same_output(&g, &a, 0), "top_k=1 differs from greedy");
        CHECK_MSG(same_output(&g, &b, 0), "tiny top_p differs from greedy");
        CHECK(g.finish == GEN_EOS || (g.finish == GEN_LENGTH && g.n == 12));
        double sum = 0;
        for (int64_t i = 0; i < g.n; i++) {
            CHECK(g.logprobs[i] <= 0);
            sum += g.logprobs[i];
        }
        CHECK_NEAR(sum, g.sum_logprob, 1e-4);
        check_score_and_stop(m, &greedy, &g);
    }

    /* bad requests are refused with a message */
    gen_request bad = greedy;
    bad.max_new_tokens = 0;
    gen_output o = {0};
    CHECK_FAILS_WITH(gen_generate(m, &bad, 1, NULL, &o), "max_new_tokens");
    gen_output_free(&g);
    gen_output_free(&a);
    gen_output_free(&b);
    free(prompt);
    free(pix);
}

static void check_rng(void)
{
    smp_rng a, b;
    smp_rng_seed(&a, 7);
    smp_rng_seed(&b, 7);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= smp_rng_next(&a) == smp_rng_next(&b);
    CHECK(same);
    CHECK(smp_derive_seed(1, 2, 3) == smp_derive_seed(1, 2, 3));
    CHECK(smp_derive_seed(1, 2, 3) != smp_derive_seed(1, 2, 4));
    CHECK(smp_derive_seed(1, 2, 3) != smp_derive_seed(1, 3, 3));
    /* sampled frequencies follow the softmax of the logits */
    float logits[4] = {0.0f, 1.0f, 2.0f, -1.0f}, scratch[8];
    smp_params p = {1.0f, 1.0f, 0};
    int counts[4] = {0};
    smp_rng r;
    smp_rng_seed(&r, 99);
    const int draws = 40000;
    for (int i = 0; i < draws; i++) counts[smp_choose(logits, 4, &p, &r, scratch)]++;
    double z = exp(0) + exp(1) + exp(2) + exp(-1);
    for (int i = 0; i < 4; i++)
        CHECK_NEAR((double)counts[i] / draws, exp(logits[i]) / z, 0.01);
    /* top-k 2 never picks the others */
    p.top_k = 2;
    int outside = 0;
    for (int i = 0; i < 2000; i++) {
        int32_t t = smp_choose(logits, 4, &p, &r, scratch);
        outside += t != 2 && t != 1;
    }
    CHECK_EQ(outside, 0);
    CHECK_NEAR(smp_logprob(logits, 4, 2), 2.0 - log(z), 1e-6);
}

int main(void)
{
    check_rng();
    be_backend *be = be_cpu_new(0);
    llava_model *m = NULL;
    char *dir = golden_path("tiny-llava");
    if (llava_load(dir, be, &m) != 0) {
        fprintf(stderr, "cannot load %s: %s\n", dir, err_msg());
        return 1;
    }
    check_batch_independence(m, 0.0f);
    check_batch_independence(m, 0.8f);
    check_sampling_rules(m);
    llava_free(m);
    be->destroy(be);
    free(dir);
    return check_finish();
}
