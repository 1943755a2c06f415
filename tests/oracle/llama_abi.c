/* ABI check of libinfer/src/llama_abi.h, Rosetta's own declarations of the llama.cpp C API that
 * `apr compare-inference --engine-b llama` loads at run time (libinfer/src/llama_dl.c), against
 * the pinned llama.h / ggml.h: compiled side by side, every struct's size and every field's
 * offset and size compared, the head of struct ggml_tensor, the enum values used, and the type
 * of every function looked up with dlsym (the opaque handles mapped to llama.h's own types).
 * Built and run by tests/tools/llama_abi_oracle.sh against the oracle install
 * (tests/oracle/oracle_build.sh). Prints one line per check; exits 1 when any differs. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

/* llama_abi.h's function pointer types, written with llama.h's types for the handles */
#define RL_MODEL          struct llama_model
#define RL_CONTEXT        struct llama_context
#define RL_VOCAB          struct llama_vocab
#define RL_TENSOR         struct ggml_tensor
#define RL_MODEL_PARAMS   struct llama_model_params
#define RL_CONTEXT_PARAMS struct llama_context_params
#define RL_BATCH          struct llama_batch
#define RL_LOG_LEVEL      enum ggml_log_level
#include "llama_abi.h"

static int failures, checks;

static void check(int ok, const char *what, long ours, long theirs)
{
    checks++;
    if (!ok)
        failures++;
    printf("%-4s %-58s rosetta %6ld  llama.h %6ld\n", ok ? "ok" : "DIFF", what, ours, theirs);
}

#define SIZE(ours, theirs)                                                                         \
    check(sizeof(ours) == sizeof(theirs), "sizeof " #theirs, (long)sizeof(ours),                   \
          (long)sizeof(theirs))
/* a field at the same offset with the same size */
#define FIELD(ours, theirs, f, g)                                                                  \
    do {                                                                                           \
        check(offsetof(ours, f) == offsetof(theirs, g), "offsetof " #theirs "." #g,                \
              (long)offsetof(ours, f), (long)offsetof(theirs, g));                                 \
        check(sizeof(((ours *)0)->f) == sizeof(((theirs *)0)->g), "sizeof " #theirs "." #g,        \
              (long)sizeof(((ours *)0)->f), (long)sizeof(((theirs *)0)->g));                       \
    } while (0)
/* the function pointer type of llama_abi.h is the type of the real function's address */
#define SIG(type, fn)                                                                              \
    check(__builtin_types_compatible_p(type, __typeof__(&fn)), "signature of " #fn " (" #type ")", \
          1, __builtin_types_compatible_p(type, __typeof__(&fn)))
