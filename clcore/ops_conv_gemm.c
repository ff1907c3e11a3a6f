/* im2col + GEMM convolution (kernels/im2col.cl + clsynth_gemm, clcore/gemm.h):
 * a handful of GEMM calls per layer and pass over the whole batch, not one
 * per sample.
 *
 * rows = Cin*KH*KW, P = OH*OW output pixels, col = the im2col of x. Two
 * ways to cover the samples (the conv2d tunable GEMM_BATCH):
 *
 *   MERGED   the samples side by side: col (rows, N*P), one GEMM each way;
 *            the GEMM sees (Cout, N*P) outputs, the tensors are (N, Cout, P),
 *            so one cheap permute (swap01) goes each way:
 *              forward  yT = W col, y = swap01(yT) + b
 *              dW       dyT = swap01(dy); dW += dyT col^T   (one GEMM, K = N*P)
 *              dx       dcol = W^T dyT; dx += col2im(dcol)
 *   STRIDED  one product per sample in one batched GEMM call: col (N, rows,
 *            P), outputs written in place, no permutes:
 *              forward  y_n = W col_n + b (the GEMM's bias epilogue);  dW += sum_n dy_n col_n^T (a summed batch,
 *              in order of n);  dcol_n = W^T dy_n, dx += col2im(dcol)
 *            A 1x1 stride-1 pad-0 conv needs no im2col here: col_n is x_n.
 *
 * Memory: the column buffer (and, MERGED, the permuted output or gradient)
 * stays within ctx->conv_col_bytes (default CONV_COL_BUDGET_BYTES) and the
 * device's largest allocation: the batch runs in chunks of as many samples
 * as fit; when not even one sample's columns fit, one sample at a time in
 * ranges of output pixels (at least CONV_COL_MIN_PIXELS). One sample per
 * chunk is the same work in either layout, so it runs STRIDED (no
 * permutes). The buffers come from the pool and go back to it once the op
 * has enqueued its work (the queue is in order), so one set per shape
 * exists at a time, not one per layer.
 *
 * Deterministic: every sum has a fixed order (dW accumulates chunk after
 * chunk with beta = 1; col2im is a gather; the GEMM algorithms are
 * deterministic). */
#include <limits.h>
#include <stdio.h>

#include "clcore/gemm.h"
#include "clcore/launch.h"
#include "clcore/ops_conv_impl.h"
#include "clcore/program.h"

#define CONV_COL_BUDGET_BYTES ((size_t)64 << 20)
#define CONV_COL_MIN_PIXELS 64

typedef clsynth_conv_geom conv_geom;

/* How one conv runs: see the file comment. */
typedef struct plan {
    int layout;     /* CONV2D_GEMM_MERGED (ns >= 2) or CONV2D_GEMM_STRIDED */
    bool plain;     /* 1x1, stride 1, pad 0 */
    bool direct_x;  /* STRIDED and plain: x is the column matrix, no buffer */
    int ns;         /* samples per chunk */
    size_t pc;      /* output pixels per chunk (P unless ns == 1 and one sample does not fit) */
    size_t col;     /* floats of the column buffer */
    size_t tmp;     /* floats of the permuted output / gradient (MERGED) */
} plan;

/* ctx NULL: the default budget, no allocation limit */
static plan make_plan(const clsynth_ctx *ctx, const conv_geom *g, int layout)
{
    const size_t rows = (size_t)g->Cin * (size_t)(g->KH * g->KW), P = (size_t)g->OH * (size_t)g->OW;
    size_t cap = (ctx && ctx->conv_col_bytes ? ctx->conv_col_bytes : CONV_COL_BUDGET_BYTES) / sizeof(float);
    size_t alloc = ctx && ctx->dev.max_alloc > 0 ? (size_t)(ctx->dev.max_alloc / sizeof(float)) : SIZE_MAX;
    const size_t big = rows > (size_t)g->Cout ? rows : (size_t)g->Cout;
    if (alloc > (size_t)INT_MAX)
        alloc = (size_t)INT_MAX; /* the kernels index with int */
    plan p = { CONV2D_GEMM_STRIDED, g->KH == 1 && g->KW == 1 && g->stride == 1 && g->pad == 0, false, 1, P, 0, 0 };
    if (layout == CONV2D_GEMM_MERGED) {
        size_t ns = cap / ((rows + (size_t)g->Cout) * P);
        if (ns > alloc / (big * P))
            ns = alloc / (big * P);
        if (ns > (size_t)g->N)
            ns = (size_t)g->N;
        if (ns >= 2) {
            p.layout = CONV2D_GEMM_MERGED;
            p.ns = (int)ns;
            p.col = rows * P * ns;
            p.tmp = (size_t)g->Cout * P * ns;
            return p;
        }
    }
    if (p.plain) {
        p.direct_x = true;
        p.ns = g->N;
        return p;
    }
    if (rows * P <= cap && rows * P <= alloc) {
        size_t ns = cap / (rows * P);
        if (ns > alloc / (rows * P))
            ns = alloc / (rows * P);
        p.ns = ns < (size_t)g->N ? (int)ns : g->N;
        p.col = rows * P * (size_t)p.ns;
        return p;
    }
    size_t pc = (cap < alloc ? cap : alloc) / rows;
    if (pc < CONV_COL_MIN_PIXELS)
        pc = CONV_COL_MIN_PIXELS;
    p.pc = pc < P ? pc : P;
    p.col = rows * p.pc;
    return p;
}

