/* bench_vqa.c — the EvalAI VQA answer normaliser and soft accuracy, and the
 * GQA normalisation, reproducing the official Python scorers. */
#include "bench_vqa.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static bool is_py_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Python's str.strip() on [*s, *e): trims whitespace at both ends. */
static void strip_range(const char **s, const char **e)
{
    while (*s < *e && is_py_space(**s))
        (*s)++;
    while (*e > *s && is_py_space((*e)[-1]))
        (*e)--;
}

/* EvalAIAnswerProcessor.word_tokenize, then the '\n'/'\t' replacement and
 * strip of __call__:
 *     word = word.lower(); word = word.replace(",", "").replace("?", "")
 *     word = word.replace("'s", " 's"); word.strip()
 * The replacements run in that order, so "'s" is looked for after the
 * commas and question marks are gone ("cat',s" -> "cat 's"). */
static char *word_tokenize(const char *in)
{
    strbuf low = {0};
    for (const char *p = in; *p; p++) {
        char c = (char)tolower((unsigned char)*p);
        if (c != ',' && c != '?')
            strbuf_put(&low, &c, 1);
    }
    char *l = strbuf_take(&low);
    if (!l)
        return NULL;
    strbuf b = {0};
    for (const char *p = l; *p; p++) {
        if (p[0] == '\'' && p[1] == 's') {
            strbuf_put(&b, " 's", 3);
            p++;
            continue;
        }
        char c = *p == '\n' || *p == '\t' ? ' ' : *p;
        strbuf_put(&b, &c, 1);
    }
    free(l);
    char *s = strbuf_take(&b);
    if (!s)
        return NULL;
    const char *a = s, *e = s + strlen(s);
    strip_range(&a, &e);
    memmove(s, a, (size_t)(e - a));
    s[e - a] = '\0';
    return s;
}

/* EvalAI PUNCTUATIONS (the period is handled by PERIOD_STRIP). */
static const char PUNCT[] = ";/[]\"{}()=+\\_-><@`,?!";

static bool is_punct(char c)
{
    return c != '\0' && strchr(PUNCT, c) != NULL;
}

/* COMMA_STRIP (m4c_evaluator.py: r"(?<=\d)(\,)+(?=\d)"; vqaEval.py:
 * r"(\d)(\,)(\d)"): does the text hold digit,digit? word_tokenize has
 * removed every comma before, so this never holds; kept as in the script. */
static bool has_digit_comma_digit(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 1; i + 1 < n; i++)
        if (s[i] == ',' && isdigit((unsigned char)s[i - 1]) && isdigit((unsigned char)s[i + 1]))
            return true;
    return false;
}

/* Does the text hold "p " or " p"? */
static bool punct_touches_space(const char *s, char p)
{
    for (size_t i = 0; s[i]; i++)
        if (s[i] == p && ((s[i + 1] == ' ') || (i > 0 && s[i - 1] == ' ')))
            return true;
    return false;
}

/* process_punctuation:
 *     for p in PUNCTUATIONS:
 *         if (p + " " in in_text or " " + p in in_text) or COMMA_STRIP matches:
 *             out_text = out_text.replace(p, "")
 *         else: out_text = out_text.replace(p, " ")
 *     out_text = PERIOD_STRIP.sub("", out_text, re.UNICODE)
 * PERIOD_STRIP is "(?!<=\d)(\.)(?!\d)": its first look-ahead never fires, so
 * it removes every '.' not followed by a digit; and re.UNICODE (= 32) lands
 * in sub()'s `count` argument, so at most 32 periods are removed. */
static char *process_punctuation(const char *in)
{
    bool comma_digits = has_digit_comma_digit(in);
    bool drop[256] = {0};
    for (const char *p = PUNCT; *p; p++)
        drop[(unsigned char)*p] = comma_digits || punct_touches_space(in, *p);
    strbuf b = {0};
    for (const char *p = in; *p; p++) {
        if (is_punct(*p)) {
            if (!drop[(unsigned char)*p])
                strbuf_put(&b, " ", 1);
            continue;
        }
        strbuf_put(&b, p, 1);
    }
    char *out = strbuf_take(&b);
    if (!out)
        return NULL;
    /* PERIOD_STRIP runs on the text the punctuation step left: whether a
     * period is followed by a digit is judged there ("v.-2 -": the '-'
     * goes, so the '.' stands before the '2' and stays). */
    size_t k = 0;
    int periods_removed = 0;
    for (size_t i = 0; out[i]; i++) {
        if (out[i] == '.' && !isdigit((unsigned char)out[i + 1]) && periods_removed < 32) {
            periods_removed++;
            continue;
        }
        out[k++] = out[i];
    }
    out[k] = '\0';
    return out;
}

