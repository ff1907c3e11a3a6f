/* PNG files through libpng.
 *
 * Reading accepts every PNG colour type (gray, gray+alpha, palette, RGB,
 * RGBA) at every bit depth. Writing produces 8-bit gray or RGB and replaces
 * the file atomically. Errors name the file and the cause (not a PNG,
 * truncated, unsupported). */
#ifndef CLSYNTH_IO_PNG_H
#define CLSYNTH_IO_PNG_H

#include "io/image.h"

/* Reads as 8-bit pixels: gray and gray+alpha → c = 1; RGB, RGBA and palette
 * → c = 3. Alpha is dropped, 16-bit samples are scaled to 8 bits. */
int clsynth_png_read(const char *path, clsynth_image *img, clsynth_err *err);

/* Reads raw per-pixel ids without any conversion: gray (1..16 bit) → the
 * gray value (full 16 bits kept), palette → the palette index, gray+alpha →
 * the gray value. RGB images are rejected (an id map must be single-channel). */
int clsynth_png_read_ids(const char *path, clsynth_idmap *map, clsynth_err *err);

/* Writes an 8-bit gray (c = 1) or RGB (c = 3) PNG atomically. */
int clsynth_png_write(const char *path, const clsynth_image *img, clsynth_err *err);

#endif
