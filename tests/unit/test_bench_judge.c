/* test_bench_judge.c — judge-scored benchmarks: "not scored" without a
 * judge; the reply parsers, the prompt files, and the metrics of each
 * benchmark from a replies file, all against hand-worked values. */
#include "bench_judge.h"
#include "bench_judge_prompt.h"
#include "bench_judge_rules.h"
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *g_dir; /* scratch folder */

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static long long integer(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static char *write_file(const char *name, const char *text)
{
    char *path = fs_join(g_dir, name);
    if (fs_write_atomic(path, text, strlen(text)) != 0) DIE("%s", err_msg());
    return path;
}

static void test_not_scored(void)
{
    CHECK(bench_is_judge_scored("mmvet"));
    CHECK(bench_is_judge_scored("llava_bench"));
    CHECK(bench_is_judge_scored("mmhal"));
    CHECK(bench_is_judge_scored("mementos"));
    CHECK(!bench_is_judge_scored("pope"));
    CHECK(!bench_is_judge_scored("MMVET"));

    json_t *r = bench_judge_not_scored("mmvet", 12);
    CHECK(r != NULL);
    CHECK(strcmp(str(r, "status"), "not scored") == 0);
    CHECK(json_is_false(json_object_get(r, "scored")));
    CHECK_EQ(integer(r, "answered"), 12);
    /* no number other than the sample count */
    const char *key;
    json_t *value;
    int numbers = 0;
    json_object_foreach(r, key, value) numbers += json_is_number(value);
    CHECK_EQ(numbers, 1);
    CHECK(json_object_get(r, "score") == NULL);
    CHECK(json_object_get(r, "accuracy") == NULL);
    json_decref(r);
}

static void test_llava_parse(void)
{
    double a = 0, b = 0;
    CHECK(bench_judge_llava_parse("8 9\nAssistant 1 is fine.", &a, &b));
    CHECK_NEAR(a, 8, 0);
    CHECK_NEAR(b, 9, 0);
    CHECK(bench_judge_llava_parse("7.5, 6", &a, &b));
    CHECK_NEAR(a, 7.5, 0);
    CHECK_NEAR(b, 6, 0);
    CHECK(!bench_judge_llava_parse("8 9 10", &a, &b));
    CHECK(!bench_judge_llava_parse("Assistant 1: 8", &a, &b));
    CHECK(!bench_judge_llava_parse("\n8 9", &a, &b)); /* the first line is empty */
    CHECK(!bench_judge_llava_parse("8\n9", &a, &b));
    CHECK(!bench_judge_llava_parse("nan 3", &a, &b));
    CHECK(!bench_judge_llava_parse("", &a, &b));

    /* (8,6) (10,9) (6,6): means 8 and 7, relative 100 * 7 / 8 = 87.5 */
    bench_judge_llava_acc acc = {0};
    CHECK(bench_judge_llava_json(&acc) == NULL);
    bench_judge_llava_add(&acc, 8, 6);
    bench_judge_llava_add(&acc, 10, 9);
    bench_judge_llava_add(&acc, 6, 6);
    json_t *j = bench_judge_llava_json(&acc);
    CHECK_EQ(integer(j, "samples"), 3);
    CHECK_NEAR(num(j, "mean_reference"), 8, 1e-12);
    CHECK_NEAR(num(j, "mean_model"), 7, 1e-12);
    CHECK_NEAR(num(j, "relative_score"), 87.5, 1e-12);
    json_decref(j);
    bench_judge_llava_acc zero = {1, 0, 5};
    j = bench_judge_llava_json(&zero);
    CHECK(json_is_null(json_object_get(j, "relative_score")));
    json_decref(j);
}

static void test_mmvet_parse(void)
{
    double s = -1;
    CHECK(bench_judge_mmvet_parse("0.6", &s));
    CHECK_NEAR(s, 0.6, 1e-12);
    CHECK(bench_judge_mmvet_parse(" 1.0\n", &s));
    CHECK_NEAR(s, 1, 0);
    /* mm-vet_evaluator.py refuses a score outside [0, 1] (no clamping) */
    CHECK(!bench_judge_mmvet_parse("1.4", &s));
    CHECK(!bench_judge_mmvet_parse("-0.2", &s));
    CHECK(bench_judge_mmvet_parse("1", &s));
    CHECK_NEAR(s, 1, 0);
    CHECK(bench_judge_mmvet_parse("0", &s));
    CHECK_NEAR(s, 0, 0);
    /* split(" ")[0].strip(): a newline is no separator */
    CHECK(!bench_judge_mmvet_parse("0.5\nbecause", &s));
    CHECK(bench_judge_mmvet_parse("0.7\n", &s));
    CHECK_NEAR(s, 0.7, 1e-12);
    CHECK(bench_judge_mmvet_parse("0.5 because half is right", &s));
    CHECK_NEAR(s, 0.5, 0);
    CHECK(!bench_judge_mmvet_parse("Score: 0.5", &s));
    CHECK(!bench_judge_mmvet_parse("", &s));
    CHECK(!bench_judge_mmvet_parse("inf", &s));
}

static void test_mmhal_parse(void)
{
    CHECK_EQ(bench_judge_mmhal_parse("The response is fine.\nRating: 5"), 5);
    CHECK_EQ(bench_judge_mmhal_parse("Rating: 0"), 0);
    CHECK_EQ(bench_judge_mmhal_parse("RATING: 6"), 6);
    /* eval_gpt4.py: the set of k with "rating: k" in the lower-cased reply
     * must have exactly one member */
    CHECK_EQ(bench_judge_mmhal_parse("rating: 2 at first; on reflection, Rating: 4"), -1);
    CHECK_EQ(bench_judge_mmhal_parse("Rating: 4, somewhat informative. Rating: 4"), 4);
    /* substring test: "rating: 10" holds "rating: 1"; "Rating: 3 ... Rating: 9"
     * holds only "rating: 3" */
    CHECK_EQ(bench_judge_mmhal_parse("Rating: 10"), 1);
    CHECK_EQ(bench_judge_mmhal_parse("Rating: 3\nRating: 9"), 3);
    CHECK_EQ(bench_judge_mmhal_parse("Rating: 7"), -1);
    /* exactly one space after the colon, and no bare digit */
    CHECK_EQ(bench_judge_mmhal_parse("RATING:6"), -1);
    CHECK_EQ(bench_judge_mmhal_parse("Rating:  2"), -1);
    CHECK_EQ(bench_judge_mmhal_parse(" 4.\n"), -1);
    CHECK_EQ(bench_judge_mmhal_parse("3"), -1);
    CHECK_EQ(bench_judge_mmhal_parse("I rate it 4"), -1);
    CHECK_EQ(bench_judge_mmhal_parse(""), -1);
}

static bool list_is(const json_t *arr, const char *const *want, size_t n)
{
    if (json_array_size(arr) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(json_string_value(json_array_get(arr, i)), want[i]) != 0) return false;
    return true;
}

static void test_mementos_parse(void)
{
    char *s = bench_judge_normalize_item("  The  Red   Ball. ");
    CHECK(strcmp(s, "red ball") == 0);
    free(s);
    s = bench_judge_normalize_item("another Dog");
    CHECK(strcmp(s, "another dog") == 0);
    free(s);
    s = bench_judge_normalize_item("\"a\"");
    CHECK(strcmp(s, "a") == 0);
    free(s);

    json_t *o = NULL, *b = NULL;
    CHECK(bench_judge_mementos_parse(
        "Here are the lists.\nObjects: A man, the Dog, dog; bicycle\n"
        "Behaviours: Riding a bike, walking.\n", &o, &b));
    static const char *const O1[] = {"man", "dog", "bicycle"};
    static const char *const B1[] = {"riding a bike", "walking"};
    CHECK(list_is(o, O1, 3));
    CHECK(list_is(b, B1, 2));
    json_decref(o);
    json_decref(b);
    CHECK(bench_judge_mementos_parse("**Objects:** none\n- Behaviors: run", &o, &b));
    static const char *const B2[] = {"run"};
    CHECK(list_is(o, NULL, 0));
    CHECK(list_is(b, B2, 1));
    json_decref(o);
    json_decref(b);
    CHECK(!bench_judge_mementos_parse("Objects: cat", &o, &b));
    CHECK(!bench_judge_mementos_parse("The objects: cat\nBehaviours: sit", &o, &b));

    /* pred {man, dog, car} vs gt {man, tree}: P 1/3, R 1/2, F1 2/5 */
    double p, r, f1;
    json_t *pred = json_pack("[s,s,s]", "man", "Dog", "car"), *gt = json_pack("[s,s]", "Man", "tree");
    CHECK_OK(bench_judge_set_prf(pred, gt, &p, &r, &f1));
    CHECK_NEAR(p, 1.0 / 3, 1e-12);
    CHECK_NEAR(r, 0.5, 1e-12);
    CHECK_NEAR(f1, 0.4, 1e-12);
    json_t *empty = json_array();
    /* the notebook: recall = tp / (tp + fn) if (tp + fn) != 0 else 0, and
     * so on: two empty lists score 0 */
    CHECK_OK(bench_judge_set_prf(empty, empty, &p, &r, &f1));
    CHECK_NEAR(p, 0, 0);
    CHECK_NEAR(r, 0, 0);
    CHECK_NEAR(f1, 0, 0);
    CHECK_OK(bench_judge_set_prf(empty, gt, &p, &r, &f1));
    CHECK_NEAR(p, 0, 0);
    CHECK_NEAR(r, 0, 0);
    CHECK_NEAR(f1, 0, 0);
    json_t *bad = json_pack("[i]", 3);
    CHECK(bench_judge_set_prf(bad, gt, &p, &r, &f1) != 0);
    json_decref(bad);
    json_decref(empty);
    json_decref(pred);
    json_decref(gt);
}

static void test_prompt(void)
{
    char *dir = fs_join(g_dir, "prompts");
    CHECK(mkdir(dir, 0755) == 0);
    char *path = fs_join(dir, "mmvet.txt");
    const char *text = "header, not sent {nothing}\n[system]\nBe fair.\n[user]\n"
                       "Q: {question} A: {answer} GT: {gt_answer} C: {image_content} N: {n} "
                       "{not a placeholder} {\"json\": 1}\n";
    CHECK_OK(fs_write_atomic(path, text, strlen(text)));
    bench_judge_prompt p;
    CHECK_OK(bench_judge_prompt_load(dir, "mmvet", &p));
    CHECK(strcmp(p.system, "Be fair.") == 0);
    json_t *q = json_pack("{s:s, s:s, s:s, s:[s,s], s:i}", "question_id", "q1", "question",
                          "What?", "answer", "cat", "image_content", "a", "b", "n", 3);
    char *out = NULL;
    CHECK_OK(bench_judge_prompt_render(&p, p.user, q, "dog", &out));
    CHECK(out && strcmp(out, "Q: What? A: dog GT: cat C: a, b N: 3 {not a placeholder} "
                             "{\"json\": 1}") == 0);
    free(out);
    CHECK_FAILS_WITH(bench_judge_prompt_render(&p, "{context}", q, "dog", &out),
                     "placeholder {context} has no value");
    CHECK(strstr(err_msg(), "mmvet.txt") && strstr(err_msg(), "q1"));
    bench_judge_prompt_free(&p);
    json_decref(q);

    const char *no_user = "[system]\nx\n";
    CHECK_OK(fs_write_atomic(path, no_user, strlen(no_user)));
    CHECK_FAILS_WITH(bench_judge_prompt_load(dir, "mmvet", &p), "mmvet.txt: a judge prompt needs");
    CHECK_FAILS_WITH(bench_judge_prompt_load(dir, "mmhal", &p), "mmhal.txt");
    free(path);
    free(dir);
}

/* The shipped prompts load and fill from the fields bench_source.h gives. */
static void test_shipped_prompts(void)
{
    const char *dir = SIMA_SOURCE_DIR "/data/judges";
    json_t *qs[4] = {
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "question_id", "1", "question", "Q?", "reference",
                  "R", "context", "C", "category", "conv"),
        json_pack("{s:s, s:s, s:s, s:[s]}", "question_id", "v1", "question", "Q?", "answer",
                  "3 <OR> three", "capability", "math"),
        json_pack("{s:s, s:s, s:s, s:[s,s], s:s, s:s}", "question_id", "0", "question", "Q?",
                  "gt_answer", "G", "image_content", "Tree", "Car", "question_type", "counting",
                  "question_topic", "t"),
        json_pack("{s:s, s:s, s:[s], s:[s]}", "question_id", "m0", "question", "Describe.",
                  "objects", "dog", "behaviours", "run"),
    };
    const char *names[4] = {"llava_bench", "mmvet", "mmhal", "mementos"};
    const char *needles[4] = {"C", "3 <OR> three", "Tree, Car", "Describe."};
    for (int i = 0; i < 4; i++) {
        bench_judge_prompt p;
        CHECK_OK(bench_judge_prompt_load(dir, names[i], &p));
        char *sys = NULL, *usr = NULL;
        CHECK_OK(bench_judge_prompt_render(&p, p.system, qs[i], "MODEL-ANSWER", &sys));
        CHECK_OK(bench_judge_prompt_render(&p, p.user, qs[i], "MODEL-ANSWER", &usr));
        CHECK_MSG(usr && strstr(usr, "MODEL-ANSWER") && strstr(usr, needles[i]),
                  "%s prompt lacks the answer or its field", names[i]);
        CHECK_MSG(usr && !strstr(usr, "Placeholders:"), "%s: header was sent", names[i]);
        free(sys);
        free(usr);
        bench_judge_prompt_free(&p);
        json_decref(qs[i]);
    }
}

