/* clsynth tune: tunes every kernel and shape a model configuration runs, and
 * CLBlast's GEMM parameters for its GEMM shapes, within a time budget; the
 * results go to the device's tuning database (resumable: a second run skips
 * what is tuned already). Also exports/imports/lists that database. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcore/tunedb.h"
#include "clcore/tuner.h"
#include "tools/autotune.h"
#include "tools/bench_workload.h"
#include "tools/cli.h"
#include "tools/clblast_worker.h"
#include "tools/commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clsynth tune [--preset tiny|small|paper | model flags] [--budget SECONDS]\n"
            "                    [--device SPEC] [--emulate wg=256,local=32K] [--retune] [--no-clblast]\n"
            "                    [--clblast-share F] [--repeats N] [--db FILE] [--kernels KEY,KEY...]\n"
            "       clsynth tune --export FILE | --export-class FILE | --import FILE [--force] | --list | --path\n\n"
            "Runs one training step of the configuration to record every (kernel, shape) it looks up,\n"
            "then tunes them (and CLBlast's GEMM for its GEMM shapes) within the budget (default 600 s).\n"
            "Results go to the device's tuning database (see --path); a second run resumes.\n"
            "--export writes that database for devices of the same model (--import there);\n"
            "--export-class writes it as a class file, used by every device of this device's class\n"
            "that has no entry of its own (--import installs it).\n"
            "--kernels tunes only the jobs of those kernel descriptors (e.g. gemm,conv2d).\n");
}

static int list_db(clsynth_ctx *ctx)
{
    char path[800], cpath[800];
    clsynth_tunedb_path(ctx, path, sizeof path);
    clsynth_tunedb_class_path(ctx, cpath, sizeof cpath);
    size_t n = clsynth_tunedb_count(ctx);
    printf("tuning database %s: %zu entries\n", path, n);
    for (size_t i = 0; i < n; i++) {
        const clsynth_tune_record *r = clsynth_tunedb_at(ctx, i);
        printf("  %-24s %-36s algo=%d local=%zux%zux%zu opts=\"%s\" %.3f ms (default %.3f)\n", r->kernel, r->shape,
               r->algo, r->local[0], r->local[1], r->local[2], r->opts, r->ms, r->default_ms);
    }
    printf("class '%s': %zu entries (%s, else the file shipped for the class)\n", clsynth_device_class(&ctx->dev),
           clsynth_tunedb_class_count(ctx), cpath);
    size_t stale = clsynth_tunedb_shipped_stale(ctx);
    if (stale)
        printf("  %zu shipped class entr%s tuned for an older version of the kernels, skipped: "
               "re-tune the class file (tuning/README.md)\n", stale, stale == 1 ? "y was" : "ies were");
    return 0;
}

int clsynth_cmd_tune(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--clblast-worker") == 0)
        return clsynth_clblast_worker_main(argc - 2, argv + 2);
    const char *device = NULL, *emulate = NULL, *db = NULL, *export_path = NULL, *import_path = NULL;
    const char *export_class = NULL, *only = NULL;
    const char *v = NULL;
    double budget = 600;
    float share = 0.35f;
    int repeats = 5;
    bool retune = false, no_clblast = false, force = false, list = false, show_path = false;
    char **model_argv = calloc((size_t)argc + 1, sizeof *model_argv);
    int model_argc = 0;
    if (!model_argv)
        return 1;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = clsynth_cli_value(argc, argv, &i, "--device", &device)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--emulate", &emulate)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--db", &db)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--export", &export_path)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--export-class", &export_class)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--import", &import_path)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--kernels", &only)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--budget", &v)) != 0) {
            float f;
            if (m < 0)
                goto bad_value;
            if (clsynth_cli_float("clsynth tune", "--budget", v, &f) || f <= 0)
                goto out;
            budget = f;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--clblast-share", &v)) != 0) {
            if (m < 0)
                goto bad_value;
            if (clsynth_cli_float("clsynth tune", "--clblast-share", v, &share) || share < 0 || share > 0.9f)
                goto out;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--repeats", &v)) != 0) {
            if (m < 0 || clsynth_cli_int("clsynth tune", "--repeats", v, 1, 50, &repeats))
                goto out;
        } else if (strcmp(argv[i], "--retune") == 0) {
            retune = true;
        } else if (strcmp(argv[i], "--no-clblast") == 0) {
            no_clblast = true;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = true;
        } else if (strcmp(argv[i], "--list") == 0) {
            list = true;
        } else if (strcmp(argv[i], "--path") == 0) {
            show_path = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else {
            model_argv[model_argc++] = argv[i]; /* a model flag (and maybe its value) */
        }
        continue;
    bad_value:
        fprintf(stderr, "clsynth tune: %s needs a value\n", argv[i]);
        goto out;
    }
    size_t wg = 0;
    unsigned long long lm = 0;
    if (emulate && clsynth_parse_emulate(emulate, &wg, &lm)) {
        fprintf(stderr, "clsynth tune: --emulate '%s': expected wg=N,local=BYTES[K|M]\n", emulate);
        goto out;
    }
    clsynth_err err;
    clsynth_ctx *ctx = clsynth_ctx_create(device, &err);
    if (!ctx) {
        fprintf(stderr, "clsynth tune: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    rc = 1;
    clsynth_ctx_emulate_limits(ctx, wg, lm);
    if (db)
        clsynth_tunedb_set_path(ctx, db);
    if (show_path) {
        char path[800];
        clsynth_tunedb_path(ctx, path, sizeof path);
        printf("%s\n", path);
        rc = 0;
        goto done;
    }
    if (list) {
        rc = list_db(ctx);
        goto done;
    }
    if (export_path) {
        if (clsynth_tunedb_export(ctx, export_path))
            goto fail;
        printf("exported %zu entries to %s\n", clsynth_tunedb_count(ctx), export_path);
        rc = 0;
        goto done;
    }
    if (export_class) {
        if (clsynth_tunedb_export_class(ctx, export_class))
            goto fail;
        printf("exported %zu entries to %s as a class file for '%s'\n", clsynth_tunedb_count(ctx), export_class,
               clsynth_device_class(&ctx->dev));
        rc = 0;
        goto done;
    }
    if (import_path) {
        if (clsynth_tunedb_import(ctx, import_path, force))
            goto fail;
        char path[800], cpath[800];
        clsynth_tunedb_path(ctx, path, sizeof path);
        clsynth_tunedb_class_path(ctx, cpath, sizeof cpath);
        printf("imported %s: %s holds %zu entries, %s %zu class entries\n", import_path, path,
               clsynth_tunedb_count(ctx), cpath, clsynth_tunedb_class_count(ctx));
        rc = 0;
        goto done;
    }

    for (const char *p = only ? only : ""; *p;) {
        const size_t n = strcspn(p, ",");
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(n < 63 ? n : 63), p);
        if (!clsynth_kdef_find(key)) {
            fprintf(stderr, "clsynth tune: --kernels: '%s' is not a kernel descriptor\n", key);
            rc = 2;
            goto done;
        }
        p += n + (p[n] == ',');
    }
    double t0 = clsynth_now_s();
    printf("device: %s (%s, driver %s, %s), limits: max work-group %zu, local memory %llu bytes\n", ctx->dev.name,
           ctx->dev.platform_name, ctx->dev.driver, clsynth_device_class(&ctx->dev), ctx->max_wg,
           (unsigned long long)ctx->local_mem);
    clsynth_workload wl;
    if (clsynth_workload_init(ctx, model_argc, model_argv, &wl, &err)) {
        fprintf(stderr, "clsynth tune: %s\n", err.msg);
        goto done;
    }
    printf("model: preset '%s', %dx%d, batch %d; recording the shapes of one training step...\n",
           wl.opt.preset[0] ? wl.opt.preset : "(none)", wl.h, wl.w, wl.n);
    fflush(stdout);
    if (clsynth_workload_record(ctx, &wl)) {
        clsynth_workload_free(ctx, &wl);
        goto fail;
    }
    clsynth_workload_free(ctx, &wl);
    clsynth_autotune_opts ao;
    clsynth_autotune_opts_default(&ao);
    ao.budget_s = budget;
    ao.started_s = t0;
    ao.clblast_share = share;
    ao.repeats = repeats;
    ao.retune = retune;
    ao.no_clblast = no_clblast;
    ao.kernels = only;
    ao.progress_bar = isatty(STDERR_FILENO) != 0;
    if (clsynth_autotune_recorded(ctx, &ao))
        goto fail;
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "clsynth tune: %s\n", ctx->err.msg);
    rc = 1;
done:
    clsynth_ctx_free(ctx);
out:
    free(model_argv);
    return rc;
}
