/* bench_judge.c — scoring the judge-scored benchmarks: judge prompts per
 * sample, the judgements (asked online, written / read as JSONL offline),
 * and the benchmark's metrics from them. */
#include "bench_judge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_judge_client.h"
#include "bench_judge_prompt.h"
#include "bench_judge_rules.h"
#include "err.h"
#include "fs.h"
#include "strbuf.h"

#ifndef SIMA_DATA_DIR_DEFAULT
#define SIMA_DATA_DIR_DEFAULT "data"
#endif

static const char *const JUDGE_SCORED[] = {"llava_bench", "mmvet", "mmhal", "mementos"};
/* max_tokens of each benchmark's judge request (same order) */
static const int JUDGE_MAX_TOKENS[] = {1024, 32, 1024, 1024};

static int judge_index(const char *name)
{
    for (size_t i = 0; i < sizeof JUDGE_SCORED / sizeof JUDGE_SCORED[0]; i++)
        if (strcmp(name, JUDGE_SCORED[i]) == 0)
            return (int)i;
    return -1;
}

bool bench_is_judge_scored(const char *name)
{
    return judge_index(name) >= 0;
}

json_t *bench_judge_not_scored(const char *name, size_t answered)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:I}", "benchmark", name, "status", "not scored",
                     "scored", 0, "reason",
                     "needs a judge model: none was configured, so no score is reported",
                     "answered", (json_int_t)answered);
}

/* ---- one run's state ------------------------------------------------------ */

typedef struct {
    const bench_judge_opts *o;
    const char *bench;
    int index;                   /* into JUDGE_SCORED */
    json_t *questions;
    const char *const *answers;
    size_t n;
    bench_judge_prompt prompt;
    json_t **samples;
    json_t **replies;            /* [n] judge reply strings (owned refs) or NULL */
    size_t answered, judged, unparsed, requests;
} judge_run;

static const char *judge_qid(const judge_run *r, size_t i)
{
    const char *id = json_string_value(json_object_get(json_array_get(r->questions, i),
                                                       "question_id"));
    return id ? id : "";
}

/* "BENCH/QUESTION_ID/INDEX": the custom_id of a request in the JSONL files. */
static char *judge_custom_id(const judge_run *r, size_t i)
{
    const char *qid = judge_qid(r, i);
    size_t n = strlen(r->bench) + strlen(qid) + 32;
    char *s = xmalloc(n);
    snprintf(s, n, "%s/%s/%zu", r->bench, qid, i);
    return s;
}

/* The first sample from i on that has a model answer to judge, r->n when none. */
static size_t judge_next_answered(const judge_run *r, size_t i)
{
    while (i < r->n && !r->answers[i]) i++;
    return i;
}

/* The chat-completions body of sample i into *body. */
static int judge_body(const judge_run *r, size_t i, json_t **body)
{
    const json_t *q = json_array_get(r->questions, i);
    char *sys = NULL, *usr = NULL;
    if (bench_judge_prompt_render(&r->prompt, r->prompt.system, q, r->answers[i], &sys) != 0)
        return -1;
    if (bench_judge_prompt_render(&r->prompt, r->prompt.user, q, r->answers[i], &usr) != 0) {
        free(sys);
        return -1;
    }
    *body = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i, s:i}", "model",
                      r->o->model ? r->o->model : "", "messages", "role", "system", "content",
                      sys, "role", "user", "content", usr, "temperature", 0, "max_tokens",
                      JUDGE_MAX_TOKENS[r->index]);
    free(sys);
    free(usr);
    return *body ? 0 : ERR("%s: out of memory building a judge request", r->bench);
}

/* ---- online ---------------------------------------------------------------- */

