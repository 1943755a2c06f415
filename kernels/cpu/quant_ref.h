/* Scalar reference quantizers and dequantizers. Their output is byte-identical to llama.cpp's
 * reference code (ggml-quants.c) for the same F32 input on x86-64; tests/oracle proves it against
 * a build of ggml. Every fast variant (SIMD, threads, GPU) is tested against these functions.
 * Not for: speed (see the public API in rosetta/quant.h), argument checking (the public API
 * validates dtypes and sizes before calling here).
 *
 * Conventions shared by every function below:
 *   - x / y never overlap. Quantized data is addressed as bytes (blocks have odd sizes and no
 *     alignment is assumed).
 *   - k is the number of elements; for block types it must be a multiple of the block size
 *     (32 for q4_0 q4_1 q5_0 q5_1 q8_0 q8_1 iq4_nl, 256 for the K-quants and iq4_xs). Only the
 *     k / block_size whole blocks are read or written; a remainder is ignored.
 *   - Blocks are independent: quantizing a tensor in one call, row by row or in any chunks of
 *     whole blocks gives the same bytes (the _imatrix variants need whole rows, see below).
 *   - Output bytes equal ggml's quantize_row_<type>_ref, which is also what ggml_quantize_chunk
 *     and llama-quantize produce without an importance matrix. Exceptions, both deliberate:
 *       q8_K: an all-zero block gets bsums = 0 (ggml leaves bsums unwritten there);
 *       iq4_nl: equals ggml_quantize_chunk / quantize_iq4_nl (the path llama-quantize uses), not
 *               ggml's quantize_row_iq4_nl_ref (a cheaper search whose all-zero blocks depend on
 *               the previous block's leftovers).
 *   - Dequantized floats equal ggml's dequantize_row_<type> bit for bit (NaN scales give quiet
 *     NaNs, as ggml's f16 conversion does). */
#ifndef RK_QUANT_REF_H
#define RK_QUANT_REF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- 32-element types ---- */
void rk_quantize_row_q4_0_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_q4_1_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_q5_0_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_q5_1_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_q8_0_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_q8_1_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_iq4_nl_ref(const float *x, void *y, int64_t k);

void rk_dequantize_row_q4_0_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_q4_1_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_q5_0_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_q5_1_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_q8_0_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_q8_1_ref(const void *x, float *y, int64_t k); /* y = q * d (ggml has none) */
void rk_dequantize_row_iq4_nl_ref(const void *x, float *y, int64_t k);

/* ---- 256-element super-block types ---- */
void rk_quantize_row_q2_K_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_q3_K_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_q4_K_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_q5_K_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_q6_K_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_q8_K_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_iq4_xs_ref(const float *x, void *y, int64_t k);

void rk_dequantize_row_q2_K_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_q3_K_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_q4_K_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_q5_K_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_q6_K_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_q8_K_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_iq4_xs_ref(const void *x, float *y, int64_t k);

/* ---- importance-matrix (imatrix) quantizers ----
 * n_rows rows of n_per_row elements each (n_per_row a multiple of the block size), row-major in
 * x and in y. quant_weights holds one importance per column (n_per_row floats), shared by every
 * row, as llama-quantize passes it. Output bytes equal ggml's quantize_<type>(x, y, n_rows,
 * n_per_row, quant_weights) (ggml_quantize_chunk with an imatrix). The weighted path depends on
 * statistics of the whole row (not only the block), so rows must not be split.
 * quant_weights == NULL gives the reference bytes of rk_quantize_row_<type>_ref.
 * Q8_0 has no variant: llama.cpp ignores the imatrix for Q8_0. */
void rk_quantize_row_q4_0_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                  const float *quant_weights);
void rk_quantize_row_q4_1_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                  const float *quant_weights);
void rk_quantize_row_q5_0_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                  const float *quant_weights);
void rk_quantize_row_q5_1_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                  const float *quant_weights);
void rk_quantize_row_q2_K_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                  const float *quant_weights);
void rk_quantize_row_q3_K_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                  const float *quant_weights);
void rk_quantize_row_q4_K_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                  const float *quant_weights);
void rk_quantize_row_q5_K_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                  const float *quant_weights);
void rk_quantize_row_q6_K_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                  const float *quant_weights);
void rk_quantize_row_iq4_nl_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                    const float *quant_weights);
void rk_quantize_row_iq4_xs_imatrix(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                                    const float *quant_weights);

/* ---- aprender types (docs/formats/apr.md); the math lives in kernels/common/apr_quant.h ----
 * k is the tensor's element count, any value >= 0 (no block-size rule).
 * apr_q4: ceil(k / 32) blocks of 18 bytes; the last block may be partial (unused nibbles 0).
 * apr_q8: 4 + k bytes (f32 scale for the whole tensor, then k int8); nothing when k == 0. */
void rk_quantize_row_apr_q4_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_apr_q8_ref(const float *x, void *y, int64_t k);
void rk_dequantize_row_apr_q4_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_apr_q8_ref(const void *x, float *y, int64_t k);

/* ---- f16 / bf16 as ggml converts them ----
 * f16 -> f32 exact (NaN comes out quiet); f32 -> f16 round to nearest even, NaN -> sign | 0x7E00
 * (ggml_fp32_to_fp16_row); bf16 <-> f32 as ggml_bf16_to_fp32_row / ggml_fp32_to_bf16_row_ref.
 * Values are little-endian 16-bit words addressed as bytes. */
void rk_quantize_row_f16_ref(const float *x, void *y, int64_t k);
void rk_quantize_row_bf16_ref(const float *x, void *y, int64_t k);
void rk_dequantize_row_f16_ref(const void *x, float *y, int64_t k);
void rk_dequantize_row_bf16_ref(const void *x, float *y, int64_t k);

#ifdef __cplusplus
}
#endif

#endif
