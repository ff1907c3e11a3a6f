/* Descriptors of conv2d's tunable kernels (clcore/ops_conv*.c, kernels/conv_fwd.cl,
 * kernels/conv_bwd.cl):
 * the algorithm choice and the three direct kernels. See clcore/kdef.h. */
#include <stdio.h>

#include "clcore/gemm.h"
#include "clcore/kdefs.h"
#include "clcore/ops.h"
#include "clcore/ops_conv_impl.h"

int clsynth_conv_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

/* ------------------------------------------------------------ shape */

static int conv_format(const void *shape, char *key, size_t len)
{
    const clsynth_conv_shape *s = shape;
    return snprintf(key, len, "N%d.C%d.H%d.W%d.O%d.K%dx%d.S%d.P%d", s->n, s->cin, s->h, s->w, s->cout, s->kh, s->kw,
                    s->stride, s->pad);
}

static bool conv_parse(const char *key, void *shape)
{
    clsynth_conv_shape *s = shape;
    char tail = 0;
    if (sscanf(key, "N%d.C%d.H%d.W%d.O%d.K%dx%d.S%d.P%d%c", &s->n, &s->cin, &s->h, &s->w, &s->cout, &s->kh, &s->kw,
               &s->stride, &s->pad, &tail) != 9)
        return false;
    const int pos[] = { s->n, s->cin, s->h, s->w, s->cout, s->kh, s->kw, s->stride };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i] < 1 || pos[i] > 65536)
            return false;
    return s->pad >= 0 && s->h + 2 * s->pad >= s->kh && s->w + 2 * s->pad >= s->kw;
}

static int oh_of(const clsynth_conv_shape *s) { return clsynth_conv_out_size(s->h, s->kh, s->stride, s->pad); }
static int ow_of(const clsynth_conv_shape *s) { return clsynth_conv_out_size(s->w, s->kw, s->stride, s->pad); }

/* Odd sizes, batch 2, channel counts that are multiples of nothing, strides
 * 1 and 2, 1x1 and 3x3; the first is the smallest. */
static const clsynth_conv_shape test_shapes[] = {
    { 2, 3, 5, 7, 5, 3, 3, 1, 1 },
    { 2, 17, 13, 11, 9, 3, 3, 1, 1 },
    { 2, 5, 9, 7, 17, 3, 3, 2, 1 },
    { 2, 6, 7, 5, 11, 1, 1, 1, 0 },
};

/* Representative CC-FPSE shapes: 256 channels at 32x32 and 64 at 128x128,
 * batch 1 and 4; a 1x1 conv. */
static const clsynth_conv_shape bench_algo[] = {
    { 1, 256, 32, 32, 256, 3, 3, 1, 1 }, { 4, 256, 32, 32, 256, 3, 3, 1, 1 }, { 1, 64, 128, 128, 64, 3, 3, 1, 1 },
    { 4, 64, 128, 128, 64, 3, 3, 1, 1 }, { 4, 256, 32, 32, 256, 1, 1, 1, 0 },
};
static const clsynth_conv_shape bench_fwd[] = { { 1, 256, 32, 32, 256, 3, 3, 1, 1 },
                                                { 1, 64, 128, 128, 64, 3, 3, 1, 1 } };
static const clsynth_conv_shape bench_bwd[] = { { 1, 64, 128, 128, 64, 3, 3, 1, 1 } };

int clsynth_conv_shape_format(const void *shape, char *key, size_t len) { return conv_format(shape, key, len); }
bool clsynth_conv_shape_parse(const char *key, void *shape) { return conv_parse(key, shape); }

/* ------------------------------------------------------------ harness */

static int conv_setup(clsynth_ctx *ctx, clsynth_kbench *b)
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

