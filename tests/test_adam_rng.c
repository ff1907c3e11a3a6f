/* Adam, the counter-based RNG, Xavier init and the reparameterization
 * (clcore/ops_adam.c, clcore/ops_rng.c) vs tests/ref_adam.c and tests/ref_rng.c.
 * CLSYNTH_OCLGRIND_OK: under Oclgrind the sizes shrink (clsynth_test_under_oclgrind). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/params.h"
#include "clcore/program.h"
#include "ref_adam.h"
#include "ref_rng.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static size_t big(size_t n, size_t tiny) { return clsynth_test_under_oclgrind() ? tiny : n; }

#define check_accumulates(what, fn, in, n_in, user) \
    clsynth_test_check_accumulates(ctx, what, fn, in, n_in, user)

/* ---- Philox ---- */

START_TEST(philox_reference_matches_random123_known_answers)
{
    /* Random123 kat_vectors, philox4x32_10 */
    const uint32_t ctr[3][4] = { { 0, 0, 0, 0 },
                                 { 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu },
                                 { 0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u } };
    const uint32_t key[3][2] = { { 0, 0 }, { 0xffffffffu, 0xffffffffu }, { 0xa4093822u, 0x299f31d0u } };
    const uint32_t want[3][4] = { { 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u },
                                  { 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu },
                                  { 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u } };
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        ref_philox4x32_10(ctr[t], key[t], out);
        for (int l = 0; l < 4; l++)
            ck_assert_msg(out[l] == want[t][l], "vector %d lane %d: %08x, want %08x", t, l, out[l], want[t][l]);
    }
}
END_TEST

/* Raw device bits of elements [0, n) of (seed, stream) written at tensor t,
 * launched with work-groups of `local` items (0: the launch default). */
static uint32_t *device_bits(clsynth_ctx *c, clsynth_tensor *t, uint64_t seed, uint64_t stream, size_t local)
{
    cl_kernel k = clsynth_kernel_get(c, "rng.cl", "rng_bits", NULL);
    clsynth_args a = clsynth_args_begin(c, k, "rng_bits");
    clsynth_arg_tensor(&a, t);
    clsynth_arg_int(&a, (int)t->numel);
    clsynth_arg_uint(&a, (cl_uint)seed);
    clsynth_arg_uint(&a, (cl_uint)(seed >> 32));
    clsynth_arg_uint(&a, (cl_uint)stream);
    clsynth_arg_uint(&a, (cl_uint)(stream >> 32));
    size_t blocks = (t->numel + 3) / 4;
    ck_assert_msg(clsynth_launch(&a, 1, &blocks, local ? &local : NULL, 0, NULL) == 0, "%s", c->err.msg);
    uint32_t *h = malloc(t->numel * sizeof *h);
    ck_assert_int_eq(clsynth_tensor_download(c, t, (float *)h), 0);
    return h;
}

START_TEST(device_generator_matches_reference_bit_for_bit)
{
    /* raw bits and uniform [0, 1): exact; normals: atol 1e-5 + rtol 1e-5 */
    const uint64_t seed = 0x0123456789abcdefULL, stream = 0xfedcba9876543210ULL;
    size_t n = big(100003, 1003);
    clsynth_tensor *t = clsynth_tensor_new(ctx, "r", 1, 1, 1, (int)n);
    uint32_t *bits = device_bits(ctx, t, seed, stream, 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(bits[i] == ref_rng_bits(seed, stream, i), "bits of element %zu", i);
    /* explicit odd work-group sizes: the same bits */
    const size_t locals[3] = { 1, 3, 7 };
    for (int l = 0; l < 3; l++) {
        uint32_t *b2 = device_bits(ctx, t, seed, stream, locals[l]);
        ck_assert_msg(memcmp(b2, bits, n * sizeof *b2) == 0, "bits differ with work-groups of %zu", locals[l]);
        free(b2);
    }
    ck_assert_int_eq(clsynth_rand_uniform(ctx, t, 0.0f, 1.0f, seed, stream), 0);
    float *u = clsynth_test_download(ctx, t);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(u[i] == ref_rng_uniform01(seed, stream, i), "uniform %zu: %.9g vs %.9g", i, (double)u[i],
                      (double)ref_rng_uniform01(seed, stream, i));
    ck_assert_int_eq(clsynth_rand_normal(ctx, t, 0.0f, 1.0f, seed, stream), 0);
    float *z = clsynth_test_download(ctx, t), *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++)
        ref[i] = (float)ref_rng_normal(seed, stream, i);
    clsynth_test_assert_close("normal", z, ref, n, 1e-5, 1e-5);
    /* a view at an odd offset holds the same numbers: element i depends only on i */
    clsynth_tensor *v = clsynth_tensor_view(ctx, t, "v", 3, 1, 1, 1, 37);
    ck_assert_int_eq(clsynth_rand_normal(ctx, v, 0.0f, 1.0f, seed, stream), 0);
    float *zv = clsynth_test_download(ctx, v);
    ck_assert(memcmp(zv, z, 37 * sizeof *zv) == 0);
    free(bits);
    free(u);
    free(z);
    free(zv);
    free(ref);
    clsynth_release_activations(ctx);
}
END_TEST

