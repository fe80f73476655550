/* sima-dpo-data.c — what sima-dpo trains on: the pairs (DPO) or the
 * prompts' ground truths (SFT) as whole sequences, each epoch's order,
 * the pixels of a micro-batch's images, and the reference log-probs
 * scored once with the base model. */
#define _GNU_SOURCE
#include "sima-dpo.h"

#include "chat.h"
#include "chunks.h"
#include "err.h"
#include "log.h"
#include "pairs.h"
#include "prompts.h"
#include "sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int32_t *concat_ids(const int32_t *a, int64_t na, const int32_t *b, int64_t nb)
{
    int32_t *s = xmalloc(sizeof(int32_t) * (size_t)(na + nb > 0 ? na + nb : 1));
    memcpy(s, a, sizeof(int32_t) * (size_t)na);
    memcpy(s + na, b, sizeof(int32_t) * (size_t)nb);
    return s;
}

static void data_from_rows(const pairs_rows *r, dpo_data *d)
{
    d->n = r->n;
    d->pair = xcalloc((size_t)(r->n ? r->n : 1), sizeof *d->pair);
    d->image_row = xcalloc((size_t)(r->n ? r->n : 1), sizeof *d->image_row);
    for (int64_t i = 0; i < r->n; i++) {
        int64_t np, nc, nr;
        const int32_t *p = pairs_ids(r, PAIRS_PROMPT_IDS, i, &np);
        const int32_t *c = pairs_ids(r, PAIRS_CHOSEN_IDS, i, &nc);
        const int32_t *j = pairs_ids(r, PAIRS_REJECTED_IDS, i, &nr);
        dpo_pair *q = &d->pair[i];
        q->chosen = concat_ids(p, np, c, nc);
        q->rejected = concat_ids(p, np, j, nr);
        q->n_chosen = np + nc;
        q->n_rejected = np + nr;
        q->n_prompt = np;
        q->image = -1;
        /* NaN in the file: not computed, the adapter-off model scores them */
        q->has_ref = !isnan(r->ref_chosen_logp[i]) && !isnan(r->ref_rejected_logp[i]);
        q->ref_chosen = r->ref_chosen_logp[i];
        q->ref_rejected = r->ref_rejected_logp[i];
        d->image_row[i] = r->image[i];
    }
}

int data_load(const char *path, dpo_data *d)
{
    h5io_file f;
    pairs_rows rows;
    memset(d, 0, sizeof *d);
    if (h5io_open(&f, path, MPI_COMM_SELF) != 0) return -1;
    int rc = h5io_require_schema(&f, PAIRS_SCHEMA, PAIRS_SCHEMA_VERSION);
    if (rc == 0) rc = pairs_read(&f, &rows);
    if (rc == 0) {
        d->identity = chk_input_identity(&f, path, rows.n);
        data_from_rows(&rows, d);
        pairs_free(&rows);
        if (d->n == 0) rc = ERR("%s: no pairs to train on", path);
    }
    h5io_close(&f);
    return rc;
}

/* Only whitespace (or nothing): no answer to train on. */
static bool blank(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return *s == 0;
}

/* Prompt row `row` as an SFT sequence: the chat prompt with its question
 * (and image), the ground truth's tokens, EOS. *skip when it has no
 * ground truth. q->ids malloc'd. */
static int sft_sequence(h5io_file *f, int64_t row, const chat_template *tpl, const sess_model *s,
                        train_seq *q, int64_t *image, bool *skip)
{
    char *question = NULL, *truth = NULL;
    tok_ids ids = {0};
    const cfg_model *cfg = &s->m->cfg;
    int rc = prm_text(f, "question", row, &question);
    if (rc == 0) rc = prm_text(f, "ground_truth", row, &truth);
    if (rc == 0) rc = prm_image_index(f, row, image);
    *skip = rc == 0 && blank(truth);
    if (rc == 0 && !*skip)
        rc = chat_prompt_ids(tpl, s->tok, question, *image >= 0, cfg->image_token_index,
                             cfg->image_seq_length, &ids);
    int64_t n_prompt = (int64_t)ids.n;
    if (rc == 0 && !*skip) rc = tok_encode_plain(s->tok, truth, strlen(truth), &ids);
    if (rc == 0 && !*skip) {
        tok_ids_push(&ids, cfg->text.eos_token_id);
        *q = (train_seq){ids.ids, (int64_t)ids.n, n_prompt, -1, false, 0, 0};
        ids.ids = NULL;
    }
    if (rc != 0) err_context("prompt row %lld", (long long)row);
    tok_ids_free(&ids);
    free(question);
    free(truth);
    return rc;
}

/* SFT items: every row of the (open) prompts file with a ground truth. */
int sft_data_load(h5io_file *f, const char *path, int64_t n_rows, const char *template_name,
                         const sess_model *s, dpo_data *d)
{
    chat_template tpl;
    memset(d, 0, sizeof *d);
    if (chat_template_load(template_name, &tpl) != 0) return -1;
    d->seq = xcalloc((size_t)(n_rows ? n_rows : 1), sizeof *d->seq);
    d->image_row = xcalloc((size_t)(n_rows ? n_rows : 1), sizeof *d->image_row);
    int rc = 0;
    for (int64_t row = 0; rc == 0 && row < n_rows; row++) {
        bool skip;
        rc = sft_sequence(f, row, &tpl, s, &d->seq[d->n], &d->image_row[d->n], &skip);
        if (rc == 0 && !skip) d->n++;
    }
    chat_template_free(&tpl);
    if (rc == 0) d->identity = chk_input_identity(f, path, d->n);
    if (rc == 0 && d->n == 0) rc = ERR("%s: no prompt has a ground truth to train on", path);
    return rc;
}

