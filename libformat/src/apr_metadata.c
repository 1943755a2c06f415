/* APR metadata <-> model view: JSON object -> key/value pairs, typed config and tokenizer on read;
 * key/value pairs -> aprender's AprV2Metadata JSON on write (docs/formats/apr.md).
 *
 * Values are kept typed where JSON and rf_value agree without loss: strings, u64 / i64 integers,
 * f64 numbers (f32 for aprender's two f32 fields), booleans, and homogeneous arrays of those.
 * Everything else (null, objects, empty or mixed arrays) is RF_VALUE_JSON holding the compact
 * text serde_json would write for it, so that writing the pairs back reproduces the bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model_internal.h"
#include "apr_internal.h"

/* ---- AprV2Metadata's typed fields, in declaration (= serialization) order (docs/formats/apr.md)
 * --------- */

typedef enum field_kind {
    F_STR_DEFAULT, /* String with default "": always written */
    F_STR_SKIP,    /* Option<String>, skipped when None */
    F_STR_NULL,    /* Option<String>, written as null when None (provenance keys) */
    F_U64_DEFAULT, /* u64 with default 0: always written */
    F_USIZE,       /* Option<usize>, skipped when None */
    F_U32,         /* Option<u32>, skipped when None */
    F_F32,         /* Option<f32>, skipped when None */
    F_OBJECT,      /* Option<struct>, skipped when None; nested fields below */
} field_kind;

typedef struct typed_field {
    const char *key;
    field_kind kind;
    const char *const *nested; /* F_OBJECT: field names in order, NULL-terminated */
} typed_field;

static const char *const QUANT_FIELDS[] = {"quant_type", "bits", "block_size", "symmetric", NULL};
static const char *const SHARD_FIELDS[] = {"shard_count", "shard_index", "total_size", "pattern",
                                           NULL};
static const char *const SPECIAL_FIELDS[] = {
    "bos_token", "eos_token", "unk_token", "pad_token", "im_start_token", "im_end_token", NULL};

static const typed_field TYPED[] = {
    {"model_type", F_STR_DEFAULT, NULL},
    {"name", F_STR_SKIP, NULL},
    {"description", F_STR_SKIP, NULL},
    {"author", F_STR_SKIP, NULL},
    {"license", F_STR_NULL, NULL},
    {"data_source", F_STR_NULL, NULL},
    {"data_license", F_STR_NULL, NULL},
    {"version", F_STR_SKIP, NULL},
    {"source", F_STR_SKIP, NULL},
    {"original_format", F_STR_SKIP, NULL},
    {"created_at", F_STR_SKIP, NULL},
    {"total_size", F_U64_DEFAULT, NULL},
    {"param_count", F_U64_DEFAULT, NULL},
    {"quantization", F_OBJECT, QUANT_FIELDS},
    {"sharding", F_OBJECT, SHARD_FIELDS},
    {"chat_template", F_STR_SKIP, NULL},
    {"chat_format", F_STR_SKIP, NULL},
    {"special_tokens", F_OBJECT, SPECIAL_FIELDS},
    {"architecture", F_STR_SKIP, NULL},
    {"hf_architecture", F_STR_SKIP, NULL},
    {"hf_model_type", F_STR_SKIP, NULL},
    {"hidden_size", F_USIZE, NULL},
    {"num_layers", F_USIZE, NULL},
    {"num_heads", F_USIZE, NULL},
    {"num_kv_heads", F_USIZE, NULL},
    {"vocab_size", F_USIZE, NULL},
    {"intermediate_size", F_USIZE, NULL},
    {"max_position_embeddings", F_USIZE, NULL},
    {"rope_theta", F_F32, NULL},
    {"rope_type", F_U32, NULL},
    {"rms_norm_eps", F_F32, NULL},
    {"head_dim", F_USIZE, NULL},
    {"num_experts", F_USIZE, NULL},
    {"num_experts_per_tok", F_USIZE, NULL},
    {"moe_intermediate_size", F_USIZE, NULL},
};
#define N_TYPED (sizeof TYPED / sizeof TYPED[0])

static const typed_field *typed_lookup(const char *key)
{
    for (size_t i = 0; i < N_TYPED; i++)
        if (strcmp(TYPED[i].key, key) == 0)
            return &TYPED[i];
    return NULL;
}

/* realizar's serde aliases (docs/formats/apr.md), in the order aprender's canonicalize_hf_aliases
 * takes them; the last group member of each list is NULL. */
typedef struct alias_group {
    const char *canonical;
    const char *aliases[4];
    bool is_float;
} alias_group;

