/* 2-D convolution (groups = 1, zero padding): argument checks, the algorithm
 * choice and the dispatch to the algorithms (clcore/ops_conv_impl.h), the
 * tape node, and the bias.
 *
 * Algorithms (the clsynth_conv_algo values, table below):
 *   DIRECT       clcore/ops_conv_direct.c: tiled direct kernels.
 *   IM2COL_GEMM  clcore/ops_conv_gemm.c: im2col + GEMM.
 *   IGEMM        clcore/ops_conv_igemm.c: implicit GEMM over the batch (no column
 *                buffer), the fused epilogue in its store.
 *   WINOGRAD     clcore/ops_conv_winograd.c: F(2x2, 3x3), 3x3 stride 1 only.
 *   DNNL         clcore/ops_conv_dnnl.c: oneDNN's CPU convolutions on the mapped
 *                buffers of a host-CPU device.
 * The choice: the caller's (clsynth_conv2d_algo), else the "conv2d"
 * descriptor resolved at the layer's shape (tuned, or the defaults of
 * clcore/ops_conv_kdef.c). The bias is the algorithm's in the forward
 * (fused or channel_bias_add); its gradient is channel_sum_acc here. */
#include <stdio.h>

#include "clcore/launch.h"
#include "clcore/ops_conv_impl.h"
#include "clcore/program.h"

static const clsynth_conv_impl *const impls[CLSYNTH_CONV_ALGO_COUNT] = {
    [CLSYNTH_CONV_DIRECT] = &clsynth_conv_impl_direct,
    [CLSYNTH_CONV_IM2COL_GEMM] = &clsynth_conv_impl_gemm,
    [CLSYNTH_CONV_IGEMM] = &clsynth_conv_impl_igemm,
    [CLSYNTH_CONV_WINOGRAD] = &clsynth_conv_impl_winograd,
    [CLSYNTH_CONV_DNNL] = &clsynth_conv_impl_dnnl,
};

const clsynth_conv_impl *clsynth_conv_impl_of(clsynth_conv_algo a)
{
    return (int)a > 0 && a < CLSYNTH_CONV_ALGO_COUNT ? impls[a] : NULL;
}

int clsynth_conv_oh(const clsynth_conv_shape *s) { return clsynth_conv_out_size(s->h, s->kh, s->stride, s->pad); }
int clsynth_conv_ow(const clsynth_conv_shape *s) { return clsynth_conv_out_size(s->w, s->kw, s->stride, s->pad); }

const char *clsynth_conv_algo_name(clsynth_conv_algo a)
{
    if (a == CLSYNTH_CONV_AUTO)
        return "auto";
    if ((int)a > 0 && a < CLSYNTH_CONV_ALGO_COUNT && impls[a])
        return impls[a]->name;
    return "unknown";
}

clsynth_conv_shape clsynth_conv_shape_of(const clsynth_conv_geom *g)
{
    clsynth_conv_shape s = { g->N, g->Cin, g->H, g->W, g->Cout, g->KH, g->KW, g->stride, g->pad };
    return s;
}

/* ------------------------------------------------------------------ bias */

int clsynth_conv_bias_add(clsynth_ctx *ctx, clsynth_tensor *y, clsynth_tensor *b)
{
    cl_kernel k = clsynth_kernel_get(ctx, "bias.cl", "channel_bias_add", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "channel_bias_add");
    clsynth_arg_tensor(&a, y);
    clsynth_arg_tensor(&a, b);
    CLSYNTH_ARG_INTS(&a, y->c, (int)CLSYNTH_HW(y), (int)y->numel);
    size_t global = y->numel;
    return clsynth_launch(&a, 1, &global, NULL, 0, NULL);
}

size_t clsynth_conv_bias_grad_local(clsynth_ctx *ctx, cl_kernel k, const char *kname, const clsynth_tensor *dy)
{
    size_t kmax = clsynth_kernel_max_wg(ctx, k, kname);
    if (kmax == 0)
        return 0;
    /* one group per channel; no wider than the work, the kernel, the device or 256 */
    size_t lsz = (size_t)clsynth_pow2_ceil(dy->n * (int)CLSYNTH_HW(dy));
    size_t cap = kmax < ctx->max_item[0] ? kmax : ctx->max_item[0];
    if (cap > 256)
        cap = 256;
    while (lsz * sizeof(float) > ctx->local_mem && lsz > 1)
        lsz /= 2;
    return lsz > cap ? cap : lsz;
}

int clsynth_conv_bias_grad(clsynth_ctx *ctx, clsynth_tensor *dy, clsynth_tensor *db)
{
    static const char kname[] = "channel_sum_acc";
    cl_kernel k = clsynth_kernel_get(ctx, "bias.cl", kname, NULL);
    if (!k)
        return -1;
    size_t lsz = clsynth_conv_bias_grad_local(ctx, k, kname, dy);
    if (lsz == 0)
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, db);
    CLSYNTH_ARG_INTS(&a, dy->n, dy->c, (int)CLSYNTH_HW(dy));
    clsynth_arg_local(&a, lsz * sizeof(float));
    size_t global = (size_t)dy->c * lsz;
    return clsynth_launch(&a, 1, &global, &lsz, lsz * sizeof(float), NULL);
}

/* ------------------------------------------------------------------ dispatch */

