/* bench_src_caption.c — the CHAIR reader: COCO val2014 images to caption,
 * each with its ground-truth objects as chair.py gathers them (the
 * categories of its instance annotations plus the objects its reference
 * captions mention, both through the synonym table). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_chair.h"
#include "bench_src_internal.h"
#include "err.h"
#include "fs.h"

/* The instruction every CHAIR image gets (LLaVA's detailed-description prompt). */
static const char CHAIR_QUESTION[] = "Please describe this image in detail.";

typedef struct {
    long long id;
    size_t slot; /* position in the chosen list, or in instances' "images" */
} chair_key;

static int cmp_key(const void *a, const void *b)
{
    long long x = ((const chair_key *)a)->id, y = ((const chair_key *)b)->id;
    return (x > y) - (x < y);
}

static const chair_key *find_key(const chair_key *keys, size_t n, long long id)
{
    chair_key k = {id, 0};
    return n ? bsearch(&k, keys, n, sizeof k, cmp_key) : NULL;
}

/* The images chosen, in order, with their ground truth being gathered. */
typedef struct {
    bench_chair_vocab *vocab;
    int ncat;               /* vocab categories */
    size_t n;               /* chosen images */
    long long *ids;         /* [n] COCO image ids */
    char **paths;           /* [n] image paths */
    bool *truth;            /* [n][ncat] object present */
    json_t **extra;         /* [n] arrays of COCO names the table does not know */
    chair_key *by_id;       /* [n] sorted, slot = position in ids */
} chair_set;

static void chair_set_free(chair_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->paths[i]);
        if (s->extra) json_decref(s->extra[i]);
    }
    free(s->ids);
    free(s->paths);
    free(s->truth);
    free(s->extra);
    free(s->by_id);
    bench_chair_vocab_free(s->vocab);
}

static int chair_load_vocab(bsrc_ctx *c, chair_set *s)
{
    char *path = bsrc_path(c, "chair/synonyms.txt"), *text = NULL;
    size_t len = 0;
    int rc = bsrc_need_file(path);
    if (rc == 0) rc = fs_read_all(path, &text, &len);
    if (rc == 0) rc = bench_chair_vocab_parse(text, path, &s->vocab);
    if (rc == 0) s->ncat = bench_chair_category_count(s->vocab);
    free(text);
    free(path);
    return rc;
}

/* The image ids to caption: chair/image_ids.txt, one a line, when present. */
static int chair_listed_ids(const char *path, long long **ids, size_t *n)
{
    char *text = NULL;
    size_t len = 0, cap = 0;
    if (fs_read_all(path, &text, &len) != 0) return -1;
    long line = 0;
    int rc = 0;
    for (char *p = text, *e; rc == 0 && *p; p = e) {
        e = p + strcspn(p, "\n");
        if (*e) *e++ = '\0';
        line++;
        char *end;
        p += strspn(p, " \t");
        if (*p == '\0' || *p == '\r') continue;
        long long id = strtoll(p, &end, 10);
        end += strspn(end, " \t\r");
        if (end == p || *end || id < 0) {
            rc = ERR("%s: line %ld: expected a COCO image id", path, line);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            *ids = xrealloc(*ids, cap * sizeof **ids);
        }
        (*ids)[(*n)++] = id;
    }
    free(text);
    return rc;
}

/* Every image of instances' "images", by id. Fills keys (slot = position in
 * the list) sorted by id. */
static int chair_image_keys(const json_t *images, const char *path, chair_key **keys)
{
    size_t n = json_array_size(images), i;
    json_t *e;
    *keys = xcalloc(n ? n : 1, sizeof **keys);
    json_array_foreach(images, i, e) {
        json_t *id = json_object_get(e, "id");
        if (!json_is_integer(id) || !json_is_string(json_object_get(e, "file_name")))
            return ERR("%s: images[%zu]: expected {\"id\": integer, \"file_name\": string}", path,
                       i);
        (*keys)[i] = (chair_key){json_integer_value(id), i};
    }
    qsort(*keys, n, sizeof **keys, cmp_key);
    return 0;
}

