/* The run folder <checkpoints_dir>/<name>/ as a set of files: which
 * checkpoints it holds, who trains in it (a lock), and keeping it whole
 * (temporary files of interrupted saves, moving an old run or the part of a
 * run past a resumed checkpoint aside instead of overwriting it).
 *
 * Checkpoints: latest.ckpt (newest) and iter_NNNNNNN.ckpt (numbered by
 * iteration; the newest is usually the same file as latest.ckpt, a hard link). */
#ifndef CLSYNTH_RUN_DIR_H
#define CLSYNTH_RUN_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "clcore/error.h"

#define CLSYNTH_RUN_PATH_MAX 1200

typedef struct clsynth_run_ckpt {
    char path[CLSYNTH_RUN_PATH_MAX];
    const char *name; /* base name inside path */
    bool is_latest;
    long step;        /* iteration: from the name, or for latest.ckpt from its header (-1: unreadable) */
} clsynth_run_ckpt;

/* latest.ckpt first (when present), then the numbered ones, newest first. */
typedef struct clsynth_run_ckpts {
    int n;
    clsynth_run_ckpt *v;
} clsynth_run_ckpts;

/* Lists the checkpoints of run_dir (a missing folder has none). */
int clsynth_run_ckpts_list(const char *run_dir, clsynth_run_ckpts *l, clsynth_err *err);
void clsynth_run_ckpts_free(clsynth_run_ckpts *l);
/* "latest.ckpt (iteration 120), iter_0000100.ckpt, ..." for messages. */
void clsynth_run_ckpts_describe(const clsynth_run_ckpts *l, char *buf, size_t len);
/* The checkpoint --which_epoch names: "latest" or an iteration N (iter_N.ckpt,
 * or latest.ckpt when it is at N). Returns its index, or -1 with an error
 * that lists what the run holds. */
int clsynth_run_ckpts_select(const clsynth_run_ckpts *l, const char *run_dir, const char *which, clsynth_err *err);

/* Parses --which_epoch: "latest" (*step = -1) or a non-negative integer. */
int clsynth_run_parse_which(const char *which, long *step, clsynth_err *err);

/* Takes an exclusive lock on run_dir/train.lock (released when the process
 * ends, however it ends): a second trainer in the same folder is an error.
 * Returns the lock's file descriptor, or -1. */
int clsynth_run_lock(const char *run_dir, clsynth_err *err);
void clsynth_run_unlock(int fd);

/* Removes the temporary files ("<name>.tmp.XXXXXX") that interrupted saves of
 * this run left behind in run_dir and run_dir/web: only files of the run's own
 * names (checkpoints, losses.csv, options.txt, params.txt, sample grids) and
 * only those last modified before `before`. Says what it removed on `log`.
 * Returns the number removed. */
int clsynth_run_remove_stale_temps(const char *run_dir, time_t before, FILE *log);

/* Renames run_dir to "<run_dir>.old-YYYYmmdd-HHMMSS" (with -2, -3, ... when
 * that exists); *moved_to receives the new name. */
int clsynth_run_move_aside(const char *run_dir, char *moved_to, size_t len, clsynth_err *err);

/* Before resuming from iteration `step` while the run holds later files: moves
 * latest.ckpt (unless it is the checkpoint resumed from), every iter_N.ckpt and
 * web/iter_N.png with N > step, and a copy of losses.csv into
 * run_dir/superseded-YYYYmmdd-HHMMSS/, so that training on from `step` replaces
 * nothing. keep is the checkpoint resumed from. Says what it moved on `log`. */
int clsynth_run_supersede_after(const char *run_dir, long step, const char *keep, FILE *log, clsynth_err *err);

#endif
