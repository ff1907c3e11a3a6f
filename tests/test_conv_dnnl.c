/* The oneDNN convolution algorithm (clcore/ops_conv_dnnl.c): forward and
 * backward against the plain-C reference at awkward shapes, finite-difference
 * gradients, gradients added to existing ones (its sum post-op), bit-identical
 * reruns, the fused epilogue after it, operands that are views into one
 * buffer (the mapped regions' union), the shapes it refuses, and the devices
 * it runs on.
 *
 * Where this build has no oneDNN, or the device is not the host CPU, the
 * checks of results are reported and left out, and what is checked is that
 * asking for the algorithm fails with a message saying why.
 *
 * CLSYNTH_OCLGRIND_OK: under Oclgrind the map protocol around oneDNN is
 * checked (--check-api) at the small shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/ops.h"
#include "ref_conv.h"
#include "testutil.h"

static clsynth_ctx *ctx;

typedef struct cv {
    int N, Cin, H, W, Cout, K, stride, pad;
} cv;

/* kernels 1, 3, 4, 7; strides 1, 2, 3; pads 0..3; odd sizes; channels that are
 * multiples of nothing, one below and one above oneDNN's blocks of 8 and 16;
 * batch 1 to 3 */
static const cv shapes[] = {
    { 2, 3, 9, 7, 5, 3, 1, 1 },   { 2, 5, 13, 11, 4, 3, 2, 1 },  { 3, 17, 9, 7, 6, 1, 1, 0 },
    { 2, 3, 13, 11, 5, 1, 2, 0 }, { 2, 5, 9, 7, 3, 4, 2, 1 },    { 1, 3, 13, 11, 4, 7, 1, 3 },
    { 2, 9, 11, 10, 70, 3, 1, 1 }, { 2, 6, 11, 13, 7, 3, 3, 2 }, { 2, 33, 17, 19, 17, 3, 1, 0 },
};
static const cv tiny_shapes[] = { { 2, 3, 5, 7, 5, 3, 1, 1 }, { 2, 3, 7, 5, 4, 3, 2, 1 } };

static const cv *shape_list(int *n)
{
    if (clsynth_test_under_oclgrind()) {
        *n = (int)(sizeof tiny_shapes / sizeof tiny_shapes[0]);
        return tiny_shapes;
    }
    *n = (int)(sizeof shapes / sizeof shapes[0]);
    return shapes;
}

static int oh_of(const cv *c) { return ref_conv_out_size(c->H, c->K, c->stride, c->pad); }
static int ow_of(const cv *c) { return ref_conv_out_size(c->W, c->K, c->stride, c->pad); }
static clsynth_conv_shape shape_of(const cv *c)
{
    return (clsynth_conv_shape){ c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K, c->stride, c->pad };
}

static void describe(const cv *c, const char *what, char *buf, size_t len)
{
    snprintf(buf, len, "%s x (%d,%d,%d,%d) w (%d,%d,%d,%d) s%d p%d", what, c->N, c->Cin, c->H, c->W, c->Cout, c->Cin,
             c->K, c->K, c->stride, c->pad);
}

/* Whether the checks of results run here; prints why not once per test. */
static bool runs_here(const char *test)
{
    if (clsynth_conv_dnnl_capable(&ctx->dev))
        return true;
#ifdef CLSYNTH_HAVE_DNNL
    printf("%s: left out: device class %s is not the host CPU\n", test, clsynth_device_class(&ctx->dev));
#else
    printf("%s: left out: this build has no oneDNN (-DCLSYNTH_DNNL=OFF, or libdnnl-dev missing)\n", test);
#endif
    return false;
}

/* Float sums of at most 33*3*3 or 3*7*7 products of values in [-1, 1] x [-0.5, 0.5]. */
#define ATOL 1e-4
#define RTOL 1e-4

typedef struct host {
    float *x, *w, *b, *dy;
    size_t nx, nw, ny;
} host;

static host make_host(const cv *c, uint64_t seed)
{
    host h;
    h.nx = (size_t)c->N * c->Cin * c->H * c->W;
    h.nw = (size_t)c->Cout * c->Cin * c->K * c->K;
    h.ny = (size_t)c->N * c->Cout * oh_of(c) * ow_of(c);
    h.x = malloc(h.nx * sizeof(float));
    h.w = malloc(h.nw * sizeof(float));
    h.b = malloc((size_t)c->Cout * sizeof(float));
    h.dy = malloc(h.ny * sizeof(float));
    clsynth_test_fill_uniform(h.x, h.nx, -1.0f, 1.0f, seed * 8 + 1);
    clsynth_test_fill_uniform(h.w, h.nw, -0.5f, 0.5f, seed * 8 + 2);
    clsynth_test_fill_uniform(h.b, (size_t)c->Cout, -0.5f, 0.5f, seed * 8 + 3);
    clsynth_test_fill_uniform(h.dy, h.ny, -1.0f, 1.0f, seed * 8 + 4);
    return h;
}

