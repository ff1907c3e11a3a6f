/* Dataset layouts (--dataset_mode) and their options, named as in
 * SPADE / CC-FPSE.
 *
 *   custom      --label_dir, --image_dir [, --instance_dir], paired by file
 *               stem; or --dataroot with train_label/ train_img/ [train_inst/]
 *               and val_* (the layout `clsynth dataset synth` writes).
 *               label_nc: --label_nc, else the line count of
 *               dataroot/classes.txt.
 *   cityscapes  dataroot/gtFine/{train,val}/CITY/NAME_gtFine_labelIds.png and
 *               NAME_gtFine_instanceIds.png (16-bit), dataroot/leftImg8bit/
 *               {train,val}/CITY/NAME_leftImg8bit.png. label_nc 35.
 *   ade20k      dataroot/images/{training,validation}/NAME.jpg,
 *               dataroot/annotations/{training,validation}/NAME.png. label_nc 150.
 *               Raw 0 = don't care: labels are shifted by -1, 0 becomes 255.
 *   coco        dataroot/{train,val}_img/NAME.jpg, {train,val}_label/NAME.png,
 *               {train,val}_inst/NAME.png. label_nc 182, 255 = don't care.
 *
 * File lists are sorted (strcmp), so sample i is the same file everywhere.
 * Labels are checked when a sample is read: a value >= label_nc that is not
 * the allowed don't-care 255 is an error naming the file, pixel and value. */
#ifndef CLSYNTH_IO_DATASET_H
#define CLSYNTH_IO_DATASET_H

#include <stdint.h>

#include "clcore/error.h"
#include "io/image.h"

#define CLSYNTH_DONTCARE 255
#define CLSYNTH_PATH_MAX 1024

typedef enum clsynth_preprocess_mode {
    CLSYNTH_PRE_UNSET = 0,
    CLSYNTH_PRE_RESIZE_AND_CROP,
    CLSYNTH_PRE_SCALE_WIDTH_AND_CROP,
    CLSYNTH_PRE_SCALE_WIDTH,
    CLSYNTH_PRE_FIXED,
    CLSYNTH_PRE_NONE,
} clsynth_preprocess_mode;

/* Options; 0 / "" means "the dataset mode's default" (filled in by
 * clsynth_data_opts_finalize). */
typedef struct clsynth_data_opts {
    char dataset_mode[32];             /* --dataset_mode (default custom) */
    char dataroot[CLSYNTH_PATH_MAX];   /* --dataroot */
    char label_dir[CLSYNTH_PATH_MAX];  /* --label_dir (custom) */
    char image_dir[CLSYNTH_PATH_MAX];  /* --image_dir (custom) */
    char instance_dir[CLSYNTH_PATH_MAX]; /* --instance_dir (custom) */
    int is_train;                      /* 1: train split, random crop/flip; --phase */
    int label_nc;                      /* --label_nc */
    int no_instance;                   /* --no_instance */
    clsynth_preprocess_mode preprocess_mode; /* --preprocess_mode */
    int load_size;                     /* --load_size */
    int crop_size;                     /* --crop_size */
    float aspect_ratio;                /* --aspect_ratio (W/H) */
    int no_flip;                       /* --no_flip */
    int dontcare_value;                /* value don't-care pixels get in the output
                                          label map (--dontcare_value, default 255) */
    /* filled by finalize */
    int allow_dontcare;                /* 255 is a legal label value */
    int ade20k_shift;                  /* labels - 1, raw 0 → don't care */
} clsynth_data_opts;

/* Generic defaults: custom mode, train split, dontcare_value 255. */
void clsynth_data_opts_init(clsynth_data_opts *o);

/* If argv[*i] is a data option, consumes it (and its value), advances *i
 * past it and returns 1; returns 0 for other arguments, -1 on a bad value. */
int clsynth_data_opts_parse_arg(clsynth_data_opts *o, int argc, char **argv, int *i,
                                clsynth_err *err);

/* Applies the mode's defaults and checks the options. */
int clsynth_data_opts_finalize(clsynth_data_opts *o, clsynth_err *err);

const char *clsynth_preprocess_mode_name(clsynth_preprocess_mode m);
int clsynth_preprocess_mode_parse(const char *s, clsynth_preprocess_mode *m);

typedef struct clsynth_sample_files {
    char *label;
    char *image;
    char *instance; /* NULL without instances */
} clsynth_sample_files;

typedef struct clsynth_dataset {
    clsynth_data_opts opts; /* finalized */
    int has_instance;
    int n;
    clsynth_sample_files *files; /* (n) */
} clsynth_dataset;

/* One sample as read from disk, labels already mapped (ade20k shift) and
 * range-checked. image is RGB; instance.data is NULL without instances. */
typedef struct clsynth_raw_sample {
    clsynth_image image;
    clsynth_idmap label;
    clsynth_idmap instance;
} clsynth_raw_sample;

/* Lists and pairs the files of the selected split (opts need not be
 * finalized; a finalized copy is kept). An empty split, an unpaired file or a
 * missing folder is an error. */
clsynth_dataset *clsynth_dataset_open(const clsynth_data_opts *opts, clsynth_err *err);
void clsynth_dataset_free(clsynth_dataset *ds);

/* Reads sample i and validates it (sizes agree, labels in range). */
int clsynth_dataset_read(const clsynth_dataset *ds, int i, clsynth_raw_sample *s,
                         clsynth_err *err);
void clsynth_raw_sample_free(clsynth_raw_sample *s);

/* Reads and validates every sample; stops at the first error. */
int clsynth_dataset_verify(const clsynth_dataset *ds, clsynth_err *err);

#endif
