/* sima-model — inspect LLaVA checkpoints: configuration, tensors, tokenizer,
 * image preprocessing. A small utility for people who handle checkpoints.
 *
 *   sima-model info DIR
 *   sima-model tokenize --tokenizer FILE [--no-bos] < strings.jsonl
 *   sima-model detokenize --tokenizer FILE [--keep-special] < ids.jsonl
 *   sima-model image [--preprocess pad|crop] [--size N] [--model DIR] IMAGE --out FILE.h5
 */
#define _GNU_SOURCE
#include "config.h"
#include "err.h"
#include "fs.h"
#include "h5util.h"
#include "image.h"
#include "js.h"
#include "log.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "weights.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
        "usage: sima-model COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  info DIR                     resolved config (HF defaults applied), parameter\n"
        "                               counts per component, dtypes and the tensor map, as\n"
        "                               JSON; DIR may hold only config.json\n"
        "  tokenize --tokenizer FILE    one JSON string per line on stdin -> one JSON array\n"
        "           [--no-bos]          of ids per line on stdout\n"
        "  detokenize --tokenizer FILE  one JSON array of ids per line -> one JSON string\n"
        "           [--keep-special]    per line (special tokens dropped unless asked)\n"
        "  image IMAGE --out F.h5       write the preprocessed pixel values [3,N,N] and the\n"
        "        [--preprocess pad|crop] [--size N] [--model DIR]\n"
        "                               intermediate uint8 stages, for debugging\n"
        "\n"
        "common options: --verbose, --quiet, --help, --version\n"
        "FILE for --tokenizer is a tokenizer.json, a tokenizer.model, or a model folder.\n");
}

/* Options every subcommand accepts. Returns 1 if handled. */
static int common_option(int c)
{
    switch (c) {
    case 'v': log_set_level(LOG_DEBUG); return 1;
    case 'q': log_set_level(LOG_WARN); return 1;
    case 'h': usage(stdout); exit(0);
    case 'V': printf("sima-model %s\n", SIMA_VERSION); exit(0);
    default: return 0;
    }
}

#define COMMON_LONG_OPTS                                                       \
    {"verbose", no_argument, 0, 'v'}, {"quiet", no_argument, 0, 'q'},          \
    {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}

static _Noreturn void bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: error: ", err_program());
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run 'sima-model --help' for usage)\n");
    exit(2);
}

/* ---------------------------------------------------------------- info -- */

/* Parameter counts implied by the configuration alone. */
typedef struct {
    int64_t vision, projector, language, lm_head;
} param_counts;

static int64_t linear_params(int64_t in, int64_t out, int bias)
{
    return in * out + (bias ? out : 0);
}

static param_counts params_from_config(const cfg_model *c)
{
    const cfg_vision *v = &c->vision;
    const cfg_text *t = &c->text;
    param_counts p = {0};
    int64_t vh = v->hidden_size, vi = v->intermediate_size;
    int64_t n_patch = (int64_t)(v->image_size / v->patch_size) * (v->image_size / v->patch_size);
    /* q, k, v, o + fc1 (vh -> vi) + fc2 (vi -> vh) + two LayerNorms */
    int64_t vlayer = 4 * linear_params(vh, vh, 1) + linear_params(vh, vi, 1) +
                     linear_params(vi, vh, 1) + 4 * vh;
    p.vision = (int64_t)v->num_channels * v->patch_size * v->patch_size * vh /* patch conv */
               + vh                          /* class embedding */
               + (n_patch + 1) * vh          /* position embedding */
               + 2 * vh + 2 * vh             /* pre and post LayerNorm */
               + (int64_t)v->num_hidden_layers * vlayer;
    int b = c->multimodal_projector_bias;
    p.projector = linear_params(vh, t->hidden_size, b) +
                  linear_params(t->hidden_size, t->hidden_size, b);
    int64_t h = t->hidden_size, hd = t->head_dim;
    int64_t q = (int64_t)t->num_attention_heads * hd, kv = (int64_t)t->num_key_value_heads * hd;
    int ab = t->attention_bias, mb = t->mlp_bias;
    int64_t layer = linear_params(h, q, ab) + 2 * linear_params(h, kv, ab) +
                    linear_params(q, h, ab) + 2 * linear_params(h, t->intermediate_size, mb) +
                    linear_params(t->intermediate_size, h, mb) + 2 * h;
    p.language = (int64_t)t->vocab_size * h + (int64_t)t->num_hidden_layers * layer + h;
    p.lm_head = t->tie_word_embeddings ? 0 : (int64_t)t->vocab_size * h;
    return p;
}

