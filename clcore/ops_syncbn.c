/* Synchronized batch norm: batch norm whose statistics cover the batch of
 * every rank of a data-parallel run (ctx->comm), as PyTorch's SyncBatchNorm.
 *
 * Forward (training), per channel c:
 *   each rank: (count, mean, M2) of its x over (N, H, W), from the batch-norm
 *     partial kernel, merged on the host in double (Chan);
 *   all-gather of the C triples of every rank, merged in rank order (so every
 *     rank computes bit-identical statistics, and the merge stays stable where
 *     sums of squares would cancel);
 *   mean, invstd = 1/sqrt(M2/M + eps) over the global count M; running stats
 *     updated as batch norm does (unbiased M2/(M-1)), identically on every rank;
 *   y = the batch-norm apply kernel.
 * Backward: local (sum dy, sum dy*xhat) from the batch-norm kernels; dgamma and
 *   dbeta take the local sums (the trainer averages parameter gradients over the
 *   ranks afterwards); dx needs the all-reduced sums and M:
 *     dx = gamma*invstd*(dy - (S_dy + xhat*S_dyxhat)/M).
 * With the gradients of every rank averaged after backward, this is the
 * gradient of the mean of the ranks' losses: K ranks of batch b equal one
 * process of batch K*b (tests/test_syncbn.c, tests/test_mpi.c).
 *
 * One process (no communicator, or size 1) and eval mode (running statistics)
 * are exactly clsynth_batch_norm.
 *
 * The two reductions are batch norm's tunable kernels: their configurations
 * come from the resolver (clsynth_norm_resolve, the descriptors
 * norm_partial_stats and norm_partial_dsums at this rank's shape), with the
 * caller's force when given (tests/test_kernel_sweep.c sweeps this op too).
 *
 * Communication per layer and training step: forward all-gather of 24 C bytes
 * per rank, backward all-reduce of 16 C bytes (doubles). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/comm.h"
#include "clcore/kdefs.h"
#include "clcore/norm_steps.h"
#include "clcore/ops.h"

static bool needs_grad(const clsynth_tensor *t) { return t && (t->flags & CLSYNTH_T_REQUIRES_GRAD); }

/* Chan's merge of (nb, mb, m2b) into (na, ma, m2a), in double. */
static void chan_merge(double *na, double *ma, double *m2a, double nb, double mb, double m2b)
{
    if (nb == 0)
        return;
    const double n = *na + nb, d = mb - *ma, fb = nb / n;
    *ma += d * fb;
    *m2a += m2b + d * d * *na * fb;
    *na = n;
}

/* Reads a small device tensor into a new host array (NULL on failure, ctx set). */
static float *read_small(clsynth_ctx *ctx, const clsynth_tensor *t)
{
    float *h = malloc(t->numel * sizeof *h);
    if (!h) {
        clsynth_ctx_fail(ctx, "sync_batch_norm: out of host memory");
        return NULL;
    }
    if (clsynth_tensor_download(ctx, t, h)) {
        free(h);
        return NULL;
    }
    return h;
}

/* Global mean and invstd of channel-wise x over every rank; updates the
 * running statistics (may be NULL). Returns the global count, or -1. */
