/* bench_src_yesno.c — readers of the yes/no benchmarks' release files:
 * POPE (coco_pope_<split>.json, JSON lines) and MME (one folder per
 * subtask, "question\tYes|No" lines per image). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench_src_internal.h"
#include "bench_yesno.h"
#include "err.h"
#include "fs.h"

/* ---------------------------------------------------------------- POPE -- */

static const char *const POPE_SPLITS[] = {"random", "popular", "adversarial"};

typedef struct {
    const char *split;
    const char *image_dir;
} pope_job;

/* {"question_id": 1, "image": "COCO_val2014_....jpg", "text": "...", "label": "yes"} */
static int pope_line(bsrc_ctx *c, const json_t *o, const char *where, void *ud)
{
    const pope_job *job = ud;
    char id[64];
    if (bsrc_id(o, "question_id", id, sizeof id, where) != 0) return -1;
    const char *image = bsrc_str(o, "image", where);
    const char *text = image ? bsrc_str(o, "text", where) : NULL;
    const char *label = text ? bsrc_str(o, "label", where) : NULL;
    if (!image || !text || !label) return -1;
    if (strcmp(label, "yes") != 0 && strcmp(label, "no") != 0)
        return ERR("%s: \"label\": expected \"yes\" or \"no\", got \"%s\"", where, label);
    char *qid = bsrc_fmt("%s-%s", job->split, id);
    json_t *q = bsrc_question(c, qid, text);
    free(qid);
    json_object_set_new(q, "split", json_string(job->split));
    json_object_set_new(q, "label", json_string(label));
    char *path = fs_join(job->image_dir, image);
    bsrc_emit_image(c, q, path);
    free(path);
    return 0;
}

/* POPE's images are COCO val2014: pope/val2014/ when that folder exists,
 * else the shared coco/val2014/. */
int bsrc_read_pope(bsrc_ctx *c)
{
    char *dir = bsrc_path(c, "pope/val2014");
    if (!fs_is_dir(dir)) {
        free(dir);
        dir = bsrc_path(c, "coco/val2014");
    }
    int rc = 0;
    for (size_t s = 0; rc == 0 && s < 3 && !bsrc_full(c); s++) {
        char *file = bsrc_path(c, "pope/coco/coco_pope_%s.json", POPE_SPLITS[s]);
        pope_job job = {POPE_SPLITS[s], dir};
        rc = bsrc_jsonl(c, file, pope_line, &job);
        free(file);
    }
    free(dir);
    return rc;
}

/* ----------------------------------------------------------------- MME -- */

/* Image extensions of the release (most subtasks .jpg, some .png). */
static const char *const MME_EXTS[] = {".jpg", ".png", ".jpeg", ".JPG", ".PNG"};

/* The image with the .txt file's stem in img_dir; NULL when none exists. */
static char *mme_image(const char *img_dir, const char *txt)
{
    size_t stem = strlen(txt) - 4;
    for (size_t i = 0; i < sizeof MME_EXTS / sizeof MME_EXTS[0]; i++) {
        char *p = bsrc_fmt("%s/%.*s%s", img_dir, (int)stem, txt, MME_EXTS[i]);
        if (fs_is_file(p)) return p;
        free(p);
    }
    return NULL;
}

/* Parses one "question\tYes|No" line into its question and lower-case
 * label (cut in place). */
static int mme_parse_line(char *s, const char **question, const char **label,
                          const char *where)
{
    char *tab = strrchr(s, '\t');
    if (!tab) return ERR("%s: expected \"question<TAB>Yes|No\"", where);
    *tab = '\0';
    char *ans = tab + 1;
    size_t n = strlen(ans);
    while (n && (ans[n - 1] == ' ' || ans[n - 1] == '\r')) ans[--n] = '\0';
    while (*ans == ' ') ans++;
    if (strcasecmp(ans, "yes") == 0)
        *label = "yes";
    else if (strcasecmp(ans, "no") == 0)
        *label = "no";
    else
        return ERR("%s: answer \"%s\": expected Yes or No", where, ans);
    *question = s;
    return 0;
}

/* The questions of one image: its .txt file, one question a line. */
static int mme_image_questions(bsrc_ctx *c, const char *subtask, const char *txt_dir,
                               const char *img_dir, const char *txt)
{
    char *path = fs_join(txt_dir, txt), *text = NULL;
    size_t len = 0;
    int rc = fs_read_all(path, &text, &len);
    char *image = rc == 0 ? mme_image(img_dir, txt) : NULL;
    long line = 0, k = 0;
    for (char *p = text, *s; rc == 0 && p && *p && !bsrc_full(c); p = s) {
        s = strchr(p, '\n');
        if (s) *s++ = '\0';
        line++;
        if (strspn(p, " \t\r") == strlen(p)) continue;
        char *where = bsrc_fmt("%s: line %ld", path, line);
        const char *question = NULL, *label = NULL;
        rc = mme_parse_line(p, &question, &label, where);
        free(where);
        if (rc != 0) break;
        if (!image) {
            char *want = bsrc_fmt("%s/%.*s.jpg", img_dir, (int)(strlen(txt) - 4), txt);
            bsrc_count_missing(c, want);
            free(want);
            continue;
        }
        char *qid = bsrc_fmt("%s/%s/%ld", subtask, bsrc_basename(image), k++);
        json_t *q = bsrc_question(c, qid, question);
        free(qid);
        json_object_set_new(q, "label", json_string(label));
        json_object_set_new(q, "subtask", json_string(subtask));
        bsrc_emit_image(c, q, image);
    }
    free(image);
    free(text);
    free(path);
    return rc;
}

/* One subtask folder: images/ + questions_answers_YN/, or both side by side. */
static int mme_subtask(bsrc_ctx *c, const char *subtask)
{
    char *dir = bsrc_path(c, "MME_Benchmark_release_version/%s", subtask);
    char *txt_dir = fs_join(dir, "questions_answers_YN");
    char *img_dir = fs_join(dir, "images");
    if (!fs_is_dir(txt_dir)) {
        free(txt_dir);
        free(img_dir);
        txt_dir = xstrdup(dir);
        img_dir = xstrdup(dir);
    }
    char **names = NULL;
    size_t n = 0;
    int rc = fs_is_dir(dir) ? bsrc_list_dir(txt_dir, ".txt", &names, &n)
                            : ERR("%s: no such folder (an MME subtask)", dir);
    if (rc == 0 && n == 0) rc = ERR("%s: no question files (*.txt)", txt_dir);
    for (size_t i = 0; rc == 0 && i < n && !bsrc_full(c); i++)
        rc = mme_image_questions(c, subtask, txt_dir, img_dir, names[i]);
    bsrc_free_names(names, n);
    free(dir);
    free(txt_dir);
    free(img_dir);
    return rc;
}

int bsrc_read_mme(bsrc_ctx *c)
{
    int rc = 0;
    for (int s = 0; rc == 0 && s < BENCH_MME_SUBTASKS && !bsrc_full(c); s++)
        rc = mme_subtask(c, bench_mme_subtask_names[s]);
    return rc;
}
