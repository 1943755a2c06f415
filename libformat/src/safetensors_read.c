/* SafeTensors reader: validates a file exactly as the reference reader does
 * (docs/formats/safetensors.md section 4, plus duplicate keys) and maps its tensors into the model
 * view without copying. Checkpoint directories and shard indexes are opened by safetensors_open.c
 * (the index logic is in safetensors_index.c, companion JSON files in hf_*.c). Not for: writing
 * (safetensors_write.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "hf_internal.h"
#include "model_internal.h"
#include "rosetta/detect.h"
#include "io.h"
#include "rosetta/safetensors.h"
#include "safetensors_internal.h"

/* One tensor entry of a header, before validation. */
typedef struct st_entry {
    const char *name;
    rf_dtype dtype;
    bool known_dtype; /* false only in lenient mode (unknown dtype string) */
    bool usable;      /* passed every per-tensor rule */
    int ndim;
    uint64_t shape[RF_MAX_DIMS];
    uint64_t begin, end;
} st_entry;

void rfi_st_format_shape(char *buf, size_t size, const uint64_t *shape, int ndim)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int i = 0; i < ndim && n < size; i++) {
        if (n + 24 >= size) {
            snprintf(buf + n, size - n, "...");
            n = size;
            break;
        }
        n += (size_t)snprintf(buf + n, size - n, "%s%llu", i ? "," : "",
                              (unsigned long long)shape[i]);
    }
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

