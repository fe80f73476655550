/* optim.c — training layer: AdamW, schedule, clipping. */
#include "optim.h"

#include <math.h>

#define OPTIM_PI 3.14159265358979323846

optim_adamw optim_adamw_default(void)
{
    optim_adamw o = {1e-4, 0.9, 0.999, 1e-8, 0.0};
    return o;
}

void optim_adamw_step(const optim_adamw *o, int64_t t, float *param, const float *grad, float *m,
                      float *v, int64_t n)
{
    double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    double decay = 1.0 - o->lr * o->weight_decay;
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        double g = grad[i];
        m[i] = (float)(o->beta1 * m[i] + (1.0 - o->beta1) * g);
        v[i] = (float)(o->beta2 * v[i] + (1.0 - o->beta2) * g * g);
        double mh = m[i] / bc1, vh = v[i] / bc2;
        param[i] = (float)(param[i] * decay - o->lr * mh / (sqrt(vh) + o->eps));
    }
}

double optim_lr(double base_lr, int64_t step, int64_t total, double warmup_ratio)
{
    int64_t warm = (int64_t)ceil(warmup_ratio * (double)total);
    if (step < warm) return base_lr * (double)step / (double)(warm > 1 ? warm : 1);
    if (total <= warm) return base_lr;
    double progress = (double)(step - warm) / (double)(total - warm);
    if (progress > 1.0) progress = 1.0;
    return base_lr * 0.5 * (1.0 + cos(OPTIM_PI * progress));
}

double optim_global_norm(float *const *grads, const int64_t *sizes, int n)
{
    double ss = 0;
    for (int k = 0; k < n; k++)
        for (int64_t i = 0; i < sizes[k]; i++) ss += (double)grads[k][i] * grads[k][i];
    return sqrt(ss);
}

double optim_clip(float *const *grads, const int64_t *sizes, int n, double max_norm)
{
    double norm = optim_global_norm(grads, sizes, n);
    if (max_norm <= 0) return norm;
    double c = max_norm / (norm + 1e-6);
    if (c >= 1.0) return norm;
    for (int k = 0; k < n; k++)
        for (int64_t i = 0; i < sizes[k]; i++) grads[k][i] = (float)(grads[k][i] * c);
    return norm;
}
