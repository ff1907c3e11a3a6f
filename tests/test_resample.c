/* Resampling ops: nearest resize / 2x upsampling, bilinear 2x and resize, average and
 * max pooling, one-hot. Forward and backward against the plain-C references
 * (tests/ref_resample.c) and gradient checks by finite differences, at odd
 * sizes, both up and down.
 * CLSYNTH_OCLGRIND_OK: tiny shapes when CLSYNTH_OCLGRIND is set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/ops.h"
#include "ref_resample.h"
#include "testutil.h"

static clsynth_ctx *ctx;

enum { OP_NEAREST2X, OP_RESIZE, OP_BILINEAR2X, OP_RESIZE_BILINEAR, OP_AVG, OP_AVG2X2, OP_MAX };

typedef struct op_desc {
    int op;
    int a, b, c; /* resize: (h, w); pools: (k, s, p) */
} op_desc;

static clsynth_tensor *run_op(clsynth_ctx *c, clsynth_tensor *x, const op_desc *d)
{
    switch (d->op) {
    case OP_NEAREST2X:
        return clsynth_upsample_nearest2x(c, x);
    case OP_RESIZE:
        return clsynth_resize_nearest(c, x, d->a, d->b);
    case OP_BILINEAR2X:
        return clsynth_upsample_bilinear2x(c, x);
    case OP_RESIZE_BILINEAR:
        return clsynth_resize_bilinear(c, x, d->a, d->b);
    case OP_AVG:
        return clsynth_avg_pool(c, x, d->a, d->b, d->c);
    case OP_AVG2X2:
        return clsynth_avg_pool2x2(c, x);
    default:
        return clsynth_max_pool(c, x, d->a, d->b);
    }
}

static void out_size(const op_desc *d, int H, int W, int *OH, int *OW)
{
    switch (d->op) {
    case OP_NEAREST2X:
    case OP_BILINEAR2X:
        *OH = 2 * H, *OW = 2 * W;
        break;
    case OP_RESIZE:
    case OP_RESIZE_BILINEAR:
        *OH = d->a, *OW = d->b;
        break;
    case OP_AVG:
        *OH = (H + 2 * d->c - d->a) / d->b + 1, *OW = (W + 2 * d->c - d->a) / d->b + 1;
        break;
    case OP_AVG2X2:
        *OH = H / 2, *OW = W / 2;
        break;
    default:
        *OH = (H - d->a) / d->b + 1, *OW = (W - d->a) / d->b + 1;
    }
}

static void ref_forward(const op_desc *d, const float *x, float *y, int NC, int H, int W)
{
    int OH, OW;
    out_size(d, H, W, &OH, &OW);
    switch (d->op) {
    case OP_NEAREST2X:
    case OP_RESIZE:
        ref_resize_nearest(x, y, NC, H, W, OH, OW);
        break;
    case OP_BILINEAR2X:
        ref_upsample_bilinear2x(x, y, NC, H, W);
        break;
    case OP_RESIZE_BILINEAR:
        ref_resize_bilinear(x, y, NC, H, W, OH, OW);
        break;
    case OP_AVG:
        ref_avg_pool(x, y, NC, H, W, d->a, d->b, d->c);
        break;
    case OP_AVG2X2:
        ref_avg_pool(x, y, NC, H, W, 2, 2, 0);
        break;
    default:
        ref_max_pool(x, y, NC, H, W, d->a, d->b);
    }
}

static void ref_backward(const op_desc *d, const float *x, const float *dy, float *dx, int NC, int H, int W)
{
    int OH, OW;
    out_size(d, H, W, &OH, &OW);
    switch (d->op) {
    case OP_NEAREST2X:
    case OP_RESIZE:
        ref_resize_nearest_backward(dy, dx, NC, H, W, OH, OW);
        break;
    case OP_BILINEAR2X:
        ref_upsample_bilinear2x_backward(dy, dx, NC, H, W);
        break;
    case OP_RESIZE_BILINEAR:
        ref_resize_bilinear_backward(dy, dx, NC, H, W, OH, OW);
        break;
    case OP_AVG:
        ref_avg_pool_backward(dy, dx, NC, H, W, d->a, d->b, d->c);
        break;
    case OP_AVG2X2:
        ref_avg_pool_backward(dy, dx, NC, H, W, 2, 2, 0);
        break;
    default:
        ref_max_pool_backward(x, dy, dx, NC, H, W, d->a, d->b);
    }
}

