/* sima-pairs — preference pairs from the critic's verdicts.
 *
 *   mpirun -np N sima-pairs --model DIR --prompts prompts.h5 --responses responses.h5 \
 *       --verdicts verdicts.h5 --out pairs.h5 [options]
 *   sima-pairs export pairs.h5 --format llava-dpo|trl [--image-root DIR] [--out FILE.jsonl]
 *
 * Every rank reads the responses and verdicts and chooses the same pairs
 * (pairs_select: the verdict's winner is chosen, the other rejected; pairs
 * without a verdict, judged inconsistently in the two orders, with identical
 * token ids, or too long for --max-length are dropped and counted). The kept
 * pairs are then cut into chunks exactly as sima-gen cuts prompts: the ranks
 * share the chunks, each builds its pairs' token ids (and, with --ref-logps,
 * scores them with the reference model) and commits the chunk at once as a
 * small file in OUT.parts/; a killed job resumes from the committed chunks;
 * when all exist, the ranks assemble OUT together in chunk order, so the
 * file is the same for any number of ranks. Without --ref-logps the work per
 * chunk is small, but it takes the same path: one code path to test.
 */
#define _GNU_SOURCE
#include "chat.h"
#include "chunks.h"
#include "config.h"
#include "err.h"
#include "fs.h"
#include "h5io.h"
#include "h5util.h"
#include "image.h"
#include "llava.h"
#include "log.h"
#include "pairs.h"
#include "prompts.h"
#include "session.h"
#include "stage.h"
#include "pairscore.h"
#include "responses.h"
#include "tokenizer.h"
#include "tool.h"
#include "verdicts.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: mpirun -np N sima-pairs --model DIR --prompts prompts.h5 --responses responses.h5\n"
    "                               --verdicts verdicts.h5 --out pairs.h5 [options]\n"
    "       sima-pairs export pairs.h5 --format llava-dpo|trl [--image-root DIR] [--out FILE]\n"
    "\n"
    "Turn the critic's verdicts into preference pairs for DPO (data-parallel over MPI\n"
    "ranks). The verdict's winner is chosen, the other candidate rejected. Dropped and\n"
    "counted: pairs with no verdict, inconsistent verdicts (judged in both orders with\n"
    "different winners), identical token ids, or too long for --max-length.\n"
    "\n"
    "  --model DIR            LLaVA model folder (tokenizer, config; weights for --ref-logps)\n"
    "  --prompts FILE         prompts file (schema sima.prompts)\n"
    "  --responses FILE       responses file (schema sima.responses)\n"
    "  --verdicts FILE        verdicts file (schema sima.verdicts)\n"
    "  --out FILE             pairs file to write (schema sima.pairs)\n"
    "  --template NAME|FILE   prompt template of the responses (default vicuna_v1)\n"
    "  --max-length N         longest prompt + response, EOS included (default 2048)\n"
    "  --ref-logps            store the reference model's summed log-probs of chosen\n"
    "                         and rejected (the model without adapter)\n"
    "  --preprocess pad|crop  image preprocessing for --ref-logps (default pad)\n"
    SESS_DEVICE_USAGE
    "  --batch N              pairs scored together (default 8)\n"
    "  --chunk N              pairs per chunk (default 64): the unit of commit\n"
    "  --no-resume            discard chunks committed by an earlier run\n"
    "  --overwrite            replace an output that belongs to a different run\n"
    "  --progress-seconds S   progress line interval (default 5)\n"
    "  --quiet, --verbose, --help, --version\n"
    "\n"
    "export: one JSON object per pair for Python DPO trainers:\n"
    "  llava-dpo  {\"id\", \"image\", \"conversations\", \"rejected_conversations\"} (LLaVA style)\n"
    "  trl        {\"prompt\", \"chosen\", \"rejected\", \"images\"} (TRL's conversational format)\n"
    "  --image-root DIR joins DIR before the stored image names; --out FILE (default stdout).\n"
    "\n"
    "Exit status: 0 output complete, 1 error, 2 bad usage, 3 interrupted (SIGTERM,\n"
    "SIGUSR1 or SIGINT) after committing finished chunks: rerun the same command.\n";

typedef struct {
    stage_opts s;           /* model, prompts, out, preprocess, chunk, resume, ... */
    const char *responses, *verdicts, *template_name;
    int64_t max_length;
    int ref_logps, batch;
    be_open_opts dev;       /* --device, --dtype (for --ref-logps) */
} pairs_args;

/* ----------------------------------------------------------- options -- */

enum { O_RESP = 256, O_VERD, O_TEMPLATE, O_MAXLEN, O_REF, O_BATCH };

/* sima-pairs' own options; returns 0 for another code. */
static int pairs_option(void *arg, tool_ctx *t, int c, const char *v)
{
    pairs_args *a = arg;
    if (sess_device_option(t, &a->dev, c, v)) return 1;
    switch (c) {
    case O_RESP: a->responses = v; break;
    case O_VERD: a->verdicts = v; break;
    case O_TEMPLATE: a->template_name = v; break;
    case O_MAXLEN: a->max_length = tool_parse_int(t, "--max-length", v, 1, INT64_MAX); break;
    case O_REF: a->ref_logps = 1; break;
    case O_BATCH: a->batch = (int)tool_parse_int(t, "--batch", v, 1, 4096); break;
    default: return 0;
    }
    return 1;
}

