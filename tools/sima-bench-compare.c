/* placeholder */
#include "sima-bench.h"
int bc_main(tool_ctx *t, int argc, char **argv) { (void)t; (void)argc; (void)argv; return 1; }
