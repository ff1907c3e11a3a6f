/* Normalization ops: batch norm, instance norm, SPADE modulation
 * (kernels/norm.cl).
 *
 * Batch norm (training): per-channel mean and biased variance over (N, H, W),
 * reduced deterministically in two stages (chunk partials, then one merge per
 * channel; Welford/Chan, no atomics); y = (x - mean) * invstd * gamma + beta;
 * running stats updated in place, PyTorch style:
 *   running = (1 - momentum) * running + momentum * batch,
 * with the unbiased variance var * M / (M - 1), M = N*H*W (M = 1 is an error,
 * as in PyTorch). Running stats may be NULL in training (then nothing is
 * tracked); eval mode needs them. Backward (training), with xhat = (x-mean)*invstd:
 *   dx = gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)),
 *   dgamma = sum(dy*xhat), dbeta = sum(dy);
 * eval mode: dx = gamma*invstd*dy. Saved for backward: mean, invstd (1,C,1,1).
 *
 * Instance norm: the same kernels with statistics per (n, c) over (H, W)
 * (biased variance, no running stats); gamma/beta per channel.
 *
 * Tuning: the descriptors "norm_partial_stats" and "norm_partial_dsums"
 * (clcore/ops_norm_kdef.c) at shape key "G=<groups>,M=<values per group>":
 * NORM_VPT values per work-item (how the host cuts chunks) and the
 * work-group of the partial kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/program.h"

#define NORM_FILE "norm.cl"

/* How one (Nv, G, HW) reduction is cut: P chunks of CH values per group,
 * work-groups of L1 (partials) and L2 (merge) items. */
typedef struct norm_plan {
    int Nv, G, HW, M;
    int P, CH;
    size_t L1;
    cl_kernel partial;
} norm_plan;

/* A merge work-group size for kernel k: the automatic rule of the partial
 * kernels (clcore/ops_norm_kdef.c) within this kernel's own limit. */
static size_t reduce_local(clsynth_ctx *ctx, cl_kernel k, const char *kname, size_t bytes_per_item, size_t want)
{
    clsynth_klimits lim = clsynth_klimits_of(ctx);
    lim.max_wg = clsynth_kernel_max_wg(ctx, k, kname);
    return lim.max_wg ? clsynth_norm_auto_local(&lim, bytes_per_item, want) : 0;
}

/* Plans the reduction with the partial kernel of descriptor def. */
static int plan_reduction(clsynth_ctx *ctx, norm_plan *pl, const clsynth_kdef *def, clsynth_kforce *force, int Nv,
                          int G, int HW)
{
    memset(pl, 0, sizeof *pl);
    pl->Nv = Nv;
    pl->G = G;
    pl->HW = HW;
    pl->M = Nv * HW;
    const clsynth_norm_shape s = { G, pl->M };
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, def, &s, force, &cfg))
        return -1;
    pl->partial = cfg.k[0];
    pl->L1 = cfg.local[0];
    long chunk = (long)pl->L1 * cfg.v[NORM_VPT];
    pl->P = (int)(((long)pl->M + chunk - 1) / chunk);
    pl->CH = (int)(((long)pl->M + pl->P - 1) / pl->P);
    return 0;
}

/* Finalize work-group size for merging P partials. */
static size_t finalize_local(clsynth_ctx *ctx, cl_kernel k, const char *kname, size_t bytes_per_item, int P)
{
    return reduce_local(ctx, k, kname, bytes_per_item, (size_t)P);
}

