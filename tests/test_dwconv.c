/* Conditional depthwise 3x3 conv: forward and gradients against the plain-C
 * reference, finite-difference gradient checks, identical results under
 * emulated small device limits and under other tile tunables.
 * CLSYNTH_OCLGRIND_OK: tiny shapes when CLSYNTH_OCLGRIND is set.
 * CLSYNTH_BENCH=1 additionally prints the bandwidth of forward, backward and a
 * plain buffer copy at the CC-FPSE shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/ops.h"
#include "clcore/tuner.h"
#include "ref_dwconv.h"
#include "testutil.h"

static clsynth_ctx *ctx;

typedef struct shape {
    int n, c, h, w;
} shape;

static size_t numel(shape s) { return (size_t)s.n * (size_t)s.c * (size_t)s.h * (size_t)s.w; }

static float *host_uniform(size_t n, uint64_t seed)
{
    float *p = malloc(n * sizeof *p);
    ck_assert_ptr_nonnull(p);
    clsynth_test_fill_uniform(p, n, -1.0f, 1.0f, seed);
    return p;
}

/* Forward shapes: N >= 2, odd sizes, channel counts 3/5/17, sizes that leave
 * partial tiles in both directions with the default 32x8 tile, and 1x1; a
 * width that is a multiple of every vector width (32, 8 under Oclgrind), so
 * that whole vector segments touch both image edges. */
static const shape fwd_shapes[] = { { 2, 3, 13, 11 }, { 2, 17, 7, 9 }, { 2, 5, 37, 45 }, { 3, 2, 1, 1 },
                                    { 1, 4, 9, 70 }, { 2, 3, 6, 32 } };
static const shape fwd_shapes_tiny[] = { { 2, 3, 7, 9 }, { 1, 2, 10, 35 }, { 1, 2, 5, 8 } };

static void shapes_for_mode(const shape **s, int *count)
{
    if (clsynth_test_under_oclgrind()) {
        *s = fwd_shapes_tiny;
        *count = (int)(sizeof fwd_shapes_tiny / sizeof *fwd_shapes_tiny);
    } else {
        *s = fwd_shapes;
        *count = (int)(sizeof fwd_shapes / sizeof *fwd_shapes);
    }
}

/* Sum of 9 products of values in [-1, 1]: float vs double differ by a few ulp. */
#define FWD_ATOL 2e-6
#define FWD_RTOL 1e-5

START_TEST(forward_matches_reference)
{
    const shape *ss;
    int count;
    shapes_for_mode(&ss, &count);
    for (int t = 0; t < count; t++) {
        shape s = ss[t];
        size_t nx = numel(s), nk = 9 * nx;
        float *x = host_uniform(nx, 1 + (uint64_t)t), *k = host_uniform(nk, 100 + (uint64_t)t);
        float *ref = malloc(nx * sizeof *ref);
        ref_cond_dwconv(x, k, ref, s.n, s.c, s.h, s.w);
        clsynth_tensor *xt = clsynth_tensor_from_host(ctx, "x", s.n, s.c, s.h, s.w, x);
        clsynth_tensor *kt = clsynth_tensor_from_host(ctx, "k", s.n, 9 * s.c, s.h, s.w, k);
        clsynth_tensor *y = clsynth_cond_dwconv(ctx, xt, kt);
        ck_assert_msg(y != NULL, "%s", ctx->err.msg);
        ck_assert_int_eq(clsynth_tape_size(ctx), 0); /* nothing requires grad */
        float *out = clsynth_test_download(ctx, y);
        char what[96];
        snprintf(what, sizeof what, "cond_dwconv (%d,%d,%d,%d)", s.n, s.c, s.h, s.w);
        clsynth_test_assert_close(what, out, ref, nx, FWD_ATOL, FWD_RTOL);
        clsynth_release_activations(ctx);
        free(x);
        free(k);
        free(ref);
        free(out);
    }
}
END_TEST

