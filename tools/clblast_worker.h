/* CLBlast GEMM measurements in a child process: every parameter set is a new
 * CLBlast program kept in memory for the life of the process (CLBlast's own
 * tuner grew past 23 GB on PoCL), so clsynth measures each set in the
 * clsynth binary run again in worker mode (`tune --clblast-worker`), under an
 * address-space limit (setrlimit) and a timeout; the worker prints
 * "shape <i> <ms> <error>" lines and "ok". Parameter sets travel as their
 * descriptors' -D options and are checked like database entries. */
#ifndef CLSYNTH_TOOLS_CLBLAST_WORKER_H
#define CLSYNTH_TOOLS_CLBLAST_WORKER_H

#include <stddef.h>

#include "clcore/clblast_tune.h"

typedef struct clsynth_clblast_worker {
    const char *exe;            /* program to run in worker mode (NULL: /proc/self/exe) */
    const char *const *argv;    /* arguments that select worker mode, e.g. {"tune", "--clblast-worker"} */
    int argc;
    size_t mem_limit;           /* address-space limit of the child (0: 6 GiB) */
    double timeout_s;           /* per worker run (0: 300) */
} clsynth_clblast_worker;

/* A clsynth_clblast_measure_fn (clcore/clblast_tune.h); user is a
 * clsynth_clblast_worker. */
int clsynth_clblast_measure_in_worker(void *user, clsynth_ctx *ctx, const clsynth_gemm_shape *shapes, size_t n,
                                      const clsynth_clblast_params *params, int repeats, double *ms, char *why,
                                      size_t why_len);

/* The same, with a failure recorded in ctx->err ("CLBlast GEMM measurement
 * failed: ..."). Returns 0 or -1. */
int clsynth_clblast_measure(clsynth_ctx *ctx, const clsynth_gemm_shape *shapes, size_t n,
                            const clsynth_clblast_params *params, int repeats, const clsynth_clblast_worker *worker,
                            double *ms);

/* Worker mode: argv after the selecting arguments. Returns the exit status. */
int clsynth_clblast_worker_main(int argc, char **argv);

#endif
