/* cuda_backward.cu — backends layer (CUDA kernels): backward operations
 * other than attention and matrix products. The same formulas as the CPU
 * backend (cpu_train.c), in double where it uses double; every reduction
 * over rows runs in row order (one thread per column), so sums do not
 * depend on scheduling. Every kernel adds into its outputs. */
#include "cuda_kernels.h"
#include "cuda_launch.h"
#include "cuda_reduce.cuh"

#include <float.h>

#define BW_THREADS 256
#define BW_MAX_BLOCKS 65535

static unsigned bw_blocks(int64_t n)
{
    unsigned b = cu_blocks(n, BW_THREADS);
    return b > BW_MAX_BLOCKS ? BW_MAX_BLOCKS : b;
}

#define BW_LOOP(n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t)gridDim.x * blockDim.x)

/* y = g * x * inv, inv = 1/sqrt(mean(x^2) + eps):
 * dx = inv g dy - x inv^3 / D sum(g dy x). One block per row. */
__global__ void k_rmsnorm_dx(float *dx, int64_t lddx, const float *dy, int64_t lddy,
                             const float *x, int64_t ldx, int64_t cols, const float *w,
                             float eps, float *inv_out)
{
    __shared__ double red[BW_THREADS / 32];
    int64_t r = blockIdx.x;
    const float *xr = x + r * ldx, *dyr = dy + r * lddy;
    float *dxr = dx + r * lddx;
    double ss = 0, dot = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        ss += (double)xr[c] * xr[c];
        dot += (double)w[c] * dyr[c] * xr[c];
    }
    ss = block_sum(ss, red);
    dot = block_sum(dot, red);
    double iv = 1.0 / sqrt((double)(float)(ss / (double)cols) + eps);
    double kk = dot * iv * iv * iv / (double)cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        dxr[c] += (float)(iv * w[c] * dyr[c] - kk * xr[c]);
    if (threadIdx.x == 0) inv_out[r] = (float)iv;
}

/* dw [c] += sum over rows of dy x inv, rows in order. */
__global__ void k_rmsnorm_dw(float *dw, const float *dy, int64_t lddy, const float *x,
                             int64_t ldx, int64_t rows, int64_t cols, const float *inv)
{
    BW_LOOP(cols) {
        double s = 0;
        for (int64_t r = 0; r < rows; r++) s += (double)dy[r * lddy + i] * x[r * ldx + i] * inv[r];
        dw[i] += (float)s;
    }
}

/* y = xhat g + b, xhat = (x - mean) inv:
 * dx = inv (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy g. */
__global__ void k_layernorm_dx(float *dx, int64_t lddx, const float *dy, int64_t lddy,
                               const float *x, int64_t ldx, int64_t cols, const float *w,
                               float eps, double *stats)
{
    __shared__ double red[BW_THREADS / 32];
    int64_t r = blockIdx.x;
    const float *xr = x + r * ldx, *dyr = dy + r * lddy;
    float *dxr = dx + r * lddx;
    double mu = 0, var = 0, s1 = 0, s2 = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) mu += xr[c];
    mu = block_sum(mu, red) / (double)cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) var += (xr[c] - mu) * (xr[c] - mu);
    var = block_sum(var, red) / (double)cols;
    double iv = 1.0 / sqrt(var + eps);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        double dxh = (double)dyr[c] * w[c], xh = (xr[c] - mu) * iv;
        s1 += dxh;
        s2 += dxh * xh;
    }
    s1 = block_sum(s1, red) / (double)cols;
    s2 = block_sum(s2, red) / (double)cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        double dxh = (double)dyr[c] * w[c], xh = (xr[c] - mu) * iv;
        dxr[c] += (float)(iv * (dxh - s1 - xh * s2));
    }
    if (threadIdx.x == 0) {
        stats[2 * r] = mu;
        stats[2 * r + 1] = iv;
    }
}

