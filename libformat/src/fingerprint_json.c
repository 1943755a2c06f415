/* The JSON form of a fingerprint (docs/fingerprint-schema.json, docs/fingerprint.md): writing
 * with exact numbers (the shortest text that reads back as the same float32 or double; 64-bit
 * integers as JSON integers, never rounded through a double) and reading with a message that
 * names the first field that is wrong. */
#include "model_internal.h"
#include "fingerprint_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "io.h"
#include "rosetta/version.h"

/* ---- writing -------------------------------------------------------------------------------- */

static cJSON *raw_text(const char *text) { return cJSON_CreateRaw(text); }

static cJSON *json_u64(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return raw_text(buf);
}

static cJSON *json_i64(int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return raw_text(buf);
}

/* The shortest "%.Ng" text that reads back as exactly v (as a float when single); null for NaN
 * and infinities. */
static cJSON *json_number(double v, bool single)
{
    if (!isfinite(v))
        return cJSON_CreateNull();
    char buf[40];
    for (int digits = single ? 6 : 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v)
            break;
    }
    if (v == 0 && signbit(v))
        snprintf(buf, sizeof buf, "-0.0");
    return raw_text(buf);
}

static cJSON *json_hex(uint64_t v)
{
    char hex[17];
    rfi_fp_hex64(v, hex);
    return cJSON_CreateString(hex);
}

static cJSON *json_string_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static const char *rope_name(rf_rope_type t)
{
    switch (t) {
    case RF_ROPE_UNKNOWN: return NULL;
    case RF_ROPE_NORM: return "norm";
    case RF_ROPE_NEOX: return "neox";
    }
    return NULL;
}

static cJSON *json_config(const rf_fingerprint *fp)
{
    const rf_model_config *c = &fp->config;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "architecture", json_string_or_null(c->architecture));
    cJSON_AddItemToObject(o, "name", json_string_or_null(c->name));
    static const char *const U64_NAMES[] = {"hidden_size", "n_layers",      "n_heads",
                                            "n_kv_heads",  "head_dim",      "intermediate_size",
                                            "vocab_size",  "context_length"};
    const uint64_t values[] = {c->hidden_size, c->n_layers,      c->n_heads,
                               c->n_kv_heads,  c->head_dim,      c->intermediate_size,
                               c->vocab_size,  c->context_length};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        cJSON_AddItemToObject(o, U64_NAMES[i],
                              values[i] ? json_u64(values[i]) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "rope_theta",
                          c->rope_theta > 0 ? json_number(c->rope_theta, false)
                                            : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "rope_type", json_string_or_null(rope_name(c->rope_type)));
    cJSON_AddItemToObject(o, "rms_norm_eps",
                          c->rms_norm_eps > 0 ? json_number(c->rms_norm_eps, false)
                                              : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "tie_word_embeddings",
                          c->tie_word_embeddings < 0 ? cJSON_CreateNull()
                                                     : cJSON_CreateBool(c->tie_word_embeddings));
    static const char *const ID_NAMES[] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    const int64_t ids[] = {c->bos_token_id, c->eos_token_id, c->pad_token_id};
    for (size_t i = 0; i < 3; i++)
        cJSON_AddItemToObject(o, ID_NAMES[i], ids[i] >= 0 ? json_i64(ids[i]) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "chat_template_xxh3",
                          fp->has_chat_template ? json_hex(fp->chat_template_digest)
                                                : cJSON_CreateNull());
    return o;
}

static cJSON *json_stats(const rf_value_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "count", json_u64(s->count));
    cJSON_AddItemToObject(o, "finite", json_u64(s->finite));
    cJSON_AddItemToObject(o, "nan", json_u64(s->nan));
    cJSON_AddItemToObject(o, "inf", json_u64(s->inf));
    cJSON_AddItemToObject(o, "zeros", json_u64(s->zeros));
    cJSON_AddItemToObject(o, "min", json_number(s->min, true));
    cJSON_AddItemToObject(o, "max", json_number(s->max, true));
    cJSON_AddItemToObject(o, "mean", json_number(s->mean, false));
    cJSON_AddItemToObject(o, "std", json_number(s->std, false));
    cJSON_AddItemToObject(o, "l2", json_number(s->l2, false));
    for (int k = 0; k < RF_N_PERCENTILES; k++) {
        char key[8];
        snprintf(key, sizeof key, "p%u", rf_percentile_point(k));
        cJSON_AddItemToObject(o, key, json_number(s->percentiles[k], true));
    }
    return o;
}

