/* stage.h — io layer: the main sequence of a chunked stage tool
 * (sima-gen, sima-critic, sima-pairs), and the options they share.
 *
 * stage_run does, for every such tool: the run key and plan of chunks
 * (chunks.h); resume or refusal of OUT.parts and its lock; "already
 * complete"; loading what the work needs; the start line and progress;
 * this rank's share of the pending chunks; the interrupted and
 * missing-chunk exits; the collective assembly of OUT (rows of the output's
 * column group, columns.h, then provenance and the tool's attributes): each
 * rank reads its contiguous block of parts a window at a time and writes it
 * into its own block of OUT, so no rank ever holds more than a window; and
 * the summary. The tool gives the per-chunk work and the attributes as
 * callbacks (stage_ops); a chunk's rows go to its part file through
 * stage_commit_part.
 */
#ifndef SIMA_IO_STAGE_H
#define SIMA_IO_STAGE_H

#include "chunks.h"
#include "columns.h"
#include "h5io.h"
#include "tool.h"

#include <stdbool.h>
#include <stdint.h>

/* ----------------------------------------------------------- options -- */

/* The options every stage tool has. */
typedef struct {
    const char *model, *prompts, *out, *preprocess;
    int chunk;                  /* items per chunk */
    bool resume, overwrite;
    double progress_s;          /* seconds between progress lines */
} stage_opts;

struct option; /* getopt.h */

/* Parse argv: the common options of every tool (tool.h), those of
 * stage_opts (defaults: preprocess pad, resume, progress 5 s, chunk as
 * given), and the tool's own `opts` (ending in a zero entry, codes from 256
 * up), each passed to tool_option(a, t, code, optarg), which returns 0 for
 * a code it does not know. Unknown options, stray arguments and a
 * --preprocess other than pad or crop are usage errors (exit 2). */
void stage_parse_args(tool_ctx *t, int argc, char **argv, const char *usage, int chunk_default,
                      stage_opts *o, const struct option *opts,
                      int (*tool_option)(void *a, tool_ctx *t, int code, const char *arg),
                      void *a);

/* -------------------------------------------------------------- run -- */

typedef struct stage stage;

typedef struct {
    const stage_opts *opts;       /* out, model, chunk, resume, overwrite, progress */
    const cols_table *rows;       /* the output's column group */
    const char *schema;           /* of the output */
    int schema_version;
    const char *const *inputs;    /* input files, for the provenance */
    int n_inputs;
    const char *model_hash;       /* h5io_model_hash(opts->model) */
    int64_t seed;                 /* the run seed; < 0: none */
    int64_t n_items;              /* items to cut into chunks */
    const char *const *key_texts; /* all that determines the output (settings string, */
    int n_key_texts;              /* template texts): hashed into the run key */
    const char *unit, *rate_unit; /* progress line: "prompts", "new tokens/s" */
} stage_spec;

typedef struct {
    /* When chunks remain: load what the work needs (the model); NULL: none. */
    int (*load)(void *ctx, stage *s);
    /* The start line (log_info: rank 0 prints). */
    void (*announce)(void *ctx, const stage *s);
    /* This rank: do one chunk and commit its rows with stage_commit_part;
     * when interrupted before that, set *stop and commit nothing. Counts
     * go to s->progress. */
    int (*run_chunk)(void *ctx, stage *s, int64_t chunk, bool *stop);
    /* Collective: the output's root attributes after its rows and
     * provenance. NULL: none. */
    int (*write_attrs)(void *ctx, stage *s, h5io_file *f);
    /* The last line, once the output is committed. */
    void (*summary)(void *ctx, const stage *s);
    /* During assembly, each window of the output rows this rank reads (a
     * rows struct of the output's table), before it is written: for counts
     * over the output (summed over ranks in write_attrs). NULL: none. */
    void (*tally)(void *ctx, const void *rows);
} stage_ops;

struct stage {
    tool_ctx *t;
    const stage_spec *spec;
    chk_plan plan;
    chk_progress progress;
    int64_t n_pending;          /* chunks to do when the run started */
    int64_t items, tokens;      /* after the work: totals of all ranks (rank 0) */
};

/* Run the stage (collective). Returns TOOL_OK (output complete, now or
 * already) or TOOL_INTERRUPTED (finished chunks committed); on an error
 * every rank exits 1 with the failing rank's message. */
int stage_run(tool_ctx *t, const stage_spec *spec, const stage_ops *ops, void *ctx, stage *s);
/* stage_run, for a tool that goes on with the output after it: when it is
 * already complete the line ends in `complete_note` ("scoring it") instead
 * of "nothing to do". */
int stage_run_then(tool_ctx *t, const stage_spec *spec, const stage_ops *ops, void *ctx,
                   stage *s, const char *complete_note);
/* Assembly reads each rank's block of parts in windows of whole parts of
 * at most this many bytes (at least one part), default 8 MiB: with the
 * output's arrays growing by doubling, a rank holds up to about twice that.
 * Tests set it small to cut the output into many rounds. */
void stage_set_assembly_bytes(int64_t bytes);
/* Write a chunk's rows to its part file and commit it (this rank alone). */
int stage_commit_part(stage *s, int64_t chunk, const void *rows);
void stage_free(stage *s);

#endif
