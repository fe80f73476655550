/* img_png.c — PNG decoding through libpng's classic API, giving the pixels
 * Pillow gives for Image.open(f).convert("RGB").
 *
 * libpng is asked for the raw samples only (no transformations but Adam7
 * de-interlacing), and each row is turned into RGB here by Pillow's rules
 * (PngImagePlugin's mode/rawmode table, then convert("RGB")):
 *   gray 1-bit  -> mode "1", 0/255          gray 2-bit -> v * 85 ("L;2")
 *   gray 4-bit  -> v * 17 ("L;4")           gray 8-bit -> v
 *   gray 16-bit -> mode "I;16"; convert("RGB") clips: v > 255 -> 255, not
 *                  v >> 8 (Convert.c's I;16 -> L/RGB rule: high byte
 *                  non-zero gives 255, else the low byte)
 *   RGB 8/16    -> the samples / their high bytes ("RGB;16B")
 *   palette     -> the palette colour of each index; an index past the
 *                  PLTE entries is black (Pillow 12 fills a new palette
 *                  with zeros, ImagingPaletteNew, and copies PLTE over its
 *                  first entries); tRNS does not change the colours
 *   gray+alpha  -> 8-bit: L; 16-bit: high byte of L ("LA;16B" into RGBA)
 *   RGBA 8/16   -> R, G, B (16-bit: high bytes, "RGBA;16B")
 * Alpha is dropped, never composited; gAMA, cHRM, iCCP, sRGB and sBIT are
 * not applied (Pillow does not apply them either).
 *
 * Errors: libpng calls our error function, which records the reason and
 * longjmps back to the decoder; everything then lives in one heap job, so
 * no local needs to be volatile. Running out of bytes is "truncated". CRCs
 * are checked as Pillow checks them: a bad CRC on any chunk before the
 * image data (IHDR, PLTE, ancillary ones) is an error; IDAT CRCs are not
 * checked (Pillow skips them; zlib's Adler-32 still guards the pixels).
 * Once every row is in, nothing more is needed, as for Pillow (whose
 * decoder stops at the last row): chunks after the image data are not read,
 * and data that ends after the last row (in the zlib checksum, the last
 * IDAT CRC, or with no IEND) still gives the image. To know when the last
 * row is in, a do-nothing user transform counts the rows libpng has
 * decompressed. libpng reads IDAT ahead in blocks, so a truncated file is
 * decoded a second time with zlib fed one byte at a time: then every row
 * whose data is present comes out before the data runs short. Warnings are
 * dropped (a library never prints).
 */
#include "image.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "err.h"
#include "fs.h"

typedef struct {
    const uint8_t *buf;
    size_t len, pos;           /* bytes handed to libpng so far */
    png_structp png;
    png_infop info;
    jmp_buf escape;
    char reason[256];
    int bytewise;              /* feed zlib one byte at a time */
    int truncated;             /* the read callback ran out of data */
    size_t rows_total;         /* rows of image data (all Adam7 passes) */
    size_t rows_seen;          /* of them decompressed so far */
    png_uint_32 w, h;
    int depth, ctype, interlace;
    uint8_t pal[256][3];       /* the palette, padded as Pillow pads it */
    size_t rowbytes;
    uint8_t *raw;              /* raw rows: one, or all h when interlaced */
    img_rgb8 im;               /* the pixels, freed on failure  [h, w, 3] */
} png_job;

/* ------------------------------------------------------------ libpng hooks */

/* longjmp values: a failure, or the data ended after every row was in */
enum { JOB_FAILED = 1, JOB_TAIL_MISSING = 2 };

static void on_error(png_structp png, png_const_charp msg)
{
    png_job *job = png_get_error_ptr(png);
    if (job->truncated && job->rows_total > 0 && job->rows_seen == job->rows_total)
        longjmp(job->escape, JOB_TAIL_MISSING);
    if (job->truncated)
        snprintf(job->reason, sizeof job->reason, "truncated PNG file (premature end of data)");
    else
        snprintf(job->reason, sizeof job->reason, "corrupt PNG data: %s", msg);
    longjmp(job->escape, JOB_FAILED);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* recoverable: decode on, like Pillow; never print */
}

