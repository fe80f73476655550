/* h5io_testdata.h — rows for the h5io tests, as pure functions of the
 * global row number, so any rank can build its block of rows and check any
 * row it reads back; and a dataset-by-dataset comparison of two files
 * through plain serial HDF5 (no sima code, default file driver).
 *
 * Header-only (static functions): included by tests/unit/test_h5io.c and
 * tests/mpi/test_h5io.c. */
#ifndef SIMA_TEST_H5IO_TESTDATA_H
#define SIMA_TEST_H5IO_TESTDATA_H

#include "check.h"
#include "err.h"
#include "h5io.h"

#include <hdf5.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TD_MAX_ROW_BYTES 512

/* A ragged row: writes row g's elements into out, returns their count. */
typedef int64_t (*td_ragged_fn)(int64_t g, void *out);
/* A column row: writes row g's `width` elements into out. */
typedef void (*td_column_fn)(int64_t g, int width, void *out);

/* Text: empty every 5th row, else multi-byte UTF-8 (2-, 3- and 4-byte
 * sequences), of varying length. */
static int64_t td_text(int64_t g, void *out)
{
    static const char *const words[] = {"héllo", "世界", "🙂", "naïve café", "ÅΩЖ", "plain"};
    char *s = out;
    if (g % 5 == 0) return 0;
    int n = snprintf(s, TD_MAX_ROW_BYTES, "%" PRId64 ":", g);
    for (int64_t k = 0; k < g % 4 + 1; k++)
        n += snprintf(s + n, (size_t)(TD_MAX_ROW_BYTES - n), " %s", words[(g + k) % 6]);
    return n;
}

/* Token ids, some negative and some at the int32 limits; empty rows too. */
static int64_t td_tokens(int64_t g, void *out)
{
    int32_t *t = out;
    int64_t n = (g * 7) % 11;
    for (int64_t j = 0; j < n; j++) {
        if (j == 0 && g % 3 == 0) t[j] = INT32_MIN;
        else if (j == 1 && g % 4 == 0) t[j] = INT32_MAX;
        else t[j] = (int32_t)((g * 1000 + j) * (j % 2 ? -1 : 1));
    }
    return n;
}

/* Raw bytes (stand-in for JPEG data): every value 0..255 appears. */
static int64_t td_bytes(int64_t g, void *out)
{
    uint8_t *b = out;
    int64_t n = (g % 13) * 3;
    for (int64_t j = 0; j < n; j++) b[j] = (uint8_t)(g * 31 + j * 7);
    return n;
}

static int64_t td_logprobs(int64_t g, void *out)
{
    float *x = out;
    int64_t n = g % 6;
    for (int64_t j = 0; j < n; j++) x[j] = -(float)(g + j) * 0.125f - 1e-7f * (float)j;
    return n;
}

static void td_i8(int64_t g, int w, void *out) { ((int8_t *)out)[0] = (int8_t)(g * 37); (void)w; }
static void td_i32(int64_t g, int w, void *out) { ((int32_t *)out)[0] = (int32_t)(7 - 3 * g); (void)w; }
static void td_i64(int64_t g, int w, void *out) { ((int64_t *)out)[0] = g * 1000000007LL - 5; (void)w; }
static void td_u8(int64_t g, int w, void *out) { ((uint8_t *)out)[0] = (uint8_t)(g * 11); (void)w; }
static void td_u64(int64_t g, int w, void *out) { ((uint64_t *)out)[0] = UINT64_MAX - (uint64_t)g * 3; (void)w; }
static void td_f32(int64_t g, int w, void *out) { ((float *)out)[0] = (float)g * 0.5f - 3.25f; (void)w; }
static void td_f64(int64_t g, int w, void *out) { ((double *)out)[0] = (double)g / 3.0; (void)w; }
static void td_i64_wide(int64_t g, int w, void *out)
{
    for (int c = 0; c < w; c++) ((int64_t *)out)[c] = g * 10 + c;
}
static void td_f32_wide(int64_t g, int w, void *out)
{
    for (int c = 0; c < w; c++) ((float *)out)[c] = (float)g + (float)c * 0.25f;
}

