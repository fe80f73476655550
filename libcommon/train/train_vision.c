/* train_vision.c — training layer: CLIP tower + projector, training forward
 * and backward. Mirrors model/clip.c op by op. */
#include "train_vision.h"
#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Unfold pixels [n, ch, S, S] into [n*P, ch*p*p] rows in the conv kernel's
 * (c, y, x) order (as clip.c does). */
static void unfold(const float *pixels, int n_img, int ch, int S, int p, float *out)
{
    int side = S / p, P = side * side, K = ch * p * p;
    for (int i = 0; i < n_img; i++)
        for (int py = 0; py < side; py++)
            for (int px = 0; px < side; px++) {
                float *dst = out + ((size_t)i * P + (size_t)py * side + px) * K;
                for (int c = 0; c < ch; c++)
                    for (int ky = 0; ky < p; ky++)
                        memcpy(dst + (c * p + ky) * p,
                               pixels + (((size_t)i * ch + c) * S + (size_t)py * p + ky) * S +
                                   (size_t)px * p,
                               sizeof(float) * p);
            }
}

static int act_kind(const char *act)
{
    if (!strcmp(act, "quick_gelu")) return 1;
    if (!strcmp(act, "gelu")) return 2;
    return ERR("activation \"%s\" is not supported", act);
}

static void act_fwd(be_backend *be, int kind, be_mat x)
{
    if (kind == 1) be->quick_gelu(be, x);
    else be->gelu_erf(be, x);
}

static void act_bwd(be_backend *be, int kind, be_mat dx, be_mat dy, be_mat x)
{
    if (kind == 1) be->quick_gelu_backward(be, dx, dy, x);
    else be->gelu_erf_backward(be, dx, dy, x);
}

static be_attn_seq *image_seqs(int n_img, int T)
{
    be_attn_seq *s = xcalloc((size_t)n_img, sizeof *s);
    for (int i = 0; i < n_img; i++) {
        s[i].q_row0 = (int64_t)i * T;
        s[i].n_new = T;
    }
    return s;
}

static be_attn_shape clip_shape(const cfg_vision *v)
{
    be_attn_shape sh = {v->num_attention_heads, v->num_attention_heads, v->head_dim, false,
                        1.0f / sqrtf((float)v->head_dim)};
    return sh;
}

static void clip_layer_fwd(llava_model *m, const clip_layer *L, be_mat x, clip_layer_tape *t,
                           int n_img, int T, int kind)
{
    be_backend *be = m->be;
    const cfg_vision *v = &m->cfg.vision;
    int64_t R = x.rows, C = v->hidden_size, Fv = v->intermediate_size;
    float eps = (float)v->layer_norm_eps;
    *t = (clip_layer_tape){be->mat_new(be, R, C), be->mat_new(be, R, C), be->mat_new(be, R, C),
                           be->mat_new(be, R, C), be->mat_new(be, R, C), be->mat_new(be, R, C),
                           be->mat_new(be, R, C), be->mat_new(be, R, C), be->mat_new(be, R, Fv),
                           be->mat_new(be, R, Fv)};
    be->copy(be, t->x_in, x);
    be->layernorm(be, t->h1, x, &L->ln1_w, &L->ln1_b, eps);
    be->linear(be, t->q, t->h1, &L->q, &L->q_b, false);
    be->linear(be, t->k, t->h1, &L->k, &L->k_b, false);
    be->linear(be, t->v, t->h1, &L->v, &L->v_b, false);
    be_attn_seq *seqs = image_seqs(n_img, T);
    be->attention(be, t->att, t->q, t->k, t->v, seqs, n_img, clip_shape(v));
    free(seqs);
    be->linear(be, x, t->att, &L->o, &L->o_b, true);
    be->copy(be, t->x_mid, x);
    be->layernorm(be, t->h2, x, &L->ln2_w, &L->ln2_b, eps);
    be->linear(be, t->f_pre, t->h2, &L->fc1, &L->fc1_b, false);
    be->copy(be, t->f_act, t->f_pre);
    act_fwd(be, kind, t->f_act);
    be->linear(be, x, t->f_act, &L->fc2, &L->fc2_b, true);
}

