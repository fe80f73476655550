/* bench_choice.h — multiple-choice benchmarks (ScienceQA-IMG, MMBench,
 * SEED-Bench): option letter extraction and MMBench circular evaluation. */
#ifndef SIMA_BENCH_CHOICE_H
#define SIMA_BENCH_CHOICE_H

#include <stdbool.h>
#include <stddef.h>

/* No letter could be extracted. */
#define BENCH_CHOICE_NONE '\0'
/* The model refused or answered "Z" (VLMEvalKit's "no option" letter). */
#define BENCH_CHOICE_REFUSED 'Z'

/* MMBench: VLMEvalKit's can_infer (can_infer_option, then can_infer_text,
 * vlmeval/utils/matching_util.py) over options A, B, ... with the given
 * texts (n <= 26). Returns the letter, BENCH_CHOICE_REFUSED, or
 * BENCH_CHOICE_NONE. */
char bench_choice_extract(const char *answer, const char *const *option_texts, size_t n);

/* SEED-Bench as LLaVA scores it (scripts/convert_seed_for_submission.py:
 * the stripped answer must equal the gold letter): the letter when the
 * answer, blanks around it removed, is exactly one of the first n option
 * letters, else BENCH_CHOICE_NONE. */
char bench_seed_extract(const char *answer, size_t n);

/* ScienceQA: LLaVA llava/eval/eval_science_qa.py over options A..E, of
 * which the first n are the question's choices, on the answer with
 * whitespace at both ends removed (model_vqa_science.py strips it). Returns the letter, or
 * BENCH_CHOICE_NONE ("FAILED", or a letter past the choices). */
char bench_scienceqa_extract(const char *answer, size_t n);

/* MMBench circular evaluation: the rotations of one question share a
 * group id (index % 1000000 in the circular TSV); a group counts as right
 * only when every one of its rows is right. */
long long bench_mmbench_group_of(long long index);

typedef struct {
    long groups, groups_correct;
    double accuracy;
} bench_circular_result;

/* Returns 0, or -1 (err set) on allocation failure. */
int bench_mmbench_circular(const long long *group_ids, const bool *correct, size_t n,
                           bench_circular_result *out);

#endif
