/* sima-prep — build prompts.h5 from the data people have, and look inside any
 * sima file.
 *
 *   sima-prep import [--format llava|sima|auto] INPUT.json[l] --image-root DIR
 *                    --out prompts.h5 [--report FILE] [--limit N]
 *   sima-prep export FILE.h5 [--out FILE.jsonl] [--images DIR]
 *   sima-prep info FILE.h5
 *
 * Ranks: sima-prep needs no mpirun. Started with several ranks, `import` lets
 * rank 0 parse the input while all ranks share the reading and checking of
 * the images, each holding only its own block of image bytes (the part that
 * can reach gigabytes); the file written is the same for any number of
 * ranks. `export` and `info` run on rank 0 alone.
 */
#define _GNU_SOURCE
#include "err.h"
#include "fs.h"
#include "h5io.h"
#include "h5util.h"
#include "image.h"
#include "js.h"
#include "log.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *USAGE =
    "usage: sima-prep COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  import INPUT --image-root DIR --out prompts.h5\n"
    "         [--format llava|sima|auto] [--report FILE] [--limit N]\n"
    "      build a sima.prompts file from LLaVA instruction data (a JSON array or\n"
    "      JSON Lines of {\"id\", \"image\", \"conversations\": [...]}) or SIMA prompt\n"
    "      JSON Lines ({\"image\", \"text\", \"ground_truth\"}, optional \"id\"). Image\n"
    "      paths are relative to DIR; each image is stored once, as its original\n"
    "      bytes (JPEG or PNG). Prompts whose image is missing or not a readable\n"
    "      JPEG or PNG are skipped and listed in the report (default:\n"
    "      OUT.report.txt); the exit status is 1 only when no prompt is left.\n"
    "      --limit N reads only the first N records. --format auto (default)\n"
    "      looks at the first record.\n"
    "  export FILE.h5 [--out FILE.jsonl] [--images DIR]\n"
    "      one JSON object per row of the file's main group (stdout by default);\n"
    "      --images DIR also writes a prompts file's stored images to DIR/NAME.\n"
    "      An exported prompts file can be imported again (--format sima).\n"
    "  info FILE.h5\n"
    "      schema, groups with their row counts, and the provenance attributes\n"
    "\n"
    "common options: --verbose, --quiet, --help, --version\n"
    "sima-prep needs no mpirun; under mpirun, import shares the image reading\n"
    "between the ranks, and export and info run on rank 0.\n";

/* ============================================================ helpers === */

/* A growable byte buffer. */
typedef struct {
    char *p;
    size_t n, cap;
} bytes;

static void bytes_add(bytes *b, const void *data, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0'; /* always a C string too */
}

