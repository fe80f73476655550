/* bench_src_choice.c — readers of the multiple-choice benchmarks' release
 * files: ScienceQA-IMG (test), MMBench (dev TSV with its circular passes) and
 * SEED-Bench (image part). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench_src_internal.h"
#include "err.h"

/* ----------------------------------------------------------- ScienceQA -- */

/* The question text as LLaVA's llava_test_CQM-A.json has it (before the
 * options, which the runner lists): "Context: HINT\nQUESTION", or the
 * question alone when the hint is empty. */
static char *scienceqa_text(const char *hint, const char *question)
{
    if (hint && hint[0]) return bsrc_fmt("Context: %s\n%s", hint, question);
    return xstrdup(question);
}

/* One test problem: {"question", "choices", "answer": int, "hint", "image", ...}. */
static int scienceqa_problem(bsrc_ctx *c, const char *pid, const json_t *p, const char *where)
{
    bool bad = false;
    const char *image = bsrc_opt_str(p, "image", where, &bad);
    if (bad) return -1;
    if (!image) return 0; /* ScienceQA-IMG: the problems with an image only */
    const char *question = bsrc_str(p, "question", where);
    const char *hint = question ? bsrc_opt_str(p, "hint", where, &bad) : NULL;
    const char *subject = bad ? NULL : bsrc_opt_str(p, "subject", where, &bad);
    json_t *ans = question && !bad ? bsrc_typed(p, "answer", JSON_INTEGER, where) : NULL;
    json_t *choices = ans ? bsrc_strings(p, "choices", where) : NULL;
    if (!choices) return -1;
    size_t n = json_array_size(choices);
    json_int_t a = json_integer_value(ans);
    if (n < 2 || n > 26 || a < 0 || (size_t)a >= n) {
        json_decref(choices);
        return ERR("%s: \"answer\" %lld is not the index of one of its %zu choices (2 to 26)",
                   where, (long long)a, n);
    }
    char *text = scienceqa_text(hint, question), letter[2] = {(char)('A' + a), '\0'};
    json_t *q = bsrc_question(c, pid, text);
    free(text);
    json_object_set_new(q, "options", choices);
    json_object_set_new(q, "answer", json_string(letter));
    if (subject) json_object_set_new(q, "category", json_string(subject));
    return bsrc_emit_image_at(c, q, "scienceqa/images/test/%s/%s", pid, image);
}

/* One entry of pid_splits.json's "test" list, looked up in problems.json. */
static int scienceqa_test_pid(bsrc_ctx *c, const json_t *problems, const json_t *v,
                              const char *prob_path, const char *where)
{
    if (!json_is_string(v)) return ERR("%s: expected a problem id (a string)", where);
    const char *pid = json_string_value(v);
    const json_t *p = json_object_get(problems, pid);
    if (!json_is_object(p)) return ERR("%s: problem %s is not in %s", where, pid, prob_path);
    char *pwhere = bsrc_fmt("%s: problem %s", prob_path, pid);
    int rc = scienceqa_problem(c, pid, p, pwhere);
    free(pwhere);
    return rc;
}

int bsrc_read_scienceqa(bsrc_ctx *c)
{
    char *prob_path = bsrc_path(c, "scienceqa/problems.json");
    char *split_path = bsrc_path(c, "scienceqa/pid_splits.json");
    json_t *problems = bsrc_load_json(prob_path);
    json_t *splits = problems ? bsrc_load_json(split_path) : NULL;
    json_t *test = splits ? bsrc_typed(splits, "test", JSON_ARRAY, split_path) : NULL, *v;
    int rc = test ? 0 : -1;
    if (rc == 0 && !json_is_object(problems))
        rc = ERR("%s: expected a JSON object {problem id: problem}", prob_path);
    size_t i;
    if (rc == 0) json_array_foreach(test, i, v) {
        if (rc != 0 || bsrc_full(c)) break;
        char *where = bsrc_fmt("%s: test[%zu]", split_path, i);
        rc = scienceqa_test_pid(c, problems, v, prob_path, where);
        free(where);
    }
    json_decref(splits);
    json_decref(problems);
    free(prob_path);
    free(split_path);
    return rc;
}

/* ------------------------------------------------------------- MMBench -- */

/* An empty TSV cell, as LLaVA's is_none sees it after pandas: empty,
 * "nan" or "none" in any case. */
static bool mmbench_is_none(const char *s)
{
    return s[0] == '\0' || strcasecmp(s, "nan") == 0 || strcasecmp(s, "none") == 0;
}

static bool is_base64(const char *s)
{
    return s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n")] ==
           '\0';
}

enum { MMB_INDEX, MMB_QUESTION, MMB_HINT, MMB_A, MMB_B, MMB_C, MMB_D, MMB_ANSWER,
       MMB_CATEGORY, MMB_IMAGE, MMB_NCOLS };
static const char *const MMB_COLS[MMB_NCOLS] = {"index", "question", "hint", "A", "B", "C",
                                                "D", "answer", "category", "image"};

/* The question of one row. The release TSV (the legacy file LLaVA's
 * docs/Evaluation.md links) already holds CircularEval's passes as rows of
 * their own, options shifted and answer moved, at index i + k * 10^6; LLaVA's
 * scripts/v1_5/eval/mmbench.sh answers every row once (model_vqa_mmbench.py
 * without --all-rounds), and the groups are formed from index % 10^6. */