/* Runs forward + backward seeded with dy on ctx c; returns y, dx, dk (malloc'ed). */
static void run_fwd_bwd(clsynth_ctx *c, shape s, const float *x, const float *k, const float *dy, float **y,
                        float **dx, float **dk)
{
    clsynth_tensor *xt = clsynth_test_input(c, "x", s.n, s.c, s.h, s.w, x);
    clsynth_tensor *kt = clsynth_test_input(c, "k", s.n, 9 * s.c, s.h, s.w, k);
    clsynth_tensor *yt = clsynth_cond_dwconv(c, xt, kt);
    ck_assert_msg(yt != NULL, "%s", c->err.msg);
    *y = clsynth_test_download(c, yt);
    clsynth_tensor *g = clsynth_tensor_from_host(c, "dy", s.n, s.c, s.h, s.w, dy);
    ck_assert_msg(clsynth_backward_with(c, yt, g) == 0, "%s", c->err.msg);
    *dx = clsynth_test_download(c, xt->grad);
    *dk = clsynth_test_download(c, kt->grad);
    clsynth_tensor_free(c, xt);
    clsynth_tensor_free(c, kt);
}

START_TEST(backward_matches_reference)
{
    const shape *ss;
    int count;
    shapes_for_mode(&ss, &count);
    for (int t = 0; t < count; t++) {
        shape s = ss[t];
        size_t nx = numel(s), nk = 9 * nx;
        float *x = host_uniform(nx, 7 + (uint64_t)t), *k = host_uniform(nk, 70 + (uint64_t)t);
        float *dy = host_uniform(nx, 700 + (uint64_t)t);
        float *rdx = malloc(nx * sizeof *rdx), *rdk = malloc(nk * sizeof *rdk);
        ref_cond_dwconv_backward(x, k, dy, rdx, rdk, s.n, s.c, s.h, s.w);
        float *y, *dx, *dk;
        run_fwd_bwd(ctx, s, x, k, dy, &y, &dx, &dk);
        char what[96];
        snprintf(what, sizeof what, "dx of cond_dwconv (%d,%d,%d,%d)", s.n, s.c, s.h, s.w);
        clsynth_test_assert_close(what, dx, rdx, nx, FWD_ATOL, FWD_RTOL);
        snprintf(what, sizeof what, "dk of cond_dwconv (%d,%d,%d,%d)", s.n, s.c, s.h, s.w);
        clsynth_test_assert_close(what, dk, rdk, nk, 1e-7, 1e-6); /* one product each */
        free(x), free(k), free(dy), free(rdx), free(rdk), free(y), free(dx), free(dk);
    }
}
END_TEST

START_TEST(backward_accumulates_into_existing_gradients)
{
    shape s = { 2, 3, 5, 7 };
    size_t nx = numel(s), nk = 9 * nx;
    float *x = host_uniform(nx, 11), *k = host_uniform(nk, 12), *dy = host_uniform(nx, 13);
    float *rdx = malloc(nx * sizeof *rdx), *rdk = malloc(nk * sizeof *rdk);
    ref_cond_dwconv_backward(x, k, dy, rdx, rdk, s.n, s.c, s.h, s.w);
    for (size_t i = 0; i < nx; i++)
        rdx[i] *= 2.0f;
    for (size_t i = 0; i < nk; i++)
        rdk[i] *= 2.0f;
    clsynth_tensor *xt = clsynth_test_input(ctx, "x", s.n, s.c, s.h, s.w, x);
    clsynth_tensor *kt = clsynth_test_input(ctx, "k", s.n, 9 * s.c, s.h, s.w, k);
    for (int pass = 0; pass < 2; pass++) {
        clsynth_tensor *y = clsynth_cond_dwconv(ctx, xt, kt);
        clsynth_tensor *g = clsynth_tensor_from_host(ctx, "dy", s.n, s.c, s.h, s.w, dy);
        ck_assert_msg(clsynth_backward_with(ctx, y, g) == 0, "%s", ctx->err.msg);
    }
    float *dx = clsynth_test_download(ctx, xt->grad), *dk = clsynth_test_download(ctx, kt->grad);
    clsynth_test_assert_close("dx after two backward passes", dx, rdx, nx, 2 * FWD_ATOL, FWD_RTOL);
    clsynth_test_assert_close("dk after two backward passes", dk, rdk, nk, 2e-7, 1e-6);
    clsynth_tensor_free(ctx, xt);
    clsynth_tensor_free(ctx, kt);
    free(x), free(k), free(dy), free(rdx), free(rdk), free(dx), free(dk);
}
END_TEST

