/* train_pass.h — training layer: score the response tokens of a batch of
 * sequences (prompt + response + EOS, optional image), keeping what the
 * backward needs, and run the backward from per-token log-prob gradients.
 * The losses (dpo.h) are functions of these per-token log-probs.
 *
 * Shared prompts: a sequence whose prompt (ids[0 .. n_prompt) and image)
 * equals an earlier sequence's, with the same LoRA dropout masks on it (no
 * dropout on both, or the same rate and seed; a score-only pass never
 * drops), is packed as its response rows only, attending to the earlier
 * sequence's prompt rows (llama_prefix): a DPO pair's prompt and image rows
 * are computed once. The results are those of the unshared batch up to
 * float rounding; the backward sums both branches' gradients into the
 * shared rows. train_pass_set_sharing(false) packs every sequence whole.
 */
#ifndef SIMA_TRAIN_PASS_H
#define SIMA_TRAIN_PASS_H

#include "train_llama.h"
#include "train_vision.h"

typedef struct {
    const int32_t *ids;     /* [n] prompt + response (+ EOS) */
    int64_t n;
    int64_t n_prompt;       /* the scored tokens are ids[n_prompt .. n) */
    int image;              /* index of its image in the pass's pixels; -1: none */
    bool sima_rule;         /* score each position's most likely token other
                             * than the real one (the published SIMA code's
                             * rule for rejected answers) */
    float lora_dropout;     /* LoRA dropout of its rows in a pass kept for the
                             * backward (0: none; score-only passes never drop) */
    uint64_t dropout_seed;  /* its masks' seed (llama_dropout) */
} train_seq;

typedef struct {
    llava_model *m;
    int n_seqs;
    int64_t *tok_off;       /* [n_seqs + 1]: sequence s's tokens are tok_logp[tok_off[s] ..) */
    float *tok_logp;        /* [n_tok] per-token log-probs */
    double *seq_logp;       /* [n_seqs] sums */
    /* kept for the backward */
    bool keep;
    llama_tape tape;
    vision_tape vision;     /* n_img 0 when the vision side is frozen */
    int n_img;
    int *seq_image;         /* [n_seqs] image whose features its rows took;
                             * -1: none (or its prompt is shared) */
    int *seq_prefix;        /* [n_seqs] sequence whose prompt rows it shares; -1: none */
    int64_t rows_saved;     /* prompt rows not computed again thanks to sharing */
    be_mat hidden;          /* [R, D] */
    be_mat logits;          /* [n_tok, V] */
    int64_t *rows;          /* [n_tok] batch row that predicts each token (the
                             * first response tokens of sequences sharing a
                             * prompt share its last row) */
    int32_t *targets;       /* [n_tok] token whose log-prob is taken */
} train_pass;

typedef enum {
    TRAIN_SCORE_ONLY = 0,   /* no backward: no tape kept */
    TRAIN_FOR_BACKWARD = 1, /* decoder (and LoRA) gradients */
    TRAIN_WITH_VISION = 2,  /* also backward through projector and CLIP */
    TRAIN_WITH_PROJECTOR = 4, /* also backward into the projector only (CLIP forward only) */
} train_pass_mode;

/* Forward all sequences as one ragged batch. pixels [n_img, 3, S, S] host. */
int train_pass_run(llava_model *m, const train_seq *seqs, int n_seqs, const float *pixels,
                   int n_img, int mode, train_pass *p);
/* Backward from dtok [n_tok] = dLoss/d tok_logp; adds into lg (and vg when
 * the pass ran TRAIN_WITH_VISION or _PROJECTOR; vg may be NULL otherwise). */
int train_pass_backward(train_pass *p, const float *dtok, llama_grads *lg, vision_grads *vg);
void train_pass_free(train_pass *p);
/* Sharing of equal prompts between the sequences of a pass (default on);
 * returns the previous setting. For tests and comparisons. */
bool train_pass_set_sharing(bool on);

#endif
