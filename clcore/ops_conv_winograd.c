/* Winograd F(2x2, 3x3) convolution (kernels/conv_winograd.cl): weight
 * transform, input transform, 16 batched GEMMs (descriptor "conv_winograd"
 * at the conv's shape: our igemm_batched kernel, or clsynth_gemm, which is
 * the host BLAS on CPU devices), output transform with the fused epilogue. The transformed input and the products live in pool buffers of
 * at most CONV_WINO_BUDGET_BYTES (ctx->conv_col_bytes when set): the batch's
 * 2x2 output tiles are processed in chunks that fit. The backward data is the
 * Winograd conv of dy with the weights transposed and rotated by 180 degrees,
 * padded by 2 - pad, accumulated into dx. */
#include <stdio.h>

#include "clcore/gemm.h"
#include "clcore/kconfig.h"
#include "clcore/launch.h"
#include "clcore/ops_conv_impl.h"
#include "clcore/program.h"

#define CONV_WINO_BUDGET_BYTES ((size_t)64 << 20)
#define CONV_WINO_MIN_TILES 16

enum { EPI_BIAS = 1, EPI_GATE = 2, EPI_RES = 4, EPI_SAVE_U = 8, EPI_ACCUMULATE = 16 };

bool clsynth_conv_winograd_applies(const clsynth_conv_shape *s)
{
    return s->kh == 3 && s->kw == 3 && s->stride == 1;
}

bool clsynth_conv_winograd_backward_applies(const clsynth_conv_shape *s)
{
    return clsynth_conv_winograd_applies(s) && s->pad <= 2;
}

/* Tiles per chunk: V (16, Ci, P) and M (16, Co, P) within the budget. */
static int chunk_tiles(const clsynth_ctx *ctx, const clsynth_conv_shape *s, int tiles)
{
    size_t budget = ctx->conv_col_bytes ? ctx->conv_col_bytes : CONV_WINO_BUDGET_BYTES;
    size_t per_tile = 16 * sizeof(float) * (size_t)(s->cin + s->cout);
    size_t p = budget / per_tile;
    if (p < CONV_WINO_MIN_TILES)
        p = CONV_WINO_MIN_TILES;
    return p < (size_t)tiles ? (int)p : tiles;
}

/* out = epilogue(conv(in, g)) at conv shape s (in (n, cin, h, w), out (n,
 * cout, oh, ow)), g = w (flip 0) or the transposed, rotated w of the
 * backward data (flip 1); accumulate: out += conv (no epilogue). */
