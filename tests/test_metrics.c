/* Evaluation metrics against hand-computed cases: mIoU (absent classes, the
 * ignore label, both averaging conventions), pixel accuracy, the Frechet
 * distance (identical sets, shifted sets, closed forms), the Jacobi eigen
 * solver, the 2-D transforms (clFFT and clsynth's DFT kernels) against a naive
 * DFT, and the radial power spectrum of known sinusoids.
 * Under Oclgrind (CLSYNTH_OCLGRIND_OK) the spectra run on the DFT kernels
 * (CLSYNTH_FFT=dft): Oclgrind reports data races inside clFFT's own generated
 * kernels (global reads and writes of one buffer by work-items of a group,
 * ordered only by local-memory barriers), which are not ours to fix. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nets/metrics.h"
#include "nets/spectrum.h"
#include "testutil.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- segmentation scores ---- */

START_TEST(miou_skips_absent_classes_and_the_ignore_label)
{
    /* K = 4. Pixel 4 is ignored (its prediction 3 must not count); class 3
     * is then absent from both ground truth and prediction.
     * gt0: pred 0,0,1   gt1: pred 1,1,0   gt2: pred 2
     * IoU0 = 2 / (3 + 3 - 2) = 0.5, IoU1 = 0.5, IoU2 = 1, IoU3 = NaN
     * mIoU = 2/3, accuracy = 5/7. */
    const int32_t gt[8] = { 0, 0, 1, 1, 255, 2, 0, 1 };
    const int32_t pr[8] = { 0, 1, 1, 1, 3, 2, 0, 0 };
    clsynth_confusion c;
    clsynth_err err;
    ck_assert_int_eq(clsynth_confusion_init(&c, 4, 255, &err), 0);
    ck_assert_msg(clsynth_confusion_add(&c, gt, pr, 8, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(c.counted, 7);
    ck_assert_uint_eq(c.ignored, 1);
    double iou[4];
    int used = -1;
    double m = clsynth_miou(&c, CLSYNTH_MIOU_PRESENT, iou, &used);
    ck_assert_int_eq(used, 3);
    ck_assert_double_eq_tol(iou[0], 0.5, 1e-12);
    ck_assert_double_eq_tol(iou[1], 0.5, 1e-12);
    ck_assert_double_eq_tol(iou[2], 1.0, 1e-12);
    ck_assert(isnan(iou[3]));
    ck_assert_double_eq_tol(m, 2.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(clsynth_miou(&c, CLSYNTH_MIOU_GT, NULL, NULL), 2.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(clsynth_pixel_accuracy(&c), 5.0 / 7.0, 1e-12);
    clsynth_confusion_free(&c);
}
END_TEST

START_TEST(miou_conventions_differ_on_a_class_only_predicted)
{
    /* Class 3 is predicted once but absent from the ground truth; class 2 is
     * absent from both. IoU0 = 1/2, IoU1 = 1, IoU3 = 0.
     * present-in-GT-or-prediction: (0.5 + 1 + 0) / 3 = 0.5; present-in-GT: 0.75. */
    const int32_t gt[4] = { 0, 0, 1, 1 };
    const int32_t pr[4] = { 0, 3, 1, 1 };
    clsynth_confusion c;
    clsynth_err err;
    ck_assert_int_eq(clsynth_confusion_init(&c, 4, 255, &err), 0);
    ck_assert_int_eq(clsynth_confusion_add(&c, gt, pr, 4, &err), 0);
    int used = 0;
    ck_assert_double_eq_tol(clsynth_miou(&c, CLSYNTH_MIOU_PRESENT, NULL, &used), 0.5, 1e-12);
    ck_assert_int_eq(used, 3);
    ck_assert_double_eq_tol(clsynth_miou(&c, CLSYNTH_MIOU_GT, NULL, &used), 0.75, 1e-12);
    ck_assert_int_eq(used, 2);
    ck_assert_double_eq_tol(clsynth_pixel_accuracy(&c), 0.75, 1e-12);
    ck_assert_double_eq_tol(clsynth_mean_class_accuracy(&c), 0.75, 1e-12); /* (1/2 + 1) / 2 */
    clsynth_confusion_free(&c);
}
END_TEST

START_TEST(confusion_rejects_labels_out_of_range)
{
    const int32_t gt[3] = { 0, 7, 1 };
    const int32_t pr[3] = { 0, 1, 1 };
    clsynth_confusion c;
    clsynth_err err;
    ck_assert_int_eq(clsynth_confusion_init(&c, 3, 255, &err), 0);
    ck_assert_int_eq(clsynth_confusion_add(&c, gt, pr, 3, &err), -1);
    ck_assert_msg(strstr(err.msg, "ground truth 7") && strstr(err.msg, "pixel 1"), "%s", err.msg);
    const int32_t gt2[1] = { 0 }, pr2[1] = { 3 };
    ck_assert_int_eq(clsynth_confusion_add(&c, gt2, pr2, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "prediction 3"), "%s", err.msg);
    clsynth_confusion_free(&c);
}
END_TEST

START_TEST(confusion_from_logits_takes_the_argmax)
{
    /* 3 classes, 1x4 image; pixel 3 has a tie between classes 1 and 2 -> 1. */
    const float logits[3 * 4] = {
        5, 0, 0, 0,   /* class 0 */
        1, 3, 0, 2,   /* class 1 */
        0, 1, 4, 2,   /* class 2 */
    };
    const int32_t gt[4] = { 0, 1, 255, 2 };
    clsynth_confusion c;
    clsynth_err err;
    ck_assert_int_eq(clsynth_confusion_init(&c, 3, 255, &err), 0);
    ck_assert_msg(clsynth_confusion_add_logits(&c, gt, logits, 1, 4, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(c.counted, 3);
    ck_assert_uint_eq(c.m[0 * 3 + 0], 1);
    ck_assert_uint_eq(c.m[1 * 3 + 1], 1);
    ck_assert_uint_eq(c.m[2 * 3 + 1], 1);
    ck_assert_double_eq_tol(clsynth_pixel_accuracy(&c), 2.0 / 3.0, 1e-12);
    clsynth_confusion_free(&c);
}
END_TEST

/* ---- Frechet distance ---- */

static void gaussian_set(float *x, int n, int d, uint64_t seed)
{
    /* Correlated features: x = A z with z uniform, A lower triangular. */
    float *z = malloc((size_t)n * d * sizeof *z);
    clsynth_test_fill_uniform(z, (size_t)n * d, -1.0f, 1.0f, seed);
    for (int v = 0; v < n; v++)
        for (int i = 0; i < d; i++) {
            double s = 0.0;
            for (int j = 0; j <= i; j++)
                s += (1.0 / (1.0 + i - j)) * z[(size_t)v * d + j];
            x[(size_t)v * d + i] = (float)s;
        }
    free(z);
}

START_TEST(frechet_of_identical_sets_is_zero)
{
    enum { N = 200, D = 24 };
    float *x = malloc(sizeof(float) * N * D);
    gaussian_set(x, N, D, 11);
    clsynth_feature_stats a, b;
    clsynth_err err;
    ck_assert_int_eq(clsynth_feature_stats_init(&a, D, &err), 0);
    ck_assert_int_eq(clsynth_feature_stats_init(&b, D, &err), 0);
    clsynth_feature_stats_add(&a, x, N);
    for (int v = N - 1; v >= 0; v--) /* other order, same set */
        clsynth_feature_stats_add(&b, x + (size_t)v * D, 1);
    double fd = -1;
    ck_assert_msg(clsynth_frechet_from_stats(&a, &b, &fd, &err) == 0, "%s", err.msg);
    ck_assert_msg(fabs(fd) < 1e-9, "Frechet distance of a set with itself: %g (tolerance 1e-9)", fd);
    clsynth_feature_stats_free(&a);
    clsynth_feature_stats_free(&b);
    free(x);
}
END_TEST

START_TEST(frechet_of_a_shifted_set_is_the_squared_shift)
{
    /* Same covariance, means differ by delta: d^2 = |delta|^2 exactly. */
    enum { N = 300, D = 16 };
    float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N * D);
    gaussian_set(x, N, D, 5);
    double want = 0.0;
    for (int i = 0; i < D; i++) {
        float delta = 0.25f * (float)(i % 5) - 0.4f; /* exactly representable steps */
        want += (double)delta * delta;
        for (int v = 0; v < N; v++)
            y[(size_t)v * D + i] = x[(size_t)v * D + i] + delta;
    }
    clsynth_feature_stats a, b;
    clsynth_err err;
    ck_assert_int_eq(clsynth_feature_stats_init(&a, D, &err), 0);
    ck_assert_int_eq(clsynth_feature_stats_init(&b, D, &err), 0);
    clsynth_feature_stats_add(&a, x, N);
    clsynth_feature_stats_add(&b, y, N);
    double fd = 0;
    ck_assert_int_eq(clsynth_frechet_from_stats(&a, &b, &fd, &err), 0);
    /* float rounding of x + delta perturbs the covariance slightly: 1e-5 relative. */
    ck_assert_msg(fabs(fd - want) < 1e-5 * want, "got %.9g, want %.9g", fd, want);
    clsynth_feature_stats_free(&a);
    clsynth_feature_stats_free(&b);
    free(x);
    free(y);
}
END_TEST

START_TEST(frechet_matches_closed_forms)
{
    clsynth_err err;
    /* Diagonal covariances: |dmu|^2 + sum (sqrt(a) - sqrt(b))^2. */
    {
        enum { D = 5 };
        double mu1[D] = { 0, 1, 2, 3, 4 }, mu2[D] = { 1, 1, 0, 3, 4.5 };
        double a[D] = { 1, 4, 9, 0.25, 2 }, b[D] = { 4, 1, 9, 1, 0.5 };
        double c1[D * D] = { 0 }, c2[D * D] = { 0 }, want = 1 + 0 + 4 + 0 + 0.25;
        for (int i = 0; i < D; i++) {
            c1[i * D + i] = a[i];
            c2[i * D + i] = b[i];
            want += (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i]));
        }
        double fd;
        ck_assert_int_eq(clsynth_frechet_distance(D, mu1, c1, mu2, c2, &fd, &err), 0);
        ck_assert_msg(fabs(fd - want) < 1e-10, "diagonal: got %.12g want %.12g", fd, want);
    }
    /* 2x2, non-commuting: Tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for M = C1 C2's
     * PSD similar form; with equal means d^2 = tr C1 + tr C2 - 2 sqrt(tr(C1 C2) + 2 sqrt(det C1 det C2)). */
    {
        double c1[4] = { 2.0, 0.6, 0.6, 1.0 }, c2[4] = { 1.0, -0.3, -0.3, 3.0 };
        double mu[2] = { 0.5, -1 };
        double tr12 = c1[0] * c2[0] + c1[1] * c2[2] + c1[2] * c2[1] + c1[3] * c2[3];
        double det1 = c1[0] * c1[3] - c1[1] * c1[2], det2 = c2[0] * c2[3] - c2[1] * c2[2];
        double want = (c1[0] + c1[3]) + (c2[0] + c2[3]) - 2.0 * sqrt(tr12 + 2.0 * sqrt(det1 * det2));
        double fd, fd_rev;
        ck_assert_int_eq(clsynth_frechet_distance(2, mu, c1, mu, c2, &fd, &err), 0);
        ck_assert_int_eq(clsynth_frechet_distance(2, mu, c2, mu, c1, &fd_rev, &err), 0);
        ck_assert_msg(fabs(fd - want) < 1e-12, "2x2: got %.15g want %.15g", fd, want);
        ck_assert_msg(fabs(fd_rev - want) < 1e-12, "2x2 reversed: got %.15g want %.15g", fd_rev, want);
    }
}
END_TEST

START_TEST(frechet_is_symmetric_in_high_dimension)
{
    /* d = 64 from two different sets: the computation is not symmetric in its
     * arguments, the distance is. */
    enum { N = 160, D = 64 };
    float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N * D);
    gaussian_set(x, N, D, 1);
    clsynth_test_fill_uniform(y, (size_t)N * D, -1.5f, 1.0f, 2);
    clsynth_feature_stats a, b;
    clsynth_err err;
    ck_assert_int_eq(clsynth_feature_stats_init(&a, D, &err), 0);
    ck_assert_int_eq(clsynth_feature_stats_init(&b, D, &err), 0);
    clsynth_feature_stats_add(&a, x, N);
    clsynth_feature_stats_add(&b, y, N);
    double ab, ba;
    ck_assert_int_eq(clsynth_frechet_from_stats(&a, &b, &ab, &err), 0);
    ck_assert_int_eq(clsynth_frechet_from_stats(&b, &a, &ba, &err), 0);
    ck_assert_msg(ab > 1.0, "distinct sets should be far apart: %g", ab);
    ck_assert_msg(fabs(ab - ba) < 1e-8 * ab, "d(a,b) = %.12g, d(b,a) = %.12g", ab, ba);
    clsynth_feature_stats_free(&a);
    clsynth_feature_stats_free(&b);
    free(x);
    free(y);
}
END_TEST

START_TEST(jacobi_eigenpairs_reconstruct_the_matrix)
{
    enum { D = 40 };
    static double a[D * D], w[D * D], v[D * D], l[D];
    float r[D * D];
    clsynth_test_fill_uniform(r, D * D, -1, 1, 3);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++)
            a[i * D + j] = 0.5 * ((double)r[i * D + j] + r[j * D + i]);
    memcpy(w, a, sizeof a);
    int sweeps = clsynth_sym_eigen(D, w, l, v);
    ck_assert_msg(sweeps >= 0 && sweeps < 30, "sweeps %d", sweeps);
    for (int i = 1; i < D; i++)
        ck_assert(l[i - 1] <= l[i]);
    double worst = 0.0;
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double s = 0.0, o = 0.0;
            for (int k = 0; k < D; k++) {
                s += v[i * D + k] * l[k] * v[j * D + k]; /* V L V^T */
                o += v[k * D + i] * v[k * D + j];        /* V^T V */
            }
            worst = fmax(worst, fabs(s - a[i * D + j]));
            worst = fmax(worst, fabs(o - (i == j)));
        }
    ck_assert_msg(worst < 1e-10, "reconstruction / orthonormality error %g (tolerance 1e-10)", worst);
}
END_TEST

