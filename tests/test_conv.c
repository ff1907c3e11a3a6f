/* Convolution (direct and im2col+GEMM) and linear: forward and backward
 * against the plain-C reference, finite-difference gradients, agreement of the
 * algorithms, determinism, the direct kernel under small device limits, and
 * the GEMM path in every variant this device has: both ways of covering the
 * samples (GEMM_BATCH merged / strided) x every GEMM algorithm (CLBlast, the
 * host BLAS on host-CPU devices), one GEMM call per layer and pass.
 *
 * CLSYNTH_OCLGRIND_OK: under Oclgrind (CLSYNTH_OCLGRIND=1) shapes are tiny and the
 * GEMM path (convs and linear) runs with the host BLAS only: CLBlast's kernels
 * take minutes to simulate there (a build without the host BLAS skips it).
 *
 * CLBlast compiles its GEMM once per context (about 6 s on PoCL), so all tests
 * share one context and the suite runs without forking (CK_FORK=no unless set). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/gemm.h"
#include "clcore/kdefs.h"
#include "clcore/ops.h"
#include "clcore/tunedb.h"
#include "ref_conv.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static void setup_once(void) { ctx = clsynth_test_ctx(); }
static void teardown_once(void)
{
    clsynth_ctx_free(ctx);
    ctx = NULL;
}

typedef struct conv_case {
    int N, Cin, H, W, Cout, K, stride, pad, bias;
} conv_case;

/* Awkward shapes: kernels 1, 3, 4, 7; strides 1, 2; pads 0..3; odd sizes; channel
 * counts not multiples of the register block (4) or the local-memory chunk (8);
 * outputs larger than one work-group tile (16x16). */
static const conv_case fwd_cases[] = {
    { 2, 3, 9, 7, 5, 3, 1, 1, 1 },    { 2, 5, 13, 11, 4, 3, 2, 1, 0 },  { 2, 17, 9, 7, 6, 1, 1, 0, 1 },
    { 2, 3, 13, 11, 5, 1, 2, 0, 1 },  { 2, 5, 9, 7, 3, 4, 2, 1, 1 },    { 2, 3, 13, 11, 4, 7, 1, 3, 1 },
    { 2, 17, 13, 11, 9, 3, 1, 2, 0 }, { 2, 5, 9, 7, 7, 7, 2, 3, 0 },    { 2, 3, 9, 7, 5, 4, 1, 0, 1 },
    { 2, 17, 9, 7, 33, 3, 1, 1, 1 },  { 2, 16, 37, 35, 18, 3, 1, 1, 1 }, { 2, 5, 7, 9, 3, 7, 1, 0, 0 },
    { 2, 3, 11, 13, 5, 4, 2, 2, 1 },  { 2, 5, 9, 7, 17, 1, 1, 1, 0 },
};
/* Tiny shapes for Oclgrind. */
static const conv_case tiny_cases[] = {
    { 2, 3, 5, 7, 5, 3, 1, 1, 1 }, { 2, 5, 7, 5, 3, 4, 2, 1, 0 }, { 2, 3, 7, 5, 2, 7, 2, 3, 1 },
    { 2, 17, 3, 5, 3, 1, 1, 0, 1 },
};

static const conv_case *cases(int *count)
{
    if (clsynth_test_under_oclgrind()) {
        *count = (int)(sizeof tiny_cases / sizeof tiny_cases[0]);
        return tiny_cases;
    }
    *count = (int)(sizeof fwd_cases / sizeof fwd_cases[0]);
    return fwd_cases;
}

/* How a test runs the conv: the algorithm, and for the GEMM path a force of
 * the conv2d descriptor (its GEMM_BATCH) chained to a force of the "gemm"
 * descriptor (the algorithm of every GEMM it calls). */
typedef struct variant {
    clsynth_conv_algo algo;
    clsynth_kforce conv, gemm;
    char name[80];
} variant;

#define MAX_VARIANTS 8

/* The GEMM variants of this device: GEMM_BATCH x the GEMM algorithms it allows. */
static int gemm_variants(variant *v)
{
    static const int batch[] = { CONV2D_GEMM_MERGED, CONV2D_GEMM_STRIDED };
    int algos[2], na = 0, n = 0;
    if (!clsynth_test_under_oclgrind()) /* CLBlast takes minutes to simulate */
        algos[na++] = CLSYNTH_GEMM_CLBLAST;
    if (clsynth_gemm_host_capable(&ctx->dev))
        algos[na++] = CLSYNTH_GEMM_HOST_BLAS;
    for (int b = 0; b < 2; b++)
        for (int a = 0; a < na; a++, n++) {
            memset(&v[n], 0, sizeof v[n]);
            v[n].algo = CLSYNTH_CONV_IM2COL_GEMM;
            v[n].conv.def = &clsynth_kdef_conv2d;
            v[n].conv.v[CONV2D_ALGO] = CLSYNTH_CONV_IM2COL_GEMM;
            v[n].conv.v[CONV2D_GEMM_BATCH] = batch[b];
            v[n].conv.next = &v[n].gemm;
            v[n].gemm.def = &clsynth_kdef_gemm;
            v[n].gemm.v[GEMM_ALGO] = algos[a];
            snprintf(v[n].name, sizeof v[n].name, "im2col_gemm (%s, %s)",
                     batch[b] == CONV2D_GEMM_MERGED ? "merged" : "strided",
                     algos[a] == CLSYNTH_GEMM_HOST_BLAS ? "host BLAS" : "CLBlast");
        }
    return n;
}

static variant plain_variant(clsynth_conv_algo algo)
{
    variant v;
    memset(&v, 0, sizeof v);
    v.algo = algo;
    snprintf(v.name, sizeof v.name, "%s", clsynth_conv_algo_name(algo));
    return v;
}

/* v's force (NULL for the plain algorithms) */
static clsynth_kforce *force_of(variant *v) { return v->conv.def ? &v->conv : NULL; }

static int out_h(const conv_case *c) { return ref_conv_out_size(c->H, c->K, c->stride, c->pad); }
static int out_w(const conv_case *c) { return ref_conv_out_size(c->W, c->K, c->stride, c->pad); }

static void describe(const conv_case *c, const char *algo, char *buf, size_t len)
{
    snprintf(buf, len, "%s x (%d,%d,%d,%d) w (%d,%d,%d,%d) s%d p%d%s", algo, c->N, c->Cin, c->H, c->W, c->Cout,
             c->Cin, c->K, c->K, c->stride, c->pad, c->bias ? " +bias" : "");
}

