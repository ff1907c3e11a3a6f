/* Elementwise ops (clcore/ops_elementwise.c). One work-item per output element,
 * 1-D launches with the launch helper's default local size.
 *
 *   ew_binary        y = a op b with broadcasting (op 0 add, 1 sub, 2 mul). Output
 *                    (N,C,H,W); a and b are read through element strides that are 0
 *                    in broadcast dims. Traffic: 12 bytes per output (less when an
 *                    input is broadcast and cached).
 *   ew_binary_same   same without index arithmetic when a, b, y have one shape.
 *   ew_grad_full     backward into an input of the output's shape:
 *                    op 0: gx += sign * g;  op 1: gx += g * other(broadcast).  12-16 B/elt
 *   ew_grad_pair     both inputs' gradients of a binary op whose a, b and y have one
 *                    shape, in one launch, with ew_grad_full's values.  16-24 B/elt
 *   ew_unary         y = f(x, p): 0 scale, 1 add scalar, 2 relu, 3 leaky relu,
 *                    4 tanh, 5 sigmoid, 6 exp.  8 B/elt
 *   ew_unary_backward gx (=|+=) gy * f'(x) (tanh, sigmoid, exp use y).  16 B/elt
 *   ew_copy_channels dst[n, dc0 + c] (=|+=) src[n, sc0 + c] for c < count: a slice's
 *                    gradient.  8 (12 when accumulating) B/elt
 *   ew_copy_channel_runs  up to 5 runs of channels between one whole tensor and
 *                    its parts in one launch: gather (concat: whole[n, s_i + c] =
 *                    part_i[n, c]) or scatter (split, concat's gradient: part_i[n, c]
 *                    (=|+=) whole[n, s_i + c]).  8 (12) B/elt
 *
 * Tunables: none (-D); local size = launch default (tunable by the launch helper only).
 * FP_CONTRACT is off: 1 - y*y and the like round as written on every device, so the
 * fused conv epilogue (kernels/conv_epilogue.cl, conv_igemm.cl) equals these ops exactly.
 */
#pragma OPENCL FP_CONTRACT OFF

/* Offset of output element i = ((n*C + c)*H + h)*W + w in a tensor with element
 * strides (sn, sc, sh, sw) (0 in broadcast dims). */
int bcast_off(const int i, const int C, const int H, const int W, const int sn, const int sc, const int sh,
              const int sw)
{
    const int w = i % W;
    int t = i / W;
    const int h = t % H;
    t /= H;
    const int c = t % C;
    const int n = t / C;
    return n * sn + c * sc + h * sh + w * sw;
}

float binop(const int op, const float a, const float b)
{
    return op == 0 ? a + b : (op == 1 ? a - b : a * b);
}

__kernel void ew_binary(__global const float *a, const int a_off, __global const float *b, const int b_off,
                        __global float *y, const int y_off, const int op, const int total, const int C,
                        const int H, const int W, const int an, const int ac, const int ah, const int aw,
                        const int bn, const int bc, const int bh, const int bw)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    const int w = i % W;
    int t = i / W;
    const int h = t % H;
    t /= H;
    const int c = t % C;
    const int n = t / C;
    const float av = a[a_off + n * an + c * ac + h * ah + w * aw];
    const float bv = b[b_off + n * bn + c * bc + h * bh + w * bw];
    y[y_off + i] = binop(op, av, bv);
}

__kernel void ew_binary_same(__global const float *a, const int a_off, __global const float *b,
                             const int b_off, __global float *y, const int y_off, const int op,
                             const int total)
{
    const int i = get_global_id(0);
    if (i < total)
        y[y_off + i] = binop(op, a[a_off + i], b[b_off + i]);
}

__kernel void ew_grad_full(__global float *gx, const int gx_off, __global const float *g, const int g_off,
                           __global const float *other, const int o_off, const int op, const float sign,
                           const int total, const int C, const int H, const int W, const int on,
                           const int oc, const int oh, const int ow, const int accumulate)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    const float v = op == 0 ? sign * g[g_off + i] : g[g_off + i] * other[o_off + bcast_off(i, C, H, W, on, oc, oh, ow)];
    gx[gx_off + i] = (accumulate ? gx[gx_off + i] : 0.0f) + v;
}

/* ga (+)= g (mul: g * b), then gb (+)= sign_b * g (mul: g * a), each stored
 * where its gradient is fresh (acc 0): an input given twice (a + a, a * a)
 * is stored, then added to, as two ew_grad_full launches would. */
