/* test_mpi_h5io.c — io layer under MPI (run with 2 and 3 ranks).
 *
 * Every rank writes its own block of rows, of a different size per rank and
 * per column (some columns with one rank holding no rows), of every type,
 * fixed and ragged; the file is read back on every rank, both through the
 * whole communicator and through MPI_COMM_SELF, and compared row by row with
 * the rows it should hold. Rank 0 then writes the same global rows alone
 * (MPI_COMM_SELF) and the two files must hold identical datasets. Also:
 * the same columns written in rounds through streams (sizes known,
 * growing, each rank filling its own block) equal them too; provenance
 * round trip, schema refusals, commit/abandon leave no temporary file, read
 * errors name file and dataset, and a rank with bad rows makes every rank
 * fail instead of hanging. Counts are summed over ranks; rank 0
 * prints the total. */
#include "check.h"
#include "mpi_test.h"
#include "err.h"
#include "golden.h"
#include "h5io.h"
#include "h5io_testdata.h"
#include "libcheck.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_rank, g_size;
static char g_dir[512];

/* Rank r's block [*g0, *g0 + *n) of G rows: ranks get unequal shares
 * (weights 1, 2, 3, ...), and rank `empty` (if >= 0 and there is more than
 * one rank) gets none. */
static void split_rows(int64_t G, int size, int rank, int empty, int64_t *g0, int64_t *n)
{
    int64_t w_before = 0, w_total = 0;
    for (int r = 0; r < size; r++) {
        int64_t w = (size > 1 && r == empty) ? 0 : r + 1;
        if (r < rank) w_before += w;
        w_total += w;
    }
    int64_t w_mine = (size > 1 && rank == empty) ? 0 : rank + 1;
    *g0 = G * w_before / w_total;
    *n = G * (w_before + w_mine) / w_total - *g0;
}

typedef struct {
    const char *path;
    h5io_type type;
    int64_t rows;
    td_ragged_fn fn;
} ragged_spec;

typedef struct {
    const char *path;
    h5io_type type;
    int64_t rows;
    int width;
    td_column_fn fn;
} column_spec;

/* The big ones are over 64 KiB, so stored chunked + deflated (across rank
 * boundaries: chunks are shared by ranks). */
static const ragged_spec RAGGED[] = {
    {"/prompts/question", H5IO_TEXT, 23, td_text},
    {"/responses/tokens", H5IO_I32, 23, td_tokens},
    {"/images/jpeg", H5IO_U8, 17, td_bytes},
    {"/responses/token_logprobs", H5IO_F32, 23, td_logprobs},
    {"/empty/text", H5IO_TEXT, 0, td_text},
    {"/empty_rows/text", H5IO_TEXT, 1, td_text}, /* one row, "" (row 0) */
    {"/big/text", H5IO_TEXT, 40000, td_text},
    {"/big/tokens", H5IO_I32, 40000, td_tokens},
    {"/big/logprobs", H5IO_F32, 30000, td_logprobs},
    {"/big/bytes", H5IO_U8, 30000, td_bytes},
};
static const column_spec COLUMNS[] = {
    {"/c/i8", H5IO_I8, 23, 1, td_i8},
    {"/c/i32", H5IO_I32, 23, 1, td_i32},
    {"/c/i64", H5IO_I64, 23, 1, td_i64},
    {"/c/u8", H5IO_U8, 23, 1, td_u8},
    {"/c/u64", H5IO_U64, 23, 1, td_u64},
    {"/c/f32", H5IO_F32, 23, 1, td_f32},
    {"/c/f64", H5IO_F64, 23, 1, td_f64},
    {"/c/i64x3", H5IO_I64, 23, 3, td_i64_wide},
    {"/c/f32x4", H5IO_F32, 5, 4, td_f32_wide},
    {"/c/empty", H5IO_I64, 0, 1, td_i64},
    {"/c/empty_wide", H5IO_F32, 0, 4, td_f32_wide},
    {"/c/one", H5IO_F64, 1, 1, td_f64},
};
#define N_RAGGED (int)(sizeof RAGGED / sizeof RAGGED[0])
#define N_COLUMNS (int)(sizeof COLUMNS / sizeof COLUMNS[0])

