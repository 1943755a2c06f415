/* The GEMM's weight panel: a tile of R rows (R = SIMD lanes: 8 for AVX2, 16 for AVX-512) and a
 * chunk of up to RK_PANEL_K elements, decoded once from the row-major blocks into a layout where
 * one vector load gives 4 consecutive quants of each of the R rows:
 *
 *   q[(e / 4) * 4R + 4r + e % 4] = quant e of row r, biased to be unsigned (q + bias)
 *
 *     byte  0    4    8        4R        4R+4
 *           +----+----+-- .. --+----+----+-- ..
 *           |r0  |r1  |        |r0  |r1  |          each cell: 4 quants of one row
 *           |e0-3|e0-3|        |e4-7|e4-7|
 *
 * so vpdpbusd(acc, q group, broadcast of 4 activation quants) adds 4 products to each row's lane.
 * Scales are stored per row in lane order. Included by the SIMD matmul files, which define
 * PANEL_R before including it; decoding itself is plain C (rk_qform_*, common/quant_dot.h) and
 * is shared by every variant. Rows past the end of the matrix are zero-filled (their lanes are
 * computed and discarded). Not for: callers outside kernels/cpu. */
#ifndef RK_MATMUL_PANEL_H
#define RK_MATMUL_PANEL_H

#include <stdint.h>
#include <string.h>

#include "common/quant_dot.h"
#include "cpu/matmul.h"
#include "cpu/matmul_internal.h"

#ifndef PANEL_R
#error "define PANEL_R (lanes per row tile) before including matmul_panel.h"
#endif

#define RK_PANEL_K   512 /* elements per chunk: a multiple of 256 */
#define RK_PANEL_B32 (RK_PANEL_K / 32)
#define RK_PANEL_SB  (RK_PANEL_K / 256)

/* How a weight type enters the integer dot product (see matmul.h "rk math"). */
typedef enum panel_kind {
    PANEL_BLK32,     /* acc += isum * (d * dx), isum = sum (q_u - bias) * x over 32 */
    PANEL_BLK32_MIN, /* acc += (d * dx) * isum + m * s_x                          */
    PANEL_KQ_MIN,    /* acc += (d * dx) * isum - (dmin * dx) * msum  (Q2_K Q4_K Q5_K) */
    PANEL_KQ_BIAS,   /* acc += (d * dx) * (isum - sum(bias * sc * bsum))  (Q3_K Q6_K) */
} panel_kind;

typedef struct panel_info {
    panel_kind kind;
    int bias;     /* added to every quant to make it unsigned */
    int sub;      /* K-quants: elements per sub-block (16 or 32) */
    int signed_w; /* quants stored signed (bias 0), for dot products without VNNI */
} panel_info;

typedef struct rk_panel {
    _Alignas(64) uint8_t q[PANEL_R * RK_PANEL_K];
    _Alignas(64) float d[RK_PANEL_B32][PANEL_R]; /* blk32: d; K-quants: d in [sb] */
    _Alignas(64) float m[RK_PANEL_B32][PANEL_R]; /* blk32_min: m; K-quants: dmin in [sb] */
    _Alignas(64) int32_t sc[RK_PANEL_SB][16][PANEL_R];
    /* (mn[2i], mn[2i + 1]) as two int16 per lane, paired with bsums[2i], bsums[2i + 1] */
    _Alignas(64) int32_t mn[RK_PANEL_SB][8][PANEL_R];
} rk_panel;

/* vnni: whether the dot product takes any u8 (else quants above 127 would saturate vpmaddubsw,
 * so 8-bit types stay signed and use the sign trick). */
