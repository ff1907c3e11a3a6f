#include "tools/synthesize.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcore/autograd.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/dirlist.h"
#include "io/image.h"
#include "io/png.h"
#include "io/preprocess.h"
#include "tools/results.h"

static void stem_of(const char *path, char *out, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, len, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot)
        *dot = 0;
}

/* Finds dir/stem.{png,jpg,jpeg}; returns 1 when found. */
static int find_image(const char *dir, const char *stem, char *out, size_t len)
{
    static const char *ext[] = { ".png", ".jpg", ".jpeg", ".JPG" };
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        snprintf(out, len, "%s/%s%s", dir, stem, ext[i]);
        if (access(out, R_OK) == 0)
            return 1;
    }
    return 0;
}

/* Maps raw label values as the dataset mode does and checks their range. */
static int map_labels(const clsynth_options *o, const char *path, clsynth_idmap *lab, clsynth_err *err)
{
    bool ade = strcmp(o->data.dataset_mode, "ade20k") == 0;
    for (int y = 0; y < lab->h; y++)
        for (int x = 0; x < lab->w; x++) {
            int32_t *v = &lab->data[(size_t)y * lab->w + x];
            if (ade)
                *v = *v == 0 ? CLSYNTH_DONTCARE : *v - 1;
            if (*v >= 0 && *v < o->data.label_nc)
                continue;
            if (*v == CLSYNTH_DONTCARE)
                continue;
            return clsynth_fail(err, "%s: pixel (x %d, y %d) has label %d, outside [0, %d) and not the "
                                     "don't-care value 255", path, x, y, (int)*v, o->data.label_nc);
        }
    return 0;
}

/* <float_dir>/<stem>.f32.ckpt (see tools/synthesize.h). Tensors may be NULL. */
static int save_floats(clsynth_ctx *ctx, const clsynth_synth_dirs *d, const char *stem, const float *fake,
                       const float *labels, const float *edges, const float *real, clsynth_tensor *z,
                       clsynth_tensor *mu, clsynth_tensor *logvar, int h, int w, clsynth_err *err)
{
    char path[1600], config[1400];
    snprintf(path, sizeof path, "%s/%s.f32.ckpt", d->float_dir, stem);
    snprintf(config, sizeof config, "format=clsynth-test-float\ncheckpoint=%s\nz=%s\n",
             d->checkpoint ? d->checkpoint : "", !z ? "none" : mu ? "encoded" : "random");
    clsynth_ckpt_tensor_in t[7];
    int n = 0;
    t[n++] = (clsynth_ckpt_tensor_in){ "fake", "float", 4, { 1, 3, h, w }, fake };
    t[n++] = (clsynth_ckpt_tensor_in){ "labels", "float", 4, { 1, 1, h, w }, labels };
    if (edges)
        t[n++] = (clsynth_ckpt_tensor_in){ "edges", "float", 4, { 1, 1, h, w }, edges };
    if (real)
        t[n++] = (clsynth_ckpt_tensor_in){ "real", "float", 4, { 1, 3, h, w }, real };
    clsynth_tensor *vec[3] = { z, mu, logvar };
    const char *names[3] = { "z", "mu", "logvar" };
    float *host[3] = { NULL, NULL, NULL };
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (!vec[i])
            continue;
        host[i] = malloc(vec[i]->numel * sizeof(float));
        if (!host[i])
            rc = clsynth_fail(err, "out of memory");
        else if (clsynth_tensor_download(ctx, vec[i], host[i]))
            rc = clsynth_fail(err, "%s: %s", path, ctx->err.msg);
        else
            t[n++] = (clsynth_ckpt_tensor_in){ names[i], "float", 4, { 1, (int)vec[i]->numel, 1, 1 }, host[i] };
    }
    const uint64_t zero[4] = { 0, 0, 0, 0 };
    if (rc == 0)
        rc = clsynth_checkpoint_save(path, config, 0, zero, t, n, err);
    for (int i = 0; i < 3; i++)
        free(host[i]);
    return rc;
}