static int judge_online(judge_run *r)
{
    if (!r->o->url || !r->o->url[0])
        return ERR("%s: online judge scoring needs the chat-completions URL (SIMA_JUDGE_URL)",
                   r->bench);
    bench_judge_client *c = NULL;
    if (bench_judge_client_open(r->o, &c) != 0)
        return -1;
    int rc = 0;
    for (size_t i = judge_next_answered(r, 0); i < r->n && rc == 0;
         i = judge_next_answered(r, i + 1)) {
        json_t *body = NULL;
        if ((rc = judge_body(r, i, &body)) != 0)
            break;
        char key[33];
        bench_judge_client_key(body, key);
        json_object_set_new(r->samples[i], "judge_key", json_string(key));
        const char *cached = bench_judge_client_cached(c, key);
        char *reply = NULL;
        if (cached)
            r->replies[i] = json_string(cached);
        else if ((rc = bench_judge_client_ask(c, body, r->bench, judge_qid(r, i), &reply)) == 0)
            r->replies[i] = json_string(reply);
        else
            err_context("%s question %s", r->bench, judge_qid(r, i));
        free(reply);
        json_decref(body);
    }
    r->requests = (size_t)bench_judge_client_requests(c);
    bench_judge_client_close(c);
    return rc;
}

/* ---- offline: requests out --------------------------------------------------- */

/* Lines of an existing requests file that belong to other benchmarks (so
 * that one file can gather every benchmark's requests; a rerun replaces
 * this benchmark's), appended to kept. */
static int judge_other_requests(const judge_run *r, strbuf *kept)
{
    if (!fs_is_file(r->o->requests_path))
        return 0;
    char *buf = NULL;
    size_t len = 0;
    if (fs_read_all(r->o->requests_path, &buf, &len) != 0)
        return -1;
    size_t plen = strlen(r->bench) + 1;
    char *prefix = xmalloc(plen + 1);
    snprintf(prefix, plen + 1, "%s/", r->bench);
    size_t at = 0;
    long lineno = 0;
    int rc = 0;
    while (at < len && rc == 0) {
        size_t n = strcspn(buf + at, "\n");
        lineno++;
        if (n > 0) {
            json_t *v = json_loadb(buf + at, n, 0, NULL);
            const char *id = json_string_value(json_object_get(v, "custom_id"));
            if (!id)
                rc = ERR("%s: line %ld: not a request line with a \"custom_id\"; refusing to "
                         "rewrite a file that is not a judge requests file",
                         r->o->requests_path, lineno);
            else if (strncmp(id, prefix, plen) != 0) {
                strbuf_put(kept, buf + at, n);
                strbuf_putc(kept, '\n');
            }
            json_decref(v);
        }
        at += n + 1;
    }
    free(prefix);
    free(buf);
    return rc;
}

static int judge_write_requests(judge_run *r)
{
    if (!r->o->requests_path)
        return ERR("%s: writing judge requests needs a requests file path", r->bench);
    strbuf buf = {0};
    if (judge_other_requests(r, &buf) != 0) {
        strbuf_free(&buf);
        return err_context("judge requests");
    }
    int rc = 0;
    for (size_t i = judge_next_answered(r, 0); i < r->n && rc == 0;
         i = judge_next_answered(r, i + 1)) {
        json_t *body = NULL;
        if ((rc = judge_body(r, i, &body)) != 0)
            break;
        char *id = judge_custom_id(r, i);
        json_object_set_new(r->samples[i], "judge_custom_id", json_string(id));
        json_t *line = json_pack("{s:s, s:s, s:s, s:o}", "custom_id", id, "method", "POST",
                                 "url", "/v1/chat/completions", "body", body);
        char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
        if (text) {
            strbuf_puts(&buf, text);
            strbuf_putc(&buf, '\n');
        } else
            rc = ERR("%s: out of memory encoding a request", r->o->requests_path);
        free(text);
        json_decref(line);
        free(id);
        r->requests++;
    }
    if (rc == 0)
        rc = fs_write_atomic(r->o->requests_path, buf.s ? buf.s : "", buf.len);
    strbuf_free(&buf);
    return rc;
}

/* ---- offline: replies in ----------------------------------------------------- */

/* The reply text of one replies-file line: "reply", or the batch-output
 * response.body.choices[0].message.content; NULL when the line carries
 * none (e.g. a failed batch request). */
static const char *judge_line_reply(const json_t *v)
{
    const json_t *reply = json_object_get(v, "reply");
    if (json_is_string(reply))
        return json_string_value(reply);
    const json_t *resp = json_object_get(v, "response");
    const json_t *status = json_object_get(resp, "status_code");
    if (status && json_integer_value(status) != 200)
        return NULL;
    const json_t *choice = json_array_get(json_object_get(json_object_get(resp, "body"),
                                                          "choices"), 0);
    return json_string_value(json_object_get(json_object_get(choice, "message"), "content"));
}

