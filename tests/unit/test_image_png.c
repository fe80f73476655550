/* test_image_png.c — PNG decoding: every colour type and bit depth, palette
 * with tRNS, interlaced, ancillary chunks, and bad input.
 *
 * Each image is written here with libpng's encoder from a known array of
 * samples; the expected RGB is computed from those samples by Pillow's
 * Image.open(f).convert("RGB") rules, written out below independently of
 * the decoder:
 *   gray of depth d < 16: v * 255 / (2^d - 1)     gray 16-bit: min(v, 255)
 *   other 16-bit samples: v >> 8 (the high byte)  alpha: dropped
 *   palette: the PLTE colour, black past its end; tRNS ignored.
 * Bad input: truncated data (an error unless only what follows the last
 * row is missing, as with Pillow), bad CRCs (an error before the image
 * data; IDAT CRCs are not checked, as Pillow does not), corrupt zlib data,
 * an IHDR over the pixel limit, non-images: one-line errors naming the file.
 */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "image.h"
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <zlib.h>

static char *g_tmp; /* this test's scratch folder */

/* ------------------------------------------------------------ writing */

/* libpng's write callback: append to the strbuf given as io pointer. */
static void mem_write(png_structp png, png_bytep data, size_t n)
{
    strbuf_put(png_get_io_ptr(png), data, n);
}

static void mem_flush(png_structp png)
{
    (void)png;
}

/* What to write: samples[(y * w + x) * channels + c], each 0 .. 2^depth-1. */
typedef struct {
    int w, h, ctype, depth, interlace;
    const unsigned *samples;
    const png_color *palette; /* PLTE entries (palette images) */
    int n_palette;
    const uint8_t *trns;      /* tRNS alphas for palette images, or NULL */
    int n_trns;
    int gamma;                /* add gAMA, cHRM and sBIT chunks */
} png_spec;

static int channels_of(int ctype)
{
    return ctype == PNG_COLOR_TYPE_RGB ? 3 : ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4
         : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
}

/* One row in PNG's packed form: sub-byte samples from the high bits down,
 * 16-bit samples big-endian. */
static void pack_row(const png_spec *s, int y, uint8_t *row, size_t rowbytes)
{
    int nch = channels_of(s->ctype);
    memset(row, 0, rowbytes);
    for (int i = 0; i < s->w * nch; i++) {
        unsigned v = s->samples[(size_t)y * s->w * nch + i];
        if (s->depth == 16) {
            row[2 * i] = (uint8_t)(v >> 8);
            row[2 * i + 1] = (uint8_t)(v & 0xFF);
        } else if (s->depth == 8) {
            row[i] = (uint8_t)v;
        } else {
            int per_byte = 8 / s->depth;
            int shift = 8 - s->depth * (i % per_byte + 1);
            row[i / per_byte] |= (uint8_t)(v << shift);
        }
    }
}

static uint8_t *write_png(const png_spec *s, size_t *len)
{
    strbuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!png || !info || setjmp(png_jmpbuf(png))) DIE("libpng could not write the test image");
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_check_for_invalid_index(png, -1); /* indices past PLTE are written on purpose */
    png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->depth, s->ctype,
                 s->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->n_palette);
    if (s->trns) png_set_tRNS(png, info, s->trns, s->n_trns, NULL);
    if (s->gamma) {
        png_set_gAMA_fixed(png, info, 100000); /* gamma 1.0: would brighten if applied */
        png_set_cHRM(png, info, 0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06);
        png_color_8 sig = {4, 4, 4, 4, 4};
        png_set_sBIT(png, info, &sig);
    }
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    uint8_t *rows = calloc((size_t)s->h, rowbytes);
    png_bytep *ptrs = malloc(sizeof *ptrs * (size_t)s->h);
    for (int y = 0; y < s->h; y++) {
        ptrs[y] = rows + (size_t)y * rowbytes;
        pack_row(s, y, ptrs[y], rowbytes);
    }
    png_write_image(png, ptrs); /* does the Adam7 passes itself */
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(ptrs);
    free(rows);
    *len = m.len;
    return (uint8_t *)m.s;
}

/* ------------------------------------------------------------ expectations */

