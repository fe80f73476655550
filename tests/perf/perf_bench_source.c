/* perf_bench_source.c — time and memory of the official-file readers.
 *
 *   perf_bench_source DATA_ROOT SUITE [LIMIT]   time one suite on a real tree
 *   perf_bench_source [IMAGES]                  the CHAIR reader on a generated
 *       COCO-sized tree (default 40504 images, as val2014: about 7.3 instance
 *       annotations with a 40-number polygon and 5 captions per image,
 *       chair/image_ids.txt listing 500 of them)
 *
 * Prints the questions read, seconds, and the process's peak resident
 * memory (the JSON of instances_val2014.json dominates it).
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "bench_source.h"
#include "err.h"
#include "fs.h"
#include "golden.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static FILE *open_out(const char *root, const char *rel)
{
    char *p = fs_join(root, rel);
    FILE *f = fopen(p, "w");
    if (!f) DIE("cannot write %s", p);
    free(p);
    return f;
}

static void make_dirs(const char *root)
{
    const char *dirs[] = {"coco", "coco/annotations", "coco/val2014", "chair"};
    for (size_t i = 0; i < 4; i++) {
        char *p = fs_join(root, dirs[i]);
        if (mkdir(p, 0755) != 0) DIE("cannot create %s", p);
        free(p);
    }
}

/* instances_val2014.json: n images, 80 categories, ~7.3 annotations each. */
static void write_instances(const char *root, int n)
{
    FILE *f = open_out(root, "coco/annotations/instances_val2014.json");
    fputs("{\"info\": {}, \"licenses\": [], \"images\": [", f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s{\"id\": %d, \"file_name\": \"COCO_val2014_%012d.jpg\", \"width\": 640, "
                   "\"height\": 480}", i ? ", " : "", i + 1, i + 1);
    fputs("], \"annotations\": [", f);
    long id = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 7 + (i % 10 < 3); k++) {
            fprintf(f, "%s{\"id\": %ld, \"image_id\": %d, \"category_id\": %d, \"iscrowd\": 0, "
                       "\"area\": 1234.5, \"bbox\": [1.5, 2.5, 30.25, 40.75], \"segmentation\": [[",
                    id ? ", " : "", id, i + 1, 1 + (i * 7 + k * 13) % 80);
            for (int j = 0; j < 40; j++) fprintf(f, "%s%d.%02d", j ? ", " : "", 100 + j, j);
            fputs("]]}", f);
            id++;
        }
    fputs("], \"categories\": [", f);
    for (int c = 0; c < 80; c++)
        fprintf(f, "%s{\"supercategory\": \"s\", \"id\": %d, \"name\": \"thing%d\"}", c ? ", " : "",
                c + 1, c);
    fputs("]}\n", f);
    if (fclose(f) != 0) DIE("write failed");
}

static void write_captions_and_table(const char *root, int n)
{
    FILE *f = open_out(root, "coco/annotations/captions_val2014.json");
    fputs("{\"images\": [], \"annotations\": [", f);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 5; k++)
            fprintf(f, "%s{\"image_id\": %d, \"id\": %d, \"caption\": \"A thing%d next to a "
                       "gadget%d on a wooden table in a sunny room.\"}",
                    i || k ? ", " : "", i + 1, i * 5 + k, (i + k) % 80, k);
    fputs("]}\n", f);
    if (fclose(f) != 0) DIE("write failed");
    f = open_out(root, "chair/synonyms.txt");
    for (int c = 0; c < 80; c++) fprintf(f, "thing%d, gadget%d\n", c, c);
    if (fclose(f) != 0) DIE("write failed");
}

/* 500 listed ids, every 80th image, with (empty) image files. */
static void write_ids_and_images(const char *root, int n)
{
    FILE *ids = open_out(root, "chair/image_ids.txt");
    for (int i = 0, k = 0; i < n && k < 500; i += 80, k++) {
        fprintf(ids, "%d\n", i + 1);
        char rel[64];
        snprintf(rel, sizeof rel, "coco/val2014/COCO_val2014_%012d.jpg", i + 1);
        FILE *img = open_out(root, rel);
        if (fclose(img) != 0) DIE("write failed");
    }
    if (fclose(ids) != 0) DIE("write failed");
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void run(const char *root, const char *suite, int64_t limit)
{
    json_t *out = json_array();
    bench_source_report rep;
    double t0 = now();
    if (bench_source_load(suite, root, limit, out, &rep) != 0) err_exit();
    double dt = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%-12s %8ld questions  %6ld missing images  %8.2f s  peak RSS %7.1f MiB\n", suite,
           rep.questions, rep.missing_images, dt, ru.ru_maxrss / 1024.0);
    bench_source_report_free(&rep);
    json_decref(out);
}

int main(int argc, char **argv)
{
    err_set_program("perf_bench_source");
    if (argc >= 3) {
        run(argv[1], argv[2], argc > 3 ? atoll(argv[3]) : 0);
        return 0;
    }
    int n = argc > 1 ? atoi(argv[1]) : 40504;
    if (n < 1) DIE("IMAGES must be positive");
    char *root = test_tmpdir("perf-bench-source");
    make_dirs(root);
    double t0 = now();
    write_instances(root, n);
    write_captions_and_table(root, n);
    write_ids_and_images(root, n);
    struct stat st;
    char *inst = fs_join(root, "coco/annotations/instances_val2014.json");
    if (stat(inst, &st) != 0) DIE("cannot stat %s", inst);
    printf("generated %d images, instances_val2014.json %.1f MB, in %.1f s\n", n,
           st.st_size / 1e6, now() - t0);
    free(inst);
    run(root, "chair", 0);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(root);
    return 0;
}
