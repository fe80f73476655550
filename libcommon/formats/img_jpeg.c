/* img_jpeg.c — JPEG decoding through libjpeg-turbo's classic API, set up
 * the way Pillow 12 decodes (so the pixels are Pillow's):
 *   ISLOW integer IDCT, fancy (triangular) chroma upsampling, output RGB;
 *   one-component (grayscale) files are decoded as gray and replicated to
 *   RGB, as Image.convert("RGB") does.
 *
 * libjpeg reports fatal errors through error_exit, which by default calls
 * exit(); ours longjmps back to the decoder, which frees everything and
 * records an error naming the file. Warnings go through emit_message: the
 * "premature end of JPEG file" warning (libjpeg then pads with a fake EOI)
 * becomes an error while pixels are still being read, because Pillow refuses
 * truncated images; other warnings ("corrupt JPEG data: N extraneous bytes")
 * are tolerated, as Pillow tolerates them.
 */
#include "image.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "err.h"
#include "fs.h"

/* A crafted progressive file can hold thousands of tiny scans, each costing
 * a pass over the whole coefficient buffer; real ones have about ten.
 * libjpeg-turbo's own fuzzers and tools stop at 500. */
#define JPEG_MAX_SCANS 500

/* Our error manager: libjpeg's, a way back, and the reason. */
typedef struct {
    struct jpeg_error_mgr mgr; /* first member: libjpeg passes its address */
    jmp_buf escape;
    int eof_is_fatal;          /* pixels still to come: truncation is an error */
    char reason[JMSG_LENGTH_MAX + 64];
} jpeg_failure;

/* One decode: everything that must survive a longjmp lives here, outside
 * the frame that calls setjmp, so no local needs to be volatile. */
typedef struct {
    const uint8_t *buf;
    size_t len;
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    struct jpeg_progress_mgr progress;
    int created;               /* jpeg_create_decompress done */
    img_rgb8 im;               /* the pixels, freed on failure  [h, w, 3] */
} jpeg_job;

static void on_fatal_error(j_common_ptr cinfo)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    f->mgr.format_message(cinfo, msg);
    snprintf(f->reason, sizeof f->reason, "corrupt JPEG data: %s", msg);
    longjmp(f->escape, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    if (level >= 0) return; /* trace output */
    if (f->mgr.msg_code == JWRN_JPEG_EOF && f->eof_is_fatal) {
        snprintf(f->reason, sizeof f->reason, "truncated JPEG file (premature end of data)");
        longjmp(f->escape, 1);
    }
    f->mgr.num_warnings++; /* recoverable corruption: decode on, like Pillow */
}

static void on_output(j_common_ptr cinfo)
{
    (void)cinfo; /* never print to stderr from a library */
}

/* Called by libjpeg as it works: refuse runaway progressive files. */
static void on_progress(j_common_ptr cinfo)
{
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_failure *f = (jpeg_failure *)cinfo->err;
        snprintf(f->reason, sizeof f->reason, "corrupt JPEG data: more than %d scans",
                 JPEG_MAX_SCANS);
        longjmp(f->escape, 1);
    }
}

/* Fail from inside the setjmp region with our own reason. */
static _Noreturn void job_fail(jpeg_job *job, const char *reason)
{
    snprintf(job->fail.reason, sizeof job->fail.reason, "%s", reason);
    longjmp(job->fail.escape, 1);
}

static void job_start(jpeg_job *job)
{
    job->cinfo.err = jpeg_std_error(&job->fail.mgr);
    job->fail.mgr.error_exit = on_fatal_error;
    job->fail.mgr.emit_message = on_message;
    job->fail.mgr.output_message = on_output;
    job->fail.eof_is_fatal = 1;
    jpeg_create_decompress(&job->cinfo);
    job->created = 1;
    job->progress.progress_monitor = on_progress;
    job->cinfo.progress = &job->progress;
    jpeg_mem_src(&job->cinfo, (const unsigned char *)job->buf, (unsigned long)job->len);
}

/* Read the header, choose the output colour space, refuse what we cannot
 * or should not decode. */