/* Runs bench_judge_run in READ_REPLIES mode on the given replies text. */
static int run_replies(const char *bench, json_t *qs, const char *const *answers,
                       const char *replies, json_t **entry, json_t **samples)
{
    char *path = write_file("replies.jsonl", replies);
    bench_judge_opts o = {.mode = BENCH_JUDGE_READ_REPLIES, .model = "judge-x",
                          .prompts_dir = SIMA_SOURCE_DIR "/data/judges", .replies_path = path};
    int rc = bench_judge_run(&o, bench, qs, answers, entry, samples);
    free(path);
    return rc;
}

static void free_samples(json_t **s, size_t n)
{
    for (size_t i = 0; i < n; i++) json_decref(s[i]);
}

static void test_llava_metrics(void)
{
    json_t *qs = json_array();
    const char *cats[6] = {"conv", "conv", "detail", "detail", "complex", "complex"};
    for (int i = 0; i < 6; i++)
        json_array_append_new(qs, json_pack("{s:s, s:s, s:s, s:s, s:s}", "question_id",
                                            (const char *[]){"q0", "q1", "q2", "q3", "q4", "q5"}[i],
                                            "question", "Q", "reference", "R", "context", "C",
                                            "category", cats[i]));
    const char *answers[6] = {"a", "b", "c", "d", "e", NULL};
    /* q0 plain reply, q1 batch-output shape, q2 reply, q3 unreadable, q4 a
     * failed batch request (no reply), q5 unanswered; a line of another
     * benchmark is ignored */
    const char *replies =
        "{\"custom_id\": \"llava_bench/q0/0\", \"reply\": \"8 6\\nok\"}\n"
        "{\"custom_id\": \"llava_bench/q1/1\", \"response\": {\"status_code\": 200, \"body\": "
        "{\"choices\": [{\"message\": {\"role\": \"assistant\", \"content\": \"10 9\"}}]}}}\n"
        "\n"
        "{\"custom_id\": \"llava_bench/q2/2\", \"reply\": \"6, 6\"}\n"
        "{\"custom_id\": \"llava_bench/q3/3\", \"reply\": \"Both are good.\"}\n"
        "{\"custom_id\": \"llava_bench/q4/4\", \"response\": {\"status_code\": 500, \"body\": {}}, "
        "\"error\": null}\n"
        "{\"custom_id\": \"mmvet/q0/0\", \"reply\": \"1.0\"}\n";
    json_t *e = NULL, *s[6] = {0};
    CHECK_OK(run_replies("llava_bench", qs, answers, replies, &e, s));
    CHECK(strcmp(str(e, "status"), "partially scored") == 0);
    CHECK_EQ(integer(e, "answered"), 5);
    CHECK_EQ(integer(e, "judged"), 4);
    CHECK_EQ(integer(e, "unparsed"), 1);
    CHECK_EQ(integer(e, "unjudged"), 1);
    CHECK_EQ(integer(e, "samples"), 3);
    CHECK(strcmp(str(e, "judge_model"), "judge-x") == 0);
    CHECK_EQ(strlen(str(e, "judge_prompt_hash")), 16);
    /* (8,6) (10,9) (6,6): 8, 7, 87.5; conv (8,6) (10,9): 9, 7.5, 83.33..;
     * detail (6,6): 100; complex: nothing scored */
    CHECK_NEAR(num(e, "mean_reference"), 8, 1e-12);
    CHECK_NEAR(num(e, "mean_model"), 7, 1e-12);
    CHECK_NEAR(num(e, "relative_score"), 87.5, 1e-12);
    json_t *cat = json_object_get(e, "categories");
    CHECK_NEAR(num(json_object_get(cat, "conv"), "relative_score"), 250.0 / 3, 1e-9);
    CHECK_NEAR(num(json_object_get(cat, "conv"), "mean_reference"), 9, 1e-12);
    CHECK_NEAR(num(json_object_get(cat, "detail"), "relative_score"), 100, 1e-12);
    CHECK(json_object_get(cat, "complex") == NULL);
    CHECK_NEAR(num(s[1], "score_reference"), 10, 0);
    CHECK_NEAR(num(s[1], "score_model"), 9, 0);
    CHECK(strcmp(str(s[1], "judge_reply"), "10 9") == 0);
    CHECK(json_is_false(json_object_get(s[3], "parsed")));
    CHECK(json_is_null(json_object_get(s[3], "score")));
    CHECK(json_is_false(json_object_get(s[4], "judged")));
    CHECK(json_is_null(json_object_get(s[4], "score")));
    CHECK(json_is_null(json_object_get(s[5], "score")));
    CHECK(strcmp(str(s[2], "judge_custom_id"), "llava_bench/q2/2") == 0);
    json_decref(e);
    free_samples(s, 6);

    /* no reply at all: not scored, no metric */
    CHECK_OK(run_replies("llava_bench", qs, answers, "", &e, s));
    CHECK(strcmp(str(e, "status"), "not scored") == 0);
    CHECK(json_object_get(e, "relative_score") == NULL);
    CHECK_EQ(integer(e, "unjudged"), 5);
    json_decref(e);
    free_samples(s, 6);
    json_decref(qs);
}

