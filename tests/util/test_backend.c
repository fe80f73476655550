/* test_backend.c — the backend a model-level test runs on (see the header). */
#include "test_backend.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char label[64] = "cpu";

static be_backend *open_device(const char *dev, be_dtype weights)
{
    be_open_opts o;
    be_open_opts_default(&o);
    o.device = dev;
    o.weights = weights;
    be_backend *be = be_open(&o);
    if (!be) {
        printf("SKIP: %s\n", err_msg());
        exit(77);
    }
    snprintf(label, sizeof label, "%s (%s weights)", be->name, be_dtype_name(weights));
    printf("backend: %s\n", label);
    return be;
}

static const char *test_device(void)
{
    const char *dev = getenv("SIMA_TEST_DEVICE");
    return dev && *dev ? dev : "cpu";
}

be_backend *test_backend_new(void)
{
    const char *dt = getenv("SIMA_TEST_DTYPE");
    if (strcmp(test_device(), "cpu") == 0) return be_cpu_new(0);
    be_dtype weights = BE_F32;
    if (dt && *dt && be_dtype_parse(dt, &weights) != 0) {
        err_print();
        exit(1);
    }
    return open_device(test_device(), weights);
}

be_backend *test_backend_with(be_dtype weights)
{
    if (strcmp(test_device(), "cpu") == 0) return be_cpu_new(0);
    return open_device(test_device(), weights);
}

const char *test_backend_label(void) { return label; }
