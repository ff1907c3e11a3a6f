/* clsynth eval: scores a trained model on its validation split (tools/eval.h).
 *
 *   clsynth eval (--name RUN [--checkpoints_dir DIR] | --checkpoint FILE) --segmenter FILE
 *                [--dataroot DIR] [--max_images N] [--batchSize B] [--samples N]
 *                [--results_dir DIR] [--device SPEC] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clcore/autograd.h"
#include "clcore/context.h"
#include "clcore/tensor.h"
#include "io/atomic.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/grid.h"
#include "io/loader.h"
#include "nets/metrics.h"
#include "nets/model.h"
#include "nets/segmenter.h"
#include "nets/spectrum.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/eval.h"
#include "tools/results.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Everything one evaluation holds; released by eval_free. */
typedef struct eval_state {
    clsynth_dataset *ds;
    clsynth_model *model;
    clsynth_segmenter *seg;
    clsynth_spectrum *fft;
    clsynth_loader *loader;
    clsynth_confusion conf_fake, conf_real;
    clsynth_feature_stats feat_fake, feat_real;
    clsynth_radial_profile spec_fake, spec_real;
    int spec_ready;
    float *fake, *logits, *feats, *label_f;
    int32_t *keep_label;
    float *keep_real, *keep_fake;
    int kept;
} eval_state;

static void eval_free(clsynth_ctx *ctx, eval_state *s)
{
    clsynth_loader_free(s->loader);
    clsynth_spectrum_free(s->fft);
    clsynth_segmenter_free(s->seg);
    if (s->model)
        clsynth_model_free(ctx, s->model);
    clsynth_dataset_free(s->ds);
    clsynth_confusion_free(&s->conf_fake);
    clsynth_confusion_free(&s->conf_real);
    clsynth_feature_stats_free(&s->feat_fake);
    clsynth_feature_stats_free(&s->feat_real);
    clsynth_profile_free(&s->spec_fake);
    clsynth_profile_free(&s->spec_real);
    free(s->fake);
    free(s->logits);
    free(s->feats);
    free(s->label_f);
    free(s->keep_label);
    free(s->keep_real);
    free(s->keep_fake);
}

/* Scores n images (n, 3, h, w) against labels into conf / feats. */
static int score_images(clsynth_ctx *ctx, eval_state *s, const float *img, const int32_t *label, int n, int h, int w,
                        clsynth_confusion *conf, clsynth_feature_stats *feats, clsynth_err *err)
{
    const int K = clsynth_segmenter_config(s->seg)->label_nc;
    const size_t hw = (size_t)h * w;
    if (clsynth_segmenter_predict(s->seg, img, n, h, w, s->logits, s->feats))
        return clsynth_fail(err, "segmenter: %s", ctx->err.msg);
    for (int i = 0; i < n; i++)
        if (clsynth_confusion_add_logits(conf, label + i * hw, s->logits + (size_t)i * K * hw, h, w, err))
            return -1;
    clsynth_feature_stats_add(feats, s->feats, n);
    return 0;
}

