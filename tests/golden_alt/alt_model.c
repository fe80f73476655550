/* alt_model.c — the alternative tiny-llava model folder, its LoRA adapter
 * and its reduced-precision subsets. */
#include "alt.h"
#include "err.h"
#include "fs.h"
#include "js.h"
#include "llava.h"
#include "lora.h"
#include "safetensors.h"
#include "tiny_llava.h"
#include "tok_test_models.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

alt_shape alt_shape_default(void)
{
    /* bundled: 2000 pieces, CLIP 64/256/4 layers/4 heads at 56 px, LLaMA
     * 128/352/4 layers/8 heads (4 KV), 56 px preprocessing, LoRA r 8 on
     * all seven linears, beta 0.1 */
    alt_shape s = {
        .n_pieces = 1300,
        .v_hidden = 48, .v_ffn = 112, .v_layers = 3, .v_heads = 3,
        .image_size = 42, .patch_size = 14,
        .t_hidden = 96, .t_ffn = 200, .t_layers = 3, .t_heads = 6, .t_kv_heads = 2,
        .t_head_dim = 16, .max_positions = 1536,
        .rope_theta = 500000.0, .rms_eps = 1e-6,
        .shortest_edge = 48,
        .mean = {0.5, 0.45, 0.4}, .std = {0.25, 0.3, 0.28},
        .lora_r = 4, .lora_alpha = 12, .lora_targets = "q,v,o,gate,down",
        .dpo_beta = 0.25,
    };
    s.vocab = s.n_pieces + 2;
    return s;
}

double alt_normal(uint64_t *state)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        u[i] = ((double)(z >> 11) + 0.5) * 0x1.0p-53; /* (0, 1) */
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]); /* 2 pi */
}

static void write_text(const char *path, const char *text)
{
    MUST(fs_write_atomic(path, text, strlen(text)));
}

static void write_json(const char *dir, const char *name, json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(1));
    if (!text) DIE("%s: cannot serialise", name);
    char *path = fs_join(dir, name);
    write_text(path, text);
    free(text);
    free(path);
    json_decref(v);
}

/* ---- config.json and preprocessor_config.json --------------------------- */

static void write_configs(const alt_shape *s, const char *dir)
{
    json_t *vision = json_pack(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:f,s:s}", "hidden_size", s->v_hidden,
        "intermediate_size", s->v_ffn, "projection_dim", s->v_hidden, "num_hidden_layers",
        s->v_layers, "num_attention_heads", s->v_heads, "num_channels", 3, "image_size",
        s->image_size, "patch_size", s->patch_size, "hidden_act", "quick_gelu", "layer_norm_eps",
        1e-5, "model_type", "clip_vision_model");
    json_t *text = json_pack(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:f,s:i,s:i,s:i,s:b,s:{s:f,s:s},s:b,s:b,s:s}",
        "vocab_size", s->vocab, "hidden_size", s->t_hidden, "intermediate_size", s->t_ffn,
        "num_hidden_layers", s->t_layers, "num_attention_heads", s->t_heads,
        "num_key_value_heads", s->t_kv_heads, "head_dim", s->t_head_dim,
        "max_position_embeddings", s->max_positions, "hidden_act", "silu", "rms_norm_eps",
        s->rms_eps, "pad_token_id", s->vocab - 1, "bos_token_id", 1, "eos_token_id", 2,
        "tie_word_embeddings", 0, "rope_parameters", "rope_theta", s->rope_theta, "rope_type",
        "default", "attention_bias", 0, "mlp_bias", 0, "model_type", "llama");
    int side = s->image_size / s->patch_size;
    json_t *cfg = json_pack(
        "{s:[s],s:o,s:o,s:i,s:i,s:s,s:s,s:i,s:b,s:b,s:i,s:s,s:s}", "architectures",
        "LlavaForConditionalGeneration", "vision_config", vision, "text_config", text,
        "image_token_index", s->n_pieces, "image_seq_length", side * side,
        "projector_hidden_act", "gelu", "vision_feature_select_strategy", "default",
        "vision_feature_layer", -2, "multimodal_projector_bias", 1, "tie_word_embeddings", 0,
        "pad_token_id", s->vocab - 1, "model_type", "llava", "torch_dtype", "float32");
    if (!cfg) DIE("config.json: json_pack failed");
    write_json(dir, "config.json", cfg);

    json_t *pre = json_pack(
        "{s:{s:i,s:i},s:b,s:b,s:b,s:b,s:b,s:[f,f,f],s:[f,f,f],s:s,s:s,s:i,s:f,s:{s:i}}",
        "crop_size", "height", s->image_size, "width", s->image_size, "do_center_crop", 1,
        "do_convert_rgb", 1, "do_normalize", 1, "do_rescale", 1, "do_resize", 1, "image_mean",
        s->mean[0], s->mean[1], s->mean[2], "image_std", s->std[0], s->std[1], s->std[2],
        "image_processor_type", "CLIPImageProcessor", "processor_class", "LlavaProcessor",
        "resample", 3, "rescale_factor", 1.0 / 255.0, "size", "shortest_edge",
        s->shortest_edge);
    if (!pre) DIE("preprocessor_config.json: json_pack failed");
    write_json(dir, "preprocessor_config.json", pre);
}

