/* sima-bench — run a model over benchmark questions and score its answers
 * with the official rules (libcommon/bench/).
 *
 *   mpirun -np N sima-bench --model DIR --questions Q.jsonl --out RESULTS_DIR [options]
 *
 * This first runner reads questions in the JSONL fixture format of
 * data/benchmarks/README.md and scores POPE, MME, VQA-style soft accuracy,
 * GQA, ScienceQA, MMBench (circular) and SEED; judge-scored benchmarks are
 * answered and reported "not scored". CHAIR needs captions and COCO
 * annotations and is not wired in yet (its rule is in bench_chair.h).
 *
 * Generation is data-parallel and resumable like sima-gen (io/chunks.h):
 * the questions are cut into chunks; the ranks share the unfinished ones;
 * each finished chunk is committed at once in OUT/answers.h5.parts/; a
 * killed job loses only chunks in flight and a rerun finishes. When every
 * chunk exists the ranks assemble OUT/answers.h5, then rank 0 joins the
 * answers to the questions by question id (never by file order), scores
 * them and writes OUT/results.json and OUT/samples.jsonl. Decoding is
 * greedy, as in LLaVA-1.5's evaluation.
 */
#define _GNU_SOURCE
#include "bench_choice.h"
#include "bench_judge.h"
#include "bench_vqa.h"
#include "bench_yesno.h"
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
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ANS_SCHEMA "sima.bench_answers"
#define ANS_SCHEMA_VERSION 1

/* LLaVA-1.5's short-answer instruction (POPE, MME, VQAv2, GQA, TextVQA). */
static const char SHORT_ANSWER[] = "\nAnswer the question using a single word or phrase.";
/* LLaVA-1.5's multiple-choice instruction (ScienceQA, MMBench, SEED). */
static const char CHOICE_ANSWER[] =
    "\nAnswer with the option's letter from the given choices directly.";

static const char USAGE[] =
    "usage: mpirun -np N sima-bench --model DIR --questions Q.jsonl --out DIR [options]\n"
    "\n"
    "Answer benchmark questions (data-parallel, resumable) and score the answers\n"
    "with the official rules. Benchmarks: pope, mme, vqa, gqa, scienceqa, mmbench,\n"
    "seed; judge-scored ones (llava_bench, mmvet, mmhal, mementos) are answered\n"
    "and reported \"not scored\".\n"
    "\n"
    "  --model DIR            LLaVA model folder\n"
    "  --questions FILE       questions, JSON lines (data/benchmarks/README.md)\n"
    "  --out DIR              results folder: answers.h5, results.json, samples.jsonl\n"
    "  --limit N              only the first N questions\n"
    "  --max-new-tokens N     longest answer (default 128)\n"
    "  --batch N              sequences decoded together per rank (default 8)\n"
    "  --chunk N              questions per committed chunk (default 16)\n"
    "  --template NAME|FILE   prompt template (default vicuna_v1)\n"
    "  --preprocess pad|crop  image preprocessing (default pad)\n"
    "  --no-resume            discard chunks committed by an earlier run\n"
    "  --overwrite            replace answers that belong to a different run\n"
    "  --progress-seconds S   progress line interval (default 5)\n"
    "  --quiet, --verbose, --help, --version\n"
    "\n"
    "Exit status: 0 scored, 1 error, 2 bad usage, 3 interrupted after committing\n"
    "finished chunks: rerun the same command.\n";

typedef struct {
    const char *model, *questions, *out, *template_name, *preprocess;
    int64_t limit;
    int max_new, batch, chunk, resume, overwrite;
    double progress_s;
} bench_args;

/* ----------------------------------------------------------- options -- */

static void parse_args(tool_ctx *t, int argc, char **argv, bench_args *a)
{
    *a = (bench_args){NULL, NULL, NULL, "vicuna_v1", "pad", INT64_MAX, 128, 8, 16, 1, 0, 5.0};
    enum { O_LIMIT = 256, O_MAXNEW, O_BATCH, O_CHUNK, O_TEMPLATE, O_PRE, O_NORESUME,
           O_OVERWRITE, O_PROGRESS };
    static struct option opts[] = {
        TOOL_COMMON_OPTIONS,
        {"model", required_argument, 0, 'm'}, {"questions", required_argument, 0, 'Q'},
        {"out", required_argument, 0, 'o'}, {"limit", required_argument, 0, O_LIMIT},
        {"max-new-tokens", required_argument, 0, O_MAXNEW},
        {"batch", required_argument, 0, O_BATCH}, {"chunk", required_argument, 0, O_CHUNK},
        {"template", required_argument, 0, O_TEMPLATE},
        {"preprocess", required_argument, 0, O_PRE},
        {"no-resume", no_argument, 0, O_NORESUME}, {"overwrite", no_argument, 0, O_OVERWRITE},
        {"progress-seconds", required_argument, 0, O_PROGRESS}, {0, 0, 0, 0}};
    int c;
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
        default: tool_usage_error(t, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc) tool_usage_error(t, "unexpected argument '%s'", argv[optind]);
    if (!a->model || !a->questions || !a->out)
        tool_usage_error(t, "--model, --questions and --out are required");
    if (strcmp(a->preprocess, "pad") && strcmp(a->preprocess, "crop"))
        tool_usage_error(t, "--preprocess: expected pad or crop, got '%s'", a->preprocess);
}

