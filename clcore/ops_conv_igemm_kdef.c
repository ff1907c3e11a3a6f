/* Descriptors of the implicit-GEMM convolution kernels (kernels/conv_igemm.cl,
 * clcore/ops_conv_igemm.c) and of Winograd's batched GEMM
 * (clcore/ops_conv_winograd.c): conv_igemm_fwd, conv_igemm_bwd_data,
 * conv_igemm_bwd_weight, conv_winograd. See clcore/kdef.h.
 *
 * One set of GEMM tunables for all four (the kernel file's header explains
 * them); the backward weight adds its K-split. The work-group is (NDIMC,
 * MDIMC); local memory (MWG + NWG) * KWG floats with USE_LOCAL. */
#include <stdio.h>

#include "clcore/gemm.h"
#include "clcore/kdefs.h"
#include "clcore/ops.h"

static int oh_of(const clsynth_conv_shape *s) { return clsynth_conv_out_size(s->h, s->kh, s->stride, s->pad); }
static int ow_of(const clsynth_conv_shape *s) { return clsynth_conv_out_size(s->w, s->kw, s->stride, s->pad); }
static int cdiv(int a, int b) { return (a + b - 1) / b; }

void clsynth_igemm_dims(const clsynth_kdef *d, const clsynth_conv_shape *s, int *M, int *N, int *K)
{
    if (d == &clsynth_kdef_conv_igemm_bwd_data) {
        /* the largest stride phase: pixels iy = py + s*q, taps ky = ky0 + s*t */
        *M = s->cin;
        *N = s->n * cdiv(s->h, s->stride) * cdiv(s->w, s->stride);
        *K = s->cout * cdiv(s->kh, s->stride) * cdiv(s->kw, s->stride);
    } else if (d == &clsynth_kdef_conv_igemm_bwd_weight) {
        *M = s->cout;
        *N = s->cin * s->kh * s->kw;
        *K = s->n * oh_of(s) * ow_of(s);
    } else if (d == &clsynth_kdef_conv_winograd) {
        *M = s->cout;
        *N = s->n * cdiv(oh_of(s), 2) * cdiv(ow_of(s), 2);
        *K = s->cin;
    } else {
        *M = s->cout;
        *N = s->n * oh_of(s) * ow_of(s);
        *K = s->cin * s->kh * s->kw;
    }
}

/* ------------------------------------------------------------ rules */

/* A tile beyond the next power of two of its dimension only idles (the
 * smallest tile is always allowed). */
static bool tile_fits_dim(int tile, int dim) { return tile <= 16 || tile <= clsynth_pow2_ceil(dim); }

#define IG_MAX_ACC 64 /* accumulators per item (MWI * NWI): registers */
#define IG_MIN_ACC 4  /* fewer is no register blocking */
#define IG_MIN_WG 16  /* smaller work-groups idle most SIMD lanes */

static bool ig_structure_ok(const int *v)
{
    const int mwg = v[IG_MWG], nwg = v[IG_NWG];
    if (mwg % (v[IG_MDIMC] * v[IG_VWM]) || nwg % (v[IG_NDIMC] * v[IG_VWN]))
        return false;
    const int acc = (mwg / v[IG_MDIMC]) * (nwg / v[IG_NDIMC]);
    if (acc > IG_MAX_ACC || acc < IG_MIN_ACC || v[IG_MDIMC] * v[IG_NDIMC] < IG_MIN_WG)
        return false;
    /* without local memory KWG and VWM do nothing: one canonical value each */
    if (!v[IG_USE_LOCAL] && (v[IG_KWG] != 16 || v[IG_VWM] != 1))
        return false;
    return true;
}

static bool ig_valid_for(const clsynth_kdef *d, const int *v, const void *shape)
{
    const clsynth_conv_shape *s = shape;
    int M, N, K;
    clsynth_igemm_dims(d, s, &M, &N, &K);
    return ig_structure_ok(v) && tile_fits_dim(v[IG_MWG], M) && tile_fits_dim(v[IG_NWG], N) &&
           (!v[IG_USE_LOCAL] || v[IG_KWG] <= 8 || v[IG_KWG] <= clsynth_pow2_ceil(K));
}

