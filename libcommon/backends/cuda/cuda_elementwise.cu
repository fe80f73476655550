/* cuda_elementwise.cu — backends layer (CUDA kernels): conversions,
 * elementwise activations, embeddings and RoPE. One thread per element
 * over a grid-stride loop; float math as the CPU backend's forward. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_kernels.h"
#include "cuda_launch.h"

#define EW_THREADS 256
#define EW_MAX_BLOCKS 65535

static unsigned ew_blocks(int64_t n)
{
    unsigned b = cu_blocks(n, EW_THREADS);
    return b > EW_MAX_BLOCKS ? EW_MAX_BLOCKS : b;
}

__device__ __forceinline__ float cuk_load(const void *p, cuk_dtype dt, int64_t i)
{
    if (dt == CUK_BF16) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    if (dt == CUK_F16) return __half2float(((const __half *)p)[i]);
    return ((const float *)p)[i];
}

__device__ __forceinline__ void cuk_store(void *p, cuk_dtype dt, int64_t i, float v)
{
    if (dt == CUK_BF16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16(v);
    else if (dt == CUK_F16) ((__half *)p)[i] = __float2half(v);
    else ((float *)p)[i] = v;
}

#define EW_LOOP(n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t)gridDim.x * blockDim.x)

__global__ void k_convert_from_f32(void *dst, cuk_dtype dt, const float *src, int64_t lds,
                                   int64_t rows, int64_t cols)
{
    EW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        cuk_store(dst, dt, i, src[r * lds + c]);
    }
}

__global__ void k_convert_to_f32(float *dst, int64_t ldd, const void *src, cuk_dtype dt,
                                 int64_t rows, int64_t cols)
{
    EW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        dst[r * ldd + c] = cuk_load(src, dt, i);
    }
}

__global__ void k_add_bias(float *y, int64_t ld, int64_t rows, int64_t cols, const float *bias)
{
    EW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        y[r * ld + c] += bias[c];
    }
}

__global__ void k_add(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows,
                      int64_t cols)
{
    EW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        y[r * ldy + c] += x[r * ldx + c];
    }
}

__global__ void k_scale(float *x, int64_t ld, int64_t rows, int64_t cols, float a)
{
    EW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        x[r * ld + c] *= a;
    }
}

__global__ void k_add_rows(float *y, int64_t ld, int64_t rows, int64_t cols, const void *table,
                           cuk_dtype dt, int64_t row0)
{
    EW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        y[r * ld + c] += cuk_load(table, dt, (row0 + r) * cols + c);
    }
}

__global__ void k_gelu_erf(float *x, int64_t ld, int64_t rows, int64_t cols)
{
    EW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        float v = x[r * ld + c];
        x[r * ld + c] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f));
    }
}

__global__ void k_quick_gelu(float *x, int64_t ld, int64_t rows, int64_t cols)
{
    EW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        float v = x[r * ld + c];
        x[r * ld + c] = v / (1.0f + expf(-1.702f * v));
    }
}

__global__ void k_silu_mul(float *out, int64_t ldo, const float *gate, int64_t ldg,
                           const float *up, int64_t ldu, int64_t rows, int64_t cols)
{
    EW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        float g = gate[r * ldg + c];
        out[r * ldo + c] = g / (1.0f + expf(-g)) * up[r * ldu + c];
    }
}

__global__ void k_embed(float *out, int64_t ld, int64_t rows, int64_t cols, const void *table,
                        cuk_dtype dt, const int32_t *ids)
{
    EW_LOOP(rows * cols) {
        int64_t r = i / cols, c = i % cols;
        out[r * ld + c] = cuk_load(table, dt, (int64_t)ids[r] * cols + c);
    }
}

/* One thread per (row, frequency): rotates that pair in every head. The
 * frequencies come from the host (the CPU backend's float32 values), so the
 * angle is the same float32 product on both backends. */
