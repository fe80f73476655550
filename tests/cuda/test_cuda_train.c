/* test_cuda_train.c — a whole LoRA-DPO step on the CUDA backend against the
 * CPU backend: the same random LLaVA (head size 64, so that with bf16/f16
 * weights attention runs on the tensor cores, forward and backward), the
 * same adapter and pairs (a shared prompt with an image, two responses);
 * loss, rewards and every LoRA gradient compared. With f32 weights the
 * bounds are float32 rounding's; with bf16 the half type's (activations
 * and attention probabilities rounded on the way).
 *
 * Built against the CPU emulation of CUDA (runs everywhere) and the real
 * library (skipped without a GPU); SIMA_TEST_DTYPE picks the weight type. */
#include "backend.h"
#include "check.h"
#include "config.h"
#include "dpo.h"
#include "err.h"
#include "lora.h"
#include "tiny_llava.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PROMPT = 44, RESP_C = 40, RESP_R = 36, SIDE = 28 };

static llava_model *model_on(be_backend *be, lora_adapter **ad)
{
    json_t *root = json_pack(
        "{s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i,s:i,s:i,s:i},s:i}", "text_config",
        "hidden_size", 128, "num_hidden_layers", 2, "num_attention_heads", 2,
        "num_key_value_heads", 2, "intermediate_size", 160, "vocab_size", 200,
        "max_position_embeddings", 256, "vision_config", "hidden_size", 32, "num_hidden_layers",
        2, "num_attention_heads", 2, "intermediate_size", 48, "image_size", SIDE, "patch_size", 14,
        "image_token_index", 199);
    cfg_model cfg;
    llava_model *m = NULL;
    CHECK_OK(cfg_from_json(root, "test shape", &cfg));
    json_decref(root);
    CHECK_OK(llava_random(&cfg, be, 11, &m));
    if (!m) return NULL;
    lora_config c = lora_config_default();
    c.r = 8;
    c.alpha = 16;
    CHECK_OK(lora_new(m, &c, 5, ad));
    uint64_t state = 99;
    if (*ad) {
        tiny_llava_random_B(*ad, m, &state, 0.3f);
        lora_attach(m, *ad);
    }
    return m;
}

/* prompt (text, 4 image tokens, text) + response; chosen and rejected share the prompt */
static int32_t *sequence(const llava_model *m, int resp, uint64_t salt)
{
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)(PROMPT + resp));
    for (int i = 0; i < PROMPT + resp; i++)
        ids[i] = test_text_token(m, (uint64_t)i * 37 + (i < PROMPT ? 0 : salt));
    for (int i = 5; i < 5 + m->image_tokens; i++) ids[i] = m->cfg.image_token_index;
    return ids;
}

static float *pixels(void)
{
    float *px = xmalloc(sizeof(float) * 3 * SIDE * SIDE);
    for (int i = 0; i < 3 * SIDE * SIDE; i++) px[i] = (float)((i * 7919) % 2001) / 1000.0f - 1.0f;
    return px;
}

/* max |a - b| over the tensor relative to max |a| */
static double rel_diff(be_backend *ba, be_mat a, be_backend *bb, be_mat b)
{
    int64_t n = a.rows * a.cols;
    float *x = xmalloc(sizeof(float) * (size_t)n), *y = xmalloc(sizeof(float) * (size_t)n);
    ba->download(ba, a, x);
    bb->download(bb, b, y);
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)x[i] - y[i]));
        s = fmax(s, fabs((double)x[i]));
        if (isnan(y[i])) d = INFINITY;
    }
    free(x);
    free(y);
    return d / fmax(s, 1e-30);
}

int main(void)
{
    be_dtype dt = BE_F32;
    const char *env = getenv("SIMA_TEST_DTYPE");
    if (env && *env && be_dtype_parse(env, &dt) != 0) err_exit();
    be_open_opts o;
    be_open_opts_default(&o);
    o.device = "cuda";
    o.weights = dt;
    be_backend *gpu = be_open(&o);
    if (!gpu) {
        printf("SKIP: %s\n", err_msg());
        return 77;
    }
    be_backend *cpu = be_cpu_new(0);
    lora_adapter *ad_c = NULL, *ad_g = NULL;
    llava_model *mc = model_on(cpu, &ad_c), *mg = model_on(gpu, &ad_g);
    if (!mc || !mg || !ad_c || !ad_g) return check_finish();
    int32_t *ch = sequence(mc, RESP_C, 1), *rj = sequence(mc, RESP_R, 2);
    dpo_pair pair = {ch, rj, PROMPT + RESP_C, PROMPT + RESP_R, PROMPT, 0, false, 0, 0, 0, 0};
    float *px = pixels();
    dpo_opts opts = dpo_opts_default();
    llama_grads gc, gg;
    llama_grads_new(mc, LLAMA_GRAD_LORA, &gc);
    llama_grads_new(mg, LLAMA_GRAD_LORA, &gg);
    llama_grads_zero(mc, &gc);
    llama_grads_zero(mg, &gg);
    dpo_result rc, rg;
    CHECK_OK(dpo_step(mc, &pair, 1, px, 1, &opts, &gc, &rc));
    CHECK_OK(dpo_step(mg, &pair, 1, px, 1, &opts, &gg, &rg));
    double tol_lp = dt == BE_F32 ? 1e-4 : 2e-2, tol_g = dt == BE_F32 ? 1e-4 : 5e-2; /* seen: 1.5e-6, 1.8e-2 */
    printf("CUDA (%s weights) vs CPU: loss %.6f vs %.6f, policy chosen %.4f vs %.4f\n",
           be_dtype_name(dt), rg.loss, rc.loss, rg.policy_chosen[0], rc.policy_chosen[0]);
    CHECK_NEAR(rg.policy_chosen[0], rc.policy_chosen[0], tol_lp * fabs(rc.policy_chosen[0]));
    CHECK_NEAR(rg.policy_rejected[0], rc.policy_rejected[0], tol_lp * fabs(rc.policy_rejected[0]));
    CHECK_NEAR(rg.ref_chosen[0], rc.ref_chosen[0], tol_lp * fabs(rc.ref_chosen[0]));
    CHECK_NEAR(rg.loss, rc.loss, tol_lp * fmax(fabs(rc.loss), 1.0));
    double worst = 0;
    for (int l = 0; l < mc->lm.n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            if (!gc.layers[l].lora_A[i].data) continue;
            double a = rel_diff(cpu, gc.layers[l].lora_A[i], gpu, gg.layers[l].lora_A[i]);
            double b = rel_diff(cpu, gc.layers[l].lora_B[i], gpu, gg.layers[l].lora_B[i]);
            CHECK_MSG(a <= tol_g && b <= tol_g, "layer %d linear %d: LoRA gradients differ by %.3g "
                      "(A) and %.3g (B) of their largest value (bound %.3g)", l, i, a, b, tol_g);
            worst = fmax(worst, fmax(a, b));
        }
    printf("LoRA gradients: worst difference %.3g of the tensor's largest value (bound %.3g)\n",
           worst, tol_g);
    dpo_result_free(&rc);
    dpo_result_free(&rg);
    llama_grads_free(mc, &gc);
    llama_grads_free(mg, &gg);
    lora_detach(mc);
    lora_detach(mg);
    lora_free(ad_c);
    lora_free(ad_g);
    llava_free(mc);
    llava_free(mg);
    free(ch);
    free(rj);
    free(px);
    gpu->destroy(gpu);
    cpu->destroy(cpu);
    return check_finish();
}
