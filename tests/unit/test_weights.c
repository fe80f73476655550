/* test_weights.c — LLaVA tensor names: every stored spelling maps to the
 * llava-hf canonical name, and lookups by canonical name find each layout. */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "weights.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* stored spelling -> canonical name (NULL: not a LLaVA tensor) */
static const struct {
    const char *stored, *canonical;
    wt_component component;
} cases[] = {
    /* transformers 4 / llava-hf on the hub: already canonical */
    {"vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
     "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight", WT_VISION},
    {"vision_tower.vision_model.pre_layrnorm.weight",
     "vision_tower.vision_model.pre_layrnorm.weight", WT_VISION},
    {"multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_1.weight",
     WT_PROJECTOR},
    {"language_model.model.layers.3.mlp.down_proj.weight",
     "language_model.model.layers.3.mlp.down_proj.weight", WT_LANGUAGE},
    {"language_model.model.embed_tokens.weight", "language_model.model.embed_tokens.weight",
     WT_LANGUAGE},
    {"language_model.lm_head.weight", "language_model.lm_head.weight", WT_LM_HEAD},
    /* transformers 5 (and the golden tiny-llava's vision tower) */
    {"vision_tower.embeddings.patch_embedding.weight",
     "vision_tower.vision_model.embeddings.patch_embedding.weight", WT_VISION},
    {"model.vision_tower.vision_model.post_layernorm.bias",
     "vision_tower.vision_model.post_layernorm.bias", WT_VISION},
    {"model.vision_tower.encoder.layers.1.mlp.fc1.weight",
     "vision_tower.vision_model.encoder.layers.1.mlp.fc1.weight", WT_VISION},
    {"model.multi_modal_projector.linear_2.bias", "multi_modal_projector.linear_2.bias",
     WT_PROJECTOR},
    {"model.language_model.layers.0.self_attn.o_proj.weight",
     "language_model.model.layers.0.self_attn.o_proj.weight", WT_LANGUAGE},
    {"model.language_model.norm.weight", "language_model.model.norm.weight", WT_LANGUAGE},
    {"lm_head.weight", "language_model.lm_head.weight", WT_LM_HEAD},
    /* a bare LlavaModel */
    {"language_model.layers.1.input_layernorm.weight",
     "language_model.model.layers.1.input_layernorm.weight", WT_LANGUAGE},
    /* not LLaVA */
    {"base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight", NULL,
     WT_OTHER},
    {"model.layers.0.self_attn.q_proj.weight", NULL, WT_OTHER},
    {"vision_tower.", NULL, WT_OTHER},
    {"lm_head", NULL, WT_OTHER},
    {"", NULL, WT_OTHER},
};
#define N_CASES (sizeof cases / sizeof *cases)

static void test_canonical(void)
{
    char buf[256];
    for (size_t i = 0; i < N_CASES; i++) {
        const char *got = wt_canonical(cases[i].stored, buf, sizeof buf);
        if (cases[i].canonical)
            CHECK_MSG(got && strcmp(got, cases[i].canonical) == 0, "%s -> %s, want %s",
                      cases[i].stored, got ? got : "NULL", cases[i].canonical);
        else
            CHECK_MSG(got == NULL, "%s -> %s, want NULL", cases[i].stored, got);
        CHECK_MSG(wt_component_of(cases[i].stored) == cases[i].component,
                  "%s: component %s, want %s", cases[i].stored,
                  wt_component_name(wt_component_of(cases[i].stored)),
                  wt_component_name(cases[i].component));
        /* canonical names are fixed points */
        if (cases[i].canonical) {
            char again[256];
            const char *g2 = wt_canonical(cases[i].canonical, again, sizeof again);
            CHECK(g2 && strcmp(g2, cases[i].canonical) == 0);
        }
    }
    char tiny[8];
    CHECK(wt_canonical("lm_head.weight", tiny, sizeof tiny) == NULL); /* does not fit */
    CHECK(strcmp(wt_component_name(WT_VISION), "vision") == 0);
    CHECK(strcmp(wt_component_name(WT_PROJECTOR), "projector") == 0);
    CHECK(strcmp(wt_component_name(WT_LANGUAGE), "language") == 0);
    CHECK(strcmp(wt_component_name(WT_LM_HEAD), "lm_head") == 0);
    CHECK(strcmp(wt_component_name(WT_OTHER), "other") == 0);
}

/* A one-file checkpoint whose tensors carry the given names. */
static st_set *write_layout(const char *dir, const char *file, const char *const *names,
                            size_t n)
{
    float v[2] = {1, 2};
    st_write_tensor *w = xcalloc(n, sizeof *w);
    for (size_t i = 0; i < n; i++) w[i] = (st_write_tensor){names[i], ST_F32, 1, {2}, v};
    char *path = fs_join(dir, file);
    st_set *set = NULL;
    CHECK_OK(st_write_file(path, w, n, NULL));
    CHECK_OK(st_open_file(path, &set));
    unlink(path);
    free(path);
    free(w);
    return set;
}

