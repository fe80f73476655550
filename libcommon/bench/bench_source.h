/* bench_source.h — readers of the official benchmark release files.
 *
 * Each reader turns one benchmark's files, as downloaded and placed under a
 * data root (data/benchmarks/README.md says where each goes), into question
 * objects of the runner's question format (the JSONL format documented in
 * data/benchmarks/README.md), so the runner sees one shape whatever the
 * source. Image paths in the objects are absolute (or the object carries
 * "image_base64" instead, for releases that embed images, e.g. MMBench).
 *
 * Fields of a question object, beyond the fixture format's:
 *   all          "question_id" (string, unique within the benchmark),
 *                "benchmark", "question" (text without the runner's default
 *                instruction; a benchmark whose instruction differs, e.g.
 *                VizWiz, or that adds lines, e.g. TextVQA's OCR tokens, has
 *                them in the text already), "image" or "image_base64",
 *                optional "category"
 *   textvqa, vizwiz, vqav2   "answers": the ground-truth answer strings
 *   chair        "objects": ground-truth COCO category names of the image
 *   llava_bench  "reference": the reference (GPT-4) answer, "context": the
 *                image's caption/description given to the judge, "category"
 *   mmvet        "answer": ground truth (may hold <AND>/<OR>),
 *                "capability": array of capability names
 *   mmhal        "gt_answer", "image_content" (array of strings),
 *                "question_type", "question_topic"
 *   mementos     "objects", "behaviours": ground-truth arrays of strings
 * A question whose image file is missing is left out and counted (never a
 * silent drop: the runner reports the count).
 */
#ifndef SIMA_BENCH_SOURCE_H
#define SIMA_BENCH_SOURCE_H

#include <jansson.h>
#include <stdint.h>

typedef struct {
    long questions;          /* objects appended */
    long missing_images;     /* questions left out: their image file is absent */
    char *first_missing;     /* malloc'd path of the first missing image; NULL: none */
} bench_source_report;

/* The names the readers know, NULL-terminated: "pope", "mme", "textvqa",
 * "vizwiz", "vqav2", "gqa", "scienceqa", "mmbench", "seed", "chair",
 * "llava_bench", "mmvet", "mmhal", "mementos". */
const char *const *bench_source_names(void);

/* Appends the questions of one suite (a name above) found under data_root to
 * out (a JSON array), at most limit of them when limit > 0, in the release's
 * order. Errors (missing annotation file, malformed JSON/TSV, a field of the
 * wrong type) name the file and the problem via err.h and return -1; out may
 * then hold a prefix of the questions. */
int bench_source_load(const char *suite, const char *data_root, int64_t limit, json_t *out,
                      bench_source_report *rep);
void bench_source_report_free(bench_source_report *rep);

#endif
