/* The training loop behind `clsynth train` and the main job: data loader,
 * train steps, progress, loss CSV, sample grids, checkpoints, resume, signals.
 *
 * Run folder: <checkpoints_dir>/<name>/
 *   options.txt   every option (key=value)     params.txt  parameter counts
 *   losses.csv    one row per iteration        web/       sample grids (label | synthesized | real)
 *   latest.ckpt   newest checkpoint            iter_NNNNNNN.ckpt numbered checkpoints
 *   world.txt     the processes of the run (world size, batch per rank, global batch, devices)
 *
 * Data-parallel (ctx->comm, tools/train_dist.h): every rank runs this loop on
 * its shard of each global batch; rank 0 alone writes the run folder, prints
 * and loads the checkpoint it resumes from, and every rank starts from its
 * model; the ranks stop together. */
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
    int stop_signal;      /* 0, or SIGINT/SIGTERM/SIGUSR1 that stopped the run (checkpoint saved) */
    int stop_rank;        /* the rank that received it (data-parallel runs) */
    char run_dir[1100];
    char last_checkpoint[1200];
} clsynth_train_result;

/* Resolves the dataset options into *o (label_nc, crop size ...), trains and
 * saves. Returns 0 on success (also when stopped by a signal: see
 * res->stop_signal), -1 with err set otherwise; a NaN/Inf loss is an error
 * naming the loss, and the last good checkpoint is left untouched. */
int clsynth_run_training(clsynth_ctx *ctx, clsynth_options *o, clsynth_train_result *res, clsynth_err *err);

/* Installs SIGINT/SIGTERM/SIGUSR1 handlers that ask the loop to save and stop. */
void clsynth_train_install_signals(void);

#endif
