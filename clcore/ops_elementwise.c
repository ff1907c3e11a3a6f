/* Elementwise ops: broadcasting add/sub/mul, scalar ops, activations, channel
 * concat/slice and reshape (kernels/elementwise.cl). Gradients of broadcast
 * inputs are summed over the broadcast dims by clcore/reduce.c (deterministic). */
#include <stdio.h>
#include <stdlib.h>

#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/program.h"
#include "clcore/reduce.h"

#define EW_FILE "elementwise.cl"

enum { OP_ADD = 0, OP_SUB = 1, OP_MUL = 2 };
enum { U_SCALE = 0, U_ADD = 1, U_RELU = 2, U_LEAKY = 3, U_TANH = 4, U_SIGMOID = 5, U_EXP = 6 };

static int launch_1d(clsynth_args *a, size_t n) { return clsynth_launch(a, 1, &n, NULL, 0, NULL); }

/* Element strides of t read at the indices of an output of shape out: 0 in broadcast dims. */
static void bcast_strides(const clsynth_tensor *t, int s[4])
{
    s[3] = t->w == 1 ? 0 : 1;
    s[2] = t->h == 1 ? 0 : t->w;
    s[1] = t->c == 1 ? 0 : t->h * t->w;
    s[0] = t->n == 1 ? 0 : t->c * t->h * t->w;
}

static void arg_strides(clsynth_args *a, const clsynth_tensor *t)
{
    int s[4];
    bcast_strides(t, s);
    for (int i = 0; i < 4; i++)
        clsynth_arg_int(a, s[i]);
}

/* y = a op b, y has the broadcast shape. */
static int launch_binary(clsynth_ctx *ctx, const clsynth_tensor *a, const clsynth_tensor *b, clsynth_tensor *y,
                         int op)
{
    if (clsynth_same_shape(a, y) && clsynth_same_shape(b, y)) {
        cl_kernel k = clsynth_kernel_get(ctx, EW_FILE, "ew_binary_same", NULL);
        clsynth_args ar = clsynth_args_begin(ctx, k, "ew_binary_same");
        clsynth_arg_tensor(&ar, a);
        clsynth_arg_tensor(&ar, b);
        clsynth_arg_tensor(&ar, y);
        clsynth_arg_int(&ar, op);
        clsynth_arg_int(&ar, (int)y->numel);
        return launch_1d(&ar, y->numel);
    }
    cl_kernel k = clsynth_kernel_get(ctx, EW_FILE, "ew_binary", NULL);
    clsynth_args ar = clsynth_args_begin(ctx, k, "ew_binary");
    clsynth_arg_tensor(&ar, a);
    clsynth_arg_tensor(&ar, b);
    clsynth_arg_tensor(&ar, y);
    CLSYNTH_ARG_INTS(&ar, op, (int)y->numel, y->c, y->h, y->w);
    arg_strides(&ar, a);
    arg_strides(&ar, b);
    return launch_1d(&ar, y->numel);
}

/* grad(x) += sign * sum over x's broadcast dims of (g * other), other broadcast
 * to g's shape (NULL: no factor). */
