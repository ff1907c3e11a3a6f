/* Direct 2-D convolution, forward (NCHW, zero padding, groups = 1).
 *
 *   conv_fwd_direct: y(n,co,oy,ox) = b(co) + sum_{ci,ky,kx} w(co,ci,ky,kx) * x(n, ci, oy*s+ky-p, ox*s+kx-p)
 *
 * (Its backward kernels are in kernels/conv_bwd.cl; the GEMM path's bias and
 * every bias gradient in kernels/bias.cl.)
 *
 * Tunables (-D defines, both required: their values come from the descriptor in
 * clcore/ops_conv_kdef.c and the tuning database, never from this file):
 *   COUT_PER_ITEM  output channels computed per work-item, kept in registers: 1, 2, 4, 8, 16.
 *   USE_LOCAL      1 = the input patch in local memory, 0 = taps read straight from global
 *                  memory (no barriers).
 *   The spatial tile is the work-group: TILE_W x TILE_H output pixels = local size
 *   (dims 0, 1; dim 2 is always 1), chosen by the host; any local size works. The host
 *   also passes cin_chunk, the number of input channels whose padded input patch sits in
 *   local memory at once (host tunable CIN_CHUNK).
 *
 * Memory traffic per work-group: reads cin * PH * PW input floats once into local memory
 * (PH = (TILE_H-1)*s+KH, PW = (TILE_W-1)*s+KW) and COUT_PER_ITEM*cin*KH*KW weights (the
 * same for every item of the group: broadcast from cache); writes COUT_PER_ITEM*TILE_W*TILE_H
 * outputs. Sums run in a fixed order: results do not depend on the local size.
 *
 * Arithmetic is explicit, so that every tiling, COUT_PER_ITEM and USE_LOCAL gives
 * bit-identical results on every implementation (tests/test_conv.c
 * direct_kernel_same_under_small_device_limits and the op sweep compare them exactly):
 * FP_CONTRACT is OFF and each multiply-accumulate is a separate multiply and add. With
 * contraction left to the compiler, Intel's CPU runtime fused a*b+c in some code paths
 * of this kernel and not in others (its vectorized and remainder paths differ with the
 * work-group shape), so one output differed in the last bit between two tilings.
 * Explicit fma() would give the same guarantee with one rounding (and one instruction
 * on GPUs), but Mesa rusticl 22.3 miscompiles fma() in the backward weight kernel
 * (kernels/conv_bwd.cl), and the forward and backward kernels keep one rule. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef COUT_PER_ITEM
#error "COUT_PER_ITEM is not set: build through the kernel descriptor (clcore/ops_conv_kdef.c)"
#endif
#ifndef USE_LOCAL
#error "USE_LOCAL is not set: build through the kernel descriptor (clcore/ops_conv_kdef.c)"
#endif

/* global: (round_up(OW, lw), round_up(OH, lh), N * ceil(Cout / COUT_PER_ITEM)),
 * local (lw, lh, 1); patch: cin_chunk * PH * PW floats of local memory. */
__kernel void conv_fwd_direct(__global const float *x, const int x_off, __global const float *w, const int w_off,
                              __global const float *b, const int b_off, const int has_bias,
                              __global float *y, const int y_off, const int N, const int Cin, const int H,
                              const int W, const int Cout, const int OH, const int OW, const int KH,
                              const int KW, const int stride, const int pad, const int cin_chunk,
                              __local float *patch)
{
    const int lx = get_local_id(0), ly = get_local_id(1);
    const int lw = get_local_size(0), lh = get_local_size(1);
    const int lid = ly * lw + lx, lsz = lw * lh;
    const int ox0 = get_group_id(0) * lw, oy0 = get_group_id(1) * lh;
    const int ox = ox0 + lx, oy = oy0 + ly;
    const int ncob = (Cout + COUT_PER_ITEM - 1) / COUT_PER_ITEM;
    const int z = get_global_id(2);
    const int n = z / ncob, co0 = (z % ncob) * COUT_PER_ITEM;
    /* z is the same for the whole group (local size 1 in dim 2), so every item
     * takes part in the loads and barriers below; only the writes are guarded. */
    if (n >= N)
        return;
    const int active = ox < OW && oy < OH;
    const int PH = (lh - 1) * stride + KH, PW = (lw - 1) * stride + KW, PHW = PH * PW;
    const int iy0 = oy0 * stride - pad, ix0 = ox0 * stride - pad;
    const int KK = KH * KW;
    __global const float *xn = x + x_off + n * Cin * H * W;

    int wrow[COUT_PER_ITEM];
    float acc[COUT_PER_ITEM];
    for (int j = 0; j < COUT_PER_ITEM; j++) {
        /* channels past Cout read a valid row and are never written */
        wrow[j] = w_off + min(co0 + j, Cout - 1) * Cin * KK;
        acc[j] = 0.0f;
    }
#if !USE_LOCAL
    /* no local memory, no barriers: every item reads its taps from global memory
     * (through the cache); faster on CPU devices, where a barrier makes the
     * compiler keep each item's accumulators in memory */
    if (!active)
        return;
    for (int ci = 0; ci < Cin; ci++) {
        __global const float *xc = xn + ci * H * W;
        const int wc = ci * KK;
        for (int ky = 0; ky < KH; ky++) {
            const int iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= H)
                continue;
            for (int kx = 0; kx < KW; kx++) {
                const int ix = ox * stride + kx - pad;
                const float v = (ix >= 0 && ix < W) ? xc[iy * W + ix] : 0.0f;
                const int wk = wc + ky * KW + kx;
                for (int j = 0; j < COUT_PER_ITEM; j++)
                    acc[j] += v * w[wrow[j] + wk];
            }
        }
    }
#else
    for (int c0 = 0; c0 < Cin; c0 += cin_chunk) {
        const int cc = min(cin_chunk, Cin - c0);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = lid; i < cc * PHW; i += lsz) {
            const int ci = i / PHW, r = i - ci * PHW;
            const int py = r / PW, px = r - py * PW;
            const int iy = iy0 + py, ix = ix0 + px;
            patch[i] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xn[((c0 + ci) * H + iy) * W + ix] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (active) {
            for (int ci = 0; ci < cc; ci++) {
                __local const float *pc = patch + ci * PHW + (ly * stride) * PW + lx * stride;
                const int wc = (c0 + ci) * KK;
                for (int ky = 0; ky < KH; ky++)
                    for (int kx = 0; kx < KW; kx++) {
                        const float v = pc[ky * PW + kx];
                        const int wk = wc + ky * KW + kx;
                        for (int j = 0; j < COUT_PER_ITEM; j++)
                            acc[j] += v * w[wrow[j] + wk];
                    }
            }
        }
    }
    if (!active)
        return;
#endif
    for (int j = 0; j < COUT_PER_ITEM; j++) {
        const int co = co0 + j;
        if (co < Cout)
            y[y_off + ((n * Cout + co) * OH + oy) * OW + ox] = acc[j] + (has_bias ? b[b_off + co] : 0.0f);
    }
}
