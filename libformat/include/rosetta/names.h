/* Tensor names of llama-style decoders (Qwen2, Qwen3, Llama, Mistral) in the spellings Rosetta
 * meets: Hugging Face (SafeTensors; APR written from SafeTensors), GGUF (llama.cpp), and APR
 * (spec/gguf.md section 14.3, spec/apr-v2.md section 15).
 * Not for: fused or family-specific layouts (GPT-2 c_attn, Falcon QKV, MoE experts); those names
 * are reported as unknown and callers keep them unchanged. */
#ifndef ROSETTA_NAMES_H
#define ROSETTA_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "rosetta/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rf_name_scheme {
    RF_NAMES_UNKNOWN = 0, /* not in the table */
    RF_NAMES_HF,          /* model.layers.N.self_attn.q_proj.weight, model.embed_tokens.weight */
    RF_NAMES_GGUF,        /* blk.N.attn_q.weight, token_embd.weight */
} rf_name_scheme;

/* Which spelling of the table name uses. */
RF_API rf_name_scheme rf_name_scheme_of(const char *name);

/* Writes the GGUF spelling of name (given in HF or GGUF spelling) to out, NUL-terminated.
 * Returns false, leaving out unspecified, when name is not in the table or out is too small.
 * Layer numbers are copied digit for digit. */
RF_API bool rf_name_to_gguf(const char *name, char *out, size_t out_size);

/* Writes the Hugging Face spelling of name (given in HF or GGUF spelling); false as above. */
RF_API bool rf_name_to_hf(const char *name, char *out, size_t out_size);

/* Writes the name an APR file uses for a tensor called name in a source of architecture arch
 * (may be NULL), following aprender (spec/apr-v2.md 15.1-15.2): HF names are kept; GGUF names
 * become HF names for the Qwen families (arch "qwen2" or starting with "qwen3") and are kept for
 * every other architecture; unknown names are kept. Returns false only when out is too small. */
RF_API bool rf_name_to_apr(const char *name, const char *arch, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
