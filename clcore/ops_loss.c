/* Reductions and losses (kernels/reduce.cl via clcore/reduce.c). Every loss is a
 * deterministic two-stage tree reduction to a (1,1,1,1) tensor; backward
 * kernels read d(loss) from the device, so nothing waits on the host except
 * clsynth_scalar and the label check of clsynth_cross_entropy. */
#include <limits.h>
#include <stdio.h>

#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/program.h"
#include "clcore/reduce.h"

#define RD_FILE "reduce.cl"

static int launch_1d(clsynth_args *a, size_t n) { return clsynth_launch(a, 1, &n, NULL, 0, NULL); }

/* ---- losses of the form alpha * sum_i map(x_i, y_i) ---- */

static int map_loss_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *y = nd->n_in > 1 ? nd->in[1] : nd->in[0];
    int want_x = (x->flags & CLSYNTH_T_REQUIRES_GRAD) != 0;
    int want_y = nd->n_in > 1 && (y->flags & CLSYNTH_T_REQUIRES_GRAD) != 0;
    /* want: 0 none, 1 store (fresh: no zero fill), 2 add; x before y, as the
     * kernel writes them (x given twice: stored, then added to) */
    int acc = 0;
    clsynth_tensor *gx = want_x ? clsynth_grad_for_write(ctx, x, &acc) : x;
    want_x = want_x ? 1 + acc : 0;
    clsynth_tensor *gy = want_y ? clsynth_grad_for_write(ctx, y, &acc) : x;
    want_y = want_y ? 1 + acc : 0;
    if (!gx || !gy)
        return -1;
    static const char *kname = "map_backward";
    cl_kernel k = clsynth_kernel_get(ctx, RD_FILE, kname, NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_tensor(&a, gx);
    clsynth_arg_int(&a, want_x);
    clsynth_arg_tensor(&a, gy);
    clsynth_arg_int(&a, want_y);
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, y);
    clsynth_arg_tensor(&a, nd->out->grad);
    clsynth_arg_int(&a, nd->iarg[0]);
    clsynth_arg_float(&a, nd->farg[0]);
    clsynth_arg_float(&a, nd->farg[1]);
    clsynth_arg_int(&a, (int)x->numel);
    return launch_1d(&a, x->numel);
}

/* loss (1,1,1,1) = alpha * sum map(x, y, s); y NULL for one-input maps. */
static clsynth_tensor *map_loss(clsynth_ctx *ctx, const char *name, clsynth_tensor *x, clsynth_tensor *y,
                                clsynth_reduce_map map, float s, float alpha)
{
    if (ctx->failed || !x)
        return NULL;
    if (y && !clsynth_same_shape(x, y)) {
        char bx[128], by[128];
        clsynth_ctx_fail(ctx, "%s: %s and %s must have the same shape", name, clsynth_tensor_describe(x, bx, sizeof bx),
                         clsynth_tensor_describe(y, by, sizeof by));
        return NULL;
    }
    clsynth_tensor *out = clsynth_tensor_new(ctx, name, 1, 1, 1, 1); /* (1,1,1,1) */
    if (!out || clsynth_reduce_to(ctx, x, y, map, s, out, alpha, 0.0f))
        return NULL;
    clsynth_tensor *in[2] = { x, y };
    clsynth_node *nd = clsynth_tape_record(ctx, name, map_loss_backward, out, in, y ? 2 : 1);
    if (nd) {
        nd->iarg[0] = (int)map;
        nd->farg[0] = s;
        nd->farg[1] = alpha;
    }
    return ctx->failed ? NULL : out;
}

static float inv_numel(const clsynth_tensor *x) { return x ? (float)(1.0 / (double)x->numel) : 0.0f; }

clsynth_tensor *clsynth_sum(clsynth_ctx *ctx, clsynth_tensor *x)
{
    return map_loss(ctx, "sum", x, NULL, CLSYNTH_MAP_ID, 0.0f, 1.0f);
}

clsynth_tensor *clsynth_mean(clsynth_ctx *ctx, clsynth_tensor *x)
{
    return map_loss(ctx, "mean", x, NULL, CLSYNTH_MAP_ID, 0.0f, inv_numel(x));
}

clsynth_tensor *clsynth_hinge_d(clsynth_ctx *ctx, clsynth_tensor *x, bool real)
{
    /* real: relu(1 - x); fake: relu(1 + x) = relu(1 - (-1) x) */
    return map_loss(ctx, real ? "hinge_d_real" : "hinge_d_fake", x, NULL, CLSYNTH_MAP_HINGE, real ? 1.0f : -1.0f,
                    inv_numel(x));
}

clsynth_tensor *clsynth_hinge_g(clsynth_ctx *ctx, clsynth_tensor *x)
{
    return map_loss(ctx, "hinge_g", x, NULL, CLSYNTH_MAP_ID, 0.0f, -inv_numel(x));
}

