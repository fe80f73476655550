/* lora_merge.h — training layer: write a model folder with an adapter merged.
 *
 * The result is a plain model folder the loaders (llava_load, sima-gen,
 * transformers) read: every file of the base folder except its weight files
 * (config.json, tokenizer and preprocessor files) copied, and one
 * model.safetensors with every tensor as F32 under its stored name, the
 * adapter's targeted linears replaced by W + scale B A.
 */
#ifndef SIMA_TRAIN_LORA_MERGE_H
#define SIMA_TRAIN_LORA_MERGE_H

#include "lora.h"

/* Write into the existing folder dir (its files are replaced one by one,
 * atomically each; the caller makes the folder as a whole atomic). */
int lora_write_merged_model(const lora_adapter *ad, const char *model_dir, const char *dir);

#endif