/* ---- clFFT transforms and radial spectra ---- */

/* The CLSYNTH_FFT the spectrum tests run with: clFFT's default, DFT kernels
 * under Oclgrind (see the top of the file). */
static void default_fft_env(void)
{
    if (clsynth_test_under_oclgrind())
        setenv("CLSYNTH_FFT", "dft", 1);
    else
        unsetenv("CLSYNTH_FFT");
}

/* Max |device - double-precision DFT| of n random h x w images through the
 * backend CLSYNTH_FFT selects (mode), relative to the largest coefficient. */
static double rfft2_error(const char *mode, int n, int h, int w, const char **backend)
{
    const int wc = w / 2 + 1;
    setenv("CLSYNTH_FFT", mode, 1);
    clsynth_ctx *ctx = clsynth_test_ctx();
    clsynth_spectrum *s = clsynth_spectrum_create(ctx);
    ck_assert_msg(s != NULL, "%s", ctx->err.msg);
    float *x = malloc(sizeof(float) * n * h * w), *f = malloc(sizeof(float) * n * h * wc * 2);
    clsynth_test_fill_uniform(x, (size_t)n * h * w, -1, 1, 9);
    ck_assert_msg(clsynth_spectrum_rfft2(s, x, n, h, w, f) == 0, "%s %dx%d: %s", mode, h, w, ctx->err.msg);
    *backend = clsynth_spectrum_backend(s);
    double worst = 0.0, big = 0.0;
    for (int i = 0; i < n; i++)
        for (int ky = 0; ky < h; ky++)
            for (int kx = 0; kx < wc; kx++) {
                double re = 0.0, im = 0.0;
                for (int y = 0; y < h; y++)
                    for (int xx = 0; xx < w; xx++) {
                        double ph = -2.0 * M_PI * ((double)ky * y / h + (double)kx * xx / w);
                        double v = x[(size_t)i * h * w + (size_t)y * w + xx];
                        re += v * cos(ph);
                        im += v * sin(ph);
                    }
                size_t k = ((size_t)i * h * wc + (size_t)ky * wc + kx) * 2;
                worst = fmax(worst, fmax(fabs(f[k] - re), fabs(f[k + 1] - im)));
                big = fmax(big, hypot(re, im));
            }
    free(x);
    free(f);
    clsynth_spectrum_free(s);
    clsynth_ctx_free(ctx);
    default_fft_env();
    return worst / big;
}

