/* sima-gen — data-parallel candidate generation.
 *
 *   mpirun -np N sima-gen --model DIR --prompts prompts.h5 --out responses.h5 [options]
 *
 * The selected prompts are cut into chunks of --chunk prompts; chunk c goes
 * to rank (its position among the unfinished chunks) mod N, and is generated
 * as one batch of requests, the same whatever rank runs it. Each finished
 * chunk is committed at once as a small file in OUT.parts/ (written to a
 * temporary name, then renamed), so a job killed at any moment loses at most
 * the chunks in flight; rerunning the same command skips the committed ones.
 * When every chunk exists, all ranks assemble OUT together (collective
 * writes, rank r writing the r-th block of chunks: the file is the same for
 * any number of ranks) and the parts folder is removed: the sequence every
 * stage tool shares (io/stage.h).
 *
 * Every candidate's seed comes from (--seed, prompt row, candidate index), so
 * the output does not depend on ranks, batches or interruptions.
 */
#define _GNU_SOURCE
#include "chat.h"
#include "chunks.h"
#include "config.h"
#include "err.h"
#include "fs.h"
#include "generate.h"
#include "h5io.h"
#include "h5util.h"
#include "image.h"
#include "libcheck.h"
#include "llava.h"
#include "log.h"
#include "prompts.h"
#include "responses.h"
#include "session.h"
#include "stage.h"
#include "tokenizer.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: mpirun -np N sima-gen --model DIR --prompts prompts.h5 --out responses.h5 [options]\n"
    "\n"
    "Generate candidate answers for every prompt (data-parallel over MPI ranks).\n"
    "\n"
    "  --model DIR            LLaVA model folder (config.json, safetensors, tokenizer)\n"
    "  --adapter DIR          PEFT LoRA adapter applied on top of the model\n"
    "  --prompts FILE         prompts file from sima-prep (schema sima.prompts)\n"
    "  --out FILE             responses file to write (schema sima.responses)\n"
    "  --candidates N         candidates per prompt (default 2)\n"
    "  --no-greedy-first      sample every candidate (default: candidate 0 is greedy)\n"
    "  --temperature T        sampling temperature (default 0.8)\n"
    "  --top-p P              nucleus sampling mass (default 0.9; 1 = off)\n"
    "  --top-k K              keep the K most likely tokens (default 0 = off)\n"
    "  --max-new-tokens N     longest answer (default 1024)\n"
    "  --batch N              sequences decoded together per rank (default 8)\n"
    "  --seed S               run seed (default 0)\n"
    "  --template NAME|FILE   prompt template (default vicuna_v1; see data/templates)\n"
    "  --preprocess pad|crop  image preprocessing (default pad, as LLaVA-1.5)\n"
    SESS_DEVICE_USAGE
    "  --range A:B            only prompt rows A <= row < B (either side may be empty)\n"
    "  --every K              only every K-th prompt row of the range\n"
    "  --chunk N              prompts per chunk (default 16): the unit of commit and of\n"
    "                         batching; larger chunks batch better, smaller lose less\n"
    "                         work when the job is killed\n"
    "  --no-resume            discard chunks committed by an earlier run\n"
    "  --overwrite            replace an output that belongs to a different run\n"
    "  --progress-seconds S   progress line interval (default 5)\n"
    "  --quiet, --verbose, --help, --version\n"
    "\n"
    "Exit status: 0 output complete, 1 error, 2 bad usage, 3 interrupted (SIGTERM,\n"
    "SIGUSR1 or SIGINT) after committing finished chunks: rerun the same command.\n";

typedef struct {
    stage_opts s;           /* model, prompts, out, preprocess, chunk, resume, ... */
    const char *template_name;
    const char *adapter;    /* NULL: the base model */
    int candidates, first_greedy, top_k, max_new, batch;
    float temperature, top_p;
    int64_t seed, range_lo, range_hi, every;
    be_open_opts dev;       /* --device, --dtype */
} gen_args;

/* ----------------------------------------------------------- options -- */

