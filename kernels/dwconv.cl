/* Conditional (per-sample, per-channel, per-pixel) depthwise 3x3 convolution.
 *
 *   x (N,C,H,W), k (N,9C,H,W) with channel 9c + 3i + j holding tap (i, j):
 *   y(n,c,h,w)  = sum_{i,j} k(n,9c+3i+j,h,w) * x(n,c,h+i-1,w+j-1)            zero padding 1
 *   dx(n,c,h,w) = sum_{i,j} dy(n,c,h-i+1,w-j+1) * k(n,9c+3i+j,h-i+1,w-j+1)   (gather form)
 *   dk(n,9c+3i+j,h,w) = dy(n,c,h,w) * x(n,c,h+i-1,w+j-1)
 *
 * Launch (both kernels): 3-D NDRange; dimension 2 = n*C + c with local size 1
 * in it; dimensions 0/1 = one work-group per TILE_W x TILE_H output tile:
 * global (tiles_x * lx, tiles_y * ly, N*C). The work-group loads the
 * (TILE_H+2) x (TILE_W+2) input tile (1-pixel halo, zeros outside the image)
 * into local memory, then work-item (l0, l1) computes the VW pixels
 * (l0*VW .. l0*VW+VW-1) of tile row l1, with vector loads/stores of k, y (and
 * dk, dx) where the whole segment is inside the image (also at the image's
 * left and right edge) and a scalar path for a segment that crosses the
 * right edge (W not a multiple of VW). The tile is loaded the same way: each
 * work-item the VW input columns above its pixels, with one vector load.
 * The local size must be exactly (TILE_W/VW, TILE_H, 1)
 * (reqd_work_group_size): the host derives legal tunables from the device
 * limits.
 * Every output is summed over the taps in the fixed order (0,0), (0,1), ...,
 * (2,2), in the vector and the scalar path alike, each step a separate
 * multiply and add (FP_CONTRACT OFF), so results do not depend on the tile, VW
 * or the local size on any implementation: left to the compiler, a*b+c may be
 * fused in one path and not in the other (Intel's CPU runtime did so in
 * kernels/conv_fwd.cl; see kernels/conv_bwd.cl why not fma()).
 *
 * Tunables (-D, all required: values come from the descriptors in
 * clcore/ops_dwconv_kdef.c and the tuning database, never from this file):
 *   VW      pixels per work-item along w, vector width: 1, 2, 4, 8, 16
 *   TILE_W  tile width, a multiple of VW, <= 256
 *   TILE_H  tile height, 1..256
 *   work-group (TILE_W/VW) * TILE_H items, which must fit the device's limits;
 *   local memory: dwconv_fwd (TILE_H+2)*(TILE_W+2)*4 bytes, dwconv_bwd twice that.
 *
 * Memory traffic per output pixel, in floats (halo factor
 * h = (TILE_W+2)(TILE_H+2)/(TILE_W*TILE_H), 1.33 at 32x8, 1.28 at 64x8):
 *   dwconv_fwd: read x h, read k 9, write y 1                            ~11.3
 *   dwconv_bwd: read dy h, x h (only for dk), k 9 (only for dx; each element
 *               once, at shifted positions), read+write dx 2 and dk 18
 *               (when accumulated; a fresh dx / dk is only written: 21.7) ~31.7
 * No unfolded (9x) copy of x is ever materialized. */
#pragma OPENCL FP_CONTRACT OFF
#if !defined(VW) || !defined(TILE_W) || !defined(TILE_H)
#error "VW, TILE_W and TILE_H must be set: build through the kernel descriptor (clcore/ops_dwconv_kdef.c)"
#endif
#if TILE_W % VW != 0
#error "TILE_W must be a multiple of VW"
#endif

#define TPW (TILE_W + 2) /* tile pitch with halo */
#define TPH (TILE_H + 2)
#define NV (TILE_W / VW) /* row segments per tile row */

#define DW_CAT_(a, b) a##b
#define DW_CAT(a, b) DW_CAT_(a, b)
#if VW == 1
#define floatV float
#define LOADV(p) (*(p))
#define STOREV(v, p) (*(p) = (v))
#else
#define floatV DW_CAT(float, VW)
#define LOADV(p) DW_CAT(vload, VW)(0, (p))
#define STOREV(v, p) DW_CAT(vstore, VW)((v), 0, (p))
#endif
/* The VW floats p[-1 .. VW-2] (LOADV_L1) or p[1 .. VW] (LOADV_R1) with the
 * element outside the row, p[-1] or p[VW], replaced by -0.0f and not read. */
