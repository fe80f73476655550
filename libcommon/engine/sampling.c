/* sampling.c — engine layer: RNG, greedy/temperature/top-k/top-p choice. */
#include "sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void smp_rng_seed(smp_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t smp_rng_next(smp_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double smp_rng_uniform(smp_rng *r) { return (double)(smp_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t smp_derive_seed(uint64_t global_seed, uint64_t prompt_id, uint64_t candidate)
{
    uint64_t x = global_seed;
    uint64_t a = splitmix64(&x);
    x = a ^ prompt_id;
    uint64_t b = splitmix64(&x);
    x = b ^ candidate;
    return splitmix64(&x);
}

static int32_t argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Largest non-NaN value of x[0..n) (-inf if none): 16 running maxima side
 * by side, a form the compiler turns into vector max instructions. */
static float chunk_max(const float *x, int n)
{
    float lane[16];
    for (int l = 0; l < 16; l++) lane[l] = -INFINITY;
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
    for (; i < n; i++) lane[0] = x[i] > lane[0] ? x[i] : lane[0];
    float m = lane[0];
    for (int l = 1; l < 16; l++) m = lane[l] > m ? lane[l] : m;
    return m;
}

/* The same index as argmax() (the first maximum; 0 when x[0] is NaN), in
 * two passes: the maximum of each chunk, then the first position of the
 * overall maximum (a NaN equals nothing, -0 equals +0, as in argmax). */
#define SMP_CHUNK 512
int32_t smp_argmax(const float *x, int n)
{
    if (n <= SMP_CHUNK || isnan(x[0])) return argmax(x, n);
    float cmax[(n + SMP_CHUNK - 1) / SMP_CHUNK];
    int nc = 0;
    float m = -INFINITY;
    for (int i = 0; i < n; i += SMP_CHUNK, nc++) {
        cmax[nc] = chunk_max(x + i, n - i < SMP_CHUNK ? n - i : SMP_CHUNK);
        m = cmax[nc] > m ? cmax[nc] : m;
    }
    int c = 0;
    while (c < nc - 1 && !(cmax[c] == m)) c++;
    for (int i = c * SMP_CHUNK; i < n; i++)
        if (x[i] == m) return i;
    return 0; /* x[0] is -inf and everything else NaN or -inf */
}

/* Blocks of the log-softmax normaliser: each block's float sum runs in
 * index order; SMP_GROUP blocks are summed side by side so that their
 * additions do not wait on each other (the same sums, bit for bit). */
#define SMP_BLOCK 256
#define SMP_GROUP 8

/* part[b] = sum over block b (in index order) of expf(x - mx), for the
 * nb blocks starting at x, the last one n_last long. */
static void exp_block_sums(const float *x, int nb, int n_last, float mx, float *part)
{
    float e[SMP_GROUP * SMP_BLOCK];
    int n = (nb - 1) * SMP_BLOCK + n_last;
    for (int j = 0; j < n; j++) e[j] = expf(x[j] - mx);
    for (int b = 0; b < nb; b++) part[b] = 0;
    if (nb == SMP_GROUP && n_last == SMP_BLOCK) {
        for (int j = 0; j < SMP_BLOCK; j++)
            for (int b = 0; b < SMP_GROUP; b++) part[b] += e[b * SMP_BLOCK + j];
        return;
    }
    for (int b = 0; b < nb; b++) {
        int len = b == nb - 1 ? n_last : SMP_BLOCK;
        for (int j = 0; j < len; j++) part[b] += e[b * SMP_BLOCK + j];
    }
}

float smp_logprob_max(const float *logits, int V, int32_t token, float mx)
{
    /* float exponentials (each in (0, 1]) summed in blocks of 256, the
     * block sums added in double in block order */
    double sum = 0;
    for (int i = 0; i < V; i += SMP_GROUP * SMP_BLOCK) {
        int rest = V - i, nb = (rest + SMP_BLOCK - 1) / SMP_BLOCK;
        if (nb > SMP_GROUP) nb = SMP_GROUP;
        int n_last = rest >= nb * SMP_BLOCK ? SMP_BLOCK : rest - (nb - 1) * SMP_BLOCK;
        float part[SMP_GROUP];
        exp_block_sums(logits + i, nb, n_last, mx, part);
        for (int b = 0; b < nb; b++) sum += part[b];
    }
    return (float)((double)logits[token] - mx - log(sum));
}

float smp_logprob(const float *logits, int V, int32_t token)
{
    return smp_logprob_max(logits, V, token, logits[argmax(logits, V)]);
}

/* Sort candidates by logit, descending; ties by lower id first. */
typedef struct {
    float logit;
    int32_t id;
} cand;

static int cand_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id - y->id;
}

int32_t smp_choose(const float *logits, int V, const smp_params *p, smp_rng *rng,
                   float *scratch)
{
    return smp_choose_from(logits, V, argmax(logits, V), p, rng, scratch);
}

int32_t smp_choose_from(const float *logits, int V, int32_t best_id, const smp_params *p,
                        smp_rng *rng, float *scratch)
{
    if (p->temperature <= 0) return best_id;
    cand *c = (cand *)scratch; /* 2 * V floats hold V (float, int32) pairs */
    /* Candidates more than e^-40 below the best carry a total mass under
     * V * 4e-18: dropping them before sorting changes no probability that a
     * double can tell apart, and spares sorting the whole vocabulary. */
    float best = logits[best_id] / p->temperature;
    int m = 0;
    for (int i = 0; i < V; i++) {
        float l = logits[i] / p->temperature;
        if (l >= best - 40.0f) c[m++] = (cand){l, i};
    }
    qsort(c, (size_t)m, sizeof *c, cand_desc);
    int n = (p->top_k > 0 && p->top_k < m) ? p->top_k : m;
    /* probabilities of the kept candidates */
    double total = 0;
    double *prob = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) {
        prob[i] = exp((double)c[i].logit - c[0].logit);
        total += prob[i];
    }
    if (p->top_p > 0 && p->top_p < 1) {
        /* keep the smallest prefix whose mass reaches top_p (at least one) */
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += prob[i] / total;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        total = 0;
        for (int i = 0; i < n; i++) total += prob[i];
    }
    double u = smp_rng_uniform(rng) * total, acc = 0;
    int32_t pick = c[n - 1].id;
    for (int i = 0; i < n; i++) {
        acc += prob[i];
        if (u < acc) {
            pick = c[i].id;
            break;
        }
    }
    free(prob);
    return pick;
}
