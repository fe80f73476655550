/* sima-prep-records.c — import's input: the records of a LLaVA instruction
 * file or SIMA prompt JSON Lines, each turned into a prompt (id, question
 * without the image marker, ground truth) and its image name, each distinct
 * image once. */
#define _GNU_SOURCE
#include "sima-prep.h"

#include "err.h"
#include "hash.h"
#include "h5io.h"
#include "js.h"
#include "log.h"
#include "strbuf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ================================================ import: input records === */

const char *format_name(input_format f)
{
    return f == FMT_LLAVA ? "llava" : f == FMT_SIMA ? "sima" : "auto";
}

/* "train.jsonl: line 7" or "train.json: record 7 (line 120)". */
static const char *pos_str(const record_pos *p, char *buf, size_t n)
{
    if (p->jsonl)
        snprintf(buf, n, "%s: line %ld", p->file, p->line);
    else
        snprintf(buf, n, "%s: record %ld (line %ld)", p->file, p->record, p->line);
    return buf;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_space(s[i])) return false;
    return true;
}

/* A whole file holding one JSON object is a common mistake for JSON Lines. */
static int explain_jsonl_error(const char *file, const char *buf, size_t len)
{
    json_error_t e;
    json_t *whole = json_loadb(buf, len, 0, &e);
    bool one_object = whole && json_is_object(whole);
    json_decref(whole);
    if (one_object)
        return ERR("%s: holds a single JSON object; expected a JSON array of records or "
                   "JSON Lines (one record per line)", file);
    return -1; /* keep the line's own message */
}

/* JSON Lines: one object per line; blank lines are ignored. */
static int read_jsonl(const char *file, const char *buf, size_t len, record_fn fn, void *ctx)
{
    record_pos pos = {file, true, 0, 0, 0};
    size_t start = 0;
    while (start < len) {
        const char *nl = memchr(buf + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - buf) : len;
        pos.line++;
        if (!is_blank(buf + start, end - start)) {
            pos.record++;
            pos.offset = start;
            json_error_t e;
            json_t *rec = json_loadb(buf + start, end - start, 0, &e);
            if (!rec) {
                ERR("%s: line %ld, column %d: invalid JSON: %s", file, pos.line, e.column,
                    e.text);
                return explain_jsonl_error(file, buf, len);
            }
            int rc = json_is_object(rec)
                         ? fn(rec, &pos, ctx)
                         : ERR("%s: line %ld: expected a JSON object, one per line", file,
                               pos.line);
            json_decref(rec);
            if (rc != 0) return rc < 0 ? -1 : 0;
        }
        start = end + 1;
    }
    return 0;
}

/* Skip whitespace from *pos, counting the newlines passed in *line and
 * remembering where the current line starts. */
static void skip_ws(const char *buf, size_t len, size_t *pos, long *line, size_t *line_start)
{
    while (*pos < len && is_space(buf[*pos])) {
        if (buf[*pos] == '\n') {
            (*line)++;
            *line_start = *pos + 1;
        }
        (*pos)++;
    }
}

static void count_lines(const char *buf, size_t from, size_t to, long *line, size_t *line_start)
{
    for (size_t i = from; i < to; i++)
        if (buf[i] == '\n') {
            (*line)++;
            *line_start = i + 1;
        }
}

/* When the scan of an array finds something wrong: if the file is not
 * valid JSON, jansson's own message (with line and column) is the error
 * and this returns true. */
static bool not_json(const char *file, const char *buf, size_t len)
{
    json_t *whole = js_load_buf(buf, len, file);
    json_decref(whole);
    return whole == NULL;
}

/* A JSON array of records, parsed one element at a time so that a large
 * file never lives in memory as one JSON tree, and so that every record
 * knows its line. */
