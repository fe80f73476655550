/* alt_golden.c — tokenizer_cases.json and golden.h5 of the alternative
 * folder, computed by our CPU implementation on the folder's own model,
 * tokenizers and images. The layout follows tests/golden/README.md. */
#include "alt.h"
#include "dpo.h"
#include "err.h"
#include "fs.h"
#include "h5util.h"
#include "image.h"
#include "js.h"
#include "llava.h"
#include "lora.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "train_names.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tokenizer_cases.json -------------------------------------------------- */

static const char *const EXTRA_TEXTS[] = {
    "The market sells 12 kinds of fruit, \303\274ber-fresh!", /* u-umlaut, octal: no run-on */
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88",
    "tabs\tand\nnew lines  and   spaces",
    "<image> in the middle, <pad> and </s> too",
    "\xF0\x9F\x99\x82\xF0\x9F\x91\x8D emoji",
};

static json_t *ids_json(const tok_ids *v)
{
    json_t *a = json_array();
    for (size_t i = 0; i < v->n; i++) json_array_append_new(a, json_integer(v->ids[i]));
    return a;
}

static json_t *decode_json(const tok_tokenizer *tok, const tok_ids *v)
{
    char *text = NULL;
    size_t len = 0;
    MUST(tok_decode(tok, v->ids, v->n, true, &text, &len));
    json_t *s = json_stringn(text, len);
    free(text);
    return s;
}

static json_t *one_case(const tok_tokenizer *sp, const tok_tokenizer *hf, const char *text, size_t len)
{
    tok_ids s = {0}, h = {0}, plain = {0};
    MUST(tok_encode(sp, text, len, false, &s));
    MUST(tok_encode(hf, text, len, true, &h));
    MUST(tok_encode_plain(hf, text, len, &plain));
    if (plain.n != s.n || (s.n && memcmp(plain.ids, s.ids, s.n * sizeof *s.ids) != 0))
        DIE("the written tokenizer.json and tokenizer.model disagree on \"%.*s\"", (int)len, text);
    json_t *pieces = json_array();
    for (size_t i = 0; i < s.n; i++) json_array_append_new(pieces, json_string(tok_id_to_piece(sp, s.ids[i])));
    json_t *c = json_pack("{s:s%,s:o,s:o,s:o,s:o,s:o}", "text", text, len, "sp_ids", ids_json(&s),
                          "sp_pieces", pieces, "hf_ids_with_bos", ids_json(&h), "hf_decode",
                          decode_json(hf, &h), "sp_decode", decode_json(sp, &s));
    if (!c) DIE("tokenizer case \"%.*s\": json_pack failed", (int)len, text);
    tok_ids_free(&s);
    tok_ids_free(&h);
    tok_ids_free(&plain);
    return c;
}

void alt_write_tokenizer_cases(const alt_shape *sh, const char *bundled_cases, const char *dir)
{
    char *sp_path = fs_join(dir, "tiny-llava/tokenizer.model");
    char *hf_path = fs_join(dir, "tiny-llava/tokenizer.json");
    tok_tokenizer *sp = NULL, *hf = NULL;
    MUST(tok_load(sp_path, &sp));
    MUST(tok_load(hf_path, &hf));
    json_error_t e;
    json_t *bundled = json_load_file(bundled_cases, JSON_ALLOW_NUL, &e); /* one text has a NUL */
    if (!bundled) DIE("%s: line %d: %s", bundled_cases, e.line, e.text);
    json_t *cases = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(bundled, "cases"), i, c) {
        const json_t *t = json_object_get(c, "text");
        json_array_append_new(cases, one_case(sp, hf, json_string_value(t), json_string_length(t)));
    }
    for (i = 0; i < sizeof EXTRA_TEXTS / sizeof *EXTRA_TEXTS; i++)
        json_array_append_new(cases, one_case(sp, hf, EXTRA_TEXTS[i], strlen(EXTRA_TEXTS[i])));
    json_t *root = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:o}", "vocab_size", tok_vocab_size(sp),
                             "bos_id", tok_bos_id(sp), "eos_id", tok_eos_id(sp), "unk_id",
                             tok_unk_id(sp), "image_token_id", sh->n_pieces, "pad_token_id",
                             sh->n_pieces + 1, "cases", cases);
    char *text = json_dumps(root, JSON_INDENT(1));
    char *out = fs_join(dir, "tokenizer_cases.json");
    MUST(fs_write_atomic(out, text, strlen(text)));
    free(out);
    free(text);
    json_decref(root);
    json_decref(bundled);
    tok_free(sp);
    tok_free(hf);
    free(sp_path);
    free(hf_path);
}