static void on_read(png_structp png, png_bytep dst, size_t n)
{
    png_job *job = png_get_io_ptr(png);
    if (n > job->len - job->pos) {
        job->truncated = 1;
        png_error(png, "truncated");
    }
    memcpy(dst, job->buf + job->pos, n);
    job->pos += n;
}

/* Called by libpng for each row of image data once it is decompressed and
 * unfiltered, before it is copied out and before libpng reads on. */
static void on_row_data(png_structp png, png_row_infop row_info, png_bytep data)
{
    (void)row_info;
    (void)data;
    png_job *job = png_get_io_ptr(png);
    job->rows_seen++;
}

/* Fail from inside the setjmp region with our own reason. */
static _Noreturn void job_fail(png_job *job, const char *reason)
{
    snprintf(job->reason, sizeof job->reason, "%s", reason);
    longjmp(job->escape, JOB_FAILED);
}

/* ------------------------------------------------------------ header */

static void job_start(png_job *job)
{
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, on_error, on_warning);
    if (!job->png) job_fail(job, "cannot create the PNG decoder (out of memory?)");
    job->info = png_create_info_struct(job->png);
    if (!job->info) job_fail(job, "cannot create the PNG decoder (out of memory?)");
    png_set_read_fn(job->png, job, on_read);
    /* Our pixel limit decides, not libpng's default 1e6 x 1e6 rows/columns. */
    png_set_user_limits(job->png, 0x7fffffff, 0x7fffffff);
    /* Bad CRC on an ancillary chunk: an error, as for critical chunks. */
    png_set_crc_action(job->png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
    /* Recoverable problems (a bad ICC profile, extra zlib data after the
     * last row) are warnings, as in Pillow, which ignores them. */
    png_set_benign_errors(job->png, 1);
    /* On a read struct this sets how much IDAT data goes to zlib at once. */
    if (job->bytewise) png_set_compression_buffer_size(job->png, 1);
}

/* Pillow's palette: the PLTE entries, then black for indices the file
 * leaves out. */
static void job_read_palette(png_job *job)
{
    memset(job->pal, 0, sizeof job->pal);
    png_colorp pal = NULL;
    int n = 0;
    if (!png_get_PLTE(job->png, job->info, &pal, &n) || !pal)
        job_fail(job, "corrupt PNG data: palette image without a PLTE chunk");
    for (int i = 0; i < n && i < 256; i++) {
        job->pal[i][0] = pal[i].red;
        job->pal[i][1] = pal[i].green;
        job->pal[i][2] = pal[i].blue;
    }
}

static void job_read_header(png_job *job)
{
    png_read_info(job->png, job->info);
    int compression, filter;
    if (!png_get_IHDR(job->png, job->info, &job->w, &job->h, &job->depth, &job->ctype,
                      &job->interlace, &compression, &filter))
        job_fail(job, "corrupt PNG data: no IHDR");
    if ((long long)job->w * job->h > IMG_MAX_PIXELS) {
        char why[160];
        snprintf(why, sizeof why, "image of %lux%lu pixels exceeds the limit of %lld "
                 "(decompression bomb?)", (unsigned long)job->w, (unsigned long)job->h,
                 IMG_MAX_PIXELS);
        job_fail(job, why);
    }
    if (job->ctype == PNG_COLOR_TYPE_PALETTE) job_read_palette(job);
    /* From here on only IDAT is read: ignore its CRCs, as Pillow does. */
    png_set_crc_action(job->png, PNG_CRC_QUIET_USE, PNG_CRC_NO_CHANGE);
}

/* ------------------------------------------------------------ pixels */

/* The i-th packed sample of a row of `depth`-bit samples (depth 1, 2, 4). */
static inline unsigned packed_sample(const uint8_t *row, int depth, size_t i)
{
    size_t bit = i * (size_t)depth;
    unsigned shift = 8u - (unsigned)depth - (unsigned)(bit & 7);
    return (row[bit >> 3] >> shift) & ((1u << depth) - 1u);
}

