/* test_train_prefix_share.c — equal prompts computed once (train_pass's
 * prompt sharing) against every sequence packed whole
 * (train_pass_set_sharing(false)), on a small random LLaVA with a random
 * LoRA adapter (B != 0) and images:
 *  - DPO (dpo_step, SIMA rule on the rejected answers) over pairs with and
 *    without an image, responses of different lengths, and a pair whose
 *    prompt and image repeat an earlier pair's: the same per-token policy
 *    and reference log-probs (1e-5 relative), the same SIMA-rule targets,
 *    losses, and LoRA and full-weight gradients (float tolerance), with the
 *    number of prompt rows saved worked out by hand;
 *  - SFT through the vision tower (TRAIN_WITH_VISION): the same decoder and
 *    vision gradients;
 *  - LoRA dropout: the same rate and seed share (and score alike); another
 *    seed does not share. */
#include "check.h"
#include "dpo.h"
#include "err.h"
#include "lora.h"
#include "tiny_llava.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { IMG = TINY_LLAVA_IMAGE_TOKEN, EOS = 2 };

static uint64_t rng = 4242;
static double urand(void) /* [0, 1) */
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) * 0x1.0p-53;
}

/* prompt (BOS, text, image tokens when with_image, text) + response + EOS */
static int32_t *make_seq(int n_img_tok, bool with_image, const int32_t *resp, int n_resp,
                         int64_t *n, int64_t *n_prompt)
{
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)(8 + n_img_tok + n_resp));
    int64_t k = 0;
    ids[k++] = 1;
    ids[k++] = 5;
    for (int i = 0; with_image && i < n_img_tok; i++) ids[k++] = IMG;
    ids[k++] = 9;
    ids[k++] = 12;
    ids[k++] = with_image ? 7 : 8;   /* the two prompts differ without the image too */
    *n_prompt = k;
    for (int i = 0; i < n_resp; i++) ids[k++] = resp[i];
    ids[k++] = EOS;
    *n = k;
    return ids;
}

/* Pairs 0 (image 0), 1 (no image), 2 (image 1), 3 (pair 0's prompt and image). */
enum { N_PAIRS = 4 };
static void make_pairs(const llava_model *m, dpo_pair *p)
{
    static const int32_t r[][6] = {{3, 4, 6},       {10, 11},         {13, 14, 15, 16, 17},
                                   {18, 19, 20, 21}, {22},             {23, 24, 25, 26, 27, 28},
                                   {29, 30},         {31, 32, 33}};
    static const int len[] = {3, 2, 5, 4, 1, 6, 2, 3};
    static const int image[N_PAIRS] = {0, -1, 1, 0};
    memset(p, 0, sizeof(dpo_pair) * N_PAIRS);
    for (int i = 0; i < N_PAIRS; i++) {
        int64_t np;
        p[i].chosen = make_seq(m->image_tokens, image[i] >= 0, r[2 * i], len[2 * i], &p[i].n_chosen, &np);
        p[i].rejected = make_seq(m->image_tokens, image[i] >= 0, r[2 * i + 1], len[2 * i + 1],
                                 &p[i].n_rejected, &p[i].n_prompt);
        p[i].image = image[i];
    }
}

static void free_pairs(dpo_pair *p)
{
    for (int i = 0; i < N_PAIRS; i++) {
        free((void *)p[i].chosen);
        free((void *)p[i].rejected);
    }
}

/* every |a - b| <= rel |b| + abs */
static void check_close(const char *what, const float *a, const float *b, int64_t n, double rel,
                        double abs)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]) / (rel * fabs((double)b[i]) + abs));
    CHECK_MSG(worst <= 1.0, "%s: shared vs unshared off by %.3g x tolerance", what, worst);
}

/* max |a - b| over a tensor <= tol * max |b| */
static void check_grad(be_backend *be, const char *what, be_mat a, be_mat b, double tol)
{
    if (!a.data && !b.data) return;
    int64_t n = a.rows * a.cols;
    float *ha = xmalloc(sizeof(float) * (size_t)n), *hb = xmalloc(sizeof(float) * (size_t)n);
    be->download(be, a, ha);
    be->download(be, b, hb);
    double d = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)ha[i] - hb[i]));
        mx = fmax(mx, fabs((double)hb[i]));
    }
    CHECK_MSG(mx > 0, "%s: the gradient is zero, nothing compared", what);
    CHECK_MSG(d <= tol * mx, "%s: shared vs unshared gradient off by %.3g of its max %.3g", what,
              d / mx, mx);
    free(ha);
    free(hb);
}

