/* optim.h — training layer: AdamW, the learning-rate schedule and gradient
 * clipping, as small pure functions on float32 host arrays. */
#ifndef SIMA_TRAIN_OPTIM_H
#define SIMA_TRAIN_OPTIM_H

#include <stdint.h>

typedef struct {
    double lr;              /* this step's learning rate (from optim_lr) */
    double beta1, beta2;    /* 0.9, 0.999 */
    double eps;             /* 1e-8 */
    double weight_decay;    /* decoupled, 0.0 (transformers' default) */
} optim_adamw;

optim_adamw optim_adamw_default(void);

/* One AdamW step (PyTorch's torch.optim.AdamW) on n parameters at step t
 * (1-based): p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). */
void optim_adamw_step(const optim_adamw *o, int64_t t, float *param, const float *grad, float *m,
                      float *v, int64_t n);

/* Linear warm-up over ceil(warmup_ratio * total) steps, then cosine decay to
 * 0 at `total` (transformers' get_cosine_schedule_with_warmup). step is
 * 0-based: the rate used for the (step+1)-th update. */
double optim_lr(double base_lr, int64_t step, int64_t total, double warmup_ratio);

/* Global L2 norm over several gradient arrays (double accumulation). */
double optim_global_norm(float *const *grads, const int64_t *sizes, int n);
/* Scale every gradient by min(1, max_norm / (norm + 1e-6)) as PyTorch's
 * clip_grad_norm_; returns the norm before clipping. max_norm <= 0: none. */
double optim_clip(float *const *grads, const int64_t *sizes, int n, double max_norm);

#endif
