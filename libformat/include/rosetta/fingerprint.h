/* Fingerprints of models: per-tensor value statistics with exact percentiles, XXH3-64 digests of
 * the stored bytes and of the canonical values, whole-model digests, the typed config; their JSON
 * form (docs/fingerprint-schema.json), the comparison of a model with a reference fingerprint,
 * and llama.cpp gguf-hash compatible raw hashes. Every field is defined in docs/fingerprint.md.
 * Results never depend on the number of threads.
 * Not for: comparing two models value by value (rosetta/tensor_diff.h). */
#ifndef ROSETTA_FINGERPRINT_H
#define ROSETTA_FINGERPRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- value statistics --------------------------------------------------------------------- */

#define RF_N_PERCENTILES 7

/* The percentile points in percent, in the order of rf_value_stats.percentiles:
 * 1, 5, 25, 50, 75, 95, 99. */
RF_API unsigned rf_percentile_point(int index);

/* Statistics of a tensor's dequantized values. NaN and +-Inf are counted and left out of
 * everything else. min, max, mean, std, l2 and the percentiles are NaN when no value is finite. */
typedef struct rf_value_stats {
    uint64_t count;  /* all values */
    uint64_t finite; /* values that are neither NaN nor infinite */
    uint64_t nan, inf;
    uint64_t zeros; /* +0 and -0 */
    float min, max; /* of the finite values */
    double mean;    /* sum / finite, accumulated in double */
    double std;     /* population standard deviation (divided by finite), in double */
    double l2;      /* sqrt of the sum of squares of the finite values */
    /* Exact order statistics of the finite values ordered as numbers (-0 before +0): the value
     * of rank floor((finite - 1) * p / 100) counted from 0 (numpy.percentile method "lower"). */
    float percentiles[RF_N_PERCENTILES];
} rf_value_stats;

/* Statistics of tensor t of model m (read under the SIGBUS guard of m's files). Fails with
 * RF_ERR_UNSUPPORTED for dtypes without a dequantizer, RF_ERR_FORMAT when the bytes do not fit
 * the shape, RF_ERR_IO when the file was truncated while mapped; the message names the tensor. */
RF_API rf_status rf_tensor_stats(const rf_model *m, const rf_tensor *t, rf_value_stats *out,
                                 rf_error *err);

/* ---- fingerprints -------------------------------------------------------------------------- */

/* Version of the JSON schema written (docs/fingerprint-schema.json, "schema_version"). */
#define RF_FINGERPRINT_SCHEMA_VERSION 1

typedef struct rf_tensor_fingerprint {
    const char *name;      /* as stored in the file */
    const char *canonical; /* canonical name (docs/fingerprint.md): equal across formats */
    const char *dtype;     /* dtype name ("Q4_K"); a read fingerprint may hold names this
                              build does not know */
    int ndim;
    uint64_t shape[RF_MAX_DIMS]; /* row-major */
    uint64_t nbytes;             /* stored bytes */
    uint64_t raw_digest;         /* XXH3-64 of the stored bytes */
    bool has_values;             /* false when the values could not be read */
    const char *values_error;    /* why not (NULL when has_values) */
    uint64_t canonical_digest;   /* XXH3-64 of the values as little-endian F32, row-major */
    rf_value_stats stats;
} rf_tensor_fingerprint;

typedef struct rf_fingerprint rf_fingerprint;

typedef struct rf_fingerprint_options {
    int n_threads; /* 0 = one per online CPU */
    bool raw_only; /* digests of the stored bytes only: no values, statistics or canonical
                      digests (fast; used by the bit-flip tests) */
} rf_fingerprint_options;

/* Fingerprints every tensor of m (opts may be NULL). Tensors whose values cannot be read
 * (unsupported dtype, bytes that do not fit) get has_values = false and a reason; a file
 * truncated while in use fails the whole call (RF_ERR_IO). path is recorded as the file name
 * (NULL: rf_model_path). Returns NULL and fills err on failure. */
RF_API rf_fingerprint *rf_fingerprint_model(const rf_model *m, const char *path,
                                            const rf_fingerprint_options *opts, rf_error *err);
RF_API void rf_fingerprint_free(rf_fingerprint *fp);

RF_API size_t rf_fingerprint_n_tensors(const rf_fingerprint *fp);
RF_API const rf_tensor_fingerprint *rf_fingerprint_tensor(const rf_fingerprint *fp, size_t index);
/* The entry whose canonical name is canonical, or NULL. */
RF_API const rf_tensor_fingerprint *rf_fingerprint_find(const rf_fingerprint *fp,
                                                        const char *canonical);

/* Whole-model digests (docs/fingerprint.md): XXH3-64 over the (canonical name, per-tensor
 * digest) list sorted by canonical name. *canonical is set only when every tensor has values
 * (the function returns false otherwise). */
RF_API uint64_t rf_fingerprint_raw_digest(const rf_fingerprint *fp);
RF_API bool rf_fingerprint_canonical_digest(const rf_fingerprint *fp, uint64_t *canonical);

