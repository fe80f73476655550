/* cuda_comm.c — backends layer: the data-parallel ranks' NCCL communicator,
 * set up over MPI (rank 0 makes the id, MPI_Bcast gives it to the others),
 * and the gradient all-reduce on the device. A failure ends the job with a
 * message saying what to check; NCCL_DEBUG=INFO tells more. */
#include "cuda_check.h"
#include "cuda_internal.h"
#include "err.h"
#include "log.h"

#include <mpi.h>
#include <nccl.h>

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

static int cu_comm_init(be_backend *be, void *mpi_comm)
{
    cu_state *st = cu_st(be);
    MPI_Comm comm = *(MPI_Comm *)mpi_comm;
    int rank, size;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return ERR("NCCL set-up: the MPI communicator is not usable");
    if (size == 1 || st->nccl) return 0;
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

static void cu_allreduce_sum(be_backend *be, be_mat x)
{
    cu_state *st = cu_st(be);
    if (!st->nccl) return; /* one rank */
    if (x.rows > 1 && x.ld != x.cols) DIE("allreduce_sum: needs a packed matrix");
    NCCL_CHECK(ncclAllReduce(x.data, x.data, (size_t)(x.rows * x.cols), ncclFloat, ncclSum,
                             (ncclComm_t)st->nccl, st->stream));
}

static void cu_reduce_scatter_sum(be_backend *be, be_mat full, be_mat part)
{
    cu_state *st = cu_st(be);
    size_t n = (size_t)(part.rows * part.cols);
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
}
