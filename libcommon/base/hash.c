/* hash.c — base layer: 64-bit FNV-1a. */
#include "hash.h"

uint64_t hash_fnv1a(const void *data, size_t n, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
