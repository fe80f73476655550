/* test_stage.c — the stage tools' shared pieces (io/stage.h): options
 * (stage, tool-specific, defaults) and the main sequence on one rank: a
 * made-up row schema cut into chunks, every chunk run once and committed,
 * the output assembled in item order (in one window, and a part at a time)
 * with provenance and the tool's attributes (a count of the rows the tally
 * saw), the parts folder gone; a rerun finds the output complete and
 * runs nothing; a run with other settings and overwrite replaces the file.
 * (Refusals exit the process: the command-line tests check them.) And an
 * input file's identity for run keys. */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "mpi_test.h"
#include "stage.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ----------------------------------------------------------- options -- */

typedef struct {
    int64_t level;
    int flag;
} demo_args;

enum { O_LEVEL = 256, O_FLAG };

static int demo_option(void *arg, tool_ctx *t, int c, const char *v)
{
    demo_args *a = arg;
    if (c == O_LEVEL) a->level = tool_parse_int(t, "--level", v, 0, 9);
    else if (c == O_FLAG) a->flag = 1;
    else return 0;
    return 1;
}

static const struct option DEMO_OPTS[] = {{"level", required_argument, 0, O_LEVEL},
                                          {"flag", no_argument, 0, O_FLAG}, {0, 0, 0, 0}};

static void test_options(tool_ctx *t)
{
    char *argv1[] = {"demo", "--model", "M", "-p", "P.h5", "--out", "O.h5", "--chunk", "7",
                     "--no-resume", "--overwrite", "--progress-seconds", "2.5", "--preprocess",
                     "crop", "--level", "3", "--flag", NULL};
    stage_opts o;
    demo_args a = {0, 0};
    optind = 0; /* a fresh getopt scan */
    stage_parse_args(t, 18, argv1, "usage", 16, &o, DEMO_OPTS, demo_option, &a);
    CHECK(o.model && strcmp(o.model, "M") == 0);
    CHECK(o.prompts && strcmp(o.prompts, "P.h5") == 0);
    CHECK(o.out && strcmp(o.out, "O.h5") == 0);
    CHECK_EQ(o.chunk, 7);
    CHECK(!o.resume && o.overwrite);
    CHECK_NEAR(o.progress_s, 2.5, 0);
    CHECK(strcmp(o.preprocess, "crop") == 0);
    CHECK(a.level == 3 && a.flag == 1);

    char *argv2[] = {"demo", "-m", "X", NULL};
    demo_args b = {0, 0};
    optind = 0;
    stage_parse_args(t, 3, argv2, "usage", 64, &o, DEMO_OPTS, demo_option, &b);
    CHECK(strcmp(o.model, "X") == 0 && o.out == NULL && o.prompts == NULL);
    CHECK(strcmp(o.preprocess, "pad") == 0);
    CHECK(o.chunk == 64 && o.resume && !o.overwrite);
    CHECK_NEAR(o.progress_s, 5, 0);
    CHECK(b.level == 0 && b.flag == 0);
}

/* --------------------------------------------------------------- run -- */

/* One column: the item number of each row. */
typedef struct {
    int64_t n, cap;
    int64_t *item;          /* [n] */
} demo_rows;

static const cols_col DEMO_COLS[] = {COLS_FIX(demo_rows, item, H5IO_I64)};
static const cols_table DEMO = {"/demo", DEMO_COLS, 1, offsetof(demo_rows, n),
                                offsetof(demo_rows, cap), sizeof(demo_rows)};

typedef struct {
    int loads, runs, summaries;
    int64_t ran[16];        /* chunks run, in order */
    int64_t tallied;        /* rows seen by the tally during assembly */
} demo_ctx;

static int demo_load(void *ctx, stage *s)
{
    (void)s;
    ((demo_ctx *)ctx)->loads++;
    return 0;
}

static void demo_announce(void *ctx, const stage *s)
{
    (void)ctx;
    (void)s;
}

/* Rows: the chunk's items, each once. */
static int demo_run_chunk(void *ctx, stage *s, int64_t chunk, bool *stop)
{
    demo_ctx *d = ctx;
    (void)stop;
    d->ran[d->runs++] = chunk;
    int64_t first, n;
    chk_items(&s->plan, chunk, &first, &n);
    demo_rows rows = {0};
    cols_grow_rows(&DEMO, &rows, n);
    for (int64_t i = 0; i < n; i++) rows.item[rows.n++] = first + i;
    int rc = stage_commit_part(s, chunk, &rows);
    chk_progress_add(&s->progress, n, 2 * n);
    cols_free(&DEMO, &rows);
    return rc;
}

static void demo_tally(void *ctx, const void *rows)
{
    ((demo_ctx *)ctx)->tallied += ((const demo_rows *)rows)->n;
}

static int demo_write_attrs(void *ctx, stage *s, h5io_file *f)
{
    (void)s;
    return h5io_set_attr_i64(f, "/", "rows_here", ((demo_ctx *)ctx)->tallied);
}

