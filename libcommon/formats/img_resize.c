/* img_resize.c — Pillow-exact BICUBIC resampling of 8-bit RGB images.
 *
 * The design follows Pillow's ImagingResample (libImaging/Resample.c), which
 * is what Image.resize((w, h), BICUBIC) runs, so every rounding step is the
 * same and the output is identical byte for byte:
 *
 *  - Separable: a horizontal pass, then a vertical pass, each done only when
 *    that dimension changes. The horizontal result is rounded and clipped to
 *    8 bits before the vertical pass reads it.
 *  - Each output sample i covers the input interval centred at
 *    (i + 0.5) * scale. When shrinking, the cubic kernel (a = -0.5, support 2)
 *    is stretched by the scale factor so that it averages (antialiases).
 *  - Weights are computed in double, normalised to sum to 1, then turned into
 *    fixed point with 22 fractional bits; sums are 32-bit integers.
 *  - The horizontal pass only processes the input rows that the vertical
 *    kernels will read.
 */
#include "image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* 8 bits of pixel and 2 bits of headroom for the kernel's overshoot leave
 * 22 fractional bits in a 32-bit accumulator. */
#define COEF_BITS 22
#define BICUBIC_SUPPORT 2.0

/* Keys' cubic convolution kernel with a = -0.5 (Pillow's BICUBIC). */
static double bicubic_kernel(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Which input samples each output sample reads, with what weights, along
 * one axis. */
typedef struct {
    int n_out;
    int ksize;       /* stride of coef: the most taps any output sample uses */
    int *first;      /* [n_out] first input sample read */
    int *count;      /* [n_out] number of input samples read (<= ksize) */
    int32_t *coef;   /* [n_out, ksize] fixed-point weights, COEF_BITS fraction */
} resample_plan;

static void plan_free(resample_plan *p)
{
    free(p->first);
    free(p->count);
    free(p->coef);
    memset(p, 0, sizeof *p);
}

/* Double weight to fixed point, rounding half away from zero. */
static int32_t to_fixed(double w)
{
    double scaled = w * (double)(1 << COEF_BITS);
    return (int32_t)(w < 0 ? scaled - 0.5 : scaled + 0.5);
}

/* Fill the weights of one output sample centred at `center` (input units). */
static void plan_weights(int in_size, double center, double support, double inv_stretch,
                         int *first, int *count, int32_t *coef, double *w)
{
    /* (int) truncates like Pillow's "round the value" casts; clamped below. */
    int lo = (int)(center - support + 0.5);
    int hi = (int)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in_size) hi = in_size;
    int n = hi - lo;

    double sum = 0.0;
    for (int k = 0; k < n; k++) {
        /* distance from the centre of input sample lo + k */
        w[k] = bicubic_kernel((k + lo - center + 0.5) * inv_stretch);
        sum += w[k];
    }
    for (int k = 0; k < n; k++) {
        if (sum != 0.0) w[k] /= sum;
        coef[k] = to_fixed(w[k]);
    }
    *first = lo;
    *count = n;
}

/* Plan resampling in_size samples to out_size samples. */
static void plan_build(int in_size, int out_size, resample_plan *p)
{
    memset(p, 0, sizeof *p);
    /* Pillow passes the source extent as a float box edge */
    double scale = (double)(float)in_size / out_size;
    double stretch = scale < 1.0 ? 1.0 : scale; /* widen the kernel only when shrinking */
    double support = BICUBIC_SUPPORT * stretch;
    int ksize = (int)ceil(support) * 2 + 1;

    p->n_out = out_size;
    p->ksize = ksize;
    p->first = xmalloc((size_t)out_size * sizeof *p->first);
    p->count = xmalloc((size_t)out_size * sizeof *p->count);
    p->coef = xcalloc((size_t)out_size * (size_t)ksize, sizeof *p->coef);
    double *w = xmalloc((size_t)ksize * sizeof *w); /* [ksize] scratch */

    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        plan_weights(in_size, center, support, 1.0 / stretch, &p->first[i], &p->count[i],
                     &p->coef[(size_t)i * ksize], w);
    }
    free(w);
}

/* Fixed-point sum to a pixel: drop the fraction (the sum started at one
 * half, so this rounds) and clip to 0..255. */