static const char *const canonical_names[] = {
    "vision_tower.vision_model.embeddings.class_embedding",
    "vision_tower.vision_model.encoder.layers.0.layer_norm1.weight",
    "multi_modal_projector.linear_1.weight",
    "language_model.model.layers.0.self_attn.q_proj.weight",
    "language_model.lm_head.weight",
};
#define N_NAMES (sizeof canonical_names / sizeof *canonical_names)

/* In each layout, every canonical name finds the tensor stored under that
 * layout's spelling. */
static void check_layout(const char *dir, const char *const *stored)
{
    st_set *set = write_layout(dir, "layout.safetensors", stored, N_NAMES);
    if (!set) return;
    for (size_t i = 0; i < N_NAMES; i++) {
        const st_tensor *t = wt_find(set, canonical_names[i]);
        CHECK_MSG(t && strcmp(t->name, stored[i]) == 0, "%s: found %s, want %s",
                  canonical_names[i], t ? t->name : "nothing", stored[i]);
        /* any spelling can be asked for */
        CHECK(wt_find(set, stored[i]) == t);
        CHECK(wt_require(set, canonical_names[i], dir) == t);
    }
    st_close(set);
}

static void test_layouts(const char *dir)
{
    const char *const hf4[N_NAMES] = {
        "vision_tower.vision_model.embeddings.class_embedding",
        "vision_tower.vision_model.encoder.layers.0.layer_norm1.weight",
        "multi_modal_projector.linear_1.weight",
        "language_model.model.layers.0.self_attn.q_proj.weight",
        "language_model.lm_head.weight"};
    const char *const hf5[N_NAMES] = {
        "model.vision_tower.vision_model.embeddings.class_embedding",
        "model.vision_tower.vision_model.encoder.layers.0.layer_norm1.weight",
        "model.multi_modal_projector.linear_1.weight",
        "model.language_model.layers.0.self_attn.q_proj.weight", "lm_head.weight"};
    const char *const flat_vision[N_NAMES] = {
        "vision_tower.embeddings.class_embedding",
        "vision_tower.encoder.layers.0.layer_norm1.weight",
        "multi_modal_projector.linear_1.weight",
        "language_model.model.layers.0.self_attn.q_proj.weight",
        "language_model.lm_head.weight"};
    const char *const hf5_flat[N_NAMES] = {
        "model.vision_tower.embeddings.class_embedding",
        "model.vision_tower.encoder.layers.0.layer_norm1.weight",
        "model.multi_modal_projector.linear_1.weight",
        "model.language_model.layers.0.self_attn.q_proj.weight", "lm_head.weight"};
    check_layout(dir, hf4);
    check_layout(dir, hf5);
    check_layout(dir, flat_vision);
    check_layout(dir, hf5_flat);
}

static void test_missing(const char *dir)
{
    const char *const names[] = {"vision_tower.embeddings.class_embedding", "other.weight"};
    st_set *set = write_layout(dir, "missing.safetensors", names, 2);
    if (!set) return;
    CHECK(wt_find(set, "language_model.lm_head.weight") == NULL);
    err_clear();
    CHECK(wt_require(set, "language_model.lm_head.weight", "models/x") == NULL);
    CHECK_MSG(strstr(err_msg(), "models/x") && strstr(err_msg(), "'language_model.lm_head.weight'"),
              "got \"%s\"", err_msg());
    /* names outside LLaVA's components are looked up as they are */
    CHECK(wt_find(set, "other.weight") != NULL);
    CHECK(wt_find(set, "vision_tower.vision_model.embeddings.class_embedding") != NULL);
    st_close(set);
}

/* The golden checkpoint: every tensor classifies into a component, and its
 * canonical name finds it again. */
static void test_golden(void)
{
    char *dir = golden_path("tiny-llava");
    st_set *set = NULL;
    CHECK_OK(st_open_dir(dir, &set));
    if (set) {
        size_t per[WT_OTHER + 1] = {0};
        for (size_t i = 0; i < st_count(set); i++) {
            const st_tensor *t = st_at(set, i);
            char canon[512];
            wt_component c = wt_component_of(t->name);
            per[c]++;
            CHECK_MSG(wt_canonical(t->name, canon, sizeof canon) != NULL, "%s", t->name);
            CHECK_MSG(wt_find(set, canon) == t, "%s: canonical %s does not find it", t->name,
                      canon);
        }
        CHECK_EQ(per[WT_OTHER], 0);
        CHECK(per[WT_VISION] > 0 && per[WT_PROJECTOR] > 0 && per[WT_LANGUAGE] > 0);
        CHECK(per[WT_LM_HEAD] <= 1); /* none when tied to the embeddings */
        CHECK(wt_require(set, "vision_tower.vision_model.post_layernorm.weight", dir) != NULL);
    }
    st_close(set);
    free(dir);
}

int main(void)
{
    char *dir = test_tmpdir("wt");
    test_canonical();
    test_layouts(dir);
    test_missing(dir);
    test_golden();
    rmdir(dir);
    free(dir);
    return check_finish();
}
