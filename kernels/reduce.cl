/* Reductions and losses.
 *
 * Generic reduction (clcore/reduce.c): out[k] = alpha * sum_r map(x[k, r], y[k, r]) + beta * out[k]
 * over an input seen as kept x reduced index spaces. After the host merges
 * adjacent dims of the same class, each space has at most two runs of dims:
 *   offset(k) = (k / kb) * ksa + (k % kb) * ksb,   k < K
 *   offset(r) = (r / rb) * rsa + (r % rb) * rsb,   r < R
 * map (MAP_*): 0 x | 1 x*y | 2 max(0, 1 - s*x) | 3 |x-y| | 4 (x-y)^2 | 5 1 + y - x^2 - exp(y).
 *
 *   reduce_small   one work-item per output, serial sum over r (used for R <= 64).
 *   reduce_groups  2-D launch (G*L, K), local (L, 1): work-group (g, k) sums the
 *                  strided slice r = g*L + lid + j*G*L, then a tree in local memory
 *                  (any L >= 1: the part above the largest power of two is folded
 *                  in first). final = 0 writes partial[k*G + g]; final = 1 writes out.
 *                  A second launch with G = 1 over the (K, G) partials finishes.
 * Results depend only on (K, R, L, G) - never on scheduling: no atomics on floats.
 *
 * Tunables: none as -D defines; the work-group size L of reduce_groups is a
 * run-time choice (descriptor "reduce_groups" in clcore/reduce_kdef.c, shape key
 * "k<log2 K>r<log2 R>"): any integer 1..min(kernel max work-group, local_mem / 4).
 * Memory traffic: reduce reads 4R*K bytes (8R*K with y) once, writes 4K*G
 * partials and 4K outputs (plus 4K reads when beta != 0).
 *
 * Loss helpers (clcore/ops_loss.c), all one work-item per element:
 *   acc_scalar_bcast       gx[i] += alpha * g[0]                        (8n bytes + 4)
 *   map_backward           gx (+)= alpha*g[0]*dmap/dx, gy (+)= alpha*g[0]*dmap/dy (up to 16n;
 *                          a fresh gradient is stored, an existing one added to)
 *   channel_dot_backward   ga (+)= g(n,hw) * b, gb (+)= g(n,hw) * a     (up to 20n; likewise)
 *   ce_forward             per pixel: log-softmax over K, label check   (4K + 16 per pixel)
 *   ce_finalize            out = count > 0 ? sum / count : 0
 *   ce_backward            per logit: g/count * (softmax - onehot)      (16 per logit)
 */

#define MAP_ID 0
#define MAP_PROD 1
#define MAP_HINGE 2
#define MAP_ABSDIFF 3
#define MAP_SQDIFF 4
#define MAP_KL 5

float rd_map(const int map, const float x, const float y, const float s)
{
    switch (map) {
    case MAP_PROD:
        return x * y;
    case MAP_HINGE: /* a NaN score stays NaN (fmax alone would clip it to a finite loss) */
        return isnan(x) ? x : fmax(0.0f, 1.0f - s * x);
    case MAP_ABSDIFF:
        return fabs(x - y);
    case MAP_SQDIFF:
        return (x - y) * (x - y);
    case MAP_KL:
        return 1.0f + y - x * x - exp(y);
    default:
        return x;
    }
}

__kernel void reduce_small(__global const float *x, const int x_off, __global const float *y,
                           const int y_off, const int map, const float s, const int K, const int R,
                           const int kb, const int ksa, const int ksb, const int rb, const int rsa,
                           const int rsb, __global float *out, const int out_off, const float alpha,
                           const float beta)
{
    const int k = get_global_id(0);
    if (k >= K)
        return;
    const int base = (k / kb) * ksa + (k % kb) * ksb;
    float acc = 0.0f;
    for (int r = 0; r < R; r++) {
        const int o = base + (rsa == 0 ? r * rsb : (r / rb) * rsa + (r % rb) * rsb);
        acc += rd_map(map, x[x_off + o], y[y_off + o], s);
    }
    const float prev = beta != 0.0f ? beta * out[out_off + k] : 0.0f;
    out[out_off + k] = alpha * acc + prev;
}