/* clFFT (or, on a device whose compiler rejects clFFT's program for a size,
 * the DFT kernels it falls back to) and the DFT kernels forced: odd sizes
 * (3*5 x 3*7, a batch of 3) and 32x32 (a size Intel's CPU runtime cannot
 * build with clFFT). Tolerance: 2e-5 of the largest coefficient magnitude
 * (single precision; the direct DFT sums h + w terms per coefficient). */
START_TEST(rfft2_matches_a_naive_dft_with_clfft_and_with_the_dft_kernels)
{
    static const struct { int n, h, w; } sizes[] = { { 3, 15, 21 }, { 2, 32, 32 }, { 1, 8, 24 } };
    static const char *modes[] = { "clfft", "dft" };
    for (int m = clsynth_test_under_oclgrind() ? 1 : 0; m < 2; m++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            const char *backend = NULL;
            double e = rfft2_error(modes[m], sizes[k].n, sizes[k].h, sizes[k].w, &backend);
            ck_assert_msg(e <= 2e-5, "CLSYNTH_FFT=%s (ran on %s), %dx%d: max error %g of the largest coefficient",
                          modes[m], backend, sizes[k].h, sizes[k].w, e);
            if (m == 1)
                ck_assert_str_eq(backend, "dft");
            else
                ck_assert_msg(strcmp(backend, "clFFT") == 0 || strcmp(backend, "dft") == 0, "backend %s", backend);
        }
}
END_TEST