static clsynth_tensor *fwd_dwconv(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    (void)user;
    return clsynth_cond_dwconv(c, in[0], in[1]);
}

/* y is bilinear in (x, k): central differences are exact up to float rounding
 * of the outputs, so eps can be large. */
static void gradcheck_shape(shape s, int x_grad, int k_grad, int samples)
{
    size_t nx = numel(s), nk = 9 * nx;
    float *x = host_uniform(nx, 21), *k = host_uniform(nk, 22);
    clsynth_tensor *in[2];
    in[0] = clsynth_test_input(ctx, "x", s.n, s.c, s.h, s.w, x);
    in[1] = clsynth_test_input(ctx, "k", s.n, 9 * s.c, s.h, s.w, k);
    if (!x_grad)
        in[0]->flags &= ~(unsigned)CLSYNTH_T_REQUIRES_GRAD;
    if (!k_grad)
        in[1]->flags &= ~(unsigned)CLSYNTH_T_REQUIRES_GRAD;
    char what[96];
    snprintf(what, sizeof what, "cond_dwconv (%d,%d,%d,%d)", s.n, s.c, s.h, s.w);
    clsynth_test_gradcheck(ctx, what, fwd_dwconv, in, 2, NULL, 0.05f, 2e-3, 2e-3, samples);
    if (!x_grad)
        ck_assert_ptr_null(in[0]->grad);
    if (!k_grad)
        ck_assert_ptr_null(in[1]->grad);
    clsynth_tensor_free(ctx, in[0]);
    clsynth_tensor_free(ctx, in[1]);
    free(x);
    free(k);
}

START_TEST(gradcheck_x_and_k)
{
    int tiny = clsynth_test_under_oclgrind();
    gradcheck_shape((shape){ 2, 3, 7, 9 }, 1, 1, tiny ? 6 : 40);
    if (!tiny)
        gradcheck_shape((shape){ 2, 5, 13, 11 }, 1, 1, 30);
}
END_TEST

START_TEST(gradcheck_only_one_input_requires_grad)
{
    int samples = clsynth_test_under_oclgrind() ? 4 : 20;
    gradcheck_shape((shape){ 2, 3, 5, 7 }, 1, 0, samples);
    gradcheck_shape((shape){ 2, 3, 5, 7 }, 0, 1, samples);
}
END_TEST

static void assert_identical(const char *what, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], sizeof(float)) == 0, "%s: element %zu is %.9g here, %.9g before",
                      what, i, a[i], b[i]);
}

/* (64, 8 KiB) as asked of every op; (16, 2 KiB) forces smaller tiles than
 * the defaults on every device class. */