START_TEST(random_numbers_do_not_depend_on_the_work_group_size)
{
    size_t n = big(4099, 203);
    clsynth_tensor *t = clsynth_tensor_new_persistent(ctx, "r", 1, 1, 1, (int)n);
    ck_assert_int_eq(clsynth_rand_normal(ctx, t, 0.5f, 2.0f, 42, 7), 0);
    float *base = clsynth_test_download(ctx, t);
    ck_assert_int_eq(clsynth_rand_uniform(ctx, t, -3.0f, 5.0f, 42, 7), 0);
    float *ubase = clsynth_test_download(ctx, t);
    clsynth_tensor_free(ctx, t);
    const size_t limits[3] = { 1, 3, 32 };
    for (int i = 0; i < 3; i++) {
        clsynth_ctx *c = clsynth_test_ctx();
        clsynth_ctx_emulate_limits(c, limits[i], 0);
        clsynth_tensor *t2 = clsynth_tensor_new(c, "r", 1, 1, 1, (int)n);
        ck_assert_int_eq(clsynth_rand_normal(c, t2, 0.5f, 2.0f, 42, 7), 0);
        float *h = malloc(n * sizeof *h);
        ck_assert_int_eq(clsynth_tensor_download(c, t2, h), 0);
        ck_assert_msg(memcmp(h, base, n * sizeof *h) == 0, "normals differ with work-groups of %zu", limits[i]);
        ck_assert_int_eq(clsynth_rand_uniform(c, t2, -3.0f, 5.0f, 42, 7), 0);
        ck_assert_int_eq(clsynth_tensor_download(c, t2, h), 0);
        ck_assert_msg(memcmp(h, ubase, n * sizeof *h) == 0, "uniforms differ with work-groups of %zu", limits[i]);
        free(h);
        clsynth_ctx_free(c);
    }
    free(base);
    free(ubase);
}
END_TEST

static void moments(const float *x, size_t n, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        s2 += (x[i] - *mean) * (x[i] - *mean);
    *sd = sqrt(s2 / (double)(n - 1));
}

START_TEST(moments_of_a_million_samples)
{
    /* 1e6 samples: standard error of the mean 1e-3 (normal) -> bounds of 5 sigma */
    size_t n = big(1000000, 20000);
    double tol = 5.0 / sqrt((double)n);
    clsynth_tensor *t = clsynth_tensor_new(ctx, "r", 1, 1, 1, (int)n);
    ck_assert_int_eq(clsynth_rand_normal(ctx, t, 1.5f, 3.0f, 2024, 1), 0);
    float *h = clsynth_test_download(ctx, t);
    double m, sd;
    moments(h, n, &m, &sd);
    ck_assert_msg(fabs(m - 1.5) < 3.0 * tol && fabs(sd - 3.0) < 3.0 * tol, "normal mean %g sd %g", m, sd);
    ck_assert_int_eq(clsynth_rand_uniform(ctx, t, -1.0f, 3.0f, 2024, 2), 0);
    ck_assert_int_eq(clsynth_tensor_download(ctx, t, h), 0);
    moments(h, n, &m, &sd);
    double usd = 4.0 / sqrt(12.0);
    ck_assert_msg(fabs(m - 1.0) < usd * tol && fabs(sd - usd) < usd * tol, "uniform mean %g sd %g", m, sd);
    for (size_t i = 0; i < n; i++)
        ck_assert(h[i] >= -1.0f && h[i] < 3.0f);
    /* other seeds / streams give other numbers */
    float first = h[0];
    ck_assert_int_eq(clsynth_rand_uniform(ctx, t, -1.0f, 3.0f, 2024, 3), 0);
    ck_assert_int_eq(clsynth_tensor_download(ctx, t, h), 0);
    ck_assert(h[0] != first);
    free(h);
    clsynth_release_activations(ctx);
}
END_TEST

