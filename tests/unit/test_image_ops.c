/* test_image_ops.c — the resampler, crop/pad geometry, preprocessor
 * settings and normalisation on small synthetic images whose answers are
 * known (hand-computed where the values matter). Pillow-exactness on real
 * images is tests/conformance/test_images.c. */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

static img_rgb8 make_image(int w, int h)
{
    img_rgb8 im;
    if (img_alloc(&im, w, h)) DIE("%s", err_msg());
    return im;
}

static img_rgb8 constant_image(int w, int h, uint8_t r, uint8_t g, uint8_t b)
{
    img_rgb8 im = make_image(w, h);
    for (int i = 0; i < w * h; i++) im.pix[i * 3] = r, im.pix[i * 3 + 1] = g, im.pix[i * 3 + 2] = b;
    return im;
}

/* Pixel (x, y) encodes its position: (x, y, x ^ y). */
static img_rgb8 coord_image(int w, int h)
{
    img_rgb8 im = make_image(w, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = im.pix + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)x, p[1] = (uint8_t)y, p[2] = (uint8_t)(x ^ y);
        }
    return im;
}

static const uint8_t *px(const img_rgb8 *im, int x, int y)
{
    return im->pix + ((size_t)y * im->w + x) * 3;
}

static int is_pixel(const img_rgb8 *im, int x, int y, int r, int g, int b)
{
    const uint8_t *p = px(im, x, y);
    return p[0] == r && p[1] == g && p[2] == b;
}

static int all_pixels(const img_rgb8 *im, int r, int g, int b)
{
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < im->w; x++)
            if (!is_pixel(im, x, y, r, g, b)) return 0;
    return 1;
}

/* A w x h gray image from a row-major list of levels. */
static img_rgb8 gray_image(int w, int h, const uint8_t *levels)
{
    img_rgb8 im = make_image(w, h);
    for (int i = 0; i < w * h; i++) memset(im.pix + i * 3, levels[i], 3);
    return im;
}

/* ------------------------------------------------------------ resampler */

static void test_identity_size_is_a_copy(void)
{
    img_rgb8 src = coord_image(13, 7), out;
    CHECK_OK(img_resize_bicubic(&src, 13, 7, &out));
    CHECK(out.w == 13 && out.h == 7 && out.pix != src.pix);
    CHECK(memcmp(out.pix, src.pix, 13 * 7 * 3) == 0);
    img_free(&out);
    img_free(&src);
}

/* Weights are normalised, so a flat image stays flat through any scale,
 * including the extremes 255 (clipping) and 0, and one-axis-only resizes. */
static void test_constant_stays_constant(void)
{
    const int sizes[][2] = {{11, 5}, {80, 61}, {37, 10}, {5, 23}, {1, 1}, {300, 2}, {2, 300}};
    const uint8_t colours[][3] = {{10, 200, 255}, {0, 0, 0}, {255, 255, 255}, {1, 128, 254}};
    for (size_t c = 0; c < sizeof colours / sizeof *colours; c++) {
        img_rgb8 src = constant_image(37, 23, colours[c][0], colours[c][1], colours[c][2]);
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            img_rgb8 out;
            CHECK_OK(img_resize_bicubic(&src, sizes[s][0], sizes[s][1], &out));
            CHECK(out.w == sizes[s][0] && out.h == sizes[s][1]);
            CHECK_MSG(all_pixels(&out, colours[c][0], colours[c][1], colours[c][2]),
                      "colour %zu to %dx%d is not flat", c, sizes[s][0], sizes[s][1]);
            img_free(&out);
        }
        img_free(&src);
    }
}

static void test_sizes(void)
{
    img_rgb8 src = coord_image(7, 5), out;
    CHECK_OK(img_resize_bicubic(&src, 20, 13, &out)); /* upscale */
    CHECK(out.w == 20 && out.h == 13);
    img_free(&out);
    CHECK_OK(img_resize_bicubic(&src, 3, 2, &out));   /* downscale */
    CHECK(out.w == 3 && out.h == 2);
    img_free(&out);
    CHECK_OK(img_resize_bicubic(&src, 1, 9, &out));   /* one each way */
    CHECK(out.w == 1 && out.h == 9);
    img_free(&out);
    img_free(&src);

    img_rgb8 wide = constant_image(1000, 1, 9, 9, 9);
    CHECK_OK(img_resize_bicubic(&wide, 1, 1, &out));  /* 1000:1 shrink, support 2000 */
    CHECK(out.w == 1 && out.h == 1 && is_pixel(&out, 0, 0, 9, 9, 9));
    img_free(&out);
    img_free(&wide);
}

