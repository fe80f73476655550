/* perf_dpo_shape — LoRA DPO training speed on the benchmark shape of
 * perf_model (LLaMA 512 wide, 8 layers, vocab 32000; random weights from
 * llava_random) with a random LoRA adapter (B != 0) on synthetic pairs: a
 * shared prompt (text around --image-tokens image tokens, 576 by default as
 * LLaVA-1.5's 336 px / 14 px patches; a small 1-layer CLIP makes the
 * features) + a chosen and a rejected response. One step is what sima-dpo
 * does per micro-batch: the reference log-probs (adapter off), the policy
 * forward and the backward into the LoRA gradients (dpo_step).
 * Prints, with the pair's prompt computed once (train_pass's sharing) and
 * with both sequences packed whole: training tokens/s, step time, the rows
 * per forward and the share saved, peak RSS and the share of the step spent
 * in the backend's GEMMs (linear, linear_dx, linear_dw, timed by wrapping
 * the backend's function pointers here).
 *
 *   perf_dpo_shape [--hidden N] [--layers N] [--heads N] [--kv-heads N] [--ffn N]
 *                  [--vocab N] [--prompt N] [--image-tokens N] [--response N]
 *                  [--micro N] [--r N] [--steps N] [--threads N] [--ref-given]
 *                  [--sharing both|on|off] [--projector]
 *                  [--device cpu|cuda] [--dtype bf16|f16|f32] [--peak-tflops X]
 * On a GPU (--device cuda) it also prints the matrix products' FLOP rate and
 * its share of the card's bf16 dense peak (--peak-tflops, default 989: an
 * H100 SXM), the model FLOP utilisation counted from the products alone
 * (attention not counted), and the backend's peak device memory.
 * --prompt counts the prompt's text tokens; --image-tokens 0: text only
 * (otherwise a square number: (image_size / 14)^2). --projector: the
 * projector trained too (sima-dpo --train-projector: CLIP forward only,
 * projector gradients; the reference given, as sima-dpo scores it once
 * before training); compare with --ref-given for the projector's cost.
 */
#include "config.h"
#include "dpo.h"
#include "err.h"
#include "lora.h"
#include "tiny_llava.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
    int hidden, layers, heads, kv_heads, ffn, vocab;
    int prompt, response, micro, r, steps, threads, ref_given;
    int image_tokens;       /* per prompt; 0: text only */
    int sharing;            /* 0 off, 1 on, 2 both */
    int projector;          /* train the projector too */
    be_open_opts dev;       /* --device, --dtype */
    double peak_tflops;     /* the GPU's bf16 dense peak, for the utilisation */
} shape_args;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of all the process's threads: on a shared machine, less
 * disturbed by other jobs than the wall time. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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

/* Image side: image_size = sqrt(image tokens) * 14 (28 px for text only). */
static int image_side(const shape_args *a)
{
    int side = (int)lround(sqrt((double)a->image_tokens));
    return a->image_tokens > 0 ? side * 14 : 28;
}

