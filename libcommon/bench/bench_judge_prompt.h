/* bench_judge_prompt.h — judge prompt files (data/judges/BENCH.txt): a
 * system and a user message with {placeholders} filled from a question
 * object and the model's answer. data/judges/README.md documents the format:
 *   text before the first marker is a header comment, not sent
 *   a line "[system]" starts the system message, "[user]" the user message
 * A placeholder is "{name}", name of lower-case letters, digits and '_':
 * {answer} is the model's answer, any other name a field of the question
 * object (a string as is, a number as JSON, an array of strings joined with
 * ", "); {gt_answer} falls back to the question's "answer" field (MM-Vet's
 * ground truth). Other braces are literal text. */
#ifndef SIMA_BENCH_JUDGE_PROMPT_H
#define SIMA_BENCH_JUDGE_PROMPT_H

#include <jansson.h>

typedef struct {
    char *path;      /* the file, for messages */
    char *system;    /* template of the system message */
    char *user;      /* template of the user message */
    char hash[17];   /* FNV-1a 64 of the file's bytes, hex */
} bench_judge_prompt;

/* Reads PROMPTS_DIR/BENCH.txt. Errors name the file: unreadable, missing
 * "[system]" or "[user]", empty user message. */
int bench_judge_prompt_load(const char *prompts_dir, const char *bench, bench_judge_prompt *p);
void bench_judge_prompt_free(bench_judge_prompt *p);

/* Fills one template; *out malloc'd. Error (naming the prompt file and the
 * question id) when a placeholder has no value in the question. */
int bench_judge_prompt_render(const bench_judge_prompt *p, const char *tmpl,
                              const json_t *question, const char *answer, char **out);

#endif
