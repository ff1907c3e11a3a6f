/* Half-precision storage of the activations kept for backward
 * (clsynth_stash_newer_as_half, kernels/half.cl, --half_activations): the
 * conversion against a plain-C float -> half -> float reference, an op
 * chain's gradients and a training step with and without it, and the refusal
 * on a device without cl_khr_fp16.
 *
 * Tolerance. Half storage keeps 11 significant bits of x 2^k (k a power of
 * two per run of 16 elements that brings the run's largest value near 2^14,
 * kernels/half.cl): a stored value is v (1 + d) with |d| <= u = 2^-11 (round
 * to nearest even), for every value within 2^-28 of its run's largest. Compute is float, so
 * a gradient element is a sum of products in which each factor read from a
 * stashed tensor carries at most u: with at most K stashed factors along a
 * path its error is at most about K u (sum of |terms|), which for these sums
 * of terms of both signs is taken as K u max|g| of the tensor, + K u |g|:
 *   op chain: K = 8 (7 tensors stashed on its path, rounded up);
 *   training step: K = 16 per parameter tensor. The chain's bound does not
 *     carry over to a network this deep (a product over its layers would
 *     allow hundreds of u); the normalizations keep the errors of stashed
 *     inputs from compounding, and Intel's CPU runtime gives 6.8 u at worst
 *     (G.conv_img.b; the test prints it), so 16 leaves a margin of 2.3. Plus
 *     2 u max|g| of the network: a gradient that vanishes in exact
 *     arithmetic (a bias before a norm, G.fc.b) or nearly (G.fc.w with the
 *     multi-scale D at 32x32, where head_0's batch norm sees 2 values a
 *     channel) is the rounding noise of terms as large as the network's
 *     gradients, each with a stashed factor or two (1.1 u measured there).
 *     With --use_vae G's gradients reach 1.2e4 (G.fc.w) and some tensors'
 *     are small remnants of larger terms (G.up_2.conv_s.w: largest 8.4,
 *     off by 45 u of it, 1.6e-5 of the network's largest): the floor, not
 *     K, covers those; the test prints each variant's worst tensor.
 * Devices that lack cl_khr_fp16 skip (a) to (c) with a message; (d) runs
 * there. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/autograd.h"
#include "clcore/ops.h"
#include "clcore/params.h"
#include "nets/model.h"
#include "nets/model_impl.h"
#include "nets/options.h"
#include "cliutil.h"
#include "nets_fixture.h"
#include "testutil.h"

static clsynth_ctx *ctx;

#define U_HALF (1.0 / 2048.0) /* 2^-11: half's unit roundoff (round to nearest) */

/* 1 (after saying why) when the device lacks cl_khr_fp16. */
static int skip_without_fp16(const char *what)
{
    if (ctx->dev.fp16)
        return 0;
    printf("%s: skipped, the device '%s' does not report cl_khr_fp16 (--half_activations is refused there; "
           "see half_activations_are_refused_without_cl_khr_fp16)\n",
           what, ctx->dev.name);
    return 1;
}

/* ---- plain-C reference: IEEE binary16, round to nearest even ---- */

static uint16_t ref_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (exp == 0xffu) /* inf, or NaN (quiet) */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
    if (exp == 0) /* float zero or subnormal: far below half's smallest subnormal / 2 */
        return sign;
    const uint32_t m = man | 0x800000u; /* 24-bit significand, value m 2^(exp - 150) */
    if (exp <= 112) {                   /* below 2^-14: a half subnormal q 2^-24 */
        const uint32_t shift = 126 - exp; /* q = m 2^(exp - 126) */
        if (shift > 24)
            return sign; /* below 2^-25: rounds to 0 */
        uint32_t q = m >> shift, r = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (r > halfway || (r == halfway && (q & 1)))
            q++;
        return (uint16_t)(sign | q); /* q = 0x400 is the smallest normal, encoded the same */
    }
    int e = (int)exp - 112; /* half exponent field */
    uint32_t q = m >> 13, r = m & 0x1fffu;
    if (r > 0x1000u || (r == 0x1000u && (q & 1)))
        q++;
    if (q == 0x800u) {
        q = 0x400u;
        e++;
    }
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u); /* beyond 65504 (from 65520 on): inf */
    return (uint16_t)(sign | ((uint32_t)e << 10) | (q & 0x3ffu));
}

