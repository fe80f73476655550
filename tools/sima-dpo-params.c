/* sima-dpo-params.c — what sima-dpo trains, as one flat float32 vector of
 * master copies (LoRA terms, the projector, or every weight): building it,
 * accumulating and all-reducing its gradient, clipping, the AdamW step,
 * refreshing the model weights; the projector of an --adapter put in
 * place. On the CPU backend the vectors are host arrays and the ranks sum
 * with MPI; on a GPU they stay on the device and the ranks sum with NCCL
 * (the same arithmetic: see dpo_params). */
#include "sima-dpo.h"

#include "err.h"
#include "log.h"
#include "peft_modules.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void params_add(dpo_params *p, float *param, be_mat *grad, be_mat *grad2, be_weight *w,
                       bool owned)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->t = xrealloc(p->t, sizeof *p->t * (size_t)p->cap);
    }
    int64_t n = grad->rows * grad->cols;
    p->t[p->n++] = (dpo_tensor){param, grad, grad2, w, owned, n, p->total};
    p->total += n;
    if (n > p->largest) p->largest = n;
}

/* A model weight as a trained tensor: its float32 master copy from the backend. */
static void params_add_weight(dpo_params *p, be_backend *be, be_weight *w, be_mat *grad, be_mat *grad2)
{
    float *host = xmalloc(sizeof(float) * (size_t)(w->rows * w->cols));
    be->weight_get(be, w, host);
    params_add(p, host, grad, grad2, w, true);
}

static void params_add_lora(dpo_params *p, lora_adapter *ad, llama_grads *g)
{
    for (int l = 0; l < ad->n_layers; l++)
        for (int i = 0; i < LL_N_LINEAR; i++) {
            if (!lora_host_A(ad, l, i)) continue;
            lora_term *t = &ad->terms[l].t[i];
            params_add(p, lora_host_A(ad, l, i), &g->layers[l].lora_A[i], NULL, &t->A, false);
            params_add(p, lora_host_B(ad, l, i), &g->layers[l].lora_B[i], NULL, &t->B, false);
        }
}

/* Every decoder weight: embeddings (with lm_head's gradient when tied),
 * final norm, lm_head, each layer's norms and linears. */
static void params_add_llama(dpo_params *p, llava_model *m, llama_grads *g)
{
    llama_decoder *lm = &m->lm;
    bool tied = lm->lm_head.data == lm->embed.data;
    params_add_weight(p, m->be, &lm->embed, &g->embed, tied ? &g->lm_head : NULL);
    params_add_weight(p, m->be, &lm->norm, &g->norm, NULL);
    if (!tied) params_add_weight(p, m->be, &lm->lm_head, &g->lm_head, NULL);
    for (int l = 0; l < lm->n_layers; l++) {
        llama_layer *L = &lm->layers[l];
        params_add_weight(p, m->be, &L->attn_norm, &g->layers[l].attn_norm, NULL);
        params_add_weight(p, m->be, &L->mlp_norm, &g->layers[l].mlp_norm, NULL);
        for (int i = 0; i < LL_N_LINEAR; i++)
            params_add_weight(p, m->be, (be_weight *)llama_layer_weight(L, i), &g->layers[l].w[i], NULL);
    }
}

/* Every wanted vision gradient's weight (the projector's, or all). */
static void params_add_vision(dpo_params *p, llava_model *m, vision_grads *vg)
{
    int cap = 9 + 16 * m->vision.n_layers;
    be_mat **gs = xmalloc(sizeof *gs * (size_t)cap);
    be_weight **ws = xmalloc(sizeof *ws * (size_t)cap);
    int n = vision_grad_weights(m, vg, gs, ws, cap);
    for (int i = 0; i < n; i++) params_add_weight(p, m->be, ws[i], gs[i], NULL);
    free(gs);
    free(ws);
}

/* Tensor t's part of a flat [1, total] backend vector, as a [rows, cols] view. */
static be_mat flat_view(be_mat v, const dpo_tensor *t)
{
    be_mat m = {v.data + t->off, t->grad->rows, t->grad->cols, t->grad->cols};
    return m;
}