static bool fwd_valid(const int *v, const void *shape) { return ig_valid_for(&clsynth_kdef_conv_igemm_fwd, v, shape); }
static bool bwd_data_valid(const int *v, const void *shape)
{
    return ig_valid_for(&clsynth_kdef_conv_igemm_bwd_data, v, shape);
}
static bool wino_valid(const int *v, const void *shape) { return ig_valid_for(&clsynth_kdef_conv_winograd, v, shape); }

/* The partial sums of a K-split stay below 32 MiB and each split sums at least 32 k. */
#define IG_KSPLIT_MAX_BYTES ((size_t)32 << 20)

static bool bwd_weight_valid(const int *v, const void *shape)
{
    const clsynth_conv_shape *s = shape;
    if (!ig_valid_for(&clsynth_kdef_conv_igemm_bwd_weight, v, shape))
        return false;
    int M, N, K;
    clsynth_igemm_dims(&clsynth_kdef_conv_igemm_bwd_weight, s, &M, &N, &K);
    const int split = v[IG_KSPLIT];
    if (split <= 1)
        return true;
    return K / split >= 32 && (size_t)split * (size_t)M * (size_t)N * sizeof(float) <= IG_KSPLIT_MAX_BYTES;
}

static bool ig_local(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3])
{
    (void)shape;
    (void)lim;
    local[0] = (size_t)v[IG_NDIMC];
    local[1] = (size_t)v[IG_MDIMC];
    local[2] = 1;
    return true;
}

static size_t ig_lmem(const int *v, const void *shape, const size_t local[3])
{
    (void)shape;
    (void)local;
    return v[IG_USE_LOCAL] ? (size_t)(v[IG_MWG] + v[IG_NWG]) * (size_t)v[IG_KWG] * sizeof(float) : 0;
}

/* The defaults made legal here: the work-group within the limits (the larger
 * of MDIMC, NDIMC halves first), tiles no larger than the GEMM needs, local
 * memory within the limit (KWG halves, then the larger tile; else no local
 * memory), divisibility restored by lowering vector widths, then MDIMC/NDIMC. */