/* Free one CLIP layer's activations. */
static void clip_layer_tape_free(be_backend *be, clip_layer_tape *t)
{
    be_mat *all[] = {&t->x_in, &t->h1, &t->q, &t->k, &t->v, &t->att, &t->x_mid, &t->h2,
                     &t->f_pre, &t->f_act};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i]->data) be->mat_free(be, all[i]);
}

/* x [n*T, C] = pre_layrnorm(embeddings(pixels)); with keep, the unfolded
 * patches and the embeddings stay in tp. */
static void clip_embed(llava_model *m, const float *pixels, int n_img, bool keep, vision_tape *tp,
                       be_mat x)
{
    be_backend *be = m->be;
    const cfg_vision *v = &m->cfg.vision;
    int P = m->n_patches, T = P + 1;
    int64_t C = v->hidden_size, K = m->vision.patch.cols;
    float *unf = xmalloc(sizeof(float) * (size_t)((int64_t)n_img * P * K));
    unfold(pixels, n_img, v->num_channels, v->image_size, v->patch_size, unf);
    be_mat patches_in = be->mat_new(be, (int64_t)n_img * P, K);       /* [n*P, K] */
    be->upload(be, patches_in, unf);
    free(unf);
    be_mat patches = be->mat_new(be, (int64_t)n_img * P, C);          /* [n*P, C] */
    be->linear(be, patches, patches_in, &m->vision.patch, NULL, false);
    be_mat x0 = be->mat_new(be, (int64_t)n_img * T, C);               /* [n*T, C] */
    for (int i = 0; i < n_img; i++) {
        be_mat img = be_rows(x0, (int64_t)i * T, T);
        be->copy(be, be_rows(img, 1, P), be_rows(patches, (int64_t)i * P, P));
        be->add_rows(be, be_rows(img, 0, 1), &m->vision.class_emb, 0);
        be->add_rows(be, img, &m->vision.pos_emb, 0);
    }
    be->mat_free(be, &patches);
    be->layernorm(be, x, x0, &m->vision.pre_ln_w, &m->vision.pre_ln_b, (float)v->layer_norm_eps);
    if (keep) {
        tp->patches_in = patches_in;
        tp->x0 = x0;
    } else {
        be->mat_free(be, &patches_in);
        be->mat_free(be, &x0);
    }
}

int vision_forward_train(llava_model *m, const float *pixels, int n_img, vision_tape *tp,
                         be_mat feats)
{
    return vision_forward_train_what(m, pixels, n_img, VISION_TRAIN_ALL, tp, feats);
}

int vision_forward_train_what(llava_model *m, const float *pixels, int n_img, int what,
                              vision_tape *tp, be_mat feats)
{
    memset(tp, 0, sizeof *tp);
    be_backend *be = m->be;
    const cfg_vision *v = &m->cfg.vision;
    int kind = act_kind(v->hidden_act), pkind = act_kind(m->cfg.projector_hidden_act);
    if (kind < 0 || pkind < 0) return -1;
    int P = m->n_patches, T = P + 1, N = m->image_tokens;
    int skip = strcmp(m->cfg.vision_feature_select_strategy, "full") == 0 ? 0 : 1;
    int64_t C = v->hidden_size, D = m->cfg.text.hidden_size;
    bool all = what == VISION_TRAIN_ALL;
    tp->n_img = n_img;
    be_mat x = be->mat_new(be, (int64_t)n_img * T, C);                /* [n*T, C] */
    clip_embed(m, pixels, n_img, all, tp, x);
    if (all) tp->layers = xcalloc((size_t)m->vision.n_layers + 1, sizeof *tp->layers);
    for (int l = 0; l < m->vision.n_layers; l++) {
        clip_layer_tape scratch, *t = all ? &tp->layers[l] : &scratch;
        clip_layer_fwd(m, &m->vision.layers[l], x, t, n_img, T, kind);
        if (!all) clip_layer_tape_free(be, t);
    }
    tp->sel = be->mat_new(be, (int64_t)n_img * N, C);
    for (int i = 0; i < n_img; i++)
        be->copy(be, be_rows(tp->sel, (int64_t)i * N, N), be_rows(x, (int64_t)i * T + skip, N));
    be->mat_free(be, &x);
    tp->mid_pre = be->mat_new(be, (int64_t)n_img * N, D);
    tp->mid_act = be->mat_new(be, (int64_t)n_img * N, D);
    be->linear(be, tp->mid_pre, tp->sel, &m->proj.l1, &m->proj.l1_b, false);
    be->copy(be, tp->mid_act, tp->mid_pre);
    act_fwd(be, pkind, tp->mid_act);
    be->linear(be, feats, tp->mid_act, &m->proj.l2, &m->proj.l2_b, false);
    return 0;
}

