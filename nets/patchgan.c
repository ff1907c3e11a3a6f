/* SPADE's multi-scale PatchGAN discriminator (--netD multiscale).
 *
 * Input concat(seg, image) (N, snc + 3, H, W), as SPADE concatenates. Each of
 * num_D NLayerDiscriminators (4×4 convs, padding 2):
 *   layer0      conv cin→nf stride 2, LReLU(0.2)           (plain conv, bias)
 *   layer1..n-1 conv nf_prev→min(2·nf_prev, 512) stride 2 (stride 1 for the last),
 *               --norm_D (spectral + instance) → LReLU(0.2)
 *   layer n     conv → 1 stride 1                          (plain conv, bias)
 * with n = n_layers_D. The outputs of layers 0..n-1 are the features for
 * feature matching (weight 1/num_D each, as SPADE divides by num_D); layer
 * n's output is the score map. Between scales the input is average-pooled
 * 3×3, stride 2, padding 1, count_include_pad = False. */
#include <stdio.h>
#include <string.h>

#include "clcore/ops.h"
#include "nets/discriminator.h"

int clsynth_multiscale_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, clsynth_multiscale *d,
                         clsynth_err *err)
{
    memset(d, 0, sizeof *d);
    clsynth_norm_cfg cfg;
    if (clsynth_norm_parse(o->norm_D, "--norm_D", &cfg, err))
        return -1;
    if (o->num_D < 1 || o->num_D > CLSYNTH_MAX_NUM_D)
        return clsynth_fail(err, "--num_D %d: 1..%d", o->num_D, CLSYNTH_MAX_NUM_D);
    if (o->n_layers_D < 1 || o->n_layers_D + 1 > CLSYNTH_PG_MAX_LAYERS)
        return clsynth_fail(err, "--n_layers_D %d: 1..%d", o->n_layers_D, CLSYNTH_PG_MAX_LAYERS - 1);
    const clsynth_norm_cfg plain = { false, CLSYNTH_NORM_NONE };
    int cin0 = clsynth_options_semantic_nc(o) + 3;
    char buf[64];
    d->num_D = o->num_D;
    for (int k = 0; k < o->num_D; k++) {
        clsynth_patchgan *p = &d->d[k];
        p->n_layers = o->n_layers_D + 1;
        int nf = o->ndf;
        /* layer0 (ndf, snc+3, 4, 4) stride 2 */
        clsynth_cna_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "d%d.layer0", k), cin0, nf, 4, 2, 2, plain, true,
                      &p->layer[0]);
        for (int n = 1; n < o->n_layers_D; n++) {
            int nf_prev = nf;
            nf = 2 * nf < 512 ? 2 * nf : 512;
            int stride = n == o->n_layers_D - 1 ? 1 : 2;
            /* (nf, nf_prev, 4, 4) */
            clsynth_cna_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "d%d.layer%d", k, n), nf_prev, nf, 4, stride, 2, cfg,
                          true, &p->layer[n]);
        }
        /* last (1, nf, 4, 4) */
        clsynth_cna_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "d%d.layer%d", k, o->n_layers_D), nf, 1, 4, 1, 2, plain,
                      false, &p->layer[o->n_layers_D]);
    }
    if (ctx->failed)
        return clsynth_fail(err, "%s", ctx->err.msg);
    return 0;
}

int clsynth_multiscale_forward(const clsynth_forward_mode *f, const clsynth_multiscale *d, clsynth_tensor *img, clsynth_tensor *seg,
                            clsynth_d_out *out)
{
    clsynth_ctx *ctx = f->ctx;
    memset(out, 0, sizeof *out);
    if (ctx->failed || !img || !seg)
        return -1;
    clsynth_tensor *parts[2] = { seg, img };
    clsynth_tensor *x = clsynth_concat(ctx, parts, 2); /* (N, snc + 3, H, W) */
    for (int k = 0; k < d->num_D; k++) {
        const clsynth_patchgan *p = &d->d[k];
        clsynth_tensor *y = x;
        for (int n = 0; n < p->n_layers; n++) {
            const unsigned long mark = ctx->tensor_serial;
            y = clsynth_cna_forward(f, &p->layer[n], y);
            if (n + 1 < p->n_layers) {
                out->feat[out->n_feats] = y;
                out->feat_weight[out->n_feats++] = 1.0f / (float)d->num_D;
            }
            /* --half_activations: the layer's intermediates; y (a feature or
             * the score) is read on */
            if (!y || clsynth_forward_stash(f, mark, &y, 1))
                return -1;
        }
        out->score[out->n_scores++] = y; /* (N, 1, h_k, w_k) */
        if (k + 1 < d->num_D)
            x = clsynth_avg_pool(ctx, x, 3, 2, 1); /* (N, snc + 3, ceil(h/2), ceil(w/2)) */
    }
    return ctx->failed ? -1 : 0;
}
