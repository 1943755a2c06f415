/* librosetta-infer: the Qwen2 inference engine (docs/engine.md). A model is loaded from the one
 * model view of librosetta-format (rosetta/model.h: SafeTensors, APR or GGUF), weights used in
 * place; a context holds the KV cache and runs the forward pass over a batch of tokens; a
 * sampler picks the next token from the logits; ri_generate strings them together.
 * Two paths compute the same function: the scalar reference path (F32, fixed summation order,
 * each weight row dequantized then multiplied) and the fast CPU path (quantized dot products,
 * SIMD, a thread pool).
 * Errors: functions return rf_status and fill an rf_error naming the tensor, key or position
 * and what was expected versus found; the library never prints and never exits.
 * Not for: tokenization and chat templates (rosetta/tokenizer.h), file formats (libformat). */
#ifndef ROSETTA_INFER_H
#define ROSETTA_INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version string of the inference library (equals the project version). */
RI_API const char *ri_version(void);

/* ---- model ----------------------------------------------------------------------------------- */

typedef struct ri_model ri_model;

/* Which implementation computes the forward pass. */
typedef enum ri_path {
    RI_PATH_AUTO = 0,  /* the fast path, unless ROSETTA_ENGINE=reference is in the environment */
    RI_PATH_REFERENCE, /* scalar F32, dequantize each weight row then multiply (slow, exact) */
    RI_PATH_FAST,      /* CPU kernels: quantized dot products, SIMD, thread pool */
} ri_path;

typedef struct ri_model_params {
    ri_path path;
} ri_model_params;

/* The defaults: RI_PATH_AUTO. */
RI_API ri_model_params ri_model_params_default(void);

/* Builds an engine model over src, which must stay open (and unchanged) until ri_model_free:
 * weights whose layout the chosen path can use are read in place from the mapped file; others
 * (APR_Q4 / APR_Q8, and types the fast path does not multiply directly) are converted once
 * here. params may be NULL (defaults).
 * Checks the model first: architecture "qwen2" (RF_ERR_UNSUPPORTED otherwise), every tensor
 * present (RF_ERR_NOT_FOUND naming it) with the shape the config implies (RF_ERR_FORMAT naming
 * tensor, expected and found shape), a consistent config (RF_ERR_FORMAT naming the key), a
 * non-empty vocabulary when the file carries a tokenizer, dtypes that can be dequantized
 * (RF_ERR_UNSUPPORTED). Returns NULL on failure. */
RI_API ri_model *ri_model_load(const rf_model *src, const ri_model_params *params, rf_error *err);

/* rf_model_open + ri_model_load; the engine model owns the opened file. */
RI_API ri_model *ri_model_open(const char *path, const ri_model_params *params, rf_error *err);

RI_API void ri_model_free(ri_model *model);

/* The model view the engine model was built over. */
RI_API const rf_model *ri_model_source(const ri_model *model);

/* The path in use (never RI_PATH_AUTO) and a short description of it ("reference",
 * "cpu avx512"). */
RI_API ri_path ri_model_path(const ri_model *model);
RI_API const char *ri_model_path_name(const ri_model *model);

/* Shape facts the callers need. */
typedef struct ri_model_info {
    uint32_t n_vocab; /* rows of the embedding / LM head (logits per position) */
    uint32_t n_embd;  /* hidden size */
    uint32_t n_layers;
    uint32_t n_heads;
    uint32_t n_kv_heads;
    uint32_t head_dim;
    uint32_t n_ff;         /* intermediate size */
    uint32_t n_ctx_train;  /* context length of the config (0 when the file has none) */
    bool tied_head;        /* the LM head is the embedding matrix */
    uint64_t weight_bytes; /* bytes of the weights the forward pass reads */
} ri_model_info;

RI_API ri_model_info ri_model_get_info(const ri_model *model);

/* ---- trace hooks ------------------------------------------------------------------------------
 */

/* Stages of the forward pass, in computation order. Per-layer stages carry the layer index;
 * EMBEDDING, FINAL_NORM and LOGITS carry layer -1. Names: ri_stage_name. */
