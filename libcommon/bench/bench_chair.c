/* bench_chair.c — CHAIR_s / CHAIR_i from captions and ground-truth object
 * sets, after chair.py (Rohrbach et al., "Object Hallucination in Image
 * Captioning", EMNLP 2018). Differences, documented in
 * data/benchmarks/README.md: words are runs of letters and digits (not
 * nltk.word_tokenize), and singular forms come from the small rule set
 * below (not pattern.en's singularize). */
#include "bench_chair.h"

#include "err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORD_MAX 64

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

/* Irregular plurals common in captions (pattern.en knows these). */
static const char *const IRREGULAR[][2] = {
    {"men", "man"},       {"women", "woman"},   {"people", "person"},
    {"children", "child"}, {"mice", "mouse"},   {"geese", "goose"},
    {"teeth", "tooth"},   {"feet", "foot"},     {"knives", "knife"},
    {"leaves", "leaf"},   {"buses", "bus"},     {"skis", "ski"},
    {"glasses", "glass"}, {"couches", "couch"}, {"benches", "bench"},
    {"sandwiches", "sandwich"}, {"boxes", "box"}, {"dishes", "dish"},
};

static bool ends_with(const char *w, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && memcmp(w + n - k, suf, k) == 0;
}

/* The singular of a lower-case word into out (WORD_MAX); false if the
 * rules give none. Irregular table, then -ies -> -y, -(ch|sh|x|ss)es ->
 * drop -es, -s (not -ss, -us) -> drop -s. */
static bool singular(const char *w, char *out)
{
    size_t n = strlen(w);
    for (size_t i = 0; i < sizeof IRREGULAR / sizeof IRREGULAR[0]; i++)
        if (strcmp(w, IRREGULAR[i][0]) == 0) {
            strcpy(out, IRREGULAR[i][1]);
            return true;
        }
    if (n > 4 && ends_with(w, n, "ies")) {
        memcpy(out, w, n - 3);
        strcpy(out + n - 3, "y");
        return true;
    }
    if (ends_with(w, n, "ches") || ends_with(w, n, "shes") || ends_with(w, n, "xes") ||
        ends_with(w, n, "sses")) {
        memcpy(out, w, n - 2);
        out[n - 2] = '\0';
        return true;
    }
    if (n > 2 && w[n - 1] == 's' && !ends_with(w, n, "ss") && !ends_with(w, n, "us")) {
        memcpy(out, w, n - 1);
        out[n - 1] = '\0';
        return true;
    }
    return false;
}

/* chair.py singularises every caption word before any look-up; here a word
 * the table knows as written stays as it is ("bus", "skis"), any other
 * takes its singular from the rules above when they give one. */
static void normal_form(const bench_chair_vocab *v, const char *w, char *out)
{
    if (lookup(v, w) >= 0 || !singular(w, out))
        snprintf(out, WORD_MAX, "%s", w);
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
 * words mention nothing ("train track" is not a train). */
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
    {"laptop computer", "laptop computer"}, {"home plate", "home plate"},
    {"train track", "train track"},     {"passenger jet", "jet"},
    {"passenger train", "train"},       {"bow tie", "tie"},
    {"toilet seat", "toilet"},          {"wine glas", "wine glass"},
};

/* chair.py's fixed rule for the pair (a, b) of normal forms: the word the
 * pair becomes, or NULL when the pair is not one of its special pairs. */
static const char *chair_pair_rule(const char *a, const char *b)
{
    if (strcmp(a, "baby") == 0 || strcmp(a, "adult") == 0)
        for (size_t i = 0; i < sizeof CHAIR_YOUNG_ADULT_OF / sizeof *CHAIR_YOUNG_ADULT_OF; i++)
            if (strcmp(b, CHAIR_YOUNG_ADULT_OF[i]) == 0)
                return CHAIR_YOUNG_ADULT_OF[i];
    char pair[2 * WORD_MAX + 1];
    snprintf(pair, sizeof pair, "%s %s", a, b);
    for (size_t i = 0; i < sizeof CHAIR_PAIRS / sizeof *CHAIR_PAIRS; i++)
        if (strcmp(pair, CHAIR_PAIRS[i][0]) == 0)
            return CHAIR_PAIRS[i][1];
    return NULL;
}

