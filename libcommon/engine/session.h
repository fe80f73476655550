/* session.h — engine layer: everything a tool loads to run a LLaVA model:
 * the network on a backend, its tokenizer, and its image preprocessing. */
#ifndef SIMA_ENGINE_SESSION_H
#define SIMA_ENGINE_SESSION_H

#include "image.h"
#include "llava.h"
#include "lora.h"
#include "tokenizer.h"
#include "tool.h"

typedef struct {
    be_backend *be;
    llava_model *m;
    tok_tokenizer *tok;
    img_proc_cfg pc;        /* preprocessor_config.json, else CLIP defaults */
    img_mode mode;          /* pad | crop */
    lora_adapter *adapter;  /* attached PEFT adapter, NULL: the base model */
} sess_model;

/* ---- the device a tool runs its model on ---- */

/* --device auto|cpu|cuda and --dtype bf16|f16|f32, in a tool's option table
 * (codes SESS_O_DEVICE, SESS_O_DTYPE) and parsed by sess_device_option. */
enum { SESS_O_DEVICE = 200, SESS_O_DTYPE };
#define SESS_DEVICE_OPTIONS                                                    \
    {"device", required_argument, 0, SESS_O_DEVICE},                           \
    {"dtype", required_argument, 0, SESS_O_DTYPE}
#define SESS_DEVICE_USAGE                                                      \
    "  --device auto|cpu|cuda  where the model runs (default auto: a GPU when one is\n"  \
    "                        visible, one per rank of a node, else the CPU)\n"           \
    "  --dtype bf16|f16|f32  GPU storage of weight matrices (default bf16)\n"

/* Defaults for this rank (auto, bf16, the rank's place on its node). */
void sess_device_default(tool_ctx *t, be_open_opts *o);
/* Handles --device / --dtype (usage error on a bad value); 0 for other codes. */
int sess_device_option(tool_ctx *t, be_open_opts *o, int code, const char *arg);
/* Where the model will run, "cpu" or "cuda:bf16" etc. (static string; auto
 * resolved by what this rank sees); NULL with an error when the device
 * asked for is not there. A GPU run is a different run from a CPU run: the
 * tools put this in their run keys (nothing for the CPU, so keys of CPU
 * runs stay as they were). */
const char *sess_device_key(const be_open_opts *o);

/* Appends " device=cuda:bf16" (etc.) to the malloc'd run settings string
 * *settings when the model will run on a GPU; nothing for the CPU. -1 with
 * an error when the device asked for is not there. */
int sess_key_device(const be_open_opts *o, char **settings);

/* Load MODEL_DIR on the backend `dev` asks for (NULL: the CPU); preprocess
 * is "pad" or "crop". The preprocessor's crop must match the vision
 * tower's image size. */
int sess_load(const char *model_dir, const char *preprocess, const be_open_opts *dev,
              sess_model *s);
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
