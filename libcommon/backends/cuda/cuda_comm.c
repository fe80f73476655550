/* cuda_comm.c — backends layer: the data-parallel ranks' NCCL communicator,
 * set up over MPI (rank 0 makes the id, MPI_Bcast gives it to the others),
 * and the collectives on the device. NCCL refuses two ranks on one GPU:
 * ranks that share GPUs (more ranks than GPUs on a node) sum through host
 * memory with MPI instead, the same arithmetic, slower. A failure ends the
 * job with a message saying what to check; NCCL_DEBUG=INFO tells more. */
#include "cuda_check.h"
#include "cuda_internal.h"
#include "err.h"
#include "log.h"

#include <mpi.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Noreturn static void die_nccl(const char *file, int line, const char *call, ncclResult_t r)
{
    err_die_at(file, line,
               "%s:%d: %s failed: %s. Check that every rank has its own GPU and that the nodes "
               "reach each other (NCCL_DEBUG=INFO says more; NCCL_SOCKET_IFNAME picks the "
               "network), or run on one node",
               file, line, call, ncclGetErrorString(r));
}

#define NCCL_CHECK(call)                                                       \
    do {                                                                       \
        ncclResult_t r_ = (call);                                              \
        if (r_ != ncclSuccess) die_nccl(__FILE__, __LINE__, #call, r_);        \
    } while (0)

/* Does another rank of comm use this rank's GPU (same host, same PCI bus id)? */
static int gpu_shared(cu_state *st, MPI_Comm comm, int size, bool *shared)
{
    enum { ID_LEN = 96 };
    char mine[ID_LEN] = {0};
    if (gethostname(mine, 63) != 0) return ERR("gethostname failed");
    size_t n = strlen(mine);
    mine[n++] = '|';
    CU_TRY(cudaDeviceGetPCIBusId(mine + n, (int)(ID_LEN - n - 1), st->device));
    char *all = xmalloc((size_t)ID_LEN * (size_t)size);
    if (MPI_Allgather(mine, ID_LEN, MPI_CHAR, all, ID_LEN, MPI_CHAR, comm) != MPI_SUCCESS) {
        free(all);
        return ERR("GPU set-up: MPI_Allgather of the ranks' GPUs failed");
    }
    *shared = false;
    for (int i = 0; i < size && !*shared; i++)
        for (int j = i + 1; j < size && !*shared; j++)
            *shared = strncmp(all + (size_t)i * ID_LEN, all + (size_t)j * ID_LEN, ID_LEN) == 0;
    free(all);
    return 0;
}

static int cu_comm_init(be_backend *be, void *mpi_comm)
{
    cu_state *st = cu_st(be);
    MPI_Comm comm = *(MPI_Comm *)mpi_comm;
    int rank, size;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return ERR("NCCL set-up: the MPI communicator is not usable");
    if (size == 1 || st->nccl || st->host_comm) return 0;
    bool shared = false;
    if (gpu_shared(st, comm, size, &shared) != 0) return -1;
    if (shared) {
        MPI_Comm *c = xmalloc(sizeof *c);
        if (MPI_Comm_dup(comm, c) != MPI_SUCCESS) return ERR("MPI_Comm_dup failed");
        st->host_comm = c;
        if (rank == 0)
            log_warn("ranks share a GPU: their gradients are summed through host memory (NCCL "
                     "needs one GPU per rank; Slurm: --gpus-per-task=1)");
        return 0;
    }
    ncclUniqueId id;
    if (rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) return ERR("ncclGetUniqueId failed: %s", ncclGetErrorString(r));
    }
    if (MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, comm) != MPI_SUCCESS)
        return ERR("NCCL set-up: MPI_Bcast of the NCCL id failed");
    ncclComm_t c;
    ncclResult_t r = ncclCommInitRank(&c, size, id, rank);
    if (r != ncclSuccess)
        return ERR("ncclCommInitRank (rank %d of %d, GPU %d) failed: %s; check that every rank "
                   "has its own GPU (Slurm: --gpus-per-task=1) and NCCL_DEBUG=INFO's report",
                   rank, size, st->device, ncclGetErrorString(r));
    st->nccl = c;
    log_debug("NCCL communicator: rank %d of %d on GPU %d", rank, size, st->device);
    return 0;
}

/* The ranks share GPUs: a collective through host memory with MPI. */
static float *host_stage(cu_state *st, size_t n)
{
    if (n > st->host_stage_n) {
        free(st->host_stage);
        st->host_stage = xmalloc(sizeof(float) * n);
        st->host_stage_n = n;
    }
    return st->host_stage;
}

