/* Private: the dtype table's full entries, with each type's kernels (rosetta/dtype.h exposes the
 * facts, rf_dtype_info). quant.c dispatches through them; nothing else lists kernels. */
#ifndef ROSETTA_DTYPE_INTERNAL_H
#define ROSETTA_DTYPE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "rosetta/dtype.h"

/* One past the largest rf_dtype value: the table is indexed by the enum. */
#define RFI_DTYPE_TABLE_SIZE (RF_DTYPE_APR_Q8 + 1)

typedef void (*rfi_quant_fn)(const float *x, void *y, int64_t k);
typedef void (*rfi_dequant_fn)(const void *x, float *y, int64_t k);
typedef void (*rfi_imatrix_fn)(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                               const float *quant_weights);

typedef struct rfi_dtype_traits {
    rf_dtype_info info;        /* what rf_dtype_get returns (flags follow the kernels below) */
    rfi_quant_fn quant[3];     /* by SIMD level (scalar reference, AVX2, AVX-512); NULL: none */
    rfi_dequant_fn dequant[3]; /* by SIMD level; NULL: Rosetta cannot read the values */
    rfi_imatrix_fn imatrix;    /* llama.cpp's weighted quantizer; NULL: no importance matrix */
    bool ignores_imatrix;      /* llama.cpp quantizes without the matrix even when given one */
} rfi_dtype_traits;

/* The entry of dtype, or NULL for a value that is not a member of rf_dtype. */
const rfi_dtype_traits *rfi_dtype_traits_of(rf_dtype dtype);

#endif