/* ---- HDF5 writing --------------------------------------------------------------- */

static hid_t new_group(hid_t loc, const char *name)
{
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        h5u_error_at(__FILE__, __LINE__, name);
        err_exit();
    }
    return g;
}

static void put_f32(hid_t loc, const char *name, const float *v, int nd, int64_t d0, int64_t d1,
                    int64_t d2)
{
    int64_t dims[3] = {d0, d1, d2};
    MUST(h5u_write(loc, name, H5T_NATIVE_FLOAT, nd, dims, v));
}

static void put_ids(hid_t loc, const char *name, const int32_t *ids, int64_t n)
{
    int64_t *v = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) v[i] = ids[i];
    MUST(h5u_write(loc, name, H5T_NATIVE_INT64, 1, &n, v));
    free(v);
}

static void put_rgb(hid_t loc, const char *name, const img_rgb8 *im)
{
    int64_t dims[3] = {im->h, im->w, 3};
    MUST(h5u_write(loc, name, H5T_NATIVE_UINT8, 3, dims, im->pix));
}

static int put_attr_i64_array(hid_t obj, const char *name, const int64_t *v, hsize_t n)
{
    hid_t space = H5Screate_simple(1, &n, NULL);
    CHECK_H5(space, name);
    hid_t a = H5Acreate2(obj, name, H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(space);
    CHECK_H5(a, name);
    herr_t rc = H5Awrite(a, H5T_NATIVE_INT64, v);
    H5Aclose(a);
    CHECK_H5(rc, name);
    return 0;
}

static float *host(const llava_model *m, be_mat x)
{
    float *h = xmalloc(sizeof(float) * (size_t)(x.rows * x.cols));
    m->be->download(m->be, x, h);
    return h;
}

static void put_mat(hid_t loc, const char *name, const llava_model *m, be_mat x)
{
    float *h = host(m, x);
    put_f32(loc, name, h, 2, x.rows, x.cols, 0);
    free(h);
}

/* ---- images/ ---------------------------------------------------------------------- */

/* Pixel values [3, S, S] of a folder image in "crop" or "pad" mode. */
static float *preprocess(const char *dir, const char *file, const char *mode_s,
                         const img_proc_cfg *cfg)
{
    char rel[300];
    snprintf(rel, sizeof rel, "images/%s", file);
    char *path = fs_join(dir, rel);
    img_rgb8 im;
    img_mode mode;
    MUST(img_mode_parse(mode_s, &mode));
    MUST(img_load_jpeg(path, &im));
    float *px = xmalloc(sizeof(float) * 3 * (size_t)cfg->crop_w * cfg->crop_h);
    MUST(img_preprocess(&im, cfg, mode, px));
    img_free(&im);
    free(path);
    return px;
}

static void write_image(hid_t images, const char *dir, const char *file, const img_proc_cfg *cfg)
{
    char rel[300];
    snprintf(rel, sizeof rel, "images/%s", file);
    char *path = fs_join(dir, rel);
    img_rgb8 dec, res, crop;
    MUST(img_load_jpeg(path, &dec));
    MUST(img_resize_shortest_edge(&dec, cfg->shortest_edge, &res));
    MUST(img_center_crop(&res, cfg->crop_w, cfg->crop_h, &crop));
    hid_t g = new_group(images, file);
    put_rgb(g, "decoded_rgb", &dec);
    put_rgb(g, "resized_rgb", &res);
    put_rgb(g, "cropped_rgb", &crop);
    static const char *const modes[2] = {"crop", "pad"};
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(name, sizeof name, "pixel_values_%s", modes[k]);
        float *px = preprocess(dir, file, modes[k], cfg);
        put_f32(g, name, px, 3, 3, cfg->crop_h, cfg->crop_w);
        free(px);
    }
    uint8_t bg[3];
    img_pad_background(cfg, bg);
    int64_t bg64[3] = {bg[0], bg[1], bg[2]};
    MUST(put_attr_i64_array(g, "pad_background", bg64, 3));
    H5Gclose(g);
    img_free(&dec), img_free(&res), img_free(&crop);
    free(path);
}