/* Host data of one case (seeded by its index). */
typedef struct conv_data {
    float *x, *w, *b, *dy;
    size_t nx, nw, ny;
} conv_data;

static conv_data make_data(const conv_case *c, uint64_t seed)
{
    conv_data d;
    d.nx = (size_t)c->N * c->Cin * c->H * c->W;
    d.nw = (size_t)c->Cout * c->Cin * c->K * c->K;
    d.ny = (size_t)c->N * c->Cout * out_h(c) * out_w(c);
    d.x = malloc(d.nx * sizeof(float));
    d.w = malloc(d.nw * sizeof(float));
    d.b = malloc((size_t)c->Cout * sizeof(float));
    d.dy = malloc(d.ny * sizeof(float));
    clsynth_test_fill_uniform(d.x, d.nx, -1.0f, 1.0f, seed * 4 + 1);
    clsynth_test_fill_uniform(d.w, d.nw, -0.5f, 0.5f, seed * 4 + 2);
    clsynth_test_fill_uniform(d.b, (size_t)c->Cout, -0.5f, 0.5f, seed * 4 + 3);
    clsynth_test_fill_uniform(d.dy, d.ny, -1.0f, 1.0f, seed * 4 + 4);
    return d;
}

static void free_data(conv_data *d)
{
    free(d->x);
    free(d->w);
    free(d->b);
    free(d->dy);
}

/* Device forward of case c as v runs it on context cx; returns the output on the host. */
static float *device_forward(clsynth_ctx *cx, const conv_case *c, const conv_data *d, variant *v)
{
    clsynth_no_grad_begin(cx);
    clsynth_tensor *x = clsynth_tensor_from_host(cx, "x", c->N, c->Cin, c->H, c->W, d->x);
    clsynth_tensor *w = clsynth_tensor_from_host(cx, "w", c->Cout, c->Cin, c->K, c->K, d->w);
    clsynth_tensor *b = c->bias ? clsynth_tensor_from_host(cx, "b", 1, c->Cout, 1, 1, d->b) : NULL;
    clsynth_tensor *y = clsynth_conv2d_forced(cx, x, w, b, c->stride, c->pad, v->algo, force_of(v));
    clsynth_no_grad_end(cx);
    ck_assert_msg(y != NULL, "conv2d (%s): %s", v->name, cx->err.msg);
    ck_assert_int_eq(y->h, out_h(c));
    ck_assert_int_eq(y->w, out_w(c));
    float *out = clsynth_test_download(cx, y);
    clsynth_release_activations(cx);
    return out;
}

/* Device backward of case c seeded with d->dy: fills dx, dw, db (host arrays). */
static void device_backward(clsynth_ctx *cx, const conv_case *c, const conv_data *d, variant *v, float *dx,
                            float *dw, float *db)
{
    clsynth_tensor *x = clsynth_test_input(cx, "x", c->N, c->Cin, c->H, c->W, d->x);
    clsynth_tensor *w = clsynth_test_input(cx, "w", c->Cout, c->Cin, c->K, c->K, d->w);
    clsynth_tensor *b = c->bias ? clsynth_test_input(cx, "b", 1, c->Cout, 1, 1, d->b) : NULL;
    clsynth_tensor *y = clsynth_conv2d_forced(cx, x, w, b, c->stride, c->pad, v->algo, force_of(v));
    ck_assert_msg(y != NULL, "conv2d (%s): %s", v->name, cx->err.msg);
    clsynth_tensor *g = clsynth_tensor_from_host(cx, "dy", y->n, y->c, y->h, y->w, d->dy);
    ck_assert_msg(clsynth_backward_with(cx, y, g) == 0, "backward: %s", cx->err.msg);
    ck_assert_int_eq(clsynth_tensor_download(cx, x->grad, dx), 0);
    ck_assert_int_eq(clsynth_tensor_download(cx, w->grad, dw), 0);
    if (b)
        ck_assert_int_eq(clsynth_tensor_download(cx, b->grad, db), 0);
    clsynth_tensor_free(cx, x);
    clsynth_tensor_free(cx, w);
    clsynth_tensor_free(cx, b);
}

/* Under Oclgrind the GEMM path runs only with the host BLAS (CLBlast's
 * kernels take minutes to simulate); a build without it skips it there. */
static bool skip_gemm(const char *test)
{
    if (!clsynth_test_under_oclgrind() || clsynth_gemm_host_capable(&ctx->dev))
        return false;
    printf("%s: im2col+GEMM part skipped under Oclgrind (no host BLAS in this build; CLBlast is too slow to "
           "simulate)\n", test);
    return true;
}

/* Forward tolerance: |device - reference| <= 1e-4 + 1e-4 * |reference| (float32
 * sums of at most 17*7*7 products of values in [-1, 1] x [-0.5, 0.5]). */
#define FWD_ATOL 1e-4
#define FWD_RTOL 1e-4

static void check_forward(variant *v)
{
    int n;
    const conv_case *cs = cases(&n);
    for (int i = 0; i < n; i++) {
        const conv_case *c = &cs[i];
        conv_data d = make_data(c, (uint64_t)i);
        float *ref = malloc(d.ny * sizeof(float));
        ref_conv2d_forward(d.x, d.w, c->bias ? d.b : NULL, ref, c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K,
                           c->stride, c->pad);
        float *y = device_forward(ctx, c, &d, v);
        char what[160];
        describe(c, v->name, what, sizeof what);
        clsynth_test_assert_close(what, y, ref, d.ny, FWD_ATOL, FWD_RTOL);
        free(y);
        free(ref);
        free_data(&d);
    }
}

START_TEST(direct_forward_matches_reference)
{
    variant v = plain_variant(CLSYNTH_CONV_DIRECT);
    check_forward(&v);
}
END_TEST

START_TEST(gemm_forward_matches_reference)
{
    if (skip_gemm("gemm_forward_matches_reference"))
        return;
    variant v[MAX_VARIANTS];
    for (int i = 0, n = gemm_variants(v); i < n; i++)
        check_forward(&v[i]);
}
END_TEST

START_TEST(auto_forward_matches_reference)
{
    variant v = plain_variant(CLSYNTH_CONV_AUTO);
    check_forward(&v);
}
END_TEST

