/* The direct convolution (kernels/conv_fwd.cl, conv_bwd.cl): a tiled forward
 * kernel (the work-group's input patch in local memory, COUT_PER_ITEM output
 * channels per item in registers, the bias added in the kernel), a gather
 * kernel for dx and a kernel for dw. No column buffer, no GEMM library:
 * it wins where a GEMM's M dimension (Cout) is too small to fill a tile.
 * Tunables: the descriptors "conv_fwd_direct", "conv_bwd_data_direct" and
 * "conv_bwd_weight_direct" (clcore/ops_conv_kdef.c). */
#include "clcore/launch.h"
#include "clcore/ops_conv_impl.h"

static int direct_forward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    static const char kname[] = "conv_fwd_direct";
    const clsynth_conv_geom *g = &c->g;
    const clsynth_conv_shape s = clsynth_conv_shape_of(g);
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, &clsynth_kdef_conv_fwd_direct, &s, c->force, &cfg))
        return -1;
    /* the tile is the work-group; cc input channels of its padded patch sit
     * in local memory at once (the resolver checked that they fit) */
    const int cpi = cfg.v[CONV_FWD_COUT_PER_ITEM];
    const int cc = cfg.v[CONV_FWD_CIN_CHUNK] < g->Cin ? cfg.v[CONV_FWD_CIN_CHUNK] : g->Cin;
    const size_t local_bytes = cfg.local_mem ? cfg.local_mem : sizeof(float);
    int ncob = (g->Cout + cpi - 1) / cpi;
    clsynth_args a = clsynth_args_begin(ctx, cfg.k[0], kname);
    clsynth_arg_tensor(&a, c->x);
    clsynth_arg_tensor(&a, c->w);
    clsynth_arg_tensor(&a, c->b ? c->b : c->w); /* any valid buffer when there is no bias */
    clsynth_arg_int(&a, c->b != NULL);
    clsynth_arg_tensor(&a, c->y);
    CLSYNTH_ARG_INTS(&a, g->N, g->Cin, g->H, g->W, g->Cout, g->OH, g->OW, g->KH, g->KW, g->stride, g->pad, cc);
    clsynth_arg_local(&a, local_bytes);
    size_t global[3] = { clsynth_round_up((size_t)g->OW, cfg.local[0]), clsynth_round_up((size_t)g->OH, cfg.local[1]),
                         (size_t)g->N * (size_t)ncob };
    return clsynth_launch(&a, 3, global, cfg.local, local_bytes, NULL);
}

/* One direct backward kernel of descriptor def: tensors a, b -> out, the
 * geometry, over dims dimensions of work; the global size follows from its
 * COUT_PER_ITEM (channels per item along the last dimension). */
static int direct_backward_kernel(clsynth_ctx *ctx, const clsynth_conv_call *c, const clsynth_kdef *def,
                                  clsynth_tensor *a, clsynth_tensor *b, clsynth_tensor *out, int channels)
{
    const clsynth_conv_geom *g = &c->g;
    const clsynth_conv_shape s = clsynth_conv_shape_of(g);
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, def, &s, c->force, &cfg))
        return -1;
    clsynth_args ar = clsynth_args_begin(ctx, cfg.k[0], def->kernels[0]);
    clsynth_arg_tensor(&ar, a);
    clsynth_arg_tensor(&ar, b);
    clsynth_arg_tensor(&ar, out);
    CLSYNTH_ARG_INTS(&ar, g->N, g->Cin, g->H, g->W, g->Cout, g->OH, g->OW, g->KH, g->KW, g->stride, g->pad);
    const int cpi = cfg.v[CONV_BWD_COUT_PER_ITEM];
    const size_t blocks = (size_t)((channels + cpi - 1) / cpi);
    if (def == &clsynth_kdef_conv_bwd_data_direct) {
        clsynth_arg_int(&ar, !c->dx_fresh); /* a fresh dx is stored, not zero-filled and added to */
        size_t global[3] = { (size_t)g->W, (size_t)g->H, (size_t)g->N * blocks }; /* (W, H, N * Cin blocks) */
        return clsynth_launch(&ar, 3, global, cfg.local, 0, NULL);
    }
    size_t global[2] = { (size_t)g->Cin * (size_t)(g->KH * g->KW), blocks }; /* (Cin*KH*KW, Cout blocks) */
    return clsynth_launch(&ar, 2, global, cfg.local, 0, NULL);
}

/* dw += sum_n dy_n (x) x_n; dx (+)= conv_transpose(dy, w) */
static int direct_backward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    if (c->dw && direct_backward_kernel(ctx, c, &clsynth_kdef_conv_bwd_weight_direct, c->dy, c->x, c->dw, c->g.Cout))
        return -1;
    if (c->dx && direct_backward_kernel(ctx, c, &clsynth_kdef_conv_bwd_data_direct, c->dy, c->w, c->dx, c->g.Cin))
        return -1;
    return 0;
}

const clsynth_conv_impl clsynth_conv_impl_direct = { "direct", direct_forward, direct_backward, false, true };
