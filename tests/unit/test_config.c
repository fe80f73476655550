/* test_config.c — config.json resolution: Hugging Face defaults, the real
 * llava-1.5-7b-hf config, the golden tiny config, both rope spellings, the
 * image token alias, and one clear error for each invalid field. */
#include "check.h"
#include "config.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "js.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *g_dir;
static int g_case;

/* Write text to a fresh config file in the tmpdir; returns its path. */
static char *write_config(const char *text)
{
    char name[64];
    snprintf(name, sizeof name, "config-%03d.json", g_case++);
    char *path = fs_join(g_dir, name);
    if (fs_write_atomic(path, text, strlen(text)) != 0) err_exit();
    return path;
}

/* Load a config from text; 0 on success. */
static int load_text(const char *text, cfg_model *m)
{
    char *path = write_config(text);
    int rc = cfg_load(path, m);
    free(path);
    return rc;
}

/* The text must fail to load, with one line naming the file and containing
 * needle. */
static void expect_error(const char *text, const char *needle, int line)
{
    char *path = write_config(text);
    cfg_model m;
    err_clear();
    int rc = cfg_load(path, &m);
    const char *msg = err_msg();
    check_report(rc != 0 && strstr(msg, needle) && strstr(msg, path) && !strchr(msg, '\n'),
                 __FILE__, line, "%s: expected an error with \"%s\", got rc=%d \"%s\"",
                 text, needle, rc, msg);
    free(path);
}
#define EXPECT_ERROR(text, needle) expect_error((text), (needle), __LINE__)

static void check_llama_defaults(const cfg_text *t)
{
    CHECK(strcmp(t->model_type, "llama") == 0);
    CHECK_EQ(t->vocab_size, 32000);
    CHECK_EQ(t->hidden_size, 4096);
    CHECK_EQ(t->intermediate_size, 11008);
    CHECK_EQ(t->num_hidden_layers, 32);
    CHECK_EQ(t->num_attention_heads, 32);
    CHECK_EQ(t->num_key_value_heads, 32);
    CHECK_EQ(t->head_dim, 128);
    CHECK_EQ(t->max_position_embeddings, 2048);
    CHECK_NEAR(t->rms_norm_eps, 1e-6, 0);
    CHECK_NEAR(t->rope_theta, 10000.0, 0);
    CHECK(strcmp(t->hidden_act, "silu") == 0);
    CHECK(!t->attention_bias && !t->mlp_bias && !t->tie_word_embeddings);
    CHECK_EQ(t->bos_token_id, 1);
    CHECK_EQ(t->eos_token_id, 2);
    CHECK_EQ(t->pad_token_id, -1);
    CHECK_EQ(t->sliding_window, 0);
}

static void check_clip_common(const cfg_vision *v)
{
    CHECK_EQ(v->num_channels, 3);
    CHECK_NEAR(v->layer_norm_eps, 1e-5, 0);
    CHECK(strcmp(v->hidden_act, "quick_gelu") == 0);
    CHECK_EQ(v->head_dim, v->hidden_size / v->num_attention_heads);
}

static void check_llava_defaults(const cfg_model *m)
{
    CHECK_EQ(m->image_token_index, 32000);
    CHECK_EQ(m->vision_feature_layer, -2);
    CHECK(strcmp(m->vision_feature_select_strategy, "default") == 0);
    CHECK(strcmp(m->projector_hidden_act, "gelu") == 0);
    CHECK(m->multimodal_projector_bias);
    CHECK_EQ(m->pad_token_id, -1);
}

