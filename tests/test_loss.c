/* Reductions and losses (clcore/ops_loss.c): forward vs tests/ref_loss.c and
 * gradients vs central finite differences.
 * CLSYNTH_OCLGRIND_OK: under Oclgrind the sizes shrink (clsynth_test_under_oclgrind). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/ops.h"
#include "ref_loss.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static float *host_uniform(size_t n, float lo, float hi, uint64_t seed)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    clsynth_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}

/* Moves values within `gap` of `kink` away from it (finite differences must not straddle kinks). */
static void away_from(float *x, size_t n, float kink, float gap)
{
    for (size_t i = 0; i < n; i++)
        if (fabsf(x[i] - kink) < gap)
            x[i] = x[i] < kink ? kink - gap : kink + gap;
}

static float scalar_of(clsynth_tensor *t)
{
    float v = NAN;
    ck_assert_msg(t != NULL, "%s", ctx->err.msg);
    ck_assert_msg(clsynth_scalar(ctx, t, &v) == 0, "%s", ctx->err.msg);
    return v;
}

#define check_accumulates(what, fn, in, n_in, user) \
    clsynth_test_check_accumulates(ctx, what, fn, in, n_in, user)

/* ---- sum and mean ---- */

START_TEST(sum_and_mean_at_sizes_that_are_not_multiples_of_the_work_group)
{
    /* tolerance: float tree vs double: rtol 1e-5 + atol 1e-6 * sum|x| (inputs in [0, 1) and [-1, 1)) */
    size_t sizes[4] = { 1, 7, 1000, 1000003 };
    if (clsynth_test_under_oclgrind())
        sizes[3] = 4099;
    for (int s = 0; s < 4; s++) {
        for (int sign = 0; sign < 2; sign++) {
            size_t n = sizes[s];
            float *hx = host_uniform(n, sign ? -1.0f : 0.0f, 1.0f, 10 + s);
            clsynth_tensor *x = clsynth_test_input(ctx, "x", 1, 1, 1, (int)n, hx);
            double ref_s = ref_loss_sum(hx, n), ref_m = ref_loss_mean(hx, n), abs_sum = 0;
            for (size_t i = 0; i < n; i++)
                abs_sum += fabs(hx[i]);
            float got_s = scalar_of(clsynth_sum(ctx, x)), got_m = scalar_of(clsynth_mean(ctx, x));
            ck_assert_msg(fabs(got_s - ref_s) <= 1e-5 * fabs(ref_s) + 1e-6 * abs_sum, "sum of %zu: %.9g vs %.9g", n,
                          (double)got_s, ref_s);
            ck_assert_msg(fabs(got_m - ref_m) <= 1e-5 * fabs(ref_m) + 1e-6 * abs_sum / (double)n,
                          "mean of %zu: %.9g vs %.9g", n, (double)got_m, ref_m);
            clsynth_tape_clear(ctx);
            clsynth_release_activations(ctx);
            clsynth_tensor_free(ctx, x);
            free(hx);
        }
    }
}
END_TEST

START_TEST(sum_is_bitwise_repeatable_and_close_under_other_work_groups)
{
    size_t n = clsynth_test_under_oclgrind() ? 3001 : 1000003;
    float *hx = host_uniform(n, -1.0f, 1.0f, 77);
    clsynth_tensor *x = clsynth_tensor_new_persistent(ctx, "x", 1, 1, 1, (int)n);
    clsynth_tensor_upload(ctx, x, hx);
    float a = scalar_of(clsynth_sum(ctx, x)), b = scalar_of(clsynth_sum(ctx, x));
    ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "sum not repeatable: %.9g vs %.9g", (double)a, (double)b);
    clsynth_release_activations(ctx);
    clsynth_tensor_free(ctx, x);
    /* a fresh context with 24-item work-groups: same value to rounding */
    clsynth_ctx *c = clsynth_test_ctx();
    clsynth_ctx_emulate_limits(c, 24, 0);
    clsynth_tensor *x2 = clsynth_tensor_from_host(c, "x", 1, 1, 1, (int)n, hx);
    clsynth_tensor *s2 = clsynth_sum(c, x2);
    float v2 = NAN;
    ck_assert_msg(s2 && clsynth_scalar(c, s2, &v2) == 0, "%s", c->err.msg);
    double ref = ref_loss_sum(hx, n);
    ck_assert_msg(fabs(v2 - ref) <= 1e-6 * (double)n * 0.5 && fabs(a - ref) <= 1e-6 * (double)n * 0.5,
                  "sums %.9g (default) and %.9g (24-item groups) vs %.9g", (double)a, (double)v2, ref);
    clsynth_ctx_free(c);
    free(hx);
}
END_TEST

