/* perf_model.c — speed of the LLaVA model and generation engine on a
 * randomly initialised model of any shape, on the CPU (default) or a GPU
 * (--device cuda [--dtype bf16|f16|f32]). Prints:
 *   vision encode (images/s), prefill (tokens/s; on the CPU next to OpenBLAS
 *   sgemm alone on the same matrix shapes, on a GPU its matrix TFLOP/s),
 *   decode (new tokens/s) at batch 1, 8 and 32 (--batches) after prompts of
 *   --prompt tokens (default 16), the weight bandwidth of batch-1 decode
 *   (on the CPU next to sgemv's), peak memory (GPU: the backend's device
 *   memory).
 * Default shape: LLaMA 512 wide, 8 layers, vocab 32000; CLIP 384 wide,
 * 6 layers, 224 px, patch 14.
 *   perf_model [--config config.json] [--hidden N] [--layers N] [--heads N]
 *              [--kv-heads N] [--ffn N] [--vocab N] [--vision-hidden N]
 *              [--vision-layers N] [--vision-heads N] [--vision-ffn N]
 *              [--image-size N] [--patch N] [--new-tokens N] [--batches 1,8,32]
 *              [--prompt N] [--no-vision] [--no-prefill] [--profile]
 *              [--device cpu|cuda] [--dtype bf16|f16|f32]
 * Also prints the cost of a greedy decode step's per-row host work (argmax
 * and log-prob over the vocabulary) next to a plain one-pass scan.
 * --profile: also times every backend operation during one generation per
 * batch size and prints where the time goes (timers around the ops).
 */
#define _GNU_SOURCE
#include "config.h"
#include "err.h"
#include "generate.h"
#include "llava.h"
#include "sampling.h"

#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    int hidden, layers, heads, kv_heads, ffn, vocab;
    int v_hidden, v_layers, v_heads, v_ffn, image_size, patch;
    int new_tokens, prompt;
    int skip_vision, skip_prefill, profile;
    const char *config;
    char batches[64];
    be_open_opts dev;
} bench_args;

static int on_cpu(const llava_model *m) { return strcmp(m->be->name, "cpu") == 0; }
static double decode_weight_count(const llava_model *m);
static int prompt_len = 16;

static int build_config(const bench_args *a, cfg_model *cfg)
{
    if (a->config) return cfg_load(a->config, cfg);
    json_t *root = json_pack(
        "{s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i,s:i,s:i,s:i},s:i}", "text_config",
        "hidden_size", a->hidden, "num_hidden_layers", a->layers, "num_attention_heads", a->heads,
        "num_key_value_heads", a->kv_heads, "intermediate_size", a->ffn, "vocab_size", a->vocab,
        "max_position_embeddings", 4096, "vision_config", "hidden_size", a->v_hidden,
        "num_hidden_layers", a->v_layers, "num_attention_heads", a->v_heads, "intermediate_size",
        a->v_ffn, "image_size", a->image_size, "patch_size", a->patch, "image_token_index",
        a->vocab - 1);
    int rc = cfg_from_json(root, "benchmark shape", cfg);
    json_decref(root);
    return rc;
}

static float *random_pixels(const llava_model *m, int n_img)
{
    size_t n = (size_t)n_img * 3 * m->cfg.vision.image_size * m->cfg.vision.image_size;
    float *p = xmalloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    return p;
}

static void bench_vision(llava_model *m)
{
    int n_img = 4;
    float *px = random_pixels(m, n_img);
    be_mat out = m->be->mat_new(m->be, (int64_t)n_img * m->image_tokens, m->cfg.text.hidden_size);
    llava_image_features(m, px, n_img, out); /* warm-up */
    int reps = 3;
    double t0 = now();
    for (int r = 0; r < reps; r++) llava_image_features(m, px, n_img, out);
    double dt = now() - t0;
    printf("vision encode     : %8.1f images/s  (%d images of %d px per call)\n",
           reps * n_img / dt, n_img, m->cfg.vision.image_size);
    m->be->mat_free(m->be, &out);
    free(px);
}

