/* Reading a tensor's logical values (row-major, dequantized to F32) in chunks, whatever the
 * format lays its bytes out as: GGUF, SafeTensors and most APR tensors are one flat run of
 * blocks; APR K-quants pad each row (or a 1-D tensor) to whole 256-value super-blocks
 * (docs/formats/apr.md), and APR_Q8 keeps one scale for the whole tensor.
 * Used by the statistics, fingerprint and diff code. Not for: writing, or tensors whose dtype
 * has no dequantizer (tv_open refuses them with RF_ERR_UNSUPPORTED). */
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
    uint64_t count;                /* logical values */
    uint64_t rows;                 /* 1 for flat layouts */
    uint64_t cols;                 /* logical values per row (count for flat layouts) */
    uint64_t row_elems;            /* values a row decodes to (cols plus padding) */
    uint64_t row_bytes;            /* bytes per row */
    uint64_t need;                 /* bytes the layout takes (<= tensor->nbytes) */
    uint8_t scratch[TV_CHUNK + 4]; /* an APR_Q8 range: its scale and int8 values */
    float block[256];              /* a block cut by a read */
} tv_reader;

/* Prepares r to read t of model m (m may be NULL: the flat ggml layout is assumed). Checks that
 * the dtype can be dequantized, that the byte count fits the shape and that the bytes lie in
 * their mapped file. Errors name no tensor (callers prefix it). r is large (about 260 KiB):
 * allocate it, do not put it on a thread's stack. */
rf_status tv_open(const rf_model *m, const rf_tensor *t, tv_reader *r, rf_error *err);

/* Writes the logical values [first, first + n) to out (n floats). first must be a multiple of
 * the dtype's block (tv_granule) and n at most TV_CHUNK. Reads mapped data: call it under
 * rf_model_mapped_call. */
rf_status tv_read(tv_reader *r, uint64_t first, uint64_t n, float *out, rf_error *err);

/* Like tv_read, but returns a pointer to the values: straight into the mapped data when the
 * tensor is flat F32 stored 4-byte aligned (no copy), else into buf after decoding them there.
 * NULL on error. */
const float *tv_view(tv_reader *r, uint64_t first, uint64_t n, float *buf, rf_error *err);

/* The block size reads must start on (1 for plain types). */
uint64_t tv_granule(const tv_reader *r);

#endif
