/* sima-bench-score.c — rank 0's half of the runner: answers joined to the
 * questions by (benchmark, question id), scored by each benchmark's
 * official rule (libcommon/bench/), judge-scored benchmarks through
 * bench_judge_run, then OUT/results.json, OUT/samples.jsonl and
 * OUT/samples.h5 (schema sima.bench_samples, data/schemas/bench_samples.md). */
#define _GNU_SOURCE
#include "sima-bench.h"

#include "bench_chair.h"
#include "bench_choice.h"
#include "bench_vqa.h"
#include "bench_yesno.h"
#include "chat.h"
#include "err.h"
#include "fs.h"
#include "log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLES_SCHEMA "sima.bench_samples"
#define SAMPLES_SCHEMA_VERSION 1

struct bench_scorer {
    bench_chair_vocab *chair;    /* NULL: no chair questions */
    char *chair_path;
    bench_judge_opts judge;
    char *judges_dir, *cache_path, *requests_path;
};

/* ------------------------------------------------------- preparation -- */

static bool has_bench(const question_set *qs, bool (*pred)(const char *))
{
    for (int64_t i = 0; i < qs->n; i++)
        if (pred(qs->q[i].bench)) return true;
    return false;
}

static bool is_chair(const char *b)
{
    return strcmp(b, "chair") == 0;
}

/* The category of a ground-truth object name: the name itself, else what
 * the synonym table makes of it as a caption ("dining table", "people");
 * -1 when the table does not know it. */
static int chair_truth_id(const bench_chair_vocab *v, const char *name)
{
    int id = bench_chair_category_id(v, name);
    if (id >= 0) return id;
    int ids[4];
    size_t n = bench_chair_mentions(v, name, ids, 4);
    return n == 1 ? ids[0] : -1;
}

/* Ground-truth names the table does not know can never be mentioned, so
 * they do not change CHAIR; a typo in a question file would go unnoticed,
 * though, so they are reported. */
static void warn_unknown_objects(const bench_scorer *s, const question_set *qs)
{
    long unknown = 0;
    const char *first = NULL, *first_q = NULL;
    for (int64_t i = 0; i < qs->n; i++) {
        if (!is_chair(qs->q[i].bench)) continue;
        size_t k;
        json_t *o;
        json_array_foreach(qs->q[i].objects, k, o) {
            if (chair_truth_id(s->chair, json_string_value(o)) >= 0) continue;
            if (!unknown++) {
                first = json_string_value(o);
                first_q = qs->q[i].id;
            }
        }
    }
    if (unknown)
        log_warn("chair: %ld ground-truth object name%s not in the synonym table %s (first: "
                 "\"%s\" of question %s); such objects cannot match a mention",
                 unknown, unknown == 1 ? " is" : "s are", s->chair_path, first, first_q);
}

static int prepare_chair(bench_scorer *s, const bench_args *a, const question_set *qs)
{
    if (a->chair_synonyms) s->chair_path = xstrdup(a->chair_synonyms);
    else if (a->data_root) s->chair_path = fs_join(a->data_root, "chair/synonyms.txt");
    else
        return ERR("chair questions need the COCO synonym table: --chair-synonyms FILE, or "
                   "--data-root DIR with DIR/chair/synonyms.txt");
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_all(s->chair_path, &text, &len);
    if (rc == 0) rc = bench_chair_vocab_parse(text, s->chair_path, &s->chair);
    free(text);
    if (rc == 0) warn_unknown_objects(s, qs);
    return rc;
}

/* The judge settings; checked only when there are judge-scored questions
 * (a SIMA_JUDGE_URL in the environment does not hinder a POPE run). */
