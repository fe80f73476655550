/* sima-bench — run a model over benchmark questions and score its answers
 * with the official rules (libcommon/bench/).
 *
 *   mpirun -np N sima-bench --model DIR (--questions Q.jsonl | --suite LIST
 *                           --data-root DIR) --out RESULTS_DIR [options]
 *   sima-bench score (--questions Q.jsonl | --suite LIST --data-root DIR)
 *                    --answers A.jsonl --out RESULTS_DIR [options]
 *   sima-bench compare A/ B/ [--json FILE]
 *
 * Questions come from a JSONL file (data/benchmarks/README.md) or from the
 * official release files (bench_source.h), read by rank 0 and passed to
 * the other ranks; questions whose image is missing are left out and
 * counted. Answering runs on the stage driver of sima-gen (io/stage.h):
 * data-parallel and resumable, the questions cut into chunks, the ranks
 * sharing the unfinished ones, each finished chunk committed at once in
 * OUT/answers.h5.parts/; a killed job loses only chunks in flight and a
 * rerun finishes. When every chunk exists the ranks assemble OUT/answers.h5
 * (already complete: it is scored again as it is), then rank 0 joins the answers to the questions by (benchmark, question
 * id), never by file order, scores them (sima-bench-score.c) and writes
 * OUT/results.json, OUT/samples.jsonl and OUT/samples.h5. Decoding is greedy,
 * with LLaVA-1.5's per-benchmark answer lengths.
 */
#define _GNU_SOURCE
#include "sima-bench.h"

#include "bench_source.h"
#include "chat.h"
#include "err.h"
#include "fs.h"
#include "generate.h"
#include "h5io.h"
#include "h5util.h"
#include "image.h"
#include "llava.h"
#include "log.h"
#include "session.h"
#include "stage.h"
#include "tokenizer.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ANS_SCHEMA "sima.bench_answers"
#define ANS_SCHEMA_VERSION 2

static const char USAGE[] =
    "usage: mpirun -np N sima-bench --model DIR --questions Q.jsonl --out DIR [options]\n"
    "       mpirun -np N sima-bench --model DIR --suite LIST --data-root DIR --out DIR [options]\n"
    "       sima-bench score --questions Q.jsonl --answers A.jsonl --out DIR [options]\n"
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
    SESS_DEVICE_USAGE
    "  --no-resume            discard chunks committed by an earlier run\n"
    "  --overwrite            replace answers that belong to a different run\n"
    "  --progress-seconds S   progress line interval (default 5)\n"
    "  --quiet, --verbose, --help, --version\n"
    "\n"
    "The judge's key is read from SIMA_JUDGE_API_KEY.\n"
    "Exit status: 0 scored, 1 error, 2 bad usage, 3 interrupted after committing\n"
    "finished chunks: rerun the same command.\n";

/* ----------------------------------------------------------- options -- */

bench_judge_mode bench_parse_judge(tool_ctx *t, const char *s)
{
    static const char *const names[] = {"none", "online", "write-requests", "read-replies"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return (bench_judge_mode)i;
    tool_usage_error(t, "--judge: expected none, online, write-requests or read-replies, got '%s'",
                     s);
}

/* --suite: every name must be one the readers know, or "all". */
void bench_check_suites(tool_ctx *t, const char *list)
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
    if (a->suites) bench_check_suites(t, a->suites);
    if (strcmp(a->preprocess, "pad") && strcmp(a->preprocess, "crop"))
        tool_usage_error(t, "--preprocess: expected pad or crop, got '%s'", a->preprocess);
    bench_check_judge(t, a, judge_set);
}

void bench_check_judge(tool_ctx *t, bench_args *a, int judge_set)
{
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
    sess_device_default(t, &a->dev);
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
        {"judge-rate", required_argument, 0, O_JRATE}, SESS_DEVICE_OPTIONS, {0, 0, 0, 0}};
    int c, judge_set = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vqhVm:o:", opts, NULL)) != -1) {
        if (tool_common_option(t, c, USAGE)) continue;
        if (sess_device_option(t, &a->dev, c, optarg)) continue;
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
        case O_JUDGE: a->judge = bench_parse_judge(t, optarg); judge_set = 1; break;
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