static clsynth_tensor *conv_run_auto(clsynth_ctx *ctx, clsynth_kbench *b, clsynth_kforce *force)
{
    const clsynth_conv_shape *s = (const clsynth_conv_shape *)&b->shape;
    return clsynth_conv2d_forced(ctx, b->in[0], b->in[1], b->in[2], s->stride, s->pad, CLSYNTH_CONV_AUTO, force);
}

static clsynth_tensor *conv_run_direct(clsynth_ctx *ctx, clsynth_kbench *b, clsynth_kforce *force)
{
    const clsynth_conv_shape *s = (const clsynth_conv_shape *)&b->shape;
    return clsynth_conv2d_forced(ctx, b->in[0], b->in[1], b->in[2], s->stride, s->pad, CLSYNTH_CONV_DIRECT, force);
}

/* ------------------------------------------------------------ conv2d: the algorithm */

/* Without a tuned choice (ALGO 0) the choice follows the GEMM the device
 * runs by default (the "gemm" descriptor's class default, clcore/gemm_kdef.c).
 *
 * The host BLAS (PoCL's and Intel's CPU devices): the GEMM path pays its
 * im2col/col2im passes (rows x P floats each, whatever Cout) and one host
 * synchronization per GEMM, the direct kernels pay nothing of the kind but
 * run at a few GFLOP/s. So GEMM when the product has work for it: 3x3 (and
 * strided 1x1) from 1 M forward flops, a plain 1x1 (no im2col) from 512 K.
 * Before im2col ran as row loops, 3x3 also needed Cout >= 64 (PoCL 3.1 +
 * OpenBLAS 0.3.21, 2-core Xeon at load 12-13, every conv shape of the tiny
 * preset, min of 5 interleaved rounds, fwd+bwd ms, direct vs GEMM strided;
 * platforms.md quotes it):
 *   3x3 16->1152 8x8   47.9 vs 4.9    3x3 16->64 16x16   3.76 vs 2.70
 *   3x3 16->144 64x64 275   vs 19.5   3x3 16->64 8x8     0.87 vs 1.10
 *   3x3 44->16 64x64   93   vs 129    3x3 36->128 2x2    0.31 vs 0.74
 *   3x3 16->16 64x64   14.1 vs 24.3   1x1 36->32 64x64   14.2 vs 3.8
 *   3x3 64->32 16x16   7.2  vs 7.7    1x1 32->32 8x8     0.24 vs 0.61
 * (the GEMM's M dimension is Cout: below 64 the im2col traffic outweighed it).
 * Since im2col and col2im run one work-item per row on CPUs (COL_ROW_ITEMS), the
 * GEMM also wins below Cout 64 (PoCL 3.1, 2-core EPYC, 1 thread, load 1.6-2.4,
 * `clsynth bench conv`, fwd+bwd ms, direct vs GEMM strided):
 *   3x3 16->16 64x64   17.8 vs 4.4    3x3 36->8 64x64    20.0 vs 8.8
 *   3x3 16->8 64x64     8.3 vs 3.9    3x3 64->32 16x16    7.8 vs 1.7
 *   3x3 8->3 64x64      3.6 vs 2.1    3x3 8->8 64x64 s2   1.33 vs 1.45
 * (the tiny step's convs: 323 ms all im2col+GEMM, 502 ms with the former rule
 * Cout >= 64, 318 ms at each shape's best), so under the host BLAS every conv
 * above 1 MFLOP is a GEMM. (That rule waited for test_reference_ccfpse: its
 * former inputs sat within rounding of two LeakyReLU kinks, and the GEMM's
 * summation order flipped them on Intel's runtime; tools/ref_ccfpse_torch.py
 * says how the new ones were chosen.)
 *
 * oneDNN (a build with it, on a host-CPU device): from 512 K forward flops.
 * Every conv of the tiny step, fwd+bwd ms, min of 3 interleaved rounds,
 * `clsynth bench conv --preset tiny --repeats 3` (PoCL 5, oneDNN 2.6, 2-core
 * AVX-512 EPYC, load 0.9), direct / im2col+GEMM (OpenBLAS) / oneDNN:
 *   3x3 16->144 64x64   161    / 10.7 / 7.3    3x3 44->80 16x16   11.2 / 1.38 / 0.78
 *   3x3 16->1152 8x8     12.0  / 2.37 / 1.64   3x3 64->32 4x4     0.55 / 0.69 / 0.17
 *   1x1 36->32 64x64     11.7  / 1.57 / 1.76   1x1 128->64 4x4    0.40 / 0.23 / 0.31
 *   1x1 32->32 8x8       0.33  / 0.26 / 0.54   1x1 32->1 8x8      0.07 / 0.24 / 0.32
 * (all convs: 1,689 / 269 / 166 ms): below about 512 K flops its fixed cost
 * (map, reorders, one host synchronization: about 0.15-0.3 ms) loses to a
 * kernel, so those keep the rules below.
 * DNNL_LAYOUT (0: automatic): plain NCHW for a plain 1x1 conv and for a
 * conv whose weights outnumber its activations (x and y) 4 to 1, blocked
 * otherwise. The blocked primitive needs its weights reordered on every
 * call (they change every step; the reorder ran at about 4 GB/s), the
 * GEMM-based plain one reads them as stored but pays its own im2col.
 * oneDNN 2.6 alone, N 1, forward ms, blocked (the reorders of x, w and y
 * included) vs plain; 2 threads:
 *   3x3 1024->1024 2x2   10.77 (8.83 of it w) vs 4.55   3x3 1024->512 8x8   5.00 vs 3.58
 *   3x3 1024->1024 4x4    7.60 vs 2.40                  3x3 512->256 16x16  1.92 vs 1.59
 *   3x3 1024->1024 8x8    9.80 vs 5.35                  3x3 256->128 32x32  1.45 vs 1.73
 *   3x3 184->1024 4x4     0.53 vs 0.23                  3x3 128->64 64x64   1.52 vs 2.35
 * 1 thread: 1x1 36->32 64x64 0.262 (0.135 of it reordering x) vs 0.105; 3x3
 * 16->16 64x64 0.149 vs 0.414; 3x3 44->80 16x16 0.107 vs 0.140; 3x3 64->32
 * 8x8 0.021 vs 0.052; 3x3 16->576 8x8 0.082 vs 0.065.
 *
 * CLBlast (elsewhere), measured on PoCL 3.1 (2-core EPYC, load 5-7, best of
 * 11, N = 1, forward / forward+backward GFLOP/s, direct vs GEMM):
 *   3x3 16->16 64x64    3.3 / 3.8   vs 2.2 / 2.6   (small Cout: direct)
 *   3x3 64->3 128x128   1.8 / 1.9   vs 0.3 / 0.5   (CLBlast pads M = 3 to its tile)
 *   3x3 3->16 64x64     2.7 / 3.2   vs 2.7 / 5.1   (tie)
 *   3x3 36->64 64x64    2.5 / 1.8   vs 4.6 / 4.0
 *   3x3 64->64 32x32    2.1 / 2.9   vs 3.5 / 3.1
 *   3x3 128->128 8x8    2.2 / 4.5   vs 6.9 / 6.3
 *   1x1 64->64 64x64    0.8 / 2.2   vs 7.2 / 4.8
 * so 1x1 kernels: GEMM; otherwise GEMM when Cout >= 32.
 *
 * GEMM_BATCH (0: automatic): strided under the host BLAS (its per-sample
 * products are large enough, and strided needs no permutes: it won or tied
 * at most shapes above), merged under CLBlast (one large GEMM instead of a
 * kernel launch per sample). */
