/* test_mpi_stage.c — the stage driver (io/stage.h) under MPI (2 and 3
 * ranks): a made-up schema with a fixed and two ragged columns (empty rows
 * among them) is run through stage_run, and the output must hold every item
 * in order with the right elements, and the tally must have seen every row
 * once: assembled in one window per rank, a part at a time (so the ranks
 * need different numbers of rounds), and with fewer chunks than ranks (a
 * rank assembling nothing). */
#include "check.h"
#include "mpi_test.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "libcheck.h"
#include "log.h"
#include "stage.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tool_ctx g_t;
static char g_dir[512];

/* Row of item i: item = i, text = the first i % 4 letters of "abc",
 * tokens = i % 3 copies of i. */
typedef struct {
    int64_t n, cap;
    int64_t *item;
    cols_ragged text, tokens;
} demo_rows;

static const cols_col DEMO_COLS[] = {
    COLS_FIX(demo_rows, item, H5IO_I64),
    COLS_OFF(demo_rows, "text", H5IO_TEXT, text),
    COLS_OFF(demo_rows, "tokens", H5IO_I32, tokens),
};
static const cols_table DEMO = {"/demo", DEMO_COLS, 3, offsetof(demo_rows, n),
                                offsetof(demo_rows, cap), sizeof(demo_rows)};

static int64_t text_len(int64_t i) { return i % 4 > 3 ? 3 : i % 4; }

static void demo_push(demo_rows *r, int64_t i)
{
    int32_t tok[2] = {(int32_t)i, (int32_t)i};
    cols_grow_rows(&DEMO, r, r->n + 1);
    r->item[r->n] = i;
    cols_ragged_push(&r->text, r->n, "abc", text_len(i), 1);
    cols_ragged_push(&r->tokens, r->n, tok, i % 3, sizeof(int32_t));
    r->n++;
}

static int64_t g_tallied;

static int demo_run_chunk(void *ctx, stage *s, int64_t chunk, bool *stop)
{
    (void)ctx;
    (void)stop;
    int64_t first, n;
    chk_items(&s->plan, chunk, &first, &n);
    demo_rows rows = {0};
    for (int64_t i = first; i < first + n; i++) demo_push(&rows, i);
    int rc = stage_commit_part(s, chunk, &rows);
    chk_progress_add(&s->progress, n, n);
    cols_free(&DEMO, &rows);
    return rc;
}

static void demo_announce(void *ctx, const stage *s) { (void)ctx, (void)s; }
static void demo_summary(void *ctx, const stage *s) { (void)ctx, (void)s; }
static void demo_tally(void *ctx, const void *rows)
{
    (void)ctx;
    g_tallied += ((const demo_rows *)rows)->n;
}

static int demo_write_attrs(void *ctx, stage *s, h5io_file *f)
{
    (void)ctx;
    (void)s;
    int64_t all = g_tallied;
    MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    return h5io_set_attr_i64(f, "/", "tallied", all);
}

static const stage_ops DEMO_OPS = {NULL, demo_announce, demo_run_chunk, demo_write_attrs,
                                   demo_summary, demo_tally};

/* Run the stage into dir/NAME: n items in chunks of `chunk`. */
static void run(const char *name, int64_t n, int chunk, const char *settings)
{
    char out[600];
    snprintf(out, sizeof out, "%s/%s", g_dir, name);
    stage_opts o = {"model", NULL, out, "pad", chunk, true, true, 1e6};
    const char *inputs[] = {"in.h5"}, *keys[] = {settings};
    stage_spec spec = {&o, &DEMO, "demo.items", 1, inputs, 1, "0123456789abcdef", -1, n, keys, 1,
                       "items", "tokens/s"};
    stage st;
    g_tallied = 0;
    CHECK_EQ(stage_run(&g_t, &spec, &DEMO_OPS, NULL, &st), TOOL_OK);
    stage_free(&st);
}

/* Every rank reads the whole output back and checks every row. */
static void check_output(const char *name, int64_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    h5io_file f;
    demo_rows back;
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    CHECK_OK(cols_read(&f, &DEMO, &back));
    int64_t tallied = -1;
    CHECK_OK(h5io_get_attr_i64(&f, "/", "tallied", &tallied));
    h5io_close(&f);
    CHECK_EQ(back.n, n);
    CHECK_EQ(tallied, n);
    int64_t bad = 0;
    for (int64_t i = 0; i < back.n && i < n; i++) {
        const int32_t *tok = (const int32_t *)back.tokens.data + back.tokens.off[i];
        const char *text = (const char *)back.text.data + back.text.off[i];
        bool ok = back.item[i] == i &&
                  back.text.off[i + 1] - back.text.off[i] == text_len(i) &&
                  memcmp(text, "abc", (size_t)text_len(i)) == 0 &&
                  back.tokens.off[i + 1] - back.tokens.off[i] == i % 3;
        for (int64_t k = 0; ok && k < i % 3; k++) ok = tok[k] == i;
        bad += !ok;
    }
    CHECK_MSG(bad == 0, "%s: %lld rows wrong", name, (long long)bad);
    cols_free(&DEMO, &back);
    snprintf(path, sizeof path, "%s/%s.parts", g_dir, name);
    MPI_Barrier(MPI_COMM_WORLD); /* rank 0 removes the parts after the commit */
    CHECK(!fs_is_dir(path));
}

int main(int argc, char **argv)
{
    MUST_MPI(MPI_Init(&argc, &argv));
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    err_set_program("test_mpi_stage");
    err_set_rank(rank);
    log_set_level(LOG_WARN);
    g_t = (tool_ctx){"test_mpi_stage", rank, size, argc, argv, MPI_Wtime(), 0, 1};
    if (rank == 0) {
        char *d = test_tmpdir("stage-mpi");
        snprintf(g_dir, sizeof g_dir, "%s", d);
        free(d);
    }
    MPI_Bcast(g_dir, sizeof g_dir, MPI_CHAR, 0, MPI_COMM_WORLD);

    /* 25 items in 13 chunks: blocks of 6 and 7 (2 ranks), 4, 4 and 5 (3) */
    run("one.h5", 25, 2, "one window");
    check_output("one.h5", 25);
    stage_set_assembly_bytes(1);
    run("parts.h5", 25, 2, "a part at a time");
    check_output("parts.h5", 25);
    /* 3 items in 2 chunks: with 3 ranks, rank 0 assembles nothing */
    run("few.h5", 3, 2, "few");
    check_output("few.h5", 3);
    stage_set_assembly_bytes(8 << 20);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        const char *names[] = {"one.h5", "parts.h5", "few.h5"};
        for (int i = 0; i < 3; i++) {
            char p[600];
            snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
            unlink(p);
        }
        rmdir(g_dir);
    }

    return test_mpi_finish_ranks();
}
