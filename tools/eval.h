/* Evaluation of a trained synthesis model (behind `clsynth eval` and
 * `clsynth ablate`): synthesizes the validation split and measures
 *   - mIoU and pixel accuracy of the evaluation segmenter (nets/segmenter.h)
 *     on the synthesized images against the input label maps, and the same on
 *     the real images (the ceiling on exactly these crops);
 *   - the Frechet distance between Gaussians fitted to the segmenter's
 *     embeddings (8 nf dims) of real and synthesized images ("segmenter
 *     Frechet distance"; not FID: there is no Inception network here);
 *   - the spectral distance between the azimuthally averaged power spectra
 *     (clFFT) of real and synthesized images, overall and in the upper half of
 *     the frequencies (nets/spectrum.h).
 * Writes DIR/eval.json, DIR/eval.md, DIR/eval_spectrum.csv (radial log10
 * power, real and synthesized), DIR/eval_grid.png (label | synthesized | real
 * of the first samples) and DIR/eval_samples.ckpt (those samples as float
 * tensors "label", "real", "fake", for side-by-side grids). */
#ifndef CLSYNTH_TOOLS_EVAL_H
#define CLSYNTH_TOOLS_EVAL_H

#include "clcore/context.h"
#include "clcore/error.h"

typedef struct clsynth_eval_args {
    const char *checkpoint;  /* model checkpoint (required) */
    const char *segmenter;   /* segmenter checkpoint (required) */
    const char *out_dir;     /* results folder (NULL: the checkpoint's folder) */
    const char *dataroot;    /* override of the model's --dataroot (NULL: keep) */
    int max_images;          /* 0 = the whole validation split */
    int batch;               /* 0 = 4 */
    int samples;             /* rows of the grid / samples kept (0 = 4) */
    int quiet;               /* no progress lines */
} clsynth_eval_args;

typedef struct clsynth_eval_result {
    int images;
    int height, width;
    double miou, accuracy;           /* segmenter on synthesized images */
    double miou_real, accuracy_real; /* segmenter on the real images */
    int classes_present;
    double frechet;                  /* segmenter-feature Frechet distance */
    int feature_dim;
    double spectral, spectral_high;  /* mean |delta log10 power|: all bins / upper half */
    double seconds;                  /* wall time of the evaluation */
} clsynth_eval_result;

int clsynth_eval_run(clsynth_ctx *ctx, const clsynth_eval_args *a, clsynth_eval_result *r, clsynth_err *err);

/* Reads the numbers of an eval.json back into *r (tools/eval_load.c); -1 when
 * one is missing. */
int clsynth_eval_load(const char *path, clsynth_eval_result *r);

#endif