/* 2 -> 4 samples of [0, 255]. Output i is centred at (i + 0.5) / 2; the
 * kernel k(d) = 1.5|d|^3 - 2.5|d|^2 + 1 (|d| < 1), -0.5|d|^3 + 2.5|d|^2
 * - 4|d| + 2 (1 <= |d| < 2) gives k(0.25) = 0.8671875, k(0.75) = 0.2265625,
 * k(1.25) = -0.0703125:
 *   out0 = 255 * -0.0703125 / 0.796875 < 0      -> 0
 *   out1 = 255 *  0.2265625 / 1.09375  = 52.8   -> 53
 *   out2 = 255 *  0.8671875 / 1.09375  = 202.2  -> 202
 *   out3 = 255 *  0.8671875 / 0.796875 = 277.5  -> 255 */
static void test_upscale_known_values(void)
{
    const uint8_t step[] = {0, 255};
    const int want[] = {0, 53, 202, 255};
    img_rgb8 row = gray_image(2, 1, step), col = gray_image(1, 2, step), out;
    CHECK_OK(img_resize_bicubic(&row, 4, 1, &out));
    for (int i = 0; i < 4 && out.pix; i++)
        CHECK_MSG(is_pixel(&out, i, 0, want[i], want[i], want[i]), "row out%d = %d, want %d",
                  i, px(&out, i, 0)[0], want[i]);
    img_free(&out);
    CHECK_OK(img_resize_bicubic(&col, 1, 4, &out)); /* the vertical pass alone */
    for (int i = 0; i < 4 && out.pix; i++)
        CHECK_MSG(is_pixel(&out, 0, i, want[i], want[i], want[i]), "col out%d = %d, want %d",
                  i, px(&out, 0, i)[0], want[i]);
    img_free(&out);
    img_free(&row);
    img_free(&col);
}

/* 4 -> 2 samples of [0, 0, 255, 255]: shrinking by 2 stretches the kernel
 * to support 4, taps at distances (x - c + 0.5) / 2:
 *   out0 (c = 1): weights k(.25) k(.25) k(.75) k(1.25), sum 1.890625
 *         255 * (0.2265625 - 0.0703125) / 1.890625 = 21.07 -> 21
 *   out1 (c = 3): k(1.25) k(.75) k(.25) k(.25)
 *         255 * (2 * 0.8671875) / 1.890625 = 233.9 -> 234 (fixed point) */
static void test_downscale_known_values(void)
{
    const uint8_t step[] = {0, 0, 255, 255};
    img_rgb8 row = gray_image(4, 1, step), col = gray_image(1, 4, step), out;
    CHECK_OK(img_resize_bicubic(&row, 2, 1, &out));
    CHECK(out.pix && is_pixel(&out, 0, 0, 21, 21, 21) && is_pixel(&out, 1, 0, 234, 234, 234));
    img_free(&out);
    CHECK_OK(img_resize_bicubic(&col, 1, 2, &out));
    CHECK(out.pix && is_pixel(&out, 0, 0, 21, 21, 21) && is_pixel(&out, 0, 1, 234, 234, 234));
    img_free(&out);
    img_free(&row);
    img_free(&col);
}

/* Horizontal then vertical with 8-bit rounding between: resizing a
 * separable image equals resizing its row and column profiles. */
static void test_two_pass_on_separable_image(void)
{
    const uint8_t prof[] = {0, 255, 0, 255, 255, 0};
    img_rgb8 src = make_image(6, 6);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++) memset(src.pix + (y * 6 + x) * 3, prof[x] & prof[y], 3);
    img_rgb8 out;
    CHECK_OK(img_resize_bicubic(&src, 4, 6, &out)); /* horizontal only */
    int rows_equal = 1;
    for (int y = 1; out.pix && y < 6; y++)
        rows_equal &= prof[y] == 0 ? all_pixels(&(img_rgb8){4, 1, out.pix + y * 12}, 0, 0, 0)
                                   : memcmp(out.pix + y * 12, out.pix + 1 * 12, 12) == 0;
    CHECK(rows_equal);
    img_free(&out);
    img_free(&src);
}

