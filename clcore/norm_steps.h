/* Steps of the normalization ops (clcore/ops_norm.c, kernels/norm.cl) that
 * synchronized batch norm (clcore/ops_syncbn.c) runs with collectives in
 * between. Internal to clcore. x is viewed as (Nv, G, HW): G statistics
 * groups (channels, or (n, c) pairs for instance norm) of Nv * HW values.
 *
 * The two reductions are tunable kernels with descriptors
 * (clcore/ops_norm_kdef.c): a step that launches one takes the configuration
 * clsynth_norm_resolve gave for the same (def, Nv, G, HW), so batch norm,
 * instance norm and synchronized batch norm share one tunables path (the
 * tuning database, a caller's force). */
#ifndef CLSYNTH_NORM_STEPS_H
#define CLSYNTH_NORM_STEPS_H

#include <stdbool.h>

#include "clcore/context.h"
#include "clcore/kconfig.h"
#include "clcore/tensor.h"

/* The configuration of def (clsynth_kdef_norm_partial_stats for the
 * statistics, clsynth_kdef_norm_partial_dsums for the gradient sums) at
 * shape (G, M = Nv * HW) from the resolver; force may be NULL. */
int clsynth_norm_resolve(clsynth_ctx *ctx, const clsynth_kdef *def, clsynth_kforce *force, int Nv, int G, int HW,
                         clsynth_kcfg *cfg);

/* The activation fused into a norm op's kernels: none (on 0) or LeakyReLU of
 * slope >= 0 (0: ReLU). y is the op's output, which the backward kernels
 * read for the activation's derivative (NULL in the forward). */
typedef struct clsynth_norm_actv {
    int on;
    float slope;
    const clsynth_tensor *y;
} clsynth_norm_actv;

/* Per-chunk partial moments: (1, G, P, 3) activation holding (count, mean, M2)
 * of each of P chunks of each group (Welford within a chunk; merge with Chan).
 * cfg: norm_partial_stats resolved at (Nv, G, HW); P follows from it. */
clsynth_tensor *clsynth_norm_partial_moments(clsynth_ctx *ctx, const clsynth_kcfg *cfg, const clsynth_tensor *x,
                                             int Nv, int G, int HW);

/* y = act((x - mean[g]) * invstd[g] * gamma[c] + beta[c]); g = c, or n*C + c
 * per instance; act may be NULL (none). */
int clsynth_norm_apply(clsynth_ctx *ctx, const clsynth_tensor *x, clsynth_tensor *y, const clsynth_tensor *mean,
                       const clsynth_tensor *invstd, const clsynth_tensor *gamma, const clsynth_tensor *beta,
                       int per_instance, const clsynth_norm_actv *act);

/* The training-mode input gradient that the gradient-sums kernel can write in
 * the same launch: dx as clsynth_norm_input_grad (training) would. */
typedef struct clsynth_norm_dx_out {
    clsynth_tensor *dx;
    const clsynth_tensor *gamma; /* NULL: none */
    int accumulate;              /* 0 stores (a fresh dx), 1 adds */
} clsynth_norm_dx_out;

/* (1, G, 1, 2): (sum dy', sum dy' * xhat) per group, xhat = (x - mean) *
 * invstd, dy' = dy through act (NULL: none). cfg: norm_partial_dsums resolved
 * at (Nv, G, HW). Batch norm may pass its affine gradients dg, db (either
 * NULL): where one chunk covers a group they are added in the same launch and
 * *affine_done is set; otherwise the caller adds them (clsynth_norm_affine_grads).
 * Likewise dxo (NULL: none): where one chunk covers a group, dx is written in
 * the same launch and *dx_done is set; otherwise the caller runs
 * clsynth_norm_input_grad. */
clsynth_tensor *clsynth_norm_grad_sums(clsynth_ctx *ctx, const clsynth_kcfg *cfg, const clsynth_tensor *x,
                                       const clsynth_tensor *dy, const clsynth_norm_actv *act,
                                       const clsynth_tensor *mean, const clsynth_tensor *invstd, int Nv, int G,
                                       int HW, clsynth_tensor *dg, clsynth_tensor *db, bool *affine_done,
                                       const clsynth_norm_dx_out *dxo, bool *dx_done);

/* dgamma[c] += sum over the Nrep rows of sums (n*C + c).1, dbeta[c] += ... .0
 * (Nrep = 1 for batch norm, N for instance norm); either may be NULL. */
int clsynth_norm_affine_grads(clsynth_ctx *ctx, const clsynth_tensor *sums, int Nrep, int C, clsynth_tensor *dgamma,
                              clsynth_tensor *dbeta);

/* dx (+)= gamma * invstd * (dy' - (sum dy' + xhat * sum dy'*xhat) / M) (training),
 * dx (+)= gamma * invstd * dy' (eval; sums unused), dy' = dy through act (NULL:
 * none). M = values per group. accumulate 0 stores (a fresh dx, from
 * clsynth_grad_for_write), 1 adds. */
int clsynth_norm_input_grad(clsynth_ctx *ctx, const clsynth_tensor *x, const clsynth_tensor *dy, clsynth_tensor *dx,
                            const clsynth_norm_actv *act, const clsynth_tensor *mean, const clsynth_tensor *invstd,
                            const clsynth_tensor *gamma, const clsynth_tensor *sums, int per_instance, int training,
                            float M, int accumulate);

#endif