static inline panel_info panel_info_of(rk_type type, int vnni)
{
    panel_info p = {PANEL_BLK32, 0, 32, 0};
    switch (type) {
    case RK_TYPE_Q4_0:
    case RK_TYPE_APR_Q4: p.bias = 8; break;
    case RK_TYPE_Q5_0: p.bias = 16; break;
    case RK_TYPE_Q8_0:
    case RK_TYPE_APR_Q8:
        p.bias = vnni ? 128 : 0;
        p.signed_w = !vnni;
        break;
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_1: p.kind = PANEL_BLK32_MIN; break;
    case RK_TYPE_Q2_K: p = (panel_info){PANEL_KQ_MIN, 0, 16, 0}; break;
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K: p = (panel_info){PANEL_KQ_MIN, 0, 32, 0}; break;
    case RK_TYPE_Q3_K: p = (panel_info){PANEL_KQ_BIAS, 4, 16, 0}; break;
    case RK_TYPE_Q6_K: p = (panel_info){PANEL_KQ_BIAS, 32, 16, 0}; break;
    case RK_TYPE_F32:
    case RK_TYPE_F16:
    case RK_TYPE_BF16:
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q8_K: break;
    }
    return p;
}

/* ---- quants as stored, which is the biased unsigned form of panel_info ----------------------
 * Byte-parallel C on 64-bit words: every mask and shift below keeps each byte's bits inside the
 * byte, so eight quants are decoded per operation. u receives 32 or 256 quants in element order. */

static inline uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void st64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

#define LSB8 0x0101010101010101ull
#define NIB8 0x0f0f0f0f0f0f0f0full

/* 8 bits -> 8 bytes holding 0 or 1 (bit i -> byte i) */
static inline uint64_t spread_bits(uint32_t b)
{
    uint64_t x = b & 0xffu;
    x = (x | (x << 28)) & 0x0000000f0000000full;
    x = (x | (x << 14)) & 0x0003000300030003ull;
    x = (x | (x << 7)) & LSB8;
    return x;
}

/* Q4_0 / Q4_1 (qs at qo), with the fifth bits of Q5_0 / Q5_1 (qh at ho) when ho >= 0 */
static inline void raw_blk32_nibbles(const uint8_t *b, size_t qo, int ho, uint8_t *u)
{
    uint32_t qh = 0;
    if (ho >= 0)
        memcpy(&qh, b + ho, 4);
    for (int i = 0; i < 2; i++) {
        const uint64_t q = ld64(b + qo + 8 * i);
        st64(u + 8 * i, (q & NIB8) | (spread_bits(qh >> (8 * i)) << 4));
        st64(u + 16 + 8 * i, ((q >> 4) & NIB8) | (spread_bits(qh >> (16 + 8 * i)) << 4));
    }
}

static inline void raw_q8(const uint8_t *qs, int flip, uint8_t *u)
{
    for (int i = 0; i < 4; i++)
        st64(u + 8 * i, ld64(qs + 8 * i) ^ (flip ? 0x8080808080808080ull : 0));
}

static inline void raw_apr_q4(const uint8_t *b, uint8_t *u)
{
    for (int i = 0; i < 16; i++) {
        u[2 * i] = b[2 + i] & 0x0f;
        u[2 * i + 1] = b[2 + i] >> 4;
    }
}

/* Q4_K (qs at 16) and Q5_K (qh at 16, qs at 48) */
static inline void raw_k45(const uint8_t *b, int five, uint8_t *u)
{
    const uint8_t *qs = b + (five ? 48 : 16), *qh = b + 16;
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l += 8) {
            const uint64_t q = ld64(qs + 32 * c + l);
            uint64_t lo = q & NIB8, hi = (q >> 4) & NIB8;
            if (five) {
                const uint64_t h = ld64(qh + l);
                lo |= ((h >> (2 * c)) & LSB8) << 4;
                hi |= ((h >> (2 * c + 1)) & LSB8) << 4;
            }
            st64(u + 64 * c + l, lo);
            st64(u + 64 * c + 32 + l, hi);
        }
    }
}

