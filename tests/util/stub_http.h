/* stub_http.h — a loopback HTTP server for tests of the judge client: it
 * listens on 127.0.0.1 (a free port), answers chat-completions requests with
 * canned replies, can fail the first requests, counts requests and checks
 * their Authorization header and JSON body. It runs in its own thread and
 * answers one request per connection. */
#ifndef SIMA_TEST_STUB_HTTP_H
#define SIMA_TEST_STUB_HTTP_H

#include <stdbool.h>

typedef struct {
    const char *expect_auth;   /* required "Authorization" value; NULL: must be absent */
    int fail_first;            /* the first N requests fail as below */
    int fail_status;           /* their status (429, 500, 400, ...); 0: close without an answer */
    int retry_after;           /* >= 0: a "Retry-After" header (seconds) on failures */
    /* The content of a 200 reply to a request whose last (user) message is
     * user_content: a malloc'd string, or NULL to answer 404. */
    char *(*reply)(const char *user_content, void *ctx);
    void *ctx;
} stub_http_config;

typedef struct stub_http stub_http;

/* Starts the server; NULL (and a message on stderr) when it cannot listen. */
stub_http *stub_http_start(const stub_http_config *cfg);
/* Stops the thread and frees the server. */
void stub_http_stop(stub_http *s);

/* "http://127.0.0.1:PORT/v1/chat/completions" */
const char *stub_http_url(const stub_http *s);
/* Requests received (failed ones included). */
long stub_http_requests(const stub_http *s);
/* Requests whose Authorization header or JSON body was not as expected
 * (body: "model" a non-empty string, "messages" a system then a user
 * message, "temperature" 0, "max_tokens" a positive integer); they are
 * answered 400. */
long stub_http_bad_requests(const stub_http *s);
/* Monotonic arrival time (seconds) of request i; < 0 out of range. */
double stub_http_arrival(const stub_http *s, long i);
/* Resets the counters and the failure plan: the next fail_first requests
 * fail with fail_status, with Retry-After: retry_after when >= 0. */
void stub_http_reset(stub_http *s, int fail_first, int fail_status, int retry_after);

#endif
