/* Normalization ops: batch norm (training, eval, running stats), instance norm,
 * SPADE modulation, spectral norm. Forward results against the plain-C
 * references in ref_norm.c, gradients against central finite differences.
 *
 * Tolerances (|device - reference| <= atol + rtol * |reference|):
 *   normalized outputs atol 2e-5, rtol 1e-4; running stats atol 1e-6, rtol 1e-5;
 *   large-mean batch (x ~ 1000 + U(-1, 1)) atol 5e-4 (float ulp of 1000 is 6e-5);
 *   SPADE atol 1e-6, rtol 1e-6; spectral norm output atol 1e-6, rtol 1e-4, u 1e-5;
 *   gradchecks eps 1e-2, atol 2e-3, rtol 2e-2 (float forward, central differences).
 *
 * CLSYNTH_OCLGRIND_OK: under Oclgrind (CLSYNTH_OCLGRIND=1) only tiny shapes run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/ops.h"
#include "ref_norm.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static int tiny(void) { return clsynth_test_under_oclgrind(); }

static float *rnd(size_t n, float lo, float hi, uint64_t seed)
{
    float *a = malloc(n * sizeof *a);
    ck_assert_ptr_nonnull(a);
    clsynth_test_fill_uniform(a, n, lo, hi, seed);
    return a;
}

/* Persistent tensor that does not require grad (running stats, u). */
static clsynth_tensor *state(const char *name, int n, int c, int h, int w, const float *host)
{
    clsynth_tensor *t = clsynth_tensor_new_persistent(ctx, name, n, c, h, w);
    ck_assert_msg(t != NULL, "%s: %s", name, ctx->err.msg);
    ck_assert_int_eq(clsynth_tensor_upload(ctx, t, host), 0);
    return t;
}

typedef struct bn_args {
    clsynth_tensor *rm, *rv;
    bool training, affine, instance;
} bn_args;

static clsynth_tensor *fwd_norm(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    bn_args *b = user;
    clsynth_tensor *g = b->affine ? in[1] : NULL, *be = b->affine ? in[2] : NULL;
    if (b->instance)
        return clsynth_instance_norm(c, in[0], g, be, 1e-5f);
    return clsynth_batch_norm(c, in[0], g, be, b->rm, b->rv, b->training, 0.1f, 1e-5f);
}

/* Forward of batch norm (training) vs the reference, output and running stats. */
static void check_bn_train(int N, int C, int H, int W, float lo, float hi, double atol, uint64_t seed)
{
    size_t n = (size_t)N * C * H * W;
    float *x = rnd(n, lo, hi, seed), *g = rnd((size_t)C, 0.5f, 1.5f, seed + 1), *b = rnd((size_t)C, -0.5f, 0.5f, seed + 2);
    float *rm = rnd((size_t)C, -0.2f, 0.2f, seed + 3), *rv = rnd((size_t)C, 0.5f, 1.5f, seed + 4);
    float *y = malloc(n * sizeof *y);
    clsynth_tensor *tx = clsynth_test_input(ctx, "x", N, C, H, W, x);
    clsynth_tensor *tg = clsynth_test_input(ctx, "gamma", 1, C, 1, 1, g);
    clsynth_tensor *tb = clsynth_test_input(ctx, "beta", 1, C, 1, 1, b);
    clsynth_tensor *trm = state("running_mean", 1, C, 1, 1, rm), *trv = state("running_var", 1, C, 1, 1, rv);
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *ty = clsynth_batch_norm(ctx, tx, tg, tb, trm, trv, true, 0.1f, 1e-5f);
    clsynth_no_grad_end(ctx);
    ck_assert_msg(ty != NULL, "batch_norm: %s", ctx->err.msg);
    ref_batch_norm_train(x, N, C, H, W, g, b, rm, rv, 0.1f, 1e-5f, y);
    float *dy = clsynth_test_download(ctx, ty), *drm = clsynth_test_download(ctx, trm),
          *drv = clsynth_test_download(ctx, trv);
    char what[96];
    snprintf(what, sizeof what, "batch_norm y (%d, %d, %d, %d)", N, C, H, W);
    clsynth_test_assert_close(what, dy, y, n, atol, 1e-4);
    clsynth_test_assert_close("running_mean", drm, rm, (size_t)C, 1e-6, 1e-5);
    clsynth_test_assert_close("running_var", drv, rv, (size_t)C, 1e-6, 1e-5);
    free(dy);
    free(drm);
    free(drv);
    clsynth_release_activations(ctx);
    clsynth_tensor *ts[] = { tx, tg, tb, trm, trv };
    for (int i = 0; i < 5; i++)
        clsynth_tensor_free(ctx, ts[i]);
    free(x);
    free(g);
    free(b);
    free(rm);
    free(rv);
    free(y);
}

START_TEST(batch_norm_training_matches_reference)
{
    check_bn_train(2, 3, 5, 7, -2.0f, 3.0f, 2e-5, 1);
    check_bn_train(3, 2, 1, 1, -1.0f, 1.0f, 2e-5, 2); /* H = W = 1, M = 3 */
    if (tiny())
        return;
    check_bn_train(2, 17, 9, 11, -2.0f, 3.0f, 2e-5, 3);
    check_bn_train(3, 5, 37, 37, -2.0f, 3.0f, 2e-5, 4); /* several chunks per channel, crossing samples */
    check_bn_train(5, 3, 1, 1, -1.0f, 1.0f, 2e-5, 5);
}
END_TEST

START_TEST(batch_norm_is_stable_with_large_mean)
{
    /* sum(x^2) - sum(x)^2 in float would lose the variance (0.33) entirely */
    if (tiny())
        check_bn_train(2, 2, 3, 5, 999.0f, 1001.0f, 5e-4, 11);
    else
        check_bn_train(2, 3, 45, 45, 999.0f, 1001.0f, 5e-4, 11);
}
END_TEST

START_TEST(batch_norm_running_stats_after_three_steps)
{
    const int N = 2, C = 5, H = 3, W = 5;
    size_t n = (size_t)N * C * H * W;
    float *rm = rnd((size_t)C, -0.2f, 0.2f, 21), *rv = rnd((size_t)C, 0.5f, 1.5f, 22);
    float *y = malloc(n * sizeof *y);
    clsynth_tensor *trm = state("running_mean", 1, C, 1, 1, rm), *trv = state("running_var", 1, C, 1, 1, rv);
    for (int step = 0; step < 3; step++) {
        float *x = rnd(n, -1.0f + step, 2.0f + 0.5f * step, 30 + (uint64_t)step);
        clsynth_tensor *tx = clsynth_tensor_from_host(ctx, "x", N, C, H, W, x);
        clsynth_tensor *ty = clsynth_batch_norm(ctx, tx, NULL, NULL, trm, trv, true, 0.1f, 1e-5f);
        ck_assert_msg(ty != NULL, "step %d: %s", step, ctx->err.msg);
        ref_batch_norm_train(x, N, C, H, W, NULL, NULL, rm, rv, 0.1f, 1e-5f, y);
        float *drm = clsynth_test_download(ctx, trm), *drv = clsynth_test_download(ctx, trv);
        char what[64];
        snprintf(what, sizeof what, "running_mean after step %d", step + 1);
        clsynth_test_assert_close(what, drm, rm, (size_t)C, 1e-6, 1e-5);
        snprintf(what, sizeof what, "running_var after step %d", step + 1);
        clsynth_test_assert_close(what, drv, rv, (size_t)C, 1e-6, 1e-5);
        free(drm);
        free(drv);
        free(x);
        clsynth_release_activations(ctx);
    }
    clsynth_tensor_free(ctx, trm);
    clsynth_tensor_free(ctx, trv);
    free(rm);
    free(rv);
    free(y);
}
END_TEST