/* custom_id -> reply string of every line of the replies file. */
static int judge_load_replies(const char *path, json_t **out)
{
    char *buf = NULL;
    size_t len = 0;
    if (fs_read_all(path, &buf, &len) != 0)
        return err_context("judge replies");
    json_t *map = json_object();
    long lineno = 0;
    int rc = 0;
    for (size_t at = 0; at < len && rc == 0;) {
        size_t n = strcspn(buf + at, "\n");
        lineno++;
        size_t k = n;
        while (k > 0 && (buf[at + k - 1] == '\r' || buf[at + k - 1] == ' ')) k--;
        if (k > 0) {
            json_error_t e;
            json_t *v = json_loadb(buf + at, k, 0, &e);
            const char *id = json_string_value(json_object_get(v, "custom_id"));
            if (!v)
                rc = ERR("%s: line %ld: %s", path, lineno, e.text);
            else if (!id)
                rc = ERR("%s: line %ld: no \"custom_id\" string", path, lineno);
            else if (judge_line_reply(v))
                json_object_set_new(map, id, json_string(judge_line_reply(v)));
            json_decref(v);
        }
        at += n + 1;
    }
    free(buf);
    if (rc != 0) {
        json_decref(map);
        return -1;
    }
    *out = map;
    return 0;
}

static int judge_read_replies(judge_run *r)
{
    if (!r->o->replies_path)
        return ERR("%s: reading judge replies needs a replies file path", r->bench);
    json_t *map = NULL;
    if (judge_load_replies(r->o->replies_path, &map) != 0)
        return -1;
    for (size_t i = judge_next_answered(r, 0); i < r->n; i = judge_next_answered(r, i + 1)) {
        char *id = judge_custom_id(r, i);
        json_object_set_new(r->samples[i], "judge_custom_id", json_string(id));
        json_t *v = json_object_get(map, id);
        if (v)
            r->replies[i] = json_incref(v);
        free(id);
    }
    json_decref(map);
    return 0;
}

/* ---- scoring ------------------------------------------------------------------ */

/* A named running sum (a category, capability or question type). */
typedef struct {
    const char *name;
    size_t n;
    double a, b;
} judge_group;

typedef struct {
    judge_group *g;
    size_t n, cap;
} judge_groups;

static judge_group *judge_group_of(judge_groups *gs, const char *name)
{
    for (size_t i = 0; i < gs->n; i++)
        if (strcmp(gs->g[i].name, name) == 0)
            return &gs->g[i];
    if (gs->n == gs->cap) {
        gs->cap = gs->cap ? 2 * gs->cap : 8;
        gs->g = xrealloc(gs->g, gs->cap * sizeof *gs->g);
    }
    gs->g[gs->n] = (judge_group){.name = name};
    return &gs->g[gs->n++];
}

static void judge_group_add(judge_groups *gs, const char *name, double a, double b)
{
    judge_group *g = judge_group_of(gs, name);
    g->n++;
    g->a += a;
    g->b += b;
}

/* {name: {"samples": n, key: scale * mean of a}} over the groups, which it
 * then frees. */
static json_t *judge_group_means(judge_groups *gs, const char *key, double scale)
{
    json_t *by = json_object();
    for (size_t k = 0; k < gs->n; k++)
        json_object_set_new(by, gs->g[k].name,
                            json_pack("{s:I, s:f}", "samples", (json_int_t)gs->g[k].n, key,
                                      scale * gs->g[k].a / (double)gs->g[k].n));
    free(gs->g);
    return by;
}

/* Parses one LLaVA-Bench reply into sample; false when unparsed. */
static bool judge_score_llava(const char *reply, json_t *sample)
{
    double ref, model;
    if (!bench_judge_llava_parse(reply, &ref, &model))
        return false;
    json_object_set_new(sample, "score_reference", json_real(ref));
    json_object_set_new(sample, "score_model", json_real(model));
    json_object_set_new(sample, "score", json_real(model));
    return true;
}

static bool judge_score_mmvet(const char *reply, json_t *sample)
{
    double s;
    if (!bench_judge_mmvet_parse(reply, &s))
        return false;
    json_object_set_new(sample, "score", json_real(s));
    return true;
}

