/* lora_merge.h — training layer: write a model folder with an adapter merged.
 *
 * The result is a plain model folder the loaders (llava_load, sima-gen,
 * transformers) read: every file of the base folder except its weight files
 * (config.json, tokenizer and preprocessor files) copied, and one
 * model.safetensors with every tensor as F32 under its stored name, the
 * adapter's targeted linears replaced by W + scale B A, and any tensor given
 * an override (a trained projector, or every weight after full training)
 * replaced by it. Tensors are converted and written one at a time: memory
 * holds one tensor in F32, not the model.
 */
#ifndef SIMA_TRAIN_LORA_MERGE_H
#define SIMA_TRAIN_LORA_MERGE_H

#include "lora.h"

/* Write into the existing folder dir (its files are replaced one by one,
 * atomically each; the caller makes the folder as a whole atomic). */
int lora_write_merged_model(const lora_adapter *ad, const char *model_dir, const char *dir);

/* A tensor's new values: canonical llava-hf name (weights.h), F32 data of
 * the stored tensor's shape. */
typedef struct {
    const char *name;
    const float *data;
    int64_t numel;
} lora_override;

/* The same with overrides; ad may be NULL (nothing to merge). An override
 * naming no tensor of the model, or of another size, is an error. */
int lora_write_model(const lora_adapter *ad, const lora_override *ov, int n_ov,
                     const char *model_dir, const char *dir);

#endif
