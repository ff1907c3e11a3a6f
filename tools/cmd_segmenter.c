/* clsynth segmenter: the evaluation segmenter (nets/segmenter.h).
 *
 *   segmenter train DATA_OPTIONS --out FILE [--nf N] [--batchSize B] [--lr LR]
 *                   [--niter EPOCHS | --max_iters N | --time_budget SECONDS]
 *                   [--seed S] [--print_freq N] [--val_max N] [--device SPEC]
 *       trains on the real training images (random crop / flip as the data
 *       options say), then scores the real validation images: its mIoU there is
 *       the ceiling of the synthesis scores `clsynth eval` reports. Writes FILE
 *       (checkpoint, with the scores in its config) and FILE.json.
 *   segmenter score DATA_OPTIONS --model FILE [--phase val] [--val_max N] [--device SPEC]
 *       scores a trained segmenter on a split's real images.
 *
 * Stopping: the first of --niter epochs, --max_iters steps, --time_budget
 * seconds; with none of them, 10 epochs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clcore/context.h"
#include "io/dataset.h"
#include "io/loader.h"
#include "nets/metrics.h"
#include "nets/segmenter.h"
#include "tools/cli.h"
#include "tools/commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: clsynth segmenter train DATA_OPTIONS --out FILE [--nf N] [--batchSize B] [--lr LR]\n"
               "                 [--niter EPOCHS | --max_iters N | --time_budget SECONDS] [--seed S]\n"
               "                 [--print_freq N] [--val_max N] [--device SPEC]\n"
               "       clsynth segmenter score DATA_OPTIONS --model FILE [--val_max N] [--device SPEC]\n"
               "DATA_OPTIONS: --dataset_mode --dataroot --label_nc --crop_size --load_size "
               "--preprocess_mode ... (as clsynth train)\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct seg_args {
    clsynth_data_opts data;
    const char *out, *model, *device;
    int nf, batch, niter, print_freq, val_max, phase_set;
    long max_iters;
    double time_budget;
    float lr;
    long seed;
} seg_args;

static int parse(const char *cmd, int argc, char **argv, seg_args *a)
{
    memset(a, 0, sizeof *a);
    clsynth_data_opts_init(&a->data);
    a->nf = 16;
    a->batch = 4;
    a->lr = 1e-3f;
    a->print_freq = 50;
    for (int i = 1; i < argc; i++) {
        clsynth_err err;
        if (strcmp(argv[i], "--phase") == 0 || strncmp(argv[i], "--phase=", 8) == 0)
            a->phase_set = 1;
        int d = clsynth_data_opts_parse_arg(&a->data, argc, argv, &i, &err);
        if (d < 0) {
            fprintf(stderr, "%s: %s\n", cmd, err.msg);
            return -1;
        }
        if (d > 0) {
            i--; /* parse_arg advanced past the option; the loop does too */
            continue;
        }
        const char *v = NULL;
        int m;
        if ((m = clsynth_cli_value(argc, argv, &i, "--out", &a->out)) ||
            (m = clsynth_cli_value(argc, argv, &i, "--model", &a->model)) ||
            (m = clsynth_cli_value(argc, argv, &i, "--device", &a->device))) {
            if (m < 0)
                goto missing;
            continue;
        }
        if ((m = clsynth_cli_value(argc, argv, &i, "--nf", &v))) {
            if (m < 0 || clsynth_cli_int(cmd, "--nf", v, 1, 256, &a->nf))
                goto bad;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--batchSize", &v))) {
            if (m < 0 || clsynth_cli_int(cmd, "--batchSize", v, 1, 4096, &a->batch))
                goto bad;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--niter", &v))) {
            if (m < 0 || clsynth_cli_int(cmd, "--niter", v, 1, 1000000, &a->niter))
                goto bad;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--max_iters", &v))) {
            int x;
            if (m < 0 || clsynth_cli_int(cmd, "--max_iters", v, 1, 2000000000, &x))
                goto bad;
            a->max_iters = x;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--time_budget", &v))) {
            float x;
            if (m < 0 || clsynth_cli_float(cmd, "--time_budget", v, &x) || x <= 0)
                goto bad;
            a->time_budget = x;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--lr", &v))) {
            if (m < 0 || clsynth_cli_float(cmd, "--lr", v, &a->lr) || a->lr <= 0)
                goto bad;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--seed", &v))) {
            int x;
            if (m < 0 || clsynth_cli_int(cmd, "--seed", v, 0, 2000000000, &x))
                goto bad;
            a->seed = x;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--print_freq", &v))) {
            if (m < 0 || clsynth_cli_int(cmd, "--print_freq", v, 1, 1000000000, &a->print_freq))
                goto bad;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--val_max", &v))) {
            if (m < 0 || clsynth_cli_int(cmd, "--val_max", v, 0, 1000000000, &a->val_max))
                goto bad;
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n", cmd, argv[i]);
            usage(stderr);
            return -1;
        }
        continue;
    missing:
        fprintf(stderr, "%s: %s needs a value\n", cmd, argv[i]);
        return -1;
    bad:
        if (m < 0)
            fprintf(stderr, "%s: %s needs a value\n", cmd, argv[i]);
        return -1;
    }
    return 0;
}