int clsynth_conv_gemm_products(const clsynth_ctx *ctx, const clsynth_conv_shape *s, int layout,
                               clsynth_matmul_shape out[3], int count[3])
{
    const conv_geom g = { s->n, s->cin, s->h, s->w, s->cout, s->kh, s->kw,
                          clsynth_conv_out_size(s->h, s->kh, s->stride, s->pad),
                          clsynth_conv_out_size(s->w, s->kw, s->stride, s->pad), s->stride, s->pad };
    const plan p = make_plan(ctx, &g, layout);
    const int rows = s->cin * s->kh * s->kw, P = g.OH * g.OW;
    const int chunks = (s->n + p.ns - 1) / p.ns * (int)(((size_t)P + p.pc - 1) / p.pc);
    if (p.layout == CONV2D_GEMM_MERGED) {
        const int wide = p.ns * P;
        out[0] = (clsynth_matmul_shape){ s->cout, wide, rows, 0, 0, 1, 0 }; /* yT = W col */
        out[1] = (clsynth_matmul_shape){ s->cout, rows, wide, 0, 1, 1, 0 }; /* dW += dyT col^T */
        out[2] = (clsynth_matmul_shape){ rows, wide, s->cout, 1, 0, 1, 0 }; /* dcol = W^T dyT */
    } else {
        const int pc = (int)p.pc, sum = p.ns > 1;
        out[0] = (clsynth_matmul_shape){ s->cout, pc, rows, 0, 0, p.ns, 0 };   /* y_n = W col_n */
        out[1] = (clsynth_matmul_shape){ s->cout, rows, pc, 0, 1, p.ns, sum }; /* dW += sum dy_n col_n^T */
        out[2] = (clsynth_matmul_shape){ rows, pc, s->cout, 1, 0, p.ns, 0 };   /* dcol_n = W^T dy_n */
    }
    for (int i = 0; i < 3; i++)
        count[i] = chunks;
    return 3;
}

/* ------------------------------------------------------------ kernels */

/* Work-items per im2col / col2im row (the COL_ROW_ITEMS tunable; 0, as in a configuration
 * without it: one per pixel). */
static size_t row_items(const clsynth_conv_call *c)
{
    const int v = c->cfg->v[CONV2D_COL_ROW_ITEMS];
    return v > 0 ? (size_t)v : (size_t)INT_MAX;
}

/* col(r, n, p) for samples [n0, n0+ns), pixels [p0, p0+P) */
static int launch_im2col(clsynth_ctx *ctx, const conv_geom *g, const clsynth_tensor *x, int n0, int ns, cl_mem col,
                         size_t p0, size_t P, size_t ld_r, size_t ld_n, size_t row_items)
{
    cl_kernel k = clsynth_kernel_get(ctx, "im2col.cl", "im2col", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "im2col");
    clsynth_arg_mem(&a, x->mem);
    clsynth_arg_int(&a, (int)(x->off + (size_t)n0 * (size_t)g->Cin * (size_t)g->H * (size_t)g->W));
    clsynth_arg_mem(&a, col);
    clsynth_arg_int(&a, 0);
    CLSYNTH_ARG_INTS(&a, g->Cin, g->H, g->W, g->OW, g->KH, g->KW, g->stride, g->pad, (int)p0, (int)P, (int)ld_r,
                     (int)ld_n, ns);
    const size_t ow = (size_t)g->OW, out_rows = (p0 + P - 1) / ow - p0 / ow + 1;
    size_t global[3] = { row_items, out_rows, (size_t)g->Cin * (size_t)(g->KH * g->KW) * (size_t)ns };
    if (global[0] > ow)
        global[0] = ow;
    return clsynth_launch(&a, 3, global, NULL, 0, NULL);
}

