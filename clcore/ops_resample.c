/* Resampling ops (kernels/resample.cl): nearest resize and 2x upsampling,
 * bilinear 2x upsampling and bilinear resize, average and max pooling,
 * one-hot encoding.
 * Backward passes are gather-form kernels over the input (no atomics).
 * Memory: each op allocates only its output; max pooling keeps no argmax
 * tensor (its backward recomputes each window's argmax from the saved input). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/program.h"

#define RS_FILE "resample.cl"

static int launch_1d(clsynth_args *a, size_t n) { return clsynth_launch(a, 1, &n, NULL, 0, NULL); }

/* global (W, H, N*C) of t: the kernels index by (column, row, plane), no divisions
 * (PoCL computed the 1-D index's per element) */
static int launch_3d(clsynth_args *a, const clsynth_tensor *t)
{
    const size_t global[3] = { (size_t)t->w, (size_t)t->h, (size_t)t->n * (size_t)t->c };
    return clsynth_launch(a, 3, global, NULL, 0, NULL);
}

static cl_kernel rs_kernel(clsynth_ctx *ctx, const char *name)
{
    return clsynth_kernel_get(ctx, RS_FILE, name, NULL);
}

/* ---- nearest ---- */

static int nearest_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *dy = nd->out->grad;
    int acc = 0; /* each element of dx written once: a fresh one is stored, not zero-filled */
    clsynth_tensor *dx = clsynth_grad_for_write(ctx, x, &acc);
    cl_kernel k = rs_kernel(ctx, "resize_nearest_bwd");
    if (!dx || !k)
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, k, "resize_nearest_bwd");
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, dx);
    CLSYNTH_ARG_INTS(&a, x->n * x->c, x->h, x->w, dy->h, dy->w);
    clsynth_arg_int(&a, acc);
    return launch_3d(&a, x);
}

static clsynth_tensor *nearest(clsynth_ctx *ctx, const char *op, clsynth_tensor *x, int h, int w)
{
    if (ctx->failed || !x)
        return NULL;
    char b[160];
    if (h <= 0 || w <= 0) {
        clsynth_ctx_fail(ctx, "%s: output size %dx%d of input %s", op, h, w, clsynth_tensor_describe(x, b, sizeof b));
        return NULL;
    }
    /* the kernels compute dst * in and (src + 1) * out in int */
    if ((long long)(h + 1) * x->h > INT_MAX || (long long)(w + 1) * x->w > INT_MAX ||
        (long long)(x->h + 1) * h > INT_MAX || (long long)(x->w + 1) * w > INT_MAX) {
        clsynth_ctx_fail(ctx, "%s: sizes %dx%d -> %dx%d overflow the kernels' index arithmetic", op, x->h, x->w, h,
                         w);
        return NULL;
    }
    clsynth_tensor *y = clsynth_tensor_new(ctx, op, x->n, x->c, h, w); /* (N, C, h, w) */
    cl_kernel k = rs_kernel(ctx, "resize_nearest_fwd");
    if (!y || !k)
        return NULL;
    clsynth_args a = clsynth_args_begin(ctx, k, "resize_nearest_fwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, y);
    CLSYNTH_ARG_INTS(&a, x->n * x->c, x->h, x->w, h, w);
    if (launch_3d(&a, y))
        return NULL;
    clsynth_tape_record(ctx, op, nearest_backward, y, &x, 1);
    return ctx->failed ? NULL : y;
}

clsynth_tensor *clsynth_upsample_nearest2x(clsynth_ctx *ctx, clsynth_tensor *x)
{
    if (ctx->failed || !x)
        return NULL;
    return nearest(ctx, "upsample_nearest2x", x, 2 * x->h, 2 * x->w);
}

clsynth_tensor *clsynth_resize_nearest(clsynth_ctx *ctx, clsynth_tensor *x, int h, int w)
{
    return nearest(ctx, "resize_nearest", x, h, w);
}

/* ---- bilinear 2x ---- */

static int bilinear_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *dy = nd->out->grad;
    int acc = 0; /* each element of dx written once: a fresh one is stored, not zero-filled */
    clsynth_tensor *dx = clsynth_grad_for_write(ctx, x, &acc);
    cl_kernel k = rs_kernel(ctx, "bilinear2x_bwd");
    if (!dx || !k)
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, k, "bilinear2x_bwd");
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, dx);
    CLSYNTH_ARG_INTS(&a, x->n * x->c, x->h, x->w);
    clsynth_arg_int(&a, acc);
    return launch_3d(&a, x);
}

