/* SIMD quantizers and dequantizers (quant_avx2.c, quant_avx512.c), same signatures as the scalar
 * reference kernels of quant_ref.h: quantize k F32 values (k a multiple of the block) into
 * k / block consecutive blocks, or the reverse. Each variant gives exactly the bytes (and
 * float bits) of the reference; blocks the fast path does not handle (non-finite input, scales
 * whose inverse overflows) are passed to the reference kernel.
 * Call a variant only when rk_simd_active() reports its level.
 * Not for: choosing a variant (libformat/src/quant.c does that). */
#ifndef RK_QUANT_DISPATCH_H
#define RK_QUANT_DISPATCH_H

#include <stdint.h>

void rk_quantize_row_q4_0_avx2(const float *x, void *y, int64_t k);
void rk_quantize_row_q5_0_avx2(const float *x, void *y, int64_t k);
void rk_quantize_row_q8_0_avx2(const float *x, void *y, int64_t k);
void rk_quantize_row_q8_K_avx2(const float *x, void *y, int64_t k);
void rk_quantize_row_q4_K_avx2(const float *x, void *y, int64_t k);
void rk_quantize_row_q5_K_avx2(const float *x, void *y, int64_t k);
void rk_quantize_row_q6_K_avx2(const float *x, void *y, int64_t k);
void rk_quantize_row_f16_avx2(const float *x, void *y, int64_t k);
void rk_quantize_row_bf16_avx2(const float *x, void *y, int64_t k);
void rk_dequantize_row_q4_0_avx2(const void *x, float *y, int64_t k);
void rk_dequantize_row_q5_0_avx2(const void *x, float *y, int64_t k);
void rk_dequantize_row_q8_0_avx2(const void *x, float *y, int64_t k);
void rk_dequantize_row_q4_K_avx2(const void *x, float *y, int64_t k);
void rk_dequantize_row_q5_K_avx2(const void *x, float *y, int64_t k);
void rk_dequantize_row_q6_K_avx2(const void *x, float *y, int64_t k);
void rk_dequantize_row_f16_avx2(const void *x, float *y, int64_t k);
void rk_dequantize_row_bf16_avx2(const void *x, float *y, int64_t k);

void rk_quantize_row_q4_0_avx512(const float *x, void *y, int64_t k);
void rk_quantize_row_q5_0_avx512(const float *x, void *y, int64_t k);
void rk_quantize_row_q8_0_avx512(const float *x, void *y, int64_t k);
void rk_quantize_row_q8_K_avx512(const float *x, void *y, int64_t k);
void rk_quantize_row_q4_K_avx512(const float *x, void *y, int64_t k);
void rk_quantize_row_q5_K_avx512(const float *x, void *y, int64_t k);
void rk_quantize_row_q6_K_avx512(const float *x, void *y, int64_t k);
void rk_quantize_row_f16_avx512(const float *x, void *y, int64_t k);
void rk_quantize_row_bf16_avx512(const float *x, void *y, int64_t k);
void rk_dequantize_row_q4_0_avx512(const void *x, float *y, int64_t k);
void rk_dequantize_row_q5_0_avx512(const void *x, float *y, int64_t k);
void rk_dequantize_row_q8_0_avx512(const void *x, float *y, int64_t k);
void rk_dequantize_row_q4_K_avx512(const void *x, float *y, int64_t k);
void rk_dequantize_row_q5_K_avx512(const void *x, float *y, int64_t k);
void rk_dequantize_row_q6_K_avx512(const void *x, float *y, int64_t k);
void rk_dequantize_row_f16_avx512(const void *x, float *y, int64_t k);
void rk_dequantize_row_bf16_avx512(const void *x, float *y, int64_t k);

#endif
