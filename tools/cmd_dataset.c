/* clsynth dataset: data tools.
 *
 *   dataset synth   --out DIR [--count N] [--val_count M] [--size HxW] [--seed S]
 *   dataset check   DATA OPTIONS        read and validate every sample
 *   dataset bench   DATA OPTIONS [--batch_size B] [--batches K] [--seed S]
 *                   loader throughput (images/s), decoding + preprocessing
 *   dataset preview DATA OPTIONS --out FILE.png [--count N]
 *                   grid of label | image for the first N samples
 *
 * DATA OPTIONS are SPADE's: --dataset_mode --dataroot --label_dir --image_dir
 * --instance_dir --label_nc --no_instance --preprocess_mode --load_size
 * --crop_size --aspect_ratio --no_flip --phase --dontcare_value. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/dataset.h"
#include "io/grid.h"
#include "io/loader.h"
#include "io/synth.h"
#include "tools/cli.h"
#include "tools/commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clsynth dataset synth --out DIR [--count N] [--val_count M] [--size HxW] "
            "[--seed S]\n"
            "       clsynth dataset check DATA_OPTIONS\n"
            "       clsynth dataset bench DATA_OPTIONS [--batch_size B] [--batches K] [--seed S]\n"
            "       clsynth dataset preview DATA_OPTIONS --out FILE.png [--count N]\n"
            "DATA_OPTIONS: --dataset_mode {custom,cityscapes,ade20k,coco} --dataroot DIR\n"
            "  [--label_dir D --image_dir D --instance_dir D] [--label_nc N] [--no_instance]\n"
            "  [--preprocess_mode {resize_and_crop,scale_width_and_crop,scale_width,fixed,none}]\n"
            "  [--load_size N] [--crop_size N] [--aspect_ratio R] [--no_flip] [--phase "
            "{train,val}]\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_u64(const char *v, uint64_t *out)
{
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end)
        return -1;
    *out = x;
    return 0;
}

static int cmd_synth(int argc, char **argv)
{
    const char *out = NULL, *v;
    int count = 100, val_count = -1, w = 64, h = 64;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = clsynth_cli_value(argc, argv, &i, "--out", &v)) == 1) {
            out = v;
        } else if (m == 0 && (m = clsynth_cli_value(argc, argv, &i, "--count", &v)) == 1) {
            if (clsynth_cli_int("dataset synth", "--count", v, 0, 10000000, &count))
                return 2;
        } else if (m == 0 && (m = clsynth_cli_value(argc, argv, &i, "--val_count", &v)) == 1) {
            if (clsynth_cli_int("dataset synth", "--val_count", v, 0, 10000000, &val_count))
                return 2;
        } else if (m == 0 && (m = clsynth_cli_value(argc, argv, &i, "--size", &v)) == 1) {
            char tail;
            if (sscanf(v, "%dx%d%c", &h, &w, &tail) != 2 || h < 16 || w < 16 || h > 8192 ||
                w > 8192) {
                fprintf(stderr, "dataset synth: --size: '%s' is not HxW with sides 16..8192\n", v);
                return 2;
            }
        } else if (m == 0 && (m = clsynth_cli_value(argc, argv, &i, "--seed", &v)) == 1) {
            if (parse_u64(v, &seed)) {
                fprintf(stderr, "dataset synth: --seed: '%s' is not an unsigned integer\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "dataset synth: %s '%s'\n", m < 0 ? "missing value for" : "unknown option",
                    argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "dataset synth: --out DIR is required\n");
        return 2;
    }
    if (val_count < 0)
        val_count = count / 10 > 1 ? count / 10 : 1;
    clsynth_err err;
    if (clsynth_synth_write(out, count, val_count, w, h, seed, &err)) {
        fprintf(stderr, "dataset synth: %s\n", err.msg);
        return 1;
    }
    printf("wrote %d train and %d val scenes of %dx%d (HxW) to %s (seed %" PRIu64 ")\n", count,
           val_count, h, w, out, seed);
    return 0;
}

/* Data options plus the extra ones a sub-command accepts (NULL-terminated
 * names, values stored in vals[]). */
static int parse_data_args(const char *cmd, int argc, char **argv, clsynth_data_opts *o,
                           const char *const *names, const char **vals)
{
    clsynth_data_opts_init(o);
    for (int i = 1; i < argc;) {
        clsynth_err err;
        int r = clsynth_data_opts_parse_arg(o, argc, argv, &i, &err);
        if (r < 0) {
            fprintf(stderr, "dataset %s: %s\n", cmd, err.msg);
            return -1;
        }
        if (r == 1)
            continue;
        int matched = 0;
        for (int k = 0; names && names[k] && !matched; k++) {
            const char *v;
            int m = clsynth_cli_value(argc, argv, &i, names[k], &v);
            if (m < 0) {
                fprintf(stderr, "dataset %s: %s: missing value\n", cmd, names[k]);
                return -1;
            }
            if (m == 1) {
                vals[k] = v;
                matched = 1;
            }
        }
        if (!matched) {
            fprintf(stderr, "dataset %s: unknown option '%s'\n", cmd, argv[i]);
            usage(stderr);
            return -1;
        }
        i++;
    }
    return 0;
}

