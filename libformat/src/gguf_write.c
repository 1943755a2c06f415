/* GGUF writer: lays a model view out as a little-endian GGUF v3 file that ggml's reader
 * (llama.cpp) accepts (docs/formats/gguf.md), synthesizing the metadata llama.cpp's
 * converter writes when the model came from SafeTensors or APR (section 14).
 * Not for: choosing dtypes (quantization) or contract checks (apr validate); the one conversion
 * here is widening F16/BF16 vectors to F32 for SafeTensors/APR sources (llama.cpp needs it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_internal.h"
#include "kv_list.h"
#include "model_internal.h"
#include "rosetta/gguf.h"
#include "rosetta/half.h"
#include "io.h"
#include "rosetta/contract.h"
#include "write_hook.h"

typedef struct out_tensor {
    const rf_tensor *src; /* descriptor in the scratch model: GGUF name, source data */
    uint64_t offset;      /* relative to the data section */
} out_tensor;

typedef struct plan {
    const rf_model *m;
    const char *path;
    rf_model *scratch; /* owns synthesized pairs, mapped names, PAD tokens */
    const rf_kv **kvs;
    size_t n_kvs, cap_kvs;
    out_tensor *tensors;
    size_t n_tensors;
    uint32_t alignment;
    bool allow_nested;
    uint64_t data_offset;
    uint64_t file_size;
} plan;

/* ---- building the list of key/value pairs ------------------------------------------------- */

static rf_status push_kv(plan *p, const rf_kv *kv, rf_error *err)
{
    if (p->n_kvs == p->cap_kvs) {
        size_t cap = p->cap_kvs ? p->cap_kvs * 2 : 64;
        const rf_kv **k = realloc(p->kvs, cap * sizeof *k);
        if (!k)
            return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", p->path);
        p->kvs = k;
        p->cap_kvs = cap;
    }
    p->kvs[p->n_kvs++] = kv;
    return RF_OK;
}

/* A pair owned by the scratch model; the value is stored shallowly (arrays and strings it points
 * to must live in the scratch arena or in the source model). */
static rf_kv *new_kv(plan *p, const char *key, rf_value value, rf_error *err)
{
    rf_kv *kv = rf_model_alloc(p->scratch, sizeof *kv);
    char *k = rf_model_strdup(p->scratch, key);
    if (!kv || !k) {
        rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", p->path);
        return NULL;
    }
    kv->key = k;
    kv->value = value;
    return kv;
}

static rf_status add_kv(plan *p, const char *key, rf_value value, rf_error *err)
{
    rf_kv *kv = new_kv(p, key, value, err);
    return kv ? push_kv(p, kv, err) : RF_ERR_NOMEM;
}

static rf_status add_u32(plan *p, const char *key, uint64_t v, rf_error *err)
{
    if (v > UINT32_MAX)
        return rf_error_set(err, RF_ERR_ARGUMENT, "%s: %s = %llu does not fit in u32", p->path, key,
                            (unsigned long long)v);
    return add_kv(p, key, (rf_value){.type = RF_VALUE_U32, .as.u = v}, err);
}

static rf_status add_f32(plan *p, const char *key, double v, rf_error *err)
{
    return add_kv(p, key, (rf_value){.type = RF_VALUE_F32, .as.f = (float)v}, err);
}

static rf_status add_string(plan *p, const char *key, const char *s, rf_error *err)
{
    rf_value v = {.type = RF_VALUE_STRING, .as.str = {s, strlen(s)}};
    return add_kv(p, key, v, err);
}

static rf_status add_arch_u32(plan *p, const char *arch, const char *suffix, uint64_t v,
                              rf_error *err)
{
    if (v == 0)
        return RF_OK; /* unknown: leave it out rather than write a wrong value */
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return add_u32(p, key, v, err);
}

static bool is_quantized(rf_dtype dtype)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    return info && info->kind == RF_KIND_QUANT;
}

/* The llama_ftype (general.file_type) a converter records for a model whose matrices all have
 * one type; -1 when the mix has no single ftype (docs/formats/gguf.md). */
static int file_type_of(rf_dtype dtype)
{
    switch (dtype) {
    case RF_DTYPE_F32: return 0;
    case RF_DTYPE_F16: return 1;
    case RF_DTYPE_Q4_0: return 2;
    case RF_DTYPE_Q4_1: return 3;
    case RF_DTYPE_Q8_0: return 7;
    case RF_DTYPE_Q5_0: return 8;
    case RF_DTYPE_Q5_1: return 9;
    case RF_DTYPE_Q6_K: return 18;
    case RF_DTYPE_BF16: return 32;
    case RF_DTYPE_TQ1_0: return 36;
    case RF_DTYPE_TQ2_0: return 37;
    /* K-quant and IQ ftypes name mixes (Q4_K_M, IQ3_M ...), not a single type */
    case RF_DTYPE_Q8_1:
    case RF_DTYPE_Q2_K:
    case RF_DTYPE_Q3_K:
    case RF_DTYPE_Q4_K:
    case RF_DTYPE_Q5_K:
    case RF_DTYPE_Q8_K:
    case RF_DTYPE_IQ2_XXS:
    case RF_DTYPE_IQ2_XS:
    case RF_DTYPE_IQ3_XXS:
    case RF_DTYPE_IQ1_S:
    case RF_DTYPE_IQ4_NL:
    case RF_DTYPE_IQ3_S:
    case RF_DTYPE_IQ2_S:
    case RF_DTYPE_IQ4_XS:
    case RF_DTYPE_I8:
    case RF_DTYPE_I16:
    case RF_DTYPE_I32:
    case RF_DTYPE_I64:
    case RF_DTYPE_F64:
    case RF_DTYPE_IQ1_M:
    case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4:
    case RF_DTYPE_Q1_0:
    case RF_DTYPE_Q2_0:
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
    case RF_DTYPE_APR_Q8: return -1;
    }
    return -1;
}

