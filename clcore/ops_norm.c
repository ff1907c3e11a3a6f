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
 * The statistics, apply and gradient steps are also run one by one, with
 * collectives in between, by synchronized batch norm (clcore/norm_steps.h,
 * clcore/ops_syncbn.c).
 *
 * Tuning: the descriptors "norm_partial_stats" and "norm_partial_dsums"
 * (clcore/ops_norm_kdef.c) at shape key "G=<groups>,M=<values per group>":
 * NORM_VPT values per work-item (how the host cuts chunks) and the
 * work-group of the partial kernel. Both ops resolve them through
 * clsynth_norm_resolve, and every step that launches a partial kernel takes
 * the resolved configuration. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/launch.h"
#include "clcore/norm_steps.h"
#include "clcore/ops.h"
#include "clcore/program.h"

#define NORM_FILE "norm.cl"

/* How one (Nv, G, HW) reduction is cut by a resolved configuration: P
 * chunks of CH values per group, work-groups of L1 items for the partials. */
typedef struct norm_plan {
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

int clsynth_norm_resolve(clsynth_ctx *ctx, const clsynth_kdef *def, clsynth_kforce *force, int Nv, int G, int HW,
                         clsynth_kcfg *cfg)
{
    if (ctx->failed)
        return -1;
    const clsynth_norm_shape s = { G, Nv * HW };
    return clsynth_kconfig(ctx, def, &s, force, cfg);
}

/* The plan of cfg (resolved from descriptor def) for (Nv, G, HW). */
static int plan_of(clsynth_ctx *ctx, const clsynth_kcfg *cfg, const clsynth_kdef *def, int Nv, int G, int HW,
                   norm_plan *pl)
{
    char key[CLSYNTH_K_KEY_MAX];
    const clsynth_norm_shape s = { G, Nv * HW };
    def->format(&s, key, sizeof key);
    if (cfg->def != def || strcmp(cfg->key, key) != 0)
        return clsynth_ctx_fail(ctx, "norm: a configuration of %s at %s given for %s at %s",
                                cfg->def ? cfg->def->key : "(none)", cfg->key, def->key, key);
    memset(pl, 0, sizeof *pl);
    const long M = (long)Nv * HW, chunk = (long)cfg->local[0] * cfg->v[NORM_VPT];
    pl->partial = cfg->k[0];
    pl->L1 = cfg->local[0];
    pl->P = (int)((M + chunk - 1) / chunk);
    pl->CH = (int)((M + pl->P - 1) / pl->P);
    return 0;
}

/* Finalize work-group size for merging P partials. */
static size_t finalize_local(clsynth_ctx *ctx, cl_kernel k, const char *kname, size_t bytes_per_item, int P)
{
    return reduce_local(ctx, k, kname, bytes_per_item, (size_t)P);
}

#define STATS_BYTES (sizeof(cl_int) + 2 * sizeof(cl_float)) /* (count, mean, M2) per work-item */
#define DSUMS_BYTES (2 * sizeof(cl_float))                  /* (sum dy, sum dy * xhat) */

/* The forward's output that norm_partial_stats writes too when it finalizes:
 * y = act((x - mean) * invstd * gamma + beta), as clsynth_norm_apply. */
typedef struct norm_apply_out {
    clsynth_tensor *y;
    const clsynth_tensor *gamma, *beta; /* either NULL: none */
    const clsynth_norm_actv *act;       /* NULL: none */
} norm_apply_out;

/* What norm_partial_stats writes besides its partials when it finalizes (P = 1). */
typedef struct norm_stats_out {
    clsynth_tensor *mean, *invstd, *rmean, *rvar; /* rmean, rvar NULL: no running statistics */
    float eps, momentum;
    const norm_apply_out *apply; /* NULL: statistics only */
} norm_stats_out;

/* The partials of plan pl into part, or with fin (pl.P = 1) the statistics. */
static int launch_partial_stats(clsynth_ctx *ctx, const norm_plan *pl, const clsynth_tensor *x, int Nv, int G,
                                int HW, clsynth_tensor *part, const norm_stats_out *fin)
{
    const int update = fin && fin->rmean;
    clsynth_args a = clsynth_args_begin(ctx, pl->partial, "norm_partial_stats");
    clsynth_arg_tensor(&a, x);
    CLSYNTH_ARG_INTS(&a, Nv, G, HW, pl->P, pl->CH);
    clsynth_arg_tensor(&a, part ? part : fin->mean); /* dummies are never touched */
    clsynth_arg_int(&a, fin != NULL);
    clsynth_arg_tensor(&a, fin ? fin->mean : part);
    clsynth_arg_tensor(&a, fin ? fin->invstd : part);
    clsynth_arg_float(&a, fin ? fin->eps : 0.0f);
    clsynth_arg_int(&a, update);
    clsynth_arg_tensor(&a, update ? fin->rmean : fin ? fin->mean : part);
    clsynth_arg_tensor(&a, update ? fin->rvar : fin ? fin->mean : part);
    clsynth_arg_float(&a, fin ? fin->momentum : 0.0f);
    const norm_apply_out *ap = fin ? fin->apply : NULL;
    const bool with_act = ap && ap->act && ap->act->on;
    clsynth_arg_int(&a, ap != NULL);
    clsynth_arg_tensor(&a, ap ? ap->y : x); /* dummies are never touched */
    clsynth_arg_tensor(&a, ap && ap->gamma ? ap->gamma : x);
    clsynth_arg_int(&a, ap && ap->gamma);
    clsynth_arg_tensor(&a, ap && ap->beta ? ap->beta : x);
    clsynth_arg_int(&a, ap && ap->beta);
    clsynth_arg_int(&a, ap ? ap->y->c : 1);
    clsynth_arg_int(&a, with_act);
    clsynth_arg_float(&a, with_act ? ap->act->slope : 0.0f);
    clsynth_arg_local(&a, pl->L1 * sizeof(cl_int));
    clsynth_arg_local(&a, pl->L1 * sizeof(cl_float));
    clsynth_arg_local(&a, pl->L1 * sizeof(cl_float));
    size_t g1[2] = { pl->L1 * (size_t)pl->P, (size_t)G }, l1[2] = { pl->L1, 1 };
    return clsynth_launch(&a, 2, g1, l1, pl->L1 * STATS_BYTES, NULL);
}

clsynth_tensor *clsynth_norm_partial_moments(clsynth_ctx *ctx, const clsynth_kcfg *cfg, const clsynth_tensor *x,
                                             int Nv, int G, int HW)
{
    norm_plan pl = { 0 };
    if (ctx->failed || plan_of(ctx, cfg, &clsynth_kdef_norm_partial_stats, Nv, G, HW, &pl))
        return NULL;
    clsynth_tensor *part = clsynth_tensor_new(ctx, "norm.stats_partials", 1, G, pl.P, 3); /* (1, G, P, 3) */
    if (!part)
        return NULL;
    return launch_partial_stats(ctx, &pl, x, Nv, G, HW, part, NULL) ? NULL : part;
}

/* mean, invstd (G) of x viewed as (Nv, G, HW); updates running stats when
 * given. One launch where one chunk covers a group, else partials + merge.
 * With ap (may be NULL), the one launch writes ap->y too and *applied is set;
 * otherwise the caller runs clsynth_norm_apply. */
static int norm_stats(clsynth_ctx *ctx, const clsynth_tensor *x, int Nv, int G, int HW, float eps,
                      clsynth_tensor *mean, clsynth_tensor *invstd, clsynth_tensor *rmean, clsynth_tensor *rvar,
                      float momentum, clsynth_kforce *force, const norm_apply_out *ap, bool *applied)
{
    *applied = false;
    const size_t stat_bytes = STATS_BYTES;
    clsynth_kcfg cfg;
    norm_plan pl = { 0 };
    if (clsynth_norm_resolve(ctx, &clsynth_kdef_norm_partial_stats, force, Nv, G, HW, &cfg) ||
        plan_of(ctx, &cfg, &clsynth_kdef_norm_partial_stats, Nv, G, HW, &pl))
        return -1;
    if (pl.P == 1) {
        const norm_stats_out fin = { mean, invstd, rmean, rvar, eps, momentum, ap };
        *applied = ap != NULL;
        return launch_partial_stats(ctx, &pl, x, Nv, G, HW, NULL, &fin);
    }
    clsynth_tensor *part = clsynth_norm_partial_moments(ctx, &cfg, x, Nv, G, HW); /* (1, G, P, 3) */
    if (!part)
        return -1;
    const int P = part->h;
    cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "norm_finalize_stats", NULL);
    if (!k)
        return -1;
    size_t L2 = finalize_local(ctx, k, "norm_finalize_stats", stat_bytes, P);
    if (!L2)
        return -1;
    const int update = rmean != NULL;
    clsynth_args a = clsynth_args_begin(ctx, k, "norm_finalize_stats");
    clsynth_arg_tensor(&a, part);
    clsynth_arg_int(&a, P);
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
int clsynth_norm_apply(clsynth_ctx *ctx, const clsynth_tensor *x, clsynth_tensor *y, const clsynth_tensor *mean,
                       const clsynth_tensor *invstd, const clsynth_tensor *gamma, const clsynth_tensor *beta,
                       int per_instance, const clsynth_norm_actv *act)
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
    CLSYNTH_ARG_INTS(&a, beta != NULL, (int)CLSYNTH_HW(x), x->c, x->n * x->c, per_instance, act && act->on);
    clsynth_arg_float(&a, act && act->on ? act->slope : 0.0f);
    size_t g[2] = { CLSYNTH_HW(x), (size_t)x->n * (size_t)x->c };
    return clsynth_launch(&a, 2, g, NULL, 0, NULL);
}