/* ---- forward/ ---------------------------------------------------------------------- */

typedef struct {
    const char *question, *image, *mode; /* image "": a text-only prompt */
} alt_case;

static const alt_case CASES[] = {
    {"What is sold at the stall in this market?", "market_150x100.jpg", "crop"},
    {"Describe the tower and the sky around it.", "tower_70x115_q70.jpg", "pad"},
    {"Write one sentence about a quiet morning.", "", ""},
};

enum { GREEDY_MAX = 24 };

/* LLaVA prompt ids, as tests/golden's forward cases were made. */
static tok_ids prompt_ids(const llava_model *m, const tok_tokenizer *tok, const char *question,
                          bool image)
{
    char text[512];
    snprintf(text, sizeof text, image ? "USER: <image>\n%s ASSISTANT:" : "USER: %s ASSISTANT:", question);
    tok_ids ids = {0};
    MUST(tok_llava_prompt_ids(tok, text, strlen(text), m->cfg.image_token_index, m->image_tokens, &ids));
    return ids;
}

/* Final hidden states [n, D] of ids, no cache, with the image features. */
static be_mat forward(llava_model *m, const int32_t *ids, int64_t n, be_mat feats)
{
    be_mat hid = m->be->mat_new(m->be, n, m->cfg.text.hidden_size);
    llama_seq seq = {0, n, NULL, feats.rows > 0};
    llama_batch b = {n, ids, 1, &seq, feats};
    MUST(llama_forward(m, &b, hid));
    return hid;
}

/* Greedy continuation recomputing the whole sequence at every step (no
 * cache), stopping at EOS; margins top1 - top2. Returns the count. */
static int greedy(llava_model *m, const tok_ids *prompt, be_mat feats, int32_t *out, float *margins)
{
    int64_t V = m->cfg.text.vocab_size;
    int32_t *seq = xmalloc(sizeof(int32_t) * (prompt->n + GREEDY_MAX));
    memcpy(seq, prompt->ids, sizeof(int32_t) * prompt->n);
    be_mat logits = m->be->mat_new(m->be, 1, V);
    float *row = xmalloc(sizeof(float) * (size_t)V);
    int n = 0;
    while (n < GREEDY_MAX) {
        int64_t len = (int64_t)prompt->n + n;
        be_mat hid = forward(m, seq, len, feats);
        llama_logits(m, be_rows(hid, len - 1, 1), logits);
        m->be->download(m->be, logits, row);
        m->be->mat_free(m->be, &hid);
        int64_t a = 0, b = -1;
        for (int64_t i = 1; i < V; i++)
            if (row[i] > row[a]) a = i;
        for (int64_t i = 0; i < V; i++)
            if (i != a && (b < 0 || row[i] > row[b])) b = i;
        if (a == m->cfg.image_token_index) break; /* would take image features: end here */
        out[n] = (int32_t)a;
        margins[n] = row[a] - row[b];
        seq[len] = out[n++];
        if (a == m->cfg.text.eos_token_id) break;
    }
    m->be->mat_free(m->be, &logits);
    free(row);
    free(seq);
    return n;
}