/* ---- weights ------------------------------------------------------------- */

typedef enum { W_MATRIX, W_NORM, W_BIAS, W_EMBED } w_kind;

typedef struct {
    char name[160];
    int ndim;
    int64_t shape[4];
    float *data;
} alt_tensor;

typedef struct {
    alt_tensor *t;
    size_t n;
} alt_weights;

/* A tensor drawn as the bundled model's were: matrices N(0, (1.2/sqrt(fan_in))^2),
 * norm scales 1 + N(0, 0.01), biases N(0, 0.01), embeddings N(0, 1). */
static void add_tensor(alt_weights *w, uint64_t *rng, w_kind kind, const char *name, int ndim,
                       int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    w->t = xrealloc(w->t, (w->n + 1) * sizeof *w->t);
    alt_tensor *t = &w->t[w->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    int64_t dims[4] = {d0, d1, d2, d3}, numel = 1;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) numel *= (t->shape[i] = dims[i]);
    t->data = xmalloc(sizeof(float) * (size_t)numel);
    double std = kind == W_MATRIX ? 1.2 / sqrt((double)(numel / d0)) : kind == W_EMBED ? 1.0 : 0.1;
    for (int64_t i = 0; i < numel; i++)
        t->data[i] = (float)((kind == W_NORM ? 1.0 : 0.0) + std * alt_normal(rng));
}

