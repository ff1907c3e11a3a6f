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
 * Options are split at blanks (no quoting). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clcore/autograd.h"
#include "clcore/context.h"
#include "io/atomic.h"
#include "io/checkpoint.h"
#include "io/grid.h"
#include "io/image.h"
#include "io/png.h"
#include "io/synth.h"
#include "nets/options.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/eval.h"
#include "tools/results.h"
#include "tools/train_loop.h"

#define ABL_MAX_VARIANTS 16
#define ABL_MAX_TOKENS 128

typedef struct abl_variant {
    char name[64];
    char opts[1024];
} abl_variant;

typedef struct abl_config {
    char out[1024];
    char dataroot[1024];
    int synth_train, synth_val, synth_w, synth_h;
    unsigned long long synth_seed;
    int has_synth;
    char common[2048];
    char segmenter[1024];
    char eval[512];
    abl_variant v[ABL_MAX_VARIANTS];
    int nv;
} abl_config;

typedef struct abl_row {
    int done;
    char error[512]; /* why the variant failed (done = 0) */
    long iterations;
    double train_seconds;
    long params_g, params_d, params_e;
    clsynth_eval_result r;
} abl_row;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

static int set_field(char *dst, size_t cap, const char *v, const char *path, int line, const char *key,
                     clsynth_err *err)
{
    if (strlen(v) >= cap)
        return clsynth_fail(err, "%s:%d: the value of '%s' is too long (at most %zu characters)", path, line, key,
                            cap - 1);
    snprintf(dst, cap, "%s", v);
    return 0;
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

static int parse_config(const char *path, abl_config *c, clsynth_err *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->out, sizeof c->out, "ablation");
    FILE *f = fopen(path, "r");
    if (!f)
        return clsynth_fail(err, "cannot read config %s: %s", path, strerror(errno));
    char buf[4096];
    int line = 0, rc = 0;
    while (!rc && fgets(buf, sizeof buf, f)) {
        line++;
        if (!strchr(buf, '\n') && !feof(f)) {
            rc = clsynth_fail(err, "%s:%d: line too long", path, line);
            break;
        }
        char *s = trim(buf);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = clsynth_fail(err, "%s:%d: expected 'key = value', got '%s'", path, line, s);
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        if (strcmp(key, "out") == 0) {
            rc = set_field(c->out, sizeof c->out, val, path, line, key, err);
        } else if (strcmp(key, "dataroot") == 0) {
            rc = set_field(c->dataroot, sizeof c->dataroot, val, path, line, key, err);
        } else if (strcmp(key, "common") == 0) {
            rc = set_field(c->common, sizeof c->common, val, path, line, key, err);
        } else if (strcmp(key, "segmenter") == 0) {
            rc = set_field(c->segmenter, sizeof c->segmenter, val, path, line, key, err);
        } else if (strcmp(key, "eval") == 0) {
            rc = set_field(c->eval, sizeof c->eval, val, path, line, key, err);
        } else if (strcmp(key, "synth") == 0) {
            if (sscanf(val, "%d %d %dx%d %llu", &c->synth_train, &c->synth_val, &c->synth_h, &c->synth_w,
                       &c->synth_seed) != 5 ||
                c->synth_train < 1 || c->synth_val < 1 || c->synth_w < 16 || c->synth_h < 16)
                rc = clsynth_fail(err, "%s:%d: synth = TRAIN VAL HxW SEED (counts >= 1, sides >= 16), got '%s'",
                                  path, line, val);
            c->has_synth = 1;
        } else if (strncmp(key, "variant", 7) == 0 && (key[7] == ' ' || key[7] == '\t')) {
            char *name = trim(key + 7);
            if (!valid_name(name) || strlen(name) >= sizeof c->v[0].name) {
                rc = clsynth_fail(err, "%s:%d: variant name '%s' (letters, digits, '_' and '-', at most 63)", path,
                                  line, name);
                break;
            }
            if (c->nv == ABL_MAX_VARIANTS) {
                rc = clsynth_fail(err, "%s:%d: more than %d variants", path, line, ABL_MAX_VARIANTS);
                break;
            }
            for (int k = 0; k < c->nv; k++)
                if (strcmp(c->v[k].name, name) == 0)
                    rc = clsynth_fail(err, "%s:%d: variant '%s' defined twice", path, line, name);
            if (rc)
                break;
            snprintf(c->v[c->nv].name, sizeof c->v[0].name, "%s", name);
            rc = set_field(c->v[c->nv].opts, sizeof c->v[0].opts, val, path, line, name, err);
            c->nv++;
        } else {
            rc = clsynth_fail(err, "%s:%d: unknown key '%s' (out, dataroot, synth, common, segmenter, eval, "
                              "variant NAME)", path, line, key);
        }
    }
    fclose(f);
    if (!rc && !c->dataroot[0])
        rc = clsynth_fail(err, "%s: 'dataroot' is required", path);
    if (!rc && c->nv == 0)
        rc = clsynth_fail(err, "%s: no 'variant NAME = OPTIONS' line", path);
    return rc;
}

