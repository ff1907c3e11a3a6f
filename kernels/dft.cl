/* Real-to-Hermitian 2-D DFT by two direct passes: clsynth's own path for the
 * power-spectrum metric (nets/spectrum.c) where clFFT cannot build its kernels
 * (Intel's OpenCL CPU runtime rejects clFFT's generated float2 -> float4
 * pointer casts for some lengths) or when CLSYNTH_FFT=dft asks for it.
 *
 *   dft_rows: R(i, y, kx)  = sum_x    x(i, y, x) exp(-2 pi i kx x / W)     kx < W/2 + 1
 *   dft_cols: F(i, ky, kx) = sum_y    R(i, y, kx) exp(-2 pi i ky y / H)
 *
 * Complex values are interleaved (re, im) floats. Twiddles come from tables
 * the host computed in double (tw[2m] = cos(2 pi m / L), tw[2m+1] = sin(..)),
 * so the result does not depend on the device's sin/cos accuracy; the angle
 * index kx*x mod W is stepped exactly in integers. Each output is one
 * work-item summing in a fixed order: O(W) + O(H) operations per coefficient,
 * which is plenty for the metric's image sizes (64..512).
 * Launch: global (W/2 + 1, H, images), any local size. */

__kernel void dft_rows(__global const float *x, __global const float *tw, __global float *r, const int NB,
                       const int H, const int W, const int WC)
{
    const int kx = get_global_id(0), y = get_global_id(1), i = get_global_id(2);
    if (kx >= WC || y >= H || i >= NB)
        return;
    __global const float *row = x + (i * H + y) * W;
    float re = 0.0f, im = 0.0f;
    int m = 0;
    for (int xx = 0; xx < W; xx++) {
        const float v = row[xx];
        re += v * tw[2 * m];
        im -= v * tw[2 * m + 1];
        m += kx;
        if (m >= W)
            m -= W;
    }
    const int o = 2 * ((i * H + y) * WC + kx);
    r[o] = re;
    r[o + 1] = im;
}

__kernel void dft_cols(__global const float *r, __global const float *tw, __global float *f, const int NB,
                       const int H, const int WC)
{
    const int kx = get_global_id(0), ky = get_global_id(1), i = get_global_id(2);
    if (kx >= WC || ky >= H || i >= NB)
        return;
    __global const float *col = r + 2 * (i * H * WC + kx);
    float re = 0.0f, im = 0.0f;
    int m = 0;
    for (int y = 0; y < H; y++) {
        const float a = col[2 * y * WC], b = col[2 * y * WC + 1];
        const float c = tw[2 * m], s = tw[2 * m + 1];
        /* (a + ib)(c - is) */
        re += a * c + b * s;
        im += b * c - a * s;
        m += ky;
        if (m >= H)
            m -= H;
    }
    const int o = 2 * ((i * H + ky) * WC + kx);
    f[o] = re;
    f[o + 1] = im;
}
