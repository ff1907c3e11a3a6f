#include "io/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/dirlist.h"
#include "io/png.h"

/* ---- options ---------------------------------------------------------- */

static const char *const pre_names[] = {
    [CLSYNTH_PRE_UNSET] = "unset",
    [CLSYNTH_PRE_RESIZE_AND_CROP] = "resize_and_crop",
    [CLSYNTH_PRE_SCALE_WIDTH_AND_CROP] = "scale_width_and_crop",
    [CLSYNTH_PRE_SCALE_WIDTH] = "scale_width",
    [CLSYNTH_PRE_FIXED] = "fixed",
    [CLSYNTH_PRE_NONE] = "none",
};

const char *clsynth_preprocess_mode_name(clsynth_preprocess_mode m)
{
    return (unsigned)m <= CLSYNTH_PRE_NONE ? pre_names[m] : "?";
}

int clsynth_preprocess_mode_parse(const char *s, clsynth_preprocess_mode *m)
{
    for (int i = CLSYNTH_PRE_RESIZE_AND_CROP; i <= CLSYNTH_PRE_NONE; i++)
        if (strcmp(s, pre_names[i]) == 0) {
            *m = (clsynth_preprocess_mode)i;
            return 0;
        }
    return -1;
}

void clsynth_data_opts_init(clsynth_data_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->dataset_mode, sizeof o->dataset_mode, "custom");
    o->is_train = 1;
    o->dontcare_value = CLSYNTH_DONTCARE;
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out, clsynth_err *err)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < lo || x > hi)
        return clsynth_fail(err, "%s: expected an integer in %d..%d, got '%s'", opt, lo, hi, v);
    *out = (int)x;
    return 0;
}