static void conv2d_fit(int *v, const void *shape, const clsynth_klimits *lim)
{
    const clsynth_conv_shape *s = shape;
    int g[CLSYNTH_K_MAX_PARAMS] = { 0 };
    clsynth_kdef_defaults(&clsynth_kdef_gemm, lim->dev, g);
    const bool host = g[GEMM_ALGO] == CLSYNTH_GEMM_HOST_BLAS;
    if (v[CONV2D_GEMM_BATCH] == 0)
        v[CONV2D_GEMM_BATCH] = host ? CONV2D_GEMM_STRIDED : CONV2D_GEMM_MERGED;
    const bool k1 = s->kh == 1 && s->kw == 1, plain = k1 && s->stride == 1 && s->pad == 0;
#ifdef CLSYNTH_HAVE_DNNL
    if (v[CONV2D_DNNL_LAYOUT] == 0) {
        const double weights = (double)s->cout * s->cin * s->kh * s->kw;
        const double acts = (double)s->n * ((double)s->cin * s->h * s->w + (double)s->cout * oh_of(s) * ow_of(s));
        v[CONV2D_DNNL_LAYOUT] = plain || weights >= 4 * acts ? CONV2D_DNNL_PLAIN : CONV2D_DNNL_BLOCKED;
    }
#endif
    if (v[CONV2D_ALGO] != 0)
        return;
    const double flops = 2.0 * s->n * s->cout * (double)oh_of(s) * ow_of(s) * s->cin * s->kh * s->kw;
    if (flops >= 512e3 && lim->dev && clsynth_conv_dnnl_capable(lim->dev) && clsynth_conv_dnnl_applies(s)) {
        v[CONV2D_ALGO] = CLSYNTH_CONV_DNNL;
        return;
    }
    bool gemm;
    if (host)
        gemm = flops >= (plain ? 512e3 : 1e6);
    else
        gemm = k1 || s->cout >= 32;
    v[CONV2D_ALGO] = gemm ? CLSYNTH_CONV_IM2COL_GEMM : CLSYNTH_CONV_DIRECT;
}

