/* chunks.h — io layer: resumable, data-parallel stages that write one file.
 *
 * Every sima stage tool (sima-gen, sima-critic, sima-pairs, ...) works the
 * same way: its N input items are cut into chunks of K; the ranks share the
 * chunks not yet done; each finished chunk is committed at once as a small
 * file OUT.parts/chunk-NNNNNNNN.h5 (temporary name, then rename), so a job
 * killed at any moment loses only the chunks in flight and a rerun of the
 * same command does the rest. When every chunk exists the ranks assemble OUT
 * together, rank r reading the r-th contiguous block of chunks (a window at
 * a time, stage.c), and the parts folder is removed. A run is identified by
 * its run key (a digest of all that determines the output): an output or
 * parts folder of another run is refused unless overwrite. Rank 0 holds OUT.parts/.lock while the job
 * runs: a second job on the same output stops with a message.
 *
 * stage.h runs this whole sequence for a tool; the pieces are here.
 *
 * Progress: ranks count finished items and tokens; rank 0 prints a line
 * every few seconds with the totals of all ranks, and a rate and ETA.
 */
#ifndef SIMA_IO_CHUNKS_H
#define SIMA_IO_CHUNKS_H

#include "h5io.h"
#include "tool.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *out;        /* the final output file */
    char *parts_dir;        /* OUT.parts */
    char run_key[17];       /* 16 hex digits */
    int64_t n_items, chunk, n_chunks;
    bool resume, overwrite;
    const char *schema;     /* of OUT, to recognise a finished output */
    int schema_version;
} chk_plan;

/* The run key: FNV-1a 64 over texts[0..n) in order (settings string,
 * template texts, ...), as 16 hex digits into key[17]. */
void chk_run_key(char key[17], const char *const *texts, int n);

/* "path@created#run_key/rows": what identifies an input file's contents in a
 * run key (changes when the file is rewritten); "?" for an absent
 * attribute. malloc'd. */
char *chk_input_identity(h5io_file *f, const char *path, int64_t rows);

/* Set up the plan (no I/O). run_key is a 16-hex-digit digest. */
void chk_plan_init(chk_plan *p, const char *out, const char *schema, int schema_version,
                   int64_t n_items, int64_t chunk, const char *run_key, bool resume,
                   bool overwrite);
void chk_plan_free(chk_plan *p);

/* Collective. Decides on rank 0 and tells every rank: *done when OUT is
 * already the complete output of this run; else the chunks still to do
 * (malloc'd in *pending). An output or parts folder of another run is an
 * error unless overwrite (which removes it); without resume, committed
 * chunks are discarded. Exits through tool_agree on error. */
void chk_prepare(tool_ctx *t, chk_plan *p, bool *done, int64_t **pending, int64_t *n_pending);

/* Items [*first, *first + *n) of a chunk. */
void chk_items(const chk_plan *p, int64_t chunk, int64_t *first, int64_t *n);
/* Path of a chunk's part file (malloc'd). */
char *chk_part_path(const chk_plan *p, int64_t chunk);
/* Number of items in the pending chunks. */
int64_t chk_pending_items(const chk_plan *p, const int64_t *pending, int64_t n_pending);

/* Create / commit a part file for one chunk (this rank alone). The run key
 * is stored in it. */
int chk_part_create(const chk_plan *p, int64_t chunk, h5io_file *f);
int chk_part_commit(const chk_plan *p, h5io_file *f);

/* Collective, after all work: true (on every rank) when every chunk is
 * committed. */
bool chk_all_committed(tool_ctx *t, const chk_plan *p);
/* This rank's contiguous block of chunks for assembly. */
void chk_my_block(const chk_plan *p, const tool_ctx *t, int64_t *c0, int64_t *c1);
/* Open a committed part for reading (this rank alone). */
int chk_part_open(const chk_plan *p, int64_t chunk, h5io_file *f);
/* Rank 0, after OUT is committed: remove the parts folder (a failure is only
 * a warning: the output is complete). */
void chk_remove_parts(const tool_ctx *t, chk_plan *p);

/* ----------------------------------------------------------- progress -- */

typedef struct {
    tool_ctx *t;
    const char *unit;           /* "prompts", "pairs" */
    const char *rate_unit;      /* "new tokens/s" */
    double interval;            /* seconds between lines */
    int64_t total, before;      /* items this run must do; committed before */
    int64_t items, tokens;      /* this rank */
    int64_t sent_items, sent_tokens;
    int64_t all_items, all_tokens; /* rank 0: other ranks' reports */
    int finished_ranks;
    double last;
} chk_progress;

/* Collective: sets up the message buffer for reports to rank 0. */
void chk_progress_init(chk_progress *pr, tool_ctx *t, const char *unit, const char *rate_unit,
                       double interval, int64_t total, int64_t before);
/* Count finished work on this rank. */
void chk_progress_add(chk_progress *pr, int64_t items, int64_t tokens);
/* Call often: other ranks report at most every interval; rank 0 prints. */
void chk_progress_tick(chk_progress *pr);
/* Collective end: every rank reports, rank 0 waits for all and prints the
 * last line. *items and *tokens get the totals of all ranks (rank 0). */
void chk_progress_finish(chk_progress *pr, int64_t *items, int64_t *tokens);

#endif