static bool judge_score_mmhal(const char *reply, json_t *sample)
{
    int rating = bench_judge_mmhal_parse(reply);
    if (rating < 0)
        return false;
    json_object_set_new(sample, "rating", json_integer(rating));
    json_object_set_new(sample, "hallucination", json_boolean(rating < 3));
    json_object_set_new(sample, "score", json_integer(rating));
    return true;
}

/* Mementos: the judge's lists against the question's ground truth. */
static int judge_score_mementos(const json_t *q, const char *reply, json_t *sample, bool *parsed)
{
    if (!json_is_array(json_object_get(q, "objects")) ||
        !json_is_array(json_object_get(q, "behaviours")))
        return ERR("mementos question %s: no \"objects\" and \"behaviours\" arrays (the "
                   "ground truth)", json_string_value(json_object_get(q, "question_id")));
    json_t *objs = NULL, *behs = NULL;
    *parsed = bench_judge_mementos_parse(reply, &objs, &behs);
    if (!*parsed)
        return 0;
    double p[2], rc[2], f1[2];
    int err = bench_judge_set_prf(objs, json_object_get(q, "objects"), &p[0], &rc[0], &f1[0]) ||
              bench_judge_set_prf(behs, json_object_get(q, "behaviours"), &p[1], &rc[1], &f1[1]);
    if (err) {
        json_decref(objs);
        json_decref(behs);
        return ERR("mementos question %s: \"objects\" and \"behaviours\" must be arrays of "
                   "strings", json_string_value(json_object_get(q, "question_id")));
    }
    json_object_set_new(sample, "objects_mentioned", objs);
    json_object_set_new(sample, "behaviours_mentioned", behs);
    json_object_set_new(sample, "object_precision", json_real(p[0]));
    json_object_set_new(sample, "object_recall", json_real(rc[0]));
    json_object_set_new(sample, "object_f1", json_real(f1[0]));
    json_object_set_new(sample, "behaviour_precision", json_real(p[1]));
    json_object_set_new(sample, "behaviour_recall", json_real(rc[1]));
    json_object_set_new(sample, "behaviour_f1", json_real(f1[1]));
    return 0;
}

/* Scores sample i from its reply (if any); updates the counts. */
static int judge_score_sample(judge_run *r, size_t i)
{
    json_t *s = r->samples[i];
    const char *reply = json_string_value(r->replies[i]);
    json_object_set_new(s, "judged", json_boolean(reply != NULL));
    json_object_set_new(s, "judge_reply", reply ? json_string(reply) : json_null());
    json_object_set_new(s, "score", json_null());
    if (!reply)
        return 0;
    r->judged++;
    bool parsed = false;
    switch (r->index) {
    case 0: parsed = judge_score_llava(reply, s); break;
    case 1: parsed = judge_score_mmvet(reply, s); break;
    case 2: parsed = judge_score_mmhal(reply, s); break;
    default:
        if (judge_score_mementos(json_array_get(r->questions, i), reply, s, &parsed) != 0)
            return -1;
    }
    json_object_set_new(s, "parsed", json_boolean(parsed));
    r->unparsed += !parsed;
    return 0;
}

static const char *judge_str_or(const json_t *q, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(q, key));
    return s ? s : dflt;
}

static bool judge_is_scored(const json_t *sample)
{
    return json_is_true(json_object_get(sample, "parsed"));
}

/* The first sample from i on whose reply was parsed, r->n when none: the
 * metrics loop over these alone. */
static size_t judge_next_scored(const judge_run *r, size_t i)
{
    while (i < r->n && !judge_is_scored(r->samples[i])) i++;
    return i;
}

static double judge_num(const json_t *sample, const char *key)
{
    return json_number_value(json_object_get(sample, key));
}

/* LLaVA-Bench: overall and per-category means and relative scores. */
static void judge_metrics_llava(const judge_run *r, json_t *entry)
{
    bench_judge_llava_acc all = {0};
    judge_groups cats = {0};
    for (size_t i = judge_next_scored(r, 0); i < r->n; i = judge_next_scored(r, i + 1)) {
        double ref = judge_num(r->samples[i], "score_reference");
        double model = judge_num(r->samples[i], "score_model");
        bench_judge_llava_add(&all, ref, model);
        judge_group_add(&cats, judge_str_or(json_array_get(r->questions, i), "category",
                                            "uncategorized"), ref, model);
    }
    json_t *o = bench_judge_llava_json(&all);
    json_object_update(entry, o);
    json_decref(o);
    json_t *by = json_object();
    for (size_t k = 0; k < cats.n; k++) {
        bench_judge_llava_acc a = {cats.g[k].n, cats.g[k].a, cats.g[k].b};
        json_object_set_new(by, cats.g[k].name, bench_judge_llava_json(&a));
    }
    json_object_set_new(entry, "categories", by);
    free(cats.g);
}