/* Which rank gets no rows for column k: none, 0, 1, ... in turn. */
static int empty_rank(int k, int size) { return k % (size + 1) - 1; }

static char *in_dir(const char *name)
{
    size_t n = strlen(g_dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", g_dir, name);
    return p;
}

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

/* Write every column of the table, this rank's rows of each, on comm. */
static int write_all_columns(const char *path, MPI_Comm comm)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    h5io_file f;
    if (h5io_create(&f, path, comm)) return -1;
    int rc = 0;
    for (int k = 0; k < N_RAGGED && rc == 0; k++) {
        const ragged_spec *s = &RAGGED[k];
        int64_t g0, n, *lengths;
        void *data;
        split_rows(s->rows, size, rank, empty_rank(k, size), &g0, &n);
        td_build_ragged(s->fn, s->type, g0, n, &lengths, &data);
        rc = h5io_write_ragged(&f, s->path, s->type, n, lengths, data);
        free(lengths);
        free(data);
    }
    for (int k = 0; k < N_COLUMNS && rc == 0; k++) {
        const column_spec *s = &COLUMNS[k];
        int64_t g0, n;
        split_rows(s->rows, size, rank, empty_rank(k + 1, size), &g0, &n);
        void *data = td_build_column(s->fn, s->type, s->width, g0, n);
        rc = h5io_write_column(&f, s->path, s->type, n, s->width, n ? data : NULL);
        free(data);
    }
    if (rc) {
        h5io_abandon(&f);
        return -1;
    }
    return h5io_commit(&f);
}

typedef enum { STREAM_ROUNDS, STREAM_GROWING, STREAM_BLOCKS } stream_mode;

/* Rows [g0, g0 + n) of column k (ragged first, then fixed) put in one round. */
static int put_rows(h5io_stream *st, int k, int64_t g0, int64_t n)
{
    int rc;
    if (k < N_RAGGED) {
        const ragged_spec *rs = &RAGGED[k];
        int64_t *lengths;
        void *data;
        td_build_ragged(rs->fn, rs->type, g0, n, &lengths, &data);
        rc = h5io_stream_put(st, n, lengths, data);
        free(lengths);
        free(data);
    } else {
        const column_spec *cs = &COLUMNS[k - N_RAGGED];
        void *data = td_build_column(cs->fn, cs->type, cs->width, g0, n);
        rc = h5io_stream_put(st, n, NULL, data);
        free(data);
    }
    return rc;
}

/* Elements of rows [g0, g0 + n) of column k. */
static int64_t elems_of(int k, int64_t g0, int64_t n)
{
    if (k >= N_RAGGED) return n * COLUMNS[k - N_RAGGED].width;
    int64_t *lengths, e = 0;
    void *data;
    td_build_ragged(RAGGED[k].fn, RAGGED[k].type, g0, n, &lengths, &data);
    for (int64_t i = 0; i < n; i++) e += lengths[i];
    free(lengths);
    free(data);
    return e;
}

/* Blocks: each rank puts its block of write_all_columns in rank + 2 puts of
 * uneven sizes, then puts nothing until every rank is done. */
static int put_block_in_rounds(h5io_stream *st, int k, int rounds, int rank, int size)
{
    int64_t g0, n;
    int64_t G = k < N_RAGGED ? RAGGED[k].rows : COLUMNS[k - N_RAGGED].rows;
    split_rows(G, size, rank, empty_rank(k, size), &g0, &n);
    int rc = h5io_stream_blocks(st, n, elems_of(k, g0, n));
    int mine = rank + 2;
    for (int r = 0, at = 0; r < rounds && rc == 0; r++) {
        int64_t take = r >= mine        ? 0
                       : r == mine - 1 ? n - at
                                       : n * (r + 1) * (r + 1) / (mine * mine) - at;
        rc = put_rows(st, k, g0 + at, take);
        at += (int)take;
    }
    return rc;
}

