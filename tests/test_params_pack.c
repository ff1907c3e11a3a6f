/* Packed parameters (clsynth_group_pack, clcore/params.c): members laid out side
 * by side so that one tensor over them is a view, as the CC block's
 * concatenated prediction-net first conv uses (nets/condconv_block.c).
 * CLSYNTH_OCLGRIND_OK: a few hundred elements, three small convs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/ops.h"
#include "clcore/params.h"
#include "testutil.h"

static clsynth_ctx *ctx;

/* Declares a, w1, c, w2, w3, bias1, bias2, bias3 (the weights and biases of
 * three 3x3 convs 4 -> 3, 2, 5 channels, with a and c between them), packing
 * the weights and the biases when pack. */
typedef struct decl {
    clsynth_param_group *g;
    clsynth_tensor *a, *c, *w[3], *b[3], *pw, *pb;
} decl;

static const int COUT[3] = { 3, 2, 5 };

static decl declare(bool pack)
{
    decl d = { clsynth_group_new(ctx, "G"), NULL, NULL, { NULL }, { NULL }, NULL, NULL };
    ck_assert_ptr_nonnull(d.g);
    d.a = clsynth_group_param(ctx, d.g, "a", 1, 7, 1, 1);
    d.w[0] = clsynth_group_param(ctx, d.g, "w1", COUT[0], 4, 3, 3);
    d.c = clsynth_group_param(ctx, d.g, "c", 2, 3, 1, 1);
    d.w[1] = clsynth_group_param(ctx, d.g, "w2", COUT[1], 4, 3, 3);
    d.w[2] = clsynth_group_param(ctx, d.g, "w3", COUT[2], 4, 3, 3);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "bias%d", i + 1);
        d.b[i] = clsynth_group_param(ctx, d.g, name, 1, COUT[i], 1, 1);
    }
    if (pack) {
        d.pw = clsynth_group_pack(ctx, d.g, "pw", d.w, 3, 0);
        d.pb = clsynth_group_pack(ctx, d.g, "pb", d.b, 3, 1);
        ck_assert_msg(d.pw && d.pb, "%s", ctx->err.msg);
    }
    ck_assert_int_eq(clsynth_group_finalize(ctx, d.g), 0);
    return d;
}

/* The members follow each other where the first one was declared; the pack's
 * shape is their concatenation; the other parameters keep their order. */
START_TEST(members_are_stored_side_by_side_in_pack_order)
{
    decl d = declare(true);
    ck_assert_uint_eq(d.a->off, 0);
    ck_assert_uint_eq(d.w[0]->off, 7);
    ck_assert_uint_eq(d.w[1]->off, d.w[0]->off + d.w[0]->numel);
    ck_assert_uint_eq(d.w[2]->off, d.w[1]->off + d.w[1]->numel);
    ck_assert_uint_eq(d.c->off, d.w[2]->off + d.w[2]->numel);
    ck_assert_uint_eq(d.b[0]->off, d.c->off + d.c->numel);
    ck_assert_uint_eq(d.b[2]->off + d.b[2]->numel, d.g->total);
    ck_assert_uint_eq(d.pw->off, d.w[0]->off);
    ck_assert(d.pw->mem == d.w[0]->mem && d.pw->grad->mem == d.w[0]->grad->mem);
    ck_assert_uint_eq(d.pw->grad->off, d.w[0]->grad->off);
    ck_assert_int_eq(d.pw->n, 10);
    ck_assert_int_eq(d.pw->c, 4);
    ck_assert_int_eq(d.pb->n, 1);
    ck_assert_int_eq(d.pb->c, 10);
    ck_assert_uint_eq(d.pb->numel, 10);
    clsynth_group_set_requires_grad(d.g, false);
    ck_assert(!(d.pw->flags & CLSYNTH_T_REQUIRES_GRAD));
    clsynth_group_set_requires_grad(d.g, true);
    ck_assert(d.pw->flags & CLSYNTH_T_REQUIRES_GRAD);
    clsynth_group_free(ctx, d.g);
}
END_TEST

