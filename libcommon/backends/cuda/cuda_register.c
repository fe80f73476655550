/* cuda_register.c — backends layer: makes the CUDA backend available to
 * be_open() in every program this object is linked into (the tools link it
 * when sima is built with CUDA; the emulation tests link the emulated one). */
#include "backend.h"

const be_gpu_impl *be_cuda_impl(void);

__attribute__((constructor)) static void cuda_register(void) { be_register_gpu(be_cuda_impl()); }
