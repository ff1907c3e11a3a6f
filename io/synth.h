/* Synthetic street scenes: a dataset that needs no download.
 *
 * A pinhole camera looks down a street: sky with clouds, a distant skyline,
 * building facades in perspective on either side (per-building style, brick
 * or plaster texture, perspective-correct windows), road with asphalt noise,
 * lane markings and crosswalks, curbs and paved sidewalks, grass strips,
 * trees, poles with signs, pedestrians and cars (countable instances), then
 * fog towards the horizon, exposure and sensor noise. Label and instance
 * maps are written by the same drawing code as the pixels, so they agree.
 *
 * Deterministic: the scene is a function of (seed, split, index, size) only;
 * float math is limited to + - * / sqrt and floor (no libm transcendentals),
 * so the bytes do not depend on the C library. */
#ifndef CLSYNTH_IO_SYNTH_H
#define CLSYNTH_IO_SYNTH_H

#include <stdint.h>

#include "clcore/error.h"
#include "io/image.h"

enum {
    CLSYNTH_SYN_SKY,
    CLSYNTH_SYN_BUILDING,
    CLSYNTH_SYN_ROAD,
    CLSYNTH_SYN_SIDEWALK,
    CLSYNTH_SYN_VEGETATION,
    CLSYNTH_SYN_CAR,
    CLSYNTH_SYN_PERSON,
    CLSYNTH_SYN_POLE,
    CLSYNTH_SYN_TERRAIN,
    CLSYNTH_SYN_SIGN,
    CLSYNTH_SYN_NUM_CLASSES
};

/* Class name ("sky", ...) and display colour; NULL / black for bad ids. */
const char *clsynth_synth_class_name(int id);
void clsynth_synth_class_color(int id, uint8_t rgb[3]);

/* Renders scene `index` of a split (0 train, 1 val): image RGB, label and
 * instance 8-bit gray (instance 0 = none), all w×h (w, h >= 16). */
int clsynth_synth_scene(uint64_t seed, int split, int index, int w, int h, clsynth_image *image,
                        clsynth_image *label, clsynth_image *instance, clsynth_err *err);

/* Writes DIR/{train,val}_{label,img,inst}/NNNNNN.png and DIR/classes.txt
 * ("id name r g b" per line). Creates the folders. */
int clsynth_synth_write(const char *dir, int train_count, int val_count, int w, int h,
                        uint64_t seed, clsynth_err *err);

#endif
