/* sima-bench-questions.c — the runner's questions: read from a JSONL file
 * (data/benchmarks/README.md) or from the official release files through
 * bench_source_load, checked per benchmark; the prompts and the decoding
 * limits LLaVA-1.5's evaluation uses. */
#define _GNU_SOURCE
#include "sima-bench.h"

#include "bench_source.h"
#include "bench_yesno.h"
#include "err.h"
#include "hash.h"
#include "fs.h"
#include "h5io.h"
#include "libcheck.h"
#include "log.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LLaVA-1.5's short-answer instruction (POPE, MME, VQAv2, GQA, TextVQA). */
const char BQ_SHORT_ANSWER[] = "\nAnswer the question using a single word or phrase.";
/* LLaVA-1.5's multiple-choice instruction (ScienceQA, MMBench, SEED). */
const char BQ_CHOICE_ANSWER[] =
    "\nAnswer with the option's letter from the given choices directly.";

/* Longest answer per benchmark. LLaVA-1.5's short-answer scripts
 * (model_vqa_loader.py: POPE, MME, VQAv2, TextVQA, VizWiz, GQA, SEED) stop at
 * 128 new tokens; model_vqa_science.py and model_vqa_mmbench.py, and the
 * open-ended model_vqa.py (LLaVA-Bench, MM-Vet), at 1024; captions (CHAIR)
 * and the other judge-scored benchmarks get 1024 as well. Greedy answers
 * end at EOS long before these limits. */
static const struct {
    const char *bench;
    int max_new;
} MAX_NEW[] = {{"pope", 128},        {"mme", 128},      {"vqa", 128},      {"textvqa", 128},
               {"vizwiz", 128},      {"vqav2", 128},    {"gqa", 128},      {"seed", 128},
               {"scienceqa", 1024},  {"mmbench", 1024}, {"chair", 1024},   {"llava_bench", 1024},
               {"mmvet", 1024},      {"mmhal", 1024},   {"mementos", 1024}};
#define N_MAX_NEW (sizeof MAX_NEW / sizeof MAX_NEW[0])

bool bq_is_choice(const char *b)
{
    return !strcmp(b, "scienceqa") || !strcmp(b, "mmbench") || !strcmp(b, "seed");
}

bool bq_is_vqa(const char *b)
{
    return !strcmp(b, "vqa") || !strcmp(b, "textvqa") || !strcmp(b, "vizwiz") ||
           !strcmp(b, "vqav2");
}

bool bq_is_short(const char *b)
{
    return !strcmp(b, "pope") || !strcmp(b, "mme") || !strcmp(b, "gqa") || bq_is_vqa(b);
}

int bq_max_new(const bench_args *a, const char *bench)
{
    if (a->max_new > 0) return a->max_new;
    for (size_t i = 0; i < N_MAX_NEW; i++)
        if (strcmp(MAX_NEW[i].bench, bench) == 0) return MAX_NEW[i].max_new;
    return 128;
}

char *bq_max_new_table(void)
{
    char *s = xstrdup("");
    for (size_t i = 0; i < N_MAX_NEW; i++) {
        char *t = NULL;
        if (asprintf(&t, "%s%s=%d,", s, MAX_NEW[i].bench, MAX_NEW[i].max_new) < 0)
            DIE("out of memory");
        free(s);
        s = t;
    }
    return s;
}

json_t *bq_max_new_json(const bench_args *a, const question_set *qs)
{
    json_t *o = json_object();
    for (int64_t i = 0; i < qs->n; i++)
        json_object_set_new(o, qs->q[i].bench, json_integer(bq_max_new(a, qs->q[i].bench)));
    return o;
}

/* ------------------------------------------------------------ checks -- */

static const char *get_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool is_string_array(json_t *v, size_t min, size_t max)
{
    size_t i, n = json_array_size(v);
    json_t *e;
    if (!json_is_array(v) || n < min || n > max) return false;
    json_array_foreach(v, i, e) if (!json_is_string(e)) return false;
    return true;
}

static int check_yesno(const question *q)
{
    if (!q->label || (strcmp(q->label, "yes") && strcmp(q->label, "no")))
        return ERR("%s needs \"label\": \"yes\" or \"no\"", q->bench);
    if (!strcmp(q->bench, "mme") && (!q->subtask || bench_mme_subtask_index(q->subtask) < 0))
        return ERR("mme needs \"subtask\", one of MME's 14");
    return 0;
}

static int check_choice(const question *q)
{
    size_t n = json_array_size(q->options);
    if (!is_string_array(q->options, 2, 26))
        return ERR("%s needs \"options\": 2 to 26 strings", q->bench);
    if (!q->answer || strlen(q->answer) != 1 || q->answer[0] < 'A' ||
        (size_t)(q->answer[0] - 'A') >= n)
        return ERR("%s needs \"answer\": the letter of an option", q->bench);
    return 0;
}