START_TEST(xavier_std_follows_the_formula)
{
    /* std = gain * sqrt(2 / (fan_in + fan_out)), fan_in = Cin*KH*KW, fan_out = Cout*KH*KW: within 2% */
    const int shapes[3][4] = { { 64, 32, 3, 3 }, { 256, 129, 1, 1 }, { 5, 3, 3, 3 } };
    int count = clsynth_test_under_oclgrind() ? 1 : 2;
    clsynth_param_group *g = clsynth_group_new(ctx, "G");
    clsynth_tensor *w[3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        w[i] = clsynth_group_param(ctx, g, name, shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3]);
    }
    ck_assert_int_eq(clsynth_group_finalize(ctx, g), 0);
    for (int i = 0; i < count; i++) {
        ck_assert_int_eq(clsynth_init_xavier(ctx, w[i], 0.02f, 99, (uint64_t)i), 0);
        float *h = clsynth_test_download(ctx, w[i]);
        double m, sd;
        moments(h, w[i]->numel, &m, &sd);
        double rf = shapes[i][2] * shapes[i][3];
        double want = 0.02 * sqrt(2.0 / (shapes[i][1] * rf + shapes[i][0] * rf));
        ck_assert_msg(fabs(sd - want) <= 0.02 * want, "xavier %d: sd %g, formula %g", i, sd, want);
        ck_assert_msg(fabs(m) <= 5.0 * want / sqrt((double)w[i]->numel), "xavier %d: mean %g", i, m);
        free(h);
    }
    /* initializing one parameter leaves its neighbours in the flat buffer alone */
    float *h2 = clsynth_test_download(ctx, w[2]);
    for (size_t i = 0; i < w[2]->numel; i++)
        ck_assert(h2[i] == 0.0f);
    free(h2);
    clsynth_group_free(ctx, g);
}
END_TEST

/* ---- Adam ---- */

static void adam_case(float beta1, float beta2, float lr, int steps)
{
    /* tolerance: params, m, v within 1e-6 relative (atol 1e-9) of the double reference */
    clsynth_param_group *g = clsynth_group_new(ctx, "G");
    clsynth_tensor *a = clsynth_group_param(ctx, g, "a", 5, 3, 3, 3);
    clsynth_tensor *b = clsynth_group_param(ctx, g, "b", 1, 17, 1, 1);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(clsynth_group_finalize(ctx, g), 0);
    g->beta1 = beta1;
    g->beta2 = beta2;
    g->lr = lr;
    size_t n = g->total;
    float *p = malloc(n * sizeof *p), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    float *gr = malloc(n * sizeof *gr);
    clsynth_test_fill_uniform(p, n, -1.0f, 1.0f, 1);
    ck_assert_int_eq(clsynth_tensor_upload(ctx, g->flat_data, p), 0);
    for (int s = 0; s < steps; s++) {
        clsynth_test_fill_uniform(gr, n, -0.1f, 0.1f, 100 + s);
        gr[3] = 0.0f; /* a zero gradient */
        gr[4] = s % 2 ? 1e-4f : -3.0f;
        ck_assert_int_eq(clsynth_tensor_upload(ctx, g->flat_grad, gr), 0);
        ck_assert_int_eq(clsynth_adam_step(ctx, g), 0);
        ck_assert_int_eq(g->step, s + 1);
        ref_adam_step(p, gr, m, v, n, lr, beta1, beta2, g->eps, s + 1);
    }
    float *dp = clsynth_test_download(ctx, g->flat_data), *dm = clsynth_test_download(ctx, g->adam_m);
    float *dv = clsynth_test_download(ctx, g->adam_v);
    char what[64];
    snprintf(what, sizeof what, "adam params (beta1 %g)", (double)beta1);
    clsynth_test_assert_close(what, dp, p, n, 1e-9, 1e-6);
    snprintf(what, sizeof what, "adam m (beta1 %g)", (double)beta1);
    clsynth_test_assert_close(what, dm, m, n, 1e-9, 1e-6);
    snprintf(what, sizeof what, "adam v (beta1 %g)", (double)beta1);
    clsynth_test_assert_close(what, dv, v, n, 1e-12, 1e-6);
    free(p);
    free(m);
    free(v);
    free(gr);
    free(dp);
    free(dm);
    free(dv);
    clsynth_group_free(ctx, g);
}

