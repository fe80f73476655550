/* cuda_fp16.h (CPU emulation) — backends layer, test support: IEEE half
 * precision as the GPU converts it (round to nearest even, subnormals kept,
 * overflow to infinity). */
#ifndef SIMA_CUEMU_CUDA_FP16_H
#define SIMA_CUEMU_CUDA_FP16_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint16_t x;
} __half;

static inline float __half2float(__half h)
{
    uint32_t sign = (uint32_t)(h.x >> 15) << 31, exp = (h.x >> 10) & 0x1f, man = h.x & 0x3ff;
    float f;
    if (exp == 0) {
        f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    uint32_t u = exp == 31 ? (sign | 0x7f800000u | (man << 13))
                           : (sign | ((exp + 112) << 23) | (man << 13));
    memcpy(&f, &u, 4);
    return f;
}

static inline __half __float2half(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    __half h;
    if (a > 0x7f800000u) { h.x = (uint16_t)(sign | 0x7e00u); return h; }   /* NaN */
    if (a >= 0x477ff000u) { h.x = (uint16_t)(sign | 0x7c00u); return h; }  /* >= 65520: inf */
    if (a < 0x38800000u) {                          /* below 2^-14: subnormal half */
        float v = fabsf(f) * 16777216.0f;           /* in units of 2^-24 */
        float r = nearbyintf(v);                    /* host rounding mode: to nearest even */
        h.x = (uint16_t)(sign | (uint16_t)r);
        return h;
    }
    uint32_t exp = (a >> 23) - 112, man = a & 0x7fffffu;
    uint32_t half = (exp << 10) | (man >> 13), rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) half++;
    h.x = (uint16_t)(sign | half);
    return h;
}

#endif
