/* Type plans for quantization mixes: the rules of llama-quantize's tensor type selection
 * (llama.cpp src/llama-quant.cpp: tensor_allows_quantization, llama_tensor_get_type and its
 * impl, tensor_type_fallback), restated for Rosetta's tensor view. Not for: quantizing data. */
#include "rosetta/quant_plan.h"

#include <ctype.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rosetta/names.h"
#include "write_hook.h"

/* ---- mixes -------------------------------------------------------------------------------- */

typedef struct mix_info {
    rf_quant_mix mix;
    const char *name;
    rf_dtype default_dtype;
} mix_info;

static const mix_info MIXES[] = {
    {RF_MIX_F32, "F32", RF_DTYPE_F32},        {RF_MIX_F16, "F16", RF_DTYPE_F16},
    {RF_MIX_BF16, "BF16", RF_DTYPE_BF16},     {RF_MIX_Q4_0, "Q4_0", RF_DTYPE_Q4_0},
    {RF_MIX_Q4_1, "Q4_1", RF_DTYPE_Q4_1},     {RF_MIX_Q5_0, "Q5_0", RF_DTYPE_Q5_0},
    {RF_MIX_Q5_1, "Q5_1", RF_DTYPE_Q5_1},     {RF_MIX_Q8_0, "Q8_0", RF_DTYPE_Q8_0},
    {RF_MIX_Q2_K, "Q2_K", RF_DTYPE_Q2_K},     {RF_MIX_Q3_K_S, "Q3_K_S", RF_DTYPE_Q3_K},
    {RF_MIX_Q3_K_M, "Q3_K_M", RF_DTYPE_Q3_K}, {RF_MIX_Q3_K_L, "Q3_K_L", RF_DTYPE_Q3_K},
    {RF_MIX_Q4_K_S, "Q4_K_S", RF_DTYPE_Q4_K}, {RF_MIX_Q4_K_M, "Q4_K_M", RF_DTYPE_Q4_K},
    {RF_MIX_Q5_K_S, "Q5_K_S", RF_DTYPE_Q5_K}, {RF_MIX_Q5_K_M, "Q5_K_M", RF_DTYPE_Q5_K},
    {RF_MIX_Q6_K, "Q6_K", RF_DTYPE_Q6_K},
};
#define N_MIXES (sizeof MIXES / sizeof MIXES[0])

static const mix_info *mix_lookup(rf_quant_mix mix)
{
    for (size_t i = 0; i < N_MIXES; i++)
        if (MIXES[i].mix == mix)
            return &MIXES[i];
    return NULL;
}

bool rf_quant_mix_from_name(const char *name, rf_quant_mix *out)
{
    if (name == NULL || *name == '\0')
        return false;
    for (size_t i = 0; i < N_MIXES; i++) {
        if (strcasecmp(name, MIXES[i].name) == 0) {
            *out = MIXES[i].mix;
            return true;
        }
    }
    /* llama-quantize's aliases */
    static const struct {
        const char *alias;
        rf_quant_mix mix;
    } ALIASES[] = {{"Q3_K", RF_MIX_Q3_K_M}, {"Q4_K", RF_MIX_Q4_K_M}, {"Q5_K", RF_MIX_Q5_K_M}};
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++) {
        if (strcasecmp(name, ALIASES[i].alias) == 0) {
            *out = ALIASES[i].mix;
            return true;
        }
    }
    /* the llama_ftype number */
    char *end = NULL;
    long value = strtol(name, &end, 10);
    if (end != name && *end == '\0' && value >= 0 && value <= INT_MAX) {
        const mix_info *info = mix_lookup((rf_quant_mix)value);
        if (info != NULL) {
            *out = info->mix;
            return true;
        }
    }
    return false;
}

const char *rf_quant_mix_name(rf_quant_mix mix)
{
    const mix_info *info = mix_lookup(mix);
    return info ? info->name : NULL;
}

bool rf_quant_mix_default_dtype(rf_quant_mix mix, rf_dtype *out)
{
    const mix_info *info = mix_lookup(mix);
    if (info == NULL)
        return false;
    *out = info->default_dtype;
    return true;
}

rf_quant_plan_options rf_quant_plan_options_default(rf_quant_mix mix)
{
    rf_quant_plan_options opts;
    memset(&opts, 0, sizeof opts);
    opts.mix = mix;
    opts.output_tensor_type = RF_DTYPE_F32;
    opts.token_embedding_type = RF_DTYPE_F32;
    return opts;
}

/* A type an override may name: one ggml knows (llama-quantize parses ggml type names). */
static bool ggml_type_by_name(const char *name, rf_dtype *out)
{
    rf_dtype dtype;
    if (!rf_dtype_from_name(name, &dtype))
        return false;
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (info == NULL || info->ggml_code < 0)
        return false;
    *out = dtype;
    return true;
}

rf_status rf_quant_override_parse(const char *spec, size_t *pattern_len, rf_dtype *dtype,
                                  rf_error *err)
{
    const char *sep = spec ? strchr(spec, '=') : NULL;
    if (sep == NULL)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "tensor type override '%s': expected PATTERN=TYPE", spec ? spec : "");
    if (sep == spec)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "tensor type override '%s': the pattern before '=' is empty", spec);
    if (sep[1] == '\0')
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "tensor type override '%s': the type after '=' is empty", spec);
    if (!ggml_type_by_name(sep + 1, dtype))
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "tensor type override '%s': '%s' is not a GGUF tensor type name", spec,
                            sep + 1);
    *pattern_len = (size_t)(sep - spec);
    return RF_OK;
}

