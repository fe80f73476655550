/* test_bench_judge_http.c — online judge scoring end to end against a
 * loopback stub server (tests/util/stub_http.c): the requests' body and
 * bearer key, retries on 429 / 500 / a dropped connection, the rate limit,
 * the cache (a rerun asks nothing; a cut-short run continues), errors that
 * name the URL, and offline write -> read giving the online scores. */
#include "bench_judge.h"
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "stub_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_Q 3

static char *g_dir;
static json_t *g_questions;
static const char *const g_answers[N_Q] = {"ANSWER-A", "ANSWER-B", "ANSWER-C"};

/* The canned judge: 1.0, 0.5, 0.0 for the three answers. */
static const char *canned_for(const char *user_content)
{
    if (strstr(user_content, "ANSWER-A")) return "1.0";
    if (strstr(user_content, "ANSWER-B")) return "0.5";
    if (strstr(user_content, "ANSWER-C")) return "0.0";
    return NULL;
}

static char *stub_reply(const char *user_content, void *ctx)
{
    const char *r = canned_for(user_content);
    return r ? strdup(r) : NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *tmp_path(const char *name)
{
    return fs_join(g_dir, name);
}

static bench_judge_opts online_opts(const stub_http *s, const char *cache)
{
    return (bench_judge_opts){.mode = BENCH_JUDGE_ONLINE, .url = stub_http_url(s),
                              .api_key = "sk-test", .model = "judge-x", .max_retries = 3,
                              .timeout_s = 10, .prompts_dir = SIMA_SOURCE_DIR "/data/judges",
                              .cache_path = cache};
}

static void free_samples(json_t **s)
{
    for (int i = 0; i < N_Q; i++) json_decref(s[i]);
}

static long count_lines(const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    if (fs_read_all(path, &buf, &len) != 0) return -1;
    long n = 0;
    for (size_t i = 0; i < len; i++) n += buf[i] == '\n';
    free(buf);
    return n;
}

/* (1.0 + 0.5 + 0.0) / 3 -> 50; capabilities rec {A, B} 75, ocr {C} 0 */
static void check_scores(const json_t *e)
{
    CHECK(strcmp(json_string_value(json_object_get(e, "status")), "scored") == 0);
    CHECK_EQ(json_integer_value(json_object_get(e, "judged")), N_Q);
    CHECK_NEAR(json_number_value(json_object_get(e, "score")), 50, 1e-12);
    json_t *caps = json_object_get(e, "capabilities");
    CHECK_NEAR(json_number_value(json_object_get(json_object_get(caps, "rec"), "score")), 75, 1e-12);
    CHECK_NEAR(json_number_value(json_object_get(json_object_get(caps, "ocr"), "score")), 0, 1e-12);
}

/* 429 twice (Retry-After: 0) then answers; the rate limit spaces requests;
 * a rerun is served from the cache. */
static void test_retry_rate_cache(stub_http *s)
{
    char *cache = tmp_path("cache-429.jsonl");
    bench_judge_opts o = online_opts(s, cache);
    o.max_requests_per_s = 20; /* at least 50 ms between request starts */
    stub_http_reset(s, 2, 429, 0);
    json_t *e = NULL, *smp[N_Q] = {0};
    double t0 = now_s();
    CHECK_OK(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp));
    double elapsed = now_s() - t0;
    CHECK_EQ(stub_http_requests(s), N_Q + 2);
    CHECK_EQ(stub_http_bad_requests(s), 0);
    /* 5 request starts, each >= 50 ms after the previous one */
    CHECK_MSG(elapsed >= 4 * 0.05, "5 requests at <= 20/s took only %.3f s", elapsed);
    for (long i = 1; i < N_Q + 2; i++)
        CHECK(stub_http_arrival(s, i) > stub_http_arrival(s, i - 1));
    check_scores(e);
    CHECK_NEAR(json_number_value(json_object_get(smp[1], "score")), 0.5, 0);
    CHECK(strcmp(json_string_value(json_object_get(smp[1], "judge_reply")), "0.5") == 0);
    CHECK_EQ(count_lines(cache), N_Q);
    json_decref(e);
    free_samples(smp);

    /* the cache lines: key, benchmark, question_id, reply */
    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(fs_read_all(cache, &buf, &len));
    json_t *first = json_loadb(buf, strcspn(buf, "\n"), 0, NULL);
    CHECK(strcmp(json_string_value(json_object_get(first, "benchmark")), "mmvet") == 0);
    CHECK(strcmp(json_string_value(json_object_get(first, "question_id")), "v0") == 0);
    CHECK(strcmp(json_string_value(json_object_get(first, "reply")), "1.0") == 0);
    CHECK_EQ(strlen(json_string_value(json_object_get(first, "key"))), 32);
    json_decref(first);
    free(buf);

    /* rerun: nothing asked, same scores */
    stub_http_reset(s, 0, 429, 0);
    CHECK_OK(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp));
    CHECK_EQ(stub_http_requests(s), 0);
    check_scores(e);
    CHECK_EQ(count_lines(cache), N_Q);
    json_decref(e);
    free_samples(smp);

    /* another judge model is another key: asked again */
    o.model = "judge-y";
    CHECK_OK(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp));
    CHECK_EQ(stub_http_requests(s), N_Q);
    CHECK(strcmp(json_string_value(json_object_get(e, "judge_model")), "judge-y") == 0);
    json_decref(e);
    free_samples(smp);
    free(cache);
}