/* clsynth_group_canonical gives the layout of the same declarations without
 * packs (what checkpoints hold), and back. */
START_TEST(canonical_order_is_the_unpacked_layout)
{
    decl p = declare(true), u = declare(false);
    ck_assert_uint_eq(p.g->total, u.g->total);
    const size_t n = u.g->total;
    float *flat = malloc(n * sizeof *flat), *canon = malloc(n * sizeof *canon), *back = malloc(n * sizeof *back);
    ck_assert(flat && canon && back);
    /* each element: its parameter's declaration index * 1000 + its index inside */
    for (int i = 0; i < p.g->n_params; i++)
        for (size_t k = 0; k < p.g->params[i]->numel; k++)
            flat[p.g->params[i]->off + k] = (float)(i * 1000 + (int)k);
    clsynth_group_canonical(p.g, flat, canon, true);
    for (int i = 0; i < u.g->n_params; i++)
        for (size_t k = 0; k < u.g->params[i]->numel; k++)
            ck_assert_msg(canon[u.g->params[i]->off + k] == (float)(i * 1000 + (int)k), "%s[%zu] misplaced",
                          u.g->params[i]->name, k);
    clsynth_group_canonical(p.g, canon, back, false);
    ck_assert(memcmp(back, flat, n * sizeof *flat) == 0);
    free(flat);
    free(canon);
    free(back);
    clsynth_group_free(ctx, p.g);
    clsynth_group_free(ctx, u.g);
}
END_TEST

/* One conv on the packed weight and bias, sliced, equals the three convs on
 * the members, and its gradients land in the members' gradients. */
START_TEST(conv_on_the_pack_equals_the_members_convs)
{
    decl d = declare(true);
    float *init = malloc(d.g->total * sizeof *init);
    ck_assert_ptr_nonnull(init);
    clsynth_test_fill_uniform(init, d.g->total, -0.5f, 0.5f, 11);
    ck_assert_int_eq(clsynth_tensor_upload(ctx, d.g->flat_data, init), 0);
    const int N = 2, H = 5, W = 7;
    float *hx = malloc((size_t)N * 4 * H * W * sizeof *hx), *hdy = malloc((size_t)N * 10 * H * W * sizeof *hdy);
    ck_assert(hx && hdy);
    clsynth_test_fill_uniform(hx, (size_t)N * 4 * H * W, -1.0f, 1.0f, 12);
    clsynth_test_fill_uniform(hdy, (size_t)N * 10 * H * W, -1.0f, 1.0f, 13);
    float *y[2][3], *gw[2][3], *gb[2][3];
    for (int packed = 0; packed < 2; packed++) {
        ck_assert_int_eq(clsynth_group_zero_grad(ctx, d.g), 0);
        clsynth_tensor *x = clsynth_tensor_from_host(ctx, "x", N, 4, H, W, hx);
        clsynth_tensor *dy = clsynth_tensor_from_host(ctx, "dy", N, 10, H, W, hdy);
        clsynth_tensor *out[3], *loss = NULL;
        clsynth_tensor *all = packed ? clsynth_conv2d_algo(ctx, x, d.pw, d.pb, 1, 1, CLSYNTH_CONV_DIRECT) : NULL;
        for (int i = 0, c0 = 0; i < 3; c0 += COUT[i], i++) {
            out[i] = packed ? clsynth_slice_c(ctx, all, c0, COUT[i])
                            : clsynth_conv2d_algo(ctx, x, d.w[i], d.b[i], 1, 1, CLSYNTH_CONV_DIRECT);
            ck_assert_msg(out[i] != NULL, "%s", ctx->err.msg);
            y[packed][i] = clsynth_test_download(ctx, out[i]);
        }
        /* loss = sum of dy . concat(out) */
        clsynth_tensor *cat = clsynth_concat(ctx, out, 3);
        loss = clsynth_sum(ctx, clsynth_mul(ctx, cat, dy));
        ck_assert_msg(loss && clsynth_backward(ctx, loss) == 0, "%s", ctx->err.msg);
        for (int i = 0; i < 3; i++) {
            gw[packed][i] = clsynth_test_download(ctx, d.w[i]->grad);
            gb[packed][i] = clsynth_test_download(ctx, d.b[i]->grad);
        }
        clsynth_release_activations(ctx);
    }
    for (int i = 0; i < 3; i++) {
        char what[64];
        snprintf(what, sizeof what, "conv %d: output", i);
        clsynth_test_assert_close(what, y[1][i], y[0][i], (size_t)N * COUT[i] * H * W, 1e-6, 1e-5);
        snprintf(what, sizeof what, "conv %d: weight gradient", i);
        clsynth_test_assert_close(what, gw[1][i], gw[0][i], d.w[i]->numel, 1e-5, 1e-5);
        snprintf(what, sizeof what, "conv %d: bias gradient", i);
        clsynth_test_assert_close(what, gb[1][i], gb[0][i], d.b[i]->numel, 1e-5, 1e-5);
        for (int p = 0; p < 2; p++) {
            free(y[p][i]);
            free(gw[p][i]);
            free(gb[p][i]);
        }
    }
    free(init);
    free(hx);
    free(hdy);
    clsynth_group_free(ctx, d.g);
}
END_TEST

