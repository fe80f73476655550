/* tok_hfjson.c — formats layer: Hugging Face tokenizer.json with a BPE model.
 *
 * Encoding follows HF tokenizers' pipeline:
 *   1. split the text on added tokens whose "normalized" is false
 *      (leftmost-longest, honouring lstrip/rstrip/single_word);
 *   2. normalize each piece between them on its own (Prepend, Replace), then
 *      split it on added tokens whose "normalized" is true;
 *   3. pre-tokenize (none, or Metaspace: ' ' -> '▁', prepend by scheme,
 *      optional split before each '▁');
 *   4. BPE each word: characters (or <0xXX> bytes, or unk) merged by rank.
 * Decoding runs the file's decoder chain over the token strings.
 *
 * Only what LLaMA-family files use is implemented; every other model type,
 * normalizer, pre-tokenizer, post-processor or decoder is a load error.
 */
#include "tok_internal.h"
#include "err.h"
#include "js.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsed configuration ------------------------------------------------ */

enum norm_kind { NORM_PREPEND, NORM_REPLACE };
typedef struct {
    enum norm_kind kind;
    char *a, *b; /* PREPEND: a; REPLACE: a -> b */
    size_t an, bn;
} norm_step;

enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };
typedef struct {
    bool on;
    char rep[8]; /* the replacement character, UTF-8 */
    size_t rep_len;
    enum prepend_scheme scheme;
    bool split;
} metaspace_cfg;

enum dec_kind { DEC_REPLACE, DEC_BYTE_FALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE };
typedef struct {
    enum dec_kind kind;
    char *a, *b; /* REPLACE: a -> b; STRIP/METASPACE: a = the character */
    size_t an, bn;
    long long start, stop;
    enum prepend_scheme scheme;
} dec_step;

typedef struct {
    int32_t id;
    char *content;
    size_t n;
    char *pattern; /* what is matched: content, normalized if "normalized" */
    size_t pn;
    bool special, lstrip, rstrip, single_word, normalized;
} added_tok;

struct tok_hf {
    norm_step *norm;
    size_t n_norm;
    metaspace_cfg ms;
    tok_u64map merges; /* (left id << 32 | right id) -> (rank << 32 | result id) */
    bool byte_fallback, fuse_unk, ignore_merges;
    bool word_split; /* BPE per metaspace word: see tok_vocab_allows_word_split */
    int32_t unk;
    const char *unk_name_missing; /* unk_token named but not in vocab (static copy below) */
    char unk_name[64];
    added_tok *added;
    size_t n_added;
    int32_t *added_of_id; /* id -> index in added, -1 */
    tok_matcher raw_match, norm_match;
    bool has_template;
    tok_ids prefix, suffix;
    bool has_decoder;
    dec_step *dec;
    size_t n_dec;
};

/* ---- small helpers ------------------------------------------------------- */

static char *dup_bytes(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static const char *json_type_name(const json_t *v)
{
    const char *t = NULL;
    if (json_is_object(v)) js_get_str(v, "type", NULL, &t, "");
    return t ? t : "?";
}

/* A string member, copied with its length (JSON strings may hold NUL). */
static int get_bytes(const tok_tokenizer *t, const json_t *obj, const char *key,
                     const char *where, char **out, size_t *n)
{
    json_t *v = json_object_get(obj, key);
    if (!v || !json_is_string(v))
        return ERR("%s: %s: \"%s\" must be a string", t->name, where, key);
    *n = json_string_length(v);
    *out = dup_bytes(json_string_value(v), *n);
    return 0;
}

/* {"String": "x"} -> x; {"Regex": ...} is not supported. */
static int get_pattern(const tok_tokenizer *t, const json_t *obj, const char *where,
                       char **out, size_t *n)
{
    json_t *p = json_object_get(obj, "pattern");
    if (!json_is_object(p))
        return ERR("%s: %s: \"pattern\" must be an object", t->name, where);
    if (json_object_get(p, "Regex"))
        return ERR("%s: %s: Regex patterns are not supported", t->name, where);
    if (get_bytes(t, p, "String", where, out, n) != 0) return -1;
    if (*n == 0) {
        free(*out);
        return ERR("%s: %s: empty pattern", t->name, where);
    }
    return 0;
}

static int get_bool(const tok_tokenizer *t, const json_t *obj, const char *key,
                    bool dflt, bool *out, const char *where)
{
    char w[512];
    snprintf(w, sizeof w, "%s: %s", t->name, where);
    return js_get_bool(obj, key, dflt, out, w);
}

static int parse_scheme(const tok_tokenizer *t, const json_t *obj,
                        const char *where, enum prepend_scheme *out)
{
    const char *s = NULL;
    bool add_prefix = true;
    char w[512];
    snprintf(w, sizeof w, "%s: %s", t->name, where);
    if (js_get_str(obj, "prepend_scheme", NULL, &s, w) != 0) return -1;
    if (js_get_bool(obj, "add_prefix_space", true, &add_prefix, w) != 0) return -1;
    if (!s) { /* files from tokenizers < 0.19 */
        *out = add_prefix ? PREPEND_ALWAYS : PREPEND_NEVER;
        return 0;
    }
    if (strcmp(s, "always") == 0) *out = PREPEND_ALWAYS;
    else if (strcmp(s, "first") == 0) *out = PREPEND_FIRST;
    else if (strcmp(s, "never") == 0) *out = PREPEND_NEVER;
    else return ERR("%s: %s: unknown prepend_scheme \"%s\"", t->name, where, s);
    return 0;
}

/* The one character a Metaspace/Strip names (a JSON string of one char). */
static int get_char(const tok_tokenizer *t, const json_t *obj, const char *key,
                    const char *dflt, const char *where, char *out, size_t *n)
{
    const char *s = dflt;
    char w[512];
    snprintf(w, sizeof w, "%s: %s", t->name, where);
    if (js_get_str(obj, key, dflt, &s, w) != 0) return -1;
    size_t len = strlen(s);
    if (len == 0 || len >= 8 || tok_utf8_char_len(s, len) != len)
        return ERR("%s: %s: \"%s\" must be one character", t->name, where, key);
    memcpy(out, s, len);
    *n = len;
    return 0;
}

/* ---- model: vocab, added tokens, merges ---------------------------------- */

static int json_to_id(const tok_tokenizer *t, const json_t *v, const char *what,
                      int32_t *id)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > INT32_MAX - 1)
        return ERR("%s: %s: expected a token id (a non-negative integer)", t->name, what);
    *id = (int32_t)json_integer_value(v);
    return 0;
}