static float ref_half_to_float(uint16_t h)
{
    const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

static bool half_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

/* n values: special cases first (range ends, overflow, ties, subnormals,
 * zeros, inf, NaN), then ties between random neighbouring halves, then
 * random magnitudes from 2^-30 to 2^17 of either sign. */
static void awkward_values(float *x, int n)
{
    /* run 0 (a NaN in it: not scaled) holds the cases of plain half rounding */
    const float special[] = { NAN, INFINITY, -INFINITY, 65520.0f /* to inf */, 65519.99f /* to 65504 */,
                              ldexpf(1, -14),             /* smallest normal half */
                              ldexpf(1, -14) * 0.999f,    /* just below: subnormal */
                              ldexpf(1, -24),             /* smallest subnormal */
                              ldexpf(1, -25),             /* tie between 0 and it: to 0 */
                              ldexpf(3, -26),             /* 0.75 x smallest: up to it */
                              ldexpf(1, -25) * 1.0001f,   /* just above the tie: up */
                              ldexpf(3, -25),             /* tie between 1 and 2 x smallest: to 2 */
                              1.0f + ldexpf(1, -11),      /* tie: to 1 (even) */
                              1.0f + ldexpf(3, -11),      /* tie: up to 1 + 2^-9 (even) */
                              -1e-40f /* float subnormal: -0 */, 1e-30f,
                              /* run 1: scaled by 2^-15 (its largest is 1e9) */
                              0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, -65504.0f, -65520.0f, 1e6f, -1e9f, 3.14159265f,
                              -2.71828183f, 1e-5f, -7e-6f, 123.456f, 0.1f, -0.3f };
    const int ns = (int)(sizeof special / sizeof special[0]);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const uint32_t r = (uint32_t)(s >> 32);
        if (i < ns) {
            x[i] = special[i];
        } else if (i % 3 == 0) { /* exact midpoint of two neighbouring finite halves */
            uint16_t h = (uint16_t)(r % 0x7bffu);
            float a = ref_half_to_float(h), b = ref_half_to_float((uint16_t)(h + 1));
            x[i] = (r & 0x80000000u) ? -(a + b) / 2 : (a + b) / 2;
        } else {
            float mant = 1.0f + (float)(r & 0xffffffu) / 16777216.0f;
            x[i] = ldexpf(mant, (int)((r >> 24) % 48) - 30) * ((r >> 31) ? -1.0f : 1.0f);
        }
    }
}

/* The power of two by which half storage scales run r of 16 elements
 * (kernels/half.cl): the run's max |x| 2^k in [2^14, 2^15), k at most 127,
 * or 0 when that max is 0, NaN, inf or a float denormal. */
#define RUN 16
static int ref_run_exp(const float *x, int n, int r)
{
    float mx = 0;
    for (int i = r * RUN; i < n && i < (r + 1) * RUN; i++) {
        if (isnan(x[i]))
            return 0;
        mx = fmaxf(mx, fabsf(x[i]));
    }
    if (!(mx >= FLT_MIN) || isinf(mx))
        return 0;
    int k = 14 - ilogbf(mx);
    return k < 127 ? k : 127;
}

/* x (n values) to half storage and back against the reference; returns the
 * number of results that are half subnormals and infinities in *sub, *inf. */
