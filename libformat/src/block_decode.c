/* rf_block_decode: one quantized block, field by field (rosetta/block.h). Field offsets come from
 * the block structs of kernels/common/blocks.h and the bit positions from the layouts drawn in
 * kernels/common/quant_dequant.h and kernels/common/apr_quant.h; the scale unpacking reuses their
 * helpers (rk_k4_scale_min, rk_q3_K_scale). Values are recomputed from the decoded fields in
 * ggml's operation order, so they equal rf_dequantize's bit for bit (tests/unit/test_block.c).
 * Not for: bulk dequantization (quant.c). */
#include <stddef.h>
#include <string.h>

#include "common/apr_quant.h"
#include "common/quant_dequant.h"
#include "rosetta/block.h"
#include "rosetta/half.h"
#include "io.h"

static void field(rf_block *b, const char *name, size_t offset, size_t size, const char *meaning)
{
    rf_block_field *f = &b->fields[b->n_fields++];
    f->name = name;
    f->offset = (uint32_t)offset;
    f->size = (uint32_t)size;
    f->meaning = meaning;
}

static void load_d(rf_block *b, const uint8_t *p)
{
    b->has_d = true;
    b->d_bits = rf_load_le16(p);
    b->d = rf_f16_to_f32(b->d_bits);
}

static void load_dmin(rf_block *b, const uint8_t *p)
{
    b->has_dmin = true;
    b->dmin_bits = rf_load_le16(p);
    b->dmin = rf_f16_to_f32(b->dmin_bits);
}

/* ---- the 32-element types ---------------------------------------------------------------------
 */

/* Split halves: element j (0..15) is the low nibble of qs[j], element j + 16 the high one. */
static void split_nibbles(rf_block *b, const uint8_t *qs)
{
    for (int j = 0; j < 16; j++) {
        b->q[j] = qs[j] & 0x0f;
        b->q[j + 16] = qs[j] >> 4;
    }
}

/* Bit 4 of element j is bit j of the little-endian u32 qh. */
static void fifth_bits(rf_block *b, const uint8_t *qh)
{
    uint32_t bits = rf_load_le32(qh);
    for (int j = 0; j < 32; j++)
        b->q[j] |= (int32_t)((bits >> j) & 1u) << 4;
}

static void decode_q4_0(rf_block *b, const uint8_t *p)
{
    field(b, "d", offsetof(rk_block_q4_0, d), 2, "f16 block scale");
    field(b, "qs", offsetof(rk_block_q4_0, qs), 16,
          "4-bit quants: low nibble element j, high nibble j+16");
    load_d(b, p + offsetof(rk_block_q4_0, d));
    split_nibbles(b, p + offsetof(rk_block_q4_0, qs));
    b->q_bits = 4;
    b->q_offset = 8;
    for (int j = 0; j < 32; j++)
        b->values[j] = (float)(b->q[j] - 8) * b->d;
}

static void decode_q4_1(rf_block *b, const uint8_t *p)
{
    field(b, "d", offsetof(rk_block_q4_1, d), 2, "f16 block scale");
    field(b, "m", offsetof(rk_block_q4_1, m), 2, "f16 block minimum (added)");
    field(b, "qs", offsetof(rk_block_q4_1, qs), 16,
          "4-bit quants: low nibble element j, high nibble j+16");
    load_d(b, p + offsetof(rk_block_q4_1, d));
    load_dmin(b, p + offsetof(rk_block_q4_1, m));
    split_nibbles(b, p + offsetof(rk_block_q4_1, qs));
    b->q_bits = 4;
    for (int j = 0; j < 32; j++)
        b->values[j] = (float)b->q[j] * b->d + b->dmin;
}

static void decode_q5_0(rf_block *b, const uint8_t *p)
{
    field(b, "d", offsetof(rk_block_q5_0, d), 2, "f16 block scale");
    field(b, "qh", offsetof(rk_block_q5_0, qh), 4, "u32 LE: bit j = bit 4 of element j");
    field(b, "qs", offsetof(rk_block_q5_0, qs), 16,
          "low 4 bits: low nibble element j, high nibble j+16");
    load_d(b, p + offsetof(rk_block_q5_0, d));
    split_nibbles(b, p + offsetof(rk_block_q5_0, qs));
    fifth_bits(b, p + offsetof(rk_block_q5_0, qh));
    b->q_bits = 5;
    b->q_offset = 16;
    for (int j = 0; j < 32; j++)
        b->values[j] = (float)(b->q[j] - 16) * b->d;
}

