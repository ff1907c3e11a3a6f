/* Descriptors of the conditional depthwise conv kernels (clcore/ops_dwconv.c,
 * kernels/dwconv.cl). See clcore/kdef.h. */
#include <stdio.h>

#include "clcore/kdefs.h"
#include "clcore/ops.h"

#define DW_TILE_MAX 256

static int dw_format(const void *shape, char *key, size_t len)
{
    const clsynth_dwconv_shape *s = shape;
    return snprintf(key, len, "%dx%dx%d", s->nc, s->h, s->w);
}

static bool dw_parse(const char *key, void *shape)
{
    clsynth_dwconv_shape *s = shape;
    char tail = 0;
    return sscanf(key, "%dx%dx%d%c", &s->nc, &s->h, &s->w, &tail) == 3 && s->nc >= 1 && s->h >= 1 && s->w >= 1;
}

/* partial tiles in both directions at the defaults, odd channel products */
static const clsynth_dwconv_shape test_shapes[] = { { 3, 5, 7 }, { 6, 19, 23 }, { 10, 33, 17 }, { 4, 9, 70 } };
static const clsynth_dwconv_shape bench_fwd[] = { { 256, 32, 32 }, { 1024, 32, 32 }, { 64, 128, 128 },
                                                  { 256, 128, 128 } };
static const clsynth_dwconv_shape bench_bwd[] = { { 256, 32, 32 }, { 64, 128, 128 } };

static int dw_setup(clsynth_ctx *ctx, clsynth_kbench *b)
{
    const clsynth_dwconv_shape *s = (const clsynth_dwconv_shape *)&b->shape;
    if (clsynth_kbench_input(ctx, b, "tune.x", 1, s->nc, s->h, s->w, 1, 1.0f) ||
        clsynth_kbench_input(ctx, b, "tune.k", 1, 9 * s->nc, s->h, s->w, 2, 0.3f))
        return -1;
    b->flops = 18.0 * s->nc * s->h * s->w;
    b->bytes = 4.0 * 11.0 * s->nc * s->h * s->w;
    return 0;
}

static clsynth_tensor *dw_run(clsynth_ctx *ctx, clsynth_kbench *b, clsynth_kforce *force)
{
    return clsynth_cond_dwconv_forced(ctx, b->in[0], b->in[1], force);
}

static bool dw_valid(const int *v, const void *shape)
{
    const clsynth_dwconv_shape *s = shape;
    if (v[DW_TILE_W] < v[DW_VW] || v[DW_TILE_W] % v[DW_VW])
        return false;
    /* tiles much larger than the image only idle */
    if (v[DW_TILE_W] > 2 * clsynth_pow2_ceil(s->w) && v[DW_TILE_W] > v[DW_VW])
        return false;
    if (v[DW_TILE_H] > 2 * clsynth_pow2_ceil(s->h) && v[DW_TILE_H] > 1)
        return false;
    return true;
}

/* the kernels require the work-group (TILE_W/VW, TILE_H, 1) */
static bool dw_local(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3])
{
    (void)shape;
    (void)lim;
    if (v[DW_VW] < 1 || v[DW_TILE_W] < v[DW_VW] || v[DW_TILE_H] < 1)
        return false;
    local[0] = (size_t)(v[DW_TILE_W] / v[DW_VW]);
    local[1] = (size_t)v[DW_TILE_H];
    local[2] = 1;
    return true;
}

static size_t tile_bytes(const int *v, int tiles)
{
    return (size_t)tiles * (size_t)(v[DW_TILE_W] + 2) * (size_t)(v[DW_TILE_H] + 2) * sizeof(float);
}

static size_t dw_fwd_lmem(const int *v, const void *shape, const size_t local[3])
{
    (void)shape;
    (void)local;
    return tile_bytes(v, 1);
}

static size_t dw_bwd_lmem(const int *v, const void *shape, const size_t local[3])
{
    (void)shape;
    (void)local;
    return tile_bytes(v, 2);
}

/* The default tile: no wider or taller than the image (no idle work-items),
 * then shrunk - height first, then width, then the vector width - until the
 * tiles fit local memory and the work-group fits the limits. */
