/* Plain-C references for convolution and the fully connected layer (double
 * accumulation). Shapes as in clcore/ops.h; pointers to NULL outputs/bias skip them. */
#ifndef CLSYNTH_REF_CONV_H
#define CLSYNTH_REF_CONV_H

/* Output size of a conv along one axis. */
int ref_conv_out_size(int in, int k, int stride, int pad);

/* x (N,Cin,H,W), w (Cout,Cin,KH,KW), b (Cout) or NULL -> y (N,Cout,OH,OW). */
void ref_conv2d_forward(const float *x, const float *w, const float *b, float *y, int N, int Cin, int H, int W,
                        int Cout, int KH, int KW, int stride, int pad);

/* From dy (N,Cout,OH,OW): dx (N,Cin,H,W), dw (Cout,Cin,KH,KW), db (Cout); each may
 * be NULL. Written (not accumulated). */
void ref_conv2d_backward(const float *x, const float *w, const float *dy, float *dx, float *dw, float *db, int N,
                         int Cin, int H, int W, int Cout, int KH, int KW, int stride, int pad);

/* The fused conv (clsynth_conv2d_fused): y = act((conv(x, w) + b) * gate) + res, act 0 none,
 * 1 relu, 2 leaky relu (slope), 3 sigmoid, 4 tanh (clsynth_act's order); gate and res
 * (N,Cout,OH,OW) or NULL. The backward writes dx, dw, db, dgate, dres (each may be NULL). */
void ref_conv2d_fused_forward(const float *x, const float *w, const float *b, const float *gate, const float *res,
                              int act, float slope, float *y, int N, int Cin, int H, int W, int Cout, int KH,
                              int KW, int stride, int pad);
void ref_conv2d_fused_backward(const float *x, const float *w, const float *b, const float *gate, const float *res,
                               int act, float slope, const float *dy, float *dx, float *dw, float *db,
                               float *dgate, float *dres, int N, int Cin, int H, int W, int Cout, int KH, int KW,
                               int stride, int pad);

/* x (N,In), w (Out,In), b (Out) or NULL -> y (N,Out). */
void ref_linear_forward(const float *x, const float *w, const float *b, float *y, int N, int In, int Out);
void ref_linear_backward(const float *x, const float *w, const float *dy, float *dx, float *dw, float *db, int N,
                         int In, int Out);

#endif