/* Winograd is F(2x2, 3x3): 3x3 stride 1 only; oneDNN needs a right padding >= 0. */
static bool conv2d_valid(const int *v, const void *shape)
{
    const clsynth_conv_shape *s = shape;
    if (v[CONV2D_ALGO] == CLSYNTH_CONV_DNNL)
        return clsynth_conv_dnnl_applies(s);
    return v[CONV2D_ALGO] != CLSYNTH_CONV_WINOGRAD || (s->kh == 3 && s->kw == 3 && s->stride == 1);
}

static bool conv2d_device_ok(const clsynth_device_info *dev, const int *v, char *why, size_t len)
{
    if (v[CONV2D_ALGO] != CLSYNTH_CONV_DNNL || clsynth_conv_dnnl_capable(dev))
        return true;
    snprintf(why, len, "the oneDNN convolution needs a host-CPU device (PoCL, Intel's CPU runtime, rusticl); this "
                       "is a device of class %s", clsynth_device_class(dev));
    return false;
}

const clsynth_kdef clsynth_kdef_conv2d = {
    .key = "conv2d", .op = "clsynth_conv2d", .backward = true,
    /* a build with oneDNN has one algorithm more: entries tuned without it are stale there */
    .revision = "direct; im2col+GEMM over the batch (GEMM_BATCH merged/strided) through clsynth_gemm; implicit "
                "GEMM; Winograd F(2x2,3x3); im2col/col2im row loops (COL_ROW_ITEMS)"
#ifdef CLSYNTH_HAVE_DNNL
                "; oneDNN on host-CPU devices (DNNL_LAYOUT blocked/plain)"
#endif
    ,
    .before = { "conv_fwd_direct", "conv_bwd_data_direct", "conv_bwd_weight_direct", "conv_igemm_fwd",
                "conv_igemm_bwd_data", "conv_igemm_bwd_weight", "conv_winograd" },
#ifdef CLSYNTH_HAVE_DNNL
    .n_params = 4,
#else
    .n_params = 3,
#endif
    .params = {
#ifdef CLSYNTH_HAVE_DNNL
        { .name = "ALGO", .kind = CLSYNTH_K_ALGO, .n = 5,
          .values = { CLSYNTH_CONV_DIRECT, CLSYNTH_CONV_IM2COL_GEMM, CLSYNTH_CONV_IGEMM, CLSYNTH_CONV_WINOGRAD,
                      CLSYNTH_CONV_DNNL },
          .def = 0 },
#else
        { .name = "ALGO", .kind = CLSYNTH_K_ALGO, .n = 4,
          .values = { CLSYNTH_CONV_DIRECT, CLSYNTH_CONV_IM2COL_GEMM, CLSYNTH_CONV_IGEMM, CLSYNTH_CONV_WINOGRAD },
          .def = 0 },
#endif
        { .name = "GEMM_BATCH", .kind = CLSYNTH_K_HOST, .n = 2, .values = { CONV2D_GEMM_MERGED, CONV2D_GEMM_STRIDED },
          .def = 0, .only_algo = CLSYNTH_CONV_IM2COL_GEMM },
        /* work-items per row in im2col / col2im (kernels/im2col.cl): one per row on CPUs
         * (a copy loop; 9x faster than one per pixel on PoCL at 44 channels 64x64), a
         * wide row on GPUs (neighbouring items on neighbouring addresses) */
        { .name = "COL_ROW_ITEMS", .kind = CLSYNTH_K_HOST, .n = 4, .values = { 1, 8, 64, 256 }, .def = 256,
          .by_class = { { "cpu", 1 } }, .only_algo = CLSYNTH_CONV_IM2COL_GEMM },
#ifdef CLSYNTH_HAVE_DNNL
        { .name = "DNNL_LAYOUT", .kind = CLSYNTH_K_HOST, .n = 2, .values = { CONV2D_DNNL_BLOCKED, CONV2D_DNNL_PLAIN },
          .def = 0, .only_algo = CLSYNTH_CONV_DNNL },
#endif
    },
    .shape_size = sizeof(clsynth_conv_shape), .format = conv_format, .parse = conv_parse,
    .valid = conv2d_valid, .device_ok = conv2d_device_ok, .fit = conv2d_fit,
    .test_shapes = test_shapes, .n_test_shapes = 4,
    .bench_shapes = bench_algo, .n_bench_shapes = 5,
    .setup = conv_setup, .run = conv_run_auto,
};

