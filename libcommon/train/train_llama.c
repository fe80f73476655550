/* train_llama.c — training layer: LLaMA training forward and backward.
 * Mirrors model/llama.c op by op; the backward walks the same ops in reverse
 * with the backend's backward operations. */
#include "train_llama.h"
#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static be_attn_shape llama_attn_shape(const cfg_text *t)
{
    be_attn_shape sh = {t->num_attention_heads, t->num_key_value_heads, t->head_dim, true,
                        1.0f / sqrtf((float)t->head_dim)};
    return sh;
}

/* Rows of image tokens that take image features (in the order they do),
 * positions, and each sequence's attention view (with its shared prefix). */
static void tape_index_rows(llava_model *m, const llama_batch *b, const llama_prefix *pre,
                            llama_tape *tp)
{
    int32_t img = m->cfg.image_token_index;
    tp->embed_ids = xmalloc(sizeof(int32_t) * (size_t)b->n_rows);
    tp->pos = xmalloc(sizeof(int32_t) * (size_t)b->n_rows);
    tp->image_rows = xmalloc(sizeof(int64_t) * (size_t)(b->n_rows ? b->n_rows : 1));
    tp->n_image_rows = 0;
    tp->aseq = xcalloc((size_t)b->n_seqs, sizeof *tp->aseq);
    tp->n_seqs = b->n_seqs;
    for (int s = 0; s < b->n_seqs; s++) {
        const llama_seq *sq = &b->seqs[s];
        int64_t n_pre = pre ? pre[s].n_pre : 0;
        tp->aseq[s].q_row0 = sq->row0;
        tp->aseq[s].n_new = sq->n_new;
        tp->aseq[s].n_pre = n_pre;
        tp->aseq[s].pre_row0 = n_pre > 0 ? b->seqs[pre[s].of].row0 : 0;
        for (int64_t j = 0; j < sq->n_new; j++) {
            int64_t r = sq->row0 + j;
            bool is_img = sq->with_image && b->ids[r] == img;
            tp->pos[r] = (int32_t)(n_pre + j);
            tp->embed_ids[r] = is_img ? -1 : b->ids[r];
            if (is_img) tp->image_rows[tp->n_image_rows++] = r;
        }
    }
}

static int check_train_batch(llava_model *m, const llama_batch *b)
{
    int64_t next = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        if (b->seqs[s].kv) return ERR("llama_forward_train: sequence %d has a KV cache", s);
        if (b->seqs[s].row0 != next || b->seqs[s].n_new < 1)
            return ERR("llama_forward_train: sequence %d does not follow the previous one", s);
        next += b->seqs[s].n_new;
    }
    if (next != b->n_rows)
        return ERR("llama_forward_train: sequences cover %lld of %lld rows", (long long)next,
                   (long long)b->n_rows);
    for (int64_t r = 0; r < b->n_rows; r++)
        if (b->ids[r] < 0 || b->ids[r] >= m->cfg.text.vocab_size)
            return ERR("token id %d at row %lld is outside the vocabulary", b->ids[r], (long long)r);
    return 0;
}

/* A prefix continues the leading rows of an earlier sequence that has none. */
static int check_prefixes(const llama_batch *b, const llama_prefix *pre)
{
    for (int s = 0; pre && s < b->n_seqs; s++) {
        if (pre[s].n_pre == 0) continue;
        int of = pre[s].of;
        if (pre[s].n_pre < 0 || of < 0 || of >= s)
            return ERR("llama_forward_train: sequence %d's prefix names sequence %d", s, of);
        if (pre[of].n_pre != 0 || pre[s].n_pre > b->seqs[of].n_new)
            return ERR("llama_forward_train: sequence %d's prefix of %lld rows is not the start of "
                       "sequence %d", s, (long long)pre[s].n_pre, of);
    }
    return 0;
}

static void layer_tape_new(llava_model *m, int64_t R, llama_layer_tape *lt)
{
    be_backend *be = m->be;
    const cfg_text *t = &m->cfg.text;
    int64_t D = t->hidden_size, F = t->intermediate_size;
    int64_t qw = (int64_t)t->num_attention_heads * t->head_dim;
    int64_t kw = (int64_t)t->num_key_value_heads * t->head_dim;
    *lt = (llama_layer_tape){be->mat_new(be, R, D),  be->mat_new(be, R, D),
                             be->mat_new(be, R, qw), be->mat_new(be, R, kw),
                             be->mat_new(be, R, kw), be->mat_new(be, R, qw),
                             be->mat_new(be, R, D),  be->mat_new(be, R, D),
                             be->mat_new(be, R, F),  be->mat_new(be, R, F),
                             be->mat_new(be, R, F)};
}

