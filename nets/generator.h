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

#define CLSYNTH_G_BLOCKS 7
#define CLSYNTH_WP_MAX_LEVELS 8

/* ---- SPADE normalization (nets/spade_generator.c) ----
 * param-free norm(x) · (1 + γ) + β with γ, β = 3×3 convs of
 * ReLU(3×3 conv cond → nhidden). cond must already have x's size. */
typedef struct clsynth_spade {
    clsynth_norm norm;          /* param-free (batch or instance) */
    clsynth_conv shared, gamma, beta;
} clsynth_spade;

int clsynth_spade_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int norm_nc,
                    int cond_nc, int nhidden, clsynth_norm_kind kind, clsynth_spade *out);
clsynth_tensor *clsynth_spade_forward(const clsynth_forward_mode *f, const clsynth_spade *s, clsynth_tensor *x,
                                   clsynth_tensor *cond);
/* The same from actv = ReLU(shared(cond)) computed by the caller (N, nhidden, h, w). */
clsynth_tensor *clsynth_spade_forward_actv(const clsynth_forward_mode *f, const clsynth_spade *s, clsynth_tensor *x,
                                        clsynth_tensor *actv);

/* ---- SPADE residual block (nets/spade_generator.c) ---- */
typedef struct clsynth_spadeblock {
    int fin, fout, fmiddle;
    bool learned_shortcut;
    clsynth_spade norm_0, norm_1, norm_s;
    clsynth_conv conv_0, conv_1, conv_s; /* 3×3 fin→fmiddle, 3×3 fmiddle→fout, 1×1 fin→fout (no bias) */
    /* the SPADEs' shared MLPs (norm_0, norm_1, norm_s), all 3×3 convs of cond, as one
     * conv: weights and biases packed (clsynth_group_pack), cond→n_shared·nhidden */
    clsynth_conv shared;
    int n_shared, nhidden;
} clsynth_spadeblock;

int clsynth_spadeblock_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int fin, int fout,
                         int cond_nc, int nhidden, clsynth_norm_cfg cfg, clsynth_spadeblock *out);
clsynth_tensor *clsynth_spadeblock_forward(const clsynth_forward_mode *f, const clsynth_spadeblock *b, clsynth_tensor *x,
                                        clsynth_tensor *cond);

/* ---- Conditional Convolution block (nets/condconv_block.c) ---- */
typedef struct clsynth_ccblock {
    int fin, fout, fmiddle;
    bool learned_shortcut, attention;
    /* weight prediction from cond: [0] 3×3 cond→nhidden, ReLU, [1] 3×3 nhidden→out */
    clsynth_conv pred_w1[2], pred_w2[2], pred_a1[2], pred_a2[2];
    /* every 3×3 conv of cond as one: the [0] convs of w1, w2 (, a1, a2) and
     * norm_s's shared MLP (learned shortcut), their weights and biases packed
     * side by side in the group (clsynth_group_pack): cond→n_first·nhidden */
    clsynth_conv first;
    int n_first, nhidden;
    clsynth_norm norm_0, norm_1;          /* affine, fin and fmiddle channels */
    clsynth_conv conv_0, conv_1;          /* pointwise 1×1 fin→fmiddle, fmiddle→fout */
    clsynth_spade norm_s;                 /* shortcut SPADE (learned shortcut only) */
    clsynth_conv conv_s;                  /* 1×1 fin→fout, no bias, spectral norm */
} clsynth_ccblock;

int clsynth_ccblock_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int fin, int fout,
                      int cond_nc, int nhidden, clsynth_norm_cfg cfg, bool attention, clsynth_ccblock *out);
clsynth_tensor *clsynth_ccblock_forward(const clsynth_forward_mode *f, const clsynth_ccblock *b, clsynth_tensor *x,
                                     clsynth_tensor *cond);