START_TEST(identical_under_emulated_small_limits)
{
    shape s = clsynth_test_under_oclgrind() ? (shape){ 2, 3, 11, 9 } : (shape){ 2, 5, 37, 45 };
    size_t nx = numel(s), nk = 9 * nx;
    float *x = host_uniform(nx, 31), *k = host_uniform(nk, 32), *dy = host_uniform(nx, 33);
    float *y0, *dx0, *dk0;
    run_fwd_bwd(ctx, s, x, k, dy, &y0, &dx0, &dk0);
    static const struct {
        size_t wg;
        cl_ulong lmem;
    } lim[] = { { 64, 8 * 1024 }, { 16, 2 * 1024 } };
    for (int l = 0; l < 2; l++) {
        float *y1, *dx1, *dk1;
        clsynth_ctx *small = clsynth_test_ctx();
        clsynth_ctx_emulate_limits(small, lim[l].wg, lim[l].lmem);
        run_fwd_bwd(small, s, x, k, dy, &y1, &dx1, &dk1);
        clsynth_ctx_free(small);
        char what[96];
        snprintf(what, sizeof what, "y with max_wg %zu, %llu B local", lim[l].wg, (unsigned long long)lim[l].lmem);
        assert_identical(what, y1, y0, nx);
        snprintf(what, sizeof what, "dx with max_wg %zu, %llu B local", lim[l].wg, (unsigned long long)lim[l].lmem);
        assert_identical(what, dx1, dx0, nx);
        snprintf(what, sizeof what, "dk with max_wg %zu, %llu B local", lim[l].wg, (unsigned long long)lim[l].lmem);
        assert_identical(what, dk1, dk0, nk);
        free(y1), free(dx1), free(dk1);
    }
    free(x), free(k), free(dy), free(y0), free(dx0), free(dk0);
}
END_TEST

/* Forward and backward under other tile tunables, each forced on its kernel
 * (as the tuner does); a configuration this device cannot run (its
 * work-group exceeds the built kernel's CL_KERNEL_WORK_GROUP_SIZE, as 256
 * items on Mesa rusticl) is skipped. */
static bool run_forced(shape s, const float *x, const float *k, const float *dy, const clsynth_kdef *def,
                       const int *v, float **y, float **dx, float **dk)
{
    const clsynth_dwconv_shape ds = { s.n * s.c, s.h, s.w };
    char why[300];
    if (!clsynth_kconfig_usable(ctx, def, &ds, v, why, sizeof why))
        return false;
    clsynth_kforce f = { .def = def };
    memcpy(f.v, v, 3 * sizeof *v);
    clsynth_tensor *xt = clsynth_test_input(ctx, "x", s.n, s.c, s.h, s.w, x);
    clsynth_tensor *kt = clsynth_test_input(ctx, "k", s.n, 9 * s.c, s.h, s.w, k);
    clsynth_tensor *yt = clsynth_cond_dwconv_forced(ctx, xt, kt, &f);
    ck_assert_msg(yt != NULL, "%s", ctx->err.msg);
    *y = clsynth_test_download(ctx, yt);
    clsynth_tensor *g = clsynth_tensor_from_host(ctx, "dy", s.n, s.c, s.h, s.w, dy);
    ck_assert_msg(clsynth_backward_with(ctx, yt, g) == 0, "%s", ctx->err.msg);
    ck_assert_uint_eq(f.hits, 1);
    *dx = clsynth_test_download(ctx, xt->grad);
    *dk = clsynth_test_download(ctx, kt->grad);
    clsynth_tensor_free(ctx, xt);
    clsynth_tensor_free(ctx, kt);
    return true;
}

