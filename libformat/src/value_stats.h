/* Value statistics of one tensor with exact percentiles, streamed in chunks (docs/fingerprint.md
 * defines every field). Shared by rf_tensor_stats and the fingerprint.
 * Not for: threads (callers run one tensor per thread; results never depend on that). */
#ifndef ROSETTA_VALUE_STATS_H
#define ROSETTA_VALUE_STATS_H

#include <stdint.h>

#include "rosetta/fingerprint.h"
#include "tensor_values.h"

/* Scratch memory of one worker (about 4.5 MiB); reused from tensor to tensor. */
typedef struct vs_work vs_work;

/* NULL when memory runs out. */
vs_work *rfi_vs_work_new(void);
void rfi_vs_work_free(vs_work *w);

/* Computes the statistics of t in two streaming passes (the second only when a percentile is not
 * settled by the first). When canonical_digest is not NULL it receives the XXH3-64 of the
 * canonical values (the logical values as little-endian F32, row-major); raw_digest (nullable)
 * is the XXH3-64 of all t's stored bytes when the caller has it, reused for flat F32 tensors,
 * whose canonical bytes are the stored bytes. Reads mapped data: call it under
 * rf_model_mapped_call. Errors carry no tensor name. */
rf_status rfi_vs_tensor(vs_work *w, const rf_model *m, const rf_tensor *t, rf_value_stats *out,
                        uint64_t *canonical_digest, const uint64_t *raw_digest, rf_error *err);

#endif
