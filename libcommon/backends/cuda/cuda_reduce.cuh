/* cuda_reduce.cuh — backends layer (CUDA kernels, private): block-wide
 * reductions in a fixed order. Each warp folds its lanes with an xor
 * butterfly (every lane ends with the same bits: a + b == b + a), lane 0
 * posts the warp's value, and every thread adds the posts in warp order. */
#ifndef SIMA_BACKENDS_CUDA_REDUCE_CUH
#define SIMA_BACKENDS_CUDA_REDUCE_CUH

#include <cuda_runtime.h>
#include <stdint.h>

/* The emulation (emu/) runs each butterfly on all 32 lanes' values at once,
 * in the same order of operations as the shuffles: the same bits, one
 * fiber switch instead of five pairs. */
#ifdef SIMA_CUDA_EMU
template <typename T, typename Step> static inline T emu_butterfly(T v, Step step)
{
    T vals[32], next[32];
    cuemu_warp_values(v, vals);
    for (int o = 16; o > 0; o >>= 1) {
        for (int l = 0; l < 32; l++) next[l] = step(vals[l], vals[l ^ o]);
        for (int l = 0; l < 32; l++) vals[l] = next[l];
    }
    return vals[cuemu_lane()];
}
#endif

template <typename T> __device__ __forceinline__ T warp_sum(T v)
{
#ifdef SIMA_CUDA_EMU
    return emu_butterfly(v, [](T a, T b) { return a + b; });
#else
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
#endif
}

template <typename T> __device__ __forceinline__ T warp_max(T v)
{
#ifdef SIMA_CUDA_EMU
    return emu_butterfly(v, [](T a, T b) { return b > a ? b : a; });
#else
    for (int o = 16; o > 0; o >>= 1) {
        T w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w > v ? w : v;
    }
    return v;
#endif
}

/* The sum of v over the block, returned to every thread; red holds
 * blockDim.x / 32 values. Safe to call again right after. */
template <typename T> __device__ T block_sum(T v, T *red)
{
    v = warp_sum(v);
    int nw = (int)((blockDim.x + 31) / 32);
    __syncthreads();
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
    __syncthreads();
    T t = 0;
    for (int i = 0; i < nw; i++) t += red[i];
    return t;
}

/* A value and its column; the larger value wins, ties go to the lower column. */
struct arg_max {
    float val;
    int64_t idx;   /* -1: none yet */
};

__device__ __forceinline__ arg_max arg_max_pick(arg_max a, arg_max b)
{
    if (b.idx < 0) return a;
    if (a.idx < 0 || b.val > a.val || (b.val == a.val && b.idx < a.idx)) return b;
    return a;
}

__device__ __forceinline__ arg_max warp_arg_max(arg_max a)
{
#ifdef SIMA_CUDA_EMU
    float vals[32];
    int64_t idx[32];
    cuemu_warp_values(a.val, vals);
    cuemu_warp_values(a.idx, idx);
    arg_max all[32], next[32];
    for (int l = 0; l < 32; l++) all[l] = arg_max{vals[l], idx[l]};
    for (int o = 16; o > 0; o >>= 1) {
        for (int l = 0; l < 32; l++) next[l] = arg_max_pick(all[l], all[l ^ o]);
        for (int l = 0; l < 32; l++) all[l] = next[l];
    }
    return all[cuemu_lane()];
#endif
    for (int o = 16; o > 0; o >>= 1) {
        arg_max b;
        b.val = __shfl_xor_sync(0xffffffffu, a.val, o);
        b.idx = __shfl_xor_sync(0xffffffffu, a.idx, o);
        a = arg_max_pick(a, b);
    }
    return a;
}

/* The block's arg max, returned to every thread; red holds blockDim.x / 32. */
__device__ __forceinline__ arg_max block_arg_max(arg_max a, arg_max *red)
{
    a = warp_arg_max(a);
    int nw = (int)((blockDim.x + 31) / 32);
    __syncthreads();
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = a;
    __syncthreads();
    arg_max t = red[0];
    for (int i = 1; i < nw; i++) t = arg_max_pick(t, red[i]);
    return t;
}

#endif
