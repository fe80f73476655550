/* test_h5io.c — io layer, one process: round trips of every type, every
 * row range of a ragged column, storage choices seen through plain HDF5,
 * streams written in rounds, and the bad inputs a reader meets (garbage,
 * truncated and missing files, missing or mistyped datasets, offsets past
 * the data, decreasing, not starting at 0 or not ending at the data's
 * size, wrong schema), plus the model hash. */
#include "check.h"
#include "mpi_test.h"
#include "err.h"
#include "hash.h"
#include "fs.h"
#include "golden.h"
#include "h5io.h"
#include "h5io_testdata.h"
#include "h5util.h"
#include "libcheck.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* MPI starts and ends through tests/util/mpi_test.h (LeakSanitizer-aware). */
static char *g_dir;

static char *in_dir(const char *name)
{
    size_t n = strlen(g_dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", g_dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) DIE("cannot write %s", path);
    fwrite(data, 1, n, fp);
    fclose(fp);
}

/* A small file of every kind of column, rows 0..n-1; `deflate` < 0 keeps
 * the default. */
static int write_sample(const char *path, int64_t n_text, int deflate)
{
    h5io_file f;
    if (h5io_create(&f, path, MPI_COMM_SELF)) return -1;
    if (deflate >= 0) h5io_set_deflate(&f, deflate);
    int64_t *len;
    void *data;
    td_build_ragged(td_text, H5IO_TEXT, 0, n_text, &len, &data);
    int rc = h5io_write_ragged(&f, "/prompts/question", H5IO_TEXT, n_text, len, data);
    free(len);
    free(data);
    td_build_ragged(td_tokens, H5IO_I32, 0, 9, &len, &data);
    if (!rc) rc = h5io_write_ragged(&f, "/responses/tokens", H5IO_I32, 9, len, data);
    free(len);
    free(data);
    void *col = td_build_column(td_i64_wide, H5IO_I64, 3, 0, 9);
    if (!rc) rc = h5io_write_column(&f, "/c/i64x3", H5IO_I64, 9, 3, col);
    free(col);
    col = td_build_column(td_i32, H5IO_I32, 1, 0, 9);
    if (!rc) rc = h5io_write_column(&f, "/c/i32", H5IO_I32, 9, 1, col);
    free(col);
    if (!rc) rc = h5io_set_attr_str(&f, "/", "schema", "sima.prompts");
    if (!rc) rc = h5io_set_attr_i64(&f, "/", "schema_version", 1);
    if (rc) {
        h5io_abandon(&f);
        return -1;
    }
    return h5io_commit(&f);
}

static void test_round_trip_every_type(void)
{
    char *path = in_dir("types.h5");
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_WORLD));
    struct { const char *p; h5io_type t; td_ragged_fn fn; int64_t n; } rag[] = {
        {"/r/text", H5IO_TEXT, td_text, 31}, {"/r/tokens", H5IO_I32, td_tokens, 31},
        {"/r/bytes", H5IO_U8, td_bytes, 31}, {"/r/lp", H5IO_F32, td_logprobs, 31},
        {"/r/none", H5IO_TEXT, td_text, 0}};
    struct { const char *p; h5io_type t; td_column_fn fn; int w; int64_t n; } col[] = {
        {"/c/i8", H5IO_I8, td_i8, 1, 7},     {"/c/i32", H5IO_I32, td_i32, 1, 7},
        {"/c/i64", H5IO_I64, td_i64, 1, 7},  {"/c/u8", H5IO_U8, td_u8, 1, 7},
        {"/c/u64", H5IO_U64, td_u64, 1, 7},  {"/c/f32", H5IO_F32, td_f32, 1, 7},
        {"/c/f64", H5IO_F64, td_f64, 1, 7},  {"/c/w3", H5IO_I64, td_i64_wide, 3, 7},
        {"/c/w4", H5IO_F32, td_f32_wide, 4, 7}, {"/c/empty", H5IO_I32, td_i32, 1, 0}};
    for (size_t i = 0; i < sizeof rag / sizeof rag[0]; i++) {
        int64_t *len;
        void *data;
        td_build_ragged(rag[i].fn, rag[i].t, 0, rag[i].n, &len, &data);
        CHECK_OK(h5io_write_ragged(&f, rag[i].p, rag[i].t, rag[i].n, len, data));
        free(len);
        free(data);
    }
    for (size_t i = 0; i < sizeof col / sizeof col[0]; i++) {
        void *data = td_build_column(col[i].fn, col[i].t, col[i].w, 0, col[i].n);
        CHECK_OK(h5io_write_column(&f, col[i].p, col[i].t, col[i].n, col[i].w, data));
        free(data);
    }
    CHECK_OK(h5io_group(&f, "/a/b"));
    CHECK_OK(h5io_group(&f, "/a/b")); /* already there: fine */
    CHECK_FAILS_WITH(h5io_group(&f, "/c/i8"), "/c/i8 exists and is not a group");
    CHECK_OK(h5io_commit(&f));

    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    for (size_t i = 0; i < sizeof rag / sizeof rag[0]; i++) {
        CHECK_EQ(h5io_rows(&f, rag[i].p), rag[i].n);
        CHECK_EQ(td_ragged_mismatches(&f, rag[i].p, rag[i].fn, rag[i].t, 0, rag[i].n), 0);
    }
    for (size_t i = 0; i < sizeof col / sizeof col[0]; i++) {
        CHECK_EQ(h5io_rows(&f, col[i].p), col[i].n);
        CHECK_EQ(h5io_column_width(&f, col[i].p), col[i].w);
        CHECK_EQ(td_column_mismatches(&f, col[i].p, col[i].fn, col[i].t, col[i].w, 0, col[i].n), 0);
    }
    CHECK(h5io_exists(&f, "/a/b") && h5io_exists(&f, "/r/text/offsets") && h5io_exists(&f, "/"));
    CHECK(!h5io_exists(&f, "/a/b/c") && !h5io_exists(&f, "/zz/y") && !h5io_exists(&f, "/c/i8/x"));

    /* one text row: NUL after its bytes, offsets rebased to 0 */
    int64_t off[3];
    void *data = NULL;
    CHECK_OK(h5io_read_ragged(&f, "/r/text", H5IO_TEXT, 2, 1, off, &data));
    char want[TD_MAX_ROW_BYTES + 1];
    int64_t n = td_text(2, want);
    want[n] = '\0';
    CHECK(off[0] == 0 && off[1] == n && data && strcmp(data, want) == 0);
    CHECK(strstr(data, "🙂") || strstr(data, "世界") || strstr(data, "héllo"));
    free(data);
    /* zero rows: offsets[0] = 0 and a buffer all the same */
    data = NULL;
    off[0] = 99;
    CHECK_OK(h5io_read_ragged(&f, "/r/none", H5IO_TEXT, 0, 0, off, &data));
    CHECK(off[0] == 0 && data != NULL && ((char *)data)[0] == '\0');
    free(data);
    h5io_close(&f);
    CHECK(f.path == NULL);
    unlink(path);
    free(path);
}