/* Q6_K: ql[128] at 0, qh[64] at 128; element 128h + 32t + l (quant_dot.h) */
static inline void raw_q6_K(const uint8_t *b, uint8_t *u)
{
    const uint64_t m3 = 0x0303030303030303ull;
    for (int h = 0; h < 2; h++) {
        for (int l = 0; l < 32; l += 8) {
            const uint64_t a = ld64(b + 64 * h + l), c = ld64(b + 64 * h + 32 + l);
            const uint64_t hb = ld64(b + 128 + 32 * h + l);
            st64(u + 128 * h + l, (a & NIB8) | ((hb & m3) << 4));
            st64(u + 128 * h + 32 + l, (c & NIB8) | (((hb >> 2) & m3) << 4));
            st64(u + 128 * h + 64 + l, ((a >> 4) & NIB8) | (((hb >> 4) & m3) << 4));
            st64(u + 128 * h + 96 + l, ((c >> 4) & NIB8) | (((hb >> 6) & m3) << 4));
        }
    }
}

/* Q2_K (qs at 16) and Q3_K + 4 (hmask at 0, qs at 32): element 128h + 32j + l */
static inline void raw_q23_K(const uint8_t *b, int three, uint8_t *u)
{
    const uint8_t *qs = b + (three ? 32 : 16);
    const uint64_t m3 = 0x0303030303030303ull;
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l += 8) {
                uint64_t v = (ld64(qs + 32 * h + l) >> (2 * j)) & m3;
                if (three)
                    v |= ((ld64(b + l) >> (4 * h + j)) & LSB8) << 2;
                st64(u + 128 * h + 32 * j + l, v);
            }
}

static inline void panel_put_raw(rk_panel *p, int r, int e0, const uint8_t *u, int n)
{
    for (int e = 0; e < n; e += 4)
        memcpy(&p->q[((e0 + e) / 4) * 4 * PANEL_R + 4 * r], u + e, 4);
}

static inline int32_t pack_i16_pair(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)(uint16_t)(int16_t)hi << 16) | (uint16_t)(int16_t)lo);
}