clsynth_tensor *clsynth_l1_loss(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b)
{
    if (!b)
        return NULL;
    return map_loss(ctx, "l1_loss", a, b, CLSYNTH_MAP_ABSDIFF, 0.0f, inv_numel(a));
}

clsynth_tensor *clsynth_mse_loss(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b)
{
    if (!b)
        return NULL;
    return map_loss(ctx, "mse_loss", a, b, CLSYNTH_MAP_SQDIFF, 0.0f, inv_numel(a));
}

clsynth_tensor *clsynth_kl_loss(clsynth_ctx *ctx, clsynth_tensor *mu, clsynth_tensor *logvar)
{
    if (!logvar)
        return NULL;
    return map_loss(ctx, "kl_loss", mu, logvar, CLSYNTH_MAP_KL, 0.0f, -0.5f);
}

/* ---- channel dot ---- */

static int channel_dot_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *a = nd->in[0], *b = nd->in[1];
    int want_a = (a->flags & CLSYNTH_T_REQUIRES_GRAD) != 0, want_b = (b->flags & CLSYNTH_T_REQUIRES_GRAD) != 0;
    /* as map_loss_backward: 0 none, 1 store, 2 add; a before b */
    int acc = 0;
    clsynth_tensor *ga = want_a ? clsynth_grad_for_write(ctx, a, &acc) : a;
    want_a = want_a ? 1 + acc : 0;
    clsynth_tensor *gb = want_b ? clsynth_grad_for_write(ctx, b, &acc) : a;
    want_b = want_b ? 1 + acc : 0;
    if (!ga || !gb)
        return -1;
    static const char *kname = "channel_dot_backward";
    cl_kernel k = clsynth_kernel_get(ctx, RD_FILE, kname, NULL);
    clsynth_args ar = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_tensor(&ar, ga);
    clsynth_arg_int(&ar, want_a);
    clsynth_arg_tensor(&ar, gb);
    clsynth_arg_int(&ar, want_b);
    clsynth_arg_tensor(&ar, a);
    clsynth_arg_tensor(&ar, b);
    clsynth_arg_tensor(&ar, nd->out->grad);
    CLSYNTH_ARG_INTS(&ar, a->c, (int)CLSYNTH_HW(a), (int)a->numel);
    return launch_1d(&ar, a->numel);
}

clsynth_tensor *clsynth_channel_dot(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b)
{
    if (ctx->failed || !a || !b)
        return NULL;
    if (!clsynth_same_shape(a, b)) {
        char ba[128], bb[128];
        clsynth_ctx_fail(ctx, "channel_dot: %s and %s must have the same shape",
                         clsynth_tensor_describe(a, ba, sizeof ba), clsynth_tensor_describe(b, bb, sizeof bb));
        return NULL;
    }
    clsynth_tensor *y = clsynth_tensor_new(ctx, "channel_dot", a->n, 1, a->h, a->w); /* (N,1,H,W) */
    if (!y || clsynth_reduce_to(ctx, a, b, CLSYNTH_MAP_PROD, 0.0f, y, 1.0f, 0.0f))
        return NULL;
    clsynth_tensor *in[2] = { a, b };
    clsynth_tape_record(ctx, "channel_dot", channel_dot_backward, y, in, 2);
    return ctx->failed ? NULL : y;
}

/* ---- cross-entropy ---- */

static int ce_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *z = nd->in[0], *lab = nd->saved[0], *lse = nd->saved[1], *stats = nd->saved[2];
    clsynth_tensor *gz = clsynth_grad_of(ctx, z);
    if (!gz)
        return -1;
    static const char *kname = "ce_backward";
    cl_kernel k = clsynth_kernel_get(ctx, RD_FILE, kname, NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_tensor(&a, gz);
    clsynth_arg_tensor(&a, z);
    clsynth_arg_tensor(&a, lab);
    clsynth_arg_tensor(&a, lse);
    clsynth_arg_tensor(&a, nd->out->grad);
    clsynth_arg_tensor(&a, stats);
    CLSYNTH_ARG_INTS(&a, z->n, z->c, (int)CLSYNTH_HW(z));
    clsynth_arg_float(&a, (float)nd->iarg[0]);
    return launch_1d(&a, z->numel);
}

/* Labels are checked on the device: ce_forward records the smallest offending
 * pixel with an integer atomic_min into a one-int flag, which is read back
 * (one blocking 4-byte read per call). */