START_TEST(batch_norm_eval_uses_running_stats)
{
    const int N = 2, C = 3, H = 5, W = 7;
    size_t n = (size_t)N * C * H * W;
    float *x = rnd(n, -2.0f, 3.0f, 41), *g = rnd((size_t)C, 0.5f, 1.5f, 42), *b = rnd((size_t)C, -0.5f, 0.5f, 43);
    float *rm = rnd((size_t)C, -0.5f, 0.5f, 44), *rv = rnd((size_t)C, 0.5f, 2.0f, 45);
    float *y = malloc(n * sizeof *y);
    clsynth_tensor *in[3] = { clsynth_test_input(ctx, "x", N, C, H, W, x),
                              clsynth_test_input(ctx, "gamma", 1, C, 1, 1, g),
                              clsynth_test_input(ctx, "beta", 1, C, 1, 1, b) };
    bn_args a = { state("running_mean", 1, C, 1, 1, rm), state("running_var", 1, C, 1, 1, rv), false, true, false };
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *ty = fwd_norm(ctx, in, &a);
    clsynth_no_grad_end(ctx);
    ck_assert_msg(ty != NULL, "%s", ctx->err.msg);
    ref_batch_norm_eval(x, N, C, H, W, g, b, rm, rv, 1e-5f, y);
    float *dy = clsynth_test_download(ctx, ty);
    clsynth_test_assert_close("batch_norm eval y", dy, y, n, 2e-5, 1e-4);
    float *drm = clsynth_test_download(ctx, a.rm), *drv = clsynth_test_download(ctx, a.rv);
    ck_assert_msg(memcmp(drm, rm, (size_t)C * sizeof *rm) == 0 && memcmp(drv, rv, (size_t)C * sizeof *rv) == 0,
                  "eval mode changed the running stats");
    clsynth_test_gradcheck(ctx, "batch_norm eval", fwd_norm, in, 3, &a, 1e-2f, 2e-3, 2e-2, tiny() ? 3 : 12);
    /* eval without running stats is refused */
    ck_assert_ptr_null(clsynth_batch_norm(ctx, in[0], NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f));
    ck_assert_ptr_nonnull(strstr(ctx->err.msg, "batch_norm"));
    clsynth_ctx_clear_error(ctx);
    free(dy);
    free(drm);
    free(drv);
    for (int i = 0; i < 3; i++)
        clsynth_tensor_free(ctx, in[i]);
    clsynth_tensor_free(ctx, a.rm);
    clsynth_tensor_free(ctx, a.rv);
    free(x);
    free(g);
    free(b);
    free(rm);
    free(rv);
    free(y);
}
END_TEST

static void gradcheck_norm(const char *what, int N, int C, int H, int W, bool instance, bool affine, bool with_running)
{
    size_t n = (size_t)N * C * H * W;
    float *x = rnd(n, -2.0f, 2.0f, 51), *g = rnd((size_t)C, 0.5f, 1.5f, 52), *b = rnd((size_t)C, -0.5f, 0.5f, 53);
    float *rm = rnd((size_t)C, 0, 0, 54), *rv = rnd((size_t)C, 1, 1, 55);
    clsynth_tensor *in[3] = { clsynth_test_input(ctx, "x", N, C, H, W, x), NULL, NULL };
    int n_in = 1;
    if (affine) {
        in[1] = clsynth_test_input(ctx, "gamma", 1, C, 1, 1, g);
        in[2] = clsynth_test_input(ctx, "beta", 1, C, 1, 1, b);
        n_in = 3;
    }
    bn_args a = { NULL, NULL, true, affine, instance };
    if (with_running) {
        a.rm = state("running_mean", 1, C, 1, 1, rm);
        a.rv = state("running_var", 1, C, 1, 1, rv);
    }
    clsynth_test_gradcheck(ctx, what, fwd_norm, in, n_in, &a, 1e-2f, 2e-3, 2e-2, tiny() ? 3 : 12);
    for (int i = 0; i < n_in; i++)
        clsynth_tensor_free(ctx, in[i]);
    clsynth_tensor_free(ctx, a.rm);
    clsynth_tensor_free(ctx, a.rv);
    free(x);
    free(g);
    free(b);
    free(rm);
    free(rv);
}

START_TEST(batch_norm_training_gradients)
{
    gradcheck_norm("batch_norm training (2,3,5,7)", 2, 3, 5, 7, false, true, true);
    if (!tiny())
        gradcheck_norm("batch_norm training (2,17,3,5)", 2, 17, 3, 5, false, true, true);
}
END_TEST

START_TEST(batch_norm_without_affine_gradients)
{
    gradcheck_norm("batch_norm no affine (2,5,3,5)", 2, 5, 3, 5, false, false, false);
}
END_TEST

