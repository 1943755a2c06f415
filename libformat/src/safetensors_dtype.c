/* SafeTensors view of the dtype table: element widths in bits (sub-byte F4/F6 included) and the
 * rank of each type in the reference implementation's Dtype enum (the writer's sort key). */
#include "rosetta/safetensors.h"

/* The case lists read better as tables. */
/* clang-format off */

int rf_safetensors_dtype_rank(rf_dtype dtype)
{
    /* Declaration order of `enum Dtype` in huggingface/safetensors tensor.rs. */
    switch (dtype) {
    case RF_DTYPE_BOOL: return 0;
    case RF_DTYPE_F4: return 1;
    case RF_DTYPE_F6_E2M3: return 2;
    case RF_DTYPE_F6_E3M2: return 3;
    case RF_DTYPE_U8: return 4;
    case RF_DTYPE_I8: return 5;
    case RF_DTYPE_F8_E5M2: return 6;
    case RF_DTYPE_F8_E4M3: return 7;
    case RF_DTYPE_F8_E8M0: return 8;
    case RF_DTYPE_F8_E4M3FNUZ: return 9;
    case RF_DTYPE_F8_E5M2FNUZ: return 10;
    case RF_DTYPE_I16: return 11;
    case RF_DTYPE_U16: return 12;
    case RF_DTYPE_F16: return 13;
    case RF_DTYPE_BF16: return 14;
    case RF_DTYPE_I32: return 15;
    case RF_DTYPE_U32: return 16;
    case RF_DTYPE_F32: return 17;
    case RF_DTYPE_C64: return 18;
    case RF_DTYPE_F64: return 19;
    case RF_DTYPE_I64: return 20;
    case RF_DTYPE_U64: return 21;
    case RF_DTYPE_Q4_0: case RF_DTYPE_Q4_1: case RF_DTYPE_Q5_0: case RF_DTYPE_Q5_1:
    case RF_DTYPE_Q8_0: case RF_DTYPE_Q8_1: case RF_DTYPE_Q2_K: case RF_DTYPE_Q3_K:
    case RF_DTYPE_Q4_K: case RF_DTYPE_Q5_K: case RF_DTYPE_Q6_K: case RF_DTYPE_Q8_K:
    case RF_DTYPE_IQ2_XXS: case RF_DTYPE_IQ2_XS: case RF_DTYPE_IQ3_XXS: case RF_DTYPE_IQ1_S:
    case RF_DTYPE_IQ4_NL: case RF_DTYPE_IQ3_S: case RF_DTYPE_IQ2_S: case RF_DTYPE_IQ4_XS:
    case RF_DTYPE_IQ1_M: case RF_DTYPE_TQ1_0: case RF_DTYPE_TQ2_0: case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4: case RF_DTYPE_Q1_0: case RF_DTYPE_Q2_0: case RF_DTYPE_APR_Q4:
    case RF_DTYPE_APR_Q8:
        return -1;
    }
    return -1;
}

unsigned rf_safetensors_dtype_bits(rf_dtype dtype)
{
    switch (dtype) {
    case RF_DTYPE_F4: return 4;
    case RF_DTYPE_F6_E2M3: case RF_DTYPE_F6_E3M2: return 6;
    case RF_DTYPE_BOOL: case RF_DTYPE_U8: case RF_DTYPE_I8: case RF_DTYPE_F8_E5M2:
    case RF_DTYPE_F8_E4M3: case RF_DTYPE_F8_E8M0: case RF_DTYPE_F8_E4M3FNUZ:
    case RF_DTYPE_F8_E5M2FNUZ:
        return 8;
    case RF_DTYPE_I16: case RF_DTYPE_U16: case RF_DTYPE_F16: case RF_DTYPE_BF16: return 16;
    case RF_DTYPE_I32: case RF_DTYPE_U32: case RF_DTYPE_F32: return 32;
    case RF_DTYPE_C64: case RF_DTYPE_F64: case RF_DTYPE_I64: case RF_DTYPE_U64: return 64;
    case RF_DTYPE_Q4_0: case RF_DTYPE_Q4_1: case RF_DTYPE_Q5_0: case RF_DTYPE_Q5_1:
    case RF_DTYPE_Q8_0: case RF_DTYPE_Q8_1: case RF_DTYPE_Q2_K: case RF_DTYPE_Q3_K:
    case RF_DTYPE_Q4_K: case RF_DTYPE_Q5_K: case RF_DTYPE_Q6_K: case RF_DTYPE_Q8_K:
    case RF_DTYPE_IQ2_XXS: case RF_DTYPE_IQ2_XS: case RF_DTYPE_IQ3_XXS: case RF_DTYPE_IQ1_S:
    case RF_DTYPE_IQ4_NL: case RF_DTYPE_IQ3_S: case RF_DTYPE_IQ2_S: case RF_DTYPE_IQ4_XS:
    case RF_DTYPE_IQ1_M: case RF_DTYPE_TQ1_0: case RF_DTYPE_TQ2_0: case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4: case RF_DTYPE_Q1_0: case RF_DTYPE_Q2_0: case RF_DTYPE_APR_Q4:
    case RF_DTYPE_APR_Q8:
        return 0;
    }
    return 0;
}
/* clang-format on */
