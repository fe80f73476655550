/* tok_spm.c — formats layer: sentencepiece tokenizer.model (BPE models).
 *
 * The file is a protobuf ModelProto, read here with a small reader of
 * varints and length-delimited fields:
 *   ModelProto      1 pieces (repeated), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece, 2 score (float), 3 type (NORMAL 1, UNKNOWN 2,
 *                   CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6)
 *   TrainerSpec     3 model_type (UNIGRAM 1, BPE 2, WORD 3, CHAR 4),
 *                   24 treat_whitespace_as_suffix, 35 byte_fallback,
 *                   40 unk_id, 41 bos_id, 42 eos_id, 44 unk_surface
 *   NormalizerSpec  1 name, 2 precompiled_charsmap, 3 add_dummy_prefix,
 *                   4 remove_extra_whitespaces, 5 escape_whitespaces
 * Unknown fields are skipped.
 *
 * Encoding is sentencepiece's BPE: normalize (whitespace rules only: a
 * non-empty charsmap is refused at load), split into characters with
 * user-defined pieces whole and frozen, repeatedly merge the adjacent pair
 * whose concatenation is a piece with the highest score (ties: leftmost),
 * then undo merges into UNUSED pieces and spell unknown characters as
 * <0xXX> byte pieces (or <unk> without byte fallback).
 */
#include "tok_internal.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum sp_type { SP_NORMAL = 1, SP_UNKNOWN = 2, SP_CONTROL = 3, SP_USER = 4, SP_UNUSED = 5, SP_BYTE = 6 };
enum { SP_MODEL_UNIGRAM = 1, SP_MODEL_BPE = 2, SP_MODEL_WORD = 3, SP_MODEL_CHAR = 4 };

struct tok_spm {
    float *score;
    bool byte_fallback;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    bool has_unused;
    bool word_split; /* BPE per metaspace word: see tok_vocab_allows_word_split */
    char *unk_surface;
    size_t unk_surface_len;
    tok_matcher user; /* user-defined pieces, tag = id */
};

/* ---- protobuf reader ----------------------------------------------------- */

typedef struct {
    const unsigned char *p, *end, *base;
    const char *name; /* file name for messages */
} pb_reader;

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_BYTES = 2, PB_FIXED32 = 5 };

static int pb_fail(const pb_reader *r, const char *what)
{
    return ERR("%s: not a valid sentencepiece model: %s at byte %zu", r->name, what,
               (size_t)(r->p - r->base));
}

static int pb_varint(pb_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return pb_fail(r, "truncated varint");
        unsigned char c = *r->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return pb_fail(r, "overlong varint");
}

static int pb_key(pb_reader *r, uint32_t *field, int *wire)
{
    uint64_t k;
    if (pb_varint(r, &k) != 0) return -1;
    *field = (uint32_t)(k >> 3);
    *wire = (int)(k & 7);
    if (*field == 0) return pb_fail(r, "field number 0");
    return 0;
}

static int pb_bytes(pb_reader *r, const unsigned char **s, size_t *n)
{
    uint64_t len;
    if (pb_varint(r, &len) != 0) return -1;
    if (len > (uint64_t)(r->end - r->p)) return pb_fail(r, "length past the end of the data");
    *s = r->p;
    *n = (size_t)len;
    r->p += len;
    return 0;
}

static int pb_fixed32(pb_reader *r, uint32_t *v)
{
    if (r->end - r->p < 4) return pb_fail(r, "truncated fixed32");
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
         (uint32_t)r->p[3] << 24;
    r->p += 4;
    return 0;
}

static int pb_skip(pb_reader *r, int wire)
{
    uint64_t v;
    const unsigned char *s = NULL;
    size_t n = 0;
    switch (wire) {
    case PB_VARINT: return pb_varint(r, &v);
    case PB_BYTES: return pb_bytes(r, &s, &n);
    case PB_FIXED32:
        if (r->end - r->p < 4) return pb_fail(r, "truncated fixed32");
        r->p += 4;
        return 0;
    case PB_FIXED64:
        if (r->end - r->p < 8) return pb_fail(r, "truncated fixed64");
        r->p += 8;
        return 0;
    default: return pb_fail(r, "unsupported wire type");
    }
}

