/* tok_test_models.h — small tokenizer files built in memory for the
 * tokenizer unit tests and tests/golden_alt: a protobuf writer for
 * sentencepiece ModelProtos and a minimal tokenizer.json. Header-only,
 * static functions: include it from one source file of a program. */
#ifndef SIMA_TEST_TOK_MODELS_H
#define SIMA_TEST_TOK_MODELS_H

#include "err.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char *p;
    size_t n, cap;
} pbw;

static void pbw_raw(pbw *w, const void *s, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = xrealloc(w->p, w->cap);
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static void pbw_varint(pbw *w, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) b[n] |= 0x80;
        n++;
    } while (v);
    pbw_raw(w, b, n);
}

static void pbw_key(pbw *w, unsigned field, unsigned wire) { pbw_varint(w, field << 3 | wire); }

static void pbw_bytes(pbw *w, unsigned field, const void *s, size_t n)
{
    pbw_key(w, field, 2);
    pbw_varint(w, n);
    pbw_raw(w, s, n);
}

static void pbw_int(pbw *w, unsigned field, int64_t v)
{
    pbw_key(w, field, 0);
    pbw_varint(w, (uint64_t)v); /* negative int32: 10-byte varint, as protobuf does */
}

static void pbw_float(pbw *w, unsigned field, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 24)};
    pbw_key(w, field, 5);
    pbw_raw(w, b, 4);
}

static void pbw_msg(pbw *w, unsigned field, const pbw *sub) { pbw_bytes(w, field, sub->p, sub->n); }

/* sentencepiece piece types */
enum { T_NORMAL = 1, T_UNKNOWN = 2, T_CONTROL = 3, T_USER = 4, T_UNUSED = 5, T_BYTE = 6 };

static void spm_piece(pbw *model, const char *piece, float score, int type)
{
    pbw p = {0};
    pbw_bytes(&p, 1, piece, strlen(piece));
    pbw_float(&p, 2, score);
    if (type != T_NORMAL) pbw_int(&p, 3, type);
    pbw_msg(model, 1, &p);
    free(p.p);
}

typedef struct {
    int model_type;          /* 2 = BPE */
    bool byte_fallback;
    bool add_dummy_prefix, remove_extra_whitespaces;
    const char *charsmap;    /* NULL: none */
} spm_opts;

/* <unk> <s> </s>, the 256 byte pieces if byte_fallback, then `pieces`
 * (NORMAL unless typed as "piece\tTYPE") with scores 0, -1, -2, ... */
static pbw spm_model(const spm_opts *o, const char *const *pieces, size_t n)
{
    pbw m = {0}, trainer = {0}, norm = {0};
    spm_piece(&m, "<unk>", 0, T_UNKNOWN);
    spm_piece(&m, "<s>", 0, T_CONTROL);
    spm_piece(&m, "</s>", 0, T_CONTROL);
    for (int b = 0; o->byte_fallback && b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        spm_piece(&m, name, 0, T_BYTE);
    }
    for (size_t i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s", pieces[i]);
        int type = T_NORMAL;
        char *tab = strchr(text, '\t');
        if (tab) {
            *tab = '\0';
            type = atoi(tab + 1);
        }
        spm_piece(&m, text, -(float)i, type);
    }
    pbw_int(&trainer, 3, o->model_type);
    pbw_int(&trainer, 35, o->byte_fallback);
    pbw_int(&trainer, 40, 0);
    pbw_int(&trainer, 41, 1);
    pbw_int(&trainer, 42, 2);
    pbw_int(&trainer, 43, -1);
    pbw_msg(&m, 2, &trainer);
    pbw_bytes(&norm, 1, "identity", 8);
    if (o->charsmap) pbw_bytes(&norm, 2, o->charsmap, strlen(o->charsmap));
    pbw_int(&norm, 3, o->add_dummy_prefix);
    pbw_int(&norm, 4, o->remove_extra_whitespaces);
    pbw_msg(&m, 3, &norm);
    free(trainer.p);
    free(norm.p);
    return m;
}

/* A minimal LLaMA-style tokenizer.json; %s slots: extra model fields,
 * vocab entries after the fixed ones, merges, added tokens after the
 * fixed ones. */
static const char MINI_JSON_FMT[] =
    "{\"version\": \"1.0\",\n"
    " \"added_tokens\": [\n"
    "  {\"id\": 0, \"content\": \"<unk>\", \"special\": true, \"normalized\": false},\n"
    "  {\"id\": 1, \"content\": \"<s>\", \"special\": true, \"normalized\": false},\n"
    "  {\"id\": 2, \"content\": \"</s>\", \"special\": true, \"normalized\": false}%s],\n"
    " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [\n"
    "   {\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},\n"
    "   {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},\n"
    " \"pre_tokenizer\": null,\n"
    " \"post_processor\": {\"type\": \"TemplateProcessing\",\n"
    "   \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},\n"
    "              {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}],\n"
    "   \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}},\n"
    " \"decoder\": {\"type\": \"Sequence\", \"decoders\": [\n"
    "   {\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u2581\"}, \"content\": \" \"},\n"
    "   {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},\n"
    "   {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},\n"
    " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\"%s,\n"
    "   \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, \"\\u2581\": 3, \"a\": 4, \"b\": 5,\n"
    "             \"ab\": 6, \"\\u2581a\": 7, \"\\u2581ab\": 8, \"aa\": 9%s},\n"
    "   \"merges\": [%s]}}\n";

/* malloc'd tokenizer.json text */
static inline char *mini_json(const char *model_extra, const char *vocab_extra, const char *merges,
                       const char *added_extra)
{
    size_t n = sizeof MINI_JSON_FMT + strlen(model_extra) + strlen(vocab_extra) +
               strlen(merges) + strlen(added_extra) + 16;
    char *s = xmalloc(n);
    snprintf(s, n, MINI_JSON_FMT, added_extra, model_extra, vocab_extra, merges);
    return s;
}

#define MINI_MERGES "\"a b\", \"\\u2581 a\", \"\\u2581a b\", \"a a\""

#endif