/* Deterministic samples in 0 .. 2^depth-1; for 16-bit gray every other one
 * is below 256 (the values Pillow keeps) and the rest above (clipped). */
static unsigned *make_samples(int w, int h, int nch, int depth, unsigned seed, int gray16)
{
    size_t n = (size_t)w * h * nch;
    unsigned *v = malloc(sizeof *v * n);
    unsigned max = (1u << depth) - 1u;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 8) & 0xFFFF;
        v[i] = gray16 ? (i % 2 ? 256 + r % 65280 : r % 256) : r & max;
    }
    /* make sure the extremes occur */
    v[0] = 0;
    if (n > 1) v[n - 1] = gray16 ? 255 : max;
    return v;
}

/* Expected RGB [h, w, 3] by the rules in the header comment. */
static uint8_t *expected_rgb(const png_spec *s)
{
    int nch = channels_of(s->ctype);
    size_t npix = (size_t)s->w * s->h;
    uint8_t *out = malloc(npix * 3);
    for (size_t i = 0; i < npix; i++) {
        const unsigned *p = s->samples + i * nch;
        unsigned rgb[3];
        if (s->ctype == PNG_COLOR_TYPE_PALETTE) {
            unsigned k = p[0];
            if ((int)k < s->n_palette) {
                rgb[0] = s->palette[k].red, rgb[1] = s->palette[k].green, rgb[2] = s->palette[k].blue;
            } else {
                rgb[0] = rgb[1] = rgb[2] = 0;
            }
        } else if (nch <= 2) { /* gray, gray + alpha */
            unsigned g;
            if (s->depth == 16)
                g = s->ctype == PNG_COLOR_TYPE_GRAY ? (p[0] > 255 ? 255 : p[0]) : p[0] >> 8;
            else
                g = p[0] * 255 / ((1u << s->depth) - 1u);
            rgb[0] = rgb[1] = rgb[2] = g;
        } else {
            for (int c = 0; c < 3; c++) rgb[c] = s->depth == 16 ? p[c] >> 8 : p[c];
        }
        for (int c = 0; c < 3; c++) out[i * 3 + c] = (uint8_t)rgb[c];
    }
    return out;
}

/* Write `s`, decode it with img_decode, compare with the expectation. */
static void check_decodes(const char *what, const png_spec *s)
{
    size_t len;
    uint8_t *png = write_png(s, &len);
    uint8_t *want = expected_rgb(s);
    img_rgb8 im;
    int rc = img_decode(png, len, what, &im);
    CHECK_MSG(rc == 0, "%s: decode failed: %s", what, err_msg());
    if (rc == 0) {
        CHECK_MSG(im.w == s->w && im.h == s->h, "%s: size %dx%d, want %dx%d", what, im.w, im.h,
                  s->w, s->h);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < (size_t)s->w * s->h * 3; i++)
            if (im.pix[i] != want[i] && bad++ == 0) first = i;
        CHECK_MSG(bad == 0, "%s: %zu samples differ, first at pixel %zu channel %zu: %u vs %u",
                  what, bad, first / 3, first % 3, bad ? im.pix[first] : 0,
                  bad ? want[first] : 0);
        int w, h;
        CHECK_OK(img_size(png, len, what, &w, &h));
        CHECK(w == s->w && h == s->h);
    }
    img_free(&im);
    free(want);
    free(png);
}

/* ------------------------------------------------------------ good input */

static const png_color g_palette[16] = {
    {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}, {200, 100, 50}, {1, 2, 3},
    {250, 251, 252}, {0, 0, 0}, {255, 255, 255}, {128, 64, 32}, {77, 66, 55},
    {9, 99, 199}, {33, 133, 233}, {17, 34, 51}, {60, 70, 80}, {123, 45, 67}};