/* GGUF architecture name for the config's architecture ("qwen2" or an HF class name). */
const char *rfi_gguf_architecture_name(const char *arch)
{
    static const struct {
        const char *hf, *gguf;
    } classes[] = {
        {"Qwen2ForCausalLM", "qwen2"},   {"Qwen2Model", "qwen2"},
        {"Qwen3ForCausalLM", "qwen3"},   {"LlamaForCausalLM", "llama"},
        {"MistralForCausalLM", "llama"},
    };
    if (!arch || !*arch)
        return NULL;
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (strcmp(arch, classes[i].hf) == 0)
            return classes[i].gguf;
    for (const char *c = arch; *c; c++) /* general.architecture is lower-case [a-z0-9] */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return NULL;
    return arch;
}

/* Byte-level BPE is "gpt2" in GGUF (llama.cpp's tokenizer.ggml.model); APR stores "bpe". */
static const char *gguf_tokenizer_model(const rf_tokenizer *tok)
{
    if (!tok->model)
        return tok->n_merges ? "gpt2" : NULL;
    if (strcmp(tok->model, "bpe") == 0 || strcmp(tok->model, "BPE") == 0)
        return "gpt2";
    return tok->model;
}

/* Special-looking added tokens ("<|im_end|>") are CONTROL, others NORMAL, as the converter
 * classifies them when the source gives no types. */
static int32_t guess_token_type(const char *token)
{
    size_t n = strlen(token);
    if (n >= 4 && strncmp(token, "<|", 2) == 0 && strcmp(token + n - 2, "|>") == 0)
        return RF_TOKEN_CONTROL;
    return RF_TOKEN_NORMAL;
}

static const rf_tensor *embedding_of(const rf_model *m)
{
    const rf_tensor *t = rf_model_find_tensor(m, "token_embd.weight");
    return t ? t : rf_model_find_tensor(m, "model.embed_tokens.weight");
}

static rf_status synthesize_tokenizer(plan *p, const char *arch, rf_error *err)
{
    const rf_tokenizer *tok = rf_model_tokenizer(p->m);
    const rf_model_config *c = rf_model_config_get(p->m);
    rf_status st;
    const char *model = gguf_tokenizer_model(tok);
    if (model && (st = add_string(p, "tokenizer.ggml.model", model, err)))
        return st;
    const char *pre = tok->pre;
    if (!pre)
        pre = strcmp(arch, "qwen2") == 0 ? "qwen2" : "default";
    if ((st = add_string(p, "tokenizer.ggml.pre", pre, err)))
        return st;

    if (tok->tokens) {
        /* The vocabulary is padded with "[PAD{id}]" (type UNUSED) up to the embedding rows, as
         * the converter does; llama.cpp needs one token per embedding row. */
        const rf_tensor *embd = embedding_of(p->m);
        uint64_t rows = embd && embd->ndim == 2 ? embd->shape[0]
                        : c->vocab_size         ? c->vocab_size
                                                : tok->n_tokens;
        if (tok->n_tokens > rows)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: the tokenizer has %llu tokens but the embedding has %llu rows",
                                p->path, (unsigned long long)tok->n_tokens,
                                (unsigned long long)rows);
        if (rows > RF_GGUF_MAX_ARRAY_ELEMENTS || rows > SIZE_MAX / sizeof(rf_value))
            return rf_error_set(err, RF_ERR_LIMIT, "%s: %llu tokens are too many for GGUF", p->path,
                                (unsigned long long)rows);
        rf_value *tokens = rf_model_alloc_array(p->scratch, rows, sizeof *tokens);
        rf_value *types = rf_model_alloc_array(p->scratch, rows, sizeof *types);
        if (!tokens || !types)
            return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", p->path);
        for (uint64_t i = 0; i < rows; i++) {
            const char *s = i < tok->n_tokens ? tok->tokens[i] : NULL;
            int32_t type;
            if (s) {
                type = tok->token_types ? tok->token_types[i] : guess_token_type(s);
            } else {
                char pad[40];
                snprintf(pad, sizeof pad, "[PAD%llu]", (unsigned long long)i);
                if (!(s = rf_model_strdup(p->scratch, pad)))
                    return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", p->path);
                type = RF_TOKEN_UNUSED;
            }
            tokens[i] = (rf_value){.type = RF_VALUE_STRING, .as.str = {s, strlen(s)}};
            types[i] = (rf_value){.type = RF_VALUE_I32, .as.i = type};
        }
        rf_value tv = {.type = RF_VALUE_ARRAY, .as.arr = {RF_VALUE_STRING, rows, tokens}};
        rf_value yv = {.type = RF_VALUE_ARRAY, .as.arr = {RF_VALUE_I32, rows, types}};
        if ((st = add_kv(p, "tokenizer.ggml.tokens", tv, err)) ||
            (st = add_kv(p, "tokenizer.ggml.token_type", yv, err)))
            return st;
    }
    if (tok->merges && tok->n_merges) {
        if (tok->n_merges > RF_GGUF_MAX_ARRAY_ELEMENTS ||
            tok->n_merges > SIZE_MAX / sizeof(rf_value))
            return rf_error_set(err, RF_ERR_LIMIT, "%s: too many merges", p->path);
        rf_value *merges = rf_model_alloc_array(p->scratch, tok->n_merges, sizeof *merges);
        if (!merges)
            return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", p->path);
        for (uint64_t i = 0; i < tok->n_merges; i++) {
            const char *s = tok->merges[i] ? tok->merges[i] : "";
            merges[i] = (rf_value){.type = RF_VALUE_STRING, .as.str = {s, strlen(s)}};
        }
        rf_value mv = {.type = RF_VALUE_ARRAY, .as.arr = {RF_VALUE_STRING, tok->n_merges, merges}};
        if ((st = add_kv(p, "tokenizer.ggml.merges", mv, err)))
            return st;
    }
    /* the converter's order: eos, padding, bos */
    if (c->eos_token_id >= 0 &&
        (st = add_u32(p, "tokenizer.ggml.eos_token_id", (uint64_t)c->eos_token_id, err)))
        return st;
    if (c->pad_token_id >= 0 &&
        (st = add_u32(p, "tokenizer.ggml.padding_token_id", (uint64_t)c->pad_token_id, err)))
        return st;
    if (c->bos_token_id >= 0 &&
        (st = add_u32(p, "tokenizer.ggml.bos_token_id", (uint64_t)c->bos_token_id, err)))
        return st;
    return add_kv(p, "tokenizer.ggml.add_bos_token",
                  (rf_value){.type = RF_VALUE_BOOL, .as.b = tok->add_bos}, err);
}

