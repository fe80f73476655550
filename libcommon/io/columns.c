/* columns.c — io layer: column groups written, read, grown and freed from
 * a table of their fields. */
#include "columns.h"
#include "err.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fields are reached by their offset in the rows struct; pointers and
 * counts are copied through memcpy, so no lvalue of another type is used. */
static void *get_ptr(const void *rows, size_t off)
{
    void *p;
    memcpy(&p, (const char *)rows + off, sizeof p);
    return p;
}

static void set_ptr(void *rows, size_t off, void *p)
{
    memcpy((char *)rows + off, &p, sizeof p);
}

static int64_t get_i64(const void *rows, size_t off)
{
    int64_t v;
    memcpy(&v, (const char *)rows + off, sizeof v);
    return v;
}

static void set_i64(void *rows, size_t off, int64_t v)
{
    memcpy((char *)rows + off, &v, sizeof v);
}

static cols_ragged *ragged_at(void *rows, size_t off)
{
    return (cols_ragged *)(void *)((char *)rows + off);
}

/* The first column using col i's lengths array (i itself if none before). */
static int lengths_owner(const cols_table *t, int i)
{
    for (int j = 0; j < i; j++)
        if (t->cols[j].kind == COLS_LENGTHS && t->cols[j].len == t->cols[i].len) return j;
    return i;
}

static void column_path(const cols_table *t, const cols_col *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", t->group, c->name);
}

/* Resize every per-row array to cap rows. */
static void resize_rows(const cols_table *t, void *rows, int64_t cap)
{
    for (int i = 0; i < t->n_cols; i++) {
        const cols_col *c = &t->cols[i];
        if (c->kind == COLS_FIXED) {
            size_t el = h5io_type_size(c->type);
            set_ptr(rows, c->field, xrealloc(get_ptr(rows, c->field), (size_t)cap * el));
        } else if (c->kind == COLS_LENGTHS && lengths_owner(t, i) == i) {
            set_ptr(rows, c->len, xrealloc(get_ptr(rows, c->len), (size_t)cap * sizeof(int64_t)));
        } else if (c->kind == COLS_OFFSETS) {
            cols_ragged *g = ragged_at(rows, c->field);
            if (!g->off) g->off = xcalloc(1, sizeof(int64_t)); /* off[0] = 0 */
            g->off = xrealloc(g->off, (size_t)(cap + 1) * sizeof(int64_t));
        }
    }
    set_i64(rows, t->cap, cap);
}

void cols_grow_rows(const cols_table *t, void *rows, int64_t need)
{
    int64_t cap = get_i64(rows, t->cap);
    if (need <= cap) return;
    cap = cap ? cap : 64;
    while (cap < need) cap *= 2;
    resize_rows(t, rows, cap);
}

void cols_free(const cols_table *t, void *rows)
{
    for (int i = 0; i < t->n_cols; i++) {
        const cols_col *c = &t->cols[i];
        if (c->kind == COLS_OFFSETS) {
            cols_ragged *g = ragged_at(rows, c->field);
            free(g->off);
            free(g->data);
            continue;
        }
        free(get_ptr(rows, c->field));
        if (c->kind == COLS_LENGTHS && lengths_owner(t, i) == i) free(get_ptr(rows, c->len));
    }
    memset(rows, 0, t->size);
}

void cols_reserve(void **p, int64_t *cap, int64_t need, size_t elsize)
{
    if (need <= *cap) return;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    *p = xrealloc(*p, (size_t)c * elsize);
    *cap = c;
}

void cols_ragged_push(cols_ragged *g, int64_t row, const void *v, int64_t len, size_t elsize)
{
    int64_t end = g->off[row];
    cols_reserve(&g->data, &g->cap, end + len + 1, elsize);
    if (len) memcpy((char *)g->data + (size_t)end * elsize, v, (size_t)len * elsize);
    g->off[row + 1] = end + len;
}

/* ------------------------------------------------------------ append -- */

/* Add src's elements of a ragged column with lengths after dst's; old is
 * dst as it was before (columns sharing lengths share total and cap, so
 * each must grow from the old values). */
static void append_lengths(const cols_col *c, void *dst, const void *old, const void *src)
{
    size_t el = h5io_type_size(c->type);
    int64_t total = get_i64(old, c->total), add = get_i64(src, c->total);
    int64_t cap = get_i64(old, c->cap);
    void *data = get_ptr(dst, c->field);
    cols_reserve(&data, &cap, total + add + 1, el);
    if (add > 0) memcpy((char *)data + (size_t)total * el, get_ptr(src, c->field), (size_t)add * el);
    set_ptr(dst, c->field, data);
    set_i64(dst, c->cap, cap);
    set_i64(dst, c->total, total + add);
}

