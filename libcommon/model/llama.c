/* llama.c — model layer: the LLaMA decoder over a ragged batch with
 * per-sequence key/value caches. */
#include "err.h"
#include "llava.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ KV pages -- */

/* The pages of every sequence's cache, with a reference count each and a
 * stack of free ones; grown (by the backend, pages in use stay put) when
 * none is free. */
struct llama_kv_pool {
    be_kv_pages *pages;
    int32_t *refs;          /* [pages->n_pages] */
    int32_t *free_ids;      /* [n_free] */
    int64_t n_free;
};

static void pool_push_range(struct llama_kv_pool *p, int64_t from, int64_t to)
{
    p->refs = xrealloc(p->refs, sizeof(int32_t) * (size_t)to);
    p->free_ids = xrealloc(p->free_ids, sizeof(int32_t) * (size_t)to);
    for (int64_t id = to - 1; id >= from; id--) { /* lowest ids on top */
        p->refs[id] = 0;
        p->free_ids[p->n_free++] = (int32_t)id;
    }
}

static struct llama_kv_pool *kv_pool(llava_model *m, int64_t capacity)
{
    if (m->kv_pool) return m->kv_pool;
    const cfg_text *t = &m->cfg.text;
    be_backend *be = m->be;
    struct llama_kv_pool *p = xcalloc(1, sizeof *p);
    /* first guess: pages for a few sequences of this length; grows later */
    p->pages = be->kv_pages_new(be, m->lm.n_layers, (int64_t)t->num_key_value_heads * t->head_dim, 8);
    int64_t want = 8 * ((capacity + p->pages->page - 1) / p->pages->page);
    if (want > p->pages->n_pages) be->kv_pages_grow(be, p->pages, want);
    pool_push_range(p, 0, p->pages->n_pages);
    m->kv_pool = p;
    return p;
}

void llama_kv_pool_free(llava_model *m)
{
    struct llama_kv_pool *p = m->kv_pool;
    if (!p) return;
    m->be->kv_pages_free(m->be, p->pages);
    free(p->refs);
    free(p->free_ids);
    free(p);
    m->kv_pool = NULL;
}

static int32_t page_take(llava_model *m)
{
    struct llama_kv_pool *p = m->kv_pool;
    if (p->n_free == 0) {
        int64_t old = p->pages->n_pages;
        m->be->kv_pages_grow(m->be, p->pages, old + (old > 64 ? old / 2 : 64));
        pool_push_range(p, old, p->pages->n_pages);
    }
    int32_t id = p->free_ids[--p->n_free];
    p->refs[id] = 1;
    return id;
}

static void page_drop(llava_model *m, int32_t id)
{
    struct llama_kv_pool *p = m->kv_pool;
    if (--p->refs[id] == 0) p->free_ids[p->n_free++] = id;
}

static void kv_append_page(llama_kv *kv, int32_t id)
{
    if (kv->n_pages == kv->cap_pages) {
        kv->cap_pages = kv->cap_pages ? 2 * kv->cap_pages : 8;
        kv->pages = xrealloc(kv->pages, sizeof(int32_t) * (size_t)kv->cap_pages);
    }
    kv->pages[kv->n_pages++] = id;
}

int llama_kv_new(llava_model *m, int64_t capacity, llama_kv *kv)
{
    memset(kv, 0, sizeof *kv);
    kv_pool(m, capacity);
    kv->capacity = capacity;
    return 0;
}

void llama_kv_free(llava_model *m, llama_kv *kv)
{
    for (int64_t i = 0; i < kv->n_pages; i++) page_drop(m, kv->pages[i]);
    free(kv->pages);
    memset(kv, 0, sizeof *kv);
}

int llama_kv_share(llava_model *m, const llama_kv *src, int64_t n, llama_kv *dst)
{
    if (dst->n_past != 0 || dst->n_pages != 0 || n > src->n_past || n > dst->capacity)
        return ERR("llama_kv_share: %lld positions of a cache of %lld into one of %lld (%lld filled)",
                   (long long)n, (long long)src->n_past, (long long)dst->capacity,
                   (long long)dst->n_past);
    int64_t page = m->kv_pool->pages->page, full = n / page, rest = n % page;
    for (int64_t i = 0; i < full; i++) {
        m->kv_pool->refs[src->pages[i]]++;
        kv_append_page(dst, src->pages[i]);
    }
    if (rest > 0) {
        int32_t id = page_take(m);
        m->be->kv_pages_copy(m->be, m->kv_pool->pages, id, src->pages[full], rest);
        kv_append_page(dst, id);
    }
    dst->n_past = n;
    return 0;
}