static void parse_args(tool_ctx *t, int argc, char **argv, pairs_args *a)
{
    *a = (pairs_args){.template_name = "vicuna_v1", .max_length = 2048, .batch = 8};
    sess_device_default(t, &a->dev);
    static const struct option opts[] = {
        {"responses", required_argument, 0, O_RESP}, {"verdicts", required_argument, 0, O_VERD},
        {"template", required_argument, 0, O_TEMPLATE},
        {"max-length", required_argument, 0, O_MAXLEN}, {"ref-logps", no_argument, 0, O_REF},
        {"batch", required_argument, 0, O_BATCH}, SESS_DEVICE_OPTIONS, {0, 0, 0, 0}};
    stage_parse_args(t, argc, argv, USAGE, 64, &a->s, opts, pairs_option, a);
    if (!a->s.model || !a->s.prompts || !a->responses || !a->verdicts || !a->s.out)
        tool_usage_error(t, "--model, --prompts, --responses, --verdicts and --out are required");
}

/* ------------------------------------------------------------- inputs -- */

typedef struct {
    const pairs_args *a;
    tool_ctx *t;
    cfg_model cfg;
    tok_tokenizer *tok;
    chat_template tpl;
    h5io_file prompts;          /* read by this rank alone, a row at a time */
    int64_t n_prompts;
    h5io_file resp, verd;       /* read by this rank alone, a window of rows at a time */
    int64_t n_resp, n_verd;
    char *input_ids[3];         /* identities of the three inputs, for the run key */
    /* the kept pairs, as the verdict rows they come from (16 bytes a pair:
     * all that is held of the whole run); chunks rebuild the rest */
    int64_t *pick_row, *pick_row_swapped;   /* [n_picks]; swapped -1: one order */
    int64_t n_picks;
    pairs_stats st;
    llava_model *m;             /* --ref-logps only */
    img_proc_cfg pc;
    img_mode mode;
    char *settings;             /* settings_string */
} pairs_ctx;

static int open_prompts(pairs_ctx *g)
{
    if (prm_open(&g->prompts, g->a->s.prompts, &g->n_prompts) != 0) return -1;
    g->input_ids[0] = chk_input_identity(&g->prompts, g->a->s.prompts, g->n_prompts);
    return 0;
}

static int open_responses(pairs_ctx *g)
{
    if (resp_open(&g->resp, g->a->responses, &g->n_resp) != 0) return -1;
    g->input_ids[1] = chk_input_identity(&g->resp, g->a->responses, g->n_resp);
    return 0;
}

static int open_verdicts(pairs_ctx *g)
{
    if (verd_open(&g->verd, g->a->verdicts, &g->n_verd) != 0) return -1;
    g->input_ids[2] = chk_input_identity(&g->verd, g->a->verdicts, g->n_verd);
    return 0;
}

/* Tokenizer, config (image token id and count, EOS) and template. */
static int load_text_side(pairs_ctx *g)
{
    int rc = cfg_load(g->a->s.model, &g->cfg);
    if (rc == 0) rc = tok_load(g->a->s.model, &g->tok);
    if (rc == 0) rc = chat_template_load(g->a->template_name, &g->tpl);
    return rc;
}

/* Read one text row of a ragged text column (malloc'd, NUL-terminated). */
static int read_text(h5io_file *f, const char *path, int64_t row, char **text, int64_t *len)
{
    int64_t off[2];
    *text = NULL;
    int rc = h5io_read_ragged(f, path, H5IO_TEXT, row, 1, off, (void **)text);
    if (rc == 0 && len) *len = off[1];
    return rc;
}

/* A prompt row's token ids, as the responses were generated from them. */
static int prompt_ids(pairs_ctx *g, int64_t row, int64_t *image, tok_ids *ids)
{
    char *question = NULL;
    memset(ids, 0, sizeof *ids);
    int rc = read_text(&g->prompts, "/prompts/question", row, &question, NULL);
    if (rc == 0) rc = h5io_read_column(&g->prompts, "/prompts/image", H5IO_I64, row, 1, image);
    if (rc == 0)
        rc = chat_prompt_ids(&g->tpl, g->tok, question, *image >= 0, g->cfg.image_token_index,
                             g->cfg.image_seq_length, ids);
    free(question);
    if (rc != 0) err_context("prompt row %lld", (long long)row);
    return rc;
}

/* ---------------------------------------------------------- selection -- */

/* The verdicts are read for selection in windows of whole prompts, of
 * about SELECT_ROWS rows and at most SELECT_SPAN prompt ids from the first
 * (the span of a window's prompt-length table). */
#define SELECT_ROWS 8192
#define SELECT_SPAN 65536
/* Rows of /verdicts/prompt read per step of the pass that finds them. */
#define SCAN_ROWS 65536

