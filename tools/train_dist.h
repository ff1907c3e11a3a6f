/* What the training loop (tools/train_loop.c) needs to run as one of the
 * ranks of a data-parallel job (ctx->comm, clcore/comm.h). With one process
 * every function gives the local answer and communicates nothing.
 *
 *   every iteration, first: the ranks agree whether to stop (a signal on any
 *     rank, or rank 0's time budget), so they all run the same iterations;
 *   after each step: the losses are averaged, so rank 0 logs those of the
 *     global batch (what one process with the global batch would log);
 *   rank 0 alone writes the run folder, and records the world in world.txt;
 *   at the end of the setup every rank, failed or not, reports whether its
 *   setup worked, so a refusal (rank 0's decisions on the run folder) or a
 *   failure of one rank stops every rank in order, not by aborting the job. */
#ifndef CLSYNTH_TOOLS_TRAIN_DIST_H
#define CLSYNTH_TOOLS_TRAIN_DIST_H

#include <stdbool.h>

#include "clcore/context.h"
#include "clcore/error.h"
#include "nets/model.h"
#include "nets/options.h"

typedef struct clsynth_stop_vote {
    bool stop;
    int signal;      /* the signal that stopped the run, 0 for the budget */
    int signal_rank; /* the first rank that received it */
} clsynth_stop_vote;

/* local_signal: this rank's pending signal (0 if none); budget_over: this
 * rank's time budget is spent (only rank 0's counts). */
int clsynth_train_vote_stop(clsynth_ctx *ctx, int local_signal, bool budget_over, clsynth_stop_vote *out);

/* Averages the step's losses over the ranks. */
int clsynth_train_average_losses(clsynth_ctx *ctx, clsynth_losses *l);

/* Collective: every rank passes whether its part failed. *first_failed
 * receives the first rank that failed, or -1 when none did (one process: 0
 * or -1). Returns -1 (ctx->err set) only when the exchange itself fails. */
int clsynth_train_agree(clsynth_ctx *ctx, bool failed, int *first_failed);

/* Rank 0 writes <run_dir>/world.txt (world size, batch per rank, global
 * batch, every rank's device); on resume it first reads the previous one and
 * prints a notice when the global batch changed (the data order after the
 * resume then differs from an uninterrupted run). Collective. */
int clsynth_train_record_world(clsynth_ctx *ctx, const char *run_dir, const clsynth_options *o, bool resuming,
                               clsynth_err *err);

#endif