static void check_llama_grads(be_backend *be, llama_grads *a, llama_grads *b)
{
    check_grad(be, "embed", a->embed, b->embed, 1e-4);
    check_grad(be, "final norm", a->norm, b->norm, 1e-4);
    check_grad(be, "lm_head", a->lm_head, b->lm_head, 1e-4);
    for (int l = 0; l < a->n_layers; l++) {
        char name[64];
        llama_layer_grads *x = &a->layers[l], *y = &b->layers[l];
        snprintf(name, sizeof name, "layer %d attn_norm", l);
        check_grad(be, name, x->attn_norm, y->attn_norm, 1e-4);
        snprintf(name, sizeof name, "layer %d mlp_norm", l);
        check_grad(be, name, x->mlp_norm, y->mlp_norm, 1e-4);
        for (int i = 0; i < LL_N_LINEAR; i++) {
            snprintf(name, sizeof name, "layer %d linear %d weight", l, i);
            check_grad(be, name, x->w[i], y->w[i], 1e-4);
            snprintf(name, sizeof name, "layer %d linear %d LoRA A", l, i);
            check_grad(be, name, x->lora_A[i], y->lora_A[i], 1e-4);
            snprintf(name, sizeof name, "layer %d linear %d LoRA B", l, i);
            check_grad(be, name, x->lora_B[i], y->lora_B[i], 1e-4);
        }
    }
}

static float *random_pixels(int n_img)
{
    float *px = xmalloc(sizeof(float) * (size_t)(n_img * 3 * 28 * 28));
    for (int i = 0; i < n_img * 3 * 28 * 28; i++) px[i] = (float)(2 * urand() - 1);
    return px;
}

static void test_dpo(llava_model *m)
{
    dpo_pair pairs[N_PAIRS];
    make_pairs(m, pairs);
    float *px = random_pixels(2);
    dpo_opts o = dpo_opts_default();
    o.sima_rule = true;
    llama_grads gs, gu;
    llama_grads_new(m, LLAMA_GRAD_LORA | LLAMA_GRAD_WEIGHTS, &gs);
    llama_grads_new(m, LLAMA_GRAD_LORA | LLAMA_GRAD_WEIGHTS, &gu);
    dpo_result rs, ru;
    CHECK_OK(dpo_step(m, pairs, N_PAIRS, px, 2, &o, &gs, &rs));
    bool was = train_pass_set_sharing(false);
    CHECK_OK(dpo_step(m, pairs, N_PAIRS, px, 2, &o, &gu, &ru));
    train_pass_set_sharing(was);

    /* saved: each rejected prompt, and pair 3's chosen prompt (pair 0's) */
    int64_t want = pairs[0].n_prompt + pairs[1].n_prompt + pairs[2].n_prompt + 2 * pairs[3].n_prompt;
    CHECK_EQ(rs.policy.rows_saved, want);
    CHECK_EQ(rs.ref.rows_saved, want);
    CHECK_EQ(ru.policy.rows_saved, 0);
    CHECK_EQ(rs.policy.hidden.rows + want, ru.policy.hidden.rows);
    int64_t n_tok = ru.policy.tok_off[2 * N_PAIRS];
    CHECK_EQ(rs.policy.tok_off[2 * N_PAIRS], n_tok);
    CHECK_MSG(memcmp(rs.policy.targets, ru.policy.targets, sizeof(int32_t) * (size_t)n_tok) == 0,
              "the SIMA rule picked other tokens with shared prompts");
    check_close("policy log-probs", rs.policy.tok_logp, ru.policy.tok_logp, n_tok, 1e-5, 1e-6);
    check_close("reference log-probs", rs.ref.tok_logp, ru.ref.tok_logp, n_tok, 1e-5, 1e-6);
    CHECK_NEAR(rs.loss, ru.loss, 1e-6 * fabs(ru.loss));
    check_llama_grads(m->be, &gs, &gu);

    dpo_result_free(&rs);
    dpo_result_free(&ru);
    llama_grads_free(m, &gs);
    llama_grads_free(m, &gu);
    free(px);
    free_pairs(pairs);
}