static const alias_group ALIASES[] = {
    {"hidden_size", {"hidden_dim", "d_model", "n_embd", NULL}, false},
    {"num_layers", {"num_hidden_layers", "n_layers", "n_layer", NULL}, false},
    {"num_heads", {"num_attention_heads", "n_heads", "n_head", NULL}, false},
    {"num_kv_heads", {"num_key_value_heads", "n_kv_heads", NULL, NULL}, false},
    {"vocab_size", {"n_vocab", NULL, NULL, NULL}, false},
    {"intermediate_size", {"ffn_dim", "intermediate_dim", "n_inner", NULL}, false},
    {"max_position_embeddings", {"max_seq_len", "context_length", "n_ctx", NULL}, false},
    {"rms_norm_eps", {"layer_norm_eps", "norm_eps", NULL, NULL}, true},
};
#define N_ALIASES (sizeof ALIASES / sizeof ALIASES[0])

static bool is_alias(const char *key)
{
    for (size_t g = 0; g < N_ALIASES; g++)
        for (size_t k = 0; ALIASES[g].aliases[k]; k++)
            if (strcmp(ALIASES[g].aliases[k], key) == 0)
                return true;
    return false;
}

/* ---- key/value list ------------------------------------------------------------------------- */

void rfi_apr_kvlist_add(apr_kvlist *l, const char *key, rf_value value)
{
    if (l->failed)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        rf_kv *items = realloc(l->items, cap * sizeof *items);
        if (!items) {
            l->failed = true;
            return;
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n].key = key;
    l->items[l->n].value = value;
    l->n++;
}

void *rfi_apr_kvlist_own(apr_kvlist *l, void *p)
{
    if (!p) {
        l->failed = true;
        return NULL;
    }
    if (l->n_owned == l->cap_owned) {
        size_t cap = l->cap_owned ? l->cap_owned * 2 : 16;
        void **owned = realloc(l->owned, cap * sizeof *owned);
        if (!owned) {
            free(p);
            l->failed = true;
            return NULL;
        }
        l->owned = owned;
        l->cap_owned = cap;
    }
    l->owned[l->n_owned++] = p;
    return p;
}

void rfi_apr_kvlist_free(apr_kvlist *l)
{
    for (size_t i = 0; i < l->n_owned; i++)
        free(l->owned[i]);
    free(l->owned);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* ---- reading: JSON -> rf_value -------------------------------------------------------------- */

/* Temporary allocations made while converting one value (freed after the model copied it). */
typedef struct temps {
    void **p;
    size_t n, cap;
    bool failed;
} temps;

static bool temp_own(temps *t, void *p);

static void *temp_alloc(temps *t, size_t size)
{
    void *mem = malloc(size ? size : 1);
    return temp_own(t, mem) ? mem : NULL;
}

static void temps_free(temps *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->p[i]);
    free(t->p);
    memset(t, 0, sizeof *t);
}

/* Hands p to t (freed with it); false when p is NULL or t could not grow. */
static bool temp_own(temps *t, void *p)
{
    if (!p || t->failed) {
        free(p);
        t->failed = true;
        return false;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        void **list = realloc(t->p, cap * sizeof *list);
        if (!list) {
            free(p);
            t->failed = true;
            return false;
        }
        t->p = list;
        t->cap = cap;
    }
    t->p[t->n++] = p;
    return true;
}

static void as_json_text(const apr_json *j, uint32_t idx, rf_value *out, temps *t)
{
    text_buf b = {0};
    rfi_apr_json_write(&b, j, idx);
    out->type = RF_VALUE_JSON;
    out->as.str.data = "";
    out->as.str.len = 0;
    if (b.failed || !temp_own(t, b.data)) {
        if (b.failed)
            rfi_text_buf_free(&b);
        t->failed = true;
        return;
    }
    out->as.str.data = b.data;
    out->as.str.len = b.len;
}