static int set_str(char *dst, size_t cap, const char *opt, const char *v, clsynth_err *err)
{
    if (strlen(v) >= cap)
        return clsynth_fail(err, "%s: value longer than %zu characters", opt, cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int clsynth_data_opts_parse_arg(clsynth_data_opts *o, int argc, char **argv, int *i,
                                clsynth_err *err)
{
    const char *arg = argv[*i];
    if (strcmp(arg, "--no_flip") == 0) {
        o->no_flip = 1;
        *i += 1;
        return 1;
    }
    if (strcmp(arg, "--no_instance") == 0) {
        o->no_instance = 1;
        *i += 1;
        return 1;
    }
    static const char *const with_value[] = {
        "--dataset_mode", "--dataroot", "--label_dir", "--image_dir", "--instance_dir",
        "--label_nc", "--preprocess_mode", "--load_size", "--crop_size", "--aspect_ratio",
        "--phase", "--dontcare_value",
    };
    /* "--name value" or "--name=value" */
    char a[32];
    const char *eq = strchr(arg, '=');
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (nlen >= sizeof a)
        return 0;
    memcpy(a, arg, nlen);
    a[nlen] = '\0';
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
        known |= strcmp(a, with_value[k]) == 0;
    if (!known)
        return 0;
    if (!eq && *i + 1 >= argc)
        return clsynth_fail(err, "%s: missing value", a);
    const char *v = eq ? eq + 1 : argv[*i + 1];
    int consumed = eq ? 1 : 2;
    int rc = 0;
    if (strcmp(a, "--dataset_mode") == 0) {
        if (strcmp(v, "custom") && strcmp(v, "cityscapes") && strcmp(v, "ade20k") &&
            strcmp(v, "coco"))
            return clsynth_fail(err, "--dataset_mode: unknown mode '%s' (custom, cityscapes, "
                                     "ade20k, coco)", v);
        rc = set_str(o->dataset_mode, sizeof o->dataset_mode, a, v, err);
    } else if (strcmp(a, "--dataroot") == 0) {
        rc = set_str(o->dataroot, sizeof o->dataroot, a, v, err);
    } else if (strcmp(a, "--label_dir") == 0) {
        rc = set_str(o->label_dir, sizeof o->label_dir, a, v, err);
    } else if (strcmp(a, "--image_dir") == 0) {
        rc = set_str(o->image_dir, sizeof o->image_dir, a, v, err);
    } else if (strcmp(a, "--instance_dir") == 0) {
        rc = set_str(o->instance_dir, sizeof o->instance_dir, a, v, err);
    } else if (strcmp(a, "--label_nc") == 0) {
        rc = parse_int(a, v, 1, 255, &o->label_nc, err);
    } else if (strcmp(a, "--preprocess_mode") == 0) {
        if (clsynth_preprocess_mode_parse(v, &o->preprocess_mode))
            return clsynth_fail(err, "--preprocess_mode: unknown mode '%s' (resize_and_crop, "
                                     "scale_width_and_crop, scale_width, fixed, none)", v);
    } else if (strcmp(a, "--load_size") == 0) {
        rc = parse_int(a, v, 1, CLSYNTH_IMAGE_MAX_DIM, &o->load_size, err);
    } else if (strcmp(a, "--crop_size") == 0) {
        rc = parse_int(a, v, 1, CLSYNTH_IMAGE_MAX_DIM, &o->crop_size, err);
    } else if (strcmp(a, "--aspect_ratio") == 0) {
        char *end;
        float x = strtof(v, &end);
        if (*v == '\0' || *end != '\0' || !(x >= 0.0625f && x <= 16.0f))
            return clsynth_fail(err, "--aspect_ratio: expected a number in 0.0625..16, got '%s'",
                                v);
        o->aspect_ratio = x;
    } else if (strcmp(a, "--phase") == 0) {
        if (strcmp(v, "train") == 0)
            o->is_train = 1;
        else if (strcmp(v, "val") == 0 || strcmp(v, "test") == 0)
            o->is_train = 0;
        else
            return clsynth_fail(err, "--phase: expected train, val or test, got '%s'", v);
    } else if (strcmp(a, "--dontcare_value") == 0) {
        rc = parse_int(a, v, 0, 65535, &o->dontcare_value, err);
    }
    if (rc)
        return -1;
    *i += consumed;
    return 1;
}

/* Number of class lines in DIR/classes.txt (as written by the synthetic
 * generator), or 0 when there is no such file. */
static int count_classes(const char *dataroot)
{
    char path[CLSYNTH_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/classes.txt", dataroot);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (line[0] != '#' && line[0] != '\n' && line[0] != '\0')
            n++;
    fclose(f);
    return n;
}

int clsynth_data_opts_finalize(clsynth_data_opts *o, clsynth_err *err)
{
    const char *m = o->dataset_mode;
    int nc = 0, load = 0, crop = 256;
    float aspect = 1.0f;
    clsynth_preprocess_mode pre = CLSYNTH_PRE_RESIZE_AND_CROP;
    o->allow_dontcare = 1;
    o->ade20k_shift = 0;
    if (strcmp(m, "coco") == 0) {
        nc = 182;
        load = o->is_train ? 286 : 256;
    } else if (strcmp(m, "ade20k") == 0) {
        nc = 150;
        load = o->is_train ? 286 : 256;
        o->ade20k_shift = 1;
    } else if (strcmp(m, "cityscapes") == 0) {
        nc = 35;
        pre = CLSYNTH_PRE_FIXED;
        load = crop = 512;
        aspect = 2.0f;
        o->allow_dontcare = 0;
    } else if (strcmp(m, "custom") == 0) {
        nc = o->dataroot[0] ? count_classes(o->dataroot) : 0;
    } else {
        return clsynth_fail(err, "unknown --dataset_mode '%s'", m);
    }
    /* Before anything that reads in it: a missing folder is named as such, not
     * as the missing classes.txt or --label_nc it implies. */
    struct stat st;
    if (o->dataroot[0] && stat(o->dataroot, &st) != 0)
        return clsynth_fail(err, "--dataroot %s: %s", o->dataroot, strerror(errno));
    if (o->dataroot[0] && !S_ISDIR(st.st_mode))
        return clsynth_fail(err, "--dataroot %s: not a folder", o->dataroot);
    if (o->label_nc == 0)
        o->label_nc = nc;
    if (o->label_nc <= 0)
        return clsynth_fail(err, "--dataset_mode custom needs --label_nc (or a classes.txt "
                                 "in --dataroot)");
    if (o->label_nc > CLSYNTH_DONTCARE)
        return clsynth_fail(err, "--label_nc %d: at most %d classes", o->label_nc,
                            CLSYNTH_DONTCARE);
    if (o->preprocess_mode == CLSYNTH_PRE_UNSET)
        o->preprocess_mode = pre;
    if (o->aspect_ratio == 0.0f)
        o->aspect_ratio = aspect;
    if (o->load_size == 0)
        o->load_size = o->crop_size ? o->crop_size : (load ? load : crop);
    if (o->crop_size == 0)
        o->crop_size = crop < o->load_size ? crop : o->load_size;
    if (strcmp(m, "custom") == 0 && !o->dataroot[0] && (!o->label_dir[0] || !o->image_dir[0]))
        return clsynth_fail(err, "--dataset_mode custom needs --dataroot, or --label_dir and "
                                 "--image_dir");
    if (strcmp(m, "custom") != 0 && !o->dataroot[0])
        return clsynth_fail(err, "--dataset_mode %s needs --dataroot", m);
    return 0;
}

/* ---- file pairing ----------------------------------------------------- */

typedef struct keyed {
    char *key;        /* file stem shared by the files of one sample */
    const char *path; /* borrowed from a dirlist */
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    return strcmp(((const keyed *)a)->key, ((const keyed *)b)->key);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int has_ext(const char *name, const char *const *exts)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (; *exts; exts++)
        if (strcmp(dot, *exts) == 0)
            return 1;
    return 0;
}

/* Keys = base name minus `suffix` when it ends so, else minus the extension. */
static int make_keys(const clsynth_dirlist *l, const char *suffix, keyed **out,
                     clsynth_err *err)
{
    keyed *k = calloc(l->n ? l->n : 1, sizeof *k);
    if (!k)
        return clsynth_fail(err, "out of memory");
    for (int i = 0; i < l->n; i++) {
        const char *b = base_name(l->paths[i]);
        size_t n = strlen(b), sl = suffix ? strlen(suffix) : 0;
        if (suffix && n > sl && strcmp(b + n - sl, suffix) == 0)
            n -= sl;
        else if (strrchr(b, '.'))
            n = (size_t)(strrchr(b, '.') - b);
        k[i].key = malloc(n + 1);
        if (!k[i].key) {
            for (int j = 0; j < i; j++)
                free(k[j].key);
            free(k);
            return clsynth_fail(err, "out of memory");
        }
        memcpy(k[i].key, b, n);
        k[i].key[n] = '\0';
        k[i].path = l->paths[i];
    }
    qsort(k, l->n, sizeof *k, cmp_keyed);
    for (int i = 1; i < l->n; i++)
        if (strcmp(k[i - 1].key, k[i].key) == 0) {
            clsynth_fail(err, "ambiguous pair: '%s' and '%s' have the same stem '%s'",
                         k[i - 1].path, k[i].path, k[i].key);
            for (int j = 0; j < l->n; j++)
                free(k[j].key);
            free(k);
            return -1;
        }
    *out = k;
    return 0;
}

static void free_keys(keyed *k, int n)
{
    if (!k)
        return;
    for (int i = 0; i < n; i++)
        free(k[i].key);
    free(k);
}

static const keyed *find_key(const keyed *k, int n, const char *key)
{
    keyed probe = {.key = (char *)key};
    return bsearch(&probe, k, n, sizeof *k, cmp_keyed);
}

/* Every key of `a` must be in `b`, else error naming the unpaired file. */
static int check_covered(const keyed *a, int na, const char *what_a, const keyed *b, int nb,
                         const char *what_b, const char *dir_b, clsynth_err *err)
{
    for (int i = 0; i < na; i++)
        if (!find_key(b, nb, a[i].key))
            return clsynth_fail(err, "missing pair: %s file '%s' has no %s file with stem '%s' "
                                     "in '%s'", what_a, a[i].path, what_b, a[i].key, dir_b);
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

typedef struct layout {
    char label_dir[CLSYNTH_PATH_MAX + 64], image_dir[CLSYNTH_PATH_MAX + 64];
    char inst_dir[CLSYNTH_PATH_MAX + 64]; /* "" = none */
    const char *label_suffix, *image_suffix, *inst_suffix; /* key suffixes or NULL */
    int recurse;
} layout;

static int describe_layout(const clsynth_data_opts *o, layout *L, clsynth_err *err)
{
    memset(L, 0, sizeof *L);
    const char *root = o->dataroot, *m = o->dataset_mode;
    const char *split = o->is_train ? "train" : "val";
    size_t cap = sizeof L->label_dir;
    if (strcmp(m, "cityscapes") == 0) {
        snprintf(L->label_dir, cap, "%s/gtFine/%s", root, split);
        snprintf(L->image_dir, cap, "%s/leftImg8bit/%s", root, split);
        snprintf(L->inst_dir, cap, "%s/gtFine/%s", root, split);
        L->label_suffix = "_gtFine_labelIds.png";
        L->inst_suffix = "_gtFine_instanceIds.png";
        L->image_suffix = "_leftImg8bit.png";
        L->recurse = 1;
    } else if (strcmp(m, "ade20k") == 0) {
        const char *s = o->is_train ? "training" : "validation";
        snprintf(L->label_dir, cap, "%s/annotations/%s", root, s);
        snprintf(L->image_dir, cap, "%s/images/%s", root, s);
    } else if (strcmp(m, "coco") == 0 || o->dataroot[0]) {
        snprintf(L->label_dir, cap, "%s/%s_label", root, split);
        snprintf(L->image_dir, cap, "%s/%s_img", root, split);
        snprintf(L->inst_dir, cap, "%s/%s_inst", root, split);
        /* the custom dataroot layout has optional instances */
        if (strcmp(m, "coco") != 0 && !clsynth_is_dir(L->inst_dir))
            L->inst_dir[0] = '\0';
    } else {
        snprintf(L->label_dir, cap, "%s", o->label_dir);
        snprintf(L->image_dir, cap, "%s", o->image_dir);
        snprintf(L->inst_dir, cap, "%s", o->instance_dir);
    }
    if (o->no_instance)
        L->inst_dir[0] = '\0';
    (void)err;
    return 0;
}

static int list_files(const char *dir, const char *suffix, int recurse,
                      const char *const *exts, clsynth_dirlist *l, clsynth_err *err)
{
    if (clsynth_dirlist_read(l, dir, suffix, recurse, err))
        return -1;
    if (!suffix) { /* keep only files with a known extension */
        int k = 0;
        for (int i = 0; i < l->n; i++) {
            if (has_ext(base_name(l->paths[i]), exts))
                l->paths[k++] = l->paths[i];
            else
                free(l->paths[i]);
        }
        l->n = k;
    }
    return 0;
}

clsynth_dataset *clsynth_dataset_open(const clsynth_data_opts *opts, clsynth_err *err)
{
    static const char *const png_ext[] = {".png", ".PNG", NULL};
    static const char *const img_ext[] = {".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG",
                                          NULL};
    clsynth_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        clsynth_fail(err, "out of memory");
        return NULL;
    }
    ds->opts = *opts;
    layout L;
    clsynth_dirlist labels = {0}, images = {0}, insts = {0};
    keyed *kl = NULL, *ki = NULL, *kn = NULL;
    if (clsynth_data_opts_finalize(&ds->opts, err) || describe_layout(&ds->opts, &L, err))
        goto fail;
    if (list_files(L.label_dir, L.label_suffix, L.recurse, png_ext, &labels, err) ||
        list_files(L.image_dir, L.image_suffix, L.recurse, img_ext, &images, err))
        goto fail;
    ds->has_instance = L.inst_dir[0] != '\0';
    if (ds->has_instance &&
        list_files(L.inst_dir, L.inst_suffix, L.recurse, png_ext, &insts, err))
        goto fail;
    if (labels.n == 0) {
        clsynth_fail(err, "no label files in '%s'", L.label_dir);
        goto fail;
    }
    if (make_keys(&labels, L.label_suffix, &kl, err) ||
        make_keys(&images, L.image_suffix, &ki, err) ||
        (ds->has_instance && make_keys(&insts, L.inst_suffix, &kn, err)))
        goto fail;
    if (check_covered(kl, labels.n, "label", ki, images.n, "image", L.image_dir, err) ||
        check_covered(ki, images.n, "image", kl, labels.n, "label", L.label_dir, err))
        goto fail;
    if (ds->has_instance &&
        (check_covered(kl, labels.n, "label", kn, insts.n, "instance", L.inst_dir, err) ||
         check_covered(kn, insts.n, "instance", kl, labels.n, "label", L.label_dir, err)))
        goto fail;
    ds->files = calloc(labels.n, sizeof *ds->files);
    if (!ds->files) {
        clsynth_fail(err, "out of memory");
        goto fail;
    }
    ds->n = labels.n;
    /* kl is sorted by key: samples come in key order, independent of folders */
    for (int i = 0; i < labels.n; i++) {
        clsynth_sample_files *f = &ds->files[i];
        f->label = dup_str(kl[i].path);
        f->image = dup_str(find_key(ki, images.n, kl[i].key)->path);
        f->instance = ds->has_instance ? dup_str(find_key(kn, insts.n, kl[i].key)->path) : NULL;
        if (!f->label || !f->image || (ds->has_instance && !f->instance)) {
            clsynth_fail(err, "out of memory");
            goto fail;
        }
    }
    free_keys(kl, labels.n);
    free_keys(ki, images.n);
    free_keys(kn, insts.n);
    clsynth_dirlist_free(&labels);
    clsynth_dirlist_free(&images);
    clsynth_dirlist_free(&insts);
    return ds;
fail:
    free_keys(kl, labels.n);
    free_keys(ki, images.n);
    free_keys(kn, insts.n);
    clsynth_dirlist_free(&labels);
    clsynth_dirlist_free(&images);
    clsynth_dirlist_free(&insts);
    clsynth_dataset_free(ds);
    return NULL;
}

void clsynth_dataset_free(clsynth_dataset *ds)
{
    if (!ds)
        return;
    for (int i = 0; i < ds->n; i++) {
        free(ds->files[i].label);
        free(ds->files[i].image);
        free(ds->files[i].instance);
    }
    free(ds->files);
    free(ds);
}

/* ---- reading one sample ----------------------------------------------- */

static int map_and_check_labels(const clsynth_data_opts *o, clsynth_idmap *lab,
                                const char *path, clsynth_err *err)
{
    for (int y = 0; y < lab->h; y++)
        for (int x = 0; x < lab->w; x++) {
            int32_t *p = &lab->data[(size_t)y * lab->w + x];
            int32_t raw = *p, v = raw;
            if (o->ade20k_shift)
                v = raw == 0 ? CLSYNTH_DONTCARE : raw - 1;
            if (v >= 0 && v < o->label_nc)
                *p = v;
            else if (v == CLSYNTH_DONTCARE && o->allow_dontcare)
                *p = CLSYNTH_DONTCARE;
            else
                return clsynth_fail(err, "%s: label value %d at pixel x=%d y=%d out of range "
                                         "(label_nc %d%s)", path, (int)raw, x, y, o->label_nc,
                                    o->allow_dontcare ? ", 255 = don't care" : "");
        }
    return 0;
}

int clsynth_dataset_read(const clsynth_dataset *ds, int i, clsynth_raw_sample *s,
                         clsynth_err *err)
{
    memset(s, 0, sizeof *s);
    if (i < 0 || i >= ds->n)
        return clsynth_fail(err, "sample index %d outside 0..%d", i, ds->n - 1);
    const clsynth_sample_files *f = &ds->files[i];
    if (clsynth_png_read_ids(f->label, &s->label, err) ||
        clsynth_image_read(f->image, &s->image, err) || clsynth_image_to_rgb(&s->image, err))
        goto fail;
    if (s->label.w != s->image.w || s->label.h != s->image.h) {
        clsynth_fail(err, "size mismatch: label '%s' is %dx%d but image '%s' is %dx%d", f->label,
                     s->label.w, s->label.h, f->image, s->image.w, s->image.h);
        goto fail;
    }
    if (f->instance) {
        if (clsynth_png_read_ids(f->instance, &s->instance, err))
            goto fail;
        if (s->instance.w != s->label.w || s->instance.h != s->label.h) {
            clsynth_fail(err, "size mismatch: label '%s' is %dx%d but instance map '%s' is "
                              "%dx%d", f->label, s->label.w, s->label.h, f->instance,
                         s->instance.w, s->instance.h);
            goto fail;
        }
    }
    if (map_and_check_labels(&ds->opts, &s->label, f->label, err))
        goto fail;
    return 0;
fail:
    clsynth_raw_sample_free(s);
    return -1;
}

void clsynth_raw_sample_free(clsynth_raw_sample *s)
{
    clsynth_image_free(&s->image);
    clsynth_idmap_free(&s->label);
    clsynth_idmap_free(&s->instance);
}

int clsynth_dataset_verify(const clsynth_dataset *ds, clsynth_err *err)
{
    for (int i = 0; i < ds->n; i++) {
        clsynth_raw_sample s;
        if (clsynth_dataset_read(ds, i, &s, err))
            return -1;
        clsynth_raw_sample_free(&s);
    }
    return 0;
}