static int grad_into(clsynth_ctx *ctx, clsynth_tensor *x, const clsynth_tensor *g, const clsynth_tensor *other,
                     float sign)
{
    if (clsynth_same_shape(x, g)) {
        int acc;
        clsynth_tensor *gx = clsynth_grad_for_write(ctx, x, &acc);
        if (!gx)
            return -1;
        cl_kernel k = clsynth_kernel_get(ctx, EW_FILE, "ew_grad_full", NULL);
        clsynth_args ar = clsynth_args_begin(ctx, k, "ew_grad_full");
        clsynth_arg_tensor(&ar, gx);
        clsynth_arg_tensor(&ar, g);
        clsynth_arg_tensor(&ar, other ? other : g);
        clsynth_arg_int(&ar, other ? 1 : 0);
        clsynth_arg_float(&ar, sign);
        CLSYNTH_ARG_INTS(&ar, (int)g->numel, g->c, g->h, g->w);
        arg_strides(&ar, other ? other : g);
        clsynth_arg_int(&ar, acc);
        return launch_1d(&ar, g->numel);
    }
    clsynth_tensor *gx = clsynth_grad_of(ctx, x);
    if (!gx)
        return -1;
    if (!other)
        return clsynth_reduce_sum_to(ctx, g, gx, sign, 1.0f);
    if (clsynth_same_shape(other, g))
        return clsynth_reduce_to(ctx, g, other, CLSYNTH_MAP_PROD, 0.0f, gx, sign, 1.0f);
    /* both inputs broadcast: form g * other at the output's shape, then reduce */
    clsynth_tensor *tmp = clsynth_tensor_new(ctx, "mul_grad_tmp", g->n, g->c, g->h, g->w);
    if (!tmp)
        return -1;
    int rc = launch_binary(ctx, g, other, tmp, OP_MUL);
    if (rc == 0)
        rc = clsynth_reduce_sum_to(ctx, tmp, gx, sign, 1.0f);
    clsynth_tensor_free(ctx, tmp); /* in-order queue: safe to recycle */
    return rc;
}

static int binary_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *a = nd->in[0], *b = nd->in[1], *g = nd->out->grad;
    int op = nd->iarg[0];
    if ((a->flags & CLSYNTH_T_REQUIRES_GRAD) && (b->flags & CLSYNTH_T_REQUIRES_GRAD) && clsynth_same_shape(a, g) &&
        clsynth_same_shape(b, g)) {
        /* both gradients in one launch (a first: a tensor given twice is stored, then added to) */
        int acc_a, acc_b;
        clsynth_tensor *ga = clsynth_grad_for_write(ctx, a, &acc_a);
        clsynth_tensor *gb = ga ? clsynth_grad_for_write(ctx, b, &acc_b) : NULL;
        if (!gb)
            return -1;
        cl_kernel k = clsynth_kernel_get(ctx, EW_FILE, "ew_grad_pair", NULL);
        clsynth_args ar = clsynth_args_begin(ctx, k, "ew_grad_pair");
        clsynth_arg_tensor(&ar, ga);
        clsynth_arg_int(&ar, acc_a);
        clsynth_arg_tensor(&ar, gb);
        clsynth_arg_int(&ar, acc_b);
        clsynth_arg_tensor(&ar, g);
        clsynth_arg_tensor(&ar, a);
        clsynth_arg_tensor(&ar, b);
        clsynth_arg_int(&ar, op == OP_MUL);
        clsynth_arg_float(&ar, op == OP_SUB ? -1.0f : 1.0f);
        clsynth_arg_int(&ar, (int)g->numel);
        return launch_1d(&ar, g->numel);
    }
    if (a->flags & CLSYNTH_T_REQUIRES_GRAD)
        if (grad_into(ctx, a, g, op == OP_MUL ? b : NULL, 1.0f))
            return -1;
    if (b->flags & CLSYNTH_T_REQUIRES_GRAD)
        if (grad_into(ctx, b, g, op == OP_MUL ? a : NULL, op == OP_SUB ? -1.0f : 1.0f))
            return -1;
    return 0;
}

static clsynth_tensor *binary(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b, int op, const char *name)
{
    if (ctx->failed || !a || !b)
        return NULL;
    const int ad[4] = { a->n, a->c, a->h, a->w }, bd[4] = { b->n, b->c, b->h, b->w };
    int od[4];
    for (int d = 0; d < 4; d++) {
        if (ad[d] == bd[d] || bd[d] == 1) {
            od[d] = ad[d];
        } else if (ad[d] == 1) {
            od[d] = bd[d];
        } else {
            char ba[128], bb[128];
            static const char *dn = "NCHW";
            clsynth_ctx_fail(ctx, "%s: a %s and b %s do not broadcast (dim %c: %d vs %d; each dim must be "
                                  "equal or 1)", name, clsynth_tensor_describe(a, ba, sizeof ba),
                             clsynth_tensor_describe(b, bb, sizeof bb), dn[d], ad[d], bd[d]);
            return NULL;
        }
    }
    clsynth_tensor *y = clsynth_tensor_new(ctx, name, od[0], od[1], od[2], od[3]); /* (max of each dim) */
    if (!y || launch_binary(ctx, a, b, y, op))
        return NULL;
    clsynth_tensor *in[2] = { a, b };
    clsynth_node *nd = clsynth_tape_record(ctx, name, binary_backward, y, in, 2);
    if (nd)
        nd->iarg[0] = op;
    return ctx->failed ? NULL : y;
}

