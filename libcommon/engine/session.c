/* session.c — engine layer: loading a model, tokenizer and preprocessing. */
#include "session.h"
#include "err.h"
#include "hash.h"
#include "fs.h"
#include "h5io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sess_device_default(tool_ctx *t, be_open_opts *o)
{
    be_open_opts_default(o);
    o->local_rank = t->local_rank;
    o->local_size = t->local_size;
}

int sess_device_option(tool_ctx *t, be_open_opts *o, int code, const char *arg)
{
    switch (code) {
    case SESS_O_DEVICE:
        if (strcmp(arg, "auto") != 0 && strcmp(arg, "cpu") != 0 && strcmp(arg, "cuda") != 0)
            tool_usage_error(t, "--device: expected auto, cpu or cuda, got '%s'", arg);
        o->device = arg;
        return 1;
    case SESS_O_DTYPE:
        if (be_dtype_parse(arg, &o->weights) != 0) tool_usage_error(t, "--dtype: %s", err_msg());
        return 1;
    default: return 0;
    }
}

const char *sess_device_key(const be_open_opts *o)
{
    static char key[32];
    const char *dev = o->device ? o->device : "auto";
    if (strcmp(dev, "cpu") == 0) return "cpu";
    const be_gpu_impl *g = be_gpu();
    bool visible = g && g->device_count() > 0;
    if (!visible && strcmp(dev, "auto") == 0) {
        err_clear();
        return "cpu";
    }
    if (!visible) {
        be_backend *none = be_open(o); /* records why */
        if (none) none->destroy(none);
        return NULL;
    }
    snprintf(key, sizeof key, "%s:%s", g->name, be_dtype_name(o->weights));
    return key;
}

int sess_key_device(const be_open_opts *o, char **settings)
{
    const char *key = sess_device_key(o);
    if (!key) return -1;
    if (strcmp(key, "cpu") == 0) return 0;
    size_t n = strlen(*settings) + strlen(key) + 16;
    *settings = xrealloc(*settings, n);
    strcat(*settings, " device=");
    strcat(*settings, key);
    return 0;
}

int sess_load(const char *model_dir, const char *preprocess, const be_open_opts *dev,
              sess_model *s)
{
    memset(s, 0, sizeof *s);
    if (dev) {
        s->be = be_open(dev);
        if (!s->be) return -1;
    } else {
        s->be = be_cpu_new(0);
    }
    int rc = llava_load(model_dir, s->be, &s->m);
    if (rc == 0) rc = tok_load(model_dir, &s->tok);
    if (rc == 0)
        rc = sess_image_config(model_dir, preprocess, s->m->cfg.vision.image_size, &s->pc,
                               &s->mode);
    return rc;
}

int sess_image_config(const char *model_dir, const char *preprocess, int image_size,
                      img_proc_cfg *pc, img_mode *mode)
{
    int rc = 0;
    img_proc_default(pc);
    char *pp = fs_join(model_dir, "preprocessor_config.json");
    if (fs_is_file(pp)) rc = img_proc_load(model_dir, pc);
    free(pp);
    if (rc == 0) rc = img_mode_parse(preprocess, mode);
    if (rc == 0 && (pc->crop_w != image_size || pc->crop_h != image_size))
        rc = ERR("%s: preprocessor crop %dx%d does not match the vision tower's %d px",
                 model_dir, pc->crop_w, pc->crop_h, image_size);
    return rc;
}

int sess_attach_adapter(sess_model *s, const char *adapter_dir)
{
    if (s->adapter) return ERR("%s: an adapter is already attached", adapter_dir);
    if (!fs_is_dir(adapter_dir)) return ERR("%s: adapter folder not found", adapter_dir);
    int rc = lora_load_peft(s->m, adapter_dir, &s->adapter);
    if (rc != 0) return err_context("adapter %s", adapter_dir);
    lora_attach(s->m, s->adapter);
    return 0;
}

/* Folds one file's bytes into *h. */
static int sess_hash_file(const char *dir, const char *name, uint64_t *h)
{
    char *path = fs_join(dir, name);
    char *buf = NULL;
    size_t len = 0;
    int rc = fs_read_all(path, &buf, &len);
    if (rc == 0) *h = hash_fnv1a(buf, len, *h);
    free(buf);
    free(path);
    return rc;
}

char *sess_adapter_hash(const char *adapter_dir)
{
    if (!adapter_dir) return xstrdup("none");
    uint64_t h = HASH_FNV_INIT;
    if (sess_hash_file(adapter_dir, "adapter_config.json", &h) != 0 ||
        sess_hash_file(adapter_dir, "adapter_model.safetensors", &h) != 0) {
        err_context("adapter %s", adapter_dir);
        return NULL;
    }
    char hex[17];
    return xstrdup(h5io_hex64(h, hex));
}

void sess_free(sess_model *s)
{
    if (s->adapter) {
        lora_detach(s->m);
        lora_free(s->adapter);
    }
    if (s->tok) tok_free(s->tok);
    if (s->m) llava_free(s->m);
    if (s->be) s->be->destroy(s->be);
    memset(s, 0, sizeof *s);
}
