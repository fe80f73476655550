/* bench_src_vqa.c — readers of the short-answer benchmarks' release files:
 * TextVQA, VizWiz (val), VQAv2 (val) and GQA (testdev balanced). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_src_internal.h"
#include "err.h"

/* The answer strings of [{"answer": "..."}, ...] (VQAv2, VizWiz), as a new
 * array; NULL on error. */
static json_t *answer_texts(const json_t *o, const char *where)
{
    json_t *list = bsrc_typed(o, "answers", JSON_ARRAY, where);
    if (!list) return NULL;
    json_t *out = json_array(), *a;
    size_t i;
    json_array_foreach(list, i, a) {
        const char *s = json_is_object(a) ? json_string_value(json_object_get(a, "answer")) : NULL;
        if (!s) {
            json_decref(out);
            ERR("%s: \"answers\"[%zu]: expected {\"answer\": string}", where, i);
            return NULL;
        }
        json_array_append_new(out, json_string(s));
    }
    return out;
}

/* Indexes the objects of root[list] by their "question_id" (VQAv2's
 * "annotations"); NULL on error. */
static json_t *index_by_qid(const json_t *root, const char *list_key, const char *path)
{
    json_t *list = bsrc_typed(root, list_key, JSON_ARRAY, path), *a;
    if (!list) return NULL;
    json_t *index = json_object();
    size_t i;
    json_array_foreach(list, i, a) {
        char id[64];
        char *where = bsrc_fmt("%s: %s[%zu]", path, list_key, i);
        int rc = json_is_object(a) ? bsrc_id(a, "question_id", id, sizeof id, where)
                                   : ERR("%s: expected an object", where);
        free(where);
        if (rc != 0) {
            json_decref(index);
            return NULL;
        }
        json_object_set(index, id, a);
    }
    return index;
}

/* ------------------------------------------------------------- TextVQA -- */

/* LLaVA's eval_textvqa.py joins an answer to its annotation by (image id,
 * lower-cased question): llava_textvqa_val_v051_ocr.jsonl's "question_id"
 * is the image id (an image can have several questions), and the question
 * is read back from the prompt text. The key: "IMAGE_ID\nquestion". */
