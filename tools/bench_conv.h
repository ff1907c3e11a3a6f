/* `clsynth bench conv`: every convolution algorithm (direct, im2col + GEMM,
 * implicit GEMM, Winograd, and in a build with oneDNN oneDNN in each of its
 * layouts, blocked and plain) at each conv2d shape one training step of the
 * model flags looks up, forward + backward, beside the algorithm the
 * resolver picks there; totals weighted by the lookups per step. */
#ifndef CLSYNTH_BENCH_CONV_H
#define CLSYNTH_BENCH_CONV_H

#include <stddef.h>

#include "clcore/context.h"
#include "clcore/tuner.h"

/* Measures and prints the table for the conv2d jobs among jobs (the others
 * are skipped): each legal algorithm forced through the "conv2d" descriptor
 * (clsynth_tune_measure: median of `repeats` forward + backward runs after a
 * warm-up), `rounds` interleaved rounds, the fastest kept. Returns 0 or -1
 * with ctx->err set. */
int clsynth_bench_conv(clsynth_ctx *ctx, const clsynth_tune_job *jobs, size_t n_jobs, int repeats, int rounds);

#endif
