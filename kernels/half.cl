/* Half-precision storage of activations kept for the backward (the
 * --half_activations training option, clsynth_stash_newer_as_half in
 * clcore/autograd.h). Compute stays float: these kernels only move a tensor
 * between float and half storage.
 *
 * Scaled half, per run of HALF_RUN = 16 consecutive elements (as the MX
 * formats scale blocks of 32): run r is stored as halves h[i] = half(x[i] 2^k)
 * and one signed byte e[r] = k, k = 14 - ilogb(max |x| over the run), clamped
 * to [-113, 127], so the run's largest value lands in [2^14, 2^15).
 * CC-FPSE's activations reach 1e-10 at initialization (predicted kernels
 * times small gates), far below half's smallest subnormal 2^-24: unscaled
 * half would store them as 0. The power of two is exact, so only the
 * rounding (to nearest even) changes a value: by at most 2^-11 relative
 * where x 2^k >= 2^-14, i.e. for every value within 2^-28 of its run's
 * largest. k = 0 for a run whose max |x| is 0, NaN, inf or below FLT_MIN
 * (inf then stays inf, NaN stays NaN; finite values beyond 65504 next to an
 * inf become inf).
 *
 * half_store: runs [16 r, 16 r + 16) of x (n elements) to h and e, one run a work-item.
 * half_load:  x[x_off + i] = float(h[i]) 2^-e[i / 16] (exact), one run a work-item.
 * vload_half / vstore_half_rte and their 16-wide forms, ilogb and ldexp are
 * core OpenCL C 1.2 (a `half *` used as storage only): no cl_khr_fp16 pragma
 * is needed here; the runtime offers the option only where the device
 * reports cl_khr_fp16, as issue 14 asks (clcore/stash.c).
 * Tunables: none (1-D, launch default; n / 16 work-items).
 * Memory traffic: half_store reads 4n bytes and writes 2n + n/16, half_load
 * the reverse. */
#define HALF_RUN 16

/* The exponent of a run whose largest magnitude is mx. */
static int run_exp(const float mx)
{
    if (!(mx >= FLT_MIN) || isinf(mx)) /* 0, NaN, a denormal or inf */
        return 0;
    return min(14 - ilogb(mx), 127);
}

__kernel void half_store(__global const float *x, const int x_off, __global half *h, __global char *e, const int n)
{
    const int r = get_global_id(0), first = r * HALF_RUN;
    if (first >= n)
        return;
    const __global float *xr = x + x_off + first;
    if (first + HALF_RUN <= n) {
        const float16 v = vload16(0, xr);
        const float16 a = fabs(v);
        const float8 m8 = fmax(a.lo, a.hi);
        const float4 m4 = fmax(m8.lo, m8.hi);
        const float2 m2 = fmax(m4.lo, m4.hi);
        float mx = fmax(m2.x, m2.y);
        if (any(isnan(v)))
            mx = NAN;
        const int k = run_exp(mx);
        e[r] = (char)k;
        vstore_half16_rte(ldexp(v, k), r, h);
    } else { /* the last, short run */
        float mx = 0.0f;
        for (int i = first; i < n; i++) {
            const float a = fabs(xr[i - first]);
            mx = isnan(a) ? a : fmax(mx, a);
        }
        const int k = run_exp(mx);
        e[r] = (char)k;
        for (int i = first; i < n; i++)
            vstore_half_rte(ldexp(xr[i - first], k), i, h);
    }
}

__kernel void half_load(__global const half *h, __global const char *e, __global float *x, const int x_off, const int n)
{
    const int r = get_global_id(0), first = r * HALF_RUN;
    if (first >= n)
        return;
    const int k = -(int)e[r];
    __global float *xr = x + x_off + first;
    if (first + HALF_RUN <= n) {
        vstore16(ldexp(vload_half16(r, h), k), 0, xr);
    } else {
        for (int i = first; i < n; i++)
            xr[i - first] = ldexp(vload_half(i, h), k);
    }
}