/* ------------------------------------------------------------ conv_fwd_direct */

/* The work-group is the output tile (TILE_W, TILE_H, 1). Automatic (TILE_W
 * 0): 16x16 or the output rounded up to powers of two, within the item
 * limits and the kernel's work-group size (the larger side halves first),
 * and halved further until one channel's input patch fits local memory. */
static bool fwd_local(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3])
{
    const clsynth_conv_shape *s = shape;
    size_t lw = (size_t)v[CONV_FWD_TILE_W], lh = (size_t)v[CONV_FWD_TILE_H];
    if (lw == 0) {
        lw = (size_t)clsynth_pow2_ceil(ow_of(s));
        lh = (size_t)clsynth_pow2_ceil(oh_of(s));
        if (lw > 16)
            lw = 16;
        if (lh > 16)
            lh = 16;
        while (lw > lim->max_item[0])
            lw /= 2;
        while (lh > lim->max_item[1])
            lh /= 2;
        while (lw * lh > lim->max_wg) {
            if (lh >= lw)
                lh /= 2;
            else
                lw /= 2;
        }
        for (;;) {
            size_t ph = (lh - 1) * (size_t)s->stride + (size_t)s->kh;
            size_t pw = (lw - 1) * (size_t)s->stride + (size_t)s->kw;
            if (ph * pw * sizeof(float) <= lim->local_mem)
                break;
            if (lw == 1 && lh == 1)
                return false;
            if (lw >= lh)
                lw = (lw + 1) / 2;
            else
                lh = (lh + 1) / 2;
        }
    }
    local[0] = lw;
    local[1] = lh;
    local[2] = 1;
    return true;
}

