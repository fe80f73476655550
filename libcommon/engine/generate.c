/* generate.c — engine layer: continuous batching over per-sequence caches. */
#include "generate.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

const char *gen_finish_name(gen_finish f)
{
    switch (f) {
    case GEN_EOS: return "eos";
    case GEN_LENGTH: return "length";
    case GEN_CONTEXT: return "context";
    }
    return "unknown";
}

void gen_output_free(gen_output *o)
{
    free(o->tokens);
    free(o->logprobs);
    memset(o, 0, sizeof *o);
}

void gen_options_default(gen_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_batch = 8;
    o->max_prefill_rows = 2048;
}

/* One active sequence. */
typedef struct {
    int req;                /* index into the requests */
    llama_kv kv;
    smp_rng rng;
    int32_t next;           /* token to feed at the next decode step */
    int64_t cap;            /* output capacity */
} gen_slot;

static void push_token(gen_output *o, int64_t *cap, int32_t tok, float lp)
{
    if (o->n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        o->tokens = xrealloc(o->tokens, sizeof(int32_t) * (size_t)*cap);
        o->logprobs = xrealloc(o->logprobs, sizeof(float) * (size_t)*cap);
    }
    o->tokens[o->n] = tok;
    o->logprobs[o->n] = lp;
    o->n++;
    o->sum_logprob += lp;
}

/* Image features already computed in this call, keyed by the caller's
 * pixel buffer: candidates of one prompt (or both orders of a judgement)
 * share their pixels, so the vision tower runs once for all of them. The
 * features are the same bits either way. */
#define GEN_FEAT_CACHE 16
typedef struct {
    const float *pixels[GEN_FEAT_CACHE];
    int n_images[GEN_FEAT_CACHE];
    be_mat feats[GEN_FEAT_CACHE];
    int n, next;
} feat_cache;

static void feat_cache_free(llava_model *m, feat_cache *c)
{
    for (int i = 0; i < c->n; i++) m->be->mat_free(m->be, &c->feats[i]);
    c->n = c->next = 0;
}

/* dst [n_images * image_tokens, D] = the features of these pixels. */
static int image_features_cached(llava_model *m, feat_cache *c, const float *pixels, int n_images,
                                 be_mat dst)
{
    for (int i = 0; i < c->n; i++)
        if (c->pixels[i] == pixels && c->n_images[i] == n_images) {
            m->be->copy(m->be, dst, c->feats[i]);
            return 0;
        }
    if (llava_image_features(m, pixels, n_images, dst) != 0) return -1;
    int slot = c->n < GEN_FEAT_CACHE ? c->n++ : c->next;
    if (slot == c->next && c->n == GEN_FEAT_CACHE) {
        if (c->feats[slot].data) m->be->mat_free(m->be, &c->feats[slot]);
        c->next = (c->next + 1) % GEN_FEAT_CACHE;
    }
    c->pixels[slot] = pixels;
    c->n_images[slot] = n_images;
    c->feats[slot] = m->be->mat_new(m->be, dst.rows, dst.cols);
    m->be->copy(m->be, c->feats[slot], dst);
    return 0;
}

/* Image features of the requests idx[0..n) that have images, concatenated
 * in order: [sum n_images * image_tokens, D]. */
static int batch_image_features(llava_model *m, feat_cache *c, const gen_request *req,
                                const int *idx, int n, be_mat *out)
{
    int64_t rows = 0;
    for (int i = 0; i < n; i++) rows += (int64_t)req[idx[i]].n_images * m->image_tokens;
    be_mat none = {0};
    *out = none;
    if (rows == 0) return 0;
    *out = m->be->mat_new(m->be, rows, m->cfg.text.hidden_size);
    int64_t r = 0;
    for (int i = 0; i < n; i++) {
        const gen_request *q = &req[idx[i]];
        if (q->n_images == 0) continue;
        int64_t k = (int64_t)q->n_images * m->image_tokens;
        if (image_features_cached(m, c, q->pixels, q->n_images, be_rows(*out, r, k)) != 0)
            return -1;
        r += k;
    }
    return 0;
}

/* Record a chosen token and decide whether the sequence is finished. */
static int accept_token(llava_model *m, const gen_request *q, gen_output *o, gen_slot *s,
                        int32_t tok, float logprob)
{
    push_token(o, &s->cap, tok, logprob);
    int32_t eos = q->eos_id >= 0 ? q->eos_id : m->cfg.text.eos_token_id;
    s->next = tok;
    if (tok == eos) o->finish = GEN_EOS;
    else if (o->n >= q->max_new_tokens) o->finish = GEN_LENGTH;
    else if (s->kv.n_past + 1 > s->kv.capacity) o->finish = GEN_CONTEXT;
    return o->finish != 0;
}