clsynth_tensor *clsynth_cross_entropy(clsynth_ctx *ctx, clsynth_tensor *logits, clsynth_tensor *labels, int ignore)
{
    if (ctx->failed || !logits || !labels)
        return NULL;
    char bz[128], bl[128];
    if (labels->n != logits->n || labels->c != 1 || labels->h != logits->h || labels->w != logits->w) {
        clsynth_ctx_fail(ctx, "cross_entropy: labels %s must be (N,1,H,W) for logits %s",
                         clsynth_tensor_describe(labels, bl, sizeof bl), clsynth_tensor_describe(logits, bz, sizeof bz));
        return NULL;
    }
    const int N = logits->n, K = logits->c, HW = (int)CLSYNTH_HW(logits);
    clsynth_tensor *px = clsynth_tensor_new(ctx, "ce_pixels", N, 2, logits->h, logits->w);  /* (N,2,H,W) loss, counted */
    clsynth_tensor *lse = clsynth_tensor_new(ctx, "ce_lse", N, 1, logits->h, logits->w);   /* (N,1,H,W) */
    clsynth_tensor *stats = clsynth_tensor_new(ctx, "ce_stats", 1, 2, 1, 1);                /* (sum, count) */
    clsynth_tensor *flag = clsynth_tensor_new(ctx, "ce_bad_label", 1, 1, 1, 1);             /* one int */
    clsynth_tensor *out = clsynth_tensor_new(ctx, "cross_entropy", 1, 1, 1, 1);
    if (!px || !lse || !stats || !flag || !out)
        return NULL;
    const cl_int none = INT_MAX;
    cl_int rc = clEnqueueFillBuffer(ctx->queue, flag->mem, &none, sizeof none, flag->off * sizeof(float),
                                    sizeof none, 0, NULL, NULL);
    if (rc != CL_SUCCESS) {
        clsynth_cl_fail(ctx, "clEnqueueFillBuffer", "ce_forward flag", rc);
        return NULL;
    }
    static const char *kname = "ce_forward";
    cl_kernel k = clsynth_kernel_get(ctx, RD_FILE, kname, NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_tensor(&a, logits);
    clsynth_arg_tensor(&a, labels);
    clsynth_arg_tensor(&a, px);
    clsynth_arg_tensor(&a, lse);
    clsynth_arg_tensor(&a, flag); /* read as one int */
    CLSYNTH_ARG_INTS(&a, N, K, HW);
    clsynth_arg_float(&a, (float)ignore);
    if (launch_1d(&a, (size_t)N * (size_t)HW))
        return NULL;
    cl_int bad = INT_MAX;
    rc = clEnqueueReadBuffer(ctx->queue, flag->mem, CL_TRUE, flag->off * sizeof(float), sizeof bad, &bad, 0, NULL,
                             NULL);
    if (rc != CL_SUCCESS) {
        clsynth_cl_fail(ctx, "clEnqueueReadBuffer", "ce_forward flag", rc);
        return NULL;
    }
    if (bad != INT_MAX) {
        float v = 0.0f;
        rc = clEnqueueReadBuffer(ctx->queue, labels->mem, CL_TRUE, (labels->off + (size_t)bad) * sizeof(float),
                                 sizeof v, &v, 0, NULL, NULL);
        if (rc != CL_SUCCESS) {
            clsynth_cl_fail(ctx, "clEnqueueReadBuffer", "cross_entropy label", rc);
            return NULL;
        }
        clsynth_ctx_fail(ctx, "cross_entropy: labels %s hold value %g at (n %d, h %d, w %d): not an integer in "
                              "[0, %d) and not the ignore value %d", clsynth_tensor_describe(labels, bl, sizeof bl),
                         (double)v, bad / HW, (bad % HW) / logits->w, bad % logits->w, K, ignore);
        return NULL;
    }
    if (clsynth_reduce_sum_to(ctx, px, stats, 1.0f, 0.0f))
        return NULL;
    static const char *kfin = "ce_finalize";
    k = clsynth_kernel_get(ctx, RD_FILE, kfin, NULL);
    a = clsynth_args_begin(ctx, k, kfin);
    clsynth_arg_tensor(&a, stats);
    clsynth_arg_tensor(&a, out);
    if (launch_1d(&a, 1))
        return NULL;
    clsynth_tensor *in[1] = { logits };
    clsynth_node *nd = clsynth_tape_record(ctx, "cross_entropy", ce_backward, out, in, 1);
    if (nd) {
        nd->saved[0] = labels;
        nd->saved[1] = lse;
        nd->saved[2] = stats;
        nd->iarg[0] = ignore;
    }
    return ctx->failed ? NULL : out;
}

int clsynth_scalar(clsynth_ctx *ctx, const clsynth_tensor *t, float *out)
{
    if (ctx->failed || !t)
        return -1;
    if (t->numel != 1) {
        char bt[128];
        return clsynth_ctx_fail(ctx, "scalar: %s has %zu elements, not 1", clsynth_tensor_describe(t, bt, sizeof bt),
                                t->numel);
    }
    return clsynth_tensor_download(ctx, t, out);
}
