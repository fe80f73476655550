/* train_vision.h — training layer: the CLIP tower and projector's training
 * forward (keeping activations) and backward, for full training / SFT.
 *
 * Shapes: n images, P patches, T = P + 1 rows per image, C CLIP hidden, Fv
 * CLIP FFN width, N image tokens per image, D LLaMA hidden, K = 3*p*p.
 */
#ifndef SIMA_TRAIN_VISION_H
#define SIMA_TRAIN_VISION_H

#include "llava.h"

typedef struct {
    be_mat ln1_w, ln1_b, ln2_w, ln2_b, q, k, v, o, q_b, k_b, v_b, o_b, fc1, fc1_b, fc2, fc2_b;
} clip_layer_grads;

/* Gradients of the vision tower and projector (data NULL: not wanted). */
typedef struct {
    be_mat patch, class_emb, pos_emb, pre_ln_w, pre_ln_b;
    clip_layer_grads *layers;           /* [n_layers run] */
    int n_layers;
    be_mat l1, l1_b, l2, l2_b;          /* projector */
} vision_grads;

typedef struct {
    be_mat x_in, h1, q, k, v, att, x_mid, h2, f_pre, f_act;  /* [n*T, C] / [n*T, Fv] */
} clip_layer_tape;

typedef struct {
    int n_img;
    be_mat patches_in;                  /* [n*P, K] unfolded pixels */
    be_mat x0;                          /* [n*T, C] embeddings before pre_layrnorm */
    clip_layer_tape *layers;
    be_mat sel;                         /* [n*N, C] selected features */
    be_mat mid_pre, mid_act;            /* [n*N, D] projector hidden before/after act */
} vision_tape;

/* feats [n*N, D] = projector(CLIP(pixels)), keeping activations in tape. */
int vision_forward_train(llava_model *m, const float *pixels, int n_img, vision_tape *tape,
                         be_mat feats);
/* Backward from dfeats [n*N, D]; adds into the wanted entries of g. */
int vision_backward(llava_model *m, vision_tape *tape, be_mat dfeats, vision_grads *g);
void vision_tape_free(llava_model *m, vision_tape *tape);

void vision_grads_new(llava_model *m, vision_grads *g);   /* all, zeroed */
void vision_grads_free(llava_model *m, vision_grads *g);

#endif