/* Largest id in vocab and added_tokens, checking their shapes. */
static int scan_ids(const tok_tokenizer *t, const json_t *vocab,
                    const json_t *added, int64_t *max_id, size_t *count)
{
    const char *key;
    json_t *v;
    *max_id = -1;
    *count = 0;
    json_object_foreach((json_t *)vocab, key, v) {
        int32_t id;
        char what[160];
        snprintf(what, sizeof what, "model.vocab[\"%.100s\"]", key);
        if (json_to_id(t, v, what, &id) != 0) return -1;
        if (id > *max_id) *max_id = id;
        (*count)++;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        int32_t id;
        char what[64];
        snprintf(what, sizeof what, "added_tokens[%zu].id", i);
        if (!json_is_object(v))
            return ERR("%s: added_tokens[%zu]: expected an object", t->name, i);
        if (json_to_id(t, json_object_get(v, "id"), what, &id) != 0) return -1;
        if (id > *max_id) *max_id = id;
        (*count)++;
    }
    return 0;
}

static int load_vocab(tok_tokenizer *t, const json_t *vocab)
{
    const char *key;
    json_t *v;
    tok_strmap_init(&t->vocab, json_object_size(vocab));
    json_object_foreach((json_t *)vocab, key, v) {
        int32_t id = (int32_t)json_integer_value(v);
        if (t->piece[id])
            return ERR("%s: model.vocab: id %d is given to both \"%.100s\" and \"%.100s\"",
                       t->name, id, t->piece[id], key);
        /* jansson keys are NUL-terminated: a key holding U+0000 is cut there */
        tok_set_piece(t, id, key, strlen(key));
        t->flags[id] |= TOKF_MODEL;
        tok_strmap_put(&t->vocab, t->piece, t->piece_len, id);
    }
    return 0;
}

static int load_added_token(tok_tokenizer *t, const json_t *o, size_t i,
                            added_tok *a)
{
    char where[64];
    snprintf(where, sizeof where, "added_tokens[%zu]", i);
    a->id = (int32_t)json_integer_value(json_object_get(o, "id"));
    if (get_bytes(t, o, "content", where, &a->content, &a->n) != 0) return -1;
    if (a->n == 0) return ERR("%s: %s: empty \"content\"", t->name, where);
    if (get_bool(t, o, "special", false, &a->special, where) != 0 ||
        get_bool(t, o, "lstrip", false, &a->lstrip, where) != 0 ||
        get_bool(t, o, "rstrip", false, &a->rstrip, where) != 0 ||
        get_bool(t, o, "single_word", false, &a->single_word, where) != 0 ||
        get_bool(t, o, "normalized", !a->special, &a->normalized, where) != 0)
        return -1;
    return 0;
}

static int load_added(tok_tokenizer *t, const json_t *added)
{
    tok_hf *hf = t->hf;
    size_t n = json_array_size(added);
    hf->added = xcalloc(n ? n : 1, sizeof *hf->added);
    hf->added_of_id = xmalloc((size_t)t->n_ids * sizeof *hf->added_of_id);
    for (int32_t i = 0; i < t->n_ids; i++) hf->added_of_id[i] = -1;
    for (size_t i = 0; i < n; i++) {
        added_tok *a = &hf->added[hf->n_added++];
        if (load_added_token(t, json_array_get(added, i), i, a) != 0) return -1;
        hf->added_of_id[a->id] = (int32_t)i;
        if (!t->piece[a->id]) tok_set_piece(t, a->id, a->content, a->n);
        if (a->special) t->flags[a->id] |= TOKF_SPECIAL;
    }
    return 0;
}

/* One merge entry: "a b" or ["a", "b"]. */
static int merge_parts(const tok_tokenizer *t, const json_t *m, size_t i,
                       const char **a, size_t *an, const char **b, size_t *bn)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        size_t n = json_string_length(m);
        const char *sp = memchr(s, ' ', n);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)))
            return ERR("%s: model.merges[%zu]: \"%.100s\" is not two tokens separated by one space",
                       t->name, i, s);
        *a = s;
        *an = (size_t)(sp - s);
        *b = sp + 1;
        *bn = n - *an - 1;
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 &&
        json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *an = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        *bn = json_string_length(json_array_get(m, 1));
        return 0;
    }
    return ERR("%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", t->name, i);
}