/* --------------------------------------------------------- questions -- */

typedef struct {
    const char *id, *bench, *image, *question;
    const char *label, *split;   /* pope, mme (label) */
    const char *subtask;         /* mme */
    json_t *answers;             /* vqa: array of strings */
    const char *answer;          /* gqa: gold answer; choice benchmarks: gold letter */
    json_t *options;             /* choice benchmarks: option texts, A first */
    long long index;             /* mmbench: circular index (rotations: + k * 10^6) */
} question;

static bool is_bench(const question *q, const char *name)
{
    return strcmp(q->bench, name) == 0;
}

static bool is_choice(const question *q)
{
    return is_bench(q, "scienceqa") || is_bench(q, "mmbench") || is_bench(q, "seed");
}

typedef struct {
    json_t *lines;               /* array of the parsed objects (owns the strings) */
    question *q;
    int64_t n;
    char *dir;                   /* the questions file's folder */
} question_set;

/* Appends text to the malloc'd string *s of length *len. */
static void push_text(char **s, size_t *len, const char *text)
{
    size_t n = strlen(text);
    *s = realloc(*s, *len + n + 1);
    if (!*s) DIE("out of memory");
    memcpy(*s + *len, text, n + 1);
    *len += n;
}

static const char *get_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Checks one question's fields for its benchmark. */
static int check_question(const question *q, const char *path, int64_t line)
{
    if (!q->id || !q->bench || !q->image || !q->question)
        return ERR("%s: line %lld: question_id, benchmark, image and question are required",
                   path, (long long)line);
    if (is_bench(q, "pope") || is_bench(q, "mme")) {
        if (!q->label || (strcmp(q->label, "yes") && strcmp(q->label, "no")))
            return ERR("%s: line %lld: %s needs \"label\": \"yes\" or \"no\"", path,
                       (long long)line, q->bench);
        if (is_bench(q, "mme") && (!q->subtask || bench_mme_subtask_index(q->subtask) < 0))
            return ERR("%s: line %lld: mme needs \"subtask\", one of MME's 14", path,
                       (long long)line);
        return 0;
    }
    if (is_bench(q, "gqa")) {
        if (!q->answer)
            return ERR("%s: line %lld: gqa needs \"answer\"", path, (long long)line);
        return 0;
    }
    if (is_choice(q)) {
        size_t n = json_array_size(q->options), i;
        json_t *v;
        if (!json_is_array(q->options) || n < 2 || n > 26)
            return ERR("%s: line %lld: %s needs \"options\": 2 to 26 strings", path,
                       (long long)line, q->bench);
        json_array_foreach(q->options, i, v) if (!json_is_string(v))
            return ERR("%s: line %lld: \"options\" must hold strings", path, (long long)line);
        if (!q->answer || strlen(q->answer) != 1 || q->answer[0] < 'A' ||
            (size_t)(q->answer[0] - 'A') >= n)
            return ERR("%s: line %lld: %s needs \"answer\": the letter of an option", path,
                       (long long)line, q->bench);
        return 0;
    }
    if (strcmp(q->bench, "vqa") == 0) {
        size_t i;
        json_t *v;
        if (!json_is_array(q->answers) || json_array_size(q->answers) == 0)
            return ERR("%s: line %lld: vqa needs a non-empty \"answers\" array", path,
                       (long long)line);
        json_array_foreach(q->answers, i, v) if (!json_is_string(v))
            return ERR("%s: line %lld: \"answers\" must hold strings", path, (long long)line);
        return 0;
    }
    if (bench_is_judge_scored(q->bench))
        return 0;
    return ERR("%s: line %lld: unknown benchmark \"%s\"", path, (long long)line, q->bench);
}