/* The responses of prompts [p_lo, p_hi] (rows sorted by prompt: found by
 * binary search), read together and indexed. */
typedef struct {
    resp_rows r;
    pairs_resp_index x;
} resp_window;

static int read_resp_window(pairs_ctx *g, int64_t p_lo, int64_t p_hi, resp_window *w)
{
    memset(w, 0, sizeof *w);
    int64_t r0 = resp_lower_bound(&g->resp, g->n_resp, p_lo);
    int64_t r1 = r0 < 0 ? -1 : resp_lower_bound(&g->resp, g->n_resp, p_hi + 1);
    if (r1 < 0 || resp_read_range(&g->resp, r0, r1 - r0, &w->r) != 0) return -1;
    int rc = 0;
    for (int64_t i = 1; rc == 0 && i < w->r.n; i++)
        if (w->r.prompt[i] < w->r.prompt[i - 1])
            rc = ERR("%s: rows are not ordered by prompt (row %lld: prompt %lld after %lld)",
                     g->a->responses, (long long)(r0 + i), (long long)w->r.prompt[i],
                     (long long)w->r.prompt[i - 1]);
    if (rc != 0) resp_free(&w->r);
    else pairs_resp_index_build(&w->x, &w->r);
    return rc;
}

static void resp_window_free(resp_window *w)
{
    pairs_resp_index_free(&w->x);
    resp_free(&w->r);
}

/* Where the selection windows start: one pass over /verdicts/prompt,
 * which must never decrease. *starts [*n + 1] ends with the rows. */
static int verdict_windows(pairs_ctx *g, int64_t **starts, int64_t *n)
{
    int64_t *p = xmalloc(sizeof(int64_t) * SCAN_ROWS), cap = 0, start = 0, start_prompt = 0;
    int64_t prev = 0;
    *starts = NULL;
    *n = 0;
    int rc = 0;
    for (int64_t w0 = 0; rc == 0 && w0 < g->n_verd; w0 += SCAN_ROWS) {
        int64_t k = g->n_verd - w0 < SCAN_ROWS ? g->n_verd - w0 : SCAN_ROWS;
        rc = h5io_read_column(&g->verd, "/verdicts/prompt", H5IO_I64, w0, k, p);
        for (int64_t j = 0; rc == 0 && j < k; j++) {
            int64_t i = w0 + j;
            if (i > 0 && p[j] < prev)
                rc = ERR("%s: rows are not ordered by prompt (row %lld: prompt %lld after %lld)",
                         g->a->verdicts, (long long)i, (long long)p[j], (long long)prev);
            bool cut = i == 0 || (p[j] != prev && (i - start >= SELECT_ROWS ||
                                                    p[j] - start_prompt >= SELECT_SPAN));
            if (rc == 0 && cut) {
                cols_reserve((void **)starts, &cap, *n + 2, sizeof(int64_t));
                (*starts)[(*n)++] = start = i;
                start_prompt = p[j];
            }
            prev = p[j];
        }
    }
    free(p);
    if (rc == 0) {
        cols_reserve((void **)starts, &cap, *n + 1, sizeof(int64_t));
        (*starts)[*n] = g->n_verd;
    }
    return rc;
}

/* Prompt lengths in tokens of the prompts [p0, p0 + span) the window's
 * verdicts name (-1 for the others and for rows outside the prompts file). */
static int window_prompt_lengths(pairs_ctx *g, const verd_rows *v, int64_t p0, int64_t span,
                                 int64_t **len)
{
    *len = xmalloc(sizeof(int64_t) * (size_t)span);
    for (int64_t i = 0; i < span; i++) (*len)[i] = -1;
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < v->n; i++) {
        int64_t row = v->prompt[i];
        if (row < 0 || row >= g->n_prompts || (*len)[row - p0] >= 0) continue;
        tok_ids ids;
        int64_t image;
        rc = prompt_ids(g, row, &image, &ids);
        (*len)[row - p0] = (int64_t)ids.n;
        tok_ids_free(&ids);
    }
    return rc;
}

/* Choose the pairs of verdict rows [v0, v1) (whole prompts); their rows go
 * to *rows / *swapped (grown), counts to g->st. */
static int select_window(pairs_ctx *g, int64_t v0, int64_t v1, int64_t **rows,
                         int64_t **swapped, int64_t *n, int64_t *cap)
{
    verd_rows v;
    int rc = verd_read_judgements(&g->verd, v0, v1 - v0, &v);
    if (rc != 0) return rc;
    int64_t p_lo = v.prompt[0], p_hi = v.prompt[v.n - 1], *len = NULL;
    resp_window w;
    int read = rc = read_resp_window(g, p_lo, p_hi, &w);
    if (rc == 0) rc = window_prompt_lengths(g, &v, p_lo, p_hi - p_lo + 1, &len);
    pairs_pick *picks = NULL;
    int64_t k = 0;
    if (rc == 0) {
        pairs_select_opts o = {g->cfg.text.eos_token_id, g->a->max_length, len, p_hi - p_lo + 1,
                               g->cfg.image_token_index, p_lo, v0};
        rc = pairs_select_part(&w.x, &v, &o, &picks, &k, &g->st);
    }
    for (int64_t i = 0; rc == 0 && i < k; i++) {
        int64_t c = *cap;
        cols_reserve((void **)rows, &c, *n + 1, sizeof(int64_t));
        cols_reserve((void **)swapped, cap, *n + 1, sizeof(int64_t));
        (*rows)[*n] = picks[i].row.verdict_row;
        (*swapped)[(*n)++] = picks[i].row.verdict_row_swapped;
    }
    free(picks);
    free(len);
    if (read == 0) resp_window_free(&w);
    verd_free(&v);
    return rc;
}