static int compare_entries(const void *pa, const void *pb)
{
    const st_entry *a = pa, *b = pb;
    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* A per-tensor rule was broken: an error in strict mode, a warning in lenient mode. */
typedef struct st_ctx {
    rf_model *m;
    const char *name;
    bool lenient;
    bool problem; /* set by tensor_problem in lenient mode */
    rf_error *err;
    const char *header; /* the header text, for numbers read exactly from their tokens */
    size_t header_len;
} st_ctx;

static rf_status tensor_problem(st_ctx *c, rf_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static rf_status tensor_problem(st_ctx *c, rf_status status, const char *fmt, ...)
{
    char what[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->lenient) {
        rf_model_add_warning(c->m, "%s: %s", c->name, what);
        c->problem = true;
        return RF_OK;
    }
    return rf_error_set(c->err, status, "%s: %s", c->name, what);
}

/* One shape or offset number, read from its token as serde reads a usize: "4.0", "4e0", "-0"
 * and values of 2^64 or more are refused (serde sees floats there). */
static rf_status read_u64(st_ctx *c, const char *tn, const char *field, int i, const cJSON *d,
                          uint64_t *out)
{
    hf_num r = rfi_hf_json_exact_u64(d, c->header, c->header_len, out);
    if (r == HF_NUM_OK)
        return RF_OK;
    if (cJSON_IsNumber(d)) {
        int n;
        const char *tok = rfi_hf_json_number_text(d, c->header, c->header_len, &n);
        return rf_error_set(c->err, RF_ERR_FORMAT,
                            "%s: header: tensor \"%s\": %s[%d] = %.*s %s, expected a "
                            "non-negative integer",
                            c->name, tn, field, i, n, tok, rfi_hf_num_problem(r));
    }
    return rf_error_set(c->err, RF_ERR_FORMAT,
                        "%s: header: tensor \"%s\": %s[%d] is %s, expected a non-negative "
                        "integer",
                        c->name, tn, field, i, rfi_hf_json_kind(d));
}

/* Reads the dtype, shape and data_offsets of one header entry. Structural problems (wrong JSON
 * types) are always errors, as they are deserialization errors for the reference reader. */
static rf_status read_entry(st_ctx *c, const cJSON *item, st_entry *e)
{
    const char *tn = item->string;
    e->name = tn;
    if (!cJSON_IsObject(item))
        return rf_error_set(c->err, RF_ERR_FORMAT,
                            "%s: header: tensor \"%s\": entry is %s, expected an object with "
                            "\"dtype\", \"shape\" and \"data_offsets\"",
                            c->name, tn, rfi_hf_json_kind(item));
    const cJSON *dtype = rfi_hf_json_get(item, "dtype");
    const cJSON *shape = rfi_hf_json_get(item, "shape");
    const cJSON *offsets = rfi_hf_json_get(item, "data_offsets");
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    const cJSON *values[] = {dtype, shape, offsets};
    for (int i = 0; i < 3; i++)
        if (!values[i])
            return rf_error_set(c->err, RF_ERR_FORMAT, "%s: header: tensor \"%s\": missing \"%s\"",
                                c->name, tn, fields[i]);
    if (!cJSON_IsString(dtype))
        return rf_error_set(c->err, RF_ERR_FORMAT,
                            "%s: header: tensor \"%s\": \"dtype\" is %s, expected a string",
                            c->name, tn, rfi_hf_json_kind(dtype));
    e->known_dtype = rf_dtype_from_st(dtype->valuestring, &e->dtype);
    if (!e->known_dtype) {
        if (!c->lenient)
            return rf_error_set(c->err, RF_ERR_FORMAT,
                                "%s: header: tensor \"%s\": unknown dtype \"%.64s\" (expected one "
                                "of BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, "
                                "F64, C64, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, "
                                "F6_E2M3, F6_E3M2, F4)",
                                c->name, tn, dtype->valuestring);
        rf_model_add_warning(c->m, "%s: header: tensor \"%s\": unknown dtype \"%.64s\" (left out)",
                             c->name, tn, dtype->valuestring);
    }
    if (!cJSON_IsArray(shape))
        return rf_error_set(c->err, RF_ERR_FORMAT,
                            "%s: header: tensor \"%s\": \"shape\" is %s, expected an array of "
                            "non-negative integers",
                            c->name, tn, rfi_hf_json_kind(shape));
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > RF_MAX_DIMS)
        return rf_error_set(c->err, RF_ERR_UNSUPPORTED,
                            "%s: header: tensor \"%s\": %d dimensions, Rosetta handles at most %d",
                            c->name, tn, ndim, RF_MAX_DIMS);
    e->ndim = ndim;
    int i = 0;
    rf_status st;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        st = read_u64(c, tn, "shape", i, d, &e->shape[i]);
        if (st != RF_OK)
            return st;
    }
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return rf_error_set(c->err, RF_ERR_FORMAT,
                            "%s: header: tensor \"%s\": \"data_offsets\" is %s%s, expected "
                            "[begin, end]",
                            c->name, tn, rfi_hf_json_kind(offsets),
                            cJSON_IsArray(offsets) ? " of the wrong length" : "");
    uint64_t *bounds[2] = {&e->begin, &e->end};
    i = 0;
    for (const cJSON *d = offsets->child; d; d = d->next, i++) {
        st = read_u64(c, tn, "data_offsets", i, d, bounds[i]);
        if (st != RF_OK)
            return st;
    }
    return RF_OK;
}

