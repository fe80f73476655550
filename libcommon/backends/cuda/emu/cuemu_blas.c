/* cuemu_blas.c — backends layer, test support: cuBLAS GEMMs of the CPU
 * emulation (include/cublas_v2.h). Inputs are widened to float (exactly),
 * multiplied with OpenBLAS in column-major order, and the result rounded to
 * the output type. A GPU's tensor cores sum in another order: results agree
 * to float rounding, which is what the tests compare with. */
#include "cublas_v2.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"

#include <cblas.h>
#include <stdlib.h>

struct cuemu_blas {
    cudaStream_t stream;
};

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = calloc(1, sizeof(struct cuemu_blas));
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode)
{
    (void)h;
    (void)mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes)
{
    (void)h;
    (void)ws;
    (void)bytes;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

static int type_ok(cudaDataType t) { return t == CUDA_R_32F || t == CUDA_R_16BF || t == CUDA_R_16F; }

static float load(const void *p, cudaDataType t, size_t i)
{
    if (t == CUDA_R_32F) return ((const float *)p)[i];
    if (t == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return __half2float(((const __half *)p)[i]);
}

static void store(void *p, cudaDataType t, size_t i, float v)
{
    if (t == CUDA_R_32F) ((float *)p)[i] = v;
    else if (t == CUDA_R_16BF) ((__nv_bfloat16 *)p)[i] = __float2bfloat16(v);
    else ((__half *)p)[i] = __float2half(v);
}

/* A column-major [rows, cols] matrix at leading dimension ld, as floats
 * packed at leading dimension rows. */
static float *widen(const void *p, cudaDataType t, int rows, int cols, int ld)
{
    float *out = malloc(sizeof(float) * (size_t)rows * (size_t)(cols ? cols : 1) + 1);
    for (int c = 0; c < cols; c++)
        for (int r = 0; r < rows; r++)
            out[(size_t)c * rows + r] = load(p, t, (size_t)c * (size_t)ld + (size_t)r);
    return out;
}

static cublasStatus_t gemm_one(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                               float alpha, const void *A, cudaDataType at, int lda,
                               const void *B, cudaDataType bt, int ldb, float beta, void *C,
                               cudaDataType ct, int ldc)
{
    if (!type_ok(at) || !type_ok(bt) || !type_ok(ct)) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m < 0 || n < 0 || k < 0 || ldc < m) return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (lda < ar || ldb < br) return CUBLAS_STATUS_INVALID_VALUE;
    float *a = widen(A, at, ar, ac, lda), *b = widen(B, bt, br, bc, ldb);
    float *c = malloc(sizeof(float) * (size_t)m * (size_t)n);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++)
            c[(size_t)j * m + i] = beta == 0.0f ? 0.0f : load(C, ct, (size_t)j * ldc + i);
    if (k > 0)
        cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                    tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, alpha, a, ar, b, br,
                    beta, c, m);
    else
        for (size_t i = 0; i < (size_t)m * n; i++) c[i] *= beta;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) store(C, ct, (size_t)j * ldc + i, c[(size_t)j * m + i]);
    free(a);
    free(b);
    free(c);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType at,
                            int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo)
{
    (void)h;
    (void)compute;
    (void)algo;
    return gemm_one(ta, tb, m, n, k, *(const float *)alpha, A, at, lda, B, bt, ldb,
                    *(const float *)beta, C, ct, ldc);
}

static size_t elem_size(cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; }

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta,
                                          cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType at,
                                          int lda, long long sa, const void *B, cudaDataType bt,
                                          int ldb, long long sb, const void *beta, void *C,
                                          cudaDataType ct, int ldc, long long sc, int batch,
                                          cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
    (void)h;
    (void)compute;
    (void)algo;
    for (int i = 0; i < batch; i++) {
        cublasStatus_t s = gemm_one(
            ta, tb, m, n, k, *(const float *)alpha, (const char *)A + (size_t)i * sa * elem_size(at),
            at, lda, (const char *)B + (size_t)i * sb * elem_size(bt), bt, ldb,
            *(const float *)beta, (char *)C + (size_t)i * sc * elem_size(ct), ct, ldc);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
    }
    return CUBLAS_STATUS_SUCCESS;
}