/* Reads the JSONL questions (at most limit). Every rank reads the file. */
static int load_questions(const char *path, int64_t limit, question_set *qs)
{
    memset(qs, 0, sizeof *qs);
    char *text = NULL;
    size_t len = 0;
    if (fs_read_all(path, &text, &len) != 0) return -1;
    char *copy = xstrdup(path);
    qs->dir = xstrdup(dirname(copy));
    free(copy);
    qs->lines = json_array();
    int64_t line = 0;
    int rc = 0;
    for (char *p = text; rc == 0 && *p && qs->n < limit;) {
        char *e = strchr(p, '\n');
        if (e) *e = '\0';
        line++;
        if (strspn(p, " \t\r") != strlen(p)) {
            json_error_t je;
            json_t *o = json_loads(p, 0, &je);
            if (!json_is_object(o)) {
                json_decref(o);
                rc = ERR("%s: line %lld: not a JSON object (%s)", path, (long long)line, je.text);
                break;
            }
            json_array_append_new(qs->lines, o);
            qs->q = realloc(qs->q, sizeof *qs->q * (size_t)(qs->n + 1));
            if (!qs->q) DIE("out of memory");
            question *q = &qs->q[qs->n++];
            json_t *index = json_object_get(o, "index");
            *q = (question){get_str(o, "question_id"), get_str(o, "benchmark"),
                            get_str(o, "image"), get_str(o, "question"), get_str(o, "label"),
                            get_str(o, "split"), get_str(o, "subtask"),
                            json_object_get(o, "answers"), get_str(o, "answer"),
                            json_object_get(o, "options"),
                            json_is_integer(index) ? json_integer_value(index) : qs->n};
            rc = check_question(q, path, line);
        }
        p = e ? e + 1 : p + strlen(p);
    }
    free(text);
    if (rc == 0 && qs->n == 0) rc = ERR("%s: no questions", path);
    return rc;
}

static void free_questions(question_set *qs)
{
    json_decref(qs->lines);
    free(qs->q);
    free(qs->dir);
}

/* The prompt the model sees, as LLaVA-1.5's evaluation builds it: the
 * question, for multiple choice its options ("A. text" a line), then the
 * benchmark's instruction. */
static char *prompt_text(const question *q)
{
    char *s = xstrdup(q->question);
    size_t len = strlen(s);
    for (size_t i = 0; is_choice(q) && i < json_array_size(q->options); i++) {
        char *line = NULL;
        if (asprintf(&line, "\n%c. %s", (char)('A' + i),
                     json_string_value(json_array_get(q->options, i))) < 0)
            DIE("out of memory");
        push_text(&s, &len, line);
        free(line);
    }
    bool short_answer = is_bench(q, "pope") || is_bench(q, "mme") || is_bench(q, "vqa") ||
                        is_bench(q, "gqa");
    const char *suffix = short_answer ? SHORT_ANSWER : is_choice(q) ? CHOICE_ANSWER : "";
    /* LLaVA's converted question files already end with the instruction */
    size_t n = strlen(suffix);
    if (!(len >= n && strcmp(s + len - n, suffix) == 0))
        push_text(&s, &len, suffix);
    return s;
}

/* ----------------------------------------------------------- answers -- */

/* Answer rows: question row, question id, answer text. */
typedef struct {
    int64_t n, cap;
    int64_t *row, *id_len, *text_len, *tokens;
    char *ids, *text;
    size_t ids_total, text_total;
} answer_rows;

static void push_bytes(char **buf, size_t *total, const char *s, size_t n)
{
    *buf = realloc(*buf, *total + n + 1);
    if (!*buf) DIE("out of memory");
    memcpy(*buf + *total, s, n);
    *total += n;
    (*buf)[*total] = '\0';
}

static void answers_push(answer_rows *r, int64_t row, const char *id, size_t id_len,
                         const char *text, size_t text_len, int64_t tokens)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->row = realloc(r->row, sizeof(int64_t) * (size_t)r->cap);
        r->id_len = realloc(r->id_len, sizeof(int64_t) * (size_t)r->cap);
        r->text_len = realloc(r->text_len, sizeof(int64_t) * (size_t)r->cap);
        r->tokens = realloc(r->tokens, sizeof(int64_t) * (size_t)r->cap);
        if (!r->row || !r->id_len || !r->text_len || !r->tokens) DIE("out of memory");
    }
    r->row[r->n] = row;
    r->id_len[r->n] = (int64_t)id_len;
    r->text_len[r->n] = (int64_t)text_len;
    r->tokens[r->n] = tokens;
    r->n++;
    push_bytes(&r->ids, &r->ids_total, id, id_len);
    push_bytes(&r->text, &r->text_total, text, text_len);
}

