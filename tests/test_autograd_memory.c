/* Memory of the tape: clsynth_backward frees every activation (with its
 * gradient) as soon as no remaining node needs it, a view keeps the memory it
 * shows, clsynth_release_newer frees a no-grad pass but its outputs, and a
 * repeated step still allocates nothing new. Released activations are
 * poisoned (NaN) in every test, so a value read after its release shows. */
#include <math.h>
#include <stdlib.h>

#include "clcore/ops.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static size_t in_use(void) { return clsynth_pool_get_stats(ctx).bytes_in_use; }

/* y = 0.5^k x through k scale ops, then the mean: each activation is S floats. */
START_TEST(backward_frees_each_activation_after_its_last_use)
{
    clsynth_test_poison_releases(ctx, NULL);
    enum { S = 64 * 1024, K = 8 };
    float *h = malloc(S * sizeof *h);
    clsynth_test_fill_uniform(h, S, -1, 1, 3);
    clsynth_tensor *x = clsynth_test_input(ctx, "x", 1, 4, 128, 128, h);
    size_t before = in_use();
    clsynth_tensor *y = x;
    for (int k = 0; k < K; k++)
        y = clsynth_scale(ctx, y, 0.5f);
    clsynth_tensor *loss = clsynth_mean(ctx, y);
    ck_assert_msg(loss != NULL, "%s", ctx->err.msg);
    size_t forward = in_use() - before; /* K activations and the loss */
    ck_assert_uint_ge(forward, (size_t)K * S * sizeof(float));
    clsynth_pool_reset_peak(ctx);
    ck_assert_msg(clsynth_backward(ctx, loss) == 0, "%s", ctx->err.msg);
    size_t peak = clsynth_pool_get_stats(ctx).peak_bytes_in_use - before;
    /* keeping every gradient until the end would need about K * S more */
    ck_assert_msg(peak <= forward + 3 * S * sizeof(float), "backward peak %zu bytes, forward %zu", peak, forward);
    ck_assert_uint_eq(in_use(), before + S * sizeof(float)); /* x's gradient (persistent) is all that stays */
    float *g = clsynth_test_download(ctx, x->grad);
    float want = powf(0.5f, K) / S;
    for (int i = 0; i < S; i++)
        ck_assert_msg(fabsf(g[i] - want) <= 1e-6f * want, "grad[%d] = %g, expected %g", i, (double)g[i],
                      (double)want);
    free(g);
    free(h);
    clsynth_tensor_free(ctx, x);
}
END_TEST

/* B is not made by a recorded op; a view of it is used by the first node and
 * B itself by a later one: B's memory must outlive the first node's backward,
 * which runs last. */
START_TEST(a_view_keeps_the_memory_it_shows_until_its_last_use)
{
    unsigned long poisoned = 0;
    clsynth_test_poison_releases(ctx, &poisoned);
    enum { N = 1000 };
    float b[N], one[N];
    clsynth_test_fill_uniform(b, N, 0.5f, 2.0f, 5);
    for (int i = 0; i < N; i++)
        one[i] = 1.0f;
    clsynth_tensor *w1 = clsynth_test_input(ctx, "w1", 1, 1, 1, N, one);
    clsynth_tensor *w2 = clsynth_test_input(ctx, "w2", 1, 1, 1, N, one);
    clsynth_tensor *B = clsynth_tensor_from_host(ctx, "B", 1, 1, 1, N, b); /* an activation, no grad */
    clsynth_tensor *V = clsynth_detach(ctx, B);                            /* a view of all of B */
    clsynth_tensor *y1 = clsynth_mul(ctx, V, w1);                          /* node 0: d w1 = V */
    clsynth_tensor *y2 = clsynth_mul(ctx, B, w2);                          /* node 1: d w2 = B */
    clsynth_tensor *loss = clsynth_add(ctx, clsynth_sum(ctx, y1), clsynth_sum(ctx, y2));
    ck_assert_msg(loss != NULL, "%s", ctx->err.msg);
    ck_assert_msg(clsynth_backward(ctx, loss) == 0, "%s", ctx->err.msg);
    ck_assert_uint_gt(poisoned, 0);
    float *g1 = clsynth_test_download(ctx, w1->grad), *g2 = clsynth_test_download(ctx, w2->grad);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(g1[i] == b[i], "d w1[%d] = %g, expected %g (B freed before its view's last use)", i,
                      (double)g1[i], (double)b[i]);
        ck_assert_msg(g2[i] == b[i], "d w2[%d] = %g, expected %g", i, (double)g2[i], (double)b[i]);
    }
    free(g1);
    free(g2);
    clsynth_tensor_free(ctx, w1);
    clsynth_tensor_free(ctx, w2);
}
END_TEST

