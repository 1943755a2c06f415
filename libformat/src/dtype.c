/* The one dtype table (see rosetta/dtype.h) and byte-size arithmetic with overflow checks. */
#include "rosetta/dtype.h"

#include <string.h>
#include <strings.h>

#include "common/blocks.h"

#define DQ RF_DTYPE_CAN_DEQUANTIZE
#define QZ RF_DTYPE_CAN_QUANTIZE

/* clang-format off */
/*  dtype                 name           kind           elems  bytes ggml apr  safetensors */
static const rf_dtype_info TABLE[] = {
    {RF_DTYPE_F32, "F32", RF_KIND_FLOAT, 1, 4, 0, 0, "F32", DQ | QZ},
    {RF_DTYPE_F16, "F16", RF_KIND_FLOAT, 1, 2, 1, 1, "F16", DQ | QZ},
    {RF_DTYPE_Q4_0, "Q4_0", RF_KIND_QUANT, RK_QK4_0, sizeof(rk_block_q4_0), 2, -1, NULL, DQ | QZ},
    {RF_DTYPE_Q4_1, "Q4_1", RF_KIND_QUANT, RK_QK4_1, sizeof(rk_block_q4_1), 3, -1, NULL, DQ | QZ},
    {RF_DTYPE_Q5_0, "Q5_0", RF_KIND_QUANT, RK_QK5_0, sizeof(rk_block_q5_0), 6, -1, NULL, DQ | QZ},
    {RF_DTYPE_Q5_1, "Q5_1", RF_KIND_QUANT, RK_QK5_1, sizeof(rk_block_q5_1), 7, -1, NULL, DQ | QZ},
    {RF_DTYPE_Q8_0, "Q8_0", RF_KIND_QUANT, RK_QK8_0, sizeof(rk_block_q8_0), 8, -1, NULL, DQ | QZ},
    {RF_DTYPE_Q8_1, "Q8_1", RF_KIND_QUANT, RK_QK8_1, sizeof(rk_block_q8_1), 9, -1, NULL, DQ},
    {RF_DTYPE_Q2_K, "Q2_K", RF_KIND_QUANT, RK_QK_K, sizeof(rk_block_q2_K), 10, -1, NULL, DQ | QZ},
    {RF_DTYPE_Q3_K, "Q3_K", RF_KIND_QUANT, RK_QK_K, sizeof(rk_block_q3_K), 11, -1, NULL, DQ | QZ},
    {RF_DTYPE_Q4_K, "Q4_K", RF_KIND_QUANT, RK_QK_K, sizeof(rk_block_q4_K), 12, 12, NULL, DQ | QZ},
    {RF_DTYPE_Q5_K, "Q5_K", RF_KIND_QUANT, RK_QK_K, sizeof(rk_block_q5_K), 13, -1, NULL, DQ | QZ},
    {RF_DTYPE_Q6_K, "Q6_K", RF_KIND_QUANT, RK_QK_K, sizeof(rk_block_q6_K), 14, 14, NULL, DQ | QZ},
    {RF_DTYPE_Q8_K, "Q8_K", RF_KIND_QUANT, RK_QK_K, sizeof(rk_block_q8_K), 15, -1, NULL, DQ | QZ},
    {RF_DTYPE_IQ2_XXS, "IQ2_XXS", RF_KIND_QUANT, 256, 66, 16, -1, NULL, 0},
    {RF_DTYPE_IQ2_XS, "IQ2_XS", RF_KIND_QUANT, 256, 74, 17, -1, NULL, 0},
    {RF_DTYPE_IQ3_XXS, "IQ3_XXS", RF_KIND_QUANT, 256, 98, 18, -1, NULL, 0},
    {RF_DTYPE_IQ1_S, "IQ1_S", RF_KIND_QUANT, 256, 50, 19, -1, NULL, 0},
    {RF_DTYPE_IQ4_NL, "IQ4_NL", RF_KIND_QUANT, RK_QK4_NL, sizeof(rk_block_iq4_nl), 20, -1, NULL, DQ},
    {RF_DTYPE_IQ3_S, "IQ3_S", RF_KIND_QUANT, 256, 110, 21, -1, NULL, 0},
    {RF_DTYPE_IQ2_S, "IQ2_S", RF_KIND_QUANT, 256, 82, 22, -1, NULL, 0},
    {RF_DTYPE_IQ4_XS, "IQ4_XS", RF_KIND_QUANT, RK_QK_K, sizeof(rk_block_iq4_xs), 23, -1, NULL, DQ},
    {RF_DTYPE_I8, "I8", RF_KIND_INT, 1, 1, 24, 6, "I8", DQ},
    {RF_DTYPE_I16, "I16", RF_KIND_INT, 1, 2, 25, -1, "I16", DQ},
    {RF_DTYPE_I32, "I32", RF_KIND_INT, 1, 4, 26, 4, "I32", DQ},
    {RF_DTYPE_I64, "I64", RF_KIND_INT, 1, 8, 27, 5, "I64", DQ},
    {RF_DTYPE_F64, "F64", RF_KIND_FLOAT, 1, 8, 28, 3, "F64", DQ},
    {RF_DTYPE_IQ1_M, "IQ1_M", RF_KIND_QUANT, 256, 56, 29, -1, NULL, 0},
    {RF_DTYPE_BF16, "BF16", RF_KIND_FLOAT, 1, 2, 30, 30, "BF16", DQ | QZ},
    {RF_DTYPE_TQ1_0, "TQ1_0", RF_KIND_QUANT, 256, 54, 34, -1, NULL, 0},
    {RF_DTYPE_TQ2_0, "TQ2_0", RF_KIND_QUANT, 256, 66, 35, -1, NULL, 0},
    {RF_DTYPE_MXFP4, "MXFP4", RF_KIND_QUANT, 32, 17, 39, -1, NULL, 0},
    {RF_DTYPE_NVFP4, "NVFP4", RF_KIND_QUANT, 64, 36, 40, -1, NULL, 0},
    {RF_DTYPE_Q1_0, "Q1_0", RF_KIND_QUANT, 128, 18, 41, -1, NULL, 0},
    {RF_DTYPE_Q2_0, "Q2_0", RF_KIND_QUANT, 64, 18, 42, -1, NULL, 0},
    {RF_DTYPE_U8, "U8", RF_KIND_INT, 1, 1, -1, 7, "U8", DQ},
    {RF_DTYPE_U16, "U16", RF_KIND_INT, 1, 2, -1, -1, "U16", DQ},
    {RF_DTYPE_U32, "U32", RF_KIND_INT, 1, 4, -1, -1, "U32", DQ},
    {RF_DTYPE_U64, "U64", RF_KIND_INT, 1, 8, -1, -1, "U64", DQ},
    {RF_DTYPE_BOOL, "BOOL", RF_KIND_INT, 1, 1, -1, -1, "BOOL", DQ},
    {RF_DTYPE_C64, "C64", RF_KIND_FLOAT, 1, 8, -1, -1, "C64", 0},
    {RF_DTYPE_F8_E5M2, "F8_E5M2", RF_KIND_FLOAT, 1, 1, -1, -1, "F8_E5M2", 0},
    {RF_DTYPE_F8_E4M3, "F8_E4M3", RF_KIND_FLOAT, 1, 1, -1, -1, "F8_E4M3", 0},
    {RF_DTYPE_F8_E8M0, "F8_E8M0", RF_KIND_FLOAT, 1, 1, -1, -1, "F8_E8M0", 0},
    {RF_DTYPE_F8_E4M3FNUZ, "F8_E4M3FNUZ", RF_KIND_FLOAT, 1, 1, -1, -1, "F8_E4M3FNUZ", 0},
    {RF_DTYPE_F8_E5M2FNUZ, "F8_E5M2FNUZ", RF_KIND_FLOAT, 1, 1, -1, -1, "F8_E5M2FNUZ", 0},
    /* sub-byte SafeTensors types: a "block" is the smallest whole number of bytes */
    {RF_DTYPE_F6_E2M3, "F6_E2M3", RF_KIND_FLOAT, 4, 3, -1, -1, "F6_E2M3", 0},
    {RF_DTYPE_F6_E3M2, "F6_E3M2", RF_KIND_FLOAT, 4, 3, -1, -1, "F6_E3M2", 0},
    {RF_DTYPE_F4, "F4", RF_KIND_FLOAT, 2, 1, -1, -1, "F4", 0},
    {RF_DTYPE_APR_Q4, "APR_Q4", RF_KIND_QUANT, 32, 18, -1, 128, NULL, DQ | QZ},
    {RF_DTYPE_APR_Q8, "APR_Q8", RF_KIND_QUANT, 1, 1, -1, 129, NULL, DQ | QZ},
};
/* clang-format on */
#define TABLE_LEN (sizeof TABLE / sizeof TABLE[0])

