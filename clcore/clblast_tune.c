/* CLBlast GEMM tuning (see clcore/clblast_tune.h). */
#include "clcore/clblast_tune.h"

#include <clblast_c.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/clblast_util.h"
#include "clcore/kdefs.h"
#include "clcore/tensor.h"
#include "clcore/tunedb.h"
#include "clcore/tuner.h"

enum { K_XGEMM, K_DIRECT, K_ROUTINE };

/* ------------------------------------------------------------ shapes */

size_t clsynth_conv_gemm_shapes(const char *key, double uses, clsynth_gemm_shape *shapes, size_t n, size_t cap)
{
    clsynth_conv_shape s;
    if (!clsynth_kdef_conv2d.parse(key, &s))
        return n;
    /* the products of the op's default layout under CLBlast (merged), at the
     * default column budget; CLBlast sees a batch as one call per product */
    clsynth_matmul_shape g[3];
    int count[3];
    clsynth_conv_gemm_products(NULL, &s, CONV2D_GEMM_MERGED, g, count);
    for (int i = 0; i < 3; i++) {
        const double per = uses * count[i] * g[i].batch;
        size_t j = 0;
        while (j < n && !(shapes[j].m == g[i].m && shapes[j].n == g[i].n && shapes[j].k == g[i].k &&
                          shapes[j].ta == (g[i].ta != 0) && shapes[j].tb == (g[i].tb != 0)))
            j++;
        if (j < n) {
            shapes[j].weight += per;
        } else if (n < cap) {
            shapes[n] = (clsynth_gemm_shape){ g[i].m, g[i].n, g[i].k, g[i].ta != 0, g[i].tb != 0, per };
            n++;
        }
    }
    return n;
}

/* ------------------------------------------------------------ measuring here */

static double host_dot(const float *A, const float *B, const clsynth_gemm_shape *s, int i, int j)
{
    double acc = 0;
    for (int p = 0; p < s->k; p++) {
        float a = s->ta ? A[(size_t)p * s->m + i] : A[(size_t)i * s->k + p];
        float b = s->tb ? B[(size_t)j * s->k + p] : B[(size_t)p * s->n + j];
        acc += (double)a * b;
    }
    return acc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void fill_host(float *h, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        h[i] = (float)((double)(*s >> 40) / 16777216.0 - 0.5);
    }
}

/* Device time of one CLBlastSgemm between two profiled markers (wall time
 * when markers are not profiled); -1 on failure (why). */
static double time_gemm(clsynth_ctx *ctx, const clsynth_gemm_shape *g, const clsynth_tensor *A,
                        const clsynth_tensor *B, const clsynth_tensor *C, char *why, size_t len)
{
    size_t lda = g->ta ? (size_t)g->m : (size_t)g->k, ldb = g->tb ? (size_t)g->k : (size_t)g->n;
    cl_event e0 = NULL, e1 = NULL;
    clFinish(ctx->queue);
    double w0 = clsynth_now_s();
    clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &e0);
    clsynth_clblast_lock();
    CLBlastStatusCode st = CLBlastSgemm(CLBlastLayoutRowMajor, g->ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                                        g->tb ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)g->m, (size_t)g->n,
                                        (size_t)g->k, 1.0f, A->mem, 0, lda, B->mem, 0, ldb, 0.0f, C->mem, 0,
                                        (size_t)g->n, &ctx->queue, NULL);
    clsynth_clblast_unlock();
    clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &e1);
    clFinish(ctx->queue);
    double wall = (clsynth_now_s() - w0) * 1e3;
    cl_ulong t0 = 0, t1 = 0;
    if (e0 && e1 && clGetEventProfilingInfo(e0, CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL) == CL_SUCCESS &&
        clGetEventProfilingInfo(e1, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS && t1 > t0)
        wall = (double)(t1 - t0) * 1e-6;
    if (e0)
        clReleaseEvent(e0);
    if (e1)
        clReleaseEvent(e1);
    if (st != CLBlastSuccess) {
        snprintf(why, len, "CLBlastSgemm %d", (int)st);
        return -1;
    }
    return wall;
}