static void test_mmvet_metrics(void)
{
    json_t *qs = json_pack("[{s:s, s:s, s:s, s:[s,s]}, {s:s, s:s, s:s, s:[s]},"
                           " {s:s, s:s, s:s, s:[s,s]}, {s:s, s:s, s:s, s:[s]}]",
                           "question_id", "v0", "question", "Q", "answer", "A", "capability",
                           "rec", "ocr", "question_id", "v1", "question", "Q", "answer", "A",
                           "capability", "rec", "question_id", "v2", "question", "Q", "answer",
                           "A", "capability", "ocr", "math", "question_id", "v3", "question", "Q",
                           "answer", "A", "capability", "math");
    const char *answers[4] = {"a", "b", "c", "d"};
    const char *replies = "{\"custom_id\": \"mmvet/v0/0\", \"reply\": \"1.0\"}\n"
                          "{\"custom_id\": \"mmvet/v1/1\", \"reply\": \"0.5\"}\n"
                          "{\"custom_id\": \"mmvet/v2/2\", \"reply\": \"0.0\"}\n"
                          "{\"custom_id\": \"mmvet/v3/3\", \"reply\": \"1\"}\n";
    json_t *e = NULL, *s[4] = {0};
    CHECK_OK(run_replies("mmvet", qs, answers, replies, &e, s));
    /* 1, 0.5, 0, 1: 62.5; rec (1, 0.5) 75, ocr (1, 0) 50, math (0, 1) 50 */
    CHECK(strcmp(str(e, "status"), "scored") == 0);
    CHECK_NEAR(num(e, "score"), 62.5, 1e-12);
    json_t *caps = json_object_get(e, "capabilities");
    CHECK_NEAR(num(json_object_get(caps, "rec"), "score"), 75, 1e-12);
    CHECK_NEAR(num(json_object_get(caps, "ocr"), "score"), 50, 1e-12);
    CHECK_NEAR(num(json_object_get(caps, "math"), "score"), 50, 1e-12);
    CHECK_EQ(integer(json_object_get(caps, "ocr"), "samples"), 2);
    CHECK_NEAR(num(s[3], "score"), 1, 0);
    json_decref(e);
    free_samples(s, 4);
    json_decref(qs);
}