/* mean, invstd (G) of x viewed as (Nv, G, HW); updates running stats when given. */
static int norm_stats(clsynth_ctx *ctx, const clsynth_tensor *x, int Nv, int G, int HW, float eps,
                      clsynth_tensor *mean, clsynth_tensor *invstd, clsynth_tensor *rmean, clsynth_tensor *rvar,
                      float momentum, clsynth_kforce *force)
{
    norm_plan pl;
    const size_t stat_bytes = sizeof(cl_int) + 2 * sizeof(cl_float);
    if (plan_reduction(ctx, &pl, &clsynth_kdef_norm_partial_stats, force, Nv, G, HW))
        return -1;
    clsynth_tensor *part = clsynth_tensor_new(ctx, "norm.stats_partials", 1, G, pl.P, 3); /* (1, G, P, 3) */
    if (!part)
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, pl.partial, "norm_partial_stats");
    clsynth_arg_tensor(&a, x);
    CLSYNTH_ARG_INTS(&a, Nv, G, HW, pl.P, pl.CH);
    clsynth_arg_tensor(&a, part);
    clsynth_arg_local(&a, pl.L1 * sizeof(cl_int));
    clsynth_arg_local(&a, pl.L1 * sizeof(cl_float));
    clsynth_arg_local(&a, pl.L1 * sizeof(cl_float));
    size_t g1[2] = { pl.L1 * (size_t)pl.P, (size_t)G }, l1[2] = { pl.L1, 1 };
    if (clsynth_launch(&a, 2, g1, l1, pl.L1 * stat_bytes, NULL))
        return -1;

    cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "norm_finalize_stats", NULL);
    if (!k)
        return -1;
    size_t L2 = finalize_local(ctx, k, "norm_finalize_stats", stat_bytes, pl.P);
    if (!L2)
        return -1;
    const int update = rmean != NULL;
    a = clsynth_args_begin(ctx, k, "norm_finalize_stats");
    clsynth_arg_tensor(&a, part);
    clsynth_arg_int(&a, pl.P);
    clsynth_arg_int(&a, G);
    clsynth_arg_tensor(&a, mean);
    clsynth_arg_tensor(&a, invstd);
    clsynth_arg_float(&a, eps);
    clsynth_arg_int(&a, update);
    clsynth_arg_tensor(&a, update ? rmean : mean);
    clsynth_arg_tensor(&a, update ? rvar : invstd);
    clsynth_arg_float(&a, momentum);
    clsynth_arg_local(&a, L2 * sizeof(cl_int));
    clsynth_arg_local(&a, L2 * sizeof(cl_float));
    clsynth_arg_local(&a, L2 * sizeof(cl_float));
    size_t g2[2] = { L2, (size_t)G }, l2[2] = { L2, 1 };
    return clsynth_launch(&a, 2, g2, l2, L2 * stat_bytes, NULL);
}

/* y (or dx) kernels over (HW, N*C). */
static int norm_apply(clsynth_ctx *ctx, const clsynth_tensor *x, clsynth_tensor *y, const clsynth_tensor *mean,
                      const clsynth_tensor *invstd, const clsynth_tensor *gamma, const clsynth_tensor *beta,
                      int per_instance)
{
    cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "norm_apply", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "norm_apply");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, y);
    clsynth_arg_tensor(&a, mean);
    clsynth_arg_tensor(&a, invstd);
    clsynth_arg_tensor(&a, gamma ? gamma : mean); /* dummies are never read */
    clsynth_arg_int(&a, gamma != NULL);
    clsynth_arg_tensor(&a, beta ? beta : mean);
    CLSYNTH_ARG_INTS(&a, beta != NULL, (int)CLSYNTH_HW(x), x->c, x->n * x->c, per_instance);
    size_t g[2] = { CLSYNTH_HW(x), (size_t)x->n * (size_t)x->c };
    return clsynth_launch(&a, 2, g, NULL, 0, NULL);
}

static bool needs_grad(const clsynth_tensor *t) { return t && (t->flags & CLSYNTH_T_REQUIRES_GRAD); }

/* Backward shared by batch and instance norm. in = {x, gamma, beta};
 * saved = {mean, invstd}; iarg = {training, per_instance}. */
