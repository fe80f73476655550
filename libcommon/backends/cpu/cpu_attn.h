/* cpu_attn.h — backends layer (private): one (sequence, head) of the CPU
 * attention over its key blocks, shared by the forward (cpu_backend.c) and
 * the backward (cpu_train.c).
 *
 * A sequence's keys are blocks in order: without a cache, a shared prefix
 * (rows of another sequence, be_attn_seq.n_pre) and its own rows
 * (CPU_KV_PRE, CPU_KV_MAIN); with a cache, its pages. Scores and products
 * run block by block, so the blocks need not be adjacent in memory; empty
 * blocks are skipped. */
#ifndef SIMA_BACKENDS_CPU_ATTN_H
#define SIMA_BACKENDS_CPU_ATTN_H

#include "backend.h"

enum { CPU_KV_PRE = 0, CPU_KV_MAIN = 1, CPU_KV_N = 2 };

/* One block of keys and values of one kv head: rows [n, hd] at row stride
 * ld; for the backward, where its dk/dv add ([n, hd] at stride ld_grad). */
typedef struct {
    const float *k, *v;
    float *dk, *dv;
    int64_t n, ld, ld_grad;
} cpu_kv_block;

/* The number of keys of blocks kv[0 .. n_kv). */
int64_t cpu_attn_n_keys(const cpu_kv_block *kv, int n_kv);

/* P [n, n_keys] = softmax(scale q [n, hd] K^T) over the blocks' keys in
 * order; causal: query row i sees keys 0 .. n_keys - n + i (its own rows
 * are the last n keys), the rest of its row is 0. */
void cpu_attn_probs(float *P, const float *q, int64_t ldq, const cpu_kv_block *kv, int n_kv,
                    int64_t n, int hd, bool causal, float scale);

/* out [n, hd] = P V over the blocks (overwrites out). */
void cpu_attn_apply(float *out, int64_t ldo, const float *P, const cpu_kv_block *kv, int n_kv,
                    int64_t n, int hd);

/* Backward of out = P V with P = softmax(scale q K^T): dq [n, hd] += ..,
 * each block's dk/dv += ... P and dP are [n, n_keys] scratch. */
void cpu_attn_head_backward(float *P, float *dP, const float *q, float *dq, int64_t ldq,
                            const cpu_kv_block *kv, int n_kv, const float *dout, int64_t ldo,
                            int64_t n, int hd, bool causal, float scale);

#endif