typedef clsynth_tensor *(*loss1_fn)(clsynth_ctx *, clsynth_tensor *);

static clsynth_tensor *fwd_loss1(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    return (*(loss1_fn *)user)(c, in[0]);
}

START_TEST(sum_and_mean_gradients)
{
    /* d sum = 1, d mean = 1/n: linear, atol 1e-4 (loss rounding / eps) */
    float *hx = host_uniform(2 * 3 * 5 * 7, -1.0f, 1.0f, 5);
    clsynth_tensor *x = clsynth_test_input(ctx, "x", 2, 3, 5, 7, hx);
    loss1_fn f = clsynth_sum;
    clsynth_test_gradcheck(ctx, "sum", fwd_loss1, &x, 1, &f, 1e-2f, 1e-4, 1e-3, 8);
    f = clsynth_mean;
    clsynth_test_gradcheck(ctx, "mean", fwd_loss1, &x, 1, &f, 1e-2f, 1e-5, 1e-3, 8);
    clsynth_tensor_free(ctx, x);
    free(hx);
}
END_TEST

/* ---- GAN hinge ---- */

static clsynth_tensor *hinge_real(clsynth_ctx *c, clsynth_tensor *x) { return clsynth_hinge_d(c, x, true); }
static clsynth_tensor *hinge_fake(clsynth_ctx *c, clsynth_tensor *x) { return clsynth_hinge_d(c, x, false); }

START_TEST(hinge_losses_match_reference_and_gradients)
{
    /* forward: rtol 1e-5; gradients: piecewise linear, x kept 0.05 away from +-1 */
    const int N = 2, C = 1, H = 9, W = 7;
    size_t n = (size_t)N * C * H * W;
    float *hx = host_uniform(n, -2.5f, 2.5f, 9);
    away_from(hx, n, 1.0f, 0.05f);
    away_from(hx, n, -1.0f, 0.05f);
    clsynth_tensor *x = clsynth_test_input(ctx, "x", N, C, H, W, hx);
    float r = scalar_of(clsynth_hinge_d(ctx, x, true)), f = scalar_of(clsynth_hinge_d(ctx, x, false));
    float g = scalar_of(clsynth_hinge_g(ctx, x));
    ck_assert_msg(fabs(r - ref_loss_hinge_d(hx, n, 1)) <= 1e-5 * fabs(ref_loss_hinge_d(hx, n, 1)) + 1e-7, "real %g", r);
    ck_assert_msg(fabs(f - ref_loss_hinge_d(hx, n, 0)) <= 1e-5 * fabs(ref_loss_hinge_d(hx, n, 0)) + 1e-7, "fake %g", f);
    ck_assert_msg(fabs(g - ref_loss_hinge_g(hx, n)) <= 1e-5 * fabs(ref_loss_hinge_g(hx, n)) + 1e-7, "g %g", g);
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    loss1_fn fn = hinge_real;
    clsynth_test_gradcheck(ctx, "hinge_d real", fwd_loss1, &x, 1, &fn, 1e-2f, 1e-5, 1e-3, 16);
    fn = hinge_fake;
    clsynth_test_gradcheck(ctx, "hinge_d fake", fwd_loss1, &x, 1, &fn, 1e-2f, 1e-5, 1e-3, 16);
    fn = clsynth_hinge_g;
    clsynth_test_gradcheck(ctx, "hinge_g", fwd_loss1, &x, 1, &fn, 1e-2f, 1e-5, 1e-3, 16);
    clsynth_tensor_free(ctx, x);
    free(hx);
}
END_TEST

START_TEST(hinge_of_a_nan_score_is_nan)
{
    /* a NaN score must not hide behind a finite loss (fmax alone would clip it):
     * the trainer's NaN check reads only the losses */
    float hx[5] = { 0.5f, -3.0f, NAN, 2.0f, 0.0f };
    clsynth_tensor *x = clsynth_test_input(ctx, "x", 1, 1, 1, 5, hx);
    ck_assert(isnan(scalar_of(clsynth_hinge_d(ctx, x, true))));
    ck_assert(isnan(scalar_of(clsynth_hinge_d(ctx, x, false))));
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    clsynth_tensor_free(ctx, x);
}
END_TEST

