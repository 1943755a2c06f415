/* Per-block dequantization of the GGML block types, bit-identical to ggml's dequantize_row_*:
 * same integer extraction, same float operation order (no fused multiply-add: build with
 * -ffp-contract=off). Plain C, header-only, shared by host and device code.
 * Blocks are read as bytes at the offsets of the structs in blocks.h; fields are little-endian
 * and no alignment is assumed. Not for: deciding a block's type (callers switch on rf_dtype).
 * Layouts: docs/formats/quantization.md. */
#ifndef RK_QUANT_DEQUANT_H
#define RK_QUANT_DEQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "common/blocks.h"
#include "common/quant_math.h"

/* The 16 values an IQ4_NL / IQ4_XS nibble selects (ggml's kvalues_iq4nl). */
static const int8_t rk_iq4nl_values[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* Q4_0 (18 bytes, 32 weights), y = (q - 8) * d:
 *
 *   byte  0      2                                  18
 *         +------+----------------------------------+
 *         | d f16| qs[16]                           |
 *         +------+----------------------------------+
 *   qs[j] = | hi nibble: weight j+16 | lo nibble: weight j |     (j = 0..15, "split halves")
 */
static inline void rk_dequant_block_q4_0(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q4_0, d));
    const uint8_t *qs = b + offsetof(rk_block_q4_0, qs);
    for (int j = 0; j < 16; j++) {
        const int q0 = (qs[j] & 0x0f) - 8;
        const int q1 = (qs[j] >> 4) - 8;
        y[j] = (float)q0 * d;
        y[j + 16] = (float)q1 * d;
    }
}

/* Q4_1 (20 bytes): d f16 | m f16 | qs[16] (nibbles as Q4_0); y = q * d + m. */
static inline void rk_dequant_block_q4_1(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q4_1, d));
    const float m = rk_load_f16(b + offsetof(rk_block_q4_1, m));
    const uint8_t *qs = b + offsetof(rk_block_q4_1, qs);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0x0f) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

/* Q5_0 (22 bytes), y = (q - 16) * d, q = 5 bits:
 *
 *   byte  0      2            6                      22
 *         +------+------------+----------------------+
 *         | d f16| qh u32 LE  | qs[16] (as Q4_0)     |
 *         +------+------------+----------------------+
 *   bit 4 of weight j (0..31) = bit j of qh   (qh sits at offset 2: unaligned for u32 loads)
 */
static inline void rk_dequant_block_q5_0(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q5_0, d));
    const uint32_t qh = rk_load_u32le(b + offsetof(rk_block_q5_0, qh));
    const uint8_t *qs = b + offsetof(rk_block_q5_0, qs);
    for (int j = 0; j < 16; j++) {
        const int hi0 = (int)((qh >> j) & 1u) << 4;
        const int hi1 = (int)((qh >> (j + 16)) & 1u) << 4;
        const int q0 = ((qs[j] & 0x0f) | hi0) - 16;
        const int q1 = ((qs[j] >> 4) | hi1) - 16;
        y[j] = (float)q0 * d;
        y[j + 16] = (float)q1 * d;
    }
}

/* Q5_1 (24 bytes): d f16 | m f16 | qh u32 LE | qs[16]; bits as Q5_0; y = q * d + m. */
static inline void rk_dequant_block_q5_1(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q5_1, d));
    const float m = rk_load_f16(b + offsetof(rk_block_q5_1, m));
    const uint32_t qh = rk_load_u32le(b + offsetof(rk_block_q5_1, qh));
    const uint8_t *qs = b + offsetof(rk_block_q5_1, qs);
    for (int j = 0; j < 16; j++) {
        const int hi0 = (int)((qh >> j) & 1u) << 4;
        const int hi1 = (int)((qh >> (j + 16)) & 1u) << 4;
        y[j] = (float)((qs[j] & 0x0f) | hi0) * d + m;
        y[j + 16] = (float)((qs[j] >> 4) | hi1) * d + m;
    }
}

/* Q8_0 (34 bytes): d f16 | qs[32] int8; y = q * d. */
static inline void rk_dequant_block_q8_0(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q8_0, d));
    const uint8_t *qs = b + offsetof(rk_block_q8_0, qs);
    for (int j = 0; j < 32; j++)
        y[j] = (float)(int8_t)qs[j] * d;
}

/* Q8_1 (36 bytes): d f16 | s f16 (= d * sum q, unused here) | qs[32] int8; y = q * d. */
static inline void rk_dequant_block_q8_1(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q8_1, d));
    const uint8_t *qs = b + offsetof(rk_block_q8_1, qs);
    for (int j = 0; j < 32; j++)
        y[j] = (float)(int8_t)qs[j] * d;
}

/* IQ4_NL (18 bytes): d f16 | qs[16] (nibbles as Q4_0); y = d * values[nibble]. */
static inline void rk_dequant_block_iq4_nl(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_iq4_nl, d));
    const uint8_t *qs = b + offsetof(rk_block_iq4_nl, qs);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)rk_iq4nl_values[qs[j] & 0x0f];
        y[j + 16] = d * (float)rk_iq4nl_values[qs[j] >> 4];
    }
}

