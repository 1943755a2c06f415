/* Provenance of converted files (docs/convert.md, "Provenance"): the record of where an output
 * came from, and the keys Rosetta adds so that what a format's reference writer drops survives a
 * round trip (the Hugging Face companion files, token types, padding id, BOS flag, a GGUF's
 * general.* names).
 * Not for: deciding whether provenance is written (rf_convert_params.provenance) or writing it
 * (the format writers take these keys as extra metadata). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "convert_internal.h"
#include "json_text.h"
#include "rosetta/version.h"
#include "text_buf.h"

#define HF_PREFIX      "hf."
#define CARRIED_PREFIX "rosetta.hf."
#define GENERAL_KEY    "rosetta.gguf.general"

/* The companion files carried (tokenizer.json is not: every format holds the tokenizer). */
static const char *const COMPANIONS[] = {"config.json", "generation_config.json",
                                         "tokenizer_config.json", "chat_template.jinja"};
#define N_COMPANIONS (sizeof COMPANIONS / sizeof COMPANIONS[0])

bool rfi_provenance_key(const char *key)
{
    return strcmp(key, "rosetta.provenance") == 0 ||
           strncmp(key, "rosetta.provenance.", strlen("rosetta.provenance.")) == 0;
}

static const char *format_word(rf_format f)
{
    switch (f) {
    case RF_FORMAT_GGUF: return "gguf";
    case RF_FORMAT_APR:
    case RF_FORMAT_APR2_MAGIC: return "apr";
    case RF_FORMAT_SAFETENSORS:
    case RF_FORMAT_SAFETENSORS_INDEX:
    case RF_FORMAT_SAFETENSORS_DIR: return "safetensors";
    case RF_FORMAT_UNKNOWN:
    case RF_FORMAT_APR_V1:
    case RF_FORMAT_APR1:
    case RF_FORMAT_APRT:
    case RF_FORMAT_APR_TSP: return rf_format_name(f);
    }
    return "unknown";
}

/* The last path component, without trailing slashes ("fixtures/tiny-qwen2/" -> "tiny-qwen2"). */
static void base_name(const char *path, char *out, size_t size)
{
    size_t n = path ? strlen(path) : 0;
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/')
        start--;
    snprintf(out, size, "%.*s", (int)(n - start), path ? path + start : "");
}

/* The conversion's options in the tools' flag spelling, so that a reader can repeat it. */
static void options_text(const provenance_facts *f, text_buf *b)
{
    const rf_convert_params *p = f->p;
    rfi_text_buf_printf(b, "--to %s", format_word(f->format));
    if (p->quantize) {
        const char *mix = rf_quant_mix_name(p->plan.mix);
        rfi_text_buf_printf(b, " --quantize %s", mix ? mix : "?");
        if (p->plan.pure)
            rfi_text_buf_puts(b, " --pure");
        if (p->plan.leave_output_tensor)
            rfi_text_buf_puts(b, " --leave-output-tensor");
        if (p->plan.set_output_tensor_type)
            rfi_text_buf_printf(b, " --output-tensor-type %s",
                                rf_dtype_name(p->plan.output_tensor_type));
        if (p->plan.set_token_embedding_type)
            rfi_text_buf_printf(b, " --token-embedding-type %s",
                                rf_dtype_name(p->plan.token_embedding_type));
        for (size_t i = 0; i < p->plan.n_overrides; i++)
            rfi_text_buf_printf(b, " --tensor-type %s=%s", p->plan.overrides[i].pattern,
                                rf_dtype_name(p->plan.overrides[i].dtype));
        if (p->imatrix_path) {
            char name[256];
            base_name(p->imatrix_path, name, sizeof name);
            rfi_text_buf_printf(b, " --imatrix %s", name);
        }
    }
    if (p->convert_unheld && p->unheld_dtype != RF_DTYPE_F32)
        rfi_text_buf_printf(b, " --requantize %s", rf_dtype_name(p->unheld_dtype));
    if (p->architecture)
        rfi_text_buf_printf(b, " --arch %s", p->architecture);
    if (!p->check_contract)
        rfi_text_buf_puts(b, " --skip-contract");
}

/* SOURCE_DATE_EPOCH as ISO 8601 UTC, or false when unset or not a number. */
static bool created_at(char *buf, size_t size)
{
    const char *s = getenv("SOURCE_DATE_EPOCH");
    if (s == NULL || *s == '\0')
        return false;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || v < 0)
        return false;
    time_t t = (time_t)v;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return false;
    return strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
}

static void member(text_buf *b, const char *key, const char *value, bool first)
{
    if (!first)
        rfi_text_buf_putc(b, ',');
    rfi_json_put_cstring(b, key);
    rfi_text_buf_putc(b, ':');
    rfi_json_put_cstring(b, value);
}