static bool needs_grad(const clsynth_tensor *t) { return t && (t->flags & CLSYNTH_T_REQUIRES_GRAD); }

clsynth_tensor *clsynth_norm_grad_sums(clsynth_ctx *ctx, const clsynth_kcfg *cfg, const clsynth_tensor *x,
                                       const clsynth_tensor *dy, const clsynth_norm_actv *act,
                                       const clsynth_tensor *mean, const clsynth_tensor *invstd, int Nv, int G,
                                       int HW, clsynth_tensor *dg, clsynth_tensor *db, bool *affine_done,
                                       const clsynth_norm_dx_out *dxo, bool *dx_done)
{
    norm_plan pl = { 0 };
    const size_t sum_bytes = DSUMS_BYTES;
    if (affine_done)
        *affine_done = false;
    if (dx_done)
        *dx_done = false;
    if (ctx->failed || plan_of(ctx, cfg, &clsynth_kdef_norm_partial_dsums, Nv, G, HW, &pl))
        return NULL;
    /* one chunk per group: the partials are the sums, (1, G, 1, 2) either way */
    clsynth_tensor *part = clsynth_tensor_new(ctx, pl.P == 1 ? "norm.dsums" : "norm.dsum_partials", 1, G, pl.P, 2);
    if (!part)
        return NULL;
    const bool fuse_affine = pl.P == 1 && (dg || db);
    const bool with_act = act && act->on;
    clsynth_args a = clsynth_args_begin(ctx, pl.partial, "norm_partial_dsums");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, with_act ? act->y : dy); /* dummies are never touched */
    clsynth_arg_int(&a, with_act);
    clsynth_arg_float(&a, with_act ? act->slope : 0.0f);
    clsynth_arg_tensor(&a, mean);
    clsynth_arg_tensor(&a, invstd);
    CLSYNTH_ARG_INTS(&a, Nv, G, HW, pl.P, pl.CH);
    clsynth_arg_tensor(&a, part);
    clsynth_arg_tensor(&a, fuse_affine && dg ? dg : part);
    clsynth_arg_int(&a, fuse_affine && dg);
    clsynth_arg_tensor(&a, fuse_affine && db ? db : part);
    clsynth_arg_int(&a, fuse_affine && db);
    const bool fuse_dx = pl.P == 1 && dxo;
    clsynth_arg_int(&a, fuse_dx);
    clsynth_arg_tensor(&a, fuse_dx ? dxo->dx : part);
    clsynth_arg_tensor(&a, fuse_dx && dxo->gamma ? dxo->gamma : part);
    clsynth_arg_int(&a, fuse_dx && dxo->gamma);
    clsynth_arg_int(&a, x->c);
    clsynth_arg_int(&a, fuse_dx ? dxo->accumulate : 0);
    clsynth_arg_local(&a, pl.L1 * sizeof(cl_float));
    clsynth_arg_local(&a, pl.L1 * sizeof(cl_float));
    size_t g1[2] = { pl.L1 * (size_t)pl.P, (size_t)G }, l1[2] = { pl.L1, 1 };
    if (clsynth_launch(&a, 2, g1, l1, pl.L1 * sum_bytes, NULL))
        return NULL;
    if (pl.P == 1) {
        if (affine_done)
            *affine_done = fuse_affine;
        if (dx_done)
            *dx_done = fuse_dx;
        return part;
    }
    clsynth_tensor *sums = clsynth_tensor_new(ctx, "norm.dsums", 1, G, 1, 2); /* (1, G, 1, 2) */
    if (!sums)
        return NULL;

    cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "norm_finalize_dsums", NULL);
    if (!k)
        return NULL;
    size_t L2 = finalize_local(ctx, k, "norm_finalize_dsums", sum_bytes, pl.P);
    if (!L2)
        return NULL;
    a = clsynth_args_begin(ctx, k, "norm_finalize_dsums");
    clsynth_arg_tensor(&a, part);
    clsynth_arg_int(&a, pl.P);
    clsynth_arg_int(&a, G);
    clsynth_arg_tensor(&a, sums);
    clsynth_arg_local(&a, L2 * sizeof(cl_float));
    clsynth_arg_local(&a, L2 * sizeof(cl_float));
    size_t g2[2] = { L2, (size_t)G }, l2[2] = { L2, 1 };
    return clsynth_launch(&a, 2, g2, l2, L2 * sum_bytes, NULL) ? NULL : sums;
}

