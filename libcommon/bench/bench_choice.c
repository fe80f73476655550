/* bench_choice.c — multiple-choice extraction and circular evaluation,
 * reproducing VLMEvalKit (MMBench's official evaluator) and LLaVA's
 * eval_science_qa.py. */
#include "bench_choice.h"

#include "err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Answers VLMEvalKit's can_infer_option maps to 'Z' (a refusal). */
static const char *const REFUSALS[] = {
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
};

/* can_infer_option: these characters become spaces before splitting. */
static const char OPTION_SEPARATORS[] = ".()[],:;!*#{}";

static bool is_separator(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
           (c != '\0' && strchr(OPTION_SEPARATORS, c) != NULL);
}

/* Marks which single-letter tokens A..Z occur among the split tokens. */
static void single_letter_tokens(const char *answer, bool seen[26])
{
    memset(seen, 0, 26 * sizeof seen[0]);
    const char *p = answer;
    while (*p) {
        while (*p && is_separator(*p))
            p++;
        const char *t = p;
        while (*p && !is_separator(*p))
            p++;
        if (p - t == 1 && *t >= 'A' && *t <= 'Z')
            seen[*t - 'A'] = true;
    }
}

/* VLMEvalKit can_infer_option: refusal strings -> 'Z'; replace the
 * separators by spaces, split; exactly one option letter among the tokens
 * -> that letter; none, but a "Z" token -> 'Z'; otherwise nothing. */
static char infer_option(const char *answer, size_t n)
{
    if (strstr(answer, "Failed to obtain answer via API"))
        return BENCH_CHOICE_NONE;
    for (size_t i = 0; i < sizeof REFUSALS / sizeof REFUSALS[0]; i++)
        if (strstr(answer, REFUSALS[i]))
            return BENCH_CHOICE_REFUSED;
    bool seen[26];
    single_letter_tokens(answer, seen);
    size_t count = 0;
    char letter = BENCH_CHOICE_NONE;
    for (size_t i = 0; i < n && i < 26; i++)
        if (seen[i]) {
            count++;
            letter = (char)('A' + i);
        }
    if (count == 1)
        return letter;
    if (count == 0 && seen['Z' - 'A'])
        return BENCH_CHOICE_REFUSED;
    return BENCH_CHOICE_NONE;
}

/* Lower-cased copy (ASCII), NULL on allocation failure. */
static char *lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    return d;
}

/* VLMEvalKit can_infer_text: the option whose lower-cased text is a
 * substring of the lower-cased answer, when exactly one is. */
static char infer_text(const char *answer, const char *const *texts, size_t n)
{
    char *a = lower_dup(answer);
    if (!a)
        return BENCH_CHOICE_NONE;
    size_t count = 0;
    char letter = BENCH_CHOICE_NONE;
    for (size_t i = 0; i < n && i < 26; i++) {
        char *t = texts && texts[i] ? lower_dup(texts[i]) : NULL;
        if (t && strstr(a, t)) {
            count++;
            letter = (char)('A' + i);
        }
        free(t);
    }
    free(a);
    return count == 1 ? letter : BENCH_CHOICE_NONE;
}

char bench_choice_extract(const char *answer, const char *const *option_texts, size_t n)
{
    char c = infer_option(answer, n);
    return c != BENCH_CHOICE_NONE ? c : infer_text(answer, option_texts, n);
}

/* re.findall(r'The answer is ([A-Z]).', text): the '.' is any character
 * but a newline; counts non-overlapping matches, keeps the first letter. */
static size_t find_the_answer_is(const char *text, char *letter)
{
    static const char lead[] = "The answer is ";
    const size_t ll = sizeof lead - 1;
    size_t count = 0;
    const char *p = text;
    while ((p = strstr(p, lead)) != NULL) {
        char c = p[ll];
        if (c >= 'A' && c <= 'Z' && p[ll + 1] != '\0' && p[ll + 1] != '\n') {
            if (count == 0)
                *letter = c;
            count++;
            p += ll + 2;
        } else {
            p += 1;
        }
    }
    return count;
}

/* LLaVA llava/eval/eval_science_qa.py, options = ["A".."E"]:
 *     if pred_text in options: answer = pred_text
 *     elif len(pred_text) >= 3 and pred_text[0] in options and pred_text[1:3] == ". ":
 *         answer = pred_text[0]
 *     else: res = re.findall(r'The answer is ([A-Z]).', pred_text)
 *           answer = res[0] if len(res) == 1 else "FAILED"
 * then get_pred_idx accepts only options[:len(choices)]. */
char bench_scienceqa_extract(const char *answer, size_t n)
{
    char letter = BENCH_CHOICE_NONE;
    size_t len = strlen(answer);
    bool is_option = answer[0] >= 'A' && answer[0] <= 'E';
    if (len == 1 && is_option)
        letter = answer[0];
    else if (len >= 3 && is_option && answer[1] == '.' && answer[2] == ' ')
        letter = answer[0];
    else if (find_the_answer_is(answer, &letter) != 1)
        letter = BENCH_CHOICE_NONE;
    size_t choices = n < 5 ? n : 5; /* options[:len(choices)] */
    if (letter == BENCH_CHOICE_NONE || (size_t)(letter - 'A') >= choices)
        return BENCH_CHOICE_NONE;
    return letter;
}

/* VLMEvalKit: the circular copies of question i have indices i + k*1e6. */
long long bench_mmbench_group_of(long long index)
{
    return index % 1000000;
}

typedef struct {
    long long group;
    bool correct;
} circular_row;

static int compare_rows(const void *a, const void *b)
{
    long long x = ((const circular_row *)a)->group, y = ((const circular_row *)b)->group;
    return (x > y) - (x < y);
}

/* VLMEvalKit circular evaluation (eval_vanilla per group, hit only when all
 * rotations are hit): accuracy = groups all right / groups. */
int bench_mmbench_circular(const long long *group_ids, const bool *correct, size_t n,
                           bench_circular_result *out)
{
    memset(out, 0, sizeof *out);
    circular_row *rows = malloc((n ? n : 1) * sizeof *rows);
    if (!rows)
        return ERR("MMBench circular: out of memory for %zu rows", n);
    for (size_t i = 0; i < n; i++)
        rows[i] = (circular_row){group_ids[i], correct[i]};
    qsort(rows, n, sizeof *rows, compare_rows);
    size_t i = 0;
    while (i < n) {
        bool all = true;
        size_t j = i;
        for (; j < n && rows[j].group == rows[i].group; j++)
            all = all && rows[j].correct;
        out->groups++;
        out->groups_correct += all;
        i = j;
    }
    free(rows);
    out->accuracy = out->groups ? (double)out->groups_correct / (double)out->groups : 0.0;
    return 0;
}
