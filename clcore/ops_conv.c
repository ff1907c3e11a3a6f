/* 2-D convolution (groups = 1, zero padding) with two algorithms, and the
 * fully connected layer.
 *
 *   DIRECT:       kernels/conv_fwd.cl, conv_bwd.cl: a tiled forward kernel (the work-group's input
 *                 patch in local memory, COUT_PER_ITEM output channels per item in
 *                 registers), a gather kernel for dx and a kernel for dw.
 *   IM2COL_GEMM:  kernels/im2col.cl + CLBlastSgemm, per sample and per range of
 *                 output pixels; a 1x1 stride-1 pad-0 conv is a plain GEMM per sample.
 *                 dx = col2im(W^T dY), dW += dY col^T summed over samples in order
 *                 (beta = 1), so both are deterministic.
 *   bias:         added in the direct kernel / by channel_bias_add; its gradient is
 *                 channel_sum_acc (a per-channel tree reduction).
 *
 * Tunables: the descriptors of clcore/ops_conv_kdef.c (the algorithm choice
 * "conv2d" and the direct kernels "conv_fwd_direct", "conv_bwd_data_direct",
 * "conv_bwd_weight_direct"), resolved by clsynth_kconfig at the layer's
 * shape. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/clblast_util.h"
#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/program.h"
#include "clcore/kconfig.h"
#include "clcore/kdefs.h"

/* The im2col column buffer holds Cin*KH*KW rows of P output pixels of one sample.
 * P is the whole image when that fits in CONV_COL_BUDGET_BYTES, else the image is
 * processed in pixel ranges; so the buffer never exceeds
 * max(CONV_COL_BUDGET_BYTES, Cin*KH*KW * 64 * 4 bytes) (and never one sample's
 * full Cin*KH*KW*OH*OW*4 bytes). It comes from the pool and goes back to it as
 * soon as the op has enqueued its work (the queue is in order), so one buffer
 * per shape exists at a time, not one per layer. ctx->conv_col_bytes overrides
 * the budget (tests lower it to force chunks). */
#define CONV_COL_BUDGET_BYTES ((size_t)64 << 20)
#define CONV_COL_MIN_PIXELS 64

typedef struct conv_geom {
    int N, Cin, H, W, Cout, KH, KW, OH, OW, stride, pad;
} conv_geom;

const char *clsynth_conv_algo_name(clsynth_conv_algo a)
{
    switch (a) {
    case CLSYNTH_CONV_AUTO: return "auto";
    case CLSYNTH_CONV_DIRECT: return "direct";
    case CLSYNTH_CONV_IM2COL_GEMM: return "im2col_gemm";
    default: return "unknown";
    }
}

static clsynth_conv_shape shape_of(const conv_geom *g)
{
    clsynth_conv_shape s = { g->N, g->Cin, g->H, g->W, g->Cout, g->KH, g->KW, g->stride, g->pad };
    return s;
}

/* ------------------------------------------------------------------ direct */

static int direct_forward(clsynth_ctx *ctx, const conv_geom *g, clsynth_kforce *force, clsynth_tensor *x,
                          clsynth_tensor *w, clsynth_tensor *b, clsynth_tensor *y)
{
    static const char kname[] = "conv_fwd_direct";
    const clsynth_conv_shape s = shape_of(g);
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, &clsynth_kdef_conv_fwd_direct, &s, force, &cfg))
        return -1;
    /* the tile is the work-group; cc input channels of its padded patch sit
     * in local memory at once (the resolver checked that they fit) */
    const int cpi = cfg.v[CONV_FWD_COUT_PER_ITEM];
    const int cc = cfg.v[CONV_FWD_CIN_CHUNK] < g->Cin ? cfg.v[CONV_FWD_CIN_CHUNK] : g->Cin;
    const size_t local_bytes = cfg.local_mem ? cfg.local_mem : sizeof(float);
    int ncob = (g->Cout + cpi - 1) / cpi;
    clsynth_args a = clsynth_args_begin(ctx, cfg.k[0], kname);
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, w);
    clsynth_arg_tensor(&a, b ? b : w); /* any valid buffer when there is no bias */
    clsynth_arg_int(&a, b != NULL);
    clsynth_arg_tensor(&a, y);
    const int ints[] = { g->N, g->Cin, g->H, g->W, g->Cout, g->OH, g->OW, g->KH, g->KW, g->stride, g->pad, cc };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        clsynth_arg_int(&a, ints[i]);
    clsynth_arg_local(&a, local_bytes);
    size_t global[3] = { clsynth_round_up((size_t)g->OW, cfg.local[0]), clsynth_round_up((size_t)g->OH, cfg.local[1]),
                         (size_t)g->N * (size_t)ncob };
    return clsynth_launch(&a, 3, global, cfg.local, local_bytes, NULL);
}

