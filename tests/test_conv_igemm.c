/* The implicit-GEMM and Winograd convolution algorithms and the fused
 * convolution op (clsynth_conv2d_fused): forward and backward against the
 * plain-C references at awkward shapes, finite-difference gradients of every
 * epilogue, the fused op equal to the unfused chain of ops, determinism of the
 * K-split weight gradient, Winograd's accuracy against the direct sum, small
 * device limits, and bad arguments named.
 *
 * CLSYNTH_OCLGRIND_OK: under Oclgrind (CLSYNTH_OCLGRIND=1) the shapes are tiny
 * and the im2col + CLBlast algorithm is left out (too slow to simulate). */
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

/* kernels 1, 3, 4, 7; strides 1, 2, 3; pads 0..3; odd sizes; Cout above a 64-row tile;
 * batch 1 to 3 */
static const cv shapes[] = {
    { 2, 3, 9, 7, 5, 3, 1, 1 },   { 2, 5, 13, 11, 4, 3, 2, 1 }, { 3, 17, 9, 7, 6, 1, 1, 0 },
    { 2, 3, 13, 11, 5, 1, 2, 0 }, { 2, 5, 9, 7, 3, 4, 2, 1 },   { 1, 3, 13, 11, 4, 7, 1, 3 },
    { 2, 9, 11, 10, 70, 3, 1, 1 }, { 2, 6, 11, 13, 7, 3, 3, 2 }, { 2, 16, 17, 19, 33, 3, 1, 0 },
};
static const cv tiny_shapes[] = { { 2, 3, 5, 7, 5, 3, 1, 1 }, { 2, 3, 7, 5, 4, 3, 2, 1 }, { 2, 4, 5, 5, 3, 1, 2, 0 } };

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
static bool wino_ok(const cv *c) { return c->K == 3 && c->stride == 1; }

typedef struct data {
    float *x, *w, *b, *g, *r, *dy;
    size_t nx, nw, ny;
} data;

static data make_data(const cv *c, uint64_t seed)
{
    data d;
    d.nx = (size_t)c->N * c->Cin * c->H * c->W;
    d.nw = (size_t)c->Cout * c->Cin * c->K * c->K;
    d.ny = (size_t)c->N * c->Cout * oh_of(c) * ow_of(c);
    d.x = malloc(d.nx * sizeof(float));
    d.w = malloc(d.nw * sizeof(float));
    d.b = malloc((size_t)c->Cout * sizeof(float));
    d.g = malloc(d.ny * sizeof(float));
    d.r = malloc(d.ny * sizeof(float));
    d.dy = malloc(d.ny * sizeof(float));
    clsynth_test_fill_uniform(d.x, d.nx, -1.0f, 1.0f, seed * 8 + 1);
    clsynth_test_fill_uniform(d.w, d.nw, -0.5f, 0.5f, seed * 8 + 2);
    clsynth_test_fill_uniform(d.b, (size_t)c->Cout, -0.5f, 0.5f, seed * 8 + 3);
    clsynth_test_fill_uniform(d.g, d.ny, 0.05f, 1.0f, seed * 8 + 4); /* a sigmoid's range */
    clsynth_test_fill_uniform(d.r, d.ny, -1.0f, 1.0f, seed * 8 + 5);
    clsynth_test_fill_uniform(d.dy, d.ny, -1.0f, 1.0f, seed * 8 + 6);
    return d;
}

static void free_data(data *d)
{
    free(d->x);
    free(d->w);
    free(d->b);
    free(d->g);
    free(d->r);
    free(d->dy);
}

static void describe(const cv *c, const char *what, char *buf, size_t len)
{
    snprintf(buf, len, "%s x (%d,%d,%d,%d) w (%d,%d,%d,%d) s%d p%d", what, c->N, c->Cin, c->H, c->W, c->Cout, c->Cin,
             c->K, c->K, c->stride, c->pad);
}

/* Forward/backward tolerance as tests/test_conv.c: float sums of at most 17*7*7
 * products of values in [-1, 1] x [-0.5, 0.5] (Winograd: see its test). */
#define ATOL 1e-4
#define RTOL 1e-4

/* The device tensors of one case: inputs requiring grad when `grad`. */
typedef struct dev {
    clsynth_tensor *x, *w, *b, *g, *r;
} dev;

