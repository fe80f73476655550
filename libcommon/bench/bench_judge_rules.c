/* bench_judge_rules.c — parsers of judge replies and the judge-scored
 * benchmarks' aggregations (see bench_judge_rules.h for each rule). */
#include "bench_judge_rules.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A finite number filling exactly [s, s+n). */
static bool rules_number(const char *s, size_t n, double *out)
{
    if (n == 0 || n > 63)
        return false;
    char buf[64];
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end != buf + n || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool bench_judge_llava_parse(const char *reply, double *ref, double *model)
{
    size_t line = strcspn(reply, "\n");
    double v[2];
    int count = 0;
    size_t i = 0;
    while (i < line) {
        while (i < line && (isspace((unsigned char)reply[i]) || reply[i] == ','))
            i++;
        if (i == line)
            break;
        size_t start = i;
        while (i < line && !isspace((unsigned char)reply[i]) && reply[i] != ',')
            i++;
        if (count == 2 || !rules_number(reply + start, i - start, &v[count]))
            return false;
        count++;
    }
    if (count != 2)
        return false;
    *ref = v[0];
    *model = v[1];
    return true;
}

void bench_judge_llava_add(bench_judge_llava_acc *a, double ref, double model)
{
    a->n++;
    a->sum_ref += ref;
    a->sum_model += model;
}

json_t *bench_judge_llava_json(const bench_judge_llava_acc *a)
{
    if (a->n == 0)
        return NULL;
    double mr = a->sum_ref / (double)a->n, mm = a->sum_model / (double)a->n;
    json_t *rel = mr != 0 ? json_real(100.0 * mm / mr) : json_null();
    return json_pack("{s:I, s:f, s:f, s:o}", "samples", (json_int_t)a->n, "mean_reference", mr,
                     "mean_model", mm, "relative_score", rel);
}

/* mm-vet_evaluator.py: content.split(" ")[0].strip(), float(), and a value
 * outside [0, 1] is refused (the script then asks again). */
bool bench_judge_mmvet_parse(const char *reply, double *score)
{
    const char *s = reply;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strcspn(s, " ");
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    double v;
    if (!rules_number(s, n, &v) || v < 0 || v > 1)
        return false;
    *score = v;
    return true;
}

/* Does reply hold `needle`, ASCII case-insensitively? */
static bool contains_nocase(const char *reply, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = reply; *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return true;
    return false;
}

/* MMHal-Bench eval_gpt4.py (LLaVA-RLHF Eval/eval_gpt_mmhal.py):
 *     for s in range(7): if f'rating: {s}' in response.lower(): found.append(s)
 *     score = found[0] if len(found) == 1 else 0   (with a warning)
 * Here "none or several" is unparsed (-1) rather than 0. */
int bench_judge_mmhal_parse(const char *reply)
{
    int found = -1, count = 0;
    for (int k = 0; k <= 6; k++) {
        char needle[16];
        snprintf(needle, sizeof needle, "rating: %d", k);
        if (contains_nocase(reply, needle)) {
            found = k;
            count++;
        }
    }
    return count == 1 ? found : -1;
}

static bool is_trim_char(char c)
{
    return isspace((unsigned char)c) || (c && strchr(".,;:!?\"'`*()[]{}", c) != NULL);
}

char *bench_judge_normalize_item(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t len = 0;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isspace(c)) {
            space = len > 0;
            continue;
        }
        if (space)
            out[len++] = ' ';
        space = false;
        out[len++] = (char)tolower(c);
    }
    out[len] = '\0';
    /* trim punctuation and spaces at both ends */
    size_t a = 0;
    while (a < len && is_trim_char(out[a]))
        a++;
    while (len > a && is_trim_char(out[len - 1]))
        len--;
    static const char *const ARTICLES[] = {"a ", "an ", "the "};
    for (size_t k = 0; k < 3; k++) {
        size_t m = strlen(ARTICLES[k]);
        if (len - a > m && strncmp(out + a, ARTICLES[k], m) == 0) {
            a += m;
            break;
        }
    }
    memmove(out, out + a, len - a);
    out[len - a] = '\0';
    return out;
}