/* One question's fields for its benchmark (errors without location). */
static int check_fields(const question *q)
{
    if (!q->id || !q->bench || (!q->image && !q->image_b64) || !q->question)
        return ERR("question_id, benchmark, image and question are required");
    if (!strcmp(q->bench, "pope") || !strcmp(q->bench, "mme")) return check_yesno(q);
    if (!strcmp(q->bench, "gqa"))
        return q->answer ? 0 : ERR("gqa needs \"answer\"");
    if (bq_is_choice(q->bench)) return check_choice(q);
    if (bq_is_vqa(q->bench)) {
        /* test splits (VQAv2 test-dev, VizWiz test) have no answers: unscored */
        if (!q->answers && strcmp(q->bench, "vqa") != 0) return 0;
        return is_string_array(q->answers, 1, SIZE_MAX)
                   ? 0
                   : ERR("%s needs a non-empty \"answers\" array of strings", q->bench);
    }
    if (!strcmp(q->bench, "chair"))
        return is_string_array(q->objects, 0, SIZE_MAX)
                   ? 0
                   : ERR("chair needs \"objects\": an array of category names");
    if (bench_is_judge_scored(q->bench)) return 0;
    return ERR("unknown benchmark \"%s\"", q->bench);
}

static question question_of(json_t *o, int64_t default_index)
{
    json_t *index = json_object_get(o, "index");
    return (question){.obj = o,
                      .id = get_str(o, "question_id"),
                      .bench = get_str(o, "benchmark"),
                      .question = get_str(o, "question"),
                      .image = get_str(o, "image"),
                      .image_b64 = get_str(o, "image_base64"),
                      .label = get_str(o, "label"),
                      .split = get_str(o, "split"),
                      .subtask = get_str(o, "subtask"),
                      .answers = json_object_get(o, "answers"),
                      .answer = get_str(o, "answer"),
                      .options = json_object_get(o, "options"),
                      .objects = json_object_get(o, "objects"),
                      .index = json_is_integer(index) ? json_integer_value(index)
                                                      : default_index};
}

/* ---------------------------------------------------------- the set -- */

static void count_missing(question_set *qs, const char *bench, long n, const char *path)
{
    if (n <= 0) return;
    json_t *c = json_object_get(qs->missing, bench);
    json_object_set_new(qs->missing, bench,
                        json_integer((c ? json_integer_value(c) : 0) + (json_int_t)n));
    if (path && !json_object_get(qs->first_missing, bench))
        json_object_set_new(qs->first_missing, bench, json_string(path));
}

/* Appends a checked question object (stolen) to the set. */
static void push_question(question_set *qs, json_t *o)
{
    json_array_append_new(qs->objs, o);
    qs->n++;
}

/* The question views, once the array no longer grows. */
static void index_questions(question_set *qs)
{
    qs->q = xmalloc(sizeof *qs->q * (size_t)(qs->n ? qs->n : 1));
    for (int64_t i = 0; i < qs->n; i++)
        qs->q[i] = question_of(json_array_get(qs->objs, (size_t)i), i + 1);
}

/* One JSONL line's object: checked; its image resolved against dir. Sets
 * *keep false (and counts) when the image file is missing and images are
 * needed (sima-bench score reads answers, not images). */
static int take_line(question_set *qs, json_t *o, const char *dir, bool need_images, bool *keep)
{
    question q = question_of(o, qs->n + 1);
    *keep = false;
    if (check_fields(&q) != 0) return -1;
    if (!q.image) {
        *keep = true;
        return 0;
    }
    char *path = q.image[0] == '/' ? xstrdup(q.image) : fs_join(dir, q.image);
    *keep = !need_images || fs_is_file(path);
    if (*keep) json_object_set_new(o, "image", json_string(path));
    else count_missing(qs, q.bench, 1, path);
    free(path);
    return 0;
}

int bq_jsonl_each(const char *path, char *text, int (*take)(void *ctx, json_t *o), void *ctx)
{
    int64_t line = 0;
    int rc = 0;
    for (char *p = text; rc == 0 && *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = '\0';
        line++;
        if (strspn(p, " \t\r") != strlen(p)) {
            json_error_t je;
            json_t *o = json_loads(p, 0, &je);
            if (!json_is_object(o)) {
                json_decref(o);
                rc = ERR("%s: line %lld: not a JSON object (%s)", path, (long long)line, je.text);
            } else if ((rc = take(ctx, o)) < 0) {
                err_context("%s: line %lld", path, (long long)line);
            }
        }
        p = e ? e + 1 : p + strlen(p);
    }
    return rc < 0 ? -1 : 0;
}