static int32_t lookup_or_err(const tok_tokenizer *t, const char *s, size_t n,
                             size_t i)
{
    int32_t id = tok_lookup_model(t, s, n);
    if (id < 0)
        ERR("%s: model.merges[%zu]: token \"%.*s\" is not in the vocabulary",
            t->name, i, (int)(n > 100 ? 100 : n), s);
    return id;
}

static int load_merges(tok_tokenizer *t, const json_t *merges)
{
    tok_hf *hf = t->hf;
    size_t n = json_array_size(merges);
    tok_u64map_init(&hf->merges, n);
    tok_buf joined = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *a = NULL, *b = NULL;
        size_t an = 0, bn = 0;
        if (merge_parts(t, json_array_get(merges, i), i, &a, &an, &b, &bn) != 0) {
            rc = -1;
            break;
        }
        int32_t ia = lookup_or_err(t, a, an, i), ib = ia < 0 ? -1 : lookup_or_err(t, b, bn, i);
        joined.n = 0;
        tok_buf_put(&joined, a, an);
        tok_buf_put(&joined, b, bn);
        int32_t ir = ib < 0 ? -1 : lookup_or_err(t, joined.p, joined.n, i);
        if (ir < 0) {
            rc = -1;
            break;
        }
        /* a later duplicate replaces an earlier one, as HF's map insert does */
        tok_u64map_put(&hf->merges, (uint64_t)ia << 32 | (uint32_t)ib,
                       (uint64_t)i << 32 | (uint32_t)ir);
    }
    tok_buf_free(&joined);
    return rc;
}

static int check_model_options(tok_tokenizer *t, const json_t *model)
{
    tok_hf *hf = t->hf;
    static const char *const unsupported_strings[] = {"continuing_subword_prefix",
                                                      "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(model, unsupported_strings[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return ERR("%s: model.%s is not supported", t->name, unsupported_strings[i]);
    }
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) &&
        !(json_is_number(dropout) && json_number_value(dropout) == 0.0))
        return ERR("%s: model.dropout is not supported (BPE dropout is for training)", t->name);
    if (get_bool(t, model, "byte_fallback", false, &hf->byte_fallback, "model") != 0 ||
        get_bool(t, model, "fuse_unk", false, &hf->fuse_unk, "model") != 0 ||
        get_bool(t, model, "ignore_merges", false, &hf->ignore_merges, "model") != 0)
        return -1;
    return 0;
}

static int load_unk(tok_tokenizer *t, const json_t *model)
{
    tok_hf *hf = t->hf;
    const char *unk = NULL;
    char w[512];
    snprintf(w, sizeof w, "%s: model", t->name);
    if (js_get_str(model, "unk_token", NULL, &unk, w) != 0) return -1;
    hf->unk = unk ? tok_lookup_model(t, unk, strlen(unk)) : -1;
    if (unk && hf->unk < 0) { /* HF only fails when the unk token is needed */
        snprintf(hf->unk_name, sizeof hf->unk_name, "%s", unk);
        hf->unk_name_missing = hf->unk_name;
    }
    t->unk = hf->unk;
    return 0;
}

static int load_model(tok_tokenizer *t, const json_t *root)
{
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model))
        return ERR("%s: no \"model\" object: not a tokenizer.json", t->name);
    const char *type = NULL;
    char w[512];
    snprintf(w, sizeof w, "%s: model", t->name);
    if (js_get_str(model, "type", NULL, &type, w) != 0) return -1;
    if (!type && !json_object_get(model, "merges"))
        return ERR("%s: model has no \"type\" and no merges: only BPE is supported", t->name);
    if (type && strcmp(type, "BPE") != 0)
        return ERR("%s: model.type \"%s\" is not supported (only BPE)", t->name, type);
    const json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return ERR("%s: model.vocab is missing or not an object", t->name);
    const json_t *merges = json_object_get(model, "merges");
    if (merges && !json_is_null(merges) && !json_is_array(merges))
        return ERR("%s: model.merges must be an array", t->name);
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_null(added) && !json_is_array(added))
        return ERR("%s: added_tokens must be an array", t->name);

    int64_t max_id;
    size_t count;
    if (scan_ids(t, vocab, added, &max_id, &count) != 0) return -1;
    /* ids are dense in real files; refuse sparse ones rather than allocate
     * tables for ids nobody uses */
    if (max_id >= (int64_t)(2 * count + 1024))
        return ERR("%s: token id %lld is far beyond the %zu tokens defined", t->name,
                   (long long)max_id, count);
    tok_alloc_ids(t, (int32_t)(max_id + 1));
    if (load_vocab(t, vocab) != 0 || load_added(t, added) != 0) return -1;
    if (check_model_options(t, model) != 0 || load_unk(t, model) != 0) return -1;
    if (merges && json_is_array(merges) && load_merges(t, merges) != 0) return -1;
    tok_find_byte_pieces(t);
    return 0;
}

/* ---- normalizer, pre-tokenizer ------------------------------------------- */