/* Adds one image (when its file exists; else counts it missing). */
static void chair_choose(bsrc_ctx *c, chair_set *s, long long id, const char *file_name)
{
    char *path = bsrc_path(c, "coco/val2014/%s", file_name);
    if (!fs_is_file(path)) {
        bsrc_count_missing(c, path);
        free(path);
        return;
    }
    s->ids = xrealloc(s->ids, (s->n + 1) * sizeof *s->ids);
    s->paths = xrealloc(s->paths, (s->n + 1) * sizeof *s->paths);
    s->ids[s->n] = id;
    s->paths[s->n++] = path;
}

/* Chooses the images: the listed ids in order, else every image by id, up
 * to the limit of those whose file exists. */
static int chair_choose_images(bsrc_ctx *c, chair_set *s, const json_t *instances,
                               const char *inst_path)
{
    json_t *images = bsrc_typed(instances, "images", JSON_ARRAY, inst_path);
    chair_key *keys = NULL;
    long long *listed = NULL;
    size_t nlisted = 0, nimages = json_array_size(images);
    char *list_path = bsrc_path(c, "chair/image_ids.txt");
    int rc = images ? chair_image_keys(images, inst_path, &keys) : -1;
    bool use_list = rc == 0 && fs_is_file(list_path);
    if (use_list) rc = chair_listed_ids(list_path, &listed, &nlisted);
    size_t total = use_list ? nlisted : nimages;
    for (size_t i = 0; rc == 0 && i < total && !(c->limit > 0 && (int64_t)s->n >= c->limit); i++) {
        const chair_key *k = use_list ? find_key(keys, nimages, listed[i]) : &keys[i];
        if (!k) {
            rc = ERR("%s: image id %lld is not in %s", list_path, listed[i], inst_path);
            break;
        }
        json_t *img = json_array_get(images, k->slot);
        chair_choose(c, s, k->id, json_string_value(json_object_get(img, "file_name")));
    }
    free(listed);
    free(keys);
    free(list_path);
    return rc;
}

/* Marks a COCO category (by name) present for chosen image `slot`: its
 * table category when the table knows the name (as a category or a
 * synonym), else the name itself among the extras. */
static void chair_mark_name(chair_set *s, size_t slot, const char *name, int cat)
{
    if (cat >= 0) {
        s->truth[slot * (size_t)s->ncat + (size_t)cat] = true;
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(s->extra[slot], i, v) if (strcmp(json_string_value(v), name) == 0) return;
    json_array_append_new(s->extra[slot], json_string(name));
}

/* The table category of a COCO category name, -1 when the table lacks it. */
static int chair_category_of(const bench_chair_vocab *v, const char *name)
{
    int id = bench_chair_category_id(v, name), ids[4];
    if (id >= 0) return id;
    return bench_chair_mentions(v, name, ids, 4) == 1 ? ids[0] : -1;
}

/* Instance annotations: each marks its category for its image. */
static int chair_add_instances(chair_set *s, const json_t *inst, const char *path)
{
    json_t *cats = bsrc_typed(inst, "categories", JSON_ARRAY, path);
    json_t *anns = cats ? bsrc_typed(inst, "annotations", JSON_ARRAY, path) : NULL, *e;
    if (!anns) return -1;
    size_t i;
    json_t *names = json_object(); /* category id -> name */
    int rc = 0;
    json_array_foreach(cats, i, e) {
        char id[32];
        const char *name = json_string_value(json_object_get(e, "name"));
        if (!json_is_integer(json_object_get(e, "id")) || !name) {
            rc = ERR("%s: categories[%zu]: expected {\"id\": integer, \"name\": string}", path, i);
            break;
        }
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(e, "id")));
        json_object_set_new(names, id, json_pack("{s:s, s:i}", "name", name, "cat",
                                                 chair_category_of(s->vocab, name)));
    }
    if (rc == 0) json_array_foreach(anns, i, e) {
        json_t *img = json_object_get(e, "image_id"), *cat = json_object_get(e, "category_id");
        if (!json_is_integer(img) || !json_is_integer(cat)) {
            rc = ERR("%s: annotations[%zu]: expected integer image_id and category_id", path, i);
            break;
        }
        const chair_key *k = find_key(s->by_id, s->n, json_integer_value(img));
        if (!k) continue;
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(cat));
        json_t *info = json_object_get(names, id);
        if (!info) {
            rc = ERR("%s: annotations[%zu]: category_id %s is not among the categories", path,
                     i, id);
            break;
        }
        chair_mark_name(s, k->slot, json_string_value(json_object_get(info, "name")),
                        (int)json_integer_value(json_object_get(info, "cat")));
    }
    json_decref(names);
    return rc;
}

