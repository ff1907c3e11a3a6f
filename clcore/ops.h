/* Differentiable ops. Each returns a new activation tensor (or NULL with
 * ctx->err set; an op given a NULL input or a failed ctx returns NULL, so a
 * chain of ops is checked once at its end) and records a tape node when a
 * gradient is needed. Shapes are (N, C, H, W). Every op has a plain-C
 * reference in tests/ref_*.h (ref_conv.h, ref_norm.h, ...) used by the tests. */
#ifndef CLSYNTH_OPS_H
#define CLSYNTH_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "clcore/autograd.h"
#include "clcore/context.h"
#include "clcore/kdefs.h"
#include "clcore/params.h"
#include "clcore/tensor.h"

struct clsynth_kforce; /* clcore/kdef.h */

/* ---- convolution (clcore/ops_conv.c: dispatch; ops_conv_direct.c, ops_conv_gemm.c,
 *      ops_conv_igemm.c, ops_conv_winograd.c: the algorithms; clcore/ops_linear.c: linear) ---- */
typedef enum clsynth_conv_algo {
    CLSYNTH_CONV_AUTO = 0,     /* tuned choice, else heuristic (1x1 -> GEMM) */
    CLSYNTH_CONV_DIRECT,       /* direct tiled OpenCL kernel */
    CLSYNTH_CONV_IM2COL_GEMM,  /* im2col + CLBlast GEMM (1x1: GEMM without im2col) */
    CLSYNTH_CONV_IGEMM,        /* implicit GEMM over the batch (no column buffer), fused epilogue */
    CLSYNTH_CONV_WINOGRAD,     /* Winograd F(2x2, 3x3): 3x3 stride 1 only; backward data Winograd
                                  too (pad <= 2), backward weight implicit GEMM */
    CLSYNTH_CONV_DNNL,         /* oneDNN's CPU convolutions on the mapped buffers: host-CPU devices
                                  of a build with oneDNN (clsynth_conv_dnnl_capable) */
    CLSYNTH_CONV_ALGO_COUNT
} clsynth_conv_algo;
const char *clsynth_conv_algo_name(clsynth_conv_algo a);
/* Whether CLSYNTH_CONV_DNNL runs on the device: a build with oneDNN
 * (CLSYNTH_HAVE_DNNL) and a host-CPU device (clsynth_device_host_memory). */
bool clsynth_conv_dnnl_capable(const clsynth_device_info *dev);
/* Whether oneDNN's convolution takes s: its output size needs no negative
 * right padding (a stride that leaves input rows unread with a small pad). */
bool clsynth_conv_dnnl_applies(const clsynth_conv_shape *s);
/* Frees the context's oneDNN engine and primitives (clsynth_ctx_free calls it). */
void clsynth_conv_dnnl_free(clsynth_ctx *ctx);

/* x (N,Cin,H,W), w (Cout,Cin,KH,KW), bias (1,Cout,1,1) or NULL.
 * y (N,Cout,(H+2p-KH)/s+1,(W+2p-KW)/s+1). Zero padding, groups = 1. */
clsynth_tensor *clsynth_conv2d(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w,
                               clsynth_tensor *bias, int stride, int pad);
clsynth_tensor *clsynth_conv2d_algo(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w,
                                    clsynth_tensor *bias, int stride, int pad,
                                    clsynth_conv_algo algo);
/* As clsynth_conv2d_algo, with a configuration forced on one of its tunable
 * kernels (the tuner, `clsynth bench`, tests: clcore/kdef.h). force must
 * outlive the backward pass; NULL = clsynth_conv2d_algo. The other *_forced
 * ops below take it likewise. */
clsynth_tensor *clsynth_conv2d_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w,
                                      clsynth_tensor *bias, int stride, int pad, clsynth_conv_algo algo,
                                      struct clsynth_kforce *force);

