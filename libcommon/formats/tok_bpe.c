/* tok_bpe.c — formats layer: the BPE merge loop shared by tokenizer.json
 * (merge by rank) and sentencepiece (merge by piece score).
 *
 * Symbols form a doubly linked list over the word; every adjacent pair that
 * could merge is a candidate in a binary min-heap ordered by (prio, left
 * index). Popping the best candidate merges right into left and adds the two
 * new pairs around the merged symbol. A candidate whose symbols changed since
 * it was pushed is stale and skipped: symbols only grow, so "left still
 * alive, right still its neighbour, lengths still adding up" proves it
 * current. Each merge costs O(log n), a word of n characters O(n log n).
 */
#include "tok_internal.h"
#include "err.h"

#include <stdlib.h>

void tok_bpe_work_free(tok_bpe_work *w)
{
    free(w->sym);
    free(w->heap);
    *w = (tok_bpe_work){0};
}

void tok_bpe_clear(tok_bpe_work *w)
{
    w->n = 0;
    w->hn = 0;
}

void tok_bpe_push_sym(tok_bpe_work *w, int32_t start, int32_t len, int32_t id,
                      bool frozen)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->sym = xrealloc(w->sym, w->cap * sizeof *w->sym);
    }
    int32_t i = (int32_t)w->n++;
    w->sym[i] = (tok_sym){.start = start, .len = len, .id = id,
                          .prev = i - 1, .next = -1, .frozen = frozen};
    if (i > 0) w->sym[i - 1].next = i;
}

/* a goes before b in the heap */
static bool cand_before(const tok_cand *a, const tok_cand *b)
{
    if (a->prio != b->prio) return a->prio < b->prio;
    return a->left < b->left;
}

static void heap_push(tok_bpe_work *w, tok_cand c)
{
    if (w->hn == w->hcap) {
        w->hcap = w->hcap ? 2 * w->hcap : 64;
        w->heap = xrealloc(w->heap, w->hcap * sizeof *w->heap);
    }
    size_t i = w->hn++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_before(&c, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = c;
}

static tok_cand heap_pop(tok_bpe_work *w)
{
    tok_cand top = w->heap[0];
    tok_cand last = w->heap[--w->hn];
    size_t i = 0, n = w->hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static void try_pair(tok_bpe_work *w, const char *text, tok_pair_fn fn,
                     void *ctx, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) return;
    const tok_sym *l = &w->sym[left], *r = &w->sym[right];
    if (l->frozen || r->frozen) return;
    float prio;
    int32_t id;
    if (!fn(ctx, text, l, r, &prio, &id)) return;
    heap_push(w, (tok_cand){.prio = prio, .left = left, .right = right,
                            .id = id, .len = l->len + r->len});
}

static bool cand_is_current(const tok_bpe_work *w, const tok_cand *c)
{
    const tok_sym *l = &w->sym[c->left], *r = &w->sym[c->right];
    return l->len > 0 && r->len > 0 && l->next == c->right &&
           l->len + r->len == c->len;
}

void tok_bpe_merge(tok_bpe_work *w, const char *text, tok_pair_fn fn, void *ctx)
{
    w->hn = 0;
    for (int32_t i = 0; i + 1 < (int32_t)w->n; i++)
        try_pair(w, text, fn, ctx, i, i + 1);
    while (w->hn > 0) {
        tok_cand c = heap_pop(w);
        if (!cand_is_current(w, &c)) continue;
        tok_sym *l = &w->sym[c.left], *r = &w->sym[c.right];
        l->len += r->len;
        l->id = c.id;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = c.left;
        try_pair(w, text, fn, ctx, l->prev, c.left);
        try_pair(w, text, fn, ctx, c.left, l->next);
    }
}