START_TEST(adam_matches_torch_with_beta1_zero)
{
    adam_case(0.0f, 0.999f, 4e-4f, 5);
}
END_TEST

START_TEST(adam_matches_torch_with_beta1_half_and_default_betas)
{
    adam_case(0.5f, 0.999f, 1e-4f, 5);
    adam_case(0.9f, 0.99f, 1e-3f, 7);
}
END_TEST

START_TEST(adam_first_step_moves_each_parameter_by_lr)
{
    /* with bias correction the first step is lr * g / (|g| + eps') = +-lr */
    clsynth_param_group *g = clsynth_group_new(ctx, "G");
    clsynth_group_param(ctx, g, "w", 1, 1, 1, 3);
    ck_assert_int_eq(clsynth_group_finalize(ctx, g), 0);
    g->lr = 0.01f;
    g->beta1 = 0.5f;
    float gr[3] = { 2.0f, -0.5f, 0.0f }, p[3];
    clsynth_tensor_upload(ctx, g->flat_grad, gr);
    ck_assert_int_eq(clsynth_adam_step(ctx, g), 0);
    clsynth_tensor_download(ctx, g->flat_data, p);
    ck_assert_msg(fabsf(p[0] + 0.01f) < 1e-7f && fabsf(p[1] - 0.01f) < 1e-7f && p[2] == 0.0f, "%g %g %g",
                  (double)p[0], (double)p[1], (double)p[2]);
    clsynth_group_free(ctx, g);
}
END_TEST

/* ---- reparameterization ---- */

static clsynth_tensor *fwd_reparam(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    (void)user;
    return clsynth_reparameterize(c, in[0], in[1], 1234, 5);
}

START_TEST(reparameterize_forward_and_gradients)
{
    /* forward vs mu + eps * exp(0.5 logvar) with eps from the reference RNG: atol 1e-5, rtol 1e-5 */
    const int N = 2, C = 17, H = 1, W = 3;
    size_t n = (size_t)N * C * H * W;
    float *hm = malloc(n * sizeof *hm), *hl = malloc(n * sizeof *hl), *ref = malloc(n * sizeof *ref);
    clsynth_test_fill_uniform(hm, n, -1.0f, 1.0f, 1);
    clsynth_test_fill_uniform(hl, n, -2.0f, 1.0f, 2);
    clsynth_tensor *in[2] = { clsynth_test_input(ctx, "mu", N, C, H, W, hm), clsynth_test_input(ctx, "logvar", N, C, H, W, hl) };
    clsynth_tensor *y = clsynth_reparameterize(ctx, in[0], in[1], 1234, 5);
    ck_assert_msg(y != NULL, "%s", ctx->err.msg);
    float *hy = clsynth_test_download(ctx, y);
    for (size_t i = 0; i < n; i++)
        ref[i] = (float)(hm[i] + ref_rng_normal(1234, 5, i) * exp(0.5 * hl[i]));
    clsynth_test_assert_close("reparameterize", hy, ref, n, 1e-5, 1e-5);
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    clsynth_test_gradcheck(ctx, "reparameterize", fwd_reparam, in, 2, NULL, 1e-2f, 1e-4, 2e-3, 12);
    check_accumulates("reparameterize", fwd_reparam, in, 2, NULL);
    clsynth_tensor_free(ctx, in[0]);
    clsynth_tensor_free(ctx, in[1]);
    free(hm);
    free(hl);
    free(ref);
    free(hy);
}
END_TEST

int main(void)
{
    return clsynth_test_main("adam_rng", &ctx, 300,
                             CLSYNTH_TEST_LIST(philox_reference_matches_random123_known_answers,
                                               device_generator_matches_reference_bit_for_bit,
                                               random_numbers_do_not_depend_on_the_work_group_size,
                                               moments_of_a_million_samples,
                                               xavier_std_follows_the_formula,
                                               adam_matches_torch_with_beta1_zero,
                                               adam_matches_torch_with_beta1_half_and_default_betas,
                                               adam_first_step_moves_each_parameter_by_lr,
                                               reparameterize_forward_and_gradients));
}