static size_t td_size(h5io_type t)
{
    switch (t) {
    case H5IO_I8: case H5IO_U8: case H5IO_TEXT: return 1;
    case H5IO_I32: case H5IO_F32: return 4;
    default: return 8;
    }
}

/* Rows [g0, g0 + n) of a ragged column: lengths and concatenated elements. */
static void td_build_ragged(td_ragged_fn fn, h5io_type t, int64_t g0, int64_t n,
                            int64_t **lengths, void **data)
{
    size_t es = td_size(t);
    *lengths = xmalloc((size_t)(n > 0 ? n : 1) * sizeof **lengths);
    char *buf = xmalloc((size_t)(n > 0 ? n : 1) * TD_MAX_ROW_BYTES);
    size_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        (*lengths)[i] = fn(g0 + i, buf + used);
        used += (size_t)(*lengths)[i] * es;
    }
    *data = buf;
}

static void *td_build_column(td_column_fn fn, h5io_type t, int width, int64_t g0, int64_t n)
{
    size_t row = td_size(t) * (size_t)width;
    char *buf = xmalloc((size_t)(n > 0 ? n : 1) * row);
    for (int64_t i = 0; i < n; i++) fn(g0 + i, width, buf + (size_t)i * row);
    return buf;
}

/* Read rows [row0, row0 + n) of a ragged column and compare with fn;
 * returns the number of rows that differ (-1: the read failed). */
static int64_t td_ragged_mismatches(h5io_file *f, const char *path, td_ragged_fn fn,
                                    h5io_type t, int64_t row0, int64_t n)
{
    size_t es = td_size(t);
    int64_t *off = xmalloc((size_t)(n + 1) * sizeof *off);
    void *data = NULL;
    if (h5io_read_ragged(f, path, t, row0, n, off, &data)) {
        fprintf(stderr, "read %s failed: %s\n", path, err_msg());
        free(off);
        return -1;
    }
    int64_t bad = off[0] != 0;
    char want[TD_MAX_ROW_BYTES];
    for (int64_t i = 0; i < n; i++) {
        int64_t len = fn(row0 + i, want);
        if (off[i + 1] - off[i] != len ||
            memcmp((char *)data + (size_t)off[i] * es, want, (size_t)len * es) != 0)
            bad++;
    }
    if (t == H5IO_TEXT && ((char *)data)[off[n]] != '\0') bad++;
    free(data);
    free(off);
    return bad;
}

static int64_t td_column_mismatches(h5io_file *f, const char *path, td_column_fn fn,
                                    h5io_type t, int width, int64_t row0, int64_t n)
{
    size_t row = td_size(t) * (size_t)width;
    char *got = xmalloc((size_t)(n > 0 ? n : 1) * row);
    if (h5io_read_column(f, path, t, row0, n, got)) {
        fprintf(stderr, "read %s failed: %s\n", path, err_msg());
        free(got);
        return -1;
    }
    int64_t bad = 0;
    char want[TD_MAX_ROW_BYTES];
    for (int64_t i = 0; i < n; i++) {
        fn(row0 + i, width, want);
        if (memcmp(got + (size_t)i * row, want, row) != 0) bad++;
    }
    free(got);
    return bad;
}

/* ---- comparing two files through plain HDF5 ---- */

typedef struct {
    hid_t other;
    int datasets, differ;
    char first_diff[256];
} td_compare;

static void td_note_diff(td_compare *c, const char *name, const char *why)
{
    if (!c->differ) snprintf(c->first_diff, sizeof c->first_diff, "%s: %s", name, why);
    c->differ++;
}

