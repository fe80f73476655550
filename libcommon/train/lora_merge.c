/* lora_merge.c — training layer: a model folder with an adapter merged in. */
#include "lora_merge.h"
#include "err.h"
#include "fs.h"
#include "safetensors.h"
#include "weights.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Every tensor of the model folder as F32, targeted linears merged, into
 * dir/model.safetensors (stored names kept: the loader knows them). */
static int write_merged_weights(const lora_adapter *ad, const char *model_dir, const char *dir)
{
    st_set *set = NULL;
    if (st_open_dir(model_dir, &set) != 0) return -1;
    size_t n = st_count(set);
    st_write_tensor *ts = xcalloc(n ? n : 1, sizeof *ts);
    float **bufs = xcalloc(n ? n : 1, sizeof *bufs);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const st_tensor *t = st_at(set, i);
        bufs[i] = xmalloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        rc = st_to_f32(t, bufs[i]);
        int l, w;
        if (rc == 0 && t->ndim == 2 && targeted_linear(ad, t->name, &l, &w))
            lora_merge_term(bufs[i], lora_host_A(ad, l, w), lora_host_B(ad, l, w), ad->cfg.r,
                            t->shape[0], t->shape[1], ad->terms[l].t[w].scale, bufs[i]);
        ts[i] = (st_write_tensor){t->name, ST_F32, t->ndim, {0}, bufs[i]};
        memcpy(ts[i].shape, t->shape, sizeof t->shape);
    }
    char *path = fs_join(dir, "model.safetensors");
    const char *meta[] = {"format", "pt", NULL};
    if (rc == 0) rc = st_write_file(path, ts, n, meta);
    free(path);
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(ts);
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
    if (copy_model_files(model_dir, dir) != 0) return -1;
    return write_merged_weights(ad, model_dir, dir);
}
