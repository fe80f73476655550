/* responses.c — io layer: the sima.responses columns, written and read whole
 * or a part at a time. */
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
    if (n_tokens > 0) { /* (no token array yet when every row so far is empty) */
        memcpy(r->tokens + r->tok_total, tokens, sizeof(int32_t) * (size_t)n_tokens);
        memcpy(r->logprobs + r->tok_total, logprobs, sizeof(float) * (size_t)n_tokens);
    }
    memcpy(r->text + r->text_total, text, (size_t)text_len);
    r->tok_total += n_tokens;
    r->text_total += text_len;
}

/* resp_append, resp_free, resp_write, resp_read: the generic ones on resp_table */
COLS_ROW_FUNCTIONS(resp, resp_rows, resp_table)


int resp_open(h5io_file *f, const char *path, int64_t *n)
{
    return cols_open(f, path, RESP_SCHEMA, RESP_SCHEMA_VERSION, &resp_table, n);
}

int resp_read_range(h5io_file *f, int64_t row0, int64_t n, resp_rows *r)
{
    return cols_read_range(f, &resp_table, row0, n, r);
}

/* Rows read per step of the index pass: 16 + 4 bytes each. */
#define RESP_INDEX_WINDOW 65536

/* The group of rows [row0, end) is an item when it has enough candidates. */
static void add_item(resp_index *ix, int64_t *cap, int64_t row0, int64_t end, int min_cands)
{
    if (end <= row0 || end - row0 < min_cands) return;
    cols_reserve((void **)&ix->item_row0, cap, ix->n_items + 2, sizeof(int64_t));
    ix->item_row0[ix->n_items++] = row0;
}

int resp_index_items(h5io_file *f, int64_t n_prompts, int min_cands, resp_index *ix)
{
    memset(ix, 0, sizeof *ix);
    int64_t rows = cols_rows(f, &resp_table), cap = 0;
    if (rows < 0) return -1;
    int64_t *prompt = xmalloc(sizeof(int64_t) * RESP_INDEX_WINDOW);
    int32_t *cand = xmalloc(sizeof(int32_t) * RESP_INDEX_WINDOW);
    int64_t prev_prompt = -1, group_row0 = 0;
    int32_t prev_cand = -1;
    int rc = 0;
    for (int64_t w0 = 0; rc == 0 && w0 < rows; w0 += RESP_INDEX_WINDOW) {
        int64_t n = rows - w0 < RESP_INDEX_WINDOW ? rows - w0 : RESP_INDEX_WINDOW;
        rc = h5io_read_column(f, "/responses/prompt", H5IO_I64, w0, n, prompt);
        if (rc == 0) rc = h5io_read_column(f, "/responses/candidate", H5IO_I32, w0, n, cand);
        for (int64_t k = 0; rc == 0 && k < n; k++) {
            int64_t i = w0 + k;
            if (prompt[k] < 0 || prompt[k] >= n_prompts) {
                rc = ERR("%s: row %lld names prompt %lld, the prompts file has %lld", f->path,
                         (long long)i, (long long)prompt[k], (long long)n_prompts);
                break;
            }
            bool same = i > 0 && prompt[k] == prev_prompt;
            if (cand[k] != (same ? prev_cand + 1 : 0)) {
                rc = ERR("%s: rows are not ordered by prompt and candidate (row %lld)", f->path,
                         (long long)i);
                break;
            }
            if (!same) {
                add_item(ix, &cap, group_row0, i, min_cands);
                group_row0 = i;
            }
            prev_prompt = prompt[k];
            prev_cand = cand[k];
        }
    }
    if (rc == 0) {
        add_item(ix, &cap, group_row0, rows, min_cands);
        cols_reserve((void **)&ix->item_row0, &cap, ix->n_items + 1, sizeof(int64_t));
        ix->item_row0[ix->n_items] = rows;
    }
    free(prompt);
    free(cand);
    if (rc != 0) {
        free(ix->item_row0);
        memset(ix, 0, sizeof *ix);
    }
    return rc;
}

int64_t resp_lower_bound(h5io_file *f, int64_t rows, int64_t prompt)
{
    int64_t lo = 0, hi = rows;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, p;
        if (h5io_read_column(f, "/responses/prompt", H5IO_I64, mid, 1, &p) != 0) return -1;
        if (p < prompt) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}
