/* Resampling: nearest resize, bilinear 2x upsampling and resize, average and max pooling,
 * one-hot encoding. Every kernel but one_hot is 3-D over the elements it writes,
 * global (w, h, n*c) (launch default local size, no local memory): with a 1-D
 * index, PoCL computed the div/mod that recover (nc, h, w) per element.
 * Backward kernels are gather-form: each input element sums the output
 * gradients that depend on it (no atomics); results do not depend on the
 * schedule. A fresh gradient is stored (accumulate 0), an existing one added to (1).
 * Tunables: none.
 *
 * Memory traffic (x: input elements, y: output elements):
 *   resize_nearest_fwd   read y, write y          (reads x once per output)
 *   resize_nearest_bwd   read y (dy), read+write x (dx)
 *   bilinear2x_fwd       read 4y (cached), write y; bwd: read ~4x*4 dy (cached), rw x
 *   resize_bilinear_fwd  read 4y (cached), write y; bwd: read about
 *                        (2 + 2*OH/H) * (2 + 2*OW/W) dy per input (cached), rw x
 *   avgpool_fwd          read y*k*k (cached), write y; bwd: read dy over the windows, rw x
 *   maxpool_fwd          read y*k*k, write y; bwd: recomputes each window's argmax:
 *                        read ~k*k*ceil(k/s)^2 per input (cached), rw x (no index tensor kept)
 *   one_hot              read N*H*W labels, write N*num_channels*H*W */

/* ---- nearest: src = floor(dst * in / out) in integer arithmetic ---- */
__kernel void resize_nearest_fwd(__global const float *x, const int x_off, __global float *y, const int y_off,
                                 const int NC, const int H, const int W, const int OH, const int OW)
{
    const int ow = (int)get_global_id(0), oh = (int)get_global_id(1), nc = (int)get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC)
        return;
    const int i = (nc * OH + oh) * OW + ow;
    const int ih = oh * H / OH, iw = ow * W / OW;
    y[y_off + i] = x[x_off + (nc * H + ih) * W + iw];
}

/* Input row ih is the source of output rows [ceil(ih*OH/H), ceil((ih+1)*OH/H)). */
__kernel void resize_nearest_bwd(__global const float *dy, const int dy_off, __global float *dx, const int dx_off,
                                 const int NC, const int H, const int W, const int OH, const int OW, const int accumulate)
{
    const int iw = (int)get_global_id(0), ih = (int)get_global_id(1), nc = (int)get_global_id(2);
    if (iw >= W || ih >= H || nc >= NC)
        return;
    const int i = (nc * H + ih) * W + iw;
    const int oh0 = (ih * OH + H - 1) / H, oh1 = ((ih + 1) * OH + H - 1) / H;
    const int ow0 = (iw * OW + W - 1) / W, ow1 = ((iw + 1) * OW + W - 1) / W;
    float acc = 0.0f;
    for (int oh = oh0; oh < oh1; oh++)
        for (int ow = ow0; ow < ow1; ow++)
            acc += dy[dy_off + (nc * OH + oh) * OW + ow];
    dx[dx_off + i] = accumulate ? dx[dx_off + i] + acc : acc; /* a fresh dx is stored */
}

/* ---- bilinear 2x, align_corners = false (PyTorch): src = max((dst + 0.5) * 0.5 - 0.5, 0),
 * i0 = floor(src), i1 = min(i0 + 1, n - 1), weights (1 - frac, frac); exact in float ---- */
void bl_src(const int o, const int n, int *i0, int *i1, float *l0, float *l1)
{
    float s = ((float)o + 0.5f) * 0.5f - 0.5f;
    s = s < 0.0f ? 0.0f : s;
    const int a = (int)s;
    *i0 = a;
    *i1 = a < n - 1 ? a + 1 : a;
    *l1 = s - (float)a;
    *l0 = 1.0f - *l1;
}

