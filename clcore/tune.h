/* Run-time view of the tuning database: ops ask it for the tuned -D options,
 * local size and algorithm of a kernel at a shape class. The tuner that fills
 * the database lives in clcore/tuner.c; this lookup must cost nothing
 * measurable (hash table in memory, loaded once per context). */
#ifndef CLSYNTH_TUNE_H
#define CLSYNTH_TUNE_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"

typedef struct clsynth_tune_entry {
    char options[256]; /* compile-time tunables, e.g. "-DTS=16 -DWPT=4" ("" = defaults) */
    size_t local[3];   /* local size; local[0] == 0 = launch helper's default */
    int algo;          /* algorithm choice for multi-algorithm ops (0 = default) */
} clsynth_tune_entry;

/* Fills *out and returns true when the database has (kernel, shape_key) for
 * this device; false (and *out untouched) otherwise. */
bool clsynth_tune_lookup(clsynth_ctx *ctx, const char *kernel, const char *shape_key,
                         clsynth_tune_entry *out);

#endif
