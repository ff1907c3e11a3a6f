/* The CC-FPSE model (and its ablation variants): generator G (with the VAE
 * encoder E inside G's parameter group, names "G.E.*", stepped together as in
 * SPADE), discriminator D, optional VGG19 loss network, the training step and
 * checkpoints.
 *
 * Use:
 *   clsynth_model *m = clsynth_model_create(ctx, &opt, &err);
 *   for each epoch: clsynth_model_set_epoch(m, epoch);
 *     for each batch:
 *       seg = clsynth_model_seg(ctx, m, labels, edges);      (N, snc, H, W)
 *       clsynth_train_step(ctx, m, seg, real, &losses);
 *   clsynth_model_save(ctx, m, path, step, epoch, rng, &err);
 *
 * Every function reports errors through ctx (ctx->failed, ctx->err) or err;
 * nothing prints. */
#ifndef CLSYNTH_NETS_MODEL_H
#define CLSYNTH_NETS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "clcore/context.h"
#include "clcore/params.h"
#include "clcore/tensor.h"
#include "nets/options.h"

typedef struct clsynth_model clsynth_model;

/* Losses of one step, weighted as they enter the totals (SPADE's log names). */
typedef struct clsynth_losses {
    float G_GAN;      /* hinge, averaged over the score maps */
    float G_GAN_Feat; /* lambda_feat · feature matching (0 with --no_ganFeat_loss) */
    float G_VGG;      /* lambda_vgg · VGG loss (0 without VGG weights) */
    float KLD;        /* lambda_kld · KL (0 without --use_vae) */
    float D_real;
    float D_fake;
} clsynth_losses;

/* Builds G (and E), D, their parameter groups, initializes the weights
 * (xavier normal gain 0.02 seeded from o->seed, biases 0, norm gammas 1,
 * spectral-norm u random unit vectors) and, when o->vgg_weights names a file
 * and not o->no_vgg_loss, loads VGG19. Sets the learning rates of epoch 1.
 * The options need label_nc and crop_size resolved (non-zero). */
clsynth_model *clsynth_model_create(clsynth_ctx *ctx, const clsynth_options *o, clsynth_err *err);
void clsynth_model_free(clsynth_ctx *ctx, clsynth_model *m);

const clsynth_options *clsynth_model_options(const clsynth_model *m);
/* "G" (G and E), "D". */
clsynth_param_group *clsynth_model_group(clsynth_model *m, const char *which);
/* Trainable parameter counts: G without E, D, E (0 without --use_vae). */
void clsynth_model_param_counts(const clsynth_model *m, size_t *g, size_t *d, size_t *e);
/* Parameter counts of the model o describes, without allocating it. */
int clsynth_model_count_params(clsynth_ctx *ctx, const clsynth_options *o, size_t *g, size_t *d, size_t *e,
                               clsynth_err *err);
/* One line the caller may print (e.g. "VGG loss skipped: ..."), or "" . */
const char *clsynth_model_notice(const clsynth_model *m);

/* labels (N, 1, H, W) class ids as floats (don't care = dontcare_value),
 * edges (N, 1, H, W) instance edges or NULL with --no_instance →
 * seg (N, semantic_nc, H, W): one-hot [+ don't-care channel] [+ edge channel].
 * An activation (released with the others; keep it with clsynth_tensor_keep). */
clsynth_tensor *clsynth_model_seg(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *labels,
                                  clsynth_tensor *edges);

/* Synthesizes images (N, 3, H, W) in (-1, 1) from seg: batch norm with its
 * running statistics, spectral-norm vectors not updated. With --use_vae, z
 * is encoded from real when given, else drawn from N(0, 1). Call it between
 * clsynth_no_grad_begin/end; the result is an activation. */
clsynth_tensor *clsynth_model_generate(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *seg,
                                       clsynth_tensor *real);
