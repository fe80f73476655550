/* bench_judge_client.c — chat-completions requests with retries, a rate
 * limit and a JSONL cache of judgements. */
#define _DEFAULT_SOURCE
#include "bench_judge_client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_judge_prompt.h"
#include "err.h"
#include "hash.h"
#include "fs.h"
#include "http.h"
#include "log.h"

struct bench_judge_client {
    const bench_judge_opts *o;
    json_t *cache;            /* key -> reply string */
    FILE *cache_file;         /* append handle; NULL: no cache file */
    double last_start;        /* monotonic seconds of the last request; < 0: none */
    long requests;
};

static double jc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void jc_sleep(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void bench_judge_client_key(const json_t *body, char key[33])
{
    /* two independent hashes of the same bytes: a 128-bit key */
    uint64_t h1 = HASH_FNV_INIT, h2 = 0x84222325cbf29ce4ULL;
    const char *model = json_string_value(json_object_get(body, "model"));
    const char *parts[2] = {model ? model : "", NULL};
    size_t i;
    json_t *m;
    h1 = hash_fnv1a(parts[0], strlen(parts[0]) + 1, h1);
    h2 = hash_fnv1a(parts[0], strlen(parts[0]) + 1, h2);
    json_array_foreach(json_object_get(body, "messages"), i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        parts[0] = role ? role : "";
        parts[1] = content ? content : "";
        for (int k = 0; k < 2; k++) {
            h1 = hash_fnv1a(parts[k], strlen(parts[k]) + 1, h1);
            h2 = hash_fnv1a(parts[k], strlen(parts[k]) + 1, h2);
        }
    }
    snprintf(key, 33, "%016" PRIx64 "%016" PRIx64, h1, h2);
}

/* One cache line into c->cache; -1 (error naming path:line) if malformed. */
static int jc_cache_line(bench_judge_client *c, const char *line, size_t n, long lineno)
{
    json_error_t e;
    json_t *v = json_loadb(line, n, 0, &e);
    const char *key = json_string_value(json_object_get(v, "key"));
    const json_t *reply = json_object_get(v, "reply");
    if (!v || !key || !json_is_string(reply)) {
        json_decref(v);
        return ERR("%s: line %ld: not a judgement {\"key\", \"reply\"}%s%s", c->o->cache_path,
                   lineno, v ? "" : ": ", v ? "" : e.text);
    }
    json_object_set(c->cache, key, (json_t *)reply);
    json_decref(v);
    return 0;
}

/* Reads the cache file if it exists. A last line without its newline (a
 * write cut short): if it does not parse, *keep is the length before it
 * (the caller cuts it off); if it does, *newline is set (the caller ends it). */
static int jc_cache_load(bench_judge_client *c, long *keep, bool *newline)
{
    *keep = -1;
    *newline = false;
    if (!fs_is_file(c->o->cache_path))
        return 0;
    char *buf = NULL;
    size_t len = 0;
    if (fs_read_all(c->o->cache_path, &buf, &len) != 0)
        return err_context("judge cache");
    long lineno = 0;
    int rc = 0;
    for (size_t at = 0; at < len && rc == 0;) {
        size_t n = strcspn(buf + at, "\n");
        lineno++;
        bool cut = at + n == len; /* no newline: the write was cut short */
        *newline = cut;
        if (n > 0 && jc_cache_line(c, buf + at, n, lineno) != 0) {
            if (cut) {
                *keep = (long)at;
                *newline = false;
                log_warn("%s: line %ld: dropping an incomplete last judgement (a run was cut "
                         "short); it will be asked again", c->o->cache_path, lineno);
                err_clear();
            } else {
                rc = -1;
            }
        }
        at += n + 1;
    }
    free(buf);
    return rc;
}

int bench_judge_client_open(const bench_judge_opts *o, bench_judge_client **out)
{
    bench_judge_client *c = xcalloc(1, sizeof *c);
    c->o = o;
    c->cache = json_object();
    c->last_start = -1;
    long keep = -1;
    bool newline = false;
    if (o->cache_path && jc_cache_load(c, &keep, &newline) != 0) {
        bench_judge_client_close(c);
        return -1;
    }
    /* the next judgement must start a line of its own */
    if (o->cache_path && keep >= 0 && truncate(o->cache_path, (off_t)keep) != 0) {
        err_errno_at(__FILE__, __LINE__, "%s: cannot drop its incomplete last line",
                     o->cache_path);
        bench_judge_client_close(c);
        return -1;
    }
    if (o->cache_path) {
        c->cache_file = fopen(o->cache_path, "a");
        if (!c->cache_file) {
            err_errno_at(__FILE__, __LINE__, "%s: cannot open the judge cache for appending",
                         o->cache_path);
            bench_judge_client_close(c);
            return -1;
        }
        if (newline && (fputc('\n', c->cache_file) == EOF || fflush(c->cache_file) != 0)) {
            err_errno_at(__FILE__, __LINE__, "%s: write", o->cache_path);
            bench_judge_client_close(c);
            return -1;
        }
    }
    *out = c;
    return 0;
}

void bench_judge_client_close(bench_judge_client *c)
{
    if (!c)
        return;
    if (c->cache_file && fclose(c->cache_file) != 0)
        log_warn("%s: closing the judge cache: %s", c->o->cache_path, strerror(errno));
    json_decref(c->cache);
    free(c);
}

const char *bench_judge_client_cached(const bench_judge_client *c, const char *key)
{
    return json_string_value(json_object_get(c->cache, key));
}

long bench_judge_client_requests(const bench_judge_client *c)
{
    return c->requests;
}

/* Appends one judgement to the cache file and flushes it. */
static int jc_cache_append(bench_judge_client *c, const char *key, const char *bench,
                           const char *qid, const char *reply)
{
    json_object_set_new(c->cache, key, json_string(reply));
    if (!c->cache_file)
        return 0;
    json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "key", key, "benchmark", bench,
                             "question_id", qid, "reply", reply);
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (!text)
        return ERR("%s: out of memory writing a judgement", c->o->cache_path);
    int ok = fputs(text, c->cache_file) >= 0 && fputc('\n', c->cache_file) != EOF &&
             fflush(c->cache_file) == 0;
    free(text);
    if (!ok)
        return err_errno_at(__FILE__, __LINE__, "%s: write", c->o->cache_path);
    return 0;
}

