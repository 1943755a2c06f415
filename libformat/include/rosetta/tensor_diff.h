/* Value-by-value comparison of the tensors of two models in any formats: tensors paired by
 * canonical name, dequantized values compared in one streaming pass with bounded memory (one
 * pair at a time, in chunks), transpositions recognised by their values. Metrics, status
 * classes and default tolerances are defined in docs/diff-tensors.md.
 * Not for: comparing a model with a stored fingerprint (rosetta/fingerprint.h). */
#ifndef ROSETTA_TENSOR_DIFF_H
#define ROSETTA_TENSOR_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rf_diff_class {
    RF_DIFF_IDENTICAL,        /* same dtype, shape and stored bytes */
    RF_DIFF_SAME_VALUES,      /* every dequantized value bit-identical, stored differently */
    RF_DIFF_WITHIN_TOLERANCE, /* max |a - b| within the tolerance */
    RF_DIFF_SMALL,            /* beyond tolerance, max |a - b| < 0.01 */
    RF_DIFF_MEDIUM,           /* beyond tolerance, max |a - b| < 0.1 */
    RF_DIFF_LARGE,            /* beyond tolerance, max |a - b| < 1 */
    RF_DIFF_TRANSPOSED,       /* 2-D shapes swapped and B equals A transposed within tolerance */
    RF_DIFF_CRITICAL,         /* max |a - b| >= 1, NaN/Inf where the other has a number, a shape
                                 mismatch that is no transposition, or unreadable values */
    RF_DIFF_ONLY_IN_A,        /* no tensor of the same canonical name in B */
    RF_DIFF_ONLY_IN_B,
} rf_diff_class;

/* "identical", "same-values", "within-tolerance", "small", "medium", "large", "transposed",
 * "critical", "only-in-a", "only-in-b". */
RF_API const char *rf_diff_class_name(rf_diff_class c);

/* Whether the class passes (identical, same-values, within-tolerance). */
RF_API bool rf_diff_class_ok(rf_diff_class c);

typedef struct rf_tensor_diff {
    const char *name_a, *name_b; /* NULL on the side that lacks the tensor */
    const char *canonical;
    rf_dtype dtype_a, dtype_b;
    int ndim_a, ndim_b;
    uint64_t shape_a[RF_MAX_DIMS], shape_b[RF_MAX_DIMS]; /* row-major */
    rf_diff_class cls;
    bool compared;       /* values were compared (as stored, or A against B transposed) */
    uint64_t count;      /* values compared */
    uint64_t nonfinite;  /* positions where one side is NaN/Inf and the values differ */
    double max_abs;      /* max |a - b| over positions where both are finite */
    double mean_abs;     /* mean |a - b| over those positions */
    double rmse;         /* sqrt(mean (a - b)^2) over those positions */
    double cosine;       /* a.b / (|a| |b|) over those positions (1 when both are all zero) */
    bool has_ulp;        /* both dtypes equal: max_ulp is set */
    uint64_t max_ulp;    /* largest distance in float32 steps between a and b */
    uint64_t n_diff;     /* positions whose values differ in any bit (NaN vs NaN counts as
                            equal) */
    uint64_t first_diff; /* row-major index (in A) of the first such position */
    double max_abs_a;    /* max |a| of the finite values of A (the tolerance's scale) */
    double tolerance;    /* the absolute max |a - b| tolerance applied */
    const char *error;   /* why the values could not be compared, or NULL */
    uint32_t n_show;     /* values around the first difference (rf_diff_options.show) */
    uint64_t show_first; /* index of show_a[0] */
    const float *show_a, *show_b;
} rf_tensor_diff;

typedef struct rf_diff_options {
    double tolerance;   /* absolute max |a - b| tolerance; < 0: per-dtype defaults */
    const char *filter; /* fnmatch glob on the name in A, the name in B or the canonical name;
                           NULL: every tensor */
    uint32_t show;      /* values to keep around the first difference (0: none) */
} rf_diff_options;

typedef struct rf_diff_report rf_diff_report;

/* Compares every tensor of a with the tensor of b that has the same canonical name (pairs in
 * a's order, then tensors only in b). An lm_head.weight on one side only is compared with the
 * other side's token embedding unless that model's config says the embeddings are untied (tied
 * heads: GGUF and SafeTensors omit them, APR keeps a copy). Reads under the SIGBUS guards of both
 * models. Fails only on allocation failure or a file truncated while in use (RF_ERR_IO); unreadable
 * values are reported per tensor (class critical, error set). */
RF_API rf_status rf_models_diff(const rf_model *a, const rf_model *b, const rf_diff_options *opts,
                                rf_diff_report **out, rf_error *err);
RF_API void rf_diff_report_free(rf_diff_report *r);
RF_API size_t rf_diff_report_count(const rf_diff_report *r);
RF_API const rf_tensor_diff *rf_diff_report_get(const rf_diff_report *r, size_t index);
/* Whether every listed pair passes and no tensor is on one side only. */
RF_API bool rf_diff_report_ok(const rf_diff_report *r);

/* The default tolerance of dtype as a fraction of max |a| (docs/diff-tensors.md): 0 for F32,
 * F64 and integers; 2^-11 F16; 2^-8 BF16; 1/64 8-bit quants; 1/16 5- and 6-bit; 1/8 4-bit;
 * 1/4 Q3_K; 1/2 Q2_K and anything coarser. */
RF_API double rf_diff_default_tolerance(rf_dtype dtype);

#ifdef __cplusplus
}
#endif
#endif