static void ig_fit_for(const clsynth_kdef *d, int *v, const void *shape, const clsynth_klimits *lim)
{
    const clsynth_conv_shape *s = shape;
    int M, N, K;
    clsynth_igemm_dims(d, s, &M, &N, &K);
    while (v[IG_NDIMC] > 4 && (size_t)v[IG_NDIMC] > lim->max_item[0])
        v[IG_NDIMC] /= 2;
    while (v[IG_MDIMC] > 2 && (size_t)v[IG_MDIMC] > lim->max_item[1])
        v[IG_MDIMC] /= 2;
    while ((size_t)(v[IG_MDIMC] * v[IG_NDIMC]) > lim->max_wg && v[IG_MDIMC] * v[IG_NDIMC] > 8) {
        if (v[IG_MDIMC] >= v[IG_NDIMC] && v[IG_MDIMC] > 2)
            v[IG_MDIMC] /= 2;
        else
            v[IG_NDIMC] /= 2;
    }
    while (v[IG_MWG] > 16 && v[IG_MWG] / 2 >= clsynth_pow2_ceil(M))
        v[IG_MWG] /= 2;
    while (v[IG_NWG] > 16 && v[IG_NWG] / 2 >= clsynth_pow2_ceil(N))
        v[IG_NWG] /= 2;
    while (v[IG_USE_LOCAL] && v[IG_KWG] > 8 && v[IG_KWG] / 2 >= clsynth_pow2_ceil(K))
        v[IG_KWG] /= 2;
    while (v[IG_USE_LOCAL] && (size_t)(v[IG_MWG] + v[IG_NWG]) * (size_t)v[IG_KWG] * sizeof(float) > lim->local_mem) {
        if (v[IG_KWG] > 8)
            v[IG_KWG] /= 2;
        else if (v[IG_MWG] >= v[IG_NWG] && v[IG_MWG] > 16)
            v[IG_MWG] /= 2;
        else if (v[IG_NWG] > 16)
            v[IG_NWG] /= 2;
        else
            v[IG_USE_LOCAL] = 0;
    }
    if (!v[IG_USE_LOCAL]) {
        v[IG_KWG] = 16;
        v[IG_VWM] = 1;
    }
    while (v[IG_MWG] % (v[IG_MDIMC] * v[IG_VWM])) {
        if (v[IG_VWM] > 1)
            v[IG_VWM] /= 2;
        else
            v[IG_MDIMC] /= 2;
    }
    while (v[IG_NWG] % (v[IG_NDIMC] * v[IG_VWN])) {
        if (v[IG_VWN] > 1)
            v[IG_VWN] /= 2;
        else
            v[IG_NDIMC] /= 2;
    }
    /* too many accumulators per item after the work-group shrank: smaller tiles */
    while ((v[IG_MWG] / v[IG_MDIMC]) * (v[IG_NWG] / v[IG_NDIMC]) > IG_MAX_ACC) {
        if (v[IG_MWG] / v[IG_MDIMC] >= v[IG_NWG] / v[IG_NDIMC] && v[IG_MWG] > v[IG_MDIMC] * v[IG_VWM])
            v[IG_MWG] /= 2;
        else if (v[IG_NWG] > v[IG_NDIMC] * v[IG_VWN])
            v[IG_NWG] /= 2;
        else
            break;
    }
}

static void fwd_fit(int *v, const void *shape, const clsynth_klimits *lim)
{
    ig_fit_for(&clsynth_kdef_conv_igemm_fwd, v, shape, lim);
}
static void bwd_data_fit(int *v, const void *shape, const clsynth_klimits *lim)
{
    ig_fit_for(&clsynth_kdef_conv_igemm_bwd_data, v, shape, lim);
}
static void bwd_weight_fit(int *v, const void *shape, const clsynth_klimits *lim)
{
    ig_fit_for(&clsynth_kdef_conv_igemm_bwd_weight, v, shape, lim);
}
static void wino_fit(int *v, const void *shape, const clsynth_klimits *lim)
{
    ig_fit_for(&clsynth_kdef_conv_winograd, v, shape, lim);
    if (!v[WINO_GEMM])
        v[WINO_GEMM] = lim->dev && clsynth_gemm_host_capable(lim->dev) ? WINO_GEMM_DISPATCH : WINO_GEMM_IGEMM;
}

/* Winograd's shape rule: 3x3 stride 1 (a key of another conv is not one of its shapes). */
static bool wino_parse(const char *key, void *shape)
{
    const clsynth_conv_shape *s = shape;
    return clsynth_conv_shape_parse(key, shape) && s->kh == 3 && s->kw == 3 && s->stride == 1;
}

/* ------------------------------------------------------------ shapes */

/* Odd sizes, batch 2 and 3, channel counts that are multiples of nothing,
 * Cout above one 64-row tile, strides 1 and 2, 1x1, 3x3 and 4x4 (a stride-2
 * 1x1 has stride phases without taps); the first is the smallest. */
static const clsynth_conv_shape test_shapes[] = {
    { 2, 3, 5, 7, 5, 3, 3, 1, 1 },  { 2, 17, 13, 11, 9, 3, 3, 1, 1 }, { 2, 5, 9, 7, 17, 3, 3, 2, 1 },
    { 3, 6, 7, 5, 11, 1, 1, 1, 0 }, { 2, 4, 7, 9, 70, 1, 1, 2, 0 },   { 2, 9, 6, 10, 6, 4, 4, 2, 2 },
};
/* Winograd: 3x3 stride 1, pads 0, 1, 2, odd outputs (half-empty tiles) */
static const clsynth_conv_shape wino_shapes[] = {
    { 2, 3, 5, 7, 5, 3, 3, 1, 1 },
    { 2, 17, 13, 11, 9, 3, 3, 1, 1 },
    { 3, 5, 6, 9, 33, 3, 3, 1, 0 },
    { 2, 4, 7, 5, 3, 3, 3, 1, 2 },
};

