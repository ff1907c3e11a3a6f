/* Normalization kernels: batch norm, instance norm and SPADE modulation.
 *
 * Batch and instance norm share one set of kernels. Statistics are taken per
 * "group" g of a (Nv, G, HW) view of x (NCHW-contiguous):
 *   batch norm:    Nv = N, G = C      (reduce over N, H, W)
 *   instance norm: Nv = 1, G = N * C  (reduce over H, W)
 * Each group's M = Nv * HW values, in (n, p) order, are cut by the host into P
 * chunks of at most CH values; a work-group reduces one chunk (one partial per
 * (g, chunk)), then one work-group per g merges its P partials. Mean/variance
 * partials are (count, mean, M2) merged with Chan's formula (Welford within a
 * work-item); gradient sums are plain sums. All merges run in a fixed tree
 * order in local memory: results do not depend on scheduling, no atomics.
 *
 * Kernels (tensors are (global float *p, int p_off) pairs):
 *   norm_partial_stats   x -> part (G, P, 3) = (count, mean, M2) per chunk; with P = 1
 *                        (one chunk per group) it can write the statistics itself, as
 *                        norm_finalize_stats would, and then y, as norm_apply would (the
 *                        work-group reads its group again, still in cache): one launch
 *                        instead of three
 *   norm_finalize_stats  part -> mean (G), invstd (G) = 1/sqrt(var + eps), biased var;
 *                        optionally running_mean/var (G) updated with momentum
 *                        (running_var gets the unbiased M2 / (M - 1))
 *   norm_apply_eval      eval-mode batch norm in one launch: y from running_mean/var (mean,
 *                        invstd = 1/sqrt(var + eps) computed inline) as norm_apply computes
 *                        it; each channel's first item also stores mean, invstd (backward)
 *   norm_apply           y = act((x - mean[g]) * invstd[g] * gamma[c] + beta[c]), act the
 *                        identity or LeakyReLU(slope >= 0) (ReLU at slope 0)
 *   norm_partial_dsums   (x, dy) -> part (G, P, 2) = (sum dy, sum dy * xhat) per chunk; with
 *                        P = 1 part is the sums, and for batch norm the affine gradients
 *                        are added there too (no norm_finalize_dsums, no norm_affine_grad),
 *                        and in training mode dx as well (no norm_backward_dx)
 *   norm_finalize_dsums  part -> sums (G, 2)
 *   norm_affine_grad     dgamma[c] += sum_n sums[n*C+c].1, dbeta[c] += sum_n sums[n*C+c].0
 *   norm_backward_dx     dx (+)= gamma*invstd*(dy - (sdy + xhat*sdyx)/M) (training)
 *                        dx (+)= gamma*invstd*dy                          (eval)
 *                        stored into a fresh dx, added to an existing one
 * With the activation fused, the backward kernels take the op's output y and
 * use dy * act'(y) for dy: LeakyReLU's derivative is 1 where its input is
 * positive, which for slope >= 0 is exactly where y > 0, so the result is the
 * separate LeakyReLU's backward (kernels/elementwise.cl) bit for bit.
 *   spade_mod_forward    y = x * (1 + gamma) + beta
 *   spade_mod_backward   dx (+)= dy*(1+gamma), dgamma (+)= dy*x, dbeta (+)= dy: a fresh
 *                        gradient stored, an existing one added to
 *
 * Tunables (host-side: the kernels take P and CH as arguments; values come
 * from the descriptors in clcore/ops_norm_kdef.c and the tuning database):
 *   NORM_VPT: values per work-item in one chunk of the partial kernels; the
 *     host cuts chunks of CH = local * NORM_VPT values (rounded to split M evenly).
 *   Local size of the partial kernels (dimension 0; dimension 1 is 1): any value
 *     from 1 to the kernel's maximum work-group size (non-powers of two accepted);
 *     local memory = local * 12 bytes (stats) or local * 8 (sums). The finalize
 *     kernels take the host's choice within the same limits.
 *   norm_apply, norm_backward_dx, spade_*: 2-D (HW, N*C) or 1-D, launch default.
 *
 * The fused and the standalone kernels compute each output with the same
 * helper (norm_apply_value, norm_dx_value) from the same statistics: which
 * one runs changes no value, only the launch count.
 *
 * Memory traffic (x of E floats, G groups, P partials per group):
 *   training forward: read x twice (stats, apply), write y: 12E bytes (+ 24GP);
 *   training backward: read x, dy twice, read-modify-write dx: 24E bytes;
 *   spade forward 16E, backward up to 28E bytes. */

