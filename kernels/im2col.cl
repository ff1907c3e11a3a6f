/* im2col / col2im and a layout permute for the GEMM convolution
 * (clcore/ops_conv_gemm.c), over ns samples and a range of output pixels
 * [p0, p0 + P) at a time (so the column buffer stays bounded).
 *
 * The column buffer holds, for sample n of the chunk, row r and pixel p,
 * col[r * ld_r + n * ld_n + p], r = (ci*KH + ky)*KW + kx, output pixel q = p0 + p =
 * oy*OW + ox. Two layouts: samples side by side, (Cin*KH*KW, ns*P) with
 * ld_r = ns*P, ld_n = P (one GEMM for the chunk), or one matrix per sample,
 * (ns, Cin*KH*KW, P) with ld_r = P, ld_n = Cin*KH*KW*P (a batched GEMM).
 *
 *   im2col:     col(r, n, p) = x(n, ci, oy*s+ky-pad, ox*s+kx-pad) (0 outside the image).
 *   col2im_acc: dx(n, ci, iy, ix) (+)= sum of col(r, n, q - p0) over the taps (ky, kx) whose output
 *               pixel q = oy*OW + ox (iy+pad-ky = oy*s, ix+pad-kx = ox*s) lies in the range.
 *               A gather: every dx element is owned by one work-item (no atomics, fixed order).
 *   swap01:     dst(j, i, p) = src(i, j, p) (+ bias(i)): (D0, D1, D2) -> (D1, D0, D2), e.g. a
 *               GEMM's (Cout, ns, P) output to the (ns, Cout, P) tensor layout, with the bias.
 *
 * Tunables: none compiled in. The host chooses how many work-items share one row (the conv2d
 * tunable COL_ROW_ITEMS, global dimension 0, any value from 1): each item loops over the
 * row's pixels with that stride, so the index divisions are done once per item and row, not
 * per element. One item per row (CPU devices: the row is a plain copy loop; PoCL ran im2col
 * 9x faster at 44 channels 64x64 than with one item per element) or one item per pixel
 * (GPUs: neighbouring items touch neighbouring addresses). im2col splits each row into its
 * left padding, its taps inside the image and its right padding, and at stride 1 with one
 * item per row copies the middle part in a loop of its own, which PoCL's compiler
 * vectorizes (a tiny training step's im2col time, 1 thread: 87 ms, then 72 with the split,
 * then 40-54 with the loop).
 * Memory traffic: im2col reads up to Cin*KH*KW*P floats per sample (cached) and writes as
 * many; col2im reads each col element once and reads+writes Cin*H*W floats per sample;
 * swap01 reads and writes D0*D1*D2 floats. */

/* The first o >= lo with o = start (mod step), start <= lo allowed. */
int first_from(const int lo, const int start, const int step)
{
    return start >= lo ? start : lo + (step - (lo - start) % step) % step;
}

/* The output index o (0 <= o < O) whose tap k reads input index i at this stride and
 * pad (i + pad - k = o * stride), or -1 when there is none. */
int tap_out(const int i, const int pad, const int k, const int stride, const int O)
{
    const int t = i + pad - k;
    if (t < 0 || (stride > 1 && t % stride))
        return -1;
    const int o = stride > 1 ? t / stride : t; /* no division at stride 1 */
    return o < O ? o : -1;
}

/* global (row items, output rows meeting [p0, p0+P), Cin*KH*KW * ns); x_off: sample 0 of the
 * chunk. Dimension 0 runs along an output row (contiguous in col and, at stride 1, in x). */
__kernel void im2col(__global const float *x, const int x_off, __global float *col, const int col_off,
                     const int Cin, const int H, const int W, const int OW, const int KH, const int KW,
                     const int stride, const int pad, const int p0, const int P, const int ld_r, const int ld_n,
                     const int ns)
{
    const int y = get_global_id(1), z = get_global_id(2);
    const int KK = KH * KW, rows = Cin * KK;
    if (z >= rows * ns)
        return;
    const int n = z / rows, r = z - n * rows;
    const int oy = p0 / OW + y, row0 = oy * OW - p0; /* p of ox = 0 */
    const int ci = r / KK, k = r - ci * KK, ky = k / KW, kx = k - ky * KW;
    const int iy = oy * stride + ky - pad;
    const bool row_in = iy >= 0 && iy < H;
    __global const float *xr = x + x_off + ((n * Cin + ci) * H + (row_in ? iy : 0)) * W;
    __global float *c = col + col_off + r * ld_r + n * ld_n;
    const int ox_lo = max(0, -row0), ox_hi = min(OW, P - row0); /* the row's pixels inside [0, P) */
    /* the pixels whose tap lies inside the image, ix = ox*stride + kx - pad in [0, W): [a, b);
     * three loops, so that the middle one is a plain (at stride 1 contiguous) copy */
    const int off = kx - pad;
    const int a = row_in ? min(ox_hi, max(ox_lo, off >= 0 ? 0 : (-off + stride - 1) / stride)) : ox_hi;
    const int b = row_in ? max(a, min(ox_hi, W - 1 - off >= 0 ? (W - 1 - off) / stride + 1 : 0)) : ox_hi;
    const int id = (int)get_global_id(0), step = (int)get_global_size(0);
    __global float *cr = c + row0;
    for (int ox = ox_lo + id; ox < a; ox += step)
        cr[ox] = 0.0f;
    if (stride == 1 && step == 1) /* a loop the compiler can vectorize */
        for (int ox = a; ox < b; ox++)
            cr[ox] = xr[ox + off];
    else
        for (int ox = first_from(a, ox_lo + id, step); ox < b; ox += step)
            cr[ox] = xr[ox * stride + off];
    for (int ox = first_from(b, ox_lo + id, step); ox < ox_hi; ox += step)
        cr[ox] = 0.0f;
}