static int add_norm_step(tok_tokenizer *t, const json_t *n, const char *where)
{
    tok_hf *hf = t->hf;
    const char *type = json_type_name(n);
    norm_step st = {0};
    if (strcmp(type, "Prepend") == 0) {
        st.kind = NORM_PREPEND;
        if (get_bytes(t, n, "prepend", where, &st.a, &st.an) != 0) return -1;
    } else if (strcmp(type, "Replace") == 0) {
        st.kind = NORM_REPLACE;
        if (get_pattern(t, n, where, &st.a, &st.an) != 0) return -1;
        if (get_bytes(t, n, "content", where, &st.b, &st.bn) != 0) {
            free(st.a);
            return -1;
        }
    } else {
        return ERR("%s: %s: normalizer \"%s\" is not supported (only Prepend, Replace, Sequence)",
                   t->name, where, type);
    }
    hf->norm = xrealloc(hf->norm, (hf->n_norm + 1) * sizeof *hf->norm);
    hf->norm[hf->n_norm++] = st;
    return 0;
}

typedef int (*hf_step_fn)(tok_tokenizer *t, const json_t *node, const char *where);

/* Walks a normalizer or decoder node: a "Sequence" (nested to any depth) under
 * `list_key` is flattened, every other object is handed to `add_step`. */
static int load_step_tree(tok_tokenizer *t, const json_t *node, const char *where,
                          const char *list_key, hf_step_fn add_step)
{
    if (!node || json_is_null(node)) return 0;
    if (!json_is_object(node)) return ERR("%s: %s must be an object", t->name, where);
    if (strcmp(json_type_name(node), "Sequence") != 0) return add_step(t, node, where);
    json_t *list = json_object_get(node, list_key);
    if (!json_is_array(list))
        return ERR("%s: %s: Sequence needs a \"%s\" array", t->name, where, list_key);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        char w[128];   /* names the place in messages; a deeper path is cut short */
        if (snprintf(w, sizeof w, "%s.%s[%zu]", where, list_key, i) < 0) w[0] = '\0';
        if (load_step_tree(t, v, w, list_key, add_step) != 0) return -1;
    }
    return 0;
}

static int load_normalizer(tok_tokenizer *t, const json_t *n, const char *where)
{
    return load_step_tree(t, n, where, "normalizers", add_norm_step);
}

static int load_metaspace(tok_tokenizer *t, const json_t *p, const char *where)
{
    metaspace_cfg *ms = &t->hf->ms;
    if (ms->on) return ERR("%s: %s: more than one Metaspace is not supported", t->name, where);
    ms->on = true;
    if (get_char(t, p, "replacement", TOK_METASPACE, where, ms->rep, &ms->rep_len) != 0 ||
        parse_scheme(t, p, where, &ms->scheme) != 0 ||
        get_bool(t, p, "split", true, &ms->split, where) != 0)
        return -1;
    return 0;
}

static int load_pre_tokenizer(tok_tokenizer *t, const json_t *p, const char *where)
{
    if (!p || json_is_null(p)) return 0;
    if (!json_is_object(p)) return ERR("%s: %s must be an object", t->name, where);
    const char *type = json_type_name(p);
    if (strcmp(type, "Metaspace") == 0) return load_metaspace(t, p, where);
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(p, "pretokenizers");
        if (!json_is_array(list))
            return ERR("%s: %s: Sequence needs a \"pretokenizers\" array", t->name, where);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) {
            char w[128];
            snprintf(w, sizeof w, "%s.pretokenizers[%zu]", where, i);
            if (load_pre_tokenizer(t, v, w) != 0) return -1;
        }
        return 0;
    }
    return ERR("%s: %s: pre-tokenizer \"%s\" is not supported (only Metaspace)", t->name,
               where, type);
}

/* ---- post-processor ------------------------------------------------------ */

static int template_ids(tok_tokenizer *t, const json_t *specials, const char *name,
                        tok_ids *out)
{
    json_t *sp = json_is_object(specials) ? json_object_get(specials, name) : NULL;
    json_t *ids = json_is_object(sp) ? json_object_get(sp, "ids") : NULL;
    if (!json_is_array(ids))
        return ERR("%s: post_processor: special token \"%.100s\" has no ids", t->name, name);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        int32_t id;
        if (json_to_id(t, v, "post_processor.special_tokens ids", &id) != 0) return -1;
        if (id >= t->n_ids)
            return ERR("%s: post_processor: id %d is not in the vocabulary", t->name, id);
        tok_ids_push(out, id);
    }
    return 0;
}

static int load_template(tok_tokenizer *t, const json_t *p)
{
    tok_hf *hf = t->hf;
    json_t *single = json_object_get(p, "single");
    json_t *specials = json_object_get(p, "special_tokens");
    if (!json_is_array(single))
        return ERR("%s: post_processor: TemplateProcessing needs a \"single\" array", t->name);
    bool seen_seq = false;
    size_t i;
    json_t *item;
    json_array_foreach(single, i, item) {
        json_t *st = json_object_get(item, "SpecialToken");
        if (json_object_get(item, "Sequence")) {
            seen_seq = true;
        } else if (json_is_object(st) && json_is_string(json_object_get(st, "id"))) {
            const char *name = json_string_value(json_object_get(st, "id"));
            if (template_ids(t, specials, name, seen_seq ? &hf->suffix : &hf->prefix) != 0)
                return -1;
        } else {
            return ERR("%s: post_processor.single[%zu]: expected SpecialToken or Sequence",
                       t->name, i);
        }
    }
    hf->has_template = true;
    return 0;
}