static int prepare_judge(bench_scorer *s, const bench_args *a, const question_set *qs)
{
    bench_judge_opts *o = &s->judge;
    o->mode = a->judge;
    o->url = getenv("SIMA_JUDGE_URL");
    o->api_key = getenv("SIMA_JUDGE_API_KEY");
    o->model = a->judge_model;
    o->max_requests_per_s = a->judge_rate;
    o->max_retries = 5;
    o->timeout_s = 120;
    s->judges_dir = fs_join(chat_data_dir(), "judges");
    s->cache_path = fs_join(a->out, "judge_cache.jsonl");
    s->requests_path = fs_join(a->out, "judge_requests.jsonl");
    o->prompts_dir = s->judges_dir;
    o->cache_path = s->cache_path;
    o->requests_path = s->requests_path;
    o->replies_path = a->judge_replies;
    if (o->mode == BENCH_JUDGE_NONE || !has_bench(qs, bench_is_judge_scored)) return 0;
    if ((o->mode == BENCH_JUDGE_ONLINE || o->mode == BENCH_JUDGE_WRITE_REQUESTS) &&
        !(o->model && o->model[0]))
        return ERR("--judge %s needs the judge model: --judge-model NAME or SIMA_JUDGE_MODEL",
                   o->mode == BENCH_JUDGE_ONLINE ? "online" : "write-requests");
    if (o->mode == BENCH_JUDGE_ONLINE && !(o->url && o->url[0]))
        return ERR("--judge online needs the endpoint in SIMA_JUDGE_URL");
    if (o->mode == BENCH_JUDGE_READ_REPLIES && !fs_is_file(a->judge_replies))
        return ERR("%s: judge replies file not found", a->judge_replies);
    if (o->mode != BENCH_JUDGE_READ_REPLIES && !fs_is_dir(s->judges_dir))
        return ERR("%s: judge prompt folder not found (set SIMA_DATA_DIR)", s->judges_dir);
    return 0;
}

int bs_prepare(const bench_args *a, const question_set *qs, bench_scorer **out)
{
    bench_scorer *s = xcalloc(1, sizeof *s);
    int rc = has_bench(qs, is_chair) ? prepare_chair(s, a, qs) : 0;
    if (rc == 0) rc = prepare_judge(s, a, qs);
    if (rc != 0) {
        bs_free(s);
        s = NULL;
    }
    *out = s;
    return rc;
}

void bs_free(bench_scorer *s)
{
    if (!s) return;
    if (s->chair) bench_chair_vocab_free(s->chair);
    free(s->chair_path);
    free(s->judges_dir);
    free(s->cache_path);
    free(s->requests_path);
    free(s);
}

/* -------------------------------------------------------------- join -- */

typedef struct {
    char *key;                   /* "bench\x1fid", malloc'd */
    int64_t row;
} id_entry;

static int compare_ids(const void *a, const void *b)
{
    return strcmp(((const id_entry *)a)->key, ((const id_entry *)b)->key);
}

static char *join_key(const char *bench, size_t bench_len, const char *id, size_t id_len)
{
    char *k = NULL;
    if (asprintf(&k, "%.*s\x1f%.*s", (int)bench_len, bench, (int)id_len, id) < 0)
        DIE("out of memory");
    return k;
}

/* answer_of[question row] = answer row, joined by (benchmark, question
 * id), never by order. Every question must be answered exactly once. */
static int join_by_id(const question_set *qs, const answer_rows *r, int64_t *answer_of)
{
    id_entry *idx = xmalloc(sizeof *idx * (size_t)qs->n);
    for (int64_t i = 0; i < qs->n; i++)
        idx[i] = (id_entry){join_key(qs->q[i].bench, strlen(qs->q[i].bench), qs->q[i].id,
                                     strlen(qs->q[i].id)),
                            i};
    qsort(idx, (size_t)qs->n, sizeof *idx, compare_ids);
    for (int64_t i = 0; i < qs->n; i++) answer_of[i] = -1;
    size_t boff = 0, ioff = 0;
    int rc = 0;
    for (int64_t a = 0; rc == 0 && a < r->n; a++) {
        id_entry key = {join_key(r->benches + boff, (size_t)r->bench_len[a], r->ids + ioff,
                                 (size_t)r->id_len[a]),
                        0};
        boff += (size_t)r->bench_len[a];
        ioff += (size_t)r->id_len[a];
        id_entry *hit = bsearch(&key, idx, (size_t)qs->n, sizeof *idx, compare_ids);
        const char *id = key.key + (size_t)r->bench_len[a] + 1;
        if (!hit) rc = ERR("answer %lld: unknown question \"%s\"", (long long)a, id);
        else if (answer_of[hit->row] >= 0) rc = ERR("question \"%s\" answered twice", id);
        else answer_of[hit->row] = a;
        free(key.key);
    }
    for (int64_t i = 0; rc == 0 && i < qs->n; i++)
        if (answer_of[i] < 0) rc = ERR("question \"%s\" has no answer", qs->q[i].id);
    for (int64_t i = 0; i < qs->n; i++) free(idx[i].key);
    free(idx);
    return rc;
}

/* ------------------------------------------------------ accumulators -- */

typedef struct {
    char split[32];
    bench_confusion c;
} pope_split;

/* Count-and-sum accumulator of one benchmark (accuracy or soft accuracy). */
typedef struct {
    char name[32];
    long n, right, unscored;
    double sum;
} simple_acc;