START_TEST(an_unknown_fft_backend_is_refused_by_name)
{
    setenv("CLSYNTH_FFT", "fftw", 1);
    clsynth_ctx *ctx = clsynth_test_ctx();
    ck_assert_ptr_null(clsynth_spectrum_create(ctx));
    ck_assert_msg(strstr(ctx->err.msg, "CLSYNTH_FFT=fftw"), "%s", ctx->err.msg);
    default_fft_env();
    clsynth_ctx_free(ctx);
}
END_TEST

START_TEST(clfft_short_batch_ignores_stale_images)
{
    /* clFFT packs pairs of real rows into one complex transform: a short
     * batch after a full one of huge values must not pick them up. */
    enum { H = 15, W = 21, WC = W / 2 + 1, BIG = 40 };
    clsynth_ctx *ctx = clsynth_test_ctx();
    clsynth_spectrum *s = clsynth_spectrum_create(ctx);
    ck_assert_msg(s != NULL, "%s", ctx->err.msg);
    float *big = malloc(sizeof(float) * BIG * H * W), *fb = malloc(sizeof(float) * BIG * H * WC * 2);
    clsynth_test_fill_uniform(big, (size_t)BIG * H * W, -1e15f, 1e15f, 21);
    ck_assert_msg(clsynth_spectrum_rfft2(s, big, BIG, H, W, fb) == 0, "%s", ctx->err.msg);
    float x[H * W], f[H * WC * 2];
    clsynth_test_fill_uniform(x, H * W, -1, 1, 22);
    ck_assert_msg(clsynth_spectrum_rfft2(s, x, 1, H, W, f) == 0, "%s", ctx->err.msg);
    double worst = 0.0;
    for (int ky = 0; ky < H; ky++)
        for (int kx = 0; kx < WC; kx++) {
            double re = 0.0, im = 0.0;
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    double ph = -2.0 * M_PI * ((double)ky * y / H + (double)kx * xx / W);
                    re += x[y * W + xx] * cos(ph);
                    im += x[y * W + xx] * sin(ph);
                }
            worst = fmax(worst, fmax(fabs(f[2 * (ky * WC + kx)] - re), fabs(f[2 * (ky * WC + kx) + 1] - im)));
        }
    ck_assert_msg(worst < 1e-3, "max error %g (tolerance 1e-3)", worst);
    free(big);
    free(fb);
    clsynth_spectrum_free(s);
    clsynth_ctx_free(ctx);
}
END_TEST

