/* Synthesis from a folder of label maps (behind `clsynth test` and the main
 * job's report): every *.png in label_dir → one synthesized PNG, with the real
 * image beside it when image_dir has one of the same stem (.png/.jpg/.jpeg).
 *
 * With --use_vae the real image, when there is one, is encoded and z = mu +
 * eps·sigma is sampled (the authors' test path); without one, or with
 * z_random, z is drawn from N(0, 1).
 *
 * float_dir: for each image also <float_dir>/<stem>.f32.ckpt, a file in the
 * checkpoint container format (io/checkpoint.h) holding the generator output
 * before 8-bit quantization and what it was computed from, all float32 NCHW:
 *   "fake"   (1, 3, H, W)  tanh output in (-1, 1)
 *   "labels" (1, 1, H, W)  class ids after preprocessing (255 = don't care)
 *   "edges"  (1, 1, H, W)  instance edges (absent with --no_instance)
 *   "real"   (1, 3, H, W)  the image in [-1, 1] (only when one was encoded)
 *   "z", "mu", "logvar" (1, z_dim, 1, 1)  with --use_vae (mu/logvar when encoded)
 * config: "format=clsynth-test-float", "checkpoint=<model file>",
 * "z=encoded|random|none". */
#ifndef CLSYNTH_SYNTHESIZE_H
#define CLSYNTH_SYNTHESIZE_H

#include <stdbool.h>

#include "clcore/context.h"
#include "nets/model.h"

typedef struct clsynth_synth_dirs {
    const char *label_dir;    /* required */
    const char *image_dir;    /* optional */
    const char *instance_dir; /* optional; without it instance edges are zero */
    const char *results_dir;  /* required */
    const char *title;        /* index.html title */
    const char *float_dir;    /* optional: float outputs (see above) */
    const char *checkpoint;   /* optional: named in the float files' config */
    bool z_random;            /* --use_vae: z from N(0, 1) even with a real image */
} clsynth_synth_dirs;

/* Returns the number of images written, or -1 with err set. */
int clsynth_synthesize_folder(clsynth_ctx *ctx, clsynth_model *m, const clsynth_synth_dirs *d, clsynth_err *err);

#endif
