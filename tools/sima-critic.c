/* sima-critic — the model judges pairs of its own answers.
 *
 *   mpirun -np N sima-critic --model DIR --prompts prompts.h5 --responses responses.h5
 *                            --out verdicts.h5 [options]
 *
 * For every prompt with at least two candidates, the model (greedy) sees the
 * image and the critic prompt (data/templates/critic.txt: the question, the
 * ground truth and two candidates) and ends with [[1]] or [[2]]. By default
 * candidate 1 (sampled) is shown as Response 1 and candidate 0 (greedy) as
 * Response 2, as the SIMA paper does; --both-orders also judges the swapped
 * order and records whether the two verdicts agree; --all-pairs judges every
 * pair of candidates. Work is split, committed, resumed and assembled like
 * sima-gen's (io/stage.h): the output is the same for any number of ranks.
 */
#define _GNU_SOURCE
#include "chat.h"
#include "chunks.h"
#include "err.h"
#include "fs.h"
#include "generate.h"
#include "h5io.h"
#include "h5util.h"
#include "log.h"
#include "prompts.h"
#include "responses.h"
#include "session.h"
#include "stage.h"
#include "tool.h"
#include "verdicts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: mpirun -np N sima-critic --model DIR --prompts prompts.h5 --responses responses.h5\n"
    "                                --out verdicts.h5 [options]\n"
    "\n"
    "The model judges pairs of its own candidate answers against the ground truth.\n"
    "\n"
    "  --model DIR                LLaVA model folder (the critic; usually the generator)\n"
    "  --prompts FILE             prompts file (sima.prompts): images, questions, ground truths\n"
    "  --responses FILE           responses file (sima.responses) from sima-gen\n"
    "  --out FILE                 verdicts file to write (sima.verdicts)\n"
    "  --critic-template NAME|FILE critic prompt with {question} {ground_truth} {response_1}\n"
    "                             {response_2} (default: critic, data/templates/critic.txt)\n"
    "  --template NAME|FILE       chat template around it (default vicuna_v1)\n"
    "  --both-orders              judge each pair in both orders; record agreement\n"
    "  --all-pairs                judge every pair of candidates (default: 1 vs 0)\n"
    "  --strip-newlines           put inserted texts on one line\n"
    "  --truncate-answers N       when the prompt does not fit the context, cut each answer to\n"
    "                             N tokens (default 0: skip such prompts, counted)\n"
    "  --max-new-tokens N         longest critic output (default 512)\n"
    "  --batch N                  sequences decoded together per rank (default 8)\n"
    "  --chunk N                  prompts per chunk (default 16)\n"
    "  --preprocess pad|crop      image preprocessing (default pad)\n"
    SESS_DEVICE_USAGE
    "  --no-resume, --overwrite, --progress-seconds S, --quiet, --verbose, --help, --version\n"
    "\n"
    "Exit status: 0 complete, 1 error, 2 bad usage, 3 interrupted after committing.\n";

typedef struct {
    stage_opts s;           /* model, prompts, out, preprocess, chunk, resume, ... */
    const char *responses, *template_name, *critic_name;
    int both_orders, all_pairs, strip_newlines, truncate_answers, max_new, batch;
    be_open_opts dev;       /* --device, --dtype */
} crit_args;

enum { O_CT = 256, O_T, O_BOTH, O_ALL, O_STRIP, O_TRUNC, O_MAXNEW, O_BATCH, O_RESP };

/* sima-critic's own options; returns 0 for another code. */
static int crit_option(void *arg, tool_ctx *t, int c, const char *v)
{
    crit_args *a = arg;
    if (sess_device_option(t, &a->dev, c, v)) return 1;
    switch (c) {
    case O_RESP: a->responses = v; break;
    case O_CT: a->critic_name = v; break;
    case O_T: a->template_name = v; break;
    case O_BOTH: a->both_orders = 1; break;
    case O_ALL: a->all_pairs = 1; break;
    case O_STRIP: a->strip_newlines = 1; break;
    case O_TRUNC: a->truncate_answers = (int)tool_parse_int(t, "--truncate-answers", v, 0, 1 << 20); break;
    case O_MAXNEW: a->max_new = (int)tool_parse_int(t, "--max-new-tokens", v, 1, 1 << 20); break;
    case O_BATCH: a->batch = (int)tool_parse_int(t, "--batch", v, 1, 4096); break;
    default: return 0;
    }
    return 1;
}

