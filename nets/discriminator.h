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

#define NETS_D_MAX_OUT 48
#define NETS_PG_MAX_LAYERS 10
#define NETS_MAX_NUM_D 8

typedef struct nets_d_out {
    int n_scores;
    clsynth_tensor *score[NETS_D_MAX_OUT];   /* (N, 1, h, w) each */
    int n_feats;
    clsynth_tensor *feat[NETS_D_MAX_OUT];
    float feat_weight[NETS_D_MAX_OUT];       /* multiplies L1(feat_fake, feat_real) */
} nets_d_out;

/* ---- FPSE (spec "Discriminator (fpse)") ---- */
typedef struct nets_fpse {
    int nf, semantic_nc;
    bool pyramid;        /* false: --no_d_pyramid */
    bool embedding;      /* false: --no_semantic_embedding */
    nets_cna enc[5];     /* enc1..enc5, 3×3 stride 2: 3→nf→2nf→4nf→8nf→8nf */
    nets_cna lat[4];     /* lat2..lat5 (index s-2), 1×1 → 4nf (lat5 only with the pyramid) */
    nets_cna final[3];   /* final2..final4, 3×3 4nf→2nf */
    nets_conv tf;        /* 1×1 2nf→1 */
    nets_conv seg;       /* 1×1 2nf→2nf */
    nets_conv emb;       /* 1×1 snc→2nf */
} nets_fpse;

int nets_fpse_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, nets_fpse *out,
                   clsynth_err *err);
int nets_fpse_forward(const nets_fwd *f, const nets_fpse *d, clsynth_tensor *img, clsynth_tensor *seg,
                      nets_d_out *out);

/* ---- multi-scale PatchGAN ---- */
typedef struct nets_patchgan {
    int n_layers;                         /* n_layers_D + 1 convs */
    nets_cna layer[NETS_PG_MAX_LAYERS];
} nets_patchgan;

typedef struct nets_multiscale {
    int num_D;
    nets_patchgan d[NETS_MAX_NUM_D];
} nets_multiscale;

int nets_multiscale_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o,
                         nets_multiscale *out, clsynth_err *err);
int nets_multiscale_forward(const nets_fwd *f, const nets_multiscale *d, clsynth_tensor *img,
                            clsynth_tensor *seg, nets_d_out *out);

/* ---- either ---- */
typedef enum nets_d_kind { NETS_D_FPSE, NETS_D_MULTISCALE } nets_d_kind;

typedef struct nets_disc {
    nets_d_kind kind;
    nets_fpse fpse;
    nets_multiscale ms;
} nets_disc;

int nets_disc_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, nets_disc *out,
                   clsynth_err *err);
/* img (N, 3, H, W), seg (N, snc, H, W). */
int nets_disc_forward(const nets_fwd *f, const nets_disc *d, clsynth_tensor *img, clsynth_tensor *seg,
                      nets_d_out *out);

#endif
