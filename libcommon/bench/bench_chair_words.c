#define _GNU_SOURCE
/* bench_chair_words.c — chair.py's caption_to_words up to the synonym
 * look-up: words = [singularize(w) for w in nltk.word_tokenize(caption.lower())].
 *
 * Sentences: nltk.word_tokenize first splits sentences with Punkt. The
 * rule kept here is that of Punkt without a trained model (no learned
 * abbreviations; nltk_data's English model is not in Debian, see
 * data/benchmarks/README.md): a period ends a sentence when whitespace and
 * a token, or one of )";}]*:@'({[?!, follow it, unless the word ends in
 * ".." or is an initial ("a.") or a number ("3.") followed by a lower-case
 * word or by ;:,.!?. Only periods matter: '?' and '!' are split off as
 * words anyway. A period ending a sentence becomes a word of its own; one
 * inside a sentence stays on its word ("books.the", "mr.").
 *
 * Words: NLTK 3.8's NLTKWordTokenizer rules, in its order, on each
 * sentence, MacIntyre's contractions ("cannot" -> "can not") included. */
#include "bench_chair_words.h"

#include "err.h"
#include "strbuf.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers -- */

/* Python's str.split() whitespace (ASCII part). */
static bool is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static bool is_word_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c >= 0x80;
}