static void parse_args(tool_ctx *t, int argc, char **argv, crit_args *a)
{
    *a = (crit_args){.template_name = "vicuna_v1", .critic_name = "critic", .max_new = 512,
                     .batch = 8};
    sess_device_default(t, &a->dev);
    static const struct option opts[] = {
        {"responses", required_argument, 0, O_RESP},
        {"critic-template", required_argument, 0, O_CT}, {"template", required_argument, 0, O_T},
        {"both-orders", no_argument, 0, O_BOTH}, {"all-pairs", no_argument, 0, O_ALL},
        {"strip-newlines", no_argument, 0, O_STRIP},
        {"truncate-answers", required_argument, 0, O_TRUNC},
        {"max-new-tokens", required_argument, 0, O_MAXNEW},
        {"batch", required_argument, 0, O_BATCH}, SESS_DEVICE_OPTIONS, {0, 0, 0, 0}};
    stage_parse_args(t, argc, argv, USAGE, 16, &a->s, opts, crit_option, a);
    if (!a->s.model || !a->s.prompts || !a->responses || !a->s.out)
        tool_usage_error(t, "--model, --prompts, --responses and --out are required");
}

/* ------------------------------------------------------------- inputs -- */

typedef struct {
    const crit_args *a;
    sess_model s;
    chat_template tpl;
    char *critic;           /* the critic template text */
    h5io_file prompts;
    int64_t n_prompts;
    h5io_file responses;    /* read a chunk's rows at a time, by this rank alone */
    /* items: prompts with at least two candidates; item i's candidates are
     * the responses rows from item_row0[i] with its prompt (8 bytes per
     * item: all that is held of the whole file) */
    int64_t n_items;
    int64_t *item_row0;     /* [n_items + 1], the last = the responses' rows */
    stage *st;              /* chunks of the items, progress */
    int64_t counts[3];      /* judged, without a verdict, skipped (all ranks) */
} crit_ctx;

/* The items: one pass over the responses' prompt and candidate columns
 * (rows sorted by prompt, candidate), a window of rows at a time. */
static int index_responses(crit_ctx *g)
{
    resp_index ix;
    int rc = resp_index_items(&g->responses, g->n_prompts, 2, &ix);
    if (rc == 0) {
        g->n_items = ix.n_items;
        g->item_row0 = ix.item_row0;
    }
    return rc;
}

static int load_inputs(crit_ctx *g, char **inputs_id)
{
    const crit_args *a = g->a;
    int rc = prm_open(&g->prompts, a->s.prompts, &g->n_prompts);
    if (rc == 0) rc = resp_open(&g->responses, a->responses, NULL);
    if (rc == 0) {
        char *k1 = h5io_get_attr_str(&g->prompts, "/", "created");
        char *k2 = h5io_get_attr_str(&g->responses, "/", "run_key");
        if (asprintf(inputs_id, "%s@%s %s@%s", a->s.prompts, k1 ? k1 : "?", a->responses,
                     k2 ? k2 : "?") < 0)
            DIE("out of memory");
        free(k1);
        free(k2);
        err_clear(); /* absent attributes are no error here */
    }
    if (rc == 0) rc = index_responses(g);
    if (rc == 0) rc = chat_template_load(a->template_name, &g->tpl);
    chat_template crit;
    if (rc == 0) rc = chat_template_load(a->critic_name, &crit);
    if (rc == 0 && (!strstr(crit.text, "{response_1}") || !strstr(crit.text, "{response_2}")))
        rc = ERR("critic template %s: needs {response_1} and {response_2} placeholders",
                 a->critic_name);
    if (rc == 0) {
        g->critic = crit.text;
        crit.text = NULL;
        chat_template_free(&crit);
    }
    return rc;
}

