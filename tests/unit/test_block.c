/* rf_block_decode (rosetta/block.h): every supported type decoded field by field must give the
 * values of the library's dequantizer (rf_dequantize) bit for bit, on quantized data and on
 * random bytes (every f16 pattern, NaN and Inf included); the field tables tile the block; quants
 * stay in their bit range; and hand-built blocks decode to values worked out from the layouts in
 * docs/formats/quantization.md. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rosetta/block.h"
#include "rosetta/half.h"
#include "rosetta/quant.h"

static const rf_dtype TYPES[] = {
    RF_DTYPE_Q4_0, RF_DTYPE_Q4_1, RF_DTYPE_Q5_0, RF_DTYPE_Q5_1, RF_DTYPE_Q8_0,   RF_DTYPE_Q2_K,
    RF_DTYPE_Q3_K, RF_DTYPE_Q4_K, RF_DTYPE_Q5_K, RF_DTYPE_Q6_K, RF_DTYPE_APR_Q4,
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static float gauss(void)
{
    float u1 = (float)((next() >> 40) + 1) / 16777217.0f;
    float u2 = (float)(next() >> 40) / 16777216.0f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* Decodes n_blocks blocks of bytes one by one and compares with rf_dequantize of all of them. */
static void check_blocks(rf_dtype dtype, const uint8_t *bytes, size_t n_blocks, const char *what)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    size_t n = n_blocks * info->block_elems;
    float *want = malloc(n * sizeof *want);
    cr_assert(want);
    rf_error err;
    cr_assert_eq(rf_dequantize(dtype, bytes, want, n, &err), RF_OK, "%s", err.message);
    rf_block b;
    for (size_t k = 0; k < n_blocks; k++) {
        const uint8_t *p = bytes + k * info->block_bytes;
        cr_assert_eq(rf_block_decode(dtype, p, info->block_bytes, 0, &b, &err), RF_OK, "%s",
                     err.message);
        cr_assert_eq(b.n_elems, info->block_elems);
        for (uint32_t e = 0; e < b.n_elems; e++) {
            float w = want[k * info->block_elems + e];
            cr_assert(memcmp(&b.values[e], &w, sizeof w) == 0,
                      "%s %s block %zu element %u: decoded %a, rf_dequantize %a", info->name, what,
                      k, e, (double)b.values[e], (double)w);
            int32_t q = b.q[e];
            if (dtype == RF_DTYPE_Q8_0)
                cr_assert(q >= -128 && q <= 127);
            else
                cr_assert(q >= 0 && q < (1 << b.q_bits), "%s q[%u] = %d outside %u bits",
                          info->name, e, q, b.q_bits);
        }
    }
    free(want);
}

Test(block, values_equal_rf_dequantize_on_quantized_data)
{
    enum { BLOCKS = 64 };
    float x[BLOCKS * 256];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = gauss() * (i % 97 == 0 ? 8.0f : 0.05f);
    for (size_t t = 0; t < N_TYPES; t++) {
        const rf_dtype_info *info = rf_dtype_get(TYPES[t]);
        size_t n = BLOCKS * info->block_elems;
        uint64_t bytes;
        rf_error err;
        cr_assert_eq(rf_quant_bytes(TYPES[t], 1, n, &bytes, &err), RF_OK, "%s", err.message);
        uint8_t *q = malloc(bytes);
        cr_assert(q);
        cr_assert_eq(rf_quantize(TYPES[t], x, q, 1, n, NULL, NULL, &err), RF_OK, "%s: %s",
                     info->name, err.message);
        check_blocks(TYPES[t], q, BLOCKS, "quantized");
        free(q);
    }
}

Test(block, values_equal_rf_dequantize_on_random_bytes)
{
    enum { BLOCKS = 512 };
    uint8_t bytes[BLOCKS * 210];
    for (size_t t = 0; t < N_TYPES; t++) {
        for (size_t i = 0; i < sizeof bytes; i++)
            bytes[i] = (uint8_t)next();
        check_blocks(TYPES[t], bytes, BLOCKS, "random");
    }
}

Test(block, fields_tile_the_block)
{
    uint8_t zero[256] = {0};
    for (size_t t = 0; t < N_TYPES; t++) {
        rf_block b;
        rf_error err;
        cr_assert_eq(rf_block_decode(TYPES[t], zero, sizeof zero, 0, &b, &err), RF_OK);
        uint32_t at = 0;
        for (size_t f = 0; f < b.n_fields; f++) {
            cr_assert_eq(b.fields[f].offset, at, "%s field %s at %u, expected %u",
                         rf_dtype_name(TYPES[t]), b.fields[f].name, b.fields[f].offset, at);
            cr_assert(b.fields[f].size > 0 && b.fields[f].meaning && *b.fields[f].meaning);
            at += b.fields[f].size;
        }
        cr_assert_eq(at, b.block_bytes, "%s fields cover %u of %u bytes", rf_dtype_name(TYPES[t]),
                     at, b.block_bytes);
        cr_assert_eq(b.block_bytes, rf_dtype_get(TYPES[t])->block_bytes);
    }
}