static void geom_args(clsynth_args *a, const conv_geom *g)
{
    const int ints[] = { g->N, g->Cin, g->H, g->W, g->Cout, g->OH, g->OW, g->KH, g->KW, g->stride, g->pad };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        clsynth_arg_int(a, ints[i]);
}

/* One direct backward kernel of descriptor def: tensors a, b -> out, the
 * geometry, over dims dimensions of work; the global size follows from its
 * COUT_PER_ITEM (channels per item along the last dimension). */
static int direct_backward(clsynth_ctx *ctx, const conv_geom *g, clsynth_kforce *force, const clsynth_kdef *def,
                           clsynth_tensor *a, clsynth_tensor *b, clsynth_tensor *out, int channels)
{
    const clsynth_conv_shape s = shape_of(g);
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, def, &s, force, &cfg))
        return -1;
    clsynth_args ar = clsynth_args_begin(ctx, cfg.k[0], def->kernels[0]);
    clsynth_arg_tensor(&ar, a);
    clsynth_arg_tensor(&ar, b);
    clsynth_arg_tensor(&ar, out);
    geom_args(&ar, g);
    const int cpi = cfg.v[CONV_BWD_COUT_PER_ITEM];
    const size_t blocks = (size_t)((channels + cpi - 1) / cpi);
    if (def == &clsynth_kdef_conv_bwd_data_direct) {
        size_t global[3] = { (size_t)g->W, (size_t)g->H, (size_t)g->N * blocks }; /* (W, H, N * Cin blocks) */
        return clsynth_launch(&ar, 3, global, cfg.local, 0, NULL);
    }
    size_t global[2] = { (size_t)g->Cin * (size_t)(g->KH * g->KW), blocks }; /* (Cin*KH*KW, Cout blocks) */
    return clsynth_launch(&ar, 2, global, cfg.local, 0, NULL);
}

/* dx += conv_transpose(dy, w) */
static int direct_backward_data(clsynth_ctx *ctx, const conv_geom *g, clsynth_kforce *force, clsynth_tensor *dy,
                                clsynth_tensor *w, clsynth_tensor *dx)
{
    return direct_backward(ctx, g, force, &clsynth_kdef_conv_bwd_data_direct, dy, w, dx, g->Cin);
}

/* dw += sum_n dy_n (x) x_n */
static int direct_backward_weight(clsynth_ctx *ctx, const conv_geom *g, clsynth_kforce *force, clsynth_tensor *dy,
                                  clsynth_tensor *x, clsynth_tensor *dw)
{
    return direct_backward(ctx, g, force, &clsynth_kdef_conv_bwd_weight_direct, dy, x, dw, g->Cout);
}

/* ------------------------------------------------------------------ bias */

/* y (N,C,H,W) += b (1,C,1,1) */
static int bias_add(clsynth_ctx *ctx, clsynth_tensor *y, clsynth_tensor *b)
{
    cl_kernel k = clsynth_kernel_get(ctx, "bias.cl", "channel_bias_add", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "channel_bias_add");
    clsynth_arg_tensor(&a, y);
    clsynth_arg_tensor(&a, b);
    CLSYNTH_ARG_INTS(&a, y->c, (int)CLSYNTH_HW(y), (int)y->numel);
    size_t global = y->numel;
    return clsynth_launch(&a, 1, &global, NULL, 0, NULL);
}