typedef struct {
    const bench_scorer *sc;
    pope_split splits[8];
    int n_splits;
    bench_confusion all;
    long pope_n;
    simple_acc simple[16];
    int n_simple;
    bench_mme_item *mme;              /* [mme_n] */
    long mme_n, mme_cap;
    long long *mmb_group;             /* [mmb_n] */
    bool *mmb_right;
    long mmb_n, mmb_cap;
    bench_chair_counts chair;
    json_t *judge;   /* bench -> {"questions": [...], "samples": [sample indices]} */
} score_acc;

static simple_acc *simple_of(score_acc *s, const char *name)
{
    for (int i = 0; i < s->n_simple; i++)
        if (strcmp(s->simple[i].name, name) == 0) return &s->simple[i];
    if (s->n_simple == 16) DIE("too many benchmarks");
    simple_acc *a = &s->simple[s->n_simple++];
    snprintf(a->name, sizeof a->name, "%s", name);
    return a;
}

static void push_mme(score_acc *s, const question *q, bool correct)
{
    if (s->mme_n == s->mme_cap) {
        s->mme_cap = s->mme_cap ? 2 * s->mme_cap : 64;
        s->mme = realloc(s->mme, sizeof *s->mme * (size_t)s->mme_cap);
        if (!s->mme) DIE("out of memory");
    }
    s->mme[s->mme_n++] = (bench_mme_item){bench_mme_subtask_index(q->subtask), q->image, correct};
}

static void push_mmbench(score_acc *s, const question *q, bool correct)
{
    if (s->mmb_n == s->mmb_cap) {
        s->mmb_cap = s->mmb_cap ? 2 * s->mmb_cap : 64;
        s->mmb_group = realloc(s->mmb_group, sizeof *s->mmb_group * (size_t)s->mmb_cap);
        s->mmb_right = realloc(s->mmb_right, sizeof *s->mmb_right * (size_t)s->mmb_cap);
        if (!s->mmb_group || !s->mmb_right) DIE("out of memory");
    }
    s->mmb_group[s->mmb_n] = bench_mmbench_group_of(q->index);
    s->mmb_right[s->mmb_n++] = correct;
}

static void set_correct(json_t *sample, bool right)
{
    json_object_set_new(sample, "correct", json_boolean(right));
    json_object_set_new(sample, "score", json_real(right ? 1.0 : 0.0));
}

/* ----------------------------------------------------------- scoring -- */

/* Letter of a multiple-choice answer by its benchmark's official rule. */
static char choice_letter(const question *q, const char *answer)
{
    size_t n = json_array_size(q->options);
    if (!strcmp(q->bench, "scienceqa")) return bench_scienceqa_extract(answer, n);
    if (!strcmp(q->bench, "seed")) return bench_seed_extract(answer, n);
    const char **texts = xmalloc(sizeof *texts * n);
    for (size_t i = 0; i < n; i++) texts[i] = json_string_value(json_array_get(q->options, i));
    char c = bench_choice_extract(answer, texts, n);
    free(texts);
    return c;
}

static void score_choice(score_acc *s, const question *q, const char *answer, json_t *sample)
{
    char c = choice_letter(q, answer);
    bool right = c == q->answer[0];
    if (!strcmp(q->bench, "mmbench")) push_mmbench(s, q, right);
    else {
        simple_acc *a = simple_of(s, q->bench);
        a->n++;
        a->right += right;
    }
    char letter[2] = {c, '\0'};
    json_object_set_new(sample, "extracted", c ? json_string(letter) : json_null());
    set_correct(sample, right);
}

static void score_mme(score_acc *s, const question *q, const char *answer, json_t *sample)
{
    bench_yn p = bench_mme_parse(answer);
    bool right = p == (strcmp(q->label, "yes") == 0 ? BENCH_YN_YES : BENCH_YN_NO);
    push_mme(s, q, right);
    json_object_set_new(sample, "extracted",
                        json_string(p == BENCH_YN_YES ? "yes" : p == BENCH_YN_NO ? "no" : "other"));
    set_correct(sample, right);
}

static void score_gqa(score_acc *s, const question *q, const char *answer, json_t *sample)
{
    char *norm = bench_gqa_normalize(answer);
    if (!norm) DIE("out of memory");
    bool right = strcmp(norm, q->answer) == 0;
    simple_acc *a = simple_of(s, "gqa");
    a->n++;
    a->right += right;
    json_object_set_new(sample, "extracted", json_string(norm));
    set_correct(sample, right);
    free(norm);
}