static inline uint8_t clip_pixel(int32_t acc)
{
    int32_t v = acc >> COEF_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Horizontal pass over nrows rows of src starting at row0:
 * src [src_h, src_w, 3] -> dst [nrows, plan->n_out, 3]. */
static void resample_rows(const uint8_t *src, int src_w, int row0, int nrows,
                          const resample_plan *plan, uint8_t *dst)
{
    const int32_t half = 1 << (COEF_BITS - 1);
    int dst_w = plan->n_out;
    size_t in_len = (size_t)src_w * 3, out_len = (size_t)dst_w * 3;
    for (int y = 0; y < nrows; y++) {
        const uint8_t *in = src + (size_t)(row0 + y) * in_len;
        uint8_t *out = dst + (size_t)y * out_len;
        /* A row equal to the one above (the padding of expand-to-square,
         * flat backgrounds) resamples to the same row: copy it. memcmp
         * stops at the first difference, so this costs little otherwise. */
        if (y > 0 && memcmp(in, in - in_len, in_len) == 0) {
            memcpy(out, out - out_len, out_len);
            continue;
        }
        for (int x = 0; x < dst_w; x++) {
            const int32_t *k = &plan->coef[(size_t)x * plan->ksize];
            const uint8_t *p = in + (size_t)plan->first[x] * 3;
            int32_t r = half, g = half, b = half;
            for (int t = 0; t < plan->count[x]; t++, p += 3) {
                r += p[0] * k[t];
                g += p[1] * k[t];
                b += p[2] * k[t];
            }
            out[x * 3 + 0] = clip_pixel(r);
            out[x * 3 + 1] = clip_pixel(g);
            out[x * 3 + 2] = clip_pixel(b);
        }
    }
}

/* Sum the taps of one output row over row_len samples starting at i0:
 * n is VERT_BLOCK (a constant the compiler can vectorise) or the tail. */
#define VERT_BLOCK 32
static inline void vertical_block(const uint8_t *in, size_t row_len, size_t i0, int n,
                                  const int32_t *k, int taps, uint8_t *out)
{
    int32_t acc[VERT_BLOCK];
    for (int j = 0; j < n; j++) acc[j] = 1 << (COEF_BITS - 1);
    for (int t = 0; t < taps; t++) {
        const uint8_t *row = in + (size_t)t * row_len + i0;
        int32_t kt = k[t];
        for (int j = 0; j < n; j++) acc[j] += row[j] * kt;
    }
    for (int j = 0; j < n; j++) out[i0 + j] = clip_pixel(acc[j]);
}

/* Vertical pass: src [*, w, 3] whose row 0 is input row row0 ->
 * dst [plan->n_out, w, 3]. Integer sums are exact in any order, so summing
 * tap by tap over blocks of a row gives Pillow's result. */
static void resample_cols(const uint8_t *src, int w, int row0, const resample_plan *plan,
                          uint8_t *dst)
{
    size_t row_len = (size_t)w * 3;
    for (int y = 0; y < plan->n_out; y++) {
        const int32_t *k = &plan->coef[(size_t)y * plan->ksize];
        const uint8_t *in = src + (size_t)(plan->first[y] - row0) * row_len;
        uint8_t *out = dst + (size_t)y * row_len;
        size_t i = 0;
        for (; i + VERT_BLOCK <= row_len; i += VERT_BLOCK)
            vertical_block(in, row_len, i, VERT_BLOCK, k, plan->count[y], out);
        if (i < row_len) vertical_block(in, row_len, i, (int)(row_len - i), k, plan->count[y], out);
    }
}

static int check_source(const img_rgb8 *src)
{
    if (!src || !src->pix || src->w < 1 || src->h < 1)
        return ERR("resize: empty source image");
    return 0;
}

static int copy_image(const img_rgb8 *src, img_rgb8 *out)
{
    if (img_alloc(out, src->w, src->h)) return -1;
    memcpy(out->pix, src->pix, (size_t)src->w * src->h * 3);
    return 0;
}

int img_resize_bicubic(const img_rgb8 *src, int w, int h, img_rgb8 *out)
{
    *out = (img_rgb8){0, 0, NULL};
    if (check_source(src)) return -1;
    if (w < 1 || h < 1 || (long long)w * h > IMG_MAX_PIXELS)
        return ERR("resize: bad target size %dx%d", w, h);
    if (w == src->w && h == src->h) return copy_image(src, out);

    int need_h = w != src->w, need_v = h != src->h;
    resample_plan vplan = {0}, hplan = {0};
    int row0 = 0, nrows = src->h;
    if (need_v) {
        plan_build(src->h, h, &vplan);
        row0 = vplan.first[0];
        nrows = vplan.first[h - 1] + vplan.count[h - 1] - row0;
    }

    /* Horizontal pass into tmp [nrows, w, 3], or read the source rows as is. */
    img_rgb8 tmp = {0, 0, NULL};
    const uint8_t *rows = src->pix + (size_t)row0 * src->w * 3;
    if (need_h) {
        plan_build(src->w, w, &hplan);
        if (img_alloc(&tmp, w, nrows)) goto fail;
        resample_rows(src->pix, src->w, row0, nrows, &hplan, tmp.pix);
        rows = tmp.pix;
        plan_free(&hplan);
    }

    if (need_v) {
        if (img_alloc(out, w, h)) goto fail;
        resample_cols(rows, w, row0, &vplan, out->pix);
        img_free(&tmp);
    } else {
        *out = tmp; /* only the width changed: the horizontal pass is the result */
    }
    plan_free(&vplan);
    return 0;

fail:
    plan_free(&hplan);
    plan_free(&vplan);
    img_free(&tmp);
    return -1;
}

void img_shortest_edge_size(int w, int h, int edge, int *out_w, int *out_h)
{
    int short_side = w <= h ? w : h, long_side = w <= h ? h : w;
    /* Python: int(edge * long / short), true division then truncation. */
    int new_long = (int)((double)edge * long_side / short_side);
    if (w <= h) {
        *out_w = edge;
        *out_h = new_long;
    } else {
        *out_w = new_long;
        *out_h = edge;
    }
}

int img_resize_shortest_edge(const img_rgb8 *src, int edge, img_rgb8 *out)
{
    *out = (img_rgb8){0, 0, NULL};
    if (check_source(src)) return -1;
    if (edge < 1) return ERR("resize: shortest edge must be positive, got %d", edge);
    /* an extreme aspect ratio could overflow int: check in double first */
    double ratio = (double)(src->w > src->h ? src->w : src->h) / (src->w < src->h ? src->w : src->h);
    if ((double)edge * edge * ratio > (double)IMG_MAX_PIXELS)
        return ERR("resize: %dx%d to shortest edge %d is too large (over %lld pixels)", src->w,
                   src->h, edge, IMG_MAX_PIXELS);
    int w, h;
    img_shortest_edge_size(src->w, src->h, edge, &w, &h);
    if (w < 1 || h < 1)
        return ERR("resize: %dx%d to shortest edge %d gives an empty image", src->w, src->h, edge);
    return img_resize_bicubic(src, w, h, out);
}
