/* The one dtype table (see rosetta/dtype.h): every type's facts and its kernels in one entry,
 * indexed by the enum, and the lookups and byte-size arithmetic (with overflow checks) built on
 * it. What Rosetta can read or produce (rf_dtype_info.flags, rf_can_quantize ...) and what each
 * format holds (rf_format_holds) are derived from the entries, never listed elsewhere. */
#include "rosetta/dtype.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/blocks.h"
#include "cpu/quant_dispatch.h"
#include "cpu/quant_plain.h"
#include "cpu/quant_ref.h"
#include "dtype_internal.h"

/* An entry's facts: name, kind, block geometry, code in GGUF / APR (-1: none), SafeTensors name
 * (NULL: none). */
#define INFO(d, n, k, elems, bytes, ggml, apr, st)                                                 \
    .info.dtype = (d), .info.name = (n), .info.kind = (k), .info.block_elems = (elems),            \
    .info.block_bytes = (bytes), .info.ggml_code = (ggml), .info.apr_code = (apr),                 \
    .info.st_name = (st)
#define DQ RF_DTYPE_CAN_DEQUANTIZE
#define QZ RF_DTYPE_CAN_QUANTIZE
/* An entry's kernels, by SIMD level (scalar reference, AVX2, AVX-512); the capability flags come
 * with them, so they cannot disagree. */