static void add_vision(alt_weights *w, const alt_shape *s, uint64_t *rng)
{
    int64_t C = s->v_hidden, F = s->v_ffn, p = s->patch_size, side = s->image_size / p;
    char n[160];
    add_tensor(w, rng, W_BIAS, "vision_tower.embeddings.class_embedding", 1, C, 0, 0, 0);
    add_tensor(w, rng, W_MATRIX, "vision_tower.embeddings.patch_embedding.weight", 4, C, 3, p, p);
    add_tensor(w, rng, W_EMBED, "vision_tower.embeddings.position_embedding.weight", 2,
               side * side + 1, C, 0, 0);
    add_tensor(w, rng, W_NORM, "vision_tower.pre_layrnorm.weight", 1, C, 0, 0, 0);
    add_tensor(w, rng, W_BIAS, "vision_tower.pre_layrnorm.bias", 1, C, 0, 0, 0);
    static const char *const attn[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int l = 0; l < s->v_layers; l++) {
#define L(fmt, ...) (snprintf(n, sizeof n, "vision_tower.encoder.layers.%d." fmt, l, __VA_ARGS__), n)
        for (int i = 0; i < 4; i++) {
            add_tensor(w, rng, W_MATRIX, L("self_attn.%s.weight", attn[i]), 2, C, C, 0, 0);
            add_tensor(w, rng, W_BIAS, L("self_attn.%s.bias", attn[i]), 1, C, 0, 0, 0);
        }
        for (int k = 1; k <= 2; k++) {
            add_tensor(w, rng, W_NORM, L("layer_norm%d.weight", k), 1, C, 0, 0, 0);
            add_tensor(w, rng, W_BIAS, L("layer_norm%d.bias", k), 1, C, 0, 0, 0);
        }
        add_tensor(w, rng, W_MATRIX, L("mlp.fc%d.weight", 1), 2, F, C, 0, 0);
        add_tensor(w, rng, W_BIAS, L("mlp.fc%d.bias", 1), 1, F, 0, 0, 0);
        add_tensor(w, rng, W_MATRIX, L("mlp.fc%d.weight", 2), 2, C, F, 0, 0);
        add_tensor(w, rng, W_BIAS, L("mlp.fc%d.bias", 2), 1, C, 0, 0, 0);
#undef L
    }
    add_tensor(w, rng, W_NORM, "vision_tower.post_layernorm.weight", 1, C, 0, 0, 0);
    add_tensor(w, rng, W_BIAS, "vision_tower.post_layernorm.bias", 1, C, 0, 0, 0);
}

static void add_language(alt_weights *w, const alt_shape *s, uint64_t *rng)
{
    int64_t D = s->t_hidden, F = s->t_ffn, V = s->vocab, hd = s->t_head_dim;
    int64_t q_out = s->t_heads * hd, kv_out = s->t_kv_heads * hd;
    add_tensor(w, rng, W_MATRIX, "multi_modal_projector.linear_1.weight", 2, D, s->v_hidden, 0, 0);
    add_tensor(w, rng, W_BIAS, "multi_modal_projector.linear_1.bias", 1, D, 0, 0, 0);
    add_tensor(w, rng, W_MATRIX, "multi_modal_projector.linear_2.weight", 2, D, D, 0, 0);
    add_tensor(w, rng, W_BIAS, "multi_modal_projector.linear_2.bias", 1, D, 0, 0, 0);
    add_tensor(w, rng, W_EMBED, "language_model.model.embed_tokens.weight", 2, V, D, 0, 0);
    char n[160];
    for (int l = 0; l < s->t_layers; l++) {
#define L(part) (snprintf(n, sizeof n, "language_model.model.layers.%d.%s", l, part), n)
        add_tensor(w, rng, W_NORM, L("input_layernorm.weight"), 1, D, 0, 0, 0);
        add_tensor(w, rng, W_NORM, L("post_attention_layernorm.weight"), 1, D, 0, 0, 0);
        add_tensor(w, rng, W_MATRIX, L("self_attn.q_proj.weight"), 2, q_out, D, 0, 0);
        add_tensor(w, rng, W_MATRIX, L("self_attn.k_proj.weight"), 2, kv_out, D, 0, 0);
        add_tensor(w, rng, W_MATRIX, L("self_attn.v_proj.weight"), 2, kv_out, D, 0, 0);
        add_tensor(w, rng, W_MATRIX, L("self_attn.o_proj.weight"), 2, D, q_out, 0, 0);
        add_tensor(w, rng, W_MATRIX, L("mlp.gate_proj.weight"), 2, F, D, 0, 0);
        add_tensor(w, rng, W_MATRIX, L("mlp.up_proj.weight"), 2, F, D, 0, 0);
        add_tensor(w, rng, W_MATRIX, L("mlp.down_proj.weight"), 2, D, F, 0, 0);
#undef L
    }
    add_tensor(w, rng, W_NORM, "language_model.model.norm.weight", 1, D, 0, 0, 0);
    add_tensor(w, rng, W_MATRIX, "language_model.lm_head.weight", 2, V, D, 0, 0);
}