static void write_case(hid_t forward_g, int k, llava_model *m, const tok_tokenizer *tok,
                       const char *dir, const img_proc_cfg *cfg)
{
    const alt_case *c = &CASES[k];
    bool with_image = c->image[0] != '\0';
    char name[32];
    snprintf(name, sizeof name, "case%d", k);
    hid_t g = new_group(forward_g, name);
    MUST(h5u_attr_str(g, "question", c->question));
    MUST(h5u_attr_str(g, "image", c->image));
    MUST(h5u_attr_str(g, "preprocess", c->mode));
    tok_ids ids = prompt_ids(m, tok, c->question, with_image);
    put_ids(g, "input_ids", ids.ids, (int64_t)ids.n);
    be_backend *be = m->be;
    be_mat feats = {0};
    if (with_image) {
        int S = m->cfg.vision.image_size;
        float *px = preprocess(dir, c->image, c->mode, cfg);
        put_f32(g, "pixel_values", px, 3, 3, S, S);
        int64_t T = m->n_patches + 1, C = m->cfg.vision.hidden_size;
        be_mat hs = be->mat_new(be, T, C), emb = be->mat_new(be, T, C);
        MUST(clip_forward(m, px, 1, hs, &emb));
        put_mat(g, "vision_embeddings", m, emb);
        put_mat(g, "vision_layer_m2", m, hs);
        be->mat_free(be, &hs);
        be->mat_free(be, &emb);
        feats = be->mat_new(be, m->image_tokens, m->cfg.text.hidden_size);
        MUST(llava_image_features(m, px, 1, feats));
        put_mat(g, "image_features", m, feats);
        free(px);
    }
    be_mat hid = forward(m, ids.ids, (int64_t)ids.n, feats);
    be_mat logits = be->mat_new(be, hid.rows, m->cfg.text.vocab_size);
    llama_logits(m, hid, logits);
    put_mat(g, "final_hidden", m, hid);
    put_mat(g, "logits", m, logits);
    be->mat_free(be, &hid);
    be->mat_free(be, &logits);

    int32_t out[GREEDY_MAX];
    float margins[GREEDY_MAX];
    int n = greedy(m, &ids, feats, out, margins);
    put_ids(g, "greedy_tokens", out, n);
    put_ids(g, "generate_tokens", out, n); /* our generate is the same greedy rule */
    put_f32(g, "greedy_margins", margins, 1, n, 0, 0);
    char *text = NULL;
    size_t len = 0;
    MUST(tok_decode(tok, out, (size_t)n, true, &text, &len));
    int64_t dims[1] = {(int64_t)len};
    MUST(h5u_write(g, "greedy_text_utf8", H5T_NATIVE_UINT8, 1, dims, text));
    free(text);
    if (feats.data) be->mat_free(be, &feats);
    tok_ids_free(&ids);
    H5Gclose(g);
}

/* ---- dpo/ and sft/ --------------------------------------------------------------------- */

typedef struct {
    const char *question, *image, *mode, *chosen, *rejected;
} alt_pair;

static const alt_pair PAIRS[] = {
    {"What colour is the disc in the sky?", "market_150x100.jpg", "crop",
     "The disc is a bright yellow sun.", "It is a blue square."},
    {"How tall is the tower?", "tower_70x115_q70.jpg", "pad",
     "The tower rises above the roofs.", "There is no tower, only water and a small boat."},
    {"Is the picture in colour?", "gray_64x64.jpg", "crop", "No, it is grey.",
     "Yes, it is full of red and green."},
};
enum { N_PAIRS = sizeof PAIRS / sizeof PAIRS[0] };

/* prompt + response + EOS */
static int32_t *sequence(const tok_ids *prompt, const tok_tokenizer *tok, const char *response,
                         int32_t eos, int64_t *n)
{
    tok_ids r = {0};
    MUST(tok_encode_plain(tok, response, strlen(response), &r));
    *n = (int64_t)(prompt->n + r.n + 1);
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)*n);
    memcpy(ids, prompt->ids, sizeof(int32_t) * prompt->n);
    memcpy(ids + prompt->n, r.ids, sizeof(int32_t) * r.n);
    ids[*n - 1] = eos;
    tok_ids_free(&r);
    return ids;
}

