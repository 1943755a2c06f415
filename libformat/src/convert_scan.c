/* The source scan of rf_convert: NaN and infinity counts on raw float data and on F32 values
 * (the stop-the-line rule quality.nan_inf).
 * Not for: the other data-quality rules (rf_contract_check runs those for apr validate). */
#include <stdio.h>
#include <string.h>

#include "convert_internal.h"
#include "rosetta/quant.h"
#include "io.h"

/* A value is NaN or infinite when its exponent bits are all ones; the mantissa tells which. */
static void count(nonfinite *out, uint64_t index, bool nan)
{
    if (out->n_nan + out->n_inf == 0)
        out->first = index;
    if (nan)
        out->n_nan++;
    else
        out->n_inf++;
}

void rfi_scan_f32(const float *v, uint64_t n, nonfinite *out)
{
    memset(out, 0, sizeof *out);
    const uint32_t *bits = (const void *)v;
    /* a branch-free pass first: the common case has nothing to report */
    uint32_t any = 0;
    for (uint64_t i = 0; i < n; i++)
        any |= (uint32_t)((bits[i] & 0x7f800000u) == 0x7f800000u);
    if (!any)
        return;
    for (uint64_t i = 0; i < n; i++)
        if ((bits[i] & 0x7f800000u) == 0x7f800000u)
            count(out, i, (bits[i] & 0x007fffffu) != 0);
}

/* 16-bit values (F16 or BF16, by their exponent and mantissa masks): a first pass over pieces
 * copied into an aligned buffer, which the compiler vectorizes; the exact count only when it
 * found something. */
static void scan_16(const uint8_t *data, uint64_t n, uint16_t exp_mask, uint16_t man_mask,
                    nonfinite *out)
{
    uint16_t piece[2048];
    unsigned any = 0;
    for (uint64_t at = 0; at < n && !any; at += 2048) {
        size_t k = n - at < 2048 ? (size_t)(n - at) : 2048;
        memcpy(piece, data + 2 * at, 2 * k);
        for (size_t i = 0; i < k; i++)
            any |= (unsigned)((piece[i] & exp_mask) == exp_mask);
    }
    if (!any)
        return;
    for (uint64_t i = 0; i < n; i++) {
        uint16_t x = (uint16_t)(data[2 * i] | (data[2 * i + 1] << 8));
        if ((x & exp_mask) == exp_mask)
            count(out, i, (x & man_mask) != 0);
    }
}

bool rfi_scan_raw(rf_dtype dtype, const uint8_t *data, uint64_t nbytes, nonfinite *out)
{
    memset(out, 0, sizeof *out);
    switch (dtype) {
    case RF_DTYPE_F32:
        if (((uintptr_t)data % 4) == 0) {
            rfi_scan_f32((const void *)data, nbytes / 4, out);
        } else {
            for (uint64_t i = 0; i < nbytes / 4; i++) {
                uint32_t x = rf_load_le32(data + 4 * i);
                if ((x & 0x7f800000u) == 0x7f800000u)
                    count(out, i, (x & 0x007fffffu) != 0);
            }
        }
        return true;
    case RF_DTYPE_F16: scan_16(data, nbytes / 2, 0x7c00u, 0x03ffu, out); return true;
    case RF_DTYPE_BF16: scan_16(data, nbytes / 2, 0x7f80u, 0x007fu, out); return true;
    case RF_DTYPE_F64:
        for (uint64_t i = 0; i < nbytes / 8; i++) {
            uint64_t x = rf_load_le64(data + 8 * i);
            if ((x & 0x7ff0000000000000ull) == 0x7ff0000000000000ull)
                count(out, i, (x & 0x000fffffffffffffull) != 0);
        }
        return true;
    case RF_DTYPE_Q4_0:
    case RF_DTYPE_Q4_1:
    case RF_DTYPE_Q5_0:
    case RF_DTYPE_Q5_1:
    case RF_DTYPE_Q8_0:
    case RF_DTYPE_Q8_1:
    case RF_DTYPE_Q2_K:
    case RF_DTYPE_Q3_K:
    case RF_DTYPE_Q4_K:
    case RF_DTYPE_Q5_K:
    case RF_DTYPE_Q6_K:
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
    case RF_DTYPE_IQ1_M:
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
    case RF_DTYPE_APR_Q4:
    case RF_DTYPE_APR_Q8: return false;
    }
    return false;
}

uint64_t rfi_chunk_elems(const rf_tensor *t, uint64_t n)
{
    const rf_dtype_info *info = rf_dtype_get(t->dtype);
    if (info == NULL || n <= CHUNK_ELEMS)
        return n;
    return CHUNK_ELEMS - CHUNK_ELEMS % (info->block_elems ? info->block_elems : 1);
}

void rfi_value_bytes(const rf_tensor *t, uint64_t first, uint64_t count, uint64_t n, uint64_t *off,
                     uint64_t *len)
{
    const rf_dtype_info *info = rf_dtype_get(t->dtype);
    uint64_t block = info && info->block_elems ? info->block_elems : 1;
    uint64_t bytes = info ? info->block_bytes : 0;
    uint64_t start = first == 0 ? 0 : first / block * bytes;
    uint64_t end = first + count >= n ? t->nbytes : (first + count) / block * bytes;
    if (start > t->nbytes)
        start = t->nbytes;
    if (end > t->nbytes || end < start)
        end = t->nbytes < start ? start : t->nbytes;
    *off = start;
    *len = end - start;
}
