/* Hugging Face config.json and generation_config.json <-> typed model configuration: the Qwen2 keys
 * with their common aliases, strict number checks (no NaN/Inf/negative values), and the builders
 * that write these files for models that did not come with them.
 * Not for: tokenizer files (hf_tokenizer.c) or finding the files (hf_companions.c). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_internal.h"
#include "hf_internal.h"

typedef struct cfg_ctx {
    rf_model *m;
    const char *path;
    const cJSON *root;
    rf_error *err;
} cfg_ctx;

/* The first alias present (and not null), or NULL. */
static const cJSON *lookup(const cfg_ctx *c, const char *const *aliases, const char **which)
{
    for (; *aliases; aliases++) {
        const cJSON *item = rfi_hf_json_get(c->root, *aliases);
        if (item && !cJSON_IsNull(item)) {
            *which = *aliases;
            return item;
        }
    }
    return NULL;
}

/* A size or count: a non-negative integer. Absent leaves *out untouched. */
static rf_status get_count(const cfg_ctx *c, const char *const *aliases, uint64_t *out)
{
    const char *key = NULL;
    const cJSON *item = lookup(c, aliases, &key);
    if (!item)
        return RF_OK;
    uint64_t v;
    hf_num r = rfi_hf_json_u64(item, &v);
    if (r == HF_NUM_NOT_NUMBER)
        return rf_error_set(c->err, RF_ERR_FORMAT,
                            "%s: \"%s\" is %s, expected a non-negative integer", c->path, key,
                            rfi_hf_json_kind(item));
    if (r != HF_NUM_OK)
        return rf_error_set(c->err, RF_ERR_FORMAT,
                            "%s: \"%s\" = %.17g %s, expected a non-negative integer", c->path, key,
                            item->valuedouble, rfi_hf_num_problem(r));
    *out = v;
    return RF_OK;
}

/* A real parameter (rope theta, norm epsilon): finite and not negative. */
static rf_status get_real(const cfg_ctx *c, const cJSON *item, const char *key, double *out)
{
    if (!cJSON_IsNumber(item))
        return rf_error_set(c->err, RF_ERR_FORMAT, "%s: \"%s\" is %s, expected a number", c->path,
                            key, rfi_hf_json_kind(item));
    double v = item->valuedouble;
    if (!isfinite(v))
        return rf_error_set(c->err, RF_ERR_FORMAT, "%s: \"%s\" is not a finite number", c->path,
                            key);
    if (v < 0)
        return rf_error_set(c->err, RF_ERR_FORMAT, "%s: \"%s\" = %.17g is negative", c->path, key,
                            v);
    *out = v;
    return RF_OK;
}

static rf_status get_real_alias(const cfg_ctx *c, const char *const *aliases, double *out)
{
    const char *key = NULL;
    const cJSON *item = lookup(c, aliases, &key);
    return item ? get_real(c, item, key, out) : RF_OK;
}

/* A token id: an integer, or a list of them (generation_config's eos list: the first is used,
 * the whole list stays in the raw JSON). Negative ids mean "none" in some configs: a warning. */
static rf_status get_id(const cfg_ctx *c, const char *key, int64_t *out)
{
    const cJSON *item = rfi_hf_json_get(c->root, key);
    if (!item || cJSON_IsNull(item))
        return RF_OK;
    const cJSON *first = item;
    if (cJSON_IsArray(item)) {
        first = item->child;
        if (!first)
            return RF_OK;
    }
    if (!cJSON_IsNumber(first))
        return rf_error_set(c->err, RF_ERR_FORMAT, "%s: \"%s\" is %s, expected a token id", c->path,
                            key, rfi_hf_json_kind(first));
    double v = first->valuedouble;
    if (!isfinite(v) || v != floor(v) || v > 2147483647.0)
        return rf_error_set(c->err, RF_ERR_FORMAT, "%s: \"%s\" = %.17g is not a valid token id",
                            c->path, key, v);
    if (v < 0) {
        rf_model_add_warning(c->m, "%s: \"%s\" = %.0f is negative; treated as absent", c->path, key,
                             v);
        return RF_OK;
    }
    *out = (int64_t)v;
    return RF_OK;
}

