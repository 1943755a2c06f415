/* Tensor-name spellings (Hugging Face, GGUF, APR) through the process-wide contracts: a thin
 * wrapper over rf_contracts_map_name / rf_contracts_apr_name of rosetta/contract.h, whose table
 * is contracts/tensor-layout.json (docs/contracts.md). Names that spell no role of the contract
 * (fused or family-specific layouts: GPT-2 c_attn, MoE experts) are reported as unknown and
 * callers keep them unchanged. When the contracts cannot be loaded every name is unknown:
 * callers that must not write unmapped names check rf_contracts_default() first. */
#ifndef ROSETTA_NAMES_H
#define ROSETTA_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "rosetta/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rf_name_scheme {
    RF_NAMES_UNKNOWN = 0, /* spells no role of the contract */
    RF_NAMES_HF,          /* model.layers.N.self_attn.q_proj.weight, model.embed_tokens.weight */
    RF_NAMES_GGUF,        /* blk.N.attn_q.weight, token_embd.weight */
} rf_name_scheme;

/* Which spelling name uses (an APR spelling that equals the HF one counts as HF). */
RF_API rf_name_scheme rf_name_scheme_of(const char *name);

/* Writes the GGUF spelling of name (given in any spelling) to out, NUL-terminated. Returns
 * false, leaving out unspecified, when name spells no role or out is too small. */
RF_API bool rf_name_to_gguf(const char *name, char *out, size_t out_size);

/* Writes the Hugging Face spelling of name; false as above. */
RF_API bool rf_name_to_hf(const char *name, char *out, size_t out_size);

/* Writes the name an APR file uses for a tensor called name in a source of architecture arch
 * (may be NULL), following aprender: GGUF spellings become APR spellings for the families whose
 * contract maps them (Qwen2, Qwen3), every other name is kept. Returns false only when out is
 * too small. */
RF_API bool rf_name_to_apr(const char *name, const char *arch, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
