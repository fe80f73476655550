/* test_jpeg.c — JPEG encoding for tests (libjpeg's compressor). */
#include "test_jpeg.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

uint8_t *test_jpeg_encode(const uint8_t *pix, int w, int h, int ncomp, const test_jpeg_opts *o,
                          size_t *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &mem, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = ncomp;
    c.in_color_space = o->in_cs;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, o->cs);
    jpeg_set_quality(&c, o->quality, TRUE);
    if (o->full_chroma)
        for (int i = 0; i < c.num_components; i++)
            c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    if (o->progressive) jpeg_simple_progression(&c);
    if (o->scans) {
        c.scan_info = o->scans;
        c.num_scans = o->n_scans;
    }
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)c.next_scanline * w * ncomp);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    uint8_t *out = xmalloc(size);
    memcpy(out, mem, size);
    free(mem);
    *len = size;
    return out;
}