/* One scored run whose first request fails with `status` (0: the
 * connection dropped; retry_after -1: no Retry-After header): it is retried
 * after at least min_wait seconds, with one request more than questions. */
static void check_retried_run(stub_http *s, const char *cache_name, int status, int retry_after,
                              double min_wait)
{
    char *cache = tmp_path(cache_name);
    bench_judge_opts o = online_opts(s, cache);
    stub_http_reset(s, 1, status, retry_after);
    json_t *e = NULL, *smp[N_Q] = {0};
    double t0 = now_s();
    CHECK_OK(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp));
    CHECK_MSG(now_s() - t0 >= min_wait, "status %d retried after %.3f s, want >= %.1f s", status,
              now_s() - t0, min_wait);
    CHECK_EQ(stub_http_requests(s), N_Q + 1);
    check_scores(e);
    json_decref(e);
    free_samples(smp);
    free(cache);
}

/* 500 without Retry-After and a dropped connection are retried after the
 * 0.5 s back-off; a 429 with Retry-After: 1 waits 1 s instead. */
static void test_retries(stub_http *s)
{
    check_retried_run(s, "cache-err0.jsonl", 500, -1, 0.5);
    check_retried_run(s, "cache-err1.jsonl", 0, -1, 0.5);
    check_retried_run(s, "cache-ra.jsonl", 429, 1, 1.0);
}

/* 400 is not retried: an error naming the URL and the status; retries
 * exhausted on 503: an error too. */
static void test_client_errors(stub_http *s)
{
    char *cache = tmp_path("cache-400.jsonl");
    bench_judge_opts o = online_opts(s, cache);
    stub_http_reset(s, 1, 400, 0);
    json_t *e = NULL, *smp[N_Q] = {0};
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp), "HTTP 400");
    CHECK(strstr(err_msg(), stub_http_url(s)) != NULL);
    CHECK(strstr(err_msg(), "planned failure") != NULL); /* the body excerpt */
    CHECK(e == NULL && smp[0] == NULL);
    CHECK_EQ(stub_http_requests(s), 1);

    o.max_retries = 1;
    stub_http_reset(s, 5, 503, 0);
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp), "HTTP 503");
    CHECK(strstr(err_msg(), stub_http_url(s)) != NULL);
    CHECK_EQ(stub_http_requests(s), 2);

    /* a wrong key is the server's 400, reported the same way */
    o.api_key = "sk-wrong";
    stub_http_reset(s, 0, 400, 0);
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp), "HTTP 400");
    CHECK_EQ(stub_http_bad_requests(s), 1);
    free(cache);

    /* nothing listens there: a network error naming the URL */
    o = online_opts(s, NULL);
    o.url = "http://127.0.0.1:1/v1/chat/completions";
    o.max_retries = 0;
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp),
                     "http://127.0.0.1:1/v1/chat/completions");
}

/* A run cut short (one judgement cached, the next line half written)
 * continues: only the missing judgements are asked. */
static void test_resume(stub_http *s)
{
    char *cache = tmp_path("cache-resume.jsonl");
    bench_judge_opts o = online_opts(s, cache);
    json_t *one = json_pack("[O]", json_array_get(g_questions, 0));
    json_t *e = NULL, *smp[N_Q] = {0};
    stub_http_reset(s, 0, 429, 0);
    CHECK_OK(bench_judge_run(&o, "mmvet", one, g_answers, &e, smp));
    CHECK_EQ(stub_http_requests(s), 1);
    json_decref(e);
    json_decref(smp[0]);
    json_decref(one);
    FILE *f = fopen(cache, "a");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"key\": \"0123", f);
        fclose(f);
    }
    CHECK_EQ(count_lines(cache), 1);
    stub_http_reset(s, 0, 429, 0);
    CHECK_OK(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp));
    CHECK_EQ(stub_http_requests(s), N_Q - 1);
    check_scores(e);
    json_decref(e);
    free_samples(smp);
    /* the cut line is gone, the new judgements are on lines of their own */
    CHECK_EQ(count_lines(cache), N_Q);
    stub_http_reset(s, 0, 429, 0);
    CHECK_OK(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp));
    CHECK_EQ(stub_http_requests(s), 0);
    json_decref(e);
    free_samples(smp);

    /* a complete judgement that only lacks its newline is kept and ended */
    char *buf = NULL, *kept = tmp_path("cache-kept.jsonl");
    size_t len = 0;
    CHECK_OK(fs_read_all(cache, &buf, &len));
    CHECK_OK(fs_write_atomic(kept, buf, strcspn(buf, "\n")));
    free(buf);
    o.cache_path = kept;
    stub_http_reset(s, 0, 429, 0);
    CHECK_OK(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp));
    CHECK_EQ(stub_http_requests(s), N_Q - 1);
    CHECK_EQ(count_lines(kept), N_Q);
    json_decref(e);
    free_samples(smp);
    free(kept);

    /* a malformed line elsewhere is an error naming the file and line */
    char *bad = tmp_path("cache-bad.jsonl");
    const char *text = "not json\n{\"key\": \"k\", \"reply\": \"1\"}\n";
    CHECK_OK(fs_write_atomic(bad, text, strlen(text)));
    o.cache_path = bad;
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp),
                     "cache-bad.jsonl: line 1");
    free(bad);
    free(cache);
}