/* db (1,C,1,1) += sum over (N,H,W) of dy (N,C,H,W) */
static int bias_grad(clsynth_ctx *ctx, clsynth_tensor *dy, clsynth_tensor *db)
{
    static const char kname[] = "channel_sum_acc";
    cl_kernel k = clsynth_kernel_get(ctx, "bias.cl", kname, NULL);
    if (!k)
        return -1;
    size_t kmax = clsynth_kernel_max_wg(ctx, k, kname);
    if (kmax == 0)
        return -1;
    /* one group per channel; no wider than the work, the kernel, the device or 256 */
    size_t lsz = (size_t)clsynth_pow2_ceil(dy->n * (int)CLSYNTH_HW(dy));
    size_t cap = kmax < ctx->max_item[0] ? kmax : ctx->max_item[0];
    if (cap > 256)
        cap = 256;
    while (lsz * sizeof(float) > ctx->local_mem && lsz > 1)
        lsz /= 2;
    if (lsz > cap)
        lsz = cap;
    clsynth_args a = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, db);
    CLSYNTH_ARG_INTS(&a, dy->n, dy->c, (int)CLSYNTH_HW(dy));
    clsynth_arg_local(&a, lsz * sizeof(float));
    size_t global = (size_t)dy->c * lsz;
    return clsynth_launch(&a, 1, &global, &lsz, lsz * sizeof(float), NULL);
}

/* ------------------------------------------------------------------ im2col + GEMM */

static bool is_plain_gemm(const conv_geom *g)
{
    return g->KH == 1 && g->KW == 1 && g->stride == 1 && g->pad == 0;
}

/* Output pixels per column-buffer chunk (see CONV_COL_BUDGET_BYTES). */
static size_t col_chunk_pixels(clsynth_ctx *ctx, const conv_geom *g)
{
    size_t rows = (size_t)g->Cin * (size_t)(g->KH * g->KW);
    size_t ohw = (size_t)g->OH * (size_t)g->OW;
    size_t budget = ctx->conv_col_bytes ? ctx->conv_col_bytes : CONV_COL_BUDGET_BYTES;
    if (budget > ctx->dev.max_alloc && ctx->dev.max_alloc > 0)
        budget = (size_t)ctx->dev.max_alloc;
    size_t p = budget / (rows * sizeof(float));
    if (p < CONV_COL_MIN_PIXELS)
        p = CONV_COL_MIN_PIXELS;
    if ((size_t)INT_MAX / rows < p)
        p = (size_t)INT_MAX / rows;
    return p < ohw ? p : ohw;
}

static int launch_im2col(clsynth_ctx *ctx, const conv_geom *g, const clsynth_tensor *x, int n, cl_mem col,
                         size_t p0, size_t P)
{
    cl_kernel k = clsynth_kernel_get(ctx, "im2col.cl", "im2col", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "im2col");
    clsynth_arg_mem(&a, x->mem);
    clsynth_arg_int(&a, (int)(x->off + (size_t)n * (size_t)g->Cin * (size_t)g->H * (size_t)g->W));
    clsynth_arg_mem(&a, col);
    clsynth_arg_int(&a, 0);
    const int ints[] = { g->Cin, g->H, g->W, g->OW, g->KH, g->KW, g->stride, g->pad, (int)p0, (int)P };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        clsynth_arg_int(&a, ints[i]);
    size_t global[2] = { P, (size_t)g->Cin * (size_t)(g->KH * g->KW) };
    return clsynth_launch(&a, 2, global, NULL, 0, NULL);
}

static int launch_col2im(clsynth_ctx *ctx, const conv_geom *g, cl_mem col, clsynth_tensor *dx, int n, size_t p0,
                         size_t P)
{
    cl_kernel k = clsynth_kernel_get(ctx, "im2col.cl", "col2im_acc", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "col2im_acc");
    clsynth_arg_mem(&a, col);
    clsynth_arg_int(&a, 0);
    clsynth_arg_mem(&a, dx->mem);
    clsynth_arg_int(&a, (int)(dx->off + (size_t)n * (size_t)g->Cin * (size_t)g->H * (size_t)g->W));
    const int ints[] = { g->Cin, g->H, g->W, g->OH, g->OW, g->KH, g->KW, g->stride, g->pad, (int)p0, (int)P };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        clsynth_arg_int(&a, ints[i]);
    size_t global[3] = { (size_t)g->W, (size_t)g->H, (size_t)g->Cin };
    return clsynth_launch(&a, 3, global, NULL, 0, NULL);
}