static dev upload(const cv *c, const data *d, bool grad)
{
    dev t;
    if (grad) {
        t.x = clsynth_test_input(ctx, "x", c->N, c->Cin, c->H, c->W, d->x);
        t.w = clsynth_test_input(ctx, "w", c->Cout, c->Cin, c->K, c->K, d->w);
        t.b = clsynth_test_input(ctx, "b", 1, c->Cout, 1, 1, d->b);
        t.g = clsynth_test_input(ctx, "gate", c->N, c->Cout, oh_of(c), ow_of(c), d->g);
        t.r = clsynth_test_input(ctx, "residual", c->N, c->Cout, oh_of(c), ow_of(c), d->r);
    } else {
        t.x = clsynth_tensor_from_host(ctx, "x", c->N, c->Cin, c->H, c->W, d->x);
        t.w = clsynth_tensor_from_host(ctx, "w", c->Cout, c->Cin, c->K, c->K, d->w);
        t.b = clsynth_tensor_from_host(ctx, "b", 1, c->Cout, 1, 1, d->b);
        t.g = clsynth_tensor_from_host(ctx, "gate", c->N, c->Cout, oh_of(c), ow_of(c), d->g);
        t.r = clsynth_tensor_from_host(ctx, "residual", c->N, c->Cout, oh_of(c), ow_of(c), d->r);
    }
    return t;
}

static void free_dev(dev *t)
{
    clsynth_tensor_free(ctx, t->x);
    clsynth_tensor_free(ctx, t->w);
    clsynth_tensor_free(ctx, t->b);
    clsynth_tensor_free(ctx, t->g);
    clsynth_tensor_free(ctx, t->r);
}

/* ------------------------------------------------------------ plain conv */

/* wino_gemm: for Winograd, who runs its 16 GEMMs (WINO_GEMM_*; 0: as resolved). */
static void check_plain_with(clsynth_conv_algo algo, double atol, double rtol, int wino_gemm)
{
    int n;
    const cv *cs = shape_list(&n);
    for (int i = 0; i < n; i++) {
        const cv *c = &cs[i];
        if (algo == CLSYNTH_CONV_WINOGRAD && !wino_ok(c))
            continue;
        data d = make_data(c, (uint64_t)i);
        float *ry = malloc(d.ny * sizeof(float)), *rdx = malloc(d.nx * sizeof(float));
        float *rdw = malloc(d.nw * sizeof(float)), *rdb = malloc((size_t)c->Cout * sizeof(float));
        ref_conv2d_forward(d.x, d.w, d.b, ry, c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K, c->stride, c->pad);
        ref_conv2d_backward(d.x, d.w, d.dy, rdx, rdw, rdb, c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K, c->stride,
                            c->pad);
        dev t = upload(c, &d, true);
        clsynth_kforce f = { .def = &clsynth_kdef_conv_winograd };
        if (wino_gemm) {
            const clsynth_conv_shape s = { c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K, c->stride, c->pad };
            clsynth_kcfg cfg;
            ck_assert_msg(clsynth_kconfig(ctx, f.def, &s, NULL, &cfg) == 0, "%s", ctx->err.msg);
            memcpy(f.v, cfg.v, sizeof f.v);
            f.v[WINO_GEMM] = wino_gemm;
        }
        clsynth_tensor *y = clsynth_conv2d_forced(ctx, t.x, t.w, t.b, c->stride, c->pad, algo, wino_gemm ? &f : NULL);
        ck_assert_msg(y != NULL, "%s", ctx->err.msg);
        float *hy = clsynth_test_download(ctx, y);
        clsynth_tensor *gy = clsynth_tensor_from_host(ctx, "dy", y->n, y->c, y->h, y->w, d.dy);
        ck_assert_msg(clsynth_backward_with(ctx, y, gy) == 0, "%s", ctx->err.msg);
        float *hdx = clsynth_test_download(ctx, t.x->grad), *hdw = clsynth_test_download(ctx, t.w->grad);
        float *hdb = clsynth_test_download(ctx, t.b->grad);
        ck_assert_msg(!wino_gemm || f.hits > 0, "the forced Winograd GEMM was never resolved");
        char what[200], base[160], name[64];
        snprintf(name, sizeof name, "%s%s", clsynth_conv_algo_name(algo),
                 wino_gemm == WINO_GEMM_IGEMM ? " (igemm_batched)" : wino_gemm ? " (clsynth_gemm)" : "");
        describe(c, name, base, sizeof base);
        snprintf(what, sizeof what, "%s: y", base);
        clsynth_test_assert_close(what, hy, ry, d.ny, atol, rtol);
        snprintf(what, sizeof what, "%s: dx", base);
        clsynth_test_assert_close(what, hdx, rdx, d.nx, atol, rtol);
        snprintf(what, sizeof what, "%s: dw", base);
        clsynth_test_assert_close(what, hdw, rdw, d.nw, atol, rtol);
        snprintf(what, sizeof what, "%s: db", base);
        clsynth_test_assert_close(what, hdb, rdb, (size_t)c->Cout, atol, rtol);
        free(hy);
        free(hdx);
        free(hdw);
        free(hdb);
        free(ry);
        free(rdx);
        free(rdw);
        free(rdb);
        free_dev(&t);
        free_data(&d);
    }
}

