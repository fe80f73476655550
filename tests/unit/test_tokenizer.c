/* test_tokenizer.c — tokenizer behaviour on small hand-made files: merge
 * order (rank vs score, leftmost ties), unknown characters, added tokens,
 * Metaspace schemes, decoders, sentencepiece user-defined and unused
 * pieces, whitespace rules, and the LLaVA prompt rule. */
#include "check.h"
#include "err.h"
#include "golden.h"
#include "tok_test_models.h"
#include "tokenizer.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS "\xE2\x96\x81" /* '▁' */

/* ---- helpers -------------------------------------------------------------- */

static tok_tokenizer *load_text(const char *text, size_t len, const char *name)
{
    tok_tokenizer *tok = NULL;
    CHECK_OK(tok_load_buf(text, len, name, &tok));
    return tok;
}

static tok_tokenizer *load_json(const char *model_extra, const char *vocab_extra,
                                const char *merges, const char *added_extra)
{
    char *json = mini_json(model_extra, vocab_extra, merges, added_extra);
    tok_tokenizer *tok = load_text(json, strlen(json), "mini/tokenizer.json");
    free(json);
    return tok;
}

/* mini json with substrings replaced: pairs (from, to), NULL-terminated */
static tok_tokenizer *load_json_edit(const char *from, ...)
{
    char *json = mini_json("", "", MINI_MERGES, "");
    va_list ap;
    va_start(ap, from);
    for (const char *f = from; f; f = va_arg(ap, const char *)) {
        const char *to = va_arg(ap, const char *);
        char *at = strstr(json, f);
        CHECK_MSG(at != NULL, "test bug: \"%s\" not found", f);
        if (!at) break;
        size_t n = strlen(json) + strlen(to) + 1;
        char *edited = xmalloc(n);
        snprintf(edited, n, "%.*s%s%s", (int)(at - json), json, to, at + strlen(f));
        free(json);
        json = edited;
    }
    va_end(ap);
    tok_tokenizer *tok = load_text(json, strlen(json), "mini/tokenizer.json");
    free(json);
    return tok;
}

/* encode and compare with the -1-terminated list of expected ids */
static void expect_ids_at(const char *file, int line, const tok_tokenizer *tok,
                          const char *text, size_t len, int mode, ...)
{
    tok_ids got = {0};
    int rc = mode == 0   ? tok_encode(tok, text, len, false, &got)
             : mode == 1 ? tok_encode(tok, text, len, true, &got)
                         : tok_encode_plain(tok, text, len, &got);
    va_list ap;
    va_start(ap, mode);
    bool ok = rc == 0;
    size_t i = 0;
    for (int want; (want = va_arg(ap, int)) != -1; i++)
        ok = ok && i < got.n && got.ids[i] == want;
    va_end(ap);
    ok = ok && i == got.n;
    char buf[256] = "";
    for (size_t k = 0; k < got.n && strlen(buf) < 200; k++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " %d", got.ids[k]);
    check_report(ok, file, line, "encode \"%s\": got [%s ] (rc %d %s)", text, buf, rc, err_msg());
    tok_ids_free(&got);
}
#define ENC(tok, text, ...) expect_ids_at(__FILE__, __LINE__, tok, text, strlen(text), 0, __VA_ARGS__, -1)
#define ENC_BOS(tok, text, ...) expect_ids_at(__FILE__, __LINE__, tok, text, strlen(text), 1, __VA_ARGS__, -1)
#define ENC_NOTHING(tok, text) expect_ids_at(__FILE__, __LINE__, tok, text, strlen(text), 0, -1)
#define ENC_PLAIN(tok, text, ...) expect_ids_at(__FILE__, __LINE__, tok, text, strlen(text), 2, __VA_ARGS__, -1)

