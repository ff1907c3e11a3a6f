/* The convolution algorithms behind clsynth_conv2d (clcore/ops_conv.c), for
 * the files that implement them. Not a public header: only clcore/ops_conv*.c
 * include it.
 *
 * Dispatch: clsynth_conv2d validates its arguments, resolves the "conv2d"
 * descriptor (clcore/ops_conv_kdef.c: its ALGO and each algorithm's own
 * tunables) once per call, and hands a clsynth_conv_call to the algorithm's
 * clsynth_conv_impl, found in the table of ops_conv.c by the
 * clsynth_conv_algo value. The tape node keeps the algorithm and the
 * resolved configuration, so the backward runs the same algorithm with the
 * same tunables as its forward.
 *
 * Adding an algorithm: a value in clsynth_conv_algo (clcore/ops.h), its
 * clsynth_conv_impl in a file of its own (ops_conv_<name>.c), one line in
 * the table of ops_conv.c, the value among the conv2d descriptor's ALGO
 * values (and its tunables there, with .only_algo), and the tests
 * (tests/test_conv.c, the op sweep) pick it up. */
#ifndef CLSYNTH_OPS_CONV_IMPL_H
#define CLSYNTH_OPS_CONV_IMPL_H

#include <stdbool.h>

#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/ops.h"

/* Output (OH, OW) of input (H, W) through a KHxKW kernel, stride, zero pad. */
typedef struct clsynth_conv_geom {
    int N, Cin, H, W, Cout, KH, KW, OH, OW, stride, pad;
} clsynth_conv_geom;

/* One forward or backward of a conv layer. */
typedef struct clsynth_conv_call {
    clsynth_conv_geom g;
    const clsynth_kcfg *cfg;  /* the resolved "conv2d" configuration (cfg->v[CONV2D_*]) */
    clsynth_kforce *force;    /* the caller's force, for the algorithm's own kernels */
    clsynth_tensor *x, *w, *b; /* input (N,Cin,H,W), weight (Cout,Cin,KH,KW), bias (1,Cout,1,1) or NULL */
    clsynth_tensor *y;         /* forward: the output (N,Cout,OH,OW), uninitialized */
    clsynth_tensor *dy;        /* backward: d(loss)/dy */
    clsynth_tensor *dx, *dw;   /* backward: accumulate (+=) into these; NULL when not wanted */
    const char *what;          /* "conv2d forward of 'x' (2, 3, 9, 7)", for errors */
} clsynth_conv_call;

typedef struct clsynth_conv_impl {
    const char *name; /* clsynth_conv_algo_name */
    /* y = conv(x, w) + b (the algorithm adds the bias itself: fused, or
     * clsynth_conv_bias_add). 0 or -1 with ctx->err set. */
    int (*forward)(clsynth_ctx *ctx, const clsynth_conv_call *c);
    /* dx += conv_transpose(dy, w) and dw += sum_n dy_n (x) x_n, whichever is
     * wanted (the bias gradient is the dispatcher's). Deterministic: the same
     * inputs give bit-identical gradients. */
    int (*backward)(clsynth_ctx *ctx, const clsynth_conv_call *c);
} clsynth_conv_impl;

extern const clsynth_conv_impl clsynth_conv_impl_direct; /* ops_conv_direct.c */
extern const clsynth_conv_impl clsynth_conv_impl_gemm;   /* ops_conv_gemm.c */

/* The descriptors' shape of a geometry. */
clsynth_conv_shape clsynth_conv_shape_of(const clsynth_conv_geom *g);

/* y (N,C,H,W) += b (1,C,1,1), one launch (kernels/bias.cl). */
int clsynth_conv_bias_add(clsynth_ctx *ctx, clsynth_tensor *y, clsynth_tensor *b);
/* db (1,C,1,1) += sum over (N,H,W) of dy (N,C,H,W): a per-channel tree reduction. */
int clsynth_conv_bias_grad(clsynth_ctx *ctx, clsynth_tensor *dy, clsynth_tensor *db);

#endif
