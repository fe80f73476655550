/* sima-bench.h — the parts of the sima-bench runner shared by its files:
 * sima-bench.c (options, generation, main), sima-bench-questions.c
 * (questions from JSONL or the official files, prompts, decoding limits),
 * sima-bench-score.c (scoring, results.json, samples.jsonl, samples.h5),
 * sima-bench-answers.c (sima-bench score: an answers file scored without a
 * model) and sima-bench-compare.c (sima-bench compare). */
#ifndef SIMA_TOOLS_SIMA_BENCH_H
#define SIMA_TOOLS_SIMA_BENCH_H

#include "backend.h"
#include "bench_judge.h"
#include "h5io.h"
#include "tool.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *model, *adapter, *questions, *suites, *data_root, *out;
    const char *template_name, *preprocess, *chair_synonyms;
    int64_t limit;
    int max_new;                 /* --max-new-tokens; 0: per benchmark */
    int batch, chunk, resume, overwrite;
    double progress_s;
    bench_judge_mode judge;
    const char *judge_replies, *judge_model;
    double judge_rate;
    be_open_opts dev;            /* --device, --dtype */
    const char *answers;         /* sima-bench score: the answers file (no model) */
} bench_args;

/* One question: borrowed views of its JSON object's fields. */
typedef struct {
    json_t *obj;                 /* the question object (owned by the set) */
    const char *id, *bench, *question;
    const char *image;           /* absolute or relative to cwd; NULL: image_b64 */
    const char *image_b64;       /* base64 image bytes (MMBench TSV) */
    const char *label, *split;   /* pope, mme (label) */
    const char *subtask;         /* mme */
    json_t *answers;             /* vqa-like: array of strings (NULL: not scored) */
    const char *answer;          /* gqa: gold answer; choice benchmarks: gold letter */
    json_t *options;             /* choice benchmarks: option texts, A first */
    json_t *objects;             /* chair: ground-truth category names */
    long long index;             /* mmbench: circular index (rotations: + k * 10^6) */
} question;

typedef struct {
    json_t *objs;                /* array of the question objects */
    question *q;                 /* [n] */
    int64_t n;
    json_t *missing;             /* benchmark -> questions left out: image missing */
    json_t *first_missing;       /* benchmark -> the first missing image's path */
    uint64_t hash;               /* digest of the questions (run key) */
} question_set;

/* ---- sima-bench-questions.c ---- */

extern const char BQ_SHORT_ANSWER[];   /* LLaVA-1.5's short-answer instruction */
extern const char BQ_CHOICE_ANSWER[];  /* and its multiple-choice one */

bool bq_is_choice(const char *bench);
bool bq_is_vqa(const char *bench);        /* vqa, textvqa, vizwiz, vqav2 */
bool bq_is_short(const char *bench);      /* short-answer instruction */
/* The questions of --questions or --suite, the same on every rank
 * (collective): rank 0 reads and checks the files, the others parse its
 * compact copy (broadcast). Questions whose image is missing are left out
 * and counted in qs->missing. On an error every rank exits 1 with rank 0's
 * message. */
void bq_load(tool_ctx *t, const bench_args *a, question_set *qs);
void bq_free(question_set *qs);
/* The prompt the model sees, as LLaVA-1.5's evaluation builds it (malloc'd). */
char *bq_prompt(const question *q);
/* Longest answer for a question: --max-new-tokens, else its benchmark's. */
int bq_max_new(const bench_args *a, const char *bench);
/* "bench=N,..." of the per-benchmark limits (malloc'd), for run keys. */
char *bq_max_new_table(void);
/* The per-benchmark limits of the benchmarks present, as a JSON object. */
json_t *bq_max_new_json(const bench_args *a, const question_set *qs);
/* Calls take(ctx, object) for each JSON object line of text (the file
 * path's contents, cut up in place; blank lines skipped); take owns the
 * object and returns 0 to go on, 1 to stop, -1 on an error (err set; the
 * file and line are added). A line that is not an object is an error.
 * Returns 0 or -1. */
int bq_jsonl_each(const char *path, char *text, int (*take)(void *ctx, json_t *o), void *ctx);
/* Decodes base64 (RFC 4648, whitespace ignored) into a malloc'd buffer. */
int bq_base64_decode(const char *text, unsigned char **out, size_t *len);

/* ---- sima-bench.c: options shared with sima-bench score ---- */

/* --judge MODE; a usage error for an unknown mode. */
bench_judge_mode bench_parse_judge(tool_ctx *t, const char *s);
/* The judge mode's default (online when SIMA_JUDGE_URL is set) and its
 * option checks; judge_set: --judge was given. */
void bench_check_judge(tool_ctx *t, bench_args *a, int judge_set);
/* --suite: a usage error for a name no reader knows. */
void bench_check_suites(tool_ctx *t, const char *list);

/* ---- sima-bench.c: answer rows (OUT/answers.h5 and its parts) ---- */

/* Per answer: question row, new tokens, benchmark, question id, text. The
 * strings are concatenated in row order; *_len give each row's bytes. */
typedef struct {
    int64_t n, cap;
    int64_t *row, *tokens;                  /* [n] */
    int64_t *bench_len, *id_len, *text_len; /* [n] */
    char *benches, *ids, *text;
    int64_t benches_total, benches_cap, ids_total, ids_cap, text_total, text_cap;
} answer_rows;

/* Reads every row of an answers file (or part) into r. */
int ba_read(h5io_file *f, answer_rows *r);
void ba_free(answer_rows *r);
/* Appends one answer (text_len bytes of text) to question row `row`. */
void ba_push(answer_rows *r, int64_t row, const char *bench, const char *id, const char *text,
             int64_t text_len, int64_t tokens);

/* ---- sima-bench-score.c ---- */

typedef struct bench_scorer bench_scorer;
/* Checks what scoring will need before any generation: the CHAIR synonym
 * table (and that every ground-truth object is in it), the judge settings.
 * Rank 0 only. */
int bs_prepare(const bench_args *a, const question_set *qs, bench_scorer **out);
void bs_free(bench_scorer *s);
/* Rank 0: joins OUT/answers.h5 to the questions by id, scores them and
 * writes OUT/results.json, OUT/samples.jsonl and OUT/samples.h5. */
int bs_score_all(bench_scorer *s, tool_ctx *t, const bench_args *a, const question_set *qs,
                 const char *answers_path, const char *model_hash, const char *adapter_hash,
                 const char *run_key);
/* The same from answer rows already in memory (sima-bench score). */
int bs_score_rows(bench_scorer *s, tool_ctx *t, const bench_args *a, const question_set *qs,
                  const answer_rows *r, const char *model_hash, const char *adapter_hash,
                  const char *run_key);

/* ---- sima-bench-answers.c ---- */

/* sima-bench score --questions Q.jsonl --answers A.jsonl --out DIR; argv[0]
 * is "score". */
int bsa_main(tool_ctx *t, int argc, char **argv);

/* ---- sima-bench-compare.c ---- */

/* sima-bench compare A/ B/ [--json FILE]; argv[0] is "compare". */
int bc_main(tool_ctx *t, int argc, char **argv);

#endif
