/* test_lora_merge_override.c — what sima-dpo --train-projector / --train all
 * write, on the golden tiny model:
 *  - lora_write_model with overrides: the folder loads with llava_load, the
 *    overridden projector tensors read back exactly as given (F32), a tensor
 *    not overridden nor merged reads back as the base's, and scoring an
 *    image sequence with the written model equals the base model with the
 *    new projector put in place (weight_set);
 *  - an override naming no tensor, or of the wrong size, is an error;
 *  - peft_add_module / peft_read_module_tensor: the projector round-trips
 *    exactly through an adapter folder, biases stored 1-D, adapter_config.json
 *    gets modules_to_save, the LoRA tensors stay, and an adapter without the
 *    module reads as "not found". */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "js.h"
#include "lora.h"
#include "lora_merge.h"
#include "peft_modules.h"
#include "safetensors.h"
#include "tiny_llava.h"
#include "train_pass.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const NAMES[4] = {
    "multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_1.bias",
    "multi_modal_projector.linear_2.weight", "multi_modal_projector.linear_2.bias"};

static be_weight *proj_w(llava_model *m, int i)
{
    be_weight *w[4] = {&m->proj.l1, &m->proj.l1_b, &m->proj.l2, &m->proj.l2_b};
    return w[i];
}

/* The base projector plus a fixed perturbation, [4] malloc'd. */
static void new_projector(llava_model *m, float **out)
{
    for (int i = 0; i < 4; i++) {
        be_weight *w = proj_w(m, i);
        int64_t n = w->rows * w->cols;
        out[i] = xmalloc(sizeof(float) * (size_t)n);
        m->be->weight_get(m->be, w, out[i]);
        for (int64_t k = 0; k < n; k++) out[i][k] += 0.05f * (float)((k * 37 + i * 11) % 17 - 8) / 8.0f;
    }
}

static float *weight_host(llava_model *m, const be_weight *w)
{
    float *h = xmalloc(sizeof(float) * (size_t)(w->rows * w->cols));
    m->be->weight_get(m->be, w, h);
    return h;
}

/* Per-token log-probs of one sequence with the image (prompt = image tokens). */
static float *score_image(llava_model *m, const float *pixels, int64_t *n_tok)
{
    int N = m->image_tokens;
    int64_t n = N + 6;
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)n);
    ids[0] = m->cfg.text.bos_token_id;
    for (int k = 1; k <= N; k++) ids[k] = m->cfg.image_token_index;
    for (int64_t k = N + 1; k < n; k++) ids[k] = test_text_token(m, (uint64_t)(2 + 3 * k));
    train_seq s = {ids, n, N + 1, 0, false, 0, 0};
    train_pass p;
    CHECK_OK(train_pass_run(m, &s, 1, pixels, 1, TRAIN_SCORE_ONLY, &p));
    *n_tok = p.tok_off[1];
    float *v = xmalloc(sizeof(float) * (size_t)*n_tok);
    memcpy(v, p.tok_logp, sizeof(float) * (size_t)*n_tok);
    train_pass_free(&p);
    free(ids);
    return v;
}

static void test_model_overrides(const char *model_dir, be_backend *be)
{
    llava_model *m = NULL, *w = NULL;
    CHECK_OK(llava_load(model_dir, be, &m));
    if (!m) return;
    float *proj[4];
    new_projector(m, proj);
    lora_override ov[4];
    for (int i = 0; i < 4; i++)
        ov[i] = (lora_override){NAMES[i], proj[i], proj_w(m, i)->rows * proj_w(m, i)->cols};
    char *dir = test_tmpdir("override");
    CHECK_OK(lora_write_model(NULL, ov, 4, model_dir, dir));
    CHECK_OK(llava_load(dir, be, &w));
    if (w) {
        for (int i = 0; i < 4; i++) {
            float *got = weight_host(w, proj_w(w, i));
            CHECK_MSG(!memcmp(got, proj[i], sizeof(float) * (size_t)ov[i].numel),
                      "%s: written values differ from the override", NAMES[i]);
            free(got);
        }
        float *a = weight_host(m, &m->lm.layers[0].q), *b = weight_host(w, &w->lm.layers[0].q);
        CHECK_MSG(!memcmp(a, b, sizeof(float) * (size_t)(m->lm.layers[0].q.rows * m->lm.layers[0].q.cols)),
                  "a tensor without override changed");
        free(a);
        free(b);
        /* scoring: written model == base with the new projector set */
        int S = m->cfg.vision.image_size;
        float *px = xmalloc(sizeof(float) * (size_t)(3 * S * S));
        for (int k = 0; k < 3 * S * S; k++) px[k] = (float)((k * 7919) % 200) / 100.0f - 1.0f;
        int64_t n1, n2, n0;
        float *before = score_image(m, px, &n0);
        for (int i = 0; i < 4; i++) be->weight_set(be, proj_w(m, i), proj[i]);
        float *s1 = score_image(m, px, &n1), *s2 = score_image(w, px, &n2);
        CHECK_EQ(n1, n2);
        CHECK_EQ(n0, n1);
        double d = 0, moved = 0;
        for (int64_t t = 0; t < n0 && t < n1 && t < n2; t++) {
            d = fmax(d, fabs((double)s1[t] - s2[t]));
            moved = fmax(moved, fabs((double)s1[t] - before[t]));
        }
        CHECK_MSG(d <= 1e-5, "written model vs base + new projector: log-probs differ by %.3g", d);
        CHECK_MSG(moved > 1e-4, "the new projector did not change the scores (%.3g)", moved);
        free(before);
        free(s1);
        free(s2);
        free(px);
        llava_free(w);
    }
    lora_override bad = {"multi_modal_projector.linear_9.weight", proj[0], ov[0].numel};
    CHECK_FAILS_WITH(lora_write_model(NULL, &bad, 1, model_dir, dir), "no tensor");
    lora_override small = {NAMES[0], proj[0], ov[0].numel - 1};
    CHECK_FAILS_WITH(lora_write_model(NULL, &small, 1, model_dir, dir), "values");
    for (int i = 0; i < 4; i++) free(proj[i]);
    free(dir);
    llava_free(m);
}