int clsynth_clblast_measure_here(clsynth_ctx *ctx, const clsynth_gemm_shape *sh, size_t ns,
                                 const clsynth_clblast_params *p, int repeats, double *ms, double *err, char *why,
                                 size_t why_len)
{
    if (repeats < 1 || repeats > 50)
        repeats = 3;
    for (int k = 0; p && k < 3; k++)
        if (p->has[k] && clsynth_clblast_override(ctx->dev.id, k, p->v[k], why, why_len))
            return 1;
    size_t maxa = 1, maxb = 1, maxc = 1;
    for (size_t i = 0; i < ns; i++) {
        size_t a = (size_t)sh[i].m * sh[i].k, b = (size_t)sh[i].k * sh[i].n, c = (size_t)sh[i].m * sh[i].n;
        maxa = a > maxa ? a : maxa;
        maxb = b > maxb ? b : maxb;
        maxc = c > maxc ? c : maxc;
    }
    float *ha = malloc(maxa * sizeof *ha), *hb = malloc(maxb * sizeof *hb), *hc = malloc(maxc * sizeof *hc);
    clsynth_tensor *A = clsynth_tensor_new_persistent(ctx, "gemm.A", 1, 1, 1, (int)maxa);
    clsynth_tensor *B = clsynth_tensor_new_persistent(ctx, "gemm.B", 1, 1, 1, (int)maxb);
    clsynth_tensor *C = clsynth_tensor_new_persistent(ctx, "gemm.C", 1, 1, 1, (int)maxc);
    int rc = 1;
    uint64_t s = 42;
    if (!ha || !hb || !hc || !A || !B || !C) {
        snprintf(why, why_len, "allocation: %s", ctx->err.msg);
        goto done;
    }
    fill_host(ha, maxa, &s);
    fill_host(hb, maxb, &s);
    if (clsynth_tensor_upload(ctx, A, ha) || clsynth_tensor_upload(ctx, B, hb)) {
        snprintf(why, why_len, "upload: %s", ctx->err.msg);
        goto done;
    }
    for (size_t i = 0; i < ns; i++) {
        const clsynth_gemm_shape *g = &sh[i];
        double ts[50];
        for (int r = 0; r <= repeats; r++) {
            double t = time_gemm(ctx, g, A, B, C, why, why_len);
            if (t < 0)
                goto done;
            if (r > 0)
                ts[r - 1] = t;
        }
        /* check 48 sampled elements against a double-precision host product */
        if (clsynth_tensor_download(ctx, C, hc)) {
            snprintf(why, why_len, "download: %s", ctx->err.msg);
            goto done;
        }
        double worst = 0;
        for (int q = 0; q < 48; q++) {
            int ii = (int)(((unsigned)q * 2654435761u) % (unsigned)g->m);
            int jj = (int)(((unsigned)q * 40503u + 7u) % (unsigned)g->n);
            double ref = host_dot(ha, hb, g, ii, jj);
            double e = fabs((double)hc[(size_t)ii * g->n + jj] - ref) / (1e-3 * sqrt((double)g->k) + 1e-4 * fabs(ref));
            if (!(e <= worst))
                worst = isnan(e) ? INFINITY : (e > worst ? e : worst);
        }
        qsort(ts, (size_t)repeats, sizeof ts[0], cmp_d);
        ms[i] = ts[repeats / 2];
        err[i] = worst;
    }
    rc = 0;
done:
    clsynth_tensor_free(ctx, A);
    clsynth_tensor_free(ctx, B);
    clsynth_tensor_free(ctx, C);
    free(ha);
    free(hb);
    free(hc);
    return rc;
}

/* ------------------------------------------------------------ search */

static double weighted(const clsynth_gemm_shape *s, const double *ms, size_t n)
{
    double t = 0;
    for (size_t i = 0; i < n; i++) {
        if (ms[i] < 0)
            return INFINITY;
        t += ms[i] * (s[i].weight > 0 ? s[i].weight : 1);
    }
    return t;
}

static unsigned long rnd(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned long)(*s >> 33);
}

/* Legal on this context: CLBlast's rules and the limits. */
static bool legal(clsynth_ctx *ctx, const clsynth_kdef *d, const int *v)
{
    char why[160];
    size_t local[3], lmem;
    clsynth_gemm_key key = { 0 };
    clsynth_klimits lim = clsynth_klimits_of(ctx);
    return clsynth_kdef_values_ok(d, v, &key, why, sizeof why) &&
           clsynth_kdef_fits(d, v, &key, &lim, local, &lmem, why, sizeof why);
}

/* A random legal point of d near `base` (NULL: anywhere); false after many tries. */
static bool sample(clsynth_ctx *ctx, const clsynth_kdef *d, const int *base, unsigned long long *rs, int *v)
{
    for (int tries = 0; tries < 20000; tries++) {
        for (int i = 0; i < d->n_params; i++) {
            if (base && rnd(rs) % 3 != 0) {
                v[i] = base[i]; /* keep most parameters, move some */
                continue;
            }
            v[i] = d->params[i].values[rnd(rs) % (unsigned)d->params[i].n];
        }
        if (legal(ctx, d, v) && (!base || memcmp(v, base, sizeof(int) * (size_t)d->n_params) != 0))
            return true;
    }
    return false;
}