static void one_case(int ctype, int depth, int interlace, int w, int h, unsigned seed)
{
    int nch = channels_of(ctype);
    int gray16 = ctype == PNG_COLOR_TYPE_GRAY && depth == 16;
    unsigned *samples = make_samples(w, h, nch, depth, seed, gray16);
    png_spec s = {w, h, ctype, depth, interlace, samples, NULL, 0, NULL, 0, 0};
    png_color pal[256];
    uint8_t trns[256];
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        /* a full palette for the depth, made from g_palette and a ramp */
        s.n_palette = 1 << depth;
        for (int i = 0; i < s.n_palette; i++)
            pal[i] = i < 16 ? g_palette[i]
                            : (png_color){(uint8_t)i, (uint8_t)(255 - i), (uint8_t)(i * 7)};
        s.palette = pal;
        /* tRNS on a few entries (entry 0 fully transparent): must not matter */
        s.n_trns = s.n_palette < 4 ? s.n_palette : 4;
        for (int i = 0; i < s.n_trns; i++) trns[i] = (uint8_t)(i * 60);
        s.trns = trns;
    }
    char what[96];
    snprintf(what, sizeof what, "type%d_depth%d%s_%dx%d.png", ctype, depth,
             interlace ? "_adam7" : "", w, h);
    check_decodes(what, &s);
    free(samples);
}

static void test_all_types_and_depths(void)
{
    static const struct { int ctype, depth; } kinds[] = {
        {PNG_COLOR_TYPE_GRAY, 1}, {PNG_COLOR_TYPE_GRAY, 2}, {PNG_COLOR_TYPE_GRAY, 4},
        {PNG_COLOR_TYPE_GRAY, 8}, {PNG_COLOR_TYPE_GRAY, 16},
        {PNG_COLOR_TYPE_RGB, 8}, {PNG_COLOR_TYPE_RGB, 16},
        {PNG_COLOR_TYPE_PALETTE, 1}, {PNG_COLOR_TYPE_PALETTE, 2},
        {PNG_COLOR_TYPE_PALETTE, 4}, {PNG_COLOR_TYPE_PALETTE, 8},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 8}, {PNG_COLOR_TYPE_GRAY_ALPHA, 16},
        {PNG_COLOR_TYPE_RGB_ALPHA, 8}, {PNG_COLOR_TYPE_RGB_ALPHA, 16},
    };
    /* odd sizes: rows that end mid-byte; 1x1 and thin images leave some
     * Adam7 passes empty */
    static const int sizes[][2] = {{13, 7}, {1, 1}, {3, 9}, {37, 2}, {64, 33}};
    unsigned seed = 1;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
            for (int il = 0; il <= 1; il++)
                one_case(kinds[k].ctype, kinds[k].depth,
                         il ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                         sizes[z][0], sizes[z][1], seed++);
}

/* A hand-checked 2x2 of each tricky rule, values written out literally. */
static void test_literal_values(void)
{
    img_rgb8 im;
    size_t len;
    uint8_t *png;

    /* 16-bit gray: 0x0080 stays 128, 0x0100 and 0xFFFF clip to 255, 0x00FF is 255 */
    const unsigned g16[] = {0x0080, 0x0100, 0xFFFF, 0x00FF};
    png_spec s = {2, 2, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, g16, NULL, 0, NULL, 0, 0};
    png = write_png(&s, &len);
    CHECK_OK(img_decode(png, len, "g16.png", &im));
    if (im.pix) {
        CHECK(im.pix[0] == 128 && im.pix[1] == 128 && im.pix[2] == 128);
        CHECK(im.pix[3] == 255 && im.pix[6] == 255 && im.pix[9] == 255 && im.pix[11] == 255);
    }
    img_free(&im);
    free(png);

    /* 16-bit RGB: high bytes 0x12, 0xAB, 0x00 */
    const unsigned rgb16[] = {0x12FF, 0xAB01, 0x00FF};
    png_spec r = {1, 1, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, rgb16, NULL, 0, NULL, 0, 0};
    png = write_png(&r, &len);
    CHECK_OK(img_decode(png, len, "rgb16.png", &im));
    if (im.pix) CHECK(im.pix[0] == 0x12 && im.pix[1] == 0xAB && im.pix[2] == 0x00);
    img_free(&im);
    free(png);

    /* 2-bit gray 0..3 -> 0, 85, 170, 255 */
    const unsigned g2[] = {0, 1, 2, 3};
    png_spec q = {4, 1, PNG_COLOR_TYPE_GRAY, 2, PNG_INTERLACE_NONE, g2, NULL, 0, NULL, 0, 0};
    png = write_png(&q, &len);
    CHECK_OK(img_decode(png, len, "g2.png", &im));
    if (im.pix) CHECK(im.pix[0] == 0 && im.pix[3] == 85 && im.pix[6] == 170 && im.pix[9] == 255);
    img_free(&im);
    free(png);

    /* RGBA with alpha 0: colour kept, not composited onto black or white */
    const unsigned rgba[] = {200, 100, 50, 0};
    png_spec a = {1, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE, rgba, NULL, 0, NULL, 0, 0};
    png = write_png(&a, &len);
    CHECK_OK(img_decode(png, len, "rgba.png", &im));
    if (im.pix) CHECK(im.pix[0] == 200 && im.pix[1] == 100 && im.pix[2] == 50);
    img_free(&im);
    free(png);
}

