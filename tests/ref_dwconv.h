/* Plain-C references for the conditional depthwise conv (double accumulation). */
#ifndef CLSYNTH_REF_DWCONV_H
#define CLSYNTH_REF_DWCONV_H

/* x (N,C,H,W), k (N,9C,H,W) -> y (N,C,H,W); zero padding 1. */
void ref_cond_dwconv(const float *x, const float *k, float *y, int N, int C, int H, int W);
/* Gradients for dy (N,C,H,W): dx (N,C,H,W) and dk (N,9C,H,W), overwritten (either may be NULL). */
void ref_cond_dwconv_backward(const float *x, const float *k, const float *dy, float *dx, float *dk, int N,
                              int C, int H, int W);

#endif
