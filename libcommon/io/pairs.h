/* pairs.h — io layer: rows of a sima.pairs file (data/schemas/pairs.md) in
 * memory, their collective write and whole read; and the choice of pairs
 * from a responses and a verdicts file (pairs_select), with its filters.
 *
 * A pair is (prompt, chosen candidate, rejected candidate) with everything
 * DPO training needs: the prompt's token ids, the two responses' token ids
 * (EOS last), the image row, the texts for export, the verdict details and,
 * optionally, the reference model's summed log-probs. */
#ifndef SIMA_IO_PAIRS_H
#define SIMA_IO_PAIRS_H

#include "columns.h"
#include "h5io.h"
#include "responses.h"
#include "verdicts.h"

#define PAIRS_SCHEMA "sima.pairs"
#define PAIRS_SCHEMA_VERSION 1

/* The fixed-size fields of one pair. */
typedef struct {
    int64_t prompt;             /* row in the prompts file */
    int32_t chosen, rejected;   /* candidate indices */
    int8_t chosen_kind;         /* RESP_GREEDY | RESP_SAMPLED */
    int64_t image;              /* row of the prompts file's /images, -1 none */
    int8_t verdict, order;      /* of the judgement the pair was taken from */
    int8_t consistent;          /* 1 both orders agree, -1 judged in one order */
    int64_t verdict_row;        /* that judgement's row in the verdicts file */
    int64_t verdict_row_swapped;/* the other order's row, -1 none */
    double ref_chosen_logp, ref_rejected_logp; /* NaN when not computed */
} pairs_row;

/* Ragged columns: token ids (int32) ... */
enum { PAIRS_PROMPT_IDS, PAIRS_CHOSEN_IDS, PAIRS_REJECTED_IDS, PAIRS_N_IDS };
/* ... and texts (UTF-8). */
enum { PAIRS_ID, PAIRS_QUESTION, PAIRS_CHOSEN_TEXT, PAIRS_REJECTED_TEXT, PAIRS_IMAGE_NAME,
       PAIRS_N_TEXTS };

/* A ragged column in memory: row i is elements [off[i], off[i+1]). */
typedef cols_ragged pairs_ragged;

typedef struct {
    int64_t n, cap;
    int64_t *prompt, *image, *verdict_row, *verdict_row_swapped;
    int32_t *chosen, *rejected;
    int8_t *chosen_kind, *verdict, *order, *consistent;
    double *ref_chosen_logp, *ref_rejected_logp;
    pairs_ragged ids[PAIRS_N_IDS];
    pairs_ragged text[PAIRS_N_TEXTS];
} pairs_rows;

/* The file group of these rows, for the generic column functions (columns.h). */
extern const cols_table pairs_table;

typedef struct { const int32_t *v; int64_t n; } pairs_ids_in;
typedef struct { const char *s; int64_t n; } pairs_text_in;

/* Append one pair (copies everything). */
void pairs_push(pairs_rows *r, const pairs_row *row, const pairs_ids_in ids[PAIRS_N_IDS],
                const pairs_text_in text[PAIRS_N_TEXTS]);
void pairs_get(const pairs_rows *r, int64_t i, pairs_row *row);
const int32_t *pairs_ids(const pairs_rows *r, int which, int64_t i, int64_t *n);
const char *pairs_text(const pairs_rows *r, int which, int64_t i, int64_t *len);
void pairs_append(pairs_rows *dst, const pairs_rows *src);
void pairs_free(pairs_rows *r);

/* Write the /pairs group: each rank its rows, in rank order (collective). */
int pairs_write(h5io_file *f, const pairs_rows *r);
/* Read every row of a file's /pairs group. */
int pairs_read(h5io_file *f, pairs_rows *r);

/* ---------------------------------------------------------- selection -- */

/* Where each response row's tokens and text start, and a lookup by
 * (prompt, candidate). */
