/* Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (NCHW, zero padding): each 2x2
 * output tile is Y = A^T [ sum_ci (G g G^T) .* (B^T d B) ] A, d the 4x4 input patch
 * at (2*ty - pad, 2*tx - pad). The sum over ci is 16 GEMMs (one per position xi of the
 * 4x4 transform), run by igemm_batched of kernels/conv_igemm.cl between the
 * transforms below (clcore/ops_conv_winograd.c):
 *
 *   wino_weight:  U[xi] (Co, Ci) = G g G^T, g = w(co, ci) (flip 0), or for the backward
 *                 data's transposed conv g = w(ci, co) rotated by 180 degrees (flip 1).
 *   wino_input:   V[xi] (Ci, P) = B^T d B for the P tiles [p0, p0 + P) of the batch
 *                 (tile t = (nb*TH + ty)*TW + tx, TH = ceil(OH/2), TW = ceil(OW/2)).
 *   wino_output:  Y = A^T M A of M[xi] (Co, P), cropped to OH x OW, then the fused
 *                 epilogue (u = Y + bias, z = u * gate, act(z) + residual; as
 *                 kernels/conv_igemm.cl) or, for the backward data, out += Y.
 *
 *   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0;
 *   0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1]. Accuracy: the transforms add up to 4 inputs
 *   and 4 products per output, so the rounding error is a few times the direct sum's
 *   (measured in tests/test_conv_igemm.c and platforms.md).
 *
 * Tunables: none here (the GEMM's are igemm_batched's, descriptor "conv_winograd");
 * 1-D and 2-D launches with the launch helper's local size.
 * Memory traffic: wino_input reads the input about (4/2)^2 = 4 times through the cache and
 * writes 16*Ci*P floats (4x the input); the GEMMs read them and write 16*Co*P; wino_output
 * reads those and writes the output once (plus gate, residual, u). */
#pragma OPENCL FP_CONTRACT OFF

/* global (Co * Ci) */
__kernel void wino_weight(__global const float *w, const int w_off, __global float *U, const int Co, const int Ci,
                          const int flip)
{
    const int i = get_global_id(0);
    if (i >= Co * Ci)
        return;
    const int co = i / Ci, ci = i - co * Ci;
    float g[9], t[12];
    for (int k = 0; k < 9; k++)
        g[k] = flip ? w[w_off + (ci * Co + co) * 9 + 8 - k] : w[w_off + (co * Ci + ci) * 9 + k];
    for (int j = 0; j < 3; j++) { /* t (4x3) = G g */
        t[0 * 3 + j] = g[j];
        t[1 * 3 + j] = (g[j] + g[3 + j] + g[6 + j]) * 0.5f;
        t[2 * 3 + j] = (g[j] - g[3 + j] + g[6 + j]) * 0.5f;
        t[3 * 3 + j] = g[6 + j];
    }
    const int s = Co * Ci;
    for (int r = 0; r < 4; r++) { /* U (4x4) = t G^T */
        const float a = t[r * 3], b = t[r * 3 + 1], c = t[r * 3 + 2];
        U[(r * 4 + 0) * s + i] = a;
        U[(r * 4 + 1) * s + i] = (a + b + c) * 0.5f;
        U[(r * 4 + 2) * s + i] = (a - b + c) * 0.5f;
        U[(r * 4 + 3) * s + i] = c;
    }
}

