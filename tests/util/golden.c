/* golden.c — HDF5 readers for the reference vectors. */
#include "golden.h"
#include "check.h"
#include "err.h"
#include "fs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *golden_dir(void)
{
    const char *d = getenv("SIMA_GOLDEN_DIR");
    return (d && d[0]) ? d : SIMA_GOLDEN_DEFAULT;
}

char *golden_path(const char *rel) { return fs_join(golden_dir(), rel); }

char *bundled_golden_path(const char *rel) { return fs_join(SIMA_GOLDEN_DEFAULT, rel); }

hid_t gh5_open(void)
{
    char *p = golden_path("golden.h5");
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) DIE("%s: cannot open the reference file (set SIMA_GOLDEN_DIR)", p);
    free(p);
    return f;
}

typedef struct {
    char **names;
    size_t n, cap;
} name_list;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    name_list *l = op;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->names = xrealloc(l->names, l->cap * sizeof *l->names);
    }
    l->names[l->n++] = xstrdup(name);
    return 0;
}

char **gh5_list(hid_t file, const char *group, size_t *n)
{
    name_list l = {0};
    hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
    if (g < 0) DIE("golden.h5: no group %s", group);
    hsize_t idx = 0;
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &l);
    H5Gclose(g);
    *n = l.n;
    return l.names;
}

void gh5_free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int gh5_exists(hid_t file, const char *path)
{
    /* Check each prefix: H5Lexists fails on a missing intermediate group. */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; ; s++) {
        char c = *s;
        if (c == '/' || c == '\0') {
            *s = '\0';
            if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) return 0;
            *s = c;
            if (c == '\0') return 1;
        }
    }
}

static void *read_as(hid_t file, const char *path, hid_t memtype, size_t elsize,
                     int64_t *dims, int *ndim)
{
    if (!gh5_exists(file, path)) return NULL;
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return NULL;
    hid_t s = H5Dget_space(d);
    hsize_t hd[8] = {0};
    int nd = H5Sget_simple_extent_ndims(s);
    H5Sget_simple_extent_dims(s, hd, NULL);
    size_t total = 1;
    for (int i = 0; i < nd; i++) {
        if (dims) dims[i] = (int64_t)hd[i];
        total *= hd[i];
    }
    if (ndim) *ndim = nd;
    void *buf = xmalloc(total * elsize + 1);
    if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        DIE("golden.h5: cannot read %s", path);
    H5Sclose(s);
    H5Dclose(d);
    return buf;
}

float *gh5_read_f32(hid_t file, const char *path, int64_t *dims, int *ndim)
{
    return read_as(file, path, H5T_NATIVE_FLOAT, sizeof(float), dims, ndim);
}

int64_t *gh5_read_i64(hid_t file, const char *path, int64_t *dims, int *ndim)
{
    return read_as(file, path, H5T_NATIVE_INT64, sizeof(int64_t), dims, ndim);
}

uint8_t *gh5_read_u8(hid_t file, const char *path, int64_t *dims, int *ndim)
{
    return read_as(file, path, H5T_NATIVE_UINT8, 1, dims, ndim);
}

static int64_t numel(const int64_t *dims, int nd)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= dims[i];
    return n;
}

float *gh5_read_f32_n(hid_t file, const char *path, int64_t n)
{
    int64_t dims[8];
    int nd = 0;
    float *v = gh5_read_f32(file, path, dims, &nd);
    if (v && !CHECK_MSG(numel(dims, nd) == n, "%s: %lld values, expected %lld", path,
                        (long long)numel(dims, nd), (long long)n)) {
        free(v);
        return NULL;
    }
    return v;
}

float *gh5_read_pixels(hid_t file, const char *path, int image_size, int *n_img)
{
    int64_t dims[8];
    int nd = 0;
    *n_img = 0;
    float *v = gh5_read_f32(file, path, dims, &nd);
    if (!v) return NULL;
    int64_t S = image_size;
    bool ok = (nd == 3 || nd == 4) && dims[nd - 3] == 3 && dims[nd - 2] == S && dims[nd - 1] == S;
    if (!CHECK_MSG(ok, "%s: not [n, 3, %lld, %lld] pixel values (rank %d, last dims %lld x %lld)",
                   path, (long long)S, (long long)S, nd, nd >= 2 ? (long long)dims[nd - 2] : -1LL,
                   nd >= 1 ? (long long)dims[nd - 1] : -1LL)) {
        free(v);
        return NULL;
    }
    *n_img = nd == 4 ? (int)dims[0] : 1;
    return v;
}

static hid_t open_attr(hid_t file, const char *obj, const char *name)
{
    if (H5Aexists_by_name(file, obj, name, H5P_DEFAULT) <= 0) return -1;
    return H5Aopen_by_name(file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
}

int gh5_attr_double(hid_t file, const char *obj, const char *name, double *out)
{
    hid_t a = open_attr(file, obj, name);
    if (a < 0) return -1;
    herr_t rc = H5Aread(a, H5T_NATIVE_DOUBLE, out);
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

int gh5_attr_i64_array(hid_t file, const char *obj, const char *name, int64_t *out,
                       size_t max, size_t *n)
{
    hid_t a = open_attr(file, obj, name);
    if (a < 0) return -1;
    hid_t s = H5Aget_space(a);
    hssize_t cnt = H5Sget_simple_extent_npoints(s);
    H5Sclose(s);
    if (cnt < 0 || (size_t)cnt > max) {
        H5Aclose(a);
        return -1;
    }
    herr_t rc = H5Aread(a, H5T_NATIVE_INT64, out);
    H5Aclose(a);
    *n = (size_t)cnt;
    return rc < 0 ? -1 : 0;
}

char *gh5_attr_str(hid_t file, const char *obj, const char *name)
{
    hid_t a = open_attr(file, obj, name);
    if (a < 0) return NULL;
    hid_t t = H5Aget_type(a);
    char *out = NULL;
    if (H5Tis_variable_str(t) > 0) {
        char *v = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, &v) >= 0 && v) {
            out = xstrdup(v);
            H5free_memory(v);
        }
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(t);
        out = xcalloc(sz + 1, 1);
        if (H5Aread(a, t, out) < 0) {
            free(out);
            out = NULL;
        }
    }
    H5Tclose(t);
    H5Aclose(a);
    return out;
}

char *test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0]) base = "/tmp";
    size_t n = strlen(base) + strlen(tag) + 32;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/sima-%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) DIE("cannot create a temporary folder %s", p);
    return p;
}
