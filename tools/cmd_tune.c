/* clsynth tune: tunes every kernel and shape a model configuration runs, and
 * CLBlast's GEMM parameters for its GEMM shapes, within a time budget; the
 * results go to the device's tuning database (resumable: a second run skips
 * what is tuned already). Also exports/imports/lists that database. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcore/clblast_tune.h"
#include "clcore/kdefs.h"
#include "clcore/tunedb.h"
#include "clcore/tuner.h"
#include "tools/bench_workload.h"
#include "tools/cli.h"
#include "tools/clblast_worker.h"
#include "tools/commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clsynth tune [--preset tiny|small|paper | model flags] [--budget SECONDS]\n"
            "                    [--device SPEC] [--emulate wg=256,local=32K] [--retune] [--no-clblast]\n"
            "                    [--clblast-share F] [--repeats N] [--db FILE]\n"
            "       clsynth tune --export FILE | --export-class FILE | --import FILE [--force] | --list | --path\n\n"
            "Runs one training step of the configuration to record every (kernel, shape) it looks up,\n"
            "then tunes them (and CLBlast's GEMM for its GEMM shapes) within the budget (default 600 s).\n"
            "Results go to the device's tuning database (see --path); a second run resumes.\n"
            "--export writes that database for devices of the same model (--import there);\n"
            "--export-class writes it as a class file, used by every device of this device's class\n"
            "that has no entry of its own (--import installs it).\n");
}

typedef struct bar {
    bool tty;
    double budget;
} bar;

static void progress(void *user, const clsynth_tune_progress *p)
{
    bar *b = user;
    const clsynth_tune_result *r = p->r;
    int width = 30, fill = p->jobs ? (int)((double)(p->job + (p->job_done ? 1 : 0)) / (double)p->jobs * width) : 0;
    char line[400];
    char barbuf[40];
    for (int i = 0; i < width; i++)
        barbuf[i] = i < fill ? '#' : '.';
    barbuf[width] = 0;
    if (p->job_done) {
        const char *st = r->status == CLSYNTH_TUNE_TUNED ? "tuned" : r->status == CLSYNTH_TUNE_DEFAULT_BEST ? "default"
                       : r->status == CLSYNTH_TUNE_ALREADY ? "done before" : r->status == CLSYNTH_TUNE_NO_TIME
                       ? "no time" : "FAILED";
        snprintf(line, sizeof line, "[%s] %zu/%zu %-22s %-34s %-11s %8.3f -> %8.3f ms %s", barbuf, p->job + 1,
                 p->jobs, p->j->def->key, p->j->shape, st, r->default_ms, r->best_ms,
                 r->status == CLSYNTH_TUNE_FAILED ? r->note : r->best_desc);
        fprintf(stderr, "%s%s\n", b->tty ? "\r\033[K" : "", line);
    } else if (b->tty) {
        snprintf(line, sizeof line, "[%s] %zu/%zu %s %s: candidate %d/%d, %.0f/%.0f s", barbuf, p->job + 1, p->jobs,
                 p->j->def->key, p->j->shape, p->candidate, p->candidates, p->elapsed_s, b->budget);
        fprintf(stderr, "\r\033[K%s", line);
    }
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
    return 0;
}

int clsynth_cmd_tune(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--clblast-worker") == 0)
        return clsynth_clblast_worker_main(argc - 2, argv + 2);
    const char *device = NULL, *emulate = NULL, *db = NULL, *export_path = NULL, *import_path = NULL;
    const char *export_class = NULL;
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
    clsynth_tune_job *jobs = NULL;
    size_t njobs = 0, unknown = 0;
    if (clsynth_tune_jobs_from_recorded(ctx, &jobs, &njobs, &unknown))
        goto fail;
    printf("%zu (kernel, shape) jobs to tune (%zu looked-up keys have no tuner harness); step recorded in %.1f s\n",
           njobs, unknown, clsynth_now_s() - t0);
    double left = budget - (clsynth_now_s() - t0);

    /* CLBlast first: its GEMM speed decides between conv algorithms */
    if (!no_clblast) {
        clsynth_gemm_shape shapes[256];
        size_t ns = 0;
        for (size_t j = 0; j < njobs; j++)
            if (jobs[j].def == &clsynth_kdef_conv2d)
                ns = clsynth_conv_gemm_shapes(jobs[j].shape, (double)(jobs[j].uses ? jobs[j].uses : 1), shapes,
                                              ns, sizeof shapes / sizeof shapes[0]);
        clsynth_clblast_params have;
        if (ns && (retune || !clsynth_clblast_stored(ctx, &have)) && left > 60) {
            clsynth_clblast_tune_opts co;
            memset(&co, 0, sizeof co);
            co.budget_s = left * share;
            co.repeats = 3;
            co.max_shapes = 24;
            co.verbose = true;
            static const char *const wargv[] = { "tune", "--clblast-worker" };
            clsynth_clblast_worker worker = { NULL, wargv, 2, 0, 0 };
            co.measure = clsynth_clblast_measure_in_worker;
            co.user = &worker;
            clsynth_clblast_tune_result cr;
            printf("CLBlast GEMM: searching Xgemm / XgemmDirect parameters over %zu GEMM shapes (%.0f s)...\n",
                   ns < 24 ? ns : 24, co.budget_s);
            fflush(stdout);
            if (clsynth_clblast_tune(ctx, shapes, ns, &co, &cr)) {
                fprintf(stderr, "clsynth tune: CLBlast tuning failed: %s\n", ctx->err.msg);
                clsynth_ctx_clear_error(ctx);
            } else {
                printf("CLBlast GEMM: default %.3f ms, tuned %.3f ms (%d candidates, %d failed)%s\n", cr.default_ms,
                       cr.tuned_ms, cr.tried, cr.failed, cr.improved ? ": stored" : ": default kept");
                if (cr.improved) {
                    clsynth_tunedb_save(ctx, NULL);
                    clsynth_tunedb_apply_clblast(ctx);
                }
            }
        } else if (ns) {
            printf("CLBlast GEMM: %s\n", left <= 60 ? "skipped (budget)" : "tuned before (use --retune to redo)");
        }
    }

    clsynth_tune_opts o;
    clsynth_tune_opts_default(&o);
    o.budget_s = budget - (clsynth_now_s() - t0);
    if (o.budget_s < 1)
        o.budget_s = 1;
    o.repeats = repeats;
    o.retune = retune;
    bar b = { isatty(STDERR_FILENO) != 0, o.budget_s };
    o.progress = progress;
    o.user = &b;
    clsynth_tune_result *res = calloc(njobs ? njobs : 1, sizeof *res);
    if (!res) {
        free(jobs);
        goto fail;
    }
    int trc = clsynth_tune_run(ctx, jobs, njobs, &o, res);
    int counts[6] = { 0 };
    double sum_def = 0, sum_best = 0;
    for (size_t j = 0; j < njobs; j++) {
        counts[res[j].status]++;
        if (res[j].status == CLSYNTH_TUNE_TUNED || res[j].status == CLSYNTH_TUNE_DEFAULT_BEST) {
            sum_def += res[j].default_ms * (double)(jobs[j].uses ? jobs[j].uses : 1);
            sum_best += res[j].best_ms * (double)(jobs[j].uses ? jobs[j].uses : 1);
        }
    }
    char path[800];
    clsynth_tunedb_path(ctx, path, sizeof path);
    printf("\n%d tuned, %d kept their default, %d done before, %d out of time, %d failed, in %.0f s (budget %.0f s)\n",
           counts[CLSYNTH_TUNE_TUNED], counts[CLSYNTH_TUNE_DEFAULT_BEST], counts[CLSYNTH_TUNE_ALREADY],
           counts[CLSYNTH_TUNE_NO_TIME], counts[CLSYNTH_TUNE_FAILED], clsynth_now_s() - t0, budget);
    if (sum_def > 0)
        printf("tuned jobs, per-op time summed as the step runs them: %.2f ms -> %.2f ms (%.2fx)\n", sum_def,
               sum_best, sum_def / sum_best);
    printf("database: %s\n", path);
    free(res);
    free(jobs);
    if (trc)
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
