/* cuda_bf16.h (CPU emulation) — backends layer, test support: bfloat16 as
 * the GPU converts it (round to nearest even; NaN stays NaN). */
#ifndef SIMA_CUEMU_CUDA_BF16_H
#define SIMA_CUEMU_CUDA_BF16_H

#include <stdint.h>
#include <string.h>

typedef struct {
    uint16_t x;
} __nv_bfloat16;

static inline __nv_bfloat16 __float2bfloat16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 b;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        b.x = (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
        return b;
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    b.x = (uint16_t)(u >> 16);
    return b;
}

static inline float __bfloat162float(__nv_bfloat16 b)
{
    uint32_t u = (uint32_t)b.x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