/* The typed config recorded in the fingerprint (strings owned by fp). */
RF_API const rf_model_config *rf_fingerprint_config(const rf_fingerprint *fp);
RF_API const char *rf_fingerprint_format(const rf_fingerprint *fp); /* "gguf", "apr" ... */
RF_API const char *rf_fingerprint_file(const rf_fingerprint *fp);

/* The JSON document of fp (schema docs/fingerprint-schema.json), indented when pretty, ending
 * with a newline. The caller frees the text with free(). NULL on allocation failure. */
RF_API char *rf_fingerprint_to_json(const rf_fingerprint *fp, bool pretty);

/* Writes the JSON document of fp to path through the atomic writer (a temp file renamed into
 * place: nothing appears under path on failure). RF_ERR_WRITE names the path. */
RF_API rf_status rf_fingerprint_write(const rf_fingerprint *fp, const char *path, bool pretty,
                                      rf_error *err);

/* Reads a fingerprint JSON document. Fails with RF_ERR_FORMAT naming the first field that is
 * missing or of the wrong type ("tensors[3].raw_xxh3: expected 16 hex digits"), or
 * RF_ERR_UNSUPPORTED for a schema_version this build does not know. */
RF_API rf_fingerprint *rf_fingerprint_from_json(const char *text, size_t len, rf_error *err);

/* Reads the fingerprint JSON file at path: RF_ERR_IO when it cannot be read, otherwise as
 * rf_fingerprint_from_json; messages start with the path. */
RF_API rf_fingerprint *rf_fingerprint_read(const char *path, rf_error *err);

/* ---- checking a model against a reference fingerprint -------------------------------------- */

typedef struct rf_fingerprint_check_options {
    double tolerance_sigma; /* statistics tolerance in reference standard deviations
                               (<= 0: the default, 0.25) */
    bool allow_requantized; /* a tensor in the reference's quantized dtype whose bytes differ
                               is compared by statistics instead of failing on its digests */
} rf_fingerprint_check_options;

/* How a tensor of the checked model relates to the reference. */
typedef enum rf_check_verdict {
    RF_CHECK_RAW,        /* same dtype and stored bytes (raw digest equal) */
    RF_CHECK_CANONICAL,  /* same values (canonical digest equal), stored differently */
    RF_CHECK_STATISTICS, /* a lossy conversion whose statistics are within tolerance */
    RF_CHECK_DEVIATES,   /* at least one deviation is listed for it */
    RF_CHECK_MISSING,    /* in the reference only */
    RF_CHECK_EXTRA,      /* in the checked model only */
} rf_check_verdict;

RF_API const char *rf_check_verdict_name(rf_check_verdict verdict);

/* One deviating field: tensor is the tensor's name in the checked model (its reference name
 * when it is missing there; NULL for model-level fields such as "config.hidden_size"). */
typedef struct rf_check_deviation {
    const char *tensor;
    const char *field;    /* "raw_xxh3", "canonical_xxh3", "stats.std", "shape", "missing" ... */
    const char *expected; /* the reference's value as text */
    const char *found;    /* the checked model's value as text */
    const char *detail;   /* "off by 0.73 sigma (tolerance 0.25)", or "" */
} rf_check_deviation;

typedef struct rf_check_tensor {
    const char *name;      /* in the checked model (reference name for a missing tensor) */
    const char *canonical; /* canonical name */
    rf_check_verdict verdict;
} rf_check_tensor;

typedef struct rf_check_report rf_check_report;

/* Compares fp (of the checked model) with ref: tensors paired by canonical name; digests where
 * they must match, statistics within tolerance otherwise (rules in docs/fingerprint.md). Returns
 * NULL only on allocation failure. */
RF_API rf_check_report *rf_fingerprint_check(const rf_fingerprint *ref, const rf_fingerprint *fp,
                                             const rf_fingerprint_check_options *opts,
                                             rf_error *err);
RF_API void rf_check_report_free(rf_check_report *report);
RF_API bool rf_check_report_passed(const rf_check_report *report);
RF_API size_t rf_check_report_n_deviations(const rf_check_report *report);
RF_API const rf_check_deviation *rf_check_report_deviation(const rf_check_report *report,
                                                           size_t index);
RF_API size_t rf_check_report_n_tensors(const rf_check_report *report);
RF_API const rf_check_tensor *rf_check_report_tensor(const rf_check_report *report, size_t index);

/* ---- llama.cpp gguf-hash compatible raw hashes ---------------------------------------------- */

typedef struct rf_raw_hash {
    uint64_t xxh64;     /* XXH64 with seed 0 */
    uint8_t sha256[32]; /* SHA-256 digest bytes */
} rf_raw_hash;

/* XXH64 and SHA-256 of each tensor's stored bytes (per_tensor[i] for rf_model_tensor(m, i),
 * rf_model_n_tensors(m) entries) and of all tensors' bytes concatenated in the model's tensor
 * order (*whole), as llama.cpp's gguf-hash computes them. n_threads 0 = all CPUs. */
RF_API rf_status rf_model_raw_hashes(const rf_model *m, int n_threads, rf_raw_hash *per_tensor,
                                     rf_raw_hash *whole, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
