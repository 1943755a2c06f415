/* Tensor-name table between Hugging Face and GGUF spellings (see rosetta/names.h).
 * Not for: deciding which tensors a model must have (contracts/tensor-layout.json). */
#include "rosetta/names.h"

#include <stdio.h>
#include <string.h>

typedef struct name_pair {
    const char *hf;
    const char *gguf;
} name_pair;

/* Whole-model tensors (spec/gguf.md 14.3). */
static const name_pair GLOBAL[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

/* Per-layer tensors: "model.layers.N." + hf <-> "blk.N." + gguf. */
static const name_pair LAYER[] = {
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"}, /* Qwen3 */
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char HF_LAYER[] = "model.layers.";
static const char GGUF_LAYER[] = "blk.";

/* If name is prefix + digits + "." + rest, stores the digits and rest and returns true. */
static bool split_layer(const char *name, const char *prefix, const char **digits, size_t *n_digits,
                        const char **rest)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0)
        return false;
    const char *d = name + plen;
    size_t n = 0;
    while (d[n] >= '0' && d[n] <= '9')
        n++;
    if (n == 0 || n > 9 || d[n] != '.')
        return false;
    *digits = d;
    *n_digits = n;
    *rest = d + n + 1;
    return true;
}

/* Looks name up in either spelling; on success sets the pair and, for layer tensors, the layer
 * digits. */
static rf_name_scheme lookup(const char *name, const name_pair **pair, const char **digits,
                             size_t *n_digits)
{
    for (size_t i = 0; i < COUNT(GLOBAL); i++) {
        *digits = NULL;
        *pair = &GLOBAL[i];
        if (strcmp(name, GLOBAL[i].hf) == 0)
            return RF_NAMES_HF;
        if (strcmp(name, GLOBAL[i].gguf) == 0)
            return RF_NAMES_GGUF;
    }
    const char *rest;
    rf_name_scheme scheme = RF_NAMES_UNKNOWN;
    if (split_layer(name, HF_LAYER, digits, n_digits, &rest))
        scheme = RF_NAMES_HF;
    else if (split_layer(name, GGUF_LAYER, digits, n_digits, &rest))
        scheme = RF_NAMES_GGUF;
    if (scheme == RF_NAMES_UNKNOWN)
        return RF_NAMES_UNKNOWN;
    for (size_t i = 0; i < COUNT(LAYER); i++) {
        const char *candidate = scheme == RF_NAMES_HF ? LAYER[i].hf : LAYER[i].gguf;
        if (strcmp(rest, candidate) == 0) {
            *pair = &LAYER[i];
            return scheme;
        }
    }
    return RF_NAMES_UNKNOWN;
}

static bool emit(const name_pair *pair, const char *digits, size_t n_digits, bool to_gguf,
                 char *out, size_t out_size)
{
    int n;
    const char *base = to_gguf ? pair->gguf : pair->hf;
    if (!digits)
        n = snprintf(out, out_size, "%s", base);
    else
        n = snprintf(out, out_size, "%s%.*s.%s", to_gguf ? GGUF_LAYER : HF_LAYER, (int)n_digits,
                     digits, base);
    return n >= 0 && (size_t)n < out_size;
}

rf_name_scheme rf_name_scheme_of(const char *name)
{
    const name_pair *pair;
    const char *digits;
    size_t n_digits;
    return lookup(name, &pair, &digits, &n_digits);
}

bool rf_name_to_gguf(const char *name, char *out, size_t out_size)
{
    const name_pair *pair;
    const char *digits;
    size_t n_digits = 0;
    if (lookup(name, &pair, &digits, &n_digits) == RF_NAMES_UNKNOWN)
        return false;
    return emit(pair, digits, n_digits, true, out, out_size);
}

bool rf_name_to_hf(const char *name, char *out, size_t out_size)
{
    const name_pair *pair;
    const char *digits;
    size_t n_digits = 0;
    if (lookup(name, &pair, &digits, &n_digits) == RF_NAMES_UNKNOWN)
        return false;
    return emit(pair, digits, n_digits, false, out, out_size);
}

bool rf_name_to_apr(const char *name, const char *arch, char *out, size_t out_size)
{
    /* aprender maps GGUF names to HF names only for the Qwen families (apr-v2.md 15.2). */
    bool qwen = arch && (strcmp(arch, "qwen2") == 0 || strncmp(arch, "qwen3", 5) == 0);
    if (qwen && rf_name_scheme_of(name) == RF_NAMES_GGUF)
        return rf_name_to_hf(name, out, out_size);
    int n = snprintf(out, out_size, "%s", name);
    return n >= 0 && (size_t)n < out_size;
}
