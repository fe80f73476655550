/* pairs.c — io layer: the sima.pairs columns, and choosing pairs from verdicts. */
#include "pairs.h"
#include "columns.h"
#include "err.h"

#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- memory -- */

/* The /pairs group, in write order (data/schemas/pairs.md). */
#define PAIRS_FIX(f, type) COLS_FIX(pairs_rows, f, type)
static const cols_col PAIRS_COLS[] = {
    PAIRS_FIX(prompt, H5IO_I64),
    PAIRS_FIX(chosen, H5IO_I32),
    PAIRS_FIX(rejected, H5IO_I32),
    COLS_FIX_NAMES(pairs_rows, chosen_kind, H5IO_I8, "0=greedy,1=sampled"),
    PAIRS_FIX(image, H5IO_I64),
    PAIRS_FIX(verdict, H5IO_I8),
    PAIRS_FIX(order, H5IO_I8),
    PAIRS_FIX(consistent, H5IO_I8),
    PAIRS_FIX(verdict_row, H5IO_I64),
    PAIRS_FIX(verdict_row_swapped, H5IO_I64),
    PAIRS_FIX(ref_chosen_logp, H5IO_F64),
    PAIRS_FIX(ref_rejected_logp, H5IO_F64),
    COLS_OFF(pairs_rows, "prompt_ids", H5IO_I32, ids[PAIRS_PROMPT_IDS]),
    COLS_OFF(pairs_rows, "chosen_ids", H5IO_I32, ids[PAIRS_CHOSEN_IDS]),
    COLS_OFF(pairs_rows, "rejected_ids", H5IO_I32, ids[PAIRS_REJECTED_IDS]),
    COLS_OFF(pairs_rows, "id", H5IO_TEXT, text[PAIRS_ID]),
    COLS_OFF(pairs_rows, "question", H5IO_TEXT, text[PAIRS_QUESTION]),
    COLS_OFF(pairs_rows, "chosen_text", H5IO_TEXT, text[PAIRS_CHOSEN_TEXT]),
    COLS_OFF(pairs_rows, "rejected_text", H5IO_TEXT, text[PAIRS_REJECTED_TEXT]),
    COLS_OFF(pairs_rows, "image_name", H5IO_TEXT, text[PAIRS_IMAGE_NAME]),
};
#undef PAIRS_FIX
const cols_table pairs_table = {"/pairs", PAIRS_COLS,
                                       (int)(sizeof PAIRS_COLS / sizeof PAIRS_COLS[0]),
                                       offsetof(pairs_rows, n), offsetof(pairs_rows, cap),
                                       sizeof(pairs_rows)};

void pairs_push(pairs_rows *r, const pairs_row *row, const pairs_ids_in ids[PAIRS_N_IDS],
                const pairs_text_in text[PAIRS_N_TEXTS])
{
    cols_grow_rows(&pairs_table, r, r->n + 1);
    int64_t i = r->n;
    r->prompt[i] = row->prompt;
    r->chosen[i] = row->chosen;
    r->rejected[i] = row->rejected;
    r->chosen_kind[i] = row->chosen_kind;
    r->image[i] = row->image;
    r->verdict[i] = row->verdict;
    r->order[i] = row->order;
    r->consistent[i] = row->consistent;
    r->verdict_row[i] = row->verdict_row;
    r->verdict_row_swapped[i] = row->verdict_row_swapped;
    r->ref_chosen_logp[i] = row->ref_chosen_logp;
    r->ref_rejected_logp[i] = row->ref_rejected_logp;
    for (int k = 0; k < PAIRS_N_IDS; k++)
        cols_ragged_push(&r->ids[k], i, ids[k].v, ids[k].n, sizeof(int32_t));
    for (int k = 0; k < PAIRS_N_TEXTS; k++)
        cols_ragged_push(&r->text[k], i, text[k].s, text[k].n, 1);
    r->n++;
}

void pairs_get(const pairs_rows *r, int64_t i, pairs_row *row)
{
    *row = (pairs_row){r->prompt[i], r->chosen[i], r->rejected[i], r->chosen_kind[i],
                       r->image[i], r->verdict[i], r->order[i], r->consistent[i],
                       r->verdict_row[i], r->verdict_row_swapped[i], r->ref_chosen_logp[i],
                       r->ref_rejected_logp[i]};
}