/* The same columns written in rounds through streams: round k puts the
 * global rows [G*k/rounds, G*(k+1)/rounds), split over the ranks as above
 * (so some rounds give a rank nothing); growing streams learn their size
 * as they go; in blocks, each rank fills its own block at its own pace.
 * The datasets must equal write_all_columns'. */
static int stream_all_columns(const char *path, MPI_Comm comm, int rounds, stream_mode mode)
{
    bool growing = mode == STREAM_GROWING;
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    h5io_file f;
    if (h5io_create(&f, path, comm)) return -1;
    int rc = 0;
    for (int k = 0; k < N_RAGGED + N_COLUMNS && rc == 0; k++) {
        bool ragged = k < N_RAGGED;
        const ragged_spec *rs = ragged ? &RAGGED[k] : NULL;
        const column_spec *cs = ragged ? NULL : &COLUMNS[k - N_RAGGED];
        int64_t G = ragged ? rs->rows : cs->rows;
        h5io_stream st;
        if (ragged) {
            int64_t *lengths, elems = 0;
            void *data;
            td_build_ragged(rs->fn, rs->type, 0, G, &lengths, &data);
            for (int64_t i = 0; i < G; i++) elems += lengths[i];
            free(lengths);
            free(data);
            rc = h5io_stream_ragged(&f, rs->path, rs->type, growing ? H5IO_GROWING : G,
                                    growing ? H5IO_GROWING : elems, &st);
        } else {
            rc = h5io_stream_column(&f, cs->path, cs->type, cs->width, growing ? H5IO_GROWING : G,
                                    &st);
        }
        if (rc == 0 && mode == STREAM_BLOCKS)
            rc = put_block_in_rounds(&st, k, rounds, rank, size);
        for (int r = 0; r < rounds && rc == 0 && mode != STREAM_BLOCKS; r++) {
            int64_t lo = G * r / rounds, hi = G * (r + 1) / rounds, g0, n;
            split_rows(hi - lo, size, rank, empty_rank(k + r, size), &g0, &n);
            rc = put_rows(&st, k, lo + g0, n);
        }
        int end = h5io_stream_end(&st);
        if (rc == 0) rc = end;
    }
    if (rc) {
        h5io_abandon(&f);
        return -1;
    }
    return h5io_commit(&f);
}

/* Every row of every column, then a few sub-ranges, as this rank reads them. */
static void check_all_columns(h5io_file *f)
{
    for (int k = 0; k < N_RAGGED; k++) {
        const ragged_spec *s = &RAGGED[k];
        CHECK_EQ(h5io_rows(f, s->path), s->rows);
        int64_t bad = td_ragged_mismatches(f, s->path, s->fn, s->type, 0, s->rows);
        CHECK_MSG(bad == 0, "%s: %lld rows differ", s->path, (long long)bad);
        /* a window starting at a rank-dependent row */
        if (s->rows > 3) {
            int64_t r0 = (g_rank * 5) % (s->rows - 3);
            CHECK_EQ(td_ragged_mismatches(f, s->path, s->fn, s->type, r0, 3), 0);
        }
        CHECK_EQ(td_ragged_mismatches(f, s->path, s->fn, s->type, s->rows, 0), 0);
    }
    for (int k = 0; k < N_COLUMNS; k++) {
        const column_spec *s = &COLUMNS[k];
        CHECK_EQ(h5io_rows(f, s->path), s->rows);
        CHECK_EQ(h5io_column_width(f, s->path), s->width);
        int64_t bad = td_column_mismatches(f, s->path, s->fn, s->type, s->width, 0, s->rows);
        CHECK_MSG(bad == 0, "%s: %lld rows differ", s->path, (long long)bad);
        if (s->rows > 2)
            CHECK_EQ(td_column_mismatches(f, s->path, s->fn, s->type, s->width, s->rows - 2, 2), 0);
    }
    char *enc = h5io_get_attr_str(f, "/prompts/question", "encoding");
    CHECK(enc && strcmp(enc, "utf-8") == 0);
    free(enc);
}

