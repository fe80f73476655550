/* llava.c — model layer: loading LLaVA-1.5 weights and the forward passes.
 * Everything here runs through the backend interface; no kernel code. */
#include "llava.h"
#include "err.h"
#include "log.h"
#include "safetensors.h"
#include "weights.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ loading -- */

typedef struct {
    const st_set *set;
    const char *dir;
    be_backend *be;
} loader;

/* Load tensor `name`, check it holds rows x cols elements with the expected
 * trailing shape, convert to float32 and hand it to the backend. */
static int load_weight(loader *ld, const char *name, int64_t rows, int64_t cols,
                       be_weight *out)
{
    const st_tensor *t = wt_require(ld->set, name, ld->dir);
    if (!t) return -1;
    if (t->numel != rows * cols)
        return ERR("%s: tensor %s has %lld elements, the config implies [%lld, %lld]", ld->dir,
                   t->name, (long long)t->numel, (long long)rows, (long long)cols);
    float *host = xmalloc(sizeof(float) * (size_t)t->numel);
    int rc = st_to_f32(t, host);
    if (rc == 0) rc = ld->be->weight_new(ld->be, host, rows, cols, out);
    free(host);
    if (rc != 0) err_context("%s: tensor %s", ld->dir, t->name);
    return rc;
}

static int load_fmt(loader *ld, int64_t rows, int64_t cols, be_weight *out, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));
static int load_fmt(loader *ld, int64_t rows, int64_t cols, be_weight *out, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return load_weight(ld, name, rows, cols, out);
}

#define VT "vision_tower.vision_model."
#define LM "language_model.model."

static int load_clip_layer(loader *ld, const cfg_vision *v, int i, clip_layer *L)
{
    int64_t C = v->hidden_size, Fv = v->intermediate_size;
    const char *p = VT "encoder.layers";
    int rc = 0;
    rc |= load_fmt(ld, 1, C, &L->ln1_w, "%s.%d.layer_norm1.weight", p, i);
    rc |= load_fmt(ld, 1, C, &L->ln1_b, "%s.%d.layer_norm1.bias", p, i);
    rc |= load_fmt(ld, 1, C, &L->ln2_w, "%s.%d.layer_norm2.weight", p, i);
    rc |= load_fmt(ld, 1, C, &L->ln2_b, "%s.%d.layer_norm2.bias", p, i);
    rc |= load_fmt(ld, C, C, &L->q, "%s.%d.self_attn.q_proj.weight", p, i);
    rc |= load_fmt(ld, C, C, &L->k, "%s.%d.self_attn.k_proj.weight", p, i);
    rc |= load_fmt(ld, C, C, &L->v, "%s.%d.self_attn.v_proj.weight", p, i);
    rc |= load_fmt(ld, C, C, &L->o, "%s.%d.self_attn.out_proj.weight", p, i);
    rc |= load_fmt(ld, 1, C, &L->q_b, "%s.%d.self_attn.q_proj.bias", p, i);
    rc |= load_fmt(ld, 1, C, &L->k_b, "%s.%d.self_attn.k_proj.bias", p, i);
    rc |= load_fmt(ld, 1, C, &L->v_b, "%s.%d.self_attn.v_proj.bias", p, i);
    rc |= load_fmt(ld, 1, C, &L->o_b, "%s.%d.self_attn.out_proj.bias", p, i);
    rc |= load_fmt(ld, Fv, C, &L->fc1, "%s.%d.mlp.fc1.weight", p, i);
    rc |= load_fmt(ld, 1, Fv, &L->fc1_b, "%s.%d.mlp.fc1.bias", p, i);
    rc |= load_fmt(ld, C, Fv, &L->fc2, "%s.%d.mlp.fc2.weight", p, i);
    rc |= load_fmt(ld, 1, C, &L->fc2_b, "%s.%d.mlp.fc2.bias", p, i);
    return rc ? -1 : 0;
}

/* Layers to run: hidden_states[k] is the output of k layers (0 = embeddings). */
static int clip_layers_needed(const cfg_model *cfg, int *n)
{
    int L = cfg->vision.num_hidden_layers, f = cfg->vision_feature_layer;
    int k = f < 0 ? L + 1 + f : f;
    if (k < 0 || k > L)
        return ERR("vision_feature_layer %d is outside the %d-layer vision tower", f, L);
    *n = k;
    return 0;
}

