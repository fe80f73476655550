/* test_bench_source.c — the official-file readers (bench_source.h) on the
 * hand-written release trees under tests/data/bench-official (one per
 * benchmark, a few questions each, some images deliberately absent), plus
 * error cases written into a temporary folder. The data root comes from
 * SIMA_BENCH_DATA_ROOT (default: the tree in the source folder). */
#define _XOPEN_SOURCE 700 /* nftw, symlink */
#include "bench_source.h"
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root;

/* Loads a suite from dir; the array (empty on failure, the check fails). */
static json_t *load_from(const char *dir, const char *suite, int64_t limit,
                         bench_source_report *rep)
{
    json_t *out = json_array();
    int rc = bench_source_load(suite, dir, limit, out, rep);
    CHECK_MSG(rc == 0, "%s: %s", suite, err_msg());
    return out;
}

static json_t *load(const char *suite, int64_t limit, bench_source_report *rep)
{
    return load_from(root, suite, limit, rep);
}

static const char *field(const json_t *a, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(a, i), key));
}

static int str_is(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = s ? strlen(s) : 0, m = strlen(suffix);
    return s && n >= m && strcmp(s + n - m, suffix) == 0;
}

#define CHECK_STR(a, i, key, want)                                                         \
    CHECK_MSG(str_is(field(a, i, key), want), "[%d].%s = \"%s\", want \"%s\"", (int)(i),  \
              key, field(a, i, key) ? field(a, i, key) : "(null)", want)

/* Every object: string id, the benchmark, an absolute image path that ends
 * with the expected relative one (or an image_base64). */
static void check_common(const json_t *a, size_t i, const char *bench, const char *qid,
                         const char *image_suffix)
{
    CHECK_STR(a, i, "question_id", qid);
    CHECK_STR(a, i, "benchmark", bench);
    CHECK_MSG(field(a, i, "question") != NULL, "[%d] has a question", (int)i);
    if (image_suffix) {
        const char *img = field(a, i, "image");
        CHECK_MSG(img && img[0] == '/' && ends_with(img, image_suffix) && fs_is_file(img),
                  "[%d].image = %s, want .../%s", (int)i, img ? img : "(null)", image_suffix);
    }
}

