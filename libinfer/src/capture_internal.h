/* Private layout of a capture (rosetta/verify.h), shared by capture.c, trace_file.c,
 * llama_dl.c, compare.c and check.c. Not for: anything outside libinfer/src. */
#ifndef RI_CAPTURE_INTERNAL_H
#define RI_CAPTURE_INTERNAL_H

#include "rosetta/dtype.h"
#include "rosetta/verify.h"

/* One captured tensor: rows x cols F32, row r = prompt position r. */
typedef struct rcap_slot_t {
    float *data;
    uint32_t rows, cols;
} rcap_slot_t;

/* Slots are indexed stage * (n_layers + 1) + (global stage ? 0 : 1 + layer). */
struct ri_capture {
    char *label, *engine, *dtypes, *prompt;
    char *dtype_sig; /* the dtype of every matrix in role order: equal strings, equal dtypes */
    ri_model_info info;
    ri_level level;
    bool rounded_activations; /* llama.cpp: activations rounded before products */
    size_t n_tokens, n_greedy;
    int32_t *tokens, *greedy;
    rcap_slot_t *slots;
    char **weights;    /* per slot: the feeding weights, comma separated (NULL: unknown) */
    ri_tokenizer *tok; /* owned; NULL when the capture did not come from a Rosetta run */
};

/* A capture with room for the slots of info->n_layers layers and n_tokens prompt ids (zeroed).
 * NULL on allocation failure. */
ri_capture *rcap_new(const ri_model_info *info, size_t n_tokens);
bool rcap_stage_global(ri_stage stage);
long rcap_slot(const ri_capture *c, ri_stage stage, int32_t layer);
/* The slot's buffer, allocated (zeroed) on first use; NULL on allocation failure, for a stage
 * / layer pair the model does not have, or when the slot exists with another shape. */
float *rcap_alloc_slot(ri_capture *c, ri_stage stage, int32_t layer, uint32_t rows, uint32_t cols);
rf_status rcap_set_weights(ri_capture *c, ri_stage stage, int32_t layer, const char *names,
                           rf_error *err);
ri_level rcap_dtype_level(rf_dtype dtype);
/* Sets c's level, dtype list and dtype signature from the matrices of src. */
rf_status rcap_level_from_source(ri_capture *c, const rf_model *src, rf_error *err);

#endif
