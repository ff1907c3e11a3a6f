/* The data-parallel training-step benchmark (`mpirun -np K clsynth bench
 * train`, tools/bench_dist.c). */
#ifndef CLSYNTH_TOOLS_BENCH_DIST_H
#define CLSYNTH_TOOLS_BENCH_DIST_H

#include "tools/dist.h"

/* Runs on every rank of d (size > 1); rank 0 prints (and writes json when
 * not NULL). device: the --device value (mapped per local rank). Finalizes d.
 * Returns the exit status. */
int clsynth_bench_train_distributed(clsynth_dist *d, const char *device, int model_argc, char **model_argv,
                                    int steps, const char *json);

#endif
