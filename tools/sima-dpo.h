/* sima-dpo.h — the parts of the sima-dpo trainer shared by its files:
 * sima-dpo.c (options, the step loop, metrics.csv, main), sima-dpo-data.c
 * (pairs and SFT items, epoch order, batch pixels, the reference
 * log-probs scored once), sima-dpo-params.c (the flat trained-parameter
 * vector, AdamW, allreduce, the projector) and sima-dpo-state.c
 * (checkpoint: state.bin, adapter and model folders, resume). */
#ifndef SIMA_TOOLS_SIMA_DPO_H
#define SIMA_TOOLS_SIMA_DPO_H

#include "dpo.h"
#include "h5io.h"
#include "lora.h"
#include "optim.h"
#include "session.h"
#include "backend.h"
#include "tool.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum { MODE_DPO, MODE_SFT } train_mode;
/* What is trained: LoRA terms; LoRA and the projector; every weight. */
typedef enum { TRAIN_LORA, TRAIN_LORA_PROJECTOR, TRAIN_ALL } train_what;

typedef struct {
    const char *model, *pairs, *prompts, *out, *adapter, *targets, *preprocess, *template_name;
    train_mode mode;
    train_what train;
    int lora_given;             /* a LoRA option or --adapter was given */
    int lora_r, epochs, micro, accum, sima_rule, merge, resume; /* resume -1: auto */
    double lora_alpha, lora_dropout, beta, lr, warmup_ratio, weight_decay, max_grad_norm;
    int64_t seed, save_every, stop_after;
    int shard;                  /* --shard */
    be_open_opts dev;           /* --device, --dtype */
} dpo_args;

/* The items trained on: DPO, every pair as a dpo_pair over whole sequences
 * (prompt ++ response); SFT, every prompt row with a ground truth as a
 * train_seq. */
typedef struct {
    int64_t n;
    dpo_pair *pair;         /* DPO [n]; image: -1 here, set per micro-batch */
    train_seq *seq;         /* SFT [n]; image likewise */
    int64_t *image_row;     /* [n] row of the prompts file's /images, -1 none */
    char *identity;         /* path@created#run_key/rows, for the run key */
} dpo_data;

/* The trained tensors as one flat vector: gradients, AdamW moments and
 * checkpoints use it. param is the float32 master copy of a tensor: the
 * adapter's host copy for a LoRA term, else our own copy of a model weight
 * (owned); w is the backend weight it feeds, refreshed after each update.
 * grad is the backend gradient of the tensor; grad2 a second one of the
 * same tensor (lm_head tied to the embeddings), or NULL. */
typedef struct {
    float *param;
    be_mat *grad, *grad2;
    be_weight *w;
    bool owned;
    int64_t n, off;
} dpo_tensor;

/* On a GPU backend (one with the optimizer operations, be->adamw) the
 * whole step stays on the device: gradient, master copies and moments as
 * flat device vectors dev_* [1, total], the all-reduce through NCCL. The
 * host arrays (param, m, v) are then refreshed only for checkpoints and
 * outputs (params_to_host), and a checkpoint's are loaded back with
 * params_upload. On the CPU backend they are the optimizer's own. */
typedef struct {
    dpo_tensor *t;
    int n, cap;
    int64_t total, largest;
    float *grad, *m, *v, *scratch;
    be_backend *be;
    bool on_device;
    bool host_stale;            /* the device holds newer masters/moments */
    be_mat dev_grad, dev_param; /* [1, padded] */
    be_mat dev_m, dev_v;        /* [1, part]: this rank's slice with --shard, else all */
    /* --shard (ZeRO): the summed gradient, the moments and the update are cut
     * in `size` parts of `part` (padded = size x part >= total); rank `rank`
     * keeps part part_off.. and the ranks gather the updated masters */
    bool shard;
    int rank, size;
    int64_t part, padded, part_off;
    be_mat dev_gpart;           /* [1, part] this rank's slice of the summed gradient */
} dpo_params;

