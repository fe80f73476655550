/* config.c — formats layer: resolve a llava-hf config.json to every field
 * the model needs, with Hugging Face's defaults for whatever is absent.
 *
 * The defaults mirror transformers' LlavaConfig, CLIPVisionConfig,
 * LlamaConfig and MistralConfig constructors. Parsing fills the structs;
 * validation then checks sizes and the relations between them, so that the
 * model code can trust every field.
 */
#include "config.h"
#include "err.h"
#include "fs.h"
#include "js.h"
#include "log.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a field lives, for messages: "config.json: text_config". */
typedef struct {
    const char *file;
    const char *section;        /* "text_config", "vision_config" or "" */
    char where[512];            /* file + section, as js_get_* want it */
} cfg_ctx;

static void ctx_init(cfg_ctx *c, const char *file, const char *section)
{
    c->file = file;
    c->section = section;
    if (section[0])
        snprintf(c->where, sizeof c->where, "%s: %s", file, section);
    else
        snprintf(c->where, sizeof c->where, "%s", file);
}

/* "FILE: section.key: message" */
__attribute__((format(printf, 3, 4)))
static int field_error(const cfg_ctx *c, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ERR("%s: %s%s%s: %s", c->file, c->section, c->section[0] ? "." : "",
               key, msg);
}

/* Present and not null (null counts as absent, as in js_get_*). */
static bool present(const json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return v && !json_is_null(v);
}

/* ---- typed getters (absent or null: keep *out, the default) ---------- */

static int get_int(const cfg_ctx *c, const json_t *obj, const char *key, int *out)
{
    long long v;
    if (js_get_int(obj, key, *out, &v, c->where) != 0) return -1;
    if (v < INT_MIN || v > INT_MAX)
        return field_error(c, key, "%lld is out of range", v);
    *out = (int)v;
    return 0;
}

static int get_double(const cfg_ctx *c, const json_t *obj, const char *key,
                      double *out)
{
    return js_get_double(obj, key, *out, out, c->where);
}

static int get_bool(const cfg_ctx *c, const json_t *obj, const char *key, bool *out)
{
    return js_get_bool(obj, key, *out, out, c->where);
}

/* A string field copied into a fixed buffer that already holds the default. */
static int get_str(const cfg_ctx *c, const json_t *obj, const char *key,
                   char *buf, size_t size)
{
    const char *s;
    if (js_get_str(obj, key, NULL, &s, c->where) != 0) return -1;
    if (!s) return 0;
    if (strlen(s) >= size)
        return field_error(c, key, "'%.40s...' is too long", s);
    snprintf(buf, size, "%s", s);
    return 0;
}

/* A token id: absent keeps the default, null means none (-1), a list (as
 * some configs give several EOS ids) means its first element. */
static int get_token_id(const cfg_ctx *c, const json_t *obj, const char *key,
                        int *out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v) return 0;
    if (json_is_null(v)) {
        *out = -1;
        return 0;
    }
    if (json_is_array(v)) {
        if (json_array_size(v) == 0) return field_error(c, key, "empty list");
        v = json_array_get(v, 0);
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > INT_MAX)
        return field_error(c, key, "expected a token id (a non-negative integer)");
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_int_fields(const cfg_ctx *c, const json_t *obj,
                          const char *const *keys, int *const *outs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (get_int(c, obj, keys[i], outs[i]) != 0) return -1;
    return 0;
}

/* ---- text model ------------------------------------------------------- */

static void llama_defaults(cfg_text *t)
{
    *t = (cfg_text){
        .model_type = "llama",     .vocab_size = 32000,
        .hidden_size = 4096,       .intermediate_size = 11008,
        .num_hidden_layers = 32,   .num_attention_heads = 32,
        .num_key_value_heads = 0,  .head_dim = 0, /* derived below */
        .max_position_embeddings = 2048,
        .rms_norm_eps = 1e-6,      .rope_theta = 10000.0,
        .hidden_act = "silu",      .bos_token_id = 1,
        .eos_token_id = 2,         .pad_token_id = -1,
    };
}

static void mistral_defaults(cfg_text *t)
{
    llama_defaults(t);
    snprintf(t->model_type, sizeof t->model_type, "mistral");
    t->intermediate_size = 14336;
    t->num_key_value_heads = 8;
    t->max_position_embeddings = 4096 * 32;
    t->sliding_window = 4096;
}

