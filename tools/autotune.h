/* Tuning what a run has just looked up: the shared part of `clsynth tune`
 * (which records one synthetic training step and one inference first) and
 * `clsynth train --autotune S` (which records its own first step, then tunes
 * and trains on: cuDNN's benchmark mode, bounded). */
#ifndef CLSYNTH_AUTOTUNE_H
#define CLSYNTH_AUTOTUNE_H

#include <stdbool.h>
#include <stdio.h>

#include "clcore/context.h"
#include "clcore/error.h"

typedef struct clsynth_autotune_opts {
    double budget_s;       /* the whole run, counted from started_s */
    double started_s;      /* clsynth_now_s() when the budget began (recording included) */
    float clblast_share;   /* of the budget left for CLBlast's GEMM parameters (default 0.35) */
    int repeats;           /* timed runs per candidate */
    bool retune, no_clblast;
    bool progress_bar;     /* \r progress lines on stderr (a terminal) */
    const char *kernels;   /* NULL, or "KEY,KEY...": only the jobs of those kernel descriptors */
    FILE *out;             /* what it does, one line each (stdout) */
} clsynth_autotune_opts;

void clsynth_autotune_opts_default(clsynth_autotune_opts *o);

/* Tunes every (kernel, shape) the database's recorder noted (and CLBlast's
 * GEMM for the recorded convolutions' GEMM shapes, in a worker process)
 * within the budget; the database is saved after every job, so a second
 * run over the same shapes finds them done and tunes nothing. Returns 0, or
 * -1 with the message in ctx->err. */
int clsynth_autotune_recorded(clsynth_ctx *ctx, const clsynth_autotune_opts *o);

/* `clsynth train --autotune S`: call _begin before the run's first training
 * step (the recorder notes what the step looks up) and _end after it, which
 * tunes those shapes within budget_s, gives the tuner's buffers back to the
 * device and sets *spent_s (to leave out of the run's timings). A tuning
 * failure is a warning: training goes on with what was tuned. */
void clsynth_autotune_first_step_begin(clsynth_ctx *ctx);
void clsynth_autotune_first_step_end(clsynth_ctx *ctx, double budget_s, double *spent_s);

/* The number of MPI ranks this process was started among (from the
 * launchers' environment: OMPI_COMM_WORLD_SIZE of Open MPI's mpirun, PMI_SIZE
 * of MPICH's, Intel MPI's and Slurm's srun); 1 without MPI. */
int clsynth_mpi_world_size(void);

#endif