const int32_t *pairs_ids(const pairs_rows *r, int which, int64_t i, int64_t *n)
{
    const pairs_ragged *g = &r->ids[which];
    *n = g->off[i + 1] - g->off[i];
    return (const int32_t *)g->data + g->off[i];
}

const char *pairs_text(const pairs_rows *r, int which, int64_t i, int64_t *len)
{
    const pairs_ragged *g = &r->text[which];
    *len = g->off[i + 1] - g->off[i];
    return (const char *)g->data + g->off[i];
}

/* pairs_append, pairs_free, pairs_write, pairs_read: the generic ones on pairs_table */
COLS_ROW_FUNCTIONS(pairs, pairs_rows, pairs_table)

/* ---------------------------------------------------- response lookup -- */

static const resp_rows *sort_resp; /* qsort has no context argument */

static int cmp_resp(const void *a, const void *b)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    const resp_rows *r = sort_resp;
    if (r->prompt[i] != r->prompt[j]) return r->prompt[i] < r->prompt[j] ? -1 : 1;
    if (r->candidate[i] != r->candidate[j]) return r->candidate[i] < r->candidate[j] ? -1 : 1;
    return (i > j) - (i < j);
}

void pairs_resp_index_build(pairs_resp_index *x, const resp_rows *resp)
{
    int64_t n = resp->n;
    x->resp = resp;
    x->tok_off = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    x->text_off = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    x->sorted = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    x->tok_off[0] = x->text_off[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        x->tok_off[i + 1] = x->tok_off[i] + resp->n_tokens[i];
        x->text_off[i + 1] = x->text_off[i] + resp->text_len[i];
        x->sorted[i] = i;
    }
    sort_resp = resp;
    qsort(x->sorted, (size_t)n, sizeof(int64_t), cmp_resp);
    sort_resp = NULL;
}

void pairs_resp_index_free(pairs_resp_index *x)
{
    free(x->tok_off);
    free(x->text_off);
    free(x->sorted);
    memset(x, 0, sizeof *x);
}

int64_t pairs_resp_find(const pairs_resp_index *x, int64_t prompt, int32_t candidate)
{
    const resp_rows *r = x->resp;
    int64_t lo = 0, hi = r->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, i = x->sorted[mid];
        bool less = r->prompt[i] < prompt || (r->prompt[i] == prompt && r->candidate[i] < candidate);
        if (less) lo = mid + 1;
        else hi = mid;
    }
    if (lo < r->n) {
        int64_t i = x->sorted[lo];
        if (r->prompt[i] == prompt && r->candidate[i] == candidate) return i;
    }
    return -1;
}

int32_t *pairs_tokens_with_eos(const pairs_resp_index *x, int64_t row, int32_t eos, int64_t *n)
{
    const int32_t *t = x->resp->tokens + x->tok_off[row];
    int64_t len = x->resp->n_tokens[row];
    bool add = len == 0 || t[len - 1] != eos;
    int32_t *out = xmalloc(sizeof(int32_t) * (size_t)(len + 1));
    memcpy(out, t, sizeof(int32_t) * (size_t)len);
    if (add) out[len] = eos;
    *n = len + add;
    return out;
}

/* ---------------------------------------------------------- selection -- */

static const verd_rows *sort_verd;

/* Judgements of the same (prompt, unordered pair) together, order 0 first. */
static int cmp_verd(const void *a, const void *b)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    const verd_rows *v = sort_verd;
    int32_t ilo = v->first[i] < v->second[i] ? v->first[i] : v->second[i];
    int32_t ihi = v->first[i] < v->second[i] ? v->second[i] : v->first[i];
    int32_t jlo = v->first[j] < v->second[j] ? v->first[j] : v->second[j];
    int32_t jhi = v->first[j] < v->second[j] ? v->second[j] : v->first[j];
    if (v->prompt[i] != v->prompt[j]) return v->prompt[i] < v->prompt[j] ? -1 : 1;
    if (ilo != jlo) return ilo < jlo ? -1 : 1;
    if (ihi != jhi) return ihi < jhi ? -1 : 1;
    if (v->order[i] != v->order[j]) return v->order[i] < v->order[j] ? -1 : 1;
    return (i > j) - (i < j);
}