__kernel void bilinear2x_fwd(__global const float *x, const int x_off, __global float *y, const int y_off,
                             const int NC, const int H, const int W)
{
    const int OH = 2 * H, OW = 2 * W;
    const int ow = (int)get_global_id(0), oh = (int)get_global_id(1), nc = (int)get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC)
        return;
    const int i = (nc * OH + oh) * OW + ow;
    int h0, h1, w0, w1;
    float a0, a1, b0, b1;
    bl_src(oh, H, &h0, &h1, &a0, &a1);
    bl_src(ow, W, &w0, &w1, &b0, &b1);
    __global const float *p = x + x_off + nc * H * W;
    y[y_off + i] = a0 * (b0 * p[h0 * W + w0] + b1 * p[h0 * W + w1]) +
                   a1 * (b0 * p[h1 * W + w0] + b1 * p[h1 * W + w1]);
}

/* Weight of input index in (size n) in output index o. */
float bl_weight(const int o, const int n, const int in)
{
    int i0, i1;
    float l0, l1;
    bl_src(o, n, &i0, &i1, &l0, &l1);
    return (i0 == in ? l0 : 0.0f) + (i1 == in ? l1 : 0.0f);
}

/* Only outputs 2i-1 .. 2i+2 read input i (see bl_src). */
__kernel void bilinear2x_bwd(__global const float *dy, const int dy_off, __global float *dx, const int dx_off,
                             const int NC, const int H, const int W, const int accumulate)
{
    const int OH = 2 * H, OW = 2 * W;
    const int iw = (int)get_global_id(0), ih = (int)get_global_id(1), nc = (int)get_global_id(2);
    if (iw >= W || ih >= H || nc >= NC)
        return;
    const int i = (nc * H + ih) * W + iw;
    __global const float *g = dy + dy_off + nc * OH * OW;
    float acc = 0.0f;
    for (int oh = max(2 * ih - 1, 0); oh <= min(2 * ih + 2, OH - 1); oh++) {
        const float wy = bl_weight(oh, H, ih);
        if (wy == 0.0f)
            continue;
        float row = 0.0f;
        for (int ow = max(2 * iw - 1, 0); ow <= min(2 * iw + 2, OW - 1); ow++)
            row += bl_weight(ow, W, iw) * g[oh * OW + ow];
        acc += wy * row;
    }
    dx[dx_off + i] = accumulate ? dx[dx_off + i] + acc : acc; /* a fresh dx is stored */
}

/* ---- bilinear resize to (OH, OW), align_corners = false, as PyTorch's CPU
 * kernel in float: scale = in / out, src = max(scale * (dst + 0.5) - 0.5, 0),
 * i0 = (int)src, i1 = min(i0 + 1, n - 1), l1 = src - i0, l0 = 1 - l1 ---- */
void rb_src(const int o, const int n, const float scale, int *i0, int *i1, float *l0, float *l1)
{
    float s = scale * ((float)o + 0.5f) - 0.5f;
    s = s < 0.0f ? 0.0f : s;
    const int a = (int)s;
    *i0 = a;
    *i1 = a < n - 1 ? a + 1 : a;
    *l1 = s - (float)a;
    *l0 = 1.0f - *l1;
}

float rb_weight(const int o, const int n, const float scale, const int in)
{
    int i0, i1;
    float l0, l1;
    rb_src(o, n, scale, &i0, &i1, &l0, &l1);
    return (i0 == in ? l0 : 0.0f) + (i1 == in ? l1 : 0.0f);
}

/* Outputs whose source index lies within one of input i: src in (i - 1, i + 1),
 * widened by one on each side against rounding; rb_weight decides exactly. */
void rb_range(const int i, const int n_out, const float scale, int *o0, int *o1)
{
    *o0 = max((int)floor(((float)i - 0.5f) / scale - 0.5f) - 1, 0);
    *o1 = min((int)ceil(((float)i + 1.5f) / scale - 0.5f) + 1, n_out - 1);
}

