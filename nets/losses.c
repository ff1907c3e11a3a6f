/* Hinge GAN, feature matching and KL losses. */
#include "nets/losses.h"

#include "clcore/ops.h"

static clsynth_tensor *sum_list(clsynth_ctx *ctx, clsynth_tensor **terms, int n)
{
    clsynth_tensor *s = n > 0 ? terms[0] : NULL;
    for (int i = 1; i < n; i++)
        s = clsynth_add(ctx, s, terms[i]);
    return s;
}

clsynth_tensor *clsynth_loss_d_hinge(clsynth_ctx *ctx, const clsynth_d_out *d, bool real)
{
    if (ctx->failed || d->n_scores < 1)
        return NULL;
    clsynth_tensor *terms[CLSYNTH_D_MAX_OUT];
    for (int k = 0; k < d->n_scores; k++)
        terms[k] = clsynth_hinge_d(ctx, d->score[k], real);
    return clsynth_scale(ctx, sum_list(ctx, terms, d->n_scores), 1.0f / (float)d->n_scores);
}

clsynth_tensor *clsynth_loss_g_hinge(clsynth_ctx *ctx, const clsynth_d_out *fake)
{
    if (ctx->failed || fake->n_scores < 1)
        return NULL;
    clsynth_tensor *terms[CLSYNTH_D_MAX_OUT];
    for (int k = 0; k < fake->n_scores; k++)
        terms[k] = clsynth_hinge_g(ctx, fake->score[k]);
    return clsynth_scale(ctx, sum_list(ctx, terms, fake->n_scores), 1.0f / (float)fake->n_scores);
}

clsynth_tensor *clsynth_loss_feat(clsynth_ctx *ctx, const clsynth_d_out *fake, const clsynth_d_out *real, float lambda)
{
    if (ctx->failed)
        return NULL;
    if (fake->n_feats != real->n_feats || fake->n_feats < 1) {
        clsynth_ctx_fail(ctx, "feature matching: %d fake and %d real features", fake->n_feats, real->n_feats);
        return NULL;
    }
    clsynth_tensor *terms[CLSYNTH_D_MAX_OUT];
    for (int i = 0; i < fake->n_feats; i++)
        terms[i] = clsynth_scale(ctx, clsynth_l1_loss(ctx, fake->feat[i], real->feat[i]),
                                 lambda * fake->feat_weight[i]);
    return sum_list(ctx, terms, fake->n_feats);
}

clsynth_tensor *clsynth_loss_kld(clsynth_ctx *ctx, clsynth_tensor *mu, clsynth_tensor *logvar, float lambda)
{
    return clsynth_scale(ctx, clsynth_kl_loss(ctx, mu, logvar), lambda);
}