static void to_value(const apr_json *j, uint32_t idx, rf_value *out, temps *t)
{
    const apr_jnode *node = &j->nodes[idx];
    memset(out, 0, sizeof *out);
    switch (node->type) {
    case APR_J_BOOL:
        out->type = RF_VALUE_BOOL;
        out->as.b = node->as.b;
        return;
    case APR_J_U64:
        out->type = RF_VALUE_U64;
        out->as.u = node->as.u;
        return;
    case APR_J_I64:
        out->type = RF_VALUE_I64;
        out->as.i = node->as.i;
        return;
    case APR_J_F64:
        out->type = RF_VALUE_F64;
        out->as.f = node->as.f;
        return;
    case APR_J_STRING:
        out->type = RF_VALUE_STRING;
        out->as.str.data = node->str;
        out->as.str.len = node->str_len;
        return;
    case APR_J_ARRAY: {
        /* homogeneous arrays of scalars become typed arrays; integers widen to i64 when some
         * are negative and all fit */
        bool strings = true, bools = true, floats = true, ints = true, any_neg = false, big = false;
        for (uint32_t c = node->first; c; c = j->nodes[c].next) {
            const apr_jnode *e = &j->nodes[c];
            strings &= e->type == APR_J_STRING;
            bools &= e->type == APR_J_BOOL;
            floats &= e->type == APR_J_F64;
            ints &= e->type == APR_J_U64 || e->type == APR_J_I64;
            any_neg |= e->type == APR_J_I64;
            big |= e->type == APR_J_U64 && e->as.u > (uint64_t)INT64_MAX;
        }
        if (node->count == 0 || !(strings || bools || floats || ints) || (any_neg && big)) {
            as_json_text(j, idx, out, t);
            return;
        }
        rf_value *items = temp_alloc(t, (size_t)node->count * sizeof *items);
        if (!items) {
            out->type = RF_VALUE_JSON;
            out->as.str.data = "";
            return;
        }
        size_t i = 0;
        for (uint32_t c = node->first; c; c = j->nodes[c].next, i++) {
            const apr_jnode *e = &j->nodes[c];
            memset(&items[i], 0, sizeof items[i]);
            if (ints && any_neg) {
                items[i].type = RF_VALUE_I64;
                items[i].as.i = e->type == APR_J_I64 ? e->as.i : (int64_t)e->as.u;
            } else {
                to_value(j, c, &items[i], t);
            }
        }
        out->type = RF_VALUE_ARRAY;
        out->as.arr.elem_type = items[0].type;
        out->as.arr.count = node->count;
        out->as.arr.items = items;
        return;
    }
    case APR_J_NULL:
    case APR_J_OBJECT: as_json_text(j, idx, out, t); return;
    }
}

typedef struct unique_key {
    uint32_t first; /* node of the first occurrence: decides the position */
    uint32_t last;  /* node of the last occurrence: decides the value */
    uint32_t count;
} unique_key;

static int cmp_first(const void *a, const void *b)
{
    uint32_t x = ((const unique_key *)a)->first, y = ((const unique_key *)b)->first;
    return x < y ? -1 : x > y;
}

rf_status rfi_apr_metadata_read(rf_model *m, const uint8_t *text, size_t len, uint64_t offset,
                                const char **model_type, rf_error *err)
{
    *model_type = NULL;
    apr_json j;
    rf_status st = rfi_apr_json_parse(text, len, offset, "metadata", &j, err);
    if (st != RF_OK)
        return st;
    if (j.nodes[0].type != APR_J_OBJECT) {
        static const char *const kinds[] = {"null",     "a boolean", "a number", "a number",
                                            "a number", "a string",  "an array", "an object"};
        const char *found = kinds[j.nodes[0].type];
        rfi_apr_json_free(&j);
        return rf_error_set(err, RF_ERR_FORMAT,
                            "metadata (offset %llu): expected a JSON object, found %s",
                            (unsigned long long)offset, found);
    }
    uint32_t n = j.nodes[0].count;
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    unique_key *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!order || !keys) {
        free(order);
        free(keys);
        rfi_apr_json_free(&j);
        return rf_error_set(err, RF_ERR_NOMEM, "metadata: out of memory");
    }
    uint32_t k = 0;
    for (uint32_t c = j.nodes[0].first; c; c = j.nodes[c].next)
        order[k++] = c;
    qsort_r(order, n, sizeof *order, rfi_apr_json_cmp_members, &j);
    uint32_t n_keys = 0;
    for (uint32_t i = 0; i < n; i++) {
        const apr_jnode *x = &j.nodes[order[i]];
        if (i > 0) {
            const apr_jnode *prev = &j.nodes[order[i - 1]];
            if (prev->key_len == x->key_len && memcmp(prev->key, x->key, x->key_len) == 0) {
                keys[n_keys - 1].last = order[i];
                keys[n_keys - 1].count++;
                continue;
            }
        }
        keys[n_keys++] = (unique_key){order[i], order[i], 1};
    }
    free(order);
    qsort(keys, n_keys, sizeof *keys, cmp_first);

    st = RF_OK;
    for (uint32_t i = 0; i < n_keys && st == RF_OK; i++) {
        const apr_jnode *first = &j.nodes[keys[i].first];
        const apr_jnode *val = &j.nodes[keys[i].last];
        if (strlen(first->key) != first->key_len) {
            st = rf_error_set(err, RF_ERR_FORMAT,
                              "metadata: key at offset %llu contains a NUL character",
                              (unsigned long long)first->offset);
            break;
        }
        if (keys[i].count > 1)
            rf_model_add_warning(m,
                                 "metadata key '%s' appears %u times (offsets %llu and %llu): the "
                                 "last value is kept, as aprender does",
                                 first->key, keys[i].count, (unsigned long long)first->offset,
                                 (unsigned long long)val->offset);
        temps t = {0};
        rf_value v;
        const typed_field *f = typed_lookup(first->key);
        if (f && f->kind == F_F32 &&
            (val->type == APR_J_U64 || val->type == APR_J_I64 || val->type == APR_J_F64)) {
            /* aprender holds these two fields as f32 */
            double d = val->type == APR_J_U64   ? (double)val->as.u
                       : val->type == APR_J_I64 ? (double)val->as.i
                                                : val->as.f;
            memset(&v, 0, sizeof v);
            v.type = RF_VALUE_F32;
            v.as.f = (double)(float)d;
        } else {
            to_value(&j, keys[i].last, &v, &t);
        }
        if (t.failed)
            st = rf_error_set(err, RF_ERR_NOMEM, "metadata: out of memory converting key '%s'",
                              first->key);
        else
            st = rf_model_add_kv(m, first->key, &v, err);
        temps_free(&t);
    }
    free(keys);
    rfi_apr_json_free(&j);
    if (st != RF_OK)
        return st;
    const rf_kv *mt = rf_model_find_kv(m, "model_type");
    if (mt && mt->value.type == RF_VALUE_STRING)
        *model_type = mt->value.as.str.data;
    return RF_OK;
}

