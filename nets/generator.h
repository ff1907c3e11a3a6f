/* The generators: CC-FPSE's conditional-convolution generator ("condconv")
 * and SPADE's generator ("spade", the ablation baseline), with the VAE image
 * encoder both can use. They share the start tensor and the upsampling
 * schedule (nets/generator.c):
 *
 *   start   (N, 16nf, sh, sw): 3×3 conv from seg nearest-resized to sh×sw, or
 *           with --use_vae a linear layer from z (N, z_dim) reshaped.
 *   blocks  head_0 16nf→16nf  at H/2^num_up
 *           up ×2, G_middle_0 16nf→16nf
 *           (up ×2 in "more" mode), G_middle_1 16nf→16nf
 *           up ×2, up_0 16nf→8nf; up ×2, up_1 8nf→4nf; up ×2, up_2 4nf→2nf;
 *           up ×2, up_3 2nf→nf                                   (nearest 2×)
 *   output  LeakyReLU(0.2) → 3×3 conv nf→3 → tanh, (N, 3, H, W).
 *
 * (The spec's "an upsample before every block but the first" counts one too
 * many in "normal" mode: SPADE's schedule above is the one whose output is the
 * crop size with num_up = 5 / 6 upsamplings.)
 *
 * Parameter names inside the group: "fc", "wp.enc1".., "head_0.conv_0", ...
 * Shapes in the comments at each declaration. */
#ifndef CLSYNTH_NETS_GENERATOR_H
#define CLSYNTH_NETS_GENERATOR_H

#include <stdbool.h>

#include "nets/layers.h"
#include "nets/options.h"

#define NETS_G_BLOCKS 7
#define NETS_WP_MAX_LEVELS 8

/* ---- SPADE normalization (nets/spade_generator.c) ----
 * param-free norm(x) · (1 + γ) + β with γ, β = 3×3 convs of
 * ReLU(3×3 conv cond → nhidden). cond must already have x's size. */
typedef struct nets_spade {
    nets_norm norm;          /* param-free (batch or instance) */
    nets_conv shared, gamma, beta;
} nets_spade;

int nets_spade_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int norm_nc,
                    int cond_nc, int nhidden, nets_norm_kind kind, nets_spade *out);
clsynth_tensor *nets_spade_forward(const nets_fwd *f, const nets_spade *s, clsynth_tensor *x,
                                   clsynth_tensor *cond);

/* ---- SPADE residual block (nets/spade_generator.c) ---- */
typedef struct nets_spadeblock {
    int fin, fout, fmiddle;
    bool learned_shortcut;
    nets_spade norm_0, norm_1, norm_s;
    nets_conv conv_0, conv_1, conv_s; /* 3×3 fin→fmiddle, 3×3 fmiddle→fout, 1×1 fin→fout (no bias) */
} nets_spadeblock;

int nets_spadeblock_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int fin, int fout,
                         int cond_nc, int nhidden, nets_norm_cfg cfg, nets_spadeblock *out);
clsynth_tensor *nets_spadeblock_forward(const nets_fwd *f, const nets_spadeblock *b, clsynth_tensor *x,
                                        clsynth_tensor *cond);

/* ---- Conditional Convolution block (nets/condconv_block.c) ---- */
typedef struct nets_ccblock {
    int fin, fout, fmiddle;
    bool learned_shortcut, attention;
    /* weight prediction from cond: [0] 3×3 cond→nhidden, ReLU, [1] 3×3 nhidden→out */
    nets_conv pred_w1[2], pred_w2[2], pred_a1[2], pred_a2[2];
    nets_norm norm_0, norm_1;          /* affine, fin and fmiddle channels */
    nets_conv conv_0, conv_1;          /* pointwise 1×1 fin→fmiddle, fmiddle→fout */
    nets_spade norm_s;                 /* shortcut SPADE (learned shortcut only) */
    nets_conv conv_s;                  /* 1×1 fin→fout, no bias, spectral norm */
} nets_ccblock;

int nets_ccblock_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int fin, int fout,
                      int cond_nc, int nhidden, nets_norm_cfg cfg, bool attention, nets_ccblock *out);
clsynth_tensor *nets_ccblock_forward(const nets_fwd *f, const nets_ccblock *b, clsynth_tensor *x,
                                     clsynth_tensor *cond);

/* ---- weight-prediction feature pyramid (nets/weight_pred.c) ----
 * levels = num_up + 1; level i has size (H/2^i, W/2^i). */
typedef struct nets_wpred {
    int levels;
    bool pyramid;                          /* false: --no_pyramid */
    nets_cna enc[NETS_WP_MAX_LEVELS];      /* enc[0] 3×3 s1 snc→nf; enc[i] 3×3 s2 nf→nf */
    nets_cna lat[NETS_WP_MAX_LEVELS];      /* lat[i] 1×1 nf→nf on enc[i], i < levels-1 */
    nets_cna dec[NETS_WP_MAX_LEVELS];      /* dec[i] 3×3 nf→nf, i < levels-1 */
} nets_wpred;

int nets_wpred_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int semantic_nc, int nf,
                    int levels, nets_norm_cfg cfg, bool pyramid, nets_wpred *out);
/* seg (N, snc, H, W) → out[i] (N, nf, H/2^i, W/2^i) for i < levels. */
int nets_wpred_forward(const nets_fwd *f, const nets_wpred *wp, clsynth_tensor *seg,
                       clsynth_tensor **out);

/* ---- VAE image encoder (nets/encoder.c) ----
 * 6 × (3×3 stride-2 conv → norm → LeakyReLU) nef→2nef→4nef→8nef→8nef→8nef
 * (nef = --nef, or --ngf when it is 0, as the authors), then linear layers to
 * μ and log σ² (z_dim). As the authors, the input is first resized to 256×256
 * (bilinear), so the linear layers take 8nef × 4 × 4 inputs whatever the crop size. */
#define NETS_ENC_SIZE 256
typedef struct nets_encoder {
    nets_cna layer[6];
    nets_conv fc_mu, fc_var;
    int z_dim;
} nets_encoder;

int nets_encoder_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, nets_encoder *out,
                      clsynth_err *err);
/* img (N, 3, H, W) → mu, logvar (N, z_dim, 1, 1). */
int nets_encoder_forward(const nets_fwd *f, const nets_encoder *e, clsynth_tensor *img, clsynth_tensor **mu,
                         clsynth_tensor **logvar);

/* ---- generator (nets/generator.c) ---- */
typedef enum nets_g_kind { NETS_G_CONDCONV, NETS_G_SPADE } nets_g_kind;

typedef struct nets_generator {
    nets_g_kind kind;
    int nf, semantic_nc, num_up, sh, sw, z_dim;
    bool use_vae;
    nets_conv fc;                      /* 3×3 snc→16nf, or linear z_dim→16nf·sh·sw */
    nets_wpred wp;                     /* condconv only */
    const char *block_name[NETS_G_BLOCKS];
    bool up_before[NETS_G_BLOCKS];
    nets_ccblock cc[NETS_G_BLOCKS];    /* condconv */
    nets_spadeblock sp[NETS_G_BLOCKS]; /* spade */
    nets_conv conv_img;                /* 3×3 nf→3 */
} nets_generator;

int nets_generator_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o,
                        nets_generator *out, clsynth_err *err);
/* seg (N, snc, H, W), z (N, z_dim, 1, 1) with --use_vae (else NULL) → (N, 3, H, W) in (-1, 1). */
clsynth_tensor *nets_generator_forward(const nets_fwd *f, const nets_generator *G, clsynth_tensor *seg,
                                       clsynth_tensor *z);

#endif