/* ---- tensor facts ------------------------------------------------------------------------- */

typedef enum category {
    CAT_TOKEN_EMBD,
    CAT_ATTN_Q,
    CAT_ATTN_V,
    CAT_ATTN_K,
    CAT_ATTN_QKV,
    CAT_ATTN_KV_B,
    CAT_ATTN_OUTPUT,
    CAT_FFN_UP,
    CAT_FFN_GATE,
    CAT_FFN_DOWN,
    CAT_OUTPUT,
    CAT_OTHER,
} category;

static bool contains(const char *name, const char *part) { return strstr(name, part) != NULL; }

static bool is_token_embd_name(const char *name)
{
    return strcmp(name, "token_embd.weight") == 0 ||
           strcmp(name, "per_layer_token_embd.weight") == 0;
}

/* llama-quantize's categories, checked in its order (first match wins). */
static category category_of(const char *name)
{
    if (strcmp(name, "output.weight") == 0)
        return CAT_OUTPUT;
    if (is_token_embd_name(name))
        return CAT_TOKEN_EMBD;
    if (contains(name, "attn_qkv.weight"))
        return CAT_ATTN_QKV;
    if (contains(name, "attn_kv_b.weight"))
        return CAT_ATTN_KV_B;
    if (contains(name, "attn_v.weight"))
        return CAT_ATTN_V;
    if (contains(name, "attn_k.weight"))
        return CAT_ATTN_K;
    if (contains(name, "attn_q.weight"))
        return CAT_ATTN_Q;
    if (contains(name, "attn_output.weight"))
        return CAT_ATTN_OUTPUT;
    if (contains(name, "ffn_up"))
        return CAT_FFN_UP;
    if (contains(name, "ffn_gate"))
        return CAT_FFN_GATE;
    if (contains(name, "ffn_down"))
        return CAT_FFN_DOWN;
    return CAT_OTHER;
}

static bool category_is_attn_v(category cat)
{
    return cat == CAT_ATTN_V || cat == CAT_ATTN_QKV || cat == CAT_ATTN_KV_B;
}

/* ggml's ne[0]: the row length (innermost dimension; 1 for a scalar). */
static uint64_t row_length(const rf_tensor *t) { return t->ndim > 0 ? t->shape[t->ndim - 1] : 1; }

/* ggml_n_dims: trailing dimensions of size 1 do not count (a [1, 896] tensor is 1-D). */
static int ggml_n_dims(const rf_tensor *t)
{
    for (int i = 0; i < t->ndim; i++) /* ne[i] = shape[ndim - 1 - i] */
        if (t->shape[i] > 1)
            return t->ndim - i;
    return 1;
}

/* The layer number as llama.cpp's sscanf(name, "blk.%d.") reads it, or -1. */
static int layer_of(const char *name)
{
    if (strncmp(name, "blk.", 4) != 0)
        return -1;
    const char *p = name + 4;
    char *end = NULL;
    long value = strtol(p, &end, 10); /* %d also skips spaces and takes a sign */
    if (end == p)
        return -1;
    if (value > INT_MAX || value < INT_MIN)
        return -1;
    return (int)value;
}

static uint32_t block_elems(rf_dtype dtype)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    return info ? info->block_elems : 1;
}

static bool is_quantized(rf_dtype dtype)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    return info != NULL && info->kind == RF_KIND_QUANT;
}

/* Exclusion list of tensor_allows_quantization (substrings of the name). */
static const char *const NEVER_QUANTIZED[] = {
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
};

/* Extra exclusions for the glm5-next architecture. */
static const char *const NEVER_QUANTIZED_GLM5_NEXT[] = {
    "hc_",
    "indexer.attn_q_b",
    "indexer.attn_k",
    "indexer.proj",
    "indexer_compressor_gate",
    "indexer_compressor_ape",
    "ssm_f_a.weight",
    "ssm_f_b.weight",
    "ssm_g_a.weight",
    "ssm_g_b.weight",
    "ssm_beta.weight",
    "attn_kv_a_mqa.weight",
    "attn_k_b.weight",
    "attn_v_b.weight",
};

/* ---- planner state ------------------------------------------------------------------------ */

typedef struct planner {
    const rf_quant_plan_options *opts;
    rf_dtype default_dtype;
    bool arch_falcon;
    bool arch_glm5_next;
    bool type_70b;     /* llama.cpp's LLM_TYPE_70B */
    uint32_t n_expert; /* as in the file (0 when absent) */
    uint32_t n_gqa;
    int n_layer;
    bool tied_embeddings;
    int n_attention_wv, i_attention_wv;
    int i_ffn_down, i_ffn_gate, i_ffn_up;
    regex_t *patterns; /* opts->n_overrides compiled patterns */
    size_t n_compiled;
} planner;