clsynth_conv_algo clsynth_conv_resolve(clsynth_ctx *ctx, const clsynth_conv_geom *g, clsynth_conv_algo algo,
                                       clsynth_kforce *force, clsynth_kcfg *cfg)
{
    const clsynth_conv_shape s = clsynth_conv_shape_of(g);
    if (clsynth_kconfig(ctx, &clsynth_kdef_conv2d, &s, force, cfg))
        return CLSYNTH_CONV_AUTO;
    if (algo != CLSYNTH_CONV_AUTO)
        return algo;
    int a = cfg->v[CONV2D_ALGO];
    if (a <= 0 || a >= CLSYNTH_CONV_ALGO_COUNT || !impls[a]) {
        clsynth_ctx_fail(ctx, "conv2d at %s: algorithm %d is not implemented", cfg->key, a);
        return CLSYNTH_CONV_AUTO;
    }
    return (clsynth_conv_algo)a;
}

static void node_geom(const clsynth_node *nd, clsynth_conv_geom *g)
{
    const clsynth_tensor *x = nd->in[0], *w = nd->in[1];
    *g = (clsynth_conv_geom){ x->n, x->c, x->h, x->w, w->n, w->h, w->w, nd->out->h, nd->out->w, nd->iarg[0],
                              nd->iarg[1] };
}

int clsynth_conv_run_backward(clsynth_ctx *ctx, const clsynth_conv_geom *g, clsynth_conv_algo algo,
                              clsynth_kforce *force, clsynth_tensor *x, clsynth_tensor *w, clsynth_tensor *b,
                              clsynth_tensor *dy)
{
    char what[160], xd[80];
    snprintf(what, sizeof what, "conv2d backward of %s", clsynth_tensor_describe(x, xd, sizeof xd));
    clsynth_kcfg cfg;
    clsynth_conv_call c = { .g = *g, .cfg = &cfg, .force = force, .x = x, .w = w, .b = b, .dy = dy, .what = what };
    clsynth_conv_algo a = clsynth_conv_resolve(ctx, &c.g, algo, force, &cfg);
    if (a == CLSYNTH_CONV_AUTO)
        return -1;
    if (x->flags & CLSYNTH_T_REQUIRES_GRAD) {
        int acc;
        if (!(c.dx = clsynth_grad_for_write(ctx, x, &acc)))
            return -1;
        c.dx_fresh = !acc;
        if (c.dx_fresh && !impls[a]->stores_dx) {
            if (clsynth_tensor_fill(ctx, c.dx, 0.0f))
                return -1;
            c.dx_fresh = false;
        }
    }
    if ((w->flags & CLSYNTH_T_REQUIRES_GRAD) && !(c.dw = clsynth_grad_of(ctx, w)))
        return -1;
    if (b && (b->flags & CLSYNTH_T_REQUIRES_GRAD)) {
        clsynth_tensor *db = clsynth_grad_of(ctx, b);
        if (!db || clsynth_conv_bias_grad(ctx, c.dy, db))
            return -1;
    }
    return c.dx || c.dw ? impls[a]->backward(ctx, &c) : 0;
}

static int conv2d_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_conv_geom g;
    node_geom(nd, &g);
    return clsynth_conv_run_backward(ctx, &g, (clsynth_conv_algo)nd->iarg[2], nd->force, nd->in[0], nd->in[1],
                                     nd->in[2], nd->out->grad);
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
    if ((int)algo < 0 || algo >= CLSYNTH_CONV_ALGO_COUNT || (algo != CLSYNTH_CONV_AUTO && !impls[algo])) {
        clsynth_ctx_fail(ctx, "conv2d of %s: unknown algorithm %d", xd, (int)algo);
        return NULL;
    }
    char what[160];
    snprintf(what, sizeof what, "conv2d forward of %s", xd);
    clsynth_kcfg cfg;
    clsynth_conv_call c = { .g = { x->n, x->c, x->h, x->w, w->n, w->h, w->w,
                                   clsynth_conv_out_size(x->h, w->h, stride, pad),
                                   clsynth_conv_out_size(x->w, w->w, stride, pad), stride, pad },
                            .cfg = &cfg, .force = force, .x = x, .w = w, .b = bias, .what = what };
    clsynth_conv_algo a = clsynth_conv_resolve(ctx, &c.g, algo, force, &cfg);
    if (a == CLSYNTH_CONV_AUTO)
        return NULL;
    c.y = clsynth_tensor_new(ctx, "conv2d", c.g.N, c.g.Cout, c.g.OH, c.g.OW); /* (N, Cout, OH, OW) */
    if (!c.y)
        return NULL;
    if (impls[a]->forward(ctx, &c)) {
        if (!ctx->failed)
            clsynth_ctx_fail(ctx, "conv2d (%s) of %s failed", clsynth_conv_algo_name(a), xd);
        return NULL;
    }
    clsynth_tensor *in[3] = { x, w, bias };
    clsynth_node *nd = clsynth_tape_record(ctx, "conv2d", conv2d_backward, c.y, in, 3);
    if (ctx->failed)
        return NULL;
    if (nd) {
        nd->iarg[0] = stride;
        nd->iarg[1] = pad;
        nd->iarg[2] = (int)a;
        nd->force = force;
        nd->out_unread = true; /* conv2d_backward: out's shape and gradient */
    }
    return c.y;
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