/* ---- two-input losses ---- */

typedef clsynth_tensor *(*loss2_fn)(clsynth_ctx *, clsynth_tensor *, clsynth_tensor *);

static clsynth_tensor *fwd_loss2(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    return (*(loss2_fn *)user)(c, in[0], in[1]);
}

START_TEST(l1_mse_kl_match_reference_and_gradients)
{
    /* forward rtol 1e-5; gradients to both inputs (a - b kept 0.05 from 0 for L1) */
    const int N = 2, C = 5, H = 3, W = 7;
    size_t n = (size_t)N * C * H * W;
    float *ha = host_uniform(n, -1.0f, 1.0f, 11), *hb = host_uniform(n, -1.0f, 1.0f, 12);
    for (size_t i = 0; i < n; i++)
        if (fabsf(ha[i] - hb[i]) < 0.05f)
            ha[i] = hb[i] + (ha[i] < hb[i] ? -0.05f : 0.05f);
    clsynth_tensor *in[2] = { clsynth_test_input(ctx, "a", N, C, H, W, ha), clsynth_test_input(ctx, "b", N, C, H, W, hb) };
    struct { const char *name; loss2_fn fn; double ref; } cases[3] = {
        { "l1_loss", clsynth_l1_loss, ref_loss_l1(ha, hb, n) },
        { "mse_loss", clsynth_mse_loss, ref_loss_mse(ha, hb, n) },
        { "kl_loss", clsynth_kl_loss, ref_loss_kl(ha, hb, n) },
    };
    for (int t = 0; t < 3; t++) {
        float v = scalar_of(cases[t].fn(ctx, in[0], in[1]));
        ck_assert_msg(fabs(v - cases[t].ref) <= 1e-5 * fabs(cases[t].ref) + 1e-7, "%s: %.9g vs %.9g", cases[t].name,
                      (double)v, cases[t].ref);
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
        clsynth_test_gradcheck(ctx, cases[t].name, fwd_loss2, in, 2, &cases[t].fn, 1e-2f, 2e-4, 2e-3, 12);
    }
    ck_assert_ptr_null(clsynth_l1_loss(ctx, in[0], clsynth_tensor_new(ctx, "short", 1, 5, 3, 7)));
    ck_assert_msg(strstr(ctx->err.msg, "l1_loss") && strstr(ctx->err.msg, "'short' (1, 5, 3, 7)"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_release_activations(ctx);
    clsynth_tensor_free(ctx, in[0]);
    clsynth_tensor_free(ctx, in[1]);
    free(ha);
    free(hb);
}
END_TEST

START_TEST(l1_gradient_of_equal_values_is_zero)
{
    float h[5] = { 0.5f, -1.0f, 2.0f, 0.0f, 3.0f };
    float hb[5] = { 0.5f, -1.0f, 1.0f, 0.0f, 4.0f };
    clsynth_tensor *a = clsynth_test_input(ctx, "a", 1, 1, 1, 5, h), *b = clsynth_test_input(ctx, "b", 1, 1, 1, 5, hb);
    ck_assert_int_eq(clsynth_backward(ctx, clsynth_l1_loss(ctx, a, b)), 0);
    float ga[5], gb[5];
    clsynth_tensor_download(ctx, a->grad, ga);
    clsynth_tensor_download(ctx, b->grad, gb);
    const float e[5] = { 0.0f, 0.0f, 0.2f, 0.0f, -0.2f };
    for (int i = 0; i < 5; i++)
        ck_assert_msg(ga[i] == e[i] && gb[i] == -e[i], "element %d: %g %g", i, (double)ga[i], (double)gb[i]);
    clsynth_tensor_free(ctx, a);
    clsynth_tensor_free(ctx, b);
}
END_TEST

/* ---- channel dot ---- */

START_TEST(channel_dot_matches_reference_and_gradients)
{
    /* forward: atol 1e-5 + rtol 1e-5; C = 3, 17 (serial path) and 129 (work-group path) */
    const int Cs[3] = { 3, 17, 129 };
    for (int t = 0; t < 3; t++) {
        const int N = 2, C = Cs[t], H = 5, W = 3, HW = 15;
        size_t n = (size_t)N * C * HW;
        float *ha = host_uniform(n, -1.0f, 1.0f, 20 + t), *hb = host_uniform(n, -1.0f, 1.0f, 30 + t);
        clsynth_tensor *in[2] = { clsynth_test_input(ctx, "a", N, C, H, W, ha), clsynth_test_input(ctx, "b", N, C, H, W, hb) };
        clsynth_tensor *y = clsynth_channel_dot(ctx, in[0], in[1]);
        ck_assert_msg(y && y->n == N && y->c == 1 && y->h == H && y->w == W, "%s", ctx->err.msg);
        float *hy = clsynth_test_download(ctx, y), ref[2 * 15];
        ref_loss_channel_dot(ha, hb, N, C, HW, ref);
        clsynth_test_assert_close("channel_dot", hy, ref, (size_t)N * HW, 1e-5, 1e-5);
        free(hy);
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
        loss2_fn f = clsynth_channel_dot;
        clsynth_test_gradcheck(ctx, "channel_dot", fwd_loss2, in, 2, &f, 1e-2f, 2e-3, 2e-3, 8);
        clsynth_tensor_free(ctx, in[0]);
        clsynth_tensor_free(ctx, in[1]);
        free(ha);
        free(hb);
    }
}
END_TEST

/* ---- cross-entropy ---- */

typedef struct ce_case {
    clsynth_tensor *labels;
    int ignore;
} ce_case;

static clsynth_tensor *fwd_ce(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    ce_case *cc = user;
    return clsynth_cross_entropy(c, in[0], cc->labels, cc->ignore);
}

/* labels in [0, K) with every 4th pixel = ignore */
static float *make_labels(int N, int HW, int K, int ignore, uint64_t seed)
{
    float *l = host_uniform((size_t)N * HW, 0.0f, (float)K, seed);
    for (int i = 0; i < N * HW; i++)
        l[i] = i % 4 == 1 ? (float)ignore : floorf(l[i]);
    return l;
}

START_TEST(cross_entropy_matches_reference_with_ignored_pixels)
{
    /* loss rtol 1e-5; gradient atol 1e-6 + rtol 1e-4 vs the analytic softmax - onehot */
    const int N = 2, K = 17, H = 9, W = 7, HW = 63, ignore = 255;
    size_t n = (size_t)N * K * HW;
    float *hz = host_uniform(n, -6.0f, 6.0f, 40);
    hz[5] = 80.0f; /* large logits stay finite (log-sum-exp is shifted by the max) */
    float *hl = make_labels(N, HW, K, ignore, 41);
    clsynth_tensor *z = clsynth_test_input(ctx, "logits", N, K, H, W, hz);
    clsynth_tensor *lab = clsynth_tensor_new_persistent(ctx, "labels", N, 1, H, W);
    clsynth_tensor_upload(ctx, lab, hl);
    float *refg = malloc(n * sizeof *refg);
    double ref = ref_loss_cross_entropy(hz, hl, N, K, HW, ignore, refg);
    clsynth_tensor *loss = clsynth_cross_entropy(ctx, z, lab, ignore);
    float v = scalar_of(loss);
    ck_assert_msg(isfinite(v) && fabs(v - ref) <= 1e-5 * fabs(ref), "cross_entropy %.9g vs %.9g", (double)v, ref);
    ck_assert_int_eq(clsynth_backward(ctx, loss), 0);
    float *g = clsynth_test_download(ctx, z->grad);
    clsynth_test_assert_close("d cross_entropy / d logits", g, refg, n, 1e-6, 1e-4);
    free(g);
    clsynth_tensor_free(ctx, z);
    clsynth_tensor_free(ctx, lab);
    free(hz);
    free(hl);
    free(refg);
}
END_TEST

START_TEST(cross_entropy_gradient_by_finite_differences)
{
    const int N = 2, K = 5, H = 3, W = 5, HW = 15, ignore = -1;
    float *hz = host_uniform((size_t)N * K * HW, -2.0f, 2.0f, 50);
    float *hl = make_labels(N, HW, K, ignore, 51);
    clsynth_tensor *z = clsynth_test_input(ctx, "logits", N, K, H, W, hz);
    ce_case cc = { clsynth_tensor_new_persistent(ctx, "labels", N, 1, H, W), ignore };
    clsynth_tensor_upload(ctx, cc.labels, hl);
    clsynth_test_gradcheck(ctx, "cross_entropy", fwd_ce, &z, 1, &cc, 1e-2f, 1e-4, 2e-3, 20);
    clsynth_tensor_free(ctx, z);
    clsynth_tensor_free(ctx, cc.labels);
    free(hz);
    free(hl);
}
END_TEST

START_TEST(cross_entropy_of_only_ignored_pixels_is_zero)
{
    const int N = 2, K = 3, H = 3, W = 3;
    float hz[54], hl[18];
    clsynth_test_fill_uniform(hz, 54, -1.0f, 1.0f, 60);
    for (int i = 0; i < 18; i++)
        hl[i] = 255.0f;
    clsynth_tensor *z = clsynth_test_input(ctx, "logits", N, K, H, W, hz);
    clsynth_tensor *lab = clsynth_tensor_new_persistent(ctx, "labels", N, 1, H, W);
    clsynth_tensor_upload(ctx, lab, hl);
    clsynth_tensor *loss = clsynth_cross_entropy(ctx, z, lab, 255);
    ck_assert(scalar_of(loss) == 0.0f);
    ck_assert_int_eq(clsynth_backward(ctx, loss), 0);
    float g[54];
    clsynth_tensor_download(ctx, z->grad, g);
    for (int i = 0; i < 54; i++)
        ck_assert(g[i] == 0.0f);
    clsynth_tensor_free(ctx, z);
    clsynth_tensor_free(ctx, lab);
}
END_TEST

START_TEST(cross_entropy_names_a_bad_label)
{
    const int N = 2, K = 5, H = 3, W = 3;
    float hz[90], hl[18];
    clsynth_test_fill_uniform(hz, 90, -1.0f, 1.0f, 70);
    const float bad[3] = { 7.0f, 2.5f, -1.0f };
    const char *text[3] = { "value 7 ", "value 2.5 ", "value -1 " };
    clsynth_tensor *z = clsynth_test_input(ctx, "logits", N, K, H, W, hz);
    clsynth_tensor *lab = clsynth_tensor_new_persistent(ctx, "seg_labels", N, 1, H, W);
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < 18; i++)
            hl[i] = (float)(i % K);
        hl[13] = bad[t]; /* n 1, h 1, w 1 */
        hl[16] = 9.0f;   /* a later bad pixel: the first one is reported */
        clsynth_tensor_upload(ctx, lab, hl);
        ck_assert_ptr_null(clsynth_cross_entropy(ctx, z, lab, 255));
        ck_assert_msg(strstr(ctx->err.msg, "cross_entropy") && strstr(ctx->err.msg, "seg_labels") &&
                          strstr(ctx->err.msg, text[t]) && strstr(ctx->err.msg, "(n 1, h 1, w 1)") &&
                          strstr(ctx->err.msg, "[0, 5)"), "message: %s", ctx->err.msg);
        clsynth_ctx_clear_error(ctx);
        clsynth_release_activations(ctx);
    }
    clsynth_tensor_free(ctx, z);
    clsynth_tensor_free(ctx, lab);
}
END_TEST