/* Appends the normalised s to arr unless empty or already there. */
static int rules_add_unique(json_t *arr, const char *s)
{
    char *norm = bench_judge_normalize_item(s);
    if (!norm)
        return -1;
    bool seen = norm[0] == '\0' || strcmp(norm, "none") == 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) seen = seen || strcmp(json_string_value(v), norm) == 0;
    int rc = seen ? 0 : json_array_append_new(arr, json_string(norm));
    free(norm);
    return rc;
}

/* Items of one list line (text after the label, up to the line's end). */
static json_t *mementos_items(const char *s, size_t n)
{
    json_t *arr = json_array();
    char *buf = malloc(n + 1);
    if (!arr || !buf) {
        json_decref(arr);
        free(buf);
        return NULL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",;", &save); tok; tok = strtok_r(NULL, ",;", &save))
        if (rules_add_unique(arr, tok) != 0) {
            json_decref(arr);
            arr = NULL;
            break;
        }
    free(buf);
    return arr;
}

/* If the line [s, s+n) starts with label (after '-', '*', '#', spaces;
 * case-insensitive; '*' allowed before the colon), where its items start. */
static const char *mementos_label(const char *s, size_t n, const char *label)
{
    const char *e = s + n;
    while (s < e && (*s == '-' || *s == '*' || *s == '#' || isspace((unsigned char)*s)))
        s++;
    size_t m = strlen(label);
    if ((size_t)(e - s) < m || strncasecmp(s, label, m) != 0)
        return NULL;
    s += m;
    while (s < e && *s == '*')
        s++;
    if (s == e || *s != ':')
        return NULL;
    return s + 1;
}

bool bench_judge_mementos_parse(const char *reply, json_t **objects, json_t **behaviours)
{
    json_t *lists[2] = {NULL, NULL};
    for (const char *line = reply; *line;) {
        size_t n = strcspn(line, "\n");
        const char *items = NULL;
        int which = -1;
        if ((items = mementos_label(line, n, "objects")))
            which = 0;
        else if ((items = mementos_label(line, n, "behaviours")) ||
                 (items = mementos_label(line, n, "behaviors")))
            which = 1;
        if (which >= 0 && !lists[which])
            lists[which] = mementos_items(items, (size_t)(line + n - items));
        line += n + (line[n] == '\n');
    }
    if (!lists[0] || !lists[1]) {
        json_decref(lists[0]);
        json_decref(lists[1]);
        return false;
    }
    *objects = lists[0];
    *behaviours = lists[1];
    return true;
}

/* New array of the normalised, de-duplicated strings of list; NULL on a
 * non-string or out of memory. */
static json_t *rules_normalized_set(const json_t *list)
{
    json_t *set = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (!set || !json_is_string(v) || rules_add_unique(set, json_string_value(v)) != 0) {
            json_decref(set);
            return NULL;
        }
    }
    return set;
}

int bench_judge_set_prf(const json_t *pred, const json_t *gt, double *p, double *r, double *f1)
{
    json_t *ps = rules_normalized_set(pred), *gs = rules_normalized_set(gt);
    if (!ps || !gs) {
        json_decref(ps);
        json_decref(gs);
        return -1;
    }
    size_t np = json_array_size(ps), ng = json_array_size(gs), match = 0;
    for (size_t i = 0; i < np; i++)
        for (size_t j = 0; j < ng; j++)
            if (strcmp(json_string_value(json_array_get(ps, i)),
                       json_string_value(json_array_get(gs, j))) == 0) {
                match++;
                break;
            }
    json_decref(ps);
    json_decref(gs);
    /* Mementos' GPT-4-assisted_evaluation.ipynb: a zero denominator gives
     * 0, so two empty lists score 0, not 1 */
    *p = np ? (double)match / (double)np : 0;
    *r = ng ? (double)match / (double)ng : 0;
    *f1 = *p + *r > 0 ? 2 * *p * *r / (*p + *r) : 0;
    return 0;
}
