/* perf_image.c — JPEG and PNG decode + LLaVA-1.5 preprocessing throughput.
 *
 * For each golden JPEG and two generated scenes (640x480, 1920x1080), each
 * encoded in memory as a JPEG (libjpeg, quality 90) and as a PNG (libpng,
 * zlib level 6, adaptive filters: the usual writer defaults), at the 336 px
 * LLaVA-1.5 setting: decode alone,
 * preprocess alone (crop and pad modes) and the two together, single thread.
 * Prints images/s and megapixels/s (of the source image).
 *
 *   perf_image [seconds per measurement, default 0.5]
 */
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "image.h"
#include "strbuf.h"
#include "test_jpeg.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jpeglib.h>
#include <png.h>

typedef struct {
    char name[64];
    uint8_t *enc; /* the encoded image (JPEG or PNG) */
    size_t len;
    int w, h;
} sample;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* A textured test scene [h, w, 3]: gradients, blocks and noise, so the
 * JPEG has realistic entropy. */
static uint8_t *make_scene(int w, int h)
{
    uint8_t *p = xmalloc((size_t)w * h * 3);
    uint32_t s = 12345;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1664525u + 1013904223u;
            int noise = (int)(s >> 28) - 8;
            int block = ((x / 37) ^ (y / 23)) & 1 ? 60 : 0;
            for (int c = 0; c < 3; c++) {
                int v = (x * (c + 1) * 255 / w + y * (3 - c) * 255 / h) / 3 + block + noise;
                p[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    return p;
}

static uint8_t *encode_rgb(const uint8_t *pix, int w, int h, int quality, size_t *len)
{
    test_jpeg_opts o = {JCS_RGB, JCS_YCbCr, quality, false, false, NULL, 0};
    return test_jpeg_encode(pix, w, h, 3, &o, len);
}

/* libpng's write callback: append to the strbuf given as io pointer. */
static void png_mem_write(png_structp png, png_bytep data, size_t n)
{
    strbuf_put(png_get_io_ptr(png), data, n);
}

static void png_mem_flush(png_structp png)
{
    (void)png;
}

/* 8-bit RGB [h, w, 3] as a non-interlaced PNG with libpng's defaults. */
static uint8_t *encode_png(const uint8_t *pix, int w, int h, size_t *len)
{
    strbuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) DIE("libpng could not encode the test scene");
    png_set_write_fn(png, &m, png_mem_write, png_mem_flush);
    png_set_compression_level(png, 6);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, pix + (size_t)y * w * 3);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *len = m.len;
    return (uint8_t *)m.s;
}

/* The generated scene as a JPEG and as a PNG: two samples. */
static int add_generated(sample *s, int w, int h)
{
    uint8_t *pix = make_scene(w, h);
    snprintf(s[0].name, sizeof s[0].name, "generated %dx%d q90 JPEG", w, h);
    s[0].enc = encode_rgb(pix, w, h, 90, &s[0].len);
    s[0].w = w, s[0].h = h;
    snprintf(s[1].name, sizeof s[1].name, "generated %dx%d PNG", w, h);
    s[1].enc = encode_png(pix, w, h, &s[1].len);
    s[1].w = w, s[1].h = h;
    free(pix);
    return 2;
}

static int has_jpg_suffix(const char *n)
{
    size_t k = strlen(n);
    return k > 4 && strcmp(n + k - 4, ".jpg") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The golden JPEGs, sorted by name; returns how many were added. */
static int add_golden(sample *out, int max)
{
    char *dir = golden_path("images");
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "perf_image: no %s, skipping the golden images\n", dir);
        free(dir);
        return 0;
    }
    char *names[64];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 64;)
        if (has_jpg_suffix(e->d_name)) names[n++] = xstrdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    int k = 0;
    for (int i = 0; i < n; i++) {
        char *path = fs_join(dir, names[i]);
        char *buf;
        size_t len;
        if (k < max && fs_read_all(path, &buf, &len) == 0) {
            sample *s = &out[k++];
            snprintf(s->name, sizeof s->name, "%s", names[i]);
            s->enc = (uint8_t *)buf;
            s->len = len;
            if (img_size(s->enc, len, names[i], &s->w, &s->h)) err_exit();
        }
        free(path);
        free(names[i]);
    }
    free(dir);
    return k;
}

enum what { DECODE, PREPROCESS_CROP, PREPROCESS_PAD, BOTH_PAD };

/* Run `what` on s for at least `secs`; returns seconds per image. */
static double measure(const sample *s, enum what what, const img_proc_cfg *cfg, double secs)
{
    img_rgb8 dec;
    if (img_decode(s->enc, s->len, s->name, &dec)) err_exit();
    float *pv = xmalloc((size_t)3 * cfg->crop_w * cfg->crop_h * sizeof *pv); /* [3, 336, 336] */
    long iters = 0;
    double t0 = now(), t;
    do {
        for (int r = 0; r < 4; r++, iters++) {
            img_rgb8 im;
            int rc = 0;
            switch (what) {
            case DECODE:
                rc = img_decode(s->enc, s->len, s->name, &im);
                img_free(&im);
                break;
            case PREPROCESS_CROP:
                rc = img_preprocess(&dec, cfg, IMG_CROP, pv);
                break;
            case PREPROCESS_PAD:
                rc = img_preprocess(&dec, cfg, IMG_PAD, pv);
                break;
            case BOTH_PAD:
                rc = img_decode(s->enc, s->len, s->name, &im);
                if (rc == 0) rc = img_preprocess(&im, cfg, IMG_PAD, pv);
                img_free(&im);
                break;
            }
            if (rc) err_exit();
        }
        t = now() - t0;
    } while (t < secs);
    img_free(&dec);
    free(pv);
    return t / iters;
}

int main(int argc, char **argv)
{
    err_set_program("perf_image");
    double secs = argc > 1 ? atof(argv[1]) : 0.5;
    if (!(secs > 0)) secs = 0.5;

    img_proc_cfg cfg; /* LLaVA-1.5: CLIP ViT-L/14-336 */
    img_proc_default(&cfg);
    cfg.shortest_edge = cfg.crop_w = cfg.crop_h = 336;

    sample samples[68];
    int n = add_golden(samples, 64);
    n += add_generated(&samples[n], 640, 480);
    n += add_generated(&samples[n], 1920, 1080);

    printf("JPEG/PNG decode + LLaVA-1.5 preprocessing (336 px), one thread, %.2f s per figure\n", secs);
    printf("%-28s %9s %7s | %-17s | %-17s | %-17s | %-17s\n", "image", "size", "KB",
           "decode", "crop preprocess", "pad preprocess", "decode + pad");
    printf("%-28s %9s %7s | %-17s | %-17s | %-17s | %-17s\n", "", "", "", "img/s    MP/s",
           "img/s    MP/s", "img/s    MP/s", "img/s    MP/s");
    for (int i = 0; i < n; i++) {
        const sample *s = &samples[i];
        double mp = (double)s->w * s->h / 1e6;
        char size[32];
        snprintf(size, sizeof size, "%dx%d", s->w, s->h);
        printf("%-28s %9s %7.1f", s->name, size, s->len / 1024.0);
        enum what order[] = {DECODE, PREPROCESS_CROP, PREPROCESS_PAD, BOTH_PAD};
        for (int k = 0; k < 4; k++) {
            double per = measure(s, order[k], &cfg, secs);
            printf(" | %8.1f %8.1f", 1.0 / per, mp / per);
        }
        printf("\n");
        fflush(stdout);
        free(s->enc);
    }
    return 0;
}
