/* CC-FPSE's feature-pyramid semantics-embedding discriminator.
 *
 *   bottom-up  e1..e5 = conv 3×3 s2 → norm (spectral + instance) → LReLU:
 *              3→nf (H/2), nf→2nf (H/4), 2nf→4nf (H/8), 4nf→8nf (H/16), 8nf→8nf (H/32)
 *   top-down   f5 = lat5(e5); f4 = up(f5) + lat4(e4); f3 = up(f4) + lat3(e3);
 *              f2 = up(f3) + lat2(e2); lat 1×1 → 4nf (conv → norm → LReLU), up bilinear 2×
 *   final      g_s = final_s(f_s), 3×3 4nf→2nf (conv → norm → LReLU), s = 2, 3, 4
 *   heads      tf 1×1 2nf→1, seg 1×1 2nf→2nf (shared over scales, plain convs with bias)
 *   embedding  emb = 1×1 conv snc→2nf on seg, avg-pooled 2× to H/4, H/8, H/16
 *   score_s    tf(g_s) + Σ_c emb_s · seg(g_s)   (N, 1, H/2^s, W/2^s)
 *   features   e2, e3, e4, e5 (feature matching, weight 1/4 each: the reference
 *              divides lambda_feat by the number of features, len(feat_fake) = 4)
 *
 * --no_semantic_embedding: score_s = tf(g_s) (no seg head, no embedding).
 * --no_d_pyramid: no top-down pathway; f_s = lat_s(e_s) for s = 2, 3, 4 (the
 * lateral is the 1×1 projection that brings e_s to 4nf), then the same final
 * convs and heads; lat5 does not exist.
 * --fpse_plain_enc1 (a documented DEVIATION, off by default): enc1 is a
 * (spectral) conv with bias → LReLU, no instance norm. With instance norm after
 * enc1 (spec and reference) every feature D computes is invariant, up to the
 * zero-padded border, to a per-image scaling of the image (LReLU is positively
 * homogeneous, the next norm removes the scale) and nearly so to per-channel
 * colour offsets: neither the hinge nor the feature-matching loss then pins the
 * fake's contrast, and without the VGG loss a small model trains to low-contrast
 * gray images whose layout is only visible after a contrast stretch. */
#include <stdio.h>
#include <string.h>

#include "clcore/ops.h"
#include "nets/discriminator.h"

int clsynth_fpse_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, clsynth_fpse *d,
                   clsynth_err *err)
{
    memset(d, 0, sizeof *d);
    clsynth_norm_cfg cfg;
    if (clsynth_norm_parse(o->norm_D, "--norm_D", &cfg, err))
        return -1;
    char buf[64];
    int nf = d->nf = o->ndf;
    d->semantic_nc = clsynth_options_semantic_nc(o);
    d->pyramid = !o->no_d_pyramid;
    d->embedding = !o->no_semantic_embedding;
    const int cin[5] = { 3, nf, 2 * nf, 4 * nf, 8 * nf };
    const int cout[5] = { nf, 2 * nf, 4 * nf, 8 * nf, 8 * nf };
    const clsynth_norm_cfg plain1 = { cfg.spectral, CLSYNTH_NORM_NONE }; /* --fpse_plain_enc1 */
    for (int i = 0; i < 5; i++) /* enc (cout, cin, 3, 3) stride 2 */
        clsynth_cna_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "enc%d", i + 1), cin[i], cout[i], 3, 2, 1,
                      i == 0 && o->fpse_plain_enc1 ? plain1 : cfg, true, &d->enc[i]);
    for (int s = 2; s <= 5; s++) { /* lat (4nf, C(e_s), 1, 1) */
        if (s == 5 && !d->pyramid)
            continue;
        clsynth_cna_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "lat%d", s), cout[s - 1], 4 * nf, 1, 1, 0, cfg, true,
                      &d->lat[s - 2]);
    }
    for (int s = 2; s <= 4; s++) /* final (2nf, 4nf, 3, 3) */
        clsynth_cna_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "final%d", s), 4 * nf, 2 * nf, 3, 1, 1, cfg, true,
                      &d->final[s - 2]);
    clsynth_conv_make(ctx, g, "tf", 2 * nf, 1, 1, 1, 0, true, false, &d->tf); /* (1, 2nf, 1, 1) */
    if (d->embedding) {
        clsynth_conv_make(ctx, g, "seg", 2 * nf, 2 * nf, 1, 1, 0, true, false, &d->seg);         /* (2nf, 2nf, 1, 1) */
        clsynth_conv_make(ctx, g, "embedding", d->semantic_nc, 2 * nf, 1, 1, 0, true, false, &d->emb); /* (2nf, snc, 1, 1) */
    }
    if (ctx->failed)
        return clsynth_fail(err, "%s", ctx->err.msg);
    return 0;
}

/* --half_activations: what fpse's forward made since `mark` goes to half
 * storage, but for what its rest reads: x (the next layer's input), the
 * features e2..e5, the top-down outputs, the embedding and the scores. */