static int load_vision(loader *ld, llava_model *m)
{
    const cfg_vision *v = &m->cfg.vision;
    int64_t C = v->hidden_size, p = v->patch_size;
    clip_tower *t = &m->vision;
    if (clip_layers_needed(&m->cfg, &t->n_layers) != 0) return -1;
    int rc = 0;
    rc |= load_weight(ld, VT "embeddings.patch_embedding.weight", C, v->num_channels * p * p,
                      &t->patch);
    rc |= load_weight(ld, VT "embeddings.class_embedding", 1, C, &t->class_emb);
    rc |= load_weight(ld, VT "embeddings.position_embedding.weight", m->n_patches + 1, C,
                      &t->pos_emb);
    rc |= load_weight(ld, VT "pre_layrnorm.weight", 1, C, &t->pre_ln_w);
    rc |= load_weight(ld, VT "pre_layrnorm.bias", 1, C, &t->pre_ln_b);
    if (rc) return -1;
    t->layers = xcalloc((size_t)t->n_layers + 1, sizeof *t->layers);
    for (int i = 0; i < t->n_layers; i++)
        if (load_clip_layer(ld, v, i, &t->layers[i]) != 0) return -1;
    return 0;
}

static int load_projector(loader *ld, llava_model *m)
{
    int64_t C = m->cfg.vision.hidden_size, D = m->cfg.text.hidden_size;
    if (!m->cfg.multimodal_projector_bias)
        return ERR("%s: a projector without biases is not supported", ld->dir);
    int rc = 0;
    rc |= load_weight(ld, "multi_modal_projector.linear_1.weight", D, C, &m->proj.l1);
    rc |= load_weight(ld, "multi_modal_projector.linear_1.bias", 1, D, &m->proj.l1_b);
    rc |= load_weight(ld, "multi_modal_projector.linear_2.weight", D, D, &m->proj.l2);
    rc |= load_weight(ld, "multi_modal_projector.linear_2.bias", 1, D, &m->proj.l2_b);
    return rc ? -1 : 0;
}

static int load_llama_layer(loader *ld, const cfg_text *t, int i, llama_layer *L)
{
    int64_t D = t->hidden_size, F = t->intermediate_size;
    int64_t q = (int64_t)t->num_attention_heads * t->head_dim;
    int64_t kv = (int64_t)t->num_key_value_heads * t->head_dim;
    const char *p = LM "layers";
    int rc = 0;
    rc |= load_fmt(ld, 1, D, &L->attn_norm, "%s.%d.input_layernorm.weight", p, i);
    rc |= load_fmt(ld, 1, D, &L->mlp_norm, "%s.%d.post_attention_layernorm.weight", p, i);
    rc |= load_fmt(ld, q, D, &L->q, "%s.%d.self_attn.q_proj.weight", p, i);
    rc |= load_fmt(ld, kv, D, &L->k, "%s.%d.self_attn.k_proj.weight", p, i);
    rc |= load_fmt(ld, kv, D, &L->v, "%s.%d.self_attn.v_proj.weight", p, i);
    rc |= load_fmt(ld, D, q, &L->o, "%s.%d.self_attn.o_proj.weight", p, i);
    rc |= load_fmt(ld, F, D, &L->gate, "%s.%d.mlp.gate_proj.weight", p, i);
    rc |= load_fmt(ld, F, D, &L->up, "%s.%d.mlp.up_proj.weight", p, i);
    rc |= load_fmt(ld, D, F, &L->down, "%s.%d.mlp.down_proj.weight", p, i);
    return rc ? -1 : 0;
}

static int load_language(loader *ld, llava_model *m)
{
    const cfg_text *t = &m->cfg.text;
    if (t->attention_bias || t->mlp_bias)
        return ERR("%s: LLaMA attention or MLP biases are not supported", ld->dir);
    if (t->sliding_window > 0)
        log_warn("%s: sliding-window attention (%d) is not applied; exact up to that length",
                 ld->dir, t->sliding_window);
    int64_t D = t->hidden_size, V = t->vocab_size;
    llama_decoder *lm = &m->lm;
    int rc = 0;
    rc |= load_weight(ld, LM "embed_tokens.weight", V, D, &lm->embed);
    rc |= load_weight(ld, LM "norm.weight", 1, D, &lm->norm);
    if (t->tie_word_embeddings)
        lm->lm_head = lm->embed;
    else
        rc |= load_weight(ld, "language_model.lm_head.weight", V, D, &lm->lm_head);
    if (rc) return -1;
    lm->n_layers = t->num_hidden_layers;
    lm->layers = xcalloc((size_t)lm->n_layers, sizeof *lm->layers);
    for (int i = 0; i < lm->n_layers; i++)
        if (load_llama_layer(ld, t, i, &lm->layers[i]) != 0) return -1;
    return 0;
}