static bool backend_steps(const be_backend *be)
{
    return be->axpy && be->sum_squares && be->adamw && be->weight_from && be->allreduce_sum &&
           be->reduce_scatter_sum && be->all_gather;
}

/* [1, n] at offset off of a flat vector */
static be_mat flat_part(be_mat v, int64_t off, int64_t n)
{
    be_mat m = {v.data + off, 1, n, n};
    return m;
}

static int params_alloc(dpo_params *p, be_backend *be, bool shard, int rank, int size)
{
    p->be = be;
    p->grad = xcalloc((size_t)p->total + 1, sizeof(float));
    p->m = xcalloc((size_t)p->total + 1, sizeof(float));
    p->v = xcalloc((size_t)p->total + 1, sizeof(float));
    p->scratch = xcalloc((size_t)p->largest + 1, sizeof(float));
    p->on_device = backend_steps(be);
    if (shard && !p->on_device)
        return ERR("--shard keeps the optimizer on the GPUs: it needs --device cuda (the %s "
                   "backend sums gradients on the host)", be->name);
    if (!p->on_device) return 0;
    p->shard = shard;
    p->size = shard ? size : 1;
    p->rank = shard ? rank : 0;
    p->part = (p->total + p->size - 1) / p->size;
    p->padded = p->part * p->size;
    p->part_off = p->part * p->rank;
    p->dev_grad = be->mat_new(be, 1, p->padded);
    p->dev_param = be->mat_new(be, 1, p->padded);
    p->dev_m = be->mat_new(be, 1, p->part);
    p->dev_v = be->mat_new(be, 1, p->part);
    if (shard) p->dev_gpart = be->mat_new(be, 1, p->part);
    params_upload(p);
    return 0;
}

/* The trained tensor whose gradient is g, or NULL. */
dpo_tensor *params_by_grad(dpo_params *p, const be_mat *g)
{
    for (int k = 0; g && k < p->n; k++)
        if (p->t[k].grad == g) return &p->t[k];
    return NULL;
}

void params_free(dpo_params *p)
{
    for (int k = 0; k < p->n; k++)
        if (p->t[k].owned) free(p->t[k].param);
    free(p->t);
    free(p->grad);
    free(p->m);
    free(p->v);
    free(p->scratch);
    be_mat *dev[] = {&p->dev_grad, &p->dev_param, &p->dev_m, &p->dev_v, &p->dev_gpart};
    for (int i = 0; p->on_device && i < 5; i++)
        if (dev[i]->data) p->be->mat_free(p->be, dev[i]);
}

void params_zero_grad(dpo_params *p)
{
    if (p->on_device) p->be->scale(p->be, p->dev_grad, 0.0f); /* a NaN step stops the run */
    else memset(p->grad, 0, sizeof(float) * (size_t)p->total);
}

/* grad += weight * (the backend gradients), each product rounded to float
 * then added, on the host or the device alike */
void params_accumulate(dpo_params *p, be_backend *be, double weight)
{
    for (int k = 0; k < p->n; k++) {
        const dpo_tensor *t = &p->t[k];
        float *g = p->grad + t->off;
        be_mat *src[2] = {t->grad, t->grad2};
        for (int j = 0; j < 2 && src[j]; j++) {
            if (p->on_device) {
                be->axpy(be, flat_view(p->dev_grad, t), *src[j], weight);
                continue;
            }
            be->download(be, *src[j], p->scratch);
            for (int64_t i = 0; i < t->n; i++) g[i] += (float)(weight * p->scratch[i]);
        }
    }
}

int params_allreduce(dpo_params *p)
{
    if (!p->on_device) return allreduce_floats(p->grad, p->total);
    if (p->shard) p->be->reduce_scatter_sum(p->be, p->dev_grad, p->dev_gpart);
    else p->be->allreduce_sum(p->be, p->dev_grad);
    return 0;
}

