/* log.c — base layer: leveled, rank-aware logging to stderr. */
#include "log.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static enum log_level g_level = LOG_INFO;

void log_set_level(enum log_level level) { g_level = level; }
enum log_level log_level(void) { return g_level; }

static void vemit(const char *tag, int all_ranks, const char *fmt, va_list ap)
{
    int rank = err_rank();
    if (!all_ranks && rank > 0) return;
    if (rank >= 0 && all_ranks)
        fprintf(stderr, "%s[rank %d]: %s", err_program(), rank, tag);
    else
        fprintf(stderr, "%s: %s", err_program(), tag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
}

void log_info(const char *fmt, ...)
{
    if (g_level < LOG_INFO) return;
    va_list ap;
    va_start(ap, fmt);
    vemit("", 0, fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    if (g_level < LOG_DEBUG) return;
    va_list ap;
    va_start(ap, fmt);
    vemit("debug: ", 0, fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    if (g_level < LOG_WARN) return;
    va_list ap;
    va_start(ap, fmt);
    vemit("warning: ", 1, fmt, ap);
    va_end(ap);
}