/* The algorithms agree to float rounding: |direct - gemm| <= 2e-5 + 2e-5 |gemm|. */
START_TEST(algorithms_agree)
{
    if (skip_gemm("algorithms_agree"))
        return;
    variant v[MAX_VARIANTS], direct = plain_variant(CLSYNTH_CONV_DIRECT);
    int nv = gemm_variants(v), n;
    const conv_case *cs = cases(&n);
    for (int i = 0; i < n; i++) {
        const conv_case *c = &cs[i];
        conv_data d = make_data(c, 100 + (uint64_t)i);
        float *a = device_forward(ctx, c, &d, &direct);
        for (int k = 0; k < nv; k++) {
            float *b = device_forward(ctx, c, &d, &v[k]);
            char what[160], vs[120];
            snprintf(vs, sizeof vs, "direct vs %s", v[k].name);
            describe(c, vs, what, sizeof what);
            clsynth_test_assert_close(what, a, b, d.ny, 2e-5, 2e-5);
            free(b);
        }
        free(a);
        free_data(&d);
    }
}
END_TEST

/* Device backward of case c under variant v against the double reference
 * (seeded data); tolerance 2e-4 + 1e-4 |reference|. */
static void backward_matches_reference(const conv_case *c, variant *v, uint64_t seed)
{
    conv_data d = make_data(c, seed);
    float *dx = malloc(d.nx * sizeof(float)), *dw = malloc(d.nw * sizeof(float)),
          *db = malloc((size_t)c->Cout * sizeof(float));
    float *rx = malloc(d.nx * sizeof(float)), *rw = malloc(d.nw * sizeof(float)),
          *rb = malloc((size_t)c->Cout * sizeof(float));
    ref_conv2d_backward(d.x, d.w, d.dy, rx, rw, rb, c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K, c->stride,
                        c->pad);
    device_backward(ctx, c, &d, v, dx, dw, db);
    char what[200], desc[160];
    describe(c, v->name, desc, sizeof desc);
    snprintf(what, sizeof what, "%s: dx", desc);
    clsynth_test_assert_close(what, dx, rx, d.nx, 2e-4, 1e-4);
    snprintf(what, sizeof what, "%s: dw", desc);
    clsynth_test_assert_close(what, dw, rw, d.nw, 2e-4, 1e-4);
    if (c->bias) {
        snprintf(what, sizeof what, "%s: db", desc);
        clsynth_test_assert_close(what, db, rb, (size_t)c->Cout, 2e-4, 1e-4);
    }
    free(dx), free(dw), free(db), free(rx), free(rw), free(rb);
    free_data(&d);
}

static void check_backward(variant *v)
{
    int n;
    const conv_case *cs = cases(&n);
    for (int i = 0; i < n; i++)
        backward_matches_reference(&cs[i], v, 200 + (uint64_t)i);
}

START_TEST(direct_backward_matches_reference)
{
    variant v = plain_variant(CLSYNTH_CONV_DIRECT);
    check_backward(&v);
}
END_TEST

/* The generator's last convs at 64x64, batch 2: the weight gradient sums 8192
 * products per item. Mesa rusticl 22.3 got it wrong by O(1) with fma() in
 * conv_bwd_weight_direct (COUT_PER_ITEM 8, N >= 2) while every small case
 * passed. Not under Oclgrind (the tiny cases cover the kernels there). */
START_TEST(direct_gradients_at_a_medium_shape)
{
    static const conv_case medium[] = { { 2, 4, 64, 64, 3, 3, 1, 1, 1 }, { 3, 8, 64, 64, 4, 3, 1, 1, 0 } };
    if (clsynth_test_under_oclgrind())
        return;
    variant v = plain_variant(CLSYNTH_CONV_DIRECT);
    for (size_t i = 0; i < sizeof medium / sizeof medium[0]; i++)
        backward_matches_reference(&medium[i], &v, 300 + (uint64_t)i);
}
END_TEST

START_TEST(gemm_backward_matches_reference)
{
    if (skip_gemm("gemm_backward_matches_reference"))
        return;
    variant v[MAX_VARIANTS];
    for (int i = 0, n = gemm_variants(v); i < n; i++)
        check_backward(&v[i]);
}
END_TEST

/* A column budget of 24 KiB forces im2col one sample at a time in ranges of
 * output pixels (at least 64 per range; partial last range) for the larger
 * cases: forward and backward still match the reference. */
START_TEST(gemm_in_pixel_chunks_matches_reference)
{
    if (skip_gemm("gemm_in_pixel_chunks_matches_reference"))
        return;
    variant v[MAX_VARIANTS];
    ctx->conv_col_bytes = 24576;
    for (int i = 0, n = gemm_variants(v); i < n; i++) {
        check_forward(&v[i]);
        check_backward(&v[i]);
    }
    ctx->conv_col_bytes = 0; /* the context is shared by the tests */
}
END_TEST

/* Batch 5 with a column budget for two samples' buffers: chunks of 2, 2 and 1
 * samples (the last one strided, as every one-sample chunk runs), forward and
 * backward against the reference; and with the whole batch in one chunk. */