int clsynth_synthesize_folder(clsynth_ctx *ctx, clsynth_model *m, const clsynth_synth_dirs *d, clsynth_err *err)
{
    const clsynth_options *o = clsynth_model_options(m);
    clsynth_data_opts dopts = o->data;
    dopts.is_train = 0;
    clsynth_dirlist list;
    if (clsynth_dirlist_read(&list, d->label_dir, ".png", 0, err))
        return -1;
    if (list.n == 0) {
        clsynth_dirlist_free(&list);
        return clsynth_fail(err, "no label maps (*.png) in %s", d->label_dir);
    }
    clsynth_results *res = clsynth_results_open(d->results_dir, d->title, err);
    if (!res) {
        clsynth_dirlist_free(&list);
        return -1;
    }
    int written = 0, rc = 0, missing_images = 0;
    bool with_edges = !o->data.no_instance;
    for (int i = 0; i < list.n && rc == 0; i++) {
        clsynth_raw_sample s;
        memset(&s, 0, sizeof s);
        char stem[512], path[1600];
        stem_of(list.paths[i], stem, sizeof stem);
        bool has_real = false;
        float *image = NULL, *labels_f = NULL, *edge = NULL, *fake = NULL;
        int32_t *label = NULL;
        rc = clsynth_png_read_ids(list.paths[i], &s.label, err);
        if (rc == 0)
            rc = map_labels(o, list.paths[i], &s.label, err);
        bool found = rc == 0 && d->image_dir && find_image(d->image_dir, stem, path, sizeof path);
        if (rc == 0 && d->image_dir && !found) {
            fprintf(stderr, "clsynth: warning: %s: no image %s/%s.{png,jpg,jpeg} beside it; its grid row has no real "
                            "image\n", list.paths[i], d->image_dir, stem);
            missing_images++;
        }
        if (found) {
            rc = clsynth_image_read(path, &s.image, err);
            if (rc == 0)
                rc = clsynth_image_to_rgb(&s.image, err);
            if (rc == 0 && (s.image.w != s.label.w || s.image.h != s.label.h))
                rc = clsynth_fail(err, "image %s is %dx%d but label %s is %dx%d", path, s.image.w, s.image.h,
                                  list.paths[i], s.label.w, s.label.h);
            has_real = rc == 0;
        } else if (rc == 0) {
            rc = clsynth_image_alloc(&s.image, s.label.w, s.label.h, 3, err);
            if (rc == 0)
                memset(s.image.data, 0, (size_t)s.label.w * s.label.h * 3);
        }
        if (rc == 0 && with_edges && d->instance_dir) {
            snprintf(path, sizeof path, "%s/%s.png", d->instance_dir, stem);
            if (access(path, R_OK) == 0) {
                rc = clsynth_png_read_ids(path, &s.instance, err);
                if (rc == 0 && (s.instance.w != s.label.w || s.instance.h != s.label.h))
                    rc = clsynth_fail(err, "instance map %s is %dx%d but label %s is %dx%d", path, s.instance.w,
                                      s.instance.h, list.paths[i], s.label.w, s.label.h);
            }
        }
        clsynth_prep_params pp;
        int oh = 0, ow = 0;
        if (rc == 0) {
            clsynth_preprocess_params(&dopts, s.label.w, s.label.h, NULL, &pp);
            oh = pp.out_h;
            ow = pp.out_w;
            size_t hw = (size_t)oh * ow;
            image = malloc(hw * 3 * sizeof *image);
            label = malloc(hw * sizeof *label);
            labels_f = malloc(hw * sizeof *labels_f);
            edge = calloc(hw, sizeof *edge);
            fake = malloc(hw * 3 * sizeof *fake);
            if (!image || !label || !labels_f || !edge || !fake)
                rc = clsynth_fail(err, "out of memory");
        }
        if (rc == 0)
            rc = clsynth_preprocess_apply(&dopts, &pp, &s, image, label, edge, err);
        if (rc == 0) {
            for (size_t k = 0; k < (size_t)oh * ow; k++)
                labels_f[k] = (float)label[k];
            clsynth_no_grad_begin(ctx);
            clsynth_tensor *tl = clsynth_tensor_from_host(ctx, "labels", 1, 1, oh, ow, labels_f);
            clsynth_tensor *te = with_edges ? clsynth_tensor_from_host(ctx, "edges", 1, 1, oh, ow, edge) : NULL;
            bool encode = has_real && !d->z_random;
            clsynth_tensor *real = encode ? clsynth_tensor_from_host(ctx, "real", 1, 3, oh, ow, image) : NULL;
            clsynth_tensor *seg = clsynth_model_seg(ctx, m, tl, te);
            clsynth_tensor *z, *mu = NULL, *logvar = NULL;
            clsynth_tensor *y = clsynth_model_generate_z(ctx, m, seg, real, &z, &mu, &logvar);
            if (clsynth_tensor_download(ctx, y, fake))
                rc = clsynth_fail(err, "synthesizing %s: %s", list.paths[i], ctx->err.msg);
            if (rc == 0 && d->float_dir)
                rc = save_floats(ctx, d, stem, fake, labels_f, with_edges ? edge : NULL,
                                 encode && o->use_vae ? image : NULL, z, mu, logvar, oh, ow, err);
            clsynth_no_grad_end(ctx);
            clsynth_release_activations(ctx);
        }
        if (rc == 0)
            rc = clsynth_results_add(res, stem, oh, ow, label, fake, has_real ? image : NULL, err);
        if (rc == 0)
            written++;
        free(image);
        free(label);
        free(labels_f);
        free(edge);
        free(fake);
        clsynth_raw_sample_free(&s);
    }
    if (missing_images)
        fprintf(stderr, "clsynth: warning: %d of %d label maps have no image in %s\n", missing_images, list.n,
                d->image_dir);
    clsynth_dirlist_free(&list);
    if (clsynth_results_close(res, rc ? NULL : err) && rc == 0)
        rc = -1;
    return rc ? -1 : written;
}
