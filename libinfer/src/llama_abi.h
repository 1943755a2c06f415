/* The few declarations of llama.cpp's C API that llama_dl.c needs, written from the pinned
 * llama.cpp (llama-cpp-python 0.3.36: include/llama.h, ggml/include/ggml.h; docs/verifier.md)
 * so that Rosetta builds without llama.cpp and loads it at run time with dlopen. The struct
 * layouts must equal the pinned ones field for field: tests/oracle/llama_abi.c compiles this
 * header next to the real llama.h and compares every size and offset.
 * Not for: anything but llama_dl.c and that test. */
#ifndef RI_LLAMA_ABI_H
#define RI_LLAMA_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int32_t rl_token;

/* struct llama_model_params */
typedef struct rl_model_params {
    void *devices;
    const void *tensor_buft_overrides;
    int32_t n_gpu_layers;
    int32_t split_mode; /* enum llama_split_mode */
    int32_t load_mode;  /* enum llama_load_mode */
    int32_t lazy_mode;  /* enum llama_lazy_mode */
    int32_t main_gpu;
    const float *tensor_split;
    void *progress_callback;
    void *progress_callback_user_data;
    const void *kv_overrides;
    bool vocab_only;
    bool check_tensors;
    bool use_extra_bufts;
    bool no_host;
    bool no_alloc;
    bool load_mtp;
} rl_model_params;

/* ggml_backend_sched_eval_callback: asked first (ask = true) whether the caller wants a node,
 * then called with the computed node; returning false stops the graph. (A struct ggml_tensor *
 * in llama.h: the ABI test checks the field's size and offset, the pointer types are alike.) */
typedef bool (*rl_eval_callback)(void *tensor, bool ask, void *user_data);

/* struct llama_context_params */
typedef struct rl_context_params {
    uint32_t n_ctx;
    uint32_t n_batch;
    uint32_t n_ubatch;
    uint32_t n_seq_max;
    uint32_t n_rs_seq;
    uint32_t n_outputs_max;
    uint32_t n_outputs_max_per_seq;
    int32_t n_threads;
    int32_t n_threads_batch;
    int32_t ctx_type;          /* enum llama_context_type */
    int32_t rope_scaling_type; /* enum llama_rope_scaling_type */
    int32_t pooling_type;      /* enum llama_pooling_type */
    int32_t attention_type;    /* enum llama_attention_type */
    int32_t flash_attn_type;   /* enum llama_flash_attn_type: -1 auto, 0 disabled, 1 enabled */
    float rope_freq_base;
    float rope_freq_scale;
    float yarn_ext_factor;
    float yarn_attn_factor;
    float yarn_beta_fast;
    float yarn_beta_slow;
    uint32_t yarn_orig_ctx;
    float defrag_thold;
    rl_eval_callback cb_eval;
    void *cb_eval_user_data;
    int32_t type_k; /* enum ggml_type: 0 = F32, 1 = F16 */
    int32_t type_v;
    bool (*abort_callback)(void *data);
    void *abort_callback_data;
    bool embeddings;
    bool offload_kqv;
    bool no_perf;
    bool op_offload;
    bool swa_full;
    bool kv_unified;
    void *samplers;
    size_t n_samplers;
    void *ctx_other;
} rl_context_params;

/* struct llama_batch */
typedef struct rl_batch {
    int32_t n_tokens;
    rl_token *token;
    float *embd;
    int32_t *pos;
    int32_t *n_seq_id;
    int32_t **seq_id;
    int8_t *logits;
} rl_batch;

/* The leading fields of struct ggml_tensor (the rest is never touched). */
typedef struct rl_tensor_head {
    int32_t type; /* enum ggml_type */
    void *buffer;
    int64_t ne[4];
} rl_tensor_head;

#define RL_GGML_TYPE_F32 0

/* The functions llama_dl.c looks up, as pointer types. The opaque handles are void here; the ABI
 * test defines the RL_* names below as llama.h's own types before including this header, so that
 * every signature is checked against llama.h (__builtin_types_compatible_p). */
#ifndef RL_MODEL
#define RL_MODEL          void
#define RL_CONTEXT        void
#define RL_VOCAB          void
#define RL_TENSOR         void
#define RL_MODEL_PARAMS   rl_model_params
#define RL_CONTEXT_PARAMS rl_context_params
#define RL_BATCH          rl_batch
#define RL_LOG_LEVEL      int
#endif

typedef void (*rl_log_callback)(RL_LOG_LEVEL level, const char *text, void *user);

typedef void (*rl_backend_init_fn)(void);
typedef void (*rl_log_set_fn)(rl_log_callback cb, void *user);
typedef RL_MODEL_PARAMS (*rl_model_default_params_fn)(void);
typedef RL_CONTEXT_PARAMS (*rl_context_default_params_fn)(void);
typedef RL_MODEL *(*rl_model_load_from_file_fn)(const char *path, RL_MODEL_PARAMS params);
typedef void (*rl_model_free_fn)(RL_MODEL *model);
typedef RL_CONTEXT *(*rl_init_from_model_fn)(RL_MODEL *model, RL_CONTEXT_PARAMS params);
typedef void (*rl_free_fn)(RL_CONTEXT *ctx);
typedef const RL_VOCAB *(*rl_model_get_vocab_fn)(const RL_MODEL *model);
typedef int32_t (*rl_vocab_n_tokens_fn)(const RL_VOCAB *vocab);
typedef int32_t (*rl_model_int_fn)(const RL_MODEL *model); /* llama_model_n_layer, _n_embd ... */
typedef int32_t (*rl_tokenize_fn)(const RL_VOCAB *vocab, const char *text, int32_t text_len,
                                  rl_token *tokens, int32_t n_tokens_max, bool add_special,
                                  bool parse_special);
typedef RL_BATCH (*rl_batch_init_fn)(int32_t n_tokens, int32_t embd, int32_t n_seq_max);
typedef void (*rl_batch_free_fn)(RL_BATCH batch);
typedef RL_BATCH (*rl_batch_get_one_fn)(rl_token *tokens, int32_t n_tokens);
typedef int32_t (*rl_decode_fn)(RL_CONTEXT *ctx, RL_BATCH batch);
typedef float *(*rl_get_logits_ith_fn)(RL_CONTEXT *ctx, int32_t i);
typedef const char *(*rl_tensor_name_fn)(const RL_TENSOR *t); /* ggml_get_name, ggml_op_desc */
typedef int64_t (*rl_nelements_fn)(const RL_TENSOR *t);
typedef bool (*rl_is_contiguous_fn)(const RL_TENSOR *t);
typedef void (*rl_tensor_get_fn)(const RL_TENSOR *t, void *data, size_t offset, size_t size);

#endif