/* ---------------------------------------------------------- judgements -- */

/* The responses of one chunk's items: rows [row0, row0 + r.n) of the
 * file, read together. */
typedef struct {
    int64_t row0;
    resp_rows r;
    int64_t *text_off, *tok_off;   /* [r.n] where each row's text and tokens start */
} chunk_resp;

static int read_chunk_resp(crit_ctx *g, int64_t first, int64_t n, chunk_resp *cr)
{
    memset(cr, 0, sizeof *cr);
    cr->row0 = g->item_row0[first];
    int rc = resp_read_range(&g->responses, cr->row0,
                             g->item_row0[first + n] - cr->row0, &cr->r);
    if (rc != 0) return rc;
    cr->text_off = xmalloc(sizeof(int64_t) * (size_t)(cr->r.n + 1));
    cr->tok_off = xmalloc(sizeof(int64_t) * (size_t)(cr->r.n + 1));
    cr->text_off[0] = cr->tok_off[0] = 0;
    for (int64_t i = 0; i < cr->r.n; i++) {
        cr->text_off[i + 1] = cr->text_off[i] + cr->r.text_len[i];
        cr->tok_off[i + 1] = cr->tok_off[i] + cr->r.n_tokens[i];
    }
    return 0;
}

static void chunk_resp_free(chunk_resp *cr)
{
    resp_free(&cr->r);
    free(cr->text_off);
    free(cr->tok_off);
}

/* Item i's first row in the chunk's responses, its prompt and candidates. */
static int64_t item_rows(const crit_ctx *g, const chunk_resp *cr, int64_t item, int64_t *prompt,
                         int32_t *cands)
{
    int64_t k = g->item_row0[item] - cr->row0, j = k;
    while (j < cr->r.n && cr->r.prompt[j] == cr->r.prompt[k]) j++;
    *prompt = cr->r.prompt[k];
    *cands = (int32_t)(j - k);
    return k;
}

/* One judgement of a chunk: which candidates, in which order. */
typedef struct {
    int64_t row0;           /* the item's first row in the chunk's responses */
    int64_t prompt;
    int32_t first, second;
    int8_t order;
    int8_t skipped, truncated;
    tok_ids ids;            /* the critic prompt */
    int req;                /* engine request, -1 when skipped */
} judgement;

/* The pairs of an item (cands candidates from chunk row row0), each in its
 * default order (higher index first: candidate 1, sampled, before
 * candidate 0, greedy) and, with --both-orders, swapped right after it. */
static int list_judgements(const crit_ctx *g, int64_t row0, int64_t prompt, int32_t cands,
                           judgement *out)
{
    int n = 0;
    for (int32_t hi = 1; hi < cands; hi++)
        for (int32_t lo = 0; lo < hi; lo++) {
            if (!g->a->all_pairs && !(hi == 1 && lo == 0)) continue;
            out[n++] = (judgement){row0, prompt, hi, lo, 0, 0, 0, {0}, -1};
            if (g->a->both_orders) out[n++] = (judgement){row0, prompt, lo, hi, 1, 0, 0, {0}, -1};
        }
    return n;
}

static int max_judgements(const crit_ctx *g, int32_t cands)
{
    int pairs = g->a->all_pairs ? cands * (cands - 1) / 2 : 1;
    return pairs * (g->a->both_orders ? 2 : 1);
}

/* A candidate's answer text, or its first `limit` tokens decoded. */
static char *answer_text(const crit_ctx *g, const chunk_resp *cr, int64_t row, int limit)
{
    const resp_rows *r = &cr->r;
    if (limit <= 0 || r->n_tokens[row] <= limit) {
        char *s = xmalloc((size_t)r->text_len[row] + 1);
        memcpy(s, r->text + cr->text_off[row], (size_t)r->text_len[row]);
        s[r->text_len[row]] = '\0';
        return s;
    }
    char *s = NULL;
    if (tok_decode(g->s.tok, r->tokens + cr->tok_off[row], (size_t)limit, true, &s, NULL) != 0)
        s = xstrdup("");
    return s;
}

