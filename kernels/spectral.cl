/* Spectral normalization kernels (torch.nn.utils.spectral_norm semantics).
 * W is the weight (Cout, Cin, KH, KW) viewed as a row-major matrix (Cout x K),
 * K = Cin*KH*KW; u (Cout), v (K) are vectors; sigma is one float.
 *
 *   sn_wtu       v[k] = sum_o W[o,k] * u[o]            (Kahan sum over o per column)
 *   sn_normalize v = v / max(||v||, eps)                (one work-group)
 *   sn_wv        wv[o] = sum_k W[o,k] * v[k]            (one work-group per row, tree)
 *   sn_finish    update: u = u_used = wv / max(||wv||, eps); else u_used = u (as stored);
 *                sigma = u_used . wv                    (one work-group)
 *   sn_scale     out = W / sigma
 *   sn_rowdot    rows[o] = sum_k A[o,k] * B[o,k]       (one work-group per row, tree)
 *   sn_bwd_coef  coef = (sum_o rows[o]) / sigma^2      (one work-group)
 *   sn_bwd_dw    dW[o,k] += dWsn[o,k] / sigma - coef * u[o] * v[k]
 *
 * Tunables: none compiled in. The local size of the reduction kernels
 * (sn_normalize, sn_wv, sn_finish, sn_rowdot, sn_bwd_coef) may be any value from
 * 1 to the kernel's maximum work-group size (non-powers of two accepted); they
 * use local * 4 bytes of local memory.
 *
 * Memory traffic (W of Cout*K floats): a training forward reads W three times
 * (W^T u, W v, W / sigma) and writes it once: 16*Cout*K bytes (an eval
 * forward skips W^T u: 12*Cout*K); backward reads dWsn twice
 * and W once, read-modify-writes dW: 20*Cout*K bytes. */

static int sn_pow2_ceil(int n)
{
    int p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* Sum of v over the work-group (tree in local memory; any group size). Every
 * work-item gets the result; ls may be reused after the call. */
static float sn_group_sum(__local float *ls, float v, int lid, int L)
{
    ls[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = sn_pow2_ceil(L) >> 1; s > 0; s >>= 1) {
        if (lid < s && lid + s < L)
            ls[lid] += ls[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float r = ls[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* Global (K). */
__kernel void sn_wtu(__global const float *w, const int w_off, __global const float *u, const int u_off,
                     __global float *v, const int v_off, const int Cout, const int K)
{
    const int k = get_global_id(0);
    if (k >= K)
        return;
    float s = 0.0f, comp = 0.0f;
    for (int o = 0; o < Cout; o++) {
        const float y = w[w_off + o * K + k] * u[u_off + o] - comp;
        const float t = s + y;
        comp = (t - s) - y;
        s = t;
    }
    v[v_off + k] = s;
}

/* Global (L), local (L): one work-group normalizes v of n elements in place. */
__kernel void sn_normalize(__global float *v, const int v_off, const int n, const float eps, __local float *ls)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    float s = 0.0f;
    for (int i = lid; i < n; i += L)
        s += v[v_off + i] * v[v_off + i];
    const float d = fmax(sqrt(sn_group_sum(ls, s, lid, L)), eps);
    for (int i = lid; i < n; i += L)
        v[v_off + i] = v[v_off + i] / d;
}

/* Global (L * Cout), local (L): work-group o computes row o of W v. */
__kernel void sn_wv(__global const float *w, const int w_off, __global const float *v, const int v_off,
                    __global float *wv, const int wv_off, const int Cout, const int K, __local float *ls)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    const int o = get_group_id(0);
    float s = 0.0f;
    if (o < Cout)
        for (int k = lid; k < K; k += L)
            s += w[w_off + o * K + k] * v[v_off + k];
    const float r = sn_group_sum(ls, s, lid, L);
    if (lid == 0 && o < Cout)
        wv[wv_off + o] = r;
}

/* Global (L), local (L): one work-group. update = 0 uses u as stored (not
 * normalized: PyTorch's eval forward takes weight_u as it is). */
__kernel void sn_finish(__global const float *wv, const int wv_off, __global float *u, const int u_off,
                        __global float *u_used, const int uu_off, __global float *sigma, const int sigma_off,
                        const int Cout, const int update, const float eps, __local float *ls)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    float d = 1.0f;
    if (update) {
        float s = 0.0f;
        for (int i = lid; i < Cout; i += L)
            s += wv[wv_off + i] * wv[wv_off + i];
        d = fmax(sqrt(sn_group_sum(ls, s, lid, L)), eps);
    }
    float dot = 0.0f;
    for (int i = lid; i < Cout; i += L) {
        const float a = update ? wv[wv_off + i] / d : u[u_off + i];
        u_used[uu_off + i] = a;
        if (update)
            u[u_off + i] = a;
        dot += a * wv[wv_off + i];
    }
    const float sig = sn_group_sum(ls, dot, lid, L);
    if (lid == 0)
        sigma[sigma_off] = sig;
}

/* Global (E). */
__kernel void sn_scale(__global const float *w, const int w_off, __global const float *sigma,
                       const int sigma_off, __global float *out, const int out_off, const int E)
{
    const int i = get_global_id(0);
    if (i >= E)
        return;
    out[out_off + i] = w[w_off + i] / sigma[sigma_off];
}

/* Global (L * Cout), local (L). */
__kernel void sn_rowdot(__global const float *a, const int a_off, __global const float *b, const int b_off,
                        __global float *rows, const int rows_off, const int Cout, const int K, __local float *ls)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    const int o = get_group_id(0);
    float s = 0.0f;
    if (o < Cout)
        for (int k = lid; k < K; k += L)
            s += a[a_off + o * K + k] * b[b_off + o * K + k];
    const float r = sn_group_sum(ls, s, lid, L);
    if (lid == 0 && o < Cout)
        rows[rows_off + o] = r;
}

/* Global (L), local (L): one work-group. */
__kernel void sn_bwd_coef(__global const float *rows, const int rows_off, const int Cout,
                          __global const float *sigma, const int sigma_off, __global float *coef,
                          const int coef_off, __local float *ls)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    float s = 0.0f;
    for (int i = lid; i < Cout; i += L)
        s += rows[rows_off + i];
    const float r = sn_group_sum(ls, s, lid, L);
    if (lid == 0) {
        const float sg = sigma[sigma_off];
        coef[coef_off] = r / (sg * sg);
    }
}

/* Global (K, Cout). */
__kernel void sn_bwd_dw(__global const float *dwsn, const int dwsn_off, __global const float *u,
                        const int u_off, __global const float *v, const int v_off, __global const float *sigma,
                        const int sigma_off, __global const float *coef, const int coef_off,
                        __global float *dw, const int dw_off, const int Cout, const int K)
{
    const int k = get_global_id(0), o = get_global_id(1);
    if (k >= K || o >= Cout)
        return;
    const int i = o * K + k;
    dw[dw_off + i] += dwsn[dwsn_off + i] / sigma[sigma_off] - coef[coef_off] * u[u_off + o] * v[v_off + k];
}
