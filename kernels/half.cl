/* Half-precision storage of activations kept for the backward (the
 * --half_activations training option, clsynth_stash_newer_as_half in
 * clcore/autograd.h). Compute stays float: these kernels only move a tensor
 * between float and half storage.
 *
 * Scaled half: a stored tensor is n halves h[i] = half(x[i] 2^k) and, in a
 * buffer of its own, one int mx[0] that holds max |x| (as its bits:
 * non-negative floats order as their int bits, so atomic_max finds it).
 * k = 14 - ilogb(max)
 * puts max |x| 2^k in [2^14, 2^15): CC-FPSE's activations reach 1e-10 at
 * initialization (predicted kernels times small gates), far below half's
 * smallest subnormal 2^-24, so unscaled half would store them as 0. The power
 * of two is exact: only the rounding of half_store changes a value (to
 * nearest even, relative 2^-11 where x 2^k >= 2^-14, i.e. down to
 * max |x| 2^-28; smaller values keep an absolute 2^-25 max |x| 2^-14).
 * k = 0 when max |x| is 0, not finite or below FLT_MIN (inf then stays inf,
 * NaN stays NaN, and finite values beyond 65504 would become inf).
 *
 * half_absmax: mx[0] <- max(mx[0], bits of max |x[x_off + i]|) for i < n
 *   (mx[0] zeroed before), one atomic per work-group after a local reduction.
 * half_store:  h[i] = half(x[x_off + i] 2^k), rounded to nearest even.
 * half_load:   x[x_off + i] = float(h[i]) 2^-k (exact).
 * vload_half / vstore_half_rte / atomic_max / ilogb / ldexp are core OpenCL C
 * 1.2 (a `half *` used as storage only): no cl_khr_fp16 pragma is needed
 * here; the runtime offers the option only where the device reports
 * cl_khr_fp16, as issue 14 asks (clcore/stash.c).
 * Tunables: none (1-D; half_absmax takes the reduction local size).
 * Memory traffic: half_absmax reads 4n bytes, half_store reads 4n and writes
 * 2n, half_load reads 2n and writes 4n. */

/* The exponent k of the block whose max |x| bits are m. */
static int half_scale_exp(const int m)
{
    const float mx = as_float(m);
    if (!(mx >= FLT_MIN) || isinf(mx)) /* 0, NaN, a denormal or inf */
        return 0;
    return 14 - ilogb(mx);
}

__kernel void half_absmax(__global const float *x, const int x_off, const int n, __global int *mx,
                          __local float *part)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    float m = 0.0f;
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
        const float a = fabs(x[x_off + i]);
        m = isnan(a) ? a : fmax(m, a); /* a NaN wins (k = 0) */
    }
    part[lid] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = L / 2; s > 0; s /= 2) {
        if (lid < s) {
            const float o = part[lid + s];
            part[lid] = isnan(o) ? o : fmax(part[lid], o);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        atomic_max(mx, as_int(part[0]) & 0x7fffffff);
}

__kernel void half_store(__global const float *x, const int x_off, __global half *h, __global const int *mx,
                         const int n)
{
    const int i = get_global_id(0);
    if (i < n) {
        const int k = half_scale_exp(mx[0]);
        vstore_half_rte(ldexp(x[x_off + i], k), i, h);
    }
}

__kernel void half_load(__global const half *h, __global float *x, const int x_off, __global const int *mx,
                        const int n)
{
    const int i = get_global_id(0);
    if (i < n) {
        const int k = half_scale_exp(mx[0]);
        x[x_off + i] = ldexp(vload_half(i, h), -k);
    }
}