static void test_resize_errors(void)
{
    img_rgb8 src = coord_image(4, 4), out, empty = {0, 0, NULL};
    CHECK_FAILS_WITH(img_resize_bicubic(&src, 0, 4, &out), "bad target size");
    CHECK_FAILS_WITH(img_resize_bicubic(&src, 20000, 20000, &out), "bad target size");
    CHECK_FAILS_WITH(img_resize_bicubic(&empty, 4, 4, &out), "empty");
    CHECK_FAILS_WITH(img_resize_shortest_edge(&src, 0, &out), "positive");
    img_rgb8 thin = constant_image(1, 50000, 1, 2, 3);
    CHECK_FAILS_WITH(img_resize_shortest_edge(&thin, 336, &out), "too large");
    CHECK(out.pix == NULL);
    img_free(&thin);
    img_free(&src);
}

static void test_shortest_edge_sizes(void)
{
    int w, h;
    img_shortest_edge_size(640, 480, 336, &w, &h);
    CHECK(w == 448 && h == 336);
    img_shortest_edge_size(333, 500, 336, &w, &h); /* int(504.5) */
    CHECK(w == 336 && h == 504);
    img_shortest_edge_size(57, 80, 56, &w, &h);    /* int(78.59) */
    CHECK(w == 56 && h == 78);
    img_shortest_edge_size(100, 100, 7, &w, &h);
    CHECK(w == 7 && h == 7);
    img_shortest_edge_size(3, 1000, 5, &w, &h);    /* int(1666.67) */
    CHECK(w == 5 && h == 1666);

    img_rgb8 src = constant_image(90, 120, 5, 6, 7), out;
    CHECK_OK(img_resize_shortest_edge(&src, 56, &out));
    CHECK(out.w == 56 && out.h == 74 && all_pixels(&out, 5, 6, 7));
    img_free(&out);
    img_free(&src);
}

/* ------------------------------------------------------------ geometry */

static void test_center_crop_inside(void)
{
    img_rgb8 src = coord_image(5, 5), out;
    CHECK_OK(img_center_crop(&src, 2, 2, &out)); /* left = top = 3 // 2 = 1 */
    CHECK(out.w == 2 && out.h == 2 && is_pixel(&out, 0, 0, 1, 1, 0) && is_pixel(&out, 1, 1, 2, 2, 0));
    img_free(&out);
    img_free(&src);

    src = coord_image(7, 6);
    CHECK_OK(img_center_crop(&src, 4, 3, &out)); /* left = 3 // 2 = 1, top = 3 // 2 = 1 */
    CHECK(out.w == 4 && out.h == 3 && is_pixel(&out, 0, 0, 1, 1, 1 ^ 1) &&
          is_pixel(&out, 3, 2, 4, 3, 4 ^ 3));
    img_free(&out);
    CHECK_OK(img_center_crop(&src, 7, 6, &out)); /* same size: unchanged */
    CHECK(memcmp(out.pix, src.pix, 7 * 6 * 3) == 0);
    img_free(&out);
    img_free(&src);
}

/* Crop larger than the image: transformers pads with zeros by
 * ceil(diff / 2) before, the rest after. */
static void test_center_crop_pads_small_images(void)
{
    img_rgb8 src = constant_image(3, 3, 9, 8, 7), out;
    CHECK_OK(img_center_crop(&src, 6, 6, &out)); /* image at offset ceil(3/2) = 2 */
    CHECK(out.w == 6 && out.h == 6);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++) {
            int inside = x >= 2 && x < 5 && y >= 2 && y < 5;
            CHECK_MSG(inside ? is_pixel(&out, x, y, 9, 8, 7) : is_pixel(&out, x, y, 0, 0, 0),
                      "crop 3x3 -> 6x6 at (%d, %d)", x, y);
        }
    img_free(&out);
    img_free(&src);

    src = coord_image(7, 2); /* wider than the crop, shorter than it */
    CHECK_OK(img_center_crop(&src, 3, 5, &out)); /* left = 2; rows at ceil(3/2) = 2 */
    CHECK(is_pixel(&out, 0, 0, 0, 0, 0) && is_pixel(&out, 0, 2, 2, 0, 2) &&
          is_pixel(&out, 2, 3, 4, 1, 5) && is_pixel(&out, 2, 4, 0, 0, 0));
    img_free(&out);
    img_free(&src);
}

