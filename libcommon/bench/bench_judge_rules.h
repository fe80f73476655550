/* bench_judge_rules.h — reading a judge model's replies and turning them into
 * the judge-scored benchmarks' metrics (pure functions; calls: base, jansson).
 *
 * A reply that does not hold what the rule looks for is "unparsed": the
 * functions say so (false / -1) and never invent a score. */
#ifndef SIMA_BENCH_JUDGE_RULES_H
#define SIMA_BENCH_JUDGE_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- LLaVA-Bench (in-the-wild) ---------------------------------------------
 * The reviewer's first line holds two scores: assistant 1 (the reference
 * answer) then assistant 2 (the model's answer). As LLaVA's parse_score, the
 * first line, commas read as spaces, must split into exactly two numbers;
 * unlike its split(' '), runs of spaces count as one separator ("8, 9" is
 * accepted). Non-finite numbers are refused. */
bool bench_judge_llava_parse(const char *reply, double *ref, double *model);

/* summarize_gpt_review.py over one category (or all): the two means and the
 * relative score 100 * mean(model) / mean(reference). */
typedef struct {
    size_t n;
    double sum_ref, sum_model;
} bench_judge_llava_acc;
void bench_judge_llava_add(bench_judge_llava_acc *a, double ref, double model);
/* {"samples", "mean_reference", "mean_model", "relative_score"}; NULL when
 * the accumulator is empty (no number without a judged sample).
 * relative_score is null when mean(reference) is 0. */
json_t *bench_judge_llava_json(const bench_judge_llava_acc *a);

/* ---- MM-Vet ----------------------------------------------------------------
 * The grader answers a correctness score. As MM-Vet's mm-vet_evaluator.py
 * reads it: the text before the first space, whitespace around it removed
 * ("0.5\n" is 0.5, "0.5\nbecause" is not a number), must be a finite number
 * in [0, 1]; anything else is unparsed (the script asks the grader again,
 * up to 5 times, then scores 0; sima counts it unparsed). Leading
 * whitespace is skipped (the script would refuse it). */
bool bench_judge_mmvet_parse(const char *reply, double *score);

/* ---- MMHal-Bench -------------------------------------------------------------
 * As MMHal-Bench's eval_gpt4.py (LLaVA-RLHF Eval/eval_gpt_mmhal.py) reads the
 * reply: the ratings k in 0..6 for which "rating: k" (one space, any case)
 * occurs in it; exactly one such k is the rating ("Rating: 4 ... Rating: 4"
 * is 4; "rating: 60" holds "rating: 6"). None, or several different ones,
 * is -1 (unparsed); the script scores those 0 with a warning, sima counts
 * them unparsed and gives no score. */
int bench_judge_mmhal_parse(const char *reply);

/* ---- Mementos ----------------------------------------------------------------
 * The judge lists what the description mentions on two lines,
 *   Objects: a, b, c
 *   Behaviours: x, y        ("Behaviors:" also accepted)
 * (leading '-', '*', '#' and spaces ignored, the label case-insensitive;
 * items separated by ',' or ';'; "none" or nothing: an empty list). Both
 * lines must be present. *objects and *behaviours are new arrays of
 * normalised, de-duplicated strings (bench_judge_normalize_item). */
bool bench_judge_mementos_parse(const char *reply, json_t **objects, json_t **behaviours);

/* Lower-case (ASCII), runs of whitespace -> one space, leading/trailing
 * spaces and punctuation (.,;:!?"'`*()[]{}) removed, then one leading
 * article ("a ", "an ", "the ") removed. malloc'd; NULL when out of memory. */
char *bench_judge_normalize_item(const char *s);

/* Set precision / recall / F1 of predicted against ground-truth strings,
 * both normalised and de-duplicated here; exact string match. P = matches /
 * |pred|, R = matches / |gt| (0 over an empty set), F1 = 2PR / (P + R) (0
 * when P + R = 0), as Mementos' GPT-4-assisted_evaluation.ipynb computes
 * them from set intersections and differences (so two empty lists give 0).
 * -1 when out of memory or a list holds a non-string. */
int bench_judge_set_prf(const json_t *pred, const json_t *gt, double *p, double *r, double *f1);

#endif