static void decode_q5_1(rf_block *b, const uint8_t *p)
{
    field(b, "d", offsetof(rk_block_q5_1, d), 2, "f16 block scale");
    field(b, "m", offsetof(rk_block_q5_1, m), 2, "f16 block minimum (added)");
    field(b, "qh", offsetof(rk_block_q5_1, qh), 4, "u32 LE: bit j = bit 4 of element j");
    field(b, "qs", offsetof(rk_block_q5_1, qs), 16,
          "low 4 bits: low nibble element j, high nibble j+16");
    load_d(b, p + offsetof(rk_block_q5_1, d));
    load_dmin(b, p + offsetof(rk_block_q5_1, m));
    split_nibbles(b, p + offsetof(rk_block_q5_1, qs));
    fifth_bits(b, p + offsetof(rk_block_q5_1, qh));
    b->q_bits = 5;
    for (int j = 0; j < 32; j++)
        b->values[j] = (float)b->q[j] * b->d + b->dmin;
}

static void decode_q8_0(rf_block *b, const uint8_t *p)
{
    field(b, "d", offsetof(rk_block_q8_0, d), 2, "f16 block scale");
    field(b, "qs", offsetof(rk_block_q8_0, qs), 32, "int8 quants, element j in byte j");
    load_d(b, p + offsetof(rk_block_q8_0, d));
    const uint8_t *qs = p + offsetof(rk_block_q8_0, qs);
    b->q_bits = 8;
    for (int j = 0; j < 32; j++) {
        b->q[j] = (int8_t)qs[j];
        b->values[j] = (float)b->q[j] * b->d;
    }
}

/* APR_Q4: interleaved pairs, element 2k in the low nibble of byte 2 + k (apr_quant.h). */
static void decode_apr_q4(rf_block *b, const uint8_t *p)
{
    field(b, "scale", 0, 2, "f16 block scale");
    field(b, "qs", 2, 16, "4-bit quants: low nibble element 2k, high nibble 2k+1");
    load_d(b, p);
    b->q_bits = 4;
    b->q_offset = 8;
    for (uint32_t i = 0; i < b->n_elems; i++) {
        uint8_t byte = p[2 + i / 2];
        b->q[i] = i % 2 == 0 ? (byte & 0x0f) : (byte >> 4);
        b->values[i] = (float)(b->q[i] - 8) * b->d;
    }
}

/* ---- K-quants (256 elements) ------------------------------------------------------------------
 */

static void decode_q2_K(rf_block *b, const uint8_t *p)
{
    field(b, "scales", offsetof(rk_block_q2_K, scales), 16,
          "per 16 elements: low nibble scale, high nibble min");
    field(b, "qs", offsetof(rk_block_q2_K, qs), 64, "2-bit quants");
    field(b, "d", offsetof(rk_block_q2_K, d), 2, "f16 super-scale of the scales");
    field(b, "dmin", offsetof(rk_block_q2_K, dmin), 2, "f16 super-scale of the mins");
    load_d(b, p + offsetof(rk_block_q2_K, d));
    load_dmin(b, p + offsetof(rk_block_q2_K, dmin));
    const uint8_t *scales = p + offsetof(rk_block_q2_K, scales);
    const uint8_t *qs = p + offsetof(rk_block_q2_K, qs);
    b->n_subs = 16;
    b->sub_elems = 16;
    b->q_bits = 2;
    for (int s = 0; s < 16; s++) {
        b->scales[s] = scales[s] & 0x0f;
        b->mins[s] = scales[s] >> 4;
    }
    for (int e = 0; e < 256; e++) {
        int h = e / 128, j = (e % 128) / 32, l = e % 32, s = e / 16;
        b->q[e] = (qs[32 * h + l] >> (2 * j)) & 3;
        const float dl = b->d * (float)b->scales[s];
        const float ml = b->dmin * (float)b->mins[s];
        b->values[e] = dl * (float)b->q[e] - ml;
    }
}