static int wino_run(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force, const clsynth_tensor *in,
                    const clsynth_tensor *w, int flip, const clsynth_tensor *b, const clsynth_conv_epi_run *epi,
                    clsynth_tensor *out, bool accumulate)
{
    if (!clsynth_conv_winograd_applies(s))
        return clsynth_ctx_fail(ctx, "conv2d (winograd): a %dx%d stride-%d conv is not 3x3 stride 1", s->kh, s->kw,
                                s->stride);
    const int Co = s->cout, Ci = s->cin, OH = clsynth_conv_oh(s), OW = clsynth_conv_ow(s);
    const int TH = (OH + 1) / 2, TW = (OW + 1) / 2, tiles = s->n * TH * TW;
    const int pc = chunk_tiles(ctx, s, tiles);
    clsynth_kcfg cfg; /* who runs the 16 GEMMs */
    if (clsynth_kconfig(ctx, &clsynth_kdef_conv_winograd, s, force, &cfg))
        return -1;
    const int gemm_algo = cfg.v[WINO_GEMM];
    cl_kernel kw = clsynth_kernel_get(ctx, "conv_winograd.cl", "wino_weight", NULL);
    cl_kernel ki = clsynth_kernel_get(ctx, "conv_winograd.cl", "wino_input", NULL);
    cl_kernel ko = clsynth_kernel_get(ctx, "conv_winograd.cl", "wino_output", NULL);
    if (!kw || !ki || !ko)
        return -1;
    struct clsynth_block *U = clsynth_pool_get(ctx, 16 * (size_t)Co * (size_t)Ci * sizeof(float),
                                               "winograd transformed weights");
    struct clsynth_block *V = clsynth_pool_get(ctx, 16 * (size_t)Ci * (size_t)pc * sizeof(float),
                                               "winograd transformed input");
    struct clsynth_block *Mb = clsynth_pool_get(ctx, 16 * (size_t)Co * (size_t)pc * sizeof(float),
                                                "winograd products");
    int rc = U && V && Mb ? 0 : -1;
    if (!rc) {
        clsynth_args a = clsynth_args_begin(ctx, kw, "wino_weight");
        clsynth_arg_tensor(&a, w);
        clsynth_arg_mem(&a, clsynth_block_mem(U));
        CLSYNTH_ARG_INTS(&a, Co, Ci, flip);
        size_t g = (size_t)Co * (size_t)Ci;
        rc = clsynth_launch(&a, 1, &g, NULL, 0, NULL);
    }
    int bits = accumulate ? EPI_ACCUMULATE : 0;
    if (!accumulate) {
        bits |= b ? EPI_BIAS : 0;
        if (epi)
            bits |= (epi->gate ? EPI_GATE : 0) | (epi->residual ? EPI_RES : 0) | (epi->save_u ? EPI_SAVE_U : 0);
    }
    for (int p0 = 0; p0 < tiles && !rc; p0 += pc) {
        const int P = tiles - p0 < pc ? tiles - p0 : pc;
        clsynth_args a = clsynth_args_begin(ctx, ki, "wino_input");
        clsynth_arg_tensor(&a, in);
        clsynth_arg_mem(&a, clsynth_block_mem(V));
        CLSYNTH_ARG_INTS(&a, Ci, s->h, s->w, TH, TW, s->pad, p0, P);
        size_t gi[2] = { (size_t)P, (size_t)Ci };
        rc = clsynth_launch(&a, 2, gi, NULL, 0, NULL);
        /* M[xi] (Co, P) = U[xi] (Co, Ci) V[xi] (Ci, P), xi < 16 */
        if (!rc && gemm_algo == WINO_GEMM_DISPATCH) {
            const clsynth_gemm_op op = {
                .m = (size_t)Co, .n = (size_t)P, .k = (size_t)Ci, .alpha = 1.0f, .beta = 0.0f,
                .a = { clsynth_block_mem(U), 0, (size_t)Ci, (size_t)Co * Ci },
                .b = { clsynth_block_mem(V), 0, (size_t)P, (size_t)Ci * P },
                .c = { clsynth_block_mem(Mb), 0, (size_t)P, (size_t)Co * P },
                .batch = 16,
            };
            rc = clsynth_gemm(ctx, "conv2d (winograd) batched GEMMs", &op, NULL);
        } else if (!rc) {
            rc = clsynth_igemm_batched(ctx, &clsynth_kdef_conv_winograd, s, force, clsynth_block_mem(U), 0,
                                       (size_t)Co * Ci, clsynth_block_mem(V), 0, (size_t)Ci * P,
                                       clsynth_block_mem(Mb), 0, (size_t)Co * P, Co, P, Ci, 16);
        }
        if (rc)
            break;
        clsynth_args o = clsynth_args_begin(ctx, ko, "wino_output");
        clsynth_arg_mem(&o, clsynth_block_mem(Mb));
        clsynth_arg_tensor(&o, b ? b : out);
        clsynth_arg_tensor(&o, epi && epi->gate ? epi->gate : out);
        clsynth_arg_tensor(&o, epi && epi->residual ? epi->residual : out);
        clsynth_arg_tensor(&o, out);
        clsynth_arg_tensor(&o, epi && epi->save_u ? epi->save_u : out);
        CLSYNTH_ARG_INTS(&o, Co, OH, OW, TH, TW, p0, P, bits, epi && !accumulate ? (int)epi->act : 0);
        clsynth_arg_float(&o, epi ? epi->slope : 0.0f);
        size_t go[2] = { (size_t)P, (size_t)Co };
        rc = clsynth_launch(&o, 2, go, NULL, 0, NULL);
    }
    /* the queue is in order: the next user of these blocks waits for the kernels above */
    if (U)
        clsynth_pool_put(ctx, U);
    if (V)
        clsynth_pool_put(ctx, V);
    if (Mb)
        clsynth_pool_put(ctx, Mb);
    return rc;
}

