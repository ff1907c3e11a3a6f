#include "ref_adam.h"

#include <math.h>

void ref_adam_step(float *p, const float *g, float *m, float *v, size_t n, double lr, double beta1, double beta2,
                   double eps, long t)
{
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    for (size_t i = 0; i < n; i++) {
        double mi = beta1 * m[i] + (1.0 - beta1) * g[i];
        double vi = beta2 * v[i] + (1.0 - beta2) * (double)g[i] * g[i];
        double mhat = mi / bc1, vhat = vi / bc2;
        p[i] = (float)(p[i] - lr * mhat / (sqrt(vhat) + eps));
        m[i] = (float)mi;
        v[i] = (float)vi;
    }
}