START_TEST(batch_norm_single_value_per_channel_is_an_error)
{
    float x[4] = { 1, 2, 3, 4 };
    clsynth_tensor *t = clsynth_tensor_from_host(ctx, "x1", 1, 4, 1, 1, x);
    ck_assert_ptr_null(clsynth_batch_norm(ctx, t, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f));
    ck_assert_msg(strstr(ctx->err.msg, "batch_norm") && strstr(ctx->err.msg, "(1, 4, 1, 1)"), "message: %s",
                  ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    /* a gamma of the wrong shape names both tensors */
    clsynth_tensor *t2 = clsynth_tensor_from_host(ctx, "x2", 2, 2, 1, 1, x);
    clsynth_tensor *bad = clsynth_tensor_from_host(ctx, "gamma3", 1, 3, 1, 1, x);
    ck_assert_ptr_null(clsynth_batch_norm(ctx, t2, bad, NULL, NULL, NULL, true, 0.1f, 1e-5f));
    ck_assert_msg(strstr(ctx->err.msg, "gamma3") && strstr(ctx->err.msg, "x2"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    /* two values per channel are fine (N = 2, 1x1) */
    ck_assert_ptr_nonnull(clsynth_batch_norm(ctx, t2, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f));
}
END_TEST

/* Odd work-group sizes (7: not a power of two) and several chunks per channel:
 * same results as the reference, bit-identical on a rerun, gradients right. */
START_TEST(batch_norm_odd_local_size_is_deterministic)
{
    clsynth_ctx_emulate_limits(ctx, 7, 0);
    const int N = 3, C = 5, H = tiny() ? 3 : 13, W = tiny() ? 5 : 11;
    size_t n = (size_t)N * C * H * W;
    float *x = rnd(n, -2.0f, 3.0f, 61), *g = rnd((size_t)C, 0.5f, 1.5f, 62), *b = rnd((size_t)C, -0.5f, 0.5f, 63);
    float *y = malloc(n * sizeof *y);
    clsynth_tensor *in[3] = { clsynth_test_input(ctx, "x", N, C, H, W, x),
                              clsynth_test_input(ctx, "gamma", 1, C, 1, 1, g),
                              clsynth_test_input(ctx, "beta", 1, C, 1, 1, b) };
    bn_args a = { NULL, NULL, true, true, false };
    float *first = NULL, *first_dx = NULL;
    for (int run = 0; run < 2; run++) {
        clsynth_tensor *ty = fwd_norm(ctx, in, &a);
        ck_assert_msg(ty != NULL, "%s", ctx->err.msg);
        float *dy = clsynth_test_download(ctx, ty);
        clsynth_tensor *seed = clsynth_tensor_from_host(ctx, "seed", N, C, H, W, x);
        ck_assert_msg(clsynth_backward_with(ctx, ty, seed) == 0, "%s", ctx->err.msg);
        float *dx = clsynth_test_download(ctx, in[0]->grad);
        ck_assert_int_eq(clsynth_tensor_fill(ctx, in[0]->grad, 0.0f), 0);
        if (run == 0) {
            ref_batch_norm_train(x, N, C, H, W, g, b, NULL, NULL, 0.1f, 1e-5f, y);
            clsynth_test_assert_close("batch_norm y, local size 7", dy, y, n, 2e-5, 1e-4);
            first = dy;
            first_dx = dx;
        } else {
            ck_assert_msg(memcmp(first, dy, n * sizeof *dy) == 0, "forward differs between runs");
            ck_assert_msg(memcmp(first_dx, dx, n * sizeof *dx) == 0, "backward differs between runs");
            free(dy);
            free(dx);
        }
    }
    clsynth_test_gradcheck(ctx, "batch_norm local size 7", fwd_norm, in, 3, &a, 1e-2f, 2e-3, 2e-2, tiny() ? 3 : 8);
    for (int i = 0; i < 3; i++)
        clsynth_tensor_free(ctx, in[i]);
    free(first);
    free(first_dx);
    free(x);
    free(g);
    free(b);
    free(y);
}
END_TEST

static void check_in(int N, int C, int H, int W, bool affine, uint64_t seed)
{
    size_t n = (size_t)N * C * H * W;
    float *x = rnd(n, -2.0f, 3.0f, seed), *g = rnd((size_t)C, 0.5f, 1.5f, seed + 1),
          *b = rnd((size_t)C, -0.5f, 0.5f, seed + 2), *y = malloc(n * sizeof *y);
    clsynth_tensor *tx = clsynth_tensor_from_host(ctx, "x", N, C, H, W, x);
    clsynth_tensor *tg = clsynth_tensor_from_host(ctx, "gamma", 1, C, 1, 1, g);
    clsynth_tensor *tb = clsynth_tensor_from_host(ctx, "beta", 1, C, 1, 1, b);
    clsynth_tensor *ty = clsynth_instance_norm(ctx, tx, affine ? tg : NULL, affine ? tb : NULL, 1e-5f);
    ck_assert_msg(ty != NULL, "%s", ctx->err.msg);
    ref_instance_norm(x, N, C, H, W, affine ? g : NULL, affine ? b : NULL, 1e-5f, y);
    float *d = clsynth_test_download(ctx, ty);
    char what[96];
    snprintf(what, sizeof what, "instance_norm y (%d, %d, %d, %d)%s", N, C, H, W, affine ? "" : " no affine");
    clsynth_test_assert_close(what, d, y, n, 2e-5, 1e-4);
    free(d);
    free(x);
    free(g);
    free(b);
    free(y);
    clsynth_release_activations(ctx);
}

START_TEST(instance_norm_matches_reference)
{
    check_in(2, 3, 5, 7, true, 71);
    check_in(2, 3, 5, 7, false, 72);
    if (tiny())
        return;
    check_in(2, 17, 9, 11, true, 73);
    check_in(2, 3, 47, 45, true, 74); /* several chunks per (n, c) */
    check_in(3, 5, 1, 1, false, 75);  /* one value: normalizes to beta */
}
END_TEST

START_TEST(instance_norm_gradients)
{
    gradcheck_norm("instance_norm (2,3,5,7)", 2, 3, 5, 7, true, true, false);
}
END_TEST

START_TEST(instance_norm_without_affine_gradients)
{
    gradcheck_norm("instance_norm no affine (2,5,3,5)", 2, 5, 3, 5, true, false, false);
}
END_TEST

static clsynth_tensor *fwd_spade(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    (void)user;
    return clsynth_spade_mod(c, in[0], in[1], in[2]);
}

START_TEST(spade_mod_matches_reference_and_gradients)
{
    const int N = 2, C = tiny() ? 3 : 5, H = tiny() ? 3 : 7, W = tiny() ? 5 : 9;
    size_t n = (size_t)N * C * H * W;
    float *x = rnd(n, -2, 2, 81), *g = rnd(n, -1, 1, 82), *b = rnd(n, -1, 1, 83), *y = malloc(n * sizeof *y);
    clsynth_tensor *in[3] = { clsynth_test_input(ctx, "x", N, C, H, W, x),
                              clsynth_test_input(ctx, "gamma", N, C, H, W, g),
                              clsynth_test_input(ctx, "beta", N, C, H, W, b) };
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *ty = fwd_spade(ctx, in, NULL);
    clsynth_no_grad_end(ctx);
    ck_assert_msg(ty != NULL, "%s", ctx->err.msg);
    ref_spade_mod(x, g, b, (int)n, y);
    float *d = clsynth_test_download(ctx, ty);
    clsynth_test_assert_close("spade_mod y", d, y, n, 1e-6, 1e-6);
    clsynth_test_gradcheck(ctx, "spade_mod", fwd_spade, in, 3, NULL, 1e-2f, 2e-3, 2e-2, tiny() ? 3 : 12);
    /* mismatched shapes are refused, naming the tensors */
    clsynth_tensor *small = clsynth_tensor_new(ctx, "small_gamma", N, C, H, W - 1);
    ck_assert_ptr_null(clsynth_spade_mod(ctx, in[0], small, in[2]));
    ck_assert_msg(strstr(ctx->err.msg, "spade_mod") && strstr(ctx->err.msg, "small_gamma"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    for (int i = 0; i < 3; i++)
        clsynth_tensor_free(ctx, in[i]);
    free(d);
    free(x);
    free(g);
    free(b);
    free(y);
}
END_TEST

/* ---- spectral norm ---- */

/* v = normalize(W^T u) on the host (double), for the initial v. */
static void host_v_from_u(const float *w, int Cout, int K, const float *u, float *v)
{
    double n = 0;
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int o = 0; o < Cout; o++)
            s += (double)w[(long)o * K + k] * u[o];
        v[k] = (float)s;
        n += s * s;
    }
    n = fmax(sqrt(n), 1e-12);
    for (int k = 0; k < K; k++)
        v[k] = (float)(v[k] / n);
}

static void check_sn(int Cout, int Cin, int KH, int KW, uint64_t seed)
{
    const int K = Cin * KH * KW;
    size_t n = (size_t)Cout * K;
    float *w = rnd(n, -1, 1, seed), *u = rnd((size_t)Cout, -1, 1, seed + 1), *out = malloc(n * sizeof *out);
    float *v = malloc((size_t)K * sizeof *v);
    clsynth_tensor *tw = clsynth_tensor_from_host(ctx, "w", Cout, Cin, KH, KW, w);
    clsynth_tensor *tu = state("u", 1, Cout, 1, 1, u);
    clsynth_tensor *tv = clsynth_tensor_new_persistent(ctx, "v", 1, K, 1, 1);
    char what[96];
    /* v from u as the caller initialized it (not unit) */
    ck_assert_msg(clsynth_spectral_norm_init_v(ctx, tw, tu, tv) == 0, "%s", ctx->err.msg);
    host_v_from_u(w, Cout, K, u, v);
    float *dv = clsynth_test_download(ctx, tv);
    clsynth_test_assert_close("v initialized from u", dv, v, (size_t)K, 1e-6, 1e-5);
    free(dv);
    /* stored vectors, one power iteration, stored vectors again, another iteration */
    const int updates[4] = { 0, 1, 0, 1 };
    for (int step = 0; step < 4; step++) {
        const int update = updates[step];
        float *u_before = clsynth_test_download(ctx, tu), *v_before = clsynth_test_download(ctx, tv);
        clsynth_tensor *ts = clsynth_spectral_norm(ctx, tw, tu, tv, update);
        ck_assert_msg(ts != NULL, "%s", ctx->err.msg);
        double sigma;
        memcpy(v, v_before, (size_t)K * sizeof *v); /* the reference continues from the device's state */
        memcpy(u, u_before, (size_t)Cout * sizeof *u);
        ref_spectral_norm(w, Cout, K, u, v, update, out, &sigma);
        float *d = clsynth_test_download(ctx, ts), *du = clsynth_test_download(ctx, tu);
        dv = clsynth_test_download(ctx, tv);
        snprintf(what, sizeof what, "spectral_norm (%d, %d, %d, %d) update %d", Cout, Cin, KH, KW, update);
        clsynth_test_assert_close(what, d, out, n, 1e-6, 1e-4);
        if (update) {
            clsynth_test_assert_close("u after the power iteration", du, u, (size_t)Cout, 1e-5, 1e-4);
            clsynth_test_assert_close("v after the power iteration", dv, v, (size_t)K, 1e-5, 1e-4);
        } else {
            ck_assert_msg(memcmp(du, u_before, (size_t)Cout * sizeof *du) == 0, "update false changed u");
            ck_assert_msg(memcmp(dv, v_before, (size_t)K * sizeof *dv) == 0, "update false changed v");
        }
        free(d);
        free(du);
        free(dv);
        free(u_before);
        free(v_before);
    }
    clsynth_tensor_free(ctx, tu);
    clsynth_tensor_free(ctx, tv);
    clsynth_release_activations(ctx);
    free(w);
    free(u);
    free(v);
    free(out);
}

START_TEST(spectral_norm_matches_reference)
{
    check_sn(5, 3, 3, 3, 91);
    if (tiny())
        return;
    check_sn(17, 5, 3, 3, 92);
    check_sn(64, 32, 3, 3, 93);
    check_sn(3, 300, 1, 1, 94); /* K > work-group size: strided rows */
    /* u or v of the wrong size is refused, naming it */
    clsynth_tensor *w = clsynth_tensor_new(ctx, "w", 4, 2, 3, 3), *u = clsynth_tensor_new(ctx, "u5", 1, 5, 1, 1);
    clsynth_tensor *u4 = clsynth_tensor_new(ctx, "u4", 1, 4, 1, 1), *v = clsynth_tensor_new(ctx, "v17", 1, 17, 1, 1);
    ck_assert_ptr_null(clsynth_spectral_norm(ctx, w, u, v, true));
    ck_assert_msg(strstr(ctx->err.msg, "spectral_norm") && strstr(ctx->err.msg, "u5"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_ptr_null(clsynth_spectral_norm(ctx, w, u4, v, false));
    ck_assert_msg(strstr(ctx->err.msg, "v17") && strstr(ctx->err.msg, "18"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
}
END_TEST

/* PyTorch's order: a training forward computes v from the previous u, then u
 * from that v, and stores both; an eval forward after a weight change uses
 * that stored pair: sigma = u^T W' v. Recomputing v from the stored u (what
 * clsynth did before checkpoint version 2) gives another sigma. Numbers from
 * torch.nn.utils.spectral_norm on this W, u0, v0 (PyTorch 2.15, float64):
 *   train forward: sigma 2.4083189; eval after W' = W + 1: 4.1522740
 *   (v recomputed from the stored u would give 5.0172118). */
START_TEST(spectral_norm_eval_uses_the_stored_pair_in_pytorch_order)
{
    enum { Cout = 2, K = 3 };
    float w[Cout * K] = { 1, 2, 0, 0, 1, 4 }, u[Cout] = { 1, 0 }, v[K] = { 0, 0, 1 };
    clsynth_tensor *tw = state("w", Cout, K, 1, 1, w), *tu = state("u", 1, Cout, 1, 1, u);
    clsynth_tensor *tv = state("v", 1, K, 1, 1, v);
    clsynth_tensor *ts = clsynth_spectral_norm(ctx, tw, tu, tv, true);
    float *d = clsynth_test_download(ctx, ts);
    ck_assert_msg(fabs(w[0] / d[0] - 2.4083189) < 1e-5, "training sigma %.7g", w[0] / d[0]);
    free(d);
    /* the stored v comes from the previous u (1, 0): normalize(W^T u) = (1, 2, 0) / sqrt 5 */
    float *dv = clsynth_test_download(ctx, tv);
    const float v_want[K] = { 0.4472136f, 0.8944272f, 0.0f };
    clsynth_test_assert_close("v from the previous u", dv, v_want, K, 1e-6, 0);
    free(dv);
    for (int i = 0; i < Cout * K; i++)
        w[i] += 1.0f;
    ck_assert_int_eq(clsynth_tensor_upload(ctx, tw, w), 0);
    ts = clsynth_spectral_norm(ctx, tw, tu, tv, false);
    d = clsynth_test_download(ctx, ts);
    ck_assert_msg(fabs(w[0] / d[0] - 4.1522740) < 1e-5, "eval sigma %.7g, PyTorch 4.1522740", w[0] / d[0]);
    free(d);
    clsynth_tensor_free(ctx, tw);
    clsynth_tensor_free(ctx, tu);
    clsynth_tensor_free(ctx, tv);
    clsynth_release_activations(ctx);
}
END_TEST

/* W = H1 diag(s) H2^T with Householder reflections H1 (Cout x Cout), H2 (K x K):
 * its largest singular value is s[0] = 3; power iteration must reach it. */
START_TEST(spectral_norm_converges_to_largest_singular_value)
{
    enum { Cout = 6, K = 10 };
    const double s[Cout] = { 3.0, 2.0, 1.5, 1.0, 0.5, 0.25 };
    float a1[Cout], a2[K];
    clsynth_test_fill_uniform(a1, Cout, -1, 1, 101);
    clsynth_test_fill_uniform(a2, K, -1, 1, 102);
    double n1 = 0, n2 = 0, H1[Cout][Cout], H2[K][K];
    for (int i = 0; i < Cout; i++)
        n1 += (double)a1[i] * a1[i];
    for (int i = 0; i < K; i++)
        n2 += (double)a2[i] * a2[i];
    for (int i = 0; i < Cout; i++)
        for (int j = 0; j < Cout; j++)
            H1[i][j] = (i == j) - 2.0 * a1[i] * a1[j] / n1;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++)
            H2[i][j] = (i == j) - 2.0 * a2[i] * a2[j] / n2;
    float w[Cout * K], u[Cout], v[K], out[Cout * K];
    for (int o = 0; o < Cout; o++)
        for (int k = 0; k < K; k++) {
            double x = 0;
            for (int i = 0; i < Cout; i++)
                x += H1[o][i] * s[i] * H2[k][i];
            w[o * K + k] = (float)x;
        }
    clsynth_test_fill_uniform(u, Cout, -1, 1, 103);
    memset(v, 0, sizeof v);
    clsynth_tensor *tw = state("w", Cout, K, 1, 1, w);
    clsynth_tensor *tu = state("u", 1, Cout, 1, 1, u);
    clsynth_tensor *tv = state("v", 1, K, 1, 1, v);
    const int iters = 40;
    double ref_sigma = 0;
    for (int it = 0; it < iters; it++) {
        ck_assert_msg(clsynth_spectral_norm(ctx, tw, tu, tv, true) != NULL, "%s", ctx->err.msg);
        ref_spectral_norm(w, Cout, K, u, v, true, NULL, &ref_sigma);
        clsynth_release_activations(ctx);
    }
    clsynth_tensor *ts = clsynth_spectral_norm(ctx, tw, tu, tv, false);
    ck_assert_msg(ts != NULL, "%s", ctx->err.msg);
    ck_assert_int_eq(clsynth_tensor_download(ctx, ts, out), 0);
    /* the reference itself: float weights are within 1e-6 of the exact matrix */
    ck_assert_msg(fabs(ref_sigma - 3.0) < 1e-5, "reference sigma %.9g after %d iterations, expected 3", ref_sigma,
                  iters);
    double nw = 0, no = 0;
    for (int i = 0; i < Cout * K; i++) {
        nw += (double)w[i] * w[i];
        no += (double)out[i] * out[i];
    }
    double sigma = sqrt(nw / no);
    ck_assert_msg(fabs(sigma - 3.0) < 3e-5 * 3.0, "device sigma %.9g after %d iterations, expected 3", sigma, iters);
    clsynth_tensor_free(ctx, tw);
    clsynth_tensor_free(ctx, tu);
    clsynth_tensor_free(ctx, tv);
    clsynth_release_activations(ctx);
}
END_TEST

typedef struct sn_state {
    clsynth_tensor *u, *v;
} sn_state;

static clsynth_tensor *fwd_sn(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    const sn_state *st = user;
    return clsynth_spectral_norm(c, in[0], st->u, st->v, false);
}

START_TEST(spectral_norm_gradient_through_sigma)
{
    const int Cout = 5, Cin = 3, KH = 3, KW = 3, K = Cin * KH * KW;
    size_t n = (size_t)Cout * K;
    float *w = rnd(n, -1, 1, 111), *u = rnd((size_t)Cout, -1, 1, 112);
    clsynth_tensor *in[1] = { clsynth_test_input(ctx, "w", Cout, Cin, KH, KW, w) };
    sn_state st = { state("u", 1, Cout, 1, 1, u), clsynth_tensor_new_persistent(ctx, "v", 1, K, 1, 1) };
    /* one power iteration first, so u and v are a realistic (unit) pair */
    clsynth_no_grad_begin(ctx);
    ck_assert_ptr_nonnull(clsynth_spectral_norm(ctx, in[0], st.u, st.v, true));
    clsynth_no_grad_end(ctx);
    clsynth_release_activations(ctx);
    clsynth_test_gradcheck(ctx, "spectral_norm", fwd_sn, in, 1, &st, 1e-2f, 2e-3, 2e-2, tiny() ? 4 : 20);
    clsynth_tensor_free(ctx, in[0]);
    clsynth_tensor_free(ctx, st.u);
    clsynth_tensor_free(ctx, st.v);
    free(w);
    free(u);
}
END_TEST

/* Tensors are views at element offsets (batch slices, group parameters). */
START_TEST(ops_read_views_at_offsets)
{
    const int N = 3, C = 3, H = 3, W = 5, Cout = 4, K = 6;
    size_t per = (size_t)C * H * W, n = 2 * per;
    float *x = rnd((size_t)N * per, -2, 2, 121), *y = malloc(n * sizeof *y);
    clsynth_tensor *base = clsynth_tensor_from_host(ctx, "base", N, C, H, W, x);
    clsynth_tensor *xs = clsynth_tensor_batch_slice(ctx, base, 1, 2);
    clsynth_param_group *g = clsynth_group_new(ctx, "g");
    clsynth_tensor *pad = clsynth_group_param(ctx, g, "pad", 1, 1, 1, 7);
    clsynth_tensor *gamma = clsynth_group_param(ctx, g, "gamma", 1, C, 1, 1);
    clsynth_tensor *beta = clsynth_group_param(ctx, g, "beta", 1, C, 1, 1);
    clsynth_tensor *w = clsynth_group_param(ctx, g, "w", Cout, K, 1, 1);
    clsynth_tensor *rm = clsynth_group_buffer(ctx, g, "rm", 1, C, 1, 1);
    clsynth_tensor *rv = clsynth_group_buffer(ctx, g, "rv", 1, C, 1, 1);
    clsynth_tensor *u = clsynth_group_buffer(ctx, g, "u", 1, Cout, 1, 1);
    clsynth_tensor *v = clsynth_group_buffer(ctx, g, "v", 1, K, 1, 1);
    ck_assert_msg(clsynth_group_finalize(ctx, g) == 0, "%s", ctx->err.msg);
    ck_assert(pad != NULL && gamma->off > 0 && w->off > 0);
    float gh[3] = { 0.5f, 1.0f, 2.0f }, bh[3] = { 0.1f, -0.2f, 0.3f }, rmh[3] = { 0, 0, 0 }, rvh[3] = { 1, 1, 1 };
    float *wh = rnd((size_t)Cout * K, -1, 1, 122), *uh = rnd((size_t)Cout, -1, 1, 123);
    float *out = malloc((size_t)Cout * K * sizeof *out);
    ck_assert_int_eq(clsynth_tensor_upload(ctx, gamma, gh) | clsynth_tensor_upload(ctx, beta, bh) |
                         clsynth_tensor_upload(ctx, rm, rmh) | clsynth_tensor_upload(ctx, rv, rvh) |
                         clsynth_tensor_upload(ctx, w, wh) | clsynth_tensor_upload(ctx, u, uh),
                     0);
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *ty = clsynth_batch_norm(ctx, xs, gamma, beta, rm, rv, true, 0.1f, 1e-5f);
    ck_assert_msg(ty != NULL, "%s", ctx->err.msg);
    ref_batch_norm_train(x + per, 2, C, H, W, gh, bh, rmh, rvh, 0.1f, 1e-5f, y);
    float *d = clsynth_test_download(ctx, ty), *drv = clsynth_test_download(ctx, rv);
    clsynth_test_assert_close("batch_norm of a batch slice", d, y, n, 2e-5, 1e-4);
    clsynth_test_assert_close("running_var in a group", drv, rvh, (size_t)C, 1e-6, 1e-5);
    free(d);
    ty = clsynth_instance_norm(ctx, xs, gamma, beta, 1e-5f);
    ck_assert_msg(ty != NULL, "%s", ctx->err.msg);
    ref_instance_norm(x + per, 2, C, H, W, gh, bh, 1e-5f, y);
    d = clsynth_test_download(ctx, ty);
    clsynth_test_assert_close("instance_norm of a batch slice", d, y, n, 2e-5, 1e-4);
    free(d);
    float vh[K];
    memset(vh, 0, sizeof vh);
    ty = clsynth_spectral_norm(ctx, w, u, v, true);
    ck_assert_msg(ty != NULL, "%s", ctx->err.msg);
    ref_spectral_norm(wh, Cout, K, uh, vh, true, out, NULL);
    d = clsynth_test_download(ctx, ty);
    clsynth_test_assert_close("spectral_norm of a group parameter", d, out, (size_t)Cout * K, 1e-6, 1e-4);
    clsynth_no_grad_end(ctx);
    free(d);
    free(drv);
    free(wh);
    free(uh);
    free(out);
    free(x);
    free(y);
    clsynth_release_activations(ctx);
    clsynth_group_free(ctx, g);
}
END_TEST


/* ---- norm + LeakyReLU fused ---- */

typedef struct lrelu_args {
    bn_args bn;
    bool fused;
    float slope;
} lrelu_args;

static clsynth_tensor *fwd_norm_lrelu(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    lrelu_args *l = user;
    const bn_args *b = &l->bn;
    clsynth_tensor *g = b->affine ? in[1] : NULL, *be = b->affine ? in[2] : NULL;
    if (!l->fused)
        return clsynth_leaky_relu(c, fwd_norm(c, in, &l->bn), l->slope);
    if (b->instance)
        return clsynth_instance_norm_lrelu(c, in[0], g, be, 1e-5f, l->slope);
    return clsynth_batch_norm_lrelu(c, in[0], g, be, b->rm, b->rv, b->training, 0.1f, 1e-5f, l->slope);
}

/* y, the gradients of x (and gamma, beta) and the running statistics of one
 * forward + backward (seeded with a fixed dy), into out[0..n_in + 2). */
static void run_norm_lrelu(lrelu_args *l, clsynth_tensor **in, int n_in, const float *seed_dy, float **out)
{
    clsynth_tensor *y = fwd_norm_lrelu(ctx, in, l);
    ck_assert_msg(y != NULL, "%s", ctx->err.msg);
    out[0] = clsynth_test_download(ctx, y);
    clsynth_tensor *seed = clsynth_tensor_from_host(ctx, "dy", y->n, y->c, y->h, y->w, seed_dy);
    ck_assert_msg(clsynth_backward_with(ctx, y, seed) == 0, "%s", ctx->err.msg);
    for (int i = 0; i < n_in; i++) {
        out[1 + i] = clsynth_test_download(ctx, in[i]->grad);
        ck_assert_int_eq(clsynth_tensor_fill(ctx, in[i]->grad, 0.0f), 0);
    }
    out[1 + n_in] = l->bn.rm ? clsynth_test_download(ctx, l->bn.rm) : NULL;
}

/* The fused op against batch/instance norm followed by clsynth_leaky_relu:
 * the same bits forward and backward (with one chunk per group, which takes
 * the one-launch statistics and sums, and with several), and gradients
 * against finite differences where a group is small enough that a step of
 * gamma moves no value across the activation's kink (with hundreds per group
 * some always cross, and the difference quotient is not the derivative). */
static void check_norm_lrelu(const char *what, int N, int C, int H, int W, bool instance, bool affine, bool training,
                             int max_wg, float slope, bool gradcheck, uint64_t seed)
{
    clsynth_ctx_emulate_limits(ctx, max_wg, 0);
    size_t n = (size_t)N * C * H * W;
    float *x = rnd(n, -2.0f, 2.5f, seed), *g = rnd((size_t)C, -1.0f, 1.5f, seed + 1);
    float *b = rnd((size_t)C, -0.5f, 0.5f, seed + 2), *dy = rnd(n, -1.0f, 1.0f, seed + 3);
    float *rm = rnd((size_t)C, -0.2f, 0.2f, seed + 4), *rv = rnd((size_t)C, 0.5f, 2.0f, seed + 5);
    clsynth_tensor *in[3] = { clsynth_test_input(ctx, "x", N, C, H, W, x), NULL, NULL };
    int n_in = 1;
    if (affine) {
        in[1] = clsynth_test_input(ctx, "gamma", 1, C, 1, 1, g);
        in[2] = clsynth_test_input(ctx, "beta", 1, C, 1, 1, b);
        n_in = 3;
    }
    lrelu_args l = { { NULL, NULL, training, affine, instance }, false, slope };
    if (!instance) {
        l.bn.rm = state("running_mean", 1, C, 1, 1, rm);
        l.bn.rv = state("running_var", 1, C, 1, 1, rv);
    }
    float *sep[5] = { 0 }, *fus[5] = { 0 };
    run_norm_lrelu(&l, in, n_in, dy, sep);
    if (l.bn.rm) { /* the fused run starts from the same running statistics */
        ck_assert_int_eq(clsynth_tensor_upload(ctx, l.bn.rm, rm), 0);
        ck_assert_int_eq(clsynth_tensor_upload(ctx, l.bn.rv, rv), 0);
    }
    l.fused = true;
    run_norm_lrelu(&l, in, n_in, dy, fus);
    static const char *const names[5] = { "y", "dx", "dgamma", "dbeta", "running_mean" };
    const size_t len[5] = { n, n, (size_t)C, (size_t)C, (size_t)C };
    for (int i = 0; i < n_in + 2; i++) {
        if (!sep[i])
            continue;
        const int k = i <= n_in ? i : 4;
        size_t bad = 0;
        for (size_t j = 0; j < len[k]; j++)
            bad += sep[i][j] != fus[i][j] && !(sep[i][j] == 0.0f && fus[i][j] == 0.0f);
        ck_assert_msg(bad == 0, "%s: fused %s differs from norm + leaky_relu at %zu of %zu values", what, names[k],
                      bad, len[k]);
    }
    for (int i = 0; i < 5; i++) {
        free(sep[i]);
        free(fus[i]);
    }
    if (l.bn.rm) {
        ck_assert_int_eq(clsynth_tensor_upload(ctx, l.bn.rm, rm), 0);
        ck_assert_int_eq(clsynth_tensor_upload(ctx, l.bn.rv, rv), 0);
    }
    if (gradcheck)
        clsynth_test_gradcheck(ctx, what, fwd_norm_lrelu, in, n_in, &l, 1e-2f, 2e-3, 2e-2, tiny() ? 3 : 10);
    for (int i = 0; i < n_in; i++)
        clsynth_tensor_free(ctx, in[i]);
    clsynth_tensor_free(ctx, l.bn.rm);
    clsynth_tensor_free(ctx, l.bn.rv);
    clsynth_ctx_emulate_limits(ctx, 0, 0);
    free(x);
    free(g);
    free(b);
    free(dy);
    free(rm);
    free(rv);
}

START_TEST(norm_lrelu_is_norm_then_leaky_relu_bit_for_bit)
{
    /* one chunk per group (M = 2*3*5 = 30), then several (local 7, M = 3*13*11 = 429) */
    check_norm_lrelu("batch_norm_lrelu (2,3,3,5)", 2, 3, 3, 5, false, true, true, 0, 0.2f, true, 71);
    check_norm_lrelu("batch_norm_lrelu eval (2,3,3,5)", 2, 3, 3, 5, false, true, false, 0, 0.2f, true, 72);
    check_norm_lrelu("instance_norm_lrelu no affine (3,5,3,7)", 3, 5, 3, 7, true, false, true, 0, 0.2f, true, 73);
    check_norm_lrelu("batch_norm_lrelu relu no affine (2,4,5,3)", 2, 4, 5, 3, false, false, true, 0, 0.0f, true, 74);
    if (!tiny()) {
        check_norm_lrelu("batch_norm_lrelu local 7 (3,5,13,11)", 3, 5, 13, 11, false, true, true, 7, 0.2f, false, 75);
        check_norm_lrelu("instance_norm_lrelu local 7 (2,3,17,9)", 2, 3, 17, 9, true, true, true, 7, 0.2f, false, 76);
    }
}
END_TEST

/* Where one chunk covers a group, the statistics kernel writes y too and the
 * gradient-sums kernel dx and the affine gradients (kernels/norm.cl): one
 * launch each way instead of three and four. The values agree with the
 * several-chunk path (local 3), whose statistics sum in another order. */
static void one_chunk_run(bool instance, int max_wg, unsigned long launches[2], float **y, float **dx, float **dg)
{
    const int N = 2, C = 3, H = 5, W = 7;
    const size_t n = (size_t)N * C * H * W;
    float *x = rnd(n, -2.0f, 3.0f, 81), *g = rnd((size_t)C, 0.5f, 1.5f, 82), *b = rnd((size_t)C, -0.5f, 0.5f, 83);
    float *seed = rnd(n, -1.0f, 1.0f, 84);
    if (max_wg)
        clsynth_ctx_emulate_limits(ctx, (size_t)max_wg, 0);
    clsynth_tensor *tx = clsynth_test_input(ctx, "x", N, C, H, W, x);
    clsynth_tensor *tg = clsynth_test_input(ctx, "gamma", 1, C, 1, 1, g);
    clsynth_tensor *tb = clsynth_test_input(ctx, "beta", 1, C, 1, 1, b);
    clsynth_tensor *tseed = clsynth_tensor_from_host(ctx, "seed", N, C, H, W, seed);
    ck_assert_ptr_nonnull(tseed);
    clsynth_finish(ctx);
    unsigned long l0 = ctx->launches;
    clsynth_tensor *ty = instance ? clsynth_instance_norm_lrelu(ctx, tx, tg, tb, 1e-5f, 0.2f)
                                  : clsynth_batch_norm_lrelu(ctx, tx, tg, tb, NULL, NULL, true, 0.1f, 1e-5f, 0.2f);
    ck_assert_msg(ty != NULL, "%s", ctx->err.msg);
    const unsigned long l1 = ctx->launches;
    *y = clsynth_test_download(ctx, ty); /* the backward releases ty */
    const unsigned long l2 = ctx->launches;
    ck_assert_msg(clsynth_backward_with(ctx, ty, tseed) == 0, "%s", ctx->err.msg);
    launches[0] = l1 - l0;
    launches[1] = ctx->launches - l2;
    *dx = clsynth_test_download(ctx, tx->grad);
    *dg = clsynth_test_download(ctx, tg->grad);
    clsynth_release_activations(ctx);
    clsynth_tensor *ts[] = { tx, tg, tb }; /* tseed, an activation, went with the backward */
    for (int i = 0; i < 3; i++)
        clsynth_tensor_free(ctx, ts[i]);
    free(x);
    free(g);
    free(b);
    free(seed);
}

START_TEST(norm_one_chunk_is_one_launch_each_way)
{
    /* the one-chunk runs first: emulated limits only ever go down in a context */
    unsigned long one[2][2], several[2][2];
    float *y[2][2], *dx[2][2], *dg[2][2];
    for (int lim = 0; lim < 2; lim++)
        for (int instance = 0; instance < 2; instance++) /* local 3: chunks of 24 values */
            one_chunk_run(instance, lim ? 3 : 0, lim ? several[instance] : one[instance], &y[lim][instance],
                          &dx[lim][instance], &dg[lim][instance]);
    for (int instance = 0; instance < 2; instance++) {
        const char *what = instance ? "instance_norm_lrelu" : "batch_norm_lrelu";
        const unsigned long *o = one[instance], *sv = several[instance];
        fprintf(stderr, "%s (2,3,5,7): one chunk %lu + %lu launches, several %lu + %lu\n", what, o[0], o[1], sv[0],
                sv[1]);
        ck_assert_msg(o[0] == 1 && sv[0] == 3, "%s forward: %lu launches with one chunk, %lu with several "
                      "(expected 1 and 3)", what, o[0], sv[0]);
        /* backward: both runs copy the seed alike; several chunks add the
         * sums' merge and dx (and batch norm the affine gradients) */
        const unsigned long saved = instance ? 2 : 3;
        ck_assert_msg(sv[1] == o[1] + saved, "%s backward: %lu launches with one chunk, %lu with several "
                      "(expected %lu fewer)", what, o[1], sv[1], saved);
        clsynth_test_assert_close(what, y[0][instance], y[1][instance], 2 * 3 * 5 * 7, 1e-5, 1e-5);
        clsynth_test_assert_close(what, dx[0][instance], dx[1][instance], 2 * 3 * 5 * 7, 1e-5, 1e-4);
        clsynth_test_assert_close(what, dg[0][instance], dg[1][instance], 3, 1e-5, 1e-4);
        for (int lim = 0; lim < 2; lim++) {
            free(y[lim][instance]);
            free(dx[lim][instance]);
            free(dg[lim][instance]);
        }
    }
}
END_TEST

/* spade_mod's backward writes every element of its gradients: fresh ones are
 * stored (no zero fill), existing ones added to, and an input given twice
 * (gamma as beta) gets both terms. y = spade(spade(x, g, g), g, b):
 *   y1 = x (1 + g) + g,  dy1 = dy (1 + g),  dx = dy1 (1 + g),
 *   dg = dy y1 + dy1 x + dy1,  db = dy. */
START_TEST(spade_mod_backward_stores_fresh_and_adds_to_existing_gradients)
{
    const int N = 2, C = 3, H = 5, W = 7;
    const size_t n = (size_t)N * C * H * W;
    float *x = rnd(n, -2, 2, 91), *g = rnd(n, -1, 1, 92), *b = rnd(n, -1, 1, 93), *seed = rnd(n, -1, 1, 94);
    clsynth_tensor *tx = clsynth_test_input(ctx, "x", N, C, H, W, x);
    clsynth_tensor *tg = clsynth_test_input(ctx, "gamma", N, C, H, W, g);
    clsynth_tensor *tb = clsynth_test_input(ctx, "beta", N, C, H, W, b);
    clsynth_tensor *tseed = clsynth_tensor_from_host(ctx, "seed", N, C, H, W, seed);
    ck_assert_ptr_nonnull(tseed);
    clsynth_tensor *ty = clsynth_spade_mod(ctx, clsynth_spade_mod(ctx, tx, tg, tg), tg, tb);
    ck_assert_msg(ty != NULL, "%s", ctx->err.msg);
    clsynth_finish(ctx);
    const unsigned long l0 = ctx->launches;
    ck_assert_msg(clsynth_backward_with(ctx, ty, tseed) == 0, "%s", ctx->err.msg);
    const unsigned long launches = ctx->launches - l0;
    float *dx = clsynth_test_download(ctx, tx->grad), *dg = clsynth_test_download(ctx, tg->grad),
          *db = clsynth_test_download(ctx, tb->grad);
    float *wx = malloc(n * sizeof *wx), *wg = malloc(n * sizeof *wg);
    for (size_t i = 0; i < n; i++) {
        const double y1 = x[i] * (1.0 + g[i]) + g[i], dy1 = seed[i] * (1.0 + g[i]);
        wx[i] = (float)(dy1 * (1.0 + g[i]));
        wg[i] = (float)(seed[i] * y1 + dy1 * x[i] + dy1);
    }
    clsynth_test_assert_close("spade_mod dx", dx, wx, n, 1e-5, 1e-5);
    clsynth_test_assert_close("spade_mod dgamma (given twice)", dg, wg, n, 1e-5, 1e-5);
    clsynth_test_assert_close("spade_mod dbeta", db, seed, n, 0, 0);
    /* the seed's copy and one launch per spade_mod: no fill */
    ck_assert_msg(launches == 3, "spade_mod backward: %lu launches (expected 3)", launches);
    clsynth_release_activations(ctx);
    clsynth_tensor *ts[] = { tx, tg, tb };
    for (int i = 0; i < 3; i++)
        clsynth_tensor_free(ctx, ts[i]);
    free(dx);
    free(dg);
    free(db);
    free(wx);
    free(wg);
    free(x);
    free(g);
    free(b);
    free(seed);
}
END_TEST

START_TEST(norm_lrelu_refuses_a_negative_slope)
{
    float x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    clsynth_tensor *t = clsynth_tensor_from_host(ctx, "x_neg", 2, 2, 1, 2, x);
    ck_assert_ptr_null(clsynth_batch_norm_lrelu(ctx, t, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f, -0.2f));
    ck_assert_msg(strstr(ctx->err.msg, "batch_norm_lrelu") && strstr(ctx->err.msg, "x_neg") &&
                      strstr(ctx->err.msg, "-0.2"),
                  "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_ptr_null(clsynth_instance_norm_lrelu(ctx, t, NULL, NULL, 1e-5f, NAN));
    ck_assert_msg(strstr(ctx->err.msg, "instance_norm_lrelu"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
}
END_TEST

int main(void)
{
    return clsynth_test_main("norm", &ctx, 300,
                             CLSYNTH_TEST_LIST(batch_norm_training_matches_reference,
                                               batch_norm_is_stable_with_large_mean,
                                               batch_norm_running_stats_after_three_steps,
                                               batch_norm_eval_uses_running_stats,
                                               batch_norm_training_gradients,
                                               batch_norm_without_affine_gradients,
                                               batch_norm_single_value_per_channel_is_an_error,
                                               batch_norm_odd_local_size_is_deterministic,
                                               instance_norm_matches_reference,
                                               instance_norm_gradients,
                                               instance_norm_without_affine_gradients,
                                               spade_mod_matches_reference_and_gradients,
                                               spade_mod_backward_stores_fresh_and_adds_to_existing_gradients,
                                               spectral_norm_matches_reference,
                                               spectral_norm_eval_uses_the_stored_pair_in_pytorch_order,
                                               spectral_norm_converges_to_largest_singular_value,
                                               spectral_norm_gradient_through_sigma,
                                               ops_read_views_at_offsets,
                                               norm_lrelu_is_norm_then_leaky_relu_bit_for_bit,
                                               norm_lrelu_refuses_a_negative_slope,
                                               norm_one_chunk_is_one_launch_each_way));
}
