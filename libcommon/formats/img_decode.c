/* img_decode.c — formats layer: decode an image whatever its format, told
 * apart by the file signature, not the file name. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "image.h"

static bool img_is_jpeg(const uint8_t *buf, size_t len)
{
    return len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF;
}

static bool img_is_png(const uint8_t *buf, size_t len)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    return len >= 8 && memcmp(buf, sig, 8) == 0;
}

static int img_unknown(size_t len, const char *name)
{
    if (len == 0) return ERR("%s: empty file, not an image", name);
    return ERR("%s: not a JPEG or PNG image (unknown signature)", name);
}

int img_decode(const uint8_t *buf, size_t len, const char *name, img_rgb8 *out)
{
    *out = (img_rgb8){0, 0, NULL};
    if (!name) name = "(memory)";
    if (img_is_jpeg(buf, len)) return img_decode_jpeg(buf, len, name, out);
    if (img_is_png(buf, len)) return img_decode_png(buf, len, name, out);
    return img_unknown(len, name);
}

int img_size(const uint8_t *buf, size_t len, const char *name, int *w, int *h)
{
    *w = *h = 0;
    if (!name) name = "(memory)";
    if (img_is_jpeg(buf, len)) return img_jpeg_size(buf, len, name, w, h);
    if (img_is_png(buf, len)) return img_png_size(buf, len, name, w, h);
    return img_unknown(len, name);
}

int img_load(const char *path, img_rgb8 *out)
{
    *out = (img_rgb8){0, 0, NULL};
    char *buf;
    size_t len;
    if (fs_read_all(path, &buf, &len)) return -1;
    int rc = img_decode((const uint8_t *)buf, len, path, out);
    free(buf);
    return rc;
}