START_TEST(gemm_in_sample_chunks_matches_reference)
{
    if (skip_gemm("gemm_in_sample_chunks_matches_reference"))
        return;
    static const conv_case cs[] = { { 5, 7, 9, 11, 6, 3, 1, 1, 1 }, { 5, 6, 7, 5, 9, 1, 1, 0, 1 },
                                    { 5, 3, 4, 5, 2, 3, 1, 1, 1 } };
    variant v[MAX_VARIANTS];
    int nv = gemm_variants(v);
    for (size_t i = clsynth_test_under_oclgrind() ? 2 : 0; i < sizeof cs / sizeof cs[0]; i++) {
        const conv_case *c = &cs[i];
        const size_t P = (size_t)out_h(c) * (size_t)out_w(c), rows = (size_t)c->Cin * c->K * c->K;
        for (int whole = 0; whole < 2; whole++) {
            ctx->conv_col_bytes = whole ? 0 : (2 * (rows + (size_t)c->Cout) * P + 7) * sizeof(float);
            for (int k = 0; k < nv; k++) {
                conv_data d = make_data(c, 700 + i);
                float *ref = malloc(d.ny * sizeof(float)), *y;
                float *dx = malloc(d.nx * sizeof(float)), *dw = malloc(d.nw * sizeof(float)),
                      *db = malloc((size_t)c->Cout * sizeof(float));
                float *rx = malloc(d.nx * sizeof(float)), *rw = malloc(d.nw * sizeof(float)),
                      *rb = malloc((size_t)c->Cout * sizeof(float));
                ref_conv2d_forward(d.x, d.w, d.b, ref, c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K, c->stride,
                                   c->pad);
                ref_conv2d_backward(d.x, d.w, d.dy, rx, rw, rb, c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K,
                                    c->stride, c->pad);
                y = device_forward(ctx, c, &d, &v[k]);
                device_backward(ctx, c, &d, &v[k], dx, dw, db);
                char what[200], desc[160];
                describe(c, v[k].name, desc, sizeof desc);
                snprintf(what, sizeof what, "%s, %s: y", desc, whole ? "one chunk" : "chunks of 2 samples");
                clsynth_test_assert_close(what, y, ref, d.ny, FWD_ATOL, FWD_RTOL);
                snprintf(what, sizeof what, "%s, %s: dx", desc, whole ? "one chunk" : "chunks of 2 samples");
                clsynth_test_assert_close(what, dx, rx, d.nx, 2e-4, 1e-4);
                snprintf(what, sizeof what, "%s, %s: dw", desc, whole ? "one chunk" : "chunks of 2 samples");
                clsynth_test_assert_close(what, dw, rw, d.nw, 2e-4, 1e-4);
                free(y), free(ref), free(dx), free(dw), free(db), free(rx), free(rw), free(rb);
                free_data(&d);
            }
        }
    }
    ctx->conv_col_bytes = 0;
}
END_TEST

typedef struct acc_user {
    const conv_case *c;
    variant *v;
} acc_user;

static clsynth_tensor *acc_forward(clsynth_ctx *cx, clsynth_tensor **in, void *user)
{
    const acc_user *u = user;
    return clsynth_conv2d_forced(cx, in[0], in[1], u->c->bias ? in[2] : NULL, u->c->stride, u->c->pad, u->v->algo,
                                 force_of(u->v));
}

/* A second backward adds to the gradients of the first: the input's gradient
 * is written (not added) when it is new (clsynth_grad_for_write) and added to
 * when it exists, in every variant, in whole batches, in pixel ranges (a
 * 24 KiB column budget) and at a plain 1x1 conv. */
START_TEST(gradients_accumulate_into_existing_gradients)
{
    static const conv_case cs[] = { { 2, 5, 7, 5, 3, 4, 2, 1, 1 }, { 2, 3, 9, 7, 4, 3, 1, 1, 0 },
                                    { 2, 6, 5, 4, 3, 1, 1, 0, 1 } };
    variant v[MAX_VARIANTS + 1];
    int nv = skip_gemm("gradients_accumulate_into_existing_gradients (GEMM variants)") ? 0 : gemm_variants(v);
    v[nv++] = plain_variant(CLSYNTH_CONV_DIRECT);
    for (int budget = 0; budget < 2; budget++) {
        ctx->conv_col_bytes = budget ? 24576 : 0;
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
            for (int k = 0; k < nv; k++) {
                const conv_case *c = &cs[i];
                conv_data d = make_data(c, 900 + i);
                clsynth_tensor *in[3] = { clsynth_test_input(ctx, "x", c->N, c->Cin, c->H, c->W, d.x),
                                          clsynth_test_input(ctx, "w", c->Cout, c->Cin, c->K, c->K, d.w),
                                          clsynth_test_input(ctx, "b", 1, c->Cout, 1, 1, d.b) };
                char what[200];
                describe(c, v[k].name, what, sizeof what);
                acc_user u = { c, &v[k] };
                clsynth_test_check_accumulates(ctx, what, acc_forward, in, c->bias ? 3 : 2, &u);
                for (int j = 0; j < 3; j++)
                    clsynth_tensor_free(ctx, in[j]);
                free_data(&d);
            }
    }
    ctx->conv_col_bytes = 0; /* the context is shared by the tests */
}
END_TEST

/* One GEMM call per layer and pass over the whole batch: a forward makes one,
 * a backward two (dW and dx), in either layout, whatever the batch. */
START_TEST(gemm_path_makes_one_gemm_call_per_layer_and_pass)
{
    if (skip_gemm("gemm_path_makes_one_gemm_call_per_layer_and_pass") || clsynth_test_under_oclgrind())
        return; /* counts host calls: nothing for the simulator to check */
    static const conv_case cs[] = { { 4, 5, 9, 7, 6, 3, 1, 1, 1 }, { 3, 6, 7, 5, 9, 1, 1, 0, 0 },
                                    { 4, 5, 13, 11, 8, 4, 2, 1, 1 } };
    variant v[MAX_VARIANTS];
    int nv = gemm_variants(v);
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int k = 0; k < nv; k++) {
            const conv_case *c = &cs[i];
            conv_data d = make_data(c, 800 + i);
            clsynth_tensor *x = clsynth_test_input(ctx, "x", c->N, c->Cin, c->H, c->W, d.x);
            clsynth_tensor *w = clsynth_test_input(ctx, "w", c->Cout, c->Cin, c->K, c->K, d.w);
            clsynth_tensor *b = c->bias ? clsynth_test_input(ctx, "b", 1, c->Cout, 1, 1, d.b) : NULL;
            unsigned long g0 = ctx->gemm_calls;
            clsynth_tensor *y = clsynth_conv2d_forced(ctx, x, w, b, c->stride, c->pad, v[k].algo, force_of(&v[k]));
            ck_assert_msg(y != NULL, "%s", ctx->err.msg);
            char desc[160];
            describe(c, v[k].name, desc, sizeof desc);
            ck_assert_msg(ctx->gemm_calls - g0 == 1, "%s: the forward made %lu GEMM calls", desc,
                          ctx->gemm_calls - g0);
            clsynth_tensor *g = clsynth_tensor_from_host(ctx, "dy", y->n, y->c, y->h, y->w, d.dy);
            g0 = ctx->gemm_calls;
            ck_assert_msg(clsynth_backward_with(ctx, y, g) == 0, "%s", ctx->err.msg);
            ck_assert_msg(ctx->gemm_calls - g0 == 2, "%s: the backward made %lu GEMM calls", desc,
                          ctx->gemm_calls - g0);
            clsynth_tensor_free(ctx, x);
            clsynth_tensor_free(ctx, w);
            clsynth_tensor_free(ctx, b);
            free_data(&d);
        }
}
END_TEST

