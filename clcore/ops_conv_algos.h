/* Internal interface between the convolution op (clcore/ops_conv.c), its fused
 * variant (clcore/ops_conv_fused.c) and the algorithms of their own files
 * (clcore/ops_conv_igemm.c, clcore/ops_conv_winograd.c). Not a public header:
 * the ops are in clcore/ops.h.
 *
 * Every function enqueues work on ctx's queue and returns 0, or -1 with ctx->err
 * set; tensors are NCHW as in clcore/ops.h, shapes as clsynth_conv_shape. */
#ifndef CLSYNTH_OPS_CONV_ALGOS_H
#define CLSYNTH_OPS_CONV_ALGOS_H

#include "clcore/kdefs.h"
#include "clcore/ops.h"

/* The epilogue an algorithm applies as it writes y (NULL: y = conv + bias):
 *   u = conv + bias; z = gate ? u * gate : u; y = act(z) + (residual ? residual : 0),
 * u stored into save_u when it is not NULL. gate, residual, save_u have y's shape. */
typedef struct clsynth_conv_epi_run {
    const clsynth_tensor *gate, *residual;
    clsynth_tensor *save_u;
    clsynth_act act;
    float slope;
} clsynth_conv_epi_run;

/* ---- clcore/ops_conv.c ---- */
/* The algorithm of a conv at s: algo itself unless AUTO, else the resolved
 * "conv2d" choice. CLSYNTH_CONV_AUTO on failure (ctx->err set). */
clsynth_conv_algo clsynth_conv2d_pick(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_conv_algo algo,
                                      struct clsynth_kforce *force);
/* y = conv(x, w) + b with algorithm algo (not AUTO), nothing recorded. */
int clsynth_conv2d_enqueue(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_conv_algo algo,
                           struct clsynth_kforce *force, clsynth_tensor *x, clsynth_tensor *w, clsynth_tensor *b,
                           clsynth_tensor *y);
/* The backward of that conv from dy: the gradients of x, w and b that
 * require one are accumulated (allocated on first use). */
int clsynth_conv2d_enqueue_backward(clsynth_ctx *ctx, const clsynth_conv_shape *s, clsynth_conv_algo algo,
                                    struct clsynth_kforce *force, clsynth_tensor *x, clsynth_tensor *w,
                                    clsynth_tensor *b, clsynth_tensor *dy);
/* Output size of s. */
int clsynth_conv_oh(const clsynth_conv_shape *s);
int clsynth_conv_ow(const clsynth_conv_shape *s);

/* ---- clcore/ops_conv_igemm.c: implicit GEMM (kernels/conv_igemm.cl) ---- */
/* y = epilogue(conv(x, w) + b); b may be NULL. */
int clsynth_conv_igemm_forward(clsynth_ctx *ctx, const clsynth_conv_shape *s, struct clsynth_kforce *force,
                               const clsynth_tensor *x, const clsynth_tensor *w, const clsynth_tensor *b,
                               const clsynth_conv_epi_run *epi, clsynth_tensor *y);
/* dx += conv_transpose(dy, w) */
int clsynth_conv_igemm_backward_data(clsynth_ctx *ctx, const clsynth_conv_shape *s, struct clsynth_kforce *force,
                                     const clsynth_tensor *dy, const clsynth_tensor *w, clsynth_tensor *dx);
/* dw += sum over the batch of dy (x) x */
int clsynth_conv_igemm_backward_weight(clsynth_ctx *ctx, const clsynth_conv_shape *s,
                                       struct clsynth_kforce *force, const clsynth_tensor *dy,
                                       const clsynth_tensor *x, clsynth_tensor *dw);
/* C[z] = A[z] B[z] for z < batches, row-major (M, K) x (K, N), element strides
 * sa, sb, sc between the batches; resolved as descriptor def at shape (the
 * tuned configuration of the algorithm that calls it). */
int clsynth_igemm_batched(clsynth_ctx *ctx, const clsynth_kdef *def, const void *shape,
                          struct clsynth_kforce *force, cl_mem A, size_t a_off, size_t sa, cl_mem B, size_t b_off,
                          size_t sb, cl_mem C, size_t c_off, size_t sc, int M, int N, int K, int batches);

/* ---- clcore/ops_conv_winograd.c: Winograd F(2x2, 3x3) (kernels/conv_winograd.cl) ---- */
/* Whether Winograd applies to s (3x3, stride 1). */
bool clsynth_conv_winograd_applies(const clsynth_conv_shape *s);
/* y = epilogue(conv(x, w) + b), 3x3 stride 1 only. */
int clsynth_conv_winograd_forward(clsynth_ctx *ctx, const clsynth_conv_shape *s, struct clsynth_kforce *force,
                                  const clsynth_tensor *x, const clsynth_tensor *w, const clsynth_tensor *b,
                                  const clsynth_conv_epi_run *epi, clsynth_tensor *y);
/* dx += conv_transpose(dy, w) as the Winograd conv of dy with w flipped, pad
 * 2 - pad (3x3 stride 1, pad <= 2 only: clsynth_conv_winograd_backward_applies). */
bool clsynth_conv_winograd_backward_applies(const clsynth_conv_shape *s);
int clsynth_conv_winograd_backward_data(clsynth_ctx *ctx, const clsynth_conv_shape *s,
                                        struct clsynth_kforce *force, const clsynth_tensor *dy,
                                        const clsynth_tensor *w, clsynth_tensor *dx);

#endif