static void test_defaults(void)
{
    cfg_model m;
    /* no vision_config at all: LlavaConfig's CLIP ViT-L/14-336 */
    CHECK_OK(load_text("{}", &m));
    check_llama_defaults(&m.text);
    check_llava_defaults(&m);
    CHECK_EQ(m.vision.hidden_size, 1024);
    CHECK_EQ(m.vision.intermediate_size, 4096);
    CHECK_EQ(m.vision.num_hidden_layers, 24);
    CHECK_EQ(m.vision.num_attention_heads, 16);
    CHECK_EQ(m.vision.image_size, 336);
    CHECK_EQ(m.vision.patch_size, 14);
    CHECK_EQ(m.vision.projection_dim, 768);
    check_clip_common(&m.vision);
    CHECK_EQ(m.image_seq_length, 576);

    /* empty sub-configs: CLIPVisionConfig's and LlamaConfig's own defaults */
    CHECK_OK(load_text("{\"vision_config\": {}, \"text_config\": {}, \"model_type\": \"llava\"}", &m));
    check_llama_defaults(&m.text);
    CHECK_EQ(m.vision.hidden_size, 768);
    CHECK_EQ(m.vision.intermediate_size, 3072);
    CHECK_EQ(m.vision.num_hidden_layers, 12);
    CHECK_EQ(m.vision.num_attention_heads, 12);
    CHECK_EQ(m.vision.image_size, 224);
    CHECK_EQ(m.vision.patch_size, 32);
    CHECK_EQ(m.vision.projection_dim, 512);
    check_clip_common(&m.vision);
    CHECK_EQ(m.image_seq_length, 49);

    /* null sub-configs are absent ones */
    CHECK_OK(load_text("{\"vision_config\": null, \"text_config\": null}", &m));
    CHECK_EQ(m.vision.image_size, 336);
    CHECK_EQ(m.text.hidden_size, 4096);
}

static void test_mistral(void)
{
    cfg_model m;
    CHECK_OK(load_text("{\"text_config\": {\"model_type\": \"mistral\"}}", &m));
    CHECK(strcmp(m.text.model_type, "mistral") == 0);
    CHECK_EQ(m.text.intermediate_size, 14336);
    CHECK_EQ(m.text.num_key_value_heads, 8);
    CHECK_EQ(m.text.max_position_embeddings, 131072);
    CHECK_NEAR(m.text.rms_norm_eps, 1e-6, 0);
    CHECK_EQ(m.text.sliding_window, 4096);
    CHECK_EQ(m.text.head_dim, 128);
    CHECK_OK(load_text("{\"text_config\": {\"model_type\": \"mistral\", "
                       "\"num_key_value_heads\": null, \"sliding_window\": null}}", &m));
    CHECK_EQ(m.text.num_key_value_heads, 32);
    CHECK_EQ(m.text.sliding_window, 0);
}

static void test_llava_7b(void)
{
    cfg_model m;
    char *dir = fs_join(SIMA_SOURCE_DIR, "tests/data/llava-1.5-7b-hf");
    CHECK_OK(cfg_load(dir, &m));
    CHECK_EQ(m.text.hidden_size, 4096);
    CHECK_EQ(m.text.num_hidden_layers, 32);
    CHECK_EQ(m.text.num_attention_heads, 32);
    CHECK_EQ(m.text.num_key_value_heads, 32);
    CHECK_EQ(m.text.head_dim, 128);
    CHECK_EQ(m.text.intermediate_size, 11008);
    CHECK_EQ(m.text.vocab_size, 32064);
    CHECK_EQ(m.text.max_position_embeddings, 4096);
    CHECK_NEAR(m.text.rms_norm_eps, 1e-5, 0);
    CHECK_NEAR(m.text.rope_theta, 10000.0, 0);
    CHECK_EQ(m.vision.num_hidden_layers, 24);
    CHECK_EQ(m.vision.hidden_size, 1024);
    CHECK_EQ(m.vision.num_attention_heads, 16);
    CHECK_EQ(m.vision.intermediate_size, 4096);
    CHECK_EQ(m.image_seq_length, 576);
    CHECK_EQ(m.image_token_index, 32000);
    CHECK_EQ(m.pad_token_id, 32001);
    CHECK_EQ(m.vision_feature_layer, -2);
    /* the file itself or its folder */
    char *file = fs_join(dir, "config.json");
    cfg_model m2;
    CHECK_OK(cfg_load(file, &m2));
    json_t *a = cfg_to_json(&m), *b = cfg_to_json(&m2);
    CHECK(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    free(file);
    free(dir);
}

/* Every number the golden config.json states is what cfg_load gives. */
static void check_int_field(const json_t *obj, const char *key, int got, const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) return; /* absent: a default, checked elsewhere */
    CHECK_MSG(json_integer_value(v) == got, "%s.%s: file says %lld, loaded %d", where,
              key, (long long)json_integer_value(v), got);
}

