/* bench_vqa.h — open-answer benchmarks: VQA soft accuracy (VQAv2, TextVQA,
 * VizWiz) with the EvalAI answer normaliser, and GQA exact match. */
#ifndef SIMA_BENCH_VQA_H
#define SIMA_BENCH_VQA_H

#include <stdbool.h>
#include <stddef.h>

/* The EvalAI answer processor (EvalAIAnswerProcessor.__call__, as in
 * LLaVA's llava/eval/m4c_evaluator.py and the VQA eval's vqaEval.py):
 * lower-case, word_tokenize, punctuation, number words -> digits, articles
 * dropped, contractions restored. Returns a malloc'd string, NULL on
 * allocation failure. ASCII case folding only. */
char *bench_vqa_normalize(const char *answer);

/* Soft accuracy of an already normalised prediction against the normalised
 * ground-truth answers: for each of the n leave-one-out subsets,
 * min(1, matches/3), averaged (m4c_evaluator.py _compute_answer_scores).
 * Returns 0 for n == 0. */
double bench_vqa_soft_accuracy_normalized(const char *pred, const char *const *gts, size_t n);

/* Same, normalising the prediction and every ground truth first.
 * Returns -1 on allocation failure. */
double bench_vqa_soft_accuracy(const char *pred, const char *const *gts, size_t n);

/* GQA as LLaVA scores it (scripts/convert_gqa_for_eval.py, then the GQA
 * eval.py exact match): the answer stripped of surrounding whitespace and
 * trailing '.', lower-cased. Returns a malloc'd string or NULL. */
char *bench_gqa_normalize(const char *answer);

/* GQA correctness: normalised answer == gold (the gold as given). */
bool bench_gqa_correct(const char *answer, const char *gold);

#endif
