/* lora.h — training layer: LoRA adapters for the language model's linears.
 *
 * An adapter holds, for every LLaMA layer and every targeted linear, the
 * low-rank term y += (alpha/r) (x A^T) B^T with A [r, in], B [out, r], as
 * float32 host master copies (what the optimizer updates and what is saved)
 * plus backend weights the forward passes use. Attached to a model it is
 * applied by llama_forward and llama_forward_train; m->lm.lora_off runs the
 * model as its base (the DPO reference).
 *
 * Files: PEFT's layout, adapter_config.json + adapter_model.safetensors with
 * names base_model.model.model.language_model.layers.L.{self_attn,mlp}.X_proj.lora_{A,B}.weight.
 */
#ifndef SIMA_TRAIN_LORA_H
#define SIMA_TRAIN_LORA_H

#include "llava.h"

typedef struct {
    int r;                      /* rank */
    double alpha;               /* lora_alpha; scale = alpha / r */
    double dropout;             /* lora_dropout: the trainer sets it per sequence (train_seq) */
    bool rslora;                /* scale = alpha / sqrt(r) instead */
    unsigned targets;           /* bit i set: LLaMA linear i (llama_linear_id) */
} lora_config;

/* The default: r=8, alpha=16, dropout 0, all seven linears. */
lora_config lora_config_default(void);
/* Parse "q,k,v,o,gate,up,down" (also PEFT spellings q_proj, ...) into bits. */
int lora_parse_targets(const char *list, unsigned *out);

typedef struct {
    lora_config cfg;
    int n_layers;
    float *host_A[LL_N_LINEAR], *host_B[LL_N_LINEAR]; /* per linear: [n_layers][r*in], [n_layers][out*r] */
    llama_layer_lora *terms;    /* [n_layers]: backend weights, attached to the model */
    be_backend *be;
} lora_adapter;

/* A fresh adapter for m, initialised as PEFT does: A ~ kaiming_uniform(a=sqrt(5)),
 * i.e. U(-1/sqrt(in), 1/sqrt(in)), from `seed` (each tensor its own stream of
 * (seed, layer, linear)); B = 0. */
int lora_new(llava_model *m, const lora_config *cfg, uint64_t seed, lora_adapter **out);
/* Load a PEFT adapter folder for m. */
int lora_load_peft(llava_model *m, const char *dir, lora_adapter **out);
/* Write a PEFT adapter folder (created if absent; files written atomically). */
int lora_save_peft(const lora_adapter *ad, const char *dir, const char *base_model_name);
void lora_free(lora_adapter *ad);

/* Attach to / detach from m (m->lm.lora points at ad->terms). */
void lora_attach(llava_model *m, lora_adapter *ad);
void lora_detach(llava_model *m);
/* After the host copies change (an optimizer step): upload them. */
void lora_sync(lora_adapter *ad);

/* Host pointers of one term (NULL when the linear is not targeted). */
float *lora_host_A(const lora_adapter *ad, int layer, llama_linear_id which);
float *lora_host_B(const lora_adapter *ad, int layer, llama_linear_id which);
/* in/out sizes of linear `which` of m. */
void lora_linear_dims(const llava_model *m, llama_linear_id which, int64_t *out_dim,
                      int64_t *in_dim);
/* PEFT tensor name of a term: "base_model.model.model.language_model.layers.L.self_attn.q_proj.lora_A.weight". */
void lora_peft_name(int layer, llama_linear_id which, char ab, char *buf, size_t size);

/* W' [out, in] = W + scale B A, one term, into merged (may alias W). */
void lora_merge_term(const float *W, const float *A, const float *B, int r, int64_t out_dim,
                     int64_t in_dim, float scale, float *merged);
/* Merge every term into m's weights and detach: m becomes the merged model. */
void lora_merge_into_model(llava_model *m, lora_adapter *ad);

#endif