/* splitmix64's finaliser: a well-mixed 64-bit hash. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* y = dropout(x) with the tape's per-row masks for (layer, which): kept
 * elements scaled by 1 / (1 - p). y may be x. */
static void dropout_apply(be_backend *be, be_mat y, be_mat x, const llama_tape *tp, int layer,
                          llama_linear_id which)
{
    int64_t R = x.rows, C = x.cols;
    float *h = xmalloc(sizeof(float) * (size_t)(R * C));
    be->download(be, x, h);
    for (int64_t r = 0; r < R; r++) {
        float p = tp->drop_p[r];
        if (p <= 0) continue;
        float keep_scale = 1.0f / (1.0f - p);
        uint64_t base = mix64(mix64(mix64(tp->drop_seed[r] ^ ((uint64_t)layer << 32)) ^
                                    (uint64_t)which) ^ (uint64_t)tp->pos[r]);
        float *row = h + r * C;
        for (int64_t c = 0; c < C; c++) {
            double u = (double)(mix64(base + (uint64_t)c) >> 11) * 0x1.0p-53;
            row[c] = u < p ? 0.0f : row[c] * keep_scale;
        }
    }
    be->upload(be, y, h);
    free(h);
}

static bool dropout_on(const llama_tape *tp) { return tp->drop_p != NULL; }

static void linear_fwd(llava_model *m, int layer, llama_linear_id which, be_mat y, be_mat x,
                       bool accumulate, const llama_tape *tp)
{
    be_backend *be = m->be;
    be->linear(be, y, x, llama_layer_weight(&m->lm.layers[layer], which), NULL, accumulate);
    const llama_layer_lora *ad = llama_active_lora(m, layer);
    if (!ad || !ad->t[which].A.data) return;
    if (!dropout_on(tp)) {
        lora_term_apply(be, y, x, &ad->t[which]);
        return;
    }
    be_mat xd = be->mat_new(be, x.rows, x.cols);
    dropout_apply(be, xd, x, tp, layer, which);
    lora_term_apply(be, y, xd, &ad->t[which]);
    be->mat_free(be, &xd);
}

/* One layer; h [R, D] is updated in place (the residual stream). */
static void layer_forward_train(llava_model *m, int l, be_mat h, llama_layer_tape *lt,
                                const llama_tape *tp)
{
    be_backend *be = m->be;
    const cfg_text *t = &m->cfg.text;
    const llama_layer *L = &m->lm.layers[l];
    float eps = (float)t->rms_norm_eps;
    be->copy(be, lt->h_in, h);
    be->rmsnorm(be, lt->xn1, h, &L->attn_norm, eps);
    linear_fwd(m, l, LL_Q, lt->q, lt->xn1, false, tp);
    linear_fwd(m, l, LL_K, lt->k, lt->xn1, false, tp);
    linear_fwd(m, l, LL_V, lt->v, lt->xn1, false, tp);
    be->rope(be, lt->q, t->num_attention_heads, t->head_dim, tp->pos, t->rope_theta);
    be->rope(be, lt->k, t->num_key_value_heads, t->head_dim, tp->pos, t->rope_theta);
    be->attention(be, lt->att, lt->q, lt->k, lt->v, tp->aseq, tp->n_seqs, llama_attn_shape(t));
    linear_fwd(m, l, LL_O, h, lt->att, true, tp);
    be->copy(be, lt->h_mid, h);
    be->rmsnorm(be, lt->xn2, h, &L->mlp_norm, eps);
    linear_fwd(m, l, LL_GATE, lt->gate, lt->xn2, false, tp);
    linear_fwd(m, l, LL_UP, lt->up, lt->xn2, false, tp);
    be->silu_mul(be, lt->act, lt->gate, lt->up);
    linear_fwd(m, l, LL_DOWN, h, lt->act, true, tp);
}

/* Keep the rows' dropout settings when any row drops. */
static void tape_dropout(const llama_dropout *d, int64_t R, llama_tape *tp)
{
    bool any = false;
    for (int64_t r = 0; d && r < R; r++) any |= d->p[r] > 0;
    if (!any) return;
    tp->drop_p = xmalloc(sizeof(float) * (size_t)R);
    tp->drop_seed = xmalloc(sizeof(uint64_t) * (size_t)R);
    memcpy(tp->drop_p, d->p, sizeof(float) * (size_t)R);
    memcpy(tp->drop_seed, d->seed, sizeof(uint64_t) * (size_t)R);
}

