/* The main job's report folder: loss curves (PNG plot from the run's
 * losses.csv), the newest training sample grid, the synthesized validation
 * split and an index.html tying them together. */
#ifndef CLSYNTH_REPORT_H
#define CLSYNTH_REPORT_H

#include "clcore/context.h"
#include "clcore/error.h"
#include "tools/train_loop.h"

typedef struct clsynth_report_info {
    const char *report_dir;   /* written */
    const char *run_dir;      /* the training run (losses.csv, web/, params.txt) */
    const char *val_dir;      /* results folder of the synthesized validation split (relative to report_dir) */
    const char *dataset;      /* dataset folder, for the text */
    const clsynth_ctx *ctx;   /* device identity */
    const clsynth_train_result *train;
    int val_images;
} clsynth_report_info;

int clsynth_report_write(const clsynth_report_info *r, clsynth_err *err);

#endif
