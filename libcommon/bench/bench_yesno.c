/* bench_yesno.c — POPE and MME scoring, reproducing the official scripts. */
#include "bench_yesno.h"

#include "err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- POPE ---- */

/* Is the space-separated token tok[0..len) (commas removed) equal to w? */
static bool token_is(const char *tok, size_t len, const char *w)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] == ',')
            continue;
        if (w[j] == '\0' || tok[i] != w[j])
            return false;
        j++;
    }
    return w[j] == '\0';
}

static bool is_py_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* LLaVA's model_vqa*.py write each answer .strip()ped: [*s, *e) without
 * the whitespace at both ends. */
static void strip_answer(const char *answer, const char **s, const char **e)
{
    *s = answer;
    *e = answer + strlen(answer);
    while (*s < *e && is_py_space(**s))
        (*s)++;
    while (*e > *s && is_py_space((*e)[-1]))
        (*e)--;
}

/* Reproduces LLaVA llava/eval/eval_pope.py (eval_pope), on the stripped
 * answer:
 *     if text.find('.') != -1: text = text.split('.')[0]
 *     text = text.replace(',', '')
 *     words = text.split(' ')
 *     if 'No' in words or 'not' in words or 'no' in words: 'no' else 'yes'
 * The split is on single spaces and the match is case-sensitive ("NO!" is
 * a yes), exactly as in the script. */
bool bench_pope_answer_is_yes(const char *answer)
{
    const char *p, *end;
    strip_answer(answer, &p, &end);
    const char *dot = memchr(p, '.', (size_t)(end - p));
    if (dot)
        end = dot;
    while (p <= end) {
        const char *q = p;
        while (q < end && *q != ' ')
            q++;
        size_t len = (size_t)(q - p);
        if (token_is(p, len, "No") || token_is(p, len, "no") || token_is(p, len, "not"))
            return false;
        p = q + 1;
    }
    return true;
}

void bench_confusion_add(bench_confusion *c, bool pred_yes, bool label_yes)
{
    if (pred_yes && label_yes)
        c->tp++;
    else if (!pred_yes && !label_yes)
        c->tn++;
    else if (pred_yes)
        c->fp++;
    else
        c->fn++;
}

static double ratio(double num, double den)
{
    return den > 0 ? num / den : 0.0;
}

/* eval_pope.py: precision = TP/(TP+FP), recall = TP/(TP+FN),
 * f1 = 2PR/(P+R), acc = (TP+TN)/all, yes_ratio = predicted yes / all. */
bench_pope_metrics bench_pope_metrics_of(const bench_confusion *c)
{
    bench_pope_metrics m = {0};
    m.n = c->tp + c->tn + c->fp + c->fn;
    m.precision = ratio((double)c->tp, (double)(c->tp + c->fp));
    m.recall = ratio((double)c->tp, (double)(c->tp + c->fn));
    m.f1 = ratio(2.0 * m.precision * m.recall, m.precision + m.recall);
    m.accuracy = ratio((double)(c->tp + c->tn), (double)m.n);
    m.yes_ratio = ratio((double)(c->tp + c->fp), (double)m.n);
    return m;
}

/* ---- MME ---- */

/* Order of the MME eval_tool: perception first, then cognition. */
const char *const bench_mme_subtask_names[BENCH_MME_SUBTASKS] = {
    "existence", "count", "position", "color", "posters", "celebrity",
    "scene", "landmark", "artwork", "OCR",
    "commonsense_reasoning", "numerical_calculation", "text_translation",
    "code_reasoning",
};

int bench_mme_subtask_index(const char *name)
{
    for (int i = 0; i < BENCH_MME_SUBTASKS; i++)
        if (strcmp(name, bench_mme_subtask_names[i]) == 0)
            return i;
    return -1;
}

/* Byte length of the first `chars` UTF-8 characters of s (Python's s[:4]). */
static size_t utf8_prefix_bytes(const char *s, int chars)
{
    size_t i = 0;
    while (s[i] && chars > 0) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        chars--;
    }
    return i;
}

static bool contains_in(const char *s, size_t len, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= len; i++)
        if (memcmp(s + i, w, wl) == 0)
            return true;
    return false;
}

/* MME eval_tool/calculation.py, process_result + parse_pred_ans:
 *     pred_ans = pred_ans.lower()
 *     if pred_ans in ["yes", "no"]: label = pred_ans
 *     else: prefix = pred_ans[:4]
 *           "yes" in prefix -> yes; elif "no" in prefix -> no; else other */
bench_yn bench_mme_parse(const char *answer)
{
    const char *s, *e;
    strip_answer(answer, &s, &e); /* the answers file holds stripped text */
    size_t n = utf8_prefix_bytes(s, 4);
    if (n > (size_t)(e - s))
        n = (size_t)(e - s);
    char low[16];
    for (size_t i = 0; i < n && i < sizeof low - 1; i++)
        low[i] = (char)tolower((unsigned char)s[i]);
    if (n > sizeof low - 1)
        n = sizeof low - 1;
    low[n] = '\0';
    bool whole = s + n == e;
    if (whole && (strcmp(low, "yes") == 0 || strcmp(low, "no") == 0))
        return low[0] == 'y' ? BENCH_YN_YES : BENCH_YN_NO;
    if (contains_in(low, n, "yes"))
        return BENCH_YN_YES;
    if (contains_in(low, n, "no"))
        return BENCH_YN_NO;
    return BENCH_YN_OTHER;
}

static int compare_items(const void *a, const void *b)
{
    const bench_mme_item *x = *(const bench_mme_item *const *)a;
    const bench_mme_item *y = *(const bench_mme_item *const *)b;
    if (x->subtask != y->subtask)
        return x->subtask < y->subtask ? -1 : 1;
    return strcmp(x->image, y->image);
}

/* Fills one subtask's counts from its run of items sorted by image.
 * calculation.py: acc over questions; an image counts for acc+ when
 * img_correct_num == 2 (both of its questions right). */
static void score_subtask(const bench_mme_item *const *run, size_t n,
                          bench_mme_subtask_result *r)
{
    long correct = 0, images_right = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        int right = 0;
        while (j < n && strcmp(run[j]->image, run[i]->image) == 0) {
            right += run[j]->correct;
            j++;
        }
        correct += right;
        images_right += right == 2;
        r->images++;
        i = j;
    }
    r->questions = (long)n;
    r->acc = ratio((double)correct, (double)n);
    r->acc_plus = ratio((double)images_right, (double)r->images);
    r->score = 100.0 * r->acc + 100.0 * r->acc_plus;
}

int bench_mme_score(const bench_mme_item *items, size_t n, bench_mme_result *out)
{
    memset(out, 0, sizeof *out);
    const bench_mme_item **order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return ERR("MME: out of memory for %zu items", n);
    for (size_t i = 0; i < n; i++) {
        if (items[i].subtask < 0 || items[i].subtask >= BENCH_MME_SUBTASKS) {
            free(order);
            return ERR("MME: item %zu has no known subtask", i);
        }
        order[i] = &items[i];
    }
    qsort(order, n, sizeof *order, compare_items);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && order[j]->subtask == order[i]->subtask)
            j++;
        int s = order[i]->subtask;
        score_subtask(order + i, j - i, &out->sub[s]);
        if (s < BENCH_MME_PERCEPTION) {
            out->perception += out->sub[s].score;
            out->perception_present++;
        } else {
            out->cognition += out->sub[s].score;
            out->cognition_present++;
        }
        i = j;
    }
    free(order);
    return 0;
}
