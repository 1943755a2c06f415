/* The integer form of a weight block, the thing a quantized dot product multiplies: small
 * integers q per element, integer sub-block scales and minimums, and the block's float
 * super-scales. Every dot-product kernel (scalar reference, SIMD, GEMM panels, GPU) reads blocks
 * through this form or an equivalent of it, so they all compute the same exact integers.
 * Plain C, header-only, shared by host and device code. Layouts: blocks.h, quant_dequant.h.
 * Not for: dequantization to floats (quant_dequant.h) or quantization (cpu/quant_ref.c).
 *
 * 32-element types (activations Q8_0, or Q8_1 for Q4_1 / Q5_1):
 *   element value = d * q            Q4_0 (q = nibble - 8), Q5_0 (q = 5 bits - 16), Q8_0,
 *                                    APR_Q4 (q = nibble - 8, pairs interleaved)
 *   element value = d * q + m        Q4_1 (q = nibble), Q5_1 (q = 5 bits)
 * K-quants (256 elements, activations Q8_K), sub-block j of 16 or 32 elements:
 *   element value = d * sc[j] * q - dmin * mn[j]
 *     Q2_K: 16 x 16, q 0..3,   sc 0..15,  mn 0..15
 *     Q3_K: 16 x 16, q -4..3,  sc -32..31, mn 0
 *     Q4_K:  8 x 32, q 0..15,  sc 0..63,  mn 0..63
 *     Q5_K:  8 x 32, q 0..31,  sc 0..63,  mn 0..63
 *     Q6_K: 16 x 16, q -32..31, sc -128..127, mn 0
 * (This is the value the dequantizers compute, up to their float rounding order.) */
#ifndef RK_QUANT_DOT_H
#define RK_QUANT_DOT_H

#include <stddef.h>
#include <stdint.h>

#include "blocks.h"
#include "quant_dequant.h"
#include "quant_math.h"

/* ---- 32-element blocks: q[32], d, and m for the _1 types ---- */

static inline void rk_qform_q4_0(const uint8_t *b, int8_t *q, float *d)
{
    const uint8_t *qs = b + offsetof(rk_block_q4_0, qs);
    *d = rk_load_f16(b + offsetof(rk_block_q4_0, d));
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((qs[j] & 0x0f) - 8);
        q[j + 16] = (int8_t)((qs[j] >> 4) - 8);
    }
}

static inline void rk_qform_q4_1(const uint8_t *b, int8_t *q, float *d, float *m)
{
    const uint8_t *qs = b + offsetof(rk_block_q4_1, qs);
    *d = rk_load_f16(b + offsetof(rk_block_q4_1, d));
    *m = rk_load_f16(b + offsetof(rk_block_q4_1, m));
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(qs[j] & 0x0f);
        q[j + 16] = (int8_t)(qs[j] >> 4);
    }
}

static inline void rk_qform_q5_0(const uint8_t *b, int8_t *q, float *d)
{
    const uint8_t *qs = b + offsetof(rk_block_q5_0, qs);
    const uint32_t qh = rk_load_u32le(b + offsetof(rk_block_q5_0, qh));
    *d = rk_load_f16(b + offsetof(rk_block_q5_0, d));
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(((qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4)) - 16);
        q[j + 16] = (int8_t)(((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4)) - 16);
    }
}

static inline void rk_qform_q5_1(const uint8_t *b, int8_t *q, float *d, float *m)
{
    const uint8_t *qs = b + offsetof(rk_block_q5_1, qs);
    const uint32_t qh = rk_load_u32le(b + offsetof(rk_block_q5_1, qh));
    *d = rk_load_f16(b + offsetof(rk_block_q5_1, d));
    *m = rk_load_f16(b + offsetof(rk_block_q5_1, m));
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4));
        q[j + 16] = (int8_t)((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4));
    }
}

static inline void rk_qform_q8_0(const uint8_t *b, int8_t *q, float *d)
{
    const uint8_t *qs = b + offsetof(rk_block_q8_0, qs);
    *d = rk_load_f16(b + offsetof(rk_block_q8_0, d));
    for (int j = 0; j < 32; j++)
        q[j] = (int8_t)qs[j];
}

/* APR_Q4 (kernels/common/apr_quant.h): f16 scale, then element 2i in the low nibble of byte i
 * and element 2i + 1 in the high nibble. */
static inline void rk_qform_apr_q4(const uint8_t *b, int8_t *q, float *d)
{
    *d = rk_load_f16(b);
    for (int i = 0; i < 16; i++) {
        q[2 * i] = (int8_t)((b[2 + i] & 0x0f) - 8);
        q[2 * i + 1] = (int8_t)((b[2 + i] >> 4) - 8);
    }
}

/* ---- K-quant super-blocks: q[256], sc[], mn[] per sub-block, d, dmin ---- */

/* Element e of a Q2_K / Q3_K super-block: e = 128h + 32j + l takes bits 2j of qs[32h + l];
 * sub-block 8h + 2j + l/16 (quant_dequant.h). */
