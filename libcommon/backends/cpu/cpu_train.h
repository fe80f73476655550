/* cpu_train.h — backends layer (private): the CPU backend's backward
 * operations, installed into a CPU backend by be_cpu_new. */
#ifndef SIMA_BACKENDS_CPU_TRAIN_H
#define SIMA_BACKENDS_CPU_TRAIN_H

#include "backend.h"

void cpu_train_install(be_backend *be);

#endif