/* Q2_K (84 bytes, 256 weights in 16 sub-blocks of 16):
 *
 *   byte  0                16                                80     82     84
 *         +----------------+---------------------------------+------+------+
 *         | scales[16]     | qs[64]                          | d    | dmin |
 *         +----------------+---------------------------------+------+------+
 *   scales[s] = | min (4 bits) | scale (4 bits) |  for sub-block s
 *   weight e: h = e/128, j = (e%128)/32, l = e%32: q = (qs[32h + l] >> 2j) & 3,
 *             s = 8h + 2j + l/16;  y = (d * scale) * q - dmin * min
 */
static inline void rk_dequant_block_q2_K(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q2_K, d));
    const float dmin = rk_load_f16(b + offsetof(rk_block_q2_K, dmin));
    const uint8_t *scales = b + offsetof(rk_block_q2_K, scales);
    const uint8_t *q = b + offsetof(rk_block_q2_K, qs);
    int s = 0;
    for (int half = 0; half < 2; half++) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int part = 0; part < 2; part++) {
                const uint8_t sc = scales[s++];
                const float dl = d * (float)(sc & 0x0f);
                const float ml = dmin * (float)(sc >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)((q[16 * part + l] >> shift) & 3) - ml;
            }
        }
        q += 32;
    }
}

/* Q3_K (110 bytes, 16 sub-blocks of 16, signed 6-bit scales):
 *
 *   byte  0            32                  96           108    110
 *         +------------+-------------------+------------+------+
 *         | hmask[32]  | qs[64]            | scales[12] | d    |
 *         +------------+-------------------+------------+------+
 *   weight e: h = e/128, j = (e%128)/32, l = e%32:
 *     low 2 bits  = (qs[32h + l] >> 2j) & 3
 *     high bit    = (hmask[l] >> (4h + j)) & 1;  q = low - (high ? 0 : 4)      (-4..3)
 *   sub-block s = 8h + 2j + l/16, its scale (6 bits, minus 32):
 *     scales[0..7]:  low nibble = bits 0-3 of scale s (s < 8), high nibble = of scale s+8
 *     scales[8..11]: byte 8 + s%4 holds bits 4-5 of scale s at bit 2*(s/4)
 *   y = (d * (scale - 32)) * q
 */
static inline int rk_q3_K_scale(const uint8_t *scales, int s)
{
    const int low4 = s < 8 ? (scales[s] & 0x0f) : (scales[s - 8] >> 4);
    const int high2 = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    return (low4 | (high2 << 4)) - 32;
}

static inline void rk_dequant_block_q3_K(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q3_K, d));
    const uint8_t *hmask = b + offsetof(rk_block_q3_K, hmask);
    const uint8_t *q = b + offsetof(rk_block_q3_K, qs);
    const uint8_t *scales = b + offsetof(rk_block_q3_K, scales);
    int s = 0;
    unsigned bit = 1;
    for (int half = 0; half < 2; half++) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int part = 0; part < 2; part++) {
                const float dl = d * (float)rk_q3_K_scale(scales, s++);
                for (int l = 16 * part; l < 16 * part + 16; l++) {
                    const int low = (q[l] >> shift) & 3;
                    const int v = low - ((hmask[l] & bit) ? 0 : 4);
                    *y++ = dl * (float)v;
                }
            }
            bit <<= 1;
        }
        q += 32;
    }
}

/* Q4_K / Q5_K scales[12]: eight 6-bit scales sc[0..7] and eight 6-bit mins m[0..7].
 *
 *          bit 7 6 | 5 4 3 2 1 0
 *   [0..3]   sc[4..7] bits 4-5 | sc[0..3]
 *   [4..7]    m[4..7] bits 4-5 |  m[0..3]
 *   [8..11]  bits 7-4: m[4..7] bits 0-3 | bits 3-0: sc[4..7] bits 0-3
 */
static inline void rk_k4_scale_min(const uint8_t *scales, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
        *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* Q4_K (144 bytes, 8 sub-blocks of 32):
 *
 *   byte  0      2      4             16                                  144
 *         +------+------+-------------+-----------------------------------+
 *         | d    | dmin | scales[12]  | qs[128]                           |
 *         +------+------+-------------+-----------------------------------+
 *   chunk c = 0..3 is qs[32c .. 32c+31]: low nibble of qs[32c + l] = weight 64c + l
 *   (sub-block 2c), high nibble = weight 64c + 32 + l (sub-block 2c+1). Not interleaved pairs.
 *   y = (d * sc[j]) * q - dmin * m[j]
 */
static inline void rk_dequant_block_q4_K(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q4_K, d));
    const float dmin = rk_load_f16(b + offsetof(rk_block_q4_K, dmin));
    const uint8_t *scales = b + offsetof(rk_block_q4_K, scales);
    const uint8_t *q = b + offsetof(rk_block_q4_K, qs);
    for (int c = 0; c < 4; c++) {
        int sc, m;
        rk_k4_scale_min(scales, 2 * c, &sc, &m);
        const float d1 = d * (float)sc;
        const float m1 = dmin * (float)m;
        rk_k4_scale_min(scales, 2 * c + 1, &sc, &m);
        const float d2 = d * (float)sc;
        const float m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (float)(q[l] & 0x0f) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (float)(q[l] >> 4) - m2;
        q += 32;
    }
}