clsynth_tensor *clsynth_add(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b)
{
    return binary(ctx, a, b, OP_ADD, "add");
}

clsynth_tensor *clsynth_sub(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b)
{
    return binary(ctx, a, b, OP_SUB, "sub");
}

clsynth_tensor *clsynth_mul(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b)
{
    return binary(ctx, a, b, OP_MUL, "mul");
}

/* ---- unary ---- */

static int unary_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *y = nd->out;
    int acc;
    clsynth_tensor *gx = clsynth_grad_for_write(ctx, x, &acc);
    if (!gx)
        return -1;
    cl_kernel k = clsynth_kernel_get(ctx, EW_FILE, "ew_unary_backward", NULL);
    clsynth_args ar = clsynth_args_begin(ctx, k, "ew_unary_backward");
    clsynth_arg_tensor(&ar, gx);
    clsynth_arg_tensor(&ar, y->grad);
    clsynth_arg_tensor(&ar, x);
    clsynth_arg_tensor(&ar, y);
    clsynth_arg_int(&ar, nd->iarg[0]);
    clsynth_arg_float(&ar, nd->farg[0]);
    clsynth_arg_int(&ar, (int)x->numel);
    clsynth_arg_int(&ar, acc);
    return launch_1d(&ar, x->numel);
}

static clsynth_tensor *unary(clsynth_ctx *ctx, clsynth_tensor *x, int op, float p, const char *name)
{
    if (ctx->failed || !x)
        return NULL;
    clsynth_tensor *y = clsynth_tensor_new(ctx, name, x->n, x->c, x->h, x->w); /* x's shape */
    if (!y)
        return NULL;
    cl_kernel k = clsynth_kernel_get(ctx, EW_FILE, "ew_unary", NULL);
    clsynth_args ar = clsynth_args_begin(ctx, k, "ew_unary");
    clsynth_arg_tensor(&ar, x);
    clsynth_arg_tensor(&ar, y);
    clsynth_arg_int(&ar, op);
    clsynth_arg_float(&ar, p);
    clsynth_arg_int(&ar, (int)x->numel);
    if (launch_1d(&ar, x->numel))
        return NULL;
    clsynth_node *nd = clsynth_tape_record(ctx, name, unary_backward, y, &x, 1);
    if (nd) {
        nd->iarg[0] = op;
        nd->farg[0] = p;
    }
    return ctx->failed ? NULL : y;
}

clsynth_tensor *clsynth_scale(clsynth_ctx *ctx, clsynth_tensor *x, float s)
{
    return unary(ctx, x, U_SCALE, s, "scale");
}

clsynth_tensor *clsynth_add_scalar(clsynth_ctx *ctx, clsynth_tensor *x, float s)
{
    return unary(ctx, x, U_ADD, s, "add_scalar");
}

clsynth_tensor *clsynth_relu(clsynth_ctx *ctx, clsynth_tensor *x) { return unary(ctx, x, U_RELU, 0.0f, "relu"); }

clsynth_tensor *clsynth_leaky_relu(clsynth_ctx *ctx, clsynth_tensor *x, float slope)
{
    return unary(ctx, x, U_LEAKY, slope, "leaky_relu");
}

clsynth_tensor *clsynth_tanh(clsynth_ctx *ctx, clsynth_tensor *x) { return unary(ctx, x, U_TANH, 0.0f, "tanh"); }

clsynth_tensor *clsynth_sigmoid(clsynth_ctx *ctx, clsynth_tensor *x)
{
    return unary(ctx, x, U_SIGMOID, 0.0f, "sigmoid");
}