static void answers_free(answer_rows *r)
{
    free(r->row);
    free(r->id_len);
    free(r->text_len);
    free(r->tokens);
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static int answers_write(h5io_file *f, const answer_rows *r)
{
    int rc = h5io_write_column(f, "/answers/question_row", H5IO_I64, r->n, 1, r->row);
    if (rc == 0) rc = h5io_write_column(f, "/answers/new_tokens", H5IO_I64, r->n, 1, r->tokens);
    if (rc == 0)
        rc = h5io_write_ragged(f, "/answers/question_id", H5IO_TEXT, r->n, r->id_len, r->ids);
    if (rc == 0)
        rc = h5io_write_ragged(f, "/answers/text", H5IO_TEXT, r->n, r->text_len, r->text);
    return rc;
}

/* Appends every row of an answers file (a part or the assembled file). */
static int answers_read(h5io_file *f, void *acc)
{
    answer_rows *r = acc;
    int64_t n = h5io_rows(f, "/answers/question_row");
    if (n < 0) return -1;
    int64_t *row = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int64_t *tok = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int64_t *ido = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t *txo = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    char *ids = NULL, *text = NULL;
    int rc = n ? h5io_read_column(f, "/answers/question_row", H5IO_I64, 0, n, row) : 0;
    if (rc == 0 && n) rc = h5io_read_column(f, "/answers/new_tokens", H5IO_I64, 0, n, tok);
    if (rc == 0 && n)
        rc = h5io_read_ragged(f, "/answers/question_id", H5IO_TEXT, 0, n, ido, (void **)&ids);
    if (rc == 0 && n)
        rc = h5io_read_ragged(f, "/answers/text", H5IO_TEXT, 0, n, txo, (void **)&text);
    for (int64_t i = 0; rc == 0 && i < n; i++)
        answers_push(r, row[i], ids + ido[i], (size_t)(ido[i + 1] - ido[i]), text + txo[i],
                     (size_t)(txo[i + 1] - txo[i]), tok[i]);
    free(row);
    free(tok);
    free(ido);
    free(txo);
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

/* Token ids and pixels of one question. */
static int load_input(run_ctx *g, const question *q, tok_ids *ids, float **pixels)
{
    memset(ids, 0, sizeof *ids);
    *pixels = NULL;
    char *path = q->image[0] == '/' ? xstrdup(q->image) : fs_join(g->qs->dir, q->image);
    img_rgb8 im = {0};
    int rc = img_load_jpeg(path, &im);
    if (rc == 0) {
        *pixels = xmalloc(sizeof(float) * 3 * (size_t)g->s.pc.crop_w * (size_t)g->s.pc.crop_h);
        rc = img_preprocess(&im, &g->s.pc, g->s.mode, *pixels);
    }
    img_free(&im);
    free(path);
    char *prompt = rc == 0 ? prompt_text(q) : NULL;
    if (rc == 0)
        rc = chat_prompt_ids(&g->tpl, g->s.tok, prompt, true, g->s.m->cfg.image_token_index,
                             g->s.m->image_tokens, ids);
    free(prompt);
    if (rc != 0) err_context("question %s", q->id);
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
        rc = load_input(g, &g->qs->q[first + i], &ids[i], &pix[i]);
        req[i] = (gen_request){ids[i].ids, (int64_t)ids[i].n, pix[i], 1, {0.0f, 1.0f, 0},
                               0, g->a->max_new, -1};
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
            answers_push(&rows, first + i, q->id, strlen(q->id), text, len, out[i].n);
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
    answers_free(&rows);
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
    chk_read_my_block(t, &g->plan, answers_read, &rows);
    h5io_file f;
    int rc = h5io_create(&f, path, MPI_COMM_WORLD);
    tool_agree(t, rc);
    const char *inputs[] = {g->a->questions};
    h5io_provenance prov = {t->name, ANS_SCHEMA, ANS_SCHEMA_VERSION, t->argc, t->argv, inputs,
                            1, g->a->model, model_hash, -1, g->plan.run_key};
    rc = answers_write(&f, &rows);
    if (rc == 0) rc = h5io_write_provenance(&f, &prov);
    answers_free(&rows);
    if (rc != 0) {
        h5io_abandon(&f);
        tool_agree(t, rc);
    }
    tool_agree(t, h5io_commit(&f));
    chk_remove_parts(t, &g->plan);
}

/* ----------------------------------------------------------- scoring -- */

typedef struct {
    const char *id;
    int64_t row;
} id_entry;

static int compare_ids(const void *a, const void *b)
{
    return strcmp(((const id_entry *)a)->id, ((const id_entry *)b)->id);
}

/* answer_of[question row] = answer row, joined by question id. Every
 * question must be answered exactly once; ids must be unique. */
static int join_by_id(const question_set *qs, const answer_rows *r, int64_t *answer_of)
{
    id_entry *idx = xmalloc(sizeof *idx * (size_t)qs->n);
    for (int64_t i = 0; i < qs->n; i++) idx[i] = (id_entry){qs->q[i].id, i};
    qsort(idx, (size_t)qs->n, sizeof *idx, compare_ids);
    int rc = 0;
    for (int64_t i = 1; rc == 0 && i < qs->n; i++)
        if (strcmp(idx[i].id, idx[i - 1].id) == 0)
            rc = ERR("question id \"%s\" appears twice", idx[i].id);
    for (int64_t i = 0; i < qs->n; i++) answer_of[i] = -1;
    size_t off = 0;
    for (int64_t a = 0; rc == 0 && a < r->n; a++) {
        id_entry key = {r->ids + off, 0};
        off += (size_t)r->id_len[a];
        char *id = strndup(key.id, (size_t)r->id_len[a]);
        key.id = id;
        id_entry *hit = bsearch(&key, idx, (size_t)qs->n, sizeof *idx, compare_ids);
        if (!hit) rc = ERR("answer %lld: unknown question id \"%s\"", (long long)a, id);
        else if (answer_of[hit->row] >= 0) rc = ERR("question \"%s\" answered twice", id);
        else answer_of[hit->row] = a;
        free(id);
    }
    for (int64_t i = 0; rc == 0 && i < qs->n; i++)
        if (answer_of[i] < 0) rc = ERR("question \"%s\" has no answer", qs->q[i].id);
    free(idx);
    return rc;
}

/* Per-benchmark accumulators. */
typedef struct {
    char split[32];
    bench_confusion c;
} pope_split;

typedef struct {
    pope_split splits[8];
    int n_splits;
    bench_confusion all;
    long pope_n, vqa_n;
    double vqa_sum;
    bench_mme_item *mme;              /* [mme_n] */
    long mme_n;
    long gqa_n, gqa_right;
    long sqa_n, sqa_right, seed_n, seed_right;
    long long *mmb_group;             /* [mmb_n] */
    bool *mmb_right;
    long mmb_n, mmb_cap, mme_cap;
    json_t *judge;   /* name -> answered count */
} score_acc;

static void push_mme(score_acc *s, const question *q, bool correct)
{
    if (s->mme_n == s->mme_cap) {
        s->mme_cap = s->mme_cap ? 2 * s->mme_cap : 64;
        s->mme = realloc(s->mme, sizeof *s->mme * (size_t)s->mme_cap);
        if (!s->mme) DIE("out of memory");
    }
    s->mme[s->mme_n++] = (bench_mme_item){bench_mme_subtask_index(q->subtask), q->image, correct};
}

static void push_mmbench(score_acc *s, const question *q, bool correct)
{
    if (s->mmb_n == s->mmb_cap) {
        s->mmb_cap = s->mmb_cap ? 2 * s->mmb_cap : 64;
        s->mmb_group = realloc(s->mmb_group, sizeof *s->mmb_group * (size_t)s->mmb_cap);
        s->mmb_right = realloc(s->mmb_right, sizeof *s->mmb_right * (size_t)s->mmb_cap);
        if (!s->mmb_group || !s->mmb_right) DIE("out of memory");
    }
    s->mmb_group[s->mmb_n] = bench_mmbench_group_of(q->index);
    s->mmb_right[s->mmb_n++] = correct;
}

/* Letter of a multiple-choice answer by its benchmark's official rule. */
static char choice_letter(const question *q, const char *answer)
{
    size_t n = json_array_size(q->options);
    if (is_bench(q, "scienceqa"))
        return bench_scienceqa_extract(answer, n);
    const char **texts = xmalloc(sizeof *texts * n);
    for (size_t i = 0; i < n; i++) texts[i] = json_string_value(json_array_get(q->options, i));
    char c = bench_choice_extract(answer, texts, n);
    free(texts);
    return c;
}

/* Scores a multiple-choice or MME or GQA answer (see score_one). */
static void score_other(score_acc *s, const question *q, const char *answer, json_t *sample)
{
    bool right;
    if (is_bench(q, "mme")) {
        bench_yn p = bench_mme_parse(answer);
        right = p == (strcmp(q->label, "yes") == 0 ? BENCH_YN_YES : BENCH_YN_NO);
        push_mme(s, q, right);
        json_object_set_new(sample, "extracted",
                            json_string(p == BENCH_YN_YES ? "yes" : p == BENCH_YN_NO ? "no" : "other"));
    } else if (is_bench(q, "gqa")) {
        char *norm = bench_gqa_normalize(answer);
        if (!norm) DIE("out of memory");
        right = strcmp(norm, q->answer) == 0;
        s->gqa_n++;
        s->gqa_right += right;
        json_object_set_new(sample, "extracted", json_string(norm));
        free(norm);
    } else {
        char c = choice_letter(q, answer);
        right = c == q->answer[0];
        if (is_bench(q, "mmbench")) push_mmbench(s, q, right);
        else if (is_bench(q, "scienceqa")) { s->sqa_n++; s->sqa_right += right; }
        else { s->seed_n++; s->seed_right += right; }
        char letter[2] = {c, '\0'};
        json_object_set_new(sample, "extracted", c ? json_string(letter) : json_null());
    }
    json_object_set_new(sample, "correct", json_boolean(right));
}

static bench_confusion *pope_split_of(score_acc *s, const char *name)
{
    for (int i = 0; i < s->n_splits; i++)
        if (strcmp(s->splits[i].split, name) == 0) return &s->splits[i].c;
    if (s->n_splits == 8) return NULL;
    pope_split *p = &s->splits[s->n_splits++];
    snprintf(p->split, sizeof p->split, "%s", name);
    return &p->c;
}

/* Scores one answer; fills the sample's extracted answer and score. */
static int score_one(score_acc *s, const question *q, const char *answer, json_t *sample)
{
    if (strcmp(q->bench, "pope") == 0) {
        bool yes = bench_pope_answer_is_yes(answer), label = strcmp(q->label, "yes") == 0;
        bench_confusion *c = pope_split_of(s, q->split ? q->split : "all");
        if (!c) return ERR("pope: more than 8 splits");
        bench_confusion_add(c, yes, label);
        bench_confusion_add(&s->all, yes, label);
        s->pope_n++;
        json_object_set_new(sample, "extracted", json_string(yes ? "yes" : "no"));
        json_object_set_new(sample, "correct", json_boolean(yes == label));
        return 0;
    }
    if (strcmp(q->bench, "vqa") == 0) {
        size_t n = json_array_size(q->answers);
        const char **gts = xmalloc(sizeof *gts * n);
        for (size_t i = 0; i < n; i++) gts[i] = json_string_value(json_array_get(q->answers, i));
        double acc = bench_vqa_soft_accuracy(answer, gts, n);
        char *norm = bench_vqa_normalize(answer);
        free(gts);
        if (acc < 0 || !norm) {
            free(norm);
            return ERR("vqa: out of memory");
        }
        s->vqa_sum += acc;
        s->vqa_n++;
        json_object_set_new(sample, "extracted", json_string(norm));
        json_object_set_new(sample, "score", json_real(acc));
        free(norm);
        return 0;
    }
    if (!bench_is_judge_scored(q->bench)) {
        score_other(s, q, answer, sample);
        return 0;
    }
    json_t *cnt = json_object_get(s->judge, q->bench);
    json_object_set_new(s->judge, q->bench, json_integer(cnt ? json_integer_value(cnt) + 1 : 1));
    json_object_set_new(sample, "score", json_null());
    return 0;
}

static json_t *pope_json(const bench_confusion *c)
{
    bench_pope_metrics m = bench_pope_metrics_of(c);
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "samples", (json_int_t)m.n, "accuracy",
                     m.accuracy, "precision", m.precision, "recall", m.recall, "f1", m.f1,
                     "yes_ratio", m.yes_ratio);
}

/* Accuracy in percent, as the papers' tables give it. */
static json_t *accuracy_json(long n, long right)
{
    return json_pack("{s:s, s:I, s:f}", "status", "scored", "samples", (json_int_t)n,
                     "accuracy", 100.0 * (double)right / (double)n);
}

static json_t *mme_json(const score_acc *s)
{
    bench_mme_result r;
    if (bench_mme_score(s->mme, (size_t)s->mme_n, &r) != 0) DIE("MME: %s", err_msg());
    json_t *subs = json_object();
    for (int i = 0; i < BENCH_MME_SUBTASKS; i++)
        if (r.sub[i].questions)
            json_object_set_new(subs, bench_mme_subtask_names[i],
                                json_pack("{s:I, s:I, s:f, s:f, s:f}", "questions",
                                          (json_int_t)r.sub[i].questions, "images",
                                          (json_int_t)r.sub[i].images, "acc", 100 * r.sub[i].acc,
                                          "acc_plus", 100 * r.sub[i].acc_plus, "score",
                                          r.sub[i].score));
    return json_pack("{s:s, s:I, s:f, s:f, s:i, s:i, s:o}", "status", "scored", "samples",
                     (json_int_t)s->mme_n, "perception", r.perception, "cognition", r.cognition,
                     "perception_subtasks", r.perception_present, "cognition_subtasks",
                     r.cognition_present, "subtasks", subs);
}

static json_t *mmbench_json(const score_acc *s)
{
    bench_circular_result r;
    if (bench_mmbench_circular(s->mmb_group, s->mmb_right, (size_t)s->mmb_n, &r) != 0)
        DIE("MMBench: %s", err_msg());
    long right = 0;
    for (long i = 0; i < s->mmb_n; i++) right += s->mmb_right[i];
    return json_pack("{s:s, s:I, s:I, s:f, s:f}", "status", "scored", "samples",
                     (json_int_t)s->mmb_n, "questions", (json_int_t)r.groups, "circular_accuracy",
                     100.0 * r.accuracy, "vanilla_accuracy",
                     100.0 * (double)right / (double)s->mmb_n);
}

static json_t *results_json(const score_acc *s, const bench_args *a, const char *model_hash)
{
    json_t *benches = json_object();
    if (s->pope_n) {
        json_t *splits = json_object();
        for (int i = 0; i < s->n_splits; i++)
            json_object_set_new(splits, s->splits[i].split, pope_json(&s->splits[i].c));
        json_t *p = json_pack("{s:s, s:o, s:o}", "status", "scored", "splits", splits, "all",
                              pope_json(&s->all));
        json_object_set_new(benches, "pope", p);
    }
    if (s->vqa_n)
        json_object_set_new(benches, "vqa",
                            json_pack("{s:s, s:I, s:f}", "status", "scored", "samples",
                                      (json_int_t)s->vqa_n, "accuracy",
                                      100.0 * s->vqa_sum / (double)s->vqa_n));
    if (s->mme_n) json_object_set_new(benches, "mme", mme_json(s));
    if (s->gqa_n) json_object_set_new(benches, "gqa", accuracy_json(s->gqa_n, s->gqa_right));
    if (s->sqa_n)
        json_object_set_new(benches, "scienceqa", accuracy_json(s->sqa_n, s->sqa_right));
    if (s->seed_n) json_object_set_new(benches, "seed", accuracy_json(s->seed_n, s->seed_right));
    if (s->mmb_n) json_object_set_new(benches, "mmbench", mmbench_json(s));
    const char *name;
    json_t *cnt;
    json_object_foreach(s->judge, name, cnt)
        json_object_set_new(benches, name,
                            bench_judge_not_scored(name, (size_t)json_integer_value(cnt)));
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:i, s:s, s:s, s:s, s:s}, s:o}", "model",
                     a->model, "model_hash", model_hash, "questions", a->questions, "settings",
                     "decoding", "greedy", "max_new_tokens", a->max_new, "template",
                     a->template_name, "preprocess", a->preprocess, "prompt_suffix",
                     SHORT_ANSWER, "choice_prompt_suffix", CHOICE_ANSWER, "benchmarks", benches);
}