rf_rope_type rfi_hf_rope_type_for(const char *arch)
{
    static const char *const neox[] = {"qwen2",    "qwen2_moe", "qwen3", "qwen3_moe",
                                       "gpt_neox", "gptneox",   "phi3",  "stablelm",
                                       "gemma",    "gemma2",    NULL};
    static const char *const norm[] = {"llama", "mistral", "mixtral", "baichuan", NULL};
    if (!arch)
        return RF_ROPE_UNKNOWN;
    for (int i = 0; neox[i]; i++)
        if (strcmp(arch, neox[i]) == 0)
            return RF_ROPE_NEOX;
    for (int i = 0; norm[i]; i++)
        if (strcmp(arch, norm[i]) == 0)
            return RF_ROPE_NORM;
    return RF_ROPE_UNKNOWN;
}

/* "Qwen2ForCausalLM" -> "qwen2": the class name without its task suffix, lower case. */
static char *arch_from_class(rf_model *m, const char *cls)
{
    static const char *const suffixes[] = {"ForCausalLM", "ForConditionalGeneration", "LMHeadModel",
                                           "Model", NULL};
    size_t n = strlen(cls);
    for (int i = 0; suffixes[i]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcmp(cls + n - k, suffixes[i]) == 0) {
            n -= k;
            break;
        }
    }
    char *s = rf_model_strndup(m, cls, n);
    if (s)
        for (char *p = s; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return s;
}

