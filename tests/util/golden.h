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
/* golden_dir()/rel in a malloc'd string. A test that reads it takes every
 * shape, count and file name from that folder. */
char *golden_path(const char *rel);
/* tests/golden/rel of the source tree (the bundled folder), whatever
 * SIMA_GOLDEN_DIR says, malloc'd: for unit tests that assert the bundled
 * folder's own values (its vocabulary, its image files, its token ids). */
char *bundled_golden_path(const char *rel);
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

/* A float dataset that must hold exactly n values (any rank): NULL when it
 * is absent, or after a failed check naming it when it holds another
 * count, so a comparison never reads past it. */
float *gh5_read_f32_n(hid_t file, const char *path, int64_t n);
/* pixel_values at path, [n_img, 3, S, S] or [3, S, S] for image size S:
 * NULL with *n_img 0 when absent; NULL after a failed check when the
 * dataset is not a whole number of S x S images. */
float *gh5_read_pixels(hid_t file, const char *path, int image_size, int *n_img);

/* Attributes of an object. Return 0 on success. */
int gh5_attr_double(hid_t file, const char *obj, const char *name, double *out);
int gh5_attr_i64_array(hid_t file, const char *obj, const char *name, int64_t *out,
                       size_t max, size_t *n);
char *gh5_attr_str(hid_t file, const char *obj, const char *name); /* malloc'd */

/* A fresh temporary folder for a test's outputs (malloc'd path). */
char *test_tmpdir(const char *tag);

#endif