static cJSON *json_tensor(const rf_tensor_fingerprint *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "canonical", t->canonical);
    cJSON_AddStringToObject(o, "dtype", t->dtype);
    cJSON *shape = cJSON_AddArrayToObject(o, "shape");
    for (int d = 0; shape && d < t->ndim; d++)
        cJSON_AddItemToArray(shape, json_u64(t->shape[d]));
    cJSON_AddItemToObject(o, "bytes", json_u64(t->nbytes));
    cJSON_AddItemToObject(o, "raw_xxh3", json_hex(t->raw_digest));
    cJSON_AddItemToObject(o, "canonical_xxh3",
                          t->has_values ? json_hex(t->canonical_digest) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "stats", t->has_values ? json_stats(&t->stats) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "values_error",
                          json_string_or_null(t->has_values ? NULL : t->values_error));
    return o;
}

char *rf_fingerprint_to_json(const rf_fingerprint *fp, bool pretty)
{
    if (!fp)
        return NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "rosetta-fingerprint");
    cJSON_AddItemToObject(root, "schema_version", json_u64(RF_FINGERPRINT_SCHEMA_VERSION));
    cJSON_AddStringToObject(root, "generator", "rosetta " ROSETTA_VERSION);
    cJSON_AddStringToObject(root, "file", fp->file);
    cJSON_AddStringToObject(root, "format", fp->format);
    cJSON_AddItemToObject(root, "format_version", json_u64(fp->format_version));
    cJSON_AddItemToObject(root, "file_size", json_u64(fp->file_size));
    cJSON_AddItemToObject(root, "config", json_config(fp));
    cJSON_AddStringToObject(root, "digest", "xxh3-64");
    cJSON_AddItemToObject(root, "model_raw_xxh3", json_hex(rf_fingerprint_raw_digest(fp)));
    uint64_t canonical;
    cJSON_AddItemToObject(root, "model_canonical_xxh3",
                          rf_fingerprint_canonical_digest(fp, &canonical) ? json_hex(canonical)
                                                                          : cJSON_CreateNull());
    cJSON_AddItemToObject(root, "tensor_count", json_u64(fp->n_tensors));
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; list && i < fp->n_tensors; i++)
        cJSON_AddItemToArray(list, json_tensor(&fp->tensors[i]));
    char *text = pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return NULL;
    size_t len = strlen(text);
    char *out = realloc(text, len + 2);
    if (!out) {
        cJSON_free(text);
        return NULL;
    }
    out[len] = '\n';
    out[len + 1] = '\0';
    return out;
}

rf_status rf_fingerprint_write(const rf_fingerprint *fp, const char *path, bool pretty,
                               rf_error *err)
{
    char *text = rf_fingerprint_to_json(fp, pretty);
    if (!text)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory for the fingerprint JSON");
    rf_writer *w = rf_writer_open(path, err);
    rf_status st = w ? rf_writer_write(w, text, strlen(text), err) : RF_ERR_WRITE;
    free(text);
    if (!w)
        return st;
    if (st != RF_OK) {
        rf_writer_abort(w);
        return st;
    }
    return rf_writer_commit(w, NULL, NULL, err);
}

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct reader {
    rf_error *err;
    char where[96];
} reader;

static bool bad(reader *r, const char *field, const char *what)
{
    rf_error_set(r->err, RF_ERR_FORMAT, "%s%s: %s", r->where, field, what);
    return false;
}

static bool get_u64(reader *r, const cJSON *o, const char *field, bool nullable, uint64_t *out,
                    bool *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (present)
        *present = false;
    if (nullable && cJSON_IsNull(v)) {
        *out = 0;
        return true;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble))
        return bad(r, field, "expected a non-negative integer");
    /* cJSON reads numbers as doubles: integers beyond 2^53 would be rounded. */
    if (v->valuedouble > 9007199254740992.0)
        return bad(r, field, "integer beyond 2^53 (cannot be read exactly)");
    *out = (uint64_t)v->valuedouble;
    if (present)
        *present = true;
    return true;
}

static bool get_number(reader *r, const cJSON *o, const char *field, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (cJSON_IsNull(v)) {
        *out = NAN;
        return true;
    }
    if (!cJSON_IsNumber(v))
        return bad(r, field, "expected a number or null");
    *out = v->valuedouble;
    return true;
}

static bool get_hex(reader *r, const cJSON *o, const char *field, bool nullable, uint64_t *out,
                    bool *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    *present = false;
    if (nullable && cJSON_IsNull(v))
        return true;
    const char *s = cJSON_GetStringValue(v);
    if (!s || strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16)
        return bad(r, field, "expected 16 lower-case hex digits");
    *out = strtoull(s, NULL, 16);
    *present = true;
    return true;
}

