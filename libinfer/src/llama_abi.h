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
 * then called with the computed node; returning false stops the graph. */
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

#endif