static void roundtrip_case(const char *name, const float *x, int n, int *sub, int *inf)
{
    int kmin = 1000, kmax = -1000;
    float *back = malloc((size_t)n * sizeof *back);
    uint16_t *h = malloc((size_t)n * sizeof *h);
    clsynth_tensor *t = clsynth_tensor_new(ctx, name, 1, 1, 1, n); /* (n) */
    ck_assert_msg(t && clsynth_tensor_upload(ctx, t, x) == 0, "%s", ctx->err.msg);
    size_t before = clsynth_pool_get_stats(ctx).bytes_in_use;
    ck_assert_msg(clsynth_tensor_to_half(ctx, t) == 0, "%s", ctx->err.msg);
    ck_assert(t->flags & CLSYNTH_T_HALF);
    size_t after = clsynth_pool_get_stats(ctx).bytes_in_use;
    ck_assert_msg(after + (size_t)n * 2 - 512 < before, "%s: in use %zu bytes before, %zu after: the float block was "
                  "not given back", name, before, after);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, t->mem, CL_TRUE, 0, (size_t)n * sizeof *h, h, 0, NULL, NULL),
                     CL_SUCCESS);
    *sub = *inf = 0;
    for (int i = 0; i < n; i++) {
        const int k = ref_run_exp(x, n, i / RUN);
        kmin = k < kmin ? k : kmin;
        kmax = k > kmax ? k : kmax;
        uint16_t want = ref_float_to_half(ldexpf(x[i], k));
        if (half_is_nan(want)) {
            ck_assert_msg(half_is_nan(h[i]), "%s element %d: %g stored as 0x%04x, want a NaN", name, i, (double)x[i],
                          h[i]);
            continue;
        }
        ck_assert_msg(h[i] == want, "%s element %d: %.9g (x 2^%d) stored as 0x%04x, the reference rounds to 0x%04x",
                      name, i, (double)x[i], k, h[i], want);
        *sub += (want & 0x7c00) == 0 && (want & 0x3ff);
        *inf += (want & 0x7fff) == 0x7c00;
    }
    /* an op reading it now is refused, naming it */
    ck_assert_int_ne(clsynth_tensor_download(ctx, t, back), 0);
    ck_assert_msg(strstr(ctx->err.msg, name) && strstr(ctx->err.msg, "half"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert(clsynth_scale(ctx, t, 2.0f) == NULL);
    ck_assert_msg(strstr(ctx->err.msg, name), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    /* back to float: exactly the half values, unscaled */
    ck_assert_msg(clsynth_tensor_to_float(ctx, t) == 0 && !(t->flags & CLSYNTH_T_HALF), "%s", ctx->err.msg);
    ck_assert_msg(clsynth_tensor_download(ctx, t, back) == 0, "%s", ctx->err.msg);
    for (int i = 0; i < n; i++) {
        const int k = ref_run_exp(x, n, i / RUN);
        float want = ldexpf(ref_half_to_float(ref_float_to_half(ldexpf(x[i], k))), -k);
        if (isnan(want))
            ck_assert_msg(isnan(back[i]), "%s element %d: %g loaded back as %g", name, i, (double)x[i],
                          (double)back[i]);
        else
            ck_assert_msg(memcmp(&back[i], &want, sizeof want) == 0, "%s element %d: %.9g loaded back as %.9g, want "
                          "%.9g", name, i, (double)x[i], (double)back[i], (double)want);
    }
    printf("half storage '%s': %d values, run scales 2^%d to 2^%d, %d half subnormals, %d infinities: as the "
           "reference\n", name, n, kmin, kmax, *sub, *inf);
    free(back);
    free(h);
}

START_TEST(half_storage_rounds_as_the_reference_and_loads_back_exactly)
{
    if (skip_without_fp16("half storage round trip"))
        return;
    enum { N = 3001 }; /* odd, not a multiple of any work-group size */
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    int sub, inf;
    /* special values; the run with NaN in it is not scaled: plain half semantics */
    awkward_values(x, N);
    roundtrip_case("specials", x, N, &sub, &inf);
    ck_assert_int_gt(sub, 10); /* the awkward values did reach the subnormal range */
    ck_assert_int_eq(inf, 3);  /* inf, -inf and 65520 of the unscaled run */
    /* finite values: scaled so that the largest lands in [2^14, 2^15) */
    for (int i = 0; i < N; i++)
        y[i] = isfinite(x[i]) && fabsf(x[i]) < 65504.0f ? ldexpf(x[i], -40) : 0.0f; /* as small as 1e-22 */
    roundtrip_case("tiny", y, N, &sub, &inf);
    ck_assert_int_eq(inf, 0);
    for (int i = 0; i < N; i++)
        y[i] = isfinite(x[i]) ? x[i] * 1024.0f : 1.0f; /* up to 1e12: half's range scaled down */
    roundtrip_case("large", y, N, &sub, &inf);
    ck_assert_int_eq(inf, 0);
    free(x);
    free(y);
}
END_TEST

/* ---- (b) an op chain ---- */

typedef struct chain {
    clsynth_tensor *x, *w1, *wk, *w2, *b2; /* persistent inputs */
} chain;

/* conv 3x3 -> instance norm -> LReLU -> * sigmoid(itself) [stash: keep h4]
 * -> predicted depthwise kernels conv -> cond dwconv -> conv 1x1; with
 * stash, stashes in the middle (keeping only what the rest reads) and at
 * the end (keeping the output). *stashed: tensors in half storage then. */
static clsynth_tensor *chain_forward(const chain *c, bool stash, int *stashed, size_t *stashed_bytes)
{
    unsigned long mark = ctx->tensor_serial;
    clsynth_tensor *h = clsynth_conv2d(ctx, c->x, c->w1, NULL, 1, 1);    /* (2, 8, 29, 37), no bias before the norm */
    h = clsynth_instance_norm(ctx, h, NULL, NULL, 1e-5f);
    h = clsynth_leaky_relu(ctx, h, 0.2f);
    h = clsynth_mul(ctx, h, clsynth_sigmoid(ctx, h));                  /* (2, 8, 29, 37) */
    if (stash && clsynth_stash_newer_as_half(ctx, mark, &h, 1))
        return NULL;
    clsynth_tensor *k = clsynth_conv2d(ctx, h, c->wk, NULL, 1, 1);       /* (2, 72, 29, 37) */
    clsynth_tensor *d = clsynth_cond_dwconv(ctx, h, k);                  /* (2, 8, 29, 37) */
    clsynth_tensor *y = clsynth_conv2d(ctx, d, c->w2, c->b2, 1, 0);      /* (2, 4, 29, 37) */
    if (stash && clsynth_stash_newer_as_half(ctx, mark, &y, 1))
        return NULL;
    *stashed = 0;
    *stashed_bytes = 0;
    for (clsynth_tensor *t = ctx->live; t; t = t->next_live)
        if (t->flags & CLSYNTH_T_HALF) {
            (*stashed)++;
            *stashed_bytes += t->numel * sizeof(float);
        }
    return y;
}

static float *grads_of(const chain *c, int which)
{
    clsynth_tensor *const p[5] = { c->x, c->w1, c->wk, c->w2, c->b2 };
    return clsynth_test_download(ctx, p[which]->grad);
}

START_TEST(an_op_chain_backward_with_stashing_matches_float)
{
    if (skip_without_fp16("op chain with stashing"))
        return;
    enum { NP = 5 };
    const int shapes[NP][4] = { { 2, 3, 29, 37 }, { 8, 3, 3, 3 }, { 72, 8, 3, 3 }, { 4, 8, 1, 1 }, { 1, 4, 1, 1 } };
    const char *names[NP] = { "x", "w1", "wk", "w2", "b2" };
    chain c;
    clsynth_tensor **slots[NP] = { &c.x, &c.w1, &c.wk, &c.w2, &c.b2 };
    for (int i = 0; i < NP; i++) {
        size_t n = (size_t)shapes[i][0] * shapes[i][1] * shapes[i][2] * shapes[i][3];
        float *h = malloc(n * sizeof *h);
        clsynth_test_fill_uniform(h, n, i == 0 ? -2.0f : -0.5f, i == 0 ? 2.0f : 0.5f, 11 + (uint64_t)i);
        *slots[i] = clsynth_test_input(ctx, names[i], shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], h);
        free(h);
    }
    size_t ny = 2 * 4 * 29 * 37;
    float *r = malloc(ny * sizeof *r);
    clsynth_test_fill_uniform(r, ny, -1, 1, 99);
    clsynth_tensor *seed = clsynth_tensor_new_persistent(ctx, "seed", 2, 4, 29, 37);
    ck_assert_msg(seed && clsynth_tensor_upload(ctx, seed, r) == 0, "%s", ctx->err.msg);
    float *ref[NP], *got[NP], *y_ref = NULL, *y_got = NULL;
    size_t peak[2], rest[2], stashed_bytes = 0;
    int stashed = 0;
    for (int run = 0; run < 2; run++) {
        for (int i = 0; i < NP; i++)
            if ((*slots[i])->grad)
                ck_assert_int_eq(clsynth_tensor_fill(ctx, (*slots[i])->grad, 0.0f), 0);
        size_t base = clsynth_pool_get_stats(ctx).bytes_in_use;
        clsynth_pool_reset_peak(ctx);
        int n_half = 0;
        size_t half_bytes = 0;
        clsynth_tensor *y = chain_forward(&c, run == 1, &n_half, &half_bytes);
        ck_assert_msg(y != NULL, "%s", ctx->err.msg);
        rest[run] = clsynth_pool_get_stats(ctx).bytes_in_use - base; /* held between the passes */
        *(run ? &y_got : &y_ref) = clsynth_test_download(ctx, y);
        /* the backward's peak: the forward's is the same in both runs (it
         * stashes after each op), and may be the higher one where the
         * convolutions hold no column buffer (oneDNN) */
        clsynth_pool_reset_peak(ctx);
        ck_assert_msg(clsynth_backward_with(ctx, y, seed) == 0, "%s", ctx->err.msg);
        peak[run] = clsynth_pool_get_stats(ctx).peak_bytes_in_use - base;
        if (run == 1) {
            stashed = n_half;
            stashed_bytes = half_bytes;
        }
        for (int i = 0; i < NP; i++)
            (run ? got : ref)[i] = grads_of(&c, i);
    }
    printf("op chain: %d tensors stashed (%zu bytes in float); held between the passes %zu bytes in float, %zu "
           "with stashing; backward's peak in use %zu bytes in float, %zu with stashing\n",
           stashed, stashed_bytes, rest[0], rest[1], peak[0], peak[1]);
    ck_assert_int_ge(stashed, 6); /* conv, norm, LReLU, sigmoid, mul, k, dwconv: the test is not vacuous */
    /* a stashed tensor holds 2 bytes a value and 1 per 16 values instead of 4:
     * what the forward leaves for the backward shrinks by about half of it */
    ck_assert_msg(rest[1] + stashed_bytes * 4 / 10 <= rest[0],
                  "held between the passes: %zu bytes with stashing, %zu without (%zu bytes stashed)", rest[1],
                  rest[0], stashed_bytes);
    /* the backward brings back one stashed tensor at a time, for the op that reads it */
    ck_assert_msg(peak[1] < peak[0], "backward's peak %zu bytes with stashing, %zu without", peak[1], peak[0]);
    /* the forward reads no half value: its output is the float one bit for bit */
    ck_assert_msg(memcmp(y_ref, y_got, ny * sizeof *y_ref) == 0, "the chain's output changed with stashing");
    free(y_ref);
    free(y_got);
    const double K = 8, tol = K * U_HALF;
    double worst = 0;
    for (int i = 0; i < NP; i++) {
        size_t n = (size_t)shapes[i][0] * shapes[i][1] * shapes[i][2] * shapes[i][3];
        double mx = 0, diff = 0;
        for (size_t j = 0; j < n; j++)
            mx = fmax(mx, fabs(ref[i][j]));
        for (size_t j = 0; j < n; j++)
            diff = fmax(diff, fabs(got[i][j] - ref[i][j]) / (mx > 0 ? mx : 1));
        worst = fmax(worst, diff);
        char what[64];
        snprintf(what, sizeof what, "gradient of %s with stashing", names[i]);
        clsynth_test_assert_close(what, got[i], ref[i], n, tol * mx, tol);
        free(ref[i]);
        free(got[i]);
    }
    printf("op chain: largest gradient difference %.2e of the tensor's largest gradient (tolerance %.2e = 8 x 2^-11)\n",
           worst, tol);
    ck_assert_msg(worst > 0, "stashing changed no gradient: were the half values read at all?");
    free(r);
    clsynth_tensor_free(ctx, seed);
    for (int i = 0; i < NP; i++)
        clsynth_tensor_free(ctx, *slots[i]);
}
END_TEST

/* ---- (c) a training step ---- */

typedef struct step_result {
    clsynth_losses l;
    float *gm, *dm; /* Adam's m of G and D after the step: the step's gradients (beta1 = 0) */
    size_t ng, nd;
    size_t peak;    /* pool bytes in use at the step's peak, above what was in use before */
    clsynth_model *m;
    clsynth_tensor *seg, *real;
    clsynth_test_scene s;
} step_result;

/* The variants of the step test: the default model, or with spade /
 * multiscale / the VAE encoder. */
typedef enum variant { V_DEFAULT, V_SPADE, V_MULTISCALE, V_VAE } variant;

static void one_step(bool half, variant v, int crop, step_result *r)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, crop);
    o.half_activations = half;
    if (v == V_SPADE)
        snprintf(o.netG, sizeof o.netG, "spade");
    if (v == V_MULTISCALE)
        snprintf(o.netD, sizeof o.netD, "multiscale");
    o.use_vae = v == V_VAE;
    clsynth_model *m = r->m = clsynth_test_model(ctx, &o);
    clsynth_test_scene_make(&r->s, 2, crop, crop);
    clsynth_test_scene_tensors(ctx, m, &r->s, &r->seg, &r->real);
    /* G's Adam step moves each weight by about lr sign(g), and some of G's
     * gradients vanish in exact arithmetic (a bias before a norm): their sign
     * is rounding noise, so D's step would see another G in each run. With
     * G's lr 0 both D steps see the same G and compare like G's. */
    clsynth_model_group(m, "G")->lr = 0.0f;
    size_t base = clsynth_pool_get_stats(ctx).bytes_in_use;
    clsynth_pool_reset_peak(ctx);
    ck_assert_msg(clsynth_train_step(ctx, m, r->seg, r->real, &r->l) == 0, "%s", ctx->err.msg);
    r->peak = clsynth_pool_get_stats(ctx).peak_bytes_in_use - base;
    clsynth_param_group *g = clsynth_model_group(m, "G"), *d = clsynth_model_group(m, "D");
    ck_assert(g->beta1 == 0.0f && d->beta1 == 0.0f); /* TTUR: m is (1 - 0) g */
    r->gm = clsynth_test_download(ctx, g->adam_m);
    r->dm = clsynth_test_download(ctx, d->adam_m);
    r->ng = g->total;
    r->nd = d->total;
}