typedef struct {
    const dpo_args *a;
    tool_ctx *t;
    sess_model s;
    h5io_file prompts;
    dpo_data data;
    lora_adapter *ad;           /* NULL with --train all */
    llama_grads g;
    vision_grads vg;            /* the projector's (or, --train all, every) gradient */
    dpo_params p;
    dpo_opts opts;
    /* The projector when it is not the base model's: [4] master copies in
     * PROJ_NAME order (the trained params', or owned: an adapter's frozen
     * one); NULL when the base projector is used untouched. */
    float *proj[4];
    bool proj_owned;
    bool ref_once;              /* reference log-probs scored once, before training */
    int64_t global_batch, steps_per_epoch, total_steps;
    int64_t step;               /* steps done */
    int64_t *order, order_epoch;
    char key[17];               /* the run's identity */
    double t_start;             /* MPI_Wtime when this invocation's training began */
    int64_t step_start;         /* step at that time */
    double tokens_run, seconds_run; /* this invocation's steps: tokens, step time */
} trainer;

/* ------------------------------------------------ sima-dpo-data.c -- */

/* DPO items: every pair of the pairs file at path. */
int data_load(const char *path, dpo_data *d);
/* SFT items: every row of the (open) prompts file with a ground truth. */
int sft_data_load(h5io_file *f, const char *path, int64_t n_rows, const char *template_name,
                  const sess_model *s, dpo_data *d);
/* What item i weighs in its batch's mean loss. */
double item_weight(const dpo_data *d, int64_t i);
void data_free(dpo_data *d);
/* Epoch e's order of the n items into order[n]. */
void epoch_order(uint64_t seed, int64_t epoch, int64_t n, int64_t *order);
/* Pixels of items[n]'s images, each distinct row once: *pixels [n_img][3][S][S]
 * (malloc'd), image[n] the index of item i's among them (-1: none). */
int batch_pixels(trainer *tr, const int64_t *items, int n, int *image, float **pixels,
                 int *n_img);
/* Are the reference log-probs scored once, before training? */
bool need_ref_once(const trainer *tr);
/* Every pair's reference log-probs with the base model. Collective. */
void score_references(trainer *tr);

/* ---------------------------------------------- sima-dpo-params.c -- */

/* The projector's tensors, canonical names, in proj_weight's order. */
extern const char *const PROJ_NAME[4];
be_weight *proj_weight(llava_model *m, int i);
/* Gradients and tr->p, the flat vector of what is trained. */
int setup_params(trainer *tr);
/* The trained tensor whose gradient is g, or NULL. */
dpo_tensor *params_by_grad(dpo_params *p, const be_mat *g);
/* The step's gradient: zeroed, then += weight * (the backend gradients)
 * after each micro-batch, then summed over the ranks. */
void params_zero_grad(dpo_params *p);
void params_accumulate(dpo_params *p, be_backend *be, double weight);
int params_allreduce(dpo_params *p);
/* Global-norm clipping to max_norm (<= 0: none): returns the norm before
 * clipping; *scale gets the factor the AdamW step applies. */
double params_clip(dpo_params *p, double max_norm, double *scale);
/* AdamW step t (1-based) of every trained tensor, then the backend weights
 * refreshed from the masters. */
void params_adamw(dpo_params *p, const optim_adamw *o, int64_t t, double scale);
/* The backend weights from the host masters (and moments, on a GPU): after
 * loading a checkpoint or changing the masters on the host. */
void params_upload(dpo_params *p);
/* The host masters and moments brought up to date (before writing them). */
void params_to_host(dpo_params *p);
/* Sum v[n] over the ranks. */
int allreduce_floats(float *v, int64_t n);
void params_free(dpo_params *p);

/* ----------------------------------------------- sima-dpo-state.c -- */

int make_dir(const char *dir);
/* The adapter folder dir (LoRA terms, and a non-base projector). */
int save_adapter(const trainer *tr, const char *dir);
/* Rank 0 writes OUT/checkpoint (atomically); collective. */
void checkpoint_save(trainer *tr);
/* Resume when asked or (auto) when the checkpoint is of this run. */
int maybe_resume(trainer *tr, bool *resumed);
/* Will maybe_resume take the checkpoint (which then holds the references)? */
bool checkpoint_resumable(trainer *tr);
/* Rank 0 writes OUT/<name>, the merged or trained model; collective. */
void write_model(trainer *tr, const char *name);

#endif
