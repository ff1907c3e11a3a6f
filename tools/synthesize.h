/* Synthesis from a folder of label maps (behind `clsynth test` and the main
 * job's report): every *.png in label_dir → one synthesized PNG, with the real
 * image beside it when image_dir has one of the same stem (.png/.jpg/.jpeg). */
#ifndef CLSYNTH_SYNTHESIZE_H
#define CLSYNTH_SYNTHESIZE_H

#include "clcore/context.h"
#include "nets/model.h"

typedef struct clsynth_synth_dirs {
    const char *label_dir;    /* required */
    const char *image_dir;    /* optional */
    const char *instance_dir; /* optional; without it instance edges are zero */
    const char *results_dir;  /* required */
    const char *title;        /* index.html title */
} clsynth_synth_dirs;

/* Returns the number of images written, or -1 with err set. */
int clsynth_synthesize_folder(clsynth_ctx *ctx, clsynth_model *m, const clsynth_synth_dirs *d, clsynth_err *err);

#endif
