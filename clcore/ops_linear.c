/* The fully connected layer: one GEMM per pass over the whole batch. */
#include <stdio.h>

#include "clcore/clblast_util.h"
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
        if (!db || clsynth_conv_bias_grad(ctx, dy, db))
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
    if (bias && clsynth_conv_bias_add(ctx, y, bias))
        return NULL;
    clsynth_tensor *ins[3] = { x, w, bias };
    clsynth_node *nd = clsynth_tape_record(ctx, "linear", linear_backward, y, ins, 3);
    (void)nd;
    return ctx->failed ? NULL : y;
}
