/* check.h — minimal test assertions. Each CHECK counts a pass or a failure
 * (printing file:line and the values on failure); check_finish() prints
 * "N passed, N failed" and returns the exit status for main().
 *
 * Every CHECK is an expression worth 1 when the check passed, 0 when it
 * failed, so that a case can stop after a failed size, presence or call
 * check instead of reading past what it got:
 *     if (!CHECK_EQ(n_got, n_want)) return; */
#ifndef SIMA_TEST_CHECK_H
#define SIMA_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

extern int check_passed, check_failed;

int check_report(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int check_eq_ll(long long a, long long b, const char *file, int line, const char *a_text,
                const char *b_text);
int check_near(double a, double b, double tol, const char *file, int line, const char *a_text,
               const char *b_text);
int check_ok(int rc, const char *file, int line, const char *call);
int check_fails_with(int rc, const char *needle, const char *file, int line, const char *call);
int check_finish(void);

#define CHECK(cond) check_report(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define CHECK_MSG(cond, ...) check_report(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_EQ(a, b)                                                         \
    check_eq_ll((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_NEAR(a, b, tol)                                                  \
    check_near((double)(a), (double)(b), (double)(tol), __FILE__, __LINE__, #a, #b)
/* A call that must succeed (return 0); prints the recorded error if not. */
#define CHECK_OK(call) check_ok((call), __FILE__, __LINE__, #call)
/* A call that must fail with an error message containing `needle`. */
#define CHECK_FAILS_WITH(call, needle)                                         \
    (err_clear(), check_fails_with((call), (needle), __FILE__, __LINE__, #call))

#endif
