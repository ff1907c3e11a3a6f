/* The autotuner (see clcore/tuner.h). */
#include "clcore/tuner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clcore/autograd.h"
#include "clcore/kconfig.h"
#include "clcore/tunedb.h"

double clsynth_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void clsynth_tune_opts_default(clsynth_tune_opts *o)
{
    memset(o, 0, sizeof *o);
    o->repeats = 5;
    o->exhaustive_max = 48;
    o->min_gain = 0.03;
    o->save = true;
    o->seed = 12345;
}

/* ------------------------------------------------------------ op instance */

typedef struct inst {
    const clsynth_kdef *def;
    char shape[CLSYNTH_TUNE_SHAPE_MAX];
    clsynth_kbench b;
    clsynth_tensor *seed; /* persistent d(loss)/d(out) for backward runs */
} inst;

static void inst_free(clsynth_ctx *ctx, inst *in)
{
    for (int i = 0; i < in->b.n_in; i++)
        clsynth_tensor_free(ctx, in->b.in[i]);
    clsynth_tensor_free(ctx, in->seed);
    memset(in, 0, sizeof *in);
}

static int inst_setup(clsynth_ctx *ctx, const clsynth_kdef *def, const char *shape, inst *in, char *why,
                      size_t why_len)
{
    memset(in, 0, sizeof *in);
    in->def = def;
    snprintf(in->shape, sizeof in->shape, "%s", shape);
    if (!def->setup || !def->run) {
        snprintf(why, why_len, "no harness for kernel %s", def->key);
        return -1;
    }
    if (!def->parse(shape, &in->b.shape)) {
        snprintf(why, why_len, "shape key '%s' is not in the format of %s", shape, def->key);
        return -1;
    }
    if (def->setup(ctx, &in->b) || ctx->failed) {
        snprintf(why, why_len, "setup at %s failed: %.200s", shape, ctx->err.msg);
        clsynth_ctx_clear_error(ctx);
        inst_free(ctx, in);
        return -1;
    }
    for (int i = 0; i < in->b.n_in; i++) {
        if (def->backward && (!def->grad_mask || (def->grad_mask & (1u << i))))
            in->b.in[i]->flags |= CLSYNTH_T_REQUIRES_GRAD;
        else
            in->b.in[i]->flags &= ~(unsigned)CLSYNTH_T_REQUIRES_GRAD;
    }
    return 0;
}

/* The force of values v (NULL: the built-in defaults). */
static clsynth_kforce force_of(const clsynth_kdef *def, const int *v)
{
    clsynth_kforce f;
    memset(&f, 0, sizeof f);
    f.def = def;
    f.defaults = v == NULL;
    if (v)
        memcpy(f.v, v, sizeof(int) * (size_t)def->n_params);
    return f;
}

static void fill_pattern(float *x, size_t n, unsigned seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 7;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(s >> 40) / 16777216.0 * 2.0 - 1.0);
    }
}

static int enqueue_marker(clsynth_ctx *ctx, cl_event *ev)
{
    CLSYNTH_CL(ctx, clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, ev), NULL);
    return 0;
}

/* Device span in ms between the ends of two markers (0 when the driver does not
 * profile markers). */
static double marker_span(cl_event a, cl_event b)
{
    cl_ulong ta = 0, tb = 0;
    if (clGetEventProfilingInfo(a, CL_PROFILING_COMMAND_END, sizeof ta, &ta, NULL) != CL_SUCCESS ||
        clGetEventProfilingInfo(b, CL_PROFILING_COMMAND_END, sizeof tb, &tb, NULL) != CL_SUCCESS || tb <= ta)
        return 0;
    return (double)(tb - ta) * 1e-6;
}

/* One run of the op under force. With results: host copies of the output (and input
 * gradients) are appended there. With ms: the device time of the run, taken
 * between two profiled markers (covers every kernel of the op, also CLBlast's;
 * falls back to wall time when markers are not profiled). */
