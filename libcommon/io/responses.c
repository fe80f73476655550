/* responses.c — io layer: the sima.responses columns, written and read whole. */
#include "responses.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

static void grow(void **p, int64_t *cap, int64_t need, size_t elsize)
{
    if (need <= *cap) return;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    *p = xrealloc(*p, (size_t)c * elsize);
    *cap = c;
}

static void grow_rows(resp_rows *r, int64_t need)
{
    if (need <= r->cap) return;
    int64_t c = r->cap;
    /* every per-row array shares one capacity */
    int64_t cap = c;
    grow((void **)&r->prompt, &cap, need, sizeof *r->prompt);
    cap = c; grow((void **)&r->candidate, &cap, need, sizeof *r->candidate);
    cap = c; grow((void **)&r->kind, &cap, need, sizeof *r->kind);
    cap = c; grow((void **)&r->seed, &cap, need, sizeof *r->seed);
    cap = c; grow((void **)&r->sum_logprob, &cap, need, sizeof *r->sum_logprob);
    cap = c; grow((void **)&r->finish, &cap, need, sizeof *r->finish);
    cap = c; grow((void **)&r->n_tokens, &cap, need, sizeof *r->n_tokens);
    cap = c; grow((void **)&r->text_len, &cap, need, sizeof *r->text_len);
    r->cap = cap;
}

static void grow_tokens(resp_rows *r, int64_t need)
{
    int64_t cap = r->tok_cap;
    grow((void **)&r->tokens, &cap, need, sizeof *r->tokens);
    cap = r->tok_cap;
    grow((void **)&r->logprobs, &cap, need, sizeof *r->logprobs);
    r->tok_cap = cap;
}

void resp_push(resp_rows *r, int64_t prompt, int32_t candidate, int8_t kind, uint64_t seed,
               int8_t finish, const int32_t *tokens, const float *logprobs, int64_t n_tokens,
               const char *text, int64_t text_len)
{
    grow_rows(r, r->n + 1);
    grow_tokens(r, r->tok_total + n_tokens);
    grow((void **)&r->text, &r->text_cap, r->text_total + text_len + 1, 1);
    int64_t i = r->n++;
    double sum = 0;
    for (int64_t k = 0; k < n_tokens; k++) sum += logprobs[k];
    r->prompt[i] = prompt;
    r->candidate[i] = candidate;
    r->kind[i] = kind;
    r->seed[i] = seed;
    r->finish[i] = finish;
    r->sum_logprob[i] = sum;
    r->n_tokens[i] = n_tokens;
    r->text_len[i] = text_len;
    memcpy(r->tokens + r->tok_total, tokens, sizeof(int32_t) * (size_t)n_tokens);
    memcpy(r->logprobs + r->tok_total, logprobs, sizeof(float) * (size_t)n_tokens);
    memcpy(r->text + r->text_total, text, (size_t)text_len);
    r->tok_total += n_tokens;
    r->text_total += text_len;
}

void resp_append(resp_rows *dst, const resp_rows *src)
{
    int64_t t = 0, x = 0;
    for (int64_t i = 0; i < src->n; i++) {
        resp_push(dst, src->prompt[i], src->candidate[i], src->kind[i], src->seed[i],
                  src->finish[i], src->tokens + t, src->logprobs + t, src->n_tokens[i],
                  src->text + x, src->text_len[i]);
        /* keep the stored sum: it was computed from the same log-probs */
        dst->sum_logprob[dst->n - 1] = src->sum_logprob[i];
        t += src->n_tokens[i];
        x += src->text_len[i];
    }
}

void resp_free(resp_rows *r)
{
    free(r->prompt);
    free(r->candidate);
    free(r->kind);
    free(r->seed);
    free(r->sum_logprob);
    free(r->finish);
    free(r->n_tokens);
    free(r->tokens);
    free(r->logprobs);
    free(r->text_len);
    free(r->text);
    memset(r, 0, sizeof *r);
}

