/* test_columns.c — the generic column-group writer/reader (io/columns.h):
 * a small struct of rows with every kind of column is grown, appended,
 * written, read back and checked against values written out by hand; every
 * row range read alone; a group written in rounds equals one written at
 * once; ragged columns that share lengths must agree in the file, and every
 * column must have the group's rows; the responses group keeps its
 * dataset names and attributes, and its items are found a window at a
 * time. */
#include "check.h"
#include "columns.h"
#include "err.h"
#include "golden.h"
#include "mpi_test.h"
#include "responses.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Rows of a made-up schema: id (fixed), a and b (ragged, one length per
 * row shared), note (ragged text with lengths), tags (ragged with offsets). */
typedef struct {
    int64_t n, cap;
    int64_t *id;            /* [n] */
    int64_t *len;           /* [n] elements of a and b */
    int32_t *a;             /* [ab_total] */
    float *b;               /* [ab_total] */
    int64_t ab_total, ab_cap;
    int64_t *note_len;      /* [n] */
    char *note;             /* [note_total] */
    int64_t note_total, note_cap;
    cols_ragged tags;       /* int64 elements */
} demo_rows;

static const cols_col DEMO_COLS[] = {
    COLS_FIX_NAMES(demo_rows, id, H5IO_I64, "0=zero"),
    COLS_LEN(demo_rows, "a", H5IO_I32, a, len, ab_total, ab_cap),
    COLS_LEN(demo_rows, "note", H5IO_TEXT, note, note_len, note_total, note_cap),
    COLS_LEN(demo_rows, "b", H5IO_F32, b, len, ab_total, ab_cap),
    COLS_OFF(demo_rows, "tags", H5IO_I64, tags),
};
static const cols_table DEMO = {"/demo", DEMO_COLS, 5, offsetof(demo_rows, n),
                                offsetof(demo_rows, cap), sizeof(demo_rows)};

/* Row with id, k elements a = id*10 + j, b = a / 2, note "n<id>", id % 3 tags of value id. */
static void demo_push(demo_rows *r, int64_t id, int64_t k)
{
    cols_grow_rows(&DEMO, r, r->n + 1);
    int64_t cap = r->ab_cap;
    cols_reserve((void **)&r->a, &cap, r->ab_total + k, sizeof(int32_t));
    cap = r->ab_cap;
    cols_reserve((void **)&r->b, &cap, r->ab_total + k, sizeof(float));
    r->ab_cap = cap;
    for (int64_t j = 0; j < k; j++) {
        r->a[r->ab_total + j] = (int32_t)(id * 10 + j);
        r->b[r->ab_total + j] = (float)(id * 10 + j) / 2;
    }
    r->ab_total += k;
    char note[32];
    int nl = snprintf(note, sizeof note, "n%lld", (long long)id);
    cols_reserve((void **)&r->note, &r->note_cap, r->note_total + nl + 1, 1);
    memcpy(r->note + r->note_total, note, (size_t)nl);
    r->note_total += nl;
    int64_t tags[3] = {id, id, id};
    cols_ragged_push(&r->tags, r->n, tags, id % 3, sizeof(int64_t));
    r->id[r->n] = id;
    r->len[r->n] = k;
    r->note_len[r->n] = nl;
    r->n++;
}

/* rows must hold ids first, first+1, ... with k = id % 4 elements each. */
static void check_demo(const demo_rows *r, int64_t first, int64_t n)
{
    CHECK_EQ(r->n, n);
    int64_t e = 0, x = 0;
    for (int64_t i = 0; i < r->n && i < n; i++) {
        int64_t id = first + i, k = id % 4;
        CHECK_EQ(r->id[i], id);
        CHECK_EQ(r->len[i], k);
        for (int64_t j = 0; j < k; j++) {
            CHECK_EQ(r->a[e + j], id * 10 + j);
            CHECK_NEAR(r->b[e + j], (double)(id * 10 + j) / 2, 0);
        }
        e += k;
        char note[32];
        int nl = snprintf(note, sizeof note, "n%lld", (long long)id);
        CHECK(r->note_len[i] == nl && memcmp(r->note + x, note, (size_t)nl) == 0);
        x += nl;
        CHECK_EQ(r->tags.off[i + 1] - r->tags.off[i], id % 3);
        for (int64_t j = r->tags.off[i]; j < r->tags.off[i + 1]; j++)
            CHECK_EQ(((int64_t *)r->tags.data)[j], id);
    }
    CHECK_EQ(r->ab_total, e);
    CHECK_EQ(r->note_total, x);
}