int clsynth_conv_winograd_forward(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force,
                                  const clsynth_tensor *x, const clsynth_tensor *w, const clsynth_tensor *b,
                                  const clsynth_conv_epi_run *epi, clsynth_tensor *y)
{
    return wino_run(ctx, s, force, x, w, 0, b, epi, y, false);
}

int clsynth_conv_winograd_backward_data(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force,
                                        const clsynth_tensor *dy, const clsynth_tensor *w, clsynth_tensor *dx)
{
    if (!clsynth_conv_winograd_backward_applies(s))
        return clsynth_ctx_fail(ctx, "conv2d (winograd) backward: pad %d > 2", s->pad);
    /* dx (n, cin, h, w) = conv(dy (n, cout, oh, ow), rot180(w^T), pad 2 - pad) */
    const clsynth_conv_shape t = { s->n, s->cout, clsynth_conv_oh(s), clsynth_conv_ow(s), s->cin, 3, 3, 1,
                                   2 - s->pad };
    return wino_run(ctx, &t, force, dy, w, 1, NULL, NULL, dx, true);
}

/* ---- the algorithm in conv2d's dispatch table (clcore/ops_conv_impl.h) ---- */

static int wino_impl_forward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    const clsynth_conv_shape s = clsynth_conv_shape_of(&c->g);
    return clsynth_conv_winograd_forward(ctx, &s, c->force, c->x, c->w, c->b, c->epi, c->y);
}

/* dw by a GEMM conv (Winograd's weight gradient would need the 4x4
 * transforms of dy and x per tile and gains little at these sizes): the
 * implicit GEMM, or where Winograd's GEMMs are clsynth_gemm's (the host BLAS
 * on CPU devices), im2col + clsynth_gemm with conv2d's default tunables of
 * that algorithm. dx by Winograd where its padding allows, else the implicit
 * GEMM. */
static int wino_dw_by_im2col(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    clsynth_kcfg cfg = *c->cfg;
    int dv[CLSYNTH_K_MAX_PARAMS] = { 0 };
    clsynth_kdef_defaults(&clsynth_kdef_conv2d, &ctx->dev, dv);
    cfg.v[CONV2D_ALGO] = CLSYNTH_CONV_IM2COL_GEMM;
    cfg.v[CONV2D_GEMM_BATCH] = dv[CONV2D_GEMM_BATCH];
    cfg.v[CONV2D_COL_ROW_ITEMS] = dv[CONV2D_COL_ROW_ITEMS];
    clsynth_conv_call dwc = *c;
    dwc.cfg = &cfg;
    dwc.dx = NULL;
    return clsynth_conv_impl_gemm.backward(ctx, &dwc);
}

static int wino_impl_backward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    const clsynth_conv_shape s = clsynth_conv_shape_of(&c->g);
    clsynth_kcfg wcfg;
    if (c->dw && clsynth_kconfig(ctx, &clsynth_kdef_conv_winograd, &s, c->force, &wcfg))
        return -1;
    if (c->dw && (wcfg.v[WINO_GEMM] == WINO_GEMM_DISPATCH ? wino_dw_by_im2col(ctx, c)
                                                          : clsynth_conv_igemm_backward_weight(ctx, &s, c->force,
                                                                                               c->dy, c->x, c->dw)))
        return -1;
    if (!c->dx)
        return 0;
    if (clsynth_conv_winograd_backward_applies(&s))
        return clsynth_conv_winograd_backward_data(ctx, &s, c->force, c->dy, c->w, c->dx);
    return clsynth_conv_igemm_backward_data(ctx, &s, c->force, c->dy, c->w, c->dx);
}

const clsynth_conv_impl clsynth_conv_impl_winograd = {
    .name = "winograd", .forward = wino_impl_forward, .backward = wino_impl_backward, .fuses_epilogue = true,
};