__kernel void reduce_groups(__global const float *x, const int x_off, __global const float *y,
                            const int y_off, const int map, const float s, const int K, const int R,
                            const int G, const int kb, const int ksa, const int ksb, const int rb,
                            const int rsa, const int rsb, __global float *dst, const int dst_off,
                            const int final_pass, const float alpha, const float beta,
                            __local float *scratch)
{
    const int lid = get_local_id(0);
    const int L = get_local_size(0);
    const int g = get_group_id(0);
    const int k = get_global_id(1);
    float acc = 0.0f;
    if (k < K) {
        const int base = (k / kb) * ksa + (k % kb) * ksb;
        const int step = G * L;
        for (int r = g * L + lid; r < R; r += step) {
            const int o = base + (rsa == 0 ? r * rsb : (r / rb) * rsa + (r % rb) * rsb);
            acc += rd_map(map, x[x_off + o], y[y_off + o], s);
        }
    }
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    int p = 1;
    while (p * 2 <= L)
        p *= 2;
    if (lid < L - p)
        scratch[lid] += scratch[lid + p];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int st = p / 2; st > 0; st >>= 1) {
        if (lid < st)
            scratch[lid] += scratch[lid + st];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0 && k < K) {
        if (final_pass) {
            const float prev = beta != 0.0f ? beta * dst[dst_off + k] : 0.0f;
            dst[dst_off + k] = alpha * scratch[0] + prev;
        } else {
            dst[dst_off + k * G + g] = scratch[0];
        }
    }
}

__kernel void acc_scalar_bcast(__global float *gx, const int gx_off, const int n, __global const float *g,
                               const int g_off, const float alpha)
{
    const int i = get_global_id(0);
    if (i < n)
        gx[gx_off + i] += alpha * g[g_off];
}

/* d map / d x and d map / d y. */
float rd_dx(const int map, const float x, const float y, const float s)
{
    switch (map) {
    case MAP_PROD:
        return y;
    case MAP_HINGE:
        return isnan(x) ? x : (1.0f - s * x > 0.0f ? -s : 0.0f);
    case MAP_ABSDIFF:
        return x > y ? 1.0f : (x < y ? -1.0f : 0.0f);
    case MAP_SQDIFF:
        return 2.0f * (x - y);
    case MAP_KL:
        return -2.0f * x;
    default:
        return 1.0f;
    }
}

float rd_dy(const int map, const float x, const float y)
{
    switch (map) {
    case MAP_PROD:
        return x;
    case MAP_ABSDIFF:
        return x > y ? -1.0f : (x < y ? 1.0f : 0.0f);
    case MAP_SQDIFF:
        return -2.0f * (x - y);
    case MAP_KL:
        return 1.0f - exp(y);
    default:
        return 0.0f;
    }
}

/* Backward of a full reduction loss = alpha * sum_i map(x_i, y_i) with d loss = g[0]. */
__kernel void map_backward(__global float *gx, const int gx_off, const int want_x, __global float *gy,
                           const int gy_off, const int want_y, __global const float *x, const int x_off,
                           __global const float *y, const int y_off, __global const float *g,
                           const int g_off, const int map, const float s, const float alpha, const int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float xv = x[x_off + i], yv = y[y_off + i];
    const float gs = alpha * g[g_off];
    /* want_*: 0 none, 1 store (a fresh gradient), 2 add; x first (x given as y: stored, then added to) */
    if (want_x) {
        const float v = gs * rd_dx(map, xv, yv, s);
        gx[gx_off + i] = want_x == 2 ? gx[gx_off + i] + v : v;
    }
    if (want_y) {
        const float v = gs * rd_dy(map, xv, yv);
        gy[gy_off + i] = want_y == 2 ? gy[gy_off + i] + v : v;
    }
}