START_TEST(identical_under_other_tunables)
{
    /* an odd width (partial vector segments at the right edge) and one that
     * every vector width divides (whole segments at both edges) */
    const shape shapes[2] = { clsynth_test_under_oclgrind() ? (shape){ 2, 3, 11, 9 } : (shape){ 2, 5, 37, 45 },
                              clsynth_test_under_oclgrind() ? (shape){ 1, 2, 5, 8 } : (shape){ 1, 3, 9, 32 } };
    for (int si = 0; si < 2; si++) {
        shape s = shapes[si];
        size_t nx = numel(s), nk = 9 * nx;
        float *x = host_uniform(nx, 41), *k = host_uniform(nk, 42), *dy = host_uniform(nx, 43);
        float *y0, *dx0, *dk0;
        run_fwd_bwd(ctx, s, x, k, dy, &y0, &dx0, &dk0);
        /* (VW, TILE_W, TILE_H): tiles that do and do not divide the image, odd
         * work-group shapes (local size = (TILE_W/VW, TILE_H, 1)) */
        static const int cfgs[][3] = { { 1, 5, 3 },  { 2, 6, 3 },   { 1, 1, 1 },  { 4, 64, 2 }, { 8, 16, 16 },
                                       { 16, 32, 8 }, { 8, 64, 4 }, { 2, 64, 8 }, { 4, 12, 7 } };
        int ncfg = clsynth_test_under_oclgrind() ? 3 : (int)(sizeof cfgs / sizeof *cfgs), ran = 0;
        for (int i = 0; i < ncfg; i++) {
            for (int pass = 0; pass < 2; pass++) {
                const clsynth_kdef *def = pass ? &clsynth_kdef_dwconv_bwd : &clsynth_kdef_dwconv_fwd;
                float *y, *dx, *dk;
                if (!run_forced(s, x, k, dy, def, cfgs[i], &y, &dx, &dk))
                    continue;
                ran++;
                char what[200];
                snprintf(what, sizeof what, "%s with VW=%d TILE_W=%d TILE_H=%d at (%d,%d,%d,%d)", def->key,
                         cfgs[i][0], cfgs[i][1], cfgs[i][2], s.n, s.c, s.h, s.w);
                if (!pass)
                    assert_identical(what, y, y0, nx);
                assert_identical(what, dx, dx0, nx);
                assert_identical(what, dk, dk0, nk);
                free(y), free(dx), free(dk);
            }
        }
        ck_assert_int_ge(ran, clsynth_test_under_oclgrind() ? 4 : 8);
        free(x), free(k), free(dy), free(y0), free(dx0), free(dk0);
    }
}
END_TEST

START_TEST(rejects_kernels_of_the_wrong_shape)
{
    clsynth_tensor *x = clsynth_tensor_new(ctx, "feat", 2, 3, 5, 7);
    clsynth_tensor *k = clsynth_tensor_new(ctx, "w1", 2, 26, 5, 7);
    ck_assert_ptr_null(clsynth_cond_dwconv(ctx, x, k));
    ck_assert_msg(strstr(ctx->err.msg, "cond_dwconv") && strstr(ctx->err.msg, "'w1' (2, 26, 5, 7)") &&
                      strstr(ctx->err.msg, "(2, 27, 5, 7)") && strstr(ctx->err.msg, "'feat' (2, 3, 5, 7)"),
                  "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_tensor *k2 = clsynth_tensor_new(ctx, "w1", 2, 27, 5, 6);
    ck_assert_ptr_null(clsynth_cond_dwconv(ctx, x, k2));
    ck_assert_ptr_nonnull(strstr(ctx->err.msg, "cond_dwconv"));
}
END_TEST

/* ---- bandwidth report (CLSYNTH_BENCH=1) ---- */

static double copy_gbs(size_t bytes)
{
    cl_int rc;
    cl_mem a = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &rc);
    ck_assert_int_eq(rc, CL_SUCCESS);
    cl_mem b = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &rc);
    ck_assert_int_eq(rc, CL_SUCCESS);
    double best = 1e30;
    for (int rep = 0; rep < 6; rep++) {
        cl_event ev;
        ck_assert_int_eq(clEnqueueCopyBuffer(ctx->queue, a, b, 0, 0, bytes, 0, NULL, &ev), CL_SUCCESS);
        ck_assert_int_eq(clWaitForEvents(1, &ev), CL_SUCCESS);
        cl_ulong t0, t1;
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
        clReleaseEvent(ev);
        double ms = (double)(t1 - t0) * 1e-6;
        if (rep > 0 && ms < best)
            best = ms;
    }
    clReleaseMemObject(a);
    clReleaseMemObject(b);
    return 2.0 * (double)bytes / (best * 1e-3) / 1e9; /* read + write */
}

