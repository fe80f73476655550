/* perf_dpo_shape — LoRA DPO training speed on the benchmark shape of
 * perf_model (LLaMA 512 wide, 8 layers, vocab 32000; random weights from
 * llava_random) with a random LoRA adapter (B != 0) on synthetic text-only
 * pairs (a shared prompt + a chosen and a rejected response). One step is
 * what sima-dpo does per micro-batch: the reference log-probs (adapter off),
 * the policy forward and the backward into the LoRA gradients (dpo_step).
 * Prints training tokens/s, step time, peak RSS and the share of the step
 * spent in the backend's GEMMs (linear, linear_dx, linear_dw, timed by
 * wrapping the backend's function pointers here).
 *
 * --image: each pair's prompt starts with an image's tokens (one random
 * image per micro-batch through the small CLIP tower and the projector);
 * --projector: that, and the projector trained too (sima-dpo
 * --train-projector: CLIP forward only, projector gradients; the reference
 * is given, as sima-dpo scores it once before training). Compare the two
 * for the projector's cost.
 *
 *   perf_dpo_shape [--hidden N] [--layers N] [--heads N] [--kv-heads N] [--ffn N]
 *                  [--vocab N] [--prompt N] [--response N] [--micro N] [--r N]
 *                  [--steps N] [--threads N] [--ref-given] [--image] [--projector]
 */
#include "config.h"
#include "dpo.h"
#include "err.h"
#include "lora.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
    int hidden, layers, heads, kv_heads, ffn, vocab;
    int prompt, response, micro, r, steps, threads, ref_given, image, projector;
} shape_args;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --- GEMM timing: the backend's linear ops, wrapped ----------------------- */

static struct {
    void (*linear)(be_backend *, be_mat, be_mat, const be_weight *, const be_weight *, bool);
    void (*linear_dx)(be_backend *, be_mat, be_mat, const be_weight *);
    void (*linear_dw)(be_backend *, be_mat, be_mat, be_mat, be_mat);
    double seconds;
    double flops;
} gemm;

static void timed_linear(be_backend *be, be_mat y, be_mat x, const be_weight *w,
                         const be_weight *bias, bool acc)
{
    double t0 = now();
    gemm.linear(be, y, x, w, bias, acc);
    gemm.seconds += now() - t0;
    gemm.flops += 2.0 * (double)x.rows * (double)x.cols * (double)y.cols;
}

static void timed_linear_dx(be_backend *be, be_mat dx, be_mat dy, const be_weight *w)
{
    double t0 = now();
    gemm.linear_dx(be, dx, dy, w);
    gemm.seconds += now() - t0;
    gemm.flops += 2.0 * (double)dy.rows * (double)dy.cols * (double)dx.cols;
}

static void timed_linear_dw(be_backend *be, be_mat dw, be_mat db, be_mat dy, be_mat x)
{
    double t0 = now();
    gemm.linear_dw(be, dw, db, dy, x);
    gemm.seconds += now() - t0;
    gemm.flops += 2.0 * (double)dy.rows * (double)dw.rows * (double)dw.cols;
}

static void wrap_gemms(be_backend *be)
{
    gemm.linear = be->linear;
    gemm.linear_dx = be->linear_dx;
    gemm.linear_dw = be->linear_dw;
    be->linear = timed_linear;
    be->linear_dx = timed_linear_dx;
    be->linear_dw = timed_linear_dw;
}

/* --- model, adapter, pairs ----------------------------------------------- */

static int shape_config(const shape_args *a, cfg_model *cfg)
{
    json_t *root = json_pack(
        "{s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i,s:i,s:i,s:i},s:i}", "text_config",
        "hidden_size", a->hidden, "num_hidden_layers", a->layers, "num_attention_heads", a->heads,
        "num_key_value_heads", a->kv_heads, "intermediate_size", a->ffn, "vocab_size", a->vocab,
        "max_position_embeddings", 4096, "vision_config", "hidden_size", 64, "num_hidden_layers",
        1, "num_attention_heads", 2, "intermediate_size", 128, "image_size", 28, "patch_size", 14,
        "image_token_index", a->vocab - 1);
    if (!root) return ERR("cannot build the benchmark config");
    int rc = cfg_from_json(root, "benchmark shape", cfg);
    json_decref(root);
    return rc;
}