static json_t *param_counts_json(param_counts p)
{
    return json_pack("{sIsIsIsIsI}", "vision_tower", (json_int_t)p.vision,
                     "multi_modal_projector", (json_int_t)p.projector,
                     "language_model", (json_int_t)p.language, "lm_head",
                     (json_int_t)p.lm_head, "total",
                     (json_int_t)(p.vision + p.projector + p.language + p.lm_head));
}

static json_t *shape_json(const st_tensor *t)
{
    json_t *a = json_array();
    for (int d = 0; d < t->ndim; d++) json_array_append_new(a, json_integer(t->shape[d]));
    return a;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Tensor map, per-component counts and dtype histogram of the weights. */
static json_t *weights_json(const st_set *set)
{
    param_counts p = {0};
    int64_t other = 0;
    json_t *dtypes = json_object(), *map = json_object(), *files = json_array();
    for (int i = 0; i < st_file_count(set); i++)
        json_array_append_new(files, json_string(base_name(st_file_path(set, i))));
    for (size_t i = 0; i < st_count(set); i++) {
        const st_tensor *t = st_at(set, i);
        switch (wt_component_of(t->name)) {
        case WT_VISION: p.vision += t->numel; break;
        case WT_PROJECTOR: p.projector += t->numel; break;
        case WT_LANGUAGE: p.language += t->numel; break;
        case WT_LM_HEAD: p.lm_head += t->numel; break;
        default: other += t->numel; break;
        }
        const char *dt = st_dtype_name(t->dtype);
        json_t *cnt = json_object_get(dtypes, dt);
        json_object_set_new(dtypes, dt, json_integer(cnt ? json_integer_value(cnt) + 1 : 1));
        json_object_set_new(map, t->name,
                            json_pack("{sssosssI}", "dtype", dt, "shape", shape_json(t),
                                      "file", base_name(st_file_path(set, t->file_index)),
                                      "numel", (json_int_t)t->numel));
    }
    json_t *counts = param_counts_json(p);
    json_object_set_new(counts, "other", json_integer(other));
    json_object_set_new(counts, "total",
                        json_integer(p.vision + p.projector + p.language + p.lm_head + other));
    return json_pack("{sosIsososo}", "files", files, "tensor_count", (json_int_t)st_count(set),
                     "dtypes", dtypes, "parameters", counts, "tensors", map);
}

static int has_weights(const char *dir)
{
    static const char *names[] = {"model.safetensors.index.json", "model.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *p = fs_join(dir, names[i]);
        int ok = fs_is_file(p);
        free(p);
        if (ok) return 1;
    }
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    static struct option opts[] = {COMMON_LONG_OPTS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "vqhV", opts, NULL)) != -1)
        if (!common_option(c)) bad_usage("%s", "unknown option for 'info'");
    if (optind != argc - 1) bad_usage("%s", "'info' takes one model folder (or config.json)");
    const char *path = argv[optind];
    const char *dir = path;
    char *owned_dir = NULL;
    if (!fs_is_dir(path)) { /* a config.json given directly */
        owned_dir = xstrdup(path);
        char *slash = strrchr(owned_dir, '/');
        if (slash) *slash = '\0'; else strcpy(owned_dir, ".");
        dir = owned_dir;
    }
    cfg_model cfg;
    if (cfg_load(path, &cfg) != 0) err_exit();

    json_t *out = json_object();
    json_object_set_new(out, "model", json_string(path));
    json_object_set_new(out, "config", cfg_to_json(&cfg));
    json_object_set_new(out, "parameters_from_config", param_counts_json(params_from_config(&cfg)));
    if (fs_is_dir(path) && has_weights(dir)) {
        st_set *set = NULL;
        if (st_open_dir(dir, &set) != 0) err_exit();
        json_object_set_new(out, "weights", weights_json(set));
        st_close(set);
    } else {
        json_object_set_new(out, "weights", json_null());
    }
    tok_tokenizer *tok = NULL;
    char *tj = fs_join(dir, "tokenizer.json"), *tm = fs_join(dir, "tokenizer.model");
    if (fs_is_file(tj) || fs_is_file(tm)) {
        if (tok_load(dir, &tok) != 0) err_exit();
        json_object_set_new(out, "tokenizer",
                            json_pack("{sssisisi}", "source", tok_source_kind(tok),
                                      "vocab_size", tok_vocab_size(tok), "bos_id",
                                      tok_bos_id(tok), "eos_id", tok_eos_id(tok)));
        tok_free(tok);
    } else {
        json_object_set_new(out, "tokenizer", json_null());
    }
    free(tj);
    free(tm);
    int rc = js_dump(out, stdout);
    json_decref(out);
    free(owned_dir);
    if (rc != 0 || fflush(stdout) != 0) err_exit();
    return 0;
}

/* ------------------------------------------------------- (de)tokenize -- */

