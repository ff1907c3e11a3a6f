/* The fused convolution y = act((conv(x, w) + bias) * gate) + residual
 * (clcore/ops.h): one tape node whose forward is one launch for the
 * implicit-GEMM and Winograd algorithms (the epilogue is applied as the
 * output is written) and the conv plus one epilogue kernel for the others
 * (kernels/conv_epilogue.cl); its backward is one epilogue-derivative kernel
 * (which also accumulates the gate's and the residual's gradients, and the
 * bias gradient in channel_sum_acc's order) followed by the conv's own
 * backward of the algorithm that ran.
 *
 * What the backward needs: act'(z) with z = u * gate, u = conv + bias. From y
 * itself when there is no residual (relu and leaky relu with slope >= 0 by
 * y's sign, sigmoid and tanh from y); otherwise, and whenever the gate needs
 * its gradient (g * u), u is stored by the forward (one tensor of y's shape).
 * iarg: stride, pad, algorithm, activation; farg: slope; saved[0]: u or NULL. */
#include <stdio.h>

#include "clcore/launch.h"
#include "clcore/ops_conv_impl.h"
#include "clcore/program.h"

static const char EPI_FILE[] = "conv_epilogue.cl";

enum { FWD_GATE = 2, FWD_RES = 4 };
enum { BWD_GATE = 1, BWD_RES_GRAD = 2, BWD_HAS_U = 4, BWD_GATE_GRAD = 8, BWD_DZ = 16, BWD_RES_STORE = 32,
       BWD_GATE_STORE = 64 };

static bool needs_grad(const clsynth_tensor *t) { return t && (t->flags & CLSYNTH_T_REQUIRES_GRAD); }

static const char *act_name(clsynth_act a)
{
    static const char *const names[] = { "none", "relu", "leaky_relu", "sigmoid", "tanh" };
    return (int)a >= 0 && a < CLSYNTH_ACT_COUNT ? names[a] : "unknown";
}

/* y = act(t * gate) + residual (t may be y) */
static int epilogue_forward(clsynth_ctx *ctx, const clsynth_tensor *t, const clsynth_conv_epi_run *e,
                            clsynth_tensor *y)
{
    cl_kernel k = clsynth_kernel_get(ctx, EPI_FILE, "conv_epi_forward", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "conv_epi_forward");
    clsynth_arg_tensor(&a, t);
    clsynth_arg_tensor(&a, e->gate ? e->gate : y);
    clsynth_arg_tensor(&a, e->residual ? e->residual : y);
    clsynth_arg_tensor(&a, y);
    CLSYNTH_ARG_INTS(&a, (e->gate ? FWD_GATE : 0) | (e->residual ? FWD_RES : 0), (int)e->act);
    clsynth_arg_float(&a, e->slope);
    clsynth_arg_int(&a, (int)y->numel);
    size_t global = y->numel;
    return clsynth_launch(&a, 1, &global, NULL, 0, NULL);
}

static clsynth_conv_geom node_geom(const clsynth_node *nd)
{
    const clsynth_tensor *x = nd->in[0], *w = nd->in[1];
    clsynth_conv_geom g = { x->n, x->c, x->h, x->w, w->n, w->h, w->w, nd->out->h, nd->out->w, nd->iarg[0],
                            nd->iarg[1] };
    return g;
}

