/* Counter-based random numbers: Philox-4x32-10 (Salmon et al., SC'11, as in
 * Random123) and the VAE reparameterization (clcore/rng.c).
 *
 * Element i of the stream (seed, stream) comes from block i / 4, lane i % 4:
 *   bits = philox4x32_10(counter = (i / 4, 0, stream_lo, stream_hi), key = (seed_lo, seed_hi))
 * so it is a pure function of (seed, stream, i) whatever the launch shape.
 *   uniform [0,1): (bits >> 8) * 2^-24
 *   normal: Box-Muller on lanes (0,1) and (2,3): u1 = ((b0 >> 8) + 1) * 2^-24 in (0,1],
 *           u2 = (b1 >> 8) * 2^-24, z0 = sqrt(-2 ln u1) cospi(2 u2), z1 = ... sinpi(2 u2).
 *
 *   rng_fill          one work-item per block of 4 outputs; mode 0 uniform a + (b-a) u,
 *                     mode 1 normal a + b z. Traffic: 4 bytes written per element.
 *   rng_bits          the raw 32-bit outputs (tests, reproducibility checks).
 *   reparam_forward   y = mu + eps * exp(0.5 logvar)                       (16 B/elt)
 *   reparam_backward  gmu += gy; glv += 0.5 * gy * eps * exp(0.5 logvar)  (up to 28 B/elt)
 * Tunables: none (-D); local size = launch default.
 */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

uint4 philox4x32_10(uint4 c, uint2 k)
{
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k.x += PHILOX_W0;
            k.y += PHILOX_W1;
        }
        const uint lo0 = PHILOX_M0 * c.x, hi0 = mul_hi(PHILOX_M0, c.x);
        const uint lo1 = PHILOX_M1 * c.z, hi1 = mul_hi(PHILOX_M1, c.z);
        c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

float u01(const uint b) { return (float)(b >> 8) * 0x1.0p-24f; }

void box_muller(const uint b0, const uint b1, float *z0, float *z1)
{
    const float u1 = (float)((b0 >> 8) + 1u) * 0x1.0p-24f;
    const float u2 = (float)(b1 >> 8) * 0x1.0p-24f;
    const float r = sqrt(-2.0f * log(u1));
    *z0 = r * cospi(2.0f * u2);
    *z1 = r * sinpi(2.0f * u2);
}

__kernel void rng_fill(__global float *t, const int t_off, const int n, const uint seed_lo, const uint seed_hi,
                       const uint stream_lo, const uint stream_hi, const int mode, const float a, const float b)
{
    const int blk = get_global_id(0);
    const int base = blk * 4;
    if (base >= n)
        return;
    const uint4 bits = philox4x32_10((uint4)((uint)blk, 0u, stream_lo, stream_hi), (uint2)(seed_lo, seed_hi));
    float v[4];
    if (mode == 0) {
        v[0] = a + (b - a) * u01(bits.x);
        v[1] = a + (b - a) * u01(bits.y);
        v[2] = a + (b - a) * u01(bits.z);
        v[3] = a + (b - a) * u01(bits.w);
    } else {
        float z0, z1, z2, z3;
        box_muller(bits.x, bits.y, &z0, &z1);
        box_muller(bits.z, bits.w, &z2, &z3);
        v[0] = a + b * z0;
        v[1] = a + b * z1;
        v[2] = a + b * z2;
        v[3] = a + b * z3;
    }
    for (int l = 0; l < 4; l++)
        if (base + l < n)
            t[t_off + base + l] = v[l];
}

__kernel void rng_bits(__global uint *t, const int t_off, const int n, const uint seed_lo, const uint seed_hi,
                       const uint stream_lo, const uint stream_hi)
{
    const int blk = get_global_id(0);
    const int base = blk * 4;
    if (base >= n)
        return;
    const uint4 bits = philox4x32_10((uint4)((uint)blk, 0u, stream_lo, stream_hi), (uint2)(seed_lo, seed_hi));
    const uint v[4] = { bits.x, bits.y, bits.z, bits.w };
    for (int l = 0; l < 4; l++)
        if (base + l < n)
            t[t_off + base + l] = v[l];
}

__kernel void reparam_forward(__global const float *mu, const int mu_off, __global const float *lv, const int lv_off,
                              __global const float *eps, const int eps_off, __global float *y, const int y_off,
                              const int n)
{
    const int i = get_global_id(0);
    if (i < n)
        y[y_off + i] = mu[mu_off + i] + eps[eps_off + i] * exp(0.5f * lv[lv_off + i]);
}

__kernel void reparam_backward(__global float *gmu, const int gmu_off, const int want_mu, __global float *glv,
                               const int glv_off, const int want_lv, __global const float *gy, const int gy_off,
                               __global const float *lv, const int lv_off, __global const float *eps,
                               const int eps_off, const int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float g = gy[gy_off + i];
    if (want_mu)
        gmu[gmu_off + i] += g;
    if (want_lv)
        glv[glv_off + i] += 0.5f * g * eps[eps_off + i] * exp(0.5f * lv[lv_off + i]);
}
