/* weights.h — formats layer: LLaVA tensor names across checkpoint layouts.
 *
 * Code asks for a tensor by its canonical llava-hf name
 *   vision_tower.vision_model.*, multi_modal_projector.*,
 *   language_model.model.*, language_model.lm_head.weight
 * and the lookup also tries the other spellings found in the wild:
 *   vision_tower.*, model.vision_tower(.vision_model).*,
 *   model.multi_modal_projector.*, model.language_model.*, lm_head.weight,
 *   and language_model.* without "model." (a bare LlavaModel's state dict).
 */
#ifndef SIMA_FORMATS_WEIGHTS_H
#define SIMA_FORMATS_WEIGHTS_H

#include "safetensors.h"
#include <stddef.h>

/* Find a tensor by canonical name (any spelling is accepted and normalised
 * first; a name of no known component is looked up as it is); NULL when no
 * spelling is present. */
const st_tensor *wt_find(const st_set *set, const char *canonical);
/* Like wt_find, but a missing tensor is an error naming it and the folder. */
const st_tensor *wt_require(const st_set *set, const char *canonical,
                            const char *model_dir);
/* Canonical name of a stored name (into buf); returns buf, or NULL if the
 * name belongs to no known component. */
const char *wt_canonical(const char *stored, char *buf, size_t bufsize);

typedef enum { WT_VISION, WT_PROJECTOR, WT_LANGUAGE, WT_LM_HEAD, WT_OTHER } wt_component;
wt_component wt_component_of(const char *stored);
const char *wt_component_name(wt_component c);

#endif
