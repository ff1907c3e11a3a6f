/* Option table, presets, parsing and the key=value text form. */
#include "nets/options.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nets/layers.h"

typedef enum opt_type {
    OT_INT,      /* int, range lo..hi */
    OT_LONG,     /* long, range lo..hi */
    OT_FLOAT,    /* float */
    OT_DOUBLE,   /* double */
    OT_BOOL,     /* bool switch */
    OT_IBOOL,    /* int switch (io layer fields) */
    OT_TRI,      /* int switch with -1 = default */
    OT_STR,      /* char[size] */
    OT_CHOICE,   /* char[size], one of choices */
    OT_PREPROC,  /* clsynth_preprocess_mode */
    OT_PHASE,    /* data.is_train from "train" / "test" */
} opt_type;

typedef struct opt_def {
    const char *name;
    opt_type type;
    size_t off;
    size_t size;            /* strings */
    double lo, hi;          /* numbers */
    const char *choices;    /* OT_CHOICE: "a|b|c" */
    bool variant;           /* defines the networks (checkpoint compatibility) */
    const char *help;
} opt_def;

#define OFF(f) offsetof(clsynth_options, f)
#define SZ(f) sizeof(((clsynth_options *)0)->f)

static const opt_def OPTS[] = {
    { "preset", OT_CHOICE, OFF(preset), SZ(preset), 0, 0, "tiny|small|paper", false,
      "configuration preset, applied before the other flags" },
    /* data */
    { "dataset_mode", OT_STR, OFF(data.dataset_mode), SZ(data.dataset_mode), 0, 0, NULL, false,
      "custom|cityscapes|ade20k|coco" },
    { "dataroot", OT_STR, OFF(data.dataroot), SZ(data.dataroot), 0, 0, NULL, false, "dataset folder" },
    { "label_dir", OT_STR, OFF(data.label_dir), SZ(data.label_dir), 0, 0, NULL, false, "custom: label maps" },
    { "image_dir", OT_STR, OFF(data.image_dir), SZ(data.image_dir), 0, 0, NULL, false, "custom: images" },
    { "instance_dir", OT_STR, OFF(data.instance_dir), SZ(data.instance_dir), 0, 0, NULL, false,
      "custom: instance maps" },
    { "label_nc", OT_INT, OFF(data.label_nc), 0, 0, 255, NULL, true, "number of classes (0 = dataset's)" },
    { "contain_dontcare_label", OT_TRI, OFF(contain_dontcare_label), 0, 0, 0, NULL, true,
      "add a channel for the don't-care label 255" },
    { "no_instance", OT_IBOOL, OFF(data.no_instance), 0, 0, 0, NULL, true, "no instance-edge channel" },
    { "preprocess_mode", OT_PREPROC, OFF(data.preprocess_mode), 0, 0, 0, NULL, false,
      "resize_and_crop|scale_width_and_crop|scale_width|fixed|none" },
    { "load_size", OT_INT, OFF(data.load_size), 0, 0, 16384, NULL, false, "resize to this size first" },
    { "crop_size", OT_INT, OFF(data.crop_size), 0, 0, 16384, NULL, false, "crop (image width)" },
    { "aspect_ratio", OT_FLOAT, OFF(data.aspect_ratio), 0, 0, 16, NULL, false, "image W/H" },
    { "no_flip", OT_IBOOL, OFF(data.no_flip), 0, 0, 0, NULL, false, "no random horizontal flip" },
    { "phase", OT_PHASE, OFF(data.is_train), 0, 0, 0, NULL, false, "train|test" },
    { "dontcare_value", OT_INT, OFF(data.dontcare_value), 0, 0, 255, NULL, false,
      "label value of don't-care pixels" },
    /* generator */
    { "netG", OT_CHOICE, OFF(netG), SZ(netG), 0, 0, "condconv|spade", true, "generator" },
    { "ngf", OT_INT, OFF(ngf), 0, 1, 1024, NULL, true, "generator width" },
    { "nef", OT_INT, OFF(nef), 0, 0, 1024, NULL, true, "VAE encoder width (0 = --ngf, as the authors)" },
    { "z_dim", OT_INT, OFF(z_dim), 0, 1, 4096, NULL, true, "VAE latent size" },
    { "nhidden", OT_INT, OFF(nhidden), 0, 1, 1024, NULL, true,
      "hidden width of weight-prediction / SPADE nets" },
    { "num_upsampling_layers", OT_CHOICE, OFF(num_upsampling_layers), SZ(num_upsampling_layers), 0, 0,
      "normal|more", true, "generator depth" },
    { "use_vae", OT_BOOL, OFF(use_vae), 0, 0, 0, NULL, true, "image encoder + KL loss" },
    { "no_pyramid", OT_BOOL, OFF(no_pyramid), 0, 0, 0, NULL, true, "weight prediction without top-down" },
    { "no_cond_attention", OT_BOOL, OFF(no_cond_attention), 0, 0, 0, NULL, true,
      "CC blocks without attention gates" },
    { "norm_G", OT_STR, OFF(norm_G), SZ(norm_G), 0, 0, NULL, true, "generator normalization" },
    { "norm_E", OT_STR, OFF(norm_E), SZ(norm_E), 0, 0, NULL, true, "encoder normalization" },
    /* discriminator */
    { "netD", OT_CHOICE, OFF(netD), SZ(netD), 0, 0, "fpse|multiscale", true, "discriminator" },
    { "ndf", OT_INT, OFF(ndf), 0, 1, 1024, NULL, true, "discriminator width" },
    { "num_D", OT_INT, OFF(num_D), 0, 1, 8, NULL, true, "multiscale: discriminators" },
    { "n_layers_D", OT_INT, OFF(n_layers_D), 0, 1, 8, NULL, true, "multiscale: layers" },
    { "no_semantic_embedding", OT_BOOL, OFF(no_semantic_embedding), 0, 0, 0, NULL, true,
      "fpse without semantic embedding" },
    { "no_d_pyramid", OT_BOOL, OFF(no_d_pyramid), 0, 0, 0, NULL, true, "fpse without top-down" },
    { "fpse_plain_enc1", OT_BOOL, OFF(fpse_plain_enc1), 0, 0, 0, NULL, true,
      "deviation: fpse enc1 without instance norm (D sees colour/contrast)" },
    { "norm_D", OT_STR, OFF(norm_D), SZ(norm_D), 0, 0, NULL, true, "discriminator normalization" },
    /* losses */
    { "lambda_feat", OT_FLOAT, OFF(lambda_feat), 0, 0, 1e6, NULL, false, "feature matching weight" },
    { "lambda_kld", OT_FLOAT, OFF(lambda_kld), 0, 0, 1e6, NULL, false, "KL weight" },
    { "lambda_vgg", OT_FLOAT, OFF(lambda_vgg), 0, 0, 1e6, NULL, false, "VGG loss weight" },
    { "vgg_weights", OT_STR, OFF(vgg_weights), SZ(vgg_weights), 0, 0, NULL, false,
      "VGG19 weights file (tools/convert_vgg19.py)" },
    { "no_vgg_loss", OT_BOOL, OFF(no_vgg_loss), 0, 0, 0, NULL, false, "skip the VGG loss" },
    { "no_ganFeat_loss", OT_BOOL, OFF(no_ganFeat_loss), 0, 0, 0, NULL, false, "skip feature matching" },
    /* optimization */
    { "batchSize", OT_INT, OFF(batchSize), 0, 1, 4096, NULL, false, "batch size" },
    { "niter", OT_INT, OFF(niter), 0, 0, 1000000, NULL, false, "epochs at the initial lr" },
    { "niter_decay", OT_INT, OFF(niter_decay), 0, 0, 1000000, NULL, false, "epochs of linear decay" },
    { "lr", OT_FLOAT, OFF(lr), 0, 0, 10, NULL, false, "base learning rate" },
    { "beta1", OT_FLOAT, OFF(beta1), 0, -1, 0.999999, NULL, false,
      "Adam beta1 (-1 = the authors': 0 under TTUR, 0.5 with --no_TTUR)" },
    { "beta2", OT_FLOAT, OFF(beta2), 0, -1, 0.999999999, NULL, false,
      "Adam beta2 (-1 = the authors': 0.9 under TTUR, 0.999 with --no_TTUR)" },
    { "no_TTUR", OT_BOOL, OFF(no_TTUR), 0, 0, 0, NULL, false, "same lr for G and D" },
    { "seed", OT_LONG, OFF(seed), 0, 0, 9.2e18, NULL, false, "random seed" },
    { "half_activations", OT_BOOL, OFF(half_activations), 0, 0, 0, NULL, false,
      "store the activations the backward reads as half precision, scaled per 16 values (compute and "
      "gradients stay float, within about 1e-3 of float): a lower training peak for slower steps; only on "
      "a device that reports cl_khr_fp16" },
    /* run */
    { "device", OT_STR, OFF(device), SZ(device), 0, 0, NULL, false, "OpenCL device (index or name)" },
    { "name", OT_STR, OFF(name), SZ(name), 0, 0, NULL, false, "experiment name" },
    { "checkpoints_dir", OT_STR, OFF(checkpoints_dir), SZ(checkpoints_dir), 0, 0, NULL, false,
      "where experiments are saved" },
    { "continue_train", OT_BOOL, OFF(continue_train), 0, 0, 0, NULL, false, "resume from a checkpoint" },
    { "which_epoch", OT_STR, OFF(which_epoch), SZ(which_epoch), 0, 0, NULL, false,
      "checkpoint to resume from: latest, or N for iter_N.ckpt" },
    { "overwrite", OT_BOOL, OFF(overwrite), 0, 0, 0, NULL, false,
      "start over in a run folder that holds checkpoints (the old run is moved aside)" },
    { "display_freq", OT_INT, OFF(display_freq), 0, 1, 1e9, NULL, false, "iterations between samples" },
    { "print_freq", OT_INT, OFF(print_freq), 0, 1, 1e9, NULL, false, "iterations between loss lines" },
    { "save_latest_freq", OT_INT, OFF(save_latest_freq), 0, 1, 1e9, NULL, false,
      "iterations between checkpoints" },
    { "max_iters", OT_LONG, OFF(max_iters), 0, 0, 9.2e18, NULL, false, "stop after this many (0: no limit)" },
    { "time_budget", OT_DOUBLE, OFF(time_budget), 0, 0, 1e9, NULL, false,
      "stop after this many seconds (0: no limit)" },
    { "autotune", OT_DOUBLE, OFF(autotune), 0, 0, 1e9, NULL, false,
      "after the first iteration tune the kernels of its shapes for up to this many seconds, then train on "
      "(saved in the tuning database: a second run does not tune again; 0: off)" },
};
#define N_OPTS ((int)(sizeof OPTS / sizeof OPTS[0]))