static void test_mmhal_metrics(void)
{
    json_t *qs = json_array();
    const char *types[5] = {"attribute", "attribute", "counting", "counting", "adversarial"};
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "%d", i);
        json_array_append_new(qs, json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "question_id", id,
                                            "question", "Q", "gt_answer", "G", "image_content",
                                            "x", "question_type", types[i], "question_topic",
                                            "t"));
    }
    const char *answers[5] = {"a", "b", "c", "d", "e"};
    const char *replies = "{\"custom_id\": \"mmhal/0/0\", \"reply\": \"Good.\\nRating: 5\"}\n"
                          "{\"custom_id\": \"mmhal/1/1\", \"reply\": \"Rating: 2\"}\n"
                          "{\"custom_id\": \"mmhal/2/2\", \"reply\": \"Wrong count. rating: 0\"}\n"
                          "{\"custom_id\": \"mmhal/3/3\", \"reply\": \"Rating: 6\"}\n"
                          "{\"custom_id\": \"mmhal/4/4\", \"reply\": \"no rating here\"}\n";
    json_t *e = NULL, *s[5] = {0};
    CHECK_OK(run_replies("mmhal", qs, answers, replies, &e, s));
    /* 5, 2, 0, 6: average 3.25, 2 of 4 below 3; attribute 3.5, counting 3 */
    CHECK(strcmp(str(e, "status"), "partially scored") == 0);
    CHECK_EQ(integer(e, "unparsed"), 1);
    CHECK_NEAR(num(e, "average_score"), 3.25, 1e-12);
    CHECK_NEAR(num(e, "hallucination_rate"), 0.5, 1e-12);
    json_t *t = json_object_get(e, "question_types");
    CHECK_NEAR(num(json_object_get(t, "attribute"), "average_score"), 3.5, 1e-12);
    CHECK_NEAR(num(json_object_get(t, "counting"), "average_score"), 3, 1e-12);
    CHECK(json_object_get(t, "adversarial") == NULL);
    CHECK(json_is_true(json_object_get(s[1], "hallucination")));
    CHECK(json_is_false(json_object_get(s[0], "hallucination")));
    json_decref(e);
    free_samples(s, 5);
    json_decref(qs);
}

