/* fuzz_bench_source.c — libFuzzer target: the official-file readers on
 * arbitrary release files. The first byte picks the file the rest of the
 * input becomes, in a data root made once under $TMPDIR: the MMBench TSV
 * (quoting, header, circular passes), a POPE JSON-lines split, an MME question
 * file, the GQA JSON object or the LLaVA-Bench questions. Every outcome is
 * fine except a crash, a leak or a sanitizer report.
 * Seed corpus: tests/fuzz/corpus/bench_source/.
 *
 *   CC=clang cmake -S . -B build-fuzz -DSIMA_FUZZ=ON -DSIMA_CUDA=OFF
 *   make -C build-fuzz fuzz_bench_source
 *   cp -r tests/fuzz/corpus/bench_source /tmp/corpus
 *   build-fuzz/fuzz/fuzz_bench_source -max_total_time=30 /tmp/corpus
 */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include "bench_source.h"
#include "bench_yesno.h"
#include "err.h"
#include "fs.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char root[256];

static void put(const char *rel, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *s = strchr(path + strlen(root) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(path, 0755);
        *s = '/';
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (len && fwrite(data, 1, len, f) != len) abort();
    if (fclose(f) != 0) abort();
}

/* The files the fuzzed one needs beside it, each valid and small. */
static void make_root(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/sima-fuzz-bench-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(root)) abort();
    put("pope/coco/coco_pope_popular.json", "", 0);
    put("pope/coco/coco_pope_adversarial.json", "", 0);
    for (int s = 0; s < BENCH_MME_SUBTASKS; s++) {
        char rel[128];
        snprintf(rel, sizeof rel, "MME_Benchmark_release_version/%s/0.txt",
                 bench_mme_subtask_names[s]);
        put(rel, "q?\tYes\n", 7);
    }
    static const char ANS[] = "{\"question_id\": 0, \"text\": \"r\"}\n";
    static const char CTX[] = "{\"image\": \"001.jpg\", \"caption\": \"c\"}\n";
    put("llava-bench-in-the-wild/answers_gpt4.jsonl", ANS, sizeof ANS - 1);
    put("llava-bench-in-the-wild/context.jsonl", CTX, sizeof CTX - 1);
}

static const struct {
    const char *suite, *file;
} TARGETS[] = {
    {"mmbench", "mmbench/mmbench_dev_20230712.tsv"},
    {"pope", "pope/coco/coco_pope_random.json"},
    {"mme", "MME_Benchmark_release_version/existence/0.txt"},
    {"gqa", "gqa/testdev_balanced_questions.json"},
    {"llava_bench", "llava-bench-in-the-wild/questions.jsonl"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root[0]) make_root();
    if (size < 1) return 0;
    size_t t = data[0] % (sizeof TARGETS / sizeof TARGETS[0]);
    put(TARGETS[t].file, data + 1, size - 1);
    json_t *out = json_array();
    bench_source_report rep;
    bench_source_load(TARGETS[t].suite, root, data[0] & 0x80 ? 3 : 0, out, &rep);
    bench_source_report_free(&rep);
    json_decref(out);
    err_clear();
    return 0;
}