void clsynth_options_defaults(clsynth_options *o)
{
    memset(o, 0, sizeof *o);
    clsynth_data_opts_init(&o->data);
    o->contain_dontcare_label = -1;
    snprintf(o->netG, sizeof o->netG, "condconv");
    o->ngf = 64;
    o->nef = 0; /* = ngf */
    o->z_dim = 256;
    o->nhidden = 128;
    snprintf(o->num_upsampling_layers, sizeof o->num_upsampling_layers, "normal");
    snprintf(o->norm_G, sizeof o->norm_G, "spectralspadesyncbatch3x3");
    snprintf(o->norm_E, sizeof o->norm_E, "spectralinstance");
    snprintf(o->netD, sizeof o->netD, "fpse");
    o->ndf = 64;
    o->num_D = 2;
    o->n_layers_D = 4;
    snprintf(o->norm_D, sizeof o->norm_D, "spectralinstance");
    o->lambda_feat = 10.0f;
    o->lambda_kld = 0.05f;
    o->lambda_vgg = 10.0f;
    o->batchSize = 1;
    o->niter = 50;
    o->niter_decay = 0;
    o->lr = 0.0002f;
    o->beta1 = -1.0f; /* the authors' choice, see clsynth_options_adam_betas */
    o->beta2 = -1.0f;
    o->seed = 0;
    snprintf(o->name, sizeof o->name, "experiment");
    snprintf(o->checkpoints_dir, sizeof o->checkpoints_dir, "./checkpoints");
    snprintf(o->which_epoch, sizeof o->which_epoch, "latest");
    o->display_freq = 100;
    o->print_freq = 100;
    o->save_latest_freq = 5000;
}

