#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint.h"

int clsynth_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The context slot of the running test file's fixture (tests run one at a time). */
static clsynth_ctx **fixture_ctx;

static void fixture_setup(void) { *fixture_ctx = clsynth_test_ctx(); }

static void fixture_teardown(void)
{
    clsynth_ctx_free(*fixture_ctx);
    *fixture_ctx = NULL;
}

/* A test case of suite s with the context fixture (ctx NULL: none) and the timeout. */
static TCase *add_case(Suite *s, const char *name, clsynth_ctx **ctx, int timeout_s)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, clsynth_test_under_oclgrind() && timeout_s < 1800 ? 1800 : timeout_s);
    if (ctx) {
        fixture_ctx = ctx;
        tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
    }
    suite_add_tcase(s, tc);
    return tc;
}

int clsynth_test_main(const char *name, clsynth_ctx **ctx, int timeout_s, const TTest *const *tests, int n)
{
    Suite *s = suite_create(name);
    TCase *tc = add_case(s, name, ctx, timeout_s);
    for (int i = 0; i < n; i++)
        tcase_add_test(tc, tests[i]);
    return clsynth_test_run(s);
}

int clsynth_test_main_cases(const char *name, clsynth_ctx **ctx, int timeout_s, const TTest *const *tests, int n)
{
    Suite *s = suite_create(name);
    for (int i = 0; i < n; i++)
        tcase_add_test(add_case(s, tests[i]->name, ctx, timeout_s), tests[i]);
    return clsynth_test_run(s);
}

const char *clsynth_test_shared_dir(void)
{
    const char *d = getenv("CLSYNTH_SHARED_DIR");
    return d && *d ? d : NULL;
}

int clsynth_test_under_oclgrind(void)
{
    const char *v = getenv("CLSYNTH_OCLGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

int clsynth_test_quick(void)
{
    const char *v = getenv("CLSYNTH_TEST_QUICK");
    return v && *v && strcmp(v, "0") != 0;
}

int clsynth_test_skip_in_quick_mode(const char *what)
{
    if (!clsynth_test_quick())
        return 0;
    printf("%s: left out under CLSYNTH_TEST_QUICK (run it without for the full check)\n", what);
    fflush(stdout);
    return 1;
}

clsynth_ctx *clsynth_test_ctx(void)
{
    clsynth_err err;
    clsynth_ctx *ctx = clsynth_ctx_create(NULL, &err);
    ck_assert_msg(ctx != NULL, "cannot create a context: %s", err.msg);
    ctx->quiet = true;
    return ctx;
}

void clsynth_test_write_tunedb(const clsynth_ctx *ctx, const char *path, const char *vendor, const char *device,
                               const char *driver, const char *entries)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fprintf(f, "clsynth-tunedb 1\nvendor: %s\ndevice: %s\ndriver: %s\nplatform: x\n%s", vendor ? vendor : ctx->dev.vendor,
            device ? device : ctx->dev.name, driver ? driver : ctx->dev.driver, entries);
    ck_assert_int_eq(fclose(f), 0);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void clsynth_test_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    uint64_t s = seed * 0x2545f4914f6cdd1dULL + 1;
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)((splitmix(&s) >> 40) * (1.0 / 16777216.0));
}

clsynth_tensor *clsynth_test_input(clsynth_ctx *ctx, const char *name, int n, int c, int h, int w, const float *host)
{
    clsynth_tensor *t = clsynth_tensor_new_persistent(ctx, name, n, c, h, w);
    ck_assert_msg(t != NULL, "input %s: %s", name, ctx->err.msg);
    if (host)
        ck_assert_msg(clsynth_tensor_upload(ctx, t, host) == 0, "upload %s: %s", name, ctx->err.msg);
    t->flags |= CLSYNTH_T_REQUIRES_GRAD;
    return t;
}

static void poison(clsynth_ctx *ctx, const clsynth_tensor *t, void *user)
{
    clsynth_tensor_fill(ctx, (clsynth_tensor *)t, NAN);
    if (user)
        (*(unsigned long *)user)++;
}

void clsynth_test_poison_releases(clsynth_ctx *ctx, unsigned long *n)
{
    ctx->release_hook = poison;
    ctx->release_hook_user = n;
}

