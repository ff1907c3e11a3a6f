/* Implicit-GEMM convolution (kernels/conv_igemm.cl): forward with the fused
 * epilogue, backward data by stride phases, backward weight with a
 * deterministic K-split, and the batched plain GEMM Winograd runs. Each
 * resolves its descriptor (clcore/ops_conv_igemm_kdef.c) at the conv's shape
 * and launches one kernel over the whole batch (two for a K-split). */
#include <stdio.h>

#include "clcore/kconfig.h"
#include "clcore/launch.h"
#include "clcore/ops_conv_impl.h"
#include "clcore/program.h"

/* epilogue bits of igemm_fwd (and wino_output) */
enum { EPI_BIAS = 1, EPI_GATE = 2, EPI_RES = 4, EPI_SAVE_U = 8 };

static size_t groups_of(int n, int tile) { return (size_t)((n + tile - 1) / tile); }

/* global size of a (M, N) GEMM tiled by cfg, z in dimension 2 */
static void gemm_global(const clsynth_kcfg *cfg, int M, int N, int z, size_t global[3])
{
    global[0] = groups_of(N, cfg->v[IG_NWG]) * (size_t)cfg->v[IG_NDIMC];
    global[1] = groups_of(M, cfg->v[IG_MWG]) * (size_t)cfg->v[IG_MDIMC];
    global[2] = (size_t)z;
}

static void shape_args(clsynth_args *a, const clsynth_conv_shape *s)
{
    CLSYNTH_ARG_INTS(a, s->n, s->cin, s->h, s->w, s->cout, clsynth_conv_oh(s), clsynth_conv_ow(s), s->kh, s->kw,
                     s->stride, s->pad);
}

int clsynth_conv_igemm_forward(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force,
                               const clsynth_tensor *x, const clsynth_tensor *w, const clsynth_tensor *b,
                               const clsynth_conv_epi_run *epi, clsynth_tensor *y)
{
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, &clsynth_kdef_conv_igemm_fwd, s, force, &cfg))
        return -1;
    int M, N, K;
    clsynth_igemm_dims(&clsynth_kdef_conv_igemm_fwd, s, &M, &N, &K);
    int bits = b ? EPI_BIAS : 0;
    if (epi) {
        bits |= (epi->gate ? EPI_GATE : 0) | (epi->residual ? EPI_RES : 0) | (epi->save_u ? EPI_SAVE_U : 0);
    }
    /* absent tensors: any valid buffer (never read) */
    clsynth_args a = clsynth_args_begin(ctx, cfg.k[0], "igemm_fwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, w);
    clsynth_arg_tensor(&a, b ? b : w);
    clsynth_arg_tensor(&a, epi && epi->gate ? epi->gate : y);
    clsynth_arg_tensor(&a, epi && epi->residual ? epi->residual : y);
    clsynth_arg_tensor(&a, y);
    clsynth_arg_tensor(&a, epi && epi->save_u ? epi->save_u : y);
    shape_args(&a, s);
    clsynth_arg_int(&a, bits);
    clsynth_arg_int(&a, epi ? (int)epi->act : 0);
    clsynth_arg_float(&a, epi ? epi->slope : 0.0f);
    size_t global[3];
    gemm_global(&cfg, M, N, 1, global);
    return clsynth_launch(&a, 2, global, cfg.local, cfg.local_mem, NULL);
}

int clsynth_conv_igemm_backward_data(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force,
                                     const clsynth_tensor *dy, const clsynth_tensor *w, clsynth_tensor *dx)
{
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, &clsynth_kdef_conv_igemm_bwd_data, s, force, &cfg))
        return -1;
    int M, N, K;
    clsynth_igemm_dims(&clsynth_kdef_conv_igemm_bwd_data, s, &M, &N, &K);
    clsynth_args a = clsynth_args_begin(ctx, cfg.k[0], "igemm_bwd_data");
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, w);
    clsynth_arg_tensor(&a, dx);
    shape_args(&a, s);
    size_t global[3];
    gemm_global(&cfg, M, N, s->stride * s->stride, global); /* one z per stride phase */
    return clsynth_launch(&a, 3, global, cfg.local, cfg.local_mem, NULL);
}

/* The K-split when the configuration leaves it to the op (KSPLIT 0): split
 * while the work-groups are fewer than 4 per compute unit (at least 16), each
 * split keeps 512 k or more, and the partial sums stay within 32 MiB. */