clsynth_tensor *clsynth_upsample_bilinear2x(clsynth_ctx *ctx, clsynth_tensor *x)
{
    if (ctx->failed || !x)
        return NULL;
    clsynth_tensor *y = clsynth_tensor_new(ctx, "upsample_bilinear2x", x->n, x->c, 2 * x->h, 2 * x->w);
    cl_kernel k = rs_kernel(ctx, "bilinear2x_fwd");
    if (!y || !k)
        return NULL;
    clsynth_args a = clsynth_args_begin(ctx, k, "bilinear2x_fwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, y);
    CLSYNTH_ARG_INTS(&a, x->n * x->c, x->h, x->w);
    if (launch_3d(&a, y))
        return NULL;
    clsynth_tape_record(ctx, "upsample_bilinear2x", bilinear_backward, y, &x, 1);
    return ctx->failed ? NULL : y;
}

/* ---- bilinear resize ---- */

static int resize_bilinear_args(clsynth_args *a, const clsynth_tensor *x, int oh, int ow)
{
    clsynth_arg_int(a, x->n * x->c);
    clsynth_arg_int(a, x->h);
    clsynth_arg_int(a, x->w);
    clsynth_arg_int(a, oh);
    clsynth_arg_int(a, ow);
    clsynth_arg_float(a, (float)x->h / (float)oh); /* PyTorch: float(in) / out */
    clsynth_arg_float(a, (float)x->w / (float)ow);
    return 0;
}

static int resize_bilinear_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *dy = nd->out->grad;
    int acc = 0; /* each element of dx written once: a fresh one is stored, not zero-filled */
    clsynth_tensor *dx = clsynth_grad_for_write(ctx, x, &acc);
    cl_kernel k = rs_kernel(ctx, "resize_bilinear_bwd");
    if (!dx || !k)
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, k, "resize_bilinear_bwd");
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, dx);
    resize_bilinear_args(&a, x, dy->h, dy->w);
    clsynth_arg_int(&a, acc);
    return launch_3d(&a, x);
}

clsynth_tensor *clsynth_resize_bilinear(clsynth_ctx *ctx, clsynth_tensor *x, int h, int w)
{
    if (ctx->failed || !x)
        return NULL;
    char b[160];
    if (h <= 0 || w <= 0 || h > (1 << 20) || w > (1 << 20)) {
        clsynth_ctx_fail(ctx, "resize_bilinear: output size %dx%d of input %s", h, w,
                         clsynth_tensor_describe(x, b, sizeof b));
        return NULL;
    }
    clsynth_tensor *y = clsynth_tensor_new(ctx, "resize_bilinear", x->n, x->c, h, w); /* (N, C, h, w) */
    cl_kernel k = rs_kernel(ctx, "resize_bilinear_fwd");
    if (!y || !k)
        return NULL;
    clsynth_args a = clsynth_args_begin(ctx, k, "resize_bilinear_fwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, y);
    resize_bilinear_args(&a, x, h, w);
    if (launch_3d(&a, y))
        return NULL;
    clsynth_tape_record(ctx, "resize_bilinear", resize_bilinear_backward, y, &x, 1);
    return ctx->failed ? NULL : y;
}

/* ---- average pooling ---- */

static int avgpool_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *dy = nd->out->grad;
    int acc = 0; /* each element of dx written once: a fresh one is stored, not zero-filled */
    clsynth_tensor *dx = clsynth_grad_for_write(ctx, x, &acc);
    cl_kernel k = rs_kernel(ctx, "avgpool_bwd");
    if (!dx || !k)
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, k, "avgpool_bwd");
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, dx);
    CLSYNTH_ARG_INTS(&a, x->n * x->c, x->h, x->w, dy->h, dy->w, nd->iarg[0], nd->iarg[1], nd->iarg[2]);
    clsynth_arg_int(&a, acc);
    return launch_3d(&a, x);
}