/* The critic prompt ids for a judgement, answers cut to `limit` tokens. */
static int critic_prompt(const crit_ctx *g, const chunk_resp *cr, judgement *j,
                         const char *question, const char *truth, bool with_image, int limit)
{
    char *r1 = answer_text(g, cr, j->row0 + j->first, limit);
    char *r2 = answer_text(g, cr, j->row0 + j->second, limit);
    const char *names[] = {"question", "ground_truth", "response_1", "response_2"};
    const char *values[] = {question, truth, r1, r2};
    char *text = chat_fill(g->critic, names, values, 4, g->a->strip_newlines);
    j->ids.n = 0;
    int rc = chat_prompt_ids(&g->tpl, g->s.tok, text, with_image, g->s.m->cfg.image_token_index,
                             g->s.m->image_tokens, &j->ids);
    free(text);
    free(r1);
    free(r2);
    return rc;
}

/* Build the prompt; when it does not fit the context with room for the
 * answer, cut the answers (if asked) or mark the judgement skipped. */
static int prepare_judgement(const crit_ctx *g, const chunk_resp *cr, judgement *j,
                             const char *question, const char *truth, bool with_image)
{
    int64_t room = g->s.m->cfg.text.max_position_embeddings - g->a->max_new;
    int rc = critic_prompt(g, cr, j, question, truth, with_image, 0);
    if (rc == 0 && (int64_t)j->ids.n > room && g->a->truncate_answers > 0) {
        rc = critic_prompt(g, cr, j, question, truth, with_image, g->a->truncate_answers);
        j->truncated = 1;
    }
    if (rc == 0 && (int64_t)j->ids.n > room) j->skipped = 1;
    return rc;
}

/* --------------------------------------------------------------- chunks -- */

/* Rows of one chunk, in order, from its judgements and the engine outputs. */
static void chunk_rows(const crit_ctx *g, judgement *js, int n, gen_output *out, verd_rows *rows)
{
    int8_t *verdict = xmalloc((size_t)n), *consistent = xmalloc((size_t)n);
    int32_t *first = xmalloc(sizeof(int32_t) * (size_t)n), *second = xmalloc(sizeof(int32_t) * (size_t)n);
    int32_t *winner = xmalloc(sizeof(int32_t) * (size_t)n);
    char **text = xcalloc((size_t)n, sizeof *text);
    size_t *len = xcalloc((size_t)n, sizeof *len);
    for (int i = 0; i < n; i++) {
        judgement *j = &js[i];
        first[i] = j->first;
        second[i] = j->second;
        verdict[i] = -1;
        if (j->skipped) continue;
        gen_output *o = &out[j->req];
        if (tok_decode(g->s.tok, o->tokens, (size_t)o->n, true, &text[i], &len[i]) != 0) {
            text[i] = xstrdup("");
            len[i] = 0;
        }
        verdict[i] = (int8_t)verd_parse(text[i], len[i]);
    }
    /* judgements of one item are listed pair by pair, both orders adjacent,
     * and items never split a pair: resolve the whole chunk at once */
    verd_resolve(verdict, first, second, n, g->a->both_orders, winner, consistent);
    for (int i = 0; i < n; i++) {
        judgement *j = &js[i];
        verd_row row = {j->prompt, j->first, j->second, winner[i], j->order,
                        verdict[i], consistent[i], j->skipped, j->truncated, (int64_t)j->ids.n};
        verd_push(rows, &row, text[i] ? text[i] : "", (int64_t)len[i]);
        free(text[i]);
    }
    free(verdict);
    free(consistent);
    free(first);
    free(second);
    free(winner);
    free(text);
    free(len);
}

