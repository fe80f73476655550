/* test_images.c — JPEG decode and CLIP/LLaVA preprocessing against the
 * Pillow reference in golden.h5.
 *
 * For every group images/<file>/ (enumerated, nothing hard-coded) the JPEG
 * golden_dir()/images/<file> must decode to decoded_rgb exactly; each later
 * stage is checked both from the golden input of that stage (so a failure
 * points at one step) and along our own pipeline:
 *   decoded_rgb  -> resize shortest edge -> resized_rgb        (exact)
 *   resized_rgb  -> center crop          -> cropped_rgb        (exact)
 *   decoded      -> crop path            -> pixel_values_crop  (1e-6)
 *   decoded      -> pad path             -> pixel_values_pad   (1e-6)
 * Sizes, mean and std come from tiny-llava/preprocessor_config.json.
 * forward/case*: pixel_values must equal the preprocessing of its image in
 * its mode.
 */
#include "check.h"
#include "err.h"
#include "golden.h"
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIXEL_TOL 1e-6

/* Golden uint8 [h, w, 3] as an image (NULL pix if absent or not RGB). */
static img_rgb8 read_rgb(hid_t f, const char *group, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", group, name);
    int64_t dims[8];
    int nd = 0;
    uint8_t *pix = gh5_read_u8(f, path, dims, &nd);
    if (!pix || nd != 3 || dims[2] != 3) {
        free(pix);
        return (img_rgb8){0, 0, NULL};
    }
    return (img_rgb8){(int)dims[1], (int)dims[0], pix};
}

/* Exact comparison; reports the first differing pixel. */
static void check_same_rgb(const img_rgb8 *got, const img_rgb8 *want, const char *what)
{
    CHECK_MSG(want->pix != NULL, "%s: missing in golden.h5", what);
    if (!want->pix || !got->pix) return;
    CHECK_MSG(got->w == want->w && got->h == want->h, "%s: size %dx%d, want %dx%d", what,
              got->w, got->h, want->w, want->h);
    if (got->w != want->w || got->h != want->h) return;
    size_t n = (size_t)got->w * got->h * 3, bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (got->pix[i] != want->pix[i] && bad++ == 0) first = i;
    CHECK_MSG(bad == 0, "%s: %zu of %zu bytes differ; first at y=%zu x=%zu c=%zu (%d vs %d)",
              what, bad, n, first / 3 / got->w, first / 3 % got->w, first % 3,
              got->pix[first], want->pix[first]);
}

/* float [3, h, w] against a golden dataset of the same shape. */
static void check_near_planes(hid_t f, const char *path, const float *got, int w, int h,
                              const char *what)
{
    int64_t dims[8];
    int nd = 0;
    float *want = gh5_read_f32(f, path, dims, &nd);
    CHECK_MSG(want != NULL, "%s: %s missing in golden.h5", what, path);
    if (!want) return;
    CHECK_MSG(nd == 3 && dims[0] == 3 && dims[1] == h && dims[2] == w,
              "%s: golden shape is not [3, %d, %d]", what, h, w);
    if (nd == 3 && dims[0] == 3 && dims[1] == h && dims[2] == w) {
        size_t n = (size_t)3 * h * w, worst = 0;
        double maxdiff = 0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)got[i] - want[i]);
            if (d > maxdiff) maxdiff = d, worst = i;
        }
        CHECK_MSG(maxdiff <= PIXEL_TOL, "%s: max |diff| %.3g at index %zu (%.9g vs %.9g)",
                  what, maxdiff, worst, got[worst], want[worst]);
    }
    free(want);
}

/* Preprocess `im` in `mode` and compare with golden `path`. */
static void check_preprocess(hid_t f, const img_rgb8 *im, const img_proc_cfg *cfg,
                             img_mode mode, const char *path, const char *what)
{
    int w, h;
    if (img_preprocess_size(cfg, mode, im->w, im->h, &w, &h)) {
        CHECK_MSG(0, "%s: %s", what, err_msg());
        return;
    }
    float *px = malloc((size_t)3 * w * h * sizeof *px); /* [3, h, w] */
    CHECK_OK(img_preprocess(im, cfg, mode, px));
    check_near_planes(f, path, px, w, h, what);
    free(px);
}

static void check_pad_background(hid_t f, const char *group, const img_proc_cfg *cfg)
{
    int64_t want[3];
    size_t n = 0;
    uint8_t bg[3];
    img_pad_background(cfg, bg);
    int rc = gh5_attr_i64_array(f, group, "pad_background", want, 3, &n);
    CHECK_MSG(rc == 0 && n == 3, "%s: pad_background attribute missing", group);
    if (rc == 0 && n == 3)
        CHECK_MSG(bg[0] == want[0] && bg[1] == want[1] && bg[2] == want[2],
                  "%s: pad background (%d,%d,%d), want (%lld,%lld,%lld)", group, bg[0], bg[1],
                  bg[2], (long long)want[0], (long long)want[1], (long long)want[2]);
}

