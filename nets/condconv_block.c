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
 * The pointwise convs apply ×a, LReLU and the shortcut add as their fused
 * epilogue (clsynth_conv2d_fused), the prediction nets' convs their ReLU and
 * sigmoid: same results, fewer launches and tensors. The four prediction nets
 * and the shortcut SPADE's shared MLP all start with a 3×3 conv of cond: they
 * run as one conv with the output channels concatenated (their weights and
 * biases packed side by side in the parameter group, so the concatenated
 * weight is a view; names, checkpoints and initialization are unchanged),
 * then each net's second conv reads its slice.
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
                     int cond_nc, int nhidden, int cout, clsynth_conv pred[2])
{
    char buf[64];
    /* (nhidden, cond_nc, 3, 3), (cout, nhidden, 3, 3) */
    clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.%s.0", block, what), cond_nc, nhidden, 3, 1, 1, true,
                   false, &pred[0]);
    clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.%s.1", block, what), nhidden, cout, 3, 1, 1, true,
                   false, &pred[1]);
    return ctx->failed ? -1 : 0;
}

/* The second conv of a prediction net (-> act) on its slice hid of the first convs' output. */
static clsynth_tensor *pred_forward(const clsynth_forward_mode *f, const clsynth_conv pred[2], clsynth_tensor *hid,
                                    clsynth_act out_act)
{
    const clsynth_conv_epilogue last = { out_act, 0.0f, NULL, NULL };
    return clsynth_conv_forward_epi(f, &pred[1], hid, &last);
}

/* The packed first conv: weights (n_first nhidden, cond_nc, 3, 3) and biases
 * (1, n_first nhidden, 1, 1) over the members' storage. */
static int first_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *block, clsynth_ccblock *out)
{
    const clsynth_conv *m[5] = { &out->pred_w1[0], &out->pred_w2[0], NULL, NULL, NULL };
    int n = 2;
    if (out->attention) {
        m[n++] = &out->pred_a1[0];
        m[n++] = &out->pred_a2[0];
    }
    if (out->learned_shortcut)
        m[n++] = &out->norm_s.shared;
    clsynth_tensor *w[5], *bias[5];
    for (int i = 0; i < n; i++) {
        w[i] = m[i]->w;
        bias[i] = m[i]->b;
    }
    char buf[64];
    out->first = *m[0];
    out->first.cout = n * m[0]->cout;
    out->first.w = clsynth_group_pack(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.pred_first.w", block), w, n, 0);
    out->first.b = clsynth_group_pack(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.pred_first.b", block), bias, n, 1);
    out->n_first = n;
    return ctx->failed ? -1 : 0;
}

int clsynth_ccblock_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int fin, int fout,
                      int cond_nc, int nhidden, clsynth_norm_cfg cfg, bool attention, clsynth_ccblock *out)
{
    char buf[64];
    out->fin = fin;
    out->fout = fout;
    out->fmiddle = fin < fout ? fin : fout;
    out->learned_shortcut = fin != fout;
    out->attention = attention;
    clsynth_norm_kind kind = cfg.kind == CLSYNTH_NORM_NONE ? CLSYNTH_NORM_BATCH : cfg.kind;
    pred_make(ctx, g, name, "gen_weights1", cond_nc, nhidden, 9 * fin, out->pred_w1);
    pred_make(ctx, g, name, "gen_weights2", cond_nc, nhidden, 9 * out->fmiddle, out->pred_w2);
    if (attention) {
        pred_make(ctx, g, name, "gen_se_weights1", cond_nc, nhidden, out->fmiddle, out->pred_a1);
        pred_make(ctx, g, name, "gen_se_weights2", cond_nc, nhidden, fout, out->pred_a2);
    }
    clsynth_norm_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.norm_0", name), kind, fin, true, &out->norm_0);
    clsynth_norm_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.norm_1", name), kind, out->fmiddle, true, &out->norm_1);
    /* conv_0 (fmiddle, fin, 1, 1), conv_1 (fout, fmiddle, 1, 1) */
    clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.conv_0", name), fin, out->fmiddle, 1, 1, 0, true,
                   false, &out->conv_0);
    clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.conv_1", name), out->fmiddle, fout, 1, 1, 0, true,
                   false, &out->conv_1);
    if (out->learned_shortcut) {
        clsynth_spade_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.norm_s", name), fin, cond_nc, nhidden, kind,
                        &out->norm_s);
        /* conv_s (fout, fin, 1, 1), no bias, spectral norm (spec) */
        clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.conv_s", name), fin, fout, 1, 1, 0, false, true,
                       &out->conv_s);
    }
    out->nhidden = nhidden;
    if (ctx->failed)
        return -1;
    return first_make(ctx, g, name, out);
}

