/* test_backend.h — the backend a model-level test runs on.
 *
 * SIMA_TEST_DEVICE (cpu by default, or cuda) and SIMA_TEST_DTYPE (the GPU's
 * weight storage: f32 by default here, so the golden tolerances hold) pick
 * it. The conformance tests run on the CPU backend, and again on the CUDA
 * backend (its CPU emulation everywhere, the GPU where there is one). When
 * the backend asked for cannot open (no GPU), the test prints why and exits
 * 77 (skipped). */
#ifndef SIMA_TEST_BACKEND_H
#define SIMA_TEST_BACKEND_H

#include "backend.h"

be_backend *test_backend_new(void);
/* The same device with weight matrices stored as `weights` (the CPU
 * backend, float32 always, ignores it). */
be_backend *test_backend_with(be_dtype weights);
/* "cpu", or "cuda (f32)" etc., for messages */
const char *test_backend_label(void);

#endif
