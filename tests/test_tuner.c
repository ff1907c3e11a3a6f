/* The autotuner, the tuning database and CLBlast tuning: legal-only
 * enumeration under emulated device limits, every tunable kernel giving the
 * reference result under sampled candidates, database round trip, corrupt and
 * stale files, budget, resume, result checking, lookup cost.
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
#include "clcore/launch.h"
#include "clcore/program.h"
#include "clcore/tunables.h"
#include "clcore/tunedb.h"
#include "clcore/tuner.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static void setup(void) { ctx = clsynth_test_ctx(); }

static void teardown(void)
{
    clsynth_ctx_free(ctx);
    ctx = NULL;
}

/* A small shape per tunable (tiny under Oclgrind). */
static const char *small_shape(const clsynth_tunable *t, int which)
{
    bool og = clsynth_test_under_oclgrind();
    if (strncmp(t->key, "conv", 4) == 0)
        return og ? "N2.C3.H5.W7.O5.K3x3.S1.P1" : (which ? "N2.C5.H9.W7.O17.K3x3.S2.P1" : "N2.C17.H13.W11.O9.K3x3.S1.P1");
    if (strncmp(t->key, "dwconv", 6) == 0)
        return og ? "3x5x7" : (which ? "10x33x17" : "6x19x23");
    if (strncmp(t->key, "norm", 4) == 0)
        return og ? "G=3,M=70" : (which ? "G=5,M=4099" : "G=17,M=1200");
    if (strcmp(t->key, "reduce_groups") == 0)
        return og ? "k1r7" : (which ? "k0r14" : "k3r10");
    return NULL;
}

typedef struct limits {
    size_t wg;
    unsigned long long local;
} limits;

static const limits LIMITS[] = { { 0, 0 }, { 256, 32768 }, { 128, 16384 }, { 64, 8192 }, { 1024, 65536 } };

/* Independent re-check of one candidate against the context's limits. */
static void assert_candidate_legal(const clsynth_tunable *t, const int *v, const int *s, bool built)
{
    char desc[160];
    clsynth_tunable_describe(t, v, desc, sizeof desc);
    for (int i = 0; i < t->n_params; i++) {
        bool found = false;
        for (int j = 0; j < t->params[i].n; j++)
            found |= t->params[i].values[j] == v[i];
        ck_assert_msg(found, "%s: %s=%d is not a declared value", t->key, t->params[i].name, v[i]);
    }
    if (t->valid)
        ck_assert_msg(t->valid(v, s), "%s: %s violates its constraints", t->key, desc);
    clsynth_tune_entry e;
    clsynth_tunable_entry(t, v, &e);
    size_t prod = 1, loc[3] = { e.local[0], e.local[1], e.local[2] };
    if (!loc[0] && t->implied_local)
        t->implied_local(v, s, loc);
    if (loc[0])
        for (int d = 0; d < 3; d++) {
            ck_assert_msg(loc[d] >= 1 && loc[d] <= ctx->max_item[d], "%s: %s: local[%d] = %zu > %zu", t->key,
                          desc, d, loc[d], ctx->max_item[d]);
            prod *= loc[d];
        }
    ck_assert_msg(prod <= ctx->max_wg, "%s: %s: work-group %zu > max %zu", t->key, desc, prod, ctx->max_wg);
    size_t lmem = t->local_mem ? t->local_mem(v, s) : 0;
    ck_assert_msg(lmem <= ctx->local_mem, "%s: %s: local memory %zu > %llu", t->key, desc, lmem,
                  (unsigned long long)ctx->local_mem);
    if (built && t->file && loc[0]) {
        for (int k = 0; k < 4 && t->kernels[k]; k++) {
            cl_kernel kern = clsynth_kernel_get(ctx, t->file, t->kernels[k], e.options);
            ck_assert_msg(kern != NULL, "%s: %s does not build: %s", t->key, desc, ctx->err.msg);
            size_t kmax = clsynth_kernel_max_wg(ctx, kern, t->kernels[k]);
            ck_assert_msg(prod <= kmax, "%s: %s: work-group %zu > CL_KERNEL_WORK_GROUP_SIZE %zu", t->key, desc,
                          prod, kmax);
        }
    }
}

/* Property: under several emulated limit sets (and random ones), the
 * enumeration of every registered tunable at several shapes yields only legal
 * candidates; a sample is also built and checked against its kernel's
 * CL_KERNEL_WORK_GROUP_SIZE. */
