/* err.h — base layer: error reporting and check macros.
 *
 * Library functions report failure by returning -1 (or NULL) after recording
 * a message with ERR(...). The message names the file or object at fault and
 * what is wrong; the source location of the first report is kept for
 * --verbose output. Tools print the message with err_print() and exit 1.
 *
 * Calls into MPI, HDF5, CUDA and libc I/O go through the CHECK_* macros, which
 * record file, line and the library's own reason.
 */
#ifndef SIMA_BASE_ERR_H
#define SIMA_BASE_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define ERR_MSG_MAX 2048

/* Record an error (replacing any earlier one); always returns -1. */
int err_set_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define ERR(...) err_set_at(__FILE__, __LINE__, __VA_ARGS__)

/* Prepend context to the recorded error: "CONTEXT: previous message". */
int err_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

const char *err_msg(void);   /* the recorded message, "" if none */
const char *err_where(void); /* "file.c:123" of the report, "" if none */
void err_clear(void);

/* Program name and MPI rank used in printed messages (rank < 0: no MPI). */
void err_set_program(const char *name);
void err_set_rank(int rank);
const char *err_program(void);
int err_rank(void);

/* Print the recorded error as one line on stderr:
 *   sima-model: error: tiny/config.json: line 3, column 5: ... [config.c:120]
 * The source location is shown when verbose logging is on. */
void err_print(void);

/* Print a formatted error at the caller's location and exit(1). For
 * programming errors and failures no caller can handle. */
_Noreturn void err_die_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define DIE(...) err_die_at(__FILE__, __LINE__, __VA_ARGS__)

/* Print the recorded error and exit(1). */
_Noreturn void err_exit(void);

/* libc: expr is false/NULL/negative on failure with errno set. Records
 * "what: strerror(errno)" and returns -1 from the enclosing function. */
#define CHECK_IO(expr, ...)                                                    \
    do {                                                                       \
        if (!(expr)) return err_errno_at(__FILE__, __LINE__, __VA_ARGS__);     \
    } while (0)
int err_errno_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Allocation that dies with a message on failure (out of memory is not a
 * condition any caller here can recover from). */
void *xmalloc_at(const char *file, int line, size_t n);
void *xcalloc_at(const char *file, int line, size_t n, size_t size);
void *xrealloc_at(const char *file, int line, void *p, size_t n);
char *xstrdup_at(const char *file, int line, const char *s);
#define xmalloc(n) xmalloc_at(__FILE__, __LINE__, (n))
#define xcalloc(n, s) xcalloc_at(__FILE__, __LINE__, (n), (s))
#define xrealloc(p, n) xrealloc_at(__FILE__, __LINE__, (p), (n))
#define xstrdup(s) xstrdup_at(__FILE__, __LINE__, (s))

#endif