static char *textvqa_key(const char *image_id, const char *question, size_t qlen)
{
    char *k = bsrc_fmt("%s\n%.*s", image_id, (int)qlen, question);
    for (char *p = k + strlen(image_id) + 1; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return k;
}

/* Indexes TextVQA_0.5.1_val.json's "data" by textvqa_key; NULL on error. */
static json_t *textvqa_index(const json_t *root, const char *path)
{
    json_t *list = bsrc_typed(root, "data", JSON_ARRAY, path), *a;
    if (!list) return NULL;
    json_t *index = json_object();
    size_t i;
    json_array_foreach(list, i, a) {
        char image_id[256];
        char *where = bsrc_fmt("%s: data[%zu]", path, i);
        const char *question = json_is_object(a) ? bsrc_str(a, "question", where) : NULL;
        int rc = !json_is_object(a) ? ERR("%s: expected an object", where)
                 : !question        ? -1
                                    : bsrc_id(a, "image_id", image_id, sizeof image_id, where);
        free(where);
        if (rc != 0) {
            json_decref(index);
            return NULL;
        }
        char *key = textvqa_key(image_id, question, strlen(question));
        json_object_set(index, key, a);
        free(key);
    }
    return index;
}

/* eval_textvqa.py prompt_processor on the question text: with three lines
 * and a "Reference OCR token: " line, the question is the first line (the
 * second when the text starts with the OCR line); with two lines, the
 * first. Sets *q and *n; -1 (err set) for any other shape. */
static int textvqa_question_of(const char *text, const char *where, const char **q, size_t *n)
{
    const char *l1 = strchr(text, '\n'), *l2 = l1 ? strchr(l1 + 1, '\n') : NULL;
    bool three = l2 && !strchr(l2 + 1, '\n') && strstr(text, "Reference OCR token: ");
    if (three && strncmp(text, "Reference OCR token:", 20) == 0) {
        *q = l1 + 1;
        *n = (size_t)(l2 - l1 - 1);
    } else if (three || (l1 && !l2)) {
        *q = text;
        *n = (size_t)(l1 - text);
    } else {
        return ERR("%s: \"text\" should be the question, an optional \"Reference OCR token: "
                   "...\" line and the instruction, one a line (as eval_textvqa.py reads it)",
                   where);
    }
    return 0;
}

typedef struct {
    json_t *annotations; /* textvqa_key -> TextVQA_0.5.1_val.json "data" entry */
    const char *ann_path;
} textvqa_job;

/* A line of llava_textvqa_val_v051_ocr.jsonl joined with its annotation;
 * the question keeps TextVQA's own (unique) question_id. */
static int textvqa_line(bsrc_ctx *c, const json_t *o, const char *where, void *ud)
{
    const textvqa_job *job = ud;
    char image_id[256], id[64];
    if (bsrc_id(o, "question_id", image_id, sizeof image_id, where) != 0) return -1;
    const char *text = bsrc_str(o, "text", where), *qtext = NULL;
    size_t qlen = 0;
    if (!text || textvqa_question_of(text, where, &qtext, &qlen) != 0) return -1;
    char *key = textvqa_key(image_id, qtext, qlen);
    const json_t *ann = json_object_get(job->annotations, key);
    free(key);
    if (!ann)
        return ERR("%s: %s has no question \"%.*s\" of image %s", where, job->ann_path, (int)qlen,
                   qtext, image_id);
    char *ann_where = bsrc_fmt("%s: image %s", job->ann_path, image_id);
    json_t *answers = bsrc_strings(ann, "answers", ann_where);
    int rc = answers ? bsrc_id(ann, "question_id", id, sizeof id, ann_where) : -1;
    free(ann_where);
    if (rc != 0) {
        json_decref(answers);
        return -1;
    }
    json_t *q = bsrc_question(c, id, text);
    json_object_set_new(q, "answers", answers);
    return bsrc_emit_image_at(c, q, "textvqa/train_images/%s.jpg", image_id);
}

int bsrc_read_textvqa(bsrc_ctx *c)
{
    char *ann_path = bsrc_path(c, "textvqa/TextVQA_0.5.1_val.json");
    char *q_path = bsrc_path(c, "textvqa/llava_textvqa_val_v051_ocr.jsonl");
    json_t *root = bsrc_load_json(ann_path);
    textvqa_job job = {root ? textvqa_index(root, ann_path) : NULL, ann_path};
    int rc = job.annotations ? bsrc_jsonl(c, q_path, textvqa_line, &job) : -1;
    json_decref(job.annotations);
    json_decref(root);
    free(ann_path);
    free(q_path);
    return rc;
}

/* -------------------------------------------------------------- VizWiz -- */

/* The instruction LLaVA's llava_test.jsonl puts after every VizWiz question. */
static const char VIZWIZ_INSTRUCTION[] =
    "\nWhen the provided information is insufficient, respond with 'Unanswerable'."
    "\nAnswer the question using a single word or phrase.";

/* [{"image", "question", "answers": [{"answer", "answer_confidence"}], "answerable", "answer_type"}] */
static int vizwiz_entry(bsrc_ctx *c, const char *key, size_t pos, const json_t *e,
                        const char *where, void *ud)
{
    (void)key, (void)pos, (void)ud;
    const char *image = bsrc_str(e, "image", where);
    const char *question = image ? bsrc_str(e, "question", where) : NULL;
    bool bad = false;
    const char *type = bsrc_opt_str(e, "answer_type", where, &bad);
    if (!image || !question || bad) return -1;
    json_t *answers = answer_texts(e, where);
    if (!answers) return -1;
    char *text = bsrc_fmt("%s%s", question, VIZWIZ_INSTRUCTION);
    json_t *q = bsrc_question(c, image, text);
    free(text);
    json_object_set_new(q, "answers", answers);
    if (type) json_object_set_new(q, "category", json_string(type));
    return bsrc_emit_image_at(c, q, "vizwiz/val/%s", image);
}

int bsrc_read_vizwiz(bsrc_ctx *c)
{
    return bsrc_json_entries(c, "vizwiz/val.json", JSON_ARRAY, "", vizwiz_entry, NULL);
}

/* --------------------------------------------------------------- VQAv2 -- */

typedef struct {
    const json_t *index;    /* question_id -> annotation */
    const char *ann_path;
} vqav2_anns;

static int vqav2_question(bsrc_ctx *c, const char *key, size_t pos, const json_t *e,
                          const char *where, void *ud)
{
    (void)key, (void)pos;
    const json_t *index = ((const vqav2_anns *)ud)->index;
    const char *ann_path = ((const vqav2_anns *)ud)->ann_path;
    char id[64];
    json_int_t image_id = 0;
    const char *question = bsrc_str(e, "question", where);
    json_t *img = question ? bsrc_typed(e, "image_id", JSON_INTEGER, where) : NULL;
    if (!question || !img || bsrc_id(e, "question_id", id, sizeof id, where) != 0) return -1;
    image_id = json_integer_value(img);
    const json_t *ann = json_object_get(index, id);
    if (!ann) return ERR("%s: question_id %s has no annotation in %s", where, id, ann_path);
    char *ann_where = bsrc_fmt("%s: question_id %s", ann_path, id);
    bool bad = false;
    const char *type = bsrc_opt_str(ann, "answer_type", ann_where, &bad);
    json_t *answers = bad ? NULL : answer_texts(ann, ann_where);
    free(ann_where);
    if (!answers) return -1;
    json_t *q = bsrc_question(c, id, question);
    json_object_set_new(q, "answers", answers);
    if (type) json_object_set_new(q, "category", json_string(type));
    return bsrc_emit_image_at(c, q, "vqav2/val2014/COCO_val2014_%012lld.jpg", (long long)image_id);
}

int bsrc_read_vqav2(bsrc_ctx *c)
{
    char *q_path = bsrc_path(c, "vqav2/v2_OpenEnded_mscoco_val2014_questions.json");
    char *a_path = bsrc_path(c, "vqav2/v2_mscoco_val2014_annotations.json");
    json_t *qs = bsrc_load_json(q_path), *anns = qs ? bsrc_load_json(a_path) : NULL;
    json_t *index = anns ? index_by_qid(anns, "annotations", a_path) : NULL;
    json_t *list = index ? bsrc_typed(qs, "questions", JSON_ARRAY, q_path) : NULL;
    vqav2_anns anns_of = {index, a_path};
    int rc = list ? bsrc_each_entry(c, list, q_path, "questions", vqav2_question, &anns_of) : -1;
    json_decref(index);
    json_decref(anns);
    json_decref(qs);
    free(q_path);
    free(a_path);
    return rc;
}

/* ----------------------------------------------------------------- GQA -- */

/* {qid: {"imageId", "question", "answer", ...}} */
static int gqa_question(bsrc_ctx *c, const char *qid, size_t pos, const json_t *e,
                        const char *where, void *ud)
{
    (void)pos, (void)ud;
    char image_id[256];
    const char *question = bsrc_str(e, "question", where);
    const char *answer = question ? bsrc_str(e, "answer", where) : NULL;
    if (!question || !answer || bsrc_id(e, "imageId", image_id, sizeof image_id, where) != 0)
        return -1;
    json_t *q = bsrc_question(c, qid, question);
    json_object_set_new(q, "answer", json_string(answer));
    return bsrc_emit_image_at(c, q, "gqa/images/%s.jpg", image_id);
}

int bsrc_read_gqa(bsrc_ctx *c)
{
    return bsrc_json_entries(c, "gqa/testdev_balanced_questions.json", JSON_OBJECT, "question ",
                             gqa_question, NULL);
}