/* Opens a split of the dataset described by the data options. */
static clsynth_dataset *open_split(const char *cmd, const clsynth_data_opts *base, int is_train)
{
    clsynth_data_opts o = *base;
    o.is_train = is_train;
    clsynth_err err;
    if (clsynth_data_opts_finalize(&o, &err)) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return NULL;
    }
    clsynth_dataset *ds = clsynth_dataset_open(&o, &err);
    if (!ds)
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
    return ds;
}

/* Scores seg on ds; prints and returns mIoU / accuracy. */
static int score(const char *cmd, clsynth_ctx *ctx, clsynth_segmenter *seg, const clsynth_dataset *ds, int batch,
                 int val_max, double *miou, double *acc, int *images, double *seconds)
{
    clsynth_confusion conf;
    clsynth_err err;
    if (clsynth_confusion_init(&conf, clsynth_segmenter_config(seg)->label_nc, ds->opts.dontcare_value, &err)) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return -1;
    }
    double t0 = now_s();
    int n = clsynth_segmenter_score_dataset(seg, ds, batch, val_max, &conf, NULL);
    *seconds = now_s() - t0;
    if (n < 0) {
        fprintf(stderr, "%s: %s\n", cmd, ctx->err.msg);
        clsynth_confusion_free(&conf);
        return -1;
    }
    int used = 0;
    *miou = clsynth_miou(&conf, CLSYNTH_MIOU_PRESENT, NULL, &used);
    *acc = clsynth_pixel_accuracy(&conf);
    *images = n;
    double *iou = malloc(sizeof(double) * conf.k);
    if (iou) {
        clsynth_miou(&conf, CLSYNTH_MIOU_PRESENT, iou, NULL);
        printf("per-class IoU:");
        for (int k = 0; k < conf.k; k++)
            printf(isnan(iou[k]) ? " -" : " %.3f", iou[k]);
        printf("\n");
        free(iou);
    }
    printf("real %s images: %d, mIoU %.4f (%d classes present), pixel accuracy %.4f (%.1f s)\n",
           ds->opts.is_train ? "train" : "val", n, *miou, used, *acc, *seconds);
    clsynth_confusion_free(&conf);
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    const char *cmd = "clsynth segmenter train";
    seg_args a;
    if (parse(cmd, argc, argv, &a))
        return 2;
    if (!a.out) {
        fprintf(stderr, "%s: --out FILE is required\n", cmd);
        return 2;
    }
    if (!a.niter && !a.max_iters && a.time_budget <= 0)
        a.niter = 10;
    clsynth_dataset *train = open_split(cmd, &a.data, 1), *val = NULL;
    if (!train)
        return 1;
    val = open_split(cmd, &a.data, 0);
    if (!val) {
        clsynth_dataset_free(train);
        return 1;
    }
    clsynth_err err;
    clsynth_ctx *ctx = clsynth_ctx_create(a.device, &err);
    clsynth_segmenter *seg = NULL;
    clsynth_loader *l = NULL;
    int rc = 1;
    if (!ctx) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        goto done;
    }
    clsynth_segmenter_cfg cfg;
    clsynth_segmenter_cfg_defaults(&cfg);
    cfg.label_nc = train->opts.label_nc;
    cfg.nf = a.nf;
    cfg.lr = a.lr;
    cfg.ignore = train->opts.dontcare_value;
    seg = clsynth_segmenter_create(ctx, &cfg, (uint64_t)a.seed);
    if (!seg) {
        fprintf(stderr, "%s: %s\n", cmd, ctx->err.msg);
        goto done;
    }
    clsynth_loader_opts lo = { .batch_size = a.batch, .seed = (uint64_t)a.seed, .shuffle = 1, .prefetch = 3 };
    l = clsynth_loader_create(train, &lo, &err);
    if (!l) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        goto done;
    }
    int per_epoch = clsynth_loader_batches_per_epoch(l);
    printf("segmenter: %d classes, nf %d, %zu parameters; %d training images (%d batches of %d per epoch), "
           "device %s\n",
           cfg.label_nc, cfg.nf, clsynth_segmenter_num_params(seg), train->n, per_epoch, a.batch, ctx->dev.name);
    double t0 = now_s(), loss_sum = 0.0;
    long it = 0;
    int loss_n = 0, h = 0, w = 0;
    for (;;) {
        if (a.max_iters && it >= a.max_iters)
            break;
        if (a.niter && it >= (long)a.niter * per_epoch)
            break;
        if (a.time_budget > 0 && now_s() - t0 >= a.time_budget)
            break;
        const clsynth_batch *b;
        int got = clsynth_loader_next(l, &b, &err);
        if (got <= 0) {
            fprintf(stderr, "%s: %s\n", cmd, got < 0 ? err.msg : "the training loader ended");
            goto done;
        }
        float loss;
        if (clsynth_segmenter_train_step(seg, b->image, b->label, b->n, b->h, b->w, &loss)) {
            fprintf(stderr, "%s: step %ld: %s\n", cmd, it + 1, ctx->err.msg);
            goto done;
        }
        if (!isfinite(loss)) {
            fprintf(stderr, "%s: step %ld: the loss is %g\n", cmd, it + 1, loss);
            goto done;
        }
        h = b->h;
        w = b->w;
        it++;
        loss_sum += loss;
        loss_n++;
        if (it % a.print_freq == 0) {
            printf("(epoch %d, iters %ld, %.1f s) cross-entropy %.4f\n", b->epoch + 1, it, now_s() - t0,
                   loss_sum / loss_n);
            fflush(stdout);
            loss_sum = 0.0;
            loss_n = 0;
        }
    }
    double train_s = now_s() - t0;
    printf("trained %ld iterations in %.1f s (%.3f s/iter, %dx%d crops)\n", it, train_s, it ? train_s / it : 0.0, w, h);
    double miou, acc, eval_s;
    int nval;
    if (score(cmd, ctx, seg, val, a.batch, a.val_max, &miou, &acc, &nval, &eval_s))
        goto done;
    char extra[2048];
    snprintf(extra, sizeof extra,
             "dataroot=%s\ndataset_mode=%s\ncrop_size=%d\nload_size=%d\niters=%ld\ntrain_seconds=%.1f\n"
             "val_images=%d\nval_miou=%.6f\nval_accuracy=%.6f\n",
             a.data.dataroot, train->opts.dataset_mode, val->opts.crop_size, val->opts.load_size, it, train_s, nval,
             miou, acc);
    if (clsynth_segmenter_save(seg, a.out, extra)) {
        fprintf(stderr, "%s: %s\n", cmd, ctx->err.msg);
        goto done;
    }
    char jpath[2048];
    snprintf(jpath, sizeof jpath, "%s.json", a.out);
    FILE *jf = fopen(jpath, "w");
    if (!jf) {
        fprintf(stderr, "%s: cannot write %s: %s\n", cmd, jpath, strerror(errno));
        goto done;
    }
    fprintf(jf,
            "{\n  \"kind\": \"segmenter\",\n  \"label_nc\": %d,\n  \"nf\": %d,\n  \"parameters\": %zu,\n"
            "  \"iterations\": %ld,\n  \"batch_size\": %d,\n  \"train_seconds\": %.1f,\n  \"crop\": [%d, %d],\n"
            "  \"device\": \"%s\",\n  \"val_images\": %d,\n  \"val_miou\": %.6f,\n  \"val_pixel_accuracy\": %.6f,\n"
            "  \"miou_convention\": \"mean over classes present in ground truth or prediction\"\n}\n",
            cfg.label_nc, cfg.nf, clsynth_segmenter_num_params(seg), it, a.batch, train_s, h, w, ctx->dev.name,
            nval, miou, acc);
    if (fclose(jf)) {
        fprintf(stderr, "%s: cannot write %s: %s\n", cmd, jpath, strerror(errno));
        goto done;
    }
    printf("wrote %s and %s\n", a.out, jpath);
    rc = 0;
