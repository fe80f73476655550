/* cuda_launch.h — backends layer (CUDA kernels only): how the .cu files
 * launch kernels and declare dynamic shared memory, so that the same source
 * builds with nvcc for a GPU and as C++ for the CPU emulation (emu/). */
#ifndef SIMA_BACKENDS_CUDA_LAUNCH_H
#define SIMA_BACKENDS_CUDA_LAUNCH_H

#include <cuda_runtime.h>

/* CU_LAUNCH_NOSYNC: the same launch, for a kernel with no __syncthreads
 * and no warp operations; the emulation then runs its threads as plain
 * calls (much faster), and stops with a message if one meets a barrier. */
#ifdef SIMA_CUDA_EMU
#define CU_LAUNCH(kernel, grid, block, smem, stream, ...)                                 \
    cuemu_launch((grid), (block), (smem), (void *)(stream), [&]() { kernel(__VA_ARGS__); })
#define CU_LAUNCH_NOSYNC(kernel, grid, block, smem, stream, ...)                          \
    cuemu_launch_nosync((grid), (block), (smem), (void *)(stream),                        \
                        [&]() { kernel(__VA_ARGS__); })
#else
#define CU_LAUNCH(kernel, grid, block, smem, stream, ...)                                 \
    kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#define CU_LAUNCH_NOSYNC CU_LAUNCH
#define CU_DYN_SMEM(type, name) extern __shared__ __align__(16) type name[]
#endif

/* Blocks of `per` covering n items. */
static inline unsigned cu_blocks(long long n, int per)
{
    long long b = (n + per - 1) / per;
    return (unsigned)(b > 0 ? b : 1);
}

#endif
