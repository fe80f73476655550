/* bench_source.c — readers of the official benchmark release files
 * (bench_source.h): the registry, the report, and the helpers the readers
 * in bench_src_*.c share (bench_src_internal.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "bench_source.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_src_internal.h"
#include "err.h"
#include "fs.h"
#include "js.h"

typedef struct {
    const char *name;
    int (*read)(bsrc_ctx *c);
} bsrc_reader;

static const bsrc_reader READERS[] = {
    {"pope", bsrc_read_pope},         {"mme", bsrc_read_mme},
    {"textvqa", bsrc_read_textvqa},   {"vizwiz", bsrc_read_vizwiz},
    {"vqav2", bsrc_read_vqav2},       {"gqa", bsrc_read_gqa},
    {"scienceqa", bsrc_read_scienceqa}, {"mmbench", bsrc_read_mmbench},
    {"seed", bsrc_read_seed},         {"chair", bsrc_read_chair},
    {"llava_bench", bsrc_read_llava_bench}, {"mmvet", bsrc_read_mmvet},
    {"mmhal", bsrc_read_mmhal},       {"mementos", bsrc_read_mementos},
};
#define NREADERS (sizeof READERS / sizeof READERS[0])

static const char *const NAMES[] = {"pope",  "mme",     "textvqa",     "vizwiz", "vqav2",
                                    "gqa",   "scienceqa", "mmbench",   "seed",   "chair",
                                    "llava_bench", "mmvet", "mmhal",   "mementos", NULL};

const char *const *bench_source_names(void)
{
    return NAMES;
}

/* The question ids appended from position first on are unique (answers
 * are joined to questions by id). */
static int bsrc_unique_ids(const json_t *out, size_t first, const char *root)
{
    json_t *seen = json_object();
    int rc = 0;
    for (size_t i = first; rc == 0 && i < json_array_size(out); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(out, i), "question_id"));
        if (json_object_get(seen, id))
            rc = ERR("%s: question_id \"%s\" appears twice in the release files", root, id);
        else
            json_object_set_new(seen, id, json_true());
    }
    json_decref(seen);
    return rc;
}

int bench_source_load(const char *suite, const char *data_root, int64_t limit, json_t *out,
                      bench_source_report *rep)
{
    memset(rep, 0, sizeof *rep);
    const bsrc_reader *r = NULL;
    for (size_t i = 0; i < NREADERS; i++)
        if (strcmp(READERS[i].name, suite) == 0) r = &READERS[i];
    if (!r) return ERR("unknown benchmark suite '%s' (known: pope, mme, textvqa, ...)", suite);
    if (!json_is_array(out)) return ERR("bench_source_load: out must be a JSON array");
    char root[PATH_MAX];
    if (!realpath(data_root, root))
        return ERR("%s: data root: %s", data_root, strerror(errno));
    if (!fs_is_dir(root)) return ERR("%s: data root is not a folder", data_root);
    bsrc_ctx c = {suite, root, limit, out, rep};
    size_t first = json_array_size(out);
    if (r->read(&c) != 0 || bsrc_unique_ids(out, first, root) != 0)
        return err_context("%s", suite);
    return 0;
}

void bench_source_report_free(bench_source_report *rep)
{
    free(rep->first_missing);
    rep->first_missing = NULL;
}

/* ------------------------------------------------------------ strings -- */

static char *vfmt(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0) DIE("bad format '%s'", fmt);
    char *s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

char *bsrc_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    return s;
}

static char *vpath(const bsrc_ctx *c, const char *fmt, va_list ap)
{
    char *rel = vfmt(fmt, ap);
    char *p = fs_join(c->root, rel);
    free(rel);
    return p;
}

char *bsrc_path(const bsrc_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = vpath(c, fmt, ap);
    va_end(ap);
    return p;
}