/* clsynth_conv_gemm_products (what the tuner and `clsynth bench gemm` take
 * for the op's GEMMs) names the products a forward + backward runs: every
 * "gemm" shape the op resolves is one of its three, looked up as often as
 * it says, in either layout, in one chunk and in chunks of 2 samples. */
START_TEST(gemm_products_are_the_gemms_the_op_runs)
{
    if (skip_gemm("gemm_products_are_the_gemms_the_op_runs") || clsynth_test_under_oclgrind())
        return; /* counts host lookups: nothing for the simulator to check */
    static const conv_case cs[] = { { 4, 5, 9, 7, 6, 3, 1, 1, 1 }, { 4, 6, 7, 5, 9, 1, 1, 0, 0 },
                                    { 2, 5, 13, 11, 8, 4, 2, 1, 1 } };
    variant v[MAX_VARIANTS];
    int nv = gemm_variants(v);
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int whole = 0; whole < 2; whole++)
            for (int k = 0; k < nv; k++) {
                const conv_case *c = &cs[i];
                const size_t P = (size_t)out_h(c) * (size_t)out_w(c), rows = (size_t)c->Cin * c->K * c->K;
                ctx->conv_col_bytes = whole ? 0 : (2 * (rows + (size_t)c->Cout) * P + 7) * sizeof(float);
                const clsynth_conv_shape sh = { c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K, c->stride, c->pad };
                clsynth_matmul_shape g[3];
                int count[3];
                ck_assert_int_eq(clsynth_conv_gemm_products(ctx, &sh, v[k].conv.v[CONV2D_GEMM_BATCH], g, count), 3);
                char keys[3][CLSYNTH_K_KEY_MAX];
                unsigned long want[3] = { 0 };
                for (int j = 0; j < 3; j++) {
                    clsynth_kdef_gemm.format(&g[j], keys[j], sizeof keys[j]);
                    want[j] = (unsigned long)count[j];
                }
                conv_data d = make_data(c, 900 + i);
                clsynth_tensor *x = clsynth_test_input(ctx, "x", c->N, c->Cin, c->H, c->W, d.x);
                clsynth_tensor *w = clsynth_test_input(ctx, "w", c->Cout, c->Cin, c->K, c->K, d.w);
                clsynth_tensor *b = c->bias ? clsynth_test_input(ctx, "b", 1, c->Cout, 1, 1, d.b) : NULL;
                clsynth_tunedb_recorded_clear(ctx);
                clsynth_tunedb_record(ctx, true);
                clsynth_tensor *y = clsynth_conv2d_forced(ctx, x, w, b, c->stride, c->pad, v[k].algo, force_of(&v[k]));
                ck_assert_msg(y != NULL, "%s", ctx->err.msg);
                clsynth_tensor *dy = clsynth_tensor_from_host(ctx, "dy", y->n, y->c, y->h, y->w, d.dy);
                ck_assert_msg(clsynth_backward_with(ctx, y, dy) == 0, "%s", ctx->err.msg);
                clsynth_tunedb_record(ctx, false);
                char desc[200];
                describe(c, v[k].name, desc, sizeof desc);
                unsigned long seen[3] = { 0 };
                for (size_t r = 0; r < clsynth_tunedb_recorded_count(ctx); r++) {
                    const char *kernel, *key;
                    unsigned long lookups;
                    ck_assert(clsynth_tunedb_recorded(ctx, r, &kernel, &key, &lookups));
                    if (strcmp(kernel, "gemm") != 0)
                        continue;
                    int j = 0;
                    while (j < 3 && strcmp(key, keys[j]) != 0)
                        j++;
                    ck_assert_msg(j < 3, "%s, %s: the op ran GEMM %s, not among %s, %s, %s", desc,
                                  whole ? "one chunk" : "chunks of 2", key, keys[0], keys[1], keys[2]);
                    seen[j] += lookups;
                }
                for (int j = 0; j < 3; j++) {
                    unsigned long expect = 0; /* equal products (a square conv) count together */
                    for (int q = 0; q < 3; q++)
                        if (strcmp(keys[q], keys[j]) == 0)
                            expect += want[q];
                    unsigned long got = 0;
                    for (int q = 0; q < 3; q++)
                        if (strcmp(keys[q], keys[j]) == 0)
                            got += seen[q];
                    ck_assert_msg(got == expect, "%s, %s: GEMM %s ran %lu times, the products say %lu", desc,
                                  whole ? "one chunk" : "chunks of 2", keys[j], got, expect);
                }
                clsynth_tunedb_recorded_clear(ctx);
                clsynth_tensor_free(ctx, x);
                clsynth_tensor_free(ctx, w);
                clsynth_tensor_free(ctx, b);
                free_data(&d);
            }
    ctx->conv_col_bytes = 0;
}
END_TEST

/* ---- finite-difference gradients ---- */

typedef struct fwd_user {
    int stride, pad;
    variant *v;
} fwd_user;

static clsynth_tensor *conv_fn(clsynth_ctx *cx, clsynth_tensor **in, void *user)
{
    const fwd_user *u = user;
    return clsynth_conv2d_forced(cx, in[0], in[1], in[2], u->stride, u->pad, u->v->algo, force_of(u->v));
}

/* Conv is linear in each input, so central differences are exact up to float
 * rounding: eps 1e-2, |analytic - numeric| <= 5e-3 + 1e-2 |numeric|, 8 sampled
 * elements of x, w and bias each. */
static void gradcheck(variant *v)
{
    static const conv_case small[] = { { 2, 3, 5, 7, 5, 3, 2, 1, 1 }, { 2, 5, 6, 5, 3, 4, 1, 2, 1 },
                                       { 2, 3, 7, 5, 2, 7, 2, 3, 1 }, { 2, 5, 5, 3, 3, 1, 1, 0, 1 } };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        const conv_case *c = &small[i];
        conv_data d = make_data(c, 300 + (uint64_t)i);
        clsynth_tensor *in[3];
        in[0] = clsynth_test_input(ctx, "x", c->N, c->Cin, c->H, c->W, d.x);
        in[1] = clsynth_test_input(ctx, "w", c->Cout, c->Cin, c->K, c->K, d.w);
        in[2] = clsynth_test_input(ctx, "bias", 1, c->Cout, 1, 1, d.b);
        fwd_user u = { c->stride, c->pad, v };
        char what[160];
        describe(c, v->name, what, sizeof what);
        clsynth_test_gradcheck(ctx, what, conv_fn, in, 3, &u, 1e-2f, 5e-3, 1e-2, 8);
        for (int k = 0; k < 3; k++)
            clsynth_tensor_free(ctx, in[k]);
        free_data(&d);
    }
}

