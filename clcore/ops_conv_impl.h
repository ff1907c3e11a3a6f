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
 * (tests/test_conv.c, the op sweep) pick it up. An algorithm that can apply
 * the fused epilogue of clsynth_conv2d_fused as it writes y says so
 * (fuses_epilogue) and reads c->epi. */
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

/* The epilogue an algorithm applies as it writes y (clsynth_conv2d_fused,
 * clcore/ops_conv_fused.c; NULL: y = conv + bias):
 *   u = conv + bias; z = gate ? u * gate : u; y = act(z) + (residual ? residual : 0),
 * u stored into save_u when it is not NULL. gate, residual, save_u have y's shape. */
typedef struct clsynth_conv_epi_run {
    const clsynth_tensor *gate, *residual;
    clsynth_tensor *save_u;
    clsynth_act act;
    float slope;
} clsynth_conv_epi_run;

/* One forward or backward of a conv layer. */
typedef struct clsynth_conv_call {
    clsynth_conv_geom g;
    const clsynth_kcfg *cfg;  /* the resolved "conv2d" configuration (cfg->v[CONV2D_*]) */
    clsynth_kforce *force;    /* the caller's force, for the algorithm's own kernels */
    clsynth_tensor *x, *w, *b; /* input (N,Cin,H,W), weight (Cout,Cin,KH,KW), bias (1,Cout,1,1) or NULL */
    clsynth_tensor *y;         /* forward: the output (N,Cout,OH,OW), uninitialized */
    clsynth_tensor *dy;        /* backward: d(loss)/dy */
    clsynth_tensor *dx, *dw;   /* backward: accumulate (+=) into these; NULL when not wanted */
    bool dx_fresh;             /* backward: dx is a new gradient, its contents undefined: an impl
                                  with stores_dx writes it (=), for the others the dispatcher
                                  zero-fills it first */
    const char *what;          /* "conv2d forward of 'x' (2, 3, 9, 7)", for errors */
    const clsynth_conv_epi_run *epi; /* forward: the fused epilogue, only for an impl with
                                        fuses_epilogue (NULL: none) */
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
    /* The forward applies c->epi itself as it writes y (one launch); else
     * clsynth_conv2d_fused runs one epilogue kernel after it. */
    bool fuses_epilogue;
    /* The backward honours c->dx_fresh (stores instead of adding). */
    bool stores_dx;
} clsynth_conv_impl;

extern const clsynth_conv_impl clsynth_conv_impl_direct;   /* ops_conv_direct.c */
extern const clsynth_conv_impl clsynth_conv_impl_gemm;     /* ops_conv_gemm.c */
extern const clsynth_conv_impl clsynth_conv_impl_igemm;    /* ops_conv_igemm.c */
extern const clsynth_conv_impl clsynth_conv_impl_winograd; /* ops_conv_winograd.c */
extern const clsynth_conv_impl clsynth_conv_impl_dnnl;     /* ops_conv_dnnl.c */

/* The algorithm's implementation (NULL for AUTO or a value without one). */
const clsynth_conv_impl *clsynth_conv_impl_of(clsynth_conv_algo a);
/* The resolved "conv2d" configuration at g into cfg, and the algorithm: the
 * caller's when it named one, else the configuration's. CLSYNTH_CONV_AUTO on
 * failure (ctx->err set). */
clsynth_conv_algo clsynth_conv_resolve(clsynth_ctx *ctx, const clsynth_conv_geom *g, clsynth_conv_algo algo,
                                       clsynth_kforce *force, clsynth_kcfg *cfg);
/* The backward of a conv of algorithm a from dy: the gradients of x, w and b
 * that require one, accumulated (allocated on first use). */
int clsynth_conv_run_backward(clsynth_ctx *ctx, const clsynth_conv_geom *g, clsynth_conv_algo a,
                              clsynth_kforce *force, clsynth_tensor *x, clsynth_tensor *w, clsynth_tensor *b,
                              clsynth_tensor *dy);

/* The descriptors' shape of a geometry. */
clsynth_conv_shape clsynth_conv_shape_of(const clsynth_conv_geom *g);

/* Output size of s. */
int clsynth_conv_oh(const clsynth_conv_shape *s);
int clsynth_conv_ow(const clsynth_conv_shape *s);

/* ---- implicit GEMM (ops_conv_igemm.c, kernels/conv_igemm.cl) and Winograd
 *      (ops_conv_winograd.c, kernels/conv_winograd.cl), by conv shape ---- */
/* y = epilogue(conv(x, w) + b); b, epi may be NULL. */
int clsynth_conv_igemm_forward(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force,
                               const clsynth_tensor *x, const clsynth_tensor *w, const clsynth_tensor *b,
                               const clsynth_conv_epi_run *epi, clsynth_tensor *y);
/* dx += conv_transpose(dy, w) */
int clsynth_conv_igemm_backward_data(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force,
                                     const clsynth_tensor *dy, const clsynth_tensor *w, clsynth_tensor *dx);
/* dw += sum over the batch of dy (x) x */
int clsynth_conv_igemm_backward_weight(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force,
                                       const clsynth_tensor *dy, const clsynth_tensor *x, clsynth_tensor *dw);
/* C[z] = A[z] B[z] for z < batches, row-major (M, K) x (K, N), element strides
 * sa, sb, sc between the batches; resolved as descriptor def at shape (the
 * tuned configuration of the algorithm that calls it). */
int clsynth_igemm_batched(clsynth_ctx *ctx, const clsynth_kdef *def, const void *shape, clsynth_kforce *force,
                          cl_mem A, size_t a_off, size_t sa, cl_mem B, size_t b_off, size_t sb, cl_mem C,
                          size_t c_off, size_t sc, int M, int N, int K, int batches);
/* Whether Winograd F(2x2, 3x3) applies to s (3x3, stride 1), and to its
 * backward data (also pad <= 2: the conv of dy with w rotated, pad 2 - pad). */
bool clsynth_conv_winograd_applies(const clsynth_conv_shape *s);
bool clsynth_conv_winograd_backward_applies(const clsynth_conv_shape *s);
int clsynth_conv_winograd_forward(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force,
                                  const clsynth_tensor *x, const clsynth_tensor *w, const clsynth_tensor *b,
                                  const clsynth_conv_epi_run *epi, clsynth_tensor *y);
int clsynth_conv_winograd_backward_data(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_kforce *force,
                                        const clsynth_tensor *dy, const clsynth_tensor *w, clsynth_tensor *dx);

/* y (N,C,H,W) += b (1,C,1,1), one launch (kernels/bias.cl). */
int clsynth_conv_bias_add(clsynth_ctx *ctx, clsynth_tensor *y, clsynth_tensor *b);
/* db (1,C,1,1) += sum over (N,H,W) of dy (N,C,H,W): a per-channel tree reduction. */
int clsynth_conv_bias_grad(clsynth_ctx *ctx, clsynth_tensor *dy, clsynth_tensor *db);
/* The work-group size of that reduction for kernel k (channel_sum_acc, or a
 * kernel that sums in its order: conv_epi_backward_bias) at dy's shape; 0 on
 * failure. */
size_t clsynth_conv_bias_grad_local(clsynth_ctx *ctx, cl_kernel k, const char *kname, const clsynth_tensor *dy);

#endif
