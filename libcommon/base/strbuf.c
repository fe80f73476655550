/* strbuf.c — base layer: a growable byte string. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Room for n more bytes and the NUL. */
static void strbuf_reserve(strbuf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    b->s = xrealloc(b->s, cap);
    b->cap = cap;
}

void strbuf_put(strbuf *b, const void *data, size_t n)
{
    strbuf_reserve(b, n);
    if (n) memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void strbuf_puts(strbuf *b, const char *s)
{
    strbuf_put(b, s, strlen(s));
}

void strbuf_putc(strbuf *b, char c)
{
    strbuf_put(b, &c, 1);
}

void strbuf_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) DIE("strbuf_printf: bad format '%s'", fmt);
    strbuf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *strbuf_take(strbuf *b)
{
    if (!b->s) strbuf_put(b, "", 0);
    char *s = b->s;
    *b = (strbuf){0};
    return s;
}

void strbuf_free(strbuf *b)
{
    free(b->s);
    *b = (strbuf){0};
}