rf_status rfi_provenance_record(const rf_model *src, const provenance_facts *f, rf_model *store,
                                const char **json, rf_error *err)
{
    char name[256], created[40];
    base_name(rf_model_path(src), name, sizeof name);
    text_buf options = {0}, b = {0};
    options_text(f, &options);
    rfi_text_buf_putc(&b, '{');
    member(&b, "source", name, true);
    member(&b, "source_format", format_word(rf_model_format(src)), false);
    member(&b, "source_digest", f->digest, false);
    member(&b, "rosetta_version", ROSETTA_VERSION, false);
    member(&b, "options", options.data ? options.data : "", false);
    if (created_at(created, sizeof created))
        member(&b, "created", created, false);
    rfi_text_buf_putc(&b, '}');
    const char *copy = b.failed || options.failed ? NULL : rf_model_strdup(store, b.data);
    rfi_text_buf_free(&options);
    rfi_text_buf_free(&b);
    if (copy == NULL)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory for the provenance record");
    *json = copy;
    return RF_OK;
}

/* ---- keys ----------------------------------------------------------------------------------- */

static rf_status add(rf_model *store, const char *key, rf_value v, rf_error *err)
{
    return rf_model_add_kv(store, key, &v, err);
}

static rf_value str(const char *s)
{
    return (rf_value){.type = RF_VALUE_STRING, .as.str = {s, strlen(s)}};
}
static rf_value json(const char *s, uint64_t n)
{
    return (rf_value){.type = RF_VALUE_JSON, .as.str = {s, n}};
}

/* The JSON text of a companion file as src carries it: "hf.<file>" (SafeTensors sources, JSON)
 * or "rosetta.hf.<file>" (JSON in APR, a string in GGUF); NULL when absent. */
static const rf_value *companion(const rf_model *src, const char *file)
{
    char key[96];
    const char *const prefixes[] = {HF_PREFIX, CARRIED_PREFIX};
    for (size_t k = 0; k < 2; k++) {
        snprintf(key, sizeof key, "%s%s", prefixes[k], file);
        const rf_kv *kv = rf_model_find_kv(src, key);
        if (kv && (kv->value.type == RF_VALUE_JSON || kv->value.type == RF_VALUE_STRING))
            return &kv->value;
    }
    return NULL;
}

/* The general.* strings of a GGUF source as one JSON object, NULL when there are none. */
static rf_status gguf_general(const rf_model *src, rf_model *store, const char **out, rf_error *err)
{
    text_buf b = {0};
    size_t n = 0;
    for (size_t i = 0; i < rf_model_n_kv(src); i++) {
        const rf_kv *kv = rf_model_kv(src, i);
        if (kv->value.type != RF_VALUE_STRING || strncmp(kv->key, "general.", 8) != 0 ||
            strcmp(kv->key, "general.architecture") == 0)
            continue;
        rfi_text_buf_putc(&b, n++ ? ',' : '{');
        rfi_json_put_cstring(&b, kv->key);
        rfi_text_buf_putc(&b, ':');
        rfi_json_put_string(&b, kv->value.as.str.data, (size_t)kv->value.as.str.len);
    }
    *out = NULL;
    if (n == 0)
        return RF_OK;
    rfi_text_buf_putc(&b, '}');
    *out = b.failed ? NULL : rf_model_strdup(store, b.data);
    rfi_text_buf_free(&b);
    return *out ? RF_OK : rf_error_set(err, RF_ERR_NOMEM, "out of memory");
}

/* Token types, padding id and BOS flag: aprender's SafeTensors path leaves them out. */
static rf_status apr_tokenizer_keys(const rf_model *src, rf_model *store, rf_error *err)
{
    const rf_tokenizer *tok = rf_model_tokenizer(src);
    const rf_model_config *c = rf_model_config_get(src);
    rf_status st = RF_OK;
    if (tok && tok->token_types && tok->n_tokens) {
        rf_value *items = rf_model_alloc(store, (size_t)tok->n_tokens * sizeof *items);
        if (items == NULL)
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        for (uint64_t i = 0; i < tok->n_tokens; i++)
            items[i] = (rf_value){.type = RF_VALUE_I64, .as.i = tok->token_types[i]};
        rf_value v = {.type = RF_VALUE_ARRAY, .as.arr = {RF_VALUE_I64, tok->n_tokens, items}};
        st = add(store, "tokenizer.token_type", v, err);
    }
    if (st == RF_OK && c->pad_token_id >= 0)
        st = add(store, "tokenizer.padding_token_id",
                 (rf_value){.type = RF_VALUE_U64, .as.u = (uint64_t)c->pad_token_id}, err);
    if (st == RF_OK && tok)
        st = add(store, "tokenizer.add_bos_token",
                 (rf_value){.type = RF_VALUE_BOOL, .as.b = tok->add_bos}, err);
    return st;
}

static bool is_apr(rf_format f) { return f == RF_FORMAT_APR || f == RF_FORMAT_APR2_MAGIC; }

