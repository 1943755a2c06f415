/* IEEE binary16 and bfloat16 <-> binary32 conversion on bit patterns, round to nearest even.
 * Plain C, header-only, usable from host and device code; no hardware conversion instructions,
 * so every build gives the same bits.
 * NaN follows ggml (docs/formats/quantization.md): binary32 -> binary16 gives sign | 0x7E00
 * (payload dropped); binary16 -> binary32 keeps the payload and sets the quiet bit. */
#ifndef RK_HALF_H
#define RK_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t rk_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float rk_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* binary16 -> binary32: exact for every non-NaN input; NaN comes out quiet. */
static inline float rk_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal m * 2^-24: shift the leading 1 into the implicit position */
            uint32_t e = 113;
            while (!(mant & 0x400u)) {
                mant <<= 1;
                e--;
            }
            bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13) | (mant ? 0x00400000u : 0u);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    return rk_bits_f32(bits);
}

/* binary32 -> binary16, round to nearest even; overflow gives infinity. */
static inline uint16_t rk_f32_to_f16(float f)
{
    uint32_t x = rk_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) { /* Inf or NaN */
        if (x > 0x7f800000u)
            return (uint16_t)(sign | 0x7e00u);
        return (uint16_t)(sign | 0x7c00u);
    }
    if (x >= 0x477ff000u) /* >= 65520 rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (x < 0x38800000u) {   /* below 2^-14: zero or subnormal binary16 */
        if (x < 0x33000000u) /* below 2^-25: rounds to zero (2^-25 itself ties to even 0) */
            return sign;
        uint32_t e = x >> 23;
        uint32_t mant = (x & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t m = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (m & 1u)))
            m++;
        return (uint16_t)(sign | m);
    }
    uint32_t rounded = x + 0xfffu + ((x >> 13) & 1u);
    return (uint16_t)(sign | ((rounded - (112u << 23)) >> 13));
}

/* bfloat16 -> binary32: exact (the upper half of the binary32 pattern). */
static inline float rk_bf16_to_f32(uint16_t b) { return rk_bits_f32((uint32_t)b << 16); }

/* binary32 -> bfloat16, round to nearest even; NaN stays a quiet NaN. */
static inline uint16_t rk_f32_to_bf16(float f)
{
    uint32_t x = rk_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

#endif
