/* test_bench_judge.c — judge-scored benchmarks without a judge report
 * "not scored" and carry no metric. */
#include "bench_judge.h"
#include "check.h"

#include <string.h>

int main(void)
{
    CHECK(bench_is_judge_scored("mmvet"));
    CHECK(bench_is_judge_scored("llava_bench"));
    CHECK(bench_is_judge_scored("mmhal"));
    CHECK(bench_is_judge_scored("mementos"));
    CHECK(!bench_is_judge_scored("pope"));
    CHECK(!bench_is_judge_scored("MMVET"));

    json_t *r = bench_judge_not_scored("mmvet", 12);
    CHECK(r != NULL);
    CHECK(strcmp(json_string_value(json_object_get(r, "status")), "not scored") == 0);
    CHECK(json_is_false(json_object_get(r, "scored")));
    CHECK_EQ(json_integer_value(json_object_get(r, "answered")), 12);
    /* no number other than the sample count */
    const char *key;
    json_t *value;
    int numbers = 0;
    json_object_foreach(r, key, value) numbers += json_is_number(value);
    CHECK_EQ(numbers, 1);
    CHECK(json_object_get(r, "score") == NULL);
    CHECK(json_object_get(r, "accuracy") == NULL);
    json_decref(r);
    return check_finish();
}