static size_t fwd_patch(const clsynth_conv_shape *s, const size_t local[3])
{
    size_t ph = (local[1] - 1) * (size_t)s->stride + (size_t)s->kh;
    size_t pw = (local[0] - 1) * (size_t)s->stride + (size_t)s->kw;
    return ph * pw * sizeof(float);
}

/* CIN_CHUNK input channels (at most Cin) of the padded patch at once */
static size_t fwd_lmem(const int *v, const void *shape, const size_t local[3])
{
    const clsynth_conv_shape *s = shape;
    int cc = v[CONV_FWD_CIN_CHUNK] < s->cin ? v[CONV_FWD_CIN_CHUNK] : s->cin;
    return v[CONV_FWD_USE_LOCAL] ? (size_t)cc * fwd_patch(s, local) : 0;
}

/* the default takes as many channels per patch as fit, up to CIN_CHUNK */
static void fwd_fit(int *v, const void *shape, const clsynth_klimits *lim)
{
    const clsynth_conv_shape *s = shape;
    size_t local[3];
    if (!fwd_local(v, shape, lim, local))
        return; /* nothing fits: the resolver reports it */
    size_t fit = (size_t)lim->local_mem / fwd_patch(s, local);
    int cc = v[CONV_FWD_CIN_CHUNK] < s->cin ? v[CONV_FWD_CIN_CHUNK] : s->cin;
    if ((size_t)cc > fit)
        cc = (int)fit;
    v[CONV_FWD_CIN_CHUNK] = cc;
}

static bool fwd_valid(const int *v, const void *shape)
{
    const clsynth_conv_shape *s = shape;
    /* no more output channels per item than the layer has (beyond the next power of two) */
    if (v[CONV_FWD_COUT_PER_ITEM] > clsynth_pow2_ceil(s->cout))
        return false;
    /* chunks beyond Cin are the same configuration as Cin */
    if (v[CONV_FWD_CIN_CHUNK] > clsynth_pow2_ceil(s->cin))
        return false;
    /* a tile much wider than the output only idles */
    if (v[CONV_FWD_TILE_W] &&
        (v[CONV_FWD_TILE_W] > 2 * clsynth_pow2_ceil(ow_of(s)) || v[CONV_FWD_TILE_H] > 2 * clsynth_pow2_ceil(oh_of(s))))
        return false;
    return true;
}

const clsynth_kdef clsynth_kdef_conv_fwd_direct = {
    .key = "conv_fwd_direct", .op = "clsynth_conv2d", .file = "conv_fwd.cl", .kernels = { "conv_fwd_direct" },
    .kernels_algo = 0, .dims = 3, .backward = false, .n_params = 5,
    .params = {
        { .name = "COUT_PER_ITEM", .kind = CLSYNTH_K_DEFINE, .n = 5, .values = { 4, 1, 2, 8, 16 }, .def = 8 },
        { .name = "CIN_CHUNK", .kind = CLSYNTH_K_HOST, .n = 6, .values = { 8, 1, 2, 4, 16, 32 }, .def = 8 },
        { .name = "TILE_W", .kind = CLSYNTH_K_LOCAL0, .n = 6, .values = { 0, 4, 8, 16, 32, 64 }, .def = 0 },
        { .name = "TILE_H", .kind = CLSYNTH_K_LOCAL1, .n = 5, .values = { 1, 2, 4, 8, 16 }, .def = 1 },
        /* 0 (taps read from global memory, no barriers) is implemented in the
         * kernel; list it here to let the tuner try it */
        { .name = "USE_LOCAL", .kind = CLSYNTH_K_DEFINE, .n = 1, .values = { 1 }, .def = 1 },
    },
    .shape_size = sizeof(clsynth_conv_shape), .format = conv_format, .parse = conv_parse,
    .valid = fwd_valid, .local_size = fwd_local, .local_mem = fwd_lmem, .fit = fwd_fit,
    .test_shapes = test_shapes, .n_test_shapes = 4,
    .bench_shapes = bench_fwd, .n_bench_shapes = 2,
    .setup = conv_setup, .run = conv_run_direct,
};