/* ---- reading: key/value pairs -> config and tokenizer --------------------------------------- */

static const rf_value *kv_value(const rf_model *m, const char *key)
{
    const rf_kv *kv = rf_model_find_kv(m, key);
    if (!kv)
        return NULL;
    if (kv->value.type == RF_VALUE_JSON && strcmp(kv->value.as.str.data, "null") == 0)
        return NULL;
    return &kv->value;
}

static bool is_integer_type(rf_value_type t)
{
    switch (t) {
    case RF_VALUE_U8:
    case RF_VALUE_I8:
    case RF_VALUE_U16:
    case RF_VALUE_I16:
    case RF_VALUE_U32:
    case RF_VALUE_I32:
    case RF_VALUE_U64:
    case RF_VALUE_I64: return true;
    case RF_VALUE_F32:
    case RF_VALUE_BOOL:
    case RF_VALUE_STRING:
    case RF_VALUE_ARRAY:
    case RF_VALUE_F64:
    case RF_VALUE_JSON: return false;
    }
    return false;
}

static bool is_number_type(rf_value_type t)
{
    return is_integer_type(t) || t == RF_VALUE_F32 || t == RF_VALUE_F64;
}

/* An unsigned integer config value from the canonical key, its aliases, then the GGUF path's
 * "model.<key>" duplicate. Reports alias use and conflicts as warnings. */
static bool config_u64(rf_model *m, const char *key, uint64_t *out)
{
    const alias_group *group = NULL;
    for (size_t g = 0; g < N_ALIASES; g++)
        if (strcmp(ALIASES[g].canonical, key) == 0)
            group = &ALIASES[g];
    bool found = false;
    const rf_value *v = kv_value(m, key);
    if (v) {
        if (is_integer_type(v->type) && rf_value_as_u64(v, out))
            found = true;
        else
            rf_model_add_warning(m, "metadata key '%s' is not an unsigned integer (%s); ignored",
                                 key, rf_value_type_name(v->type));
    }
    for (size_t k = 0; group && group->aliases[k]; k++) {
        const char *alias = group->aliases[k];
        const rf_value *a = kv_value(m, alias);
        if (!a)
            continue;
        if (found) {
            rf_model_add_warning(m,
                                 "metadata has both '%s' and its alias '%s' (realizar would "
                                 "discard all metadata); using '%s'",
                                 key, alias, key);
            continue;
        }
        uint64_t u;
        if (is_integer_type(a->type) && rf_value_as_u64(a, &u)) {
            *out = u;
            found = true;
            rf_model_add_warning(m, "metadata uses '%s', a realizar alias of '%s'", alias, key);
        }
    }
    if (!found) {
        char dup[96];
        snprintf(dup, sizeof dup, "model.%s", key);
        const rf_value *d = kv_value(m, dup);
        if (d && is_integer_type(d->type) && rf_value_as_u64(d, out))
            found = true;
    }
    return found;
}

