/* The autotuner: legal-only enumeration under emulated device limits (the
 * kernels' own work-group limit included), every tunable kernel giving the
 * default configuration's result under sampled candidates, rejection of
 * wrong candidates, storing and resuming, the budget, the shape recorder,
 * and CLBlast measurements in a bounded worker process.
 * (The database file: tests/test_tunedb.c; the resolver: tests/test_kconfig.c.)
 *
 * The binary doubles as the CLBlast worker: run with --clblast-worker it
 * measures GEMMs like `clsynth tune --clblast-worker`.
 * CLSYNTH_OCLGRIND_OK: under Oclgrind the shapes are tiny and CLBlast is skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcore/clblast_tune.h"
#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/launch.h"
#include "clcore/program.h"
#include "clcore/tunedb.h"
#include "clcore/tuner.h"
#include "testutil.h"
#include "tools/clblast_worker.h"

static clsynth_ctx *ctx;

static void setup(void) { ctx = clsynth_test_ctx(); }

static void teardown(void)
{
    clsynth_ctx_free(ctx);
    ctx = NULL;
}

/* A test shape of the descriptor (the smallest under Oclgrind); which 0 or 1. */
static void small_shape(const clsynth_kdef *t, int which, char *key, size_t len)
{
    int i = clsynth_test_under_oclgrind() ? 0 : 1 + which;
    if (i >= t->n_test_shapes)
        i = t->n_test_shapes - 1;
    clsynth_kdef_test_key(t, i, key, len);
}

typedef struct limits {
    size_t wg;
    unsigned long long local;
} limits;

static const limits LIMITS[] = { { 0, 0 }, { 256, 32768 }, { 128, 16384 }, { 64, 8192 }, { 1024, 65536 } };

/* The work-group of candidate v under lim, checked against lim. */
static size_t checked_local(const clsynth_kdef *t, const int *v, const void *s, const clsynth_klimits *lim,
                            size_t loc[3], const char *desc)
{
    size_t prod = 1;
    loc[0] = loc[1] = loc[2] = 0;
    if (t->local_size)
        ck_assert_msg(t->local_size(v, s, lim, loc), "%s: %s has no work-group", t->key, desc);
    if (loc[0])
        for (int d = 0; d < 3; d++) {
            size_t l = loc[d] ? loc[d] : 1;
            ck_assert_msg(l <= lim->max_item[d], "%s: %s: local[%d] = %zu > %zu", t->key, desc, d, l,
                          lim->max_item[d]);
            prod *= l;
        }
    ck_assert_msg(prod <= lim->max_wg, "%s: %s: work-group %zu > max %zu", t->key, desc, prod, lim->max_wg);
    return prod;
}

/* Independent re-check of one candidate against the context's limits and
 * the kernels' own work-group limit (with built: of the candidate's build). */
static void assert_candidate_legal(const clsynth_kdef *t, const int *v, const void *s, bool built)
{
    char desc[160];
    clsynth_kdef_describe(t, v, desc, sizeof desc);
    for (int i = 0; i < t->n_params; i++)
        ck_assert_msg(clsynth_ktunable_legal(&t->params[i], v[i]), "%s: %s=%d is not a declared value", t->key,
                      t->params[i].name, v[i]);
    if (t->valid)
        ck_assert_msg(t->valid(v, s), "%s: %s violates its constraints", t->key, desc);
    clsynth_klimits lim = clsynth_klimits_of(ctx);
    size_t bound = clsynth_kdef_kernel_wg_bound(ctx, t);
    ck_assert_uint_gt(bound, 0);
    if (bound < lim.max_wg)
        lim.max_wg = bound;
    size_t loc[3];
    checked_local(t, v, s, &lim, loc, desc);
    size_t lmem = t->local_mem ? t->local_mem(v, s, loc) : 0;
    ck_assert_msg(lmem <= ctx->local_mem, "%s: %s: local memory %zu > %llu", t->key, desc, lmem,
                  (unsigned long long)ctx->local_mem);
    if (built && t->file) {
        char opts[256];
        clsynth_kdef_options(t, v, opts, sizeof opts);
        clsynth_klimits own = clsynth_klimits_of(ctx);
        for (int k = 0; k < 4 && t->kernels[k]; k++) {
            cl_kernel kern = clsynth_kernel_get(ctx, t->file, t->kernels[k], opts);
            ck_assert_msg(kern != NULL, "%s: %s does not build: %s", t->key, desc, ctx->err.msg);
            size_t kmax = clsynth_kernel_max_wg(ctx, kern, t->kernels[k]);
            if (kmax < own.max_wg)
                own.max_wg = kmax;
        }
        /* its build may allow fewer items than the bound: then the tuner
         * skips it before it runs (and the resolver refuses it) */
        char why[300];
        if (clsynth_kconfig_usable(ctx, t, s, v, why, sizeof why))
            checked_local(t, v, s, &own, loc, desc);
    }
}