/* Small random B for every term, so the adapter changes the outputs. */
static void random_B(lora_adapter *ad, const llava_model *m)
{
    uint64_t z = 12345;
    for (int l = 0; l < ad->n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            float *B = lora_host_B(ad, l, i);
            if (!B) continue;
            int64_t out, in;
            lora_linear_dims(m, i, &out, &in);
            for (int64_t k = 0; k < out * ad->cfg.r; k++) {
                z = z * 6364136223846793005ULL + 1442695040888963407ULL;
                B[k] = (float)((double)(z >> 11) * 0x1.0p-53 - 0.5) * 0.02f;
            }
        }
    lora_sync(ad);
}

static int32_t *random_ids(int64_t n, int vocab, uint64_t seed)
{
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int32_t)(2 + (seed >> 33) % (uint64_t)(vocab - 3)); /* no BOS/EOS/image */
    }
    return ids;
}

/* With --image: the prompt's first n_img_tok tokens are image tokens. */
static dpo_pair *synthetic_pairs(const shape_args *a, int n_img_tok)
{
    dpo_pair *p = xcalloc((size_t)a->micro, sizeof *p);
    int64_t n = a->prompt + a->response;
    for (int i = 0; i < a->micro; i++) {
        int32_t *c = random_ids(n, a->vocab, 2 * (uint64_t)i + 1);
        int32_t *r = random_ids(n, a->vocab, 2 * (uint64_t)i + 2);
        for (int k = 0; a->image && k < n_img_tok; k++) c[k] = a->vocab - 1; /* image_token_index */
        memcpy(r, c, sizeof(int32_t) * (size_t)a->prompt); /* the shared prompt */
        p[i] = (dpo_pair){c, r, n, n, a->prompt, a->image ? 0 : -1, a->ref_given != 0, -20.0, -21.0, 0, 0};
    }
    return p;
}

/* --- the benchmark -------------------------------------------------------- */

static int one_step(llava_model *m, const dpo_pair *pairs, const shape_args *a, llama_grads *g,
                    vision_grads *vg, const float *pixels, double *seconds)
{
    dpo_opts o = dpo_opts_default();
    dpo_result r;
    double t0 = now();
    llama_grads_zero(m, g);
    vision_grads_zero(m, vg);
    int mode = TRAIN_FOR_BACKWARD | (a->projector ? TRAIN_WITH_PROJECTOR : 0);
    if (dpo_step_mode(m, pairs, a->micro, pixels, pixels ? 1 : 0, &o, mode, g, vg, &r) != 0)
        return -1;
    *seconds = now() - t0;
    dpo_result_free(&r);
    return 0;
}

