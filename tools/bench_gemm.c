/* GEMM algorithms against OpenBLAS (see tools/bench_gemm.h). */
#include "tools/bench_gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/gemm.h"
#include "clcore/kconfig.h"
#include "clcore/launch.h"
#include "clcore/tensor.h"
#include "clcore/tuner.h"

#ifdef CLSYNTH_HAVE_CBLAS
#include <cblas.h>
#endif

static const char *const algo_names[CLSYNTH_BENCH_GEMM_ALGOS] = { "OpenBLAS", "CLBlast", "host BLAS", "CLBlast strided" };

static void add(clsynth_bench_gemm_row *rows, size_t *n, size_t cap, const clsynth_matmul_shape *s, const char *from,
                int uses)
{
    for (size_t i = 0; i < *n; i++)
        if (memcmp(&rows[i].s, s, sizeof *s) == 0) {
            if (i > 0)
                rows[i].uses += uses; /* the same product in several convs */
            return;
        }
    if (*n == cap)
        return;
    clsynth_bench_gemm_row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    r->s = *s;
    clsynth_kdef_gemm.format(s, r->key, sizeof r->key);
    r->from = from;
    r->uses = uses;
    for (int a = 0; a < CLSYNTH_BENCH_GEMM_ALGOS; a++)
        r->ms[a] = NAN;
}

/* what the resolver picks at each row (0: it failed) */
static void set_defaults(clsynth_ctx *ctx, clsynth_bench_gemm_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        clsynth_kcfg cfg;
        rows[i].default_algo = clsynth_kconfig(ctx, &clsynth_kdef_gemm, &rows[i].s, NULL, &cfg) ? 0 : cfg.v[GEMM_ALGO];
    }
    clsynth_ctx_clear_error(ctx);
}

size_t clsynth_bench_gemm_rows(clsynth_ctx *ctx, const char *const *convs, size_t n_convs,
                               clsynth_bench_gemm_row *rows, size_t cap)
{
    size_t n = 0;
    const clsynth_matmul_shape cube = { 1024, 1024, 1024, 0, 0, 1, 0 };
    add(rows, &n, cap, &cube, "1024^3", 1);
    for (size_t c = 0; c < n_convs; c++) {
        clsynth_conv_shape s;
        clsynth_kcfg cfg;
        if (!clsynth_kdef_conv2d.parse(convs[c], &s) || clsynth_kconfig(ctx, &clsynth_kdef_conv2d, &s, NULL, &cfg))
            continue;
        clsynth_matmul_shape g[3];
        int count[3];
        clsynth_conv_gemm_products(ctx, &s, cfg.v[CONV2D_GEMM_BATCH], g, count);
        for (int i = 0; i < 3; i++)
            add(rows, &n, cap, &g[i], convs[c], count[i]);
    }
    set_defaults(ctx, rows, n);
    return n;
}

size_t clsynth_bench_gemm_rows_recorded(clsynth_ctx *ctx, const clsynth_tune_job *jobs, size_t n_jobs,
                                        const char *from, clsynth_bench_gemm_row *rows, size_t cap)
{
    size_t n = 0;
    const clsynth_matmul_shape cube = { 1024, 1024, 1024, 0, 0, 1, 0 };
    add(rows, &n, cap, &cube, "1024^3", 1);
    for (size_t j = 0; j < n_jobs; j++) {
        clsynth_matmul_shape s;
        if (jobs[j].def == &clsynth_kdef_gemm && clsynth_kdef_gemm.parse(jobs[j].shape, &s))
            add(rows, &n, cap, &s, from, jobs[j].uses ? (int)jobs[j].uses : 1);
    }
    set_defaults(ctx, rows, n);
    return n;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#ifdef CLSYNTH_HAVE_CBLAS
/* OpenBLAS on malloc'ed host arrays, the products of s as clsynth_gemm runs them. */
static double openblas_ms(const clsynth_matmul_shape *s, int repeats)
{
    const size_t mk = (size_t)s->m * s->k, kn = (size_t)s->k * s->n, mn = (size_t)s->m * s->n;
    float *a = malloc(mk * s->batch * sizeof *a), *b = malloc(kn * s->batch * sizeof *b),
          *c = calloc(mn * (s->sum ? 1 : s->batch), sizeof *c);
    double best = NAN, t[64];
    if (a && b && c) {
        for (size_t i = 0; i < mk * s->batch; i++)
            a[i] = (float)(i % 13) * 0.01f;
        for (size_t i = 0; i < kn * s->batch; i++)
            b[i] = (float)(i % 7) * 0.01f;
        if (repeats > 64)
            repeats = 64;
        for (int r = -1; r < repeats; r++) { /* r = -1: warm-up (threads started, pages touched) */
            double t0 = clsynth_now_s();
            for (int i = 0; i < s->batch; i++)
                cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->m,
                            s->n, s->k, 1.0f, a + i * mk, s->ta ? s->m : s->k, b + i * kn, s->tb ? s->k : s->n,
                            s->sum && i > 0 ? 1.0f : 0.0f, c + (s->sum ? 0 : i * mn), s->n);
            if (r >= 0)
                t[r] = (clsynth_now_s() - t0) * 1e3;
        }
        qsort(t, (size_t)repeats, sizeof t[0], cmp_d);
        best = t[repeats / 2];
    }
    free(a);
    free(b);
    free(c);
    return best;
}
#endif