typedef struct {
    question_set *qs;
    const char *dir;
    int64_t limit;
    bool need_images;
} jsonl_load;

/* One question line: kept (the set owns it) or dropped; 1 at --limit. */
static int take_question(void *ctx, json_t *o)
{
    jsonl_load *l = ctx;
    bool keep = false;
    if (take_line(l->qs, o, l->dir, l->need_images, &keep) != 0) {
        json_decref(o);
        return -1;
    }
    if (keep) push_question(l->qs, o);
    else json_decref(o);
    return l->qs->n >= l->limit ? 1 : 0;
}

static int load_jsonl(const char *path, int64_t limit, bool need_images, question_set *qs)
{
    char *text = NULL;
    size_t len = 0;
    if (fs_read_all(path, &text, &len) != 0) return -1;
    qs->hash = hash_fnv1a(text, len, HASH_FNV_INIT);
    char *copy = xstrdup(path);
    char *dir = xstrdup(dirname(copy));
    free(copy);
    jsonl_load l = {qs, dir, limit, need_images};
    int rc = bq_jsonl_each(path, text, take_question, &l);
    free(dir);
    free(text);
    return rc;
}

/* The suites of a comma-separated list ("all": every reader's). */
static int load_suites(const bench_args *a, question_set *qs)
{
    const char *const *names = bench_source_names();
    char *list = xstrdup(a->suites);
    int rc = 0;
    for (char *save = NULL, *s = strtok_r(list, ",", &save); rc == 0 && s;
         s = strtok_r(NULL, ",", &save)) {
        for (size_t k = 0; rc == 0 && names[k]; k++) {
            if (strcmp(s, "all") != 0 && strcmp(s, names[k]) != 0) continue;
            json_t *arr = json_array();
            bench_source_report rep = {0};
            rc = bench_source_load(names[k], a->data_root, a->limit == INT64_MAX ? 0 : a->limit,
                                   arr, &rep);
            size_t i;
            json_t *o;
            json_array_foreach(arr, i, o) {
                if (rc != 0) break;
                question q = question_of(o, (int64_t)i + 1);
                if (check_fields(&q) != 0)
                    rc = err_context("%s: suite %s, question %zu", a->data_root, names[k], i + 1);
                else push_question(qs, json_incref(o));
            }
            if (rc == 0) count_missing(qs, names[k], rep.missing_images, rep.first_missing);
            bench_source_report_free(&rep);
            json_decref(arr);
        }
    }
    free(list);
    if (rc == 0) {
        /* the run's identity: every question object (paths, answers, texts) */
        char *dump = json_dumps(qs->objs, JSON_COMPACT | JSON_SORT_KEYS);
        if (!dump) DIE("out of memory");
        qs->hash = hash_fnv1a(dump, strlen(dump), HASH_FNV_INIT);
        free(dump);
    }
    return rc;
}

/* Question ids must be unique: answers are joined to questions by id. */
static int check_unique_ids(const question_set *qs)
{
    json_t *seen = json_object();
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < qs->n; i++) {
        char *key = NULL;
        if (asprintf(&key, "%s\x1f%s", qs->q[i].bench, qs->q[i].id) < 0) DIE("out of memory");
        if (json_object_get(seen, key))
            rc = ERR("question id \"%s\" of %s appears twice", qs->q[i].id, qs->q[i].bench);
        json_object_set_new(seen, key, json_true());
        free(key);
    }
    json_decref(seen);
    return rc;
}

static void init_set(question_set *qs)
{
    memset(qs, 0, sizeof *qs);
    qs->objs = json_array();
    qs->missing = json_object();
    qs->first_missing = json_object();
}

/* Rank 0: the questions from the files, checked, images resolved. */
static int read_questions(const bench_args *a, question_set *qs)
{
    int rc = a->questions ? load_jsonl(a->questions, a->limit, !a->answers, qs)
                          : load_suites(a, qs);
    if (rc == 0) index_questions(qs);
    if (rc == 0) rc = check_unique_ids(qs);
    const char *src = a->questions ? a->questions : a->data_root;
    if (rc == 0 && qs->n == 0)
        rc = json_object_size(qs->missing) ? ERR("%s: no question has its image", src)
                                           : ERR("%s: no questions", src);
    return rc;
}

/* The set as one compact JSON text (malloc'd): {"questions": [...],
 * "missing": {...}, "first_missing": {...}, "hash": "16 hex digits"}. */