static void test_append(void)
{
    demo_rows r1 = {0}, r2 = {0}, all = {0};
    for (int64_t id = 0; id < 3; id++) demo_push(&r1, id, id % 4);
    for (int64_t id = 3; id < 80; id++) demo_push(&r2, id, id % 4); /* past the first capacity */
    cols_append(&DEMO, &all, &r1);
    cols_append(&DEMO, &all, &r2);
    check_demo(&all, 0, 80);
    demo_rows none = {0};
    cols_append(&DEMO, &all, &none); /* nothing to add */
    CHECK_EQ(all.n, 80);
    cols_free(&DEMO, &r1);
    cols_free(&DEMO, &r2);
    cols_free(&DEMO, &all);
    CHECK(all.n == 0 && all.id == NULL && all.tags.off == NULL);
}

static void test_file(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/demo.h5", dir);
    demo_rows r = {0}, back;
    for (int64_t id = 0; id < 7; id++) demo_push(&r, id, id % 4);
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(cols_write(&f, &DEMO, &r));
    CHECK_OK(h5io_commit(&f));
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    CHECK_EQ(h5io_rows(&f, "/demo/id"), 7);
    CHECK_EQ(h5io_rows(&f, "/demo/a"), 7);
    CHECK_EQ(h5io_rows(&f, "/demo/tags"), 7);
    char *names = h5io_get_attr_str(&f, "/demo/id", "names");
    CHECK(names && strcmp(names, "0=zero") == 0);
    free(names);
    CHECK_OK(cols_read(&f, &DEMO, &back));
    h5io_close(&f);
    check_demo(&back, 0, 7);
    /* rows read back take more rows */
    demo_push(&back, 7, 3);
    check_demo(&back, 0, 8);
    cols_free(&DEMO, &back);
    cols_free(&DEMO, &r);
    unlink(path);
}

/* A group written in rounds through a cols_writer holds the rows of one
 * cols_write, and every row range of it reads back alone (first, last,
 * empty, whole and all between; rows with 0 elements and 0 tags among
 * them). */
static void test_ranges_and_rounds(const char *dir)
{
    char one[512], rounds[512];
    snprintf(one, sizeof one, "%s/one.h5", dir);
    snprintf(rounds, sizeof rounds, "%s/rounds.h5", dir);
    enum { N = 23 };
    demo_rows all = {0};
    for (int64_t id = 0; id < N; id++) demo_push(&all, id, id % 4);
    h5io_file f;
    CHECK_OK(h5io_create(&f, one, MPI_COMM_SELF));
    CHECK_OK(cols_write(&f, &DEMO, &all));
    CHECK_OK(h5io_commit(&f));
    /* rounds of 0, 5, 1, 0, 17 rows */
    int64_t elems[5], sizes[] = {0, 5, 1, 0, 17};
    cols_local_elems(&DEMO, &all, elems);
    cols_writer w;
    CHECK_OK(h5io_create(&f, rounds, MPI_COMM_SELF));
    CHECK_OK(cols_writer_begin(&f, &DEMO, N, elems, &w));
    for (int k = 0, id = 0; k < 5; id += (int)sizes[k++]) {
        demo_rows part = {0};
        for (int64_t j = 0; j < sizes[k]; j++) demo_push(&part, id + j, (id + j) % 4);
        CHECK_OK(cols_writer_put(&w, &part));
        cols_free(&DEMO, &part);
    }
    CHECK_OK(cols_writer_end(&w));
    CHECK_OK(h5io_commit(&f));
    /* both files hold the rows, with the same sizes */
    int64_t got[5];
    demo_rows back;
    CHECK_OK(h5io_open(&f, one, MPI_COMM_SELF));
    CHECK_OK(cols_elems(&f, &DEMO, got));
    CHECK(memcmp(got, elems, sizeof got) == 0);
    h5io_close(&f);
    CHECK_OK(h5io_open(&f, rounds, MPI_COMM_SELF));
    CHECK_EQ(cols_rows(&f, &DEMO), N);
    CHECK_OK(cols_elems(&f, &DEMO, got));
    CHECK(memcmp(got, elems, sizeof got) == 0);
    CHECK_OK(cols_read(&f, &DEMO, &back));
    check_demo(&back, 0, N);
    cols_free(&DEMO, &back);
    int bad = 0;
    for (int64_t r0 = 0; r0 <= N; r0++)
        for (int64_t n = 0; r0 + n <= N; n++) {
            demo_rows back;
            CHECK_OK(cols_read_range(&f, &DEMO, r0, n, &back));
            int before = check_failed;
            check_demo(&back, r0, n);
            bad += check_failed != before;
            cols_free(&DEMO, &back);
        }
    CHECK_EQ(bad, 0);
    CHECK_FAILS_WITH(cols_read_range(&f, &DEMO, 20, 4, &back),
                     "rounds.h5: /demo: rows [20, 24) out of range (23 rows)");
    h5io_close(&f);
    cols_free(&DEMO, &all);
    unlink(one);
    unlink(rounds);
}

