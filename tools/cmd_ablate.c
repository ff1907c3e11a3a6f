/* clsynth ablate --config FILE [--out DIR] [--device SPEC] [--only NAME[,NAME...]]
 *
 * Trains every variant of a config with the same seed, data and budget,
 * evaluates each (tools/eval.h) with one evaluation segmenter, and writes
 *   OUT/ablation.md        variant, options, parameters, iterations, time, mIoU,
 *                          accuracy, Frechet and spectral distances
 *   OUT/ablation.csv       the same numbers
 *   OUT/ablation_grid.png  label | real | one column per variant, on the same label maps
 * with OUT/segmenter.ckpt and OUT/runs/<variant>/ (checkpoints, eval.*).
 *
 * Resumable: a variant with runs/<variant>/eval.json is done and is not
 * touched; one with train_done.txt is only evaluated; one with a checkpoint but
 * no train_done.txt resumes training from it (--continue_train); the segmenter
 * is trained only when OUT/segmenter.ckpt is missing. The last step of each
 * stage writes its marker atomically, so an interrupted run loses at most the
 * stage it was in (Ctrl-C saves a training checkpoint first).
 *
 * Config: one `key = value` per line, `#` starts a comment line.
 *   out = DIR                  output folder (relative to the working directory)
 *   dataroot = DIR             dataset (any --dataset_mode the options select)
 *   synth = TRAIN VAL HxW SEED write the synthetic scenes to dataroot first when
 *                              dataroot/classes.txt is missing
 *   common = OPTIONS           clsynth train options of every variant
 *   segmenter = OPTIONS        clsynth segmenter train options
 *   eval = OPTIONS             --max_images N --batchSize B --samples N
 *   variant NAME = OPTIONS     one variant: its options after the common ones
 * Options are split at blanks (no quoting).
 *
 * This file is the command; the config parser is tools/ablate_config.c, the
 * pipeline tools/ablate_run.c, the tables and grid tools/ablate_report.c. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clcore/autograd.h"
#include "clcore/fsutil.h"
#include "tools/ablate.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/train_loop.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: clsynth ablate --config FILE [--out DIR] [--device SPEC] [--only NAME[,NAME...]]\n"
               "  (see tools/ablation_default.conf for the config format)\n");
}

int clsynth_cmd_ablate(int argc, char **argv)
{
    const char *config = NULL, *out = NULL, *device = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        int m;
        if ((m = clsynth_cli_value(argc, argv, &i, "--config", &config)) ||
            (m = clsynth_cli_value(argc, argv, &i, "--out", &out)) ||
            (m = clsynth_cli_value(argc, argv, &i, "--device", &device)) ||
            (m = clsynth_cli_value(argc, argv, &i, "--only", &only))) {
            if (m < 0) {
                fprintf(stderr, "clsynth ablate: %s needs a value\n", argv[i]);
                return 2;
            }
            continue;
        }
        fprintf(stderr, "clsynth ablate: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (!config) {
        usage(stderr);
        return 2;
    }
    static abl_config c;
    clsynth_err err;
    if (clsynth_ablate_parse_config(config, &c, &err)) {
        fprintf(stderr, "clsynth ablate: %s\n", err.msg);
        return 2;
    }
    if (out)
        snprintf(c.out, sizeof c.out, "%s", out);
    if (only) { /* keep the listed variants, in config order */
        int kept = 0;
        for (int k = 0; k < c.nv; k++) {
            char list[1024];
            snprintf(list, sizeof list, ",%s,", only);
            char needle[80];
            snprintf(needle, sizeof needle, ",%s,", c.v[k].name);
            if (strstr(list, needle))
                c.v[kept++] = c.v[k];
        }
        if (!kept) {
            fprintf(stderr, "clsynth ablate: --only %s matches no variant of %s\n", only, config);
            return 2;
        }
        c.nv = kept;
    }
    char runs[1200], seg_path[1200];
    snprintf(runs, sizeof runs, "%s/runs", c.out);
    snprintf(seg_path, sizeof seg_path, "%s/segmenter.ckpt", c.out);
    double t0 = now_s();
    if (clsynth_mkdirs(runs, &err) || clsynth_ablate_ensure_data(&c, &err) ||
        clsynth_ablate_ensure_segmenter(&c, device, seg_path, &err)) {
        fprintf(stderr, "clsynth ablate: %s\n", err.msg);
        return 1;
    }
    clsynth_ctx *ctx = clsynth_ctx_create(device, &err);
    if (!ctx) {
        fprintf(stderr, "clsynth ablate: %s\n", err.msg);
        return 1;
    }
    clsynth_train_install_signals();
    static abl_row rows[ABL_MAX_VARIANTS];
    int rc = 0, stopped = 0, failed = 0;
    for (int k = 0; k < c.nv && !stopped; k++) {
        if (clsynth_ablate_run_variant(ctx, &c, &c.v[k], seg_path, &rows[k], &stopped, &err)) {
            /* Reported and recorded; the other variants still run. */
            fprintf(stderr, "clsynth ablate: %s\n", err.msg);
            rows[k].done = 0;
            snprintf(rows[k].error, sizeof rows[k].error, "%s", err.msg);
            failed++;
            clsynth_tape_clear(ctx);
            clsynth_release_activations(ctx);
        }
        clsynth_ctx_clear_error(ctx);
    }
    if (stopped) {
        fprintf(stderr, "clsynth ablate: stopped by signal %d (checkpoint saved; run the same command to "
                        "resume)\n", stopped);
        clsynth_ctx_free(ctx);
        return 128 + stopped;
    }
    char grid[1300];
    snprintf(grid, sizeof grid, "%s/ablation_grid.png", c.out);
    if (clsynth_ablate_write_tables(&c, config, rows, seg_path, ctx->dev.name, &err) ||
        clsynth_ablate_write_grid(&c, rows, grid, &err)) {
        fprintf(stderr, "clsynth ablate: %s\n", err.msg);
        rc = 1;
    } else {
        printf("== wrote %s/ablation.md, %s/ablation.csv and %s (%.1f s)\n", c.out, c.out, grid, now_s() - t0);
    }
    if (failed) {
        fprintf(stderr, "clsynth ablate: %d variant(s) failed (see ablation.md)\n", failed);
        rc = 1;
    }
    clsynth_ctx_free(ctx);
    return rc;
}
