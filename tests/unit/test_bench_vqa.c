/* test_bench_vqa.c — the EvalAI normaliser, VQA soft accuracy and GQA
 * matching against hand-worked values. */
#include "bench_vqa.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static void check_norm(const char *in, const char *want, int line)
{
    char *got = bench_vqa_normalize(in);
    check_report(got && strcmp(got, want) == 0, __FILE__, line,
                 "normalize(\"%s\") = \"%s\", want \"%s\"", in, got ? got : "(null)", want);
    free(got);
}
#define NORM(in, want) check_norm(in, want, __LINE__)

static void test_normalizer(void)
{
    NORM("Two", "2");
    NORM("2", "2");
    NORM("two.", "2");
    NORM("an apple", "apple");
    NORM("The Apple", "apple");
    NORM("yes, it is", "yes it is");
    NORM("none", "0");
    NORM("Ten", "10");
    NORM("eleven", "eleven");
    /* a period before a digit stays; others go */
    NORM("3.5", "3.5");
    NORM("U.S.A.", "usa");
    /* commas and '?' go in word_tokenize: "1,000" is 1000 */
    NORM("1,000", "1000");
    NORM("what?", "what");
    /* "'s" is split off */
    NORM("dog's", "dog 's");
    /* word_tokenize removes ',' and '?' before it looks for "'s":
     * "cat',s" -> "cat's" -> "cat 's" */
    NORM("Cat',s", "cat 's");
    NORM("it'?s", "it 's");
    /* contractions restored */
    NORM("dont", "don't");
    NORM("isnt", "isn't");
    NORM("Im", "im"); /* the capitalised keys never match after lower() */
    /* punctuation with no space beside it -> a space; beside a space -> gone */
    NORM("black-and-white", "black and white");
    NORM("black - white", "black white");
    NORM("(B)", "b");
    NORM("left/right", "left right");
    /* PERIOD_STRIP runs after the punctuation step: in "v.-2 -" the '-'
     * touches a space, so every '-' is removed -> "v.2 "; the '.' now
     * stands before a digit and stays -> "v.2" */
    NORM("v.-2 -", "v.2");
    /* no '-' beside a space: it becomes a space -> "v. 2"; the '.' is
     * before a space and goes -> "v 2" */
    NORM("v.-2", "v 2");
    /* whitespace */
    NORM("  two\tdogs\n", "2 dogs");
    NORM("", "");
    NORM("a", "");
}

static void test_period_limit(void)
{
    /* re.UNICODE (32) passed as sub()'s count: only 32 periods go */
    char in[41], want[9];
    memset(in, '.', 40);
    in[40] = '\0';
    memset(want, '.', 8);
    want[8] = '\0';
    NORM(in, want);
}

static void test_soft_accuracy(void)
{
    /* k matches among 10: acc = (k*min(1,(k-1)/3) + (10-k)*min(1,k/3)) / 10
     * k=0: 0; k=1: 0.3; k=2: 0.6; k=3: 0.9; k=4: 1 */
    const char *one[10] = {"2", "3", "3", "3", "3", "3", "3", "3", "3", "3"};
    CHECK_NEAR(bench_vqa_soft_accuracy("two.", one, 10), 0.3, 1e-12);
    const char *two[10] = {"2", "Two", "3", "3", "3", "3", "3", "3", "3", "3"};
    CHECK_NEAR(bench_vqa_soft_accuracy("2", two, 10), 0.6, 1e-12);
    const char *three[10] = {"2", "two", "2.", "3", "3", "3", "3", "3", "3", "3"};
    CHECK_NEAR(bench_vqa_soft_accuracy("Two", three, 10), 0.9, 1e-12);
    const char *four[10] = {"2", "two", "2", "two", "3", "3", "3", "3", "3", "3"};
    CHECK_NEAR(bench_vqa_soft_accuracy("2", four, 10), 1.0, 1e-12);
    CHECK_NEAR(bench_vqa_soft_accuracy("4", four, 10), 0.0, 0);
    const char *apples[10] = {"apple", "apples", "an apple", "the apple", "red apple",
                              "apple", "fruit", "fruit", "fruit", "fruit"};
    /* "an apple" -> "apple": 4 of 10 ("apple" x2, "an apple", "the apple") */
    CHECK_NEAR(bench_vqa_soft_accuracy("An apple", apples, 10), 1.0, 1e-12);
    /* "apples" once -> 0.3 */
    CHECK_NEAR(bench_vqa_soft_accuracy("apples", apples, 10), 0.3, 1e-12);
    /* "yes, it is" is not "yes" */
    const char *yes[10] = {"yes", "yes", "yes", "yes", "yes", "yes", "yes", "yes", "yes", "yes"};
    CHECK_NEAR(bench_vqa_soft_accuracy("yes, it is", yes, 10), 0.0, 0);
    CHECK_NEAR(bench_vqa_soft_accuracy("Yes", yes, 10), 1.0, 0);
    CHECK_NEAR(bench_vqa_soft_accuracy("yes", yes, 0), 0.0, 0);
}

static void test_gqa(void)
{
    char *n = bench_gqa_normalize("  Left.. \n");
    CHECK(n && strcmp(n, "left") == 0);
    free(n);
    CHECK(bench_gqa_correct("Yes.", "yes"));
    CHECK(bench_gqa_correct("no", "no"));
    /* light normalisation only: no articles or number words */
    CHECK(!bench_gqa_correct("The table", "table"));
    CHECK(!bench_gqa_correct("Two", "2"));
    CHECK(!bench_gqa_correct("yes, it is", "yes"));
    CHECK(bench_gqa_correct("White", "white"));
}

int main(void)
{
    test_normalizer();
    test_period_limit();
    test_soft_accuracy();
    test_gqa();
    return check_finish();
}
