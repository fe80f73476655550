/* image.c — image buffers, crop/pad geometry, CLIP preprocessor settings,
 * normalisation and the whole preprocessing path. Decoding is in img_jpeg.c,
 * resampling in img_resize.c. */
#include "image.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "js.h"

/* OpenAI CLIP statistics: CLIPImageProcessor's defaults. */
static const double CLIP_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double CLIP_STD[3] = {0.26862954, 0.26130258, 0.27577711};

/* ------------------------------------------------------------ buffers */

int img_alloc(img_rgb8 *im, int w, int h)
{
    *im = (img_rgb8){0, 0, NULL};
    if (w < 1 || h < 1 || (long long)w * h > IMG_MAX_PIXELS)
        return ERR("image size %dx%d is out of range (1 to %lld pixels)", w, h, IMG_MAX_PIXELS);
    im->pix = xmalloc((size_t)w * h * 3);
    im->w = w;
    im->h = h;
    return 0;
}

void img_free(img_rgb8 *im)
{
    if (!im) return;
    free(im->pix);
    *im = (img_rgb8){0, 0, NULL};
}

static int check_image(const img_rgb8 *im, const char *what)
{
    if (!im || !im->pix || im->w < 1 || im->h < 1) return ERR("%s: empty image", what);
    return 0;
}

/* ------------------------------------------------------------ geometry */

/* Python's a // 2 for any sign. */
static int floor_half(int a)
{
    return a >= 0 ? a / 2 : -((-a + 1) / 2);
}

int img_center_crop(const img_rgb8 *src, int w, int h, img_rgb8 *out)
{
    *out = (img_rgb8){0, 0, NULL};
    if (check_image(src, "center crop")) return -1;
    if (img_alloc(out, w, h)) return err_context("center crop");

    /* Output (y, x) reads source (y + top, x + left). With the image larger
     * than the crop this is transformers' slice; smaller, its zero padding
     * by ceil(diff / 2) works out to the same offsets, reading outside. */
    int top = floor_half(src->h - h), left = floor_half(src->w - w);
    memset(out->pix, 0, (size_t)w * h * 3);
    int x0 = left < 0 ? -left : 0;                       /* first output column inside */
    int x1 = src->w - left < w ? src->w - left : w;      /* one past the last */
    for (int y = 0; y < h; y++) {
        int sy = y + top;
        if (sy < 0 || sy >= src->h || x1 <= x0) continue;
        memcpy(out->pix + ((size_t)y * w + x0) * 3,
               src->pix + ((size_t)sy * src->w + x0 + left) * 3, (size_t)(x1 - x0) * 3);
    }
    return 0;
}

int img_expand_square(const img_rgb8 *src, const uint8_t bg[3], img_rgb8 *out)
{
    *out = (img_rgb8){0, 0, NULL};
    if (check_image(src, "expand to square")) return -1;
    int side = src->w > src->h ? src->w : src->h;
    if (img_alloc(out, side, side)) return err_context("expand to square");

    size_t n = (size_t)side * side;
    for (size_t i = 0; i < n; i++) memcpy(out->pix + i * 3, bg, 3);
    int x0 = (side - src->w) / 2, y0 = (side - src->h) / 2; /* one of them is 0 */
    for (int y = 0; y < src->h; y++)
        memcpy(out->pix + ((size_t)(y + y0) * side + x0) * 3,
               src->pix + (size_t)y * src->w * 3, (size_t)src->w * 3);
    return 0;
}

/* ------------------------------------------------------------ settings */

void img_proc_default(img_proc_cfg *cfg)
{
    *cfg = (img_proc_cfg){
        .shortest_edge = 224,
        .crop_w = 224,
        .crop_h = 224,
        .rescale = 1.0 / 255.0,
        .do_resize = 1,
        .do_center_crop = 1,
        .do_rescale = 1,
        .do_normalize = 1,
    };
    memcpy(cfg->mean, CLIP_MEAN, sizeof cfg->mean);
    memcpy(cfg->std, CLIP_STD, sizeof cfg->std);
}

static int get_flag(const json_t *root, const char *key, int *flag, const char *where)
{
    bool b;
    if (js_get_bool(root, key, *flag != 0, &b, where)) return -1;
    *flag = b;
    return 0;
}

