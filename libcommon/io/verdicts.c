/* verdicts.c — io layer: the sima.verdicts columns, written and read whole. */
#include "verdicts.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

/* Every per-row array grows to the same capacity. */
#define VERD_ROW_ARRAYS(X) X(prompt) X(first) X(second) X(winner) X(order) X(verdict) \
    X(consistent) X(skipped) X(truncated) X(prompt_tokens) X(text_len)

static void grow_rows(verd_rows *r, int64_t need)
{
    if (need <= r->cap) return;
    int64_t cap = r->cap ? r->cap : 64;
    while (cap < need) cap *= 2;
#define GROW(f) r->f = xrealloc(r->f, sizeof *r->f * (size_t)cap);
    VERD_ROW_ARRAYS(GROW)
#undef GROW
    r->cap = cap;
}

static void grow_text(verd_rows *r, int64_t need)
{
    if (need <= r->text_cap) return;
    int64_t cap = r->text_cap ? r->text_cap : 1024;
    while (cap < need) cap *= 2;
    r->text = xrealloc(r->text, (size_t)cap);
    r->text_cap = cap;
}

void verd_push(verd_rows *r, const verd_row *row, const char *text, int64_t text_len)
{
    grow_rows(r, r->n + 1);
    grow_text(r, r->text_total + text_len + 1);
    int64_t i = r->n++;
    r->prompt[i] = row->prompt;
    r->first[i] = row->first;
    r->second[i] = row->second;
    r->winner[i] = row->winner;
    r->order[i] = row->order;
    r->verdict[i] = row->verdict;
    r->consistent[i] = row->consistent;
    r->skipped[i] = row->skipped;
    r->truncated[i] = row->truncated;
    r->prompt_tokens[i] = row->prompt_tokens;
    r->text_len[i] = text_len;
    memcpy(r->text + r->text_total, text, (size_t)text_len);
    r->text_total += text_len;
}

void verd_get(const verd_rows *r, int64_t i, verd_row *row)
{
    *row = (verd_row){r->prompt[i],     r->first[i],      r->second[i],
                      r->winner[i],     r->order[i],      r->verdict[i],
                      r->consistent[i], r->skipped[i],    r->truncated[i],
                      r->prompt_tokens[i]};
}

const char *verd_text(const verd_rows *r, int64_t i, int64_t *len)
{
    int64_t off = 0;
    for (int64_t k = 0; k < i; k++) off += r->text_len[k];
    *len = r->text_len[i];
    return r->text + off;
}

void verd_append(verd_rows *dst, const verd_rows *src)
{
    int64_t off = 0;
    for (int64_t i = 0; i < src->n; i++) {
        verd_row row;
        verd_get(src, i, &row);
        verd_push(dst, &row, src->text + off, src->text_len[i]);
        off += src->text_len[i];
    }
}

void verd_free(verd_rows *r)
{
#define FREE(f) free(r->f);
    VERD_ROW_ARRAYS(FREE)
#undef FREE
    free(r->text);
    memset(r, 0, sizeof *r);
}

int verd_write(h5io_file *f, const verd_rows *r)
{
    int64_t n = r->n;
    int rc = h5io_group(f, "/verdicts");
    if (rc == 0) rc = h5io_write_column(f, "/verdicts/prompt", H5IO_I64, n, 1, r->prompt);
    if (rc == 0) rc = h5io_write_column(f, "/verdicts/first", H5IO_I32, n, 1, r->first);
    if (rc == 0) rc = h5io_write_column(f, "/verdicts/second", H5IO_I32, n, 1, r->second);
    if (rc == 0) rc = h5io_write_column(f, "/verdicts/order", H5IO_I8, n, 1, r->order);
    if (rc == 0) rc = h5io_write_column(f, "/verdicts/verdict", H5IO_I8, n, 1, r->verdict);
    if (rc == 0) rc = h5io_write_column(f, "/verdicts/winner", H5IO_I32, n, 1, r->winner);
    if (rc == 0) rc = h5io_write_column(f, "/verdicts/consistent", H5IO_I8, n, 1, r->consistent);
    if (rc == 0) rc = h5io_write_column(f, "/verdicts/skipped", H5IO_I8, n, 1, r->skipped);
    if (rc == 0) rc = h5io_write_column(f, "/verdicts/truncated", H5IO_I8, n, 1, r->truncated);
    if (rc == 0)
        rc = h5io_write_column(f, "/verdicts/prompt_tokens", H5IO_I64, n, 1, r->prompt_tokens);
    if (rc == 0) rc = h5io_write_ragged(f, "/verdicts/text", H5IO_TEXT, n, r->text_len, r->text);
    return rc;
}