int clsynth_norm_affine_grads(clsynth_ctx *ctx, const clsynth_tensor *sums, int Nrep, int C, clsynth_tensor *dg,
                              clsynth_tensor *db)
{
    cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "norm_affine_grad", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "norm_affine_grad");
    clsynth_arg_tensor(&a, sums);
    clsynth_arg_int(&a, Nrep);
    clsynth_arg_int(&a, C);
    clsynth_arg_tensor(&a, dg ? dg : sums);
    clsynth_arg_int(&a, dg != NULL);
    clsynth_arg_tensor(&a, db ? db : sums);
    clsynth_arg_int(&a, db != NULL);
    size_t g = (size_t)C;
    return clsynth_launch(&a, 1, &g, NULL, 0, NULL);
}

int clsynth_norm_input_grad(clsynth_ctx *ctx, const clsynth_tensor *x, const clsynth_tensor *dy, clsynth_tensor *dx,
                            const clsynth_norm_actv *act, const clsynth_tensor *mean, const clsynth_tensor *invstd,
                            const clsynth_tensor *gamma, const clsynth_tensor *sums, int per_instance, int training,
                            float M, int accumulate)
{
    const bool with_act = act && act->on;
    const int HW = (int)CLSYNTH_HW(x);
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
    clsynth_arg_tensor(&a, with_act ? act->y : dy);
    clsynth_arg_int(&a, with_act);
    clsynth_arg_float(&a, with_act ? act->slope : 0.0f);
    CLSYNTH_ARG_INTS(&a, HW, x->c, x->n * x->c, per_instance, training);
    clsynth_arg_float(&a, M);
    clsynth_arg_int(&a, accumulate);
    size_t g[2] = { (size_t)HW, (size_t)x->n * (size_t)x->c };
    return clsynth_launch(&a, 2, g, NULL, 0, NULL);
}