static void parse_range(tool_ctx *t, const char *s, gen_args *a)
{
    const char *colon = strchr(s, ':');
    if (!colon) tool_usage_error(t, "--range: expected A:B, got '%s'", s);
    char lo[32] = "", hi[32] = "";
    snprintf(lo, sizeof lo, "%.*s", (int)(colon - s), s);
    snprintf(hi, sizeof hi, "%s", colon + 1);
    a->range_lo = lo[0] ? tool_parse_int(t, "--range", lo, 0, INT64_MAX) : 0;
    a->range_hi = hi[0] ? tool_parse_int(t, "--range", hi, 0, INT64_MAX) : INT64_MAX;
}

enum { O_CAND = 256, O_NOGREEDY, O_TEMP, O_TOPP, O_TOPK, O_MAXNEW, O_BATCH, O_SEED, O_TEMPLATE,
       O_RANGE, O_EVERY, O_ADAPTER };

/* sima-gen's own options; returns 0 for another code. */
static int gen_option(void *arg, tool_ctx *t, int c, const char *v)
{
    gen_args *a = arg;
    if (sess_device_option(t, &a->dev, c, v)) return 1;
    switch (c) {
    case O_CAND: a->candidates = (int)tool_parse_int(t, "--candidates", v, 1, 64); break;
    case O_NOGREEDY: a->first_greedy = 0; break;
    case O_TEMP: a->temperature = (float)tool_parse_real(t, "--temperature", v, 0, 100); break;
    case O_TOPP: a->top_p = (float)tool_parse_real(t, "--top-p", v, 1e-6, 1); break;
    case O_TOPK: a->top_k = (int)tool_parse_int(t, "--top-k", v, 0, 1 << 30); break;
    case O_MAXNEW: a->max_new = (int)tool_parse_int(t, "--max-new-tokens", v, 1, 1 << 20); break;
    case O_BATCH: a->batch = (int)tool_parse_int(t, "--batch", v, 1, 4096); break;
    case O_SEED: a->seed = tool_parse_int(t, "--seed", v, 0, INT64_MAX); break;
    case O_TEMPLATE: a->template_name = v; break;
    case O_RANGE: parse_range(t, v, a); break;
    case O_EVERY: a->every = tool_parse_int(t, "--every", v, 1, INT64_MAX); break;
    case O_ADAPTER: a->adapter = v; break;
    default: return 0;
    }
    return 1;
}

static void parse_args(tool_ctx *t, int argc, char **argv, gen_args *a)
{
    *a = (gen_args){.template_name = "vicuna_v1", .candidates = 2, .first_greedy = 1,
                    .max_new = 1024, .batch = 8, .temperature = 0.8f, .top_p = 0.9f,
                    .range_hi = INT64_MAX, .every = 1};
    sess_device_default(t, &a->dev);
    static const struct option opts[] = {
        {"candidates", required_argument, 0, O_CAND},
        {"no-greedy-first", no_argument, 0, O_NOGREEDY},
        {"temperature", required_argument, 0, O_TEMP}, {"top-p", required_argument, 0, O_TOPP},
        {"top-k", required_argument, 0, O_TOPK},
        {"max-new-tokens", required_argument, 0, O_MAXNEW},
        {"batch", required_argument, 0, O_BATCH}, {"seed", required_argument, 0, O_SEED},
        {"template", required_argument, 0, O_TEMPLATE}, {"range", required_argument, 0, O_RANGE},
        {"every", required_argument, 0, O_EVERY}, {"adapter", required_argument, 0, O_ADAPTER},
        SESS_DEVICE_OPTIONS, {0, 0, 0, 0}};
    stage_parse_args(t, argc, argv, USAGE, 16, &a->s, opts, gen_option, a);
    if (!a->s.model || !a->s.prompts || !a->s.out)
        tool_usage_error(t, "--model, --prompts and --out are required");
}

/* The settings that determine the output, as one canonical string. */
static char *settings_string(const gen_args *a, const char *model_hash, const char *adapter_hash,
                             const char *prompts_id)
{
    char *s = NULL;
    if (asprintf(&s,
                 "model_hash=%s adapter=%s prompts=%s candidates=%d first_greedy=%d temperature=%.9g "
                 "top_p=%.9g top_k=%d max_new_tokens=%d seed=%lld template=%s preprocess=%s "
                 "range=%lld:%lld every=%lld chunk=%d",
                 model_hash, adapter_hash, prompts_id, a->candidates, a->first_greedy, a->temperature,
                 a->top_p, a->top_k, a->max_new, (long long)a->seed, a->template_name,
                 a->s.preprocess, (long long)a->range_lo, (long long)a->range_hi,
                 (long long)a->every, a->s.chunk) < 0)
        DIE("out of memory");
    return s;
}

