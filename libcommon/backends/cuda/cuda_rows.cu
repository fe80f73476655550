/* cuda_rows.cu — backends layer (CUDA kernels): one block per row —
 * RMSNorm, LayerNorm, log-probabilities and argmax over the vocabulary.
 * Sums run in double and in a fixed order (each thread a fixed stride, then
 * a fixed tree), as close to the CPU backend as the GPU allows. */
#include "cuda_kernels.h"
#include "cuda_launch.h"
#include "cuda_reduce.cuh"

#include <float.h>

#define ROW_THREADS 256

__global__ void k_rmsnorm(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t cols,
                          const float *w, float eps)
{
    __shared__ double red[ROW_THREADS / 32];
    const float *xr = x + (int64_t)blockIdx.x * ldx;
    float *yr = y + (int64_t)blockIdx.x * ldy;
    double ss = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) ss += (double)xr[c] * xr[c];
    ss = block_sum(ss, red);
    float inv = 1.0f / sqrtf((float)(ss / (double)cols) + eps);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = w[c] * (xr[c] * inv);
}

__global__ void k_layernorm(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t cols,
                            const float *w, const float *b, float eps)
{
    __shared__ double red[ROW_THREADS / 32];
    const float *xr = x + (int64_t)blockIdx.x * ldx;
    float *yr = y + (int64_t)blockIdx.x * ldy;
    double mean = 0, var = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) mean += xr[c];
    mean = block_sum(mean, red) / (double)cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        double d = (double)xr[c] - mean;
        var += d * d;
    }
    var = block_sum(var, red) / (double)cols;
    float inv = (float)(1.0 / sqrt(var + eps)), mf = (float)mean;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        yr[c] = ((xr[c] - mf) * inv) * w[c] + b[c];
}

/* The row's first maximum over columns other than `exclude` (-1: none). */
__device__ arg_max row_argmax(const float *xr, int64_t V, int64_t exclude, arg_max *red)
{
    arg_max best = {-FLT_MAX, -1};
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x)
        if (c != exclude) best = arg_max_pick(best, arg_max{xr[c], c});
    return block_arg_max(best, red);
}

__global__ void k_token_logprobs(const float *logits, int64_t ld, int64_t V,
                                 const int32_t *target, float *logp, int32_t *argmax)
{
    __shared__ arg_max red_am[ROW_THREADS / 32];
    __shared__ double red[ROW_THREADS / 32];
    int64_t r = blockIdx.x;
    const float *xr = logits + r * ld;
    arg_max best = row_argmax(xr, V, -1, red_am);
    if (argmax && threadIdx.x == 0) argmax[r] = (int32_t)best.idx;
    if (!logp) return;
    float mx = best.val;
    double sum = 0;
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) sum += exp((double)xr[c] - mx);
    sum = block_sum(sum, red);
    int64_t t = target ? target[r] : best.idx;
    if (threadIdx.x == 0) logp[r] = (float)((double)xr[t] - mx - log(sum));
}

__global__ void k_best_other(const float *logits, int64_t ld, int64_t V, const int32_t *exclude,
                             int32_t *out)
{
    __shared__ arg_max red_am[ROW_THREADS / 32];
    int64_t r = blockIdx.x;
    arg_max best = row_argmax(logits + r * ld, V, exclude[r], red_am);
    if (threadIdx.x == 0) out[r] = (int32_t)best.idx;
}

extern "C" {

void cuk_rmsnorm(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows, int64_t cols,
                 const float *w, float eps, cudaStream_t s)
{
    if (rows == 0) return;
    CU_LAUNCH(k_rmsnorm, (unsigned)rows, ROW_THREADS, 0, s, y, ldy, x, ldx, cols, w, eps);
}

void cuk_layernorm(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows,
                   int64_t cols, const float *w, const float *b, float eps, cudaStream_t s)
{
    if (rows == 0) return;
    CU_LAUNCH(k_layernorm, (unsigned)rows, ROW_THREADS, 0, s, y, ldy, x, ldx, cols, w, b, eps);
}

void cuk_token_logprobs(const float *logits, int64_t ld, int64_t rows, int64_t V,
                        const int32_t *target, float *logp, int32_t *argmax, cudaStream_t s)
{
    if (rows == 0) return;
    CU_LAUNCH(k_token_logprobs, (unsigned)rows, ROW_THREADS, 0, s, logits, ld, V, target, logp,
              argmax);
}

void cuk_best_other(const float *logits, int64_t ld, int64_t rows, int64_t V,
                    const int32_t *exclude, int32_t *out, cudaStream_t s)
{
    if (rows == 0) return;
    CU_LAUNCH(k_best_other, (unsigned)rows, ROW_THREADS, 0, s, logits, ld, V, exclude, out);
}

} /* extern "C" */