/* Logits [n, V] on the backend of selected hidden rows (rows NULL: all
 * of hidden's n rows); the caller frees them. */
static be_mat step_logits(llava_model *m, be_mat hidden, const int64_t *rows, int n)
{
    be_backend *be = m->be;
    int64_t D = m->cfg.text.hidden_size, V = m->cfg.text.vocab_size;
    be_mat lg = be->mat_new(be, n, V), sel = {0};
    if (rows) {
        sel = be->mat_new(be, n, D);
        for (int i = 0; i < n; i++) be->copy(be, be_rows(sel, i, 1), be_rows(hidden, rows[i], 1));
    }
    llama_logits(m, rows ? sel : hidden, lg);
    if (rows) be->mat_free(be, &sel);
    return lg;
}

typedef struct {
    llava_model *m;
    const gen_request *req;
    gen_output *out;
    const gen_options *opt;
    gen_slot *slots;        /* [max_batch] */
    int n_active;
    float *scratch;         /* [max_batch, 2 * V] for sampling */
    float *logits;          /* [max_batch, V] logits rows on the host, kept across steps:
                               at batch 32 it is 4 MB, fresh pages would cost faults */
    int32_t *toks;          /* [max_batch] chosen tokens */
    float *lps;             /* [max_batch] their log-probs */
    int *sampled;           /* [max_batch] rows that sample (a GPU step) */
    feat_cache feats;       /* image features computed in this call */
} gen_state;

/* Choose the next token of slots [first, first + n) from their logits rows
 * [n, V] on the host, and its log-prob before temperature. Rows are
 * independent (each slot has its own RNG), so they run in parallel. */
static void choose_tokens_from(gen_state *st, const float *logits, int first, int n,
                               int32_t *toks, float *lps)
{
    int V = st->m->cfg.text.vocab_size;
#pragma omp parallel for schedule(dynamic) if (n > 1)
    for (int i = 0; i < n; i++) {
        gen_slot *s = &st->slots[first + i];
        const gen_request *q = &st->req[s->req];
        const float *row = logits + (int64_t)i * V;
        int32_t best = smp_argmax(row, V);
        toks[i] = smp_choose_from(row, V, best, &q->sampling, &s->rng,
                                  st->scratch + (size_t)(first + i) * 2 * V);
        lps[i] = smp_logprob_max(row, V, toks[i], row[best]);
    }
}

/* On a GPU: every row's argmax and its log-prob on the device (the greedy
 * choice); only the rows that sample come to the host (gathered, one
 * copy), where they are drawn as on the CPU. */
static void choose_tokens_device(gen_state *st, be_mat lg, int first, int n, int32_t *toks,
                                 float *lps)
{
    be_backend *be = st->m->be;
    int V = st->m->cfg.text.vocab_size, n_s = 0;
    be->token_logprobs(be, lg, NULL, lps, toks);
    for (int i = 0; i < n; i++)
        if (st->req[st->slots[first + i].req].sampling.temperature > 0) st->sampled[n_s++] = i;
    if (n_s == 0) return;
    be_mat rows = be->mat_new(be, n_s, V);
    for (int j = 0; j < n_s; j++) be->copy(be, be_rows(rows, j, 1), be_rows(lg, st->sampled[j], 1));
    be->download(be, rows, st->logits);
    be->mat_free(be, &rows);
#pragma omp parallel for schedule(dynamic) if (n_s > 1)
    for (int j = 0; j < n_s; j++) {
        int i = st->sampled[j];
        gen_slot *s = &st->slots[first + i];
        const float *row = st->logits + (int64_t)j * V;
        int32_t best = toks[i];
        toks[i] = smp_choose_from(row, V, best, &st->req[s->req].sampling, &s->rng,
                                  st->scratch + (size_t)(first + i) * 2 * V);
        lps[i] = smp_logprob_max(row, V, toks[i], row[best]);
    }
}

/* The next tokens of slots [first, first + n) from their logits on the
 * backend (freed here). The CPU backend chooses on the host from the whole
 * rows, as it always has; a GPU leaves greedy rows on the device. */