/* Next lower-cased word (run of letters/digits, cut at WORD_MAX-1) from
 * *p into w; false at the end of the text. */
static bool next_word(const char **p, char *w)
{
    const char *s = *p;
    while (*s && !isalnum((unsigned char)*s))
        s++;
    if (!*s)
        return false;
    size_t n = 0;
    for (; isalnum((unsigned char)*s); s++)
        if (n < WORD_MAX - 1)
            w[n++] = (char)tolower((unsigned char)*s);
    w[n] = '\0';
    *p = s;
    return true;
}

/* A caption read as chair.py's caption_to_words reads it: normal forms of
 * the words, with special pairs (and two-word names of the table) joined. */
typedef struct {
    const bench_chair_vocab *v;
    const char *p;
    char cur[WORD_MAX], nxt[WORD_MAX];
    bool have_cur, have_nxt;
} chair_words;

static bool chair_read_word(chair_words *s, char *out)
{
    char w[WORD_MAX];
    if (!next_word(&s->p, w))
        return false;
    normal_form(s->v, w, out);
    return true;
}

static void chair_words_init(chair_words *s, const bench_chair_vocab *v, const char *caption)
{
    s->v = v;
    s->p = caption;
    s->have_cur = chair_read_word(s, s->cur);
    s->have_nxt = s->have_cur && chair_read_word(s, s->nxt);
}

/* The next item (a word, or a joined pair) into item[2*WORD_MAX]; false at
 * the end. A pair is joined when chair.py's rule names it, or (for tables
 * other than COCO's, whose two-word names are all in the rule) when the
 * table lists the two words as one name. */
static bool chair_words_next(chair_words *s, char *item)
{
    if (!s->have_cur)
        return false;
    const char *joined = s->have_nxt ? chair_pair_rule(s->cur, s->nxt) : NULL;
    if (joined) {
        snprintf(item, 2 * WORD_MAX, "%s", joined);
    } else if (s->have_nxt) {
        snprintf(item, 2 * WORD_MAX, "%s %s", s->cur, s->nxt);
        if (lookup(s->v, item) >= 0)
            joined = item;
    }
    if (joined) {
        s->have_cur = chair_read_word(s, s->cur);
        s->have_nxt = s->have_cur && chair_read_word(s, s->nxt);
        return true;
    }
    snprintf(item, 2 * WORD_MAX, "%s", s->cur);
    memcpy(s->cur, s->nxt, sizeof s->cur);
    s->have_cur = s->have_nxt;
    s->have_nxt = s->have_cur && chair_read_word(s, s->nxt);
    return true;
}

/* chair.py: when the caption holds both "toilet" and "seat" (after the
 * pairs are joined), every "seat" is dropped ("the seat of the toilet" is
 * no chair). */
static bool chair_drops_seat(const bench_chair_vocab *v, const char *caption)
{
    chair_words s;
    char item[2 * WORD_MAX];
    bool toilet = false, seat = false;
    chair_words_init(&s, v, caption);
    while (chair_words_next(&s, item)) {
        toilet |= strcmp(item, "toilet") == 0;
        seat |= strcmp(item, "seat") == 0;
    }
    return toilet && seat;
}

size_t bench_chair_mentions(const bench_chair_vocab *v, const char *caption, int *ids,
                            size_t max)
{
    bool drop_seat = chair_drops_seat(v, caption);
    size_t count = 0;
    chair_words s;
    char item[2 * WORD_MAX];
    chair_words_init(&s, v, caption);
    while (chair_words_next(&s, item)) {
        if (drop_seat && strcmp(item, "seat") == 0)
            continue;
        int id = lookup(v, item);
        if (id < 0)
            continue;
        if (count < max)
            ids[count] = id;
        count++;
    }
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
