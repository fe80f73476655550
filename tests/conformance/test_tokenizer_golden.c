/* test_tokenizer_golden.c — both tiny-llava tokenizer files against the
 * reference ids: every case of tokenizer_cases.json (sentencepiece ids and
 * decode, tokenizer.json ids with BOS and decode), and the LLaVA prompt ids
 * of golden.h5 forward/<case>/input_ids. Cases are enumerated from the
 * files, so another folder of the same layout can be checked. */
#include "check.h"
#include "err.h"
#include "golden.h"
#include "js.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* A JSON array of integers as a tok_ids. */
static tok_ids json_ids(const json_t *arr)
{
    tok_ids v = {0};
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) tok_ids_push(&v, (int32_t)json_integer_value(x));
    return v;
}

static bool same_ids(const tok_ids *a, const int32_t *b, size_t nb)
{
    return a->n == nb && (nb == 0 || memcmp(a->ids, b, nb * sizeof *b) == 0);
}

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    fprintf(stderr, "    %s:", label);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

static void check_ids(const char *what, size_t case_no, const tok_ids *got,
                      const tok_ids *want)
{
    bool ok = same_ids(got, want->ids, want->n);
    CHECK_MSG(ok, "case %zu: %s differ", case_no, what);
    if (!ok) {
        print_ids("got ", got->ids, got->n);
        print_ids("want", want->ids, want->n);
    }
}

static void check_decode(const tok_tokenizer *tok, const char *what, size_t case_no,
                         const tok_ids *ids, const json_t *want)
{
    if (!json_is_string(want)) return;
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(tok_decode(tok, ids->ids, ids->n, true, &text, &len));
    bool ok = text && len == json_string_length(want) &&
              memcmp(text, json_string_value(want), len) == 0;
    CHECK_MSG(ok, "case %zu: %s: got \"%s\", want \"%s\"", case_no, what,
              text ? text : "(null)", json_string_value(want));
    free(text);
}

static void check_pieces(const tok_tokenizer *sp, size_t case_no, const tok_ids *ids,
                         const json_t *pieces)
{
    if (!json_is_array(pieces)) return;
    bool ok = json_array_size(pieces) == ids->n;
    for (size_t i = 0; ok && i < ids->n; i++) {
        const char *p = tok_id_to_piece(sp, ids->ids[i]);
        ok = p && strcmp(p, json_string_value(json_array_get(pieces, i))) == 0;
    }
    CHECK_MSG(ok, "case %zu: sp_pieces differ", case_no);
}

static void check_case(const tok_tokenizer *sp, const tok_tokenizer *hf, size_t i,
                       const json_t *c)
{
    const json_t *jt = json_object_get(c, "text");
    const char *text = json_string_value(jt);
    size_t len = json_string_length(jt);
    tok_ids want_sp = json_ids(json_object_get(c, "sp_ids"));
    tok_ids want_hf = json_ids(json_object_get(c, "hf_ids_with_bos"));
    tok_ids got_sp = {0}, got_hf = {0}, got_plain = {0};

    CHECK_OK(tok_encode(sp, text, len, false, &got_sp));
    check_ids("sentencepiece ids", i, &got_sp, &want_sp);
    check_pieces(sp, i, &got_sp, json_object_get(c, "sp_pieces"));
    check_decode(sp, "sentencepiece decode", i, &want_sp, json_object_get(c, "sp_decode"));

    CHECK_OK(tok_encode(hf, text, len, true, &got_hf));
    check_ids("tokenizer.json ids (with BOS)", i, &got_hf, &want_hf);
    check_decode(hf, "tokenizer.json decode", i, &want_hf, json_object_get(c, "hf_decode"));

    /* without added-token splitting the two files must agree everywhere */
    CHECK_OK(tok_encode_plain(hf, text, len, &got_plain));
    check_ids("tokenizer.json plain ids vs sp_ids", i, &got_plain, &want_sp);

    tok_ids_free(&want_sp);
    tok_ids_free(&want_hf);
    tok_ids_free(&got_sp);
    tok_ids_free(&got_hf);
    tok_ids_free(&got_plain);
}

static void check_header_fields(const tok_tokenizer *sp, const tok_tokenizer *hf,
                                const json_t *cases)
{
    long long v;
    const char *w = "tokenizer_cases.json";
    if (js_get_int(cases, "vocab_size", -1, &v, w) == 0 && v >= 0)
        CHECK_EQ(tok_vocab_size(sp), v);
    if (js_get_int(cases, "bos_id", -1, &v, w) == 0 && v >= 0) {
        CHECK_EQ(tok_bos_id(sp), v);
        CHECK_EQ(tok_bos_id(hf), v);
    }
    if (js_get_int(cases, "eos_id", -1, &v, w) == 0 && v >= 0) {
        CHECK_EQ(tok_eos_id(sp), v);
        CHECK_EQ(tok_eos_id(hf), v);
    }
    if (js_get_int(cases, "unk_id", -1, &v, w) == 0 && v >= 0) {
        CHECK_EQ(tok_unk_id(sp), v);
        CHECK_EQ(tok_unk_id(hf), v);
    }
    if (js_get_int(cases, "image_token_id", -1, &v, w) == 0 && v >= 0) {
        CHECK_EQ(tok_piece_to_id(hf, "<image>"), v);
        CHECK(tok_is_special(hf, (int32_t)v));
    }
    if (js_get_int(cases, "pad_token_id", -1, &v, w) == 0 && v >= 0)
        CHECK_EQ(tok_piece_to_id(hf, "<pad>"), v);
    CHECK(strcmp(tok_source_kind(sp), "sentencepiece") == 0);
    CHECK(strcmp(tok_source_kind(hf), "tokenizer.json") == 0);
}

