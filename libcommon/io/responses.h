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

#endif
