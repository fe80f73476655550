/* test_train_lora_dropout.c — LoRA dropout in the training forward
 * (train_seq.lora_dropout / llama_forward_train_dropout) on a small random
 * model with a random adapter (B != 0):
 *  - dropout 0 scores exactly as the plain training forward;
 *  - dropout > 0 changes the scores, the same seed gives the same scores,
 *    another seed other ones;
 *  - a sequence's scores do not depend on the batch it is in (alone, or
 *    second in a batch): what keeps -np 2 equal to -np 1;
 *  - the LoRA gradients with dropout match central finite differences of
 *    the loss (the masks are fixed by the seed, so the loss is smooth). */
#include "check.h"
#include "dpo.h"
#include "err.h"
#include "lora.h"
#include "tiny_llava.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const int32_t IDS0[] = {1, 5, 9, 12, 3, 7, 22, 31, 8, 2};
static const int32_t IDS1[] = {1, 17, 4, 29, 11, 6, 2};

static train_seq seq(int which, float p, uint64_t seed)
{
    if (which == 0) return (train_seq){IDS0, 10, 3, -1, false, p, seed};
    return (train_seq){IDS1, 7, 2, -1, false, p, seed};
}

/* Per-token log-probs of a pass kept for the backward (dropout applies). */
static float *scores(llava_model *m, const train_seq *s, int n, int64_t *n_tok)
{
    train_pass p;
    CHECK_OK(train_pass_run(m, s, n, NULL, 0, TRAIN_FOR_BACKWARD, &p));
    *n_tok = p.tok_off[n];
    float *v = xmalloc(sizeof(float) * (size_t)*n_tok);
    memcpy(v, p.tok_logp, sizeof(float) * (size_t)*n_tok);
    train_pass_free(&p);
    return v;
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void test_scores(llava_model *m)
{
    train_seq s0[2] = {seq(0, 0, 5), seq(1, 0, 6)};
    train_pass p;
    CHECK_OK(train_pass_run(m, s0, 2, NULL, 0, TRAIN_FOR_BACKWARD, &p));
    int64_t n;
    float *zero = scores(m, s0, 2, &n);
    /* dropout 0 vs the plain training forward: same bits */
    be_backend *be = m->be;
    int32_t ids[17];
    memcpy(ids, IDS0, sizeof IDS0);
    memcpy(ids + 10, IDS1, sizeof IDS1);
    llama_seq ls[2] = {{0, 10, NULL, false}, {10, 7, NULL, false}};
    llama_batch b = {17, ids, 2, ls, {0}};
    be_mat h1 = be->mat_new(be, 17, m->cfg.text.hidden_size), h2 = be->mat_new(be, 17, m->cfg.text.hidden_size);
    llama_tape t1, t2;
    float p0[17] = {0};
    uint64_t sd[17] = {0};
    llama_dropout d0 = {p0, sd};
    CHECK_OK(llama_forward_train(m, &b, &t1, h1));
    CHECK_OK(llama_forward_train_dropout(m, &b, &d0, &t2, h2));
    float *a1 = xmalloc(sizeof(float) * 17 * 32), *a2 = xmalloc(sizeof(float) * 17 * 32);
    be->download(be, h1, a1);
    be->download(be, h2, a2);
    CHECK_MSG(memcmp(a1, a2, sizeof(float) * 17 * 32) == 0, "dropout 0 is not the plain forward");
    llama_tape_free(m, &t1);
    llama_tape_free(m, &t2);
    be->mat_free(be, &h1);
    be->mat_free(be, &h2);
    free(a1);
    free(a2);
    train_pass_free(&p);

    train_seq sa[2] = {seq(0, 0.3f, 5), seq(1, 0.3f, 6)};
    float *drop = scores(m, sa, 2, &n), *again = scores(m, sa, 2, &n);
    CHECK_MSG(max_diff(drop, zero, n) > 1e-4, "dropout 0.3 did not change the scores");
    CHECK_MSG(max_diff(drop, again, n) == 0, "the same seed gave other scores");
    train_seq sb[2] = {seq(0, 0.3f, 8), seq(1, 0.3f, 6)};
    float *other = scores(m, sb, 2, &n);
    CHECK_MSG(max_diff(drop, other, 7) > 1e-5, "another seed gave the same scores");
    /* batching: sequence 1 alone scores as second in the batch */
    int64_t n1;
    train_seq alone = seq(1, 0.3f, 6);
    float *single = scores(m, &alone, 1, &n1);
    double d = max_diff(single, drop + 7, n1);
    CHECK_MSG(d < 1e-5, "sequence 1's scores depend on its batch: %g", d);
    free(zero);
    free(drop);
    free(again);
    free(other);
    free(single);
}

/* SFT loss (mean token NLL) of the two sequences with dropout. */
static double loss_of(llava_model *m, const train_seq *s)
{
    int64_t n;
    float *v = scores(m, s, 2, &n);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum -= v[i];
    free(v);
    return sum / (double)n;
}

/* Gradient entries of the largest magnitude of one tensor vs finite differences. */
static void fd_tensor(llava_model *m, lora_adapter *ad, const train_seq *s, float *host,
                      be_mat grad, int64_t n, const char *what)
{
    float *g = xmalloc(sizeof(float) * (size_t)n);
    m->be->download(m->be, grad, g);
    for (int pick = 0; pick < 3; pick++) {
        int64_t k = 0;
        for (int64_t i = 1; i < n; i++)
            if (fabsf(g[i]) > fabsf(g[k])) k = i;
        float keep = host[k], eps = 1e-2f;
        host[k] = keep + eps;
        lora_sync(ad);
        double lp = loss_of(m, s);
        host[k] = keep - eps;
        lora_sync(ad);
        double lm = loss_of(m, s);
        host[k] = keep;
        lora_sync(ad);
        double fd = (lp - lm) / (2.0 * eps);
        CHECK_MSG(fabs(fd - g[k]) <= 0.03 * fabs(g[k]) + 2e-4, "%s[%lld]: gradient %g, finite "
                  "difference %g", what, (long long)k, g[k], fd);
        g[k] = 0; /* next largest */
    }
    free(g);
}

static void test_gradients(llava_model *m, lora_adapter *ad)
{
    train_seq s[2] = {seq(0, 0.3f, 5), seq(1, 0.3f, 6)};
    llama_grads lg;
    llama_grads_new(m, LLAMA_GRAD_LORA, &lg);
    double loss;
    CHECK_OK(sft_step(m, s, 2, NULL, 0, TRAIN_FOR_BACKWARD, &lg, NULL, &loss));
    CHECK_NEAR(loss, loss_of(m, s), 1e-5);
    llama_linear_id which[] = {LL_Q, LL_V, LL_DOWN};
    for (int l = 0; l < ad->n_layers; l++)
        for (int w = 0; w < 3; w++) {
            int64_t out, in;
            lora_linear_dims(m, which[w], &out, &in);
            char name[64];
            snprintf(name, sizeof name, "layer %d linear %d A", l, which[w]);
            fd_tensor(m, ad, s, lora_host_A(ad, l, which[w]), lg.layers[l].lora_A[which[w]],
                      ad->cfg.r * in, name);
            snprintf(name, sizeof name, "layer %d linear %d B", l, which[w]);
            fd_tensor(m, ad, s, lora_host_B(ad, l, which[w]), lg.layers[l].lora_B[which[w]],
                      out * ad->cfg.r, name);
        }
    llama_grads_free(m, &lg);
}

int main(void)
{
    be_backend *be = be_cpu_new(1);
    llava_model *m = tiny_llava_small(be, 7);
    uint64_t z = 99; /* a random B (lora_new leaves B = 0: no LoRA output) */
    lora_adapter *ad = m ? tiny_llava_lora(m, &z) : NULL;
    if (!ad) return check_finish();
    test_scores(m);
    test_gradients(m, ad);
    lora_detach(m);
    lora_free(ad);
    llava_free(m);
    be->destroy(be);
    return check_finish();
}