/* Every rank the kept pairs of all: each its block of picks, in order. */
static int gather_picks(pairs_ctx *g, const int64_t *rows, const int64_t *swapped, int64_t n)
{
    int size = g->t->size;
    int *counts = xmalloc(sizeof(int) * (size_t)size);
    int *displs = xmalloc(sizeof(int) * (size_t)size);
    int rc = n > INT32_MAX ? ERR("more than %d pairs on one rank", INT32_MAX) : 0;
    int mine = (int)n;
    MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD);
    int64_t total = 0;
    for (int r = 0; r < size; r++) {
        displs[r] = (int)total;
        total += counts[r];
    }
    if (total > INT32_MAX) rc = ERR("more than %d pairs", INT32_MAX);
    if (rc == 0) {
        g->n_picks = total;
        g->pick_row = xmalloc(sizeof(int64_t) * (size_t)(total ? total : 1));
        g->pick_row_swapped = xmalloc(sizeof(int64_t) * (size_t)(total ? total : 1));
        MPI_Allgatherv(rows ? rows : g->pick_row, mine, MPI_INT64_T, g->pick_row, counts, displs,
                       MPI_INT64_T, MPI_COMM_WORLD);
        MPI_Allgatherv(swapped ? swapped : g->pick_row_swapped, mine, MPI_INT64_T,
                       g->pick_row_swapped, counts, displs, MPI_INT64_T, MPI_COMM_WORLD);
    }
    free(counts);
    free(displs);
    return rc;
}

/* The counts of all ranks' windows. */
static void reduce_stats(pairs_stats *st)
{
    int64_t c[9] = {st->judged, st->no_verdict, st->inconsistent, st->image_token, st->identical,
                    st->too_long, st->kept, st->chosen_greedy, st->chosen_sampled};
    double m[2] = {st->mean_chosen_len, st->mean_rejected_len};
    MPI_Allreduce(MPI_IN_PLACE, c, 9, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, m, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    *st = (pairs_stats){c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], m[0], m[1]};
    pairs_stats_finish(st);
}

/* Choose the pairs (collective): every rank selects in its block of
 * windows, then all learn every kept pair's verdict rows and the counts.
 * The sums of lengths are integers, so the means do not depend on the
 * number of ranks. */
static void select_pairs(pairs_ctx *g)
{
    tool_ctx *t = g->t;
    int64_t *starts = NULL, n_windows = 0;
    tool_agree(t, verdict_windows(g, &starts, &n_windows));
    int64_t w0 = n_windows * t->rank / t->size, w1 = n_windows * (t->rank + 1) / t->size;
    int64_t *rows = NULL, *swapped = NULL, n = 0, cap = 0;
    memset(&g->st, 0, sizeof g->st);
    int rc = 0;
    for (int64_t w = w0; rc == 0 && w < w1; w++)
        rc = select_window(g, starts[w], starts[w + 1], &rows, &swapped, &n, &cap);
    free(starts);
    tool_agree(t, rc);
    tool_agree(t, gather_picks(g, rows, swapped, n));
    reduce_stats(&g->st);
    free(rows);
    free(swapped);
}

/* The settings that determine the output, as one canonical string. With
 * --ref-logps, --batch is part of it: the pairs scored together change the
 * last bits of the sums (about 1e-7 relative). */
static char *settings_string(const pairs_ctx *g, const char *model_hash)
{
    const pairs_args *a = g->a;
    char *s = NULL;
    if (asprintf(&s,
                 "model_hash=%s prompts=%s responses=%s verdicts=%s template=%s max_length=%lld "
                 "ref_logps=%d preprocess=%s batch=%d chunk=%d",
                 model_hash, g->input_ids[0], g->input_ids[1], g->input_ids[2], a->template_name,
                 (long long)a->max_length, a->ref_logps, a->ref_logps ? a->s.preprocess : "-",
                 a->ref_logps ? a->batch : 0, a->s.chunk) < 0)
        DIE("out of memory");
    return s;
}

/* ------------------------------------------------------------- chunks -- */

/* Append pick p's row to rows: token ids, texts, image reference; w holds
 * its responses. */