static void check_real_field(const json_t *obj, const char *key, double got, const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v)) return;
    CHECK_MSG(json_number_value(v) == got, "%s.%s: file says %g, loaded %g", where, key,
              json_number_value(v), got);
}

static void check_str_field(const json_t *obj, const char *key, const char *got,
                            const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) return;
    CHECK_MSG(strcmp(json_string_value(v), got) == 0, "%s.%s: file says %s, loaded %s",
              where, key, json_string_value(v), got);
}

static void test_golden_tiny(void)
{
    char *dir = golden_path("tiny-llava");
    char *file = fs_join(dir, "config.json");
    cfg_model m;
    CHECK_OK(cfg_load(dir, &m));
    json_t *root = js_load_file(file);
    CHECK(root != NULL);
    json_t *vc = json_object_get(root, "vision_config");
    json_t *tc = json_object_get(root, "text_config");
    const cfg_vision *v = &m.vision;
    const cfg_text *t = &m.text;
    check_int_field(vc, "hidden_size", v->hidden_size, "vision");
    check_int_field(vc, "intermediate_size", v->intermediate_size, "vision");
    check_int_field(vc, "num_hidden_layers", v->num_hidden_layers, "vision");
    check_int_field(vc, "num_attention_heads", v->num_attention_heads, "vision");
    check_int_field(vc, "num_channels", v->num_channels, "vision");
    check_int_field(vc, "image_size", v->image_size, "vision");
    check_int_field(vc, "patch_size", v->patch_size, "vision");
    check_int_field(vc, "projection_dim", v->projection_dim, "vision");
    check_real_field(vc, "layer_norm_eps", v->layer_norm_eps, "vision");
    check_str_field(vc, "hidden_act", v->hidden_act, "vision");
    check_int_field(tc, "vocab_size", t->vocab_size, "text");
    check_int_field(tc, "hidden_size", t->hidden_size, "text");
    check_int_field(tc, "intermediate_size", t->intermediate_size, "text");
    check_int_field(tc, "num_hidden_layers", t->num_hidden_layers, "text");
    check_int_field(tc, "num_attention_heads", t->num_attention_heads, "text");
    check_int_field(tc, "num_key_value_heads", t->num_key_value_heads, "text");
    check_int_field(tc, "head_dim", t->head_dim, "text");
    check_int_field(tc, "max_position_embeddings", t->max_position_embeddings, "text");
    check_int_field(tc, "bos_token_id", t->bos_token_id, "text");
    check_int_field(tc, "eos_token_id", t->eos_token_id, "text");
    check_int_field(tc, "pad_token_id", t->pad_token_id, "text");
    check_real_field(tc, "rms_norm_eps", t->rms_norm_eps, "text");
    check_real_field(tc, "rope_theta", t->rope_theta, "text");
    check_real_field(json_object_get(tc, "rope_parameters"), "rope_theta", t->rope_theta,
                     "text.rope_parameters");
    check_str_field(tc, "hidden_act", t->hidden_act, "text");
    check_str_field(tc, "model_type", t->model_type, "text");
    check_int_field(root, "image_token_index", m.image_token_index, "");
    check_int_field(root, "vision_feature_layer", m.vision_feature_layer, "");
    check_int_field(root, "image_seq_length", m.image_seq_length, "");
    check_int_field(root, "pad_token_id", m.pad_token_id, "");
    check_str_field(root, "vision_feature_select_strategy", m.vision_feature_select_strategy, "");
    check_str_field(root, "projector_hidden_act", m.projector_hidden_act, "");
    int side = v->image_size / v->patch_size;
    CHECK_EQ(m.image_seq_length, side * side);
    CHECK_EQ(t->num_attention_heads % t->num_key_value_heads, 0);
    json_decref(root);
    free(file);
    free(dir);
}