/* A field of the expected wire type, else a message naming it. */
static int pb_expect(pb_reader *r, int wire, int want, const char *field)
{
    if (wire == want) return 0;
    char what[96];
    snprintf(what, sizeof what, "field %s has the wrong wire type", field);
    return pb_fail(r, what);
}

static pb_reader pb_sub(const pb_reader *r, const unsigned char *s, size_t n)
{
    return (pb_reader){.p = s, .end = s + n, .base = r->base, .name = r->name};
}

/* ---- ModelProto ---------------------------------------------------------- */

typedef struct {
    const unsigned char *s;
    size_t n;
    float score;
    int type;
} raw_piece;

typedef struct {
    raw_piece *pieces;
    size_t n, cap;
    int64_t model_type, unk_id, bos_id, eos_id;
    bool byte_fallback, ws_suffix;
    const unsigned char *unk_surface, *norm_name, *charsmap;
    size_t unk_surface_n, norm_name_n, charsmap_n;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
} model_proto;

static int parse_piece(pb_reader *r, raw_piece *out)
{
    *out = (raw_piece){.type = SP_NORMAL};
    bool has_piece = false;
    while (r->p < r->end) {
        uint32_t f;
        int w;
        uint64_t v = 0;
        uint32_t bits = 0;
        if (pb_key(r, &f, &w) != 0) return -1;
        if (f == 1) {
            if (pb_expect(r, w, PB_BYTES, "piece") || pb_bytes(r, &out->s, &out->n)) return -1;
            has_piece = true;
        } else if (f == 2) {
            if (pb_expect(r, w, PB_FIXED32, "score") || pb_fixed32(r, &bits)) return -1;
            memcpy(&out->score, &bits, sizeof bits);
        } else if (f == 3) {
            if (pb_expect(r, w, PB_VARINT, "type") || pb_varint(r, &v)) return -1;
            if (v < SP_NORMAL || v > SP_BYTE) return pb_fail(r, "unknown piece type");
            out->type = (int)v;
        } else if (pb_skip(r, w) != 0) {
            return -1;
        }
    }
    if (!has_piece || out->n == 0) return pb_fail(r, "a piece without text");
    return 0;
}

/* proto2 int32 fields: negative values are 10-byte varints. */
static int64_t as_int32(uint64_t v) { return (int64_t)(int32_t)(uint32_t)v; }

static int parse_trainer(pb_reader *r, model_proto *m)
{
    while (r->p < r->end) {
        uint32_t f;
        int w;
        uint64_t v;
        if (pb_key(r, &f, &w) != 0) return -1;
        if (w == PB_VARINT && (f == 3 || f == 24 || f == 35 || (f >= 40 && f <= 42))) {
            if (pb_varint(r, &v) != 0) return -1;
            if (f == 3) m->model_type = as_int32(v);
            else if (f == 24) m->ws_suffix = v != 0;
            else if (f == 35) m->byte_fallback = v != 0;
            else if (f == 40) m->unk_id = as_int32(v);
            else if (f == 41) m->bos_id = as_int32(v);
            else m->eos_id = as_int32(v);
        } else if (f == 44 && w == PB_BYTES) {
            if (pb_bytes(r, &m->unk_surface, &m->unk_surface_n) != 0) return -1;
        } else if (pb_skip(r, w) != 0) {
            return -1;
        }
    }
    return 0;
}

static int parse_normalizer(pb_reader *r, model_proto *m)
{
    while (r->p < r->end) {
        uint32_t f;
        int w;
        uint64_t v;
        if (pb_key(r, &f, &w) != 0) return -1;
        if (f == 1 && w == PB_BYTES) {
            if (pb_bytes(r, &m->norm_name, &m->norm_name_n) != 0) return -1;
        } else if (f == 2 && w == PB_BYTES) {
            if (pb_bytes(r, &m->charsmap, &m->charsmap_n) != 0) return -1;
        } else if (f >= 3 && f <= 5 && w == PB_VARINT) {
            if (pb_varint(r, &v) != 0) return -1;
            if (f == 3) m->add_dummy_prefix = v != 0;
            else if (f == 4) m->remove_extra_whitespaces = v != 0;
            else m->escape_whitespaces = v != 0;
        } else if (pb_skip(r, w) != 0) {
            return -1;
        }
    }
    return 0;
}