clsynth_tensor *clsynth_avg_pool(clsynth_ctx *ctx, clsynth_tensor *x, int k, int s, int p)
{
    if (ctx->failed || !x)
        return NULL;
    char b[160];
    if (k < 1 || s < 1 || p < 0 || 2 * p > k) {
        clsynth_ctx_fail(ctx, "avg_pool of %s: kernel %d, stride %d, padding %d (need k >= 1, s >= 1, "
                              "0 <= p <= k/2)", clsynth_tensor_describe(x, b, sizeof b), k, s, p);
        return NULL;
    }
    if (x->h + 2 * p < k || x->w + 2 * p < k) {
        clsynth_ctx_fail(ctx, "avg_pool of %s: kernel %d with padding %d is larger than the input",
                         clsynth_tensor_describe(x, b, sizeof b), k, p);
        return NULL;
    }
    int oh = (x->h + 2 * p - k) / s + 1, ow = (x->w + 2 * p - k) / s + 1;
    clsynth_tensor *y = clsynth_tensor_new(ctx, "avg_pool", x->n, x->c, oh, ow); /* (N, C, oh, ow) */
    cl_kernel kern = rs_kernel(ctx, "avgpool_fwd");
    if (!y || !kern)
        return NULL;
    clsynth_args a = clsynth_args_begin(ctx, kern, "avgpool_fwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, y);
    CLSYNTH_ARG_INTS(&a, x->n * x->c, x->h, x->w, oh, ow, k, s, p);
    if (launch_3d(&a, y))
        return NULL;
    clsynth_node *nd = clsynth_tape_record(ctx, "avg_pool", avgpool_backward, y, &x, 1);
    if (nd) {
        nd->iarg[0] = k;
        nd->iarg[1] = s;
        nd->iarg[2] = p;
    }
    return ctx->failed ? NULL : y;
}

clsynth_tensor *clsynth_avg_pool2x2(clsynth_ctx *ctx, clsynth_tensor *x) { return clsynth_avg_pool(ctx, x, 2, 2, 0); }

/* ---- max pooling ---- */

static int maxpool_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *dy = nd->out->grad;
    int acc = 0; /* each element of dx written once: a fresh one is stored, not zero-filled */
    clsynth_tensor *dx = clsynth_grad_for_write(ctx, x, &acc);
    cl_kernel k = rs_kernel(ctx, "maxpool_bwd");
    if (!dx || !k)
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, k, "maxpool_bwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, dx);
    CLSYNTH_ARG_INTS(&a, x->n * x->c, x->h, x->w, dy->h, dy->w, nd->iarg[0], nd->iarg[1]);
    clsynth_arg_int(&a, acc);
    return launch_3d(&a, x);
}