/* Compare one dataset's type, shape and raw stored values. */
static void td_compare_dataset(td_compare *c, hid_t a, const char *name)
{
    hid_t b = H5Oexists_by_name(c->other, name, H5P_DEFAULT) > 0
                  ? H5Dopen2(c->other, name, H5P_DEFAULT) : -1;
    if (b < 0) {
        td_note_diff(c, name, "missing in the second file");
        return;
    }
    hid_t ta = H5Dget_type(a), tb = H5Dget_type(b);
    hid_t sa = H5Dget_space(a), sb = H5Dget_space(b);
    hsize_t da[4] = {0}, db[4] = {0};
    int na = H5Sget_simple_extent_dims(sa, da, NULL), nb = H5Sget_simple_extent_dims(sb, db, NULL);
    hssize_t pts = H5Sget_simple_extent_npoints(sa);
    if (H5Tequal(ta, tb) <= 0) td_note_diff(c, name, "types differ");
    else if (na != nb || memcmp(da, db, sizeof da) != 0) td_note_diff(c, name, "shapes differ");
    else {
        size_t bytes = (size_t)pts * H5Tget_size(ta);
        char *ba = xmalloc(bytes + 1), *bb = xmalloc(bytes + 1);
        if (H5Dread(a, ta, H5S_ALL, H5S_ALL, H5P_DEFAULT, ba) < 0 ||
            H5Dread(b, tb, H5S_ALL, H5S_ALL, H5P_DEFAULT, bb) < 0)
            td_note_diff(c, name, "unreadable");
        else if (memcmp(ba, bb, bytes) != 0)
            td_note_diff(c, name, "values differ");
        free(ba);
        free(bb);
    }
    H5Tclose(ta);
    H5Tclose(tb);
    H5Sclose(sa);
    H5Sclose(sb);
    H5Dclose(b);
}

static herr_t td_visit(hid_t obj, const char *name, const H5O_info_t *info, void *op)
{
    td_compare *c = op;
    if (info->type != H5O_TYPE_DATASET) return 0;
    c->datasets++;
    hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
    if (ds < 0) {
        td_note_diff(c, name, "cannot open");
        return 0;
    }
    td_compare_dataset(c, ds, name);
    H5Dclose(ds);
    return 0;
}

static int td_count_datasets(hid_t file)
{
    td_compare c = {.other = file};
    H5Ovisit(file, H5_INDEX_NAME, H5_ITER_INC, td_visit, &c); /* compares with itself */
    return c.datasets;
}

/* Every dataset of a also in b with the same type, shape and values, and
 * the same number of datasets in each. Returns the count of differences;
 * *why gets the first. Plain HDF5, default (serial) driver. */
static int td_compare_files(const char *pa, const char *pb, char *why, size_t why_n)
{
    hid_t a = H5Fopen(pa, H5F_ACC_RDONLY, H5P_DEFAULT), b = H5Fopen(pb, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (a < 0 || b < 0) {
        snprintf(why, why_n, "cannot open %s or %s", pa, pb);
        if (a >= 0) H5Fclose(a);
        if (b >= 0) H5Fclose(b);
        return 1;
    }
    td_compare c = {.other = b};
    H5Ovisit(a, H5_INDEX_NAME, H5_ITER_INC, td_visit, &c);
    if (c.datasets == 0) td_note_diff(&c, pa, "no datasets");
    if (td_count_datasets(b) != c.datasets) td_note_diff(&c, pb, "a different number of datasets");
    snprintf(why, why_n, "%s", c.first_diff);
    H5Fclose(a);
    H5Fclose(b);
    return c.differ;
}

/* Layout and filters of a dataset through plain HDF5: *chunked, *filters. */
static int td_storage(const char *file, const char *dset, int *chunked, int *filters)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    hid_t p = d < 0 ? -1 : H5Dget_create_plist(d);
    int rc = p < 0 ? -1 : 0;
    if (rc == 0) {
        *chunked = H5Pget_layout(p) == H5D_CHUNKED;
        *filters = H5Pget_nfilters(p);
        H5Pclose(p);
    }
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    return rc;
}

#endif
