/* responses.h — io layer: rows of a sima.responses file (data/schemas/responses.md)
 * in memory, and their collective write / whole read. */
#ifndef SIMA_IO_RESPONSES_H
#define SIMA_IO_RESPONSES_H

#include "columns.h"
#include "h5io.h"

#define RESP_SCHEMA "sima.responses"
#define RESP_SCHEMA_VERSION 1

enum { RESP_GREEDY = 0, RESP_SAMPLED = 1 };

/* n rows; ragged columns as lengths + concatenated elements. */
typedef struct {
    int64_t n, cap;
    int64_t *prompt;        /* [n] */
    int32_t *candidate;     /* [n] */
    int8_t *kind;           /* [n] RESP_GREEDY | RESP_SAMPLED */
    uint64_t *seed;         /* [n] */
    double *sum_logprob;    /* [n] */
    int8_t *finish;         /* [n] gen_finish codes */
    int64_t *n_tokens;      /* [n] */
    int32_t *tokens;        /* [sum n_tokens] */
    float *logprobs;        /* [sum n_tokens] */
    int64_t tok_total, tok_cap;
    int64_t *text_len;      /* [n] bytes */
    char *text;             /* [sum text_len] UTF-8 */
    int64_t text_total, text_cap;
} resp_rows;

/* The file group of these rows, for the generic column functions (columns.h). */
extern const cols_table resp_table;

/* Append one row (copies tokens, logprobs and text). */
void resp_push(resp_rows *r, int64_t prompt, int32_t candidate, int8_t kind, uint64_t seed,
               int8_t finish, const int32_t *tokens, const float *logprobs, int64_t n_tokens,
               const char *text, int64_t text_len);
/* Append all rows of src. */
void resp_append(resp_rows *dst, const resp_rows *src);
void resp_free(resp_rows *r);

/* Write the /responses group: each rank its rows, in rank order (collective). */
int resp_write(h5io_file *f, const resp_rows *r);
/* Read every row of a file's /responses group. */
int resp_read(h5io_file *f, resp_rows *r);

/* ------------------------------------------- reading a part at a time -- */

/* Open a responses file for this rank alone and check its schema and that
 * every column has the same rows (*n gets them, n may be NULL). */
int resp_open(h5io_file *f, const char *path, int64_t *n);
/* Rows [row0, row0 + n) of /responses (hyperslab reads of every column). */
int resp_read_range(h5io_file *f, int64_t row0, int64_t n, resp_rows *r);

/* The prompts of a responses file with at least min_cands candidates,
 * found in one pass over its prompt and candidate columns, a window of
 * rows at a time: item i's candidates are the rows from item_row0[i] on
 * with its prompt. 8 bytes per item. */
typedef struct {
    int64_t n_items;
    int64_t *item_row0;     /* [n_items + 1]; the last is the file's rows */
} resp_index;
/* Errors: a prompt outside [0, n_prompts) ("x.h5: row 7 names prompt 99,
 * the prompts file has 30"), rows not grouped by prompt with candidates
 * 0, 1, ... ("x.h5: rows are not ordered by prompt and candidate (row
 * 7)"). */
int resp_index_items(h5io_file *f, int64_t n_prompts, int min_cands, resp_index *ix);
/* The first row whose prompt is >= prompt (rows: the file's; a binary
 * search reading one value per step). -1 on a read error. */
int64_t resp_lower_bound(h5io_file *f, int64_t rows, int64_t prompt);

#endif