#if VW == 1
#define LOADV_L1(p) (-0.0f)
#define LOADV_R1(p) (-0.0f)
#elif VW == 2
#define LOADV_L1(p) ((floatV)(-0.0f, (p)[0]))
#define LOADV_R1(p) ((floatV)((p)[1], -0.0f))
#elif VW == 4
#define LOADV_L1(p) ((floatV)(-0.0f, vload2(0, (p)), (p)[2]))
#define LOADV_R1(p) ((floatV)(vload2(0, (p) + 1), (p)[3], -0.0f))
#elif VW == 8
#define LOADV_L1(p) ((floatV)(-0.0f, vload4(0, (p)), vload2(0, (p) + 4), (p)[6]))
#define LOADV_R1(p) ((floatV)(vload4(0, (p) + 1), vload2(0, (p) + 5), (p)[7], -0.0f))
#elif VW == 16
#define LOADV_L1(p) ((floatV)(-0.0f, vload8(0, (p)), vload4(0, (p) + 8), vload2(0, (p) + 12), (p)[14]))
#define LOADV_R1(p) ((floatV)(vload8(0, (p) + 1), vload4(0, (p) + 9), vload2(0, (p) + 13), (p)[15], -0.0f))
#else
#error "VW must be 1, 2, 4, 8 or 16"
#endif

/* Loads the haloed tile of plane p (H x W) whose top-left output pixel is
 * (h0, w0): tile row r, column c holds p(h0 + r - 1, w0 + c - 1), zero outside
 * the image. Work-item (q, ty) loads tile rows ty and (ty < 2) TILE_H + ty:
 * the VW columns 1 + q*VW .. above its own pixels (one vector load where they
 * lie inside the image) and, for q = 0 / NV - 1, the halo column 0 / TPW - 1. */
void dw_load_tile(__local float *t, __global const float *p, const int h0, const int w0, const int H,
                  const int W)
{
    const int q = (int)get_local_id(0), ty = (int)get_local_id(1);
    const int gw = w0 + q * VW;
    for (int r = ty; r < TPH; r += TILE_H) {
        const int gh = h0 + r - 1;
        __local float *row = t + r * TPW;
        if (gh < 0 || gh >= H) {
            STOREV((floatV)(0.0f), row + 1 + q * VW);
            if (q == 0)
                row[0] = 0.0f;
            if (q == NV - 1)
                row[TPW - 1] = 0.0f;
            continue;
        }
        __global const float *src = p + gh * W;
        if (gw + VW <= W) {
            STOREV(LOADV(src + gw), row + 1 + q * VW);
        } else {
            for (int e = 0; e < VW; e++)
                row[1 + q * VW + e] = gw + e < W ? src[gw + e] : 0.0f;
        }
        if (q == 0)
            row[0] = w0 >= 1 ? src[w0 - 1] : 0.0f;
        if (q == NV - 1)
            row[TPW - 1] = w0 + TILE_W < W ? src[w0 + TILE_W] : 0.0f;
    }
}

__kernel __attribute__((reqd_work_group_size(NV, TILE_H, 1)))
void dwconv_fwd(__global const float *x, const int x_off, __global const float *k, const int k_off,
                __global float *y, const int y_off, const int NC, const int C, const int H, const int W)
{
    __local float tile[TPH * TPW];
    /* no return before the barrier: PoCL 3.1 miscompiled kernels with one
     * (out-of-bounds writes after the barrier); nc < NC always holds with
     * the host's launch (global size N*C, local size 1 in dimension 2) */
    const int nc = min((int)get_global_id(2), NC - 1);
    const int HW = H * W;
    const int h0 = (int)get_group_id(1) * TILE_H, w0 = (int)get_group_id(0) * TILE_W;
    const int n = nc / C, c = nc - n * C;
    dw_load_tile(tile, x + x_off + nc * HW, h0, w0, H, W);
    barrier(CLK_LOCAL_MEM_FENCE);
    const int ty = (int)get_local_id(1), q = (int)get_local_id(0);
    const int gh = h0 + ty, gw = w0 + q * VW;
    if (gh >= H || gw >= W)
        return;
    __global const float *kp = k + k_off + (n * 9 * C + 9 * c) * HW;
    __global float *yp = y + y_off + nc * HW;
    const int p = gh * W + gw;
    __local const float *t = tile + ty * TPW + q * VW;
    if (gw + VW <= W) {
        floatV acc = (floatV)(0.0f);
        acc += LOADV(kp + 0 * HW + p) * LOADV(t);
        acc += LOADV(kp + 1 * HW + p) * LOADV(t + 1);
        acc += LOADV(kp + 2 * HW + p) * LOADV(t + 2);
        acc += LOADV(kp + 3 * HW + p) * LOADV(t + TPW);
        acc += LOADV(kp + 4 * HW + p) * LOADV(t + TPW + 1);
        acc += LOADV(kp + 5 * HW + p) * LOADV(t + TPW + 2);
        acc += LOADV(kp + 6 * HW + p) * LOADV(t + 2 * TPW);
        acc += LOADV(kp + 7 * HW + p) * LOADV(t + 2 * TPW + 1);
        acc += LOADV(kp + 8 * HW + p) * LOADV(t + 2 * TPW + 2);
        STOREV(acc, yp + p);
    } else {
        for (int r = 0; r < W - gw; r++) {
            float acc = 0.0f;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    acc += kp[(3 * i + j) * HW + p + r] * t[i * TPW + j + r];
            yp[p + r] = acc;
        }
    }
}