/* cos(2 pi (fx x / w + fy y / h)) as a 1-channel image set of n copies. */
static float *cosine_images(int n, int h, int w, int fx, int fy, float amp)
{
    float *x = malloc(sizeof(float) * (size_t)n * h * w);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++)
                x[((size_t)i * h + y) * w + xx] =
                    amp * (float)cos(2.0 * M_PI * ((double)fx * xx / w + (double)fy * y / h));
    return x;
}

static int peak_bin(const clsynth_radial_profile *p)
{
    double *l = malloc(sizeof(double) * p->nbins);
    clsynth_err err;
    ck_assert_int_eq(clsynth_profile_log_power(p, l, &err), 0);
    int best = 1;
    for (int b = 1; b < p->nbins; b++)
        if (l[b] > l[best])
            best = b;
    free(l);
    return best;
}

START_TEST(spectrum_of_a_sinusoid_peaks_at_its_radius)
{
    clsynth_ctx *ctx = clsynth_test_ctx();
    clsynth_spectrum *s = clsynth_spectrum_create(ctx);
    ck_assert_msg(s != NULL, "%s", ctx->err.msg);
    clsynth_err err;
    struct { int h, w, fx, fy, bin; } cases[] = {
        { 32, 32, 5, 0, 5 },  /* along x */
        { 32, 32, 3, 4, 5 },  /* diagonal: radius sqrt(9 + 16) = 5 */
        { 24, 40, 10, 0, 6 }, /* f = 10/40 = 0.25 cycles/px, S = 24 -> bin 6 */
        { 24, 40, 0, 3, 3 },  /* f = 3/24 = 0.125 -> bin 3 */
        { 32, 32, 4, 4, 6 },  /* radius 4 sqrt(2) = 5.66 rounds to 6 */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        clsynth_radial_profile p;
        ck_assert_int_eq(clsynth_profile_init(&p, cases[k].h, cases[k].w, &err), 0);
        float *x = cosine_images(2, cases[k].h, cases[k].w, cases[k].fx, cases[k].fy, 1.0f);
        ck_assert_msg(clsynth_spectrum_accumulate(s, &p, x, 2, 1) == 0, "%s", ctx->err.msg);
        ck_assert_int_eq(p.images, 2);
        int b = peak_bin(&p);
        ck_assert_msg(b == cases[k].bin, "case %zu: peak at bin %d, want %d", k, b, cases[k].bin);
        /* Parseval: bin means times the bins' coefficient counts over the full
         * plane give the image energy sum x^2 = h w / 2 (unit cosine). */
        int h = cases[k].h, w = cases[k].w;
        double *cnt = calloc((size_t)p.nbins, sizeof *cnt), energy = 0.0;
        for (int ky = 0; ky < h; ky++)
            for (int kx = 0; kx < w; kx++) {
                int bb = clsynth_spectrum_bin(h, w, ky, kx);
                if (bb >= 0)
                    cnt[bb] += 1.0;
            }
        for (int bb = 0; bb < p.nbins; bb++)
            energy += p.sum[bb] / (double)p.images * cnt[bb];
        ck_assert_msg(fabs(energy - 0.5 * h * w) < 1e-4 * h * w, "case %zu: energy %g, want %g", k, energy,
                      0.5 * h * w);
        free(cnt);
        free(x);
        clsynth_profile_free(&p);
    }
    clsynth_spectrum_free(s);
    clsynth_ctx_free(ctx);
}
END_TEST

