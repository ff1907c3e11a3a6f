/* Elementwise ops and the reduction helper (clcore/ops_elementwise.c,
 * clcore/reduce.c): forward vs tests/ref_elementwise.c, gradients vs central
 * finite differences, at odd shapes and every broadcast pattern.
 * CLSYNTH_OCLGRIND_OK: under Oclgrind the shapes shrink (clsynth_test_under_oclgrind). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/ops.h"
#include "clcore/reduce.h"
#include "ref_elementwise.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static size_t numel4(const int d[4]) { return (size_t)d[0] * d[1] * d[2] * d[3]; }

static float *host_uniform(size_t n, float lo, float hi, uint64_t seed)
{
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    clsynth_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}

/* Uniform values with |x| >= 0.1 (away from the kinks of relu-like ops at 0). */
static float *host_away_from_zero(size_t n, uint64_t seed)
{
    float *x = host_uniform(n, -1.0f, 1.0f, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] < 0 ? x[i] - 0.1f : x[i] + 0.1f;
    return x;
}

static clsynth_tensor *input4(const char *name, const int d[4], const float *h)
{
    return clsynth_test_input(ctx, name, d[0], d[1], d[2], d[3], h);
}

#define check_accumulates(what, fn, in, n_in, user) \
    clsynth_test_check_accumulates(ctx, what, fn, in, n_in, user)

/* ---- binary ops with broadcasting ---- */

typedef struct bcase {
    const char *what;
    int a[4], b[4];
} bcase;

/* Output (2, 5, 7, 9) or (2, 3, 5, 7); every broadcast pattern on either side. */
static const bcase bcases[] = {
    { "same shape", { 2, 5, 7, 9 }, { 2, 5, 7, 9 } },
    { "b over N", { 2, 5, 7, 9 }, { 1, 5, 7, 9 } },
    { "b over C", { 2, 5, 7, 9 }, { 2, 1, 7, 9 } },
    { "b over HxW", { 2, 5, 7, 9 }, { 2, 5, 1, 1 } },
    { "b per channel", { 2, 5, 7, 9 }, { 1, 5, 1, 1 } },
    { "b scalar", { 2, 5, 7, 9 }, { 1, 1, 1, 1 } },
    { "b over W only", { 2, 5, 7, 9 }, { 2, 5, 7, 1 } },
    { "a scalar", { 1, 1, 1, 1 }, { 2, 5, 7, 9 } },
    { "a over C", { 2, 1, 7, 9 }, { 2, 5, 7, 9 } },
    { "both broadcast", { 2, 1, 7, 9 }, { 1, 5, 1, 1 } },
    { "both broadcast, alternating", { 1, 5, 1, 9 }, { 2, 1, 7, 1 } },
};
#define N_BCASES (int)(sizeof bcases / sizeof bcases[0])
static const char *op_names[3] = { "add", "sub", "mul" };

static void out_shape(const int a[4], const int b[4], int y[4])
{
    for (int d = 0; d < 4; d++)
        y[d] = a[d] > b[d] ? a[d] : b[d];
}

static clsynth_tensor *call_binary(int op, clsynth_tensor *a, clsynth_tensor *b)
{
    return op == 0 ? clsynth_add(ctx, a, b) : op == 1 ? clsynth_sub(ctx, a, b) : clsynth_mul(ctx, a, b);
}