static void expect_decode_at(const char *file, int line, const tok_tokenizer *tok,
                             bool skip, const char *want, size_t n, const int32_t *ids)
{
    char *text = NULL;
    size_t len = 0;
    int rc = tok_decode(tok, ids, n, skip, &text, &len);
    bool ok = rc == 0 && text && len == strlen(want) && memcmp(text, want, len) == 0;
    check_report(ok, file, line, "decode: got \"%s\", want \"%s\"", text ? text : "(null)", want);
    free(text);
}
#define DEC(tok, skip, want, ...)                                                          \
    do {                                                                                   \
        const int32_t ids_[] = {__VA_ARGS__};                                              \
        expect_decode_at(__FILE__, __LINE__, tok, skip, want, sizeof ids_ / sizeof *ids_, ids_); \
    } while (0)

/* ---- tokenizer.json -------------------------------------------------------- */

/* vocab: <unk>0 <s>1 </s>2 ▁3 a4 b5 ab6 ▁a7 ▁ab8 aa9;
 * merges by rank: a+b, ▁+a, ▁a+b, a+a */
static void test_merge_order(void)
{
    tok_tokenizer *tok = load_json("", "", MINI_MERGES, "");
    if (!tok) return;
    ENC(tok, "ab", 3, 6);        /* rank 0 (a b) first: ▁ + ab, no merge for that */
    ENC_BOS(tok, "ab", 1, 3, 6);
    ENC(tok, "a b", 7, 3, 5);
    ENC(tok, "aaa", 7, 9);       /* ▁a first (rank 1), then the remaining a a */
    ENC(tok, "baaa", 3, 5, 9, 4); /* equal ranks: leftmost pair first */
    ENC_NOTHING(tok, "");
    ENC_BOS(tok, "", 1);
    tok_free(tok);

    /* merges written as pairs, as newer tokenizers versions save them */
    tok = load_json("", "",
                    "[\"a\", \"b\"], [\"" MS "\", \"a\"], [\"" MS "a\", \"b\"], [\"a\", \"a\"]", "");
    if (tok) {
        ENC(tok, "ab", 3, 6);
        ENC(tok, "baaa", 3, 5, 9, 4);
        tok_free(tok);
    }
}

static void test_unknown_chars(void)
{
    tok_tokenizer *tok = load_json("", "", MINI_MERGES, "");
    if (tok) {
        ENC(tok, "azz", 7, 0, 0); /* fuse_unk off: one <unk> per character */
        tok_free(tok);
    }
    tok = load_json(", \"fuse_unk\": true", "", MINI_MERGES, "");
    if (tok) {
        ENC(tok, "azz", 7, 0);
        ENC(tok, "zaz", 3, 0, 4, 0); /* ▁ z a z: ▁ and a do not meet */
        tok_free(tok);
    }
}

static void test_ignore_merges(void)
{
    tok_tokenizer *tok = load_json("", ", \"" MS "aab\": 10", MINI_MERGES, "");
    if (tok) {
        ENC(tok, "aab", 7, 6);
        tok_free(tok);
    }
    tok = load_json(", \"ignore_merges\": true", ", \"" MS "aab\": 10", MINI_MERGES, "");
    if (tok) {
        ENC(tok, "aab", 10); /* the whole word is in the vocabulary */
        ENC(tok, "ab", 8);
        tok_free(tok);
    }
}

static void test_added_tokens(void)
{
    tok_tokenizer *tok = load_json("", "", MINI_MERGES,
                                   ", {\"id\": 10, \"content\": \"<x>\", \"special\": false, "
                                   "\"normalized\": false}");
    if (tok) {
        ENC(tok, "a <x> b", 7, 3, 10, 3, 3, 5); /* pieces around it normalized apart */
        ENC(tok, "a</s>", 7, 2);
        ENC_PLAIN(tok, "a<x>", 7, 0, 0, 0);     /* plain: "<x>" is characters */
        ENC(tok, "<x>", 10);
        CHECK_EQ(tok_piece_to_id(tok, "<x>"), 10);
        CHECK(!tok_is_special(tok, 10));
        CHECK(tok_is_special(tok, 1));
        DEC(tok, true, "a<x> b", 7, 10, 3, 5);
        DEC(tok, true, "a", 1, 7, 2);          /* <s>, </s> skipped */
        DEC(tok, false, "<s> a</s>", 1, 7, 2);
        tok_free(tok);
    }
    tok = load_json("", "", MINI_MERGES,
                    ", {\"id\": 10, \"content\": \"<x>\", \"special\": true, \"lstrip\": true, "
                    "\"rstrip\": true, \"normalized\": false}");
    if (tok) {
        ENC(tok, "a <x> b", 7, 10, 3, 5); /* spaces around it absorbed */
        ENC(tok, "a  <x>", 7, 10);
        tok_free(tok);
    }
    /* a "normalized" added token is matched in normalized text, against its
     * normalized content (here: Prepend makes the pattern "▁b") */
    tok = load_json("", "", MINI_MERGES,
                    ", {\"id\": 10, \"content\": \"b\", \"special\": false, \"normalized\": true}");
    if (tok) {
        ENC(tok, "a b", 7, 10);
        ENC(tok, "ab", 3, 6);
        tok_free(tok);
    }
}

