#include "tools/results.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomic.h"
#include "io/grid.h"
#include "io/png.h"

struct clsynth_results {
    char dir[1024];
    char title[256];
    char **names;
    int *has_real;
    int count, cap;
};

clsynth_results *clsynth_results_open(const char *dir, const char *title, clsynth_err *err)
{
    clsynth_results *r = calloc(1, sizeof *r);
    if (!r) {
        clsynth_fail(err, "out of memory");
        return NULL;
    }
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    snprintf(r->title, sizeof r->title, "%s", title);
    const char *subs[3] = { "label", "synthesized", "real" };
    for (int i = 0; i < 3; i++) {
        char p[1100];
        snprintf(p, sizeof p, "%s/%s", dir, subs[i]);
        if (clsynth_mkdirs(p, err)) {
            free(r);
            return NULL;
        }
    }
    return r;
}

static int write_rgb(const char *path, int h, int w, const float *chw, clsynth_err *err)
{
    uint8_t *px = malloc((size_t)h * w * 3);
    if (!px)
        return clsynth_fail(err, "out of memory writing %s", path);
    clsynth_chw_to_hwc_u8(chw, 3, h, w, px);
    clsynth_image im = { .w = w, .h = h, .c = 3, .data = px };
    int rc = clsynth_png_write(path, &im, err);
    free(px);
    return rc;
}

int clsynth_results_add(clsynth_results *r, const char *name, int h, int w, const int32_t *label,
                        const float *synth, const float *real, clsynth_err *err)
{
    char p[1400];
    uint8_t *px = malloc((size_t)h * w * 3);
    if (!px)
        return clsynth_fail(err, "out of memory");
    clsynth_label_colorize(label, w, h, px);
    clsynth_image im = { .w = w, .h = h, .c = 3, .data = px };
    snprintf(p, sizeof p, "%s/label/%s.png", r->dir, name);
    int rc = clsynth_png_write(p, &im, err);
    free(px);
    if (rc)
        return -1;
    snprintf(p, sizeof p, "%s/synthesized/%s.png", r->dir, name);
    if (write_rgb(p, h, w, synth, err))
        return -1;
    if (real) {
        snprintf(p, sizeof p, "%s/real/%s.png", r->dir, name);
        if (write_rgb(p, h, w, real, err))
            return -1;
    }
    if (r->count == r->cap) {
        int cap = r->cap ? r->cap * 2 : 32;
        char **nn = realloc(r->names, sizeof *nn * (size_t)cap);
        if (!nn)
            return clsynth_fail(err, "out of memory");
        r->names = nn;
        int *hr = realloc(r->has_real, sizeof *hr * (size_t)cap);
        if (!hr)
            return clsynth_fail(err, "out of memory");
        r->has_real = hr;
        r->cap = cap;
    }
    r->names[r->count] = strdup(name);
    if (!r->names[r->count])
        return clsynth_fail(err, "out of memory");
    r->has_real[r->count++] = real != NULL;
    return 0;
}

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

int clsynth_results_close(clsynth_results *r, clsynth_err *err)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/index.html", r->dir);
    clsynth_atomic_file af;
    int rc = clsynth_atomic_open(&af, path, err);
    if (rc == 0) {
        FILE *f = af.f;
        fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f);
        html_escape(f, r->title);
        fputs("</title>\n<style>body{font-family:sans-serif} td{text-align:center;padding:4px}"
              " img{width:192px;image-rendering:pixelated}</style></head><body>\n<h1>", f);
        html_escape(f, r->title);
        fprintf(f, "</h1>\n<p>%d label maps</p>\n<table>\n<tr><th>name</th><th>label</th><th>synthesized</th>"
                   "<th>real</th></tr>\n", r->count);
        for (int i = 0; i < r->count; i++) {
            fputs("<tr><td>", f);
            html_escape(f, r->names[i]);
            fprintf(f, "</td><td><img src=\"label/%s.png\"></td><td><img src=\"synthesized/%s.png\"></td><td>",
                    r->names[i], r->names[i]);
            if (r->has_real[i])
                fprintf(f, "<img src=\"real/%s.png\">", r->names[i]);
            else
                fputs("&mdash;", f);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n</body></html>\n", f);
        rc = clsynth_atomic_commit(&af, err);
    }
    for (int i = 0; i < r->count; i++)
        free(r->names[i]);
    free(r->names);
    free(r->has_real);
    free(r);
    return rc;
}