/* Offline: the written requests, answered by the same canned judge in the
 * batch-output shape, score exactly as online. */
static void test_offline_matches_online(stub_http *s)
{
    char *req = tmp_path("requests.jsonl"), *rep = tmp_path("replies.jsonl");
    bench_judge_opts o = online_opts(s, NULL);
    o.mode = BENCH_JUDGE_WRITE_REQUESTS;
    o.requests_path = req;
    json_t *e = NULL, *smp[N_Q] = {0};
    CHECK_OK(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp));
    CHECK(strcmp(json_string_value(json_object_get(e, "status")), "awaiting judge") == 0);
    json_decref(e);
    free_samples(smp);

    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(fs_read_all(req, &buf, &len));
    FILE *out = fopen(rep, "w");
    CHECK(out != NULL);
    int lines = 0;
    for (char *line = buf; out && *line;) {
        size_t n = strcspn(line, "\n");
        json_t *v = json_loadb(line, n, 0, NULL);
        json_t *msgs = json_object_get(json_object_get(v, "body"), "messages");
        const char *user = json_string_value(json_object_get(json_array_get(msgs, 1), "content"));
        json_t *r = json_pack("{s:O, s:{s:i, s:{s:[{s:{s:s, s:s}}]}}, s:n}", "custom_id",
                              json_object_get(v, "custom_id"), "response", "status_code", 200,
                              "body", "choices", "message", "role", "assistant", "content",
                              canned_for(user ? user : ""), "error");
        char *t = json_dumps(r, JSON_COMPACT);
        fprintf(out, "%s\n", t);
        free(t);
        json_decref(r);
        json_decref(v);
        lines++;
        line += n + (line[n] == '\n');
    }
    if (out) fclose(out);
    free(buf);
    CHECK_EQ(lines, N_Q);

    o.mode = BENCH_JUDGE_READ_REPLIES;
    o.replies_path = rep;
    CHECK_OK(bench_judge_run(&o, "mmvet", g_questions, g_answers, &e, smp));
    check_scores(e);
    json_t *online_e = NULL, *online_s[N_Q] = {0};
    bench_judge_opts on = online_opts(s, NULL);
    stub_http_reset(s, 0, 429, 0);
    CHECK_OK(bench_judge_run(&on, "mmvet", g_questions, g_answers, &online_e, online_s));
    CHECK(json_equal(json_object_get(e, "score"), json_object_get(online_e, "score")));
    CHECK(json_equal(json_object_get(e, "capabilities"), json_object_get(online_e, "capabilities")));
    for (int i = 0; i < N_Q; i++)
        CHECK(json_equal(json_object_get(smp[i], "score"), json_object_get(online_s[i], "score")));
    json_decref(e);
    json_decref(online_e);
    free_samples(smp);
    free_samples(online_s);
    free(req);
    free(rep);
}

int main(void)
{
    /* the loopback server must not be reached through a proxy */
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    stub_http_config cfg = {.expect_auth = "Bearer sk-test", .retry_after = 0,
                            .reply = stub_reply};
    stub_http *s = stub_http_start(&cfg);
    if (!s) {
        printf("skipped: cannot listen on 127.0.0.1\n");
        return 77;
    }
    g_dir = test_tmpdir("judge-http");
    g_questions = json_pack("[{s:s, s:s, s:s, s:[s]}, {s:s, s:s, s:s, s:[s]},"
                            " {s:s, s:s, s:s, s:[s]}]",
                            "question_id", "v0", "question", "What is 1+1?", "answer", "2",
                            "capability", "rec", "question_id", "v1", "question", "Colour?",
                            "answer", "red <AND> white", "capability", "rec", "question_id", "v2",
                            "question", "Text?", "answer", "STOP", "capability", "ocr");
    test_retry_rate_cache(s);
    test_retries(s);
    test_client_errors(s);
    test_resume(s);
    test_offline_matches_online(s);
    json_decref(g_questions);
    stub_http_stop(s);
    free(g_dir);
    return check_finish();
}