static void gray_row(const png_job *job, const uint8_t *raw, uint8_t *rgb)
{
    size_t w = job->w;
    for (size_t x = 0; x < w; x++) {
        unsigned v;
        switch (job->depth) {
        case 1: v = packed_sample(raw, 1, x) * 255u; break;
        case 2: v = packed_sample(raw, 2, x) * 85u; break;
        case 4: v = packed_sample(raw, 4, x) * 17u; break;
        case 8: v = raw[x]; break;
        default: /* 16: Pillow's I;16 -> RGB clips to 255 */
            v = raw[2 * x] ? 255u : raw[2 * x + 1];
            break;
        }
        rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = (uint8_t)v;
    }
}

static void palette_row(const png_job *job, const uint8_t *raw, uint8_t *rgb)
{
    size_t w = job->w;
    for (size_t x = 0; x < w; x++) {
        unsigned i = job->depth == 8 ? raw[x] : packed_sample(raw, job->depth, x);
        memcpy(rgb + 3 * x, job->pal[i], 3);
    }
}

/* Rows of 8- or 16-bit samples, `nch` per pixel: the high (first) byte of
 * the first `ncolour` samples (3 colours, or 1 gray replicated). */
static void direct_row(const png_job *job, const uint8_t *raw, uint8_t *rgb, int nch,
                       int ncolour)
{
    size_t w = job->w, bps = (size_t)job->depth / 8, step = (size_t)nch * bps;
    if (nch == 3 && bps == 1) {
        memcpy(rgb, raw, 3 * w);
        return;
    }
    for (size_t x = 0; x < w; x++) {
        const uint8_t *p = raw + x * step;
        if (ncolour == 1) {
            rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = p[0];
        } else {
            rgb[3 * x] = p[0];
            rgb[3 * x + 1] = p[bps];
            rgb[3 * x + 2] = p[2 * bps];
        }
    }
}

static void convert_row(const png_job *job, const uint8_t *raw, uint8_t *rgb)
{
    switch (job->ctype) {
    case PNG_COLOR_TYPE_GRAY: gray_row(job, raw, rgb); break;
    case PNG_COLOR_TYPE_PALETTE: palette_row(job, raw, rgb); break;
    case PNG_COLOR_TYPE_RGB: direct_row(job, raw, rgb, 3, 3); break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: direct_row(job, raw, rgb, 2, 1); break;
    default: direct_row(job, raw, rgb, 4, 3); break; /* RGB_ALPHA */
    }
}

static int channels_of(int ctype)
{
    switch (ctype) {
    case PNG_COLOR_TYPE_GRAY:
    case PNG_COLOR_TYPE_PALETTE: return 1;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    default: return 4;
    }
}

/* Interlaced: every raw row -> RGB, once all passes are in. */
static void convert_all_rows(png_job *job)
{
    size_t w3 = (size_t)job->w * 3;
    for (png_uint_32 y = 0; y < job->h; y++)
        convert_row(job, job->raw + y * job->rowbytes, job->im.pix + y * w3);
}

/* The data ended after the last row was in (JOB_TAIL_MISSING): convert
 * what the read loop had no chance to. Not interlaced: the last row, which
 * is in the one-row buffer. Interlaced: all rows. */
static void job_finish_early(png_job *job)
{
    if (job->interlace == PNG_INTERLACE_NONE)
        convert_row(job, job->raw, job->im.pix + (size_t)(job->h - 1) * job->w * 3);
    else
        convert_all_rows(job);
}

/* Rows of image data libpng decompresses: h, or for Adam7 the rows of
 * each pass that has any columns. */
static size_t data_rows(const png_job *job)
{
    if (job->interlace == PNG_INTERLACE_NONE) return job->h;
    size_t n = 0;
    for (int p = 0; p < 7; p++)
        if (PNG_PASS_COLS(job->w, p) > 0) n += PNG_PASS_ROWS(job->h, p);
    return n;
}

