/* test_safetensors_golden.c — the reference checkpoint through the reader.
 *
 * 1. Every model folder under SIMA_GOLDEN_DIR (a folder with .safetensors
 *    files or an index) opens, and every tensor converts to float32.
 *    Where an index exists, each weight_map entry is found in the shard it
 *    names and metadata.total_size matches the tensors' bytes.
 * 2. Every top-level *.safetensors file (the F16/BF16 subsets) holds
 *    PyTorch's roundings of the F32 model's tensors: the stored bits equal
 *    st_f32_to_f16/bf16 of the F32 values, and st_to_f32 decodes them exactly.
 * Nothing about the cases is hard-coded: they are enumerated from the folder.
 */
#include "check.h"
#include "err.h"
#include "fs.h"
#include "golden.h"
#include "js.h"
#include "safetensors.h"
#include "weights.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Names in a folder (sorted) that satisfy keep(). */
static char **list_dir(const char *dir, bool (*keep)(const char *dir, const char *name),
                       size_t *n)
{
    char **names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !keep(dir, e->d_name)) continue;
        names = xrealloc(names, (*n + 1) * sizeof *names);
        names[(*n)++] = xstrdup(e->d_name);
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++) /* insertion sort: a handful of names */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    return names;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* A sub-folder holding safetensors files or an index. */
static bool is_model_folder(const char *dir, const char *name)
{
    char *p = fs_join(dir, name);
    bool yes = false;
    DIR *d = fs_is_dir(p) ? opendir(p) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (has_suffix(e->d_name, ".safetensors") ||
            has_suffix(e->d_name, ".safetensors.index.json"))
            yes = true;
    if (d) closedir(d);
    free(p);
    return yes;
}

static bool is_top_safetensors(const char *dir, const char *name)
{
    char *p = fs_join(dir, name);
    bool yes = fs_is_file(p) && has_suffix(name, ".safetensors");
    free(p);
    return yes;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Each weight_map entry is in the set, from the shard the index names. */
static void check_index(const st_set *set, const char *model_dir)
{
    char *index = fs_join(model_dir, "model.safetensors.index.json");
    if (!fs_is_file(index)) {
        free(index);
        return;
    }
    json_t *root = js_load_file(index);
    CHECK_MSG(root != NULL, "%s", err_msg());
    json_t *map = json_object_get(root, "weight_map");
    CHECK(json_is_object(map));
    CHECK_EQ(json_object_size(map), st_count(set));
    const char *name;
    json_t *file;
    json_object_foreach(map, name, file) {
        const st_tensor *t = st_find(set, name);
        CHECK_MSG(t != NULL, "%s: mapped tensor %s not in the set", model_dir, name);
        if (t)
            CHECK_MSG(strcmp(base_name(st_file_path(set, t->file_index)),
                             json_string_value(file)) == 0,
                      "%s: tensor %s comes from %s, index says %s", model_dir, name,
                      st_file_path(set, t->file_index), json_string_value(file));
    }
    json_t *total = json_object_get(json_object_get(root, "metadata"), "total_size");
    if (json_is_integer(total)) {
        long long sum = 0;
        for (size_t i = 0; i < st_count(set); i++) sum += (long long)st_at(set, i)->nbytes;
        CHECK_EQ(sum, json_integer_value(total));
    }
    json_decref(root);
    free(index);
}

static void check_model_folder(const char *dir)
{
    st_set *set = NULL;
    CHECK_OK(st_open_dir(dir, &set));
    if (!set) return;
    CHECK_MSG(st_count(set) > 0, "%s: no tensors", dir);
    size_t bad = 0;
    for (size_t i = 0; i < st_count(set); i++) {
        const st_tensor *t = st_at(set, i);
        if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) continue;
        float *v = xmalloc((size_t)t->numel * sizeof *v + 1);
        CHECK_OK(st_to_f32(t, v));
        for (int64_t k = 0; k < t->numel; k++)
            if (!isfinite(v[k])) bad++;
        free(v);
    }
    CHECK_MSG(bad == 0, "%s: %zu non-finite weights", dir, bad);
    check_index(set, dir);
    printf("%s: %zu tensors in %d file(s)\n", dir, st_count(set), st_file_count(set));
    st_close(set);
}

typedef struct {
    size_t tensors, elements, bits_wrong, decode_wrong;
} subset_stats;

/* Bits of the F16/BF16 tensor `low` against PyTorch-style rounding of the
 * F32 tensor `ref`, and st_to_f32 of `low` against the exact decode. */