static void free_host(host *h)
{
    free(h->x);
    free(h->w);
    free(h->b);
    free(h->dy);
}

/* y, dx, dw, db of one forward + backward with oneDNN (malloc'ed). */
typedef struct result {
    float *y, *dx, *dw, *db;
} result;

/* layout: CONV2D_DNNL_BLOCKED or _PLAIN (forced), 0 as resolved */
static result run_dnnl(const cv *c, const host *h, int layout)
{
    clsynth_tensor *x = clsynth_test_input(ctx, "x", c->N, c->Cin, c->H, c->W, h->x);
    clsynth_tensor *w = clsynth_test_input(ctx, "w", c->Cout, c->Cin, c->K, c->K, h->w);
    clsynth_tensor *b = clsynth_test_input(ctx, "b", 1, c->Cout, 1, 1, h->b);
    clsynth_kforce f = { .def = &clsynth_kdef_conv2d };
    if (layout) {
        const clsynth_conv_shape s = shape_of(c);
        clsynth_kcfg cfg;
        ck_assert_msg(clsynth_kconfig(ctx, f.def, &s, NULL, &cfg) == 0, "%s", ctx->err.msg);
        memcpy(f.v, cfg.v, sizeof f.v);
        f.v[CONV2D_ALGO] = CLSYNTH_CONV_DNNL;
        f.v[CONV2D_DNNL_LAYOUT] = layout;
    }
    clsynth_tensor *y = clsynth_conv2d_forced(ctx, x, w, b, c->stride, c->pad, CLSYNTH_CONV_DNNL, layout ? &f : NULL);
    ck_assert_msg(y != NULL, "%s", ctx->err.msg);
    result r = { clsynth_test_download(ctx, y), NULL, NULL, NULL };
    clsynth_tensor *gy = clsynth_tensor_from_host(ctx, "dy", y->n, y->c, y->h, y->w, h->dy);
    ck_assert_msg(clsynth_backward_with(ctx, y, gy) == 0, "%s", ctx->err.msg);
    r.dx = clsynth_test_download(ctx, x->grad);
    r.dw = clsynth_test_download(ctx, w->grad);
    r.db = clsynth_test_download(ctx, b->grad);
    ck_assert_msg(!layout || f.hits > 0, "the forced layout was never resolved");
    clsynth_tensor_free(ctx, x);
    clsynth_tensor_free(ctx, w);
    clsynth_tensor_free(ctx, b);
    clsynth_release_activations(ctx);
    return r;
}

static void free_result(result *r)
{
    free(r->y);
    free(r->dx);
    free(r->dw);
    free(r->db);
}

/* Both layouts (blocked: reordered around the primitive; plain: NCHW as stored). */
START_TEST(forward_and_backward_match_reference)
{
    if (!runs_here("forward_and_backward_match_reference"))
        return;
    int n;
    const cv *cs = shape_list(&n);
    for (int k = 0; k < 2 * n; k++) {
        const cv *c = &cs[k / 2];
        const int layout = k % 2 ? CONV2D_DNNL_PLAIN : CONV2D_DNNL_BLOCKED;
        const int i = k / 2;
        const clsynth_conv_shape s = shape_of(c);
        if (!clsynth_conv_dnnl_applies(&s))
            continue;
        host h = make_host(c, (uint64_t)i);
        float *ry = malloc(h.ny * sizeof(float)), *rdx = malloc(h.nx * sizeof(float));
        float *rdw = malloc(h.nw * sizeof(float)), *rdb = malloc((size_t)c->Cout * sizeof(float));
        ref_conv2d_forward(h.x, h.w, h.b, ry, c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K, c->stride, c->pad);
        ref_conv2d_backward(h.x, h.w, h.dy, rdx, rdw, rdb, c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K, c->stride,
                            c->pad);
        result r = run_dnnl(c, &h, layout);
        char base[160], what[200];
        describe(c, layout == CONV2D_DNNL_PLAIN ? "dnnl (plain)" : "dnnl (blocked)", base, sizeof base);
        snprintf(what, sizeof what, "%s: y", base);
        clsynth_test_assert_close(what, r.y, ry, h.ny, ATOL, RTOL);
        snprintf(what, sizeof what, "%s: dx", base);
        clsynth_test_assert_close(what, r.dx, rdx, h.nx, ATOL, RTOL);
        snprintf(what, sizeof what, "%s: dw", base);
        clsynth_test_assert_close(what, r.dw, rdw, h.nw, ATOL, RTOL);
        snprintf(what, sizeof what, "%s: db", base);
        clsynth_test_assert_close(what, r.db, rdb, (size_t)c->Cout, ATOL, RTOL);
        free_result(&r);
        free(ry);
        free(rdx);
        free(rdw);
        free(rdb);
        free_host(&h);
    }
}
END_TEST

