/* The ablation pipeline: dataset, evaluation segmenter, and per variant
 * training then evaluation, through the other commands' entry points
 * (clsynth_cmd_segmenter, clsynth_run_training, clsynth_eval_run). Each
 * stage's marker file is written last, atomically, so a run resumes where it
 * stopped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcore/fsutil.h"
#include "io/atomic.h"
#include "io/synth.h"
#include "nets/options.h"
#include "tools/ablate.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/numfile.h"
#include "tools/train_loop.h"

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static int write_text(const char *path, const char *text, clsynth_err *err)
{
    clsynth_atomic_file af;
    if (clsynth_atomic_open(&af, path, err))
        return -1;
    fputs(text, af.f);
    return clsynth_atomic_commit(&af, err);
}

int clsynth_ablate_ensure_data(const abl_config *c, clsynth_err *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/classes.txt", c->dataroot);
    if (!c->has_synth || file_exists(path))
        return 0;
    printf("== writing the synthetic dataset to %s (%d train, %d val, %dx%d (HxW), seed %llu)\n", c->dataroot,
           c->synth_train, c->synth_val, c->synth_h, c->synth_w, c->synth_seed);
    fflush(stdout);
    if (clsynth_mkdirs(c->dataroot, err))
        return -1;
    return clsynth_synth_write(c->dataroot, c->synth_train, c->synth_val, c->synth_w, c->synth_h,
                               (uint64_t)c->synth_seed, err);
}

int clsynth_ablate_ensure_segmenter(const abl_config *c, const char *device, const char *seg_path, clsynth_err *err)
{
    if (file_exists(seg_path)) {
        printf("== segmenter %s exists: not retrained\n", seg_path);
        return 0;
    }
    char opts[1024];
    snprintf(opts, sizeof opts, "%s", c->segmenter);
    char *argv[ABL_MAX_TOKENS + 16];
    int n = 0;
    argv[n++] = "segmenter";
    argv[n++] = "train";
    argv[n++] = "--dataroot";
    argv[n++] = (char *)c->dataroot;
    if (clsynth_ablate_tokenize(opts, argv, &n, err))
        return clsynth_wrap(err, "segmenter options");
    argv[n++] = "--out";
    argv[n++] = (char *)seg_path;
    if (device) {
        argv[n++] = "--device";
        argv[n++] = (char *)device;
    }
    argv[n] = NULL;
    printf("== training the evaluation segmenter:");
    for (int i = 0; i < n; i++)
        printf(" %s", argv[i]);
    printf("\n");
    fflush(stdout);
    if (clsynth_cmd_segmenter(n, argv))
        return clsynth_fail(err, "training the segmenter failed (see above)");
    return 0;
}

int clsynth_ablate_run_variant(clsynth_ctx *ctx, const abl_config *c, const abl_variant *v, const char *seg_path,
                       abl_row *row, int *stopped, clsynth_err *err)
{
    char run_dir[1200], path[1400], done_path[1400], eval_path[1400];
    snprintf(run_dir, sizeof run_dir, "%s/runs/%s", c->out, v->name);
    snprintf(done_path, sizeof done_path, "%s/train_done.txt", run_dir);
    snprintf(eval_path, sizeof eval_path, "%s/eval.json", run_dir);
    memset(row, 0, sizeof *row);
    if (file_exists(eval_path) && file_exists(done_path)) {
        double it = 0, s = 0;
        clsynth_read_number(done_path, "iterations", &it);
        clsynth_read_number(done_path, "seconds", &s);
        row->iterations = (long)it;
        row->train_seconds = s;
        if (clsynth_eval_load(eval_path, &row->r))
            return clsynth_fail(err, "%s: cannot read the evaluation back (delete it to evaluate again)",
                                eval_path);
        printf("== %s: trained and evaluated before: skipped\n", v->name);
    } else {
        if (!file_exists(done_path)) {
            clsynth_options o;
            clsynth_options_defaults(&o);
            char words[4096];
            snprintf(words, sizeof words, "%s %s", c->common, v->opts);
            char *argv[ABL_MAX_TOKENS + 16];
            int n = 0;
            if (clsynth_ablate_tokenize(words, argv, &n, err))
                return clsynth_wrap(err, "variant %s", v->name);
            char runs[1100];
            snprintf(runs, sizeof runs, "%s/runs", c->out);
            argv[n++] = "--dataroot";
            argv[n++] = (char *)c->dataroot;
            argv[n++] = "--name";
            argv[n++] = (char *)v->name;
            argv[n++] = "--checkpoints_dir";
            argv[n++] = runs;
            snprintf(path, sizeof path, "%s/latest.ckpt", run_dir);
            int resume = file_exists(path);
            /* always: resumes whatever checkpoint the variant has (latest.ckpt,
             * else the newest numbered one), starts a new run when it has none */
            argv[n++] = "--continue_train";
            if (clsynth_options_parse(&o, n, argv, err))
                return clsynth_wrap(err, "variant %s", v->name);
            /* Seconds of earlier, interrupted invocations. */
            char prog_path[1400];
            snprintf(prog_path, sizeof prog_path, "%s/train_seconds.txt", run_dir);
            double before = 0.0;
            if (resume)
                clsynth_read_number(prog_path, "seconds", &before);
            printf("== %s: training%s (%s)\n", v->name, resume ? ", resumed from its checkpoint" : "",
                   v->opts[0] ? v->opts : "the full model");
            fflush(stdout);
            clsynth_train_result res;
            int rc = clsynth_run_training(ctx, &o, &res, err);
            char text[256];
            snprintf(text, sizeof text, "seconds %.3f\n", before + res.seconds);
            if (res.run_dir[0])
                write_text(prog_path, text, NULL);
            if (rc)
                return clsynth_wrap(err, "variant %s", v->name);
            if (res.stop_signal) {
                *stopped = res.stop_signal;
                return 0;
            }
            snprintf(text, sizeof text, "iterations %ld\nseconds %.3f\n", res.iterations, before + res.seconds);
            if (write_text(done_path, text, err))
                return -1;
        }
        double it = 0, s = 0;
        clsynth_read_number(done_path, "iterations", &it);
        clsynth_read_number(done_path, "seconds", &s);
        row->iterations = (long)it;
        row->train_seconds = s;
        printf("== %s: evaluating\n", v->name);
        fflush(stdout);
        clsynth_eval_args ea;
        memset(&ea, 0, sizeof ea);
        snprintf(path, sizeof path, "%s/latest.ckpt", run_dir);
        ea.checkpoint = path;
        ea.segmenter = seg_path;
        ea.out_dir = run_dir;
        char ev[512];
        snprintf(ev, sizeof ev, "%s", c->eval);
        char *tok[ABL_MAX_TOKENS];
        int nt = 0;
        if (clsynth_ablate_tokenize(ev, tok, &nt, err))
            return clsynth_wrap(err, "eval options");
        for (int i = 0; i < nt; i++) {
            const char *val = NULL;
            int *dst = NULL;
            int m;
            if ((m = clsynth_cli_value(nt, tok, &i, "--max_images", &val)))
                dst = &ea.max_images;
            else if ((m = clsynth_cli_value(nt, tok, &i, "--batchSize", &val)))
                dst = &ea.batch;
            else if ((m = clsynth_cli_value(nt, tok, &i, "--samples", &val)))
                dst = &ea.samples;
            if (m <= 0 || !dst)
                return clsynth_fail(err, "eval options: unknown or incomplete '%s' (--max_images, --batchSize, "
                                    "--samples)", tok[i]);
            *dst = atoi(val);
        }
        if (clsynth_eval_run(ctx, &ea, &row->r, err))
            return clsynth_wrap(err, "evaluating %s", v->name);
    }
    snprintf(path, sizeof path, "%s/params.txt", run_dir);
    double g = 0, d = 0, e = 0;
    clsynth_read_number(path, "G", &g);
    clsynth_read_number(path, "D", &d);
    clsynth_read_number(path, "E", &e);
    row->params_g = (long)g;
    row->params_d = (long)d;
    row->params_e = (long)e;
    row->done = 1;
    printf("   %s: mIoU %.4f, accuracy %.4f, Frechet %.4f, spectral %.4f (high %.4f)\n", v->name, row->r.miou,
           row->r.accuracy, row->r.frechet, row->r.spectral, row->r.spectral_high);
    return 0;
}