static char *dump_set(const question_set *qs, size_t *len)
{
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)qs->hash);
    json_t *o = json_pack("{sOsOsOss}", "questions", qs->objs, "missing", qs->missing,
                          "first_missing", qs->first_missing, "hash", hash);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!text) DIE("out of memory");
    json_decref(o);
    *len = strlen(text);
    return text;
}

/* The set from dump_set's text (rank 0's, already checked). */
static int parse_set(const char *text, size_t len, question_set *qs)
{
    json_error_t je;
    json_t *o = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    const char *hash = json_string_value(json_object_get(o, "hash"));
    json_t *objs = json_object_get(o, "questions"), *missing = json_object_get(o, "missing");
    json_t *first = json_object_get(o, "first_missing");
    int rc = 0;
    if (!json_is_array(objs) || !json_is_object(missing) || !json_is_object(first) || !hash)
        rc = ERR("questions received from rank 0: not a question set (%s)",
                 o ? "fields missing" : je.text);
    if (rc == 0) {
        json_decref(qs->objs);
        json_decref(qs->missing);
        json_decref(qs->first_missing);
        qs->objs = json_incref(objs);
        qs->missing = json_incref(missing);
        qs->first_missing = json_incref(first);
        qs->n = (int64_t)json_array_size(objs);
        qs->hash = strtoull(hash, NULL, 16);
        index_questions(qs);
    }
    json_decref(o);
    return rc;
}

/* Rank 0's len bytes of *text to every rank (*text malloc'd there), in
 * pieces of at most 1 GiB: an MPI count is an int. */
static int bcast_text(tool_ctx *t, char **text, size_t *len)
{
    uint64_t n = *len;
    CHECK_MPI(MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD));
    if (t->rank != 0) {
        *text = xmalloc((size_t)n + 1);
        (*text)[n] = '\0';
        *len = (size_t)n;
    }
    for (uint64_t off = 0; off < n;) {
        uint64_t k = n - off < (1u << 30) ? n - off : (1u << 30);
        CHECK_MPI(MPI_Bcast(*text + off, (int)k, MPI_CHAR, 0, MPI_COMM_WORLD));
        off += k;
    }
    return 0;
}

void bq_load(tool_ctx *t, const bench_args *a, question_set *qs)
{
    init_set(qs);
    tool_agree(t, t->rank == 0 ? read_questions(a, qs) : 0);
    if (t->size == 1) return;
    /* the others parse rank 0's compact copy: the official files (COCO's
     * annotations for CHAIR, MMBench's images) are read once per job */
    size_t len = 0;
    char *text = t->rank == 0 ? dump_set(qs, &len) : NULL;
    int rc = bcast_text(t, &text, &len);
    if (rc == 0 && t->rank != 0) rc = parse_set(text, len, qs);
    free(text);
    tool_agree(t, rc);
}

void bq_free(question_set *qs)
{
    json_decref(qs->objs);
    json_decref(qs->missing);
    free(qs->q);
    json_decref(qs->first_missing);
    memset(qs, 0, sizeof *qs);
}

/* ----------------------------------------------------------- prompts -- */

static void push_text(char **s, size_t *len, const char *text)
{
    size_t n = strlen(text);
    *s = realloc(*s, *len + n + 1);
    if (!*s) DIE("out of memory");
    memcpy(*s + *len, text, n + 1);
    *len += n;
}

/* The question, for multiple choice its options ("A. text" a line), then
 * the benchmark's instruction; captions and open-ended questions as given. */
char *bq_prompt(const question *q)
{
    char *s = xstrdup(q->question);
    size_t len = strlen(s);
    bool choice = bq_is_choice(q->bench);
    for (size_t i = 0; choice && i < json_array_size(q->options); i++) {
        char *line = NULL;
        if (asprintf(&line, "\n%c. %s", (char)('A' + i),
                     json_string_value(json_array_get(q->options, i))) < 0)
            DIE("out of memory");
        push_text(&s, &len, line);
        free(line);
    }
    const char *suffix = bq_is_short(q->bench) ? BQ_SHORT_ANSWER : choice ? BQ_CHOICE_ANSWER : "";
    /* LLaVA's converted question files already end with the instruction */
    size_t n = strlen(suffix);
    if (!(len >= n && strcmp(s + len - n, suffix) == 0)) push_text(&s, &len, suffix);
    return s;
}

/* ------------------------------------------------------------ base64 -- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int bq_base64_decode(const char *text, unsigned char **out, size_t *len)
{
    size_t n = strlen(text);
    unsigned char *buf = xmalloc(n / 4 * 3 + 3);
    size_t k = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '=') break;
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        int v = b64_value(c);
        if (v < 0) {
            free(buf);
            return ERR("not base64: byte %zu is 0x%02x", i, c);
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[k++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *out = buf;
    *len = k;
    return 0;
}