static int load_post_processor(tok_tokenizer *t, const json_t *p)
{
    if (!p || json_is_null(p)) return 0;
    const char *type = json_type_name(p);
    if (strcmp(type, "TemplateProcessing") == 0) return load_template(t, p);
    return ERR("%s: post_processor \"%s\" is not supported (only TemplateProcessing)",
               t->name, type);
}

/* ---- decoder ------------------------------------------------------------- */

static int add_dec_step(tok_tokenizer *t, const json_t *d, const char *where)
{
    tok_hf *hf = t->hf;
    const char *type = json_type_name(d);
    dec_step st = {0};
    char w[512];
    snprintf(w, sizeof w, "%s: %s", t->name, where);
    if (strcmp(type, "Replace") == 0) {
        st.kind = DEC_REPLACE;
        if (get_pattern(t, d, where, &st.a, &st.an) != 0) return -1;
        if (get_bytes(t, d, "content", where, &st.b, &st.bn) != 0) {
            free(st.a);
            return -1;
        }
    } else if (strcmp(type, "ByteFallback") == 0) {
        st.kind = DEC_BYTE_FALLBACK;
    } else if (strcmp(type, "Fuse") == 0) {
        st.kind = DEC_FUSE;
    } else if (strcmp(type, "Strip") == 0) {
        char c[8];
        st.kind = DEC_STRIP;
        if (get_char(t, d, "content", " ", where, c, &st.an) != 0) return -1;
        if (js_get_int(d, "start", 0, &st.start, w) != 0 ||
            js_get_int(d, "stop", 0, &st.stop, w) != 0)
            return -1;
        st.a = dup_bytes(c, st.an);
    } else if (strcmp(type, "Metaspace") == 0) {
        char c[8];
        st.kind = DEC_METASPACE;
        if (get_char(t, d, "replacement", TOK_METASPACE, where, c, &st.an) != 0 ||
            parse_scheme(t, d, where, &st.scheme) != 0)
            return -1;
        st.a = dup_bytes(c, st.an);
    } else {
        return ERR("%s: %s: decoder \"%s\" is not supported (only Replace, ByteFallback, "
                   "Fuse, Strip, Metaspace, Sequence)", t->name, where, type);
    }
    hf->dec = xrealloc(hf->dec, (hf->n_dec + 1) * sizeof *hf->dec);
    hf->dec[hf->n_dec++] = st;
    return 0;
}

static int load_decoder(tok_tokenizer *t, const json_t *d, const char *where)
{
    if (json_is_object(d)) t->hf->has_decoder = true;
    return load_step_tree(t, d, where, "decoders", add_dec_step);
}

/* ---- normalization ------------------------------------------------------- */

static void replace_all(tok_buf *out, const char *s, size_t n, const char *pat,
                        size_t pn, const char *rep, size_t rn)
{
    size_t i = 0, last = 0;
    if (n == 0) return;
    while (i + pn <= n) {
        if (s[i] == pat[0] && memcmp(s + i, pat, pn) == 0) {
            tok_buf_put(out, s + last, i - last);
            tok_buf_put(out, rep, rn);
            i += pn;
            last = i;
        } else {
            i++;
        }
    }
    tok_buf_put(out, s + last, n - last);
}

/* Run the normalizer chain on s; the result is in *out (reset first). */
static void normalize(const tok_hf *hf, const char *s, size_t n, tok_buf *out)
{
    tok_buf tmp = {0};
    out->n = 0;
    tok_buf_put(out, s, n);
    for (size_t k = 0; k < hf->n_norm; k++) {
        const norm_step *st = &hf->norm[k];
        tmp.n = 0;
        if (st->kind == NORM_PREPEND) {
            if (out->n == 0) continue; /* HF prepends to non-empty text only */
            tok_buf_put(&tmp, st->a, st->an);
            tok_buf_put(&tmp, out->p, out->n);
        } else {
            replace_all(&tmp, out->p, out->n, st->a, st->an, st->b, st->bn);
        }
        tok_buf swap = *out;
        *out = tmp;
        tmp = swap;
    }
    tok_buf_free(&tmp);
}

/* Build the matchers for added tokens; patterns of "normalized" tokens are
 * themselves normalized, as HF does. */
static void build_matchers(tok_tokenizer *t)
{
    tok_hf *hf = t->hf;
    tok_literal *raw = xmalloc((hf->n_added + 1) * sizeof *raw);
    tok_literal *nor = xmalloc((hf->n_added + 1) * sizeof *nor);
    size_t nr = 0, nn = 0;
    tok_buf b = {0};
    for (size_t i = 0; i < hf->n_added; i++) {
        added_tok *a = &hf->added[i];
        if (a->normalized) {
            normalize(hf, a->content, a->n, &b);
            a->pattern = dup_bytes(b.p ? b.p : "", b.n);
            a->pn = b.n;
            nor[nn++] = (tok_literal){a->pattern, a->pn, (int32_t)i};
        } else {
            raw[nr++] = (tok_literal){a->content, a->n, (int32_t)i};
        }
    }
    tok_buf_free(&b);
    tok_matcher_init(&hf->raw_match, raw, nr);
    tok_matcher_init(&hf->norm_match, nor, nn);
    free(raw);
    free(nor);
}

/* ---- load / free --------------------------------------------------------- */

static int32_t find_named(const tok_tokenizer *t, const char *name)
{
    int32_t id = tok_hf_added_lookup(t, name, strlen(name));
    return id >= 0 ? id : tok_lookup_model(t, name, strlen(name));
}