/* Reference captions: the objects they mention join the ground truth. */
static int chair_add_captions(chair_set *s, const json_t *caps, const char *path)
{
    json_t *anns = bsrc_typed(caps, "annotations", JSON_ARRAY, path), *e;
    if (!anns) return -1;
    size_t i;
    int ids[256];
    json_array_foreach(anns, i, e) {
        json_t *img = json_object_get(e, "image_id");
        const char *caption = json_string_value(json_object_get(e, "caption"));
        if (!json_is_integer(img) || !caption)
            return ERR("%s: annotations[%zu]: expected integer image_id and string caption",
                       path, i);
        const chair_key *k = find_key(s->by_id, s->n, json_integer_value(img));
        if (!k) continue;
        size_t m = bench_chair_mentions(s->vocab, caption, ids, 256);
        for (size_t j = 0; j < m && j < 256; j++)
            s->truth[k->slot * (size_t)s->ncat + (size_t)ids[j]] = true;
    }
    return 0;
}

/* The sorted index and the empty ground truth of the chosen images; an id
 * listed twice is an error (question ids must be unique). */
static int chair_prepare(bsrc_ctx *c, chair_set *s)
{
    size_t n = s->n ? s->n : 1;
    s->by_id = xcalloc(n, sizeof *s->by_id);
    s->truth = xcalloc(n * (size_t)(s->ncat ? s->ncat : 1), sizeof *s->truth);
    s->extra = xcalloc(n, sizeof *s->extra);
    for (size_t i = 0; i < s->n; i++) {
        s->by_id[i] = (chair_key){s->ids[i], i};
        s->extra[i] = json_array();
    }
    qsort(s->by_id, s->n, sizeof *s->by_id, cmp_key);
    for (size_t i = 1; i < s->n; i++)
        if (s->by_id[i].id == s->by_id[i - 1].id)
            return ERR("%s/chair/image_ids.txt: image id %lld is listed twice", c->root,
                       s->by_id[i].id);
    return 0;
}

/* Appends one question per chosen image: "objects" in table order, then
 * the names the table does not know. */
static void chair_emit(bsrc_ctx *c, chair_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        char qid[32];
        snprintf(qid, sizeof qid, "%lld", s->ids[i]);
        json_t *q = bsrc_question(c, qid, CHAIR_QUESTION), *objs = json_array();
        for (int k = 0; k < s->ncat; k++)
            if (s->truth[i * (size_t)s->ncat + (size_t)k])
                json_array_append_new(objs, json_string(bench_chair_category_name(s->vocab, k)));
        json_array_extend(objs, s->extra[i]);
        json_object_set_new(q, "objects", objs);
        json_object_set_new(q, "image", json_string(s->paths[i]));
        bsrc_emit(c, q);
    }
}

int bsrc_read_chair(bsrc_ctx *c)
{
    chair_set s = {0};
    char *inst_path = bsrc_path(c, "coco/annotations/instances_val2014.json");
    char *cap_path = bsrc_path(c, "coco/annotations/captions_val2014.json");
    json_t *inst = NULL, *caps = NULL;
    int rc = chair_load_vocab(c, &s);
    if (rc == 0 && bsrc_need_file(cap_path) != 0) rc = -1; /* fail before the big load */
    if (rc == 0 && !(inst = bsrc_load_json(inst_path))) rc = -1;
    if (rc == 0) rc = chair_choose_images(c, &s, inst, inst_path);
    if (rc == 0) {
        rc = chair_prepare(c, &s);
        if (rc == 0) rc = chair_add_instances(&s, inst, inst_path);
    }
    json_decref(inst);
    if (rc == 0 && !(caps = bsrc_load_json(cap_path))) rc = -1;
    if (rc == 0) rc = chair_add_captions(&s, caps, cap_path);
    json_decref(caps);
    if (rc == 0) chair_emit(c, &s);
    chair_set_free(&s);
    free(inst_path);
    free(cap_path);
    return rc;
}