/* Appends to an entry's reason, separating clauses with "; ". */
static void reason_add(rf_quant_plan_entry *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reason_add(rf_quant_plan_entry *e, const char *fmt, ...)
{
    size_t used = strlen(e->reason);
    if (used + 1 >= sizeof e->reason)
        return;
    if (used > 0) {
        snprintf(e->reason + used, sizeof e->reason - used, "; ");
        used = strlen(e->reason);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reason + used, sizeof e->reason - used, fmt, ap);
    va_end(ap);
}

static bool allows_quantization(const planner *p, const rf_tensor *t, const char **why)
{
    if (ggml_n_dims(t) < 2) {
        *why = "1-D tensor";
        return false;
    }
    const char *name = t->name;
    size_t len = strlen(name);
    if (len < 6 || strcmp(name + len - 6, "weight") != 0) {
        *why = "name does not end in 'weight'";
        return false;
    }
    if (p->opts->leave_output_tensor && strcmp(name, "output.weight") == 0) {
        *why = "--leave-output-tensor";
        return false;
    }
    if (strcmp(name, "position_embd.weight") == 0 || strcmp(name, "token_types.weight") == 0) {
        *why = "position or token-type embedding";
        return false;
    }
    for (size_t i = 0; i < sizeof NEVER_QUANTIZED / sizeof NEVER_QUANTIZED[0]; i++) {
        if (contains(name, NEVER_QUANTIZED[i])) {
            *why = strcmp(NEVER_QUANTIZED[i], "_norm.weight") == 0 ? "norm" : "excluded by name";
            return false;
        }
    }
    if (p->arch_glm5_next) {
        for (size_t i = 0;
             i < sizeof NEVER_QUANTIZED_GLM5_NEXT / sizeof NEVER_QUANTIZED_GLM5_NEXT[0]; i++) {
            if (contains(name, NEVER_QUANTIZED_GLM5_NEXT[i])) {
                *why = "excluded by name (glm5-next)";
                return false;
            }
        }
    }
    return true;
}

static bool use_more_bits(int i_layer, int n_layers)
{
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

static bool mix_is(const planner *p, rf_quant_mix m) { return p->opts->mix == m; }

/* llama_tensor_get_type_impl for the mixes Rosetta offers (the IQ and MXFP4 branches cannot be
 * reached from them). Updates the per-category counters exactly where llama-quantize does. */
static rf_dtype mix_rule(planner *p, rf_dtype new_type, const rf_tensor *t, category cat,
                         rf_quant_plan_entry *e)
{
    const char *name = t->name;
    const bool falcon = p->arch_falcon;
    const uint32_t n_expert = p->n_expert;

    if (p->arch_glm5_next && (contains(name, "attn_q_a") || contains(name, "attn_q_b") ||
                              contains(name, "nextn.eh_proj"))) {
        if (new_type != RF_DTYPE_F32 && new_type != RF_DTYPE_BF16 && new_type != RF_DTYPE_F16) {
            reason_add(e, "glm5-next projection -> Q8_0");
            return RF_DTYPE_Q8_0;
        }
    }

    if (cat == CAT_OUTPUT || (p->tied_embeddings && cat == CAT_TOKEN_EMBD)) {
        const char *what = cat == CAT_OUTPUT ? "output head" : "tied token embedding (output rule)";
        if (p->opts->set_output_tensor_type) {
            reason_add(e, "%s: --output-tensor-type -> %s", what,
                       rf_dtype_name(p->opts->output_tensor_type));
            return p->opts->output_tensor_type;
        }
        uint64_t nx = row_length(t);
        uint32_t qk = block_elems(new_type);
        if (falcon) {
            reason_add(e, "%s (falcon) -> Q8_0", what);
            return RF_DTYPE_Q8_0;
        }
        if (nx % qk != 0) {
            reason_add(e, "%s: ne[0]=%llu not a multiple of %u -> Q8_0", what,
                       (unsigned long long)nx, qk);
            return RF_DTYPE_Q8_0;
        }
        if (new_type != RF_DTYPE_Q8_0) {
            reason_add(e, "%s -> Q6_K", what);
            return RF_DTYPE_Q6_K;
        }
        reason_add(e, "%s stays Q8_0", what);
        return new_type;
    }
    if (cat == CAT_TOKEN_EMBD) {
        /* untied: the IQ/TQ mixes change it; none of Rosetta's mixes do */
        if (p->opts->set_token_embedding_type) {
            reason_add(e, "token embedding: --token-embedding-type -> %s",
                       rf_dtype_name(p->opts->token_embedding_type));
            return p->opts->token_embedding_type;
        }
        reason_add(e, "untied token embedding keeps the default");
        return new_type;
    }
    if (category_is_attn_v(cat)) {
        const int i = p->i_attention_wv, n = p->n_attention_wv;
        const char *rule = NULL;
        if (mix_is(p, RF_MIX_Q2_K)) {
            new_type = p->n_gqa >= 4 ? RF_DTYPE_Q4_K : RF_DTYPE_Q3_K;
            rule = p->n_gqa >= 4 ? "attn_v with n_gqa >= 4" : "attn_v with n_gqa < 4";
        } else if (mix_is(p, RF_MIX_Q3_K_M)) {
            new_type = i < 2 ? RF_DTYPE_Q5_K : RF_DTYPE_Q4_K;
            rule = i < 2 ? "attn_v of the first 2 layers" : "attn_v";
        } else if (mix_is(p, RF_MIX_Q3_K_L)) {
            new_type = RF_DTYPE_Q5_K;
            rule = "attn_v";
        } else if ((mix_is(p, RF_MIX_Q4_K_M) || mix_is(p, RF_MIX_Q5_K_M)) && use_more_bits(i, n)) {
            new_type = RF_DTYPE_Q6_K;
            rule = "use_more_bits";
        } else if (mix_is(p, RF_MIX_Q4_K_S) && i < 4) {
            new_type = RF_DTYPE_Q5_K;
            rule = "attn_v of the first 4 layers";
        }
        if (rule != NULL)
            reason_add(e, "%s (attn_v #%d of %d) -> %s", rule, i, n, rf_dtype_name(new_type));
        if (p->type_70b && (new_type == RF_DTYPE_Q3_K || new_type == RF_DTYPE_Q4_K)) {
            new_type = RF_DTYPE_Q5_K;
            reason_add(e, "70B model: attn_v -> Q5_K");
        }
        if (n_expert == 8) {
            new_type = RF_DTYPE_Q8_0;
            reason_add(e, "8 experts: attn_v -> Q8_0");
        }
        if (e->reason[0] == '\0')
            reason_add(e, "attn_v #%d of %d keeps the default", i, n);
        p->i_attention_wv++;
        return new_type;
    }
    if (cat == CAT_ATTN_K) {
        if (n_expert == 8) {
            reason_add(e, "8 experts: attn_k -> Q8_0");
            return RF_DTYPE_Q8_0;
        }
        return new_type;
    }
    if (cat == CAT_ATTN_Q)
        return new_type;
    if (cat == CAT_FFN_DOWN) {
        int i_layer = p->i_ffn_down;
        const int n_layer = p->n_layer;
        if (n_expert > 1) /* experts are not consecutive: the layer comes from the name */
            i_layer = layer_of(name);
        const char *rule = NULL;
        if (mix_is(p, RF_MIX_Q2_K)) {
            new_type = RF_DTYPE_Q3_K;
            rule = "ffn_down";
        } else if (mix_is(p, RF_MIX_Q3_K_M)) {
            if (i_layer < n_layer / 16) {
                new_type = RF_DTYPE_Q5_K;
                rule = "ffn_down in the first n/16 layers";
            } else if (!falcon || use_more_bits(i_layer, n_layer)) {
                new_type = RF_DTYPE_Q4_K;
                rule = "ffn_down";
            } else {
                new_type = RF_DTYPE_Q3_K;
                rule = "ffn_down (falcon)";
            }
        } else if (mix_is(p, RF_MIX_Q3_K_L)) {
            new_type = falcon ? RF_DTYPE_Q4_K : RF_DTYPE_Q5_K;
            rule = "ffn_down";
        } else if (mix_is(p, RF_MIX_Q4_K_M)) {
            if (falcon) {
                new_type = i_layer < n_layer / 16            ? RF_DTYPE_Q6_K
                           : use_more_bits(i_layer, n_layer) ? RF_DTYPE_Q5_K
                                                             : RF_DTYPE_Q4_K;
                rule = "ffn_down (falcon)";
            } else if (use_more_bits(i_layer, n_layer)) {
                new_type = RF_DTYPE_Q6_K;
                rule = "use_more_bits";
            }
        } else if (mix_is(p, RF_MIX_Q5_K_M) && use_more_bits(i_layer, n_layer)) {
            new_type = RF_DTYPE_Q6_K;
            rule = "use_more_bits";
        } else if (mix_is(p, RF_MIX_Q4_K_S) && !falcon && i_layer < n_layer / 8) {
            new_type = RF_DTYPE_Q5_K;
            rule = "ffn_down in the first n/8 layers";
        } else if ((mix_is(p, RF_MIX_Q4_0) || mix_is(p, RF_MIX_Q5_0)) && p->opts->has_imatrix &&
                   i_layer < n_layer / 8) {
            new_type = mix_is(p, RF_MIX_Q4_0) ? RF_DTYPE_Q4_1 : RF_DTYPE_Q5_1;
            rule = "ffn_down in the first n/8 layers with an imatrix";
        }
        if (rule != NULL)
            reason_add(e, "%s (ffn_down layer %d of %d) -> %s", rule, i_layer, n_layer,
                       rf_dtype_name(new_type));
        else
            reason_add(e, "ffn_down layer %d of %d keeps the default", i_layer, n_layer);
        p->i_ffn_down++;
        return new_type;
    }
    if (cat == CAT_ATTN_OUTPUT) {
        const char *rule = NULL;
        if (!falcon) {
            if (n_expert == 8) {
                if (mix_is(p, RF_MIX_Q2_K) || mix_is(p, RF_MIX_Q3_K_S) ||
                    mix_is(p, RF_MIX_Q3_K_M) || mix_is(p, RF_MIX_Q4_K_S) ||
                    mix_is(p, RF_MIX_Q4_K_M)) {
                    new_type = RF_DTYPE_Q5_K;
                    rule = "attn_output with 8 experts";
                }
            } else if (mix_is(p, RF_MIX_Q2_K)) {
                new_type = RF_DTYPE_Q3_K;
                rule = "attn_output";
            } else if (mix_is(p, RF_MIX_Q3_K_M)) {
                new_type = RF_DTYPE_Q4_K;
                rule = "attn_output";
            } else if (mix_is(p, RF_MIX_Q3_K_L)) {
                new_type = RF_DTYPE_Q5_K;
                rule = "attn_output";
            }
        } else if (mix_is(p, RF_MIX_Q3_K_L)) {
            new_type = RF_DTYPE_Q4_K;
            rule = "attn_output (falcon)";
        }
        if (rule != NULL)
            reason_add(e, "%s -> %s", rule, rf_dtype_name(new_type));
        return new_type;
    }
    if (cat == CAT_ATTN_QKV) {
        /* unreachable in llama-quantize too: attn_qkv is attn_v-like and handled above */
        return new_type;
    }
    if (cat == CAT_FFN_GATE) {
        p->i_ffn_gate++; /* only the IQ3_XS mix uses this counter */
        return new_type;
    }
    if (cat == CAT_FFN_UP) {
        p->i_ffn_up++;
        return new_type;
    }
    return new_type;
}

/* tensor_type_fallback: a type whose block does not divide the row length falls back to a
 * 32-element type, and to F16 when even that does not divide it. */
static rf_status fallback(const rf_tensor *t, rf_dtype target, rf_dtype *out,
                          rf_quant_plan_entry *e, rf_error *err)
{
    const uint64_t ncols = row_length(t);
    const uint32_t qk = block_elems(target);
    *out = target;
    if (ncols % qk == 0)
        return RF_OK;
    rf_dtype ret = target;
    bool defined = true;
    switch (target) {
    case RF_DTYPE_IQ1_S:
    case RF_DTYPE_IQ1_M:
    case RF_DTYPE_IQ2_XXS:
    case RF_DTYPE_IQ2_XS:
    case RF_DTYPE_IQ2_S:
    case RF_DTYPE_IQ3_XXS:
    case RF_DTYPE_IQ3_S:
    case RF_DTYPE_IQ4_XS: ret = RF_DTYPE_IQ4_NL; break;
    case RF_DTYPE_Q2_0:
    case RF_DTYPE_Q2_K:
    case RF_DTYPE_Q3_K:
    case RF_DTYPE_TQ1_0:
    case RF_DTYPE_TQ2_0: ret = RF_DTYPE_Q4_0; break;
    case RF_DTYPE_Q4_K: ret = RF_DTYPE_Q5_0; break;
    case RF_DTYPE_Q5_K: ret = RF_DTYPE_Q5_1; break;
    case RF_DTYPE_Q6_K: ret = RF_DTYPE_Q8_0; break;
    case RF_DTYPE_F32:
    case RF_DTYPE_F16:
    case RF_DTYPE_Q4_0:
    case RF_DTYPE_Q4_1:
    case RF_DTYPE_Q5_0:
    case RF_DTYPE_Q5_1:
    case RF_DTYPE_Q8_0:
    case RF_DTYPE_Q8_1:
    case RF_DTYPE_Q8_K:
    case RF_DTYPE_IQ4_NL:
    case RF_DTYPE_I8:
    case RF_DTYPE_I16:
    case RF_DTYPE_I32:
    case RF_DTYPE_I64:
    case RF_DTYPE_F64:
    case RF_DTYPE_BF16:
    case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4:
    case RF_DTYPE_Q1_0:
    case RF_DTYPE_U8:
    case RF_DTYPE_U16:
    case RF_DTYPE_U32:
    case RF_DTYPE_U64:
    case RF_DTYPE_BOOL:
    case RF_DTYPE_C64:
    case RF_DTYPE_F8_E5M2:
    case RF_DTYPE_F8_E4M3:
    case RF_DTYPE_F8_E8M0:
    case RF_DTYPE_F8_E4M3FNUZ:
    case RF_DTYPE_F8_E5M2FNUZ:
    case RF_DTYPE_F6_E2M3:
    case RF_DTYPE_F6_E3M2:
    case RF_DTYPE_F4:
    case RF_DTYPE_APR_Q4:
    case RF_DTYPE_APR_Q8:
        /* a 32-element (or smaller) block has no smaller type to fall back to: F16 below */
        defined = qk <= 32;
        break;
    }
    if (!defined)
        return rf_error_set(
            err, RF_ERR_UNSUPPORTED,
            "tensor %s: row length ne[0]=%llu is not a multiple of %u (block of %s) "
            "and no tensor type fallback is defined for %s",
            t->name, (unsigned long long)ncols, qk, rf_dtype_name(target), rf_dtype_name(target));
    if (ncols % block_elems(ret) != 0) {
        reason_add(e, "fallback: ne[0]=%llu not a multiple of %u (%s) nor of %u -> F16",
                   (unsigned long long)ncols, qk, rf_dtype_name(target), block_elems(ret));
        ret = RF_DTYPE_F16;
    } else {
        reason_add(e, "fallback: ne[0]=%llu not a multiple of %u (%s) -> %s",
                   (unsigned long long)ncols, qk, rf_dtype_name(target), rf_dtype_name(ret));
    }
    e->fallback = true;
    *out = ret;
    return RF_OK;
}

/* The first override whose pattern occurs in name, or -1. */
static long find_override(const planner *p, const char *name)
{
    for (size_t i = 0; i < p->n_compiled; i++)
        if (regexec(&p->patterns[i], name, 0, NULL, 0) == 0)
            return (long)i;
    return -1;
}

/* llama_tensor_get_type: the outer wrapper around the mix rules. */
static rf_status choose_type(planner *p, const rf_tensor *t, category cat, rf_quant_plan_entry *e,
                             rf_error *err)
{
    const rf_quant_plan_options *o = p->opts;
    if (o->set_token_embedding_type && cat == CAT_TOKEN_EMBD) {
        /* per_layer_token_embd follows --token-embedding-type unless an override names it */
        bool named =
            strcmp(t->name, "per_layer_token_embd.weight") == 0 && find_override(p, t->name) >= 0;
        if (!named) {
            reason_add(e, "--token-embedding-type");
            e->chosen_dtype = e->dtype = o->token_embedding_type;
            return RF_OK;
        }
    }
    if (o->set_output_tensor_type && cat == CAT_OUTPUT) {
        reason_add(e, "--output-tensor-type");
        e->chosen_dtype = e->dtype = o->output_tensor_type;
        return RF_OK;
    }
    rf_dtype new_type = p->default_dtype;
    if (!is_quantized(p->default_dtype)) {
        reason_add(e, "mix %s: all weights %s", rf_quant_mix_name(o->mix), rf_dtype_name(new_type));
        e->chosen_dtype = e->dtype = new_type;
        return RF_OK;
    }
    bool manual = false;
    long k = find_override(p, t->name);
    if (k >= 0) {
        new_type = o->overrides[k].dtype;
        reason_add(e, "--tensor-type %s=%s", o->overrides[k].pattern, rf_dtype_name(new_type));
        manual = true;
    }
    if (!manual && !o->pure) {
        /* with experts, the ffn rules take the layer from the name and llama-quantize stops
         * when it cannot */
        if (p->n_expert > 1 && (cat == CAT_FFN_DOWN || cat == CAT_FFN_GATE || cat == CAT_FFN_UP)) {
            int layer = layer_of(t->name);
            if (layer < 0 || layer >= p->n_layer)
                return rf_error_set(err, RF_ERR_FORMAT,
                                    "tensor %s: expert model tensor without a layer number in "
                                    "[0, %d) in its name (blk.N.)",
                                    t->name, p->n_layer);
        }
        new_type = mix_rule(p, new_type, t, cat, e);
    } else if (!manual) {
        reason_add(e, "--pure");
    }
    if (e->reason[0] == '\0')
        reason_add(e, "mix default %s", rf_dtype_name(new_type));
    e->chosen_dtype = new_type;
    return fallback(t, new_type, &e->dtype, e, err);
}

/* ---- patterns ----------------------------------------------------------------------------- */

/* Lower-cases an ECMAScript-style pattern and rewrites the class escapes POSIX ERE lacks. */
static char *translate_pattern(const char *pattern)
{
    size_t len = strlen(pattern);
    char *out = malloc(len * 16 + 1);
    if (out == NULL)
        return NULL;
    size_t w = 0;
    bool in_bracket = false;
    for (size_t i = 0; i < len; i++) {
        char c = (char)tolower((unsigned char)pattern[i]);
        if (c == '\\' && i + 1 < len) {
            char n = pattern[i + 1]; /* the class letter keeps its case: \D vs \d */
            const char *rep = NULL;
            if (!in_bracket) {
                switch (n) {
                case 'd': rep = "[0-9]"; break;
                case 'D': rep = "[^0-9]"; break;
                case 's': rep = "[[:space:]]"; break;
                case 'S': rep = "[^[:space:]]"; break;
                case 'w': rep = "[[:alnum:]_]"; break;
                case 'W': rep = "[^[:alnum:]_]"; break;
                default: break;
                }
            } else {
                switch (n) {
                case 'd': rep = "0-9"; break;
                case 's': rep = "[:space:]"; break;
                case 'w': rep = "[:alnum:]_"; break;
                default: break;
                }
            }
            if (rep != NULL) {
                memcpy(out + w, rep, strlen(rep));
                w += strlen(rep);
                i++;
                continue;
            }
            if (in_bracket) { /* inside [...] a backslash is literal in POSIX: drop it */
                out[w++] = (char)tolower((unsigned char)n);
                i++;
                continue;
            }
            out[w++] = '\\';
            out[w++] = (char)tolower((unsigned char)n);
            i++;
            continue;
        }
        if (!in_bracket && c == '[') {
            in_bracket = true;
            out[w++] = c;
            /* a leading ^ and a leading ] belong to the bracket */
            if (i + 1 < len && pattern[i + 1] == '^')
                out[w++] = pattern[++i];
            if (i + 1 < len && pattern[i + 1] == ']')
                out[w++] = pattern[++i];
            continue;
        }
        if (in_bracket && c == ']')
            in_bracket = false;
        out[w++] = c;
    }
    out[w] = '\0';
    return out;
}

static void free_patterns(planner *p)
{
    for (size_t i = 0; i < p->n_compiled; i++)
        regfree(&p->patterns[i]);
    free(p->patterns);
    p->patterns = NULL;
    p->n_compiled = 0;
}

static rf_status compile_patterns(planner *p, rf_error *err)
{
    const rf_quant_plan_options *o = p->opts;
    if (o->n_overrides == 0)
        return RF_OK;
    p->patterns = calloc(o->n_overrides, sizeof *p->patterns);
    if (p->patterns == NULL)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory compiling tensor type patterns");
    for (size_t i = 0; i < o->n_overrides; i++) {
        const char *pat = o->overrides[i].pattern;
        if (pat == NULL || pat[0] == '\0')
            return rf_error_set(err, RF_ERR_ARGUMENT, "tensor type override %zu: empty pattern", i);
        const rf_dtype_info *info = rf_dtype_get(o->overrides[i].dtype);
        if (info == NULL || info->ggml_code < 0)
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "tensor type override '%s': type %d is not a GGUF tensor type", pat,
                                (int)o->overrides[i].dtype);
        char *translated = translate_pattern(pat);
        if (translated == NULL)
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory compiling pattern '%s'", pat);
        int rc = regcomp(&p->patterns[i], translated, REG_EXTENDED | REG_NOSUB);
        free(translated);
        if (rc != 0) {
            char msg[256];
            regerror(rc, &p->patterns[i], msg, sizeof msg);
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "tensor type override '%s': invalid regular expression: %s", pat,
                                msg);
        }
        p->n_compiled = i + 1;
    }
    return RF_OK;
}

