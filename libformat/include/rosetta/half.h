/* F16 and BF16 <-> F32 conversion, single values and rows. Round to nearest even; NaN, Inf and
 * subnormals handled exactly (see kernels/common/half.h for the bit rules). */
#ifndef ROSETTA_HALF_H
#define ROSETTA_HALF_H

#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"

#ifdef __cplusplus
extern "C" {
#endif

RF_API float rf_f16_to_f32(uint16_t h);
RF_API uint16_t rf_f32_to_f16(float f);
RF_API float rf_bf16_to_f32(uint16_t b);
RF_API uint16_t rf_f32_to_bf16(float f);

/* Row conversions; src and dst must not overlap. src of the 16-bit forms may be unaligned
 * memory read from a file (it is read byte-wise, little-endian). */
RF_API void rf_f16_to_f32_row(const void *src, float *dst, size_t n);
RF_API void rf_f32_to_f16_row(const float *src, void *dst, size_t n);
RF_API void rf_bf16_to_f32_row(const void *src, float *dst, size_t n);
RF_API void rf_f32_to_bf16_row(const float *src, void *dst, size_t n);

#ifdef __cplusplus
}
#endif
#endif