static int read_json_array(const char *file, const char *buf, size_t len, record_fn fn,
                           void *ctx)
{
    record_pos pos = {file, false, 0, 1, 0};
    size_t at = 0, line_start = 0;
    skip_ws(buf, len, &at, &pos.line, &line_start);
    at++; /* the '[' the caller saw */
    skip_ws(buf, len, &at, &pos.line, &line_start);
    bool closed = at < len && buf[at] == ']';
    while (!closed) {
        pos.record++;
        pos.offset = at;
        json_error_t e;
        json_t *rec = at < len && buf[at] == '{'
                          ? json_loadb(buf + at, len - at, JSON_DISABLE_EOF_CHECK, &e)
                          : NULL;
        if (!rec) {
            if (not_json(file, buf, len)) return -1;
            return ERR("%s: record %ld (line %ld): expected a JSON object", file, pos.record,
                       pos.line);
        }
        int rc = fn(rec, &pos, ctx);
        json_decref(rec);
        if (rc != 0) return rc < 0 ? -1 : 0;
        /* with the EOF check off, position is the number of bytes consumed */
        count_lines(buf, at, at + (size_t)e.position, &pos.line, &line_start);
        at += (size_t)e.position;
        skip_ws(buf, len, &at, &pos.line, &line_start);
        if (at < len && buf[at] == ',') {
            at++;
            skip_ws(buf, len, &at, &pos.line, &line_start);
        } else if (at < len && buf[at] == ']') {
            closed = true;
        } else {
            if (not_json(file, buf, len)) return -1;
            return ERR("%s: line %ld, column %zu: expected ',' or ']' after record %ld", file,
                       pos.line, at - line_start + 1, pos.record);
        }
    }
    at++;
    skip_ws(buf, len, &at, &pos.line, &line_start);
    if (at < len && not_json(file, buf, len)) return -1;
    if (at < len)
        return ERR("%s: line %ld, column %zu: data after the end of the array", file, pos.line,
                   at - line_start + 1);
    return 0;
}

/* A JSON array (first character '[') or JSON Lines (anything else). */
int read_records(const char *file, const char *buf, size_t len, record_fn fn, void *ctx)
{
    /* a UTF-8 byte-order mark is not JSON, but editors write one */
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) {
        buf += 3;
        len -= 3;
    }
    size_t i = 0;
    while (i < len && is_space(buf[i])) i++;
    if (i < len && buf[i] == '[') return read_json_array(file, buf, len, fn, ctx);
    return read_jsonl(file, buf, len, fn, ctx);
}

/* ============================================= import: record contents === */

static uint64_t name_hash(const char *s) { return hash_fnv1a(s, strlen(s), HASH_FNV_INIT); }

static void image_set_rehash(image_set *s, size_t n_slots)
{
    free(s->slots);
    s->slots = xcalloc(n_slots, sizeof *s->slots);
    s->n_slots = n_slots;
    for (size_t i = 0; i < s->n; i++) {
        size_t k = name_hash(s->names[i]) & (n_slots - 1);
        while (s->slots[k]) k = (k + 1) & (n_slots - 1);
        s->slots[k] = (int64_t)i + 1;
    }
}

/* The slot of name: its entry, or the empty slot where it would go. */
static size_t image_set_slot(const image_set *s, const char *name)
{
    size_t k = name_hash(name) & (s->n_slots - 1);
    for (; s->slots[k]; k = (k + 1) & (s->n_slots - 1))
        if (!strcmp(s->names[s->slots[k] - 1], name)) break;
    return k;
}

/* The index of name, added if new; one more use of it. */
static int64_t image_set_add(image_set *s, const char *name)
{
    if (2 * (s->n + 1) > s->n_slots) image_set_rehash(s, s->n_slots ? 2 * s->n_slots : 1024);
    size_t k = image_set_slot(s, name);
    if (!s->slots[k]) {
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 64;
            s->names = xrealloc(s->names, s->cap * sizeof *s->names);
            s->uses = xrealloc(s->uses, s->cap * sizeof *s->uses);
        }
        s->names[s->n] = xstrdup(name);
        s->uses[s->n] = 0;
        s->slots[k] = (int64_t)s->n++ + 1;
    }
    s->uses[s->slots[k] - 1]++;
    return s->slots[k] - 1;
}

/* The index of name, -1 when absent. */
static int64_t image_set_find(const image_set *s, const char *name)
{
    if (!s->n_slots) return -1;
    size_t k = image_set_slot(s, name);
    return s->slots[k] ? s->slots[k] - 1 : -1;
}