/* Checks byte size = elements x dtype bits / 8 for one entry (rule 6). */
static rf_status check_size(st_ctx *c, st_entry *e, uint64_t data_start)
{
    char shape[160];
    rfi_st_format_shape(shape, sizeof shape, e->shape, e->ndim);
    const char *dname = rf_dtype_name(e->dtype);
    uint64_t elements = 1;
    for (int i = 0; i < e->ndim; i++) {
        if (e->shape[i] != 0 && elements > UINT64_MAX / e->shape[i])
            return tensor_problem(c, RF_ERR_OVERFLOW,
                                  "header: tensor \"%s\": element count of shape %s overflows "
                                  "64 bits",
                                  e->name, shape);
        elements *= e->shape[i];
    }
    unsigned bits = rf_safetensors_dtype_bits(e->dtype);
    if (bits == 0)
        return tensor_problem(c, RF_ERR_UNSUPPORTED,
                              "header: tensor \"%s\": dtype %s has no SafeTensors width", e->name,
                              dname);
    if (elements > UINT64_MAX / bits)
        return tensor_problem(c, RF_ERR_OVERFLOW,
                              "header: tensor \"%s\": bit size of %s shape %s overflows 64 bits",
                              e->name, dname, shape);
    uint64_t total_bits = elements * bits;
    if (total_bits % 8 != 0)
        return tensor_problem(c, RF_ERR_FORMAT,
                              "header: tensor \"%s\": %s shape %s is %llu bits, not a whole "
                              "number of bytes",
                              e->name, dname, shape, (unsigned long long)total_bits);
    uint64_t need = total_bits / 8;
    if (e->end - e->begin != need)
        return tensor_problem(c, RF_ERR_FORMAT,
                              "header: tensor \"%s\": data_offsets [%llu, %llu] (file offset "
                              "%llu) span %llu bytes but %s shape %s needs %llu: size does not "
                              "match the shape",
                              e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                              (unsigned long long)(data_start + e->begin),
                              (unsigned long long)(e->end - e->begin), dname, shape,
                              (unsigned long long)need);
    return RF_OK;
}

/* Rules 5-7: sorted by (begin, end) the entries tile [0, data_size) exactly. Marks usable. */
static rf_status check_layout(st_ctx *c, st_entry *entries, size_t n, uint64_t data_start,
                              uint64_t data_size, uint64_t file_size)
{
    qsort(entries, n, sizeof *entries, compare_entries);
    uint64_t expect = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        st_entry *e = &entries[i];
        bool ok = true;
        rf_status st = RF_OK;
        if (e->end < e->begin) {
            st = tensor_problem(c, RF_ERR_FORMAT,
                                "header: tensor \"%s\": data_offsets [%llu, %llu] end before "
                                "they begin",
                                e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
            ok = false;
        } else if (e->begin != expect) {
            if (!prev)
                st = tensor_problem(c, RF_ERR_FORMAT,
                                    "header: gap at the start of the data: the first tensor \"%s\" "
                                    "starts at data offset %llu (file offset %llu), expected 0",
                                    e->name, (unsigned long long)e->begin,
                                    (unsigned long long)(data_start + e->begin));
            else if (e->begin > expect)
                st = tensor_problem(c, RF_ERR_FORMAT,
                                    "header: gap in the data: tensor \"%s\" starts at data offset "
                                    "%llu (file offset %llu) but the previous tensor \"%s\" ends "
                                    "at %llu",
                                    e->name, (unsigned long long)e->begin,
                                    (unsigned long long)(data_start + e->begin), prev,
                                    (unsigned long long)expect);
            else
                st = tensor_problem(c, RF_ERR_FORMAT,
                                    "header: overlap: tensor \"%s\" starts at data offset %llu "
                                    "(file offset %llu), inside the previous tensor \"%s\" which "
                                    "ends at %llu",
                                    e->name, (unsigned long long)e->begin,
                                    (unsigned long long)(data_start + e->begin), prev,
                                    (unsigned long long)expect);
            /* lenient mode keeps the tensor: its own bytes are still where it says */
        }
        if (st != RF_OK)
            return st;
        if (e->end >= e->begin && e->known_dtype) {
            c->problem = false;
            st = check_size(c, e, data_start);
            if (st != RF_OK)
                return st;
            if (c->problem)
                ok = false;
        }
        if (e->end >= e->begin && e->end > data_size) {
            st = tensor_problem(c, RF_ERR_FORMAT,
                                "header: tensor \"%s\": data_offsets [%llu, %llu] reach past the "
                                "end of the data: it would end at file offset %llu but the file "
                                "is %llu bytes",
                                e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                                (unsigned long long)(data_start + e->end),
                                (unsigned long long)file_size);
            if (st != RF_OK)
                return st;
            ok = false;
        }
        e->usable = ok && e->known_dtype;
        if (e->end >= e->begin && e->end > expect)
            expect = e->end;
        if (e->end >= e->begin)
            prev = e->name;
    }
    if (expect < data_size)
        return tensor_problem(c, RF_ERR_FORMAT,
                              "%llu trailing bytes after the last tensor: tensor data ends at "
                              "file offset %llu but the file is %llu bytes",
                              (unsigned long long)(data_size - expect),
                              (unsigned long long)(data_start + expect),
                              (unsigned long long)file_size);
    return RF_OK;
}

