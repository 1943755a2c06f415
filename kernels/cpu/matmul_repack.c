/* rk_repack: the R16 layout of matmul.h, and its inverse for one block (which the scalar
 * reference uses, so that both layouts go through the same reference arithmetic).
 *
 * A tile is 16 rows x one block (32 elements, or one 256-element super-block), tiles stored
 * group by group: tile (g, b) at ((g * blocks_per_row) + b) * 16 * block_bytes. Within a tile a
 * "plane" is 64 bytes holding 4 bytes of each of the 16 rows (row r at 4r), so one 512-bit load
 * gives one dword per row (docs/kernels.md draws them):
 *
 *   Q8_0  (544):  d[16] f16 | 8 planes: quants 4p..4p+3 of each row, XOR 0x80 (unsigned)
 *   Q4_0  (288):  d[16] f16 | 4 planes: qs bytes 4p..4p+3 (low nibbles: elements 4p..4p+3,
 *                             high nibbles: 16+4p..16+4p+3, as in the block)
 *   Q5_0  (352):  d[16] f16 | 1 plane qh, bit-planar: bit 8i + g = fifth bit of element 4g + i
 *                           | 4 planes qs as Q4_0
 *   Q4_K (2304):  d[16] | dmin[16] | 3 planes: scales bytes 4w..4w+3 | 32 planes: qs bytes
 *                 32c + 4p .. +3 at plane 8c + p (low nibbles: sub-block 2c, high: 2c + 1)
 *   Q5_K (2816):  as Q4_K, then 8 planes: qh bytes 4p..4p+3
 *   Q6_K (3360):  d[16] | 4 planes: scales 4w..4w+3 | for h = 0, 1 and p = 0..7, in the order
 *                 the kernels read them, three planes: ql bytes 64h + 4p, ql bytes 64h + 32 + 4p,
 *                 qh bytes 32h + 4p (plane 3 (8h + p) + 0, 1, 2) */
#include <stdint.h>
#include <string.h>

#include "common/quant_math.h"
#include "cpu/matmul_internal.h"

size_t rk_repack_bytes(rk_type type, int64_t n_rows, int64_t k)
{
    if (!rk_repack_supported(type) || n_rows < 1)
        return 0;
    const size_t row = rk_row_bytes(type, k);
    if (row == 0)
        return 0;
    return (size_t)((n_rows + 15) / 16) * 16 * row;
}

/* byte offset of plane p in a tile of `type` (after its scale fields) */
static uint8_t *plane(uint8_t *tile, size_t first, int p) { return tile + first + 64 * (size_t)p; }

static void put4(uint8_t *tile, size_t first, int p, int r, const uint8_t *src)
{
    memcpy(plane(tile, first, p) + 4 * r, src, 4);
}

static void get4(const uint8_t *tile, size_t first, int p, int r, uint8_t *dst)
{
    memcpy(dst, tile + first + 64 * (size_t)p + 4 * (size_t)r, 4);
}

/* Q5_0 qh (bit j = fifth bit of element j) <-> the bit-planar word */
static uint32_t qh_to_planar(uint32_t qh)
{
    uint32_t out = 0;
    for (int g = 0; g < 8; g++)
        for (int i = 0; i < 4; i++)
            out |= ((qh >> (4 * g + i)) & 1u) << (8 * i + g);
    return out;
}

static uint32_t planar_to_qh(uint32_t pl)
{
    uint32_t out = 0;
    for (int g = 0; g < 8; g++)
        for (int i = 0; i < 4; i++)
            out |= ((pl >> (8 * i + g)) & 1u) << (4 * g + i);
    return out;
}

/* Writes row r's block blk (or a zero block when blk is NULL) into tile. */
static void tile_put(rk_type t, uint8_t *tile, int r, const uint8_t *blk)
{
    static const uint8_t zero[256];
    uint8_t tmp[4];
    switch (t) {
    case RK_TYPE_Q8_0:
        memcpy(tile + 2 * r, blk ? blk : zero, 2);
        for (int p = 0; p < 8; p++) {
            for (int i = 0; i < 4; i++)
                tmp[i] = (uint8_t)((blk ? blk[2 + 4 * p + i] : 0) ^ 0x80);
            put4(tile, 32, p, r, tmp);
        }
        return;
    case RK_TYPE_Q4_0:
        memcpy(tile + 2 * r, blk ? blk : zero, 2);
        for (int p = 0; p < 4; p++)
            put4(tile, 32, p, r, blk ? blk + 2 + 4 * p : zero);
        return;
    case RK_TYPE_Q5_0: {
        memcpy(tile + 2 * r, blk ? blk : zero, 2);
        const uint32_t pl = blk ? qh_to_planar(rk_load_u32le(blk + 2)) : 0;
        rk_store_u32le(tmp, pl);
        put4(tile, 32, 0, r, tmp);
        for (int p = 0; p < 4; p++)
            put4(tile, 96, p, r, blk ? blk + 6 + 4 * p : zero);
        return;
    }
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K: {
        const int five = t == RK_TYPE_Q5_K;
        memcpy(tile + 2 * r, blk ? blk : zero, 2);
        memcpy(tile + 32 + 2 * r, blk ? blk + 2 : zero, 2);
        for (int w = 0; w < 3; w++)
            put4(tile, 64, w, r, blk ? blk + 4 + 4 * w : zero);
        const uint8_t *qs = blk ? blk + (five ? 48 : 16) : zero;
        for (int p = 0; p < 32; p++)
            put4(tile, 256, p, r, qs + 4 * p);
        if (five)
            for (int p = 0; p < 8; p++)
                put4(tile, 2304, p, r, blk ? blk + 16 + 4 * p : zero);
        return;
    }
    case RK_TYPE_Q6_K:
        memcpy(tile + 2 * r, blk ? blk + 208 : zero, 2);
        for (int w = 0; w < 4; w++)
            put4(tile, 32, w, r, blk ? blk + 192 + 4 * w : zero);
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 8; p++) {
                const int base = 3 * (8 * h + p);
                put4(tile, 288, base, r, blk ? blk + 64 * h + 4 * p : zero);
                put4(tile, 288, base + 1, r, blk ? blk + 64 * h + 32 + 4 * p : zero);
                put4(tile, 288, base + 2, r, blk ? blk + 128 + 32 * h + 4 * p : zero);
            }
        return;
    case RK_TYPE_F32:
    case RK_TYPE_F16:
    case RK_TYPE_BF16:
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_1:
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q2_K:
    case RK_TYPE_Q3_K:
    case RK_TYPE_Q8_K:
    case RK_TYPE_APR_Q4:
    case RK_TYPE_APR_Q8: return;
    }
}