static int write_outputs(const clsynth_eval_args *a, const char *dir, const eval_state *s,
                         const clsynth_eval_result *r, const clsynth_options *o, clsynth_err *err)
{
    char path[1400];
    /* spectra */
    int nb = s->spec_real.nbins;
    double *lr = malloc(sizeof(double) * nb), *lf = malloc(sizeof(double) * nb);
    if (!lr || !lf) {
        free(lr);
        free(lf);
        return clsynth_fail(err, "out of memory");
    }
    int rc = clsynth_profile_log_power(&s->spec_real, lr, err) || clsynth_profile_log_power(&s->spec_fake, lf, err);
    clsynth_atomic_file af;
    if (!rc) {
        snprintf(path, sizeof path, "%s/eval_spectrum.csv", dir);
        rc = clsynth_atomic_open(&af, path, err);
    }
    if (!rc) {
        fprintf(af.f, "bin,cycles_per_pixel,log10_power_real,log10_power_synthesized\n");
        int S = r->height < r->width ? r->height : r->width;
        for (int b = 0; b < nb; b++)
            fprintf(af.f, "%d,%.6f,%.6f,%.6f\n", b, (double)b / S, lr[b], lf[b]);
        rc = clsynth_atomic_commit(&af, err);
    }
    free(lr);
    free(lf);
    if (rc)
        return -1;
    /* grid and samples */
    if (s->kept > 0) {
        snprintf(path, sizeof path, "%s/eval_grid.png", dir);
        if (clsynth_grid_write(path, s->kept, r->height, r->width, s->keep_label, s->keep_fake, s->keep_real, err))
            return -1;
        size_t hw = (size_t)r->height * r->width;
        float *lab = malloc(sizeof(float) * s->kept * hw);
        if (!lab)
            return clsynth_fail(err, "out of memory");
        for (size_t k = 0; k < (size_t)s->kept * hw; k++)
            lab[k] = (float)s->keep_label[k];
        clsynth_ckpt_tensor_in t[3] = {
            { "label", "label", 4, { s->kept, 1, r->height, r->width }, lab },
            { "real", "image", 4, { s->kept, 3, r->height, r->width }, s->keep_real },
            { "fake", "image", 4, { s->kept, 3, r->height, r->width }, s->keep_fake },
        };
        const uint64_t rng[4] = { 0, 0, 0, 0 };
        snprintf(path, sizeof path, "%s/eval_samples.ckpt", dir);
        rc = clsynth_checkpoint_save(path, "kind=eval_samples\n", 0, rng, t, 3, err);
        free(lab);
        if (rc)
            return -1;
    }
    /* markdown */
    snprintf(path, sizeof path, "%s/eval.md", dir);
    if (clsynth_atomic_open(&af, path, err))
        return -1;
    fprintf(af.f,
            "# clsynth eval\n\n"
            "model `%s` (netG %s, netD %s), segmenter `%s`; %d validation images of %dx%d from `%s`.\n\n"
            "| metric | synthesized | real (ceiling) |\n|---|---|---|\n"
            "| mIoU | %.4f | %.4f |\n| pixel accuracy | %.4f | %.4f |\n"
            "| segmenter Frechet distance (%d-d features) | %.4f | 0 |\n"
            "| spectral distance, all bins (mean abs log10 power gap) | %.4f | 0 |\n"
            "| spectral distance, upper half of frequencies | %.4f | 0 |\n\n"
            "mIoU: mean over classes present in the ground truth or the prediction (%d classes); "
            "don't care (%d) ignored. The Frechet distance is computed on the evaluation segmenter's "
            "spatially averaged bottleneck features, not on Inception features: it is not FID. Spectral "
            "distance: azimuthally averaged power spectra of the grayscale images (clFFT), see "
            "eval_spectrum.csv.\n\nEvaluation took %.1f s.\n",
            a->checkpoint, o->netG, o->netD, a->segmenter, r->images, r->width, r->height, o->data.dataroot,
            r->miou, r->miou_real, r->accuracy, r->accuracy_real, r->feature_dim, r->frechet, r->spectral,
            r->spectral_high, r->classes_present, o->data.dontcare_value, r->seconds);
    if (clsynth_atomic_commit(&af, err))
        return -1;
    /* json, last: its presence marks a finished evaluation */
    snprintf(path, sizeof path, "%s/eval.json", dir);
    if (clsynth_atomic_open(&af, path, err))
        return -1;
    fprintf(af.f,
            "{\n  \"checkpoint\": \"%s\",\n  \"segmenter\": \"%s\",\n  \"dataroot\": \"%s\",\n"
            "  \"images\": %d,\n  \"height\": %d,\n  \"width\": %d,\n"
            "  \"miou\": %.6f,\n  \"pixel_accuracy\": %.6f,\n  \"miou_real\": %.6f,\n  \"pixel_accuracy_real\": %.6f,\n"
            "  \"classes_present\": %d,\n  \"segmenter_frechet_distance\": %.6f,\n  \"feature_dim\": %d,\n"
            "  \"spectral_distance\": %.6f,\n  \"spectral_distance_high\": %.6f,\n  \"seconds\": %.2f,\n"
            "  \"miou_convention\": \"mean over classes present in ground truth or prediction\"\n}\n",
            a->checkpoint, a->segmenter, o->data.dataroot, r->images, r->height, r->width, r->miou, r->accuracy,
            r->miou_real, r->accuracy_real, r->classes_present, r->frechet, r->feature_dim, r->spectral,
            r->spectral_high, r->seconds);
    return clsynth_atomic_commit(&af, err);
}

