/* fuzz_png.c — libFuzzer target: PNG decode (through img_decode, as the
 * tools call it), then (when it decodes) the preprocessing path to a small
 * size and a resize to sizes taken from the input. Every outcome is fine
 * except a crash, a leak or a sanitizer report. Seed corpus:
 * tests/fuzz/corpus/png/ (made by tests/fuzz/make_png_seeds.py).
 *
 *   CC=clang cmake -S . -B build-fuzz -DSIMA_FUZZ=ON -DSIMA_CUDA=OFF
 *   make -C build-fuzz fuzz_png
 *   cp -r tests/fuzz/corpus/png /tmp/corpus && build-fuzz/fuzz/fuzz_png /tmp/corpus
 */
#include "err.h"
#include "image.h"

#include <stddef.h>
#include <stdint.h>

/* Larger images are valid but slow under the sanitizers: skip them. */
#define FUZZ_MAX_PIXELS (512 * 1024)
#define FUZZ_EDGE 16

/* LLaVA preprocessing to 16 x 16, pad or crop mode picked by `selector`. */
static void preprocess_small(const img_rgb8 *im, uint8_t selector)
{
    img_proc_cfg cfg;
    img_proc_default(&cfg);
    cfg.shortest_edge = cfg.crop_w = cfg.crop_h = FUZZ_EDGE;
    long long long_side = im->w > im->h ? im->w : im->h;
    long long short_side = im->w < im->h ? im->w : im->h;
    /* A thin image makes a huge pad square or a huge crop-mode resize:
     * keep each run small and fast. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int w, h;
    if (img_png_size(data, size, "fuzz.png", &w, &h) == 0 &&
        (long long)w * h <= FUZZ_MAX_PIXELS) {
        img_rgb8 im;
        if (img_decode(data, size, "fuzz.png", &im) == 0) {
            uint8_t tail0 = data[size - 1], tail1 = size > 1 ? data[size - 2] : 0;
            preprocess_small(&im, tail0);
            img_rgb8 small;
            if (img_resize_bicubic(&im, 1 + tail0 % 64, 1 + tail1 % 64, &small) == 0)
                img_free(&small);
            img_free(&im);
        }
    }
    err_clear();
    return 0;
}