int llava_load(const char *dir, be_backend *be, llava_model **out)
{
    *out = NULL;
    llava_model *m = xcalloc(1, sizeof *m);
    m->be = be;
    if (cfg_load(dir, &m->cfg) != 0) {
        free(m);
        return -1;
    }
    int side = m->cfg.vision.image_size / m->cfg.vision.patch_size;
    m->n_patches = side * side;
    m->image_tokens = m->cfg.image_seq_length;
    st_set *set = NULL;
    if (st_open_dir(dir, &set) != 0) {
        free(m);
        return -1;
    }
    loader ld = {set, dir, be};
    int rc = load_vision(&ld, m);
    if (rc == 0) rc = load_projector(&ld, m);
    if (rc == 0) rc = load_language(&ld, m);
    st_close(set);
    if (rc != 0) {
        llava_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

static void free_weights(be_backend *be, be_weight *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i].data) be->weight_free(be, &w[i]);
}

/* The structs are made of be_weight fields only, so free them as arrays. */
#define FREE_STRUCT_WEIGHTS(be, s) free_weights((be), (be_weight *)(s), sizeof *(s) / sizeof(be_weight))

void llava_free(llava_model *m)
{
    if (!m) return;
    be_backend *be = m->be;
    clip_tower *t = &m->vision;
    if (t->layers)
        for (int i = 0; i < t->n_layers; i++) FREE_STRUCT_WEIGHTS(be, &t->layers[i]);
    free(t->layers);
    be_weight *vt[] = {&t->patch, &t->class_emb, &t->pos_emb, &t->pre_ln_w, &t->pre_ln_b};
    for (size_t i = 0; i < sizeof vt / sizeof *vt; i++)
        if (vt[i]->data) be->weight_free(be, vt[i]);
    FREE_STRUCT_WEIGHTS(be, &m->proj);
    llama_decoder *lm = &m->lm;
    if (lm->layers)
        for (int i = 0; i < lm->n_layers; i++) FREE_STRUCT_WEIGHTS(be, &lm->layers[i]);
    free(lm->layers);
    if (lm->lm_head.data && lm->lm_head.data != lm->embed.data) be->weight_free(be, &lm->lm_head);
    if (lm->embed.data) be->weight_free(be, &lm->embed);
    if (lm->norm.data) be->weight_free(be, &lm->norm);
    llama_kv_pool_free(m);
    free(m);
}

/* ----------------------------------------------------- random weights -- */

/* Weights drawn N(0, std^2) from a seeded generator, for benchmarks and
 * tests of shapes no checkpoint here has. Norm scales are 1, biases 0. */
typedef struct {
    be_backend *be;
    uint64_t state;
    float std;
} rand_init;

/* Draw k (0-based) after the generator's state s: splitmix64 of
 * s + (k + 1) * golden, as a uniform in (0, 1). Counter-based, so a tensor's
 * draws can be made in parallel and still give the same values. */
static double rand_uniform_at(uint64_t s, uint64_t k)
{
    uint64_t z = s + (k + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) * 0x1.0p-53;
}

static void rand_weight(rand_init *r, int64_t rows, int64_t cols, be_weight *w)
{
    size_t n = (size_t)(rows * cols);
    float *h = xmalloc(sizeof(float) * n);
    uint64_t s = r->state;
    int64_t pairs = (int64_t)(n / 2);
#pragma omp parallel for schedule(static) if (pairs > 65536)
    for (int64_t p = 0; p < pairs; p++) { /* Box-Muller, two at a time */
        double u = rand_uniform_at(s, 2 * (uint64_t)p), v = rand_uniform_at(s, 2 * (uint64_t)p + 1);
        double rad = sqrt(-2.0 * log(u)) * r->std;
        h[2 * p] = (float)(rad * cos(6.283185307179586 * v));
        h[2 * p + 1] = (float)(rad * sin(6.283185307179586 * v));
    }
    r->state = s + 2 * (uint64_t)pairs * 0x9E3779B97F4A7C15ULL;
    if (n % 2) h[n - 1] = 0.0f;
    r->be->weight_new(r->be, h, rows, cols, w);
    free(h);
}