static void job_read_pixels(png_job *job)
{
    int passes = png_set_interlace_handling(job->png);
    png_set_read_user_transform_fn(job->png, on_row_data);
    png_read_update_info(job->png, job->info);
    job->rowbytes = png_get_rowbytes(job->png, job->info);
    /* libpng validated IHDR; the row it hands back must be the raw one */
    size_t want = ((size_t)job->w * channels_of(job->ctype) * job->depth + 7) / 8;
    if (job->rowbytes != want) job_fail(job, "unexpected PNG row size");
    if (img_alloc(&job->im, (int)job->w, (int)job->h)) job_fail(job, err_msg());

    size_t w3 = (size_t)job->w * 3;
    job->rows_total = data_rows(job);
    if (passes <= 1) {
        job->raw = malloc(job->rowbytes);
        if (!job->raw) job_fail(job, "out of memory for a PNG row");
        for (png_uint_32 y = 0; y < job->h; y++) {
            png_read_row(job->png, job->raw, NULL);
            convert_row(job, job->raw, job->im.pix + y * w3);
        }
        return;
    }
    /* Adam7: each pass fills in part of every row, so all raw rows are kept
     * until the last pass  [h, rowbytes]. */
    job->raw = malloc(job->rowbytes * job->h);
    if (!job->raw) job_fail(job, "out of memory for an interlaced PNG");
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < job->h; y++)
            png_read_row(job->png, job->raw + y * job->rowbytes, NULL);
    convert_all_rows(job);
}

/* ------------------------------------------------------------ driver */

/* Run the decode (pixels or header only); 0 or -1 with job->reason. */
static int job_run(png_job *job, int header_only)
{
    switch (setjmp(job->escape)) {
    case 0: break;
    case JOB_TAIL_MISSING: job_finish_early(job); return 0;
    default: return -1;
    }
    job_start(job);
    job_read_header(job);
    if (!header_only) job_read_pixels(job);
    return 0;
}

static void job_end(png_job *job)
{
    if (job->png) png_destroy_read_struct(&job->png, job->info ? &job->info : NULL, NULL);
    job->png = NULL;
    job->info = NULL;
    free(job->raw);
    job->raw = NULL;
}

static int check_signature(const uint8_t *buf, size_t len, const char *name)
{
    if (len == 0) return ERR("%s: empty file, not a PNG", name);
    if (len < 8 || png_sig_cmp(buf, 0, 8) != 0)
        return ERR("%s: not a PNG file (no PNG signature)", name);
    return 0;
}

static png_job *job_new(const uint8_t *buf, size_t len, int bytewise)
{
    png_job *job = xcalloc(1, sizeof *job);
    job->buf = buf;
    job->len = len;
    job->bytewise = bytewise;
    return job;
}

/* Decode once; the job holds the pixels or the reason. */
static png_job *decode_job(const uint8_t *buf, size_t len, int bytewise, int *rc)
{
    png_job *job = job_new(buf, len, bytewise);
    *rc = job_run(job, 0);
    job_end(job);
    if (*rc) img_free(&job->im);
    return job;
}

int img_decode_png(const uint8_t *buf, size_t len, const char *name, img_rgb8 *out)
{
    *out = (img_rgb8){0, 0, NULL};
    if (!name) name = "(memory)";
    if (check_signature(buf, len, name)) return -1;

    int rc;
    png_job *job = decode_job(buf, len, 0, &rc);
    if (rc && job->truncated && job->rows_total > 0) {
        /* The data ran out in the image data: try again bytewise, so that
         * if every row is there, the image is decoded (see the top). */
        free(job);
        job = decode_job(buf, len, 1, &rc);
    }
    if (rc) {
        ERR("%s: %s", name, job->reason);
    } else {
        *out = job->im;
    }
    free(job);
    return rc;
}

int img_png_size(const uint8_t *buf, size_t len, const char *name, int *w, int *h)
{
    *w = *h = 0;
    if (!name) name = "(memory)";
    if (check_signature(buf, len, name)) return -1;

    png_job *job = job_new(buf, len, 0);
    int rc = job_run(job, 1);
    if (rc == 0) {
        *w = (int)job->w;
        *h = (int)job->h;
    }
    job_end(job);
    if (rc) ERR("%s: %s", name, job->reason);
    free(job);
    return rc;
}