static bool same_pair(const verd_rows *v, int64_t i, int64_t j)
{
    return v->prompt[i] == v->prompt[j] &&
           ((v->first[i] == v->first[j] && v->second[i] == v->second[j]) ||
            (v->first[i] == v->second[j] && v->second[i] == v->first[j]));
}

static bool has_verdict(const verd_rows *v, int64_t i)
{
    return !v->skipped[i] && (v->verdict[i] == 1 || v->verdict[i] == 2);
}

static int32_t winner_of(const verd_rows *v, int64_t i)
{
    return v->verdict[i] == 1 ? v->first[i] : v->second[i];
}

/* Verdict rows by pair (malloc'd). */
static int64_t *sorted_verdicts(const verd_rows *v)
{
    int64_t *idx = xmalloc(sizeof(int64_t) * (size_t)(v->n ? v->n : 1));
    for (int64_t i = 0; i < v->n; i++) idx[i] = i;
    sort_verd = v;
    qsort(idx, (size_t)v->n, sizeof(int64_t), cmp_verd);
    sort_verd = NULL;
    return idx;
}

static bool same_tokens(const pairs_resp_index *x, int64_t a, int64_t b, int32_t eos)
{
    int64_t na, nb;
    int32_t *ta = pairs_tokens_with_eos(x, a, eos, &na);
    int32_t *tb = pairs_tokens_with_eos(x, b, eos, &nb);
    bool same = na == nb && memcmp(ta, tb, sizeof(int32_t) * (size_t)na) == 0;
    free(ta);
    free(tb);
    return same;
}

static bool holds_token(const pairs_resp_index *x, int64_t row, int32_t id)
{
    const int32_t *t = x->resp->tokens + x->tok_off[row];
    for (int64_t k = 0; id >= 0 && k < x->resp->n_tokens[row]; k++)
        if (t[k] == id) return true;
    return false;
}

static int64_t len_with_eos(const pairs_resp_index *x, int64_t row, int32_t eos)
{
    int64_t n = x->resp->n_tokens[row];
    const int32_t *t = x->resp->tokens + x->tok_off[row];
    return n + (n == 0 || t[n - 1] != eos);
}

/* The pick of judgement rows a (whose verdict counts) and b (the other
 * order, -1 none) of v: the winner chosen, the other rejected. */
static int make_pick(const pairs_resp_index *x, const verd_rows *v, int64_t row0, int64_t a,
                     int64_t b, pairs_pick *p)
{
    int32_t win = winner_of(v, a), lose = win == v->first[a] ? v->second[a] : v->first[a];
    int64_t rw = pairs_resp_find(x, v->prompt[a], win), rl = pairs_resp_find(x, v->prompt[a], lose);
    if (rw < 0 || rl < 0)
        return ERR("verdicts row %lld: prompt %lld candidate %d is not in the responses file",
                   (long long)(row0 + a), (long long)v->prompt[a], rw < 0 ? win : lose);
    p->chosen_resp = rw;
    p->rejected_resp = rl;
    p->row = (pairs_row){v->prompt[a], win, lose, x->resp->kind[rw], -1, v->verdict[a],
                         v->order[a], b >= 0 ? 1 : -1, row0 + a, b >= 0 ? row0 + b : -1, NAN, NAN};
    return 0;
}

/* One judged pair: rows g[0..k) of the verdicts (k = 1 or 2, order 0 first).
 * Returns 1 and fills *p when it is kept, 0 when filtered, -1 on error. */