/* Linear backward with optional bias: dx += dy W; dW, db += ... */
static void lin_bwd(be_backend *be, be_mat dx, be_mat dy, be_mat x, const be_weight *w, be_mat dw,
                    be_mat db)
{
    if (dx.data) be->linear_dx(be, dx, dy, w);
    if (dw.data) be->linear_dw(be, dw, db, dy, x);
}

/* dx [R, C]: gradient w.r.t. the layer output in, w.r.t. its input out. */
static void clip_layer_bwd(llava_model *m, const clip_layer *L, clip_layer_tape *t, be_mat dx,
                           clip_layer_grads *g, int n_img, int T, int kind)
{
    be_backend *be = m->be;
    const cfg_vision *v = &m->cfg.vision;
    int64_t R = dx.rows, C = v->hidden_size, Fv = v->intermediate_size;
    float eps = (float)v->layer_norm_eps;
    be_mat df_act = be->mat_new(be, R, Fv), df_pre = be->mat_new(be, R, Fv),
           dh = be->mat_new(be, R, C);
    lin_bwd(be, df_act, dx, t->f_act, &L->fc2, g->fc2, g->fc2_b);
    act_bwd(be, kind, df_pre, df_act, t->f_pre);
    lin_bwd(be, dh, df_pre, t->h2, &L->fc1, g->fc1, g->fc1_b);
    be->layernorm_backward(be, dx, g->ln2_w, g->ln2_b, dh, t->x_mid, &L->ln2_w, eps);
    be->mat_free(be, &df_act);
    be->mat_free(be, &df_pre);

    be_mat datt = be->mat_new(be, R, C), dq = be->mat_new(be, R, C), dk = be->mat_new(be, R, C),
           dv = be->mat_new(be, R, C);
    lin_bwd(be, datt, dx, t->att, &L->o, g->o, g->o_b);
    be_attn_seq *seqs = image_seqs(n_img, T);
    be->attention_backward(be, dq, dk, dv, datt, t->q, t->k, t->v, seqs, n_img, clip_shape(v));
    free(seqs);
    be->scale(be, dh, 0.0f);
    lin_bwd(be, dh, dq, t->h1, &L->q, g->q, g->q_b);
    lin_bwd(be, dh, dk, t->h1, &L->k, g->k, g->k_b);
    lin_bwd(be, dh, dv, t->h1, &L->v, g->v, g->v_b);
    be->layernorm_backward(be, dx, g->ln1_w, g->ln1_b, dh, t->x_in, &L->ln1_w, eps);
    be_mat *tmp[] = {&datt, &dq, &dk, &dv, &dh};
    for (int i = 0; i < 5; i++) be->mat_free(be, tmp[i]);
}

/* CLIP's part of the backward: from dsel [n*N, C] (the selected features'
 * gradient) through the layers, pre_layrnorm and the embeddings. */