/* As clsynth_model_generate, and hands back the z the generator got and the
 * encoder's mu and logvar (N, z_dim, 1, 1) (each NULL where there is none;
 * any out pointer may be NULL). z = mu + eps · exp(logvar / 2) when encoded:
 * the authors' test path. */
clsynth_tensor *clsynth_model_generate_z(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *seg,
                                         clsynth_tensor *real, clsynth_tensor **z, clsynth_tensor **mu,
                                         clsynth_tensor **logvar);
/* Restarts the model's noise (the VAE's eps and random z) from seed: the k-th
 * draw after this call is the same on every run and device. */
void clsynth_model_set_noise_seed(clsynth_model *m, long seed);

/* One training iteration (nets/trainer.c), in the authors' order:
 *   G step: D frozen; fake = G(seg) with grad; D(fake); D(real) without grad
 *           for feature matching; hinge G + feature matching + VGG + KL;
 *           backward; Adam on G (and E).
 *   D step: fake = G(seg) without grad (the updated G); D on fake and on real;
 *           hinge D loss; backward; Adam on D.
 * Batch norm uses batch statistics; each G forward and each D pass over
 * fake + real does one spectral-norm power iteration (the real pass reuses
 * the u, v the fake pass left, as the authors' single pass over the
 * concatenated batch). seg and real may be activations or persistent tensors: they
 * are copied into model-owned tensors first, then every activation of the
 * context is released (the inputs too when they are activations), as at the
 * end of the step. Each loss is read back and checked: a NaN/Inf fails the step with a
 * message naming the loss, before the update of the network it belongs to
 * (a failed G step leaves both networks unchanged). */
int clsynth_train_step(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real,
                       clsynth_losses *out);

/* Learning rates for a 1-based epoch (TTUR split, linear decay; see options.h). */
void clsynth_model_set_epoch(clsynth_model *m, int epoch);
int clsynth_model_epoch(const clsynth_model *m);

/* Checkpoints (io/checkpoint.h, version 2): config = the options text plus
 * "state.*" lines (epoch, Adam step counts, the model's RNG counter); tensors
 * = every parameter ("param") and buffer ("buffer") of G and D by full name
 * (a spectral-normalized weight "X.w" has "X.u" (1, cout, 1, 1) and "X.v"
 * (1, cin·k·k, 1, 1) beside it), and the flat Adam moments "G.adam_m",
 * "G.adam_v", "D.adam_m", "D.adam_v".
 * rng is the caller's (data loader) RNG state, stored and given back. */
int clsynth_model_save(clsynth_ctx *ctx, clsynth_model *m, const char *path, uint64_t step, int epoch,
                       const uint64_t rng[4], clsynth_err *err);
/* Loads a checkpoint into m (weights, buffers, Adam state, epoch, and the
 * run's --seed with the model's noise counter). A checkpoint of another variant is refused
 * naming the first differing option; a missing tensor or another shape names
 * the tensor; a NaN or Inf anywhere (weights, buffers, Adam moments) is refused
 * naming the tensor and the element. step/epoch/rng may be NULL. A file
 * without Adam moments (e.g. from tools/import_ccfpse.py) starts Adam from
 * zero moments, when its state.<group>.adam_step is 0.
 * Version 1 files (before the spectral-norm v was stored) load too: each v is
 * recomputed from its u, which is the sigma those builds used; and the CC
 * blocks' pointwise convs, spectral-normalized by default then, become plain
 * convs holding w / sigma (the same function at inference; their Adam
 * moments are kept as they were). */
int clsynth_model_load(clsynth_ctx *ctx, clsynth_model *m, const char *path, uint64_t *step, int *epoch,
                       uint64_t rng[4], clsynth_err *err);
/* Reads only the options stored in a checkpoint (over defaults), e.g. to
 * build the matching model for `clsynth test`. */
int clsynth_model_checkpoint_options(const char *path, clsynth_options *o, clsynth_err *err);

#endif