/* dx(n0 + n) += col2im(col(., n, .)), or = when !accumulate (the launch writes
 * every element of those samples' dx, whatever the pixel range) */
static int launch_col2im(clsynth_ctx *ctx, const conv_geom *g, cl_mem col, clsynth_tensor *dx, int n0, int ns,
                         size_t p0, size_t P, size_t ld_r, size_t ld_n, size_t row_items, bool accumulate)
{
    cl_kernel k = clsynth_kernel_get(ctx, "im2col.cl", "col2im_acc", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "col2im_acc");
    clsynth_arg_mem(&a, col);
    clsynth_arg_int(&a, 0);
    clsynth_arg_mem(&a, dx->mem);
    clsynth_arg_int(&a, (int)(dx->off + (size_t)n0 * (size_t)g->Cin * (size_t)g->H * (size_t)g->W));
    CLSYNTH_ARG_INTS(&a, g->Cin, g->H, g->W, g->OH, g->OW, g->KH, g->KW, g->stride, g->pad, (int)p0, (int)P,
                     (int)ld_r, (int)ld_n, ns, accumulate);
    size_t global[3] = { row_items < (size_t)g->W ? row_items : (size_t)g->W, (size_t)g->H,
                         (size_t)g->Cin * (size_t)ns };
    return clsynth_launch(&a, 3, global, NULL, 0, NULL);
}

/* dst (D1, D0, D2) = src (D0, D1, D2) permuted (+ bias(i) of the D0 index) */
static int launch_swap01(clsynth_ctx *ctx, cl_mem src, size_t src_off, cl_mem dst, size_t dst_off, int D0, int D1,
                         int D2, const clsynth_tensor *bias)
{
    cl_kernel k = clsynth_kernel_get(ctx, "im2col.cl", "swap01", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "swap01");
    clsynth_arg_mem(&a, src);
    clsynth_arg_int(&a, (int)src_off);
    clsynth_arg_mem(&a, dst);
    clsynth_arg_int(&a, (int)dst_off);
    CLSYNTH_ARG_INTS(&a, D0, D1, D2);
    clsynth_arg_mem(&a, bias ? bias->mem : src);
    CLSYNTH_ARG_INTS(&a, bias ? (int)bias->off : 0, bias != NULL);
    size_t global[3] = { (size_t)D2, (size_t)D1, (size_t)D0 };
    return clsynth_launch(&a, 3, global, NULL, 0, NULL);
}

/* ------------------------------------------------------------ buffers */

typedef struct bufs {
    struct clsynth_block *col, *tmp;
} bufs;

static int get_bufs(clsynth_ctx *ctx, const plan *p, bufs *b)
{
    b->col = b->tmp = NULL;
    if (p->col && !(b->col = clsynth_pool_get(ctx, p->col * sizeof(float), "conv2d im2col column buffer")))
        return -1;
    if (p->tmp && !(b->tmp = clsynth_pool_get(ctx, p->tmp * sizeof(float), "conv2d GEMM output (permuted)"))) {
        clsynth_pool_put(ctx, b->col);
        return -1;
    }
    return 0;
}

static void put_bufs(clsynth_ctx *ctx, bufs *b)
{
    if (b->col)
        clsynth_pool_put(ctx, b->col);
    if (b->tmp)
        clsynth_pool_put(ctx, b->tmp);
}

static clsynth_gemm_mat mat(cl_mem m, size_t off, size_t ld, size_t stride)
{
    clsynth_gemm_mat x = { m, off, ld, stride };
    return x;
}

/* ------------------------------------------------------------ forward */