typedef struct {
    int64_t *tok_off, *text_off;    /* [n + 1] */
    int64_t *sorted;                /* response rows by (prompt, candidate) */
    const resp_rows *resp;
} pairs_resp_index;

void pairs_resp_index_build(pairs_resp_index *x, const resp_rows *resp);
void pairs_resp_index_free(pairs_resp_index *x);
/* Response row of (prompt, candidate), -1 if absent. */
int64_t pairs_resp_find(const pairs_resp_index *x, int64_t prompt, int32_t candidate);

/* A response's tokens with EOS appended when they do not end with it
 * (malloc'd; *n its length). */
int32_t *pairs_tokens_with_eos(const pairs_resp_index *x, int64_t row, int32_t eos, int64_t *n);

/* One pair chosen from the verdicts (before token ids are built). */
typedef struct {
    pairs_row row;                  /* ref_*_logp NaN, image -1 (filled later) */
    int64_t chosen_resp, rejected_resp; /* rows of the responses file */
} pairs_pick;

typedef struct {
    int32_t eos_id;
    int64_t max_length;             /* prompt + longer response (with EOS); <= 0: none */
    const int64_t *prompt_len;      /* [n_prompts] tokens of prompts prompt0, prompt0 + 1, ...
                                       (-1: not in the prompts file), or NULL: no length filter */
    int64_t n_prompts;
    int32_t image_token_id;         /* a response holding it is dropped; < 0: none */
    int64_t prompt0;                /* the prompt of prompt_len[0] */
    int64_t verdict_row0;           /* verd holds the verdicts file's rows from this one on */
} pairs_select_opts;

/* What selection found. A judged pair is one (prompt, unordered candidate
 * pair) of the verdicts file, judged in one or both orders. */
typedef struct {
    int64_t judged;         /* judged pairs */
    int64_t no_verdict;     /* no judgement gave a verdict (or the critic skipped it) */
    int64_t inconsistent;   /* both orders judged, not both picking the same winner */
    int64_t image_token;    /* a response holds the image token (the model cannot be fed
                               it outside the prompt: it would take image features) */
    int64_t identical;      /* chosen and rejected have the same token ids */
    int64_t too_long;       /* prompt + longer response > max_length */
    int64_t kept;
    int64_t chosen_greedy, chosen_sampled;
    double mean_chosen_len, mean_rejected_len;  /* tokens with EOS, over kept pairs */
} pairs_stats;

/* Choose the pairs: for each judged pair in order of (prompt, lower
 * candidate, higher candidate), the verdict's winner is chosen and the other
 * rejected; filters apply in the order of pairs_stats' fields. *picks is
 * malloc'd. Errors: a malformed verdicts file (a pair judged twice in one
 * order, a verdict naming a candidate absent from the responses). */
int pairs_select(const pairs_resp_index *x, const verd_rows *verd, const pairs_select_opts *o,
                 pairs_pick **picks, int64_t *n_picks, pairs_stats *st);
/* The same over a part of the verdicts file: whole prompts, verd's rows
 * being rows verdict_row0 ... of the file (pairs and messages name file
 * rows). Counts are added to *st, the mean lengths left as sums until
 * pairs_stats_finish; *picks is malloc'd. Consecutive parts in file order
 * give the picks of the whole file, in order. */
int pairs_select_part(const pairs_resp_index *x, const verd_rows *verd,
                      const pairs_select_opts *o, pairs_pick **picks, int64_t *n_picks,
                      pairs_stats *st);
/* Mean lengths from the sums pairs_select_part leaves. */
void pairs_stats_finish(pairs_stats *st);
/* A kept pick again from its judgement rows (file rows: row.verdict_row
 * and row.verdict_row_swapped, -1 when judged in one order), verd holding
 * them from verdict_row0 on and x their responses. */
int pairs_pick_rebuild(const pairs_resp_index *x, const verd_rows *verd, int64_t verdict_row0,
                       int64_t row, int64_t row_swapped, pairs_pick *p);

#endif