float *clsynth_test_download(clsynth_ctx *ctx, const clsynth_tensor *t)
{
    ck_assert_msg(t != NULL, "download of a missing tensor: %s", ctx->err.msg);
    float *h = malloc(t->numel * sizeof *h);
    ck_assert_ptr_nonnull(h);
    ck_assert_msg(clsynth_tensor_download(ctx, t, h) == 0, "download %s: %s", t->name, ctx->err.msg);
    return h;
}

double clsynth_test_compare(const float *a, const float *b, size_t n, double atol, double rtol, size_t *worst)
{
    double worst_ratio = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double tol = atol + rtol * fabs((double)b[i]);
        double d = fabs((double)a[i] - (double)b[i]);
        double r = isnan(d) ? INFINITY : d / tol;
        if (r > worst_ratio || isnan(a[i]) != isnan(b[i])) {
            worst_ratio = isnan(a[i]) != isnan(b[i]) ? INFINITY : r;
            wi = i;
        }
    }
    if (worst)
        *worst = wi;
    return worst_ratio;
}

void clsynth_test_assert_close(const char *what, const float *a, const float *b, size_t n, double atol, double rtol)
{
    size_t wi = 0;
    double r = clsynth_test_compare(a, b, n, atol, rtol, &wi);
    ck_assert_msg(r <= 1.0, "%s: element %zu is %.7g, reference %.7g (atol %g, rtol %g)", what, wi,
                  n ? a[wi] : 0.0f, n ? b[wi] : 0.0f, atol, rtol);
}

static double weighted_sum(clsynth_ctx *ctx, clsynth_tensor *out, const float *r)
{
    float *o = clsynth_test_download(ctx, out);
    double s = 0;
    for (size_t i = 0; i < out->numel; i++)
        s += (double)o[i] * (double)r[i];
    free(o);
    return s;
}

void clsynth_test_gradcheck(clsynth_ctx *ctx, const char *what, clsynth_test_forward_fn fn, clsynth_tensor **inputs,
                            int n_inputs, void *user, float eps, double atol, double rtol, int samples)
{
    /* analytic: one backward seeded with R */
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i]->grad)
            ck_assert_int_eq(clsynth_tensor_fill(ctx, inputs[i]->grad, 0.0f), 0);
    clsynth_tensor *out = fn(ctx, inputs, user);
    ck_assert_msg(out != NULL, "%s forward: %s", what, ctx->err.msg);
    float *r = malloc(out->numel * sizeof *r);
    clsynth_test_fill_uniform(r, out->numel, -1.0f, 1.0f, 4242);
    clsynth_tensor *rt = clsynth_tensor_from_host(ctx, "R", out->n, out->c, out->h, out->w, r);
    ck_assert_msg(clsynth_backward_with(ctx, out, rt) == 0, "%s backward: %s", what, ctx->err.msg);
    for (int i = 0; i < n_inputs; i++) {
        clsynth_tensor *x = inputs[i];
        if (!(x->flags & CLSYNTH_T_REQUIRES_GRAD))
            continue;
        ck_assert_msg(x->grad != NULL, "%s: no gradient reached input %s", what, x->name);
        float *ga = clsynth_test_download(ctx, x->grad);
        float *xv = clsynth_test_download(ctx, x);
        int count = samples < (int)x->numel ? samples : (int)x->numel;
        for (int s = 0; s < count; s++) {
            size_t idx = count == (int)x->numel ? (size_t)s : (size_t)(((double)s + 0.5) * x->numel / count);
            if (idx >= x->numel)
                idx = x->numel - 1;
            float orig = xv[idx];
            double lp, lm;
            clsynth_no_grad_begin(ctx);
            xv[idx] = orig + eps;
            ck_assert_int_eq(clsynth_tensor_upload(ctx, x, xv), 0);
            clsynth_tensor *o = fn(ctx, inputs, user);
            ck_assert_msg(o != NULL, "%s forward: %s", what, ctx->err.msg);
            lp = weighted_sum(ctx, o, r);
            xv[idx] = orig - eps;
            ck_assert_int_eq(clsynth_tensor_upload(ctx, x, xv), 0);
            o = fn(ctx, inputs, user);
            ck_assert_msg(o != NULL, "%s forward: %s", what, ctx->err.msg);
            lm = weighted_sum(ctx, o, r);
            xv[idx] = orig;
            ck_assert_int_eq(clsynth_tensor_upload(ctx, x, xv), 0);
            clsynth_no_grad_end(ctx);
            clsynth_release_activations(ctx);
            double numeric = (lp - lm) / (2.0 * eps);
            double analytic = ga[idx];
            ck_assert_msg(fabs(analytic - numeric) <= atol + rtol * fabs(numeric),
                          "%s: d/d %s[%zu]: analytic %.6g, finite difference %.6g (eps %g, atol %g, rtol %g)",
                          what, x->name, idx, analytic, numeric, eps, atol, rtol);
        }
        free(ga);
        free(xv);
    }
    free(r);
    clsynth_release_activations(ctx);
}

