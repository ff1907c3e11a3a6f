/* Host images and id maps: the currency of the io/ layer.
 *
 * clsynth_image holds 8-bit pixels, row-major, channels interleaved (HWC).
 * clsynth_idmap holds one int32 per pixel: label class ids, instance ids
 * (Cityscapes instanceIds need 16 bits, so ids are never squeezed into bytes). */
#ifndef CLSYNTH_IO_IMAGE_H
#define CLSYNTH_IO_IMAGE_H

#include <stdint.h>

#include "clcore/error.h"

/* Largest accepted width or height of any image the io layer reads. */
#define CLSYNTH_IMAGE_MAX_DIM 16384

typedef struct clsynth_image {
    int w, h, c;     /* c = 1 (gray) or 3 (RGB) */
    uint8_t *data;   /* (H, W, C) */
} clsynth_image;

typedef struct clsynth_idmap {
    int w, h;
    int32_t *data;   /* (H, W) */
} clsynth_idmap;

/* Allocates zeroed pixels; checks the dimensions. */
int clsynth_image_alloc(clsynth_image *img, int w, int h, int c, clsynth_err *err);
int clsynth_idmap_alloc(clsynth_idmap *map, int w, int h, clsynth_err *err);
void clsynth_image_free(clsynth_image *img);
void clsynth_idmap_free(clsynth_idmap *map);

/* Replaces a gray image by its RGB copy (no-op for c = 3). */
int clsynth_image_to_rgb(clsynth_image *img, clsynth_err *err);

/* Reads a PNG or JPEG (chosen by the file's signature, not its name) as
 * 8-bit gray or RGB. */
int clsynth_image_read(const char *path, clsynth_image *img, clsynth_err *err);

#endif