static int fpse_stash(const clsynth_forward_mode *f, unsigned long mark, clsynth_tensor *x, clsynth_tensor *const *e,
                      clsynth_tensor *const *fs, clsynth_tensor *emb, const clsynth_d_out *out)
{
    clsynth_tensor *keep[2 + 4 + 4 + CLSYNTH_D_MAX_OUT];
    int n = 0;
    keep[n++] = x;
    keep[n++] = emb;
    for (int i = 1; i < 5; i++)
        keep[n++] = e[i];
    for (int s = 0; s < 4; s++)
        keep[n++] = fs[s];
    for (int s = 0; s < out->n_scores; s++)
        keep[n++] = out->score[s];
    return clsynth_forward_stash(f, mark, keep, n);
}

int clsynth_fpse_forward(const clsynth_forward_mode *f, const clsynth_fpse *d, clsynth_tensor *img, clsynth_tensor *seg,
                      clsynth_d_out *out)
{
    clsynth_ctx *ctx = f->ctx;
    memset(out, 0, sizeof *out);
    if (ctx->failed || !img || !seg)
        return -1;
    if (img->h % 32 || img->w % 32)
        return clsynth_ctx_fail(ctx, "fpse discriminator: image %dx%d is not divisible by 32", img->h, img->w);
    const unsigned long mark = ctx->tensor_serial;
    /* bottom-up: e[i] is e_{i+1} (N, C, H/2^(i+1), W/2^(i+1)) */
    clsynth_tensor *e[5] = { 0 }, *fs[4] = { 0 }, *emb = NULL;
    clsynth_tensor *x = img;
    for (int i = 0; i < 5; i++)
        if (!(x = e[i] = clsynth_cna_forward(f, &d->enc[i], x)) || fpse_stash(f, mark, x, e, fs, emb, out))
            return -1;
    /* top-down: fs[s-2] = f_s (N, 4nf, H/2^s, W/2^s) */
    if (d->pyramid) {
        fs[3] = clsynth_cna_forward(f, &d->lat[3], e[4]);
        for (int s = 4; s >= 2; s--)
            fs[s - 2] = clsynth_add(ctx, clsynth_upsample_bilinear2x(ctx, fs[s - 1]),
                                    clsynth_cna_forward(f, &d->lat[s - 2], e[s - 1]));
    } else {
        for (int s = 2; s <= 4; s++)
            fs[s - 2] = clsynth_cna_forward(f, &d->lat[s - 2], e[s - 1]);
    }
    if (fpse_stash(f, mark, NULL, e, fs, emb, out))
        return -1;
    /* semantic embedding at H/2 (pooled once), then H/4, H/8, H/16 */
    if (d->embedding)
        emb = clsynth_avg_pool2x2(ctx, clsynth_conv_forward(f, &d->emb, seg)); /* (N, 2nf, H/2, W/2) */
    for (int s = 2; s <= 4; s++) {
        clsynth_tensor *g_s = clsynth_cna_forward(f, &d->final[s - 2], fs[s - 2]); /* (N, 2nf, H/2^s, W/2^s) */
        clsynth_tensor *score = clsynth_conv_forward(f, &d->tf, g_s);              /* (N, 1, H/2^s, W/2^s) */
        if (d->embedding) {
            emb = clsynth_avg_pool2x2(ctx, emb);                                 /* (N, 2nf, H/2^s, W/2^s) */
            clsynth_tensor *segfeat = clsynth_conv_forward(f, &d->seg, g_s);        /* (N, 2nf, H/2^s, W/2^s) */
            score = clsynth_add(ctx, score, clsynth_channel_dot(ctx, emb, segfeat));
        }
        out->score[out->n_scores++] = score;
        if (fpse_stash(f, mark, NULL, e, fs, emb, out))
            return -1;
    }
    for (int i = 1; i < 5; i++) {
        out->feat[out->n_feats] = e[i];
        out->feat_weight[out->n_feats++] = 0.25f; /* lambda_feat / len(feats), as the reference */
    }
    return ctx->failed ? -1 : 0;
}

int clsynth_disc_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, clsynth_disc *d,
                   clsynth_err *err)
{
    memset(d, 0, sizeof *d);
    const int first_buffer = g->n_buffers;
    int rc;
    if (strcmp(o->netD, "fpse") == 0) {
        d->kind = CLSYNTH_D_FPSE;
        rc = clsynth_fpse_make(ctx, g, o, &d->fpse, err);
    } else if (strcmp(o->netD, "multiscale") == 0) {
        d->kind = CLSYNTH_D_MULTISCALE;
        rc = clsynth_multiscale_make(ctx, g, o, &d->ms, err);
    } else {
        return clsynth_fail(err, "--netD: unknown discriminator '%s' (fpse, multiscale)", o->netD);
    }
    if (!rc && clsynth_sn_collect(ctx, g, first_buffer, "D", &d->sn))
        return clsynth_fail(err, "%s", ctx->err.msg);
    return rc;
}

int clsynth_disc_forward(const clsynth_forward_mode *f, const clsynth_disc *d, clsynth_tensor *img, clsynth_tensor *seg,
                      clsynth_d_out *out)
{
    memset(out, 0, sizeof *out);
    clsynth_forward_mode fm; /* with every spectral-normalized weight normalized, all at once */
    if (f->ctx->failed || clsynth_sn_forward(f, d->sn, &fm))
        return -1;
    if (d->kind == CLSYNTH_D_FPSE)
        return clsynth_fpse_forward(&fm, &d->fpse, img, seg, out);
    return clsynth_multiscale_forward(&fm, &d->ms, img, seg, out);
}