static void test_mementos_metrics(void)
{
    json_t *qs = json_pack("[{s:s, s:s, s:[s,s,s], s:[s,s]}, {s:s, s:s, s:[s], s:[s]}]",
                           "question_id", "m0", "question", "Describe.", "objects", "man", "dog",
                           "ball", "behaviours", "throw ball", "run", "question_id", "m1",
                           "question", "Describe.", "objects", "car", "behaviours", "drive");
    const char *answers[2] = {"a", "b"};
    const char *replies =
        "{\"custom_id\": \"mementos/m0/0\", \"reply\": \"Objects: a man, dog, frisbee\\n"
        "Behaviours: throw ball, run, bark\"}\n"
        "{\"custom_id\": \"mementos/m1/1\", \"reply\": \"Objects: Car\\nBehaviours: none\"}\n";
    json_t *e = NULL, *s[2] = {0};
    CHECK_OK(run_replies("mementos", qs, answers, replies, &e, s));
    /* m0 objects 2 of 3 / 2 of 3: P R F1 2/3; behaviours 2 of 3 / 2 of 2:
     * P 2/3, R 1, F1 0.8. m1 objects 1 1 1; behaviours none: 0 0 0. */
    CHECK(strcmp(str(e, "status"), "scored") == 0);
    CHECK_NEAR(num(e, "object_precision"), 100.0 * 5 / 6, 1e-9);
    CHECK_NEAR(num(e, "object_recall"), 100.0 * 5 / 6, 1e-9);
    CHECK_NEAR(num(e, "object_f1"), 100.0 * 5 / 6, 1e-9);
    CHECK_NEAR(num(e, "behaviour_precision"), 100.0 / 3, 1e-9);
    CHECK_NEAR(num(e, "behaviour_recall"), 50, 1e-9);
    CHECK_NEAR(num(e, "behaviour_f1"), 40, 1e-9);
    CHECK_NEAR(num(s[0], "behaviour_f1"), 0.8, 1e-12);
    json_decref(e);
    free_samples(s, 2);
    json_decref(qs);
}

