/* The model view: tensors, typed config, raw metadata, tokenizer, owned memory (see
 * rosetta/model.h). */
#include "rosetta/model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "pages.h"

#define ARENA_CHUNK (64u * 1024u)

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} arena_chunk;

struct rf_model {
    rf_format format;
    uint32_t version;
    char *path;
    arena_chunk *arena;

    rf_tensor *tensors;
    size_t n_tensors, cap_tensors;
    uint32_t *name_index; /* open-addressing hash of tensor indices + 1; 0 = empty */
    size_t index_cap;

    rf_kv *kvs;
    size_t n_kvs, cap_kvs;

    rf_model_config config;
    rf_tokenizer *tokenizer;

    char **warnings;
    size_t n_warnings, cap_warnings;

    rf_file **files;
    size_t n_files, cap_files;
};

static bool grow(void **ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*ptr, n * elem);
    if (!p)
        return false;
    *ptr = p;
    *cap = n;
    return true;
}

rf_model *rf_model_new(rf_format format, rf_error *err)
{
    rf_model *m = calloc(1, sizeof *m);
    if (!m) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory creating a model");
        return NULL;
    }
    m->format = format;
    m->config.tie_word_embeddings = -1;
    m->config.bos_token_id = -1;
    m->config.eos_token_id = -1;
    m->config.pad_token_id = -1;
    return m;
}