static void choose_tokens(gen_state *st, be_mat lg, int first, int n)
{
    be_backend *be = st->m->be;
    if (strcmp(be->name, "cpu") == 0) {
        be->download(be, lg, st->logits);
        choose_tokens_from(st, st->logits, first, n, st->toks, st->lps);
    } else {
        choose_tokens_device(st, lg, first, n, st->toks, st->lps);
    }
    be->mat_free(be, &lg);
}

static int finish_slot(gen_state *st, int i)
{
    gen_slot *s = &st->slots[i];
    llama_kv_free(st->m, &s->kv);
    int stop = st->opt->on_done ? st->opt->on_done(st->opt->ctx, s->req, &st->out[s->req]) : 0;
    st->slots[i] = st->slots[--st->n_active];
    return stop;
}

/* Choose and record the next token of slots [first, first + n) from their
 * logits lg on the backend (freed); finished sequences leave their slot.
 * Returns 1 when on_done asked to stop. Walks backwards: finish_slot moves
 * the last slot (already handled) into the freed one. */
static int advance_slots(gen_state *st, be_mat lg, int first, int n)
{
    int32_t *toks = st->toks;
    float *lps = st->lps;
    choose_tokens(st, lg, first, n);
    int rc = 0;
    for (int i = n - 1; rc == 0 && i >= 0; i--) {
        gen_slot *s = &st->slots[first + i];
        if (accept_token(st->m, &st->req[s->req], &st->out[s->req], s, toks[i], lps[i]) &&
            finish_slot(st, first + i))
            rc = 1;
    }
    return rc;
}

/* Same prompt, same images: a candidate of the same question. */
static bool same_prompt(const gen_request *a, const gen_request *b)
{
    return a->n_prompt == b->n_prompt && a->n_images == b->n_images && a->pixels == b->pixels &&
           memcmp(a->prompt, b->prompt, sizeof(int32_t) * (size_t)a->n_prompt) == 0;
}

/* Admit requests next.. into free slots and prefill them together. A
 * request whose prompt and images equal an earlier one's in the same batch
 * (the candidates of a prompt) is not computed again: it shares that one's
 * cache pages and takes the logits of its last prompt row. */
static int prefill(gen_state *st, int *next, int n_req)
{
    llava_model *m = st->m;
    be_backend *be = m->be;
    int cap = st->opt->max_batch - st->n_active;
    int idx[cap > 0 ? cap : 1], twin[cap > 0 ? cap : 1], lead[cap > 0 ? cap : 1], k = 0, n_lead = 0;
    int64_t rows = 0;
    while (k < cap && *next < n_req) {
        const gen_request *q = &st->req[*next];
        int tw = -1;
        for (int j = 0; j < k && tw < 0; j++)
            if (twin[j] < 0 && same_prompt(&st->req[idx[j]], q)) tw = j;
        if (k > 0 && tw < 0 && rows + q->n_prompt > st->opt->max_prefill_rows) break;
        if (q->n_prompt < 1) return ERR("request %d has an empty prompt", *next);
        if (q->n_prompt >= m->cfg.text.max_position_embeddings)
            return ERR("request %d: prompt of %lld tokens does not fit the model's %d positions",
                       *next, (long long)q->n_prompt, m->cfg.text.max_position_embeddings);
        if (tw < 0) {
            rows += q->n_prompt;
            lead[n_lead++] = *next;
        }
        twin[k] = tw;
        idx[k++] = (*next)++;
    }
    if (k == 0) return 0;
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)rows);
    llama_seq *seqs = xcalloc((size_t)n_lead, sizeof *seqs);
    int64_t *last = xmalloc(sizeof(int64_t) * (size_t)k);
    int64_t r = 0;
    for (int i = 0, s = 0; i < k; i++) {
        const gen_request *q = &st->req[idx[i]];
        gen_slot *sl = &st->slots[st->n_active + i];
        memset(sl, 0, sizeof *sl);
        sl->req = idx[i];
        int64_t capacity = q->n_prompt + q->max_new_tokens;
        if (capacity > m->cfg.text.max_position_embeddings)
            capacity = m->cfg.text.max_position_embeddings;
        llama_kv_new(m, capacity, &sl->kv);
        smp_rng_seed(&sl->rng, q->seed);
        memset(&st->out[idx[i]], 0, sizeof(gen_output));
        if (twin[i] >= 0) {
            last[i] = last[twin[i]];
            continue;
        }
        memcpy(ids + r, q->prompt, sizeof(int32_t) * (size_t)q->n_prompt);
        seqs[s++] = (llama_seq){r, q->n_prompt, &sl->kv, q->n_images > 0};
        r += q->n_prompt;
        last[i] = r - 1;
    }
    st->n_active += k;
    be_mat feats;
    int rc = batch_image_features(m, &st->feats, st->req, lead, n_lead, &feats);
    be_mat hidden = be->mat_new(be, rows, m->cfg.text.hidden_size);
    llama_batch b = {rows, ids, n_lead, seqs, feats};
    if (rc == 0) rc = llama_forward(m, &b, hidden);
    /* the twins continue their leader's cache */
    gen_slot *first = &st->slots[st->n_active - k];
    for (int i = 0; rc == 0 && i < k; i++)
        if (twin[i] >= 0)
            rc = llama_kv_share(m, &first[twin[i]].kv, st->req[idx[i]].n_prompt, &first[i].kv);
    be_mat lg = {0};
    if (rc == 0) lg = step_logits(m, hidden, last, k);
    be->mat_free(be, &hidden);
    if (feats.data) be->mat_free(be, &feats);
    /* first token of each new sequence (they occupy the last k slots) */
    if (rc == 0) rc = advance_slots(st, lg, st->n_active - k, k);
    free(ids);
    free(seqs);
    free(last);
    return rc;
}