/* MM-Vet: 100 * mean score, overall and per capability (a sample counts
 * for each of its capabilities). */
static void judge_metrics_mmvet(const judge_run *r, json_t *entry)
{
    size_t n = 0;
    double sum = 0;
    judge_groups caps = {0};
    for (size_t i = judge_next_scored(r, 0); i < r->n; i = judge_next_scored(r, i + 1)) {
        double s = judge_num(r->samples[i], "score");
        n++;
        sum += s;
        size_t k;
        json_t *cap;
        json_array_foreach(json_object_get(json_array_get(r->questions, i), "capability"), k, cap)
            if (json_is_string(cap))
                judge_group_add(&caps, json_string_value(cap), s, 0);
    }
    json_object_set_new(entry, "samples", json_integer((json_int_t)n));
    json_object_set_new(entry, "score", json_real(100.0 * sum / (double)n));
    json_object_set_new(entry, "capabilities", judge_group_means(&caps, "score", 100.0));
}

/* MMHal-Bench: average rating (0-6), hallucination rate (share of ratings
 * below 3, 0-1), and the average per question type. */
static void judge_metrics_mmhal(const judge_run *r, json_t *entry)
{
    size_t n = 0, halluc = 0;
    double sum = 0;
    judge_groups types = {0};
    for (size_t i = judge_next_scored(r, 0); i < r->n; i = judge_next_scored(r, i + 1)) {
        double s = judge_num(r->samples[i], "rating");
        n++;
        sum += s;
        halluc += s < 3;
        judge_group_add(&types, judge_str_or(json_array_get(r->questions, i), "question_type",
                                             "other"), s, 0);
    }
    json_object_set_new(entry, "samples", json_integer((json_int_t)n));
    json_object_set_new(entry, "average_score", json_real(sum / (double)n));
    json_object_set_new(entry, "hallucination_rate", json_real((double)halluc / (double)n));
    json_object_set_new(entry, "question_types", judge_group_means(&types, "average_score", 1.0));
}

/* Mementos: per-sample precision / recall / F1 of objects and behaviours,
 * averaged over the scored samples, in percent. */
static void judge_metrics_mementos(const judge_run *r, json_t *entry)
{
    static const char *const KEYS[] = {"object_precision", "object_recall", "object_f1",
                                       "behaviour_precision", "behaviour_recall",
                                       "behaviour_f1"};
    double sum[6] = {0};
    size_t n = 0;
    for (size_t i = judge_next_scored(r, 0); i < r->n; i = judge_next_scored(r, i + 1)) {
        n++;
        for (int k = 0; k < 6; k++) sum[k] += judge_num(r->samples[i], KEYS[k]);
    }
    json_object_set_new(entry, "samples", json_integer((json_int_t)n));
    for (int k = 0; k < 6; k++)
        json_object_set_new(entry, KEYS[k], json_real(100.0 * sum[k] / (double)n));
}

/* The results entry after scoring; metrics only over scored samples. */
static json_t *judge_entry(const judge_run *r)
{
    size_t scored = r->judged - r->unparsed, unjudged = r->answered - r->judged;
    const char *status = scored == 0 ? "not scored"
                         : scored < r->answered ? "partially scored" : "scored";
    json_t *e = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:s, s:s, s:s}", "benchmark",
                          r->bench, "status", status, "scored", scored > 0, "answered",
                          (json_int_t)r->answered, "judged", (json_int_t)r->judged, "unparsed",
                          (json_int_t)r->unparsed, "unjudged", (json_int_t)unjudged,
                          "judge_model", r->o->model ? r->o->model : "", "judge_prompt",
                          r->prompt.path, "judge_prompt_hash", r->prompt.hash);
    if (!e)
        return NULL;
    if (scored == 0) {
        json_object_set_new(e, "reason", json_string(r->judged ? "no judge reply could be read"
                                                               : "no judge replies"));
        return e;
    }
    switch (r->index) {
    case 0: judge_metrics_llava(r, e); break;
    case 1: judge_metrics_mmvet(r, e); break;
    case 2: judge_metrics_mmhal(r, e); break;
    default: judge_metrics_mementos(r, e);
    }
    return e;
}