clsynth_tensor *clsynth_exp(clsynth_ctx *ctx, clsynth_tensor *x) { return unary(ctx, x, U_EXP, 0.0f, "exp"); }

/* ---- channel concat / slice ---- */

/* dst[:, dst_c0 + c] (= or +=) src[:, src_c0 + c] for c < count; src and dst share N, H, W. */
static int copy_channels(clsynth_ctx *ctx, const clsynth_tensor *src, int src_c0, clsynth_tensor *dst, int dst_c0,
                         int count, int accumulate)
{
    cl_kernel k = clsynth_kernel_get(ctx, EW_FILE, "ew_copy_channels", NULL);
    clsynth_args ar = clsynth_args_begin(ctx, k, "ew_copy_channels");
    clsynth_arg_tensor(&ar, src);
    clsynth_arg_int(&ar, src->c);
    clsynth_arg_int(&ar, src_c0);
    clsynth_arg_tensor(&ar, dst);
    CLSYNTH_ARG_INTS(&ar, dst->c, dst_c0, count, (int)CLSYNTH_HW(src), src->n, accumulate);
    const size_t global[3] = { CLSYNTH_HW(src), (size_t)count, (size_t)src->n };
    return clsynth_launch(&ar, 3, global, NULL, 0, NULL);
}

/* One run of channels of ew_copy_channel_runs: part holds channels
 * [start, start + part->c) of the whole tensor. */
typedef struct channel_run {
    const clsynth_tensor *part;
    int start;
    int accumulate; /* scatter: add to part instead of storing */
} channel_run;

#define MAX_RUNS 5 /* the kernel's */

/* Gather (scatter 0: whole[:, start_i + c] = part_i[:, c]) or scatter
 * (part_i[:, c] (=|+=) whole[:, start_i + c]) of n runs, MAX_RUNS per launch;
 * the parts share whole's N, H, W. */
static int copy_channel_runs(clsynth_ctx *ctx, const clsynth_tensor *whole, const channel_run *runs, int n,
                             int scatter)
{
    for (int r0 = 0; r0 < n; r0 += MAX_RUNS) {
        cl_kernel k = clsynth_kernel_get(ctx, EW_FILE, "ew_copy_channel_runs", NULL);
        clsynth_args ar = clsynth_args_begin(ctx, k, "ew_copy_channel_runs");
        clsynth_arg_tensor(&ar, whole);
        CLSYNTH_ARG_INTS(&ar, whole->c, (int)CLSYNTH_HW(whole), whole->n, scatter);
        for (int i = r0; i < r0 + MAX_RUNS; i++) {
            const bool used = i < n;
            clsynth_arg_tensor(&ar, used ? runs[i].part : whole); /* an unused run is never touched */
            CLSYNTH_ARG_INTS(&ar, used ? runs[i].start : 0, used ? runs[i].part->c : 0,
                             used ? runs[i].accumulate : 0);
        }
        const size_t global[3] = { CLSYNTH_HW(whole), (size_t)whole->c, (size_t)whole->n };
        if (clsynth_launch(&ar, 3, global, NULL, 0, NULL))
            return -1;
    }
    return 0;
}

static int concat_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    channel_run runs[CLSYNTH_NODE_MAX_IN];
    int n = 0, c0 = 0;
    for (int i = 0; i < nd->n_in; i++) {
        clsynth_tensor *x = nd->in[i];
        if (x->flags & CLSYNTH_T_REQUIRES_GRAD) {
            int acc;
            clsynth_tensor *gx = clsynth_grad_for_write(ctx, x, &acc);
            if (!gx)
                return -1;
            /* an input given twice (concat(a, a)): its runs would add into one
             * gradient at once, a race; the runs so far go first */
            for (int j = 0; j < n; j++)
                if (runs[j].part->mem == gx->mem && runs[j].part->off == gx->off) {
                    if (copy_channel_runs(ctx, nd->out->grad, runs, n, 1))
                        return -1;
                    n = 0;
                    acc = 1;
                    break;
                }
            runs[n++] = (channel_run){ gx, c0, acc };
        }
        c0 += x->c;
    }
    return copy_channel_runs(ctx, nd->out->grad, runs, n, 1);
}

