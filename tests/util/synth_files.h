/* synth_files.h — made-up responses and verdicts files of any size, for
 * tests and perf programs that need many rows without running a model.
 * Rows are made a window at a time and written in rounds (io streams), so
 * memory does not grow with the file. Files carry provenance with their
 * schema, as the tools' inputs must. */
#ifndef SIMA_TEST_SYNTH_FILES_H
#define SIMA_TEST_SYNTH_FILES_H

#include "verdicts.h"

#include <stdbool.h>
#include <stdint.h>

/* Responses for prompts 0 .. n_prompts - 1, `candidates` each. Candidate c
 * of prompt p: 6 + (5p + 3c) % 23 token ids in [3, 1999] (inside the tiny
 * model's vocabulary, never its image token 2000), the last being EOS (2)
 * when (p + c) % 3 != 0; log-probs -0.25 each; text "answer p.c" with a
 * tail of (p + c) % 40 letters. No two candidates of a prompt are equal. */
int synth_responses(const char *path, int64_t n_prompts, int candidates);

/* Append one judgement, its text "... [[v]]" ("" without a verdict);
 * verdict < 0: skipped by the critic. */
void synth_push_verdict(verd_rows *v, int64_t prompt, int32_t first, int32_t second, int order,
                        int verdict, int consistent);

/* Verdicts for candidates 0 and 1 of every prompt of a responses file,
 * prompt p getting pattern p % 6: 0 sampled wins, 1 greedy wins, 2 no
 * verdict, 3 both orders agree (greedy), 4 both orders disagree, 5 both
 * orders agree (sampled). `reversed`: the rows in the opposite order (a
 * file sima-pairs must refuse). */
int synth_verdicts(const char *responses, const char *out, bool reversed);

#endif