static void test_rope_spellings(void)
{
    cfg_model m;
    CHECK_OK(load_text("{\"text_config\": {\"rope_theta\": 500000.0}}", &m));
    CHECK_NEAR(m.text.rope_theta, 500000.0, 0);
    CHECK_OK(load_text("{\"text_config\": {\"rope_parameters\": "
                       "{\"rope_theta\": 1000000.0, \"rope_type\": \"default\"}}}", &m));
    CHECK_NEAR(m.text.rope_theta, 1e6, 0);
    CHECK_OK(load_text("{\"text_config\": {\"rope_theta\": 20000, \"rope_parameters\": "
                       "{\"rope_theta\": 20000, \"rope_type\": \"default\"}}}", &m));
    CHECK_NEAR(m.text.rope_theta, 20000, 0);
    CHECK_OK(load_text("{\"text_config\": {\"rope_scaling\": null}}", &m));
    CHECK_NEAR(m.text.rope_theta, 10000, 0);
    EXPECT_ERROR("{\"text_config\": {\"rope_theta\": 20000, \"rope_parameters\": "
                 "{\"rope_theta\": 30000}}}", "text_config.rope_parameters.rope_theta");
    EXPECT_ERROR("{\"text_config\": {\"rope_parameters\": {\"rope_theta\": 1e4, "
                 "\"rope_type\": \"linear\", \"factor\": 2.0}}}",
                 "text_config.rope_parameters: unsupported rope type 'linear'");
    EXPECT_ERROR("{\"text_config\": {\"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2}}}",
                 "unsupported rope type 'dynamic'");
    EXPECT_ERROR("{\"text_config\": {\"rope_scaling\": {\"rope_type\": \"llama3\"}}}",
                 "unsupported rope type 'llama3'");
    EXPECT_ERROR("{\"text_config\": {\"rope_theta\": -1}}", "text_config.rope_theta");
}

static void test_token_ids(void)
{
    cfg_model m;
    CHECK_OK(load_text("{\"image_token_id\": 7}", &m));
    CHECK_EQ(m.image_token_index, 7);
    CHECK_OK(load_text("{\"image_token_id\": 9, \"image_token_index\": 9}", &m));
    CHECK_EQ(m.image_token_index, 9);
    EXPECT_ERROR("{\"image_token_id\": 9, \"image_token_index\": 8}",
                 "image_token_id: 9 disagrees with image_token_index 8");
    EXPECT_ERROR("{\"image_token_index\": -5}", "image_token_index: -5 is negative");
    CHECK_OK(load_text("{\"text_config\": {\"eos_token_id\": [128001, 128009], "
                       "\"bos_token_id\": null, \"pad_token_id\": 0}, \"pad_token_id\": 5}", &m));
    CHECK_EQ(m.text.eos_token_id, 128001);
    CHECK_EQ(m.text.bos_token_id, -1);
    CHECK_EQ(m.text.pad_token_id, 0);
    CHECK_EQ(m.pad_token_id, 5);
    EXPECT_ERROR("{\"text_config\": {\"eos_token_id\": []}}", "text_config.eos_token_id: empty list");
    EXPECT_ERROR("{\"text_config\": {\"eos_token_id\": \"</s>\"}}", "text_config.eos_token_id");
}