__global__ void k_rope(float *x, int64_t ld, int64_t rows, int n_heads, int hd,
                       const int32_t *pos, const float *inv_freq, float sign)
{
    int half = hd / 2;
    EW_LOOP(rows * half) {
        int64_t r = i / half;
        int f = (int)(i % half);
        float ang = (float)pos[r] * inv_freq[f], cs = cosf(ang), sn = sign * sinf(ang);
        float *row = x + r * ld;
        for (int h = 0; h < n_heads; h++) {
            float *v = row + (int64_t)h * hd;
            float a = v[f], b = v[f + half];
            v[f] = a * cs - b * sn;
            v[f + half] = b * cs + a * sn;
        }
    }
}

extern "C" {

void cuk_convert_from_f32(void *dst, cuk_dtype dt, const float *src, int64_t lds, int64_t rows,
                          int64_t cols, cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_convert_from_f32, ew_blocks(rows * cols), EW_THREADS, 0, s, dst, dt, src, lds,
              rows, cols);
}

void cuk_convert_to_f32(float *dst, int64_t ldd, const void *src, cuk_dtype dt, int64_t rows,
                        int64_t cols, cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_convert_to_f32, ew_blocks(rows * cols), EW_THREADS, 0, s, dst, ldd, src, dt,
              rows, cols);
}

void cuk_add_bias(float *y, int64_t ld, int64_t rows, int64_t cols, const float *bias,
                  cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_add_bias, ew_blocks(rows * cols), EW_THREADS, 0, s, y, ld, rows, cols, bias);
}

void cuk_add(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows, int64_t cols,
             cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_add, ew_blocks(rows * cols), EW_THREADS, 0, s, y, ldy, x, ldx, rows, cols);
}

void cuk_scale(float *x, int64_t ld, int64_t rows, int64_t cols, float a, cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_scale, ew_blocks(rows * cols), EW_THREADS, 0, s, x, ld, rows, cols, a);
}

void cuk_add_rows(float *y, int64_t ld, int64_t rows, int64_t cols, const void *table,
                  cuk_dtype dt, int64_t row0, cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_add_rows, ew_blocks(rows * cols), EW_THREADS, 0, s, y, ld, rows, cols, table, dt,
              row0);
}

void cuk_gelu_erf(float *x, int64_t ld, int64_t rows, int64_t cols, cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_gelu_erf, ew_blocks(rows * cols), EW_THREADS, 0, s, x, ld, rows, cols);
}

void cuk_quick_gelu(float *x, int64_t ld, int64_t rows, int64_t cols, cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_quick_gelu, ew_blocks(rows * cols), EW_THREADS, 0, s, x, ld, rows, cols);
}

void cuk_silu_mul(float *out, int64_t ldo, const float *gate, int64_t ldg, const float *up,
                  int64_t ldu, int64_t rows, int64_t cols, cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_silu_mul, ew_blocks(rows * cols), EW_THREADS, 0, s, out, ldo, gate, ldg, up, ldu,
              rows, cols);
}

void cuk_embed(float *out, int64_t ld, int64_t rows, int64_t cols, const void *table,
               cuk_dtype dt, const int32_t *ids, cudaStream_t s)
{
    if (rows * cols == 0) return;
    CU_LAUNCH_NOSYNC(k_embed, ew_blocks(rows * cols), EW_THREADS, 0, s, out, ld, rows, cols, table, dt,
              ids);
}

void cuk_rope(float *x, int64_t ld, int64_t rows, int n_heads, int hd, const int32_t *pos,
              const float *inv_freq, float sign, cudaStream_t s)
{
    if (rows == 0 || hd < 2) return;
    CU_LAUNCH_NOSYNC(k_rope, ew_blocks(rows * (hd / 2)), EW_THREADS, 0, s, x, ld, rows, n_heads, hd, pos,
              inv_freq, sign);
}

} /* extern "C" */