static int positive_size(long long v, const char *where, const char *key, int *out)
{
    if (v < 1 || v > 65536) return ERR("%s: \"%s\": size %lld is out of range", where, key, v);
    *out = (int)v;
    return 0;
}

/* "size": n or {"shortest_edge": n}. A fixed {"height", "width"} resize is
 * not what CLIP/LLaVA use and is refused rather than misread. */
static int parse_size(const json_t *root, img_proc_cfg *cfg, const char *where)
{
    const json_t *v = json_object_get(root, "size");
    if (!v || json_is_null(v)) return 0;
    if (json_is_number(v)) {
        long long n;
        if (js_get_int(root, "size", 0, &n, where)) return -1;
        return positive_size(n, where, "size", &cfg->shortest_edge);
    }
    if (!json_is_object(v)) return ERR("%s: \"size\": expected an integer or an object", where);
    if (!json_object_get(v, "shortest_edge"))
        return ERR("%s: \"size\": only {\"shortest_edge\": N} is supported", where);
    long long n;
    if (js_get_int(v, "shortest_edge", 0, &n, where)) return -1;
    return positive_size(n, where, "size.shortest_edge", &cfg->shortest_edge);
}

/* "crop_size": n or {"height": h, "width": w}. */
static int parse_crop(const json_t *root, img_proc_cfg *cfg, const char *where)
{
    const json_t *v = json_object_get(root, "crop_size");
    if (!v || json_is_null(v)) return 0;
    long long cw, ch;
    if (json_is_number(v)) {
        if (js_get_int(root, "crop_size", 0, &cw, where)) return -1;
        ch = cw;
    } else if (json_is_object(v)) {
        if (js_get_int(v, "height", cfg->crop_h, &ch, where) ||
            js_get_int(v, "width", cfg->crop_w, &cw, where))
            return -1;
    } else {
        return ERR("%s: \"crop_size\": expected an integer or an object", where);
    }
    if (positive_size(cw, where, "crop_size.width", &cfg->crop_w)) return -1;
    return positive_size(ch, where, "crop_size.height", &cfg->crop_h);
}

/* "image_mean" / "image_std": three numbers, or one for all channels. */
static int parse_triple(const json_t *root, const char *key, double out[3], const char *where)
{
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_number(v)) {
        out[0] = out[1] = out[2] = json_number_value(v);
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) != 3)
        return ERR("%s: \"%s\": expected 3 numbers", where, key);
    for (size_t i = 0; i < 3; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_number(e)) return ERR("%s: \"%s\": expected 3 numbers", where, key);
        out[i] = json_number_value(e);
    }
    return 0;
}

static int check_cfg(const img_proc_cfg *cfg, const char *where)
{
    for (int c = 0; c < 3; c++)
        if (!(cfg->std[c] != 0.0)) return ERR("%s: \"image_std\" has a zero entry", where);
    return 0;
}

static int parse_cfg(const json_t *root, img_proc_cfg *cfg, const char *where)
{
    if (!json_is_object(root)) return ERR("%s: expected a JSON object", where);
    long long resample;
    if (js_get_int(root, "resample", 3, &resample, where)) return -1;
    if (resample != 3)
        return ERR("%s: \"resample\": %lld is not supported (only 3, BICUBIC)", where, resample);
    if (parse_size(root, cfg, where) || parse_crop(root, cfg, where)) return -1;
    if (js_get_double(root, "rescale_factor", cfg->rescale, &cfg->rescale, where)) return -1;
    if (parse_triple(root, "image_mean", cfg->mean, where) ||
        parse_triple(root, "image_std", cfg->std, where))
        return -1;
    if (get_flag(root, "do_resize", &cfg->do_resize, where) ||
        get_flag(root, "do_center_crop", &cfg->do_center_crop, where) ||
        get_flag(root, "do_rescale", &cfg->do_rescale, where) ||
        get_flag(root, "do_normalize", &cfg->do_normalize, where))
        return -1;
    return check_cfg(cfg, where);
}