int llama_forward_train(llava_model *m, const llama_batch *b, llama_tape *tp, be_mat hidden)
{
    return llama_forward_train_dropout(m, b, NULL, tp, hidden);
}

int llama_forward_train_dropout(llava_model *m, const llama_batch *b, const llama_dropout *drop,
                                llama_tape *tp, be_mat hidden)
{
    llama_train_opts o = {drop, NULL, true};
    return llama_forward_train_ex(m, b, &o, tp, hidden);
}

int llama_forward_train_ex(llava_model *m, const llama_batch *b, const llama_train_opts *o,
                           llama_tape *tape, be_mat hidden)
{
    llama_tape local;
    llama_tape *tp = o->keep ? tape : &local;
    const llama_dropout *drop = o->drop;
    memset(tp, 0, sizeof *tp);
    if (check_train_batch(m, b) != 0 || check_prefixes(b, o->prefix) != 0) return -1;
    if (drop)
        for (int64_t r = 0; r < b->n_rows; r++)
            if (!(drop->p[r] >= 0 && drop->p[r] < 1))
                return ERR("LoRA dropout %g at row %lld: expected [0, 1)", drop->p[r], (long long)r);
    be_backend *be = m->be;
    int64_t R = b->n_rows, D = m->cfg.text.hidden_size;
    tape_index_rows(m, b, o->prefix, tp);
    tape_dropout(drop, R, tp);
    tp->n_rows = R;
    if (tp->n_image_rows != b->image_features.rows) {
        int64_t n = tp->n_image_rows;
        llama_tape_free(m, tp);
        return ERR("the batch has %lld image tokens but %lld image features were given",
                   (long long)n, (long long)b->image_features.rows);
    }
    be_mat h = be->mat_new(be, R, D);
    be->embed(be, h, &m->lm.embed, b->ids);
    for (int64_t f = 0; f < tp->n_image_rows; f++)
        be->copy(be, be_rows(h, tp->image_rows[f], 1), be_rows(b->image_features, f, 1));
    /* without keeping, every layer reuses the first layer's scratch */
    int n_tape = o->keep ? m->lm.n_layers : 1;
    tp->layers = xcalloc((size_t)m->lm.n_layers, sizeof *tp->layers);
    for (int l = 0; l < n_tape; l++) layer_tape_new(m, R, &tp->layers[l]);
    for (int l = 0; l < m->lm.n_layers; l++)
        layer_forward_train(m, l, h, &tp->layers[o->keep ? l : 0], tp);
    tp->h_last = h;
    be->rmsnorm(be, hidden, h, &m->lm.norm, (float)m->cfg.text.rms_norm_eps);
    if (!o->keep) llama_tape_free(m, tp);
    return 0;
}

/* Backward of y = x W^T (+ LoRA): dx += dy W (+ LoRA), and the wanted
 * weight, A and B gradients. With t = x A^T and u = s dy B:
 * dB += s dy^T t, dA += u^T x, dx += u A. */
static void linear_bwd(llava_model *m, int layer, llama_linear_id which, be_mat dx, be_mat dy,
                       be_mat x, llama_layer_grads *g, const llama_tape *tp)
{
    be_backend *be = m->be;
    be_mat none = {0};
    be->linear_dx(be, dx, dy, llama_layer_weight(&m->lm.layers[layer], which));
    if (g && g->w[which].data) be->linear_dw(be, g->w[which], none, dy, x);
    const llama_layer_lora *ad = llama_active_lora(m, layer);
    const lora_term *t = ad ? &ad->t[which] : NULL;
    if (!t || !t->A.data) return;
    int64_t r = t->A.rows;
    /* with dropout, the term saw xd = dropout(x): its gradients use xd, and
     * its dx passes back through the same mask */
    be_mat xd = x, dxd = dx;
    if (dropout_on(tp)) {
        xd = be->mat_new(be, x.rows, x.cols);
        dropout_apply(be, xd, x, tp, layer, which);
        dxd = be->mat_new(be, dx.rows, dx.cols);
    }
    x = xd;
    if (g && g->lora_B[which].data) {
        be_mat xa = be->mat_new(be, x.rows, r);
        be->linear(be, xa, x, &t->A, NULL, false);
        be->scale(be, xa, t->scale);
        be->linear_dw(be, g->lora_B[which], none, dy, xa);
        be->mat_free(be, &xa);
    }
    be_mat u = be->mat_new(be, dy.rows, r);
    be->linear_dx(be, u, dy, &t->B);
    be->scale(be, u, t->scale);
    if (g && g->lora_A[which].data) be->linear_dw(be, g->lora_A[which], none, u, x);
    be->linear_dx(be, dxd, u, &t->A);
    be->mat_free(be, &u);
    if (dropout_on(tp)) {
        dropout_apply(be, dxd, dxd, tp, layer, which);
        be->add(be, dx, dxd);
        be->mat_free(be, &xd);
        be->mat_free(be, &dxd);
    }
}