static void dw_fit_tiles(int *v, const clsynth_dwconv_shape *s, const clsynth_klimits *lim, int tiles)
{
    int vw = v[DW_VW], tw = v[DW_TILE_W], th = v[DW_TILE_H];
    if (s->w < tw)
        tw = (s->w + vw - 1) / vw * vw;
    if (s->h < th)
        th = s->h;
    for (;;) {
        int t[3] = { vw, tw, th };
        bool fits = tile_bytes(t, tiles) <= lim->local_mem && (size_t)(tw / vw) * (size_t)th <= lim->max_wg &&
                    (size_t)(tw / vw) <= lim->max_item[0] && (size_t)th <= lim->max_item[1];
        if (fits || (th <= 1 && tw <= 1))
            break;
        if (th > 1)
            th = (th + 1) / 2;
        else if (tw > vw)
            tw = tw / 2 / vw * vw < vw ? vw : tw / 2 / vw * vw;
        else
            tw = vw = vw / 2;
    }
    v[DW_VW] = vw;
    v[DW_TILE_W] = tw;
    v[DW_TILE_H] = th > DW_TILE_MAX ? DW_TILE_MAX : th;
}

static void dw_fwd_fit(int *v, const void *shape, const clsynth_klimits *lim) { dw_fit_tiles(v, shape, lim, 1); }
static void dw_bwd_fit(int *v, const void *shape, const clsynth_klimits *lim) { dw_fit_tiles(v, shape, lim, 2); }

/* Defaults per device class: CPUs need explicit vectors to stream (VW 8, 64x8
 * tiles = 8x8 work-items); on PoCL (2 shared AVX-512 cores, interleaved runs
 * of forward + backward at 256x32x32 and 64x128x128) one AVX-512 register per
 * work-item and 128x8 tiles (8x8 work-items; 2x8 at 32 wide) were 1.2-1.9x
 * faster than that; GPUs get two pixels per work-item and 64x8 tiles (32x8 =
 * 256 work-items). */
#define DW_PARAMS                                                                                            \
    {                                                                                                        \
        { .name = "VW", .kind = CLSYNTH_K_DEFINE, .n = 5, .values = { 1, 2, 4, 8, 16 }, .def = 2,            \
          .by_class = { { "pocl-cpu", 16 }, { "cpu", 8 } } },                                                \
        { .name = "TILE_W", .kind = CLSYNTH_K_DEFINE, .n = 6, .values = { 8, 16, 32, 64, 128, 256 }, .def = 64, \
          .by_class = { { "pocl-cpu", 128 } } },                                                             \
        { .name = "TILE_H", .kind = CLSYNTH_K_DEFINE, .n = 6, .values = { 1, 2, 4, 8, 16, 32 }, .def = 8 },  \
    }

const clsynth_kdef clsynth_kdef_dwconv_fwd = {
    .key = "dwconv_fwd", .op = "clsynth_cond_dwconv", .file = "dwconv.cl", .kernels = { "dwconv_fwd" },
    .dims = 3, .backward = false, .n_params = 3, .params = DW_PARAMS,
    .shape_size = sizeof(clsynth_dwconv_shape), .format = dw_format, .parse = dw_parse,
    .valid = dw_valid, .local_size = dw_local, .local_mem = dw_fwd_lmem, .fit = dw_fwd_fit,
    .test_shapes = test_shapes, .n_test_shapes = 4,
    .bench_shapes = bench_fwd, .n_bench_shapes = 4,
    .setup = dw_setup, .run = dw_run,
};

const clsynth_kdef clsynth_kdef_dwconv_bwd = {
    .key = "dwconv_bwd", .op = "clsynth_cond_dwconv (backward)", .file = "dwconv.cl", .kernels = { "dwconv_bwd" },
    .dims = 3, .backward = true, .n_params = 3, .params = DW_PARAMS,
    .shape_size = sizeof(clsynth_dwconv_shape), .format = dw_format, .parse = dw_parse,
    .valid = dw_valid, .local_size = dw_local, .local_mem = dw_bwd_lmem, .fit = dw_bwd_fit,
    .test_shapes = test_shapes, .n_test_shapes = 4,
    .bench_shapes = bench_bwd, .n_bench_shapes = 2,
    .setup = dw_setup, .run = dw_run,
};
