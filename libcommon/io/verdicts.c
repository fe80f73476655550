/* verdicts.c — io layer: the sima.verdicts columns, written and read whole or
 * a row range at a time. */
#include "verdicts.h"
#include "columns.h"
#include "err.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The /verdicts group, in write order (data/schemas/verdicts.md). */
static const cols_col VERD_COLS[] = {
    COLS_FIX(verd_rows, prompt, H5IO_I64),
    COLS_FIX(verd_rows, first, H5IO_I32),
    COLS_FIX(verd_rows, second, H5IO_I32),
    COLS_FIX(verd_rows, order, H5IO_I8),
    COLS_FIX(verd_rows, verdict, H5IO_I8),
    COLS_FIX(verd_rows, winner, H5IO_I32),
    COLS_FIX(verd_rows, consistent, H5IO_I8),
    COLS_FIX(verd_rows, skipped, H5IO_I8),
    COLS_FIX(verd_rows, truncated, H5IO_I8),
    COLS_FIX(verd_rows, prompt_tokens, H5IO_I64),
    COLS_LEN(verd_rows, "text", H5IO_TEXT, text, text_len, text_total, text_cap),
};
const cols_table verd_table = {"/verdicts", VERD_COLS,
                                      (int)(sizeof VERD_COLS / sizeof VERD_COLS[0]),
                                      offsetof(verd_rows, n), offsetof(verd_rows, cap),
                                      sizeof(verd_rows)};

void verd_push(verd_rows *r, const verd_row *row, const char *text, int64_t text_len)
{
    cols_grow_rows(&verd_table, r, r->n + 1);
    cols_reserve((void **)&r->text, &r->text_cap, r->text_total + text_len + 1, 1);
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

/* verd_append, verd_free, verd_write, verd_read: the generic ones on verd_table */
COLS_ROW_FUNCTIONS(verd, verd_rows, verd_table)

int verd_open(h5io_file *f, const char *path, int64_t *n)
{
    return cols_open(f, path, VERD_SCHEMA, VERD_SCHEMA_VERSION, &verd_table, n);
}

int verd_read_judgements(h5io_file *f, int64_t row0, int64_t n, verd_rows *r)
{
    memset(r, 0, sizeof *r);
    cols_grow_rows(&verd_table, r, n > 0 ? n : 1);
    int rc = 0;
    for (int i = 0; rc == 0 && i < verd_table.n_cols; i++) {
        const cols_col *c = &verd_table.cols[i];
        if (c->kind != COLS_FIXED) continue;
        char path[64];
        snprintf(path, sizeof path, "%s/%s", verd_table.group, c->name);
        void *field;
        memcpy(&field, (char *)r + c->field, sizeof field);
        rc = h5io_read_column(f, path, c->type, row0, n, field);
    }
    memset(r->text_len, 0, sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    r->n = n;
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