static int text_defaults_for(const cfg_ctx *c, const json_t *tc, cfg_text *t)
{
    char type[32] = "llama";
    if (get_str(c, tc, "model_type", type, sizeof type) != 0) return -1;
    if (strcmp(type, "llama") == 0)
        llama_defaults(t);
    else if (strcmp(type, "mistral") == 0)
        mistral_defaults(t);
    else
        return field_error(c, "model_type", "'%s' is not supported (llama or mistral)",
                           type);
    return 0;
}

/* A rope spec (rope_parameters or the older rope_scaling) must be plain RoPE. */
static int check_rope_type(const cfg_ctx *c, const json_t *spec, const char *key)
{
    const char *type = NULL;
    char where[600];
    snprintf(where, sizeof where, "%s.%s", c->where, key);
    if (js_get_str(spec, "rope_type", NULL, &type, where) != 0) return -1;
    if (!type && js_get_str(spec, "type", NULL, &type, where) != 0) return -1;
    if (type && strcmp(type, "default") != 0)
        return field_error(c, key, "unsupported rope type '%s' (only default RoPE)",
                           type);
    return 0;
}

/* rope_theta, or rope_parameters.rope_theta as transformers 5 writes it. */
static int load_rope(const cfg_ctx *c, const json_t *tc, cfg_text *t)
{
    const json_t *params = NULL, *scaling = NULL;
    if (js_get_obj(tc, "rope_parameters", &params, c->where) != 0 ||
        js_get_obj(tc, "rope_scaling", &scaling, c->where) != 0)
        return -1;
    if (params && check_rope_type(c, params, "rope_parameters") != 0) return -1;
    if (scaling && check_rope_type(c, scaling, "rope_scaling") != 0) return -1;
    double flat = t->rope_theta, nested = t->rope_theta;
    if (get_double(c, tc, "rope_theta", &flat) != 0) return -1;
    if (params) {
        char where[600];
        snprintf(where, sizeof where, "%s.rope_parameters", c->where);
        if (js_get_double(params, "rope_theta", nested, &nested, where) != 0)
            return -1;
    }
    bool has_flat = present(tc, "rope_theta");
    bool has_nested = params && present(params, "rope_theta");
    if (has_flat && has_nested && nested != flat)
        return field_error(c, "rope_parameters.rope_theta",
                           "%g disagrees with rope_theta %g", nested, flat);
    t->rope_theta = has_nested ? nested : flat;
    return 0;
}

/* kv heads: absent takes the model's default (llama: = heads, mistral: 8),
 * an explicit null means one kv head per attention head. */
static int load_kv_heads(const cfg_ctx *c, const json_t *tc, cfg_text *t)
{
    json_t *v = tc ? json_object_get(tc, "num_key_value_heads") : NULL;
    if (t->num_key_value_heads == 0 || (v && json_is_null(v)))
        t->num_key_value_heads = t->num_attention_heads;
    return get_int(c, tc, "num_key_value_heads", &t->num_key_value_heads);
}

static int load_sliding_window(const cfg_ctx *c, const json_t *tc, cfg_text *t)
{
    json_t *v = tc ? json_object_get(tc, "sliding_window") : NULL;
    if (v && json_is_null(v)) {
        t->sliding_window = 0;
        return 0;
    }
    return get_int(c, tc, "sliding_window", &t->sliding_window);
}

static int load_text(const char *file, const json_t *tc, const json_t *top,
                     cfg_text *t, bool *head_dim_given)
{
    cfg_ctx c;
    ctx_init(&c, file, "text_config");
    if (text_defaults_for(&c, tc, t) != 0) return -1;
    static const char *const keys[] = {
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "max_position_embeddings"};
    int *const outs[] = {&t->vocab_size, &t->hidden_size, &t->intermediate_size,
                         &t->num_hidden_layers, &t->num_attention_heads,
                         &t->max_position_embeddings};
    if (get_int_fields(&c, tc, keys, outs, sizeof keys / sizeof *keys) != 0 ||
        load_kv_heads(&c, tc, t) != 0 || load_sliding_window(&c, tc, t) != 0 ||
        get_double(&c, tc, "rms_norm_eps", &t->rms_norm_eps) != 0 ||
        load_rope(&c, tc, t) != 0 ||
        get_str(&c, tc, "hidden_act", t->hidden_act, sizeof t->hidden_act) != 0 ||
        get_bool(&c, tc, "attention_bias", &t->attention_bias) != 0 ||
        get_bool(&c, tc, "mlp_bias", &t->mlp_bias) != 0 ||
        get_token_id(&c, tc, "bos_token_id", &t->bos_token_id) != 0 ||
        get_token_id(&c, tc, "eos_token_id", &t->eos_token_id) != 0 ||
        get_token_id(&c, tc, "pad_token_id", &t->pad_token_id) != 0)
        return -1;
    /* tie_word_embeddings: text_config, else the top level, else false */
    cfg_ctx top_ctx;
    ctx_init(&top_ctx, file, "");
    if (get_bool(&top_ctx, top, "tie_word_embeddings", &t->tie_word_embeddings) != 0 ||
        get_bool(&c, tc, "tie_word_embeddings", &t->tie_word_embeddings) != 0)
        return -1;
    *head_dim_given = present(tc, "head_dim");
    if (*head_dim_given) return get_int(&c, tc, "head_dim", &t->head_dim);
    t->head_dim = t->num_attention_heads > 0 ? t->hidden_size / t->num_attention_heads : 0;
    return 0;
}

