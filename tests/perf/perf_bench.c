/* perf_bench.c — scoring speed of the benchmark rules (libcommon/bench/).
 *
 *   perf_bench [N]
 *
 * For each benchmark, scores N answers (default 10000; target: under one
 * second each) made up here from a fixed list of answer styles: POPE
 * (extraction + metrics), MME (parse + subtask scores), VQA (EvalAI
 * normaliser on the answer and ten ground truths + soft accuracy), GQA,
 * MMBench (letter extraction + circular evaluation), ScienceQA, SEED, CHAIR
 * (80 categories, captions of ~20 words), and the judge-scored benchmarks'
 * reply parsing + aggregation (LLaVA-Bench, MM-Vet, MMHal, Mementos F1;
 * the judge's own time is the endpoint's). Prints one line per benchmark:
 * the time, best of 3, and answers per second. */
#include "bench_chair.h"
#include "bench_choice.h"
#include "bench_judge_rules.h"
#include "bench_vqa.h"
#include "bench_yesno.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const SHORT[] = {
    "Yes", "No", "yes, it is", "No, there is not.", "Two", "2", "two.", "an apple",
    "The answer is B.", "(B)", "A.", "black-and-white", "I think there are 3 dogs.",
    "Yes. There is a red bus next to the man on the street.",
};
#define N_SHORT (sizeof SHORT / sizeof SHORT[0])

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double sink; /* keeps results alive */

static void run_pope(long n)
{
    bench_confusion c = {0};
    for (long i = 0; i < n; i++)
        bench_confusion_add(&c, bench_pope_answer_is_yes(SHORT[i % N_SHORT]), i % 2);
    sink += bench_pope_metrics_of(&c).f1;
}

static void run_mme(long n)
{
    bench_mme_item *items = malloc(sizeof *items * (size_t)n);
    char (*names)[24] = malloc(sizeof *names * (size_t)n);
    for (long i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%ld.jpg", i / 2);
        bench_yn p = bench_mme_parse(SHORT[i % N_SHORT]);
        items[i] = (bench_mme_item){(int)(i / 2 % BENCH_MME_SUBTASKS), names[i],
                                    p == (bench_yn)(i % 2)};
    }
    bench_mme_result r;
    if (bench_mme_score(items, (size_t)n, &r) == 0)
        sink += r.perception;
    free(items);
    free(names);
}

static void run_vqa(long n)
{
    const char *gts[10] = {"2", "two", "2", "3", "2 dogs", "2", "two", "an apple", "2", "Yes"};
    for (long i = 0; i < n; i++)
        sink += bench_vqa_soft_accuracy(SHORT[i % N_SHORT], gts, 10);
}

static void run_gqa(long n)
{
    for (long i = 0; i < n; i++)
        sink += bench_gqa_correct(SHORT[i % N_SHORT], "yes");
}

static void run_mmbench(long n)
{
    static const char *const opts[4] = {"a red bus", "two dogs", "an apple", "black-and-white"};
    long long *groups = malloc(sizeof *groups * (size_t)n);
    bool *ok = malloc(sizeof *ok * (size_t)n);
    for (long i = 0; i < n; i++) {
        char c = bench_choice_extract(SHORT[i % N_SHORT], opts, 4);
        groups[i] = bench_mmbench_group_of((long long)(i % 4) * 1000000 + i / 4);
        ok[i] = c == 'B';
    }
    bench_circular_result r;
    if (bench_mmbench_circular(groups, ok, (size_t)n, &r) == 0)
        sink += r.accuracy;
    free(groups);
    free(ok);
}

static void run_scienceqa(long n)
{
    for (long i = 0; i < n; i++)
        sink += bench_scienceqa_extract(SHORT[i % N_SHORT], 4);
}

static void run_seed(long n)
{
    for (long i = 0; i < n; i++)
        sink += bench_seed_extract(SHORT[i % N_SHORT], 4);
}

static const char *const LLAVA_REPLIES[] = {"8 7\nBoth answers are helpful.", "9, 6\nThe second misses",
                                            "7 7", "no scores here"};
static const char *const MMHAL_REPLIES[] = {"The response is accurate.\nRating: 5",
                                            "rating: 2, hallucinated a dog", "Rating: 1 or Rating: 3"};

