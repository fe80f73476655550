/* tiny_llava.c — small random model and random LoRA B for tests. */
#include "tiny_llava.h"
#include "check.h"
#include "err.h"

#include <jansson.h>

int32_t test_text_token(const llava_model *m, uint64_t k)
{
    const cfg_model *c = &m->cfg;
    uint64_t span = c->text.vocab_size > 5 ? (uint64_t)c->text.vocab_size - 3 : 1;
    int32_t id;
    do id = (int32_t)(3 + k++ % span);
    while (span > 2 && (id == c->image_token_index || id == c->pad_token_id ||
                        id == c->text.pad_token_id));
    return id;
}

llava_model *tiny_llava_small(be_backend *be, uint64_t seed)
{
    json_t *root = json_pack(
        "{s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i,s:i,s:i,s:i},s:i}", "text_config",
        "hidden_size", 32, "num_hidden_layers", 2, "num_attention_heads", 4,
        "num_key_value_heads", 2, "intermediate_size", 48, "vocab_size", 40,
        "max_position_embeddings", 64, "vision_config", "hidden_size", 16, "num_hidden_layers", 1,
        "num_attention_heads", 2, "intermediate_size", 32, "image_size", 28, "patch_size", 14,
        "image_token_index", TINY_LLAVA_IMAGE_TOKEN);
    cfg_model cfg;
    llava_model *m = NULL;
    CHECK_OK(cfg_from_json(root, "test shape", &cfg));
    json_decref(root);
    CHECK_OK(llava_random(&cfg, be, seed, &m));
    return m;
}

lora_adapter *tiny_llava_lora(llava_model *m, uint64_t *state)
{
    lora_adapter *ad = NULL;
    lora_config c = lora_config_default();
    c.r = 4;
    c.alpha = 8;
    CHECK_OK(lora_new(m, &c, 3, &ad));
    if (!ad) return NULL;
    tiny_llava_random_B(ad, m, state, 0.2f);
    lora_attach(m, ad);
    return ad;
}

void tiny_llava_random_B(lora_adapter *ad, const llava_model *m, uint64_t *state, float scale)
{
    uint64_t z = *state;
    for (int l = 0; l < ad->n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            float *B = lora_host_B(ad, l, i);
            if (!B) continue;
            int64_t out, in;
            lora_linear_dims(m, i, &out, &in);
            for (int64_t k = 0; k < out * ad->cfg.r; k++) {
                z = z * 6364136223846793005ULL + 1442695040888963407ULL;
                B[k] = (float)((double)(z >> 11) * 0x1.0p-53 - 0.5) * scale;
            }
        }
    *state = z;
    lora_sync(ad);
}
