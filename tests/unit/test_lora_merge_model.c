/* test_lora_merge_model.c — lora_write_merged_model (what sima-dpo --merge
 * writes): the merged folder loads with llava_load and scores every token
 * as the base model with the adapter attached does (to float tolerance),
 * while the base alone scores differently (the adapter is not a no-op).
 * The folder holds the config and tokenizer files and no shard index. */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "lora.h"
#include "lora_merge.h"
#include "sampling.h"
#include "tiny_llava.h"
#include "train_pass.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* B is zero after lora_new: give it random values so the merge matters. */
static void randomize_B(lora_adapter *ad, const llava_model *m)
{
    smp_rng rng;
    smp_rng_seed(&rng, 7);
    for (int l = 0; l < ad->n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            float *B = lora_host_B(ad, l, i);
            if (!B) continue;
            int64_t out, in;
            lora_linear_dims(m, i, &out, &in);
            for (int64_t j = 0; j < out * ad->cfg.r; j++)
                B[j] = (float)(0.2 * (smp_rng_uniform(&rng) - 0.5));
        }
    lora_sync(ad);
}

/* Per-token log-probs of one text-only sequence. */
static float *score(llava_model *m, const int32_t *ids, int64_t n, int64_t *n_tok)
{
    train_seq s = {ids, n, 1, -1, false, 0, 0};
    train_pass p;
    CHECK_OK(train_pass_run(m, &s, 1, NULL, 0, TRAIN_SCORE_ONLY, &p));
    *n_tok = p.tok_off[1];
    float *v = xmalloc(sizeof(float) * (size_t)*n_tok);
    for (int64_t t = 0; t < *n_tok; t++) v[t] = p.tok_logp[t];
    train_pass_free(&p);
    return v;
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

int main(void)
{
    char *model_dir = golden_path("tiny-llava");
    char *dir = test_tmpdir("merged");
    be_backend *be = be_cpu_new(0);
    llava_model *m = NULL, *merged = NULL;
    lora_adapter *ad = NULL;
    CHECK_OK(llava_load(model_dir, be, &m));
    lora_config c = lora_config_default();
    c.r = 4;
    c.alpha = 8;
    CHECK_OK(lora_new(m, &c, 1, &ad));
    if (!m || !ad) return check_finish();
    randomize_B(ad, m);

    CHECK_OK(lora_write_merged_model(ad, model_dir, dir));
    const char *want[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                          "model.safetensors"};
    for (int i = 0; i < 4; i++) {
        char *p = fs_join(dir, want[i]);
        CHECK_MSG(fs_is_file(p), "%s missing from the merged folder", want[i]);
        free(p);
    }
    char *idx = fs_join(dir, "model.safetensors.index.json");
    CHECK_MSG(!fs_is_file(idx), "the base model's shard index was copied");
    free(idx);
    CHECK_OK(llava_load(dir, be, &merged));
    if (!merged) return check_finish();

    int32_t ids[24];
    ids[0] = m->cfg.text.bos_token_id;
    for (int i = 1; i < 24; i++) ids[i] = test_text_token(m, (uint64_t)(i * 37));
    int64_t n1, n2, n3;
    float *base = score(m, ids, 24, &n1);
    lora_attach(m, ad);
    float *with = score(m, ids, 24, &n2);
    float *mer = score(merged, ids, 24, &n3);
    if (CHECK_EQ(n1, n2) && CHECK_EQ(n2, n3)) {
        double d_merge = max_diff(with, mer, n2), d_base = max_diff(base, with, n1);
        printf("merged vs base+adapter: max |dlogp| %.3g; base vs base+adapter: %.3g\n", d_merge,
               d_base);
        CHECK_MSG(d_merge <= 1e-4, "merged model scores differ from base + adapter by %.3g", d_merge);
        CHECK_MSG(d_base >= 1e-2, "the adapter changes nothing (%.3g): the test proves nothing", d_base);
    }
    free(base);
    free(with);
    free(mer);
    lora_detach(m);
    lora_free(ad);
    llava_free(m);
    llava_free(merged);
    be->destroy(be);
    free(model_dir);
    free(dir);
    return check_finish();
}