/* The /answers group (schema sima.bench_answers, data/benchmarks/README.md). */
static const cols_col BA_COLS[] = {
    {"question_row", H5IO_I64, COLS_FIXED, offsetof(answer_rows, row), 0, 0, 0, NULL},
    {"new_tokens", H5IO_I64, COLS_FIXED, offsetof(answer_rows, tokens), 0, 0, 0, NULL},
    COLS_LEN(answer_rows, "benchmark", H5IO_TEXT, benches, bench_len, benches_total, benches_cap),
    COLS_LEN(answer_rows, "question_id", H5IO_TEXT, ids, id_len, ids_total, ids_cap),
    COLS_LEN(answer_rows, "text", H5IO_TEXT, text, text_len, text_total, text_cap),
};
static const cols_table BA_TABLE = {"/answers", BA_COLS, (int)(sizeof BA_COLS / sizeof BA_COLS[0]),
                                    offsetof(answer_rows, n), offsetof(answer_rows, cap),
                                    sizeof(answer_rows)};

int ba_read(h5io_file *f, answer_rows *r) { return cols_read(f, &BA_TABLE, r); }
void ba_free(answer_rows *r) { cols_free(&BA_TABLE, r); }

/* Append n bytes of s to a text column (kept NUL-terminated). */
static void push_text(char **buf, int64_t *total, int64_t *cap, const char *s, int64_t n)
{
    cols_reserve((void **)buf, cap, *total + n + 1, 1);
    memcpy(*buf + *total, s, (size_t)n);
    *total += n;
    (*buf)[*total] = '\0';
}

void ba_push(answer_rows *r, int64_t row, const char *bench, const char *id, const char *text,
             int64_t text_len, int64_t tokens)
{
    cols_grow_rows(&BA_TABLE, r, r->n + 1);
    int64_t i = r->n++;
    r->row[i] = row;
    r->tokens[i] = tokens;
    r->bench_len[i] = (int64_t)strlen(bench);
    r->id_len[i] = (int64_t)strlen(id);
    r->text_len[i] = text_len;
    push_text(&r->benches, &r->benches_total, &r->benches_cap, bench, r->bench_len[i]);
    push_text(&r->ids, &r->ids_total, &r->ids_cap, id, r->id_len[i]);
    push_text(&r->text, &r->text_total, &r->text_cap, text, text_len);
}

/* -------------------------------------------------------- generation -- */

typedef struct {
    const bench_args *a;
    const question_set *qs;
    sess_model s;
    chat_template tpl;
    stage *st;              /* chunks of the questions, progress */
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
    chk_progress_tick(&g->st->progress);
    return tool_interrupted();
}

/* The answer rows of questions first .. first + n from the engine's outputs. */
static int decode_answers(run_ctx *g, int64_t first, int64_t n, const gen_output *out,
                          answer_rows *rows, int64_t *tokens)
{
    int rc = 0;
    *tokens = 0;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        char *text = NULL;
        size_t len = 0;
        rc = tok_decode(g->s.tok, out[i].tokens, (size_t)out[i].n, true, &text, &len);
        if (rc == 0) {
            const question *q = &g->qs->q[first + i];
            ba_push(rows, first + i, q->bench, q->id, text, (int64_t)len, out[i].n);
        }
        *tokens += out[i].n;
        free(text);
    }
    return rc;
}

/* Answers one chunk greedily in one engine call (the same batches whatever
 * rank runs it) and commits its part. */