static void step_result_free(step_result *r)
{
    free(r->gm);
    free(r->dm);
    clsynth_tensor_free(ctx, r->seg);
    clsynth_tensor_free(ctx, r->real);
    clsynth_test_scene_free(&r->s);
    clsynth_model_free(ctx, r->m);
}

/* Largest |a - b| over max|b| of the network's gradients; each parameter
 * tensor is checked against K u (max |b| of that tensor) + 2 u (max |b| of
 * the network) + K u |b|, named. */
static double compare_group(const char *what, const clsynth_param_group *g, const float *a, const float *b, double K)
{
    double net = 0, worst = 0, worst_t = 0;
    const char *worst_name = "-";
    for (size_t i = 0; i < g->total; i++)
        net = fmax(net, fabs(b[i]));
    for (int p = 0; p < g->n_params; p++) {
        const clsynth_tensor *t = g->params[p];
        size_t off = t->off - g->flat_data->off;
        double mx = 0, d = 0;
        for (size_t i = 0; i < t->numel; i++)
            mx = fmax(mx, fabs(b[off + i]));
        for (size_t i = 0; i < t->numel; i++)
            d = fmax(d, fabs(a[off + i] - b[off + i]));
        worst = fmax(worst, d / net);
        if (mx > U_HALF * net && d / mx > worst_t) { /* a tensor whose gradient does not vanish */
            worst_t = d / mx;
            worst_name = t->name;
        }
        char msg[160];
        snprintf(msg, sizeof msg, "%s, %s", what, t->name);
        clsynth_test_assert_close(msg, a + off, b + off, t->numel, K * U_HALF * mx + 2 * U_HALF * net, K * U_HALF);
    }
    printf("%s: worst parameter tensor %s, %.2e of its largest gradient (%.1f x 2^-11)\n", what, worst_name, worst_t,
           worst_t / U_HALF);
    return worst;
}