const char *bsrc_basename(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* ---------------------------------------------------------- appending -- */

bool bsrc_full(const bsrc_ctx *c)
{
    return c && c->limit > 0 && c->rep->questions >= c->limit;
}

json_t *bsrc_question(const bsrc_ctx *c, const char *qid, const char *question)
{
    json_t *q = json_object();
    json_object_set_new(q, "question_id", json_string(qid));
    json_object_set_new(q, "benchmark", json_string(c->suite));
    json_object_set_new(q, "question", json_string(question));
    return q;
}

void bsrc_count_missing(bsrc_ctx *c, const char *what)
{
    if (c->rep->missing_images++ == 0) c->rep->first_missing = xstrdup(what);
}

void bsrc_emit(bsrc_ctx *c, json_t *q)
{
    json_array_append_new(c->out, q);
    c->rep->questions++;
}

void bsrc_emit_image(bsrc_ctx *c, json_t *q, const char *image_path)
{
    if (!fs_is_file(image_path)) {
        bsrc_count_missing(c, image_path);
        json_decref(q);
        return;
    }
    json_object_set_new(q, "image", json_string(image_path));
    bsrc_emit(c, q);
}

int bsrc_emit_image_at(bsrc_ctx *c, json_t *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *path = vpath(c, fmt, ap);
    va_end(ap);
    bsrc_emit_image(c, q, path);
    free(path);
    return 0;
}

/* -------------------------------------------------------------- files -- */

int bsrc_need_file(const char *path)
{
    if (!fs_is_file(path))
        return ERR("%s: no such file (the benchmark's release file; data/benchmarks/README.md "
                   "says where it goes under the data root)",
                   path);
    return 0;
}

json_t *bsrc_load_json(const char *path)
{
    if (bsrc_need_file(path) != 0) return NULL;
    return js_load_file(path);
}

static int bsrc_one_entry(bsrc_ctx *c, const char *key, size_t pos, const json_t *e,
                          const char *file, const char *label, bsrc_entry_fn fn, void *ud)
{
    char *where = key ? bsrc_fmt("%s: %s%s", file, label, key)
                      : bsrc_fmt("%s: %s[%zu]", file, label, pos);
    int rc = json_is_object(e) ? fn(c, key, pos, e, where, ud)
                               : ERR("%s: expected an object", where);
    free(where);
    return rc;
}

int bsrc_each_entry(bsrc_ctx *c, const json_t *container, const char *file, const char *label,
                    bsrc_entry_fn fn, void *ud)
{
    if (json_is_array(container)) {
        for (size_t i = 0; i < json_array_size(container) && !bsrc_full(c); i++)
            if (bsrc_one_entry(c, NULL, i, json_array_get(container, i), file, label, fn, ud))
                return -1;
        return 0;
    }
    size_t pos = 0;
    for (void *it = json_object_iter((json_t *)container); it && !bsrc_full(c);
         it = json_object_iter_next((json_t *)container, it), pos++)
        if (bsrc_one_entry(c, json_object_iter_key(it), pos, json_object_iter_value(it), file,
                           label, fn, ud))
            return -1;
    return 0;
}

int bsrc_json_entries(bsrc_ctx *c, const char *rel, json_type type, const char *label,
                      bsrc_entry_fn fn, void *ud)
{
    char *file = bsrc_path(c, "%s", rel);
    json_t *root = bsrc_load_json(file);
    int rc = root ? 0 : -1;
    if (root && json_typeof(root) != type)
        rc = ERR("%s: expected a JSON %s of questions", file,
                 type == JSON_ARRAY ? "array" : "object {question id: question}");
    if (rc == 0) rc = bsrc_each_entry(c, root, file, label, fn, ud);
    json_decref(root);
    free(file);
    return rc;
}

/* Cuts the next line out of *p (NUL-terminating it in place); NULL at end. */
static char *next_line(char **p)
{
    if (!**p) return NULL;
    char *s = *p, *e = strchr(s, '\n');
    if (e) {
        *e = '\0';
        *p = e + 1;
    } else {
        *p = s + strlen(s);
    }
    size_t n = strlen(s);
    if (n && s[n - 1] == '\r') s[n - 1] = '\0';
    return s;
}

int bsrc_jsonl(bsrc_ctx *c, const char *path, bsrc_line_fn fn, void *ud)
{
    char *text = NULL;
    size_t len = 0;
    if (bsrc_need_file(path) != 0 || fs_read_all(path, &text, &len) != 0) return -1;
    int rc = 0;
    long line = 0;
    char *p = text, *s;
    while (rc == 0 && !bsrc_full(c) && (s = next_line(&p))) {
        line++;
        if (strspn(s, " \t") == strlen(s)) continue;
        char *where = bsrc_fmt("%s: line %ld", path, line);
        json_error_t je;
        json_t *o = json_loads(s, 0, &je);
        if (!json_is_object(o))
            rc = ERR("%s: not a JSON object (%s)", where, o ? "another JSON value" : je.text);
        else
            rc = fn(c, o, where, ud);
        json_decref(o);
        free(where);
    }
    free(text);
    return rc;
}

typedef struct {
    const char *key;
    json_t *index;
} index_job;

static int index_line(bsrc_ctx *c, const json_t *obj, const char *where, void *ud)
{
    index_job *job = ud;
    char id[64];
    if (bsrc_id(obj, job->key, id, sizeof id, where) != 0) return -1;
    if (json_object_get(job->index, id))
        return ERR("%s: \"%s\" %s appears twice", where, job->key, id);
    json_object_set(job->index, id, (json_t *)obj);
    return 0;
}

json_t *bsrc_jsonl_index(const char *path, const char *key)
{
    index_job job = {key, json_object()};
    if (bsrc_jsonl(NULL, path, index_line, &job) != 0) {
        json_decref(job.index);
        return NULL;
    }
    return job.index;
}

/* One TSV record parsed in place: cells point into the text. */
typedef struct {
    char **cells;
    size_t n, cap;
} tsv_record;

static void record_push(tsv_record *r, char *cell)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 32;
        r->cells = xrealloc(r->cells, r->cap * sizeof *r->cells);
    }
    r->cells[r->n++] = cell;
}

