/* The tuning database file: round trip, export/import, corrupt and stale
 * files, and the checks every entry passes when it loads (an entry naming an
 * unknown tunable or an illegal value is dropped with a warning; nothing in
 * the file makes an op or a GEMM fail), including CLBlast's parameters and
 * their fallback when a GEMM fails with them. Class files: tests/test_kconfig.c. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clcore/clblast_tune.h"
#include "clcore/clblast_util.h"
#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/ops.h"
#include "clcore/program.h"
#include "clcore/tunedb.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static clsynth_tune_record rec(const char *k, const char *s, const char *opts, size_t l0, size_t l1, int algo)
{
    clsynth_tune_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.kernel, sizeof r.kernel, "%s", k);
    snprintf(r.shape, sizeof r.shape, "%s", s);
    snprintf(r.opts, sizeof r.opts, "%s", opts);
    r.local[0] = l0;
    r.local[1] = l0 ? l1 : 0;
    r.local[2] = l0 ? 1 : 0;
    r.algo = algo;
    r.ms = 1.5;
    r.default_ms = 2.25;
    const clsynth_kdef *d = clsynth_kdef_find(k);
    r.src = d ? clsynth_kdef_src_hash(d) : 0; /* as the tuner stores it */
    return r;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* What the database answers for dwconv_fwd at key, with its values. */
static clsynth_tunedb_answer dw_lookup(clsynth_ctx *c, const char *key, int *v)
{
    return clsynth_tunedb_lookup(c, &clsynth_kdef_dwconv_fwd, key, v, NULL);
}

START_TEST(database_round_trip)
{
    const char *path = "roundtrip.txt";
    unlink(path);
    ck_assert_int_eq(clsynth_tunedb_set_path(ctx, path), 0);
    ck_assert_uint_eq(clsynth_tunedb_count(ctx), 0);
    clsynth_tune_record a = rec("dwconv_fwd", "64x128x128", "-DVW=4 -DTILE_W=32 -DTILE_H=8", 0, 0, 0);
    clsynth_tune_record b = rec("conv2d", "N1.C256.H32.W32.O256.K3x3.S1.P1", "", 0, 0, 2);
    clsynth_tune_record c = rec("future_kernel", "G=32,M=4096", "-DX=1", 16, 1, 0); /* kept: a newer build's */
    a.lmem = 1360;
    ck_assert(clsynth_tunedb_put(ctx, &a) == 0 && clsynth_tunedb_put(ctx, &b) == 0 && clsynth_tunedb_put(ctx, &c) == 0);
    ck_assert_int_eq(clsynth_tunedb_save(ctx, NULL), 0);
    /* a fresh context reads the same entries back, as values */
    clsynth_ctx *c2 = clsynth_test_ctx();
    clsynth_tunedb_set_path(c2, path);
    ck_assert_uint_eq(clsynth_tunedb_count(c2), 3);
    ck_assert_uint_eq(clsynth_tunedb_warnings(c2), 0);
    int v[CLSYNTH_K_MAX_PARAMS];
    ck_assert_int_eq(dw_lookup(c2, "64x128x128", v), CLSYNTH_TUNEDB_DEVICE);
    ck_assert_int_eq(v[DW_VW], 4);
    ck_assert_int_eq(v[DW_TILE_W], 32);
    ck_assert_int_eq(v[DW_TILE_H], 8);
    ck_assert_int_eq(clsynth_tunedb_lookup(c2, &clsynth_kdef_conv2d, "N1.C256.H32.W32.O256.K3x3.S1.P1", v, NULL),
                     CLSYNTH_TUNEDB_DEVICE);
    ck_assert_int_eq(v[CONV2D_ALGO], 2);
    ck_assert_int_eq(clsynth_tunedb_lookup(c2, &clsynth_kdef_conv2d, "N2.C256.H32.W32.O256.K3x3.S1.P1", v, NULL),
                     CLSYNTH_TUNEDB_NONE);
    clsynth_tune_record back;
    ck_assert(clsynth_tunedb_get(c2, "dwconv_fwd", "64x128x128", &back));
    ck_assert_uint_eq(back.lmem, 1360);
    ck_assert_str_eq(back.opts, a.opts);
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
    ck_assert_int_eq(dw_lookup(c3, "64x128x128", v), CLSYNTH_TUNEDB_DEVICE);
    /* the default-kept marker (empty entry) is stored and answers "defaults" */
    clsynth_tune_record d = rec("dwconv_bwd", "1x2x3", "", 0, 0, 0);
    ck_assert(clsynth_tunedb_put(c3, &d) == 0);
    ck_assert_int_eq(clsynth_tunedb_lookup(c3, &clsynth_kdef_dwconv_bwd, "1x2x3", v, NULL), CLSYNTH_TUNEDB_DEFAULT);
    ck_assert(clsynth_tunedb_get(c3, "dwconv_bwd", "1x2x3", NULL));
    clsynth_ctx_free(c3);
}
END_TEST

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
            clsynth_test_write_tunedb(c, path, NULL, NULL, NULL, "dwconv_fwd 8x8x8 local=8xbanana opts=\"\"\n");
        else if (i == 4)
            clsynth_test_write_tunedb(c, path, NULL, NULL, NULL, "dwconv_fwd 8x8x8 opts=\"-DVW=4\n");
        else
            clsynth_test_write_tunedb(c, path, NULL, NULL, NULL,
                "dwconv_fwd 8x8x8 opts=\"-DVW=4 -DTILE_W=8 -DTILE_H=8\"\nconv2d\n");
        clsynth_tunedb_set_path(c, path);
        int v[CLSYNTH_K_MAX_PARAMS];
        ck_assert_int_eq(dw_lookup(c, "8x8x8", v), CLSYNTH_TUNEDB_NONE);
        ck_assert_msg(clsynth_tunedb_warnings(c) == 1, "file %d: %u warnings", i, clsynth_tunedb_warnings(c));
        ck_assert(!c->failed);
        clsynth_ctx_free(c);
    }
    /* a missing file is no warning: just not tuned */
    clsynth_ctx *c = clsynth_test_ctx();
    clsynth_tunedb_set_path(c, "does-not-exist.txt");
    int v[CLSYNTH_K_MAX_PARAMS];
    ck_assert_int_eq(dw_lookup(c, "8x8x8", v), CLSYNTH_TUNEDB_NONE);
    ck_assert_uint_eq(clsynth_tunedb_warnings(c), 0);
    clsynth_ctx_free(c);
}
END_TEST

