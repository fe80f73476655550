/* cuemu.h — backends layer, test support: the kernel side of the CPU
 * emulation of CUDA (see cuda_runtime.h beside this file).
 *
 * A launch runs its blocks one after another; the threads of a block are
 * cooperative fibers (ucontext) on the calling thread. __syncthreads() and
 * the warp operations switch fibers: a block barrier releases when every
 * thread of the block that has not returned waits at it, a warp barrier
 * when every live lane of the warp does. A kernel that would deadlock on a
 * GPU (a barrier in divergent code) stops the program with a message.
 *
 * Kernels launch through CU_LAUNCH (cuda_launch.h), which here becomes
 * cuemu_launch with a lambda; __shared__ arrays become function statics,
 * shared by the block's fibers (blocks never overlap); dynamic shared memory
 * is declared with CU_DYN_SMEM. Atomics are plain read-modify-writes:
 * fibers never interleave inside one.
 */
#ifndef SIMA_CUEMU_H
#define SIMA_CUEMU_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <functional>

#include "cuda_runtime.h" /* the runtime's types (it includes this file last) */

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct float2 {
    float x, y;
};
struct float4 {
    float x, y, z, w;
};
struct int2 {
    int x, y;
};
static inline float2 make_float2(float x, float y) { return {x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

/* The fiber (thread) being run and the launch it belongs to. */
struct cuemu_thread {
    uint3 tid;
    unsigned lane, warp, flat;
};
struct cuemu_grid {
    uint3 bid;
    dim3 block, grid;
    void *dyn_smem;
};
extern thread_local cuemu_thread *cuemu_cur_thread;
extern thread_local cuemu_grid *cuemu_cur_grid;

#define threadIdx (cuemu_cur_thread->tid)
#define blockIdx (cuemu_cur_grid->bid)
#define blockDim (cuemu_cur_grid->block)
#define gridDim (cuemu_cur_grid->grid)
#define warpSize 32

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__ static
#define CU_DYN_SMEM(type, name) type *name = (type *)cuemu_cur_grid->dyn_smem

void cuemu_launch(dim3 grid, dim3 block, size_t dyn_smem, void *stream,
                  const std::function<void()> &body);
/* A kernel declared free of barriers and warp operations (CU_LAUNCH_NOSYNC):
 * its threads run as plain calls; a barrier in one stops the program. */
void cuemu_launch_nosync(dim3 grid, dim3 block, size_t dyn_smem, void *stream,
                         const std::function<void()> &body);
void cuemu_block_barrier(void);
void cuemu_warp_barrier(void);
/* Warp exchange: every live lane posts v, then reads lane src's value. */
uint64_t cuemu_warp_exchange(uint64_t v, int src_lane);
/* Every live lane posts v and reads all 32 lanes' values (one barrier):
 * warp reductions simulate their shuffle network on them (cuda_reduce.cuh). */
void cuemu_warp_allgather(uint64_t v, uint64_t out[32]);
template <typename T> static inline void cuemu_warp_values(T v, T out[32])
{
    static_assert(sizeof(T) <= 8, "warp values wider than 8 bytes");
    uint64_t bits = 0, all[32];
    memcpy(&bits, &v, sizeof(T));
    cuemu_warp_allgather(bits, all);
    for (int l = 0; l < 32; l++) memcpy(&out[l], &all[l], sizeof(T));
}

static inline void __syncthreads(void) { cuemu_block_barrier(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; cuemu_warp_barrier(); }
static inline void __threadfence(void) {}
static inline void __threadfence_block(void) {}

template <typename T> static inline T cuemu_shfl(T v, int src)
{
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    uint64_t got = cuemu_warp_exchange(bits, src);
    T out;
    memcpy(&out, &got, sizeof(T));
    return out;
}
static inline unsigned cuemu_lane(void) { return cuemu_cur_thread->lane; }
/* width: the size of the lane groups the shuffle stays within (a power of 2). */
template <typename T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{
    (void)mask;
    int base = (int)cuemu_lane() & ~(width - 1);
    return cuemu_shfl(v, base + (src & (width - 1)));
}
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int m, int width = 32)
{
    (void)mask;
    int l = (int)cuemu_lane(), src = l ^ m;
    if ((src & ~(width - 1)) != (l & ~(width - 1))) src = l;
    return cuemu_shfl(v, src);
}
template <typename T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32)
{
    (void)mask;
    int l = (int)cuemu_lane(), src = l + (int)d;
    if ((src & ~(width - 1)) != (l & ~(width - 1))) src = l;
    return cuemu_shfl(v, src);
}
template <typename T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32)
{
    (void)mask;
    int l = (int)cuemu_lane(), src = l - (int)d;
    if (src < (l & ~(width - 1))) src = l;
    return cuemu_shfl(v, src);
}
unsigned cuemu_ballot(int pred);
static inline unsigned __ballot_sync(unsigned mask, int pred) { (void)mask; return cuemu_ballot(pred); }

/* Atomics: fibers switch only at barriers, so a read-modify-write is atomic. */
template <typename T> static inline T atomicAdd(T *p, T v)
{
    T old = *p;
    *p = old + v;
    return old;
}
template <typename T> static inline T atomicMax(T *p, T v)
{
    T old = *p;
    if (v > old) *p = v;
    return old;
}
template <typename T> static inline T atomicExch(T *p, T v)
{
    T old = *p;
    *p = v;
    return old;
}
template <typename T> static inline T atomicCAS(T *p, T cmp, T v)
{
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}

/* Device math: the host's libm (the GPU's are within a few ulp of it). */
#define __expf(x) expf(x)     /* glibc declares its own __expf: a macro avoids the clash */
#define __logf(x) logf(x)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float __saturatef(float x) { return x < 0 ? 0 : x > 1 ? 1 : x; }
template <typename T> static inline T __ldg(const T *p) { return *p; }

template <typename F> static inline cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int)
{
    return cudaSuccess;
}

#endif