int resp_write(h5io_file *f, const resp_rows *r)
{
    static const char *names = "0=greedy,1=sampled";
    static const char *finishes = "1=eos,2=length,3=context";
    int rc = h5io_group(f, "/responses");
    if (rc == 0) rc = h5io_write_column(f, "/responses/prompt", H5IO_I64, r->n, 1, r->prompt);
    if (rc == 0) rc = h5io_write_column(f, "/responses/candidate", H5IO_I32, r->n, 1, r->candidate);
    if (rc == 0) rc = h5io_write_column(f, "/responses/kind", H5IO_I8, r->n, 1, r->kind);
    if (rc == 0) rc = h5io_set_attr_str(f, "/responses/kind", "names", names);
    if (rc == 0) rc = h5io_write_column(f, "/responses/seed", H5IO_U64, r->n, 1, r->seed);
    if (rc == 0)
        rc = h5io_write_ragged(f, "/responses/tokens", H5IO_I32, r->n, r->n_tokens, r->tokens);
    if (rc == 0)
        rc = h5io_write_ragged(f, "/responses/text", H5IO_TEXT, r->n, r->text_len, r->text);
    if (rc == 0)
        rc = h5io_write_ragged(f, "/responses/token_logprobs", H5IO_F32, r->n, r->n_tokens,
                               r->logprobs);
    if (rc == 0)
        rc = h5io_write_column(f, "/responses/sum_logprob", H5IO_F64, r->n, 1, r->sum_logprob);
    if (rc == 0) rc = h5io_write_column(f, "/responses/finish", H5IO_I8, r->n, 1, r->finish);
    if (rc == 0) rc = h5io_set_attr_str(f, "/responses/finish", "names", finishes);
    return rc;
}

/* Read a whole ragged column; lengths[n] from its offsets. */
static int read_ragged_all(h5io_file *f, const char *path, h5io_type type, int64_t n,
                           int64_t *lengths, void **data, int64_t *total)
{
    int64_t *off = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    int rc = h5io_read_ragged(f, path, type, 0, n, off, data);
    if (rc == 0) {
        for (int64_t i = 0; i < n; i++) lengths[i] = off[i + 1] - off[i];
        *total = off[n];
    }
    free(off);
    return rc;
}

int resp_read(h5io_file *f, resp_rows *r)
{
    memset(r, 0, sizeof *r);
    int64_t n = h5io_rows(f, "/responses/prompt");
    if (n < 0) return -1;
    grow_rows(r, n > 0 ? n : 1);
    r->n = n;
    int rc = 0;
    if (rc == 0) rc = h5io_read_column(f, "/responses/prompt", H5IO_I64, 0, n, r->prompt);
    if (rc == 0) rc = h5io_read_column(f, "/responses/candidate", H5IO_I32, 0, n, r->candidate);
    if (rc == 0) rc = h5io_read_column(f, "/responses/kind", H5IO_I8, 0, n, r->kind);
    if (rc == 0) rc = h5io_read_column(f, "/responses/seed", H5IO_U64, 0, n, r->seed);
    if (rc == 0) rc = h5io_read_column(f, "/responses/sum_logprob", H5IO_F64, 0, n, r->sum_logprob);
    if (rc == 0) rc = h5io_read_column(f, "/responses/finish", H5IO_I8, 0, n, r->finish);
    int64_t lp_total = 0;
    int64_t *lp_len = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (rc == 0)
        rc = read_ragged_all(f, "/responses/tokens", H5IO_I32, n, r->n_tokens, (void **)&r->tokens,
                             &r->tok_total);
    if (rc == 0)
        rc = read_ragged_all(f, "/responses/token_logprobs", H5IO_F32, n, lp_len,
                             (void **)&r->logprobs, &lp_total);
    if (rc == 0)
        rc = read_ragged_all(f, "/responses/text", H5IO_TEXT, n, r->text_len, (void **)&r->text,
                             &r->text_total);
    if (rc == 0 && (lp_total != r->tok_total || memcmp(lp_len, r->n_tokens, sizeof(int64_t) * (size_t)n)))
        rc = ERR("%s: token_logprobs and tokens have different lengths", f->path);
    free(lp_len);
    r->tok_cap = r->tok_total;
    r->text_cap = r->text_total;
    if (rc != 0) resp_free(r);
    return rc;
}