static bench_confusion *pope_split_of(score_acc *s, const char *name)
{
    for (int i = 0; i < s->n_splits; i++)
        if (strcmp(s->splits[i].split, name) == 0) return &s->splits[i].c;
    if (s->n_splits == 8) return NULL;
    pope_split *p = &s->splits[s->n_splits++];
    snprintf(p->split, sizeof p->split, "%s", name);
    return &p->c;
}

static int score_pope(score_acc *s, const question *q, const char *answer, json_t *sample)
{
    bool yes = bench_pope_answer_is_yes(answer), label = strcmp(q->label, "yes") == 0;
    bench_confusion *c = pope_split_of(s, q->split ? q->split : "all");
    if (!c) return ERR("pope: more than 8 splits");
    bench_confusion_add(c, yes, label);
    bench_confusion_add(&s->all, yes, label);
    s->pope_n++;
    json_object_set_new(sample, "extracted", json_string(yes ? "yes" : "no"));
    set_correct(sample, yes == label);
    return 0;
}

/* VQA soft accuracy; a question without ground truth (a test split) is
 * answered and counted, not scored. */
static int score_vqa(score_acc *s, const question *q, const char *answer, json_t *sample)
{
    simple_acc *a = simple_of(s, q->bench);
    char *norm = bench_vqa_normalize(answer);
    if (!norm) return ERR("%s: out of memory", q->bench);
    json_object_set_new(sample, "extracted", json_string(norm));
    free(norm);
    if (!q->answers) {
        a->unscored++;
        json_object_set_new(sample, "score", json_null());
        return 0;
    }
    size_t n = json_array_size(q->answers);
    const char **gts = xmalloc(sizeof *gts * n);
    for (size_t i = 0; i < n; i++) gts[i] = json_string_value(json_array_get(q->answers, i));
    double acc = bench_vqa_soft_accuracy(answer, gts, n);
    free(gts);
    if (acc < 0) return ERR("%s: out of memory", q->bench);
    a->sum += acc;
    a->n++;
    json_object_set_new(sample, "score", json_real(acc));
    return 0;
}

/* CHAIR: the caption's object mentions, and those not among the image's
 * ground-truth objects, as category names. */
static int score_chair(score_acc *s, const question *q, const char *answer, json_t *sample)
{
    const bench_chair_vocab *v = s->sc->chair;
    int nc = bench_chair_category_count(v);
    bool *truth = xcalloc((size_t)nc, sizeof *truth);
    size_t k;
    json_t *o;
    json_array_foreach(q->objects, k, o) {
        int id = chair_truth_id(v, json_string_value(o));
        if (id >= 0) truth[id] = true;
    }
    size_t n = bench_chair_mentions(v, answer, NULL, 0);
    int *ids = xmalloc(sizeof *ids * (n ? n : 1));
    bench_chair_mentions(v, answer, ids, n);
    json_t *mentioned = json_array(), *halluc = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(mentioned, json_string(bench_chair_category_name(v, ids[i])));
        if (!truth[ids[i]])
            json_array_append_new(halluc, json_string(bench_chair_category_name(v, ids[i])));
    }
    int rc = bench_chair_add(&s->chair, v, answer, truth);
    json_object_set_new(sample, "mentioned_objects", mentioned);
    json_object_set_new(sample, "hallucinated_objects", halluc);
    json_object_set_new(sample, "score", json_null());
    free(ids);
    free(truth);
    return rc;
}

/* Judge-scored: kept for bench_judge_run after every answer is in. */
static void defer_judge(score_acc *s, const question *q, size_t sample_index)
{
    json_t *j = json_object_get(s->judge, q->bench);
    if (!j) {
        j = json_pack("{s:[], s:[]}", "questions", "samples");
        json_object_set_new(s->judge, q->bench, j);
    }
    json_array_append(json_object_get(j, "questions"), q->obj);
    json_array_append_new(json_object_get(j, "samples"), json_integer((json_int_t)sample_index));
}

/* Scores one answer; fills the sample's extracted answer and score. */
static int score_one(score_acc *s, const question *q, const char *answer, json_t *sample,
                     size_t sample_index)
{
    const char *b = q->bench;
    if (!strcmp(b, "pope")) return score_pope(s, q, answer, sample);
    if (bq_is_vqa(b)) return score_vqa(s, q, answer, sample);
    if (!strcmp(b, "mme")) score_mme(s, q, answer, sample);
    else if (!strcmp(b, "gqa")) score_gqa(s, q, answer, sample);
    else if (bq_is_choice(b)) score_choice(s, q, answer, sample);
    else if (!strcmp(b, "chair")) return score_chair(s, q, answer, sample);
    else defer_judge(s, q, sample_index);
    return 0;
}

