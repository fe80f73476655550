/* clip.c — model layer: the CLIP vision tower and the LLaVA projector. */
#include "err.h"
#include "llava.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Unfold pixels [n_img, ch, S, S] into patch vectors [n_img * P, ch*p*p] in
 * the (c, y, x) order of the conv kernel, so the patch conv is one linear. */
static float *unfold_patches(const float *pixels, int n_img, int ch, int S, int p)
{
    int side = S / p, P = side * side, K = ch * p * p;
    float *out = xmalloc(sizeof(float) * (size_t)n_img * P * K);
    for (int i = 0; i < n_img; i++)
        for (int py = 0; py < side; py++)
            for (int px = 0; px < side; px++) {
                float *dst = out + ((size_t)i * P + (size_t)py * side + px) * K;
                for (int c = 0; c < ch; c++)
                    for (int ky = 0; ky < p; ky++) {
                        const float *src = pixels + (((size_t)i * ch + c) * S + (size_t)py * p + ky) * S +
                                           (size_t)px * p;
                        memcpy(dst + (c * p + ky) * p, src, sizeof(float) * p);
                    }
            }
    return out;
}

static int apply_act(be_backend *be, const char *act, be_mat x)
{
    if (!strcmp(act, "quick_gelu"))
        be->quick_gelu(be, x);
    else if (!strcmp(act, "gelu"))
        be->gelu_erf(be, x);
    else
        return ERR("activation \"%s\" is not supported", act);
    return 0;
}

/* One pre-LN encoder layer on x [n_img * T, C], T = P + 1 rows per image. */
static int clip_layer_forward(llava_model *m, const clip_layer *L, be_mat x, int n_img, int T)
{
    be_backend *be = m->be;
    const cfg_vision *v = &m->cfg.vision;
    int64_t R = x.rows, C = v->hidden_size;
    float eps = (float)v->layer_norm_eps;
    be_mat h = be->mat_new(be, R, C), q = be->mat_new(be, R, C), k = be->mat_new(be, R, C),
           val = be->mat_new(be, R, C), att = be->mat_new(be, R, C),
           f = be->mat_new(be, R, v->intermediate_size);
    be->layernorm(be, h, x, &L->ln1_w, &L->ln1_b, eps);
    be->linear(be, q, h, &L->q, &L->q_b, false);
    be->linear(be, k, h, &L->k, &L->k_b, false);
    be->linear(be, val, h, &L->v, &L->v_b, false);
    be_attn_seq *seqs = xcalloc((size_t)n_img, sizeof *seqs);
    for (int i = 0; i < n_img; i++) {
        seqs[i].q_row0 = (int64_t)i * T;
        seqs[i].n_new = T;
    }
    be_attn_shape sh = {v->num_attention_heads, v->num_attention_heads, v->head_dim, false,
                        1.0f / sqrtf((float)v->head_dim)};
    be->attention(be, att, q, k, val, seqs, n_img, sh);
    free(seqs);
    be->linear(be, x, att, &L->o, &L->o_b, true);          /* x += attn . Wo^T + b */
    be->layernorm(be, h, x, &L->ln2_w, &L->ln2_b, eps);
    be->linear(be, f, h, &L->fc1, &L->fc1_b, false);
    int rc = apply_act(be, v->hidden_act, f);
    if (rc == 0) be->linear(be, x, f, &L->fc2, &L->fc2_b, true); /* x += mlp(h) */
    be_mat *tmp[] = {&h, &q, &k, &val, &att, &f};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) be->mat_free(be, tmp[i]);
    return rc;
}

int clip_forward(llava_model *m, const float *pixels, int n_img, be_mat out, be_mat *emb_out)
{
    be_backend *be = m->be;
    const cfg_vision *v = &m->cfg.vision;
    int P = m->n_patches, T = P + 1;
    int64_t C = v->hidden_size;
    if (out.rows != (int64_t)n_img * T || out.cols != C)
        return ERR("clip_forward: output is [%lld, %lld], expected [%lld, %lld]",
                   (long long)out.rows, (long long)out.cols, (long long)n_img * T, (long long)C);
    /* patch embeddings [n_img * P, C] */
    float *unfolded = unfold_patches(pixels, n_img, v->num_channels, v->image_size, v->patch_size);
    be_mat patches_in = be->mat_new(be, (int64_t)n_img * P, m->vision.patch.cols);
    be->upload(be, patches_in, unfolded);
    free(unfolded);
    be_mat patches = be->mat_new(be, (int64_t)n_img * P, C);
    be->linear(be, patches, patches_in, &m->vision.patch, NULL, false);
    be->mat_free(be, &patches_in);

    /* x [n_img * T, C]: CLS + patches, plus position embeddings */
    be_mat x = be->mat_new(be, (int64_t)n_img * T, C);
    for (int i = 0; i < n_img; i++) {
        be_mat img = be_rows(x, (int64_t)i * T, T);
        be->copy(be, be_rows(img, 1, P), be_rows(patches, (int64_t)i * P, P));
        be->add_rows(be, be_rows(img, 0, 1), &m->vision.class_emb, 0);
        be->add_rows(be, img, &m->vision.pos_emb, 0);
    }
    be->mat_free(be, &patches);
    be->layernorm(be, out, x, &m->vision.pre_ln_w, &m->vision.pre_ln_b, (float)v->layer_norm_eps);
    be->mat_free(be, &x);
    if (emb_out) be->copy(be, *emb_out, out);

    for (int l = 0; l < m->vision.n_layers; l++)
        if (clip_layer_forward(m, &m->vision.layers[l], out, n_img, T) != 0) return -1;
    return 0;
}

int llava_image_features(llava_model *m, const float *pixels, int n_img, be_mat out)
{
    be_backend *be = m->be;
    int P = m->n_patches, T = P + 1, N = m->image_tokens;
    int64_t C = m->cfg.vision.hidden_size, D = m->cfg.text.hidden_size;
    if (out.rows != (int64_t)n_img * N || out.cols != D)
        return ERR("llava_image_features: output is [%lld, %lld], expected [%lld, %lld]",
                   (long long)out.rows, (long long)out.cols, (long long)n_img * N, (long long)D);
    be_mat hs = be->mat_new(be, (int64_t)n_img * T, C);
    int rc = clip_forward(m, pixels, n_img, hs, NULL);
    /* select: "default" drops CLS (row 0 of each image), "full" keeps it */
    int skip = strcmp(m->cfg.vision_feature_select_strategy, "full") == 0 ? 0 : 1;
    be_mat sel = be->mat_new(be, (int64_t)n_img * N, C);
    for (int i = 0; rc == 0 && i < n_img; i++)
        be->copy(be, be_rows(sel, (int64_t)i * N, N), be_rows(hs, (int64_t)i * T + skip, N));
    be->mat_free(be, &hs);
    if (rc == 0) {
        be_mat mid = be->mat_new(be, (int64_t)n_img * N, D);
        be->linear(be, mid, sel, &m->proj.l1, &m->proj.l1_b, false);
        rc = apply_act(be, m->cfg.projector_hidden_act, mid);
        if (rc == 0) be->linear(be, out, mid, &m->proj.l2, &m->proj.l2_b, false);
        be->mat_free(be, &mid);
    }
    be->mat_free(be, &sel);
    return rc;
}