static void clip_backward(llava_model *m, vision_tape *tp, be_mat dsel, vision_grads *g, int kind)
{
    be_backend *be = m->be;
    const cfg_vision *v = &m->cfg.vision;
    int n_img = tp->n_img, P = m->n_patches, T = P + 1, N = m->image_tokens;
    int skip = strcmp(m->cfg.vision_feature_select_strategy, "full") == 0 ? 0 : 1;
    int64_t C = v->hidden_size;
    /* selected rows of the last layer's output */
    be_mat dx = be->mat_new(be, (int64_t)n_img * T, C);
    for (int i = 0; i < n_img; i++)
        be->add(be, be_rows(dx, (int64_t)i * T + skip, N), be_rows(dsel, (int64_t)i * N, N));
    for (int l = m->vision.n_layers - 1; l >= 0; l--)
        clip_layer_bwd(m, &m->vision.layers[l], &tp->layers[l], dx, &g->layers[l], n_img, T, kind);
    /* pre_layrnorm, then the embeddings: class, position, patch conv */
    be_mat dx0 = be->mat_new(be, (int64_t)n_img * T, C);
    be->layernorm_backward(be, dx0, g->pre_ln_w, g->pre_ln_b, dx, tp->x0, &m->vision.pre_ln_w,
                           (float)v->layer_norm_eps);
    be->mat_free(be, &dx);
    be_mat dpatch = be->mat_new(be, (int64_t)n_img * P, C);
    for (int i = 0; i < n_img; i++) {
        be_mat img = be_rows(dx0, (int64_t)i * T, T);
        if (g->class_emb.data) be->add(be, g->class_emb, be_rows(img, 0, 1));
        if (g->pos_emb.data) be->add(be, g->pos_emb, img);
        be->copy(be, be_rows(dpatch, (int64_t)i * P, P), be_rows(img, 1, P));
    }
    be_mat none = {0};
    if (g->patch.data) be->linear_dw(be, g->patch, none, dpatch, tp->patches_in);
    be->mat_free(be, &dpatch);
    be->mat_free(be, &dx0);
}

int vision_backward(llava_model *m, vision_tape *tp, be_mat dfeats, vision_grads *g)
{
    be_backend *be = m->be;
    const cfg_vision *v = &m->cfg.vision;
    int kind = act_kind(v->hidden_act), pkind = act_kind(m->cfg.projector_hidden_act);
    if (kind < 0 || pkind < 0) return -1;
    bool clip = g->layers != NULL;   /* CLIP gradients wanted */
    if (clip && !tp->layers)
        return ERR("vision_backward: CLIP gradients wanted but the forward kept only the "
                   "projector's activations");
    int n_img = tp->n_img, N = m->image_tokens;
    int64_t C = v->hidden_size, D = m->cfg.text.hidden_size;
    /* projector; dsel [n*N, C] only when the backward goes on into CLIP */
    be_mat dact = be->mat_new(be, (int64_t)n_img * N, D), dpre = be->mat_new(be, (int64_t)n_img * N, D),
           dsel = {0};
    if (clip) dsel = be->mat_new(be, (int64_t)n_img * N, C);
    lin_bwd(be, dact, dfeats, tp->mid_act, &m->proj.l2, g->l2, g->l2_b);
    act_bwd(be, pkind, dpre, dact, tp->mid_pre);
    lin_bwd(be, dsel, dpre, tp->sel, &m->proj.l1, g->l1, g->l1_b);
    be->mat_free(be, &dact);
    be->mat_free(be, &dpre);
    if (clip) {
        clip_backward(m, tp, dsel, g, kind);
        be->mat_free(be, &dsel);
    }
    return 0;
}

void vision_tape_free(llava_model *m, vision_tape *tp)
{
    be_backend *be = m->be;
    for (int l = 0; tp->layers && l < m->vision.n_layers; l++) clip_layer_tape_free(be, &tp->layers[l]);
    free(tp->layers);
    be_mat *rest[] = {&tp->patches_in, &tp->x0, &tp->sel, &tp->mid_pre, &tp->mid_act};
    for (int i = 0; i < 5; i++)
        if (rest[i]->data) be->mat_free(be, rest[i]);
    memset(tp, 0, sizeof *tp);
}

static be_mat like(be_backend *be, const be_weight *w) { return be->mat_new(be, w->rows, w->cols); }