__kernel void resize_bilinear_fwd(__global const float *x, const int x_off, __global float *y, const int y_off,
                                  const int NC, const int H, const int W, const int OH, const int OW,
                                  const float scale_h, const float scale_w)
{
    const int ow = (int)get_global_id(0), oh = (int)get_global_id(1), nc = (int)get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC)
        return;
    const int i = (nc * OH + oh) * OW + ow;
    int h0, h1, w0, w1;
    float a0, a1, b0, b1;
    rb_src(oh, H, scale_h, &h0, &h1, &a0, &a1);
    rb_src(ow, W, scale_w, &w0, &w1, &b0, &b1);
    __global const float *p = x + x_off + nc * H * W;
    y[y_off + i] = a0 * (b0 * p[h0 * W + w0] + b1 * p[h0 * W + w1]) +
                   a1 * (b0 * p[h1 * W + w0] + b1 * p[h1 * W + w1]);
}

__kernel void resize_bilinear_bwd(__global const float *dy, const int dy_off, __global float *dx, const int dx_off,
                                  const int NC, const int H, const int W, const int OH, const int OW,
                                  const float scale_h, const float scale_w, const int accumulate)
{
    const int iw = (int)get_global_id(0), ih = (int)get_global_id(1), nc = (int)get_global_id(2);
    if (iw >= W || ih >= H || nc >= NC)
        return;
    const int i = (nc * H + ih) * W + iw;
    __global const float *g = dy + dy_off + nc * OH * OW;
    int oh0, oh1, ow0, ow1;
    rb_range(ih, OH, scale_h, &oh0, &oh1);
    rb_range(iw, OW, scale_w, &ow0, &ow1);
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++) {
        const float wy = rb_weight(oh, H, scale_h, ih);
        if (wy == 0.0f)
            continue;
        float row = 0.0f;
        for (int ow = ow0; ow <= ow1; ow++)
            row += rb_weight(ow, W, scale_w, iw) * g[oh * OW + ow];
        acc += wy * row;
    }
    dx[dx_off + i] = accumulate ? dx[dx_off + i] + acc : acc; /* a fresh dx is stored */
}

/* ---- average pooling k x k, stride s, zero pad p, count_include_pad = false ---- */
__kernel void avgpool_fwd(__global const float *x, const int x_off, __global float *y, const int y_off,
                          const int NC, const int H, const int W, const int OH, const int OW, const int K,
                          const int S, const int P)
{
    const int ow = (int)get_global_id(0), oh = (int)get_global_id(1), nc = (int)get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC)
        return;
    const int i = (nc * OH + oh) * OW + ow;
    const int hs = max(oh * S - P, 0), he = min(oh * S - P + K, H);
    const int ws = max(ow * S - P, 0), we = min(ow * S - P + K, W);
    __global const float *p = x + x_off + nc * H * W;
    float acc = 0.0f;
    for (int h = hs; h < he; h++)
        for (int w = ws; w < we; w++)
            acc += p[h * W + w];
    y[y_off + i] = acc / (float)((he - hs) * (we - ws));
}

/* Outputs whose window holds input (ih, iw): o*S - P <= i < o*S - P + K. */
__kernel void avgpool_bwd(__global const float *dy, const int dy_off, __global float *dx, const int dx_off,
                          const int NC, const int H, const int W, const int OH, const int OW, const int K,
                          const int S, const int P, const int accumulate)
{
    const int iw = (int)get_global_id(0), ih = (int)get_global_id(1), nc = (int)get_global_id(2);
    if (iw >= W || ih >= H || nc >= NC)
        return;
    const int i = (nc * H + ih) * W + iw;
    const int ah = ih + P - K + 1, aw = iw + P - K + 1;
    const int oh0 = ah <= 0 ? 0 : (ah + S - 1) / S, oh1 = min((ih + P) / S, OH - 1);
    const int ow0 = aw <= 0 ? 0 : (aw + S - 1) / S, ow1 = min((iw + P) / S, OW - 1);
    __global const float *g = dy + dy_off + nc * OH * OW;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++) {
        const int hs = max(oh * S - P, 0), he = min(oh * S - P + K, H);
        for (int ow = ow0; ow <= ow1; ow++) {
            const int ws = max(ow * S - P, 0), we = min(ow * S - P + K, W);
            acc += g[oh * OW + ow] / (float)((he - hs) * (we - ws));
        }
    }
    dx[dx_off + i] = accumulate ? dx[dx_off + i] + acc : acc; /* a fresh dx is stored */
}

