/* The training loop behind `clsynth train` and the main job: data loader,
 * train steps, progress, loss CSV, sample grids, checkpoints, resume, signals.
 *
 * Run folder: <checkpoints_dir>/<name>/
 *   options.txt   every option (key=value)     params.txt  parameter counts
 *   losses.csv    one row per iteration        web/        sample grids (label | synthesized | real)
 *   latest.ckpt   newest checkpoint            iter_NNNNNNN.ckpt numbered checkpoints (hard links)
 *   train.lock    held while a trainer runs in the folder
 *   world.txt     the processes of the run (world size, batch per rank, global batch, devices)
 * What resume, --which_epoch and --overwrite do: tools/resume.h, README.
 *
 * Data-parallel (ctx->comm, tools/train_dist.h): every rank runs this loop on
 * its shard of each global batch. Rank 0 alone reads and writes the run
 * folder and prints: it takes every run-safety decision (refusing a run
 * without --continue_train, --overwrite, the checkpoint resumed from and its
 * fallbacks, stale temporary files, the lock, losses.csv), then every rank
 * starts from the model and iteration it broadcasts. The memory estimate runs
 * on every rank for its own device. A setup failure on any rank stops every
 * rank in order; the ranks stop together. */
#ifndef CLSYNTH_TRAIN_LOOP_H
#define CLSYNTH_TRAIN_LOOP_H

#include <stdbool.h>

#include "clcore/context.h"
#include "nets/options.h"

typedef struct clsynth_train_result {
    long iterations;      /* total, including those of a resumed run */
    long new_iterations;  /* this invocation */
    double seconds;       /* wall time of this invocation */
    int epoch;            /* 1-based epoch reached */
    int stop_signal;      /* 0, or SIGINT/SIGTERM/SIGHUP/SIGUSR1 that stopped the run (checkpoint saved) */
    int stop_rank;        /* the rank that received it (data-parallel runs) */
    bool failed_together; /* the error happened during the setup, and every rank returns one (no abort needed) */
    bool failed_elsewhere; /* ... and the cause is another rank's, which reports it */
    char run_dir[1100];
    char last_checkpoint[1200]; /* newest good checkpoint (also after an error; rank 0), "" when none */
    long last_step;             /* its iteration, -1 when none */
} clsynth_train_result;

/* Resolves the dataset options into *o (label_nc, crop size ...), trains and
 * saves. Returns 0 on success (also when stopped by a signal: see
 * res->stop_signal), -1 with err set otherwise; a NaN/Inf loss is an error
 * naming the loss, and the last good checkpoint is left untouched. */
int clsynth_run_training(clsynth_ctx *ctx, clsynth_options *o, clsynth_train_result *res, clsynth_err *err);

/* Installs SIGINT/SIGTERM/SIGHUP/SIGUSR1 handlers that ask the loop to save
 * and stop (mpirun forwards SIGUSR1 to every rank; in a data-parallel run a
 * signal on any rank stops every rank at the same iteration), and ignores
 * SIGXFSZ (a file-size limit becomes a write error). */
void clsynth_train_install_signals(void);

/* The run options that go together: --overwrite or --continue_train, not
 * both; --which_epoch latest|N, and N only with --continue_train. */
int clsynth_train_check_options(const clsynth_options *o, clsynth_err *err);

#endif
