/* tiny_llava.h — the small random LLaVA model and random LoRA B that the
 * training tests and the DPO shape benchmark build. */
#ifndef SIMA_TEST_TINY_LLAVA_H
#define SIMA_TEST_TINY_LLAVA_H

#include "lora.h"

#include <stdint.h>

/* Image token id of tiny_llava_small (the last of its 40 ids). */
enum { TINY_LLAVA_IMAGE_TOKEN = 39 };

/* A plain text token of m's vocabulary for any index k: ids spread over
 * [3, vocab_size) (past <unk> <s> </s>), never the image or pad token, so
 * that test prompts fit any model. */
int32_t test_text_token(const llava_model *m, uint64_t k);

/* A random model from `seed`: text hidden 32, 2 layers, 4 heads (2 KV),
 * FFN 48, vocab 40, 64 positions; vision hidden 16, 1 layer, 2 heads, FFN 32,
 * 28x28 images of 14x14 patches. Checks and records failures; NULL then. */
llava_model *tiny_llava_small(be_backend *be, uint64_t seed);

/* Fills every B of ad (out x r floats per term; lora_new leaves them 0) with
 * scale * U[-0.5, 0.5) from the 64-bit LCG in *state, advanced in place so a
 * test's later draws go on from it, and syncs the adapter. */
void tiny_llava_random_B(lora_adapter *ad, const llava_model *m, uint64_t *state, float scale);

/* A LoRA adapter on m (r 4, alpha 8, A from seed 3), B from
 * tiny_llava_random_B(scale 0.2) with *state, attached to m. Checks and
 * records failures; NULL then. */
lora_adapter *tiny_llava_lora(llava_model *m, uint64_t *state);

#endif