/* Big ragged data is chunked + deflated, and plain HDF5 (serial driver,
 * no sima code) reads it back; deflate 0 keeps it contiguous. */
static void test_compression_storage(void)
{
    char *big = in_dir("big.h5"), *plain = in_dir("plain.h5");
    CHECK_OK(write_sample(big, 20000, -1));
    CHECK_OK(write_sample(plain, 20000, 0));
    int chunked = -1, filters = -1;
    CHECK_OK(td_storage(big, "/prompts/question/data", &chunked, &filters));
    CHECK(chunked == 1 && filters == 1);
    CHECK_OK(td_storage(plain, "/prompts/question/data", &chunked, &filters));
    CHECK(chunked == 0 && filters == 0);
    CHECK_OK(td_storage(big, "/responses/tokens/data", &chunked, &filters)); /* small */
    CHECK(chunked == 0);
    struct stat sb, sp;
    CHECK(stat(big, &sb) == 0 && stat(plain, &sp) == 0 && sb.st_size < sp.st_size / 2);

    char why[256] = "";
    CHECK_MSG(td_compare_files(big, plain, why, sizeof why) == 0, "%s", why);
    h5io_file f;
    CHECK_OK(h5io_open(&f, big, MPI_COMM_SELF));
    CHECK_EQ(td_ragged_mismatches(&f, "/prompts/question", td_text, H5IO_TEXT, 0, 20000), 0);
    CHECK_EQ(td_ragged_mismatches(&f, "/prompts/question", td_text, H5IO_TEXT, 12345, 7), 0);
    h5io_close(&f);

    /* the comparison itself notices a difference */
    char *other = in_dir("other.h5");
    CHECK_OK(write_sample(other, 19999, -1));
    CHECK(td_compare_files(big, other, why, sizeof why) > 0);
    CHECK(strstr(why, "prompts/question") != NULL);
    unlink(big);
    unlink(plain);
    unlink(other);
    free(big);
    free(plain);
    free(other);
}