/* A FIFO (or a directory) named as the database is not waited on: a warning
 * naming what it is, and the defaults. */
START_TEST(fifo_or_directory_as_the_database_warns_without_blocking)
{
    unlink("db.fifo");
    ck_assert_int_eq(mkfifo("db.fifo", 0600), 0);
    ck_assert(mkdir("db.dir", 0700) == 0 || errno == EEXIST);
    static const char *const paths[2] = { "db.fifo", "db.dir" };
    for (int i = 0; i < 2; i++) {
        clsynth_ctx *c = clsynth_test_ctx();
        c->quiet = true;
        clsynth_tunedb_set_path(c, paths[i]);
        int v[CLSYNTH_K_MAX_PARAMS];
        ck_assert_int_eq(dw_lookup(c, "8x8x8", v), CLSYNTH_TUNEDB_NONE);
        ck_assert_msg(clsynth_tunedb_warnings(c) == 1, "%s: %u warnings", paths[i], clsynth_tunedb_warnings(c));
        ck_assert(!c->failed);
        clsynth_ctx_free(c);
    }
    unlink("db.fifo");
}
END_TEST

START_TEST(stale_driver_or_other_device_is_ignored_with_a_warning)
{
    const char *entry = "dwconv_fwd 8x8x8 algo=0 local=0x0x0 opts=\"-DVW=4 -DTILE_W=8 -DTILE_H=8\"\n";
    clsynth_test_write_tunedb(ctx, "stale.txt", ctx->dev.vendor, ctx->dev.name, "0.0-older-driver", entry);
    clsynth_test_write_tunedb(ctx, "other.txt", "Some Vendor", "Some GPU", ctx->dev.driver, entry);
    clsynth_test_write_tunedb(ctx, "good.txt", ctx->dev.vendor, ctx->dev.name, ctx->dev.driver, entry);
    int v[CLSYNTH_K_MAX_PARAMS];
    const char *files[3] = { "stale.txt", "other.txt", "good.txt" };
    for (int i = 0; i < 3; i++) {
        clsynth_ctx *c = clsynth_test_ctx();
        clsynth_tunedb_set_path(c, files[i]);
        clsynth_tunedb_answer a = dw_lookup(c, "8x8x8", v);
        ck_assert_msg(a == (i == 2 ? CLSYNTH_TUNEDB_DEVICE : CLSYNTH_TUNEDB_NONE), "%s: answer %d", files[i], a);
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
    ck_assert_int_eq(dw_lookup(c, "8x8x8", v), CLSYNTH_TUNEDB_DEVICE);
    clsynth_ctx_free(c);
    /* an entry tuned for an older kernel source is dropped */
    char ent[256];
    unsigned src = clsynth_kdef_src_hash(&clsynth_kdef_dwconv_fwd);
    snprintf(ent, sizeof ent,
             "dwconv_fwd 8x8x8 opts=\"-DVW=4 -DTILE_W=8 -DTILE_H=8\" src=%08x\n"
             "dwconv_fwd 16x8x8 opts=\"-DVW=4 -DTILE_W=8 -DTILE_H=8\" src=%08x\n", src ^ 1u, src);
    clsynth_test_write_tunedb(ctx, "oldsrc.txt", NULL, NULL, NULL, ent);
    c = clsynth_test_ctx();
    clsynth_tunedb_set_path(c, "oldsrc.txt");
    ck_assert_int_eq(dw_lookup(c, "8x8x8", v), CLSYNTH_TUNEDB_NONE);
    ck_assert_int_eq(dw_lookup(c, "16x8x8", v), CLSYNTH_TUNEDB_DEVICE);
    ck_assert_uint_eq(clsynth_tunedb_warnings(c), 1);
    clsynth_ctx_free(c);
    /* so is an algorithm choice stored before the algorithms' revision (src
     * 0: the conv2d entries of the per-sample GEMM path) */
    snprintf(ent, sizeof ent,
             "conv2d N1.C8.H8.W8.O8.K3x3.S1.P1 algo=1 src=00000000\n"
             "conv2d N2.C8.H8.W8.O8.K3x3.S1.P1 algo=1 src=%08x\n", clsynth_kdef_src_hash(&clsynth_kdef_conv2d));
    clsynth_test_write_tunedb(ctx, "oldalgo.txt", NULL, NULL, NULL, ent);
    c = clsynth_test_ctx();
    clsynth_tunedb_set_path(c, "oldalgo.txt");
    ck_assert_int_eq(clsynth_tunedb_lookup(c, &clsynth_kdef_conv2d, "N1.C8.H8.W8.O8.K3x3.S1.P1", v, NULL),
                     CLSYNTH_TUNEDB_NONE);
    ck_assert_int_eq(clsynth_tunedb_lookup(c, &clsynth_kdef_conv2d, "N2.C8.H8.W8.O8.K3x3.S1.P1", v, NULL),
                     CLSYNTH_TUNEDB_DEVICE);
    ck_assert_uint_eq(clsynth_tunedb_warnings(c), 1);
    clsynth_ctx_free(c);
}
END_TEST

/* conv2d direct at (1, 3, 8, 8) with a (4, 3, 3, 3) weight on context c. */
static clsynth_tensor *small_direct_conv(clsynth_ctx *c)
{
    float x[3 * 64], w[4 * 27];
    clsynth_test_fill_uniform(x, 192, -1, 1, 1);
    clsynth_test_fill_uniform(w, 108, -1, 1, 2);
    clsynth_tensor *xt = clsynth_tensor_from_host(c, "x", 1, 3, 8, 8, x);
    clsynth_tensor *wt = clsynth_tensor_from_host(c, "w", 4, 3, 3, 3, w);
    return clsynth_conv2d_algo(c, xt, wt, NULL, 1, 1, CLSYNTH_CONV_DIRECT);
}

/* Issue 10, defect 6: opts went to the kernel build unchecked, so this entry
 * made conv2d fail ("clBuildProgram failed ... -DNOPE("). */
START_TEST(entry_with_malformed_options_is_dropped_at_load_and_the_op_runs)
{
    clsynth_test_write_tunedb(ctx, "nope.txt", NULL, NULL, NULL,
                 "conv_fwd_direct N1.C3.H8.W8.O4.K3x3.S1.P1 algo=0 local=0x0x0 lmem=0 src=00000000 opts=\"-DNOPE(\"\n");
    clsynth_tunedb_set_path(ctx, "nope.txt");
    clsynth_tensor *y = small_direct_conv(ctx);
    ck_assert_msg(y != NULL, "conv2d failed: %.300s", ctx->err.msg);
    ck_assert_uint_eq(clsynth_tunedb_warnings(ctx), 1);
    ck_assert_uint_eq(clsynth_tunedb_count(ctx), 0); /* and not saved again */
}
END_TEST

/* Names that are not tunables of the kernel, values outside the declared
 * ones, a local size where the kernel tunes none, a constraint broken, a key
 * of another format: one warning each, the rest of the file still loads. */
START_TEST(entries_with_undeclared_tunables_or_illegal_values_are_dropped_at_load)
{
    clsynth_test_write_tunedb(ctx, "illegal.txt", NULL, NULL, NULL,
                 "conv_fwd_direct N1.C3.H8.W8.O4.K3x3.S1.P1 opts=\"-DCOUT_PER_ITEM=4 -DUNROLL=2\"\n"
                 "conv_fwd_direct N1.C3.H8.W9.O4.K3x3.S1.P1 opts=\"-DCOUT_PER_ITEM=5\"\n"
                 "dwconv_fwd 8x8x8 local=8x8x1 opts=\"-DVW=4 -DTILE_W=8 -DTILE_H=8\"\n"
                 "dwconv_fwd 8x8x9 opts=\"-DVW=8 -DTILE_W=8 -DTILE_H=64\"\n"
                 "dwconv_fwd 8x8x10 opts=\"-DVW=16 -DTILE_W=8 -DTILE_H=8\"\n"
                 "reduce_groups k3r10 local=100x1x1 opts=\"\"\n"
                 "norm_partial_stats 64x8x8 opts=\"-DNORM_VPT=8\"\n"
                 "conv2d N1.C3.H8.W8.O4.K3x3.S1.P1 algo=7 opts=\"\"\n"
                 "dwconv_fwd 8x8x11 opts=\"-DVW=4 -DTILE_W=8 -DTILE_H=8\"\n");
    clsynth_tunedb_set_path(ctx, "illegal.txt");
    ck_assert_uint_eq(clsynth_tunedb_count(ctx), 1);
    ck_assert_uint_eq(clsynth_tunedb_warnings(ctx), 8);
    int v[CLSYNTH_K_MAX_PARAMS];
    ck_assert_int_eq(dw_lookup(ctx, "8x8x11", v), CLSYNTH_TUNEDB_DEVICE);
    ck_assert_int_eq(dw_lookup(ctx, "8x8x8", v), CLSYNTH_TUNEDB_NONE);
}
END_TEST

/* A descriptor for dwconv.cl whose declared values allow a configuration the
 * kernel refuses to build (TILE_W not a multiple of VW): a database entry
 * with it passes the load-time checks but not the build. */
static const clsynth_kdef BAD_DW = {
    .key = "test_dw_badtile", .file = "dwconv.cl", .kernels = { "dwconv_fwd" }, .dims = 3, .n_params = 3,
    .params = {
        { .name = "VW", .kind = CLSYNTH_K_DEFINE, .n = 2, .values = { 1, 3 }, .def = 1 },
        { .name = "TILE_W", .kind = CLSYNTH_K_DEFINE, .n = 1, .values = { 8 }, .def = 8 },
        { .name = "TILE_H", .kind = CLSYNTH_K_DEFINE, .n = 1, .values = { 1 }, .def = 1 },
    },
};

static int bad_format(const void *shape, char *key, size_t len)
{
    return clsynth_kdef_dwconv_fwd.format(shape, key, len);
}

static bool bad_parse(const char *key, void *shape) { return clsynth_kdef_dwconv_fwd.parse(key, shape); }

START_TEST(tuned_entry_whose_kernel_does_not_build_falls_back_to_the_defaults)
{
    clsynth_kdef def = BAD_DW;
    def.shape_size = sizeof(clsynth_dwconv_shape);
    def.format = bad_format;
    def.parse = bad_parse;
    def.local_size = clsynth_kdef_dwconv_fwd.local_size;
    def.local_mem = clsynth_kdef_dwconv_fwd.local_mem;
    clsynth_test_write_tunedb(ctx, "badbuild.txt", NULL, NULL, NULL,
        "test_dw_badtile 2x8x8 opts=\"-DVW=3 -DTILE_W=8 -DTILE_H=1\"\n");
    clsynth_tunedb_set_path(ctx, "badbuild.txt");
    const clsynth_dwconv_shape s = { 2, 8, 8 };
    clsynth_kcfg cfg;
    ck_assert_msg(clsynth_kconfig(ctx, &def, &s, NULL, &cfg) == 0, "%s", ctx->err.msg);
    ck_assert_int_eq(cfg.source, CLSYNTH_KSRC_DEFAULT);
    ck_assert_int_eq(cfg.v[0], 1);
    ck_assert_ptr_nonnull(cfg.k[0]);
    ck_assert_uint_eq(clsynth_tunedb_warnings(ctx), 1);
    /* once: the entry is not tried again on this context */
    ck_assert_int_eq(clsynth_kconfig(ctx, &def, &s, NULL, &cfg), 0);
    ck_assert_uint_eq(clsynth_tunedb_warnings(ctx), 1);
}
END_TEST

static int small_sgemm(clsynth_ctx *c)
{
    clsynth_tensor *a = clsynth_tensor_new_persistent(c, "a", 1, 1, 64, 64);
    clsynth_tensor *b = clsynth_tensor_new_persistent(c, "b", 1, 1, 64, 64);
    clsynth_tensor *d = clsynth_tensor_new_persistent(c, "c", 1, 1, 64, 64);
    ck_assert(a && b && d);
    ck_assert_int_eq(clsynth_tensor_fill(c, a, 1), 0);
    ck_assert_int_eq(clsynth_tensor_fill(c, b, 1), 0);
    int rc = clsynth_sgemm(c, "test", false, false, 64, 64, 64, 1, a->mem, 0, 64, b->mem, 0, 64, 0, d->mem, 0, 64);
    if (rc == 0) {
        float h[64 * 64];
        ck_assert_int_eq(clsynth_tensor_download(c, d, h), 0);
        ck_assert(fabs(h[0] - 64.0f) < 1e-4 && fabs(h[64 * 64 - 1] - 64.0f) < 1e-4);
    }
    clsynth_tensor_free(c, a);
    clsynth_tensor_free(c, b);
    clsynth_tensor_free(c, d);
    return rc;
}

/* Issue 10, defect 6: CLBlast parameters went to CLBlastOverrideParameters
 * unchecked, so this entry made every GEMM fail (CLBlastOpenCLBuildProgramFailure). */
START_TEST(illegal_clblast_entry_is_dropped_at_load_and_sgemm_works)
{
    if (clsynth_test_under_oclgrind())
        return;
    clsynth_test_write_tunedb(ctx, "kwg.txt", NULL, NULL, NULL,
                 "clblast.Xgemm sgemm opts=\"-DGEMMK=0 -DKREG=1 -DKWG=7 -DKWI=2 -DMDIMA=8 -DMDIMC=0 -DMWG=64 "
                 "-DNDIMB=16 -DNDIMC=16 -DNWG=64 -DSA=1 -DSB=1 -DSTRM=1 -DSTRN=0 -DVWM=4 -DVWN=2\"\n"
                 "clblast.XgemmDirect sgemm opts=\"-DKWID=2 -DBOGUS=1\"\n"
                 "clblast.GemmRoutine sgemm opts=\"-DXGEMM_MIN_INDIRECT_SIZE=0\"\n");
    clsynth_tunedb_set_path(ctx, "kwg.txt");
    clsynth_tunedb_set_class_path(ctx, ""); /* a shipped class file's CLBlast entries would fill in */
    clsynth_tunedb_load(ctx);
    ck_assert_uint_eq(clsynth_tunedb_warnings(ctx), 2);
    ck_assert_uint_eq(ctx->clblast_overridden, 1u << 2); /* only the routine's threshold */
    ck_assert_msg(small_sgemm(ctx) == 0, "sgemm failed: %.300s", ctx->err.msg);
}
END_TEST

/* A database at path holding CLBlast's default Xgemm parameters as a tuned
 * entry (p.v[0] receives them), then `extra` lines; no class file. */
static void write_default_xgemm_db(const char *path, const char *extra, clsynth_clblast_params *p)
{
    memset(p, 0, sizeof *p);
    clsynth_kdef_defaults(&clsynth_kdef_clblast_xgemm, &ctx->dev, p->v[0]);
    clsynth_tune_record r;
    clsynth_tune_record_of(&clsynth_kdef_clblast_xgemm, p->v[0], "sgemm", &r);
    char entries[600];
    snprintf(entries, sizeof entries, "clblast.Xgemm sgemm opts=\"%s\"\n%s", r.opts, extra);
    clsynth_test_write_tunedb(ctx, path, NULL, NULL, NULL, entries);
    clsynth_tunedb_set_path(ctx, path);
    clsynth_tunedb_set_class_path(ctx, ""); /* a shipped class file's CLBlast entries would fill in */
}

/* Tuned CLBlast parameters that CLBlast cannot build at run time: the GEMM
 * does not fail; the parameters are replaced by CLBlast's generic defaults
 * (with a warning naming the entry) and the call runs again. */
START_TEST(gemm_failing_with_tuned_clblast_parameters_falls_back_to_the_defaults)
{
    if (clsynth_test_under_oclgrind())
        return;
    clsynth_clblast_params p;
    write_default_xgemm_db("cbfail.txt", "clblast.GemmRoutine sgemm opts=\"-DXGEMM_MIN_INDIRECT_SIZE=0\"\n", &p);
    clsynth_tunedb_load(ctx);
    ck_assert_uint_eq(ctx->clblast_overridden, (1u << 0) | (1u << 2));
    /* what a driver that cannot build the tuned set amounts to: CLBlast holds
     * a set it cannot build (MDIMC 0) */
    p.v[0][X_MDIMC] = 0;
    char why[200];
    ck_assert_int_eq(clsynth_clblast_override(ctx->dev.id, 0, p.v[0], why, sizeof why), 0);
    unsigned before = clsynth_tunedb_warnings(ctx);
    ck_assert_msg(small_sgemm(ctx) == 0, "sgemm failed: %.300s", ctx->err.msg);
    ck_assert_uint_eq(ctx->clblast_overridden, 0);
    ck_assert_uint_gt(clsynth_tunedb_warnings(ctx), before);
    ck_assert_msg(small_sgemm(ctx) == 0, "second sgemm failed: %.300s", ctx->err.msg);
}
END_TEST


/* bench's "tuned" SGEMM column reads the stored parameters after its default
 * runs, with lookups off: it was always "-", the lookup answering nothing
 * then. Reading them applies nothing to CLBlast. */
START_TEST(stored_clblast_parameters_are_read_with_lookups_off)
{
    if (clsynth_test_under_oclgrind())
        return;
    clsynth_clblast_params p;
    write_default_xgemm_db("stored.txt", "", &p);
    clsynth_tunedb_set_enabled(ctx, false);
    ck_assert_int_eq(clsynth_tunedb_load(ctx), 0);
    int v[CLSYNTH_K_MAX_PARAMS];
    ck_assert_int_eq(clsynth_tunedb_lookup(ctx, &clsynth_kdef_clblast_xgemm, "sgemm", v, NULL), CLSYNTH_TUNEDB_NONE);
    clsynth_clblast_params got;
    ck_assert(clsynth_clblast_stored(ctx, &got));
    ck_assert(got.has[0] && !got.has[1] && !got.has[2]);
    for (int i = 0; i < clsynth_kdef_clblast_xgemm.n_params; i++)
        ck_assert_int_eq(got.v[0][i], p.v[0][i]);
    ck_assert_uint_eq(ctx->clblast_overridden, 0);
}
END_TEST

/* CLBlast's overrides are process-wide tables that CLBlastOverrideParameters
 * replaces: two ranks' contexts (threads of one process) loading their
 * databases at once crashed in CLBlast's database copy (test_syncbn, 1 run in
 * ~10). Overrides and GEMMs from several threads at once, with two legal
 * parameter sets taking turns, all succeed and compute the product. */
typedef struct override_worker {
    const int *sets[2];
    int rc;
    char why[200];
    clsynth_ctx *gemm_ctx; /* NULL: overrides only */
} override_worker;

static void *override_thread(void *arg)
{
    override_worker *w = arg;
    for (int i = 0; i < (w->gemm_ctx ? 100 : 1000) && w->rc == 0; i++) {
        if (w->gemm_ctx)
            w->rc = small_sgemm(w->gemm_ctx);
        else
            w->rc = clsynth_clblast_override(ctx->dev.id, 0, w->sets[i & 1], w->why, sizeof w->why);
    }
    return NULL;
}

START_TEST(overrides_and_gemms_from_several_threads_at_once_are_safe)
{
    if (clsynth_test_under_oclgrind())
        return;
    int a[CLSYNTH_K_MAX_PARAMS], b[CLSYNTH_K_MAX_PARAMS];
    clsynth_kdef_defaults(&clsynth_kdef_clblast_xgemm, &ctx->dev, a);
    memcpy(b, a, sizeof b);
    b[X_SA] = !a[X_SA]; /* caching A in local memory or not: legal either way */
    b[X_SB] = !a[X_SB];
    enum { T = 4 };
    override_worker w[T];
    pthread_t th[T];
    memset(w, 0, sizeof w);
    for (int t = 0; t < T; t++) {
        w[t].sets[0] = t & 1 ? b : a;
        w[t].sets[1] = t & 1 ? a : b;
        w[t].gemm_ctx = t == T - 1 ? clsynth_test_ctx() : NULL;
    }
    for (int t = 0; t < T; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, override_thread, &w[t]), 0);
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < T; t++)
        ck_assert_msg(w[t].rc == 0, "thread %d: %s", t, w[t].gemm_ctx ? w[t].gemm_ctx->err.msg : w[t].why);
    clsynth_ctx_free(w[T - 1].gemm_ctx);
    char why[200];
    ck_assert_int_eq(clsynth_clblast_override(ctx->dev.id, 0, a, why, sizeof why), 0);
    ck_assert_msg(small_sgemm(ctx) == 0, "sgemm failed: %.300s", ctx->err.msg);
}
END_TEST

