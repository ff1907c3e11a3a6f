#include "ref_loss.h"

#include <math.h>

double ref_loss_sum(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

double ref_loss_mean(const float *x, size_t n) { return ref_loss_sum(x, n) / (double)n; }

double ref_loss_hinge_d(const float *x, size_t n, int real)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double v = real ? 1.0 - x[i] : 1.0 + x[i];
        s += v > 0 ? v : 0;
    }
    return s / (double)n;
}

double ref_loss_hinge_g(const float *x, size_t n) { return -ref_loss_mean(x, n); }

double ref_loss_l1(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)a[i] - (double)b[i]);
    return s / (double)n;
}

double ref_loss_mse(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return s / (double)n;
}

double ref_loss_kl(const float *mu, const float *lv, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += 1.0 + lv[i] - (double)mu[i] * mu[i] - exp((double)lv[i]);
    return -0.5 * s;
}

void ref_loss_channel_dot(const float *a, const float *b, int N, int C, int HW, float *y)
{
    for (int n = 0; n < N; n++)
        for (int p = 0; p < HW; p++) {
            double s = 0;
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)n * C + c) * HW + p;
                s += (double)a[i] * b[i];
            }
            y[(size_t)n * HW + p] = (float)s;
        }
}

double ref_loss_cross_entropy(const float *z, const float *lab, int N, int K, int HW, int ignore, float *grad)
{
    double total = 0;
    long count = 0;
    for (int n = 0; n < N; n++)
        for (int p = 0; p < HW; p++)
            if (lab[(size_t)n * HW + p] != (float)ignore)
                count++;
    for (int n = 0; n < N; n++)
        for (int p = 0; p < HW; p++) {
            float l = lab[(size_t)n * HW + p];
            const float *zp = z + (size_t)n * K * HW + p;
            float *gp = grad ? grad + (size_t)n * K * HW + p : NULL;
            if (l == (float)ignore) {
                if (gp)
                    for (int k = 0; k < K; k++)
                        gp[(size_t)k * HW] = 0.0f;
                continue;
            }
            double m = -INFINITY, s = 0;
            for (int k = 0; k < K; k++)
                m = fmax(m, zp[(size_t)k * HW]);
            for (int k = 0; k < K; k++)
                s += exp(zp[(size_t)k * HW] - m);
            double lse = m + log(s);
            total += lse - zp[(size_t)(int)l * HW];
            if (gp)
                for (int k = 0; k < K; k++)
                    gp[(size_t)k * HW] =
                        (float)((exp(zp[(size_t)k * HW] - lse) - (k == (int)l ? 1.0 : 0.0)) / (double)count);
        }
    return count ? total / (double)count : 0.0;
}