/* the mini file with normalizer null and a Metaspace pre-tokenizer */
static tok_tokenizer *load_metaspace(const char *fields)
{
    char pre[512];
    snprintf(pre, sizeof pre, "\"pre_tokenizer\": {\"type\": \"Metaspace\"%s}", fields);
    return load_json_edit("\"normalizer\": {", "\"normalizer\": null, \"unused\": {",
                          "\"pre_tokenizer\": null", pre, NULL);
}

static void test_metaspace(void)
{
    tok_tokenizer *tok = load_metaspace(", \"replacement\": \"" MS "\", \"prepend_scheme\": \"first\", \"split\": false");
    if (tok) {
        ENC(tok, "ab", 3, 6);
        ENC(tok, " ab", 3, 6);    /* already starts with '▁': no second one */
        ENC(tok, "a b", 7, 3, 5);
        ENC(tok, "</s>ab", 2, 6); /* not at offset 0: no prefix */
        tok_free(tok);
    }
    tok = load_metaspace(", \"prepend_scheme\": \"always\", \"split\": true");
    if (tok) {
        ENC(tok, "ab a", 3, 6, 7); /* words "▁ab" and "▁a" */
        ENC(tok, "</s>ab", 2, 3, 6);
        tok_free(tok);
    }
    tok = load_metaspace(", \"prepend_scheme\": \"never\"");
    if (tok) {
        ENC(tok, "ab", 6);
        ENC(tok, "a b", 4, 3, 5);
        tok_free(tok);
    }
    /* files from tokenizers < 0.19: add_prefix_space instead of a scheme */
    tok = load_metaspace(", \"add_prefix_space\": false");
    if (tok) {
        ENC(tok, "ab", 6);
        tok_free(tok);
    }
    tok = load_metaspace(", \"add_prefix_space\": true");
    if (tok) {
        ENC(tok, "</s>ab", 2, 3, 6);
        tok_free(tok);
    }
    /* Metaspace decoder: every '▁' of the first token is dropped (HF) */
    tok = load_json_edit("\"decoder\": {\"type\": \"Sequence\"",
                         "\"decoder\": {\"type\": \"Metaspace\", \"prepend_scheme\": \"first\"}, "
                         "\"unused\": {\"type\": \"Sequence\"", NULL);
    if (tok) {
        DEC(tok, true, " a  ", 3, 7, 3, 3);
        DEC(tok, true, "a b", 7, 3, 5);
        tok_free(tok);
    }
}

/* ---- the bundled tiny tokenizers: decoders and odd input ----------------- *
 * The ids below are those of tests/golden's vocabulary, read from that
 * folder whatever SIMA_GOLDEN_DIR says. */