/* Two runs give the same bits: y and every gradient, in both layouts. */
START_TEST(reruns_are_bit_identical)
{
    if (!runs_here("reruns_are_bit_identical"))
        return;
    const cv c = clsynth_test_under_oclgrind() ? (cv){ 2, 3, 6, 6, 4, 3, 1, 1 } : (cv){ 3, 37, 23, 21, 19, 3, 1, 1 };
    host h = make_host(&c, 70);
    for (int layout = CONV2D_DNNL_BLOCKED; layout <= CONV2D_DNNL_PLAIN; layout++) {
        result r[2] = { run_dnnl(&c, &h, layout), run_dnnl(&c, &h, layout) };
        ck_assert_msg(memcmp(r[0].y, r[1].y, h.ny * sizeof(float)) == 0, "layout %d: y differs between runs", layout);
        ck_assert_msg(memcmp(r[0].dx, r[1].dx, h.nx * sizeof(float)) == 0, "layout %d: dx differs", layout);
        ck_assert_msg(memcmp(r[0].dw, r[1].dw, h.nw * sizeof(float)) == 0, "layout %d: dw differs", layout);
        ck_assert_msg(memcmp(r[0].db, r[1].db, (size_t)c.Cout * sizeof(float)) == 0, "layout %d: db differs", layout);
        free_result(&r[0]);
        free_result(&r[1]);
    }
    free_host(&h);
}
END_TEST

typedef struct fd_user {
    cv c;
    const clsynth_conv_epilogue *epi; /* NULL: the plain conv */
} fd_user;

static clsynth_tensor *conv_fn(clsynth_ctx *cx, clsynth_tensor **in, void *user)
{
    const fd_user *u = user;
    if (!u->epi)
        return clsynth_conv2d_algo(cx, in[0], in[1], in[2], u->c.stride, u->c.pad, CLSYNTH_CONV_DNNL);
    const clsynth_conv_epilogue e = { u->epi->act, u->epi->slope, in[3], in[4] };
    return clsynth_conv2d_fused_forced(cx, in[0], in[1], in[2], u->c.stride, u->c.pad, &e, CLSYNTH_CONV_DNNL, NULL);
}

/* Central differences (eps 1e-3) of the plain conv and of the fused op with
 * gate, LeakyReLU and residual; then the backward run twice adds (dx through
 * the sum post-op's reorder, dw always). */
START_TEST(gradients_match_finite_differences_and_accumulate)
{
    if (!runs_here("gradients_match_finite_differences_and_accumulate"))
        return;
    static const cv small[] = { { 2, 3, 5, 7, 5, 3, 2, 1 }, { 2, 5, 5, 3, 3, 1, 1, 0 }, { 1, 17, 6, 5, 18, 3, 1, 1 } };
    const int used = clsynth_test_under_oclgrind() ? 1 : 3;
    for (int i = 0; i < used; i++) {
        const cv *c = &small[i];
        host h = make_host(c, 100 + (uint64_t)i);
        const int oh = oh_of(c), ow = ow_of(c);
        float *g = malloc(h.ny * sizeof(float)), *res = malloc(h.ny * sizeof(float));
        clsynth_test_fill_uniform(g, h.ny, 0.05f, 1.0f, 900 + (uint64_t)i);
        clsynth_test_fill_uniform(res, h.ny, -1.0f, 1.0f, 950 + (uint64_t)i);
        clsynth_tensor *in[5] = {
            clsynth_test_input(ctx, "x", c->N, c->Cin, c->H, c->W, h.x),
            clsynth_test_input(ctx, "w", c->Cout, c->Cin, c->K, c->K, h.w),
            clsynth_test_input(ctx, "b", 1, c->Cout, 1, 1, h.b),
            clsynth_test_input(ctx, "gate", c->N, c->Cout, oh, ow, g),
            clsynth_test_input(ctx, "residual", c->N, c->Cout, oh, ow, res),
        };
        const clsynth_conv_epilogue epi = { CLSYNTH_ACT_LEAKY_RELU, 0.2f, NULL, NULL };
        for (int fused = 0; fused < 2; fused++) {
            fd_user u = { *c, fused ? &epi : NULL };
            char what[200];
            describe(c, fused ? "dnnl fused (gate, leaky_relu, residual)" : "dnnl", what, sizeof what);
            clsynth_test_gradcheck(ctx, what, conv_fn, in, fused ? 5 : 3, &u, 1e-3f, 5e-3, 2e-2, 6);
            clsynth_test_check_accumulates(ctx, what, conv_fn, in, fused ? 5 : 3, &u);
        }
        for (int k = 0; k < 5; k++)
            clsynth_tensor_free(ctx, in[k]);
        free(g);
        free(res);
        free_host(&h);
    }
}
END_TEST