#define MPI_MUST(call)                                                         \
    do {                                                                       \
        if ((call) != MPI_SUCCESS) DIE("%s failed (ranks sharing a GPU)", #call); \
    } while (0)

/* Ranks of the host communicator; a staging buffer of n x (ranks + 1) floats. */
static int host_ranks(cu_state *st, size_t n, float **stage)
{
    int size;
    MPI_MUST(MPI_Comm_size(*(MPI_Comm *)st->host_comm, &size));
    *stage = host_stage(st, n * (size_t)(size + 1));
    return size;
}

static void host_allreduce(cu_state *st, float *dev, size_t n)
{
    float *h = host_stage(st, n);
    cu_download_bytes(st, h, dev, sizeof(float) * n);
    MPI_MUST(MPI_Allreduce(MPI_IN_PLACE, h, (int)n, MPI_FLOAT, MPI_SUM, *(MPI_Comm *)st->host_comm));
    CU_CHECK(cudaMemcpyAsync(dev, h, sizeof(float) * n, cudaMemcpyHostToDevice, st->stream));
    CU_CHECK(cudaStreamSynchronize(st->stream));
}

static void cu_allreduce_sum(be_backend *be, be_mat x)
{
    cu_state *st = cu_st(be);
    if (x.rows > 1 && x.ld != x.cols) DIE("allreduce_sum: needs a packed matrix");
    size_t n = (size_t)(x.rows * x.cols);
    if (st->host_comm) host_allreduce(st, x.data, n);
    if (!st->nccl) return; /* one rank, or done through the host */
    NCCL_CHECK(ncclAllReduce(x.data, x.data, n, ncclFloat, ncclSum, (ncclComm_t)st->nccl,
                             st->stream));
}

static void cu_reduce_scatter_sum(be_backend *be, be_mat full, be_mat part)
{
    cu_state *st = cu_st(be);
    size_t n = (size_t)(part.rows * part.cols);
    if (st->host_comm) {
        float *h;
        int size = host_ranks(st, n, &h);
        float *mine = h + n * (size_t)size;
        cu_download_bytes(st, h, full.data, sizeof(float) * n * (size_t)size);
        MPI_MUST(MPI_Reduce_scatter_block(h, mine, (int)n, MPI_FLOAT, MPI_SUM,
                                          *(MPI_Comm *)st->host_comm));
        CU_CHECK(cudaMemcpyAsync(part.data, mine, sizeof(float) * n, cudaMemcpyHostToDevice,
                                 st->stream));
        CU_CHECK(cudaStreamSynchronize(st->stream));
        return;
    }
    if (!st->nccl) { /* one rank: its slice is the whole */
        CU_CHECK(cudaMemcpyAsync(part.data, full.data, sizeof(float) * n, cudaMemcpyDeviceToDevice,
                                 st->stream));
        return;
    }
    NCCL_CHECK(ncclReduceScatter(full.data, part.data, n, ncclFloat, ncclSum, (ncclComm_t)st->nccl,
                                 st->stream));
}

static void cu_all_gather(be_backend *be, be_mat part, be_mat full)
{
    cu_state *st = cu_st(be);
    size_t n = (size_t)(part.rows * part.cols);
    if (st->host_comm) {
        float *h;
        int size = host_ranks(st, n, &h);
        float *mine = h + n * (size_t)size;
        cu_download_bytes(st, mine, part.data, sizeof(float) * n);
        MPI_MUST(MPI_Allgather(mine, (int)n, MPI_FLOAT, h, (int)n, MPI_FLOAT,
                               *(MPI_Comm *)st->host_comm));
        CU_CHECK(cudaMemcpyAsync(full.data, h, sizeof(float) * n * (size_t)size,
                                 cudaMemcpyHostToDevice, st->stream));
        CU_CHECK(cudaStreamSynchronize(st->stream));
        return;
    }
    if (!st->nccl) {
        if (part.data != full.data)
            CU_CHECK(cudaMemcpyAsync(full.data, part.data, sizeof(float) * n,
                                     cudaMemcpyDeviceToDevice, st->stream));
        return;
    }
    NCCL_CHECK(ncclAllGather(part.data, full.data, n, ncclFloat, (ncclComm_t)st->nccl, st->stream));
}

void cu_comm_install(be_backend *be)
{
    be->comm_init = cu_comm_init;
    be->allreduce_sum = cu_allreduce_sum;
    be->reduce_scatter_sum = cu_reduce_scatter_sum;
    be->all_gather = cu_all_gather;
}

void cu_comm_free(cu_state *st)
{
    if (st->nccl) ncclCommDestroy((ncclComm_t)st->nccl);
    st->nccl = NULL;
    if (st->host_comm) {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Comm_free((MPI_Comm *)st->host_comm);
        free(st->host_comm);
        st->host_comm = NULL;
    }
    free(st->host_stage);
    st->host_stage = NULL;
}
