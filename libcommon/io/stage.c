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

/* ---------------------------------------------------------- assembly -- */

static int64_t g_assembly_bytes = 8 << 20;

void stage_set_assembly_bytes(int64_t bytes) { g_assembly_bytes = bytes > 0 ? bytes : 1; }

/* This rank's block of parts [c0, c1): its rows and elements per column,
 * and the windows it is read in (window w ends before chunk end[w]). */
typedef struct {
    int64_t c0, c1;
    int64_t rows, *elems;           /* [n_cols] */
    int64_t *end, n_windows;
} assembly_plan;

static void assembly_plan_free(assembly_plan *ap)
{
    free(ap->elems);
    free(ap->end);
}

static void add_window_end(assembly_plan *ap, int64_t chunk)
{
    ap->end = xrealloc(ap->end, sizeof(int64_t) * (size_t)(ap->n_windows + 1));
    ap->end[ap->n_windows++] = chunk;
}

/* The sizes of one committed part (opened for its dataset shapes only). */
static int part_sizes(const stage *s, int64_t chunk, int64_t *elems, int64_t *bytes)
{
    const cols_table *tab = s->spec->rows;
    h5io_file f;
    int rc = chk_part_open(&s->plan, chunk, &f);
    if (rc == 0) {
        rc = cols_elems(&f, tab, elems);
        h5io_close(&f);
    }
    *bytes = 0;
    for (int i = 0; rc == 0 && i < tab->n_cols; i++)
        *bytes += elems[i] * (int64_t)h5io_type_size(tab->cols[i].type);
    return rc;
}

/* Sizes of this rank's parts, cut into windows of whole parts of at most
 * g_assembly_bytes (at least one part each). */
static int plan_assembly(const stage *s, assembly_plan *ap)
{
    int n_cols = s->spec->rows->n_cols;
    memset(ap, 0, sizeof *ap);
    chk_my_block(&s->plan, s->t, &ap->c0, &ap->c1);
    ap->elems = xcalloc((size_t)n_cols, sizeof *ap->elems);
    int64_t *e = xmalloc(sizeof(int64_t) * (size_t)n_cols), window = 0;
    int rc = 0;
    for (int64_t c = ap->c0; rc == 0 && c < ap->c1; c++) {
        int64_t bytes;
        rc = part_sizes(s, c, e, &bytes);
        if (rc != 0) break;
        if (window > 0 && window + bytes > g_assembly_bytes) {
            add_window_end(ap, c);
            window = 0;
        }
        window += bytes;
        ap->rows += e[0]; /* cols[0] is fixed: its elements are the part's rows */
        for (int i = 0; i < n_cols; i++) ap->elems[i] += e[i];
    }
    if (rc == 0 && ap->c1 > ap->c0) add_window_end(ap, ap->c1);
    free(e);
    return rc;
}

/* The rows of window w, read part by part. */
static int read_window(const stage *s, const assembly_plan *ap, int64_t w, void *rows)
{
    const cols_table *tab = s->spec->rows;
    int64_t c0 = w == 0 ? ap->c0 : ap->end[w - 1];
    int rc = 0;
    void *part = xcalloc(1, tab->size);
    for (int64_t c = c0; rc == 0 && c < ap->end[w]; c++) {
        h5io_file f;
        rc = chk_part_open(&s->plan, c, &f);
        if (rc == 0) {
            rc = cols_read(&f, tab, part);
            h5io_close(&f);
        }
        if (rc == 0) {
            cols_append(tab, rows, part);
            cols_free(tab, part);
        }
    }
    free(part);
    return rc;
}

/* Collective: true on every rank when rc failed on any. */
static bool failed_anywhere(int rc)
{
    int bad = rc != 0, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any != 0;
}

/* The output's rows: every rank its block, window by window (collective).
 * Returns this rank's result; *failed when any rank failed. */
static int write_rows_in_windows(stage *s, const stage_ops *ops, void *ctx, h5io_file *f,
                                 bool *failed)
{
    const cols_table *tab = s->spec->rows;
    assembly_plan ap;
    int rc = plan_assembly(s, &ap);
    *failed = failed_anywhere(rc);
    int k = tab->n_cols + 1;
    int64_t *total = xmalloc(sizeof(int64_t) * (size_t)k), rounds = ap.n_windows;
    total[0] = ap.rows;
    memcpy(total + 1, ap.elems, sizeof(int64_t) * (size_t)tab->n_cols);
    MPI_Allreduce(MPI_IN_PLACE, total, k, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &rounds, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    cols_writer w = {tab, NULL};
    if (!*failed) {
        rc = cols_writer_begin(f, tab, total[0], total + 1, &w);
        if (rc == 0) rc = cols_writer_blocks(&w, ap.rows, ap.elems);
        *failed = failed_anywhere(rc);
    }
    for (int64_t r = 0; !*failed && r < rounds; r++) {
        void *rows = xcalloc(1, tab->size);
        if (r < ap.n_windows) rc = read_window(s, &ap, r, rows);
        *failed = failed_anywhere(rc);
        if (!*failed && ops->tally) ops->tally(ctx, rows);
        if (!*failed) *failed = failed_anywhere(rc = cols_writer_put(&w, rows));
        cols_free(tab, rows);
        free(rows);
    }
    int end = w.s ? cols_writer_end(&w) : 0;
    if (!*failed) *failed = failed_anywhere(rc = end);
    free(total);
    assembly_plan_free(&ap);
    return rc;
}

/* All ranks: write OUT collectively, rank r's block of parts after rank
 * r-1's: item order, whatever the number of ranks. */
static void assemble_output(stage *s, const stage_ops *ops, void *ctx)
{
    tool_ctx *t = s->t;
    const stage_spec *sp = s->spec;
    h5io_file f;
    tool_agree(t, h5io_create(&f, sp->opts->out, MPI_COMM_WORLD));
    bool failed;
    int rc = write_rows_in_windows(s, ops, ctx, &f, &failed);
    if (failed) { /* every rank: the failing ones print their message, all exit */
        h5io_abandon(&f);
        tool_agree(t, rc);
    }
    h5io_provenance prov = {t->name, sp->schema, sp->schema_version, t->argc, t->argv,
                            sp->inputs, sp->n_inputs, sp->opts->model, sp->model_hash, sp->seed,
                            s->plan.run_key};
    rc = h5io_write_provenance(&f, &prov);
    if (rc == 0 && ops->write_attrs) rc = ops->write_attrs(ctx, s, &f);
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