static int inst_run(clsynth_ctx *ctx, inst *in, clsynth_kforce *force, float **results, size_t *n_results,
                    double *ms)
{
    const clsynth_kdef *t = in->def;
    if (t->backward)
        for (int i = 0; i < in->b.n_in; i++)
            if (in->b.in[i]->grad && clsynth_tensor_fill(ctx, in->b.in[i]->grad, 0.0f))
                return -1;
    if (clsynth_finish(ctx))
        return -1;
    cl_event e0 = NULL, e1 = NULL;
    double w0 = clsynth_now_s();
    if (ms && enqueue_marker(ctx, &e0))
        return -1;
    clsynth_tensor *y = t->run(ctx, &in->b, force);
    int rc = y && !ctx->failed ? 0 : -1;
    if (rc == 0 && !y->numel)
        rc = clsynth_ctx_fail(ctx, "%s harness: empty output", t->key);
    float *res = NULL;
    size_t nres = 0;
    if (rc == 0 && results) {
        size_t total = y->numel;
        if (t->backward)
            for (int i = 0; i < in->b.n_in; i++)
                total += in->b.in[i]->numel;
        res = malloc(total * sizeof *res);
        if (!res)
            rc = clsynth_ctx_fail(ctx, "out of host memory");
        else if (clsynth_tensor_download(ctx, y, res))
            rc = -1;
        nres = y->numel;
    }
    if (rc == 0 && t->backward) {
        if (!in->seed) {
            float *h = malloc(y->numel * sizeof *h);
            if (!h)
                rc = clsynth_ctx_fail(ctx, "out of host memory");
            else {
                fill_pattern(h, y->numel, 99);
                in->seed = clsynth_tensor_new_persistent(ctx, "tune.seed", y->n, y->c, y->h, y->w);
                if (!in->seed || clsynth_tensor_upload(ctx, in->seed, h))
                    rc = -1;
                free(h);
            }
        }
        if (rc == 0 && clsynth_backward_with(ctx, y, in->seed))
            rc = -1;
    } else {
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
    }
    if (rc == 0 && ms && enqueue_marker(ctx, &e1))
        rc = -1;
    if (rc == 0 && clsynth_finish(ctx))
        rc = -1;
    double wall = (clsynth_now_s() - w0) * 1e3;
    if (rc == 0 && ms) {
        double span = marker_span(e0, e1);
        *ms = span > 0 ? span : wall;
    }
    if (e0)
        clReleaseEvent(e0);
    if (e1)
        clReleaseEvent(e1);
    if (rc == 0 && res && t->backward) {
        for (int i = 0; i < in->b.n_in && rc == 0; i++) {
            clsynth_tensor *g = in->b.in[i]->grad;
            if (!g)
                continue;
            if (clsynth_tensor_download(ctx, g, res + nres))
                rc = -1;
            nres += g->numel;
        }
    }
    if (rc) {
        free(res);
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
        return -1;
    }
    if (results) {
        *results = res;
        *n_results = nres;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median device time of `repeats` runs; stops early (returning the first
 * time) when the first run is slower than `give_up_ms` (0: never). */
static int inst_time(clsynth_ctx *ctx, inst *in, clsynth_kforce *force, int repeats, double give_up_ms,
                     double *median)
{
    double ts[64];
    if (repeats < 1)
        repeats = 1;
    if (repeats > 64)
        repeats = 64;
    int n = 0;
    for (int r = 0; r < repeats; r++) {
        if (inst_run(ctx, in, force, NULL, NULL, &ts[n]))
            return -1;
        n++;
        if (r == 0 && give_up_ms > 0 && ts[0] > give_up_ms)
            break;
    }
    qsort(ts, (size_t)n, sizeof ts[0], cmp_double);
    *median = n % 2 ? ts[n / 2] : 0.5 * (ts[n / 2 - 1] + ts[n / 2]);
    return 0;
}

bool clsynth_tune_results_match(const float *cand, const float *ref, size_t n, double *worst)
{
    double amax = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(ref[i]) && fabs((double)ref[i]) > amax)
            amax = fabs((double)ref[i]);
    double w = 0;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        if (isnan(ref[i]) || isnan(cand[i])) {
            if (isnan(ref[i]) != isnan(cand[i])) {
                ok = false;
                w = INFINITY;
            }
            continue;
        }
        double tol = 1e-4 * amax + 1e-3 * fabs((double)ref[i]) + 1e-30;
        double r = fabs((double)cand[i] - (double)ref[i]) / tol;
        if (r > w)
            w = r;
    }
    if (worst)
        *worst = w;
    return ok && w <= 1.0;
}