/* Requests file: the batch-input shape, one line per answered sample;
 * other benchmarks' lines survive a rewrite. */
static void test_write_requests(void)
{
    char *path = fs_join(g_dir, "requests.jsonl");
    json_t *mv = json_pack("[{s:s, s:s, s:s, s:[s]}, {s:s, s:s, s:s, s:[s]}]", "question_id",
                           "v0", "question", "Q0", "answer", "GT0", "capability", "rec",
                           "question_id", "v1", "question", "Q1", "answer", "GT1", "capability",
                           "ocr");
    json_t *mh = json_pack("[{s:s, s:s, s:s, s:[s], s:s}]", "question_id", "0", "question", "Q",
                           "gt_answer", "G", "image_content", "x", "question_type", "counting");
    const char *answers[2] = {"ANS0", "ANS1"};
    bench_judge_opts o = {.mode = BENCH_JUDGE_WRITE_REQUESTS, .model = "judge-x",
                          .prompts_dir = SIMA_SOURCE_DIR "/data/judges", .requests_path = path};
    json_t *e = NULL, *s[2] = {0};
    CHECK_OK(bench_judge_run(&o, "mmvet", mv, answers, &e, s));
    CHECK(strcmp(str(e, "status"), "awaiting judge") == 0);
    CHECK_EQ(integer(e, "requests"), 2);
    CHECK(json_object_get(e, "score") == NULL);
    json_decref(e);
    free_samples(s, 2);
    CHECK_OK(bench_judge_run(&o, "mmhal", mh, answers, &e, s));
    json_decref(e);
    free_samples(s, 1);
    CHECK_OK(bench_judge_run(&o, "mmvet", mv, answers, &e, s)); /* again: replaces its lines */
    json_decref(e);
    free_samples(s, 2);

    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(fs_read_all(path, &buf, &len));
    int lines = 0, mmvet = 0;
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        json_t *v = json_loadb(line, strcspn(line, "\n"), 0, NULL);
        CHECK(v != NULL);
        lines++;
        const char *id = str(v, "custom_id");
        CHECK(strcmp(str(v, "method"), "POST") == 0);
        CHECK(strcmp(str(v, "url"), "/v1/chat/completions") == 0);
        json_t *body = json_object_get(v, "body");
        CHECK(strcmp(str(body, "model"), "judge-x") == 0);
        CHECK(json_number_value(json_object_get(body, "temperature")) == 0);
        CHECK(integer(body, "max_tokens") > 0);
        json_t *msgs = json_object_get(body, "messages");
        CHECK_EQ(json_array_size(msgs), 2);
        if (strcmp(id, "mmvet/v1/1") == 0) {
            mmvet++;
            const char *user = str(json_array_get(msgs, 1), "content");
            CHECK(strstr(user, "Q1") && strstr(user, "GT1") && strstr(user, "ANS1"));
        } else if (strcmp(id, "mmvet/v0/0") == 0) {
            mmvet++;
        } else {
            CHECK(strcmp(id, "mmhal/0/0") == 0);
        }
        json_decref(v);
    }
    CHECK_EQ(lines, 3);
    CHECK_EQ(mmvet, 2);
    free(buf);

    /* a file that is not a requests file is never overwritten */
    char *other = write_file("notes.jsonl", "hello\n");
    o.requests_path = other;
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", mv, answers, &e, s), "notes.jsonl: line 1");
    CHECK(s[0] == NULL && e == NULL);
    CHECK_OK(fs_read_all(other, &buf, &len));
    CHECK(strcmp(buf, "hello\n") == 0);
    free(buf);
    free(other);
    json_decref(mv);
    json_decref(mh);
    free(path);
}