static void test_peft_module(const char *model_dir, be_backend *be)
{
    llava_model *m = NULL;
    lora_adapter *ad = NULL;
    CHECK_OK(llava_load(model_dir, be, &m));
    if (!m) return;
    lora_config c = lora_config_default();
    c.r = 2;
    CHECK_OK(lora_new(m, &c, 3, &ad));
    char *dir = test_tmpdir("peftmod");
    CHECK_OK(lora_save_peft(ad, dir, model_dir));
    float *proj[4], *back = NULL;
    new_projector(m, proj);
    bool found = true;
    back = xmalloc(sizeof(float) * (size_t)(m->proj.l2.rows * m->proj.l2.cols));
    CHECK_OK(peft_read_module_tensor(dir, NAMES[2], m->proj.l2.rows, m->proj.l2.cols, back, &found));
    CHECK_MSG(!found, "an adapter without the projector reported one");
    peft_module_tensor ts[4];
    for (int i = 0; i < 4; i++)
        ts[i] = (peft_module_tensor){NAMES[i], proj[i], proj_w(m, i)->rows, proj_w(m, i)->cols};
    CHECK_OK(peft_add_module(dir, PEFT_PROJECTOR_MODULE, ts, 4));
    for (int i = 0; i < 4; i++) {
        CHECK_OK(peft_read_module_tensor(dir, NAMES[i], ts[i].rows, ts[i].cols, back, &found));
        CHECK_MSG(found && !memcmp(back, proj[i], sizeof(float) * (size_t)(ts[i].rows * ts[i].cols)),
                  "%s did not round-trip", NAMES[i]);
    }
    char *st = fs_join(dir, "adapter_model.safetensors");
    st_set *set = NULL;
    CHECK_OK(st_open_file(st, &set));
    if (set) {
        const st_tensor *b = st_find(set, "base_model.model.model.multi_modal_projector.linear_1.bias");
        CHECK_MSG(b && b->ndim == 1 && b->shape[0] == m->proj.l1_b.cols, "linear_1.bias should be stored 1-D");
        char name[256];
        lora_peft_name(0, LL_Q, 'A', name, sizeof name);
        CHECK_MSG(st_find(set, name) != NULL, "the LoRA tensors were lost");
        st_close(set);
    }
    char *cfg = fs_join(dir, "adapter_config.json");
    json_t *js = js_load_file(cfg);
    json_t *mods = js ? json_object_get(js, "modules_to_save") : NULL;
    CHECK_MSG(mods && json_array_size(mods) == 1 &&
                  !strcmp(json_string_value(json_array_get(mods, 0)), "multi_modal_projector"),
              "adapter_config.json should list modules_to_save [multi_modal_projector]");
    json_decref(js);
    /* a wrong shape is an error naming the tensor */
    CHECK_FAILS_WITH(peft_read_module_tensor(dir, NAMES[2], m->proj.l2.rows + 1, m->proj.l2.cols, back, &found),
                     "linear_2.weight");
    for (int i = 0; i < 4; i++) free(proj[i]);
    free(back);
    free(st);
    free(cfg);
    free(dir);
    lora_free(ad);
    llava_free(m);
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
    test_model_overrides(model_dir, be);
    test_peft_module(model_dir, be);
    be->destroy(be);
    free(cfg);
    free(model_dir);
    return check_finish();
}