/* ---- the plan ----------------------------------------------------------------------------- */

typedef struct order_item {
    int layer;
    const char *name;
    size_t index;
} order_item;

static int order_cmp(const void *a, const void *b)
{
    const order_item *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name); /* byte-wise, as std::string's operator< */
}

static bool arch_is(const char *arch, const char *name) { return arch && strcmp(arch, name) == 0; }

/* llama.cpp's LLM_TYPE_70B, the only model type the rules look at. */
static bool is_type_70b(const rf_quant_model_info *info)
{
    const char *a = info->architecture;
    if (arch_is(a, "llama"))
        return info->n_expert != 8 && info->n_layer == 80 && info->n_head != info->n_head_kv;
    if (arch_is(a, "qwen2") || arch_is(a, "deci") || arch_is(a, "olmo"))
        return info->n_layer == 80;
    if (arch_is(a, "jais2"))
        return info->n_layer == 68;
    return false;
}

static bool widenable(rf_dtype dtype)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (info == NULL || dtype == RF_DTYPE_F32)
        return false;
    return info->kind == RF_KIND_QUANT || dtype == RF_DTYPE_F16 || dtype == RF_DTYPE_BF16 ||
           dtype == RF_DTYPE_F64;
}

static rf_status validate_options(const rf_quant_plan_options *o, rf_error *err)
{
    if (mix_lookup(o->mix) == NULL)
        return rf_error_set(err, RF_ERR_ARGUMENT, "quantization mix %d is not supported",
                            (int)o->mix);
    if (o->n_overrides > 0 && o->overrides == NULL)
        return rf_error_set(err, RF_ERR_ARGUMENT, "%zu tensor type overrides but no array",
                            o->n_overrides);
    const struct {
        bool set;
        rf_dtype dtype;
        const char *flag;
    } TYPES[] = {{o->set_output_tensor_type, o->output_tensor_type, "--output-tensor-type"},
                 {o->set_token_embedding_type, o->token_embedding_type, "--token-embedding-type"}};
    for (size_t i = 0; i < 2; i++) {
        if (!TYPES[i].set)
            continue;
        const rf_dtype_info *info = rf_dtype_get(TYPES[i].dtype);
        if (info == NULL || info->ggml_code < 0)
            return rf_error_set(err, RF_ERR_ARGUMENT, "%s: type %d is not a GGUF tensor type",
                                TYPES[i].flag, (int)TYPES[i].dtype);
    }
    return RF_OK;
}