bool rf_dtype_valid(int value)
{
    /* The switch (not the table) decides membership, so that -Wswitch-enum makes the compiler
     * name this place when a type is added; a unit test checks the table against it. */
    /* clang-format off */
    switch ((rf_dtype)value) {
    case RF_DTYPE_F32: case RF_DTYPE_F16: case RF_DTYPE_Q4_0: case RF_DTYPE_Q4_1:
    case RF_DTYPE_Q5_0: case RF_DTYPE_Q5_1: case RF_DTYPE_Q8_0: case RF_DTYPE_Q8_1:
    case RF_DTYPE_Q2_K: case RF_DTYPE_Q3_K: case RF_DTYPE_Q4_K: case RF_DTYPE_Q5_K:
    case RF_DTYPE_Q6_K: case RF_DTYPE_Q8_K: case RF_DTYPE_IQ2_XXS: case RF_DTYPE_IQ2_XS:
    case RF_DTYPE_IQ3_XXS: case RF_DTYPE_IQ1_S: case RF_DTYPE_IQ4_NL: case RF_DTYPE_IQ3_S:
    case RF_DTYPE_IQ2_S: case RF_DTYPE_IQ4_XS: case RF_DTYPE_I8: case RF_DTYPE_I16:
    case RF_DTYPE_I32: case RF_DTYPE_I64: case RF_DTYPE_F64: case RF_DTYPE_IQ1_M:
    case RF_DTYPE_BF16: case RF_DTYPE_TQ1_0: case RF_DTYPE_TQ2_0: case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4: case RF_DTYPE_Q1_0: case RF_DTYPE_Q2_0: case RF_DTYPE_U8:
    case RF_DTYPE_U16: case RF_DTYPE_U32: case RF_DTYPE_U64: case RF_DTYPE_BOOL:
    case RF_DTYPE_C64: case RF_DTYPE_F8_E5M2: case RF_DTYPE_F8_E4M3: case RF_DTYPE_F8_E8M0:
    case RF_DTYPE_F8_E4M3FNUZ: case RF_DTYPE_F8_E5M2FNUZ: case RF_DTYPE_F6_E2M3:
    case RF_DTYPE_F6_E3M2: case RF_DTYPE_F4: case RF_DTYPE_APR_Q4: case RF_DTYPE_APR_Q8:
        return true;
    }
    /* clang-format on */
    return false;
}