/* Backward shared by batch and instance norm. in = {x, gamma, beta};
 * saved = {mean, invstd}; iarg = {training, per_instance, fused LeakyReLU};
 * farg[0] = its slope. */
static int norm_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2];
    clsynth_tensor *mean = nd->saved[0], *invstd = nd->saved[1];
    const clsynth_tensor *dy = nd->out->grad;
    const int training = nd->iarg[0], per_instance = nd->iarg[1];
    const clsynth_norm_actv act = { nd->iarg[2], nd->farg[0], nd->out };
    const bool need_dx = needs_grad(x), need_dg = needs_grad(gamma), need_db = needs_grad(beta);
    const int Nv = per_instance ? 1 : x->n;
    const int G = per_instance ? x->n * x->c : x->c;
    const int HW = (int)CLSYNTH_HW(x);
    clsynth_tensor *sums = NULL;
    clsynth_tensor *dg = need_dg ? clsynth_grad_of(ctx, gamma) : NULL;
    clsynth_tensor *db = need_db ? clsynth_grad_of(ctx, beta) : NULL;
    if ((need_dg && !dg) || (need_db && !db))
        return -1;
    bool affine_done = false, dx_done = false;
    int accumulate = 0;
    clsynth_tensor *dx = need_dx ? clsynth_grad_for_write(ctx, x, &accumulate) : NULL;
    if (need_dx && !dx)
        return -1;

    if (need_dg || need_db || (need_dx && training)) {
        clsynth_kcfg cfg;
        /* batch norm's affine gradients are per group, and dx needs only its
         * group's sums: the sums' kernel adds both where one chunk covers a group */
        const clsynth_norm_dx_out dxo = { dx, gamma, accumulate };
        if (clsynth_norm_resolve(ctx, &clsynth_kdef_norm_partial_dsums, nd->force, Nv, G, HW, &cfg) ||
            !(sums = clsynth_norm_grad_sums(ctx, &cfg, x, dy, &act, mean, invstd, Nv, G, HW,
                                            per_instance ? NULL : dg, per_instance ? NULL : db, &affine_done,
                                            need_dx && training ? &dxo : NULL, &dx_done)))
            return -1;
    }

    if ((need_dg || need_db) && !affine_done &&
        clsynth_norm_affine_grads(ctx, sums, per_instance ? x->n : 1, x->c, dg, db))
        return -1;

    if (need_dx && !dx_done &&
        clsynth_norm_input_grad(ctx, x, dy, dx, &act, mean, invstd, gamma, sums, per_instance, training,
                                (float)Nv * (float)HW, accumulate))
        return -1;
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

