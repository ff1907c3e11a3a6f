/* im2col / col2im for the GEMM convolution path, one sample and a range of output
 * pixels [p0, p0 + P) at a time (so the column buffer stays bounded).
 *
 *   im2col:     col(r, p) = x(ci, oy*s+ky-pad, ox*s+kx-pad) (0 outside the image),
 *               r = (ci*KH + ky)*KW + kx, q = p0 + p = oy*OW + ox; col is (Cin*KH*KW, P).
 *   col2im_acc: dx(ci, iy, ix) += sum of col(r, q - p0) over the taps (ky, kx) whose output
 *               pixel q = oy*OW + ox (iy+pad-ky = oy*s, ix+pad-kx = ox*s) lies in the range.
 *               A gather: every dx element is owned by one work-item (no atomics, fixed order).
 *
 * Tunables: none (2-D launches with the launch helper's local size).
 * Memory traffic: im2col reads up to Cin*KH*KW*P floats (cached) and writes as many;
 * col2im reads each col element once and reads+writes Cin*H*W floats. */

/* global (P, Cin*KH*KW) */
__kernel void im2col(__global const float *x, const int x_off, __global float *col, const int col_off,
                     const int Cin, const int H, const int W, const int OW, const int KH, const int KW,
                     const int stride, const int pad, const int p0, const int P)
{
    const int p = get_global_id(0), r = get_global_id(1);
    const int KK = KH * KW;
    if (p >= P || r >= Cin * KK)
        return;
    const int q = p0 + p, oy = q / OW, ox = q - oy * OW;
    const int ci = r / KK, k = r - ci * KK, ky = k / KW, kx = k - ky * KW;
    const int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
    col[col_off + r * P + p] =
        (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[x_off + (ci * H + iy) * W + ix] : 0.0f;
}

/* global (W, H, Cin) */
__kernel void col2im_acc(__global const float *col, const int col_off, __global float *dx, const int dx_off,
                         const int Cin, const int H, const int W, const int OH, const int OW, const int KH,
                         const int KW, const int stride, const int pad, const int p0, const int P)
{
    const int ix = get_global_id(0), iy = get_global_id(1), ci = get_global_id(2);
    if (ix >= W || iy >= H || ci >= Cin)
        return;
    const int KK = KH * KW;
    float s = 0.0f;
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
            const int q = oy * OW + ox - p0;
            if (q < 0 || q >= P)
                continue;
            s += col[col_off + (ci * KK + ky * KW + kx) * P + q];
        }
    }
    dx[dx_off + (ci * H + iy) * W + ix] += s;
}
