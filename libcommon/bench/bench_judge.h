/* bench_judge.h — benchmarks whose score comes from a judge model
 * (LLaVA-Bench in-the-wild, MM-Vet, MMHal-Bench, Mementos). Without a judge
 * they are reported "not scored", with no metric at all: never a number
 * that was not produced by the judge. */
#ifndef SIMA_BENCH_JUDGE_H
#define SIMA_BENCH_JUDGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Is this suite name ("llava_bench", "mmvet", "mmhal", "mementos") one
 * that needs a judge? */
bool bench_is_judge_scored(const char *name);

/* The results-JSON entry of a judge-scored benchmark run without a judge:
 *   {"benchmark": name, "status": "not scored", "scored": false,
 *    "reason": "...", "answered": n}
 * with no metric fields. NULL when out of memory. */
json_t *bench_judge_not_scored(const char *name, size_t answered);

/* ---- scoring with a judge model (bench_judge_run) -------------------------
 * Online: each sample's judge prompt (built from the prompt files in
 * prompts_dir, which a user can replace) goes to an OpenAI-compatible
 * chat-completions endpoint, with retries, a rate limit and a cache of the
 * judgements (a reply already in the cache is never asked again, so a rerun
 * after a kill continues). Offline: the requests are written as JSONL for a
 * judge run elsewhere; the replies are read back from JSONL and scored. */
typedef enum {
    BENCH_JUDGE_NONE = 0,        /* report "not scored" */
    BENCH_JUDGE_ONLINE,          /* ask the endpoint */
    BENCH_JUDGE_WRITE_REQUESTS,  /* write requests_path; report "awaiting judge" */
    BENCH_JUDGE_READ_REPLIES,    /* score from replies_path */
} bench_judge_mode;

typedef struct {
    bench_judge_mode mode;
    const char *url;             /* chat-completions URL (SIMA_JUDGE_URL) */
    const char *api_key;         /* bearer key (SIMA_JUDGE_API_KEY); NULL: none */
    const char *model;           /* judge model name sent in the request */
    double max_requests_per_s;   /* rate limit; <= 0: none */
    int max_retries;             /* per request, on network errors, 429 and 5xx */
    double timeout_s;            /* per request */
    const char *prompts_dir;     /* judge prompt files; NULL: $SIMA_DATA_DIR/judges */
    const char *cache_path;      /* JSONL cache of judgements (appended) */
    const char *requests_path;   /* BENCH_JUDGE_WRITE_REQUESTS: JSONL out */
    const char *replies_path;    /* BENCH_JUDGE_READ_REPLIES: JSONL in */
} bench_judge_opts;

/* Scores one judge-scored benchmark. questions: array of question objects
 * (bench_source.h fields), answers[i] the model's answer to questions[i].
 * On success *entry is the benchmark's results-JSON entry (metrics, counts,
 * judge model; or the "not scored" / "awaiting judge" status) and
 * samples[i] a new object with the sample's judgement and score fields
 * (the caller owns both). answers[i] NULL: question i was not answered (not
 * judged, not counted as answered). Errors name the file or endpoint and the
 * problem; *entry and samples[i] are then NULL. A failed online run keeps
 * the judgements it got in the cache, so a rerun continues from there.
 *
 * Entry fields: "benchmark", "status" ("scored", "partially scored" when
 * some answered samples have no reply or an unreadable one, "not scored",
 * "awaiting judge"), "scored", "answered", "judged" (samples with a judge
 * reply), "unparsed" (replies the benchmark's rule could not read),
 * "unjudged" (answered, no reply), "judge_model", "judge_prompt" (file),
 * "judge_prompt_hash" (FNV-1a 64 of the prompt file), and the metrics over
 * the scored samples only ("samples" of them):
 *   llava_bench  mean_reference, mean_model (1-10), relative_score
 *                (100 * mean_model / mean_reference), "categories" {same}
 *   mmvet        score (100 * mean of the 0-1 scores), "capabilities"
 *                {name: {samples, score}}
 *   mmhal        average_score (0-6), hallucination_rate (share of ratings
 *                below 3, 0-1), "question_types" {type: {samples, average_score}}
 *   mementos     object_/behaviour_ precision, recall, f1: per-sample values
 *                averaged over the samples, in percent
 * Offline, custom_id = "BENCH/QUESTION_ID/INDEX" (INDEX: the position in
 * questions). BENCH_JUDGE_WRITE_REQUESTS rewrites requests_path keeping the
 * lines of other benchmarks, so one file can gather all four; the replies
 * file may hold every benchmark's replies. */
int bench_judge_run(const bench_judge_opts *o, const char *bench, json_t *questions,
                    const char *const *answers, json_t **entry, json_t **samples);

#endif
