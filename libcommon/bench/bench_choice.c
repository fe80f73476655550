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

/* Splits the answer at blanks and separators; records for each letter
 * A..Z the position of its first single-letter token (-1: none) and
 * returns the number of tokens. */
static long letter_tokens(const char *answer, long first[26])
{
    for (int i = 0; i < 26; i++)
        first[i] = -1;
    long tokens = 0;
    const char *p = answer;
    while (*p) {
        while (*p && is_separator(*p))
            p++;
        if (!*p)
            break;
        const char *t = p;
        while (*p && !is_separator(*p))
            p++;
        if (p - t == 1 && *t >= 'A' && *t <= 'Z' && first[*t - 'A'] < 0)
            first[*t - 'A'] = tokens;
        tokens++;
    }
    return tokens;
}

/* VLMEvalKit vlmeval/utils/matching_util.py can_infer_option: "Failed to
 * obtain answer via API" -> nothing; a refusal string -> 'Z'; replace the
 * separators by spaces, split; exactly one option letter among the tokens
 * -> that letter, but only when its first occurrence is one of the last
 * four tokens (splits.index(ch) > len(splits) - 5: "A is wrong because the
 * dog is brown" names no option); no option letter but a "Z" token -> 'Z';
 * otherwise nothing. (The "A might be a quantifier" check there runs only
 * with the VERBOSE environment variable set, so not here.) */
static char infer_option(const char *answer, size_t n)
{
    if (strstr(answer, "Failed to obtain answer via API"))
        return BENCH_CHOICE_NONE;
    for (size_t i = 0; i < sizeof REFUSALS / sizeof REFUSALS[0]; i++)
        if (strstr(answer, REFUSALS[i]))
            return BENCH_CHOICE_REFUSED;
    long first[26];
    long tokens = letter_tokens(answer, first);
    size_t count = 0;
    char letter = BENCH_CHOICE_NONE;
    for (size_t i = 0; i < n && i < 26; i++)
        if (first[i] >= 0) {
            count++;
            letter = (char)('A' + i);
        }
    if (count == 1)
        return first[letter - 'A'] > tokens - 5 ? letter : BENCH_CHOICE_NONE;
    if (count == 0 && first['Z' - 'A'] >= 0)
        return BENCH_CHOICE_REFUSED;
    return BENCH_CHOICE_NONE;
}

static bool is_py_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Python's str.strip() (ASCII whitespace): the start of the stripped
 * text, its length in *len. LLaVA's model_vqa*.py write answers stripped. */
static const char *strip_span(const char *answer, size_t *len)
{
    size_t n = strlen(answer);
    while (n > 0 && is_py_space(*answer)) {
        answer++;
        n--;
    }
    while (n > 0 && is_py_space(answer[n - 1]))
        n--;
    *len = n;
    return answer;
}

/* Python's len() of the UTF-8 text s[0..bytes): its code points. */
static size_t utf8_length(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
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

/* VLMEvalKit can_infer_text: nothing when the answer is longer than twice
 * the option texts together (len(answer) > 2 * sum(len(v))); else the
 * option whose lower-cased text is a substring of the lower-cased answer,
 * when exactly one is. */
static char infer_text(const char *answer, const char *const *texts, size_t n)
{
    size_t total = 0, len;
    for (size_t i = 0; i < n && i < 26; i++)
        total += texts && texts[i] ? utf8_length(texts[i], strlen(texts[i])) : 0;
    const char *s = strip_span(answer, &len); /* the prediction is stripped text */
    if (utf8_length(s, len) > 2 * total)
        return BENCH_CHOICE_NONE;
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

/* LLaVA scripts/convert_seed_for_submission.py scores SEED-Bench by
 * row['text'] == question['answer'] on the answers model_vqa_loader.py
 * wrote (.strip()ped): only an answer that is exactly one option letter
 * counts. */
char bench_seed_extract(const char *answer, size_t n)
{
    size_t len;
    const char *s = strip_span(answer, &len);
    if (len != 1 || s[0] < 'A' || (size_t)(s[0] - 'A') >= (n < 26 ? n : 26))
        return BENCH_CHOICE_NONE;
    return s[0];
}

/* re.findall(r'The answer is ([A-Z]).', text) over text[0..len): the '.'
 * is any character but a newline; counts non-overlapping matches, keeps
 * the first letter. */
static size_t find_the_answer_is(const char *text, size_t len, char *letter)
{
    static const char lead[] = "The answer is ";
    const size_t ll = sizeof lead - 1;
    size_t count = 0;
    for (size_t i = 0; i + ll + 2 <= len;) {
        char c = text[i + ll];
        if (memcmp(text + i, lead, ll) == 0 && c >= 'A' && c <= 'Z' && text[i + ll + 1] != '\n') {
            if (count == 0)
                *letter = c;
            count++;
            i += ll + 2;
        } else {
            i++;
        }
    }
    return count;
}

/* LLaVA llava/eval/eval_science_qa.py, options = ["A".."E"], on the
 * answer model_vqa_science.py wrote (.strip()ped):
 *     if pred_text in options: answer = pred_text
 *     elif len(pred_text) >= 3 and pred_text[0] in options and pred_text[1:3] == ". ":
 *         answer = pred_text[0]
 *     else: res = re.findall(r'The answer is ([A-Z]).', pred_text)
 *           answer = res[0] if len(res) == 1 else "FAILED"
 * then get_pred_idx accepts only options[:len(choices)]. */
char bench_scienceqa_extract(const char *answer, size_t n)
{
    size_t len;
    const char *s = strip_span(answer, &len);
    char letter = BENCH_CHOICE_NONE;
    bool is_option = len > 0 && s[0] >= 'A' && s[0] <= 'E';
    if (len == 1 && is_option)
        letter = s[0];
    else if (len >= 3 && is_option && s[1] == '.' && s[2] == ' ')
        letter = s[0];
    else if (find_the_answer_is(s, len, &letter) != 1)
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