static inline void rk_qform_q2_K(const uint8_t *b, int8_t *q, int32_t *sc, int32_t *mn, float *d,
                                 float *dmin)
{
    const uint8_t *scales = b + offsetof(rk_block_q2_K, scales);
    const uint8_t *qs = b + offsetof(rk_block_q2_K, qs);
    *d = rk_load_f16(b + offsetof(rk_block_q2_K, d));
    *dmin = rk_load_f16(b + offsetof(rk_block_q2_K, dmin));
    for (int s = 0; s < 16; s++) {
        sc[s] = scales[s] & 0x0f;
        mn[s] = scales[s] >> 4;
    }
    for (int e = 0; e < 256; e++) {
        const int h = e / 128, j = (e % 128) / 32, l = e % 32;
        q[e] = (int8_t)((qs[32 * h + l] >> (2 * j)) & 3);
    }
}

static inline void rk_qform_q3_K(const uint8_t *b, int8_t *q, int32_t *sc, float *d)
{
    const uint8_t *hmask = b + offsetof(rk_block_q3_K, hmask);
    const uint8_t *qs = b + offsetof(rk_block_q3_K, qs);
    const uint8_t *scales = b + offsetof(rk_block_q3_K, scales);
    *d = rk_load_f16(b + offsetof(rk_block_q3_K, d));
    for (int s = 0; s < 16; s++)
        sc[s] = rk_q3_K_scale(scales, s);
    for (int e = 0; e < 256; e++) {
        const int h = e / 128, j = (e % 128) / 32, l = e % 32;
        const int low = (qs[32 * h + l] >> (2 * j)) & 3;
        const int high = (hmask[l] >> (4 * h + j)) & 1;
        q[e] = (int8_t)(low - (high ? 0 : 4));
    }
}

/* Q4_K: element 64c + l is the low nibble of qs[32c + l], element 64c + 32 + l its high nibble;
 * sub-block j = element / 32. */
static inline void rk_qform_q4_K(const uint8_t *b, int8_t *q, int32_t *sc, int32_t *mn, float *d,
                                 float *dmin)
{
    const uint8_t *scales = b + offsetof(rk_block_q4_K, scales);
    const uint8_t *qs = b + offsetof(rk_block_q4_K, qs);
    *d = rk_load_f16(b + offsetof(rk_block_q4_K, d));
    *dmin = rk_load_f16(b + offsetof(rk_block_q4_K, dmin));
    for (int j = 0; j < 8; j++) {
        int s, m;
        rk_k4_scale_min(scales, j, &s, &m);
        sc[j] = s;
        mn[j] = m;
    }
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = (int8_t)(qs[32 * c + l] & 0x0f);
            q[64 * c + 32 + l] = (int8_t)(qs[32 * c + l] >> 4);
        }
    }
}

/* Q5_K: Q4_K's nibbles plus bit 4 of element 64c + 32hi + l = bit (2c + hi) of qh[l]. */
static inline void rk_qform_q5_K(const uint8_t *b, int8_t *q, int32_t *sc, int32_t *mn, float *d,
                                 float *dmin)
{
    const uint8_t *scales = b + offsetof(rk_block_q5_K, scales);
    const uint8_t *qh = b + offsetof(rk_block_q5_K, qh);
    const uint8_t *qs = b + offsetof(rk_block_q5_K, qs);
    *d = rk_load_f16(b + offsetof(rk_block_q5_K, d));
    *dmin = rk_load_f16(b + offsetof(rk_block_q5_K, dmin));
    for (int j = 0; j < 8; j++) {
        int s, m;
        rk_k4_scale_min(scales, j, &s, &m);
        sc[j] = s;
        mn[j] = m;
    }
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            const int lo = qs[32 * c + l] & 0x0f, hi = qs[32 * c + l] >> 4;
            q[64 * c + l] = (int8_t)(lo | (((qh[l] >> (2 * c)) & 1) << 4));
            q[64 * c + 32 + l] = (int8_t)(hi | (((qh[l] >> (2 * c + 1)) & 1) << 4));
        }
    }
}

/* Q6_K: element 128h + 32t + l: low 4 bits from ql[64h + l] (t = 0), ql[64h + 32 + l] (t = 1),
 * their high nibbles (t = 2, 3); high 2 bits = bits 2t of qh[32h + l]; sub-block = element / 16. */
static inline void rk_qform_q6_K(const uint8_t *b, int8_t *q, int32_t *sc, float *d)
{
    const uint8_t *ql = b + offsetof(rk_block_q6_K, ql);
    const uint8_t *qh = b + offsetof(rk_block_q6_K, qh);
    const uint8_t *scales = b + offsetof(rk_block_q6_K, scales);
    *d = rk_load_f16(b + offsetof(rk_block_q6_K, d));
    for (int s = 0; s < 16; s++)
        sc[s] = (int8_t)scales[s];
    for (int h = 0; h < 2; h++) {
        for (int l = 0; l < 32; l++) {
            const uint8_t a = ql[64 * h + l], c = ql[64 * h + 32 + l], hb = qh[32 * h + l];
            q[128 * h + l] = (int8_t)(((a & 0x0f) | ((hb & 3) << 4)) - 32);
            q[128 * h + 32 + l] = (int8_t)(((c & 0x0f) | (((hb >> 2) & 3) << 4)) - 32);
            q[128 * h + 64 + l] = (int8_t)(((a >> 4) | (((hb >> 4) & 3) << 4)) - 32);
            q[128 * h + 96 + l] = (int8_t)(((c >> 4) | (((hb >> 6) & 3) << 4)) - 32);
        }
    }
}

#endif
