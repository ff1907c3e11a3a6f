/* Image grids for looking at results: one row per sample,
 * colourised label | synthesized | real (real optional). */
#ifndef CLSYNTH_IO_GRID_H
#define CLSYNTH_IO_GRID_H

#include <stdint.h>

#include "clcore/error.h"

/* Fixed palette: class k gets a distinct colour (the PASCAL VOC bit pattern of
 * k + 1, so class 0 is not black); 255 (don't care) and negative ids are black. */
void clsynth_label_color(int32_t id, uint8_t rgb[3]);

/* label (H, W) → rgb (H, W, 3). */
void clsynth_label_colorize(const int32_t *label, int w, int h, uint8_t *rgb);

/* float (C, H, W) in [-1, 1] → uint8 (H, W, C), clamped and rounded. */
void clsynth_chw_to_hwc_u8(const float *chw, int c, int h, int w, uint8_t *hwc);

/* uint8 (H, W, C) → float (C, H, W) in [-1, 1]. */
void clsynth_hwc_u8_to_chw(const uint8_t *hwc, int c, int h, int w, float *chw);

/* Writes an RGB PNG of n rows: label (N, H, W) colourised | synth (N, 3, H, W)
 * | real (N, 3, H, W), with a 2-pixel gray gap between tiles. real may be
 * NULL (two columns). */
int clsynth_grid_write(const char *path, int n, int h, int w, const int32_t *label,
                       const float *synth, const float *real, clsynth_err *err);

#endif
