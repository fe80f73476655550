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
#include "fuzz_image.h"
#include "image.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int w, h;
    if (img_png_size(data, size, "fuzz.png", &w, &h) == 0 &&
        (long long)w * h <= FUZZ_MAX_PIXELS) {
        img_rgb8 im;
        if (img_decode(data, size, "fuzz.png", &im) == 0) {
            fuzz_exercise_image(&im, data, size);
            img_free(&im);
        }
    }
    err_clear();
    return 0;
}