done:
    clsynth_loader_free(l);
    clsynth_segmenter_free(seg);
    clsynth_ctx_free(ctx);
    clsynth_dataset_free(train);
    clsynth_dataset_free(val);
    return rc;
}

static int cmd_score(int argc, char **argv)
{
    const char *cmd = "clsynth segmenter score";
    seg_args a;
    if (parse(cmd, argc, argv, &a))
        return 2;
    if (!a.model) {
        fprintf(stderr, "%s: --model FILE is required\n", cmd);
        return 2;
    }
    clsynth_dataset *ds = open_split(cmd, &a.data, a.phase_set ? a.data.is_train : 0);
    if (!ds)
        return 1;
    clsynth_err err;
    clsynth_ctx *ctx = clsynth_ctx_create(a.device, &err);
    int rc = 1;
    clsynth_segmenter *seg = NULL;
    if (!ctx) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        goto done;
    }
    seg = clsynth_segmenter_load(ctx, a.model);
    if (!seg) {
        fprintf(stderr, "%s: %s\n", cmd, ctx->err.msg);
        goto done;
    }
    if (clsynth_segmenter_config(seg)->label_nc != ds->opts.label_nc) {
        fprintf(stderr, "%s: %s was trained for %d classes, the dataset has %d\n", cmd, a.model,
                clsynth_segmenter_config(seg)->label_nc, ds->opts.label_nc);
        goto done;
    }
    double miou, acc, s;
    int n;
    if (score(cmd, ctx, seg, ds, a.batch, a.val_max, &miou, &acc, &n, &s))
        goto done;
    rc = 0;
done:
    clsynth_segmenter_free(seg);
    clsynth_ctx_free(ctx);
    clsynth_dataset_free(ds);
    return rc;
}

int clsynth_cmd_segmenter(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (strcmp(argv[1], "score") == 0)
        return cmd_score(argc - 1, argv + 1);
    fprintf(stderr, "clsynth segmenter: unknown sub-command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