START_TEST(gradients_accumulate_into_existing_gradients)
{
    const int N = 2, C = 5, H = 3, W = 3;
    size_t n = (size_t)N * C * H * W;
    float *ha = host_uniform(n, -0.5f, 0.5f, 81), *hb = host_uniform(n, -0.5f, 0.5f, 82);
    clsynth_tensor *in[2] = { clsynth_test_input(ctx, "a", N, C, H, W, ha), clsynth_test_input(ctx, "b", N, C, H, W, hb) };
    loss1_fn f1[4] = { clsynth_sum, clsynth_mean, hinge_fake, clsynth_hinge_g };
    for (int t = 0; t < 4; t++)
        check_accumulates("one-input loss", fwd_loss1, in, 1, &f1[t]);
    loss2_fn f2[4] = { clsynth_l1_loss, clsynth_mse_loss, clsynth_kl_loss, clsynth_channel_dot };
    for (int t = 0; t < 4; t++)
        check_accumulates("two-input loss", fwd_loss2, in, 2, &f2[t]);
    float hl[18];
    for (int i = 0; i < 18; i++)
        hl[i] = (float)(i % C);
    ce_case cc = { clsynth_tensor_new_persistent(ctx, "labels", N, 1, H, W), 255 };
    clsynth_tensor_upload(ctx, cc.labels, hl);
    check_accumulates("cross_entropy", fwd_ce, in, 1, &cc);
    clsynth_tensor_free(ctx, cc.labels);
    clsynth_tensor_free(ctx, in[0]);
    clsynth_tensor_free(ctx, in[1]);
    free(ha);
    free(hb);
}
END_TEST