/* need_dx / need_dk select the gradients: 0 not needed (any buffer may be passed:
 * it is neither read nor written), 1 accumulated (+=), 2 stored (a fresh gradient,
 * clsynth_grad_for_write: written as 0 + value, bit for bit what adding to a
 * zero-filled one gave, without reading it). */
__kernel __attribute__((reqd_work_group_size(NV, TILE_H, 1)))
void dwconv_bwd(__global const float *x, const int x_off, __global const float *k, const int k_off,
                __global const float *dy, const int dy_off, __global float *dx, const int dx_off,
                __global float *dk, const int dk_off, const int need_dx, const int need_dk, const int NC,
                const int C, const int H, const int W)
{
    __local float tx_[TPH * TPW];
    __local float tdy[TPH * TPW];
    const int nc = min((int)get_global_id(2), NC - 1); /* see dwconv_fwd */
    const int HW = H * W;
    const int h0 = (int)get_group_id(1) * TILE_H, w0 = (int)get_group_id(0) * TILE_W;
    const int n = nc / C, c = nc - n * C;
    if (need_dk)
        dw_load_tile(tx_, x + x_off + nc * HW, h0, w0, H, W);
    dw_load_tile(tdy, dy + dy_off + nc * HW, h0, w0, H, W);
    barrier(CLK_LOCAL_MEM_FENCE);
    const int ty = (int)get_local_id(1), q = (int)get_local_id(0);
    const int gh = h0 + ty, gw = w0 + q * VW;
    if (gh >= H || gw >= W)
        return;
    const int kbase = (n * 9 * C + 9 * c) * HW;
    __global const float *kp = k + k_off + kbase;
    __global float *dkp = dk + dk_off + kbase;
    __global float *dxp = dx + dx_off + nc * HW;
    const int p = gh * W + gw;
    if (need_dx) {
        /* output pixel (gh+1-i, gw+r+1-j) used x(gh, gw+r) through its tap (i, j);
         * dy is zero in the tile's halo outside the image, k must not be read there */
        __local const float *d = tdy + ty * TPW + q * VW;
        if (gw + VW <= W) {
            /* At the image's left (right) edge the first (last) lane of tap j = 2
             * (j = 0) lies outside the image: k is not read there but taken as
             * -0.0f, and dy there is the tile's halo, +0.0f, so the lane adds
             * +0 * -0 = -0, which leaves every float as it was (x + -0 == x,
             * also for x = -0): the same bits as skipping the tap, as the
             * scalar path does. */
            const bool left = gw == 0, right = gw + VW == W;
            floatV acc = (floatV)(0.0f);
            for (int i = 0; i < 3; i++) {
                const int oh = gh + 1 - i;
                if (oh < 0 || oh >= H)
                    continue;
                __local const float *dr = d + (2 - i) * TPW;
                __global const float *kr = kp + 3 * i * HW + oh * W + gw;
                acc += LOADV(dr + 2) * (right ? LOADV_R1(kr) : LOADV(kr + 1));
                acc += LOADV(dr + 1) * LOADV(kr + HW);
                acc += LOADV(dr) * (left ? LOADV_L1(kr + 2 * HW) : LOADV(kr + 2 * HW - 1));
            }
            STOREV((need_dx == 1 ? LOADV(dxp + p) : (floatV)(0.0f)) + acc, dxp + p);
        } else {
            const int rn = min(VW, W - gw);
            for (int r = 0; r < rn; r++) {
                float acc = 0.0f;
                for (int i = 0; i < 3; i++) {
                    const int oh = gh + 1 - i;
                    if (oh < 0 || oh >= H)
                        continue;
                    for (int j = 0; j < 3; j++) {
                        const int ow = gw + r + 1 - j;
                        if (ow >= 0 && ow < W)
                            acc += d[(2 - i) * TPW + 2 - j + r] * kp[(3 * i + j) * HW + oh * W + ow];
                    }
                }
                dxp[p + r] = (need_dx == 1 ? dxp[p + r] : 0.0f) + acc;
            }
        }
    }
    if (need_dk) {
        __local const float *t = tx_ + ty * TPW + q * VW;
        __local const float *d = tdy + (ty + 1) * TPW + q * VW + 1;
        if (gw + VW <= W) {
            const floatV g = LOADV(d);
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                    __global float *o = dkp + (3 * i + j) * HW + p;
                    STOREV((need_dk == 1 ? LOADV(o) : (floatV)(0.0f)) + g * LOADV(t + i * TPW + j), o);
                }
        } else {
            for (int r = 0; r < W - gw; r++)
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                    {
                        __global float *o = dkp + (3 * i + j) * HW + p + r;
                        *o = (need_dk == 1 ? *o : 0.0f) + d[r] * t[i * TPW + j + r];
                    }
        }
    }
}