static void test_write_and_read_back(void)
{
    char *path = in_dir("all.h5");
    CHECK_OK(write_all_columns(path, MPI_COMM_WORLD));

    h5io_file f;
    CHECK_OK(h5io_open(&f, path, MPI_COMM_WORLD));
    check_all_columns(&f);
    h5io_close(&f);

    /* every rank alone, all at once */
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    check_all_columns(&f);
    h5io_close(&f);

    /* compression where it pays: big text/tokens/floats chunked + deflate;
     * JPEG-like bytes and small data contiguous */
    if (g_rank == 0) {
        int chunked = -1, filters = -1;
        CHECK_OK(td_storage(path, "/big/text/data", &chunked, &filters));
        CHECK(chunked == 1 && filters >= 1);
        CHECK_OK(td_storage(path, "/big/tokens/data", &chunked, &filters));
        CHECK(chunked == 1 && filters == 2); /* shuffle + deflate */
        CHECK_OK(td_storage(path, "/big/bytes/data", &chunked, &filters));
        CHECK(chunked == 0 && filters == 0);
        CHECK_OK(td_storage(path, "/prompts/question/data", &chunked, &filters));
        CHECK(chunked == 0 && filters == 0);
        CHECK_OK(td_storage(path, "/big/text/offsets", &chunked, &filters));
        CHECK(chunked == 0);
    }
    free(path);
}

