/* losses.csv of a run: one row per iteration
 *   iteration,epoch,seconds,G_GAN,G_GAN_Feat,G_VGG,KLD,D_real,D_fake
 * kept consistent with the checkpoints: it is flushed and fsynced before each
 * checkpoint is written (so it always covers the newest checkpoint, even after
 * kill -9), rolled back to the previous checkpoint when a save fails, and on
 * resume the rows past the resumed iteration (written after the checkpoint,
 * before a crash) are dropped, so no iteration appears twice. `seconds`
 * continues across resumed invocations. */
#ifndef CLSYNTH_LOSS_LOG_H
#define CLSYNTH_LOSS_LOG_H

#include <stdio.h>

#include "clcore/error.h"
#include "nets/model.h"

typedef struct clsynth_loss_log {
    FILE *f;
    char path[1200];
    long covered_size;  /* file size that covers the newest checkpoint */
    double seconds0;    /* `seconds` of the last kept row (0 for a new run) */
} clsynth_loss_log;

/* Opens run_dir/losses.csv for appending after iteration `step` (0: a new
 * log, replacing any). Rows past step, a torn last line, or a missing header
 * are repaired by rewriting the file atomically; what was dropped is said on
 * `msg`. */
int clsynth_loss_log_open(clsynth_loss_log *l, const char *run_dir, long step, FILE *msg, clsynth_err *err);
/* Appends a row (buffered). seconds: of this invocation (seconds0 is added). */
void clsynth_loss_log_row(clsynth_loss_log *l, long it, int epoch, double seconds, const clsynth_losses *x);
/* Hands the rows written so far to the OS (for readers of the file; not
 * durable), e.g. at every sample grid. */
void clsynth_loss_log_flush(clsynth_loss_log *l);
/* Makes every row written so far durable (fflush + fsync): call before
 * writing a checkpoint. */
int clsynth_loss_log_sync(clsynth_loss_log *l, clsynth_err *err);
/* The checkpoint of the synced rows was saved: they are the new rollback point. */
void clsynth_loss_log_checkpointed(clsynth_loss_log *l);
/* A save failed: drops the rows past the newest checkpoint again. */
int clsynth_loss_log_rollback(clsynth_loss_log *l, clsynth_err *err);
/* Flushes and closes (err may be NULL). */
int clsynth_loss_log_close(clsynth_loss_log *l, clsynth_err *err);

#endif