static bool config_f64(rf_model *m, const char *key, double *out)
{
    const rf_value *v = kv_value(m, key);
    if (v && is_number_type(v->type) && rf_value_as_f64(v, out))
        return true;
    if (v)
        rf_model_add_warning(m, "metadata key '%s' is not a number (%s); ignored", key,
                             rf_value_type_name(v->type));
    for (size_t g = 0; g < N_ALIASES; g++) {
        if (strcmp(ALIASES[g].canonical, key) != 0)
            continue;
        for (size_t k = 0; ALIASES[g].aliases[k]; k++) {
            const rf_value *a = kv_value(m, ALIASES[g].aliases[k]);
            if (a && is_number_type(a->type) && rf_value_as_f64(a, out)) {
                rf_model_add_warning(m, "metadata uses '%s', a realizar alias of '%s'",
                                     ALIASES[g].aliases[k], key);
                return true;
            }
        }
    }
    char dup[96];
    snprintf(dup, sizeof dup, "model.%s", key);
    const rf_value *d = kv_value(m, dup);
    return d && is_number_type(d->type) && rf_value_as_f64(d, out);
}

static const char *config_str(const rf_model *m, const char *key)
{
    const rf_value *v = kv_value(m, key);
    return v && v->type == RF_VALUE_STRING ? v->as.str.data : NULL;
}

static bool config_i64(const rf_model *m, const char *key, int64_t *out)
{
    const rf_value *v = kv_value(m, key);
    return v && is_integer_type(v->type) && rf_value_as_i64(v, out);
}

static const rf_value *string_array(rf_model *m, const char *key)
{
    const rf_value *v = kv_value(m, key);
    if (!v)
        return NULL;
    if (v->type == RF_VALUE_ARRAY && v->as.arr.elem_type == RF_VALUE_STRING)
        return v;
    if (v->type == RF_VALUE_JSON && strcmp(v->as.str.data, "[]") == 0)
        return v; /* empty */
    rf_model_add_warning(m, "metadata key '%s' is not an array of strings; not used", key);
    return NULL;
}

static void load_tokenizer(rf_model *m)
{
    const rf_value *vocab = string_array(m, "tokenizer.vocabulary");
    const rf_value *merges = string_array(m, "tokenizer.merges");
    if (!vocab && !merges)
        return;
    rf_tokenizer *tok = rf_model_tokenizer_mut(m);
    if (!tok)
        return;
    if (vocab && vocab->type == RF_VALUE_ARRAY) {
        const char **tokens = rf_model_alloc_array(m, vocab->as.arr.count, sizeof *tokens);
        if (tokens) {
            for (uint64_t i = 0; i < vocab->as.arr.count; i++)
                tokens[i] = vocab->as.arr.items[i].as.str.data;
            tok->tokens = tokens;
            tok->n_tokens = vocab->as.arr.count;
        }
    }
    if (merges && merges->type == RF_VALUE_ARRAY) {
        const char **list = rf_model_alloc_array(m, merges->as.arr.count, sizeof *list);
        if (list) {
            for (uint64_t i = 0; i < merges->as.arr.count; i++)
                list[i] = merges->as.arr.items[i].as.str.data;
            tok->merges = list;
            tok->n_merges = merges->as.arr.count;
        }
    }
    const rf_value *types = kv_value(m, "tokenizer.token_type");
    if (types && types->type == RF_VALUE_ARRAY && is_integer_type(types->as.arr.elem_type) &&
        types->as.arr.count == tok->n_tokens) {
        int32_t *tt = rf_model_alloc_array(m, types->as.arr.count, sizeof *tt);
        if (tt) {
            for (uint64_t i = 0; i < types->as.arr.count; i++) {
                int64_t x = 0;
                rf_value_as_i64(&types->as.arr.items[i], &x);
                tt[i] = (int32_t)x;
            }
            tok->token_types = tt;
        }
    } else if (types) {
        rf_model_add_warning(m, "metadata key 'tokenizer.token_type' is not an integer array of "
                                "the vocabulary's length; not used");
    }
    /* GGUF path: "tokenizer.model" (the GGUF name); SafeTensors path: "tokenizer.model_type"
     * (the tokenizer.json model type, "BPE" for byte-level BPE = GGUF "gpt2") */
    const char *model = config_str(m, "tokenizer.model");
    if (!model) {
        model = config_str(m, "tokenizer.model_type");
        if (model && strcasecmp(model, "bpe") == 0)
            model = "gpt2";
    }
    tok->model = model;
    tok->pre = config_str(m, "tokenizer.pre_type");
    const rf_value *add_bos = kv_value(m, "tokenizer.add_bos_token");
    if (add_bos && add_bos->type == RF_VALUE_BOOL)
        tok->add_bos = add_bos->as.b;
}