/* Smallest power of two >= n (n >= 1). */
static int norm_pow2_ceil(int n)
{
    int p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* Chan's merge of (nb, mb, m2b) into (na, ma, m2a). */
static void norm_chan_merge(int *na, float *ma, float *m2a, int nb, float mb, float m2b)
{
    if (nb == 0)
        return;
    const int n = *na + nb;
    const float d = mb - *ma;
    const float fb = (float)nb / (float)n;
    *ma += d * fb;
    *m2a += m2b + d * d * (float)(*na) * fb;
    *na = n;
}

/* Tree-merge of L (count, mean, M2) triples in local memory; the result lands
 * in element 0. Correct for any L >= 1. */
static void norm_tree_stats(__local int *lc, __local float *lmean, __local float *lm2, int lid, int L)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = norm_pow2_ceil(L) >> 1; s > 0; s >>= 1) {
        if (lid < s && lid + s < L) {
            int na = lc[lid];
            float ma = lmean[lid], m2a = lm2[lid];
            norm_chan_merge(&na, &ma, &m2a, lc[lid + s], lmean[lid + s], lm2[lid + s]);
            lc[lid] = na;
            lmean[lid] = ma;
            lm2[lid] = m2a;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* Tree-sum of L pairs in local memory into element 0; any L >= 1. */
static void norm_tree_sum2(__local float *la, __local float *lb, int lid, int L)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = norm_pow2_ceil(L) >> 1; s > 0; s >>= 1) {
        if (lid < s && lid + s < L) {
            la[lid] += la[lid + s];
            lb[lid] += lb[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* Writes group g's statistics from its merged (M, mean, M2): mean, invstd and,
 * when asked, the running estimates (unbiased variance). */
static void norm_store_stats(const int g, const int M, const float mu, const float m2, __global float *mean_out,
                             const int mean_off, __global float *invstd_out, const int invstd_off,
                             const float eps, const int update_running, __global float *rmean,
                             const int rmean_off, __global float *rvar, const int rvar_off,
                             const float momentum)
{
    const float var = m2 / (float)M;
    mean_out[mean_off + g] = mu;
    invstd_out[invstd_off + g] = 1.0f / sqrt(var + eps);
    if (update_running) {
        const float unbiased = m2 / (float)(M - 1);
        rmean[rmean_off + g] = (1.0f - momentum) * rmean[rmean_off + g] + momentum * mu;
        rvar[rvar_off + g] = (1.0f - momentum) * rvar[rvar_off + g] + momentum * unbiased;
    }
}

/* dy through the fused activation of an output y (act 0: none; 1: LeakyReLU). */
static float norm_act_grad(const int act, const float slope, const float dy, const float y)
{
    return act && !(y > 0.0f) ? dy * slope : dy;
}

/* One output of the forward: act((x - mu) * is * gamma + beta), gamma and beta
 * optional. Shared by norm_apply and norm_partial_stats's fused apply, so both
 * round alike (separate statements: nothing to contract across them). */
static float norm_apply_value(const float x, const float mu, const float is, __global const float *gamma,
                              const int has_gamma, __global const float *beta, const int has_beta, const int act,
                              const float slope)
{
    float v = (x - mu) * is;
    if (has_gamma)
        v *= *gamma;
    if (has_beta)
        v += *beta;
    return act && !(v > 0.0f) ? v * slope : v;
}

/* One training-mode input gradient, d = dy through the activation:
 * k * (d - (sdy + xhat * sdyx) / M), k = gamma * is. Shared by
 * norm_backward_dx and norm_partial_dsums's fused dx. */
static float norm_dx_value(const float k, const float d, const float xhat, const float sdy, const float sdyx,
                           const float M)
{
    return k * (d - (sdy + xhat * sdyx) / M);
}

/* Global (local * P, G), local (L, 1). Work-group (j, g) reduces elements
 * [j*CH, min(M, (j+1)*CH)) of group g, M = Nv*HW, element i = (n, p) with
 * i = n*HW + p at address x[(n*G + g)*HW + p]. */
__kernel void norm_partial_stats(__global const float *x, const int x_off, const int Nv, const int G,
                                 const int HW, const int P, const int CH, __global float *part,
                                 const int part_off, const int finalize, __global float *mean_out,
                                 const int mean_off,
                                 __global float *invstd_out, const int invstd_off, const float eps,
                                 const int update_running, __global float *rmean, const int rmean_off,
                                 __global float *rvar, const int rvar_off, const float momentum,
                                 const int apply, __global float *y, const int y_off,
                                 __global const float *gamma, const int gamma_off, const int has_gamma,
                                 __global const float *beta, const int beta_off, const int has_beta, const int C,
                                 const int act, const float slope, __local int *lc, __local float *lmean,
                                 __local float *lm2)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    const int j = get_group_id(0), g = get_global_id(1);
    int cnt = 0;
    float mean = 0.0f, m2 = 0.0f;
    if (g < G && j < P) {
        const int M = Nv * HW;
        const int start = j * CH;
        const int end = min(M, start + CH);
        int i = start + lid;
        /* (n, p) of i, advanced by L each step without a division per element */
        int n = i / HW, p = i - (i / HW) * HW;
        const int Ln = L / HW, Lp = L - (L / HW) * HW;
        __global const float *xg = x + x_off + g * HW;
        for (; i < end; i += L) {
            const float v = xg[n * G * HW + p];
            cnt++;
            const float d = v - mean;
            mean += d / (float)cnt;
            m2 += d * (v - mean);
            n += Ln;
            p += Lp;
            if (p >= HW) {
                p -= HW;
                n++;
            }
        }
    }
    lc[lid] = cnt;
    lmean[lid] = mean;
    lm2[lid] = m2;
    norm_tree_stats(lc, lmean, lm2, lid, L);
    if (lid == 0 && g < G && j < P) {
        if (finalize) { /* the host asks only with P = 1 */
            norm_store_stats(g, lc[0], lmean[0], lm2[0], mean_out, mean_off, invstd_out, invstd_off, eps,
                             update_running, rmean, rmean_off, rvar, rvar_off, momentum);
        } else {
            __global float *o = part + part_off + (g * P + j) * 3;
            o[0] = (float)lc[0];
            o[1] = lmean[0];
            o[2] = lm2[0];
        }
    }
    if (!apply) /* uniform: the host asks only with finalize (P = 1) */
        return;
    /* y of the whole group from the statistics just stored (read back from
     * global memory, which the barrier makes visible within the work-group:
     * the same floats norm_apply would read) */
    barrier(CLK_GLOBAL_MEM_FENCE);
    if (g < G) {
        const int M = Nv * HW, c = g % C; /* batch norm: g = c; instance norm: g = n*C + c */
        const float mu = mean_out[mean_off + g], is = invstd_out[invstd_off + g];
        int i = lid;
        int n = i / HW, p = i - (i / HW) * HW;
        const int Ln = L / HW, Lp = L - (L / HW) * HW;
        const int base = g * HW;
        for (; i < M; i += L) {
            const int a = base + n * G * HW + p;
            y[y_off + a] = norm_apply_value(x[x_off + a], mu, is, gamma + gamma_off + c, has_gamma,
                                            beta + beta_off + c, has_beta, act, slope);
            n += Ln;
            p += Lp;
            if (p >= HW) {
                p -= HW;
                n++;
            }
        }
    }
}

/* Global (L, G), local (L, 1): one work-group per group g merges its P partials. */
__kernel void norm_finalize_stats(__global const float *part, const int part_off, const int P, const int G,
                                  __global float *mean_out, const int mean_off, __global float *invstd_out,
                                  const int invstd_off, const float eps, const int update_running,
                                  __global float *rmean, const int rmean_off, __global float *rvar,
                                  const int rvar_off, const float momentum, __local int *lc,
                                  __local float *lmean, __local float *lm2)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    const int g = get_global_id(1);
    int cnt = 0;
    float mean = 0.0f, m2 = 0.0f;
    if (g < G) {
        for (int j = lid; j < P; j += L) {
            __global const float *q = part + part_off + (g * P + j) * 3;
            norm_chan_merge(&cnt, &mean, &m2, (int)q[0], q[1], q[2]);
        }
    }
    lc[lid] = cnt;
    lmean[lid] = mean;
    lm2[lid] = m2;
    norm_tree_stats(lc, lmean, lm2, lid, L);
    if (lid == 0 && g < G)
        norm_store_stats(g, lc[0], lmean[0], lm2[0], mean_out, mean_off, invstd_out, invstd_off, eps,
                         update_running, rmean, rmean_off, rvar, rvar_off, momentum);
}

/* Global (HW, N*C): y = norm_apply_value(x, running mean, 1 / sqrt(running
 * var + eps)) per channel; the item at p 0 of channel c (nc == c) also stores
 * mean[c], invstd[c] for the backward. */
__kernel void norm_apply_eval(__global const float *x, const int x_off, __global float *y, const int y_off,
                              __global const float *rmean, const int rmean_off, __global const float *rvar,
                              const int rvar_off, const float eps, __global float *mean_out, const int mean_off,
                              __global float *invstd_out, const int invstd_off, __global const float *gamma,
                              const int gamma_off, const int has_gamma, __global const float *beta,
                              const int beta_off, const int has_beta, const int HW, const int C, const int NC,
                              const int act, const float slope)
{
    const int p = get_global_id(0), nc = get_global_id(1);
    if (p >= HW || nc >= NC)
        return;
    const int c = nc % C;
    const float mu = rmean[rmean_off + c];
    const float is = 1.0f / sqrt(rvar[rvar_off + c] + eps);
    if (p == 0 && nc == c) {
        mean_out[mean_off + c] = mu;
        invstd_out[invstd_off + c] = is;
    }
    const int i = nc * HW + p;
    y[y_off + i] = norm_apply_value(x[x_off + i], mu, is, gamma + gamma_off + c, has_gamma, beta + beta_off + c,
                                    has_beta, act, slope);
}

/* Global (HW, N*C). Statistics index g = n*C + c (per_instance) or c. */
__kernel void norm_apply(__global const float *x, const int x_off, __global float *y, const int y_off,
                         __global const float *mean, const int mean_off, __global const float *invstd,
                         const int invstd_off, __global const float *gamma, const int gamma_off,
                         const int has_gamma, __global const float *beta, const int beta_off,
                         const int has_beta, const int HW, const int C, const int NC,
                         const int per_instance, const int act, const float slope)
{
    const int p = get_global_id(0), nc = get_global_id(1);
    if (p >= HW || nc >= NC)
        return;
    const int c = nc % C;
    const int g = per_instance ? nc : c;
    const int i = nc * HW + p;
    y[y_off + i] = norm_apply_value(x[x_off + i], mean[mean_off + g], invstd[invstd_off + g], gamma + gamma_off + c,
                                    has_gamma, beta + beta_off + c, has_beta, act, slope);
}

/* Same grid as norm_partial_stats: partial (sum dy, sum dy * xhat) per chunk. */
__kernel void norm_partial_dsums(__global const float *x, const int x_off, __global const float *dy,
                                 const int dy_off, __global const float *y, const int y_off, const int act,
                                 const float slope, __global const float *mean, const int mean_off,
                                 __global const float *invstd, const int invstd_off, const int Nv,
                                 const int G, const int HW, const int P, const int CH,
                                 __global float *part, const int part_off, __global float *dgamma,
                                 const int dgamma_off, const int has_dgamma, __global float *dbeta,
                                 const int dbeta_off, const int has_dbeta, const int want_dx,
                                 __global float *dx, const int dx_off, __global const float *gamma,
                                 const int gamma_off, const int has_gamma, const int C, const int accumulate,
                                 __local float *la, __local float *lb)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    const int j = get_group_id(0), g = get_global_id(1);
    float sdy = 0.0f, sdyx = 0.0f;
    if (g < G && j < P) {
        const int M = Nv * HW;
        const int start = j * CH;
        const int end = min(M, start + CH);
        const float mu = mean[mean_off + g], is = invstd[invstd_off + g];
        int i = start + lid;
        int n = i / HW, p = i - (i / HW) * HW;
        const int Ln = L / HW, Lp = L - (L / HW) * HW;
        const int base = g * HW;
        for (; i < end; i += L) {
            const int a = base + n * G * HW + p;
            const float d = norm_act_grad(act, slope, dy[dy_off + a], act ? y[y_off + a] : 0.0f);
            sdy += d;
            sdyx += d * ((x[x_off + a] - mu) * is);
            n += Ln;
            p += Lp;
            if (p >= HW) {
                p -= HW;
                n++;
            }
        }
    }
    la[lid] = sdy;
    lb[lid] = sdyx;
    norm_tree_sum2(la, lb, lid, L);
    if (lid == 0 && g < G && j < P) {
        part[part_off + (g * P + j) * 2] = la[0];
        part[part_off + (g * P + j) * 2 + 1] = lb[0];
        if (has_dgamma) /* the host asks only with P = 1 and batch norm (g = c) */
            dgamma[dgamma_off + g] += lb[0];
        if (has_dbeta)
            dbeta[dbeta_off + g] += la[0];
    }
    if (!want_dx) /* uniform: the host asks only with P = 1, in training mode */
        return;
    /* dx of the whole group from the sums in la[0], lb[0] (norm_tree_sum2 ends
     * with a barrier; lid 0 above only read them): as norm_backward_dx */
    if (g < G) {
        const int M = Nv * HW, c = g % C;
        const float mu = mean[mean_off + g], is = invstd[invstd_off + g];
        const float k = (has_gamma ? gamma[gamma_off + c] : 1.0f) * is;
        const float s0 = la[0], s1 = lb[0];
        int i = lid;
        int n = i / HW, p = i - (i / HW) * HW;
        const int Ln = L / HW, Lp = L - (L / HW) * HW;
        const int base = g * HW;
        for (; i < M; i += L) {
            const int a = base + n * G * HW + p;
            const float d = norm_act_grad(act, slope, dy[dy_off + a], act ? y[y_off + a] : 0.0f);
            const float xhat = (x[x_off + a] - mu) * is;
            const float r = norm_dx_value(k, d, xhat, s0, s1, (float)M);
            dx[dx_off + a] = (accumulate ? dx[dx_off + a] : 0.0f) + r;
            n += Ln;
            p += Lp;
            if (p >= HW) {
                p -= HW;
                n++;
            }
        }
    }
}

/* Global (L, G), local (L, 1): sums (G, 2) = (sum dy, sum dy * xhat). */
__kernel void norm_finalize_dsums(__global const float *part, const int part_off, const int P, const int G,
                                  __global float *sums, const int sums_off, __local float *la,
                                  __local float *lb)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    const int g = get_global_id(1);
    float a = 0.0f, b = 0.0f;
    if (g < G) {
        for (int j = lid; j < P; j += L) {
            a += part[part_off + (g * P + j) * 2];
            b += part[part_off + (g * P + j) * 2 + 1];
        }
    }
    la[lid] = a;
    lb[lid] = b;
    norm_tree_sum2(la, lb, lid, L);
    if (lid == 0 && g < G) {
        sums[sums_off + g * 2] = la[0];
        sums[sums_off + g * 2 + 1] = lb[0];
    }
}