static void decode_q3_K(rf_block *b, const uint8_t *p)
{
    field(b, "hmask", offsetof(rk_block_q3_K, hmask), 32, "high bit of each 3-bit quant");
    field(b, "qs", offsetof(rk_block_q3_K, qs), 64, "low 2 bits of each quant");
    field(b, "scales", offsetof(rk_block_q3_K, scales), 12, "sixteen 6-bit scales, packed");
    field(b, "d", offsetof(rk_block_q3_K, d), 2, "f16 super-scale");
    load_d(b, p + offsetof(rk_block_q3_K, d));
    const uint8_t *hmask = p + offsetof(rk_block_q3_K, hmask);
    const uint8_t *qs = p + offsetof(rk_block_q3_K, qs);
    const uint8_t *scales = p + offsetof(rk_block_q3_K, scales);
    b->n_subs = 16;
    b->sub_elems = 16;
    b->q_bits = 3;
    b->q_offset = 4;
    for (int s = 0; s < 16; s++)
        b->scales[s] = rk_q3_K_scale(scales, s);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, j = (e % 128) / 32, l = e % 32;
        int low = (qs[32 * h + l] >> (2 * j)) & 3;
        int high = (hmask[l] >> (4 * h + j)) & 1;
        b->q[e] = low | high << 2;
        const int sub = e / 16;
        const float dl = b->d * (float)b->scales[sub];
        b->values[e] = dl * (float)(b->q[e] - 4);
    }
}

/* Q4_K and Q5_K share d, dmin and the 12 packed scale bytes. */
static void k4_header(rf_block *b, const uint8_t *p)
{
    field(b, "d", offsetof(rk_block_q4_K, d), 2, "f16 super-scale of the 6-bit scales");
    field(b, "dmin", offsetof(rk_block_q4_K, dmin), 2, "f16 super-scale of the 6-bit mins");
    field(b, "scales", offsetof(rk_block_q4_K, scales), 12,
          "eight 6-bit scales and eight 6-bit mins, packed");
    load_d(b, p + offsetof(rk_block_q4_K, d));
    load_dmin(b, p + offsetof(rk_block_q4_K, dmin));
    b->n_subs = 8;
    b->sub_elems = 32;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        rk_k4_scale_min(p + offsetof(rk_block_q4_K, scales), j, &sc, &m);
        b->scales[j] = sc;
        b->mins[j] = m;
    }
}

/* Element 64c + 32hi + l: the low (hi = 0) or high (hi = 1) nibble of qs[32c + l]. */
static void k4_values(rf_block *b)
{
    for (int e = 0; e < 256; e++) {
        int j = e / 32;
        const float d1 = b->d * (float)b->scales[j];
        const float m1 = b->dmin * (float)b->mins[j];
        b->values[e] = d1 * (float)b->q[e] - m1;
    }
}

static void decode_q4_K(rf_block *b, const uint8_t *p)
{
    k4_header(b, p);
    field(b, "qs", offsetof(rk_block_q4_K, qs), 128,
          "4-bit quants: qs[32c+l] low nibble element 64c+l, high nibble 64c+32+l");
    const uint8_t *qs = p + offsetof(rk_block_q4_K, qs);
    b->q_bits = 4;
    for (int e = 0; e < 256; e++) {
        int c = e / 64, hi = (e % 64) / 32, l = e % 32;
        b->q[e] = hi ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0x0f;
    }
    k4_values(b);
}

static void decode_q5_K(rf_block *b, const uint8_t *p)
{
    k4_header(b, p);
    field(b, "qh", offsetof(rk_block_q5_K, qh), 32,
          "bit 2c+hi of qh[l] = bit 4 of element 64c+32hi+l");
    field(b, "qs", offsetof(rk_block_q5_K, qs), 128, "low 4 bits, nibbles as Q4_K");
    const uint8_t *qh = p + offsetof(rk_block_q5_K, qh);
    const uint8_t *qs = p + offsetof(rk_block_q5_K, qs);
    b->q_bits = 5;
    for (int e = 0; e < 256; e++) {
        int c = e / 64, hi = (e % 64) / 32, l = e % 32;
        int nibble = hi ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0x0f;
        b->q[e] = nibble | ((qh[l] >> (2 * c + hi)) & 1) << 4;
    }
    k4_values(b);
}

static void decode_q6_K(rf_block *b, const uint8_t *p)
{
    field(b, "ql", offsetof(rk_block_q6_K, ql), 128, "low 4 bits of each 6-bit quant");
    field(b, "qh", offsetof(rk_block_q6_K, qh), 64, "high 2 bits of each quant");
    field(b, "scales", offsetof(rk_block_q6_K, scales), 16, "int8 scale per 16 elements");
    field(b, "d", offsetof(rk_block_q6_K, d), 2, "f16 super-scale");
    load_d(b, p + offsetof(rk_block_q6_K, d));
    const uint8_t *ql = p + offsetof(rk_block_q6_K, ql);
    const uint8_t *qh = p + offsetof(rk_block_q6_K, qh);
    const uint8_t *sc = p + offsetof(rk_block_q6_K, scales);
    b->n_subs = 16;
    b->sub_elems = 16;
    b->q_bits = 6;
    b->q_offset = 32;
    for (int s = 0; s < 16; s++)
        b->scales[s] = (int8_t)sc[s];
    for (int e = 0; e < 256; e++) {
        int h = e / 128, t = (e % 128) / 32, l = e % 32;
        const uint8_t byte = ql[64 * h + 32 * (t % 2) + l];
        int low4 = t < 2 ? byte & 0x0f : byte >> 4;
        int high2 = (qh[32 * h + l] >> (2 * t)) & 3;
        b->q[e] = low4 | high2 << 4;
        const int sub = e / 16;
        b->values[e] = b->d * (float)b->scales[sub] * (float)(b->q[e] - 32);
    }
}

