/* Plain-C references for the resampling ops, scatter form for the gradients
 * (the kernels gather). */
#include "ref_resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double *zeros(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    if (!p)
        abort();
    return p;
}

static void store(const double *a, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)a[i];
}

void ref_resize_nearest(const float *x, float *y, int NC, int H, int W, int OH, int OW)
{
    for (int p = 0; p < NC; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int ih = (int)((long long)oh * H / OH), iw = (int)((long long)ow * W / OW);
                y[((size_t)p * OH + oh) * OW + ow] = x[((size_t)p * H + ih) * W + iw];
            }
}

void ref_resize_nearest_backward(const float *dy, float *dx, int NC, int H, int W, int OH, int OW)
{
    size_t n = (size_t)NC * H * W;
    double *acc = zeros(n);
    for (int p = 0; p < NC; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int ih = (int)((long long)oh * H / OH), iw = (int)((long long)ow * W / OW);
                acc[((size_t)p * H + ih) * W + iw] += dy[((size_t)p * OH + oh) * OW + ow];
            }
    store(acc, dx, n);
    free(acc);
}

/* PyTorch area_pixel_compute_source_index (align_corners = false) + clamping. */
static void bl(int o, int n, int *i0, int *i1, double *l0, double *l1)
{
    double s = 0.5 * (o + 0.5) - 0.5;
    if (s < 0)
        s = 0;
    *i0 = (int)floor(s);
    *i1 = *i0 < n - 1 ? *i0 + 1 : *i0;
    *l1 = s - *i0;
    *l0 = 1.0 - *l1;
}

void ref_upsample_bilinear2x(const float *x, float *y, int NC, int H, int W)
{
    int OH = 2 * H, OW = 2 * W;
    for (int p = 0; p < NC; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                double a0, a1, b0, b1;
                bl(oh, H, &h0, &h1, &a0, &a1);
                bl(ow, W, &w0, &w1, &b0, &b1);
                const float *q = x + (size_t)p * H * W;
                y[((size_t)p * OH + oh) * OW + ow] =
                    (float)(a0 * (b0 * q[h0 * W + w0] + b1 * q[h0 * W + w1]) +
                            a1 * (b0 * q[h1 * W + w0] + b1 * q[h1 * W + w1]));
            }
}

void ref_upsample_bilinear2x_backward(const float *dy, float *dx, int NC, int H, int W)
{
    int OH = 2 * H, OW = 2 * W;
    size_t n = (size_t)NC * H * W;
    double *acc = zeros(n);
    for (int p = 0; p < NC; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                double a0, a1, b0, b1;
                bl(oh, H, &h0, &h1, &a0, &a1);
                bl(ow, W, &w0, &w1, &b0, &b1);
                double g = dy[((size_t)p * OH + oh) * OW + ow];
                double *q = acc + (size_t)p * H * W;
                q[h0 * W + w0] += g * a0 * b0;
                q[h0 * W + w1] += g * a0 * b1;
                q[h1 * W + w0] += g * a1 * b0;
                q[h1 * W + w1] += g * a1 * b1;
            }
    store(acc, dx, n);
    free(acc);
}

/* PyTorch's source index for a float scale (compute_source_index_and_lambda). */
static void rb(int o, int n, float scale, int *i0, int *i1, double *l0, double *l1)
{
    float s = scale * ((float)o + 0.5f) - 0.5f;
    if (s < 0)
        s = 0;
    *i0 = (int)s;
    *i1 = *i0 < n - 1 ? *i0 + 1 : *i0;
    *l1 = (double)(s - (float)*i0);
    *l0 = 1.0 - *l1;
}

void ref_resize_bilinear(const float *x, float *y, int NC, int H, int W, int OH, int OW)
{
    const float sh = (float)H / (float)OH, sw = (float)W / (float)OW;
    for (int p = 0; p < NC; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                double a0, a1, b0, b1;
                rb(oh, H, sh, &h0, &h1, &a0, &a1);
                rb(ow, W, sw, &w0, &w1, &b0, &b1);
                const float *q = x + (size_t)p * H * W;
                y[((size_t)p * OH + oh) * OW + ow] =
                    (float)(a0 * (b0 * q[h0 * W + w0] + b1 * q[h0 * W + w1]) +
                            a1 * (b0 * q[h1 * W + w0] + b1 * q[h1 * W + w1]));
            }
}

