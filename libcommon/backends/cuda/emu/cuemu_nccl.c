/* cuemu_nccl.c — backends layer, test support: the NCCL collectives of the
 * CPU emulation (include/nccl.h), carried out with MPI on host memory. */
#include "nccl.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

struct cuemu_nccl {
    MPI_Comm comm;
    int rank, size;
};

const char *ncclGetErrorString(ncclResult_t r)
{
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    }
    return "unknown result code";
}

ncclResult_t ncclGetVersion(int *v)
{
    *v = 0;
    return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    memset(id, 0, sizeof *id);
    memcpy(id->internal, "cuemu", 5);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
    (void)id;
    int inited = 0, size = 0;
    MPI_Initialized(&inited);
    if (!inited) return ncclInvalidUsage;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (nranks != size || rank < 0 || rank >= size) return ncclInvalidArgument;
    struct cuemu_nccl *c = calloc(1, sizeof *c);
    if (!c) return ncclSystemError;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &c->comm) != MPI_SUCCESS) {
        free(c);
        return ncclSystemError;
    }
    c->rank = rank;
    c->size = nranks;
    *comm = c;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    if (!comm) return ncclSuccess;
    MPI_Comm_free(&comm->comm);
    free(comm);
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

static MPI_Datatype mpi_type(ncclDataType_t t) { return t == ncclFloat64 ? MPI_DOUBLE : MPI_FLOAT; }
static MPI_Op mpi_op(ncclRedOp_t op) { return op == ncclMax ? MPI_MAX : MPI_SUM; }

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t s)
{
    (void)s;
    const void *src = send == recv ? MPI_IN_PLACE : send;
    return MPI_Allreduce(src, recv, (int)count, mpi_type(type), mpi_op(op), comm->comm) ==
                   MPI_SUCCESS
               ? ncclSuccess
               : ncclRemoteError;
}

ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t recvcount,
                               ncclDataType_t type, ncclRedOp_t op, ncclComm_t comm,
                               cudaStream_t s)
{
    (void)s;
    size_t esz = type == ncclFloat64 ? 8 : 4, bytes = recvcount * esz * (size_t)comm->size;
    /* NCCL's in-place form has recv inside send: MPI wants separate buffers */
    void *copy = malloc(bytes ? bytes : 1);
    if (!copy) return ncclSystemError;
    memcpy(copy, send, bytes);
    int rc = MPI_Reduce_scatter_block(copy, recv, (int)recvcount, mpi_type(type), mpi_op(op),
                                      comm->comm);
    free(copy);
    return rc == MPI_SUCCESS ? ncclSuccess : ncclRemoteError;
}

ncclResult_t ncclAllGather(const void *send, void *recv, size_t sendcount, ncclDataType_t type,
                           ncclComm_t comm, cudaStream_t s)
{
    (void)s;
    size_t esz = type == ncclFloat64 ? 8 : 4;
    const void *src = (const char *)recv + (size_t)comm->rank * sendcount * esz == send
                          ? MPI_IN_PLACE
                          : send;
    return MPI_Allgather(src, (int)sendcount, mpi_type(type), recv, (int)sendcount,
                         mpi_type(type), comm->comm) == MPI_SUCCESS
               ? ncclSuccess
               : ncclRemoteError;
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t type,
                           int root, ncclComm_t comm, cudaStream_t s)
{
    (void)s;
    size_t esz = type == ncclFloat64 ? 8 : 4;
    if (comm->rank == root && send != recv) memmove(recv, send, count * esz);
    return MPI_Bcast(recv, (int)count, mpi_type(type), root, comm->comm) == MPI_SUCCESS
               ? ncclSuccess
               : ncclRemoteError;
}