/* Q5_K (176 bytes): d | dmin | scales[12] | qh[32] | qs[128]; low 4 bits as Q4_K, and
 * bit 4 of weight 64c + 32*hi + l = bit (2c + hi) of qh[l]. y = (d * sc[j]) * q - dmin * m[j]. */
static inline void rk_dequant_block_q5_K(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q5_K, d));
    const float dmin = rk_load_f16(b + offsetof(rk_block_q5_K, dmin));
    const uint8_t *scales = b + offsetof(rk_block_q5_K, scales);
    const uint8_t *qh = b + offsetof(rk_block_q5_K, qh);
    const uint8_t *ql = b + offsetof(rk_block_q5_K, qs);
    unsigned bit_lo = 1, bit_hi = 2;
    for (int c = 0; c < 4; c++) {
        int sc, m;
        rk_k4_scale_min(scales, 2 * c, &sc, &m);
        const float d1 = d * (float)sc;
        const float m1 = dmin * (float)m;
        rk_k4_scale_min(scales, 2 * c + 1, &sc, &m);
        const float d2 = d * (float)sc;
        const float m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (float)((ql[l] & 0x0f) + ((qh[l] & bit_lo) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & bit_hi) ? 16 : 0)) - m2;
        ql += 32;
        bit_lo <<= 2;
        bit_hi <<= 2;
    }
}

/* Q6_K (210 bytes, 16 sub-blocks of 16, int8 scales):
 *
 *   byte  0                    128             192          208    210
 *         +--------------------+---------------+------------+------+
 *         | ql[128]            | qh[64]        | scales[16] | d    |
 *         +--------------------+---------------+------------+------+
 *   weight e: h = e/128, t = (e%128)/32, l = e%32:
 *     low 4:  t=0 ql[64h+l] & 15, t=1 ql[64h+32+l] & 15, t=2 ql[64h+l] >> 4, t=3 ql[64h+32+l] >> 4
 *     high 2: (qh[32h + l] >> 2t) & 3;  q = (low | high << 4) - 32   (-32..31)
 *     scale:  scales[8h + 2t + l/16];   y = (d * scale) * q
 *   210 is not a multiple of 4: every other block is misaligned.
 */
static inline void rk_dequant_block_q6_K(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_q6_K, d));
    const uint8_t *ql = b + offsetof(rk_block_q6_K, ql);
    const uint8_t *qh = b + offsetof(rk_block_q6_K, qh);
    const uint8_t *sc = b + offsetof(rk_block_q6_K, scales);
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)(int8_t)sc[is + 0] * (float)q1;
            y[l + 32] = d * (float)(int8_t)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)(int8_t)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)(int8_t)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

/* Q8_K (292 bytes): d f32 | qs[256] int8 | bsums[16] int16 (sums of 16 quants); y = d * q. */
static inline void rk_dequant_block_q8_K(const uint8_t *b, float *y)
{
    const float d = rk_load_f32le(b + offsetof(rk_block_q8_K, d));
    const uint8_t *qs = b + offsetof(rk_block_q8_K, qs);
    for (int j = 0; j < 256; j++)
        y[j] = d * (float)(int8_t)qs[j];
}

/* IQ4_XS (136 bytes, 8 sub-blocks of 32):
 *
 *   byte  0      2            4             8                                136
 *         +------+------------+-------------+----------------------------------+
 *         | d    | scales_h   | scales_l[4] | qs[128]                          |
 *         +------+------------+-------------+----------------------------------+
 *   6-bit scale of sub-block s: low 4 bits = nibble (s % 2) of scales_l[s / 2], high 2 bits =
 *   bits 2s..2s+1 of scales_h (u16 LE); sub-block s uses qs[16s .. 16s+15] split as Q4_0.
 *   y = (d * (scale - 32)) * values[nibble]
 */
static inline void rk_dequant_block_iq4_xs(const uint8_t *b, float *y)
{
    const float d = rk_load_f16(b + offsetof(rk_block_iq4_xs, d));
    const unsigned scales_h = rk_load_u16le(b + offsetof(rk_block_iq4_xs, scales_h));
    const uint8_t *scales_l = b + offsetof(rk_block_iq4_xs, scales_l);
    const uint8_t *qs = b + offsetof(rk_block_iq4_xs, qs);
    for (int s = 0; s < 8; s++) {
        const int ls =
            ((scales_l[s / 2] >> (4 * (s % 2))) & 0x0f) | (int)(((scales_h >> (2 * s)) & 3u) << 4);
        const float dl = d * (float)(ls - 32);
        for (int j = 0; j < 16; j++) {
            y[j] = dl * (float)rk_iq4nl_values[qs[j] & 0x0f];
            y[j + 16] = dl * (float)rk_iq4nl_values[qs[j] >> 4];
        }
        y += 32;
        qs += 16;
    }
}

#endif