/* Shard 1: language model and projector; shard 2: vision tower; the index. */
static void write_weights(const alt_shape *s, const char *dir, uint64_t seed)
{
    alt_weights w = {0};
    uint64_t rng = seed;
    add_vision(&w, s, &rng);
    add_language(&w, s, &rng);
    static const char *const shard[2] = {"model-00001-of-00002.safetensors",
                                         "model-00002-of-00002.safetensors"};
    const char *const meta[] = {"format", "pt", NULL};
    json_t *map = json_object();
    long long total = 0;
    for (int f = 0; f < 2; f++) {
        st_write_tensor *wt = xcalloc(w.n, sizeof *wt);
        size_t k = 0;
        for (size_t i = 0; i < w.n; i++) {
            alt_tensor *t = &w.t[i];
            if ((strncmp(t->name, "vision_tower.", 13) == 0) != (f == 1)) continue;
            wt[k] = (st_write_tensor){t->name, ST_F32, t->ndim, {0}, t->data};
            memcpy(wt[k].shape, t->shape, sizeof t->shape);
            int64_t numel = 1;
            for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
            total += numel * (long long)sizeof(float);
            json_object_set_new(map, t->name, json_string(shard[f]));
            k++;
        }
        char *path = fs_join(dir, shard[f]);
        MUST(st_write_file(path, wt, k, meta));
        free(path);
        free(wt);
    }
    write_json(dir, "model.safetensors.index.json",
               json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)total,
                         "weight_map", map));
    for (size_t i = 0; i < w.n; i++) free(w.t[i].data);
    free(w.t);
}

/* ---- tokenizer ------------------------------------------------------------ */

/* One UTF-8 code point? */
static bool single_char(const char *p)
{
    size_t n = strlen(p);
    unsigned char c = (unsigned char)p[0];
    size_t want = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return n > 0 && n == want;
}

typedef struct {
    const char **pieces; /* by new id: keys of the bundled vocabulary object */
    int n;
    json_t *vocab;       /* piece -> new id */
    json_t *merges;      /* [[a, b], ...] kept, in rank order */
} cut_vocab;

/* The bundled vocabulary cut to n pieces: <unk> <s> </s> and the 256 byte
 * pieces, the first merged pieces by rank, then every single character (so
 * any text still encodes); merges whose parts and result all remain. The
 * order of the bundled file is kept, so merge ranks and sentencepiece
 * scores stay in agreement. */
static cut_vocab cut_vocabulary(const json_t *model, int n, const char *where)
{
    const json_t *vocab = json_object_get(model, "vocab");
    size_t total = json_object_size(vocab);
    const char **by_id = xcalloc(total, sizeof *by_id);
    const char *piece;
    json_t *id;
    json_object_foreach((json_t *)vocab, piece, id) {
        json_int_t i = json_integer_value(id);
        if (i < 0 || (size_t)i >= total) DIE("%s: vocabulary id %lld out of order", where, (long long)i);
        by_id[i] = piece;
    }
    const int fixed = 3 + 256;
    int chars = 0;
    for (size_t i = fixed; i < total; i++) chars += single_char(by_id[i]);
    int merged = n - fixed - chars;
    if (merged < 1 || (size_t)(fixed + merged) > total - chars)
        DIE("%s: cannot cut %zu pieces to %d", where, total, n);
    bool *keep = xcalloc(total, sizeof *keep);
    size_t kept = 0;
    for (size_t i = 0; i < total; i++)
        kept += keep[i] = i < (size_t)(fixed + merged) || (i >= (size_t)fixed && single_char(by_id[i]));
    if (kept != (size_t)n) DIE("%s: characters among the merged pieces: cannot cut", where);
    cut_vocab c = {xcalloc((size_t)n, sizeof(char *)), 0, json_object(), json_array()};
    for (size_t i = 0; i < total; i++)
        if (keep[i]) {
            c.pieces[c.n] = by_id[i];
            json_object_set_new(c.vocab, by_id[i], json_integer(c.n++));
        }
    free(keep);
    size_t k;
    json_t *m;
    json_array_foreach(json_object_get(model, "merges"), k, m) {
        /* [a, b] (newer tokenizers) or "a b" */
        char a[256] = "", b[256] = "", ab[512];
        const char *a0 = json_string_value(json_array_get(m, 0));
        const char *b0 = json_string_value(json_array_get(m, 1));
        if (a0 && b0) {
            snprintf(a, sizeof a, "%s", a0);
            snprintf(b, sizeof b, "%s", b0);
        } else if (!json_is_string(m) || sscanf(json_string_value(m), "%255s %255s", a, b) != 2) {
            DIE("%s: merge %zu is neither [a, b] nor \"a b\"", where, k);
        }
        snprintf(ab, sizeof ab, "%s%s", a, b);
        if (json_object_get(c.vocab, a) && json_object_get(c.vocab, b) && json_object_get(c.vocab, ab))
            json_array_append_new(c.merges, json_pack("[s,s]", a, b));
    }
    free(by_id);
    return c;
}