/* The same global rows written by one rank must give the same datasets. */
static void test_same_as_one_rank(void)
{
    char *all = in_dir("all.h5"), *one = in_dir("one.h5");
    if (g_rank == 0) {
        CHECK_OK(write_all_columns(one, MPI_COMM_SELF));
        char why[256] = "";
        int differ = td_compare_files(all, one, why, sizeof why);
        CHECK_MSG(differ == 0, "%d datasets differ between %d ranks and 1: %s", differ, g_size,
                  why);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(all);
    free(one);
}

/* Rounds through streams, with known sizes, growing, and in blocks: the
 * same datasets as one write per column; growing ones are chunked, known
 * ones stored as before. */
static void test_streams_in_rounds(void)
{
    char *all = in_dir("all.h5"), *known = in_dir("known.h5"), *grown = in_dir("grown.h5"),
         *blocks = in_dir("blocks.h5");
    CHECK_OK(stream_all_columns(known, MPI_COMM_WORLD, 7, STREAM_ROUNDS));
    CHECK_OK(stream_all_columns(grown, MPI_COMM_WORLD, 5, STREAM_GROWING));
    CHECK_OK(stream_all_columns(blocks, MPI_COMM_WORLD, g_size + 1, STREAM_BLOCKS));
    h5io_file f;
    CHECK_OK(h5io_open(&f, grown, MPI_COMM_SELF));
    check_all_columns(&f);
    h5io_close(&f);
    if (g_rank == 0) {
        char why[256] = "";
        int differ = td_compare_files(all, known, why, sizeof why);
        CHECK_MSG(differ == 0, "%d datasets differ, rounds with known sizes: %s", differ, why);
        differ = td_compare_files(all, grown, why, sizeof why);
        CHECK_MSG(differ == 0, "%d datasets differ, growing rounds: %s", differ, why);
        differ = td_compare_files(all, blocks, why, sizeof why);
        CHECK_MSG(differ == 0, "%d datasets differ, blocks: %s", differ, why);
        int chunked = -1, filters = -1;
        CHECK_OK(td_storage(known, "/big/bytes/data", &chunked, &filters));
        CHECK(chunked == 0 && filters == 0);
        CHECK_OK(td_storage(known, "/big/text/data", &chunked, &filters));
        CHECK(chunked == 1 && filters >= 1);
        CHECK_OK(td_storage(grown, "/big/bytes/data", &chunked, &filters));
        CHECK(chunked == 1 && filters == 0);
        CHECK_OK(td_storage(grown, "/prompts/question/data", &chunked, &filters));
        CHECK(chunked == 1 && filters >= 1);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(all);
    free(known);
    free(grown);
    free(blocks);
}

static void test_provenance(void)
{
    char *path = in_dir("prov.h5");
    char *argv[] = {"sima-gen", "--prompts", "in put.h5", "it's", "--seed=7", NULL};
    const char *inputs[] = {"in put.h5", "/data/model"};
    h5io_provenance p = {.tool = "sima-gen", .schema = "sima.responses", .schema_version = 1,
                         .argc = 5, .argv = argv, .inputs = inputs, .n_inputs = 2,
                         .model_dir = "/data/model", .model_hash = "0123456789abcdef",
                         .seed = 7, .run_key = "k-42"};
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_WORLD));
    CHECK_OK(h5io_write_provenance(&f, &p));
    CHECK_OK(h5io_set_attr_f64(&f, "/", "temperature", 0.8));
    /* a rank-dependent value: rank 0's is the one kept */
    CHECK_OK(h5io_set_attr_i64(&f, "/", "rank_value", 100 + g_rank));
    CHECK_OK(h5io_commit(&f));

    CHECK_OK(h5io_open(&f, path, MPI_COMM_WORLD));
    const char *want[][2] = {{"schema", "sima.responses"}, {"tool", "sima-gen"},
                             {"version", SIMA_VERSION},
                             {"command_line", "sima-gen --prompts 'in put.h5' 'it'\\''s' --seed=7"},
                             {"inputs", "in put.h5\n/data/model"}, {"model", "/data/model"},
                             {"model_hash", "0123456789abcdef"}, {"run_key", "k-42"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *v = h5io_get_attr_str(&f, "/", want[i][0]);
        CHECK_MSG(v && strcmp(v, want[i][1]) == 0, "%s: got \"%s\", want \"%s\"", want[i][0],
                  v ? v : "(null)", want[i][1]);
        free(v);
    }
    int64_t version = 0, seed = 0, rv = 0;
    double temp = 0;
    CHECK_OK(h5io_get_attr_i64(&f, "/", "schema_version", &version));
    CHECK_EQ(version, 1);
    CHECK_OK(h5io_get_attr_i64(&f, "/", "seed", &seed));
    CHECK_EQ(seed, 7);
    CHECK_OK(h5io_get_attr_f64(&f, "/", "temperature", &temp));
    CHECK(temp == 0.8);
    CHECK_OK(h5io_get_attr_i64(&f, "/", "rank_value", &rv));
    CHECK_EQ(rv, 100);
    char *created = h5io_get_attr_str(&f, "/", "created");
    /* 2026-11-26T09:14:03Z */
    CHECK(created && strlen(created) == 20 && created[4] == '-' && created[10] == 'T' &&
          created[19] == 'Z');
    /* identical on every rank */
    char mine[32] = "", first[32] = "";
    snprintf(mine, sizeof mine, "%s", created ? created : "");
    memcpy(first, mine, sizeof first);
    MPI_Bcast(first, sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD);
    CHECK(strcmp(first, mine) == 0);
    free(created);
    CHECK_OK(h5io_require_schema(&f, "sima.responses", 1));
    h5io_close(&f);
    free(path);
}

static void test_schema_refusals(void)
{
    char *path = in_dir("schema.h5");
    char *bare = in_dir("bare.h5");
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_WORLD));
    CHECK_OK(h5io_set_attr_str(&f, "/", "schema", "sima.prompts"));
    CHECK_OK(h5io_set_attr_i64(&f, "/", "schema_version", 3));
    CHECK_OK(h5io_commit(&f));
    CHECK_OK(h5io_create(&f, bare, MPI_COMM_WORLD));
    CHECK_OK(h5io_commit(&f));

    char want[1024];
    CHECK_OK(h5io_open(&f, path, MPI_COMM_WORLD));
    snprintf(want, sizeof want, "%s: is a sima.prompts file, expected sima.responses", path);
    CHECK_FAILS_WITH(h5io_require_schema(&f, "sima.responses", 1), want);
    snprintf(want, sizeof want,
             "%s: sima.prompts version 3 is newer than this sima supports (1)", path);
    CHECK_FAILS_WITH(h5io_require_schema(&f, "sima.prompts", 1), want);
    CHECK_OK(h5io_require_schema(&f, "sima.prompts", 3));
    h5io_close(&f);

    CHECK_OK(h5io_open(&f, bare, MPI_COMM_WORLD));
    snprintf(want, sizeof want, "%s: not a sima file (no schema attribute)", bare);
    CHECK_FAILS_WITH(h5io_require_schema(&f, "sima.prompts", 1), want);
    h5io_close(&f);
    free(path);
    free(bare);
}