/* Whether a tensor of a SafeTensors/APR source is stored as F32 although it is F16 or BF16:
 * vectors (norms, biases) and *_norm.weight, as llama.cpp's converter stores them. ggml's CPU
 * backend adds and multiplies F32 activations only by F32 operands, so a BF16 norm or bias
 * loads but aborts llama.cpp at the first llama_decode ("binary_op: unsupported types"). */
static bool is_norm(const char *gguf_name)
{
    size_t len = strlen(gguf_name), suffix = strlen("_norm.weight");
    return len >= suffix && strcmp(gguf_name + len - suffix, "_norm.weight") == 0;
}

static bool widen_to_f32(const rf_tensor *t, const char *gguf_name)
{
    return (t->dtype == RF_DTYPE_F16 || t->dtype == RF_DTYPE_BF16) &&
           (t->ndim <= 1 || is_norm(gguf_name));
}

/* Metadata for a model read from SafeTensors or APR, in the order convert_hf_to_gguf.py
 * writes it for Qwen2 (docs/formats/gguf.md). */
static rf_status synthesize(plan *p, rf_error *err)
{
    const rf_model_config *c = rf_model_config_get(p->m);
    const char *arch = rfi_gguf_architecture_name(c->architecture);
    if (!arch) /* rfi_gguf_check_architecture refused it before */
        return rf_error_set(err, RF_ERR_CONTRACT, "%s: no GGUF architecture name", p->path);
    rf_status st;
    if ((st = add_string(p, "general.architecture", arch, err)))
        return st;
    if (p->alignment != RF_GGUF_DEFAULT_ALIGNMENT &&
        (st = add_u32(p, "general.alignment", p->alignment, err)))
        return st;
    if ((st = add_string(p, "general.type", "model", err)))
        return st;
    if (c->name && (st = add_string(p, "general.name", c->name, err)))
        return st;
    if ((st = add_arch_u32(p, arch, "block_count", c->n_layers, err)) ||
        (st = add_arch_u32(p, arch, "context_length", c->context_length, err)) ||
        (st = add_arch_u32(p, arch, "embedding_length", c->hidden_size, err)) ||
        (st = add_arch_u32(p, arch, "feed_forward_length", c->intermediate_size, err)) ||
        (st = add_arch_u32(p, arch, "attention.head_count", c->n_heads, err)) ||
        (st = add_arch_u32(p, arch, "attention.head_count_kv", c->n_kv_heads, err)))
        return st;
    /* head_dim is implied by hidden / heads; say it only when it differs (llama.cpp keys) */
    if (c->head_dim && c->n_heads && c->head_dim * c->n_heads != c->hidden_size &&
        ((st = add_arch_u32(p, arch, "attention.key_length", c->head_dim, err)) ||
         (st = add_arch_u32(p, arch, "attention.value_length", c->head_dim, err))))
        return st;
    char key[256];
    if (c->rope_theta > 0) {
        snprintf(key, sizeof key, "%s.rope.freq_base", arch);
        if ((st = add_f32(p, key, c->rope_theta, err)))
            return st;
    }
    if (c->rms_norm_eps > 0) {
        snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
        if ((st = add_f32(p, key, c->rms_norm_eps, err)))
            return st;
    }
    /* general.file_type: the one type of all matrices (norms aside), when there is one */
    int ftype = -2;
    for (size_t i = 0; i < p->n_tensors && ftype != -1; i++) {
        const rf_tensor *t = p->tensors[i].src;
        if (t->ndim < 2 || is_norm(t->name))
            continue;
        int f = file_type_of(t->dtype);
        ftype = (ftype == -2 || ftype == f) ? f : -1;
    }
    if (ftype >= 0 && (st = add_u32(p, "general.file_type", (uint64_t)ftype, err)))
        return st;
    if ((st = add_u32(p, "general.quantization_version", RF_GGUF_QUANTIZATION_VERSION, err)))
        return st;
    if (rf_model_tokenizer(p->m) && (st = synthesize_tokenizer(p, arch, err)))
        return st;
    if (c->chat_template && (st = add_string(p, "tokenizer.chat_template", c->chat_template, err)))
        return st;
    return RF_OK;
}