double params_clip(dpo_params *p, double max_norm, double *scale)
{
    *scale = 1.0;
    if (!p->on_device) {
        float *grads[1] = {p->grad};
        int64_t sizes[1] = {p->total};
        return optim_clip(grads, sizes, 1, max_norm);
    }
    /* optim_clip's rule; the factor is applied inside the AdamW step. With
     * --shard each rank has a slice: the ranks add their sums (in rank
     * order for two ranks; the factor's last bits may differ from the
     * unsharded sum) */
    double ss = p->be->sum_squares(p->be, p->shard ? p->dev_gpart : p->dev_grad);
    if (p->shard && MPI_Allreduce(MPI_IN_PLACE, &ss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) !=
                        MPI_SUCCESS)
        DIE("MPI_Allreduce of the gradient's sum of squares failed");
    double norm = sqrt(ss);
    double c = max_norm / (norm + 1e-6);
    if (max_norm > 0 && c < 1.0) *scale = c;
    return norm;
}

/* The backend weights from the masters (host or device). */
static void params_push(dpo_params *p)
{
    for (int k = 0; k < p->n; k++) {
        const dpo_tensor *t = &p->t[k];
        if (!t->w) continue;
        if (p->on_device) p->be->weight_from(p->be, t->w, flat_view(p->dev_param, t));
        else p->be->weight_set(p->be, t->w, t->param);
    }
}

void params_adamw(dpo_params *p, const optim_adamw *o, int64_t t, double scale)
{
    if (p->on_device) {
        be_adamw_step s = {o->lr, o->beta1, o->beta2, o->eps, o->weight_decay, t, scale};
        be_mat mine = flat_part(p->dev_param, p->part_off, p->part);
        p->be->adamw(p->be, mine, p->dev_m, p->dev_v, p->shard ? p->dev_gpart : p->dev_grad, &s);
        if (p->shard) p->be->all_gather(p->be, mine, p->dev_param);
        p->host_stale = true;
    } else {
        for (int k = 0; k < p->n; k++) {
            const dpo_tensor *x = &p->t[k];
            optim_adamw_step(o, t, x->param, p->grad + x->off, p->m + x->off, p->v + x->off, x->n);
        }
    }
    params_push(p);
}

/* This rank's moments from the host arrays (its slice with --shard). */
static void moments_upload(dpo_params *p)
{
    int64_t n = p->total - p->part_off < p->part ? p->total - p->part_off : p->part;
    if (n <= 0) return;
    p->be->upload(p->be, flat_part(p->dev_m, 0, n), p->m + p->part_off);
    p->be->upload(p->be, flat_part(p->dev_v, 0, n), p->v + p->part_off);
}

/* Every rank's moments into the host arrays: the slices gathered first
 * with --shard (collective then). */
static void moments_download(dpo_params *p)
{
    be_backend *be = p->be;
    if (!p->shard) {
        be->download(be, p->dev_m, p->m);
        be->download(be, p->dev_v, p->v);
        return;
    }
    be_mat all = be->mat_new(be, 1, p->padded);
    float *dst[2] = {p->m, p->v};
    be_mat src[2] = {p->dev_m, p->dev_v};
    for (int i = 0; i < 2; i++) {
        be->all_gather(be, src[i], all);
        be->download(be, flat_part(all, 0, p->total), dst[i]);
    }
    be->mat_free(be, &all);
}

void params_upload(dpo_params *p)
{
    if (p->on_device) {
        be_backend *be = p->be;
        for (int k = 0; k < p->n; k++) be->upload(be, flat_view(p->dev_param, &p->t[k]), p->t[k].param);
        moments_upload(p);
        p->host_stale = false;
    }
    params_push(p);
}

void params_to_host(dpo_params *p)
{
    if (!p->on_device || !p->host_stale) return;
    be_backend *be = p->be;
    for (int k = 0; k < p->n; k++) be->download(be, flat_view(p->dev_param, &p->t[k]), p->t[k].param);
    moments_download(p);
    p->host_stale = false;
}