void rk_r16_block(rk_type t, const uint8_t *tile, int r, uint8_t *blk)
{
    uint8_t tmp[4];
    switch (t) {
    case RK_TYPE_Q8_0:
        memcpy(blk, tile + 2 * r, 2);
        for (int p = 0; p < 8; p++) {
            get4(tile, 32, p, r, tmp);
            for (int i = 0; i < 4; i++)
                blk[2 + 4 * p + i] = (uint8_t)(tmp[i] ^ 0x80);
        }
        return;
    case RK_TYPE_Q4_0:
        memcpy(blk, tile + 2 * r, 2);
        for (int p = 0; p < 4; p++)
            get4(tile, 32, p, r, blk + 2 + 4 * p);
        return;
    case RK_TYPE_Q5_0:
        memcpy(blk, tile + 2 * r, 2);
        get4(tile, 32, 0, r, tmp);
        rk_store_u32le(blk + 2, planar_to_qh(rk_load_u32le(tmp)));
        for (int p = 0; p < 4; p++)
            get4(tile, 96, p, r, blk + 6 + 4 * p);
        return;
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K: {
        const int five = t == RK_TYPE_Q5_K;
        memcpy(blk, tile + 2 * r, 2);
        memcpy(blk + 2, tile + 32 + 2 * r, 2);
        for (int w = 0; w < 3; w++)
            get4(tile, 64, w, r, blk + 4 + 4 * w);
        for (int p = 0; p < 32; p++)
            get4(tile, 256, p, r, blk + (five ? 48 : 16) + 4 * p);
        if (five)
            for (int p = 0; p < 8; p++)
                get4(tile, 2304, p, r, blk + 16 + 4 * p);
        return;
    }
    case RK_TYPE_Q6_K:
        memcpy(blk + 208, tile + 2 * r, 2);
        for (int w = 0; w < 4; w++)
            get4(tile, 32, w, r, blk + 192 + 4 * w);
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 8; p++) {
                const int base = 3 * (8 * h + p);
                get4(tile, 288, base, r, blk + 64 * h + 4 * p);
                get4(tile, 288, base + 1, r, blk + 64 * h + 32 + 4 * p);
                get4(tile, 288, base + 2, r, blk + 128 + 32 * h + 4 * p);
            }
        return;
    case RK_TYPE_F32:
    case RK_TYPE_F16:
    case RK_TYPE_BF16:
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_1:
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q2_K:
    case RK_TYPE_Q3_K:
    case RK_TYPE_Q8_K:
    case RK_TYPE_APR_Q4:
    case RK_TYPE_APR_Q8: return;
    }
}

int rk_repack(const rk_matrix *src, void *dst, size_t dst_bytes, rk_matrix *out)
{
    if (!src || !dst || !out || src->layout != RK_LAYOUT_ROWS || rk_matrix_check(src) != 0)
        return -1;
    const size_t need = rk_repack_bytes(src->type, src->n_rows, src->k);
    if (need == 0 || dst_bytes < need)
        return -1;
    const rk_type_traits *tr = rk_type_traits_get(src->type);
    const int64_t nb = src->k / tr->block_elems, groups = (src->n_rows + 15) / 16;
    const size_t tb = 16 * tr->block_bytes;
    uint8_t *o = dst;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *tile = o + (size_t)(g * nb + b) * tb;
            memset(tile, 0, tb);
            for (int r = 0; r < 16; r++) {
                const int64_t row = 16 * g + r;
                const uint8_t *blk = row < src->n_rows ? (const uint8_t *)src->data +
                                                             (size_t)row * src->row_stride +
                                                             (size_t)b * tr->block_bytes
                                                       : NULL;
                tile_put(src->type, tile, r, blk);
            }
        }
    *out = *src;
    out->data = dst;
    out->row_stride = 0;
    out->layout = RK_LAYOUT_R16;
    return 0;
}

int rk_r16_row(const rk_matrix *w, int64_t r, void *dst)
{
    if (!w || !dst || w->layout != RK_LAYOUT_R16 || !rk_repack_supported(w->type) || r < 0 ||
        r >= w->n_rows)
        return -1;
    const rk_type_traits *t = rk_type_traits_get(w->type);
    const int64_t nb = w->k / t->block_elems;
    for (int64_t b = 0; b < nb; b++)
        rk_r16_block(w->type, rk_r16_tile(w, r / 16, b), (int)(r % 16),
                     (uint8_t *)dst + (size_t)b * t->block_bytes);
    return 0;
}