/* The decoder's matrix products for R rows, timed with sgemm alone. */
static double sgemm_only_seconds(const llava_model *m, int64_t R)
{
    const cfg_text *t = &m->cfg.text;
    int D = t->hidden_size, F = t->intermediate_size;
    int Q = t->num_attention_heads * t->head_dim, KV = t->num_key_value_heads * t->head_dim;
    int shapes[][2] = {{Q, D}, {KV, D}, {KV, D}, {D, Q}, {F, D}, {F, D}, {D, F}}; /* [N, K] */
    int n_shapes = sizeof shapes / sizeof *shapes;
    size_t maxw = (size_t)(F > Q ? F : Q) * (size_t)(D > F ? D : F);
    size_t nx = (size_t)R * (D > F ? D : F);
    float *w = malloc(maxw * sizeof(float)), *x = malloc(nx * sizeof(float)),
          *y = calloc((size_t)R * (F > Q ? F : Q), sizeof(float));
    /* real data: untouched calloc pages all map to one zero page, which
     * would make the weights look cache-resident */
    for (size_t i = 0; i < maxw; i++) w[i] = (float)((i * 2654435761u) % 1000) * 1e-4f;
    for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 40503u) % 1000) * 1e-3f;
    double t0 = now();
    for (int l = 0; l < t->num_hidden_layers; l++)
        for (int s = 0; s < n_shapes; s++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, shapes[s][0], shapes[s][1],
                        1.0f, x, shapes[s][1], w, shapes[s][1], 0.0f, y, shapes[s][0]);
    double dt = now() - t0;
    free(w);
    free(x);
    free(y);
    return dt;
}

static void bench_prefill(llava_model *m)
{
    be_backend *be = m->be;
    int n_seq = 4, text = 64;
    int64_t per = m->image_tokens + text, R = per * n_seq;
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)R);
    llama_seq seqs[4];
    for (int s = 0; s < n_seq; s++) {
        for (int64_t j = 0; j < per; j++)
            ids[s * per + j] = (j >= 2 && j < 2 + m->image_tokens) ? m->cfg.image_token_index
                                                                   : (int32_t)(3 + (j * 31 + s) % 1000);
        seqs[s] = (llama_seq){s * per, per, NULL, true};
    }
    float *px = random_pixels(m, n_seq);
    be_mat feats = be->mat_new(be, (int64_t)n_seq * m->image_tokens, m->cfg.text.hidden_size);
    llava_image_features(m, px, n_seq, feats);
    be_mat hidden = be->mat_new(be, R, m->cfg.text.hidden_size);
    llama_batch b = {R, ids, n_seq, seqs, feats};
    llama_forward(m, &b, hidden); /* warm-up */
    double dt = 1e30, ds = 1e30; /* best of 3 each */
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        llama_forward(m, &b, hidden);
        dt = fmin(dt, now() - t0);
    }
    printf("prefill           : %8.0f tokens/s  (%d prompts of %lld tokens, best of 3)\n", R / dt,
           n_seq, (long long)per);
    if (on_cpu(m)) {
        for (int r = 0; r < 3; r++) ds = fmin(ds, sgemm_only_seconds(m, R));
        printf("  sgemm alone     : %8.0f tokens/s  on the same shapes -> prefill at %.0f%% of sgemm\n",
               R / ds, 100.0 * ds / dt);
    } else {
        printf("  matrix products : %8.1f TFLOP/s (2 x layer weights x tokens / time)\n",
               decode_weight_count(m) * 2.0 * R / dt * 1e-12);
    }
    be->mat_free(be, &hidden);
    be->mat_free(be, &feats);
    free(px);
    free(ids);
}

/* Seconds for `batch` greedy sequences to generate n tokens each. */
static double time_generate(llava_model *m, int batch, int n)
{
    int prompt = prompt_len;
    gen_request *req = xcalloc((size_t)batch, sizeof *req);
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)(prompt * batch));
    for (int b = 0; b < batch; b++) {
        for (int j = 0; j < prompt; j++) ids[b * prompt + j] = (int32_t)(3 + (j * 17 + b * 7) % 1000);
        req[b] = (gen_request){ids + b * prompt, prompt, NULL, 0, {0, 1, 0}, (uint64_t)b, n,
                               m->cfg.text.vocab_size /* an id never produced: no EOS stop */};
    }
    gen_output *out = xcalloc((size_t)batch, sizeof *out);
    gen_options opt;
    gen_options_default(&opt);
    opt.max_batch = batch;
    double t0 = now();
    gen_generate(m, req, batch, &opt, out);
    double dt = now() - t0;
    for (int b = 0; b < batch; b++) gen_output_free(&out[b]);
    free(out);
    free(req);
    free(ids);
    return dt;
}

/* The per-row host work of a greedy decode step written plainly: argmax,
 * then a second argmax and the normaliser summed one entry at a time. */
