#include "ref_elementwise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t off_of(const int d[4], int n, int c, int h, int w)
{
    /* broadcast dims (size 1) read index 0 */
    n = d[0] == 1 ? 0 : n;
    c = d[1] == 1 ? 0 : c;
    h = d[2] == 1 ? 0 : h;
    w = d[3] == 1 ? 0 : w;
    return (((size_t)n * d[1] + c) * d[2] + h) * d[3] + w;
}

void ref_ew_binary(int op, const float *a, const int ad[4], const float *b, const int bd[4], float *y,
                   const int yd[4])
{
    size_t i = 0;
    for (int n = 0; n < yd[0]; n++)
        for (int c = 0; c < yd[1]; c++)
            for (int h = 0; h < yd[2]; h++)
                for (int w = 0; w < yd[3]; w++, i++) {
                    double av = a[off_of(ad, n, c, h, w)], bv = b[off_of(bd, n, c, h, w)];
                    y[i] = (float)(op == 0 ? av + bv : op == 1 ? av - bv : av * bv);
                }
}

void ref_ew_reduce_to(const float *x, const float *y, const int xd[4], float *out, const int od[4], double alpha,
                      double beta)
{
    size_t on = (size_t)od[0] * od[1] * od[2] * od[3];
    double *acc = calloc(on ? on : 1, sizeof *acc);
    if (!acc)
        return;
    size_t i = 0;
    for (int n = 0; n < xd[0]; n++)
        for (int c = 0; c < xd[1]; c++)
            for (int h = 0; h < xd[2]; h++)
                for (int w = 0; w < xd[3]; w++, i++)
                    acc[off_of(od, n, c, h, w)] += (double)x[i] * (y ? (double)y[i] : 1.0);
    for (size_t k = 0; k < on; k++)
        out[k] = (float)(alpha * acc[k] + (beta != 0.0 ? beta * out[k] : 0.0));
    free(acc);
}

void ref_ew_unary(int op, const float *x, float *y, size_t n, float p)
{
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        switch (op) {
        case 0: v = v * p; break;
        case 1: v = v + p; break;
        case 2: v = v > 0 ? v : 0; break;
        case 3: v = v > 0 ? v : v * p; break;
        case 4: v = tanh(v); break;
        case 5: v = 1.0 / (1.0 + exp(-v)); break;
        default: v = exp(v); break;
        }
        y[i] = (float)v;
    }
}

void ref_ew_concat(const float *const *xs, const int *cs, int count, int N, int HW, float *y)
{
    size_t o = 0;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < count; i++) {
            memcpy(y + o, xs[i] + (size_t)n * cs[i] * HW, sizeof(float) * (size_t)cs[i] * HW);
            o += (size_t)cs[i] * HW;
        }
}

void ref_ew_slice_c(const float *x, int N, int C, int HW, int c0, int count, float *y)
{
    for (int n = 0; n < N; n++)
        memcpy(y + (size_t)n * count * HW, x + ((size_t)n * C + c0) * HW, sizeof(float) * (size_t)count * HW);
}