/* Global (C): affine gradients summed over the Nrep sample rows of sums
 * (Nrep = 1 for batch norm, N for instance norm; N is a batch size). */
__kernel void norm_affine_grad(__global const float *sums, const int sums_off, const int Nrep, const int C,
                               __global float *dgamma, const int dgamma_off, const int has_dgamma,
                               __global float *dbeta, const int dbeta_off, const int has_dbeta)
{
    const int c = get_global_id(0);
    if (c >= C)
        return;
    float a = 0.0f, b = 0.0f;
    for (int n = 0; n < Nrep; n++) {
        a += sums[sums_off + (n * C + c) * 2];
        b += sums[sums_off + (n * C + c) * 2 + 1];
    }
    if (has_dgamma)
        dgamma[dgamma_off + c] += b;
    if (has_dbeta)
        dbeta[dbeta_off + c] += a;
}

/* Global (HW, N*C). M = values per statistics group (as float). */
__kernel void norm_backward_dx(__global const float *x, const int x_off, __global const float *dy,
                               const int dy_off, __global float *dx, const int dx_off,
                               __global const float *mean, const int mean_off, __global const float *invstd,
                               const int invstd_off, __global const float *gamma, const int gamma_off,
                               const int has_gamma, __global const float *sums, const int sums_off,
                               __global const float *y, const int y_off, const int act, const float slope,
                               const int HW, const int C, const int NC, const int per_instance,
                               const int training, const float M, const int accumulate)
{
    const int p = get_global_id(0), nc = get_global_id(1);
    if (p >= HW || nc >= NC)
        return;
    const int c = nc % C;
    const int g = per_instance ? nc : c;
    const int i = nc * HW + p;
    const float is = invstd[invstd_off + g];
    const float k = (has_gamma ? gamma[gamma_off + c] : 1.0f) * is;
    const float d = norm_act_grad(act, slope, dy[dy_off + i], act ? y[y_off + i] : 0.0f);
    float r;
    if (training) {
        const float xhat = (x[x_off + i] - mean[mean_off + g]) * is;
        r = norm_dx_value(k, d, xhat, sums[sums_off + g * 2], sums[sums_off + g * 2 + 1], M);
    } else {
        r = k * d;
    }
    dx[dx_off + i] = (accumulate ? dx[dx_off + i] : 0.0f) + r; /* 0 + r: a -0 stored as +0, as when added */
}

