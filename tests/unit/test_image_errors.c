/* test_image_errors.c — JPEG decoding of bad input: truncated, corrupt,
 * not a JPEG, empty, CMYK/YCCK, missing, absurdly large. Each must fail
 * with one line naming the file; none may crash. Also a few good inputs
 * made here with libjpeg's compressor (grayscale, RGB round trip). */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "image.h"
#include "test_jpeg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>

static char *g_tmp; /* this test's scratch folder */

/* ------------------------------------------------------------ helpers */

/* Encode [h, w, ncomp] samples as a JPEG in memory (malloc'd, *len). The
 * stream is stored in `cs`; libjpeg converts from `in_cs` to it. */
static uint8_t *encode_jpeg(const uint8_t *pix, int w, int h, int ncomp, J_COLOR_SPACE in_cs,
                            J_COLOR_SPACE cs, int quality, size_t *len)
{
    test_jpeg_opts o = {in_cs, cs, quality, false, false, NULL, 0};
    return test_jpeg_encode(pix, w, h, ncomp, &o, len);
}

/* A smooth test pattern [h, w, ncomp] (gradients, so JPEG keeps it close). */
static uint8_t *pattern(int w, int h, int ncomp)
{
    uint8_t *p = malloc((size_t)w * h * ncomp);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ncomp; c++)
                p[((size_t)y * w + x) * ncomp + c] = (uint8_t)(40 + (x * 3 + y * 2 + c * 20) % 210);
    return p;
}

static char *write_tmp(const char *name, const void *buf, size_t len)
{
    char *path = fs_join(g_tmp, name);
    FILE *f = fopen(path, "wb");
    if (!f) DIE("cannot write %s", path);
    if (len) fwrite(buf, 1, len, f);
    fclose(f);
    return path;
}

/* A JPEG of the bundled reference folder (these names are its files). */
static uint8_t *read_golden_jpeg(const char *file, size_t *len)
{
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", file);
    char *path = bundled_golden_path(rel), *buf = NULL;
    if (fs_read_all(path, &buf, len)) DIE("%s", err_msg());
    free(path);
    return (uint8_t *)buf;
}

/* Offset of the first marker 0xFF `code` (after SOI), or -1. */
static long find_marker(const uint8_t *b, size_t len, uint8_t code)
{
    for (size_t i = 2; i + 1 < len; i++)
        if (b[i] == 0xFF && b[i + 1] == code) return (long)i;
    return -1;
}

/* Loading `path` must fail with one line naming it and containing `needle`. */
static void check_load_fails(const char *path, const char *needle)
{
    img_rgb8 im = {1, 1, (uint8_t *)"x"};
    CHECK_FAILS_WITH(img_load_jpeg(path, &im), needle);
    CHECK_MSG(strstr(err_msg(), path) != NULL, "error does not name %s: \"%s\"", path, err_msg());
    CHECK_MSG(strchr(err_msg(), '\n') == NULL, "error is not one line: \"%s\"", err_msg());
    CHECK(im.pix == NULL && im.w == 0 && im.h == 0);
}

/* ------------------------------------------------------------ bad input */

static void test_truncated(void)
{
    size_t len;
    const char *files[] = {"scene_640x480.jpg", "progressive_57x80.jpg"};
    for (int f = 0; f < 2; f++) {
        uint8_t *jpg = read_golden_jpeg(files[f], &len);
        /* cut in the headers, early in the entropy data, half way, near the end */
        size_t cuts[] = {20, len / 8, len / 2, len - 40};
        for (int i = 0; i < 4; i++) {
            char name[64];
            snprintf(name, sizeof name, "trunc%d_%zu.jpg", f, cuts[i]);
            char *path = write_tmp(name, jpg, cuts[i]);
            check_load_fails(path, "truncated");
            free(path);
        }
        free(jpg);
    }
}

/* Only the final EOI marker missing. libjpeg's entropy decoder reads ahead,
 * so it usually meets the end of data while pixels are still owed, which is
 * then an error (as Pillow, whose decoder suspends there and finds no more
 * data); if every pixel was already read the image is accepted. Either way:
 * identical pixels or a "truncated" error naming the file, never a crash. */