static void check_plain(clsynth_conv_algo algo, double atol, double rtol) { check_plain_with(algo, atol, rtol, 0); }

START_TEST(igemm_forward_and_backward_match_reference) { check_plain(CLSYNTH_CONV_IGEMM, ATOL, RTOL); }
END_TEST

/* F(2x2,3x3) adds a few roundings per output (transforms of 4 terms, halves):
 * 3e-4 absolute on outputs of size ~3 here. Both engines of its 16 GEMMs. */
START_TEST(winograd_forward_and_backward_match_reference)
{
    check_plain_with(CLSYNTH_CONV_WINOGRAD, 3e-4, 3e-4, WINO_GEMM_IGEMM);
    check_plain_with(CLSYNTH_CONV_WINOGRAD, 3e-4, 3e-4, WINO_GEMM_DISPATCH);
}
END_TEST

/* Winograd's error is within a small factor of the direct kernel's (both
 * against the double reference), at a 64-channel layer. */
START_TEST(winograd_error_is_within_8x_the_direct_sums)
{
    const cv c = clsynth_test_under_oclgrind() ? (cv){ 1, 8, 6, 6, 4, 3, 1, 1 } : (cv){ 2, 64, 16, 16, 32, 3, 1, 1 };
    data d = make_data(&c, 77);
    float *ry = malloc(d.ny * sizeof(float));
    ref_conv2d_forward(d.x, d.w, d.b, ry, c.N, c.Cin, c.H, c.W, c.Cout, c.K, c.K, c.stride, c.pad);
    double err[2] = { 0, 0 }, ymax = 0;
    const clsynth_conv_algo algos[2] = { CLSYNTH_CONV_DIRECT, CLSYNTH_CONV_WINOGRAD };
    for (int a = 0; a < 2; a++) {
        dev t = upload(&c, &d, false);
        clsynth_tensor *y = clsynth_conv2d_algo(ctx, t.x, t.w, t.b, c.stride, c.pad, algos[a]);
        ck_assert_msg(y != NULL, "%s", ctx->err.msg);
        float *hy = clsynth_test_download(ctx, y);
        for (size_t i = 0; i < d.ny; i++) {
            err[a] = fmax(err[a], fabs((double)hy[i] - ry[i]));
            ymax = fmax(ymax, fabs((double)ry[i]));
        }
        free(hy);
        free_dev(&t);
        clsynth_release_activations(ctx);
    }
    printf("winograd_error: max |y| %.3g, max error direct %.3g, winograd %.3g (%.1fx)\n", ymax, err[0], err[1],
           err[1] / fmax(err[0], 1e-30));
    ck_assert_msg(err[1] <= 8 * fmax(err[0], 1e-7 * ymax), "winograd error %.3g vs direct %.3g", err[1], err[0]);
    free(ry);
    free_data(&d);
}
END_TEST

/* The K-split weight gradient: two runs bit-identical, and every split count
 * (forced) within float rounding of the unsplit sum. */
