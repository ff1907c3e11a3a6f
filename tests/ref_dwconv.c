/* Plain-C references for the conditional depthwise conv, written straight
 * from the definition (scatter form for the gradients, unlike the kernels). */
#include "ref_dwconv.h"

#include <stddef.h>
#include <stdlib.h>

static size_t at(int n, int c, int h, int w, int C, int H, int W)
{
    return (((size_t)n * (size_t)C + (size_t)c) * (size_t)H + (size_t)h) * (size_t)W + (size_t)w;
}

void ref_cond_dwconv(const float *x, const float *k, float *y, int N, int C, int H, int W)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    double s = 0;
                    for (int i = 0; i < 3; i++)
                        for (int j = 0; j < 3; j++) {
                            int hh = h + i - 1, ww = w + j - 1;
                            if (hh < 0 || hh >= H || ww < 0 || ww >= W)
                                continue;
                            s += (double)k[at(n, 9 * c + 3 * i + j, h, w, 9 * C, H, W)] *
                                 (double)x[at(n, c, hh, ww, C, H, W)];
                        }
                    y[at(n, c, h, w, C, H, W)] = (float)s;
                }
}

void ref_cond_dwconv_backward(const float *x, const float *k, const float *dy, float *dx, float *dk, int N,
                              int C, int H, int W)
{
    size_t nx = (size_t)N * (size_t)C * (size_t)H * (size_t)W;
    double *acc = calloc(nx, sizeof *acc);
    if (!acc)
        abort();
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    double g = dy[at(n, c, h, w, C, H, W)];
                    for (int i = 0; i < 3; i++)
                        for (int j = 0; j < 3; j++) {
                            int hh = h + i - 1, ww = w + j - 1;
                            int inside = hh >= 0 && hh < H && ww >= 0 && ww < W;
                            size_t ki = at(n, 9 * c + 3 * i + j, h, w, 9 * C, H, W);
                            if (dk)
                                dk[ki] = inside ? (float)(g * (double)x[at(n, c, hh, ww, C, H, W)]) : 0.0f;
                            if (inside)
                                acc[at(n, c, hh, ww, C, H, W)] += g * (double)k[ki];
                        }
                }
    if (dx)
        for (size_t i = 0; i < nx; i++)
            dx[i] = (float)acc[i];
    free(acc);
}