START_TEST(bandwidth_report)
{
    const char *b = getenv("CLSYNTH_BENCH");
    if (!b || !*b || strcmp(b, "0") == 0 || clsynth_test_under_oclgrind())
        return;
    static const shape bs[] = { { 1, 64, 128, 128 }, { 1, 256, 32, 32 } };
    /* (VW, tile w, tile h); local = one item per VW-pixel segment of the tile */
    static const int tiles[][3] = { { 1, 32, 8 }, { 2, 64, 8 }, { 4, 32, 8 }, { 4, 64, 4 }, { 8, 64, 4 },
                                    { 8, 64, 8 }, { 8, 128, 4 }, { 16, 64, 4 }, { 8, 32, 8 } };
    for (int t = 0; t < 2; t++) {
        shape s = bs[t];
        size_t nx = numel(s), nk = 9 * nx;
        double fwd_bytes = 4.0 * (double)(nx + nk + nx);                   /* x, k, y */
        double bwd_bytes = 4.0 * (double)(nx + nx + nk + 2 * nx + 2 * nk); /* x, dy, k, dx rw, dk rw */
        double cp = copy_gbs((size_t)(fwd_bytes / 2));
        char key[64];
        snprintf(key, sizeof key, "%dx%dx%d", s.n * s.c, s.h, s.w);
        printf("cond_dwconv (%d,%d,%d,%d) on %s; clEnqueueCopyBuffer of %.1f MB: %.2f GB/s (read+write)\n", s.n,
               s.c, s.h, s.w, ctx->dev.name, fwd_bytes / 2 / 1e6, cp);
        /* the backward harness runs the forward at its default tile first */
        double fwd_default = NAN;
        clsynth_kforce fd = { .def = &clsynth_kdef_dwconv_fwd, .defaults = true };
        ck_assert_msg(clsynth_tune_measure(ctx, &clsynth_kdef_dwconv_fwd, key, &fd, 5, NULL, NULL, &fwd_default, NULL,
                                           NULL) == 0, "%s", ctx->err.msg);
        for (size_t ti = 0; ti < sizeof tiles / sizeof *tiles; ti++) {
            /* the op's device time: forward alone, forward + backward */
            double fwd = NAN, both = NAN;
            clsynth_kforce ff = { .def = &clsynth_kdef_dwconv_fwd }, fb = { .def = &clsynth_kdef_dwconv_bwd };
            memcpy(ff.v, tiles[ti], sizeof tiles[ti]);
            memcpy(fb.v, tiles[ti], sizeof tiles[ti]);
            if (clsynth_tune_measure(ctx, &clsynth_kdef_dwconv_fwd, key, &ff, 5, NULL, NULL, &fwd, NULL, NULL) ||
                clsynth_tune_measure(ctx, &clsynth_kdef_dwconv_bwd, key, &fb, 5, NULL, NULL, &both, NULL, NULL)) {
                printf("  VW %2d TILE %3dx%-2d: not usable here: %s\n", tiles[ti][0], tiles[ti][1], tiles[ti][2],
                       ctx->err.msg);
                clsynth_ctx_clear_error(ctx);
                continue;
            }
            double bwd = both - fwd_default;
            printf("  VW %2d TILE %3dx%-2d: forward %7.3f ms = %6.2f GB/s, backward %7.3f ms = %6.2f GB/s\n",
                   tiles[ti][0], tiles[ti][1], tiles[ti][2], fwd, fwd_bytes / (fwd * 1e-3) / 1e9, bwd,
                   bwd_bytes / (bwd * 1e-3) / 1e9);
        }
    }
}
END_TEST

int main(void)
{
    return clsynth_test_main("dwconv", &ctx, 600,
                             CLSYNTH_TEST_LIST(forward_matches_reference,
                                               backward_matches_reference,
                                               backward_accumulates_into_existing_gradients,
                                               gradcheck_x_and_k,
                                               gradcheck_only_one_input_requires_grad,
                                               identical_under_emulated_small_limits,
                                               identical_under_other_tunables,
                                               rejects_kernels_of_the_wrong_shape,
                                               bandwidth_report));
}