static void test_commit_and_abandon(void)
{
    char *path = in_dir("kept.h5"), *gone = in_dir("gone.h5");
    char tmp[1024];
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_WORLD));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(strcmp(f.tmp, tmp) == 0);
    CHECK(file_exists(tmp) && !file_exists(path));
    int64_t one = g_rank;
    CHECK_OK(h5io_write_column(&f, "/x", H5IO_I64, 1, 1, &one));
    CHECK_OK(h5io_commit(&f));
    CHECK(file_exists(path) && !file_exists(tmp));
    CHECK(f.path == NULL && f.tmp == NULL);

    /* a rerun over a killed run's leftover temporary file */
    MPI_Barrier(MPI_COMM_WORLD); /* every rank has looked before rank 0 writes it */
    if (g_rank == 0) {
        FILE *fp = fopen(tmp, "w");
        fputs("leftover", fp);
        fclose(fp);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(h5io_create(&f, path, MPI_COMM_WORLD));
    CHECK_OK(h5io_write_column(&f, "/y", H5IO_I64, 1, 1, &one));
    CHECK_OK(h5io_commit(&f));
    CHECK(!file_exists(tmp));

    CHECK_OK(h5io_create(&f, gone, MPI_COMM_WORLD));
    snprintf(tmp, sizeof tmp, "%s.tmp", gone);
    CHECK_OK(h5io_write_column(&f, "/x", H5IO_I64, 1, 1, &one));
    h5io_abandon(&f);
    CHECK(!file_exists(gone) && !file_exists(tmp));

    /* close on a created file that was never committed abandons it */
    CHECK_OK(h5io_create(&f, gone, MPI_COMM_WORLD));
    h5io_close(&f);
    CHECK(!file_exists(gone) && !file_exists(tmp));
    free(path);
    free(gone);
}