START_TEST(split_weight_gradient_is_deterministic)
{
    const cv c = clsynth_test_under_oclgrind() ? (cv){ 2, 3, 6, 6, 4, 3, 1, 1 } : (cv){ 3, 5, 23, 21, 6, 3, 1, 1 };
    data d = make_data(&c, 90);
    float *rdw = malloc(d.nw * sizeof(float));
    ref_conv2d_backward(d.x, d.w, d.dy, NULL, rdw, NULL, c.N, c.Cin, c.H, c.W, c.Cout, c.K, c.K, c.stride, c.pad);
    const clsynth_kdef *def = &clsynth_kdef_conv_igemm_bwd_weight;
    const clsynth_conv_shape s = { c.N, c.Cin, c.H, c.W, c.Cout, c.K, c.K, c.stride, c.pad };
    clsynth_kcfg cfg;
    ck_assert_msg(clsynth_kconfig(ctx, def, &s, NULL, &cfg) == 0, "%s", ctx->err.msg);
    const int splits[] = { 1, 2, 8, 32 };
    for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
        clsynth_kforce f = { .def = def };
        memcpy(f.v, cfg.v, sizeof f.v);
        f.v[IG_KSPLIT] = splits[k];
        if (clsynth_test_under_oclgrind() && splits[k] > 2)
            continue;
        float *dw[2];
        for (int run = 0; run < 2; run++) {
            dev t = upload(&c, &d, true);
            t.x->flags &= ~(unsigned)CLSYNTH_T_REQUIRES_GRAD;
            clsynth_tensor *y = clsynth_conv2d_forced(ctx, t.x, t.w, NULL, c.stride, c.pad, CLSYNTH_CONV_IGEMM, &f);
            ck_assert_msg(y != NULL, "%s", ctx->err.msg);
            clsynth_tensor *gy = clsynth_tensor_from_host(ctx, "dy", y->n, y->c, y->h, y->w, d.dy);
            ck_assert_msg(clsynth_backward_with(ctx, y, gy) == 0, "KSPLIT=%d: %s", splits[k], ctx->err.msg);
            ck_assert_msg(f.hits > 0, "the forced configuration was never resolved");
            dw[run] = clsynth_test_download(ctx, t.w->grad);
            free_dev(&t);
        }
        ck_assert_msg(memcmp(dw[0], dw[1], d.nw * sizeof(float)) == 0, "KSPLIT=%d: dw differs between runs",
                      splits[k]);
        char what[64];
        snprintf(what, sizeof what, "dw with KSPLIT=%d", splits[k]);
        clsynth_test_assert_close(what, dw[0], rdw, d.nw, ATOL, RTOL);
        free(dw[0]);
        free(dw[1]);
    }
    free(rdw);
    free_data(&d);
}
END_TEST

/* ------------------------------------------------------------ the fused op */

static const clsynth_act acts[] = { CLSYNTH_ACT_NONE, CLSYNTH_ACT_RELU, CLSYNTH_ACT_LEAKY_RELU, CLSYNTH_ACT_SIGMOID,
                                    CLSYNTH_ACT_TANH };

static int n_algos(void) { return clsynth_test_under_oclgrind() ? 3 : 4; }
static clsynth_conv_algo algo_at(int i)
{
    static const clsynth_conv_algo a[] = { CLSYNTH_CONV_DIRECT, CLSYNTH_CONV_IGEMM, CLSYNTH_CONV_WINOGRAD,
                                           CLSYNTH_CONV_IM2COL_GEMM };
    return a[i];
}

/* Every activation, with and without gate and residual, every algorithm:
 * output and all five gradients against the reference. */