static int shape_config(const shape_args *a, cfg_model *cfg)
{
    json_t *root = json_pack(
        "{s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i,s:i,s:i,s:i},s:i}", "text_config",
        "hidden_size", a->hidden, "num_hidden_layers", a->layers, "num_attention_heads", a->heads,
        "num_key_value_heads", a->kv_heads, "intermediate_size", a->ffn, "vocab_size", a->vocab,
        "max_position_embeddings", 4096, "vision_config", "hidden_size", 64, "num_hidden_layers",
        1, "num_attention_heads", 2, "intermediate_size", 128, "image_size", image_side(a), "patch_size", 14,
        "image_token_index", a->vocab - 1);
    if (!root) return ERR("cannot build the benchmark config");
    int rc = cfg_from_json(root, "benchmark shape", cfg);
    json_decref(root);
    return rc;
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

/* Pair i: prompt = first half of its text, the image tokens (pair i's
 * image), the rest of the text; then the responses. */
static dpo_pair *synthetic_pairs(const shape_args *a)
{
    dpo_pair *p = xcalloc((size_t)a->micro, sizeof *p);
    int64_t n_prompt = a->prompt + a->image_tokens, n = n_prompt + a->response;
    int64_t img0 = a->prompt / 2;
    for (int i = 0; i < a->micro; i++) {
        int32_t *c = random_ids(n, a->vocab, 2 * (uint64_t)i + 1);
        int32_t *r = random_ids(n, a->vocab, 2 * (uint64_t)i + 2);
        for (int64_t j = img0; j < img0 + a->image_tokens; j++) c[j] = a->vocab - 1;
        memcpy(r, c, sizeof(int32_t) * (size_t)n_prompt); /* the shared prompt */
        p[i] = (dpo_pair){c, r, n, n, n_prompt, a->image_tokens ? i : -1, a->ref_given != 0,
                          -20.0, -21.0, 0, 0};
    }
    return p;
}

static float *synthetic_pixels(const shape_args *a)
{
    int64_t n = a->image_tokens ? (int64_t)a->micro * 3 * image_side(a) * image_side(a) : 1;
    float *px = xmalloc(sizeof(float) * (size_t)n);
    uint64_t z = 777;
    for (int64_t i = 0; i < n; i++) {
        z = z * 6364136223846793005ULL + 1442695040888963407ULL;
        px[i] = (float)((double)(z >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    }
    return px;
}

/* --- the benchmark -------------------------------------------------------- */

typedef struct {
    const dpo_pair *pairs;
    const float *pixels;
    int n_img;
    vision_grads *vg;       /* projector gradients (--projector); NULL: frozen */
} step_input;

/* One step: wall and CPU seconds; *rows gets the policy forward's rows. */
static int one_step(llava_model *m, const step_input *in, const shape_args *a, llama_grads *g,
                    double *seconds, double *cpu_seconds, int64_t *rows)
{
    dpo_opts o = dpo_opts_default();
    dpo_result r;
    double t0 = now(), c0 = cpu_now();
    llama_grads_zero(m, g);
    if (in->vg) vision_grads_zero(m, in->vg);
    int mode = TRAIN_FOR_BACKWARD | (in->vg ? TRAIN_WITH_PROJECTOR : 0);
    if (dpo_step_mode(m, in->pairs, a->micro, in->pixels, in->n_img, &o, mode, g, in->vg, &r) != 0)
        return -1;
    *seconds = now() - t0;
    *cpu_seconds = cpu_now() - c0;
    *rows = r.policy.hidden.rows;
    dpo_result_free(&r);
    return 0;
}

typedef struct {
    double warm, total, mean, best, gemm_seconds, gemm_flops;
    double cpu_best;        /* CPU seconds of the step with the least */
    int64_t rows;
} step_figures;

/* One step with sharing on or off, added to f's figures (warm: the first,
 * kept apart). */
static int timed_step(llava_model *m, const step_input *in, const shape_args *a, llama_grads *g,
                      bool share, bool warm, step_figures *f)
{
    bool was = train_pass_set_sharing(share);
    double s, cpu, g0 = gemm.seconds, f0 = gemm.flops;
    int rc = one_step(m, in, a, g, &s, &cpu, &f->rows);
    train_pass_set_sharing(was);
    if (warm) {
        f->warm = s;
        f->best = f->cpu_best = 1e300;
        return rc;
    }
    f->total += s;
    f->best = s < f->best ? s : f->best;
    f->cpu_best = cpu < f->cpu_best ? cpu : f->cpu_best;
    f->gemm_seconds += gemm.seconds - g0;
    f->gemm_flops += gemm.flops - f0;
    f->mean = f->total / a->steps;
    return rc;
}

/* Each mode in turn: a warm-up step, then a->steps timed steps (the
 * backend's buffer pool settles on the mode's sizes in the warm-up). */
static int measure(llava_model *m, const step_input *in, const shape_args *a, llama_grads *g,
                   step_figures *whole, step_figures *shared)
{
    int rc = 0;
    for (int i = -1; rc == 0 && a->sharing != 1 && i < a->steps; i++)
        rc = timed_step(m, in, a, g, false, i < 0, whole);
    for (int i = -1; rc == 0 && a->sharing != 0 && i < a->steps; i++)
        rc = timed_step(m, in, a, g, true, i < 0, shared);
    return rc;
}

static void print_figures(const char *what, const step_figures *f, const shape_args *a)
{
    double tokens = 2.0 * a->micro * (a->prompt + a->image_tokens + a->response);
    printf("%s: step time mean %.1f ms, best %.1f ms over %d steps (first step %.1f ms); "
           "%lld rows per forward\n", what, 1e3 * f->mean, 1e3 * f->best, a->steps, 1e3 * f->warm,
           (long long)f->rows);
    printf("%s: CPU time per step, best %.1f ms (all threads)\n", what, 1e3 * f->cpu_best);
    printf("%s: training tokens/s %.0f (chosen + rejected tokens per step / mean step time)\n",
           what, tokens / f->mean);
    double flops_step = f->gemm_flops / a->steps;
    if (strcmp(a->dev.device, "cpu") == 0) {
        printf("%s: GEMM (linear, linear_dx, linear_dw) %.1f ms/step, %.1f%% of the step, "
               "%.1f GFLOP/s\n", what, 1e3 * f->gemm_seconds / a->steps,
               100.0 * f->gemm_seconds / (f->mean * a->steps), f->gemm_flops / f->gemm_seconds * 1e-9);
        return;
    }
    /* on a GPU the wrappers see only the launches: count the work, time the step */
    printf("%s: matrix products %.2f TFLOP per step -> %.0f TFLOP/s over the mean step, "
           "%.1f%% of %.0f TFLOP/s bf16 peak (MFU, attention not counted); best step %.1f%%\n",
           what, flops_step * 1e-12, flops_step / f->mean * 1e-12,
           100.0 * flops_step / f->mean * 1e-12 / a->peak_tflops, a->peak_tflops,
           100.0 * flops_step / f->best * 1e-12 / a->peak_tflops);
}

static int run(const shape_args *a)
{
    cfg_model cfg;
    if (shape_config(a, &cfg) != 0) return -1;
    be_open_opts dev = a->dev;
    dev.cpu_threads = a->threads;
    be_backend *be = be_open(&dev);
    if (!be) return -1;
    llava_model *m = NULL;
    lora_adapter *ad = NULL;
    if (llava_random(&cfg, be, 1, &m) != 0) return -1;
    lora_config lc = lora_config_default();
    lc.r = a->r;
    lc.alpha = 2.0 * a->r;
    if (lora_new(m, &lc, 1, &ad) != 0) return -1;
    uint64_t b_rng = 12345; /* small random B, so the adapter changes the outputs */
    tiny_llava_random_B(ad, m, &b_rng, 0.02f);
    lora_attach(m, ad);
    llama_grads g;
    llama_grads_new(m, LLAMA_GRAD_LORA, &g);
    dpo_pair *pairs = synthetic_pairs(a);
    float *pixels = synthetic_pixels(a);
    vision_grads vg = {0};
    if (a->projector) vision_grads_new_projector(m, &vg);
    step_input in = {pairs, pixels, a->image_tokens ? a->micro : 0, a->projector ? &vg : NULL};
    wrap_gemms(be);

    step_figures fo = {0}, fs = {0};
    int rc = measure(m, &in, a, &g, &fo, &fs);
    if (rc == 0) {
        const cfg_text *t = &cfg.text;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        char threads[16] = "default";
        if (a->threads > 0) snprintf(threads, sizeof threads, "%d", a->threads);
        printf("shape: LLaMA %d wide, %d layers, %d/%d heads, FFN %d, vocab %d; LoRA r %d on "
               "q,k,v,o,gate,up,down; threads: %s\n", t->hidden_size, t->num_hidden_layers,
               t->num_attention_heads, t->num_key_value_heads, t->intermediate_size, t->vocab_size,
               a->r, threads);
        printf("step: %d pair(s) of %d prompt (%d text + %d image) + %d response tokens, "
               "reference %s\n", a->micro, a->prompt + a->image_tokens, a->prompt,
               a->image_tokens, a->response, a->ref_given ? "given" : "computed (adapter off)");
        if (a->projector) printf("projector trained (--train-projector): CLIP forward only\n");
        if (a->sharing != 1) print_figures("whole sequences", &fo, a);
        if (a->sharing != 0) print_figures("prompt shared", &fs, a);
        if (a->sharing == 2)
            printf("sharing: %.1f%% fewer rows per forward (%lld vs %lld); step time x %.2f "
                   "(mean), x %.2f (best), CPU time x %.2f (best); training tokens/s x %.2f\n",
                   100.0 * (double)(fo.rows - fs.rows) / (double)fo.rows, (long long)fs.rows,
                   (long long)fo.rows, fs.mean / fo.mean, fs.best / fo.best,
                   fs.cpu_best / fo.cpu_best, fo.mean / fs.mean);
        printf("peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
        if (be->mem_stats) {
            size_t in_use, peak;
            be->mem_stats(be, &in_use, &peak);
            printf("GPU memory: %.2f GiB peak held by the backend (%s, weights %s)\n",
                   (double)peak / 1073741824.0, be->name, be_dtype_name(a->dev.weights));
        }
    }
    free(pixels);
    for (int i = 0; i < a->micro; i++) {
        free((void *)pairs[i].chosen);
        free((void *)pairs[i].rejected);
    }
    free(pairs);
    llama_grads_free(m, &g);
    lora_detach(m);
    if (a->projector) vision_grads_free(m, &vg);
    lora_free(ad);
    llava_free(m);
    be->destroy(be);
    return rc;
}

int main(int argc, char **argv)
{
    shape_args a = {512, 8, 8, 8, 1376, 32000, 64, 128, 1, 16, 3, 0, 0, 576, 2, 0, {0}, 989.0};
    be_open_opts_default(&a.dev);
    a.dev.device = "cpu";
    static struct option opts[] = {
        {"hidden", 1, 0, 'H'}, {"layers", 1, 0, 'L'}, {"heads", 1, 0, 'h'},
        {"kv-heads", 1, 0, 'k'}, {"ffn", 1, 0, 'F'}, {"vocab", 1, 0, 'V'},
        {"prompt", 1, 0, 'p'}, {"response", 1, 0, 'R'}, {"micro", 1, 0, 'm'},
        {"r", 1, 0, 'r'}, {"steps", 1, 0, 's'}, {"threads", 1, 0, 't'},
        {"ref-given", 0, 0, 'g'}, {"image-tokens", 1, 0, 'I'}, {"sharing", 1, 0, 'S'},
        {"projector", 0, 0, 'P'}, {"device", 1, 0, 'D'}, {"dtype", 1, 0, 'W'},
        {"peak-tflops", 1, 0, 'T'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int v = optarg ? atoi(optarg) : 1;
        if (c == 'S') {
            a.sharing = !strcmp(optarg, "off") ? 0 : !strcmp(optarg, "on") ? 1 : !strcmp(optarg, "both") ? 2 : -1;
            if (a.sharing < 0) {
                fprintf(stderr, "perf_dpo_shape: --sharing takes both, on or off\n");
                return 2;
            }
            continue;
        }
        if (c == 'I') {
            int side = (int)lround(sqrt((double)(v > 0 ? v : 0)));
            if (v < 0 || side * side != v) {
                fprintf(stderr, "perf_dpo_shape: --image-tokens needs 0 or a square number\n");
                return 2;
            }
            a.image_tokens = v;
            continue;
        }
        if (c == 'P') {
            a.projector = a.ref_given = 1;
            continue;
        }
        if (c == 'D') {
            a.dev.device = optarg;
            continue;
        }
        if (c == 'W') {
            if (be_dtype_parse(optarg, &a.dev.weights) != 0) err_exit();
            continue;
        }
        if (c == 'T') {
            a.peak_tflops = atof(optarg);
            continue;
        }
        if (c != 'g' && v < 1) {
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
        default: fprintf(stderr, "usage: see the comment at the top of perf_dpo_shape.c\n"); return 2;
        }
    }
    if (run(&a) != 0) err_exit();
    return 0;
}