/* PEFT's name of a LoRA matrix with the adapter name, as PEFT's
 * named_parameters give it: "...q_proj.lora_A.default.weight". */
static void grad_name(int layer, llama_linear_id which, char ab, char *buf, size_t size)
{
    char base[256];
    lora_peft_name(layer, which, ab, base, sizeof base);
    char *w = strstr(base, ".weight");
    if (!w) DIE("unexpected PEFT name %s", base);
    *w = '\0';
    snprintf(buf, size, "%s.default.weight", base);
}

static void write_lora_grads(hid_t dpo, llava_model *m, llama_grads *g)
{
    hid_t grads = new_group(dpo, "grads");
    for (int l = 0; l < m->lm.n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++)
            for (int ab = 0; ab < 2; ab++) {
                be_mat x = ab ? g->layers[l].lora_B[i] : g->layers[l].lora_A[i];
                if (!x.data) continue; /* not targeted */
                char name[300];
                grad_name(l, (llama_linear_id)i, ab ? 'B' : 'A', name, sizeof name);
                put_mat(grads, name, m, x);
            }
    H5Gclose(grads);
}

/* base + (alpha / r) B A for layer 0's q_proj, in plain loops. */
static void write_merged_q(hid_t dpo, llava_model *m, const lora_adapter *ad)
{
    const be_weight *w = &m->lm.layers[0].q;
    const float *A = lora_host_A(ad, 0, LL_Q), *B = lora_host_B(ad, 0, LL_Q);
    if (!A || !B) return;
    int64_t out = w->rows, in = w->cols, r = ad->cfg.r;
    float *W = xmalloc(sizeof(float) * (size_t)(out * in));
    m->be->weight_get(m->be, w, W);
    double scale = ad->cfg.alpha / ad->cfg.r;
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) {
            double s = 0;
            for (int64_t k = 0; k < r; k++) s += (double)B[o * r + k] * A[k * in + i];
            W[o * in + i] += (float)(scale * s);
        }
    put_f32(dpo, "merged_layer0_q_proj", W, 2, out, in, 0);
    free(W);
}

typedef struct {
    tok_ids prompt;
    int32_t *chosen, *rejected;
    int64_t n_chosen, n_rejected;
} built_pair;

static void write_pair(hid_t dpo, int i, const built_pair *p, const float *px, int S,
                       const dpo_result *r)
{
    char name[32];
    snprintf(name, sizeof name, "pair%d", i);
    hid_t g = new_group(dpo, name);
    put_ids(g, "prompt_ids", p->prompt.ids, (int64_t)p->prompt.n);
    put_ids(g, "chosen_ids", p->chosen, p->n_chosen);
    put_ids(g, "rejected_ids", p->rejected, p->n_rejected);
    put_f32(g, "pixel_values", px, 3, 3, S, S);
    const train_pass *passes[2] = {&r->policy, &r->ref};
    const char *who[2] = {"policy", "ref"}, *side[2] = {"chosen", "rejected"};
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < 2; s++) {
            const train_pass *tp = passes[k];
            int q = 2 * i + s;
            char ds[64];
            snprintf(ds, sizeof ds, "%s_%s_token_logp", who[k], side[s]);
            put_f32(g, ds, tp->tok_logp + tp->tok_off[q], 1, tp->tok_off[q + 1] - tp->tok_off[q], 0, 0);
        }
    MUST(h5u_attr_f64(g, "policy_chosen_logp", r->policy_chosen[i]));
    MUST(h5u_attr_f64(g, "policy_rejected_logp", r->policy_rejected[i]));
    MUST(h5u_attr_f64(g, "ref_chosen_logp", r->ref_chosen[i]));
    MUST(h5u_attr_f64(g, "ref_rejected_logp", r->ref_rejected[i]));
    MUST(h5u_attr_f64(g, "loss", r->pair_loss[i]));
    H5Gclose(g);
}

