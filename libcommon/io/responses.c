/* responses.c — io layer: the sima.responses columns, written and read whole. */
#include "responses.h"
#include "columns.h"
#include "err.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The /responses group, in write order (data/schemas/responses.md). */
static const cols_col RESP_COLS[] = {
    COLS_FIX(resp_rows, prompt, H5IO_I64),
    COLS_FIX(resp_rows, candidate, H5IO_I32),
    COLS_FIX_NAMES(resp_rows, kind, H5IO_I8, "0=greedy,1=sampled"),
    COLS_FIX(resp_rows, seed, H5IO_U64),
    COLS_LEN(resp_rows, "tokens", H5IO_I32, tokens, n_tokens, tok_total, tok_cap),
    COLS_LEN(resp_rows, "text", H5IO_TEXT, text, text_len, text_total, text_cap),
    COLS_LEN(resp_rows, "token_logprobs", H5IO_F32, logprobs, n_tokens, tok_total, tok_cap),
    COLS_FIX(resp_rows, sum_logprob, H5IO_F64),
    COLS_FIX_NAMES(resp_rows, finish, H5IO_I8, "1=eos,2=length,3=context"),
};
const cols_table resp_table = {"/responses", RESP_COLS,
                                      (int)(sizeof RESP_COLS / sizeof RESP_COLS[0]),
                                      offsetof(resp_rows, n), offsetof(resp_rows, cap),
                                      sizeof(resp_rows)};

/* tokens and logprobs share one capacity */
static void grow_tokens(resp_rows *r, int64_t need)
{
    int64_t cap = r->tok_cap;
    cols_reserve((void **)&r->tokens, &cap, need, sizeof *r->tokens);
    cap = r->tok_cap;
    cols_reserve((void **)&r->logprobs, &cap, need, sizeof *r->logprobs);
    r->tok_cap = cap;
}

void resp_push(resp_rows *r, int64_t prompt, int32_t candidate, int8_t kind, uint64_t seed,
               int8_t finish, const int32_t *tokens, const float *logprobs, int64_t n_tokens,
               const char *text, int64_t text_len)
{
    cols_grow_rows(&resp_table, r, r->n + 1);
    grow_tokens(r, r->tok_total + n_tokens);
    cols_reserve((void **)&r->text, &r->text_cap, r->text_total + text_len + 1, 1);
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

/* resp_append, resp_free, resp_write, resp_read: the generic ones on resp_table */
COLS_ROW_FUNCTIONS(resp, resp_rows, resp_table)

