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

/* What a training forward keeps for the backward. */
typedef enum {
    VISION_TRAIN_ALL = 0,       /* CLIP and projector activations */
    VISION_TRAIN_PROJECTOR = 1, /* the projector's only: CLIP runs forward only and
                                 * each layer's activations are dropped after use */
} vision_train_what;

/* feats [n*N, D] = projector(CLIP(pixels)), keeping activations in tape. */
int vision_forward_train(llava_model *m, const float *pixels, int n_img, vision_tape *tape,
                         be_mat feats);
/* The same keeping what `what` says; VISION_TRAIN_PROJECTOR gives bitwise the
 * same feats (the same ops in the same order). */
int vision_forward_train_what(llava_model *m, const float *pixels, int n_img, int what,
                              vision_tape *tape, be_mat feats);
/* Backward from dfeats [n*N, D]; adds into the wanted entries of g. The
 * backward stops at the projector's input when g wants no CLIP gradient
 * (g->layers NULL, as vision_grads_new_projector makes it); CLIP gradients
 * wanted from a projector-only tape are an error. */
int vision_backward(llava_model *m, vision_tape *tape, be_mat dfeats, vision_grads *g);
void vision_tape_free(llava_model *m, vision_tape *tape);

void vision_grads_new(llava_model *m, vision_grads *g);   /* all, zeroed */
/* Only the projector's l1, l1_b, l2, l2_b, zeroed (the rest NULL). */
void vision_grads_new_projector(llava_model *m, vision_grads *g);
void vision_grads_zero(llava_model *m, vision_grads *g);
void vision_grads_free(llava_model *m, vision_grads *g);

/* Every wanted gradient of g with the weight it belongs to, in a fixed
 * order (embeddings, pre-norm, projector, then CLIP layer by layer); fills
 * up to cap entries and returns the count. */
int vision_grad_weights(llava_model *m, vision_grads *g, be_mat **grads, be_weight **weights,
                        int cap);

#endif
