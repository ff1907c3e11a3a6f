/* The epilogue of a fused convolution (clcore/ops_conv_fused.c) as kernels of its own,
 * for the algorithms whose GEMM cannot apply it (direct, im2col + CLBlast), and its
 * backward for every algorithm.
 *
 *   conv_epi_forward:  y = act(t * gate) + residual, t = conv + bias (the pre-gate value
 *                      u; y may be t itself when u is not kept). 12-20 bytes per element.
 *   conv_epi_backward: from gy = dL/dy: dres (+)= gy; g = gy * act'(z); dgate (+)= g * u
 *                      (stored into fresh gradients, added to existing ones);
 *                      dz = g * gate, z = u * gate (recomputed from u when it was kept,
 *                      else act' from the output y: relu and leaky relu with slope >= 0
 *                      by y's sign, sigmoid y(1-y), tanh 1-y^2). 12-28 bytes per element.
 *   conv_epi_backward_bias: the same, one work-group per output channel, with the
 *                      conv's bias gradient summed as kernels/bias.cl channel_sum_acc does
 *                      (one launch instead of two).
 *   The formulas and their order are those of kernels/elementwise.cl (unary_f, unary_df,
 *   binop), FP_CONTRACT off, so the fused op equals the unfused chain element for element.
 *
 * act: 0 none, 1 relu, 2 leaky relu (slope), 3 sigmoid, 4 tanh.
 * Tunables: none (1-D launches with the launch helper's local size). */
#pragma OPENCL FP_CONTRACT OFF

#define EPI_GATE 2
#define EPI_RES 4

float epi_act(const int act, const float z, const float slope)
{
    switch (act) {
    case 1:
        return z > 0.0f ? z : 0.0f;
    case 2:
        return z > 0.0f ? z : z * slope;
    case 3:
        return 1.0f / (1.0f + exp(-z));
    case 4:
        return tanh(z);
    default:
        return z;
    }
}

/* act'(z) from z */
float epi_dact_z(const int act, const float z, const float slope)
{
    switch (act) {
    case 1:
        return z > 0.0f ? 1.0f : 0.0f;
    case 2:
        return z > 0.0f ? 1.0f : slope;
    case 3: {
        const float s = 1.0f / (1.0f + exp(-z));
        return s * (1.0f - s);
    }
    case 4: {
        const float t = tanh(z);
        return 1.0f - t * t;
    }
    default:
        return 1.0f;
    }
}

/* act'(z) from y = act(z) */
float epi_dact_y(const int act, const float y, const float slope)
{
    switch (act) {
    case 1:
        return y > 0.0f ? 1.0f : 0.0f;
    case 2:
        return y > 0.0f ? 1.0f : slope;
    case 3:
        return y * (1.0f - y);
    case 4:
        return 1.0f - y * y;
    default:
        return 1.0f;
    }
}

/* global (total); epi bits EPI_GATE, EPI_RES; every tensor has y's shape */
__kernel void conv_epi_forward(__global const float *t, const int t_off, __global const float *gate,
                               const int g_off, __global const float *res, const int r_off, __global float *y,
                               const int y_off, const int epi, const int act, const float slope, const int total)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    float z = t[t_off + i];
    if (epi & EPI_GATE)
        z = z * gate[g_off + i];
    z = epi_act(act, z, slope);
    if (epi & EPI_RES)
        z = z + res[r_off + i];
    y[y_off + i] = z;
}

#define BWD_GATE 1       /* the epilogue has a gate */
#define BWD_RES_GRAD 2   /* dres += gy */
#define BWD_HAS_U 4      /* z recomputed from u (else act' from y) */
#define BWD_GATE_GRAD 8  /* dgate += g * u */
#define BWD_DZ 16        /* dz = g * gate (the conv's output gradient) */
#define BWD_RES_STORE 32 /* dres = 0 + gy: a fresh gradient, not zero-filled */
#define BWD_GATE_STORE 64 /* dgate = 0 + g * u: likewise */