START_TEST(fused_epilogues_match_reference)
{
    int n;
    const cv *cs = shape_list(&n);
    int used = clsynth_test_under_oclgrind() ? 1 : 3;
    for (int i = 0; i < used; i++) {
        const cv *c = &cs[i == 2 ? 6 : i];
        data d = make_data(c, 200 + (uint64_t)i);
        for (int ai = 0; ai < n_algos(); ai++) {
            clsynth_conv_algo algo = algo_at(ai);
            if (algo == CLSYNTH_CONV_WINOGRAD && !wino_ok(c))
                continue;
            for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++)
                for (int parts = 0; parts < 4; parts++) {
                    /* under Oclgrind: gate and residual both, and one other combination
                     * rotating with the activation (each algorithm still meets all four) */
                    if (clsynth_test_under_oclgrind() && parts != 3 && parts != (int)((k + (size_t)ai) % 3))
                        continue;
                    const bool use_g = parts & 1, use_r = parts & 2;
                    const float slope = acts[k] == CLSYNTH_ACT_LEAKY_RELU ? (parts == 3 ? -0.3f : 0.2f) : 0.0f;
                    float *ry = malloc(d.ny * sizeof(float)), *rdx = malloc(d.nx * sizeof(float));
                    float *rdw = malloc(d.nw * sizeof(float)), *rdb = malloc((size_t)c->Cout * sizeof(float));
                    float *rdg = malloc(d.ny * sizeof(float)), *rdr = malloc(d.ny * sizeof(float));
                    ref_conv2d_fused_forward(d.x, d.w, d.b, use_g ? d.g : NULL, use_r ? d.r : NULL, (int)acts[k],
                                             slope, ry, c->N, c->Cin, c->H, c->W, c->Cout, c->K, c->K, c->stride,
                                             c->pad);
                    ref_conv2d_fused_backward(d.x, d.w, d.b, use_g ? d.g : NULL, use_r ? d.r : NULL, (int)acts[k],
                                              slope, d.dy, rdx, rdw, rdb, rdg, rdr, c->N, c->Cin, c->H, c->W,
                                              c->Cout, c->K, c->K, c->stride, c->pad);
                    dev t = upload(c, &d, true);
                    const clsynth_conv_epilogue e = { acts[k], slope, use_g ? t.g : NULL, use_r ? t.r : NULL };
                    clsynth_tensor *y = clsynth_conv2d_fused_forced(ctx, t.x, t.w, t.b, c->stride, c->pad, &e, algo,
                                                                    NULL);
                    ck_assert_msg(y != NULL, "%s", ctx->err.msg);
                    float *hy = clsynth_test_download(ctx, y);
                    clsynth_tensor *gy = clsynth_tensor_from_host(ctx, "dy", y->n, y->c, y->h, y->w, d.dy);
                    ck_assert_msg(clsynth_backward_with(ctx, y, gy) == 0, "%s", ctx->err.msg);
                    char base[200], what[260];
                    char name[80];
                    snprintf(name, sizeof name, "fused %s act %d slope %.1f%s%s", clsynth_conv_algo_name(algo),
                             (int)acts[k], slope, use_g ? " gate" : "", use_r ? " residual" : "");
                    describe(c, name, base, sizeof base);
                    const double tol = algo == CLSYNTH_CONV_WINOGRAD ? 3e-4 : ATOL;
                    snprintf(what, sizeof what, "%s: y", base);
                    clsynth_test_assert_close(what, hy, ry, d.ny, tol, tol);
                    const clsynth_tensor *gt[5] = { t.x, t.w, t.b, t.g, t.r };
                    const float *rg[5] = { rdx, rdw, rdb, rdg, rdr };
                    static const char *const gn[5] = { "dx", "dw", "db", "dgate", "dresidual" };
                    for (int q = 0; q < 5; q++) {
                        if ((q == 3 && !use_g) || (q == 4 && !use_r)) {
                            ck_assert_msg(gt[q]->grad == NULL, "%s: %s without its part", base, gn[q]);
                            continue;
                        }
                        ck_assert_msg(gt[q]->grad != NULL, "%s: no %s", base, gn[q]);
                        float *h = clsynth_test_download(ctx, gt[q]->grad);
                        snprintf(what, sizeof what, "%s: %s", base, gn[q]);
                        clsynth_test_assert_close(what, h, rg[q], gt[q]->numel, tol, tol);
                        free(h);
                    }
                    free(hy);
                    free(ry);
                    free(rdx);
                    free(rdw);
                    free(rdb);
                    free(rdg);
                    free(rdr);
                    free_dev(&t);
                }
        }
        free_data(&d);
    }
}
END_TEST

/* With the same conv algorithm the fused op equals conv -> mul -> activation ->
 * add element for element (the epilogue rounds as the separate ops do), and so
 * do its gradients. */