/* One decode step for every active sequence. */
static int decode_step(gen_state *st)
{
    llava_model *m = st->m;
    be_backend *be = m->be;
    int n = st->n_active;
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)n);
    llama_seq *seqs = xcalloc((size_t)n, sizeof *seqs);
    for (int i = 0; i < n; i++) {
        ids[i] = st->slots[i].next;
        seqs[i] = (llama_seq){i, 1, &st->slots[i].kv, false};
    }
    be_mat none = {0};
    be_mat hidden = be->mat_new(be, n, m->cfg.text.hidden_size);
    llama_batch b = {n, ids, n, seqs, none};
    int rc = llama_forward(m, &b, hidden);
    /* one row per sequence, in slot order: the logits of all of hidden */
    be_mat lg = {0};
    if (rc == 0) lg = step_logits(m, hidden, NULL, n);
    be->mat_free(be, &hidden);
    if (rc == 0) rc = advance_slots(st, lg, 0, n);
    free(ids);
    free(seqs);
    return rc;
}

int gen_generate(llava_model *m, const gen_request *req, int n, const gen_options *opt_in,
                 gen_output *out)
{
    gen_options opt;
    if (opt_in) opt = *opt_in;
    else gen_options_default(&opt);
    if (opt.max_batch < 1) opt.max_batch = 1;
    for (int i = 0; i < n; i++)
        if (req[i].max_new_tokens < 1)
            return ERR("request %d: max_new_tokens must be at least 1", i);
    size_t V = (size_t)m->cfg.text.vocab_size, B = (size_t)opt.max_batch;
    gen_state st = {m, req, out, &opt, xcalloc(B, sizeof(gen_slot)), 0,
                    xmalloc(sizeof(float) * 2 * V * B), xmalloc(sizeof(float) * V * B),
                    xmalloc(sizeof(int32_t) * B), xmalloc(sizeof(float) * B),
                    xmalloc(sizeof(int) * B), {{0}, {0}, {{0}}, 0, 0}};
    int next = 0, rc = 0;
    while (rc == 0 && (next < n || st.n_active > 0)) {
        if (next < n && st.n_active < opt.max_batch) rc = prefill(&st, &next, n);
        else rc = decode_step(&st);
        if (rc == 0 && opt.on_step && opt.on_step(opt.ctx)) rc = 1;
    }
    for (int i = 0; i < st.n_active; i++) llama_kv_free(m, &st.slots[i].kv);
    feat_cache_free(m, &st.feats);
    free(st.slots);
    free(st.scratch);
    free(st.logits);
    free(st.toks);
    free(st.lps);
    free(st.sampled);
    return rc < 0 ? -1 : 0; /* rc 1: stopped early by on_done */
}

/* ------------------------------------------------------------ scoring -- */