static int parse_model_proto(pb_reader *r, model_proto *m)
{
    /* proto defaults */
    m->model_type = SP_MODEL_UNIGRAM;
    m->unk_id = 0;
    m->bos_id = 1;
    m->eos_id = 2;
    m->add_dummy_prefix = m->remove_extra_whitespaces = m->escape_whitespaces = true;
    while (r->p < r->end) {
        uint32_t f;
        int w;
        const unsigned char *s = NULL;
        size_t n = 0;
        if (pb_key(r, &f, &w) != 0) return -1;
        if (f < 1 || f > 3) {
            if (pb_skip(r, w) != 0) return -1;
            continue;
        }
        if (pb_expect(r, w, PB_BYTES, f == 1 ? "pieces" : f == 2 ? "trainer_spec" : "normalizer_spec") ||
            pb_bytes(r, &s, &n))
            return -1;
        pb_reader sub = pb_sub(r, s, n);
        if (f == 1) {
            if (m->n == m->cap) {
                m->cap = m->cap ? 2 * m->cap : 1024;
                m->pieces = xrealloc(m->pieces, m->cap * sizeof *m->pieces);
            }
            if (parse_piece(&sub, &m->pieces[m->n++]) != 0) return -1;
        } else if (f == 2) {
            if (parse_trainer(&sub, m) != 0) return -1;
        } else if (parse_normalizer(&sub, m) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- checks: refuse what we would encode differently --------------------- */

static int check_supported(const tok_tokenizer *t, const model_proto *m)
{
    if (m->n == 0) return ERR("%s: not a sentencepiece model: no pieces", t->name);
    if (m->model_type != SP_MODEL_BPE) {
        const char *names[] = {"?", "unigram", "BPE", "word", "char"};
        const char *nm = m->model_type >= 1 && m->model_type <= 4 ? names[m->model_type] : "?";
        return ERR("%s: sentencepiece model_type %s (%lld) is not supported (only BPE)",
                   t->name, nm, (long long)m->model_type);
    }
    if (m->charsmap_n > 0)
        return ERR("%s: unsupported normalizer \"%.*s\": a precompiled charsmap is not "
                   "implemented (only identity)", t->name, (int)m->norm_name_n,
                   m->norm_name ? (const char *)m->norm_name : "");
    if (m->ws_suffix)
        return ERR("%s: treat_whitespace_as_suffix is not supported", t->name);
    int64_t ids[3] = {m->unk_id, m->bos_id, m->eos_id};
    const char *what[3] = {"unk_id", "bos_id", "eos_id"};
    for (int i = 0; i < 3; i++)
        if (ids[i] < -1 || ids[i] >= (int64_t)m->n)
            return ERR("%s: %s %lld is outside the %zu pieces", t->name, what[i],
                       (long long)ids[i], m->n);
    return 0;
}

/* ---- load ---------------------------------------------------------------- */

static uint8_t flags_for(int type)
{
    switch (type) {
    case SP_NORMAL: return TOKF_MODEL;
    case SP_USER: return TOKF_MODEL | TOKF_USER;
    case SP_UNUSED: return TOKF_MODEL | TOKF_UNUSED;
    case SP_CONTROL: return TOKF_CONTROL | TOKF_SPECIAL;
    case SP_UNKNOWN: return TOKF_UNKNOWN | TOKF_SPECIAL;
    default: return TOKF_BYTE;
    }
}

static int fill_pieces(tok_tokenizer *t, const model_proto *m)
{
    tok_spm *sp = t->spm;
    tok_alloc_ids(t, (int32_t)m->n);
    sp->score = xmalloc(m->n * sizeof *sp->score);
    tok_strmap_init(&t->vocab, m->n);
    tok_strmap all; /* every piece, to find duplicates */
    tok_strmap_init(&all, m->n);
    int rc = 0;
    for (int32_t id = 0; id < (int32_t)m->n && rc == 0; id++) {
        const raw_piece *p = &m->pieces[id];
        tok_set_piece(t, id, (const char *)p->s, p->n);
        t->flags[id] = flags_for(p->type);
        sp->score[id] = p->score;
        if (tok_strmap_get(&all, t->piece, t->piece_len, t->piece[id], p->n) >= 0) {
            rc = ERR("%s: piece \"%.*s\" appears twice", t->name, (int)(p->n > 100 ? 100 : p->n),
                     t->piece[id]);
            break;
        }
        tok_strmap_put(&all, t->piece, t->piece_len, id);
        if (t->flags[id] & TOKF_MODEL) tok_strmap_put(&t->vocab, t->piece, t->piece_len, id);
        if (p->type == SP_BYTE) {
            int b = tok_parse_byte_piece(t->piece[id], p->n);
            if (b < 0) rc = ERR("%s: byte piece %d is \"%s\", not <0xXX>", t->name, id, t->piece[id]);
            else t->byte_id[b] = id;
        }
        if (p->type == SP_UNUSED) sp->has_unused = true;
    }
    tok_strmap_free(&all);
    return rc;
}

static void build_user_matcher(tok_tokenizer *t)
{
    tok_literal *lits = xmalloc(((size_t)t->n_ids + 1) * sizeof *lits);
    size_t n = 0;
    for (int32_t id = 0; id < t->n_ids; id++)
        if (t->flags[id] & TOKF_USER) lits[n++] = (tok_literal){t->piece[id], t->piece_len[id], id};
    tok_matcher_init(&t->spm->user, lits, n);
    free(lits);
}

static int check_byte_pieces(const tok_tokenizer *t)
{
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0)
            return ERR("%s: byte_fallback is on but piece <0x%02X> is missing", t->name, b);
    return 0;
}

static int setup_from_proto(tok_tokenizer *t, const model_proto *m)
{
    tok_spm *sp = t->spm;
    if (check_supported(t, m) != 0 || fill_pieces(t, m) != 0) return -1;
    sp->byte_fallback = m->byte_fallback;
    if (sp->byte_fallback && check_byte_pieces(t) != 0) return -1;
    sp->add_dummy_prefix = m->add_dummy_prefix;
    sp->remove_extra_whitespaces = m->remove_extra_whitespaces;
    sp->escape_whitespaces = m->escape_whitespaces;
    const char *unk_surface = m->unk_surface ? (const char *)m->unk_surface : " \xE2\x81\x87 ";
    sp->unk_surface_len = m->unk_surface ? m->unk_surface_n : strlen(unk_surface);
    sp->unk_surface = xmalloc(sp->unk_surface_len + 1);
    memcpy(sp->unk_surface, unk_surface, sp->unk_surface_len);
    t->unk = (int32_t)m->unk_id;
    t->bos = (int32_t)m->bos_id;
    t->eos = (int32_t)m->eos_id;
    build_user_matcher(t);
    /* UNUSED pieces are split back by how they were last made, an order
     * that cutting into words would change: keep the whole text then */
    sp->word_split = !sp->has_unused && tok_vocab_allows_word_split(t);
    return 0;
}

int tok_spm_load(tok_tokenizer *t, const unsigned char *buf, size_t len)
{
    t->spm = xcalloc(1, sizeof *t->spm);
    pb_reader r = {.p = buf, .end = buf + len, .base = buf, .name = t->name};
    model_proto m = {0};
    int rc = parse_model_proto(&r, &m);
    if (rc == 0) rc = setup_from_proto(t, &m);
    free(m.pieces);
    return rc;
}

void tok_spm_free(tok_spm *sp)
{
    free(sp->score);
    free(sp->unk_surface);
    tok_matcher_free(&sp->user);
    free(sp);
}

/* ---- normalizer ---------------------------------------------------------- */

/* sentencepiece's whitespace rules (the charsmap is identity): optional
 * dummy '▁' prefix, ' ' -> '▁', and with remove_extra_whitespaces no
 * leading, trailing or repeated spaces. Empty or all-space input gives "". */
static void normalize(const tok_spm *sp, const char *s, size_t n, tok_buf *out)
{
    const char *space = sp->escape_whitespaces ? TOK_METASPACE : " ";
    const size_t space_n = strlen(space);
    bool squeeze = sp->remove_extra_whitespaces;
    size_t i = 0;
    out->n = 0;
    if (squeeze)
        while (i < n && s[i] == ' ') i++;
    if (i == n) return;
    if (sp->add_dummy_prefix) tok_buf_put(out, space, space_n);
    bool prev_space = squeeze;
    for (; i < n; i++) {
        bool is_space = s[i] == ' ';
        if (is_space && prev_space) continue;
        if (is_space) tok_buf_put(out, space, space_n);
        else tok_buf_putc(out, s[i]);
        prev_space = squeeze && is_space;
    }
    while (squeeze && out->n >= space_n && memcmp(out->p + out->n - space_n, space, space_n) == 0)
        out->n -= space_n;
}

/* ---- encoding ------------------------------------------------------------ */

typedef struct {
    const tok_tokenizer *t;
    int32_t *rev_left; /* UNUSED piece id -> length of its left part, or -1 */
} spm_encoder;

/* Merge when the concatenation is a piece (NORMAL, USER_DEFINED or UNUSED);
 * higher score first. */
static bool merge_by_score(void *ctx, const char *text, const tok_sym *l,
                           const tok_sym *r, float *prio, int32_t *id)
{
    spm_encoder *e = ctx;
    const tok_tokenizer *t = e->t;
    int32_t p = tok_lookup_model(t, text + l->start, (size_t)(l->len + r->len));
    if (p < 0) return false;
    *prio = -t->spm->score[p];
    *id = p;
    /* remember how an UNUSED piece was made, to split it back afterwards */
    if (t->flags[p] & TOKF_UNUSED) e->rev_left[p] = l->len;
    return true;
}

static void emit_unknown(const tok_tokenizer *t, const char *s, size_t n, tok_ids *out)
{
    if (t->spm->byte_fallback) {
        for (size_t i = 0; i < n; i++) tok_ids_push(out, t->byte_id[(unsigned char)s[i]]);
    } else {
        tok_ids_push(out, t->unk);
    }
}

/* Output one merged symbol, resegmenting UNUSED pieces into their parts. */
static void emit_symbol(const spm_encoder *e, const char *s, size_t n, tok_ids *out)
{
    const tok_tokenizer *t = e->t;
    int32_t id = tok_lookup_model(t, s, n);
    if (id < 0) {
        emit_unknown(t, s, n, out);
        return;
    }
    int32_t left = (t->flags[id] & TOKF_UNUSED) ? e->rev_left[id] : -1;
    if (left <= 0 || (size_t)left >= n) {
        tok_ids_push(out, id);
        return;
    }
    emit_symbol(e, s, (size_t)left, out);
    emit_symbol(e, s + left, n - (size_t)left, out);
}

/* Characters, with user-defined pieces as single frozen symbols. */
static void split_symbols(const tok_tokenizer *t, const char *s, size_t n,
                          tok_bpe_work *w)
{
    size_t i = 0;
    while (i < n) {
        const tok_literal *u = tok_matcher_at(&t->spm->user, s, n, i);
        if (u) {
            tok_bpe_push_sym(w, (int32_t)i, (int32_t)u->n, u->tag, true);
            i += u->n;
            continue;
        }
        size_t k = tok_utf8_char_len(s + i, n - i);
        if (!k) k = 1; /* cannot happen: input is sanitized */
        tok_bpe_push_sym(w, (int32_t)i, (int32_t)k, tok_lookup_model(t, s + i, k), false);
        i += k;
    }
}

/* BPE over norm[0..n) (one word, or all the text) */
static void bpe_span(spm_encoder *e, const char *s, size_t n, tok_bpe_work *w,
                     tok_ids *out)
{
    tok_bpe_clear(w);
    split_symbols(e->t, s, n, w);
    tok_bpe_merge(w, s, merge_by_score, e);
    for (int32_t i = w->n ? 0 : -1; i >= 0; i = w->sym[i].next)
        emit_symbol(e, s + w->sym[i].start, (size_t)w->sym[i].len, out);
}

int tok_spm_encode(const tok_tokenizer *t, const char *text, size_t len,
                   tok_ids *out)
{
    tok_buf norm = {0};
    normalize(t->spm, text, len, &norm);
    if (norm.n > INT32_MAX) {
        tok_buf_free(&norm);
        return ERR("%s: text of %zu bytes is too long to encode at once", t->name, len);
    }
    spm_encoder e = {.t = t};
    if (t->spm->has_unused) {
        e.rev_left = xmalloc((size_t)t->n_ids * sizeof *e.rev_left);
        for (int32_t i = 0; i < t->n_ids; i++) e.rev_left[i] = -1;
    }
    tok_bpe_work w = {0};
    if (!t->spm->word_split) {
        bpe_span(&e, norm.p, norm.n, &w, out);
    } else {
        for (size_t start = 0; start < norm.n;) {
            size_t end = tok_metaspace_word_end(norm.p, norm.n, start);
            bpe_span(&e, norm.p + start, end - start, &w, out);
            start = end;
        }
    }
    tok_bpe_work_free(&w);
    free(e.rev_left);
    tok_buf_free(&norm);
    return 0;
}

/* ---- decoding ------------------------------------------------------------ */

/* A normal piece's text: '▁' -> ' ', minus the dummy prefix if first. */
static void put_piece_text(const tok_spm *sp, const char *p, size_t n, bool first,
                           tok_buf *out)
{
    const size_t mn = sizeof TOK_METASPACE - 1;
    if (first && sp->add_dummy_prefix && n >= mn && memcmp(p, TOK_METASPACE, mn) == 0) {
        p += mn;
        n -= mn;
    }
    size_t i = 0, last = 0;
    while (i + mn <= n) {
        if (memcmp(p + i, TOK_METASPACE, mn) == 0) {
            tok_buf_put(out, p + last, i - last);
            tok_buf_putc(out, ' ');
            i += mn;
            last = i;
        } else {
            i++;
        }
    }
    tok_buf_put(out, p + last, n - last);
}

int tok_spm_decode(const tok_tokenizer *t, const int32_t *ids, size_t n,
                   bool skip_special, tok_buf *out)
{
    const tok_spm *sp = t->spm;
    tok_buf bytes = {0};
    bool first = true; /* no visible text yet: the dummy prefix is still due */
    for (size_t i = 0; i <= n; i++) {
        int32_t id = i < n ? ids[i] : -1;
        if (i < n && (id < 0 || id >= t->n_ids)) continue;
        uint8_t f = i < n ? t->flags[id] : 0;
        if (f & TOKF_BYTE) {
            tok_buf_putc(&bytes, (char)tok_parse_byte_piece(t->piece[id], t->piece_len[id]));
            continue;
        }
        if (bytes.n) {
            tok_utf8_append_bytes(out, (unsigned char *)bytes.p, bytes.n, true);
            bytes.n = 0;
            first = false;
        }
        if (i == n) break;
        size_t before = out->n;
        if (f & TOKF_SPECIAL) {
            if (skip_special) continue;
            if (f & TOKF_UNKNOWN) tok_buf_put(out, sp->unk_surface, sp->unk_surface_len);
            else tok_buf_put(out, t->piece[id], t->piece_len[id]);
            continue; /* control text does not consume the dummy prefix */
        }
        put_piece_text(sp, t->piece[id], t->piece_len[id], first, out);
        if (out->n > before) first = false;
    }
    tok_buf_free(&bytes);
    return 0;
}
