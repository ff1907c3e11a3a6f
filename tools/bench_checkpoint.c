/* clsynth bench checkpoint [--preset P] [--dir DIR] [--repeats N] [model flags]
 *
 * Times what training does at every checkpoint: latest.ckpt written once
 * (device download, temporary file, fsync, rename) and iter_N.ckpt made a hard
 * link of it, against the reference of writing the numbered copy as a second
 * full file (what clsynth did before); interleaved, median of N each. Then
 * times loading it (CRC and non-finite checks included). Default: the small
 * preset (a 374 MB checkpoint). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clcore/context.h"
#include "clcore/fsutil.h"
#include "io/atomic.h"
#include "nets/model.h"
#include "tools/bench_checkpoint.h"
#include "tools/cli.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

int clsynth_bench_checkpoint(int argc, char **argv)
{
    const char *dir = "./bench-checkpoint", *v;
    int repeats = 3;
    char *rest[256];
    int nrest = 0;
    rest[nrest++] = "--preset";
    rest[nrest++] = "small";
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = clsynth_cli_value(argc, argv, &i, "--dir", &v)) == 1) {
            dir = v;
        } else if (m == 0 && (m = clsynth_cli_value(argc, argv, &i, "--repeats", &v)) == 1) {
            if (clsynth_cli_int("bench checkpoint", "--repeats", v, 1, 100, &repeats))
                return 2;
        } else if (m < 0) {
            fprintf(stderr, "bench checkpoint: missing value for %s\n", argv[i]);
            return 2;
        } else if (nrest < 254) {
            rest[nrest++] = argv[i];
        }
    }
    clsynth_err err;
    clsynth_options o;
    clsynth_options_defaults(&o);
    if (clsynth_options_parse(&o, nrest, rest, &err)) {
        fprintf(stderr, "bench checkpoint: %s\n", err.msg);
        return 2;
    }
    if (o.data.label_nc == 0)
        o.data.label_nc = 35;
    o.no_vgg_loss = true;
    if (clsynth_mkdirs(dir, &err)) {
        fprintf(stderr, "bench checkpoint: %s\n", err.msg);
        return 1;
    }
    clsynth_ctx *ctx = clsynth_ctx_create(o.device[0] ? o.device : NULL, &err);
    if (!ctx) {
        fprintf(stderr, "bench checkpoint: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    clsynth_model *m = clsynth_model_create(ctx, &o, &err);
    double *linked = calloc((size_t)repeats, sizeof *linked), *twice = calloc((size_t)repeats, sizeof *twice),
           *loads = calloc((size_t)repeats, sizeof *loads);
    char latest[1200], numbered[1200];
    snprintf(latest, sizeof latest, "%s/latest.ckpt", dir);
    snprintf(numbered, sizeof numbered, "%s/iter_0000001.ckpt", dir);
    if (!m || !linked || !twice || !loads)
        goto done;
    for (int r = 0; r < repeats; r++) {
        unlink(numbered);
        double t0 = now_s();
        if (clsynth_model_save(ctx, m, latest, 1, 1, NULL, &err) ||
            clsynth_atomic_link(latest, numbered, NULL, &err))
            goto done;
        double t1 = now_s();
        unlink(numbered);
        if (clsynth_model_save(ctx, m, latest, 1, 1, NULL, &err) ||
            clsynth_model_save(ctx, m, numbered, 1, 1, NULL, &err))
            goto done;
        double t2 = now_s();
        if (clsynth_model_load(ctx, m, latest, NULL, NULL, NULL, &err))
            goto done;
        double t3 = now_s();
        linked[r] = t1 - t0;
        twice[r] = t2 - t1;
        loads[r] = t3 - t2;
    }
    double mb = (double)file_size(latest) / 1e6;
    double a = median(linked, repeats), b = median(twice, repeats), c = median(loads, repeats);
    double load[3] = { 0, 0, 0 };
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = load[1] = load[2] = 0;
        fclose(la);
    }
    printf("checkpoint of --preset %s: %.1f MB in %s on %s\n", o.preset, mb, dir, ctx->dev.name);
    printf("save (latest.ckpt + hard-linked iter_N.ckpt): %.2f s median of %d (%.0f MB/s)\n", a, repeats, mb / a);
    printf("reference (two full files):                  %.2f s median of %d; ratio %.2fx\n", b, repeats, b / a);
    printf("load (CRC, shapes, finite values):           %.2f s median of %d\n", c, repeats);
    printf("load average: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "bench checkpoint: %s\n", err.msg);
    unlink(numbered);
    unlink(latest);
    free(linked);
    free(twice);
    free(loads);
    clsynth_model_free(ctx, m);
    clsynth_ctx_free(ctx);
    return rc;
}