typedef enum ri_stage {
    RI_STAGE_EMBEDDING = 0, /* [n, n_embd] embedding rows */
    RI_STAGE_ATTN_NORM,     /* [n, n_embd] RMSNorm before attention */
    RI_STAGE_Q,             /* [n, n_heads * head_dim] after the bias */
    RI_STAGE_K,             /* [n, n_kv_heads * head_dim] after the bias */
    RI_STAGE_V,             /* [n, n_kv_heads * head_dim] after the bias */
    RI_STAGE_Q_ROPE,        /* [n, n_heads * head_dim] */
    RI_STAGE_K_ROPE,        /* [n, n_kv_heads * head_dim] */
    RI_STAGE_ATTN_OUT,      /* [n, n_heads * head_dim] attention output before o_proj */
    RI_STAGE_O_PROJ,        /* [n, n_embd] */
    RI_STAGE_ATTN_RESIDUAL, /* [n, n_embd] residual stream after attention */
    RI_STAGE_FFN_NORM,      /* [n, n_embd] */
    RI_STAGE_GATE,          /* [n, n_ff] */
    RI_STAGE_UP,            /* [n, n_ff] */
    RI_STAGE_SWIGLU,        /* [n, n_ff] silu(gate) * up */
    RI_STAGE_DOWN,          /* [n, n_embd] */
    RI_STAGE_LAYER_OUT,     /* [n, n_embd] residual stream after the MLP */
    RI_STAGE_FINAL_NORM,    /* [n, n_embd] */
    RI_STAGE_LOGITS,        /* [rows, n_vocab]: only the positions whose logits were asked for */
    RI_STAGE_COUNT
} ri_stage;

/* "embedding", "attn_norm", "q", ..., "logits"; NULL for a value that is not a stage. */
RI_API const char *ri_stage_name(ri_stage stage);
/* The stage called name; false when there is none. */
RI_API bool ri_stage_from_name(const char *name, ri_stage *out);

/* One captured tensor: rows x cols F32 values, row-major, one row per token; row r belongs to
 * absolute position pos + r (for LOGITS with only the last position asked, rows is 1).
 * data is valid only during the callback. */
typedef struct ri_trace_event {
    ri_stage stage;
    int32_t layer; /* -1 for EMBEDDING, FINAL_NORM, LOGITS */
    uint32_t pos;
    uint32_t rows;
    uint32_t cols;
    const float *data;
} ri_trace_event;

typedef void (*ri_trace_fn)(void *user, const ri_trace_event *event);

/* ---- context ----------------------------------------------------------------------------------
 */

typedef struct ri_context ri_context;

typedef enum ri_kv_type {
    RI_KV_F32 = 0,
    RI_KV_F16, /* K and V rounded to binary16 when stored (as llama.cpp's default cache) */
} ri_kv_type;

typedef struct ri_context_params {
    uint32_t n_ctx;   /* positions the KV cache holds; 0 = the model's context, at most 4096 */
    uint32_t n_batch; /* tokens per internal forward step (scratch size); 0 = 512 */
    int n_threads;    /* worker threads; 0 = one per online CPU */
    ri_kv_type kv_type;
    ri_trace_fn trace; /* called for every stage of every layer; NULL = off */
    void *trace_user;
} ri_context_params;

/* The defaults (n_ctx 0, n_batch 0, n_threads 0, F32 cache, no trace). */
RI_API ri_context_params ri_context_params_default(void);

/* A context for model (which must outlive it). params may be NULL. RF_ERR_NOMEM when the KV
 * cache or scratch cannot be allocated, RF_ERR_ARGUMENT for a bad parameter. */
RI_API ri_context *ri_context_new(ri_model *model, const ri_context_params *params, rf_error *err);
RI_API void ri_context_free(ri_context *ctx);

/* Forgets every cached position (the next forward starts at position 0). */
RI_API void ri_context_reset(ri_context *ctx);

/* Positions cached so far, and the cache capacity. */
RI_API uint32_t ri_context_n_past(const ri_context *ctx);
RI_API uint32_t ri_context_n_ctx(const ri_context *ctx);

/* Keeps only the first n_past cached positions (n_past <= ri_context_n_past). */
RI_API rf_status ri_context_truncate(ri_context *ctx, uint32_t n_past, rf_error *err);

/* The token ids of the cached positions (ri_context_n_past of them), valid until the next call
 * that changes the context. */
RI_API const int32_t *ri_context_tokens(const ri_context *ctx);

/* Replaces the trace hook (NULL turns tracing off). */
RI_API void ri_context_set_trace(ri_context *ctx, ri_trace_fn trace, void *user);

/* Which positions get logits from ri_forward. */
typedef enum ri_logits_mode {
    RI_LOGITS_LAST = 0, /* the last token's n_vocab logits */
    RI_LOGITS_ALL,      /* n_tokens x n_vocab, row i for tokens[i] */
    RI_LOGITS_NONE,     /* fill the cache only */
} ri_logits_mode;

/* Runs tokens[0..n_tokens) at positions n_past .. n_past + n_tokens - 1, appends their keys and
 * values to the cache and writes the logits asked for into logits (n_vocab or n_tokens x n_vocab
 * floats; may be NULL with RI_LOGITS_NONE). One call with many tokens (prefill) and many calls
 * with one token (decode) give the same logits.
 * Fails with RF_ERR_LIMIT when the cache would overflow (nothing is computed), RF_ERR_ARGUMENT
 * for a token id outside the vocabulary (naming its index and value). On failure the cache is
 * left as it was before the call. */
RI_API rf_status ri_forward(ri_context *ctx, const int32_t *tokens, size_t n_tokens,
                            ri_logits_mode mode, float *logits, rf_error *err);

