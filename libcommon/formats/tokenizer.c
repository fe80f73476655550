/* tokenizer.c — formats layer: the public tokenizer API.
 *
 * Loading looks at the bytes, not the name: a JSON object is a
 * tokenizer.json, anything else is tried as a sentencepiece ModelProto. The
 * work is done by the format back ends (tok_hfjson.c, tok_spm.c); this file
 * holds the shared id tables and the LLaVA prompt rule.
 */
#include "tok_internal.h"
#include "err.h"
#include "fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tok_ids ------------------------------------------------------------ */

void tok_ids_push(tok_ids *v, int32_t id)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->ids = xrealloc(v->ids, v->cap * sizeof *v->ids);
    }
    v->ids[v->n++] = id;
}

void tok_ids_free(tok_ids *v)
{
    free(v->ids);
    *v = (tok_ids){0};
}

/* ---- id tables ---------------------------------------------------------- */

void tok_alloc_ids(tok_tokenizer *t, int32_t n)
{
    t->n_ids = n;
    t->piece = xcalloc((size_t)n, sizeof *t->piece);
    t->piece_len = xcalloc((size_t)n, sizeof *t->piece_len);
    t->flags = xcalloc((size_t)n, sizeof *t->flags);
}

void tok_set_piece(tok_tokenizer *t, int32_t id, const char *s, size_t n)
{
    free(t->piece[id]);
    t->piece[id] = xmalloc(n + 1);
    memcpy(t->piece[id], s, n);
    t->piece[id][n] = '\0';
    t->piece_len[id] = (uint32_t)n;
}

void tok_find_byte_pieces(tok_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = tok_lookup_model(t, name, 6);
    }
}

int32_t tok_lookup_model(const tok_tokenizer *t, const char *s, size_t n)
{
    return tok_strmap_get(&t->vocab, t->piece, t->piece_len, s, n);
}

/* Does piece p have '▁' after a character other than '▁'? */
static bool has_inner_metaspace(const char *p, size_t n)
{
    const size_t k = sizeof TOK_METASPACE - 1;
    bool prev_other = false;
    size_t i = 0;
    while (i < n) {
        size_t c = tok_utf8_char_len(p + i, n - i);
        if (!c) c = 1;
        bool is_ms = c == k && memcmp(p + i, TOK_METASPACE, k) == 0;
        if (is_ms && prev_other) return true;
        prev_other = !is_ms;
        i += c;
    }
    return false;
}

bool tok_vocab_allows_word_split(const tok_tokenizer *t)
{
    if (tok_lookup_model(t, TOK_METASPACE, sizeof TOK_METASPACE - 1) < 0) return false;
    for (int32_t id = 0; id < t->n_ids; id++)
        if ((t->flags[id] & TOKF_MODEL) && has_inner_metaspace(t->piece[id], t->piece_len[id]))
            return false;
    return true;
}

/* ---- loading ------------------------------------------------------------ */

static bool looks_like_json(const char *buf, size_t len)
{
    size_t i = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) i = 3; /* BOM */
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' ||
                       buf[i] == '\r'))
        i++;
    return i < len && (buf[i] == '{' || buf[i] == '['); /* '[' cannot start a ModelProto */
}

