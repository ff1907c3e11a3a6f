/* Conditional depthwise 3x3 convolution (kernels/dwconv.cl): each sample,
 * channel and pixel has its own 3x3 kernel, predicted by the generator's
 * weight-prediction network.
 *
 * Memory: the op never materializes the 9x unfold of x that the reference
 * PyTorch code builds. Forward: y (N,C,H,W) is the only allocation; x is read
 * about once (through a local-memory tile with a 1-pixel halo), k (N,9C,H,W)
 * once, y written once: ~11.3 floats of traffic per output pixel with the
 * 32x8 tile. Backward: one fused kernel reads dy (tile with halo), x
 * (tile, only when dk is needed) and k (once, only when dx is needed) and
 * accumulates into dx and dk in place (gather form, no atomics), or stores
 * into them when they are new (clsynth_grad_for_write: no zero fill, no read);
 * nothing is allocated besides the gradients themselves. The forward saves nothing extra for backward: x and k are
 * the op's inputs. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/launch.h"
#include "clcore/ops.h"

/* Tunables (VW, TILE_W, TILE_H; the work-group follows from them): the
 * descriptors of clcore/ops_dwconv_kdef.c at shape key "<N*C>x<H>x<W>". */
static int dw_config(clsynth_ctx *ctx, const clsynth_kdef *def, const clsynth_tensor *x, clsynth_kforce *force,
                     clsynth_kcfg *cfg)
{
    const clsynth_dwconv_shape s = { x->n * x->c, x->h, x->w };
    return clsynth_kconfig(ctx, def, &s, force, cfg);
}

static void dw_global(const clsynth_tensor *x, const clsynth_kcfg *cfg, size_t g[3])
{
    const int tw = cfg->v[DW_TILE_W], th = cfg->v[DW_TILE_H];
    g[0] = (size_t)((x->w + tw - 1) / tw) * cfg->local[0];
    g[1] = (size_t)((x->h + th - 1) / th) * cfg->local[1];
    g[2] = (size_t)x->n * (size_t)x->c;
}

static int dwconv_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *kt = nd->in[1], *dy = nd->out->grad;
    int need_dx = (x->flags & CLSYNTH_T_REQUIRES_GRAD) != 0;
    int need_dk = (kt->flags & CLSYNTH_T_REQUIRES_GRAD) != 0;
    if (!need_dx && !need_dk)
        return 0;
    /* 1: add to an existing gradient, 2: store into a fresh one (kernels/dwconv.cl) */
    int acc_x = 0, acc_k = 0;
    clsynth_tensor *dx = need_dx ? clsynth_grad_for_write(ctx, x, &acc_x) : dy;
    clsynth_tensor *dk = need_dk ? clsynth_grad_for_write(ctx, kt, &acc_k) : dy;
    if (!dx || !dk)
        return -1;
    need_dx = need_dx ? (acc_x ? 1 : 2) : 0;
    need_dk = need_dk ? (acc_k ? 1 : 2) : 0;
    clsynth_kcfg cfg;
    if (dw_config(ctx, &clsynth_kdef_dwconv_bwd, x, nd->force, &cfg))
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, cfg.k[0], "dwconv_bwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, kt);
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, dx);
    clsynth_arg_tensor(&a, dk);
    CLSYNTH_ARG_INTS(&a, need_dx, need_dk, x->n * x->c, x->c, x->h, x->w);
    size_t g[3];
    dw_global(x, &cfg, g);
    return clsynth_launch(&a, 3, g, cfg.local, cfg.local_mem, NULL);
}

clsynth_tensor *clsynth_cond_dwconv_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *k,
                                           clsynth_kforce *force)
{
    if (ctx->failed || !x || !k)
        return NULL;
    char bx[160], bk[160];
    if (k->n != x->n || (long)k->c != 9L * x->c || k->h != x->h || k->w != x->w) {
        clsynth_ctx_fail(ctx, "cond_dwconv: kernels %s must be (N, 9C, H, W) = (%d, %ld, %d, %d) for input %s",
                         clsynth_tensor_describe(k, bk, sizeof bk), x->n, 9L * x->c, x->h, x->w,
                         clsynth_tensor_describe(x, bx, sizeof bx));
        return NULL;
    }
    clsynth_tensor *y = clsynth_tensor_new(ctx, "cond_dwconv", x->n, x->c, x->h, x->w); /* (N, C, H, W) */
    if (!y)
        return NULL;
    clsynth_kcfg cfg;
    if (dw_config(ctx, &clsynth_kdef_dwconv_fwd, x, force, &cfg))
        return NULL;
    clsynth_args a = clsynth_args_begin(ctx, cfg.k[0], "dwconv_fwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, k);
    clsynth_arg_tensor(&a, y);
    CLSYNTH_ARG_INTS(&a, x->n * x->c, x->c, x->h, x->w);
    size_t g[3];
    dw_global(x, &cfg, g);
    if (clsynth_launch(&a, 3, g, cfg.local, cfg.local_mem, NULL))
        return NULL;
    clsynth_tensor *in[2] = { x, k };
    clsynth_node *nd = clsynth_tape_record(ctx, "cond_dwconv", dwconv_backward, y, in, 2);
    if (nd)
        nd->force = force;
    return ctx->failed ? NULL : y;
}

clsynth_tensor *clsynth_cond_dwconv(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *k)
{
    return clsynth_cond_dwconv_forced(ctx, x, k, NULL);
}
