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

int img_decode(const uint8_t *buf, size_t len, const char *name, img_rgb8 *out)
{
    *out = (img_rgb8){0, 0, NULL};
    if (img_is_jpeg(buf, len)) return img_decode_jpeg(buf, len, name, out);
    if (img_is_png(buf, len)) return ERR("%s: PNG images are not supported by this build", name);
    return ERR("%s: not a JPEG or PNG image (unknown signature)", name);
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