/* Judge replies: parse + the benchmark's aggregate, per reply. */
static void run_judge(long n)
{
    bench_judge_llava_acc acc = {0};
    double ref, model, score, p, r, f1;
    json_t *gt = json_pack("[sss]", "dog", "red car", "a man"), *objs, *behs;
    for (long i = 0; i < n; i++) {
        if (bench_judge_llava_parse(LLAVA_REPLIES[i % 4], &ref, &model))
            bench_judge_llava_add(&acc, ref, model);
        if (bench_judge_mmvet_parse(i % 2 ? "0.6" : "1.0 correct", &score)) sink += score;
        sink += bench_judge_mmhal_parse(MMHAL_REPLIES[i % 3]);
        if (bench_judge_mementos_parse("Objects: a dog, the red car, tree\nBehaviours: running",
                                       &objs, &behs)) {
            if (bench_judge_set_prf(objs, gt, &p, &r, &f1) == 0) sink += f1;
            json_decref(objs);
            json_decref(behs);
        }
    }
    json_t *j = bench_judge_llava_json(&acc);
    sink += json_real_value(json_object_get(j, "relative_score"));
    json_decref(j);
    json_decref(gt);
}

static bench_chair_vocab *chair_vocab;

static void run_chair(long n)
{
    static const char *const caps[] = {
        "A man and two women are sitting at a dining table with plates of pizza and cups.",
        "Two dogs run across a green field while a person throws a frisbee near the trees.",
        "A red bus is parked on the street next to a traffic light and several cars.",
        "A teddy bear sits on a couch beside a laptop, a remote and a cell phone.",
    };
    bool truth[80] = {0};
    for (int i = 0; i < 80; i += 3)
        truth[i] = true;
    bench_chair_counts c = {0};
    for (long i = 0; i < n; i++)
        bench_chair_add(&c, chair_vocab, caps[i % 4], truth);
    sink += bench_chair_i(&c);
}

/* 80 categories like COCO's, each with a few synonyms. */
static bench_chair_vocab *make_vocab(void)
{
    static const char *const base[] = {
        "person, man, woman, people, child", "bicycle, bike", "car, automobile",
        "motorcycle, motorbike", "airplane, plane", "bus", "train", "truck", "boat, ship",
        "traffic light, stop light", "fire hydrant", "stop sign", "parking meter", "bench",
        "bird", "cat, kitten", "dog, puppy", "horse", "sheep", "cow", "elephant", "bear",
        "zebra", "giraffe", "backpack", "umbrella", "handbag, purse", "tie", "suitcase",
        "frisbee", "skis, ski", "snowboard", "sports ball, ball", "kite", "baseball bat",
        "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "wine glass",
        "cup, mug", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
        "broccoli", "carrot", "hot dog", "pizza", "donut, doughnut", "cake", "chair",
        "couch, sofa", "potted plant, plant", "bed", "dining table, table", "toilet", "tv",
        "laptop", "mouse", "remote", "keyboard", "cell phone, phone", "microwave", "oven",
        "toaster", "sink", "refrigerator, fridge", "book", "clock", "vase", "scissors",
        "teddy bear", "hair drier", "toothbrush",
    };
    size_t len = 1;
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        len += strlen(base[i]) + 1;
    char *text = malloc(len);
    text[0] = '\0';
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        strcat(text, base[i]);
        strcat(text, "\n");
    }
    bench_chair_vocab *v = NULL;
    if (bench_chair_vocab_parse(text, "perf vocabulary", &v) != 0)
        fprintf(stderr, "perf_bench: vocabulary did not parse\n");
    free(text);
    return v;
}

static void time_one(const char *name, void (*fn)(long), long n)
{
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        fn(n);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    printf("%-10s %ld answers scored in %.4f s (%.0f answers/s)%s\n", name, n, best,
           n / (best > 0 ? best : 1e-9), best < 1.0 ? "" : "  ** over 1 s **");
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    if (n < 1)
        n = 10000;
    chair_vocab = make_vocab();
    if (!chair_vocab)
        return 1;
    time_one("pope", run_pope, n);
    time_one("mme", run_mme, n);
    time_one("vqa", run_vqa, n);
    time_one("gqa", run_gqa, n);
    time_one("mmbench", run_mmbench, n);
    time_one("scienceqa", run_scienceqa, n);
    time_one("seed", run_seed, n);
    time_one("chair", run_chair, n);
    time_one("judge", run_judge, n);
    bench_chair_vocab_free(chair_vocab);
    return sink == -1.0; /* never: keeps the work from being optimised away */
}