static bool get_string(reader *r, const cJSON *o, const char *field, bool nullable, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    *out = NULL;
    if (nullable && (cJSON_IsNull(v) || !v))
        return true;
    const char *s = cJSON_GetStringValue(v);
    if (!s)
        return bad(r, field, nullable ? "expected a string or null" : "expected a string");
    if (!(*out = strdup(s))) {
        rf_error_set(r->err, RF_ERR_NOMEM, "out of memory");
        return false;
    }
    return true;
}

static bool read_config(reader *r, const cJSON *c, rf_fingerprint *fp)
{
    rf_model_config *cfg = &fp->config;
    memset(cfg, 0, sizeof *cfg);
    cfg->tie_word_embeddings = -1;
    cfg->bos_token_id = cfg->eos_token_id = cfg->pad_token_id = -1;
    if (!cJSON_IsObject(c))
        return bad(r, "config", "expected an object");
    snprintf(r->where, sizeof r->where, "config.");
    if (!get_string(r, c, "architecture", true, &fp->config_architecture) ||
        !get_string(r, c, "name", true, &fp->config_name))
        return false;
    cfg->architecture = fp->config_architecture;
    cfg->name = fp->config_name;
    struct {
        const char *name;
        uint64_t *field;
    } u64s[] = {{"hidden_size", &cfg->hidden_size}, {"n_layers", &cfg->n_layers},
                {"n_heads", &cfg->n_heads},         {"n_kv_heads", &cfg->n_kv_heads},
                {"head_dim", &cfg->head_dim},       {"intermediate_size", &cfg->intermediate_size},
                {"vocab_size", &cfg->vocab_size},   {"context_length", &cfg->context_length}};
    for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++)
        if (!get_u64(r, c, u64s[i].name, true, u64s[i].field, NULL))
            return false;
    double theta, eps;
    if (!get_number(r, c, "rope_theta", &theta) || !get_number(r, c, "rms_norm_eps", &eps))
        return false;
    cfg->rope_theta = isnan(theta) ? 0 : theta;
    cfg->rms_norm_eps = isnan(eps) ? 0 : eps;
    const char *rope = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "rope_type"));
    cfg->rope_type = !rope                       ? RF_ROPE_UNKNOWN
                     : strcmp(rope, "neox") == 0 ? RF_ROPE_NEOX
                     : strcmp(rope, "norm") == 0 ? RF_ROPE_NORM
                                                 : RF_ROPE_UNKNOWN;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(c, "tie_word_embeddings");
    cfg->tie_word_embeddings = cJSON_IsBool(tie) ? cJSON_IsTrue(tie) : -1;
    const char *ids[] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    int64_t *id_fields[] = {&cfg->bos_token_id, &cfg->eos_token_id, &cfg->pad_token_id};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, ids[i]);
        if (cJSON_IsNumber(v))
            *id_fields[i] = (int64_t)v->valuedouble;
        else if (v && !cJSON_IsNull(v))
            return bad(r, ids[i], "expected an integer or null");
    }
    bool present;
    if (!get_hex(r, c, "chat_template_xxh3", true, &fp->chat_template_digest, &present))
        return false;
    fp->has_chat_template = present;
    r->where[0] = '\0';
    return true;
}

static bool read_stats(reader *r, const cJSON *s, rf_value_stats *out)
{
    if (!cJSON_IsObject(s))
        return bad(r, "stats", "expected an object or null");
    size_t len = strlen(r->where);
    snprintf(r->where + len, sizeof r->where - len, "stats.");
    uint64_t *counts[] = {&out->count, &out->finite, &out->nan, &out->inf, &out->zeros};
    const char *count_names[] = {"count", "finite", "nan", "inf", "zeros"};
    for (int i = 0; i < 5; i++)
        if (!get_u64(r, s, count_names[i], false, counts[i], NULL))
            return false;
    double v;
    if (!get_number(r, s, "min", &v))
        return false;
    out->min = (float)v;
    if (!get_number(r, s, "max", &v))
        return false;
    out->max = (float)v;
    if (!get_number(r, s, "mean", &out->mean) || !get_number(r, s, "std", &out->std) ||
        !get_number(r, s, "l2", &out->l2))
        return false;
    for (int k = 0; k < RF_N_PERCENTILES; k++) {
        char key[8];
        snprintf(key, sizeof key, "p%u", rf_percentile_point(k));
        if (!get_number(r, s, key, &v))
            return false;
        out->percentiles[k] = (float)v;
    }
    r->where[len] = '\0';
    return true;
}