/* ---- max pooling k x k, stride s, no padding. The argmax is the first
 * maximum in scan order (row-major in the window); a NaN wins over numbers
 * (first NaN), as PyTorch propagates NaN. ---- */
int mp_argmax(__global const float *p, const int W, const int h0, const int w0, const int K)
{
    int best = h0 * W + w0;
    float bv = p[best];
    for (int a = 0; a < K; a++)
        for (int b = 0; b < K; b++) {
            const int q = (h0 + a) * W + w0 + b;
            const float v = p[q];
            if ((v > bv) || (isnan(v) && !isnan(bv))) {
                bv = v;
                best = q;
            }
        }
    return best;
}

__kernel void maxpool_fwd(__global const float *x, const int x_off, __global float *y, const int y_off,
                          const int NC, const int H, const int W, const int OH, const int OW, const int K,
                          const int S)
{
    const int ow = (int)get_global_id(0), oh = (int)get_global_id(1), nc = (int)get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC)
        return;
    const int i = (nc * OH + oh) * OW + ow;
    __global const float *p = x + x_off + nc * H * W;
    y[y_off + i] = p[mp_argmax(p, W, oh * S, ow * S, K)];
}

__kernel void maxpool_bwd(__global const float *x, const int x_off, __global const float *dy, const int dy_off,
                          __global float *dx, const int dx_off, const int NC, const int H, const int W,
                          const int OH, const int OW, const int K, const int S, const int accumulate)
{
    const int iw = (int)get_global_id(0), ih = (int)get_global_id(1), nc = (int)get_global_id(2);
    if (iw >= W || ih >= H || nc >= NC)
        return;
    const int i = (nc * H + ih) * W + iw;
    const int ah = ih - K + 1, aw = iw - K + 1;
    const int oh0 = ah <= 0 ? 0 : (ah + S - 1) / S, oh1 = min(ih / S, OH - 1);
    const int ow0 = aw <= 0 ? 0 : (aw + S - 1) / S, ow1 = min(iw / S, OW - 1);
    __global const float *p = x + x_off + nc * H * W;
    __global const float *g = dy + dy_off + nc * OH * OW;
    const int self = ih * W + iw;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++)
            if (mp_argmax(p, W, oh * S, ow * S, K) == self)
                acc += g[oh * OW + ow];
    dx[dx_off + i] = accumulate ? dx[dx_off + i] + acc : acc; /* a fresh dx is stored */
}

/* ---- one-hot: labels (N,1,H,W) float ids -> (N,num_channels,H,W). A value
 * that is neither a class id in [0, num_classes) nor `dontcare` records the
 * smallest such pixel index in *bad (atomic_min on an int: deterministic). ---- */
__kernel void one_hot(__global const float *lab, const int lab_off, __global float *y, const int y_off,
                      __global int *bad, const int bad_off, const int N, const int HW, const int num_classes,
                      const int num_channels, const int dontcare, const int dontcare_channel)
{
    const int i = (int)get_global_id(0);
    if (i >= N * HW)
        return;
    const int n = i / HW, pix = i - n * HW;
    const float v = lab[lab_off + i];
    int ch = -1;
    if (v >= 0.0f && v < (float)num_classes && v == floor(v)) {
        ch = (int)v;
    } else if (v == (float)dontcare) {
        ch = dontcare_channel;
    } else {
        atomic_min(bad + bad_off, i);
    }
    __global float *o = y + y_off + n * num_channels * HW + pix;
    for (int c = 0; c < num_channels; c++)
        o[c * HW] = c == ch ? 1.0f : 0.0f;
}