static void write_dpo(hid_t file, const alt_shape *sh, llava_model *m, const tok_tokenizer *tok,
                      const char *dir, const img_proc_cfg *cfg, built_pair *pairs, float *pixels)
{
    int S = m->cfg.vision.image_size;
    size_t per = 3 * (size_t)S * S;
    dpo_pair dp[N_PAIRS] = {{0}};
    for (int i = 0; i < N_PAIRS; i++) {
        built_pair *p = &pairs[i];
        p->prompt = prompt_ids(m, tok, PAIRS[i].question, true);
        p->chosen = sequence(&p->prompt, tok, PAIRS[i].chosen, m->cfg.text.eos_token_id, &p->n_chosen);
        p->rejected = sequence(&p->prompt, tok, PAIRS[i].rejected, m->cfg.text.eos_token_id, &p->n_rejected);
        float *px = preprocess(dir, PAIRS[i].image, PAIRS[i].mode, cfg);
        memcpy(pixels + i * per, px, sizeof(float) * per);
        free(px);
        dp[i] = (dpo_pair){.chosen = p->chosen, .rejected = p->rejected, .n_chosen = p->n_chosen,
                           .n_rejected = p->n_rejected, .n_prompt = (int64_t)p->prompt.n, .image = i};
    }
    char *lora_dir = fs_join(dir, "tiny-llava-lora");
    lora_adapter *ad = NULL;
    MUST(lora_load_peft(m, lora_dir, &ad));
    lora_attach(m, ad);
    dpo_opts o = dpo_opts_default();
    o.beta = sh->dpo_beta;
    llama_grads g;
    llama_grads_new(m, LLAMA_GRAD_LORA, &g);
    dpo_result r;
    MUST(dpo_step(m, dp, N_PAIRS, pixels, N_PAIRS, &o, &g, &r));

    hid_t dpo = new_group(file, "dpo");
    MUST(h5u_attr_f64(dpo, "beta", o.beta));
    MUST(h5u_attr_i64(dpo, "lora_r", ad->cfg.r));
    MUST(h5u_attr_i64(dpo, "lora_alpha", (int64_t)ad->cfg.alpha));
    MUST(h5u_attr_f64(dpo, "mean_loss", r.loss));
    for (int i = 0; i < N_PAIRS; i++) write_pair(dpo, i, &pairs[i], pixels + i * per, S, &r);
    write_lora_grads(dpo, m, &g);
    write_merged_q(dpo, m, ad);
    H5Gclose(dpo);
    dpo_result_free(&r);
    llama_grads_free(m, &g);
    lora_detach(m);
    lora_free(ad);
    free(lora_dir);
}

/* Hub names of the SFT gradients: projector, first and last LLaMA layers,
 * final norm, the selected CLIP layer and the one after it (unused, zero),
 * post_layernorm (unused, zero). */
static char **sft_names(const llava_model *m, const st_set *set, int *n_out)
{
    int first = 0, last = m->lm.n_layers - 1, used = m->vision.n_layers - 1;
    char **names = xcalloc(st_count(set), sizeof *names);
    int n = 0;
    for (size_t i = 0; i < st_count(set); i++) {
        const char *t = st_at(set, i)->name;
        char a[96], b[96], c[96], d[96];
        snprintf(a, sizeof a, "language_model.model.layers.%d.", first);
        snprintf(b, sizeof b, "language_model.model.layers.%d.", last);
        snprintf(c, sizeof c, "vision_tower.encoder.layers.%d.", used);
        snprintf(d, sizeof d, "vision_tower.encoder.layers.%d.", used + 1);
        bool want = !strncmp(t, "multi_modal_projector.", 22) || !strncmp(t, a, strlen(a)) ||
                    !strncmp(t, b, strlen(b)) || !strcmp(t, "language_model.model.norm.weight") ||
                    !strncmp(t, c, strlen(c)) || !strncmp(t, d, strlen(d)) ||
                    !strncmp(t, "vision_tower.post_layernorm.", 28);
        if (want) names[n++] = xstrdup(t);
    }
    *n_out = n;
    return names;
}