static void test_expand_square(void)
{
    const uint8_t bg[3] = {122, 116, 104};
    img_rgb8 wide = constant_image(5, 2, 1, 2, 3), tall = constant_image(2, 5, 1, 2, 3), out;
    CHECK_OK(img_expand_square(&wide, bg, &out)); /* pasted at (0, 3 // 2 = 1) */
    CHECK(out.w == 5 && out.h == 5);
    for (int y = 0; y < 5; y++)
        CHECK(y == 1 || y == 2 ? is_pixel(&out, 4, y, 1, 2, 3) : is_pixel(&out, 4, y, 122, 116, 104));
    img_free(&out);
    CHECK_OK(img_expand_square(&tall, bg, &out)); /* pasted at (1, 0) */
    for (int x = 0; x < 5; x++)
        CHECK(x == 1 || x == 2 ? is_pixel(&out, x, 4, 1, 2, 3) : is_pixel(&out, x, 4, 122, 116, 104));
    img_free(&out);
    img_free(&wide);
    img_free(&tall);

    img_rgb8 odd = coord_image(4, 7);
    CHECK_OK(img_expand_square(&odd, bg, &out)); /* 3 // 2 = 1 column of bg on the left */
    CHECK(out.w == 7 && is_pixel(&out, 0, 3, 122, 116, 104) && is_pixel(&out, 1, 3, 0, 3, 3) &&
          is_pixel(&out, 4, 6, 3, 6, 5) && is_pixel(&out, 5, 6, 122, 116, 104));
    img_free(&out);
    img_free(&odd);

    img_rgb8 sq = coord_image(3, 3);
    CHECK_OK(img_expand_square(&sq, bg, &out));
    CHECK(out.w == 3 && memcmp(out.pix, sq.pix, 27) == 0);
    img_free(&out);
    img_free(&sq);
}

/* ------------------------------------------------------------ settings */

static char *g_tmp;

static char *write_cfg(const char *name, const char *json)
{
    char *path = fs_join(g_tmp, name);
    if (fs_write_atomic(path, json, strlen(json))) DIE("%s", err_msg());
    return path;
}

static void test_proc_defaults_and_load(void)
{
    img_proc_cfg cfg;
    img_proc_default(&cfg);
    CHECK(cfg.shortest_edge == 224 && cfg.crop_w == 224 && cfg.crop_h == 224);
    CHECK_NEAR(cfg.mean[0], 0.48145466, 0);
    CHECK_NEAR(cfg.std[2], 0.27577711, 0);
    uint8_t bg[3];
    img_pad_background(&cfg, bg);
    CHECK(bg[0] == 122 && bg[1] == 116 && bg[2] == 104);

    /* LLaVA-1.5's file: everything given */
    char *p = write_cfg("llava15.json",
        "{\"crop_size\": {\"height\": 336, \"width\": 336}, \"do_center_crop\": true,"
        " \"do_normalize\": true, \"do_resize\": true, \"image_mean\": [0.48145466, 0.4578275,"
        " 0.40821073], \"image_std\": [0.26862954, 0.26130258, 0.27577711], \"resample\": 3,"
        " \"rescale_factor\": 0.00392156862745098, \"size\": {\"shortest_edge\": 336}}");
    CHECK_OK(img_proc_load(p, &cfg));
    CHECK(cfg.shortest_edge == 336 && cfg.crop_w == 336 && cfg.crop_h == 336);
    free(p);

    /* old style integers, absent fields take defaults */
    p = write_cfg("old.json", "{\"size\": 32, \"crop_size\": 30, \"do_normalize\": false}");
    CHECK_OK(img_proc_load(p, &cfg));
    CHECK(cfg.shortest_edge == 32 && cfg.crop_w == 30 && cfg.crop_h == 30);
    CHECK(!cfg.do_normalize && cfg.do_rescale && cfg.do_resize && cfg.do_center_crop);
    CHECK_NEAR(cfg.rescale, 1.0 / 255.0, 0);
    free(p);

    p = write_cfg("bilinear.json", "{\"resample\": 2}");
    CHECK_FAILS_WITH(img_proc_load(p, &cfg), "bilinear.json: \"resample\"");
    free(p);
    p = write_cfg("hw.json", "{\"size\": {\"height\": 224, \"width\": 224}}");
    CHECK_FAILS_WITH(img_proc_load(p, &cfg), "shortest_edge");
    free(p);
    p = write_cfg("mean.json", "{\"image_mean\": [0.5, 0.5]}");
    CHECK_FAILS_WITH(img_proc_load(p, &cfg), "mean.json: \"image_mean\": expected 3 numbers");
    free(p);
    p = write_cfg("std.json", "{\"image_std\": [0.5, 0, 0.5]}");
    CHECK_FAILS_WITH(img_proc_load(p, &cfg), "zero");
    free(p);
    p = write_cfg("flag.json", "{\"do_resize\": 1}");
    CHECK_FAILS_WITH(img_proc_load(p, &cfg), "do_resize");
    free(p);
    p = fs_join(g_tmp, "absent.json");
    CHECK_FAILS_WITH(img_proc_load(p, &cfg), "absent.json");
    free(p);

    /* a model folder: the bundled one, whose preprocessor is 56 px */
    char *model = bundled_golden_path("tiny-llava");
    CHECK_OK(img_proc_load(model, &cfg));
    CHECK(cfg.shortest_edge == 56 && cfg.crop_w == 56 && cfg.crop_h == 56);
    free(model);

    img_mode mode;
    CHECK_OK(img_mode_parse("pad", &mode));
    CHECK(mode == IMG_PAD);
    CHECK_OK(img_mode_parse("crop", &mode));
    CHECK(mode == IMG_CROP);
    CHECK_FAILS_WITH(img_mode_parse("squash", &mode), "\"squash\"");
}