static int bench_run_chunk(void *ctx, stage *st, int64_t chunk, bool *stop)
{
    run_ctx *g = ctx;
    int64_t first, n;
    chk_items(&st->plan, chunk, &first, &n);
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
    *stop = rc == 0 && tool_interrupted();
    answer_rows rows = {0};
    int64_t tokens = 0;
    if (rc == 0 && !*stop) rc = decode_answers(g, first, n, out, &rows, &tokens);
    if (rc == 0 && !*stop && (rc = stage_commit_part(st, chunk, &rows)) == 0)
        chk_progress_add(&st->progress, n, tokens);
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

static int bench_load(void *ctx, stage *st)
{
    run_ctx *g = ctx;
    (void)st;
    int rc = sess_load(g->a->model, g->a->preprocess, &g->a->dev, &g->s);
    if (rc == 0 && g->a->adapter) rc = sess_attach_adapter(&g->s, g->a->adapter);
    return rc;
}

static void bench_announce(void *ctx, const stage *st)
{
    run_ctx *g = ctx;
    log_info("%lld questions in %lld chunks, %lld already answered; %d rank%s",
             (long long)g->qs->n, (long long)st->plan.n_chunks,
             (long long)(st->plan.n_chunks - st->n_pending), st->t->size,
             st->t->size > 1 ? "s" : "");
}

/* The adapter as a root attribute of answers.h5 (collective). */
static int bench_write_attrs(void *ctx, stage *st, h5io_file *f)
{
    const bench_args *a = ((run_ctx *)ctx)->a;
    (void)st;
    return h5io_set_attr_str(f, "/", "adapter", a->adapter ? a->adapter : "");
}

static void bench_summary(void *ctx, const stage *st)
{
    run_ctx *g = ctx;
    double el = MPI_Wtime() - st->t->t0;
    char b[32];
    log_info("answered %lld questions, %lld new tokens in %s; scoring them", (long long)g->qs->n,
             (long long)st->tokens, tool_duration(el, b));
}

static const stage_ops BENCH_OPS = {bench_load, bench_announce, bench_run_chunk,
                                    bench_write_attrs, bench_summary, NULL};

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

/* What every rank needs before the answers besides the questions: the
 * template, and on rank 0 the scorer's tables and the results folder. */
static int prepare(tool_ctx *t, const bench_args *a, run_ctx *g, const question_set *qs,
                   bench_scorer **scorer)
{
    int rc = chat_template_load(a->template_name, &g->tpl);
    if (rc == 0 && t->rank == 0) rc = bs_prepare(a, qs, scorer);
    if (rc == 0 && t->rank == 0 && mkdir(a->out, 0777) != 0 && errno != EEXIST)
        rc = ERR("%s: cannot create: %s", a->out, strerror(errno));
    return rc;
}

int main(int argc, char **argv)
{
    tool_ctx t;
    tool_init(&t, &argc, &argv, "sima-bench");
    if (argc > 1 && strcmp(argv[1], "compare") == 0)
        return tool_finish(&t, bc_main(&t, argc - 1, argv + 1));
    if (argc > 1 && strcmp(argv[1], "score") == 0)
        return tool_finish(&t, bsa_main(&t, argc - 1, argv + 1));
    bench_args a;
    parse_args(&t, argc, argv, &a);
    h5u_init();
    tool_catch_signals();

    run_ctx g;
    memset(&g, 0, sizeof g);
    g.a = &a;
    question_set qs = {0};
    bench_scorer *scorer = NULL;
    char *model_hash = h5io_model_hash(a.model);
    char *adapter_hash = model_hash ? sess_adapter_hash(a.adapter) : NULL;
    tool_agree(&t, adapter_hash ? 0 : -1);
    bq_load(&t, &a, &qs);
    tool_agree(&t, prepare(&t, &a, &g, &qs, &scorer));
    g.qs = &qs;

    /* the run's identity; the template's text too (a user may edit it) */
    char *settings = settings_string(&a, model_hash, adapter_hash, &qs);
    tool_agree(&t, sess_key_device(&a.dev, &settings));
    const char *key_texts[] = {settings, g.tpl.text};
    const char *inputs[] = {a.questions ? a.questions : a.data_root};
    char *answers_path = fs_join(a.out, "answers.h5");
    stage_opts so = {a.model, a.questions, answers_path, a.preprocess, a.chunk, a.resume,
                     a.overwrite, a.progress_s};
    stage_spec spec = {&so, &BA_TABLE, ANS_SCHEMA, ANS_SCHEMA_VERSION, inputs, 1, model_hash, -1,
                       qs.n, key_texts, 2, "questions", "new tokens/s"};
    stage st;
    g.st = &st;
    int code = stage_run_then(&t, &spec, &BENCH_OPS, &g, &st, "scoring it");
    sess_free(&g.s);
    if (code == TOOL_OK) {
        int rc = t.rank == 0 ? bs_score_all(scorer, &t, &a, &qs, answers_path, model_hash,
                                            adapter_hash, st.plan.run_key)
                             : 0;
        tool_agree(&t, rc);
    }
    stage_free(&st);
    bs_free(scorer);
    free(settings);
    free(answers_path);
    free(model_hash);
    free(adapter_hash);
    bq_free(&qs);
    chat_template_free(&g.tpl);
    return tool_finish(&t, code);
}
