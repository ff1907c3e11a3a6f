#include "tools/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"
#include "io/dirlist.h"
#include "tools/plot.h"

#define N_CURVES 6
static const char *curve_names[N_CURVES] = { "G_GAN", "G_GAN_Feat", "G_VGG", "KLD", "D_real", "D_fake" };

/* Reads losses.csv (iteration,epoch,seconds,<6 losses>) into per-loss arrays. */
static int read_losses(const char *path, double **cols, int *count, clsynth_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return clsynth_fail(err, "cannot read %s: %s", path, strerror(errno));
    char line[512];
    int n = 0, cap = 0;
    for (int c = 0; c < N_CURVES; c++)
        cols[c] = NULL;
    if (!fgets(line, sizeof line, f)) { /* header */
        fclose(f);
        return clsynth_fail(err, "%s is empty", path);
    }
    while (fgets(line, sizeof line, f)) {
        double v[9];
        if (sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7], &v[8]) != 9)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            for (int c = 0; c < N_CURVES; c++) {
                double *g = realloc(cols[c], sizeof *g * (size_t)cap);
                if (!g) {
                    fclose(f);
                    return clsynth_fail(err, "out of memory");
                }
                cols[c] = g;
            }
        }
        for (int c = 0; c < N_CURVES; c++)
            cols[c][n] = v[3 + c];
        n++;
    }
    fclose(f);
    *count = n;
    return 0;
}

static int copy_file(const char *from, const char *to, clsynth_err *err)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return clsynth_fail(err, "cannot read %s: %s", from, strerror(errno));
    clsynth_atomic_file af;
    if (clsynth_atomic_open(&af, to, err)) {
        fclose(in);
        return -1;
    }
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, k, af.f);
    fclose(in);
    return clsynth_atomic_commit(&af, err);
}

/* Moving average over a window so GAN noise does not hide the trend. */
static void smooth(const double *in, double *out, int n, int window)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        s += in[i];
        if (i >= window)
            s -= in[i - window];
        out[i] = s / (i + 1 < window ? i + 1 : window);
    }
}

int clsynth_report_write(const clsynth_report_info *r, clsynth_err *err)
{
    char path[1400];
    double *cols[N_CURVES] = { 0 };
    double *sm[N_CURVES] = { 0 };
    int n = 0, rc = -1;
    snprintf(path, sizeof path, "%s/losses.csv", r->run_dir);
    if (read_losses(path, cols, &n, err))
        goto done;
    clsynth_plot_series series[N_CURVES];
    int ns = 0;
    double last[N_CURVES] = { 0 };
    int used[N_CURVES];
    for (int c = 0; c < N_CURVES; c++) {
        bool any = false;
        for (int i = 0; i < n && !any; i++)
            any = cols[c][i] != 0.0;
        if (!any)
            continue; /* a loss switched off (VGG without weights, KLD without VAE) */
        sm[c] = malloc(sizeof(double) * (size_t)(n ? n : 1));
        if (!sm[c]) {
            clsynth_fail(err, "out of memory");
            goto done;
        }
        smooth(cols[c], sm[c], n, n > 200 ? n / 50 : 5);
        last[c] = n ? sm[c][n - 1] : NAN;
        series[ns] = (clsynth_plot_series){ curve_names[c], sm[c], n };
        used[ns++] = c;
    }
    double ymin = 0, ymax = 1;
    snprintf(path, sizeof path, "%s/loss_curves.png", r->report_dir);
    if (ns > 0 && clsynth_plot_write(path, 720, 360, series, ns, &ymin, &ymax, err))
        goto done;

    /* newest training grid */
    char grid[1400] = "";
    clsynth_dirlist web;
    snprintf(path, sizeof path, "%s/web", r->run_dir);
    if (clsynth_dirlist_read(&web, path, ".png", 0, NULL) == 0) {
        if (web.n > 0) {
            snprintf(grid, sizeof grid, "%s", web.paths[web.n - 1]);
            snprintf(path, sizeof path, "%s/last_training_grid.png", r->report_dir);
            if (copy_file(grid, path, err)) {
                clsynth_dirlist_free(&web);
                goto done;
            }
        }
        clsynth_dirlist_free(&web);
    }

    snprintf(path, sizeof path, "%s/index.html", r->report_dir);
    clsynth_atomic_file af;
    if (clsynth_atomic_open(&af, path, err))
        goto done;
    FILE *f = af.f;
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>clsynth report</title>\n"
               "<style>body{font-family:sans-serif;max-width:1000px} td,th{padding:2px 8px}"
               " img.px{image-rendering:pixelated}</style></head><body>\n<h1>clsynth main job</h1>\n");
    fprintf(f, "<p>Device: <b>%s</b> (%s, driver %s). Dataset: <code>%s</code>.</p>\n", r->ctx->dev.name,
            r->ctx->dev.platform_name, r->ctx->dev.driver, r->dataset);
    fprintf(f, "<p>Training: %ld iterations (%ld in this run, %.1f s), epoch %d. Run folder: <code>%s</code> "
               "(options.txt, params.txt, losses.csv, checkpoints).</p>\n", r->train->iterations,
            r->train->new_iterations, r->train->seconds, r->train->epoch, r->run_dir);
    fprintf(f, "<h2>Loss curves</h2>\n<p>Moving averages; y axis from %.3f (bottom) to %.3f (top).</p>\n"
               "<img src=\"loss_curves.png\">\n<table><tr><th>loss</th><th>colour</th><th>last (smoothed)</th></tr>\n",
            ymin, ymax);
    for (int s = 0; s < ns; s++) {
        uint8_t c[3];
        clsynth_plot_color(s, c);
        fprintf(f, "<tr><td>%s</td><td style=\"background:#%02x%02x%02x\"></td><td>%.4f</td></tr>\n",
                curve_names[used[s]], c[0], c[1], c[2], last[used[s]]);
    }
    fputs("</table>\n", f);
    if (grid[0])
        fprintf(f, "<h2>Last training samples</h2>\n<p>label | synthesized | real</p>\n"
                   "<img class=\"px\" width=\"576\" src=\"last_training_grid.png\"><br>from <code>%s</code>\n",
                grid);
    fprintf(f, "<h2>Validation split</h2>\n<p>%d label maps synthesized: <a href=\"%s/index.html\">%s/index.html</a>"
               "</p>\n</body></html>\n", r->val_images, r->val_dir, r->val_dir);
    rc = clsynth_atomic_commit(&af, err);
done:
    for (int c = 0; c < N_CURVES; c++) {
        free(cols[c]);
        free(sm[c]);
    }
    return rc;
}
