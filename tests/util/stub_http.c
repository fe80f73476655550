/* stub_http.c — the loopback chat-completions server of stub_http.h. */
#define _DEFAULT_SOURCE
#include "stub_http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STUB_MAX_ARRIVALS 1024

struct stub_http {
    stub_http_config cfg;
    int fd;
    char url[80];
    pthread_t thread;
    pthread_mutex_t lock;
    int stop;                  /* under lock */
    long requests, bad;        /* under lock */
    int fail_left;             /* under lock */
    double arrival[STUB_MAX_ARRIVALS];
};

static double stub_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reads one request: headers into *head (NUL-terminated), the body (by
 * Content-Length) into *body. 0 on success. */
static int stub_read_request(int fd, char **head, char **body)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    char *end = NULL;
    while (!end) {
        if (len + 1 >= cap) buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0) {
            free(buf);
            return -1;
        }
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - buf) + 4;
    long clen = 0;
    for (char *p = buf; p < end; p = strstr(p, "\r\n") + 2)
        if (strncasecmp(p, "content-length:", 15) == 0) clen = atol(p + 15);
    while (len < head_len + (size_t)clen) {
        if (len + 1 >= cap) buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0) {
            free(buf);
            return -1;
        }
        len += (size_t)n;
    }
    *body = malloc((size_t)clen + 1);
    memcpy(*body, buf + head_len, (size_t)clen);
    (*body)[clen] = '\0';
    buf[head_len] = '\0';
    *head = buf;
    return 0;
}

/* The value of header name in head (malloc'd), NULL if absent. */
static char *stub_header(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ') v++;
            size_t len = strcspn(v, "\r\n");
            char *out = malloc(len + 1);
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

static bool stub_role_is(const json_t *msg, const char *role)
{
    const char *r = json_string_value(json_object_get(msg, "role"));
    return r && strcmp(r, role) == 0;
}

/* The user message of a well-formed request body, or NULL. */
static const char *stub_check_body(const json_t *v)
{
    const char *model = json_string_value(json_object_get(v, "model"));
    const json_t *msgs = json_object_get(v, "messages");
    const json_t *sys = json_array_get(msgs, 0), *usr = json_array_get(msgs, 1);
    const json_t *temp = json_object_get(v, "temperature");
    const json_t *max = json_object_get(v, "max_tokens");
    bool ok = model && model[0] && json_array_size(msgs) == 2 &&
              json_is_string(json_object_get(sys, "content")) &&
              json_is_string(json_object_get(usr, "content")) &&
              stub_role_is(sys, "system") && stub_role_is(usr, "user") &&
              json_is_number(temp) && json_number_value(temp) == 0 && json_is_integer(max) &&
              json_integer_value(max) > 0;
    return ok ? json_string_value(json_object_get(usr, "content")) : NULL;
}

static void stub_send(int fd, int status, const char *extra, const char *body)
{
    char head[256];
    size_t blen = strlen(body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d Stub\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     status, blen, extra);
    /* MSG_NOSIGNAL: a client that went away must not kill the test */
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL) < 0 || send(fd, body, blen, MSG_NOSIGNAL) < 0) {
        /* nothing to do */
    }
}

/* A 200 chat-completions answer whose content is text. */
static void stub_send_reply(int fd, const char *text)
{
    json_t *v = json_pack("{s:s, s:s, s:[{s:i, s:{s:s, s:s}, s:s}]}", "id", "stub-1", "object",
                          "chat.completion", "choices", "index", 0, "message", "role",
                          "assistant", "content", text, "finish_reason", "stop");
    char *body = json_dumps(v, JSON_COMPACT);
    stub_send(fd, 200, "", body);
    free(body);
    json_decref(v);
}

/* Answers one connection. */
static void stub_serve(stub_http *s, int fd)
{
    char *head = NULL, *body = NULL;
    if (stub_read_request(fd, &head, &body) != 0) return;
    pthread_mutex_lock(&s->lock);
    if (s->requests < STUB_MAX_ARRIVALS) s->arrival[s->requests] = stub_now();
    s->requests++;
    bool fail = s->fail_left > 0;
    if (fail) s->fail_left--;
    int fail_status = s->cfg.fail_status, retry_after = s->cfg.retry_after;
    pthread_mutex_unlock(&s->lock);

    char *auth = stub_header(head, "Authorization");
    json_t *v = json_loads(body, 0, NULL);
    const char *user = stub_check_body(v);
    bool auth_ok = s->cfg.expect_auth ? auth && strcmp(auth, s->cfg.expect_auth) == 0 : !auth;
    if (!auth_ok || !user) {
        pthread_mutex_lock(&s->lock);
        s->bad++;
        pthread_mutex_unlock(&s->lock);
        stub_send(fd, 400, "", "{\"error\": {\"message\": \"stub: bad request\"}}");
    } else if (fail && fail_status == 0) {
        /* close without answering: a network error for the client */
    } else if (fail) {
        char extra[64] = "";
        if (retry_after >= 0)
            snprintf(extra, sizeof extra, "Retry-After: %d\r\n", retry_after);
        stub_send(fd, fail_status, extra, "{\"error\": {\"message\": \"stub: planned failure\"}}");
    } else {
        char *text = s->cfg.reply(user, s->cfg.ctx);
        if (text)
            stub_send_reply(fd, text);
        else
            stub_send(fd, 404, "", "{\"error\": {\"message\": \"stub: no canned reply\"}}");
        free(text);
    }
    json_decref(v);
    free(auth);
    free(head);
    free(body);
}

static void *stub_main(void *arg)
{
    stub_http *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0) continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        stub_serve(s, c);
        close(c);
    }
    return NULL;
}

stub_http *stub_http_start(const stub_http_config *cfg)
{
    stub_http *s = calloc(1, sizeof *s);
    s->cfg = *cfg;
    s->fail_left = cfg->fail_first;
    pthread_mutex_init(&s->lock, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->fd, 16) != 0 || getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0) {
        perror("stub_http: cannot listen on 127.0.0.1");
        if (s->fd >= 0) close(s->fd);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/v1/chat/completions", ntohs(a.sin_port));
    if (pthread_create(&s->thread, NULL, stub_main, s) != 0) {
        perror("stub_http: pthread_create");
        close(s->fd);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    return s;
}

void stub_http_stop(stub_http *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const char *stub_http_url(const stub_http *s)
{
    return s->url;
}

long stub_http_requests(const stub_http *s)
{
    pthread_mutex_lock((pthread_mutex_t *)&s->lock);
    long n = s->requests;
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
    return n;
}

long stub_http_bad_requests(const stub_http *s)
{
    pthread_mutex_lock((pthread_mutex_t *)&s->lock);
    long n = s->bad;
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
    return n;
}

double stub_http_arrival(const stub_http *s, long i)
{
    pthread_mutex_lock((pthread_mutex_t *)&s->lock);
    double t = i >= 0 && i < s->requests && i < STUB_MAX_ARRIVALS ? s->arrival[i] : -1;
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
    return t;
}

void stub_http_reset(stub_http *s, int fail_first, int fail_status, int retry_after)
{
    pthread_mutex_lock(&s->lock);
    s->requests = 0;
    s->bad = 0;
    s->fail_left = fail_first;
    s->cfg.fail_status = fail_status;
    s->cfg.retry_after = retry_after;
    pthread_mutex_unlock(&s->lock);
}
