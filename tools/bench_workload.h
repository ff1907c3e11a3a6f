/* The model workload shared by `clsynth tune` and `clsynth bench train`: the
 * CC-FPSE model of a configuration (preset and model flags) on synthetic
 * inputs of the right shapes (random labels, instance edges and images), so
 * no dataset is needed to tune or benchmark a device. */
#ifndef CLSYNTH_BENCH_WORKLOAD_H
#define CLSYNTH_BENCH_WORKLOAD_H

#include <stdbool.h>

#include "clcore/context.h"
#include "nets/model.h"
#include "nets/options.h"

typedef struct clsynth_workload {
    clsynth_options opt;
    clsynth_model *m;
    clsynth_tensor *labels, *edges, *real; /* persistent */
    int n, h, w;
} clsynth_workload;

/* Parses model flags (argv: options of nets/options.h, e.g. --preset tiny
 * --batchSize 2); a missing label_nc takes the dataset mode's class count,
 * a missing crop size 256. Builds the model and the inputs. */
int clsynth_workload_init(clsynth_ctx *ctx, int argc, char **argv, clsynth_workload *wl, clsynth_err *err);
void clsynth_workload_free(clsynth_ctx *ctx, clsynth_workload *wl);

/* One full training step (D and G); waits for the device. */
int clsynth_workload_train_step(clsynth_ctx *ctx, clsynth_workload *wl);
/* Inference of G on the batch (no grad); waits for the device. */
int clsynth_workload_infer(clsynth_ctx *ctx, clsynth_workload *wl);

/* Runs one training step (and one inference) with the tuning database's
 * shape recorder on: afterwards clsynth_tunedb_recorded lists every
 * (kernel, shape key) the configuration looks up. */
int clsynth_workload_record(clsynth_ctx *ctx, clsynth_workload *wl);

/* Parses an --emulate value "wg=256,local=32K" (either part optional; K/M
 * suffixes) into *wg and *local (0 = keep). Returns -1 on a bad value. */
int clsynth_parse_emulate(const char *spec, size_t *wg, unsigned long long *local);

#endif