static void test_bad_files(void)
{
    char *garbage = in_dir("garbage.h5"), *empty = in_dir("empty.h5"),
         *trunc = in_dir("trunc.h5"), *good = in_dir("good.h5"), *missing = in_dir("no.h5");
    char want[1024];
    h5io_file f;
    write_bytes(garbage, "\xff\xd8\xff\xe0 this is a JPEG, not HDF5", 30);
    snprintf(want, sizeof want, "%s: not an HDF5 file", garbage);
    CHECK_FAILS_WITH(h5io_open(&f, garbage, MPI_COMM_SELF), want);
    CHECK(f.path == NULL);
    write_bytes(empty, "", 0);
    snprintf(want, sizeof want, "%s: not an HDF5 file", empty);
    CHECK_FAILS_WITH(h5io_open(&f, empty, MPI_COMM_SELF), want);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
    CHECK_FAILS_WITH(h5io_open(&f, missing, MPI_COMM_SELF), want);
    snprintf(want, sizeof want, "%s: is a directory", g_dir);
    CHECK_FAILS_WITH(h5io_open(&f, g_dir, MPI_COMM_WORLD), want);

    /* a file cut short (a copy interrupted half-way) */
    CHECK_OK(write_sample(good, 3000, -1));
    char *buf;
    size_t len;
    CHECK_OK(fs_read_all(good, &buf, &len));
    write_bytes(trunc, buf, len / 2);
    free(buf);
    snprintf(want, sizeof want, "%s: cannot open: ", trunc);
    CHECK_FAILS_WITH(h5io_open(&f, trunc, MPI_COMM_SELF), want);
    CHECK_MSG(strstr(err_msg(), "truncated file"), "reason: \"%s\"", err_msg());

    /* cannot create in a missing folder: the message names the output */
    char *nowhere = in_dir("no/such/dir/out.h5"), *under_file = in_dir("garbage.h5/out.h5");
    snprintf(want, sizeof want, "%s: cannot create: folder %s/no/such/dir: No such file or directory",
             nowhere, g_dir);
    CHECK_FAILS_WITH(h5io_create(&f, nowhere, MPI_COMM_SELF), want);
    CHECK(f.path == NULL);
    snprintf(want, sizeof want, "%s: cannot create: %s is not a folder", under_file, garbage);
    CHECK_FAILS_WITH(h5io_create(&f, under_file, MPI_COMM_WORLD), want);
    free(under_file);
    /* the folder is there but the file cannot be made (a folder is in the
     * way of the temporary name): HDF5's reason */
    char *blocked = in_dir("blocked.h5"), *blocker = in_dir("blocked.h5.tmp");
    mkdir(blocker, 0755);
    snprintf(want, sizeof want, "%s: cannot create %s: ", blocked, blocker);
    CHECK_FAILS_WITH(h5io_create(&f, blocked, MPI_COMM_SELF), want);
    CHECK_MSG(strlen(err_msg()) > strlen(want) + 3, "no reason: \"%s\"", err_msg());
    rmdir(blocker);
    free(blocked);
    free(blocker);

    const char *files[] = {garbage, empty, trunc, good};
    for (int i = 0; i < 4; i++) unlink(files[i]);
    free(garbage);
    free(empty);
    free(trunc);
    free(good);
    free(missing);
    free(nowhere);
}