START_TEST(spectral_distance_counts_decades)
{
    /* Same images: 0. Amplitude x10: power x100 in every bin = 2 decades. */
    enum { N = 3, H = 16, W = 24 };
    clsynth_ctx *ctx = clsynth_test_ctx();
    clsynth_spectrum *s = clsynth_spectrum_create(ctx);
    ck_assert_msg(s != NULL, "%s", ctx->err.msg);
    float *x = malloc(sizeof(float) * N * 3 * H * W), *y = malloc(sizeof(float) * N * 3 * H * W);
    clsynth_test_fill_uniform(x, (size_t)N * 3 * H * W, -1, 1, 4);
    for (size_t i = 0; i < (size_t)N * 3 * H * W; i++)
        y[i] = 10.0f * x[i];
    clsynth_radial_profile a, a2, b;
    clsynth_err err;
    ck_assert_int_eq(clsynth_profile_init(&a, H, W, &err), 0);
    ck_assert_int_eq(clsynth_profile_init(&a2, H, W, &err), 0);
    ck_assert_int_eq(clsynth_profile_init(&b, H, W, &err), 0);
    ck_assert_msg(clsynth_spectrum_accumulate(s, &a, x, N, 3) == 0, "%s", ctx->err.msg);
    ck_assert_msg(clsynth_spectrum_accumulate(s, &a2, x, N, 3) == 0, "%s", ctx->err.msg);
    ck_assert_msg(clsynth_spectrum_accumulate(s, &b, y, N, 3) == 0, "%s", ctx->err.msg);
    double d;
    ck_assert_int_eq(clsynth_spectral_distance(&a, &a2, 0, 0, &d, &err), 0);
    ck_assert_msg(d < 1e-12, "same set: %g", d);
    ck_assert_int_eq(clsynth_spectral_distance(&a, &b, 0, 0, &d, &err), 0);
    ck_assert_msg(fabs(d - 2.0) < 1e-4, "x10 amplitude: %g decades, want 2", d);
    ck_assert_int_eq(clsynth_spectral_distance(&a, &b, a.nbins / 2, a.nbins, &d, &err), 0);
    ck_assert_msg(fabs(d - 2.0) < 1e-4, "x10 amplitude, high band: %g decades, want 2", d);
    clsynth_radial_profile other;
    ck_assert_int_eq(clsynth_profile_init(&other, H, W + 2, &err), 0);
    ck_assert_int_eq(clsynth_spectral_distance(&a, &other, 0, 0, &d, &err), -1);
    clsynth_profile_free(&other);
    clsynth_profile_free(&a);
    clsynth_profile_free(&a2);
    clsynth_profile_free(&b);
    free(x);
    free(y);
    clsynth_spectrum_free(s);
    clsynth_ctx_free(ctx);
}
END_TEST

