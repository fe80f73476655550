/* lora.c — training layer: LoRA adapters (create, PEFT load/save, attach, merge). */
#include "lora.h"
#include "err.h"
#include "fs.h"
#include "js.h"
#include "safetensors.h"
#include "sampling.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const linear_module[LL_N_LINEAR] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
static const char *const linear_short[LL_N_LINEAR] = {"q", "k", "v", "o", "gate", "up", "down"};

lora_config lora_config_default(void)
{
    lora_config c = {8, 16.0, 0.0, false, (1u << LL_N_LINEAR) - 1};
    return c;
}

/* "q" or "q_proj" (or "self_attn.q_proj") -> index; -1 if unknown. */
static int target_index(const char *name, size_t len)
{
    for (int i = 0; i < LL_N_LINEAR; i++) {
        const char *full = strchr(linear_module[i], '.') + 1; /* "q_proj" */
        size_t ls = strlen(linear_short[i]), lf = strlen(full);
        if ((len == ls && !strncmp(name, linear_short[i], ls)) ||
            (len == lf && !strncmp(name, full, lf)))
            return i;
    }
    return -1;
}

int lora_parse_targets(const char *list, unsigned *out)
{
    unsigned bits = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int i = target_index(p, len);
        if (i < 0) return ERR("unknown LoRA target \"%.*s\" (expected q,k,v,o,gate,up,down)", (int)len, p);
        bits |= 1u << i;
        p += len + (p[len] == ',');
    }
    if (!bits) return ERR("no LoRA target modules given");
    *out = bits;
    return 0;
}

void lora_linear_dims(const llava_model *m, llama_linear_id which, int64_t *out_dim,
                      int64_t *in_dim)
{
    const be_weight *w = llama_layer_weight(&m->lm.layers[0], which);
    *out_dim = w->rows;
    *in_dim = w->cols;
}

void lora_peft_name(int layer, llama_linear_id which, char ab, char *buf, size_t size)
{
    snprintf(buf, size, "base_model.model.model.language_model.layers.%d.%s.lora_%c.weight", layer,
             linear_module[which], ab);
}

float *lora_host_A(const lora_adapter *ad, int layer, llama_linear_id which)
{
    if (!ad->host_A[which]) return NULL;
    int64_t in = ad->terms[0].t[which].A.cols;
    return ad->host_A[which] + (int64_t)layer * ad->cfg.r * in;
}

float *lora_host_B(const lora_adapter *ad, int layer, llama_linear_id which)
{
    if (!ad->host_B[which]) return NULL;
    int64_t out = ad->terms[0].t[which].B.rows;
    return ad->host_B[which] + (int64_t)layer * out * ad->cfg.r;
}

static float lora_scale(const lora_config *c)
{
    return (float)(c->rslora ? c->alpha / sqrt((double)c->r) : c->alpha / c->r);
}

/* Host storage and backend weights for every targeted term (values zero). */
static lora_adapter *adapter_alloc(llava_model *m, const lora_config *cfg)
{
    lora_adapter *ad = xcalloc(1, sizeof *ad);
    ad->cfg = *cfg;
    ad->be = m->be;
    ad->n_layers = m->lm.n_layers;
    ad->terms = xcalloc((size_t)ad->n_layers, sizeof *ad->terms);
    int64_t r = cfg->r;
    for (int i = 0; i < LL_N_LINEAR; i++) {
        if (!(cfg->targets & (1u << i))) continue;
        int64_t out, in;
        lora_linear_dims(m, i, &out, &in);
        ad->host_A[i] = xcalloc((size_t)(ad->n_layers * r * in), sizeof(float));
        ad->host_B[i] = xcalloc((size_t)(ad->n_layers * out * r), sizeof(float));
        for (int l = 0; l < ad->n_layers; l++) {
            lora_term *t = &ad->terms[l].t[i];
            m->be->weight_new(m->be, lora_host_A(ad, 0, i) + l * r * in, r, in, &t->A);
            m->be->weight_new(m->be, lora_host_B(ad, 0, i) + l * out * r, out, r, &t->B);
            t->scale = lora_scale(cfg);
        }
    }
    return ad;
}

void lora_sync(lora_adapter *ad)
{
    for (int l = 0; l < ad->n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            lora_term *t = &ad->terms[l].t[i];
            if (!t->A.data) continue;
            ad->be->weight_set(ad->be, &t->A, lora_host_A(ad, l, i));
            ad->be->weight_set(ad->be, &t->B, lora_host_B(ad, l, i));
        }
}