/* ---- weight-prediction feature pyramid (nets/weight_pred.c) ----
 * levels = num_up + 1; level i has size (H/2^i, W/2^i). */
typedef struct clsynth_wpred {
    int levels;
    bool pyramid;                          /* false: --no_pyramid */
    clsynth_cna enc[CLSYNTH_WP_MAX_LEVELS];      /* enc[0] 3×3 s1 snc→nf; enc[i] 3×3 s2 nf→nf */
    clsynth_cna lat[CLSYNTH_WP_MAX_LEVELS];      /* lat[i] 1×1 nf→nf on enc[i], i < levels-1 */
    clsynth_cna dec[CLSYNTH_WP_MAX_LEVELS];      /* dec[i] 3×3 nf→nf, i < levels-1 */
} clsynth_wpred;

int clsynth_wpred_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int semantic_nc, int nf,
                    int levels, clsynth_norm_cfg cfg, bool pyramid, clsynth_wpred *out);
/* seg (N, snc, H, W) → out[i] (N, nf, H/2^i, W/2^i) for i < levels. */
int clsynth_wpred_forward(const clsynth_forward_mode *f, const clsynth_wpred *wp, clsynth_tensor *seg,
                       clsynth_tensor **out);

/* ---- VAE image encoder (nets/encoder.c) ----
 * 6 × (3×3 stride-2 conv → norm → LeakyReLU) nef→2nef→4nef→8nef→8nef→8nef
 * (nef = --nef, or --ngf when it is 0, as the authors), then linear layers to
 * μ and log σ² (z_dim). As the authors, the input is first resized to 256×256
 * (bilinear), so the linear layers take 8nef × 4 × 4 inputs whatever the crop size. */
#define CLSYNTH_ENC_SIZE 256
typedef struct clsynth_encoder {
    clsynth_cna layer[6];
    clsynth_conv fc_mu, fc_var;
    int z_dim;
    struct clsynth_sn_set *sn; /* its spectral-normalized weights (NULL: none); the maker frees it */
} clsynth_encoder;

int clsynth_encoder_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, clsynth_encoder *out,
                      clsynth_err *err);
/* img (N, 3, H, W) → mu, logvar (N, z_dim, 1, 1). */
int clsynth_encoder_forward(const clsynth_forward_mode *f, const clsynth_encoder *e, clsynth_tensor *img, clsynth_tensor **mu,
                         clsynth_tensor **logvar);

/* ---- generator (nets/generator.c) ---- */
typedef enum clsynth_g_kind { CLSYNTH_G_CONDCONV, CLSYNTH_G_SPADE } clsynth_g_kind;

typedef struct clsynth_generator {
    clsynth_g_kind kind;
    int nf, semantic_nc, num_up, sh, sw, z_dim;
    bool use_vae;
    clsynth_conv fc;                      /* 3×3 snc→16nf, or linear z_dim→16nf·sh·sw */
    clsynth_wpred wp;                     /* condconv only */
    const char *block_name[CLSYNTH_G_BLOCKS];
    bool up_before[CLSYNTH_G_BLOCKS];
    clsynth_ccblock cc[CLSYNTH_G_BLOCKS];    /* condconv */
    clsynth_spadeblock sp[CLSYNTH_G_BLOCKS]; /* spade */
    clsynth_conv conv_img;                /* 3×3 nf→3 */
    struct clsynth_sn_set *sn;            /* its spectral-normalized weights (NULL: none); the maker
                                             frees it (clsynth_sn_set_free) */
} clsynth_generator;

int clsynth_generator_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o,
                        clsynth_generator *out, clsynth_err *err);
/* seg (N, snc, H, W), z (N, z_dim, 1, 1) with --use_vae (else NULL) → (N, 3, H, W) in (-1, 1). */
clsynth_tensor *clsynth_generator_forward(const clsynth_forward_mode *f, const clsynth_generator *G, clsynth_tensor *seg,
                                       clsynth_tensor *z);

#endif
