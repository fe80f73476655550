/* peft_modules.h — training layer: fully trained modules (the multimodal
 * projector) inside a PEFT adapter folder.
 *
 * The layout is PEFT's `modules_to_save`: adapter_config.json lists the
 * module ("modules_to_save": ["multi_modal_projector"]) and
 * adapter_model.safetensors holds the module's whole tensors next to the
 * LoRA ones, named as PEFT saves them (the ModulesToSaveWrapper's
 * "modules_to_save.default." removed): "base_model.model." + the module's
 * path in LlavaForConditionalGeneration, i.e.
 * base_model.model.model.multi_modal_projector.linear_1.weight [D, C],
 * ... .linear_1.bias [D], ... .linear_2.weight [D, D], ... .linear_2.bias [D].
 * PeftModel.from_pretrained loads them into the wrapped copy of the module.
 * (PEFT src/peft/utils/save_and_load.py get_peft_model_state_dict: each
 * ModulesToSaveWrapper's adapter_state_dict gives the wrapped module's own
 * keys, "linear_1.weight", saved as "<wrapper's path>.<key>"; the path is the
 * module's in the PeftModel, "base_model.model." + its path in the model.)
 */
#ifndef SIMA_TRAIN_PEFT_MODULES_H
#define SIMA_TRAIN_PEFT_MODULES_H

#include <stdbool.h>
#include <stdint.h>

#define PEFT_PROJECTOR_MODULE "multi_modal_projector"

typedef struct {
    const char *name;       /* canonical llava-hf name: multi_modal_projector.linear_1.weight */
    const float *data;      /* F32, rows x cols */
    int64_t rows, cols;     /* a bias is rows 1 and is stored 1-D [cols], as PyTorch has it */
} peft_module_tensor;

/* Add the tensors to DIR/adapter_model.safetensors (rewritten atomically,
 * the LoRA tensors kept) and `module` to adapter_config.json's
 * modules_to_save. */
int peft_add_module(const char *dir, const char *module, const peft_module_tensor *ts, int n);

/* Read tensor `canonical` of a saved module from DIR/adapter_model.safetensors
 * into dst (rows x cols floats; a bias may be stored [cols] or [1, cols]).
 * *found false (and 0 returned) when the adapter does not hold it. */
int peft_read_module_tensor(const char *dir, const char *canonical, int64_t rows, int64_t cols,
                            float *dst, bool *found);

#endif