/* EvalAI NUMBER_MAP (vqaEval.py manualMap). */
static const char *const NUMBER_WORDS[][2] = {
    {"none", "0"}, {"zero", "0"}, {"one", "1"}, {"two", "2"}, {"three", "3"},
    {"four", "4"}, {"five", "5"}, {"six", "6"}, {"seven", "7"}, {"eight", "8"},
    {"nine", "9"}, {"ten", "10"},
};

static const char *const ARTICLES[] = {"a", "an", "the"};

/* EvalAI CONTRACTIONS (vqaEval.py contractions): apostrophe-less spellings
 * restored. Keys with a capital I can never match after lower(); they are
 * kept as in the official table. */
static const char *const CONTRACTIONS[][2] = {
    {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"},
    {"couldve", "could've"}, {"couldnt", "couldn't"},
    {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"},
    {"didnt", "didn't"}, {"doesnt", "doesn't"}, {"dont", "don't"},
    {"hadnt", "hadn't"}, {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"},
    {"hasnt", "hasn't"}, {"havent", "haven't"}, {"hed", "he'd"},
    {"hed've", "he'd've"}, {"he'dve", "he'd've"}, {"hes", "he's"},
    {"howd", "how'd"}, {"howll", "how'll"}, {"hows", "how's"},
    {"Id've", "I'd've"}, {"I'dve", "I'd've"}, {"Im", "I'm"}, {"Ive", "I've"},
    {"isnt", "isn't"}, {"itd", "it'd"}, {"itd've", "it'd've"},
    {"it'dve", "it'd've"}, {"itll", "it'll"}, {"let's", "let's"},
    {"maam", "ma'am"}, {"mightnt", "mightn't"}, {"mightnt've", "mightn't've"},
    {"mightn'tve", "mightn't've"}, {"mightve", "might've"},
    {"mustnt", "mustn't"}, {"mustve", "must've"}, {"neednt", "needn't"},
    {"notve", "not've"}, {"oclock", "o'clock"}, {"oughtnt", "oughtn't"},
    {"ow's'at", "'ow's'at"}, {"'ows'at", "'ow's'at"}, {"'ow'sat", "'ow's'at"},
    {"shant", "shan't"}, {"shed've", "she'd've"}, {"she'dve", "she'd've"},
    {"she's", "she's"}, {"shouldve", "should've"}, {"shouldnt", "shouldn't"},
    {"shouldnt've", "shouldn't've"}, {"shouldn'tve", "shouldn't've"},
    {"somebody'd", "somebodyd"}, {"somebodyd've", "somebody'd've"},
    {"somebody'dve", "somebody'd've"}, {"somebodyll", "somebody'll"},
    {"somebodys", "somebody's"}, {"someoned", "someone'd"},
    {"someoned've", "someone'd've"}, {"someone'dve", "someone'd've"},
    {"someonell", "someone'll"}, {"someones", "someone's"},
    {"somethingd", "something'd"}, {"somethingd've", "something'd've"},
    {"something'dve", "something'd've"}, {"somethingll", "something'll"},
    {"thats", "that's"}, {"thered", "there'd"}, {"thered've", "there'd've"},
    {"there'dve", "there'd've"}, {"therere", "there're"}, {"theres", "there's"},
    {"theyd", "they'd"}, {"theyd've", "they'd've"}, {"they'dve", "they'd've"},
    {"theyll", "they'll"}, {"theyre", "they're"}, {"theyve", "they've"},
    {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"},
    {"we'dve", "we'd've"}, {"weve", "we've"}, {"werent", "weren't"},
    {"whatll", "what'll"}, {"whatre", "what're"}, {"whats", "what's"},
    {"whatve", "what've"}, {"whens", "when's"}, {"whered", "where'd"},
    {"wheres", "where's"}, {"whereve", "where've"}, {"whod", "who'd"},
    {"whod've", "who'd've"}, {"who'dve", "who'd've"}, {"wholl", "who'll"},
    {"whos", "who's"}, {"whove", "who've"}, {"whyll", "why'll"},
    {"whyre", "why're"}, {"whys", "why's"}, {"wont", "won't"},
    {"wouldve", "would've"}, {"wouldnt", "wouldn't"},
    {"wouldnt've", "wouldn't've"}, {"wouldn'tve", "wouldn't've"},
    {"yall", "y'all"}, {"yall'll", "y'all'll"}, {"y'allll", "y'all'll"},
    {"yall'd've", "y'all'd've"}, {"y'alld've", "y'all'd've"},
    {"y'all'dve", "y'all'd've"}, {"youd", "you'd"}, {"youd've", "you'd've"},
    {"you'dve", "you'd've"}, {"youll", "you'll"}, {"youre", "you're"},
    {"youve", "you've"},
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static bool word_eq(const char *w, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(w, s, n) == 0;
}

/* The replacement of word w[0..n) in a two-column table, NULL if none. */
static const char *table_lookup(const char *const (*table)[2], size_t rows,
                                const char *w, size_t n)
{
    for (size_t i = 0; i < rows; i++)
        if (word_eq(w, n, table[i][0]))
            return table[i][1];
    return NULL;
}

static bool is_article(const char *w, size_t n)
{
    for (size_t i = 0; i < COUNT_OF(ARTICLES); i++)
        if (word_eq(w, n, ARTICLES[i]))
            return true;
    return false;
}

/* process_digit_article: lower(), split(); each word through NUMBER_MAP,
 * articles dropped, then each kept word through CONTRACTIONS; ' '.join.
 * (A number word's digit is never a contraction key, so one pass is the
 * same as the script's two.) */
static char *process_digit_article(const char *in)
{
    strbuf b = {0};
    const char *p = in;
    bool first = true;
    while (*p) {
        while (*p && is_py_space(*p))
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && !is_py_space(*p))
            p++;
        size_t n = (size_t)(p - w);
        char low[64];
        const char *word = w;
        if (n < sizeof low) {
            for (size_t i = 0; i < n; i++)
                low[i] = (char)tolower((unsigned char)w[i]);
            word = low;
        }
        const char *digit = table_lookup(NUMBER_WORDS, COUNT_OF(NUMBER_WORDS), word, n);
        if (digit) {
            word = digit;
            n = strlen(digit);
        }
        if (is_article(word, n))
            continue;
        const char *full = table_lookup(CONTRACTIONS, COUNT_OF(CONTRACTIONS), word, n);
        if (full) {
            word = full;
            n = strlen(full);
        }
        if (!first)
            strbuf_put(&b, " ", 1);
        strbuf_put(&b, word, n);
        first = false;
    }
    return strbuf_take(&b);
}

char *bench_vqa_normalize(const char *answer)
{
    char *t = word_tokenize(answer);
    if (!t)
        return NULL;
    char *p = process_punctuation(t);
    free(t);
    if (!p)
        return NULL;
    char *d = process_digit_article(p);
    free(p);
    return d;
}

/* m4c_evaluator.py TextVQAAccuracyEvaluator._compute_answer_scores: for each
 * ground truth left out in turn, acc = min(1, matches among the others / 3);
 * the score is the mean over the n subsets (n = 10: ten choose nine). */
double bench_vqa_soft_accuracy_normalized(const char *pred, const char *const *gts, size_t n)
{
    if (n == 0)
        return 0.0;
    size_t matches = 0;
    for (size_t i = 0; i < n; i++)
        matches += strcmp(pred, gts[i]) == 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        size_t others = matches - (strcmp(pred, gts[i]) == 0);
        double acc = (double)others / 3.0;
        sum += acc < 1.0 ? acc : 1.0;
    }
    return sum / (double)n;
}

double bench_vqa_soft_accuracy(const char *pred, const char *const *gts, size_t n)
{
    char *p = bench_vqa_normalize(pred);
    char **g = calloc(n ? n : 1, sizeof *g);
    double score = -1;
    bool ok = p && g;
    for (size_t i = 0; ok && i < n; i++)
        ok = (g[i] = bench_vqa_normalize(gts[i])) != NULL;
    if (ok)
        score = bench_vqa_soft_accuracy_normalized(p, (const char *const *)g, n);
    for (size_t i = 0; g && i < n; i++)
        free(g[i]);
    free(g);
    free(p);
    return score;
}

/* LLaVA scripts/convert_gqa_for_eval.py: res['text'].rstrip('.').lower();
 * the answers file holds the model output already .strip()ped
 * (model_vqa_loader.py), so surrounding whitespace goes first. */
char *bench_gqa_normalize(const char *answer)
{
    const char *s = answer, *e = answer + strlen(answer);
    strip_range(&s, &e);
    while (e > s && e[-1] == '.')
        e--;
    char *out = malloc((size_t)(e - s) + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < (size_t)(e - s); i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[e - s] = '\0';
    return out;
}

/* GQA eval.py: correct = (predicted == gold). */
bool bench_gqa_correct(const char *answer, const char *gold)
{
    char *a = bench_gqa_normalize(answer);
    bool ok = a && strcmp(a, gold) == 0;
    free(a);
    return ok;
}