START_TEST(fused_equals_the_unfused_ops)
{
    const cv c = { 2, 5, 9, 7, 6, 3, 1, 1 };
    data d = make_data(&c, 300);
    for (int ai = 0; ai < 2; ai++) {
        const clsynth_conv_algo algo = ai ? CLSYNTH_CONV_IGEMM : CLSYNTH_CONV_DIRECT;
        for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
            float *out[2], *grads[2][5];
            for (int fused = 0; fused < 2; fused++) {
                dev t = upload(&c, &d, true);
                clsynth_tensor *y;
                if (fused) {
                    const clsynth_conv_epilogue e = { acts[k], 0.2f, t.g, t.r };
                    y = clsynth_conv2d_fused_forced(ctx, t.x, t.w, t.b, c.stride, c.pad, &e, algo, NULL);
                } else {
                    y = clsynth_mul(ctx, clsynth_conv2d_algo(ctx, t.x, t.w, t.b, c.stride, c.pad, algo), t.g);
                    switch (acts[k]) {
                    case CLSYNTH_ACT_RELU: y = clsynth_relu(ctx, y); break;
                    case CLSYNTH_ACT_LEAKY_RELU: y = clsynth_leaky_relu(ctx, y, 0.2f); break;
                    case CLSYNTH_ACT_SIGMOID: y = clsynth_sigmoid(ctx, y); break;
                    case CLSYNTH_ACT_TANH: y = clsynth_tanh(ctx, y); break;
                    default: break;
                    }
                    y = clsynth_add(ctx, t.r, y);
                }
                ck_assert_msg(y != NULL, "%s", ctx->err.msg);
                out[fused] = clsynth_test_download(ctx, y);
                clsynth_tensor *gy = clsynth_tensor_from_host(ctx, "dy", y->n, y->c, y->h, y->w, d.dy);
                ck_assert_msg(clsynth_backward_with(ctx, y, gy) == 0, "%s", ctx->err.msg);
                const clsynth_tensor *gt[5] = { t.x, t.w, t.b, t.g, t.r };
                for (int q = 0; q < 5; q++)
                    grads[fused][q] = clsynth_test_download(ctx, gt[q]->grad);
                free_dev(&t);
            }
            ck_assert_msg(memcmp(out[0], out[1], d.ny * sizeof(float)) == 0, "%s act %d: outputs differ",
                          clsynth_conv_algo_name(algo), (int)acts[k]);
            const size_t nq[5] = { d.nx, d.nw, (size_t)c.Cout, d.ny, d.ny };
            for (int q = 0; q < 5; q++) {
                ck_assert_msg(memcmp(grads[0][q], grads[1][q], nq[q] * sizeof(float)) == 0,
                              "%s act %d: gradient %d differs", clsynth_conv_algo_name(algo), (int)acts[k], q);
                free(grads[0][q]);
                free(grads[1][q]);
            }
            free(out[0]);
            free(out[1]);
        }
    }
    free_data(&d);
}
END_TEST

typedef struct fd_user {
    cv c;
    clsynth_act act;
    float slope;
    clsynth_conv_algo algo;
} fd_user;

static clsynth_tensor *fused_fn(clsynth_ctx *cx, clsynth_tensor **in, void *user)
{
    const fd_user *u = user;
    const clsynth_conv_epilogue e = { u->act, u->slope, in[3], in[4] };
    return clsynth_conv2d_fused_forced(cx, in[0], in[1], in[2], u->c.stride, u->c.pad, &e, u->algo, NULL);
}

/* Every activation with gate and residual, at awkward shapes: central
 * differences, eps 1e-3, |analytic - numeric| <= 5e-3 + 2e-2 |numeric|, 6 sampled
 * elements of each of the five inputs. */
START_TEST(fused_gradients_match_finite_differences)
{
    static const cv small[] = { { 2, 3, 5, 7, 5, 3, 2, 1 }, { 2, 5, 5, 3, 3, 1, 1, 0 }, { 1, 4, 6, 5, 3, 3, 1, 1 } };
    int used = clsynth_test_under_oclgrind() ? 1 : 3;
    for (int i = 0; i < used; i++) {
        const cv *c = &small[i];
        data d = make_data(c, 400 + (uint64_t)i);
        for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
            const clsynth_conv_algo algo = wino_ok(c) && (k & 1) ? CLSYNTH_CONV_WINOGRAD : CLSYNTH_CONV_IGEMM;
            dev t = upload(c, &d, true);
            clsynth_tensor *in[5] = { t.x, t.w, t.b, t.g, t.r };
            fd_user u = { *c, acts[k], 0.2f, algo };
            char what[200], name[80];
            snprintf(name, sizeof name, "fused %s act %d", clsynth_conv_algo_name(algo), (int)acts[k]);
            describe(c, name, what, sizeof what);
            clsynth_test_gradcheck(ctx, what, fused_fn, in, 5, &u, 1e-3f, 5e-3, 2e-2, 6);
            clsynth_test_check_accumulates(ctx, what, fused_fn, in, 5, &u);
            free_dev(&t);
        }
        free_data(&d);
    }
}
END_TEST

/* A device with 32 items per group and 2 KiB of local memory (rusticl's
 * smallest kernels, a tight local memory): the defaults fit and match. */