static int fused_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *gate = nd->in[3], *res = nd->in[4];
    clsynth_tensor *y = nd->out, *gy = y->grad, *u = nd->saved[0];
    const clsynth_act act = (clsynth_act)nd->iarg[3];
    const bool conv_grad = needs_grad(x) || needs_grad(w) || needs_grad(b);
    /* the kernel writes every element of both: fresh ones are stored, not zero-filled */
    int res_acc = 1, gate_acc = 1;
    clsynth_tensor *dres = needs_grad(res) ? clsynth_grad_for_write(ctx, res, &res_acc) : NULL;
    clsynth_tensor *dgate = needs_grad(gate) ? clsynth_grad_for_write(ctx, gate, &gate_acc) : NULL;
    if ((needs_grad(gate) && !dgate) || (needs_grad(res) && !dres))
        return -1;
    /* dz: the conv's output gradient (gy itself when the epilogue is the identity on it) */
    clsynth_tensor *dz = conv_grad && (act != CLSYNTH_ACT_NONE || gate)
                             ? clsynth_tensor_new(ctx, "conv2d_fused dz", y->n, y->c, y->h, y->w)
                             : NULL;
    if (conv_grad && !dz && (act != CLSYNTH_ACT_NONE || gate))
        return -1;
    /* the bias gradient is the sum of dz: added by the epilogue's kernel when it writes dz */
    clsynth_tensor *db = dz && needs_grad(b) ? clsynth_grad_of(ctx, b) : NULL;
    if (dz && needs_grad(b) && !db)
        return -1;
    if (dz || dgate || dres) {
        /* res before gate: where both are one tensor, the element's residual term is
         * stored first and its gate term added (the kernel writes them in that order) */
        int flags = (gate ? BWD_GATE : 0) | (dres ? BWD_RES_GRAD : 0) | (u ? BWD_HAS_U : 0) |
                    (dgate ? BWD_GATE_GRAD : 0) | (dz ? BWD_DZ : 0) | (dres && !res_acc ? BWD_RES_STORE : 0) |
                    (dgate && !gate_acc ? BWD_GATE_STORE : 0);
        const char *kname = db ? "conv_epi_backward_bias" : "conv_epi_backward";
        cl_kernel k = clsynth_kernel_get(ctx, EPI_FILE, kname, NULL);
        clsynth_args a = clsynth_args_begin(ctx, k, kname);
        clsynth_arg_tensor(&a, gy);
        clsynth_arg_tensor(&a, y);
        clsynth_arg_tensor(&a, u ? u : y);
        clsynth_arg_tensor(&a, gate ? gate : y);
        clsynth_arg_tensor(&a, dz ? dz : gy);
        clsynth_arg_tensor(&a, dgate ? dgate : gy);
        clsynth_arg_tensor(&a, dres ? dres : gy);
        CLSYNTH_ARG_INTS(&a, flags, (int)act);
        clsynth_arg_float(&a, nd->farg[0]);
        if (db) {
            const size_t lsz = clsynth_conv_bias_grad_local(ctx, k, kname, y);
            if (lsz == 0)
                return -1;
            clsynth_arg_tensor(&a, db);
            CLSYNTH_ARG_INTS(&a, y->n, y->c, (int)CLSYNTH_HW(y));
            clsynth_arg_local(&a, lsz * sizeof(float));
            const size_t global = (size_t)y->c * lsz;
            if (clsynth_launch(&a, 1, &global, &lsz, lsz * sizeof(float), NULL))
                return -1;
        } else {
            clsynth_arg_int(&a, (int)y->numel);
            size_t global = y->numel;
            if (clsynth_launch(&a, 1, &global, NULL, 0, NULL))
                return -1;
        }
    }
    if (!conv_grad)
        return 0;
    const clsynth_conv_geom g = node_geom(nd);
    return clsynth_conv_run_backward(ctx, &g, (clsynth_conv_algo)nd->iarg[2], nd->force, x, w, db ? NULL : b,
                                     dz ? dz : gy);
}

static bool epilogue_empty(const clsynth_conv_epilogue *e)
{
    return !e || (e->act == CLSYNTH_ACT_NONE && !e->gate && !e->residual);
}

/* The checks of clsynth_conv2d, and gate / residual of the output's shape. */
static int check_args(clsynth_ctx *ctx, const clsynth_tensor *x, const clsynth_tensor *w, const clsynth_tensor *b,
                      int stride, int pad, const clsynth_conv_epilogue *e, clsynth_conv_algo algo)
{
    char xd[96], wd[96], od[96];
    clsynth_tensor_describe(x, xd, sizeof xd);
    clsynth_tensor_describe(w, wd, sizeof wd);
    if (w->c != x->c)
        return clsynth_ctx_fail(ctx, "conv2d_fused: weight %s has %d input channels, input %s has %d", wd, w->c, xd,
                                x->c);
    if (stride < 1 || pad < 0)
        return clsynth_ctx_fail(ctx, "conv2d_fused of %s with weight %s: stride %d and pad %d (need stride >= 1, pad "
                                     ">= 0)", xd, wd, stride, pad);
    if (x->h + 2 * pad < w->h || x->w + 2 * pad < w->w)
        return clsynth_ctx_fail(ctx, "conv2d_fused: kernel %dx%d of weight %s is larger than input %s padded by %d",
                                w->h, w->w, wd, xd, pad);
    if (b && (b->numel != (size_t)w->n || b->c != w->n))
        return clsynth_ctx_fail(ctx, "conv2d_fused: bias %s must be (1, %d, 1, 1) for weight %s",
                                clsynth_tensor_describe(b, od, sizeof od), w->n, wd);
    if ((int)e->act < 0 || e->act >= CLSYNTH_ACT_COUNT)
        return clsynth_ctx_fail(ctx, "conv2d_fused of %s: unknown activation %d", xd, (int)e->act);
    if ((int)algo < 0 || algo >= CLSYNTH_CONV_ALGO_COUNT)
        return clsynth_ctx_fail(ctx, "conv2d_fused of %s: unknown algorithm %d", xd, (int)algo);
    const int oh = (x->h + 2 * pad - w->h) / stride + 1, ow = (x->w + 2 * pad - w->w) / stride + 1;
    const clsynth_tensor *const t[2] = { e->gate, e->residual };
    static const char *const what[2] = { "gate", "residual" };
    for (int i = 0; i < 2; i++)
        if (t[i] && (t[i]->n != x->n || t[i]->c != w->n || t[i]->h != oh || t[i]->w != ow))
            return clsynth_ctx_fail(ctx, "conv2d_fused of %s with weight %s: %s %s must have the output's shape "
                                         "(%d, %d, %d, %d)", xd, wd, what[i],
                                    clsynth_tensor_describe(t[i], od, sizeof od), x->n, w->n, oh, ow);
    return 0;
}

