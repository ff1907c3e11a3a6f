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

/* x (N,In), w (Out,In), b (Out) or NULL -> y (N,Out). */
void ref_linear_forward(const float *x, const float *w, const float *b, float *y, int N, int In, int Out);
void ref_linear_backward(const float *x, const float *w, const float *dy, float *dx, float *dw, float *db, int N,
                         int In, int Out);

#endif