int clsynth_options_preset(clsynth_options *o, const char *name, clsynth_err *err)
{
    if (strcmp(name, "tiny") == 0) {
        o->data.crop_size = 64;
        o->data.load_size = 64;
        o->data.aspect_ratio = 1.0f;
        o->ngf = 8;
        o->ndf = 16;
        o->z_dim = 64;
        o->nhidden = 16;
        o->batchSize = 2;
        snprintf(o->num_upsampling_layers, sizeof o->num_upsampling_layers, "normal");
    } else if (strcmp(name, "small") == 0) {
        o->data.crop_size = 128;
        o->data.load_size = 144;
        o->data.aspect_ratio = 1.0f;
        o->ngf = 32;
        o->ndf = 32;
        o->z_dim = 128;
        o->nhidden = 64;
        o->batchSize = 4;
        snprintf(o->num_upsampling_layers, sizeof o->num_upsampling_layers, "normal");
    } else if (strcmp(name, "paper") == 0) {
        o->ngf = 64;
        o->ndf = 64;
        o->z_dim = 256;
        o->nhidden = 128;
        o->batchSize = 8;
        o->niter = 100;
        o->niter_decay = 100;
        if (strcmp(o->data.dataset_mode, "cityscapes") == 0) {
            o->data.crop_size = 512;
            o->data.load_size = 512;
            o->data.aspect_ratio = 2.0f;
            snprintf(o->num_upsampling_layers, sizeof o->num_upsampling_layers, "more");
        } else {
            o->data.crop_size = 256;
            o->data.load_size = 286;
            o->data.aspect_ratio = 1.0f;
            snprintf(o->num_upsampling_layers, sizeof o->num_upsampling_layers, "normal");
        }
    } else {
        return clsynth_fail(err, "--preset: unknown preset '%s' (tiny, small, paper)", name);
    }
    snprintf(o->preset, sizeof o->preset, "%s", name);
    return 0;
}

