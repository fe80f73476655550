/* tok_internal.h — formats layer: what the tokenizer's source files share.
 *
 * Not a public header: tools and models use tokenizer.h only.
 *
 *   tokenizer.c   public API: loading by content, dispatch, LLaVA prompts
 *   tok_text.c    byte buffers, UTF-8 helpers, hash maps, literal matcher
 *   tok_bpe.c     the merge loop shared by both formats (heap + linked list)
 *   tok_hfjson.c  tokenizer.json: loader, HF encode pipeline, decoders
 *   tok_spm.c     tokenizer.model: protobuf reader, sentencepiece BPE
 */
#ifndef SIMA_FORMATS_TOK_INTERNAL_H
#define SIMA_FORMATS_TOK_INTERNAL_H

#include "tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- growable byte string ---------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} tok_buf;
void tok_buf_put(tok_buf *b, const void *s, size_t n);
void tok_buf_putc(tok_buf *b, char c);
void tok_buf_free(tok_buf *b);
/* Make p NUL-terminated (not counted in n) and hand it over. */
char *tok_buf_take(tok_buf *b, size_t *len);

/* ---- UTF-8 -------------------------------------------------------------- */

#define TOK_REPLACEMENT_CHAR "\xEF\xBF\xBD" /* U+FFFD */
#define TOK_METASPACE "\xE2\x96\x81"        /* U+2581 '▁' */

/* Length of the well-formed UTF-8 character at s[0..n), or 0 when the
 * bytes there are malformed (bad lead, bad continuation, overlong,
 * surrogate, > U+10FFFF, or cut short). */
size_t tok_utf8_char_len(const char *s, size_t n);
bool tok_utf8_valid(const char *s, size_t n);
/* Copy s to out, replacing every byte that does not start a well-formed
 * character with U+FFFD (sentencepiece's rule for malformed input). */
void tok_utf8_sanitize(tok_buf *out, const char *s, size_t n);
/* Append raw bytes to out as text. per_byte (sentencepiece): keep the
 * well-formed characters, one U+FFFD per bad byte. !per_byte (HF
 * ByteFallback decoder): if the whole run is not valid UTF-8, every byte of
 * it becomes U+FFFD. */
void tok_utf8_append_bytes(tok_buf *out, const unsigned char *b, size_t n,
                           bool per_byte);
/* "<0xAB>" -> 0xAB; -1 when the piece is not of that form. */
int tok_parse_byte_piece(const char *s, size_t n);

/* Where the word starting at text[start] ends: the next '▁' that follows a
 * character other than '▁' (or n). See tok_vocab_allows_word_split. */
size_t tok_metaspace_word_end(const char *s, size_t n, size_t start);

/* ---- string -> id map over the tokenizer's own piece table -------------- */

/* Open addressing; keys are not copied: slot i refers to piece id, whose
 * text is pieces[id] / lens[id], so the table must outlive the map. */
typedef struct {
    int32_t *ids;     /* -1: empty */
    uint32_t *hashes;
    size_t cap, n;    /* cap: power of two */
} tok_strmap;
void tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m);
/* Insert id (key = pieces[id]); an existing equal key is replaced. */
void tok_strmap_put(tok_strmap *m, char *const *pieces, const uint32_t *lens,
                    int32_t id);
int32_t tok_strmap_get(const tok_strmap *m, char *const *pieces,
                       const uint32_t *lens, const char *s, size_t n);

/* ---- u64 -> u64 map (merge pair -> rank, result) ------------------------ */

typedef struct {
    uint64_t *keys; /* UINT64_MAX: empty */
    uint64_t *vals;
    size_t cap, n;
} tok_u64map;
void tok_u64map_init(tok_u64map *m, size_t expected);
void tok_u64map_free(tok_u64map *m);
void tok_u64map_put(tok_u64map *m, uint64_t key, uint64_t val);
bool tok_u64map_get(const tok_u64map *m, uint64_t key, uint64_t *val);

/* ---- literal matcher: longest of a set of strings at a position --------- */

typedef struct {
    const char *s;
    size_t n;
    int32_t tag; /* caller's value (an index) */
} tok_literal;
typedef struct {
    tok_literal *lits; /* sorted by first byte, then by length descending */
    size_t n;
    uint32_t first[257]; /* lits with first byte b: [first[b], first[b+1]) */
} tok_matcher;
/* lits are copied (the strings are not); empty strings are ignored. */
void tok_matcher_init(tok_matcher *m, const tok_literal *lits, size_t n);
void tok_matcher_free(tok_matcher *m);
/* The longest literal equal to s[pos..pos+len) for some len, or NULL. */
const tok_literal *tok_matcher_at(const tok_matcher *m, const char *s, size_t n,
                                  size_t pos);

/* ---- BPE merge loop ----------------------------------------------------- */

/* One symbol of a word being merged: the bytes text[start, start+len) of the
 * word, the id they currently stand for (-1: none yet), neighbours in a
 * doubly linked list. len == 0 marks a symbol merged into its left
 * neighbour. frozen symbols never merge (sentencepiece user-defined). */
