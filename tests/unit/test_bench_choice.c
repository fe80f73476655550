/* test_bench_choice.c — multiple-choice extraction (MMBench/SEED rule and
 * ScienceQA rule) and MMBench circular evaluation, hand-worked. */
#include "bench_choice.h"
#include "check.h"
#include "err.h"

#include <string.h>

static const char *const OPTS[4] = {"cat", "dog", "red apple", "apple pie"};

static void test_mmbench_extract(void)
{
    CHECK_EQ(bench_choice_extract("A", OPTS, 4), 'A');
    CHECK_EQ(bench_choice_extract("A.", OPTS, 4), 'A');
    CHECK_EQ(bench_choice_extract("(B)", OPTS, 4), 'B');
    CHECK_EQ(bench_choice_extract("The answer is B.", OPTS, 4), 'B');
    CHECK_EQ(bench_choice_extract("B: dog", OPTS, 4), 'B');
    CHECK_EQ(bench_choice_extract("[C]", OPTS, 4), 'C');
    /* two letters as tokens: ambiguous, then the text rule: none matches */
    CHECK_EQ(bench_choice_extract("A or B", OPTS, 4), BENCH_CHOICE_NONE);
    /* "A" the article counts as a letter token (as in VLMEvalKit) */
    CHECK_EQ(bench_choice_extract("A dog.", OPTS, 4), 'A');
    /* a letter beyond the options is not an option */
    CHECK_EQ(bench_choice_extract("E", OPTS, 4), BENCH_CHOICE_NONE);
    /* lower-case letters are not letter tokens */
    CHECK_EQ(bench_choice_extract("the answer is b", OPTS, 4), BENCH_CHOICE_NONE);
    /* option text: exactly one option text inside the answer */
    CHECK_EQ(bench_choice_extract("it is a Dog", OPTS, 4), 'B');
    CHECK_EQ(bench_choice_extract("Apple pie, clearly", OPTS, 4), 'D');
    /* "red apple pie" holds both "red apple" and "apple pie": none */
    CHECK_EQ(bench_choice_extract("red apple pie", OPTS, 4), BENCH_CHOICE_NONE);
    /* refusals and Z */
    CHECK_EQ(bench_choice_extract("Cannot determine the answer", OPTS, 4), 'Z');
    CHECK_EQ(bench_choice_extract("Z", OPTS, 4), 'Z');
    CHECK_EQ(bench_choice_extract("", OPTS, 4), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_choice_extract("B", NULL, 4), 'B');
    /* matching_util.py: the one option letter must be among the last four
     * tokens (index > len(splits) - 5). "A is wrong because the dog is
     * brown": 8 tokens, A at 0 -> no letter; the text rule then finds
     * "dog" (35 characters <= 2 * 24) -> B */
    CHECK_EQ(bench_choice_extract("A is wrong because the dog is brown", OPTS, 4), 'B');
    /* "Option C is the one I pick": 7 tokens, C at 1 (I is no option of
     * four) -> no letter, and no option text inside -> none */
    CHECK_EQ(bench_choice_extract("Option C is the one I pick", OPTS, 4), BENCH_CHOICE_NONE);
    /* five tokens, the letter at 1 > 5 - 5 -> kept */
    CHECK_EQ(bench_choice_extract("So C is my answer", OPTS, 4), 'C');
    /* can_infer_text gives nothing for an answer longer than twice the
     * option texts together: 56 characters > 2 * (3 + 3 + 9 + 9) = 48 */
    CHECK_EQ(bench_choice_extract("i think that the animal in this picture is a dog, surely", OPTS,
                                  4),
             BENCH_CHOICE_NONE);
    CHECK_EQ(bench_choice_extract("the animal in this picture is a dog", OPTS, 4), 'B');
    /* the length is that of the stripped prediction: 35 + 20 blanks */
    CHECK_EQ(bench_choice_extract("          the animal in this picture is a dog          ",
                                  OPTS, 4),
             'B');
}

static void test_seed_extract(void)
{
    /* convert_seed_for_submission.py: text == answer, text stripped */
    CHECK_EQ(bench_seed_extract("B", 4), 'B');
    CHECK_EQ(bench_seed_extract(" C\n", 4), 'C');
    CHECK_EQ(bench_seed_extract("B.", 4), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_seed_extract("(B)", 4), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_seed_extract("The answer is B", 4), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_seed_extract("b", 4), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_seed_extract("E", 4), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_seed_extract("", 4), BENCH_CHOICE_NONE);
}

static void test_scienceqa_extract(void)
{
    CHECK_EQ(bench_scienceqa_extract("A", 3), 'A');
    CHECK_EQ(bench_scienceqa_extract("B. dog", 3), 'B');
    CHECK_EQ(bench_scienceqa_extract("The answer is B.", 3), 'B');
    /* the regex's '.' is any character: needs one after the letter */
    CHECK_EQ(bench_scienceqa_extract("The answer is C", 3), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_scienceqa_extract("The answer is C!", 3), 'C');
    /* eval_science_qa.py has no rule for these: FAILED */
    CHECK_EQ(bench_scienceqa_extract("A.", 3), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_scienceqa_extract("(B)", 3), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_scienceqa_extract("b", 3), BENCH_CHOICE_NONE);
    /* two matches: FAILED */
    CHECK_EQ(bench_scienceqa_extract("The answer is A. The answer is B.", 3),
             BENCH_CHOICE_NONE);
    /* a letter past the question's choices */
    CHECK_EQ(bench_scienceqa_extract("D", 3), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_scienceqa_extract("The answer is F.", 5), BENCH_CHOICE_NONE);
    CHECK_EQ(bench_scienceqa_extract("E", 5), 'E');
    /* the answer is stripped first (model_vqa_science.py writes
     * outputs.strip()): " B\n" is "B"; "The answer is B " is "The answer
     * is B", where the regex's '.' finds no character -> FAILED */
    CHECK_EQ(bench_scienceqa_extract(" B\n", 3), 'B');
    CHECK_EQ(bench_scienceqa_extract("\nC. red", 3), 'C');
    CHECK_EQ(bench_scienceqa_extract("The answer is B ", 3), BENCH_CHOICE_NONE);
}

static void test_circular(void)
{
    CHECK_EQ(bench_mmbench_group_of(3), 3);
    CHECK_EQ(bench_mmbench_group_of(2000003), 3);
    /* question 1: 4 rotations all right; question 2: 3 of 4 right;
     * question 3: 2 rotations (2 options) both right -> 2/3 */
    long long ids[] = {1, 2, 1000001, 1000002, 3, 2000001, 2000002, 1000003,
                       3000001, 3000002};
    bool ok[] = {true, true, true, false, true, true, true, true, true, true};
    size_t n = sizeof ids / sizeof ids[0];
    long long groups[10];
    for (size_t i = 0; i < n; i++)
        groups[i] = bench_mmbench_group_of(ids[i]);
    bench_circular_result r;
    CHECK_OK(bench_mmbench_circular(groups, ok, n, &r));
    CHECK_EQ(r.groups, 3);
    CHECK_EQ(r.groups_correct, 2);
    CHECK_NEAR(r.accuracy, 2.0 / 3, 1e-12);
    /* vanilla (non-circular) accuracy over the same rows would be 9/10 */
    CHECK_OK(bench_mmbench_circular(groups, ok, 0, &r));
    CHECK_EQ(r.groups, 0);
    CHECK_NEAR(r.accuracy, 0, 0);
}

int main(void)
{
    test_mmbench_extract();
    test_seed_extract();
    test_scienceqa_extract();
    test_circular();
    return check_finish();
}