/* Property: under several emulated limit sets (and random ones), the
 * enumeration of every registered tunable at several shapes yields only legal
 * candidates; a sample is also built and checked against its kernel's
 * CL_KERNEL_WORK_GROUP_SIZE. */
START_TEST(enumeration_never_yields_an_illegal_candidate)
{
    int nt = 0;
    const clsynth_kdef *const *reg = clsynth_kdefs(&nt);
    ck_assert_int_gt(nt, 0);
    const size_t base_wg = ctx->max_wg;
    const cl_ulong base_local = ctx->local_mem;
    uint64_t rs = 7;
    int n_limits = (int)(sizeof LIMITS / sizeof LIMITS[0]) + 4;
    for (int li = 0; li < n_limits; li++) {
        /* fresh limits: the device's, then lowered (emulation only lowers) */
        ctx->max_wg = base_wg;
        ctx->local_mem = base_local;
        for (int d = 0; d < 3; d++)
            ctx->max_item[d] = ctx->dev.max_item[d];
        size_t wg;
        unsigned long long lm;
        if (li < (int)(sizeof LIMITS / sizeof LIMITS[0])) {
            wg = LIMITS[li].wg;
            lm = LIMITS[li].local;
        } else { /* random limits, also odd ones */
            rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
            wg = 16 + (size_t)((rs >> 33) % 1009);
            lm = 2048 + (rs >> 45) % 60000;
        }
        clsynth_ctx_emulate_limits(ctx, wg, lm);
        for (int ti = 0; ti < nt; ti++) {
            const clsynth_kdef *t = reg[ti];
            if (!t->run)
                continue; /* CLBlast's parameters: tested with the CLBlast search */
            for (int which = 0; which < 2; which++) {
                char shape[CLSYNTH_K_KEY_MAX];
                small_shape(t, which, shape, sizeof shape);
                clsynth_kshape s;
                ck_assert(t->parse(shape, &s));
                int *v = NULL;
                size_t count = 0;
                ck_assert_msg(clsynth_tune_enumerate(ctx, t, shape, false, &v, &count) == 0, "%s", ctx->err.msg);
                for (size_t c = 0; c < count; c++)
                    assert_candidate_legal(t, v + c * (size_t)t->n_params, &s,
                                           li < 2 && which == 0 && (c % 97 == 0 || c + 1 == count));
                /* and the enumeration misses nothing legal: every decodable
                 * candidate it dropped is illegal */
                size_t legal = 0;
                int vv[CLSYNTH_K_MAX_PARAMS];
                char why[256];
                for (size_t i = 0; i < clsynth_kdef_space(t); i++)
                    if (clsynth_kdef_decode(t, i, vv) && clsynth_tune_legal(ctx, t, vv, shape, false, why, sizeof why))
                        legal++;
                ck_assert_uint_eq(legal, count);
                free(v);
            }
        }
    }
}
END_TEST