static void check_vision_grads(be_backend *be, vision_grads *a, vision_grads *b)
{
    check_grad(be, "vision patch embedding", a->patch, b->patch, 1e-4);
    check_grad(be, "vision position embedding", a->pos_emb, b->pos_emb, 1e-4);
    check_grad(be, "projector l1", a->l1, b->l1, 1e-4);
    check_grad(be, "projector l2", a->l2, b->l2, 1e-4);
    check_grad(be, "projector l2 bias", a->l2_b, b->l2_b, 1e-4);
    for (int l = 0; l < a->n_layers; l++) {
        check_grad(be, "CLIP q", a->layers[l].q, b->layers[l].q, 1e-4);
        check_grad(be, "CLIP fc2", a->layers[l].fc2, b->layers[l].fc2, 1e-4);
    }
}

/* SFT through CLIP and the projector: the shared image rows' gradient
 * reaches the image once, as the sum of both branches. */
static void test_sft_vision(llava_model *m)
{
    dpo_pair pairs[N_PAIRS];
    make_pairs(m, pairs);
    float *px = random_pixels(2);
    train_seq s[4];
    for (int i = 0; i < 2; i++) {
        const dpo_pair *p = &pairs[i == 0 ? 0 : 2];
        s[2 * i] = (train_seq){p->chosen, p->n_chosen, p->n_prompt, p->image, false, 0, 0};
        s[2 * i + 1] = (train_seq){p->rejected, p->n_rejected, p->n_prompt, p->image, false, 0, 0};
    }
    llama_grads gs, gu;
    vision_grads vs, vu;
    llama_grads_new(m, LLAMA_GRAD_LORA | LLAMA_GRAD_WEIGHTS, &gs);
    llama_grads_new(m, LLAMA_GRAD_LORA | LLAMA_GRAD_WEIGHTS, &gu);
    vision_grads_new(m, &vs);
    vision_grads_new(m, &vu);
    double ls, lu;
    CHECK_OK(sft_step(m, s, 4, px, 2, TRAIN_WITH_VISION, &gs, &vs, &ls));
    bool was = train_pass_set_sharing(false);
    CHECK_OK(sft_step(m, s, 4, px, 2, TRAIN_WITH_VISION, &gu, &vu, &lu));
    train_pass_set_sharing(was);
    CHECK_NEAR(ls, lu, 1e-6 * fabs(lu));
    check_llama_grads(m->be, &gs, &gu);
    check_vision_grads(m->be, &vs, &vu);
    llama_grads_free(m, &gs);
    llama_grads_free(m, &gu);
    vision_grads_free(m, &vs);
    vision_grads_free(m, &vu);
    free(px);
    free_pairs(pairs);
}

static train_pass kept_pass(llava_model *m, const train_seq *s, int n, const float *px, bool share)
{
    train_pass p;
    bool was = train_pass_set_sharing(share);
    CHECK_OK(train_pass_run(m, s, n, px, 1, TRAIN_FOR_BACKWARD, &p));
    train_pass_set_sharing(was);
    return p;
}

static void test_dropout(llava_model *m)
{
    dpo_pair pairs[N_PAIRS];
    make_pairs(m, pairs);
    float *px = random_pixels(1);
    const dpo_pair *p = &pairs[0];
    train_seq same[2] = {{p->chosen, p->n_chosen, p->n_prompt, 0, false, 0.3f, 77},
                         {p->rejected, p->n_rejected, p->n_prompt, 0, true, 0.3f, 77}};
    train_pass a = kept_pass(m, same, 2, px, true), b = kept_pass(m, same, 2, px, false);
    CHECK_EQ(a.rows_saved, p->n_prompt);
    int64_t n_tok = b.tok_off[2];
    check_close("dropout, same seed: log-probs", a.tok_logp, b.tok_logp, n_tok, 1e-5, 1e-6);
    train_pass_free(&a);
    train_pass_free(&b);
    train_seq other[2] = {same[0], same[1]};
    other[1].dropout_seed = 78;
    a = kept_pass(m, other, 2, px, true);
    CHECK_EQ(a.rows_saved, 0);
    train_pass_free(&a);
    other[1].dropout_seed = 77;
    other[1].lora_dropout = 0.2f;
    a = kept_pass(m, other, 2, px, true);
    CHECK_EQ(a.rows_saved, 0);
    train_pass_free(&a);
    free(px);
    free_pairs(pairs);
}

int main(void)
{
    be_backend *be = be_cpu_new(0);
    llava_model *m = tiny_llava_small(be, 11);
    lora_adapter *ad = m ? tiny_llava_lora(m, &rng) : NULL; /* draws go on from rng */
    if (!ad) return check_finish();
    test_dpo(m);
    test_sft_vision(m);
    test_dropout(m);
    lora_detach(m);
    lora_free(ad);
    llava_free(m);
    be->destroy(be);
    return check_finish();
}