/* ---- fused convolution (clcore/ops_conv_fused.c, kernels/conv_epilogue.cl) ----
 * y = act((conv(x, w) + bias) * gate) + residual in one op: the implicit-GEMM and
 * Winograd algorithms apply the epilogue as they write y (one launch), the others
 * run one epilogue kernel after the conv. gate and residual are (N, Cout, OH, OW)
 * or NULL; slope is LeakyReLU's (>= 0 or < 0 both allowed). The backward applies
 * the epilogue's derivative (one kernel) then the conv's backward; it keeps the
 * pre-gate value u = conv + bias only when it needs it (a gate that requires
 * grad, or an activation followed by a residual), else works from y. Results
 * equal the unfused ops (clsynth_conv2d, clsynth_mul, the activation,
 * clsynth_add) up to the conv's own summation order. */
typedef enum clsynth_act {
    CLSYNTH_ACT_NONE = 0,
    CLSYNTH_ACT_RELU,
    CLSYNTH_ACT_LEAKY_RELU,
    CLSYNTH_ACT_SIGMOID,
    CLSYNTH_ACT_TANH,
    CLSYNTH_ACT_COUNT
} clsynth_act;

typedef struct clsynth_conv_epilogue {
    clsynth_act act;
    float slope;               /* LeakyReLU's negative slope */
    clsynth_tensor *gate;      /* multiplies conv + bias before the activation, or NULL */
    clsynth_tensor *residual;  /* added after the activation, or NULL */
} clsynth_conv_epilogue;

/* epi NULL (or all off): clsynth_conv2d. */
clsynth_tensor *clsynth_conv2d_fused(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w,
                                     clsynth_tensor *bias, int stride, int pad,
                                     const clsynth_conv_epilogue *epi);
clsynth_tensor *clsynth_conv2d_fused_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w,
                                            clsynth_tensor *bias, int stride, int pad,
                                            const clsynth_conv_epilogue *epi, clsynth_conv_algo algo,
                                            struct clsynth_kforce *force);

/* x (N,In,...) flattened per sample (In = c*h*w), w (Out,In,1,1), bias (1,Out,1,1)
 * or NULL -> (N,Out,1,1). */
clsynth_tensor *clsynth_linear(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w,
                               clsynth_tensor *bias);
/* As clsynth_linear with a force for its GEMMs (the "gemm" descriptor). */
clsynth_tensor *clsynth_linear_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *w,
                                      clsynth_tensor *bias, struct clsynth_kforce *force);

/* Conditional (per-sample, per-channel, per-pixel) depthwise 3x3 conv:
 * y(n,c,h,w) = sum_{i,j} k(n, 9c+3i+j, h, w) * x(n, c, h+i-1, w+j-1), zero pad 1.
 * x (N,C,H,W), k (N,9C,H,W) -> (N,C,H,W). No unfolded copy of x. */
clsynth_tensor *clsynth_cond_dwconv(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *k);
clsynth_tensor *clsynth_cond_dwconv_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *k,
                                           struct clsynth_kforce *force);

/* ---- elementwise (clcore/ops_elementwise.c, kernels/elementwise.cl) ---- */
/* Broadcasting: each dim of a and b equals the output's or is 1. */
clsynth_tensor *clsynth_add(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b);
clsynth_tensor *clsynth_sub(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b);
clsynth_tensor *clsynth_mul(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b);
clsynth_tensor *clsynth_scale(clsynth_ctx *ctx, clsynth_tensor *x, float s);
clsynth_tensor *clsynth_add_scalar(clsynth_ctx *ctx, clsynth_tensor *x, float s);
clsynth_tensor *clsynth_relu(clsynth_ctx *ctx, clsynth_tensor *x);
clsynth_tensor *clsynth_leaky_relu(clsynth_ctx *ctx, clsynth_tensor *x, float slope);
clsynth_tensor *clsynth_tanh(clsynth_ctx *ctx, clsynth_tensor *x);
clsynth_tensor *clsynth_sigmoid(clsynth_ctx *ctx, clsynth_tensor *x);
clsynth_tensor *clsynth_exp(clsynth_ctx *ctx, clsynth_tensor *x);
/* Concatenation along C of count tensors with equal N, H, W. */
clsynth_tensor *clsynth_concat(clsynth_ctx *ctx, clsynth_tensor *const *xs, int count);
/* Channels [c0, c0+count) of x. */
clsynth_tensor *clsynth_slice_c(clsynth_ctx *ctx, clsynth_tensor *x, int c0, int count);
/* x's leading channels cut into k <= CLSYNTH_SPLIT_MAX consecutive slices of
 * counts[i] channels (out[i], as clsynth_slice_c would give them) in one
 * launch. 0, or -1 with ctx->err set (out[] NULL then). */