/* Decodes rows [row0, row0 + nr) (nr <= PANEL_R), elements [k0, k0 + kn) of w into p. */
static inline void panel_decode(rk_panel *p, const rk_matrix *w, int64_t row0, int nr, int64_t k0,
                                int kn, panel_info info)
{
    const size_t bb = rk_type_traits_get(w->type)->block_bytes;
    if (nr < PANEL_R) {
        memset(p->q, 0, sizeof p->q);
        memset(p->d, 0, sizeof p->d);
        memset(p->m, 0, sizeof p->m);
        memset(p->sc, 0, sizeof p->sc);
        memset(p->mn, 0, sizeof p->mn);
    }
    uint8_t u[256], unpacked[256];
    for (int r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)(row0 + r) * w->row_stride;
        const int r16 = w->layout == RK_LAYOUT_R16;
        if (info.kind == PANEL_BLK32 || info.kind == PANEL_BLK32_MIN) {
            for (int b = 0; b < kn / 32; b++) {
                const int64_t bi = k0 / 32 + b;
                const uint8_t *blk = row + (size_t)bi * bb;
                if (r16) {
                    rk_r16_block(w->type, rk_r16_tile(w, (row0 + r) / 16, bi),
                                 (int)((row0 + r) % 16), unpacked);
                    blk = unpacked;
                }
                float d = w->type == RK_TYPE_APR_Q8 ? w->scale : rk_load_f16(blk), m = 0.0f;
                switch (w->type) {
                case RK_TYPE_Q4_0: raw_blk32_nibbles(blk, 2, -1, u); break;
                case RK_TYPE_Q5_0: raw_blk32_nibbles(blk, 6, 2, u); break;
                case RK_TYPE_Q4_1: raw_blk32_nibbles(blk, 4, -1, u); break;
                case RK_TYPE_Q5_1: raw_blk32_nibbles(blk, 8, 4, u); break;
                case RK_TYPE_Q8_0: raw_q8(blk + 2, info.bias == 128, u); break;
                case RK_TYPE_APR_Q8: raw_q8(blk, info.bias == 128, u); break;
                case RK_TYPE_APR_Q4: raw_apr_q4(blk, u); break;
                case RK_TYPE_F32:
                case RK_TYPE_F16:
                case RK_TYPE_BF16:
                case RK_TYPE_Q8_1:
                case RK_TYPE_Q2_K:
                case RK_TYPE_Q3_K:
                case RK_TYPE_Q4_K:
                case RK_TYPE_Q5_K:
                case RK_TYPE_Q6_K:
                case RK_TYPE_Q8_K: memset(u, 0, 32); break;
                }
                if (info.kind == PANEL_BLK32_MIN)
                    m = rk_load_f16(blk + 2);
                panel_put_raw(p, r, 32 * b, u, 32);
                p->d[b][r] = d;
                p->m[b][r] = m;
            }
        } else {
            for (int s = 0; s < kn / 256; s++) {
                const int64_t si = k0 / 256 + s;
                const uint8_t *blk = row + (size_t)si * bb;
                if (r16) {
                    rk_r16_block(w->type, rk_r16_tile(w, (row0 + r) / 16, si),
                                 (int)((row0 + r) % 16), unpacked);
                    blk = unpacked;
                }
                int32_t sc[16] = {0}, mn[16] = {0};
                float d = 0.0f, dmin = 0.0f;
                switch (w->type) {
                case RK_TYPE_Q2_K:
                    raw_q23_K(blk, 0, u);
                    for (int j = 0; j < 16; j++) {
                        sc[j] = blk[j] & 0x0f;
                        mn[j] = blk[j] >> 4;
                    }
                    d = rk_load_f16(blk + offsetof(rk_block_q2_K, d));
                    dmin = rk_load_f16(blk + offsetof(rk_block_q2_K, dmin));
                    break;
                case RK_TYPE_Q3_K:
                    raw_q23_K(blk, 1, u);
                    for (int j = 0; j < 16; j++)
                        sc[j] = rk_q3_K_scale(blk + offsetof(rk_block_q3_K, scales), j);
                    d = rk_load_f16(blk + offsetof(rk_block_q3_K, d));
                    break;
                case RK_TYPE_Q4_K:
                case RK_TYPE_Q5_K:
                    raw_k45(blk, w->type == RK_TYPE_Q5_K, u);
                    for (int j = 0; j < 8; j++) {
                        int a, c;
                        rk_k4_scale_min(blk + 4, j, &a, &c);
                        sc[j] = a;
                        mn[j] = c;
                    }
                    d = rk_load_f16(blk);
                    dmin = rk_load_f16(blk + 2);
                    break;
                case RK_TYPE_Q6_K:
                    raw_q6_K(blk, u);
                    for (int j = 0; j < 16; j++)
                        sc[j] = (int8_t)blk[offsetof(rk_block_q6_K, scales) + j];
                    d = rk_load_f16(blk + offsetof(rk_block_q6_K, d));
                    break;
                case RK_TYPE_F32:
                case RK_TYPE_F16:
                case RK_TYPE_BF16:
                case RK_TYPE_Q4_0:
                case RK_TYPE_Q4_1:
                case RK_TYPE_Q5_0:
                case RK_TYPE_Q5_1:
                case RK_TYPE_Q8_0:
                case RK_TYPE_Q8_1:
                case RK_TYPE_Q8_K:
                case RK_TYPE_APR_Q4:
                case RK_TYPE_APR_Q8: memset(u, 0, 256); break;
                }
                panel_put_raw(p, r, 256 * s, u, 256);
                p->d[s][r] = d;
                p->m[s][r] = dmin;
                const int nsub = 256 / info.sub;
                for (int j = 0; j < nsub; j++)
                    p->sc[s][j][r] = sc[j];
                if (info.kind == PANEL_KQ_BIAS)
                    for (int j = 0; j < 16; j++)
                        mn[j] = info.bias * sc[j];
                for (int i = 0; i < 8; i++)
                    p->mn[s][i][r] = nsub == 16 ? pack_i16_pair(mn[2 * i], mn[2 * i + 1])
                                                : pack_i16_pair(mn[i], mn[i]);
            }
        }
    }
}

#endif