static int measure(clsynth_ctx *ctx, const clsynth_clblast_tune_opts *o, const clsynth_gemm_shape *sh, size_t n,
                   const clsynth_clblast_params *p, double *ms, char *why, size_t len)
{
    for (size_t i = 0; i < n; i++)
        ms[i] = -1;
    why[0] = 0;
    return o->measure(o->user, ctx, sh, n, p, o->repeats, ms, why, len);
}

/* Searches kernel k's space; the other two parameter sets stay as in cur. */
static void search_space(clsynth_ctx *ctx, const clsynth_clblast_tune_opts *o, const clsynth_gemm_shape *sh,
                         size_t n, int k, clsynth_clblast_params *cur, double deadline, double eval_cost,
                         unsigned long long *rs, double *best_ms_out, double *best_per_shape,
                         clsynth_clblast_tune_result *res)
{
    const clsynth_kdef *d = clsynth_clblast_kdef(k);
    int best[CLSYNTH_K_MAX_PARAMS], v[CLSYNTH_K_MAX_PARAMS];
    bool have = false;
    double best_t = INFINITY;
    double *ms = malloc(n * sizeof *ms);
    if (!ms)
        return;
    cur->has[k] = true;
    for (int round = 0; clsynth_now_s() + eval_cost <= deadline && round < 64; round++) {
        /* the first rounds explore, then mostly local moves around the best */
        if (!sample(ctx, d, have && round >= 3 && rnd(rs) % 3 ? best : NULL, rs, v))
            break;
        memcpy(cur->v[k], v, sizeof v);
        char why[256], desc[300];
        double t0 = clsynth_now_s();
        int rc = measure(ctx, o, sh, n, cur, ms, why, sizeof why);
        double cost = clsynth_now_s() - t0;
        if (cost > eval_cost)
            eval_cost = cost;
        res->tried++;
        double t = rc == 0 ? weighted(sh, ms, n) : INFINITY;
        if (o->verbose) {
            clsynth_kdef_describe(d, v, desc, sizeof desc);
            fprintf(stderr, "  clblast %s %s: %s%.3f ms%s%s\n", d->key, desc, rc ? "failed " : "",
                    isinf(t) ? 0.0 : t, rc ? ": " : "", rc ? why : "");
        }
        if (rc < 0)
            clsynth_ctx_clear_error(ctx);
        if (rc) {
            res->failed++;
            continue;
        }
        if (t < best_t) {
            best_t = t;
            memcpy(best, v, sizeof best);
            memcpy(best_per_shape, ms, n * sizeof *ms);
            have = true;
        }
    }
    cur->has[k] = have;
    if (have)
        memcpy(cur->v[k], best, sizeof best);
    *best_ms_out = best_t;
    free(ms);
}

static int put_params(clsynth_ctx *ctx, const clsynth_clblast_params *p, int k, double ms, double default_ms)
{
    clsynth_tune_record r;
    if (p->has[k])
        clsynth_tune_record_of(clsynth_clblast_kdef(k), p->v[k], "sgemm", &r);
    else {
        memset(&r, 0, sizeof r); /* CLBlast's own parameters kept */
        snprintf(r.kernel, sizeof r.kernel, "%s", clsynth_clblast_kdef(k)->key);
        snprintf(r.shape, sizeof r.shape, "sgemm");
    }
    r.ms = ms;
    r.default_ms = default_ms;
    return clsynth_tunedb_put(ctx, &r);
}

static int cmp_heavy(const void *a, const void *b)
{
    const clsynth_gemm_shape *x = a, *y = b;
    double fx = (double)x->m * x->n * x->k * x->weight, fy = (double)y->m * y->n * y->k * y->weight;
    return fx > fy ? -1 : fx < fy;
}

static void set_threshold(clsynth_clblast_params *p, long T)
{
    p->has[K_ROUTINE] = true;
    p->v[K_ROUTINE][R_XGEMM_MIN_INDIRECT_SIZE] = (int)T;
}

