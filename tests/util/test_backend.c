/* test_backend.c — the backend a model-level test runs on (see the header). */
#include "test_backend.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char label[64] = "cpu";

be_backend *test_backend_new(void)
{
    const char *dev = getenv("SIMA_TEST_DEVICE"), *dt = getenv("SIMA_TEST_DTYPE");
    if (!dev || !*dev || strcmp(dev, "cpu") == 0) return be_cpu_new(0);
    be_open_opts o;
    be_open_opts_default(&o);
    o.device = dev;
    o.weights = BE_F32;
    if (dt && *dt && be_dtype_parse(dt, &o.weights) != 0) {
        err_print();
        exit(1);
    }
    be_backend *be = be_open(&o);
    if (!be) {
        printf("SKIP: %s\n", err_msg());
        exit(77);
    }
    snprintf(label, sizeof label, "%s (%s weights)", be->name, be_dtype_name(o.weights));
    printf("backend: %s\n", label);
    return be;
}

const char *test_backend_label(void) { return label; }