START_TEST(spectrum_rejects_sizes_clfft_cannot_do_and_names_them)
{
    clsynth_ctx *ctx = clsynth_test_ctx();
    clsynth_spectrum *s = clsynth_spectrum_create(ctx);
    ck_assert_msg(s != NULL, "%s", ctx->err.msg);
    float x[17 * 8] = { 0 }, f[17 * 5 * 2];
    ck_assert_int_eq(clsynth_spectrum_rfft2(s, x, 1, 17, 8, f), -1);
    ck_assert_msg(strstr(ctx->err.msg, "height 17"), "%s", ctx->err.msg);
    clsynth_spectrum_free(s);
    /* A second engine after the first was freed: clFFT set up again. */
    clsynth_ctx_clear_error(ctx);
    s = clsynth_spectrum_create(ctx);
    ck_assert_msg(s != NULL, "%s", ctx->err.msg);
    ck_assert_msg(clsynth_spectrum_rfft2(s, x, 1, 16, 8, f) == 0, "%s", ctx->err.msg);
    clsynth_spectrum_free(s);
    clsynth_ctx_free(ctx);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *seg = tcase_create("segmentation");
    tcase_add_test(seg, miou_skips_absent_classes_and_the_ignore_label);
    tcase_add_test(seg, miou_conventions_differ_on_a_class_only_predicted);
    tcase_add_test(seg, confusion_rejects_labels_out_of_range);
    tcase_add_test(seg, confusion_from_logits_takes_the_argmax);
    suite_add_tcase(s, seg);
    TCase *fr = tcase_create("frechet");
    tcase_add_test(fr, frechet_of_identical_sets_is_zero);
    tcase_add_test(fr, frechet_of_a_shifted_set_is_the_squared_shift);
    tcase_add_test(fr, frechet_matches_closed_forms);
    tcase_add_test(fr, frechet_is_symmetric_in_high_dimension);
    tcase_add_test(fr, jacobi_eigenpairs_reconstruct_the_matrix);
    suite_add_tcase(s, fr);
    TCase *sp = tcase_create("spectrum");
    tcase_set_timeout(sp, 600);
    tcase_add_test(sp, rfft2_matches_a_naive_dft_with_clfft_and_with_the_dft_kernels);
    tcase_add_test(sp, an_unknown_fft_backend_is_refused_by_name);
    tcase_add_test(sp, clfft_short_batch_ignores_stale_images);
    tcase_add_test(sp, spectrum_of_a_sinusoid_peaks_at_its_radius);
    tcase_add_test(sp, spectral_distance_counts_decades);
    tcase_add_test(sp, spectrum_rejects_sizes_clfft_cannot_do_and_names_them);
    suite_add_tcase(s, sp);
    return s;
}

int main(void)
{
    default_fft_env();
    return clsynth_test_run(suite());
}