int clsynth_eval_run(clsynth_ctx *ctx, const clsynth_eval_args *a, clsynth_eval_result *r, clsynth_err *err)
{
    memset(r, 0, sizeof *r);
    double t0 = now_s();
    if (!a->checkpoint || !a->segmenter)
        return clsynth_fail(err, "eval: a model checkpoint and a segmenter are required");
    char dir[1200];
    if (a->out_dir) {
        snprintf(dir, sizeof dir, "%s", a->out_dir);
    } else {
        snprintf(dir, sizeof dir, "%s", a->checkpoint);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(dir, sizeof dir, ".");
    }
    if (clsynth_mkdirs(dir, err))
        return -1;
    clsynth_options o;
    clsynth_options_defaults(&o);
    if (clsynth_model_checkpoint_options(a->checkpoint, &o, err))
        return -1;
    if (a->dataroot)
        snprintf(o.data.dataroot, sizeof o.data.dataroot, "%s", a->dataroot);
    o.data.is_train = 0;
    eval_state s;
    memset(&s, 0, sizeof s);
    int rc = -1;
    const int batch = a->batch > 0 ? a->batch : 4;
    const int want_samples = a->samples > 0 ? a->samples : 4;
    if (clsynth_data_opts_finalize(&o.data, err))
        goto done;
    if (!(s.ds = clsynth_dataset_open(&o.data, err)))
        goto done;
    o.data = s.ds->opts;
    if (!(s.model = clsynth_model_create(ctx, &o, err)))
        goto done;
    if (clsynth_model_load(ctx, s.model, a->checkpoint, NULL, NULL, NULL, err))
        goto done;
    if (!(s.seg = clsynth_segmenter_load(ctx, a->segmenter))) {
        clsynth_fail(err, "%s", ctx->err.msg);
        goto done;
    }
    const int K = clsynth_segmenter_config(s.seg)->label_nc, F = clsynth_segmenter_feature_dim(s.seg);
    if (K != o.data.label_nc) {
        clsynth_fail(err, "segmenter %s has %d classes, the model %s %d", a->segmenter, K, a->checkpoint,
                     o.data.label_nc);
        goto done;
    }
    if (!(s.fft = clsynth_spectrum_create(ctx))) {
        clsynth_fail(err, "%s", ctx->err.msg);
        goto done;
    }
    if (clsynth_confusion_init(&s.conf_fake, K, o.data.dontcare_value, err) ||
        clsynth_confusion_init(&s.conf_real, K, o.data.dontcare_value, err) ||
        clsynth_feature_stats_init(&s.feat_fake, F, err) || clsynth_feature_stats_init(&s.feat_real, F, err))
        goto done;
    clsynth_loader_opts lo = { .batch_size = batch, .seed = 0, .shuffle = 0, .prefetch = 2 };
    if (!(s.loader = clsynth_loader_create(s.ds, &lo, err)))
        goto done;
    const bool with_edges = !o.data.no_instance;
    const bool tty = isatty(fileno(stdout));
    int total = a->max_images > 0 && a->max_images < s.ds->n ? a->max_images : s.ds->n;
    for (;;) {
        if (r->images >= total)
            break;
        const clsynth_batch *b;
        int got = clsynth_loader_next(s.loader, &b, err);
        if (got < 0)
            goto done;
        if (got == 0)
            break;
        int n = b->n < total - r->images ? b->n : total - r->images, h = b->h, w = b->w;
        size_t hw = (size_t)h * w;
        if (!s.spec_ready) {
            r->height = h;
            r->width = w;
            s.fake = malloc(sizeof(float) * batch * 3 * hw);
            s.logits = malloc(sizeof(float) * batch * K * hw);
            s.feats = malloc(sizeof(float) * batch * F);
            s.label_f = malloc(sizeof(float) * batch * hw);
            s.keep_label = malloc(sizeof(int32_t) * want_samples * hw);
            s.keep_real = malloc(sizeof(float) * want_samples * 3 * hw);
            s.keep_fake = malloc(sizeof(float) * want_samples * 3 * hw);
            if (!s.fake || !s.logits || !s.feats || !s.label_f || !s.keep_label || !s.keep_real || !s.keep_fake) {
                clsynth_fail(err, "out of memory for a batch of %d %dx%d images", batch, w, h);
                goto done;
            }
            if (clsynth_profile_init(&s.spec_fake, h, w, err) || clsynth_profile_init(&s.spec_real, h, w, err))
                goto done;
            s.spec_ready = 1;
        } else if (h != r->height || w != r->width) {
            clsynth_fail(err, "validation images change size (%dx%d, then %dx%d): use a cropping "
                         "--preprocess_mode", r->width, r->height, w, h);
            goto done;
        }
        for (size_t k = 0; k < (size_t)n * hw; k++)
            s.label_f[k] = (float)b->label[k];
        /* synthesize */
        clsynth_no_grad_begin(ctx);
        clsynth_tensor *tl = clsynth_tensor_from_host(ctx, "eval.labels", n, 1, h, w, s.label_f);
        clsynth_tensor *te = with_edges ? clsynth_tensor_from_host(ctx, "eval.edges", n, 1, h, w, b->edge) : NULL;
        clsynth_tensor *treal = clsynth_tensor_from_host(ctx, "eval.real", n, 3, h, w, b->image);
        clsynth_tensor *seg = clsynth_model_seg(ctx, s.model, tl, te);
        clsynth_tensor *y = clsynth_model_generate(ctx, s.model, seg, treal);
        int drc = y ? clsynth_tensor_download(ctx, y, s.fake) : -1;
        clsynth_no_grad_end(ctx);
        clsynth_release_activations(ctx);
        if (drc) {
            clsynth_fail(err, "synthesizing validation batch %lld: %s", (long long)b->step, ctx->err.msg);
            goto done;
        }
        /* score */
        if (score_images(ctx, &s, s.fake, b->label, n, h, w, &s.conf_fake, &s.feat_fake, err) ||
            score_images(ctx, &s, b->image, b->label, n, h, w, &s.conf_real, &s.feat_real, err))
            goto done;
        if (clsynth_spectrum_accumulate(s.fft, &s.spec_fake, s.fake, n, 3) ||
            clsynth_spectrum_accumulate(s.fft, &s.spec_real, b->image, n, 3)) {
            clsynth_fail(err, "spectrum: %s", ctx->err.msg);
            goto done;
        }
        for (int i = 0; i < n && s.kept < want_samples; i++, s.kept++) {
            memcpy(s.keep_label + s.kept * hw, b->label + i * hw, sizeof(int32_t) * hw);
            memcpy(s.keep_real + s.kept * 3 * hw, b->image + i * 3 * hw, sizeof(float) * 3 * hw);
            memcpy(s.keep_fake + s.kept * 3 * hw, s.fake + i * 3 * hw, sizeof(float) * 3 * hw);
        }
        r->images += n;
        if (!a->quiet && tty) {
            printf("\reval: %d/%d images (%.1f s)", r->images, total, now_s() - t0);
            fflush(stdout);
        }
    }
    if (!a->quiet)
        printf("%seval: %d images synthesized and scored (%.1f s)\n", tty ? "\r" : "", r->images, now_s() - t0);
    if (r->images < 2) {
        clsynth_fail(err, "eval: %d validation image(s); the Frechet distance needs at least 2", r->images);
        goto done;
    }
    r->miou = clsynth_miou(&s.conf_fake, CLSYNTH_MIOU_PRESENT, NULL, &r->classes_present);
    r->accuracy = clsynth_pixel_accuracy(&s.conf_fake);
    r->miou_real = clsynth_miou(&s.conf_real, CLSYNTH_MIOU_PRESENT, NULL, NULL);
    r->accuracy_real = clsynth_pixel_accuracy(&s.conf_real);
    r->feature_dim = F;
    if (clsynth_frechet_from_stats(&s.feat_real, &s.feat_fake, &r->frechet, err))
        goto done;
    int nb = s.spec_real.nbins;
    if (clsynth_spectral_distance(&s.spec_real, &s.spec_fake, 0, 0, &r->spectral, err) ||
        clsynth_spectral_distance(&s.spec_real, &s.spec_fake, nb / 2, nb, &r->spectral_high, err))
        goto done;
    r->seconds = now_s() - t0;
    if (write_outputs(a, dir, &s, r, &o, err))
        goto done;
    rc = 0;
done:
    eval_free(ctx, &s);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: clsynth eval (--name RUN [--checkpoints_dir DIR] | --checkpoint FILE) --segmenter FILE\n"
               "                    [--dataroot DIR] [--max_images N] [--batchSize B] [--samples N]\n"
               "                    [--results_dir DIR] [--device SPEC]\n");
}

