/* test_jpeg.h — JPEG files made in memory with libjpeg's compressor, for
 * tests and for the alternative reference folder (tests/golden_alt). */
#ifndef SIMA_TEST_JPEG_H
#define SIMA_TEST_JPEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* jpeglib.h needs FILE */

#include <jpeglib.h>

typedef struct {
    J_COLOR_SPACE in_cs;    /* colour space of the samples given */
    J_COLOR_SPACE cs;       /* colour space stored in the file */
    int quality;            /* 1..100 */
    bool progressive;       /* libjpeg's simple progression script */
    bool full_chroma;       /* 4:4:4 instead of libjpeg's default 4:2:0 */
    const jpeg_scan_info *scans; /* a scan script of n_scans scans, or NULL */
    int n_scans;
} test_jpeg_opts;

/* Encode [h, w, ncomp] samples (malloc'd result, *len bytes). */
uint8_t *test_jpeg_encode(const uint8_t *pix, int w, int h, int ncomp, const test_jpeg_opts *o,
                          size_t *len);

#endif