/* Every judge-scored benchmark through bench_judge_run; its per-sample
 * fields are merged into the samples, its entry into benches. */
static int run_judges(score_acc *s, json_t *samples, json_t *benches)
{
    const char *name;
    json_t *j;
    int rc = 0;
    json_object_foreach(s->judge, name, j) {
        json_t *qa = json_object_get(j, "questions"), *idx = json_object_get(j, "samples");
        size_t n = json_array_size(qa);
        const char **answers = xmalloc(sizeof *answers * n);
        json_t **out = xcalloc(n, sizeof *out);
        for (size_t i = 0; i < n; i++) {
            json_t *sm = json_array_get(samples, (size_t)json_integer_value(json_array_get(idx, i)));
            answers[i] = json_string_value(json_object_get(sm, "answer"));
        }
        json_t *entry = NULL;
        rc = bench_judge_run(&s->sc->judge, name, qa, answers, &entry, out);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            json_t *sm = json_array_get(samples, (size_t)json_integer_value(json_array_get(idx, i)));
            if (!json_object_get(out[i], "score")) json_object_set_new(sm, "score", json_null());
            json_object_update(sm, out[i]);
        }
        for (size_t i = 0; i < n; i++) json_decref(out[i]);
        if (rc == 0) json_object_set_new(benches, name, entry);
        free(out);
        free(answers);
        if (rc != 0) break;
    }
    return rc;
}

/* ----------------------------------------------------------- results -- */

static json_t *pope_json(const bench_confusion *c)
{
    bench_pope_metrics m = bench_pope_metrics_of(c);
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "samples", (json_int_t)m.n, "accuracy",
                     m.accuracy, "precision", m.precision, "recall", m.recall, "f1", m.f1,
                     "yes_ratio", m.yes_ratio);
}

static json_t *simple_json(const simple_acc *a)
{
    bool vqa = bq_is_vqa(a->name);
    if (a->n == 0)
        return json_pack("{s:s, s:s, s:I}", "status", "not scored", "reason",
                         "no ground-truth answers (a test split: score it on the benchmark's "
                         "evaluation server)",
                         "answered", (json_int_t)a->unscored);
    json_t *o = json_pack("{s:s, s:I, s:f}", "status", "scored", "samples", (json_int_t)a->n,
                          "accuracy",
                          100.0 * (vqa ? a->sum : (double)a->right) / (double)a->n);
    if (a->unscored) json_object_set_new(o, "unscored", json_integer(a->unscored));
    return o;
}

static json_t *mme_json(const score_acc *s)
{
    bench_mme_result r;
    if (bench_mme_score(s->mme, (size_t)s->mme_n, &r) != 0) DIE("MME: %s", err_msg());
    json_t *subs = json_object();
    for (int i = 0; i < BENCH_MME_SUBTASKS; i++)
        if (r.sub[i].questions)
            json_object_set_new(subs, bench_mme_subtask_names[i],
                                json_pack("{s:I, s:I, s:f, s:f, s:f}", "questions",
                                          (json_int_t)r.sub[i].questions, "images",
                                          (json_int_t)r.sub[i].images, "acc", 100 * r.sub[i].acc,
                                          "acc_plus", 100 * r.sub[i].acc_plus, "score",
                                          r.sub[i].score));
    return json_pack("{s:s, s:I, s:f, s:f, s:i, s:i, s:o}", "status", "scored", "samples",
                     (json_int_t)s->mme_n, "perception", r.perception, "cognition", r.cognition,
                     "perception_subtasks", r.perception_present, "cognition_subtasks",
                     r.cognition_present, "subtasks", subs);
}

static json_t *mmbench_json(const score_acc *s)
{
    bench_circular_result r;
    if (bench_mmbench_circular(s->mmb_group, s->mmb_right, (size_t)s->mmb_n, &r) != 0)
        DIE("MMBench: %s", err_msg());
    long right = 0;
    for (long i = 0; i < s->mmb_n; i++) right += s->mmb_right[i];
    return json_pack("{s:s, s:I, s:I, s:f, s:f}", "status", "scored", "samples",
                     (json_int_t)s->mmb_n, "questions", (json_int_t)r.groups, "circular_accuracy",
                     100.0 * r.accuracy, "vanilla_accuracy",
                     100.0 * (double)right / (double)s->mmb_n);
}