START_TEST(binary_forward_matches_reference_for_every_broadcast_pattern)
{
    /* tolerance: one float op, 1 ulp: atol 1e-7, rtol 1e-6 */
    for (int ci = 0; ci < N_BCASES; ci++) {
        const bcase *bc = &bcases[ci];
        int yd[4];
        out_shape(bc->a, bc->b, yd);
        float *ha = host_uniform(numel4(bc->a), -2.0f, 2.0f, 10 + ci);
        float *hb = host_uniform(numel4(bc->b), -2.0f, 2.0f, 50 + ci);
        clsynth_tensor *a = input4("a", bc->a, ha), *b = input4("b", bc->b, hb);
        float *ref = malloc(numel4(yd) * sizeof *ref);
        for (int op = 0; op < 3; op++) {
            clsynth_tensor *y = call_binary(op, a, b);
            ck_assert_msg(y != NULL, "%s %s: %s", op_names[op], bc->what, ctx->err.msg);
            ck_assert(y->n == yd[0] && y->c == yd[1] && y->h == yd[2] && y->w == yd[3]);
            float *hy = clsynth_test_download(ctx, y);
            ref_ew_binary(op, ha, bc->a, hb, bc->b, ref, yd);
            char what[96];
            snprintf(what, sizeof what, "%s, %s", op_names[op], bc->what);
            clsynth_test_assert_close(what, hy, ref, numel4(yd), 1e-7, 1e-6);
            free(hy);
        }
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
        clsynth_tensor_free(ctx, a);
        clsynth_tensor_free(ctx, b);
        free(ha);
        free(hb);
        free(ref);
    }
}
END_TEST

static clsynth_tensor *fwd_binary(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    (void)c;
    return call_binary(*(int *)user, in[0], in[1]);
}

START_TEST(binary_gradients_for_every_broadcast_pattern)
{
    /* smaller output (2, 3, 5, 7) from the same patterns; float forward, eps 1e-2:
     * add/sub/mul are (bi)linear so finite differences are exact up to rounding */
    for (int ci = 0; ci < N_BCASES; ci++) {
        int ad[4], bd[4];
        static const int small[4] = { 2, 3, 5, 7 };
        for (int d = 0; d < 4; d++) {
            ad[d] = bcases[ci].a[d] == 1 ? 1 : small[d];
            bd[d] = bcases[ci].b[d] == 1 ? 1 : small[d];
        }
        float *ha = host_uniform(numel4(ad), -1.0f, 1.0f, 100 + ci);
        float *hb = host_uniform(numel4(bd), -1.0f, 1.0f, 200 + ci);
        clsynth_tensor *in[2] = { input4("a", ad, ha), input4("b", bd, hb) };
        for (int op = 0; op < 3; op++) {
            char what[96];
            snprintf(what, sizeof what, "%s, %s", op_names[op], bcases[ci].what);
            clsynth_test_gradcheck(ctx, what, fwd_binary, in, 2, &op, 1e-2f, 2e-3, 2e-3, 6);
        }
        clsynth_tensor_free(ctx, in[0]);
        clsynth_tensor_free(ctx, in[1]);
        free(ha);
        free(hb);
    }
}
END_TEST

START_TEST(broadcast_gradient_is_the_exact_sum_over_broadcast_dims)
{
    /* Large reductions (the work-group tree path) vs a double reference: rtol 1e-5, atol 1e-5. */
    int yd[4] = { 2, 17, 33, 31 };
    if (clsynth_test_under_oclgrind())
        yd[2] = 5, yd[3] = 3;
    const int bds[4][4] = { { 1, 17, 1, 1 }, { 1, 1, 1, 1 }, { 2, 17, 1, 1 }, { 1, 17, 33, 31 } };
    float *ha = host_uniform(numel4(yd), -1.0f, 1.0f, 7);
    float *hg = host_uniform(numel4(yd), -1.0f, 1.0f, 8);
    for (int t = 0; t < 4; t++) {
        int bd[4];
        for (int d = 0; d < 4; d++)
            bd[d] = bds[t][d] == 1 ? 1 : yd[d];
        float *hb = host_uniform(numel4(bd), -1.0f, 1.0f, 9 + t);
        clsynth_tensor *a = input4("a", yd, ha), *b = input4("b", bd, hb);
        clsynth_tensor *g = clsynth_tensor_from_host(ctx, "g", yd[0], yd[1], yd[2], yd[3], hg);
        clsynth_tensor_keep(ctx, g);
        for (int op = 0; op < 3; op++) {
            if (a->grad)
                clsynth_tensor_fill(ctx, a->grad, 0.0f);
            if (b->grad)
                clsynth_tensor_fill(ctx, b->grad, 0.0f);
            clsynth_tensor *y = call_binary(op, a, b);
            ck_assert_msg(y && clsynth_backward_with(ctx, y, g) == 0, "%s", ctx->err.msg);
            float *gb = clsynth_test_download(ctx, b->grad);
            float *ref = calloc(numel4(bd), sizeof *ref);
            ref_ew_reduce_to(hg, op == 2 ? ha : NULL, yd, ref, bd, op == 1 ? -1.0 : 1.0, 0.0);
            char what[64];
            snprintf(what, sizeof what, "d %s / d b (pattern %d)", op_names[op], t);
            clsynth_test_assert_close(what, gb, ref, numel4(bd), 1e-5, 1e-5);
            free(gb);
            free(ref);
        }
        clsynth_tensor_free(ctx, a);
        clsynth_tensor_free(ctx, b);
        clsynth_tensor_free(ctx, g);
        free(hb);
    }
    free(ha);
    free(hg);
}
END_TEST

