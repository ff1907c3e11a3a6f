/* Preprocessing of one sample, as SPADE's get_params / get_transform:
 *
 *   resize_and_crop       resize to load × round(load / aspect_ratio) (load×load
 *                         at the default aspect 1, as SPADE), crop crop_w×crop_h
 *   scale_width_and_crop  width → load (height keeps the aspect), crop
 *   scale_width           width → load, no crop (output size varies)
 *   fixed                 resize to crop_size × round(crop_size / aspect_ratio)
 *   none                  round both sides to a multiple of 32
 *
 * with crop_w = crop_size, crop_h = round(crop_size / aspect_ratio). Labels
 * and instances are resized nearest; images with bilinear interpolation when
 * enlarging and area averaging when shrinking (no aliasing). Crop and flip are
 * the same for label, instance and image; a crop past the border pads (image
 * black, label don't care, instance 0). In training the crop position and the
 * flip (unless no_flip) come from the caller's RNG; otherwise the crop is
 * centred and there is no flip. */
#ifndef CLSYNTH_IO_PREPROCESS_H
#define CLSYNTH_IO_PREPROCESS_H

#include <stdint.h>

#include "io/dataset.h"
#include "io/rng.h"

typedef struct clsynth_prep_params {
    int resize_w, resize_h; /* size after resizing */
    int crop_x, crop_y;     /* top-left of the crop in the resized image */
    int out_w, out_h;       /* output size */
    int flip;               /* horizontal flip */
} clsynth_prep_params;

/* Output size for a source image of src_w×src_h (no randomness). */
void clsynth_preprocess_size(const clsynth_data_opts *o, int src_w, int src_h, int *out_w,
                             int *out_h);

/* Draws crop and flip (rng may be NULL: centred crop, no flip). */
void clsynth_preprocess_params(const clsynth_data_opts *o, int src_w, int src_h,
                               clsynth_rng *rng, clsynth_prep_params *p);

/* Writes image (3, out_h, out_w) in [-1, 1], label (out_h, out_w) with
 * don't care as o->dontcare_value, and, when edge is not NULL, the instance
 * edge map (1, out_h, out_w) (zeros without instances). */
int clsynth_preprocess_apply(const clsynth_data_opts *o, const clsynth_prep_params *p,
                             const clsynth_raw_sample *s, float *image, int32_t *label,
                             float *edge, clsynth_err *err);

/* edge = 1 where the id differs from one of its 4 neighbours, else 0
 * (SPADE's get_edges). ids (h, w) → edge (h, w). */
void clsynth_instance_edges(const int32_t *ids, int w, int h, float *edge);

/* Resizes 8-bit HWC pixels (bilinear up, area average down), per axis. */
int clsynth_resize_u8(const uint8_t *src, int sw, int sh, int c, uint8_t *dst, int dw, int dh,
                      clsynth_err *err);

#endif