static bool read_tensor(reader *r, const cJSON *o, rf_tensor_fingerprint *t)
{
    if (!cJSON_IsObject(o))
        return bad(r, "", "expected an object");
    char *name, *canonical, *dtype, *verr;
    if (!get_string(r, o, "name", false, &name))
        return false;
    t->name = name;
    if (!get_string(r, o, "canonical", false, &canonical))
        return false;
    t->canonical = canonical;
    if (!get_string(r, o, "dtype", false, &dtype))
        return false;
    t->dtype = dtype;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > RF_MAX_DIMS)
        return bad(r, "shape", "expected an array of at most 8 integers");
    t->ndim = cJSON_GetArraySize(shape);
    for (int d = 0; d < t->ndim; d++) {
        const cJSON *v = cJSON_GetArrayItem(shape, d);
        if (!cJSON_IsNumber(v) || v->valuedouble < 0)
            return bad(r, "shape", "expected non-negative integers");
        t->shape[d] = (uint64_t)v->valuedouble;
    }
    bool present;
    if (!get_u64(r, o, "bytes", false, &t->nbytes, NULL) ||
        !get_hex(r, o, "raw_xxh3", false, &t->raw_digest, &present) ||
        !get_hex(r, o, "canonical_xxh3", true, &t->canonical_digest, &t->has_values))
        return false;
    const cJSON *stats = cJSON_GetObjectItemCaseSensitive(o, "stats");
    if (t->has_values != !cJSON_IsNull(stats))
        return bad(r, "stats", "present exactly when canonical_xxh3 is");
    if (t->has_values && !read_stats(r, stats, &t->stats))
        return false;
    if (!get_string(r, o, "values_error", true, &verr))
        return false;
    t->values_error = verr;
    return true;
}

rf_fingerprint *rf_fingerprint_from_json(const char *text, size_t len, rf_error *err)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        rf_error_set(err, RF_ERR_FORMAT, "not valid JSON");
        return NULL;
    }
    rf_fingerprint *fp = rfi_fp_new();
    reader r = {err, ""};
    bool ok = fp != NULL;
    const char *schema = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "schema"));
    if (ok && (!schema || strcmp(schema, "rosetta-fingerprint") != 0))
        ok = bad(&r, "schema", "expected \"rosetta-fingerprint\" (not a Rosetta fingerprint)");
    uint64_t version = 0;
    if (ok)
        ok = get_u64(&r, root, "schema_version", false, &version, NULL);
    if (ok && version != RF_FINGERPRINT_SCHEMA_VERSION) {
        rf_error_set(err, RF_ERR_UNSUPPORTED,
                     "schema_version %" PRIu64 " (this build reads version %d)", version,
                     RF_FINGERPRINT_SCHEMA_VERSION);
        ok = false;
    }
    uint64_t fv = 0;
    ok = ok && get_string(&r, root, "file", false, &fp->file) &&
         get_string(&r, root, "format", false, &fp->format) &&
         get_u64(&r, root, "format_version", false, &fv, NULL) &&
         get_u64(&r, root, "file_size", false, &fp->file_size, NULL) &&
         read_config(&r, cJSON_GetObjectItemCaseSensitive(root, "config"), fp);
    if (fp)
        fp->format_version = (uint32_t)fv;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    if (ok && !cJSON_IsArray(list))
        ok = bad(&r, "tensors", "expected an array");
    if (ok) {
        size_t n = (size_t)cJSON_GetArraySize(list);
        fp->tensors = calloc(n ? n : 1, sizeof *fp->tensors);
        if (!fp->tensors) {
            rf_error_set(err, RF_ERR_NOMEM, "out of memory");
            ok = false;
        }
        size_t i = 0;
        for (const cJSON *item = list->child; ok && item; item = item->next, i++) {
            fp->n_tensors = i + 1;
            snprintf(r.where, sizeof r.where, "tensors[%zu].", i);
            ok = read_tensor(&r, item, &fp->tensors[i]);
        }
    }
    if (ok && !rfi_fp_index(fp)) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        ok = false;
    }
    cJSON_Delete(root);
    if (!ok) {
        if (!fp)
            rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        rf_fingerprint_free(fp);
        return NULL;
    }
    return fp;
}

rf_fingerprint *rf_fingerprint_read(const char *path, rf_error *err)
{
    rf_file *f = rf_file_open(path, err);
    if (!f)
        return NULL;
    rf_fingerprint *fp =
        rf_fingerprint_from_json((const char *)rf_file_data(f), (size_t)rf_file_size(f), err);
    rf_file_close(f);
    if (!fp)
        rf_error_prefix(err, "%s", path); /* rf_file_open's own messages already name it */
    return fp;
}