clsynth_tensor *clsynth_max_pool(clsynth_ctx *ctx, clsynth_tensor *x, int k, int s)
{
    if (ctx->failed || !x)
        return NULL;
    char b[160];
    if (k < 1 || s < 1 || x->h < k || x->w < k) {
        clsynth_ctx_fail(ctx, "max_pool of %s: kernel %d, stride %d (need 1 <= k <= H, W and s >= 1)",
                         clsynth_tensor_describe(x, b, sizeof b), k, s);
        return NULL;
    }
    int oh = (x->h - k) / s + 1, ow = (x->w - k) / s + 1;
    clsynth_tensor *y = clsynth_tensor_new(ctx, "max_pool", x->n, x->c, oh, ow); /* (N, C, oh, ow) */
    cl_kernel kern = rs_kernel(ctx, "maxpool_fwd");
    if (!y || !kern)
        return NULL;
    clsynth_args a = clsynth_args_begin(ctx, kern, "maxpool_fwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, y);
    CLSYNTH_ARG_INTS(&a, x->n * x->c, x->h, x->w, oh, ow, k, s);
    if (launch_3d(&a, y))
        return NULL;
    clsynth_node *nd = clsynth_tape_record(ctx, "max_pool", maxpool_backward, y, &x, 1);
    if (nd) {
        nd->iarg[0] = k;
        nd->iarg[1] = s;
    }
    return ctx->failed ? NULL : y;
}

/* ---- one-hot ----
 * This op synchronizes: it reads back a 4-byte flag after the kernel so that
 * an invalid label is reported by the op that meets it, naming the value and
 * the pixel, instead of silently producing an all-zero (or wrong) channel that
 * would only show up as a bad training run. Label maps enter once per step,
 * so the wait costs one queue drain per step. */
clsynth_tensor *clsynth_one_hot(clsynth_ctx *ctx, clsynth_tensor *labels, int num_classes, int num_channels,
                                int dontcare, int dontcare_channel)
{
    if (ctx->failed || !labels)
        return NULL;
    char b[160];
    clsynth_tensor_describe(labels, b, sizeof b);
    if (labels->c != 1) {
        clsynth_ctx_fail(ctx, "one_hot: labels %s must have one channel", b);
        return NULL;
    }
    if (num_classes < 1 || num_channels < num_classes || dontcare_channel < -1 ||
        dontcare_channel >= num_channels) {
        clsynth_ctx_fail(ctx, "one_hot of %s: %d classes, %d channels, dontcare channel %d (need 1 <= classes "
                              "<= channels and -1 <= dontcare channel < channels)",
                         b, num_classes, num_channels, dontcare_channel);
        return NULL;
    }
    clsynth_tensor *y = clsynth_tensor_new(ctx, "one_hot", labels->n, num_channels, labels->h, labels->w);
    /* (N, num_channels, H, W) */
    clsynth_tensor *flag = clsynth_tensor_new(ctx, "one_hot_flag", 1, 1, 1, 1); /* holds an int */
    cl_kernel k = rs_kernel(ctx, "one_hot");
    if (!y || !flag || !k)
        return NULL;
    const cl_int none = INT_MAX;
    cl_int rc = clEnqueueFillBuffer(ctx->queue, flag->mem, &none, sizeof none, flag->off * sizeof(float),
                                    sizeof none, 0, NULL, NULL);
    if (rc != CL_SUCCESS) {
        clsynth_cl_fail(ctx, "clEnqueueFillBuffer", "one_hot flag", rc);
        return NULL;
    }
    clsynth_args a = clsynth_args_begin(ctx, k, "one_hot");
    clsynth_arg_tensor(&a, labels);
    clsynth_arg_tensor(&a, y);
    clsynth_arg_tensor(&a, flag);
    CLSYNTH_ARG_INTS(&a, labels->n, labels->h * labels->w, num_classes, num_channels, dontcare, dontcare_channel);
    if (launch_1d(&a, labels->numel))
        return NULL;
    cl_int bad = INT_MAX;
    rc = clEnqueueReadBuffer(ctx->queue, flag->mem, CL_TRUE, flag->off * sizeof(float), sizeof bad, &bad, 0, NULL,
                             NULL);
    if (rc != CL_SUCCESS) {
        clsynth_cl_fail(ctx, "clEnqueueReadBuffer", "one_hot flag", rc);
        return NULL;
    }
    if (bad != INT_MAX) {
        float v = 0;
        rc = clEnqueueReadBuffer(ctx->queue, labels->mem, CL_TRUE, (labels->off + (size_t)bad) * sizeof(float),
                                 sizeof v, &v, 0, NULL, NULL);
        if (rc != CL_SUCCESS) {
            clsynth_cl_fail(ctx, "clEnqueueReadBuffer", "one_hot label", rc);
            return NULL;
        }
        int hw = labels->h * labels->w;
        clsynth_ctx_fail(ctx, "one_hot: label value %g at pixel (n %d, y %d, x %d) of %s is not a class id in "
                              "[0, %d) nor the dontcare value %d",
                         (double)v, bad / hw, (bad % hw) / labels->w, bad % labels->w, b, num_classes, dontcare);
        return NULL;
    }
    return y;
}