/* tokenizer.model: the cut pieces, scores falling with rank (BPE). */
static void write_sentencepiece(const cut_vocab *c, const char *dir)
{
    const int fixed = 3 + 256; /* spm_model writes these itself */
    for (int i = fixed; i < c->n; i++)
        if (strlen(c->pieces[i]) >= 64) DIE("piece \"%s\" too long for spm_model", c->pieces[i]);
    spm_opts o = {.model_type = 2, .byte_fallback = true, .add_dummy_prefix = true};
    pbw m = spm_model(&o, c->pieces + fixed, (size_t)(c->n - fixed));
    char *path = fs_join(dir, "tokenizer.model");
    MUST(fs_write_atomic(path, m.p, m.n));
    free(path);
    free(m.p);
}

/* tokenizer.json: the bundled file with the cut vocabulary and merges and
 * <image>, <pad> moved after it; the small JSON files beside it. */
static void write_tokenizers(const alt_shape *s, const char *bundled_model, const char *dir)
{
    char *src = fs_join(bundled_model, "tokenizer.json");
    json_t *tok = js_load_file(src);
    if (!tok) err_exit();
    json_t *model = json_object_get(tok, "model");
    cut_vocab c = cut_vocabulary(model, s->n_pieces, src);
    write_sentencepiece(&c, dir); /* c.pieces point into the vocabulary replaced next */
    json_object_set_new(model, "vocab", c.vocab);
    json_object_set_new(model, "merges", c.merges);
    size_t i;
    json_t *added;
    json_array_foreach(json_object_get(tok, "added_tokens"), i, added) {
        const char *content = json_string_value(json_object_get(added, "content"));
        if (content && !strcmp(content, "<image>"))
            json_object_set_new(added, "id", json_integer(s->n_pieces));
        else if (content && !strcmp(content, "<pad>"))
            json_object_set_new(added, "id", json_integer(s->n_pieces + 1));
    }
    write_json(dir, "tokenizer.json", tok);
    free(c.pieces);
    free(src);

    write_json(dir, "added_tokens.json",
               json_pack("{s:i,s:i}", "<image>", s->n_pieces, "<pad>", s->n_pieces + 1));
    write_json(dir, "special_tokens_map.json",
               json_pack("{s:s,s:s,s:s,s:s,s:[s]}", "bos_token", "<s>", "eos_token", "</s>",
                         "unk_token", "<unk>", "pad_token", "<pad>",
                         "additional_special_tokens", "<image>"));
    write_json(dir, "tokenizer_config.json",
               json_pack("{s:s,s:b,s:b,s:b,s:s,s:s,s:s,s:s,s:i,s:s}", "tokenizer_class",
                         "LlamaTokenizer", "legacy", 1, "add_bos_token", 1, "add_eos_token", 0,
                         "bos_token", "<s>", "eos_token", "</s>", "unk_token", "<unk>",
                         "pad_token", "<pad>", "model_max_length", s->max_positions,
                         "padding_side", "left"));
}

