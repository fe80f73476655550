/* libcheck.c — base layer: readable reasons for failed MPI calls. */
#include "libcheck.h"
#include "err.h"

#include <string.h>

int mpi_error_at(const char *file, int line, const char *call, int code)
{
    char reason[MPI_MAX_ERROR_STRING] = "unknown MPI error";
    int len = 0;
    if (MPI_Error_string(code, reason, &len) != MPI_SUCCESS)
        strcpy(reason, "unknown MPI error");
    /* name only the function, not its whole argument list */
    char fn[64];
    size_t k = strcspn(call, "(");
    if (k >= sizeof fn) k = sizeof fn - 1;
    memcpy(fn, call, k);
    fn[k] = '\0';
    return err_set_at(file, line, "%s failed: %s", fn, reason);
}
