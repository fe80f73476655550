/* fuzz_image.h — what the image fuzz targets (fuzz_jpeg, fuzz_png) do with a
 * decoded image: the preprocessing path to a small size and a resize to a
 * size taken from the input. Static functions: each target includes it once. */
#ifndef SIMA_FUZZ_IMAGE_H
#define SIMA_FUZZ_IMAGE_H

#include "image.h"

#include <stddef.h>
#include <stdint.h>

/* Larger images are valid but slow under the sanitizers: skip them. */
#define FUZZ_MAX_PIXELS (512 * 1024)
#define FUZZ_EDGE 16

/* LLaVA preprocessing to 16 x 16, pad or crop mode picked by `selector`. */
static void fuzz_preprocess_small(const img_rgb8 *im, uint8_t selector)
{
    img_proc_cfg cfg;
    img_proc_default(&cfg);
    cfg.shortest_edge = cfg.crop_w = cfg.crop_h = FUZZ_EDGE;
    long long long_side = im->w > im->h ? im->w : im->h;
    long long short_side = im->w < im->h ? im->w : im->h;
    /* Both modes are legal for any size, but a thin image makes a huge pad
     * square or a huge crop-mode resize: keep each run small and fast. */
    int pad_ok = long_side * long_side <= 4LL * FUZZ_MAX_PIXELS;
    int crop_ok = long_side <= 64 * short_side;
    img_mode mode;
    if (pad_ok && (selector & 1 || !crop_ok))
        mode = IMG_PAD;
    else if (crop_ok)
        mode = IMG_CROP;
    else
        return;
    float out[3 * FUZZ_EDGE * FUZZ_EDGE]; /* [3, 16, 16] */
    (void)img_preprocess(im, &cfg, mode, out);
}

/* The decoded image `im` of data[0..size) (size >= 1): preprocessing with
 * the mode picked by the last byte, then a resize to a size in
 * 1..64 x 1..64 picked by the last two bytes. */
static void fuzz_exercise_image(const img_rgb8 *im, const uint8_t *data, size_t size)
{
    uint8_t tail0 = data[size - 1], tail1 = size > 1 ? data[size - 2] : 0;
    fuzz_preprocess_small(im, tail0);
    img_rgb8 small;
    if (img_resize_bicubic(im, 1 + tail0 % 64, 1 + tail1 % 64, &small) == 0) img_free(&small);
}

#endif
