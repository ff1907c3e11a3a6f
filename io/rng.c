#include "io/rng.h"

uint64_t clsynth_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void clsynth_rng_seed(clsynth_rng *r, const uint64_t *key, int nkey)
{
    uint64_t h = 0x243F6A8885A308D3ull;
    for (int i = 0; i < nkey; i++)
        h = clsynth_mix64(h ^ key[i]);
    for (int i = 0; i < 4; i++) {
        h += 0x9E3779B97F4A7C15ull;
        r->s[i] = clsynth_mix64(h);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t clsynth_rng_u64(clsynth_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t clsynth_rng_below(clsynth_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = clsynth_rng_u64(r);
    while (x >= limit);
    return x % n;
}

int clsynth_rng_int(clsynth_rng *r, int lo, int hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int)clsynth_rng_below(r, (uint64_t)((int64_t)hi - lo + 1));
}

float clsynth_rng_float(clsynth_rng *r)
{
    return (float)(clsynth_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

float clsynth_rng_range(clsynth_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * clsynth_rng_float(r);
}
