/* Plain-C references for the resampling ops (double accumulation). All take
 * NC = N*C planes. Backward references overwrite dx. */
#ifndef CLSYNTH_REF_RESAMPLE_H
#define CLSYNTH_REF_RESAMPLE_H

/* PyTorch 'nearest': src = floor(dst * in / out). */
void ref_resize_nearest(const float *x, float *y, int NC, int H, int W, int OH, int OW);
void ref_resize_nearest_backward(const float *dy, float *dx, int NC, int H, int W, int OH, int OW);
/* Bilinear 2x, align_corners = false (PyTorch). */
void ref_upsample_bilinear2x(const float *x, float *y, int NC, int H, int W);
void ref_upsample_bilinear2x_backward(const float *dy, float *dx, int NC, int H, int W);
/* Bilinear resize to (OH, OW), align_corners = false, float index arithmetic as
 * PyTorch (scale = (float)in / out), double accumulation. */
void ref_resize_bilinear(const float *x, float *y, int NC, int H, int W, int OH, int OW);
void ref_resize_bilinear_backward(const float *dy, float *dx, int NC, int H, int W, int OH, int OW);
/* Average pooling, count_include_pad = false; output (H+2p-k)/s+1. */
void ref_avg_pool(const float *x, float *y, int NC, int H, int W, int k, int s, int p);
void ref_avg_pool_backward(const float *dy, float *dx, int NC, int H, int W, int k, int s, int p);
/* Max pooling without padding; gradient to the first maximum in scan order. */
void ref_max_pool(const float *x, float *y, int NC, int H, int W, int k, int s);
void ref_max_pool_backward(const float *x, const float *dy, float *dx, int NC, int H, int W, int k, int s);
/* One-hot; returns the first invalid pixel index or -1. */
long ref_one_hot(const float *labels, float *y, int N, int H, int W, int num_classes, int num_channels,
                 int dontcare, int dontcare_channel);

#endif