/* aprender keeps rope_theta and rms_norm_eps as f32; the file holds their shortest decimal
 * ("0.000001"). The config takes that decimal's double (1e-6), not the f32 widened
 * (9.99999997e-7), so that it equals the config of the model the file was made from. */
static double f32_as_decimal(double v)
{
    text_buf b = {0};
    rfi_apr_json_f32(&b, (float)v);
    double d = b.data && !b.failed ? rfi_apr_json_number(b.data) : v;
    rfi_text_buf_free(&b);
    return d == d ? d : v;
}

void rfi_apr_metadata_config(rf_model *m)
{
    rf_model_config *c = rf_model_config_mut(m);
    c->architecture = config_str(m, "architecture");
    if (!c->architecture)
        c->architecture = config_str(m, "model.architecture");
    if (!c->architecture)
        c->architecture = config_str(m, "hf_model_type");
    c->name = config_str(m, "name");
    config_u64(m, "hidden_size", &c->hidden_size);
    config_u64(m, "num_layers", &c->n_layers);
    config_u64(m, "num_heads", &c->n_heads);
    config_u64(m, "num_kv_heads", &c->n_kv_heads);
    config_u64(m, "vocab_size", &c->vocab_size);
    config_u64(m, "intermediate_size", &c->intermediate_size);
    config_u64(m, "max_position_embeddings", &c->context_length);
    if (!config_u64(m, "head_dim", &c->head_dim) && c->n_heads && c->hidden_size % c->n_heads == 0)
        c->head_dim =
            c->hidden_size / c->n_heads; /* aprender writes head_dim only when it differs */
    if (config_f64(m, "rope_theta", &c->rope_theta))
        c->rope_theta = f32_as_decimal(c->rope_theta);
    if (config_f64(m, "rms_norm_eps", &c->rms_norm_eps))
        c->rms_norm_eps = f32_as_decimal(c->rms_norm_eps);
    uint64_t rope;
    if (config_u64(m, "rope_type", &rope)) {
        if (rope == 0)
            c->rope_type = RF_ROPE_NORM;
        else if (rope == 2)
            c->rope_type = RF_ROPE_NEOX;
        else
            rf_model_add_warning(m, "metadata rope_type %llu is neither 0 (NORM) nor 2 (NEOX)",
                                 (unsigned long long)rope);
    }
    int64_t id;
    if (config_i64(m, "tokenizer.bos_token_id", &id))
        c->bos_token_id = id;
    if (config_i64(m, "tokenizer.eos_token_id", &id))
        c->eos_token_id = id;
    if (config_i64(m, "tokenizer.padding_token_id", &id))
        c->pad_token_id = id;
    c->chat_template = config_str(m, "chat_template");
    if (!c->chat_template)
        c->chat_template = config_str(m, "tokenizer.chat_template");
    const rf_value *tied = kv_value(m, "tied_embeddings");
    if (tied && tied->type == RF_VALUE_BOOL)
        c->tie_word_embeddings = tied->as.b ? 1 : 0;
    load_tokenizer(m);
}

/* ---- writing: key/value pairs -> AprV2Metadata JSON ----------------------------------------- */

static int cmp_kv(const void *a, const void *b, void *ctx)
{
    const rf_kv *items = ctx;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int c = strcmp(items[ia].key, items[ib].key); /* byte order of UTF-8 = Rust String order */
    if (c)
        return c;
    return ia < ib ? -1 : ia > ib;
}

/* A parsed JSON view of a value, for RF_VALUE_JSON inputs. */
static rf_status parse_json_value(const char *key, const rf_value *v, apr_json *j, rf_error *err)
{
    rf_status st = rfi_apr_json_parse((const uint8_t *)v->as.str.data, (size_t)v->as.str.len, 0,
                                      "metadata value", j, err);
    if (st != RF_OK)
        rf_error_prefix(err, "metadata key '%s'", key);
    return st;
}

static bool is_null(const rf_value *v)
{
    return v->type == RF_VALUE_JSON && strcmp(v->as.str.data, "null") == 0;
}

