/* MPI transport for clcore/comm.h and the job layout (see tools/dist.h).
 * Only the main thread calls MPI (the data loader's thread never does). */
#include "tools/dist_mpi.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

/* Chunks stay below INT_MAX elements (MPI counts are ints). */
#define MPI_CHUNK ((size_t)1 << 30)

static int mpi_fail(clsynth_comm *c, const char *call, int rc)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(rc, s, &n) != MPI_SUCCESS)
        snprintf(s, sizeof s, "MPI error %d", rc);
    snprintf(c->err, sizeof c->err, "%s: %s", call, s);
    return -1;
}

static MPI_Datatype mpi_type(clsynth_comm_type t)
{
    return t == CLSYNTH_COMM_F32 ? MPI_FLOAT : t == CLSYNTH_COMM_F64 ? MPI_DOUBLE : MPI_INT64_T;
}

static int m_allreduce(clsynth_comm *c, void *buf, size_t count, clsynth_comm_type type)
{
    const size_t esz = type == CLSYNTH_COMM_F32 ? 4 : 8;
    for (size_t off = 0; off < count; off += MPI_CHUNK) {
        size_t n = count - off < MPI_CHUNK ? count - off : MPI_CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * esz, (int)n, mpi_type(type), MPI_SUM,
                               MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return mpi_fail(c, "MPI_Allreduce", rc);
    }
    return 0;
}

static int m_allgather(clsynth_comm *c, const void *send, void *recv, size_t bytes)
{
    if (bytes > INT_MAX)
        return snprintf(c->err, sizeof c->err, "all-gather of %zu bytes per rank is too large", bytes), -1;
    int rc = MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(c, "MPI_Allgather", rc);
}

static int m_broadcast(clsynth_comm *c, void *buf, size_t bytes, int root)
{
    for (size_t off = 0; off < bytes; off += MPI_CHUNK) {
        size_t n = bytes - off < MPI_CHUNK ? bytes - off : MPI_CHUNK;
        int rc = MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return mpi_fail(c, "MPI_Bcast", rc);
    }
    return 0;
}

static const clsynth_comm_ops mpi_ops = { m_allreduce, m_allgather, m_broadcast };

int clsynth_dist_mpi_init(clsynth_dist *d, clsynth_err *err)
{
    int provided = 0, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return clsynth_fail(err, "MPI_Init_thread failed (error %d)", rc);
    d->mpi = true;
    /* errors come back as codes with a message, not as an abort inside MPI */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &d->local_rank);
        MPI_Comm_size(node, &d->local_size);
        MPI_Comm_free(&node);
    } else {
        d->local_rank = d->rank;
        d->local_size = d->size;
    }
    d->comm.rank = d->rank;
    d->comm.size = d->size;
    d->comm.ops = &mpi_ops;
    return 0;
}

void clsynth_dist_mpi_finalize(clsynth_dist *d)
{
    if (d->mpi)
        MPI_Finalize();
    d->mpi = false;
}

void clsynth_dist_mpi_abort(clsynth_dist *d, int code)
{
    if (d->mpi)
        MPI_Abort(MPI_COMM_WORLD, code);
}

const char *clsynth_dist_mpi_library(void)
{
    static char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    if (!lib[0] && MPI_Get_library_version(lib, &n) == MPI_SUCCESS)
        lib[strcspn(lib, "\n")] = 0;
    return lib;
}
