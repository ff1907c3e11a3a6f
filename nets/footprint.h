/* Device memory of one training step, estimated before the first step (see
 * nets/footprint.c for how: one step of a throwaway model at the smallest
 * legal size, scaled). */
#ifndef CLSYNTH_NETS_FOOTPRINT_H
#define CLSYNTH_NETS_FOOTPRINT_H

#include <stddef.h>

#include "clcore/context.h"
#include "nets/options.h"

typedef struct clsynth_step_memory {
    double bytes;     /* estimated device bytes of a step of o */
    size_t ref_bytes; /* measured pool peak of the reference step */
    int ref_h, ref_w; /* reference image size */
    int ref_batch;    /* and batch */
    double scale;     /* (batch H W) / (ref_batch ref_h ref_w) */
} clsynth_step_memory;

/* Runs the reference step (a second model exists meanwhile: call it before
 * creating the real one). o needs label_nc and crop_size resolved. */
int clsynth_step_memory_estimate(clsynth_ctx *ctx, const clsynth_options *o, clsynth_step_memory *est,
                                 clsynth_err *err);

/* The estimate against the device's global memory: over it is an error that
 * names the size, the estimate, the device's memory and the options to lower
 * (--crop_size, --batchSize). */
int clsynth_step_memory_check(clsynth_ctx *ctx, const clsynth_options *o, clsynth_step_memory *est,
                              clsynth_err *err);

#endif