/* The demo group written a column at a time, as another program might:
 * ids 0 .. n-1, a with lengths la (zeros), empty notes, b with lengths lb,
 * tag_rows empty rows of tags. */
static void write_by_hand(const char *path, int64_t n, const int64_t *la, const int64_t *lb,
                          int64_t tag_rows)
{
    int64_t id[8], zero[8] = {0};
    int32_t a[32] = {0};
    float b[32] = {0};
    for (int64_t i = 0; i < n; i++) id[i] = i;
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(h5io_write_column(&f, "/demo/id", H5IO_I64, n, 1, id));
    CHECK_OK(h5io_write_ragged(&f, "/demo/a", H5IO_I32, n, la, a));
    CHECK_OK(h5io_write_ragged(&f, "/demo/note", H5IO_TEXT, n, zero, ""));
    CHECK_OK(h5io_write_ragged(&f, "/demo/b", H5IO_F32, n, lb, b));
    CHECK_OK(h5io_write_ragged(&f, "/demo/tags", H5IO_I64, tag_rows, zero, NULL));
    CHECK_OK(h5io_commit(&f));
}

/* A column with fewer rows than the group (its offsets cut short): refused
 * by every read, whatever the range, naming both columns. */
static void test_short_column(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/short.h5", dir);
    int64_t len[3] = {0, 1, 2};
    write_by_hand(path, 3, len, len, 2);
    demo_rows back;
    h5io_file f;
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    CHECK_FAILS_WITH(cols_read_range(&f, &DEMO, 0, 1, &back),
                     "short.h5: /demo/tags has 2 rows, /demo/id 3");
    CHECK_FAILS_WITH(cols_read(&f, &DEMO, &back), "/demo/tags has 2 rows, /demo/id 3");
    CHECK(back.id == NULL && back.n == 0);
    h5io_close(&f);
    unlink(path);
}

/* a and b of different lengths in the file: refused, naming both. */
static void test_mismatch(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bad.h5", dir);
    int64_t la[2] = {1, 2}, lb[2] = {2, 1};
    write_by_hand(path, 2, la, lb, 2);
    demo_rows back;
    h5io_file f;
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    CHECK_FAILS_WITH(cols_read(&f, &DEMO, &back), "b and a have different lengths");
    CHECK(back.id == NULL && back.n == 0); /* freed */
    h5io_close(&f);
    unlink(path);
}

/* The responses group: the datasets and attributes of data/schemas/responses.md. */
static void test_responses_layout(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/resp.h5", dir);
    resp_rows r = {0};
    int32_t tok[2] = {5, 2};
    float lp[2] = {-0.5f, -0.25f};
    resp_push(&r, 4, 0, RESP_GREEDY, 9, 1, tok, lp, 2, "hi", 2);
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(resp_write(&f, &r));
    CHECK_OK(h5io_commit(&f));
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    const char *cols[] = {"prompt", "candidate", "kind", "seed", "tokens", "text",
                          "token_logprobs", "sum_logprob", "finish"};
    for (int i = 0; i < 9; i++) {
        char p[64];
        snprintf(p, sizeof p, "/responses/%s", cols[i]);
        CHECK_MSG(h5io_rows(&f, p) == 1, "%s: one row", p);
    }
    char *kind = h5io_get_attr_str(&f, "/responses/kind", "names");
    char *fin = h5io_get_attr_str(&f, "/responses/finish", "names");
    CHECK(kind && strcmp(kind, "0=greedy,1=sampled") == 0);
    CHECK(fin && strcmp(fin, "1=eos,2=length,3=context") == 0);
    free(kind);
    free(fin);
    double sum;
    CHECK_OK(h5io_read_column(&f, "/responses/sum_logprob", H5IO_F64, 0, 1, &sum));
    CHECK_NEAR(sum, -0.75, 0);
    h5io_close(&f);
    resp_free(&r);
    unlink(path);
}