static const opt_def *find_opt(const char *name, size_t len)
{
    for (int i = 0; i < N_OPTS; i++)
        if (strlen(OPTS[i].name) == len && strncmp(OPTS[i].name, name, len) == 0)
            return &OPTS[i];
    return NULL;
}

static bool is_switch(const opt_def *d)
{
    return d->type == OT_BOOL || d->type == OT_IBOOL || d->type == OT_TRI;
}

static int parse_bool_value(const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "yes")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "no")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static bool choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

static int set_opt(clsynth_options *o, const opt_def *d, const char *v, clsynth_err *err)
{
    char *base = (char *)o;
    void *field = base + d->off;
    char *end = NULL;
    switch (d->type) {
    case OT_INT:
    case OT_LONG: {
        if (!v)
            return clsynth_fail(err, "--%s needs a value", d->name);
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || (double)x < d->lo || (double)x > d->hi)
            return clsynth_fail(err, "--%s: '%s' is not an integer in [%.0f, %.0f]", d->name, v, d->lo,
                                d->hi);
        if (d->type == OT_INT)
            *(int *)field = (int)x;
        else
            *(long *)field = (long)x;
        return 0;
    }
    case OT_FLOAT:
    case OT_DOUBLE: {
        if (!v)
            return clsynth_fail(err, "--%s needs a value", d->name);
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x) || x < d->lo || x > d->hi)
            return clsynth_fail(err, "--%s: '%s' is not a number in [%g, %g]", d->name, v, d->lo, d->hi);
        if (d->type == OT_FLOAT)
            *(float *)field = (float)x;
        else
            *(double *)field = x;
        return 0;
    }
    case OT_BOOL:
    case OT_IBOOL:
    case OT_TRI: {
        int b = 1;
        if (v) {
            if (d->type == OT_TRI && strcmp(v, "-1") == 0)
                b = -1;
            else if (parse_bool_value(v, &b))
                return clsynth_fail(err, "--%s: '%s' is not a switch value (0 or 1)", d->name, v);
        }
        if (d->type == OT_BOOL)
            *(bool *)field = b != 0;
        else
            *(int *)field = b;
        return 0;
    }
    case OT_STR:
    case OT_CHOICE:
        if (!v)
            return clsynth_fail(err, "--%s needs a value", d->name);
        if (d->type == OT_CHOICE && !(choice_ok(d->choices, v) || (d->off == OFF(preset) && !*v)))
            return clsynth_fail(err, "--%s: '%s' is not one of %s", d->name, v, d->choices);
        if (strlen(v) >= d->size)
            return clsynth_fail(err, "--%s: '%.60s...' is longer than %zu characters", d->name, v,
                                d->size - 1);
        if (strchr(v, '\n'))
            return clsynth_fail(err, "--%s: the value contains a newline", d->name);
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case OT_PREPROC: {
        if (!v)
            return clsynth_fail(err, "--%s needs a value", d->name);
        clsynth_preprocess_mode m;
        if (!*v || strcmp(v, "unset") == 0) {
            *(clsynth_preprocess_mode *)field = CLSYNTH_PRE_UNSET;
            return 0;
        }
        if (clsynth_preprocess_mode_parse(v, &m))
            return clsynth_fail(err, "--%s: '%s' is not one of %s", d->name, v, d->help);
        *(clsynth_preprocess_mode *)field = m;
        return 0;
    }
    case OT_PHASE:
        if (!v)
            return clsynth_fail(err, "--%s needs a value", d->name);
        if (strcmp(v, "train") == 0)
            *(int *)field = 1;
        else if (strcmp(v, "test") == 0 || strcmp(v, "val") == 0)
            *(int *)field = 0;
        else
            return clsynth_fail(err, "--%s: '%s' is not train or test", d->name, v);
        return 0;
    }
    return clsynth_fail(err, "--%s: internal option type error", d->name);
}