typedef void (*block_decoder)(rf_block *b, const uint8_t *p);

/* The decoder of a dtype, NULL for dtypes without one. */
static block_decoder decoder_of(rf_dtype dtype)
{
    switch (dtype) {
    case RF_DTYPE_Q4_0: return decode_q4_0;
    case RF_DTYPE_Q4_1: return decode_q4_1;
    case RF_DTYPE_Q5_0: return decode_q5_0;
    case RF_DTYPE_Q5_1: return decode_q5_1;
    case RF_DTYPE_Q8_0: return decode_q8_0;
    case RF_DTYPE_Q2_K: return decode_q2_K;
    case RF_DTYPE_Q3_K: return decode_q3_K;
    case RF_DTYPE_Q4_K: return decode_q4_K;
    case RF_DTYPE_Q5_K: return decode_q5_K;
    case RF_DTYPE_Q6_K: return decode_q6_K;
    case RF_DTYPE_APR_Q4: return decode_apr_q4;
    case RF_DTYPE_F32:
    case RF_DTYPE_F16:
    case RF_DTYPE_Q8_1:
    case RF_DTYPE_Q8_K:
    case RF_DTYPE_IQ2_XXS:
    case RF_DTYPE_IQ2_XS:
    case RF_DTYPE_IQ3_XXS:
    case RF_DTYPE_IQ1_S:
    case RF_DTYPE_IQ4_NL:
    case RF_DTYPE_IQ3_S:
    case RF_DTYPE_IQ2_S:
    case RF_DTYPE_IQ4_XS:
    case RF_DTYPE_I8:
    case RF_DTYPE_I16:
    case RF_DTYPE_I32:
    case RF_DTYPE_I64:
    case RF_DTYPE_F64:
    case RF_DTYPE_IQ1_M:
    case RF_DTYPE_BF16:
    case RF_DTYPE_TQ1_0:
    case RF_DTYPE_TQ2_0:
    case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4:
    case RF_DTYPE_Q1_0:
    case RF_DTYPE_Q2_0:
    case RF_DTYPE_U8:
    case RF_DTYPE_U16:
    case RF_DTYPE_U32:
    case RF_DTYPE_U64:
    case RF_DTYPE_BOOL:
    case RF_DTYPE_C64:
    case RF_DTYPE_F8_E5M2:
    case RF_DTYPE_F8_E4M3:
    case RF_DTYPE_F8_E8M0:
    case RF_DTYPE_F8_E4M3FNUZ:
    case RF_DTYPE_F8_E5M2FNUZ:
    case RF_DTYPE_F6_E2M3:
    case RF_DTYPE_F6_E3M2:
    case RF_DTYPE_F4:
    case RF_DTYPE_APR_Q8: return NULL;
    }
    return NULL;
}

bool rf_block_supported(rf_dtype dtype) { return decoder_of(dtype) != NULL; }

rf_status rf_block_decode(rf_dtype dtype, const uint8_t *bytes, size_t len, uint32_t n_elems,
                          rf_block *out, rf_error *err)
{
    block_decoder decode = decoder_of(dtype);
    if (!decode)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "no block decoder for dtype %s",
                            rf_dtype_name(dtype));
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (!bytes || !out)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL block or output");
    if (len < info->block_bytes)
        return rf_error_set(err, RF_ERR_ARGUMENT, "a %s block needs %u bytes, %zu given",
                            info->name, info->block_bytes, len);
    if (n_elems == 0)
        n_elems = info->block_elems;
    if (n_elems != info->block_elems && (dtype != RF_DTYPE_APR_Q4 || n_elems > 32))
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "a %s block holds %u elements, not %u (only the last APR_Q4 block "
                            "may be partial)",
                            info->name, info->block_elems, n_elems);
    memset(out, 0, sizeof *out);
    out->dtype = dtype;
    out->block_bytes = info->block_bytes;
    out->n_elems = n_elems;
    decode(out, bytes);
    return RF_OK;
}