int clsynth_tune_measure(clsynth_ctx *ctx, const clsynth_kdef *def, const char *shape, clsynth_kforce *force,
                         int repeats, float **results, size_t *n, double *ms, double *flops, double *bytes)
{
    if (ctx->failed)
        return -1;
    inst in;
    char why[300];
    if (inst_setup(ctx, def, shape, &in, why, sizeof why))
        return clsynth_ctx_fail(ctx, "%s", why);
    int rc = inst_run(ctx, &in, force, results, n, NULL);
    if (rc == 0 && ms)
        rc = inst_time(ctx, &in, force, repeats, 0, ms);
    if (flops)
        *flops = in.b.flops;
    if (bytes)
        *bytes = in.b.bytes;
    inst_free(ctx, &in);
    return rc;
}

/* ------------------------------------------------------------ enumeration */

bool clsynth_tune_legal(clsynth_ctx *ctx, const clsynth_kdef *def, const int *v, const char *shape,
                        bool build_check, char *why, size_t why_len)
{
    clsynth_kshape s;
    memset(&s, 0, sizeof s);
    if (!def->parse(shape, &s)) {
        snprintf(why, why_len, "shape key '%s' is not in the format of %s", shape, def->key);
        return false;
    }
    if (!clsynth_kdef_values_ok(def, v, &s, why, why_len))
        return false;
    if (def->device_ok && !def->device_ok(&ctx->dev, v, why, why_len))
        return false;
    if (build_check)
        return clsynth_kconfig_usable(ctx, def, &s, v, why, why_len);
    clsynth_klimits lim = clsynth_klimits_of(ctx);
    size_t bound = clsynth_kdef_kernel_wg_bound(ctx, def);
    if (bound && bound < lim.max_wg)
        lim.max_wg = bound;
    size_t local[3], lmem;
    return clsynth_kdef_fits(def, v, &s, &lim, local, &lmem, why, why_len);
}

int clsynth_tune_enumerate(clsynth_ctx *ctx, const clsynth_kdef *def, const char *shape, bool build_check,
                           int **v_out, size_t *count)
{
    *v_out = NULL;
    *count = 0;
    clsynth_kshape s;
    if (!def->parse(shape, &s))
        return clsynth_ctx_fail(ctx, "%s: shape key '%s' not understood", def->key, shape);
    size_t space = clsynth_kdef_space(def), n = 0;
    int np = def->n_params > 0 ? def->n_params : 1;
    int *v = malloc(space * (size_t)np * sizeof *v);
    if (!v)
        return clsynth_ctx_fail(ctx, "out of host memory");
    char why[256];
    for (size_t i = 0; i < space; i++) {
        int *c = v + n * (size_t)np;
        if (!clsynth_kdef_decode(def, i, c))
            continue;
        if (!clsynth_tune_legal(ctx, def, c, shape, build_check, why, sizeof why))
            continue;
        n++;
    }
    *v_out = v;
    *count = n;
    return 0;
}

/* ------------------------------------------------------------ tuning a job */

typedef struct search {
    clsynth_ctx *ctx;
    const clsynth_tune_opts *o;
    const clsynth_tune_job *job;
    clsynth_tune_result *r;
    inst in;
    int *cands;          /* legal candidates (values), count * np */
    size_t count;
    int np;
    unsigned char *seen; /* evaluated */
    size_t best;         /* index into cands, or SIZE_MAX */
    float *ref;
    size_t nref;
    double job_deadline, deadline, last_cost;
    double *ref_cost; /* cost of the last reference measurement, shared across jobs */
    size_t job_index, jobs;
    double t_start;
    int planned;
    bool stop;
} search;

static void report(search *S, bool done)
{
    if (!S->o->progress)
        return;
    clsynth_tune_progress p;
    memset(&p, 0, sizeof p);
    p.job = S->job_index;
    p.jobs = S->jobs;
    p.j = S->job;
    p.candidate = S->r->tried;
    p.candidates = S->planned;
    p.elapsed_s = clsynth_now_s() - S->t_start;
    p.budget_s = S->o->budget_s;
    p.r = S->r;
    p.job_done = done;
    S->o->progress(S->o->user, &p);
}