START_TEST(igemm_and_winograd_fit_a_small_device)
{
    clsynth_ctx *small = clsynth_test_ctx();
    clsynth_ctx_emulate_limits(small, 32, 2048);
    clsynth_ctx *keep = ctx;
    ctx = small;
    check_plain(CLSYNTH_CONV_IGEMM, ATOL, RTOL);
    check_plain(CLSYNTH_CONV_WINOGRAD, 3e-4, 3e-4);
    ctx = keep;
    clsynth_ctx_free(small);
}
END_TEST

/* Winograd in chunks of 16 output tiles (a small column budget) gives the
 * same result as in one chunk. */
START_TEST(winograd_in_tile_chunks_is_the_same)
{
    const cv c = { 2, 4, 13, 11, 5, 3, 1, 1 };
    data d = make_data(&c, 500);
    float *y[2];
    for (int k = 0; k < 2; k++) {
        ctx->conv_col_bytes = k ? 1 : 0; /* 1 byte: the minimum chunk of 16 tiles */
        dev t = upload(&c, &d, false);
        clsynth_tensor *o = clsynth_conv2d_algo(ctx, t.x, t.w, t.b, c.stride, c.pad, CLSYNTH_CONV_WINOGRAD);
        ck_assert_msg(o != NULL, "%s", ctx->err.msg);
        y[k] = clsynth_test_download(ctx, o);
        free_dev(&t);
        clsynth_release_activations(ctx);
    }
    ctx->conv_col_bytes = 0;
    ck_assert_msg(memcmp(y[0], y[1], d.ny * sizeof(float)) == 0, "chunked Winograd differs");
    free(y[0]);
    free(y[1]);
    free_data(&d);
}
END_TEST

START_TEST(fused_bad_arguments_name_the_tensors)
{
    const cv c = { 2, 3, 5, 7, 5, 3, 1, 1 };
    data d = make_data(&c, 600);
    dev t = upload(&c, &d, false);
    clsynth_tensor *wrong = clsynth_tensor_new(ctx, "wrong_gate", 2, 5, 5, 6);
    clsynth_conv_epilogue e = { CLSYNTH_ACT_RELU, 0.0f, wrong, NULL };
    ck_assert_ptr_null(clsynth_conv2d_fused(ctx, t.x, t.w, t.b, 1, 1, &e));
    ck_assert_msg(strstr(ctx->err.msg, "gate") && strstr(ctx->err.msg, "wrong_gate") &&
                      strstr(ctx->err.msg, "(2, 5, 5, 7)"),
                  "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    e = (clsynth_conv_epilogue){ (clsynth_act)9, 0.0f, NULL, NULL };
    ck_assert_ptr_null(clsynth_conv2d_fused(ctx, t.x, t.w, t.b, 1, 1, &e));
    ck_assert_msg(strstr(ctx->err.msg, "activation 9"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_ptr_null(clsynth_conv2d_algo(ctx, t.x, t.w, t.b, 2, 1, CLSYNTH_CONV_WINOGRAD));
    ck_assert_msg(strstr(ctx->err.msg, "not 3x3 stride 1"), "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    free_dev(&t);
    clsynth_release_activations(ctx);
    free_data(&d);
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
    /* one context: CLBlast compiles its kernels once per context */
    setenv("CK_FORK", "no", 0);
    Suite *s = suite_create("conv_igemm");
    TCase *tc = tcase_create("conv_igemm");
    tcase_add_unchecked_fixture(tc, setup_once, teardown_once);
    tcase_set_timeout(tc, clsynth_test_under_oclgrind() ? 1800 : 600);
    tcase_add_test(tc, igemm_forward_and_backward_match_reference);
    tcase_add_test(tc, winograd_forward_and_backward_match_reference);
    tcase_add_test(tc, winograd_error_is_within_8x_the_direct_sums);
    tcase_add_test(tc, split_weight_gradient_is_deterministic);
    tcase_add_test(tc, fused_epilogues_match_reference);
    tcase_add_test(tc, fused_equals_the_unfused_ops);
    tcase_add_test(tc, fused_gradients_match_finite_differences);
    tcase_add_test(tc, igemm_and_winograd_fit_a_small_device);
    tcase_add_test(tc, winograd_in_tile_chunks_is_the_same);
    tcase_add_test(tc, fused_bad_arguments_name_the_tensors);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