/* Every candidate the test samples (first, last, and spread ones, under the
 * device's limits and under 256 / 32 KiB) gives the default configuration's
 * result, forward and (for backward kernels) gradients. */
START_TEST(every_kernel_matches_the_reference_under_sampled_candidates)
{
    int nt = 0;
    const clsynth_kdef *const *reg = clsynth_kdefs(&nt);
    int samples = clsynth_test_under_oclgrind() ? 2 : 4;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            clsynth_ctx_emulate_limits(ctx, 256, 32768);
        for (int ti = 0; ti < nt; ti++) {
            const clsynth_kdef *t = reg[ti];
            char shape[CLSYNTH_K_KEY_MAX];
            small_shape(t, pass, shape, sizeof shape);
            const char *only_k = getenv("CLSYNTH_TUNER_KERNEL"); /* development filter */
            if (!t->run || (only_k && strcmp(only_k, t->key) != 0))
                continue;
            float *ref = NULL;
            size_t nref = 0;
            clsynth_kforce defaults = { .def = t, .defaults = true };
            ck_assert_msg(clsynth_tune_measure(ctx, t, shape, &defaults, 0, &ref, &nref, NULL, NULL, NULL) == 0,
                          "%s at %s (default): %s", t->key, shape, ctx->err.msg);
            int *v = NULL;
            size_t count = 0;
            ck_assert(clsynth_tune_enumerate(ctx, t, shape, true, &v, &count) == 0);
            ck_assert_msg(count > 0, "%s at %s: no legal candidate", t->key, shape);
            const char *only_s = getenv("CLSYNTH_TUNER_SAMPLE"); /* development filter */
            for (int k = 0; k < samples; k++) {
                if (only_s && atoi(only_s) != pass * 10 + k)
                    continue;
                size_t c = k == 0 ? 0 : k == samples - 1 ? count - 1 : (size_t)k * count / (size_t)samples;
                const int *cv = v + c * (size_t)t->n_params;
                clsynth_kforce f = { .def = t };
                memcpy(f.v, cv, sizeof(int) * (size_t)t->n_params);
                char desc[160];
                clsynth_kdef_describe(t, cv, desc, sizeof desc);
                if (getenv("CLSYNTH_TUNER_VERBOSE"))
                    fprintf(stderr, "%s %s %s\n", t->key, shape, desc);
                float *res = NULL;
                size_t nres = 0;
                ck_assert_msg(clsynth_tune_measure(ctx, t, shape, &f, 0, &res, &nres, NULL, NULL, NULL) == 0,
                              "%s at %s with %s: %s", t->key, shape, desc, ctx->err.msg);
                ck_assert_uint_gt(f.hits, 0);
                ck_assert_uint_eq(nres, nref);
                double worst = 0;
                ck_assert_msg(clsynth_tune_results_match(res, ref, nres, &worst),
                              "%s at %s with %s differs from the default (%.3g of the tolerance)", t->key, shape,
                              desc, worst);
                free(res);
            }
            free(v);
            free(ref);
        }
    }
}
END_TEST

/* A synthetic descriptor whose candidate ALGO=2 computes a wrong result: the
 * tuner must reject it (and never store it), however fast. */
typedef struct fake_shape {
    int n;
} fake_shape;

static int fake_format(const void *shape, char *key, size_t len)
{
    return snprintf(key, len, "n%d", ((const fake_shape *)shape)->n);
}

static bool fake_parse(const char *key, void *shape)
{
    fake_shape *s = shape;
    return sscanf(key, "n%d", &s->n) == 1 && s->n > 0;
}

static int fake_setup(clsynth_ctx *c, clsynth_kbench *b)
{
    const fake_shape *s = (const fake_shape *)&b->shape;
    return clsynth_kbench_input(c, b, "fake.x", 1, 1, 1, s->n, 1, 1.0f);
}

static const clsynth_kdef FAKE;