#define CLSYNTH_SPLIT_MAX 5
int clsynth_split_c(clsynth_ctx *ctx, clsynth_tensor *x, const int *counts, int k, clsynth_tensor **out);
/* Same data, new shape (equal numel); gradient flows through. */
clsynth_tensor *clsynth_reshape(clsynth_ctx *ctx, clsynth_tensor *x, int n, int c, int h, int w);

/* ---- normalization (clcore/ops_norm.c, kernels/norm.cl) ---- */
/* Batch norm over (N,H,W) per channel. gamma/beta (1,C,1,1) or NULL (no affine).
 * training: batch statistics (biased var for normalizing), running stats
 * updated with momentum using the unbiased variance (as PyTorch); eval: running stats. */
clsynth_tensor *clsynth_batch_norm(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                   clsynth_tensor *beta, clsynth_tensor *running_mean,
                                   clsynth_tensor *running_var, bool training, float momentum,
                                   float eps);
clsynth_tensor *clsynth_batch_norm_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                          clsynth_tensor *beta, clsynth_tensor *running_mean,
                                          clsynth_tensor *running_var, bool training, float momentum,
                                          float eps, struct clsynth_kforce *force);
/* LeakyReLU(batch_norm(x), slope) as one op (slope >= 0; 0 is ReLU): the same
 * values and gradients as the two ops, without the activation's launches,
 * tensor and gradient (its derivative is read off the output). */
clsynth_tensor *clsynth_batch_norm_lrelu(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                         clsynth_tensor *beta, clsynth_tensor *running_mean,
                                         clsynth_tensor *running_var, bool training, float momentum, float eps,
                                         float slope);
/* Synchronized batch norm (clcore/ops_syncbn.c): batch norm whose training
 * statistics cover the batches of every rank of ctx->comm (PyTorch's
 * SyncBatchNorm); exactly clsynth_batch_norm in eval mode and in one process.
 * Its reductions are batch norm's (the descriptors norm_partial_stats and
 * norm_partial_dsums). Every rank must call it at the same point (it
 * communicates). */
clsynth_tensor *clsynth_sync_batch_norm(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                        clsynth_tensor *beta, clsynth_tensor *running_mean,
                                        clsynth_tensor *running_var, bool training, float momentum,
                                        float eps);
clsynth_tensor *clsynth_sync_batch_norm_forced(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                               clsynth_tensor *beta, clsynth_tensor *running_mean,
                                               clsynth_tensor *running_var, bool training, float momentum,
                                               float eps, struct clsynth_kforce *force);
/* LeakyReLU(sync_batch_norm(x), slope): one op where the statistics are one
 * process's (clsynth_batch_norm_lrelu), else the two. */
clsynth_tensor *clsynth_sync_batch_norm_lrelu(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                              clsynth_tensor *beta, clsynth_tensor *running_mean,
                                              clsynth_tensor *running_var, bool training, float momentum,
                                              float eps, float slope);
/* Instance norm over (H,W) per sample and channel; gamma/beta (1,C,1,1) or NULL. */
clsynth_tensor *clsynth_instance_norm(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                      clsynth_tensor *beta, float eps);
/* LeakyReLU(instance_norm(x), slope) as one op, as clsynth_batch_norm_lrelu. */
clsynth_tensor *clsynth_instance_norm_lrelu(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                            clsynth_tensor *beta, float eps, float slope);
/* SPADE modulation x * (1 + gamma) + beta, all (N,C,H,W). */
clsynth_tensor *clsynth_spade_mod(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *gamma,
                                  clsynth_tensor *beta);

