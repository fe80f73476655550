/* test_tokenizer_errors.c — bad tokenizer files give one-line errors that
 * name the file and what is wrong, never a tokenizer that encodes
 * differently from the reference. */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "tok_test_models.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* Load text as a tokenizer named NAME; must fail with `needle` and NAME in
 * a single-line message. */
static void expect_fail(const char *text, size_t len, const char *needle)
{
    static const char name[] = "bad/tokenizer.json";
    tok_tokenizer *tok = NULL;
    CHECK_FAILS_WITH(tok_load_buf(text, len, name, &tok), needle);
    CHECK_MSG(strstr(err_msg(), name) == err_msg(), "message should start with the file name: \"%s\"",
              err_msg());
    CHECK_MSG(strchr(err_msg(), '\n') == NULL, "message should be one line: \"%s\"", err_msg());
    CHECK(tok == NULL);
    tok_free(tok);
}

static void expect_fail_str(const char *text, const char *needle)
{
    expect_fail(text, strlen(text), needle);
}

/* the mini tokenizer.json with one substring replaced */
static void expect_fail_edit(const char *from, const char *to, const char *needle)
{
    char *json = mini_json("", "", MINI_MERGES, "");
    char *at = strstr(json, from);
    CHECK_MSG(at != NULL, "test bug: \"%s\" not in the mini tokenizer.json", from);
    if (at) {
        size_t n = strlen(json) - strlen(from) + strlen(to) + 1;
        char *edited = xmalloc(n);
        snprintf(edited, n, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
        expect_fail_str(edited, needle);
        free(edited);
    }
    free(json);
}

static void test_json_model_types(void)
{
    expect_fail_edit("\"type\": \"BPE\"", "\"type\": \"WordPiece\"",
                     "model.type \"WordPiece\" is not supported (only BPE)");
    expect_fail_edit("\"type\": \"BPE\"", "\"type\": \"Unigram\"",
                     "model.type \"Unigram\" is not supported");
    expect_fail_str("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {}}}", "\"WordLevel\" is not supported");
    expect_fail_str("{\"version\": \"1.0\"}", "no \"model\" object");
    expect_fail_str("[1, 2]", "expected a JSON object"); /* JSON, but not an object */
}

static void test_json_syntax(void)
{
    const char bad[] = "{\n  \"model\": {\n    \"type\": \"BPE\",,\n  }\n}\n";
    expect_fail(bad, sizeof bad - 1, "line 3, column");
    char *json = mini_json("", "", MINI_MERGES, "");
    expect_fail(json, strlen(json) / 2, "invalid JSON"); /* cut in half */
    free(json);
}

static void test_json_model_content(void)
{
    expect_fail_edit("\"vocab\"", "\"vocabulary\"", "model.vocab is missing");
    expect_fail_edit("\"a b\",", "\"a zz\",", "model.merges[0]: token \"zz\" is not in the vocabulary");
    expect_fail_edit("\"a a\"", "\"b b\"", "token \"bb\" is not in the vocabulary"); /* result */
    expect_fail_edit("\"a b\",", "\"a b c\",", "not two tokens separated by one space");
    expect_fail_edit("\"a b\",", "[\"a\"],", "model.merges[0]: expected");
    expect_fail_edit("\"aa\": 9", "\"aa\": -9", "expected a token id");
    expect_fail_edit("\"aa\": 9", "\"aa\": 4", "id 4 is given to both");
    expect_fail_edit("\"aa\": 9", "\"aa\": 9000000", "far beyond");
    expect_fail_edit("\"unk_token\": \"<unk>\"", "\"unk_token\": \"<unk>\", \"dropout\": 0.1",
                     "model.dropout is not supported");
    expect_fail_edit("\"unk_token\": \"<unk>\"",
                     "\"unk_token\": \"<unk>\", \"continuing_subword_prefix\": \"##\"",
                     "model.continuing_subword_prefix is not supported");
    expect_fail_edit("\"ids\": [1]", "\"ids\": [77]", "post_processor: id 77 is not in the vocabulary");
}

static void test_json_unsupported_pipeline(void)
{
    expect_fail_edit("{\"type\": \"Prepend\", \"prepend\": \"\\u2581\"}", "{\"type\": \"NFKC\"}",
                     "normalizer.normalizers[0]: normalizer \"NFKC\" is not supported");
    expect_fail_edit("\"pattern\": {\"String\": \" \"}", "\"pattern\": {\"Regex\": \" +\"}",
                     "Regex patterns are not supported");
    expect_fail_edit("\"pre_tokenizer\": null",
                     "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}",
                     "pre-tokenizer \"ByteLevel\" is not supported");
    expect_fail_edit("\"pre_tokenizer\": null",
                     "\"pre_tokenizer\": {\"type\": \"Metaspace\", \"prepend_scheme\": \"sometimes\"}",
                     "unknown prepend_scheme \"sometimes\"");
    expect_fail_edit("\"type\": \"TemplateProcessing\"", "\"type\": \"RobertaProcessing\"",
                     "post_processor \"RobertaProcessing\" is not supported");
    expect_fail_edit("{\"type\": \"Fuse\"}", "{\"type\": \"WordPiece\"}",
                     "decoder.decoders[2]: decoder \"WordPiece\" is not supported");
}

static void test_json_encode_errors(void)
{
    /* no byte fallback, no unk token: a character outside the vocabulary */
    char *json = mini_json("", "", MINI_MERGES, "");
    char *at = strstr(json, "\"unk_token\": \"<unk>\"");
    memcpy(at, "\"unk_token\": null   ", 20);
    tok_tokenizer *tok = NULL;
    CHECK_OK(tok_load_buf(json, strlen(json), "mini.json", &tok));
    tok_ids ids = {0};
    if (tok) CHECK_FAILS_WITH(tok_encode(tok, "abz", 3, false, &ids), "cannot encode \"z\"");
    tok_ids_free(&ids);
    tok_free(tok);
    free(json);
}

/* ---- tokenizer.model ----------------------------------------------------- */

static const char *const SP_PIECES[] = {"\xE2\x96\x81", "a", "b", "ab", "\xE2\x96\x81" "a"};

static void expect_spm_fail(const unsigned char *buf, size_t len, const char *needle)
{
    static const char name[] = "bad/tokenizer.model";
    tok_tokenizer *tok = NULL;
    CHECK_FAILS_WITH(tok_load_buf(buf, len, name, &tok), needle);
    CHECK_MSG(strncmp(err_msg(), name, strlen(name)) == 0, "message should name the file: \"%s\"",
              err_msg());
    CHECK(tok == NULL);
    tok_free(tok);
}

static void test_spm_truncated(void)
{
    char *path = bundled_golden_path("tiny-llava/tokenizer.model");
    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(fs_read_all(path, &buf, &len));
    free(path);
    if (!buf) return;
    /* every cut fails: at a field boundary the trainer_spec (after the
     * pieces) is missing and the proto default model type is unigram */
    size_t failures = 0, tried = 0;
    for (size_t cut = 1; cut < len; cut += cut < 300 ? 1 : 97) {
        tok_tokenizer *tok = NULL;
        err_clear();
        int rc = tok_load_buf(buf, cut, "cut/tokenizer.model", &tok);
        tried++;
        if (rc != 0 && strstr(err_msg(), "cut/tokenizer.model: ") == err_msg()) failures++;
        tok_free(tok);
    }
    CHECK_EQ(failures, tried);
    /* the bundled model cut at 1000 bytes: inside a piece */
    if (CHECK(len > 1000))
        expect_spm_fail((const unsigned char *)buf, 1000, "not a valid sentencepiece model");
    free(buf);
}

static void test_spm_garbage(void)
{
    unsigned char junk[512];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (unsigned char)(x >> 16);
    }
    junk[0] = 0x0b; /* not '{': taken as a protobuf */
    expect_spm_fail(junk, sizeof junk, "not a valid sentencepiece model");
    expect_spm_fail((const unsigned char *)"", 0, "no pieces");
    const unsigned char overlong[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect_spm_fail(overlong, sizeof overlong, "varint");
    const unsigned char too_long[] = {0x0a, 0x20, 0x0a, 0x01};
    expect_spm_fail(too_long, sizeof too_long, "length past the end");
}

static void test_spm_unsupported(void)
{
    spm_opts o = {.model_type = 1, .byte_fallback = true, .add_dummy_prefix = true};
    pbw m = spm_model(&o, SP_PIECES, 5);
    expect_spm_fail(m.p, m.n, "model_type unigram (1) is not supported (only BPE)");
    free(m.p);

    o.model_type = 2;
    o.charsmap = "\x01\x02\x03not-identity";
    m = spm_model(&o, SP_PIECES, 5);
    expect_spm_fail(m.p, m.n, "unsupported normalizer");
    free(m.p);

    o.charsmap = NULL;
    const char *dup[] = {"a", "b", "a"};
    m = spm_model(&o, dup, 3);
    expect_spm_fail(m.p, m.n, "piece \"a\" appears twice");
    free(m.p);

    /* the same, well-formed: loads */
    m = spm_model(&o, SP_PIECES, 5);
    tok_tokenizer *tok = NULL;
    CHECK_OK(tok_load_buf(m.p, m.n, "ok/tokenizer.model", &tok));
    tok_free(tok);
    free(m.p);
}

static void test_paths(void)
{
    tok_tokenizer *tok = NULL;
    CHECK_FAILS_WITH(tok_load("/nonexistent/dir/tokenizer.json", &tok), "/nonexistent/dir/tokenizer.json");
    char *dir = test_tmpdir("tok-errors");
    CHECK_FAILS_WITH(tok_load(dir, &tok), "no tokenizer.json or tokenizer.model");
    CHECK(tok == NULL);
    free(dir);
}

int main(void)
{
    test_json_model_types();
    test_json_syntax();
    test_json_model_content();
    test_json_unsupported_pipeline();
    test_json_encode_errors();
    test_spm_truncated();
    test_spm_garbage();
    test_spm_unsupported();
    test_paths();
    return check_finish();
}
