/* JPEG reading through libjpeg (COCO-Stuff and ADE20K photos are JPEG). */
#ifndef CLSYNTH_IO_JPEG_H
#define CLSYNTH_IO_JPEG_H

#include "io/image.h"

/* Reads a baseline or progressive JPEG as 8-bit RGB (c = 3); grayscale JPEGs
 * give c = 1. CMYK JPEGs are rejected. Errors name the file and the cause. */
int clsynth_jpeg_read(const char *path, clsynth_image *img, clsynth_err *err);

#endif
