/* h5util.c — io layer: HDF5 error reasons and simple serial writers. */
#include "h5util.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void h5u_init(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Keep the innermost description of the error stack (walking upward, the
 * first one visited): "truncated file: eof = ...", not "unable to open file". */
static herr_t take_first(unsigned n, const H5E_error2_t *e, void *out)
{
    char *reason = out;
    if (n == 0 && e->desc) snprintf(reason, 256, "%s", e->desc);
    return 0;
}

int h5u_error_at(const char *file, int line, const char *what)
{
    char reason[256] = "unknown HDF5 error";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_first, reason);
    H5Eclear2(H5E_DEFAULT);
    return err_set_at(file, line, "%s: %s", what, reason);
}

int h5u_write(hid_t loc, const char *name, hid_t memtype, int ndim,
              const int64_t *dims, const void *data)
{
    hsize_t hd[8];
    if (ndim < 0 || ndim > 8) return ERR("%s: rank %d not supported", name, ndim);
    for (int i = 0; i < ndim; i++) hd[i] = (hsize_t)dims[i];
    hid_t space = H5Screate_simple(ndim, hd, NULL);
    CHECK_H5(space, name);
    hid_t ds = H5Dcreate2(loc, name, memtype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(space);
    CHECK_H5(ds, name);
    herr_t rc = H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(ds);
    CHECK_H5(rc, name);
    return 0;
}

static int write_attr(hid_t obj, const char *name, hid_t type, const void *v)
{
    hid_t space = H5Screate(H5S_SCALAR);
    CHECK_H5(space, name);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(space);
    CHECK_H5(a, name);
    herr_t rc = H5Awrite(a, type, v);
    H5Aclose(a);
    CHECK_H5(rc, name);
    return 0;
}

int h5u_attr_str(hid_t obj, const char *name, const char *value)
{
    /* variable-length UTF-8: h5py reads it back as str */
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int rc = write_attr(obj, name, t, &value);
    H5Tclose(t);
    return rc;
}

int h5u_attr_i64(hid_t obj, const char *name, int64_t value)
{
    return write_attr(obj, name, H5T_NATIVE_INT64, &value);
}

int h5u_attr_f64(hid_t obj, const char *name, double value)
{
    return write_attr(obj, name, H5T_NATIVE_DOUBLE, &value);
}

int h5u_create(const char *path, h5u_newfile *nf)
{
    size_t n = strlen(path) + 32;
    nf->path = xstrdup(path);
    nf->tmp = xmalloc(n);
    snprintf(nf->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    nf->file = H5Fcreate(nf->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (nf->file < 0) {
        h5u_error_at(__FILE__, __LINE__, nf->tmp);
        err_context("cannot create output %s", path);
        free(nf->path);
        free(nf->tmp);
        nf->path = nf->tmp = NULL;
        return -1;
    }
    return 0;
}

int h5u_commit(h5u_newfile *nf)
{
    int rc = 0;
    if (H5Fclose(nf->file) < 0)
        rc = h5u_error_at(__FILE__, __LINE__, nf->tmp);
    else if (rename(nf->tmp, nf->path) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename to %s", nf->tmp, nf->path);
    if (rc) unlink(nf->tmp);
    free(nf->path);
    free(nf->tmp);
    nf->path = nf->tmp = NULL;
    return rc;
}

void h5u_abandon(h5u_newfile *nf)
{
    if (!nf->tmp) return;
    H5Fclose(nf->file);
    unlink(nf->tmp);
    free(nf->path);
    free(nf->tmp);
    nf->path = nf->tmp = NULL;
}
