/* tok_text.c — formats layer: byte buffers, UTF-8, hash maps and the literal
 * matcher used by the tokenizer. */
#include "tok_internal.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

/* ---- tok_buf ------------------------------------------------------------ */

static void buf_reserve(tok_buf *b, size_t extra)
{
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void tok_buf_put(tok_buf *b, const void *s, size_t n)
{
    if (n == 0) return;
    buf_reserve(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

void tok_buf_putc(tok_buf *b, char c)
{
    buf_reserve(b, 1);
    b->p[b->n++] = c;
}

void tok_buf_free(tok_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

char *tok_buf_take(tok_buf *b, size_t *len)
{
    buf_reserve(b, 0);
    b->p[b->n] = '\0';
    char *p = b->p;
    if (len) *len = b->n;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

/* ---- UTF-8 -------------------------------------------------------------- */

size_t tok_utf8_char_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0) return 0;
    unsigned c = u[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        if (c == 0xED) hi = 0x9F;      /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;      /* no overlongs */
        if (c == 0xF4) hi = 0x8F;      /* <= U+10FFFF */
    } else
        return 0;
    if (n < len) return 0;
    if (u[1] < lo || u[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((u[i] & 0xC0) != 0x80) return 0;
    return len;
}

bool tok_utf8_valid(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = tok_utf8_char_len(s + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

void tok_utf8_sanitize(tok_buf *out, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = tok_utf8_char_len(s + i, n - i);
        if (k) {
            tok_buf_put(out, s + i, k);
            i += k;
        } else {
            tok_buf_put(out, TOK_REPLACEMENT_CHAR, 3);
            i++;
        }
    }
}

void tok_utf8_append_bytes(tok_buf *out, const unsigned char *b, size_t n,
                           bool per_byte)
{
    const char *s = (const char *)b;
    if (per_byte) {
        tok_utf8_sanitize(out, s, n);
        return;
    }
    if (tok_utf8_valid(s, n)) {
        tok_buf_put(out, s, n);
        return;
    }
    for (size_t i = 0; i < n; i++) tok_buf_put(out, TOK_REPLACEMENT_CHAR, 3);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int tok_parse_byte_piece(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    if (hi < 0 || lo < 0) return -1;
    return hi * 16 + lo;
}

/* ---- metaspace words ---------------------------------------------------- */

size_t tok_metaspace_word_end(const char *s, size_t n, size_t start)
{
    const size_t k = sizeof TOK_METASPACE - 1;
    size_t p = start + 1;
    while (p + k <= n) {
        const char *hit = memchr(s + p, TOK_METASPACE[0], n - p);
        if (!hit) break;
        p = (size_t)(hit - s);
        if (p + k <= n && memcmp(s + p, TOK_METASPACE, k) == 0) {
            /* UTF-8 is self-synchronising: these 3 bytes before p are the
             * whole previous character when they spell '▁' */
            bool after_space = p >= start + k && memcmp(s + p - k, TOK_METASPACE, k) == 0;
            if (!after_space) return p;
        }
        p++;
    }
    return n;
}

/* ---- hashing ------------------------------------------------------------ */

/* FNV-1a, 32 bit: short keys (token pieces), good enough spread. */
static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static size_t capacity_for(size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2; /* load factor <= 1/2 */
    return cap;
}

/* ---- tok_strmap --------------------------------------------------------- */

void tok_strmap_init(tok_strmap *m, size_t expected)
{
    m->cap = capacity_for(expected);
    m->n = 0;
    m->ids = xmalloc(m->cap * sizeof *m->ids);
    m->hashes = xmalloc(m->cap * sizeof *m->hashes);
    for (size_t i = 0; i < m->cap; i++) m->ids[i] = -1;
}

void tok_strmap_free(tok_strmap *m)
{
    free(m->ids);
    free(m->hashes);
    memset(m, 0, sizeof *m);
}

static void strmap_grow(tok_strmap *m)
{
    tok_strmap big;
    big.cap = m->cap * 2;
    big.n = m->n;
    big.ids = xmalloc(big.cap * sizeof *big.ids);
    big.hashes = xmalloc(big.cap * sizeof *big.hashes);
    for (size_t i = 0; i < big.cap; i++) big.ids[i] = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->ids[i] < 0) continue;
        size_t j = m->hashes[i] & (big.cap - 1);
        while (big.ids[j] >= 0) j = (j + 1) & (big.cap - 1);
        big.ids[j] = m->ids[i];
        big.hashes[j] = m->hashes[i];
    }
    free(m->ids);
    free(m->hashes);
    *m = big;
}

static bool same_key(char *const *pieces, const uint32_t *lens, int32_t id,
                     const char *s, size_t n)
{
    return lens[id] == n && memcmp(pieces[id], s, n) == 0;
}

void tok_strmap_put(tok_strmap *m, char *const *pieces, const uint32_t *lens,
                    int32_t id)
{
    if ((m->n + 1) * 2 > m->cap) strmap_grow(m);
    uint32_t h = hash_bytes(pieces[id], lens[id]);
    size_t j = h & (m->cap - 1);
    while (m->ids[j] >= 0) {
        if (m->hashes[j] == h && same_key(pieces, lens, m->ids[j], pieces[id], lens[id])) {
            m->ids[j] = id;
            return;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->ids[j] = id;
    m->hashes[j] = h;
    m->n++;
}

int32_t tok_strmap_get(const tok_strmap *m, char *const *pieces,
                       const uint32_t *lens, const char *s, size_t n)
{
    if (!m->cap) return -1;
    uint32_t h = hash_bytes(s, n);
    size_t j = h & (m->cap - 1);
    while (m->ids[j] >= 0) {
        if (m->hashes[j] == h && same_key(pieces, lens, m->ids[j], s, n))
            return m->ids[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

/* ---- tok_u64map --------------------------------------------------------- */

void tok_u64map_init(tok_u64map *m, size_t expected)
{
    m->cap = capacity_for(expected);
    m->n = 0;
    m->keys = xmalloc(m->cap * sizeof *m->keys);
    m->vals = xmalloc(m->cap * sizeof *m->vals);
    for (size_t i = 0; i < m->cap; i++) m->keys[i] = UINT64_MAX;
}

void tok_u64map_free(tok_u64map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static void u64map_grow(tok_u64map *m)
{
    tok_u64map big;
    tok_u64map_init(&big, m->cap); /* doubles: capacity_for(cap) = 2*cap */
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != UINT64_MAX) tok_u64map_put(&big, m->keys[i], m->vals[i]);
    tok_u64map_free(m);
    *m = big;
}

void tok_u64map_put(tok_u64map *m, uint64_t key, uint64_t val)
{
    if ((m->n + 1) * 2 > m->cap) u64map_grow(m);
    size_t j = mix64(key) & (m->cap - 1);
    while (m->keys[j] != UINT64_MAX) {
        if (m->keys[j] == key) {
            m->vals[j] = val;
            return;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->keys[j] = key;
    m->vals[j] = val;
    m->n++;
}

bool tok_u64map_get(const tok_u64map *m, uint64_t key, uint64_t *val)
{
    if (!m->cap) return false;
    size_t j = mix64(key) & (m->cap - 1);
    while (m->keys[j] != UINT64_MAX) {
        if (m->keys[j] == key) {
            *val = m->vals[j];
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}

/* ---- tok_matcher -------------------------------------------------------- */

static int literal_order(const void *a, const void *b)
{
    const tok_literal *x = a, *y = b;
    unsigned char cx = (unsigned char)x->s[0], cy = (unsigned char)y->s[0];
    if (cx != cy) return cx < cy ? -1 : 1;
    if (x->n != y->n) return x->n > y->n ? -1 : 1; /* longest first */
    return x->tag < y->tag ? -1 : x->tag > y->tag;
}

void tok_matcher_init(tok_matcher *m, const tok_literal *lits, size_t n)
{
    memset(m, 0, sizeof *m);
    m->lits = xmalloc((n ? n : 1) * sizeof *m->lits);
    for (size_t i = 0; i < n; i++)
        if (lits[i].n > 0) m->lits[m->n++] = lits[i];
    qsort(m->lits, m->n, sizeof *m->lits, literal_order);
    size_t k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < m->n && (unsigned char)m->lits[k].s[0] < b) k++;
        m->first[b] = (uint32_t)k;
    }
}

void tok_matcher_free(tok_matcher *m)
{
    free(m->lits);
    memset(m, 0, sizeof *m);
}

const tok_literal *tok_matcher_at(const tok_matcher *m, const char *s, size_t n,
                                  size_t pos)
{
    if (pos >= n || m->n == 0) return NULL;
    unsigned char c = (unsigned char)s[pos];
    for (uint32_t i = m->first[c]; i < m->first[c + 1]; i++) {
        const tok_literal *l = &m->lits[i];
        if (l->n <= n - pos && memcmp(l->s, s + pos, l->n) == 0) return l;
    }
    return NULL;
}