/* Add src's k rows of a ragged column with offsets after dst's n0. */
static void append_offsets(const cols_col *c, void *dst, const void *src, int64_t n0, int64_t k)
{
    cols_ragged *g = ragged_at(dst, c->field);
    const cols_ragged *s = ragged_at((void *)src, c->field);
    size_t el = h5io_type_size(c->type);
    int64_t end = g->off[n0], add = s->off[k] - s->off[0];
    cols_reserve(&g->data, &g->cap, end + add + 1, el);
    if (add > 0)
        memcpy((char *)g->data + (size_t)end * el, (const char *)s->data + (size_t)s->off[0] * el,
               (size_t)add * el);
    for (int64_t r = 1; r <= k; r++) g->off[n0 + r] = end + s->off[r] - s->off[0];
}

void cols_append(const cols_table *t, void *dst, const void *src)
{
    int64_t n0 = get_i64(dst, t->n), k = get_i64(src, t->n);
    if (k <= 0) return;
    cols_grow_rows(t, dst, n0 + k);
    void *old = xmalloc(t->size);
    memcpy(old, dst, t->size);
    for (int i = 0; i < t->n_cols; i++) {
        const cols_col *c = &t->cols[i];
        size_t el = h5io_type_size(c->type);
        if (c->kind == COLS_FIXED) {
            memcpy((char *)get_ptr(dst, c->field) + (size_t)n0 * el, get_ptr(src, c->field),
                   (size_t)k * el);
        } else if (c->kind == COLS_LENGTHS) {
            if (lengths_owner(t, i) == i)
                memcpy((int64_t *)get_ptr(dst, c->len) + n0, get_ptr(src, c->len),
                       (size_t)k * sizeof(int64_t));
            append_lengths(c, dst, old, src);
        } else {
            append_offsets(c, dst, src, n0, k);
        }
    }
    free(old);
    set_i64(dst, t->n, n0 + k);
}

/* ------------------------------------------------------------- write -- */

/* The lengths of a cols_ragged's n rows (malloc'd). */
static int64_t *ragged_lengths(const cols_ragged *g, int64_t n)
{
    int64_t *len = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) len[i] = g->off[i + 1] - g->off[i];
    return len;
}

int64_t cols_local_elems(const cols_table *t, const void *rows, int64_t *elems)
{
    int64_t n = get_i64(rows, t->n);
    for (int i = 0; i < t->n_cols; i++) {
        const cols_col *c = &t->cols[i];
        if (c->kind == COLS_FIXED) elems[i] = n;
        else if (c->kind == COLS_LENGTHS) elems[i] = n ? get_i64(rows, c->total) : 0;
        else elems[i] = n ? ragged_at((void *)rows, c->field)->off[n] : 0;
    }
    return n;
}

int cols_writer_begin(h5io_file *f, const cols_table *t, int64_t rows, const int64_t *elems,
                      cols_writer *w)
{
    w->t = t;
    w->s = xcalloc((size_t)t->n_cols, sizeof *w->s);
    for (int i = 0; i < t->n_cols; i++) w->s[i].data = w->s[i].offsets = -1;
    int rc = h5io_group(f, t->group);
    for (int i = 0; rc == 0 && i < t->n_cols; i++) {
        const cols_col *c = &t->cols[i];
        char path[256];
        column_path(t, c, path, sizeof path);
        int64_t e = rows == H5IO_GROWING ? H5IO_GROWING : elems[i];
        rc = c->kind == COLS_FIXED ? h5io_stream_column(f, path, c->type, 1, rows, &w->s[i])
                                   : h5io_stream_ragged(f, path, c->type, rows, e, &w->s[i]);
        if (rc == 0 && c->names) rc = h5io_set_attr_str(f, path, "names", c->names);
    }
    return rc;
}

int cols_writer_blocks(cols_writer *w, int64_t rows, const int64_t *elems)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < w->t->n_cols; i++)
        rc = h5io_stream_blocks(&w->s[i], rows, elems[i]);
    return rc;
}

static int put_one(h5io_stream *s, const cols_col *c, const void *rows, int64_t n)
{
    if (c->kind == COLS_FIXED) return h5io_stream_put(s, n, NULL, get_ptr(rows, c->field));
    if (c->kind == COLS_LENGTHS)
        return h5io_stream_put(s, n, get_ptr(rows, c->len), get_ptr(rows, c->field));
    const cols_ragged *g = ragged_at((void *)rows, c->field);
    int64_t *len = ragged_lengths(g, n);
    int rc = h5io_stream_put(s, n, len, g->data);
    free(len);
    return rc;
}

int cols_writer_put(cols_writer *w, const void *rows)
{
    int64_t n = get_i64(rows, w->t->n);
    int rc = 0;
    for (int i = 0; rc == 0 && i < w->t->n_cols; i++)
        rc = put_one(&w->s[i], &w->t->cols[i], rows, n);
    return rc;
}

int cols_writer_end(cols_writer *w)
{
    int rc = 0;
    for (int i = 0; w->s && i < w->t->n_cols; i++) {
        int end = h5io_stream_end(&w->s[i]);
        if (rc == 0) rc = end;
    }
    free(w->s);
    w->s = NULL;
    return rc;
}