START_TEST(direct_gradients_match_finite_differences)
{
    variant v = plain_variant(CLSYNTH_CONV_DIRECT);
    gradcheck(&v);
}
END_TEST

START_TEST(gemm_gradients_match_finite_differences)
{
    if (skip_gemm("gemm_gradients_match_finite_differences"))
        return;
    variant v[MAX_VARIANTS];
    /* under the simulator one variant: the others' gradients are checked
     * against the reference by gemm_backward_matches_reference */
    int n = gemm_variants(v);
    if (clsynth_test_under_oclgrind() && n > 1)
        n = 1;
    for (int i = 0; i < n; i++)
        gradcheck(&v[i]);
}
END_TEST

/* Two backward passes give bit-identical gradients (no atomics, fixed sum
 * order), in every variant. */
START_TEST(backward_is_deterministic)
{
    const conv_case c = { 2, 17, 13, 11, 9, 3, 2, 1, 1 };
    conv_data d = make_data(&c, 400);
    variant v[MAX_VARIANTS + 1];
    v[0] = plain_variant(CLSYNTH_CONV_DIRECT);
    int nv = 1 + (skip_gemm("backward_is_deterministic") ? 0 : gemm_variants(v + 1));
    for (int a = 0; a < nv; a++) {
        float *g[2][3];
        for (int r = 0; r < 2; r++) {
            g[r][0] = malloc(d.nx * sizeof(float));
            g[r][1] = malloc(d.nw * sizeof(float));
            g[r][2] = malloc((size_t)c.Cout * sizeof(float));
            device_backward(ctx, &c, &d, &v[a], g[r][0], g[r][1], g[r][2]);
        }
        ck_assert_msg(memcmp(g[0][0], g[1][0], d.nx * sizeof(float)) == 0, "%s: dx differs between runs", v[a].name);
        ck_assert_msg(memcmp(g[0][1], g[1][1], d.nw * sizeof(float)) == 0, "%s: dw differs between runs", v[a].name);
        ck_assert_msg(memcmp(g[0][2], g[1][2], (size_t)c.Cout * sizeof(float)) == 0, "%s: db differs between runs",
                      v[a].name);
        for (int r = 0; r < 2; r++)
            for (int k = 0; k < 3; k++)
                free(g[r][k]);
    }
    free_data(&d);
}
END_TEST

/* A device with 64 work-items per group and 16 KiB of local memory: smaller tiles
 * and fewer input channels per patch, same per-output summation order and every
 * multiply-add a separate multiply and add under FP_CONTRACT OFF
 * (kernels/conv_fwd.cl, conv_bwd.cl), so the direct kernels give bit-identical
 * results on every implementation. */
START_TEST(direct_kernel_same_under_small_device_limits)
{
    clsynth_ctx *small = clsynth_test_ctx();
    clsynth_ctx_emulate_limits(small, 64, 16 * 1024);
    ck_assert_uint_le(small->max_wg, 64);
    static const conv_case cs[] = { { 2, 17, 37, 35, 9, 7, 2, 3, 1 }, { 2, 16, 37, 35, 18, 3, 1, 1, 1 },
                                    { 2, 5, 9, 7, 3, 4, 2, 1, 0 } };
    int n = clsynth_test_under_oclgrind() ? 1 : (int)(sizeof cs / sizeof cs[0]);
    for (int i = 0; i < n; i++) {
        const conv_case *c = clsynth_test_under_oclgrind() ? &tiny_cases[2] : &cs[i];
        conv_data d = make_data(c, 500 + (uint64_t)i);
        variant dv = plain_variant(CLSYNTH_CONV_DIRECT);
        float *a = device_forward(ctx, c, &d, &dv);
        float *b = device_forward(small, c, &d, &dv);
        char what[160];
        describe(c, "direct, 64 items / 16 KiB vs default limits", what, sizeof what);
        ck_assert_msg(memcmp(a, b, d.ny * sizeof(float)) == 0, "%s: forward differs", what);
        float *g[2][3];
        for (int r = 0; r < 2; r++) {
            g[r][0] = malloc(d.nx * sizeof(float));
            g[r][1] = malloc(d.nw * sizeof(float));
            g[r][2] = malloc((size_t)c->Cout * sizeof(float));
            device_backward(r ? small : ctx, c, &d, &dv, g[r][0], g[r][1], g[r][2]);
        }
        ck_assert_msg(memcmp(g[0][0], g[1][0], d.nx * sizeof(float)) == 0, "%s: dx differs", what);
        ck_assert_msg(memcmp(g[0][1], g[1][1], d.nw * sizeof(float)) == 0, "%s: dw differs", what);
        if (c->bias)
            clsynth_test_assert_close(what, g[1][2], g[0][2], (size_t)c->Cout, 1e-5, 1e-5);
        for (int r = 0; r < 2; r++)
            for (int k = 0; k < 3; k++)
                free(g[r][k]);
        free(a);
        free(b);
        free_data(&d);
    }
    clsynth_ctx_free(small);
}
END_TEST

/* The defaults without a tuning database: on a CPU device of PoCL or Intel
 * (host BLAS built in) every GEMM runs on the host BLAS, a conv with enough
 * work for it takes oneDNN (built in) or else the GEMM path (strided), a
 * small one the direct kernels; on a GPU (and wherever the GEMM is CLBlast's)
 * the GEMM is CLBlast's and the conv path merged. Decided by device type and platform, not vendor id. */