static float plain_row(const float *x, int n, int32_t *tok)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    *tok = best;
    int32_t b2 = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b2]) b2 = i;
    double sum = 0;
    for (int i = 0; i < n; i += 256) {
        float part = 0;
        for (int j = i; j < n && j < i + 256; j++) part += expf(x[j] - x[b2]);
        sum += part;
    }
    return (float)((double)x[best] - x[b2] - log(sum));
}

/* Microseconds per row (best of several passes over 32 rows), plain vs the
 * engine's sampling helpers; the two must agree bit for bit. */
static void bench_sampling(int V)
{
    int rows = 32;
    float *x = xmalloc(sizeof(float) * (size_t)V * rows);
    for (size_t i = 0; i < (size_t)V * rows; i++) x[i] = (float)((i * 2654435761u) % 20011) / 1000.0f;
    double best_plain = 1e30, best_engine = 1e30;
    int same = 1;
    for (int pass = 0; pass < 7; pass++) {
        float lp_plain[32], lp_engine[32];
        double t0 = now();
        for (int r = 0; r < rows; r++) {
            int32_t tok;
            lp_plain[r] = plain_row(x + (size_t)r * V, V, &tok);
        }
        double t1 = now();
        for (int r = 0; r < rows; r++) {
            const float *row = x + (size_t)r * V;
            int32_t tok = smp_argmax(row, V);
            lp_engine[r] = smp_logprob_max(row, V, tok, row[tok]);
        }
        double t2 = now();
        if (t1 - t0 < best_plain) best_plain = t1 - t0;
        if (t2 - t1 < best_engine) best_engine = t2 - t1;
        same &= memcmp(lp_plain, lp_engine, sizeof lp_plain) == 0;
    }
    printf("greedy row, V %d  : %8.1f us plain scan, %.1f us engine (one thread)%s\n", V,
           1e6 * best_plain / rows, 1e6 * best_engine / rows, same ? "" : "  MISMATCH");
    free(x);
}

/* Weights a decode step reads: every layer, final norm, lm_head. */
static double decode_weight_count(const llava_model *m)
{
    const cfg_text *t = &m->cfg.text;
    double D = t->hidden_size, F = t->intermediate_size;
    double Q = (double)t->num_attention_heads * t->head_dim, KV = (double)t->num_key_value_heads * t->head_dim;
    double layer = Q * D + 2 * KV * D + D * Q + 3 * F * D + 2 * D;
    return t->num_hidden_layers * layer + D + (double)t->vocab_size * D;
}

static double weight_bytes_each = 4.0; /* float32 on the CPU; the GPU's --dtype */

static double decode_weight_bytes(const llava_model *m)
{
    return weight_bytes_each * decode_weight_count(m);
}

static double sgemv_gbs(int rows, int cols)
{
    float *w = malloc((size_t)rows * cols * sizeof(float)), *x = calloc((size_t)cols, sizeof(float)),
          *y = calloc((size_t)rows, sizeof(float));
    for (size_t i = 0; i < (size_t)rows * cols; i++) w[i] = (float)(i % 7);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w, cols, x, 1, 0.0f, y, 1);
    int reps = 20;
    double t0 = now();
    for (int r = 0; r < reps; r++)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w, cols, x, 1, 0.0f, y, 1);
    double dt = now() - t0;
    free(w);
    free(x);
    free(y);
    return reps * 4.0 * rows * cols / dt / 1e9;
}

/* ---- --profile: timers around the backend's operations ---------------- */

enum { OP_LINEAR, OP_ATTN, OP_NORM, OP_ROPE, OP_ACT, OP_ADD, OP_EMBED, OP_LOGP, OP_COPY, OP_N };
static const char *op_names[OP_N] = {"linear", "attention", "rmsnorm", "rope", "silu_mul",
                                     "add", "embed", "token_logprobs", "copy/upload"};
static double op_seconds[OP_N];
static be_backend op_orig; /* the backend's own functions */

#define OP_TIMED(op, call)                                                                     \
    do {                                                                                       \
        double t0_ = now();                                                                    \
        call;                                                                                  \
        op_seconds[op] += now() - t0_;                                                         \
    } while (0)