static void bytes_addc(bytes *b, char c) { bytes_add(b, &c, 1); }
static void bytes_adds(bytes *b, const char *s) { bytes_add(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void bytes_addf(bytes *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        bytes_add(b, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bytes_add(b, big, (size_t)n);
    free(big);
}

static void bytes_free(bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* A growable array of int64. */
typedef struct {
    int64_t *v;
    size_t n, cap;
} i64s;

static void i64s_push(i64s *a, int64_t x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = x;
}

static void i64s_free(i64s *a)
{
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* Collective over MPI_COMM_WORLD: true when rc == 0 on every rank. */
static bool all_ok(int rc)
{
    int bad = rc != 0, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return !any;
}

static int parse_count(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 1) return -1;
    *out = v;
    return 0;
}

/* The folder part of a path ("." for a bare name). malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return xstrdup(".");
    if (slash == path) return xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *d = xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

/* Fields of the report are tab-separated: keep them on one line. */
static void bytes_add_field(bytes *b, const char *s)
{
    for (; *s; s++) bytes_addc(b, (*s == '\t' || *s == '\n' || *s == '\r') ? ' ' : *s);
}

/* ================================================ import: input records === */

typedef enum { FMT_AUTO, FMT_LLAVA, FMT_SIMA } input_format;

static const char *format_name(input_format f)
{
    return f == FMT_LLAVA ? "llava" : f == FMT_SIMA ? "sima" : "auto";
}

/* Where a record is, for messages and for the report. */
typedef struct {
    const char *file;
    bool jsonl;
    long record; /* 1-based position among the records */
    long line;   /* 1-based line where the record starts */
} record_pos;

/* "train.jsonl: line 7" or "train.json: record 7 (line 120)". */
static const char *pos_str(const record_pos *p, char *buf, size_t n)
{
    if (p->jsonl)
        snprintf(buf, n, "%s: line %ld", p->file, p->line);
    else
        snprintf(buf, n, "%s: record %ld (line %ld)", p->file, p->record, p->line);
    return buf;
}

/* Called once per record; returns 0 to go on, 1 to stop early, -1 on error. */
typedef int (*record_fn)(const json_t *rec, const record_pos *pos, void *ctx);

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
    record_pos pos = {file, true, 0, 0};
    size_t start = 0;
    while (start < len) {
        const char *nl = memchr(buf + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - buf) : len;
        pos.line++;
        if (!is_blank(buf + start, end - start)) {
            pos.record++;
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
    record_pos pos = {file, false, 0, 1};
    size_t at = 0, line_start = 0;
    skip_ws(buf, len, &at, &pos.line, &line_start);
    at++; /* the '[' the caller saw */
    skip_ws(buf, len, &at, &pos.line, &line_start);
    bool closed = at < len && buf[at] == ']';
    while (!closed) {
        pos.record++;
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
static int read_records(const char *file, const char *buf, size_t len, record_fn fn, void *ctx)
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

typedef struct {
    char *id, *question, *truth;
    int64_t image; /* index among the distinct images, -1 for none */
    long record, line;
} prompt;

typedef struct {
    prompt *v;
    size_t n, cap;
} prompt_list;

static void prompts_push(prompt_list *l, prompt p)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = p;
}

static void prompts_free(prompt_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].question);
        free(l->v[i].truth);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Distinct image paths in order of first use, with a hash index. */
typedef struct {
    char **names;
    size_t n, cap;
    int64_t *slots; /* open addressing: index + 1, 0 empty */
    size_t n_slots; /* a power of two, at least twice n */
} image_set;

static uint64_t name_hash(const char *s) { return h5io_fnv1a(s, strlen(s), H5IO_FNV_INIT); }

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

/* The index of name, added if new. */
static int64_t image_set_add(image_set *s, const char *name)
{
    if (2 * (s->n + 1) > s->n_slots) image_set_rehash(s, s->n_slots ? 2 * s->n_slots : 1024);
    size_t k = name_hash(name) & (s->n_slots - 1);
    for (; s->slots[k]; k = (k + 1) & (s->n_slots - 1))
        if (!strcmp(s->names[s->slots[k] - 1], name)) return s->slots[k] - 1;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->names = xrealloc(s->names, s->cap * sizeof *s->names);
    }
    s->names[s->n] = xstrdup(name);
    s->slots[k] = (int64_t)s->n + 1;
    return (int64_t)s->n++;
}

static void image_set_free(image_set *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->names[i]);
    free(s->names);
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
    bytes out = {0};
    bool removed = false;
    while (*s) {
        if (strncmp(s, marker, mlen) != 0) {
            bytes_addc(&out, *s++);
            continue;
        }
        s += mlen;
        removed = true;
        if (*s == '\n')
            s++;
        else if (out.n > 0 && out.p[out.n - 1] == '\n')
            out.p[--out.n] = '\0';
    }
    bytes_addc(&out, '\0');
    out.n--;
    char *q = out.p;
    if (removed) {
        size_t a = 0, b = out.n;
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

typedef struct {
    input_format format; /* FMT_AUTO until the first record decides */
    long long limit;     /* 0: no limit */
    long records;        /* records read */
    prompt_list prompts;
    image_set images;
} import_state;

static int add_record(const json_t *rec, const record_pos *pos, void *ctx)
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
    prompt p = {id, clean_question(question), xstrdup(truth), -1, pos->record, pos->line};
    if (image) p.image = image_set_add(&st->images, image);
    prompts_push(&st->prompts, p);
    st->records++;
    return (st->limit && st->records >= st->limit) ? 1 : 0;
}

/* ====================================================== import: images === */

typedef enum { IMAGE_GOOD = 0, IMAGE_MISSING = 1, IMAGE_UNREADABLE = 2 } image_status;

/* The file of an image: NAME under ROOT, or NAME itself when absolute. */
static char *image_path(const char *root, const char *name)
{
    return name[0] == '/' ? xstrdup(name) : fs_join(root, name);
}

/* Read one image and check that it decodes. On success *data holds the
 * original bytes; otherwise why says what is wrong. */
static image_status load_image(const char *root, const char *name, char **data, size_t *len,
                               char *why, size_t why_n)
{
    char *path = image_path(root, name);
    image_status s = IMAGE_GOOD;
    struct stat st;
    *data = NULL;
    *len = 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            snprintf(why, why_n, "missing: %s", path);
            s = IMAGE_MISSING;
        } else {
            snprintf(why, why_n, "unreadable: %s: %s", path, strerror(errno));
            s = IMAGE_UNREADABLE;
        }
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_n, "unreadable: %s: not a regular file", path);
        s = IMAGE_UNREADABLE;
    } else if (fs_read_all(path, data, len) != 0) {
        snprintf(why, why_n, "unreadable: %s", err_msg());
        s = IMAGE_UNREADABLE;
    } else {
        img_rgb8 im = {0};
        if (img_decode((const uint8_t *)*data, *len, path, &im) != 0) {
            snprintf(why, why_n, "unreadable: %s", err_msg());
            s = IMAGE_UNREADABLE;
            free(*data);
            *data = NULL;
            *len = 0;
        }
        img_free(&im);
    }
    err_clear();
    free(path);
    return s;
}

/* The images one rank reads: the r-th of `size` consecutive blocks of the
 * distinct images, so that the ranks' rows, in rank order, are in order of
 * first use. */
typedef struct {
    int64_t n;            /* distinct images, all ranks */
    int64_t lo, hi;       /* this rank's block [lo, hi) */
    int8_t *status;       /* [n] image_status, all ranks after the exchange */
    uint64_t *hash;       /* [n] FNV-1a of the bytes of good images */
    bytes jpeg;           /* this rank's good images, concatenated */
    i64s jpeg_len;
    bytes names;          /* and their names */
    i64s name_len;
    bytes reasons;        /* "index\treason\n" per bad image of this rank */
    char **why;           /* [n] on rank 0 after the exchange: reason or NULL */
} image_block;

static void block_range(int64_t n, int rank, int size, int64_t *lo, int64_t *hi)
{
    *lo = n * rank / size;
    *hi = n * (rank + 1) / size;
}

static void load_block(image_block *b, const char *root, char **names)
{
    for (int64_t i = b->lo; i < b->hi; i++) {
        char *data, why[1500];
        size_t len;
        image_status s = load_image(root, names[i - b->lo], &data, &len, why, sizeof why);
        b->status[i] = (int8_t)s;
        if (s != IMAGE_GOOD) {
            bytes_addf(&b->reasons, "%" PRId64 "\t", i);
            bytes_add_field(&b->reasons, why);
            bytes_addc(&b->reasons, '\n');
            continue;
        }
        b->hash[i] = h5io_fnv1a(data, len, H5IO_FNV_INIT);
        bytes_add(&b->jpeg, data, len);
        i64s_push(&b->jpeg_len, (int64_t)len);
        bytes_adds(&b->names, names[i - b->lo]);
        i64s_push(&b->name_len, (int64_t)strlen(names[i - b->lo]));
        free(data);
    }
}

/* Every rank learns the status and hash of every image; rank 0 also gets
 * the reasons of the bad ones, for the report. */
static void exchange_status(image_block *b, int rank, int size)
{
    int *counts = xmalloc((size_t)size * sizeof *counts);
    int *displs = xmalloc((size_t)size * sizeof *displs);
    for (int r = 0; r < size; r++) {
        int64_t lo, hi;
        block_range(b->n, r, size, &lo, &hi);
        counts[r] = (int)(hi - lo);
        displs[r] = (int)lo;
    }
    int mine = (int)(b->hi - b->lo);
    MPI_Allgatherv(MPI_IN_PLACE, mine, MPI_INT8_T, b->status, counts, displs, MPI_INT8_T,
                   MPI_COMM_WORLD);
    MPI_Allgatherv(MPI_IN_PLACE, mine, MPI_UINT64_T, b->hash, counts, displs, MPI_UINT64_T,
                   MPI_COMM_WORLD);

    int rlen = (int)b->reasons.n, total = 0;
    MPI_Gather(&rlen, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0)
        for (int r = 0; r < size; r++) {
            displs[r] = total;
            total += counts[r];
        }
    char *all = rank == 0 ? xmalloc((size_t)total + 1) : NULL;
    MPI_Gatherv(b->reasons.p ? b->reasons.p : "", rlen, MPI_CHAR, all, counts, displs,
                MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        all[total] = '\0';
        b->why = xcalloc((size_t)b->n + 1, sizeof *b->why);
        for (char *line = all, *next; *line; line = next) {
            char *nl = strchr(line, '\n');
            *nl = '\0';
            next = nl + 1;
            char *tab = strchr(line, '\t');
            int64_t i = strtoll(line, NULL, 10);
            if (tab && i >= 0 && i < b->n) b->why[i] = xstrdup(tab + 1);
        }
        free(all);
    }
    free(counts);
    free(displs);
}

static void image_block_free(image_block *b)
{
    free(b->status);
    free(b->hash);
    bytes_free(&b->jpeg);
    i64s_free(&b->jpeg_len);
    bytes_free(&b->names);
    i64s_free(&b->name_len);
    bytes_free(&b->reasons);
    if (b->why)
        for (int64_t i = 0; i < b->n; i++) free(b->why[i]);
    free(b->why);
}

/* ============================================== import: output and report === */

typedef struct {
    const char *input, *image_root, *out;
    char *report;
    input_format format;
    long long limit;
} import_opts;

/* The prompts that remain, as ragged columns (rank 0 only). */
typedef struct {
    int64_t n;
    bytes id, question, truth;
    i64s id_len, question_len, truth_len;
    i64s image; /* row in /images or -1 */
} prompt_rows;

static void prompt_rows_free(prompt_rows *r)
{
    bytes_free(&r->id);
    bytes_free(&r->question);
    bytes_free(&r->truth);
    i64s_free(&r->id_len);
    i64s_free(&r->question_len);
    i64s_free(&r->truth_len);
    i64s_free(&r->image);
}

/* Keep the prompts whose image is good; an image's row in /images is its
 * rank among the good images (every good image has at least one prompt). */
static int64_t keep_prompts(const prompt_list *all, const image_block *b, prompt_rows *kept)
{
    int64_t *row = xmalloc(((size_t)b->n + 1) * sizeof *row);
    int64_t good = 0;
    for (int64_t i = 0; i < b->n; i++) row[i] = b->status[i] == IMAGE_GOOD ? good++ : -1;
    int64_t skipped = 0;
    for (size_t i = 0; i < all->n; i++) {
        const prompt *p = &all->v[i];
        if (p->image >= 0 && row[p->image] < 0) {
            skipped++;
            continue;
        }
        bytes_adds(&kept->id, p->id);
        i64s_push(&kept->id_len, (int64_t)strlen(p->id));
        bytes_adds(&kept->question, p->question);
        i64s_push(&kept->question_len, (int64_t)strlen(p->question));
        bytes_adds(&kept->truth, p->truth);
        i64s_push(&kept->truth_len, (int64_t)strlen(p->truth));
        i64s_push(&kept->image, p->image >= 0 ? row[p->image] : -1);
        kept->n++;
    }
    free(row);
    return skipped;
}


/* The report: a short header, then one tab-separated line per skipped
 * prompt (record, line, id, image as given, reason). */
static int write_report(const import_opts *o, input_format format, const prompt_list *all,
                        const image_set *images, const image_block *b, int64_t n_kept,
                        int64_t n_skipped)
{
    bytes r = {0};
    bytes_addf(&r, "# sima-prep import report\n# input: %s (format %s), image root: %s\n",
               o->input, format_name(format), o->image_root);
    bytes_addf(&r, "# records read: %zu, prompts kept: %" PRId64 ", skipped: %" PRId64
               " (missing or unreadable image)\n", all->n, n_kept, n_skipped);
    bytes_adds(&r, "record\tline\tid\timage\treason\n");
    for (size_t i = 0; i < all->n; i++) {
        const prompt *p = &all->v[i];
        if (p->image < 0 || b->status[p->image] == IMAGE_GOOD) continue;
        bytes_addf(&r, "%ld\t%ld\t", p->record, p->line);
        bytes_add_field(&r, p->id);
        bytes_addc(&r, '\t');
        bytes_add_field(&r, images->names[p->image]);
        bytes_addc(&r, '\t');
        bytes_add_field(&r, b->why[p->image] ? b->why[p->image] : "unreadable");
        bytes_addc(&r, '\n');
    }
    int rc = fs_write_atomic(o->report, r.p, r.n);
    bytes_free(&r);
    return rc;
}

/* Digest of everything that determines the file: the input's bytes, the
 * options that select records, and each image's name, status and bytes. */
static void import_run_key(uint64_t input_hash, const import_opts *o, input_format format,
                           const image_set *images, const image_block *b, char key[17])
{
    char opts[64];
    snprintf(opts, sizeof opts, "format=%s limit=%lld", format_name(format), o->limit);
    uint64_t h = h5io_fnv1a(&input_hash, sizeof input_hash, H5IO_FNV_INIT);
    h = h5io_fnv1a(opts, strlen(opts), h);
    for (size_t i = 0; i < images->n; i++) {
        h = h5io_fnv1a(images->names[i], strlen(images->names[i]) + 1, h);
        h = h5io_fnv1a(&b->status[i], 1, h);
        h = h5io_fnv1a(&b->hash[i], sizeof b->hash[i], h);
    }
    h5io_hex64(h, key);
}

static const void *nonnull(const void *p) { return p ? p : ""; }

/* Write prompts.h5 (collective): rank 0 the prompt rows, every rank its
 * block of images. Returns this rank's own result; any failure anywhere
 * abandons the file on every rank. */
static int write_prompts_file(const import_opts *o, const tool_ctx *t, const prompt_rows *kept,
                              const image_block *b, int64_t n_skipped, const char *run_key)
{
    const char *inputs[2] = {o->input, o->image_root};
    h5io_provenance prov = {.tool = "sima-prep", .schema = "sima.prompts", .schema_version = 1,
                            .argc = t->argc, .argv = t->argv, .inputs = inputs, .n_inputs = 2,
                            .model_dir = NULL, .model_hash = NULL, .seed = -1,
                            .run_key = run_key};
    int64_t n_img = (int64_t)b->jpeg_len.n;
    h5io_file f;
    int rc = h5io_create(&f, o->out, MPI_COMM_WORLD);
    if (!all_ok(rc)) return rc;
#define STEP(call)                                                                 \
    do {                                                                           \
        if (rc == 0) rc = (call);                                                  \
        if (!all_ok(rc)) goto fail;                                                \
    } while (0)
    STEP(h5io_group(&f, "/prompts"));
    STEP(h5io_group(&f, "/images"));
    STEP(h5io_write_ragged(&f, "/prompts/id", H5IO_TEXT, kept->n, nonnull(kept->id_len.v),
                           nonnull(kept->id.p)));
    STEP(h5io_write_ragged(&f, "/prompts/question", H5IO_TEXT, kept->n,
                           nonnull(kept->question_len.v), nonnull(kept->question.p)));
    STEP(h5io_write_ragged(&f, "/prompts/ground_truth", H5IO_TEXT, kept->n,
                           nonnull(kept->truth_len.v), nonnull(kept->truth.p)));
    STEP(h5io_write_column(&f, "/prompts/image", H5IO_I64, kept->n, 1,
                           nonnull(kept->image.v)));
    STEP(h5io_write_ragged(&f, "/images/name", H5IO_TEXT, n_img, nonnull(b->name_len.v),
                           nonnull(b->names.p)));
    STEP(h5io_write_ragged(&f, "/images/jpeg", H5IO_U8, n_img, nonnull(b->jpeg_len.v),
                           nonnull(b->jpeg.p)));
    STEP(h5io_write_provenance(&f, &prov));
    STEP(h5io_set_attr_i64(&f, "/", "n_skipped", n_skipped));
#undef STEP
    return h5io_commit(&f);
fail:
    h5io_abandon(&f);
    return rc;
}

/* Rank 0: parse the whole input into st. */
static int read_input(const import_opts *o, import_state *st, uint64_t *input_hash)
{
    char *buf;
    size_t len;
    if (fs_read_all(o->input, &buf, &len) != 0) return -1;
    *input_hash = h5io_fnv1a(buf, len, H5IO_FNV_INIT);
    int rc = read_records(o->input, buf, len, add_record, st);
    free(buf);
    if (rc == 0 && st->prompts.n == 0) rc = ERR("%s: no records", o->input);
    if (rc == 0 && st->images.n > INT_MAX) rc = ERR("%s: more than %d images", o->input, INT_MAX);
    return rc;
}

/* Every rank gets the names of all distinct images (NUL-separated, in order
 * of first use) from rank 0; names[i] points into *blob. */
static void share_image_names(const tool_ctx *t, const image_set *images, int64_t *n,
                              bytes *blob, char ***names)
{
    if (t->rank == 0) {
        *n = (int64_t)images->n;
        for (size_t i = 0; i < images->n; i++)
            bytes_add(blob, images->names[i], strlen(images->names[i]) + 1);
    }
    int rc = t->rank == 0 && blob->n > INT_MAX ? ERR("image names: more than 2 GB") : 0;
    tool_agree((tool_ctx *)t, rc);
    int64_t len = (int64_t)blob->n;
    MPI_Bcast(n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(&len, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (t->rank != 0) {
        blob->p = xmalloc((size_t)len + 1);
        blob->n = blob->cap = (size_t)len;
    }
    MPI_Bcast(blob->p ? blob->p : "", (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
    *names = xmalloc(((size_t)*n + 1) * sizeof **names);
    size_t at = 0;
    for (int64_t i = 0; i < *n; i++) {
        (*names)[i] = blob->p + at;
        at += strlen(blob->p + at) + 1;
    }
}

static void import_usage_check(tool_ctx *t, const import_opts *o)
{
    int rc = 0;
    if (t->rank == 0) {
        char *out_dir = dir_of(o->out);
        if (!fs_is_dir(o->image_root))
            rc = ERR("%s: image root is not a folder", o->image_root);
        else if (!fs_is_dir(out_dir))
            rc = ERR("%s: the output's folder %s does not exist", o->out, out_dir);
        free(out_dir);
    }
    tool_agree(t, rc);
}

/* getopt with our messages: a leading ':' in optstring makes a missing
 * value return ':'. */
static _Noreturn void bad_option(tool_ctx *t, int c, const char *cmd, char **argv)
{
    char shown[3] = {'-', (char)optopt, '\0'}; /* a short option: optopt names it */
    const char *opt = optopt ? shown : argv[optind - 1];
    if (c == ':') tool_usage_error(t, "option '%s' needs a value", opt);
    tool_usage_error(t, "unknown option '%s' for '%s'", opt, cmd);
}

static void parse_import_options(tool_ctx *t, int argc, char **argv, import_opts *o)
{
    static struct option opts[] = {TOOL_COMMON_OPTIONS,
                                   {"format", required_argument, 0, 'f'},
                                   {"image-root", required_argument, 0, 'i'},
                                   {"out", required_argument, 0, 'o'},
                                   {"report", required_argument, 0, 'r'},
                                   {"limit", required_argument, 0, 'n'},
                                   {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    const char *report = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vqhVo:", opts, NULL)) != -1) {
        if (tool_common_option(t, c, USAGE)) continue;
        switch (c) {
        case 'f':
            if (!strcmp(optarg, "llava")) o->format = FMT_LLAVA;
            else if (!strcmp(optarg, "sima")) o->format = FMT_SIMA;
            else if (!strcmp(optarg, "auto")) o->format = FMT_AUTO;
            else tool_usage_error(t, "--format: expected llava, sima or auto, got '%s'", optarg);
            break;
        case 'i': o->image_root = optarg; break;
        case 'o': o->out = optarg; break;
        case 'r': report = optarg; break;
        case 'n':
            if (parse_count(optarg, &o->limit) != 0)
                tool_usage_error(t, "--limit: expected a positive count, got '%s'", optarg);
            break;
        default: bad_option(t, c, "import", argv);
        }
    }
    if (optind != argc - 1)
        tool_usage_error(t, "'import' takes one input file (LLaVA .json/.jsonl or SIMA .jsonl)");
    o->input = argv[optind];
    if (!o->out) tool_usage_error(t, "'import' needs --out prompts.h5");
    if (!o->image_root) tool_usage_error(t, "'import' needs --image-root DIR");
    if (report) {
        o->report = xstrdup(report);
    } else {
        size_t n = strlen(o->out) + sizeof ".report.txt";
        o->report = xmalloc(n);
        snprintf(o->report, n, "%s.report.txt", o->out);
    }
}

static int cmd_import(tool_ctx *t, int argc, char **argv)
{
    import_opts o;
    parse_import_options(t, argc, argv, &o);
    import_usage_check(t, &o);

    /* rank 0 parses the input */
    import_state st = {.format = o.format, .limit = o.limit};
    uint64_t input_hash = 0;
    tool_agree(t, t->rank == 0 ? read_input(&o, &st, &input_hash) : 0);

    /* all ranks read and check their block of images */
    image_block b = {0};
    bytes blob = {0};
    char **names = NULL;
    share_image_names(t, &st.images, &b.n, &blob, &names);
    block_range(b.n, t->rank, t->size, &b.lo, &b.hi);
    b.status = xcalloc((size_t)b.n + 1, sizeof *b.status);
    b.hash = xcalloc((size_t)b.n + 1, sizeof *b.hash);
    load_block(&b, o.image_root, names + b.lo);
    exchange_status(&b, t->rank, t->size);

    /* rank 0 drops the prompts with bad images and writes the report */
    prompt_rows kept = {0};
    int64_t n_skipped = 0;
    char run_key[17] = "";
    int rc = 0;
    if (t->rank == 0) {
        n_skipped = keep_prompts(&st.prompts, &b, &kept);
        import_run_key(input_hash, &o, st.format, &st.images, &b, run_key);
        rc = write_report(&o, st.format, &st.prompts, &st.images, &b, kept.n, n_skipped);
        if (rc == 0 && kept.n == 0)
            rc = ERR("%s: nothing usable: all %" PRId64 " prompts have a missing or unreadable "
                     "image (listed in %s)", o.input, n_skipped, o.report);
    }
    tool_agree(t, rc);
    MPI_Bcast(&n_skipped, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(run_key, sizeof run_key, MPI_CHAR, 0, MPI_COMM_WORLD);

    tool_agree(t, write_prompts_file(&o, t, &kept, &b, n_skipped, run_key));
    if (t->rank == 0) {
        int64_t text_only = 0, n_images = 0;
        for (size_t i = 0; i < kept.image.n; i++) text_only += kept.image.v[i] < 0;
        for (int64_t i = 0; i < b.n; i++) n_images += b.status[i] == IMAGE_GOOD;
        if (n_skipped)
            log_warn("skipped %" PRId64 " of %zu prompts for a missing or unreadable image "
                     "(listed in %s)", n_skipped, st.prompts.n, o.report);
        log_info("wrote %s: %" PRId64 " prompts (%" PRId64 " text-only), %" PRId64
                 " images, format %s", o.out, kept.n, text_only, n_images,
                 format_name(st.format));
    }
    prompt_rows_free(&kept);
    image_block_free(&b);
    free(names);
    bytes_free(&blob);
    prompts_free(&st.prompts);
    image_set_free(&st.images);
    free(o.report);
    return TOOL_OK;
}

/* ================================================ reading any sima file === */

/* Open FILE on rank 0 alone and check that it is a sima file; *schema is
 * its schema name (malloc'd). Files of a known schema must be of a version
 * we read. */
static int open_sima_file(const char *path, h5io_file *f, char **schema)
{
    if (h5io_open(f, path, MPI_COMM_SELF) != 0) return -1;
    *schema = h5io_get_attr_str(f, "/", "schema");
    if (!*schema) {
        h5io_close(f);
        return ERR("%s: not a sima file (no \"schema\" attribute at its root)", path);
    }
    err_clear();
    static const char *known[] = {"sima.prompts", "sima.responses"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(*schema, known[i]) && h5io_require_schema(f, known[i], 1) != 0) {
            free(*schema);
            *schema = NULL;
            h5io_close(f);
            return -1;
        }
    return 0;
}

typedef struct {
    char **v;
    size_t n, cap;
} name_list;

static void names_push(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = xstrdup(s);
}

static void names_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static herr_t collect_link(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    names_push(data, name);
    return 0;
}

/* Members of a group, in creation order where the file tracks it, else by
 * name. */
static int list_members(h5io_file *f, const char *group, name_list *out)
{
    hid_t g = H5Gopen2(f->file, group, H5P_DEFAULT);
    if (g < 0) return ERR("%s: %s: not a group", f->path, group);
    hsize_t idx = 0;
    herr_t rc = H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_link, out);
    if (rc < 0) {
        names_free(out);
        idx = 0;
        rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, out);
    }
    H5Gclose(g);
    if (rc < 0) return ERR("%s: %s: cannot list its members", f->path, group);
    return 0;
}

static bool is_group(h5io_file *f, const char *path)
{
    if (!h5io_exists(f, path)) return false;
    hid_t g = H5Gopen2(f->file, path, H5P_DEFAULT);
    if (g < 0) return false;
    H5Gclose(g);
    return true;
}

static char *join_path(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = xmalloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

/* ============================================================= export === */

/* One column of the group being exported, and the rows of the current chunk. */
typedef struct {
    char *key, *path;
    bool ragged, text;
    h5io_type type;
    int width;           /* elements per row of a plain column */
    char *labels[256];   /* code -> name (responses kind, finish), NULL: none */
    bool image_ref;      /* prompts/image: a row of /images, shown by its name */
    void *data;          /* the chunk's elements */
    int64_t *offsets;    /* ragged: [chunk + 1] */
} column;

static size_t type_size(h5io_type t)
{
    switch (t) {
    case H5IO_I8: case H5IO_U8: case H5IO_TEXT: return 1;
    case H5IO_I32: case H5IO_F32: return 4;
    default: return 8;
    }
}

/* The h5io type and row width of a dataset, from its HDF5 type and shape. */
static int dataset_type(h5io_file *f, const char *path, h5io_type *type, int *width)
{
    hid_t d = H5Dopen2(f->file, path, H5P_DEFAULT);
    if (d < 0) return ERR("%s: %s: cannot open the dataset", f->path, path);
    hid_t ty = H5Dget_type(d), sp = H5Dget_space(d);
    H5T_class_t cls = H5Tget_class(ty);
    size_t size = H5Tget_size(ty);
    bool sign = H5Tget_sign(ty) == H5T_SGN_2;
    hsize_t dims[H5S_MAX_RANK];
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Tclose(ty);
    H5Sclose(sp);
    H5Dclose(d);
    hsize_t w = 1;
    for (int i = 1; i < nd; i++) w *= dims[i];
    *width = (int)w;
    if (cls == H5T_INTEGER && size == 1) *type = sign ? H5IO_I8 : H5IO_U8;
    else if (cls == H5T_INTEGER && size == 4 && sign) *type = H5IO_I32;
    else if (cls == H5T_INTEGER && size == 8) *type = sign ? H5IO_I64 : H5IO_U64;
    else if (cls == H5T_FLOAT && size == 4) *type = H5IO_F32;
    else if (cls == H5T_FLOAT && size == 8) *type = H5IO_F64;
    else return ERR("%s: %s: element type not supported by export", f->path, path);
    if (nd < 1 || w > INT_MAX) return ERR("%s: %s: unexpected shape", f->path, path);
    return 0;
}

/* "0=greedy,1=sampled" (the "names" attribute of a code column). */
static void parse_labels(const char *spec, char **labels)
{
    char *copy = xstrdup(spec), *save = NULL;
    for (char *item = strtok_r(copy, ",;\n", &save); item; item = strtok_r(NULL, ",;\n", &save)) {
        char *end;
        long code = strtol(item, &end, 10);
        while (*end == ' ') end++;
        if (end == item || (*end != '=' && *end != ':') || code < 0 || code > 255) continue;
        end++;
        while (*end == ' ') end++;
        free(labels[code]);
        labels[code] = xstrdup(end);
    }
    free(copy);
}

/* What the schema documents, for files that lack the attribute. */
static const char *default_labels(const char *schema, const char *name)
{
    if (!strcmp(schema, "sima.responses") && !strcmp(name, "kind")) return "0=greedy,1=sampled";
    if (!strcmp(schema, "sima.responses") && !strcmp(name, "finish"))
        return "1=eos,2=length,3=context";
    return NULL;
}

static int describe_column(h5io_file *f, const char *schema, const char *group,
                           const char *name, column *c)
{
    memset(c, 0, sizeof *c);
    c->key = xstrdup(name);
    c->path = join_path(group, name);
    char *offsets = join_path(c->path, "offsets"), *data = join_path(c->path, "data");
    c->ragged = h5io_exists(f, offsets) && h5io_exists(f, data);
    int rc = 0;
    if (!c->ragged && !h5io_exists(f, c->path))
        rc = ERR("%s: %s: missing (a %s file should have it)", f->path, c->path, schema);
    if (rc == 0) rc = dataset_type(f, c->ragged ? data : c->path, &c->type, &c->width);
    if (rc == 0 && c->ragged && c->type == H5IO_U8) {
        char *enc = h5io_get_attr_str(f, c->path, "encoding");
        if (!enc) enc = h5io_get_attr_str(f, data, "encoding");
        c->text = enc != NULL;
        free(enc);
    }
    if (rc == 0 && !c->ragged) {
        char *spec = h5io_get_attr_str(f, c->path, "names");
        const char *dflt = default_labels(schema, name);
        if (spec || dflt) parse_labels(spec ? spec : dflt, c->labels);
        free(spec);
        c->image_ref = !strcmp(schema, "sima.prompts") && !strcmp(c->path, "/prompts/image");
    }
    if (rc == 0) err_clear(); /* lookups of absent attributes may leave a message */
    free(offsets);
    free(data);
    return rc;
}

static void column_free(column *c)
{
    free(c->key);
    free(c->path);
    for (int i = 0; i < 256; i++) free(c->labels[i]);
    free(c->data);
    free(c->offsets);
}

/* Read rows [row0, row0 + n) of a column into c->data (and c->offsets). */
static int read_chunk(h5io_file *f, column *c, int64_t row0, int64_t n)
{
    free(c->data);
    c->data = NULL;
    if (c->ragged) {
        c->offsets = xrealloc(c->offsets, ((size_t)n + 1) * sizeof *c->offsets);
        return h5io_read_ragged(f, c->path, c->text ? H5IO_TEXT : c->type, row0, n, c->offsets,
                                &c->data);
    }
    c->data = xmalloc((size_t)n * (size_t)c->width * type_size(c->type) + 1);
    return h5io_read_column(f, c->path, c->type, row0, n, c->data);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3;
    else if (c >= 0xF0 && c <= 0xF4) len = 4;
    else return 0;
    if (n < len) return 0;
    uint32_t cp = c & (0x3Fu >> (len - 1));
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return len;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD, so the line stays
 * valid JSON whatever the file holds. */
static void emit_string(bytes *o, const char *s, size_t n)
{
    bytes_addc(o, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (esc) {
            bytes_adds(o, esc);
            i++;
        } else if (c < 0x20) {
            bytes_addf(o, "\\u%04x", c);
            i++;
        } else {
            size_t len = utf8_len((const unsigned char *)s + i, n - i);
            if (len) bytes_add(o, s + i, len);
            else bytes_adds(o, "\xEF\xBF\xBD");
            i += len ? len : 1;
        }
    }
    bytes_addc(o, '"');
}

/* The shortest decimal that reads back as the same value; JSON has no
 * infinities or NaN, so those become null. */
static void emit_real(bytes *o, double v, bool single)
{
    if (!isfinite(v)) {
        bytes_adds(o, "null");
        return;
    }
    char s[40];
    for (int digits = single ? 6 : 15; digits <= 17; digits++) {
        snprintf(s, sizeof s, "%.*g", digits, v);
        double back = strtod(s, NULL);
        if (single ? (float)back == (float)v : back == v) break;
    }
    bytes_adds(o, s);
}

static void emit_element(bytes *o, h5io_type t, const void *base, int64_t i)
{
    switch (t) {
    case H5IO_I8: bytes_addf(o, "%d", ((const int8_t *)base)[i]); break;
    case H5IO_U8: case H5IO_TEXT: bytes_addf(o, "%u", ((const uint8_t *)base)[i]); break;
    case H5IO_I32: bytes_addf(o, "%" PRId32, ((const int32_t *)base)[i]); break;
    case H5IO_I64: bytes_addf(o, "%" PRId64, ((const int64_t *)base)[i]); break;
    case H5IO_U64: bytes_addf(o, "%" PRIu64, ((const uint64_t *)base)[i]); break;
    case H5IO_F32: emit_real(o, ((const float *)base)[i], true); break;
    case H5IO_F64: emit_real(o, ((const double *)base)[i], false); break;
    }
}

static int64_t element_as_i64(h5io_type t, const void *base, int64_t i)
{
    switch (t) {
    case H5IO_I8: return ((const int8_t *)base)[i];
    case H5IO_U8: case H5IO_TEXT: return ((const uint8_t *)base)[i];
    case H5IO_I32: return ((const int32_t *)base)[i];
    case H5IO_I64: return ((const int64_t *)base)[i];
    default: return -1;
    }
}

static void emit_array(bytes *o, h5io_type t, const void *base, int64_t from, int64_t to)
{
    bytes_addc(o, '[');
    for (int64_t i = from; i < to; i++) {
        if (i > from) bytes_addc(o, ',');
        emit_element(o, t, base, i);
    }
    bytes_addc(o, ']');
}

/* The names of the images of a prompts file: row i is
 * data[offsets[i] : offsets[i + 1]]. */
typedef struct {
    int64_t n;
    int64_t *offsets;
    char *data;
} image_names;

static void emit_value(bytes *o, const column *c, int64_t r, const image_names *images)
{
    if (c->ragged && c->text) {
        emit_string(o, (const char *)c->data + c->offsets[r], (size_t)(c->offsets[r + 1] -
                                                                      c->offsets[r]));
    } else if (c->ragged) {
        emit_array(o, c->type, c->data, c->offsets[r], c->offsets[r + 1]);
    } else if (c->width > 1) {
        emit_array(o, c->type, c->data, r * c->width, (r + 1) * c->width);
    } else if (c->image_ref) {
        int64_t v = element_as_i64(c->type, c->data, r);
        if (v < 0) bytes_adds(o, "null");
        else if (v < images->n)
            emit_string(o, images->data + images->offsets[v],
                        (size_t)(images->offsets[v + 1] - images->offsets[v]));
        else emit_element(o, c->type, c->data, r);
    } else {
        int64_t v = element_as_i64(c->type, c->data, r);
        if (v >= 0 && v < 256 && c->labels[v]) emit_string(o, c->labels[v], strlen(c->labels[v]));
        else emit_element(o, c->type, c->data, r);
    }
}

/* The group a file's rows live in, and the columns to show in order. */
static const char *const PROMPT_COLUMNS[] = {"id", "question", "ground_truth", "image", NULL};
static const char *const RESPONSE_COLUMNS[] = {"prompt", "candidate", "kind", "seed", "text",
                                               "tokens", "sum_logprob", "finish", NULL};

static int export_layout(h5io_file *f, const char *schema, char **group, name_list *cols)
{
    const char *const *known = !strcmp(schema, "sima.prompts")     ? PROMPT_COLUMNS
                               : !strcmp(schema, "sima.responses") ? RESPONSE_COLUMNS
                                                                   : NULL;
    if (known) {
        *group = xstrdup(known == PROMPT_COLUMNS ? "/prompts" : "/responses");
        for (const char *const *k = known; *k; k++) names_push(cols, *k);
        return 0;
    }
    /* an unknown schema: every column of the first group */
    name_list top = {0};
    if (list_members(f, "/", &top) != 0) return -1;
    *group = NULL;
    for (size_t i = 0; i < top.n && !*group; i++) {
        char *path = join_path("", top.v[i]);
        if (is_group(f, path)) *group = path;
        else free(path);
    }
    names_free(&top);
    if (!*group) return ERR("%s: a %s file with no group to export", f->path, schema);
    return list_members(f, *group, cols);
}

static int read_image_names(h5io_file *f, image_names *names)
{
    names->n = h5io_rows(f, "/images/name");
    if (names->n < 0) return -1;
    names->offsets = xmalloc(((size_t)names->n + 1) * sizeof *names->offsets);
    return h5io_read_ragged(f, "/images/name", H5IO_TEXT, 0, names->n, names->offsets,
                            (void **)&names->data);
}

enum { EXPORT_CHUNK = 1024 };

/* One JSON object per row of the group, EXPORT_CHUNK rows at a time. */
static int export_rows(h5io_file *f, const char *schema, FILE *out)
{
    char *group = NULL;
    name_list names = {0};
    column *cols = NULL;
    image_names images = {0};
    int64_t n_rows = -1;
    int rc = export_layout(f, schema, &group, &names);
    if (rc == 0) cols = xcalloc(names.n + 1, sizeof *cols);
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        rc = describe_column(f, schema, group, names.v[i], &cols[i]);
        int64_t n = rc == 0 ? h5io_rows(f, cols[i].path) : -1;
        if (rc == 0 && n < 0) rc = -1;
        if (rc == 0 && n_rows >= 0 && n != n_rows)
            rc = ERR("%s: %s has %" PRId64 " rows, %s %" PRId64, f->path, cols[i].path, n,
                     cols[0].path, n_rows);
        n_rows = n;
    }
    if (rc == 0 && !strcmp(schema, "sima.prompts")) rc = read_image_names(f, &images);
    bytes line = {0};
    for (int64_t row0 = 0; rc == 0 && row0 < n_rows; row0 += EXPORT_CHUNK) {
        int64_t n = n_rows - row0 < EXPORT_CHUNK ? n_rows - row0 : EXPORT_CHUNK;
        for (size_t i = 0; rc == 0 && i < names.n; i++) rc = read_chunk(f, &cols[i], row0, n);
        for (int64_t r = 0; rc == 0 && r < n; r++) {
            line.n = 0;
            bytes_addc(&line, '{');
            for (size_t i = 0; i < names.n; i++) {
                if (i) bytes_addc(&line, ',');
                emit_string(&line, cols[i].key, strlen(cols[i].key));
                bytes_addc(&line, ':');
                emit_value(&line, &cols[i], r, &images);
            }
            bytes_adds(&line, "}\n");
            if (fwrite(line.p, 1, line.n, out) != line.n)
                rc = err_errno_at(__FILE__, __LINE__, "cannot write the JSON output");
        }
    }
    bytes_free(&line);
    for (size_t i = 0; cols && i < names.n; i++) column_free(&cols[i]);
    free(cols);
    names_free(&names);
    free(group);
    free(images.offsets);
    free(images.data);
    return rc;
}

/* Create the folders above a file, like mkdir -p. */
static int make_parents(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = strchr(p + 1, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = err_errno_at(__FILE__, __LINE__, "%s: cannot create the folder", p);
        else if (!fs_is_dir(p))
            rc = ERR("%s: exists and is not a folder", p);
        *s = '/';
    }
    free(p);
    return rc;
}

/* An image name may become a path under DIR only if it stays there. */
static bool name_stays_inside(const char *name)
{
    if (!*name || name[0] == '/') return false;
    for (const char *s = name; *s;) {
        size_t len = strcspn(s, "/");
        if (len == 2 && s[0] == '.' && s[1] == '.') return false;
        s += len;
        while (*s == '/') s++;
    }
    return true;
}

/* Write each stored image back out as DIR/NAME, byte for byte. */
static int export_images(h5io_file *f, const char *dir)
{
    image_names names = {0};
    int rc = read_image_names(f, &names);
    int64_t offsets[2];
    for (int64_t i = 0; rc == 0 && i < names.n; i++) {
        char *name = names.data + names.offsets[i];
        size_t len = (size_t)(names.offsets[i + 1] - names.offsets[i]);
        char saved = name[len];
        name[len] = '\0'; /* names are stored back to back */
        void *jpeg = NULL;
        if (!name_stays_inside(name)) {
            rc = ERR("%s: image %" PRId64 " \"%s\" would be written outside %s", f->path, i,
                     name, dir);
        } else {
            char *path = fs_join(dir, name);
            rc = h5io_read_ragged(f, "/images/jpeg", H5IO_U8, i, 1, offsets, &jpeg);
            if (rc == 0) rc = make_parents(path);
            if (rc == 0) rc = fs_write_atomic(path, jpeg, (size_t)offsets[1]);
            free(path);
        }
        free(jpeg);
        name[len] = saved;
    }
    if (rc == 0) log_info("wrote %" PRId64 " images under %s", names.n, dir);
    free(names.offsets);
    free(names.data);
    return rc;
}

/* Open OUT under a temporary name (*tmp), renamed into place by
 * finish_output when complete; NULL OUT: stdout. */
static int start_output(const char *out_path, char **tmp, FILE **out)
{
    *tmp = NULL;
    *out = stdout;
    if (!out_path) return 0;
    size_t n = strlen(out_path) + 32;
    *tmp = xmalloc(n);
    snprintf(*tmp, n, "%s.tmp.%ld", out_path, (long)getpid());
    *out = fopen(*tmp, "w");
    if (!*out) return err_errno_at(__FILE__, __LINE__, "%s: cannot create", *tmp);
    return 0;
}

/* Flush stdout, or close and rename the temporary file (removed on failure). */
static int finish_output(const char *out_path, const char *tmp, FILE *out, int rc)
{
    if (!out_path) {
        if (fflush(stdout) != 0 && rc == 0)
            rc = err_errno_at(__FILE__, __LINE__, "stdout: cannot write");
        return rc;
    }
    if (!out) return rc;
    if (fclose(out) != 0 && rc == 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", tmp);
    if (rc == 0 && rename(tmp, out_path) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename to %s", tmp, out_path);
    if (rc != 0) unlink(tmp);
    return rc;
}

static int export_file(const char *path, const char *out_path, const char *images_dir)
{
    h5io_file f;
    char *schema = NULL, *tmp = NULL;
    if (open_sima_file(path, &f, &schema) != 0) return -1;
    int rc = 0;
    if (images_dir && !h5io_exists(&f, "/images/jpeg"))
        rc = ERR("%s: holds no images (only sima.prompts files do)", path);
    if (rc == 0) {
        FILE *out;
        rc = start_output(out_path, &tmp, &out);
        if (rc == 0) rc = export_rows(&f, schema, out);
        rc = finish_output(out_path, tmp, out, rc);
    }
    if (rc == 0 && images_dir) rc = export_images(&f, images_dir);
    free(tmp);
    free(schema);
    h5io_close(&f);
    return rc;
}

static int cmd_export(tool_ctx *t, int argc, char **argv)
{
    static struct option opts[] = {TOOL_COMMON_OPTIONS, {"out", required_argument, 0, 'o'},
                                   {"images", required_argument, 0, 'I'}, {0, 0, 0, 0}};
    const char *out = NULL, *images = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vqhVo:", opts, NULL)) != -1) {
        if (tool_common_option(t, c, USAGE)) continue;
        if (c == 'o') out = optarg;
        else if (c == 'I') images = optarg;
        else bad_option(t, c, "export", argv);
    }
    if (optind != argc - 1) tool_usage_error(t, "'export' takes one FILE.h5");
    tool_agree(t, t->rank == 0 ? export_file(argv[optind], out, images) : 0);
    return TOOL_OK;
}

/* =============================================================== info === */

static herr_t collect_attr(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    names_push(data, name);
    return 0;
}

/* One root attribute as "  name   value", continuation lines indented. */
static void print_attr(h5io_file *f, const char *name)
{
    hid_t a = H5Aopen(f->file, name, H5P_DEFAULT);
    hid_t ty = a >= 0 ? H5Aget_type(a) : -1;
    H5T_class_t cls = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    if (ty >= 0) H5Tclose(ty);
    if (a >= 0) H5Aclose(a);
    printf("  %-16s", name);
    int64_t i;
    double d;
    if (cls == H5T_STRING) {
        char *s = h5io_get_attr_str(f, "/", name);
        if (!s || !*s) printf("(none)");
        for (const char *p = s ? s : ""; *p; p++) {
            putchar(*p);
            if (*p == '\n' && p[1]) printf("  %-16s", "");
        }
        free(s);
    } else if (cls == H5T_INTEGER && h5io_get_attr_i64(f, "/", name, &i) == 0) {
        printf("%" PRId64, i);
    } else if (cls == H5T_FLOAT && h5io_get_attr_f64(f, "/", name, &d) == 0) {
        printf("%g", d);
    } else {
        printf("(not shown)");
    }
    putchar('\n');
}

/* Root attributes: provenance first in the schema's order, then the rest. */
static int print_attrs(h5io_file *f)
{
    static const char *order[] = {"schema", "schema_version", "tool", "version", "created",
                                  "command_line", "inputs", "model", "model_hash", "seed",
                                  "run_key", NULL};
    name_list all = {0};
    if (H5Aiterate2(f->file, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_attr, &all) < 0)
        return ERR("%s: cannot list the root attributes", f->path);
    puts("attributes:");
    for (const char **k = order; *k; k++)
        for (size_t i = 0; i < all.n; i++)
            if (!strcmp(all.v[i], *k)) print_attr(f, *k);
    for (size_t i = 0; i < all.n; i++) {
        bool shown = false;
        for (const char **k = order; *k && !shown; k++) shown = !strcmp(all.v[i], *k);
        if (!shown) print_attr(f, all.v[i]);
    }
    names_free(&all);
    err_clear();
    return 0;
}

/* "  /prompts  5 rows: id, question, ground_truth, image" */
static int print_group(h5io_file *f, const char *group)
{
    name_list cols = {0};
    if (list_members(f, group, &cols) != 0) return -1;
    int64_t rows = -1;
    bool same = true;
    for (size_t i = 0; i < cols.n; i++) {
        char *path = join_path(group, cols.v[i]);
        int64_t n = h5io_rows(f, path);
        if (rows >= 0 && n != rows) same = false;
        rows = n;
        free(path);
    }
    err_clear();
    printf("  %-12s ", group);
    if (cols.n && same) printf("%" PRId64 " rows: ", rows);
    else if (cols.n) printf("columns of different lengths: ");
    for (size_t i = 0; i < cols.n; i++) printf("%s%s", i ? ", " : "", cols.v[i]);
    putchar('\n');
    names_free(&cols);
    return 0;
}

static int info_file(const char *path)
{
    h5io_file f;
    char *schema = NULL;
    if (open_sima_file(path, &f, &schema) != 0) return -1;
    int64_t version = 0;
    h5io_get_attr_i64(&f, "/", "schema_version", &version);
    printf("%s: %s version %" PRId64 "\n", path, schema, version);
    name_list top = {0};
    int rc = list_members(&f, "/", &top);
    for (size_t i = 0; rc == 0 && i < top.n; i++) {
        char *g = join_path("", top.v[i]);
        if (is_group(&f, g)) rc = print_group(&f, g);
        free(g);
    }
    if (rc == 0) rc = print_attrs(&f);
    if (rc == 0 && fflush(stdout) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "stdout: cannot write");
    names_free(&top);
    free(schema);
    h5io_close(&f);
    return rc;
}

static int cmd_info(tool_ctx *t, int argc, char **argv)
{
    static struct option opts[] = {TOOL_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vqhV", opts, NULL)) != -1)
        if (!tool_common_option(t, c, USAGE)) bad_option(t, c, "info", argv);
    if (optind != argc - 1) tool_usage_error(t, "'info' takes one FILE.h5");
    tool_agree(t, t->rank == 0 ? info_file(argv[optind]) : 0);
    return TOOL_OK;
}

/* =============================================================== main === */

int main(int argc, char **argv)
{
    tool_ctx t;
    tool_init(&t, &argc, &argv, "sima-prep");
    h5u_init();
    if (argc < 2) {
        if (t.rank == 0) fputs(USAGE, stderr);
        return tool_finish(&t, TOOL_USAGE);
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (t.rank == 0) fputs(USAGE, stdout);
        return tool_finish(&t, TOOL_OK);
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        if (t.rank == 0) printf("sima-prep %s\n", SIMA_VERSION);
        return tool_finish(&t, TOOL_OK);
    }
    /* Subcommand options start after the command name. getopt reorders
     * the array it parses, so it gets a copy: t.argv keeps the command line
     * as typed, for provenance. */
    char **args = xmalloc((size_t)argc * sizeof *args);
    memcpy(args, argv + 1, (size_t)(argc - 1) * sizeof *args);
    args[argc - 1] = NULL;
    int code;
    if (!strcmp(cmd, "import")) code = cmd_import(&t, argc - 1, args);
    else if (!strcmp(cmd, "export")) code = cmd_export(&t, argc - 1, args);
    else if (!strcmp(cmd, "info")) code = cmd_info(&t, argc - 1, args);
    else tool_usage_error(&t, "unknown command '%s' (import, export, info)", cmd);
    free(args);
    return tool_finish(&t, code);
}