static int on_step(void *ctx)
{
    crit_ctx *g = ctx;
    chk_progress_tick(&g->st->progress);
    return tool_interrupted();
}

/* Judge every pair of a chunk's prompts in one engine call and commit it;
 * an interrupted chunk is not committed (the loop stops on the signal). */
static int crit_run_chunk(void *ctx, stage *s, int64_t chunk, bool *stop)
{
    crit_ctx *g = ctx;
    (void)stop;
    int64_t first, n;
    chk_items(&s->plan, chunk, &first, &n);
    chunk_resp cr;
    int rc = read_chunk_resp(g, first, n, &cr);
    if (rc != 0) return rc;
    int cap = 0;
    for (int64_t i = first; i < first + n; i++) {
        int64_t prompt;
        int32_t cands;
        item_rows(g, &cr, i, &prompt, &cands);
        cap += max_judgements(g, cands);
    }
    judgement *js = xcalloc((size_t)cap, sizeof *js);
    gen_request *req = xcalloc((size_t)cap, sizeof *req);
    float **pixels = xcalloc((size_t)n, sizeof *pixels);
    int nj = 0, nr = 0;
    int64_t prompt_tokens = 0;
    for (int64_t i = first; rc == 0 && i < first + n; i++) {
        int64_t row;
        int32_t cands;
        int64_t k0 = item_rows(g, &cr, i, &row, &cands);
        char *question = NULL, *truth = NULL;
        rc = prm_text(&g->prompts, "question", row, &question);
        if (rc == 0) rc = prm_text(&g->prompts, "ground_truth", row, &truth);
        if (rc == 0) rc = prm_pixels(&g->prompts, row, &g->s.pc, g->s.mode, &pixels[i - first]);
        int k = rc == 0 ? list_judgements(g, k0, row, cands, js + nj) : 0;
        for (int q = 0; rc == 0 && q < k; q++) {
            judgement *j = &js[nj + q];
            rc = prepare_judgement(g, &cr, j, question, truth, pixels[i - first] != NULL);
            if (rc != 0 || j->skipped) continue;
            j->req = nr;
            prompt_tokens += (int64_t)j->ids.n;
            req[nr++] = (gen_request){j->ids.ids, (int64_t)j->ids.n, pixels[i - first],
                                      pixels[i - first] ? 1 : 0, {0, 1, 0}, 0, g->a->max_new, -1};
        }
        nj += k;
        free(question);
        free(truth);
        if (rc != 0) err_context("prompt row %lld", (long long)row);
    }
    gen_output *out = xcalloc((size_t)(nr ? nr : 1), sizeof *out);
    if (rc == 0 && nr > 0) {
        gen_options opt;
        gen_options_default(&opt);
        opt.max_batch = g->a->batch;
        opt.on_step = on_step;
        opt.ctx = g;
        rc = gen_generate(g->s.m, req, nr, &opt, out);
    }
    if (rc == 0 && !tool_interrupted()) {
        verd_rows rows = {0};
        chunk_rows(g, js, nj, out, &rows);
        rc = stage_commit_part(s, chunk, &rows);
        verd_free(&rows);
        chk_progress_add(&s->progress, n, prompt_tokens);
    }
    for (int i = 0; i < nr; i++) gen_output_free(&out[i]);
    for (int i = 0; i < nj; i++) tok_ids_free(&js[i].ids);
    for (int64_t i = 0; i < n; i++) free(pixels[i]);
    free(out);
    free(pixels);
    free(req);
    free(js);
    chunk_resp_free(&cr);
    return rc;
}

/* ------------------------------------------------------------ stage -- */

static int crit_load(void *ctx, stage *s)
{
    crit_ctx *g = ctx;
    (void)s;
    return sess_load(g->a->s.model, g->a->s.preprocess, &g->a->dev, &g->s);
}