/* arr holds exactly the n strings of want, in order. */
static int strings_are(const json_t *arr, const char *const *want, size_t n)
{
    if (!json_is_array(arr) || json_array_size(arr) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!str_is(json_string_value(json_array_get(arr, i)), want[i])) return 0;
    return 1;
}
#define STRINGS(arr, ...)                                                                  \
    strings_are(arr, (const char *const[]){__VA_ARGS__},                                   \
                sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define GET(a, i, key) json_object_get(json_array_get(a, i), key)

static void test_pope(void)
{
    bench_source_report rep;
    json_t *a = load("pope", 0, &rep);
    CHECK_EQ(json_array_size(a), 5);
    CHECK_EQ(rep.questions, 5);
    const char *ids[] = {"random-1", "random-2", "popular-1", "popular-2", "adversarial-2"};
    const char *labels[] = {"yes", "no", "yes", "no", "no"};
    const char *splits[] = {"random", "random", "popular", "popular", "adversarial"};
    for (size_t i = 0; i < 5 && i < json_array_size(a); i++) {
        check_common(a, i, "pope", ids[i],
                     i == 2 || i == 3 ? "/pope/val2014/COCO_val2014_000000000073.jpg"
                                      : "/pope/val2014/COCO_val2014_000000000042.jpg");
        CHECK_STR(a, i, "label", labels[i]);
        CHECK_STR(a, i, "split", splits[i]);
    }
    CHECK_STR(a, 4, "question", "Is there a bowl in the image?");
    CHECK_EQ(rep.missing_images, 1);
    CHECK(ends_with(rep.first_missing, "/pope/val2014/COCO_val2014_000000000074.jpg"));
    bench_source_report_free(&rep);
    json_decref(a);

    a = load("pope", 3, &rep);
    CHECK_EQ(json_array_size(a), 3);
    CHECK_STR(a, 2, "question_id", "popular-1");
    CHECK_EQ(rep.missing_images, 0);
    bench_source_report_free(&rep);
    json_decref(a);
}

static void test_mme(void)
{
    bench_source_report rep;
    json_t *a = load("mme", 0, &rep);
    /* 14 subtasks: existence 2 images, count 1 image (its other .txt has
     * no image: 2 questions left out), the rest 1 image; 2 questions each */
    CHECK_EQ(json_array_size(a), 30);
    CHECK_EQ(rep.missing_images, 2);
    CHECK(ends_with(rep.first_missing, "/count/000000000099.jpg"));
    check_common(a, 0, "mme", "existence/000000006040.jpg/0",
                 "/MME_Benchmark_release_version/existence/000000006040.jpg");
    CHECK_STR(a, 0, "question", "Is there a dog in this image? Please answer yes or no.");
    CHECK_STR(a, 0, "label", "no");  /* "No\r" in a CRLF file */
    CHECK_STR(a, 1, "label", "yes");
    CHECK_STR(a, 1, "question_id", "existence/000000006040.jpg/1");
    CHECK_STR(a, 2, "question_id", "existence/000000008277.jpg/0");
    CHECK_STR(a, 2, "label", "yes");
    CHECK_STR(a, 0, "subtask", "existence");
    CHECK_STR(a, 4, "question_id", "count/000000000100.jpg/0");
    CHECK_STR(a, 4, "subtask", "count");
    /* index 6..: position, color, posters (images/ + questions_answers_YN/) */
    check_common(a, 10, "mme", "posters/tt0001.jpg/0",
                 "/MME_Benchmark_release_version/posters/images/tt0001.jpg");
    CHECK_STR(a, 10, "label", "yes"); /* lower-case "yes" in the file */
    CHECK_STR(a, 11, "label", "no");
    /* OCR (the 10th subtask) has a .png image; "No " keeps its label */
    check_common(a, 20, "mme", "OCR/0001.png/0", "/MME_Benchmark_release_version/OCR/0001.png");
    CHECK_STR(a, 21, "label", "no");
    CHECK_STR(a, 29, "subtask", "code_reasoning");
    json_decref(a);
    bench_source_report_free(&rep);

    a = load("mme", 5, &rep);
    CHECK_EQ(json_array_size(a), 5);
    CHECK_EQ(rep.missing_images, 2); /* count's first file is passed first */
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_textvqa(void)
{
    bench_source_report rep;
    json_t *a = load("textvqa", 0, &rep);
    CHECK_EQ(json_array_size(a), 2);
    check_common(a, 0, "textvqa", "34603", "/textvqa/train_images/005635e119b9f32f.jpg");
    CHECK_STR(a, 0, "question",
              "what does the small white text spell?\nReference OCR token: COPENHAGEN, "
              "Thursday\nAnswer the question using a single word or phrase.");
    CHECK(STRINGS(GET(a, 0, "answers"), "copenhagen", "copenhagen", "copenhagen", "copenhagen",
                  "copenhagen", "thursday", "copenhagen", "copenhagen", "copenhagen",
                  "copenhagen"));
    /* joined as eval_textvqa.py joins: (image id = the line's question_id,
     * the prompt's first line lower-cased); the id is TextVQA's own */
    check_common(a, 1, "textvqa", "34602", "/textvqa/train_images/003a8ae2ef43b901.jpg");
    CHECK(STRINGS(GET(a, 1, "answers"), "nous les gosses", "dakota", "clos culombu",
                  "dakota digital", "dakota", "dakota", "dakota digital", "dakota digital",
                  "dakota", "dakota"));
    CHECK_EQ(rep.missing_images, 1);
    CHECK(ends_with(rep.first_missing, "/textvqa/train_images/00685bc495504d61.jpg"));
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_vizwiz(void)
{
    bench_source_report rep;
    json_t *a = load("vizwiz", 0, &rep);
    CHECK_EQ(json_array_size(a), 2);
    check_common(a, 0, "vizwiz", "VizWiz_val_00000000.jpg", "/vizwiz/val/VizWiz_val_00000000.jpg");
    CHECK_STR(a, 1, "question",
              "What is this?\nWhen the provided information is insufficient, respond with "
              "'Unanswerable'.\nAnswer the question using a single word or phrase.");
    CHECK(STRINGS(GET(a, 0, "answers"), "unanswerable", "unanswerable", "cooking",
                  "unanswerable"));
    CHECK(STRINGS(GET(a, 1, "answers"), "soup", "soup", "tomato soup"));
    CHECK_STR(a, 1, "category", "other");
    CHECK_EQ(rep.missing_images, 0);
    CHECK(rep.first_missing == NULL);
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_vqav2(void)
{
    bench_source_report rep;
    json_t *a = load("vqav2", 0, &rep);
    CHECK_EQ(json_array_size(a), 2);
    check_common(a, 0, "vqav2", "42000", "/vqav2/val2014/COCO_val2014_000000000042.jpg");
    CHECK_STR(a, 0, "question", "What is the dog lying on?");
    CHECK(STRINGS(GET(a, 0, "answers"), "bed", "blanket"));
    check_common(a, 1, "vqav2", "73001", "/vqav2/val2014/COCO_val2014_000000000073.jpg");
    CHECK(STRINGS(GET(a, 1, "answers"), "2", "two", "3"));
    CHECK_STR(a, 1, "category", "number");
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_gqa(void)
{
    bench_source_report rep;
    json_t *a = load("gqa", 0, &rep);
    CHECK_EQ(json_array_size(a), 3);
    /* the file's order, not sorted */
    check_common(a, 0, "gqa", "20968379", "/gqa/images/n288870.jpg");
    CHECK_STR(a, 0, "answer", "girl");
    check_common(a, 1, "gqa", "201307251", "/gqa/images/n161313.jpg");
    CHECK_STR(a, 1, "answer", "yes");
    CHECK_STR(a, 2, "question", "What color is the shirt?");
    CHECK_STR(a, 2, "answer", "white");
    json_decref(a);
    bench_source_report_free(&rep);

    a = load("gqa", 1, &rep);
    CHECK_EQ(json_array_size(a), 1);
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_scienceqa(void)
{
    bench_source_report rep;
    json_t *a = load("scienceqa", 0, &rep);
    /* test split order 7, 6, 5; 6 has no image (not in ScienceQA-IMG); 8 is train */
    CHECK_EQ(json_array_size(a), 2);
    check_common(a, 0, "scienceqa", "7", "/scienceqa/images/test/7/image.png");
    CHECK_STR(a, 0, "question",
              "Context: Eurasian eagle-owls are predators. Their feet are adapted for grabbing "
              "prey.\nWhich animal's feet are also adapted for grabbing prey?");
    CHECK(STRINGS(GET(a, 0, "options"), "bald eagle", "New Zealand falcon", "mallard"));
    CHECK_STR(a, 0, "answer", "B");
    check_common(a, 1, "scienceqa", "5", "/scienceqa/images/test/5/image.png");
    CHECK_STR(a, 1, "question", "Which of these states is farthest north?");
    CHECK_STR(a, 1, "answer", "A");
    CHECK_STR(a, 1, "category", "social science");
    CHECK_EQ(rep.missing_images, 0);
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_mmbench(void)
{
    bench_source_report rep;
    json_t *a = load("mmbench", 0, &rep);
    /* one question a row, in the file's order: rows 0 and 1, row 2 (no
     * image) left out, then the release's circular passes of row 0
     * (1000000, 2000000, 3000000) and of row 1 (1000001) as written */
    CHECK_EQ(json_array_size(a), 6);
    const char *ids[] = {"0", "1", "1000000", "2000000", "3000000", "1000001"};
    const long long index[] = {0, 1, 1000000, 2000000, 3000000, 1000001};
    /* the file's answer letters: B ("a dog") is A, D, C in the passes */
    const char *letters[] = {"B", "A", "A", "D", "C", "B"};
    for (size_t i = 0; i < 6 && i < json_array_size(a); i++) {
        check_common(a, i, "mmbench", ids[i], NULL);
        CHECK_EQ(json_integer_value(GET(a, i, "index")), index[i]);
        CHECK_STR(a, i, "answer", letters[i]);
        CHECK(GET(a, i, "image") == NULL);
        /* a JPEG starts FF D8 FF: "/9j/" in base64 */
        CHECK(field(a, i, "image_base64") && strncmp(field(a, i, "image_base64"), "/9j/", 4) == 0);
    }
    CHECK(STRINGS(GET(a, 0, "options"), "a cat", "a dog", "a bird", "a fish"));
    CHECK(STRINGS(GET(a, 2, "options"), "a dog", "a bird", "a fish", "a cat"));
    CHECK(STRINGS(GET(a, 3, "options"), "a bird", "a fish", "a cat", "a dog"));
    CHECK(STRINGS(GET(a, 4, "options"), "a fish", "a cat", "a dog", "a bird"));
    CHECK_STR(a, 0, "question", "What is shown in the picture?"); /* hint "nan" left out */
    CHECK_STR(a, 0, "category", "image_scene");
    /* row 1: quoted cells, the hint (with a newline) before the question */
    CHECK_STR(a, 1, "question", "Read the text.\nIt is short.\nWhich word is \"right\"?");
    CHECK(STRINGS(GET(a, 1, "options"), "yes", "no"));
    CHECK(STRINGS(GET(a, 5, "options"), "no", "yes"));
    CHECK_STR(a, 5, "question", "Read the text.\nIt is short.\nWhich word is \"right\"?");
    CHECK_EQ(rep.missing_images, 1);
    CHECK_MSG(rep.first_missing && strstr(rep.first_missing, "mmbench_dev_20230712.tsv: line 5") &&
                  strstr(rep.first_missing, "index 2"),
              "first_missing = %s", rep.first_missing ? rep.first_missing : "(null)");
    json_decref(a);
    bench_source_report_free(&rep);

    a = load("mmbench", 5, &rep);
    CHECK_EQ(json_array_size(a), 5);
    CHECK_STR(a, 4, "question_id", "3000000");
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_seed(void)
{
    bench_source_report rep;
    json_t *a = load("seed", 0, &rep);
    CHECK_EQ(json_array_size(a), 2); /* the video question is not read */
    check_common(a, 0, "seed", "101669", "/seed_bench/SEED-Bench-image/1454426_2591111986.jpg");
    CHECK(STRINGS(GET(a, 0, "options"), "One", "Two", "Three", "Four"));
    CHECK_STR(a, 0, "answer", "A");
    CHECK_STR(a, 0, "category", "Instances Counting");
    check_common(a, 1, "seed", "5", "/seed_bench/SEED-Bench-image/2262_2589376826.jpg");
    CHECK_STR(a, 1, "answer", "D");
    CHECK_STR(a, 1, "category", "Scene Understanding");
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_chair(void)
{
    bench_source_report rep;
    json_t *a = load("chair", 0, &rep);
    /* chair/image_ids.txt: 139, 42, 74 (no image file) */
    CHECK_EQ(json_array_size(a), 2);
    check_common(a, 0, "chair", "139", "/coco/val2014/COCO_val2014_000000000139.jpg");
    CHECK_STR(a, 0, "question", "Please describe this image in detail.");
    /* instances: dining table, sofa (= couch in the table); captions: boy
     * (person), sofa, table; in the table's order */
    CHECK(STRINGS(GET(a, 0, "objects"), "person", "dining table", "couch"));
    check_common(a, 1, "chair", "42", "/coco/val2014/COCO_val2014_000000000042.jpg");
    /* instances: dog, chair; captions: puppy, chair, cats, desk */
    CHECK(STRINGS(GET(a, 1, "objects"), "dog", "chair", "dining table", "cat"));
    CHECK_EQ(rep.missing_images, 1);
    CHECK(ends_with(rep.first_missing, "/coco/val2014/COCO_val2014_000000000074.jpg"));
    json_decref(a);
    bench_source_report_free(&rep);

    a = load("chair", 1, &rep);
    CHECK_EQ(json_array_size(a), 1);
    CHECK_STR(a, 0, "question_id", "139");
    CHECK(STRINGS(GET(a, 0, "objects"), "person", "dining table", "couch"));
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_llava_bench(void)
{
    bench_source_report rep;
    json_t *a = load("llava_bench", 0, &rep);
    CHECK_EQ(json_array_size(a), 3);
    const char *refs[] = {"Reference zero.", "Reference one.", "Reference two."};
    /* a caption list is joined by newlines, as eval_gpt_review_bench.py does */
    const char *ctx[] = {"A temple at sunset.", "A temple at sunset.",
                         "A painting of a cat.\nThe cat is orange."};
    const char *cat[] = {"conv", "detail", "complex"};
    const char *ids[] = {"0", "1", "2"};
    for (size_t i = 0; i < 3 && i < json_array_size(a); i++) {
        check_common(a, i, "llava_bench", ids[i],
                     i < 2 ? "/llava-bench-in-the-wild/images/001.jpg"
                           : "/llava-bench-in-the-wild/images/002.jpg");
        CHECK_STR(a, i, "reference", refs[i]);
        CHECK_STR(a, i, "context", ctx[i]);
        CHECK_STR(a, i, "category", cat[i]);
    }
    CHECK_STR(a, 1, "question", "Describe this photo in detail.");
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_mmvet(void)
{
    bench_source_report rep;
    json_t *a = load("mmvet", 0, &rep);
    CHECK_EQ(json_array_size(a), 2);
    check_common(a, 0, "mmvet", "v1_0", "/mm-vet/images/v1_0.png");
    CHECK_STR(a, 0, "answer", "-1 <AND> -5");
    CHECK(STRINGS(GET(a, 0, "capability"), "ocr", "math"));
    check_common(a, 1, "mmvet", "v1_1", "/mm-vet/images/v1_1.jpg");
    CHECK_STR(a, 1, "answer", "cat <OR> kitten");
    CHECK(STRINGS(GET(a, 1, "capability"), "rec"));
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_mmhal(void)
{
    bench_source_report rep;
    json_t *a = load("mmhal", 0, &rep);
    CHECK_EQ(json_array_size(a), 2);
    check_common(a, 0, "mmhal", "0", "/mmhal-bench/images/5689913447_ebbc5c3c4b_o.jpg");
    CHECK_STR(a, 0, "gt_answer", "The bird is blue.");
    CHECK(STRINGS(GET(a, 0, "image_content"), "Animal", "Bird"));
    CHECK_STR(a, 0, "question_type", "attribute");
    CHECK_STR(a, 0, "question_topic", "Wildlife");
    check_common(a, 1, "mmhal", "1", "/mmhal-bench/images/0d3b2a1f_o.jpg");
    CHECK_STR(a, 1, "question", "How many apples are there?");
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_mementos(void)
{
    bench_source_report rep;
    json_t *a = load("mementos", 0, &rep);
    CHECK_EQ(json_array_size(a), 2);
    check_common(a, 0, "mementos", "dl-0001", "/mementos/images/dl-0001.jpg");
    CHECK(STRINGS(GET(a, 0, "objects"), "man", "bicycle"));
    CHECK(STRINGS(GET(a, 0, "behaviours"), "rides", "falls"));
    CHECK_STR(a, 0, "category", "daily_life");
    check_common(a, 1, "mementos", "cm-0002", "/mementos/images/cm-0002.jpg");
    CHECK(STRINGS(GET(a, 1, "behaviours"), "jumps"));
    json_decref(a);
    bench_source_report_free(&rep);
}

static void test_names(void)
{
    const char *const *n = bench_source_names();
    size_t k = 0;
    while (n[k]) k++;
    CHECK_EQ(k, 14);
    CHECK(str_is(n[0], "pope") && str_is(n[13], "mementos"));
}

/* ------------------------------------------------ a second, built root -- */

static char *tmp_root;

static void put(const char *rel, const char *text)
{
    char *path = fs_join(tmp_root, rel);
    for (char *s = strchr(path + strlen(tmp_root) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(path, 0755);
        *s = '/';
    }
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) DIE("cannot write %s", path);
    free(path);
}

static void link_to(const char *rel, const char *target_rel)
{
    char *path = fs_join(tmp_root, rel), *target = fs_join(root, target_rel);
    if (symlink(target, path) != 0) DIE("cannot link %s", path);
    free(path);
    free(target);
}

/* POPE's images from coco/val2014 when pope/val2014 is absent; CHAIR over
 * every val2014 image when chair/image_ids.txt is absent. */
static void test_fallbacks(void)
{
    put("pope/README", "images come from coco/val2014\n");
    put("chair/README", "no image_ids.txt: every image\n");
    link_to("pope/coco", "pope/coco");
    link_to("coco", "coco");
    link_to("chair/synonyms.txt", "chair/synonyms.txt");
    bench_source_report rep;
    json_t *a = load_from(tmp_root, "pope", 0, &rep);
    CHECK_EQ(json_array_size(a), 5);
    CHECK(ends_with(field(a, 0, "image"), "/coco/val2014/COCO_val2014_000000000042.jpg"));
    CHECK_EQ(rep.missing_images, 1);
    CHECK(ends_with(rep.first_missing, "/coco/val2014/COCO_val2014_000000000074.jpg"));
    json_decref(a);
    bench_source_report_free(&rep);

    a = load_from(tmp_root, "chair", 0, &rep);
    CHECK_EQ(json_array_size(a), 3); /* ids 42, 73, 139; 74 has no file */
    CHECK_STR(a, 0, "question_id", "42");
    CHECK_STR(a, 1, "question_id", "73");
    /* toothbrush: a COCO category the table lacks, kept by its name */
    CHECK(STRINGS(GET(a, 1, "objects"), "person", "toothbrush"));
    CHECK_STR(a, 2, "question_id", "139");
    CHECK_EQ(rep.missing_images, 1);
    json_decref(a);
    bench_source_report_free(&rep);
}

static int fails(const char *suite, const char *needle)
{
    json_t *out = json_array();
    bench_source_report rep;
    err_clear();
    int rc = bench_source_load(suite, tmp_root, 0, out, &rep);
    int ok = rc != 0 && strstr(err_msg(), needle) != NULL;
    if (!ok) fprintf(stderr, "%s: rc=%d, message \"%s\", want \"%s\"\n", suite, rc, err_msg(), needle);
    bench_source_report_free(&rep);
    json_decref(out);
    return ok;
}

static void test_errors(void)
{
    /* missing annotation files: the message names the file */
    CHECK(fails("textvqa", "textvqa/TextVQA_0.5.1_val.json: no such file"));
    put("textvqa/TextVQA_0.5.1_val.json",
        "{\"data\": [{\"question\": \"what is it?\", \"image_id\": \"im1\", \"question_id\": 7, "
        "\"answers\": [\"x\"]}]}");
    put("textvqa/llava_textvqa_val_v051_ocr.jsonl",
        "{\"question_id\": \"im1\", \"text\": \"What is that?\\nAnswer briefly.\"}\n");
    CHECK(fails("textvqa", "has no question \"What is that?\" of image im1"));
    put("textvqa/llava_textvqa_val_v051_ocr.jsonl",
        "{\"question_id\": \"im1\", \"text\": \"What is it?\"}\n");
    CHECK(fails("textvqa", "line 1: \"text\" should be the question"));
    CHECK(fails("mmbench", "mmbench_dev_20230712.tsv: no such file"));
    CHECK(fails("scienceqa", "problems.json: no such file"));
    CHECK(fails("llava_bench", "questions.jsonl: no such file"));
    CHECK(fails("mme", "MME_Benchmark_release_version/existence: no such folder"));
    CHECK(fails("nonsense", "unknown benchmark suite 'nonsense'"));

    put("gqa/testdev_balanced_questions.json", "{\"1\": {\"question\": \"q\",\n \"answer\" 3}}\n");
    CHECK(fails("gqa", "testdev_balanced_questions.json: line 2"));
    put("mementos/mementos.jsonl", "{\"id\": \"a\", \"image\": \"a.jpg\", \"question\": \"q\", "
                                   "\"objects\": [], \"behaviours\": []}\n{\"id\": \"b\",\n");
    CHECK(fails("mementos", "mementos.jsonl: line 2: not a JSON object"));
    put("mmbench/mmbench_dev_20230712.tsv",
        "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage\n"
        "0\tq\tnan\tx\ty\t\t\tA\tc\tAAAA\n"
        "1\tq\tnan\tx\ty\n");
    CHECK(fails("mmbench", "mmbench_dev_20230712.tsv: line 3: 5 cells, the header has 10"));
    put("mmbench/mmbench_dev_20230712.tsv", "index\tquestion\tA\tB\n0\tq\tx\ty\n");
    CHECK(fails("mmbench", "mmbench_dev_20230712.tsv: line 1: the header has no column \"hint\""));
    put("mmbench/mmbench_dev_20230712.tsv",
        "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage\n"
        "0\tq\tnan\tx\ty\t\t\tC\tc\tAAAA\n");
    CHECK(fails("mmbench", "answer \"C\" is not the letter of one of its 2 options"));
    /* VLMEvalKit's TSV: a pass's image cell holds the row index of its image */
    put("mmbench/mmbench_dev_20230712.tsv",
        "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage\n"
        "1000000\tq\tnan\tx\ty\t\t\tA\tc\t0\n");
    CHECK(fails("mmbench", "index 1000000: the image cell refers to row 0 (VLMEvalKit's TSV)"));
    put("vizwiz/val.json", "[{\"image\": 3, \"question\": \"q\", \"answers\": []}]");
    CHECK(fails("vizwiz", "vizwiz/val.json: [0]: \"image\": expected a string"));
    put("mm-vet/mm-vet.json", "{\"v1_0\": {\"imagename\": \"a.png\", \"question\": \"q\"}}");
    CHECK(fails("mmvet", "mm-vet.json: v1_0: \"answer\" is missing"));
    put("MME_Benchmark_release_version/existence/1.txt", "Is it? Please answer yes or no.\tMaybe\n");
    CHECK(fails("mme", "existence/1.txt: line 1: answer \"Maybe\": expected Yes or No"));
    /* CHAIR: the linked COCO files, an image listed twice */
    put("chair/image_ids.txt", "42\n139\n42\n");
    CHECK(fails("chair", "chair/image_ids.txt: image id 42 is listed twice"));
    put("chair/image_ids.txt", "42\nforty\n");
    CHECK(fails("chair", "chair/image_ids.txt: line 2: expected a COCO image id"));
    put("chair/image_ids.txt", "42\n7\n");
    CHECK(fails("chair", "chair/image_ids.txt: image id 7 is not in"));
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void test_pope_label_error(void)
{
    char *saved = tmp_root;
    tmp_root = test_tmpdir("bench-src-pope");
    put("pope/coco/coco_pope_random.json",
        "{\"question_id\": 1, \"image\": \"a.jpg\", \"text\": \"q\", \"label\": \"yes\"}\n"
        "{\"question_id\": 2, \"image\": \"a.jpg\", \"text\": \"q\", \"label\": \"maybe\"}\n");
    CHECK(fails("pope", "coco_pope_random.json: line 2: \"label\": expected \"yes\" or \"no\""));
    put("pope/coco/coco_pope_popular.json", "");
    put("pope/coco/coco_pope_adversarial.json", "");
    put("pope/val2014/a.jpg", "not decoded, only present");
    put("pope/coco/coco_pope_random.json",
        "{\"question_id\": 1, \"image\": \"a.jpg\", \"text\": \"q\", \"label\": \"yes\"}\n"
        "{\"question_id\": \"1\", \"image\": \"a.jpg\", \"text\": \"q\", \"label\": \"no\"}\n");
    CHECK(fails("pope", "question_id \"random-1\" appears twice"));
    put("pope/coco/coco_pope_random.json", "{\"question_id\": 1}\n");
    CHECK(fails("pope", "coco_pope_random.json: line 1: \"image\" is missing"));
    char *popular = fs_join(tmp_root, "pope/coco/coco_pope_popular.json");
    CHECK(remove(popular) == 0);
    free(popular);
    put("pope/coco/coco_pope_random.json", "");
    CHECK(fails("pope", "coco_pope_popular.json: no such file"));
    nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(tmp_root);
    tmp_root = saved;
}

int main(void)
{
    root = getenv("SIMA_BENCH_DATA_ROOT");
    if (!root || !root[0]) root = SIMA_SOURCE_DIR "/tests/data/bench-official";
    if (!fs_is_dir(root)) {
        printf("skip: no benchmark fixture tree at %s\n", root);
        return 77;
    }
    test_names();
    test_pope();
    test_mme();
    test_textvqa();
    test_vizwiz();
    test_vqav2();
    test_gqa();
    test_scienceqa();
    test_mmbench();
    test_seed();
    test_chair();
    test_llava_bench();
    test_mmvet();
    test_mmhal();
    test_mementos();
    tmp_root = test_tmpdir("bench-src");
    test_fallbacks();
    test_errors();
    test_pope_label_error();
    nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(tmp_root);
    return check_finish();
}
