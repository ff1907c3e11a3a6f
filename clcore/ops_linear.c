/* The fully connected layer: one GEMM per pass over the whole batch. */
#include <stdio.h>

#include "clcore/gemm.h"
#include "clcore/kdef.h"
#include "clcore/ops.h"
#include "clcore/ops_conv_impl.h"

static int linear_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *dy = nd->out->grad;
    const size_t N = (size_t)x->n, in = (size_t)x->c * CLSYNTH_HW(x), out = (size_t)w->n;
    char what[160], xd[80];
    snprintf(what, sizeof what, "linear backward of %s", clsynth_tensor_describe(x, xd, sizeof xd));
    if (x->flags & CLSYNTH_T_REQUIRES_GRAD) {
        /* dx (N, In) += dy (N, Out) W (Out, In) */
        clsynth_tensor *dx = clsynth_grad_of(ctx, x);
        const clsynth_gemm_op op = { .m = N, .n = in, .k = out, .alpha = 1.0f, .beta = 1.0f,
                                     .a = { dy->mem, dy->off, out, 0 }, .b = { w->mem, w->off, in, 0 },
                                     .c = { dx ? dx->mem : NULL, dx ? dx->off : 0, in, 0 }, .batch = 1 };
        if (!dx || clsynth_gemm(ctx, what, &op, nd->force))
            return -1;
    }
    if (w->flags & CLSYNTH_T_REQUIRES_GRAD) {
        /* dW (Out, In) += dy^T (Out, N) x (N, In) */
        clsynth_tensor *dw = clsynth_grad_of(ctx, w);
        const clsynth_gemm_op op = { .ta = true, .m = out, .n = in, .k = N, .alpha = 1.0f, .beta = 1.0f,
                                     .a = { dy->mem, dy->off, out, 0 }, .b = { x->mem, x->off, in, 0 },
                                     .c = { dw ? dw->mem : NULL, dw ? dw->off : 0, in, 0 }, .batch = 1 };
        if (!dw || clsynth_gemm(ctx, what, &op, nd->force))
            return -1;
    }
    if (b && (b->flags & CLSYNTH_T_REQUIRES_GRAD)) {
        clsynth_tensor *db = clsynth_grad_of(ctx, b);
        if (!db || clsynth_conv_bias_grad(ctx, dy, db))
            return -1;
    }
    return 0;
}

clsynth_tensor *clsynth_linear_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w, clsynth_tensor *bias,
                                      clsynth_kforce *force)
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
    const clsynth_gemm_op op = { .tb = true, .m = N, .n = out, .k = in, .alpha = 1.0f, .beta = 0.0f,
                                 .a = { x->mem, x->off, in, 0 }, .b = { w->mem, w->off, in, 0 },
                                 .c = { y->mem, y->off, out, 0 }, .batch = 1 };
    if (clsynth_gemm(ctx, what, &op, force))
        return NULL;
    if (bias && clsynth_conv_bias_add(ctx, y, bias))
        return NULL;
    clsynth_tensor *ins[3] = { x, w, bias };
    clsynth_node *nd = clsynth_tape_record(ctx, "linear", linear_backward, y, ins, 3);
    if (nd)
        nd->force = force;
    return ctx->failed ? NULL : y;
}

clsynth_tensor *clsynth_linear(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w, clsynth_tensor *bias)
{
    return clsynth_linear_forced(ctx, x, w, bias, NULL);
}
