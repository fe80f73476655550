/* test_sampling_exact.c — the engine's per-row sampling helpers give the
 * same bits as the plain definitions they stand for:
 *  - smp_argmax is the first maximum (ties, -0/+0, infinities, a NaN first);
 *  - smp_logprob / smp_logprob_max equal, bit for bit, the normaliser
 *    written out directly here (expf per entry, float sums over blocks of
 *    256 in index order, block sums added in double in order), for lengths
 *    around the block and group edges and a 32000-entry vocabulary;
 *  - smp_choose_from with the argmax equals smp_choose, greedy and sampled;
 *  - a 3-entry case checked against log-softmax worked out by hand. */
#include "check.h"
#include "sampling.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The log-prob as its definition reads, one entry at a time. */
static float logprob_reference(const float *x, int n, int32_t token)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    float mx = x[best];
    double sum = 0;
    for (int i = 0; i < n; i += 256) {
        float part = 0;
        for (int j = i; j < n && j < i + 256; j++) part += expf(x[j] - mx);
        sum += part;
    }
    return (float)((double)x[token] - mx - log(sum));
}

static void fill(float *x, int n, uint64_t seed, float spread)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = spread * ((float)(seed >> 40) / (float)(1 << 24) - 0.5f);
    }
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static void check_logprob_bits(void)
{
    const int lens[] = {1, 2, 255, 256, 257, 2047, 2048, 2049, 4096, 5000, 32000};
    const float spreads[] = {1.0f, 30.0f, 400.0f}; /* the last underflows many exps */
    float *x = malloc(sizeof(float) * 32000);
    for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
        for (size_t s = 0; s < sizeof spreads / sizeof *spreads; s++) {
            int n = lens[l];
            fill(x, n, 77 + l * 3 + s, spreads[s]);
            int32_t tokens[3] = {0, n / 2, n - 1};
            for (int t = 0; t < 3; t++) {
                float want = logprob_reference(x, n, tokens[t]);
                float got = smp_logprob(x, n, tokens[t]);
                float got_max = smp_logprob_max(x, n, tokens[t], x[smp_argmax(x, n)]);
                CHECK_MSG(same_bits(want, got) && same_bits(want, got_max),
                          "n %d spread %g token %d: %.9g / %.9g vs %.9g", n, spreads[s],
                          tokens[t], got, got_max, want);
            }
        }
    free(x);
}

static void check_argmax(void)
{
    float ties[] = {1, 3, 2, 3, 3};
    CHECK_EQ(smp_argmax(ties, 5), 1);
    float zeros[] = {-1, -0.0f, 0.0f};
    CHECK_EQ(smp_argmax(zeros, 3), 1);
    float infs[] = {-INFINITY, -INFINITY};
    CHECK_EQ(smp_argmax(infs, 2), 0);
    float nan_first[] = {NAN, 5, 7};
    CHECK_EQ(smp_argmax(nan_first, 3), 0);
    float nan_mid[] = {1, NAN, 7, 7};
    CHECK_EQ(smp_argmax(nan_mid, 4), 2);
    /* long rows (the vocabulary-sized path): compared with the plain scan */
    int n = 5000;
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int c = 0; c < 6; c++) {
        fill(x, n, 900 + c, 10.0f);
        if (c == 1) x[4999] = x[700] = 100;             /* tie across chunks */
        if (c == 2) x[0] = NAN;                         /* NaN first: index 0 */
        if (c == 3) x[3] = NAN, x[1024] = NAN, x[2000] = 50;
        if (c == 4) for (int i = 0; i < n; i++) x[i] = i == 3000 ? 0.0f : (i == 600 ? -0.0f : -1);
        if (c == 5) for (int i = 0; i < n; i++) x[i] = i % 7 ? -INFINITY : NAN;
        int32_t want = 0;
        for (int i = 1; i < n; i++)
            if (x[i] > x[want]) want = i;
        CHECK_MSG(smp_argmax(x, n) == want, "case %d: %d vs %d", c, smp_argmax(x, n), want);
    }
    free(x);
}

static void check_hand_value(void)
{
    /* log_softmax([0, ln 2, ln 5])[2] = ln 5 - ln 8 = ln(5/8) */
    float x[] = {0.0f, logf(2.0f), logf(5.0f)};
    CHECK_NEAR(smp_logprob(x, 3, 2), log(5.0 / 8.0), 1e-6);
    CHECK_NEAR(smp_logprob(x, 3, 0), log(1.0 / 8.0), 1e-6);
}

static void check_choose_from(void)
{
    int n = 3000;
    float *x = malloc(sizeof(float) * (size_t)n), *scratch = malloc(sizeof(float) * 2 * (size_t)n);
    fill(x, n, 5, 8.0f);
    smp_params greedy = {0, 1, 0}, sampled = {0.9f, 0.95f, 50};
    smp_rng a, b;
    smp_rng_seed(&a, 42);
    smp_rng_seed(&b, 42);
    int32_t best = smp_argmax(x, n);
    CHECK_EQ(smp_choose_from(x, n, best, &greedy, &a, scratch), smp_choose(x, n, &greedy, &b, scratch));
    int same = 1;
    for (int i = 0; i < 50; i++)
        same &= smp_choose_from(x, n, best, &sampled, &a, scratch) ==
                smp_choose(x, n, &sampled, &b, scratch);
    CHECK(same);
    free(x);
    free(scratch);
}

int main(void)
{
    check_argmax();
    check_hand_value();
    check_logprob_bits();
    check_choose_from();
    return check_finish();
}