int clsynth_clblast_tune(clsynth_ctx *ctx, const clsynth_gemm_shape *shapes_in, size_t n_in,
                         const clsynth_clblast_tune_opts *opts, clsynth_clblast_tune_result *res)
{
    memset(res, 0, sizeof *res);
    clsynth_clblast_tune_opts o = *opts;
    if (o.repeats < 1)
        o.repeats = 3;
    if (!o.measure)
        return clsynth_ctx_fail(ctx, "CLBlast tuning: no measurement function");
    size_t maxs = o.max_shapes > 0 ? (size_t)o.max_shapes : 24;
    clsynth_gemm_shape *sh = malloc((n_in ? n_in : 1) * sizeof *sh);
    double *ms = malloc((n_in ? n_in : 1) * 3 * sizeof *ms);
    if (!sh || !ms) {
        free(sh);
        free(ms);
        return clsynth_ctx_fail(ctx, "out of host memory");
    }
    memcpy(sh, shapes_in, n_in * sizeof *sh);
    qsort(sh, n_in, sizeof *sh, cmp_heavy);
    size_t n = n_in < maxs ? n_in : maxs;
    double *ind = ms + n_in, *dir = ms + 2 * n_in;
    double start = clsynth_now_s(), deadline = start + (o.budget_s > 0 ? o.budget_s : 600);
    unsigned long long rs = o.seed ? o.seed : 1234567;
    char why[256];
    int rc = 0;
    if (n == 0)
        goto out;
    /* CLBlast's own parameters: the baseline */
    rc = measure(ctx, &o, sh, n, NULL, ms, why, sizeof why);
    if (rc) {
        if (rc > 0)
            rc = clsynth_ctx_fail(ctx, "CLBlast GEMM with its default parameters failed: %s", why);
        goto out;
    }
    res->default_ms = weighted(sh, ms, n);
    double eval_cost = clsynth_now_s() - start;
    if (o.verbose)
        fprintf(stderr, "  clblast default: %.3f ms over %zu shapes (one evaluation %.1f s)\n", res->default_ms, n,
                eval_cost);
    double left = deadline - clsynth_now_s();
    /* phase 1: indirect kernel, always used */
    clsynth_clblast_params cur;
    memset(&cur, 0, sizeof cur);
    set_threshold(&cur, 0);
    double t_ind = INFINITY, t_dir = INFINITY;
    search_space(ctx, &o, sh, n, K_XGEMM, &cur, clsynth_now_s() + 0.5 * (left - eval_cost), eval_cost, &rs, &t_ind,
                 ind, res);
    /* phase 2: direct kernel, always used */
    set_threshold(&cur, 100000);
    search_space(ctx, &o, sh, n, K_DIRECT, &cur, deadline - eval_cost, eval_cost, &rs, &t_dir, dir, res);
    if (isinf(t_ind) && isinf(t_dir))
        goto out;
    /* phase 3: threshold that splits the shapes best (direct when m*n*k < T^3) */
    long best_T = isinf(t_dir) ? 0 : (isinf(t_ind) ? 100000 : 0);
    double best_total = INFINITY;
    for (size_t c = 0; c <= n + 1; c++) {
        long T = c == 0 ? 0 : c == n + 1 ? 100000 : (long)ceil(cbrt((double)sh[c - 1].m * sh[c - 1].n * sh[c - 1].k)) + 1;
        double total = 0;
        for (size_t i = 0; i < n; i++) {
            bool direct = (double)sh[i].m * sh[i].n * sh[i].k < (double)T * T * T;
            double t = direct ? dir[i] : ind[i];
            if (isinf(direct ? t_dir : t_ind)) {
                total = INFINITY;
                break;
            }
            total += t * (sh[i].weight > 0 ? sh[i].weight : 1);
        }
        if (total < best_total) {
            best_total = total;
            best_T = T;
        }
    }
    set_threshold(&cur, best_T);
    /* verify the combination as it will run */
    int vrc = measure(ctx, &o, sh, n, &cur, ms, why, sizeof why);
    if (vrc) {
        if (vrc < 0)
            clsynth_ctx_clear_error(ctx);
        if (o.verbose)
            fprintf(stderr, "  clblast combination failed: %s\n", why);
        goto out;
    }
    res->tuned_ms = weighted(sh, ms, n);
    res->best = cur;
    if (o.verbose)
        fprintf(stderr, "  clblast tuned: %.3f ms (default %.3f ms)\n", res->tuned_ms, res->default_ms);
    if (res->tuned_ms < res->default_ms * 0.97) {
        res->improved = true;
        for (int k = 0; k < 3 && rc == 0; k++)
            rc = put_params(ctx, &cur, k, res->tuned_ms, res->default_ms);
    }
out:
    free(sh);
    free(ms);
    return rc;
}