static int check_positive(const cfg_ctx *c, const char *const *keys,
                          const int *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (values[i] <= 0)
            return field_error(c, keys[i], "%d must be positive", values[i]);
    return 0;
}

static int validate_text(const char *file, const cfg_text *t, bool head_dim_given)
{
    cfg_ctx c;
    ctx_init(&c, file, "text_config");
    static const char *const keys[] = {
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim",
        "max_position_embeddings"};
    const int values[] = {t->vocab_size, t->hidden_size, t->intermediate_size,
                          t->num_hidden_layers, t->num_attention_heads,
                          t->num_key_value_heads, t->head_dim,
                          t->max_position_embeddings};
    if (!head_dim_given && t->num_attention_heads > 0 &&
        t->hidden_size % t->num_attention_heads != 0)
        return field_error(&c, "hidden_size", "%d is not divisible by "
                           "num_attention_heads %d (and head_dim is not given)",
                           t->hidden_size, t->num_attention_heads);
    if (check_positive(&c, keys, values, sizeof keys / sizeof *keys) != 0) return -1;
    if (t->num_attention_heads % t->num_key_value_heads != 0)
        return field_error(&c, "num_key_value_heads",
                           "%d does not divide num_attention_heads %d",
                           t->num_key_value_heads, t->num_attention_heads);
    if (!(t->rms_norm_eps > 0))
        return field_error(&c, "rms_norm_eps", "%g must be positive", t->rms_norm_eps);
    if (!(t->rope_theta > 0))
        return field_error(&c, "rope_theta", "%g must be positive", t->rope_theta);
    if (t->sliding_window < 0)
        return field_error(&c, "sliding_window", "%d is negative", t->sliding_window);
    return 0;
}

/* ---- vision tower ----------------------------------------------------- */

static void clip_defaults(cfg_vision *v)
{
    *v = (cfg_vision){
        .hidden_size = 768,        .intermediate_size = 3072,
        .num_hidden_layers = 12,   .num_attention_heads = 12,
        .num_channels = 3,         .image_size = 224,
        .patch_size = 32,          .projection_dim = 512,
        .layer_norm_eps = 1e-5,    .hidden_act = "quick_gelu",
    };
}

/* LlavaConfig without a vision_config builds CLIP ViT-L/14 at 336 px. */
static void llava_clip_defaults(cfg_vision *v)
{
    clip_defaults(v);
    v->hidden_size = 1024;
    v->intermediate_size = 4096;
    v->num_hidden_layers = 24;
    v->num_attention_heads = 16;
    v->image_size = 336;
    v->patch_size = 14;
    v->projection_dim = 768;
}

static int load_vision(const char *file, const json_t *vc, cfg_vision *v)
{
    cfg_ctx c;
    ctx_init(&c, file, "vision_config");
    if (!vc) {
        llava_clip_defaults(v);
    } else {
        char type[32] = "clip_vision_model";
        if (get_str(&c, vc, "model_type", type, sizeof type) != 0) return -1;
        if (strcmp(type, "clip_vision_model") != 0)
            return field_error(&c, "model_type",
                               "'%s' is not supported (clip_vision_model)", type);
        clip_defaults(v);
    }
    static const char *const keys[] = {
        "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_channels", "image_size", "patch_size",
        "projection_dim"};
    int *const outs[] = {&v->hidden_size, &v->intermediate_size,
                         &v->num_hidden_layers, &v->num_attention_heads,
                         &v->num_channels, &v->image_size, &v->patch_size,
                         &v->projection_dim};
    if (get_int_fields(&c, vc, keys, outs, sizeof keys / sizeof *keys) != 0 ||
        get_double(&c, vc, "layer_norm_eps", &v->layer_norm_eps) != 0 ||
        get_str(&c, vc, "hidden_act", v->hidden_act, sizeof v->hidden_act) != 0)
        return -1;
    v->head_dim = v->num_attention_heads > 0 ? v->hidden_size / v->num_attention_heads : 0;
    return 0;
}