static rf_status emit_value(text_buf *b, const char *key, const rf_value *v, int depth,
                            rf_error *err)
{
    if (depth > 128)
        return rf_error_set(err, RF_ERR_ARGUMENT, "metadata key '%s': value nested too deeply",
                            key);
    switch (v->type) {
    case RF_VALUE_U8:
    case RF_VALUE_U16:
    case RF_VALUE_U32:
    case RF_VALUE_U64: rfi_apr_json_u64(b, v->as.u); return RF_OK;
    case RF_VALUE_I8:
    case RF_VALUE_I16:
    case RF_VALUE_I32:
    case RF_VALUE_I64: rfi_apr_json_i64(b, v->as.i); return RF_OK;
    case RF_VALUE_F32: /* a custom value is a serde_json Number: f64 */
    case RF_VALUE_F64: rfi_apr_json_f64(b, v->as.f); return RF_OK;
    case RF_VALUE_BOOL: rfi_text_buf_puts(b, v->as.b ? "true" : "false"); return RF_OK;
    case RF_VALUE_STRING:
        rfi_json_put_string(b, v->as.str.data ? v->as.str.data : "", (size_t)v->as.str.len);
        return RF_OK;
    case RF_VALUE_ARRAY:
        rfi_text_buf_putc(b, '[');
        for (uint64_t i = 0; i < v->as.arr.count; i++) {
            if (i)
                rfi_text_buf_putc(b, ',');
            rf_status st = emit_value(b, key, &v->as.arr.items[i], depth + 1, err);
            if (st != RF_OK)
                return st;
        }
        rfi_text_buf_putc(b, ']');
        return RF_OK;
    case RF_VALUE_JSON: {
        apr_json j;
        rf_status st = parse_json_value(key, v, &j, err);
        if (st != RF_OK)
            return st;
        rfi_apr_json_write(b, &j, 0);
        rfi_apr_json_free(&j);
        return RF_OK;
    }
    }
    return rf_error_set(err, RF_ERR_ARGUMENT, "metadata key '%s': unknown value type %d", key,
                        (int)v->type);
}

static rf_status bad_type(const char *key, const char *expected, const rf_value *v, rf_error *err)
{
    return rf_error_set(err, RF_ERR_ARGUMENT,
                        "metadata key '%s' must be %s for APR (aprender's AprV2Metadata), found %s",
                        key, expected, rf_value_type_name(v->type));
}

/* Emits a typed field; *written is false when the field is skipped. */
static rf_status emit_typed(text_buf *b, const typed_field *f, const rf_value *v, bool *written,
                            rf_error *err)
{
    *written = true;
    apr_json j = {0};
    bool have_json = false;
    if (v && v->type == RF_VALUE_JSON && !is_null(v)) {
        rf_status st = parse_json_value(f->key, v, &j, err);
        if (st != RF_OK)
            return st;
        have_json = true;
    }
    const apr_jnode *jn = have_json ? &j.nodes[0] : NULL;
    bool absent = !v || is_null(v);
    rf_status st = RF_OK;
    uint64_t u = 0;
    double d = 0;

    rfi_text_buf_putc(b, '"');
    rfi_text_buf_puts(b, f->key);
    rfi_text_buf_puts(b, "\":");
    switch (f->kind) {
    case F_STR_DEFAULT:
    case F_STR_SKIP:
    case F_STR_NULL:
        if (absent) {
            if (f->kind == F_STR_SKIP)
                *written = false;
            else
                rfi_text_buf_puts(b, f->kind == F_STR_NULL ? "null" : "\"\"");
        } else if (v->type == RF_VALUE_STRING) {
            rfi_json_put_string(b, v->as.str.data, (size_t)v->as.str.len);
        } else if (jn && jn->type == APR_J_STRING) {
            rfi_json_put_string(b, jn->str, (size_t)jn->str_len);
        } else {
            st = bad_type(f->key, "a string", v, err);
        }
        break;
    case F_U64_DEFAULT:
    case F_USIZE:
    case F_U32:
        if (absent) {
            if (f->kind == F_U64_DEFAULT)
                rfi_text_buf_puts(b, "0");
            else
                *written = false;
            break;
        }
        if (is_integer_type(v->type) && rf_value_as_u64(v, &u)) {
        } else if (jn && jn->type == APR_J_U64) {
            u = jn->as.u;
        } else {
            st = bad_type(f->key, "an unsigned integer", v, err);
            break;
        }
        if (f->kind == F_U32 && u > UINT32_MAX) {
            st = rf_error_set(err, RF_ERR_ARGUMENT, "metadata key '%s' = %llu does not fit a u32",
                              f->key, (unsigned long long)u);
            break;
        }
        rfi_apr_json_u64(b, u);
        break;
    case F_F32:
        if (absent) {
            *written = false;
            break;
        }
        if (is_number_type(v->type) && rf_value_as_f64(v, &d)) {
        } else if (jn &&
                   (jn->type == APR_J_U64 || jn->type == APR_J_I64 || jn->type == APR_J_F64)) {
            d = jn->type == APR_J_U64   ? (double)jn->as.u
                : jn->type == APR_J_I64 ? (double)jn->as.i
                                        : jn->as.f;
        } else {
            st = bad_type(f->key, "a number", v, err);
            break;
        }
        rfi_apr_json_f32(b, (float)d);
        break;
    case F_OBJECT:
        if (absent) {
            *written = false;
            break;
        }
        if (!jn || jn->type != APR_J_OBJECT) {
            st = bad_type(f->key, "a JSON object", v, err);
            break;
        }
        /* a struct: its fields in order, absent ones as null, unknown members dropped */
        rfi_text_buf_putc(b, '{');
        for (size_t i = 0; f->nested[i]; i++) {
            if (i)
                rfi_text_buf_putc(b, ',');
            rfi_json_put_cstring(b, f->nested[i]);
            rfi_text_buf_putc(b, ':');
            uint32_t mem = rfi_apr_json_member(&j, 0, f->nested[i]);
            if (mem)
                rfi_apr_json_write(b, &j, mem);
            else
                rfi_text_buf_puts(b, "null");
        }
        rfi_text_buf_putc(b, '}');
        break;
    }
    if (have_json)
        rfi_apr_json_free(&j);
    return st;
}