/* A kernel file of two descriptors' kernels with a shared helper, as
 * kernels/norm.cl is: only own kernels, helpers and code count. */
static const char TWO_KERNELS[] =
    "/* header */\n#pragma OPENCL FP_CONTRACT OFF\n#error \"a kernel descriptor (x) { }\"\n"
    "static float helper(float v) { return v * 2.0f; } // twice\n"
    "__kernel __attribute__((reqd_work_group_size(8, 1, 1)))\nvoid first(__global float *p)\n"
    "{\n    if (p[0] > 0) { p[0] = helper(p[0]); }\n}\n\n"
    "__kernel void second(__global float *p) { p[1] = '}'; }\n";

static char *own_of(const char *kernel, const char *src)
{
    const clsynth_kdef d = { .key = "test", .file = "test.cl", .kernels = { kernel } };
    char *own = clsynth_kdef_own_source(&d, src);
    ck_assert_ptr_nonnull(own);
    return own;
}

START_TEST(source_hash_covers_own_kernels_helpers_and_code_only)
{
    char *first = own_of("first", TWO_KERNELS), *second = own_of("second", TWO_KERNELS);
    ck_assert_msg(strstr(first, "void first(") && !strstr(first, "second"), "first: %s", first);
    ck_assert_msg(strstr(second, "void second(") && !strstr(second, "void first"), "second: %s", second);
    for (int i = 0; i < 2; i++) { /* shared code and the literals stay, comments go */
        const char *o = i ? second : first;
        ck_assert_msg(strstr(o, "static float helper(float v) { return v * 2.0f; }") &&
                          strstr(o, "#error \"a kernel descriptor (x) { }\"") && !strstr(o, "twice") &&
                          !strstr(o, "header"),
                      "%s", o);
    }
    /* another kernel's edit, a new kernel and comments or layout leave "first" alone */
    char edited[1024];
    snprintf(edited, sizeof edited, "%s\n/* new */\n__kernel void third(__global float *q) { q[2] = 3; }\n",
             TWO_KERNELS);
    char *p = strstr(edited, "p[1] = '}'");
    ck_assert_ptr_nonnull(p);
    p[5] = '-';
    char *moved = strstr(edited, "{\n    if");
    ck_assert_ptr_nonnull(moved);
    moved[1] = ' ';
    char *a = own_of("first", edited), *b = own_of("second", edited);
    ck_assert_str_eq(a, first);
    ck_assert_str_ne(b, second);
    free(a);
    free(b);
    /* an edit of the helper or of the kernel itself counts */
    snprintf(edited, sizeof edited, "%s", TWO_KERNELS);
    p = strstr(edited, "2.0f");
    p[0] = '3';
    a = own_of("first", edited);
    b = own_of("second", edited);
    ck_assert_str_ne(a, first);
    ck_assert_str_ne(b, second);
    free(a);
    free(b);
    free(first);
    free(second);
    /* every descriptor of ours finds its kernels in its file */
    int n;
    const clsynth_kdef *const *defs = clsynth_kdefs(&n);
    for (int i = 0; i < n; i++) {
        if (!defs[i]->file)
            continue;
        char *own = clsynth_kdef_own_source(defs[i], clsynth_kernel_source(defs[i]->file));
        ck_assert_ptr_nonnull(own);
        for (int k = 0; k < CLSYNTH_K_MAX_KERNELS && defs[i]->kernels[k]; k++) {
            char sig[160];
            snprintf(sig, sizeof sig, " %s(", defs[i]->kernels[k]);
            ck_assert_msg(strstr(own, sig), "%s: kernel %s missing from its hashed source", defs[i]->key,
                          defs[i]->kernels[k]);
        }
        ck_assert_uint_ne(clsynth_kdef_src_hash(defs[i]), clsynth_kdef_src_legacy(defs[i]));
        free(own);
    }
}
END_TEST