/* A fresh gradient is stored by the backward kernel (no zero fill first); an
 * input given twice gets both terms: kl_loss(t, t) = -0.5 sum(1 + t - t^2 - e^t),
 * d/dt = t - 0.5 (1 - e^t) (mu's term, then logvar's); channel_dot(t, t) per
 * pixel sum_c t^2: its backward from a seed g, 2 g t. */
START_TEST(fresh_gradients_are_stored_and_an_input_given_twice_gets_both_terms)
{
    const int N = 2, C = 3, H = 3, W = 5;
    const size_t n = (size_t)N * C * H * W;
    float *ht = host_uniform(n, -0.5f, 0.5f, 91), *hg = host_uniform((size_t)N * H * W, -1.0f, 1.0f, 92);
    clsynth_tensor *t = clsynth_test_input(ctx, "t", N, C, H, W, ht);
    clsynth_tensor *kl = clsynth_kl_loss(ctx, t, t);
    ck_assert_msg(kl != NULL, "%s", ctx->err.msg);
    clsynth_finish(ctx);
    unsigned long l0 = ctx->launches;
    ck_assert_msg(clsynth_backward(ctx, kl) == 0, "%s", ctx->err.msg);
    ck_assert_msg(ctx->launches - l0 == 2, "kl_loss backward: %lu launches (the seed's fill and one)",
                  ctx->launches - l0);
    float *got = clsynth_test_download(ctx, t->grad), *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++)
        want[i] = (float)(ht[i] - 0.5 * (1.0 - exp((double)ht[i])));
    clsynth_test_assert_close("kl_loss(t, t) gradient", got, want, n, 1e-6, 1e-5);
    free(got);
    clsynth_release_activations(ctx);
    clsynth_tensor_free(ctx, t);
    t = clsynth_test_input(ctx, "t", N, C, H, W, ht);
    clsynth_tensor *seed = clsynth_tensor_from_host(ctx, "seed", N, 1, H, W, hg);
    clsynth_tensor *dot = clsynth_channel_dot(ctx, t, t);
    ck_assert_msg(dot != NULL && seed != NULL, "%s", ctx->err.msg);
    clsynth_finish(ctx);
    l0 = ctx->launches;
    ck_assert_msg(clsynth_backward_with(ctx, dot, seed) == 0, "%s", ctx->err.msg);
    ck_assert_msg(ctx->launches - l0 == 2, "channel_dot backward: %lu launches (the seed's copy and one)",
                  ctx->launches - l0);
    got = clsynth_test_download(ctx, t->grad);
    for (size_t i = 0; i < n; i++) {
        const size_t hw = i % (size_t)(H * W), b = i / (size_t)(C * H * W);
        want[i] = 2.0f * hg[b * (size_t)(H * W) + hw] * ht[i];
    }
    clsynth_test_assert_close("channel_dot(t, t) gradient", got, want, n, 1e-6, 1e-6);
    free(got);
    free(want);
    clsynth_release_activations(ctx);
    clsynth_tensor_free(ctx, t);
    free(ht);
    free(hg);
}
END_TEST

