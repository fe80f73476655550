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

/* log_softmax(logits)[token], computed in double. */
float smp_logprob(const float *logits, int V, int32_t token);

#endif
