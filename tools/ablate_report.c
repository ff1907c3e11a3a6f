/* The ablation's outputs: OUT/ablation.csv, OUT/ablation.md and
 * OUT/ablation_grid.png (label | real | one column per variant). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"
#include "io/checkpoint.h"
#include "io/grid.h"
#include "io/image.h"
#include "io/png.h"
#include "tools/ablate.h"
#include "tools/numfile.h"

/* label | real | variant 1 | ... ; rows = the first samples of every run's eval_samples.ckpt. */
int clsynth_ablate_write_grid(const abl_config *c, const abl_row *done, const char *path, clsynth_err *err)
{
    clsynth_checkpoint *ck[ABL_MAX_VARIANTS] = { 0 };
    const abl_variant *vs[ABL_MAX_VARIANTS];
    int nv = 0, rows = 0, h = 0, w = 0, rc = -1;
    for (int k = 0; k < c->nv; k++)
        if (done[k].done)
            vs[nv++] = &c->v[k];
    if (nv == 0)
        return clsynth_fail(err, "no variant finished: no grid");
    for (int k = 0; k < nv; k++) {
        char p[1400];
        snprintf(p, sizeof p, "%s/runs/%s/eval_samples.ckpt", c->out, vs[k]->name);
        if (!(ck[k] = clsynth_checkpoint_load(p, err)))
            goto done;
        const clsynth_ckpt_tensor *f = clsynth_checkpoint_find(ck[k], "fake");
        if (!f || f->shape[1] != 3) {
            clsynth_fail(err, "%s: no (N, 3, H, W) tensor 'fake'", p);
            goto done;
        }
        if (k == 0) {
            rows = f->shape[0];
            h = f->shape[2];
            w = f->shape[3];
        } else if (f->shape[2] != h || f->shape[3] != w) {
            clsynth_fail(err, "%s: samples of %dx%d, the first variant's are %dx%d", p, f->shape[3], f->shape[2],
                         w, h);
            goto done;
        } else if (f->shape[0] < rows) {
            rows = f->shape[0];
        }
    }
    const clsynth_ckpt_tensor *lab = clsynth_checkpoint_find(ck[0], "label");
    const clsynth_ckpt_tensor *real = clsynth_checkpoint_find(ck[0], "real");
    if (!lab || !real) {
        clsynth_fail(err, "eval samples of %s lack 'label' or 'real'", vs[0]->name);
        goto done;
    }
    const int gap = 2, cols = 2 + nv;
    clsynth_image img;
    if (clsynth_image_alloc(&img, cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap, 3, err))
        goto done;
    memset(img.data, 128, (size_t)img.w * img.h * 3);
    size_t hw = (size_t)h * w;
    uint8_t *tile = malloc(hw * 3);
    int32_t *ids = malloc(hw * sizeof *ids);
    if (!tile || !ids) {
        free(tile);
        free(ids);
        clsynth_image_free(&img);
        clsynth_fail(err, "out of memory");
        goto done;
    }
    for (int r = 0; r < rows; r++)
        for (int col = 0; col < cols; col++) {
            if (col == 0) {
                for (size_t k = 0; k < hw; k++)
                    ids[k] = (int32_t)lab->data[r * hw + k];
                clsynth_label_colorize(ids, w, h, tile);
            } else {
                const float *src = col == 1 ? real->data + r * 3 * hw
                                            : clsynth_checkpoint_find(ck[col - 2], "fake")->data + r * 3 * hw;
                clsynth_chw_to_hwc_u8(src, 3, h, w, tile);
            }
            for (int y = 0; y < h; y++)
                memcpy(img.data + (((size_t)r * (h + gap) + y) * img.w + (size_t)col * (w + gap)) * 3,
                       tile + (size_t)y * w * 3, (size_t)w * 3);
        }
    free(tile);
    free(ids);
    rc = clsynth_png_write(path, &img, err);
    clsynth_image_free(&img);
done:
    for (int k = 0; k < nv; k++)
        clsynth_checkpoint_free(ck[k]);
    return rc;
}