/* ------------------------------------------------------------ normalise */

static void test_normalize_and_preprocess(void)
{
    img_proc_cfg cfg;
    img_proc_default(&cfg);
    img_rgb8 im = make_image(2, 1);
    memset(im.pix, 0, 3);       /* pixel 0: black */
    memset(im.pix + 3, 255, 3); /* pixel 1: white */
    float out[6];               /* [3, 1, 2] */
    img_normalize(&im, &cfg, out);
    for (int c = 0; c < 3; c++) {
        CHECK_NEAR(out[c * 2 + 0], -cfg.mean[c] / cfg.std[c], 1e-6);
        CHECK_NEAR(out[c * 2 + 1], (1 - cfg.mean[c]) / cfg.std[c], 1e-6);
    }
    cfg.do_normalize = 0;
    img_normalize(&im, &cfg, out);
    CHECK(out[0] == 0.0f && out[1] == 1.0f);
    cfg.do_rescale = 0;
    img_normalize(&im, &cfg, out);
    CHECK(out[0] == 0.0f && out[1] == 255.0f);
    img_free(&im);

    /* a flat image in pad mode with the pad colour is flat after it all */
    img_proc_default(&cfg);
    cfg.shortest_edge = cfg.crop_w = cfg.crop_h = 8;
    uint8_t bg[3];
    img_pad_background(&cfg, bg);
    im = constant_image(30, 11, bg[0], bg[1], bg[2]);
    int w, h;
    CHECK_OK(img_preprocess_size(&cfg, IMG_PAD, im.w, im.h, &w, &h));
    CHECK(w == 8 && h == 8);
    float *pv = malloc(3 * 8 * 8 * sizeof *pv); /* [3, 8, 8] */
    CHECK_OK(img_preprocess(&im, &cfg, IMG_PAD, pv));
    int flat = 1;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 64; i++) flat &= pv[c * 64 + i] == pv[c * 64];
    CHECK(flat);
    free(pv);

    cfg.do_center_crop = 0; /* output is the resized size */
    CHECK_OK(img_preprocess_size(&cfg, IMG_CROP, 30, 11, &w, &h));
    CHECK(w == 21 && h == 8);   /* int(8 * 30 / 11) = 21 */
    CHECK_OK(img_preprocess_size(&cfg, IMG_PAD, 30, 11, &w, &h));
    CHECK(w == 8 && h == 8);
    pv = malloc(3 * 21 * 8 * sizeof *pv); /* [3, 8, 21] */
    CHECK_OK(img_preprocess(&im, &cfg, IMG_CROP, pv));
    free(pv);
    img_free(&im);
}

int main(void)
{
    g_tmp = test_tmpdir("image-ops");
    test_identity_size_is_a_copy();
    test_constant_stays_constant();
    test_sizes();
    test_upscale_known_values();
    test_downscale_known_values();
    test_two_pass_on_separable_image();
    test_resize_errors();
    test_shortest_edge_sizes();
    test_center_crop_inside();
    test_center_crop_pads_small_images();
    test_expand_square();
    test_proc_defaults_and_load();
    test_normalize_and_preprocess();
    free(g_tmp);
    return check_finish();
}