/* ------------------------------------------------------------ prompts -- */

/* Selected prompt rows: --range, then every K-th. */
static int64_t select_rows(const gen_args *a, int64_t n_prompts, int64_t **rows)
{
    int64_t lo = a->range_lo < n_prompts ? a->range_lo : n_prompts;
    int64_t hi = a->range_hi < n_prompts ? a->range_hi : n_prompts;
    int64_t n = hi > lo ? (hi - lo + a->every - 1) / a->every : 0;
    *rows = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) (*rows)[i] = lo + i * a->every;
    return n;
}

typedef struct {
    const gen_args *a;
    sess_model s;           /* model, tokenizer, image preprocessing */
    chat_template tpl;
    h5io_file prompts;      /* read by this rank alone */
    const int64_t *sel;     /* selected prompt rows */
    int64_t n_sel;
    char *settings;         /* settings_string */
    const char *adapter_hash; /* sess_adapter_hash of --adapter ("none") */
    stage *st;              /* chunks of the selected prompts, progress */
} gen_ctx;

/* One prompt's model input: token ids and (optional) pixels [3, S, S]. */
typedef struct {
    tok_ids ids;
    float *pixels;
} prompt_input;

static int load_prompt(gen_ctx *g, int64_t row, prompt_input *in)
{
    memset(in, 0, sizeof *in);
    char *question = NULL;
    int rc = prm_text(&g->prompts, "question", row, &question);
    if (rc == 0) rc = prm_pixels(&g->prompts, row, &g->s.pc, g->s.mode, &in->pixels);
    if (rc == 0)
        rc = chat_prompt_ids(&g->tpl, g->s.tok, question, in->pixels != NULL,
                             g->s.m->cfg.image_token_index, g->s.m->image_tokens, &in->ids);
    free(question);
    if (rc != 0) err_context("prompt row %lld", (long long)row);
    return rc;
}

static void free_prompt(prompt_input *in)
{
    tok_ids_free(&in->ids);
    free(in->pixels);
}

/* ------------------------------------------------------------- chunks -- */

/* One chunk being generated: its prompts' inputs and candidates' outputs. */
typedef struct {
    int64_t index;          /* chunk number */
    int64_t first, n;       /* its prompts: sel[first .. first + n) */
    prompt_input *inputs;   /* [n] */
    int outstanding;        /* requests not finished yet */
    int req0;               /* its first request in the window */
} chunk_job;

typedef struct {
    gen_ctx *g;
    chunk_job *jobs;
    int n_jobs;
    int *job_of;            /* request -> job */
    gen_request *req;
    gen_output *out;
    int failed;
} window;

/* Write chunk j's rows to its part file (temporary name, then rename). */
static int commit_chunk(window *w, chunk_job *j)
{
    gen_ctx *g = w->g;
    int C = g->a->candidates;
    resp_rows rows = {0};
    int rc = 0;
    for (int64_t p = 0; rc == 0 && p < j->n; p++)
        for (int c = 0; rc == 0 && c < C; c++) {
            int r = j->req0 + (int)p * C + c;
            gen_output *o = &w->out[r];
            char *text = NULL;
            size_t len = 0;
            rc = tok_decode(g->s.tok, o->tokens, (size_t)o->n, true, &text, &len);
            if (rc == 0)
                resp_push(&rows, g->sel[j->first + p], c,
                          w->req[r].sampling.temperature > 0 ? RESP_SAMPLED : RESP_GREEDY,
                          w->req[r].seed, (int8_t)o->finish, o->tokens, o->logprobs, o->n, text,
                          (int64_t)len);
            free(text);
        }
    if (rc == 0) rc = stage_commit_part(g->st, j->index, &rows);
    chk_progress_add(&g->st->progress, j->n, rows.tok_total);
    resp_free(&rows);
    for (int64_t i = 0; i < j->n * C; i++) gen_output_free(&w->out[j->req0 + i]);
    return rc;
}