/* ------------------------------------------------------------ backward kernels */

static bool bwd_local(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3])
{
    (void)shape;
    (void)lim;
    local[0] = (size_t)v[CONV_BWD_LOCAL_X]; /* 0: the launch helper's default */
    local[1] = local[0] ? (size_t)v[CONV_BWD_LOCAL_Y] : 0;
    local[2] = local[0] ? 1 : 0;
    return true;
}

static bool bwd_data_valid(const int *v, const void *shape)
{
    const clsynth_conv_shape *s = shape;
    return v[CONV_BWD_COUT_PER_ITEM] <= clsynth_pow2_ceil(s->cin) || v[CONV_BWD_COUT_PER_ITEM] == 1;
}

static bool bwd_weight_valid(const int *v, const void *shape)
{
    const clsynth_conv_shape *s = shape;
    return v[CONV_BWD_COUT_PER_ITEM] <= clsynth_pow2_ceil(s->cout) || v[CONV_BWD_COUT_PER_ITEM] == 1;
}

const clsynth_kdef clsynth_kdef_conv_bwd_data_direct = {
    .key = "conv_bwd_data_direct", .op = "clsynth_conv2d (backward, dx)", .file = "conv_bwd.cl",
    .kernels = { "conv_bwd_data_direct" }, .dims = 3, .backward = true, .grad_mask = 1u << 0, .n_params = 3,
    .params = {
        { .name = "COUT_PER_ITEM", .kind = CLSYNTH_K_DEFINE, .n = 5, .values = { 4, 1, 2, 8, 16 }, .def = 8 },
        { .name = "LOCAL_X", .kind = CLSYNTH_K_LOCAL0, .n = 6, .values = { 0, 4, 8, 16, 32, 64 }, .def = 0 },
        { .name = "LOCAL_Y", .kind = CLSYNTH_K_LOCAL1, .n = 5, .values = { 1, 2, 4, 8, 16 }, .def = 1 },
    },
    .shape_size = sizeof(clsynth_conv_shape), .format = conv_format, .parse = conv_parse,
    .valid = bwd_data_valid, .local_size = bwd_local,
    .test_shapes = test_shapes, .n_test_shapes = 4,
    .bench_shapes = bench_bwd, .n_bench_shapes = 1,
    .setup = conv_setup, .run = conv_run_direct,
};

const clsynth_kdef clsynth_kdef_conv_bwd_weight_direct = {
    .key = "conv_bwd_weight_direct", .op = "clsynth_conv2d (backward, dw)", .file = "conv_bwd.cl",
    .kernels = { "conv_bwd_weight_direct" }, .dims = 2, .backward = true, .grad_mask = 1u << 1, .n_params = 3,
    .params = {
        { .name = "COUT_PER_ITEM", .kind = CLSYNTH_K_DEFINE, .n = 5, .values = { 4, 1, 2, 8, 16 }, .def = 8 },
        { .name = "LOCAL_X", .kind = CLSYNTH_K_LOCAL0, .n = 7, .values = { 0, 8, 16, 32, 64, 128, 256 }, .def = 0 },
        { .name = "LOCAL_Y", .kind = CLSYNTH_K_LOCAL1, .n = 4, .values = { 1, 2, 4, 8 }, .def = 1 },
    },
    .shape_size = sizeof(clsynth_conv_shape), .format = conv_format, .parse = conv_parse,
    .valid = bwd_weight_valid, .local_size = bwd_local,
    .test_shapes = test_shapes, .n_test_shapes = 4,
    .bench_shapes = bench_bwd, .n_bench_shapes = 1,
    .setup = conv_setup, .run = conv_run_direct,
};