static void crit_announce(void *ctx, const stage *s)
{
    crit_ctx *g = ctx;
    log_info("%lld prompts with two or more candidates in %lld chunks, %lld already committed; "
             "%d rank%s", (long long)g->n_items, (long long)s->plan.n_chunks,
             (long long)(s->plan.n_chunks - s->n_pending), s->t->size, s->t->size > 1 ? "s" : "");
}

/* Counts over the rows of the output this rank assembles. */
static void crit_tally(void *ctx, const void *out_rows)
{
    crit_ctx *g = ctx;
    const verd_rows *rows = out_rows;
    int64_t *c = g->counts;
    for (int64_t i = 0; i < rows->n; i++) {
        c[0] += rows->skipped[i] == 0;
        c[1] += rows->verdict[i] == 0;
        c[2] += rows->skipped[i] != 0;
    }
}

/* The critic settings and counts as root attributes (collective). */
static int crit_write_attrs(void *ctx, stage *s, h5io_file *f)
{
    crit_ctx *g = ctx;
    const crit_args *a = g->a;
    (void)s;
    /* counts over every rank's rows, the same values on every rank */
    int64_t *c = g->counts;
    MPI_Allreduce(MPI_IN_PLACE, c, 3, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    int rc = h5io_set_attr_str(f, "/", "template", a->critic_name);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "template_text", g->critic);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "chat_template", a->template_name);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "both_orders", a->both_orders);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "all_pairs", a->all_pairs);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "max_new_tokens", a->max_new);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "truncate_answers", a->truncate_answers);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "prompts_file", a->s.prompts);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "responses_file", a->responses);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_judged", c[0]);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_no_verdict", c[1]);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "n_skipped", c[2]);
    return rc;
}

static void crit_summary(void *ctx, const stage *s)
{
    crit_ctx *g = ctx;
    (void)s;
    log_info("done: %lld judgements, %lld without a verdict, %lld skipped as too long; wrote %s",
             (long long)g->counts[0], (long long)g->counts[1], (long long)g->counts[2],
             g->a->s.out);
}

static const stage_ops CRIT_OPS = {crit_load, crit_announce, crit_run_chunk, crit_write_attrs,
                                   crit_summary, crit_tally};

/* ---------------------------------------------------------------- main -- */

int main(int argc, char **argv)
{
    tool_ctx t;
    tool_init(&t, &argc, &argv, "sima-critic");
    crit_args a;
    parse_args(&t, argc, argv, &a);
    h5u_init();
    tool_catch_signals();

    crit_ctx g;
    memset(&g, 0, sizeof g);
    g.a = &a;
    char *inputs_id = NULL, *settings = NULL;
    char *model_hash = h5io_model_hash(a.s.model);
    int rc = model_hash ? 0 : -1;
    if (rc == 0) rc = load_inputs(&g, &inputs_id);
    tool_agree(&t, rc);

    if (asprintf(&settings, "model_hash=%s inputs=%s template=%s both_orders=%d all_pairs=%d "
                 "strip_newlines=%d truncate_answers=%d max_new_tokens=%d preprocess=%s chunk=%d",
                 model_hash, inputs_id, a.template_name, a.both_orders, a.all_pairs,
                 a.strip_newlines, a.truncate_answers, a.max_new, a.s.preprocess, a.s.chunk) < 0)
        DIE("out of memory");
    tool_agree(&t, sess_key_device(&a.dev, &settings));
    const char *key_texts[] = {settings, g.critic, g.tpl.text};
    const char *inputs[] = {a.s.prompts, a.responses};
    stage_spec spec = {&a.s, &verd_table, VERD_SCHEMA, VERD_SCHEMA_VERSION, inputs, 2, model_hash,
                       -1, g.n_items, key_texts, 3, "prompts", "critic prompt tokens/s"};
    stage st;
    g.st = &st;
    int code = stage_run(&t, &spec, &CRIT_OPS, &g, &st);
    h5io_close(&g.prompts);
    h5io_close(&g.responses);
    free(g.item_row0);
    stage_free(&st);
    free(settings);
    free(inputs_id);
    free(model_hash);
    return tool_finish(&t, code);
}