rf_status rf_quant_plan_make(const rf_tensor *tensors, size_t n, const rf_quant_model_info *info,
                             const rf_quant_plan_options *opts, rf_quant_plan **out, rf_error *err)
{
    if (out == NULL || opts == NULL || (tensors == NULL && n > 0))
        return rf_error_set(err, RF_ERR_ARGUMENT, "rf_quant_plan_make: NULL argument");
    *out = NULL;
    rf_status st = validate_options(opts, err);
    if (st != RF_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (tensors[i].name == NULL)
            return rf_error_set(err, RF_ERR_ARGUMENT, "tensor %zu has no name", i);

    rf_quant_model_info none = {0};
    if (info == NULL)
        info = &none;

    planner p;
    memset(&p, 0, sizeof p);
    p.opts = opts;
    rf_quant_mix_default_dtype(opts->mix, &p.default_dtype);
    p.arch_falcon = arch_is(info->architecture, "falcon");
    p.arch_glm5_next = arch_is(info->architecture, "glm5-next");
    p.type_70b = is_type_70b(info);
    p.n_expert = info->n_expert;
    p.n_gqa = info->n_head_kv == 0 ? 0 : info->n_head / info->n_head_kv;
    p.tied_embeddings = true;

    rf_quant_plan *plan = calloc(1, sizeof *plan);
    order_item *order = calloc(n ? n : 1, sizeof *order);
    if (plan == NULL || order == NULL) {
        free(plan);
        free(order);
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory planning %zu tensors", n);
    }
    plan->entries = calloc(n ? n : 1, sizeof *plan->entries);
    if (plan->entries == NULL) {
        free(plan);
        free(order);
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory planning %zu tensors", n);
    }
    plan->mix = opts->mix;
    plan->file_type = (uint32_t)opts->mix;
    plan->n_entries = n;

    int max_layer = -1;
    for (size_t i = 0; i < n; i++) {
        order[i].layer = layer_of(tensors[i].name);
        order[i].name = tensors[i].name;
        order[i].index = i;
        if (order[i].layer > max_layer)
            max_layer = order[i].layer;
        category cat = category_of(tensors[i].name);
        if (category_is_attn_v(cat))
            p.n_attention_wv++;
        if (cat == CAT_OUTPUT)
            p.tied_embeddings = false;
    }
    p.n_layer = info->n_layer > 0 ? (int)(info->n_layer > INT_MAX ? INT_MAX : info->n_layer)
                                  : max_layer + 1;
    qsort(order, n, sizeof *order, order_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(order[i - 1].name, order[i].name) == 0) {
            rf_error_set(err, RF_ERR_FORMAT, "tensor %s appears twice", order[i].name);
            free(order);
            rf_quant_plan_free(plan);
            return RF_ERR_FORMAT;
        }
    }

    st = compile_patterns(&p, err);
    for (size_t k = 0; st == RF_OK && k < n; k++) {
        const rf_tensor *t = &tensors[order[k].index];
        rf_quant_plan_entry *e = &plan->entries[k];
        e->tensor_index = order[k].index;
        e->name = t->name;
        e->src_dtype = t->dtype;
        st = rf_shape_elements(t->shape, t->ndim, &e->n_elements, err);
        if (st == RF_OK)
            st = rf_dtype_tensor_bytes(t->dtype, t->shape, t->ndim, &e->src_bytes, err);
        if (st != RF_OK) {
            rf_error_prefix(err, "tensor %s", t->name);
            break;
        }
        const char *why = NULL;
        e->quantizable = allows_quantization(&p, t, &why);
        if (e->quantizable) {
            st = choose_type(&p, t, category_of(t->name), e, err);
            if (st != RF_OK)
                break;
        } else {
            e->chosen_dtype = e->dtype = t->dtype;
            reason_add(e, "not quantized: %s", why);
            if (opts->widen_kept_to_f32 && widenable(t->dtype)) {
                e->chosen_dtype = e->dtype = RF_DTYPE_F32;
                reason_add(e, "widened to F32 as in a converted GGUF");
            }
        }
        if (e->fallback)
            plan->n_fallback++;
        e->convert = e->dtype != e->src_dtype;
        if (e->convert) {
            st = rf_dtype_tensor_bytes(e->dtype, t->shape, t->ndim, &e->dst_bytes, err);
            if (st != RF_OK) {
                rf_error_prefix(err, "tensor %s planned as %s", t->name, rf_dtype_name(e->dtype));
                break;
            }
            plan->n_convert++;
        } else {
            e->dst_bytes = e->src_bytes;
        }
        plan->n_elements += e->n_elements;
        plan->src_bytes += e->src_bytes;
        plan->dst_bytes += e->dst_bytes;
    }
    free_patterns(&p);
    free(order);
    if (st != RF_OK) {
        rf_quant_plan_free(plan);
        return st;
    }
    *out = plan;
    return RF_OK;
}

