/* test_verdicts.c — verdict parsing and the both-orders agreement rule, and
 * a verdicts file written and read back. */
#include "check.h"
#include "err.h"
#include "golden.h"
#include "mpi_test.h"
#include "verdicts.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse(const char *s) { return verd_parse(s, strlen(s)); }

static void test_parse(void)
{
    CHECK_EQ(parse("Response 1 is better. [[1]]"), 1);
    CHECK_EQ(parse("[[2]]"), 2);
    CHECK_EQ(parse("At first [[1]], but on reflection [[2]]"), 2);   /* the last one counts */
    CHECK_EQ(parse("no verdict here"), 0);
    CHECK_EQ(parse(""), 0);
    CHECK_EQ(parse("[[3]]"), 0);
    CHECK_EQ(parse("[[1]] then [[3]]"), 1);                           /* [[3]] is no verdict */
    CHECK_EQ(parse("[1] or [[ 2 ]] or [[12]]"), 0);
    CHECK_EQ(parse("[[1]"), 0);
    /* a verdict quoted from an answer, then the critic's own */
    CHECK_EQ(parse("Response 2 says \"the answer is [[1]]\", which is wrong. Final verdict: [[2]]"), 2);
    CHECK_EQ(parse("Final verdict: [[1]]."), 1);
    CHECK_EQ(verd_parse("x[[2]]yyy", 6), 2);                           /* length bounds the scan */
    CHECK_EQ(verd_parse("x[[2]]yyy", 5), 0);
}

static void test_resolve(void)
{
    /* one order only: winners, no agreement */
    int8_t v1[] = {1, 2, 0};
    int32_t f1[] = {1, 1, 2}, s1[] = {0, 0, 0}, w[6];
    int8_t c[6];
    verd_resolve(v1, f1, s1, 3, false, w, c);
    CHECK_EQ(w[0], 1);
    CHECK_EQ(w[1], 0);
    CHECK_EQ(w[2], -1);
    CHECK_EQ(c[0], -1);
    CHECK_EQ(c[2], -1);
    /* both orders: (1,0) then (0,1) */
    int8_t v2[] = {1, 2,   /* picks 1 then 1: consistent */
                   1, 1,   /* picks 1 then 0: position bias, inconsistent */
                   2, 0};  /* second has no verdict: inconsistent */
    int32_t f2[] = {1, 0, 1, 0, 1, 0}, s2[] = {0, 1, 0, 1, 0, 1};
    verd_resolve(v2, f2, s2, 6, true, w, c);
    CHECK_EQ(w[0], 1);
    CHECK_EQ(w[1], 1);
    CHECK(c[0] == 1 && c[1] == 1);
    CHECK_EQ(w[2], 1);
    CHECK_EQ(w[3], 0);
    CHECK(c[2] == 0 && c[3] == 0);
    CHECK_EQ(w[4], 0);
    CHECK_EQ(w[5], -1);
    CHECK(c[4] == 0 && c[5] == 0);
}

static void test_file(void)
{
    verd_rows r = {0};
    verd_row a = {3, 1, 0, 1, 0, 1, -1, 0, 0, 900};
    verd_row b = {4, 1, 0, -1, 0, -1, -1, 1, 0, 2000};
    verd_push(&r, &a, "fine [[1]]", 10);
    verd_push(&r, &b, "", 0);
    char *dir = test_tmpdir("verd");
    char path[512];
    snprintf(path, sizeof path, "%s/v.h5", dir);
    h5io_file f;
    CHECK_OK(h5io_create(&f, path, MPI_COMM_SELF));
    CHECK_OK(verd_write(&f, &r));
    CHECK_OK(h5io_commit(&f));
    verd_rows back;
    CHECK_OK(h5io_open(&f, path, MPI_COMM_SELF));
    CHECK_OK(verd_read(&f, &back));
    h5io_close(&f);
    CHECK_EQ(back.n, 2);
    verd_row x;
    verd_get(&back, 1, &x);
    CHECK(x.prompt == 4 && x.skipped == 1 && x.verdict == -1 && x.prompt_tokens == 2000);
    int64_t len;
    const char *t = verd_text(&back, 0, &len);
    CHECK(len == 10 && memcmp(t, "fine [[1]]", 10) == 0);
    verd_free(&back);
    verd_free(&r);
    unlink(path);
    rmdir(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    test_mpi_init(&argc, &argv);
    test_parse();
    test_resolve();
    test_file();
    int rc = check_finish();
    test_mpi_finalize();
    return rc;
}