/* Global (E): y = x * (1 + gamma) + beta, all of E elements. */
__kernel void spade_mod_forward(__global const float *x, const int x_off, __global const float *gamma,
                                const int gamma_off, __global const float *beta, const int beta_off,
                                __global float *y, const int y_off, const int E)
{
    const int i = get_global_id(0);
    if (i >= E)
        return;
    y[y_off + i] = x[x_off + i] * (1.0f + gamma[gamma_off + i]) + beta[beta_off + i];
}

/* Global (E): accumulates the requested gradients (flags select them). */
__kernel void spade_mod_backward(__global const float *x, const int x_off, __global const float *gamma,
                                 const int gamma_off, __global const float *dy, const int dy_off,
                                 __global float *dx, const int dx_off, const int has_dx,
                                 __global float *dgamma, const int dgamma_off, const int has_dgamma,
                                 __global float *dbeta, const int dbeta_off, const int has_dbeta,
                                 const int E)
{
    /* has_*: 0 no gradient, 1 store (a fresh gradient), 2 add; in this order,
     * so a tensor given twice is stored, then added to */
    const int i = get_global_id(0);
    if (i >= E)
        return;
    const float d = dy[dy_off + i];
    if (has_dx) {
        const float v = d * (1.0f + gamma[gamma_off + i]);
        dx[dx_off + i] = has_dx == 2 ? dx[dx_off + i] + v : v;
    }
    if (has_dgamma) {
        const float v = d * x[x_off + i];
        dgamma[dgamma_off + i] = has_dgamma == 2 ? dgamma[dgamma_off + i] + v : v;
    }
    if (has_dbeta)
        dbeta[dbeta_off + i] = has_dbeta == 2 ? dbeta[dbeta_off + i] + d : d;
}