/* The fused activation of a *_lrelu op, checked: slope >= 0 keeps LeakyReLU's
 * derivative a function of its output (kernels/norm.cl). */
static int lrelu_actv(clsynth_ctx *ctx, const char *op, const clsynth_tensor *x, float slope, clsynth_norm_actv *act)
{
    if (!(slope >= 0.0f) || isinf(slope)) {
        char bx[128];
        return clsynth_ctx_fail(ctx, "%s: x %s: LeakyReLU slope %g must be finite and >= 0", op,
                                clsynth_tensor_describe(x, bx, sizeof bx), (double)slope);
    }
    act->on = 1;
    act->slope = slope;
    act->y = NULL;
    return 0;
}

/* Records the backward of a batch or instance norm's output y. */
static void record_norm(clsynth_ctx *ctx, const char *op, clsynth_tensor *y, clsynth_tensor *x, clsynth_tensor *gamma,
                        clsynth_tensor *beta, clsynth_tensor *mean, clsynth_tensor *invstd, int training,
                        int per_instance, const clsynth_norm_actv *act, clsynth_kforce *force)
{
    clsynth_tensor *in[3] = { x, gamma, beta };
    clsynth_node *nd = clsynth_tape_record(ctx, op, norm_backward, y, in, 3);
    if (nd) {
        nd->saved[0] = mean;
        nd->saved[1] = invstd;
        nd->iarg[0] = training;
        nd->iarg[1] = per_instance;
        nd->iarg[2] = act && act->on;
        nd->farg[0] = act && act->on ? act->slope : 0.0f;
        nd->force = force;
    }
}

static clsynth_tensor *batch_norm_impl(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                       clsynth_tensor *beta, clsynth_tensor *running_mean,
                                       clsynth_tensor *running_var, bool training, float momentum, float eps,
                                       const clsynth_norm_actv *act, clsynth_kforce *force)
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
    bool applied = false;
    if (training) {
        const norm_apply_out ap = { y, gamma, beta, act };
        if (norm_stats(ctx, x, x->n, x->c, (int)CLSYNTH_HW(x), eps, mean, invstd, running_mean, running_var,
                       momentum, force, &ap, &applied))
            return NULL;
    } else {
        /* the running statistics applied in one launch (norm_apply's values) */
        cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "norm_apply_eval", NULL);
        clsynth_args a = clsynth_args_begin(ctx, k, "norm_apply_eval");
        clsynth_arg_tensor(&a, x);
        clsynth_arg_tensor(&a, y);
        clsynth_arg_tensor(&a, running_mean);
        clsynth_arg_tensor(&a, running_var);
        clsynth_arg_float(&a, eps);
        clsynth_arg_tensor(&a, mean);
        clsynth_arg_tensor(&a, invstd);
        clsynth_arg_tensor(&a, gamma ? gamma : mean); /* dummies are never read */
        clsynth_arg_int(&a, gamma != NULL);
        clsynth_arg_tensor(&a, beta ? beta : mean);
        CLSYNTH_ARG_INTS(&a, beta != NULL, (int)CLSYNTH_HW(x), x->c, x->n * x->c, act && act->on);
        clsynth_arg_float(&a, act && act->on ? act->slope : 0.0f);
        size_t g[2] = { CLSYNTH_HW(x), (size_t)x->n * (size_t)x->c };
        if (clsynth_launch(&a, 2, g, NULL, 0, NULL))
            return NULL;
        applied = true;
    }
    if (!applied && clsynth_norm_apply(ctx, x, y, mean, invstd, gamma, beta, 0, act))
        return NULL;
    record_norm(ctx, act ? "batch_norm_lrelu" : "batch_norm", y, x, gamma, beta, mean, invstd, training, 0, act,
                force);
    return ctx->failed ? NULL : y;
}

