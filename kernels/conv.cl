/* Direct 2-D convolution (NCHW, zero padding, groups = 1) and its backward.
 *
 *   conv_fwd_direct:        y(n,co,oy,ox) = b(co) + sum_{ci,ky,kx} w(co,ci,ky,kx) *
 *                                          x(n, ci, oy*s+ky-p, ox*s+kx-p)
 *   conv_bwd_data_direct:   dx(n,ci,iy,ix) += sum over (co,ky,kx) with iy+p-ky = oy*s,
 *                                          ix+p-kx = ox*s of w(co,ci,ky,kx) * dy(n,co,oy,ox)
 *                           (a gather: each dx element is owned by one work-item)
 *   conv_bwd_weight_direct: dw(co,ci,ky,kx) += sum_{n,oy,ox} dy(n,co,oy,ox) * x(n,ci,oy*s+ky-p,ox*s+kx-p)
 *   channel_sum_acc:        db(c) += sum_{n,h,w} dy(n,c,h,w)   (bias gradient; also used by linear)
 *   channel_bias_add:       y(n,c,h,w) += b(c)                 (bias of the GEMM paths)
 *
 * Tunables (-D defines; the host parses COUT_PER_ITEM from the same option string):
 *   COUT_PER_ITEM  output (fwd, bwd weight) or input (bwd data) channels computed per
 *                  work-item, kept in registers: 1, 2, 4, 8 or 16 (default 8).
 *   USE_LOCAL      conv_fwd_direct only: 1 = input patch in local memory (default),
 *                  0 = read taps straight from global memory (no barriers).
 *   The forward kernel's spatial tile is its work-group: TILE_W x TILE_H output pixels
 *   = local size (dims 0, 1; dim 2 is always 1), chosen by the host (tuned local size or
 *   a default); any local size works. The host also passes cin_chunk, the number of input
 *   channels whose padded input patch sits in local memory at once (host tunable
 *   CIN_CHUNK, default 8, lowered until the patch fits ctx->local_mem).
 *
 * Memory traffic (forward, per work-group): reads cin * PH * PW input floats once into
 * local memory (PH = (TILE_H-1)*s+KH, PW = (TILE_W-1)*s+KW) and COUT_PER_ITEM*cin*KH*KW
 * weights (the same for every item of the group: broadcast from cache); writes
 * COUT_PER_ITEM*TILE_W*TILE_H outputs. Backward data: each item reads its taps of dy
 * (Cout * KH*KW / s^2 floats) and the matching weights, writes COUT_PER_ITEM floats.
 * Backward weight: each item reads N*OH*OW*(1 + COUT_PER_ITEM) floats.
 * All sums run in a fixed order: results do not depend on local sizes or scheduling.
 *
 * Arithmetic is explicit, so that every tiling and COUT_PER_ITEM of a kernel gives
 * bit-identical results on every implementation (tests/test_conv.c checks it):
 * FP_CONTRACT is OFF, every multiply-accumulate a separate multiply and add. With
 * contraction left to the compiler, Intel's CPU runtime fused a*b+c in some code paths
 * of a kernel and not in others (its vectorized and remainder paths differ with the
 * work-group shape), so one output differed in the last bit between two tilings.
 * Explicit fma() would give the same guarantee with one rounding (and one instruction
 * on GPUs), but Mesa rusticl 22.3 (llvmpipe, LLVM 15) miscompiles it in
 * conv_bwd_weight_direct with COUT_PER_ITEM=8 and N >= 2 at 64x64 (dw wrong by O(1);
 * tests/test_conv.c direct_gradients_at_a_medium_shape catches it). */
#pragma OPENCL FP_CONTRACT OFF

#ifndef COUT_PER_ITEM
#define COUT_PER_ITEM 8
#endif
#ifndef USE_LOCAL
#define USE_LOCAL 1
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

/* global: (W, H, N * ceil(Cin / COUT_PER_ITEM)); any local size. dx += result. */
__kernel void conv_bwd_data_direct(__global const float *dy, const int dy_off, __global const float *w,
                                   const int w_off, __global float *dx, const int dx_off, const int N,
                                   const int Cin, const int H, const int W, const int Cout, const int OH,
                                   const int OW, const int KH, const int KW, const int stride, const int pad)
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
        if (ci < Cin)
            dx[dx_off + ((n * Cin + ci) * H + iy) * W + ix] += acc[j];
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

/* One work-group per channel: global (C * lsz), local (lsz), any lsz; scratch lsz floats.
 * Each item sums a strided subset of the channel's N*HW values in a fixed order, then
 * the group reduces its partial sums as a tree. db(c) += total. */
__kernel void channel_sum_acc(__global const float *dy, const int dy_off, __global float *db, const int db_off,
                              const int N, const int C, const int HW, __local float *scratch)
{
    const int c = get_group_id(0);
    const int lid = get_local_id(0), lsz = get_local_size(0);
    float s = 0.0f;
    if (c < C)
        for (int n = 0; n < N; n++) {
            __global const float *p = dy + dy_off + (n * C + c) * HW;
            for (int i = lid; i < HW; i += lsz)
                s += p[i];
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

/* global (N * C * HW); any local size. */
__kernel void channel_bias_add(__global float *y, const int y_off, __global const float *b, const int b_off,
                               const int C, const int HW, const int total)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    const int c = (i / HW) % C;
    y[y_off + i] += b[b_off + c];
}