static int on_request_done(void *ctx, int request, const gen_output *out)
{
    window *w = ctx;
    chunk_job *j = &w->jobs[w->job_of[request]];
    if (--j->outstanding == 0 && commit_chunk(w, j) != 0) {
        w->failed = 1;
        return 1;
    }
    return 0;
}

static int on_step(void *ctx)
{
    window *w = ctx;
    chk_progress_tick(&w->g->st->progress);
    return tool_interrupted();
}

/* Generate the chunks `chunks[0..n)` in one engine call, committing each
 * chunk as soon as all its candidates are done. */
static int run_window(gen_ctx *g, const int64_t *chunks, int n)
{
    const gen_args *a = g->a;
    int C = a->candidates;
    window w = {g, xcalloc((size_t)n, sizeof(chunk_job)), n, NULL, NULL, NULL, 0};
    int n_req = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        chunk_job *j = &w.jobs[i];
        j->index = chunks[i];
        chk_items(&g->st->plan, chunks[i], &j->first, &j->n);
        j->req0 = n_req;
        j->outstanding = (int)j->n * C;
        n_req += j->outstanding;
    }
    w.req = xcalloc((size_t)n_req, sizeof *w.req);
    w.out = xcalloc((size_t)n_req, sizeof *w.out);
    w.job_of = xmalloc(sizeof(int) * (size_t)n_req);
    for (int i = 0; rc == 0 && i < n; i++) {
        chunk_job *j = &w.jobs[i];
        j->inputs = xcalloc((size_t)j->n, sizeof *j->inputs);
        for (int64_t p = 0; rc == 0 && p < j->n; p++) {
            int64_t row = g->sel[j->first + p];
            prompt_input *in = &j->inputs[p];
            rc = load_prompt(g, row, in);
            for (int c = 0; rc == 0 && c < C; c++) {
                int r = j->req0 + (int)p * C + c;
                int greedy = c == 0 && a->first_greedy;
                w.req[r] = (gen_request){in->ids.ids, (int64_t)in->ids.n, in->pixels,
                                         in->pixels ? 1 : 0,
                                         {greedy ? 0.0f : a->temperature, a->top_p, a->top_k},
                                         smp_derive_seed((uint64_t)a->seed, (uint64_t)row, (uint64_t)c),
                                         a->max_new, -1};
                w.job_of[r] = i;
            }
        }
    }
    if (rc == 0) {
        gen_options opt;
        gen_options_default(&opt);
        opt.max_batch = a->batch;
        opt.on_done = on_request_done;
        opt.on_step = on_step;
        opt.ctx = &w;
        rc = gen_generate(g->s.m, w.req, n_req, &opt, w.out);
        if (rc == 0 && w.failed) rc = -1;
    }
    for (int i = 0; i < n; i++) {
        for (int64_t p = 0; w.jobs[i].inputs && p < w.jobs[i].n; p++) free_prompt(&w.jobs[i].inputs[p]);
        free(w.jobs[i].inputs);
    }
    for (int r = 0; r < n_req; r++) gen_output_free(&w.out[r]);
    free(w.jobs);
    free(w.req);
    free(w.out);
    free(w.job_of);
    return rc;
}

/* One chunk is one engine call: its requests are batched the same way
 * whatever rank runs it, so its results (log-probs included) are the same
 * bits for any number of ranks. */
static int gen_run_chunk(void *ctx, stage *s, int64_t chunk, bool *stop)
{
    (void)s;
    (void)stop; /* an interrupted engine call commits no unfinished chunk */
    return run_window(ctx, &chunk, 1);
}

static int gen_load(void *ctx, stage *s)
{
    gen_ctx *g = ctx;
    (void)s;
    int rc = sess_load(g->a->s.model, g->a->s.preprocess, &g->a->dev, &g->s);
    if (rc == 0 && g->a->adapter) rc = sess_attach_adapter(&g->s, g->a->adapter);
    return rc;
}

static void gen_announce(void *ctx, const stage *s)
{
    gen_ctx *g = ctx;
    log_info("%lld prompts selected in %lld chunks, %lld already committed; %d rank%s, %d "
             "candidates each, batch %d",
             (long long)g->n_sel, (long long)s->plan.n_chunks,
             (long long)(s->plan.n_chunks - s->n_pending), s->t->size, s->t->size > 1 ? "s" : "",
             g->a->candidates, g->a->batch);
}