/* Pages for positions up to n_past + n_new; a shared page about to be
 * written is copied first. */
static void kv_reserve(llava_model *m, llama_kv *kv, int64_t n_new)
{
    int64_t page = m->kv_pool->pages->page, used = kv->n_past % page;
    if (used > 0) {
        int32_t *last = &kv->pages[kv->n_pages - 1];
        if (m->kv_pool->refs[*last] > 1) {
            int32_t id = page_take(m);
            m->be->kv_pages_copy(m->be, m->kv_pool->pages, id, *last, used);
            page_drop(m, *last);
            *last = id;
        }
    }
    int64_t need = (kv->n_past + n_new + page - 1) / page;
    while (kv->n_pages < need) kv_append_page(kv, page_take(m));
}

/* Rows must be covered by the sequences in order, and caches must fit. */
static int check_batch(const llava_model *m, const llama_batch *b)
{
    int64_t next = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        const llama_seq *sq = &b->seqs[s];
        if (sq->row0 != next || sq->n_new < 1)
            return ERR("llama_forward: sequence %d covers rows [%lld, %lld), expected to start at %lld",
                       s, (long long)sq->row0, (long long)(sq->row0 + sq->n_new), (long long)next);
        if (sq->kv && sq->kv->n_past + sq->n_new > sq->kv->capacity)
            return ERR("sequence of %lld tokens exceeds its cache of %lld positions",
                       (long long)(sq->kv->n_past + sq->n_new), (long long)sq->kv->capacity);
        next += sq->n_new;
    }
    if (next != b->n_rows)
        return ERR("llama_forward: sequences cover %lld of %lld rows", (long long)next,
                   (long long)b->n_rows);
    for (int64_t r = 0; r < b->n_rows; r++)
        if (b->ids[r] < 0 || b->ids[r] >= m->cfg.text.vocab_size)
            return ERR("token id %d at row %lld is outside the vocabulary of %d", b->ids[r],
                       (long long)r, m->cfg.text.vocab_size);
    return 0;
}

/* Replace the embeddings of image-token rows with image features, in order,
 * copying whole runs of consecutive image rows at once. */
static int insert_image_features(llava_model *m, const llama_batch *b, be_mat h)
{
    int32_t img = m->cfg.image_token_index;
    int64_t f = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        const llama_seq *sq = &b->seqs[s];
        int64_t end = sq->row0 + sq->n_new;
        for (int64_t r = sq->row0; sq->with_image && r < end;) {
            if (b->ids[r] != img) {
                r++;
                continue;
            }
            int64_t run = 1;
            while (r + run < end && b->ids[r + run] == img) run++;
            if (f + run > b->image_features.rows)
                return ERR("the prompt has more image tokens than the %lld image features given",
                           (long long)b->image_features.rows);
            m->be->copy(m->be, be_rows(h, r, run), be_rows(b->image_features, f, run));
            f += run;
            r += run;
        }
    }
    if (f != b->image_features.rows)
        return ERR("the prompt has %lld image tokens but %lld image features were given",
                   (long long)f, (long long)b->image_features.rows);
    return 0;
}

typedef struct {
    be_mat xn, q, k, v, att, gate, up;
} llama_scratch;

const be_weight *llama_layer_weight(const llama_layer *L, llama_linear_id which)
{
    const be_weight *w[LL_N_LINEAR] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
    return w[which];
}

const llama_layer_lora *llama_active_lora(const llava_model *m, int layer)
{
    if (!m->lm.lora || m->lm.lora_off) return NULL;
    return &m->lm.lora[layer];
}

void lora_term_apply(be_backend *be, be_mat y, be_mat x, const lora_term *t)
{
    if (!t || !t->A.data) return;
    be_mat mid = be->mat_new(be, x.rows, t->A.rows);     /* [M, r] */
    be->linear(be, mid, x, &t->A, NULL, false);
    be->scale(be, mid, t->scale);
    be->linear(be, y, mid, &t->B, NULL, true);
    be->mat_free(be, &mid);
}

/* y (+)= x W^T for linear `which` of layer `layer`, plus its LoRA term when
 * an adapter is on (without one this is exactly the plain linear). */
static void layer_linear(llava_model *m, int layer, llama_linear_id which, be_mat y, be_mat x,
                         bool accumulate)
{
    const llama_layer *L = &m->lm.layers[layer];
    m->be->linear(m->be, y, x, llama_layer_weight(L, which), NULL, accumulate);
    const llama_layer_lora *ad = llama_active_lora(m, layer);
    if (ad) lora_term_apply(m->be, y, x, &ad->t[which]);
}

