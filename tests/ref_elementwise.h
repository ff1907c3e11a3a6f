/* Plain-C references of the elementwise ops and of clcore/reduce.c
 * (double accumulation). Shapes are int[4] = (n, c, h, w). */
#ifndef CLSYNTH_REF_ELEMENTWISE_H
#define CLSYNTH_REF_ELEMENTWISE_H

#include <stddef.h>

/* op: 0 add, 1 sub, 2 mul; y has the broadcast shape yd. */
void ref_ew_binary(int op, const float *a, const int ad[4], const float *b, const int bd[4], float *y,
                   const int yd[4]);
/* out (od) = alpha * sum of x (xd) over the dims where od is 1 [times y (xd) when y != NULL] + beta * out. */
void ref_ew_reduce_to(const float *x, const float *y, const int xd[4], float *out, const int od[4], double alpha,
                      double beta);
/* op: 0 scale, 1 add scalar, 2 relu, 3 leaky relu, 4 tanh, 5 sigmoid, 6 exp. */
void ref_ew_unary(int op, const float *x, float *y, size_t n, float p);
/* concat along C of count tensors (N, cs[i], H, W) into y. */
void ref_ew_concat(const float *const *xs, const int *cs, int count, int N, int HW, float *y);
/* y (N, count, H, W) = channels [c0, c0+count) of x (N, C, H, W). */
void ref_ew_slice_c(const float *x, int N, int C, int HW, int c0, int count, float *y);

#endif
