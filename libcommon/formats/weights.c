/* weights.c — formats layer: map the tensor names of the LLaVA checkpoint
 * layouts in the wild to the llava-hf canonical names and back.
 *
 * Each spelling is a prefix rewrite. transformers 4 (llava-hf on the hub)
 * saves the canonical names; transformers 5 saves vision_tower.* without
 * vision_model, model.language_model.*, model.multi_modal_projector.* and
 * lm_head.weight; a bare LlavaModel saves language_model.* without model.
 */
#include "weights.h"
#include "err.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VISION "vision_tower.vision_model."
#define PROJECTOR "multi_modal_projector."
#define LANGUAGE "language_model.model."
#define LM_HEAD "language_model.lm_head."

/* stored prefix -> canonical prefix. Longer prefixes of the same family come
 * first, so "vision_tower.vision_model.x" is not read as "vision_tower." +
 * "vision_model.x". */
static const struct {
    const char *stored, *canonical;
} prefix_rules[] = {
    {VISION, VISION},
    {"model.vision_tower.vision_model.", VISION},
    {"vision_tower.", VISION},
    {"model.vision_tower.", VISION},
    {PROJECTOR, PROJECTOR},
    {"model.multi_modal_projector.", PROJECTOR},
    {LANGUAGE, LANGUAGE},
    {LM_HEAD, LM_HEAD},
    {"model.language_model.", LANGUAGE},
    {"lm_head.", LM_HEAD},
    {"language_model.", LANGUAGE},
};
#define N_RULES (sizeof prefix_rules / sizeof *prefix_rules)

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* prefix + rest into buf; false if it does not fit. */
static bool join_name(char *buf, size_t size, const char *prefix, const char *rest)
{
    int n = snprintf(buf, size, "%s%s", prefix, rest);
    return n >= 0 && (size_t)n < size;
}

const char *wt_canonical(const char *stored, char *buf, size_t bufsize)
{
    for (size_t i = 0; i < N_RULES; i++) {
        if (!starts_with(stored, prefix_rules[i].stored)) continue;
        const char *rest = stored + strlen(prefix_rules[i].stored);
        if (rest[0] == '\0') return NULL;
        return join_name(buf, bufsize, prefix_rules[i].canonical, rest) ? buf : NULL;
    }
    return NULL;
}

/* Try every stored spelling of a canonical name, canonical first. */
static const st_tensor *find_spelling(const st_set *set, const char *canonical)
{
    size_t size = strlen(canonical) + 64;
    char *name = xmalloc(size);
    const st_tensor *t = NULL;
    for (size_t i = 0; i < N_RULES && !t; i++) {
        const char *cp = prefix_rules[i].canonical;
        if (!starts_with(canonical, cp)) continue;
        if (join_name(name, size, prefix_rules[i].stored, canonical + strlen(cp)))
            t = st_find(set, name);
    }
    free(name);
    return t;
}

const st_tensor *wt_find(const st_set *set, const char *canonical)
{
    /* a caller may pass any spelling: normalise it first */
    size_t size = strlen(canonical) + 64;
    char *canon = xmalloc(size);
    const st_tensor *t = NULL;
    if (wt_canonical(canonical, canon, size))
        t = find_spelling(set, canon);
    else
        t = st_find(set, canonical);
    free(canon);
    return t;
}

const st_tensor *wt_require(const st_set *set, const char *canonical,
                            const char *model_dir)
{
    const st_tensor *t = wt_find(set, canonical);
    if (!t)
        ERR("%s: no tensor '%s' under any of its spellings (vision_tower.*, "
            "model.*, lm_head.*)", model_dir ? model_dir : "weights", canonical);
    return t;
}

wt_component wt_component_of(const char *stored)
{
    char buf[512];
    size_t size = strlen(stored) + 64;
    char *canon = size <= sizeof buf ? buf : xmalloc(size);
    wt_component c = WT_OTHER;
    if (wt_canonical(stored, canon, size)) {
        if (starts_with(canon, VISION)) c = WT_VISION;
        else if (starts_with(canon, PROJECTOR)) c = WT_PROJECTOR;
        else if (starts_with(canon, LANGUAGE)) c = WT_LANGUAGE;
        else if (starts_with(canon, LM_HEAD)) c = WT_LM_HEAD;
    }
    if (canon != buf) free(canon);
    return c;
}

const char *wt_component_name(wt_component c)
{
    switch (c) {
    case WT_VISION: return "vision";
    case WT_PROJECTOR: return "projector";
    case WT_LANGUAGE: return "language";
    case WT_LM_HEAD: return "lm_head";
    default: return "other";
    }
}