rf_status rfi_provenance_keys(const rf_model *src, rf_format format, const char *record,
                              rf_model *store, rf_error *err)
{
    const rf_format sf = rf_model_format(src);
    rf_status st = RF_OK;
    char key[128];
    if (format == RF_FORMAT_APR) {
        st = add(store, "rosetta.provenance", json(record, strlen(record)), err);
        if (is_apr(sf))
            return st; /* an APR source's metadata is kept whole */
        if (st == RF_OK && sf != RF_FORMAT_GGUF)
            st = apr_tokenizer_keys(src, store, err);
        for (size_t i = 0; st == RF_OK && i < N_COMPANIONS; i++) {
            const rf_value *v = companion(src, COMPANIONS[i]);
            if (v == NULL)
                continue;
            snprintf(key, sizeof key, CARRIED_PREFIX "%s", COMPANIONS[i]);
            st = add(store, key, json(v->as.str.data, v->as.str.len), err);
        }
        const char *general = NULL;
        if (st == RF_OK && sf == RF_FORMAT_GGUF)
            st = gguf_general(src, store, &general, err);
        if (st == RF_OK && general)
            st = add(store, GENERAL_KEY, json(general, strlen(general)), err);
        return st;
    }
    if (format == RF_FORMAT_GGUF) {
        /* the record, flattened into strings */
        cJSON *rec = cJSON_Parse(record);
        for (const cJSON *m = rec ? rec->child : NULL; st == RF_OK && m; m = m->next) {
            snprintf(key, sizeof key, "rosetta.provenance.%s", m->string);
            const char *value = rf_model_strdup(store, cJSON_IsString(m) ? m->valuestring : "");
            st = value ? add(store, key, str(value), err)
                       : rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        }
        cJSON_Delete(rec);
        if (st != RF_OK || sf == RF_FORMAT_GGUF)
            return st; /* a GGUF source's own pairs are kept */
        for (size_t i = 0; st == RF_OK && i < N_COMPANIONS; i++) {
            const rf_value *v = companion(src, COMPANIONS[i]);
            if (v == NULL)
                continue;
            snprintf(key, sizeof key, CARRIED_PREFIX "%s", COMPANIONS[i]);
            st = add(store, key, str(v->as.str.data), err);
        }
        /* the general.* strings an APR made from a GGUF carries */
        const rf_kv *general = rf_model_find_kv(src, GENERAL_KEY);
        cJSON *obj = general && general->value.type == RF_VALUE_JSON
                         ? cJSON_ParseWithLength(general->value.as.str.data,
                                                 (size_t)general->value.as.str.len)
                         : NULL;
        for (const cJSON *m = obj ? obj->child : NULL; st == RF_OK && m; m = m->next) {
            if (!cJSON_IsString(m) || strncmp(m->string, "general.", 8) != 0 ||
                strcmp(m->string, "general.architecture") == 0)
                continue;
            const char *k = rf_model_strdup(store, m->string);
            const char *value = rf_model_strdup(store, m->valuestring);
            st = k && value ? add(store, k, str(value), err)
                            : rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        }
        cJSON_Delete(obj);
        return st;
    }
    /* SafeTensors: the record as one string in __metadata__ */
    return add(store, "rosetta.provenance", str(record), err);
}

rf_status rfi_provenance_companions(const rf_model *src, rf_model *out, rf_error *err)
{
    rf_status st = RF_OK;
    char key[96];
    for (size_t i = 0; st == RF_OK && i < N_COMPANIONS; i++) {
        snprintf(key, sizeof key, CARRIED_PREFIX "%s", COMPANIONS[i]);
        const rf_kv *kv = rf_model_find_kv(src, key);
        if (kv == NULL || (kv->value.type != RF_VALUE_JSON && kv->value.type != RF_VALUE_STRING))
            continue;
        snprintf(key, sizeof key, HF_PREFIX "%s", COMPANIONS[i]);
        if (rf_model_find_kv(out, key) == NULL)
            st = add(out, key, json(kv->value.as.str.data, kv->value.as.str.len), err);
    }
    return st;
}

char *rf_model_provenance(const rf_model *m)
{
    if (m == NULL)
        return NULL;
    const rf_kv *kv = rf_model_find_kv(m, "rosetta.provenance");
    if (kv != NULL && (kv->value.type == RF_VALUE_JSON || kv->value.type == RF_VALUE_STRING)) {
        /* APR: a JSON object; SafeTensors: its text in a string. Either way, compact JSON. */
        cJSON *obj = cJSON_ParseWithLength(kv->value.as.str.data, (size_t)kv->value.as.str.len);
        char *text = cJSON_IsObject(obj) ? cJSON_PrintUnformatted(obj) : NULL;
        cJSON_Delete(obj);
        return text;
    }
    /* GGUF: one string key per field */
    cJSON *obj = NULL;
    const size_t prefix = strlen("rosetta.provenance.");
    for (size_t i = 0; i < rf_model_n_kv(m); i++) {
        kv = rf_model_kv(m, i);
        if (strncmp(kv->key, "rosetta.provenance.", prefix) != 0 ||
            kv->value.type != RF_VALUE_STRING)
            continue;
        if (obj == NULL && (obj = cJSON_CreateObject()) == NULL)
            return NULL;
        cJSON_AddStringToObject(obj, kv->key + prefix, kv->value.as.str.data);
    }
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return text;
}