static uint32_t clamp_u32(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v; }

/* expert_count is not in rf_model_config: read it from GGUF metadata when present. */
static uint32_t model_n_expert(const rf_model *model, const char *arch)
{
    if (arch == NULL)
        return 0;
    char key[160];
    snprintf(key, sizeof key, "%s.expert_count", arch);
    const rf_kv *kv = rf_model_find_kv(model, key);
    uint64_t v = 0;
    if (kv != NULL && rf_value_as_u64(&kv->value, &v))
        return clamp_u32(v);
    return 0;
}

rf_quant_model_info rf_quant_model_info_of(const rf_model *model)
{
    const rf_model_config *cfg = rf_model_config_get(model);
    rf_quant_model_info info = {0};
    info.architecture = rfi_gguf_architecture_name(cfg->architecture);
    info.n_layer = clamp_u32(cfg->n_layers);
    info.n_head = clamp_u32(cfg->n_heads);
    info.n_head_kv = clamp_u32(cfg->n_kv_heads);
    info.n_expert = model_n_expert(model, info.architecture);
    return info;
}

/* Bytes of one GGUF name in the plan's name storage (GGUF allows 63 plus the NUL; a longer
 * name is kept whole in a bigger slot, see below). */
#define PLAN_NAME_SLOT 128