START_TEST(shapes_that_do_not_broadcast_are_named)
{
    clsynth_tensor *a = clsynth_test_input(ctx, "lhs", 2, 3, 5, 7, NULL);
    clsynth_tensor *b = clsynth_test_input(ctx, "rhs", 2, 4, 5, 7, NULL);
    ck_assert_ptr_null(clsynth_mul(ctx, a, b));
    ck_assert_msg(strstr(ctx->err.msg, "mul") && strstr(ctx->err.msg, "lhs") && strstr(ctx->err.msg, "rhs") &&
                      strstr(ctx->err.msg, "(2, 4, 5, 7)"), "message: %s", ctx->err.msg);
    /* a failed context makes the next op return NULL without a new message */
    ck_assert_ptr_null(clsynth_add(ctx, a, a));
    clsynth_ctx_clear_error(ctx);
    clsynth_tensor_free(ctx, a);
    clsynth_tensor_free(ctx, b);
}
END_TEST

/* ---- unary ops ---- */

static const char *unary_names[7] = { "scale", "add_scalar", "relu", "leaky_relu", "tanh", "sigmoid", "exp" };
static const float unary_p[7] = { -1.75f, 0.625f, 0.0f, 0.2f, 0.0f, 0.0f, 0.0f };

static clsynth_tensor *call_unary(int op, clsynth_tensor *x)
{
    switch (op) {
    case 0: return clsynth_scale(ctx, x, unary_p[0]);
    case 1: return clsynth_add_scalar(ctx, x, unary_p[1]);
    case 2: return clsynth_relu(ctx, x);
    case 3: return clsynth_leaky_relu(ctx, x, unary_p[3]);
    case 4: return clsynth_tanh(ctx, x);
    case 5: return clsynth_sigmoid(ctx, x);
    default: return clsynth_exp(ctx, x);
    }
}

START_TEST(unary_forward_matches_reference)
{
    /* tolerance: atol 1e-6, rtol 1e-5 (device exp/tanh are within a few ulp) */
    int d[4] = { 2, 17, 13, 11 };
    float *hx = host_uniform(numel4(d), -4.0f, 4.0f, 21);
    hx[0] = 0.0f; /* relu(0) = 0, leaky(0) = 0 */
    clsynth_tensor *x = input4("x", d, hx);
    float *ref = malloc(numel4(d) * sizeof *ref);
    for (int op = 0; op < 7; op++) {
        clsynth_tensor *y = call_unary(op, x);
        ck_assert_msg(y != NULL, "%s: %s", unary_names[op], ctx->err.msg);
        float *hy = clsynth_test_download(ctx, y);
        ref_ew_unary(op, hx, ref, numel4(d), unary_p[op]);
        clsynth_test_assert_close(unary_names[op], hy, ref, numel4(d), 1e-6, 1e-5);
        free(hy);
    }
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    clsynth_tensor_free(ctx, x);
    free(hx);
    free(ref);
}
END_TEST

static clsynth_tensor *fwd_unary(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    (void)c;
    return call_unary(*(int *)user, in[0]);
}