/* Rank 0: join, score, write results.json and samples.jsonl. */
static int score_all(const bench_args *a, const question_set *qs, const char *answers_path,
                     const char *model_hash)
{
    h5io_file f;
    answer_rows r = {0};
    int rc = h5io_open(&f, answers_path, MPI_COMM_SELF);
    if (rc == 0) {
        rc = answers_read(&f, &r);
        h5io_close(&f);
    }
    int64_t *answer_of = xmalloc(sizeof(int64_t) * (size_t)qs->n);
    if (rc == 0) rc = join_by_id(qs, &r, answer_of);
    int64_t *text_off = xmalloc(sizeof(int64_t) * (size_t)(r.n + 1));
    text_off[0] = 0;
    for (int64_t i = 0; i < r.n; i++) text_off[i + 1] = text_off[i] + r.text_len[i];
    score_acc s = {.judge = json_object()};
    char *lines = NULL;
    size_t lines_len = 0;
    for (int64_t i = 0; rc == 0 && i < qs->n; i++) {
        const question *q = &qs->q[i];
        int64_t ar = answer_of[i];
        char *answer = strndup(r.text + text_off[ar], (size_t)r.text_len[ar]);
        char *prompt = prompt_text(q);
        json_t *sample = json_pack("{s:s, s:s, s:s, s:s}", "question_id", q->id, "benchmark",
                                   q->bench, "prompt", prompt, "answer", answer);
        rc = score_one(&s, q, answer, sample);
        char *line = json_dumps(sample, JSON_COMPACT);
        push_bytes(&lines, &lines_len, line, strlen(line));
        push_bytes(&lines, &lines_len, "\n", 1);
        free(line);
        json_decref(sample);
        free(prompt);
        free(answer);
    }
    char *samples_path = fs_join(a->out, "samples.jsonl");
    char *results_path = fs_join(a->out, "results.json");
    if (rc == 0) rc = fs_write_atomic(samples_path, lines ? lines : "", lines_len);
    if (rc == 0) {
        json_t *res = results_json(&s, a, model_hash);
        char *text = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS);
        push_bytes(&text, &(size_t){strlen(text)}, "\n", 1);
        rc = fs_write_atomic(results_path, text, strlen(text));
        free(text);
        json_decref(res);
    }
    if (rc == 0) log_info("scored %lld answers; wrote %s and %s", (long long)qs->n, results_path,
                          samples_path);
    json_decref(s.judge);
    free(s.mme);
    free(s.mmb_group);
    free(s.mmb_right);
    free(samples_path);
    free(results_path);
    free(lines);
    free(text_off);
    free(answer_of);
    answers_free(&r);
    return rc;
}

