/* im2col + GEMM convolution (kernels/im2col.cl + CLBlastSgemm), per sample and
 * per range of output pixels; a 1x1 stride-1 pad-0 conv is a plain GEMM per
 * sample. dx = col2im(W^T dY), dW += dY col^T summed over samples in order
 * (beta = 1), so both are deterministic. */
#include <limits.h>
#include <stdio.h>

#include "clcore/clblast_util.h"
#include "clcore/launch.h"
#include "clcore/ops_conv_impl.h"
#include "clcore/program.h"

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

typedef clsynth_conv_geom conv_geom;

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

static int gemm_forward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    const conv_geom *g = &c->g;
    clsynth_tensor *x = c->x, *w = c->w, *b = c->b, *y = c->y;
    const char *what = c->what;
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
        rc = clsynth_conv_bias_add(ctx, y, b);
    return rc;
}

/* dw += sum_n dy_n col_n^T and/or dx += col2im(W^T dy_n), samples in order. */
static int gemm_backward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    const conv_geom *g = &c->g;
    clsynth_tensor *x = c->x, *w = c->w, *dy = c->dy, *dx = c->dx, *dw = c->dw;
    const char *what = c->what;
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

const clsynth_conv_impl clsynth_conv_impl_gemm = { "im2col_gemm", gemm_forward, gemm_backward };
