/* clsynth ablate (tools/cmd_ablate.c), by job: the config file
 * (tools/ablate_config.c), the pipeline of each variant - data, segmenter,
 * training, evaluation, through the other commands (tools/ablate_run.c) - and
 * the tables and the grid (tools/ablate_report.c). */
#ifndef CLSYNTH_TOOLS_ABLATE_H
#define CLSYNTH_TOOLS_ABLATE_H

#include "clcore/context.h"
#include "clcore/error.h"
#include "tools/eval.h"

#define ABL_MAX_VARIANTS 16
#define ABL_MAX_TOKENS 128

typedef struct abl_variant {
    char name[64];
    char opts[1024];
} abl_variant;

typedef struct abl_config {
    char out[1024];
    char dataroot[1024];
    int synth_train, synth_val, synth_w, synth_h;
    unsigned long long synth_seed;
    int has_synth;
    char common[2048];
    char segmenter[1024];
    char eval[512];
    abl_variant v[ABL_MAX_VARIANTS];
    int nv;
} abl_config;

typedef struct abl_row {
    int done;
    char error[512]; /* why the variant failed (done = 0) */
    long iterations;
    double train_seconds;
    long params_g, params_d, params_e;
    clsynth_eval_result r;
} abl_row;

/* ---- tools/ablate_config.c ---- */
/* Reads the config (format: tools/cmd_ablate.c); errors name file and line. */
int clsynth_ablate_parse_config(const char *path, abl_config *c, clsynth_err *err);
/* Splits s (modified) at blanks into tok[*n...] (at most ABL_MAX_TOKENS). */
int clsynth_ablate_tokenize(char *s, char **tok, int *n, clsynth_err *err);

/* ---- tools/ablate_run.c ---- */
/* Writes the synthetic dataset when the config asks and it is missing. */
int clsynth_ablate_ensure_data(const abl_config *c, clsynth_err *err);
/* Trains the evaluation segmenter (clsynth segmenter train) unless seg_path exists. */
int clsynth_ablate_ensure_segmenter(const abl_config *c, const char *device, const char *seg_path, clsynth_err *err);
/* Trains (or resumes) and evaluates one variant into row; *stopped gets a
 * signal that stopped training (then row is not done). */
int clsynth_ablate_run_variant(clsynth_ctx *ctx, const abl_config *c, const abl_variant *v, const char *seg_path,
                               abl_row *row, int *stopped, clsynth_err *err);

/* ---- tools/ablate_report.c ---- */
/* OUT/ablation.csv and OUT/ablation.md. */
int clsynth_ablate_write_tables(const abl_config *c, const char *config_path, const abl_row *rows,
                                const char *seg_path, const char *device_name, clsynth_err *err);
/* label | real | one column per finished variant, from their eval samples. */
int clsynth_ablate_write_grid(const abl_config *c, const abl_row *done, const char *path, clsynth_err *err);

#endif
