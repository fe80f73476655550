/* bench_judge.h — benchmarks whose score comes from a judge model
 * (LLaVA-Bench in-the-wild, MM-Vet, MMHal-Bench, Mementos). Without a judge
 * they are reported "not scored", with no metric at all: never a number
 * that was not produced by the judge. */
#ifndef SIMA_BENCH_JUDGE_H
#define SIMA_BENCH_JUDGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Is this suite name ("llava_bench", "mmvet", "mmhal", "mementos") one
 * that needs a judge? */
bool bench_is_judge_scored(const char *name);

/* The results-JSON entry of a judge-scored benchmark run without a judge:
 *   {"benchmark": name, "status": "not scored", "scored": false,
 *    "reason": "...", "answered": n}
 * with no metric fields. NULL when out of memory. */
json_t *bench_judge_not_scored(const char *name, size_t answered);

#endif