/* Splits s (modified) at blanks into tok[*n...]. */
static int tokenize(char *s, char **tok, int *n, clsynth_err *err)
{
    for (char *p = strtok(s, " \t"); p; p = strtok(NULL, " \t")) {
        if (*n >= ABL_MAX_TOKENS)
            return clsynth_fail(err, "more than %d option words", ABL_MAX_TOKENS);
        tok[(*n)++] = p;
    }
    return 0;
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static int write_text(const char *path, const char *text, clsynth_err *err)
{
    clsynth_atomic_file af;
    if (clsynth_atomic_open(&af, path, err))
        return -1;
    fputs(text, af.f);
    return clsynth_atomic_commit(&af, err);
}

/* Reads "key value" or "key=value" numbers from a small text file. */
static int read_number(const char *path, const char *key, double *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    size_t kl = strlen(key);
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '"')
            p++;
        if (strncmp(p, key, kl) != 0)
            continue;
        p += kl;
        if (*p == '"')
            p++;
        if (*p != ' ' && *p != '=' && *p != ':')
            continue;
        while (*p == ' ' || *p == '=' || *p == ':')
            p++;
        char *end;
        double v = strtod(p, &end);
        if (end != p) {
            *out = v;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int load_eval_json(const char *path, clsynth_eval_result *r)
{
    double v[12];
    static const char *keys[12] = { "images", "height", "width", "miou", "pixel_accuracy", "miou_real",
                                    "pixel_accuracy_real", "classes_present", "segmenter_frechet_distance",
                                    "feature_dim", "spectral_distance", "spectral_distance_high" };
    for (int k = 0; k < 12; k++)
        if (read_number(path, keys[k], &v[k]))
            return -1;
    memset(r, 0, sizeof *r);
    r->images = (int)v[0];
    r->height = (int)v[1];
    r->width = (int)v[2];
    r->miou = v[3];
    r->accuracy = v[4];
    r->miou_real = v[5];
    r->accuracy_real = v[6];
    r->classes_present = (int)v[7];
    r->frechet = v[8];
    r->feature_dim = (int)v[9];
    r->spectral = v[10];
    r->spectral_high = v[11];
    read_number(path, "seconds", &r->seconds);
    return 0;
}

/* ---- stages ---- */

static int ensure_data(const abl_config *c, clsynth_err *err)
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

static int ensure_segmenter(const abl_config *c, const char *device, const char *seg_path, clsynth_err *err)
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
    if (tokenize(opts, argv, &n, err))
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

static int run_variant(clsynth_ctx *ctx, const abl_config *c, const abl_variant *v, const char *seg_path,
                       abl_row *row, int *stopped, clsynth_err *err)
{
    char run_dir[1200], path[1400], done_path[1400], eval_path[1400];
    snprintf(run_dir, sizeof run_dir, "%s/runs/%s", c->out, v->name);
    snprintf(done_path, sizeof done_path, "%s/train_done.txt", run_dir);
    snprintf(eval_path, sizeof eval_path, "%s/eval.json", run_dir);
    memset(row, 0, sizeof *row);
    if (file_exists(eval_path) && file_exists(done_path)) {
        double it = 0, s = 0;
        read_number(done_path, "iterations", &it);
        read_number(done_path, "seconds", &s);
        row->iterations = (long)it;
        row->train_seconds = s;
        if (load_eval_json(eval_path, &row->r))
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
            if (tokenize(words, argv, &n, err))
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
                read_number(prog_path, "seconds", &before);
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
        read_number(done_path, "iterations", &it);
        read_number(done_path, "seconds", &s);
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
        if (tokenize(ev, tok, &nt, err))
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
    read_number(path, "G", &g);
    read_number(path, "D", &d);
    read_number(path, "E", &e);
    row->params_g = (long)g;
    row->params_d = (long)d;
    row->params_e = (long)e;
    row->done = 1;
    printf("   %s: mIoU %.4f, accuracy %.4f, Frechet %.4f, spectral %.4f (high %.4f)\n", v->name, row->r.miou,
           row->r.accuracy, row->r.frechet, row->r.spectral, row->r.spectral_high);
    return 0;
}

/* label | real | variant 1 | ... ; rows = the first samples of every run's eval_samples.ckpt. */
static int write_grid(const abl_config *c, const abl_row *done, const char *path, clsynth_err *err)
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

static int write_tables(const abl_config *c, const char *config_path, const abl_row *rows, const char *seg_path,
                        const char *device_name, clsynth_err *err)
{
    char path[1200];
    double ceil_miou = NAN, ceil_acc = NAN;
    char seg_json[1200];
    snprintf(seg_json, sizeof seg_json, "%s.json", seg_path);
    read_number(seg_json, "val_miou", &ceil_miou);
    read_number(seg_json, "val_pixel_accuracy", &ceil_acc);
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
    if (parse_config(config, &c, &err)) {
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
    if (clsynth_mkdirs(runs, &err) || ensure_data(&c, &err) || ensure_segmenter(&c, device, seg_path, &err)) {
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
        if (run_variant(ctx, &c, &c.v[k], seg_path, &rows[k], &stopped, &err)) {
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
    if (write_tables(&c, config, rows, seg_path, ctx->dev.name, &err) || write_grid(&c, rows, grid, &err)) {
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