#define VALUE(ours, theirs)                                                                        \
    check((long)(ours) == (long)(theirs), "value of " #theirs, (long)(ours), (long)(theirs))

int main(void)
{
    typedef struct llama_model_params MP;
    SIZE(rl_model_params, struct llama_model_params);
    FIELD(rl_model_params, struct llama_model_params, devices, devices);
    FIELD(rl_model_params, struct llama_model_params, tensor_buft_overrides, tensor_buft_overrides);
    FIELD(rl_model_params, struct llama_model_params, n_gpu_layers, n_gpu_layers);
    FIELD(rl_model_params, struct llama_model_params, split_mode, split_mode);
    FIELD(rl_model_params, struct llama_model_params, load_mode, load_mode);
    FIELD(rl_model_params, struct llama_model_params, lazy_mode, lazy_mode);
    FIELD(rl_model_params, struct llama_model_params, main_gpu, main_gpu);
    FIELD(rl_model_params, struct llama_model_params, tensor_split, tensor_split);
    FIELD(rl_model_params, struct llama_model_params, progress_callback, progress_callback);
    FIELD(rl_model_params, struct llama_model_params, progress_callback_user_data,
          progress_callback_user_data);
    FIELD(rl_model_params, struct llama_model_params, kv_overrides, kv_overrides);
    FIELD(rl_model_params, struct llama_model_params, vocab_only, vocab_only);
    FIELD(rl_model_params, struct llama_model_params, check_tensors, check_tensors);
    FIELD(rl_model_params, struct llama_model_params, use_extra_bufts, use_extra_bufts);
    FIELD(rl_model_params, struct llama_model_params, no_host, no_host);
    FIELD(rl_model_params, struct llama_model_params, no_alloc, no_alloc);
    FIELD(rl_model_params, struct llama_model_params, load_mtp, load_mtp);

    typedef struct llama_context_params CP;
    SIZE(rl_context_params, struct llama_context_params);
    FIELD(rl_context_params, struct llama_context_params, n_ctx, n_ctx);
    FIELD(rl_context_params, struct llama_context_params, n_batch, n_batch);
    FIELD(rl_context_params, struct llama_context_params, n_ubatch, n_ubatch);
    FIELD(rl_context_params, struct llama_context_params, n_seq_max, n_seq_max);
    FIELD(rl_context_params, struct llama_context_params, n_rs_seq, n_rs_seq);
    FIELD(rl_context_params, struct llama_context_params, n_outputs_max, n_outputs_max);
    FIELD(rl_context_params, struct llama_context_params, n_outputs_max_per_seq,
          n_outputs_max_per_seq);
    FIELD(rl_context_params, struct llama_context_params, n_threads, n_threads);
    FIELD(rl_context_params, struct llama_context_params, n_threads_batch, n_threads_batch);
    FIELD(rl_context_params, struct llama_context_params, ctx_type, ctx_type);
    FIELD(rl_context_params, struct llama_context_params, rope_scaling_type, rope_scaling_type);
    FIELD(rl_context_params, struct llama_context_params, pooling_type, pooling_type);
    FIELD(rl_context_params, struct llama_context_params, attention_type, attention_type);
    FIELD(rl_context_params, struct llama_context_params, flash_attn_type, flash_attn_type);
    FIELD(rl_context_params, struct llama_context_params, rope_freq_base, rope_freq_base);
    FIELD(rl_context_params, struct llama_context_params, rope_freq_scale, rope_freq_scale);
    FIELD(rl_context_params, struct llama_context_params, yarn_ext_factor, yarn_ext_factor);
    FIELD(rl_context_params, struct llama_context_params, yarn_attn_factor, yarn_attn_factor);
    FIELD(rl_context_params, struct llama_context_params, yarn_beta_fast, yarn_beta_fast);
    FIELD(rl_context_params, struct llama_context_params, yarn_beta_slow, yarn_beta_slow);
    FIELD(rl_context_params, struct llama_context_params, yarn_orig_ctx, yarn_orig_ctx);
    FIELD(rl_context_params, struct llama_context_params, defrag_thold, defrag_thold);
    FIELD(rl_context_params, struct llama_context_params, cb_eval, cb_eval);
    FIELD(rl_context_params, struct llama_context_params, cb_eval_user_data, cb_eval_user_data);
    FIELD(rl_context_params, struct llama_context_params, type_k, type_k);
    FIELD(rl_context_params, struct llama_context_params, type_v, type_v);
    FIELD(rl_context_params, struct llama_context_params, abort_callback, abort_callback);
    FIELD(rl_context_params, struct llama_context_params, abort_callback_data, abort_callback_data);
    FIELD(rl_context_params, struct llama_context_params, embeddings, embeddings);
    FIELD(rl_context_params, struct llama_context_params, offload_kqv, offload_kqv);
    FIELD(rl_context_params, struct llama_context_params, no_perf, no_perf);
    FIELD(rl_context_params, struct llama_context_params, op_offload, op_offload);
    FIELD(rl_context_params, struct llama_context_params, swa_full, swa_full);
    FIELD(rl_context_params, struct llama_context_params, kv_unified, kv_unified);
    FIELD(rl_context_params, struct llama_context_params, samplers, samplers);
    FIELD(rl_context_params, struct llama_context_params, n_samplers, n_samplers);
    FIELD(rl_context_params, struct llama_context_params, ctx_other, ctx_other);
    /* the callback: llama.h's type is a pointer to bool (struct ggml_tensor *, bool, void *) */
    int cb_ok = __builtin_types_compatible_p(__typeof__(((CP *)0)->cb_eval),
                                             bool (*)(struct ggml_tensor *, bool, void *));
    check(cb_ok, "type of llama_context_params.cb_eval (tensor, ask, user)", 1, cb_ok);

    SIZE(rl_batch, struct llama_batch);
    FIELD(rl_batch, struct llama_batch, n_tokens, n_tokens);
    FIELD(rl_batch, struct llama_batch, token, token);
    FIELD(rl_batch, struct llama_batch, embd, embd);
    FIELD(rl_batch, struct llama_batch, pos, pos);
    FIELD(rl_batch, struct llama_batch, n_seq_id, n_seq_id);
    FIELD(rl_batch, struct llama_batch, seq_id, seq_id);
    FIELD(rl_batch, struct llama_batch, logits, logits);
    check(sizeof(rl_token) == sizeof(llama_token), "sizeof llama_token", (long)sizeof(rl_token),
          (long)sizeof(llama_token));

    FIELD(rl_tensor_head, struct ggml_tensor, type, type);
    FIELD(rl_tensor_head, struct ggml_tensor, buffer, buffer);
    FIELD(rl_tensor_head, struct ggml_tensor, ne, ne);

    VALUE(RL_GGML_TYPE_F32, GGML_TYPE_F32);
    VALUE(1, GGML_TYPE_F16);        /* the default type_k / type_v llama_dl.c's ABI check expects */
    VALUE(4, GGML_LOG_LEVEL_ERROR); /* the level llama_dl.c's log callback keeps */
    VALUE(0, LLAMA_FLASH_ATTN_TYPE_DISABLED);
    VALUE(-1, LLAMA_FLASH_ATTN_TYPE_AUTO);

    SIG(rl_backend_init_fn, llama_backend_init);
    SIG(rl_log_set_fn, llama_log_set);
    SIG(rl_model_default_params_fn, llama_model_default_params);
    SIG(rl_context_default_params_fn, llama_context_default_params);
    SIG(rl_model_load_from_file_fn, llama_model_load_from_file);
    SIG(rl_model_free_fn, llama_model_free);
    SIG(rl_init_from_model_fn, llama_init_from_model);
    SIG(rl_free_fn, llama_free);
    SIG(rl_model_get_vocab_fn, llama_model_get_vocab);
    SIG(rl_vocab_n_tokens_fn, llama_vocab_n_tokens);
    SIG(rl_model_int_fn, llama_model_n_layer);
    SIG(rl_model_int_fn, llama_model_n_embd);
    SIG(rl_model_int_fn, llama_model_n_head);
    SIG(rl_model_int_fn, llama_model_n_head_kv);
    SIG(rl_tokenize_fn, llama_tokenize);
    SIG(rl_batch_init_fn, llama_batch_init);
    SIG(rl_batch_free_fn, llama_batch_free);
    SIG(rl_batch_get_one_fn, llama_batch_get_one);
    SIG(rl_decode_fn, llama_decode);
    SIG(rl_get_logits_ith_fn, llama_get_logits_ith);
    SIG(rl_tensor_name_fn, ggml_get_name);
    SIG(rl_tensor_name_fn, ggml_op_desc);
    SIG(rl_nelements_fn, ggml_nelements);
    SIG(rl_is_contiguous_fn, ggml_is_contiguous);
    SIG(rl_tensor_get_fn, ggml_backend_tensor_get);

    /* the defaults the library returns read the same through Rosetta's declarations */
    MP mp = llama_model_default_params();
    CP cp = llama_context_default_params();
    rl_model_params rmp;
    rl_context_params rcp;
    memcpy(&rmp, &mp, sizeof rmp);
    memcpy(&rcp, &cp, sizeof rcp);
    VALUE(rmp.n_gpu_layers, mp.n_gpu_layers);
    VALUE(rmp.use_extra_bufts, mp.use_extra_bufts);
    VALUE(rcp.n_ctx, cp.n_ctx);
    VALUE(rcp.n_ubatch, cp.n_ubatch);
    VALUE(rcp.flash_attn_type, cp.flash_attn_type);
    VALUE(rcp.type_k, cp.type_k);
    VALUE(rcp.offload_kqv, cp.offload_kqv);
    VALUE(rcp.n_samplers, cp.n_samplers);

    printf("llama_abi: %d checks, %d differ\n", checks, failures);
    return failures ? 1 : 0;
}