static bool time_left(search *S)
{
    double now = clsynth_now_s();
    double cost = S->last_cost > 0 ? S->last_cost : 0;
    return now + cost <= S->job_deadline && now + cost <= S->deadline;
}

/* Evaluates candidate i; returns 0 (even when the candidate is rejected), -1
 * when the search must stop. */
static int evaluate(search *S, size_t i)
{
    clsynth_ctx *ctx = S->ctx;
    const clsynth_kdef *t = S->job->def;
    const int *v = S->cands + i * (size_t)S->np;
    S->seen[i] = 1;
    double t0 = clsynth_now_s();
    char why[256];
    S->r->tried++;
    if (!clsynth_tune_legal(ctx, t, v, S->job->shape, true, why, sizeof why)) {
        S->r->illegal++;
        S->last_cost = clsynth_now_s() - t0 > S->last_cost ? clsynth_now_s() - t0 : S->last_cost;
        return 0;
    }
    clsynth_kforce f = force_of(t, v);
    float *res = NULL;
    size_t nres = 0;
    int rc = inst_run(ctx, &S->in, &f, &res, &nres, NULL);
    if (rc == 0) {
        double worst = 0;
        if (nres != S->nref || !clsynth_tune_results_match(res, S->ref, nres, &worst)) {
            S->r->mismatched++;
            char desc[160];
            clsynth_kdef_describe(t, v, desc, sizeof desc);
            clsynth_warn(ctx, "tuner: %s at %s with %s differs from the default configuration (error %.3g of the "
                              "tolerance): rejected", t->key, S->job->shape, desc, worst);
            free(res);
            S->last_cost = clsynth_now_s() - t0;
            return 0;
        }
        free(res);
        double ms = 0;
        double best_ms = S->best != SIZE_MAX ? S->r->best_ms : S->r->default_ms;
        rc = inst_time(ctx, &S->in, &f, S->o->repeats, 2.0 * best_ms, &ms);
        if (rc == 0 && (S->best == SIZE_MAX || ms < S->r->best_ms)) {
            S->best = i;
            S->r->best_ms = ms;
        }
    }
    if (rc) {
        S->r->failed++;
        snprintf(S->r->note, sizeof S->r->note, "a candidate failed: %.200s", ctx->err.msg);
        clsynth_ctx_clear_error(ctx);
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
    }
    S->last_cost = clsynth_now_s() - t0;
    report(S, false);
    return 0;
}

static bool same_except(const int *a, const int *b, int np, int skip)
{
    for (int k = 0; k < np; k++)
        if (k != skip && a[k] != b[k])
            return false;
    return true;
}

/* Candidate equal to `base` except parameter p = value x; SIZE_MAX if none is legal. */
static size_t find_variant(search *S, const int *base, int p, int x)
{
    for (size_t i = 0; i < S->count; i++) {
        const int *c = S->cands + i * (size_t)S->np;
        if (c[p] == x && same_except(c, base, S->np, p))
            return i;
    }
    return SIZE_MAX;
}

static unsigned long rng_next(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned long)(*s >> 33);
}

static void search_run(search *S)
{
    const clsynth_kdef *t = S->job->def;
    size_t cap = S->o->max_candidates > 0 ? (size_t)S->o->max_candidates : SIZE_MAX;
    size_t *order = malloc((S->count ? S->count : 1) * sizeof *order);
    if (!order)
        return;
    for (size_t i = 0; i < S->count; i++)
        order[i] = i;
    unsigned long long rs = S->o->seed + 0x51ed270b27ULL * (S->job_index + 1);
    for (size_t i = S->count; i > 1; i--) { /* Fisher-Yates: a budget cut leaves a spread sample */
        size_t j = rng_next(&rs) % i;
        size_t tmp = order[i - 1];
        order[i - 1] = order[j];
        order[j] = tmp;
    }
    bool exhaustive = S->count <= (size_t)(S->o->exhaustive_max > 0 ? S->o->exhaustive_max : 48);
    size_t sample = exhaustive ? S->count : (S->count / 8 > 12 ? 12 : (S->count / 8 < 6 ? 6 : S->count / 8));
    if (sample > S->count)
        sample = S->count;
    S->planned = (int)(exhaustive ? S->count : sample + 4 * (size_t)t->n_params);
    if ((size_t)S->planned > cap)
        S->planned = (int)cap;
    size_t tried = 0;
    for (size_t k = 0; k < sample && tried < cap; k++) {
        if (!time_left(S))
            goto out;
        evaluate(S, order[k]);
        tried++;
    }
    if (exhaustive)
        goto out;
    /* coordinate descent around the best */
    bool improved = true;
    while (improved && S->best != SIZE_MAX) {
        improved = false;
        for (int p = 0; p < S->np && !improved; p++) {
            const clsynth_ktunable *par = &t->params[p];
            const int *base = S->cands + S->best * (size_t)S->np;
            int at = 0;
            while (at < par->n && par->values[at] != base[p])
                at++;
            for (int d = -1; d <= 1; d += 2) {
                int j = at + d;
                if (j < 0 || j >= par->n)
                    continue;
                size_t i = find_variant(S, base, p, par->values[j]);
                if (i == SIZE_MAX || S->seen[i])
                    continue;
                if (tried >= cap || !time_left(S))
                    goto out;
                size_t before = S->best;
                evaluate(S, i);
                tried++;
                if (S->best != before) {
                    improved = true;
                    break;
                }
            }
        }
    }
out:
    free(order);
}

