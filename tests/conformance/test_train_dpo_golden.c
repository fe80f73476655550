/* test_train_dpo_golden.c — LoRA DPO against transformers + PEFT.
 * With the golden adapter loaded, for every pair under golden.h5/dpo: policy
 * and reference log-probs per token and summed, each pair's loss and the
 * mean loss (1e-4 relative); every LoRA gradient under /dpo/grads (1e-3 of
 * the tensor's largest magnitude); the merged layer-0 q_proj. Also: a saved
 * adapter loads back identical, and the engine's forward applies it. */
#include "check.h"
#include "test_backend.h"
#include "dpo.h"
#include "err.h"
#include "golden.h"
#include "lora.h"
#include "safetensors.h"
#include "weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t *read_ids(hid_t f, const char *path, int64_t *n)
{
    int64_t dims[8];
    int nd;
    int64_t *v = gh5_read_i64(f, path, dims, &nd);
    if (!v) DIE("%s missing in golden.h5", path);
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)dims[0]);
    for (int64_t i = 0; i < dims[0]; i++) ids[i] = (int32_t)v[i];
    free(v);
    *n = dims[0];
    return ids;
}

static double attr(hid_t f, const char *obj, const char *name)
{
    double v = 0;
    if (gh5_attr_double(f, obj, name, &v) != 0) DIE("attribute %s of %s missing", name, obj);
    return v;
}

static void check_rel(const char *what, double got, double ref)
{
    CHECK_MSG(fabs(got - ref) <= 1e-4 * fabs(ref) + 1e-6, "%s: %.8g vs %.8g", what, got, ref);
}

/* Per-token log-probs of sequence s of a pass against a reference dataset. */
static void check_tokens(hid_t f, const char *path, const train_pass *p, int s)
{
    int64_t n = p->tok_off[s + 1] - p->tok_off[s];
    float *ref = gh5_read_f32_n(f, path, n);
    if (!CHECK_MSG(ref != NULL, "%s: missing or not %lld tokens", path, (long long)n)) return;
    double worst = 0;
    for (int64_t t = 0; t < n; t++) {
        double d = fabs(p->tok_logp[p->tok_off[s] + t] - ref[t]) / (1e-4 * fabs(ref[t]) + 1e-5);
        worst = d > worst ? d : worst;
    }
    CHECK_MSG(worst <= 1.0, "%s: per-token log-probs off by %.3g x tolerance", path, worst);
    free(ref);
}

/* max |got - ref| / max |ref| over a tensor */
static double rel_to_max(const float *got, const float *ref, int64_t n)
{
    double mx = 0, d = 0;
    for (int64_t i = 0; i < n; i++) {
        mx = fabs(ref[i]) > mx ? fabs(ref[i]) : mx;
        double e = fabs((double)got[i] - ref[i]);
        d = e > d ? e : d;
    }
    return mx > 0 ? d / mx : d;
}

/* The gradient matrix for a PEFT name (with or without ".default"). */
static be_mat *grad_for(llava_model *m, llama_grads *g, const char *name)
{
    char want[256], buf[256];
    snprintf(want, sizeof want, "%s", name);
    char *def = strstr(want, ".default.");
    if (def) memmove(def, def + 8, strlen(def + 8) + 1);
    for (int l = 0; l < m->lm.n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++)
            for (int ab = 0; ab < 2; ab++) {
                lora_peft_name(l, i, ab ? 'B' : 'A', buf, sizeof buf);
                if (!strcmp(buf, want)) return ab ? &g->layers[l].lora_B[i] : &g->layers[l].lora_A[i];
            }
    return NULL;
}

static void check_grads(hid_t f, llava_model *m, llama_grads *g)
{
    size_t n;
    char **names = gh5_list(f, "/dpo/grads", &n);
    CHECK_MSG(n > 0, "no gradients under /dpo/grads");
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        char path[400];
        snprintf(path, sizeof path, "/dpo/grads/%s", names[i]);
        be_mat *gm = grad_for(m, g, names[i]);
        CHECK_MSG(gm && gm->data, "%s: no such LoRA gradient here", names[i]);
        if (!gm || !gm->data) continue;
        int64_t dims[8];
        int nd;
        float *ref = gh5_read_f32(f, path, dims, &nd);
        if (!CHECK_MSG(ref && nd == 2 && dims[0] == gm->rows && dims[1] == gm->cols,
                       "%s: not [%lld, %lld]", names[i], (long long)gm->rows, (long long)gm->cols)) {
            free(ref);
            continue;
        }
        float *got = xmalloc(sizeof(float) * (size_t)(gm->rows * gm->cols));
        m->be->download(m->be, *gm, got);
        double e = rel_to_max(got, ref, gm->rows * gm->cols);
        worst = e > worst ? e : worst;
        CHECK_MSG(e <= 1e-3, "%s: gradient off by %.3g of its max magnitude", names[i], e);
        free(got);
        free(ref);
    }
    printf("dpo: %zu LoRA gradients, worst error %.3g of the tensor's max magnitude\n", n, worst);
    gh5_free_list(names, n);
}