START_TEST(scalar_requires_one_element)
{
    clsynth_tensor *t = clsynth_tensor_new(ctx, "pair", 1, 2, 1, 1);
    float v;
    ck_assert_int_eq(clsynth_scalar(ctx, t, &v), -1);
    ck_assert_msg(strstr(ctx->err.msg, "'pair' (1, 2, 1, 1)"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_release_activations(ctx);
}
END_TEST

int main(void)
{
    return clsynth_test_main("loss", &ctx, 300,
                             CLSYNTH_TEST_LIST(sum_and_mean_at_sizes_that_are_not_multiples_of_the_work_group,
                                               hinge_of_a_nan_score_is_nan,
                                               sum_is_bitwise_repeatable_and_close_under_other_work_groups,
                                               sum_and_mean_gradients,
                                               hinge_losses_match_reference_and_gradients,
                                               l1_mse_kl_match_reference_and_gradients,
                                               l1_gradient_of_equal_values_is_zero,
                                               channel_dot_matches_reference_and_gradients,
                                               cross_entropy_matches_reference_with_ignored_pixels,
                                               cross_entropy_gradient_by_finite_differences,
                                               cross_entropy_of_only_ignored_pixels_is_zero,
                                               cross_entropy_names_a_bad_label,
                                               gradients_accumulate_into_existing_gradients,
                                               fresh_gradients_are_stored_and_an_input_given_twice_gets_both_terms,
                                               scalar_requires_one_element));
}