static int norm_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2];
    clsynth_tensor *mean = nd->saved[0], *invstd = nd->saved[1];
    const clsynth_tensor *dy = nd->out->grad;
    const int training = nd->iarg[0], per_instance = nd->iarg[1];
    const bool need_dx = needs_grad(x), need_dg = needs_grad(gamma), need_db = needs_grad(beta);
    const int Nv = per_instance ? 1 : x->n;
    const int G = per_instance ? x->n * x->c : x->c;
    const int HW = (int)CLSYNTH_HW(x);
    clsynth_tensor *sums = NULL;

    if (need_dg || need_db || (need_dx && training)) {
        norm_plan pl;
        const size_t sum_bytes = 2 * sizeof(cl_float);
        if (plan_reduction(ctx, &pl, &clsynth_kdef_norm_partial_dsums, nd->force, Nv, G, HW))
            return -1;
        clsynth_tensor *part = clsynth_tensor_new(ctx, "norm.dsum_partials", 1, G, pl.P, 2); /* (1, G, P, 2) */
        sums = clsynth_tensor_new(ctx, "norm.dsums", 1, G, 1, 2);                          /* (1, G, 1, 2) */
        if (!part || !sums)
            return -1;
        clsynth_args a = clsynth_args_begin(ctx, pl.partial, "norm_partial_dsums");
        clsynth_arg_tensor(&a, x);
        clsynth_arg_tensor(&a, dy);
        clsynth_arg_tensor(&a, mean);
        clsynth_arg_tensor(&a, invstd);
        CLSYNTH_ARG_INTS(&a, Nv, G, HW, pl.P, pl.CH);
        clsynth_arg_tensor(&a, part);
        clsynth_arg_local(&a, pl.L1 * sizeof(cl_float));
        clsynth_arg_local(&a, pl.L1 * sizeof(cl_float));
        size_t g1[2] = { pl.L1 * (size_t)pl.P, (size_t)G }, l1[2] = { pl.L1, 1 };
        if (clsynth_launch(&a, 2, g1, l1, pl.L1 * sum_bytes, NULL))
            return -1;

        cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "norm_finalize_dsums", NULL);
        if (!k)
            return -1;
        size_t L2 = finalize_local(ctx, k, "norm_finalize_dsums", sum_bytes, pl.P);
        if (!L2)
            return -1;
        a = clsynth_args_begin(ctx, k, "norm_finalize_dsums");
        clsynth_arg_tensor(&a, part);
        clsynth_arg_int(&a, pl.P);
        clsynth_arg_int(&a, G);
        clsynth_arg_tensor(&a, sums);
        clsynth_arg_local(&a, L2 * sizeof(cl_float));
        clsynth_arg_local(&a, L2 * sizeof(cl_float));
        size_t g2[2] = { L2, (size_t)G }, l2[2] = { L2, 1 };
        if (clsynth_launch(&a, 2, g2, l2, L2 * sum_bytes, NULL))
            return -1;
    }

    if (need_dg || need_db) {
        clsynth_tensor *dg = need_dg ? clsynth_grad_of(ctx, gamma) : NULL;
        clsynth_tensor *db = need_db ? clsynth_grad_of(ctx, beta) : NULL;
        if ((need_dg && !dg) || (need_db && !db))
            return -1;
        cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "norm_affine_grad", NULL);
        clsynth_args a = clsynth_args_begin(ctx, k, "norm_affine_grad");
        clsynth_arg_tensor(&a, sums);
        clsynth_arg_int(&a, per_instance ? x->n : 1);
        clsynth_arg_int(&a, x->c);
        clsynth_arg_tensor(&a, dg ? dg : sums);
        clsynth_arg_int(&a, dg != NULL);
        clsynth_arg_tensor(&a, db ? db : sums);
        clsynth_arg_int(&a, db != NULL);
        size_t g = (size_t)x->c;
        if (clsynth_launch(&a, 1, &g, NULL, 0, NULL))
            return -1;
    }

    if (need_dx) {
        clsynth_tensor *dx = clsynth_grad_of(ctx, x);
        if (!dx)
            return -1;
        cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "norm_backward_dx", NULL);
        clsynth_args a = clsynth_args_begin(ctx, k, "norm_backward_dx");
        clsynth_arg_tensor(&a, x);
        clsynth_arg_tensor(&a, dy);
        clsynth_arg_tensor(&a, dx);
        clsynth_arg_tensor(&a, mean);
        clsynth_arg_tensor(&a, invstd);
        clsynth_arg_tensor(&a, gamma ? gamma : mean);
        clsynth_arg_int(&a, gamma != NULL);
        clsynth_arg_tensor(&a, sums ? sums : mean);
        CLSYNTH_ARG_INTS(&a, HW, x->c, x->n * x->c, per_instance, training);
        clsynth_arg_float(&a, (float)Nv * (float)HW);
        size_t g[2] = { (size_t)HW, (size_t)x->n * (size_t)x->c };
        if (clsynth_launch(&a, 2, g, NULL, 0, NULL))
            return -1;
    }
    return 0;
}

