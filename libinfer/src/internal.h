/* Private structures of librosetta-infer: the engine model (weights by role), the context, the
 * backend interface every forward-pass implementation fills in, and the trace helper.
 * Not for: anything outside libinfer/src. */
#ifndef RI_INTERNAL_H
#define RI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "rosetta/infer.h"
#include "rosetta/model.h"

/* A 2-D weight [rows, cols] as the forward pass reads it: rows of row_bytes bytes at data, each
 * holding row_elems values of dtype of which the first cols are meaningful (row_elems > cols for
 * APR's K-quants padded to whole super-blocks; the padding holds zeros or junk and is multiplied
 * by zero activations). data points into the mapped file unless the weight was converted at
 * load (owned is then the allocation). APR_Q8 rows are int8 values with the tensor's one
 * scale in apr_q8_scale. */
typedef struct ri_weight {
    const char *name; /* tensor name in the file */
    rf_dtype dtype;
    uint32_t rows, cols, row_elems;
    uint64_t row_bytes;
    const uint8_t *data;
    float apr_q8_scale;
    void *owned;
} ri_weight;

/* One decoder layer. Norm weights and biases are F32 copies (small; any source dtype). */
typedef struct ri_layer {
    float *attn_norm, *ffn_norm;
    float *bq, *bk, *bv;
    ri_weight wq, wk, wv, wo, gate, up, down;
} ri_layer;

typedef struct ri_backend ri_backend;

struct ri_model {
    const rf_model *src;
    rf_model *owned_src; /* set by ri_model_open */
    ri_model_info info;
    ri_path path;
    double rope_theta;
    rf_rope_type rope_type;
    float rms_eps;
    ri_weight embd; /* [n_vocab, n_embd] */
    ri_weight head; /* [n_vocab, n_embd]; a copy of embd's descriptor (owned NULL) when tied */
    float *final_norm;
    ri_layer *layers;
    const ri_backend *backend;
    void *backend_data; /* the backend's per-model state (packed weights ...) */
    char path_name[48];
};

struct ri_context {
    ri_model *model;
    uint32_t n_ctx, n_batch, n_past;
    int n_threads;
    ri_kv_type kv_type;
    ri_trace_fn trace;
    void *trace_user;
    int32_t *tokens;    /* ids of the cached positions */
    void *backend_data; /* KV cache and scratch */
};

/* A forward-pass implementation. The CPU paths (reference, fast) live here; a GPU backend
 * fills in the same table with device memory behind model->backend_data / ctx->backend_data,
 * copying a stage to the host only when ctx->trace is set. */
struct ri_backend {
    const char *name;
    /* Prepares the weights (packing, conversion, upload); called once by ri_model_load. */
    rf_status (*model_init)(ri_model *model, rf_error *err);
    void (*model_free)(ri_model *model);
    /* Allocates the KV cache (ctx->n_ctx positions, ctx->kv_type) and scratch for
     * ctx->n_batch tokens. */
    rf_status (*context_init)(ri_context *ctx, rf_error *err);
    void (*context_free)(ri_context *ctx);
    /* Runs n (1..ctx->n_batch) tokens at positions ctx->n_past.. (ids already checked, room in
     * the cache checked); writes the logits asked for. Does not advance n_past. */
    rf_status (*forward)(ri_context *ctx, const int32_t *tokens, uint32_t n, ri_logits_mode mode,
                         float *logits, rf_error *err);
};

extern const ri_backend ri_backend_reference;
extern const ri_backend ri_backend_cpu;

/* Dequantizes row r of w into out (w->row_elems floats; the values past cols are whatever
 * the padding decodes to). */
rf_status ri_weight_dequantize_row(const ri_weight *w, uint32_t r, float *out, rf_error *err);

/* Calls the trace hook; one predictable branch when tracing is off. */
static inline void ri_trace_emit(const ri_context *ctx, ri_stage stage, int32_t layer, uint32_t pos,
                                 uint32_t rows, uint32_t cols, const float *data)
{
    if (__builtin_expect(ctx->trace != NULL, 0)) {
        ri_trace_event ev = {stage, layer, pos, rows, cols, data};
        ctx->trace(ctx->trace_user, &ev);
    }
}

#endif
