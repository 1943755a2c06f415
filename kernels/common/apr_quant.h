/* aprender's own quantized types APR_Q4 (dtype 128) and APR_Q8 (dtype 129), docs/formats/apr.md:
 * per-block math as static inline plain C, shared by libformat (APR reader/writer) and the
 * quantization kernels. Arithmetic is f32 throughout, as aprender's writer does it (f32 amax,
 * f32 division, Rust `round` = half away from zero, saturating cast where NaN becomes 0).
 * Not for: GGML Q4_0/Q8_0 (different layouts; see blocks.h).
 *
 * APR_Q4 block, 18 bytes for up to 32 values (the last block of a tensor may be partial):
 *
 *   byte  0      1      2            3            ...  17
 *        +------+------+------------+------------+----+-------------+
 *        | scale (f16) | n1<<4 | n0 | n3<<4 | n2 |    | n31<<4 | n30|
 *        +------+------+------------+------------+----+-------------+
 *
 *   nibble n_i = q_i + 8 with q_i in [-8, 7]; element 2k is the LOW nibble of byte 2+k and
 *   element 2k+1 the HIGH nibble (interleaved pairs, unlike Q4_0's split halves). Nibbles of
 *   elements past the end of a partial block are 0. Decode: x_i = (n_i - 8) * f32(scale).
 *
 * APR_Q8 tensor: one f32 scale (LE) for the whole tensor, then one int8 per element;
 *   x_i = q_i * scale. An empty tensor has no scale (0 bytes). */
#ifndef RK_APR_QUANT_H
#define RK_APR_QUANT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/half.h"

#define RK_APR_Q4_BLOCK       32
#define RK_APR_Q4_BLOCK_BYTES 18

/* Rust's `(v / scale).round().clamp(lo, hi) as i8`: half away from zero, NaN -> 0. */
static inline int rk_apr_round_clamp(float v, float lo, float hi)
{
    if (v != v)
        return 0;
    float r = roundf(v);
    if (r < lo)
        r = lo;
    if (r > hi)
        r = hi;
    return (int)r;
}

/* Rust's f32::max folded from 0: NaN operands are ignored. */
static inline float rk_apr_absmax(const float *x, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m)
            m = a;
    }
    return m;
}

/* Bytes of an APR_Q4 tensor of n elements: ceil(n / 32) * 18. */
static inline uint64_t rk_apr_q4_bytes(uint64_t n)
{
    return (n / RK_APR_Q4_BLOCK + (n % RK_APR_Q4_BLOCK != 0)) * RK_APR_Q4_BLOCK_BYTES;
}

/* Bytes of an APR_Q8 tensor of n elements: 4 + n, 0 when empty. */
static inline uint64_t rk_apr_q8_bytes(uint64_t n) { return n ? 4 + n : 0; }

/* Quantizes n (1..32) values into one 18-byte block. */
static inline void rk_apr_q4_quantize_block(const float *x, int n,
                                            uint8_t out[RK_APR_Q4_BLOCK_BYTES])
{
    float amax = rk_apr_absmax(x, (size_t)n);
    float scale = amax == 0.0f ? 1.0f : amax / 7.0f;
    uint16_t h = rk_f32_to_f16(scale);
    out[0] = (uint8_t)(h & 0xff);
    out[1] = (uint8_t)(h >> 8);
    memset(out + 2, 0, 16);
    for (int i = 0; i < n; i++) {
        /* the f32 scale quantizes; only its f16 rounding is stored (as aprender does) */
        int q = rk_apr_round_clamp(x[i] / scale, -8.0f, 7.0f);
        uint8_t nibble = (uint8_t)((q + 8) & 0x0f);
        out[2 + i / 2] |= (uint8_t)(i % 2 == 0 ? nibble : nibble << 4);
    }
}

/* Decodes the first n (1..32) values of one block. */
static inline void rk_apr_q4_dequantize_block(const uint8_t blk[RK_APR_Q4_BLOCK_BYTES], int n,
                                              float *y)
{
    float scale = rk_f16_to_f32((uint16_t)(blk[0] | (blk[1] << 8)));
    for (int i = 0; i < n; i++) {
        uint8_t byte = blk[2 + i / 2];
        int nibble = i % 2 == 0 ? (byte & 0x0f) : (byte >> 4);
        y[i] = (float)(nibble - 8) * scale;
    }
}

/* Whole tensor: n values -> rk_apr_q4_bytes(n) bytes. */
static inline void rk_apr_q4_quantize(const float *x, uint64_t n, uint8_t *out)
{
    for (uint64_t i = 0; i < n; i += RK_APR_Q4_BLOCK) {
        int len = n - i < RK_APR_Q4_BLOCK ? (int)(n - i) : RK_APR_Q4_BLOCK;
        rk_apr_q4_quantize_block(x + i, len, out + (i / RK_APR_Q4_BLOCK) * RK_APR_Q4_BLOCK_BYTES);
    }
}

static inline void rk_apr_q4_dequantize(const uint8_t *in, uint64_t n, float *y)
{
    for (uint64_t i = 0; i < n; i += RK_APR_Q4_BLOCK) {
        int len = n - i < RK_APR_Q4_BLOCK ? (int)(n - i) : RK_APR_Q4_BLOCK;
        rk_apr_q4_dequantize_block(in + (i / RK_APR_Q4_BLOCK) * RK_APR_Q4_BLOCK_BYTES, len, y + i);
    }
}

/* The tensor-wide APR_Q8 scale: amax / 127, or 1 when every value is 0. */
static inline float rk_apr_q8_scale(const float *x, uint64_t n)
{
    float amax = rk_apr_absmax(x, (size_t)n);
    return amax == 0.0f ? 1.0f : amax / 127.0f;
}

/* Whole tensor: n values -> rk_apr_q8_bytes(n) bytes (scale LE, then int8 values). */
static inline void rk_apr_q8_quantize(const float *x, uint64_t n, uint8_t *out)
{
    if (n == 0)
        return;
    float scale = rk_apr_q8_scale(x, n);
    uint32_t bits = rk_f32_bits(scale);
    for (int b = 0; b < 4; b++)
        out[b] = (uint8_t)(bits >> (8 * b));
    for (uint64_t i = 0; i < n; i++)
        out[4 + i] = (uint8_t)(int8_t)rk_apr_round_clamp(x[i] / scale, -127.0f, 127.0f);
}

static inline void rk_apr_q8_dequantize(const uint8_t *in, uint64_t n, float *y)
{
    if (n == 0)
        return;
    uint32_t bits =
        (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
    float scale = rk_bits_f32(bits);
    for (uint64_t i = 0; i < n; i++)
        y[i] = (float)(int8_t)in[4 + i] * scale;
}

#endif