/* The matrices of g paired with their weights, in a fixed order. */
static int vision_pairs(llava_model *m, vision_grads *g, be_mat **gs, const be_weight **ws)
{
    int n = 0;
#define PAIR(G, W) (gs[n] = &(G), ws[n] = &(W), n++)
    PAIR(g->patch, m->vision.patch);
    PAIR(g->class_emb, m->vision.class_emb);
    PAIR(g->pos_emb, m->vision.pos_emb);
    PAIR(g->pre_ln_w, m->vision.pre_ln_w);
    PAIR(g->pre_ln_b, m->vision.pre_ln_b);
    PAIR(g->l1, m->proj.l1);
    PAIR(g->l1_b, m->proj.l1_b);
    PAIR(g->l2, m->proj.l2);
    PAIR(g->l2_b, m->proj.l2_b);
    for (int l = 0; l < g->n_layers; l++) {
        clip_layer_grads *lg = &g->layers[l];
        const clip_layer *L = &m->vision.layers[l];
        PAIR(lg->ln1_w, L->ln1_w); PAIR(lg->ln1_b, L->ln1_b);
        PAIR(lg->ln2_w, L->ln2_w); PAIR(lg->ln2_b, L->ln2_b);
        PAIR(lg->q, L->q); PAIR(lg->k, L->k); PAIR(lg->v, L->v); PAIR(lg->o, L->o);
        PAIR(lg->q_b, L->q_b); PAIR(lg->k_b, L->k_b); PAIR(lg->v_b, L->v_b); PAIR(lg->o_b, L->o_b);
        PAIR(lg->fc1, L->fc1); PAIR(lg->fc1_b, L->fc1_b);
        PAIR(lg->fc2, L->fc2); PAIR(lg->fc2_b, L->fc2_b);
    }
#undef PAIR
    return n;
}

/* All (weights of) g's pairs in malloc'd arrays; count returned. */
static int all_pairs(llava_model *m, vision_grads *g, be_mat ***gs, const be_weight ***ws)
{
    int cap = 9 + 16 * g->n_layers;
    *gs = xmalloc(sizeof **gs * (size_t)cap);
    *ws = xmalloc(sizeof **ws * (size_t)cap);
    return vision_pairs(m, g, *gs, *ws);
}

void vision_grads_new(llava_model *m, vision_grads *g)
{
    memset(g, 0, sizeof *g);
    g->n_layers = m->vision.n_layers;
    g->layers = xcalloc((size_t)g->n_layers + 1, sizeof *g->layers);
    be_mat **gs;
    const be_weight **ws;
    int n = all_pairs(m, g, &gs, &ws);
    for (int i = 0; i < n; i++) *gs[i] = like(m->be, ws[i]);
    free(gs);
    free(ws);
}

void vision_grads_new_projector(llava_model *m, vision_grads *g)
{
    memset(g, 0, sizeof *g);
    g->l1 = like(m->be, &m->proj.l1);
    g->l1_b = like(m->be, &m->proj.l1_b);
    g->l2 = like(m->be, &m->proj.l2);
    g->l2_b = like(m->be, &m->proj.l2_b);
}

void vision_grads_zero(llava_model *m, vision_grads *g)
{
    be_mat **gs;
    const be_weight **ws;
    int n = all_pairs(m, g, &gs, &ws);
    for (int i = 0; i < n; i++)
        if (gs[i]->data) m->be->scale(m->be, *gs[i], 0.0f);
    free(gs);
    free(ws);
}

int vision_grad_weights(llava_model *m, vision_grads *g, be_mat **grads, be_weight **weights,
                        int cap)
{
    be_mat **gs;
    const be_weight **ws;
    int n = all_pairs(m, g, &gs, &ws), k = 0;
    for (int i = 0; i < n && k < cap; i++)
        if (gs[i]->data) {
            grads[k] = gs[i];
            weights[k++] = (be_weight *)ws[i];
        }
    free(gs);
    free(ws);
    return k;
}

void vision_grads_free(llava_model *m, vision_grads *g)
{
    be_mat **gs;
    const be_weight **ws;
    int n = all_pairs(m, g, &gs, &ws);
    for (int i = 0; i < n; i++)
        if (gs[i]->data) m->be->mat_free(m->be, gs[i]);
    free(gs);
    free(ws);
    free(g->layers);
    memset(g, 0, sizeof *g);
}