/* clsynth_gemm with algorithm `algo` forced: C = A B (a summed batch: C =
 * sum_i A_i B_i), no bias, as the conv's forward and dx products run;
 * wall time of the call and the wait for the device, median of `repeats`
 * after one warm-up (it compiles CLBlast's kernels). */
static int clsynth_ms(clsynth_ctx *ctx, const clsynth_matmul_shape *s, int algo, int repeats, double *ms)
{
    const int ar = s->ta ? s->k : s->m, ac = s->ta ? s->m : s->k, br = s->tb ? s->n : s->k, bc = s->tb ? s->k : s->n;
    clsynth_tensor *A = clsynth_tensor_new(ctx, "bench.gemm.a", s->batch, 1, ar, ac);
    clsynth_tensor *B = clsynth_tensor_new(ctx, "bench.gemm.b", s->batch, 1, br, bc);
    clsynth_tensor *C = clsynth_tensor_new(ctx, "bench.gemm.c", s->sum ? 1 : s->batch, 1, s->m, s->n);
    int rc = -1;
    double t[64];
    if (!A || !B || !C || clsynth_tensor_fill(ctx, A, 0.01f) || clsynth_tensor_fill(ctx, B, 0.02f))
        goto out;
    const clsynth_gemm_op g = {
        .ta = s->ta, .tb = s->tb, .m = (size_t)s->m, .n = (size_t)s->n, .k = (size_t)s->k, .alpha = 1.0f, .beta = 0.0f,
        .a = { A->mem, A->off, (size_t)ac, (size_t)ar * ac }, .b = { B->mem, B->off, (size_t)bc, (size_t)br * bc },
        .c = { C->mem, C->off, (size_t)s->n, s->sum ? 0 : (size_t)s->m * s->n },
        .batch = (size_t)s->batch, .sum_batch = s->sum != 0,
    };
    clsynth_kforce f = { .def = &clsynth_kdef_gemm };
    f.v[GEMM_ALGO] = algo;
    if (repeats > 64)
        repeats = 64;
    if (clsynth_finish(ctx))
        goto out;
    for (int r = -1; r < repeats; r++) {
        const double t0 = clsynth_now_s();
        if (clsynth_gemm(ctx, "bench gemm", &g, &f) || clsynth_finish(ctx))
            goto out;
        if (r >= 0)
            t[r] = (clsynth_now_s() - t0) * 1e3;
    }
    qsort(t, (size_t)repeats, sizeof t[0], cmp_d);
    *ms = t[repeats / 2];
    rc = 0;
out:
    clsynth_tensor_free(ctx, A);
    clsynth_tensor_free(ctx, B);
    clsynth_tensor_free(ctx, C);
    return rc;
}

int clsynth_bench_gemm_measure(clsynth_ctx *ctx, clsynth_bench_gemm_row *rows, size_t n, int repeats, int rounds)
{
    for (size_t i = 0; i < n; i++) {
        clsynth_bench_gemm_row *r = &rows[i];
        for (int round = 0; round < rounds; round++) {
#ifdef CLSYNTH_HAVE_CBLAS
            double o = openblas_ms(&r->s, repeats);
            if (isfinite(o) && (isnan(r->ms[0]) || o < r->ms[0]))
                r->ms[0] = o;
#endif
            for (int a = 1; a < CLSYNTH_BENCH_GEMM_ALGOS; a++) {
                clsynth_kforce f = { .def = &clsynth_kdef_gemm };
                f.v[GEMM_ALGO] = a;
                char why[256];
                if (!clsynth_tune_legal(ctx, &clsynth_kdef_gemm, f.v, r->key, false, why, sizeof why))
                    continue;
                double ms = NAN;
                if (clsynth_ms(ctx, &r->s, a, repeats, &ms)) {
                    fprintf(stderr, "clsynth bench: gemm %s with %s: %s\n", r->key, algo_names[a], ctx->err.msg);
                    clsynth_ctx_clear_error(ctx);
                    continue;
                }
                if (isnan(r->ms[a]) || ms < r->ms[a])
                    r->ms[a] = ms;
            }
            clsynth_pool_trim(ctx);
        }
    }
    return 0;
}

