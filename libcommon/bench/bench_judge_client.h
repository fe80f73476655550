/* bench_judge_client.h — asks an OpenAI-compatible chat-completions
 * endpoint for judgements (calls: net, base), with retries, a rate limit and
 * a JSONL cache of the judgements.
 *
 * Cache file: one line per judgement,
 *   {"key": KEY, "benchmark": B, "question_id": Q, "reply": TEXT}
 * KEY = bench_judge_client_key(body): a hash of the model and the messages.
 * The file is read at open and each new judgement appended and flushed as it
 * arrives, so a killed run keeps every reply it got and a rerun asks again
 * only for the missing ones. */
#ifndef SIMA_BENCH_JUDGE_CLIENT_H
#define SIMA_BENCH_JUDGE_CLIENT_H

#include <jansson.h>

#include "bench_judge.h"

typedef struct bench_judge_client bench_judge_client;

/* Opens the client for o (url, api_key, rate limit, retries, timeout,
 * cache_path; cache_path NULL: no cache file). Loads the cache; a malformed
 * line is an error naming the file and line, except a last line without its
 * newline (a write cut short by a kill), which is dropped with a warning. */
int bench_judge_client_open(const bench_judge_opts *o, bench_judge_client **out);
void bench_judge_client_close(bench_judge_client *c);

/* The cache key of a request body: 32 hex digits (two 64-bit FNV-1a
 * hashes) over "model" and each message's role and content. */
void bench_judge_client_key(const json_t *body, char key[33]);

/* The cached reply for key; NULL when not cached (owned by the client). */
const char *bench_judge_client_cached(const bench_judge_client *c, const char *key);

/* Sends body (a chat-completions request) and returns the text of
 * choices[0].message.content in *reply (malloc'd), appending it to the
 * cache. Network errors, 429 and 5xx are retried up to max_retries times
 * with exponential back-off (0.5 s doubling, at most 30 s) or the server's
 * Retry-After (at most 300 s); other statuses fail with the URL, the status
 * and an excerpt of the body. Requests (retries included) start at least
 * 1 / max_requests_per_s seconds apart. */
int bench_judge_client_ask(bench_judge_client *c, const json_t *body, const char *bench,
                           const char *question_id, char **reply);

/* Requests sent so far (retries included). */
long bench_judge_client_requests(const bench_judge_client *c);

#endif
