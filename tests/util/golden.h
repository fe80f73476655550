/* golden.h — read the reference folder (SIMA_GOLDEN_DIR) and its golden.h5.
 *
 * Tests enumerate cases from the file (gh5_list) rather than hard-coding
 * names, counts or shapes, so they run on any folder of the same layout. */
#ifndef SIMA_TEST_GOLDEN_H
#define SIMA_TEST_GOLDEN_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* $SIMA_GOLDEN_DIR, or tests/golden of the source tree. */
const char *golden_dir(void);
/* golden_dir()/rel in a malloc'd string. */
char *golden_path(const char *rel);
/* Open golden.h5 read-only (dies with a message if missing). */
hid_t gh5_open(void);

/* Names of the members of a group, sorted; count in *n. Free with gh5_free_list. */
char **gh5_list(hid_t file, const char *group, size_t *n);
void gh5_free_list(char **names, size_t n);
int gh5_exists(hid_t file, const char *path);

/* Read a whole dataset converted to the given type. dims gets up to 8 dims,
 * *ndim the rank; the return is malloc'd (NULL if absent). */
float *gh5_read_f32(hid_t file, const char *path, int64_t *dims, int *ndim);
int64_t *gh5_read_i64(hid_t file, const char *path, int64_t *dims, int *ndim);
uint8_t *gh5_read_u8(hid_t file, const char *path, int64_t *dims, int *ndim);

/* Attributes of an object. Return 0 on success. */
int gh5_attr_double(hid_t file, const char *obj, const char *name, double *out);
int gh5_attr_i64_array(hid_t file, const char *obj, const char *name, int64_t *out,
                       size_t max, size_t *n);
char *gh5_attr_str(hid_t file, const char *obj, const char *name); /* malloc'd */

/* A fresh temporary folder for a test's outputs (malloc'd path). */
char *test_tmpdir(const char *tag);

#endif