/* An 8-bit palette of 5 entries with indices up to 255: Pillow's palette
 * past the PLTE entries is black (its new palettes start zeroed). */
static void test_palette_index_past_end(void)
{
    unsigned *samples = make_samples(16, 16, 1, 8, 77, 0);
    for (int i = 0; i < 5; i++) samples[i] = (unsigned)i; /* and the real entries */
    png_spec s = {16, 16, PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE, samples,
                  g_palette, 5, NULL, 0, 0};
    check_decodes("short_palette.png", &s);
    free(samples);
}

/* gAMA (1.0), cHRM and sBIT present: the samples come out unchanged. */
static void test_colour_chunks_ignored(void)
{
    unsigned *samples = make_samples(20, 10, 3, 8, 5, 0);
    png_spec s = {20, 10, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, samples, NULL, 0, NULL, 0, 1};
    check_decodes("gamma.png", &s);
    unsigned *gray = make_samples(20, 10, 1, 8, 6, 0);
    png_spec g = {20, 10, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_ADAM7, gray, NULL, 0, NULL, 0, 1};
    check_decodes("gamma_gray.png", &g);
    free(gray);
    free(samples);
}

/* ------------------------------------------------------------ bad input */

static char *write_tmp(const char *name, const void *buf, size_t len)
{
    char *path = fs_join(g_tmp, name);
    FILE *f = fopen(path, "wb");
    if (!f) DIE("cannot write %s", path);
    if (len && fwrite(buf, 1, len, f) != len) DIE("cannot write %s", path);
    if (fclose(f)) DIE("cannot write %s", path);
    return path;
}

/* Loading `path` must fail with one line naming it and containing `needle`. */
static void check_load_fails(const char *path, const char *needle)
{
    img_rgb8 im = {1, 1, (uint8_t *)"x"};
    CHECK_FAILS_WITH(img_load(path, &im), needle);
    CHECK_MSG(strstr(err_msg(), path) != NULL, "error does not name %s: \"%s\"", path, err_msg());
    CHECK_MSG(strchr(err_msg(), '\n') == NULL, "error is not one line: \"%s\"", err_msg());
    CHECK(im.pix == NULL && im.w == 0 && im.h == 0);
}

/* A test image: 48x40 RGB with noisy samples (so IDAT is long). */
static uint8_t *sample_png(int interlace, size_t *len, png_spec *spec_out, unsigned **samples)
{
    *samples = make_samples(48, 40, 3, 8, 99, 0);
    png_spec s = {48, 40, PNG_COLOR_TYPE_RGB, 8, interlace, *samples, NULL, 0, NULL, 0, 0};
    *spec_out = s;
    return write_png(&s, len);
}