static int validate_vision(const char *file, const cfg_vision *v)
{
    cfg_ctx c;
    ctx_init(&c, file, "vision_config");
    static const char *const keys[] = {
        "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_channels", "image_size", "patch_size",
        "projection_dim"};
    const int values[] = {v->hidden_size, v->intermediate_size,
                          v->num_hidden_layers, v->num_attention_heads,
                          v->num_channels, v->image_size, v->patch_size,
                          v->projection_dim};
    if (check_positive(&c, keys, values, sizeof keys / sizeof *keys) != 0) return -1;
    if (v->hidden_size % v->num_attention_heads != 0)
        return field_error(&c, "hidden_size", "%d is not divisible by "
                           "num_attention_heads %d", v->hidden_size,
                           v->num_attention_heads);
    if (v->image_size % v->patch_size != 0)
        return field_error(&c, "image_size", "%d is not divisible by patch_size %d",
                           v->image_size, v->patch_size);
    if (!(v->layer_norm_eps > 0))
        return field_error(&c, "layer_norm_eps", "%g must be positive",
                           v->layer_norm_eps);
    return 0;
}

/* ---- llava level ---------------------------------------------------- */

static int load_model_type(const cfg_ctx *c, const json_t *root)
{
    char type[32] = "llava";
    if (get_str(c, root, "model_type", type, sizeof type) != 0) return -1;
    if (strcmp(type, "llava") != 0)
        return field_error(c, "model_type", "'%s' is not supported (llava)", type);
    return 0;
}

/* image_token_index, or image_token_id as newer configs spell it. */
static int load_image_token(const cfg_ctx *c, const json_t *root, int *out)
{
    int index = 32000, id = 32000;
    if (get_int(c, root, "image_token_index", &index) != 0 ||
        get_int(c, root, "image_token_id", &id) != 0)
        return -1;
    bool has_index = present(root, "image_token_index");
    bool has_id = present(root, "image_token_id");
    if (has_index && has_id && id != index)
        return field_error(c, "image_token_id", "%d disagrees with "
                           "image_token_index %d", id, index);
    *out = has_id ? id : index;
    if (*out < 0)
        return field_error(c, has_id ? "image_token_id" : "image_token_index",
                           "%d is negative", *out);
    return 0;
}

static int load_feature_layer(const cfg_ctx *c, const json_t *root, int *out)
{
    json_t *v = json_object_get(root, "vision_feature_layer");
    if (json_is_array(v))
        return field_error(c, "vision_feature_layer",
                           "a list of layers is not supported (give one integer)");
    *out = -2;
    return get_int(c, root, "vision_feature_layer", out);
}

static int load_select_strategy(const cfg_ctx *c, const json_t *root, char *buf,
                                size_t size)
{
    snprintf(buf, size, "default");
    if (get_str(c, root, "vision_feature_select_strategy", buf, size) != 0) return -1;
    if (strcmp(buf, "default") != 0 && strcmp(buf, "full") != 0)
        return field_error(c, "vision_feature_select_strategy",
                           "'%s' is not supported (default or full)", buf);
    return 0;
}

/* hidden_states has num_hidden_layers + 1 entries (embeddings first), indexed
 * from either end as Python does. */
static int check_feature_layer(const cfg_ctx *c, const cfg_model *m)
{
    int n = m->vision.num_hidden_layers + 1;
    int l = m->vision_feature_layer;
    if (l < -n || l >= n)
        return field_error(c, "vision_feature_layer", "%d is outside the %d hidden "
                           "states of a %d-layer vision tower", l, n,
                           m->vision.num_hidden_layers);
    return 0;
}

static void compute_image_seq_length(cfg_model *m, const cfg_ctx *c,
                                     const json_t *root)
{
    int side = m->vision.image_size / m->vision.patch_size;
    m->image_seq_length = side * side +
                          (strcmp(m->vision_feature_select_strategy, "full") == 0);
    json_t *given = json_object_get(root, "image_seq_length");
    if (json_is_integer(given) && json_integer_value(given) != m->image_seq_length)
        log_warn("%s: image_seq_length %lld differs from the %d image tokens "
                 "the vision config gives; using %d", c->file,
                 (long long)json_integer_value(given), m->image_seq_length,
                 m->image_seq_length);
}