static void test_other_fields(void)
{
    cfg_model m;
    CHECK_OK(load_text("{\"vision_feature_select_strategy\": \"full\", "
                       "\"vision_feature_layer\": -1, \"projector_hidden_act\": \"relu\", "
                       "\"multimodal_projector_bias\": false, \"tie_word_embeddings\": true, "
                       "\"text_config\": {\"attention_bias\": true, \"mlp_bias\": true, "
                       "\"hidden_size\": 100, \"num_attention_heads\": 4, \"head_dim\": 32, "
                       "\"num_key_value_heads\": 2, \"hidden_act\": \"gelu\"}}", &m));
    CHECK_EQ(m.image_seq_length, 577);
    CHECK_EQ(m.vision_feature_layer, -1);
    CHECK(strcmp(m.projector_hidden_act, "relu") == 0);
    CHECK(!m.multimodal_projector_bias);
    CHECK(m.text.tie_word_embeddings); /* from the top level */
    CHECK(m.text.attention_bias && m.text.mlp_bias);
    CHECK_EQ(m.text.head_dim, 32);     /* given: hidden need not divide */
    CHECK_EQ(m.text.num_key_value_heads, 2);
    CHECK(strcmp(m.text.hidden_act, "gelu") == 0);
    CHECK_OK(load_text("{\"tie_word_embeddings\": true, \"text_config\": "
                       "{\"tie_word_embeddings\": false}}", &m));
    CHECK(!m.text.tie_word_embeddings);
    /* integral reals are integers; vision_feature_layer at both ends */
    CHECK_OK(load_text("{\"vision_feature_layer\": -25, \"text_config\": {\"hidden_size\": 4096.0}}", &m));
    CHECK_EQ(m.text.hidden_size, 4096);
    CHECK_OK(load_text("{\"vision_feature_layer\": 24}", &m));
}

static void test_validation_errors(void)
{
    EXPECT_ERROR("{\"text_config\": {\"num_key_value_heads\": 5}}",
                 "text_config.num_key_value_heads: 5 does not divide num_attention_heads 32");
    EXPECT_ERROR("{\"text_config\": {\"hidden_size\": 100}}",
                 "text_config.hidden_size: 100 is not divisible by num_attention_heads 32");
    EXPECT_ERROR("{\"text_config\": {\"num_hidden_layers\": 0}}",
                 "text_config.num_hidden_layers: 0 must be positive");
    EXPECT_ERROR("{\"text_config\": {\"vocab_size\": -3}}", "text_config.vocab_size: -3 must be positive");
    EXPECT_ERROR("{\"text_config\": {\"num_attention_heads\": 0}}", "text_config.num_attention_heads");
    EXPECT_ERROR("{\"text_config\": {\"head_dim\": 0}}", "text_config.head_dim: 0 must be positive");
    EXPECT_ERROR("{\"text_config\": {\"rms_norm_eps\": 0}}", "text_config.rms_norm_eps");
    EXPECT_ERROR("{\"text_config\": {\"hidden_size\": 8589934592}}", "text_config.hidden_size: 8589934592 is out of range");
    EXPECT_ERROR("{\"text_config\": {\"hidden_size\": \"big\"}}", "\"hidden_size\": expected an integer");
    EXPECT_ERROR("{\"text_config\": {\"hidden_size\": 4096.5}}", "text_config");
    EXPECT_ERROR("{\"text_config\": {\"mlp_bias\": 1}}", "\"mlp_bias\": expected true or false");
    EXPECT_ERROR("{\"text_config\": {\"model_type\": \"gemma\"}}",
                 "text_config.model_type: 'gemma' is not supported");
    EXPECT_ERROR("{\"text_config\": []}", "\"text_config\": expected an object");
    EXPECT_ERROR("{\"vision_config\": {\"model_type\": \"siglip_vision_model\"}}",
                 "vision_config.model_type: 'siglip_vision_model' is not supported");
    EXPECT_ERROR("{\"vision_config\": {\"image_size\": 300, \"patch_size\": 14}}",
                 "vision_config.image_size: 300 is not divisible by patch_size 14");
    EXPECT_ERROR("{\"vision_config\": {\"hidden_size\": 100}}",
                 "vision_config.hidden_size: 100 is not divisible by num_attention_heads 12");
    EXPECT_ERROR("{\"vision_config\": {\"patch_size\": 0}}", "vision_config.patch_size: 0 must be positive");
    EXPECT_ERROR("{\"vision_config\": {\"layer_norm_eps\": -1}}", "vision_config.layer_norm_eps");
    EXPECT_ERROR("{\"vision_config\": {\"hidden_act\": \"a-very-long-activation-function-name\"}}",
                 "vision_config.hidden_act");
    EXPECT_ERROR("{\"vision_feature_layer\": 25}",
                 "vision_feature_layer: 25 is outside the 25 hidden states of a 24-layer vision tower");
    EXPECT_ERROR("{\"vision_feature_layer\": -26}", "vision_feature_layer: -26 is outside");
    EXPECT_ERROR("{\"vision_feature_layer\": [-2, -5, -8]}",
                 "vision_feature_layer: a list of layers is not supported");
    EXPECT_ERROR("{\"vision_feature_select_strategy\": \"cls\"}",
                 "vision_feature_select_strategy: 'cls' is not supported");
    EXPECT_ERROR("{\"model_type\": \"llava_next\"}", "model_type: 'llava_next' is not supported");
    EXPECT_ERROR("[1, 2]", "not a JSON object");
    EXPECT_ERROR("{\n  \"text_config\": {\n    \"hidden_size\": 4096,,\n  }\n}\n", "line 3, column");

    cfg_model m;
    CHECK_FAILS_WITH(cfg_load("/nonexistent/sima/config.json", &m), "/nonexistent/sima/config.json");
    CHECK_FAILS_WITH(cfg_load(g_dir, &m), "config.json"); /* a folder without one */
    CHECK_FAILS_WITH(cfg_from_json(NULL, "x.json", &m), "x.json: not a JSON object");
}

