/* dpo.c — training layer: DPO and SFT losses and their gradients. */
#include "dpo.h"
#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

dpo_opts dpo_opts_default(void)
{
    dpo_opts o = {0.1, false};
    return o;
}

/* -logsigmoid(z) = softplus(-z), computed without overflow. */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sigmoid(double x)
{
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

double dpo_sigmoid_loss(double beta, double pc, double pr, double rc, double rr, double *d_pc)
{
    double z = beta * ((pc - rc) - (pr - rr));
    if (d_pc) *d_pc = -beta * sigmoid(-z);   /* d/dz softplus(-z) = -sigmoid(-z) */
    return softplus(-z);
}

/* Sequences 2i and 2i+1: pair i's chosen and rejected. */
static train_seq *pair_seqs(const dpo_pair *pairs, int n, const dpo_opts *o)
{
    train_seq *s = xcalloc((size_t)(2 * n), sizeof *s);
    for (int i = 0; i < n; i++) {
        const dpo_pair *p = &pairs[i];
        s[2 * i] = (train_seq){p->chosen, p->n_chosen, p->n_prompt, p->image, false,
                               p->lora_dropout, p->dropout_seed * 2};
        s[2 * i + 1] = (train_seq){p->rejected, p->n_rejected, p->n_prompt, p->image, o->sima_rule,
                                   p->lora_dropout, p->dropout_seed * 2 + 1};
    }
    return s;
}

static int reference_logps(llava_model *m, const dpo_pair *pairs, int n, const train_seq *seqs,
                           const float *pixels, int n_img, dpo_result *r)
{
    bool need = false;
    for (int i = 0; i < n; i++) need |= !pairs[i].has_ref;
    if (need) {
        bool was = m->lm.lora_off;
        m->lm.lora_off = true;
        int rc = train_pass_run(m, seqs, 2 * n, pixels, n_img, TRAIN_SCORE_ONLY, &r->ref);
        m->lm.lora_off = was;
        if (rc != 0) return -1;
    }
    for (int i = 0; i < n; i++) {
        r->ref_chosen[i] = pairs[i].has_ref ? pairs[i].ref_chosen : r->ref.seq_logp[2 * i];
        r->ref_rejected[i] = pairs[i].has_ref ? pairs[i].ref_rejected : r->ref.seq_logp[2 * i + 1];
    }
    return 0;
}

/* Losses, metrics, and dLoss/d(per-token log-prob) into dtok. */
static void dpo_losses(const dpo_opts *o, dpo_result *r, float *dtok)
{
    int n = r->n_pairs;
    const train_pass *p = &r->policy;
    r->loss = r->reward_chosen = r->reward_rejected = r->reward_accuracy = r->reward_margin = 0;
    for (int i = 0; i < n; i++) {
        double pc = p->seq_logp[2 * i], pr = p->seq_logp[2 * i + 1], d;
        r->policy_chosen[i] = pc;
        r->policy_rejected[i] = pr;
        r->pair_loss[i] = dpo_sigmoid_loss(o->beta, pc, pr, r->ref_chosen[i], r->ref_rejected[i], &d);
        r->loss += r->pair_loss[i] / n;
        double wc = o->beta * (pc - r->ref_chosen[i]), wr = o->beta * (pr - r->ref_rejected[i]);
        r->reward_chosen += wc / n;
        r->reward_rejected += wr / n;
        r->reward_margin += (wc - wr) / n;
        r->reward_accuracy += (wc > wr ? 1.0 : 0.0) / n;
        for (int64_t t = p->tok_off[2 * i]; t < p->tok_off[2 * i + 1]; t++) dtok[t] = (float)(d / n);
        for (int64_t t = p->tok_off[2 * i + 1]; t < p->tok_off[2 * i + 2]; t++) dtok[t] = (float)(-d / n);
    }
}

int dpo_step(llava_model *m, const dpo_pair *pairs, int n_pairs, const float *pixels, int n_img,
             const dpo_opts *opts, llama_grads *lg, dpo_result *r)
{
    return dpo_step_mode(m, pairs, n_pairs, pixels, n_img, opts,
                         lg ? TRAIN_FOR_BACKWARD : TRAIN_SCORE_ONLY, lg, NULL, r);
}

int dpo_step_mode(llava_model *m, const dpo_pair *pairs, int n_pairs, const float *pixels,
                  int n_img, const dpo_opts *opts, int mode, llama_grads *lg, vision_grads *vg,
                  dpo_result *r)
{
    memset(r, 0, sizeof *r);
    if (n_pairs < 1) return ERR("dpo_step: no pairs");
    r->n_pairs = n_pairs;
    double **arrays[] = {&r->pair_loss, &r->policy_chosen, &r->policy_rejected, &r->ref_chosen,
                         &r->ref_rejected};
    for (int i = 0; i < 5; i++) *arrays[i] = xcalloc((size_t)n_pairs, sizeof(double));
    train_seq *seqs = pair_seqs(pairs, n_pairs, opts);
    int rc = reference_logps(m, pairs, n_pairs, seqs, pixels, n_img, r);
    if (rc == 0)
        rc = train_pass_run(m, seqs, 2 * n_pairs, pixels, n_img, mode, &r->policy);
    free(seqs);
    if (rc != 0) {
        dpo_result_free(r);
        return -1;
    }
    int64_t n_tok = r->policy.tok_off[2 * n_pairs];
    float *dtok = xmalloc(sizeof(float) * (size_t)n_tok);
    dpo_losses(opts, r, dtok);
    if (mode != TRAIN_SCORE_ONLY) rc = train_pass_backward(&r->policy, dtok, lg, vg);
    free(dtok);
    return rc;
}

void dpo_result_free(dpo_result *r)
{
    double *arrays[] = {r->pair_loss, r->policy_chosen, r->policy_rejected, r->ref_chosen,
                        r->ref_rejected};
    for (int i = 0; i < 5; i++) free(arrays[i]);
    train_pass_free(&r->policy);
    train_pass_free(&r->ref);
    memset(r, 0, sizeof *r);
}

int sft_step(llava_model *m, const train_seq *seqs, int n_seqs, const float *pixels, int n_img,
             int mode, llama_grads *lg, vision_grads *vg, double *loss)
{
    train_pass p;
    if (train_pass_run(m, seqs, n_seqs, pixels, n_img, mode ? mode : TRAIN_FOR_BACKWARD, &p) != 0)
        return -1;
    int64_t n_tok = p.tok_off[n_seqs];
    double sum = 0;
    for (int64_t t = 0; t < n_tok; t++) sum -= p.tok_logp[t];
    *loss = sum / (double)n_tok;
    float *dtok = xmalloc(sizeof(float) * (size_t)n_tok);
    for (int64_t t = 0; t < n_tok; t++) dtok[t] = (float)(-1.0 / (double)n_tok);
    int rc = train_pass_backward(&p, dtok, lg, vg);
    free(dtok);
    train_pass_free(&p);
    return rc;
}
