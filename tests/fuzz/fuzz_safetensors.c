/* fuzz_safetensors.c — libFuzzer target: any byte string given to the
 * safetensors reader must give a set or an error, never a crash, and every
 * tensor of an accepted set must be readable within its bounds. */
#include "err.h"
#include "safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Touch everything the reader hands out, so a bad bound shows up in ASan. */
static void walk(const st_set *set)
{
    for (size_t i = 0; i < st_count(set); i++) {
        const st_tensor *t = st_at(set, i);
        if (st_find(set, t->name) != t) abort();
        if (t->nbytes != (size_t)t->numel * st_dtype_size(t->dtype)) abort();
        volatile unsigned char sink = 0;
        const unsigned char *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sink ^= p[k];
        (void)sink;
        if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 ||
            t->dtype == ST_F64) {
            float *out = malloc((size_t)t->numel * sizeof *out + 1);
            if (!out || st_to_f32(t, out) != 0) abort();
            free(out);
        }
    }
    st_metadata(set, "format");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy: the fuzzer's buffer is exactly size bytes, so any read
     * past it is caught */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    st_set *set = NULL;
    if (st_open_mem(buf, size, "fuzz.safetensors", &set) == 0) {
        walk(set);
        st_close(set);
    } else if (err_msg()[0] == '\0' || strchr(err_msg(), '\n')) {
        abort(); /* every failure must leave a one-line message */
    }
    err_clear();
    free(buf);
    return 0;
}
