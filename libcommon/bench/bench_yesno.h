/* bench_yesno.h — yes/no benchmarks: POPE and MME, scored by the rules of
 * their official evaluation scripts (see bench_yesno.c for the citations). */
#ifndef SIMA_BENCH_YESNO_H
#define SIMA_BENCH_YESNO_H

#include <stdbool.h>
#include <stddef.h>

/* ---- POPE ---- */

/* LLaVA llava/eval/eval_pope.py: the answer (whitespace at both ends
 * removed, as LLaVA's answer files hold it) is "no" when its first sentence
 * holds the word "No", "no" or "not", otherwise "yes". */
bool bench_pope_answer_is_yes(const char *answer);

/* Counts of a yes/no split, "yes" being the positive class. */
typedef struct {
    long tp, tn, fp, fn;
} bench_confusion;

void bench_confusion_add(bench_confusion *c, bool pred_yes, bool label_yes);

typedef struct {
    long n;
    double accuracy, precision, recall, f1, yes_ratio;
} bench_pope_metrics;

/* The metrics eval_pope.py prints for one split. A ratio whose denominator
 * is zero (where Python would raise ZeroDivisionError) is reported as 0. */
bench_pope_metrics bench_pope_metrics_of(const bench_confusion *c);

/* ---- MME ---- */

typedef enum { BENCH_YN_NO = 0, BENCH_YN_YES = 1, BENCH_YN_OTHER = 2 } bench_yn;

/* MME eval_tool/calculation.py parse_pred_ans (after .lower()), on the
 * answer with whitespace at both ends removed. */
bench_yn bench_mme_parse(const char *answer);

#define BENCH_MME_SUBTASKS 14
#define BENCH_MME_PERCEPTION 10 /* the first 10 of bench_mme_subtask_names */

extern const char *const bench_mme_subtask_names[BENCH_MME_SUBTASKS];

/* Index of a subtask name in bench_mme_subtask_names, -1 if unknown. */
int bench_mme_subtask_index(const char *name);

/* One scored question: its subtask, its image, whether it was right. */
typedef struct {
    int subtask;       /* index into bench_mme_subtask_names */
    const char *image; /* the image name, shared by its two questions */
    bool correct;
} bench_mme_item;

typedef struct {
    long questions, images;
    double acc, acc_plus, score; /* score = 100*acc + 100*acc_plus */
} bench_mme_subtask_result;

typedef struct {
    bench_mme_subtask_result sub[BENCH_MME_SUBTASKS];
    double perception, cognition; /* sums of the subtask scores present */
    int perception_present, cognition_present;
} bench_mme_result;

/* Scores every subtask as calculation.py does. Returns 0, or -1 (err set)
 * for a subtask index out of range or an allocation failure. */
int bench_mme_score(const bench_mme_item *items, size_t n, bench_mme_result *out);

#endif
