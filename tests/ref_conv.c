/* Plain-C convolution and linear references (see ref_conv.h). */
#include "ref_conv.h"

#include <math.h>
#include <stdlib.h>

int ref_conv_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

void ref_conv2d_forward(const float *x, const float *w, const float *b, float *y, int N, int Cin, int H, int W,
                        int Cout, int KH, int KW, int stride, int pad)
{
    int OH = ref_conv_out_size(H, KH, stride, pad), OW = ref_conv_out_size(W, KW, stride, pad);
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Cout; co++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double s = b ? b[co] : 0.0;
                    for (int ci = 0; ci < Cin; ci++)
                        for (int ky = 0; ky < KH; ky++)
                            for (int kx = 0; kx < KW; kx++) {
                                int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                s += (double)w[((co * Cin + ci) * KH + ky) * KW + kx] *
                                     (double)x[((n * Cin + ci) * H + iy) * W + ix];
                            }
                    y[((n * Cout + co) * OH + oy) * OW + ox] = (float)s;
                }
}

void ref_conv2d_backward(const float *x, const float *w, const float *dy, float *dx, float *dw, float *db, int N,
                         int Cin, int H, int W, int Cout, int KH, int KW, int stride, int pad)
{
    int OH = ref_conv_out_size(H, KH, stride, pad), OW = ref_conv_out_size(W, KW, stride, pad);
    size_t nx = (size_t)N * Cin * H * W, nw = (size_t)Cout * Cin * KH * KW;
    double *ax = calloc(nx, sizeof *ax), *aw = calloc(nw, sizeof *aw), *ab = calloc((size_t)Cout, sizeof *ab);
    /* scatter form: straightforward and independent of the kernels' gather form */
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Cout; co++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double g = dy[((n * Cout + co) * OH + oy) * OW + ox];
                    ab[co] += g;
                    for (int ci = 0; ci < Cin; ci++)
                        for (int ky = 0; ky < KH; ky++)
                            for (int kx = 0; kx < KW; kx++) {
                                int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                size_t wi = (size_t)((co * Cin + ci) * KH + ky) * KW + kx;
                                size_t xi = (size_t)((n * Cin + ci) * H + iy) * W + ix;
                                ax[xi] += g * w[wi];
                                aw[wi] += g * x[xi];
                            }
                }
    for (size_t i = 0; dx && i < nx; i++)
        dx[i] = (float)ax[i];
    for (size_t i = 0; dw && i < nw; i++)
        dw[i] = (float)aw[i];
    for (int i = 0; db && i < Cout; i++)
        db[i] = (float)ab[i];
    free(ax);
    free(aw);
    free(ab);
}

static double act_of(int act, double z, double slope)
{
    switch (act) {
    case 1: return z > 0 ? z : 0;
    case 2: return z > 0 ? z : z * slope;
    case 3: return 1.0 / (1.0 + exp(-z));
    case 4: return tanh(z);
    default: return z;
    }
}

static double dact_of(int act, double z, double slope)
{
    switch (act) {
    case 1: return z > 0 ? 1 : 0;
    case 2: return z > 0 ? 1 : slope;
    case 3: {
        double s = 1.0 / (1.0 + exp(-z));
        return s * (1 - s);
    }
    case 4: return 1 - tanh(z) * tanh(z);
    default: return 1;
    }
}

/* u = conv(x, w) + b in double, (N, Cout, OH, OW) */
static double *conv_u(const float *x, const float *w, const float *b, int N, int Cin, int H, int W, int Cout, int KH,
                      int KW, int stride, int pad)
{
    int OH = ref_conv_out_size(H, KH, stride, pad), OW = ref_conv_out_size(W, KW, stride, pad);
    double *u = malloc((size_t)N * Cout * OH * OW * sizeof *u);
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Cout; co++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double s = b ? b[co] : 0.0;
                    for (int ci = 0; ci < Cin; ci++)
                        for (int ky = 0; ky < KH; ky++)
                            for (int kx = 0; kx < KW; kx++) {
                                int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                    s += (double)w[((co * Cin + ci) * KH + ky) * KW + kx] *
                                         (double)x[((n * Cin + ci) * H + iy) * W + ix];
                            }
                    u[((n * Cout + co) * OH + oy) * OW + ox] = s;
                }
    return u;
}

void ref_conv2d_fused_forward(const float *x, const float *w, const float *b, const float *gate, const float *res,
                              int act, float slope, float *y, int N, int Cin, int H, int W, int Cout, int KH,
                              int KW, int stride, int pad)
{
    size_t ny = (size_t)N * Cout * ref_conv_out_size(H, KH, stride, pad) * ref_conv_out_size(W, KW, stride, pad);
    double *u = conv_u(x, w, b, N, Cin, H, W, Cout, KH, KW, stride, pad);
    for (size_t i = 0; i < ny; i++) {
        double z = gate ? u[i] * gate[i] : u[i];
        y[i] = (float)(act_of(act, z, slope) + (res ? res[i] : 0.0));
    }
    free(u);
}

void ref_conv2d_fused_backward(const float *x, const float *w, const float *b, const float *gate, const float *res,
                               int act, float slope, const float *dy, float *dx, float *dw, float *db,
                               float *dgate, float *dres, int N, int Cin, int H, int W, int Cout, int KH, int KW,
                               int stride, int pad)
{
    (void)res;
    size_t ny = (size_t)N * Cout * ref_conv_out_size(H, KH, stride, pad) * ref_conv_out_size(W, KW, stride, pad);
    double *u = conv_u(x, w, b, N, Cin, H, W, Cout, KH, KW, stride, pad);
    float *dz = malloc(ny * sizeof *dz);
    for (size_t i = 0; i < ny; i++) {
        double z = gate ? u[i] * gate[i] : u[i];
        double g = dy[i] * dact_of(act, z, slope);
        if (dres)
            dres[i] = dy[i];
        if (dgate)
            dgate[i] = (float)(g * u[i]);
        dz[i] = (float)(gate ? g * gate[i] : g);
    }
    if (dx || dw || db)
        ref_conv2d_backward(x, w, dz, dx, dw, db, N, Cin, H, W, Cout, KH, KW, stride, pad);
    free(dz);
    free(u);
}

void ref_linear_forward(const float *x, const float *w, const float *b, float *y, int N, int In, int Out)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Out; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < In; i++)
                s += (double)x[n * In + i] * (double)w[o * In + i];
            y[n * Out + o] = (float)s;
        }
}

void ref_linear_backward(const float *x, const float *w, const float *dy, float *dx, float *dw, float *db, int N,
                         int In, int Out)
{
    for (int n = 0; dx && n < N; n++)
        for (int i = 0; i < In; i++) {
            double s = 0;
            for (int o = 0; o < Out; o++)
                s += (double)dy[n * Out + o] * (double)w[o * In + i];
            dx[n * In + i] = (float)s;
        }
    for (int o = 0; dw && o < Out; o++)
        for (int i = 0; i < In; i++) {
            double s = 0;
            for (int n = 0; n < N; n++)
                s += (double)dy[n * Out + o] * (double)x[n * In + i];
            dw[o * In + i] = (float)s;
        }
    for (int o = 0; db && o < Out; o++) {
        double s = 0;
        for (int n = 0; n < N; n++)
            s += dy[n * Out + o];
        db[o] = (float)s;
    }
}