static int load_llava(const cfg_ctx *c, const json_t *root, cfg_model *m)
{
    m->pad_token_id = -1;
    m->multimodal_projector_bias = true;
    snprintf(m->projector_hidden_act, sizeof m->projector_hidden_act, "gelu");
    if (load_model_type(c, root) != 0 ||
        load_image_token(c, root, &m->image_token_index) != 0 ||
        load_feature_layer(c, root, &m->vision_feature_layer) != 0 ||
        load_select_strategy(c, root, m->vision_feature_select_strategy,
                             sizeof m->vision_feature_select_strategy) != 0 ||
        get_str(c, root, "projector_hidden_act", m->projector_hidden_act,
                sizeof m->projector_hidden_act) != 0 ||
        get_bool(c, root, "multimodal_projector_bias",
                 &m->multimodal_projector_bias) != 0 ||
        get_token_id(c, root, "pad_token_id", &m->pad_token_id) != 0)
        return -1;
    return 0;
}

int cfg_from_json(const json_t *root, const char *name, cfg_model *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(root)) return ERR("%s: not a JSON object", name);
    cfg_ctx top;
    ctx_init(&top, name, "");
    const json_t *vc = NULL, *tc = NULL;
    bool head_dim_given = false;
    if (js_get_obj(root, "vision_config", &vc, name) != 0 ||
        js_get_obj(root, "text_config", &tc, name) != 0 ||
        load_llava(&top, root, out) != 0 ||
        load_vision(name, vc, &out->vision) != 0 ||
        load_text(name, tc, root, &out->text, &head_dim_given) != 0 ||
        validate_vision(name, &out->vision) != 0 ||
        validate_text(name, &out->text, head_dim_given) != 0 ||
        check_feature_layer(&top, out) != 0)
        return -1;
    compute_image_seq_length(out, &top, root);
    return 0;
}

int cfg_load(const char *path, cfg_model *out)
{
    char *file = fs_is_dir(path) ? fs_join(path, "config.json") : xstrdup(path);
    json_t *root = js_load_file(file);
    int rc = root ? cfg_from_json(root, file, out) : -1;
    json_decref(root);
    free(file);
    return rc;
}

/* ---- output ----------------------------------------------------------- */

static json_t *vision_to_json(const cfg_vision *v)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:s}",
                     "hidden_size", v->hidden_size,
                     "intermediate_size", v->intermediate_size,
                     "num_hidden_layers", v->num_hidden_layers,
                     "num_attention_heads", v->num_attention_heads,
                     "head_dim", v->head_dim,
                     "num_channels", v->num_channels,
                     "image_size", v->image_size,
                     "patch_size", v->patch_size,
                     "projection_dim", v->projection_dim,
                     "layer_norm_eps", v->layer_norm_eps,
                     "hidden_act", v->hidden_act);
}

static json_t *text_to_json(const cfg_text *t)
{
    json_t *o = json_pack(
        "{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:s}",
        "model_type", t->model_type,
        "vocab_size", t->vocab_size,
        "hidden_size", t->hidden_size,
        "intermediate_size", t->intermediate_size,
        "num_hidden_layers", t->num_hidden_layers,
        "num_attention_heads", t->num_attention_heads,
        "num_key_value_heads", t->num_key_value_heads,
        "head_dim", t->head_dim,
        "max_position_embeddings", t->max_position_embeddings,
        "rms_norm_eps", t->rms_norm_eps,
        "rope_theta", t->rope_theta,
        "hidden_act", t->hidden_act);
    json_object_set_new(o, "attention_bias", json_boolean(t->attention_bias));
    json_object_set_new(o, "mlp_bias", json_boolean(t->mlp_bias));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(t->tie_word_embeddings));
    json_object_set_new(o, "bos_token_id", json_integer(t->bos_token_id));
    json_object_set_new(o, "eos_token_id", json_integer(t->eos_token_id));
    json_object_set_new(o, "pad_token_id", json_integer(t->pad_token_id));
    json_object_set_new(o, "sliding_window", json_integer(t->sliding_window));
    return o;
}

json_t *cfg_to_json(const cfg_model *cfg)
{
    return json_pack("{s:o, s:o, s:i, s:i, s:s, s:s, s:b, s:i, s:i}",
                     "vision", vision_to_json(&cfg->vision),
                     "text", text_to_json(&cfg->text),
                     "image_token_index", cfg->image_token_index,
                     "vision_feature_layer", cfg->vision_feature_layer,
                     "vision_feature_select_strategy",
                     cfg->vision_feature_select_strategy,
                     "projector_hidden_act", cfg->projector_hidden_act,
                     "multimodal_projector_bias", (int)cfg->multimodal_projector_bias,
                     "image_seq_length", cfg->image_seq_length,
                     "pad_token_id", cfg->pad_token_id);
}