static int forward_chunk(clsynth_ctx *ctx, const clsynth_conv_call *c, const plan *p, const bufs *b, int n0, int ns,
                         size_t p0, size_t pc)
{
    const conv_geom *g = &c->g;
    const size_t rows = (size_t)g->Cin * (size_t)(g->KH * g->KW), P = (size_t)g->OH * (size_t)g->OW;
    const size_t hw = (size_t)g->H * (size_t)g->W, cout = (size_t)g->Cout;
    const clsynth_tensor *x = c->x, *w = c->w, *y = c->y;
    cl_mem col = b->col ? clsynth_block_mem(b->col) : NULL;
    if (p->layout == CONV2D_GEMM_MERGED) {
        /* col (rows, ns*P); yT (Cout, ns*P) = W col; y = swap01(yT) + b */
        const size_t wide = (size_t)ns * P;
        cl_mem tmp = clsynth_block_mem(b->tmp);
        const clsynth_gemm_op op = { .m = cout, .n = wide, .k = rows, .alpha = 1.0f, .beta = 0.0f,
                                     .a = mat(w->mem, w->off, rows, 0), .b = mat(col, 0, wide, 0),
                                     .c = mat(tmp, 0, wide, 0), .batch = 1 };
        if (launch_im2col(ctx, g, x, n0, ns, col, 0, P, wide, P, row_items(c)) || clsynth_gemm(ctx, c->what, &op, c->force))
            return -1;
        return launch_swap01(ctx, tmp, 0, y->mem, y->off + (size_t)n0 * cout * P, g->Cout, ns, (int)P, c->b);
    }
    /* y_n[:, p0:p0+pc] (Cout, pc) = W (Cout, rows) col_n (rows, pc) */
    clsynth_gemm_op op = { .m = cout, .n = pc, .k = rows, .alpha = 1.0f, .beta = 0.0f,
                           .a = mat(w->mem, w->off, rows, 0),
                           .c = mat(y->mem, y->off + (size_t)n0 * cout * P + p0, P, cout * P), .batch = (size_t)ns,
                           .bias = c->b ? c->b->mem : NULL, .bias_off = c->b ? c->b->off : 0 };
    if (p->direct_x) {
        op.b = mat(x->mem, x->off + (size_t)n0 * rows * hw, hw, rows * hw);
    } else {
        op.b = mat(col, 0, pc, rows * pc);
        if (launch_im2col(ctx, g, x, n0, ns, col, p0, pc, pc, rows * pc, row_items(c)))
            return -1;
    }
    return clsynth_gemm(ctx, c->what, &op, c->force);
}

static int gemm_forward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    const conv_geom *g = &c->g;
    const size_t P = (size_t)g->OH * (size_t)g->OW;
    const plan p = make_plan(ctx, g, c->cfg->v[CONV2D_GEMM_BATCH]);
    bufs b;
    if (get_bufs(ctx, &p, &b))
        return -1;
    int rc = 0;
    for (int n0 = 0; n0 < g->N && !rc; n0 += p.ns)
        for (size_t p0 = 0; p0 < P && !rc; p0 += p.pc)
            rc = forward_chunk(ctx, c, &p, &b, n0, g->N - n0 < p.ns ? g->N - n0 : p.ns, p0,
                               P - p0 < p.pc ? P - p0 : p.pc);
    put_bufs(ctx, &b);
    return rc;
}

/* ------------------------------------------------------------ backward */

static int backward_merged(clsynth_ctx *ctx, const clsynth_conv_call *c, const bufs *b, int n0, int ns)
{
    const conv_geom *g = &c->g;
    const size_t rows = (size_t)g->Cin * (size_t)(g->KH * g->KW), P = (size_t)g->OH * (size_t)g->OW;
    const size_t cout = (size_t)g->Cout, wide = (size_t)ns * P;
    cl_mem col = clsynth_block_mem(b->col), tmp = clsynth_block_mem(b->tmp);
    /* dyT (Cout, ns*P) */
    if (launch_swap01(ctx, c->dy->mem, c->dy->off + (size_t)n0 * cout * P, tmp, 0, ns, g->Cout, (int)P, NULL))
        return -1;
    if (c->dw) {
        /* dW (Cout, rows) += dyT (Cout, ns*P) col^T (ns*P, rows) */
        const clsynth_gemm_op op = { .tb = true, .m = cout, .n = rows, .k = wide, .alpha = 1.0f, .beta = 1.0f,
                                     .a = mat(tmp, 0, wide, 0), .b = mat(col, 0, wide, 0),
                                     .c = mat(c->dw->mem, c->dw->off, rows, 0), .batch = 1 };
        if (launch_im2col(ctx, g, c->x, n0, ns, col, 0, P, wide, P, row_items(c)) || clsynth_gemm(ctx, c->what, &op, c->force))
            return -1;
    }
    if (c->dx) {
        /* dcol (rows, ns*P) = W^T (rows, Cout) dyT (Cout, ns*P); dx += col2im(dcol) */
        const clsynth_gemm_op op = { .ta = true, .m = rows, .n = wide, .k = cout, .alpha = 1.0f, .beta = 0.0f,
                                     .a = mat(c->w->mem, c->w->off, rows, 0), .b = mat(tmp, 0, wide, 0),
                                     .c = mat(col, 0, wide, 0), .batch = 1 };
        if (clsynth_gemm(ctx, c->what, &op, c->force) || launch_col2im(ctx, g, col, c->dx, n0, ns, 0, P, wide, P, row_items(c), !c->dx_fresh))
            return -1;
    }
    return 0;
}