static void p_linear(be_backend *be, be_mat y, be_mat x, const be_weight *w, const be_weight *b,
                     bool acc)
{
    OP_TIMED(OP_LINEAR, op_orig.linear(be, y, x, w, b, acc));
}
static void p_attention(be_backend *be, be_mat out, be_mat q, be_mat k, be_mat v,
                        const be_attn_seq *seqs, int n, be_attn_shape sh)
{
    OP_TIMED(OP_ATTN, op_orig.attention(be, out, q, k, v, seqs, n, sh));
}
static void p_rmsnorm(be_backend *be, be_mat y, be_mat x, const be_weight *w, float eps)
{
    OP_TIMED(OP_NORM, op_orig.rmsnorm(be, y, x, w, eps));
}
static void p_rope(be_backend *be, be_mat x, int nh, int hd, const int32_t *pos, double theta)
{
    OP_TIMED(OP_ROPE, op_orig.rope(be, x, nh, hd, pos, theta));
}
static void p_silu_mul(be_backend *be, be_mat out, be_mat g, be_mat u)
{
    OP_TIMED(OP_ACT, op_orig.silu_mul(be, out, g, u));
}
static void p_add(be_backend *be, be_mat y, be_mat x) { OP_TIMED(OP_ADD, op_orig.add(be, y, x)); }
static void p_embed(be_backend *be, be_mat out, const be_weight *t, const int32_t *ids)
{
    OP_TIMED(OP_EMBED, op_orig.embed(be, out, t, ids));
}
static void p_logp(be_backend *be, be_mat l, const int32_t *t, float *lp, int32_t *am)
{
    OP_TIMED(OP_LOGP, op_orig.token_logprobs(be, l, t, lp, am));
}
static void p_copy(be_backend *be, be_mat d, be_mat s) { OP_TIMED(OP_COPY, op_orig.copy(be, d, s)); }
static void p_upload(be_backend *be, be_mat d, const float *h)
{
    OP_TIMED(OP_COPY, op_orig.upload(be, d, h));
}
static void p_download(be_backend *be, be_mat s, float *h)
{
    OP_TIMED(OP_COPY, op_orig.download(be, s, h));
}

static void profile_install(be_backend *be)
{
    op_orig = *be;
    be->linear = p_linear;
    be->attention = p_attention;
    be->rmsnorm = p_rmsnorm;
    be->rope = p_rope;
    be->silu_mul = p_silu_mul;
    be->add = p_add;
    be->embed = p_embed;
    be->token_logprobs = p_logp;
    be->copy = p_copy;
    be->upload = p_upload;
    be->download = p_download;
}

/* One generation of n tokens at this batch size, its time split by op. */
static void profile_decode(llava_model *m, int batch, int n)
{
    memset(op_seconds, 0, sizeof op_seconds);
    double total = time_generate(m, batch, n), ops = 0;
    printf("  profile (one run, %d tokens, prompt included): %.1f ms;", n, 1e3 * total);
    for (int i = 0; i < OP_N; i++) {
        ops += op_seconds[i];
        if (op_seconds[i] >= 0.005 * total)
            printf(" %s %.0f%%", op_names[i], 100.0 * op_seconds[i] / total);
    }
    printf(" other %.0f%%\n", 100.0 * (total - ops) / total);
}

static void bench_decode(llava_model *m, const char *batches, int n, int profile)
{
    double tps1 = 0;
    char list[64];
    snprintf(list, sizeof list, "%s", batches);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int b = atoi(tok);
        if (b < 1) continue;
        time_generate(m, b, 2); /* warm-up */
        double best = 1e30; /* best of 3: this machine's timings are noisy */
        for (int trial = 0; trial < 3; trial++) {
            double t1 = time_generate(m, b, 1), tn = time_generate(m, b, n + 1);
            if (tn - t1 < best) best = tn - t1;
        }
        double tps = (double)b * n / best;
        if (b == 1) tps1 = tps;
        printf("decode batch %-4d : %8.1f new tokens/s (best of 3)", b, tps);
        if (tps1 > 0 && b > 1) printf("  (%.1fx batch 1)", tps / tps1);
        putchar('\n');
        if (b == 1 && on_cpu(m)) {
            double gbs = decode_weight_bytes(m) * tps / 1e9;
            double ref = sgemv_gbs(m->cfg.text.vocab_size, m->cfg.text.hidden_size);
            printf("  weight stream   : %8.1f GB/s vs sgemv %.1f GB/s -> %.0f%% of sgemv\n", gbs, ref,
                   100.0 * gbs / ref);
        } else if (b == 1) {
            printf("  weight stream   : %8.1f GB/s (weights read per token x tokens/s)\n",
                   decode_weight_bytes(m) * tps / 1e9);
        }
        if (profile) profile_decode(m, b, n);
    }
}

