/* http.h — net layer: a small HTTP client over libcurl (calls: base, libcurl).
 *
 * One POST of a JSON body, with an optional bearer key and a timeout. A
 * response of any status is a success of the transport (the caller decides
 * what a 429 or a 400 means); only a failure to get a response at all (DNS,
 * refused connection, timeout, TLS) is an error, recorded via err.h with the
 * URL and curl's reason. */
#ifndef SIMA_NET_HTTP_H
#define SIMA_NET_HTTP_H

#include <stddef.h>

typedef struct {
    const char *url;
    const char *body;        /* JSON text sent as the request body */
    const char *api_key;     /* "Authorization: Bearer KEY" when non-NULL and non-empty */
    double timeout_s;        /* whole request; <= 0: 60 s */
} http_request;

typedef struct {
    long status;             /* HTTP status code */
    char *body;              /* malloc'd, NUL-terminated; "" when empty */
    size_t body_len;
    double retry_after_s;    /* Retry-After header in seconds; < 0: absent or a date */
} http_response;

/* POSTs req->body to req->url. 0 with *resp filled when a response came back
 * (whatever its status); -1 (error "URL: reason") otherwise. */
int http_post_json(const http_request *req, http_response *resp);

void http_response_free(http_response *resp);

#endif