/* CHAIR_s and CHAIR_i in percent, as the papers' tables give them. */
static json_t *chair_json(const score_acc *s)
{
    const bench_chair_counts *c = &s->chair;
    return json_pack("{s:s, s:I, s:f, s:f, s:I, s:I, s:I, s:s}", "status", "scored", "samples",
                     (json_int_t)c->captions, "chair_s", 100.0 * bench_chair_s(c), "chair_i",
                     100.0 * bench_chair_i(c), "mentions", (json_int_t)c->mentions,
                     "hallucinated_mentions", (json_int_t)c->hallucinated_mentions,
                     "hallucinated_captions", (json_int_t)c->hallucinated_captions, "synonyms",
                     s->sc->chair_path);
}

static void add_scored(const score_acc *s, json_t *benches)
{
    if (s->pope_n) {
        json_t *splits = json_object();
        for (int i = 0; i < s->n_splits; i++)
            json_object_set_new(splits, s->splits[i].split, pope_json(&s->splits[i].c));
        json_object_set_new(benches, "pope",
                            json_pack("{s:s, s:o, s:o}", "status", "scored", "splits", splits,
                                      "all", pope_json(&s->all)));
    }
    for (int i = 0; i < s->n_simple; i++)
        json_object_set_new(benches, s->simple[i].name, simple_json(&s->simple[i]));
    if (s->mme_n) json_object_set_new(benches, "mme", mme_json(s));
    if (s->mmb_n) json_object_set_new(benches, "mmbench", mmbench_json(s));
    if (s->chair.captions) json_object_set_new(benches, "chair", chair_json(s));
}

/* Every entry gets its count of questions left out for a missing image; a
 * benchmark whose every image was missing gets an entry of its own. */
static void add_missing(const question_set *qs, json_t *benches)
{
    const char *name;
    json_t *e;
    json_object_foreach(benches, name, e) {
        json_t *m = json_object_get(qs->missing, name);
        json_t *first = json_object_get(qs->first_missing, name);
        json_object_set_new(e, "missing_images", json_integer(m ? json_integer_value(m) : 0));
        if (first) json_object_set(e, "first_missing_image", first);
    }
    json_object_foreach(qs->missing, name, e) {
        if (json_object_get(benches, name)) continue;
        json_t *first = json_object_get(qs->first_missing, name);
        json_object_set_new(benches, name,
                            json_pack("{s:s, s:I, s:O, s:o}", "status", "no questions",
                                      "samples", (json_int_t)0, "missing_images", e,
                                      "first_missing_image",
                                      first ? json_incref(first) : json_null()));
    }
}

static const char *judge_mode_name(bench_judge_mode m)
{
    static const char *const names[] = {"none", "online", "write-requests", "read-replies"};
    return names[m];
}

/* sima-bench score: the answers came from a file, so only the scoring
 * settings apply. */
static json_t *score_settings_json(const bench_args *a)
{
    json_t *o = json_pack("{s:s}", "judge", judge_mode_name(a->judge));
    if (a->judge != BENCH_JUDGE_NONE && a->judge_model)
        json_object_set_new(o, "judge_model", json_string(a->judge_model));
    return o;
}

static json_t *settings_json(const bench_args *a, const question_set *qs)
{
    if (a->answers) return score_settings_json(a);
    json_t *o = json_pack("{s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:i, s:i}", "decoding",
                          "greedy", "max_new_tokens",
                          a->max_new > 0 ? json_integer(a->max_new) : json_null(),
                          "max_new_tokens_per_benchmark", bq_max_new_json(a, qs), "template",
                          a->template_name, "preprocess", a->preprocess, "prompt_suffix",
                          BQ_SHORT_ANSWER, "choice_prompt_suffix", BQ_CHOICE_ANSWER, "batch",
                          a->batch, "chunk", a->chunk);
    json_object_set_new(o, "judge", json_string(judge_mode_name(a->judge)));
    if (a->judge != BENCH_JUDGE_NONE && a->judge_model)
        json_object_set_new(o, "judge_model", json_string(a->judge_model));
    return o;
}

/* A string, or null for NULL or "" (no model when scoring an answers file). */
static json_t *json_or_null(const char *v)
{
    return v && v[0] ? json_string(v) : json_null();
}