/* Parses one quoted cell starting at the opening quote *p; unquotes it in
 * place and leaves *p at the character after the closing quote. Counts the
 * newlines inside into *lines. Returns the cell, NULL if never closed. */
static char *tsv_quoted(char **p, long *lines)
{
    char *src = *p + 1, *dst = src, *cell = src;
    for (;;) {
        if (*src == '\0') return NULL;
        if (*src == '"') {
            if (src[1] != '"') break;
            src++;
        }
        if (*src == '\n') (*lines)++;
        *dst++ = *src++;
    }
    *p = src + 1;
    *dst = '\0';
    return cell;
}

/* Parses the record at *p (moving *p past it) into r. Returns 1 for a
 * record, 0 at the end of the text, -1 on a syntax error (err set). */
static int tsv_record_next(char **p, tsv_record *r, long *line, const char *path)
{
    r->n = 0;
    if (!**p) return 0;
    long start = *line;
    for (;;) {
        char *cell;
        if (**p == '"') {
            cell = tsv_quoted(p, line);
            if (!cell) return ERR("%s: line %ld: quoted cell never closed", path, start);
            if (**p && **p != '\t' && **p != '\n' && **p != '\r')
                return ERR("%s: line %ld: text after a closing quote", path, start);
            if (**p == '\r') *(*p)++ = '\0';
        } else {
            cell = *p;
            *p += strcspn(*p, "\t\n");
            if (*p > cell && (*p)[-1] == '\r') (*p)[-1] = '\0';
        }
        record_push(r, cell);
        char sep = **p;
        if (sep) *(*p)++ = '\0';
        if (sep != '\t') break;
    }
    (*line)++;
    return 1;
}