/* global (total); every tensor has y's shape. */
/* The epilogue's backward at element i; returns dz(i), the conv's output gradient
 * (stored when BWD_DZ). One body for both kernels below: same values. */
float epi_backward_at(const int i, __global const float *gy, const int gy_off, __global const float *y,
                      const int y_off, __global const float *u, const int u_off, __global const float *gate,
                      const int g_off, __global float *dz, const int dz_off, __global float *dgate, const int dg_off,
                      __global float *dres, const int dr_off, const int flags, const int act, const float slope)
{
    float g = gy[gy_off + i];
    if (flags & BWD_RES_GRAD) /* 0 + g: a -0 stored as +0, bit for bit the add to a zero fill */
        dres[dr_off + i] = (flags & BWD_RES_STORE ? 0.0f : dres[dr_off + i]) + g;
    if (act) {
        float d;
        if (flags & BWD_HAS_U) {
            float z = u[u_off + i];
            if (flags & BWD_GATE)
                z = z * gate[g_off + i];
            d = epi_dact_z(act, z, slope);
        } else {
            d = epi_dact_y(act, y[y_off + i], slope);
        }
        g = g * d;
    }
    if (flags & BWD_GATE) {
        if (flags & BWD_GATE_GRAD)
            dgate[dg_off + i] = (flags & BWD_GATE_STORE ? 0.0f : dgate[dg_off + i]) + g * u[u_off + i];
        g = g * gate[g_off + i];
    }
    if (flags & BWD_DZ)
        dz[dz_off + i] = g;
    return g;
}

__kernel void conv_epi_backward(__global const float *gy, const int gy_off, __global const float *y, const int y_off,
                                __global const float *u, const int u_off, __global const float *gate,
                                const int g_off, __global float *dz, const int dz_off, __global float *dgate,
                                const int dg_off, __global float *dres, const int dr_off, const int flags,
                                const int act, const float slope, const int total)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    epi_backward_at(i, gy, gy_off, y, y_off, u, u_off, gate, g_off, dz, dz_off, dgate, dg_off, dres, dr_off, flags,
                    act, slope);
}

/* conv_epi_backward plus the bias gradient db(c) += sum_{n,h,w} dz(n,c,h,w), in
 * kernels/bias.cl channel_sum_acc's order: one work-group per channel, global
 * (C * lsz), local (lsz), scratch lsz floats; each item sums its strided subset,
 * then the same tree. With channel_sum_acc's lsz the sum is its bits. */
__kernel void conv_epi_backward_bias(__global const float *gy, const int gy_off, __global const float *y,
                                     const int y_off, __global const float *u, const int u_off,
                                     __global const float *gate, const int g_off, __global float *dz,
                                     const int dz_off, __global float *dgate, const int dg_off, __global float *dres,
                                     const int dr_off, const int flags, const int act, const float slope,
                                     __global float *db, const int db_off, const int N, const int C, const int HW,
                                     __local float *scratch)
{
    const int c = get_group_id(0);
    const int lid = get_local_id(0), lsz = get_local_size(0);
    float s = 0.0f;
    if (c < C)
        for (int n = 0; n < N; n++) {
            const int base = (n * C + c) * HW;
            for (int i = lid; i < HW; i += lsz)
                s += epi_backward_at(base + i, gy, gy_off, y, y_off, u, u_off, gate, g_off, dz, dz_off, dgate,
                                     dg_off, dres, dr_off, flags, act, slope);
        }
    scratch[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int m = lsz; m > 1;) {
        const int hm = (m + 1) / 2;
        if (lid < m - hm)
            scratch[lid] += scratch[lid + hm];
        barrier(CLK_LOCAL_MEM_FENCE);
        m = hm;
    }
    if (lid == 0 && c < C)
        db[db_off + c] += scratch[0];
}