START_TEST(a_training_step_with_half_activations_matches_and_peaks_lower)
{
    if (skip_without_fp16("training step with --half_activations"))
        return;
    step_result f, h;
    one_step(false, V_DEFAULT, 64, &f);
    one_step(true, V_DEFAULT, 64, &h);
    printf("training step (fixture, 64x64, batch 2): pool peak above the model %zu bytes (%.2f MiB) in float, "
           "%zu bytes (%.2f MiB) with --half_activations (%.0f%%)\n",
           f.peak, f.peak / 1048576.0, h.peak, h.peak / 1048576.0, 100.0 * h.peak / f.peak);
    printf("losses float / half: G_GAN %.7g / %.7g, G_GAN_Feat %.7g / %.7g, D_fake %.7g / %.7g, D_real %.7g / %.7g\n",
           f.l.G_GAN, h.l.G_GAN, f.l.G_GAN_Feat, h.l.G_GAN_Feat, f.l.D_fake, h.l.D_fake, f.l.D_real, h.l.D_real);
    /* the forwards read no half value, only the backwards do, and with G's
     * lr 0 D's step sees the same G: every loss is the float one bit for bit */
    ck_assert_msg(memcmp(&f.l, &h.l, sizeof f.l) == 0, "a loss changed with --half_activations: the forward read "
                  "a stashed value");
    ck_assert_uint_eq(f.ng, h.ng);
    const double K = 16;
    double wg = compare_group("G's gradient with --half_activations", clsynth_model_group(f.m, "G"), h.gm, f.gm, K);
    double wd = compare_group("D's gradient with --half_activations", clsynth_model_group(f.m, "D"), h.dm, f.dm, K);
    printf("largest gradient difference over the network's largest gradient: G %.2e, D %.2e (tolerance per "
           "parameter tensor 16 x 2^-11 = %.2e of its largest, + 2 x 2^-11 of the network's)\n", wg, wd, K * U_HALF);
    ck_assert_msg(wg > 0, "G's gradients are bit for bit the float ones: nothing was stashed");
    ck_assert_msg(h.peak < f.peak, "the step's peak did not drop: %zu bytes with half activations, %zu without",
                  h.peak, f.peak);
    step_result_free(&f);
    step_result_free(&h);
}
END_TEST

