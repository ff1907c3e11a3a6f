/* Plain-C references for batch norm, instance norm, SPADE modulation and
 * spectral norm (see ref_norm.h). */
#include "ref_norm.h"

#include <math.h>
#include <stdlib.h>

/* Mean and biased variance of the n values x[base(i)] (two passes, double). */
static void stats_over(const float *x, int outer, long outer_stride, int inner, double *mean, double *var)
{
    double s = 0;
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++)
            s += x[o * outer_stride + i];
    const double cnt = (double)outer * inner;
    const double mu = s / cnt;
    double q = 0;
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            double d = x[o * outer_stride + i] - mu;
            q += d * d;
        }
    *mean = mu;
    *var = q / cnt;
}

static void normalize_channel(const float *x, float *y, int outer, long outer_stride, int inner, double mean,
                              double var, float eps, double g, double b)
{
    const double is = 1.0 / sqrt(var + (double)eps);
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            long k = o * outer_stride + i;
            y[k] = (float)((x[k] - mean) * is * g + b);
        }
}

void ref_batch_norm_train(const float *x, int N, int C, int H, int W, const float *gamma, const float *beta,
                          float *running_mean, float *running_var, float momentum, float eps, float *y)
{
    const int HW = H * W;
    for (int c = 0; c < C; c++) {
        double mean, var;
        stats_over(x + (long)c * HW, N, (long)C * HW, HW, &mean, &var);
        normalize_channel(x + (long)c * HW, y + (long)c * HW, N, (long)C * HW, HW, mean, var, eps,
                          gamma ? gamma[c] : 1.0, beta ? beta[c] : 0.0);
        if (running_mean) {
            const double M = (double)N * HW;
            running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * var * M / (M - 1.0));
        }
    }
}

void ref_batch_norm_train_backward(const float *x, const float *dy, int N, int C, int H, int W, const float *gamma,
                                   float eps, float *dx, float *dgamma, float *dbeta)
{
    const int HW = H * W;
    const double M = (double)N * HW;
    for (int c = 0; c < C; c++) {
        double mean, var;
        stats_over(x + (long)c * HW, N, (long)C * HW, HW, &mean, &var);
        const double is = 1.0 / sqrt(var + (double)eps), g = gamma ? gamma[c] : 1.0;
        double sdy = 0, sdyx = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                long k = ((long)n * C + c) * HW + i;
                sdy += dy[k];
                sdyx += dy[k] * (x[k] - mean) * is;
            }
        if (dgamma)
            dgamma[c] = (float)sdyx;
        if (dbeta)
            dbeta[c] = (float)sdy;
        if (!dx)
            continue;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                long k = ((long)n * C + c) * HW + i;
                double xh = (x[k] - mean) * is;
                dx[k] = (float)(g * is / M * (M * dy[k] - sdy - xh * sdyx));
            }
    }
}

void ref_batch_norm_eval(const float *x, int N, int C, int H, int W, const float *gamma, const float *beta,
                         const float *running_mean, const float *running_var, float eps, float *y)
{
    const int HW = H * W;
    for (int c = 0; c < C; c++)
        normalize_channel(x + (long)c * HW, y + (long)c * HW, N, (long)C * HW, HW, running_mean[c],
                          running_var[c], eps, gamma ? gamma[c] : 1.0, beta ? beta[c] : 0.0);
}

void ref_instance_norm(const float *x, int N, int C, int H, int W, const float *gamma, const float *beta,
                       float eps, float *y)
{
    const long HW = (long)H * W;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            const long base = ((long)n * C + c) * HW;
            double mean, var;
            stats_over(x + base, 1, HW, (int)HW, &mean, &var);
            normalize_channel(x + base, y + base, 1, HW, (int)HW, mean, var, eps, gamma ? gamma[c] : 1.0,
                              beta ? beta[c] : 0.0);
        }
}

void ref_spade_mod(const float *x, const float *gamma, const float *beta, int n, float *y)
{
    for (int i = 0; i < n; i++)
        y[i] = (float)((double)x[i] * (1.0 + (double)gamma[i]) + (double)beta[i]);
}

static double norm_of(const double *a, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * a[i];
    return sqrt(s);
}

void ref_spectral_norm(const float *w, int Cout, int K, float *u, float *v, bool update, float *out,
                       double *sigma_out)
{
    double *vv = calloc((size_t)K, sizeof *vv), *wv = calloc((size_t)Cout, sizeof *wv),
           *uu = calloc((size_t)Cout, sizeof *uu);
    if (update) { /* v from the previous u, stored as float, then u from that v */
        for (int k = 0; k < K; k++)
            for (int o = 0; o < Cout; o++)
                vv[k] += (double)w[(long)o * K + k] * u[o];
        double nv = fmax(norm_of(vv, K), 1e-12);
        for (int k = 0; k < K; k++)
            v[k] = (float)(vv[k] / nv);
    }
    for (int k = 0; k < K; k++)
        vv[k] = v[k];
    for (int o = 0; o < Cout; o++)
        for (int k = 0; k < K; k++)
            wv[o] += (double)w[(long)o * K + k] * vv[k];
    double nu = update ? fmax(norm_of(wv, Cout), 1e-12) : 1.0;
    double sigma = 0;
    for (int o = 0; o < Cout; o++) {
        uu[o] = update ? wv[o] / nu : u[o];
        if (update)
            u[o] = (float)uu[o];
        sigma += uu[o] * wv[o];
    }
    if (out)
        for (long i = 0; i < (long)Cout * K; i++)
            out[i] = (float)(w[i] / sigma);
    if (sigma_out)
        *sigma_out = sigma;
    free(vv);
    free(wv);
    free(uu);
}