static void check_merge(hid_t f, llava_model *m, lora_adapter *ad)
{
    const be_weight *w = &m->lm.layers[0].q;
    float *ref = gh5_read_f32_n(f, "/dpo/merged_layer0_q_proj", w->rows * w->cols);
    if (!ref) return;
    if (!CHECK_MSG(lora_host_A(ad, 0, LL_Q) != NULL, "merged q_proj given, but q is not adapted")) {
        free(ref);
        return;
    }
    float *W = xmalloc(sizeof(float) * (size_t)(w->rows * w->cols));
    m->be->weight_get(m->be, w, W);
    lora_merge_term(W, lora_host_A(ad, 0, LL_Q), lora_host_B(ad, 0, LL_Q), ad->cfg.r, w->rows,
                    w->cols, ad->terms[0].t[LL_Q].scale, W);
    int64_t bad = 0;
    for (int64_t i = 0; i < w->rows * w->cols; i++) bad += !(fabs(W[i] - ref[i]) <= 1e-5 + 1e-5 * fabs(ref[i]));
    CHECK_MSG(bad == 0, "merged q_proj: %lld values differ", (long long)bad);
    free(W);
    free(ref);
}

/* Save the adapter, load it back: same tensors, same config. */
static void check_roundtrip(llava_model *m, lora_adapter *ad)
{
    char *dir = test_tmpdir("lora");
    char *sub = xmalloc(strlen(dir) + 16);
    sprintf(sub, "%s/adapter", dir);
    CHECK_OK(lora_save_peft(ad, sub, "tiny-llava"));
    lora_adapter *back = NULL;
    CHECK_OK(lora_load_peft(m, sub, &back));
    if (back) {
        CHECK_EQ(back->cfg.r, ad->cfg.r);
        CHECK_EQ(back->cfg.targets, ad->cfg.targets);
        CHECK_NEAR(back->cfg.alpha, ad->cfg.alpha, 0);
        int same = 1;
        for (int l = 0; l < ad->n_layers; l++)
            for (int i = 0; i < LL_N_LINEAR; i++) {
                int64_t o, in;
                lora_linear_dims(m, i, &o, &in);
                if (!lora_host_A(ad, l, i) || !lora_host_A(back, l, i)) { /* not targeted */
                    same &= !lora_host_A(ad, l, i) && !lora_host_A(back, l, i);
                    continue;
                }
                same &= !memcmp(lora_host_A(ad, l, i), lora_host_A(back, l, i), sizeof(float) * ad->cfg.r * in);
                same &= !memcmp(lora_host_B(ad, l, i), lora_host_B(back, l, i), sizeof(float) * ad->cfg.r * o);
            }
        CHECK_MSG(same, "adapter saved and loaded back differs");
        lora_free(back);
    }
    free(sub);
    free(dir);
}