static int build_pair(pairs_ctx *g, const resp_window *w, const pairs_pick *p, pairs_rows *rows)
{
    pairs_row row = p->row;
    tok_ids ids;
    int rc = prompt_ids(g, row.prompt, &row.image, &ids);
    if (rc != 0) return rc;
    char *id = NULL, *question = NULL, *image_name = NULL;
    int64_t id_len = 0, q_len = 0, name_len = 0;
    rc = read_text(&g->prompts, "/prompts/id", row.prompt, &id, &id_len);
    if (rc == 0) rc = read_text(&g->prompts, "/prompts/question", row.prompt, &question, &q_len);
    if (rc == 0 && row.image >= 0)
        rc = read_text(&g->prompts, "/images/name", row.image, &image_name, &name_len);
    if (rc == 0) {
        int32_t eos = g->cfg.text.eos_token_id;
        int64_t nc, nr;
        int32_t *chosen = pairs_tokens_with_eos(&w->x, p->chosen_resp, eos, &nc);
        int32_t *rejected = pairs_tokens_with_eos(&w->x, p->rejected_resp, eos, &nr);
        const resp_rows *r = &w->r;
        pairs_ids_in in_ids[PAIRS_N_IDS] = {{ids.ids, (int64_t)ids.n}, {chosen, nc}, {rejected, nr}};
        pairs_text_in in_text[PAIRS_N_TEXTS] = {
            {id, id_len}, {question, q_len},
            {r->text + w->x.text_off[p->chosen_resp], r->text_len[p->chosen_resp]},
            {r->text + w->x.text_off[p->rejected_resp], r->text_len[p->rejected_resp]},
            {image_name ? image_name : "", name_len}};
        pairs_push(rows, &row, in_ids, in_text);
        free(chosen);
        free(rejected);
    }
    tok_ids_free(&ids);
    free(id);
    free(question);
    free(image_name);
    return rc;
}

/* What a chunk's pairs are rebuilt from: the verdict rows from the first
 * to the last it names (whole prompts: the file is sorted by prompt) and
 * the responses of their prompts. */
typedef struct {
    int64_t v0;
    verd_rows v;
    resp_window w;
} chunk_inputs;

static int read_chunk_inputs(pairs_ctx *g, int64_t first, int64_t n, chunk_inputs *in)
{
    int64_t lo = INT64_MAX, hi = -1;
    for (int64_t i = first; i < first + n; i++) {
        int64_t a = g->pick_row[i], b = g->pick_row_swapped[i];
        lo = a < lo ? a : lo;
        hi = a > hi ? a : hi;
        if (b >= 0) lo = b < lo ? b : lo, hi = b > hi ? b : hi;
    }
    in->v0 = lo;
    int rc = verd_read_judgements(&g->verd, lo, hi - lo + 1, &in->v);
    if (rc != 0) return rc;
    rc = read_resp_window(g, in->v.prompt[g->pick_row[first] - lo],
                          in->v.prompt[g->pick_row[first + n - 1] - lo], &in->w);
    if (rc != 0) verd_free(&in->v);
    return rc;
}

static void chunk_inputs_free(chunk_inputs *in)
{
    resp_window_free(&in->w);
    verd_free(&in->v);
}

/* Reference log-probs of rows [i0, i0 + n), scored together. */
static int score_group(pairs_ctx *g, pairs_rows *rows, int64_t i0, int n)
{
    pairscore_pair *pp = xcalloc((size_t)n, sizeof *pp);
    float **pixels = xcalloc((size_t)n, sizeof *pixels);
    int rc = 0;
    for (int k = 0; rc == 0 && k < n; k++) {
        int64_t i = i0 + k;
        pairscore_pair *q = &pp[k];
        q->prompt = pairs_ids(rows, PAIRS_PROMPT_IDS, i, &q->n_prompt);
        q->chosen = pairs_ids(rows, PAIRS_CHOSEN_IDS, i, &q->n_chosen);
        q->rejected = pairs_ids(rows, PAIRS_REJECTED_IDS, i, &q->n_rejected);
        if (rows->image[i] >= 0) rc = prm_image_pixels(&g->prompts, rows->image[i], &g->pc, g->mode, &pixels[k]);
        q->pixels = pixels[k];
        q->n_images = pixels[k] ? 1 : 0;
    }
    if (rc == 0)
        rc = pairscore_ref_logps(g->m, pp, n, rows->ref_chosen_logp + i0,
                                 rows->ref_rejected_logp + i0);
    if (rc != 0) err_context("reference log-probs of pairs %lld..%lld", (long long)i0,
                             (long long)(i0 + n - 1));
    for (int k = 0; k < n; k++) free(pixels[k]);
    free(pixels);
    free(pp);
    return rc;
}

/* Tokens a chunk's reference scoring reads (for the rate line). */
static int64_t scored_tokens(const pairs_rows *rows)
{
    int64_t t = 0;
    for (int64_t i = 0; i < rows->n; i++) {
        int64_t np, nc, nr;
        pairs_ids(rows, PAIRS_PROMPT_IDS, i, &np);
        pairs_ids(rows, PAIRS_CHOSEN_IDS, i, &nc);
        pairs_ids(rows, PAIRS_REJECTED_IDS, i, &nr);
        t += 2 * np + nc + nr;
    }
    return t;
}

/* Build (and score) one chunk, then commit it. *stop when a signal came
 * before it was finished (nothing committed). */