START_TEST(entry_under_the_former_whole_file_hash_is_kept_and_saved_with_the_new_one)
{
    const unsigned legacy = clsynth_kdef_src_legacy(&clsynth_kdef_dwconv_fwd);
    const unsigned now = clsynth_kdef_src_hash(&clsynth_kdef_dwconv_fwd);
    char ent[256];
    snprintf(ent, sizeof ent, "dwconv_fwd 8x8x8 opts=\"-DVW=4 -DTILE_W=8 -DTILE_H=8\" src=%08x\n", legacy);
    clsynth_test_write_tunedb(ctx, "legacy.txt", NULL, NULL, NULL, ent);
    clsynth_ctx *c = clsynth_test_ctx();
    clsynth_tunedb_set_path(c, "legacy.txt");
    int v[CLSYNTH_K_MAX_PARAMS];
    ck_assert_int_eq(dw_lookup(c, "8x8x8", v), CLSYNTH_TUNEDB_DEVICE);
    ck_assert_uint_eq(clsynth_tunedb_warnings(c), 0);
    ck_assert_int_eq(clsynth_tunedb_save(c, "legacy.txt"), 0);
    clsynth_ctx_free(c);
    FILE *f = fopen("legacy.txt", "r");
    ck_assert_ptr_nonnull(f);
    char buf[8192];
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    buf[got] = 0;
    fclose(f);
    char want[32];
    snprintf(want, sizeof want, "src=%08x", now);
    ck_assert_msg(strstr(buf, want) != NULL, "saved file lacks %s:\n%s", want, buf);
}
END_TEST

int main(void)
{
    return clsynth_test_main("tunedb", &ctx, 600,
                             CLSYNTH_TEST_LIST(database_round_trip,
                                               corrupt_file_warns_and_uses_defaults,
                                               fifo_or_directory_as_the_database_warns_without_blocking,
                                               stale_driver_or_other_device_is_ignored_with_a_warning,
                                               entry_with_malformed_options_is_dropped_at_load_and_the_op_runs,
                                               entries_with_undeclared_tunables_or_illegal_values_are_dropped_at_load,
                                               tuned_entry_whose_kernel_does_not_build_falls_back_to_the_defaults,
                                               illegal_clblast_entry_is_dropped_at_load_and_sgemm_works,
                                               gemm_failing_with_tuned_clblast_parameters_falls_back_to_the_defaults,
                                               stored_clblast_parameters_are_read_with_lookups_off,
                                               overrides_and_gemms_from_several_threads_at_once_are_safe,
                                               source_hash_covers_own_kernels_helpers_and_code_only,
                                               entry_under_the_former_whole_file_hash_is_kept_and_saved_with_the_new_one));
}