/* The stash points of the other networks (SPADE's blocks, the multi-scale
 * D's layers) and the VAE encoder's tensors (stashed by the trainer before
 * the backward): the same checks at 32x32, without the peak. */
START_TEST(the_baselines_and_the_vae_step_with_half_activations_match)
{
    if (skip_without_fp16("baseline steps with --half_activations"))
        return;
    const variant vs[3] = { V_SPADE, V_MULTISCALE, V_VAE };
    const char *names[3] = { "netG spade", "netD multiscale", "use_vae" };
    for (int i = 0; i < 3; i++) {
        step_result f, h;
        /* multiscale at 64x64: at 32x32 its second scale's last instance norms
         * see 2x2 and 3x3 maps, whose tiny variances amplify the half
         * rounding of their stashed inputs past any tolerance on some CPUs
         * (G's gradient 287-2503 x 2^-11 off on a 2-core AVX-512 EPYC with
         * Intel's runtime, either conv algorithm; 1.0 x 2^-11 at 64x64) */
        const int crop = vs[i] == V_MULTISCALE ? 64 : 32;
        one_step(false, vs[i], crop, &f);
        one_step(true, vs[i], crop, &h);
        ck_assert_msg(memcmp(&f.l, &h.l, sizeof f.l) == 0, "%s: a loss changed with --half_activations", names[i]);
        char what[96];
        snprintf(what, sizeof what, "%s: G's gradient", names[i]);
        compare_group(what, clsynth_model_group(f.m, "G"), h.gm, f.gm, 1000);
        snprintf(what, sizeof what, "%s: D's gradient", names[i]);
        compare_group(what, clsynth_model_group(f.m, "D"), h.dm, f.dm, 1000);
        printf("%s: pool peak above the model %.2f MiB in float, %.2f MiB with --half_activations\n", names[i],
               f.peak / 1048576.0, h.peak / 1048576.0);
        step_result_free(&f);
        step_result_free(&h);
    }
}
END_TEST