/* Re-times the default and the best candidate alternately (one run each,
 * `repeats` rounds), so a win measured while the machine was busier during
 * the default's timing does not count; updates both medians. */
static int confirm(search *S, double *def_ms, double *best_ms)
{
    clsynth_ctx *ctx = S->ctx;
    const clsynth_kdef *t = S->job->def;
    clsynth_kforce fd = force_of(t, NULL), fb = force_of(t, S->cands + S->best * (size_t)S->np);
    int n = S->o->repeats < 3 ? 3 : (S->o->repeats > 32 ? 32 : S->o->repeats);
    double a[32], b[32];
    for (int i = 0; i < n; i++) {
        int rc = inst_run(ctx, &S->in, &fd, NULL, NULL, &a[i]);
        if (rc == 0)
            rc = inst_run(ctx, &S->in, &fb, NULL, NULL, &b[i]);
        if (rc)
            return -1;
    }
    qsort(a, (size_t)n, sizeof a[0], cmp_double);
    qsort(b, (size_t)n, sizeof b[0], cmp_double);
    *def_ms = n % 2 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
    *best_ms = n % 2 ? b[n / 2] : 0.5 * (b[n / 2 - 1] + b[n / 2]);
    return 0;
}

static int tune_job(clsynth_ctx *ctx, search *S)
{
    const clsynth_tune_job *job = S->job;
    const clsynth_kdef *t = job->def;
    clsynth_tune_result *r = S->r;
    char why[300];
    if (!S->o->retune) {
        clsynth_tune_record old;
        if (clsynth_tunedb_get(ctx, t->key, job->shape, &old) && old.src == clsynth_kdef_src_hash(t)) {
            r->status = CLSYNTH_TUNE_ALREADY;
            if (!clsynth_tune_record_is_default(&old))
                clsynth_kdef_from_fields(t, old.opts, old.local, old.algo, r->best, why, sizeof why);
            r->best_ms = old.ms;
            r->default_ms = old.default_ms;
            return 0;
        }
    }
    /* a job starts only when its reference measurement (estimated from the
     * previous job's) still fits the budget */
    S->last_cost = *S->ref_cost;
    if (clsynth_now_s() + *S->ref_cost > S->deadline) {
        r->status = CLSYNTH_TUNE_NO_TIME;
        return 0;
    }
    if (inst_setup(ctx, t, job->shape, &S->in, why, sizeof why)) {
        r->status = CLSYNTH_TUNE_FAILED;
        snprintf(r->note, sizeof r->note, "%s", why);
        return 0;
    }
    /* reference: the op's default configuration (warm-up + results), then its
     * time; the force counts that the harness reached the job's kernel */
    double t0 = clsynth_now_s();
    clsynth_kforce fd = force_of(t, NULL);
    int rc = inst_run(ctx, &S->in, &fd, &S->ref, &S->nref, NULL);
    double one_run = clsynth_now_s() - t0;
    bool reached = fd.hits > 0;
    /* not even the default's timing and one candidate fit this job's share */
    if (rc == 0 && reached && clsynth_now_s() + (S->o->repeats + 2) * one_run > S->job_deadline) {
        *S->ref_cost = clsynth_now_s() - t0;
        r->status = CLSYNTH_TUNE_NO_TIME;
        snprintf(r->note, sizeof r->note, "one run takes %.0f ms: no time left for this job", one_run * 1e3);
        return 0;
    }
    if (rc == 0)
        rc = inst_time(ctx, &S->in, &fd, S->o->repeats, 0, &r->default_ms);
    if (rc || !reached) {
        r->status = CLSYNTH_TUNE_FAILED;
        if (rc)
            snprintf(r->note, sizeof r->note, "the op fails at its default configuration: %.200s", ctx->err.msg);
        else
            snprintf(r->note, sizeof r->note, "the %s harness never resolves (%s, %s): check the op's shape",
                     t->key, t->key, job->shape);
        clsynth_ctx_clear_error(ctx);
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
        return 0;
    }
    S->last_cost = clsynth_now_s() - t0;
    *S->ref_cost = S->last_cost;
    S->best = SIZE_MAX;
    S->np = t->n_params;
    if (clsynth_tune_enumerate(ctx, t, job->shape, false, &S->cands, &S->count))
        return -1;
    r->legal = (int)S->count;
    S->seen = calloc(S->count ? S->count : 1, 1);
    if (!S->seen)
        return clsynth_ctx_fail(ctx, "out of host memory");
    search_run(S);
    bool partial = !time_left(S) && r->tried < r->legal;
    if (S->best != SIZE_MAX && r->best_ms < r->default_ms * (1.0 - S->o->min_gain) &&
        confirm(S, &r->default_ms, &r->best_ms)) {
        r->failed++;
        snprintf(r->note, sizeof r->note, "confirmation failed: %.200s", ctx->err.msg);
        clsynth_ctx_clear_error(ctx);
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
        S->best = SIZE_MAX;
    }
    clsynth_tune_record rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.kernel, sizeof rec.kernel, "%s", t->key);
    snprintf(rec.shape, sizeof rec.shape, "%s", job->shape);
    rec.src = clsynth_kdef_src_hash(t);
    if (S->best != SIZE_MAX && r->best_ms < r->default_ms * (1.0 - S->o->min_gain)) {
        const int *v = S->cands + S->best * (size_t)S->np;
        clsynth_tune_record_of(t, v, job->shape, &rec);
        clsynth_kdef_describe(t, v, r->best_desc, sizeof r->best_desc);
        clsynth_klimits lim = clsynth_klimits_of(ctx);
        size_t local[3];
        if (!clsynth_kdef_fits(t, v, &S->in.b.shape, &lim, local, &rec.lmem, why, sizeof why))
            rec.lmem = 0;
        rec.ms = r->best_ms;
        memcpy(r->best, v, sizeof(int) * (size_t)S->np);
        r->status = CLSYNTH_TUNE_TUNED;
    } else {
        rec.ms = r->default_ms;
        r->best_ms = r->default_ms;
        snprintf(r->best_desc, sizeof r->best_desc, "default");
        r->status = CLSYNTH_TUNE_DEFAULT_BEST;
    }
    rec.default_ms = r->default_ms;
    /* cut short without a better candidate: not stored (below), so not "kept its default" */
    if (partial && (r->tried == 0 || r->status != CLSYNTH_TUNE_TUNED)) {
        r->status = CLSYNTH_TUNE_NO_TIME;
        if (r->tried)
            snprintf(r->note, sizeof r->note, "budget reached after %d of %d legal candidates", r->tried, r->legal);
        return 0;
    }
    if (partial)
        snprintf(r->note, sizeof r->note, "budget reached after %d of %d legal candidates", r->tried, r->legal);
    /* a job cut short by the budget is stored only when it found something
     * better (above: otherwise a later run, a resume, searches it again) */
    if (clsynth_tunedb_put(ctx, &rec))
        return -1;
    if (S->o->save && clsynth_tunedb_save(ctx, NULL))
        return -1;
    return 0;
}