static int load_root(tok_tokenizer *t, const json_t *root)
{
    if (!json_is_object(root))
        return ERR("%s: expected a JSON object at the top level", t->name);
    if (load_model(t, root) != 0) return -1;
    if (load_normalizer(t, json_object_get(root, "normalizer"), "normalizer") != 0 ||
        load_pre_tokenizer(t, json_object_get(root, "pre_tokenizer"), "pre_tokenizer") != 0 ||
        load_post_processor(t, json_object_get(root, "post_processor")) != 0 ||
        load_decoder(t, json_object_get(root, "decoder"), "decoder") != 0)
        return -1;
    build_matchers(t);
    tok_hf *hf = t->hf;
    /* ignore_merges looks the whole word up: cutting it would change that */
    hf->word_split = !hf->ignore_merges && tok_vocab_allows_word_split(t);
    t->bos = hf->prefix.n ? hf->prefix.ids[0] : find_named(t, "<s>");
    t->eos = find_named(t, "</s>");
    return 0;
}

int tok_hf_load(tok_tokenizer *t, const char *buf, size_t len)
{
    t->hf = xcalloc(1, sizeof *t->hf);
    t->hf->unk = -1;
    json_t *root = js_load_buf(buf, len, t->name);
    if (!root) return -1;
    int rc = load_root(t, root);
    json_decref(root);
    return rc;
}

void tok_hf_free(tok_hf *hf)
{
    for (size_t i = 0; i < hf->n_norm; i++) {
        free(hf->norm[i].a);
        free(hf->norm[i].b);
    }
    free(hf->norm);
    for (size_t i = 0; i < hf->n_dec; i++) {
        free(hf->dec[i].a);
        free(hf->dec[i].b);
    }
    free(hf->dec);
    for (size_t i = 0; i < hf->n_added; i++) {
        free(hf->added[i].content);
        free(hf->added[i].pattern);
    }
    free(hf->added);
    free(hf->added_of_id);
    tok_matcher_free(&hf->raw_match);
    tok_matcher_free(&hf->norm_match);
    tok_u64map_free(&hf->merges);
    tok_ids_free(&hf->prefix);
    tok_ids_free(&hf->suffix);
    free(hf);
}

int32_t tok_hf_added_lookup(const tok_tokenizer *t, const char *s, size_t n)
{
    for (size_t i = 0; t->hf && i < t->hf->n_added; i++) {
        const added_tok *a = &t->hf->added[i];
        if (a->n == n && memcmp(a->content, s, n) == 0) return a->id;
    }
    return -1;
}

bool tok_hf_add_template(const tok_tokenizer *t, bool prefix, tok_ids *out)
{
    const tok_hf *hf = t->hf;
    if (!hf->has_template) return false;
    const tok_ids *src = prefix ? &hf->prefix : &hf->suffix;
    for (size_t i = 0; i < src->n; i++) tok_ids_push(out, src->ids[i]);
    return true;
}

/* ---- encoding ------------------------------------------------------------ */

typedef struct {
    const tok_tokenizer *t;
    tok_bpe_work work;
    tok_buf norm, meta;
    tok_ids *out;
} encoder;

static bool merge_by_rank(void *ctx, const char *text, const tok_sym *l,
                          const tok_sym *r, float *prio, int32_t *id)
{
    const tok_hf *hf = ctx;
    uint64_t v;
    if (l->id < 0 || r->id < 0) return false;
    if (!tok_u64map_get(&hf->merges, (uint64_t)l->id << 32 | (uint32_t)r->id, &v))
        return false;
    *prio = (float)(v >> 32);
    *id = (int32_t)(v & 0xffffffffu);
    return true;
}

static int unknown_char(const tok_tokenizer *t, const char *c, size_t n)
{
    if (t->hf->unk_name_missing)
        return ERR("%s: cannot encode \"%.*s\": not in the vocabulary and unk_token \"%s\" "
                   "is not either", t->name, (int)n, c, t->hf->unk_name_missing);
    return ERR("%s: cannot encode \"%.*s\": not in the vocabulary, no byte fallback, no unk_token",
               t->name, (int)n, c);
}

/* The word's characters as initial symbols (HF BPE::merge_word). */
static int initial_symbols(encoder *e, const char *w, size_t n)
{
    const tok_tokenizer *t = e->t;
    const tok_hf *hf = t->hf;
    tok_bpe_work *wk = &e->work;
    bool last_unk = false;
    size_t i = 0;
    while (i < n) {
        size_t k = tok_utf8_char_len(w + i, n - i);
        if (!k) k = 1; /* cannot happen: input is sanitized */
        int32_t id = tok_lookup_model(t, w + i, k);
        bool bytes_ok = hf->byte_fallback;
        for (size_t j = 0; id < 0 && bytes_ok && j < k; j++)
            bytes_ok = t->byte_id[(unsigned char)w[i + j]] >= 0;
        if (id >= 0) {
            tok_bpe_push_sym(wk, (int32_t)i, (int32_t)k, id, false);
            last_unk = false;
        } else if (bytes_ok) {
            for (size_t j = 0; j < k; j++)
                tok_bpe_push_sym(wk, (int32_t)(i + j), 1, t->byte_id[(unsigned char)w[i + j]], false);
            last_unk = false;
        } else if (hf->unk >= 0) {
            if (last_unk && hf->fuse_unk)
                wk->sym[wk->n - 1].len += (int32_t)k;
            else
                tok_bpe_push_sym(wk, (int32_t)i, (int32_t)k, hf->unk, false);
            last_unk = true;
        } else {
            return unknown_char(t, w + i, k);
        }
        i += k;
    }
    return 0;
}