static struct clsynth_block *col_buffer(clsynth_ctx *ctx, const conv_geom *g, size_t P)
{
    if (is_plain_gemm(g))
        return NULL;
    return clsynth_pool_get(ctx, (size_t)g->Cin * (size_t)(g->KH * g->KW) * P * sizeof(float),
                            "conv2d im2col column buffer");
}

static int gemm_forward(clsynth_ctx *ctx, const conv_geom *g, clsynth_tensor *x, clsynth_tensor *w,
                        clsynth_tensor *b, clsynth_tensor *y)
{
    char what[160], xd[80];
    snprintf(what, sizeof what, "conv2d forward of %s", clsynth_tensor_describe(x, xd, sizeof xd));
    const size_t rows = (size_t)g->Cin * (size_t)(g->KH * g->KW);
    const size_t ohw = (size_t)g->OH * (size_t)g->OW, hw = (size_t)g->H * (size_t)g->W;
    const size_t cout = (size_t)g->Cout;
    int rc = 0;
    if (is_plain_gemm(g)) {
        /* y_n (Cout, HW) = W (Cout, Cin) x_n (Cin, HW) */
        for (int n = 0; n < g->N && !rc; n++)
            rc = clsynth_sgemm(ctx, what, false, false, cout, hw, rows, 1.0f, w->mem, w->off, rows, x->mem,
                               x->off + (size_t)n * rows * hw, hw, 0.0f, y->mem, y->off + (size_t)n * cout * ohw, ohw);
    } else {
        size_t chunk = col_chunk_pixels(ctx, g);
        struct clsynth_block *blk = col_buffer(ctx, g, chunk);
        if (!blk)
            return -1;
        cl_mem col = clsynth_block_mem(blk);
        for (int n = 0; n < g->N && !rc; n++)
            for (size_t p0 = 0; p0 < ohw && !rc; p0 += chunk) {
                size_t P = ohw - p0 < chunk ? ohw - p0 : chunk;
                /* col (Cin*KH*KW, P); y_n[:, p0:p0+P] (Cout, P) = W (Cout, rows) col */
                rc = launch_im2col(ctx, g, x, n, col, p0, P);
                if (!rc)
                    rc = clsynth_sgemm(ctx, what, false, false, cout, P, rows, 1.0f, w->mem, w->off, rows, col,
                                       0, P, 0.0f, y->mem, y->off + (size_t)n * cout * ohw + p0, ohw);
            }
        clsynth_pool_put(ctx, blk);
    }
    if (!rc && b)
        rc = bias_add(ctx, y, b);
    return rc;
}