/* ---- spectral norm (clcore/ops_spectral.c, kernels/spectral.cl) ---- */
/* Spectral norm (torch.nn.utils.spectral_norm): returns w / sigma(w) with w
 * viewed as W (Cout, K = Cin*KH*KW). u (Cout elements) and v (K elements) are
 * the persistent singular-vector estimates (PyTorch's weight_u, weight_v).
 * update (training): one power iteration first, v <- normalize(W^T u), then
 * u <- normalize(W v); sigma = u . W v with the vectors as they then are (the
 * stored ones when !update: PyTorch's eval). Gradient flows through sigma as
 * in PyTorch (u, v treated as constants). */
clsynth_tensor *clsynth_spectral_norm(clsynth_ctx *ctx, clsynth_tensor *w, clsynth_tensor *u,
                                      clsynth_tensor *v, bool update);
/* v <- normalize(W^T u) for a state that has no v yet (fresh init, a
 * version-1 checkpoint): an eval forward then gives sigma = ||W^T u|| for a
 * unit u. Not recorded on the tape. */
int clsynth_spectral_norm_init_v(clsynth_ctx *ctx, const clsynth_tensor *w, const clsynth_tensor *u,
                                 clsynth_tensor *v);

/* ---- spectral norm of a set of weights (clcore/ops_spectral_set.c, kernels/spectral_set.cl) ----
 * clsynth_spectral_norm for many weights at once, in 5 launches per update
 * forward (4 without update) and 3 per backward whatever their number, with
 * the same results (the same sums in the same order, bit for bit where both
 * run with a local size of 256). Members are (w, u, v)
 * as clsynth_spectral_norm's, with every w a parameter of one finalized group
 * (views of its flat data and gradient) and the u's and v's views of one
 * buffer each (its buffers). The set must outlive the tape of its forwards. */
typedef struct clsynth_sn_set clsynth_sn_set;
clsynth_sn_set *clsynth_sn_set_new(clsynth_ctx *ctx, const char *name);
void clsynth_sn_set_free(clsynth_ctx *ctx, clsynth_sn_set *s);
/* Adds a member (before the set's first forward; tensors may lack storage yet). */
int clsynth_sn_set_add(clsynth_ctx *ctx, clsynth_sn_set *s, clsynth_tensor *w, clsynth_tensor *u, clsynth_tensor *v);
int clsynth_sn_set_size(const clsynth_sn_set *s);
/* w / sigma(w) of every member, one power iteration first when update, as
 * clsynth_spectral_norm. Returns the outputs as one flat tensor (1, 1, 1, sum
 * of the members' sizes), members side by side in order, and keeps views of
 * it shaped like the weights for clsynth_sn_set_output. One tape node for all
 * (the members require grad together or not at all). */
clsynth_tensor *clsynth_spectral_norm_set(clsynth_ctx *ctx, clsynth_sn_set *s, bool update);
/* The latest clsynth_spectral_norm_set's output for member w (an activation:
 * valid until it is released), NULL when w is no member or none was computed. */
clsynth_tensor *clsynth_sn_set_output(const clsynth_sn_set *s, const clsynth_tensor *w);

/* ---- resampling (clcore/ops_resample.c, kernels/resample.cl) ---- */
clsynth_tensor *clsynth_upsample_nearest2x(clsynth_ctx *ctx, clsynth_tensor *x);
/* Nearest resize to (h, w), PyTorch 'nearest' index rule: src = floor(dst * in/out). */
clsynth_tensor *clsynth_resize_nearest(clsynth_ctx *ctx, clsynth_tensor *x, int h, int w);
/* Bilinear 2x, align_corners = false. */
clsynth_tensor *clsynth_upsample_bilinear2x(clsynth_ctx *ctx, clsynth_tensor *x);
/* Bilinear resize to (h, w), up or down, align_corners = false, no antialiasing:
 * PyTorch's F.interpolate(x, size=(h, w), mode='bilinear') in float. */
clsynth_tensor *clsynth_resize_bilinear(clsynth_ctx *ctx, clsynth_tensor *x, int h, int w);
/* Average pooling k x k, stride s, zero pad p, padding excluded from the count
 * (count_include_pad = false). avg_pool2x2 = (2, 2, 0). */
