/* check.h — minimal test assertions. Each CHECK counts a pass or a failure
 * (printing file:line and the values on failure); check_finish() prints
 * "N passed, N failed" and returns the exit status for main().
 *
 * CHECK, CHECK_MSG, CHECK_EQ and CHECK_NEAR are expressions worth 1 when the
 * check passed, 0 when it failed, so that a case can stop after a failed
 * size or presence check instead of reading past what it got:
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
int check_finish(void);

#define CHECK(cond) check_report(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define CHECK_MSG(cond, ...) check_report(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_EQ(a, b)                                                         \
    check_eq_ll((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_NEAR(a, b, tol)                                                  \
    check_near((double)(a), (double)(b), (double)(tol), __FILE__, __LINE__, #a, #b)
/* A call that must succeed (return 0); prints the recorded error if not. */
#define CHECK_OK(call)                                                         \
    do {                                                                       \
        int rc_ = (call);                                                      \
        check_report(rc_ == 0, __FILE__, __LINE__, "%s failed: %s", #call,     \
                     err_msg());                                               \
    } while (0)
/* A call that must fail with an error message containing `needle`. */
#define CHECK_FAILS_WITH(call, needle)                                         \
    do {                                                                       \
        err_clear();                                                           \
        int rc_ = (call);                                                      \
        check_report(rc_ != 0 && strstr(err_msg(), (needle)) != NULL,          \
                     __FILE__, __LINE__, "%s should fail with \"%s\", got rc=%d \"%s\"", \
                     #call, (needle), rc_, err_msg());                         \
    } while (0)

#endif
