/* Options of the model and its training, under the flag names of SPADE /
 * CC-FPSE (see /work/shared/spec/ccfpse.md). The data options (--dataset_mode,
 * --dataroot, --crop_size, ...) live in the embedded io/dataset.h struct, so
 * the io layer reads them directly.
 *
 * Parsing: clsynth_options_defaults → clsynth_options_parse, which applies
 * --preset first (whatever its position) and then every flag in order, so an
 * explicit flag overrides the preset. Flags are `--name value`, `--name=value`
 * or, for switches, `--name` alone. Unknown options and bad values are errors
 * naming the option and the value.
 *
 * Presets (tiny / small / paper):
 *   tiny   64×64 crop, ngf 8, ndf 16, z_dim 64, nhidden 16, batch 2:
 *          trains a visible result on the synthetic street scenes in minutes on
 *          a 2-core CPU device (G 1.9M, D 0.32M parameters; ngf 16 with
 *          nhidden 32 is 7.5M and about 3x slower per step).
 *   small  128×128 crop, ngf 32, ndf 32, z_dim 128, nhidden 64, batch 4.
 *   paper  ngf 64, ndf 64, z_dim 256, nhidden 128 (the paper's
 *          networks), 200 epochs (niter 100 + niter_decay 100), batch 8 (the
 *          authors' 8 GPUs × 1 with synchronized batch norm); 256×256 with
 *          load 286 (ADE20K, COCO), or for --dataset_mode cityscapes 512 wide with
 *          aspect 2 (256×512), load 512 and num_upsampling_layers more.
 *
 * The VAE encoder is --ngf wide unless --nef (> 0) says otherwise: the
 * authors' ConvEncoder uses ngf and ignores its --nef.
 *
 * Optimizer, as the authors (spec "Losses and training"): --lr 0.0002; unless
 * --no_TTUR lr_G = lr / 2 and lr_D = lr * 2 (0.0001 / 0.0004) with Adam
 * β1 = 0, β2 = 0.9 (hard-coded there); with --no_TTUR both networks use lr and
 * β1 = 0.5, β2 = 0.999 (their --beta1 / --beta2 defaults). --beta1 / --beta2
 * default to -1 ("the authors' choice"); a value given explicitly applies in
 * both modes (the authors ignore it under TTUR). During epoch e
 * (1-based) the lr is multiplied by 1 - max(0, e - 1 - niter) / niter_decay
 * (SPADE's linear decay, reaching lr / niter_decay in the last epoch).
 *
 * semantic_nc = label_nc + contain_dontcare_label + (no_instance ? 0 : 1). */
#ifndef CLSYNTH_NETS_OPTIONS_H
#define CLSYNTH_NETS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "clcore/error.h"
#include "io/dataset.h"