/* Waits until the rate limit lets the next request start. */
static void jc_rate_wait(bench_judge_client *c)
{
    if (c->o->max_requests_per_s > 0 && c->last_start >= 0)
        jc_sleep(c->last_start + 1.0 / c->o->max_requests_per_s - jc_now());
    c->last_start = jc_now();
}

/* choices[0].message.content of a 200 body, malloc'd; error names the URL. */
static int jc_content(const bench_judge_client *c, const http_response *r, char **reply)
{
    json_error_t e;
    json_t *v = json_loadb(r->body, r->body_len, 0, &e);
    json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
    const char *text = json_string_value(json_object_get(json_object_get(choice, "message"),
                                                         "content"));
    if (!text) {
        json_decref(v);
        return ERR("%s: HTTP 200 without choices[0].message.content: %.200s", c->o->url,
                   r->body);
    }
    *reply = xstrdup(text);
    json_decref(v);
    return 0;
}

/* Seconds to wait before retry number `attempt` (0-based). */
static double jc_backoff(const http_response *r, int attempt)
{
    if (r && r->retry_after_s >= 0)
        return r->retry_after_s < 300 ? r->retry_after_s : 300;
    double d = 0.5;
    for (int i = 0; i < attempt && d < 30; i++) d *= 2;
    return d < 30 ? d : 30;
}

int bench_judge_client_ask(bench_judge_client *c, const json_t *body, const char *bench,
                           const char *question_id, char **reply)
{
    char key[33];
    bench_judge_client_key(body, key);
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text)
        return ERR("%s: out of memory encoding a request", c->o->url);
    http_request req = {c->o->url, text, c->o->api_key, c->o->timeout_s};
    int rc = -1;
    for (int attempt = 0;; attempt++) {
        jc_rate_wait(c);
        c->requests++;
        http_response r;
        int sent = http_post_json(&req, &r);
        bool retryable = sent != 0 || r.status == 429 || r.status >= 500;
        if (sent == 0 && r.status / 100 == 2) {
            rc = jc_content(c, &r, reply);
        } else if (!retryable) {
            rc = ERR("%s: HTTP %ld: %.300s", c->o->url, r.status, r.body);
        } else if (attempt < c->o->max_retries) {
            double wait = jc_backoff(sent == 0 ? &r : NULL, attempt);
            if (sent != 0)
                log_warn("%s; retrying in %.1f s (%d of %d)", err_msg(), wait, attempt + 1,
                         c->o->max_retries);
            else
                log_warn("%s: HTTP %ld; retrying in %.1f s (%d of %d)", c->o->url, r.status,
                         wait, attempt + 1, c->o->max_retries);
            http_response_free(&r);
            jc_sleep(wait);
            continue;
        } else if (sent == 0) {
            rc = ERR("%s: HTTP %ld after %d retries: %.300s", c->o->url, r.status,
                     c->o->max_retries, r.body);
        } else {
            err_context("after %d retries", c->o->max_retries);
        }
        if (sent == 0)
            http_response_free(&r);
        break;
    }
    free(text);
    if (rc == 0 && jc_cache_append(c, key, bench, question_id, *reply) != 0) {
        free(*reply);
        *reply = NULL;
        return -1;
    }
    return rc;
}