/* Sum a float vector over the ranks, in pieces MPI's int count can hold. */
int allreduce_floats(float *v, int64_t n)
{
    for (int64_t off = 0; off < n; off += INT_MAX / 2) {
        int cnt = (int)(n - off < INT_MAX / 2 ? n - off : INT_MAX / 2);
        if (MPI_Allreduce(MPI_IN_PLACE, v + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
            return ERR("MPI_Allreduce of the gradients failed");
    }
    return 0;
}

/* --------------------------------------------------------- projector -- */

/* The projector's tensors, canonical names and weights in one order. */
const char *const PROJ_NAME[4] = {
    "multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_1.bias",
    "multi_modal_projector.linear_2.weight", "multi_modal_projector.linear_2.bias"};

be_weight *proj_weight(llava_model *m, int i)
{
    be_weight *w[4] = {&m->proj.l1, &m->proj.l1_b, &m->proj.l2, &m->proj.l2_b};
    return w[i];
}

/* The projector tensors of --adapter into proj[4] (malloc'd); *found false
 * when the adapter has none. All four or none. */
static int adapter_projector(trainer *tr, float **proj, bool *found)
{
    *found = false;
    if (!tr->a->adapter) return 0;
    int have = 0, rc = 0;
    for (int i = 0; rc == 0 && i < 4; i++) {
        const be_weight *w = proj_weight(tr->s.m, i);
        bool f;
        proj[i] = xmalloc(sizeof(float) * (size_t)(w->rows * w->cols));
        rc = peft_read_module_tensor(tr->a->adapter, PROJ_NAME[i], w->rows, w->cols, proj[i], &f);
        have += f;
    }
    if (rc == 0 && have != 0 && have != 4)
        rc = ERR("%s: the adapter holds %d of the projector's 4 tensors", tr->a->adapter, have);
    *found = rc == 0 && have == 4;
    if (!*found)
        for (int i = 0; i < 4; i++) {
            free(proj[i]);
            proj[i] = NULL;
        }
    return rc;
}

/* Gradients and the flat parameter vector of what is trained; an adapter's
 * projector put in place (trained or frozen). Call with the base model's
 * weights still untouched (the reference is scored before). */
int setup_params(trainer *tr)
{
    llava_model *m = tr->s.m;
    const dpo_args *a = tr->a;
    memset(&tr->p, 0, sizeof tr->p);
    float *loaded[4] = {0};
    bool found;
    if (adapter_projector(tr, loaded, &found) != 0) return -1;
    if (a->train == TRAIN_ALL) {
        llama_grads_new(m, LLAMA_GRAD_WEIGHTS, &tr->g);
        vision_grads_new(m, &tr->vg);
        params_add_llama(&tr->p, m, &tr->g);
        params_add_vision(&tr->p, m, &tr->vg);
    } else {
        llama_grads_new(m, LLAMA_GRAD_LORA, &tr->g);
        params_add_lora(&tr->p, tr->ad, &tr->g);
        if (a->train == TRAIN_LORA_PROJECTOR) {
            vision_grads_new_projector(m, &tr->vg);
            int k0 = tr->p.n;
            params_add_vision(&tr->p, m, &tr->vg); /* l1, l1_b, l2, l2_b: PROJ_NAME's order */
            for (int i = 0; i < 4; i++) tr->proj[i] = tr->p.t[k0 + i].param;
        }
    }
    if (params_alloc(&tr->p, tr->s.be, a->shard != 0, tr->t->rank, tr->t->size) != 0) return -1;
    if (tr->p.on_device && tr->t->size > 1) {
        MPI_Comm world = MPI_COMM_WORLD;
        if (tr->s.be->comm_init(tr->s.be, &world) != 0) return -1;
    }
    for (int i = 0; found && i < 4; i++) {
        be_weight *w = proj_weight(m, i);
        if (tr->proj[i]) {
            memcpy(tr->proj[i], loaded[i], sizeof(float) * (size_t)(w->rows * w->cols));
            free(loaded[i]);
        } else {
            tr->proj[i] = loaded[i];
            tr->proj_owned = true;
        }
        tr->s.be->weight_set(tr->s.be, w, tr->proj[i]);
    }
    if (found && tr->p.on_device) params_upload(&tr->p); /* the masters changed on the host */
    if (found) log_info("%s: the adapter's projector %s", a->adapter,
                        a->train == TRAIN_LORA_PROJECTOR ? "(trained further)" : "(kept frozen)");
    return 0;
}