/* x and w as views into one tensor, y's gradient from a view of another: the
 * algorithm maps the union of the regions once and reads each at its offset. */
START_TEST(operands_in_one_buffer_are_read_at_their_offsets)
{
    if (!runs_here("operands_in_one_buffer_are_read_at_their_offsets"))
        return;
    const cv c = { 2, 5, 9, 7, 6, 3, 1, 1 };
    host h = make_host(&c, 300);
    const size_t gap = 13; /* floats before x and between x and w */
    const size_t total = gap + h.nx + gap + h.nw;
    float *packed = calloc(total, sizeof(float));
    memcpy(packed + gap, h.x, h.nx * sizeof(float));
    memcpy(packed + gap + h.nx + gap, h.w, h.nw * sizeof(float));
    clsynth_tensor *all = clsynth_tensor_from_host(ctx, "packed", 1, 1, 1, (int)total, packed);
    clsynth_tensor *x = clsynth_tensor_view(ctx, all, "x_view", gap, c.N, c.Cin, c.H, c.W);
    clsynth_tensor *w = clsynth_tensor_view(ctx, all, "w_view", gap + h.nx + gap, c.Cout, c.Cin, c.K, c.K);
    ck_assert_msg(x && w, "%s", ctx->err.msg);
    clsynth_tensor *y = clsynth_conv2d_algo(ctx, x, w, NULL, c.stride, c.pad, CLSYNTH_CONV_DNNL);
    ck_assert_msg(y != NULL, "%s", ctx->err.msg);
    float *hy = clsynth_test_download(ctx, y), *ry = malloc(h.ny * sizeof(float));
    ref_conv2d_forward(h.x, h.w, NULL, ry, c.N, c.Cin, c.H, c.W, c.Cout, c.K, c.K, c.stride, c.pad);
    clsynth_test_assert_close("dnnl conv of views into one buffer: y", hy, ry, h.ny, ATOL, RTOL);
    /* the bytes around the views are untouched */
    float *after = clsynth_test_download(ctx, all);
    ck_assert_msg(memcmp(after, packed, total * sizeof(float)) == 0, "the packed buffer changed");
    free(after);
    free(hy);
    free(ry);
    free(packed);
    clsynth_release_activations(ctx);
    free_host(&h);
}
END_TEST

/* A stride that leaves input rows unread with a pad below stride - 1 needs a
 * negative right padding: the descriptor's legality rejects it, the forced
 * algorithm names the stride and pad, and AUTO picks another algorithm. */