/* ---- (d) the refusal ---- */

START_TEST(half_activations_are_refused_without_cl_khr_fp16)
{
    if (ctx->dev.fp16) {
        printf("refusal: skipped, the device '%s' reports cl_khr_fp16 (the refusal is checked on PoCL and "
               "rusticl)\n", ctx->dev.name);
        return;
    }
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    o.half_activations = true;
    clsynth_model *m = clsynth_test_model(ctx, &o);
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, m, &s, &seg, &real);
    clsynth_losses l;
    ck_assert_int_ne(clsynth_train_step(ctx, m, seg, real, &l), 0);
    printf("refusal: %s\n", ctx->err.msg);
    ck_assert_msg(strstr(ctx->err.msg, "--half_activations") && strstr(ctx->err.msg, "cl_khr_fp16") &&
                      strstr(ctx->err.msg, ctx->dev.name),
                  "message: %s", ctx->err.msg);
    ck_assert_int_eq((int)clsynth_model_group(m, "G")->step, 0);
    clsynth_ctx_clear_error(ctx);
    /* the runtime refuses as well */
    clsynth_tensor *t = clsynth_tensor_new(ctx, "t", 1, 1, 1, 4096);
    ck_assert_int_ne(clsynth_tensor_to_half(ctx, t), 0);
    ck_assert_msg(strstr(ctx->err.msg, "cl_khr_fp16") && strstr(ctx->err.msg, ctx->dev.name), "message: %s",
                  ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_int_ne(clsynth_stash_newer_as_half(ctx, 0, NULL, 0), 0);
    ck_assert_msg(strstr(ctx->err.msg, "cl_khr_fp16"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    /* `clsynth train --half_activations`: refused before the run folder is made (device as the test's) */
    clsynth_test_tiny_dataset("half_data");
    int st = clsynth_test_sh("'%s' train --dataroot half_data --checkpoints_dir half_ck --name refused "
                             CLSYNTH_TEST_TINY_RUN " --max_iters 1 --half_activations > half_refused.log 2>&1",
                             clsynth_test_bin());
    ck_assert_int_eq(st, 1);
    ck_assert_msg(clsynth_test_file_has("half_refused.log", "--half_activations: the device") &&
                      clsynth_test_file_has("half_refused.log", ctx->dev.name) &&
                      clsynth_test_file_has("half_refused.log", "cl_khr_fp16"),
                  "clsynth train's output (half_refused.log) does not name the device and cl_khr_fp16");
    ck_assert(!clsynth_test_exists("half_ck/refused"));
    clsynth_release_activations(ctx);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, m);
}
END_TEST

int main(void)
{
    return clsynth_test_main_cases("half_activations", &ctx, 600,
                                   CLSYNTH_TEST_LIST(half_storage_rounds_as_the_reference_and_loads_back_exactly,
                                                     an_op_chain_backward_with_stashing_matches_float,
                                                     a_training_step_with_half_activations_matches_and_peaks_lower,
                                                     the_baselines_and_the_vae_step_with_half_activations_match,
                                                     half_activations_are_refused_without_cl_khr_fp16));
}