void image_set_free(image_set *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->names[i]);
    free(s->names);
    free(s->uses);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

/* LLaVA writes "<image>\n" before the question (or "\n<image>" after it).
 * Drop each marker with the newline next to it and, as LLaVA's own
 * preprocessing does when it removes the marker, the surrounding spaces. */
static char *clean_question(const char *s)
{
    static const char marker[] = "<image>";
    const size_t mlen = sizeof marker - 1;
    strbuf out = {0};
    bool removed = false;
    while (*s) {
        if (strncmp(s, marker, mlen) != 0) {
            strbuf_putc(&out, *s++);
            continue;
        }
        s += mlen;
        removed = true;
        if (*s == '\n')
            s++;
        else if (out.len > 0 && out.s[out.len - 1] == '\n')
            out.s[--out.len] = '\0';
    }
    strbuf_putc(&out, '\0');
    out.len--;
    char *q = out.s;
    if (removed) {
        size_t a = 0, b = out.len;
        while (a < b && is_space(q[a])) a++;
        while (b > a && is_space(q[b - 1])) b--;
        memmove(q, q + a, b - a);
        q[b - a] = '\0';
    }
    return q;
}

/* The record's "id" as text: a string as is, an integer in decimal; absent:
 * its line (JSON Lines) or record number (JSON array). */