static clsynth_tensor *fake_run(clsynth_ctx *c, clsynth_kbench *b, clsynth_kforce *force)
{
    const fake_shape *s = (const fake_shape *)&b->shape;
    clsynth_kcfg cfg;
    if (clsynth_kconfig(c, &FAKE, s, force, &cfg))
        return NULL;
    clsynth_tensor *y = clsynth_tensor_new(c, "fake.y", 1, 1, 1, s->n);
    if (!y)
        return NULL;
    if (cfg.v[0] == 2)
        return clsynth_tensor_fill(c, y, 0.0f) ? NULL : y; /* wrong (and fast) */
    return clsynth_tensor_copy(c, y, b->in[0]) ? NULL : y;
}

static const clsynth_kdef FAKE = {
    .key = "fake_copy", .n_params = 1,
    .params = { { .name = "ALGO", .kind = CLSYNTH_K_ALGO, .n = 2, .values = { 1, 2 }, .def = 1 } },
    .shape_size = sizeof(fake_shape), .format = fake_format, .parse = fake_parse,
    .setup = fake_setup, .run = fake_run,
};

START_TEST(wrong_candidates_are_rejected_and_results_stored)
{
    unlink("fake.txt");
    clsynth_tunedb_set_path(ctx, "fake.txt");
    clsynth_tune_job job = { &FAKE, "n100000", 1 };
    clsynth_tune_opts o;
    clsynth_tune_opts_default(&o);
    o.repeats = 3;
    o.min_gain = -10; /* store whatever correct candidate wins */
    clsynth_tune_result r;
    ck_assert_int_eq(clsynth_tune_run(ctx, &job, 1, &o, &r), 0);
    ck_assert_int_eq(r.legal, 2);
    ck_assert_int_eq(r.mismatched, 1);
    ck_assert_int_eq(r.status, CLSYNTH_TUNE_TUNED);
    ck_assert_int_eq(r.best[0], 1);
    int v[CLSYNTH_K_MAX_PARAMS];
    ck_assert_int_eq(clsynth_tunedb_lookup(ctx, &FAKE, "n100000", v, NULL), CLSYNTH_TUNEDB_DEVICE);
    ck_assert_int_eq(v[0], 1);
    ck_assert(access("fake.txt", R_OK) == 0);
    /* resume: a second run skips the tuned job */
    clsynth_tune_result r2;
    ck_assert_int_eq(clsynth_tune_run(ctx, &job, 1, &o, &r2), 0);
    ck_assert_int_eq(r2.status, CLSYNTH_TUNE_ALREADY);
    /* a shape the harness cannot parse fails that job only */
    clsynth_tune_job badjob = { &FAKE, "bad-key", 1 };
    ck_assert_int_eq(clsynth_tune_run(ctx, &badjob, 1, &o, &r2), 0);
    ck_assert_int_eq(r2.status, CLSYNTH_TUNE_FAILED);
}
END_TEST

static void budget_progress(void *user, const clsynth_tune_progress *p)
{
    (void)user;
    if (getenv("CLSYNTH_TUNER_VERBOSE"))
        fprintf(stderr, "job %zu cand %d/%d done %d elapsed %.2f status %d\n", p->job, p->candidate, p->candidates,
                p->job_done, p->elapsed_s, p->r->status);
}