/* ---- sampling ---------------------------------------------------------------------------------
 */

typedef struct ri_sampler ri_sampler;

typedef struct ri_sampler_params {
    float temperature;    /* <= 0: greedy (argmax, lowest id on ties) */
    int32_t top_k;        /* keep the k most likely (0 = off) */
    float top_p;          /* nucleus: smallest set with probability >= top_p (1 = off) */
    float min_p;          /* drop tokens below min_p x the top probability (0 = off) */
    float repeat_penalty; /* divide positive / multiply negative logits of seen tokens (1 = off) */
    float frequency_penalty; /* subtract count x this (0 = off) */
    float presence_penalty;  /* subtract this once per seen token (0 = off) */
    int32_t penalty_last_n;  /* how many recent tokens the penalties look at (0 = none, -1 = all) */
    uint64_t seed;           /* RNG seed; the same seed gives the same choices */
} ri_sampler_params;

/* Greedy: temperature 0, top_k 0, top_p 1, min_p 0, penalties off, penalty_last_n 64, seed 0. */
RI_API ri_sampler_params ri_sampler_params_default(void);

/* NULL on allocation failure or invalid parameters (RF_ERR_ARGUMENT naming the field). */
RI_API ri_sampler *ri_sampler_new(const ri_sampler_params *params, rf_error *err);
RI_API void ri_sampler_free(ri_sampler *sampler);

/* Picks a token from logits[0..n_vocab) (not modified); only ids below n_valid are candidates
 * (tokens without a vocabulary entry are never chosen; n_valid 0 means n_vocab). Returns -1 when
 * no candidate is finite. Does not record the choice: call ri_sampler_accept. */
RI_API int32_t ri_sampler_sample(ri_sampler *sampler, const float *logits, size_t n_vocab,
                                 size_t n_valid);

/* Records a token (prompt or generated) for the penalties. */
RI_API void ri_sampler_accept(ri_sampler *sampler, int32_t token);

/* Forgets the recorded tokens and reseeds the RNG with the params' seed. */
RI_API void ri_sampler_reset(ri_sampler *sampler);

/* ---- generation ------------------------------------------------------------------------------ */

typedef struct ri_tokenizer ri_tokenizer; /* rosetta/tokenizer.h */

typedef enum ri_stop_reason {
    RI_STOP_EOG = 0, /* an end-of-generation token was sampled (not passed on, not cached) */
    RI_STOP_LENGTH,  /* n_predict tokens were generated */
    RI_STOP_CONTEXT, /* the KV cache is full */
    RI_STOP_CALLER,  /* the token callback returned false */
} ri_stop_reason;

/* "eog", "length", "context", "caller". */
RI_API const char *ri_stop_reason_name(ri_stop_reason reason);

typedef struct ri_generate_params {
    int32_t n_predict;    /* at most this many new tokens; < 0: until a stop or a full cache */
    bool ignore_eog;      /* do not stop at end-of-generation tokens */
    unsigned detok_flags; /* ri_detok_new flags for the streamed text (RI_DETOK_SKIP_SPECIAL) */
} ri_generate_params;

typedef struct ri_generate_result {
    size_t n_prompt;    /* ids of the prompt that had to be computed (not reused) */
    size_t n_reused;    /* ids of the prompt found in the cache */
    size_t n_generated; /* tokens passed to the callback */
    double prefill_s;   /* wall-clock seconds of the prompt's forward pass */
    double decode_s;    /* wall-clock seconds from the first sampled token to the end */
    ri_stop_reason stop;
    int32_t stop_token; /* the end-of-generation id for RI_STOP_EOG, else -1 */
} ri_generate_result;

/* Receives each generated token and the text it completes (possibly empty: the bytes of an
 * incomplete UTF-8 sequence are held back); the text of the held-back bytes at the end comes with
 * token -1. Return false to stop (RI_STOP_CALLER). */
typedef bool (*ri_token_fn)(void *user, int32_t token, const char *text, size_t len);

/* Generates from prompt[0..n_prompt), the whole sequence the context should hold before the first
 * new token (a chat: every turn so far): cached positions that already hold the same ids are
 * reused, the cache is cut at the first difference and the rest is computed in one batch. Then it
 * samples a token (never an unused vocabulary id), passes it on, feeds it back, until a stop.
 * The prompt ids are recorded in the sampler for its penalties (ri_sampler_accept), as are the
 * generated ones. result may be NULL. Errors: those of ri_forward (RF_ERR_LIMIT when the prompt
 * does not fit the context, naming both sizes), RF_ERR_ARGUMENT for an empty prompt. */
RI_API rf_status ri_generate(ri_context *ctx, const ri_tokenizer *tok, ri_sampler *sampler,
                             const int32_t *prompt, size_t n_prompt,
                             const ri_generate_params *params, ri_token_fn on_token, void *user,
                             ri_generate_result *result, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
