/* stage.c — io layer: the shared main sequence and options of the stage tools. */
#define _GNU_SOURCE /* getopt_long */
#include "stage.h"
#include "err.h"
#include "log.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- options -- */

/* Codes of the stage options, above any tool's own (256 up). */
enum { O_CHUNK = 0x4000, O_NORESUME, O_RESUME, O_OVERWRITE, O_PROGRESS, O_PRE };

static const struct option STAGE_OPTIONS[] = {
    TOOL_COMMON_OPTIONS,
    {"model", required_argument, 0, 'm'}, {"prompts", required_argument, 0, 'p'},
    {"out", required_argument, 0, 'o'}, {"chunk", required_argument, 0, O_CHUNK},
    {"no-resume", no_argument, 0, O_NORESUME}, {"resume", no_argument, 0, O_RESUME},
    {"overwrite", no_argument, 0, O_OVERWRITE},
    {"progress-seconds", required_argument, 0, O_PROGRESS},
    {"preprocess", required_argument, 0, O_PRE}};
enum { N_STAGE_OPTIONS = sizeof STAGE_OPTIONS / sizeof STAGE_OPTIONS[0] };

/* The stage options, then the tool's, then the zero entry (malloc'd). */
static struct option *all_options(const struct option *opts)
{
    int n = 0;
    while (opts[n].name) n++;
    struct option *all = xcalloc((size_t)(N_STAGE_OPTIONS + n + 1), sizeof *all);
    memcpy(all, STAGE_OPTIONS, sizeof STAGE_OPTIONS);
    memcpy(all + N_STAGE_OPTIONS, opts, sizeof *opts * (size_t)n);
    return all;
}

/* Returns 1 when c is a stage option. */
static int stage_option(tool_ctx *t, int c, const char *arg, stage_opts *o)
{
    switch (c) {
    case 'm': o->model = arg; return 1;
    case 'p': o->prompts = arg; return 1;
    case 'o': o->out = arg; return 1;
    case O_CHUNK: o->chunk = (int)tool_parse_int(t, "--chunk", arg, 1, 1 << 20); return 1;
    case O_NORESUME: o->resume = false; return 1;
    case O_RESUME: o->resume = true; return 1;
    case O_OVERWRITE: o->overwrite = true; return 1;
    case O_PROGRESS: o->progress_s = tool_parse_real(t, "--progress-seconds", arg, 0, 1e6); return 1;
    case O_PRE: o->preprocess = arg; return 1;
    default: return 0;
    }
}