START_TEST(release_newer_frees_a_no_grad_pass_but_its_outputs)
{
    clsynth_test_poison_releases(ctx, NULL);
    enum { N = 4096 };
    float h[N];
    clsynth_test_fill_uniform(h, N, -1, 1, 7);
    clsynth_tensor *x = clsynth_tensor_from_host(ctx, "x", 1, 1, 1, N, h); /* made before the pass: stays */
    size_t before = in_use();
    unsigned long mark = ctx->tensor_serial;
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *a = clsynth_scale(ctx, x, 2.0f);
    clsynth_tensor *b = clsynth_relu(ctx, a);
    clsynth_tensor *c = clsynth_scale(ctx, b, 3.0f);
    clsynth_tensor *d = clsynth_add_scalar(ctx, b, 1.0f);
    clsynth_tensor *dv = clsynth_detach(ctx, d); /* an output that is a view: d's memory stays */
    clsynth_no_grad_end(ctx);
    ck_assert_msg(dv != NULL, "%s", ctx->err.msg);
    clsynth_tensor *keep[2] = { c, dv };
    clsynth_release_newer(ctx, mark, keep, 2);
    ck_assert_uint_eq(in_use(), before + 2 * N * sizeof(float)); /* c and d */
    float *hc = clsynth_test_download(ctx, c), *hd = clsynth_test_download(ctx, dv);
    for (int i = 0; i < N; i++) {
        float r = h[i] > 0 ? 2 * h[i] : 0;
        ck_assert_msg(hc[i] == 3 * r && hd[i] == r + 1, "element %d: %g %g", i, (double)hc[i], (double)hd[i]);
    }
    free(hc);
    free(hd);
    ck_assert_msg(clsynth_tensor_download(ctx, x, hc = malloc(N * sizeof *hc)) == 0, "%s", ctx->err.msg);
    ck_assert_int_eq(hc[0], h[0]);
    free(hc);
    clsynth_release_activations(ctx);
}
END_TEST

/* conv -> batch norm -> leaky ReLU -> gate by a second conv's sigmoid: the
 * pool serves the second and later steps from its free lists. */
static int step(clsynth_tensor *x, clsynth_tensor *w1, clsynth_tensor *w2, clsynth_tensor *gamma,
                clsynth_tensor *beta, clsynth_tensor *rm, clsynth_tensor *rv)
{
    clsynth_tensor *y = clsynth_conv2d(ctx, x, w1, NULL, 1, 1);
    y = clsynth_batch_norm(ctx, y, gamma, beta, rm, rv, true, 0.1f, 1e-5f);
    y = clsynth_leaky_relu(ctx, y, 0.2f);
    clsynth_tensor *gate = clsynth_sigmoid(ctx, clsynth_conv2d(ctx, x, w2, NULL, 1, 1));
    clsynth_tensor *loss = clsynth_mean(ctx, clsynth_mul(ctx, y, gate));
    return loss ? clsynth_backward(ctx, loss) : -1;
}

START_TEST(a_repeated_step_allocates_nothing_new)
{
    clsynth_test_poison_releases(ctx, NULL);
    float h[3 * 5 * 9 * 9];
    clsynth_test_fill_uniform(h, sizeof h / sizeof h[0], -1, 1, 11);
    clsynth_tensor *x = clsynth_test_input(ctx, "x", 2, 3, 13, 11, NULL);
    clsynth_tensor *w1 = clsynth_test_input(ctx, "w1", 5, 3, 3, 3, h);
    clsynth_tensor *w2 = clsynth_test_input(ctx, "w2", 5, 3, 3, 3, h + 135);
    clsynth_tensor *gamma = clsynth_test_input(ctx, "gamma", 1, 5, 1, 1, h + 270);
    clsynth_tensor *beta = clsynth_test_input(ctx, "beta", 1, 5, 1, 1, h + 280);
    clsynth_tensor *rm = clsynth_tensor_new_persistent(ctx, "rm", 1, 5, 1, 1);
    clsynth_tensor *rv = clsynth_tensor_new_persistent(ctx, "rv", 1, 5, 1, 1);
    float hx[2 * 3 * 13 * 11];
    clsynth_test_fill_uniform(hx, sizeof hx / sizeof hx[0], -1, 1, 12);
    ck_assert_int_eq(clsynth_tensor_upload(ctx, x, hx), 0);
    ck_assert_int_eq(clsynth_tensor_fill(ctx, rm, 0), 0);
    ck_assert_int_eq(clsynth_tensor_fill(ctx, rv, 1), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(step(x, w1, w2, gamma, beta, rm, rv) == 0, "%s", ctx->err.msg);
    clsynth_pool_stats a = clsynth_pool_get_stats(ctx);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(step(x, w1, w2, gamma, beta, rm, rv) == 0, "%s", ctx->err.msg);
    clsynth_pool_stats b = clsynth_pool_get_stats(ctx);
    ck_assert_uint_eq(b.device_allocs, a.device_allocs);
    ck_assert_uint_eq(b.bytes_reserved, a.bytes_reserved);
    float *g = clsynth_test_download(ctx, w1->grad);
    for (int i = 0; i < 135; i++)
        ck_assert_msg(isfinite(g[i]), "d w1[%d] = %g", i, (double)g[i]);
    free(g);
    clsynth_tensor *ts[] = { x, w1, w2, gamma, beta, rm, rv };
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        clsynth_tensor_free(ctx, ts[i]);
}
END_TEST

int main(void)
{
    return clsynth_test_main("autograd_memory", &ctx, 300,
                             CLSYNTH_TEST_LIST(backward_frees_each_activation_after_its_last_use,
                                               a_view_keeps_the_memory_it_shows_until_its_last_use,
                                               release_newer_frees_a_no_grad_pass_but_its_outputs,
                                               a_repeated_step_allocates_nothing_new));
}
