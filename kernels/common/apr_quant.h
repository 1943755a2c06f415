/* aprender's APR_Q4 and APR_Q8 encodings (spec/apr-v2.md 9.2, 9.3): per-block / per-tensor math,
 * plain C, header-only, shared by host and device code.
 * Not for: GGML Q4_0 / Q8_0 (different nibble order, scale and rounding; see quant_dequant.h).
 *
 * APR_Q4, 18 bytes per 32 elements (the last block of a tensor may hold fewer, n):
 *
 *   byte  0        2                                   18
 *         +--------+-----------------------------------+
 *         | scale  | 16 bytes of nibbles               |
 *         | f16 LE |                                   |
 *         +--------+-----------------------------------+
 *   byte 2+k = | nibble of element 2k+1 | nibble of element 2k |   ("interleaved pairs")
 *   nibble = q + 8, q = clamp(round(x / scale), -8, 7); elements past n have nibble 0.
 *
 * APR_Q8: f32 scale (LE) for the whole tensor, then one int8 per element.
 *
 * Arithmetic is f32: scale = max|x| / 7 (or / 127), 1.0 when max|x| is 0; the unrounded f32 scale
 * quantizes; round is half away from zero (Rust f32::round = C roundf). Whether aprender computes
 * in f32 or f64 is unconfirmed (apr-v2.md 22); f32 is what its writer code reads as. A NaN quotient
 * becomes 0 (Rust's saturating float -> int cast). */
#ifndef RK_APR_QUANT_H
#define RK_APR_QUANT_H

#include <math.h>
#include <stdint.h>

#include "quant_math.h"

#define RK_APR_Q4_BLOCK 32
#define RK_APR_Q4_BLOCK_BYTES 18

/* round(v) clamped to [lo, hi], NaN -> 0. */
static inline int rk_apr_round_clamp(float v, int lo, int hi)
{
    if (v != v)
        return 0;
    float r = roundf(v);
    if (r < (float)lo)
        return lo;
    if (r > (float)hi)
        return hi;
    return (int)r;
}

/* Quantizes n (1..32) elements into one 18-byte block. */
static inline void rk_apr_q4_quantize_block(const float *x, int n, uint8_t *b)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax)
            amax = a;
    }
    const float scale = amax == 0.0f ? 1.0f : amax / 7.0f;
    rk_store_u16le(b, rk_f32_to_f16(scale));
    for (int k = 0; k < 16; k++)
        b[2 + k] = 0;
    for (int i = 0; i < n; i++) {
        const int nibble = rk_apr_round_clamp(x[i] / scale, -8, 7) + 8;
        b[2 + i / 2] = (uint8_t)(b[2 + i / 2] | (nibble << (4 * (i % 2))));
    }
}

/* Decodes the first n (1..32) elements of one block. */
static inline void rk_apr_q4_dequant_block(const uint8_t *b, int n, float *y)
{
    const float scale = rk_ggml_f16_to_f32(rk_load_u16le(b));
    for (int i = 0; i < n; i++) {
        const int nibble = (b[2 + i / 2] >> (4 * (i % 2))) & 0x0f;
        y[i] = (float)(nibble - 8) * scale;
    }
}

/* The tensor-wide APR_Q8 scale of n elements. */
static inline float rk_apr_q8_scale(const float *x, int64_t n)
{
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax)
            amax = a;
    }
    return amax == 0.0f ? 1.0f : amax / 127.0f;
}

static inline int8_t rk_apr_q8_quantize_value(float x, float scale)
{
    return (int8_t)rk_apr_round_clamp(x / scale, -127, 127);
}

#endif