static int bpe_word(encoder *e, const char *w, size_t n)
{
    const tok_hf *hf = e->t->hf;
    if (n == 0) return 0;
    if (hf->ignore_merges) {
        int32_t id = tok_lookup_model(e->t, w, n);
        if (id >= 0) {
            tok_ids_push(e->out, id);
            return 0;
        }
    }
    tok_bpe_clear(&e->work);
    if (initial_symbols(e, w, n) != 0) return -1;
    tok_bpe_merge(&e->work, w, merge_by_rank, (void *)hf);
    for (int32_t i = e->work.n ? 0 : -1; i >= 0; i = e->work.sym[i].next)
        tok_ids_push(e->out, e->work.sym[i].id);
    return 0;
}

/* BPE over s, cut into metaspace words when that gives the same ids. */
static int encode_word(encoder *e, const char *s, size_t n)
{
    if (!e->t->hf->word_split) return bpe_word(e, s, n);
    for (size_t start = 0; start < n;) {
        size_t end = tok_metaspace_word_end(s, n, start);
        if (bpe_word(e, s + start, end - start) != 0) return -1;
        start = end;
    }
    return 0;
}

static bool starts_with(const char *s, size_t n, const char *p, size_t pn)
{
    return n >= pn && memcmp(s, p, pn) == 0;
}

/* Metaspace pre-tokenizer, then BPE per word. at_start: this piece begins
 * at offset 0 of the original text ("first" scheme). */
static int pretokenize_and_encode(encoder *e, const char *s, size_t n, bool at_start)
{
    const metaspace_cfg *ms = &e->t->hf->ms;
    if (!ms->on) return encode_word(e, s, n);
    tok_buf *m = &e->meta;
    m->n = 0;
    bool prepend = ms->scheme == PREPEND_ALWAYS || (ms->scheme == PREPEND_FIRST && at_start);
    bool has_rep = starts_with(s, n, ms->rep, ms->rep_len) || (n > 0 && s[0] == ' ');
    if (prepend && !has_rep && n > 0) tok_buf_put(m, ms->rep, ms->rep_len);
    replace_all(m, s, n, " ", 1, ms->rep, ms->rep_len);
    if (!ms->split) return encode_word(e, m->p, m->n);
    /* split before every replacement character (MergedWithNext) */
    size_t word = 0;
    for (size_t i = 1; i + ms->rep_len <= m->n; i++) {
        if (starts_with(m->p + i, m->n - i, ms->rep, ms->rep_len)) {
            if (encode_word(e, m->p + word, i - word) != 0) return -1;
            word = i;
        }
    }
    return encode_word(e, m->p + word, m->n - word);
}

/* lstrip/rstrip absorb ASCII whitespace (HF: any Unicode whitespace) */
static bool is_space_byte(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* single_word boundaries: ASCII letters, digits and '_' are word
 * characters; as an approximation of HF's Unicode alphanumerics, so is every
 * non-ASCII byte */
static bool is_word_byte(char c)
{
    unsigned char u = (unsigned char)c;
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
           u == '_' || u >= 0x80;
}

typedef int (*segment_fn)(encoder *e, const char *s, size_t n, size_t offset);

/* Split s on the added tokens of matcher m: segments go to fn, matches are
 * emitted as ids. offset: where s starts in the original text. */
static int split_on_added(encoder *e, const tok_matcher *m, const char *s, size_t n,
                          size_t offset, segment_fn fn)
{
    const tok_hf *hf = e->t->hf;
    size_t seg = 0, pos = 0;
    while (pos < n) {
        const tok_literal *lit = tok_matcher_at(m, s, n, pos);
        const added_tok *a = lit ? &hf->added[lit->tag] : NULL;
        if (a && a->single_word &&
            ((pos > 0 && is_word_byte(s[pos - 1])) ||
             (pos + lit->n < n && is_word_byte(s[pos + lit->n]))))
            a = NULL;
        if (!a) {
            pos++;
            continue;
        }
        size_t start = pos, end = pos + lit->n;
        if (a->lstrip)
            while (start > seg && is_space_byte(s[start - 1])) start--;
        if (a->rstrip)
            while (end < n && is_space_byte(s[end])) end++;
        if (start > seg && fn(e, s + seg, start - seg, offset + seg) != 0) return -1;
        tok_ids_push(e->out, a->id);
        seg = pos = end;
    }
    if (n > seg) return fn(e, s + seg, n - seg, offset + seg);
    return 0;
}

static int encode_normalized_piece(encoder *e, const char *s, size_t n, size_t offset)
{
    return pretokenize_and_encode(e, s, n, offset == 0);
}

/* One piece of original text between added tokens. */
static int encode_segment(encoder *e, const char *s, size_t n, size_t offset)
{
    const tok_hf *hf = e->t->hf;
    normalize(hf, s, n, &e->norm);
    /* the normalized text is split again; copy it out of e->norm first */
    char *norm = e->norm.p;
    size_t nn = e->norm.n;
    e->norm = (tok_buf){0};
    int rc;
    if (hf->norm_match.n)
        rc = split_on_added(e, &hf->norm_match, norm, nn, offset, encode_normalized_piece);
    else
        rc = pretokenize_and_encode(e, norm, nn, offset == 0);
    free(norm);
    return rc;
}

int tok_hf_encode(const tok_tokenizer *t, const char *text, size_t len,
                  bool split_added, tok_ids *out)
{
    encoder e = {.t = t, .out = out};
    int rc;
    if (split_added)
        rc = split_on_added(&e, &t->hf->raw_match, text, len, 0, encode_segment);
    else
        rc = len ? encode_segment(&e, text, len, 0) : 0;
    tok_bpe_work_free(&e.work);
    tok_buf_free(&e.norm);
    tok_buf_free(&e.meta);
    return rc;
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct {
    tok_buf *s;
    size_t n, cap;
} strlist;

static tok_buf *strlist_add(strlist *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->s = xrealloc(l->s, l->cap * sizeof *l->s);
    }
    l->s[l->n] = (tok_buf){0};
    return &l->s[l->n++];
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++) tok_buf_free(&l->s[i]);
    free(l->s);
    *l = (strlist){0};
}