static rf_status add_metadata(rf_model *m, const cJSON *meta, const char *name)
{
    for (const cJSON *kv = meta->child; kv; kv = kv->next) {
        const rf_kv *old = rf_model_find_kv(m, kv->string);
        if (old) {
            if (old->value.type != RF_VALUE_STRING ||
                strcmp(old->value.as.str.data, kv->valuestring) != 0)
                rf_model_add_warning(m,
                                     "%s: __metadata__ \"%s\" = \"%.100s\" differs from an "
                                     "earlier file; keeping the first value",
                                     name, kv->string, kv->valuestring);
            continue;
        }
        rf_value v = {.type = RF_VALUE_STRING};
        v.as.str.data = kv->valuestring;
        v.as.str.len = strlen(kv->valuestring);
        rf_status st = rf_model_add_kv(m, kv->string, &v, NULL);
        if (st != RF_OK)
            return st;
    }
    return RF_OK;
}

rf_status rfi_st_load_file(rf_model *m, const uint8_t *data, uint64_t size, const char *name,
                           uint32_t source, const rf_open_options *opts, rf_error *err)
{
    st_ctx c = {m, name, opts && opts->lenient, false, err, NULL, 0};
    /* Rules 1-3: the length prefix. */
    if (size < 8)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: file is %llu bytes, too small for the 8-byte header length at "
                            "offset 0",
                            name, (unsigned long long)size);
    uint64_t n = rf_load_le64(data);
    if (n > RF_SAFETENSORS_MAX_HEADER)
        return rf_error_set(err, RF_ERR_LIMIT,
                            "%s: header length %llu (u64 at offset 0) exceeds the %u-byte limit "
                            "of the reference reader",
                            name, (unsigned long long)n, RF_SAFETENSORS_MAX_HEADER);
    if (n > size - 8)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: header length %llu (u64 at offset 0) runs past the end of the "
                            "file: the header would end at offset %llu but the file is %llu bytes",
                            name, (unsigned long long)n, (unsigned long long)(8 + n),
                            (unsigned long long)size);
    const char *header = (const char *)data + 8;
    /* Rule 4: UTF-8, then JSON of the right shape. */
    size_t valid = rf_utf8_valid_prefix(header, (size_t)n);
    if (valid != n)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: header is not valid UTF-8 at offset %llu (byte 0x%02x)", name,
                            (unsigned long long)(8 + valid), (unsigned char)header[valid]);
    size_t lead = 0;
    while (lead < n && (header[lead] == ' ' || header[lead] == '\t' || header[lead] == '\n' ||
                        header[lead] == '\r'))
        lead++;
    c.header = header;
    c.header_len = (size_t)n;
    cJSON *root = rfi_hf_json_parse_header(header, (size_t)n, 8, err);
    if (!root) {
        rf_error_prefix(err, "%s: header", name);
        return err ? err->status : RF_ERR_FORMAT;
    }
    rf_status st = RF_OK;
    st_entry *entries = NULL;
    if (!cJSON_IsObject(root)) {
        st = rf_error_set(err, RF_ERR_FORMAT,
                          "%s: header at offset %llu is %s, expected a JSON object", name,
                          (unsigned long long)(8 + lead), rfi_hf_json_kind(root));
        goto done;
    }
    if (lead > 0)
        rf_model_add_warning(m,
                             "%s: header starts with %zu whitespace bytes at offset 8; the "
                             "format requires '{' first",
                             name, lead);
    size_t count = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        count++;
    entries = calloc(count ? count : 1, sizeof *entries);
    if (!entries) {
        st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for %zu header entries", name,
                          count);
        goto done;
    }
    const cJSON *meta = NULL;
    size_t n_entries = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (cJSON_IsNull(it))
                continue;
            if (!cJSON_IsObject(it)) {
                st = rf_error_set(err, RF_ERR_FORMAT,
                                  "%s: header: __metadata__ is %s, expected an object of string "
                                  "values",
                                  name, rfi_hf_json_kind(it));
                goto done;
            }
            for (const cJSON *kv = it->child; kv; kv = kv->next)
                if (!cJSON_IsString(kv)) {
                    st = rf_error_set(err, RF_ERR_FORMAT,
                                      "%s: header: __metadata__ value of \"%s\" is %s, expected "
                                      "a string (metadata is string to string only)",
                                      name, kv->string, rfi_hf_json_kind(kv));
                    goto done;
                }
            meta = it;
            continue;
        }
        st = read_entry(&c, it, &entries[n_entries]);
        if (st != RF_OK)
            goto done;
        n_entries++;
    }
    st = check_layout(&c, entries, n_entries, 8 + n, size - 8 - n, size);
    if (st != RF_OK)
        goto done;
    if (meta && (st = add_metadata(m, meta, name)) != RF_OK) {
        rf_error_set(err, st, "%s: out of memory storing __metadata__", name);
        goto done;
    }
    for (size_t i = 0; i < n_entries; i++) {
        const st_entry *e = &entries[i];
        if (!e->usable)
            continue;
        const rf_tensor *old = rf_model_find_tensor(m, e->name);
        if (old) {
            const rf_file *f = rf_model_file(m, old->source);
            st = rf_error_set(err, RF_ERR_FORMAT,
                              "%s: tensor \"%s\" is also in %s (duplicate tensor across files)",
                              name, e->name, f ? rf_file_path(f) : "an earlier file");
            goto done;
        }
        rf_tensor t = {
            .name = e->name,
            .dtype = e->dtype,
            .ndim = e->ndim,
            .data = data + 8 + n + e->begin,
            .nbytes = e->end - e->begin,
            .file_offset = 8 + n + e->begin,
            .source = source,
        };
        memcpy(t.shape, e->shape, sizeof t.shape);
        st = rf_model_add_tensor(m, &t, err);
        if (st != RF_OK) {
            rf_error_prefix(err, "%s", name);
            goto done;
        }
    }
