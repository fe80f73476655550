/* check.h — minimal test assertions. Each CHECK counts a pass or a failure
 * (printing file:line and the values on failure); check_finish() prints
 * "N passed, N failed" and returns the exit status for main(). */
#ifndef SIMA_TEST_CHECK_H
#define SIMA_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

extern int check_passed, check_failed;

void check_report(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int check_finish(void);

#define CHECK(cond) check_report(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define CHECK_MSG(cond, ...) check_report(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        check_report(a_ == b_, __FILE__, __LINE__, "%s == %s (%lld vs %lld)",  \
                     #a, #b, a_, b_);                                          \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                  \
    do {                                                                       \
        double a_ = (double)(a), b_ = (double)(b);                             \
        check_report(fabs(a_ - b_) <= (tol), __FILE__, __LINE__,               \
                     "%s ~ %s (%.9g vs %.9g, tol %.3g)", #a, #b, a_, b_,       \
                     (double)(tol));                                           \
    } while (0)
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
