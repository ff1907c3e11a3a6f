/* The global-context-aware weight-prediction network of the CC generator: a
 * feature pyramid on the full-size label map (spec "Weight-prediction
 * network").
 *
 *   encoder  enc1 3×3 s1 snc→nf; enc2..enc_levels 3×3 s2 nf→nf, each
 *            conv (spectral) → norm (batch) → LeakyReLU(0.2); level i is H/2^i.
 *   top-down segout[L-1] = enc[L-1] (coarsest); for finer i:
 *            segout[i] = dec_i( up2x(segout[i+1]) + lat_i(enc[i]) ),
 *            lat 1×1 nf→nf, dec 3×3 nf→nf, both conv → norm → LeakyReLU.
 *   --no_pyramid: no top-down pathway, segout[i] = enc[i].
 * Names: wp.enc1.. (level 0 = enc1), wp.lat1.. / wp.dec1.. numbered from the
 * coarse end as in the reference (lat1 joins the second-coarsest level). */
#include <stdio.h>

#include "clcore/ops.h"
#include "nets/generator.h"

int clsynth_wpred_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int semantic_nc, int nf,
                    int levels, clsynth_norm_cfg cfg, bool pyramid, clsynth_wpred *out)
{
    char buf[64];
    if (levels < 2 || levels > CLSYNTH_WP_MAX_LEVELS)
        return clsynth_ctx_fail(ctx, "weight prediction: %d pyramid levels (2..%d)", levels, CLSYNTH_WP_MAX_LEVELS);
    out->levels = levels;
    out->pyramid = pyramid;
    for (int i = 0; i < levels; i++) /* enc[0] (nf, snc, 3, 3); enc[i] (nf, nf, 3, 3) stride 2 */
        clsynth_cna_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.enc%d", name, i + 1), i == 0 ? semantic_nc : nf, nf,
                      3, i == 0 ? 1 : 2, 1, cfg, true, &out->enc[i]);
    if (pyramid) {
        for (int i = levels - 2; i >= 0; i--) {
            int k = levels - 1 - i; /* 1 at the coarse end */
            clsynth_cna_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.lat%d", name, k), nf, nf, 1, 1, 0, cfg, true,
                          &out->lat[i]);
            clsynth_cna_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.dec%d", name, k), nf, nf, 3, 1, 1, cfg, true,
                          &out->dec[i]);
        }
    }
    return ctx->failed ? -1 : 0;
}

int clsynth_wpred_forward(const clsynth_forward_mode *f, const clsynth_wpred *wp, clsynth_tensor *seg, clsynth_tensor **out)
{
    clsynth_ctx *ctx = f->ctx;
    clsynth_tensor *enc[CLSYNTH_WP_MAX_LEVELS] = { 0 };
    clsynth_tensor *x = seg;
    for (int i = 0; i < wp->levels; i++) {
        x = clsynth_cna_forward(f, &wp->enc[i], x); /* (N, nf, H/2^i, W/2^i) */
        enc[i] = x;
    }
    int top = wp->levels - 1;
    out[top] = enc[top];
    for (int i = top - 1; i >= 0; i--) {
        if (!wp->pyramid) {
            out[i] = enc[i];
            continue;
        }
        clsynth_tensor *t = clsynth_add(ctx, clsynth_upsample_nearest2x(ctx, out[i + 1]),
                                        clsynth_cna_forward(f, &wp->lat[i], enc[i])); /* (N, nf, H/2^i, W/2^i) */
        out[i] = clsynth_cna_forward(f, &wp->dec[i], t);
    }
    return ctx->failed ? -1 : 0;
}
