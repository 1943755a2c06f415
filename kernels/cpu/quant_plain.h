/* Per-element types as kernels: F32 copied, and the plain float and integer types widened to F32
 * the way C converts them (round to nearest), read byte-wise from unaligned little-endian data.
 * Same signatures as the block kernels of quant_ref.h, so that one table (libformat's dtype
 * table) holds every type's kernels. Not for: block types (quant_ref.h). */
#ifndef RK_QUANT_PLAIN_H
#define RK_QUANT_PLAIN_H

#include <stdint.h>

void rk_quantize_row_f32_ref(const float *x, void *y, int64_t k); /* a copy */
void rk_dequantize_row_f32_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_f64_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_i8_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_i16_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_i32_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_i64_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_u8_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_u16_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_u32_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_u64_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_bool_ref(const void *x, float *y, int64_t k); /* 0 or 1 */

#endif
