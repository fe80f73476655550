/* tool.h — base layer: what every sima tool does at start and end.
 *
 * Every tool is an MPI program: tool_init starts MPI, names the program for
 * messages, and records the rank. Errors follow one rule: a failure that all
 * ranks see alike goes through tool_agree() (every rank learns that some rank
 * failed, the failing ranks print their one-line error, all exit 1 cleanly);
 * a failure only one rank can see mid-collective goes through tool_abort().
 *
 * Exit codes: 0 output complete; 1 error; 2 bad usage; 3 interrupted by a
 * signal (SIGTERM/SIGUSR1/SIGINT) after committing what was done — rerun the
 * same command to finish.
 */
#ifndef SIMA_BASE_TOOL_H
#define SIMA_BASE_TOOL_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

enum { TOOL_OK = 0, TOOL_ERROR = 1, TOOL_USAGE = 2, TOOL_INTERRUPTED = 3 };

typedef struct {
    const char *name;   /* "sima-gen" */
    int rank, size;
    int argc;
    char **argv;        /* the full command line, for provenance */
    double t0;          /* MPI_Wtime at start */
    int local_rank, local_size; /* this rank among the ranks on its node */
} tool_ctx;

void tool_init(tool_ctx *t, int *argc, char ***argv, const char *name);

/* Long options every tool accepts, and their handling (getopt codes
 * 'v', 'q', 'h', 'V'); usage is printed by rank 0 for --help. Returns 1 when
 * the option was one of these. */
#define TOOL_COMMON_OPTIONS                                                    \
    {"verbose", no_argument, 0, 'v'}, {"quiet", no_argument, 0, 'q'},          \
    {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}
int tool_common_option(tool_ctx *t, int c, const char *usage);

/* Bad command line: message (rank 0), exit 2 on every rank. */
_Noreturn void tool_usage_error(tool_ctx *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Option values: an integer / a number in [lo, hi], else a usage error
 * naming the option ("--batch: expected an integer in [1, 4096], got 'x'"). */
int64_t tool_parse_int(tool_ctx *t, const char *opt, const char *s, int64_t lo, int64_t hi);
double tool_parse_real(tool_ctx *t, const char *opt, const char *s, double lo, double hi);

/* Collective: returns 0 when rc == 0 on every rank. Otherwise ranks with
 * rc != 0 print their recorded error, and every rank finalises MPI and
 * exits 1. */
int tool_agree(tool_ctx *t, int rc);

/* Print the recorded error and abort the whole job (exit 1). */
_Noreturn void tool_abort(tool_ctx *t);

/* Finalise MPI and return code for main(). */
int tool_finish(tool_ctx *t, int code);

/* Signals: SIGTERM, SIGUSR1 (Slurm's warning before the time limit) and
 * SIGINT set a flag that long loops poll; a second SIGINT kills at once. */
void tool_catch_signals(void);
bool tool_interrupted(void);
/* Collective: true if any rank has been signalled. */
bool tool_any_interrupted(tool_ctx *t);

/* "3h 02m", "45s": for ETA and wall-time lines. buf holds >= 32 bytes. */
const char *tool_duration(double seconds, char *buf);

#endif