static int pairs_run_chunk(void *ctx, stage *s, int64_t chunk, bool *stop)
{
    pairs_ctx *g = ctx;
    int64_t first, n;
    chk_items(&s->plan, chunk, &first, &n);
    pairs_rows rows = {0};
    chunk_inputs in;
    int read = read_chunk_inputs(g, first, n, &in), rc = read;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        pairs_pick pick;
        rc = pairs_pick_rebuild(&in.w.x, &in.v, in.v0, g->pick_row[first + i],
                                g->pick_row_swapped[first + i], &pick);
        if (rc == 0) rc = build_pair(g, &in.w, &pick, &rows);
    }
    if (read == 0) chunk_inputs_free(&in);
    /* the same groups whatever rank runs the chunk: the same bits */
    for (int64_t i = 0; rc == 0 && g->a->ref_logps && i < n; i += g->a->batch) {
        rc = score_group(g, &rows, i, (int)(n - i < g->a->batch ? n - i : g->a->batch));
        chk_progress_tick(&s->progress);
        if (tool_interrupted()) {
            *stop = true;
            pairs_free(&rows);
            return 0;
        }
    }
    if (rc == 0) rc = stage_commit_part(s, chunk, &rows);
    chk_progress_add(&s->progress, n, g->a->ref_logps ? scored_tokens(&rows) : 0);
    chk_progress_tick(&s->progress);
    pairs_free(&rows);
    return rc;
}

/* ------------------------------------------------------------- output -- */

static int write_stats(h5io_file *f, const pairs_stats *st)
{
    int rc = h5io_set_attr_i64(f, "/", "n_judged", st->judged);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_no_verdict", st->no_verdict);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_inconsistent", st->inconsistent);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_image_token", st->image_token);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_identical", st->identical);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_too_long", st->too_long);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_pairs", st->kept);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_chosen_greedy", st->chosen_greedy);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_chosen_sampled", st->chosen_sampled);
    if (rc == 0) rc = h5io_set_attr_f64(f, "/", "mean_chosen_len", st->mean_chosen_len);
    if (rc == 0) rc = h5io_set_attr_f64(f, "/", "mean_rejected_len", st->mean_rejected_len);
    return rc;
}

static int write_settings(h5io_file *f, const pairs_args *a, const char *settings)
{
    int rc = h5io_set_attr_str(f, "/", "settings", settings);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "prompts_file", a->s.prompts);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "responses_file", a->responses);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "verdicts_file", a->verdicts);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "template", a->template_name);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "preprocess", a->s.preprocess);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "max_length", a->max_length);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "ref_logps", a->ref_logps);
    return rc;
}

/* Collective: the settings and selection counts as root attributes. */
static int pairs_write_attrs(void *ctx, stage *s, h5io_file *f)
{
    pairs_ctx *g = ctx;
    (void)s;
    int rc = write_settings(f, g->a, g->settings);
    if (rc == 0) rc = write_stats(f, &g->st);
    return rc;
}

/* ---------------------------------------------------------------- main -- */

/* The model's weights and image preprocessing, for --ref-logps. */
static int load_model(pairs_ctx *g)
{
    const pairs_args *a = g->a;
    be_backend *be = be_open(&a->dev);
    if (!be) return -1;
    int rc = llava_load(a->s.model, be, &g->m);
    if (rc == 0)
        rc = sess_image_config(a->s.model, a->s.preprocess, g->m->cfg.vision.image_size, &g->pc,
                               &g->mode);
    return rc;
}

/* Only --ref-logps needs the model's weights. */
static int pairs_load(void *ctx, stage *s)
{
    pairs_ctx *g = ctx;
    (void)s;
    return g->a->ref_logps ? load_model(g) : 0;
}

static void pairs_announce(void *ctx, const stage *s)
{
    pairs_ctx *g = ctx;
    log_info("%lld pairs in %lld chunks, %lld already committed; %d rank%s%s",
             (long long)g->n_picks, (long long)s->plan.n_chunks,
             (long long)(s->plan.n_chunks - s->n_pending), s->t->size, s->t->size > 1 ? "s" : "",
             g->a->ref_logps ? ", scoring reference log-probs" : "");
}

static void pairs_summary(void *ctx, const stage *s)
{
    pairs_ctx *g = ctx;
    double el = MPI_Wtime() - s->t->t0;
    char b[32];
    if (g->a->ref_logps)
        log_info("done: %lld pairs, reference log-probs over %lld tokens in %s (%.0f tokens/s); "
                 "wrote %s", (long long)g->n_picks, (long long)s->tokens, tool_duration(el, b),
                 (double)s->tokens / (el > 0 ? el : 1), g->a->s.out);
    else
        log_info("done: %lld pairs in %s; wrote %s", (long long)g->n_picks, tool_duration(el, b),
                 g->a->s.out);
}

static const stage_ops PAIRS_OPS = {pairs_load, pairs_announce, pairs_run_chunk,
                                    pairs_write_attrs, pairs_summary, NULL};