clsynth_tensor *clsynth_concat(clsynth_ctx *ctx, clsynth_tensor *const *xs, int count)
{
    if (ctx->failed || !xs)
        return NULL;
    if (count < 1) {
        clsynth_ctx_fail(ctx, "concat: %d inputs", count);
        return NULL;
    }
    for (int i = 0; i < count; i++)
        if (!xs[i])
            return NULL;
    if (count > CLSYNTH_NODE_MAX_IN) {
        /* the tape holds at most CLSYNTH_NODE_MAX_IN inputs per node: concat in two levels */
        clsynth_tensor *parts[2];
        parts[0] = clsynth_concat(ctx, xs, CLSYNTH_NODE_MAX_IN);
        parts[1] = clsynth_concat(ctx, xs + CLSYNTH_NODE_MAX_IN, count - CLSYNTH_NODE_MAX_IN);
        if (!parts[0] || !parts[1])
            return NULL;
        return clsynth_concat(ctx, parts, 2);
    }
    int ctotal = 0;
    for (int i = 0; i < count; i++) {
        if (xs[i]->n != xs[0]->n || xs[i]->h != xs[0]->h || xs[i]->w != xs[0]->w) {
            char b0[128], bi[128];
            clsynth_ctx_fail(ctx, "concat: input %d %s and input 0 %s differ in N, H or W", i,
                             clsynth_tensor_describe(xs[i], bi, sizeof bi),
                             clsynth_tensor_describe(xs[0], b0, sizeof b0));
            return NULL;
        }
        ctotal += xs[i]->c;
    }
    clsynth_tensor *y = clsynth_tensor_new(ctx, "concat", xs[0]->n, ctotal, xs[0]->h, xs[0]->w); /* (N, sum C, H, W) */
    if (!y)
        return NULL;
    channel_run runs[CLSYNTH_NODE_MAX_IN];
    int c0 = 0;
    for (int i = 0; i < count; i++) {
        runs[i] = (channel_run){ xs[i], c0, 0 };
        c0 += xs[i]->c;
    }
    if (copy_channel_runs(ctx, y, runs, count, 0))
        return NULL;
    clsynth_tape_record(ctx, "concat", concat_backward, y, xs, count);
    return ctx->failed ? NULL : y;
}

static int slice_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *gx = clsynth_grad_of(ctx, nd->in[0]);
    if (!gx)
        return -1;
    return copy_channels(ctx, nd->out->grad, 0, gx, nd->iarg[0], nd->out->c, 1);
}

clsynth_tensor *clsynth_slice_c(clsynth_ctx *ctx, clsynth_tensor *x, int c0, int count)
{
    if (ctx->failed || !x)
        return NULL;
    if (c0 < 0 || count < 1 || c0 + count > x->c) {
        char bx[128];
        clsynth_ctx_fail(ctx, "slice_c: channels [%d, %d) of %s", c0, c0 + count,
                         clsynth_tensor_describe(x, bx, sizeof bx));
        return NULL;
    }
    clsynth_tensor *y = clsynth_tensor_new(ctx, "slice_c", x->n, count, x->h, x->w); /* (N, count, H, W) */
    if (!y || copy_channels(ctx, x, c0, y, 0, count, 0))
        return NULL;
    clsynth_node *nd = clsynth_tape_record(ctx, "slice_c", slice_backward, y, &x, 1);
    if (nd)
        nd->iarg[0] = c0;
    return ctx->failed ? NULL : y;
}