static void test_errors(void)
{
    json_t *qs = json_pack("[{s:s, s:s, s:s}]", "question_id", "v0", "question", "Q", "answer",
                           "A");
    const char *answers[1] = {"a"};
    json_t *e = NULL, *s[1] = {0};
    CHECK_FAILS_WITH(run_replies("mmvet", qs, answers, "{\"custom_id\": \"x\"}\n{oops\n", &e, s),
                     "replies.jsonl: line 2");
    CHECK(e == NULL && s[0] == NULL);
    CHECK_FAILS_WITH(run_replies("mmvet", qs, answers, "{\"reply\": \"1\"}\n", &e, s),
                     "no \"custom_id\"");
    bench_judge_opts o = {.mode = BENCH_JUDGE_READ_REPLIES, .model = "m",
                          .prompts_dir = SIMA_SOURCE_DIR "/data/judges",
                          .replies_path = "/nonexistent/replies.jsonl"};
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", qs, answers, &e, s),
                     "/nonexistent/replies.jsonl");
    o.prompts_dir = "/nonexistent/judges";
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", qs, answers, &e, s),
                     "/nonexistent/judges/mmvet.txt");
    o.mode = BENCH_JUDGE_NONE;
    CHECK_OK(bench_judge_run(&o, "mmvet", qs, answers, &e, s));
    CHECK(strcmp(str(e, "status"), "not scored") == 0);
    CHECK_EQ(integer(e, "answered"), 1);
    json_decref(e);
    free_samples(s, 1);
    o.mode = BENCH_JUDGE_ONLINE;
    o.prompts_dir = SIMA_SOURCE_DIR "/data/judges";
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", qs, answers, &e, s), "SIMA_JUDGE_URL");
    o.model = "";
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", qs, answers, &e, s), "judge model's name");
    o.model = "m";
    CHECK_FAILS_WITH(bench_judge_run(&o, "pope", qs, answers, &e, s), "not a judge-scored");
    /* a Mementos question without its ground truth cannot be scored */
    json_t *mq = json_pack("[{s:s, s:s}]", "question_id", "m7", "question", "Describe.");
    CHECK_FAILS_WITH(run_replies("mementos", mq, answers,
                                 "{\"custom_id\": \"mementos/m7/0\", \"reply\": "
                                 "\"Objects: a\\nBehaviours: b\"}\n", &e, s),
                     "mementos question m7: no \"objects\"");
    json_decref(mq);
    /* a placeholder the question cannot fill */
    json_t *bad = json_pack("[{s:s, s:s}]", "question_id", "v9", "question", "Q");
    o.mode = BENCH_JUDGE_WRITE_REQUESTS;
    char *req = fs_join(g_dir, "req-bad.jsonl");
    o.requests_path = req;
    CHECK_FAILS_WITH(bench_judge_run(&o, "mmvet", bad, answers, &e, s), "question v9");
    CHECK(!fs_is_file(req));
    free(req);
    json_decref(bad);
    json_decref(qs);
}

int main(void)
{
    g_dir = test_tmpdir("judge");
    test_not_scored();
    test_llava_parse();
    test_mmvet_parse();
    test_mmhal_parse();
    test_mementos_parse();
    test_prompt();
    test_shipped_prompts();
    test_llava_metrics();
    test_mmvet_metrics();
    test_mmhal_metrics();
    test_mementos_metrics();
    test_write_requests();
    test_errors();
    free(g_dir);
    return check_finish();
}
