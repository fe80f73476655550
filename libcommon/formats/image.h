/* image.h — formats layer: JPEG decode and CLIP/LLaVA image preprocessing.
 *
 * Decoding uses libjpeg-turbo with the settings Pillow uses (ISLOW IDCT,
 * fancy upsampling), so decoded pixels equal Pillow's. Resizing is Pillow's
 * BICUBIC: separable two-pass convolution (horizontal, then vertical) with
 * fixed-point coefficients and 8-bit rounding between the passes, so resized
 * pixels equal Pillow's exactly.
 */
#ifndef SIMA_FORMATS_IMAGE_H
#define SIMA_FORMATS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* 8-bit RGB image, row-major: pix[(y * w + x) * 3 + c]  [h, w, 3] */
typedef struct {
    int w, h;
    uint8_t *pix;
} img_rgb8;

void img_free(img_rgb8 *im);

/* Decode JPEG bytes (baseline or progressive; RGB/YCbCr or grayscale, which
 * becomes RGB). CMYK/YCCK and anything else: an error. `name` labels errors
 * ("photos/1.jpg: corrupt JPEG data: ..."). Truncated data is an error. */
int img_decode_jpeg(const uint8_t *buf, size_t len, const char *name, img_rgb8 *out);
int img_load_jpeg(const char *path, img_rgb8 *out);

/* Pillow Image.resize((w, h), BICUBIC). */
int img_resize_bicubic(const img_rgb8 *src, int w, int h, img_rgb8 *out);
/* Resize so the shortest edge is `edge`, the other scaled as
 * transformers' get_resize_output_image_size (default_to_square=False). */
int img_resize_shortest_edge(const img_rgb8 *src, int edge, img_rgb8 *out);
/* Center crop to (w, h) as CLIPImageProcessor.center_crop does. */
int img_center_crop(const img_rgb8 *src, int w, int h, img_rgb8 *out);
/* LLaVA expand2square: a max(w,h) square filled with bg, image centred. */
int img_expand_square(const img_rgb8 *src, const uint8_t bg[3], img_rgb8 *out);

/* CLIP preprocessor settings (preprocessor_config.json). */
typedef struct {
    int shortest_edge;      /* size.shortest_edge */
    int crop_w, crop_h;     /* crop_size */
    double rescale;         /* 1/255 */
    double mean[3], std[3];
    int do_resize, do_center_crop, do_rescale, do_normalize;
} img_proc_cfg;

/* Defaults of CLIPImageProcessor (224, OpenAI CLIP mean/std). */
void img_proc_default(img_proc_cfg *cfg);
/* Load preprocessor_config.json (a file or a model folder holding one). */
int img_proc_load(const char *path, img_proc_cfg *cfg);

typedef enum { IMG_CROP, IMG_PAD } img_mode;
int img_mode_parse(const char *s, img_mode *out);   /* "crop" | "pad" */

/* Background of pad mode: int(mean * 255) per channel, as LLaVA computes it. */
void img_pad_background(const img_proc_cfg *cfg, uint8_t bg[3]);

/* Rescale and normalise to planar float32: out[c][y][x]  [3, h, w]. */
void img_normalize(const img_rgb8 *im, const img_proc_cfg *cfg, float *out);

/* The whole path: (pad ->) resize shortest edge -> center crop -> normalise.
 * out holds 3 * crop_h * crop_w floats. */
int img_preprocess(const img_rgb8 *im, const img_proc_cfg *cfg, img_mode mode,
                   float *out);

#endif