int clsynth_tune_run(clsynth_ctx *ctx, const clsynth_tune_job *jobs, size_t n, const clsynth_tune_opts *opts,
                     clsynth_tune_result *results)
{
    if (ctx->failed)
        return -1;
    clsynth_tune_opts o;
    if (opts)
        o = *opts;
    else
        clsynth_tune_opts_default(&o);
    if (o.repeats < 1)
        o.repeats = 1;
    if (clsynth_tunedb_load(ctx))
        return clsynth_ctx_fail(ctx, "out of host memory");
    double start = clsynth_now_s();
    double deadline = o.budget_s > 0 ? start + o.budget_s : INFINITY;
    bool saved_profile = ctx->profile_launches;
    ctx->profile_launches = false; /* markers time the runs; per-launch waits would distort them */
    int rc = 0;
    double ref_cost = 0;
    for (size_t j = 0; j < n && rc == 0; j++) {
        clsynth_tune_result local;
        clsynth_tune_result *r = results ? &results[j] : &local;
        memset(r, 0, sizeof *r);
        search S;
        memset(&S, 0, sizeof S);
        S.ctx = ctx;
        S.o = &o;
        S.job = &jobs[j];
        S.r = r;
        S.deadline = deadline;
        S.t_start = start;
        S.job_index = j;
        S.jobs = n;
        S.ref_cost = &ref_cost;
        double now = clsynth_now_s();
        /* fair share of what is left; what a job leaves unused flows to the next */
        S.job_deadline = isinf(deadline) ? INFINITY : now + (deadline - now) / (double)(n - j);
        rc = tune_job(ctx, &S);
        free(S.cands);
        free(S.seen);
        free(S.ref);
        inst_free(ctx, &S.in);
        /* every job has its own buffer sizes: give them back to the device, or
         * the exact-size pool grows with every shape */
        clsynth_pool_trim(ctx);
        report(&S, true);
    }
    ctx->profile_launches = saved_profile;
    return rc;
}