static void test_missing_eoi_only(void)
{
    size_t len;
    uint8_t *jpg = read_golden_jpeg("scene_333x500.jpg", &len);
    img_rgb8 full, cut;
    CHECK_OK(img_decode_jpeg(jpg, len, "full", &full));
    err_clear();
    if (img_decode_jpeg(jpg, len - 2, "no-eoi.jpg", &cut) == 0)
        CHECK(full.pix && cut.pix && memcmp(full.pix, cut.pix, (size_t)full.w * full.h * 3) == 0);
    else
        CHECK_MSG(strstr(err_msg(), "no-eoi.jpg: truncated") != NULL, "got \"%s\"", err_msg());
    img_free(&full);
    img_free(&cut);
    free(jpg);
}

static void test_corrupt(void)
{
    size_t len;
    uint8_t *jpg = read_golden_jpeg("scene_56x56_444.jpg", &len);
    long sof = find_marker(jpg, len, 0xC0);
    if (!CHECK(sof > 0 && (size_t)sof + 9 < len)) {
        free(jpg);
        return;
    }

    /* SOF sample precision 7: a fatal libjpeg error */
    uint8_t *bad = malloc(len);
    memcpy(bad, jpg, len);
    bad[sof + 4] = 7;
    char *path = write_tmp("bad_precision.jpg", bad, len);
    check_load_fails(path, "corrupt JPEG data");
    free(path);

    /* a Huffman table with an impossible length */
    memcpy(bad, jpg, len);
    long dht = find_marker(bad, len, 0xC4);
    if (CHECK(dht > 0 && (size_t)dht + 4 < len)) {
        bad[dht + 2] = 0x00, bad[dht + 3] = 0x01;
        path = write_tmp("bad_dht.jpg", bad, len);
        check_load_fails(path, "corrupt JPEG data");
        free(path);
    }

    /* garbage after SOI: whatever happens, no crash and a clean result */
    memcpy(bad, jpg, len);
    for (size_t i = 2; i < len && i < 300; i++) bad[i] = (uint8_t)(i * 37 + 11);
    img_rgb8 im;
    int rc = img_decode_jpeg(bad, len, "garbage.jpg", &im);
    CHECK(rc != 0 ? im.pix == NULL && strstr(err_msg(), "garbage.jpg") != NULL
                  : im.pix != NULL);
    img_free(&im);
    free(bad);
    free(jpg);
}

static void test_not_jpeg(void)
{
    const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
    char *path = write_tmp("image.png", png, sizeof png);
    check_load_fails(path, "not a JPEG file");
    free(path);

    path = write_tmp("text.jpg", "hello", 5);
    check_load_fails(path, "not a JPEG file");
    free(path);

    const uint8_t soi_only[] = {0xFF, 0xD8};
    path = write_tmp("soi_only.jpg", soi_only, sizeof soi_only);
    check_load_fails(path, "truncated");
    free(path);

    path = write_tmp("one_byte.jpg", "\xFF", 1);
    check_load_fails(path, "not a JPEG file");
    free(path);
}

static void test_empty(void)
{
    char *path = write_tmp("empty.jpg", "", 0);
    check_load_fails(path, "empty file");
    free(path);
}

static void test_missing_file(void)
{
    char *path = fs_join(g_tmp, "no_such_image.jpg");
    check_load_fails(path, "cannot open");
    free(path);
}

static void test_cmyk(void)
{
    uint8_t *pix = pattern(16, 16, 4);
    size_t len;
    uint8_t *jpg = encode_jpeg(pix, 16, 16, 4, JCS_CMYK, JCS_CMYK, 90, &len);
    char *path = write_tmp("cmyk.jpg", jpg, len);
    check_load_fails(path, "CMYK JPEG is not supported");
    free(path);
    free(jpg);

    jpg = encode_jpeg(pix, 16, 16, 4, JCS_CMYK, JCS_YCCK, 90, &len);
    path = write_tmp("ycck.jpg", jpg, len);
    check_load_fails(path, "CMYK JPEG is not supported");
    int w, h;
    CHECK_FAILS_WITH(img_jpeg_size(jpg, len, "ycck.jpg", &w, &h), "ycck.jpg: CMYK");
    free(path);
    free(jpg);
    free(pix);
}

