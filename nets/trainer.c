/* One training iteration: a generator step, then a discriminator step, in
 * the authors' order (see clsynth_train_step in nets/model.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "clcore/autograd.h"
#include "clcore/comm.h"
#include "clcore/ops.h"
#include "nets/losses.h"
#include "nets/model_impl.h"

/* Copies a step input into a persistent model-owned tensor of the same shape. */
static clsynth_tensor *stage(clsynth_ctx *ctx, clsynth_tensor **slot, const char *name, clsynth_tensor *src)
{
    if (*slot && !clsynth_same_shape(*slot, src)) {
        clsynth_tensor_free(ctx, *slot);
        *slot = NULL;
    }
    if (!*slot && !(*slot = clsynth_tensor_new_persistent(ctx, name, src->n, src->c, src->h, src->w)))
        return NULL;
    return clsynth_tensor_copy(ctx, *slot, src) ? NULL : *slot;
}

/* Abandons a step: drops the tape and the activations. */
static int abandon(clsynth_ctx *ctx)
{
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    return -1;
}

/* Reads a loss to the host and fails on NaN/Inf naming it. */
static int read_loss(clsynth_ctx *ctx, clsynth_tensor *t, const char *name, float *out)
{
    if (ctx->failed || !t)
        return -1;
    if (clsynth_scalar(ctx, t, out))
        return -1;
    if (!isfinite(*out))
        return clsynth_ctx_fail(ctx, "train step: loss %s is %s; the update was not applied", name,
                                isnan(*out) ? "NaN" : "infinite");
    return 0;
}

static clsynth_tensor *generate_fake(const clsynth_forward_mode *f, clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real,
                                     clsynth_tensor **mu, clsynth_tensor **logvar)
{
    clsynth_tensor *z = clsynth_model_z(f, m, seg->n, real, mu, logvar);
    if (m->opt.use_vae && !z)
        return NULL;
    return clsynth_generator_forward(f, &m->gen, seg, z); /* (N, 3, H, W) */
}

/* --half_activations: right before the backward, what the step's forward
 * left in float (the networks' kept block outputs, features, scores) goes to
 * half storage too; only the loss stays. */
static int stash_for_backward(const clsynth_forward_mode *f, unsigned long mark, clsynth_tensor *loss)
{
    return clsynth_forward_stash(f, mark, &loss, 1);
}

static int d_step(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, clsynth_losses *out)
{
    clsynth_forward_mode f = { ctx, true, true, NULL, m->opt.half_activations };
    const unsigned long step_mark = ctx->tensor_serial;
    if (clsynth_group_zero_grad(ctx, m->D))
        return -1;
    clsynth_group_set_requires_grad(m->D, true);

    unsigned long mark = ctx->tensor_serial;
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *fake = generate_fake(&f, m, seg, real, NULL, NULL);
    clsynth_no_grad_end(ctx);
    if (!fake)
        return abandon(ctx);
    clsynth_release_newer(ctx, mark, &fake, 1); /* G's intermediates: only fake is needed */

    clsynth_d_out pf, pr;
    clsynth_forward_mode f_again = { ctx, true, false, NULL, f.stash_half }; /* one power iteration per D pass over fake + real */
    if (clsynth_disc_forward(&f, &m->disc, fake, seg, &pf) || clsynth_disc_forward(&f_again, &m->disc, real, seg, &pr))
        return abandon(ctx);
    clsynth_tensor *d_fake = clsynth_loss_d_hinge(ctx, &pf, false);
    clsynth_tensor *d_real = clsynth_loss_d_hinge(ctx, &pr, true);
    clsynth_tensor *loss = clsynth_add(ctx, d_fake, d_real);
    if (read_loss(ctx, d_fake, "D_fake", &out->D_fake) || read_loss(ctx, d_real, "D_real", &out->D_real) || !loss)
        return abandon(ctx);
    if (stash_for_backward(&f, step_mark, loss) || clsynth_backward(ctx, loss) ||
        clsynth_comm_average_grads(ctx, m->D))
        return abandon(ctx);
    return clsynth_adam_step(ctx, m->D);
}

