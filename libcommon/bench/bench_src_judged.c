/* bench_src_judged.c — readers of the judge-scored benchmarks' release
 * files: LLaVA-Bench (in-the-wild), MM-Vet, MMHal-Bench and Mementos (sima's
 * own layout, the release's scripts being unavailable to check against: see
 * data/benchmarks/README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_src_internal.h"
#include "err.h"

/* Copies the optional string field key of src into q (as `as`). */
static int copy_opt_str(json_t *q, const json_t *src, const char *key, const char *as,
                        const char *where)
{
    bool bad = false;
    const char *s = bsrc_opt_str(src, key, where, &bad);
    if (bad) return -1;
    if (s) json_object_set_new(q, as, json_string(s));
    return 0;
}

/* ----------------------------------------------------------- LLaVA-Bench -- */

typedef struct {
    json_t *answers;  /* question_id -> answers_gpt4.jsonl line */
    json_t *contexts; /* image -> context.jsonl line */
    const char *answers_path, *context_path;
} llava_bench_job;

/* The image description of a context.jsonl line: "caption" as a string, or
 * a list of strings joined by newlines (eval_gpt_review_bench.py builds its
 * [Context] block with '\n'.join(caption)). malloc'd; NULL (err set) when
 * absent or of another type. */
static char *llava_bench_caption(const json_t *ctx, const char *where)
{
    const json_t *v = json_object_get(ctx, "caption");
    if (json_is_string(v)) return xstrdup(json_string_value(v));
    if (!json_is_array(v)) {
        if (v) ERR("%s: \"caption\": expected a string or a list of strings", where);
        else bsrc_str(ctx, "caption", where); /* records "is missing" */
        return NULL;
    }
    json_t *parts = bsrc_strings(ctx, "caption", where);
    if (!parts) return NULL;
    size_t len = 1, i;
    json_t *p;
    json_array_foreach(parts, i, p) len += strlen(json_string_value(p)) + 1;
    char *out = xmalloc(len), *w = out;
    json_array_foreach(parts, i, p) {
        if (i) *w++ = '\n';
        size_t n = strlen(json_string_value(p));
        memcpy(w, json_string_value(p), n);
        w += n;
    }
    *w = '\0';
    json_decref(parts);
    return out;
}

/* questions.jsonl: {"question_id", "image", "text", "category"}, joined with
 * the GPT-4 answer (by question_id) and the image's context (by image). */
static int llava_bench_line(bsrc_ctx *c, const json_t *o, const char *where, void *ud)
{
    const llava_bench_job *job = ud;
    char id[64];
    if (bsrc_id(o, "question_id", id, sizeof id, where) != 0) return -1;
    const char *image = bsrc_str(o, "image", where);
    const char *text = image ? bsrc_str(o, "text", where) : NULL;
    if (!image || !text) return -1;
    const json_t *ans = json_object_get(job->answers, id);
    const json_t *ctx = json_object_get(job->contexts, image);
    if (!ans) return ERR("%s: question_id %s has no answer in %s", where, id, job->answers_path);
    if (!ctx) return ERR("%s: image %s has no entry in %s", where, image, job->context_path);
    char *aw = bsrc_fmt("%s: question_id %s", job->answers_path, id);
    char *cw = bsrc_fmt("%s: image %s", job->context_path, image);
    const char *reference = bsrc_str(ans, "text", aw);
    char *context = reference ? llava_bench_caption(ctx, cw) : NULL;
    free(aw);
    free(cw);
    if (!context) return -1;
    json_t *q = bsrc_question(c, id, text);
    json_object_set_new(q, "reference", json_string(reference));
    json_object_set_new(q, "context", json_string(context));
    free(context);
    if (copy_opt_str(q, o, "category", "category", where) != 0) {
        json_decref(q);
        return -1;
    }
    return bsrc_emit_image_at(c, q, "llava-bench-in-the-wild/images/%s", image);
}

int bsrc_read_llava_bench(bsrc_ctx *c)
{
    char *q_path = bsrc_path(c, "llava-bench-in-the-wild/questions.jsonl");
    char *a_path = bsrc_path(c, "llava-bench-in-the-wild/answers_gpt4.jsonl");
    char *c_path = bsrc_path(c, "llava-bench-in-the-wild/context.jsonl");
    llava_bench_job job = {NULL, NULL, a_path, c_path};
    int rc = bsrc_need_file(q_path);
    if (rc == 0 && !(job.answers = bsrc_jsonl_index(a_path, "question_id"))) rc = -1;
    if (rc == 0 && !(job.contexts = bsrc_jsonl_index(c_path, "image"))) rc = -1;
    if (rc == 0) rc = bsrc_jsonl(c, q_path, llava_bench_line, &job);
    json_decref(job.answers);
    json_decref(job.contexts);
    free(q_path);
    free(a_path);
    free(c_path);
    return rc;
}