/* Offset of the first chunk of type `type` (its length field), or -1. */
static long find_chunk(const uint8_t *b, size_t len, const char *type)
{
    size_t pos = 8;
    while (pos + 8 <= len) {
        uint32_t n = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 |
                     (uint32_t)b[pos + 2] << 8 | b[pos + 3];
        if (memcmp(b + pos + 4, type, 4) == 0) return (long)pos;
        pos += 12 + (size_t)n;
    }
    return -1;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Recompute the CRC of the chunk at `pos` (after editing its data). */
static void fix_crc(uint8_t *b, long pos)
{
    uint32_t n = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 |
                 (uint32_t)b[pos + 2] << 8 | b[pos + 3];
    uLong crc = crc32(0L, b + pos + 4, 4 + n);
    put_be32(b + pos + 8 + n, (uint32_t)crc);
}

static void test_truncated(void)
{
    for (int il = 0; il <= 1; il++) {
        size_t len;
        png_spec s;
        unsigned *samples;
        uint8_t *png = sample_png(il ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, &len, &s, &samples);
        long idat = find_chunk(png, len, "IDAT");
        CHECK(idat > 0);
        /* in IHDR, right after IHDR, early in IDAT, half way, a few bytes
         * short of the end of the compressed data */
        size_t cuts[] = {20, (size_t)idat, (size_t)idat + 30, len / 2, len - 24};
        for (int i = 0; i < 5; i++) {
            char name[64];
            snprintf(name, sizeof name, "trunc%d_%zu.png", il, cuts[i]);
            char *path = write_tmp(name, png, cuts[i]);
            check_load_fails(path, "truncated PNG file");
            free(path);
        }
        /* Every pixel there, only the end missing: IEND (12 bytes), the
         * IDAT CRC (4), half the zlib Adler-32 (2). The image decodes, as
         * in Pillow, whose decoder stops at the last row. */
        uint8_t *want = expected_rgb(&s);
        size_t tails[] = {12, 16, 18};
        for (int i = 0; i < 3; i++) {
            img_rgb8 im;
            CHECK_OK(img_decode(png, len - tails[i], "tail-missing.png", &im));
            CHECK_MSG(im.pix && memcmp(im.pix, want, 48 * 40 * 3) == 0,
                      "interlace %d, %zu bytes cut: wrong pixels", il, tails[i]);
            img_free(&im);
        }
        free(want);
        free(samples);
        free(png);
    }
    /* the signature cut short is no PNG at all */
    const uint8_t sig5[] = {0x89, 'P', 'N', 'G', '\r'};
    char *path = write_tmp("sig5.png", sig5, sizeof sig5);
    check_load_fails(path, "not a JPEG or PNG image");
    free(path);
}

/* Spoil the stored CRC of the first `type` chunk. */
static void spoil_crc(uint8_t *b, size_t len, const char *type)
{
    long pos = find_chunk(b, len, type);
    CHECK(pos > 0);
    if (pos <= 0) return;
    uint32_t n = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 |
                 (uint32_t)b[pos + 2] << 8 | b[pos + 3];
    b[pos + 8 + n] ^= 0x01;
}

static void test_bad_crc(void)
{
    size_t len;
    png_spec s;
    unsigned *samples;
    uint8_t *png = sample_png(PNG_INTERLACE_NONE, &len, &s, &samples);
    uint8_t *bad = malloc(len);
    memcpy(bad, png, len);
    spoil_crc(bad, len, "IHDR");
    char *path = write_tmp("badcrc_IHDR.png", bad, len);
    check_load_fails(path, "IHDR: CRC error");
    free(path);

    /* IDAT CRCs are not checked (nor by Pillow): the pixels come out */
    memcpy(bad, png, len);
    spoil_crc(bad, len, "IDAT");
    img_rgb8 im;
    CHECK_OK(img_decode(bad, len, "badcrc_IDAT.png", &im));
    uint8_t *want = expected_rgb(&s);
    CHECK(im.pix && memcmp(im.pix, want, 48 * 40 * 3) == 0);
    img_free(&im);
    free(want);
    free(bad);

    /* an ancillary chunk (gAMA) with a bad CRC: refused too */
    unsigned *gs = make_samples(8, 8, 3, 8, 3, 0);
    png_spec g = {8, 8, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, gs, NULL, 0, NULL, 0, 1};
    size_t glen;
    uint8_t *gp = write_png(&g, &glen);
    long gama = find_chunk(gp, glen, "gAMA");
    CHECK(gama > 0);
    gp[gama + 9] ^= 0x40;
    path = write_tmp("badcrc_gAMA.png", gp, glen);
    check_load_fails(path, "gAMA: CRC error");
    free(path);
    free(gp);
    free(gs);
    free(samples);
    free(png);
}

/* IDAT whose zlib stream is garbage (CRC made valid): a libpng error. */
static void test_corrupt_idat(void)
{
    size_t len;
    png_spec s;
    unsigned *samples;
    uint8_t *png = sample_png(PNG_INTERLACE_NONE, &len, &s, &samples);
    long idat = find_chunk(png, len, "IDAT");
    CHECK(idat > 0);
    png[idat + 8] = 0x00; /* zlib header: not deflate */
    png[idat + 9] = 0xFF;
    fix_crc(png, idat);
    char *path = write_tmp("bad_zlib.png", png, len);
    check_load_fails(path, "corrupt PNG data");
    free(path);
    free(samples);
    free(png);
}

/* IHDR claiming 60000 x 60000 (valid CRC): refused from the header. */
static void test_huge_ihdr(void)
{
    size_t len;
    png_spec s;
    unsigned *samples;
    uint8_t *png = sample_png(PNG_INTERLACE_NONE, &len, &s, &samples);
    long ihdr = find_chunk(png, len, "IHDR");
    CHECK(ihdr == 8);
    put_be32(png + ihdr + 8, 60000);
    put_be32(png + ihdr + 12, 60000);
    fix_crc(png, ihdr);
    char *path = write_tmp("bomb.png", png, len);
    check_load_fails(path, "exceeds the limit");
    int w, h;
    CHECK_FAILS_WITH(img_png_size(png, len, "bomb.png", &w, &h), "bomb.png: image of 60000x60000");
    /* beyond what PNG allows (2^31 - 1): libpng's own check */
    put_be32(png + ihdr + 8, 0x80000000u);
    fix_crc(png, ihdr);
    img_rgb8 im;
    CHECK_FAILS_WITH(img_decode(png, len, "wide.png", &im), "wide.png: corrupt PNG data");
    CHECK(im.pix == NULL);
    free(path);
    free(samples);
    free(png);
}

static void test_not_an_image(void)
{
    char *path = write_tmp("text.png", "hello, this is text", 19);
    check_load_fails(path, "not a JPEG or PNG image");
    free(path);
    path = write_tmp("empty.png", "", 0);
    check_load_fails(path, "empty file");
    free(path);
    img_rgb8 im;
    CHECK_FAILS_WITH(img_decode_png((const uint8_t *)"GIF89a....", 10, "x.gif", &im),
                     "x.gif: not a PNG file");
    CHECK_FAILS_WITH(img_decode_png((const uint8_t *)"", 0, NULL, &im), "(memory): empty file");
    /* the signature and nothing else */
    const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    path = write_tmp("sig_only.png", sig, 8);
    check_load_fails(path, "truncated PNG file");
    free(path);
    path = fs_join(g_tmp, "no_such_image.png");
    check_load_fails(path, "cannot open");
    free(path);
}

/* A PNG and a JPEG through the same entry point; the PNG's pixels equal
 * the JPEG-independent expectation, and img_size reads both headers. */
static void test_dispatch(void)
{
    size_t len;
    png_spec s;
    unsigned *samples;
    uint8_t *png = sample_png(PNG_INTERLACE_NONE, &len, &s, &samples);
    char *path = write_tmp("scene.png", png, len);
    img_rgb8 im;
    CHECK_OK(img_load(path, &im));
    CHECK(im.w == 48 && im.h == 40);
    img_free(&im);
    free(path);
    char *jpg_path = bundled_golden_path("images/scene_56x56_444.jpg");
    char *jpg;
    size_t jlen;
    if (fs_read_all(jpg_path, &jpg, &jlen) == 0) {
        int w, h;
        CHECK_OK(img_size((const uint8_t *)jpg, jlen, jpg_path, &w, &h));
        CHECK(w == 56 && h == 56);
        free(jpg);
    }
    err_clear();
    free(jpg_path);
    free(samples);
    free(png);
}

int main(void)
{
    g_tmp = test_tmpdir("image-png");
    test_all_types_and_depths();
    test_literal_values();
    test_palette_index_past_end();
    test_colour_chunks_ignored();
    test_truncated();
    test_bad_crc();
    test_corrupt_idat();
    test_huge_ihdr();
    test_not_an_image();
    test_dispatch();
    free(g_tmp);
    return check_finish();
}
