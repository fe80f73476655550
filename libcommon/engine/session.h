/* session.h — engine layer: everything a tool loads to run a LLaVA model:
 * the network on a backend, its tokenizer, and its image preprocessing. */
#ifndef SIMA_ENGINE_SESSION_H
#define SIMA_ENGINE_SESSION_H

#include "image.h"
#include "llava.h"
#include "tokenizer.h"

typedef struct {
    be_backend *be;
    llava_model *m;
    tok_tokenizer *tok;
    img_proc_cfg pc;        /* preprocessor_config.json, else CLIP defaults */
    img_mode mode;          /* pad | crop */
} sess_model;

/* Load MODEL_DIR on the CPU backend; preprocess is "pad" or "crop". The
 * preprocessor's crop must match the vision tower's image size. */
int sess_load(const char *model_dir, const char *preprocess, sess_model *s);
/* Only the image side: the model folder's preprocessor_config.json (else
 * CLIP defaults) and the mode, checked against the vision tower's size. */
int sess_image_config(const char *model_dir, const char *preprocess, int image_size,
                      img_proc_cfg *pc, img_mode *mode);
void sess_free(sess_model *s);

#endif