static int backward_strided(clsynth_ctx *ctx, const clsynth_conv_call *c, const plan *p, const bufs *b, int n0,
                            int ns, size_t p0, size_t pc)
{
    const conv_geom *g = &c->g;
    const size_t rows = (size_t)g->Cin * (size_t)(g->KH * g->KW), P = (size_t)g->OH * (size_t)g->OW;
    const size_t hw = (size_t)g->H * (size_t)g->W, cout = (size_t)g->Cout;
    cl_mem col = b->col ? clsynth_block_mem(b->col) : NULL;
    /* dy_n[:, p0:p0+pc] (Cout, pc) */
    const clsynth_gemm_mat dy = mat(c->dy->mem, c->dy->off + (size_t)n0 * cout * P + p0, P, cout * P);
    if (c->dw) {
        /* dW (Cout, rows) += sum_n dy_n (Cout, pc) col_n^T (pc, rows) */
        clsynth_gemm_op op = { .tb = true, .m = cout, .n = rows, .k = pc, .alpha = 1.0f, .beta = 1.0f, .a = dy,
                               .c = mat(c->dw->mem, c->dw->off, rows, 0), .batch = (size_t)ns, .sum_batch = true };
        if (p->direct_x) {
            op.b = mat(c->x->mem, c->x->off + (size_t)n0 * rows * hw, hw, rows * hw);
        } else {
            op.b = mat(col, 0, pc, rows * pc);
            if (launch_im2col(ctx, g, c->x, n0, ns, col, p0, pc, pc, rows * pc, row_items(c)))
                return -1;
        }
        if (clsynth_gemm(ctx, c->what, &op, c->force))
            return -1;
    }
    if (c->dx) {
        /* dcol_n (rows, pc) = W^T (rows, Cout) dy_n; dx_n += col2im(dcol_n)
         * (a plain conv: dx_n += W^T dy_n straight away) */
        clsynth_gemm_op op = { .ta = true, .m = rows, .n = pc, .k = cout, .alpha = 1.0f,
                               .a = mat(c->w->mem, c->w->off, rows, 0), .b = dy, .batch = (size_t)ns };
        if (p->direct_x) {
            op.beta = c->dx_fresh ? 0.0f : 1.0f;
            op.c = mat(c->dx->mem, c->dx->off + (size_t)n0 * rows * hw, hw, rows * hw);
            return clsynth_gemm(ctx, c->what, &op, c->force);
        }
        op.beta = 0.0f;
        op.c = mat(col, 0, pc, rows * pc);
        if (clsynth_gemm(ctx, c->what, &op, c->force) || launch_col2im(ctx, g, col, c->dx, n0, ns, p0, pc, pc, rows * pc, row_items(c),
                                                                      !c->dx_fresh || p0 > 0))
            return -1;
    }
    return 0;
}

static int gemm_backward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    const conv_geom *g = &c->g;
    const size_t P = (size_t)g->OH * (size_t)g->OW;
    const plan p = make_plan(ctx, g, c->cfg->v[CONV2D_GEMM_BATCH]);
    bufs b;
    if (get_bufs(ctx, &p, &b))
        return -1;
    int rc = 0;
    for (int n0 = 0; n0 < g->N && !rc; n0 += p.ns) {
        const int ns = g->N - n0 < p.ns ? g->N - n0 : p.ns;
        if (p.layout == CONV2D_GEMM_MERGED) {
            rc = backward_merged(ctx, c, &b, n0, ns);
            continue;
        }
        for (size_t p0 = 0; p0 < P && !rc; p0 += p.pc)
            rc = backward_strided(ctx, c, &p, &b, n0, ns, p0, P - p0 < p.pc ? P - p0 : p.pc);
    }
    put_bufs(ctx, &b);
    return rc;
}

const clsynth_conv_impl clsynth_conv_impl_gemm = { "im2col_gemm", gemm_forward, gemm_backward, false, true };