/* global (row items, H, Cin * ns); dx_off: sample 0 of the chunk. Dimension 0 runs along an
 * input row. */
__kernel void col2im_acc(__global const float *col, const int col_off, __global float *dx, const int dx_off,
                         const int Cin, const int H, const int W, const int OH, const int OW, const int KH,
                         const int KW, const int stride, const int pad, const int p0, const int P, const int ld_r,
                         const int ld_n, const int ns, const int accumulate)
{
    const int iy = get_global_id(1), z = get_global_id(2);
    if (iy >= H || z >= Cin * ns)
        return;
    const int n = z / Cin, ci = z - n * Cin;
    const int KK = KH * KW;
    const int id = (int)get_global_id(0), step = (int)get_global_size(0);
    __global float *d = dx + dx_off + (z * H + iy) * W;
    __global const float *cn = col + col_off + n * ld_n;
    if (accumulate) {
        /* dx += (the taps' sum, in tap order): an existing gradient gets one rounding */
        for (int ix = id; ix < W; ix += step) {
            float s = 0.0f;
            for (int ky = 0; ky < KH; ky++) {
                const int oy = tap_out(iy, pad, ky, stride, OH);
                if (oy < 0)
                    continue;
                for (int kx = 0; kx < KW; kx++) {
                    const int ox = tap_out(ix, pad, kx, stride, OW);
                    if (ox < 0)
                        continue;
                    const int q = oy * OW + ox - p0;
                    if (q >= 0 && q < P)
                        s += cn[(ci * KK + ky * KW + kx) * ld_r + q];
                }
            }
            d[ix] += s;
        }
        return;
    }
    /* a fresh gradient (clsynth_grad_for_write), contents undefined: zero, then tap after
     * tap a shifted add of its column row, at stride 1 contiguous (PoCL vectorizes it);
     * the same roundings as the sum above started from 0 */
    for (int ix = id; ix < W; ix += step)
        d[ix] = 0.0f;
    for (int ky = 0; ky < KH; ky++) {
        const int oy = tap_out(iy, pad, ky, stride, OH);
        if (oy < 0)
            continue;
        const int ox_lo = max(0, p0 - oy * OW), ox_hi = min(OW, p0 + P - oy * OW); /* the row's pixels in range */
        if (ox_lo >= ox_hi)
            continue;
        for (int kx = 0; kx < KW; kx++) {
            /* col element of output pixel ox of this row */
            __global const float *c = cn + (ci * KK + ky * KW + kx) * ld_r + oy * OW - p0;
            if (stride == 1) { /* ox = ix + pad - kx */
                const int off = pad - kx, lo = max(0, ox_lo - off), hi = min(W, ox_hi - off);
                for (int ix = first_from(lo, id, step); ix < hi; ix += step)
                    d[ix] += c[ix + off];
            } else {
                for (int ix = id; ix < W; ix += step) {
                    const int ox = tap_out(ix, pad, kx, stride, OW);
                    if (ox >= ox_lo && ox < ox_hi) /* no tap (-1) lies below ox_lo >= 0 */
                        d[ix] += c[ox];
                }
            }
        }
    }
}

/* global (D2, D1, D0) */
__kernel void swap01(__global const float *src, const int src_off, __global float *dst, const int dst_off,
                     const int D0, const int D1, const int D2, __global const float *bias, const int bias_off,
                     const int has_bias)
{
    const int p = get_global_id(0), j = get_global_id(1), i = get_global_id(2);
    if (p >= D2 || j >= D1 || i >= D0)
        return;
    float v = src[src_off + (i * D1 + j) * D2 + p];
    if (has_bias)
        v += bias[bias_off + i];
    dst[dst_off + (j * D0 + i) * D2 + p] = v;
}