static bool job_listed(const clsynth_tune_job *v, size_t n, const char *key, const char *shape)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].def->key, key) == 0 && strcmp(v[i].shape, shape) == 0)
            return true;
    return false;
}

int clsynth_tune_jobs_from_recorded(clsynth_ctx *ctx, clsynth_tune_job **jobs, size_t *n, size_t *n_unknown)
{
    size_t total = clsynth_tunedb_recorded_count(ctx), k = 0, unknown = 0;
    /* each recorded key may pull in up to CLSYNTH_K_MAX_BEFORE `before` keys */
    clsynth_tune_job *v = calloc(total ? (CLSYNTH_K_MAX_BEFORE + 1) * total : 1, sizeof *v);
    if (!v)
        return clsynth_ctx_fail(ctx, "out of host memory");
    for (size_t i = 0; i < total; i++) {
        const char *kernel, *shape;
        unsigned long uses = 0;
        clsynth_tunedb_recorded(ctx, i, &kernel, &shape, &uses);
        const clsynth_kdef *t = clsynth_kdef_find(kernel);
        if (!t || !t->run) {
            unknown++;
            continue;
        }
        for (int b = 0; b < CLSYNTH_K_MAX_BEFORE && t->before[b]; b++) {
            const clsynth_kdef *tb = clsynth_kdef_find(t->before[b]);
            clsynth_kshape applies;
            /* a descriptor whose shape rule refuses the key does not run there (Winograd: 3x3 stride 1) */
            if (!tb || !tb->run || job_listed(v, k, tb->key, shape) || !tb->parse(shape, &applies))
                continue;
            v[k].def = tb;
            snprintf(v[k].shape, sizeof v[k].shape, "%s", shape);
            v[k].uses = uses;
            k++;
        }
        if (job_listed(v, k, t->key, shape))
            continue;
        v[k].def = t;
        snprintf(v[k].shape, sizeof v[k].shape, "%s", shape);
        v[k].uses = uses;
        k++;
    }
    /* descriptors the others run on (the GEMM) first, so that the choices
     * above them are measured with their tuned configuration; otherwise in
     * recorded order */
    clsynth_tune_job *sorted = calloc(k ? k : 1, sizeof *sorted);
    if (!sorted) {
        free(v);
        return clsynth_ctx_fail(ctx, "out of host memory");
    }
    size_t m = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < k; i++)
            if (v[i].def->tune_first == (pass == 0))
                sorted[m++] = v[i];
    free(v);
    *jobs = sorted;
    *n = k;
    if (n_unknown)
        *n_unknown = unknown;
    return 0;
}