static void mmbench_question(bsrc_ctx *c, char *const *cells, const char *text,
                             long long index, size_t n)
{
    char qid[32];
    snprintf(qid, sizeof qid, "%lld", index);
    json_t *q = bsrc_question(c, qid, text), *opts = json_array();
    for (size_t j = 0; j < n; j++) json_array_append_new(opts, json_string(cells[MMB_A + j]));
    json_object_set_new(q, "options", opts);
    json_object_set_new(q, "answer", json_string(cells[MMB_ANSWER]));
    json_object_set_new(q, "index", json_integer(index));
    if (!mmbench_is_none(cells[MMB_CATEGORY]))
        json_object_set_new(q, "category", json_string(cells[MMB_CATEGORY]));
    json_object_set_new(q, "image_base64", json_string(cells[MMB_IMAGE]));
    bsrc_emit(c, q);
}

/* VLMEvalKit's smaller TSV keeps the image in one pass only and writes the
 * index of that row in the others' image cell. */
static bool is_row_reference(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n < 16 && s[n] == '\0';
}

static int mmbench_row(bsrc_ctx *c, char *const *cells, const char *where, void *ud)
{
    char *end;
    long long index = strtoll(cells[MMB_INDEX], &end, 10);
    if (cells[MMB_INDEX][0] == '\0' || *end || index < 0)
        return ERR("%s: index \"%s\": expected a non-negative integer", where, cells[MMB_INDEX]);
    size_t n = 0; /* options: A, B, ... up to the first empty one, as LLaVA reads them */
    while (n < 4 && !mmbench_is_none(cells[MMB_A + n])) n++;
    const char *ans = cells[MMB_ANSWER];
    if (n < 2) return ERR("%s: index %lld: fewer than two options", where, index);
    if (strlen(ans) != 1 || ans[0] < 'A' || (size_t)(ans[0] - 'A') >= n)
        return ERR("%s: index %lld: answer \"%s\" is not the letter of one of its %zu options",
                   where, index, ans, n);
    if (cells[MMB_IMAGE][0] == '\0') {
        char *what = bsrc_fmt("%s: index %lld (no image)", where, index);
        bsrc_count_missing(c, what);
        free(what);
        return 0;
    }
    if (is_row_reference(cells[MMB_IMAGE]))
        return ERR("%s: index %lld: the image cell refers to row %s (VLMEvalKit's TSV); use the "
                   "legacy release TSV, which holds every pass's image", where, index,
                   cells[MMB_IMAGE]);
    if (!is_base64(cells[MMB_IMAGE]))
        return ERR("%s: index %lld: the image is not base64 text", where, index);
    const char *hint = cells[MMB_HINT], *question = cells[MMB_QUESTION];
    char *text = mmbench_is_none(hint) ? xstrdup(question) : bsrc_fmt("%s\n%s", hint, question);
    mmbench_question(c, cells, text, index, n);
    free(text);
    return 0;
}

int bsrc_read_mmbench(bsrc_ctx *c)
{
    char *file = bsrc_path(c, "mmbench/mmbench_dev_20230712.tsv");
    int rc = bsrc_tsv(c, file, MMB_COLS, MMB_NCOLS, mmbench_row, NULL);
    free(file);
    return rc;
}

/* ---------------------------------------------------------- SEED-Bench -- */

/* question_type_id -> dimension name, from the file's "question_type"
 * object ({name: id}) when it has one. */
static const char *seed_category(const json_t *root, json_int_t type_id)
{
    const char *name;
    json_t *id;
    json_object_foreach((json_t *)json_object_get(root, "question_type"), name, id)
        if (json_is_integer(id) && json_integer_value(id) == type_id) return name;
    return NULL;
}

static int seed_question(bsrc_ctx *c, const char *key, size_t pos, const json_t *e,
                         const char *where, void *ud)
{
    (void)key, (void)pos;
    const json_t *root = ud;   /* the whole file: its question_type table */
    static const char *const CHOICES[4] = {"choice_a", "choice_b", "choice_c", "choice_d"};
    bool bad = false;
    const char *type = bsrc_opt_str(e, "data_type", where, &bad);
    if (bad) return -1;
    if (type && strcmp(type, "image") != 0) return 0; /* the video part is not read */
    char id[64], data_id[1024];
    const char *question = bsrc_str(e, "question", where);
    const char *ans = question ? bsrc_str(e, "answer", where) : NULL;
    if (!question || !ans || bsrc_id(e, "question_id", id, sizeof id, where) != 0 ||
        bsrc_id(e, "data_id", data_id, sizeof data_id, where) != 0)
        return -1;
    if (strlen(ans) != 1 || ans[0] < 'A' || ans[0] > 'D')
        return ERR("%s: \"answer\" \"%s\": expected A, B, C or D", where, ans);
    json_t *opts = json_array();
    for (int k = 0; k < 4; k++) {
        const char *s = bsrc_str(e, CHOICES[k], where);
        if (!s) {
            json_decref(opts);
            return -1;
        }
        json_array_append_new(opts, json_string(s));
    }
    json_t *q = bsrc_question(c, id, question);
    json_object_set_new(q, "options", opts);
    json_object_set_new(q, "answer", json_string(ans));
    json_t *tid = json_object_get(e, "question_type_id");
    const char *cat = json_is_integer(tid) ? seed_category(root, json_integer_value(tid)) : NULL;
    if (json_is_integer(tid)) json_object_set(q, "question_type_id", tid);
    if (cat) json_object_set_new(q, "category", json_string(cat));
    return bsrc_emit_image_at(c, q, "seed_bench/SEED-Bench-image/%s", data_id);
}

int bsrc_read_seed(bsrc_ctx *c)
{
    char *file = bsrc_path(c, "seed_bench/SEED-Bench.json");
    json_t *root = bsrc_load_json(file);
    json_t *list = root ? bsrc_typed(root, "questions", JSON_ARRAY, file) : NULL;
    int rc = list ? bsrc_each_entry(c, list, file, "questions", seed_question, root) : -1;
    json_decref(root);
    free(file);
    return rc;
}
