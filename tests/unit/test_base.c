/* test_base.c — base layer: error records, JSON getters, atomic file writes. */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "js.h"
#include "strbuf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_err_record(void)
{
    err_clear();
    CHECK(err_msg()[0] == '\0');
    CHECK(ERR("file %s is %d bytes short", "x.bin", 12) == -1);
    CHECK(strcmp(err_msg(), "file x.bin is 12 bytes short") == 0);
    CHECK(strstr(err_where(), "test_base.c:") != NULL);
    err_context("model/%s", "config.json");
    CHECK(strcmp(err_msg(), "model/config.json: file x.bin is 12 bytes short") == 0);
    err_clear();
    CHECK(err_where()[0] == '\0');
}

/* DIE("...%s", err_msg()) prints the recorded reason (formatted aside, not
 * over itself); run in a child, whose stderr comes back through a pipe. */
static void test_die_with_recorded_error(void)
{
    int fd[2];
    if (!CHECK(pipe(fd) == 0)) return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        ERR("%s: cannot open", "images/x.jpg");
        DIE("loading: %s", err_msg());
    }
    close(fd[1]);
    char out[512] = "";
    size_t n = 0;
    ssize_t got;
    while (n + 1 < sizeof out && (got = read(fd[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)got;
    out[n] = '\0';
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CHECK_MSG(strstr(out, "loading: images/x.jpg: cannot open") != NULL, "printed \"%s\"", out);
}

static void test_json_errors(void)
{
    const char bad[] = "{\n  \"a\": 1,\n  \"b\": [1, 2,\n}\n";
    CHECK(js_load_buf(bad, sizeof bad - 1, "cfg.json") == NULL);
    CHECK_MSG(strstr(err_msg(), "cfg.json: line 4") != NULL, "got \"%s\"", err_msg());

    const char *good = "{\"i\": 3, \"r\": 2.0, \"f\": 0.5, \"s\": \"x\", \"n\": null}";
    json_t *o = js_load_buf(good, strlen(good), "t.json");
    CHECK(o != NULL);
    long long i = 0;
    double d = 0;
    const char *s = NULL;
    bool b = false;
    CHECK_OK(js_get_int(o, "i", 7, &i, "t.json"));
    CHECK_EQ(i, 3);
    CHECK_OK(js_get_int(o, "r", 7, &i, "t.json"));
    CHECK_EQ(i, 2);
    CHECK_OK(js_get_int(o, "missing", 7, &i, "t.json"));
    CHECK_EQ(i, 7);
    CHECK_OK(js_get_int(o, "n", 9, &i, "t.json"));
    CHECK_EQ(i, 9);
    CHECK_FAILS_WITH(js_get_int(o, "f", 0, &i, "t.json"), "\"f\": expected an integer");
    CHECK_FAILS_WITH(js_get_int(o, "s", 0, &i, "t.json"), "t.json");
    CHECK_OK(js_get_double(o, "f", 0, &d, "t.json"));
    CHECK_NEAR(d, 0.5, 0);
    CHECK_OK(js_get_str(o, "s", NULL, &s, "t.json"));
    CHECK(s && strcmp(s, "x") == 0);
    CHECK_FAILS_WITH(js_get_bool(o, "i", false, &b, "t.json"), "expected true or false");
    json_decref(o);
}

static void test_fs_atomic(void)
{
    char *dir = test_tmpdir("base");
    char *p = fs_join(dir, "out.bin");
    CHECK_OK(fs_write_atomic(p, "hello", 5));
    char *buf = NULL;
    size_t n = 0;
    CHECK_OK(fs_read_all(p, &buf, &n));
    CHECK_EQ(n, 5);
    CHECK(buf && memcmp(buf, "hello", 5) == 0 && buf[5] == '\0');
    free(buf);
    CHECK(fs_is_file(p));
    CHECK(fs_is_dir(dir));
    char *d = fs_dir_of(p);
    CHECK(strcmp(d, dir) == 0);
    free(d);
    static const char *const DIR_OF[][2] = {
        {"bare.json", "."}, {"/top.json", "/"}, {"a/b/c.json", "a/b"}};
    for (size_t i = 0; i < sizeof DIR_OF / sizeof DIR_OF[0]; i++) {
        d = fs_dir_of(DIR_OF[i][0]);
        CHECK(strcmp(d, DIR_OF[i][1]) == 0);
        free(d);
    }
    char *missing = fs_join(dir, "nope");
    CHECK_FAILS_WITH(fs_read_all(missing, &buf, &n), "nope: cannot open: No such file");
    unlink(p);
    rmdir(dir);
    free(missing);
    free(p);
    free(dir);
}

/* strbuf: bytes in order, always NUL-terminated, growth across many puts,
 * printf longer than any first guess, take resets. */
static void test_strbuf(void)
{
    strbuf b = {0};
    char *empty = strbuf_take(&b);
    CHECK(empty && empty[0] == '\0');
    free(empty);
    strbuf_puts(&b, "ab");
    strbuf_putc(&b, 'c');
    strbuf_put(&b, "d\0e", 3);            /* embedded NUL kept: length 6 */
    CHECK_EQ(b.len, 6);
    CHECK(memcmp(b.s, "abcd\0e", 7) == 0);
    strbuf_free(&b);
    CHECK(b.s == NULL && b.len == 0);
    for (int i = 0; i < 1000; i++) strbuf_printf(&b, "%d,", i % 10);
    CHECK_EQ(b.len, 2000);
    CHECK(b.s[1999] == ',' && b.s[1998] == '9' && b.s[2000] == '\0');
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    strbuf_printf(&b, "[%s]", big);
    CHECK_EQ(b.len, 2000 + 301);
    CHECK(b.s[2000] == '[' && b.s[2300] == ']' && b.s[2301] == '\0');
    char *s = strbuf_take(&b);
    CHECK(b.s == NULL && b.len == 0 && b.cap == 0);
    CHECK_EQ(strlen(s), 2301);
    free(s);
}

int main(void)
{
    test_strbuf();
    test_err_record();
    test_die_with_recorded_error();
    test_json_errors();
    test_fs_atomic();
    return check_finish();
}
