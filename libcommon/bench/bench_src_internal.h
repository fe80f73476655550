/* bench_src_internal.h — shared helpers of the official-file readers
 * (bench_source.h): paths under the data root, JSON / JSONL / TSV loading
 * with errors that name the file (and line), typed field access, and the
 * one place where a question object is appended or, its image being absent,
 * counted as missing. Only bench_source.c and bench_src_*.c include it. */
#ifndef SIMA_BENCH_SRC_INTERNAL_H
#define SIMA_BENCH_SRC_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_source.h"

/* One load: the suite being read and where its questions go. */
typedef struct {
    const char *suite;          /* benchmark name written into every object */
    const char *root;           /* absolute data root, no trailing '/' */
    int64_t limit;              /* <= 0: no limit */
    json_t *out;                /* array the objects are appended to */
    bench_source_report *rep;
} bsrc_ctx;

/* The readers, one per suite (bench_src_*.c). Each returns 0 or -1 (err set). */
int bsrc_read_pope(bsrc_ctx *c);
int bsrc_read_mme(bsrc_ctx *c);
int bsrc_read_textvqa(bsrc_ctx *c);
int bsrc_read_vizwiz(bsrc_ctx *c);
int bsrc_read_vqav2(bsrc_ctx *c);
int bsrc_read_gqa(bsrc_ctx *c);
int bsrc_read_scienceqa(bsrc_ctx *c);
int bsrc_read_mmbench(bsrc_ctx *c);
int bsrc_read_seed(bsrc_ctx *c);
int bsrc_read_chair(bsrc_ctx *c);
int bsrc_read_llava_bench(bsrc_ctx *c);
int bsrc_read_mmvet(bsrc_ctx *c);
int bsrc_read_mmhal(bsrc_ctx *c);
int bsrc_read_mementos(bsrc_ctx *c);

/* ---- strings and paths ---- */

/* printf into a malloc'd string. */
char *bsrc_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "ROOT/rel" (rel formatted), malloc'd. */
char *bsrc_path(const bsrc_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last path component of p (points into p). */
const char *bsrc_basename(const char *p);

/* ---- appending questions ---- */

/* True once limit questions have been appended. */
bool bsrc_full(const bsrc_ctx *c);
/* A new question object {"question_id", "benchmark", "question"}. */
json_t *bsrc_question(const bsrc_ctx *c, const char *qid, const char *question);
/* Appends q (the reference is taken) with "image": image_path when that
 * file exists; otherwise drops q and counts the image missing. */
void bsrc_emit_image(bsrc_ctx *c, json_t *q, const char *image_path);
/* bsrc_emit_image with the image at "ROOT/rel" (rel formatted); returns 0, so
 * a reader can end with it (a missing image is counted, not an error). */
int bsrc_emit_image_at(bsrc_ctx *c, json_t *q, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends q (reference taken) as is (its image travels inside it). */
void bsrc_emit(bsrc_ctx *c, json_t *q);
/* Counts a question left out for want of its image; `what` names it. */
void bsrc_count_missing(bsrc_ctx *c, const char *what);

/* ---- files ---- */

/* Checks that an annotation file exists: "PATH: no such file (...)". */
int bsrc_need_file(const char *path);
/* Parses a JSON file (missing file and syntax errors name it). */
json_t *bsrc_load_json(const char *path);

/* Calls fn for every entry of a JSON container holding question objects:
 * an object's members (key = the member name) or an array's elements (key
 * NULL; pos = the index). `where` is "FILE: LABEL[pos]" for arrays and
 * "FILE: LABELkey" for objects. An entry that is not an object is an
 * error. Stops early (returning 0) once c is full. */
typedef int (*bsrc_entry_fn)(bsrc_ctx *c, const char *key, size_t pos, const json_t *e,
                             const char *where, void *ud);
int bsrc_each_entry(bsrc_ctx *c, const json_t *container, const char *file, const char *label,
                    bsrc_entry_fn fn, void *ud);
/* Loads FILE (a path under the data root) and runs bsrc_each_entry over
 * it, which must be a JSON object (type JSON_OBJECT) or array (JSON_ARRAY). */
int bsrc_json_entries(bsrc_ctx *c, const char *rel, json_type type, const char *label,
                      bsrc_entry_fn fn, void *ud);

/* Calls fn for every non-blank line of a JSONL file, each a JSON object;
 * `where` is "PATH: line N". Stops early (returning 0) once c is full.
 * c may be NULL (a file read whole, e.g. to be indexed). */
typedef int (*bsrc_line_fn)(bsrc_ctx *c, const json_t *obj, const char *where, void *ud);
int bsrc_jsonl(bsrc_ctx *c, const char *path, bsrc_line_fn fn, void *ud);

/* Reads a JSONL file into an object keyed by each line's `key` field
 * (an integer or a string), values the line objects. NULL on error (a
 * missing or repeated key included). */
json_t *bsrc_jsonl_index(const char *path, const char *key);

/* Calls fn for every record of a tab-separated file with a header line, the
 * cells of the columns named in cols (in that order; a column the header
 * lacks is an error). Quoted cells ("a\tb", "" for a quote, newlines
 * inside) are read as the csv module / pandas write them. `where` is
 * "PATH: line N" (the record's first line). Stops early once c is full. */
typedef int (*bsrc_row_fn)(bsrc_ctx *c, char *const *cells, const char *where, void *ud);
int bsrc_tsv(bsrc_ctx *c, const char *path, const char *const *cols, size_t ncols,
             bsrc_row_fn fn, void *ud);

/* Names in dir ending with suffix, sorted (strcmp), into a malloc'd array of
 * malloc'd strings. */
int bsrc_list_dir(const char *dir, const char *suffix, char ***names, size_t *n);
void bsrc_free_names(char **names, size_t n);

/* ---- fields ---- */

/* A required string field; NULL (err set: "WHERE: \"key\": ...") when absent
 * or not a string. */
const char *bsrc_str(const json_t *o, const char *key, const char *where);
/* An optional string field: NULL when absent or null; *bad set (err set)
 * when present but not a string. */
const char *bsrc_opt_str(const json_t *o, const char *key, const char *where, bool *bad);
/* A required id: an integer or a string, written as text into buf. */
int bsrc_id(const json_t *o, const char *key, char *buf, size_t n, const char *where);
/* A required array of strings, copied (new reference); NULL on error. */
json_t *bsrc_strings(const json_t *o, const char *key, const char *where);
/* A required field of the given type (borrowed); NULL on error. */
json_t *bsrc_typed(const json_t *o, const char *key, json_type type, const char *where);

#endif
