/* Per-tensor type plans for quantizing a model the way llama-quantize chooses them (the "mixes"
 * Q4_K_M, Q8_0, ... of llama.cpp's src/llama-quant.cpp): which tensors are quantized, to which
 * type, and why. A plan is computed from tensor names (GGUF names), shapes and dtypes only; no
 * tensor data is read. Not for: quantizing bytes (quant.h), reading or writing files, or mapping
 * names from other formats (names.h; map to GGUF names first). */
#ifndef ROSETTA_QUANT_PLAN_H
#define ROSETTA_QUANT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/dtype.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The mixes Rosetta plans, by their llama_ftype value (what GGUF records in general.file_type).
 * The IQ mixes, Q2_K_S (which needs an importance matrix for every Q2_K tensor), TQ and MXFP4
 * mixes are not offered. */
typedef enum rf_quant_mix {
    RF_MIX_F32 = 0,
    RF_MIX_F16 = 1,
    RF_MIX_Q4_0 = 2,
    RF_MIX_Q4_1 = 3,
    RF_MIX_Q8_0 = 7,
    RF_MIX_Q5_0 = 8,
    RF_MIX_Q5_1 = 9,
    RF_MIX_Q2_K = 10,
    RF_MIX_Q3_K_S = 11,
    RF_MIX_Q3_K_M = 12,
    RF_MIX_Q3_K_L = 13,
    RF_MIX_Q4_K_S = 14,
    RF_MIX_Q4_K_M = 15,
    RF_MIX_Q5_K_S = 16,
    RF_MIX_Q5_K_M = 17,
    RF_MIX_Q6_K = 18,
    RF_MIX_BF16 = 32,
} rf_quant_mix;

/* Parses a mix name as llama-quantize does: case-insensitive "q4_k_m", the aliases "q3_k",
 * "q4_k", "q5_k" (= the _M mixes), or the llama_ftype number ("15"). False if unknown. */
RF_API bool rf_quant_mix_from_name(const char *name, rf_quant_mix *out);

/* Canonical upper-case name ("Q4_K_M"), or NULL for a value that is not a member. */
RF_API const char *rf_quant_mix_name(rf_quant_mix mix);

/* The mix's default tensor type (Q4_K for Q4_K_S and Q4_K_M, F16 for F16, ...). False for a
 * value that is not a member. */
RF_API bool rf_quant_mix_default_dtype(rf_quant_mix mix, rf_dtype *out);

/* One --tensor-type PATTERN=TYPE override. The pattern is searched (not anchored) in the GGUF
 * tensor name as a POSIX extended regular expression, with \d \D \s \S \w \W accepted as in
 * llama-quantize's ECMAScript patterns; llama-quantize lower-cases the pattern, and so does the
 * planner. The first matching override wins. */
typedef struct rf_quant_override {
    const char *pattern;
    rf_dtype dtype;
} rf_quant_override;

/* Parses "PATTERN=TYPE" (TYPE a ggml type name, any case). On success *pattern_len is the
 * length of PATTERN in spec. Fails with RF_ERR_ARGUMENT naming what is wrong. */
RF_API rf_status rf_quant_override_parse(const char *spec, size_t *pattern_len, rf_dtype *dtype,
                                         rf_error *err);

typedef struct rf_quant_plan_options {
    rf_quant_mix mix;
    bool pure;                   /* --pure: no per-category mix rules (fallbacks still apply) */
    bool leave_output_tensor;    /* --leave-output-tensor: output.weight is not quantized */
    bool has_imatrix;            /* an importance matrix is given (changes Q4_0/Q5_0 rules) */
    bool set_output_tensor_type; /* --output-tensor-type */
    rf_dtype output_tensor_type;
    bool set_token_embedding_type; /* --token-embedding-type */
    rf_dtype token_embedding_type;
    const rf_quant_override *overrides; /* --tensor-type, in command-line order */
    size_t n_overrides;
    /* For sources that are not GGUF (SafeTensors, APR): tensors the plan keeps unquantized are
     * widened to F32 when they are F16/BF16/F64 or a quantized type, as convert_hf_to_gguf.py
     * writes them, so that the plan equals llama-quantize's plan on that converted F32 GGUF. */
    bool widen_kept_to_f32;
} rf_quant_plan_options;