static double global_stats(clsynth_ctx *ctx, const clsynth_tensor *x, float eps, clsynth_tensor *mean,
                           clsynth_tensor *invstd, clsynth_tensor *rmean, clsynth_tensor *rvar, float momentum,
                           clsynth_kforce *force)
{
    const int C = x->c, K = clsynth_comm_size(ctx), HW = (int)CLSYNTH_HW(x);
    clsynth_kcfg cfg;
    clsynth_tensor *part = NULL; /* (1, C, P, 3) */
    if (clsynth_norm_resolve(ctx, &clsynth_kdef_norm_partial_stats, force, x->n, C, HW, &cfg) ||
        !(part = clsynth_norm_partial_moments(ctx, &cfg, x, x->n, C, HW)))
        return -1;
    const int P = part->h;
    float *hp = read_small(ctx, part);
    double *mine = malloc(sizeof(double) * 3 * (size_t)C);         /* (C, 3) this rank */
    double *all = malloc(sizeof(double) * 3 * (size_t)C * (size_t)K); /* (K, C, 3) */
    float *hm = malloc(sizeof(float) * 4 * (size_t)C);             /* mean, invstd, rmean, rvar */
    double count = -1;
    if (!hp || !mine || !all || !hm) {
        if (!ctx->failed)
            clsynth_ctx_fail(ctx, "sync_batch_norm: out of host memory");
        goto done;
    }
    for (int c = 0; c < C; c++) {
        double n = 0, mu = 0, m2 = 0;
        for (int j = 0; j < P; j++) {
            const float *q = hp + ((size_t)c * P + j) * 3;
            chan_merge(&n, &mu, &m2, q[0], q[1], q[2]);
        }
        mine[3 * c] = n;
        mine[3 * c + 1] = mu;
        mine[3 * c + 2] = m2;
    }
    if (clsynth_comm_allgather(ctx, mine, all, sizeof(double) * 3 * (size_t)C, CLSYNTH_COMM_NORM))
        goto done;
    float *hmean = hm, *hinv = hm + C, *hrm = hm + 2 * C, *hrv = hm + 3 * C;
    if (rmean && (clsynth_tensor_download(ctx, rmean, hrm) || clsynth_tensor_download(ctx, rvar, hrv)))
        goto done;
    for (int c = 0; c < C; c++) {
        double n = 0, mu = 0, m2 = 0;
        for (int r = 0; r < K; r++) {
            const double *q = all + ((size_t)r * C + c) * 3;
            chan_merge(&n, &mu, &m2, q[0], q[1], q[2]);
        }
        count = n;
        hmean[c] = (float)mu;
        hinv[c] = (float)(1.0 / sqrt(m2 / n + (double)eps));
        if (rmean) {
            hrm[c] = (1.0f - momentum) * hrm[c] + momentum * (float)mu;
            hrv[c] = (1.0f - momentum) * hrv[c] + momentum * (float)(m2 / (n - 1));
        }
    }
    if (count < 2) {
        char b[128];
        clsynth_ctx_fail(ctx, "sync_batch_norm: x %s: training needs more than 1 value per channel over all %d ranks "
                              "(N*H*W summed = %.0f)",
                         clsynth_tensor_describe(x, b, sizeof b), K, count);
        count = -1;
        goto done;
    }
    if (clsynth_tensor_upload(ctx, mean, hmean) || clsynth_tensor_upload(ctx, invstd, hinv) ||
        (rmean && (clsynth_tensor_upload(ctx, rmean, hrm) || clsynth_tensor_upload(ctx, rvar, hrv))))
        count = -1;
done:
    free(hp);
    free(mine);
    free(all);
    free(hm);
    return ctx->failed ? -1 : count;
}

/* in = {x, gamma, beta}; saved = {mean, invstd}; farg[0] = global count M. */
static int sync_bn_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2];
    clsynth_tensor *mean = nd->saved[0], *invstd = nd->saved[1];
    const clsynth_tensor *dy = nd->out->grad;
    const bool need_dx = needs_grad(x), need_dg = needs_grad(gamma), need_db = needs_grad(beta);
    const int C = x->c;
    if (!need_dx && !need_dg && !need_db)
        return 0;
    const int HW = (int)CLSYNTH_HW(x);
    clsynth_kcfg cfg;
    clsynth_tensor *sums = NULL; /* (1, C, 1, 2) */
    if (clsynth_norm_resolve(ctx, &clsynth_kdef_norm_partial_dsums, nd->force, x->n, C, HW, &cfg) ||
        !(sums = clsynth_norm_grad_sums(ctx, &cfg, x, dy, NULL, mean, invstd, x->n, C, HW, NULL, NULL, NULL,
                                                   NULL, NULL)))
        return -1;
    if (need_dg || need_db) {
        clsynth_tensor *dg = need_dg ? clsynth_grad_of(ctx, gamma) : NULL;
        clsynth_tensor *db = need_db ? clsynth_grad_of(ctx, beta) : NULL;
        if ((need_dg && !dg) || (need_db && !db) || clsynth_norm_affine_grads(ctx, sums, 1, C, dg, db))
            return -1;
    }
    if (!need_dx)
        return 0;
    float *hs = read_small(ctx, sums);
    double *ds = malloc(sizeof(double) * 2 * (size_t)C);
    int rc = -1;
    if (!hs || !ds) {
        if (!ctx->failed)
            clsynth_ctx_fail(ctx, "sync_batch_norm backward: out of host memory");
        goto done;
    }
    for (int i = 0; i < 2 * C; i++)
        ds[i] = hs[i];
    if (clsynth_comm_allreduce_sum(ctx, ds, 2 * (size_t)C, CLSYNTH_COMM_F64, CLSYNTH_COMM_NORM))
        goto done;
    for (int i = 0; i < 2 * C; i++)
        hs[i] = (float)ds[i];
    clsynth_tensor *gsums = clsynth_tensor_from_host(ctx, "sync_batch_norm.sums", 1, C, 1, 2, hs); /* (1, C, 1, 2) */
    int accumulate = 1;
    clsynth_tensor *dx = gsums ? clsynth_grad_for_write(ctx, x, &accumulate) : NULL;
    if (!dx || clsynth_norm_input_grad(ctx, x, dy, dx, NULL, mean, invstd, gamma, gsums, 0, 1, nd->farg[0],
                                       accumulate))
        goto done;
    rc = 0;
