/* cuda_kv.c — backends layer: the CUDA backend's paged KV caches
 * (be_kv_pages), in the weight type (bf16 by default; float32 with --dtype
 * f32). Slab s holds pages s*S .. (s+1)*S of every layer, keys and values
 * apart, [n_layers][S][page][width]; growing adds slabs, so pages in use
 * never move; the kernels find a slab through a device array of pointers. */
#include "cuda_check.h"
#include "cuda_internal.h"
#include "err.h"

#include <stdlib.h>

/* Positions per page: small pages waste little at the end of each
 * sequence; the attention tiles (64 keys) span two. */
#define CU_KV_PAGE 32

typedef struct {
    void **k_host, **v_host;      /* [n_slabs] slab bases */
    void **k_dev, **v_dev;        /* the same, on the device */
    int n_slabs;
    int64_t slab_pages;
    size_t slab_bytes, table_bytes;
    cuk_dtype dt;
} cu_pages;

static size_t elem_bytes(cuk_dtype dt) { return dt == CUK_F32 ? 4 : 2; }

cuk_pages cu_pages_view(const be_kv_pages *p, int layer)
{
    const cu_pages *c = p->impl;
    cuk_pages v = {(void *const *)c->k_dev, (void *const *)c->v_dev, c->slab_pages, p->page,
                   p->width, layer, c->dt};
    return v;
}

/* The device's copy of the slab tables, after a slab was added. */
static void upload_tables(cu_state *st, cu_pages *c)
{
    size_t bytes = sizeof(void *) * (size_t)c->n_slabs;
    if (c->k_dev) {
        cu_free(st, c->k_dev, c->table_bytes);
        cu_free(st, c->v_dev, c->table_bytes);
    }
    c->table_bytes = bytes;
    c->k_dev = cu_alloc(st, bytes);
    c->v_dev = cu_alloc(st, bytes);
    CU_CHECK(cudaMemcpyAsync(c->k_dev, c->k_host, bytes, cudaMemcpyHostToDevice, st->stream));
    CU_CHECK(cudaMemcpyAsync(c->v_dev, c->v_host, bytes, cudaMemcpyHostToDevice, st->stream));
    CU_CHECK(cudaStreamSynchronize(st->stream)); /* the host tables may change next */
}

static void add_slab(cu_state *st, be_kv_pages *p)
{
    cu_pages *c = p->impl;
    c->k_host = xrealloc(c->k_host, sizeof(void *) * (size_t)(c->n_slabs + 1));
    c->v_host = xrealloc(c->v_host, sizeof(void *) * (size_t)(c->n_slabs + 1));
    c->k_host[c->n_slabs] = cu_alloc(st, c->slab_bytes);
    c->v_host[c->n_slabs] = cu_alloc(st, c->slab_bytes);
    c->n_slabs++;
    p->n_pages = c->n_slabs * c->slab_pages;
}

static be_kv_pages *cu_kv_pages_new(be_backend *be, int n_layers, int64_t width, int64_t n_pages)
{
    cu_state *st = cu_st(be);
    be_kv_pages *p = xcalloc(1, sizeof *p);
    cu_pages *c = xcalloc(1, sizeof *c);
    p->page = CU_KV_PAGE;
    p->width = width;
    p->n_layers = n_layers;
    p->impl = c;
    c->dt = st->wdt;
    c->slab_pages = n_pages > 0 ? n_pages : 1;
    c->slab_bytes = elem_bytes(c->dt) * (size_t)(n_layers * c->slab_pages * p->page * width);
    add_slab(st, p);
    upload_tables(st, c);
    return p;
}

static void cu_kv_pages_grow(be_backend *be, be_kv_pages *p, int64_t n_pages)
{
    cu_state *st = cu_st(be);
    if (p->n_pages >= n_pages) return;
    while (p->n_pages < n_pages) add_slab(st, p);
    upload_tables(st, p->impl);
}

static void cu_kv_pages_copy(be_backend *be, be_kv_pages *p, int32_t dst, int32_t src, int64_t n)
{
    cu_state *st = cu_st(be);
    cuk_pages_copy(cu_pages_view(p, 0), (int)p->n_layers, dst, src, n, st->stream);
    CU_CHECK_LAUNCH();
}

static void cu_kv_pages_free(be_backend *be, be_kv_pages *p)
{
    if (!p) return;
    cu_state *st = cu_st(be);
    cu_pages *c = p->impl;
    for (int s = 0; s < c->n_slabs; s++) {
        cu_release(st, c->k_host[s], c->slab_bytes);
        cu_release(st, c->v_host[s], c->slab_bytes);
    }
    cu_free(st, c->k_dev, c->table_bytes);
    cu_free(st, c->v_dev, c->table_bytes);
    free(c->k_host);
    free(c->v_host);
    free(c);
    free(p);
}

void cu_kv_install(be_backend *be)
{
    be->kv_pages_new = cu_kv_pages_new;
    be->kv_pages_grow = cu_kv_pages_grow;
    be->kv_pages_copy = cu_kv_pages_copy;
    be->kv_pages_free = cu_kv_pages_free;
}
