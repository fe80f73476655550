/* columns.h — io layer: one writer and reader for the row files' column
 * groups (sima.responses, sima.verdicts, sima.pairs).
 *
 * A schema's rows live in memory as a struct of arrays: an int64 row count
 * n, a per-row capacity, one array per fixed column, and ragged columns in
 * one of two forms: lengths [n] + concatenated elements + an element count,
 * or a cols_ragged (offsets [n + 1] + elements). A cols_table lists the
 * columns of one group, in the order they are written, with the offsets of
 * their fields in the struct; the functions below then write, read, grow
 * and free any such struct. The table is the one place that says which
 * datasets a file holds (data/schemas/): same names, types and attributes
 * whatever struct serves them.
 */
#ifndef SIMA_IO_COLUMNS_H
#define SIMA_IO_COLUMNS_H

#include "h5io.h"

#include <stddef.h>
#include <stdint.h>

/* A ragged column in memory: row i is elements [off[i], off[i+1]). */
typedef struct {
    int64_t *off;               /* [cap_rows + 1] */
    void *data;
    int64_t cap;                /* elements allocated in data */
} cols_ragged;

typedef enum {
    COLS_FIXED,     /* field: T * [n], one element per row */
    COLS_LENGTHS,   /* field: T * [total]; len: int64 * [n]; total, cap: int64. Columns
                       naming the same len share lengths, total and cap */
    COLS_OFFSETS,   /* field: a cols_ragged */
} cols_kind;

typedef struct {
    const char *name;           /* dataset below the group: "prompt" */
    h5io_type type;
    cols_kind kind;
    size_t field;               /* offsetof the array (or the cols_ragged) */
    size_t len, total, cap;     /* COLS_LENGTHS: offsetof lengths, element count, capacity */
    const char *names;          /* value of the dataset's "names" attribute, or NULL */
} cols_col;

typedef struct {
    const char *group;          /* "/responses" */
    const cols_col *cols;       /* in write order; cols[0] is fixed and gives the row count */
    int n_cols;
    size_t n, cap;              /* offsetof the int64 row count and row capacity */
    size_t size;                /* sizeof the struct */
} cols_table;

/* Table entries. */
#define COLS_FIX(S, f, type) {#f, type, COLS_FIXED, offsetof(S, f), 0, 0, 0, NULL}
#define COLS_FIX_NAMES(S, f, type, names) {#f, type, COLS_FIXED, offsetof(S, f), 0, 0, 0, names}
#define COLS_LEN(S, name, type, f, len, total, cap) \
    {name, type, COLS_LENGTHS, offsetof(S, f), offsetof(S, len), offsetof(S, total), offsetof(S, cap), NULL}
#define COLS_OFF(S, name, type, f) {name, type, COLS_OFFSETS, offsetof(S, f), 0, 0, 0, NULL}

/* Define PREFIX_append, PREFIX_free, PREFIX_write and PREFIX_read of a rows
 * type served by TABLE (declared in the module's header). */
#define COLS_ROW_FUNCTIONS(prefix, rows_type, table)                                          \
    void prefix##_append(rows_type *dst, const rows_type *src) { cols_append(&(table), dst, src); } \
    void prefix##_free(rows_type *r) { cols_free(&(table), r); }                               \
    int prefix##_write(h5io_file *f, const rows_type *r) { return cols_write(f, &(table), r); } \
    int prefix##_read(h5io_file *f, rows_type *r) { return cols_read(f, &(table), r); }

/* Write the group: each rank its rows, in rank order (collective). */
int cols_write(h5io_file *f, const cols_table *t, const void *rows);
/* Read every row of the group into rows (zeroed first; freed on failure).
 * Ragged columns sharing lengths must agree: "x.h5: token_logprobs and
 * tokens have different lengths". */
int cols_read(h5io_file *f, const cols_table *t, void *rows);
/* Read rows [row0, row0 + n) of the group (hyperslabs of each column: a
 * reader holds only those rows), as cols_read. */
int cols_read_range(h5io_file *f, const cols_table *t, int64_t row0, int64_t n, void *rows);
/* Open a file of these rows for this rank alone: its schema checked
 * (h5io_require_schema) and every column found to have the same rows (*n
 * gets them; n may be NULL). */
int cols_open(h5io_file *f, const char *path, const char *schema, int version,
              const cols_table *t, int64_t *n);
/* The group's rows, once every column is found to have as many ("x.h5:
 * /responses/text has 9 rows, /responses/prompt 10"); -1 (error set). */
int64_t cols_rows(h5io_file *f, const cols_table *t);
/* Elements stored per column, elems[t->n_cols]: the rows of a fixed
 * column, the data size of a ragged one. */
int cols_elems(h5io_file *f, const cols_table *t, int64_t *elems);

/* Writing the group in rounds (h5io streams, one per column): begin with
 * the group's final rows and each column's elements (cols_elems' form), or
 * H5IO_GROWING and NULL; each put (collective) adds every rank's rows of
 * the round after those of the rounds before, in rank order. */
typedef struct {
    const cols_table *t;
    h5io_stream *s;             /* [t->n_cols] */
} cols_writer;
int cols_writer_begin(h5io_file *f, const cols_table *t, int64_t rows, const int64_t *elems,
                      cols_writer *w);
/* Block placement of every column (h5io_stream_blocks, collective): this
 * rank's rows and elements per column; its puts then fill its block. */
int cols_writer_blocks(cols_writer *w, int64_t rows, const int64_t *elems);
int cols_writer_put(cols_writer *w, const void *rows);
/* Close every column (collective); an error when a size was not reached. */
int cols_writer_end(cols_writer *w);
/* This rank's rows and elements per column (cols_elems' form) of rows. */
int64_t cols_local_elems(const cols_table *t, const void *rows, int64_t *elems);
/* Make room for `need` rows in every per-row array (fixed columns, lengths,
 * offsets); capacities double from 64. */
void cols_grow_rows(const cols_table *t, void *rows, int64_t need);
/* Append every row of src to dst (both of table t). */
void cols_append(const cols_table *t, void *dst, const void *src);
/* Free every array of rows and zero the struct. */
void cols_free(const cols_table *t, void *rows);

/* Make room for `need` elements of elsize bytes in *p (capacity *cap,
 * doubling from 64). */
void cols_reserve(void **p, int64_t *cap, int64_t need, size_t elsize);
/* Append row `row`'s len elements to a ragged column whose offsets have room
 * for row + 2 entries (the rows are appended in order). */
void cols_ragged_push(cols_ragged *g, int64_t row, const void *v, int64_t len, size_t elsize);

#endif
