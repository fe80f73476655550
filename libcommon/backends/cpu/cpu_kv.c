/* cpu_kv.c — backends layer: the CPU backend's paged KV caches. Slab s
 * holds pages s*S .. (s+1)*S of every layer, keys and values apart:
 * [n_layers][S][page][width] floats each. Growing adds slabs; pages in use
 * never move. */
#include "cpu_kv.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    float **k, **v;         /* [n_slabs] */
    int n_slabs;
    int64_t slab_pages;     /* S */
} cpu_pages;

static size_t slab_floats(const be_kv_pages *p, const cpu_pages *c)
{
    return (size_t)(p->n_layers * c->slab_pages * p->page * p->width);
}

static float *page_at(const be_kv_pages *p, float *const *slabs, int layer, int32_t id)
{
    const cpu_pages *c = p->impl;
    int64_t s = id / c->slab_pages, i = id % c->slab_pages;
    return slabs[s] + (((int64_t)layer * c->slab_pages + i) * p->page) * p->width;
}

float *cpu_kv_keys(const be_kv_pages *p, int layer, int32_t id)
{
    return page_at(p, ((cpu_pages *)p->impl)->k, layer, id);
}

float *cpu_kv_values(const be_kv_pages *p, int layer, int32_t id)
{
    return page_at(p, ((cpu_pages *)p->impl)->v, layer, id);
}

static void add_slab(be_kv_pages *p)
{
    cpu_pages *c = p->impl;
    c->k = xrealloc(c->k, sizeof(float *) * (size_t)(c->n_slabs + 1));
    c->v = xrealloc(c->v, sizeof(float *) * (size_t)(c->n_slabs + 1));
    c->k[c->n_slabs] = xcalloc(slab_floats(p, c), sizeof(float));
    c->v[c->n_slabs] = xcalloc(slab_floats(p, c), sizeof(float));
    c->n_slabs++;
    p->n_pages = c->n_slabs * c->slab_pages;
}

static be_kv_pages *cpu_kv_pages_new(be_backend *be, int n_layers, int64_t width, int64_t n_pages)
{
    (void)be;
    be_kv_pages *p = xcalloc(1, sizeof *p);
    cpu_pages *c = xcalloc(1, sizeof *c);
    p->page = CPU_KV_PAGE;
    p->width = width;
    p->n_layers = n_layers;
    p->impl = c;
    c->slab_pages = n_pages > 0 ? n_pages : 1;
    add_slab(p);
    return p;
}

static void cpu_kv_pages_grow(be_backend *be, be_kv_pages *p, int64_t n_pages)
{
    (void)be;
    while (p->n_pages < n_pages) add_slab(p);
}

static void cpu_kv_pages_copy(be_backend *be, be_kv_pages *p, int32_t dst, int32_t src, int64_t n)
{
    (void)be;
    size_t bytes = sizeof(float) * (size_t)(n * p->width);
    for (int l = 0; l < p->n_layers; l++) {
        memcpy(cpu_kv_keys(p, l, dst), cpu_kv_keys(p, l, src), bytes);
        memcpy(cpu_kv_values(p, l, dst), cpu_kv_values(p, l, src), bytes);
    }
}

static void cpu_kv_pages_free(be_backend *be, be_kv_pages *p)
{
    (void)be;
    if (!p) return;
    cpu_pages *c = p->impl;
    for (int s = 0; s < c->n_slabs; s++) {
        free(c->k[s]);
        free(c->v[s]);
    }
    free(c->k);
    free(c->v);
    free(c);
    free(p);
}

void cpu_kv_install(be_backend *be)
{
    be->kv_pages_new = cpu_kv_pages_new;
    be->kv_pages_grow = cpu_kv_pages_grow;
    be->kv_pages_copy = cpu_kv_pages_copy;
    be->kv_pages_free = cpu_kv_pages_free;
}
