/* dpo.h — training layer: the DPO sigmoid loss and the SFT cross-entropy,
 * with gradients of the mean loss through a train_pass.
 *
 * DPO: per pair, z = beta * ((pc - rc) - (pr - rr)), loss = -logsigmoid(z),
 * where pc/pr are the policy's summed log-probs of the chosen/rejected
 * response tokens (EOS included) and rc/rr the reference's (the same model
 * with the adapter off, or given). The step's loss is the mean over pairs.
 */
#ifndef SIMA_TRAIN_DPO_H
#define SIMA_TRAIN_DPO_H

#include "train_pass.h"

typedef struct {
    double beta;            /* 0.1 */
    bool sima_rule;         /* rejected tokens scored by the SIMA rule */
} dpo_opts;

dpo_opts dpo_opts_default(void);

typedef struct {
    const int32_t *chosen, *rejected;   /* prompt + response + EOS */
    int64_t n_chosen, n_rejected;
    int64_t n_prompt;                   /* shared prompt length */
    int image;                          /* index into pixels, -1: none */
    bool has_ref;                       /* reference log-probs given (pairs.h5) */
    double ref_chosen, ref_rejected;
    float lora_dropout;                 /* LoRA dropout in the policy pass (0: none) */
    uint64_t dropout_seed;              /* the pair's masks (chosen and rejected derive theirs) */
} dpo_pair;

typedef struct {
    int n_pairs;
    double loss;                        /* mean over pairs */
    double *pair_loss;                  /* [n_pairs] */
    double *policy_chosen, *policy_rejected, *ref_chosen, *ref_rejected; /* [n_pairs] */
    /* DPO's implicit rewards beta * (policy - ref), means; accuracy = share
     * of pairs with reward_chosen > reward_rejected */
    double reward_chosen, reward_rejected, reward_accuracy, reward_margin;
    train_pass policy;                  /* sequences 2i (chosen), 2i+1 (rejected) */
    train_pass ref;                     /* the same, when computed here */
} dpo_result;

/* One pair's loss and its derivative w.r.t. pc (that w.r.t. pr is -*d_pc;
 * w.r.t. rc and rr the opposite signs). Stable for large |z|. */
double dpo_sigmoid_loss(double beta, double pc, double pr, double rc, double rr, double *d_pc);

/* Loss and gradients of the mean loss over the pairs: adds into lg (the
 * wanted entries, e.g. LoRA A/B). Reference log-probs not given are
 * computed with m->lm.lora_off set. pixels [n_img, 3, S, S] host. */
int dpo_step(llava_model *m, const dpo_pair *pairs, int n_pairs, const float *pixels, int n_img,
             const dpo_opts *opts, llama_grads *lg, dpo_result *out);
/* The same with the pass's mode (train_pass_mode bits): TRAIN_WITH_PROJECTOR
 * or TRAIN_WITH_VISION also add the vision side's gradients into vg. */
int dpo_step_mode(llava_model *m, const dpo_pair *pairs, int n_pairs, const float *pixels,
                  int n_img, const dpo_opts *opts, int mode, llama_grads *lg, vision_grads *vg,
                  dpo_result *r);
void dpo_result_free(dpo_result *r);

/* SFT: loss = mean over all scored tokens of -log p(token); gradients of it
 * into lg (and vg when vision is trained: mode TRAIN_WITH_VISION). */
int sft_step(llava_model *m, const train_seq *seqs, int n_seqs, const float *pixels, int n_img,
             int mode, llama_grads *lg, vision_grads *vg, double *loss);

#endif
