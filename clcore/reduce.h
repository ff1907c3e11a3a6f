/* Deterministic sum reductions over any subset of the (N, C, H, W) dims, for
 * ops that need a sum: broadcast gradients, bias gradients, per-channel
 * statistics, losses. No tape records, no host sync.
 *
 *   out = alpha * sum over the dims where out has size 1 and x has not of
 *         map(x, y) + beta * out
 *
 * Every dim of out equals x's or is 1. Examples:
 *   whole tensor      out (1,1,1,1)
 *   per channel       out (1,C,1,1)     (conv/linear bias grad, batch-norm stats)
 *   per sample+chan   out (N,C,1,1)     (instance norm)
 *   rows of (R, Cols) x viewed (1,1,R,Cols), out (1,1,R,1)
 *
 * Kernels: kernels/reduce.cl (reduce_small for reduced size <= 64, else the
 * two-stage work-group tree reduce_groups). The result is a pure function of
 * the shapes, the device and the chosen work-group size: no float atomics. */
#ifndef CLSYNTH_REDUCE_H
#define CLSYNTH_REDUCE_H

#include "clcore/context.h"
#include "clcore/tensor.h"

typedef enum clsynth_reduce_map {
    CLSYNTH_MAP_ID = 0,      /* x */
    CLSYNTH_MAP_PROD = 1,    /* x * y */
    CLSYNTH_MAP_HINGE = 2,   /* max(0, 1 - s * x) */
    CLSYNTH_MAP_ABSDIFF = 3, /* |x - y| */
    CLSYNTH_MAP_SQDIFF = 4,  /* (x - y)^2 */
    CLSYNTH_MAP_KL = 5,      /* 1 + y - x^2 - exp(y) */
} clsynth_reduce_map;

/* out = alpha * sum(map(x, y)) + beta * out over the dims where out is 1.
 * y has x's shape (NULL for maps that use only x). beta == 0 never reads out
 * (so out may hold garbage). out must not overlap x or y. Returns 0 or -1 with
 * ctx->err naming the tensors. */
int clsynth_reduce_to(clsynth_ctx *ctx, const clsynth_tensor *x, const clsynth_tensor *y,
                      clsynth_reduce_map map, float s, clsynth_tensor *out, float alpha, float beta);

/* The same with a configuration forced on the reduce_groups kernel (the
 * tuner, bench, tests: clcore/kdef.h); force NULL = clsynth_reduce_to. */
struct clsynth_kforce;
int clsynth_reduce_to_forced(clsynth_ctx *ctx, const clsynth_tensor *x, const clsynth_tensor *y,
                             clsynth_reduce_map map, float s, clsynth_tensor *out, float alpha, float beta,
                             struct clsynth_kforce *force);

/* Shorthand: out = alpha * sum(x) + beta * out (map ID). */
int clsynth_reduce_sum_to(clsynth_ctx *ctx, const clsynth_tensor *x, clsynth_tensor *out, float alpha,
                          float beta);

/* The work-group size reduce_groups uses for (K outputs, R reduced elements) on this
 * context: resolved by clsynth_kconfig (tuned, else min(256, kernel/device limits)). */
size_t clsynth_reduce_local_size(clsynth_ctx *ctx, size_t K, size_t R);

#endif