/* The generation settings as root attributes of the output (collective). */
static int gen_write_attrs(void *ctx, stage *s, h5io_file *f)
{
    const gen_args *a = ((gen_ctx *)ctx)->a;
    (void)s;
    int rc = h5io_set_attr_str(f, "/", "settings", ((gen_ctx *)ctx)->settings);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "prompts_file", a->s.prompts);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "adapter", a->adapter ? a->adapter : "");
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "adapter_hash", ((gen_ctx *)ctx)->adapter_hash);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "template", a->template_name);
    if (rc == 0) rc = h5io_set_attr_str(f, "/", "preprocess", a->s.preprocess);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "candidates", a->candidates);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "first_greedy", a->first_greedy);
    if (rc == 0) rc = h5io_set_attr_f64(f, "/", "temperature", a->temperature);
    if (rc == 0) rc = h5io_set_attr_f64(f, "/", "top_p", a->top_p);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "top_k", a->top_k);
    if (rc == 0) rc = h5io_set_attr_i64(f, "/", "max_new_tokens", a->max_new);
    return rc;
}

static void gen_summary(void *ctx, const stage *s)
{
    gen_ctx *g = ctx;
    double el = MPI_Wtime() - s->t->t0;
    char b[32];
    log_info("done: %lld prompts x %d candidates, %lld new tokens in %s (%.0f tokens/s); wrote %s",
             (long long)g->n_sel, g->a->candidates, (long long)s->tokens, tool_duration(el, b),
             s->tokens / (el > 0 ? el : 1), g->a->s.out);
}

static const stage_ops GEN_OPS = {gen_load, gen_announce, gen_run_chunk, gen_write_attrs,
                                  gen_summary, NULL};

/* ---------------------------------------------------------------- main -- */

static int open_prompts(gen_ctx *g, char **prompts_id)
{
    int64_t n;
    if (prm_open(&g->prompts, g->a->s.prompts, &n) != 0) return -1;
    g->n_sel = select_rows(g->a, n, (int64_t **)&g->sel);
    char *created = h5io_get_attr_str(&g->prompts, "/", "created");
    if (asprintf(prompts_id, "%s@%s/%lld", g->a->s.prompts, created ? created : "?", (long long)n) < 0)
        DIE("out of memory");
    free(created);
    return 0;
}

int main(int argc, char **argv)
{
    tool_ctx t;
    tool_init(&t, &argc, &argv, "sima-gen");
    gen_args a;
    parse_args(&t, argc, argv, &a);
    h5u_init();
    tool_catch_signals();

    gen_ctx g;
    memset(&g, 0, sizeof g);
    g.a = &a;
    char *prompts_id = NULL;
    char *model_hash = h5io_model_hash(a.s.model);
    char *adapter_hash = model_hash ? sess_adapter_hash(a.adapter) : NULL;
    g.adapter_hash = adapter_hash;
    int rc = adapter_hash ? 0 : -1;
    if (rc == 0) rc = open_prompts(&g, &prompts_id);
    if (rc == 0) rc = chat_template_load(a.template_name, &g.tpl);
    tool_agree(&t, rc);

    /* the run's identity: everything that determines the output, and the
     * template's text (a user may edit the file between runs) */
    g.settings = settings_string(&a, model_hash, adapter_hash, prompts_id);
    tool_agree(&t, sess_key_device(&a.dev, &g.settings));
    const char *key_texts[] = {g.settings, g.tpl.text};
    const char *inputs[] = {a.s.prompts};
    stage_spec spec = {&a.s, &resp_table, RESP_SCHEMA, RESP_SCHEMA_VERSION, inputs, 1, model_hash,
                       a.seed, g.n_sel, key_texts, 2, "prompts", "new tokens/s"};
    stage st;
    g.st = &st;
    int code = stage_run(&t, &spec, &GEN_OPS, &g, &st);
    h5io_close(&g.prompts);
    stage_free(&st);
    free(g.settings);
    free(prompts_id);
    free(model_hash);
    free(adapter_hash);
    return tool_finish(&t, code);
}