void stage_parse_args(tool_ctx *t, int argc, char **argv, const char *usage, int chunk_default,
                      stage_opts *o, const struct option *opts,
                      int (*tool_option)(void *a, tool_ctx *t, int code, const char *arg),
                      void *a)
{
    *o = (stage_opts){NULL, NULL, NULL, "pad", chunk_default, true, false, 5.0};
    struct option *all = all_options(opts);
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vqhVm:p:o:", all, NULL)) != -1) {
        if (tool_common_option(t, c, usage) || stage_option(t, c, optarg, o) ||
            tool_option(a, t, c, optarg))
            continue;
        tool_usage_error(t, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    free(all);
    if (optind != argc) tool_usage_error(t, "unexpected argument '%s'", argv[optind]);
    if (strcmp(o->preprocess, "pad") && strcmp(o->preprocess, "crop"))
        tool_usage_error(t, "--preprocess: expected pad or crop, got '%s'", o->preprocess);
}

/* -------------------------------------------------------------- run -- */

int stage_commit_part(stage *s, int64_t chunk, const void *rows)
{
    h5io_file f;
    int rc = chk_part_create(&s->plan, chunk, &f);
    if (rc != 0) return rc;
    rc = cols_write(&f, s->spec->rows, rows);
    if (rc == 0) return chk_part_commit(&s->plan, &f);
    h5io_abandon(&f);
    return rc;
}

/* This rank's share of the pending chunks: chunk i of the list goes to
 * rank i mod size. */
static int run_my_chunks(stage *s, const stage_ops *ops, void *ctx, const int64_t *pending)
{
    int rc = 0;
    bool stop = false;
    for (int64_t i = s->t->rank; rc == 0 && !stop && i < s->n_pending && !tool_interrupted();
         i += s->t->size)
        rc = ops->run_chunk(ctx, s, pending[i], &stop);
    return rc;
}

/* Add one committed part's rows to the rows being assembled. */
typedef struct {
    const cols_table *table;
    void *rows;
} assembly;

static int append_part(h5io_file *f, void *acc)
{
    assembly *a = acc;
    void *part = xcalloc(1, a->table->size);
    int rc = cols_read(f, a->table, part);
    if (rc == 0) {
        cols_append(a->table, a->rows, part);
        cols_free(a->table, part);
    }
    free(part);
    return rc;
}

/* All ranks: read a contiguous block of parts each and write OUT
 * collectively, rank r's block after rank r-1's: item order, whatever the
 * number of ranks. */
static void assemble_output(stage *s, const stage_ops *ops, void *ctx)
{
    tool_ctx *t = s->t;
    const stage_spec *sp = s->spec;
    assembly acc = {sp->rows, xcalloc(1, sp->rows->size)};
    chk_read_my_block(t, &s->plan, append_part, &acc);
    h5io_file f;
    tool_agree(t, h5io_create(&f, sp->opts->out, MPI_COMM_WORLD));
    h5io_provenance prov = {t->name, sp->schema, sp->schema_version, t->argc, t->argv,
                            sp->inputs, sp->n_inputs, sp->opts->model, sp->model_hash, sp->seed,
                            s->plan.run_key};
    int rc = cols_write(&f, sp->rows, acc.rows);
    if (rc == 0) rc = h5io_write_provenance(&f, &prov);
    if (rc == 0 && ops->write_attrs) rc = ops->write_attrs(ctx, s, &f, acc.rows);
    cols_free(sp->rows, acc.rows);
    free(acc.rows);
    /* every rank reached here; a failure now is a file-system one all see */
    if (rc != 0) {
        h5io_abandon(&f);
        tool_agree(t, rc);
    }
    tool_agree(t, h5io_commit(&f));
    chk_remove_parts(t, &s->plan);
}

/* After the work: the interrupted exit, or the check that every chunk is
 * there. Returns 1 when interrupted. */
static int finish_work(stage *s)
{
    chk_progress_finish(&s->progress, &s->items, &s->tokens);
    if (tool_any_interrupted(s->t)) {
        log_info("interrupted: finished chunks are committed in %s; rerun the same command to "
                 "finish", s->plan.parts_dir);
        return 1;
    }
    int rc = 0;
    if (!chk_all_committed(s->t, &s->plan))
        rc = ERR("%s: chunks are missing after the run", s->plan.parts_dir);
    tool_agree(s->t, rc);
    return 0;
}

int stage_run(tool_ctx *t, const stage_spec *spec, const stage_ops *ops, void *ctx, stage *s)
{
    return stage_run_then(t, spec, ops, ctx, s, "nothing to do");
}

int stage_run_then(tool_ctx *t, const stage_spec *spec, const stage_ops *ops, void *ctx,
                   stage *s, const char *complete_note)
{
    memset(s, 0, sizeof *s);
    s->t = t;
    s->spec = spec;
    char key[17];
    chk_run_key(key, spec->key_texts, spec->n_key_texts);
    const stage_opts *o = spec->opts;
    chk_plan_init(&s->plan, o->out, spec->schema, spec->schema_version, spec->n_items, o->chunk,
                  key, o->resume, o->overwrite);
    bool done;
    int64_t *pending;
    chk_prepare(t, &s->plan, &done, &pending, &s->n_pending);
    if (done) {
        log_info("%s is already complete for this run; %s", o->out, complete_note);
        free(pending);
        return TOOL_OK;
    }
    if (ops->load) tool_agree(t, ops->load(ctx, s));
    int64_t todo = chk_pending_items(&s->plan, pending, s->n_pending);
    ops->announce(ctx, s);
    chk_progress_init(&s->progress, t, spec->unit, spec->rate_unit, o->progress_s, todo,
                      spec->n_items - todo);
    int rc = run_my_chunks(s, ops, ctx, pending);
    free(pending);
    if (rc != 0) tool_abort(t); /* others may be mid-work */
    if (finish_work(s)) return TOOL_INTERRUPTED;
    assemble_output(s, ops, ctx);
    ops->summary(ctx, s);
    return TOOL_OK;
}

void stage_free(stage *s)
{
    chk_plan_free(&s->plan);
}