/* Patch the SOF of a small JPEG to claim 60000 x 60000 pixels. */
static void test_decompression_bomb(void)
{
    size_t len;
    uint8_t *jpg = read_golden_jpeg("scene_56x56_444.jpg", &len);
    long sof = find_marker(jpg, len, 0xC0);
    if (!CHECK(sof > 0 && (size_t)sof + 9 < len)) {
        free(jpg);
        return;
    }
    jpg[sof + 5] = 0xEA, jpg[sof + 6] = 0x60; /* height 60000 */
    jpg[sof + 7] = 0xEA, jpg[sof + 8] = 0x60; /* width 60000 */
    char *path = write_tmp("bomb.jpg", jpg, len);
    check_load_fails(path, "exceeds the limit");
    int w, h;
    CHECK_FAILS_WITH(img_jpeg_size(jpg, len, "bomb.jpg", &w, &h), "decompression bomb");
    free(path);
    free(jpg);
}

/* A valid progressive grayscale JPEG with 11 * (1 + 50) = 561 scans: DC and
 * 50 single-coefficient AC bands, each sent in 11 successive-approximation
 * steps (Al 10..0, the most libjpeg allows for 8-bit). Decoding it would be
 * legal but is refused (limit 500 scans). */
static void test_too_many_scans(void)
{
    enum { N_AC = 50, STEPS = 11, N_SCANS = STEPS * (1 + N_AC) };
    static jpeg_scan_info scans[N_SCANS];
    int n = 0;
    for (int band = 0; band <= N_AC; band++)
        for (int step = 0; step < STEPS; step++) {
            jpeg_scan_info *si = &scans[n++];
            si->comps_in_scan = 1;
            si->component_index[0] = 0;
            si->Ss = si->Se = band;
            si->Ah = step == 0 ? 0 : STEPS - step;
            si->Al = STEPS - 1 - step;
        }
    uint8_t *gray = pattern(16, 16, 1);
    test_jpeg_opts o = {JCS_GRAYSCALE, JCS_GRAYSCALE, 75, false, false, scans, N_SCANS};
    size_t size;
    uint8_t *mem = test_jpeg_encode(gray, 16, 16, 1, &o, &size);
    img_rgb8 im;
    CHECK_FAILS_WITH(img_decode_jpeg(mem, size, "scans.jpg", &im), "scans.jpg: corrupt JPEG data: more than 500 scans");
    free(mem);
    free(gray);
}

static void test_null_name(void)
{
    img_rgb8 im;
    CHECK_FAILS_WITH(img_decode_jpeg((const uint8_t *)"", 0, NULL, &im), "(memory)");
}

/* ------------------------------------------------------------ good input */

static void test_grayscale_becomes_rgb(void)
{
    uint8_t *gray = pattern(33, 17, 1);
    size_t len;
    uint8_t *jpg = encode_jpeg(gray, 33, 17, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, 95, &len);
    img_rgb8 im;
    CHECK_OK(img_decode_jpeg(jpg, len, "gray.jpg", &im));
    CHECK_EQ(im.w, 33);
    CHECK_EQ(im.h, 17);
    int replicated = 1, close = 1;
    for (int i = 0; im.pix && i < 33 * 17; i++) {
        const uint8_t *p = im.pix + i * 3;
        replicated &= p[0] == p[1] && p[1] == p[2];
        close &= abs(p[0] - gray[i]) <= 4;
    }
    CHECK(replicated);
    CHECK(close);
    int w, h;
    CHECK_OK(img_jpeg_size(jpg, len, "gray.jpg", &w, &h));
    CHECK(w == 33 && h == 17);
    img_free(&im);
    free(jpg);
    free(gray);
}

static void test_rgb_round_trip(void)
{
    uint8_t *rgb = pattern(40, 24, 3);
    size_t len;
    uint8_t *jpg = encode_jpeg(rgb, 40, 24, 3, JCS_RGB, JCS_YCbCr, 100, &len);
    img_rgb8 im;
    CHECK_OK(img_decode_jpeg(jpg, len, "rgb.jpg", &im));
    int worst = 0;
    for (int i = 0; im.pix && i < 40 * 24 * 3; i++)
        if (abs(im.pix[i] - rgb[i]) > worst) worst = abs(im.pix[i] - rgb[i]);
    CHECK_MSG(worst <= 8, "round trip differs by %d levels", worst);
    img_free(&im);
    free(jpg);
    free(rgb);
}

int main(void)
{
    g_tmp = test_tmpdir("image-errors");
    test_truncated();
    test_missing_eoi_only();
    test_corrupt();
    test_not_jpeg();
    test_empty();
    test_missing_file();
    test_cmyk();
    test_decompression_bomb();
    test_too_many_scans();
    test_null_name();
    test_grayscale_becomes_rgb();
    test_rgb_round_trip();
    free(g_tmp);
    return check_finish();
}
