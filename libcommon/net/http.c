/* http.c — HTTP POST of a JSON body through libcurl's easy interface. */
#include "http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc = CURLE_OK;

/* curl_global_init is not thread-safe in older libcurls: run it once. */
static void http_global_init(void)
{
    http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct {
    http_response *resp;
    size_t cap;
    int failed;              /* allocation failed */
} http_sink;

static size_t http_on_body(char *data, size_t size, size_t n, void *user)
{
    http_sink *s = user;
    size_t len = size * n;
    http_response *r = s->resp;
    if (r->body_len + len + 1 > s->cap) {
        size_t cap = (r->body_len + len + 1) * 2;
        char *p = realloc(r->body, cap);
        if (!p) {
            s->failed = 1;
            return 0;        /* makes curl stop with CURLE_WRITE_ERROR */
        }
        r->body = p;
        s->cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

/* Picks "Retry-After: N" (delay in seconds) out of the header lines; an
 * HTTP-date form is left as absent. */
static size_t http_on_header(char *data, size_t size, size_t n, void *user)
{
    http_sink *s = user;
    size_t len = size * n;
    static const char NAME[] = "retry-after:";
    size_t k = sizeof NAME - 1;
    if (len > k && strncasecmp(data, NAME, k) == 0) {
        size_t i = k;
        while (i < len && (data[i] == ' ' || data[i] == '\t')) i++;
        double v = 0;
        size_t digits = 0;
        while (i < len && isdigit((unsigned char)data[i])) {
            v = v * 10 + (data[i++] - '0');
            digits++;
        }
        while (i < len && isspace((unsigned char)data[i])) i++;
        if (digits > 0 && digits < 10 && i == len)
            s->resp->retry_after_s = v;
    }
    return len;
}

/* Sets the options of one request; returns the first failing code. */
static CURLcode http_setup(CURL *c, const http_request *req, struct curl_slist *hdrs,
                           http_sink *sink)
{
    long timeout_ms = req->timeout_s > 0 ? (long)(req->timeout_s * 1000.0) : 60000L;
    CURLcode rc;
    if ((rc = curl_easy_setopt(c, CURLOPT_URL, req->url)) ||
        (rc = curl_easy_setopt(c, CURLOPT_POST, 1L)) ||
        (rc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body)) ||
        (rc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req->body))) ||
        (rc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs)) ||
        (rc = curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms)) ||
        (rc = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L)) ||
        (rc = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_body)) ||
        (rc = curl_easy_setopt(c, CURLOPT_WRITEDATA, sink)) ||
        (rc = curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header)) ||
        (rc = curl_easy_setopt(c, CURLOPT_HEADERDATA, sink)))
        return rc;
    return CURLE_OK;
}

/* The request's header list: JSON content type, no "Expect: 100-continue"
 * (curl would wait for the server's go-ahead before sending a large body),
 * and the bearer key. */
static struct curl_slist *http_headers(const char *api_key)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h1 = h ? curl_slist_append(h, "Expect:") : NULL;
    if (!h1) {
        curl_slist_free_all(h);
        return NULL;
    }
    h = h1;
    if (h && api_key && api_key[0]) {
        size_t n = strlen(api_key) + 32;
        char *line = malloc(n);
        if (!line) {
            curl_slist_free_all(h);
            return NULL;
        }
        snprintf(line, n, "Authorization: Bearer %s", api_key);
        struct curl_slist *h2 = curl_slist_append(h, line);
        free(line);
        if (!h2) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = h2;
    }
    return h;
}

int http_post_json(const http_request *req, http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->retry_after_s = -1;
    pthread_once(&http_once, http_global_init);
    if (http_global_rc != CURLE_OK)
        return ERR("%s: libcurl initialisation failed: %s", req->url,
                   curl_easy_strerror(http_global_rc));
    CURL *c = curl_easy_init();
    if (!c)
        return ERR("%s: libcurl could not create a request handle", req->url);
    struct curl_slist *hdrs = http_headers(req->api_key);
    if (!hdrs) {
        curl_easy_cleanup(c);
        return ERR("%s: out of memory building the request headers", req->url);
    }
    http_sink sink = {.resp = resp};
    CURLcode rc = http_setup(c, req, hdrs, &sink);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        rc = curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        http_response_free(resp);
        resp->retry_after_s = -1;
        return ERR("%s: %s", req->url,
                   sink.failed ? "out of memory reading the response" : curl_easy_strerror(rc));
    }
    if (!resp->body) {
        resp->body = calloc(1, 1);
        if (!resp->body)
            return ERR("%s: out of memory", req->url);
    }
    return 0;
}

void http_response_free(http_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = 0;
}