static int run(const shape_args *a)
{
    cfg_model cfg;
    if (shape_config(a, &cfg) != 0) return -1;
    be_backend *be = be_cpu_new(a->threads);
    llava_model *m = NULL;
    lora_adapter *ad = NULL;
    if (llava_random(&cfg, be, 1, &m) != 0) return -1;
    lora_config lc = lora_config_default();
    lc.r = a->r;
    lc.alpha = 2.0 * a->r;
    if (lora_new(m, &lc, 1, &ad) != 0) return -1;
    random_B(ad, m);
    lora_attach(m, ad);
    llama_grads g;
    llama_grads_new(m, LLAMA_GRAD_LORA, &g);
    vision_grads vg = {0};
    if (a->projector) vision_grads_new_projector(m, &vg);
    float *pixels = NULL;
    if (a->image) {
        int64_t n_px = 3 * (int64_t)cfg.vision.image_size * cfg.vision.image_size;
        pixels = xmalloc(sizeof(float) * (size_t)n_px);
        for (int64_t i = 0; i < n_px; i++) pixels[i] = (float)((i * 7919) % 200) / 100.0f - 1.0f;
    }
    dpo_pair *pairs = synthetic_pairs(a, m->image_tokens);
    wrap_gemms(be);

    double warm, total = 0, best = 1e300, s;
    int rc = one_step(m, pairs, a, &g, &vg, pixels, &warm);
    gemm.seconds = gemm.flops = 0;
    for (int i = 0; rc == 0 && i < a->steps; i++) {
        rc = one_step(m, pairs, a, &g, &vg, pixels, &s);
        total += s;
        if (s < best) best = s;
    }
    if (rc == 0) {
        const cfg_text *t = &cfg.text;
        double tokens = 2.0 * a->micro * (a->prompt + a->response);
        double mean = total / a->steps;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        char threads[16] = "default";
        if (a->threads > 0) snprintf(threads, sizeof threads, "%d", a->threads);
        printf("shape: LLaMA %d wide, %d layers, %d/%d heads, FFN %d, vocab %d; LoRA r %d on "
               "q,k,v,o,gate,up,down; threads: %s\n", t->hidden_size, t->num_hidden_layers,
               t->num_attention_heads, t->num_key_value_heads, t->intermediate_size, t->vocab_size,
               a->r, threads);
        printf("step: %d pair(s) of %d prompt + %d response tokens, reference %s%s\n", a->micro,
               a->prompt, a->response, a->ref_given ? "given" : "computed (adapter off)",
               a->projector ? "; image; projector trained (--train-projector)"
                            : a->image ? "; image; projector frozen" : "");
        printf("step time: mean %.1f ms, best %.1f ms over %d steps (first step %.1f ms)\n",
               1e3 * mean, 1e3 * best, a->steps, 1e3 * warm);
        printf("training tokens/s: %.0f (chosen + rejected tokens per step / mean step time)\n",
               tokens / mean);
        printf("GEMM (linear, linear_dx, linear_dw): %.1f ms/step, %.1f%% of the step, %.1f GFLOP/s\n",
               1e3 * gemm.seconds / a->steps, 100.0 * gemm.seconds / total,
               gemm.flops / gemm.seconds * 1e-9);
        printf("peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    }
    for (int i = 0; i < a->micro; i++) {
        free((void *)pairs[i].chosen);
        free((void *)pairs[i].rejected);
    }
    free(pairs);
    free(pixels);
    vision_grads_free(m, &vg);
    llama_grads_free(m, &g);
    lora_detach(m);
    lora_free(ad);
    llava_free(m);
    be->destroy(be);
    return rc;
}

int main(int argc, char **argv)
{
    shape_args a = {512, 8, 8, 8, 1376, 32000, 320, 64, 1, 16, 3, 0, 0, 0, 0};
    static struct option opts[] = {
        {"hidden", 1, 0, 'H'}, {"layers", 1, 0, 'L'}, {"heads", 1, 0, 'h'},
        {"kv-heads", 1, 0, 'k'}, {"ffn", 1, 0, 'F'}, {"vocab", 1, 0, 'V'},
        {"prompt", 1, 0, 'p'}, {"response", 1, 0, 'R'}, {"micro", 1, 0, 'm'},
        {"r", 1, 0, 'r'}, {"steps", 1, 0, 's'}, {"threads", 1, 0, 't'},
        {"ref-given", 0, 0, 'g'}, {"image", 0, 0, 'I'}, {"projector", 0, 0, 'P'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int v = optarg ? atoi(optarg) : 1;
        if (c != 'g' && c != 'I' && c != 'P' && v < 1) {
            fprintf(stderr, "perf_dpo_shape: --%s needs a positive integer\n", argv[optind - 1]);
            return 2;
        }
        switch (c) {
        case 'H': a.hidden = v; break;
        case 'L': a.layers = v; break;
        case 'h': a.heads = v; break;
        case 'k': a.kv_heads = v; break;
        case 'F': a.ffn = v; break;
        case 'V': a.vocab = v; break;
        case 'p': a.prompt = v; break;
        case 'R': a.response = v; break;
        case 'm': a.micro = v; break;
        case 'r': a.r = v; break;
        case 's': a.steps = v; break;
        case 't': a.threads = v; break;
        case 'g': a.ref_given = 1; break;
        case 'I': a.image = 1; break;
        case 'P': a.image = a.projector = 1; break;
        default: fprintf(stderr, "usage: see the comment at the top of perf_dpo_shape.c\n"); return 2;
        }
    }
    if (run(&a) != 0) err_exit();
    return 0;
}
