/* CC-FPSE's Conditional Convolution block (spec "Conditional Convolution block").
 *
 * From cond (N, cond_nc, h, w) (already at x's size) four small nets, each
 * 3×3 conv cond→nhidden, ReLU, 3×3 conv:
 *   w1 → 9·fin    per-sample, per-channel, per-pixel 3×3 depthwise kernels
 *   w2 → 9·fmiddle (the spec's fout·9 equals fmiddle·9 in every block of the
 *        generator, where fout <= fin; fmiddle·9 is what the second depthwise
 *        conv, on fmiddle channels, needs)
 *   a1 → fmiddle, sigmoid; a2 → fout, sigmoid  (conditional attention;
 *        absent with --no_cond_attention)
 * main path: BN(x) → cond dwconv w1 → 1×1 fin→fmiddle → ×a1 → LReLU(0.2)
 *            → BN → cond dwconv w2 → 1×1 fmiddle→fout → ×a2 → LReLU(0.2)
 * shortcut:  x if fin = fout, else 1×1 conv fin→fout (no bias, spectral norm)
 *            of SPADE(x, cond)
 * output = shortcut + main.
 * The BNs are affine (--norm_G's kind: batch by default). The pointwise convs
 * are plain 1×1 convs with a bias, as the authors' conv_1 / conv_3 (no
 * spectral norm whatever --norm_G says: their weights, σ_max about 0.04 at
 * init, are not representable as normalized weights); the prediction nets
 * have no norm either. The authors' block also owns three BatchNorms it never
 * uses (norm_0, conv_0.norm_layer, conv_2.norm_layer): not declared here. */
#include <stdio.h>

#include "clcore/ops.h"
#include "nets/generator.h"

static int pred_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *block, const char *what,
                     int cond_nc, int nhidden, int cout, nets_conv pred[2])
{
    char buf[64];
    /* (nhidden, cond_nc, 3, 3), (cout, nhidden, 3, 3) */
    nets_conv_make(ctx, g, nets_name(buf, sizeof buf, "%s.%s.0", block, what), cond_nc, nhidden, 3, 1, 1, true,
                   false, &pred[0]);
    nets_conv_make(ctx, g, nets_name(buf, sizeof buf, "%s.%s.1", block, what), nhidden, cout, 3, 1, 1, true,
                   false, &pred[1]);
    return ctx->failed ? -1 : 0;
}

static clsynth_tensor *pred_forward(const nets_fwd *f, const nets_conv pred[2], clsynth_tensor *cond)
{
    clsynth_tensor *hid = clsynth_relu(f->ctx, nets_conv_forward(f, &pred[0], cond)); /* (N, nhidden, h, w) */
    return nets_conv_forward(f, &pred[1], hid);
}

int nets_ccblock_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int fin, int fout,
                      int cond_nc, int nhidden, nets_norm_cfg cfg, bool attention, nets_ccblock *out)
{
    char buf[64];
    out->fin = fin;
    out->fout = fout;
    out->fmiddle = fin < fout ? fin : fout;
    out->learned_shortcut = fin != fout;
    out->attention = attention;
    nets_norm_kind kind = cfg.kind == NETS_NORM_NONE ? NETS_NORM_BATCH : cfg.kind;
    pred_make(ctx, g, name, "gen_weights1", cond_nc, nhidden, 9 * fin, out->pred_w1);
    pred_make(ctx, g, name, "gen_weights2", cond_nc, nhidden, 9 * out->fmiddle, out->pred_w2);
    if (attention) {
        pred_make(ctx, g, name, "gen_se_weights1", cond_nc, nhidden, out->fmiddle, out->pred_a1);
        pred_make(ctx, g, name, "gen_se_weights2", cond_nc, nhidden, fout, out->pred_a2);
    }
    nets_norm_make(ctx, g, nets_name(buf, sizeof buf, "%s.norm_0", name), kind, fin, true, &out->norm_0);
    nets_norm_make(ctx, g, nets_name(buf, sizeof buf, "%s.norm_1", name), kind, out->fmiddle, true, &out->norm_1);
    /* conv_0 (fmiddle, fin, 1, 1), conv_1 (fout, fmiddle, 1, 1) */
    nets_conv_make(ctx, g, nets_name(buf, sizeof buf, "%s.conv_0", name), fin, out->fmiddle, 1, 1, 0, true,
                   false, &out->conv_0);
    nets_conv_make(ctx, g, nets_name(buf, sizeof buf, "%s.conv_1", name), out->fmiddle, fout, 1, 1, 0, true,
                   false, &out->conv_1);
    if (out->learned_shortcut) {
        nets_spade_make(ctx, g, nets_name(buf, sizeof buf, "%s.norm_s", name), fin, cond_nc, nhidden, kind,
                        &out->norm_s);
        /* conv_s (fout, fin, 1, 1), no bias, spectral norm (spec) */
        nets_conv_make(ctx, g, nets_name(buf, sizeof buf, "%s.conv_s", name), fin, fout, 1, 1, 0, false, true,
                       &out->conv_s);
    }
    return ctx->failed ? -1 : 0;
}

clsynth_tensor *nets_ccblock_forward(const nets_fwd *f, const nets_ccblock *b, clsynth_tensor *x,
                                     clsynth_tensor *cond)
{
    clsynth_ctx *ctx = f->ctx;
    /* predicted kernels and gates */
    clsynth_tensor *w1 = pred_forward(f, b->pred_w1, cond); /* (N, 9 fin, h, w) */
    clsynth_tensor *w2 = pred_forward(f, b->pred_w2, cond); /* (N, 9 fmiddle, h, w) */
    clsynth_tensor *a1 = NULL, *a2 = NULL;
    if (b->attention) {
        a1 = clsynth_sigmoid(ctx, pred_forward(f, b->pred_a1, cond)); /* (N, fmiddle, h, w) */
        a2 = clsynth_sigmoid(ctx, pred_forward(f, b->pred_a2, cond)); /* (N, fout, h, w) */
    }
    /* shortcut */
    clsynth_tensor *x_s = x;
    if (b->learned_shortcut)
        x_s = nets_conv_forward(f, &b->conv_s, nets_spade_forward(f, &b->norm_s, x, cond)); /* (N, fout, h, w) */
    /* main path */
    clsynth_tensor *dx = nets_norm_forward(f, &b->norm_0, x);  /* (N, fin, h, w) */
    dx = clsynth_cond_dwconv(ctx, dx, w1);                      /* (N, fin, h, w) */
    dx = nets_conv_forward(f, &b->conv_0, dx);                  /* (N, fmiddle, h, w) */
    if (a1)
        dx = clsynth_mul(ctx, dx, a1);
    dx = clsynth_leaky_relu(ctx, dx, NETS_LRELU_SLOPE);
    dx = nets_norm_forward(f, &b->norm_1, dx);
    dx = clsynth_cond_dwconv(ctx, dx, w2);                      /* (N, fmiddle, h, w) */
    dx = nets_conv_forward(f, &b->conv_1, dx);                  /* (N, fout, h, w) */
    if (a2)
        dx = clsynth_mul(ctx, dx, a2);
    dx = clsynth_leaky_relu(ctx, dx, NETS_LRELU_SLOPE);
    return clsynth_add(ctx, x_s, dx);
}