static void llama_layer_forward(llava_model *m, const llama_layer *L, int layer, be_mat h,
                                llama_scratch *s, be_attn_seq *aseq, const llama_batch *b,
                                const int32_t *pos)
{
    be_backend *be = m->be;
    const cfg_text *t = &m->cfg.text;
    float eps = (float)t->rms_norm_eps;
    be->rmsnorm(be, s->xn, h, &L->attn_norm, eps);
    layer_linear(m, layer, LL_Q, s->q, s->xn, false);
    layer_linear(m, layer, LL_K, s->k, s->xn, false);
    layer_linear(m, layer, LL_V, s->v, s->xn, false);
    be->rope(be, s->q, t->num_attention_heads, t->head_dim, pos, t->rope_theta);
    be->rope(be, s->k, t->num_key_value_heads, t->head_dim, pos, t->rope_theta);
    for (int i = 0; i < b->n_seqs; i++) aseq[i].layer = layer;
    be_attn_shape sh = {t->num_attention_heads, t->num_key_value_heads, t->head_dim, true,
                        1.0f / sqrtf((float)t->head_dim)};
    be->attention(be, s->att, s->q, s->k, s->v, aseq, b->n_seqs, sh);
    layer_linear(m, layer, LL_O, h, s->att, true);     /* h += attn . Wo^T */
    be->rmsnorm(be, s->xn, h, &L->mlp_norm, eps);
    layer_linear(m, layer, LL_GATE, s->gate, s->xn, false);
    layer_linear(m, layer, LL_UP, s->up, s->xn, false);
    be->silu_mul(be, s->gate, s->gate, s->up);
    layer_linear(m, layer, LL_DOWN, h, s->gate, true); /* h += mlp . Wd^T */
}

int llama_forward(llava_model *m, const llama_batch *b, be_mat hidden)
{
    if (check_batch(m, b) != 0) return -1;
    be_backend *be = m->be;
    const cfg_text *t = &m->cfg.text;
    int64_t R = b->n_rows, D = t->hidden_size;
    int64_t qw = (int64_t)t->num_attention_heads * t->head_dim;
    int64_t kvw = (int64_t)t->num_key_value_heads * t->head_dim;

    be_mat h = be->mat_new(be, R, D);
    be->embed(be, h, &m->lm.embed, b->ids);
    if (insert_image_features(m, b, h) != 0) {
        be->mat_free(be, &h);
        return -1;
    }
    /* positions and attention view of each sequence */
    int32_t *pos = xmalloc(sizeof(int32_t) * (size_t)R);
    be_attn_seq *aseq = xcalloc((size_t)b->n_seqs, sizeof *aseq);
    for (int i = 0; i < b->n_seqs; i++) {
        const llama_seq *sq = &b->seqs[i];
        int64_t past = sq->kv ? sq->kv->n_past : 0;
        for (int64_t j = 0; j < sq->n_new; j++) pos[sq->row0 + j] = (int32_t)(past + j);
        aseq[i].q_row0 = sq->row0;
        aseq[i].n_new = sq->n_new;
        aseq[i].n_past = past;
        if (sq->kv) {
            kv_reserve(m, sq->kv, sq->n_new);
            aseq[i].pages = m->kv_pool->pages;
            aseq[i].page_ids = sq->kv->pages;
        }
    }
    llama_scratch s = {be->mat_new(be, R, D),  be->mat_new(be, R, qw),
                       be->mat_new(be, R, kvw), be->mat_new(be, R, kvw),
                       be->mat_new(be, R, qw),  be->mat_new(be, R, t->intermediate_size),
                       be->mat_new(be, R, t->intermediate_size)};
    for (int l = 0; l < m->lm.n_layers; l++)
        llama_layer_forward(m, &m->lm.layers[l], l, h, &s, aseq, b, pos);
    be->rmsnorm(be, hidden, h, &m->lm.norm, (float)t->rms_norm_eps);
    for (int i = 0; i < b->n_seqs; i++)
        if (b->seqs[i].kv) b->seqs[i].kv->n_past += b->seqs[i].n_new;

    be_mat *tmp[] = {&s.xn, &s.q, &s.k, &s.v, &s.att, &s.gate, &s.up, &h};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) be->mat_free(be, tmp[i]);
    free(pos);
    free(aseq);
    return 0;
}

void llama_logits(llava_model *m, be_mat hidden, be_mat logits)
{
    m->be->linear(m->be, logits, hidden, &m->lm.lm_head, NULL, false);
}
