/* The discriminators: CC-FPSE's feature-pyramid semantics-embedding
 * discriminator ("fpse", nets/discriminator.c) and SPADE's multi-scale
 * PatchGAN ("multiscale", nets/patchgan.c). Both return score maps (for the
 * hinge loss, averaged over the maps) and intermediate features (for feature
 * matching, each with a weight). */
#ifndef CLSYNTH_NETS_DISCRIMINATOR_H
#define CLSYNTH_NETS_DISCRIMINATOR_H

#include <stdbool.h>

#include "nets/layers.h"
#include "nets/options.h"

#define CLSYNTH_D_MAX_OUT 48
#define CLSYNTH_PG_MAX_LAYERS 10
#define CLSYNTH_MAX_NUM_D 8

typedef struct clsynth_d_out {
    int n_scores;
    clsynth_tensor *score[CLSYNTH_D_MAX_OUT];   /* (N, 1, h, w) each */
    int n_feats;
    clsynth_tensor *feat[CLSYNTH_D_MAX_OUT];
    float feat_weight[CLSYNTH_D_MAX_OUT];       /* multiplies L1(feat_fake, feat_real) */
} clsynth_d_out;

/* ---- FPSE (spec "Discriminator (fpse)") ---- */
typedef struct clsynth_fpse {
    int nf, semantic_nc;
    bool pyramid;        /* false: --no_d_pyramid */
    bool embedding;      /* false: --no_semantic_embedding */
    clsynth_cna enc[5];     /* enc1..enc5, 3×3 stride 2: 3→nf→2nf→4nf→8nf→8nf */
    clsynth_cna lat[4];     /* lat2..lat5 (index s-2), 1×1 → 4nf (lat5 only with the pyramid) */
    clsynth_cna final[3];   /* final2..final4, 3×3 4nf→2nf */
    clsynth_conv tf;        /* 1×1 2nf→1 */
    clsynth_conv seg;       /* 1×1 2nf→2nf */
    clsynth_conv emb;       /* 1×1 snc→2nf */
} clsynth_fpse;

int clsynth_fpse_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, clsynth_fpse *out,
                   clsynth_err *err);
int clsynth_fpse_forward(const clsynth_forward_mode *f, const clsynth_fpse *d, clsynth_tensor *img, clsynth_tensor *seg,
                      clsynth_d_out *out);

/* ---- multi-scale PatchGAN ---- */
typedef struct clsynth_patchgan {
    int n_layers;                         /* n_layers_D + 1 convs */
    clsynth_cna layer[CLSYNTH_PG_MAX_LAYERS];
} clsynth_patchgan;

typedef struct clsynth_multiscale {
    int num_D;
    clsynth_patchgan d[CLSYNTH_MAX_NUM_D];
} clsynth_multiscale;

int clsynth_multiscale_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o,
                         clsynth_multiscale *out, clsynth_err *err);
int clsynth_multiscale_forward(const clsynth_forward_mode *f, const clsynth_multiscale *d, clsynth_tensor *img,
                            clsynth_tensor *seg, clsynth_d_out *out);

/* ---- either ---- */
typedef enum clsynth_d_kind { CLSYNTH_D_FPSE, CLSYNTH_D_MULTISCALE } clsynth_d_kind;

typedef struct clsynth_disc {
    clsynth_d_kind kind;
    clsynth_fpse fpse;
    clsynth_multiscale ms;
    struct clsynth_sn_set *sn; /* its spectral-normalized weights (NULL: none); the maker frees it */
} clsynth_disc;

int clsynth_disc_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, clsynth_disc *out,
                   clsynth_err *err);
/* img (N, 3, H, W), seg (N, snc, H, W). */
int clsynth_disc_forward(const clsynth_forward_mode *f, const clsynth_disc *d, clsynth_tensor *img, clsynth_tensor *seg,
                      clsynth_d_out *out);

#endif