__kernel void ew_grad_pair(__global float *ga, const int ga_off, const int acc_a, __global float *gb,
                           const int gb_off, const int acc_b, __global const float *g, const int g_off,
                           __global const float *a, const int a_off, __global const float *b, const int b_off,
                           const int mul, const float sign_b, const int total)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    const float gv = g[g_off + i];
    const float va = mul ? gv * b[b_off + i] : 1.0f * gv;
    ga[ga_off + i] = (acc_a ? ga[ga_off + i] : 0.0f) + va;
    const float vb = mul ? gv * a[a_off + i] : sign_b * gv;
    gb[gb_off + i] = (acc_b ? gb[gb_off + i] : 0.0f) + vb;
}

float unary_f(const int op, const float x, const float p)
{
    switch (op) {
    case 0:
        return x * p;
    case 1:
        return x + p;
    case 2:
        return x > 0.0f ? x : 0.0f;
    case 3:
        return x > 0.0f ? x : x * p;
    case 4:
        return tanh(x);
    case 5:
        return 1.0f / (1.0f + exp(-x));
    default:
        return exp(x);
    }
}

float unary_df(const int op, const float x, const float y, const float p)
{
    switch (op) {
    case 0:
        return p;
    case 1:
        return 1.0f;
    case 2:
        return x > 0.0f ? 1.0f : 0.0f;
    case 3:
        return x > 0.0f ? 1.0f : p;
    case 4:
        return 1.0f - y * y;
    case 5:
        return y * (1.0f - y);
    default:
        return y;
    }
}

__kernel void ew_unary(__global const float *x, const int x_off, __global float *y, const int y_off,
                       const int op, const float p, const int total)
{
    const int i = get_global_id(0);
    if (i < total)
        y[y_off + i] = unary_f(op, x[x_off + i], p);
}

__kernel void ew_unary_backward(__global float *gx, const int gx_off, __global const float *gy,
                                const int gy_off, __global const float *x, const int x_off,
                                __global const float *y, const int y_off, const int op, const float p,
                                const int total, const int accumulate)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    const float g = gy[gy_off + i] * unary_df(op, x[x_off + i], y[y_off + i], p);
    gx[gx_off + i] = (accumulate ? gx[gx_off + i] : 0.0f) + g; /* 0 + g: a -0 stored as +0, as when added */
}

/* global (HW, count, N): no index divisions (PoCL computes them per element, which
 * made this copy 4x slower than its memory traffic at 1-D) */
__kernel void ew_copy_channels(__global const float *src, const int src_off, const int src_c,
                               const int src_c0, __global float *dst, const int dst_off, const int dst_c,
                               const int dst_c0, const int count, const int HW, const int N,
                               const int accumulate)
{
    const int hw = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    if (hw >= HW || c >= count || n >= N)
        return;
    const float v = src[src_off + (n * src_c + src_c0 + c) * HW + hw];
    const int d = dst_off + (n * dst_c + dst_c0 + c) * HW + hw;
    if (accumulate)
        dst[d] += v;
    else
        dst[d] = v;
}

/* global (HW, Cw, N): channel c of the whole tensor belongs to at most one run
 * i (s_i <= c < s_i + c_i; runs do not overlap; a run of c_i = 0 is unused);
 * channels of no run are left alone. */
#define EW_RUN_ARGS(i) __global float *p##i, const int p##i##_off, const int s##i, const int c##i, const int acc##i
#define EW_RUN_PICK(i)                                                                                         \
    if (c >= s##i && c < s##i + c##i) {                                                                        \
        p = p##i + p##i##_off;                                                                                 \
        start = s##i;                                                                                          \
        cp = c##i;                                                                                             \
        acc = acc##i;                                                                                          \
    }
__kernel void ew_copy_channel_runs(__global float *whole, const int whole_off, const int Cw, const int HW,
                                   const int N, const int scatter, EW_RUN_ARGS(0), EW_RUN_ARGS(1),
                                   EW_RUN_ARGS(2), EW_RUN_ARGS(3), EW_RUN_ARGS(4))
{
    const int hw = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    if (hw >= HW || c >= Cw || n >= N)
        return;
    __global float *p = 0;
    int start = 0, cp = 0, acc = 0;
    EW_RUN_PICK(0)
    else EW_RUN_PICK(1)
    else EW_RUN_PICK(2)
    else EW_RUN_PICK(3)
    else EW_RUN_PICK(4)
    else return;
    const int w = whole_off + (n * Cw + c) * HW + hw;
    const int q = (n * cp + c - start) * HW + hw;
    if (!scatter)
        whole[w] = p[q];
    else if (acc)
        p[q] += whole[w];
    else
        p[q] = whole[w];
}
