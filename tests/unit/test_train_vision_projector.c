/* test_train_vision_projector.c — the projector-only vision training pass
 * (sima-dpo --train-projector): CLIP runs forward only and the backward
 * stops at the projector.
 *
 *  - the projector-only forward gives bitwise the features of the full one,
 *    and keeps no CLIP activations;
 *  - its backward gives bitwise the projector gradients of the full backward
 *    (full tape, every gradient wanted) on the same dfeats;
 *  - a full tape with only projector gradients wanted gives them too;
 *  - linear_2's bias gradient equals the column sums of dfeats, summed in
 *    double here (an independent value);
 *  - vision_grads_zero clears them;
 *  - CLIP gradients asked of a projector-only tape: an error, not a crash.
 * On the golden tiny model (skipped when absent). */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "train_vision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 2024;
static double urand(void) /* [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static float *host_of(be_backend *be, be_mat x)
{
    float *h = xmalloc(sizeof(float) * (size_t)(x.rows * x.cols));
    be->download(be, x, h);
    return h;
}

/* Bitwise equality of two backend matrices of the same shape. */
static bool same(be_backend *be, be_mat a, be_mat b)
{
    if (a.rows != b.rows || a.cols != b.cols) return false;
    float *x = host_of(be, a), *y = host_of(be, b);
    bool eq = memcmp(x, y, sizeof(float) * (size_t)(a.rows * a.cols)) == 0;
    free(x);
    free(y);
    return eq;
}

static bool nonzero(be_backend *be, be_mat a)
{
    float *x = host_of(be, a);
    bool nz = false;
    for (int64_t i = 0; i < a.rows * a.cols; i++) nz |= x[i] != 0;
    free(x);
    return nz;
}

int main(void)
{
    char *model_dir = golden_path("tiny-llava");
    char *cfg = fs_join(model_dir, "config.json");
    if (!fs_is_file(cfg)) {
        printf("%s absent: skipped\n", model_dir);
        return 77;
    }
    be_backend *be = be_cpu_new(0);
    llava_model *m = NULL;
    CHECK_OK(llava_load(model_dir, be, &m));
    if (!m) return check_finish();
    int n_img = 2, S = m->cfg.vision.image_size, N = m->image_tokens;
    int64_t D = m->cfg.text.hidden_size, n_px = (int64_t)n_img * 3 * S * S;
    float *pixels = xmalloc(sizeof(float) * (size_t)n_px);
    for (int64_t i = 0; i < n_px; i++) pixels[i] = (float)(1.5 * urand());
    float *dfe = xmalloc(sizeof(float) * (size_t)(n_img * N * D));
    for (int64_t i = 0; i < n_img * N * D; i++) dfe[i] = (float)(0.1 * urand());
    be_mat dfeats = be->mat_new(be, (int64_t)n_img * N, D);           /* [n*N, D] */
    be->upload(be, dfeats, dfe);

    /* full: CLIP and projector kept, every gradient wanted */
    vision_tape full;
    vision_grads g_all;
    be_mat f_all = be->mat_new(be, (int64_t)n_img * N, D);
    CHECK_OK(vision_forward_train(m, pixels, n_img, &full, f_all));
    vision_grads_new(m, &g_all);
    CHECK_OK(vision_backward(m, &full, dfeats, &g_all));
    CHECK_MSG(nonzero(be, g_all.layers[0].q), "the full backward gave CLIP no gradient");

    /* projector-only forward and backward */
    vision_tape proj;
    vision_grads g_p;
    be_mat f_p = be->mat_new(be, (int64_t)n_img * N, D);
    CHECK_OK(vision_forward_train_what(m, pixels, n_img, VISION_TRAIN_PROJECTOR, &proj, f_p));
    CHECK_MSG(same(be, f_all, f_p), "projector-only forward: features differ from the full forward");
    CHECK_MSG(!proj.layers && !proj.x0.data && !proj.patches_in.data,
              "projector-only forward kept CLIP activations");
    vision_grads_new_projector(m, &g_p);
    CHECK(g_p.layers == NULL && g_p.patch.data == NULL && g_p.l1.data && g_p.l2_b.data);
    CHECK_OK(vision_backward(m, &proj, dfeats, &g_p));
    be_mat *a[] = {&g_all.l1, &g_all.l1_b, &g_all.l2, &g_all.l2_b};
    be_mat *b[] = {&g_p.l1, &g_p.l1_b, &g_p.l2, &g_p.l2_b};
    const char *names[] = {"linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"};
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(same(be, *a[i], *b[i]), "projector-only %s gradient differs from the full one",
                  names[i]);
        CHECK_MSG(nonzero(be, *b[i]), "projector %s gradient is zero", names[i]);
    }

    /* linear_2's bias gradient, worked out independently: column sums of dfeats */
    float *db2 = host_of(be, g_p.l2_b);
    double worst = 0;
    for (int64_t j = 0; j < D; j++) {
        double s = 0;
        for (int64_t r = 0; r < (int64_t)n_img * N; r++) s += dfe[r * D + j];
        worst = fmax(worst, fabs(s - db2[j]));
    }
    CHECK_MSG(worst < 1e-5, "linear_2.bias gradient vs column sums of dfeats: off by %.3g", worst);
    free(db2);

    /* the full tape with only the projector wanted: CLIP skipped, same values */
    vision_grads g_p2;
    vision_grads_new_projector(m, &g_p2);
    CHECK_OK(vision_backward(m, &full, dfeats, &g_p2));
    be_mat *c[] = {&g_p2.l1, &g_p2.l1_b, &g_p2.l2, &g_p2.l2_b};
    for (int i = 0; i < 4; i++)
        CHECK_MSG(same(be, *a[i], *c[i]), "full tape, projector-only grads: %s differs", names[i]);

    vision_grads_zero(m, &g_p2);
    CHECK(!nonzero(be, g_p2.l1));

    /* CLIP gradients wanted from a projector-only tape */
    vision_grads g_bad;
    vision_grads_new(m, &g_bad);
    CHECK_FAILS_WITH(vision_backward(m, &proj, dfeats, &g_bad), "projector");

    vision_grads_free(m, &g_bad);
    vision_grads_free(m, &g_p2);
    vision_grads_free(m, &g_p);
    vision_grads_free(m, &g_all);
    vision_tape_free(m, &proj);
    vision_tape_free(m, &full);
    be_mat *ms[] = {&dfeats, &f_all, &f_p};
    for (int i = 0; i < 3; i++) be->mat_free(be, ms[i]);
    free(pixels);
    free(dfe);
    llava_free(m);
    be->destroy(be);
    free(cfg);
    free(model_dir);
    return check_finish();
}
