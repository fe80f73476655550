/* train_names.h — training layer: gradients by hub tensor name. */
#ifndef SIMA_TRAIN_NAMES_H
#define SIMA_TRAIN_NAMES_H

#include "train_llama.h"
#include "train_vision.h"

/* The gradient matrix of the weight a checkpoint calls `name` (any spelling
 * weights.h accepts), or NULL when the model does not use that weight (e.g.
 * CLIP layers past the selected feature layer, post_layernorm) or the grads
 * do not hold it. vg may be NULL. */
be_mat *train_grad_by_name(llava_model *m, llama_grads *lg, vision_grads *vg, const char *name);

#endif
