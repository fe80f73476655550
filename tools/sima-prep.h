/* sima-prep.h — the parts of sima-prep shared by its files: sima-prep.c
 * (usage, command dispatch, main), sima-prep-records.c (import: the input's
 * records and the prompts and image names they give), sima-prep-import.c
 * (import: reading the images over the ranks, the report, prompts.h5) and
 * sima-prep-export.c (export to JSON Lines, info). */
#ifndef SIMA_TOOLS_SIMA_PREP_H
#define SIMA_TOOLS_SIMA_PREP_H

#include "tool.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const char *const USAGE;

/* getopt with our messages: a leading ':' in optstring makes a missing
 * value return ':'. */
_Noreturn void bad_option(tool_ctx *t, int c, const char *cmd, char **argv);

/* The commands: each returns the exit code (errors end the process). */
int cmd_import(tool_ctx *t, int argc, char **argv);
int cmd_export(tool_ctx *t, int argc, char **argv);
int cmd_info(tool_ctx *t, int argc, char **argv);

/* ---------------------------------------------- sima-prep-records.c -- */

typedef enum { FMT_AUTO, FMT_LLAVA, FMT_SIMA } input_format;

/* Where a record is, for messages and for the report. */
typedef struct {
    const char *file;
    bool jsonl;
    long record;   /* 1-based position among the records */
    long line;     /* 1-based line where the record starts */
    size_t offset; /* byte of the file where it starts */
} record_pos;

/* Called once per record; returns 0 to go on, 1 to stop early, -1 on error. */
typedef int (*record_fn)(const json_t *rec, const record_pos *pos, void *ctx);

typedef struct {
    char *id, *question, *truth;
    int64_t image; /* index among the distinct images, -1 for none */
    long record, line;
} prompt;

/* Distinct image paths in order of first use, with a hash index. */
typedef struct {
    char **names;
    int64_t *uses;  /* [n] prompts naming each */
    size_t n, cap;
    int64_t *slots; /* open addressing: index + 1, 0 empty */
    size_t n_slots; /* a power of two, at least twice n */
} image_set;

/* The input file mapped read-only: records are parsed from it in place,
 * and the pages already parsed are given back as the parse goes on, so
 * memory does not grow with the file. */
typedef struct {
    const char *path;
    char *buf;
    size_t len;
    size_t released; /* bytes [0, released) are given back */
} input_map;

int input_map_open(input_map *m, const char *path);
/* Give back whole pages before `upto` (at most every 16 MiB: cheap to call
 * per record). */
void input_map_release(input_map *m, size_t upto);
/* Give back every page, before the file is read again from its start. */
void input_map_rewind(input_map *m);
/* FNV-1a of the whole file, its pages given back behind the hash. */
uint64_t input_map_hash(input_map *m);
void input_map_close(input_map *m);

/* Import reads its input twice. The first pass checks every record and
 * learns the distinct images (names, uses, text-only prompts); the second,
 * once the images are checked, gives each prompt to emit, with its image
 * index, in order. Nothing is held per prompt. */
typedef struct {
    input_format format; /* FMT_AUTO until the first record decides */
    long long limit;     /* 0: no limit */
    long records;        /* records read */
    int64_t text_only;   /* prompts without an image */
    image_set images;    /* grown by the first pass, looked up by the second */
    input_map *map;      /* pages given back as records are parsed */
    /* the second pass (NULL in the first): called with each prompt; returns
     * 0 to go on, -1 on error */
    int (*emit)(const prompt *p, void *emit_ctx);
    void *emit_ctx;
} import_state;

const char *format_name(input_format f);
/* Call fn on each record of buf[len] (the contents of file): a JSON array
 * (first character '[') or JSON Lines (anything else). */
int read_records(const char *file, const char *buf, size_t len, record_fn fn, void *ctx);
/* The record_fn of import (ctx: an import_state): the first pass records
 * the image, the second emits the prompt. */
int add_record(const json_t *rec, const record_pos *pos, void *ctx);
void image_set_free(image_set *s);

#endif
