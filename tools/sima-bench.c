/* sima-bench — run a model over benchmark questions and score its answers
 * with the official rules (libcommon/bench/).
 *
 *   mpirun -np N sima-bench --model DIR (--questions Q.jsonl | --suite LIST
 *                           --data-root DIR) --out RESULTS_DIR [options]
 *   sima-bench compare A/ B/ [--json FILE]
 *
 * Questions come from a JSONL file (data/benchmarks/README.md) or from the
 * official release files (bench_source.h); questions whose image is missing
 * are left out and counted. Generation is data-parallel and resumable like
 * sima-gen (io/chunks.h): the questions are cut into chunks; the ranks share
 * the unfinished ones; each finished chunk is committed at once in
 * OUT/answers.h5.parts/; a killed job loses only chunks in flight and a
 * rerun finishes. When every chunk exists the ranks assemble OUT/answers.h5,
 * then rank 0 joins the answers to the questions by (benchmark, question
 * id), never by file order, scores them (sima-bench-score.c) and writes
 * OUT/results.json, OUT/samples.jsonl and OUT/samples.h5. Decoding is greedy,
 * with LLaVA-1.5's per-benchmark answer lengths.
 */
#define _GNU_SOURCE
#include "sima-bench.h"

#include "bench_source.h"
#include "chat.h"
#include "chunks.h"
#include "err.h"
#include "fs.h"
#include "generate.h"
#include "h5io.h"
#include "h5util.h"
#include "image.h"
#include "llava.h"
#include "log.h"
#include "session.h"
#include "tokenizer.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ANS_SCHEMA "sima.bench_answers"
#define ANS_SCHEMA_VERSION 2

static const char USAGE[] =
    "usage: mpirun -np N sima-bench --model DIR --questions Q.jsonl --out DIR [options]\n"
    "       mpirun -np N sima-bench --model DIR --suite LIST --data-root DIR --out DIR [options]\n"
    "       sima-bench compare A/ B/ [--json FILE|-]\n"
    "\n"
    "Answer benchmark questions (data-parallel, resumable) and score the answers\n"
    "with the official rules: pope, mme, vqa, textvqa, vizwiz, vqav2, gqa, scienceqa,\n"
    "mmbench, seed, chair; judge-scored: llava_bench, mmvet, mmhal, mementos.\n"
    "\n"
    "  --model DIR            LLaVA model folder\n"
    "  --adapter DIR          PEFT LoRA adapter applied on top of the model\n"
    "  --questions FILE       questions, JSON lines (data/benchmarks/README.md)\n"
    "  --suite LIST           comma-separated benchmarks from the official files, or all\n"
    "  --data-root DIR        where the official files are (with --suite)\n"
    "  --out DIR              results folder: answers.h5, results.json, samples.jsonl,\n"
    "                         samples.h5\n"
    "  --limit N              only the first N questions (per suite with --suite)\n"
    "  --max-new-tokens N     longest answer for every benchmark (default: per\n"
    "                         benchmark, 128 short answers, 1024 long ones)\n"
    "  --chair-synonyms FILE  CHAIR synonym table (default DATA_ROOT/chair/synonyms.txt)\n"
    "  --judge MODE           none, online, write-requests or read-replies (default\n"
    "                         online when SIMA_JUDGE_URL is set, else none)\n"
    "  --judge-replies FILE   judge replies, JSON lines (--judge read-replies)\n"
    "  --judge-model NAME     judge model name (default $SIMA_JUDGE_MODEL)\n"
    "  --judge-rate X         at most X judge requests per second (default: no limit)\n"
    "  --batch N              sequences decoded together per rank (default 8)\n"
    "  --chunk N              questions per committed chunk (default 16)\n"
    "  --template NAME|FILE   prompt template (default vicuna_v1)\n"
    "  --preprocess pad|crop  image preprocessing (default pad)\n"
    "  --no-resume            discard chunks committed by an earlier run\n"
    "  --overwrite            replace answers that belong to a different run\n"
    "  --progress-seconds S   progress line interval (default 5)\n"
    "  --quiet, --verbose, --help, --version\n"
    "\n"
    "The judge's key is read from SIMA_JUDGE_API_KEY.\n"
    "Exit status: 0 scored, 1 error, 2 bad usage, 3 interrupted after committing\n"
    "finished chunks: rerun the same command.\n";

