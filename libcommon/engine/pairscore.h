/* pairscore.h — engine layer: the reference model's summed log-probs of a
 * preference pair's chosen and rejected responses (what DPO needs from the
 * frozen reference, computed once ahead of training). */
#ifndef SIMA_ENGINE_PAIRSCORE_H
#define SIMA_ENGINE_PAIRSCORE_H

#include "llava.h"

typedef struct {
    const int32_t *prompt;      /* [n_prompt] ids, BOS first, image tokens expanded */
    int64_t n_prompt;
    const int32_t *chosen;      /* [n_chosen] response ids, EOS last */
    int64_t n_chosen;
    const int32_t *rejected;    /* [n_rejected] */
    int64_t n_rejected;
    const float *pixels;        /* [n_images, 3, S, S] or NULL */
    int n_images;
} pairscore_pair;

/* chosen[i], rejected[i] = sum over the response tokens (EOS included) of
 * log p(token | everything before), under the model as it is (attach no
 * adapter, or switch it off, for the reference). The 2n sequences are scored
 * in one gen_score call, so the result for a given list of pairs is the
 * same bits whoever runs it. Sums are in double, in token order. */
int pairscore_ref_logps(llava_model *m, const pairscore_pair *pairs, int n, double *chosen,
                        double *rejected);

#endif