/* Score requests [first, first + k) in one ragged batch without caches. */
static int score_batch(llava_model *m, feat_cache *cache, const gen_score_request *req,
                       int first, int k, float **logp)
{
    be_backend *be = m->be;
    int64_t rows = 0, n_cont = 0;
    for (int i = 0; i < k; i++) {
        rows += req[first + i].n_ids;
        n_cont += req[first + i].n_ids - req[first + i].n_prompt;
    }
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)rows);
    int32_t *target = xmalloc(sizeof(int32_t) * (size_t)(n_cont ? n_cont : 1));
    int64_t *sel = xmalloc(sizeof(int64_t) * (size_t)(n_cont ? n_cont : 1));
    llama_seq *seqs = xcalloc((size_t)k, sizeof *seqs);
    int idx[k];
    int64_t r = 0, c = 0;
    for (int i = 0; i < k; i++) {
        const gen_score_request *q = &req[first + i];
        memcpy(ids + r, q->ids, sizeof(int32_t) * (size_t)q->n_ids);
        seqs[i] = (llama_seq){r, q->n_ids, NULL, q->n_images > 0};
        for (int64_t t = q->n_prompt; t < q->n_ids; t++) {
            sel[c] = r + t - 1;     /* the row that predicts token t */
            target[c++] = q->ids[t];
        }
        r += q->n_ids;
        idx[i] = first + i;
    }
    /* image features, in request order */
    int64_t frows = 0;
    for (int i = 0; i < k; i++) frows += (int64_t)req[idx[i]].n_images * m->image_tokens;
    be_mat feats = {0};
    int rc = 0;
    if (frows > 0) {
        feats = be->mat_new(be, frows, m->cfg.text.hidden_size);
        int64_t fr = 0;
        for (int i = 0; rc == 0 && i < k; i++) {
            const gen_score_request *q = &req[idx[i]];
            int64_t nf = (int64_t)q->n_images * m->image_tokens;
            if (nf) rc = image_features_cached(m, cache, q->pixels, q->n_images, be_rows(feats, fr, nf));
            fr += nf;
        }
    }
    be_mat hidden = be->mat_new(be, rows, m->cfg.text.hidden_size);
    llama_batch b = {rows, ids, k, seqs, feats};
    if (rc == 0) rc = llama_forward(m, &b, hidden);
    if (rc == 0 && n_cont > 0) {
        be_mat h = be->mat_new(be, n_cont, m->cfg.text.hidden_size);
        be_mat lg = be->mat_new(be, n_cont, m->cfg.text.vocab_size);
        for (int64_t j = 0; j < n_cont; j++) be->copy(be, be_rows(h, j, 1), be_rows(hidden, sel[j], 1));
        llama_logits(m, h, lg);
        float *all = xmalloc(sizeof(float) * (size_t)n_cont);
        be->token_logprobs(be, lg, target, all, NULL);
        c = 0;
        for (int i = 0; i < k; i++) {
            int64_t nc = req[first + i].n_ids - req[first + i].n_prompt;
            logp[first + i] = xmalloc(sizeof(float) * (size_t)(nc ? nc : 1));
            memcpy(logp[first + i], all + c, sizeof(float) * (size_t)nc);
            c += nc;
        }
        free(all);
        be->mat_free(be, &h);
        be->mat_free(be, &lg);
    }
    be->mat_free(be, &hidden);
    if (feats.data) be->mat_free(be, &feats);
    free(ids);
    free(target);
    free(sel);
    free(seqs);
    return rc;
}

int gen_score(llava_model *m, const gen_score_request *req, int n, const gen_options *opt_in,
              float **logp)
{
    gen_options opt;
    if (opt_in) opt = *opt_in;
    else gen_options_default(&opt);
    for (int i = 0; i < n; i++) {
        logp[i] = NULL;
        const gen_score_request *q = &req[i];
        if (q->n_prompt < 1 || q->n_prompt > q->n_ids)
            return ERR("score request %d: prompt length %lld outside [1, %lld]", i,
                       (long long)q->n_prompt, (long long)q->n_ids);
        if (q->n_ids > m->cfg.text.max_position_embeddings)
            return ERR("score request %d: %lld tokens exceed the model's %d positions", i,
                       (long long)q->n_ids, m->cfg.text.max_position_embeddings);
    }
    feat_cache cache = {0};
    for (int first = 0; first < n;) {
        int k = 1;
        int64_t rows = req[first].n_ids;
        while (first + k < n && k < opt.max_batch &&
               rows + req[first + k].n_ids <= opt.max_prefill_rows)
            rows += req[first + k++].n_ids;
        if (score_batch(m, &cache, req, first, k, logp) != 0) {
            feat_cache_free(m, &cache);
            return -1;
        }
        first += k;
    }
    feat_cache_free(m, &cache);
    return 0;
}