START_TEST(untuned_defaults_follow_the_device_class)
{
    static const struct {
        const char *platform, *vendor;
        cl_device_type type;
        bool host;
    } devs[] = {
        { "Portable Computing Language", "GenuineIntel", CL_DEVICE_TYPE_CPU, true },
        { "Portable Computing Language", "AuthenticAMD", CL_DEVICE_TYPE_CPU, true },
        { "Intel(R) OpenCL", "Intel(R) Corporation", CL_DEVICE_TYPE_CPU, true },
        { "NVIDIA CUDA", "NVIDIA Corporation", CL_DEVICE_TYPE_GPU, false },
        { "Intel(R) OpenCL Graphics", "Intel(R) Corporation", CL_DEVICE_TYPE_GPU, false },
    };
    /* big: oneDNN on the host devices of a build with it, else GEMM; narrow
     * (Cout 16, 19 MFLOP): oneDNN there, GEMM under the host BLAS, else direct;
     * tiny (18 KFLOP): direct everywhere */
    const clsynth_conv_shape big = { 2, 16, 64, 64, 144, 3, 3, 1, 1 }, narrow = { 2, 16, 64, 64, 16, 3, 3, 1, 1 };
    const clsynth_conv_shape tiny = { 1, 4, 8, 8, 4, 3, 3, 1, 1 };
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
        clsynth_device_info d = ctx->dev;
        snprintf(d.platform_name, sizeof d.platform_name, "%s", devs[i].platform);
        snprintf(d.vendor, sizeof d.vendor, "%s", devs[i].vendor);
        d.type = devs[i].type;
        bool host = devs[i].host && clsynth_gemm_host_capable(&d);
        ck_assert_int_eq(clsynth_gemm_host_capable(&d), devs[i].host && clsynth_gemm_host_capable(&ctx->dev));
        int g[CLSYNTH_K_MAX_PARAMS] = { 0 }, v[CLSYNTH_K_MAX_PARAMS] = { 0 }, w[CLSYNTH_K_MAX_PARAMS] = { 0 };
        clsynth_kdef_defaults(&clsynth_kdef_gemm, &d, g);
        ck_assert_msg(g[GEMM_ALGO] == (host ? CLSYNTH_GEMM_HOST_BLAS : CLSYNTH_GEMM_CLBLAST), "%s: GEMM algorithm %d",
                      devs[i].platform, g[GEMM_ALGO]);
        clsynth_klimits lim = clsynth_klimits_of(ctx);
        lim.dev = &d;
        clsynth_kdef_defaults(&clsynth_kdef_conv2d, &d, v);
        /* oneDNN, where this build has it, on the host devices */
        const bool dnnl = devs[i].host && clsynth_conv_dnnl_capable(&d);
        ck_assert_int_eq(clsynth_conv_dnnl_capable(&d), devs[i].host && clsynth_conv_dnnl_capable(&ctx->dev));
        clsynth_kdef_conv2d.fit(v, &big, &lim);
        ck_assert_int_eq(v[CONV2D_ALGO], dnnl ? CLSYNTH_CONV_DNNL : CLSYNTH_CONV_IM2COL_GEMM);
        ck_assert_int_eq(v[CONV2D_GEMM_BATCH], host ? CONV2D_GEMM_STRIDED : CONV2D_GEMM_MERGED);
        clsynth_kdef_defaults(&clsynth_kdef_conv2d, &d, w);
        clsynth_kdef_conv2d.fit(w, &narrow, &lim);
        ck_assert_int_eq(w[CONV2D_ALGO], dnnl   ? CLSYNTH_CONV_DNNL
                                         : host ? CLSYNTH_CONV_IM2COL_GEMM
                                                : CLSYNTH_CONV_DIRECT);
        clsynth_kdef_defaults(&clsynth_kdef_conv2d, &d, w);
        clsynth_kdef_conv2d.fit(w, &tiny, &lim);
        ck_assert_int_eq(w[CONV2D_ALGO], CLSYNTH_CONV_DIRECT);
#ifdef CLSYNTH_HAVE_DNNL
        /* oneDNN's layout: blocked for a 3x3 conv, NCHW as stored for a plain 1x1 */
        ck_assert_int_eq(v[CONV2D_DNNL_LAYOUT], CONV2D_DNNL_BLOCKED);
        const clsynth_conv_shape one = { 2, 36, 64, 64, 32, 1, 1, 1, 0 };
        clsynth_kdef_defaults(&clsynth_kdef_conv2d, &d, w);
        clsynth_kdef_conv2d.fit(w, &one, &lim);
        ck_assert_int_eq(w[CONV2D_ALGO], dnnl ? CLSYNTH_CONV_DNNL : CLSYNTH_CONV_IM2COL_GEMM);
        ck_assert_int_eq(w[CONV2D_DNNL_LAYOUT], CONV2D_DNNL_PLAIN);
#endif
    }
}
END_TEST