/* Checks that an optional per-channel tensor is (1, C, 1, 1). */
static int check_per_channel(clsynth_ctx *ctx, const char *op, const char *role, const clsynth_tensor *t,
                             const clsynth_tensor *x)
{
    if (!t || (t->n == 1 && t->c == x->c && t->h == 1 && t->w == 1))
        return 0;
    char bx[128], bt[128];
    return clsynth_ctx_fail(ctx, "%s: %s %s must be (1, %d, 1, 1) for x %s", op, role,
                            clsynth_tensor_describe(t, bt, sizeof bt), x->c,
                            clsynth_tensor_describe(x, bx, sizeof bx));
}

clsynth_tensor *clsynth_batch_norm_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                          clsynth_tensor *beta, clsynth_tensor *running_mean,
                                          clsynth_tensor *running_var, bool training, float momentum, float eps,
                                          clsynth_kforce *force)
{
    if (ctx->failed || !x)
        return NULL;
    char bx[128];
    if (check_per_channel(ctx, "batch_norm", "gamma", gamma, x) ||
        check_per_channel(ctx, "batch_norm", "beta", beta, x) ||
        check_per_channel(ctx, "batch_norm", "running_mean", running_mean, x) ||
        check_per_channel(ctx, "batch_norm", "running_var", running_var, x))
        return NULL;
    if ((running_mean == NULL) != (running_var == NULL)) {
        clsynth_ctx_fail(ctx, "batch_norm: x %s: give both running_mean and running_var or neither",
                         clsynth_tensor_describe(x, bx, sizeof bx));
        return NULL;
    }
    if (!training && !running_mean) {
        clsynth_ctx_fail(ctx, "batch_norm: x %s: eval mode needs running_mean and running_var",
                         clsynth_tensor_describe(x, bx, sizeof bx));
        return NULL;
    }
    const long M = (long)x->n * (long)CLSYNTH_HW(x);
    if (training && M < 2) {
        clsynth_ctx_fail(ctx, "batch_norm: x %s: training needs more than 1 value per channel "
                              "(N*H*W = %ld; the unbiased variance divides by N*H*W - 1)",
                         clsynth_tensor_describe(x, bx, sizeof bx), M);
        return NULL;
    }
    clsynth_tensor *mean = clsynth_tensor_new(ctx, "batch_norm.mean", 1, x->c, 1, 1);     /* (1, C, 1, 1) */
    clsynth_tensor *invstd = clsynth_tensor_new(ctx, "batch_norm.invstd", 1, x->c, 1, 1); /* (1, C, 1, 1) */
    clsynth_tensor *y = clsynth_tensor_new(ctx, "batch_norm", x->n, x->c, x->h, x->w);   /* (N, C, H, W) */
    if (!mean || !invstd || !y)
        return NULL;
    if (training) {
        if (norm_stats(ctx, x, x->n, x->c, (int)CLSYNTH_HW(x), eps, mean, invstd, running_mean, running_var,
                       momentum, force))
            return NULL;
    } else {
        cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "norm_eval_stats", NULL);
        clsynth_args a = clsynth_args_begin(ctx, k, "norm_eval_stats");
        clsynth_arg_tensor(&a, running_mean);
        clsynth_arg_tensor(&a, running_var);
        clsynth_arg_int(&a, x->c);
        clsynth_arg_float(&a, eps);
        clsynth_arg_tensor(&a, mean);
        clsynth_arg_tensor(&a, invstd);
        size_t g = (size_t)x->c;
        if (clsynth_launch(&a, 1, &g, NULL, 0, NULL))
            return NULL;
    }
    if (norm_apply(ctx, x, y, mean, invstd, gamma, beta, 0))
        return NULL;
    clsynth_tensor *in[3] = { x, gamma, beta };
    clsynth_node *nd = clsynth_tape_record(ctx, "batch_norm", norm_backward, y, in, 3);
    if (nd) {
        nd->saved[0] = mean;
        nd->saved[1] = invstd;
        nd->iarg[0] = training;
        nd->iarg[1] = 0;
        nd->force = force;
    }
    return ctx->failed ? NULL : y;
}

clsynth_tensor *clsynth_batch_norm(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma, clsynth_tensor *beta,
                                   clsynth_tensor *running_mean, clsynth_tensor *running_var, bool training,
                                   float momentum, float eps)
{
    return clsynth_batch_norm_forced(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, NULL);
}