static void compare_tensor(const st_tensor *low, const st_tensor *ref, subset_stats *s)
{
    CHECK_EQ(low->ndim, ref->ndim);
    for (int d = 0; d < low->ndim && d < ref->ndim; d++) CHECK_EQ(low->shape[d], ref->shape[d]);
    if (low->numel != ref->numel || ref->dtype != ST_F32) {
        CHECK_MSG(0, "tensor %s: cannot compare with the model's %s tensor", low->name,
                  st_dtype_name(ref->dtype));
        return;
    }
    size_t n = (size_t)low->numel;
    float *full = xmalloc(n * sizeof *full + 1), *decoded = xmalloc(n * sizeof *decoded + 1);
    CHECK_OK(st_to_f32(ref, full));
    CHECK_OK(st_to_f32(low, decoded));
    const unsigned char *raw = low->data;
    for (size_t i = 0; i < n; i++) {
        uint16_t stored;
        memcpy(&stored, raw + 2 * i, 2);
        uint16_t mine = low->dtype == ST_F16 ? st_f32_to_f16(full[i]) : st_f32_to_bf16(full[i]);
        float exact = low->dtype == ST_F16 ? st_f16_to_f32(stored) : st_bf16_to_f32(stored);
        if (mine != stored) s->bits_wrong++;
        if (memcmp(&exact, &decoded[i], sizeof exact) != 0) s->decode_wrong++;
    }
    s->tensors++;
    s->elements += n;
    free(full);
    free(decoded);
}

static void check_subset(const char *path, const st_set *model)
{
    st_set *low = NULL;
    CHECK_OK(st_open_file(path, &low));
    if (!low) return;
    subset_stats s = {0};
    for (size_t i = 0; i < st_count(low); i++) {
        const st_tensor *t = st_at(low, i);
        CHECK_MSG(t->dtype == ST_F16 || t->dtype == ST_BF16, "%s: tensor %s is %s",
                  path, t->name, st_dtype_name(t->dtype));
        if (t->dtype != ST_F16 && t->dtype != ST_BF16) continue;
        const st_tensor *ref = wt_find(model, t->name);
        CHECK_MSG(ref != NULL, "%s: tensor %s not in the model", path, t->name);
        if (ref) compare_tensor(t, ref, &s);
    }
    CHECK_MSG(s.tensors > 0 && s.tensors == st_count(low), "%s: %zu of %zu tensors compared",
              path, s.tensors, st_count(low));
    CHECK_MSG(s.bits_wrong == 0, "%s: %zu of %zu values rounded differently from PyTorch",
              path, s.bits_wrong, s.elements);
    CHECK_MSG(s.decode_wrong == 0, "%s: %zu values decoded inexactly", path, s.decode_wrong);
    printf("%s: %zu tensors, %zu values match PyTorch's rounding\n", path, s.tensors,
           s.elements);
    st_close(low);
}

/* The model folder that holds every tensor of the subset (by any spelling). */
static st_set *model_for_subset(const char *path, char **folders, size_t nf)
{
    st_set *low = NULL;
    if (st_open_file(path, &low) != 0) return NULL;
    for (size_t f = 0; f < nf; f++) {
        st_set *model = NULL;
        if (st_open_dir(folders[f], &model) != 0) continue;
        size_t found = 0;
        for (size_t i = 0; i < st_count(low); i++)
            found += wt_find(model, st_at(low, i)->name) != NULL;
        if (found == st_count(low)) {
            st_close(low);
            return model;
        }
        st_close(model);
    }
    st_close(low);
    return NULL;
}

int main(void)
{
    const char *root = golden_dir();
    size_t nf = 0, ns = 0;
    char **names = list_dir(root, is_model_folder, &nf);
    char **folders = xcalloc(nf + 1, sizeof *folders);
    for (size_t i = 0; i < nf; i++) folders[i] = fs_join(root, names[i]);
    CHECK_MSG(nf > 0, "%s: no model folders", root);
    for (size_t i = 0; i < nf; i++) check_model_folder(folders[i]);

    char **subsets = list_dir(root, is_top_safetensors, &ns);
    CHECK_MSG(ns > 0, "%s: no reduced-precision subsets", root);
    for (size_t i = 0; i < ns; i++) {
        char *path = fs_join(root, subsets[i]);
        st_set *model = model_for_subset(path, folders, nf);
        CHECK_MSG(model != NULL, "%s: no model folder holds all its tensors", path);
        if (model) check_subset(path, model);
        st_close(model);
        free(path);
    }
    free_list(subsets, ns);
    free_list(folders, nf);
    free_list(names, nf);
    return check_finish();
}