__global__ void k_layernorm_dwdb(float *dw, float *db, const float *dy, int64_t lddy,
                                 const float *x, int64_t ldx, int64_t rows, int64_t cols,
                                 const double *stats)
{
    BW_LOOP(cols) {
        double sg = 0, sb = 0;
        for (int64_t r = 0; r < rows; r++) {
            double d = dy[r * lddy + i];
            sg += d * (x[r * ldx + i] - stats[2 * r]) * stats[2 * r + 1];
            sb += d;
        }
        if (dw) dw[i] += (float)sg;
        if (db) db[i] += (float)sb;
    }
}

__global__ void k_gelu_erf_backward(float *dx, int64_t lddx, const float *dy, int64_t lddy,
                                    const float *x, int64_t ldx, int64_t rows, int64_t cols)
{
    BW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        double v = x[r * ldx + c];
        double d = 0.5 * (1.0 + erf(v * 0.70710678118654752440)) +
                   v * exp(-0.5 * v * v) * 0.39894228040143267794;
        dx[r * lddx + c] += (float)(d * dy[r * lddy + c]);
    }
}

__global__ void k_quick_gelu_backward(float *dx, int64_t lddx, const float *dy, int64_t lddy,
                                      const float *x, int64_t ldx, int64_t rows, int64_t cols)
{
    BW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        double v = x[r * ldx + c], sg = 1.0 / (1.0 + exp(-1.702 * v));
        double d = sg + 1.702 * v * sg * (1.0 - sg);
        dx[r * lddx + c] += (float)(d * dy[r * lddy + c]);
    }
}

__global__ void k_silu_mul_backward(float *dgate, int64_t ldg, float *dup, int64_t ldu,
                                    const float *dout, int64_t ldo, const float *gate,
                                    int64_t ldga, const float *up, int64_t ldup, int64_t rows,
                                    int64_t cols)
{
    BW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        double g = gate[r * ldga + c], u = up[r * ldup + c], d = dout[r * ldo + c];
        double sg = 1.0 / (1.0 + exp(-g));
        dgate[r * ldg + c] += (float)(d * u * sg * (1.0 + g * (1.0 - sg)));
        dup[r * ldu + c] += (float)(d * g * sg);
    }
}

/* One thread per column, rows in order: repeated ids add deterministically. */
__global__ void k_embed_backward(float *dtable, int64_t ldt, const float *dy, int64_t lddy,
                                 int64_t rows, int64_t cols, const int32_t *ids)
{
    BW_LOOP(cols) {
        for (int64_t r = 0; r < rows; r++)
            if (ids[r] >= 0) dtable[(int64_t)ids[r] * ldt + i] += dy[r * lddy + i];
    }
}

__global__ void k_col_sums(float *db, const float *dy, int64_t ld, int64_t rows, int64_t cols)
{
    BW_LOOP(cols) {
        double s = 0;
        for (int64_t r = 0; r < rows; r++) s += dy[r * ld + i];
        db[i] += (float)s;
    }
}

/* dlogits += dlogp (onehot(target) - softmax(logits)), one block per row. */
__global__ void k_token_logprobs_backward(float *dlogits, int64_t ldd, const float *logits,
                                          int64_t ld, int64_t V, const int32_t *target,
                                          const float *dlogp)
{
    __shared__ double red[BW_THREADS / 32];
    __shared__ float redf[BW_THREADS / 32];
    int64_t r = blockIdx.x;
    const float *xr = logits + r * ld;
    float *d = dlogits + r * ldd;
    float mx = -FLT_MAX;
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) mx = xr[c] > mx ? xr[c] : mx;
    mx = warp_max(mx);
    __syncthreads();
    if (threadIdx.x % 32 == 0) redf[threadIdx.x / 32] = mx;
    __syncthreads();
    for (int i = 0; i < (int)((blockDim.x + 31) / 32); i++) mx = redf[i] > mx ? redf[i] : mx;
    double sum = 0;
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) sum += exp((double)xr[c] - mx);
    sum = block_sum(sum, red);
    double g = dlogp[r];
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x)
        d[c] -= (float)(g * exp((double)xr[c] - mx) / sum);
    __syncthreads();
    if (threadIdx.x == 0) d[target[r]] += (float)g;
}