/* global (P, Ci): V[xi][ci][p] of tile p0 + p */
__kernel void wino_input(__global const float *x, const int x_off, __global float *V, const int Ci, const int H,
                         const int W, const int TH, const int TW, const int pad, const int p0, const int P)
{
    const int p = get_global_id(0), ci = get_global_id(1);
    if (p >= P || ci >= Ci)
        return;
    const int tile = p0 + p, nb = tile / (TH * TW), t = tile - nb * TH * TW, ty = t / TW, tx = t - ty * TW;
    const int y0 = 2 * ty - pad, x0 = 2 * tx - pad;
    __global const float *xc = x + x_off + (nb * Ci + ci) * H * W;
    float d[16], b[16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            const int iy = y0 + i, ix = x0 + j;
            d[i * 4 + j] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xc[iy * W + ix] : 0.0f;
        }
    for (int j = 0; j < 4; j++) { /* b = B^T d */
        b[0 * 4 + j] = d[0 * 4 + j] - d[2 * 4 + j];
        b[1 * 4 + j] = d[1 * 4 + j] + d[2 * 4 + j];
        b[2 * 4 + j] = d[2 * 4 + j] - d[1 * 4 + j];
        b[3 * 4 + j] = d[1 * 4 + j] - d[3 * 4 + j];
    }
    const int s = Ci * P, o = ci * P + p;
    for (int r = 0; r < 4; r++) { /* V = b B */
        const float a0 = b[r * 4], a1 = b[r * 4 + 1], a2 = b[r * 4 + 2], a3 = b[r * 4 + 3];
        V[(r * 4 + 0) * s + o] = a0 - a2;
        V[(r * 4 + 1) * s + o] = a1 + a2;
        V[(r * 4 + 2) * s + o] = a2 - a1;
        V[(r * 4 + 3) * s + o] = a1 - a3;
    }
}

/* Same formulas as kernels/elementwise.cl (unary_f). */
float wino_act(const int act, const float z, const float slope)
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

#define EPI_BIAS 1
#define EPI_GATE 2
#define EPI_RES 4
#define EPI_SAVE_U 8
#define EPI_ACCUMULATE 16 /* out += Y, nothing else */

/* global (P, Co); out, gate, res, u (N, Co, OH, OW) */
__kernel void wino_output(__global const float *Mm, __global const float *bias, const int b_off,
                          __global const float *gate, const int g_off, __global const float *res, const int r_off,
                          __global float *out, const int o_off, __global float *u, const int u_off, const int Co,
                          const int OH, const int OW, const int TH, const int TW, const int p0, const int P,
                          const int epi, const int act, const float slope)
{
    const int p = get_global_id(0), co = get_global_id(1);
    if (p >= P || co >= Co)
        return;
    const int tile = p0 + p, nb = tile / (TH * TW), t = tile - nb * TH * TW, ty = t / TW, tx = t - ty * TW;
    const int s = Co * P, o = co * P + p;
    float m[16], a[8];
    for (int k = 0; k < 16; k++)
        m[k] = Mm[k * s + o];
    for (int j = 0; j < 4; j++) { /* a (2x4) = A^T m */
        a[j] = m[j] + m[4 + j] + m[8 + j];
        a[4 + j] = m[4 + j] - m[8 + j] - m[12 + j];
    }
    const float bv = (epi & EPI_BIAS) ? bias[b_off + co] : 0.0f;
    for (int i = 0; i < 2; i++) {
        const int oy = 2 * ty + i;
        if (oy >= OH)
            break;
        const float r0 = a[i * 4], r1 = a[i * 4 + 1], r2 = a[i * 4 + 2], r3 = a[i * 4 + 3];
        const float yv[2] = { r0 + r1 + r2, r1 - r2 - r3 }; /* Y = a A */
        for (int j = 0; j < 2; j++) {
            const int ox = 2 * tx + j;
            if (ox >= OW)
                break;
            const int idx = ((nb * Co + co) * OH + oy) * OW + ox;
            if (epi & EPI_ACCUMULATE) {
                out[o_off + idx] += yv[j];
                continue;
            }
            float z = (epi & EPI_BIAS) ? yv[j] + bv : yv[j];
            if (epi & EPI_SAVE_U)
                u[u_off + idx] = z;
            if (epi & EPI_GATE)
                z = z * gate[g_off + idx];
            z = wino_act(act, z, slope);
            if (epi & EPI_RES)
                z = z + res[r_off + idx];
            out[o_off + idx] = z;
        }
    }
}