static tok_tokenizer *open_tokenizer_option(int argc, char **argv, const char *cmd,
                                            int *flag, const char *flag_name)
{
    static struct option opts[] = {COMMON_LONG_OPTS, {"tokenizer", required_argument, 0, 't'},
                                   {"no-bos", no_argument, 0, 'n'},
                                   {"keep-special", no_argument, 0, 'k'}, {0, 0, 0, 0}};
    const char *path = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "vqhVt:", opts, NULL)) != -1) {
        if (common_option(c)) continue;
        if (c == 't') path = optarg;
        else if ((c == 'n' && !strcmp(flag_name, "no-bos")) ||
                 (c == 'k' && !strcmp(flag_name, "keep-special")))
            *flag = 1;
        else bad_usage("unknown option for '%s'", cmd);
    }
    if (!path) bad_usage("'%s' needs --tokenizer FILE", cmd);
    if (optind != argc) bad_usage("'%s' reads stdin and takes no file arguments", cmd);
    tok_tokenizer *tok = NULL;
    if (tok_load(path, &tok) != 0) err_exit();
    return tok;
}

/* Parse one input line as JSON; errors name "stdin: line N". */
static json_t *parse_line(const char *line, size_t len, long lineno)
{
    char name[64];
    snprintf(name, sizeof name, "stdin: line %ld", lineno);
    json_error_t e;
    json_t *v = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v) ERR("%s, column %d: invalid JSON: %s", name, e.column, e.text);
    return v;
}

/* Call fn for each non-empty stdin line parsed as JSON; errors name the line. */
typedef void (*line_fn)(tok_tokenizer *tok, json_t *v, long lineno, tok_ids *ids, int flag);

static void for_each_json_line(tok_tokenizer *tok, line_fn fn, int flag)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    tok_ids ids = {0};
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n == 0) continue;
        json_t *v = parse_line(line, (size_t)n, lineno);
        if (!v) err_exit();
        ids.n = 0;
        fn(tok, v, lineno, &ids, flag);
        json_decref(v);
    }
    free(line);
    tok_ids_free(&ids);
    if (ferror(stdin)) DIE("stdin: read error");
    if (fflush(stdout) != 0) DIE("stdout: write error");
}

static void tokenize_line(tok_tokenizer *tok, json_t *v, long lineno, tok_ids *ids, int no_bos)
{
    if (!json_is_string(v))
        DIE("stdin: line %ld: expected a JSON string, like \"some text\"", lineno);
    if (tok_encode(tok, json_string_value(v), json_string_length(v), !no_bos, ids) != 0)
        err_exit();
    putchar('[');
    for (size_t i = 0; i < ids->n; i++) printf(i ? ", %d" : "%d", ids->ids[i]);
    puts("]");
}

static void detokenize_line(tok_tokenizer *tok, json_t *v, long lineno, tok_ids *ids,
                            int keep_special)
{
    if (!json_is_array(v)) DIE("stdin: line %ld: expected a JSON array of token ids", lineno);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_integer(x) || json_integer_value(x) < 0 ||
            json_integer_value(x) >= tok_vocab_size(tok))
            DIE("stdin: line %ld: element %zu is not a token id in [0, %d)", lineno, i,
                tok_vocab_size(tok));
        tok_ids_push(ids, (int32_t)json_integer_value(x));
    }
    char *text = NULL;
    size_t len = 0;
    if (tok_decode(tok, ids->ids, ids->n, !keep_special, &text, &len) != 0) err_exit();
    json_t *s = json_stringn(text, len);
    if (!s) DIE("stdin: line %ld: decoded text is not valid UTF-8", lineno);
    char *dumped = json_dumps(s, JSON_ENCODE_ANY);
    puts(dumped);
    free(dumped);
    json_decref(s);
    free(text);
}

static int cmd_tokenize(int argc, char **argv)
{
    int no_bos = 0;
    tok_tokenizer *tok = open_tokenizer_option(argc, argv, "tokenize", &no_bos, "no-bos");
    for_each_json_line(tok, tokenize_line, no_bos);
    tok_free(tok);
    return 0;
}

static int cmd_detokenize(int argc, char **argv)
{
    int keep_special = 0;
    tok_tokenizer *tok =
        open_tokenizer_option(argc, argv, "detokenize", &keep_special, "keep-special");
    for_each_json_line(tok, detokenize_line, keep_special);
    tok_free(tok);
    return 0;
}

/* --------------------------------------------------------------- image -- */

static int write_rgb(hid_t f, const char *name, const img_rgb8 *im)
{
    int64_t dims[3] = {im->h, im->w, 3};
    return h5u_write(f, name, H5T_NATIVE_UINT8, 3, dims, im->pix);
}

