/* config.h — formats layer: the llava-hf LlavaConfig (config.json).
 *
 * Absent fields take Hugging Face's defaults for LlavaConfig, CLIPVisionConfig
 * and LlamaConfig, so the real llava-1.5-7b-hf config.json (which names only a
 * few LLaMA fields) resolves to the full 7B shape. Derived values (head_dim,
 * kv heads, image tokens per image) are computed here.
 */
#ifndef SIMA_FORMATS_CONFIG_H
#define SIMA_FORMATS_CONFIG_H

#include <jansson.h>
#include <stdbool.h>

typedef struct {
    int hidden_size;            /* 1024 */
    int intermediate_size;      /* 4096 */
    int num_hidden_layers;      /* 24 */
    int num_attention_heads;    /* 16 */
    int head_dim;               /* hidden / heads */
    int num_channels;           /* 3 */
    int image_size;             /* 224 (336 for LLaVA-1.5) */
    int patch_size;             /* 32 (14 for LLaVA-1.5) */
    int projection_dim;         /* 512 */
    double layer_norm_eps;      /* 1e-5 */
    char hidden_act[32];        /* quick_gelu */
} cfg_vision;

typedef struct {
    char model_type[16];        /* "llama" | "mistral" */
    int vocab_size;             /* 32000 */
    int hidden_size;            /* 4096 */
    int intermediate_size;      /* 11008 */
    int num_hidden_layers;      /* 32 */
    int num_attention_heads;    /* 32 */
    int num_key_value_heads;    /* = heads when absent */
    int head_dim;               /* hidden / heads when absent */
    int max_position_embeddings;/* 2048 */
    double rms_norm_eps;        /* 1e-6 */
    double rope_theta;          /* 10000 */
    char hidden_act[32];        /* silu */
    bool attention_bias;        /* false */
    bool mlp_bias;              /* false */
    bool tie_word_embeddings;   /* false */
    int bos_token_id;           /* 1 */
    int eos_token_id;           /* 2; the first one when the file gives a list */
    int pad_token_id;           /* -1 when absent */
    int sliding_window;         /* mistral: 4096; 0 = none (llama) */
} cfg_text;

typedef struct {
    cfg_vision vision;
    cfg_text text;
    int image_token_index;      /* 32000 */
    int vision_feature_layer;   /* -2 */
    char vision_feature_select_strategy[16]; /* "default" | "full" */
    char projector_hidden_act[32];           /* "gelu" */
    bool multimodal_projector_bias;          /* true */
    int image_seq_length;       /* tokens per image: (image/patch)^2, +1 for "full" */
    int pad_token_id;           /* -1 when absent */
} cfg_model;

/* Load PATH, a config.json or a folder holding one. Errors name the file
 * and the field ("config.json: text_config.num_key_value_heads: ...").
 * Supported: model_type "llava" (or absent), text model_type "llama" (the
 * default) or "mistral", vision model_type "clip_vision_model", default rope
 * only, an integer vision_feature_layer. A vision_config that is absent
 * means the CLIP ViT-L/14-336 tower (as transformers' LlavaConfig does); an
 * absent text_config means LlamaConfig's defaults. tie_word_embeddings comes
 * from text_config, else the top level, else false. */
int cfg_load(const char *path, cfg_model *out);
/* The same from parsed JSON; `name` is used in messages. */
int cfg_from_json(const json_t *root, const char *name, cfg_model *out);
/* Every resolved field (defaults applied) as a JSON object. */
json_t *cfg_to_json(const cfg_model *cfg);

#endif