/* dw += sum_n dy_n col_n^T and/or dx += col2im(W^T dy_n), samples in order. */
static int gemm_backward(clsynth_ctx *ctx, const conv_geom *g, clsynth_tensor *x, clsynth_tensor *w,
                         clsynth_tensor *dy, clsynth_tensor *dx, clsynth_tensor *dw)
{
    char what[160], xd[80];
    snprintf(what, sizeof what, "conv2d backward of %s", clsynth_tensor_describe(x, xd, sizeof xd));
    const size_t rows = (size_t)g->Cin * (size_t)(g->KH * g->KW);
    const size_t ohw = (size_t)g->OH * (size_t)g->OW, hw = (size_t)g->H * (size_t)g->W;
    const size_t cout = (size_t)g->Cout;
    int rc = 0;
    if (is_plain_gemm(g)) {
        for (int n = 0; n < g->N && !rc; n++) {
            size_t xo = x->off + (size_t)n * rows * hw, yo = dy->off + (size_t)n * cout * ohw;
            /* dw (Cout, Cin) += dy_n (Cout, HW) x_n^T (HW, Cin) */
            if (dw)
                rc = clsynth_sgemm(ctx, what, false, true, cout, rows, hw, 1.0f, dy->mem, yo, ohw, x->mem, xo, hw,
                                   1.0f, dw->mem, dw->off, rows);
            /* dx_n (Cin, HW) += W^T (Cin, Cout) dy_n (Cout, HW) */
            if (dx && !rc)
                rc = clsynth_sgemm(ctx, what, true, false, rows, hw, cout, 1.0f, w->mem, w->off, rows, dy->mem, yo,
                                   ohw, 1.0f, dx->mem, dx->off + (size_t)n * rows * hw, hw);
        }
        return rc;
    }
    size_t chunk = col_chunk_pixels(ctx, g);
    struct clsynth_block *blk = col_buffer(ctx, g, chunk);
    if (!blk)
        return -1;
    cl_mem col = clsynth_block_mem(blk);
    for (int n = 0; n < g->N && !rc; n++)
        for (size_t p0 = 0; p0 < ohw && !rc; p0 += chunk) {
            size_t P = ohw - p0 < chunk ? ohw - p0 : chunk;
            size_t yo = dy->off + (size_t)n * cout * ohw + p0;
            if (dw) {
                /* dw (Cout, rows) += dy_n[:, p0:p0+P] (Cout, P) col^T (P, rows) */
                rc = launch_im2col(ctx, g, x, n, col, p0, P);
                if (!rc)
                    rc = clsynth_sgemm(ctx, what, false, true, cout, rows, P, 1.0f, dy->mem, yo, ohw, col, 0, P,
                                       1.0f, dw->mem, dw->off, rows);
            }
            if (dx && !rc) {
                /* dcol (rows, P) = W^T (rows, Cout) dy_n[:, p0:p0+P]; dx_n += col2im(dcol) */
                rc = clsynth_sgemm(ctx, what, true, false, rows, P, cout, 1.0f, w->mem, w->off, rows, dy->mem, yo,
                                   ohw, 0.0f, col, 0, P);
                if (!rc)
                    rc = launch_col2im(ctx, g, col, dx, n, p0, P);
            }
        }
    clsynth_pool_put(ctx, blk);
    return rc;
}

/* ------------------------------------------------------------------ op */

/* The algorithm: the caller's, else the resolved "conv2d" choice (tuned, or
 * the heuristic of clcore/ops_conv_kdef.c). */
static clsynth_conv_algo resolve_algo(clsynth_ctx *ctx, const conv_geom *g, clsynth_conv_algo algo,
                                      clsynth_kforce *force)
{
    if (algo != CLSYNTH_CONV_AUTO)
        return algo;
    const clsynth_conv_shape s = shape_of(g);
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, &clsynth_kdef_conv2d, &s, force, &cfg))
        return CLSYNTH_CONV_AUTO;
    int a = cfg.v[CONV2D_ALGO];
    if (a != CLSYNTH_CONV_DIRECT && a != CLSYNTH_CONV_IM2COL_GEMM) {
        clsynth_ctx_fail(ctx, "conv2d at %s: algorithm %d is none of 1 (direct) and 2 (im2col + GEMM)", cfg.key, a);
        return CLSYNTH_CONV_AUTO;
    }
    return (clsynth_conv_algo)a;
}

static void node_geom(const clsynth_node *nd, conv_geom *g)
{
    const clsynth_tensor *x = nd->in[0], *w = nd->in[1];
    g->N = x->n;
    g->Cin = x->c;
    g->H = x->h;
    g->W = x->w;
    g->Cout = w->n;
    g->KH = w->h;
    g->KW = w->w;
    g->stride = nd->iarg[0];
    g->pad = nd->iarg[1];
    g->OH = nd->out->h;
    g->OW = nd->out->w;
}