START_TEST(unary_gradients)
{
    /* inputs |x| >= 0.1 so eps = 1e-2 never crosses the relu kink; atol 2e-3, rtol 5e-3 */
    int d[4] = { 2, 5, 3, 7 };
    float *hx = host_away_from_zero(numel4(d), 31);
    clsynth_tensor *x = input4("x", d, hx);
    for (int op = 0; op < 7; op++)
        clsynth_test_gradcheck(ctx, unary_names[op], fwd_unary, &x, 1, &op, 1e-2f, 2e-3, 5e-3, 12);
    clsynth_tensor_free(ctx, x);
    free(hx);
}
END_TEST

START_TEST(relu_gradient_at_zero_is_zero)
{
    float hx[4] = { 0.0f, -0.0f, 1.0f, -1.0f };
    clsynth_tensor *x = clsynth_test_input(ctx, "x", 1, 1, 1, 4, hx);
    float ones[4] = { 1, 1, 1, 1 };
    clsynth_tensor *g = clsynth_tensor_from_host(ctx, "g", 1, 1, 1, 4, ones);
    clsynth_tensor_keep(ctx, g);
    ck_assert_int_eq(clsynth_backward_with(ctx, clsynth_relu(ctx, x), g), 0);
    float gx[4];
    ck_assert_int_eq(clsynth_tensor_download(ctx, x->grad, gx), 0);
    ck_assert(gx[0] == 0.0f && gx[1] == 0.0f && gx[2] == 1.0f && gx[3] == 0.0f);
    clsynth_tensor_fill(ctx, x->grad, 0.0f);
    ck_assert_int_eq(clsynth_backward_with(ctx, clsynth_leaky_relu(ctx, x, 0.25f), g), 0);
    ck_assert_int_eq(clsynth_tensor_download(ctx, x->grad, gx), 0);
    ck_assert(gx[0] == 0.25f && gx[2] == 1.0f && gx[3] == 0.25f); /* as torch: slope at 0 */
    clsynth_tensor_free(ctx, x);
    clsynth_tensor_free(ctx, g);
}
END_TEST

/* ---- concat, slice, reshape ---- */

static clsynth_tensor *fwd_concat(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    return clsynth_concat(c, in, *(int *)user);
}

START_TEST(concat_forward_and_gradients)
{
    /* copies: exact. Counts 3 and 10 (> CLSYNTH_NODE_MAX_IN: two levels). */
    const int counts[2] = { 3, 10 };
    const int cs_all[10] = { 3, 5, 17, 1, 2, 3, 5, 1, 4, 2 };
    for (int t = 0; t < 2; t++) {
        int count = counts[t];
        clsynth_tensor *in[10];
        float *hx[10];
        for (int i = 0; i < count; i++) {
            int d[4] = { 2, cs_all[i], 5, 3 };
            hx[i] = host_uniform(numel4(d), -1.0f, 1.0f, 300 + i);
            in[i] = input4("x", d, hx[i]);
        }
        clsynth_tensor *y = clsynth_concat(ctx, in, count);
        ck_assert_msg(y != NULL, "%s", ctx->err.msg);
        int ctot = 0;
        for (int i = 0; i < count; i++)
            ctot += cs_all[i];
        ck_assert_int_eq(y->c, ctot);
        float *hy = clsynth_test_download(ctx, y);
        float *ref = malloc(y->numel * sizeof *ref);
        ref_ew_concat((const float *const *)hx, cs_all, count, 2, 15, ref);
        clsynth_test_assert_close("concat", hy, ref, y->numel, 0.0, 0.0);
        free(hy);
        free(ref);
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
        clsynth_test_gradcheck(ctx, "concat", fwd_concat, in, count, &count, 1e-2f, 1e-3, 1e-3, 4);
        for (int i = 0; i < count; i++) {
            clsynth_tensor_free(ctx, in[i]);
            free(hx[i]);
        }
    }
}
END_TEST

static clsynth_tensor *fwd_slice(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    const int *r = user;
    return clsynth_slice_c(c, in[0], r[0], r[1]);
}