int img_proc_load(const char *path, img_proc_cfg *cfg)
{
    img_proc_default(cfg);
    char *file = fs_is_dir(path) ? fs_join(path, "preprocessor_config.json") : xstrdup(path);
    json_t *root = js_load_file(file);
    int rc = root ? parse_cfg(root, cfg, file) : -1;
    json_decref(root);
    free(file);
    if (rc) img_proc_default(cfg);
    return rc;
}

int img_mode_parse(const char *s, img_mode *out)
{
    if (s && strcmp(s, "crop") == 0) {
        *out = IMG_CROP;
        return 0;
    }
    if (s && strcmp(s, "pad") == 0) {
        *out = IMG_PAD;
        return 0;
    }
    return ERR("image mode \"%s\": expected \"crop\" or \"pad\"", s ? s : "(null)");
}

void img_pad_background(const img_proc_cfg *cfg, uint8_t bg[3])
{
    for (int c = 0; c < 3; c++) {
        double v = cfg->mean[c] * 255.0;          /* Python int(): truncation */
        bg[c] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)v);
    }
}

/* ------------------------------------------------------------ normalise */

/* The float value of every 8-bit level of one channel: lut [256]. */
static void channel_lut(const img_proc_cfg *cfg, int c, float lut[256])
{
    float mean = (float)cfg->mean[c], std = (float)cfg->std[c];
    for (int p = 0; p < 256; p++) {
        /* transformers rescales in float64 and casts to float32 ... */
        float x = cfg->do_rescale ? (float)(p * cfg->rescale) : (float)p;
        /* ... and normalises in float32 */
        if (cfg->do_normalize) x = (x - mean) / std;
        lut[p] = x;
    }
}

void img_normalize(const img_rgb8 *im, const img_proc_cfg *cfg, float *out)
{
    size_t plane = (size_t)im->w * im->h;
    for (int c = 0; c < 3; c++) {
        float lut[256];
        channel_lut(cfg, c, lut);
        float *dst = out + (size_t)c * plane;
        const uint8_t *src = im->pix + c;
        for (size_t i = 0; i < plane; i++) dst[i] = lut[src[i * 3]];
    }
}

/* ------------------------------------------------------------ whole path */

int img_preprocess_size(const img_proc_cfg *cfg, img_mode mode, int w, int h,
                        int *out_w, int *out_h)
{
    if (w < 1 || h < 1) return ERR("preprocess: empty image");
    if (mode == IMG_PAD) w = h = w > h ? w : h;
    if (cfg->do_center_crop) {
        *out_w = cfg->crop_w;
        *out_h = cfg->crop_h;
    } else if (cfg->do_resize) {
        img_shortest_edge_size(w, h, cfg->shortest_edge, out_w, out_h);
    } else {
        *out_w = w;
        *out_h = h;
    }
    return 0;
}

/* Replace *cur by next, freeing what *cur owned (never the caller's input). */
static void advance(img_rgb8 *cur, img_rgb8 *owned, img_rgb8 next)
{
    img_free(owned);
    *owned = next;
    *cur = next;
}

int img_preprocess(const img_rgb8 *im, const img_proc_cfg *cfg, img_mode mode, float *out)
{
    if (check_image(im, "preprocess")) return -1;
    img_rgb8 cur = *im;                  /* the image at this stage */
    img_rgb8 owned = {0, 0, NULL};       /* our copy of it, if any */
    img_rgb8 next;

    if (mode == IMG_PAD && im->w != im->h) {
        uint8_t bg[3];
        img_pad_background(cfg, bg);
        if (img_expand_square(&cur, bg, &next)) goto fail;
        advance(&cur, &owned, next);
    }
    if (cfg->do_resize) {
        if (img_resize_shortest_edge(&cur, cfg->shortest_edge, &next)) goto fail;
        advance(&cur, &owned, next);
    }
    if (cfg->do_center_crop) {
        if (img_center_crop(&cur, cfg->crop_w, cfg->crop_h, &next)) goto fail;
        advance(&cur, &owned, next);
    }
    img_normalize(&cur, cfg, out);
    img_free(&owned);
    return 0;

fail:
    img_free(&owned);
    return err_context("preprocess %dx%d image", im->w, im->h);
}