static void print_summary(const pairs_ctx *g)
{
    const pairs_stats *s = &g->st;
    log_info("%lld judged pairs: %lld kept; dropped %lld no verdict, %lld inconsistent, %lld "
             "identical, %lld too long (--max-length %lld), %lld with the image token in a "
             "response",
             (long long)s->judged, (long long)s->kept, (long long)s->no_verdict,
             (long long)s->inconsistent, (long long)s->identical, (long long)s->too_long,
             (long long)g->a->max_length, (long long)s->image_token);
    log_info("chosen: sampled %lld (%.1f%%), greedy %lld (%.1f%%); mean length chosen %.1f, "
             "rejected %.1f tokens (EOS included)",
             (long long)s->chosen_sampled,
             s->kept ? 100.0 * (double)s->chosen_sampled / (double)s->kept : 0.0,
             (long long)s->chosen_greedy,
             s->kept ? 100.0 * (double)s->chosen_greedy / (double)s->kept : 0.0,
             s->mean_chosen_len, s->mean_rejected_len);
}

static void free_ctx(pairs_ctx *g)
{
    h5io_close(&g->prompts);
    free(g->settings);
    h5io_close(&g->resp);
    h5io_close(&g->verd);
    free(g->pick_row);
    free(g->pick_row_swapped);
    for (int i = 0; i < 3; i++) free(g->input_ids[i]);
    chat_template_free(&g->tpl);
    tok_free(g->tok);
    if (g->m) {
        be_backend *be = g->m->be;
        llava_free(g->m);
        be->destroy(be);
    }
}

static int cmd_build(tool_ctx *t, int argc, char **argv)
{
    pairs_args a;
    parse_args(t, argc, argv, &a);
    pairs_ctx g;
    memset(&g, 0, sizeof g);
    g.a = &a;
    g.t = t;
    char *model_hash = h5io_model_hash(a.s.model);
    int rc = model_hash ? 0 : -1;
    if (rc == 0) rc = open_prompts(&g);
    if (rc == 0) rc = open_responses(&g);
    if (rc == 0) rc = open_verdicts(&g);
    if (rc == 0) rc = load_text_side(&g);
    tool_agree(t, rc);
    select_pairs(&g);
    print_summary(&g);

    /* the run's identity: everything that determines the output, and the
     * template's text (a user may edit the file between runs) */
    g.settings = settings_string(&g, model_hash);
    if (a.ref_logps) tool_agree(t, sess_key_device(&a.dev, &g.settings));
    const char *key_texts[] = {g.settings, g.tpl.text};
    const char *inputs[] = {a.s.prompts, a.responses, a.verdicts};
    stage_spec spec = {&a.s, &pairs_table, PAIRS_SCHEMA, PAIRS_SCHEMA_VERSION, inputs, 3,
                       model_hash, -1, g.n_picks, key_texts, 2, "pairs", "scored tokens/s"};
    stage st;
    int code = stage_run(t, &spec, &PAIRS_OPS, &g, &st);
    stage_free(&st);
    free(model_hash);
    free_ctx(&g);
    return code;
}

/* ============================================================= export === */

typedef enum { EXPORT_LLAVA_DPO, EXPORT_TRL } export_format;

static json_t *text_value(const pairs_rows *r, int which, int64_t i)
{
    int64_t n;
    const char *s = pairs_text(r, which, i, &n);
    return json_stringn(s, (size_t)n); /* NULL for invalid UTF-8 */
}

/* The image's path: root joined with the stored name; NULL for none. */
static char *image_path(const pairs_rows *r, int64_t i, const char *root)
{
    if (r->image[i] < 0) return NULL;
    int64_t n;
    const char *name = pairs_text(r, PAIRS_IMAGE_NAME, i, &n);
    char *s = NULL;
    if (asprintf(&s, "%s%s%.*s", root ? root : "", root && *root ? "/" : "", (int)n, name) < 0)
        DIE("out of memory");
    return s;
}

static json_t *turn(const char *from, json_t *value)
{
    return json_pack("{s:s, s:o}", "from", from, "value", value);
}

/* LLaVA-style: the question (with "<image>\n" when there is an image) and
 * the chosen answer as "conversations", the rejected as
 * "rejected_conversations". */
static json_t *llava_dpo_record(const pairs_rows *r, int64_t i, const char *root)
{
    int64_t idn, qn;
    const char *id = pairs_text(r, PAIRS_ID, i, &idn);
    const char *q = pairs_text(r, PAIRS_QUESTION, i, &qn);
    char *image = image_path(r, i, root);
    char *human = NULL, *pid = NULL;
    if (asprintf(&human, "%s%.*s", image ? "<image>\n" : "", (int)qn, q) < 0 ||
        asprintf(&pid, "%.*s_%d_%d", (int)idn, id, r->chosen[i], r->rejected[i]) < 0)
        DIE("out of memory");
    json_t *o = json_pack("{s:s, s:o, s:o}", "id", pid, "conversations",
                          json_pack("[o, o]", turn("human", json_string(human)),
                                    turn("gpt", text_value(r, PAIRS_CHOSEN_TEXT, i))),
                          "rejected_conversations",
                          json_pack("[o, o]", turn("human", json_string(human)),
                                    turn("gpt", text_value(r, PAIRS_REJECTED_TEXT, i))));
    if (o && image && json_object_set_new(o, "image", json_string(image)) != 0) {
        json_decref(o);
        o = NULL;
    }
    free(human);
    free(pid);
    free(image);
    return o;
}