static int conv2d_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *dy = nd->out->grad;
    conv_geom g;
    node_geom(nd, &g);
    clsynth_tensor *dx = NULL, *dw = NULL;
    if (x->flags & CLSYNTH_T_REQUIRES_GRAD) {
        if (!(dx = clsynth_grad_of(ctx, x)))
            return -1;
    }
    if (w->flags & CLSYNTH_T_REQUIRES_GRAD) {
        if (!(dw = clsynth_grad_of(ctx, w)))
            return -1;
    }
    if (b && (b->flags & CLSYNTH_T_REQUIRES_GRAD)) {
        clsynth_tensor *db = clsynth_grad_of(ctx, b);
        if (!db || bias_grad(ctx, dy, db))
            return -1;
    }
    if ((clsynth_conv_algo)nd->iarg[2] == CLSYNTH_CONV_DIRECT) {
        if (dw && direct_backward_weight(ctx, &g, nd->force, dy, x, dw))
            return -1;
        if (dx && direct_backward_data(ctx, &g, nd->force, dy, w, dx))
            return -1;
        return 0;
    }
    return dx || dw ? gemm_backward(ctx, &g, x, w, dy, dx, dw) : 0;
}

clsynth_tensor *clsynth_conv2d_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w, clsynth_tensor *bias,
                                      int stride, int pad, clsynth_conv_algo algo, clsynth_kforce *force)
{
    if (ctx->failed || !x || !w)
        return NULL;
    char xd[96], wd[96], bd[96];
    clsynth_tensor_describe(x, xd, sizeof xd);
    clsynth_tensor_describe(w, wd, sizeof wd);
    if (w->c != x->c) {
        clsynth_ctx_fail(ctx, "conv2d: weight %s has %d input channels, input %s has %d", wd, w->c, xd, x->c);
        return NULL;
    }
    if (stride < 1 || pad < 0) {
        clsynth_ctx_fail(ctx, "conv2d of %s with weight %s: stride %d and pad %d (need stride >= 1, pad >= 0)", xd,
                         wd, stride, pad);
        return NULL;
    }
    if (x->h + 2 * pad < w->h || x->w + 2 * pad < w->w) {
        clsynth_ctx_fail(ctx, "conv2d: kernel %dx%d of weight %s is larger than input %s padded by %d", w->h, w->w,
                         wd, xd, pad);
        return NULL;
    }
    if (bias && (bias->numel != (size_t)w->n || bias->c != w->n)) {
        clsynth_ctx_fail(ctx, "conv2d: bias %s must be (1, %d, 1, 1) for weight %s",
                         clsynth_tensor_describe(bias, bd, sizeof bd), w->n, wd);
        return NULL;
    }
    if ((int)algo < 0 || algo >= CLSYNTH_CONV_ALGO_COUNT) {
        clsynth_ctx_fail(ctx, "conv2d of %s: unknown algorithm %d", xd, (int)algo);
        return NULL;
    }
    conv_geom g = { x->n, x->c, x->h, x->w, w->n, w->h, w->w, (x->h + 2 * pad - w->h) / stride + 1,
                    (x->w + 2 * pad - w->w) / stride + 1, stride, pad };
    clsynth_conv_algo a = resolve_algo(ctx, &g, algo, force);
    if (a == CLSYNTH_CONV_AUTO)
        return NULL;
    clsynth_tensor *y = clsynth_tensor_new(ctx, "conv2d", g.N, g.Cout, g.OH, g.OW); /* (N, Cout, OH, OW) */
    if (!y)
        return NULL;
    int rc = a == CLSYNTH_CONV_DIRECT ? direct_forward(ctx, &g, force, x, w, bias, y)
                                      : gemm_forward(ctx, &g, x, w, bias, y);
    if (rc) {
        if (!ctx->failed)
            clsynth_ctx_fail(ctx, "conv2d (%s) of %s failed", clsynth_conv_algo_name(a), xd);
        return NULL;
    }
    clsynth_tensor *in[3] = { x, w, bias };
    clsynth_node *nd = clsynth_tape_record(ctx, "conv2d", conv2d_backward, y, in, 3);
    if (ctx->failed)
        return NULL;
    if (nd) {
        nd->iarg[0] = stride;
        nd->iarg[1] = pad;
        nd->iarg[2] = (int)a;
        nd->force = force;
    }
    return y;
}

