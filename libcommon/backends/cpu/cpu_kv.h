/* cpu_kv.h — backends layer (private): the CPU backend's paged KV caches
 * (be_kv_pages): float32 pages of CPU_KV_PAGE positions in slabs that are
 * added as the caches grow. */
#ifndef SIMA_BACKENDS_CPU_KV_H
#define SIMA_BACKENDS_CPU_KV_H

#include "backend.h"

/* Positions per page: long pages keep the attention's products few and
 * large (one per page and head). */
#define CPU_KV_PAGE 256

/* Keys and values of page `id` of layer `layer`: [page, width] each. */
float *cpu_kv_keys(const be_kv_pages *p, int layer, int32_t id);
float *cpu_kv_values(const be_kv_pages *p, int layer, int32_t id);

void cpu_kv_install(be_backend *be);

#endif