static void test_cases(const tok_tokenizer *sp, const tok_tokenizer *hf)
{
    char *path = golden_path("tokenizer_cases.json");
    json_error_t e;
    /* one case is "x\u0000y": jansson needs JSON_ALLOW_NUL for it */
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &e);
    CHECK_MSG(root != NULL, "%s: line %d: %s", path, e.line, e.text);
    free(path);
    if (!root) return;
    check_header_fields(sp, hf, root);
    const json_t *cases = json_object_get(root, "cases");
    CHECK(json_array_size(cases) > 0);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) check_case(sp, hf, i, c);
    printf("tokenizer_cases.json: %zu cases checked\n", json_array_size(cases));
    json_decref(root);
}

/* image tokens per image and the image token id, from the model's config */
static void image_settings(int *n_image, int32_t *image_id)
{
    char *path = golden_path("tiny-llava/config.json");
    json_t *cfg = js_load_file(path);
    if (!cfg) DIE("%s", err_msg());
    long long seq = -1, idx = -1, size = 0, patch = 1;
    const json_t *vision = json_object_get(cfg, "vision_config");
    if (js_get_int(cfg, "image_seq_length", -1, &seq, path) != 0 ||
        js_get_int(cfg, "image_token_index", 32000, &idx, path) != 0 ||
        js_get_int(vision, "image_size", 0, &size, path) != 0 ||
        js_get_int(vision, "patch_size", 1, &patch, path) != 0)
        DIE("%s", err_msg());
    if (seq < 0) seq = (size / patch) * (size / patch);
    *n_image = (int)seq;
    *image_id = (int32_t)idx;
    json_decref(cfg);
    free(path);
}

static char *llava_prompt(const char *question, bool has_image)
{
    size_t n = strlen(question) + 64;
    char *p = xmalloc(n);
    snprintf(p, n, has_image ? "USER: <image>\n%s ASSISTANT:" : "USER: %s ASSISTANT:", question);
    return p;
}

static void test_forward_prompts(const tok_tokenizer *sp, const tok_tokenizer *hf)
{
    int n_image;
    int32_t image_id;
    image_settings(&n_image, &image_id);
    hid_t f = gh5_open();
    size_t n_cases;
    char **cases = gh5_list(f, "/forward", &n_cases);
    CHECK(n_cases > 0);
    for (size_t i = 0; i < n_cases; i++) {
        char obj[256], ds[300];
        snprintf(obj, sizeof obj, "/forward/%s", cases[i]);
        snprintf(ds, sizeof ds, "%s/input_ids", obj);
        int64_t dims[8];
        int ndim;
        int64_t *want = gh5_read_i64(f, ds, dims, &ndim);
        char *question = gh5_attr_str(f, obj, "question");
        char *image = gh5_attr_str(f, obj, "image");
        CHECK_MSG(want && question && image, "%s: input_ids/question/image missing", obj);
        if (want && question && image) {
            char *prompt = llava_prompt(question, image[0] != '\0');
            const tok_tokenizer *toks[2] = {sp, hf};
            for (int k = 0; k < 2; k++) {
                tok_ids got = {0};
                CHECK_OK(tok_llava_prompt_ids(toks[k], prompt, strlen(prompt), image_id,
                                              n_image, &got));
                bool ok = got.n == (size_t)dims[0];
                for (size_t j = 0; ok && j < got.n; j++) ok = got.ids[j] == want[j];
                CHECK_MSG(ok, "%s: %s prompt ids differ from input_ids", obj,
                          tok_source_kind(toks[k]));
                if (!ok) print_ids("got ", got.ids, got.n);
                tok_ids_free(&got);
            }
            free(prompt);
        }
        free(want);
        free(question);
        free(image);
    }
    printf("golden.h5: %zu forward prompts checked (%d image tokens, id %d)\n", n_cases,
           n_image, image_id);
    gh5_free_list(cases, n_cases);
    H5Fclose(f);
}

int main(void)
{
    tok_tokenizer *sp = NULL, *hf = NULL;
    char *sp_path = golden_path("tiny-llava/tokenizer.model");
    char *hf_path = golden_path("tiny-llava/tokenizer.json");
    CHECK_OK(tok_load(sp_path, &sp));
    CHECK_OK(tok_load(hf_path, &hf));
    free(sp_path);
    free(hf_path);
    if (!sp || !hf) return check_finish();
    test_cases(sp, hf);
    test_forward_prompts(sp, hf);
    tok_free(sp);
    tok_free(hf);
    return check_finish();
}