int tok_load_buf(const void *buf, size_t len, const char *name,
                 tok_tokenizer **out)
{
    *out = NULL;
    tok_tokenizer *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(name);
    t->bos = t->eos = t->unk = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    int rc;
    if (looks_like_json(buf, len)) {
        t->kind = TOK_KIND_HF;
        rc = tok_hf_load(t, buf, len);
    } else {
        t->kind = TOK_KIND_SPM;
        rc = tok_spm_load(t, buf, len);
    }
    if (rc != 0) {
        tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* A folder: its tokenizer.json, else its tokenizer.model. */
static char *pick_file_in_dir(const char *dir)
{
    static const char *const names[] = {"tokenizer.json", "tokenizer.model"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *p = fs_join(dir, names[i]);
        if (fs_is_file(p)) return p;
        free(p);
    }
    ERR("%s: no tokenizer.json or tokenizer.model in this folder", dir);
    return NULL;
}

int tok_load(const char *path, tok_tokenizer **out)
{
    *out = NULL;
    char *file = fs_is_dir(path) ? pick_file_in_dir(path) : xstrdup(path);
    if (!file) return -1;
    char *buf;
    size_t len;
    int rc = fs_read_all(file, &buf, &len);
    if (rc == 0) {
        rc = tok_load_buf(buf, len, file, out);
        free(buf);
    }
    free(file);
    return rc;
}

void tok_free(tok_tokenizer *t)
{
    if (!t) return;
    if (t->hf) tok_hf_free(t->hf);
    if (t->spm) tok_spm_free(t->spm);
    for (int32_t i = 0; i < t->n_ids; i++) free(t->piece[i]);
    free(t->piece);
    free(t->piece_len);
    free(t->flags);
    tok_strmap_free(&t->vocab);
    free(t->name);
    free(t);
}

/* ---- encode / decode ---------------------------------------------------- */

static int encode_any(const tok_tokenizer *t, const char *text, size_t len,
                      bool split_added, tok_ids *out)
{
    if (t->kind == TOK_KIND_HF) return tok_hf_encode(t, text, len, split_added, out);
    return tok_spm_encode(t, text, len, out);
}

/* Encoders see valid UTF-8 only: each malformed byte becomes U+FFFD first,
 * as sentencepiece's normalizer does. */
static int encode_sanitized(const tok_tokenizer *t, const char *text,
                            size_t len, bool split_added, tok_ids *out)
{
    if (tok_utf8_valid(text, len)) return encode_any(t, text, len, split_added, out);
    tok_buf clean = {0};
    tok_utf8_sanitize(&clean, text, len);
    int rc = encode_any(t, clean.p, clean.n, split_added, out);
    tok_buf_free(&clean);
    return rc;
}

/* Special tokens before (prefix) or after the text when add_bos. */
static void add_template(const tok_tokenizer *t, bool prefix, tok_ids *out)
{
    if (t->kind == TOK_KIND_HF && tok_hf_add_template(t, prefix, out)) return;
    if (prefix && t->bos >= 0) tok_ids_push(out, t->bos);
}

int tok_encode(const tok_tokenizer *t, const char *text, size_t len,
               bool add_bos, tok_ids *out)
{
    if (add_bos) add_template(t, true, out);
    if (encode_sanitized(t, text, len, true, out) != 0) return -1;
    if (add_bos) add_template(t, false, out);
    return 0;
}

int tok_encode_plain(const tok_tokenizer *t, const char *text, size_t len,
                     tok_ids *out)
{
    return encode_sanitized(t, text, len, false, out);
}

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n,
               bool skip_special, char **text, size_t *len)
{
    *text = NULL;
    if (len) *len = 0;
    tok_buf out = {0};
    int rc = t->kind == TOK_KIND_HF
                 ? tok_hf_decode(t, ids, n, skip_special, &out)
                 : tok_spm_decode(t, ids, n, skip_special, &out);
    if (rc != 0) {
        tok_buf_free(&out);
        return -1;
    }
    *text = tok_buf_take(&out, len);
    return 0;
}

/* ---- LLaVA prompts ------------------------------------------------------ */

#define IMAGE_PLACEHOLDER "<image>"

static const char *find_bytes(const char *s, size_t n, const char *needle,
                              size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0) return s + i;
    return NULL;
}

int tok_llava_prompt_ids(const tok_tokenizer *t, const char *text, size_t len,
                         int32_t image_token_id, int n_image_tokens,
                         tok_ids *out)
{
    if (n_image_tokens < 0)
        return ERR("%s: negative number of image tokens (%d)", t->name, n_image_tokens);
    if (t->bos >= 0) tok_ids_push(out, t->bos);
    const size_t k = sizeof IMAGE_PLACEHOLDER - 1;
    const char *p = text, *end = text + len;
    for (;;) {
        const char *hit = find_bytes(p, (size_t)(end - p), IMAGE_PLACEHOLDER, k);
        const char *chunk_end = hit ? hit : end;
        if (tok_encode_plain(t, p, (size_t)(chunk_end - p), out) != 0) return -1;
        if (!hit) break;
        for (int i = 0; i < n_image_tokens; i++) tok_ids_push(out, image_token_id);
        p = hit + k;
    }
    return 0;
}

/* ---- queries ------------------------------------------------------------ */

int tok_vocab_size(const tok_tokenizer *t) { return t->n_ids; }
int tok_bos_id(const tok_tokenizer *t) { return t->bos; }
int tok_eos_id(const tok_tokenizer *t) { return t->eos; }
int tok_unk_id(const tok_tokenizer *t) { return t->unk; }

int tok_piece_to_id(const tok_tokenizer *t, const char *piece)
{
    size_t n = strlen(piece);
    if (t->kind == TOK_KIND_HF) {
        int32_t id = tok_hf_added_lookup(t, piece, n);
        if (id >= 0) return id;
    }
    int32_t id = tok_lookup_model(t, piece, n);
    if (id >= 0) return id;
    /* sentencepiece control/unknown/byte pieces are outside the merge map */
    for (int32_t i = 0; i < t->n_ids; i++)
        if (t->piece[i] && t->piece_len[i] == n && memcmp(t->piece[i], piece, n) == 0)
            return i;
    return -1;
}

const char *tok_id_to_piece(const tok_tokenizer *t, int32_t id)
{
    if (id < 0 || id >= t->n_ids) return NULL;
    return t->piece[id];
}

bool tok_is_special(const tok_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids && (t->flags[id] & TOKF_SPECIAL);
}

const char *tok_source_kind(const tok_tokenizer *t)
{
    return t->kind == TOK_KIND_HF ? "tokenizer.json" : "sentencepiece";
}