static void test_to_json(void)
{
    char *dir = fs_join(SIMA_SOURCE_DIR, "tests/data/llava-1.5-7b-hf");
    cfg_model m;
    CHECK_OK(cfg_load(dir, &m));
    json_t *j = cfg_to_json(&m);
    CHECK(j != NULL);
    json_t *v = json_object_get(j, "vision"), *t = json_object_get(j, "text");
    CHECK(json_is_object(v) && json_is_object(t));
    CHECK_EQ(json_integer_value(json_object_get(v, "num_hidden_layers")), 24);
    CHECK_EQ(json_integer_value(json_object_get(v, "head_dim")), 64);
    CHECK_NEAR(json_real_value(json_object_get(v, "layer_norm_eps")), 1e-5, 0);
    CHECK_EQ(json_integer_value(json_object_get(t, "num_key_value_heads")), 32);
    CHECK_EQ(json_integer_value(json_object_get(t, "vocab_size")), 32064);
    CHECK(json_is_false(json_object_get(t, "tie_word_embeddings")));
    CHECK(strcmp(json_string_value(json_object_get(t, "model_type")), "llama") == 0);
    CHECK_EQ(json_integer_value(json_object_get(j, "image_seq_length")), 576);
    CHECK_EQ(json_integer_value(json_object_get(j, "image_token_index")), 32000);
    CHECK_EQ(json_integer_value(json_object_get(j, "pad_token_id")), 32001);
    CHECK(json_is_true(json_object_get(j, "multimodal_projector_bias")));
    CHECK(strcmp(json_string_value(json_object_get(j, "vision_feature_select_strategy")),
                 "default") == 0);
    /* every text field and every vision field is there */
    CHECK_EQ(json_object_size(t), 19);
    CHECK_EQ(json_object_size(v), 11);
    json_decref(j);
    free(dir);
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *p = fs_join(dir, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    g_dir = test_tmpdir("cfg");
    test_defaults();
    test_mistral();
    test_llava_7b();
    test_golden_tiny();
    test_rope_spellings();
    test_token_ids();
    test_other_fields();
    test_validation_errors();
    test_to_json();
    if (check_failed == 0) remove_tree(g_dir); /* keep it to debug a failure */
    free(g_dir);
    return check_finish();
}