static void test_read_errors(void)
{
    char *path = in_dir("all.h5"), *missing = in_dir("missing.h5");
    char want[1024];
    h5io_file f;
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
    CHECK_FAILS_WITH(h5io_open(&f, missing, MPI_COMM_WORLD), want);

    CHECK_OK(h5io_open(&f, path, MPI_COMM_WORLD));
    int64_t off[8];
    void *data = NULL;
    int64_t buf[64];
    snprintf(want, sizeof want, "%s: no dataset /prompts/answer", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/prompts/answer", H5IO_TEXT, 0, 1, off, &data), want);
    CHECK_FAILS_WITH((int)h5io_rows(&f, "/prompts/answer"), want);
    snprintf(want, sizeof want, "%s: no dataset /nothing/here", path);
    CHECK_FAILS_WITH(h5io_read_column(&f, "/nothing/here", H5IO_I64, 0, 1, buf), want);
    snprintf(want, sizeof want, "%s: /c/i32 is int32, expected int64", path);
    CHECK_FAILS_WITH(h5io_read_column(&f, "/c/i32", H5IO_I64, 0, 1, buf), want);
    snprintf(want, sizeof want, "%s: /responses/tokens/data is int32, expected float32", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/responses/tokens", H5IO_F32, 0, 1, off, &data), want);
    snprintf(want, sizeof want, "%s: /c/i64: rows [20, 30) out of range (23 rows)", path);
    CHECK_FAILS_WITH(h5io_read_column(&f, "/c/i64", H5IO_I64, 20, 10, buf), want);
    snprintf(want, sizeof want, "%s: /prompts/question: rows [-1, 1) out of range (23 rows)",
             path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/prompts/question", H5IO_TEXT, -1, 2, off, &data),
                     want);
    snprintf(want, sizeof want, "%s: /c/i64 is a column, not a ragged column", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/c/i64", H5IO_I64, 0, 1, off, &data), want);
    snprintf(want, sizeof want, "%s: /prompts/question is not a dataset", path);
    CHECK_FAILS_WITH(h5io_read_column(&f, "/prompts/question", H5IO_U8, 0, 1, buf), want);
    CHECK(data == NULL);
    h5io_close(&f);
    free(path);
    free(missing);
}

/* One rank's rows are invalid: every rank returns an error (no hang), and
 * the file can still be abandoned collectively. */
static void test_bad_rows_on_one_rank(void)
{
    char *path = in_dir("bad.h5");
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_WORLD));
    int64_t lengths[2] = {3, g_rank == g_size - 1 ? -1 : 2};
    char text[] = "abcde";
    err_clear();
    int rc = h5io_write_ragged(&f, "/t", H5IO_TEXT, 2, lengths, text);
    CHECK(rc == -1);
    if (g_rank == g_size - 1)
        CHECK_MSG(strstr(err_msg(), "/t: row 1 has negative length -1"), "got \"%s\"", err_msg());
    else
        CHECK_MSG(strstr(err_msg(), "/t: not written: rows rejected on another rank"),
                  "got \"%s\"", err_msg());
    /* the file is still usable collectively */
    int64_t good[2] = {3, 2};
    CHECK_OK(h5io_write_ragged(&f, "/t", H5IO_TEXT, 2, good, text));
    h5io_abandon(&f);
    CHECK(!file_exists(path));
    free(path);
}

static void remove_outputs(void)
{
    static const char *names[] = {"all.h5",  "one.h5",    "known.h5", "grown.h5", "blocks.h5",
                                  "prov.h5", "schema.h5", "bare.h5",  "kept.h5"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *p = in_dir(names[i]);
        unlink(p);
        free(p);
    }
    rmdir(g_dir);
}

int main(int argc, char **argv)
{
    MUST_MPI(MPI_Init(&argc, &argv));
    MUST_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank));
    MUST_MPI(MPI_Comm_size(MPI_COMM_WORLD, &g_size));
    err_set_program("test_mpi_h5io");
    err_set_rank(g_rank);
    if (g_rank == 0) {
        char *d = test_tmpdir("h5io-mpi");
        snprintf(g_dir, sizeof g_dir, "%s", d);
        free(d);
    }
    MPI_Bcast(g_dir, sizeof g_dir, MPI_CHAR, 0, MPI_COMM_WORLD);

    test_write_and_read_back();
    test_same_as_one_rank();
    test_streams_in_rounds();
    test_provenance();
    test_schema_refusals();
    test_commit_and_abandon();
    test_read_errors();
    test_bad_rows_on_one_rank();

    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) remove_outputs();
    /* every file, dataset, group and attribute handle was closed */
    CHECK_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);

    return test_mpi_finish_ranks();
}