int clsynth_cmd_eval(int argc, char **argv)
{
    const char *name = NULL, *ckdir = "./checkpoints", *ckpt = NULL, *device = NULL, *v = NULL;
    clsynth_eval_args a;
    memset(&a, 0, sizeof a);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        struct { const char *flag; const char **dst; } strs[] = {
            { "--name", &name }, { "--checkpoints_dir", &ckdir }, { "--checkpoint", &ckpt },
            { "--segmenter", &a.segmenter }, { "--dataroot", &a.dataroot }, { "--results_dir", &a.out_dir },
            { "--device", &device },
        };
        int m = 0;
        for (size_t k = 0; k < sizeof strs / sizeof strs[0] && !m; k++)
            m = clsynth_cli_value(argc, argv, &i, strs[k].flag, strs[k].dst);
        if (m > 0)
            continue;
        const char *flag = argv[i];
        if (m == 0 && (m = clsynth_cli_value(argc, argv, &i, "--max_images", &v)) > 0) {
            if (clsynth_cli_int("clsynth eval", flag, v, 0, 1000000000, &a.max_images))
                return 2;
        } else if (m == 0 && (m = clsynth_cli_value(argc, argv, &i, "--batchSize", &v)) > 0) {
            if (clsynth_cli_int("clsynth eval", flag, v, 1, 4096, &a.batch))
                return 2;
        } else if (m == 0 && (m = clsynth_cli_value(argc, argv, &i, "--samples", &v)) > 0) {
            if (clsynth_cli_int("clsynth eval", flag, v, 1, 64, &a.samples))
                return 2;
        }
        if (m < 0) {
            fprintf(stderr, "clsynth eval: %s needs a value\n", flag);
            return 2;
        }
        if (m == 0) {
            fprintf(stderr, "clsynth eval: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if ((!name && !ckpt) || !a.segmenter) {
        fprintf(stderr, "clsynth eval: --name or --checkpoint, and --segmenter are required\n");
        usage(stderr);
        return 2;
    }
    char path[1200];
    if (ckpt)
        snprintf(path, sizeof path, "%s", ckpt);
    else
        snprintf(path, sizeof path, "%s/%s/latest.ckpt", ckdir, name);
    a.checkpoint = path;
    clsynth_err err;
    clsynth_ctx *ctx = clsynth_ctx_create(device, &err);
    if (!ctx) {
        fprintf(stderr, "clsynth eval: %s\n", err.msg);
        return 1;
    }
    clsynth_eval_result r;
    int rc = clsynth_eval_run(ctx, &a, &r, &err);
    if (rc) {
        fprintf(stderr, "clsynth eval: %s\n", err.msg);
    } else {
        printf("images %d (%dx%d): mIoU %.4f, pixel accuracy %.4f (real: %.4f, %.4f); segmenter Frechet "
               "distance %.4f; spectral distance %.4f (high frequencies %.4f); %.1f s\n",
               r.images, r.width, r.height, r.miou, r.accuracy, r.miou_real, r.accuracy_real, r.frechet,
               r.spectral, r.spectral_high, r.seconds);
    }
    clsynth_ctx_free(ctx);
    return rc ? 1 : 0;
}