int lora_new(llava_model *m, const lora_config *cfg, uint64_t seed, lora_adapter **out)
{
    if (cfg->r < 1) return ERR("LoRA rank must be at least 1, got %d", cfg->r);
    lora_adapter *ad = adapter_alloc(m, cfg);
    for (int l = 0; l < ad->n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            float *A = lora_host_A(ad, l, i);
            if (!A) continue;
            int64_t o, in;
            lora_linear_dims(m, i, &o, &in);
            smp_rng rng;
            smp_rng_seed(&rng, smp_derive_seed(seed, (uint64_t)l, (uint64_t)i));
            double bound = 1.0 / sqrt((double)in);
            for (int64_t j = 0; j < (int64_t)cfg->r * in; j++)
                A[j] = (float)((2.0 * smp_rng_uniform(&rng) - 1.0) * bound);
        }
    lora_sync(ad);
    *out = ad;
    return 0;
}

/* r, lora_alpha, lora_dropout, use_rslora; target_modules as a list is
 * checked, as a regex (PEFT allows one) the tensors present decide. */
static int read_adapter_config(const char *dir, lora_config *cfg)
{
    char *path = fs_join(dir, "adapter_config.json");
    json_t *js = js_load_file(path);
    free(path);
    if (!js) return -1;
    long long r = 0;
    int rc = js_get_int(js, "r", 8, &r, "adapter_config.json");
    if (rc == 0) rc = js_get_double(js, "lora_alpha", 8, &cfg->alpha, "adapter_config.json");
    if (rc == 0) rc = js_get_double(js, "lora_dropout", 0, &cfg->dropout, "adapter_config.json");
    if (rc == 0) rc = js_get_bool(js, "use_rslora", false, &cfg->rslora, "adapter_config.json");
    const char *ptype = json_string_value(json_object_get(js, "peft_type"));
    if (rc == 0 && ptype && strcmp(ptype, "LORA") != 0)
        rc = ERR("%s: peft_type is \"%s\", only LORA is supported", dir, ptype);
    if (rc == 0 && json_is_true(json_object_get(js, "use_dora")))
        rc = ERR("%s: DoRA adapters are not supported", dir);
    cfg->r = (int)r;
    json_decref(js);
    if (rc == 0 && cfg->r < 1) rc = ERR("%s: LoRA rank %d", dir, cfg->r);
    return rc;
}

/* Copy one stored tensor into host storage, checking its shape. */
static int load_term_tensor(const st_set *set, const char *dir, const char *name, int64_t rows,
                            int64_t cols, float *dst)
{
    const st_tensor *t = st_find(set, name);
    if (!t) return ERR("%s: tensor %s is missing", dir, name);
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return ERR("%s: tensor %s should be [%lld, %lld]", dir, name, (long long)rows,
                   (long long)cols);
    return st_to_f32(t, dst);
}

int lora_load_peft(llava_model *m, const char *dir, lora_adapter **out)
{
    *out = NULL;
    lora_config cfg = lora_config_default();
    if (read_adapter_config(dir, &cfg) != 0) return -1;
    char *path = fs_join(dir, "adapter_model.safetensors");
    st_set *set = NULL;
    int rc = st_open_file(path, &set);
    free(path);
    if (rc != 0) return -1;
    /* the targets are the linears whose layer-0 A is stored */
    cfg.targets = 0;
    char name[256];
    for (int i = 0; i < LL_N_LINEAR; i++) {
        lora_peft_name(0, i, 'A', name, sizeof name);
        if (st_find(set, name)) cfg.targets |= 1u << i;
    }
    if (!cfg.targets) {
        st_close(set);
        return ERR("%s: no LoRA tensors for the language model's layers", dir);
    }
    lora_adapter *ad = adapter_alloc(m, &cfg);
    for (int l = 0; rc == 0 && l < ad->n_layers; l++)
        for (int i = 0; rc == 0 && i < LL_N_LINEAR; i++) {
            if (!ad->host_A[i]) continue;
            int64_t o, in;
            lora_linear_dims(m, i, &o, &in);
            lora_peft_name(l, i, 'A', name, sizeof name);
            rc = load_term_tensor(set, dir, name, cfg.r, in, lora_host_A(ad, l, i));
            lora_peft_name(l, i, 'B', name, sizeof name);
            if (rc == 0) rc = load_term_tensor(set, dir, name, o, cfg.r, lora_host_B(ad, l, i));
        }
    st_close(set);
    if (rc != 0) {
        lora_free(ad);
        return -1;
    }
    lora_sync(ad);
    *out = ad;
    return 0;
}

