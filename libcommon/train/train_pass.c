/* train_pass.c — training layer: scoring and backward of response tokens. */
#include "train_pass.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

static int check_seqs(const llava_model *m, const train_seq *seqs, int n_seqs, int n_img)
{
    for (int s = 0; s < n_seqs; s++) {
        const train_seq *q = &seqs[s];
        if (q->n_prompt < 1 || q->n_prompt >= q->n)
            return ERR("sequence %d: %lld prompt tokens of %lld leave no response to score", s,
                       (long long)q->n_prompt, (long long)q->n);
        if (q->image >= n_img)
            return ERR("sequence %d names image %d of %d", s, q->image, n_img);
        (void)m;
    }
    return 0;
}

static bool share_prompts = true;

bool train_pass_set_sharing(bool on)
{
    bool was = share_prompts;
    share_prompts = on;
    return was;
}

/* Whether b's prompt rows would compute exactly what a's do: the same
 * prompt tokens and image, and the same LoRA dropout masks on them when the
 * pass drops (the masks depend on the rate, the seed and the position). */
static bool same_prompt(const train_seq *a, const train_seq *b, bool kept)
{
    if (a->n_prompt != b->n_prompt || a->image != b->image) return false;
    if (memcmp(a->ids, b->ids, sizeof(int32_t) * (size_t)a->n_prompt) != 0) return false;
    if (!kept || (a->lora_dropout == 0 && b->lora_dropout == 0)) return true;
    return a->lora_dropout == b->lora_dropout && a->dropout_seed == b->dropout_seed;
}

/* An image token in the response takes image features in a whole sequence;
 * such (malformed) sequences stay whole so that they fail the same way. */
static bool response_has_image_token(const train_seq *q, int32_t img_tok)
{
    if (q->image < 0) return false;
    for (int64_t j = q->n_prompt; j < q->n; j++)
        if (q->ids[j] == img_tok) return true;
    return false;
}

/* prefix[s]: the first earlier whole sequence with the same prompt, or none. */
static void find_shared_prompts(const train_seq *seqs, int n_seqs, bool kept, int32_t img_tok,
                                llama_prefix *prefix)
{
    for (int s = 0; s < n_seqs; s++) {
        prefix[s] = (llama_prefix){-1, 0};
        if (!share_prompts || response_has_image_token(&seqs[s], img_tok)) continue;
        for (int t = 0; t < s; t++)
            if (prefix[t].n_pre == 0 && same_prompt(&seqs[t], &seqs[s], kept)) {
                prefix[s] = (llama_prefix){t, seqs[s].n_prompt};
                break;
            }
    }
}

/* Image features of the batch: the image's block for each sequence whose
 * rows hold image tokens (seq_image >= 0), in order. */
static void gather_features(be_backend *be, be_mat per_img, const int *seq_image, int n_seqs,
                            int N, be_mat out)
{
    int64_t f = 0;
    for (int s = 0; s < n_seqs; s++) {
        if (seq_image[s] < 0) continue;
        be->copy(be, be_rows(out, f, N), be_rows(per_img, (int64_t)seq_image[s] * N, N));
        f += N;
    }
}

static int image_features(train_pass *p, const float *pixels, int n_img, int mode, be_mat feats)
{
    if (n_img == 0) return 0;
    if (mode & TRAIN_WITH_VISION) return vision_forward_train(p->m, pixels, n_img, &p->vision, feats);
    if (mode & TRAIN_WITH_PROJECTOR)
        return vision_forward_train_what(p->m, pixels, n_img, VISION_TRAIN_PROJECTOR, &p->vision, feats);
    return llava_image_features(p->m, pixels, n_img, feats);
}

/* The batch row holding position j of sequence s: its own row, or for a
 * shared prompt position, the row of the sequence it shares it with. */
static int64_t seq_row(const train_pass *p, const train_seq *seqs, const llama_seq *ls, int s,
                       int64_t j)
{
    int of = p->seq_prefix[s];
    if (of < 0) return ls[s].row0 + j;
    return j < seqs[s].n_prompt ? ls[of].row0 + j : ls[s].row0 + j - seqs[s].n_prompt;
}

/* Which rows predict which tokens; the SIMA rule's targets need the logits. */
static void index_tokens(train_pass *p, const train_seq *seqs, int n_seqs, llama_seq *ls)
{
    p->tok_off = xcalloc((size_t)n_seqs + 1, sizeof *p->tok_off);
    for (int s = 0; s < n_seqs; s++) p->tok_off[s + 1] = p->tok_off[s] + seqs[s].n - seqs[s].n_prompt;
    int64_t n_tok = p->tok_off[n_seqs];
    p->rows = xmalloc(sizeof(int64_t) * (size_t)(n_tok ? n_tok : 1));
    p->targets = xmalloc(sizeof(int32_t) * (size_t)(n_tok ? n_tok : 1));
    for (int s = 0; s < n_seqs; s++)
        for (int64_t j = seqs[s].n_prompt; j < seqs[s].n; j++) {
            int64_t t = p->tok_off[s] + j - seqs[s].n_prompt;
            p->rows[t] = seq_row(p, seqs, ls, s, j - 1);    /* row j-1 predicts token j */
            p->targets[t] = seqs[s].ids[j];
        }
}