/* dh [R, D]: on entry the gradient w.r.t. the layer's output, on return
 * w.r.t. its input (the residual passes it through; the branches add). */
static void layer_backward(llava_model *m, int l, be_mat dh, llama_layer_tape *lt,
                           const llama_tape *tp, llama_layer_grads *g)
{
    be_backend *be = m->be;
    const cfg_text *t = &m->cfg.text;
    const llama_layer *L = &m->lm.layers[l];
    float eps = (float)t->rms_norm_eps;
    int64_t R = tp->n_rows, D = t->hidden_size, F = t->intermediate_size;
    int64_t qw = (int64_t)t->num_attention_heads * t->head_dim;
    int64_t kw = (int64_t)t->num_key_value_heads * t->head_dim;
    be_mat none = {0};

    /* MLP branch: h += down(silu(gate(xn2)) * up(xn2)), xn2 = rmsnorm(h_mid) */
    be_mat dact = be->mat_new(be, R, F), dgate = be->mat_new(be, R, F),
           dup = be->mat_new(be, R, F), dxn = be->mat_new(be, R, D);
    linear_bwd(m, l, LL_DOWN, dact, dh, lt->act, g, tp);
    be->silu_mul_backward(be, dgate, dup, dact, lt->gate, lt->up);
    linear_bwd(m, l, LL_GATE, dxn, dgate, lt->xn2, g, tp);
    linear_bwd(m, l, LL_UP, dxn, dup, lt->xn2, g, tp);
    be->rmsnorm_backward(be, dh, g ? g->mlp_norm : none, dxn, lt->h_mid, &L->mlp_norm, eps);
    be_mat *mlp[] = {&dact, &dgate, &dup};
    for (int i = 0; i < 3; i++) be->mat_free(be, mlp[i]);

    /* attention branch: h += o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1))) */
    be_mat datt = be->mat_new(be, R, qw), dq = be->mat_new(be, R, qw),
           dk = be->mat_new(be, R, kw), dv = be->mat_new(be, R, kw);
    linear_bwd(m, l, LL_O, datt, dh, lt->att, g, tp);
    be->attention_backward(be, dq, dk, dv, datt, lt->q, lt->k, lt->v, tp->aseq, tp->n_seqs,
                           llama_attn_shape(t));
    be->rope_backward(be, dq, t->num_attention_heads, t->head_dim, tp->pos, t->rope_theta);
    be->rope_backward(be, dk, t->num_key_value_heads, t->head_dim, tp->pos, t->rope_theta);
    be->scale(be, dxn, 0.0f);
    linear_bwd(m, l, LL_Q, dxn, dq, lt->xn1, g, tp);
    linear_bwd(m, l, LL_K, dxn, dk, lt->xn1, g, tp);
    linear_bwd(m, l, LL_V, dxn, dv, lt->xn1, g, tp);
    be->rmsnorm_backward(be, dh, g ? g->attn_norm : none, dxn, lt->h_in, &L->attn_norm, eps);
    be_mat *att[] = {&datt, &dq, &dk, &dv, &dxn};
    for (int i = 0; i < 5; i++) be->mat_free(be, att[i]);
}

void llama_backward(llava_model *m, llama_tape *tp, be_mat dhidden, llama_grads *g,
                    be_mat dimage)
{
    be_backend *be = m->be;
    int64_t R = tp->n_rows, D = m->cfg.text.hidden_size;
    be_mat dh = be->mat_new(be, R, D);
    be_mat none = {0};
    be->rmsnorm_backward(be, dh, g ? g->norm : none, dhidden, tp->h_last, &m->lm.norm,
                         (float)m->cfg.text.rms_norm_eps);
    for (int l = m->lm.n_layers - 1; l >= 0; l--)
        layer_backward(m, l, dh, &tp->layers[l], tp, g ? &g->layers[l] : NULL);
    if (g && g->embed.data) be->embed_backward(be, g->embed, dh, tp->embed_ids);
    if (dimage.data)
        for (int64_t f = 0; f < tp->n_image_rows; f++)
            be->add(be, be_rows(dimage, f, 1), be_rows(dh, tp->image_rows[f], 1));
    be->mat_free(be, &dh);
}