static void write_sft(hid_t file, llava_model *m, const char *dir, const built_pair *p0,
                      const float *px0)
{
    train_seq seq = {p0->chosen, p0->n_chosen, (int64_t)p0->prompt.n, 0, false, 0, 0};
    llama_grads lg;
    vision_grads vg;
    llama_grads_new(m, LLAMA_GRAD_WEIGHTS, &lg);
    vision_grads_new(m, &vg);
    double loss = 0;
    MUST(sft_step(m, &seq, 1, px0, 1, TRAIN_WITH_VISION, &lg, &vg, &loss));
    hid_t sft = new_group(file, "sft");
    MUST(h5u_attr_f64(sft, "loss", loss));
    MUST(h5u_attr_i64(sft, "n_prompt", (int64_t)p0->prompt.n));
    put_ids(sft, "input_ids", p0->chosen, p0->n_chosen);
    hid_t grads = new_group(sft, "grads");
    char *model_dir = fs_join(dir, "tiny-llava");
    st_set *set = NULL;
    MUST(st_open_dir(model_dir, &set));
    int n = 0;
    char **names = sft_names(m, set, &n);
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_find(set, names[i]);
        float *v = xcalloc((size_t)t->numel, sizeof(float)); /* unused here: zero */
        be_mat *gm = train_grad_by_name(m, &lg, &vg, names[i]);
        if (gm && gm->rows * gm->cols != t->numel) DIE("%s: gradient of another size", names[i]);
        if (gm) m->be->download(m->be, *gm, v);
        MUST(h5u_write(grads, names[i], H5T_NATIVE_FLOAT, t->ndim, t->shape, v));
        free(v);
        free(names[i]);
    }
    free(names);
    st_close(set);
    free(model_dir);
    H5Gclose(grads);
    H5Gclose(sft);
    llama_grads_free(m, &lg);
    vision_grads_free(m, &vg);
}

void alt_write_golden_h5(const alt_shape *sh, const char *dir, char **images, int n_images)
{
    char *model_dir = fs_join(dir, "tiny-llava"), *path = fs_join(dir, "golden.h5");
    be_backend *be = be_cpu_new(0);
    llava_model *m = NULL;
    tok_tokenizer *tok = NULL;
    img_proc_cfg cfg;
    MUST(llava_load(model_dir, be, &m));
    MUST(tok_load(model_dir, &tok));
    MUST(img_proc_load(model_dir, &cfg));
    h5u_newfile nf;
    MUST(h5u_create(path, &nf));
    MUST(h5u_attr_str(nf.file, "generator",
                      "sima tests/golden_alt/make_golden_alt: our own CPU implementation, "
                      "not a transformers reference"));
    hid_t g = new_group(nf.file, "images");
    for (int i = 0; i < n_images; i++) write_image(g, dir, images[i], &cfg);
    H5Gclose(g);
    g = new_group(nf.file, "forward");
    for (int k = 0; k < (int)(sizeof CASES / sizeof CASES[0]); k++) write_case(g, k, m, tok, dir, &cfg);
    H5Gclose(g);
    built_pair pairs[N_PAIRS];
    int S = m->cfg.vision.image_size;
    float *pixels = xmalloc(sizeof(float) * N_PAIRS * 3 * (size_t)S * S);
    write_dpo(nf.file, sh, m, tok, dir, &cfg, pairs, pixels);
    write_sft(nf.file, m, dir, &pairs[0], pixels);
    MUST(h5u_commit(&nf));
    for (int i = 0; i < N_PAIRS; i++) {
        tok_ids_free(&pairs[i].prompt);
        free(pairs[i].chosen);
        free(pairs[i].rejected);
    }
    free(pixels);
    tok_free(tok);
    llava_free(m);
    be->destroy(be);
    free(model_dir);
    free(path);
}
