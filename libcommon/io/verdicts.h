/* verdicts.h — io layer: rows of a sima.verdicts file
 * (data/schemas/verdicts.md) in memory; collective write, whole read and
 * reads of a row range. */
#ifndef SIMA_IO_VERDICTS_H
#define SIMA_IO_VERDICTS_H

#include "columns.h"
#include "h5io.h"

#include <stdbool.h>

#define VERD_SCHEMA "sima.verdicts"
#define VERD_SCHEMA_VERSION 1

typedef struct {
    int64_t n, cap;
    int64_t *prompt;
    int32_t *first, *second, *winner;
    int8_t *order, *verdict, *consistent, *skipped, *truncated;
    int64_t *prompt_tokens;
    int64_t *text_len;      /* [n] */
    char *text;             /* [sum text_len] UTF-8 */
    int64_t text_total, text_cap;
} verd_rows;

/* One judgement. */
typedef struct {
    int64_t prompt;
    int32_t first, second, winner;
    int8_t order, verdict, consistent, skipped, truncated;
    int64_t prompt_tokens;
} verd_row;

/* The file group of these rows, for the generic column functions (columns.h). */
extern const cols_table verd_table;

void verd_push(verd_rows *r, const verd_row *row, const char *text, int64_t text_len);
void verd_get(const verd_rows *r, int64_t i, verd_row *row);
/* Start of row i's text in r->text (rows are stored in order). */
const char *verd_text(const verd_rows *r, int64_t i, int64_t *len);
void verd_append(verd_rows *dst, const verd_rows *src);
void verd_free(verd_rows *r);

int verd_write(h5io_file *f, const verd_rows *r);   /* collective */
int verd_read(h5io_file *f, verd_rows *r);          /* every row */

/* Open a verdicts file for this rank alone, check its schema and that every
 * column has the same rows (*n gets them, n may be NULL). */
int verd_open(h5io_file *f, const char *path, int64_t *n);
/* Rows [row0, row0 + n) of every column but the critic's text (text_len
 * zero, text NULL): what choosing pairs needs, 40 bytes a row. */
int verd_read_judgements(h5io_file *f, int64_t row0, int64_t n, verd_rows *r);

/* The verdict in a critic's output: the last "[[1]]" or "[[2]]"; 0 if none. */
int verd_parse(const char *text, size_t len);

/* Winners and agreement of n judgements: winner[i] = first[i] for verdict
 * 1, second[i] for 2, else -1. With both_orders the judgements come in
 * pairs (default order, then swapped) and consistent[i] is 1 when both of
 * a pair pick the same candidate, else 0; without, -1. */
void verd_resolve(const int8_t *verdict, const int32_t *first, const int32_t *second, int n,
                  bool both_orders, int32_t *winner, int8_t *consistent);

#endif