clsynth_tensor *clsynth_avg_pool(clsynth_ctx *ctx, clsynth_tensor *x, int k, int s, int p);
clsynth_tensor *clsynth_avg_pool2x2(clsynth_ctx *ctx, clsynth_tensor *x);
/* Max pooling k x k stride s (VGG: 2, 2). */
clsynth_tensor *clsynth_max_pool(clsynth_ctx *ctx, clsynth_tensor *x, int k, int s);
/* One-hot of integer label ids stored as floats (N,1,H,W) -> (N,num_channels,H,W).
 * Values in [0, num_classes) set their channel; `dontcare` (e.g. 255) sets
 * channel dontcare_channel (or nothing when it is -1); any other value is an error
 * reported by the op (the kernel flags it). No gradient (labels are discrete). */
clsynth_tensor *clsynth_one_hot(clsynth_ctx *ctx, clsynth_tensor *labels, int num_classes,
                                int num_channels, int dontcare, int dontcare_channel);

/* ---- reductions and losses (clcore/ops_loss.c, kernels/reduce.cl) ---- */
clsynth_tensor *clsynth_sum(clsynth_ctx *ctx, clsynth_tensor *x);  /* -> (1,1,1,1) */
clsynth_tensor *clsynth_mean(clsynth_ctx *ctx, clsynth_tensor *x); /* -> (1,1,1,1) */
/* D hinge: mean(relu(1 - x)) for real, mean(relu(1 + x)) for fake. */
clsynth_tensor *clsynth_hinge_d(clsynth_ctx *ctx, clsynth_tensor *x, bool real);
/* G hinge: -mean(x). */
clsynth_tensor *clsynth_hinge_g(clsynth_ctx *ctx, clsynth_tensor *x);
clsynth_tensor *clsynth_l1_loss(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b);
clsynth_tensor *clsynth_mse_loss(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b);
/* Softmax cross-entropy: logits (N,K,H,W), labels (N,1,H,W) float ids; pixels
 * with label == ignore are skipped; mean over the rest (0 if none). */
clsynth_tensor *clsynth_cross_entropy(clsynth_ctx *ctx, clsynth_tensor *logits,
                                      clsynth_tensor *labels, int ignore);
/* VAE KL: -0.5 * sum(1 + logvar - mu^2 - exp(logvar)). */
clsynth_tensor *clsynth_kl_loss(clsynth_ctx *ctx, clsynth_tensor *mu, clsynth_tensor *logvar);
/* sum_c a(n,c,h,w) * b(n,c,h,w) -> (N,1,H,W). */
clsynth_tensor *clsynth_channel_dot(clsynth_ctx *ctx, clsynth_tensor *a, clsynth_tensor *b);
/* Reads a one-element tensor to the host (waits). */
int clsynth_scalar(clsynth_ctx *ctx, const clsynth_tensor *t, float *out);

/* ---- optimizer, init, RNG (clcore/ops_adam.c, clcore/ops_rng.c, kernels/adam.cl, kernels/rng.cl) ---- */
/* One Adam step over the group's flat buffers with bias correction; lr from g->lr. */
int clsynth_adam_step(clsynth_ctx *ctx, clsynth_param_group *g);
/* Counter-based RNG (Philox-4x32-10): element i of the stream (seed, stream) is
 * a pure function of (seed, stream, i): deterministic on every device. */
int clsynth_rand_normal(clsynth_ctx *ctx, clsynth_tensor *t, float mean, float std,
                        uint64_t seed, uint64_t stream);
int clsynth_rand_uniform(clsynth_ctx *ctx, clsynth_tensor *t, float lo, float hi,
                         uint64_t seed, uint64_t stream);
/* Xavier normal init for a conv/linear weight (Cout,Cin,KH,KW):
 * std = gain * sqrt(2 / (fan_in + fan_out)), fan = C * KH * KW. */
int clsynth_init_xavier(clsynth_ctx *ctx, clsynth_tensor *w, float gain, uint64_t seed,
                        uint64_t stream);
/* VAE reparameterization mu + eps * exp(0.5 * logvar), eps ~ N(0,1) from the RNG. */
clsynth_tensor *clsynth_reparameterize(clsynth_ctx *ctx, clsynth_tensor *mu, clsynth_tensor *logvar,
                                       uint64_t seed, uint64_t stream);

#endif