void ref_resize_bilinear_backward(const float *dy, float *dx, int NC, int H, int W, int OH, int OW)
{
    const float sh = (float)H / (float)OH, sw = (float)W / (float)OW;
    size_t n = (size_t)NC * H * W;
    double *acc = zeros(n);
    for (int p = 0; p < NC; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                double a0, a1, b0, b1;
                rb(oh, H, sh, &h0, &h1, &a0, &a1);
                rb(ow, W, sw, &w0, &w1, &b0, &b1);
                double g = dy[((size_t)p * OH + oh) * OW + ow];
                double *q = acc + (size_t)p * H * W;
                q[h0 * W + w0] += g * a0 * b0;
                q[h0 * W + w1] += g * a0 * b1;
                q[h1 * W + w0] += g * a1 * b0;
                q[h1 * W + w1] += g * a1 * b1;
            }
    store(acc, dx, n);
    free(acc);
}

static void window(int o, int s, int p, int k, int n, int *lo, int *hi)
{
    *lo = o * s - p;
    *hi = *lo + k;
    if (*lo < 0)
        *lo = 0;
    if (*hi > n)
        *hi = n;
}

void ref_avg_pool(const float *x, float *y, int NC, int H, int W, int k, int s, int p)
{
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    for (int c = 0; c < NC; c++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int hs, he, ws, we;
                window(oh, s, p, k, H, &hs, &he);
                window(ow, s, p, k, W, &ws, &we);
                double sum = 0;
                for (int h = hs; h < he; h++)
                    for (int w = ws; w < we; w++)
                        sum += x[((size_t)c * H + h) * W + w];
                y[((size_t)c * OH + oh) * OW + ow] = (float)(sum / ((he - hs) * (we - ws)));
            }
}

void ref_avg_pool_backward(const float *dy, float *dx, int NC, int H, int W, int k, int s, int p)
{
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    size_t n = (size_t)NC * H * W;
    double *acc = zeros(n);
    for (int c = 0; c < NC; c++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int hs, he, ws, we;
                window(oh, s, p, k, H, &hs, &he);
                window(ow, s, p, k, W, &ws, &we);
                double g = dy[((size_t)c * OH + oh) * OW + ow] / ((he - hs) * (we - ws));
                for (int h = hs; h < he; h++)
                    for (int w = ws; w < we; w++)
                        acc[((size_t)c * H + h) * W + w] += g;
            }
    store(acc, dx, n);
    free(acc);
}

static size_t argmax(const float *q, int W, int h0, int w0, int k)
{
    size_t best = (size_t)h0 * W + w0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            size_t i = (size_t)(h0 + a) * W + w0 + b;
            if (q[i] > q[best])
                best = i;
        }
    return best;
}

void ref_max_pool(const float *x, float *y, int NC, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
    for (int c = 0; c < NC; c++) {
        const float *q = x + (size_t)c * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                y[((size_t)c * OH + oh) * OW + ow] = q[argmax(q, W, oh * s, ow * s, k)];
    }
}

void ref_max_pool_backward(const float *x, const float *dy, float *dx, int NC, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
    size_t n = (size_t)NC * H * W;
    double *acc = zeros(n);
    for (int c = 0; c < NC; c++) {
        const float *q = x + (size_t)c * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                acc[(size_t)c * H * W + argmax(q, W, oh * s, ow * s, k)] += dy[((size_t)c * OH + oh) * OW + ow];
    }
    store(acc, dx, n);
    free(acc);
}

long ref_one_hot(const float *labels, float *y, int N, int H, int W, int num_classes, int num_channels,
                 int dontcare, int dontcare_channel)
{
    size_t hw = (size_t)H * W;
    long first_bad = -1;
    memset(y, 0, sizeof(float) * (size_t)N * num_channels * hw);
    for (int n = 0; n < N; n++)
        for (size_t p = 0; p < hw; p++) {
            float v = labels[(size_t)n * hw + p];
            int ch = -1;
            if (v >= 0 && v < num_classes && v == floorf(v))
                ch = (int)v;
            else if (v == (float)dontcare)
                ch = dontcare_channel;
            else if (first_bad < 0)
                first_bad = (long)((size_t)n * hw + p);
            if (ch >= 0)
                y[((size_t)n * num_channels + ch) * hw + p] = 1.0f;
        }
    return first_bad;
}
