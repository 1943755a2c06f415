/* Importance matrices ("imatrix") as llama.cpp's llama-imatrix writes them, read for quantizing
 * with `--imatrix`. Two on-disk forms (docs/tools-quantize.md describes both):
 *   - GGUF (current): for each weight tensor NAME, an F32 tensor "NAME.in_sum2" of ne[0] x
 *     n_expert sums of squared activations and an F32 tensor "NAME.counts" of n_expert counts,
 *     plus the keys imatrix.datasets (string array), imatrix.chunk_count and imatrix.chunk_size.
 *   - legacy ".dat": little-endian i32 n_entries, then per entry i32 name length, the name bytes,
 *     i32 ncall, i32 nval, nval f32 values; optionally i32 chunk count, i32 length and the
 *     dataset name.
 * Values are normalized exactly as llama-quantize does before quantizing: GGUF sums divided by
 * the (rounded) count of their expert, or 1 where the count is 0; legacy values divided by ncall
 * when ncall > 0. Not for: computing an imatrix (that needs inference). */
#ifndef ROSETTA_IMATRIX_H
#define ROSETTA_IMATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rf_imatrix_format {
    RF_IMATRIX_GGUF,
    RF_IMATRIX_LEGACY,
} rf_imatrix_format;

typedef struct rf_imatrix rf_imatrix;

/* Reads and normalizes the importance matrix at path (GGUF when it starts with "GGUF", legacy
 * otherwise). Fails with RF_ERR_IO (unreadable), RF_ERR_FORMAT (truncated or inconsistent: a sums
 * tensor without counts, sizes that do not divide, non-F32 tensors, missing imatrix.* keys, a
 * non-finite value; the message names the file, the entry and the offset where known). */
RF_API rf_imatrix *rf_imatrix_open(const char *path, rf_error *err);
RF_API void rf_imatrix_free(rf_imatrix *im);

RF_API rf_imatrix_format rf_imatrix_format_of(const rf_imatrix *im);
RF_API size_t rf_imatrix_n_entries(const rf_imatrix *im);
/* Name of entry i (a GGUF tensor name such as "blk.0.attn_q.weight"), in name order. */
RF_API const char *rf_imatrix_entry_name(const rf_imatrix *im, size_t i);
/* Normalized importances for tensor name (n_values = ne[0] x n_expert, expert-major), or NULL. */
RF_API const float *rf_imatrix_find(const rf_imatrix *im, const char *name, uint64_t *n_values);
/* First dataset name recorded in the file, or NULL. */
RF_API const char *rf_imatrix_dataset(const rf_imatrix *im);
/* Number of chunks the matrix was computed on (0 when not recorded). */
RF_API uint32_t rf_imatrix_chunk_count(const rf_imatrix *im);

#ifdef __cplusplus
}
#endif
#endif