clsynth_tensor *clsynth_batch_norm_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                          clsynth_tensor *beta, clsynth_tensor *running_mean,
                                          clsynth_tensor *running_var, bool training, float momentum, float eps,
                                          clsynth_kforce *force)
{
    return batch_norm_impl(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, NULL, force);
}

clsynth_tensor *clsynth_batch_norm_lrelu(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                         clsynth_tensor *beta, clsynth_tensor *running_mean,
                                         clsynth_tensor *running_var, bool training, float momentum, float eps,
                                         float slope)
{
    clsynth_norm_actv act;
    if (ctx->failed || !x || lrelu_actv(ctx, "batch_norm_lrelu", x, slope, &act))
        return NULL;
    return batch_norm_impl(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, &act, NULL);
}

clsynth_tensor *clsynth_batch_norm(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma, clsynth_tensor *beta,
                                   clsynth_tensor *running_mean, clsynth_tensor *running_var, bool training,
                                   float momentum, float eps)
{
    return clsynth_batch_norm_forced(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, NULL);
}

static clsynth_tensor *instance_norm_impl(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                          clsynth_tensor *beta, float eps, const clsynth_norm_actv *act)
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
    const norm_apply_out ap = { y, gamma, beta, act };
    bool applied = false;
    if (norm_stats(ctx, x, 1, G, (int)CLSYNTH_HW(x), eps, mean, invstd, NULL, NULL, 0.0f, NULL, &ap, &applied) ||
        (!applied && clsynth_norm_apply(ctx, x, y, mean, invstd, gamma, beta, 1, act)))
        return NULL;
    record_norm(ctx, act ? "instance_norm_lrelu" : "instance_norm", y, x, gamma, beta, mean, invstd, 1, 1, act, NULL);
    return ctx->failed ? NULL : y;
}

clsynth_tensor *clsynth_instance_norm(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                      clsynth_tensor *beta, float eps)
{
    return instance_norm_impl(ctx, x, gamma, beta, eps, NULL);
}

clsynth_tensor *clsynth_instance_norm_lrelu(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                            clsynth_tensor *beta, float eps, float slope)
{
    clsynth_norm_actv act;
    if (ctx->failed || !x || lrelu_actv(ctx, "instance_norm_lrelu", x, slope, &act))
        return NULL;
    return instance_norm_impl(ctx, x, gamma, beta, eps, &act);
}

/* ---- SPADE modulation ---- */

static int spade_mod_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2];
    const clsynth_tensor *dy = nd->out->grad;
    /* every element is written: fresh gradients are stored (no zero fill),
     * in the kernel's order dx, dgamma, dbeta (an input given twice: stored,
     * then added to) */
    int acc[3] = { 0, 0, 0 };
    clsynth_tensor *dx = needs_grad(x) ? clsynth_grad_for_write(ctx, x, &acc[0]) : NULL;
    clsynth_tensor *dg = needs_grad(gamma) ? clsynth_grad_for_write(ctx, gamma, &acc[1]) : NULL;
    clsynth_tensor *db = needs_grad(beta) ? clsynth_grad_for_write(ctx, beta, &acc[2]) : NULL;
    if (ctx->failed)
        return -1;
    cl_kernel k = clsynth_kernel_get(ctx, NORM_FILE, "spade_mod_backward", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "spade_mod_backward");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, gamma);
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, dx ? dx : dy); /* dummies are never written */
    clsynth_arg_int(&a, dx ? 1 + acc[0] : 0);
    clsynth_arg_tensor(&a, dg ? dg : dy);
    clsynth_arg_int(&a, dg ? 1 + acc[1] : 0);
    clsynth_arg_tensor(&a, db ? db : dy);
    clsynth_arg_int(&a, db ? 1 + acc[2] : 0);
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
