/* sampling.h — engine layer: per-sequence random numbers and token choice.
 *
 * Every sequence owns an RNG seeded from its own seed only, and draws exactly
 * one number per sampled token, so its output does not depend on which other
 * sequences share the batch or in which order they run.
 */
#ifndef SIMA_ENGINE_SAMPLING_H
#define SIMA_ENGINE_SAMPLING_H

#include <stdint.h>

/* xoshiro256** state, seeded through splitmix64. */
typedef struct {
    uint64_t s[4];
} smp_rng;

void smp_rng_seed(smp_rng *r, uint64_t seed);
uint64_t smp_rng_next(smp_rng *r);
double smp_rng_uniform(smp_rng *r); /* [0, 1), 53 bits */

/* A seed for (global seed, prompt id, candidate) that does not depend on rank
 * or batch position. */
uint64_t smp_derive_seed(uint64_t global_seed, uint64_t prompt_id, uint64_t candidate);

typedef struct {
    float temperature;   /* <= 0: greedy (argmax) */
    float top_p;         /* (0, 1]; 1 = off */
    int top_k;           /* <= 0 = off */
} smp_params;

/* Choose the next token from logits [V]. Greedy takes the first maximum.
 * Sampling applies temperature, then top-k, then top-p (as transformers'
 * warpers do), renormalises and draws one uniform number. scratch holds
 * 2 * V floats. */
int32_t smp_choose(const float *logits, int V, const smp_params *p, smp_rng *rng,
                   float *scratch);

/* The same choice given best_id = smp_argmax(logits, V), for a caller that
 * also needs the maximum (for smp_logprob_max). */
int32_t smp_choose_from(const float *logits, int V, int32_t best_id, const smp_params *p,
                        smp_rng *rng, float *scratch);

/* Index of the first maximum of x[0..n) (0 when x[0] is NaN). */
int32_t smp_argmax(const float *x, int n);

/* log_softmax(logits)[token], computed in double. */
float smp_logprob(const float *logits, int V, int32_t token);

/* The same given mx = the maximum of logits (logits[smp_argmax(...)]). */
float smp_logprob_max(const float *logits, int V, int32_t token, float mx);

#endif
