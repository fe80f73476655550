/* cuda_optim.cu — backends layer (CUDA kernels): the optimizer's vector
 * operations on the device: weighted gradient accumulation, the sum of
 * squares for global-norm clipping, AdamW. The arithmetic is the host
 * optimizer's (train/optim.c), in double where it uses double, so a step on
 * the GPU gives what the host would from the same gradient. */
#include "cuda_kernels.h"
#include "cuda_launch.h"
#include "cuda_reduce.cuh"

#define OPT_THREADS 256
#define OPT_BLOCKS 1024

static unsigned opt_blocks(int64_t n)
{
    unsigned b = cu_blocks(n, OPT_THREADS);
    return b > OPT_BLOCKS ? OPT_BLOCKS : b;
}

__global__ void k_axpy(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows,
                       int64_t cols, double a)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < rows * cols;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols;
        y[r * ldy + c] += (float)(a * (double)x[r * ldx + c]);
    }
}

/* partial[b] = sum of squares of block b's strided share (fixed order). */
__global__ void k_sum_squares(double *partial, const float *x, int64_t n)
{
    __shared__ double red[OPT_THREADS / 32];
    double s = 0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        s += (double)x[i] * x[i];
    s = block_sum(s, red);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void k_sum_partials(double *out, const double *partial, int n)
{
    __shared__ double red[OPT_THREADS / 32];
    double s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
    s = block_sum(s, red);
    if (threadIdx.x == 0) out[0] = s;
}

/* optim_adamw_step's update, element by element; the gradient rounded to
 * float after scaling, as the host's clipping leaves it. */
__global__ void k_adamw(float *param, float *m, float *v, const float *grad, int64_t n,
                        double lr, double b1, double b2, double eps, double decay, double bc1,
                        double bc2, double grad_scale)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        double g = grad_scale == 1.0 ? (double)grad[i] : (double)(float)(grad[i] * grad_scale);
        m[i] = (float)(b1 * m[i] + (1.0 - b1) * g);
        v[i] = (float)(b2 * v[i] + (1.0 - b2) * g * g);
        double mh = m[i] / bc1, vh = v[i] / bc2;
        param[i] = (float)(param[i] * decay - lr * mh / (sqrt(vh) + eps));
    }
}

extern "C" {

void cuk_axpy(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows, int64_t cols,
              double a, cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_axpy, opt_blocks(rows * cols), OPT_THREADS, 0, s, y, ldy, x, ldx, rows,
                     cols, a);
}

void cuk_sum_squares(double *out, const float *x, int64_t n, double *partial, cudaStream_t s)
{
    unsigned b = opt_blocks(n);
    CU_LAUNCH(k_sum_squares, b, OPT_THREADS, 0, s, partial, x, n);
    CU_LAUNCH(k_sum_partials, 1, OPT_THREADS, 0, s, out, partial, (int)b);
}

size_t cuk_sum_squares_scratch(void) { return sizeof(double) * OPT_BLOCKS; }

void cuk_adamw(float *param, float *m, float *v, const float *grad, int64_t n, double lr,
               double beta1, double beta2, double eps, double weight_decay, int64_t t,
               double grad_scale, cudaStream_t s)
{
    if (n == 0) return;
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    CU_LAUNCH_NOSYNC(k_adamw, opt_blocks(n), OPT_THREADS, 0, s, param, m, v, grad, n, lr, beta1,
                     beta2, eps, 1.0 - lr * weight_decay, bc1, bc2, grad_scale);
}

} /* extern "C" */