rf_status rfi_hf_config_read(rf_model *m, const char *path, const char *text, size_t len,
                             rf_error *err)
{
    cJSON *root = rfi_hf_json_parse_object(path, text, len, err);
    if (!root)
        return err ? err->status : RF_ERR_FORMAT;
    cfg_ctx c = {m, path, root, err};
    rf_model_config *cfg = rf_model_config_mut(m);
    rf_status st = RF_OK;
    static const char *const hidden[] = {"hidden_size", "n_embd", "d_model", NULL};
    static const char *const layers[] = {"num_hidden_layers", "n_layer", "num_layers", NULL};
    static const char *const heads[] = {"num_attention_heads", "n_head", NULL};
    static const char *const kv_heads[] = {"num_key_value_heads", NULL};
    static const char *const head_dim[] = {"head_dim", NULL};
    static const char *const ffn[] = {"intermediate_size", "n_inner", "ffn_dim", NULL};
    static const char *const vocab[] = {"vocab_size", NULL};
    static const char *const ctx[] = {"max_position_embeddings", "n_positions", "n_ctx", NULL};
    static const char *const theta[] = {"rope_theta", NULL};
    static const char *const eps[] = {"rms_norm_eps", "layer_norm_epsilon", NULL};
    struct {
        const char *const *aliases;
        uint64_t *field;
    } counts[] = {
        {hidden, &cfg->hidden_size},  {layers, &cfg->n_layers},    {heads, &cfg->n_heads},
        {kv_heads, &cfg->n_kv_heads}, {head_dim, &cfg->head_dim},  {ffn, &cfg->intermediate_size},
        {vocab, &cfg->vocab_size},    {ctx, &cfg->context_length},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if ((st = get_count(&c, counts[i].aliases, counts[i].field)) != RF_OK)
            goto done;
    if ((st = get_real_alias(&c, theta, &cfg->rope_theta)) != RF_OK ||
        (st = get_real_alias(&c, eps, &cfg->rms_norm_eps)) != RF_OK)
        goto done;
    /* transformers 5 moved rope_theta into rope_parameters */
    const cJSON *rope = rfi_hf_json_get(root, "rope_parameters");
    const cJSON *rope_theta = rfi_hf_json_get(rope, "rope_theta");
    if (rope_theta && !cJSON_IsNull(rope_theta) &&
        (st = get_real(&c, rope_theta, "rope_parameters.rope_theta", &cfg->rope_theta)) != RF_OK)
        goto done;
    if (cfg->n_heads > 0 && cfg->n_kv_heads == 0)
        cfg->n_kv_heads = cfg->n_heads; /* transformers' default for num_key_value_heads */
    if (cfg->head_dim == 0 && cfg->n_heads > 0 && cfg->hidden_size > 0) {
        if (cfg->hidden_size % cfg->n_heads == 0)
            cfg->head_dim = cfg->hidden_size / cfg->n_heads;
        else
            rf_model_add_warning(m,
                                 "%s: hidden_size %llu is not a multiple of "
                                 "num_attention_heads %llu and head_dim is not given",
                                 path, (unsigned long long)cfg->hidden_size,
                                 (unsigned long long)cfg->n_heads);
    }
    const cJSON *tie = rfi_hf_json_get(root, "tie_word_embeddings");
    if (tie && !cJSON_IsNull(tie)) {
        if (!cJSON_IsBool(tie)) {
            st = rf_error_set(err, RF_ERR_FORMAT,
                              "%s: \"tie_word_embeddings\" is %s, expected true or false", path,
                              rfi_hf_json_kind(tie));
            goto done;
        }
        cfg->tie_word_embeddings = cJSON_IsTrue(tie) ? 1 : 0;
    }
    if ((st = get_id(&c, "bos_token_id", &cfg->bos_token_id)) != RF_OK ||
        (st = get_id(&c, "eos_token_id", &cfg->eos_token_id)) != RF_OK ||
        (st = get_id(&c, "pad_token_id", &cfg->pad_token_id)) != RF_OK)
        goto done;
    const cJSON *model_type = rfi_hf_json_get(root, "model_type");
    const cJSON *archs = rfi_hf_json_get(root, "architectures");
    if (cJSON_IsString(model_type) && model_type->valuestring[0]) {
        char *a = rf_model_strdup(m, model_type->valuestring);
        if (a)
            for (char *p = a; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        cfg->architecture = a;
    } else if (cJSON_IsArray(archs) && cJSON_IsString(archs->child)) {
        cfg->architecture = arch_from_class(m, archs->child->valuestring);
    }
    cfg->rope_type = rfi_hf_rope_type_for(cfg->architecture);
    const cJSON *name = rfi_hf_json_get(root, "_name_or_path");
    if (cJSON_IsString(name) && name->valuestring[0])
        cfg->name = rf_model_strdup(m, name->valuestring);
done:
    cJSON_Delete(root);
    return st;
}

rf_status rfi_hf_generation_config_read(rf_model *m, const char *path, const char *text, size_t len,
                                        rf_error *err)
{
    cJSON *root = rfi_hf_json_parse_object(path, text, len, err);
    if (!root)
        return err ? err->status : RF_ERR_FORMAT;
    rf_status st = RF_OK;
    /* config.json wins; generation_config.json fills what it leaves out. */
    cfg_ctx c = {m, path, root, err};
    rf_model_config *cfg = rf_model_config_mut(m);
    int64_t ids[3] = {-1, -1, -1};
    if ((st = get_id(&c, "bos_token_id", &ids[0])) != RF_OK ||
        (st = get_id(&c, "eos_token_id", &ids[1])) != RF_OK ||
        (st = get_id(&c, "pad_token_id", &ids[2])) != RF_OK)
        goto done;
    if (cfg->bos_token_id < 0)
        cfg->bos_token_id = ids[0];
    if (cfg->eos_token_id < 0)
        cfg->eos_token_id = ids[1];
    if (cfg->pad_token_id < 0)
        cfg->pad_token_id = ids[2];
done:
    cJSON_Delete(root);
    return st;
}

/* ---- builders ---------------------------------------------------------------------------- */

static const char *class_for(const char *arch)
{
    static const char *const map[][2] = {
        {"qwen2", "Qwen2ForCausalLM"},        {"qwen3", "Qwen3ForCausalLM"},
        {"llama", "LlamaForCausalLM"},        {"mistral", "MistralForCausalLM"},
        {"qwen2_moe", "Qwen2MoeForCausalLM"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(arch, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* The float dtype holding the most bytes names torch_dtype. */
static const char *torch_dtype_of(const rf_model *m)
{
    uint64_t bytes[3] = {0, 0, 0}; /* F32, F16, BF16 */
    for (size_t i = 0; i < rf_model_n_tensors(m); i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        if (t->dtype == RF_DTYPE_F32)
            bytes[0] += t->nbytes;
        else if (t->dtype == RF_DTYPE_F16)
            bytes[1] += t->nbytes;
        else if (t->dtype == RF_DTYPE_BF16)
            bytes[2] += t->nbytes;
    }
    static const char *const names[] = {"float32", "float16", "bfloat16"};
    int best = -1;
    for (int i = 0; i < 3; i++)
        if (bytes[i] > 0 && (best < 0 || bytes[i] > bytes[best]))
            best = i;
    return best < 0 ? NULL : names[best];
}

/* Appends ,"key": for a member after the first. */
static void key(text_buf *b, bool *first, const char *k)
{
    if (!*first)
        rfi_text_buf_puts(b, ",");
    *first = false;
    rfi_json_put_cstring(b, k);
    rfi_text_buf_puts(b, ":");
}

bool rfi_hf_config_build(const rf_model *m, text_buf *b)
{
    const rf_model_config *c = rf_model_config_get(m);
    if (!c->architecture)
        return false;
    /* keys in sorted order, as transformers writes them */
    bool first = true;
    rfi_text_buf_puts(b, "{");
    const char *cls = class_for(c->architecture);
    if (cls) {
        key(b, &first, "architectures");
        rfi_text_buf_puts(b, "[");
        rfi_json_put_cstring(b, cls);
        rfi_text_buf_puts(b, "]");
    }
    if (c->bos_token_id >= 0) {
        key(b, &first, "bos_token_id");
        rfi_text_buf_printf(b, "%lld", (long long)c->bos_token_id);
    }
    if (c->eos_token_id >= 0) {
        key(b, &first, "eos_token_id");
        rfi_text_buf_printf(b, "%lld", (long long)c->eos_token_id);
    }
    if (c->head_dim && !(c->n_heads && c->hidden_size == c->head_dim * c->n_heads)) {
        key(b, &first, "head_dim");
        rfi_text_buf_printf(b, "%llu", (unsigned long long)c->head_dim);
    }
    if (cls) {
        key(b, &first, "hidden_act");
        rfi_text_buf_puts(b, "\"silu\"");
    }
    struct {
        const char *k;
        uint64_t v;
    } ints[] = {
        {"hidden_size", c->hidden_size},
        {"intermediate_size", c->intermediate_size},
        {"max_position_embeddings", c->context_length},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v) {
            key(b, &first, ints[i].k);
            rfi_text_buf_printf(b, "%llu", (unsigned long long)ints[i].v);
        }
    key(b, &first, "model_type");
    rfi_json_put_cstring(b, c->architecture);
    struct {
        const char *k;
        uint64_t v;
    } ints2[] = {
        {"num_attention_heads", c->n_heads},
        {"num_hidden_layers", c->n_layers},
        {"num_key_value_heads", c->n_kv_heads},
    };
    for (size_t i = 0; i < sizeof ints2 / sizeof ints2[0]; i++)
        if (ints2[i].v) {
            key(b, &first, ints2[i].k);
            rfi_text_buf_printf(b, "%llu", (unsigned long long)ints2[i].v);
        }
    if (c->pad_token_id >= 0) {
        key(b, &first, "pad_token_id");
        rfi_text_buf_printf(b, "%lld", (long long)c->pad_token_id);
    }
    if (c->rms_norm_eps > 0 && isfinite(c->rms_norm_eps)) {
        key(b, &first, "rms_norm_eps");
        rfi_hf_buf_put_real(b, c->rms_norm_eps, true);
    }
    if (c->rope_theta > 0 && isfinite(c->rope_theta)) {
        key(b, &first, "rope_theta");
        rfi_hf_buf_put_real(b, c->rope_theta, true);
    }
    if (c->tie_word_embeddings >= 0) {
        key(b, &first, "tie_word_embeddings");
        rfi_text_buf_puts(b, c->tie_word_embeddings ? "true" : "false");
    }
    const char *dtype = torch_dtype_of(m);
    if (dtype) {
        key(b, &first, "torch_dtype");
        rfi_json_put_cstring(b, dtype);
    }
    if (c->vocab_size) {
        key(b, &first, "vocab_size");
        rfi_text_buf_printf(b, "%llu", (unsigned long long)c->vocab_size);
    }
    rfi_text_buf_puts(b, "}");
    return true;
}

bool rfi_hf_generation_config_build(const rf_model *m, text_buf *b)
{
    const rf_model_config *c = rf_model_config_get(m);
    if (c->bos_token_id < 0 && c->eos_token_id < 0 && c->pad_token_id < 0)
        return false;
    bool first = true;
    rfi_text_buf_puts(b, "{");
    const char *keys[] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    int64_t ids[] = {c->bos_token_id, c->eos_token_id, c->pad_token_id};
    for (int i = 0; i < 3; i++)
        if (ids[i] >= 0) {
            key(b, &first, keys[i]);
            rfi_text_buf_printf(b, "%lld", (long long)ids[i]);
        }
    rfi_text_buf_puts(b, "}");
    return true;
}
