/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32) of the checkpoint files.
 *
 * A 400 MB checkpoint is checksummed on every save and load, so speed
 * matters: on x86-64 CPUs with PCLMULQDQ the bulk is folded 64 bytes at a time
 * with carry-less multiplication (Intel's "Fast CRC Computation for Generic
 * Polynomials Using PCLMULQDQ", the constants of the Linux kernel's
 * crc32-pclmul for this polynomial), about 10x the table; elsewhere, and for
 * the head and tail, slicing-by-8 tables. tests/test_checkpoint.c compares
 * the two paths at every length up to 1 KiB and every alignment. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "io/checkpoint.h"

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int have_clmul;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 255];
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    have_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
}

/* The register (no pre/post inversion) over p[0..n) by tables. */
static uint32_t crc_tables(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n >= 8) { /* slicing-by-8 */
        uint32_t a = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        crc = crc_table[7][a & 255] ^ crc_table[6][(a >> 8) & 255] ^ crc_table[5][(a >> 16) & 255] ^
              crc_table[4][a >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
              crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = crc_table[0][(crc ^ *p++) & 255] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* The register over p[0..n), n >= 64 and a multiple of 16. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_clmul(uint32_t crc, const uint8_t *p, size_t n)
{
    const __m128i r2r1 = _mm_set_epi64x(0x01c6e41596LL, 0x0154442bd4LL);
    const __m128i r4r3 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL);
    const __m128i r5 = _mm_set_epi64x(0, 0x0163cd6124LL);
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
    const __m128i poly_mu = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL);
    __m128i x1 = _mm_loadu_si128((const __m128i *)p), x2 = _mm_loadu_si128((const __m128i *)(p + 16)),
            x3 = _mm_loadu_si128((const __m128i *)(p + 32)), x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
    p += 64;
    n -= 64;
    /* fold by 4: each lane times x^(512+-32) mod P, plus the next 64 bytes */
    while (n >= 64) {
        __m128i h1 = _mm_clmulepi64_si128(x1, r2r1, 0x11), h2 = _mm_clmulepi64_si128(x2, r2r1, 0x11),
                h3 = _mm_clmulepi64_si128(x3, r2r1, 0x11), h4 = _mm_clmulepi64_si128(x4, r2r1, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, r2r1, 0x00), h1),
                           _mm_loadu_si128((const __m128i *)p));
        x2 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x2, r2r1, 0x00), h2),
                           _mm_loadu_si128((const __m128i *)(p + 16)));
        x3 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x3, r2r1, 0x00), h3),
                           _mm_loadu_si128((const __m128i *)(p + 32)));
        x4 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x4, r2r1, 0x00), h4),
                           _mm_loadu_si128((const __m128i *)(p + 48)));
        p += 64;
        n -= 64;
    }
    /* four lanes into one, then 16 bytes at a time */
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, r4r3, 0x00), _mm_clmulepi64_si128(x1, r4r3, 0x11)), x2);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, r4r3, 0x00), _mm_clmulepi64_si128(x1, r4r3, 0x11)), x3);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, r4r3, 0x00), _mm_clmulepi64_si128(x1, r4r3, 0x11)), x4);
    while (n >= 16) {
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, r4r3, 0x00), _mm_clmulepi64_si128(x1, r4r3, 0x11)),
                           _mm_loadu_si128((const __m128i *)p));
        p += 16;
        n -= 16;
    }
    /* 128 -> 64 bits (appending 32 zero bits), 64 -> 32, Barrett reduction */
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), _mm_clmulepi64_si128(x1, r4r3, 0x10));
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 4), _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), r5, 0x00));
    __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly_mu, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), poly_mu, 0x00);
    return (uint32_t)_mm_extract_epi32(_mm_xor_si128(x1, t), 1);
}
#endif

uint32_t clsynth_crc32_tables_only(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    return ~crc_tables(~crc, data, n);
}

uint32_t clsynth_crc32(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    crc = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (have_clmul && n >= 64) {
        size_t bulk = n & ~(size_t)15;
        crc = crc_clmul(crc, p, bulk);
        p += bulk;
        n -= bulk;
    }
#endif
    return ~crc_tables(crc, p, n);
}