/* The preprocessing stages, written one by one so each can be inspected. */
static int write_image_stages(hid_t f, const img_rgb8 *decoded, const img_proc_cfg *cfg,
                              img_mode mode)
{
    img_rgb8 square = {0}, resized = {0}, cropped = {0};
    const img_rgb8 *src = decoded;
    int rc = write_rgb(f, "decoded_rgb", decoded);
    if (rc == 0 && mode == IMG_PAD) {
        uint8_t bg[3];
        img_pad_background(cfg, bg);
        rc = img_expand_square(decoded, bg, &square);
        if (rc == 0) rc = write_rgb(f, "padded_rgb", &square);
        src = &square;
    }
    if (rc == 0) rc = img_resize_shortest_edge(src, cfg->shortest_edge, &resized);
    if (rc == 0) rc = write_rgb(f, "resized_rgb", &resized);
    if (rc == 0) rc = img_center_crop(&resized, cfg->crop_w, cfg->crop_h, &cropped);
    if (rc == 0) rc = write_rgb(f, "cropped_rgb", &cropped);
    float *px = xmalloc(sizeof(float) * 3 * (size_t)cfg->crop_w * cfg->crop_h);
    if (rc == 0) rc = img_preprocess(decoded, cfg, mode, px); /* [3, crop_h, crop_w] */
    int64_t dims[3] = {3, cfg->crop_h, cfg->crop_w};
    if (rc == 0) rc = h5u_write(f, "pixel_values", H5T_NATIVE_FLOAT, 3, dims, px);
    free(px);
    img_free(&square);
    img_free(&resized);
    img_free(&cropped);
    return rc;
}

static int cmd_image(int argc, char **argv)
{
    static struct option opts[] = {COMMON_LONG_OPTS, {"preprocess", required_argument, 0, 'p'},
                                   {"size", required_argument, 0, 's'},
                                   {"model", required_argument, 0, 'm'},
                                   {"out", required_argument, 0, 'o'}, {0, 0, 0, 0}};
    const char *out = NULL, *model = NULL, *mode_s = "pad";
    int size = 0, c;
    while ((c = getopt_long(argc, argv, "vqhVo:", opts, NULL)) != -1) {
        if (common_option(c)) continue;
        switch (c) {
        case 'p': mode_s = optarg; break;
        case 's': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 8192) bad_usage("--size: expected 1..8192, got '%s'", optarg);
            size = (int)v;
            break;
        }
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        default: bad_usage("%s", "unknown option for 'image'");
        }
    }
    if (optind != argc - 1) bad_usage("%s", "'image' takes one IMAGE (JPEG or PNG)");
    if (!out) bad_usage("%s", "'image' needs --out FILE.h5");
    img_mode mode;
    if (img_mode_parse(mode_s, &mode) != 0) err_exit();
    img_proc_cfg cfg;
    img_proc_default(&cfg);
    if (model && img_proc_load(model, &cfg) != 0) err_exit();
    if (size) {
        cfg.shortest_edge = size;
        cfg.crop_w = cfg.crop_h = size;
    }
    const char *path = argv[optind];
    img_rgb8 im = {0};
    if (img_load(path, &im) != 0) err_exit();

    h5u_init();
    h5u_newfile nf;
    if (h5u_create(out, &nf) != 0) err_exit();
    int rc = write_image_stages(nf.file, &im, &cfg, mode);
    if (rc == 0) rc = h5u_attr_str(nf.file, "source", path);
    if (rc == 0) rc = h5u_attr_str(nf.file, "preprocess", mode_s);
    if (rc == 0) rc = h5u_attr_i64(nf.file, "size", cfg.crop_w);
    if (rc == 0) rc = h5u_attr_str(nf.file, "tool", "sima-model image " SIMA_VERSION);
    img_free(&im);
    if (rc != 0) {
        h5u_abandon(&nf);
        err_context("%s", out);
        err_exit();
    }
    if (h5u_commit(&nf) != 0) err_exit();
    log_info("wrote %s: pixel_values [3, %d, %d] (%s)", out, cfg.crop_h, cfg.crop_w, mode_s);
    return 0;
}

int main(int argc, char **argv)
{
    err_set_program("sima-model");
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("sima-model %s\n", SIMA_VERSION);
        return 0;
    }
    /* subcommand options start after the command name */
    argc--;
    argv++;
    if (!strcmp(cmd, "info")) return cmd_info(argc, argv);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc, argv);
    if (!strcmp(cmd, "detokenize")) return cmd_detokenize(argc, argv);
    if (!strcmp(cmd, "image")) return cmd_image(argc, argv);
    bad_usage("unknown command '%s' (info, tokenize, detokenize, image)", cmd);
}