clsynth_tensor *clsynth_conv2d_fused_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w,
                                            clsynth_tensor *bias, int stride, int pad,
                                            const clsynth_conv_epilogue *epi, clsynth_conv_algo algo,
                                            clsynth_kforce *force)
{
    if (ctx->failed || !x || !w)
        return NULL;
    if (epilogue_empty(epi))
        return clsynth_conv2d_forced(ctx, x, w, bias, stride, pad, algo, force);
    if (check_args(ctx, x, w, bias, stride, pad, epi, algo))
        return NULL;
    char xd[96], what[160];
    snprintf(what, sizeof what, "conv2d_fused forward of %s", clsynth_tensor_describe(x, xd, sizeof xd));
    clsynth_kcfg cfg;
    clsynth_conv_call c = { .g = { x->n, x->c, x->h, x->w, w->n, w->h, w->w,
                                   clsynth_conv_out_size(x->h, w->h, stride, pad),
                                   clsynth_conv_out_size(x->w, w->w, stride, pad), stride, pad },
                            .cfg = &cfg, .force = force, .x = x, .w = w, .b = bias, .what = what };
    const clsynth_conv_algo a = clsynth_conv_resolve(ctx, &c.g, algo, force, &cfg);
    if (a == CLSYNTH_CONV_AUTO)
        return NULL;
    const clsynth_conv_impl *impl = clsynth_conv_impl_of(a);
    if (!impl) {
        clsynth_ctx_fail(ctx, "conv2d_fused of %s: algorithm %d is not implemented", xd, (int)a);
        return NULL;
    }
    clsynth_tensor *in[5] = { x, w, bias, epi->gate, epi->residual };
    const bool grad = clsynth_grad_needed(ctx, in, 5);
    /* u for the backward: see the file comment */
    const bool act_needs_u = epi->act != CLSYNTH_ACT_NONE &&
                             (epi->residual || (epi->act == CLSYNTH_ACT_LEAKY_RELU && epi->slope < 0.0f));
    const bool keep_u = grad && (needs_grad(epi->gate) || act_needs_u);
    const int n = c.g.N, cout = c.g.Cout, oh = c.g.OH, ow = c.g.OW;
    clsynth_tensor *y = clsynth_tensor_new(ctx, "conv2d_fused", n, cout, oh, ow); /* (N, Cout, OH, OW) */
    clsynth_tensor *u = keep_u ? clsynth_tensor_new(ctx, "conv2d_fused u", n, cout, oh, ow) : NULL;
    if (!y || (keep_u && !u))
        return NULL;
    const clsynth_conv_epi_run er = { epi->gate, epi->residual, u, epi->act, epi->slope };
    int rc;
    if (impl->fuses_epilogue) {
        c.y = y;
        c.epi = &er;
        rc = impl->forward(ctx, &c);
    } else {
        /* t = conv + bias (into u when it is kept), then the epilogue kernel */
        c.y = u ? u : y;
        rc = impl->forward(ctx, &c);
        if (!rc)
            rc = epilogue_forward(ctx, c.y, &er, y);
    }
    if (rc) {
        if (!ctx->failed)
            clsynth_ctx_fail(ctx, "conv2d_fused (%s, %s) of %s failed", clsynth_conv_algo_name(a),
                             act_name(epi->act), xd);
        return NULL;
    }
    clsynth_node *nd = clsynth_tape_record(ctx, "conv2d_fused", fused_backward, y, in, 5);
    if (ctx->failed)
        return NULL;
    if (nd) {
        nd->iarg[0] = stride;
        nd->iarg[1] = pad;
        nd->iarg[2] = (int)a;
        nd->iarg[3] = (int)epi->act;
        nd->farg[0] = epi->slope;
        nd->saved[0] = u;
        nd->force = force;
    }
    return y;
}

clsynth_tensor *clsynth_conv2d_fused(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w, clsynth_tensor *bias,
                                     int stride, int pad, const clsynth_conv_epilogue *epi)
{
    return clsynth_conv2d_fused_forced(ctx, x, w, bias, stride, pad, epi, CLSYNTH_CONV_AUTO, NULL);
}