static json_t *results_json(score_acc *s, const bench_args *a, const question_set *qs,
                            json_t *benches, const char *model_hash, const char *adapter_hash)
{
    add_scored(s, benches);
    add_missing(qs, benches);
    json_t *r = json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:o}", "model", json_or_null(a->model),
                          "model_hash", json_or_null(model_hash), "adapter",
                          json_or_null(a->adapter), "adapter_hash", json_or_null(adapter_hash),
                          "settings", settings_json(a, qs), "samples", (json_int_t)qs->n,
                          "benchmarks", benches);
    if (a->answers) json_object_set_new(r, "answers", json_string(a->answers));
    if (a->questions) json_object_set_new(r, "questions", json_string(a->questions));
    else
        json_object_set_new(r, "suites",
                            json_pack("{s:s, s:s}", "list", a->suites, "data_root", a->data_root));
    return r;
}

/* ----------------------------------------------------- samples files -- */

/* A ragged text column being built. */
typedef struct {
    int64_t *len;
    char *data;
    size_t total;
} text_col;

static void col_push(text_col *c, int64_t row, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    c->len[row] = (int64_t)n;
    c->data = realloc(c->data, c->total + n + 1);
    if (!c->data) DIE("out of memory");
    memcpy(c->data + c->total, s ? s : "", n);
    c->total += n;
}

static const char *const TEXT_COLS[] = {"question_id", "benchmark", "prompt", "answer",
                                        "extracted"};
#define N_TEXT_COLS 5

/* The sample's text columns, correct (-1 when not applicable) and score
 * (NaN when not scored). */
static void sample_row(json_t *sm, int64_t row, text_col *cols, int8_t *correct, double *score)
{
    for (int c = 0; c < N_TEXT_COLS; c++)
        col_push(&cols[c], row, json_string_value(json_object_get(sm, TEXT_COLS[c])));
    json_t *ok = json_object_get(sm, "correct"), *sc = json_object_get(sm, "score");
    correct[row] = json_is_boolean(ok) ? (int8_t)json_is_true(ok) : -1;
    score[row] = json_is_number(sc) ? json_number_value(sc) : NAN;
}

static int write_columns(h5io_file *f, json_t *samples)
{
    int64_t n = (int64_t)json_array_size(samples);
    text_col cols[N_TEXT_COLS] = {{0}};
    for (int c = 0; c < N_TEXT_COLS; c++) cols[c].len = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    int8_t *correct = xmalloc((size_t)(n + 1));
    double *score = xmalloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++)
        sample_row(json_array_get(samples, (size_t)i), i, cols, correct, score);
    int rc = 0;
    for (int c = 0; rc == 0 && c < N_TEXT_COLS; c++) {
        char path[64];
        snprintf(path, sizeof path, "/samples/%s", TEXT_COLS[c]);
        rc = h5io_write_ragged(f, path, H5IO_TEXT, n, cols[c].len, cols[c].data);
    }
    if (rc == 0) rc = h5io_write_column(f, "/samples/correct", H5IO_I8, n, 1, correct);
    if (rc == 0) rc = h5io_write_column(f, "/samples/score", H5IO_F64, n, 1, score);
    for (int c = 0; c < N_TEXT_COLS; c++) {
        free(cols[c].len);
        free(cols[c].data);
    }
    free(correct);
    free(score);
    return rc;
}

/* OUT/samples.h5, written by rank 0 alone. */
static int write_samples_h5(tool_ctx *t, const bench_args *a, json_t *samples,
                            const char *model_hash, const char *adapter_hash, const char *run_key)
{
    char *path = fs_join(a->out, "samples.h5");
    const char *inputs[] = {a->questions ? a->questions : a->data_root, a->answers};
    h5io_provenance prov = {t->name, SAMPLES_SCHEMA, SAMPLES_SCHEMA_VERSION, t->argc, t->argv,
                            inputs, a->answers ? 2 : 1, a->model ? a->model : "", model_hash,
                            -1, run_key};
    h5io_file f;
    int rc = h5io_create(&f, path, MPI_COMM_SELF);
    if (rc == 0) {
        rc = write_columns(&f, samples);
        if (rc == 0) rc = h5io_write_provenance(&f, &prov);
        if (rc == 0) rc = h5io_set_attr_str(&f, "/", "adapter", a->adapter ? a->adapter : "");
        if (rc == 0) rc = h5io_set_attr_str(&f, "/", "adapter_hash", adapter_hash);
        if (rc == 0) rc = h5io_commit(&f);
        else h5io_abandon(&f);
    }
    free(path);
    return rc;
}