clsynth_tensor *clsynth_instance_norm(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                      clsynth_tensor *beta, float eps)
{
    if (ctx->failed || !x)
        return NULL;
    if (check_per_channel(ctx, "instance_norm", "gamma", gamma, x) ||
        check_per_channel(ctx, "instance_norm", "beta", beta, x))
        return NULL;
    const int G = x->n * x->c;
    clsynth_tensor *mean = clsynth_tensor_new(ctx, "instance_norm.mean", x->n, x->c, 1, 1);     /* (N, C, 1, 1) */
    clsynth_tensor *invstd = clsynth_tensor_new(ctx, "instance_norm.invstd", x->n, x->c, 1, 1); /* (N, C, 1, 1) */
    clsynth_tensor *y = clsynth_tensor_new(ctx, "instance_norm", x->n, x->c, x->h, x->w);       /* (N, C, H, W) */
    if (!mean || !invstd || !y)
        return NULL;
    if (norm_stats(ctx, x, 1, G, (int)CLSYNTH_HW(x), eps, mean, invstd, NULL, NULL, 0.0f, NULL) ||
        norm_apply(ctx, x, y, mean, invstd, gamma, beta, 1))
        return NULL;
    clsynth_tensor *in[3] = { x, gamma, beta };
    clsynth_node *nd = clsynth_tape_record(ctx, "instance_norm", norm_backward, y, in, 3);
    if (nd) {
        nd->saved[0] = mean;
        nd->saved[1] = invstd;
        nd->iarg[0] = 1;
        nd->iarg[1] = 1;
    }
    return ctx->failed ? NULL : y;
}

/* ---- SPADE modulation ---- */

static int spade_mod_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2];
    const clsynth_tensor *dy = nd->out->grad;
    clsynth_tensor *dx = needs_grad(x) ? clsynth_grad_of(ctx, x) : NULL;
    clsynth_tensor *dg = needs_grad(gamma) ? clsynth_grad_of(ctx, gamma) : NULL;
    clsynth_tensor *db = needs_grad(beta) ? clsynth_grad_of(ctx, beta) : NULL;
    if (ctx->failed)
        return -1;
    cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "spade_mod_backward", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "spade_mod_backward");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, gamma);
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, dx ? dx : dy); /* dummies are never written */
    clsynth_arg_int(&a, dx != NULL);
    clsynth_arg_tensor(&a, dg ? dg : dy);
    clsynth_arg_int(&a, dg != NULL);
    clsynth_arg_tensor(&a, db ? db : dy);
    clsynth_arg_int(&a, db != NULL);
    clsynth_arg_int(&a, (int)x->numel);
    size_t g = x->numel;
    return clsynth_launch(&a, 1, &g, NULL, 0, NULL);
}

clsynth_tensor *clsynth_spade_mod(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                  clsynth_tensor *beta)
{
    if (ctx->failed || !x || !gamma || !beta)
        return NULL;
    if (!clsynth_same_shape(x, gamma) || !clsynth_same_shape(x, beta)) {
        char bx[128], bg[128], bb[128];
        clsynth_ctx_fail(ctx, "spade_mod: x %s, gamma %s and beta %s must have the same shape",
                         clsynth_tensor_describe(x, bx, sizeof bx), clsynth_tensor_describe(gamma, bg, sizeof bg),
                         clsynth_tensor_describe(beta, bb, sizeof bb));
        return NULL;
    }
    clsynth_tensor *y = clsynth_tensor_new(ctx, "spade_mod", x->n, x->c, x->h, x->w); /* (N, C, H, W) */
    if (!y)
        return NULL;
    cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "spade_mod_forward", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "spade_mod_forward");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, gamma);
    clsynth_arg_tensor(&a, beta);
    clsynth_arg_tensor(&a, y);
    clsynth_arg_int(&a, (int)x->numel);
    size_t g = x->numel;
    if (clsynth_launch(&a, 1, &g, NULL, 0, NULL))
        return NULL;
    clsynth_tensor *in[3] = { x, gamma, beta };
    clsynth_tape_record(ctx, "spade_mod", spade_mod_backward, y, in, 3);
    return ctx->failed ? NULL : y;
}
