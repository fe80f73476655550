/* strbuf.h — base layer: a growable byte string, always NUL-terminated
 * once anything was put (text builders, JSONL writers, prompt filling).
 * Out of memory ends the process with a message (xrealloc), like every
 * allocation in sima. */
#ifndef SIMA_BASE_STRBUF_H
#define SIMA_BASE_STRBUF_H

#include <stddef.h>

typedef struct {
    char *s;        /* NULL until the first put */
    size_t len, cap;
} strbuf;

void strbuf_put(strbuf *b, const void *data, size_t n);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_putc(strbuf *b, char c);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string (malloc'd, "" when nothing was put); b is reset. */
char *strbuf_take(strbuf *b);
void strbuf_free(strbuf *b);

#endif
