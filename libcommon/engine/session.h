/* session.h — engine layer: everything a tool loads to run a LLaVA model:
 * the network on a backend, its tokenizer, and its image preprocessing. */
#ifndef SIMA_ENGINE_SESSION_H
#define SIMA_ENGINE_SESSION_H

#include "image.h"
#include "llava.h"
#include "lora.h"
#include "tokenizer.h"

typedef struct {
    be_backend *be;
    llava_model *m;
    tok_tokenizer *tok;
    img_proc_cfg pc;        /* preprocessor_config.json, else CLIP defaults */
    img_mode mode;          /* pad | crop */
    lora_adapter *adapter;  /* attached PEFT adapter, NULL: the base model */
} sess_model;

/* Load MODEL_DIR on the CPU backend; preprocess is "pad" or "crop". The
 * preprocessor's crop must match the vision tower's image size. */
int sess_load(const char *model_dir, const char *preprocess, sess_model *s);
/* Only the image side: the model folder's preprocessor_config.json (else
 * CLIP defaults) and the mode, checked against the vision tower's size. */
int sess_image_config(const char *model_dir, const char *preprocess, int image_size,
                      img_proc_cfg *pc, img_mode *mode);
/* Load the PEFT adapter folder ADAPTER_DIR (adapter_config.json +
 * adapter_model.safetensors) and attach it to the loaded model: every
 * generation afterwards runs the base model plus the LoRA terms. */
int sess_attach_adapter(sess_model *s, const char *adapter_dir);
/* Identity of an adapter for run keys and provenance: FNV-1a over the bytes
 * of adapter_config.json, then adapter_model.safetensors, as 16 hex digits
 * (malloc'd); "none" for a NULL dir; NULL (error set) when a file cannot be
 * read. All bytes are hashed: a retrained adapter has the same shapes. */
char *sess_adapter_hash(const char *adapter_dir);
void sess_free(sess_model *s);

#endif