START_TEST(tuner_honours_its_budget)
{
    unlink("budget.txt");
    clsynth_tunedb_set_path(ctx, "budget.txt");
    const clsynth_kdef *nm = &clsynth_kdef_norm_partial_stats, *cv = &clsynth_kdef_conv_fwd_direct;
    bool og = clsynth_test_under_oclgrind();
    /* shapes whose runs take a while (tiny ones when every run is simulated) */
    const clsynth_norm_shape ns[2][2] = { { { 32, 4096 }, { 16, 16384 } }, { { 4, 256 }, { 2, 600 } } };
    const clsynth_conv_shape cs[2][2] = { { { 1, 16, 32, 32, 16, 3, 3, 1, 1 }, { 2, 8, 24, 24, 8, 3, 3, 1, 1 } },
                                          { { 1, 2, 6, 6, 2, 3, 3, 1, 1 }, { 1, 3, 5, 5, 2, 3, 3, 1, 1 } } };
    clsynth_tune_job jobs[4] = { { nm, "", 1 }, { cv, "", 1 }, { nm, "", 1 }, { cv, "", 1 } };
    for (int i = 0; i < 2; i++) {
        nm->format(&ns[og][i], jobs[2 * i].shape, sizeof jobs[2 * i].shape);
        cv->format(&cs[og][i], jobs[2 * i + 1].shape, sizeof jobs[2 * i + 1].shape);
    }
    clsynth_tune_opts o;
    clsynth_tune_opts_default(&o);
    o.budget_s = clsynth_test_under_oclgrind() ? 20 : 6;
    o.repeats = 3;
    o.save = false;
    o.progress = budget_progress;
    clsynth_tune_result r[4];
    double t0 = clsynth_now_s();
    ck_assert_msg(clsynth_tune_run(ctx, jobs, 4, &o, r) == 0, "%s", ctx->err.msg);
    double took = clsynth_now_s() - t0;
    int tried = 0;
    for (int i = 0; i < 4; i++)
        tried += r[i].tried;
    /* the budget covers the whole run; one candidate in flight may overrun it
     * (a kernel build on PoCL takes up to ~1.5 s; a run under Oclgrind several s) */
    ck_assert_msg(took <= o.budget_s + (og ? 15.0 : 4.0), "took %.1f s with a %.0f s budget", took, o.budget_s);
    ck_assert_msg(tried < 4 * 40, "the budget stopped nothing (%d candidates)", tried);
    bool cut = false;
    for (int i = 0; i < 4; i++)
        cut |= r[i].status == CLSYNTH_TUNE_NO_TIME || r[i].tried < r[i].legal;
    ck_assert_msg(cut, "a %.0f s budget should not cover every candidate", o.budget_s);
}
END_TEST

/* Descriptors with only a key, for the recorder. */
static const clsynth_kdef REC_A = { .key = "a", .shape_size = sizeof(fake_shape), .format = fake_format,
                                    .parse = fake_parse };
static const clsynth_kdef REC_B = { .key = "b", .shape_size = sizeof(fake_shape), .format = fake_format,
                                    .parse = fake_parse };
static const clsynth_kdef REC_UNKNOWN = { .key = "unknown_kernel", .shape_size = sizeof(fake_shape),
                                          .format = fake_format, .parse = fake_parse };

