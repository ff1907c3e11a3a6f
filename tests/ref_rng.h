/* Plain-C reference of the counter-based RNG of kernels/rng.cl (Philox-4x32-10). */
#ifndef CLSYNTH_REF_RNG_H
#define CLSYNTH_REF_RNG_H

#include <stdint.h>

void ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* Raw 32 bits of element i of (seed, stream). */
uint32_t ref_rng_bits(uint64_t seed, uint64_t stream, uint64_t i);
/* Uniform [0, 1) of element i: (bits >> 8) * 2^-24 (exact in float). */
float ref_rng_uniform01(uint64_t seed, uint64_t stream, uint64_t i);
/* Standard normal of element i (Box-Muller on lane pairs, in double). */
double ref_rng_normal(uint64_t seed, uint64_t stream, uint64_t i);

#endif