int verd_read(h5io_file *f, verd_rows *r)
{
    memset(r, 0, sizeof *r);
    int64_t n = h5io_rows(f, "/verdicts/prompt");
    if (n < 0) return -1;
    grow_rows(r, n > 0 ? n : 1);
    r->n = n;
    int rc = 0;
    if (rc == 0) rc = h5io_read_column(f, "/verdicts/prompt", H5IO_I64, 0, n, r->prompt);
    if (rc == 0) rc = h5io_read_column(f, "/verdicts/first", H5IO_I32, 0, n, r->first);
    if (rc == 0) rc = h5io_read_column(f, "/verdicts/second", H5IO_I32, 0, n, r->second);
    if (rc == 0) rc = h5io_read_column(f, "/verdicts/order", H5IO_I8, 0, n, r->order);
    if (rc == 0) rc = h5io_read_column(f, "/verdicts/verdict", H5IO_I8, 0, n, r->verdict);
    if (rc == 0) rc = h5io_read_column(f, "/verdicts/winner", H5IO_I32, 0, n, r->winner);
    if (rc == 0) rc = h5io_read_column(f, "/verdicts/consistent", H5IO_I8, 0, n, r->consistent);
    if (rc == 0) rc = h5io_read_column(f, "/verdicts/skipped", H5IO_I8, 0, n, r->skipped);
    if (rc == 0) rc = h5io_read_column(f, "/verdicts/truncated", H5IO_I8, 0, n, r->truncated);
    if (rc == 0)
        rc = h5io_read_column(f, "/verdicts/prompt_tokens", H5IO_I64, 0, n, r->prompt_tokens);
    int64_t *off = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    if (rc == 0) rc = h5io_read_ragged(f, "/verdicts/text", H5IO_TEXT, 0, n, off, (void **)&r->text);
    if (rc == 0) {
        for (int64_t i = 0; i < n; i++) r->text_len[i] = off[i + 1] - off[i];
        r->text_total = off[n];
        r->text_cap = off[n] + 1; /* the reader adds a NUL */
    }
    free(off);
    if (rc != 0) verd_free(r);
    return rc;
}

int verd_parse(const char *text, size_t len)
{
    /* scan backwards for the last "[[1]]" or "[[2]]" */
    for (size_t i = len >= 5 ? len - 5 + 1 : 0; i-- > 0;) {
        if (text[i] == '[' && text[i + 1] == '[' && (text[i + 2] == '1' || text[i + 2] == '2') &&
            text[i + 3] == ']' && text[i + 4] == ']')
            return text[i + 2] - '0';
    }
    return 0;
}

void verd_resolve(const int8_t *verdict, const int32_t *first, const int32_t *second, int n,
                  bool both_orders, int32_t *winner, int8_t *consistent)
{
    for (int i = 0; i < n; i++)
        winner[i] = verdict[i] == 1 ? first[i] : verdict[i] == 2 ? second[i] : -1;
    for (int i = 0; i < n; i++) {
        int k = i % 2 == 0 ? i + 1 : i - 1; /* the same pair in the other order */
        consistent[i] = !both_orders ? -1 : (k < n && winner[i] >= 0 && winner[i] == winner[k]);
    }
}
