/* The evaluation segmenter: a compact fully convolutional encoder-decoder
 * (U-Net style) trained with softmax cross-entropy on a dataset's real
 * training images, then used to score synthesized images (mIoU, pixel
 * accuracy) and to embed images for the Frechet distance.
 *
 * Architecture (nf = base width, K = label_nc, "cbr" = 3x3 conv, batch norm
 * (affine), ReLU; shapes for an input (N, 3, H, W), H and W multiples of 8):
 *   enc0: cbr 3->nf, cbr nf->nf                       (N, nf,  H,   W)
 *   enc1: cbr nf->2nf stride 2, cbr 2nf->2nf          (N, 2nf, H/2, W/2)
 *   enc2: cbr 2nf->4nf stride 2, cbr 4nf->4nf         (N, 4nf, H/4, W/4)
 *   enc3: cbr 4nf->8nf stride 2, cbr 8nf->8nf         (N, 8nf, H/8, W/8)  <- features
 *   dec2: cbr [up2x(enc3), enc2] 12nf->4nf            (N, 4nf, H/4, W/4)
 *   dec1: cbr [up2x(dec2), enc1]  6nf->2nf            (N, 2nf, H/2, W/2)
 *   dec0: cbr [up2x(dec1), enc0]  3nf->nf             (N, nf,  H,   W)
 *   cls:  1x1 conv nf->K with bias                    (N, K,   H,   W) logits
 * up2x is bilinear (align_corners false). The embedding for the Frechet
 * distance is enc3 averaged over space: 8nf values per image (the segmenter's
 * feature space; the distance is *not* FID: no Inception network).
 * Input images in [-1, 1]; the ignore label (don't care, 255) is skipped by
 * the loss. Init: conv weights xavier normal with gain sqrt(2) (He-like,
 * ReLU), biases 0, BN gamma 1 / beta 0. Optimizer: Adam (0.9, 0.999). */
#ifndef CLSYNTH_NETS_SEGMENTER_H
#define CLSYNTH_NETS_SEGMENTER_H

#include <stdbool.h>
#include <stdint.h>

#include "clcore/context.h"
#include "clcore/params.h"
#include "clcore/tensor.h"
#include "io/dataset.h"
#include "nets/metrics.h"

typedef struct clsynth_segmenter_cfg {
    int label_nc;   /* classes K (>= 2) */
    int nf;         /* base width (default 16) */
    int ignore;     /* ground-truth value skipped by loss and scores (255) */
    float lr;       /* Adam learning rate (default 1e-3) */
} clsynth_segmenter_cfg;

void clsynth_segmenter_cfg_defaults(clsynth_segmenter_cfg *c);

typedef struct clsynth_segmenter clsynth_segmenter;

/* Declares, allocates and initializes the network (seed -> weights). NULL with
 * ctx->err set on failure. */
clsynth_segmenter *clsynth_segmenter_create(clsynth_ctx *ctx, const clsynth_segmenter_cfg *cfg,
                                            uint64_t seed);
void clsynth_segmenter_free(clsynth_segmenter *s);

const clsynth_segmenter_cfg *clsynth_segmenter_config(const clsynth_segmenter *s);
clsynth_param_group *clsynth_segmenter_group(clsynth_segmenter *s);
/* Dimension of the embedding (8 nf). */
int clsynth_segmenter_feature_dim(const clsynth_segmenter *s);
/* Parameters (trainable elements). */
size_t clsynth_segmenter_num_params(const clsynth_segmenter *s);
/* Training steps taken (Adam step count). */
long clsynth_segmenter_steps(const clsynth_segmenter *s);

/* Forward on a device image (N, 3, H, W) -> logits (N, K, H, W); when
 * features is not NULL it receives enc3 (N, 8nf, H/8, W/8). Activations
 * (released with the context's activations). */
clsynth_tensor *clsynth_segmenter_forward(clsynth_segmenter *s, clsynth_tensor *image, bool training,
                                          clsynth_tensor **features);

/* One Adam step on a host batch: image (n, 3, h, w) in [-1, 1], label (n, h, w)
 * class ids (ignore allowed). loss (may be NULL) gets the mean cross-entropy. */
int clsynth_segmenter_train_step(clsynth_segmenter *s, const float *image, const int32_t *label, int n,
                                 int h, int w, float *loss);

/* Inference (running batch-norm statistics, no tape) on a host batch:
 * logits (n, K, h, w) and/or features (n, 8nf) (either may be NULL). */
int clsynth_segmenter_predict(clsynth_segmenter *s, const float *image, int n, int h, int w,
                              float *logits, float *features);

/* Scores the segmenter on the real images of a dataset split (read in file
 * order, preprocessed as the dataset's options say, batches of `batch`):
 * adds every pixel to conf (k = label_nc, ignore = the don't-care value) and,
 * when feats is not NULL, every image's embedding. max_images 0 = all.
 * Errors go to ctx. Returns the number of images scored, or -1. */
int clsynth_segmenter_score_dataset(clsynth_segmenter *s, const clsynth_dataset *ds, int batch,
                                    int max_images, clsynth_confusion *conf, clsynth_feature_stats *feats);

/* Checkpoint (io/checkpoint.h format): config "kind=segmenter", label_nc, nf,
 * ignore, lr; every parameter and buffer by name, plus the Adam moments and
 * step so training can resume. */
int clsynth_segmenter_save(clsynth_segmenter *s, const char *path, const char *extra_config);
clsynth_segmenter *clsynth_segmenter_load(clsynth_ctx *ctx, const char *path);

#endif