void alt_write_model(const alt_shape *s, const char *bundled_model, const char *dir, uint64_t seed)
{
    char *model = fs_join(dir, "tiny-llava");
    if (mkdir(model, 0755) != 0) DIE("cannot create %s", model);
    write_configs(s, model);
    write_weights(s, model, seed);
    write_tokenizers(s, bundled_model, model);
    free(model);
}

/* ---- the LoRA adapter and the reduced-precision subsets -------------------- */

void alt_write_adapter(const alt_shape *s, const char *dir, uint64_t seed)
{
    char *model_dir = fs_join(dir, "tiny-llava"), *out = fs_join(dir, "tiny-llava-lora");
    be_backend *be = be_cpu_new(0);
    llava_model *m = NULL;
    lora_adapter *ad = NULL;
    MUST(llava_load(model_dir, be, &m));
    lora_config c = lora_config_default();
    c.r = s->lora_r;
    c.alpha = s->lora_alpha;
    MUST(lora_parse_targets(s->lora_targets, &c.targets));
    MUST(lora_new(m, &c, seed, &ad));
    uint64_t state = seed;
    tiny_llava_random_B(ad, m, &state, 0.5f);
    MUST(lora_save_peft(ad, out, "tiny-llava"));
    lora_free(ad);
    llava_free(m);
    be->destroy(be);
    free(model_dir);
    free(out);
}

/* Tensors of the subsets: vision layer 0, the projector, LLaMA layer 2's
 * attention and the final norm. */
static bool in_subset(const char *name)
{
    static const char *const prefixes[] = {
        "vision_tower.encoder.layers.0.", "multi_modal_projector.",
        "language_model.model.norm.", NULL};
    for (int i = 0; prefixes[i]; i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i]))) return true;
    return strstr(name, "language_model.model.layers.") && strstr(name, ".self_attn.") &&
           !strncmp(name, "language_model.model.layers.2.", 30);
}

void alt_write_subsets(const char *dir)
{
    char *model_dir = fs_join(dir, "tiny-llava");
    st_set *set = NULL;
    MUST(st_open_dir(model_dir, &set));
    static const struct { st_dtype dt; const char *file; } kinds[2] = {
        {ST_F16, "weights-f16-subset.safetensors"}, {ST_BF16, "weights-bf16-subset.safetensors"}};
    for (int k = 0; k < 2; k++) {
        st_write_tensor *wt = xcalloc(st_count(set), sizeof *wt);
        size_t n = 0;
        for (size_t i = 0; i < st_count(set); i++) {
            const st_tensor *t = st_at(set, i);
            if (!in_subset(t->name)) continue;
            float *f = xmalloc(sizeof(float) * (size_t)t->numel);
            uint16_t *h = xmalloc(sizeof(uint16_t) * (size_t)t->numel);
            MUST(st_to_f32(t, f));
            for (int64_t j = 0; j < t->numel; j++)
                h[j] = kinds[k].dt == ST_F16 ? st_f32_to_f16(f[j]) : st_f32_to_bf16(f[j]);
            free(f);
            wt[n] = (st_write_tensor){t->name, kinds[k].dt, t->ndim, {0}, h};
            memcpy(wt[n++].shape, t->shape, sizeof t->shape);
        }
        if (n == 0) DIE("no tensor of %s falls in the subset", model_dir);
        char *path = fs_join(dir, kinds[k].file);
        MUST(st_write_file(path, wt, n, NULL));
        for (size_t i = 0; i < n; i++) free((void *)wt[i].data);
        free(wt);
        free(path);
    }
    st_close(set);
    free(model_dir);
}
