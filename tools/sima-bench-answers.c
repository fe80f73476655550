/* sima-bench-answers.c — `sima-bench score`: answers already written (by
 * another program, LLaVA's model_vqa*.py, or an earlier run's
 * samples.jsonl) scored by the same rules and written to the same
 * results.json, samples.jsonl and samples.h5 as a run, without a model.
 *
 * An answers file has one JSON object a line: "question_id" (string, or an
 * integer as LLaVA's answer files hold it), "text" (or "answer", as in
 * samples.jsonl) and "benchmark"; without "benchmark" the answer goes to
 * the question of that id when exactly one benchmark has it. Answers are
 * joined to questions by (benchmark, id); every question needs exactly one
 * answer. The questions' images are not needed. */
#define _GNU_SOURCE
#include "sima-bench.h"

#include "err.h"
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char USAGE[] =
    "usage: sima-bench score --questions Q.jsonl --answers A.jsonl --out DIR [options]\n"
    "       sima-bench score --suite LIST --data-root DIR --answers A.jsonl --out DIR [options]\n"
    "\n"
    "Score answers already written, one JSON object a line with question_id,\n"
    "text (or answer) and benchmark, by the official rules; writes results.json,\n"
    "samples.jsonl and samples.h5 in DIR as a run does. No model, no images.\n"
    "\n"
    "  --questions FILE       questions, JSON lines (data/benchmarks/README.md)\n"
    "  --suite LIST           benchmarks from the official files (their images must\n"
    "                         exist: a question without one is left out)\n"
    "  --data-root DIR        where the official files are (with --suite)\n"
    "  --answers FILE         the answers, JSON lines\n"
    "  --out DIR              results folder\n"
    "  --chair-synonyms FILE  CHAIR synonym table (default DATA_ROOT/chair/synonyms.txt)\n"
    "  --judge MODE           none, online, write-requests or read-replies\n"
    "  --judge-replies FILE   judge replies, JSON lines (--judge read-replies)\n"
    "  --judge-model NAME     judge model name (default $SIMA_JUDGE_MODEL)\n";

/* The value of option argv[*i] (its next argument). */
static const char *option_value(tool_ctx *t, int argc, char **argv, int *i)
{
    if (*i + 1 == argc) tool_usage_error(t, "score: %s needs a value", argv[*i]);
    return argv[++*i];
}

static void parse_score_args(tool_ctx *t, int argc, char **argv, bench_args *a)
{
    *a = (bench_args){.template_name = "vicuna_v1", .preprocess = "pad", .limit = INT64_MAX};
    int judge_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(USAGE, stdout);
            exit(tool_finish(t, TOOL_OK));
        }
        if (!strcmp(o, "--questions")) a->questions = option_value(t, argc, argv, &i);
        else if (!strcmp(o, "--suite")) a->suites = option_value(t, argc, argv, &i);
        else if (!strcmp(o, "--data-root")) a->data_root = option_value(t, argc, argv, &i);
        else if (!strcmp(o, "--answers")) a->answers = option_value(t, argc, argv, &i);
        else if (!strcmp(o, "--out")) a->out = option_value(t, argc, argv, &i);
        else if (!strcmp(o, "--chair-synonyms")) a->chair_synonyms = option_value(t, argc, argv, &i);
        else if (!strcmp(o, "--judge-replies")) a->judge_replies = option_value(t, argc, argv, &i);
        else if (!strcmp(o, "--judge-model")) a->judge_model = option_value(t, argc, argv, &i);
        else if (!strcmp(o, "--judge")) {
            a->judge = bench_parse_judge(t, option_value(t, argc, argv, &i));
            judge_set = 1;
        } else tool_usage_error(t, "score: unknown option or argument '%s'", o);
    }
    if (!a->answers || !a->out) tool_usage_error(t, "score: --answers and --out are required");
    if (!a->questions == !a->suites)
        tool_usage_error(t, "score: give either --questions FILE or --suite LIST with --data-root DIR");
    if (a->suites && !a->data_root) tool_usage_error(t, "score: --suite needs --data-root DIR");
    if (a->suites) bench_check_suites(t, a->suites);
    bench_check_judge(t, a, judge_set);
}