int clsynth_options_set(clsynth_options *o, const char *name, const char *value, clsynth_err *err)
{
    const opt_def *d = find_opt(name, strlen(name));
    if (!d)
        return clsynth_fail(err, "unknown option '--%s'", name);
    if (d->off == OFF(preset)) {
        if (!value)
            return clsynth_fail(err, "--preset needs a value");
        if (!*value) {
            o->preset[0] = '\0';
            return 0;
        }
        return clsynth_options_preset(o, value, err);
    }
    return set_opt(o, d, value, err);
}

/* Splits argv[*i] ("--name", "--name=value") into a definition and a value,
 * taking the next argument as the value of a non-switch; advances *i. */
static int next_arg(int argc, char **argv, int *i, const opt_def **d, const char **value,
                    clsynth_err *err)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0)
        return clsynth_fail(err, "unexpected argument '%s' (options start with --)", a);
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    *d = find_opt(name, len);
    if (!*d)
        return clsynth_fail(err, "unknown option '%.*s'", (int)len + 2, a);
    if (eq) {
        *value = eq + 1;
    } else if (is_switch(*d)) {
        *value = NULL;
    } else {
        if (*i + 1 >= argc)
            return clsynth_fail(err, "--%s needs a value", (*d)->name);
        if (strncmp(argv[*i + 1], "--", 2) == 0) /* the next option, not this one's value */
            return clsynth_fail(err, "--%s needs a value ('%s' is the next option; write --%s=%s for a value "
                                     "that starts with --)", (*d)->name, argv[*i + 1], (*d)->name, argv[*i + 1]);
        *value = argv[++*i];
    }
    return 0;
}

int clsynth_options_parse(clsynth_options *o, int argc, char **argv, clsynth_err *err)
{
    /* pass 1: --dataset_mode (the paper preset depends on it), then --preset */
    const char *preset = NULL;
    for (int i = 0; i < argc; i++) {
        const opt_def *d;
        const char *v;
        if (next_arg(argc, argv, &i, &d, &v, err))
            return -1;
        if (d->off == OFF(data.dataset_mode) && set_opt(o, d, v, err))
            return -1;
        if (d->off == OFF(preset))
            preset = v;
    }
    if (preset && clsynth_options_set(o, "preset", preset, err))
        return -1;
    /* pass 2: every flag in order */
    for (int i = 0; i < argc; i++) {
        const opt_def *d;
        const char *v;
        if (next_arg(argc, argv, &i, &d, &v, err))
            return -1;
        if (d->off == OFF(preset))
            continue;
        if (set_opt(o, d, v, err))
            return -1;
    }
    return clsynth_options_validate(o, err);
}

