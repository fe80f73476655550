/* generate.h — engine layer: batched generation and scoring over a LLaVA model.
 *
 * Many sequences run at once, each with its own prompt, images, KV cache,
 * sampling settings, seed and stopping rule. Up to max_batch sequences are
 * active; new ones are prefilled (several per ragged batch) as others finish,
 * then all active sequences decode one token per step together. A sequence's
 * output does not depend on what else is in the batch.
 */
#ifndef SIMA_ENGINE_GENERATE_H
#define SIMA_ENGINE_GENERATE_H

#include "llava.h"
#include "sampling.h"

typedef enum {
    GEN_EOS = 1,        /* produced the end-of-sequence token (kept in the output) */
    GEN_LENGTH = 2,     /* reached max_new_tokens */
    GEN_CONTEXT = 3,    /* reached the model's max_position_embeddings */
} gen_finish;

const char *gen_finish_name(gen_finish f); /* "eos", "length", "context" */

typedef struct {
    const int32_t *prompt;  /* [n_prompt] ids, image placeholders expanded */
    int64_t n_prompt;
    const float *pixels;    /* [n_images, 3, S, S] preprocessed, or NULL */
    int n_images;
    smp_params sampling;    /* temperature <= 0: greedy */
    uint64_t seed;
    int max_new_tokens;
    int32_t eos_id;         /* < 0: the model's eos_token_id */
} gen_request;

typedef struct {
    int32_t *tokens;        /* [n] generated ids (EOS included when produced) */
    float *logprobs;        /* [n] log p(token) under the model, before temperature */
    int64_t n;
    double sum_logprob;
    gen_finish finish;
} gen_output;

void gen_output_free(gen_output *o);

typedef struct {
    int max_batch;              /* active sequences (default 8) */
    int64_t max_prefill_rows;   /* rows per prefill batch (default 2048) */
    /* Called as each request finishes (in completion order), before its
     * output is handed back; may be NULL. Return non-zero to stop early. */
    int (*on_done)(void *ctx, int request, const gen_output *out);
    /* Called after every prefill or decode step (progress, signals); may
     * be NULL. Return non-zero to stop early. */
    int (*on_step)(void *ctx);
    void *ctx;
} gen_options;

void gen_options_default(gen_options *o);

/* Run n requests; out[i] receives request i's result. */
int gen_generate(llava_model *m, const gen_request *req, int n, const gen_options *opt,
                 gen_output *out);

/* Scoring: log-probs of a continuation given a prompt, without generating. */
typedef struct {
    const int32_t *ids;     /* [n_ids] prompt followed by continuation */
    int64_t n_ids;
    int64_t n_prompt;       /* the continuation is ids[n_prompt .. n_ids) */
    const float *pixels;    /* [n_images, 3, S, S] or NULL */
    int n_images;
} gen_score_request;

/* logp[i] is malloc'd [n_ids - n_prompt]: log p(ids[t] | ids[< t]) for each
 * continuation token t. Sequences are batched up to max_prefill_rows rows. */
int gen_score(llava_model *m, const gen_score_request *req, int n, const gen_options *opt,
              float **logp);

#endif
