/* bench_chair.c — CHAIR_s / CHAIR_i from captions and ground-truth object
 * sets, after chair.py (Rohrbach et al., "Object Hallucination in Image
 * Captioning", EMNLP 2018): captions read into words as chair.py reads
 * them (bench_chair_words.c: nltk.word_tokenize, pattern.en's singularize),
 * its word pairs joined, the words looked up in the synonym table. */
#include "bench_chair.h"

#include "bench_chair_words.h"
#include "err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
    char *phrase; /* one word, or two separated by one space */
    int category;
    size_t order; /* position in the file: the later entry wins */
} vocab_entry;

struct bench_chair_vocab {
    char **categories;
    int ncategories;
    vocab_entry *entries; /* sorted by phrase, unique */
    size_t nentries;
};

void bench_chair_vocab_free(bench_chair_vocab *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->ncategories; i++)
        free(v->categories[i]);
    for (size_t i = 0; i < v->nentries; i++)
        free(v->entries[i].phrase);
    free(v->categories);
    free(v->entries);
    free(v);
}

/* A copy of [s, e) as written: chair.py splits each line at ", " and keeps
 * the pieces verbatim, so a piece with a stray space (" cheesecake" after a
 * doubled space) or a capital ("iPhone") never equals a caption word, which
 * is lower-cased. NULL when out of memory. */
static char *copy_name(const char *s, const char *e)
{
    char *out = malloc((size_t)(e - s) + 1);
    if (!out)
        return NULL;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    return out;
}

static int push_entry(bench_chair_vocab *v, size_t *cap, char *phrase, int category)
{
    if (v->nentries == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        vocab_entry *p = realloc(v->entries, ncap * sizeof *p);
        if (!p)
            return -1;
        v->entries = p;
        *cap = ncap;
    }
    v->entries[v->nentries] = (vocab_entry){phrase, category, v->nentries};
    v->nentries++;
    return 0;
}

static int push_category(bench_chair_vocab *v, char *name)
{
    char **p = realloc(v->categories, (size_t)(v->ncategories + 1) * sizeof *p);
    if (!p)
        return -1;
    v->categories = p;
    v->categories[v->ncategories++] = name;
    return 0;
}

/* The next ", " in [s, e), or e. */
static const char *find_separator(const char *s, const char *e)
{
    for (; s + 1 < e; s++)
        if (s[0] == ',' && s[1] == ' ')
            return s;
    return e;
}

/* Parses one line "category, syn, ...": the category is also a name.
 * chair.py: line.strip().split(', '); a name of three or more words
 * ("stove top oven") is kept but can never match, since captions are
 * matched one word or one pair of words at a time. */
static int parse_line(bench_chair_vocab *v, size_t *cap, const char *s, const char *e,
                      const char *what, int lineno)
{
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    int category = v->ncategories;
    bool first = true;
    while (s <= e) {
        const char *end = find_separator(s, e);
        char *name = copy_name(s, end);
        if (!name)
            return ERR("%s: out of memory", what);
        if (!name[0]) {
            free(name);
            if (first)
                return ERR("%s: line %d: empty category name", what, lineno);
        } else {
            char *copy = first ? strdup(name) : NULL;
            if ((first && (!copy || push_category(v, copy) != 0)) ||
                push_entry(v, cap, name, category) != 0) {
                free(name);
                return ERR("%s: out of memory", what);
            }
            first = false;
        }
        s = end + 2;
    }
    return 0;
}

static int compare_entries(const void *a, const void *b)
{
    const vocab_entry *x = a, *y = b;
    int c = strcmp(x->phrase, y->phrase);
    if (c)
        return c;
    return (x->order > y->order) - (x->order < y->order);
}

/* Sorts by phrase and keeps the last-listed entry of each phrase. */
static void sort_unique(bench_chair_vocab *v)
{
    qsort(v->entries, v->nentries, sizeof *v->entries, compare_entries);
    size_t out = 0;
    for (size_t i = 0; i < v->nentries; i++) {
        bool last = i + 1 == v->nentries || strcmp(v->entries[i].phrase, v->entries[i + 1].phrase);
        if (last)
            v->entries[out++] = v->entries[i];
        else
            free(v->entries[i].phrase);
    }
    v->nentries = out;
}

int bench_chair_vocab_parse(const char *text, const char *what, bench_chair_vocab **out)
{
    *out = NULL;
    bench_chair_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return ERR("%s: out of memory", what);
    size_t cap = 0;
    int lineno = 0;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p);
        lineno++;
        const char *s = p;
        while (s < e && isspace((unsigned char)*s))
            s++;
        if (s < e && *s != '#' && parse_line(v, &cap, s, e, what, lineno) != 0) {
            bench_chair_vocab_free(v);
            return -1;
        }
        p = *e ? e + 1 : e;
    }
    if (v->ncategories == 0) {
        bench_chair_vocab_free(v);
        return ERR("%s: no object categories", what);
    }
    sort_unique(v);
    *out = v;
    return 0;
}

int bench_chair_category_count(const bench_chair_vocab *v)
{
    return v->ncategories;
}

const char *bench_chair_category_name(const bench_chair_vocab *v, int id)
{
    return id >= 0 && id < v->ncategories ? v->categories[id] : NULL;
}

int bench_chair_category_id(const bench_chair_vocab *v, const char *name)
{
    for (int i = 0; i < v->ncategories; i++)
        if (strcmp(v->categories[i], name) == 0)
            return i;
    return -1;
}

static int lookup(const bench_chair_vocab *v, const char *phrase)
{
    size_t lo = 0, hi = v->nentries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v->entries[mid].phrase, phrase);
        if (c == 0)
            return v->entries[mid].category;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Words chair.py's "baby X" / "adult X" rule reduces to X, so that the
 * qualifier does not count as a person ("baby elephant" is an elephant). */