/* Binary search in the unique keys (sorted by byte order). */
static const rf_value *find_value(const apr_kvlist *kvs, const size_t *order, size_t n,
                                  const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(kvs->items[order[mid]].key, key);
        if (c == 0)
            return &kvs->items[order[mid]].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

rf_status rfi_apr_metadata_write(const apr_kvlist *kvs, text_buf *out, rf_error *err)
{
    if (kvs->failed)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory building APR metadata");
    size_t n = kvs->n;
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory building APR metadata");
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_kv, kvs->items);
    /* keep the last entry of each key: unique[] lists them in byte order of their keys */
    size_t n_unique = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(kvs->items[order[i]].key, kvs->items[order[i + 1]].key) == 0)
            continue;
        order[n_unique++] = order[i];
    }
#define FIND(key_) find_value(kvs, order, n_unique, (key_))

    /* aliases fold into their canonical field when it is absent and are never written
     * (aprender's canonicalize_hf_aliases; a file with two spellings breaks realizar) */
    rf_value alias_values[N_ALIASES];
    const rf_value *canonical[N_ALIASES];
    for (size_t g = 0; g < N_ALIASES; g++) {
        canonical[g] = FIND(ALIASES[g].canonical);
        if (canonical[g] && is_null(canonical[g]))
            canonical[g] = NULL;
        for (size_t k = 0; !canonical[g] && ALIASES[g].aliases[k]; k++) {
            const rf_value *a = FIND(ALIASES[g].aliases[k]);
            if (!a)
                continue;
            uint64_t u;
            double d;
            memset(&alias_values[g], 0, sizeof alias_values[g]);
            if (!ALIASES[g].is_float && is_integer_type(a->type) && rf_value_as_u64(a, &u)) {
                alias_values[g].type = RF_VALUE_U64;
                alias_values[g].as.u = u;
                canonical[g] = &alias_values[g];
            } else if (ALIASES[g].is_float && is_number_type(a->type) && rf_value_as_f64(a, &d)) {
                alias_values[g].type = RF_VALUE_F64;
                alias_values[g].as.f = d;
                canonical[g] = &alias_values[g];
            }
        }
    }

    rf_status st = RF_OK;
    rfi_text_buf_putc(out, '{');
    bool any = false;
    for (size_t i = 0; i < N_TYPED && st == RF_OK; i++) {
        const rf_value *v = FIND(TYPED[i].key);
        for (size_t g = 0; g < N_ALIASES; g++)
            if (strcmp(ALIASES[g].canonical, TYPED[i].key) == 0)
                v = canonical[g];
        size_t mark = out->len;
        if (any)
            rfi_text_buf_putc(out, ',');
        bool written;
        st = emit_typed(out, &TYPED[i], v, &written, err);
        if (st == RF_OK && !written) { /* roll back the skipped key */
            out->len = mark;
            if (out->data)
                out->data[mark] = '\0';
        } else {
            any = true;
        }
    }
    for (size_t i = 0; i < n_unique && st == RF_OK; i++) {
        const rf_kv *kv = &kvs->items[order[i]];
        if (typed_lookup(kv->key) || is_alias(kv->key))
            continue;
        if (any)
            rfi_text_buf_putc(out, ',');
        any = true;
        rfi_json_put_cstring(out, kv->key);
        rfi_text_buf_putc(out, ':');
        st = emit_value(out, kv->key, &kv->value, 0, err);
    }
    rfi_text_buf_putc(out, '}');
#undef FIND
    free(order);
    if (st == RF_OK && out->failed)
        st = rf_error_set(err, RF_ERR_NOMEM, "out of memory building APR metadata");
    return st;
}