static int auto_split(const clsynth_ctx *ctx, const clsynth_kcfg *cfg, int M, int N, int K)
{
    const size_t tiles = groups_of(M, cfg->v[IG_MWG]) * groups_of(N, cfg->v[IG_NWG]);
    size_t want = 4 * (size_t)ctx->dev.compute_units;
    if (want < 16)
        want = 16;
    int split = 1;
    while (split < 32 && tiles * (size_t)split < want && K / (split * 2) >= 512 &&
           (size_t)split * 2 * (size_t)M * (size_t)N * sizeof(float) <= ((size_t)32 << 20))
        split *= 2;
    return split;
}

int clsynth_conv_igemm_backward_weight(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force,
                                       const clsynth_tensor *dy, const clsynth_tensor *x, clsynth_tensor *dw)
{
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, &clsynth_kdef_conv_igemm_bwd_weight, s, force, &cfg))
        return -1;
    int M, N, K;
    clsynth_igemm_dims(&clsynth_kdef_conv_igemm_bwd_weight, s, &M, &N, &K);
    int split = cfg.v[IG_KSPLIT] > 0 ? cfg.v[IG_KSPLIT] : auto_split(ctx, &cfg, M, N, K);
    /* each split a whole number of KWG slices; empty splits dropped */
    const int kwg = cfg.v[IG_KWG];
    int kc = (K + split - 1) / split;
    kc = (kc + kwg - 1) / kwg * kwg;
    split = (K + kc - 1) / kc;
    struct clsynth_block *part = NULL;
    if (split > 1) {
        part = clsynth_pool_get(ctx, (size_t)split * (size_t)M * (size_t)N * sizeof(float),
                                "conv2d implicit-GEMM weight-gradient partial sums");
        if (!part)
            return -1;
    }
    clsynth_args a = clsynth_args_begin(ctx, cfg.k[0], "igemm_bwd_weight");
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, dw);
    clsynth_arg_mem(&a, part ? clsynth_block_mem(part) : dw->mem);
    shape_args(&a, s);
    CLSYNTH_ARG_INTS(&a, kc, split == 1);
    size_t global[3];
    gemm_global(&cfg, M, N, split, global);
    int rc = clsynth_launch(&a, 3, global, cfg.local, cfg.local_mem, NULL);
    if (!rc && part) {
        clsynth_args r = clsynth_args_begin(ctx, cfg.k[1], "igemm_ksplit_reduce");
        clsynth_arg_mem(&r, clsynth_block_mem(part));
        clsynth_arg_tensor(&r, dw);
        CLSYNTH_ARG_INTS(&r, M * N, split);
        size_t total = (size_t)M * (size_t)N;
        rc = clsynth_launch(&r, 1, &total, NULL, 0, NULL);
    }
    if (part)
        clsynth_pool_put(ctx, part); /* the queue is in order: later users wait for these kernels */
    return rc;
}

int clsynth_igemm_batched(clsynth_ctx *ctx, const clsynth_kdef *def, const void *shape, clsynth_kforce *force,
                          cl_mem A, size_t a_off, size_t sa, cl_mem B, size_t b_off, size_t sb, cl_mem C, size_t c_off,
                          size_t sc, int M, int N, int K, int batches)
{
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, def, shape, force, &cfg))
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, cfg.k[0], "igemm_batched");
    clsynth_arg_mem(&a, A);
    CLSYNTH_ARG_INTS(&a, (int)a_off, (int)sa);
    clsynth_arg_mem(&a, B);
    CLSYNTH_ARG_INTS(&a, (int)b_off, (int)sb);
    clsynth_arg_mem(&a, C);
    CLSYNTH_ARG_INTS(&a, (int)c_off, (int)sc, M, N, K);
    size_t global[3];
    gemm_global(&cfg, M, N, batches, global);
    return clsynth_launch(&a, 3, global, cfg.local, cfg.local_mem, NULL);
}

/* ---- the algorithm in conv2d's dispatch table (clcore/ops_conv_impl.h) ---- */

static int igemm_impl_forward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    const clsynth_conv_shape s = clsynth_conv_shape_of(&c->g);
    return clsynth_conv_igemm_forward(ctx, &s, c->force, c->x, c->w, c->b, c->epi, c->y);
}

static int igemm_impl_backward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    const clsynth_conv_shape s = clsynth_conv_shape_of(&c->g);
    if (c->dw && clsynth_conv_igemm_backward_weight(ctx, &s, c->force, c->dy, c->x, c->dw))
        return -1;
    return c->dx ? clsynth_conv_igemm_backward_data(ctx, &s, c->force, c->dy, c->w, c->dx) : 0;
}

const clsynth_conv_impl clsynth_conv_impl_igemm = {
    .name = "igemm", .forward = igemm_impl_forward, .backward = igemm_impl_backward, .fuses_epilogue = true,
};