/* Maps the wanted column names to their positions in the header. */
static int tsv_columns(const tsv_record *hdr, const char *const *cols, size_t ncols,
                       size_t *pos, const char *path)
{
    for (size_t k = 0; k < ncols; k++) {
        size_t i = 0;
        while (i < hdr->n && strcmp(hdr->cells[i], cols[k]) != 0) i++;
        if (i == hdr->n) return ERR("%s: line 1: the header has no column \"%s\"", path, cols[k]);
        pos[k] = i;
    }
    return 0;
}

int bsrc_tsv(bsrc_ctx *c, const char *path, const char *const *cols, size_t ncols,
             bsrc_row_fn fn, void *ud)
{
    char *text = NULL;
    size_t len = 0;
    if (bsrc_need_file(path) != 0 || fs_read_all(path, &text, &len) != 0) return -1;
    tsv_record r = {0};
    size_t *pos = xcalloc(ncols ? ncols : 1, sizeof *pos);
    char **cells = xcalloc(ncols ? ncols : 1, sizeof *cells);
    char *p = text;
    long line = 1;
    int rc = tsv_record_next(&p, &r, &line, path);
    if (rc == 0) rc = ERR("%s: empty file (expected a header line)", path);
    if (rc > 0) rc = tsv_columns(&r, cols, ncols, pos, path);
    size_t width = r.n;
    while (rc == 0 && !bsrc_full(c)) {
        long start = line;
        int got = tsv_record_next(&p, &r, &line, path);
        if (got <= 0) {
            rc = got;
            break;
        }
        if (r.n == 1 && r.cells[0][0] == '\0') continue; /* blank line */
        char *where = bsrc_fmt("%s: line %ld", path, start);
        if (r.n != width) {
            rc = ERR("%s: %zu cells, the header has %zu", where, r.n, width);
        } else {
            for (size_t k = 0; k < ncols; k++) cells[k] = r.cells[pos[k]];
            rc = fn(c, cells, where, ud);
        }
        free(where);
    }
    free(r.cells);
    free(pos);
    free(cells);
    free(text);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int bsrc_list_dir(const char *dir, const char *suffix, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return ERR("%s: cannot list the folder: %s", dir, strerror(errno));
    size_t cap = 0, sl = strlen(suffix);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < sl || strcmp(e->d_name + l - sl, suffix) != 0) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *names = xrealloc(*names, cap * sizeof **names);
        }
        (*names)[(*n)++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (*n) qsort(*names, *n, sizeof **names, cmp_names);
    return 0;
}

void bsrc_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* ------------------------------------------------------------- fields -- */

static const char *type_name(json_type t)
{
    switch (t) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    default: return "a boolean";
    }
}

json_t *bsrc_typed(const json_t *o, const char *key, json_type type, const char *where)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        ERR("%s: \"%s\" is missing", where, key);
        return NULL;
    }
    if (json_typeof(v) != type) {
        ERR("%s: \"%s\": expected %s", where, key, type_name(type));
        return NULL;
    }
    return v;
}

const char *bsrc_str(const json_t *o, const char *key, const char *where)
{
    return json_string_value(bsrc_typed(o, key, JSON_STRING, where));
}

const char *bsrc_opt_str(const json_t *o, const char *key, const char *where, bool *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        ERR("%s: \"%s\": expected a string", where, key);
        return NULL;
    }
    return json_string_value(v);
}

int bsrc_id(const json_t *o, const char *key, char *buf, size_t n, const char *where)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) {
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
        return 0;
    }
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < n) {
        snprintf(buf, n, "%s", json_string_value(v));
        return 0;
    }
    if (!v || json_is_null(v)) return ERR("%s: \"%s\" is missing", where, key);
    return ERR("%s: \"%s\": expected an integer or a short non-empty string", where, key);
}

json_t *bsrc_strings(const json_t *o, const char *key, const char *where)
{
    json_t *a = bsrc_typed(o, key, JSON_ARRAY, where);
    if (!a) return NULL;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_string(v)) {
            ERR("%s: \"%s\"[%zu]: expected a string", where, key, i);
            return NULL;
        }
    }
    return json_deep_copy(a);
}