int clsynth_split_c(clsynth_ctx *ctx, clsynth_tensor *x, const int *counts, int k, clsynth_tensor **out)
{
    for (int i = 0; i < k; i++)
        out[i] = NULL;
    if (ctx->failed || !x)
        return -1;
    channel_run runs[CLSYNTH_SPLIT_MAX];
    int c0 = 0;
    char bx[128];
    if (k < 1 || k > CLSYNTH_SPLIT_MAX)
        return clsynth_ctx_fail(ctx, "split_c: %d parts of %s (1 to %d)", k, clsynth_tensor_describe(x, bx, sizeof bx),
                                CLSYNTH_SPLIT_MAX);
    for (int i = 0; i < k; i++) {
        if (counts[i] < 1 || c0 + counts[i] > x->c)
            return clsynth_ctx_fail(ctx, "split_c: part %d, channels [%d, %d) of %s", i, c0, c0 + counts[i],
                                    clsynth_tensor_describe(x, bx, sizeof bx));
        c0 += counts[i];
    }
    if (ctx->no_grad > 0 && x->n == 1) {
        /* one sample and no tape (inference): each part is a contiguous run of
         * x's storage, so a view, not a copy (the CC blocks' slots of small
         * were 8 % of an inference as copies) */
        c0 = 0;
        for (int i = 0; i < k; i++) {
            if (!(out[i] = clsynth_tensor_view(ctx, x, "slice_c", (size_t)c0 * CLSYNTH_HW(x), 1, counts[i], x->h, x->w))) {
                for (int j = 0; j < i; j++)
                    out[j] = NULL; /* views: released with the activations */
                return -1;
            }
            c0 += counts[i];
        }
        return 0;
    }
    c0 = 0;
    for (int i = 0; i < k; i++) {
        if (!(out[i] = clsynth_tensor_new(ctx, "slice_c", x->n, counts[i], x->h, x->w))) { /* (N, count, H, W) */
            for (int j = 0; j < i; j++)
                out[j] = NULL; /* activations: released with the others */
            return -1;
        }
        runs[i] = (channel_run){ out[i], c0, 0 };
        c0 += counts[i];
    }
    if (copy_channel_runs(ctx, x, runs, k, 1)) {
        for (int i = 0; i < k; i++)
            out[i] = NULL; /* activations: released with the others */
        return -1;
    }
    /* each part a slice of its own on the tape (one gradient copy each) */
    for (int i = 0; i < k; i++) {
        clsynth_node *nd = clsynth_tape_record(ctx, "slice_c", slice_backward, out[i], &x, 1);
        if (nd)
            nd->iarg[0] = runs[i].start;
    }
    return ctx->failed ? -1 : 0;
}

/* ---- reshape: a view of x's storage ---- */

static int reshape_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *gx = clsynth_grad_of(ctx, nd->in[0]);
    if (!gx)
        return -1;
    const clsynth_tensor *gy = nd->out->grad;
    cl_kernel k = clsynth_kernel_get(ctx, "tensor.cl", "tensor_axpby", NULL);
    clsynth_args ar = clsynth_args_begin(ctx, k, "tensor_axpby");
    clsynth_arg_float(&ar, 1.0f);
    clsynth_arg_tensor(&ar, gy);
    clsynth_arg_float(&ar, 1.0f);
    clsynth_arg_tensor(&ar, gx);
    clsynth_arg_int(&ar, (int)gx->numel);
    return launch_1d(&ar, gx->numel);
}

clsynth_tensor *clsynth_reshape(clsynth_ctx *ctx, clsynth_tensor *x, int n, int c, int h, int w)
{
    if (ctx->failed || !x)
        return NULL;
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || (size_t)n * (size_t)c * (size_t)h * (size_t)w != x->numel) {
        char bx[128];
        clsynth_ctx_fail(ctx, "reshape: %s (%zu elements) to (%d, %d, %d, %d)",
                         clsynth_tensor_describe(x, bx, sizeof bx), x->numel, n, c, h, w);
        return NULL;
    }
    char name[64];
    snprintf(name, sizeof name, "reshape(%.48s)", x->name);
    clsynth_tensor *y = clsynth_tensor_view(ctx, x, name, 0, n, c, h, w); /* shares x's storage */
    if (!y)
        return NULL;
    clsynth_tape_record(ctx, "reshape", reshape_backward, y, &x, 1);
    return ctx->failed ? NULL : y;
}