/* The source's pairs in order; general.alignment follows the chosen alignment. */
static rf_status keep_source_kvs(plan *p, rf_error *err)
{
    bool have_alignment = false, have_qversion = false;
    rf_status st;
    for (size_t i = 0; i < rf_model_n_kv(p->m); i++) {
        const rf_kv *kv = rf_model_kv(p->m, i);
        if (strcmp(kv->key, "general.alignment") == 0 && !have_alignment) {
            have_alignment = true;
            if (kv->value.type != RF_VALUE_U32 || kv->value.as.u != p->alignment) {
                rf_kv *fixed =
                    new_kv(p, kv->key, (rf_value){.type = RF_VALUE_U32, .as.u = p->alignment}, err);
                if (!fixed)
                    return RF_ERR_NOMEM;
                kv = fixed;
            }
        }
        if (strcmp(kv->key, "general.quantization_version") == 0)
            have_qversion = true;
        if ((st = push_kv(p, kv, err)))
            return st;
    }
    if (!have_alignment && p->alignment != RF_GGUF_DEFAULT_ALIGNMENT &&
        (st = add_u32(p, "general.alignment", p->alignment, err)))
        return st;
    bool quantized = false;
    for (size_t i = 0; i < p->n_tensors; i++)
        quantized = quantized || is_quantized(p->tensors[i].src->dtype);
    if (quantized && !have_qversion &&
        (st = add_u32(p, "general.quantization_version", RF_GGUF_QUANTIZATION_VERSION, err)))
        return st;
    return RF_OK;
}

/* ---- checks ------------------------------------------------------------------------------- */

static rf_status check_value(const plan *p, const char *key, const rf_value *v, int depth,
                             rf_error *err)
{
    const char *path = p->path;
    uint64_t u = v->as.u;
    int64_t i = v->as.i;
    switch (v->type) {
    case RF_VALUE_U8:
        if (u > UINT8_MAX)
            goto range;
        return RF_OK;
    case RF_VALUE_U16:
        if (u > UINT16_MAX)
            goto range;
        return RF_OK;
    case RF_VALUE_U32:
        if (u > UINT32_MAX)
            goto range;
        return RF_OK;
    case RF_VALUE_I8:
        if (i < INT8_MIN || i > INT8_MAX)
            goto range;
        return RF_OK;
    case RF_VALUE_I16:
        if (i < INT16_MIN || i > INT16_MAX)
            goto range;
        return RF_OK;
    case RF_VALUE_I32:
        if (i < INT32_MIN || i > INT32_MAX)
            goto range;
        return RF_OK;
    case RF_VALUE_U64:
    case RF_VALUE_I64:
    case RF_VALUE_F32:
    case RF_VALUE_F64:
    case RF_VALUE_BOOL: return RF_OK;
    case RF_VALUE_STRING:
        if (v->as.str.len > RF_GGUF_MAX_STRING_LENGTH)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: key '%s': string of %llu bytes exceeds ggml's limit", path,
                                key, (unsigned long long)v->as.str.len);
        if (v->as.str.len && !v->as.str.data)
            return rf_error_set(err, RF_ERR_ARGUMENT, "%s: key '%s': string without data", path,
                                key);
        return RF_OK;
    case RF_VALUE_ARRAY: {
        rf_value_type et = v->as.arr.elem_type;
        if ((unsigned)et > RF_VALUE_F64)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: key '%s': arrays of %s cannot be stored in GGUF", path, key,
                                rf_value_type_name(et));
        if (et == RF_VALUE_ARRAY && !p->allow_nested)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: key '%s' holds an array of arrays, which ggml's reader "
                                "(llama.cpp) rejects; not written (allow_nested_arrays overrides)",
                                path, key);
        if (depth + 1 >= RF_GGUF_MAX_NESTING)
            return rf_error_set(err, RF_ERR_LIMIT, "%s: key '%s': arrays nested too deep", path,
                                key);
        if (v->as.arr.count > RF_GGUF_MAX_ARRAY_ELEMENTS)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: key '%s': %llu elements exceed ggml's array limit", path, key,
                                (unsigned long long)v->as.arr.count);
        if (v->as.arr.count && !v->as.arr.items)
            return rf_error_set(err, RF_ERR_ARGUMENT, "%s: key '%s': array without items", path,
                                key);
        for (uint64_t k = 0; k < v->as.arr.count; k++) {
            const rf_value *item = &v->as.arr.items[k];
            if (item->type != et)
                return rf_error_set(err, RF_ERR_ARGUMENT,
                                    "%s: key '%s': element %llu has type %s in an array of %s",
                                    path, key, (unsigned long long)k,
                                    rf_value_type_name(item->type), rf_value_type_name(et));
            rf_status st = check_value(p, key, item, depth + 1, err);
            if (st != RF_OK)
                return st;
        }
        return RF_OK;
    }
    case RF_VALUE_JSON:
        return rf_error_set(err, RF_ERR_UNSUPPORTED,
                            "%s: key '%s' holds a JSON value, which GGUF cannot store", path, key);
    }
    return rf_error_set(err, RF_ERR_ARGUMENT, "%s: key '%s': unknown value type %d", path, key,
                        (int)v->type);
range:
    return rf_error_set(err, RF_ERR_ARGUMENT, "%s: key '%s': value out of range for %s", path, key,
                        rf_value_type_name(v->type));
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp((*(const rf_kv *const *)a)->key, (*(const rf_kv *const *)b)->key);
}

