/* Direct 2-D convolution, backward (NCHW, zero padding, groups = 1).
 *
 *   conv_bwd_data_direct:   dx(n,ci,iy,ix) (+)= sum over (co,ky,kx) with iy+p-ky = oy*s,
 *                                          ix+p-kx = ox*s of w(co,ci,ky,kx) * dy(n,co,oy,ox)
 *                           (a gather: each dx element is owned by one work-item)
 *   conv_bwd_weight_direct: dw(co,ci,ky,kx) += sum_{n,oy,ox} dy(n,co,oy,ox) * x(n,ci,oy*s+ky-p,ox*s+kx-p)
 *
 * Tunables (-D, required: values from the descriptors in clcore/ops_conv_kdef.c and the
 * tuning database): COUT_PER_ITEM input (data) or output (weight) channels computed per
 * work-item, in registers: 1, 2, 4, 8, 16. Any local size (tuned or the launch default).
 *
 * Memory traffic: backward data, each item reads its taps of dy (Cout * KH*KW / s^2
 * floats) and the matching weights, writes COUT_PER_ITEM floats; backward weight, each
 * item reads N*OH*OW*(1 + COUT_PER_ITEM) floats. Sums run in a fixed order.
 *
 * Arithmetic is explicit, so that every COUT_PER_ITEM and local size gives bit-identical
 * results on every implementation: FP_CONTRACT is OFF and each multiply-accumulate is a
 * separate multiply and add (left to the compiler, Intel's CPU runtime contracts a*b+c
 * in some code paths and not in others; see kernels/conv_fwd.cl). Not fma(): Mesa
 * rusticl 22.3 (llvmpipe, LLVM 15) miscompiles it in conv_bwd_weight_direct with
 * COUT_PER_ITEM=8 and N >= 2 at 64x64 (dw wrong by O(1); tests/test_conv.c
 * direct_gradients_at_a_medium_shape catches it). */
#pragma OPENCL FP_CONTRACT OFF

#ifndef COUT_PER_ITEM
#error "COUT_PER_ITEM is not set: build through the kernel descriptor (clcore/ops_conv_kdef.c)"
#endif

/* global: (W, H, N * ceil(Cin / COUT_PER_ITEM)); any local size. dx += result
 * (accumulate 1), or dx = 0 + result into a fresh gradient (accumulate 0: no zero
 * fill; 0 + r stores a -0 as +0, bit for bit the add to a filled dx). */
__kernel void conv_bwd_data_direct(__global const float *dy, const int dy_off, __global const float *w,
                                   const int w_off, __global float *dx, const int dx_off, const int N,
                                   const int Cin, const int H, const int W, const int Cout, const int OH,
                                   const int OW, const int KH, const int KW, const int stride, const int pad,
                                   const int accumulate)
{
    const int ix = get_global_id(0), iy = get_global_id(1), z = get_global_id(2);
    const int ncib = (Cin + COUT_PER_ITEM - 1) / COUT_PER_ITEM;
    const int n = z / ncib, ci0 = (z % ncib) * COUT_PER_ITEM;
    if (ix >= W || iy >= H || n >= N)
        return;
    const int KK = KH * KW, OHW = OH * OW;
    __global const float *dyn = dy + dy_off + n * Cout * OHW;
    int wcol[COUT_PER_ITEM];
    float acc[COUT_PER_ITEM];
    for (int j = 0; j < COUT_PER_ITEM; j++) {
        wcol[j] = w_off + min(ci0 + j, Cin - 1) * KK;
        acc[j] = 0.0f;
    }
    for (int ky = 0; ky < KH; ky++) {
        const int ty = iy + pad - ky;
        if (ty < 0 || ty % stride)
            continue;
        const int oy = ty / stride;
        if (oy >= OH)
            continue;
        for (int kx = 0; kx < KW; kx++) {
            const int tx = ix + pad - kx;
            if (tx < 0 || tx % stride)
                continue;
            const int ox = tx / stride;
            if (ox >= OW)
                continue;
            const int k = ky * KW + kx;
            for (int co = 0; co < Cout; co++) {
                const float g = dyn[co * OHW + oy * OW + ox];
                const int wb = co * Cin * KK + k;
                for (int j = 0; j < COUT_PER_ITEM; j++)
                    acc[j] += g * w[wcol[j] + wb];
            }
        }
    }
    for (int j = 0; j < COUT_PER_ITEM; j++) {
        const int ci = ci0 + j;
        if (ci < Cin) {
            const int i = dx_off + ((n * Cin + ci) * H + iy) * W + ix;
            dx[i] = (accumulate ? dx[i] : 0.0f) + acc[j];
        }
    }
}

/* global: (Cin * KH * KW, ceil(Cout / COUT_PER_ITEM)); any local size. dw += result.
 * Each output row's partial sum is formed first, then added to the total (a
 * two-level sum: error grows with OW + N*OH instead of N*OH*OW). */
__kernel void conv_bwd_weight_direct(__global const float *dy, const int dy_off, __global const float *x,
                                     const int x_off, __global float *dw, const int dw_off, const int N,
                                     const int Cin, const int H, const int W, const int Cout, const int OH,
                                     const int OW, const int KH, const int KW, const int stride, const int pad)
{
    const int r = get_global_id(0), cob = get_global_id(1);
    const int KK = KH * KW;
    const int co0 = cob * COUT_PER_ITEM;
    if (r >= Cin * KK || co0 >= Cout)
        return;
    const int ci = r / KK, k = r - ci * KK, ky = k / KW, kx = k - ky * KW;
    const int OHW = OH * OW;
    int dyrow[COUT_PER_ITEM];
    float acc[COUT_PER_ITEM];
    for (int j = 0; j < COUT_PER_ITEM; j++) {
        dyrow[j] = min(co0 + j, Cout - 1) * OHW;
        acc[j] = 0.0f;
    }
    /* output columns whose input column is inside the image */
    const int ox_lo = max(0, (pad - kx + stride - 1) / stride);
    const int t_hi = W - 1 + pad - kx;
    const int ox_hi = t_hi < 0 ? 0 : min(OW, t_hi / stride + 1); /* exclusive */
    for (int n = 0; n < N; n++) {
        __global const float *xn = x + x_off + (n * Cin + ci) * H * W;
        __global const float *dyn = dy + dy_off + n * Cout * OHW;
        for (int oy = 0; oy < OH; oy++) {
            const int iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= H)
                continue;
            float row[COUT_PER_ITEM];
            for (int j = 0; j < COUT_PER_ITEM; j++)
                row[j] = 0.0f;
            for (int ox = ox_lo; ox < ox_hi; ox++) {
                const float v = xn[iy * W + ox * stride + kx - pad];
                const int q = oy * OW + ox;
                for (int j = 0; j < COUT_PER_ITEM; j++)
                    row[j] += v * dyn[dyrow[j] + q];
            }
            for (int j = 0; j < COUT_PER_ITEM; j++)
                acc[j] += row[j];
        }
    }
    for (int j = 0; j < COUT_PER_ITEM; j++) {
        const int co = co0 + j;
        if (co < Cout)
            dw[dw_off + co * Cin * KK + r] += acc[j];
    }
}