static void test_golden_decoders(const tok_tokenizer *hf, const tok_tokenizer *sp)
{
    /* an incomplete UTF-8 sequence: one U+FFFD per byte in both */
    DEC(hf, true, "\xEF\xBF\xBD\xEF\xBF\xBD", 233, 154);
    DEC(sp, true, "\xEF\xBF\xBD\xEF\xBF\xBD", 233, 154);
    /* é then a stray F0: HF spoils the whole byte run, sentencepiece one byte */
    DEC(hf, true, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 198, 172, 243);
    DEC(sp, true, "\xC3\xA9\xEF\xBF\xBD", 198, 172, 243);
    /* special tokens kept as text when not skipped */
    DEC(hf, false, "<s> Hello", 1, 312, 1817, 1922);
    DEC(sp, false, "<s>Hello", 1, 312, 1817, 1922);
    DEC(sp, true, "Hello", 1, 312, 1817, 1922, 2);
    DEC(sp, false, " \xE2\x81\x87 x", 0, 851); /* sentencepiece's unk surface */
    DEC(hf, true, "Hello", 312, 1817, 1922, 99999, -5); /* bad ids skipped */
    /* malformed input is encoded as U+FFFD */
    tok_ids a = {0}, b = {0};
    CHECK_OK(tok_encode(hf, "x\xFFy", 3, false, &a));
    CHECK_OK(tok_encode(hf, "x\xEF\xBF\xBDy", 5, false, &b));
    CHECK(a.n == b.n && a.n > 0 && memcmp(a.ids, b.ids, a.n * sizeof *a.ids) == 0);
    tok_ids_free(&a);
    tok_ids_free(&b);
}

static void test_llava_prompt(const tok_tokenizer *hf, const tok_tokenizer *sp)
{
    const tok_tokenizer *toks[2] = {hf, sp};
    for (int k = 0; k < 2; k++) {
        tok_ids ids = {0}, x = {0};
        const char *text = "<image>x<image>";
        CHECK_OK(tok_llava_prompt_ids(toks[k], text, strlen(text), 2000, 2, &ids));
        CHECK_OK(tok_encode_plain(toks[k], "x", 1, &x));
        bool ok = ids.n == 1 + 2 + x.n + 2 && ids.ids[0] == 1 && ids.ids[1] == 2000 &&
                  ids.ids[2] == 2000 && ids.ids[ids.n - 1] == 2000 && ids.ids[ids.n - 2] == 2000 &&
                  memcmp(ids.ids + 3, x.ids, x.n * sizeof *x.ids) == 0;
        CHECK_MSG(ok, "%s: <image>x<image> prompt", tok_source_kind(toks[k]));
        tok_ids_free(&ids);
        tok_ids_free(&x);
    }
    tok_ids ids = {0};
    CHECK_FAILS_WITH(tok_llava_prompt_ids(hf, "a", 1, 2000, -1, &ids), "negative");
    tok_ids_free(&ids);
}

/* merging is O(n log n): a long single word must not take quadratic time */
static void test_long_input(const tok_tokenizer *hf, const tok_tokenizer *sp)
{
    size_t n = 400000;
    char *text = xmalloc(n);
    for (size_t i = 0; i < n; i++) text[i] = "ab c\xC3\xA9"[i % 6];
    text[n - 1] = 'x';
    const tok_tokenizer *toks[2] = {hf, sp};
    for (int k = 0; k < 2; k++) {
        tok_ids ids = {0};
        clock_t t0 = clock();
        CHECK_OK(tok_encode(toks[k], text, n, false, &ids));
        double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECK_MSG(s < 10.0, "%s: 400 kB took %.2f s", tok_source_kind(toks[k]), s);
        char *back = NULL;
        size_t len = 0;
        CHECK_OK(tok_decode(toks[k], ids.ids, ids.n, true, &back, &len));
        CHECK_MSG(back && len == n && memcmp(back, text, n) == 0, "%s: round trip of 400 kB",
                  tok_source_kind(toks[k]));
        free(back);
        tok_ids_free(&ids);
    }
    free(text);
}

/* The bundled folder: 2000 pieces, then <image> 2000 and <pad> 2001. */
static void test_folder_load(void)
{
    char *dir = bundled_golden_path("tiny-llava");
    tok_tokenizer *tok = NULL;
    CHECK_OK(tok_load(dir, &tok));
    if (tok) {
        CHECK(strcmp(tok_source_kind(tok), "tokenizer.json") == 0);
        if (CHECK_EQ(tok_vocab_size(tok), 2002)) {
            const char *image = tok_id_to_piece(tok, 2000);
            CHECK_MSG(image && strcmp(image, "<image>") == 0, "piece 2000 is \"%s\"",
                      image ? image : "(none)");
        }
        CHECK(tok_id_to_piece(tok, tok_vocab_size(tok)) == NULL);
        CHECK(tok_id_to_piece(tok, -1) == NULL);
    }
    tok_free(tok);
    free(dir);
}