static double gflops(const clsynth_matmul_shape *s, double ms)
{
    return 2.0 * s->m * (double)s->n * s->k * s->batch / (ms * 1e6);
}

void clsynth_bench_gemm_print(const clsynth_bench_gemm_row *rows, size_t n)
{
    printf("\nGEMM algorithms (clsynth_gemm, ms and GFLOP/s; OpenBLAS = cblas_sgemm on host arrays, same cores;\n"
           "%%OB = the default algorithm's rate over OpenBLAS's):\n");
    printf("  %-28s %-31s %4s", "product", "of", "runs");
    for (int a = 0; a < CLSYNTH_BENCH_GEMM_ALGOS; a++)
        printf(" %16s", algo_names[a]);
    printf(" %10s %5s\n", "default", "%OB");
    for (size_t i = 0; i < n; i++) {
        const clsynth_bench_gemm_row *r = &rows[i];
        printf("  %-28s %-31s %4d", r->key, r->from, r->uses);
        for (int a = 0; a < CLSYNTH_BENCH_GEMM_ALGOS; a++) {
            char cell[32] = "-";
            if (isfinite(r->ms[a]))
                snprintf(cell, sizeof cell, "%.3f (%.1f)", r->ms[a], gflops(&r->s, r->ms[a]));
            printf(" %16s", cell);
        }
        const int d = r->default_algo;
        char pct[16] = "-";
        if (d > 0 && d < CLSYNTH_BENCH_GEMM_ALGOS && isfinite(r->ms[d]) && isfinite(r->ms[0]))
            snprintf(pct, sizeof pct, "%.0f%%", 100.0 * r->ms[0] / r->ms[d]);
        printf(" %10s %5s\n", d > 0 && d < CLSYNTH_BENCH_GEMM_ALGOS ? algo_names[d] : "?", pct);
    }
    double dm, om;
    if (clsynth_bench_gemm_totals(rows, n, &dm, &om))
        printf("  summed over the products below 1024^3, each times its runs: default %.2f ms, OpenBLAS %.2f ms: "
               "%.0f%% of OpenBLAS's rate\n", dm, om, 100.0 * om / dm);
}

bool clsynth_bench_gemm_totals(const clsynth_bench_gemm_row *rows, size_t n, double *default_ms, double *openblas_ms)
{
    double d = 0, o = 0;
    for (size_t i = 1; i < n; i++) {
        const int a = rows[i].default_algo;
        if (a <= 0 || a >= CLSYNTH_BENCH_GEMM_ALGOS || !isfinite(rows[i].ms[a]) || !isfinite(rows[i].ms[0]))
            return false;
        d += rows[i].uses * rows[i].ms[a];
        o += rows[i].uses * rows[i].ms[0];
    }
    *default_ms = d;
    *openblas_ms = o;
    return n > 1;
}

static void num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

void clsynth_bench_gemm_json(FILE *f, const clsynth_bench_gemm_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const clsynth_bench_gemm_row *r = &rows[i];
        fprintf(f, "{\"product\": \"%s\", \"of\": \"%s\", \"runs\": %d, \"default_algo\": %d, \"openblas_ms\": ", r->key,
                r->from, r->uses, r->default_algo);
        num(f, r->ms[0]);
        fprintf(f, ", \"clblast_ms\": ");
        num(f, r->ms[CLSYNTH_GEMM_CLBLAST]);
        fprintf(f, ", \"host_blas_ms\": ");
        num(f, r->ms[CLSYNTH_GEMM_HOST_BLAS]);
        fprintf(f, ", \"clblast_strided_ms\": ");
        num(f, r->ms[CLSYNTH_GEMM_CLBLAST_STRIDED]);
        fprintf(f, "}%s\n", i + 1 < n ? "," : "");
    }
}

double clsynth_bench_gemm_default_rate(const clsynth_bench_gemm_row *rows, size_t n)
{
    if (!n || rows[0].default_algo <= 0 || rows[0].default_algo >= CLSYNTH_BENCH_GEMM_ALGOS)
        return NAN;
    return gflops(&rows[0].s, rows[0].ms[rows[0].default_algo]);
}
