/* hash.h — base layer: 64-bit FNV-1a, the one hash of file contents, run
 * settings and cache keys across sima (not cryptographic: it tells runs and
 * files apart, it does not defend against tampering). */
#ifndef SIMA_BASE_HASH_H
#define SIMA_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_INIT 0xcbf29ce484222325ULL

/* FNV-1a of n bytes, continuing from h (start: HASH_FNV_INIT). */
uint64_t hash_fnv1a(const void *data, size_t n, uint64_t h);

#endif
