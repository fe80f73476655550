/* alt_images.c — JPEGs of the alternative folder: other sizes, aspect
 * ratios, subsamplings and kinds than the bundled five, made from a
 * synthetic scene (sky and ground gradients, a disc, stripes, noise). */
#include "alt.h"
#include "err.h"
#include "fs.h"
#include "test_jpeg.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *name;
    int w, h;
    bool gray;
    test_jpeg_opts o;
} alt_image;

static const alt_image IMAGES[] = {
    {"market_150x100.jpg", 150, 100, false, {JCS_RGB, JCS_YCbCr, 90, false, false, NULL, 0}},
    {"tower_70x115_q70.jpg", 70, 115, false, {JCS_RGB, JCS_YCbCr, 70, false, false, NULL, 0}},
    {"gray_64x64.jpg", 64, 64, true, {JCS_GRAYSCALE, JCS_GRAYSCALE, 85, false, false, NULL, 0}},
    {"progressive_31x47_444.jpg", 31, 47, false, {JCS_RGB, JCS_YCbCr, 92, true, true, NULL, 0}},
};
enum { N_IMAGES = sizeof IMAGES / sizeof IMAGES[0] };

/* [h, w, 3] scene, varied enough that resizing and cropping matter. */
static uint8_t *scene(int w, int h, unsigned salt)
{
    uint8_t *p = xmalloc((size_t)w * h * 3);
    int cx = w * 2 / 3, cy = h / 3, r = (w < h ? w : h) / 4 + 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *px = p + ((size_t)y * w + x) * 3;
            unsigned noise = (unsigned)(x * 73856093u ^ y * 19349663u ^ salt * 83492791u) % 23;
            bool sky = y < h / 2, disc = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r;
            bool stripe = !sky && (x / 5 + y / 7) % 3 == 0;
            int c[3] = {sky ? 90 + 100 * y / h : 60 + 80 * x / w, sky ? 140 + 60 * y / h : 110,
                        sky ? 220 - 40 * y / h : 40 + 50 * y / h};
            if (disc) c[0] = 240, c[1] = 200, c[2] = 60;
            if (stripe) c[0] /= 2, c[1] += 40, c[2] /= 2;
            for (int k = 0; k < 3; k++) {
                int v = c[k] + (int)noise - 11;
                px[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    return p;
}

static uint8_t *to_gray(const uint8_t *rgb, int w, int h)
{
    uint8_t *g = xmalloc((size_t)w * h);
    for (size_t i = 0; i < (size_t)w * h; i++)
        g[i] = (uint8_t)((299 * rgb[3 * i] + 587 * rgb[3 * i + 1] + 114 * rgb[3 * i + 2]) / 1000);
    return g;
}

int alt_write_images(const char *dir, char ***names)
{
    char *sub = fs_join(dir, "images");
    if (mkdir(sub, 0755) != 0) DIE("cannot create %s", sub);
    *names = xcalloc(N_IMAGES, sizeof **names);
    for (int i = 0; i < N_IMAGES; i++) {
        const alt_image *im = &IMAGES[i];
        uint8_t *rgb = scene(im->w, im->h, (unsigned)i), *gray = im->gray ? to_gray(rgb, im->w, im->h) : NULL;
        size_t len;
        uint8_t *jpg = test_jpeg_encode(gray ? gray : rgb, im->w, im->h, gray ? 1 : 3, &im->o, &len);
        char *path = fs_join(sub, im->name);
        MUST(fs_write_atomic(path, jpg, len));
        (*names)[i] = xstrdup(im->name);
        free(path);
        free(jpg);
        free(gray);
        free(rgb);
    }
    free(sub);
    return N_IMAGES;
}