START_TEST(bad_shapes_name_the_tensors)
{
    clsynth_tensor *x = clsynth_tensor_new(ctx, "input_x", 2, 3, 9, 7);
    clsynth_tensor *w = clsynth_tensor_new(ctx, "weight_w", 4, 5, 3, 3);
    ck_assert_ptr_null(clsynth_conv2d(ctx, x, w, NULL, 1, 1));
    ck_assert_msg(strstr(ctx->err.msg, "input_x") && strstr(ctx->err.msg, "weight_w") &&
                      strstr(ctx->err.msg, "conv2d"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_tensor *w7 = clsynth_tensor_new(ctx, "big_kernel", 4, 3, 11, 11);
    ck_assert_ptr_null(clsynth_conv2d(ctx, x, w7, NULL, 1, 0));
    ck_assert_msg(strstr(ctx->err.msg, "big_kernel") && strstr(ctx->err.msg, "larger"), "message: %s",
                  ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_tensor *w3 = clsynth_tensor_new(ctx, "w3", 4, 3, 3, 3), *b = clsynth_tensor_new(ctx, "bias_b", 1, 5, 1, 1);
    ck_assert_ptr_null(clsynth_conv2d(ctx, x, w3, b, 1, 1));
    ck_assert_msg(strstr(ctx->err.msg, "bias_b"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_ptr_null(clsynth_conv2d(ctx, x, w3, NULL, 0, 1));
    ck_assert_msg(strstr(ctx->err.msg, "stride"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_tensor *wl = clsynth_tensor_new(ctx, "lin_w", 4, 10, 1, 1);
    ck_assert_ptr_null(clsynth_linear(ctx, x, wl, NULL));
    ck_assert_msg(strstr(ctx->err.msg, "lin_w") && strstr(ctx->err.msg, "189"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_str_eq(clsynth_conv_algo_name(CLSYNTH_CONV_DIRECT), "direct");
    ck_assert_str_eq(clsynth_conv_algo_name(CLSYNTH_CONV_IM2COL_GEMM), "im2col_gemm");
    ck_assert_str_eq(clsynth_conv_algo_name(CLSYNTH_CONV_AUTO), "auto");
    clsynth_release_activations(ctx);
}
END_TEST

/* ---- linear ---- */

typedef struct lin_user {
    bool bias;
    clsynth_kforce *force;
} lin_user;

static clsynth_tensor *linear_fn(clsynth_ctx *cx, clsynth_tensor **in, void *user)
{
    const lin_user *u = user;
    return clsynth_linear_forced(cx, in[0], in[1], u->bias ? in[2] : NULL, u->force);
}

/* x (3,5,3,2) -> In = 30, Out = 7: forward and backward vs the reference
 * (2e-5 + 1e-4 |ref|) with and without bias, then finite differences, with
 * every GEMM algorithm of the device; one GEMM call forward, two backward. */
START_TEST(linear_matches_reference_and_finite_differences)
{
    if (skip_gemm("linear_matches_reference_and_finite_differences"))
        return;
    const int N = 3, C = 5, H = 3, W = 2, In = C * H * W, Out = 7;
    float x[3 * 30], w[7 * 30], b[7], dy[3 * 7], y[3 * 7], ref[3 * 7];
    float dx[3 * 30], dw[7 * 30], db[7], rx[3 * 30], rw[7 * 30], rb[7];
    clsynth_test_fill_uniform(x, sizeof x / sizeof x[0], -1, 1, 601);
    clsynth_test_fill_uniform(w, sizeof w / sizeof w[0], -0.5f, 0.5f, 602);
    clsynth_test_fill_uniform(b, 7, -0.5f, 0.5f, 603);
    clsynth_test_fill_uniform(dy, 21, -1, 1, 604);
    int algos[2], na = 0;
    if (!clsynth_test_under_oclgrind())
        algos[na++] = CLSYNTH_GEMM_CLBLAST;
    if (clsynth_gemm_host_capable(&ctx->dev))
        algos[na++] = CLSYNTH_GEMM_HOST_BLAS;
    for (int a = 0; a < na; a++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            clsynth_kforce f = { .def = &clsynth_kdef_gemm };
            f.v[GEMM_ALGO] = algos[a];
            lin_user u = { with_bias != 0, &f };
            char what[64];
            snprintf(what, sizeof what, "linear%s, GEMM algorithm %d", with_bias ? " + bias" : "", algos[a]);
            clsynth_tensor *in[3];
            in[0] = clsynth_test_input(ctx, "x", N, C, H, W, x);
            in[1] = clsynth_test_input(ctx, "w", Out, In, 1, 1, w);
            in[2] = clsynth_test_input(ctx, "bias", 1, Out, 1, 1, b);
            unsigned long g0 = ctx->gemm_calls;
            clsynth_tensor *out = linear_fn(ctx, in, &u);
            ck_assert_msg(out != NULL, "%s: %s", what, ctx->err.msg);
            ck_assert(out->n == N && out->c == Out && out->h == 1 && out->w == 1);
            ck_assert_uint_eq(ctx->gemm_calls - g0, 1);
            ck_assert_int_eq(clsynth_tensor_download(ctx, out, y), 0);
            ref_linear_forward(x, w, with_bias ? b : NULL, ref, N, In, Out);
            clsynth_test_assert_close(what, y, ref, 21, 2e-5, 1e-4);
            clsynth_tensor *g = clsynth_tensor_from_host(ctx, "dy", N, Out, 1, 1, dy);
            g0 = ctx->gemm_calls;
            ck_assert_msg(clsynth_backward_with(ctx, out, g) == 0, "%s backward: %s", what, ctx->err.msg);
            ck_assert_uint_eq(ctx->gemm_calls - g0, 2);
            ck_assert_int_eq(clsynth_tensor_download(ctx, in[0]->grad, dx), 0);
            ck_assert_int_eq(clsynth_tensor_download(ctx, in[1]->grad, dw), 0);
            ref_linear_backward(x, w, dy, rx, rw, rb, N, In, Out);
            clsynth_test_assert_close("linear dx", dx, rx, (size_t)N * In, 2e-5, 1e-4);
            clsynth_test_assert_close("linear dw", dw, rw, (size_t)Out * In, 2e-5, 1e-4);
            if (with_bias) {
                ck_assert_int_eq(clsynth_tensor_download(ctx, in[2]->grad, db), 0);
                clsynth_test_assert_close("linear db", db, rb, (size_t)Out, 2e-5, 1e-4);
            } else {
                ck_assert_ptr_null(in[2]->grad);
            }
            ck_assert_uint_gt(f.hits, 0);
            clsynth_test_gradcheck(ctx, what, linear_fn, in, with_bias ? 3 : 2, &u, 1e-2f, 5e-3, 1e-2, 8);
            for (int k = 0; k < 3; k++)
                clsynth_tensor_free(ctx, in[k]);
        }
}
END_TEST

int main(void)
{
    /* one process, one context: CLBlast compiles its kernels once per context */
    setenv("CK_FORK", "no", 0);
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_add_unchecked_fixture(tc, setup_once, teardown_once);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, direct_forward_matches_reference);
    tcase_add_test(tc, gemm_forward_matches_reference);
    tcase_add_test(tc, auto_forward_matches_reference);
    tcase_add_test(tc, algorithms_agree);
    tcase_add_test(tc, direct_backward_matches_reference);
    tcase_add_test(tc, direct_gradients_at_a_medium_shape);
    tcase_add_test(tc, gemm_backward_matches_reference);
    tcase_add_test(tc, gemm_in_pixel_chunks_matches_reference);
    tcase_add_test(tc, gemm_in_sample_chunks_matches_reference);
    tcase_add_test(tc, gradients_accumulate_into_existing_gradients);
    tcase_add_test(tc, gemm_path_makes_one_gemm_call_per_layer_and_pass);
    tcase_add_test(tc, gemm_products_are_the_gemms_the_op_runs);
    tcase_add_test(tc, direct_gradients_match_finite_differences);
    tcase_add_test(tc, gemm_gradients_match_finite_differences);
    tcase_add_test(tc, backward_is_deterministic);
    tcase_add_test(tc, direct_kernel_same_under_small_device_limits);
    tcase_add_test(tc, untuned_defaults_follow_the_device_class);
    tcase_add_test(tc, bad_shapes_name_the_tensors);
    tcase_add_test(tc, linear_matches_reference_and_finite_differences);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
