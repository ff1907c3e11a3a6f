/* SPADE's generator parts: the SPADE normalization layer (also the shortcut
 * of the CC block) and the SPADE residual block of the "spade" generator
 * (--netG spade), as in NVlabs/SPADE:
 *
 *   SPADE(x, cond) = norm(x) · (1 + γ(cond)) + β(cond)
 *     norm: parameter-free batch (or instance) norm of x
 *     a = ReLU(3×3 conv cond → nhidden); γ, β = 3×3 conv a → C (no spectral norm)
 *
 *   SPADEResnetBlock(x, cond), fmiddle = min(fin, fout):
 *     dx  = conv_0(LReLU(SPADE_0(x)))      3×3 fin → fmiddle
 *     dx  = conv_1(LReLU(SPADE_1(dx)))     3×3 fmiddle → fout
 *     x_s = conv_s(SPADE_s(x)) if fin != fout (1×1, no bias) else x
 *     out = x_s + dx
 *   conv_0, conv_1, conv_s spectral-normalized when --norm_G starts with "spectral".
 * The block's SPADEs all start with a 3×3 conv of the same cond: their shared
 * MLPs run as one conv with concatenated outputs (weights packed side by side,
 * clsynth_group_pack), each SPADE on its channel slice; conv_1 adds the
 * shortcut as its fused epilogue. */
#include <stdio.h>

#include "clcore/ops.h"
#include "nets/generator.h"

int clsynth_spade_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int norm_nc, int cond_nc,
                    int nhidden, clsynth_norm_kind kind, clsynth_spade *out)
{
    char buf[64];
    if (kind == CLSYNTH_NORM_NONE)
        kind = CLSYNTH_NORM_BATCH; /* SPADE always normalizes first */
    clsynth_norm_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.norm", name), kind, norm_nc, false, &out->norm);
    /* (nhidden, cond_nc, 3, 3) */
    clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.mlp_shared", name), cond_nc, nhidden, 3, 1, 1, true,
                   false, &out->shared);
    /* (norm_nc, nhidden, 3, 3) each */
    clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.mlp_gamma", name), nhidden, norm_nc, 3, 1, 1, true,
                   false, &out->gamma);
    clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.mlp_beta", name), nhidden, norm_nc, 3, 1, 1, true,
                   false, &out->beta);
    return ctx->failed ? -1 : 0;
}

clsynth_tensor *clsynth_spade_forward(const clsynth_forward_mode *f, const clsynth_spade *s, clsynth_tensor *x,
                                   clsynth_tensor *cond)
{
    const clsynth_conv_epilogue relu = { CLSYNTH_ACT_RELU, 0.0f, NULL, NULL };
    clsynth_tensor *actv = clsynth_conv_forward_epi(f, &s->shared, cond, &relu); /* (N, nhidden, h, w) */
    return clsynth_spade_forward_actv(f, s, x, actv);
}

clsynth_tensor *clsynth_spade_forward_actv(const clsynth_forward_mode *f, const clsynth_spade *s, clsynth_tensor *x,
                                        clsynth_tensor *actv)
{
    clsynth_ctx *ctx = f->ctx;
    clsynth_tensor *normalized = clsynth_norm_forward(f, &s->norm, x);                      /* (N, C, h, w) */
    clsynth_tensor *gamma = clsynth_conv_forward(f, &s->gamma, actv);                       /* (N, C, h, w) */
    clsynth_tensor *beta = clsynth_conv_forward(f, &s->beta, actv);                         /* (N, C, h, w) */
    return clsynth_spade_mod(ctx, normalized, gamma, beta);
}