/* Options with the defaults of llama-quantize for mix. */
RF_API rf_quant_plan_options rf_quant_plan_options_default(rf_quant_mix mix);

/* Model facts the rules use besides the tensors (GGUF {arch}.block_count, head_count,
 * head_count_kv, expert_count). n_layer 0 means unknown: the planner then counts the blk.N
 * prefixes of the tensor names. architecture may be NULL. */
typedef struct rf_quant_model_info {
    const char *architecture;
    uint32_t n_layer;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t n_expert;
} rf_quant_model_info;

typedef struct rf_quant_plan_entry {
    size_t tensor_index; /* index of the tensor in the caller's list */
    const char *name;    /* the caller's name string (not copied) */
    rf_dtype src_dtype;
    rf_dtype chosen_dtype; /* type the rules chose, before the shape fallback */
    rf_dtype dtype;        /* final type */
    bool quantizable;      /* llama-quantize's tensor_allows_quantization */
    bool convert;          /* dtype != src_dtype: data must be converted */
    bool fallback;         /* the fallback rule changed the type */
    uint64_t n_elements;
    uint64_t src_bytes; /* size of the tensor in src_dtype */
    uint64_t dst_bytes; /* size in dtype */
    char reason[192];   /* "use_more_bits layer 3 of 24 -> Q6_K; fallback: ..." */
} rf_quant_plan_entry;

typedef struct rf_quant_plan {
    rf_quant_mix mix;
    uint32_t file_type; /* value for general.file_type */
    size_t n_entries;
    rf_quant_plan_entry *entries; /* in llama-quantize's tensor order (see below) */
    size_t n_fallback; /* tensors the shape fallback changed (llama-quantize's counter) */
    size_t n_convert;
    uint64_t n_elements;
    uint64_t src_bytes;
    uint64_t dst_bytes;
    char *name_storage; /* entry names owned by the plan (rf_quant_plan_for_model), or NULL */
} rf_quant_plan;

/* Plans the types of tensors[0..n) (GGUF names; data is not read) for opts. Entries come in
 * llama-quantize's processing order, which is also the order it writes: tensors without a
 * "blk.N." prefix first, then by layer number, ties by byte-wise name order. The attn_v and
 * ffn_down counters of the mix rules run in that order, as in llama-quantize.
 * Fails with RF_ERR_ARGUMENT (bad option or override pattern), RF_ERR_FORMAT (duplicate name,
 * shape not valid for its dtype), RF_ERR_UNSUPPORTED (a chosen type with no fallback for the
 * tensor's row length). *out is freed with rf_quant_plan_free. */
RF_API rf_status rf_quant_plan_make(const rf_tensor *tensors, size_t n,
                                    const rf_quant_model_info *info,
                                    const rf_quant_plan_options *opts, rf_quant_plan **out,
                                    rf_error *err);

/* The model facts of rf_quant_model_info from a model's configuration: the GGUF architecture
 * name ("qwen2" also for an HF "Qwen2ForCausalLM", "llama" for Mistral), layer and head counts,
 * and {arch}.expert_count from GGUF metadata when present. The strings point into the model or
 * are static. */
RF_API rf_quant_model_info rf_quant_model_info_of(const rf_model *model);

/* rf_quant_plan_make over a model as llama-quantize sees it: tensors under their GGUF names
 * (SafeTensors/APR names mapped with names.h, unknown names kept), the output head of a tied
 * SafeTensors/APR model left out (GGUF has none; the token embedding takes the head's rules),
 * and rf_quant_model_info_of(model). Entry names are owned by the plan; tensor_index is the
 * index of the tensor in the model (rf_model_tensor). */
RF_API rf_status rf_quant_plan_for_model(const rf_model *model, const rf_quant_plan_options *opts,
                                         rf_quant_plan **out, rf_error *err);

RF_API void rf_quant_plan_free(rf_quant_plan *plan);

/* The entry for a tensor name, or NULL. */
RF_API const rf_quant_plan_entry *rf_quant_plan_find(const rf_quant_plan *plan, const char *name);

#ifdef __cplusplus
}
#endif
#endif
