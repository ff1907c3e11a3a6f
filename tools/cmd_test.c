/* clsynth test --name RUN [--checkpoints_dir DIR] [--which_epoch latest|N] | --checkpoint FILE
 *              --label_dir DIR [--image_dir DIR] [--instance_dir DIR] --results_dir DIR
 *              [--seed N] [--z_random] [--save_float DIR]
 * Synthesizes one PNG per label map and writes an index.html grid; a
 * checkpoint holding NaN/Inf values is refused (nets/model.h). With
 * --use_vae models the real image is encoded and z = mu + eps·sigma (the
 * authors' test path), or z ~ N(0, 1) with --z_random; --seed fixes the noise.
 * --save_float writes the generator's float output per image (tools/synthesize.h). */
#include <stdio.h>
#include <string.h>

#include "clcore/context.h"
#include "clcore/fsutil.h"
#include "nets/model.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/run_dir.h"
#include "tools/synthesize.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: clsynth test (--name RUN [--checkpoints_dir DIR] [--which_epoch latest|N] | --checkpoint FILE)\n"
               "                    --label_dir DIR [--image_dir DIR] [--instance_dir DIR] --results_dir DIR\n"
               "                    [--seed N] [--z_random] [--save_float DIR] [--device SPEC]\n"
               "  --seed N          noise seed of the VAE's eps / random z (default: the checkpoint's)\n"
               "  --z_random        --use_vae models: z from N(0, 1) instead of encoding the real image\n"
               "  --save_float DIR  also DIR/<name>.f32.ckpt: the float output before 8-bit quantization\n");
}

int clsynth_cmd_test(int argc, char **argv)
{
    const char *name = NULL, *ckdir = "./checkpoints", *ckpt = NULL, *device = NULL, *which = NULL, *seed = NULL;
    clsynth_synth_dirs d = { .title = "clsynth test" };
    struct { const char *flag; const char **dst; } opts[] = {
        { "--name", &name }, { "--checkpoints_dir", &ckdir }, { "--checkpoint", &ckpt },
        { "--label_dir", &d.label_dir }, { "--image_dir", &d.image_dir }, { "--instance_dir", &d.instance_dir },
        { "--results_dir", &d.results_dir }, { "--device", &device }, { "--which_epoch", &which },
        { "--seed", &seed }, { "--save_float", &d.float_dir },
    };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--z_random") == 0) {
            d.z_random = true;
            continue;
        }
        int matched = 0;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !matched; k++) {
            matched = clsynth_cli_value(argc, argv, &i, opts[k].flag, opts[k].dst);
            if (matched < 0) {
                fprintf(stderr, "clsynth test: %s needs a value\n", opts[k].flag);
                return 2;
            }
        }
        if (!matched) {
            fprintf(stderr, "clsynth test: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if ((!name && !ckpt) || !d.label_dir || !d.results_dir) {
        fprintf(stderr, "clsynth test: --name or --checkpoint, --label_dir and --results_dir are required\n");
        usage(stderr);
        return 2;
    }
    int seed_value = -1;
    if (seed && clsynth_cli_int("clsynth test", "--seed", seed, 0, 2147483647, &seed_value))
        return 2;
    if (ckpt && which) {
        fprintf(stderr, "clsynth test: --which_epoch selects a checkpoint of --name RUN; --checkpoint names one "
                        "already\n");
        return 2;
    }
    char path[1200];
    clsynth_err err;
    if (ckpt) {
        snprintf(path, sizeof path, "%s", ckpt);
    } else {
        /* latest.ckpt or iter_N.ckpt of the run; an unknown one lists what exists */
        char run_dir[1100];
        snprintf(run_dir, sizeof run_dir, "%s/%s", ckdir, name);
        long step;
        if (clsynth_run_parse_which(which ? which : "latest", &step, &err)) {
            fprintf(stderr, "clsynth test: %s\n", err.msg);
            return 2;
        }
        clsynth_run_ckpts l;
        int i = clsynth_run_ckpts_list(run_dir, &l, &err) ? -1 : 0;
        if (i == 0 && l.n == 0)
            i = clsynth_fail(&err, "%s holds no checkpoint (is --name or --checkpoints_dir right?)", run_dir);
        else if (i == 0)
            i = clsynth_run_ckpts_select(&l, run_dir, which ? which : "latest", &err);
        if (i >= 0)
            snprintf(path, sizeof path, "%s", l.v[i].path);
        clsynth_run_ckpts_free(&l);
        if (i < 0) {
            fprintf(stderr, "clsynth test: %s\n", err.msg);
            return 1;
        }
    }
    d.checkpoint = path;
    if (d.float_dir && clsynth_mkdirs(d.float_dir, &err)) {
        fprintf(stderr, "clsynth test: --save_float: %s\n", err.msg);
        return 1;
    }
    clsynth_options o;
    clsynth_options_defaults(&o);
    if (clsynth_model_checkpoint_options(path, &o, &err)) {
        fprintf(stderr, "clsynth test: %s\n", err.msg);
        return 1;
    }
    if (o.use_vae && !d.image_dir && !d.z_random)
        printf("clsynth test: no --image_dir: z is drawn from N(0, 1) (the authors encode the real image)\n");
    clsynth_ctx *ctx = clsynth_ctx_create(device ? device : (o.device[0] ? o.device : NULL), &err);
    if (!ctx) {
        fprintf(stderr, "clsynth test: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    clsynth_model *m = clsynth_model_create(ctx, &o, &err);
    if (m && clsynth_model_load(ctx, m, path, NULL, NULL, NULL, &err) == 0) {
        if (seed_value >= 0)
            clsynth_model_set_noise_seed(m, seed_value);
        int n = clsynth_synthesize_folder(ctx, m, &d, &err);
        if (n >= 0) {
            printf("%d images synthesized with %s into %s (open %s/index.html)\n", n, path, d.results_dir,
                   d.results_dir);
            rc = 0;
        }
    }
    if (rc)
        fprintf(stderr, "clsynth test: %s\n", err.msg);
    clsynth_model_free(ctx, m);
    clsynth_ctx_free(ctx);
    return rc;
}
