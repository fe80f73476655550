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
} pairs_args;

/* ----------------------------------------------------------- options -- */

enum { O_RESP = 256, O_VERD, O_TEMPLATE, O_MAXLEN, O_REF, O_BATCH };

/* sima-pairs' own options; returns 0 for another code. */
static int pairs_option(void *arg, tool_ctx *t, int c, const char *v)
{
    pairs_args *a = arg;
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
    static const struct option opts[] = {
        {"responses", required_argument, 0, O_RESP}, {"verdicts", required_argument, 0, O_VERD},
        {"template", required_argument, 0, O_TEMPLATE},
        {"max-length", required_argument, 0, O_MAXLEN}, {"ref-logps", no_argument, 0, O_REF},
        {"batch", required_argument, 0, O_BATCH}, {0, 0, 0, 0}};
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
    h5io_file prompts;          /* read by this rank alone */
    int64_t n_prompts;
    resp_rows resp;
    pairs_resp_index rx;
    verd_rows verd;
    char *input_ids[3];         /* identities of the three inputs, for the run key */
    pairs_pick *picks;
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

static int read_responses(pairs_ctx *g)
{
    h5io_file f;
    if (h5io_open(&f, g->a->responses, MPI_COMM_SELF) != 0) return -1;
    int rc = h5io_require_schema(&f, RESP_SCHEMA, RESP_SCHEMA_VERSION);
    if (rc == 0) rc = resp_read(&f, &g->resp);
    if (rc == 0) g->input_ids[1] = chk_input_identity(&f, g->a->responses, g->resp.n);
    h5io_close(&f);
    if (rc == 0) pairs_resp_index_build(&g->rx, &g->resp);
    return rc;
}

static int read_verdicts(pairs_ctx *g)
{
    h5io_file f;
    if (h5io_open(&f, g->a->verdicts, MPI_COMM_SELF) != 0) return -1;
    int rc = h5io_require_schema(&f, VERD_SCHEMA, VERD_SCHEMA_VERSION);
    if (rc == 0) rc = verd_read(&f, &g->verd);
    if (rc == 0) g->input_ids[2] = chk_input_identity(&f, g->a->verdicts, g->verd.n);
    h5io_close(&f);
    return rc;
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

/* Prompt lengths in tokens of every prompt the verdicts name (-1 for the
 * others): the ranks share the tokenizing, then combine (collective). */
static int64_t *prompt_lengths(pairs_ctx *g)
{
    int64_t n = g->n_prompts;
    int64_t *len = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    char *needed = xcalloc((size_t)(n ? n : 1), 1);
    for (int64_t i = 0; i < n; i++) len[i] = -1;
    for (int64_t i = 0; i < g->verd.n; i++)
        if (g->verd.prompt[i] >= 0 && g->verd.prompt[i] < n) needed[g->verd.prompt[i]] = 1;
    int rc = 0;
    int64_t k = 0;
    for (int64_t row = 0; rc == 0 && row < n; row++) {
        if (!needed[row] || k++ % g->t->size != g->t->rank) continue;
        tok_ids ids;
        int64_t image;
        rc = prompt_ids(g, row, &image, &ids);
        len[row] = (int64_t)ids.n;
        tok_ids_free(&ids);
    }
    free(needed);
    tool_agree(g->t, rc);
    if (n > 0 && MPI_Allreduce(MPI_IN_PLACE, len, (int)n, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD) !=
                     MPI_SUCCESS)
        tool_agree(g->t, ERR("MPI_Allreduce of the prompt lengths failed"));
    return len;
}

/* Choose the pairs (every rank the same). */
static int select_pairs(pairs_ctx *g)
{
    int64_t *len = prompt_lengths(g);
    pairs_select_opts o = {g->cfg.text.eos_token_id, g->a->max_length, len, g->n_prompts,
                           g->cfg.image_token_index};
    int rc = pairs_select(&g->rx, &g->verd, &o, &g->picks, &g->n_picks, &g->st);
    free(len);
    return rc;
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

/* Append pick p's row to rows: token ids, texts, image reference. */
static int build_pair(pairs_ctx *g, const pairs_pick *p, pairs_rows *rows)
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
        int32_t *chosen = pairs_tokens_with_eos(&g->rx, p->chosen_resp, eos, &nc);
        int32_t *rejected = pairs_tokens_with_eos(&g->rx, p->rejected_resp, eos, &nr);
        const resp_rows *r = &g->resp;
        pairs_ids_in in_ids[PAIRS_N_IDS] = {{ids.ids, (int64_t)ids.n}, {chosen, nc}, {rejected, nr}};
        pairs_text_in in_text[PAIRS_N_TEXTS] = {
            {id, id_len}, {question, q_len},
            {r->text + g->rx.text_off[p->chosen_resp], r->text_len[p->chosen_resp]},
            {r->text + g->rx.text_off[p->rejected_resp], r->text_len[p->rejected_resp]},
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
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < n; i++) rc = build_pair(g, &g->picks[first + i], &rows);
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
    be_backend *be = be_cpu_new(0);
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
    pairs_resp_index_free(&g->rx);
    resp_free(&g->resp);
    verd_free(&g->verd);
    free(g->picks);
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
    if (rc == 0) rc = read_responses(&g);
    if (rc == 0) rc = read_verdicts(&g);
    if (rc == 0) rc = load_text_side(&g);
    tool_agree(t, rc);
    tool_agree(t, select_pairs(&g));
    print_summary(&g);

    /* the run's identity: everything that determines the output, and the
     * template's text (a user may edit the file between runs) */
    g.settings = settings_string(&g, model_hash);
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