START_TEST(shapes_it_cannot_take_are_named_and_avoided)
{
    const cv c = { 1, 3, 14, 14, 4, 1, 2, 0 };
    const clsynth_conv_shape s = shape_of(&c);
    ck_assert(!clsynth_conv_dnnl_applies(&s));
    const cv fine = { 1, 3, 13, 13, 4, 1, 2, 0 };
    const clsynth_conv_shape s2 = shape_of(&fine);
    ck_assert(clsynth_conv_dnnl_applies(&s2));
    int v[CLSYNTH_K_MAX_PARAMS] = { 0 };
    v[CONV2D_ALGO] = CLSYNTH_CONV_DNNL;
    ck_assert(!clsynth_kdef_conv2d.valid(v, &s));
    host h = make_host(&c, 400);
    clsynth_tensor *x = clsynth_tensor_from_host(ctx, "x_even", c.N, c.Cin, c.H, c.W, h.x);
    clsynth_tensor *w = clsynth_tensor_from_host(ctx, "w", c.Cout, c.Cin, c.K, c.K, h.w);
    clsynth_tensor *y = clsynth_conv2d_algo(ctx, x, w, NULL, c.stride, c.pad, CLSYNTH_CONV_DNNL);
    ck_assert_ptr_null(y);
    ck_assert_msg(strstr(ctx->err.msg, "x_even") != NULL, "message: %s", ctx->err.msg);
    if (clsynth_conv_dnnl_capable(&ctx->dev))
        ck_assert_msg(strstr(ctx->err.msg, "stride 2 with pad 0"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    y = clsynth_conv2d(ctx, x, w, NULL, c.stride, c.pad);
    ck_assert_msg(y != NULL, "%s", ctx->err.msg);
    float *hy = clsynth_test_download(ctx, y), *ry = malloc(h.ny * sizeof(float));
    ref_conv2d_forward(h.x, h.w, NULL, ry, c.N, c.Cin, c.H, c.W, c.Cout, c.K, c.K, c.stride, c.pad);
    clsynth_test_assert_close("auto conv at a shape oneDNN cannot take", hy, ry, h.ny, ATOL, RTOL);
    free(hy);
    free(ry);
    clsynth_release_activations(ctx);
    free_host(&h);
}
END_TEST

/* Only a host-CPU device of a build with oneDNN runs it: a GPU is refused by
 * the descriptor (naming its class), and a build without oneDNN names the
 * package to install. */
START_TEST(devices_it_runs_on)
{
    clsynth_device_info gpu = ctx->dev;
    snprintf(gpu.platform_name, sizeof gpu.platform_name, "NVIDIA CUDA");
    snprintf(gpu.vendor, sizeof gpu.vendor, "NVIDIA Corporation");
    gpu.type = CL_DEVICE_TYPE_GPU;
    ck_assert(!clsynth_conv_dnnl_capable(&gpu));
    int v[CLSYNTH_K_MAX_PARAMS] = { 0 };
    v[CONV2D_ALGO] = CLSYNTH_CONV_DNNL;
    char why[256] = "";
    ck_assert(!clsynth_kdef_conv2d.device_ok(&gpu, v, why, sizeof why));
    ck_assert_msg(strstr(why, "host-CPU") && strstr(why, "nvidia"), "why: %s", why);
    v[CONV2D_ALGO] = CLSYNTH_CONV_IGEMM;
    ck_assert(clsynth_kdef_conv2d.device_ok(&gpu, v, why, sizeof why));
#ifndef CLSYNTH_HAVE_DNNL
    const cv c = { 1, 3, 5, 5, 2, 3, 1, 1 };
    host h = make_host(&c, 500);
    clsynth_tensor *x = clsynth_tensor_from_host(ctx, "x", c.N, c.Cin, c.H, c.W, h.x);
    clsynth_tensor *w = clsynth_tensor_from_host(ctx, "w", c.Cout, c.Cin, c.K, c.K, h.w);
    ck_assert_ptr_null(clsynth_conv2d_algo(ctx, x, w, NULL, 1, 1, CLSYNTH_CONV_DNNL));
    ck_assert_msg(strstr(ctx->err.msg, "libdnnl-dev"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_release_activations(ctx);
    free_host(&h);
#endif
}
END_TEST

static void setup_once(void) { ctx = clsynth_test_ctx(); }
static void teardown_once(void)
{
    clsynth_ctx_free(ctx);
    ctx = NULL;
}

int main(void)
{
    setenv("CK_FORK", "no", 0);
    Suite *s = suite_create("conv_dnnl");
    TCase *tc = tcase_create("conv_dnnl");
    tcase_add_unchecked_fixture(tc, setup_once, teardown_once);
    tcase_set_timeout(tc, clsynth_test_under_oclgrind() ? 1800 : 600);
    tcase_add_test(tc, forward_and_backward_match_reference);
    tcase_add_test(tc, reruns_are_bit_identical);
    tcase_add_test(tc, gradients_match_finite_differences_and_accumulate);
    tcase_add_test(tc, operands_in_one_buffer_are_read_at_their_offsets);
    tcase_add_test(tc, shapes_it_cannot_take_are_named_and_avoided);
    tcase_add_test(tc, devices_it_runs_on);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
