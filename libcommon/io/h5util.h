/* h5util.h — io layer: checked HDF5 calls and small dataset/attribute helpers.
 *
 * HDF5's own error printing is switched off (h5u_init); a failed call is
 * reported once, as "what: HDF5 reason" naming our file and line, with the
 * innermost message of HDF5's error stack as the reason.
 */
#ifndef SIMA_IO_H5UTIL_H
#define SIMA_IO_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Silence HDF5's automatic error printing; call once at start-up. */
void h5u_init(void);

int h5u_error_at(const char *file, int line, const char *what);

/* For calls returning herr_t or hid_t: negative is failure. */
#define CHECK_H5(call, what)                                                   \
    do {                                                                       \
        if ((call) < 0) return h5u_error_at(__FILE__, __LINE__, (what));       \
    } while (0)

/* Write a contiguous dataset of `ndim` dims [dims...] from memory of type
 * memtype (H5T_NATIVE_FLOAT, H5T_NATIVE_UINT8, ...). */
int h5u_write(hid_t loc, const char *name, hid_t memtype, int ndim,
              const int64_t *dims, const void *data);
/* Attributes on an object (group or file root). */
int h5u_attr_str(hid_t obj, const char *name, const char *value);
int h5u_attr_i64(hid_t obj, const char *name, int64_t value);
int h5u_attr_f64(hid_t obj, const char *name, double value);

/* Create PATH for writing through a temporary name; h5u_commit closes it
 * and renames it into place (so readers never see a half-written file). */
typedef struct {
    hid_t file;
    char *path, *tmp;
} h5u_newfile;
int h5u_create(const char *path, h5u_newfile *nf);
int h5u_commit(h5u_newfile *nf);
void h5u_abandon(h5u_newfile *nf);

#endif