/* A pack after finalize, of a non-member, with a member twice or in two packs,
 * or of shapes that do not stack: an error naming the pack. */
START_TEST(bad_packs_are_refused_naming_the_pack)
{
    clsynth_param_group *g = clsynth_group_new(ctx, "G");
    clsynth_tensor *a = clsynth_group_param(ctx, g, "a", 2, 3, 3, 3);
    clsynth_tensor *b = clsynth_group_param(ctx, g, "b", 2, 4, 3, 3);
    clsynth_tensor *c = clsynth_group_param(ctx, g, "c", 1, 5, 3, 3);
    clsynth_param_group *h = clsynth_group_new(ctx, "H");
    clsynth_tensor *other = clsynth_group_param(ctx, h, "o", 2, 3, 3, 3);
    struct {
        clsynth_tensor *m[2];
        int n, axis;
        const char *needle;
    } bad[] = {
        { { a, b }, 2, 0, "does not stack" },
        { { a, c }, 2, 1, "does not stack" },
        { { a, a }, 2, 0, "listed twice" },
        { { a, other }, 2, 0, "not a parameter of the group" },
        { { a, c }, 2, 2, "axis 2" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_ptr_null(clsynth_group_pack(ctx, g, "p", bad[i].m, bad[i].n, bad[i].axis));
        ck_assert_msg(ctx->failed && strstr(ctx->err.msg, "pack 'p'") && strstr(ctx->err.msg, bad[i].needle),
                      "case %zu: %s", i, ctx->err.msg);
        clsynth_ctx_clear_error(ctx);
    }
    clsynth_tensor *one[1] = { a };
    ck_assert_ptr_nonnull(clsynth_group_pack(ctx, g, "p1", one, 1, 0));
    ck_assert_ptr_null(clsynth_group_pack(ctx, g, "p2", one, 1, 0));
    ck_assert_msg(strstr(ctx->err.msg, "in a pack already"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_int_eq(clsynth_group_finalize(ctx, g), 0);
    clsynth_tensor *late[1] = { b };
    ck_assert_ptr_null(clsynth_group_pack(ctx, g, "p3", late, 1, 0));
    ck_assert_msg(strstr(ctx->err.msg, "after the group was finalized"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_group_free(ctx, g);
    clsynth_group_free(ctx, h);
}
END_TEST

int main(void)
{
    return clsynth_test_main("params_pack", &ctx, 300,
                             CLSYNTH_TEST_LIST(members_are_stored_side_by_side_in_pack_order,
                                               canonical_order_is_the_unpacked_layout,
                                               conv_on_the_pack_equals_the_members_convs,
                                               bad_packs_are_refused_naming_the_pack));
}