static rf_status check_kvs(const plan *p, rf_error *err)
{
    for (size_t i = 0; i < p->n_kvs; i++) {
        const rf_kv *kv = p->kvs[i];
        if (!kv->key[0])
            return rf_error_set(err, RF_ERR_ARGUMENT, "%s: key/value pair %zu has an empty key",
                                p->path, i);
        rf_status st = check_value(p, kv->key, &kv->value, 0, err);
        if (st != RF_OK)
            return st;
    }
    if (p->n_kvs < 2)
        return RF_OK;
    const rf_kv **sorted = malloc(p->n_kvs * sizeof *sorted);
    if (!sorted)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", p->path);
    memcpy(sorted, p->kvs, p->n_kvs * sizeof *sorted);
    qsort(sorted, p->n_kvs, sizeof *sorted, compare_keys);
    rf_status st = RF_OK;
    for (size_t i = 1; i < p->n_kvs && st == RF_OK; i++)
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0)
            st = rf_error_set(err, RF_ERR_ARGUMENT,
                              "%s: duplicate key '%s' (ggml rejects files with duplicate keys)",
                              p->path, sorted[i]->key);
    free(sorted);
    return st;
}

typedef struct widen_call {
    const uint8_t *in;
    uint8_t *out;
    uint64_t n;
    bool bf16;
} widen_call;

static rf_status run_widen(void *ctx, rf_error *err)
{
    (void)err;
    const widen_call *c = ctx;
    for (uint64_t i = 0; i < c->n; i++) {
        uint16_t h = rf_load_le16(c->in + 2 * i);
        float f = c->bf16 ? rf_bf16_to_f32(h) : rf_f16_to_f32(h);
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        rf_store_le32(c->out + 4 * i, bits);
    }
    return RF_OK;
}

/* Replaces copy's data by its F32 values (exact: every F16 and BF16 value is an F32 value), in
 * memory owned by the scratch model. */
static rf_status widen(plan *p, rf_tensor *copy, rf_error *err)
{
    uint64_t n = copy->nbytes / 2;
    if (n > SIZE_MAX / 4)
        return rf_error_set(err, RF_ERR_OVERFLOW, "%s: tensor '%s' too large to widen to F32",
                            p->path, copy->name);
    uint8_t *out = n ? rf_model_alloc_array(p->scratch, n, 4) : NULL;
    if (n && !out)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory widening tensor '%s' to F32",
                            p->path, copy->name);
    /* the source is often a mapped file: read it under the SIGBUS guard */
    widen_call call = {copy->data, out, n, copy->dtype == RF_DTYPE_BF16};
    rf_status st = rfi_mapped_guarded(run_widen, &call, err);
    if (st != RF_OK) {
        rf_error_prefix(err, "%s: tensor '%s'", p->path, copy->name);
        return st;
    }
    copy->dtype = RF_DTYPE_F32;
    copy->data = out;
    copy->nbytes = n * 4;
    return RF_OK;
}

/* Chooses the tensors (GGUF names) and checks that GGUF can hold each one. */
static rf_status plan_tensors(plan *p, bool map_names, rf_error *err)
{
    const rf_model_config *c = rf_model_config_get(p->m);
    const rf_contracts *names = map_names ? rf_contracts_default(err) : NULL;
    if (map_names && !names)
        return err ? err->status : RF_ERR_NOT_FOUND;
    size_t n = rf_model_n_tensors(p->m);
    p->tensors = calloc(n ? n : 1, sizeof *p->tensors);
    if (!p->tensors)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", p->path);
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(p->m, i);
        char mapped[256];
        const char *name = t->name;
        if (map_names && rf_contracts_map_name(names, t->name, RF_NAMING_GGUF, mapped,
                                               sizeof mapped, NULL) == RF_OK)
            name = mapped;
        /* Tied models: llama.cpp reuses token_embd when output.weight is absent (docs/design.md
         * section 3). */
        if (map_names && c->tie_word_embeddings == 1 && strcmp(name, "output.weight") == 0)
            continue;
        const rf_dtype_info *info = rf_dtype_get(t->dtype);
        if (!info || info->ggml_code < 0)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: tensor '%s': dtype %s has no GGUF type code", p->path, t->name,
                                rf_dtype_name(t->dtype));
        if (strlen(name) > RF_GGUF_MAX_NAME)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: tensor name '%s' is %zu bytes; GGUF allows at most %d",
                                p->path, name, strlen(name), RF_GGUF_MAX_NAME);
        if (t->ndim > RF_GGUF_MAX_DIMS)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: tensor '%s' has %d dimensions; GGUF allows at most %d",
                                p->path, t->name, t->ndim, RF_GGUF_MAX_DIMS);
        uint64_t nbytes;
        rf_status st = rf_dtype_tensor_bytes(t->dtype, t->shape, t->ndim, &nbytes, err);
        if (st != RF_OK) {
            rf_error_prefix(err, "%s: tensor '%s'", p->path, t->name);
            return st;
        }
        for (int j = 0; j < t->ndim; j++)
            if (t->shape[j] > INT64_MAX)
                return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                    "%s: tensor '%s': dimension %d is too large for GGUF", p->path,
                                    t->name, j);
        if (nbytes != t->nbytes)
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "%s: tensor '%s': %llu bytes given, its shape and dtype need %llu",
                                p->path, t->name, (unsigned long long)t->nbytes,
                                (unsigned long long)nbytes);
        if (nbytes && !t->data)
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "%s: tensor '%s' has no data (it lies outside its source file)",
                                p->path, t->name);
        rf_tensor copy = *t;
        copy.name = name;
        if (map_names && widen_to_f32(t, name) && (st = widen(p, &copy, err)) != RF_OK)
            return st;
        if ((st = rf_model_add_tensor(p->scratch, &copy, err)) != RF_OK) {
            rf_error_prefix(err, "%s", p->path);
            return st;
        }
        p->n_tensors++;
    }
    /* the scratch model's array may have moved while growing: take the final addresses */
    for (size_t i = 0; i < p->n_tensors; i++)
        p->tensors[i].src = rf_model_tensor(p->scratch, i);
    return RF_OK;
}

