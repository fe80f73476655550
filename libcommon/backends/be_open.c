/* be_open.c — backends layer: choosing the backend a tool runs on. The CPU
 * backend is always here; a GPU backend registers itself when the program
 * links it (the CUDA library's constructor calls be_register_gpu). */
#include "backend.h"
#include "err.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static const be_gpu_impl *g_gpu;

void be_register_gpu(const be_gpu_impl *impl) { g_gpu = impl; }
const be_gpu_impl *be_gpu(void) { return g_gpu; }

const char *be_dtype_name(be_dtype d)
{
    switch (d) {
    case BE_BF16: return "bf16";
    case BE_F16: return "f16";
    case BE_F32: return "f32";
    }
    return "?";
}

int be_dtype_parse(const char *s, be_dtype *out)
{
    static const be_dtype all[] = {BE_BF16, BE_F16, BE_F32};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (strcmp(s, be_dtype_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return ERR("unknown weight type '%s' (expected bf16, f16 or f32)", s);
}

void be_open_opts_default(be_open_opts *o)
{
    memset(o, 0, sizeof *o);
    o->device = "auto";
    o->weights = BE_BF16;
    o->local_size = 1;
}

static be_backend *open_gpu(const be_open_opts *o, int count)
{
    int dev = o->local_rank % count;
    if (o->local_size > count && o->local_rank == 0)
        log_warn("%d ranks on this node share %d GPU(s): run one rank per GPU "
                 "(Slurm: --gpus-per-task=1) for full speed",
                 o->local_size, count);
    be_backend *be = g_gpu->create(dev, o->weights);
    if (!be) err_context("--device %s", g_gpu->name);
    return be;
}

be_backend *be_open(const be_open_opts *o)
{
    const char *want = o->device ? o->device : "auto";
    if (strcmp(want, "cpu") == 0) return be_cpu_new(o->cpu_threads);
    bool any_gpu = strcmp(want, "auto") == 0;
    if (!any_gpu && strcmp(want, "cuda") != 0) {
        ERR("--device %s: unknown device (expected auto, cpu or cuda)", want);
        return NULL;
    }
    if (!g_gpu) {
        if (any_gpu) return be_cpu_new(o->cpu_threads);
        ERR("--device cuda: this build of sima has no CUDA backend (the CUDA toolkit was not "
            "found when it was built); rebuild where nvcc, cuBLAS and NCCL are installed, or "
            "use --device cpu");
        return NULL;
    }
    int count = g_gpu->device_count();
    if (count > 0) return open_gpu(o, count);
    if (any_gpu) {
        err_clear();
        log_debug("no GPU visible: running on the CPU backend");
        return be_cpu_new(o->cpu_threads);
    }
    err_context("--device cuda: no usable GPU (run on a GPU node, check CUDA_VISIBLE_DEVICES, "
                "or use --device cpu)");
    return NULL;
}
