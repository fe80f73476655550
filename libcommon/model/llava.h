/* llava.h — model layer: the LLaVA-1.5 network (CLIP vision tower, mlp2x_gelu
 * projector, LLaMA decoder) as weights plus forward passes over a backend.
 *
 * Shapes use: P = patches per image, C = CLIP hidden, D = LLaMA hidden,
 * F = LLaMA FFN width, V = vocabulary, H/KVH = heads / kv heads, hd = head
 * dim, R = rows of a ragged batch (all sequences' new tokens, concatenated).
 */
#ifndef SIMA_MODEL_LLAVA_H
#define SIMA_MODEL_LLAVA_H

#include "backend.h"
#include "config.h"

typedef struct {
    be_weight ln1_w, ln1_b, ln2_w, ln2_b;     /* [1, C] */
    be_weight q, k, v, o;                     /* [C, C] */
    be_weight q_b, k_b, v_b, o_b;             /* [1, C] */
    be_weight fc1, fc1_b;                     /* [Fv, C], [1, Fv] */
    be_weight fc2, fc2_b;                     /* [C, Fv], [1, C] */
} clip_layer;

typedef struct {
    be_weight patch;        /* [C, 3*p*p]: the conv kernel, flattened (c, y, x) */
    be_weight class_emb;    /* [1, C] */
    be_weight pos_emb;      /* [P + 1, C] */
    be_weight pre_ln_w, pre_ln_b;  /* [1, C] */
    clip_layer *layers;     /* only the layers the selected feature needs */
    int n_layers;           /* layers run: up to vision_feature_layer */
} clip_tower;

typedef struct {
    be_weight l1, l1_b;     /* [D, C], [1, D] */
    be_weight l2, l2_b;     /* [D, D], [1, D] */
} llava_projector;

typedef struct {
    be_weight attn_norm, mlp_norm;            /* [1, D] */
    be_weight q;                              /* [H*hd, D] */
    be_weight k, v;                           /* [KVH*hd, D] */
    be_weight o;                              /* [D, H*hd] */
    be_weight gate, up;                       /* [F, D] */
    be_weight down;                           /* [D, F] */
} llama_layer;

/* The linear layers of a LLaMA layer, in a fixed order (LoRA targets). */
typedef enum { LL_Q, LL_K, LL_V, LL_O, LL_GATE, LL_UP, LL_DOWN, LL_N_LINEAR } llama_linear_id;

/* LoRA: an optional low-rank term on a linear layer,
 *   y += scale * (x A^T) B^T,  A [r, in], B [out, r], scale = alpha / r.
 * A term whose A.data is NULL is absent. */
typedef struct {
    be_weight A, B;
    float scale;
} lora_term;

typedef struct {
    lora_term t[LL_N_LINEAR];
} llama_layer_lora;

typedef struct {
    be_weight embed;        /* [V, D] */
    be_weight norm;         /* [1, D] */
    be_weight lm_head;      /* [V, D]; aliases embed when tied */
    llama_layer *layers;
    int n_layers;
    /* An attached LoRA adapter ([n_layers], owned by whoever attached it;
     * NULL: none) and a switch to run as the base model with it attached
     * (the DPO reference). */
    const llama_layer_lora *lora;
    bool lora_off;
} llama_decoder;

typedef struct {
    cfg_model cfg;
    be_backend *be;
    clip_tower vision;
    llava_projector proj;
    llama_decoder lm;
    int n_patches;          /* P = (image/patch)^2 */
    int image_tokens;       /* tokens per image in the prompt: P, or P+1 for "full" */
    struct llama_kv_pool *kv_pool; /* pages of the sequences' caches (llama.c), or NULL */
} llava_model;

/* Load config.json and the safetensors weights of DIR onto backend be.
 * Weights may be stored F32, F16 or BF16; any spelling of the tensor names
 * is accepted. A missing tensor or a shape that disagrees with the config is
 * an error naming the tensor and the folder. */
int llava_load(const char *dir, be_backend *be, llava_model **out);
void llava_free(llava_model *m);
/* A model of the configured shape with N(0, 0.02^2) weights from `seed`
 * (norm scales 1, biases 0): for benchmarks and shape tests. */
int llava_random(const cfg_model *cfg, be_backend *be, uint64_t seed, llava_model **out);

/* CLIP: pixels [n_img, 3, S, S] (host) -> hidden states of the selected
 * layer, out [n_img * (P + 1), C] (CLS first per image). When emb_out is
 * non-NULL it receives the embeddings after pre_layrnorm (same shape). */
int clip_forward(llava_model *m, const float *pixels, int n_img, be_mat out, be_mat *emb_out);

/* Vision tower + projector: pixels [n_img, 3, S, S] -> image features
 * out [n_img * image_tokens, D] (CLS dropped for "default"). */
int llava_image_features(llava_model *m, const float *pixels, int n_img, be_mat out);

/* A sequence's key/value cache: pages of the model's page pool (the
 * backend's be_kv_pages, made on the first llama_kv_new), taken as the
 * sequence grows and shared, with reference counts, between sequences that
 * start the same (llama_kv_share): the candidates of one prompt keep one
 * copy of the prompt's keys and values. */
typedef struct {
    int32_t *pages;         /* [n_pages] page ids in position order */
    int64_t n_pages, cap_pages;
    int64_t capacity;       /* positions */
    int64_t n_past;         /* positions filled */
} llama_kv;

int llama_kv_new(llava_model *m, int64_t capacity, llama_kv *kv);
void llama_kv_free(llava_model *m, llama_kv *kv);
/* dst, new and empty, continues src's first n positions (n <= src->n_past):
 * the pages src filled within them are shared, a page holding fewer than
 * its size of them is copied (dst's next positions go there). */
int llama_kv_share(llava_model *m, const llama_kv *src, int64_t n, llama_kv *dst);
/* The model's page pool, freed with the model (llava_free). */
void llama_kv_pool_free(llava_model *m);

/* One sequence's share of a ragged batch: its rows [row0, row0 + n_new),
 * appended after kv->n_past cached positions (kv NULL: no cache, the rows
 * are the whole sequence — scoring). With_image: its image-token rows take
 * image features; otherwise (no image, or decode steps) an image-token id is
 * embedded like any token, as transformers does without pixel values. */
typedef struct {
    int64_t row0, n_new;
    llama_kv *kv;
    bool with_image;
} llama_seq;

typedef struct {
    int64_t n_rows;         /* R */
    const int32_t *ids;     /* [R] host */
    int n_seqs;
    const llama_seq *seqs;
    /* Image features for the image-token rows of the with_image sequences,
     * in row order: the f-th such row takes row f. rows == 0 when none. */
    be_mat image_features;  /* [n_image_rows, D] */
} llama_batch;

/* hidden [R, D] = final-normed hidden states of every row. Advances each
 * sequence's kv->n_past by its n_new. */
int llama_forward(llava_model *m, const llama_batch *batch, be_mat hidden);
/* Weight of linear `which` of a layer ([out, in]). */
const be_weight *llama_layer_weight(const llama_layer *L, llama_linear_id which);
/* The adapter terms of layer `layer` when one is attached and on, else NULL. */
const llama_layer_lora *llama_active_lora(const llava_model *m, int layer);
/* y [M, out] += scale * (x [M, in] A^T) B^T; nothing when the term is absent. */
void lora_term_apply(be_backend *be, be_mat y, be_mat x, const lora_term *t);

/* logits [N, V] = hidden rows [N, D] . lm_head^T */
void llama_logits(llava_model *m, be_mat hidden, be_mat logits);

#endif