static int g_step(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, clsynth_losses *out)
{
    const clsynth_options *o = &m->opt;
    clsynth_forward_mode f = { ctx, true, true, NULL, o->half_activations };
    const unsigned long step_mark = ctx->tensor_serial;
    if (clsynth_group_zero_grad(ctx, m->G))
        return -1;
    clsynth_group_set_requires_grad(m->D, false);

    clsynth_tensor *mu = NULL, *logvar = NULL;
    clsynth_tensor *fake = generate_fake(&f, m, seg, real, &mu, &logvar);
    clsynth_d_out pf, pr;
    if (!fake || clsynth_disc_forward(&f, &m->disc, fake, seg, &pf))
        goto fail;
    clsynth_tensor *g_gan = clsynth_loss_g_hinge(ctx, &pf);
    if (read_loss(ctx, g_gan, "G_GAN", &out->G_GAN))
        goto fail;
    clsynth_tensor *total = g_gan;
    if (!o->no_ganFeat_loss) {
        clsynth_forward_mode f_real = { ctx, true, false, NULL, f.stash_half }; /* no grad: stashing frees */
        unsigned long mark = ctx->tensor_serial;
        clsynth_no_grad_begin(ctx);
        int rc = clsynth_disc_forward(&f_real, &m->disc, real, seg, &pr);
        clsynth_no_grad_end(ctx);
        if (rc)
            goto fail;
        /* of D's pass over real only the features are needed (the loss of
         * feature matching); its other intermediates go now, not after backward */
        clsynth_release_newer(ctx, mark, pr.feat, pr.n_feats);
        clsynth_tensor *feat = clsynth_loss_feat(ctx, &pf, &pr, o->lambda_feat);
        if (read_loss(ctx, feat, "G_GAN_Feat", &out->G_GAN_Feat))
            goto fail;
        total = clsynth_add(ctx, total, feat);
    }
    if (m->vgg) {
        clsynth_tensor *vgg = clsynth_scale(ctx, clsynth_vgg_loss(ctx, m->vgg, fake, real), o->lambda_vgg);
        if (read_loss(ctx, vgg, "G_VGG", &out->G_VGG))
            goto fail;
        total = clsynth_add(ctx, total, vgg);
    }
    if (o->use_vae) {
        clsynth_tensor *kld = clsynth_loss_kld(ctx, mu, logvar, o->lambda_kld);
        if (read_loss(ctx, kld, "KLD", &out->KLD))
            goto fail;
        total = clsynth_add(ctx, total, kld);
    }
    float t;
    if (read_loss(ctx, total, "G total", &t) || stash_for_backward(&f, step_mark, total) ||
        clsynth_backward(ctx, total) || clsynth_comm_average_grads(ctx, m->G))
        goto fail;
    clsynth_group_set_requires_grad(m->D, true);
    return clsynth_adam_step(ctx, m->G);
fail:
    clsynth_group_set_requires_grad(m->D, true);
    return abandon(ctx);
}

int clsynth_train_step(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real,
                       clsynth_losses *out)
{
    memset(out, 0, sizeof *out);
    if (ctx->failed || !seg || !real)
        return -1;
    int H = m->gen.sh << m->gen.num_up, W = m->gen.sw << m->gen.num_up;
    if (seg->c != m->gen.semantic_nc || seg->h != H || seg->w != W || real->n != seg->n || real->c != 3 ||
        real->h != H || real->w != W) {
        char a[96], b[96];
        return clsynth_ctx_fail(ctx, "train step: seg %s and real %s; expected (N, %d, %d, %d) and (N, 3, %d, %d)",
                                clsynth_tensor_describe(seg, a, sizeof a), clsynth_tensor_describe(real, b, sizeof b),
                                m->gen.semantic_nc, H, W, H, W);
    }
    if (seg->flags & CLSYNTH_T_REQUIRES_GRAD || real->flags & CLSYNTH_T_REQUIRES_GRAD)
        return clsynth_ctx_fail(ctx, "train step: seg and real must not require grad");
    if (m->opt.half_activations && clsynth_half_storage_check(ctx, "train step: --half_activations"))
        return -1;
    seg = stage(ctx, &m->in_seg, "train.seg", seg);
    real = stage(ctx, &m->in_real, "train.real", real);
    if (!seg || !real)
        return abandon(ctx);
    clsynth_release_activations(ctx); /* the caller's inputs are copied */
    /* the authors' order: G's step, then D's on the updated G; each averages its
     * network's gradients over the ranks before its Adam step */
    if (g_step(ctx, m, seg, real, out) || d_step(ctx, m, seg, real, out))
        return -1;
    /* data-parallel: buffers (running statistics, spectral-norm u and v) follow rank 0 */
    if (clsynth_comm_broadcast_buffers(ctx, m->G, 0) || clsynth_comm_broadcast_buffers(ctx, m->D, 0))
        return -1;
    return 0;
}