static void score_tokens(train_pass *p, const train_seq *seqs, int n_seqs)
{
    be_backend *be = p->m->be;
    int64_t n_tok = p->tok_off[n_seqs], V = p->m->cfg.text.vocab_size, D = p->m->cfg.text.hidden_size;
    be_mat rows = be->mat_new(be, n_tok, D);
    for (int64_t t = 0; t < n_tok; t++) be->copy(be, be_rows(rows, t, 1), be_rows(p->hidden, p->rows[t], 1));
    p->logits = be->mat_new(be, n_tok, V);
    llama_logits(p->m, rows, p->logits);
    be->mat_free(be, &rows);
    for (int s = 0; s < n_seqs; s++) {
        if (!seqs[s].sima_rule) continue;
        int64_t t0 = p->tok_off[s], n = p->tok_off[s + 1] - t0;
        be->best_other_token(be, be_rows(p->logits, t0, n), p->targets + t0, p->targets + t0);
    }
    p->tok_logp = xmalloc(sizeof(float) * (size_t)(n_tok ? n_tok : 1));
    be->token_logprobs(be, p->logits, p->targets, p->tok_logp, NULL);
    p->seq_logp = xcalloc((size_t)n_seqs, sizeof(double));
    for (int s = 0; s < n_seqs; s++)
        for (int64_t t = p->tok_off[s]; t < p->tok_off[s + 1]; t++) p->seq_logp[s] += p->tok_logp[t];
}

/* Per-row dropout settings of the batch (rows of sequence s take its). */
static llama_dropout batch_dropout(const train_seq *seqs, int n_seqs, const llama_seq *ls, int64_t R)
{
    float *p = xmalloc(sizeof(float) * (size_t)(R ? R : 1));
    uint64_t *seed = xmalloc(sizeof(uint64_t) * (size_t)(R ? R : 1));
    for (int s = 0; s < n_seqs; s++)
        for (int64_t j = 0; j < ls[s].n_new; j++) {
            p[ls[s].row0 + j] = seqs[s].lora_dropout;
            seed[ls[s].row0 + j] = seqs[s].dropout_seed;
        }
    return (llama_dropout){p, seed};
}

static int forward_kept(llava_model *m, const train_seq *seqs, int n_seqs, const llama_seq *ls,
                        const llama_batch *b, const llama_prefix *prefix, train_pass *p)
{
    llama_dropout d = batch_dropout(seqs, n_seqs, ls, b->n_rows);
    llama_train_opts o = {&d, prefix, true};
    int rc = llama_forward_train_ex(m, b, &o, &p->tape, p->hidden);
    free((void *)d.p);
    free((void *)d.seed);
    return rc;
}

/* Score-only: the engine's forward, or the training forward without its
 * tape when prompts are shared (the engine's forward has no prefixes). */
static int forward_scores(llava_model *m, const llama_batch *b, const llama_prefix *prefix,
                          train_pass *p)
{
    if (p->rows_saved == 0) return llama_forward(m, b, p->hidden);
    llama_train_opts o = {NULL, prefix, false};
    return llama_forward_train_ex(m, b, &o, NULL, p->hidden);
}

/* Rows of each sequence in the batch (response only when its prompt is
 * shared) and their ids; fills p->seq_image, p->seq_prefix, p->rows_saved. */
static int32_t *pack_batch(train_pass *p, const train_seq *seqs, int n_seqs,
                           const llama_prefix *prefix, llama_seq *ls, int64_t *R, int64_t *n_with)
{
    *R = *n_with = 0;
    for (int s = 0; s < n_seqs; s++) {
        bool shared = prefix[s].n_pre > 0;
        p->seq_prefix[s] = shared ? prefix[s].of : -1;
        p->seq_image[s] = shared ? -1 : seqs[s].image;
        int64_t skip = shared ? seqs[s].n_prompt : 0;
        ls[s] = (llama_seq){*R, seqs[s].n - skip, NULL, p->seq_image[s] >= 0};
        *R += seqs[s].n - skip;
        *n_with += p->seq_image[s] >= 0;
        p->rows_saved += skip;
    }
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)(*R ? *R : 1));
    for (int s = 0; s < n_seqs; s++)
        memcpy(ids + ls[s].row0, seqs[s].ids + (seqs[s].n - ls[s].n_new),
               sizeof(int32_t) * (size_t)ls[s].n_new);
    return ids;
}