START_TEST(slice_c_forward_and_gradient)
{
    int d[4] = { 2, 17, 5, 3 };
    float *hx = host_uniform(numel4(d), -1.0f, 1.0f, 41);
    clsynth_tensor *x = input4("x", d, hx);
    const int ranges[3][2] = { { 0, 5 }, { 3, 11 }, { 16, 1 } };
    for (int t = 0; t < 3; t++) {
        clsynth_tensor *y = clsynth_slice_c(ctx, x, ranges[t][0], ranges[t][1]);
        ck_assert_msg(y != NULL, "%s", ctx->err.msg);
        float *hy = clsynth_test_download(ctx, y);
        float *ref = malloc(y->numel * sizeof *ref);
        ref_ew_slice_c(hx, 2, 17, 15, ranges[t][0], ranges[t][1], ref);
        clsynth_test_assert_close("slice_c", hy, ref, y->numel, 0.0, 0.0);
        free(hy);
        free(ref);
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
        clsynth_test_gradcheck(ctx, "slice_c", fwd_slice, &x, 1, (void *)ranges[t], 1e-2f, 1e-3, 1e-3, 8);
    }
    ck_assert_ptr_null(clsynth_slice_c(ctx, x, 15, 3));
    ck_assert_msg(strstr(ctx->err.msg, "[15, 18)") && strstr(ctx->err.msg, "'x'"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_tensor_free(ctx, x);
    free(hx);
}
END_TEST

/* the split's parts in another order, one squared, so that each part's
 * gradient differs and a mixed-up run would show */
static clsynth_tensor *fwd_split(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    const int *counts = user;
    clsynth_tensor *p[4];
    if (clsynth_split_c(c, in[0], counts, 4, p))
        return NULL;
    clsynth_tensor *parts[4] = { p[3], clsynth_mul(c, p[1], p[1]), p[0], p[2] };
    return clsynth_concat(c, parts, 4);
}

START_TEST(split_c_is_slices_in_one_launch)
{
    int d[4] = { 2, 17, 5, 3 };
    float *hx = host_uniform(numel4(d), -1.0f, 1.0f, 42);
    clsynth_tensor *x = input4("x", d, hx);
    const int counts[4] = { 5, 1, 6, 3 }; /* 15 of 17 channels: the last two are no part */
    clsynth_tensor *p[4];
    const unsigned long l0 = ctx->launches;
    ck_assert_msg(clsynth_split_c(ctx, x, counts, 4, p) == 0, "%s", ctx->err.msg);
    ck_assert_int_eq((int)(ctx->launches - l0), 1);
    for (int i = 0, c0 = 0; i < 4; c0 += counts[i], i++) {
        ck_assert(p[i]->n == 2 && p[i]->c == counts[i] && p[i]->h == 5 && p[i]->w == 3);
        float *hy = clsynth_test_download(ctx, p[i]);
        float *ref = malloc(p[i]->numel * sizeof *ref);
        ref_ew_slice_c(hx, 2, 17, 15, c0, counts[i], ref);
        clsynth_test_assert_close("split_c", hy, ref, p[i]->numel, 0.0, 0.0);
        free(hy);
        free(ref);
    }
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    /* one sample without a tape: views of x's storage, no launch, the same values */
    int d1[4] = { 1, 17, 5, 3 };
    clsynth_tensor *x1 = input4("x1", d1, hx);
    clsynth_no_grad_begin(ctx);
    const unsigned long l1 = ctx->launches;
    ck_assert_msg(clsynth_split_c(ctx, x1, counts, 4, p) == 0, "%s", ctx->err.msg);
    clsynth_no_grad_end(ctx);
    ck_assert_int_eq((int)(ctx->launches - l1), 0);
    for (int i = 0, c0 = 0; i < 4; c0 += counts[i], i++) {
        ck_assert(p[i]->n == 1 && p[i]->c == counts[i] && p[i]->h == 5 && p[i]->w == 3);
        ck_assert(p[i]->mem == x1->mem && p[i]->off == x1->off + (size_t)c0 * 15);
        float *hy = clsynth_test_download(ctx, p[i]);
        float *ref = malloc(p[i]->numel * sizeof *ref);
        ref_ew_slice_c(hx, 1, 17, 15, c0, counts[i], ref);
        clsynth_test_assert_close("split_c of one sample without a tape", hy, ref, p[i]->numel, 0.0, 0.0);
        free(hy);
        free(ref);
    }
    clsynth_release_activations(ctx);
    clsynth_tensor_free(ctx, x1);
    clsynth_test_gradcheck(ctx, "split_c", fwd_split, &x, 1, (void *)counts, 1e-2f, 1e-3, 1e-3, 8);
    /* bad parts name the tensor and the range; nothing is returned */
    const int too_many[2] = { 9, 9 };
    ck_assert_int_eq(clsynth_split_c(ctx, x, too_many, 2, p), -1);
    ck_assert_msg(strstr(ctx->err.msg, "[9, 18)") && strstr(ctx->err.msg, "'x'"), "message: %s", ctx->err.msg);
    ck_assert_ptr_null(p[0]);
    clsynth_ctx_clear_error(ctx);
    const int six[6] = { 1, 1, 1, 1, 1, 1 };
    clsynth_tensor *p6[6];
    ck_assert_int_eq(clsynth_split_c(ctx, x, six, 6, p6), -1);
    ck_assert_msg(strstr(ctx->err.msg, "6 parts"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_tensor_free(ctx, x);
    free(hx);
}
END_TEST

static clsynth_tensor *fwd_reshape_mul(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    (void)user;
    /* (2, 3, 5, 7) -> (6, 35, 1, 1), then a non-linear use so the gradient depends on x */
    clsynth_tensor *r = clsynth_reshape(c, in[0], 6, 35, 1, 1);
    return clsynth_mul(c, r, r);
}

START_TEST(reshape_shares_storage_and_passes_gradients)
{
    int d[4] = { 2, 3, 5, 7 };
    float *hx = host_uniform(numel4(d), -1.0f, 1.0f, 51);
    clsynth_tensor *x = input4("x", d, hx);
    clsynth_tensor *r = clsynth_reshape(ctx, x, 1, 6, 35, 1);
    ck_assert_ptr_nonnull(r);
    ck_assert(r->mem == x->mem && r->off == x->off && r->numel == x->numel);
    ck_assert(r->n == 1 && r->c == 6 && r->h == 35 && r->w == 1);
    ck_assert_ptr_null(clsynth_reshape(ctx, x, 1, 6, 35, 2));
    ck_assert_msg(strstr(ctx->err.msg, "reshape") && strstr(ctx->err.msg, "(1, 6, 35, 2)"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    clsynth_test_gradcheck(ctx, "reshape", fwd_reshape_mul, &x, 1, NULL, 1e-2f, 2e-3, 2e-3, 12);
    clsynth_tensor_free(ctx, x);
    free(hx);
}
END_TEST

START_TEST(gradients_accumulate_into_existing_gradients)
{
    const int full[4] = { 2, 3, 5, 7 }, chan[4] = { 1, 3, 1, 1 };
    float *ha = host_away_from_zero(numel4(full), 61), *hb = host_uniform(3, -1.0f, 1.0f, 62);
    clsynth_tensor *in[2] = { input4("a", full, ha), input4("b", chan, hb) };
    for (int op = 0; op < 3; op++)
        check_accumulates(op_names[op], fwd_binary, in, 2, &op);
    clsynth_tensor *full2[2] = { in[0], in[0] };
    for (int op = 0; op < 3; op++)
        check_accumulates(op_names[op], fwd_binary, full2, 2, &op);
    for (int op = 0; op < 7; op++)
        check_accumulates(unary_names[op], fwd_unary, in, 1, &op);
    int two = 2;
    check_accumulates("concat", fwd_concat, full2, 2, &two);
    const int range[2] = { 1, 2 };
    check_accumulates("slice_c", fwd_slice, in, 1, (void *)range);
    check_accumulates("reshape", fwd_reshape_mul, in, 1, NULL);
    clsynth_tensor_free(ctx, in[0]);
    clsynth_tensor_free(ctx, in[1]);
    free(ha);
    free(hb);
}
END_TEST

/* ---- the reduction helper ---- */

static void check_reduce(clsynth_ctx *c, const int xd[4], const int od[4], int with_y, float beta, uint64_t seed)
{
    /* vs double reference: atol 1e-5 + rtol 1e-5 scaled by the reduced count */
    size_t nx = numel4(xd), no = numel4(od);
    float *hx = host_uniform(nx, -1.0f, 1.0f, seed), *hy = host_uniform(nx, -1.0f, 1.0f, seed + 1);
    float *ho = host_uniform(no, -1.0f, 1.0f, seed + 2), *ref = malloc(no * sizeof *ref);
    memcpy(ref, ho, no * sizeof *ref);
    clsynth_tensor *x = clsynth_tensor_from_host(c, "x", xd[0], xd[1], xd[2], xd[3], hx);
    clsynth_tensor *y = clsynth_tensor_from_host(c, "y", xd[0], xd[1], xd[2], xd[3], hy);
    clsynth_tensor *o = clsynth_tensor_from_host(c, "o", od[0], od[1], od[2], od[3], ho);
    ck_assert_int_eq(clsynth_reduce_to(c, x, with_y ? y : NULL, with_y ? CLSYNTH_MAP_PROD : CLSYNTH_MAP_ID, 0.0f, o,
                                       0.5f, beta), 0);
    float *got = clsynth_test_download(c, o);
    ref_ew_reduce_to(hx, with_y ? hy : NULL, xd, ref, od, 0.5, beta);
    double r = (double)(nx / no);
    char what[128];
    snprintf(what, sizeof what, "reduce (%d,%d,%d,%d) -> (%d,%d,%d,%d)%s beta %g", xd[0], xd[1], xd[2], xd[3], od[0],
             od[1], od[2], od[3], with_y ? " x*y" : "", (double)beta);
    clsynth_test_assert_close(what, got, ref, no, 1e-6 * sqrt(r) + 1e-6, 1e-5);
    clsynth_release_activations(c);
    free(hx);
    free(hy);
    free(ho);
    free(ref);
    free(got);
}

/* A binary op whose inputs have the output's shape takes both gradients in
 * one launch: a * b gives (g b, g a), a - b (g, -g); an input given twice
 * gets both terms (a * a: 2 g a; a - a: 0). */
START_TEST(binary_backward_takes_both_gradients_in_one_launch)
{
    const int N = 2, C = 3, H = 5, W = 7;
    const size_t n = (size_t)N * C * H * W;
    float *ha = host_uniform(n, -1, 1, 71), *hb = host_uniform(n, -1, 1, 72), *hg = host_uniform(n, -1, 1, 73);
    float *wa = malloc(n * sizeof *wa), *wb = malloc(n * sizeof *wb);
    for (int op = 0; op < 4; op++) { /* mul, sub, a * a, a - a */
        clsynth_tensor *a = clsynth_test_input(ctx, "a", N, C, H, W, ha);
        clsynth_tensor *b = op < 2 ? clsynth_test_input(ctx, "b", N, C, H, W, hb) : a;
        clsynth_tensor *g = clsynth_tensor_from_host(ctx, "g", N, C, H, W, hg);
        clsynth_tensor *y = op % 2 == 0 ? clsynth_mul(ctx, a, b) : clsynth_sub(ctx, a, b);
        ck_assert_msg(y && g, "%s", ctx->err.msg);
        clsynth_finish(ctx);
        const unsigned long l0 = ctx->launches;
        ck_assert_msg(clsynth_backward_with(ctx, y, g) == 0, "%s", ctx->err.msg);
        ck_assert_msg(ctx->launches - l0 == 2, "op %d backward: %lu launches (the seed's copy and one)", op,
                      ctx->launches - l0);
        for (size_t i = 0; i < n; i++) {
            const float bv = op < 2 ? hb[i] : ha[i];
            wa[i] = op % 2 == 0 ? hg[i] * bv : hg[i];
            wb[i] = op % 2 == 0 ? hg[i] * ha[i] : -hg[i];
            if (op >= 2)
                wa[i] += wb[i];
        }
        float *ga = clsynth_test_download(ctx, a->grad);
        clsynth_test_assert_close("binary backward, a", ga, wa, n, 1e-6, 1e-6);
        free(ga);
        if (op < 2) {
            float *gb = clsynth_test_download(ctx, b->grad);
            clsynth_test_assert_close("binary backward, b", gb, wb, n, 0, 0);
            free(gb);
            clsynth_tensor_free(ctx, b);
        }
        clsynth_release_activations(ctx);
        clsynth_tensor_free(ctx, a);
    }
    free(ha);
    free(hb);
    free(hg);
    free(wa);
    free(wb);
}
END_TEST

START_TEST(reduce_over_every_subset_of_dims)
{
    int xd[4] = { 2, 17, 9, 7 };
    if (clsynth_test_under_oclgrind())
        xd[1] = 5, xd[2] = 3;
    for (int mask = 0; mask < 16; mask++) {
        int od[4];
        for (int d = 0; d < 4; d++)
            od[d] = (mask >> d) & 1 ? 1 : xd[d];
        check_reduce(ctx, xd, od, mask & 1, mask % 3 == 0 ? 1.0f : 0.0f, 600 + mask);
    }
}
END_TEST

START_TEST(reduce_under_small_and_odd_work_groups)
{
    /* fresh contexts with emulated limits: work-groups of 1, 48 (not a power of two) and 3 items */
    const size_t limits[3] = { 1, 48, 3 };
    int xd[4] = { 1, 1, 1, 100003 };
    if (clsynth_test_under_oclgrind())
        xd[3] = 1001;
    const int od[4] = { 1, 1, 1, 1 };
    const int xc[4] = { 3, 5, 67, 3 }, oc[4] = { 1, 5, 1, 1 };
    for (int i = 0; i < 3; i++) {
        clsynth_ctx *c = clsynth_test_ctx();
        clsynth_ctx_emulate_limits(c, limits[i], 0);
        ck_assert_uint_le(clsynth_reduce_local_size(c, 1, 100003), limits[i]);
        check_reduce(c, xd, od, 0, 0.0f, 700 + i);
        check_reduce(c, xc, oc, 1, 1.0f, 710 + i);
        clsynth_ctx_free(c);
    }
}
END_TEST

START_TEST(reduce_rejects_bad_shapes)
{
    clsynth_tensor *x = clsynth_tensor_new(ctx, "x", 2, 3, 5, 7);
    clsynth_tensor *o = clsynth_tensor_new(ctx, "o", 1, 2, 1, 1);
    ck_assert_int_eq(clsynth_reduce_sum_to(ctx, x, o, 1.0f, 0.0f), -1);
    ck_assert_msg(strstr(ctx->err.msg, "'x' (2, 3, 5, 7)") && strstr(ctx->err.msg, "'o' (1, 2, 1, 1)"), "%s",
                  ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_int_eq(clsynth_reduce_to(ctx, x, NULL, CLSYNTH_MAP_PROD, 0.0f, x, 1.0f, 0.0f), -1);
    clsynth_ctx_clear_error(ctx);
    clsynth_release_activations(ctx);
}
END_TEST

int main(void)
{
    return clsynth_test_main("elementwise", &ctx, 300,
                             CLSYNTH_TEST_LIST(binary_forward_matches_reference_for_every_broadcast_pattern,
                                               binary_gradients_for_every_broadcast_pattern,
                                               broadcast_gradient_is_the_exact_sum_over_broadcast_dims,
                                               shapes_that_do_not_broadcast_are_named,
                                               unary_forward_matches_reference,
                                               unary_gradients,
                                               relu_gradient_at_zero_is_zero,
                                               concat_forward_and_gradients,
                                               slice_c_forward_and_gradient, split_c_is_slices_in_one_launch,
                                               reshape_shares_storage_and_passes_gradients,
                                               gradients_accumulate_into_existing_gradients,
                                               binary_backward_takes_both_gradients_in_one_launch,
                                               reduce_over_every_subset_of_dims,
                                               reduce_under_small_and_odd_work_groups,
                                               reduce_rejects_bad_shapes));
}