/* ---- layout and output -------------------------------------------------------------------- */

static uint64_t pad_to(uint64_t x, uint64_t alignment)
{
    return x + (alignment - x % alignment) % alignment;
}

static uint64_t value_size(const rf_value *v)
{
    switch (v->type) {
    case RF_VALUE_U8:
    case RF_VALUE_I8:
    case RF_VALUE_BOOL: return 1;
    case RF_VALUE_U16:
    case RF_VALUE_I16: return 2;
    case RF_VALUE_U32:
    case RF_VALUE_I32:
    case RF_VALUE_F32: return 4;
    case RF_VALUE_U64:
    case RF_VALUE_I64:
    case RF_VALUE_F64: return 8;
    case RF_VALUE_STRING: return 8 + v->as.str.len;
    case RF_VALUE_ARRAY: {
        uint64_t n = 12;
        for (uint64_t i = 0; i < v->as.arr.count; i++)
            n += value_size(&v->as.arr.items[i]);
        return n;
    }
    case RF_VALUE_JSON: return 0;
    }
    return 0;
}

static uint64_t header_size(const plan *p)
{
    uint64_t n = 24;
    for (size_t i = 0; i < p->n_kvs; i++)
        n += 8 + strlen(p->kvs[i]->key) + 4 + value_size(&p->kvs[i]->value);
    for (size_t i = 0; i < p->n_tensors; i++) {
        const rf_tensor *t = p->tensors[i].src;
        n += 8 + strlen(t->name) + 4 + 8 * (uint64_t)(t->ndim ? t->ndim : 1) + 4 + 8;
    }
    return n;
}

static rf_status put_u32(rf_writer *w, uint32_t v, rf_error *err)
{
    uint8_t b[4];
    rf_store_le32(b, v);
    return rf_writer_write(w, b, 4, err);
}

static rf_status put_u64(rf_writer *w, uint64_t v, rf_error *err)
{
    uint8_t b[8];
    rf_store_le64(b, v);
    return rf_writer_write(w, b, 8, err);
}

static rf_status put_string(rf_writer *w, const char *s, uint64_t len, rf_error *err)
{
    rf_status st = put_u64(w, len, err);
    return st ? st : rf_writer_write(w, s, (size_t)len, err);
}

/* The value's encoding without its type code (arrays carry their element type and count). */
static rf_status put_value(rf_writer *w, const rf_value *v, rf_error *err)
{
    uint8_t b[8];
    switch (v->type) {
    case RF_VALUE_U8:
    case RF_VALUE_I8: b[0] = (uint8_t)v->as.u; return rf_writer_write(w, b, 1, err);
    case RF_VALUE_BOOL: b[0] = v->as.b ? 1 : 0; return rf_writer_write(w, b, 1, err);
    case RF_VALUE_U16:
    case RF_VALUE_I16: rf_store_le16(b, (uint16_t)v->as.u); return rf_writer_write(w, b, 2, err);
    case RF_VALUE_U32:
    case RF_VALUE_I32: return put_u32(w, (uint32_t)v->as.u, err);
    case RF_VALUE_F32: {
        float f = (float)v->as.f;
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        return put_u32(w, bits, err);
    }
    case RF_VALUE_U64:
    case RF_VALUE_I64: return put_u64(w, v->as.u, err);
    case RF_VALUE_F64: {
        uint64_t bits;
        memcpy(&bits, &v->as.f, sizeof bits);
        return put_u64(w, bits, err);
    }
    case RF_VALUE_STRING: return put_string(w, v->as.str.data, v->as.str.len, err);
    case RF_VALUE_ARRAY: {
        rf_status st = put_u32(w, (uint32_t)v->as.arr.elem_type, err);
        if (!st)
            st = put_u64(w, v->as.arr.count, err);
        for (uint64_t i = 0; !st && i < v->as.arr.count; i++) {
            const rf_value *item = &v->as.arr.items[i];
            st = put_value(w, item, err);
        }
        return st;
    }
    case RF_VALUE_JSON: break;
    }
    return rf_error_set(err, RF_ERR_ARGUMENT, "cannot encode a %s value",
                        rf_value_type_name(v->type));
}