int clsynth_spadeblock_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int fin, int fout,
                         int cond_nc, int nhidden, clsynth_norm_cfg cfg, clsynth_spadeblock *out)
{
    char buf[64];
    out->fin = fin;
    out->fout = fout;
    out->fmiddle = fin < fout ? fin : fout;
    out->learned_shortcut = fin != fout;
    /* conv_0 (fmiddle, fin, 3, 3), conv_1 (fout, fmiddle, 3, 3) */
    clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.conv_0", name), fin, out->fmiddle, 3, 1, 1, true,
                   cfg.spectral, &out->conv_0);
    clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.conv_1", name), out->fmiddle, fout, 3, 1, 1, true,
                   cfg.spectral, &out->conv_1);
    clsynth_spade_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.norm_0", name), fin, cond_nc, nhidden, cfg.kind,
                    &out->norm_0);
    clsynth_spade_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.norm_1", name), out->fmiddle, cond_nc, nhidden,
                    cfg.kind, &out->norm_1);
    if (out->learned_shortcut) {
        /* conv_s (fout, fin, 1, 1) */
        clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.conv_s", name), fin, fout, 1, 1, 0, false,
                       cfg.spectral, &out->conv_s);
        clsynth_spade_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.norm_s", name), fin, cond_nc, nhidden,
                        cfg.kind, &out->norm_s);
    }
    if (ctx->failed)
        return -1;
    /* the shared MLPs packed: slots norm_0, norm_1 (, norm_s) */
    const clsynth_conv *m[3] = { &out->norm_0.shared, &out->norm_1.shared, &out->norm_s.shared };
    out->n_shared = out->learned_shortcut ? 3 : 2;
    out->nhidden = nhidden;
    clsynth_tensor *w[3], *bias[3];
    for (int i = 0; i < out->n_shared; i++) {
        w[i] = m[i]->w;
        bias[i] = m[i]->b;
    }
    out->shared = *m[0];
    out->shared.cout = out->n_shared * nhidden;
    out->shared.w = clsynth_group_pack(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.mlp_shared.w", name), w,
                                       out->n_shared, 0);
    out->shared.b = clsynth_group_pack(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.mlp_shared.b", name), bias,
                                       out->n_shared, 1);
    return ctx->failed ? -1 : 0;
}

clsynth_tensor *clsynth_spadeblock_forward(const clsynth_forward_mode *f, const clsynth_spadeblock *b, clsynth_tensor *x,
                                        clsynth_tensor *cond)
{
    clsynth_ctx *ctx = f->ctx;
    /* the three SPADEs' ReLU(shared(cond)) as one conv, then their slices */
    const clsynth_conv_epilogue relu = { CLSYNTH_ACT_RELU, 0.0f, NULL, NULL };
    clsynth_tensor *actv = clsynth_conv_forward_epi(f, &b->shared, cond, &relu); /* (N, n_shared nhidden, h, w) */
    clsynth_tensor *a[3] = { NULL, NULL, NULL };
    const int counts[3] = { b->nhidden, b->nhidden, b->nhidden };
    if (clsynth_split_c(ctx, actv, counts, b->n_shared, a)) /* (N, nhidden, h, w) each */
        return NULL;
    clsynth_tensor *x_s = x;
    if (b->learned_shortcut)
        x_s = clsynth_conv_forward(f, &b->conv_s, clsynth_spade_forward_actv(f, &b->norm_s, x, a[2])); /* (N, fout, h, w) */
    clsynth_tensor *dx = clsynth_spade_forward_actv(f, &b->norm_0, x, a[0]);
    dx = clsynth_conv_forward(f, &b->conv_0, clsynth_leaky_relu(ctx, dx, CLSYNTH_LRELU_SLOPE)); /* (N, fmiddle, h, w) */
    dx = clsynth_spade_forward_actv(f, &b->norm_1, dx, a[1]);
    /* conv_1 + x_s, the residual add fused */
    const clsynth_conv_epilogue res = { CLSYNTH_ACT_NONE, 0.0f, NULL, x_s };
    dx = clsynth_leaky_relu(ctx, dx, CLSYNTH_LRELU_SLOPE);
    return clsynth_conv_forward_epi(f, &b->conv_1, dx, &res); /* (N, fout, h, w) */
}