/* ----------------------------------------------------------- options -- */

static bench_judge_mode parse_judge(tool_ctx *t, const char *s)
{
    static const char *const names[] = {"none", "online", "write-requests", "read-replies"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return (bench_judge_mode)i;
    tool_usage_error(t, "--judge: expected none, online, write-requests or read-replies, got '%s'",
                     s);
}

/* --suite: every name must be one the readers know, or "all". */
static void check_suites(tool_ctx *t, const char *list)
{
    char *copy = xstrdup(list);
    for (char *save = NULL, *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        bool known = strcmp(s, "all") == 0;
        for (const char *const *n = bench_source_names(); *n && !known; n++)
            known = strcmp(s, *n) == 0;
        if (!known) tool_usage_error(t, "--suite: unknown benchmark '%s'", s);
    }
    free(copy);
}

static void check_args(tool_ctx *t, bench_args *a, int judge_set)
{
    if (!a->model || !a->out) tool_usage_error(t, "--model and --out are required");
    if (!a->questions == !a->suites)
        tool_usage_error(t, "give either --questions FILE or --suite LIST with --data-root DIR");
    if (a->suites && !a->data_root) tool_usage_error(t, "--suite needs --data-root DIR");
    if (a->suites) check_suites(t, a->suites);
    if (strcmp(a->preprocess, "pad") && strcmp(a->preprocess, "crop"))
        tool_usage_error(t, "--preprocess: expected pad or crop, got '%s'", a->preprocess);
    const char *url = getenv("SIMA_JUDGE_URL");
    if (!judge_set) a->judge = url && url[0] ? BENCH_JUDGE_ONLINE : BENCH_JUDGE_NONE;
    if (a->judge == BENCH_JUDGE_READ_REPLIES && !a->judge_replies)
        tool_usage_error(t, "--judge read-replies needs --judge-replies FILE");
    if (a->judge_replies && a->judge != BENCH_JUDGE_READ_REPLIES)
        tool_usage_error(t, "--judge-replies goes with --judge read-replies");
    if (!a->judge_model) a->judge_model = getenv("SIMA_JUDGE_MODEL");
}

static void parse_args(tool_ctx *t, int argc, char **argv, bench_args *a)
{
    *a = (bench_args){.template_name = "vicuna_v1", .preprocess = "pad", .limit = INT64_MAX,
                      .batch = 8, .chunk = 16, .resume = 1, .progress_s = 5.0};
    enum { O_LIMIT = 256, O_MAXNEW, O_BATCH, O_CHUNK, O_TEMPLATE, O_PRE, O_NORESUME,
           O_OVERWRITE, O_PROGRESS, O_ADAPTER, O_SUITE, O_ROOT, O_SYN, O_JUDGE, O_REPLIES,
           O_JMODEL, O_JRATE };
    static struct option opts[] = {
        TOOL_COMMON_OPTIONS,
        {"model", required_argument, 0, 'm'}, {"questions", required_argument, 0, 'Q'},
        {"out", required_argument, 0, 'o'}, {"limit", required_argument, 0, O_LIMIT},
        {"max-new-tokens", required_argument, 0, O_MAXNEW},
        {"batch", required_argument, 0, O_BATCH}, {"chunk", required_argument, 0, O_CHUNK},
        {"template", required_argument, 0, O_TEMPLATE},
        {"preprocess", required_argument, 0, O_PRE},
        {"no-resume", no_argument, 0, O_NORESUME}, {"overwrite", no_argument, 0, O_OVERWRITE},
        {"progress-seconds", required_argument, 0, O_PROGRESS},
        {"adapter", required_argument, 0, O_ADAPTER}, {"suite", required_argument, 0, O_SUITE},
        {"data-root", required_argument, 0, O_ROOT},
        {"chair-synonyms", required_argument, 0, O_SYN},
        {"judge", required_argument, 0, O_JUDGE},
        {"judge-replies", required_argument, 0, O_REPLIES},
        {"judge-model", required_argument, 0, O_JMODEL},
        {"judge-rate", required_argument, 0, O_JRATE}, {0, 0, 0, 0}};
    int c, judge_set = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vqhVm:o:", opts, NULL)) != -1) {
        if (tool_common_option(t, c, USAGE)) continue;
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'Q': a->questions = optarg; break;
        case 'o': a->out = optarg; break;
        case O_LIMIT: a->limit = tool_parse_int(t, "--limit", optarg, 1, INT64_MAX); break;
        case O_MAXNEW: a->max_new = (int)tool_parse_int(t, "--max-new-tokens", optarg, 1, 1 << 20); break;
        case O_BATCH: a->batch = (int)tool_parse_int(t, "--batch", optarg, 1, 4096); break;
        case O_CHUNK: a->chunk = (int)tool_parse_int(t, "--chunk", optarg, 1, 1 << 20); break;
        case O_TEMPLATE: a->template_name = optarg; break;
        case O_PRE: a->preprocess = optarg; break;
        case O_NORESUME: a->resume = 0; break;
        case O_OVERWRITE: a->overwrite = 1; break;
        case O_PROGRESS:
            a->progress_s = (double)tool_parse_int(t, "--progress-seconds", optarg, 0, 1000000);
            break;
        case O_ADAPTER: a->adapter = optarg; break;
        case O_SUITE: a->suites = optarg; break;
        case O_ROOT: a->data_root = optarg; break;
        case O_SYN: a->chair_synonyms = optarg; break;
        case O_JUDGE: a->judge = parse_judge(t, optarg); judge_set = 1; break;
        case O_REPLIES: a->judge_replies = optarg; break;
        case O_JMODEL: a->judge_model = optarg; break;
        case O_JRATE: a->judge_rate = tool_parse_real(t, "--judge-rate", optarg, 0, 1e6); break;
        default: tool_usage_error(t, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc) tool_usage_error(t, "unexpected argument '%s'", argv[optind]);
    check_args(t, a, judge_set);
}

/* ----------------------------------------------------------- answers -- */

static void push_bytes(char **buf, size_t *total, const char *s, size_t n)
{
    *buf = realloc(*buf, *total + n + 1);
    if (!*buf) DIE("out of memory");
    memcpy(*buf + *total, s, n);
    *total += n;
    (*buf)[*total] = '\0';
}

static void grow_rows(answer_rows *r)
{
    r->cap = r->cap ? 2 * r->cap : 64;
    size_t sz = sizeof(int64_t) * (size_t)r->cap;
    r->row = realloc(r->row, sz);
    r->bench_len = realloc(r->bench_len, sz);
    r->id_len = realloc(r->id_len, sz);
    r->text_len = realloc(r->text_len, sz);
    r->tokens = realloc(r->tokens, sz);
    if (!r->row || !r->bench_len || !r->id_len || !r->text_len || !r->tokens)
        DIE("out of memory");
}

static void answers_push(answer_rows *r, int64_t row, const char *bench, size_t bench_len,
                         const char *id, size_t id_len, const char *text, size_t text_len,
                         int64_t tokens)
{
    if (r->n == r->cap) grow_rows(r);
    r->row[r->n] = row;
    r->bench_len[r->n] = (int64_t)bench_len;
    r->id_len[r->n] = (int64_t)id_len;
    r->text_len[r->n] = (int64_t)text_len;
    r->tokens[r->n] = tokens;
    r->n++;
    push_bytes(&r->benches, &r->benches_total, bench, bench_len);
    push_bytes(&r->ids, &r->ids_total, id, id_len);
    push_bytes(&r->text, &r->text_total, text, text_len);
}

void ba_free(answer_rows *r)
{
    free(r->row);
    free(r->bench_len);
    free(r->id_len);
    free(r->text_len);
    free(r->tokens);
    free(r->benches);
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static int answers_write(h5io_file *f, const answer_rows *r)
{
    int rc = h5io_write_column(f, "/answers/question_row", H5IO_I64, r->n, 1, r->row);
    if (rc == 0) rc = h5io_write_column(f, "/answers/new_tokens", H5IO_I64, r->n, 1, r->tokens);
    if (rc == 0)
        rc = h5io_write_ragged(f, "/answers/benchmark", H5IO_TEXT, r->n, r->bench_len,
                               r->benches);
    if (rc == 0)
        rc = h5io_write_ragged(f, "/answers/question_id", H5IO_TEXT, r->n, r->id_len, r->ids);
    if (rc == 0)
        rc = h5io_write_ragged(f, "/answers/text", H5IO_TEXT, r->n, r->text_len, r->text);
    return rc;
}

/* One ragged text column of n rows: offsets [n+1] and *data (malloc'd). */
static int read_text(h5io_file *f, const char *path, int64_t n, int64_t **off, char **data)
{
    *off = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    *data = NULL;
    (*off)[0] = 0;
    return n ? h5io_read_ragged(f, path, H5IO_TEXT, 0, n, *off, (void **)data) : 0;
}

int ba_read(h5io_file *f, void *acc)
{
    answer_rows *r = acc;
    int64_t n = h5io_rows(f, "/answers/question_row");
    if (n < 0) return -1;
    int64_t *row = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int64_t *tok = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int64_t *bo = NULL, *ido = NULL, *txo = NULL;
    char *benches = NULL, *ids = NULL, *text = NULL;
    int rc = n ? h5io_read_column(f, "/answers/question_row", H5IO_I64, 0, n, row) : 0;
    if (rc == 0 && n) rc = h5io_read_column(f, "/answers/new_tokens", H5IO_I64, 0, n, tok);
    if (rc == 0) rc = read_text(f, "/answers/benchmark", n, &bo, &benches);
    if (rc == 0) rc = read_text(f, "/answers/question_id", n, &ido, &ids);
    if (rc == 0) rc = read_text(f, "/answers/text", n, &txo, &text);
    for (int64_t i = 0; rc == 0 && i < n; i++)
        answers_push(r, row[i], benches + bo[i], (size_t)(bo[i + 1] - bo[i]), ids + ido[i],
                     (size_t)(ido[i + 1] - ido[i]), text + txo[i],
                     (size_t)(txo[i + 1] - txo[i]), tok[i]);
    free(row);
    free(tok);
    free(bo);
    free(ido);
    free(txo);
    free(benches);
    free(ids);
    free(text);
    return rc;
}

/* -------------------------------------------------------- generation -- */

typedef struct {
    const bench_args *a;
    tool_ctx *t;
    const question_set *qs;
    sess_model s;
    chat_template tpl;
    chk_plan plan;
    chk_progress progress;
} run_ctx;

/* A question's image: its file, or its embedded base64 bytes (MMBench). */
static int load_image(const question *q, img_rgb8 *im)
{
    if (q->image) return img_load(q->image, im);
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = bq_base64_decode(q->image_b64, &buf, &len);
    if (rc == 0) rc = img_decode(buf, len, "image_base64", im);
    free(buf);
    return rc;
}

/* Token ids and pixels [3, S, S] of one question. */
static int load_input(run_ctx *g, const question *q, tok_ids *ids, float **pixels)
{
    memset(ids, 0, sizeof *ids);
    *pixels = NULL;
    img_rgb8 im = {0};
    int rc = load_image(q, &im);
    if (rc == 0) {
        *pixels = xmalloc(sizeof(float) * 3 * (size_t)g->s.pc.crop_w * (size_t)g->s.pc.crop_h);
        rc = img_preprocess(&im, &g->s.pc, g->s.mode, *pixels);
    }
    img_free(&im);
    char *prompt = rc == 0 ? bq_prompt(q) : NULL;
    if (rc == 0)
        rc = chat_prompt_ids(&g->tpl, g->s.tok, prompt, true, g->s.m->cfg.image_token_index,
                             g->s.m->image_tokens, ids);
    free(prompt);
    if (rc != 0) err_context("%s question %s", q->bench, q->id);
    return rc;
}

static int on_step(void *ctx)
{
    run_ctx *g = ctx;
    chk_progress_tick(&g->progress);
    return tool_interrupted();
}

/* Answers one chunk greedily in one engine call and commits its part. */
static int run_chunk(run_ctx *g, int64_t chunk)
{
    int64_t first, n;
    chk_items(&g->plan, chunk, &first, &n);
    gen_request *req = xcalloc((size_t)n, sizeof *req);
    gen_output *out = xcalloc((size_t)n, sizeof *out);
    tok_ids *ids = xcalloc((size_t)n, sizeof *ids);
    float **pix = xcalloc((size_t)n, sizeof *pix);
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        const question *q = &g->qs->q[first + i];
        rc = load_input(g, q, &ids[i], &pix[i]);
        req[i] = (gen_request){ids[i].ids, (int64_t)ids[i].n, pix[i], 1, {0.0f, 1.0f, 0},
                               0, bq_max_new(g->a, q->bench), -1};
    }
    if (rc == 0) {
        gen_options opt;
        gen_options_default(&opt);
        opt.max_batch = g->a->batch;
        opt.on_step = on_step;
        opt.ctx = g;
        rc = gen_generate(g->s.m, req, (int)n, &opt, out);
    }
    /* stopped by a signal: outputs are incomplete, nothing is committed */
    bool stopped = rc == 0 && tool_interrupted();
    answer_rows rows = {0};
    int64_t tokens = 0;
    for (int64_t i = 0; rc == 0 && !stopped && i < n; i++) {
        char *text = NULL;
        size_t len = 0;
        const question *q = &g->qs->q[first + i];
        rc = tok_decode(g->s.tok, out[i].tokens, (size_t)out[i].n, true, &text, &len);
        if (rc == 0)
            answers_push(&rows, first + i, q->bench, strlen(q->bench), q->id, strlen(q->id),
                         text, len, out[i].n);
        tokens += out[i].n;
        free(text);
    }
    h5io_file f;
    if (rc == 0 && !stopped && (rc = chk_part_create(&g->plan, chunk, &f)) == 0) {
        rc = answers_write(&f, &rows);
        if (rc == 0) rc = chk_part_commit(&g->plan, &f);
        else h5io_abandon(&f);
        if (rc == 0) chk_progress_add(&g->progress, n, tokens);
    }
    ba_free(&rows);
    for (int64_t i = 0; i < n; i++) {
        gen_output_free(&out[i]);
        tok_ids_free(&ids[i]);
        free(pix[i]);
    }
    free(req);
    free(out);
    free(ids);
    free(pix);
    return rc;
}

/* This rank's share of the pending chunks: every size-th. */
static int run_my_chunks(run_ctx *g, const int64_t *pending, int64_t n_pending)
{
    int rc = 0;
    for (int64_t i = g->t->rank; rc == 0 && i < n_pending && !tool_interrupted(); i += g->t->size)
        rc = run_chunk(g, pending[i]);
    return rc;
}

/* All ranks: write OUT/answers.h5 from the committed parts. */
static void assemble_answers(run_ctx *g, const char *path, const char *model_hash)
{
    tool_ctx *t = g->t;
    answer_rows rows = {0};
    chk_read_my_block(t, &g->plan, ba_read, &rows);
    h5io_file f;
    int rc = h5io_create(&f, path, MPI_COMM_WORLD);
    tool_agree(t, rc);
    const char *inputs[] = {g->a->questions ? g->a->questions : g->a->data_root};
    h5io_provenance prov = {t->name, ANS_SCHEMA, ANS_SCHEMA_VERSION, t->argc, t->argv, inputs,
                            1, g->a->model, model_hash, -1, g->plan.run_key};
    rc = answers_write(&f, &rows);
    if (rc == 0) rc = h5io_write_provenance(&f, &prov);
    if (rc == 0) rc = h5io_set_attr_str(&f, "/", "adapter", g->a->adapter ? g->a->adapter : "");
    ba_free(&rows);
    if (rc != 0) {
        h5io_abandon(&f);
        tool_agree(t, rc);
    }
    tool_agree(t, h5io_commit(&f));
    chk_remove_parts(t, &g->plan);
}

/* ---------------------------------------------------------------- main -- */

/* Everything that determines the answers, as one canonical string. */
static char *settings_string(const bench_args *a, const char *model_hash,
                             const char *adapter_hash, const question_set *qs)
{
    char *table = bq_max_new_table();
    char *s = NULL;
    if (asprintf(&s,
                 "model_hash=%s adapter=%s questions=%016llx n=%lld max_new_tokens=%d "
                 "per_benchmark=%s template=%s preprocess=%s chunk=%d",
                 model_hash, adapter_hash, (unsigned long long)qs->hash, (long long)qs->n,
                 a->max_new, table, a->template_name, a->preprocess, a->chunk) < 0)
        DIE("out of memory");
    free(table);
    return s;
}

/* Answers every pending chunk, then assembles OUT/answers.h5. Returns
 * TOOL_INTERRUPTED when a signal stopped the job, else TOOL_OK (errors end
 * the job). */
static int answer_all(run_ctx *g, const char *answers_path, const char *model_hash,
                      const int64_t *pending, int64_t n_pending)
{
    tool_ctx *t = g->t;
    const bench_args *a = g->a;
    int rc = sess_load(a->model, a->preprocess, &g->s);
    if (rc == 0 && a->adapter) rc = sess_attach_adapter(&g->s, a->adapter);
    tool_agree(t, rc);
    int64_t n = g->qs->n, todo = chk_pending_items(&g->plan, pending, n_pending);
    log_info("%lld questions in %lld chunks, %lld already answered; %d rank%s", (long long)n,
             (long long)g->plan.n_chunks, (long long)(n - todo), t->size, t->size > 1 ? "s" : "");
    chk_progress_init(&g->progress, t, "questions", "new tokens/s", a->progress_s, todo,
                      n - todo);
    rc = run_my_chunks(g, pending, n_pending);
    if (rc != 0) tool_abort(t);
    int64_t items, tokens;
    chk_progress_finish(&g->progress, &items, &tokens);
    if (tool_any_interrupted(t)) {
        log_info("interrupted: answered chunks are committed in %s; rerun the same command",
                 g->plan.parts_dir);
        return TOOL_INTERRUPTED;
    }
    if (!chk_all_committed(t, &g->plan))
        rc = ERR("%s: chunks are missing after generation", g->plan.parts_dir);
    tool_agree(t, rc);
    assemble_answers(g, answers_path, model_hash);
    sess_free(&g->s);
    return TOOL_OK;
}

int main(int argc, char **argv)
{
    tool_ctx t;
    tool_init(&t, &argc, &argv, "sima-bench");
    if (argc > 1 && strcmp(argv[1], "compare") == 0)
        return tool_finish(&t, bc_main(&t, argc - 1, argv + 1));
    bench_args a;
    parse_args(&t, argc, argv, &a);
    h5u_init();
    tool_catch_signals();

    run_ctx g;
    memset(&g, 0, sizeof g);
    g.a = &a;
    g.t = &t;
    question_set qs = {0};
    bench_scorer *scorer = NULL;
    char *model_hash = h5io_model_hash(a.model);
    char *adapter_hash = model_hash ? sess_adapter_hash(a.adapter) : NULL;
    int rc = adapter_hash ? 0 : -1;
    if (rc == 0) rc = bq_load(&a, &qs);
    if (rc == 0) rc = chat_template_load(a.template_name, &g.tpl);
    if (rc == 0 && t.rank == 0) rc = bs_prepare(&a, &qs, &scorer);
    if (rc == 0 && t.rank == 0 && mkdir(a.out, 0777) != 0 && errno != EEXIST)
        rc = ERR("%s: cannot create: %s", a.out, strerror(errno));
    tool_agree(&t, rc);
    g.qs = &qs;

    /* the run's identity; the template's text too (a user may edit it) */
    char *settings = settings_string(&a, model_hash, adapter_hash, &qs);
    char key[17];
    chk_run_key(key, (const char *const[]){settings, g.tpl.text}, 2);
    char *answers_path = fs_join(a.out, "answers.h5");
    chk_plan_init(&g.plan, answers_path, ANS_SCHEMA, ANS_SCHEMA_VERSION, qs.n, a.chunk, key,
                  a.resume, a.overwrite);
    bool done = false;
    int64_t *pending = NULL, n_pending = 0;
    chk_prepare(&t, &g.plan, &done, &pending, &n_pending);
    if (!done) {
        if (answer_all(&g, answers_path, model_hash, pending, n_pending) != TOOL_OK)
            return tool_finish(&t, TOOL_INTERRUPTED);
    } else {
        log_info("%s is already complete for this run; scoring it", answers_path);
    }
    rc = t.rank == 0 ? bs_score_all(scorer, &t, &a, &qs, answers_path, model_hash, adapter_hash,
                                    key)
                     : 0;
    tool_agree(&t, rc);
    bs_free(scorer);
    free(pending);
    free(settings);
    free(answers_path);
    free(model_hash);
    free(adapter_hash);
    bq_free(&qs);
    chat_template_free(&g.tpl);
    chk_plan_free(&g.plan);
    return tool_finish(&t, TOOL_OK);
}