clsynth_tensor *clsynth_ccblock_forward(const clsynth_forward_mode *f, const clsynth_ccblock *b, clsynth_tensor *x,
                                     clsynth_tensor *cond)
{
    clsynth_ctx *ctx = f->ctx;
    /* every 3x3 conv of cond as one conv, ReLU fused: slots w1, w2 (, a1, a2) (, shared) */
    const clsynth_conv_epilogue relu = { CLSYNTH_ACT_RELU, 0.0f, NULL, NULL };
    clsynth_tensor *hid_all = clsynth_conv_forward_epi(f, &b->first, cond, &relu); /* (N, n_first nhidden, h, w) */
    /* its slots, (N, nhidden, h, w) each, in one launch */
    clsynth_tensor *hid[CLSYNTH_SPLIT_MAX] = { NULL };
    const int counts[CLSYNTH_SPLIT_MAX] = { b->nhidden, b->nhidden, b->nhidden, b->nhidden, b->nhidden };
    if (clsynth_split_c(ctx, hid_all, counts, b->n_first, hid))
        return NULL;
    /* predicted kernels and gates */
    clsynth_tensor *w1 = pred_forward(f, b->pred_w1, hid[0], CLSYNTH_ACT_NONE); /* (N, 9 fin, h, w) */
    clsynth_tensor *w2 = pred_forward(f, b->pred_w2, hid[1], CLSYNTH_ACT_NONE); /* (N, 9 fmiddle, h, w) */
    clsynth_tensor *a1 = NULL, *a2 = NULL;
    if (b->attention) {
        a1 = pred_forward(f, b->pred_a1, hid[2], CLSYNTH_ACT_SIGMOID); /* (N, fmiddle, h, w) */
        a2 = pred_forward(f, b->pred_a2, hid[3], CLSYNTH_ACT_SIGMOID); /* (N, fout, h, w) */
    }
    /* shortcut */
    clsynth_tensor *x_s = x;
    if (b->learned_shortcut) {
        clsynth_tensor *actv = hid[b->n_first - 1];
        x_s = clsynth_conv_forward(f, &b->conv_s, clsynth_spade_forward_actv(f, &b->norm_s, x, actv)); /* (N, fout, h, w) */
    }
    /* main path */
    clsynth_tensor *dx = clsynth_norm_forward(f, &b->norm_0, x);  /* (N, fin, h, w) */
    dx = clsynth_cond_dwconv(ctx, dx, w1);                      /* (N, fin, h, w) */
    /* 1x1 conv -> x a1 -> LReLU, one fused op (a1 NULL: no gate) */
    const clsynth_conv_epilogue e0 = { CLSYNTH_ACT_LEAKY_RELU, CLSYNTH_LRELU_SLOPE, a1, NULL };
    dx = clsynth_conv_forward_epi(f, &b->conv_0, dx, &e0);         /* (N, fmiddle, h, w) */
    dx = clsynth_norm_forward(f, &b->norm_1, dx);
    dx = clsynth_cond_dwconv(ctx, dx, w2);                      /* (N, fmiddle, h, w) */
    /* 1x1 conv -> x a2 -> LReLU -> + shortcut, one fused op */
    const clsynth_conv_epilogue e1 = { CLSYNTH_ACT_LEAKY_RELU, CLSYNTH_LRELU_SLOPE, a2, x_s };
    return clsynth_conv_forward_epi(f, &b->conv_1, dx, &e1);       /* (N, fout, h, w) */
}
