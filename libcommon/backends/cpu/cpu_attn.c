/* cpu_attn.c — backends layer: one (sequence, head) of the CPU attention,
 * forward and backward, over one or two key blocks (see cpu_attn.h). Each
 * call runs single-threaded BLAS on fixed shapes: its arithmetic does not
 * depend on the thread count. */
#include "cpu_attn.h"

#include <cblas.h>
#include <float.h>
#include <math.h>

int64_t cpu_attn_n_keys(const cpu_kv_block *kv, int n_kv)
{
    int64_t n = 0;
    for (int b = 0; b < n_kv; b++) n += kv[b].n;
    return n;
}

/* Softmax of row[0..n) in place; entries >= n_valid are masked to 0. */
static void softmax_masked(float *row, int64_t n_valid, int64_t n)
{
    float mx = -FLT_MAX;
    for (int64_t j = 0; j < n_valid; j++) mx = row[j] > mx ? row[j] : mx;
    double sum = 0;
    for (int64_t j = 0; j < n_valid; j++) {
        row[j] = expf(row[j] - mx);
        sum += row[j];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < n_valid; j++) row[j] *= inv;
    for (int64_t j = n_valid; j < n; j++) row[j] = 0.0f;
}

void cpu_attn_probs(float *P, const float *q, int64_t ldq, const cpu_kv_block *kv, int n_kv,
                    int64_t n, int hd, bool causal, float scale)
{
    int64_t nk = cpu_attn_n_keys(kv, n_kv), col = 0;
    for (int b = 0; b < n_kv; b++) {
        if (kv[b].n == 0) continue;
        /* P[:, col .. col + n_b) = scale q K_b^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)kv[b].n, hd, scale, q,
                    (int)ldq, kv[b].k, (int)kv[b].ld, 0.0f, P + col, (int)nk);
        col += kv[b].n;
    }
    for (int64_t i = 0; i < n; i++) softmax_masked(P + i * nk, causal ? nk - n + i + 1 : nk, nk);
}

void cpu_attn_apply(float *out, int64_t ldo, const float *P, const cpu_kv_block *kv, int n_kv,
                    int64_t n, int hd)
{
    int64_t nk = cpu_attn_n_keys(kv, n_kv), col = 0;
    float beta = 0.0f;
    for (int b = 0; b < n_kv; b++) {
        if (kv[b].n == 0) continue;
        /* out (+)= P[:, col .. col + n_b) V_b */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, hd, (int)kv[b].n, 1.0f,
                    P + col, (int)nk, kv[b].v, (int)kv[b].ld, beta, out, (int)ldo);
        col += kv[b].n;
        beta = 1.0f;
    }
}

/* O = P V, S = scale q K^T, per block b (columns of P):
 * dV_b += P_b^T dO; dP_b = dO V_b^T; dS = P . (dP - rowsum(dP . P));
 * dq += scale dS_b K_b; dK_b += scale dS_b^T q. */
void cpu_attn_head_backward(float *P, float *dP, const float *q, float *dq, int64_t ldq,
                            const cpu_kv_block *kv, int n_kv, const float *dout, int64_t ldo,
                            int64_t n, int hd, bool causal, float scale)
{
    int64_t nk = cpu_attn_n_keys(kv, n_kv), col = 0;
    cpu_attn_probs(P, q, ldq, kv, n_kv, n, hd, causal, scale);
    for (int b = 0; b < n_kv; b++) {
        if (kv[b].n == 0) continue;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kv[b].n, hd, (int)n, 1.0f,
                    P + col, (int)nk, dout, (int)ldo, 1.0f, kv[b].dv, (int)kv[b].ld_grad);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)kv[b].n, hd, 1.0f,
                    dout, (int)ldo, kv[b].v, (int)kv[b].ld, 0.0f, dP + col, (int)nk);
        col += kv[b].n;
    }
    for (int64_t i = 0; i < n; i++) {
        float *p = P + i * nk, *d = dP + i * nk;
        double dot = 0;
        for (int64_t j = 0; j < nk; j++) dot += (double)p[j] * d[j];
        for (int64_t j = 0; j < nk; j++) d[j] = p[j] * (d[j] - (float)dot);
    }
    col = 0;
    for (int b = 0; b < n_kv; b++) {
        if (kv[b].n == 0) continue;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, hd, (int)kv[b].n, scale,
                    dP + col, (int)nk, kv[b].k, (int)kv[b].ld, 1.0f, dq, (int)ldq);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kv[b].n, hd, (int)n, scale,
                    dP + col, (int)nk, q, (int)ldq, 1.0f, kv[b].dk, (int)kv[b].ld_grad);
        col += kv[b].n;
    }
}