done:
    free(hs);
    free(ds);
    return rc;
}

clsynth_tensor *clsynth_sync_batch_norm_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                               clsynth_tensor *beta, clsynth_tensor *running_mean,
                                               clsynth_tensor *running_var, bool training, float momentum,
                                               float eps, clsynth_kforce *force)
{
    if (ctx->failed || !x)
        return NULL;
    if (!training || clsynth_comm_size(ctx) <= 1)
        return clsynth_batch_norm_forced(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps,
                                         force);
    const clsynth_tensor *per_channel[4] = { gamma, beta, running_mean, running_var };
    static const char *const role[4] = { "gamma", "beta", "running_mean", "running_var" };
    char bx[128], bt[128];
    for (int i = 0; i < 4; i++) {
        const clsynth_tensor *t = per_channel[i];
        if (t && !(t->n == 1 && t->c == x->c && t->h == 1 && t->w == 1)) {
            clsynth_ctx_fail(ctx, "sync_batch_norm: %s %s must be (1, %d, 1, 1) for x %s", role[i],
                             clsynth_tensor_describe(t, bt, sizeof bt), x->c,
                             clsynth_tensor_describe(x, bx, sizeof bx));
            return NULL;
        }
    }
    if ((running_mean == NULL) != (running_var == NULL)) {
        clsynth_ctx_fail(ctx, "sync_batch_norm: x %s: give both running_mean and running_var or neither",
                         clsynth_tensor_describe(x, bx, sizeof bx));
        return NULL;
    }
    clsynth_tensor *mean = clsynth_tensor_new(ctx, "sync_batch_norm.mean", 1, x->c, 1, 1);     /* (1, C, 1, 1) */
    clsynth_tensor *invstd = clsynth_tensor_new(ctx, "sync_batch_norm.invstd", 1, x->c, 1, 1); /* (1, C, 1, 1) */
    clsynth_tensor *y = clsynth_tensor_new(ctx, "sync_batch_norm", x->n, x->c, x->h, x->w);   /* (N, C, H, W) */
    if (!mean || !invstd || !y)
        return NULL;
    double M = global_stats(ctx, x, eps, mean, invstd, running_mean, running_var, momentum, force);
    if (M < 0 || clsynth_norm_apply(ctx, x, y, mean, invstd, gamma, beta, 0, NULL))
        return NULL;
    clsynth_tensor *in[3] = { x, gamma, beta };
    clsynth_node *nd = clsynth_tape_record(ctx, "sync_batch_norm", sync_bn_backward, y, in, 3);
    if (nd) {
        nd->saved[0] = mean;
        nd->saved[1] = invstd;
        nd->farg[0] = (float)M;
        nd->force = force;
    }
    return ctx->failed ? NULL : y;
}

clsynth_tensor *clsynth_sync_batch_norm(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                        clsynth_tensor *beta, clsynth_tensor *running_mean,
                                        clsynth_tensor *running_var, bool training, float momentum, float eps)
{
    return clsynth_sync_batch_norm_forced(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps,
                                          NULL);
}

clsynth_tensor *clsynth_sync_batch_norm_lrelu(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                              clsynth_tensor *beta, clsynth_tensor *running_mean,
                                              clsynth_tensor *running_var, bool training, float momentum,
                                              float eps, float slope)
{
    if (ctx->failed || !x)
        return NULL;
    if (!training || clsynth_comm_size(ctx) <= 1)
        return clsynth_batch_norm_lrelu(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps,
                                        slope);
    /* across ranks the statistics' steps are separate launches anyway: the activation stays its own op */
    return clsynth_leaky_relu(ctx, clsynth_sync_batch_norm(ctx, x, gamma, beta, running_mean, running_var, training,
                                                           momentum, eps),
                              slope);
}