/* ---- sentencepiece models built here ---------------------------------------- */

static tok_tokenizer *load_spm(const spm_opts *o, const char *const *pieces, size_t n)
{
    pbw m = spm_model(o, pieces, n);
    tok_tokenizer *tok = load_text((const char *)m.p, m.n, "mini/tokenizer.model");
    free(m.p);
    return tok;
}

/* ids: <unk>0 <s>1 </s>2, then the pieces from 3 (no byte fallback) */
static void test_spm_pieces(void)
{
    spm_opts o = {.model_type = 2, .add_dummy_prefix = true};
    const char *user[] = {MS, "a", "b", "ab", MS "a", "<x>\t4"};
    tok_tokenizer *tok = load_spm(&o, user, 6);
    if (tok) {
        ENC(tok, "ab", 3, 6);        /* scores: "ab" (-3) beats "▁a" (-4) */
        ENC(tok, "a", 7);
        ENC(tok, "a<x>b", 7, 8, 5);  /* user-defined piece whole, never merged */
        ENC(tok, "az", 7, 0);        /* no byte fallback: <unk> */
        ENC_BOS(tok, "a", 1, 7);
        CHECK(!tok_is_special(tok, 8));
        CHECK(tok_is_special(tok, 0) && tok_is_special(tok, 1));
        CHECK_EQ(tok_piece_to_id(tok, "<s>"), 1);
        DEC(tok, true, "a<x>b", 7, 8, 5);
        tok_free(tok);
    }
    /* an UNUSED piece can be merged into, then is split back (sentencepiece) */
    const char *unused[] = {MS, "a", "b", "ab\t5", MS "a"};
    tok = load_spm(&o, unused, 5);
    if (tok) {
        ENC(tok, "ab", 3, 4, 5);
        tok_free(tok);
    }
    /* byte fallback: characters outside the pieces become <0xXX> */
    o.byte_fallback = true;
    tok = load_spm(&o, user, 6);
    if (tok) {
        int base = 3 + 256;
        ENC(tok, "az", base + 4, 3 + 'z');
        ENC(tok, "\xC3\xA9", base, 3 + 0xC3, 3 + 0xA9);
        DEC(tok, true, "a\xC3\xA9", base + 4, 3 + 0xC3, 3 + 0xA9);
        tok_free(tok);
    }
}

static void test_spm_whitespace(void)
{
    const char *pieces[] = {MS, "a", "b", "ab", MS "a"};
    spm_opts o = {.model_type = 2, .add_dummy_prefix = true, .remove_extra_whitespaces = true};
    tok_tokenizer *tok = load_spm(&o, pieces, 5);
    if (tok) {
        ENC(tok, "  a   b  ", 7, 3, 5);
        ENC_NOTHING(tok, "   ");
        DEC(tok, true, "a b", 7, 3, 5);
        tok_free(tok);
    }
    o = (spm_opts){.model_type = 2, .add_dummy_prefix = false};
    tok = load_spm(&o, pieces, 5);
    if (tok) {
        ENC(tok, "ab", 6);
        ENC(tok, " ab", 3, 6);
        DEC(tok, true, " ab", 3, 6); /* no dummy prefix: nothing stripped */
        tok_free(tok);
    }
}

int main(void)
{
    test_merge_order();
    test_unknown_chars();
    test_ignore_merges();
    test_added_tokens();
    test_metaspace();
    test_folder_load();
    test_spm_pieces();
    test_spm_whitespace();

    char *hp = bundled_golden_path("tiny-llava/tokenizer.json");
    char *sp_path = bundled_golden_path("tiny-llava/tokenizer.model");
    tok_tokenizer *hf = NULL, *sp = NULL;
    CHECK_OK(tok_load(hp, &hf));
    CHECK_OK(tok_load(sp_path, &sp));
    if (hf && sp) {
        test_golden_decoders(hf, sp);
        test_llava_prompt(hf, sp);
        test_long_input(hf, sp);
    }
    tok_free(hf);
    tok_free(sp);
    free(hp);
    free(sp_path);
    return check_finish();
}
