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

static inline void panel_put_quants(rk_panel *p, int r, int e0, const int8_t *q, int n, int bias)
{
    for (int e = 0; e < n; e += 4) {
        uint8_t cell[4];
        for (int i = 0; i < 4; i++)
            cell[i] = (uint8_t)(q[e + i] + bias);
        memcpy(&p->q[((e0 + e) / 4) * 4 * PANEL_R + 4 * r], cell, 4);
    }
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
    for (int r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)(row0 + r) * w->row_stride;
        if (info.kind == PANEL_BLK32 || info.kind == PANEL_BLK32_MIN) {
            for (int b = 0; b < kn / 32; b++) {
                const uint8_t *blk = row + (size_t)((k0 / 32) + b) * bb;
                int8_t q[32] = {0};
                float d = 0.0f, m = 0.0f;
                switch (w->type) {
                case RK_TYPE_Q4_0: rk_qform_q4_0(blk, q, &d); break;
                case RK_TYPE_Q5_0: rk_qform_q5_0(blk, q, &d); break;
                case RK_TYPE_Q8_0: rk_qform_q8_0(blk, q, &d); break;
                case RK_TYPE_APR_Q4: rk_qform_apr_q4(blk, q, &d); break;
                case RK_TYPE_APR_Q8:
                    memcpy(q, blk, 32);
                    d = w->scale;
                    break;
                case RK_TYPE_Q4_1: rk_qform_q4_1(blk, q, &d, &m); break;
                case RK_TYPE_Q5_1: rk_qform_q5_1(blk, q, &d, &m); break;
                case RK_TYPE_F32:
                case RK_TYPE_F16:
                case RK_TYPE_BF16:
                case RK_TYPE_Q8_1:
                case RK_TYPE_Q2_K:
                case RK_TYPE_Q3_K:
                case RK_TYPE_Q4_K:
                case RK_TYPE_Q5_K:
                case RK_TYPE_Q6_K:
                case RK_TYPE_Q8_K: break;
                }
                panel_put_quants(p, r, 32 * b, q, 32, info.bias);
                p->d[b][r] = d;
                p->m[b][r] = m;
            }
        } else {
            for (int s = 0; s < kn / 256; s++) {
                const uint8_t *blk = row + (size_t)((k0 / 256) + s) * bb;
                int8_t q[256] = {0};
                int32_t sc[16], mn[16] = {0};
                float d = 0.0f, dmin = 0.0f;
                switch (w->type) {
                case RK_TYPE_Q2_K: rk_qform_q2_K(blk, q, sc, mn, &d, &dmin); break;
                case RK_TYPE_Q3_K: rk_qform_q3_K(blk, q, sc, &d); break;
                case RK_TYPE_Q4_K: rk_qform_q4_K(blk, q, sc, mn, &d, &dmin); break;
                case RK_TYPE_Q5_K: rk_qform_q5_K(blk, q, sc, mn, &d, &dmin); break;
                case RK_TYPE_Q6_K: rk_qform_q6_K(blk, q, sc, &d); break;
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
                case RK_TYPE_APR_Q8: break;
                }
                panel_put_quants(p, r, 256 * s, q, 256, info.bias);
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
