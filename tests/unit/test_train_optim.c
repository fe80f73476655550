/* test_train_optim.c — AdamW against hand-computed steps, the warm-up +
 * cosine schedule at its landmarks, and global-norm clipping. */
#include "check.h"
#include "optim.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

static void test_adamw(void)
{
    optim_adamw o = optim_adamw_default();
    o.lr = 0.1;
    o.weight_decay = 0.01;
    float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, -1.0f}, m[2] = {0}, v[2] = {0};
    optim_adamw_step(&o, 1, p, g, m, v, 2);
    /* step 1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2, update = sign(g)
     * (up to eps); p = p * (1 - 0.001) - 0.1 * sign(g) */
    CHECK_NEAR(m[0], 0.05, 1e-7);
    CHECK_NEAR(v[1], 0.001, 1e-9);
    CHECK_NEAR(p[0], 1.0 * 0.999 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-6);
    CHECK_NEAR(p[1], -2.0 * 0.999 + 0.1 * 1.0 / (1.0 + 1e-8), 1e-6);
    /* step 2 with gradient 0.25 on p[0]: by hand */
    float g2[2] = {0.25f, 0.0f};
    double p0 = p[0];
    optim_adamw_step(&o, 2, p, g2, m, v, 2);
    double m2 = 0.9 * 0.05 + 0.1 * 0.25, v2 = 0.999 * 0.00025 + 0.001 * 0.0625;
    double mh = m2 / (1 - 0.81), vh = v2 / (1 - 0.999 * 0.999);
    CHECK_NEAR(m[0], m2, 1e-7);
    CHECK_NEAR(v[0], v2, 1e-9);
    CHECK_NEAR(p[0], p0 * 0.999 - 0.1 * mh / (sqrt(vh) + 1e-8), 1e-6);
}

static void test_schedule(void)
{
    /* 100 steps, 3% warm-up: 3 warm-up steps, 0 at step 0, peak at 3 */
    CHECK_NEAR(optim_lr(1e-3, 0, 100, 0.03), 0.0, 1e-15);
    CHECK_NEAR(optim_lr(1e-3, 1, 100, 0.03), 1e-3 / 3, 1e-15);
    CHECK_NEAR(optim_lr(1e-3, 3, 100, 0.03), 1e-3, 1e-15);
    /* step 51: 48 of the 97 decay steps done */
    CHECK_NEAR(optim_lr(1e-3, 51, 100, 0.03),
               1e-3 * 0.5 * (1 + cos(PI * 48.0 / 97.0)), 1e-15);
    CHECK_NEAR(optim_lr(1e-3, 100, 100, 0.03), 0.0, 1e-15);
    /* no warm-up: starts at the peak */
    CHECK_NEAR(optim_lr(2e-5, 0, 10, 0.0), 2e-5, 1e-18);
    /* monotone decreasing after warm-up */
    int mono = 1;
    for (int s = 4; s < 100; s++) mono &= optim_lr(1, s, 100, 0.03) <= optim_lr(1, s - 1, 100, 0.03);
    CHECK(mono);
}

static void test_clip(void)
{
    float a[2] = {3.0f, 0.0f}, b[1] = {4.0f};
    float *gs[2] = {a, b};
    int64_t n[2] = {2, 1};
    CHECK_NEAR(optim_global_norm(gs, n, 2), 5.0, 1e-12);
    double before = optim_clip(gs, n, 2, 1.0);
    CHECK_NEAR(before, 5.0, 1e-12);
    CHECK_NEAR(optim_global_norm(gs, n, 2), 1.0, 1e-6);
    CHECK_NEAR(a[0], 0.6, 1e-6);
    CHECK_NEAR(b[0], 0.8, 1e-6);
    /* under the limit: untouched */
    double again = optim_clip(gs, n, 2, 10.0);
    CHECK_NEAR(again, 1.0, 1e-6);
    CHECK_NEAR(a[0], 0.6, 1e-6);
}

int main(void)
{
    test_adamw();
    test_schedule();
    test_clip();
    return check_finish();
}
