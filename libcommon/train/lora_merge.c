/* lora_merge.c — training layer: a model folder with an adapter merged in. */
#define _GNU_SOURCE
#include "lora_merge.h"
#include "err.h"
#include "fs.h"
#include "safetensors.h"
#include "weights.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Is stored tensor `name` the weight of a LoRA-targeted linear? Sets
 * *layer, *which. */
static bool targeted_linear(const lora_adapter *ad, const char *name, int *layer, int *which)
{
    static const char *const mod[LL_N_LINEAR] = {"self_attn.q_proj", "self_attn.k_proj",
                                                 "self_attn.v_proj", "self_attn.o_proj",
                                                 "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    char canon[512], rest[256];
    int l;
    if (!wt_canonical(name, canon, sizeof canon)) return false;
    if (sscanf(canon, "language_model.model.layers.%d.%255s", &l, rest) != 2) return false;
    for (int i = 0; i < LL_N_LINEAR; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s.weight", mod[i]);
        if (!strcmp(rest, want) && l >= 0 && l < ad->n_layers && lora_host_A(ad, l, i)) {
            *layer = l;
            *which = i;
            return true;
        }
    }
    return false;
}

/* The override of stored tensor `name`, or NULL. */
static const lora_override *find_override(const lora_override *ov, int n_ov, const char *name)
{
    char canon[512];
    const char *c = wt_canonical(name, canon, sizeof canon);
    for (int i = 0; c && i < n_ov; i++)
        if (!strcmp(ov[i].name, c)) return &ov[i];
    return NULL;
}

/* The safetensors header of the set's tensors all as F32, in set order,
 * padded with spaces to a multiple of 8 bytes; *len its length. */
static char *f32_header(const st_set *set, size_t *len)
{
    json_t *h = json_object(), *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(h, "__metadata__", meta);
    uint64_t off = 0;
    for (size_t i = 0; i < st_count(set); i++) {
        const st_tensor *t = st_at(set, i);
        json_t *e = json_object(), *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_object_set_new(e, "dtype", json_string("F32"));
        json_object_set_new(e, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += (uint64_t)t->numel * sizeof(float);
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_object_set_new(e, "data_offsets", offs);
        json_object_set_new(h, t->name, e);
    }
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!text) DIE("out of memory");
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    char *out = xmalloc(padded);
    memcpy(out, text, n);
    memset(out + n, ' ', padded - n);
    free(text);
    *len = padded;
    return out;
}

/* One tensor as F32 with its merge or override applied, written to f. */
static int write_one(FILE *f, const char *path, const st_tensor *t, const lora_adapter *ad,
                     const lora_override *ov, int n_ov, float *buf)
{
    const lora_override *o = find_override(ov, n_ov, t->name);
    int l, w;
    if (o && o->numel != t->numel)
        return ERR("%s: tensor %s has %lld values, the trained one %lld", path, t->name,
                   (long long)t->numel, (long long)o->numel);
    if (o) memcpy(buf, o->data, sizeof(float) * (size_t)t->numel);
    else if (st_to_f32(t, buf) != 0) return -1;
    if (ad && t->ndim == 2 && targeted_linear(ad, t->name, &l, &w))
        lora_merge_term(buf, lora_host_A(ad, l, w), lora_host_B(ad, l, w), ad->cfg.r, t->shape[0],
                        t->shape[1], ad->terms[l].t[w].scale, buf);
    if (t->numel > 0 && fwrite(buf, sizeof(float), (size_t)t->numel, f) != (size_t)t->numel)
        return err_errno_at(__FILE__, __LINE__, "%s: cannot write", path);
    return 0;
}

/* Header then every tensor in turn: one tensor's F32 copy in memory at a
 * time, so merging a 7B model does not need the whole model in F32. */
static int write_body(FILE *f, const char *path, const st_set *set, const lora_adapter *ad,
                      const lora_override *ov, int n_ov)
{
    size_t hlen, n = st_count(set);
    char *header = f32_header(set, &hlen);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i)); /* little-endian */
    int rc = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen
                 ? 0 : err_errno_at(__FILE__, __LINE__, "%s: cannot write", path);
    free(header);
    int64_t largest = 1;
    for (size_t i = 0; i < n; i++)
        if (st_at(set, i)->numel > largest) largest = st_at(set, i)->numel;
    float *buf = xmalloc(sizeof(float) * (size_t)largest);
    for (size_t i = 0; rc == 0 && i < n; i++) rc = write_one(f, path, st_at(set, i), ad, ov, n_ov, buf);
    free(buf);
    return rc;
}

/* Every tensor of the model folder as F32 (merged or overridden) into
 * dir/model.safetensors (stored names kept: the loader knows them),
 * written to a temporary file and renamed. */
static int write_merged_weights(const lora_adapter *ad, const lora_override *ov, int n_ov,
                                const char *model_dir, const char *dir)
{
    st_set *set = NULL;
    if (st_open_dir(model_dir, &set) != 0) return -1;
    for (int i = 0; i < n_ov; i++)
        if (!wt_find(set, ov[i].name)) {
            st_close(set);
            return ERR("%s: no tensor %s to replace with the trained one", model_dir, ov[i].name);
        }
    char *path = fs_join(dir, "model.safetensors"), *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp", path) < 0) DIE("out of memory");
    FILE *f = fopen(tmp, "wb");
    int rc = f ? 0 : err_errno_at(__FILE__, __LINE__, "%s: cannot create", tmp);
    if (rc == 0) rc = write_body(f, tmp, set, ad, ov, n_ov);
    if (f && rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", tmp);
    if (f && fclose(f) != 0 && rc == 0) rc = err_errno_at(__FILE__, __LINE__, "%s: cannot write", tmp);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = err_errno_at(__FILE__, __LINE__, "%s: cannot rename to %s", tmp, path);
    if (rc != 0 && f) unlink(tmp);
    free(tmp);
    free(path);
    st_close(set);
    return rc;
}

/* Weight files are replaced by model.safetensors; the rest (config,
 * tokenizer, preprocessor) is copied. */
static bool is_weight_file(const char *name)
{
    size_t n = strlen(name);
    const char *ends[] = {".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json"};
    for (int i = 0; i < 4; i++) {
        size_t e = strlen(ends[i]);
        if (n >= e && !strcmp(name + n - e, ends[i])) return true;
    }
    return false;
}

static int copy_model_files(const char *model_dir, const char *dir)
{
    DIR *d = opendir(model_dir);
    if (!d) return err_errno_at(__FILE__, __LINE__, "%s: cannot open", model_dir);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        char *src = fs_join(model_dir, e->d_name);
        if (fs_is_file(src) && !is_weight_file(e->d_name)) {
            char *buf, *dst = fs_join(dir, e->d_name);
            size_t len;
            rc = fs_read_all(src, &buf, &len);
            if (rc == 0) rc = fs_write_atomic(dst, buf, len);
            if (rc == 0) free(buf);
            free(dst);
        }
        free(src);
    }
    closedir(d);
    return rc;
}

int lora_write_merged_model(const lora_adapter *ad, const char *model_dir, const char *dir)
{
    return lora_write_model(ad, NULL, 0, model_dir, dir);
}

int lora_write_model(const lora_adapter *ad, const lora_override *ov, int n_ov,
                     const char *model_dir, const char *dir)
{
    if (copy_model_files(model_dir, dir) != 0) return -1;
    return write_merged_weights(ad, ov, n_ov, model_dir, dir);
}