int clsynth_ablate_write_tables(const abl_config *c, const char *config_path, const abl_row *rows, const char *seg_path,
                        const char *device_name, clsynth_err *err)
{
    char path[1200];
    double ceil_miou = NAN, ceil_acc = NAN;
    char seg_json[1200];
    snprintf(seg_json, sizeof seg_json, "%s.json", seg_path);
    clsynth_read_number(seg_json, "val_miou", &ceil_miou);
    clsynth_read_number(seg_json, "val_pixel_accuracy", &ceil_acc);
    clsynth_atomic_file af;
    snprintf(path, sizeof path, "%s/ablation.csv", c->out);
    if (clsynth_atomic_open(&af, path, err))
        return -1;
    fprintf(af.f, "variant,options,params_G,params_D,params_E,iterations,train_seconds,images,miou,pixel_accuracy,"
                  "segmenter_frechet_distance,spectral_distance,spectral_distance_high,miou_real,pixel_accuracy_real\n");
    for (int k = 0; k < c->nv; k++) {
        const abl_row *r = &rows[k];
        if (!r->done) {
            fprintf(af.f, "%s,\"%s\",failed\n", c->v[k].name, c->v[k].opts);
            continue;
        }
        fprintf(af.f, "%s,\"%s\",%ld,%ld,%ld,%ld,%.1f,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", c->v[k].name,
                c->v[k].opts, r->params_g, r->params_d, r->params_e, r->iterations, r->train_seconds, r->r.images,
                r->r.miou, r->r.accuracy, r->r.frechet, r->r.spectral, r->r.spectral_high, r->r.miou_real,
                r->r.accuracy_real);
    }
    if (clsynth_atomic_commit(&af, err))
        return -1;
    snprintf(path, sizeof path, "%s/ablation.md", c->out);
    if (clsynth_atomic_open(&af, path, err))
        return -1;
    fprintf(af.f, "# clsynth ablation\n\nConfig `%s`; data `%s`; device %s. Every variant: the same seed, data "
                  "and budget (common options `%s`).\n\n",
            config_path, c->dataroot, device_name, c->common);
    fprintf(af.f, "| variant | options | params G / D | iterations | train time (s) | mIoU | accuracy | "
                  "segmenter Frechet distance | spectral distance (all / high) |\n"
                  "|---|---|---|---|---|---|---|---|---|\n");
    const abl_row *first = NULL;
    for (int k = 0; k < c->nv; k++) {
        const abl_row *r = &rows[k];
        if (!r->done) {
            fprintf(af.f, "| %s | `%s` | failed: %s | | | | | | |\n", c->v[k].name,
                    c->v[k].opts[0] ? c->v[k].opts : "(full CC-FPSE)", r->error);
            continue;
        }
        if (!first)
            first = r;
        fprintf(af.f, "| %s | `%s` | %.2fM / %.2fM | %ld | %.0f | %.4f | %.4f | %.4f | %.4f / %.4f |\n",
                c->v[k].name, c->v[k].opts[0] ? c->v[k].opts : "(full CC-FPSE)", r->params_g / 1e6,
                r->params_d / 1e6, r->iterations, r->train_seconds, r->r.miou, r->r.accuracy, r->r.frechet,
                r->r.spectral, r->r.spectral_high);
    }
    if (!first) {
        fprintf(af.f, "\nNo variant finished.\n");
        return clsynth_atomic_commit(&af, err);
    }
    fprintf(af.f,
            "\nScores on %d validation images of %dx%d. Segmenter (`%s`) on the real validation images: mIoU "
            "%.4f, accuracy %.4f (the ceiling; on the same crops here: mIoU %.4f, accuracy %.4f).\n\n"
            "mIoU: mean over classes present in the ground truth or the prediction. The Frechet distance is "
            "measured in the evaluation segmenter's feature space (%d dims; not FID). Spectral distance: mean "
            "|log10 P_real(f) - log10 P_synth(f)| over radial frequency bins of the azimuthally averaged power "
            "spectra (clFFT), all bins / upper half. Lower is better for both distances.\n\n"
            "![variants side by side](ablation_grid.png)\n\nGrid columns: label, real image, then ",
            first->r.images, first->r.width, first->r.height, seg_path, ceil_miou, ceil_acc, first->r.miou_real,
            first->r.accuracy_real, first->r.feature_dim);
    const char *sep = "";
    for (int k = 0; k < c->nv; k++)
        if (rows[k].done) {
            fprintf(af.f, "%s%s", sep, c->v[k].name);
            sep = ", ";
        }
    fprintf(af.f, ".\n");
    return clsynth_atomic_commit(&af, err);
}