/* ---------------------------------------------------------------- MM-Vet -- */

/* {"v1_0": {"imagename", "question", "answer", "capability": [...]}} */
static int mmvet_question(bsrc_ctx *c, const char *id, size_t pos, const json_t *e,
                          const char *where, void *ud)
{
    (void)pos, (void)ud;
    const char *image = bsrc_str(e, "imagename", where);
    const char *question = image ? bsrc_str(e, "question", where) : NULL;
    const char *answer = image && question ? bsrc_str(e, "answer", where) : NULL;
    json_t *caps = answer ? bsrc_strings(e, "capability", where) : NULL;
    if (!caps) return -1;
    json_t *q = bsrc_question(c, id, question);
    json_object_set_new(q, "answer", json_string(answer));
    json_object_set_new(q, "capability", caps);
    return bsrc_emit_image_at(c, q, "mm-vet/images/%s", image);
}

int bsrc_read_mmvet(bsrc_ctx *c)
{
    return bsrc_json_entries(c, "mm-vet/mm-vet.json", JSON_OBJECT, "", mmvet_question, NULL);
}

/* ----------------------------------------------------------- MMHal-Bench -- */

/* [{"question_type", "question_topic", "image_id", "image_src",
 *   "image_content": [...], "question", "gt_answer", "model_answer"}];
 * the question id is the position in the list (the release has no id). */
static int mmhal_question(bsrc_ctx *c, const char *key, size_t pos, const json_t *e,
                          const char *where, void *ud)
{
    (void)key, (void)ud;
    const char *src = bsrc_str(e, "image_src", where);
    const char *question = src ? bsrc_str(e, "question", where) : NULL;
    const char *gt = src && question ? bsrc_str(e, "gt_answer", where) : NULL;
    const char *type = gt ? bsrc_str(e, "question_type", where) : NULL;
    const char *topic = type ? bsrc_str(e, "question_topic", where) : NULL;
    json_t *content = topic ? bsrc_strings(e, "image_content", where) : NULL;
    if (!content) return -1;
    char qid[32];
    snprintf(qid, sizeof qid, "%zu", pos);
    json_t *q = bsrc_question(c, qid, question);
    json_object_set_new(q, "gt_answer", json_string(gt));
    json_object_set_new(q, "image_content", content);
    json_object_set_new(q, "question_type", json_string(type));
    json_object_set_new(q, "question_topic", json_string(topic));
    return bsrc_emit_image_at(c, q, "mmhal-bench/images/%s", bsrc_basename(src));
}

int bsrc_read_mmhal(bsrc_ctx *c)
{
    return bsrc_json_entries(c, "mmhal-bench/response_template.json", JSON_ARRAY, "",
                             mmhal_question, NULL);
}

/* -------------------------------------------------------------- Mementos -- */

/* sima's own layout: mementos/mementos.jsonl lines {"id", "image" (the
 * sequence composed into one image, under mementos/images/), "question",
 * "objects": [...], "behaviours": [...], "domain"}. */
static int mementos_line(bsrc_ctx *c, const json_t *o, const char *where, void *ud)
{
    char id[128];
    if (bsrc_id(o, "id", id, sizeof id, where) != 0) return -1;
    const char *image = bsrc_str(o, "image", where);
    const char *question = image ? bsrc_str(o, "question", where) : NULL;
    json_t *objects = image && question ? bsrc_strings(o, "objects", where) : NULL;
    json_t *behaviours = objects ? bsrc_strings(o, "behaviours", where) : NULL;
    if (!behaviours) {
        json_decref(objects);
        return -1;
    }
    json_t *q = bsrc_question(c, id, question);
    json_object_set_new(q, "objects", objects);
    json_object_set_new(q, "behaviours", behaviours);
    if (copy_opt_str(q, o, "domain", "category", where) != 0) {
        json_decref(q);
        return -1;
    }
    return bsrc_emit_image_at(c, q, "mementos/images/%s", image);
}

int bsrc_read_mementos(bsrc_ctx *c)
{
    char *file = bsrc_path(c, "mementos/mementos.jsonl");
    int rc = bsrc_jsonl(c, file, mementos_line, NULL);
    free(file);
    return rc;
}