static const char *const CHAIR_YOUNG_ADULT_OF[] = {
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "animal", "cub",
};

/* Word pairs chair.py (CHAIR.__init__, double_word_dict) treats as one
 * word, and what they become. The result is then looked up in the table
 * like any word: "home plate" and "train track" are in no table, so their
 * words mention nothing ("train track" is not a train); "motor bike" is
 * listed as " motor bike" (after a doubled space) and never matches. */
static const char *const CHAIR_PAIRS[][2] = {
    {"motor bike", "motor bike"},       {"motor cycle", "motor cycle"},
    {"air plane", "air plane"},         {"traffic light", "traffic light"},
    {"street light", "street light"},   {"traffic signal", "traffic signal"},
    {"stop light", "stop light"},       {"fire hydrant", "fire hydrant"},
    {"stop sign", "stop sign"},         {"parking meter", "parking meter"},
    {"suit case", "suit case"},         {"sports ball", "sports ball"},
    {"baseball bat", "baseball bat"},   {"baseball glove", "baseball glove"},
    {"tennis racket", "tennis racket"}, {"wine glass", "wine glass"},
    {"hot dog", "hot dog"},             {"cell phone", "cell phone"},
    {"mobile phone", "mobile phone"},   {"teddy bear", "teddy bear"},
    {"hair drier", "hair drier"},       {"potted plant", "potted plant"},
    {"laptop computer", "laptop computer"}, {"stove top oven", "stove top oven"},
    {"home plate", "home plate"},       {"train track", "train track"},
    {"passenger jet", "jet"},           {"passenger train", "train"},
    {"bow tie", "tie"},                 {"toilet seat", "toilet"},
    {"wine glas", "wine glass"},
};

/* chair.py's rule for the pair (a, b) of singular words: the word the pair
 * becomes, or NULL when it is not one of its pairs. */
static const char *chair_pair_rule(const char *a, const char *b)
{
    if (strcmp(a, "baby") == 0 || strcmp(a, "adult") == 0)
        for (size_t i = 0; i < sizeof CHAIR_YOUNG_ADULT_OF / sizeof *CHAIR_YOUNG_ADULT_OF; i++)
            if (strcmp(b, CHAIR_YOUNG_ADULT_OF[i]) == 0)
                return CHAIR_YOUNG_ADULT_OF[i];
    size_t na = strlen(a);
    for (size_t i = 0; i < sizeof CHAIR_PAIRS / sizeof *CHAIR_PAIRS; i++) {
        const char *p = CHAIR_PAIRS[i][0];
        if (strncmp(p, a, na) == 0 && p[na] == ' ' && strcmp(p + na + 1, b) == 0)
            return CHAIR_PAIRS[i][1];
    }
    return NULL;
}

/* A caption read as chair.py's caption_to_words reads it: every word of
 * nltk.word_tokenize(caption.lower()) singularised, then chair.py's pairs
 * joined, left to right. items[k] are malloc'd. */
static size_t chair_items(const char *caption, char ***items)
{
    char **words;
    size_t n;
    bench_chair_tokenize(caption, &words, &n);
    for (size_t i = 0; i < n; i++) {
        char *s = bench_chair_singularize(words[i]);
        if (!s)
            DIE("out of memory");
        free(words[i]);
        words[i] = s;
    }
    char **out = xmalloc((n ? n : 1) * sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < n; k++) {
        const char *joined = i + 1 < n ? chair_pair_rule(words[i], words[i + 1]) : NULL;
        out[k] = xstrdup(joined ? joined : words[i]);
        i += joined ? 2 : 1;
    }
    bench_chair_words_free(words, n);
    *items = out;
    return k;
}

size_t bench_chair_mentions(const bench_chair_vocab *v, const char *caption, int *ids,
                            size_t max)
{
    char **items;
    size_t n = chair_items(caption, &items);
    /* "the seat of the toilet" is no chair: with "toilet" present (after the
     * pairs are joined), every "seat" is dropped */
    bool toilet = false, seat = false;
    for (size_t i = 0; i < n; i++) {
        toilet |= strcmp(items[i], "toilet") == 0;
        seat |= strcmp(items[i], "seat") == 0;
    }
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        int id = toilet && seat && strcmp(items[i], "seat") == 0 ? -1 : lookup(v, items[i]);
        if (id < 0)
            continue;
        if (count < max)
            ids[count] = id;
        count++;
    }
    bench_chair_words_free(items, n);
    return count;
}

/* chair.py compute_chair: every mention whose category is not among the
 * ground-truth objects is a hallucination; a caption with one is a
 * hallucinated caption; coco_word_count += len(node_words). */
int bench_chair_add(bench_chair_counts *c, const bench_chair_vocab *v, const char *caption,
                    const bool *truth)
{
    int local[256];
    int *ids = local;
    size_t n = bench_chair_mentions(v, caption, local, 256);
    if (n > 256) {
        ids = malloc(n * sizeof *ids);
        if (!ids)
            return ERR("CHAIR: out of memory for %zu mentions", n);
        bench_chair_mentions(v, caption, ids, n);
    }
    long wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += !truth[ids[i]];
    if (ids != local)
        free(ids);
    c->captions++;
    c->mentions += (long)n;
    c->hallucinated_mentions += wrong;
    c->hallucinated_captions += wrong > 0;
    return 0;
}

double bench_chair_s(const bench_chair_counts *c)
{
    return c->captions ? (double)c->hallucinated_captions / (double)c->captions : 0.0;
}

double bench_chair_i(const bench_chair_counts *c)
{
    return c->mentions ? (double)c->hallucinated_mentions / (double)c->mentions : 0.0;
}
