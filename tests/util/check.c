/* check.c — counters and reporting for check.h. */
#include "check.h"
#include "err.h"

#include <stdarg.h>
#include <string.h>

int check_passed, check_failed;

int check_report(int ok, const char *file, int line, const char *fmt, ...)
{
    if (ok) {
        check_passed++;
        return 1;
    }
    check_failed++;
    if (check_failed > 50) return 0; /* keep logs readable */
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 0;
}

int check_eq_ll(long long a, long long b, const char *file, int line, const char *a_text,
                const char *b_text)
{
    return check_report(a == b, file, line, "%s == %s (%lld vs %lld)", a_text, b_text, a, b);
}

int check_near(double a, double b, double tol, const char *file, int line, const char *a_text,
               const char *b_text)
{
    return check_report(fabs(a - b) <= tol, file, line, "%s ~ %s (%.9g vs %.9g, tol %.3g)",
                        a_text, b_text, a, b, tol);
}

int check_ok(int rc, const char *file, int line, const char *call)
{
    return check_report(rc == 0, file, line, "%s failed: %s", call, err_msg());
}

int check_fails_with(int rc, const char *needle, const char *file, int line, const char *call)
{
    return check_report(rc != 0 && strstr(err_msg(), needle) != NULL, file, line,
                        "%s should fail with \"%s\", got rc=%d \"%s\"", call, needle, rc,
                        err_msg());
}

int check_finish(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed == 0 && check_passed > 0 ? 0 : 1;
}