extern "C" {

void cuk_rmsnorm_backward(float *dx, int64_t lddx, float *dw, const float *dy, int64_t lddy,
                          const float *x, int64_t ldx, int64_t rows, int64_t cols,
                          const float *w, float eps, float *inv_scratch, cudaStream_t s)
{
    if (rows == 0) return;
    CU_LAUNCH(k_rmsnorm_dx, (unsigned)rows, BW_THREADS, 0, s, dx, lddx, dy, lddy, x, ldx, cols, w,
              eps, inv_scratch);
    if (dw)
        CU_LAUNCH_NOSYNC(k_rmsnorm_dw, bw_blocks(cols), BW_THREADS, 0, s, dw, dy, lddy, x, ldx, rows,
                  cols, inv_scratch);
}

void cuk_layernorm_backward(float *dx, int64_t lddx, float *dw, float *db, const float *dy,
                            int64_t lddy, const float *x, int64_t ldx, int64_t rows,
                            int64_t cols, const float *w, float eps, double *stats_scratch,
                            cudaStream_t s)
{
    if (rows == 0) return;
    CU_LAUNCH(k_layernorm_dx, (unsigned)rows, BW_THREADS, 0, s, dx, lddx, dy, lddy, x, ldx, cols,
              w, eps, stats_scratch);
    if (dw || db)
        CU_LAUNCH_NOSYNC(k_layernorm_dwdb, bw_blocks(cols), BW_THREADS, 0, s, dw, db, dy, lddy, x, ldx,
                  rows, cols, stats_scratch);
}

void cuk_gelu_erf_backward(float *dx, int64_t lddx, const float *dy, int64_t lddy,
                           const float *x, int64_t ldx, int64_t rows, int64_t cols,
                           cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_gelu_erf_backward, bw_blocks(rows * cols), BW_THREADS, 0, s, dx, lddx, dy, lddy,
              x, ldx, rows, cols);
}

void cuk_quick_gelu_backward(float *dx, int64_t lddx, const float *dy, int64_t lddy,
                             const float *x, int64_t ldx, int64_t rows, int64_t cols,
                             cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_quick_gelu_backward, bw_blocks(rows * cols), BW_THREADS, 0, s, dx, lddx, dy, lddy,
              x, ldx, rows, cols);
}

void cuk_silu_mul_backward(float *dgate, int64_t ldg, float *dup, int64_t ldu,
                           const float *dout, int64_t ldo, const float *gate, int64_t ldga,
                           const float *up, int64_t ldup, int64_t rows, int64_t cols,
                           cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_silu_mul_backward, bw_blocks(rows * cols), BW_THREADS, 0, s, dgate, ldg, dup, ldu,
              dout, ldo, gate, ldga, up, ldup, rows, cols);
}

void cuk_embed_backward(float *dtable, int64_t ldt, const float *dy, int64_t lddy,
                        int64_t rows, int64_t cols, const int32_t *ids, cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_embed_backward, bw_blocks(cols), BW_THREADS, 0, s, dtable, ldt, dy, lddy, rows,
              cols, ids);
}

void cuk_col_sums(float *db, const float *dy, int64_t ld, int64_t rows, int64_t cols,
                  cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_col_sums, bw_blocks(cols), BW_THREADS, 0, s, db, dy, ld, rows, cols);
}

void cuk_token_logprobs_backward(float *dlogits, int64_t ldd, const float *logits, int64_t ld,
                                 int64_t rows, int64_t V, const int32_t *target,
                                 const float *dlogp, cudaStream_t s)
{
    if (rows == 0) return;
    CU_LAUNCH(k_token_logprobs_backward, (unsigned)rows, BW_THREADS, 0, s, dlogits, ldd, logits,
              ld, V, target, dlogp);
}

} /* extern "C" */