static rf_status write_file(const plan *p, rf_writer *w, const write_hook *hook, rf_error *err)
{
    static const uint8_t magic[4] = {'G', 'G', 'U', 'F'};
    rf_status st = rf_writer_write(w, magic, 4, err);
    if (!st)
        st = put_u32(w, RF_GGUF_VERSION, err);
    if (!st)
        st = put_u64(w, p->n_tensors, err);
    if (!st)
        st = put_u64(w, p->n_kvs, err);
    for (size_t i = 0; !st && i < p->n_kvs; i++) {
        const rf_kv *kv = p->kvs[i];
        st = put_string(w, kv->key, strlen(kv->key), err);
        if (!st)
            st = put_u32(w, (uint32_t)kv->value.type, err);
        if (!st)
            st = put_value(w, &kv->value, err);
    }
    for (size_t i = 0; !st && i < p->n_tensors; i++) {
        const rf_tensor *t = p->tensors[i].src;
        int n_dims = t->ndim ? t->ndim : 1;
        st = put_string(w, t->name, strlen(t->name), err);
        if (!st)
            st = put_u32(w, (uint32_t)n_dims, err);
        for (int j = 0; !st && j < n_dims; j++) /* ne[] is the row-major shape reversed */
            st = put_u64(w, t->ndim ? t->shape[t->ndim - 1 - j] : 1, err);
        if (!st)
            st = put_u32(w, (uint32_t)rf_dtype_get(t->dtype)->ggml_code, err);
        if (!st)
            st = put_u64(w, p->tensors[i].offset, err);
    }
    if (!st)
        st = rf_writer_pad(w, p->alignment, err);
    if (!st && rf_writer_offset(w) != p->data_offset)
        st = rf_error_set(err, RF_ERR_WRITE, "%s: internal: data section at %llu, planned %llu",
                          p->path, (unsigned long long)rf_writer_offset(w),
                          (unsigned long long)p->data_offset);
    /* GGUF: data in tensor-info order, zero padding after every tensor, the last included. */
    for (size_t i = 0; !st && i < p->n_tensors; i++) {
        const rf_tensor *t = p->tensors[i].src;
        uint64_t left = t->nbytes;
        const uint8_t *src = t->data;
        while (!st && left) {
            size_t chunk = left > WRITE_HOOK_PIECE ? (size_t)WRITE_HOOK_PIECE : (size_t)left;
            st = rf_writer_write(w, src, chunk, err);
            rfi_write_hook_release(hook, src, chunk);
            src += chunk;
            left -= chunk;
        }
        if (!st)
            st = rf_writer_pad(w, p->alignment, err);
    }
    return st;
}

/* Re-reads the temp file with the strict reader: every tensor where the plan put it. */
static rf_status verify(const char *temp_path, void *ctx, rf_error *err)
{
    const plan *p = ctx;
    rf_model *back = rf_gguf_open_model(temp_path, NULL, err);
    if (!back) {
        rf_error_prefix(err, "%s: verification of the written file failed", p->path);
        return err ? err->status : RF_ERR_WRITE;
    }
    rf_status st = RF_OK;
    if (rf_model_n_tensors(back) != p->n_tensors || rf_model_n_kv(back) != p->n_kvs)
        st = rf_error_set(err, RF_ERR_WRITE,
                          "%s: verification failed: %zu tensors and %zu keys read back, %zu and "
                          "%zu written",
                          p->path, rf_model_n_tensors(back), rf_model_n_kv(back), p->n_tensors,
                          p->n_kvs);
    for (size_t i = 0; st == RF_OK && i < p->n_tensors; i++) {
        const rf_tensor *a = p->tensors[i].src, *b = rf_model_tensor(back, i);
        bool same = strcmp(a->name, b->name) == 0 && a->dtype == b->dtype &&
                    a->nbytes == b->nbytes &&
                    b->file_offset == p->data_offset + p->tensors[i].offset;
        for (int j = 0; same && j < a->ndim; j++)
            same = a->shape[j] == b->shape[j];
        if (!same)
            st = rf_error_set(err, RF_ERR_WRITE,
                              "%s: verification failed: tensor %zu ('%s') read back as '%s' at "
                              "offset %llu, expected offset %llu",
                              p->path, i, a->name, b->name, (unsigned long long)b->file_offset,
                              (unsigned long long)(p->data_offset + p->tensors[i].offset));
    }
    rf_model_free(back);
    return st;
}

/* The alignment a write of m with opts uses; RF_ERR_ARGUMENT when opts asks for one that is not
 * a power of two. */
static rf_status choose_alignment(const rf_model *m, const rf_gguf_write_options *opts,
                                  const char *path, uint32_t *out, rf_error *err)
{
    uint32_t alignment = opts->alignment;
    if (alignment == 0) {
        alignment = RF_GGUF_DEFAULT_ALIGNMENT;
        const rf_kv *a =
            rf_model_format(m) == RF_FORMAT_GGUF ? rf_model_find_kv(m, "general.alignment") : NULL;
        if (a && a->value.type == RF_VALUE_U32 && a->value.as.u &&
            (a->value.as.u & (a->value.as.u - 1)) == 0)
            alignment = (uint32_t)a->value.as.u;
    } else if ((alignment & (alignment - 1)) != 0) {
        return rf_error_set(err, RF_ERR_ARGUMENT, "%s: alignment %u is not a power of two", path,
                            alignment);
    }
    *out = alignment;
    return RF_OK;
}

/* Plans tensors and pairs of m into p (p->scratch is created here); frees nothing. */
/* Whether name can be a GGUF general.architecture: lower-case letters, digits, '_' and '-', as
 * every name of llama.cpp's architecture table (llm_arch_from_string) is. */