/* What an item weighs in its batch's mean loss: DPO one per pair, SFT its
 * response tokens. */
double item_weight(const dpo_data *d, int64_t i)
{
    return d->seq ? (double)(d->seq[i].n - d->seq[i].n_prompt) : 1.0;
}

void data_free(dpo_data *d)
{
    for (int64_t i = 0; d->pair && i < d->n; i++) {
        free((void *)d->pair[i].chosen);
        free((void *)d->pair[i].rejected);
    }
    for (int64_t i = 0; d->seq && i < d->n; i++) free((void *)d->seq[i].ids);
    free(d->pair);
    free(d->seq);
    free(d->image_row);
    free(d->identity);
}

/* Epoch e's order of the pairs: Fisher-Yates from (seed, e), the same on
 * every rank and on resume. */
void epoch_order(uint64_t seed, int64_t epoch, int64_t n, int64_t *order)
{
    smp_rng rng;
    smp_rng_seed(&rng, smp_derive_seed(seed, 0x64706f /* "dpo" */, (uint64_t)epoch));
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(smp_rng_uniform(&rng) * (double)(i + 1));
        int64_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

/* Pixels of the batch's images (each distinct row once); image[i] gets
 * item i's index among them (-1: none). */
int batch_pixels(trainer *tr, const int64_t *items, int n, int *image, float **pixels,
                        int *n_img)
{
    int S = tr->s.m->cfg.vision.image_size;
    size_t per = (size_t)3 * S * S;
    int64_t *rows = xcalloc((size_t)n, sizeof *rows);
    *pixels = xmalloc(sizeof(float) * per * (size_t)n);
    *n_img = 0;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        int64_t row = tr->data.image_row[items[i]];
        image[i] = -1;
        if (row < 0) continue;
        int k = 0;
        while (k < *n_img && rows[k] != row) k++;
        if (k == *n_img) {
            float *px = NULL;
            rc = prm_image_pixels(&tr->prompts, row, &tr->s.pc, tr->s.mode, &px);
            if (rc == 0 && !px) rc = ERR("image row %lld: no pixels", (long long)row);
            if (rc == 0) memcpy(*pixels + per * (size_t)k, px, sizeof(float) * per);
            free(px);
            rows[(*n_img)++] = row;
        }
        image[i] = k;
    }
    free(rows);
    return rc;
}

/* ---------------------------------------------------------- reference -- */

/* DPO scores the reference log-probs once, before training, wherever the
 * pairs file has none: once per pair instead of once per pair and epoch,
 * and the base model (adapter off, base projector) cannot be recovered
 * from the policy once the projector or the weights change. */
bool need_ref_once(const trainer *tr)
{
    return tr->a->mode == MODE_DPO;
}

/* Pair i's reference log-probs, scored alone (so the values do not depend
 * on how pairs are spread over ranks), into r[0..1]. */
static int score_ref_pair(trainer *tr, int64_t i, double *r)
{
    const dpo_pair *q = &tr->data.pair[i];
    if (q->has_ref) {
        r[0] = q->ref_chosen;
        r[1] = q->ref_rejected;
        return 0;
    }
    int image;
    float *pixels = NULL;
    int n_img = 0;
    int rc = batch_pixels(tr, &i, 1, &image, &pixels, &n_img);
    train_seq seqs[2] = {{q->chosen, q->n_chosen, q->n_prompt, image, false, 0, 0},
                         {q->rejected, q->n_rejected, q->n_prompt, image, tr->opts.sima_rule, 0, 0}};
    train_pass p;
    if (rc == 0) rc = train_pass_run(tr->s.m, seqs, 2, pixels, n_img, TRAIN_SCORE_ONLY, &p);
    if (rc == 0) {
        r[0] = p.seq_logp[0];
        r[1] = p.seq_logp[1];
        train_pass_free(&p);
    }
    if (rc != 0) err_context("reference log-probs of pair %lld", (long long)i);
    free(pixels);
    return rc;
}

/* Every pair's reference log-probs with the base model: rank r scores the
 * r-th block of pairs, MPI_Allgatherv gives everyone all. Collective. */
void score_references(trainer *tr)
{
    int size = tr->t->size, rank = tr->t->rank;
    int64_t n = tr->data.n;
    int *counts = xcalloc((size_t)size, sizeof *counts), *displs = xcalloc((size_t)size, sizeof *displs);
    for (int r = 0; r < size; r++) {
        int64_t b0 = n * r / size, b1 = n * (r + 1) / size;
        counts[r] = (int)(2 * (b1 - b0));
        displs[r] = (int)(2 * b0);
    }
    double *all = xcalloc((size_t)(2 * n + 1), sizeof *all);
    double t0 = MPI_Wtime();
    bool was = tr->s.m->lm.lora_off;
    tr->s.m->lm.lora_off = true;
    int rc = 0;
    for (int64_t i = n * rank / size; rc == 0 && i < n * (rank + 1) / size; i++)
        rc = score_ref_pair(tr, i, all + 2 * i);
    tr->s.m->lm.lora_off = was;
    tool_agree(tr->t, rc);
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, counts, displs, MPI_DOUBLE,
                       MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = ERR("MPI_Allgatherv of the reference log-probs failed");
    tool_agree(tr->t, rc);
    for (int64_t i = 0; i < n; i++) {
        tr->data.pair[i].ref_chosen = all[2 * i];
        tr->data.pair[i].ref_rejected = all[2 * i + 1];
        tr->data.pair[i].has_ref = true;
    }
    log_info("reference log-probs of %lld pairs scored with the base model in %.1f s", (long long)n,
             MPI_Wtime() - t0);
    free(all);
    free(counts);
    free(displs);
}