/* id -> benchmark of the questions, "" for an id two benchmarks share. */
static json_t *bench_of_ids(const question_set *qs)
{
    json_t *m = json_object();
    for (int64_t i = 0; i < qs->n; i++) {
        json_t *b = json_object_get(m, qs->q[i].id);
        if (!b) json_object_set_new(m, qs->q[i].id, json_string(qs->q[i].bench));
        else if (strcmp(json_string_value(b), qs->q[i].bench) != 0)
            json_object_set_new(m, qs->q[i].id, json_string(""));
    }
    return m;
}

/* One answers line's fields; errors without location. id_buf holds an
 * integer id as text. */
static int answer_fields(json_t *o, json_t *by_id, char *id_buf, size_t id_cap,
                         const char **bench, const char **id, const char **text)
{
    json_t *jid = json_object_get(o, "question_id");
    if (json_is_integer(jid)) {
        snprintf(id_buf, id_cap, "%lld", (long long)json_integer_value(jid));
        *id = id_buf;
    } else if (json_is_string(jid)) {
        *id = json_string_value(jid);
    } else {
        return ERR("\"question_id\" must be a string or an integer");
    }
    json_t *jt = json_object_get(o, "text");
    if (!jt) jt = json_object_get(o, "answer");
    if (!json_is_string(jt)) return ERR("\"text\" (or \"answer\") must be a string");
    *text = json_string_value(jt);
    *bench = json_string_value(json_object_get(o, "benchmark"));
    if (*bench) return 0;
    *bench = json_string_value(json_object_get(by_id, *id));
    if (!*bench) return ERR("question \"%s\": no such question", *id);
    if (!(*bench)[0])
        return ERR("question \"%s\" exists in two benchmarks: give \"benchmark\"", *id);
    return 0;
}

typedef struct {
    json_t *by_id;
    answer_rows *rows;
} answers_load;

/* One answers line into the rows. */
static int take_answer(void *ctx, json_t *o)
{
    answers_load *l = ctx;
    const char *bench = NULL, *id = NULL, *answer = NULL;
    char id_buf[32];
    int rc = answer_fields(o, l->by_id, id_buf, sizeof id_buf, &bench, &id, &answer);
    if (rc == 0) ba_push(l->rows, l->rows->n, bench, id, answer, (int64_t)strlen(answer), 0);
    json_decref(o);
    return rc;
}

/* The answers file as answer rows (question_row is the line's index). */
static int read_answers(const char *path, const question_set *qs, answer_rows *rows)
{
    char *text = NULL;
    size_t len = 0;
    if (fs_read_all(path, &text, &len) != 0) return -1;
    answers_load l = {bench_of_ids(qs), rows};
    int rc = bq_jsonl_each(path, text, take_answer, &l);
    json_decref(l.by_id);
    free(text);
    return rc;
}

int bsa_main(tool_ctx *t, int argc, char **argv)
{
    bench_args a;
    parse_score_args(t, argc, argv, &a);
    if (t->size != 1) tool_usage_error(t, "score runs as one process: start it without mpirun");
    question_set qs = {0};
    bq_load(t, &a, &qs);
    bench_scorer *scorer = NULL;
    answer_rows rows = {0};
    int rc = bs_prepare(&a, &qs, &scorer);
    if (rc == 0 && mkdir(a.out, 0777) != 0 && errno != EEXIST)
        rc = ERR("%s: cannot create: %s", a.out, strerror(errno));
    if (rc == 0) rc = read_answers(a.answers, &qs, &rows);
    if (rc == 0) rc = bs_score_rows(scorer, t, &a, &qs, &rows, "", "", "");
    ba_free(&rows);
    bs_free(scorer);
    bq_free(&qs);
    if (rc != 0) {
        err_print();
        return TOOL_ERROR;
    }
    return TOOL_OK;
}
