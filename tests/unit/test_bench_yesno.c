/* test_bench_yesno.c — POPE and MME scoring against hand-worked values. */
#include "bench_yesno.h"
#include "check.h"
#include "err.h"

#include <string.h>

static void test_pope_extraction(void)
{
    /* eval_pope.py: first sentence, commas dropped, split on ' ',
     * "No"/"no"/"not" -> no, anything else -> yes */
    CHECK(bench_pope_answer_is_yes("Yes"));
    CHECK(bench_pope_answer_is_yes("yes, it is"));
    CHECK(bench_pope_answer_is_yes("Yes, there is a dog in the image."));
    CHECK(!bench_pope_answer_is_yes("No"));
    CHECK(!bench_pope_answer_is_yes("No, there is no dog."));
    CHECK(!bench_pope_answer_is_yes("no"));
    CHECK(!bench_pope_answer_is_yes("There is not a dog"));
    /* only the first sentence counts */
    CHECK(bench_pope_answer_is_yes("Yes. There is no cat."));
    CHECK(!bench_pope_answer_is_yes("No. Yes there is."));
    /* "No," with the comma removed is the word No */
    CHECK(!bench_pope_answer_is_yes("No, it is not."));
    /* case-sensitive, punctuation other than ',' and '.' kept: a yes */
    CHECK(bench_pope_answer_is_yes("NO"));
    CHECK(bench_pope_answer_is_yes("Not"));
    CHECK(bench_pope_answer_is_yes("no!"));
    /* "nothing", "none" are other words */
    CHECK(bench_pope_answer_is_yes("nothing"));
    CHECK(bench_pope_answer_is_yes(""));
    /* the split is on single spaces: the empty tokens of "  " are harmless */
    CHECK(!bench_pope_answer_is_yes("  no  "));
    /* the answer is stripped first (LLaVA's model_vqa_loader.py writes
     * outputs.strip()): "No\n" is the token "No" -> no; unstripped, the
     * token "No\n" would match nothing -> yes */
    CHECK(!bench_pope_answer_is_yes("No\n"));
    CHECK(!bench_pope_answer_is_yes("\tnot\n"));
    CHECK(bench_pope_answer_is_yes("Yes\n"));
}

static void test_pope_metrics(void)
{
    /* labels y y y n n ; predictions y n y y n -> TP 2, FN 1, FP 1, TN 1 */
    bool label[5] = {true, true, true, false, false};
    bool pred[5] = {true, false, true, true, false};
    bench_confusion c = {0};
    for (int i = 0; i < 5; i++)
        bench_confusion_add(&c, pred[i], label[i]);
    CHECK_EQ(c.tp, 2);
    CHECK_EQ(c.fn, 1);
    CHECK_EQ(c.fp, 1);
    CHECK_EQ(c.tn, 1);
    bench_pope_metrics m = bench_pope_metrics_of(&c);
    CHECK_EQ(m.n, 5);
    CHECK_NEAR(m.accuracy, 3.0 / 5, 1e-12);
    CHECK_NEAR(m.precision, 2.0 / 3, 1e-12);
    CHECK_NEAR(m.recall, 2.0 / 3, 1e-12);
    CHECK_NEAR(m.f1, 2.0 / 3, 1e-12);
    CHECK_NEAR(m.yes_ratio, 3.0 / 5, 1e-12);

    /* all "no": precision's denominator is 0 -> reported 0, not NaN */
    bench_confusion z = {0};
    bench_confusion_add(&z, false, true);
    bench_confusion_add(&z, false, false);
    bench_pope_metrics mz = bench_pope_metrics_of(&z);
    CHECK_NEAR(mz.precision, 0, 0);
    CHECK_NEAR(mz.recall, 0, 0);
    CHECK_NEAR(mz.f1, 0, 0);
    CHECK_NEAR(mz.accuracy, 0.5, 1e-12);
    CHECK_NEAR(mz.yes_ratio, 0, 0);
    bench_confusion empty = {0};
    bench_pope_metrics me = bench_pope_metrics_of(&empty);
    CHECK_EQ(me.n, 0);
    CHECK_NEAR(me.accuracy, 0, 0);
}