static void test_read_errors(void)
{
    char *path = in_dir("errs.h5");
    CHECK_OK(write_sample(path, 5, -1));
    char want[1024];
    h5io_file f;
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    int64_t buf[64], off[8];
    void *data = NULL;
    snprintf(want, sizeof want, "%s: no dataset /prompts/answer", path);
    CHECK_FAILS_WITH((int)h5io_rows(&f, "/prompts/answer"), want);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/prompts/answer", H5IO_TEXT, 0, 1, off, &data), want);
    snprintf(want, sizeof want, "%s: no dataset /c/nothing", path);
    CHECK_FAILS_WITH(h5io_read_column(&f, "/c/nothing", H5IO_I32, 0, 1, buf), want);
    CHECK_FAILS_WITH(h5io_column_width(&f, "/c/nothing"), want);
    snprintf(want, sizeof want, "%s: /c/i32 is int32, expected uint64", path);
    CHECK_FAILS_WITH(h5io_read_column(&f, "/c/i32", H5IO_U64, 0, 1, buf), want);
    snprintf(want, sizeof want, "%s: /c/i64x3 is int64, expected float64", path);
    CHECK_FAILS_WITH(h5io_read_column(&f, "/c/i64x3", H5IO_F64, 0, 1, buf), want);
    snprintf(want, sizeof want, "%s: /prompts/question/data is uint8, expected int32", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/prompts/question", H5IO_I32, 0, 1, off, &data), want);
    snprintf(want, sizeof want, "%s: /c/i32: rows [8, 10) out of range (9 rows)", path);
    CHECK_FAILS_WITH(h5io_read_column(&f, "/c/i32", H5IO_I32, 8, 2, buf), want);
    snprintf(want, sizeof want, "%s: /prompts/question: rows [0, 6) out of range (5 rows)", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/prompts/question", H5IO_TEXT, 0, 6, off, &data), want);
    snprintf(want, sizeof want, "%s: /c/i32 is a column, not a ragged column", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/c/i32", H5IO_I32, 0, 1, off, &data), want);
    snprintf(want, sizeof want, "%s: /prompts is not a ragged column", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/prompts", H5IO_TEXT, 0, 1, off, &data), want);
    CHECK_FAILS_WITH(h5io_read_column(&f, "/prompts/question", H5IO_TEXT, 0, 1, buf),
                     "text (uint8) is not a column type");
    CHECK(data == NULL);
    /* writes to a file opened for reading */
    int64_t one = 1;
    CHECK_FAILS_WITH(h5io_write_column(&f, "/new", H5IO_I64, 1, 1, &one), "opened read-only");
    CHECK_FAILS_WITH(h5io_set_attr_i64(&f, "/", "x", 1), "opened read-only");
    CHECK_FAILS_WITH(h5io_commit(&f), "opened read-only");
    h5io_close(&f);
    unlink(path);
    free(path);
}

/* Every row range of a ragged column with empty rows (every 5th) and of a
 * column: first, last, empty, whole and everything between; exactly the
 * rows asked for come back. */
static void test_row_ranges(void)
{
    char *path = in_dir("ranges.h5");
    CHECK_OK(write_sample(path, 31, -1));
    h5io_file f;
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    int64_t bad = 0, reads = 0;
    for (int64_t r0 = 0; r0 <= 31; r0++)
        for (int64_t n = 0; r0 + n <= 31; n++, reads++)
            bad += td_ragged_mismatches(&f, "/prompts/question", td_text, H5IO_TEXT, r0, n) != 0;
    for (int64_t r0 = 0; r0 <= 9; r0++)
        for (int64_t n = 0; r0 + n <= 9; n++, reads++) {
            bad += td_ragged_mismatches(&f, "/responses/tokens", td_tokens, H5IO_I32, r0, n) != 0;
            bad += td_column_mismatches(&f, "/c/i64x3", td_i64_wide, H5IO_I64, 3, r0, n) != 0;
        }
    CHECK_MSG(bad == 0, "%lld of %lld range reads wrong", (long long)bad, (long long)reads);
    h5io_close(&f);
    unlink(path);
    free(path);
}

/* Streams: rows beyond the announced size are refused on every rank
 * before anything is written; an end short of it says so. */
static void test_stream_errors(void)
{
    char *path = in_dir("stream.h5");
    h5io_file f;
    h5io_stream s;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    int64_t len[3] = {2, 0, 2}, neg[2] = {1, -2};
    CHECK_OK(h5io_stream_ragged(&f, "/r", H5IO_TEXT, 5, 8, &s));
    CHECK_OK(h5io_stream_put(&s, 3, len, "abcd"));
    CHECK_FAILS_WITH(h5io_stream_put(&s, 3, len, "abcd"), "stream.h5: /r: more rows than "
                     "announced (6 rows, 8 elements; announced 5, 8)");
    CHECK_FAILS_WITH(h5io_stream_put(&s, 2, neg, "ab"), "/r: row 1 has negative length -2");
    CHECK_FAILS_WITH(h5io_stream_put(&s, 1, len, NULL), "/r: no data for 2 elements");
    CHECK_EQ(s.rows, 3);
    CHECK_FAILS_WITH(h5io_stream_end(&s), "stream.h5: /r: 3 of 5 rows written");
    CHECK_FAILS_WITH(h5io_stream_ragged(&f, "/r", H5IO_TEXT, 1, 1, &s), "/r already exists");
    CHECK(h5io_stream_end(&s) == -1); /* after a failed start: harmless */
    CHECK_FAILS_WITH(h5io_stream_ragged(&f, "/g", H5IO_TEXT, H5IO_GROWING, 4, &s), "bad size");
    h5io_stream_end(&s);
    CHECK_FAILS_WITH(h5io_stream_column(&f, "/t", H5IO_TEXT, 1, 2, &s),
                     "stored as a ragged column");
    h5io_stream_end(&s);
    CHECK_FAILS_WITH(h5io_stream_column(&f, "/w", H5IO_I64, 0, 2, &s), "width 0 < 1");
    h5io_stream_end(&s);
    /* a growing column takes any number of rows */
    int64_t v[4] = {1, 2, 3, 4};
    CHECK_OK(h5io_stream_column(&f, "/c", H5IO_I64, 2, H5IO_GROWING, &s));
    CHECK_OK(h5io_stream_put(&s, 1, NULL, v));
    CHECK_OK(h5io_stream_put(&s, 0, NULL, NULL));
    CHECK_OK(h5io_stream_put(&s, 1, NULL, v + 2));
    CHECK_OK(h5io_stream_end(&s));
    CHECK_OK(h5io_commit(&f));
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    int64_t back[4];
    CHECK_EQ(h5io_rows(&f, "/c"), 2);
    CHECK_OK(h5io_read_column(&f, "/c", H5IO_I64, 0, 2, back));
    CHECK(memcmp(back, v, sizeof v) == 0);
    h5io_close(&f);
    unlink(path);
    free(path);
}

static void test_write_errors(void)
{
    char *path = in_dir("werr.h5");
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    int64_t v[2] = {1, 2}, len[2] = {1, -4};
    CHECK_OK(h5io_write_column(&f, "/a", H5IO_I64, 2, 1, v));
    CHECK_FAILS_WITH(h5io_write_column(&f, "/a", H5IO_I64, 2, 1, v), "werr.h5: /a already exists");
    CHECK_FAILS_WITH(h5io_write_column(&f, "/t", H5IO_TEXT, 2, 1, v), "stored as a ragged column");
    CHECK_FAILS_WITH(h5io_write_column(&f, "/w", H5IO_I64, 2, 0, v), "width 0 < 1");
    CHECK_FAILS_WITH(h5io_write_column(&f, "/n", H5IO_I64, -1, 1, v), "negative row count -1");
    CHECK_FAILS_WITH(h5io_write_column(&f, "/m", H5IO_I64, 2, 1, NULL), "no data for 2 rows");
    CHECK_FAILS_WITH(h5io_write_ragged(&f, "/r", H5IO_U8, 2, len, "abcde"),
                     "/r: row 1 has negative length -4");
    len[1] = 3;
    CHECK_FAILS_WITH(h5io_write_ragged(&f, "/r", H5IO_U8, 2, len, NULL), "no data for 4 elements");
    CHECK_FAILS_WITH(h5io_write_column(&f, "/a/under_a_dataset", H5IO_I64, 2, 1, v),
                     "cannot create dataset");
    CHECK(!h5io_exists(&f, "/t") && !h5io_exists(&f, "/r"));
    h5io_abandon(&f);
    h5io_abandon(&f); /* twice: harmless */
    CHECK(access(path, F_OK) != 0);
    free(path);
}

/* Files a sima tool did not write: hand-made with plain HDF5. */
static void test_foreign_layouts(void)
{
    char *path = in_dir("foreign.h5");
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    uint8_t bytes[3] = {'a', 'b', 'c'};
    int64_t dims3 = 3;
    double float_off[2] = {0, 3};
    int64_t dims2 = 2, dims_m[3] = {2, 2, 2}, cube[8] = {0};
    /* ragged columns over the 3 bytes with broken offsets */
    static const struct { const char *name; int64_t n; int64_t off[4]; } broken[] = {
        {"past", 3, {0, 5, 3}},     {"decrease", 4, {0, 2, 1, 3}}, {"negative", 3, {0, -1, 3}},
        {"notzero", 3, {1, 2, 3}},  {"short", 2, {0, 2}},          {"long", 4, {0, 1, 2, 4}}};
    hid_t g;
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        g = H5Gcreate2(file, broken[i].name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        CHECK_OK(h5u_write(g, "data", H5T_NATIVE_UINT8, 1, &dims3, bytes));
        CHECK_OK(h5u_write(g, "offsets", H5T_NATIVE_INT64, 1, &broken[i].n, broken[i].off));
        H5Gclose(g);
    }
    g = H5Gcreate2(file, "floatoff", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_OK(h5u_write(g, "data", H5T_NATIVE_UINT8, 1, &dims3, bytes));
    CHECK_OK(h5u_write(g, "offsets", H5T_NATIVE_DOUBLE, 1, &dims2, float_off));
    H5Gclose(g);
    CHECK_OK(h5u_write(file, "cube", H5T_NATIVE_INT64, 3, dims_m, cube));
    /* schema attribute of the wrong kind; a fixed-length string attribute */
    CHECK_OK(h5u_attr_i64(file, "schema", 7));
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, 5);
    hid_t a = H5Acreate2(file, "fixed", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, "fixed");
    H5Aclose(a);
    H5Tclose(t);
    t = H5Tcopy(H5T_C_S1); /* variable-length, ASCII (not UTF-8) */
    H5Tset_size(t, H5T_VARIABLE);
    const char *ascii = "ascii text";
    a = H5Acreate2(file, "ascii", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &ascii);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(file);

    h5io_file f;
    char want[1024];
    int64_t off[4], buf[8];
    void *data = NULL;
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    snprintf(want, sizeof want, "%s: /past/offsets: offset 5 at row 1 is past the end of "
             "/past/data (3 elements)", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/past", H5IO_U8, 0, 2, off, &data), want);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/past", H5IO_U8, 1, 1, off, &data), want);
    CHECK_OK(h5io_read_ragged(&f, "/past", H5IO_U8, 0, 0, off, &data)); /* reads offsets[0] */
    free(data);
    snprintf(want, sizeof want, "%s: /decrease/offsets: offsets decrease at row 2 (1 after 2)",
             path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/decrease", H5IO_U8, 0, 3, off, &data), want);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/decrease", H5IO_U8, 1, 1, off, &data), want);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/decrease", H5IO_U8, 2, 1, off, &data), want);
    snprintf(want, sizeof want, "%s: /negative/offsets: offset -1 at row 1 is negative", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/negative", H5IO_U8, 0, 2, off, &data), want);
    /* the ends are checked whatever rows are read: a short or long offsets
     * list (a truncated copy, offsets of another column) */
    snprintf(want, sizeof want, "%s: /notzero/offsets: first offset is 1, expected 0", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/notzero", H5IO_U8, 1, 1, off, &data), want);
    snprintf(want, sizeof want, "%s: /short/offsets: the last offset (row 1) is 2 but "
             "/short/data has 3 elements: offsets or data cut short", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/short", H5IO_U8, 0, 1, off, &data), want);
    snprintf(want, sizeof want, "%s: /long/offsets: the last offset (row 3) is 4 but "
             "/long/data has 3 elements", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/long", H5IO_U8, 0, 1, off, &data), want);
    snprintf(want, sizeof want, "%s: /floatoff/offsets is float64, expected int64", path);
    CHECK_FAILS_WITH(h5io_read_ragged(&f, "/floatoff", H5IO_U8, 0, 1, off, &data), want);
    CHECK(data == NULL);
    snprintf(want, sizeof want, "%s: /cube has 3 dimensions", path);
    CHECK_FAILS_WITH(h5io_read_column(&f, "/cube", H5IO_I64, 0, 1, buf), want);
    snprintf(want, sizeof want, "%s: /: attribute schema is int64, expected a string", path);
    CHECK_FAILS_WITH(h5io_require_schema(&f, "sima.prompts", 1), want);
    char *s = h5io_get_attr_str(&f, "/", "fixed");
    CHECK(s && strcmp(s, "fixed") == 0);
    free(s);
    s = h5io_get_attr_str(&f, "/", "ascii");
    CHECK(s && strcmp(s, "ascii text") == 0);
    free(s);
    h5io_close(&f);
    unlink(path);
    free(path);
}

static void test_attributes_and_schema(void)
{
    char *path = in_dir("attrs.h5");
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(h5io_group(&f, "/responses"));
    CHECK_OK(h5io_set_attr_str(&f, "/responses", "names", "greedy\nsampled"));
    CHECK_OK(h5io_set_attr_str(&f, "/responses", "names", "eos\nlength")); /* replaced */
    CHECK_OK(h5io_set_attr_str(&f, "/", "empty", NULL));
    CHECK_OK(h5io_set_attr_f64(&f, "/", "top_p", 0.9));
    CHECK_OK(h5io_set_attr_i64(&f, "/", "big", INT64_MIN));
    CHECK_OK(h5io_set_attr_str(&f, "/", "schema", "sima.responses"));
    CHECK_OK(h5io_set_attr_i64(&f, "/", "schema_version", 2));
    CHECK_FAILS_WITH(h5io_set_attr_str(&f, "/nowhere", "x", "y"), "no object /nowhere");
    CHECK_OK(h5io_commit(&f));

    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    char *s = h5io_get_attr_str(&f, "/responses", "names");
    CHECK(s && strcmp(s, "eos\nlength") == 0);
    free(s);
    s = h5io_get_attr_str(&f, "/", "empty");
    CHECK(s && s[0] == '\0');
    free(s);
    double d = 0;
    int64_t i = 0;
    CHECK_OK(h5io_get_attr_f64(&f, "/", "top_p", &d));
    CHECK(d == 0.9);
    CHECK_OK(h5io_get_attr_i64(&f, "/", "big", &i));
    CHECK(i == INT64_MIN);
    CHECK_OK(h5io_get_attr_f64(&f, "/", "schema_version", &d)); /* an integer read as double */
    CHECK(d == 2.0);
    err_clear();
    CHECK(h5io_get_attr_str(&f, "/", "absent") == NULL);
    CHECK_MSG(strstr(err_msg(), "attrs.h5: / has no attribute absent"), "got \"%s\"", err_msg());
    CHECK_FAILS_WITH(h5io_get_attr_i64(&f, "/", "top_p", &i),
                     "attribute top_p is float64, expected an integer");
    CHECK_FAILS_WITH(h5io_get_attr_i64(&f, "/", "schema", &i),
                     "attribute schema is string, expected an integer");
    char want[1024];
    snprintf(want, sizeof want, "%s: is a sima.responses file, expected sima.prompts", path);
    CHECK_FAILS_WITH(h5io_require_schema(&f, "sima.prompts", 1), want);
    snprintf(want, sizeof want, "%s: sima.responses version 2 is newer than this sima supports (1)",
             path);
    CHECK_FAILS_WITH(h5io_require_schema(&f, "sima.responses", 1), want);
    CHECK_OK(h5io_require_schema(&f, "sima.responses", 2));
    h5io_close(&f);

    /* no schema at all */
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(h5io_commit(&f));
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    snprintf(want, sizeof want, "%s: not a sima file (no schema attribute)", path);
    CHECK_FAILS_WITH(h5io_require_schema(&f, "sima.prompts", 1), want);
    h5io_close(&f);
    unlink(path);
    free(path);
}

static void test_provenance_defaults(void)
{
    char *path = in_dir("prov.h5");
    char *argv[] = {"sima-prep", "a b", "", NULL};
    h5io_provenance p = {.tool = "sima-prep", .schema = "sima.prompts", .schema_version = 1,
                         .argc = 3, .argv = argv, .seed = -5};
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(h5io_write_provenance(&f, &p));
    CHECK_OK(h5io_commit(&f));
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    const char *want[][2] = {{"command_line", "sima-prep 'a b' ''"}, {"inputs", ""},
                             {"model", ""}, {"model_hash", ""}, {"run_key", ""},
                             {"tool", "sima-prep"}, {"schema", "sima.prompts"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *v = h5io_get_attr_str(&f, "/", want[i][0]);
        CHECK_MSG(v && strcmp(v, want[i][1]) == 0, "%s: got \"%s\"", want[i][0], v ? v : "(null)");
        free(v);
    }
    int64_t seed = 0;
    CHECK_OK(h5io_get_attr_i64(&f, "/", "seed", &seed));
    CHECK_EQ(seed, -1);
    CHECK_OK(h5io_require_schema(&f, "sima.prompts", 1));
    h5io_close(&f);
    unlink(path);
    free(path);
}

static void test_hashes(void)
{
    char hex[17];
    /* FNV-1a 64 reference values */
    CHECK(hash_fnv1a("", 0, HASH_FNV_INIT) == 0xcbf29ce484222325ULL);
    CHECK(hash_fnv1a("a", 1, HASH_FNV_INIT) == 0xaf63dc4c8601ec8cULL);
    CHECK(hash_fnv1a("foobar", 6, HASH_FNV_INIT) == 0x85944171f73967e8ULL);
    CHECK(hash_fnv1a("bar", 3, hash_fnv1a("foo", 3, HASH_FNV_INIT)) == 0x85944171f73967e8ULL);
    CHECK(strcmp(h5io_hex64(0xaf63dc4c8601ec8cULL, hex), "af63dc4c8601ec8c") == 0);
    CHECK(strcmp(h5io_hex64(0x1ULL, hex), "0000000000000001") == 0);

    char *dir = in_dir("model"), *cfg = in_dir("model/config.json"),
         *idx = in_dir("model/model.safetensors.index.json"),
         *single = in_dir("model/model.safetensors");
    mkdir(dir, 0755);
    char *h = h5io_model_hash(dir);
    CHECK(h == NULL && strstr(err_msg(), "config.json"));
    free(h);

    /* config only, then config + single-file header (not the tensor bytes) */
    write_bytes(cfg, "{\"a\":1}", 7);
    h = h5io_model_hash(dir);
    CHECK(h && strcmp(h, h5io_hex64(hash_fnv1a("{\"a\":1}", 7, HASH_FNV_INIT), hex)) == 0);
    free(h);
    const char st[] = "\x05\0\0\0\0\0\0\0{\"x\"}TENSORBYTES";
    write_bytes(single, st, sizeof st - 1);
    char concat[64];
    memcpy(concat, "{\"a\":1}", 7);
    memcpy(concat + 7, st, 13);
    h = h5io_model_hash(dir);
    CHECK(h && strcmp(h, h5io_hex64(hash_fnv1a(concat, 20, HASH_FNV_INIT), hex)) == 0);
    free(h);
    const char st2[] = "\x05\0\0\0\0\0\0\0{\"x\"}OTHER-BYTES";
    write_bytes(single, st2, sizeof st2 - 1);
    h = h5io_model_hash(dir);
    CHECK(h && strcmp(h, hex) == 0); /* tensor bytes don't count */
    free(h);
    write_bytes(single, "\xff\xff\xff\xff\xff\xff\0\0{", 9);
    h = h5io_model_hash(dir);
    CHECK(h == NULL && strstr(err_msg(), "model.safetensors"));
    free(h);

    /* an index wins over a single file */
    write_bytes(idx, "{\"weight_map\":{}}", 17);
    memcpy(concat + 7, "{\"weight_map\":{}}", 17);
    h = h5io_model_hash(dir);
    CHECK(h && strcmp(h, h5io_hex64(hash_fnv1a(concat, 24, HASH_FNV_INIT), hex)) == 0);
    free(h);

    char *tiny = golden_path("tiny-llava");
    char *h1 = h5io_model_hash(tiny), *h2 = h5io_model_hash(tiny);
    CHECK(h1 && h2 && strlen(h1) == 16 && strcmp(h1, h2) == 0);
    free(h1);
    free(h2);
    free(tiny);

    unlink(cfg);
    unlink(idx);
    unlink(single);
    rmdir(dir);
    free(dir);
    free(cfg);
    free(idx);
    free(single);
}

int main(int argc, char **argv)
{
    test_mpi_init(&argc, &argv);
    err_set_program("test_h5io");
    h5u_init();
    g_dir = test_tmpdir("h5io");

    test_round_trip_every_type();
    test_compression_storage();
    test_bad_files();
    test_read_errors();
    test_row_ranges();
    test_stream_errors();
    test_write_errors();
    test_foreign_layouts();
    test_attributes_and_schema();
    test_provenance_defaults();
    test_hashes();

    rmdir(g_dir);
    free(g_dir);
    /* every file, dataset, group and attribute handle was closed */
    CHECK_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    int rc = check_finish();
    test_mpi_finalize();
    return rc;
}
