/* train_llama.h — training layer: the LLaMA decoder's training forward pass
 * (keeping the activations the backward needs) and its backward pass, over
 * a ragged batch of whole sequences (no KV cache), through the backend ops.
 *
 * Shapes: R rows (all sequences' tokens concatenated), D hidden, F FFN width,
 * QW = H*hd, KW = KVH*hd, r LoRA rank.
 */
#ifndef SIMA_TRAIN_LLAMA_H
#define SIMA_TRAIN_LLAMA_H

#include "llava.h"

/* Gradients of one layer. A matrix whose data is NULL is not wanted (frozen)
 * and is skipped; every wanted one accumulates (+=). */
typedef struct {
    be_mat attn_norm, mlp_norm;         /* [1, D] */
    be_mat w[LL_N_LINEAR];              /* shapes of the weights, [out, in] */
    be_mat lora_A[LL_N_LINEAR];         /* [r, in] */
    be_mat lora_B[LL_N_LINEAR];         /* [out, r] */
} llama_layer_grads;

typedef struct {
    be_mat embed;                       /* [V, D] */
    be_mat norm;                        /* [1, D] */
    be_mat lm_head;                     /* [V, D] */
    llama_layer_grads *layers;          /* [n_layers] */
    int n_layers;
} llama_grads;

/* What the backward needs from one layer's forward. */
typedef struct {
    be_mat h_in;                        /* [R, D] layer input (residual stream) */
    be_mat xn1;                         /* [R, D] rmsnorm(h_in) */
    be_mat q, k, v;                     /* [R, QW], [R, KW], [R, KW] after rope */
    be_mat att;                         /* [R, QW] attention output */
    be_mat h_mid;                       /* [R, D] residual after attention */
    be_mat xn2;                         /* [R, D] rmsnorm(h_mid) */
    be_mat gate, up, act;               /* [R, F]; act = silu(gate) * up */
} llama_layer_tape;

typedef struct {
    int64_t n_rows;                     /* R */
    int32_t *embed_ids;                 /* [R] token ids, -1 on image rows */
    int32_t *pos;                       /* [R] positions */
    int64_t *image_rows;                /* [n_image_rows] rows that took image features */
    int64_t n_image_rows;
    be_attn_seq *aseq;                  /* [n_seqs] */
    int n_seqs;
    llama_layer_tape *layers;           /* [n_layers] */
    be_mat h_last;                      /* [R, D] before the final norm */
    float *drop_p;                      /* [R] LoRA dropout of each row; NULL: none */
    uint64_t *drop_seed;                /* [R] its sequence's dropout seed */
} llama_tape;

/* LoRA dropout in the training forward, as PEFT's lora_dropout: each LoRA
 * term's input x becomes x * mask / (1 - p) (the base linear sees x). Row
 * r's mask element (c) of layer l's linear i is a hash of (seed[r], l, i,
 * the row's position in its sequence, c): it depends only on the sequence's
 * seed, never on how sequences are batched. p[r] 0: no dropout on row r. */
typedef struct {
    const float *p;                     /* [R] */
    const uint64_t *seed;               /* [R] */
} llama_dropout;

/* A sequence of a training batch that continues the first n_pre rows of an
 * earlier sequence `of` of the batch (a prompt computed once for several
 * responses): its own rows take positions n_pre.., and its attention sees
 * those n_pre rows first (be_attn_seq's shared prefix). The backward adds
 * its gradients into those rows. `of` must have no prefix itself and at
 * least n_pre rows. n_pre 0: none. */
typedef struct {
    int of;
    int64_t n_pre;
} llama_prefix;

/* What the training forward does besides the plain batch. */
typedef struct {
    const llama_dropout *drop;          /* NULL: no LoRA dropout */
    const llama_prefix *prefix;         /* [n_seqs]; NULL: no sequence has one */
    bool keep;                          /* keep the tape for llama_backward; false:
                                         * only `hidden` (one layer's scratch reused) */
} llama_train_opts;

/* Like llama_forward for sequences without caches (every seqs[i].kv NULL),
 * keeping the activations in `tape`. hidden [R, D] = final-normed states.
 * The adapter is applied as in llama_forward (attached and not lora_off). */
int llama_forward_train(llava_model *m, const llama_batch *batch, llama_tape *tape,
                        be_mat hidden);
/* The same with LoRA dropout (drop NULL or every p 0: exactly the above);
 * llama_backward applies the same masks. */
int llama_forward_train_dropout(llava_model *m, const llama_batch *batch,
                                const llama_dropout *drop, llama_tape *tape, be_mat hidden);
/* The training forward with options; tape may be NULL when !o->keep. */
int llama_forward_train_ex(llava_model *m, const llama_batch *batch, const llama_train_opts *o,
                           llama_tape *tape, be_mat hidden);
/* Backward from dhidden [R, D] (the gradient w.r.t. hidden; consumed as
 * scratch). Adds weight gradients into g (wanted entries only) and, when
 * dimage.data is set, the gradient w.r.t. the image features [n_image_rows, D]. */
void llama_backward(llava_model *m, llama_tape *tape, be_mat dhidden, llama_grads *g,
                    be_mat dimage);
void llama_tape_free(llava_model *m, llama_tape *tape);

/* Allocate zeroed gradients: base weights (full training) and/or the LoRA
 * terms of the attached adapter. */
typedef enum {
    LLAMA_GRAD_LORA = 1,                /* every attached LoRA A and B */
    LLAMA_GRAD_WEIGHTS = 2,             /* every decoder weight, embeddings and lm_head */
} llama_grad_what;
void llama_grads_new(llava_model *m, int what, llama_grads *g);
void llama_grads_zero(llava_model *m, llama_grads *g);
void llama_grads_free(llava_model *m, llama_grads *g);

#endif
