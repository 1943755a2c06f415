/* Byte layouts of the GGML quantized blocks, as plain C structs shared by host and device code.
 * Sizes are pinned by _Static_assert against ggml's block sizes (docs/formats/gguf.md).
 * f16 fields are stored as raw IEEE binary16 bits (uint16_t), little-endian on disk. */
#ifndef RK_BLOCKS_H
#define RK_BLOCKS_H

#include <stdint.h>

#define RK_QK4_0        32
#define RK_QK4_1        32
#define RK_QK5_0        32
#define RK_QK5_1        32
#define RK_QK8_0        32
#define RK_QK8_1        32
#define RK_QK_K         256
#define RK_K_SCALE_SIZE 12
#define RK_QK4_NL       32

/* Q4_0: 32 weights, x = (q - 8) * d.  qs[j] low nibble = weight j, high nibble = weight j+16. */
typedef struct rk_block_q4_0 {
    uint16_t d;
    uint8_t qs[RK_QK4_0 / 2];
} rk_block_q4_0;

/* Q4_1: x = q * d + m, nibbles as Q4_0. */
typedef struct rk_block_q4_1 {
    uint16_t d, m;
    uint8_t qs[RK_QK4_1 / 2];
} rk_block_q4_1;

/* Q5_0: x = (q - 16) * d; low 4 bits as Q4_0, bit 4 of weight j in bit j of qh (LE u32). */
typedef struct rk_block_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[RK_QK5_0 / 2];
} rk_block_q5_0;

/* Q5_1: x = q * d + m, bits as Q5_0. */
typedef struct rk_block_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[RK_QK5_1 / 2];
} rk_block_q5_1;

/* Q8_0: x = q * d. */
typedef struct rk_block_q8_0 {
    uint16_t d;
    int8_t qs[RK_QK8_0];
} rk_block_q8_0;

/* Q8_1: as Q8_0 plus s = d * sum(q) (activation type). */
typedef struct rk_block_q8_1 {
    uint16_t d, s;
    int8_t qs[RK_QK8_1];
} rk_block_q8_1;

/* Q2_K: 16 sub-blocks of 16; scales[i] = scale (low 4 bits) | min (high 4 bits). */
typedef struct rk_block_q2_K {
    uint8_t scales[RK_QK_K / 16];
    uint8_t qs[RK_QK_K / 4];
    uint16_t d, dmin;
} rk_block_q2_K;

/* Q3_K: 16 sub-blocks of 16, 6-bit signed scales packed in 12 bytes, high bit in hmask. */
typedef struct rk_block_q3_K {
    uint8_t hmask[RK_QK_K / 8];
    uint8_t qs[RK_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} rk_block_q3_K;

/* Q4_K: 8 sub-blocks of 32 weights, x = d * sc[j] * q - dmin * m[j].
 *
 *   bytes 0..3     d (f16), dmin (f16)
 *   bytes 4..15    scales[12]: 8 six-bit scales and 8 six-bit mins
 *                    j < 4:  sc = scales[j] & 63        m = scales[j+4] & 63
 *                    j >= 4: sc = (scales[j+4] & 15) | ((scales[j-4] >> 6) << 4)
 *                            m  = (scales[j+4] >> 4) | ((scales[j]   >> 6) << 4)
 *   bytes 16..143  qs[128]: for each 64-weight chunk c (32 bytes), the low nibbles are
 *                  sub-block 2c and the high nibbles sub-block 2c+1 (not interleaved pairs) */
typedef struct rk_block_q4_K {
    uint16_t d, dmin;
    uint8_t scales[RK_K_SCALE_SIZE];
    uint8_t qs[RK_QK_K / 2];
} rk_block_q4_K;

/* Q5_K: as Q4_K plus the fifth bit of every weight in qh[32]. */
typedef struct rk_block_q5_K {
    uint16_t d, dmin;
    uint8_t scales[RK_K_SCALE_SIZE];
    uint8_t qh[RK_QK_K / 8];
    uint8_t qs[RK_QK_K / 2];
} rk_block_q5_K;

/* Q6_K: 16 sub-blocks of 16, x = d * scales[j] * (q - 32), q = 4 low bits (ql) + 2 high (qh). */
typedef struct rk_block_q6_K {
    uint8_t ql[RK_QK_K / 2];
    uint8_t qh[RK_QK_K / 4];
    int8_t scales[RK_QK_K / 16];
    uint16_t d;
} rk_block_q6_K;

/* Q8_K: activation type of the K-quant dot products; f32 scale and per-16 sums. */
typedef struct rk_block_q8_K {
    float d;
    int8_t qs[RK_QK_K];
    int16_t bsums[RK_QK_K / 16];
} rk_block_q8_K;

/* IQ4_NL: Q4_0 layout, nibbles index a fixed non-linear table. */
typedef struct rk_block_iq4_nl {
    uint16_t d;
    uint8_t qs[RK_QK4_NL / 2];
} rk_block_iq4_nl;

/* IQ4_XS: 8 sub-blocks of 32 with 6-bit scales (low 4 in scales_l, high 2 in scales_h). */
typedef struct rk_block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[RK_QK_K / 64];
    uint8_t qs[RK_QK_K / 2];
} rk_block_iq4_xs;

_Static_assert(sizeof(rk_block_q4_0) == 18, "Q4_0 block is 18 bytes");
_Static_assert(sizeof(rk_block_q4_1) == 20, "Q4_1 block is 20 bytes");
_Static_assert(sizeof(rk_block_q5_0) == 22, "Q5_0 block is 22 bytes");
_Static_assert(sizeof(rk_block_q5_1) == 24, "Q5_1 block is 24 bytes");
_Static_assert(sizeof(rk_block_q8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(rk_block_q8_1) == 36, "Q8_1 block is 36 bytes");
_Static_assert(sizeof(rk_block_q2_K) == 84, "Q2_K block is 84 bytes");
_Static_assert(sizeof(rk_block_q3_K) == 110, "Q3_K block is 110 bytes");
_Static_assert(sizeof(rk_block_q4_K) == 144, "Q4_K block is 144 bytes");
_Static_assert(sizeof(rk_block_q5_K) == 176, "Q5_K block is 176 bytes");
_Static_assert(sizeof(rk_block_q6_K) == 210, "Q6_K block is 210 bytes");
_Static_assert(sizeof(rk_block_q8_K) == 292, "Q8_K block is 292 bytes");
_Static_assert(sizeof(rk_block_iq4_nl) == 18, "IQ4_NL block is 18 bytes");
_Static_assert(sizeof(rk_block_iq4_xs) == 136, "IQ4_XS block is 136 bytes");

#endif
