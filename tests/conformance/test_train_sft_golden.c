/* test_train_sft_golden.c — full (non-LoRA) gradients against transformers.
 * golden.h5/sft: the cross-entropy (mean over response tokens) of one
 * sequence on the base model, and the gradient of every tensor under
 * /sft/grads, by hub name, within 1e-3 of the tensor's largest magnitude.
 * Tensors the model never uses (CLIP layers past the feature layer,
 * post_layernorm) must have exactly zero reference gradients. Tensors whose
 * exact gradient is zero are compared against a 1e-5 magnitude floor. The image is
 * /sft/pixel_values when present, else that of the DPO pair whose chosen
 * sequence is the SFT sequence (how the golden file was made). */
#include "check.h"
#include "test_backend.h"
#include "dpo.h"
#include "err.h"
#include "golden.h"
#include "train_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The SFT sequence's one image [3, S, S]; NULL when none is found. */
static float *find_pixels(hid_t f, const int64_t *ids, int64_t n, int S)
{
    int64_t dims[8];
    int nd, n_img = 0;
    if (gh5_exists(f, "/sft/pixel_values")) {
        float *px = gh5_read_pixels(f, "/sft/pixel_values", S, &n_img);
        if (n_img == 1) return px;
        free(px);
        return NULL;
    }
    size_t np;
    char **groups = gh5_list(f, "/dpo", &np);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* members that are datasets have no chosen_ids */
    float *px = NULL;
    for (size_t i = 0; !px && i < np; i++) {
        char path[300];
        snprintf(path, sizeof path, "/dpo/%s/chosen_ids", groups[i]);
        if (!gh5_exists(f, path)) continue;
        int64_t *c = gh5_read_i64(f, path, dims, &nd);
        if (c && nd == 1 && dims[0] == n && !memcmp(c, ids, sizeof(int64_t) * n)) {
            snprintf(path, sizeof path, "/dpo/%s/pixel_values", groups[i]);
            px = gh5_read_pixels(f, path, S, &n_img);
            if (n_img != 1) {
                free(px);
                px = NULL;
            }
        }
        free(c);
    }
    gh5_free_list(groups, np);
    return px;
}

static double max_abs(const float *x, int64_t n)
{
    double mx = 0;
    for (int64_t i = 0; i < n; i++) mx = fabs(x[i]) > mx ? fabs(x[i]) : mx;
    return mx;
}

static void check_grads(hid_t f, llava_model *m, llama_grads *lg, vision_grads *vg)
{
    size_t n;
    char **names = gh5_list(f, "/sft/grads", &n);
    CHECK_MSG(n > 0, "no gradients under /sft/grads");
    double worst = 0;
    int zeros = 0;
    for (size_t i = 0; i < n; i++) {
        char path[400];
        snprintf(path, sizeof path, "/sft/grads/%s", names[i]);
        int64_t dims[8];
        int nd;
        float *ref = gh5_read_f32(f, path, dims, &nd);
        int64_t cnt = 1;
        for (int d = 0; d < nd; d++) cnt *= dims[d];
        be_mat *g = train_grad_by_name(m, lg, vg, names[i]);
        if (!g) {
            CHECK_MSG(max_abs(ref, cnt) == 0, "%s: unused here, but its reference gradient is not zero",
                      names[i]);
            zeros++;
            free(ref);
            continue;
        }
        if (!CHECK_MSG(g->rows * g->cols == cnt, "%s: %lld values, reference %lld", names[i],
                       (long long)(g->rows * g->cols), (long long)cnt)) {
            free(ref);
            continue;
        }
        float *got = xmalloc(sizeof(float) * (size_t)cnt);
        m->be->download(m->be, *g, got);
        double mx = max_abs(ref, cnt), d = 0;
        for (int64_t j = 0; j < cnt; j++) d = fmax(d, fabs((double)got[j] - ref[j]));
        /* a floor for gradients that are zero in exact arithmetic (CLIP's
         * k_proj bias: softmax ignores a shift shared by all keys), where
         * both sides hold only rounding noise of ~1e-9 */
        double e = d / fmax(mx, 1e-5);
        worst = fmax(worst, e);
        CHECK_MSG(e <= 1e-3, "%s: gradient off by %.3g (max |ref| %.3g)", names[i], e, mx);
        free(got);
        free(ref);
    }
    printf("sft: %zu gradients (%d unused, zero), worst error %.3g of the tensor's max magnitude\n", n,
           zeros, worst);
    gh5_free_list(names, n);
}

int main(void)
{
    hid_t f = gh5_open();
    if (!gh5_exists(f, "/sft")) {
        printf("golden.h5 has no /sft: skipped\n");
        return 77;
    }
    char *model_dir = golden_path("tiny-llava");
    be_backend *be = test_backend_new();
    llava_model *m = NULL;
    CHECK_OK(llava_load(model_dir, be, &m));
    if (!m) return check_finish();
    int64_t dims[8], n_prompt = 0;
    int nd;
    double ref_loss = 0, n_prompt_d = 0;
    int64_t *ids64 = gh5_read_i64(f, "/sft/input_ids", dims, &nd);
    if (!CHECK_MSG(ids64 && nd == 1 && dims[0] > 0, "/sft/input_ids missing or empty"))
        return check_finish();
    CHECK_OK(gh5_attr_double(f, "/sft", "loss", &ref_loss));
    CHECK_OK(gh5_attr_double(f, "/sft", "n_prompt", &n_prompt_d));
    n_prompt = (int64_t)n_prompt_d;
    int64_t n = dims[0];
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)n);
    bool has_image = false;
    for (int64_t i = 0; i < n; i++) {
        ids[i] = (int32_t)ids64[i];
        has_image |= ids[i] == m->cfg.image_token_index;
    }
    float *pixels = has_image ? find_pixels(f, ids64, n, m->cfg.vision.image_size) : NULL;
    CHECK_MSG(!has_image || pixels, "no pixel values found for the SFT sequence");
    train_seq seq = {ids, n, n_prompt, pixels ? 0 : -1, false, 0, 0};
    llama_grads lg;
    vision_grads vg;
    llama_grads_new(m, LLAMA_GRAD_WEIGHTS, &lg);
    vision_grads_new(m, &vg);
    double loss = 0;
    CHECK_OK(sft_step(m, &seq, 1, pixels, pixels ? 1 : 0, TRAIN_WITH_VISION, &lg, &vg, &loss));
    CHECK_MSG(fabs(loss - ref_loss) <= 1e-4 * fabs(ref_loss), "sft loss %.8g vs %.8g", loss, ref_loss);
    printf("sft: loss %.7f (reference %.7f)\n", loss, ref_loss);
    check_grads(f, m, &lg, &vg);
    llama_grads_free(m, &lg);
    vision_grads_free(m, &vg);
    free(ids);
    free(ids64);
    free(pixels);
    llava_free(m);
    be->destroy(be);
    free(model_dir);
    H5Fclose(f);
    return check_finish();
}
