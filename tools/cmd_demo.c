/* clsynth demo: the README's main job on the chosen device.
 *   1. writes the built-in synthetic street-scene dataset to OUT/data (if absent);
 *   2. trains the tiny CC-FPSE preset (with --fpse_plain_enc1, see below) for a
 *      fixed number of iterations (about 10 minutes on 2 CPU cores; resumes if
 *      run again);
 *   3. synthesizes the validation split into OUT/report/val;
 *   4. writes OUT/report/index.html (loss curves, samples, validation grid). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcore/context.h"
#include "io/synth.h"
#include "nets/model.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/report.h"
#include "tools/results.h"
#include "tools/synthesize.h"
#include "tools/train_loop.h"

#define DEMO_TRAIN_SCENES 256
#define DEMO_VAL_SCENES 16
#define DEMO_SIZE 64
/* Calibrated so training ends in about 10 minutes on 2 CPU cores (PoCL); see platforms.md. */
#define DEMO_DEFAULT_ITERS 600

static void usage(FILE *f)
{
    fprintf(f, "usage: clsynth demo [--out DIR (default clsynth-demo)] [--device SPEC] [--iters N]\n"
               "                    [--seed S] [model options, e.g. --netG spade]\n");
}

int clsynth_cmd_demo(int argc, char **argv)
{
    const char *out = "clsynth-demo", *device = NULL, *iters_s = NULL, *seed_s = NULL;
    int iters = DEMO_DEFAULT_ITERS, seed = 1;
    char *rest[256];
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        int m = clsynth_cli_value(argc, argv, &i, "--out", &out);
        if (!m) m = clsynth_cli_value(argc, argv, &i, "--device", &device);
        if (!m) m = clsynth_cli_value(argc, argv, &i, "--iters", &iters_s);
        if (!m) m = clsynth_cli_value(argc, argv, &i, "--seed", &seed_s);
        if (m < 0) {
            fprintf(stderr, "clsynth demo: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!m && nrest < 250)
            rest[nrest++] = argv[i];
    }
    if (iters_s && clsynth_cli_int("clsynth demo", "--iters", iters_s, 1, 100000000, &iters))
        return 2;
    if (seed_s && clsynth_cli_int("clsynth demo", "--seed", seed_s, 0, 2147483647, &seed))
        return 2;

    clsynth_err err;
    char data[1100], ckdir[1100], report[1100], val[1200];
    snprintf(data, sizeof data, "%s/data", out);
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", out);
    snprintf(report, sizeof report, "%s/report", out);
    snprintf(val, sizeof val, "%s/val", report);

    /* options: tiny preset, then the caller's model flags */
    clsynth_options o;
    clsynth_options_defaults(&o);
    char seed_txt[32], iters_txt[32];
    snprintf(seed_txt, sizeof seed_txt, "%d", seed);
    snprintf(iters_txt, sizeof iters_txt, "%d", iters);
    char *base[] = { "--preset", "tiny", "--dataroot", data, "--name", "demo", "--checkpoints_dir", ckdir,
                     "--max_iters", iters_txt, "--seed", seed_txt, "--continue_train", "--display_freq", "100",
                     "--save_latest_freq", "200", "--print_freq", "25",
                     /* In ten CPU minutes without VGG weights the reference FPSE discriminator,
                      * instance-normalized from its first layer on, is nearly blind to image
                      * contrast and the samples stay gray for hundreds of iterations (measured:
                      * see README); a plain first layer lets the demo show the layout. */
                     "--fpse_plain_enc1" };
    int nb = (int)(sizeof base / sizeof base[0]);
    char *all[300];
    for (int i = 0; i < nb; i++)
        all[i] = base[i];
    for (int i = 0; i < nrest; i++)
        all[nb + i] = rest[i];
    if (clsynth_options_parse(&o, nb + nrest, all, &err)) {
        fprintf(stderr, "clsynth demo: %s\n", err.msg);
        return 2;
    }
    if (device)
        snprintf(o.device, sizeof o.device, "%s", device);

    clsynth_ctx *ctx = clsynth_ctx_create(o.device[0] ? o.device : NULL, &err);
    if (!ctx) {
        fprintf(stderr, "clsynth demo: %s\n", err.msg);
        return 1;
    }
    printf("clsynth main job on device %d: %s (%s, driver %s)\n", ctx->dev.index, ctx->dev.name,
           ctx->dev.platform_name, ctx->dev.driver);
    int rc = 1;
    char classes[1200];
    snprintf(classes, sizeof classes, "%s/classes.txt", data);
    if (access(classes, R_OK) != 0) {
        printf("1/4 writing the synthetic dataset (%d train + %d val scenes, %dx%d) to %s\n", DEMO_TRAIN_SCENES,
               DEMO_VAL_SCENES, DEMO_SIZE, DEMO_SIZE, data);
        if (clsynth_mkdirs(data, &err) ||
            clsynth_synth_write(data, DEMO_TRAIN_SCENES, DEMO_VAL_SCENES, DEMO_SIZE, DEMO_SIZE, (uint64_t)seed, &err))
            goto fail;
    } else {
        printf("1/4 synthetic dataset found in %s\n", data);
    }
    printf("2/4 training the tiny preset for %d iterations (run folder %s/demo)\n", iters, ckdir);
    clsynth_train_install_signals();
    clsynth_train_result tr;
    if (clsynth_run_training(ctx, &o, &tr, &err))
        goto fail;
    if (tr.stop_signal) {
        printf("stopped by signal %d; checkpoint saved to %s — run the same command to resume\n", tr.stop_signal,
               tr.last_checkpoint);
        clsynth_ctx_free(ctx);
        return 128 + tr.stop_signal;
    }
    printf("3/4 synthesizing the validation split into %s\n", val);
    char ckpt[1200], vl[1200], vi[1200], vn[1200];
    snprintf(ckpt, sizeof ckpt, "%s/latest.ckpt", tr.run_dir);
    snprintf(vl, sizeof vl, "%s/val_label", data);
    snprintf(vi, sizeof vi, "%s/val_img", data);
    snprintf(vn, sizeof vn, "%s/val_inst", data);
    clsynth_model *m = clsynth_model_create(ctx, &o, &err);
    if (!m || clsynth_model_load(ctx, m, ckpt, NULL, NULL, NULL, &err)) {
        clsynth_model_free(ctx, m);
        goto fail;
    }
    clsynth_synth_dirs d = { .label_dir = vl, .image_dir = vi, .instance_dir = vn, .results_dir = val,
                             .title = "clsynth main job: validation split" };
    int n = clsynth_synthesize_folder(ctx, m, &d, &err);
    clsynth_model_free(ctx, m);
    if (n < 0)
        goto fail;
    printf("4/4 writing the report\n");
    clsynth_report_info ri = { report, tr.run_dir, "val", data, ctx, &tr, n };
    if (clsynth_report_write(&ri, &err))
        goto fail;
    printf("\nreport: %s/index.html\n", report);
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "clsynth demo: %s\n", err.msg);
    clsynth_ctx_free(ctx);
    return rc;
}
