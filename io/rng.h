/* Small seeded PRNG for the io layer: xoshiro256** seeded through
 * splitmix64. Deterministic on every platform; no global state. */
#ifndef CLSYNTH_IO_RNG_H
#define CLSYNTH_IO_RNG_H

#include <stdint.h>

typedef struct clsynth_rng {
    uint64_t s[4];
} clsynth_rng;

/* Mixes a 64-bit value (the splitmix64 finalizer); good for hashing keys. */
uint64_t clsynth_mix64(uint64_t x);

/* Seeds from a key of several words, e.g. {seed, epoch, index}. */
void clsynth_rng_seed(clsynth_rng *r, const uint64_t *key, int nkey);
uint64_t clsynth_rng_u64(clsynth_rng *r);
/* Uniform in [0, n), n > 0, without modulo bias. */
uint64_t clsynth_rng_below(clsynth_rng *r, uint64_t n);
/* Uniform in [lo, hi] (inclusive). */
int clsynth_rng_int(clsynth_rng *r, int lo, int hi);
/* Uniform float in [0, 1) with 24 random bits. */
float clsynth_rng_float(clsynth_rng *r);
/* Uniform float in [lo, hi). */
float clsynth_rng_range(clsynth_rng *r, float lo, float hi);

#endif