START_TEST(recorder_lists_every_resolution_once)
{
    clsynth_tunedb_set_path(ctx, "recorder-none.txt");
    clsynth_kcfg cfg;
    const fake_shape n1 = { 1 }, n2 = { 2 }, n3 = { 3 }, n5 = { 5 };
    clsynth_tunedb_record(ctx, true);
    ck_assert_int_eq(clsynth_kconfig(ctx, &REC_A, &n1, NULL, &cfg), 0);
    ck_assert_int_eq(clsynth_kconfig(ctx, &REC_B, &n2, NULL, &cfg), 0);
    ck_assert_int_eq(clsynth_kconfig(ctx, &REC_A, &n1, NULL, &cfg), 0); /* a kept configuration counts too */
    clsynth_tunedb_record(ctx, false);
    ck_assert_int_eq(clsynth_kconfig(ctx, &REC_B, &n3, NULL, &cfg), 0);
    ck_assert_uint_eq(clsynth_tunedb_recorded_count(ctx), 2);
    const char *k, *s;
    unsigned long n;
    ck_assert(clsynth_tunedb_recorded(ctx, 0, &k, &s, &n));
    ck_assert_str_eq(k, "a");
    ck_assert_str_eq(s, "n1");
    ck_assert_uint_eq(n, 2);
    /* conv2d pulls its direct kernels in first; keys without a harness are counted */
    clsynth_tunedb_recorded_clear(ctx);
    clsynth_tunedb_record(ctx, true);
    const clsynth_conv_shape cs = { 1, 3, 8, 8, 4, 3, 3, 1, 1 };
    ck_assert_int_eq(clsynth_kconfig(ctx, &clsynth_kdef_conv2d, &cs, NULL, &cfg), 0);
    ck_assert_int_eq(clsynth_kconfig(ctx, &REC_UNKNOWN, &n5, NULL, &cfg), 0);
    clsynth_tunedb_record(ctx, false);
    clsynth_tune_job *jobs = NULL;
    size_t nj = 0, unknown = 0;
    ck_assert_int_eq(clsynth_tune_jobs_from_recorded(ctx, &jobs, &nj, &unknown), 0);
    ck_assert_uint_eq(nj, 4);
    ck_assert_uint_eq(unknown, 1);
    ck_assert_str_eq(jobs[0].def->key, "conv_fwd_direct");
    ck_assert_str_eq(jobs[3].def->key, "conv2d");
    free(jobs);
}
END_TEST

/* CLBlast: a bounded worker process measures GEMMs with given parameters; a
 * broken parameter set fails cleanly; the shapes of a conv are derived. */
START_TEST(clblast_worker_measures_and_rejects_bad_parameters)
{
    clsynth_gemm_shape sh[8];
    size_t n = clsynth_conv_gemm_shapes("N2.C8.H16.W16.O16.K3x3.S1.P1", 1, sh, 0, 8);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(sh[0].m, 16);
    ck_assert_int_eq(sh[0].n, 256);
    ck_assert_int_eq(sh[0].k, 72);
    ck_assert(fabs(sh[0].weight - 2) < 1e-9);
    static const char *const wargv[] = { "--clblast-worker" };
    clsynth_clblast_worker wc = { NULL, wargv, 1, (size_t)4 << 30, 120 };
    double ms[3];
    ck_assert_msg(clsynth_clblast_measure(ctx, sh, n, NULL, 2, &wc, ms) == 0, "%s", ctx->err.msg);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(ms[i] > 0, "shape %zu: %g", i, ms[i]);
    clsynth_clblast_params p;
    memset(&p, 0, sizeof p);
    p.has[0] = true; /* Xgemm with MDIMC 0: the worker refuses it before CLBlast sees it */
    clsynth_kdef_defaults(&clsynth_kdef_clblast_xgemm, &ctx->dev, p.v[0]);
    p.v[0][X_MDIMC] = 0;
    ck_assert_int_ne(clsynth_clblast_measure(ctx, sh, n, &p, 1, &wc, ms), 0);
    ck_assert_msg(strstr(ctx->err.msg, "CLBlast") && strstr(ctx->err.msg, "MDIMC"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tuner");
    TCase *tc = tcase_create("tuner");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    /* CLSYNTH_TUNER_ONLY=<test name> runs one test (development) */
    const char *only = getenv("CLSYNTH_TUNER_ONLY");
#define ADD(t)                                                                                   \
    if (!only || strcmp(only, #t) == 0)                                                          \
        tcase_add_test(tc, t)
    ADD(enumeration_never_yields_an_illegal_candidate);
    ADD(every_kernel_matches_the_reference_under_sampled_candidates);
    ADD(wrong_candidates_are_rejected_and_results_stored);
    ADD(tuner_honours_its_budget);
    ADD(recorder_lists_every_resolution_once);
    if (!clsynth_test_under_oclgrind())
        ADD(clblast_worker_measures_and_rejects_bad_parameters);
#undef ADD
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--clblast-worker") == 0)
        return clsynth_clblast_worker_main(argc - 2, argv + 2);
    return clsynth_test_run(suite());
}
