/* tool.c — base layer: MPI start-up, common options, agreed exits, signals. */
#define _GNU_SOURCE /* sched_getaffinity */
#include "tool.h"
#include "err.h"
#include "libcheck.h"
#include "log.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static volatile sig_atomic_t g_signalled;

/* This rank's index among the ranks on its node (they share its GPUs and
 * CPUs). */
static void find_node_ranks(tool_ctx *t)
{
    MPI_Comm node;
    t->local_rank = 0;
    t->local_size = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_rank(node, &t->local_rank);
        MPI_Comm_size(node, &t->local_size);
        MPI_Comm_free(&node);
    }
}

/* Without OMP_NUM_THREADS, share this process's CPUs among the ranks on the
 * node: OpenMP would otherwise start one thread per CPU in every rank, and
 * oversubscribed spinning threads run many times slower. */
static void pick_threads(tool_ctx *t)
{
#ifdef _OPENMP
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && env[0]) return;
    int local = t->local_size;
    cpu_set_t set;
    int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    /* bound to a share of the node already: use it; else divide the node */
    int threads = cpus < online ? cpus : (int)(online / local);
    if (threads < 1) threads = 1;
    omp_set_num_threads(threads);
    log_debug("%d OpenMP threads per rank (%d ranks on this node, %d CPUs visible)", threads,
              local, cpus);
#else
    (void)t;
#endif
}

void tool_init(tool_ctx *t, int *argc, char ***argv, const char *name)
{
    memset(t, 0, sizeof *t);
    err_set_program(name);
    MUST_MPI(MPI_Init(argc, argv));
    MUST_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &t->rank));
    MUST_MPI(MPI_Comm_size(MPI_COMM_WORLD, &t->size));
    /* tag messages with the rank only when there is more than one */
    err_set_rank(t->size > 1 ? t->rank : -1);
    t->name = name;
    t->argc = *argc;
    t->argv = *argv;
    t->t0 = MPI_Wtime();
    find_node_ranks(t);
    pick_threads(t);
}

int tool_common_option(tool_ctx *t, int c, const char *usage)
{
    switch (c) {
    case 'v': log_set_level(LOG_DEBUG); return 1;
    case 'q': log_set_level(LOG_WARN); return 1;
    case 'h':
        if (t->rank == 0) fputs(usage, stdout);
        MPI_Finalize();
        exit(0);
    case 'V':
        if (t->rank == 0) printf("%s %s\n", t->name, SIMA_VERSION);
        MPI_Finalize();
        exit(0);
    default: return 0;
    }
}

void tool_usage_error(tool_ctx *t, const char *fmt, ...)
{
    if (t->rank == 0) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: error: ", t->name);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n(run '%s --help' for usage)\n", t->name);
        va_end(ap);
    }
    MPI_Finalize();
    exit(TOOL_USAGE);
}

int64_t tool_parse_int(tool_ctx *t, const char *opt, const char *s, int64_t lo, int64_t hi)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        tool_usage_error(t, "%s: expected an integer in [%lld, %lld], got '%s'", opt,
                         (long long)lo, (long long)hi, s);
    return v;
}

double tool_parse_real(tool_ctx *t, const char *opt, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi))
        tool_usage_error(t, "%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
    return v;
}

int tool_agree(tool_ctx *t, int rc)
{
    int bad = rc != 0, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!any) return 0;
    if (bad) err_print();
    MPI_Finalize();
    exit(TOOL_ERROR);
}

void tool_abort(tool_ctx *t)
{
    err_print();
    MPI_Abort(MPI_COMM_WORLD, TOOL_ERROR);
    exit(TOOL_ERROR);
}

int tool_finish(tool_ctx *t, int code)
{
    MPI_Finalize();
    return code;
}

static void on_signal(int sig)
{
    if (sig == SIGINT && g_signalled) _exit(130);
    g_signalled = sig;
}

void tool_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

bool tool_interrupted(void) { return g_signalled != 0; }

bool tool_any_interrupted(tool_ctx *t)
{
    int mine = g_signalled != 0, any = 0;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any != 0;
}

const char *tool_duration(double s, char *buf)
{
    if (s < 0 || s > 1e9) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, 32, "%ldh %02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, 32, "%ldm %02lds", t / 60, t % 60);
    else
        snprintf(buf, 32, "%lds", t);
    return buf;
}