/* a, b (N,C,H,W), g (N,1,H,W): ga += g * b, gb += g * a. One item per element of a. */
__kernel void channel_dot_backward(__global float *ga, const int ga_off, const int want_a, __global float *gb,
                                   const int gb_off, const int want_b, __global const float *a,
                                   const int a_off, __global const float *b, const int b_off,
                                   __global const float *g, const int g_off, const int C, const int HW,
                                   const int total)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    const int hw = i % HW;
    const int n = i / (C * HW);
    const float gv = g[g_off + n * HW + hw];
    const float av = a[a_off + i], bv = b[b_off + i];
    /* want_*: as map_backward's */
    if (want_a)
        ga[ga_off + i] = want_a == 2 ? ga[ga_off + i] + gv * bv : gv * bv;
    if (want_b)
        gb[gb_off + i] = want_b == 2 ? gb[gb_off + i] + gv * av : gv * av;
}

/* Per pixel of logits (N,K,H,W) and labels (N,1,H,W):
 * px (N,2,H,W): channel 0 the pixel's loss, channel 1 1 if counted else 0;
 * lse (N,1,H,W): log-sum-exp of the logits; bad: smallest pixel index whose
 * label is neither `ignore` nor an integer in [0, K) (int atomic_min: order-free). */
__kernel void ce_forward(__global const float *z, const int z_off, __global const float *lab,
                         const int lab_off, __global float *px, const int px_off, __global float *lse,
                         const int lse_off, __global int *bad, const int bad_off, const int N, const int K, const int HW,
                         const float ignore)
{
    const int p = get_global_id(0);
    if (p >= N * HW)
        return;
    const int n = p / HW, hw = p % HW;
    const float l = lab[lab_off + p];
    const int zb = z_off + n * K * HW + hw;
    float loss = 0.0f, valid = 0.0f, m = -INFINITY, sum = 0.0f;
    for (int k = 0; k < K; k++)
        m = fmax(m, z[zb + k * HW]);
    for (int k = 0; k < K; k++)
        sum += exp(z[zb + k * HW] - m);
    const float ls = m + log(sum);
    if (l != ignore) {
        if (l >= 0.0f && l < (float)K && l == floor(l)) {
            loss = ls - z[zb + (int)l * HW];
            valid = 1.0f;
        } else {
            atomic_min(bad + bad_off, p);
        }
    }
    px[px_off + n * 2 * HW + hw] = loss;
    px[px_off + n * 2 * HW + HW + hw] = valid;
    lse[lse_off + p] = ls;
}

/* stats (1,2,1,1) = (sum of losses, count) -> out = mean (0 when nothing counted). */
__kernel void ce_finalize(__global const float *stats, const int stats_off, __global float *out,
                          const int out_off)
{
    if (get_global_id(0) != 0)
        return;
    const float cnt = stats[stats_off + 1];
    out[out_off] = cnt > 0.0f ? stats[stats_off] / cnt : 0.0f;
}

/* gz(n,k,hw) += g[0] / count * (exp(z - lse) - [k == label]) for counted pixels. */
__kernel void ce_backward(__global float *gz, const int gz_off, __global const float *z, const int z_off,
                          __global const float *lab, const int lab_off, __global const float *lse,
                          const int lse_off, __global const float *g, const int g_off,
                          __global const float *stats, const int stats_off, const int N, const int K,
                          const int HW, const float ignore)
{
    const int i = get_global_id(0);
    if (i >= N * K * HW)
        return;
    const int hw = i % HW;
    const int k = (i / HW) % K;
    const int n = i / (K * HW);
    const int p = n * HW + hw;
    const float l = lab[lab_off + p];
    const float cnt = stats[stats_off + 1];
    if (l == ignore || !(l >= 0.0f && l < (float)K && l == floor(l)) || cnt <= 0.0f)
        return;
    const float sm = exp(z[z_off + i] - lse[lse_off + p]);
    const float onehot = (int)l == k ? 1.0f : 0.0f;
    gz[gz_off + i] += g[g_off] / cnt * (sm - onehot);
}