/* Representative CC-FPSE shapes (as conv2d's): 256 channels at 32x32, 64 at
 * 128x128; the CC block's 1x1 at batch 4. */
static const clsynth_conv_shape bench_fwd[] = {
    { 1, 256, 32, 32, 256, 3, 3, 1, 1 },
    { 1, 64, 128, 128, 64, 3, 3, 1, 1 },
    { 4, 256, 32, 32, 256, 1, 1, 1, 0 },
};
static const clsynth_conv_shape bench_bwd[] = {
    { 1, 256, 32, 32, 256, 3, 3, 1, 1 },
    { 1, 64, 128, 128, 64, 3, 3, 1, 1 },
};
static const clsynth_conv_shape bench_wino[] = {
    { 1, 256, 32, 32, 256, 3, 3, 1, 1 },
    { 1, 64, 128, 128, 64, 3, 3, 1, 1 },
};

/* ------------------------------------------------------------ harness */

static int setup_plain(clsynth_ctx *ctx, clsynth_kbench *b)
{
    const clsynth_conv_shape *s = (const clsynth_conv_shape *)&b->shape;
    const float ws = 1.0f / (float)(s->cin * s->kh * s->kw);
    if (clsynth_kbench_input(ctx, b, "tune.x", s->n, s->cin, s->h, s->w, 1, 1.0f) ||
        clsynth_kbench_input(ctx, b, "tune.w", s->cout, s->cin, s->kh, s->kw, 2, ws) ||
        clsynth_kbench_input(ctx, b, "tune.b", 1, s->cout, 1, 1, 3, 0.1f))
        return -1;
    double oh = oh_of(s), ow = ow_of(s);
    b->flops = 2.0 * s->n * s->cout * oh * ow * s->cin * s->kh * s->kw;
    b->bytes = 4.0 * ((double)s->n * s->cin * s->h * s->w + (double)s->n * s->cout * oh * ow +
                      (double)s->cout * s->cin * s->kh * s->kw);
    return 0;
}

/* x, w, b, gate, residual */
static int setup_fused(clsynth_ctx *ctx, clsynth_kbench *b)
{
    const clsynth_conv_shape *s = (const clsynth_conv_shape *)&b->shape;
    if (setup_plain(ctx, b) ||
        clsynth_kbench_input(ctx, b, "tune.gate", s->n, s->cout, oh_of(s), ow_of(s), 4, 1.0f) ||
        clsynth_kbench_input(ctx, b, "tune.residual", s->n, s->cout, oh_of(s), ow_of(s), 5, 1.0f))
        return -1;
    b->bytes += 8.0 * s->n * s->cout * oh_of(s) * ow_of(s);
    return 0;
}

static clsynth_tensor *run_plain(clsynth_ctx *ctx, clsynth_kbench *b, clsynth_kforce *force)
{
    const clsynth_conv_shape *s = (const clsynth_conv_shape *)&b->shape;
    return clsynth_conv2d_forced(ctx, b->in[0], b->in[1], b->in[2], s->stride, s->pad, CLSYNTH_CONV_IGEMM, force);
}

/* The CC block's second pointwise conv: LeakyReLU(0.2)((conv + b) * gate) + residual. */
static clsynth_tensor *run_fused_igemm(clsynth_ctx *ctx, clsynth_kbench *b, clsynth_kforce *force)
{
    const clsynth_conv_shape *s = (const clsynth_conv_shape *)&b->shape;
    const clsynth_conv_epilogue e = { CLSYNTH_ACT_LEAKY_RELU, 0.2f, b->in[3], b->in[4] };
    return clsynth_conv2d_fused_forced(ctx, b->in[0], b->in[1], b->in[2], s->stride, s->pad, &e,
                                       CLSYNTH_CONV_IGEMM, force);
}