START_TEST(enumeration_never_yields_an_illegal_candidate)
{
    int nt = 0;
    const clsynth_tunable *reg = clsynth_tunables(&nt);
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
            const clsynth_tunable *t = &reg[ti];
            for (int which = 0; which < 2; which++) {
                const char *shape = small_shape(t, which);
                if (!shape)
                    continue;
                int s[CLSYNTH_TP_MAX_SHAPE];
                ck_assert_int_ge(t->parse(shape, s), 0);
                int *v = NULL;
                size_t count = 0;
                ck_assert_msg(clsynth_tune_enumerate(ctx, t, shape, false, &v, &count) == 0, "%s", ctx->err.msg);
                for (size_t c = 0; c < count; c++)
                    assert_candidate_legal(t, v + c * (size_t)t->n_params, s,
                                           li < 2 && which == 0 && (c % 97 == 0 || c + 1 == count));
                /* and the enumeration misses nothing legal: every decodable
                 * candidate it dropped is illegal */
                size_t legal = 0;
                int vv[CLSYNTH_TP_MAX_PARAMS];
                char why[256];
                for (size_t i = 0; i < clsynth_tunable_space(t); i++)
                    if (clsynth_tunable_decode(t, i, vv) && clsynth_tunable_legal(ctx, t, vv, s, false, why, sizeof why))
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
    const clsynth_tunable *reg = clsynth_tunables(&nt);
    int samples = clsynth_test_under_oclgrind() ? 2 : 4;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            clsynth_ctx_emulate_limits(ctx, 256, 32768);
        for (int ti = 0; ti < nt; ti++) {
            const clsynth_tunable *t = &reg[ti];
            const char *shape = small_shape(t, pass);
            const char *only_k = getenv("CLSYNTH_TUNER_KERNEL"); /* development filter */
            if (!shape || (only_k && strcmp(only_k, t->key) != 0))
                continue;
            float *ref = NULL;
            size_t nref = 0;
            clsynth_tunedb_set_enabled(ctx, false);
            ck_assert_msg(clsynth_tune_measure(ctx, t, shape, NULL, 0, &ref, &nref, NULL, NULL, NULL) == 0,
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
                clsynth_tune_entry e;
                clsynth_tunable_entry(t, cv, &e);
                char desc[160];
                clsynth_tunable_describe(t, cv, desc, sizeof desc);
                if (getenv("CLSYNTH_TUNER_VERBOSE"))
                    fprintf(stderr, "%s %s %s\n", t->key, shape, desc);
                float *res = NULL;
                size_t nres = 0;
                ck_assert_msg(clsynth_tune_measure(ctx, t, shape, &e, 0, &res, &nres, NULL, NULL, NULL) == 0,
                              "%s at %s with %s: %s", t->key, shape, desc, ctx->err.msg);
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

static clsynth_tune_record rec(const char *k, const char *s, const char *opts, size_t l0, size_t l1, int algo)
{
    clsynth_tune_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.kernel, sizeof r.kernel, "%s", k);
    snprintf(r.shape, sizeof r.shape, "%s", s);
    snprintf(r.e.options, sizeof r.e.options, "%s", opts);
    r.e.local[0] = l0;
    r.e.local[1] = l0 ? l1 : 0;
    r.e.local[2] = l0 ? 1 : 0;
    r.e.algo = algo;
    r.ms = 1.5;
    r.default_ms = 2.25;
    return r;
}

START_TEST(database_round_trip)
{
    const char *path = "roundtrip.txt";
    unlink(path);
    ck_assert_int_eq(clsynth_tunedb_set_path(ctx, path), 0);
    ck_assert_uint_eq(clsynth_tunedb_count(ctx), 0);
    clsynth_tune_record a = rec("dwconv_fwd", "64x128x128", "-DVW=4 -DTILE_W=32 -DTILE_H=8", 8, 8, 0);
    clsynth_tune_record b = rec("conv2d", "N1.C256.H32.W32.O256.K3x3.S1.P1", "", 0, 0, 2);
    clsynth_tune_record c = rec("future_kernel", "G=32,M=4096", "-DX=1", 16, 1, 0); /* keys may hold = and , */
    a.lmem = 1360;
    ck_assert(clsynth_tunedb_put(ctx, &a) == 0 && clsynth_tunedb_put(ctx, &b) == 0 && clsynth_tunedb_put(ctx, &c) == 0);
    ck_assert_int_eq(clsynth_tunedb_save(ctx, NULL), 0);
    /* a fresh context reads the same entries back */
    clsynth_ctx *c2 = clsynth_test_ctx();
    clsynth_tunedb_set_path(c2, path);
    ck_assert_uint_eq(clsynth_tunedb_count(c2), 3);
    ck_assert_uint_eq(clsynth_tunedb_warnings(c2), 0);
    clsynth_tune_entry e;
    ck_assert(clsynth_tune_lookup(c2, "dwconv_fwd", "64x128x128", &e));
    ck_assert_str_eq(e.options, a.e.options);
    ck_assert_uint_eq(e.local[0], 8);
    ck_assert_uint_eq(e.local[1], 8);
    ck_assert(clsynth_tune_lookup(c2, "conv2d", "N1.C256.H32.W32.O256.K3x3.S1.P1", &e));
    ck_assert_int_eq(e.algo, 2);
    ck_assert(!clsynth_tune_lookup(c2, "conv2d", "N2.C256.H32.W32.O256.K3x3.S1.P1", &e));
    clsynth_tune_record back;
    ck_assert(clsynth_tunedb_get(c2, "dwconv_fwd", "64x128x128", &back));
    ck_assert_uint_eq(back.lmem, 1360);
    ck_assert(fabs(back.ms - 1.5) < 1e-9 && fabs(back.default_ms - 2.25) < 1e-9);
    /* sorted, diffable: a second save gives the same entry lines */
    ck_assert_int_eq(clsynth_tunedb_save(c2, "roundtrip2.txt"), 0);
    ck_assert_str_eq(clsynth_tunedb_at(c2, 0)->kernel, "conv2d");
    ck_assert_str_eq(clsynth_tunedb_at(c2, 2)->kernel, "future_kernel");
    /* export / import on the same device model */
    ck_assert_int_eq(clsynth_tunedb_export(c2, "exported.txt"), 0);
    clsynth_ctx_free(c2);
    clsynth_ctx *c3 = clsynth_test_ctx();
    unlink("imported.txt");
    clsynth_tunedb_set_path(c3, "imported.txt");
    ck_assert_uint_eq(clsynth_tunedb_count(c3), 0);
    ck_assert_msg(clsynth_tunedb_import(c3, "exported.txt", false) == 0, "%s", c3->err.msg);
    ck_assert_uint_eq(clsynth_tunedb_count(c3), 3);
    ck_assert(access("imported.txt", R_OK) == 0);
    ck_assert(clsynth_tune_lookup(c3, "dwconv_fwd", "64x128x128", &e));
    /* the default-kept marker (empty entry) is stored but answers "not tuned" */
    clsynth_tune_record d = rec("dwconv_bwd", "1x2x3", "", 0, 0, 0);
    ck_assert(clsynth_tunedb_put(c3, &d) == 0);
    ck_assert(!clsynth_tune_lookup(c3, "dwconv_bwd", "1x2x3", &e));
    ck_assert(clsynth_tunedb_get(c3, "dwconv_bwd", "1x2x3", NULL));
    clsynth_ctx_free(c3);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void write_db(const char *path, const char *vendor, const char *device, const char *driver, const char *entries)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "clsynth-tunedb 1\nvendor: %s\ndevice: %s\ndriver: %s\nplatform: x\n%s", vendor, device, driver, entries);
    fclose(f);
}

START_TEST(corrupt_file_warns_and_uses_defaults)
{
    static const char *const bad[] = {
        "\x01\x02garbage\xff\n",
        "",
        "clsynth-tunedb 99\n",
        NULL, /* entry with a bad local size */
        NULL, /* unterminated quote */
        NULL, /* entry line with no shape */
    };
    for (int i = 0; i < 6; i++) {
        clsynth_ctx *c = clsynth_test_ctx();
        char path[64];
        snprintf(path, sizeof path, "corrupt%d.txt", i);
        if (bad[i])
            write_file(path, bad[i]);
        else if (i == 3)
            write_db(path, c->dev.vendor, c->dev.name, c->dev.driver, "dwconv_fwd 1x2x3 local=8xbanana opts=\"\"\n");
        else if (i == 4)
            write_db(path, c->dev.vendor, c->dev.name, c->dev.driver, "dwconv_fwd 1x2x3 opts=\"-DVW=4\n");
        else
            write_db(path, c->dev.vendor, c->dev.name, c->dev.driver,
                     "dwconv_fwd 1x2x3 opts=\"-DVW=4\"\nconv2d\n");
        clsynth_tunedb_set_path(c, path);
        clsynth_tune_entry e;
        ck_assert(!clsynth_tune_lookup(c, "dwconv_fwd", "1x2x3", &e));
        ck_assert_msg(clsynth_tunedb_warnings(c) == 1, "file %d: %u warnings", i, clsynth_tunedb_warnings(c));
        ck_assert(!c->failed);
        /* the ops keep working with their defaults */
        float x[6] = { 1, 2, 3, 4, 5, 6 };
        clsynth_tensor *t = clsynth_tensor_from_host(c, "x", 1, 1, 2, 3, x);
        ck_assert_ptr_nonnull(t);
        clsynth_ctx_free(c);
    }
    /* a missing file is no warning: just not tuned */
    clsynth_ctx *c = clsynth_test_ctx();
    clsynth_tunedb_set_path(c, "does-not-exist.txt");
    clsynth_tune_entry e;
    ck_assert(!clsynth_tune_lookup(c, "dwconv_fwd", "1x2x3", &e));
    ck_assert_uint_eq(clsynth_tunedb_warnings(c), 0);
    clsynth_ctx_free(c);
}
END_TEST

START_TEST(stale_driver_or_other_device_is_ignored_with_a_warning)
{
    const char *entry = "dwconv_fwd 1x2x3 algo=0 local=0x0x0 opts=\"-DVW=4\"\n";
    write_db("stale.txt", ctx->dev.vendor, ctx->dev.name, "0.0-older-driver", entry);
    write_db("other.txt", "Some Vendor", "Some GPU", ctx->dev.driver, entry);
    write_db("good.txt", ctx->dev.vendor, ctx->dev.name, ctx->dev.driver, entry);
    clsynth_tune_entry e;
    const char *files[3] = { "stale.txt", "other.txt", "good.txt" };
    for (int i = 0; i < 3; i++) {
        clsynth_ctx *c = clsynth_test_ctx();
        clsynth_tunedb_set_path(c, files[i]);
        bool hit = clsynth_tune_lookup(c, "dwconv_fwd", "1x2x3", &e);
        ck_assert_msg(hit == (i == 2), "%s: lookup %d", files[i], hit);
        ck_assert_uint_eq(clsynth_tunedb_warnings(c), i == 2 ? 0 : 1);
        clsynth_ctx_free(c);
    }
    /* import of a file from another driver: refused, unless forced */
    clsynth_ctx *c = clsynth_test_ctx();
    unlink("imp.txt");
    clsynth_tunedb_set_path(c, "imp.txt");
    ck_assert_int_ne(clsynth_tunedb_import(c, "stale.txt", false), 0);
    ck_assert(strstr(c->err.msg, "driver") != NULL);
    clsynth_ctx_clear_error(c);
    ck_assert_int_ne(clsynth_tunedb_import(c, "other.txt", true), 0);
    clsynth_ctx_clear_error(c);
    ck_assert_int_eq(clsynth_tunedb_import(c, "stale.txt", true), 0);
    ck_assert(clsynth_tune_lookup(c, "dwconv_fwd", "1x2x3", &e));
    clsynth_ctx_free(c);
    /* an entry tuned for an older kernel source is dropped */
    char ent[256];
    snprintf(ent, sizeof ent, "dwconv_fwd 1x2x3 opts=\"-DVW=4\" src=%08x\ndwconv_fwd 4x5x6 opts=\"-DVW=4\" src=%08x\n",
             clsynth_tunable_src_hash(clsynth_tunable_find("dwconv_fwd")) ^ 1u,
             clsynth_tunable_src_hash(clsynth_tunable_find("dwconv_fwd")));
    write_db("oldsrc.txt", ctx->dev.vendor, ctx->dev.name, ctx->dev.driver, ent);
    c = clsynth_test_ctx();
    clsynth_tunedb_set_path(c, "oldsrc.txt");
    ck_assert(!clsynth_tune_lookup(c, "dwconv_fwd", "1x2x3", &e));
    ck_assert(clsynth_tune_lookup(c, "dwconv_fwd", "4x5x6", &e));
    ck_assert_uint_eq(clsynth_tunedb_warnings(c), 1);
    clsynth_ctx_free(c);
}
END_TEST

START_TEST(entries_beyond_emulated_limits_are_not_answered)
{
    write_db("limits.txt", ctx->dev.vendor, ctx->dev.name, ctx->dev.driver,
             "dwconv_fwd big local=32x16x1 opts=\"-DVW=1\"\n"
             "dwconv_fwd small local=8x8x1 opts=\"-DVW=1\"\n"
             "dwconv_fwd lmem lmem=40000 opts=\"-DVW=1\"\n");
    clsynth_tunedb_set_path(ctx, "limits.txt");
    clsynth_ctx_emulate_limits(ctx, 256, 32768);
    clsynth_tune_entry e;
    ck_assert(!clsynth_tune_lookup(ctx, "dwconv_fwd", "big", &e));  /* 512 items > 256 */
    ck_assert(clsynth_tune_lookup(ctx, "dwconv_fwd", "small", &e));
    ck_assert(!clsynth_tune_lookup(ctx, "dwconv_fwd", "lmem", &e)); /* 40000 > 32 KiB */
}
END_TEST

/* A synthetic tunable whose candidate ALGO=2 computes a wrong result: the tuner
 * must reject it (and never store it), however fast. */
static int fake_parse(const char *shape, int s[CLSYNTH_TP_MAX_SHAPE])
{
    return sscanf(shape, "n%d", &s[0]) == 1 && s[0] > 0 ? 1 : -1;
}

static int fake_setup(clsynth_ctx *c, clsynth_tbench *b)
{
    float *h = malloc((size_t)b->s[0] * sizeof *h);
    for (int i = 0; i < b->s[0]; i++)
        h[i] = (float)i;
    b->in[0] = clsynth_tensor_new_persistent(c, "fake.x", 1, 1, 1, b->s[0]);
    b->n_in = b->in[0] ? 1 : 0;
    int rc = b->in[0] ? clsynth_tensor_upload(c, b->in[0], h) : -1;
    free(h);
    return rc;
}

static clsynth_tensor *fake_forward(clsynth_ctx *c, clsynth_tbench *b)
{
    char shape[32];
    snprintf(shape, sizeof shape, "n%d", b->s[0]);
    clsynth_tune_entry e;
    memset(&e, 0, sizeof e);
    clsynth_tune_lookup(c, "fake_copy", shape, &e);
    clsynth_tensor *y = clsynth_tensor_new(c, "fake.y", 1, 1, 1, b->s[0]);
    if (!y)
        return NULL;
    if (e.algo == 2)
        return clsynth_tensor_fill(c, y, 0.0f) ? NULL : y; /* wrong (and fast) */
    return clsynth_tensor_copy(c, y, b->in[0]) ? NULL : y;
}

static const clsynth_tunable FAKE = {
    .key = "fake_copy", .n_params = 1,
    .params = { { "ALGO", CLSYNTH_TP_ALGO, 2, { 1, 2 }, 0 } },
    .parse = fake_parse, .setup = fake_setup, .forward = fake_forward,
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
    ck_assert_int_eq(r.best.algo, 1);
    clsynth_tune_entry e;
    ck_assert(clsynth_tune_lookup(ctx, "fake_copy", "n100000", &e));
    ck_assert_int_eq(e.algo, 1);
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
    const clsynth_tunable *nm = clsynth_tunable_find("norm_partial_stats"), *cv = clsynth_tunable_find("conv_fwd_direct");
    ck_assert(nm && cv);
    bool og = clsynth_test_under_oclgrind();
    clsynth_tune_job jobs[4] = { { nm, "G=32,M=4096", 1 }, { cv, "N1.C16.H32.W32.O16.K3x3.S1.P1", 1 },
                                 { nm, "G=16,M=16384", 1 }, { cv, "N2.C8.H24.W24.O8.K3x3.S1.P1", 1 } };
    if (og) { /* every run is simulated: tiny shapes */
        snprintf(jobs[0].shape, sizeof jobs[0].shape, "G=4,M=256");
        snprintf(jobs[1].shape, sizeof jobs[1].shape, "N1.C2.H6.W6.O2.K3x3.S1.P1");
        snprintf(jobs[2].shape, sizeof jobs[2].shape, "G=2,M=600");
        snprintf(jobs[3].shape, sizeof jobs[3].shape, "N1.C3.H5.W5.O2.K3x3.S1.P1");
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

START_TEST(lookups_cost_nothing_measurable)
{
    clsynth_tunedb_set_path(ctx, "lookup.txt");
    for (int i = 0; i < 500; i++) {
        char s[32];
        snprintf(s, sizeof s, "%dx32x32", i);
        clsynth_tune_record r = rec("dwconv_fwd", s, "-DVW=4", 0, 0, 0);
        ck_assert(clsynth_tunedb_put(ctx, &r) == 0);
    }
    clsynth_tune_entry e;
    const int N = 1000000;
    int hits = 0;
    double t0 = clsynth_now_s();
    for (int i = 0; i < N; i++)
        hits += clsynth_tune_lookup(ctx, "dwconv_fwd", (i & 1) ? "17x32x32" : "N1.C2.H3", &e);
    double per = (clsynth_now_s() - t0) / N;
    ck_assert_int_eq(hits, N / 2);
    /* a kernel launch costs >= ~5 us of host time; a lookup must be far below */
    ck_assert_msg(per < 1e-6, "lookup takes %.3g s", per);
}
END_TEST

START_TEST(recorder_lists_every_lookup_once)
{
    clsynth_tunedb_record(ctx, true);
    clsynth_tune_entry e;
    clsynth_tune_lookup(ctx, "a", "1", &e);
    clsynth_tune_lookup(ctx, "b", "2", &e);
    clsynth_tune_lookup(ctx, "a", "1", &e);
    clsynth_tunedb_record(ctx, false);
    clsynth_tune_lookup(ctx, "c", "3", &e);
    ck_assert_uint_eq(clsynth_tunedb_recorded_count(ctx), 2);
    const char *k, *s;
    unsigned long n;
    ck_assert(clsynth_tunedb_recorded(ctx, 0, &k, &s, &n));
    ck_assert_str_eq(k, "a");
    ck_assert_uint_eq(n, 2);
    /* conv2d pulls its direct kernels in first */
    clsynth_tunedb_recorded_clear(ctx);
    clsynth_tunedb_record(ctx, true);
    clsynth_tune_lookup(ctx, "conv2d", "N1.C3.H8.W8.O4.K3x3.S1.P1", &e);
    clsynth_tune_lookup(ctx, "unknown_kernel", "x", &e);
    clsynth_tunedb_record(ctx, false);
    clsynth_tune_job *jobs = NULL;
    size_t nj = 0, unknown = 0;
    ck_assert_int_eq(clsynth_tune_jobs_from_recorded(ctx, &jobs, &nj, &unknown), 0);
    ck_assert_uint_eq(nj, 4);
    ck_assert_uint_eq(unknown, 1);
    ck_assert_str_eq(jobs[0].t->key, "conv_fwd_direct");
    ck_assert_str_eq(jobs[3].t->key, "conv2d");
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
    clsynth_clblast_worker_cfg wc = { NULL, wargv, 1, (size_t)4 << 30, 120 };
    double ms[3];
    ck_assert_msg(clsynth_clblast_measure(ctx, sh, n, NULL, 2, &wc, ms) == 0, "%s", ctx->err.msg);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(ms[i] > 0, "shape %zu: %g", i, ms[i]);
    clsynth_clblast_params p;
    memset(&p, 0, sizeof p);
    snprintf(p.xgemm, sizeof p.xgemm, "KWG=32"); /* incomplete: CLBlast refuses it */
    ck_assert_int_ne(clsynth_clblast_measure(ctx, sh, n, &p, 1, &wc, ms), 0);
    ck_assert(strstr(ctx->err.msg, "CLBlast") != NULL);
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
    ADD(database_round_trip);
    ADD(corrupt_file_warns_and_uses_defaults);
    ADD(stale_driver_or_other_device_is_ignored_with_a_warning);
    ADD(entries_beyond_emulated_limits_are_not_answered);
    ADD(wrong_candidates_are_rejected_and_results_stored);
    ADD(tuner_honours_its_budget);
    ADD(lookups_cost_nothing_measurable);
    ADD(recorder_lists_every_lookup_once);
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
