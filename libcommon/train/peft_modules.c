/* peft_modules.c — training layer: modules_to_save tensors in PEFT adapters. */
#include "peft_modules.h"
#include "err.h"
#include "fs.h"
#include "js.h"
#include "safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PEFT's saved name of canonical tensor `canonical` (new llava-hf layout,
 * the projector under "model."); `old` gives the older layout's spelling
 * (without it), which loading also accepts. */
static void saved_name(const char *canonical, bool old, char *buf, size_t size)
{
    snprintf(buf, size, "base_model.model.%s%s", old ? "" : "model.", canonical);
}

static int add_tensors(const char *path, const peft_module_tensor *ts, int n)
{
    st_set *set = NULL;
    if (st_open_file(path, &set) != 0) return -1;
    size_t have = st_count(set);
    st_write_tensor *w = xcalloc(have + (size_t)n, sizeof *w);
    char (*names)[256] = xcalloc((size_t)n + 1, sizeof *names);
    size_t k = 0;
    for (size_t i = 0; i < have; i++) {
        const st_tensor *t = st_at(set, i);
        bool replaced = false;
        for (int j = 0; j < n; j++) {
            char nm[256];
            saved_name(ts[j].name, false, nm, sizeof nm);
            replaced |= !strcmp(nm, t->name);
        }
        if (replaced) continue;
        w[k] = (st_write_tensor){t->name, t->dtype, t->ndim, {0}, t->data};
        memcpy(w[k++].shape, t->shape, sizeof t->shape);
    }
    for (int j = 0; j < n; j++, k++) {
        saved_name(ts[j].name, false, names[j], sizeof names[j]);
        bool bias = ts[j].rows == 1;
        w[k] = (st_write_tensor){names[j], ST_F32, bias ? 1 : 2, {0}, ts[j].data};
        w[k].shape[0] = bias ? ts[j].cols : ts[j].rows;
        w[k].shape[1] = bias ? 0 : ts[j].cols;
    }
    const char *meta[] = {"format", "pt", NULL};
    int rc = st_write_file(path, w, k, meta);
    free(w);
    free(names);
    st_close(set);
    return rc;
}

static int add_to_config(const char *path, const char *module)
{
    json_t *js = js_load_file(path);
    if (!js) return -1;
    json_t *list = json_array();
    json_array_append_new(list, json_string(module));
    json_object_set_new(js, "modules_to_save", list);
    char *text = json_dumps(js, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(js);
    if (!text) DIE("out of memory");
    int rc = fs_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

int peft_add_module(const char *dir, const char *module, const peft_module_tensor *ts, int n)
{
    char *st = fs_join(dir, "adapter_model.safetensors"), *cfg = fs_join(dir, "adapter_config.json");
    int rc = add_tensors(st, ts, n);
    if (rc == 0) rc = add_to_config(cfg, module);
    free(st);
    free(cfg);
    return rc;
}

int peft_read_module_tensor(const char *dir, const char *canonical, int64_t rows, int64_t cols,
                            float *dst, bool *found)
{
    *found = false;
    char *path = fs_join(dir, "adapter_model.safetensors");
    st_set *set = NULL;
    int rc = st_open_file(path, &set);
    const st_tensor *t = NULL;
    char name[256];
    for (int old = 0; rc == 0 && !t && old < 2; old++) {
        saved_name(canonical, old, name, sizeof name);
        t = st_find(set, name);
    }
    if (rc == 0 && t) {
        bool ok = t->numel == rows * cols &&
                  ((t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols) ||
                   (rows == 1 && t->ndim == 1 && t->shape[0] == cols));
        if (!ok)
            rc = ERR("%s: tensor %s should be [%lld, %lld] as the model's", path, t->name,
                     (long long)rows, (long long)cols);
        if (rc == 0) rc = st_to_f32(t, dst);
        *found = rc == 0;
    }
    if (set) st_close(set);
    free(path);
    return rc;
}