/* ---------------------------------------------------------------- main -- */

static char *settings_string(const bench_args *a, const char *model_hash, uint64_t questions_hash,
                             int64_t n)
{
    char *s = NULL;
    if (asprintf(&s,
                 "model_hash=%s questions=%016llx n=%lld max_new_tokens=%d template=%s "
                 "preprocess=%s chunk=%d",
                 model_hash, (unsigned long long)questions_hash, (long long)n, a->max_new,
                 a->template_name, a->preprocess, a->chunk) < 0)
        DIE("out of memory");
    return s;
}

/* Digest of the questions file's bytes. */
static int hash_file(const char *path, uint64_t *h)
{
    char *text = NULL;
    size_t len = 0;
    if (fs_read_all(path, &text, &len) != 0) return -1;
    *h = h5io_fnv1a(text, len, H5IO_FNV_INIT);
    free(text);
    return 0;
}

int main(int argc, char **argv)
{
    tool_ctx t;
    tool_init(&t, &argc, &argv, "sima-bench");
    bench_args a;
    parse_args(&t, argc, argv, &a);
    h5u_init();
    tool_catch_signals();

    run_ctx g;
    memset(&g, 0, sizeof g);
    g.a = &a;
    g.t = &t;
    question_set qs;
    uint64_t qhash = 0;
    char *model_hash = h5io_model_hash(a.model);
    int rc = model_hash ? 0 : -1;
    if (rc == 0) rc = load_questions(a.questions, a.limit, &qs);
    if (rc == 0) rc = hash_file(a.questions, &qhash);
    if (rc == 0) rc = chat_template_load(a.template_name, &g.tpl);
    if (rc == 0 && t.rank == 0 && mkdir(a.out, 0777) != 0 && errno != EEXIST)
        rc = ERR("%s: cannot create: %s", a.out, strerror(errno));
    tool_agree(&t, rc);
    g.qs = &qs;

    char *settings = settings_string(&a, model_hash, qhash, qs.n);
    char key[17];
    chk_run_key(key, (const char *const[]){settings, g.tpl.text}, 2);
    char *answers_path = fs_join(a.out, "answers.h5");
    chk_plan_init(&g.plan, answers_path, ANS_SCHEMA, ANS_SCHEMA_VERSION, qs.n, a.chunk, key,
                  a.resume, a.overwrite);
    bool done = false;
    int64_t *pending = NULL, n_pending = 0;
    chk_prepare(&t, &g.plan, &done, &pending, &n_pending);
    if (!done) {
        tool_agree(&t, sess_load(a.model, a.preprocess, &g.s));
        int64_t todo = chk_pending_items(&g.plan, pending, n_pending);
        log_info("%lld questions in %lld chunks, %lld already answered; %d rank%s",
                 (long long)qs.n, (long long)g.plan.n_chunks, (long long)(qs.n - todo), t.size,
                 t.size > 1 ? "s" : "");
        chk_progress_init(&g.progress, &t, "questions", "new tokens/s", a.progress_s, todo,
                          qs.n - todo);
        rc = run_my_chunks(&g, pending, n_pending);
        if (rc != 0) tool_abort(&t);
        int64_t items, tokens;
        chk_progress_finish(&g.progress, &items, &tokens);
        if (tool_any_interrupted(&t)) {
            log_info("interrupted: answered chunks are committed in %s; rerun the same command",
                     g.plan.parts_dir);
            return tool_finish(&t, TOOL_INTERRUPTED);
        }
        if (!chk_all_committed(&t, &g.plan))
            rc = ERR("%s: chunks are missing after generation", g.plan.parts_dir);
        tool_agree(&t, rc);
        assemble_answers(&g, answers_path, model_hash);
        sess_free(&g.s);
    } else {
        log_info("%s is already complete for this run; scoring it", answers_path);
    }
    rc = t.rank == 0 ? score_all(&a, &qs, answers_path, model_hash) : 0;
    tool_agree(&t, rc);
    free(pending);
    free(settings);
    free(answers_path);
    free(model_hash);
    free_questions(&qs);
    chat_template_free(&g.tpl);
    chk_plan_free(&g.plan);
    return tool_finish(&t, TOOL_OK);
}