static void test_mme_parse(void)
{
    CHECK_EQ(bench_mme_parse("yes"), BENCH_YN_YES);
    CHECK_EQ(bench_mme_parse("No"), BENCH_YN_NO);
    CHECK_EQ(bench_mme_parse("Yes."), BENCH_YN_YES);
    CHECK_EQ(bench_mme_parse("yes, it is"), BENCH_YN_YES);
    CHECK_EQ(bench_mme_parse("No, it is not."), BENCH_YN_NO);
    /* only the first four characters are looked at */
    CHECK_EQ(bench_mme_parse("The answer is yes"), BENCH_YN_OTHER);
    CHECK_EQ(bench_mme_parse("I think no"), BENCH_YN_OTHER);
    /* "not " holds "no"; " yes" holds "yes" */
    CHECK_EQ(bench_mme_parse("not sure"), BENCH_YN_NO);
    CHECK_EQ(bench_mme_parse(" yes"), BENCH_YN_YES);
    CHECK_EQ(bench_mme_parse("Two"), BENCH_YN_OTHER);
    CHECK_EQ(bench_mme_parse(""), BENCH_YN_OTHER);
    /* a 2-byte character counts as one of the four */
    CHECK_EQ(bench_mme_parse("\xc3\xa9yes"), BENCH_YN_YES);
    /* stripped first: "   no" is "no" (unstripped its first four
     * characters "   n" hold neither word -> other); "yes\n" is exactly yes */
    CHECK_EQ(bench_mme_parse("   no"), BENCH_YN_NO);
    CHECK_EQ(bench_mme_parse("yes\n"), BENCH_YN_YES);
    CHECK_EQ(bench_mme_parse("\n\n\nyes, it is"), BENCH_YN_YES);
}

static void test_mme_score(void)
{
    int existence = bench_mme_subtask_index("existence");
    int count = bench_mme_subtask_index("count");
    int code = bench_mme_subtask_index("code_reasoning");
    CHECK_EQ(existence, 0);
    CHECK_EQ(code, 13);
    CHECK_EQ(bench_mme_subtask_index("nope"), -1);
    /* existence: img a both right, img b one right -> acc 3/4, acc+ 1/2
     * -> 75 + 50 = 125. count: img c both wrong -> 0. code: img d both
     * right -> 200. Items deliberately out of order. */
    bench_mme_item items[] = {
        {existence, "a.jpg", true}, {existence, "b.jpg", false},
        {count, "c.jpg", false},    {code, "d.png", true},
        {existence, "b.jpg", true}, {existence, "a.jpg", true},
        {count, "c.jpg", false},    {code, "d.png", true},
    };
    bench_mme_result r;
    CHECK_OK(bench_mme_score(items, sizeof items / sizeof items[0], &r));
    CHECK_EQ(r.sub[existence].questions, 4);
    CHECK_EQ(r.sub[existence].images, 2);
    CHECK_NEAR(r.sub[existence].acc, 0.75, 1e-12);
    CHECK_NEAR(r.sub[existence].acc_plus, 0.5, 1e-12);
    CHECK_NEAR(r.sub[existence].score, 125.0, 1e-9);
    CHECK_NEAR(r.sub[count].score, 0.0, 0);
    CHECK_NEAR(r.sub[code].score, 200.0, 1e-9);
    CHECK_NEAR(r.perception, 125.0, 1e-9);
    CHECK_NEAR(r.cognition, 200.0, 1e-9);
    CHECK_EQ(r.perception_present, 2);
    CHECK_EQ(r.cognition_present, 1);

    bench_mme_item bad[] = {{14, "x", true}};
    CHECK_FAILS_WITH(bench_mme_score(bad, 1, &r), "no known subtask");
}

int main(void)
{
    test_pope_extraction();
    test_pope_metrics();
    test_mme_parse();
    test_mme_score();
    return check_finish();
}