/* ReLU((conv + b) * gate) + residual by Winograd (forward and backward data). */
static clsynth_tensor *run_fused_wino(clsynth_ctx *ctx, clsynth_kbench *b, clsynth_kforce *force)
{
    const clsynth_conv_shape *s = (const clsynth_conv_shape *)&b->shape;
    const clsynth_conv_epilogue e = { CLSYNTH_ACT_RELU, 0.0f, b->in[3], b->in[4] };
    return clsynth_conv2d_fused_forced(ctx, b->in[0], b->in[1], b->in[2], s->stride, s->pad, &e,
                                       CLSYNTH_CONV_WINOGRAD, force);
}

/* ------------------------------------------------------------ descriptors */

/* Defaults: CPU devices read from global memory (barriers make their
 * compilers keep the accumulators in memory) with 8x4 outputs per item;
 * GPUs stage 64x64 tiles in local memory with 4x4 per item (CLBlast-like;
 * no GPU was available to measure them). */
#define IG_PARAMS_ONLY(oa)                                                                                            \
    { .name = "MWG", .kind = CLSYNTH_K_DEFINE, .n = 4, .values = { 32, 16, 64, 128 }, .def = 64, .only_algo = (oa),   \
      .by_class = { { "cpu", 32 } } },                                                                                \
    { .name = "NWG", .kind = CLSYNTH_K_DEFINE, .n = 4, .values = { 32, 16, 64, 128 }, .def = 64, .only_algo = (oa),   \
      .by_class = { { "cpu", 32 } } },                                                                                \
    { .name = "KWG", .kind = CLSYNTH_K_DEFINE, .n = 3, .values = { 16, 8, 32 }, .def = 16, .only_algo = (oa) },       \
    { .name = "MDIMC", .kind = CLSYNTH_K_DEFINE, .n = 5, .values = { 8, 2, 4, 16, 32 }, .def = 16, .only_algo = (oa), \
      .by_class = { { "cpu", 4 } } },                                                                                 \
    { .name = "NDIMC", .kind = CLSYNTH_K_DEFINE, .n = 4, .values = { 8, 4, 16, 32 }, .def = 16, .only_algo = (oa),    \
      .by_class = { { "cpu", 8 } } },                                                                                 \
    { .name = "VWM", .kind = CLSYNTH_K_DEFINE, .n = 3, .values = { 1, 2, 4 }, .def = 2, .only_algo = (oa),            \
      .by_class = { { "cpu", 1 } } },                                                                                 \
    { .name = "VWN", .kind = CLSYNTH_K_DEFINE, .n = 3, .values = { 1, 2, 4 }, .def = 2, .only_algo = (oa),            \
      .by_class = { { "cpu", 1 } } },                                                                                 \
    { .name = "USE_LOCAL", .kind = CLSYNTH_K_DEFINE, .n = 2, .values = { 1, 0 }, .def = 1, .only_algo = (oa),         \
      .by_class = { { "cpu", 0 } } }
#define IG_PARAMS IG_PARAMS_ONLY(0)

const clsynth_kdef clsynth_kdef_conv_igemm_fwd = {
    .key = "conv_igemm_fwd", .op = "clsynth_conv2d_fused (implicit GEMM)", .file = "conv_igemm.cl",
    .kernels = { "igemm_fwd" }, .dims = 2, .backward = false, .n_params = 8,
    .params = { IG_PARAMS },
    .shape_size = sizeof(clsynth_conv_shape), .format = clsynth_conv_shape_format, .parse = clsynth_conv_shape_parse,
    .valid = fwd_valid, .local_size = ig_local, .local_mem = ig_lmem, .fit = fwd_fit,
    .test_shapes = test_shapes, .n_test_shapes = 6,
    .bench_shapes = bench_fwd, .n_bench_shapes = 3,
    .setup = setup_fused, .run = run_fused_igemm,
};