/* Runs backward twice without zeroing: every input gradient must double
 * (backward functions accumulate with +=); rtol 1e-6 because an input used
 * twice sums its contributions in another order on the second pass. */
void clsynth_test_check_accumulates(clsynth_ctx *ctx, const char *what, clsynth_test_forward_fn fn, clsynth_tensor **in, int n_in, void *user)
{
    float *first[8];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            for (int i = 0; i < n_in; i++)
                if (in[i]->grad)
                    ck_assert_int_eq(clsynth_tensor_fill(ctx, in[i]->grad, 0.0f), 0);
        clsynth_tensor *out = fn(ctx, in, user);
        ck_assert_msg(out != NULL, "%s: %s", what, ctx->err.msg);
        float *r = malloc(out->numel * sizeof *r);
        clsynth_test_fill_uniform(r, out->numel, -1.0f, 1.0f, 99);
        clsynth_tensor *rt = clsynth_tensor_from_host(ctx, "R", out->n, out->c, out->h, out->w, r);
        ck_assert_msg(clsynth_backward_with(ctx, out, rt) == 0, "%s: %s", what, ctx->err.msg);
        free(r);
        for (int i = 0; i < n_in; i++) {
            float *g = clsynth_test_download(ctx, in[i]->grad);
            if (pass == 0) {
                first[i] = g;
                continue;
            }
            for (size_t j = 0; j < in[i]->numel; j++)
                ck_assert_msg(fabsf(g[j] - 2.0f * first[i][j]) <= 1e-6f * fabsf(2.0f * first[i][j]) + 1e-9f, "%s: gradient of %s[%zu] after two backward passes is "
                              "%.9g, expected twice %.9g", what, in[i]->name, j, (double)g[j], (double)first[i][j]);
            free(g);
            free(first[i]);
        }
    }
}

void clsynth_test_set_checkpoint_version(const char *path, uint32_t version)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_msg(f != NULL, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    ck_assert(n > 16);
    unsigned char *buf = malloc((size_t)n);
    fseek(f, 0, SEEK_SET);
    ck_assert_int_eq((long)fread(buf, 1, (size_t)n, f), n);
    for (int i = 0; i < 4; i++)
        buf[8 + i] = (unsigned char)(version >> (8 * i));
    uint32_t crc = clsynth_crc32(0, buf, (size_t)n - 4);
    for (int i = 0; i < 4; i++)
        buf[n - 4 + i] = (unsigned char)(crc >> (8 * i));
    fseek(f, 0, SEEK_SET);
    ck_assert_int_eq((long)fwrite(buf, 1, (size_t)n, f), n);
    fclose(f);
    free(buf);
}

const char *clsynth_test_binary(void)
{
    static char bin[4096];
    const char *env = getenv("CLSYNTH_BIN");
    if (env && *env) {
        snprintf(bin, sizeof bin, "%s", env);
        return bin;
    }
    char self[4096 - 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_msg(n > 0, "cannot read /proc/self/exe");
    self[n] = 0;
    char *slash = strrchr(self, '/');
    ck_assert(slash);
    *slash = 0; /* .../build/tests */
    snprintf(bin, sizeof bin, "%s/../clsynth", self);
    ck_assert_msg(access(bin, X_OK) == 0, "no clsynth binary at %s (set CLSYNTH_BIN)", bin);
    return bin;
}
