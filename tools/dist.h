/* The processes of a data-parallel run (`mpirun -np K clsynth train ...`):
 * rank, size, local rank on the node, the device each rank uses, and the
 * transport behind ctx->comm (clcore/comm.h).
 *
 * MPI is optional (CMake option CLSYNTH_MPI): with it compiled in and the
 * process started by an MPI launcher (mpirun/mpiexec/srun set
 * OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK or MV2_COMM_WORLD_SIZE), MPI is
 * initialized and the ranks train together; otherwise the process is rank 0
 * of 1 and nothing changes. Without MPI compiled in, an MPI launch of more
 * than one process is refused (the copies would train separately into one
 * run folder).
 *
 * A rank that fails stops every rank: clsynth_dist_abort prints the rank and
 * the cause, then MPI_Abort ends the job (mpirun also names a rank that died
 * of a signal, and ends the others within about a second). */
#ifndef CLSYNTH_TOOLS_DIST_H
#define CLSYNTH_TOOLS_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/comm.h"
#include "clcore/context.h"
#include "clcore/error.h"

typedef struct clsynth_dist {
    int rank, size;             /* in the job */
    int local_rank, local_size; /* on this node (MPI_COMM_TYPE_SHARED) */
    bool mpi;                   /* MPI is initialized */
    clsynth_comm comm;          /* what ctx->comm points at when size > 1 */
} clsynth_dist;

/* One line for --help: whether MPI is compiled in, and which library. */
const char *clsynth_dist_build_info(void);

/* Processes announced by an MPI launcher in the environment: 0 when not
 * launched by one (PMIx alone: 1, size unknown); *var names the variable. */
int clsynth_dist_launcher_size(const char **var);

/* Initializes MPI when compiled in and launched by an MPI launcher; else
 * rank 0 of 1. Returns -1 with err set when the launch cannot work. */
int clsynth_dist_init(clsynth_dist *d, clsynth_err *err);
/* Gives ctx the communicator (nothing to do for one process). */
void clsynth_dist_attach(clsynth_dist *d, clsynth_ctx *ctx);
/* Detaches from ctx (may be NULL) and finalizes MPI. */
void clsynth_dist_finalize(clsynth_dist *d, clsynth_ctx *ctx);

/* Prints "clsynth <cmd>: rank R of K (pid P): <msg>" to stderr and, with more
 * than one rank, stops every rank of the job (does not return then).
 * Returns `code` for one process. */
int clsynth_dist_abort(clsynth_dist *d, const char *cmd, int code, const char *msg);

/* The device a local rank uses, from --device:
 *   ""            every rank: the default device (CLSYNTH_DEVICE, else first GPU ...);
 *   "rank"        local rank i: device index i;
 *   "a,b,c"       local rank i: the i-th entry (an index or a name part);
 *   anything else every rank: that device.
 * A list shorter than the ranks on the node is an error naming both. */
int clsynth_dist_device_spec(const char *spec, int local_rank, int local_size, char *out, size_t cap,
                             clsynth_err *err);

#endif