/* Write a responses file of (prompt, candidate) rows. */
static void write_responses(const char *path, const int64_t *prompt, const int32_t *cand, int n)
{
    resp_rows r = {0};
    int32_t tok[1] = {7};
    float lp[1] = {-1};
    for (int i = 0; i < n; i++)
        resp_push(&r, prompt[i], cand[i], cand[i] ? RESP_SAMPLED : RESP_GREEDY, 1, 1, tok, lp,
                  i % 2, "ab", i % 3);
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(resp_write(&f, &r));
    CHECK_OK(h5io_set_attr_str(&f, "/", "schema", RESP_SCHEMA));
    CHECK_OK(h5io_set_attr_i64(&f, "/", "schema_version", RESP_SCHEMA_VERSION));
    CHECK_OK(h5io_commit(&f));
    resp_free(&r);
}

/* The items of a responses file (prompts with enough candidates), found a
 * window at a time; its row ranges; and the files it refuses. */
static void test_responses_index(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/ix.h5", dir);
    /* prompts 0 (3 candidates), 1 (1), 3 (2), 4 (1), 6 (2) */
    int64_t prompt[] = {0, 0, 0, 1, 3, 3, 4, 6, 6};
    int32_t cand[] = {0, 1, 2, 0, 0, 1, 0, 0, 1};
    write_responses(path, prompt, cand, 9);
    h5io_file f;
    int64_t n = -1;
    CHECK_OK(resp_open(&f, path, &n));
    CHECK_EQ(n, 9);
    resp_index ix;
    CHECK_OK(resp_index_items(&f, 7, 2, &ix));
    CHECK(ix.n_items == 3 && ix.item_row0[0] == 0 && ix.item_row0[1] == 4 &&
          ix.item_row0[2] == 7 && ix.item_row0[3] == 9);
    free(ix.item_row0);
    CHECK_OK(resp_index_items(&f, 7, 1, &ix));
    CHECK(ix.n_items == 5 && ix.item_row0[1] == 3 && ix.item_row0[3] == 6 && ix.item_row0[5] == 9);
    free(ix.item_row0);
    CHECK_FAILS_WITH(resp_index_items(&f, 6, 2, &ix),
                     "ix.h5: row 7 names prompt 6, the prompts file has 6");
    CHECK(ix.item_row0 == NULL);
    CHECK(resp_lower_bound(&f, 9, 0) == 0 && resp_lower_bound(&f, 9, 2) == 4 &&
          resp_lower_bound(&f, 9, 4) == 6 && resp_lower_bound(&f, 9, 5) == 7 &&
          resp_lower_bound(&f, 9, 7) == 9);
    resp_rows r;
    CHECK_OK(resp_read_range(&f, 4, 3, &r));
    CHECK(r.n == 3 && r.prompt[0] == 3 && r.prompt[2] == 4 && r.candidate[1] == 1);
    CHECK(r.n_tokens[0] == 0 && r.n_tokens[1] == 1 && r.text_len[0] == 1 && r.text_len[2] == 0);
    resp_free(&r);
    h5io_close(&f);

    /* a candidate missing */
    int64_t p2[] = {0, 0, 1, 1, 0};
    int32_t c2[] = {0, 2, 0, 1, 0};
    write_responses(path, p2, c2, 5);
    CHECK_OK(resp_open(&f, path, NULL));
    CHECK_FAILS_WITH(resp_index_items(&f, 2, 2, &ix),
                     "ix.h5: rows are not ordered by prompt and candidate (row 1)");
    h5io_close(&f);
    unlink(path);
}

int main(int argc, char **argv)
{
    test_mpi_init(&argc, &argv);
    char *dir = test_tmpdir("cols");
    test_append();
    test_file(dir);
    test_mismatch(dir);
    test_ranges_and_rounds(dir);
    test_short_column(dir);
    test_responses_layout(dir);
    test_responses_index(dir);
    rmdir(dir);
    free(dir);
    int rc = check_finish();
    test_mpi_finalize();
    return rc;
}