static void check_one_image(hid_t f, const char *file, const img_proc_cfg *cfg)
{
    char group[512], rel[600], what[640];
    snprintf(group, sizeof group, "images/%s", file);
    snprintf(rel, sizeof rel, "images/%s", file);
    char *jpeg = golden_path(rel);

    img_rgb8 dec, want_dec = read_rgb(f, group, "decoded_rgb");
    img_rgb8 want_res = read_rgb(f, group, "resized_rgb");
    img_rgb8 want_crop = read_rgb(f, group, "cropped_rgb");

    CHECK_OK(img_load_jpeg(jpeg, &dec));
    snprintf(what, sizeof what, "%s decoded_rgb", file);
    check_same_rgb(&dec, &want_dec, what);

    /* resize from the golden decode: isolates the resampler */
    img_rgb8 res = {0}, crop = {0};
    if (want_dec.pix) {
        CHECK_OK(img_resize_shortest_edge(&want_dec, cfg->shortest_edge, &res));
        snprintf(what, sizeof what, "%s resized_rgb", file);
        check_same_rgb(&res, &want_res, what);
    }
    /* crop from the golden resize: isolates the crop geometry */
    if (want_res.pix) {
        CHECK_OK(img_center_crop(&want_res, cfg->crop_w, cfg->crop_h, &crop));
        snprintf(what, sizeof what, "%s cropped_rgb", file);
        check_same_rgb(&crop, &want_crop, what);
    }

    /* our whole pipeline from our own decode */
    if (dec.pix) {
        snprintf(rel, sizeof rel, "%s/pixel_values_crop", group);
        snprintf(what, sizeof what, "%s crop path", file);
        check_preprocess(f, &dec, cfg, IMG_CROP, rel, what);
        snprintf(rel, sizeof rel, "%s/pixel_values_pad", group);
        snprintf(what, sizeof what, "%s pad path", file);
        check_preprocess(f, &dec, cfg, IMG_PAD, rel, what);
    }
    check_pad_background(f, group, cfg);

    printf("  %-28s %4dx%-4d checked\n", file, dec.w, dec.h);
    img_free(&dec), img_free(&want_dec), img_free(&want_res), img_free(&want_crop);
    img_free(&res), img_free(&crop);
    free(jpeg);
}

/* forward/case*: the pixel_values fed to the model are our preprocessing. */
static void check_forward_cases(hid_t f, const img_proc_cfg *cfg)
{
    if (!gh5_exists(f, "forward")) return;
    size_t n = 0;
    char **cases = gh5_list(f, "forward", &n);
    for (size_t i = 0; i < n; i++) {
        char obj[256], path[300], rel[300];
        snprintf(obj, sizeof obj, "forward/%s", cases[i]);
        snprintf(path, sizeof path, "%s/pixel_values", obj);
        char *image = gh5_attr_str(f, obj, "image");
        char *mode_s = gh5_attr_str(f, obj, "preprocess");
        img_mode mode;
        if (image && image[0] && mode_s && gh5_exists(f, path) &&
            img_mode_parse(mode_s, &mode) == 0) {
            snprintf(rel, sizeof rel, "images/%s", image);
            char *jpeg = golden_path(rel);
            img_rgb8 im;
            CHECK_OK(img_load_jpeg(jpeg, &im));
            if (im.pix) check_preprocess(f, &im, cfg, mode, path, obj);
            printf("  %-28s %s, %s\n", obj, image, mode_s);
            img_free(&im);
            free(jpeg);
        }
        free(image);
        free(mode_s);
    }
    gh5_free_list(cases, n);
}

int main(void)
{
    hid_t f = gh5_open();
    img_proc_cfg cfg;
    char *model = golden_path("tiny-llava");
    CHECK_OK(img_proc_load(model, &cfg));
    free(model);
    printf("preprocessor: shortest edge %d, crop %dx%d\n", cfg.shortest_edge, cfg.crop_w,
           cfg.crop_h);

    size_t n = 0;
    char **files = gh5_list(f, "images", &n);
    CHECK_MSG(n > 0, "golden.h5 has no images/ group members");
    for (size_t i = 0; i < n; i++) check_one_image(f, files[i], &cfg);
    gh5_free_list(files, n);

    check_forward_cases(f, &cfg);
    H5Fclose(f);
    return check_finish();
}