int cols_write(h5io_file *f, const cols_table *t, const void *rows)
{
    int k = t->n_cols + 1;
    int64_t *size = xmalloc(sizeof(int64_t) * (size_t)k);
    size[0] = cols_local_elems(t, rows, size + 1);
    int rc = 0;
    if (MPI_Allreduce(MPI_IN_PLACE, size, k, MPI_INT64_T, MPI_SUM, f->comm) != MPI_SUCCESS)
        rc = ERR("%s: %s: MPI_Allreduce of the sizes failed", f->path, t->group);
    cols_writer w = {t, NULL};
    if (rc == 0) rc = cols_writer_begin(f, t, size[0], size + 1, &w);
    if (rc == 0) rc = cols_writer_put(&w, rows);
    int end = cols_writer_end(&w);
    free(size);
    return rc ? rc : end;
}

/* -------------------------------------------------------------- read -- */

/* A ragged column with lengths: the first column of its lengths fills
 * them; the others must match. */
static int read_lengths_column(h5io_file *f, const cols_table *t, int i, const char *path,
                               int64_t row0, int64_t n, void *rows)
{
    const cols_col *c = &t->cols[i];
    int owner = lengths_owner(t, i);
    int64_t *off = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    void *data = NULL;
    int rc = h5io_read_ragged(f, path, c->type, row0, n, off, &data);
    set_ptr(rows, c->field, data);
    int64_t *len = get_ptr(rows, c->len);
    if (rc == 0 && owner == i) {
        for (int64_t r = 0; r < n; r++) len[r] = off[r + 1] - off[r];
        set_i64(rows, c->total, off[n]);
        set_i64(rows, c->cap, off[n]);
    } else if (rc == 0) {
        bool same = off[n] == get_i64(rows, c->total);
        for (int64_t r = 0; same && r < n; r++) same = len[r] == off[r + 1] - off[r];
        if (!same)
            rc = ERR("%s: %s and %s have different lengths", f->path, c->name,
                     t->cols[owner].name);
    }
    free(off);
    return rc;
}

static int read_one(h5io_file *f, const cols_table *t, int i, int64_t row0, int64_t n,
                    void *rows)
{
    const cols_col *c = &t->cols[i];
    char path[256];
    column_path(t, c, path, sizeof path);
    if (c->kind == COLS_FIXED)
        return h5io_read_column(f, path, c->type, row0, n, get_ptr(rows, c->field));
    if (c->kind == COLS_LENGTHS) return read_lengths_column(f, t, i, path, row0, n, rows);
    cols_ragged *g = ragged_at(rows, c->field);
    int rc = h5io_read_ragged(f, path, c->type, row0, n, g->off, &g->data);
    g->cap = rc == 0 ? g->off[n] : 0;
    return rc;
}

int64_t cols_rows(h5io_file *f, const cols_table *t)
{
    char first[256], path[256];
    column_path(t, &t->cols[0], first, sizeof first);
    int64_t n = h5io_rows(f, first);
    for (int i = 1; n >= 0 && i < t->n_cols; i++) {
        column_path(t, &t->cols[i], path, sizeof path);
        int64_t m = h5io_rows(f, path);
        if (m >= 0 && m != n)
            return ERR("%s: %s has %lld rows, %s %lld", f->path, path, (long long)m, first,
                       (long long)n);
        if (m < 0) return -1;
    }
    return n;
}

int cols_open(h5io_file *f, const char *path, const char *schema, int version,
              const cols_table *t, int64_t *n)
{
    if (h5io_open(f, path, MPI_COMM_SELF) != 0) return -1;
    int64_t rows = -1;
    int rc = h5io_require_schema(f, schema, version);
    if (rc == 0 && (rows = cols_rows(f, t)) < 0) rc = -1;
    if (rc != 0) h5io_close(f);
    else if (n) *n = rows;
    return rc;
}

int cols_elems(h5io_file *f, const cols_table *t, int64_t *elems)
{
    int64_t n = cols_rows(f, t);
    for (int i = 0; n >= 0 && i < t->n_cols; i++) {
        const cols_col *c = &t->cols[i];
        char path[256];
        column_path(t, c, path, sizeof path);
        elems[i] = c->kind == COLS_FIXED ? n : h5io_ragged_elems(f, path);
        if (elems[i] < 0) return -1;
    }
    return n < 0 ? -1 : 0;
}

int cols_read_range(h5io_file *f, const cols_table *t, int64_t row0, int64_t n, void *rows)
{
    memset(rows, 0, t->size);
    int64_t total = cols_rows(f, t);
    if (total < 0) return -1;
    if (row0 < 0 || n < 0 || row0 > total || n > total - row0)
        return ERR("%s: %s: rows [%lld, %lld) out of range (%lld rows)", f->path, t->group,
                   (long long)row0, (long long)(row0 + n), (long long)total);
    resize_rows(t, rows, n > 0 ? n : 1);
    set_i64(rows, t->n, n);
    int rc = 0;
    for (int i = 0; rc == 0 && i < t->n_cols; i++) rc = read_one(f, t, i, row0, n, rows);
    if (rc != 0) cols_free(t, rows);
    return rc;
}

int cols_read(h5io_file *f, const cols_table *t, void *rows)
{
    memset(rows, 0, t->size);
    int64_t n = cols_rows(f, t);
    return n < 0 ? -1 : cols_read_range(f, t, 0, n, rows);
}
