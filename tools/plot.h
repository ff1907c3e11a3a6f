/* Line plots of training curves into an RGB image (no text: the HTML report
 * that embeds the PNG carries the legend and axis ranges). */
#ifndef CLSYNTH_PLOT_H
#define CLSYNTH_PLOT_H

#include <stdint.h>

#include "clcore/error.h"

#define CLSYNTH_PLOT_MAX_SERIES 8

typedef struct clsynth_plot_series {
    const char *name;
    const double *y; /* count values; NaN = gap */
    int count;
} clsynth_plot_series;

/* Fixed palette colour of series i (also used by the HTML legend). */
void clsynth_plot_color(int i, uint8_t rgb[3]);

/* Draws the series against their index, all on one y axis [ymin, ymax]
 * (computed from the data), with light grid lines, and writes a PNG.
 * Reports the range used so the caller can print it. */
int clsynth_plot_write(const char *path, int w, int h, const clsynth_plot_series *series, int n_series,
                       double *ymin, double *ymax, clsynth_err *err);

#endif
