#include "ref_rng.h"

#include <math.h>

void ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0, hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static void block(uint64_t seed, uint64_t stream, uint64_t blk, uint32_t out[4])
{
    uint32_t ctr[4] = { (uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)stream, (uint32_t)(stream >> 32) };
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    ref_philox4x32_10(ctr, key, out);
}

uint32_t ref_rng_bits(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint32_t o[4];
    block(seed, stream, i / 4, o);
    return o[i % 4];
}

float ref_rng_uniform01(uint64_t seed, uint64_t stream, uint64_t i)
{
    return (float)(ref_rng_bits(seed, stream, i) >> 8) * (1.0f / 16777216.0f);
}

double ref_rng_normal(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint32_t o[4];
    block(seed, stream, i / 4, o);
    int pair = (int)(i % 4) / 2 * 2;
    double u1 = ((double)(o[pair] >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(o[pair + 1] >> 8) / 16777216.0;
    double r = sqrt(-2.0 * log(u1));
    const double two_pi = 6.283185307179586476925286766559;
    return (i % 2 == 0) ? r * cos(two_pi * u2) : r * sin(two_pi * u2);
}