static void const_weight(rand_init *r, int64_t cols, float value, be_weight *w)
{
    float *h = xmalloc(sizeof(float) * (size_t)cols);
    for (int64_t i = 0; i < cols; i++) h[i] = value;
    r->be->weight_new(r->be, h, 1, cols, w);
    free(h);
}

static void random_vision(rand_init *r, llava_model *m)
{
    const cfg_vision *v = &m->cfg.vision;
    int64_t C = v->hidden_size, Fv = v->intermediate_size, p = v->patch_size;
    clip_tower *t = &m->vision;
    rand_weight(r, C, v->num_channels * p * p, &t->patch);
    rand_weight(r, 1, C, &t->class_emb);
    rand_weight(r, m->n_patches + 1, C, &t->pos_emb);
    const_weight(r, C, 1.0f, &t->pre_ln_w);
    const_weight(r, C, 0.0f, &t->pre_ln_b);
    t->layers = xcalloc((size_t)t->n_layers + 1, sizeof *t->layers);
    for (int i = 0; i < t->n_layers; i++) {
        clip_layer *L = &t->layers[i];
        const_weight(r, C, 1.0f, &L->ln1_w);
        const_weight(r, C, 0.0f, &L->ln1_b);
        const_weight(r, C, 1.0f, &L->ln2_w);
        const_weight(r, C, 0.0f, &L->ln2_b);
        be_weight *sq[] = {&L->q, &L->k, &L->v, &L->o};
        be_weight *sb[] = {&L->q_b, &L->k_b, &L->v_b, &L->o_b};
        for (int j = 0; j < 4; j++) {
            rand_weight(r, C, C, sq[j]);
            const_weight(r, C, 0.0f, sb[j]);
        }
        rand_weight(r, Fv, C, &L->fc1);
        const_weight(r, Fv, 0.0f, &L->fc1_b);
        rand_weight(r, C, Fv, &L->fc2);
        const_weight(r, C, 0.0f, &L->fc2_b);
    }
}

static void random_language(rand_init *r, llava_model *m)
{
    const cfg_text *t = &m->cfg.text;
    int64_t D = t->hidden_size, F = t->intermediate_size, V = t->vocab_size;
    int64_t q = (int64_t)t->num_attention_heads * t->head_dim;
    int64_t kv = (int64_t)t->num_key_value_heads * t->head_dim;
    int64_t C = m->cfg.vision.hidden_size;
    rand_weight(r, D, C, &m->proj.l1);
    const_weight(r, D, 0.0f, &m->proj.l1_b);
    rand_weight(r, D, D, &m->proj.l2);
    const_weight(r, D, 0.0f, &m->proj.l2_b);
    llama_decoder *lm = &m->lm;
    rand_weight(r, V, D, &lm->embed);
    const_weight(r, D, 1.0f, &lm->norm);
    if (t->tie_word_embeddings) lm->lm_head = lm->embed;
    else rand_weight(r, V, D, &lm->lm_head);
    lm->n_layers = t->num_hidden_layers;
    lm->layers = xcalloc((size_t)lm->n_layers, sizeof *lm->layers);
    for (int i = 0; i < lm->n_layers; i++) {
        llama_layer *L = &lm->layers[i];
        const_weight(r, D, 1.0f, &L->attn_norm);
        const_weight(r, D, 1.0f, &L->mlp_norm);
        rand_weight(r, q, D, &L->q);
        rand_weight(r, kv, D, &L->k);
        rand_weight(r, kv, D, &L->v);
        rand_weight(r, D, q, &L->o);
        rand_weight(r, F, D, &L->gate);
        rand_weight(r, F, D, &L->up);
        rand_weight(r, D, F, &L->down);
    }
}

int llava_random(const cfg_model *cfg, be_backend *be, uint64_t seed, llava_model **out)
{
    llava_model *m = xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    m->be = be;
    int side = cfg->vision.image_size / cfg->vision.patch_size;
    m->n_patches = side * side;
    m->image_tokens = cfg->image_seq_length;
    if (clip_layers_needed(&m->cfg, &m->vision.n_layers) != 0) {
        free(m);
        return -1;
    }
    rand_init r = {be, seed, 0.02f};
    random_vision(&r, m);
    random_language(&r, m);
    *out = m;
    return 0;
}