#define SIMD(t)                                                                                    \
    .quant = {rk_quantize_row_##t##_ref, rk_quantize_row_##t##_avx2,                               \
              rk_quantize_row_##t##_avx512},                                                       \
    .dequant = {rk_dequantize_row_##t##_ref, rk_dequantize_row_##t##_avx2,                         \
                rk_dequantize_row_##t##_avx512},                                                   \
    .info.flags = DQ | QZ
#define SCALAR(t)                                                                                  \
    .quant = {rk_quantize_row_##t##_ref, rk_quantize_row_##t##_ref, rk_quantize_row_##t##_ref},    \
    .dequant = {rk_dequantize_row_##t##_ref, rk_dequantize_row_##t##_ref,                          \
                rk_dequantize_row_##t##_ref},                                                      \
    .info.flags = DQ | QZ
#define READ_ONLY(t)                                                                               \
    .dequant = {rk_dequantize_row_##t##_ref, rk_dequantize_row_##t##_ref,                          \
                rk_dequantize_row_##t##_ref},                                                      \
    .info.flags = DQ
/* llama.cpp's weighted quantizer for an importance matrix, or: llama.cpp ignores the matrix */
#define WEIGHTED(t)     .imatrix = rk_quantize_row_##t##_imatrix
#define IGNORES_IMATRIX .ignores_imatrix = true

#define F RF_KIND_FLOAT
#define I RF_KIND_INT
#define Q RF_KIND_QUANT

/* clang-format off */
static const rfi_dtype_traits TABLE[RFI_DTYPE_TABLE_SIZE] = {
    [RF_DTYPE_F32]  = {INFO(RF_DTYPE_F32, "F32", F, 1, 4, 0, 0, "F32"),
                       .quant = {rk_quantize_row_f32_ref, rk_quantize_row_f32_ref,
                                 rk_quantize_row_f32_ref},
                       .dequant = {rk_dequantize_row_f32_ref, rk_dequantize_row_f32_ref,
                                   rk_dequantize_row_f32_ref},
                       .info.flags = DQ | QZ, IGNORES_IMATRIX},
    [RF_DTYPE_F16]  = {INFO(RF_DTYPE_F16, "F16", F, 1, 2, 1, 1, "F16"), SIMD(f16), IGNORES_IMATRIX},
    [RF_DTYPE_BF16] = {INFO(RF_DTYPE_BF16, "BF16", F, 1, 2, 30, 30, "BF16"), SIMD(bf16),
                       IGNORES_IMATRIX},
    [RF_DTYPE_F64]  = {INFO(RF_DTYPE_F64, "F64", F, 1, 8, 28, 3, "F64"), READ_ONLY(f64)},
    [RF_DTYPE_Q4_0] = {INFO(RF_DTYPE_Q4_0, "Q4_0", Q, RK_QK4_0, sizeof(rk_block_q4_0), 2, -1, NULL),
                       SIMD(q4_0), WEIGHTED(q4_0)},
    [RF_DTYPE_Q4_1] = {INFO(RF_DTYPE_Q4_1, "Q4_1", Q, RK_QK4_1, sizeof(rk_block_q4_1), 3, -1, NULL),
                       SCALAR(q4_1), WEIGHTED(q4_1)},
    [RF_DTYPE_Q5_0] = {INFO(RF_DTYPE_Q5_0, "Q5_0", Q, RK_QK5_0, sizeof(rk_block_q5_0), 6, -1, NULL),
                       SIMD(q5_0), WEIGHTED(q5_0)},
    [RF_DTYPE_Q5_1] = {INFO(RF_DTYPE_Q5_1, "Q5_1", Q, RK_QK5_1, sizeof(rk_block_q5_1), 7, -1, NULL),
                       SCALAR(q5_1), WEIGHTED(q5_1)},
    [RF_DTYPE_Q8_0] = {INFO(RF_DTYPE_Q8_0, "Q8_0", Q, RK_QK8_0, sizeof(rk_block_q8_0), 8, -1, NULL),
                       SIMD(q8_0), IGNORES_IMATRIX},
    /* Q8_1 is an activation type of ggml: read, never written */
    [RF_DTYPE_Q8_1] = {INFO(RF_DTYPE_Q8_1, "Q8_1", Q, RK_QK8_1, sizeof(rk_block_q8_1), 9, -1, NULL),
                       READ_ONLY(q8_1)},
    [RF_DTYPE_Q2_K] = {INFO(RF_DTYPE_Q2_K, "Q2_K", Q, RK_QK_K, sizeof(rk_block_q2_K), 10, -1, NULL),
                       SCALAR(q2_K), WEIGHTED(q2_K)},
    [RF_DTYPE_Q3_K] = {INFO(RF_DTYPE_Q3_K, "Q3_K", Q, RK_QK_K, sizeof(rk_block_q3_K), 11, -1, NULL),
                       SCALAR(q3_K), WEIGHTED(q3_K)},
    [RF_DTYPE_Q4_K] = {INFO(RF_DTYPE_Q4_K, "Q4_K", Q, RK_QK_K, sizeof(rk_block_q4_K), 12, 12, NULL),
                       SIMD(q4_K), WEIGHTED(q4_K)},
    [RF_DTYPE_Q5_K] = {INFO(RF_DTYPE_Q5_K, "Q5_K", Q, RK_QK_K, sizeof(rk_block_q5_K), 13, -1, NULL),
                       SIMD(q5_K), WEIGHTED(q5_K)},
    [RF_DTYPE_Q6_K] = {INFO(RF_DTYPE_Q6_K, "Q6_K", Q, RK_QK_K, sizeof(rk_block_q6_K), 14, 14, NULL),
                       SIMD(q6_K), WEIGHTED(q6_K)},
    [RF_DTYPE_Q8_K] = {INFO(RF_DTYPE_Q8_K, "Q8_K", Q, RK_QK_K, sizeof(rk_block_q8_K), 15, -1, NULL),
                       SCALAR(q8_K)},
    /* IQ4 quantizers are not offered (llama-quantize's IQ mixes need an importance matrix) */
    [RF_DTYPE_IQ4_NL] = {INFO(RF_DTYPE_IQ4_NL, "IQ4_NL", Q, RK_QK4_NL, sizeof(rk_block_iq4_nl),
                              20, -1, NULL), READ_ONLY(iq4_nl)},
    [RF_DTYPE_IQ4_XS] = {INFO(RF_DTYPE_IQ4_XS, "IQ4_XS", Q, RK_QK_K, sizeof(rk_block_iq4_xs),
                              23, -1, NULL), READ_ONLY(iq4_xs)},
    /* ggml types Rosetta lists but neither reads nor writes as values: an error, never garbage */
    [RF_DTYPE_IQ2_XXS] = {INFO(RF_DTYPE_IQ2_XXS, "IQ2_XXS", Q, 256, 66, 16, -1, NULL)},
    [RF_DTYPE_IQ2_XS]  = {INFO(RF_DTYPE_IQ2_XS, "IQ2_XS", Q, 256, 74, 17, -1, NULL)},
    [RF_DTYPE_IQ3_XXS] = {INFO(RF_DTYPE_IQ3_XXS, "IQ3_XXS", Q, 256, 98, 18, -1, NULL)},
    [RF_DTYPE_IQ1_S]   = {INFO(RF_DTYPE_IQ1_S, "IQ1_S", Q, 256, 50, 19, -1, NULL)},
    [RF_DTYPE_IQ3_S]   = {INFO(RF_DTYPE_IQ3_S, "IQ3_S", Q, 256, 110, 21, -1, NULL)},
    [RF_DTYPE_IQ2_S]   = {INFO(RF_DTYPE_IQ2_S, "IQ2_S", Q, 256, 82, 22, -1, NULL)},
    [RF_DTYPE_IQ1_M]   = {INFO(RF_DTYPE_IQ1_M, "IQ1_M", Q, 256, 56, 29, -1, NULL)},
    [RF_DTYPE_TQ1_0]   = {INFO(RF_DTYPE_TQ1_0, "TQ1_0", Q, 256, 54, 34, -1, NULL)},
    [RF_DTYPE_TQ2_0]   = {INFO(RF_DTYPE_TQ2_0, "TQ2_0", Q, 256, 66, 35, -1, NULL)},
    [RF_DTYPE_MXFP4]   = {INFO(RF_DTYPE_MXFP4, "MXFP4", Q, 32, 17, 39, -1, NULL)},
    [RF_DTYPE_NVFP4]   = {INFO(RF_DTYPE_NVFP4, "NVFP4", Q, 64, 36, 40, -1, NULL)},
    [RF_DTYPE_Q1_0]    = {INFO(RF_DTYPE_Q1_0, "Q1_0", Q, 128, 18, 41, -1, NULL)},
    [RF_DTYPE_Q2_0]    = {INFO(RF_DTYPE_Q2_0, "Q2_0", Q, 64, 18, 42, -1, NULL)},
    /* integers (and BOOL): read as values, never produced */
    [RF_DTYPE_I8]   = {INFO(RF_DTYPE_I8, "I8", I, 1, 1, 24, 6, "I8"), READ_ONLY(i8)},
    [RF_DTYPE_I16]  = {INFO(RF_DTYPE_I16, "I16", I, 1, 2, 25, -1, "I16"), READ_ONLY(i16)},
    [RF_DTYPE_I32]  = {INFO(RF_DTYPE_I32, "I32", I, 1, 4, 26, 4, "I32"), READ_ONLY(i32)},
    [RF_DTYPE_I64]  = {INFO(RF_DTYPE_I64, "I64", I, 1, 8, 27, 5, "I64"), READ_ONLY(i64)},
    [RF_DTYPE_U8]   = {INFO(RF_DTYPE_U8, "U8", I, 1, 1, -1, 7, "U8"), READ_ONLY(u8)},
    [RF_DTYPE_U16]  = {INFO(RF_DTYPE_U16, "U16", I, 1, 2, -1, -1, "U16"), READ_ONLY(u16)},
    [RF_DTYPE_U32]  = {INFO(RF_DTYPE_U32, "U32", I, 1, 4, -1, -1, "U32"), READ_ONLY(u32)},
    [RF_DTYPE_U64]  = {INFO(RF_DTYPE_U64, "U64", I, 1, 8, -1, -1, "U64"), READ_ONLY(u64)},
    [RF_DTYPE_BOOL] = {INFO(RF_DTYPE_BOOL, "BOOL", I, 1, 1, -1, -1, "BOOL"), READ_ONLY(bool)},
    /* SafeTensors-only floats, carried as bytes */
    [RF_DTYPE_C64]         = {INFO(RF_DTYPE_C64, "C64", F, 1, 8, -1, -1, "C64")},
    [RF_DTYPE_F8_E5M2]     = {INFO(RF_DTYPE_F8_E5M2, "F8_E5M2", F, 1, 1, -1, -1, "F8_E5M2")},
    [RF_DTYPE_F8_E4M3]     = {INFO(RF_DTYPE_F8_E4M3, "F8_E4M3", F, 1, 1, -1, -1, "F8_E4M3")},
    [RF_DTYPE_F8_E8M0]     = {INFO(RF_DTYPE_F8_E8M0, "F8_E8M0", F, 1, 1, -1, -1, "F8_E8M0")},
    [RF_DTYPE_F8_E4M3FNUZ] = {INFO(RF_DTYPE_F8_E4M3FNUZ, "F8_E4M3FNUZ", F, 1, 1, -1, -1,
                                   "F8_E4M3FNUZ")},
    [RF_DTYPE_F8_E5M2FNUZ] = {INFO(RF_DTYPE_F8_E5M2FNUZ, "F8_E5M2FNUZ", F, 1, 1, -1, -1,
                                   "F8_E5M2FNUZ")},
    /* sub-byte SafeTensors types: a "block" is the smallest whole number of bytes */
    [RF_DTYPE_F6_E2M3] = {INFO(RF_DTYPE_F6_E2M3, "F6_E2M3", F, 4, 3, -1, -1, "F6_E2M3")},
    [RF_DTYPE_F6_E3M2] = {INFO(RF_DTYPE_F6_E3M2, "F6_E3M2", F, 4, 3, -1, -1, "F6_E3M2")},
    [RF_DTYPE_F4]      = {INFO(RF_DTYPE_F4, "F4", F, 2, 1, -1, -1, "F4")},
    /* aprender's own types (apr-v2.md 9.2-9.3) */
    [RF_DTYPE_APR_Q4] = {INFO(RF_DTYPE_APR_Q4, "APR_Q4", Q, 32, 18, -1, 128, NULL), SCALAR(apr_q4)},
    [RF_DTYPE_APR_Q8] = {INFO(RF_DTYPE_APR_Q8, "APR_Q8", Q, 1, 1, -1, 129, NULL), SCALAR(apr_q8)},
};
/* clang-format on */

const rfi_dtype_traits *rfi_dtype_traits_of(rf_dtype dtype)
{
    unsigned v = (unsigned)dtype;
    return v < RFI_DTYPE_TABLE_SIZE && TABLE[v].info.name ? &TABLE[v] : NULL;
}

bool rf_dtype_valid(int value)
{
    return value >= 0 && rfi_dtype_traits_of((rf_dtype)value) != NULL;
}

const rf_dtype_info *rf_dtype_get(rf_dtype dtype)
{
    const rfi_dtype_traits *t = rfi_dtype_traits_of(dtype);
    return t ? &t->info : NULL;
}

const char *rf_dtype_name(rf_dtype dtype)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    return info ? info->name : "unknown";
}

bool rf_format_holds(rf_format format, rf_dtype dtype)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (!info)
        return false;
    switch (format) {
    case RF_FORMAT_GGUF: return info->ggml_code >= 0;
    case RF_FORMAT_APR:
    case RF_FORMAT_APR2_MAGIC: return info->apr_code >= 0;
    case RF_FORMAT_SAFETENSORS:
    case RF_FORMAT_SAFETENSORS_INDEX:
    case RF_FORMAT_SAFETENSORS_DIR: return info->st_name != NULL;
    case RF_FORMAT_APR_V1:
    case RF_FORMAT_APR1:
    case RF_FORMAT_APRT:
    case RF_FORMAT_APR_TSP:
    case RF_FORMAT_UNKNOWN: break;
    }
    return false;
}

const char *rf_format_held_types(rf_format format, unsigned kinds, unsigned flags, char *buf,
                                 size_t size)
{
    size_t used = 0;
    if (size)
        buf[0] = '\0';
    for (unsigned v = 0; v < RFI_DTYPE_TABLE_SIZE && size; v++) {
        const rf_dtype_info *info = rf_dtype_get((rf_dtype)v);
        if (!info || !(kinds & (1u << info->kind)) || (info->flags & flags) != flags ||
            !rf_format_holds(format, (rf_dtype)v))
            continue;
        int w = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", info->name);
        if (w < 0 || (size_t)w >= size - used) {
            buf[used] = '\0'; /* no partial name */
            break;
        }
        used += (size_t)w;
    }
    return buf;
}

bool rf_dtype_from_ggml(uint32_t ggml_code, rf_dtype *out)
{
    /* rf_dtype values 0..42 are the ggml codes themselves */
    const rf_dtype_info *info = ggml_code < 64 ? rf_dtype_get((rf_dtype)ggml_code) : NULL;
    if (!info || info->ggml_code < 0 || (uint32_t)info->ggml_code != ggml_code)
        return false;
    *out = info->dtype;
    return true;
}

bool rf_dtype_from_apr(uint32_t apr_code, rf_dtype *out)
{
    /* docs/formats/apr.md: codes 8 and 9 are the pre-GH-438 codes of APR_Q4 / APR_Q8 */
    if (apr_code == 8) {
        *out = RF_DTYPE_APR_Q4;
        return true;
    }
    if (apr_code == 9) {
        *out = RF_DTYPE_APR_Q8;
        return true;
    }
    for (size_t i = 0; i < RFI_DTYPE_TABLE_SIZE; i++)
        if (TABLE[i].info.name && TABLE[i].info.apr_code >= 0 &&
            (uint32_t)TABLE[i].info.apr_code == apr_code) {
            *out = TABLE[i].info.dtype;
            return true;
        }
    return false;
}

bool rf_dtype_from_st(const char *st_name, rf_dtype *out)
{
    if (!st_name)
        return false;
    for (size_t i = 0; i < RFI_DTYPE_TABLE_SIZE; i++) /* case-sensitive, as the reference is */
        if (TABLE[i].info.st_name && strcmp(TABLE[i].info.st_name, st_name) == 0) {
            *out = TABLE[i].info.dtype;
            return true;
        }
    return false;
}

bool rf_dtype_from_name(const char *name, rf_dtype *out)
{
    if (!name)
        return false;
    for (size_t i = 0; i < RFI_DTYPE_TABLE_SIZE; i++)
        if (TABLE[i].info.name && strcasecmp(TABLE[i].info.name, name) == 0) {
            *out = TABLE[i].info.dtype;
            return true;
        }
    return false;
}

rf_status rf_shape_elements(const uint64_t *shape, int ndim, uint64_t *out, rf_error *err)
{
    if (ndim < 0)
        return rf_error_set(err, RF_ERR_ARGUMENT, "negative number of dimensions %d", ndim);
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (__builtin_mul_overflow(n, shape[i], &n))
            return rf_error_set(err, RF_ERR_OVERFLOW,
                                "shape product overflows 64 bits at dimension %d (%llu)", i,
                                (unsigned long long)shape[i]);
    }
    *out = n;
    return RF_OK;
}

rf_status rf_dtype_flat_bytes(rf_dtype dtype, uint64_t n_elements, uint64_t *out, rf_error *err)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (!info)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "unknown dtype %d", (int)dtype);
    uint64_t bytes;
    if (dtype == RF_DTYPE_APR_Q8) { /* one f32 scale per tensor, then int8 per element */
        if (n_elements == 0) {
            *out = 0;
            return RF_OK;
        }
        if (__builtin_add_overflow(n_elements, 4, &bytes))
            return rf_error_set(err, RF_ERR_OVERFLOW, "APR_Q8 size of %llu elements overflows",
                                (unsigned long long)n_elements);
        *out = bytes;
        return RF_OK;
    }
    uint64_t blocks = n_elements / info->block_elems;
    if (n_elements % info->block_elems) {
        if (dtype != RF_DTYPE_APR_Q4) /* APR_Q4's last block may be partial */
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%llu elements is not a multiple of the %s block (%u)",
                                (unsigned long long)n_elements, info->name, info->block_elems);
        blocks++;
    }
    if (__builtin_mul_overflow(blocks, (uint64_t)info->block_bytes, &bytes))
        return rf_error_set(err, RF_ERR_OVERFLOW, "%s size of %llu elements overflows", info->name,
                            (unsigned long long)n_elements);
    *out = bytes;
    return RF_OK;
}

rf_status rf_dtype_tensor_bytes(rf_dtype dtype, const uint64_t *shape, int ndim, uint64_t *out,
                                rf_error *err)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (!info)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "unknown dtype %d", (int)dtype);
    uint64_t n;
    rf_status st = rf_shape_elements(shape, ndim, &n, err);
    if (st != RF_OK)
        return st;
    if (info->block_elems > 1 && dtype != RF_DTYPE_APR_Q4) {
        uint64_t inner = ndim > 0 ? shape[ndim - 1] : 1;
        if (inner % info->block_elems)
            return rf_error_set(err, RF_ERR_FORMAT,
                                "inner dimension %llu is not a multiple of the %s block (%u)",
                                (unsigned long long)inner, info->name, info->block_elems);
    }
    return rf_dtype_flat_bytes(dtype, n, out, err);
}