int clsynth_options_dontcare(const clsynth_options *o)
{
    if (o->contain_dontcare_label >= 0)
        return o->contain_dontcare_label ? 1 : 0;
    return strcmp(o->data.dataset_mode, "coco") == 0 || strcmp(o->data.dataset_mode, "ade20k") == 0;
}

int clsynth_options_semantic_nc(const clsynth_options *o)
{
    return o->data.label_nc + clsynth_options_dontcare(o) + (o->data.no_instance ? 0 : 1);
}

int clsynth_options_num_up(const clsynth_options *o)
{
    return strcmp(o->num_upsampling_layers, "more") == 0 ? 6 : 5;
}

void clsynth_options_image_size(const clsynth_options *o, int *h, int *w)
{
    float ar = o->data.aspect_ratio > 0 ? o->data.aspect_ratio : 1.0f;
    *w = o->data.crop_size;
    *h = (int)lroundf((float)o->data.crop_size / ar);
}

void clsynth_options_lr(const clsynth_options *o, int epoch, float *lr_g, float *lr_d)
{
    double lr = o->lr;
    int k = epoch - 1 - o->niter;
    if (k > 0 && o->niter_decay > 0) {
        double f = 1.0 - (double)k / o->niter_decay;
        lr *= f > 0 ? f : 0;
    } else if (k > 0) {
        lr = o->lr; /* no decay phase */
    }
    if (o->no_TTUR) {
        *lr_g = *lr_d = (float)lr;
    } else {
        *lr_g = (float)(lr / 2);
        *lr_d = (float)(lr * 2);
    }
}

void clsynth_options_adam_betas(const clsynth_options *o, float *beta1, float *beta2)
{
    *beta1 = o->beta1 >= 0 ? o->beta1 : o->no_TTUR ? 0.5f : 0.0f;
    *beta2 = o->beta2 >= 0 ? o->beta2 : o->no_TTUR ? 0.999f : 0.9f;
}

int clsynth_options_encoder_width(const clsynth_options *o) { return o->nef > 0 ? o->nef : o->ngf; }

int clsynth_options_validate(const clsynth_options *o, clsynth_err *err)
{
    if ((o->beta1 < 0 && o->beta1 != -1.0f) || (o->beta2 < 0 && o->beta2 != -1.0f))
        return clsynth_fail(err, "--beta1 %g / --beta2 %g: a beta is in [0, 1), or -1 for the authors' choice",
                            o->beta1, o->beta2);
    clsynth_norm_cfg nc;
    if (clsynth_norm_parse(o->norm_G, "--norm_G", &nc, err) || clsynth_norm_parse(o->norm_D, "--norm_D", &nc, err) ||
        clsynth_norm_parse(o->norm_E, "--norm_E", &nc, err))
        return -1;
    if (o->data.crop_size > 0) {
        int num_up = clsynth_options_num_up(o);
        int div = 1 << num_up;
        int h, w;
        clsynth_options_image_size(o, &h, &w);
        if (w % div)
            return clsynth_fail(err, "--crop_size %d: must be a multiple of %d (2^%d upsamplings with "
                                     "--num_upsampling_layers %s)", w, div, num_up, o->num_upsampling_layers);
        int sw = w / div;
        int sh = (int)lroundf((float)sw / (o->data.aspect_ratio > 0 ? o->data.aspect_ratio : 1.0f));
        if (sh < 1 || sh * div != h)
            return clsynth_fail(err, "--aspect_ratio %g: the image height %d is not the generator's "
                                     "%d x 2^%d (crop_size %d)", o->data.aspect_ratio, h, sh, num_up, w);
        if (strcmp(o->netD, "fpse") == 0 && (h % 32 || w % 32))
            return clsynth_fail(err, "--crop_size %d: --netD fpse needs an image size divisible by 32 "
                                     "(%dx%d)", w, h, w);
    }
    return 0;
}

static void append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (!*buf)
        return;
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap + n + 1) * 2;
        char *g = realloc(*buf, nc);
        if (!g) {
            free(*buf);
            *buf = NULL;
            return;
        }
        *buf = g;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

