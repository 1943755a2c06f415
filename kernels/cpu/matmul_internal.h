/* Private declarations shared by the matmul and vector-op files of kernels/cpu: the per-variant
 * entry points that matmul.c dispatches to, and small helpers of the reference math.
 * Not for: callers outside kernels/cpu (use matmul.h). */
#ifndef RK_MATMUL_INTERNAL_H
#define RK_MATMUL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/matmul.h"

/* Columns from which rk_matmul takes the GEMM path instead of one matrix-vector pass per
 * column (both give the same bits; this is only about speed). */
#define RK_GEMM_MIN_COLS 4

/* Rows per GEMM task of rk_matmul_pool (a multiple of every variant's row tile). */
#define RK_GEMM_ROW_CHUNK 16

/* A variant's matmul over rows [r0, r1) and every column; arguments already validated. */
typedef void (*rk_mm_fn)(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                         size_t act_stride, int64_t n_cols, float *y, size_t y_stride);

/* R16 layout (matmul_repack.c): row r's (0..15) block of a tile, back in the block's own bytes. */
void rk_r16_block(rk_type type, const uint8_t *tile, int r, uint8_t *blk);

/* The tile of rows [16g, 16g + 16) and block b of an R16 matrix. */
static inline const uint8_t *rk_r16_tile(const rk_matrix *w, int64_t g, int64_t b)
{
    const rk_type_traits *t = rk_type_traits_get(w->type);
    const int64_t nb = w->k / t->block_elems;
    return (const uint8_t *)w->data + (size_t)(g * nb + b) * 16 * t->block_bytes;
}

/* Scalar reference (matmul_ref.c): one rk_dot_row_ref per (row, column). */
void rk_mm_ref(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act, size_t act_stride,
               int64_t n_cols, float *y, size_t y_stride);

/* Row r of w against one activation column, the reference definition of "rk math". */
float rk_dot_row_ref(const rk_matrix *w, int64_t r, const uint8_t *act);

/* SIMD variants: matrix-vector (each column on its own) and GEMM. */
void rk_mm_matvec_avx2(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride);
void rk_mm_gemm_avx2(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                     size_t act_stride, int64_t n_cols, float *y, size_t y_stride);
void rk_mm_matvec_avx512(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                         size_t act_stride, int64_t n_cols, float *y, size_t y_stride);
void rk_mm_gemm_avx512(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride);
void rk_mm_matvec_avx512vnni(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                             size_t act_stride, int64_t n_cols, float *y, size_t y_stride);
void rk_mm_gemm_avx512vnni(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                           size_t act_stride, int64_t n_cols, float *y, size_t y_stride);

/* A Q8_0 activation row: nb = k / 32 blocks of 34 bytes, then nb int32 (little-endian) holding
 * the sum of each block's 32 quants. Writes the sums of blocks [b0, b1) after the blocks. */
static inline void rk_act_q8_0_block_sums(uint8_t *row, int64_t nb, int64_t b0, int64_t b1)
{
    for (int64_t b = b0; b < b1; b++) {
        const int8_t *qs = (const int8_t *)(row + b * 34 + 2);
        int32_t s = 0;
        for (int i = 0; i < 32; i++)
            s += qs[i];
        const uint32_t u = (uint32_t)s;
        uint8_t *p = row + nb * 34 + b * 4;
        p[0] = (uint8_t)u;
        p[1] = (uint8_t)(u >> 8);
        p[2] = (uint8_t)(u >> 16);
        p[3] = (uint8_t)(u >> 24);
    }
}

/* The Q8_0 block sums of an activation row of nb blocks. */
static inline const uint8_t *rk_act_q8_0_sums_at(const uint8_t *row, int64_t nb)
{
    return row + nb * 34;
}

/* The 16-lane sum of docs/kernels.md: lanes added pairwise (l + 8, + 4, + 2, + 1). */
static inline float rk_sum16_lanes(float s[16])
{
    for (int l = 0; l < 8; l++)
        s[l] = s[l] + s[l + 8];
    for (int l = 0; l < 4; l++)
        s[l] = s[l] + s[l + 4];
    for (int l = 0; l < 2; l++)
        s[l] = s[l] + s[l + 2];
    return s[0] + s[1];
}

#endif