static clsynth_dataset *open_dataset(const char *cmd, const clsynth_data_opts *o)
{
    clsynth_err err;
    clsynth_dataset *ds = clsynth_dataset_open(o, &err);
    if (!ds)
        fprintf(stderr, "dataset %s: %s\n", cmd, err.msg);
    return ds;
}

static int cmd_check(int argc, char **argv)
{
    clsynth_data_opts o;
    if (parse_data_args("check", argc, argv, &o, NULL, NULL))
        return 2;
    clsynth_dataset *ds = open_dataset("check", &o);
    if (!ds)
        return 1;
    clsynth_err err;
    int rc = clsynth_dataset_verify(ds, &err);
    if (rc)
        fprintf(stderr, "dataset check: %s\n", err.msg);
    else
        printf("%d samples OK (%s, label_nc %d, %s)\n", ds->n, ds->opts.dataset_mode,
               ds->opts.label_nc, ds->has_instance ? "with instances" : "no instances");
    clsynth_dataset_free(ds);
    return rc ? 1 : 0;
}

static int cmd_bench(int argc, char **argv)
{
    static const char *const names[] = {"--batch_size", "--batches", "--seed", NULL};
    const char *vals[3] = {"4", "50", "1"};
    clsynth_data_opts o;
    int bs, nb;
    uint64_t seed;
    if (parse_data_args("bench", argc, argv, &o, names, vals) ||
        clsynth_cli_int("dataset bench", "--batch_size", vals[0], 1, 4096, &bs) ||
        clsynth_cli_int("dataset bench", "--batches", vals[1], 1, 1000000, &nb))
        return 2;
    if (parse_u64(vals[2], &seed)) {
        fprintf(stderr, "dataset bench: --seed: '%s' is not an unsigned integer\n", vals[2]);
        return 2;
    }
    clsynth_dataset *ds = open_dataset("bench", &o);
    if (!ds)
        return 1;
    clsynth_loader_opts lo = {.batch_size = bs, .seed = seed, .shuffle = 1};
    clsynth_err err;
    clsynth_loader *l = clsynth_loader_create(ds, &lo, &err);
    if (!l) {
        fprintf(stderr, "dataset bench: %s\n", err.msg);
        clsynth_dataset_free(ds);
        return 1;
    }
    const clsynth_batch *b = NULL;
    int rc = 0, images = 0, h = 0, w = 0;
    double t0 = now_s();
    for (int i = 0; i < nb && rc == 0; i++) {
        int r = clsynth_loader_next(l, &b, &err);
        if (r < 0) {
            fprintf(stderr, "dataset bench: %s\n", err.msg);
            rc = 1;
        } else if (r == 1) {
            images += b->n;
            h = b->h;
            w = b->w;
        }
    }
    double dt = now_s() - t0;
    clsynth_loader_free(l);
    if (rc == 0)
        printf("loader: %d images of %dx%d (HxW) in %d batches of %d: %.3f s, %.1f images/s "
               "(%s, %d samples)\n", images, h, w, nb, bs, dt, images / dt,
               ds->opts.dataset_mode, ds->n);
    clsynth_dataset_free(ds);
    return rc;
}

static int cmd_preview(int argc, char **argv)
{
    static const char *const names[] = {"--out", "--count", NULL};
    const char *vals[2] = {NULL, "8"};
    clsynth_data_opts o;
    int count;
    if (parse_data_args("preview", argc, argv, &o, names, vals) ||
        clsynth_cli_int("dataset preview", "--count", vals[1], 1, 256, &count))
        return 2;
    if (!vals[0]) {
        fprintf(stderr, "dataset preview: --out FILE.png is required\n");
        return 2;
    }
    clsynth_dataset *ds = open_dataset("preview", &o);
    if (!ds)
        return 1;
    if (count > ds->n)
        count = ds->n;
    clsynth_loader_opts lo = {.batch_size = count, .seed = 1, .shuffle = 0};
    clsynth_err err;
    clsynth_loader *l = clsynth_loader_create(ds, &lo, &err);
    const clsynth_batch *b = NULL;
    int rc = 1;
    if (l && clsynth_loader_next(l, &b, &err) == 1 &&
        clsynth_grid_write(vals[0], b->n, b->h, b->w, b->label, b->image, NULL, &err) == 0) {
        printf("wrote %s: %d samples, label | image, %dx%d each\n", vals[0], b->n, b->h, b->w);
        rc = 0;
    } else {
        fprintf(stderr, "dataset preview: %s\n", err.msg);
    }
    clsynth_loader_free(l);
    clsynth_dataset_free(ds);
    return rc;
}

int clsynth_cmd_dataset(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "synth") == 0)
        return cmd_synth(argc - 1, argv + 1);
    if (strcmp(sub, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(sub, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(sub, "preview") == 0)
        return cmd_preview(argc - 1, argv + 1);
    fprintf(stderr, "dataset: unknown sub-command '%s'\n", sub);
    usage(stderr);
    return 2;
}