static int record_id(const json_t *rec, const record_pos *pos, const char *where, char **out)
{
    const json_t *v = json_object_get(rec, "id");
    char num[32];
    if (!v || json_is_null(v)) {
        snprintf(num, sizeof num, "%ld", pos->jsonl ? pos->line : pos->record);
        *out = xstrdup(num);
    } else if (json_is_string(v)) {
        *out = xstrdup(json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = xstrdup(num);
    } else {
        return ERR("%s: \"id\": expected a string or an integer", where);
    }
    return 0;
}

/* The record's "image": NULL when absent or null (a text-only prompt). */
static int record_image(const json_t *rec, const char *where, const char **out)
{
    if (js_get_str(rec, "image", NULL, out, where) != 0) return -1;
    if (*out && !**out) return ERR("%s: \"image\": empty path", where);
    return 0;
}

static bool turn_is(const char *from, const char *a, const char *b)
{
    return !strcmp(from, a) || !strcmp(from, b);
}

/* LLaVA: the first human turn is the question, the first gpt turn after it
 * the ground truth ("" when there is none). */
static int llava_fields(const json_t *rec, const char *where, const char **question,
                        const char **truth)
{
    const json_t *conv = json_object_get(rec, "conversations");
    if (!conv || json_is_null(conv)) return ERR("%s: no \"conversations\"", where);
    if (!json_is_array(conv))
        return ERR("%s: \"conversations\": expected an array of turns", where);
    *question = NULL;
    *truth = "";
    size_t i;
    const json_t *turn;
    json_array_foreach(conv, i, turn) {
        const json_t *from = json_object_get(turn, "from");
        const json_t *value = json_object_get(turn, "value");
        if (!json_is_object(turn) || !json_is_string(from) || !json_is_string(value))
            return ERR("%s: conversations[%zu]: expected {\"from\": \"...\", \"value\": "
                       "\"...\"}", where, i);
        if (!*question && turn_is(json_string_value(from), "human", "user")) {
            *question = json_string_value(value);
        } else if (*question && turn_is(json_string_value(from), "gpt", "assistant")) {
            *truth = json_string_value(value);
            break;
        }
    }
    if (!*question) return ERR("%s: no human turn in conversations", where);
    return 0;
}

/* SIMA prompts: "text" (or "question", as `export` writes it) and an
 * optional "ground_truth". */
static int sima_fields(const json_t *rec, const char *where, const char **question,
                       const char **truth)
{
    const char *key = json_object_get(rec, "text") ? "text" : "question";
    if (js_get_str(rec, key, NULL, question, where) != 0) return -1;
    if (!*question) return ERR("%s: no \"text\"", where);
    return js_get_str(rec, "ground_truth", "", truth, where);
}

static int detect_format(const json_t *rec, const char *where, input_format *out)
{
    if (json_object_get(rec, "conversations"))
        *out = FMT_LLAVA;
    else if (json_object_get(rec, "text") || json_object_get(rec, "question"))
        *out = FMT_SIMA;
    else
        return ERR("%s: cannot tell the input format from the first record (LLaVA records "
                   "have \"conversations\", SIMA prompts \"text\"); use --format", where);
    log_debug("input format: %s", format_name(*out));
    return 0;
}

/* The second pass: the prompt of a checked record, to emit. */
static int emit_prompt(import_state *st, const record_pos *pos, const char *where,
                       const char *question, const char *truth, const char *image, char *id)
{
    prompt p = {id, clean_question(question), xstrdup(truth), -1, pos->record, pos->line};
    int rc = 0;
    if (image && (p.image = image_set_find(&st->images, image)) < 0)
        rc = ERR("%s: image %s was not there in the first reading: the input changed during "
                 "the import", where, image);
    if (rc == 0) rc = st->emit(&p, st->emit_ctx);
    free(p.id);
    free(p.question);
    free(p.truth);
    return rc;
}

int add_record(const json_t *rec, const record_pos *pos, void *ctx)
{
    import_state *st = ctx;
    char where[1200];
    pos_str(pos, where, sizeof where);
    if (st->format == FMT_AUTO && detect_format(rec, where, &st->format) != 0) return -1;
    const char *question, *truth, *image;
    int rc = st->format == FMT_LLAVA ? llava_fields(rec, where, &question, &truth)
                                     : sima_fields(rec, where, &question, &truth);
    if (rc == 0) rc = record_image(rec, where, &image);
    char *id = NULL;
    if (rc == 0) rc = record_id(rec, pos, where, &id);
    if (rc != 0) return -1;
    if (st->emit) {
        rc = emit_prompt(st, pos, where, question, truth, image, id);
    } else {
        if (image) image_set_add(&st->images, image);
        else st->text_only++;
        free(id);
    }
    if (st->map) input_map_release(st->map, pos->offset);
    st->records++;
    if (rc != 0) return -1;
    return (st->limit && st->records >= st->limit) ? 1 : 0;
}

/* ================================================ import: the input file === */

#define INPUT_RELEASE_BYTES ((size_t)16 << 20)

int input_map_open(input_map *m, const char *path)
{
    memset(m, 0, sizeof *m);
    m->path = path;
    int fd = open(path, O_RDONLY);
    CHECK_IO(fd >= 0, "%s: cannot open", path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot open", path);
    else if (S_ISDIR(st.st_mode)) rc = ERR("%s: is a directory", path);
    m->len = rc == 0 ? (size_t)st.st_size : 0;
    if (rc == 0 && m->len > 0) {
        void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot read", path);
        else m->buf = p;
    }
    close(fd);
    if (rc == 0 && m->len > 0) madvise(m->buf, m->len, MADV_SEQUENTIAL);
    return rc;
}

/* Give back the whole pages of [released, upto); upto = len: every page. */
static void release_pages(input_map *m, size_t upto)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t end = upto >= m->len ? (m->len + page - 1) / page * page : upto / page * page;
    if (m->buf && end > m->released) {
        madvise(m->buf + m->released, end - m->released, MADV_DONTNEED);
        m->released = end;
    }
}

void input_map_release(input_map *m, size_t upto)
{
    if (upto >= m->released + INPUT_RELEASE_BYTES) release_pages(m, upto);
}

void input_map_rewind(input_map *m)
{
    release_pages(m, m->len);
    m->released = 0; /* the pages come back when read again */
}

uint64_t input_map_hash(input_map *m)
{
    uint64_t h = HASH_FNV_INIT;
    for (size_t at = 0; at < m->len; at += INPUT_RELEASE_BYTES) {
        size_t n = m->len - at < INPUT_RELEASE_BYTES ? m->len - at : INPUT_RELEASE_BYTES;
        h = hash_fnv1a(m->buf + at, n, h);
        release_pages(m, at + n);
    }
    input_map_rewind(m);
    return h;
}

void input_map_close(input_map *m)
{
    if (m->buf) munmap(m->buf, m->len);
    memset(m, 0, sizeof *m);
}