static int judge_group(const pairs_resp_index *x, const verd_rows *v, const int64_t *g, int k,
                       const pairs_select_opts *o, pairs_pick *p, pairs_stats *st)
{
    int64_t a = g[0], row0 = o->verdict_row0;
    if (k == 2 && v->order[g[0]] == v->order[g[1]])
        return ERR("verdicts rows %lld and %lld: prompt %lld, candidates %d and %d judged twice "
                   "in the same order", (long long)(row0 + g[0]), (long long)(row0 + g[1]),
                   (long long)v->prompt[a], v->first[a], v->second[a]);
    int with = 0;
    for (int i = 0; i < k; i++) with += has_verdict(v, g[i]);
    if (with == 0) { st->no_verdict++; return 0; }
    /* both orders: both must give a verdict, and the same winner */
    if (k == 2 && (with < 2 || winner_of(v, g[0]) != winner_of(v, g[1]))) {
        st->inconsistent++;
        return 0;
    }
    if (make_pick(x, v, row0, a, k == 2 ? g[1] : -1, p)) return -1;
    int64_t rw = p->chosen_resp, rl = p->rejected_resp;
    if (holds_token(x, rw, o->image_token_id) || holds_token(x, rl, o->image_token_id)) {
        st->image_token++;
        return 0;
    }
    if (same_tokens(x, rw, rl, o->eos_id)) { st->identical++; return 0; }
    int64_t lw = len_with_eos(x, rw, o->eos_id), ll = len_with_eos(x, rl, o->eos_id);
    if (o->prompt_len && o->max_length > 0) {
        int64_t i = v->prompt[a] - o->prompt0;
        if (i < 0 || i >= o->n_prompts || o->prompt_len[i] < 0)
            return ERR("verdicts row %lld: prompt row %lld is not in the prompts file",
                       (long long)(row0 + a), (long long)v->prompt[a]);
        if (o->prompt_len[i] + (lw > ll ? lw : ll) > o->max_length) {
            st->too_long++;
            return 0;
        }
    }
    st->kept++;
    if (x->resp->kind[rw] == RESP_GREEDY) st->chosen_greedy++;
    else st->chosen_sampled++;
    st->mean_chosen_len += (double)lw;
    st->mean_rejected_len += (double)ll;
    return 1;
}

int pairs_select_part(const pairs_resp_index *x, const verd_rows *v, const pairs_select_opts *o,
                      pairs_pick **picks, int64_t *n_picks, pairs_stats *st)
{
    int64_t *idx = sorted_verdicts(v);
    *picks = xmalloc(sizeof(pairs_pick) * (size_t)(v->n ? v->n : 1));
    *n_picks = 0;
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < v->n;) {
        int64_t k = 1;
        while (i + k < v->n && same_pair(v, idx[i], idx[i + k])) k++;
        if (k > 2)
            rc = ERR("verdicts: prompt %lld, candidates %d and %d judged %lld times (at most "
                     "once per order)", (long long)v->prompt[idx[i]], v->first[idx[i]],
                     v->second[idx[i]], (long long)k);
        st->judged++;
        int kept = rc == 0 ? judge_group(x, v, idx + i, (int)k, o, *picks + *n_picks, st) : -1;
        if (kept < 0) rc = -1;
        else *n_picks += kept;
        i += k;
    }
    free(idx);
    if (rc != 0) {
        free(*picks);
        *picks = NULL;
        *n_picks = 0;
    }
    return rc;
}

void pairs_stats_finish(pairs_stats *st)
{
    if (st->kept) {
        st->mean_chosen_len /= (double)st->kept;
        st->mean_rejected_len /= (double)st->kept;
    }
}

int pairs_select(const pairs_resp_index *x, const verd_rows *v, const pairs_select_opts *o,
                 pairs_pick **picks, int64_t *n_picks, pairs_stats *st)
{
    memset(st, 0, sizeof *st);
    int rc = pairs_select_part(x, v, o, picks, n_picks, st);
    pairs_stats_finish(st);
    return rc;
}

int pairs_pick_rebuild(const pairs_resp_index *x, const verd_rows *v, int64_t verdict_row0,
                       int64_t row, int64_t row_swapped, pairs_pick *p)
{
    int64_t a = row - verdict_row0, b = row_swapped < 0 ? -1 : row_swapped - verdict_row0;
    if (a < 0 || a >= v->n || b >= v->n)
        return ERR("verdicts rows %lld, %lld: not among the rows read", (long long)row,
                   (long long)row_swapped);
    return make_pick(x, v, verdict_row0, a, b, p);
}