const rf_dtype_info *rf_dtype_get(rf_dtype dtype)
{
    if (!rf_dtype_valid((int)dtype))
        return NULL;
    for (size_t i = 0; i < TABLE_LEN; i++)
        if (TABLE[i].dtype == dtype)
            return &TABLE[i];
    return NULL;
}

const char *rf_dtype_name(rf_dtype dtype)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    return info ? info->name : "unknown";
}

bool rf_dtype_from_ggml(uint32_t ggml_code, rf_dtype *out)
{
    for (size_t i = 0; i < TABLE_LEN; i++)
        if (TABLE[i].ggml_code >= 0 && (uint32_t)TABLE[i].ggml_code == ggml_code) {
            *out = TABLE[i].dtype;
            return true;
        }
    return false;
}

bool rf_dtype_from_apr(uint32_t apr_code, rf_dtype *out)
{
    /* spec/apr-v2.md 8.2: codes 8 and 9 are the pre-GH-438 codes of APR_Q4 / APR_Q8 */
    if (apr_code == 8) {
        *out = RF_DTYPE_APR_Q4;
        return true;
    }
    if (apr_code == 9) {
        *out = RF_DTYPE_APR_Q8;
        return true;
    }
    for (size_t i = 0; i < TABLE_LEN; i++)
        if (TABLE[i].apr_code >= 0 && (uint32_t)TABLE[i].apr_code == apr_code) {
            *out = TABLE[i].dtype;
            return true;
        }
    return false;
}

bool rf_dtype_from_st(const char *st_name, rf_dtype *out)
{
    if (!st_name)
        return false;
    for (size_t i = 0; i < TABLE_LEN; i++) /* case-sensitive, as the reference reader is */
        if (TABLE[i].st_name && strcmp(TABLE[i].st_name, st_name) == 0) {
            *out = TABLE[i].dtype;
            return true;
        }
    return false;
}

bool rf_dtype_from_name(const char *name, rf_dtype *out)
{
    if (!name)
        return false;
    for (size_t i = 0; i < TABLE_LEN; i++)
        if (strcasecmp(TABLE[i].name, name) == 0) {
            *out = TABLE[i].dtype;
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
