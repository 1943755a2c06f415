/* Quantization and dequantization between F32 and every dtype Rosetta reads or writes.
 * Quantizers produce llama.cpp's reference bytes (docs/formats/quantization.md); the output never
 * depends on the number of threads or on the SIMD level of the CPU.
 * Not for: choosing per-tensor types (the llama-quantize mixes) or writing files. */
#ifndef ROSETTA_QUANT_H
#define ROSETTA_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/dtype.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of rf_quantize. A NULL pointer means the defaults (one thread). */
typedef struct rf_quant_options {
    int n_threads; /* worker threads; 0 = one per online CPU, 1 = the calling thread only */
} rf_quant_options;

/* The SIMD level of this CPU ("scalar", "avx2" or "avx512"), and the level the kernels use: the
 * CPU's, or a lower one when the environment variable ROSETTA_SIMD (scalar, avx2, avx512) asks
 * for it. The bytes rf_quantize writes never depend on it. */
RF_API const char *rf_simd_cpu(void);
RF_API const char *rf_simd_active(void);

/* Whether rf_dequantize / rf_quantize handle dtype. These agree with the dtype table's
 * RF_DTYPE_CAN_DEQUANTIZE / RF_DTYPE_CAN_QUANTIZE flags. */
RF_API bool rf_can_dequantize(rf_dtype dtype);
RF_API bool rf_can_quantize(rf_dtype dtype);

/* Whether rf_quantize uses an importance matrix for dtype: Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K,
 * Q4_K, Q5_K and Q6_K follow llama.cpp's weighted path (same bytes); Q8_0, F16, BF16 and F32
 * ignore the matrix, as llama.cpp does; other dtypes refuse it. */
RF_API bool rf_quant_uses_imatrix(rf_dtype dtype);

/* Bytes of one row of n_per_row elements of dtype. Block types need n_per_row to be a multiple
 * of the block (RF_ERR_ARGUMENT otherwise, naming both numbers). APR_Q4 and APR_Q8 are flat
 * types (apr-v2.md): the result is the size of a flat run of n_per_row elements. */
RF_API rf_status rf_quant_row_bytes(rf_dtype dtype, uint64_t n_per_row, uint64_t *out,
                                    rf_error *err);

/* Bytes rf_quantize writes for n_rows rows of n_per_row elements: n_rows x row bytes for block
 * types, the flat size of n_rows x n_per_row elements for APR_Q4 / APR_Q8. */
RF_API rf_status rf_quant_bytes(rf_dtype dtype, uint64_t n_rows, uint64_t n_per_row, uint64_t *out,
                                rf_error *err);

/* Converts n_elements values of dtype at src (any alignment, little-endian) to F32 in dst.
 * Block types need n_elements to be a multiple of the block, except APR_Q4 (partial last
 * block); APR_Q8 reads its 4-byte scale and n_elements int8. Integer types and BOOL convert
 * their values (I64/U64 round to the nearest float). Types without a dequantizer (IQ2/IQ3/IQ1,
 * TQ, MXFP4, FP8 ...) fail with RF_ERR_UNSUPPORTED "unsupported dtype NAME"; dst is then not
 * written. src must hold exactly rf_dtype_flat_bytes(dtype, n_elements) bytes. src may be a
 * mapped file: a read past the end of one that another process truncated fails with RF_ERR_IO
 * "<file>: file changed while in use: ..." instead of killing the process
 * (rf_model_mapped_call). */
RF_API rf_status rf_dequantize(rf_dtype dtype, const void *src, float *dst, uint64_t n_elements,
                               rf_error *err);

/* Quantizes n_rows rows of n_per_row F32 values (row-major, src) to dtype in dst, which must
 * hold rf_quant_bytes() bytes. Blocks never cross rows, except for the flat APR types.
 * imatrix (nullable) holds n_per_row importances, one per column, for dtypes where
 * rf_quant_uses_imatrix() is true; other quantized dtypes refuse it (RF_ERR_UNSUPPORTED).
 * opts may be NULL. The bytes are identical for every thread count and SIMD level.
 * Fails with RF_ERR_ARGUMENT when n_per_row is not a multiple of the block, RF_ERR_UNSUPPORTED
 * for dtypes Rosetta cannot produce, RF_ERR_NOMEM when threads cannot be started. */
RF_API rf_status rf_quantize(rf_dtype dtype, const float *src, void *dst, uint64_t n_rows,
                             uint64_t n_per_row, const float *imatrix, const rf_quant_options *opts,
                             rf_error *err);

/* Dequantizes a whole tensor into dst (rf_shape_elements(shape) floats), in any format's
 * layout (row_stride, APR's padded blocks, APR_Q8's scale). Checks that nbytes agrees with
 * dtype, shape and layout (RF_ERR_FORMAT naming the tensor otherwise). */
RF_API rf_status rf_tensor_dequantize(const rf_tensor *tensor, float *dst, rf_error *err);

/* Values [first, first + n) of the tensor in row-major order (padding never shows) into dst,
 * n floats: for streaming a big tensor through a small buffer. Any range inside the tensor
 * works (a block only partly wanted is decoded whole into a small buffer); ranges that start
 * and end on block boundaries are the fast case. RF_ERR_ARGUMENT for a range outside it. */
RF_API rf_status rf_tensor_dequantize_range(const rf_tensor *tensor, uint64_t first, uint64_t n,
                                            float *dst, rf_error *err);

/* Checks that a tensor's bytes are all there: its layout accounts for nbytes exactly, data is
 * present, and data that lies in one of model's mapped files ends inside it (model may be
 * NULL). RF_ERR_FORMAT naming the tensor otherwise. */
RF_API rf_status rf_tensor_check(const rf_model *model, const rf_tensor *tensor, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