done:
    free(entries);
    cJSON_Delete(root);
    return st;
}

rf_status rfi_st_load_path(rf_model *m, const char *path, const rf_open_options *opts,
                           rf_error *err)
{
    rf_file *f = rf_file_open(path, err);
    if (!f)
        return err ? err->status : RF_ERR_IO;
    uint32_t source;
    if (rf_model_add_file(m, f, &source, err) != RF_OK) {
        rf_file_close(f);
        return RF_ERR_NOMEM;
    }
    return rfi_st_load_file(m, rf_file_data(f), rf_file_size(f), rf_file_path(f), source, opts,
                            err);
}

rf_model *rf_safetensors_open_memory(const void *data, uint64_t size, const char *name,
                                     const rf_open_options *opts, rf_error *err)
{
    if (!data && size > 0) {
        rf_error_set(err, RF_ERR_ARGUMENT, "%s: no data", name ? name : "(memory)");
        return NULL;
    }
    static const uint8_t empty[1];
    rf_model *m = rf_model_new(RF_FORMAT_SAFETENSORS, err);
    if (!m)
        return NULL;
    if (rfi_st_load_file(m, data ? data : empty, size, name ? name : "(memory)", 0, opts, err) !=
        RF_OK) {
        rf_model_free(m);
        return NULL;
    }
    return m;
}
