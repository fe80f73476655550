/* bench_judge.c — "not scored" reporting for the judge-scored benchmarks. */
#include "bench_judge.h"

#include <string.h>

#include "err.h"

static const char *const JUDGE_SCORED[] = {"llava_bench", "mmvet", "mmhal", "mementos"};

bool bench_is_judge_scored(const char *name)
{
    for (size_t i = 0; i < sizeof JUDGE_SCORED / sizeof JUDGE_SCORED[0]; i++)
        if (strcmp(name, JUDGE_SCORED[i]) == 0)
            return true;
    return false;
}

json_t *bench_judge_not_scored(const char *name, size_t answered)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:I}", "benchmark", name, "status", "not scored",
                     "scored", 0, "reason",
                     "needs a judge model: none was configured, so no score is reported",
                     "answered", (json_int_t)answered);
}

/* Until the judge client lands, only BENCH_JUDGE_NONE is served. */
int bench_judge_run(const bench_judge_opts *o, const char *bench, json_t *questions,
                    const char *const *answers, json_t **entry, json_t **samples)
{
    (void)answers;
    size_t n = json_array_size(questions);
    if (o->mode != BENCH_JUDGE_NONE)
        return ERR("%s: judge scoring is not available in this build", bench);
    *entry = bench_judge_not_scored(bench, n);
    for (size_t i = 0; i < n; i++) samples[i] = json_pack("{s:n}", "score");
    return *entry ? 0 : ERR("out of memory");
}
