#include "tools/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/png.h"

void clsynth_plot_color(int i, uint8_t rgb[3])
{
    static const uint8_t pal[CLSYNTH_PLOT_MAX_SERIES][3] = {
        { 31, 119, 180 }, { 255, 127, 14 }, { 44, 160, 44 }, { 214, 39, 40 },
        { 148, 103, 189 }, { 140, 86, 75 }, { 227, 119, 194 }, { 23, 190, 207 },
    };
    memcpy(rgb, pal[i % CLSYNTH_PLOT_MAX_SERIES], 3);
}

static void put(uint8_t *img, int w, int h, int x, int y, const uint8_t c[3])
{
    if (x < 0 || y < 0 || x >= w || y >= h)
        return;
    memcpy(img + ((size_t)y * w + x) * 3, c, 3);
}

/* Bresenham, 2 px thick */
static void line(uint8_t *img, int w, int h, int x0, int y0, int x1, int y1, const uint8_t c[3])
{
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        put(img, w, h, x0, y0, c);
        put(img, w, h, x0, y0 + 1, c);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

int clsynth_plot_write(const char *path, int w, int h, const clsynth_plot_series *series, int n_series,
                       double *ymin_out, double *ymax_out, clsynth_err *err)
{
    if (w < 64 || h < 64 || n_series < 1 || n_series > CLSYNTH_PLOT_MAX_SERIES)
        return clsynth_fail(err, "plot %s: bad size %dx%d or series count %d", path, w, h, n_series);
    double lo = INFINITY, hi = -INFINITY;
    int maxn = 1;
    for (int s = 0; s < n_series; s++) {
        if (series[s].count > maxn)
            maxn = series[s].count;
        for (int i = 0; i < series[s].count; i++)
            if (isfinite(series[s].y[i])) {
                lo = fmin(lo, series[s].y[i]);
                hi = fmax(hi, series[s].y[i]);
            }
    }
    if (!isfinite(lo)) {
        lo = 0;
        hi = 1;
    }
    if (hi - lo < 1e-9) {
        hi += 0.5;
        lo -= 0.5;
    }
    double pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    uint8_t *img = malloc((size_t)w * h * 3);
    if (!img)
        return clsynth_fail(err, "plot %s: out of memory", path);
    memset(img, 255, (size_t)w * h * 3);
    const int m = 8; /* margin */
    const uint8_t grid[3] = { 225, 225, 225 }, axis[3] = { 90, 90, 90 };
    for (int g = 0; g <= 4; g++) {
        int y = m + (h - 2 * m) * g / 4, x = m + (w - 2 * m) * g / 4;
        line(img, w, h, m, y, w - m, y, grid);
        line(img, w, h, x, m, x, h - m, grid);
    }
    if (lo < 0 && hi > 0) { /* the zero line */
        int y0 = m + (int)((hi - 0) / (hi - lo) * (h - 2 * m));
        line(img, w, h, m, y0, w - m, y0, axis);
    }
    line(img, w, h, m, h - m, w - m, h - m, axis);
    line(img, w, h, m, m, m, h - m, axis);
    for (int s = 0; s < n_series; s++) {
        uint8_t c[3];
        clsynth_plot_color(s, c);
        int px = -1, py = -1;
        for (int i = 0; i < series[s].count; i++) {
            double v = series[s].y[i];
            if (!isfinite(v)) {
                px = -1;
                continue;
            }
            int x = m + (int)((double)i / (maxn > 1 ? maxn - 1 : 1) * (w - 2 * m));
            int y = m + (int)((hi - v) / (hi - lo) * (h - 2 * m));
            if (px >= 0)
                line(img, w, h, px, py, x, y, c);
            else
                put(img, w, h, x, y, c);
            px = x;
            py = y;
        }
    }
    clsynth_image im = { .w = w, .h = h, .c = 3, .data = img };
    int rc = clsynth_png_write(path, &im, err);
    free(img);
    if (ymin_out)
        *ymin_out = lo;
    if (ymax_out)
        *ymax_out = hi;
    return rc;
}