static json_t *adapter_config_json(const lora_config *c, const char *base)
{
    json_t *targets = json_array();
    for (int i = 0; i < LL_N_LINEAR; i++)
        if (c->targets & (1u << i))
            json_array_append_new(targets, json_string(strchr(linear_module[i], '.') + 1));
    json_t *js = json_object();
    json_object_set_new(js, "peft_type", json_string("LORA"));
    json_object_set_new(js, "task_type", json_null());
    json_object_set_new(js, "base_model_name_or_path", base ? json_string(base) : json_null());
    json_object_set_new(js, "r", json_integer(c->r));
    json_object_set_new(js, "lora_alpha", json_real(c->alpha));
    json_object_set_new(js, "lora_dropout", json_real(c->dropout));
    json_object_set_new(js, "use_rslora", json_boolean(c->rslora));
    json_object_set_new(js, "bias", json_string("none"));
    json_object_set_new(js, "fan_in_fan_out", json_false());
    json_object_set_new(js, "inference_mode", json_true());
    json_object_set_new(js, "init_lora_weights", json_true());
    /* PEFT matches these suffixes in every module; restrict them to the
     * language model the way the golden adapter does, with a regex */
    char re[256] = ".*language_model.*\\.(";
    for (size_t i = 0; i < json_array_size(targets); i++) {
        strcat(re, i ? "|" : "");
        strcat(re, json_string_value(json_array_get(targets, i)));
    }
    strcat(re, ")");
    json_object_set_new(js, "target_modules", json_string(re));
    json_decref(targets);
    return js;
}

int lora_save_peft(const lora_adapter *ad, const char *dir, const char *base_model_name)
{
    if (!fs_is_dir(dir) && mkdir(dir, 0777) != 0 && !fs_is_dir(dir))
        return err_errno_at(__FILE__, __LINE__, "%s: cannot create the adapter folder", dir);
    size_t n = 0, cap = (size_t)ad->n_layers * LL_N_LINEAR * 2;
    st_write_tensor *ts = xcalloc(cap ? cap : 1, sizeof *ts);
    char (*names)[160] = xcalloc(cap ? cap : 1, sizeof *names);
    for (int l = 0; l < ad->n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            const lora_term *t = &ad->terms[l].t[i];
            if (!t->A.data) continue;
            const be_weight *w[2] = {&t->A, &t->B};
            const float *h[2] = {lora_host_A(ad, l, i), lora_host_B(ad, l, i)};
            for (int j = 0; j < 2; j++, n++) {
                lora_peft_name(l, i, j ? 'B' : 'A', names[n], sizeof names[n]);
                ts[n] = (st_write_tensor){names[n], ST_F32, 2, {w[j]->rows, w[j]->cols}, h[j]};
            }
        }
    char *path = fs_join(dir, "adapter_model.safetensors");
    const char *meta[] = {"format", "pt", NULL};
    int rc = st_write_file(path, ts, n, meta);
    free(path);
    free(ts);
    free(names);
    if (rc != 0) return -1;
    json_t *js = adapter_config_json(&ad->cfg, base_model_name);
    char *text = json_dumps(js, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(js);
    path = fs_join(dir, "adapter_config.json");
    rc = fs_write_atomic(path, text, strlen(text));
    free(path);
    free(text);
    return rc;
}

void lora_free(lora_adapter *ad)
{
    if (!ad) return;
    for (int l = 0; l < ad->n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            lora_term *t = &ad->terms[l].t[i];
            if (t->A.data) ad->be->weight_free(ad->be, &t->A);
            if (t->B.data) ad->be->weight_free(ad->be, &t->B);
        }
    for (int i = 0; i < LL_N_LINEAR; i++) {
        free(ad->host_A[i]);
        free(ad->host_B[i]);
    }
    free(ad->terms);
    free(ad);
}

void lora_attach(llava_model *m, lora_adapter *ad)
{
    m->lm.lora = ad->terms;
    m->lm.lora_off = false;
}

void lora_detach(llava_model *m)
{
    m->lm.lora = NULL;
    m->lm.lora_off = false;
}

void lora_merge_term(const float *W, const float *A, const float *B, int r, int64_t out_dim,
                     int64_t in_dim, float scale, float *merged)
{
    for (int64_t o = 0; o < out_dim; o++)
        for (int64_t i = 0; i < in_dim; i++) {
            double s = 0;
            for (int k = 0; k < r; k++) s += (double)B[o * r + k] * A[(int64_t)k * in_dim + i];
            merged[o * in_dim + i] = W[o * in_dim + i] + (float)(scale * s);
        }
}

void lora_merge_into_model(llava_model *m, lora_adapter *ad)
{
    be_backend *be = m->be;
    for (int l = 0; l < ad->n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            const lora_term *t = &ad->terms[l].t[i];
            if (!t->A.data) continue;
            be_weight *w = (be_weight *)llama_layer_weight(&m->lm.layers[l], i);
            float *host = xmalloc(sizeof(float) * (size_t)(w->rows * w->cols));
            be->weight_get(be, w, host);
            lora_merge_term(host, lora_host_A(ad, l, i), lora_host_B(ad, l, i), ad->cfg.r,
                            w->rows, w->cols, t->scale, host);
            be->weight_set(be, w, host);
            free(host);
        }
    lora_detach(m);
}