void rf_model_free(rf_model *m)
{
    if (!m)
        return;
    for (arena_chunk *c = m->arena, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    for (size_t i = 0; i < m->n_warnings; i++)
        free(m->warnings[i]);
    for (size_t i = 0; i < m->n_files; i++)
        rf_file_close(m->files[i]);
    free(m->warnings);
    free(m->files);
    free(m->tensors);
    free(m->name_index);
    free(m->kvs);
    free(m->path);
    free(m);
}

void *rf_model_alloc_array(rf_model *m, uint64_t count, size_t elem)
{
    if (elem != 0 && count > SIZE_MAX / elem)
        return NULL;
    return rf_model_alloc(m, (size_t)count * elem);
}

void *rf_model_alloc(rf_model *m, size_t size)
{
    if (size > SIZE_MAX - 15)
        return NULL;
    size = (size + 15) & ~(size_t)15;
    if (size == 0)
        size = 16;
    arena_chunk *c = m->arena;
    if (!c || c->size - c->used < size) {
        size_t chunk = size > ARENA_CHUNK / 4 ? size : ARENA_CHUNK;
        arena_chunk *n = malloc(sizeof *n + chunk);
        if (!n)
            return NULL;
        n->used = 0;
        n->size = chunk;
        if (size > ARENA_CHUNK / 4 && c) { /* big block: keep the current chunk in front */
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            m->arena = n;
        }
        c = n;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *rf_model_strndup(rf_model *m, const char *s, size_t n)
{
    char *d = n < SIZE_MAX ? rf_model_alloc(m, n + 1) : NULL;
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *rf_model_strdup(rf_model *m, const char *s) { return rf_model_strndup(m, s, strlen(s)); }

void rf_model_set_format_version(rf_model *m, uint32_t version) { m->version = version; }

rf_status rf_model_set_path(rf_model *m, const char *path, rf_error *err)
{
    size_t n = strlen(path) + 1;
    char *p = malloc(n);
    if (!p)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    memcpy(p, path, n);
    free(m->path);
    m->path = p;
    return RF_OK;
}

rf_format rf_model_format(const rf_model *m) { return m->format; }
uint32_t rf_model_format_version(const rf_model *m) { return m->version; }
const char *rf_model_path(const rf_model *m) { return m->path; }
size_t rf_model_n_tensors(const rf_model *m) { return m->n_tensors; }

const rf_tensor *rf_model_tensor(const rf_model *m, size_t i)
{
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool index_insert(rf_model *m, size_t tensor)
{
    if ((m->n_tensors + 1) * 2 > m->index_cap) {
        size_t cap = m->index_cap ? m->index_cap * 2 : 64;
        uint32_t *idx = calloc(cap, sizeof *idx);
        if (!idx)
            return false;
        for (size_t i = 0; i < m->index_cap; i++)
            if (m->name_index[i]) {
                size_t j = hash_name(m->tensors[m->name_index[i] - 1].name) & (cap - 1);
                while (idx[j])
                    j = (j + 1) & (cap - 1);
                idx[j] = m->name_index[i];
            }
        free(m->name_index);
        m->name_index = idx;
        m->index_cap = cap;
    }
    size_t j = hash_name(m->tensors[tensor].name) & (m->index_cap - 1);
    while (m->name_index[j])
        j = (j + 1) & (m->index_cap - 1);
    m->name_index[j] = (uint32_t)(tensor + 1);
    return true;
}

const rf_tensor *rf_model_find_tensor(const rf_model *m, const char *name)
{
    if (!m->index_cap)
        return NULL;
    size_t j = hash_name(name) & (m->index_cap - 1);
    while (m->name_index[j]) {
        const rf_tensor *t = &m->tensors[m->name_index[j] - 1];
        if (strcmp(t->name, name) == 0)
            return t;
        j = (j + 1) & (m->index_cap - 1);
    }
    return NULL;
}

rf_status rf_model_add_tensor(rf_model *m, const rf_tensor *t, rf_error *err)
{
    if (t->ndim < 0 || t->ndim > RF_MAX_DIMS)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "tensor '%s': %d dimensions (at most %d)",
                            t->name, t->ndim, RF_MAX_DIMS);
    if (m->n_tensors >= UINT32_MAX - 1)
        return rf_error_set(err, RF_ERR_LIMIT, "too many tensors");
    if (rf_model_find_tensor(m, t->name))
        return rf_error_set(err, RF_ERR_FORMAT, "duplicate tensor name '%s'", t->name);
    if (!grow((void **)&m->tensors, &m->cap_tensors, m->n_tensors + 1, sizeof *m->tensors))
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory adding tensor '%s'", t->name);
    rf_tensor copy = *t;
    copy.name = rf_model_strdup(m, t->name);
    if (!copy.name)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory adding tensor '%s'", t->name);
    m->tensors[m->n_tensors] = copy;
    if (!index_insert(m, m->n_tensors))
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory adding tensor '%s'", t->name);
    m->n_tensors++;
    return RF_OK;
}

static bool copy_value(rf_model *m, rf_value *dst, const rf_value *src, int depth)
{
    *dst = *src;
    if (src->type == RF_VALUE_STRING || src->type == RF_VALUE_JSON) {
        char *s = rf_model_strndup(m, src->as.str.data ? src->as.str.data : "", src->as.str.len);
        if (!s)
            return false;
        dst->as.str.data = s;
    } else if (src->type == RF_VALUE_ARRAY) {
        if (depth > 16)
            return false;
        rf_value *items = rf_model_alloc_array(m, src->as.arr.count, sizeof *items);
        if (!items)
            return false;
        for (uint64_t i = 0; i < src->as.arr.count; i++)
            if (!copy_value(m, &items[i], &src->as.arr.items[i], depth + 1))
                return false;
        dst->as.arr.items = items;
    }
    return true;
}

rf_status rf_model_add_kv(rf_model *m, const char *key, const rf_value *value, rf_error *err)
{
    if (!grow((void **)&m->kvs, &m->cap_kvs, m->n_kvs + 1, sizeof *m->kvs))
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory adding key '%s'", key);
    rf_kv *kv = &m->kvs[m->n_kvs];
    kv->key = rf_model_strdup(m, key);
    if (!kv->key || !copy_value(m, &kv->value, value, 0))
        return rf_error_set(err, RF_ERR_NOMEM,
                            "out of memory (or nesting too deep) adding key '%s'", key);
    m->n_kvs++;
    return RF_OK;
}

size_t rf_model_n_kv(const rf_model *m) { return m->n_kvs; }
const rf_kv *rf_model_kv(const rf_model *m, size_t i) { return i < m->n_kvs ? &m->kvs[i] : NULL; }

const rf_kv *rf_model_find_kv(const rf_model *m, const char *key)
{
    for (size_t i = 0; i < m->n_kvs; i++)
        if (strcmp(m->kvs[i].key, key) == 0)
            return &m->kvs[i];
    return NULL;
}

const rf_model_config *rf_model_config_get(const rf_model *m) { return &m->config; }
rf_model_config *rf_model_config_mut(rf_model *m) { return &m->config; }
const rf_tokenizer *rf_model_tokenizer(const rf_model *m) { return m->tokenizer; }

rf_tokenizer *rf_model_tokenizer_mut(rf_model *m)
{
    if (!m->tokenizer)
        m->tokenizer = rf_model_alloc(m, sizeof *m->tokenizer);
    return m->tokenizer;
}

rf_status rf_model_add_warning(rf_model *m, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (m->n_warnings >= 10000) /* a damaged file must not make us allocate without bound */
        return RF_OK;
    if (!grow((void **)&m->warnings, &m->cap_warnings, m->n_warnings + 1, sizeof *m->warnings))
        return RF_ERR_NOMEM;
    size_t n = strlen(buf) + 1;
    char *w = malloc(n);
    if (!w)
        return RF_ERR_NOMEM;
    memcpy(w, buf, n);
    m->warnings[m->n_warnings++] = w;
    return RF_OK;
}

size_t rf_model_n_warnings(const rf_model *m) { return m->n_warnings; }
const char *rf_model_warning(const rf_model *m, size_t i)
{
    return i < m->n_warnings ? m->warnings[i] : NULL;
}

rf_status rf_model_add_file(rf_model *m, rf_file *file, uint32_t *index, rf_error *err)
{
    if (!grow((void **)&m->files, &m->cap_files, m->n_files + 1, sizeof *m->files))
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    if (index)
        *index = (uint32_t)m->n_files;
    m->files[m->n_files++] = file;
    return RF_OK;
}

uint64_t rf_model_file_size(const rf_model *m)
{
    uint64_t total = 0;
    for (size_t i = 0; i < m->n_files; i++)
        total += rf_file_size(m->files[i]);
    return total;
}

size_t rf_model_n_files(const rf_model *m) { return m->n_files; }
const rf_file *rf_model_file(const rf_model *m, size_t i)
{
    return i < m->n_files ? m->files[i] : NULL;
}

const char *rf_model_source_path(const rf_model *m, size_t i)
{
    return i < m->n_files ? rf_file_path(m->files[i]) : NULL;
}

uint64_t rf_model_source_size(const rf_model *m, size_t i)
{
    return i < m->n_files ? rf_file_size(m->files[i]) : 0;
}

bool rf_model_release_data(const rf_model *m, const void *p, uint64_t n)
{
    if (m == NULL || p == NULL)
        return false;
    for (size_t i = 0; i < m->n_files; i++)
        if (rfi_file_release_range(m->files[i], p, n))
            return true;
    return false;
}

const char *rf_rope_type_name(rf_rope_type t)
{
    switch (t) {
    case RF_ROPE_NORM: return "norm";
    case RF_ROPE_NEOX: return "neox";
    case RF_ROPE_UNKNOWN: break;
    }
    return NULL;
}

/* ---- values ------------------------------------------------------------------------------ */

bool rf_value_as_u64(const rf_value *v, uint64_t *out)
{
    switch (v->type) {
    case RF_VALUE_U8:
    case RF_VALUE_U16:
    case RF_VALUE_U32:
    case RF_VALUE_U64: *out = v->as.u; return true;
    case RF_VALUE_I8:
    case RF_VALUE_I16:
    case RF_VALUE_I32:
    case RF_VALUE_I64:
        if (v->as.i < 0)
            return false;
        *out = (uint64_t)v->as.i;
        return true;
    case RF_VALUE_BOOL: *out = v->as.b; return true;
    case RF_VALUE_F32:
    case RF_VALUE_F64:
    case RF_VALUE_STRING:
    case RF_VALUE_ARRAY:
    case RF_VALUE_JSON: return false;
    }
    return false;
}

bool rf_value_as_i64(const rf_value *v, int64_t *out)
{
    switch (v->type) {
    case RF_VALUE_U8:
    case RF_VALUE_U16:
    case RF_VALUE_U32:
    case RF_VALUE_U64:
        if (v->as.u > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v->as.u;
        return true;
    case RF_VALUE_I8:
    case RF_VALUE_I16:
    case RF_VALUE_I32:
    case RF_VALUE_I64: *out = v->as.i; return true;
    case RF_VALUE_BOOL: *out = v->as.b; return true;
    case RF_VALUE_F32:
    case RF_VALUE_F64:
    case RF_VALUE_STRING:
    case RF_VALUE_ARRAY:
    case RF_VALUE_JSON: return false;
    }
    return false;
}

bool rf_value_as_f64(const rf_value *v, double *out)
{
    switch (v->type) {
    case RF_VALUE_U8:
    case RF_VALUE_U16:
    case RF_VALUE_U32:
    case RF_VALUE_U64: *out = (double)v->as.u; return true;
    case RF_VALUE_I8:
    case RF_VALUE_I16:
    case RF_VALUE_I32:
    case RF_VALUE_I64: *out = (double)v->as.i; return true;
    case RF_VALUE_F32:
    case RF_VALUE_F64: *out = v->as.f; return true;
    case RF_VALUE_BOOL:
    case RF_VALUE_STRING:
    case RF_VALUE_ARRAY:
    case RF_VALUE_JSON: return false;
    }
    return false;
}

const char *rf_value_type_name(rf_value_type t)
{
    switch (t) {
    case RF_VALUE_U8: return "u8";
    case RF_VALUE_I8: return "i8";
    case RF_VALUE_U16: return "u16";
    case RF_VALUE_I16: return "i16";
    case RF_VALUE_U32: return "u32";
    case RF_VALUE_I32: return "i32";
    case RF_VALUE_F32: return "f32";
    case RF_VALUE_BOOL: return "bool";
    case RF_VALUE_STRING: return "string";
    case RF_VALUE_ARRAY: return "array";
    case RF_VALUE_U64: return "u64";
    case RF_VALUE_I64: return "i64";
    case RF_VALUE_F64: return "f64";
    case RF_VALUE_JSON: return "json";
    }
    return "unknown";
}

/* ---- copies between models ----------------------------------------------------------------- */

static bool dup_opt(rf_model *m, const char **s)
{
    if (*s == NULL)
        return true;
    *s = rf_model_strdup(m, *s);
    return *s != NULL;
}

rf_status rfi_model_copy_config(rf_model *dst, const rf_model *src, rf_error *err)
{
    rf_model_config c = src->config;
    if (!dup_opt(dst, &c.architecture) || !dup_opt(dst, &c.name) || !dup_opt(dst, &c.chat_template))
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory copying a model configuration");
    dst->config = c;
    return RF_OK;
}

/* n strings of src, each copied into m (NULL entries stay NULL). */
static const char **dup_strings(rf_model *m, const char *const *src, uint64_t n)
{
    const char **out = rf_model_alloc_array(m, n, sizeof *out);
    for (uint64_t i = 0; out && i < n; i++)
        if (src[i] && !(out[i] = rf_model_strdup(m, src[i])))
            return NULL;
    return out;
}

rf_status rfi_model_copy_tokenizer(rf_model *dst, const rf_model *src, rf_error *err)
{
    const rf_tokenizer *t = src->tokenizer;
    if (t == NULL)
        return RF_OK;
    rf_tokenizer c = *t;
    bool ok = dup_opt(dst, &c.model) && dup_opt(dst, &c.pre);
    if (ok && t->tokens)
        ok = (c.tokens = dup_strings(dst, t->tokens, t->n_tokens)) != NULL;
    if (ok && t->merges)
        ok = (c.merges = dup_strings(dst, t->merges, t->n_merges)) != NULL;
    if (ok && t->token_types) {
        int32_t *types = rf_model_alloc_array(dst, t->n_tokens, sizeof *types);
        if ((ok = types != NULL))
            memcpy(types, t->token_types, (size_t)t->n_tokens * sizeof *types);
        c.token_types = types;
    }
    rf_tokenizer *d = ok ? rf_model_tokenizer_mut(dst) : NULL;
    if (d == NULL)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory copying a tokenizer");
    *d = c;
    return RF_OK;
}
