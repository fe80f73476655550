/* sima-model — inspect LLaVA checkpoints (placeholder until formats land). */
#include "err.h"
int main(int argc, char **argv)
{
    err_set_program(argv[0]);
    DIE("not yet implemented");
}