static void dec_replace(strlist *l, const dec_step *st)
{
    for (size_t i = 0; i < l->n; i++) {
        tok_buf out = {0};
        replace_all(&out, l->s[i].p, l->s[i].n, st->a, st->an, st->b, st->bn);
        tok_buf_free(&l->s[i]);
        l->s[i] = out;
    }
}

/* Runs of <0xXX> tokens become the text of their bytes (HF ByteFallback). */
static void dec_byte_fallback(strlist *l)
{
    strlist out = {0};
    tok_buf bytes = {0};
    for (size_t i = 0; i <= l->n; i++) {
        int b = i < l->n ? tok_parse_byte_piece(l->s[i].p, l->s[i].n) : -1;
        if (b >= 0) {
            tok_buf_putc(&bytes, (char)b);
            continue;
        }
        if (bytes.n) {
            tok_utf8_append_bytes(strlist_add(&out), (unsigned char *)bytes.p, bytes.n, false);
            bytes.n = 0;
        }
        if (i < l->n) {
            *strlist_add(&out) = l->s[i];
            l->s[i] = (tok_buf){0};
        }
    }
    tok_buf_free(&bytes);
    strlist_free(l);
    *l = out;
}

static void dec_fuse(strlist *l)
{
    tok_buf all = {0};
    for (size_t i = 0; i < l->n; i++) tok_buf_put(&all, l->s[i].p, l->s[i].n);
    strlist_free(l);
    *strlist_add(l) = all;
}

static void dec_strip(strlist *l, const dec_step *st)
{
    for (size_t i = 0; i < l->n; i++) {
        tok_buf *b = &l->s[i];
        if (b->n == 0) continue;
        size_t from = 0, to = b->n;
        for (long long k = 0; k < st->start && starts_with(b->p + from, to - from, st->a, st->an); k++)
            from += st->an;
        for (long long k = 0; k < st->stop && to - from >= st->an &&
                              memcmp(b->p + to - st->an, st->a, st->an) == 0; k++)
            to -= st->an;
        memmove(b->p, b->p + from, to - from);
        b->n = to - from;
    }
}

/* HF Metaspace decoder: '▁' -> ' ', except in the first token, where every
 * '▁' is dropped unless the scheme is "never". */
static void dec_metaspace(strlist *l, const dec_step *st)
{
    for (size_t i = 0; i < l->n; i++) {
        bool drop = i == 0 && st->scheme != PREPEND_NEVER;
        tok_buf out = {0};
        replace_all(&out, l->s[i].p, l->s[i].n, st->a, st->an, " ", drop ? 0 : 1);
        tok_buf_free(&l->s[i]);
        l->s[i] = out;
    }
}

static void run_decoder(const tok_hf *hf, strlist *l)
{
    for (size_t k = 0; k < hf->n_dec; k++) {
        const dec_step *st = &hf->dec[k];
        switch (st->kind) {
        case DEC_REPLACE: dec_replace(l, st); break;
        case DEC_BYTE_FALLBACK: dec_byte_fallback(l); break;
        case DEC_FUSE: dec_fuse(l); break;
        case DEC_STRIP: dec_strip(l, st); break;
        case DEC_METASPACE: dec_metaspace(l, st); break;
        }
    }
}

int tok_hf_decode(const tok_tokenizer *t, const int32_t *ids, size_t n,
                  bool skip_special, tok_buf *out)
{
    const tok_hf *hf = t->hf;
    strlist l = {0};
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_ids || !t->piece[id]) continue;
        if (skip_special && (t->flags[id] & TOKF_SPECIAL)) continue;
        int32_t a = hf->added_of_id[id];
        if (a >= 0)
            tok_buf_put(strlist_add(&l), hf->added[a].content, hf->added[a].n);
        else
            tok_buf_put(strlist_add(&l), t->piece[id], t->piece_len[id]);
    }
    if (hf->has_decoder) run_decoder(hf, &l);
    for (size_t i = 0; i < l.n; i++) {
        if (i > 0 && !hf->has_decoder) tok_buf_putc(out, ' '); /* HF's default */
        tok_buf_put(out, l.s[i].p, l.s[i].n);
    }
    strlist_free(&l);
    return 0;
}