int main(int argc, char **argv)
{
    err_set_program("perf_model");
    bench_args a = {512, 8, 8, 8, 1376, 32000, 384, 6, 6, 1536, 224, 14, 32, 16, 0, 0, 0, NULL,
                    "1,8,32", {0}};
    be_open_opts_default(&a.dev);
    a.dev.device = "cpu";
    static struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"hidden", required_argument, 0, 'H'},
        {"layers", required_argument, 0, 'L'}, {"heads", required_argument, 0, 'A'},
        {"kv-heads", required_argument, 0, 'K'}, {"ffn", required_argument, 0, 'F'},
        {"vocab", required_argument, 0, 'V'}, {"vision-hidden", required_argument, 0, 'h'},
        {"vision-layers", required_argument, 0, 'l'}, {"vision-heads", required_argument, 0, 'a'},
        {"vision-ffn", required_argument, 0, 'f'}, {"image-size", required_argument, 0, 'i'},
        {"patch", required_argument, 0, 'p'}, {"new-tokens", required_argument, 0, 'n'},
        {"batches", required_argument, 0, 'b'}, {"no-vision", no_argument, 0, 'x'},
        {"no-prefill", no_argument, 0, 'y'}, {"profile", no_argument, 0, 'P'},
        {"prompt", required_argument, 0, 'T'}, {"device", required_argument, 0, 'D'},
        {"dtype", required_argument, 0, 'W'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int v = optarg ? atoi(optarg) : 0;
        switch (c) {
        case 'c': a.config = optarg; break;
        case 'H': a.hidden = v; break;
        case 'L': a.layers = v; break;
        case 'A': a.heads = v; break;
        case 'K': a.kv_heads = v; break;
        case 'F': a.ffn = v; break;
        case 'V': a.vocab = v; break;
        case 'h': a.v_hidden = v; break;
        case 'l': a.v_layers = v; break;
        case 'a': a.v_heads = v; break;
        case 'f': a.v_ffn = v; break;
        case 'i': a.image_size = v; break;
        case 'p': a.patch = v; break;
        case 'n': a.new_tokens = v; break;
        case 'b': snprintf(a.batches, sizeof a.batches, "%s", optarg); break;
        case 'x': a.skip_vision = 1; break;
        case 'y': a.skip_prefill = 1; break;
        case 'P': a.profile = 1; break;
        case 'T': a.prompt = v; break;
        case 'D': a.dev.device = optarg; break;
        case 'W':
            if (be_dtype_parse(optarg, &a.dev.weights) != 0) err_exit();
            break;
        default: fprintf(stderr, "usage: see the comment at the top of perf_model.c\n"); return 2;
        }
    }
    cfg_model cfg;
    if (build_config(&a, &cfg) != 0) err_exit();
    be_backend *be = be_open(&a.dev);
    if (!be) err_exit();
    prompt_len = a.prompt;
    if (strcmp(be->name, "cpu") != 0) weight_bytes_each = a.dev.weights == BE_F32 ? 4.0 : 2.0;
    llava_model *m = NULL;
    if (llava_random(&cfg, be, 1, &m) != 0) err_exit();
    printf("backend: %s%s%s\n", be->name, strcmp(be->name, "cpu") ? ", weights " : "",
           strcmp(be->name, "cpu") ? be_dtype_name(a.dev.weights) : "");
    const cfg_text *t = &cfg.text;
    printf("model: LLaMA %d wide, %d layers, %d/%d heads, FFN %d, vocab %d; CLIP %d wide, %d of %d "
           "layers run, %d px / patch %d (%d image tokens)\n",
           t->hidden_size, t->num_hidden_layers, t->num_attention_heads, t->num_key_value_heads,
           t->intermediate_size, t->vocab_size, cfg.vision.hidden_size, m->vision.n_layers,
           cfg.vision.num_hidden_layers, cfg.vision.image_size, cfg.vision.patch_size, m->image_tokens);
    if (!a.skip_vision) bench_vision(m);
    if (!a.skip_prefill) bench_prefill(m);
    if (on_cpu(m)) bench_sampling(t->vocab_size);
    if (a.profile) profile_install(be);
    bench_decode(m, a.batches, a.new_tokens, a.profile);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak memory       : %8.1f MiB (process RSS)\n", ru.ru_maxrss / 1024.0);
    if (be->mem_stats) {
        size_t now_b, peak_b;
        be->mem_stats(be, &now_b, &peak_b);
        printf("GPU memory        : %8.1f MiB peak held by the backend\n", peak_b / 1048576.0);
    }
    llava_free(m);
    be->destroy(be);
    return 0;
}
