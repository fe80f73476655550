/* prompts.h — io layer: reading rows of a sima.prompts file
 * (data/schemas/prompts.md): text, the image, and the model-ready pixels. */
#ifndef SIMA_IO_PROMPTS_H
#define SIMA_IO_PROMPTS_H

#include "h5io.h"
#include "image.h"

#define PRM_SCHEMA "sima.prompts"
#define PRM_SCHEMA_VERSION 1

/* Open a prompts file for this rank alone and check its schema; *n gets
 * its number of prompts. */
int prm_open(h5io_file *f, const char *path, int64_t *n);
/* Text columns of one row ("question", "ground_truth", "id"), malloc'd. */
int prm_text(h5io_file *f, const char *column, int64_t row, char **text);
/* The row's image index in /images, -1 for a text-only prompt. */
int prm_image_index(h5io_file *f, int64_t row, int64_t *image);
/* The row's image preprocessed for the model: *pixels [3, crop_h, crop_w]
 * malloc'd, or NULL for a text-only prompt. */
int prm_pixels(h5io_file *f, int64_t row, const img_proc_cfg *pc, img_mode mode,
               float **pixels);
/* The same for row `image` of /images. */
int prm_image_pixels(h5io_file *f, int64_t image, const img_proc_cfg *pc, img_mode mode,
                     float **pixels);

#endif
