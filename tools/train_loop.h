/* The training loop behind `clsynth train` and the main job: data loader,
 * train steps, progress, loss CSV, sample grids, checkpoints, resume, signals.
 *
 * Run folder: <checkpoints_dir>/<name>/
 *   options.txt   every option (key=value)     params.txt  parameter counts
 *   losses.csv    one row per iteration        web/        sample grids (label | synthesized | real)
 *   latest.ckpt   newest checkpoint            iter_NNNNNNN.ckpt numbered checkpoints (hard links)
 *   train.lock    held while a trainer runs in the folder
 * What resume, --which_epoch and --overwrite do: tools/resume.h, README. */
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
    int stop_signal;      /* 0, or SIGINT/SIGTERM/SIGHUP that stopped the run (checkpoint saved) */
    char run_dir[1100];
    char last_checkpoint[1200]; /* newest good checkpoint (also after an error), "" when none */
    long last_step;             /* its iteration, -1 when none */
} clsynth_train_result;

/* Resolves the dataset options into *o (label_nc, crop size ...), trains and
 * saves. Returns 0 on success (also when stopped by a signal: see
 * res->stop_signal), -1 with err set otherwise; a NaN/Inf loss is an error
 * naming the loss, and the last good checkpoint is left untouched. */
int clsynth_run_training(clsynth_ctx *ctx, clsynth_options *o, clsynth_train_result *res, clsynth_err *err);

/* Installs SIGINT/SIGTERM/SIGHUP handlers that ask the loop to save and
 * stop, and ignores SIGXFSZ (a file-size limit becomes a write error). */
void clsynth_train_install_signals(void);

/* The run options that go together: --overwrite or --continue_train, not
 * both; --which_epoch latest|N, and N only with --continue_train. */
int clsynth_train_check_options(const clsynth_options *o, clsynth_err *err);

#endif
