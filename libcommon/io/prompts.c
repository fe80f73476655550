/* prompts.c — io layer: rows of a sima.prompts file. */
#include "prompts.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>

int prm_open(h5io_file *f, const char *path, int64_t *n)
{
    int rc = h5io_open(f, path, MPI_COMM_SELF);
    if (rc != 0) return -1;
    rc = h5io_require_schema(f, PRM_SCHEMA, PRM_SCHEMA_VERSION);
    if (rc == 0) {
        *n = h5io_rows(f, "/prompts/question");
        if (*n < 0) rc = -1;
    }
    if (rc != 0) h5io_close(f);
    return rc;
}

int prm_text(h5io_file *f, const char *column, int64_t row, char **text)
{
    char path[128];
    int64_t off[2];
    snprintf(path, sizeof path, "/prompts/%s", column);
    *text = NULL;
    return h5io_read_ragged(f, path, H5IO_TEXT, row, 1, off, (void **)text);
}

int prm_image_index(h5io_file *f, int64_t row, int64_t *image)
{
    return h5io_read_column(f, "/prompts/image", H5IO_I64, row, 1, image);
}

int prm_pixels(h5io_file *f, int64_t row, const img_proc_cfg *pc, img_mode mode, float **pixels)
{
    *pixels = NULL;
    int64_t img = -1;
    if (prm_image_index(f, row, &img) != 0) return -1;
    return img < 0 ? 0 : prm_image_pixels(f, img, pc, mode, pixels);
}

int prm_image_pixels(h5io_file *f, int64_t img, const img_proc_cfg *pc, img_mode mode,
                     float **pixels)
{
    *pixels = NULL;
    int64_t off[2];
    uint8_t *enc = NULL; /* the stored JPEG or PNG bytes */
    img_rgb8 im = {0};
    char name[256];
    snprintf(name, sizeof name, "%s: image %lld", f->path, (long long)img);
    int rc = h5io_read_ragged(f, "/images/jpeg", H5IO_U8, img, 1, off, (void **)&enc);
    if (rc == 0) rc = img_decode(enc, (size_t)off[1], name, &im);
    if (rc == 0) {
        *pixels = xmalloc(sizeof(float) * 3 * (size_t)pc->crop_w * pc->crop_h);
        rc = img_preprocess(&im, pc, mode, *pixels);
        if (rc != 0) {
            free(*pixels);
            *pixels = NULL;
        }
    }
    img_free(&im);
    free(enc);
    return rc;
}
