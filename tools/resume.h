/* --continue_train: which checkpoint of a run folder training resumes from,
 * and loading it.
 *
 * --which_epoch latest (the default): latest.ckpt, else - when it is missing or
 * does not load (truncated, corrupt, non-finite values) - the newest numbered
 * checkpoint that loads, saying which and why latest.ckpt was skipped. A folder
 * that holds checkpoints is never restarted from scratch: when none loads, that
 * is an error naming each and why. A checkpoint that cannot be read at all (a
 * directory, a FIFO, no permission) or that was written by another model
 * variant is an error naming it, not skipped.
 * --which_epoch N: iter_N.ckpt exactly; an unknown N lists what exists.
 * Resuming from an iteration older than the run's newest files first moves
 * those files aside (tools/run_dir.h), so training on replaces nothing. */
#ifndef CLSYNTH_RESUME_H
#define CLSYNTH_RESUME_H

#include <stdio.h>

#include "clcore/context.h"
#include "nets/model.h"

typedef struct clsynth_resume_point {
    char path[1200]; /* checkpoint resumed from; "" = the run has none: a new run */
    long step;
    int epoch;
} clsynth_resume_point;

int clsynth_resume_load(clsynth_ctx *ctx, clsynth_model *m, const char *run_dir, const char *which, FILE *msg,
                        clsynth_resume_point *r, clsynth_err *err);

#endif