typedef struct {
    int32_t start, len, id, prev, next;
    bool frozen;
} tok_sym;

/* A candidate merge of adjacent symbols left/right into id; smaller prio
 * first, ties to the smaller left index (leftmost). len: the merged length,
 * used to detect candidates made stale by an earlier merge. */
typedef struct {
    float prio;
    int32_t left, right, id, len;
} tok_cand;

/* Can l and r merge? If so set *prio and *id. ctx is the format's. */
typedef bool (*tok_pair_fn)(void *ctx, const char *text, const tok_sym *l,
                            const tok_sym *r, float *prio, int32_t *id);

/* Reusable scratch space for tok_bpe_merge. */
typedef struct {
    tok_sym *sym;
    size_t n, cap;
    tok_cand *heap;
    size_t hn, hcap;
} tok_bpe_work;
void tok_bpe_work_free(tok_bpe_work *w);
void tok_bpe_clear(tok_bpe_work *w);
void tok_bpe_push_sym(tok_bpe_work *w, int32_t start, int32_t len, int32_t id,
                      bool frozen);
/* Merge w->sym (linked in order by tok_bpe_push_sym) until no candidate is
 * left; O(n log n). Afterwards, walk live symbols from index 0 via next. */
void tok_bpe_merge(tok_bpe_work *w, const char *text, tok_pair_fn fn, void *ctx);

/* ---- the tokenizer ------------------------------------------------------ */

enum tok_kind { TOK_KIND_HF, TOK_KIND_SPM };

/* Per-id flags. */
enum {
    TOKF_MODEL = 1 << 0,   /* in the model's vocabulary (BPE can produce it) */
    TOKF_SPECIAL = 1 << 1, /* skipped by decode(skip_special) */
    TOKF_BYTE = 1 << 2,    /* <0xXX> byte piece */
    TOKF_UNUSED = 1 << 3,  /* sentencepiece UNUSED */
    TOKF_USER = 1 << 4,    /* sentencepiece USER_DEFINED */
    TOKF_CONTROL = 1 << 5, /* sentencepiece CONTROL */
    TOKF_UNKNOWN = 1 << 6, /* sentencepiece UNKNOWN */
};

typedef struct tok_hf tok_hf;
typedef struct tok_spm tok_spm;

struct tok_tokenizer {
    enum tok_kind kind;
    char *name;        /* file name used in messages */
    int32_t n_ids;     /* ids are 0..n_ids-1; piece[id] may be NULL (hole) */
    char **piece;      /* NUL-terminated, may contain NUL (length in piece_len) */
    uint32_t *piece_len;
    uint8_t *flags;
    tok_strmap vocab;  /* model vocabulary (TOKF_MODEL): piece -> id */
    int32_t byte_id[256]; /* id of <0xXX>, -1 if absent */
    int32_t bos, eos, unk;
    tok_hf *hf;
    tok_spm *spm;
};

/* Allocate the per-id tables for n ids (pieces NULL, flags 0). */
void tok_alloc_ids(tok_tokenizer *t, int32_t n);
/* Set piece text of id (copied). */
void tok_set_piece(tok_tokenizer *t, int32_t id, const char *s, size_t n);
/* Fill byte_id[] from the model pieces "<0xXX>". */
void tok_find_byte_pieces(tok_tokenizer *t);
int32_t tok_lookup_model(const tok_tokenizer *t, const char *s, size_t n);
/* True when no model piece has '▁' right after another character than '▁'
 * (and '▁' itself is a piece). Then no merge can ever join the symbols on
 * both sides of such a position: every merged symbol spanning it would be
 * a piece containing "x▁". BPE over the whole text then equals BPE over the
 * words cut before each such '▁' (tok_metaspace_word_end), which keeps the
 * merge heap small: sentencepiece-trained vocabularies (LLaMA, Mistral)
 * all qualify. */
bool tok_vocab_allows_word_split(const tok_tokenizer *t);

/* Format back ends. Loaders fill a zeroed *t (name already set) and return
 * 0, or -1 with an error naming t->name; tok_free releases partial state. */
int tok_hf_load(tok_tokenizer *t, const char *buf, size_t len);
void tok_hf_free(tok_hf *hf);
int tok_hf_encode(const tok_tokenizer *t, const char *text, size_t len,
                  bool split_added, tok_ids *out);
/* Append the post_processor template's ids before (prefix) or after the
 * text; false when the file has no template (the caller adds BOS). */
bool tok_hf_add_template(const tok_tokenizer *t, bool prefix, tok_ids *out);
int tok_hf_decode(const tok_tokenizer *t, const int32_t *ids, size_t n,
                  bool skip_special, tok_buf *out);
int32_t tok_hf_added_lookup(const tok_tokenizer *t, const char *s, size_t n);

int tok_spm_load(tok_tokenizer *t, const unsigned char *buf, size_t len);
void tok_spm_free(tok_spm *sp);
int tok_spm_encode(const tok_tokenizer *t, const char *text, size_t len,
                   tok_ids *out);
int tok_spm_decode(const tok_tokenizer *t, const int32_t *ids, size_t n,
                   bool skip_special, tok_buf *out);

#endif