void llama_tape_free(llava_model *m, llama_tape *tp)
{
    be_backend *be = m->be;
    for (int l = 0; tp->layers && l < m->lm.n_layers; l++) {
        llama_layer_tape *lt = &tp->layers[l];
        be_mat *all[] = {&lt->h_in, &lt->xn1, &lt->q,   &lt->k,  &lt->v,  &lt->att,
                         &lt->h_mid, &lt->xn2, &lt->gate, &lt->up, &lt->act};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) be->mat_free(be, all[i]);
    }
    if (tp->h_last.data) be->mat_free(be, &tp->h_last);
    free(tp->layers);
    free(tp->embed_ids);
    free(tp->pos);
    free(tp->image_rows);
    free(tp->aseq);
    free(tp->drop_p);
    free(tp->drop_seed);
    memset(tp, 0, sizeof *tp);
}

static be_mat mat_like(be_backend *be, const be_weight *w)
{
    return be->mat_new(be, w->rows, w->cols);
}

void llama_grads_new(llava_model *m, int what, llama_grads *g)
{
    be_backend *be = m->be;
    memset(g, 0, sizeof *g);
    g->n_layers = m->lm.n_layers;
    g->layers = xcalloc((size_t)g->n_layers, sizeof *g->layers);
    if (what & LLAMA_GRAD_WEIGHTS) {
        g->embed = mat_like(be, &m->lm.embed);
        g->norm = mat_like(be, &m->lm.norm);
        g->lm_head = mat_like(be, &m->lm.lm_head);
    }
    for (int l = 0; l < g->n_layers; l++) {
        const llama_layer *L = &m->lm.layers[l];
        llama_layer_grads *lg = &g->layers[l];
        if (what & LLAMA_GRAD_WEIGHTS) {
            lg->attn_norm = mat_like(be, &L->attn_norm);
            lg->mlp_norm = mat_like(be, &L->mlp_norm);
            for (int i = 0; i < LL_N_LINEAR; i++) lg->w[i] = mat_like(be, llama_layer_weight(L, i));
        }
        if (!(what & LLAMA_GRAD_LORA) || !m->lm.lora) continue;
        for (int i = 0; i < LL_N_LINEAR; i++) {
            const lora_term *t = &m->lm.lora[l].t[i];
            if (!t->A.data) continue;
            lg->lora_A[i] = mat_like(be, &t->A);
            lg->lora_B[i] = mat_like(be, &t->B);
        }
    }
}

/* Every matrix of g, in a fixed order: the callback sees each one. */
static void grads_each(llama_grads *g, void (*fn)(be_backend *, be_mat *, float), be_backend *be,
                       float arg)
{
    be_mat *top[] = {&g->embed, &g->norm, &g->lm_head};
    for (int i = 0; i < 3; i++)
        if (top[i]->data) fn(be, top[i], arg);
    for (int l = 0; l < g->n_layers; l++) {
        llama_layer_grads *lg = &g->layers[l];
        if (lg->attn_norm.data) fn(be, &lg->attn_norm, arg);
        if (lg->mlp_norm.data) fn(be, &lg->mlp_norm, arg);
        for (int i = 0; i < LL_N_LINEAR; i++) {
            be_mat *ms[] = {&lg->w[i], &lg->lora_A[i], &lg->lora_B[i]};
            for (int j = 0; j < 3; j++)
                if (ms[j]->data) fn(be, ms[j], arg);
        }
    }
}

static void zero_one(be_backend *be, be_mat *x, float unused)
{
    (void)unused;
    be->scale(be, *x, 0.0f);
}

static void free_one(be_backend *be, be_mat *x, float unused)
{
    (void)unused;
    be->mat_free(be, x);
}

void llama_grads_zero(llava_model *m, llama_grads *g) { grads_each(g, zero_one, m->be, 0); }

void llama_grads_free(llava_model *m, llama_grads *g)
{
    if (!g->layers) return;
    grads_each(g, free_one, m->be, 0);
    free(g->layers);
    memset(g, 0, sizeof *g);
}