Test(block, unsupported_types_and_bad_arguments)
{
    uint8_t bytes[512] = {0};
    rf_block b;
    rf_error err;
    cr_assert_eq(rf_block_decode(RF_DTYPE_F32, bytes, sizeof bytes, 0, &b, &err),
                 RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "F32"), "%s", err.message);
    cr_assert_eq(rf_block_decode(RF_DTYPE_IQ2_XXS, bytes, sizeof bytes, 0, &b, &err),
                 RF_ERR_UNSUPPORTED);
    cr_assert(!rf_block_supported(RF_DTYPE_APR_Q8));
    cr_assert_eq(rf_block_decode(RF_DTYPE_Q4_K, bytes, 143, 0, &b, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "144"), "%s", err.message);
    cr_assert_eq(rf_block_decode(RF_DTYPE_Q4_0, bytes, 18, 16, &b, &err), RF_ERR_ARGUMENT);
    cr_assert_eq(rf_block_decode(RF_DTYPE_APR_Q4, bytes, 18, 33, &b, &err), RF_ERR_ARGUMENT);
}

/* A partial APR_Q4 block: 5 values, interleaved nibbles; the library dequantizes the same. */
Test(block, apr_q4_partial_block)
{
    uint8_t blk[18] = {0};
    uint16_t h = rf_f32_to_f16(0.5f);
    blk[0] = (uint8_t)h;
    blk[1] = (uint8_t)(h >> 8);
    blk[2] = 0x9f; /* element 0: 15 -> 7 * 0.5, element 1: 9 -> 1 * 0.5 */
    blk[3] = 0x70; /* element 2: 0 -> -8 * 0.5, element 3: 7 -> -1 * 0.5 */
    blk[4] = 0x08; /* element 4: 8 -> 0 */
    rf_block b;
    rf_error err;
    cr_assert_eq(rf_block_decode(RF_DTYPE_APR_Q4, blk, sizeof blk, 5, &b, &err), RF_OK);
    const float want[5] = {3.5f, 0.5f, -4.0f, -0.5f, 0.0f};
    float lib[5];
    cr_assert_eq(rf_dequantize(RF_DTYPE_APR_Q4, blk, lib, 5, &err), RF_OK);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(b.values[i], want[i], "element %d: %g", i, (double)b.values[i]);
        cr_assert_eq(b.values[i], lib[i]);
    }
    cr_assert_eq(b.n_elems, 5);
    cr_assert_eq(b.q[0], 15);
    cr_assert_eq(b.q[1], 9);
}

/* Q4_K scales[12] packing (docs/formats/quantization.md): sc[0..3] and m[0..3] in the low 6 bits
 * of bytes 0..7, the top 2 bits of sc[4..7] / m[4..7] in bits 6-7 of bytes 0..3 / 4..7, their low
 * 4 bits in the nibbles of bytes 8..11. */
Test(block, q4_k_scale_unpacking_by_hand)
{
    const int sc[8] = {1, 2, 3, 63, 17, 33, 48, 62};
    const int m[8] = {0, 5, 62, 7, 31, 16, 47, 63};
    uint8_t blk[144] = {0};
    uint8_t *s = blk + 4;
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
    uint16_t one = rf_f32_to_f16(1.0f), half = rf_f32_to_f16(0.5f);
    blk[0] = (uint8_t)one;
    blk[1] = (uint8_t)(one >> 8);
    blk[2] = (uint8_t)half;
    blk[3] = (uint8_t)(half >> 8);
    blk[16 + 32] = 0xa3; /* chunk 1: element 64 (sub-block 2) = 3, element 96 (sub-block 3) = 10 */
    rf_block b;
    rf_error err;
    cr_assert_eq(rf_block_decode(RF_DTYPE_Q4_K, blk, sizeof blk, 0, &b, &err), RF_OK);
    for (int j = 0; j < 8; j++) {
        cr_assert_eq(b.scales[j], sc[j], "sc[%d] = %d", j, b.scales[j]);
        cr_assert_eq(b.mins[j], m[j], "m[%d] = %d", j, b.mins[j]);
    }
    cr_assert_eq(b.q[64], 3);
    cr_assert_eq(b.q[96], 10);
    cr_assert_eq(b.values[64], 1.0f * 3 * 3 - 0.5f * 62); /* 9 - 31 */
    cr_assert_eq(b.values[96], 1.0f * 63 * 10 - 0.5f * 7);
    cr_assert_eq(b.values[0], -0.0f * 0 - 0.0f);
}

/* Q6_K: element 130 is in the second half (h = 1), t = 0, l = 2: low 4 bits from ql[64 + 2],
 * high 2 bits from qh[32 + 2] bits 0-1, scale index 8 + 0 + 0 = 8. */
Test(block, q6_k_element_by_hand)
{
    uint8_t blk[210] = {0};
    blk[64 + 2] = 0x0b;      /* low nibble 11 */
    blk[128 + 32 + 2] = 0x2; /* high bits 2 -> q = 11 | 32 = 43, minus 32 = 11 */
    blk[192 + 8] = (uint8_t)-3;
    uint16_t d = rf_f32_to_f16(0.25f);
    blk[208] = (uint8_t)d;
    blk[209] = (uint8_t)(d >> 8);
    rf_block b;
    rf_error err;
    cr_assert_eq(rf_block_decode(RF_DTYPE_Q6_K, blk, sizeof blk, 0, &b, &err), RF_OK);
    cr_assert_eq(b.q[130], 43);
    cr_assert_eq(b.scales[8], -3);
    cr_assert_eq(b.values[130], 0.25f * -3.0f * 11.0f);
    cr_assert_eq(b.values[0], 0.25f * 0.0f * -32.0f);
}
