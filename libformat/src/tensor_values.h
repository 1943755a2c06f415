/* Reading a tensor's logical values (row-major, dequantized to F32) in chunks, whatever the
 * format lays its bytes out as: GGUF, SafeTensors and most APR tensors are one flat run of
 * blocks; APR K-quants pad each row (or a 1-D tensor) to whole 256-value super-blocks
 * (docs/formats/apr.md), and APR_Q8 keeps one scale for the whole tensor.
 * Used by the statistics, fingerprint and diff code. Not for: writing, or tensors whose dtype
 * has no dequantizer (rfi_tv_open refuses them with RF_ERR_UNSUPPORTED). */
#ifndef ROSETTA_TENSOR_VALUES_H
#define ROSETTA_TENSOR_VALUES_H

#include <stdint.h>

#include "rosetta/dtype.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

/* Values per chunk: 64 Ki floats (256 KiB), a multiple of every block size. Callers size their
 * buffers with it. */
#define TV_CHUNK (UINT64_C(1) << 16)

typedef struct tv_reader {
    const rf_tensor *tensor;
    const rf_dtype_info *info;
    uint64_t count; /* logical values */
} tv_reader;

/* Prepares r to read t of model m (m may be NULL: then the mapped-file check is skipped). Checks
 * that the dtype can be dequantized, that the byte count fits the shape and that the bytes lie in
 * their mapped file (rf_tensor_check: the layout comes from the model view). Errors name no
 * tensor (callers prefix it). */
rf_status rfi_tv_open(const rf_model *m, const rf_tensor *t, tv_reader *r, rf_error *err);

/* Writes the logical values [first, first + n) to out (n floats). first must be a multiple of
 * the dtype's block (rfi_tv_granule) and n at most TV_CHUNK. Reads mapped data: call it under
 * rf_model_mapped_call. */
rf_status rfi_tv_read(tv_reader *r, uint64_t first, uint64_t n, float *out, rf_error *err);

/* Like rfi_tv_read, but returns a pointer to the values: straight into the mapped data when the
 * tensor is flat F32 stored 4-byte aligned (no copy), else into buf after decoding them there.
 * NULL on error. */
const float *rfi_tv_view(tv_reader *r, uint64_t first, uint64_t n, float *buf, rf_error *err);

/* The block size reads must start on (1 for plain types). */
uint64_t rfi_tv_granule(const tv_reader *r);

#endif
