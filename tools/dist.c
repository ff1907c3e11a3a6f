/* Job layout, device mapping and failure handling of data-parallel runs
 * (see tools/dist.h); the MPI calls live in tools/dist_mpi.c. */
#include "tools/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef CLSYNTH_HAVE_MPI
#include "tools/dist_mpi.h"
#endif

/* Environment variables MPI launchers set in every process they start. */
static const char *const LAUNCHER_SIZE_VARS[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE" };

int clsynth_dist_launcher_size(const char **var)
{
    for (size_t i = 0; i < sizeof LAUNCHER_SIZE_VARS / sizeof LAUNCHER_SIZE_VARS[0]; i++) {
        const char *v = getenv(LAUNCHER_SIZE_VARS[i]);
        if (v && *v) {
            *var = LAUNCHER_SIZE_VARS[i];
            return atoi(v) > 0 ? atoi(v) : 1;
        }
    }
    if (getenv("PMIX_RANK")) {
        *var = "PMIX_RANK";
        return 1;
    }
    *var = NULL;
    return 0;
}

const char *clsynth_dist_build_info(void)
{
#ifdef CLSYNTH_HAVE_MPI
    static char line[512];
    snprintf(line, sizeof line,
             "MPI compiled in (%s): mpirun -np K clsynth train ... trains over K processes", clsynth_dist_mpi_library());
    return line;
#else
    return "MPI not compiled in: one process (for mpirun -np K, install an MPI, e.g. Debian's libopenmpi-dev "
           "openmpi-bin, and configure again with -DCLSYNTH_MPI=AUTO or ON)";
#endif
}

int clsynth_dist_init(clsynth_dist *d, clsynth_err *err)
{
    memset(d, 0, sizeof *d);
    d->size = d->local_size = 1;
    d->comm.size = 1;
    const char *var;
    int announced = clsynth_dist_launcher_size(&var);
#ifdef CLSYNTH_HAVE_MPI
    if (announced > 0)
        return clsynth_dist_mpi_init(d, err);
    return 0;
#else
    if (announced > 1)
        return clsynth_fail(err, "started by an MPI launcher with %d processes (%s=%s), but this clsynth was built "
                                 "without MPI: every process would train on its own into the same run folder; "
                                 "rebuild with MPI (see clsynth train --help) or run one process",
                            announced, var, getenv(var));
    return 0;
#endif
}

void clsynth_dist_attach(clsynth_dist *d, clsynth_ctx *ctx)
{
    if (ctx)
        ctx->comm = d->size > 1 ? &d->comm : NULL;
}

void clsynth_dist_finalize(clsynth_dist *d, clsynth_ctx *ctx)
{
    if (ctx && ctx->comm == &d->comm)
        ctx->comm = NULL;
    clsynth_comm_release(&d->comm);
#ifdef CLSYNTH_HAVE_MPI
    clsynth_dist_mpi_finalize(d);
#endif
}

int clsynth_dist_abort(clsynth_dist *d, const char *cmd, int code, const char *msg)
{
    if (d->size <= 1) {
        fprintf(stderr, "clsynth %s: %s\n", cmd, msg);
        return code;
    }
    fprintf(stderr, "clsynth %s: rank %d of %d (pid %ld) failed: %s\nclsynth %s: rank %d stops every rank\n", cmd,
            d->rank, d->size, (long)getpid(), msg, cmd, d->rank);
    fflush(stderr);
    fflush(stdout);
#ifdef CLSYNTH_HAVE_MPI
    clsynth_dist_mpi_abort(d, code);
#endif
    _exit(code); /* not reached with MPI */
}

int clsynth_dist_device_spec(const char *spec, int local_rank, int local_size, char *out, size_t cap,
                             clsynth_err *err)
{
    if (!spec || !*spec) {
        out[0] = 0;
        return 0;
    }
    if (strcmp(spec, "rank") == 0) {
        snprintf(out, cap, "%d", local_rank);
        return 0;
    }
    if (!strchr(spec, ',')) {
        snprintf(out, cap, "%s", spec);
        return 0;
    }
    int n = 1;
    for (const char *p = spec; *p; p++)
        n += *p == ',';
    if (n < local_size)
        return clsynth_fail(err, "--device '%s' lists %d devices for %d ranks on this node (one per local rank)",
                            spec, n, local_size);
    const char *p = spec;
    for (int i = 0; i < local_rank; i++)
        p = strchr(p, ',') + 1;
    size_t len = strcspn(p, ",");
    if (len == 0)
        return clsynth_fail(err, "--device '%s': entry %d (local rank %d) is empty", spec, local_rank, local_rank);
    snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), p);
    return 0;
}