int main(void)
{
    hid_t f = gh5_open();
    if (!gh5_exists(f, "/dpo")) {
        printf("golden.h5 has no /dpo: skipped\n");
        return 77;
    }
    char *model_dir = golden_path("tiny-llava"), *lora_dir = golden_path("tiny-llava-lora");
    be_backend *be = test_backend_new();
    llava_model *m = NULL;
    lora_adapter *ad = NULL;
    CHECK_OK(llava_load(model_dir, be, &m));
    CHECK_OK(lora_load_peft(m, lora_dir, &ad));
    if (!m || !ad) return check_finish();
    CHECK_EQ(ad->cfg.r, (long long)attr(f, "/dpo", "lora_r"));
    CHECK_NEAR(ad->cfg.alpha, attr(f, "/dpo", "lora_alpha"), 0);
    lora_attach(m, ad);

    size_t n_all;
    char **groups = gh5_list(f, "/dpo", &n_all);
    dpo_pair *pairs = xcalloc(n_all, sizeof *pairs);
    char **pair_names = xcalloc(n_all, sizeof *pair_names);
    int n = 0, S = m->cfg.vision.image_size;
    float *pixels = xmalloc(sizeof(float) * n_all * 3 * S * S);
    for (size_t i = 0; i < n_all; i++) {
        if (strncmp(groups[i], "pair", 4)) continue;
        char path[300];
        int64_t np;
        int n_img;
        snprintf(path, sizeof path, "/dpo/%s/pixel_values", groups[i]);
        float *px = gh5_read_pixels(f, path, S, &n_img);
        if (!CHECK_MSG(n_img == 1, "%s: one image expected, found %d", path, n_img)) {
            free(px);
            continue;
        }
        memcpy(pixels + (size_t)n * 3 * S * S, px, sizeof(float) * 3 * S * S);
        free(px);
        snprintf(path, sizeof path, "/dpo/%s/prompt_ids", groups[i]);
        free(read_ids(f, path, &np));
        snprintf(path, sizeof path, "/dpo/%s/chosen_ids", groups[i]);
        pairs[n].chosen = read_ids(f, path, &pairs[n].n_chosen);
        snprintf(path, sizeof path, "/dpo/%s/rejected_ids", groups[i]);
        pairs[n].rejected = read_ids(f, path, &pairs[n].n_rejected);
        pairs[n].n_prompt = np;
        pairs[n].image = n;
        pair_names[n++] = groups[i];
    }
    if (!CHECK_MSG(n > 0, "no usable pairs under /dpo")) return check_finish();
    dpo_opts o = dpo_opts_default();
    o.beta = attr(f, "/dpo", "beta");
    llama_grads g;
    llama_grads_new(m, LLAMA_GRAD_LORA, &g);
    dpo_result r;
    CHECK_OK(dpo_step(m, pairs, n, pixels, n, &o, &g, &r));
    for (int i = 0; i < n; i++) {
        char obj[300], path[400];
        snprintf(obj, sizeof obj, "/dpo/%s", pair_names[i]);
        check_rel("policy_chosen_logp", r.policy_chosen[i], attr(f, obj, "policy_chosen_logp"));
        check_rel("policy_rejected_logp", r.policy_rejected[i], attr(f, obj, "policy_rejected_logp"));
        check_rel("ref_chosen_logp", r.ref_chosen[i], attr(f, obj, "ref_chosen_logp"));
        check_rel("ref_rejected_logp", r.ref_rejected[i], attr(f, obj, "ref_rejected_logp"));
        check_rel("pair loss", r.pair_loss[i], attr(f, obj, "loss"));
        const char *kinds[4] = {"policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected"};
        for (int k = 0; k < 4; k++) {
            snprintf(path, sizeof path, "%s/%s_token_logp", obj, kinds[k]);
            check_tokens(f, path, k < 2 ? &r.policy : &r.ref, 2 * i + (k & 1));
        }
    }
    check_rel("mean loss", r.loss, attr(f, "/dpo", "mean_loss"));
    printf("dpo: %d pairs, mean loss %.7f (reference %.7f)\n", n, r.loss, attr(f, "/dpo", "mean_loss"));
    check_grads(f, m, &g);
    check_merge(f, m, ad);
    check_roundtrip(m, ad);

    /* the inference forward (llama_forward) applies the adapter too: its
     * scores equal the training forward's */
    train_pass inf;
    train_seq *seqs = xcalloc((size_t)n, sizeof *seqs);
    for (int i = 0; i < n; i++)
        seqs[i] = (train_seq){pairs[i].chosen, pairs[i].n_chosen, pairs[i].n_prompt, i, false, 0, 0};
    CHECK_OK(train_pass_run(m, seqs, n, pixels, n, TRAIN_SCORE_ONLY, &inf));
    for (int i = 0; i < n; i++) check_rel("inference-path policy_chosen", inf.seq_logp[i], r.policy_chosen[i]);
    train_pass_free(&inf);
    free(seqs);
    dpo_result_free(&r);
    llama_grads_free(m, &g);
    for (int i = 0; i < n; i++) {
        free((void *)pairs[i].chosen);
        free((void *)pairs[i].rejected);
    }
    free(pairs);
    free(pair_names);
    free(pixels);
    gh5_free_list(groups, n_all);
    lora_detach(m);
    lora_free(ad);
    llava_free(m);
    be->destroy(be);
    free(model_dir);
    free(lora_dir);
    H5Fclose(f);
    return check_finish();
}
