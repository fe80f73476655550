/* err.c — base layer: thread-local error record and fatal exits. */
#include "err.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_msg[ERR_MSG_MAX];
static _Thread_local char g_where[256];
static const char *g_program = "sima";
static int g_rank = -1;

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void set_where(const char *file, int line)
{
    snprintf(g_where, sizeof g_where, "%s:%d", base_name(file), line);
}

int err_set_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    set_where(file, line);
    return -1;
}

int err_errno_at(const char *file, int line, const char *fmt, ...)
{
    int saved = errno;
    char what[ERR_MSG_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return err_set_at(file, line, "%s: %s", what,
                      saved ? strerror(saved) : "unknown I/O error");
}

int err_context(const char *fmt, ...)
{
    char old[ERR_MSG_MAX];
    memcpy(old, g_msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    /* append ": previous message" after the context, truncating if needed */
    if (old[0] && n >= 0 && (size_t)n + 2 < sizeof g_msg) {
        size_t room = sizeof g_msg - (size_t)n;
        memcpy(g_msg + n, ": ", 2);
        size_t k = strnlen(old, room - 3);
        memcpy(g_msg + n + 2, old, k);
        g_msg[n + 2 + k] = '\0';
    }
    return -1;
}

const char *err_msg(void) { return g_msg; }
const char *err_where(void) { return g_where; }

void err_clear(void)
{
    g_msg[0] = '\0';
    g_where[0] = '\0';
}

void err_set_program(const char *name) { g_program = base_name(name); }
void err_set_rank(int rank) { g_rank = rank; }
const char *err_program(void) { return g_program; }
int err_rank(void) { return g_rank; }

static void print_line(const char *msg, const char *where)
{
    char who[128];
    if (g_rank >= 0)
        snprintf(who, sizeof who, "%s[rank %d]", g_program, g_rank);
    else
        snprintf(who, sizeof who, "%s", g_program);
    if (log_level() >= LOG_DEBUG && where && where[0])
        fprintf(stderr, "%s: error: %s [%s]\n", who, msg, where);
    else
        fprintf(stderr, "%s: error: %s\n", who, msg);
    fflush(stderr);
}

void err_print(void)
{
    print_line(g_msg[0] ? g_msg : "unknown error", g_where);
}

void err_die_at(const char *file, int line, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX]; /* an argument may be err_msg() itself: format aside */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(g_msg, msg, sizeof msg);
    set_where(file, line);
    err_print();
    exit(1);
}

void err_exit(void)
{
    err_print();
    exit(1);
}

static void oom(const char *file, int line, size_t n)
{
    err_die_at(file, line, "out of memory allocating %zu bytes", n);
}

void *xmalloc_at(const char *file, int line, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(file, line, n);
    return p;
}

void *xcalloc_at(const char *file, int line, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(file, line, n * size);
    return p;
}

void *xrealloc_at(const char *file, int line, void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(file, line, n);
    return q;
}

char *xstrdup_at(const char *file, int line, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc_at(file, line, n);
    memcpy(p, s, n);
    return p;
}