static void demo_summary(void *ctx, const stage *s)
{
    (void)s;
    ((demo_ctx *)ctx)->summaries++;
}

static const stage_ops DEMO_OPS = {demo_load, demo_announce, demo_run_chunk, demo_write_attrs,
                                   demo_summary, demo_tally};

static int run_demo(tool_ctx *t, const stage_opts *o, const char *settings, demo_ctx *d)
{
    const char *inputs[] = {"in.h5"};
    const char *keys[] = {settings};
    stage_spec spec = {o, &DEMO, "demo.items", 1, inputs, 1, "0123456789abcdef", 5, 10, keys, 1,
                       "items", "tokens/s"};
    memset(d, 0, sizeof *d);
    stage st;
    int code = stage_run(t, &spec, &DEMO_OPS, d, &st);
    stage_free(&st);
    return code;
}

static void check_output(const char *path, const char *settings)
{
    h5io_file f;
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    int64_t items[10], here = -1;
    CHECK_EQ(h5io_rows(&f, "/demo/item"), 10);
    CHECK_OK(h5io_read_column(&f, "/demo/item", H5IO_I64, 0, 10, items));
    for (int i = 0; i < 10; i++) CHECK_EQ(items[i], i);
    CHECK_OK(h5io_get_attr_i64(&f, "/", "rows_here", &here));
    CHECK_EQ(here, 10);
    char *schema = h5io_get_attr_str(&f, "/", "schema");
    char *key = h5io_get_attr_str(&f, "/", "run_key");
    char *tool = h5io_get_attr_str(&f, "/", "tool");
    CHECK(schema && strcmp(schema, "demo.items") == 0);
    CHECK(tool && strcmp(tool, "test_stage") == 0);
    char want[17];
    chk_run_key(want, (const char *const[]){settings}, 1);
    CHECK(key && strcmp(key, want) == 0);
    free(schema);
    free(key);
    free(tool);
    h5io_close(&f);
}

static void test_run(tool_ctx *t, const char *dir)
{
    char out[512], parts[520];
    snprintf(out, sizeof out, "%s/demo.h5", dir);
    snprintf(parts, sizeof parts, "%s.parts", out);
    stage_opts o = {"model", NULL, out, "pad", 3, true, false, 1e6};
    demo_ctx d;
    /* 10 items in chunks of 3: chunks 0..3, the last of one item */
    CHECK_EQ(run_demo(t, &o, "settings A", &d), TOOL_OK);
    CHECK(d.loads == 1 && d.runs == 4 && d.summaries == 1);
    CHECK(d.ran[0] == 0 && d.ran[1] == 1 && d.ran[2] == 2 && d.ran[3] == 3);
    check_output(out, "settings A");
    CHECK(!fs_is_dir(parts));

    /* the same run again: complete, nothing loaded or run */
    CHECK_EQ(run_demo(t, &o, "settings A", &d), TOOL_OK);
    CHECK(d.loads == 0 && d.runs == 0 && d.summaries == 0);

    /* other settings with --overwrite: run again and replace the file */
    o.overwrite = true;
    CHECK_EQ(run_demo(t, &o, "settings B", &d), TOOL_OK);
    CHECK(d.runs == 4 && d.summaries == 1);
    check_output(out, "settings B");

    /* assembled a part at a time (windows of 1 byte): the same rows */
    stage_set_assembly_bytes(1);
    CHECK_EQ(run_demo(t, &o, "settings C", &d), TOOL_OK);
    stage_set_assembly_bytes(8 << 20);
    check_output(out, "settings C");
    unlink(out);
}

/* An input's identity for run keys: path, created, run key, rows. */
static void test_identity(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/in.h5", dir);
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(h5io_commit(&f));
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    char *id = chk_input_identity(&f, "in.h5", 3);
    CHECK(strcmp(id, "in.h5@?#?/3") == 0); /* no provenance: "?" */
    CHECK(err_msg()[0] == '\0');
    free(id);
    h5io_close(&f);
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(h5io_set_attr_str(&f, "/", "created", "2026-01-02T03:04:05Z"));
    CHECK_OK(h5io_set_attr_str(&f, "/", "run_key", "00000000000000ff"));
    CHECK_OK(h5io_commit(&f));
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    id = chk_input_identity(&f, "x/in.h5", 12);
    CHECK(strcmp(id, "x/in.h5@2026-01-02T03:04:05Z#00000000000000ff/12") == 0);
    free(id);
    h5io_close(&f);
    unlink(path);
}

int main(int argc, char **argv)
{
    test_mpi_init(&argc, &argv);
    err_set_program("test_stage");
    tool_ctx t = {"test_stage", 0, 1, argc, argv, MPI_Wtime(), 0, 1};
    test_options(&t);
    char *dir = test_tmpdir("stage");
    test_run(&t, dir);
    test_identity(dir);
    rmdir(dir);
    free(dir);
    int rc = check_finish();
    test_mpi_finalize();
    return rc;
}