const clsynth_kdef clsynth_kdef_conv_igemm_bwd_data = {
    .key = "conv_igemm_bwd_data", .op = "clsynth_conv2d (implicit GEMM, backward, dx)", .file = "conv_igemm.cl",
    .kernels = { "igemm_bwd_data" }, .dims = 3, .backward = true, .grad_mask = 1u << 0, .n_params = 8,
    .params = { IG_PARAMS },
    .shape_size = sizeof(clsynth_conv_shape), .format = clsynth_conv_shape_format, .parse = clsynth_conv_shape_parse,
    .valid = bwd_data_valid, .local_size = ig_local, .local_mem = ig_lmem, .fit = bwd_data_fit,
    .test_shapes = test_shapes, .n_test_shapes = 6,
    .bench_shapes = bench_bwd, .n_bench_shapes = 2,
    .setup = setup_plain, .run = run_plain,
};

/* KSPLIT 0: the op chooses (clcore/ops_conv_igemm.c: enough work-groups for the device). */
const clsynth_kdef clsynth_kdef_conv_igemm_bwd_weight = {
    .key = "conv_igemm_bwd_weight", .op = "clsynth_conv2d (implicit GEMM, backward, dw)", .file = "conv_igemm.cl",
    .kernels = { "igemm_bwd_weight", "igemm_ksplit_reduce" }, .dims = 3, .backward = true, .grad_mask = 1u << 1,
    .n_params = 9,
    .params = {
        IG_PARAMS,
        { .name = "KSPLIT", .kind = CLSYNTH_K_HOST, .n = 7, .values = { 0, 1, 2, 4, 8, 16, 32 }, .def = 0 },
    },
    .shape_size = sizeof(clsynth_conv_shape), .format = clsynth_conv_shape_format, .parse = clsynth_conv_shape_parse,
    .valid = bwd_weight_valid, .local_size = ig_local, .local_mem = ig_lmem, .fit = bwd_weight_fit,
    .test_shapes = test_shapes, .n_test_shapes = 6,
    .bench_shapes = bench_bwd, .n_bench_shapes = 2,
    .setup = setup_plain, .run = run_plain,
};

/* Winograd F(2x2, 3x3): the tunables are those of its 16 batched GEMMs
 * (igemm_batched); the transforms (kernels/conv_winograd.cl) have none. The
 * harness runs forward and the backward data (x, gate and residual need
 * gradients), so both directions are checked and timed. */
const clsynth_kdef clsynth_kdef_conv_winograd = {
    .key = "conv_winograd", .op = "clsynth_conv2d_fused (Winograd F(2x2,3x3))", .file = "conv_igemm.cl",
    .kernels = { "igemm_batched" }, .kernels_algo = WINO_GEMM_IGEMM, .dims = 3, .backward = true,
    .grad_mask = (1u << 0) | (1u << 3) | (1u << 4),
    .n_params = 9,
    .params = {
        IG_PARAMS_ONLY(WINO_GEMM_IGEMM),
        /* 0: where the device is the host CPU, clsynth_gemm (OpenBLAS there: about 2x our kernel's
         * rate at these shapes), else igemm_batched */
        { .name = "GEMM", .kind = CLSYNTH_K_ALGO, .n = 2, .values = { WINO_GEMM_IGEMM, WINO_GEMM_DISPATCH },
          .def = 0 },
    },
    .shape_size = sizeof(clsynth_conv_shape), .format = clsynth_conv_shape_format, .parse = wino_parse,
    .valid = wino_valid, .local_size = ig_local, .local_mem = ig_lmem, .fit = wino_fit,
    .test_shapes = wino_shapes, .n_test_shapes = 4,
    .bench_shapes = bench_wino, .n_bench_shapes = 2,
    .setup = setup_fused, .run = run_fused_wino,
};