static int write_samples_jsonl(const bench_args *a, json_t *samples)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) DIE("out of memory");
    size_t i;
    json_t *sm;
    json_array_foreach(samples, i, sm) {
        if (json_dumpf(sm, m, JSON_COMPACT) != 0 || fputc('\n', m) == EOF) DIE("out of memory");
    }
    fclose(m);
    char *path = fs_join(a->out, "samples.jsonl");
    int rc = fs_write_atomic(path, buf, len);
    free(path);
    free(buf);
    return rc;
}

static int write_results(const bench_args *a, json_t *res)
{
    char *text = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text) DIE("out of memory");
    size_t n = strlen(text);
    text = realloc(text, n + 2);
    if (!text) DIE("out of memory");
    memcpy(text + n, "\n", 2);
    char *path = fs_join(a->out, "results.json");
    int rc = fs_write_atomic(path, text, n + 1);
    free(path);
    free(text);
    return rc;
}

/* ------------------------------------------------------------- entry -- */

static char *answer_text(const answer_rows *r, const int64_t *text_off, int64_t row)
{
    return strndup(r->text + text_off[row], (size_t)r->text_len[row]);
}

/* The samples, one per question in question order, scored. */
static int score_samples(score_acc *s, const question_set *qs, const answer_rows *r,
                         const int64_t *answer_of, json_t *samples)
{
    int64_t *text_off = xmalloc(sizeof(int64_t) * (size_t)(r->n + 1));
    text_off[0] = 0;
    for (int64_t i = 0; i < r->n; i++) text_off[i + 1] = text_off[i] + r->text_len[i];
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < qs->n; i++) {
        const question *q = &qs->q[i];
        char *answer = answer_text(r, text_off, answer_of[i]);
        char *prompt = bq_prompt(q);
        json_t *sample = json_pack("{s:s, s:s, s:s, s:s}", "question_id", q->id, "benchmark",
                                   q->bench, "prompt", prompt, "answer", answer);
        rc = score_one(s, q, answer, sample, (size_t)i);
        if (rc != 0) err_context("question \"%s\"", q->id);
        json_array_append_new(samples, sample);
        free(prompt);
        free(answer);
    }
    free(text_off);
    return rc;
}

static void log_missing(const question_set *qs)
{
    const char *name;
    json_t *c;
    json_object_foreach(qs->missing, name, c) {
        const char *first = json_string_value(json_object_get(qs->first_missing, name));
        log_warn("%s: %lld question%s left out: image missing (first: %s)", name,
                 (long long)json_integer_value(c), json_integer_value(c) == 1 ? "" : "s",
                 first ? first : "?");
    }
}

int bs_score_rows(bench_scorer *sc, tool_ctx *t, const bench_args *a, const question_set *qs,
                  const answer_rows *r, const char *model_hash, const char *adapter_hash,
                  const char *run_key)
{
    int64_t *answer_of = xmalloc(sizeof(int64_t) * (size_t)(qs->n ? qs->n : 1));
    int rc = join_by_id(qs, r, answer_of);
    score_acc s = {.sc = sc, .judge = json_object()};
    json_t *samples = json_array(), *benches = json_object();
    if (rc == 0) rc = score_samples(&s, qs, r, answer_of, samples);
    if (rc == 0) rc = run_judges(&s, samples, benches);
    if (rc == 0) rc = write_samples_jsonl(a, samples);
    if (rc == 0) rc = write_samples_h5(t, a, samples, model_hash, adapter_hash, run_key);
    if (rc == 0) {
        json_t *res = results_json(&s, a, qs, json_incref(benches), model_hash, adapter_hash);
        rc = write_results(a, res);
        json_decref(res);
    }
    log_missing(qs);
    if (rc == 0)
        log_info("scored %lld answers; wrote results.json, samples.jsonl and samples.h5 in %s",
                 (long long)qs->n, a->out);
    json_decref(benches);
    json_decref(samples);
    json_decref(s.judge);
    free(s.mme);
    free(s.mmb_group);
    free(s.mmb_right);
    free(answer_of);
    return rc;
}

int bs_score_all(bench_scorer *sc, tool_ctx *t, const bench_args *a, const question_set *qs,
                 const char *answers_path, const char *model_hash, const char *adapter_hash,
                 const char *run_key)
{
    h5io_file f;
    answer_rows r = {0};
    int rc = h5io_open(&f, answers_path, MPI_COMM_SELF);
    if (rc == 0) {
        rc = ba_read(&f, &r);
        h5io_close(&f);
    }
    if (rc == 0) rc = bs_score_rows(sc, t, a, qs, &r, model_hash, adapter_hash, run_key);
    ba_free(&r);
    return rc;
}
