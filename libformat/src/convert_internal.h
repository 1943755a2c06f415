/* Private: the parts of rf_convert that live outside convert.c (not installed): the source scan
 * (NaN / Inf), the provenance record and the keys Rosetta carries so
 * that a round trip loses nothing, and the page release that keeps memory bounded. */
#ifndef ROSETTA_CONVERT_INTERNAL_H
#define ROSETTA_CONVERT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "model_internal.h"
#include "rosetta/convert.h"

/* ---- the source scan (convert_scan.c) ----------------------------------------------------- */

/* Non-finite values found in a tensor: how many NaN and infinities, and the first index. */
typedef struct nonfinite {
    uint64_t n_nan, n_inf;
    uint64_t first;
} nonfinite;

/* Counts NaN and infinite values of the n F32 values at v into *out (zeroed first). */
void rfi_scan_f32(const float *v, uint64_t n, nonfinite *out);

/* Counts them in raw data of a plain float dtype (F32, F16, BF16, F64), read as stored
 * (little-endian, any alignment). false when dtype is not one of those (integer dtypes hold
 * no NaN; quantized ones must be dequantized first). */
bool rfi_scan_raw(rf_dtype dtype, const uint8_t *data, uint64_t nbytes, nonfinite *out);

/* Bytes of raw data the source scan digests and checks together, while they are in the
 * cache (256 KiB: a multiple of every element size). */
#define SCAN_BLOCK (UINT64_C(256) << 10)

/* Values read at a time when a pass streams through a tensor (1 Mi: 4 MiB as F32). */
#define CHUNK_ELEMS (UINT64_C(1) << 20)

/* The chunk of t's n values a streaming pass reads at a time (rf_tensor_dequantize_range):
 * CHUNK_ELEMS rounded down to t's block, so that pieces start on block boundaries, or n when t
 * is smaller. */
uint64_t rfi_chunk_elems(const rf_tensor *t, uint64_t n);

/* The bytes of t that hold values [first, first + count) of its n (the last range runs to the
 * end of its data), for releasing their pages; approximate for rows with a row_stride, which
 * is harmless: a page released early is read again from the page cache. */
void rfi_value_bytes(const rf_tensor *t, uint64_t first, uint64_t count, uint64_t n, uint64_t *off,
                     uint64_t *len);

/* ---- the fields of contracts/metadata-map.json (convert_fields.c) ------------------------------
 */

typedef struct fields_result {
    size_t n_checked, n_differ;
    char fields[256]; /* the names of the fields that differ, comma-separated */
    char first[512];  /* the first difference: "pad_token_id: 997 in the source, none ..." */
} fields_result;

/* Compares every configuration and tokenizer field the metadata map lists (read from the
 * contracts directory) between src and out; differences go to *r. Errors: the map cannot be
 * read, or names a field the model view does not have. */
rf_status rfi_fields_compare(const rf_model *src, const rf_model *out, fields_result *r,
                             rf_error *err);

/* ---- provenance (convert_provenance.c) ---------------------------------------------------- */

/* What the provenance record says, besides the source model itself. */
typedef struct provenance_facts {
    const rf_convert_params *p;
    rf_format format;   /* the output format */
    const char *digest; /* source_digest */
    const rf_quant_plan *plan;
} provenance_facts;

/* The compact JSON of the record (docs/convert.md): source, source_format, source_digest,
 * rosetta_version, options, and created (from SOURCE_DATE_EPOCH only). Stored in store. */
rf_status rfi_provenance_record(const rf_model *src, const provenance_facts *f, rf_model *store,
                                const char **json, rf_error *err);

/* Appends to store (an rf_model used as a key/value list) the keys of the output format that
 * carry the record and what the format's reference writer would drop from src: APR
 * rosetta.provenance (a JSON object), the token types, padding id and BOS flag of a model whose
 * APR metadata is synthesized from SafeTensors, the companion files as rosetta.hf.<file>, and
 * a GGUF source's general.* strings as rosetta.gguf.general; GGUF rosetta.provenance.* and
 * rosetta.hf.<file> strings, and the general.* strings an APR source carries. */
rf_status rfi_provenance_keys(const rf_model *src, rf_format format, const char *record,
                              rf_model *store, rf_error *err);

/* The "hf.<file>" companion values (JSON) carried by src as rosetta.hf.<file> (APR: JSON values,
 * GGUF: strings), appended to out so that a SafeTensors writer reproduces the files. */
rf_status rfi_provenance_companions(const rf_model *src, rf_model *out, rf_error *err);

/* Whether key is one a new record replaces (rosetta.provenance and rosetta.provenance.*). */
bool rfi_provenance_key(const char *key);

#endif