typedef struct clsynth_options {
    char preset[16];           /* --preset tiny|small|paper ("" = none) */
    /* data (io layer): dataset_mode, dataroot, label_dir, image_dir, instance_dir,
     * label_nc, no_instance, preprocess_mode, load_size, crop_size, aspect_ratio,
     * no_flip, phase, dontcare_value */
    clsynth_data_opts data;
    int contain_dontcare_label; /* --contain_dontcare_label; -1 = dataset default
                                   (1 for coco and ade20k, else 0) */

    /* generator */
    char netG[16];             /* --netG condconv|spade */
    int ngf;                   /* --ngf 64 */
    int nef;                   /* --nef 0: VAE encoder width, 0 = ngf (the authors') */
    int z_dim;                 /* --z_dim 256 */
    int nhidden;               /* --nhidden 128: hidden width of the weight-prediction
                                  and SPADE nets (the spec's 128) */
    char num_upsampling_layers[8]; /* --num_upsampling_layers normal|more */
    bool use_vae;              /* --use_vae */
    bool no_pyramid;           /* --no_pyramid: weight prediction without top-down */
    bool no_cond_attention;    /* --no_cond_attention: no a1/a2 gates */
    char norm_G[48];           /* --norm_G spectralspadesyncbatch3x3 */
    char norm_E[48];           /* --norm_E spectralinstance */

    /* discriminator */
    char netD[16];             /* --netD fpse|multiscale */
    int ndf;                   /* --ndf 64 */
    int num_D;                 /* --num_D 2 (multiscale) */
    int n_layers_D;            /* --n_layers_D 4 (multiscale) */
    bool no_semantic_embedding; /* --no_semantic_embedding */
    bool no_d_pyramid;         /* --no_d_pyramid */
    bool fpse_plain_enc1;      /* --fpse_plain_enc1: DEVIATION from the spec/reference: FPSE
                                  enc1 is (spectral) conv + bias → LReLU without instance
                                  norm, as PatchGAN's first layer, so D sees absolute colour
                                  and contrast (see nets/discriminator.c) */
    char norm_D[48];           /* --norm_D spectralinstance */

    /* losses */
    float lambda_feat;         /* --lambda_feat 10 */
    float lambda_kld;          /* --lambda_kld 0.05 */
    float lambda_vgg;          /* --lambda_vgg 10 */
    char vgg_weights[CLSYNTH_PATH_MAX]; /* --vgg_weights FILE (see nets/vgg.h) */
    bool no_vgg_loss;          /* --no_vgg_loss */
    bool no_ganFeat_loss;      /* --no_ganFeat_loss */

    /* optimization */
    int batchSize;             /* --batchSize 1 */
    int niter;                 /* --niter 50 */
    int niter_decay;           /* --niter_decay 0 */
    float lr;                  /* --lr 0.0002 */
    float beta1;               /* --beta1 -1 (the authors' choice, clsynth_options_adam_betas) */
    float beta2;               /* --beta2 -1 */
    bool no_TTUR;              /* --no_TTUR */
    bool half_activations;     /* --half_activations: the activations kept for backward stored as
                                  half (fp32 compute); only where the device reports cl_khr_fp16 */
    long seed;                 /* --seed 0 */

    /* run */
    char device[128];          /* --device (index or name substring; "" = default) */
    char name[128];            /* --name experiment */
    char checkpoints_dir[CLSYNTH_PATH_MAX]; /* --checkpoints_dir ./checkpoints */
    bool continue_train;       /* --continue_train */
    char which_epoch[32];      /* --which_epoch latest | N (iteration of iter_N.ckpt) */
    bool overwrite;            /* --overwrite: start over, moving an existing run aside */
    int display_freq;          /* --display_freq 100 (iterations) */
    int print_freq;            /* --print_freq 100 */
    int save_latest_freq;      /* --save_latest_freq 5000 */
    long max_iters;            /* --max_iters 0 = no limit */
    double time_budget;        /* --time_budget seconds, 0 = no limit */
    double autotune;           /* --autotune S: tune the first step's shapes for up to S seconds, then train on
                                  (0 = off; tools/autotune.h) */
} clsynth_options;

void clsynth_options_defaults(clsynth_options *o);

/* Applies a preset on top of the current values ("tiny", "small", "paper");
 * "paper" looks at o->data.dataset_mode (cityscapes or not). */
int clsynth_options_preset(clsynth_options *o, const char *name, clsynth_err *err);

/* Parses argv[0..argc) (no program name): every argument must be an option. */
int clsynth_options_parse(clsynth_options *o, int argc, char **argv, clsynth_err *err);

/* Sets one option by flag name (without "--"); value NULL for switches. */
int clsynth_options_set(clsynth_options *o, const char *name, const char *value, clsynth_err *err);

/* Checks values that depend on each other (crop size divisible by the
 * generator's 2^num_up, image height consistent with aspect_ratio, ...). Data
 * fields still 0 (dataset defaults) are not checked; the model checks them. */
int clsynth_options_validate(const clsynth_options *o, clsynth_err *err);

/* Every option as "key=value\n" lines (malloc'ed; free()). */
char *clsynth_options_to_text(const clsynth_options *o);
/* Reads key=value lines (as to_text writes) over the current values. */
int clsynth_options_from_text(clsynth_options *o, const char *text, clsynth_err *err);

/* Options that define the networks' shapes or computation: a checkpoint
 * written under one value cannot be loaded under another. Returns 0 when
 * a and b agree, else -1 with err naming the first differing option. */
int clsynth_options_same_variant(const clsynth_options *a, const clsynth_options *b,
                                 clsynth_err *err);

/* Derived values. */
int clsynth_options_dontcare(const clsynth_options *o); /* 0 or 1 */
int clsynth_options_semantic_nc(const clsynth_options *o);
int clsynth_options_num_up(const clsynth_options *o);   /* 5 normal, 6 more */
/* Image size: W = crop_size, H = round(crop_size / aspect_ratio). */
void clsynth_options_image_size(const clsynth_options *o, int *h, int *w);
/* Adam's betas: the explicit --beta1 / --beta2, else the authors' (0, 0.9)
 * under TTUR and (0.5, 0.999) with --no_TTUR. */
void clsynth_options_adam_betas(const clsynth_options *o, float *beta1, float *beta2);
/* The VAE encoder's width: --nef, or --ngf when --nef is 0. */
int clsynth_options_encoder_width(const clsynth_options *o);
/* Learning rates of G and D for a 1-based epoch (TTUR split and linear decay). */
void clsynth_options_lr(const clsynth_options *o, int epoch, float *lr_g, float *lr_d);
/* "  --name VALUE  help" usage lines. */
void clsynth_options_print_help(FILE *f);

#endif