/* The "awaiting judge" entry of BENCH_JUDGE_WRITE_REQUESTS. */
static json_t *judge_awaiting_entry(const judge_run *r)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:I, s:I, s:s, s:s, s:s, s:s}", "benchmark", r->bench,
                     "status", "awaiting judge", "scored", 0, "reason",
                     "judge requests written; score them from the judge's replies",
                     "answered", (json_int_t)r->answered, "requests", (json_int_t)r->requests,
                     "requests_file", r->o->requests_path, "judge_model",
                     r->o->model ? r->o->model : "", "judge_prompt", r->prompt.path,
                     "judge_prompt_hash", r->prompt.hash);
}

static int judge_gather(judge_run *r)
{
    if (r->o->mode != BENCH_JUDGE_READ_REPLIES && (!r->o->model || !r->o->model[0]))
        return ERR("%s: judge scoring needs the judge model's name", r->bench);
    switch (r->o->mode) {
    case BENCH_JUDGE_ONLINE: return judge_online(r);
    case BENCH_JUDGE_WRITE_REQUESTS: return judge_write_requests(r);
    case BENCH_JUDGE_READ_REPLIES: return judge_read_replies(r);
    default: return ERR("%s: unknown judge mode %d", r->bench, (int)r->o->mode);
    }
}

static int judge_finish(judge_run *r, json_t **entry)
{
    if (r->o->mode == BENCH_JUDGE_WRITE_REQUESTS) {
        for (size_t i = 0; i < r->n; i++)
            json_object_set_new(r->samples[i], "score", json_null());
        *entry = judge_awaiting_entry(r);
    } else {
        for (size_t i = 0; i < r->n; i++)
            if (r->answers[i] && judge_score_sample(r, i) != 0)
                return -1;
        *entry = judge_entry(r);
    }
    return *entry ? 0 : ERR("%s: out of memory", r->bench);
}

/* $SIMA_DATA_DIR/judges, else the compiled-in data folder's. */
static char *judge_default_prompts_dir(void)
{
    const char *d = getenv("SIMA_DATA_DIR");
    return fs_join(d && d[0] ? d : SIMA_DATA_DIR_DEFAULT, "judges");
}

int bench_judge_run(const bench_judge_opts *o, const char *bench, json_t *questions,
                    const char *const *answers, json_t **entry, json_t **samples)
{
    judge_run r = {.o = o, .bench = bench, .index = judge_index(bench), .questions = questions,
                   .answers = answers, .n = json_array_size(questions), .samples = samples};
    if (r.index < 0)
        return ERR("%s: not a judge-scored benchmark", bench);
    for (size_t i = 0; i < r.n; i++) {
        samples[i] = json_pack("{s:n}", "score");
        r.answered += answers[i] != NULL;
    }
    *entry = NULL;
    if (o->mode == BENCH_JUDGE_NONE) {
        *entry = bench_judge_not_scored(bench, r.answered);
        return *entry ? 0 : ERR("out of memory");
    }
    char *dir = o->prompts_dir ? xstrdup(o->prompts_dir) : judge_default_prompts_dir();
    int loaded = bench_judge_prompt_load(dir, bench, &r.prompt);
    free(dir);
    if (loaded != 0) {
        for (size_t i = 0; i < r.n; i++) {
            json_decref(samples[i]);
            samples[i] = NULL;
        }
        return -1;
    }
    r.replies = xcalloc(r.n ? r.n : 1, sizeof *r.replies);
    int rc = judge_gather(&r);
    if (rc == 0)
        rc = judge_finish(&r, entry);
    for (size_t i = 0; i < r.n; i++) {
        json_decref(r.replies[i]);
        if (rc != 0) {
            json_decref(samples[i]);
            samples[i] = NULL;
        }
    }
    free(r.replies);
    bench_judge_prompt_free(&r.prompt);
    return rc;
}