/* Distinct values (a shuffled ramp with steps of 0.01): no ties for max pooling,
 * and a finite-difference eps of 1e-3 never changes an argmax. */
static void fill_distinct(float *x, size_t n, uint64_t seed)
{
    float *r = malloc(n * sizeof *r);
    clsynth_test_fill_uniform(r, n, 0.0f, 1.0f, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = 0.01f * (float)i - 0.005f * (float)n;
    for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates from the uniform stream */
        size_t j = (size_t)(r[i] * (float)(i + 1));
        if (j > i)
            j = i;
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    free(r);
}

/* Forward and backward (seeded with a random dy) against the reference.
 * Tolerances: nearest and max pooling copy values (exact); bilinear and
 * average sums of a few float products: atol 1e-6, rtol 1e-5. */
static void check_against_reference(const op_desc *d, int N, int C, int H, int W, const char *what)
{
    int OH, OW, NC = N * C;
    out_size(d, H, W, &OH, &OW);
    size_t nx = (size_t)NC * H * W, ny = (size_t)NC * OH * OW;
    float *x = malloc(nx * sizeof *x), *dy = malloc(ny * sizeof *dy);
    float *ry = malloc(ny * sizeof *ry), *rdx = malloc(nx * sizeof *rdx);
    fill_distinct(x, nx, 3);
    clsynth_test_fill_uniform(dy, ny, -1.0f, 1.0f, 4);
    ref_forward(d, x, ry, NC, H, W);
    ref_backward(d, x, dy, rdx, NC, H, W);
    clsynth_tensor *xt = clsynth_test_input(ctx, "x", N, C, H, W, x);
    clsynth_tensor *y = run_op(ctx, xt, d);
    ck_assert_msg(y != NULL, "%s: %s", what, ctx->err.msg);
    ck_assert_int_eq(y->n, N);
    ck_assert_int_eq(y->c, C);
    ck_assert_int_eq(y->h, OH);
    ck_assert_int_eq(y->w, OW);
    float *out = clsynth_test_download(ctx, y);
    int exact = d->op == OP_NEAREST2X || d->op == OP_RESIZE || d->op == OP_MAX;
    char msg[160];
    snprintf(msg, sizeof msg, "%s forward", what);
    clsynth_test_assert_close(msg, out, ry, ny, exact ? 0.0 : 1e-6, exact ? 0.0 : 1e-5);
    clsynth_tensor *g = clsynth_tensor_from_host(ctx, "dy", N, C, OH, OW, dy);
    clsynth_finish(ctx);
    const unsigned long l0 = ctx->launches;
    ck_assert_msg(clsynth_backward_with(ctx, y, g) == 0, "%s backward: %s", what, ctx->err.msg);
    /* the seed's copy and the gather kernel, which stores the fresh dx: no fill */
    ck_assert_msg(ctx->launches - l0 == 2, "%s backward: %lu launches, expected 2", what, ctx->launches - l0);
    float *dx = clsynth_test_download(ctx, xt->grad);
    snprintf(msg, sizeof msg, "%s backward", what);
    clsynth_test_assert_close(msg, dx, rdx, nx, 1e-6, 1e-5);
    /* again into the existing gradient: added to */
    y = run_op(ctx, xt, d);
    g = clsynth_tensor_from_host(ctx, "dy", N, C, OH, OW, dy);
    ck_assert_msg(y && g && clsynth_backward_with(ctx, y, g) == 0, "%s second backward: %s", what, ctx->err.msg);
    float *dx2 = clsynth_test_download(ctx, xt->grad);
    for (size_t i = 0; i < nx; i++)
        rdx[i] *= 2.0f;
    snprintf(msg, sizeof msg, "%s backward, accumulated", what);
    clsynth_test_assert_close(msg, dx2, rdx, nx, 2e-6, 1e-5);
    clsynth_tensor_free(ctx, xt);
    free(x), free(dy), free(ry), free(rdx), free(out), free(dx), free(dx2);
}

static clsynth_tensor *fwd_op(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    return run_op(c, in[0], (const op_desc *)user);
}

/* All ops are linear in x (max pooling piecewise, away from ties): central
 * differences are exact up to rounding. */
static void gradcheck_op(const op_desc *d, int N, int C, int H, int W, const char *what)
{
    size_t nx = (size_t)N * C * H * W;
    float *x = malloc(nx * sizeof *x);
    fill_distinct(x, nx, 9);
    clsynth_tensor *in[1] = { clsynth_test_input(ctx, "x", N, C, H, W, x) };
    int samples = clsynth_test_under_oclgrind() ? 6 : 40;
    float eps = d->op == OP_MAX ? 1e-3f : 0.05f;
    clsynth_test_gradcheck(ctx, what, fwd_op, in, 1, (void *)d, eps, 2e-3, 2e-3, samples);
    clsynth_tensor_free(ctx, in[0]);
    free(x);
}

static int tiny(void) { return clsynth_test_under_oclgrind(); }

START_TEST(upsample_nearest2x_matches_reference)
{
    op_desc d = { OP_NEAREST2X, 0, 0, 0 };
    check_against_reference(&d, 2, 3, 7, 9, "upsample_nearest2x (2,3,7,9)");
    if (!tiny())
        check_against_reference(&d, 2, 17, 13, 11, "upsample_nearest2x (2,17,13,11)");
    gradcheck_op(&d, 2, 3, 5, 7, "upsample_nearest2x (2,3,5,7)");
}
END_TEST

START_TEST(resize_nearest_down_and_up_match_reference)
{
    static const int sizes[][2] = { { 5, 7 }, { 27, 20 }, { 13, 11 }, { 1, 1 }, { 26, 22 }, { 6, 33 } };
    int count = tiny() ? 2 : (int)(sizeof sizes / sizeof *sizes);
    for (int i = 0; i < count; i++) {
        op_desc d = { OP_RESIZE, sizes[i][0], sizes[i][1], 0 };
        char what[96];
        snprintf(what, sizeof what, "resize_nearest (2,5,13,11) -> %dx%d", d.a, d.b);
        check_against_reference(&d, 2, 5, 13, 11, what);
    }
    op_desc down = { OP_RESIZE, 5, 7, 0 }, up = { OP_RESIZE, 27, 20, 0 };
    gradcheck_op(&down, 2, 3, 13, 11, "resize_nearest (2,3,13,11) -> 5x7");
    gradcheck_op(&up, 2, 3, 13, 11, "resize_nearest (2,3,13,11) -> 27x20");
}
END_TEST

START_TEST(resize_nearest_uses_integer_index_rule)
{
    /* 3 -> 7: src = floor(dst * 3 / 7) = 0 0 0 1 1 2 2; a float scale 3/7 would risk 6*0.428..=2.57 etc. */
    float x[3] = { 10, 20, 30 }, want[7] = { 10, 10, 10, 20, 20, 30, 30 };
    clsynth_tensor *xt = clsynth_tensor_from_host(ctx, "x", 1, 1, 1, 3, x);
    clsynth_tensor *y = clsynth_resize_nearest(ctx, xt, 1, 7);
    float *out = clsynth_test_download(ctx, y);
    clsynth_test_assert_close("resize 3 -> 7", out, want, 7, 0, 0);
    free(out);
}
END_TEST

START_TEST(upsample_bilinear2x_matches_reference)
{
    op_desc d = { OP_BILINEAR2X, 0, 0, 0 };
    check_against_reference(&d, 2, 3, 7, 9, "upsample_bilinear2x (2,3,7,9)");
    check_against_reference(&d, 2, 3, 1, 1, "upsample_bilinear2x (2,3,1,1)");
    if (!tiny()) {
        check_against_reference(&d, 2, 5, 13, 11, "upsample_bilinear2x (2,5,13,11)");
        check_against_reference(&d, 2, 3, 1, 6, "upsample_bilinear2x (2,3,1,6)");
    }
    gradcheck_op(&d, 2, 3, 5, 7, "upsample_bilinear2x (2,3,5,7)");
}
END_TEST

START_TEST(upsample_bilinear2x_edges_follow_pytorch)
{
    /* PyTorch F.interpolate([[1, 2, 4]], scale_factor=2, mode='bilinear', align_corners=False)
     * along W: 1, 1.25, 1.75, 2.5, 3.5, 4 */
    float x[3] = { 1, 2, 4 }, want[6] = { 1.0f, 1.25f, 1.75f, 2.5f, 3.5f, 4.0f };
    clsynth_tensor *xt = clsynth_tensor_from_host(ctx, "x", 1, 1, 1, 3, x);
    clsynth_tensor *y = clsynth_upsample_bilinear2x(ctx, xt);
    float *out = clsynth_test_download(ctx, y);
    for (int r = 0; r < 2; r++) /* both output rows copy the single input row */
        clsynth_test_assert_close("bilinear 1x3 -> 2x6", out + 6 * r, want, 6, 0, 0);
    free(out);
}
END_TEST

START_TEST(resize_bilinear_down_and_up_match_reference)
{
    /* up by 8 (the VAE encoder's 32 -> 256), down by 2 along W only (Cityscapes'
     * 256x512 -> 256x256), odd ratios both ways, and 1x1 in and out */
    static const int cfg[][4] = { { 4, 4, 32, 32 }, { 6, 12, 6, 6 }, { 13, 11, 5, 7 }, { 5, 7, 27, 20 },
                                  { 1, 1, 3, 5 },   { 7, 9, 1, 1 },  { 9, 6, 9, 6 } };
    int count = tiny() ? 3 : (int)(sizeof cfg / sizeof *cfg);
    for (int i = 0; i < count; i++) {
        op_desc d = { OP_RESIZE_BILINEAR, cfg[i][2], cfg[i][3], 0 };
        char what[96];
        snprintf(what, sizeof what, "resize_bilinear (2,3,%d,%d) -> %dx%d", cfg[i][0], cfg[i][1], d.a, d.b);
        check_against_reference(&d, 2, 3, cfg[i][0], cfg[i][1], what);
    }
    op_desc down = { OP_RESIZE_BILINEAR, 5, 4, 0 }, up = { OP_RESIZE_BILINEAR, 17, 10, 0 };
    gradcheck_op(&down, 2, 3, 13, 11, "resize_bilinear (2,3,13,11) -> 5x4");
    gradcheck_op(&up, 2, 3, 5, 7, "resize_bilinear (2,3,5,7) -> 17x10");
}
END_TEST

START_TEST(resize_bilinear_follows_pytorch)
{
    /* F.interpolate(x, size=(1, 7), mode='bilinear') of [[1, 2, 4]] (scale 3/7):
     * 1, 1.1428572, 1.5714285, 2, 2.857143, 3.7142859, 4 (PyTorch 2.15, CPU float) and
     * size=(1, 2) of [[1, 2, 4, 8]] (scale 2): 1.5, 6 */
    float x[4] = { 1, 2, 4, 8 }, up_want[7] = { 1.0f, 1.1428572f, 1.5714285f, 2.0f, 2.857143f, 3.7142859f, 4.0f };
    float down_want[2] = { 1.5f, 6.0f };
    clsynth_tensor *xt = clsynth_tensor_from_host(ctx, "x", 1, 1, 1, 3, x);
    float *out = clsynth_test_download(ctx, clsynth_resize_bilinear(ctx, xt, 1, 7));
    clsynth_test_assert_close("bilinear 1x3 -> 1x7", out, up_want, 7, 1e-6, 0);
    free(out);
    xt = clsynth_tensor_from_host(ctx, "x", 1, 1, 1, 4, x);
    out = clsynth_test_download(ctx, clsynth_resize_bilinear(ctx, xt, 1, 2));
    clsynth_test_assert_close("bilinear 1x4 -> 1x2", out, down_want, 2, 0, 0);
    free(out);
}
END_TEST

START_TEST(avg_pool_matches_reference)
{
    static const int cfg[][3] = { { 2, 2, 0 }, { 3, 2, 1 }, { 3, 1, 1 }, { 4, 3, 2 }, { 1, 2, 0 } };
    int count = tiny() ? 2 : (int)(sizeof cfg / sizeof *cfg);
    for (int i = 0; i < count; i++) {
        op_desc d = { OP_AVG, cfg[i][0], cfg[i][1], cfg[i][2] };
        char what[96];
        snprintf(what, sizeof what, "avg_pool k%d s%d p%d (2,5,13,11)", d.a, d.b, d.c);
        check_against_reference(&d, 2, 5, 13, 11, what);
        snprintf(what, sizeof what, "avg_pool k%d s%d p%d (2,3,7,9)", d.a, d.b, d.c);
        gradcheck_op(&d, 2, 3, 7, 9, what);
    }
    op_desc d2 = { OP_AVG2X2, 0, 0, 0 };
    check_against_reference(&d2, 2, 3, 7, 9, "avg_pool2x2 (2,3,7,9)");
    gradcheck_op(&d2, 2, 3, 7, 9, "avg_pool2x2 (2,3,7,9)");
}
END_TEST

START_TEST(avg_pool_excludes_padding_from_the_count)
{
    /* 2x2 of ones, k3 s1 p1: every window averages only real pixels -> all ones */
    float x[4] = { 1, 1, 1, 1 }, want[4] = { 1, 1, 1, 1 };
    clsynth_tensor *xt = clsynth_tensor_from_host(ctx, "x", 1, 1, 2, 2, x);
    clsynth_tensor *y = clsynth_avg_pool(ctx, xt, 3, 1, 1);
    float *out = clsynth_test_download(ctx, y);
    clsynth_test_assert_close("avg_pool count_include_pad=false", out, want, 4, 0, 0);
    free(out);
}
END_TEST

START_TEST(max_pool_matches_reference)
{
    static const int cfg[][2] = { { 2, 2 }, { 3, 2 }, { 3, 1 }, { 2, 3 } };
    int count = tiny() ? 2 : (int)(sizeof cfg / sizeof *cfg);
    for (int i = 0; i < count; i++) {
        op_desc d = { OP_MAX, cfg[i][0], cfg[i][1], 0 };
        char what[96];
        snprintf(what, sizeof what, "max_pool k%d s%d (2,5,13,11)", d.a, d.b);
        check_against_reference(&d, 2, 5, 13, 11, what);
        snprintf(what, sizeof what, "max_pool k%d s%d (2,3,7,9)", d.a, d.b);
        gradcheck_op(&d, 2, 3, 7, 9, what);
    }
}
END_TEST

START_TEST(max_pool_gradient_goes_to_the_first_maximum_on_ties)
{
    /* one 2x2 window of equal values, then a window whose max appears twice */
    float x[8] = { 5, 5, 1, 7, 5, 5, 7, 0 }; /* (1,1,2,4): windows {5,5,5,5} and {1,7,7,0} */
    clsynth_tensor *xt = clsynth_test_input(ctx, "x", 1, 1, 2, 4, x);
    clsynth_tensor *y = clsynth_max_pool(ctx, xt, 2, 2);
    float g[2] = { 1.0f, 2.0f };
    clsynth_tensor *gt = clsynth_tensor_from_host(ctx, "dy", 1, 1, 1, 2, g);
    ck_assert_int_eq(clsynth_backward_with(ctx, y, gt), 0);
    float *dx = clsynth_test_download(ctx, xt->grad);
    float want[8] = { 1, 0, 0, 2, 0, 0, 0, 0 };
    clsynth_test_assert_close("max_pool tie gradient", dx, want, 8, 0, 0);
    free(dx);
    clsynth_tensor_free(ctx, xt);
}
END_TEST

START_TEST(one_hot_sets_class_and_dontcare_channels)
{
    /* (2,1,3,5) labels with 4 classes, dontcare 255 -> channel 4 of 5 */
    int N = 2, H = 3, W = 5, classes = 4, channels = 5;
    size_t hw = (size_t)H * W;
    float lab[30];
    for (int i = 0; i < 30; i++)
        lab[i] = (i % 7 == 3) ? 255.0f : (float)((i * 3) % classes);
    float *want = malloc(sizeof(float) * N * channels * hw);
    ck_assert_int_eq(ref_one_hot(lab, want, N, H, W, classes, channels, 255, 4), -1);
    clsynth_tensor *lt = clsynth_tensor_from_host(ctx, "labels", N, 1, H, W, lab);
    clsynth_tensor *y = clsynth_one_hot(ctx, lt, classes, channels, 255, 4);
    ck_assert_msg(y != NULL, "%s", ctx->err.msg);
    ck_assert_int_eq(y->c, channels);
    float *out = clsynth_test_download(ctx, y);
    clsynth_test_assert_close("one_hot with dontcare channel", out, want, (size_t)N * channels * hw, 0, 0);
    ck_assert_float_eq(out[4 * hw + 3], 1.0f); /* pixel 3 of sample 0 is dontcare */
    free(out);
    /* dontcare channel -1: dontcare pixels get no channel at all */
    ck_assert_int_eq(ref_one_hot(lab, want, N, H, W, classes, classes, 255, -1), -1);
    y = clsynth_one_hot(ctx, lt, classes, classes, 255, -1);
    ck_assert_msg(y != NULL, "%s", ctx->err.msg);
    out = clsynth_test_download(ctx, y);
    clsynth_test_assert_close("one_hot without dontcare channel", out, want, (size_t)N * classes * hw, 0, 0);
    for (int c = 0; c < classes; c++)
        ck_assert_float_eq(out[c * hw + 3], 0.0f);
    free(out);
    free(want);
}
END_TEST

static void expect_bad_label(float value, int n, int yy, int xx, const char *value_text)
{
    int N = 2, H = 3, W = 5;
    float lab[30];
    for (int i = 0; i < 30; i++)
        lab[i] = (float)(i % 3);
    lab[(n * H + yy) * W + xx] = value;
    lab[29] = -7.0f; /* a later bad pixel: the first one is reported */
    clsynth_tensor *lt = clsynth_tensor_from_host(ctx, "labels", N, 1, H, W, lab);
    ck_assert_ptr_null(clsynth_one_hot(ctx, lt, 3, 4, 255, 3));
    char want[64];
    snprintf(want, sizeof want, "(n %d, y %d, x %d)", n, yy, xx);
    ck_assert_msg(strstr(ctx->err.msg, "one_hot") && strstr(ctx->err.msg, value_text) && strstr(ctx->err.msg, want),
                  "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_release_activations(ctx);
}

START_TEST(one_hot_reports_the_first_bad_label)
{
    expect_bad_label(7.5f, 0, 1, 2, "7.5");
    expect_bad_label(1.5f, 0, 2, 3, "1.5"); /* inside [0, classes) but not an integer */
    expect_bad_label(-1.0f, 1, 0, 4, "-1");
    expect_bad_label(3.0f, 1, 2, 0, "value 3 "); /* == num_classes */
    expect_bad_label(254.0f, 0, 0, 0, "254");
}
END_TEST

START_TEST(rejects_bad_parameters)
{
    clsynth_tensor *x = clsynth_tensor_new(ctx, "feat", 2, 3, 5, 7);
    ck_assert_ptr_null(clsynth_avg_pool(ctx, x, 2, 2, 2));
    ck_assert_msg(strstr(ctx->err.msg, "avg_pool") && strstr(ctx->err.msg, "'feat' (2, 3, 5, 7)"), "%s",
                  ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_ptr_null(clsynth_max_pool(ctx, x, 6, 2));
    ck_assert_msg(strstr(ctx->err.msg, "max_pool") && strstr(ctx->err.msg, "'feat'"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_ptr_null(clsynth_resize_nearest(ctx, x, 0, 4));
    ck_assert_ptr_nonnull(strstr(ctx->err.msg, "resize_nearest"));
    clsynth_ctx_clear_error(ctx);
    ck_assert_ptr_null(clsynth_one_hot(ctx, x, 3, 4, 255, 3));
    ck_assert_msg(strstr(ctx->err.msg, "one_hot") && strstr(ctx->err.msg, "one channel"), "%s", ctx->err.msg);
}
END_TEST

int main(void)
{
    return clsynth_test_main("resample", &ctx, 600,
                             CLSYNTH_TEST_LIST(upsample_nearest2x_matches_reference,
                                               resize_nearest_down_and_up_match_reference,
                                               resize_nearest_uses_integer_index_rule,
                                               upsample_bilinear2x_matches_reference,
                                               upsample_bilinear2x_edges_follow_pytorch,
                                               resize_bilinear_down_and_up_match_reference,
                                               resize_bilinear_follows_pytorch,
                                               avg_pool_matches_reference,
                                               avg_pool_excludes_padding_from_the_count,
                                               max_pool_matches_reference,
                                               max_pool_gradient_goes_to_the_first_maximum_on_ties,
                                               one_hot_sets_class_and_dontcare_channels,
                                               one_hot_reports_the_first_bad_label,
                                               rejects_bad_parameters));
}