int train_pass_run(llava_model *m, const train_seq *seqs, int n_seqs, const float *pixels,
                   int n_img, int mode, train_pass *p)
{
    memset(p, 0, sizeof *p);
    p->m = m;
    p->n_seqs = n_seqs;
    p->keep = mode != TRAIN_SCORE_ONLY;
    if (check_seqs(m, seqs, n_seqs, n_img) != 0) return -1;
    be_backend *be = m->be;
    int64_t D = m->cfg.text.hidden_size, N = m->image_tokens, R, n_with;
    size_t n_alloc = (size_t)(n_seqs ? n_seqs : 1);
    llama_seq *ls = xcalloc(n_alloc, sizeof *ls);
    llama_prefix *prefix = xcalloc(n_alloc, sizeof *prefix);
    p->seq_image = xmalloc(sizeof(int) * n_alloc);
    p->seq_prefix = xmalloc(sizeof(int) * n_alloc);
    find_shared_prompts(seqs, n_seqs, p->keep, m->cfg.image_token_index, prefix);
    int32_t *ids = pack_batch(p, seqs, n_seqs, prefix, ls, &R, &n_with);
    p->n_img = (mode & (TRAIN_WITH_VISION | TRAIN_WITH_PROJECTOR)) ? n_img : 0;

    be_mat per_img = be->mat_new(be, (int64_t)n_img * N, D), feats = be->mat_new(be, n_with * N, D);
    int rc = image_features(p, pixels, n_img, mode, per_img);
    if (rc == 0) gather_features(be, per_img, p->seq_image, n_seqs, (int)N, feats);
    llama_batch b = {R, ids, n_seqs, ls, feats};
    p->hidden = be->mat_new(be, R, D);
    if (rc == 0)
        rc = p->keep ? forward_kept(m, seqs, n_seqs, ls, &b, prefix, p) : forward_scores(m, &b, prefix, p);
    if (rc == 0) {
        index_tokens(p, seqs, n_seqs, ls);
        score_tokens(p, seqs, n_seqs);
    }
    be->mat_free(be, &per_img);
    be->mat_free(be, &feats);
    free(ids);
    free(ls);
    free(prefix);
    if (rc != 0) train_pass_free(p);
    return rc;
}

int train_pass_backward(train_pass *p, const float *dtok, llama_grads *lg, vision_grads *vg)
{
    if (!p->keep) return ERR("train_pass_backward: the pass ran without keeping its activations");
    llava_model *m = p->m;
    be_backend *be = m->be;
    int64_t n_tok = p->tok_off[p->n_seqs], D = m->cfg.text.hidden_size, N = m->image_tokens;
    /* logits -> hidden rows -> dhidden [R, D] */
    be_mat dlogits = be->mat_new(be, n_tok, p->logits.cols), drows = be->mat_new(be, n_tok, D);
    be->token_logprobs_backward(be, dlogits, p->logits, p->targets, dtok);
    be->linear_dx(be, drows, dlogits, &m->lm.lm_head);
    if (lg && lg->lm_head.data) {
        be_mat rows = be->mat_new(be, n_tok, D), none = {0};
        for (int64_t t = 0; t < n_tok; t++) be->copy(be, be_rows(rows, t, 1), be_rows(p->hidden, p->rows[t], 1));
        be->linear_dw(be, lg->lm_head, none, dlogits, rows);
        be->mat_free(be, &rows);
    }
    be->mat_free(be, &dlogits);
    be_mat dhidden = be->mat_new(be, p->hidden.rows, D);
    for (int64_t t = 0; t < n_tok; t++) be->add(be, be_rows(dhidden, p->rows[t], 1), be_rows(drows, t, 1));
    be->mat_free(be, &drows);

    be_mat dimage = {0};
    if (p->n_img > 0) dimage = be->mat_new(be, p->tape.n_image_rows, D);
    llama_backward(m, &p->tape, dhidden, lg, dimage);
    be->mat_free(be, &dhidden);
    int rc = 0;
    if (p->n_img > 0) {
        /* back from the batch's feature rows to each image's block */
        be_mat dper = be->mat_new(be, (int64_t)p->n_img * N, D);
        int64_t f = 0;
        for (int s = 0; s < p->n_seqs; s++) {
            if (p->seq_image[s] < 0) continue;
            be->add(be, be_rows(dper, (int64_t)p->seq_image[s] * N, N), be_rows(dimage, f, N));
            f += N;
        }
        rc = vg ? vision_backward(m, &p->vision, dper, vg) : ERR("train_pass_backward: no vision gradients given");
        be->mat_free(be, &dper);
        be->mat_free(be, &dimage);
    }
    return rc;
}

void train_pass_free(train_pass *p)
{
    if (!p->m) return;
    be_backend *be = p->m->be;
    if (p->tape.layers) llama_tape_free(p->m, &p->tape);
    if (p->vision.layers || p->vision.sel.data) vision_tape_free(p->m, &p->vision);
    if (p->hidden.data) be->mat_free(be, &p->hidden);
    if (p->logits.data) be->mat_free(be, &p->logits);
    free(p->tok_off);
    free(p->tok_logp);
    free(p->seq_logp);
    free(p->seq_image);
    free(p->seq_prefix);
    free(p->rows);
    free(p->targets);
    memset(p, 0, sizeof *p);
}