clsynth_tensor *clsynth_conv2d_algo(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w, clsynth_tensor *bias,
                                    int stride, int pad, clsynth_conv_algo algo)
{
    return clsynth_conv2d_forced(ctx, x, w, bias, stride, pad, algo, NULL);
}

clsynth_tensor *clsynth_conv2d(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w, clsynth_tensor *bias,
                               int stride, int pad)
{
    return clsynth_conv2d_forced(ctx, x, w, bias, stride, pad, CLSYNTH_CONV_AUTO, NULL);
}

/* ------------------------------------------------------------------ linear */

static int linear_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *dy = nd->out->grad;
    const size_t N = (size_t)x->n, in = (size_t)x->c * CLSYNTH_HW(x), out = (size_t)w->n;
    char what[160], xd[80];
    snprintf(what, sizeof what, "linear backward of %s", clsynth_tensor_describe(x, xd, sizeof xd));
    if (x->flags & CLSYNTH_T_REQUIRES_GRAD) {
        /* dx (N, In) += dy (N, Out) W (Out, In) */
        clsynth_tensor *dx = clsynth_grad_of(ctx, x);
        if (!dx || clsynth_sgemm(ctx, what, false, false, N, in, out, 1.0f, dy->mem, dy->off, out, w->mem, w->off,
                                 in, 1.0f, dx->mem, dx->off, in))
            return -1;
    }
    if (w->flags & CLSYNTH_T_REQUIRES_GRAD) {
        /* dW (Out, In) += dy^T (Out, N) x (N, In) */
        clsynth_tensor *dw = clsynth_grad_of(ctx, w);
        if (!dw || clsynth_sgemm(ctx, what, true, false, out, in, N, 1.0f, dy->mem, dy->off, out, x->mem, x->off,
                                 in, 1.0f, dw->mem, dw->off, in))
            return -1;
    }
    if (b && (b->flags & CLSYNTH_T_REQUIRES_GRAD)) {
        clsynth_tensor *db = clsynth_grad_of(ctx, b);
        if (!db || bias_grad(ctx, dy, db))
            return -1;
    }
    return 0;
}

clsynth_tensor *clsynth_linear(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w, clsynth_tensor *bias)
{
    if (ctx->failed || !x || !w)
        return NULL;
    char xd[96], wd[96], bd[96];
    clsynth_tensor_describe(x, xd, sizeof xd);
    clsynth_tensor_describe(w, wd, sizeof wd);
    const size_t in = (size_t)x->c * CLSYNTH_HW(x);
    if ((size_t)w->c != in || w->h != 1 || w->w != 1) {
        clsynth_ctx_fail(ctx, "linear: weight %s must be (Out, %zu, 1, 1) for input %s (%zu features per sample)",
                         wd, in, xd, in);
        return NULL;
    }
    if (bias && (bias->numel != (size_t)w->n || bias->c != w->n)) {
        clsynth_ctx_fail(ctx, "linear: bias %s must be (1, %d, 1, 1) for weight %s",
                         clsynth_tensor_describe(bias, bd, sizeof bd), w->n, wd);
        return NULL;
    }
    const size_t N = (size_t)x->n, out = (size_t)w->n;
    clsynth_tensor *y = clsynth_tensor_new(ctx, "linear", x->n, w->n, 1, 1); /* (N, Out, 1, 1) */
    if (!y)
        return NULL;
    char what[160];
    snprintf(what, sizeof what, "linear forward of %s", xd);
    /* y (N, Out) = x (N, In) W^T (In, Out) */
    if (clsynth_sgemm(ctx, what, false, true, N, out, in, 1.0f, x->mem, x->off, in, w->mem, w->off, in, 0.0f, y->mem,
                      y->off, out))
        return NULL;
    if (bias && bias_add(ctx, y, bias))
        return NULL;
    clsynth_tensor *ins[3] = { x, w, bias };
    clsynth_node *nd = clsynth_tape_record(ctx, "linear", linear_backward, y, ins, 3);
    (void)nd;
    return ctx->failed ? NULL : y;
}
