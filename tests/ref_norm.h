/* Plain-C references for the normalization ops (clcore/ops_norm.c,
 * clcore/ops_spectral.c): straightforward loops, double accumulation. All
 * tensors are NCHW-contiguous host arrays. */
#ifndef CLSYNTH_REF_NORM_H
#define CLSYNTH_REF_NORM_H

#include <stdbool.h>

/* Batch norm, training: batch mean / biased variance per channel over (N,H,W);
 * y = (x - mean) / sqrt(var + eps) * gamma + beta (gamma/beta NULL = 1/0).
 * running_mean/var (C, may be NULL) updated in place with the unbiased
 * variance: r = (1 - momentum) * r + momentum * batch. */
void ref_batch_norm_train(const float *x, int N, int C, int H, int W, const float *gamma, const float *beta,
                          float *running_mean, float *running_var, float momentum, float eps, float *y);
/* Gradients of batch norm in training for dy (N,C,H,W), with xhat = (x -
 * mean) / sqrt(var + eps): dx = gamma / sqrt(var + eps) / M * (M dy - sum dy -
 * xhat sum(dy xhat)) over each channel's M = N*H*W values; dgamma (C) =
 * sum(dy xhat), dbeta (C) = sum(dy). gamma NULL = 1; any output may be NULL. */
void ref_batch_norm_train_backward(const float *x, const float *dy, int N, int C, int H, int W, const float *gamma,
                                   float eps, float *dx, float *dgamma, float *dbeta);
/* Batch norm, eval: normalizes with running_mean / running_var. */
void ref_batch_norm_eval(const float *x, int N, int C, int H, int W, const float *gamma, const float *beta,
                         const float *running_mean, const float *running_var, float eps, float *y);
/* Instance norm: statistics per (n, c) over (H, W), biased variance. */
void ref_instance_norm(const float *x, int N, int C, int H, int W, const float *gamma, const float *beta,
                       float eps, float *y);
/* y = x * (1 + gamma) + beta over n elements. */
void ref_spade_mod(const float *x, const float *gamma, const float *beta, int n, float *y);

/* Spectral norm of w (Cout x K) as torch.nn.utils.spectral_norm and
 * clsynth_spectral_norm: update: v <- normalize(W^T u) (from the previous u),
 * then u <- normalize(W v), both in place (stored as float); else u and v are
 * used as they are. sigma = u . W v; out = w / sigma. Normalization divides by
 * max(norm, 1e-12). out and sigma_out may be NULL. */
void ref_spectral_norm(const float *w, int Cout, int K, float *u, float *v, bool update, float *out,
                       double *sigma_out);

#endif