static bool starts_with(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool ends_with(const char *s, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && memcmp(s + n - k, suf, k) == 0;
}

/* UTF-8 opening and closing quotes NLTK spaces out: « “ ‘ „ and » ” ’. */
static const char *const OPEN_QUOTES[] = {"\xc2\xab", "\xe2\x80\x9c", "\xe2\x80\x98",
                                          "\xe2\x80\x9e"};
static const char *const CLOSE_QUOTES[] = {"\xc2\xbb", "\xe2\x80\x9d", "\xe2\x80\x99"};

/* Length of the quote of `set` at s, 0 when none. */
static size_t quote_at(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (starts_with(s, set[i])) return strlen(set[i]);
    return 0;
}

/* re.sub(pattern, " " + (repl or the match) + " ", s), left to right; the
 * matches come from match(p): the length of the match at p, 0 for none. */
static char *respace(const char *s, size_t (*match)(const char *p), const char *repl)
{
    strbuf b = {0};
    strbuf_put(&b, "", 0);
    for (const char *p = s; *p;) {
        size_t k = match(p);
        if (k) {
            strbuf_putc(&b, ' ');
            if (repl) strbuf_puts(&b, repl);
            else strbuf_put(&b, p, k);
            strbuf_putc(&b, ' ');
            p += k;
        } else {
            strbuf_putc(&b, *p++);
        }
    }
    return strbuf_take(&b);
}

/* The patterns NLTK spaces out, as matchers for respace. */
static size_t m_open_quote(const char *p) /* [«“‘„]|[`]+ */
{
    size_t k = quote_at(p, OPEN_QUOTES, 4);
    return k ? k : strspn(p, "`");
}
static size_t m_close_quote(const char *p) { return quote_at(p, CLOSE_QUOTES, 3); }
static size_t m_ellipsis(const char *p) /* \.{2,} */
{
    size_t k = strspn(p, ".");
    return k >= 2 ? k : 0;
}
static size_t m_symbol(const char *p) { return *p && strchr(";@#$%&", *p) ? 1 : 0; }
static size_t m_question(const char *p) { return *p == '?' || *p == '!'; }
static size_t m_star(const char *p) { return *p == '*'; }
static size_t m_bracket(const char *p) { return *p && strchr("[](){}<>", *p) ? 1 : 0; }
static size_t m_backticks(const char *p) { return starts_with(p, "``") ? 2 : 0; }
static size_t m_dashes(const char *p) { return starts_with(p, "--") ? 2 : 0; }
static size_t m_two_quotes(const char *p) { return starts_with(p, "''") ? 2 : 0; }
static size_t m_double_quote(const char *p) { return *p == '"'; }

/* MacIntyre's contractions: r"(?i)\b(can)(?#X)(not)\b" and the like ->
 * r" \1 \2 "; `lead` is " " for CONTRACTIONS3 (" 'tis"), whose match
 * starts at a space instead of a word boundary; `then_space`: the second
 * part must be followed by whitespace ("wanna"), not just a boundary. */
static char *contraction(const char *s, const char *lead, const char *a, const char *b2,
                         bool then_space)
{
    strbuf b = {0};
    strbuf_put(&b, "", 0);
    size_t la = strlen(a), lb = strlen(b2), ll = strlen(lead);
    for (const char *p = s; *p;) {
        const char *w = p + ll;
        bool at_start = ll ? starts_with(p, lead)
                           : (p == s || !is_word_char((unsigned char)p[-1])) &&
                                 is_word_char((unsigned char)*p);
        const char *e = w + la + lb;
        bool hit = at_start && strncmp(w, a, la) == 0 && strncmp(w + la, b2, lb) == 0 &&
                   (then_space ? is_space((unsigned char)*e) && *e
                               : !is_word_char((unsigned char)*e));
        if (hit) {
            strbuf_putc(&b, ' ');
            strbuf_put(&b, w, la);
            strbuf_putc(&b, ' ');
            strbuf_put(&b, w + la, lb);
            strbuf_putc(&b, ' ');
            p = e;
        } else {
            strbuf_putc(&b, *p++);
        }
    }
    return strbuf_take(&b);
}

/* Replaces *s by next (freeing the old string). */
static void step(char **s, char *next)
{
    free(*s);
    *s = next;
}

/* ------------------------------------------------ word rules (NLTK) -- */

/* r"([ \(\[{<])(\"|\'{2})" -> r"\1 `` " */
static char *opening_double_quotes(const char *s)
{
    strbuf b = {0};
    strbuf_put(&b, "", 0);
    for (const char *p = s; *p;) {
        if (*p && strchr(" ([{<", *p) && (p[1] == '"' || (p[1] == '\'' && p[2] == '\''))) {
            strbuf_putc(&b, *p);
            strbuf_puts(&b, " `` ");
            p += p[1] == '"' ? 2 : 3;
        } else {
            strbuf_putc(&b, *p++);
        }
    }
    return strbuf_take(&b);
}

/* r"(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b" -> r"\1 \2": a quote before a
 * one-character word that is not a contraction's ending. */
static char *quote_before_letter(const char *s)
{
    static const char *const ENDINGS[] = {"re", "ve", "ll", "m", "t", "s", "d", "n"};
    strbuf b = {0};
    strbuf_put(&b, "", 0);
    for (const char *p = s; *p;) {
        bool hit = p[0] == '\'' && is_word_char((unsigned char)p[1]) &&
                   !is_word_char((unsigned char)p[2]);
        for (size_t i = 0; hit && i < sizeof ENDINGS / sizeof *ENDINGS; i++)
            if (strncmp(p + 1, ENDINGS[i], strlen(ENDINGS[i])) == 0) hit = false;
        if (hit) {
            strbuf_putc(&b, '\'');
            strbuf_putc(&b, ' ');
            strbuf_putc(&b, p[1]);
            p += 2;
        } else {
            strbuf_putc(&b, *p++);
        }
    }
    return strbuf_take(&b);
}

/* Length of the closer at p (]) } > " ' or a closing UTF-8 quote), 0 if
 * none; with_space: the first final-period rule also counts ' '. */
static size_t closer_before(const char *s, const char *p, bool unicode)
{
    if (p > s && strchr("])}>\"'", p[-1]) && p[-1]) return 1;
    if (unicode && p > s && p[-1] == ' ') return 1;
    for (size_t i = 0; unicode && i < sizeof CLOSE_QUOTES / sizeof *CLOSE_QUOTES; i++) {
        size_t k = strlen(CLOSE_QUOTES[i]);
        if ((size_t)(p - s) >= k && memcmp(p - k, CLOSE_QUOTES[i], k) == 0) return k;
    }
    return 0;
}

/* r'([^\.])(\.)([\]\)}>"\'»”’ ]*)\s*$' -> r"\1 \2 \3 ": the sentence's
 * final period (before closing brackets and quotes) becomes a word. */
static char *final_period(const char *s)
{
    const char *e = s + strlen(s);
    while (e > s && is_space((unsigned char)e[-1]))
        e--;
    const char *r = e;
    for (size_t k; (k = closer_before(s, r, true)) != 0;)
        r -= k;
    if (!(r - s >= 2 && r[-1] == '.' && r[-2] != '.')) return xstrdup(s);
    strbuf b = {0};
    strbuf_put(&b, s, (size_t)(r - 1 - s));
    strbuf_puts(&b, " . ");
    strbuf_put(&b, r, (size_t)(e - r));
    strbuf_putc(&b, ' ');
    return strbuf_take(&b);
}

/* r"([:,])([^\d])" -> r" \1 \2", then r"([:,])$" -> r" \1 ". */
static char *colons_commas(const char *s)
{
    strbuf b = {0};
    strbuf_put(&b, "", 0);
    for (const char *p = s; *p;) {
        if ((*p == ':' || *p == ',') && p[1] && !isdigit((unsigned char)p[1])) {
            strbuf_putc(&b, ' ');
            strbuf_putc(&b, p[0]);
            strbuf_putc(&b, ' ');
            strbuf_putc(&b, p[1]);
            p += 2;
        } else if ((*p == ':' || *p == ',') && !p[1]) {
            strbuf_putc(&b, ' ');
            strbuf_putc(&b, *p++);
            strbuf_putc(&b, ' ');
        } else {
            strbuf_putc(&b, *p++);
        }
    }
    return strbuf_take(&b);
}

/* r"([^'])' " -> r"\1 ' " */
static char *closing_single_quote(const char *s)
{
    strbuf b = {0};
    strbuf_put(&b, "", 0);
    for (const char *p = s; *p;) {
        if (p[0] != '\'' && p[1] == '\'' && p[2] == ' ') {
            strbuf_putc(&b, p[0]);
            strbuf_puts(&b, " ' ");
            p += 3;
        } else {
            strbuf_putc(&b, *p++);
        }
    }
    return strbuf_take(&b);
}

/* r"([^' ])('[sS]|'[mM]|'[dD]|') " and
 * r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) " -> r"\1 \2 ": clitics split
 * off a word before a space (the text is lower-case here). */
static char *clitics(const char *s, const char *const *alts, size_t nalts)
{
    strbuf b = {0};
    strbuf_put(&b, "", 0);
    for (const char *p = s; *p;) {
        size_t k = 0;
        if (p[0] != '\'' && p[0] != ' ')
            for (size_t i = 0; i < nalts && !k; i++)
                if (starts_with(p + 1, alts[i]) && p[1 + strlen(alts[i])] == ' ')
                    k = strlen(alts[i]);
        if (k) {
            strbuf_putc(&b, p[0]);
            strbuf_putc(&b, ' ');
            strbuf_put(&b, p + 1, k);
            strbuf_putc(&b, ' ');
            p += 2 + k;
        } else {
            strbuf_putc(&b, *p++);
        }
    }
    return strbuf_take(&b);
}

/* NLTKWordTokenizer.tokenize on one (lower-case) sentence, as one string
 * whose whitespace-separated pieces are the words. */
static char *treebank(const char *sentence)
{
    static const char *const CLITICS1[] = {"'s", "'m", "'d", "'"};
    static const char *const CLITICS2[] = {"'ll", "'re", "'ve", "n't"};
    char *s = respace(sentence, m_open_quote, NULL);
    if (s[0] == '"') {
        strbuf b = {0};
        strbuf_puts(&b, "``");
        strbuf_puts(&b, s + 1);
        step(&s, strbuf_take(&b));
    }
    step(&s, respace(s, m_backticks, NULL));
    step(&s, opening_double_quotes(s));
    step(&s, quote_before_letter(s));
    step(&s, final_period(s));
    step(&s, colons_commas(s));
    step(&s, respace(s, m_ellipsis, NULL));
    step(&s, respace(s, m_symbol, NULL));
    step(&s, respace(s, m_question, NULL));
    step(&s, closing_single_quote(s));
    step(&s, respace(s, m_star, NULL));
    step(&s, respace(s, m_bracket, NULL));
    step(&s, respace(s, m_dashes, NULL));
    strbuf b = {0};
    strbuf_putc(&b, ' ');
    strbuf_puts(&b, s);
    strbuf_putc(&b, ' ');
    step(&s, strbuf_take(&b));
    step(&s, respace(s, m_close_quote, NULL));
    step(&s, respace(s, m_two_quotes, NULL));
    step(&s, respace(s, m_double_quote, "''"));
    step(&s, clitics(s, CLITICS1, 4));
    step(&s, clitics(s, CLITICS2, 4));
    static const char *const PAIRS[][2] = {{"can", "not"}, {"d", "'ye"}, {"gim", "me"},
                                           {"gon", "na"},  {"got", "ta"}, {"lem", "me"},
                                           {"more", "'n"}};
    for (size_t i = 0; i < sizeof PAIRS / sizeof *PAIRS; i++)
        step(&s, contraction(s, "", PAIRS[i][0], PAIRS[i][1], false));
    step(&s, contraction(s, "", "wan", "na", true));
    step(&s, contraction(s, " ", "'t", "is", false));
    step(&s, contraction(s, " ", "'t", "was", false));
    return s;
}

/* ------------------------------------------------- sentences (Punkt) -- */

/* Punkt's non-word characters: a period before one is a candidate end. */
static bool punkt_non_word(char c)
{
    return c && strchr(")\";}]*:@'({[?!", c);
}

/* Punkt's number type: ^-?[\.,]?\d[\d,\.-]*\.?$ */
static bool punkt_number(const char *w, size_t n)
{
    size_t i = 0;
    if (i < n && w[i] == '-') i++;
    if (i < n && (w[i] == '.' || w[i] == ',')) i++;
    if (!(i < n && isdigit((unsigned char)w[i]))) return false;
    for (i++; i < n && (isdigit((unsigned char)w[i]) || strchr(",.-", w[i])); i++)
        ;
    return i == n;
}

/* Does the period at text[i] end a sentence? (Untrained Punkt.) */
static bool punkt_break(const char *text, size_t i)
{
    char after = text[i + 1];
    const char *next = NULL;
    if (is_space((unsigned char)after)) {
        next = text + i + 1;
        while (is_space((unsigned char)*next))
            next++;
        if (!*next) return false;
    } else if (!punkt_non_word(after)) {
        return false;
    }
    size_t start = i;
    while (start > 0 && !is_space((unsigned char)text[start - 1]))
        start--;
    /* Punkt's word for the period: back to a character that ends words,
     * then past characters that cannot start one */
    size_t w = i;
    while (w > start && !punkt_non_word(text[w - 1]))
        w--;
    while (w < i && strchr("(\"`{[:;&#*@)}]-,", text[w]))
        w++;
    const char *word = text + w;
    size_t n = i + 1 - w;
    if (n >= 2 && word[n - 2] == '.') return false; /* ".." or an ellipsis */
    if (n == 1) return true;                         /* a lone "." */
    bool initial = n == 2 && (isalpha((unsigned char)word[0]) || word[0] == '_');
    if (!initial && !punkt_number(word, n - 1)) return true;
    /* an initial or a number: no break before a lower-case word or one of
     * ;:,!? (or a lone ".") */
    const char *c = next ? next : text + i + 1;
    bool lone_period = c[0] == '.' && (!c[1] || is_space((unsigned char)c[1]) ||
                                      (punkt_non_word(c[1]) && c[1] != '.'));
    return !(islower((unsigned char)c[0]) || (c[0] && strchr(";:,!?", c[0])) || lone_period);
}

int bench_chair_tokenize(const char *caption, char ***words, size_t *n)
{
    char *low = xstrdup(caption);
    for (char *p = low; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    strbuf all = {0};
    strbuf_put(&all, "", 0);
    size_t start = 0, len = strlen(low);
    for (size_t i = 0; i <= len; i++) {
        bool end = i == len || (low[i] == '.' && punkt_break(low, i));
        if (!end) continue;
        size_t stop = i == len ? len : i + 1;
        char *sentence = strndup(low + start, stop - start);
        if (!sentence) DIE("out of memory");
        char *t = treebank(sentence);
        strbuf_putc(&all, ' ');
        strbuf_puts(&all, t);
        free(t);
        free(sentence);
        start = stop;
    }
    free(low);
    char *s = strbuf_take(&all);
    size_t cap = 16, count = 0;
    char **out = xmalloc(cap * sizeof *out);
    for (char *p = s; *p;) {
        while (*p && is_space((unsigned char)*p))
            p++;
        if (!*p) break;
        char *q = p;
        while (*q && !is_space((unsigned char)*q))
            q++;
        if (count == cap) {
            cap *= 2;
            out = xrealloc(out, cap * sizeof *out);
        }
        out[count] = strndup(p, (size_t)(q - p));
        if (!out[count]) DIE("out of memory");
        count++;
        p = q;
    }
    free(s);
    *words = out;
    *n = count;
    return 0;
}

void bench_chair_words_free(char **words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

/* ---------------------------------------------- singular (pattern.en) -- */

static const char *const PLURAL_PREPOSITIONS[] = {
    "about", "before", "during", "of", "till", "above", "behind", "except", "off", "to",
    "across", "below", "for", "on", "under", "after", "beneath", "from", "onto", "until",
    "among", "beside", "in", "out", "unto", "around", "besides", "into", "over", "upon",
    "at", "between", "near", "since", "with", "athwart", "betwixt", "beyond", "but", "by"};

/* Words pattern.en leaves as they are; note that its test is
 * x.endswith(word), so any ending of these ("s", "es", "a") is kept too. */
static const char *const UNCHANGED[] = {
    "bison", "debris", "headquarters", "pincers", "trout", "bream", "diabetes", "herpes",
    "pliers", "tuna", "breeches", "djinn", "high-jinks", "proceedings", "whiting", "britches",
    "eland", "homework", "rabies", "wildebeest", "carp", "elk", "innings", "salmon", "chassis",
    "flounder", "jackanapes", "scissors", "christmas", "gallows", "mackerel", "series",
    "clippers", "georgia", "measles", "shears", "cod", "graffiti", "mews", "species",
    "contretemps", "mumps", "swine", "corps", "news", "swiss",
    /* uncountable */
    "advice", "equipment", "happiness", "luggage", "software", "bread", "fruit",
    "information", "mathematics", "progress", "understanding", "butter", "furniture",
    "ketchup", "mayonnaise", "research", "water", "cheese", "garbage", "knowledge", "meat",
    "rice", "electricity", "gravel", "love", "mustard", "sand"};

/* Nouns in -ie whose plural pattern.en returns unchanged (w.endswith(x + "s");
 * "^pie" and "^tie" are matched literally, caret included). */
static const char *const IE_NOUNS[] = {
    "alergie", "cutie", "hoagie", "newbie", "softie", "veggie", "auntie", "doggie", "hottie",
    "nightie", "sortie", "weenie", "beanie", "eyrie", "indie", "oldie", "stoolie", "yuppie",
    "birdie", "freebie", "junkie", "^pie", "sweetie", "zombie", "bogie", "goonie", "laddie",
    "pixie", "techie", "bombie", "groupie", "laramie", "quickie", "^tie", "collie", "hankie",
    "lingerie", "reverie", "toughie", "cookie", "hippie", "meanie", "rookie", "valkyrie"};

/* Irregular plurals, in pattern.en's order; matched as word endings. */
static const char *const IRREGULAR[][2] = {
    {"atlantes", "atlas"}, {"atlases", "atlas"}, {"axes", "axe"}, {"beeves", "beef"},
    {"brethren", "brother"}, {"children", "child"}, {"corpora", "corpus"},
    {"corpuses", "corpus"}, {"ephemerides", "ephemeris"}, {"feet", "foot"},
    {"ganglia", "ganglion"}, {"geese", "goose"}, {"genera", "genus"}, {"genii", "genie"},
    {"graffiti", "graffito"}, {"helves", "helve"}, {"kine", "cow"}, {"leaves", "leaf"},
    {"loaves", "loaf"}, {"men", "man"}, {"mongooses", "mongoose"}, {"monies", "money"},
    {"moves", "move"}, {"mythoi", "mythos"}, {"numena", "numen"}, {"occipita", "occiput"},
    {"octopodes", "octopus"}, {"opera", "opus"}, {"opuses", "opus"}, {"our", "my"},
    {"oxen", "ox"}, {"penes", "penis"}, {"penises", "penis"}, {"people", "person"},
    {"sexes", "sex"}, {"soliloquies", "soliloquy"}, {"teeth", "tooth"}, {"testes", "testis"},
    {"trilbys", "trilby"}, {"turves", "turf"}, {"zoa", "zoon"}};

/* w[0..n-k) + add (malloc'd). */
static char *replace_end(const char *w, size_t n, size_t k, const char *add)
{
    strbuf b = {0};
    strbuf_put(&b, w, n - k);
    strbuf_puts(&b, add);
    return strbuf_take(&b);
}

/* Does w end in suf with at least `before` characters before it? */
static bool ends_after(const char *w, size_t n, const char *suf, size_t before)
{
    return ends_with(w, n, suf) && n >= strlen(suf) + before;
}

/* The character before the suffix suf of w (which ends in suf). */
static char before_suffix(const char *w, size_t n, const char *suf)
{
    return w[n - strlen(suf) - 1];
}

/* pattern.en's -ses rule: ((a)naly|(b)a|(d)iagno|(p)arenthe|(p)rogno|(s)ynop|(t)he)ses$
 * -> \1\2sis, \2 being the "a" of "analy" only. The longest stem wins
 * (the leftmost match). */
static char *ses_rule(const char *w, size_t n)
{
    static const char *const STEMS[] = {"parenthe", "diagno", "progno", "analy", "synop",
                                        "the", "ba"};
    for (size_t i = 0; i < sizeof STEMS / sizeof *STEMS; i++) {
        char suf[16];
        snprintf(suf, sizeof suf, "%sses", STEMS[i]);
        if (ends_with(w, n, suf))
            return replace_end(w, n, 3, strcmp(STEMS[i], "analy") == 0 ? "asis" : "sis");
    }
    return NULL;
}

/* The suffix rules (pattern.en's singular_rules, in order); NULL when none
 * applies. */
static char *suffix_rules(const char *w, size_t n)
{
    static const char *const DROP_S[] = {"shoes", "sives", "tives", "hives", "movies"};
    static const char *const DROP_ES[] = {"quizzes", "aliases", "statuses", "oes", "buses",
                                          "xes", "ches", "sses", "shes"};
    if (ends_after(w, n, "ae", 1)) return replace_end(w, n, 1, "");
    if (ends_after(w, n, "itis", 1)) return xstrdup(w);
    if (ends_after(w, n, "eaux", 1)) return replace_end(w, n, 1, "");
    if (ends_with(w, n, "quizzes")) return replace_end(w, n, 3, "");
    if (ends_with(w, n, "matrices")) return replace_end(w, n, 4, "ix");
    if (ends_with(w, n, "apices") || ends_with(w, n, "vertices") || ends_with(w, n, "indices"))
        return replace_end(w, n, 4, "ex");
    if (starts_with(w, "oxen")) return replace_end(w, 4, 2, w + 4);
    if (ends_with(w, n, "aliases") || ends_with(w, n, "statuses")) return replace_end(w, n, 2, "");
    if (n >= 2 && w[n - 1] == 'i' && strchr("octp|vir", w[n - 2])) return replace_end(w, n, 1, "us");
    if (ends_with(w, n, "crises") || ends_with(w, n, "axes") || ends_with(w, n, "testes"))
        return replace_end(w, n, 2, "is");
    if (ends_with(w, n, "shoes")) return replace_end(w, n, 1, "");
    for (size_t i = 3; i < sizeof DROP_ES / sizeof *DROP_ES; i++) {
        if (i == 5) {  /* ([m|l])ice$ comes between (bus)es$ and (x|ch|ss|sh)es$ */
            if (ends_after(w, n, "ice", 1) && strchr("m|l", before_suffix(w, n, "ice")))
                return replace_end(w, n, 3, "ouse");
        }
        if (ends_with(w, n, DROP_ES[i])) return replace_end(w, n, 2, "");
    }
    if (ends_with(w, n, "movies")) return replace_end(w, n, 1, "");
    if (ends_after(w, n, "ombies", 1)) return replace_end(w, n, 1, "");
    if (ends_with(w, n, "series")) return xstrdup(w);
    if (ends_with(w, n, "quies") ||
        (ends_after(w, n, "ies", 1) && !strchr("aeiouy", before_suffix(w, n, "ies"))))
        return replace_end(w, n, 3, "y");
    if (ends_with(w, n, "alves") || ends_with(w, n, "elves") || ends_with(w, n, "olves"))
        return replace_end(w, n, 3, "f");
    if (ends_after(w, n, "eaves", 1) && before_suffix(w, n, "eaves") != 'd')
        return replace_end(w, n, 3, "f");
    if (ends_with(w, n, "arves")) return replace_end(w, n, 3, "f");
    if (ends_with(w, n, "erves")) return replace_end(w, n, 1, "");
    if (ends_with(w, n, "nives") || ends_with(w, n, "lives") || ends_with(w, n, "wives"))
        return replace_end(w, n, 3, "fe");
    if (ends_with(w, n, "lves") || ends_with(w, n, "rves")) return replace_end(w, n, 3, "f");
    if (ends_with(w, n, "aves") || ends_with(w, n, "eves") || ends_with(w, n, "oves"))
        return replace_end(w, n, 1, "");
    for (size_t i = 1; i < 4; i++)
        if (ends_with(w, n, DROP_S[i])) return replace_end(w, n, 1, "");
    if (ends_after(w, n, "ves", 1) && before_suffix(w, n, "ves") != 'f')
        return replace_end(w, n, 3, "fe");
    if (strcmp(w, "analyses") == 0) return xstrdup("analysis");
    char *ses = ses_rule(w, n);
    if (ses) return ses;
    if (ends_after(w, n, "opses", 1)) return replace_end(w, n, 2, "is");
    if (ends_after(w, n, "yses", 1)) return replace_end(w, n, 2, "is");
    if (ends_after(w, n, "oses", 1) &&
        (strchr("hdronbp", before_suffix(w, n, "oses")) || ends_with(w, n, "closes")))
        return replace_end(w, n, 1, "");
    static const char *const SUGARS[] = {"fructose", "glucose", "galactose", "lactose",
                                         "ketose", "maltose", "ribose", "saccharose",
                                         "cellulose"};
    for (size_t i = 0; i < sizeof SUGARS / sizeof *SUGARS; i++)
        if (ends_with(w, n, SUGARS[i])) return xstrdup(w);
    if (ends_after(w, n, "oses", 1)) return replace_end(w, n, 2, "is");
    if (n >= 2 && w[n - 1] == 'a' && (w[n - 2] == 't' || w[n - 2] == 'i'))
        return replace_end(w, n, 1, "um");
    if (ends_with(w, n, "news")) return xstrdup(w);
    if (n >= 1 && w[n - 1] == 's') return replace_end(w, n, 1, "");
    return NULL;
}

char *bench_chair_singularize(const char *word)
{
    size_t n = strlen(word);
    const char *dash = strchr(word, '-');
    if (dash) {
        const char *second = dash + 1, *end2 = strchr(second, '-');
        size_t k = end2 ? (size_t)(end2 - second) : strlen(second);
        for (size_t i = 0; i < sizeof PLURAL_PREPOSITIONS / sizeof *PLURAL_PREPOSITIONS; i++)
            if (strlen(PLURAL_PREPOSITIONS[i]) == k && !strncmp(second, PLURAL_PREPOSITIONS[i], k)) {
                char *head = strndup(word, (size_t)(dash - word));
                char *s = head ? bench_chair_singularize(head) : NULL;
                if (!s) DIE("out of memory");
                char *out = replace_end(s, strlen(s), 0, dash);
                free(head);
                free(s);
                return out;
            }
    }
    if (n && word[n - 1] == '\'') {
        char *head = strndup(word, n - 1);
        char *s = head ? bench_chair_singularize(head) : NULL;
        if (!s) DIE("out of memory");
        char *out = replace_end(s, strlen(s), 0, "'s");
        free(head);
        free(s);
        return out;
    }
    for (size_t i = 0; i < sizeof UNCHANGED / sizeof *UNCHANGED; i++)
        if (ends_with(UNCHANGED[i], strlen(UNCHANGED[i]), word)) return xstrdup(word);
    for (size_t i = 0; i < sizeof IE_NOUNS / sizeof *IE_NOUNS; i++) {
        char suf[32];
        snprintf(suf, sizeof suf, "%ss", IE_NOUNS[i]);
        if (ends_with(word, n, suf)) return xstrdup(word);
    }
    for (size_t i = 0; i < sizeof IRREGULAR / sizeof *IRREGULAR; i++)
        if (ends_with(word, n, IRREGULAR[i][0]))
            return replace_end(word, n, strlen(IRREGULAR[i][0]), IRREGULAR[i][1]);
    char *r = suffix_rules(word, n);
    if (r) return r;
    return xstrdup(word);
}
