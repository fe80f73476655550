/* train_names.c — training layer: gradients by hub tensor name. */
#include "train_names.h"
#include "weights.h"

#include <stdio.h>
#include <string.h>

static be_mat *wanted(be_mat *g) { return g && g->data ? g : NULL; }

static be_mat *llama_by_suffix(llama_grads *lg, int layer, const char *rest)
{
    static const char *const lin[LL_N_LINEAR] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                                 "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                                 "mlp.gate_proj.weight",    "mlp.up_proj.weight",
                                                 "mlp.down_proj.weight"};
    if (layer < 0 || layer >= lg->n_layers) return NULL;
    llama_layer_grads *g = &lg->layers[layer];
    if (!strcmp(rest, "input_layernorm.weight")) return wanted(&g->attn_norm);
    if (!strcmp(rest, "post_attention_layernorm.weight")) return wanted(&g->mlp_norm);
    for (int i = 0; i < LL_N_LINEAR; i++)
        if (!strcmp(rest, lin[i])) return wanted(&g->w[i]);
    return NULL;
}

static be_mat *clip_by_suffix(vision_grads *vg, int layer, const char *rest)
{
    if (layer < 0 || layer >= vg->n_layers) return NULL;
    clip_layer_grads *g = &vg->layers[layer];
    struct { const char *name; be_mat *m; } t[] = {
        {"layer_norm1.weight", &g->ln1_w}, {"layer_norm1.bias", &g->ln1_b},
        {"layer_norm2.weight", &g->ln2_w}, {"layer_norm2.bias", &g->ln2_b},
        {"self_attn.q_proj.weight", &g->q}, {"self_attn.q_proj.bias", &g->q_b},
        {"self_attn.k_proj.weight", &g->k}, {"self_attn.k_proj.bias", &g->k_b},
        {"self_attn.v_proj.weight", &g->v}, {"self_attn.v_proj.bias", &g->v_b},
        {"self_attn.out_proj.weight", &g->o}, {"self_attn.out_proj.bias", &g->o_b},
        {"mlp.fc1.weight", &g->fc1}, {"mlp.fc1.bias", &g->fc1_b},
        {"mlp.fc2.weight", &g->fc2}, {"mlp.fc2.bias", &g->fc2_b}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(rest, t[i].name)) return wanted(t[i].m);
    return NULL;
}

static be_mat *vision_by_name(vision_grads *vg, const char *n)
{
    struct { const char *name; be_mat *m; } t[] = {
        {"vision_tower.vision_model.embeddings.patch_embedding.weight", &vg->patch},
        {"vision_tower.vision_model.embeddings.class_embedding", &vg->class_emb},
        {"vision_tower.vision_model.embeddings.position_embedding.weight", &vg->pos_emb},
        {"vision_tower.vision_model.pre_layrnorm.weight", &vg->pre_ln_w},
        {"vision_tower.vision_model.pre_layrnorm.bias", &vg->pre_ln_b},
        {"multi_modal_projector.linear_1.weight", &vg->l1},
        {"multi_modal_projector.linear_1.bias", &vg->l1_b},
        {"multi_modal_projector.linear_2.weight", &vg->l2},
        {"multi_modal_projector.linear_2.bias", &vg->l2_b}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(n, t[i].name)) return wanted(t[i].m);
    int layer, off = 0;
    if (sscanf(n, "vision_tower.vision_model.encoder.layers.%d.%n", &layer, &off) == 1 && off > 0)
        return clip_by_suffix(vg, layer, n + off);
    return NULL;
}

be_mat *train_grad_by_name(llava_model *m, llama_grads *lg, vision_grads *vg, const char *name)
{
    (void)m;
    char buf[512];
    const char *n = wt_canonical(name, buf, sizeof buf);
    if (!n) return NULL;
    if (vg && (!strncmp(n, "vision_tower.", 13) || !strncmp(n, "multi_modal_projector.", 22)))
        return vision_by_name(vg, n);
    if (!lg) return NULL;
    if (!strcmp(n, "language_model.model.embed_tokens.weight")) return wanted(&lg->embed);
    if (!strcmp(n, "language_model.model.norm.weight")) return wanted(&lg->norm);
    if (!strcmp(n, "language_model.lm_head.weight")) return wanted(&lg->lm_head);
    int layer, off = 0;
    if (sscanf(n, "language_model.model.layers.%d.%n", &layer, &off) == 1 && off > 0)
        return llama_by_suffix(lg, layer, n + off);
    return NULL;
}