static void job_read_header(jpeg_job *job)
{
    struct jpeg_decompress_struct *ci = &job->cinfo;
    jpeg_read_header(ci, TRUE);
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE:
        ci->out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        ci->out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
        job_fail(job, "CMYK JPEG is not supported");
    case JCS_YCCK:
        job_fail(job, "CMYK JPEG is not supported (YCCK-encoded)");
    default: {
        char why[96];
        snprintf(why, sizeof why, "JPEG with %d colour components is not supported",
                 ci->num_components);
        job_fail(job, why);
    }
    }
    if ((long long)ci->image_width * ci->image_height > IMG_MAX_PIXELS) {
        char why[160];
        snprintf(why, sizeof why, "image of %ux%u pixels exceeds the limit of %lld "
                 "(decompression bomb?)", ci->image_width, ci->image_height, IMG_MAX_PIXELS);
        job_fail(job, why);
    }
    ci->dct_method = JDCT_ISLOW;
    ci->do_fancy_upsampling = TRUE;
}

/* Gray row of w samples at the start of rgb [w, 3] -> RGB, in place
 * (backwards, so no sample is overwritten before it is read). */
static void gray_to_rgb_row(uint8_t *rgb, int w)
{
    for (int x = w - 1; x >= 0; x--) {
        uint8_t v = rgb[x];
        rgb[x * 3 + 0] = rgb[x * 3 + 1] = rgb[x * 3 + 2] = v;
    }
}

static void job_read_pixels(jpeg_job *job)
{
    struct jpeg_decompress_struct *ci = &job->cinfo;
    jpeg_start_decompress(ci);
    int w = (int)ci->output_width, h = (int)ci->output_height;
    int gray = ci->output_components == 1;
    if (ci->output_components != (gray ? 1 : 3)) job_fail(job, "unexpected output components");
    if (img_alloc(&job->im, w, h)) job_fail(job, err_msg());

    while (ci->output_scanline < ci->output_height) {
        JSAMPROW row = job->im.pix + (size_t)ci->output_scanline * w * 3;
        if (jpeg_read_scanlines(ci, &row, 1) != 1) job_fail(job, "decoder stalled");
        if (gray) gray_to_rgb_row(row, w);
    }
    /* All pixels are in: a missing EOI no longer matters (nor to Pillow). */
    job->fail.eof_is_fatal = 0;
    jpeg_finish_decompress(ci);
}

/* Run the decode (pixels or header only); 0 or -1 with job->fail.reason. */
static int job_run(jpeg_job *job, int header_only)
{
    if (setjmp(job->fail.escape)) return -1;
    job_start(job);
    job_read_header(job);
    if (!header_only) job_read_pixels(job);
    return 0;
}

static void job_end(jpeg_job *job)
{
    if (job->created) jpeg_destroy_decompress(&job->cinfo);
    job->created = 0;
}

/* Checks that give a clearer message than libjpeg would. */
static int check_signature(const uint8_t *buf, size_t len, const char *name)
{
    if (len == 0) return ERR("%s: empty file, not a JPEG", name);
    if (len < 2) return ERR("%s: not a JPEG file (only %zu byte)", name, len);
    if (buf[0] != 0xFF || buf[1] != 0xD8)
        return ERR("%s: not a JPEG file (starts with 0x%02x 0x%02x)", name, buf[0], buf[1]);
    return 0;
}

static jpeg_job *job_new(const uint8_t *buf, size_t len)
{
    jpeg_job *job = xcalloc(1, sizeof *job);
    job->buf = buf;
    job->len = len;
    return job;
}

int img_decode_jpeg(const uint8_t *buf, size_t len, const char *name, img_rgb8 *out)
{
    *out = (img_rgb8){0, 0, NULL};
    if (!name) name = "(memory)";
    if (check_signature(buf, len, name)) return -1;

    jpeg_job *job = job_new(buf, len);
    int rc = job_run(job, 0);
    job_end(job);
    if (rc) {
        img_free(&job->im);
        ERR("%s: %s", name, job->fail.reason);
    } else {
        *out = job->im;
    }
    free(job);
    return rc;
}

int img_jpeg_size(const uint8_t *buf, size_t len, const char *name, int *w, int *h)
{
    *w = *h = 0;
    if (!name) name = "(memory)";
    if (check_signature(buf, len, name)) return -1;

    jpeg_job *job = job_new(buf, len);
    int rc = job_run(job, 1);
    if (rc == 0) {
        *w = (int)job->cinfo.image_width;
        *h = (int)job->cinfo.image_height;
    }
    job_end(job);
    if (rc) ERR("%s: %s", name, job->fail.reason);
    free(job);
    return rc;
}

int img_load_jpeg(const char *path, img_rgb8 *out)
{
    *out = (img_rgb8){0, 0, NULL};
    char *buf;
    size_t len;
    if (fs_read_all(path, &buf, &len)) return -1;
    int rc = img_decode_jpeg((const uint8_t *)buf, len, path, out);
    free(buf);
    return rc;
}