rf_status rf_quant_plan_for_model(const rf_model *model, const rf_quant_plan_options *opts,
                                  rf_quant_plan **out, rf_error *err)
{
    if (model == NULL || out == NULL)
        return rf_error_set(err, RF_ERR_ARGUMENT, "rf_quant_plan_for_model: NULL argument");
    *out = NULL;
    const bool gguf = rf_model_format(model) == RF_FORMAT_GGUF;
    const bool tied = rf_model_config_get(model)->tie_word_embeddings == 1;
    size_t n = rf_model_n_tensors(model), names_bytes = 0;
    for (size_t i = 0; i < n; i++)
        names_bytes += strlen(rf_model_tensor(model, i)->name) + PLAN_NAME_SLOT;
    rf_tensor *view = calloc(n ? n : 1, sizeof *view);
    size_t *source = calloc(n ? n : 1, sizeof *source);
    char *names = malloc(names_bytes ? names_bytes : 1);
    if (view == NULL || source == NULL || names == NULL) {
        free(view);
        free(source);
        free(names);
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory planning %zu tensors", n);
    }
    size_t n_view = 0, used = 0;
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(model, i);
        char *name = names + used;
        size_t room = strlen(t->name) + PLAN_NAME_SLOT;
        if (gguf || !rf_name_to_gguf(t->name, name, room))
            snprintf(name, room, "%s", t->name);
        /* a tied model's head is its token embedding: GGUF has no output.weight then (see
         * docs/formats/gguf.md), and the plan treats the embedding as the head */
        if (!gguf && tied && strcmp(name, "output.weight") == 0)
            continue;
        used += strlen(name) + 1;
        view[n_view] = *t;
        view[n_view].name = name;
        source[n_view++] = i;
    }
    rf_quant_model_info info = rf_quant_model_info_of(model);
    rf_quant_plan *plan = NULL;
    rf_status st = rf_quant_plan_make(view, n_view, &info, opts, &plan, err);
    if (st == RF_OK) {
        for (size_t i = 0; i < plan->n_entries; i++)
            plan->entries[i].tensor_index = source[plan->entries[i].tensor_index];
        plan->name_storage = names;
        names = NULL;
        *out = plan;
    }
    free(names);
    free(view);
    free(source);
    return st;
}

void rf_quant_plan_free(rf_quant_plan *plan)
{
    if (plan == NULL)
        return;
    free(plan->entries);
    free(plan->name_storage);
    free(plan);
}

const rf_quant_plan_entry *rf_quant_plan_find(const rf_quant_plan *plan, const char *name)
{
    if (plan == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < plan->n_entries; i++)
        if (strcmp(plan->entries[i].name, name) == 0)
            return &plan->entries[i];
    return NULL;
}