static bool architecture_name_ok(const char *name, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

rf_status rfi_gguf_check_architecture(const rf_model *m, const char *path, rf_error *err)
{
    static const char rule[] =
        "rule gguf.architecture: a GGUF file names its model's architecture in "
        "general.architecture (llama.cpp refuses to load a file without it)";
    if (rf_model_format(m) != RF_FORMAT_GGUF) {
        const char *arch = rf_model_config_get(m)->architecture;
        if (rfi_gguf_architecture_name(arch))
            return RF_OK;
        if (!arch)
            return rf_error_set(err, RF_ERR_CONTRACT,
                                "%s: %s; the model's architecture is unknown (no config.json or "
                                "architecture metadata)",
                                path, rule);
        return rf_error_set(err, RF_ERR_CONTRACT,
                            "%s: %s; the model's architecture '%s' has no GGUF name (expected a "
                            "name like 'qwen2')",
                            path, rule, arch);
    }
    const rf_kv *kv = rf_model_find_kv(m, "general.architecture");
    if (!kv)
        return rf_error_set(err, RF_ERR_CONTRACT, "%s: %s; the input has no such key", path, rule);
    if (kv->value.type != RF_VALUE_STRING)
        return rf_error_set(err, RF_ERR_CONTRACT, "%s: %s; the input's is of type %s, not a string",
                            path, rule, rf_value_type_name(kv->value.type));
    if (!architecture_name_ok(kv->value.as.str.data, kv->value.as.str.len))
        return rf_error_set(err, RF_ERR_CONTRACT,
                            "%s: %s; the input's value '%.*s' is not an architecture name "
                            "(lower-case letters, digits, '_', '-')",
                            path, rule,
                            (int)(kv->value.as.str.len > 64 ? 64 : kv->value.as.str.len),
                            kv->value.as.str.data);
    return RF_OK;
}

static rf_status plan_model(plan *p, const rf_model *m, const char *path,
                            const rf_gguf_write_options *opts, rf_error *err)
{
    bool from_gguf = rf_model_format(m) == RF_FORMAT_GGUF;
    *p = (plan){.m = m, .path = path, .allow_nested = opts->allow_nested_arrays};
    /* A GGUF source is written as it is (an imatrix file has no architecture, and needs none);
     * rf_convert refuses a model without one. Metadata synthesized for another source needs a
     * name for the architecture's keys. */
    rf_status st = from_gguf ? RF_OK : rfi_gguf_check_architecture(m, path, err);
    if (st != RF_OK)
        return st;
    st = choose_alignment(m, opts, path, &p->alignment, err);
    if (st != RF_OK)
        return st;
    p->scratch = rf_model_new(RF_FORMAT_GGUF, err);
    if (!p->scratch)
        return RF_ERR_NOMEM;
    st = plan_tensors(p, !from_gguf, err);
    if (!st)
        st = from_gguf ? keep_source_kvs(p, err) : synthesize(p, err);
    if (!st)
        st = check_kvs(p, err);
    return st;
}

static void plan_free(plan *p)
{
    free(p->kvs);
    free(p->tensors);
    rf_model_free(p->scratch);
}

rf_status rf_gguf_metadata(const rf_model *m, const rf_gguf_write_options *opts, rf_kv_list **out,
                           rf_error *err)
{
    static const rf_gguf_write_options defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!m || !out)
        return rf_error_set(err, RF_ERR_ARGUMENT, "rf_gguf_metadata: model and result required");
    *out = NULL;
    const char *name = rf_model_path(m) ? rf_model_path(m) : "model";
    plan p;
    rf_status st = plan_model(&p, m, name, opts, err);
    rf_kv_list *list = st == RF_OK ? rfi_kv_list_new(err) : NULL;
    if (st == RF_OK && !list)
        st = RF_ERR_NOMEM;
    for (size_t i = 0; st == RF_OK && i < p.n_kvs; i++)
        st = rfi_kv_list_add(list, p.kvs[i]->key, &p.kvs[i]->value, err);
    plan_free(&p);
    if (st != RF_OK) {
        rf_kv_list_free(list);
        return st;
    }
    *out = list;
    return RF_OK;
}

rf_status rf_gguf_write(const rf_model *m, const char *path, const rf_gguf_write_options *opts,
                        rf_error *err)
{
    return rfi_gguf_write_hooked(m, path, opts, NULL, err);
}

rf_status rfi_gguf_write_hooked(const rf_model *m, const char *path,
                                const rf_gguf_write_options *opts, const write_hook *hook,
                                rf_error *err)
{
    static const rf_gguf_write_options defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!m || !path)
        return rf_error_set(err, RF_ERR_ARGUMENT, "rf_gguf_write: model and path are required");
    if (rf_model_format(m) == RF_FORMAT_GGUF && rf_model_n_files(m) > 0) {
        /* a lenient read of a big-endian file leaves quantized data in its stored byte order */
        rf_gguf_layout layout;
        if (rf_gguf_model_layout(m, &layout, NULL) == RF_OK && layout.big_endian)
            for (size_t i = 0; i < rf_model_n_tensors(m); i++)
                if (is_quantized(rf_model_tensor(m, i)->dtype))
                    return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                        "%s: tensor '%s' is quantized data from a big-endian file",
                                        path, rf_model_tensor(m, i)->name);
    }
    plan p;
    rf_status st = plan_model(&p, m, path, opts, err);
    if (!st) {
        uint64_t offset = 0;
        p.data_offset = pad_to(header_size(&p), p.alignment);
        for (size_t i = 0; i < p.n_tensors && !st; i++) {
            p.tensors[i].offset = offset;
            uint64_t size = pad_to(p.tensors[i].src->nbytes, p.alignment);
            if (__builtin_add_overflow(offset, size, &offset))
                st = rf_error_set(err, RF_ERR_OVERFLOW, "%s: data section too large", path);
        }
        p.file_size = p.data_offset + offset;
    }
    if (!st) {
        rf_writer *w = rf_writer_open(path, err);
        if (!w) {
            st = err ? err->status : RF_ERR_WRITE;
        } else if ((st = write_file(&p, w, hook, err)) != RF_OK) {
            rf_writer_abort(w);
        } else {
            st = rfi_write_hook_commit(w, path, verify, &p, hook, err);
        }
    }
    plan_free(&p);
    return st;
}