static json_t *trl_message(const char *role, json_t *text, bool with_image)
{
    json_t *content = json_array();
    if (with_image) json_array_append_new(content, json_pack("{s:s}", "type", "image"));
    json_array_append_new(content, json_pack("{s:s, s:o}", "type", "text", "text", text));
    return json_pack("[{s:s, s:o}]", "role", role, "content", content);
}

/* TRL's conversational preference format with images. */
static json_t *trl_record(const pairs_rows *r, int64_t i, const char *root)
{
    char *image = image_path(r, i, root);
    json_t *images = json_array();
    if (image) json_array_append_new(images, json_string_nocheck(image));
    json_t *o = json_pack("{s:o, s:o, s:o, s:o}", "prompt",
                          trl_message("user", text_value(r, PAIRS_QUESTION, i), image != NULL),
                          "chosen", trl_message("assistant", text_value(r, PAIRS_CHOSEN_TEXT, i), false),
                          "rejected",
                          trl_message("assistant", text_value(r, PAIRS_REJECTED_TEXT, i), false),
                          "images", images);
    free(image);
    return o;
}

static int write_records(const pairs_rows *r, export_format fmt, const char *root, FILE *out)
{
    for (int64_t i = 0; i < r->n; i++) {
        json_t *o = fmt == EXPORT_TRL ? trl_record(r, i, root) : llava_dpo_record(r, i, root);
        if (!o) return ERR("pair %lld: cannot build its JSON record", (long long)i);
        int bad = json_dumpf(o, out, JSON_COMPACT) != 0 || fputc('\n', out) == EOF;
        json_decref(o);
        if (bad) return err_errno_at(__FILE__, __LINE__, "cannot write the JSON lines");
    }
    return 0;
}

static int export_file(const char *path, export_format fmt, const char *root, const char *out_path)
{
    h5io_file f;
    pairs_rows rows;
    if (h5io_open(&f, path, MPI_COMM_SELF) != 0) return -1;
    int rc = h5io_require_schema(&f, PAIRS_SCHEMA, PAIRS_SCHEMA_VERSION);
    if (rc == 0) rc = pairs_read(&f, &rows);
    h5io_close(&f);
    if (rc != 0) return rc;
    char *tmp = NULL;
    FILE *out = stdout;
    if (out_path) {
        if (asprintf(&tmp, "%s.tmp", out_path) < 0) DIE("out of memory");
        out = fopen(tmp, "w");
        if (!out) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot create", tmp);
    }
    if (rc == 0) rc = write_records(&rows, fmt, root, out);
    if (out_path && out) {
        if (fclose(out) != 0 && rc == 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", tmp);
        if (rc == 0 && rename(tmp, out_path) != 0)
            rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename to %s", tmp, out_path);
        if (rc != 0) unlink(tmp);
    } else if (!out_path && fflush(stdout) != 0 && rc == 0) {
        rc = err_errno_at(__FILE__, __LINE__, "stdout: cannot write");
    }
    free(tmp);
    pairs_free(&rows);
    return rc;
}

static int cmd_export(tool_ctx *t, int argc, char **argv)
{
    static struct option opts[] = {TOOL_COMMON_OPTIONS, {"out", required_argument, 0, 'o'},
                                   {"format", required_argument, 0, 'f'},
                                   {"image-root", required_argument, 0, 'I'}, {0, 0, 0, 0}};
    const char *out = NULL, *format = NULL, *root = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vqhVo:f:", opts, NULL)) != -1) {
        if (tool_common_option(t, c, USAGE)) continue;
        if (c == 'o') out = optarg;
        else if (c == 'f') format = optarg;
        else if (c == 'I') root = optarg;
        else tool_usage_error(t, "export: unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (optind != argc - 1) tool_usage_error(t, "'export' takes one pairs.h5");
    if (!format) tool_usage_error(t, "export: --format llava-dpo|trl is required");
    export_format fmt;
    if (!strcmp(format, "llava-dpo")) fmt = EXPORT_LLAVA_DPO;
    else if (!strcmp(format, "trl")) fmt = EXPORT_TRL;
    else tool_usage_error(t, "--format: expected llava-dpo or trl, got '%s'", format);
    tool_agree(t, t->rank == 0 ? export_file(argv[optind], fmt, root, out) : 0);
    return TOOL_OK;
}

int main(int argc, char **argv)
{
    tool_ctx t;
    tool_init(&t, &argc, &argv, "sima-pairs");
    h5u_init();
    int code;
    if (argc > 1 && !strcmp(argv[1], "export")) {
        code = cmd_export(&t, argc - 1, argv + 1);
    } else {
        tool_catch_signals();
        code = cmd_build(&t, argc, argv);
    }
    return tool_finish(&t, code);
}