static void format_value(const clsynth_options *o, const opt_def *d, char *out, size_t cap)
{
    const char *base = (const char *)o;
    const void *field = base + d->off;
    switch (d->type) {
    case OT_INT:
    case OT_IBOOL:
    case OT_TRI:
        snprintf(out, cap, "%d", *(const int *)field);
        break;
    case OT_LONG:
        snprintf(out, cap, "%ld", *(const long *)field);
        break;
    case OT_FLOAT:
        snprintf(out, cap, "%.9g", (double)*(const float *)field);
        break;
    case OT_DOUBLE:
        snprintf(out, cap, "%.17g", *(const double *)field);
        break;
    case OT_BOOL:
        snprintf(out, cap, "%d", *(const bool *)field ? 1 : 0);
        break;
    case OT_STR:
    case OT_CHOICE:
        snprintf(out, cap, "%s", (const char *)field);
        break;
    case OT_PREPROC: {
        clsynth_preprocess_mode m = *(const clsynth_preprocess_mode *)field;
        snprintf(out, cap, "%s", m == CLSYNTH_PRE_UNSET ? "unset" : clsynth_preprocess_mode_name(m));
        break;
    }
    case OT_PHASE:
        snprintf(out, cap, "%s", *(const int *)field ? "train" : "test");
        break;
    }
}

char *clsynth_options_to_text(const clsynth_options *o)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    buf[0] = '\0';
    char line[CLSYNTH_PATH_MAX + 64], value[CLSYNTH_PATH_MAX + 8];
    for (int i = 0; i < N_OPTS; i++) {
        format_value(o, &OPTS[i], value, sizeof value);
        snprintf(line, sizeof line, "%s=%s\n", OPTS[i].name, value);
        append(&buf, &len, &cap, line);
    }
    return buf;
}

int clsynth_options_from_text(clsynth_options *o, const char *text, clsynth_err *err)
{
    const char *p = text;
    int lineno = 0;
    while (p && *p) {
        lineno++;
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0 && p[0] != '#') {
            const char *eq = memchr(p, '=', len);
            if (!eq)
                return clsynth_fail(err, "options line %d: '%.*s' is not key=value", lineno, (int)len, p);
            size_t klen = (size_t)(eq - p);
            const opt_def *d = find_opt(p, klen);
            if (d) { /* unknown keys (e.g. "state.*" lines of checkpoints) are skipped */
                char value[CLSYNTH_PATH_MAX + 8];
                size_t vlen = len - klen - 1;
                if (vlen >= sizeof value)
                    return clsynth_fail(err, "options line %d: value of %s too long", lineno, d->name);
                memcpy(value, eq + 1, vlen);
                value[vlen] = '\0';
                if (d->off == OFF(preset)) {
                    /* the preset is informational here: the values follow */
                    snprintf(o->preset, sizeof o->preset, "%s", value);
                } else if (set_opt(o, d, value, err)) {
                    return clsynth_wrap(err, "options line %d", lineno);
                }
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

int clsynth_options_same_variant(const clsynth_options *a, const clsynth_options *b, clsynth_err *err)
{
    char va[CLSYNTH_PATH_MAX + 8], vb[CLSYNTH_PATH_MAX + 8];
    for (int i = 0; i < N_OPTS; i++) {
        if (!OPTS[i].variant)
            continue;
        if (OPTS[i].off == OFF(contain_dontcare_label)) {
            int da = clsynth_options_dontcare(a), db = clsynth_options_dontcare(b);
            if (da != db)
                return clsynth_fail(err, "option --contain_dontcare_label differs: %d here, %d in the "
                                         "checkpoint", da, db);
            continue;
        }
        format_value(a, &OPTS[i], va, sizeof va);
        format_value(b, &OPTS[i], vb, sizeof vb);
        if (strcmp(va, vb) != 0)
            return clsynth_fail(err, "option --%s differs: '%s' here, '%s' in the checkpoint", OPTS[i].name,
                                va, vb);
    }
    return 0;
}

void clsynth_options_print_help(FILE *f)
{
    for (int i = 0; i < N_OPTS; i++) {
        const opt_def *d = &OPTS[i];
        const char *arg = is_switch(d) ? "" : d->type == OT_CHOICE ? " CHOICE" : " VALUE";
        fprintf(f, "  --%s%s  %s%s%s\n", d->name, arg, d->help, d->choices ? ": " : "",
                d->choices ? d->choices : "");
    }
}
