/* image.h — formats layer: JPEG and PNG decode and CLIP/LLaVA image
 * preprocessing.
 *
 * JPEG decoding uses libjpeg-turbo with the settings Pillow uses (ISLOW
 * IDCT, fancy upsampling), so decoded pixels equal Pillow's. PNG decoding
 * uses libpng for the raw samples and Pillow's rules to make them RGB. Resizing is Pillow's
 * BICUBIC: separable two-pass convolution (horizontal, then vertical) with
 * fixed-point coefficients and 8-bit rounding between the passes, so resized
 * pixels equal Pillow's exactly.
 *
 * All functions return 0 on success and -1 after recording an error with
 * ERR() (see err.h); on failure an output image is left empty ({0, 0, NULL}).
 * Output images are allocated here and released with img_free().
 *
 * Sources: img_jpeg.c, img_png.c (decoders), img_decode.c (picks one),
 * img_resize.c (resampler), image.c (the rest).
 */
#ifndef SIMA_FORMATS_IMAGE_H
#define SIMA_FORMATS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Largest image accepted anywhere (decode or resize), in pixels: a guard
 * against decompression bombs (Pillow refuses above ~1.8e8). */
#define IMG_MAX_PIXELS 100000000LL

/* 8-bit RGB image, row-major: pix[(y * w + x) * 3 + c]  [h, w, 3] */
typedef struct {
    int w, h;
    uint8_t *pix;
} img_rgb8;

/* Allocate an uninitialised w x h image (w, h >= 1, w * h <= IMG_MAX_PIXELS). */
int img_alloc(img_rgb8 *im, int w, int h);
/* Release the pixels and reset to {0, 0, NULL}; safe on an empty image. */
void img_free(img_rgb8 *im);

/* Decode JPEG bytes (baseline or progressive; RGB/YCbCr or grayscale, which
 * becomes RGB). CMYK/YCCK and anything else: an error. `name` labels errors
 * ("photos/1.jpg: corrupt JPEG data: ..."). Truncated data is an error.
 * libjpeg's recoverable "corrupt data" warnings are tolerated as Pillow
 * tolerates them. Images over IMG_MAX_PIXELS are refused before decoding. */
int img_decode_jpeg(const uint8_t *buf, size_t len, const char *name, img_rgb8 *out);
int img_load_jpeg(const char *path, img_rgb8 *out);
/* Read only the header: the image size, with the checks of img_decode_jpeg
 * that need no pixel data (signature, colour space, size limit). */
int img_jpeg_size(const uint8_t *buf, size_t len, const char *name, int *w, int *h);

/* Decode PNG bytes (any colour type and bit depth, interlaced or not) to
 * what Pillow's Image.open(f).convert("RGB") gives: gray replicated, palette
 * colours (tRNS ignored), alpha dropped (not composited), 16-bit samples by
 * their high byte except 16-bit gray, which Pillow clips to 255 (see
 * img_png.c), 1/2/4-bit gray scaled to 0..255; gamma and colour profiles
 * are not applied. Truncated or corrupt data is an error naming `name`, so
 * is a bad CRC before the image data (IDAT CRCs are not checked, as Pillow
 * does not check them); images over IMG_MAX_PIXELS are refused before
 * decoding. */
int img_decode_png(const uint8_t *buf, size_t len, const char *name, img_rgb8 *out);
/* Read only the header chunks: the image size, with the size limit. */
int img_png_size(const uint8_t *buf, size_t len, const char *name, int *w, int *h);

/* Decode an encoded image of any supported format (JPEG, PNG), told apart
 * by its signature, to RGB as Pillow's Image.open(...).convert("RGB") gives
 * it. Other formats: an error naming `name` and the format. img_load reads
 * a file and decodes it; img_size reads only the header (size limit
 * checked). */
int img_decode(const uint8_t *buf, size_t len, const char *name, img_rgb8 *out);
int img_load(const char *path, img_rgb8 *out);
int img_size(const uint8_t *buf, size_t len, const char *name, int *w, int *h);

/* Pillow Image.resize((w, h), BICUBIC). Same size: a copy. */
int img_resize_bicubic(const img_rgb8 *src, int w, int h, img_rgb8 *out);
/* Resize so the shortest edge is `edge`, the other scaled as
 * transformers' get_resize_output_image_size (default_to_square=False):
 * long = int(edge * long / short). */
int img_resize_shortest_edge(const img_rgb8 *src, int edge, img_rgb8 *out);
/* Size that img_resize_shortest_edge gives a w x h image. */
void img_shortest_edge_size(int w, int h, int edge, int *out_w, int *out_h);
/* Center crop to (w, h) as transformers' image_transforms.center_crop does:
 * top = (H - h) // 2, left = (W - w) // 2 (floor division); where the image
 * is smaller than the crop it is centred on zeros. */
int img_center_crop(const img_rgb8 *src, int w, int h, img_rgb8 *out);
/* LLaVA expand2square: a max(w,h) square filled with bg, the image pasted at
 * ((side - w) // 2, 0) or (0, (side - h) // 2). A square image is copied. */
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
/* Load preprocessor_config.json (a file or a model folder holding one).
 * Absent fields keep the CLIPImageProcessor defaults. `size` may be an
 * integer or {"shortest_edge": n}; `crop_size` an integer or
 * {"height": h, "width": w}; `resample`, when present, must be 3 (BICUBIC). */
int img_proc_load(const char *path, img_proc_cfg *cfg);

typedef enum { IMG_CROP, IMG_PAD } img_mode;
int img_mode_parse(const char *s, img_mode *out);   /* "crop" | "pad" */

/* Background of pad mode: int(mean * 255) per channel, as LLaVA computes it. */
void img_pad_background(const img_proc_cfg *cfg, uint8_t bg[3]);

/* Rescale and normalise to planar float32: out[c][y][x]  [3, h, w].
 * float32 arithmetic as transformers does it: x = float(p * rescale),
 * then (x - float(mean)) / float(std). */
void img_normalize(const img_rgb8 *im, const img_proc_cfg *cfg, float *out);

/* Size of img_preprocess's output for a w x h input: the crop size when
 * do_center_crop is on (the LLaVA case), else the resized size. */
int img_preprocess_size(const img_proc_cfg *cfg, img_mode mode, int w, int h,
                        int *out_w, int *out_h);

/* The whole path: (pad ->) resize shortest edge -> center crop -> normalise.
 * out holds 3 * crop_h * crop_w floats  [3, crop_h, crop_w]  (see
 * img_preprocess_size when do_center_crop is off). */
int img_preprocess(const img_rgb8 *im, const img_proc_cfg *cfg, img_mode mode,
                   float *out);

#endif
