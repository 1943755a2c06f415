/* GGUF reader: parses and validates a GGUF v2/v3 file (docs/formats/gguf.md; the rules of
 * ggml's reader, section 6) into the model view, and scans header layouts for tools.
 * Not for: writing (gguf_write.c) or mapping names between formats (names.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_internal.h"
#include "io_internal.h"
#include "model_internal.h"
#include "rosetta/gguf.h"

/* Smallest encoding of one element of each value type, used to check an array length against
 * the bytes left before allocating for it (strings: the u64 length; arrays: type + count). */
static const uint64_t MIN_VALUE_BYTES[13] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};
/* Smallest key/value pair: u64 key length, u32 type, one value byte. */
#define MIN_KV_BYTES 13u
/* Smallest tensor info: u64 name length, u32 n_dims, u32 type, u64 offset. */
#define MIN_TENSOR_INFO_BYTES 24u

enum section { SECTION_HEADER, SECTION_KV, SECTION_TENSOR };

/* Hash set of byte strings that live in the file (keys, tensor names), for duplicate checks. */
typedef struct name_set {
    struct name_slot {
        const uint8_t *bytes; /* NULL = empty slot */
        uint64_t len;
        uint64_t offset; /* where the string was found, for the error message */
    } * slots;
    size_t cap, used;
} name_set;

typedef struct tensor_info {
    uint64_t record_offset;
    const uint8_t *name;
    uint64_t name_len;
    uint32_t n_dims;
    uint64_t ne[RF_MAX_DIMS];
    uint32_t ggml_type;
    uint64_t type_offset;
    uint64_t offset;
    uint64_t offset_offset;
    rf_dtype dtype;
    uint64_t nbytes;
    bool skip;       /* lenient mode: not added to the model */
    bool size_known; /* dtype and byte size are known (false for a skipped unknown type) */
} tensor_info;

typedef struct reader {
    const char *path;
    const uint8_t *data;
    uint64_t size;
    uint64_t pos;
    bool swap;
    bool lenient;
    const char *architecture; /* rf_open_options.architecture: overrides the file's, or NULL */
    rf_model *model;          /* NULL when only scanning the layout */
    uint32_t file_index;
    rf_error *err;

    enum section section;
    uint64_t item;            /* index of the pair or tensor info being read */
    const uint8_t *item_name; /* its key or name once read */
    uint64_t item_name_len;

    void **temps; /* allocations for the value being read, freed after each pair */
    size_t n_temps, cap_temps;
    /* the parse's own allocations, here rather than on its stack so that parse_guarded can free
     * them when a fault in a mapped file cuts the parse short */
    name_set keys, names; /* keys and tensor names seen (duplicates) */
    char *key;            /* the key being added, NUL-terminated */
    size_t key_cap;
    struct tensor_info *infos;
    uint64_t n_values;
    bool noted_bool, noted_nested;

    const gguf_observer *obs; /* diagnostics (file map): sees records and problems; may be NULL */

    uint32_t version;
    uint64_t n_tensors, n_kv;
    uint32_t alignment;
    uint64_t tensor_info_offset, data_offset;
} reader;

/* ---- messages ----------------------------------------------------------------------------- */

/* A printable, bounded rendering of a name read from the file. */
static const char *printable(const uint8_t *s, uint64_t len, char *buf, size_t cap)
{
    size_t n = 0;
    uint64_t i = 0;
    for (; i < len && n + 4 < cap && i < 96; i++) {
        unsigned char ch = s[i];
        buf[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (i < len) {
        buf[n++] = '.';
        buf[n++] = '.';
        buf[n++] = '.';
    }
    buf[n] = '\0';
    return buf;
}

/* "key/value pair 3 ('general.name')", "tensor info 0 ('token_embd.weight')" or "header". */
static const char *where(const reader *r, char *buf, size_t cap)
{
    char name[128];
    const char *kind = r->section == SECTION_KV ? "key/value pair" : "tensor info";
    if (r->section == SECTION_HEADER)
        snprintf(buf, cap, "header");
    else if (r->item_name)
        snprintf(buf, cap, "%s %llu ('%s')", kind, (unsigned long long)r->item,
                 printable(r->item_name, r->item_name_len, name, sizeof name));
    else
        snprintf(buf, cap, "%s %llu", kind, (unsigned long long)r->item);
    return buf;
}

/* Tells the observer (if any) about a problem, with the reader's text. */
static void observe(const reader *r, gguf_problem_kind kind, const char *msg)
{
    if (r->obs && r->obs->problem)
        r->obs->problem(r->obs->ctx, (gguf_section)r->section, r->item, kind, msg);
}

static rf_status vfail(reader *r, rf_status status, const char *fmt, va_list ap)
{
    char msg[900];
    vsnprintf(msg, sizeof msg, fmt, ap);
    observe(r, GGUF_FATAL, msg);
    return rf_error_set(r->err, status, "%s: %s", r->path, msg);
}

/* A hard error in every mode. */
static rf_status fail(reader *r, rf_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static rf_status fail(reader *r, rf_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rf_status st = vfail(r, status, fmt, ap);
    va_end(ap);
    return st;
}

/* A rule ggml enforces but whose violation is memory-safe to read past: an error in strict
 * mode, a model warning (same text) in lenient mode, where RF_OK is returned. */
static rf_status problem(reader *r, rf_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static rf_status problem(reader *r, rf_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rf_status st = RF_OK;
    if (!r->lenient) {
        st = vfail(r, status, fmt, ap);
    } else if (r->model) {
        char msg[900];
        vsnprintf(msg, sizeof msg, fmt, ap);
        observe(r, GGUF_PROBLEM, msg);
        rf_model_add_warning(r->model, "%s", msg);
    }
    va_end(ap);
    return st;
}

/* Something ggml accepts but that deserves a mention: a warning in every mode. */
static void note(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(reader *r, const char *fmt, ...)
{
    if (!r->model)
        return;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    observe(r, GGUF_NOTE, msg);
    rf_model_add_warning(r->model, "%s", msg);
}

/* ---- primitive reads ---------------------------------------------------------------------- */

static uint64_t remaining(const reader *r) { return r->size - r->pos; }

static rf_status need(reader *r, uint64_t n, const char *field)
{
    if (n <= remaining(r))
        return RF_OK;
    char w[200];
    return fail(r, RF_ERR_FORMAT,
                "truncated file: %s: %s needs %llu bytes at offset %llu, only %llu remain",
                where(r, w, sizeof w), field, (unsigned long long)n, (unsigned long long)r->pos,
                (unsigned long long)remaining(r));
}

static rf_status rd_u8(reader *r, uint8_t *out, const char *field)
{
    if (need(r, 1, field))
        return RF_ERR_FORMAT;
    *out = r->data[r->pos++];
    return RF_OK;
}

static rf_status rd_u16(reader *r, uint16_t *out, const char *field)
{
    if (need(r, 2, field))
        return RF_ERR_FORMAT;
    uint16_t v = rf_load_le16(r->data + r->pos);
    *out = r->swap ? __builtin_bswap16(v) : v;
    r->pos += 2;
    return RF_OK;
}

static rf_status rd_u32(reader *r, uint32_t *out, const char *field)
{
    if (need(r, 4, field))
        return RF_ERR_FORMAT;
    uint32_t v = rf_load_le32(r->data + r->pos);
    *out = r->swap ? __builtin_bswap32(v) : v;
    r->pos += 4;
    return RF_OK;
}

static rf_status rd_u64(reader *r, uint64_t *out, const char *field)
{
    if (need(r, 8, field))
        return RF_ERR_FORMAT;
    uint64_t v = rf_load_le64(r->data + r->pos);
    *out = r->swap ? __builtin_bswap64(v) : v;
    r->pos += 8;
    return RF_OK;
}

static uint64_t load_u64(const reader *r, const uint8_t *p)
{
    uint64_t v = rf_load_le64(p);
    return r->swap ? __builtin_bswap64(v) : v;
}

/* Encoded size of a fixed-width value type; 0 for strings and arrays. */
static uint64_t value_width(uint32_t type)
{
    return type == RF_VALUE_STRING || type == RF_VALUE_ARRAY ? 0 : MIN_VALUE_BYTES[type];
}

/* GGUF string: u64 length + bytes (no NUL). The bytes stay in the file; *out points at them. */
static rf_status rd_string(reader *r, const uint8_t **out, uint64_t *len, const char *field)
{
    uint64_t at = r->pos;
    uint64_t n;
    if (remaining(r) < 8) { /* the message is built only when it is needed */
        char what[96];
        snprintf(what, sizeof what, "length of the %s", field);
        return need(r, 8, what);
    }
    rd_u64(r, &n, field);
    char w[200];
    if (n > RF_GGUF_MAX_STRING_LENGTH)
        return fail(r, RF_ERR_FORMAT,
                    "%s: %s length %llu at offset %llu exceeds ggml's limit of %llu bytes",
                    where(r, w, sizeof w), field, (unsigned long long)n, (unsigned long long)at,
                    (unsigned long long)RF_GGUF_MAX_STRING_LENGTH);
    if (n > remaining(r))
        return fail(r, RF_ERR_FORMAT,
                    "%s: %s length %llu at offset %llu exceeds the %llu bytes left in the file",
                    where(r, w, sizeof w), field, (unsigned long long)n, (unsigned long long)at,
                    (unsigned long long)remaining(r));
    *out = r->data + r->pos;
    *len = n;
    r->pos += n;
    return RF_OK;
}

/* ---- name sets ---------------------------------------------------------------------------- */

static uint64_t hash_bytes(const uint8_t *s, uint64_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (uint64_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

/* Inserts s; returns the slot of an existing equal string, NULL after inserting, and sets
 * *oom on allocation failure. */
static const struct name_slot *set_insert(name_set *set, const uint8_t *s, uint64_t len,
                                          uint64_t offset, bool *oom)
{
    if ((set->used + 1) * 2 > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        struct name_slot *slots = calloc(cap, sizeof *slots);
        if (!slots) {
            *oom = true;
            return NULL;
        }
        for (size_t i = 0; i < set->cap; i++)
            if (set->slots[i].bytes) {
                size_t j = hash_bytes(set->slots[i].bytes, set->slots[i].len) & (cap - 1);
                while (slots[j].bytes)
                    j = (j + 1) & (cap - 1);
                slots[j] = set->slots[i];
            }
        free(set->slots);
        set->slots = slots;
        set->cap = cap;
    }
    size_t j = hash_bytes(s, len) & (set->cap - 1);
    while (set->slots[j].bytes) {
        if (set->slots[j].len == len && memcmp(set->slots[j].bytes, s, len) == 0)
            return &set->slots[j];
        j = (j + 1) & (set->cap - 1);
    }
    /* a zero-length string still needs a non-NULL marker */
    set->slots[j].bytes = len ? s : (const uint8_t *)"";
    set->slots[j].len = len;
    set->slots[j].offset = offset;
    set->used++;
    return NULL;
}

/* ---- metadata values ---------------------------------------------------------------------- */

static void *temp_alloc(reader *r, size_t size)
{
    if (r->n_temps == r->cap_temps) {
        size_t cap = r->cap_temps ? r->cap_temps * 2 : 16;
        void **t = realloc(r->temps, cap * sizeof *t);
        if (!t)
            return NULL;
        r->temps = t;
        r->cap_temps = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (p)
        r->temps[r->n_temps++] = p;
    return p;
}

static void temps_free(reader *r)
{
    for (size_t i = 0; i < r->n_temps; i++)
        free(r->temps[i]);
    r->n_temps = 0;
}

static const char *value_type_label(uint32_t type)
{
    return type <= RF_VALUE_F64 ? rf_value_type_name((rf_value_type)type) : "unknown";
}

/* Reads one value of a known scalar type (not ARRAY). out may be NULL (scan mode). */
static rf_status read_scalar(reader *r, rf_value_type type, rf_value *out)
{
    rf_value v = {.type = type};
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f32;
    rf_status st = RF_OK;
    switch (type) {
    case RF_VALUE_U8:
        if (!(st = rd_u8(r, &u8, "u8 value")))
            v.as.u = u8;
        break;
    case RF_VALUE_I8:
        if (!(st = rd_u8(r, &u8, "i8 value")))
            v.as.i = (int8_t)u8;
        break;
    case RF_VALUE_U16:
        if (!(st = rd_u16(r, &u16, "u16 value")))
            v.as.u = u16;
        break;
    case RF_VALUE_I16:
        if (!(st = rd_u16(r, &u16, "i16 value")))
            v.as.i = (int16_t)u16;
        break;
    case RF_VALUE_U32:
        if (!(st = rd_u32(r, &u32, "u32 value")))
            v.as.u = u32;
        break;
    case RF_VALUE_I32:
        if (!(st = rd_u32(r, &u32, "i32 value")))
            v.as.i = (int32_t)u32;
        break;
    case RF_VALUE_F32:
        if (!(st = rd_u32(r, &u32, "f32 value"))) {
            memcpy(&f32, &u32, sizeof f32);
            v.as.f = f32;
        }
        break;
    case RF_VALUE_BOOL:
        if (!(st = rd_u8(r, &u8, "bool value"))) {
            v.as.b = u8 != 0; /* ggml maps any non-zero byte to true */
            if (u8 > 1 && !r->noted_bool) {
                char w[200];
                r->noted_bool = true;
                note(r, "%s: bool value %u at offset %llu (expected 0 or 1); read as true",
                     where(r, w, sizeof w), u8, (unsigned long long)(r->pos - 1));
            }
        }
        break;
    case RF_VALUE_STRING: {
        const uint8_t *s;
        if (!(st = rd_string(r, &s, &u64, "string value"))) {
            v.as.str.data = (const char *)s; /* copied (NUL-terminated) by rf_model_add_kv */
            v.as.str.len = u64;
        }
        break;
    }
    case RF_VALUE_U64:
        if (!(st = rd_u64(r, &u64, "u64 value")))
            v.as.u = u64;
        break;
    case RF_VALUE_I64:
        if (!(st = rd_u64(r, &u64, "i64 value")))
            v.as.i = (int64_t)u64;
        break;
    case RF_VALUE_F64:
        if (!(st = rd_u64(r, &u64, "f64 value")))
            memcpy(&v.as.f, &u64, sizeof v.as.f);
        break;
    case RF_VALUE_ARRAY:
    case RF_VALUE_JSON:
        return fail(r, RF_ERR_FORMAT, "internal: value type %d is not a scalar", (int)type);
    }
    if (st == RF_OK && out)
        *out = v;
    return st;
}

/* Reads a value whose type code was read at type_offset. out may be NULL (scan mode). */
static rf_status read_value(reader *r, uint32_t type, uint64_t type_offset, rf_value *out,
                            int depth)
{
    char w[200];
    if (type > RF_VALUE_F64)
        return fail(r, RF_ERR_FORMAT, "%s: unknown value type %u at offset %llu (expected 0..12)",
                    where(r, w, sizeof w), type, (unsigned long long)type_offset);
    if (type != RF_VALUE_ARRAY)
        return read_scalar(r, (rf_value_type)type, out);

    uint64_t array_offset = r->pos;
    uint32_t elem_type;
    uint64_t count;
    if (rd_u32(r, &elem_type, "array element type"))
        return RF_ERR_FORMAT;
    if (elem_type > RF_VALUE_F64)
        return fail(r, RF_ERR_FORMAT,
                    "%s: unknown array element type %u at offset %llu (expected 0..12)",
                    where(r, w, sizeof w), elem_type, (unsigned long long)array_offset);
    if (rd_u64(r, &count, "array length"))
        return RF_ERR_FORMAT;
    if (elem_type == RF_VALUE_ARRAY) {
        if (depth + 1 >= RF_GGUF_MAX_NESTING)
            return fail(r, RF_ERR_LIMIT, "%s: arrays nested more than %d deep at offset %llu",
                        where(r, w, sizeof w), RF_GGUF_MAX_NESTING,
                        (unsigned long long)array_offset);
        if (!r->noted_nested) {
            r->noted_nested = true;
            note(r,
                 "%s: array of arrays at offset %llu; ggml's reader (llama.cpp) rejects such "
                 "files",
                 where(r, w, sizeof w), (unsigned long long)array_offset);
        }
    }
    if (count > RF_GGUF_MAX_ARRAY_ELEMENTS)
        return fail(r, RF_ERR_FORMAT,
                    "%s: array length %llu at offset %llu exceeds ggml's limit of %llu elements",
                    where(r, w, sizeof w), (unsigned long long)count,
                    (unsigned long long)(array_offset + 4),
                    (unsigned long long)RF_GGUF_MAX_ARRAY_ELEMENTS);
    if (count > remaining(r) / MIN_VALUE_BYTES[elem_type])
        return fail(r, RF_ERR_FORMAT,
                    "%s: array of %llu %s values at offset %llu needs at least %llu bytes each, "
                    "only %llu bytes remain",
                    where(r, w, sizeof w), (unsigned long long)count, value_type_label(elem_type),
                    (unsigned long long)array_offset,
                    (unsigned long long)MIN_VALUE_BYTES[elem_type],
                    (unsigned long long)remaining(r));
    r->n_values += count;
    if (r->n_values > RF_GGUF_MAX_VALUES)
        return fail(r, RF_ERR_LIMIT,
                    "%s: more than %llu metadata values in the file (array at offset %llu)",
                    where(r, w, sizeof w), (unsigned long long)RF_GGUF_MAX_VALUES,
                    (unsigned long long)array_offset);
    rf_value *items = NULL;
    if (out && count) {
        items = temp_alloc(r, (size_t)count * sizeof *items);
        if (!items)
            return fail(r, RF_ERR_NOMEM, "out of memory reading an array of %llu values",
                        (unsigned long long)count);
    }
    if (items && elem_type == RF_VALUE_STRING) {
        /* tokenizer vocabularies and merges: hundreds of thousands of strings */
        for (uint64_t i = 0; i < count; i++) {
            uint64_t n;
            if (remaining(r) < 8 || (n = load_u64(r, r->data + r->pos)) > remaining(r) - 8 ||
                n > RF_GGUF_MAX_STRING_LENGTH) {
                const uint8_t *s; /* let the general path produce the message */
                return rd_string(r, &s, &n, "string value");
            }
            items[i].type = RF_VALUE_STRING;
            items[i].as.str.data = (const char *)r->data + r->pos + 8;
            items[i].as.str.len = n;
            r->pos += 8 + n;
        }
    } else if (items && MIN_VALUE_BYTES[elem_type] == value_width(elem_type)) {
        /* fixed-width numbers: the length check above already covers all of them */
        for (uint64_t i = 0; i < count; i++)
            read_scalar(r, (rf_value_type)elem_type, &items[i]);
    } else {
        for (uint64_t i = 0; i < count; i++) {
            rf_status st =
                elem_type == RF_VALUE_ARRAY
                    ? read_value(r, elem_type, r->pos, items ? &items[i] : NULL, depth + 1)
                    : read_scalar(r, (rf_value_type)elem_type, items ? &items[i] : NULL);
            if (st != RF_OK)
                return st;
        }
    }
    if (out) {
        out->type = RF_VALUE_ARRAY;
        out->as.arr.elem_type = (rf_value_type)elem_type;
        out->as.arr.count = count;
        out->as.arr.items = items;
    }
    return RF_OK;
}

/* ---- header ------------------------------------------------------------------------------- */

static rf_status read_header(reader *r)
{
    r->section = SECTION_HEADER;
    if (need(r, 4, "magic"))
        return RF_ERR_FORMAT;
    const uint8_t *m = r->data;
    if (memcmp(m, "GGUF", 4) != 0)
        return fail(
            r, RF_ERR_FORMAT,
            "bad magic at offset 0: expected 'GGUF' (47 47 55 46), found %02x %02x %02x %02x", m[0],
            m[1], m[2], m[3]);
    r->pos = 4;
    uint32_t raw;
    if (rd_u32(r, &raw, "version"))
        return RF_ERR_FORMAT;
    /* No byte-order flag exists: a version whose low 16 bits are zero was written with the other
     * byte order (docs/formats/gguf.md). */
    if (raw != 0 && (raw & 0xFFFFu) == 0) {
        r->swap = true;
        r->version = __builtin_bswap32(raw);
    } else {
        r->version = raw;
    }
    if (r->version == 0)
        return fail(r, RF_ERR_FORMAT, "invalid GGUF version 0 at offset 4 (expected 2 or 3)");
    if (r->version == 1)
        return fail(r, RF_ERR_UNSUPPORTED,
                    "GGUF version 1 at offset 4 is no longer supported (32-bit counts; ggml "
                    "rejects it): expected 2 or 3");
    if (r->version > RF_GGUF_VERSION)
        return fail(r, RF_ERR_UNSUPPORTED,
                    "GGUF version %u at offset 4 is newer than this reader (expected 2 or 3)",
                    r->version);
    if (rd_u64(r, &r->n_tensors, "tensor count") || rd_u64(r, &r->n_kv, "key/value count"))
        return RF_ERR_FORMAT;
    /* ggml reads both counts as int64 and rejects negative values. */
    if (r->n_tensors > INT64_MAX)
        return fail(r, RF_ERR_FORMAT,
                    "tensor count %llu at offset 8 is negative as int64 (ggml rejects it)",
                    (unsigned long long)r->n_tensors);
    if (r->n_kv > INT64_MAX)
        return fail(r, RF_ERR_FORMAT,
                    "key/value count %llu at offset 16 is negative as int64 (ggml rejects it)",
                    (unsigned long long)r->n_kv);
    /* Counts no file of this size could hold are reported as such; a count that merely exceeds
     * what is left is reported where the data runs out (truncation). */
    if (r->n_kv > r->size / MIN_KV_BYTES)
        return fail(r, RF_ERR_FORMAT,
                    "key/value count %llu at offset 16 is impossible: each pair takes at least "
                    "%u bytes and the file has %llu bytes",
                    (unsigned long long)r->n_kv, MIN_KV_BYTES, (unsigned long long)r->size);
    if (r->n_tensors > r->size / MIN_TENSOR_INFO_BYTES)
        return fail(r, RF_ERR_FORMAT,
                    "tensor count %llu at offset 8 is impossible: each tensor info takes at least "
                    "%u bytes and the file has %llu bytes",
                    (unsigned long long)r->n_tensors, MIN_TENSOR_INFO_BYTES,
                    (unsigned long long)r->size);
    return RF_OK;
}

/* ---- key/value pairs ---------------------------------------------------------------------- */

static rf_status read_kvs(reader *r)
{
    rf_status st = RF_OK;
    bool have_alignment = false;
    rf_value alignment_value = {0};
    uint32_t alignment_type = 0;
    uint64_t alignment_offset = 0;
    char w[200];

    r->section = SECTION_KV;
    for (uint64_t i = 0; i < r->n_kv && st == RF_OK; i++) {
        r->item = i;
        r->item_name = NULL;
        r->noted_bool = r->noted_nested = false;
        uint64_t key_offset = r->pos;
        const uint8_t *kbytes;
        uint64_t klen;
        if ((st = rd_string(r, &kbytes, &klen, "key")))
            break;
        r->item_name = kbytes;
        r->item_name_len = klen;
        if (klen == 0 && (st = problem(r, RF_ERR_FORMAT,
                                       "key/value pair %llu at offset %llu has "
                                       "an empty key (ggml rejects it)",
                                       (unsigned long long)i, (unsigned long long)key_offset)))
            break;
        if (memchr(kbytes, 0, klen) &&
            (st = problem(r, RF_ERR_FORMAT, "%s: key at offset %llu contains a NUL byte",
                          where(r, w, sizeof w), (unsigned long long)key_offset)))
            break;
        bool oom = false;
        const struct name_slot *dup = set_insert(&r->keys, kbytes, klen, key_offset, &oom);
        if (oom) {
            st = fail(r, RF_ERR_NOMEM, "out of memory checking keys");
            break;
        }
        if (dup && (st = problem(r, RF_ERR_FORMAT,
                                 "%s: duplicate key at offset %llu (first at offset %llu)",
                                 where(r, w, sizeof w), (unsigned long long)key_offset,
                                 (unsigned long long)dup->offset)))
            break;
        uint64_t type_offset = r->pos;
        uint32_t type;
        if ((st = rd_u32(r, &type, "value type")))
            break;
        rf_value value = {0};
        uint64_t value_offset = r->pos;
        if ((st = read_value(r, type, type_offset, r->model ? &value : NULL, 0)))
            break;
        if (r->obs && r->obs->kv) {
            gguf_kv_event e = {i,
                               key_offset,
                               kbytes,
                               klen,
                               type_offset,
                               type,
                               value_offset,
                               r->pos,
                               r->model ? &value : NULL};
            r->obs->kv(r->obs->ctx, &e);
        }
        if (klen == 17 && memcmp(kbytes, "general.alignment", 17) == 0 && !have_alignment) {
            have_alignment = true;
            alignment_type = type;
            alignment_value = value;
            alignment_offset = type_offset + 4;
            if (!r->model && type == RF_VALUE_U32) /* scan mode keeps no values: re-read it */
                alignment_value.as.u =
                    r->swap ? __builtin_bswap32(rf_load_le32(r->data + type_offset + 4))
                            : rf_load_le32(r->data + type_offset + 4);
        }
        if (r->model) {
            if (klen + 1 > r->key_cap) {
                char *k = realloc(r->key, (size_t)klen + 1);
                if (!k) {
                    st = fail(r, RF_ERR_NOMEM, "out of memory reading a key of %llu bytes",
                              (unsigned long long)klen);
                    break;
                }
                r->key = k;
                r->key_cap = (size_t)klen + 1;
            }
            memcpy(r->key, kbytes, (size_t)klen);
            r->key[klen] = '\0';
            if ((st = rf_model_add_kv(r->model, r->key, &value, r->err)))
                break;
        }
        temps_free(r);
    }
    temps_free(r);
    free(r->keys.slots);
    free(r->key);
    r->keys = (name_set){0};
    r->key = NULL;
    r->key_cap = 0;
    if (st != RF_OK)
        return st;

    /* general.alignment: ggml requires type u32, non-zero, a power of two (docs/formats/gguf.md).
     */
    r->alignment = RF_GGUF_DEFAULT_ALIGNMENT;
    r->section = SECTION_HEADER;
    if (have_alignment) {
        if (alignment_type != RF_VALUE_U32) {
            if ((st = problem(
                     r, RF_ERR_FORMAT, "general.alignment at offset %llu has type %s, expected u32",
                     (unsigned long long)alignment_offset, value_type_label(alignment_type))))
                return st;
        } else {
            uint64_t a = alignment_value.as.u;
            if (a == 0 || (a & (a - 1)) != 0) {
                if ((st = problem(r, RF_ERR_FORMAT,
                                  "bad alignment: general.alignment = %llu at offset %llu is not "
                                  "a non-zero power of two",
                                  (unsigned long long)a, (unsigned long long)alignment_offset)))
                    return st;
            } else {
                r->alignment = (uint32_t)a;
            }
        }
    }
    return RF_OK;
}

/* ---- tensor infos ------------------------------------------------------------------------- */

/* Type codes ggml removed; files that use them are rejected (docs/formats/gguf.md). */
static const char *removed_type_name(uint32_t code)
{
    switch (code) {
    case 4: return "Q4_2";
    case 5: return "Q4_3";
    case 31: return "Q4_0_4_4";
    case 32: return "Q4_0_4_8";
    case 33: return "Q4_0_8_8";
    case 36: return "IQ4_NL_4_4";
    case 37: return "IQ4_NL_4_8";
    case 38: return "IQ4_NL_8_8";
    default: return NULL;
    }
}

static rf_status read_tensor_info(reader *r, tensor_info *t, name_set *names)
{
    char w[200];
    rf_status st;
    t->record_offset = r->pos;
    if ((st = rd_string(r, &t->name, &t->name_len, "tensor name")))
        return st;
    r->item_name = t->name;
    r->item_name_len = t->name_len;
    if (!r->model) { /* scan mode: walk the record only */
        if ((st = rd_u32(r, &t->n_dims, "dimension count")))
            return st;
        if (t->n_dims > RF_MAX_DIMS)
            return fail(r, RF_ERR_FORMAT, "%s: %u dimensions at offset %llu (at most %d)",
                        where(r, w, sizeof w), t->n_dims, (unsigned long long)(r->pos - 4),
                        RF_MAX_DIMS);
        if ((st = need(r, 8ull * t->n_dims + 12, "shape, type and offset")))
            return st;
        r->pos += 8ull * t->n_dims + 12;
        return RF_OK;
    }
    if (t->name_len > RF_GGUF_MAX_NAME &&
        (st = problem(r, RF_ERR_FORMAT,
                      "%s: name of %llu bytes at offset %llu is too long: ggml allows at most %d "
                      "bytes (GGML_MAX_NAME 64 with the NUL)",
                      where(r, w, sizeof w), (unsigned long long)t->name_len,
                      (unsigned long long)t->record_offset, RF_GGUF_MAX_NAME)))
        return st;
    if (memchr(t->name, 0, t->name_len)) {
        if ((st = problem(r, RF_ERR_FORMAT, "%s: name at offset %llu contains a NUL byte",
                          where(r, w, sizeof w), (unsigned long long)t->record_offset)))
            return st;
        t->skip = true;
    }
    bool oom = false;
    const struct name_slot *dup = set_insert(names, t->name, t->name_len, t->record_offset, &oom);
    if (oom)
        return fail(r, RF_ERR_NOMEM, "out of memory checking tensor names");
    if (dup) {
        if ((st = problem(r, RF_ERR_FORMAT,
                          "%s: duplicate tensor name at offset %llu (first at offset %llu)",
                          where(r, w, sizeof w), (unsigned long long)t->record_offset,
                          (unsigned long long)dup->offset)))
            return st;
        t->skip = true;
    }

    uint64_t dims_offset = r->pos;
    if ((st = rd_u32(r, &t->n_dims, "dimension count")))
        return st;
    if (t->n_dims > RF_GGUF_MAX_DIMS) {
        if (t->n_dims > RF_MAX_DIMS || !r->lenient)
            return fail(r, RF_ERR_FORMAT,
                        "%s: %u dimensions at offset %llu, ggml allows at most %d",
                        where(r, w, sizeof w), t->n_dims, (unsigned long long)dims_offset,
                        RF_GGUF_MAX_DIMS);
        problem(r, RF_ERR_FORMAT, "%s: %u dimensions at offset %llu, ggml allows at most %d",
                where(r, w, sizeof w), t->n_dims, (unsigned long long)dims_offset,
                RF_GGUF_MAX_DIMS);
    }
    /* ne[] is read as int64: every entry >= 0, and the element count must fit in int64. */
    uint64_t elements = 1;
    bool overflow = false;
    for (uint32_t j = 0; j < t->n_dims; j++) {
        uint64_t at = r->pos;
        if ((st = rd_u64(r, &t->ne[j], "dimension")))
            return st;
        if (t->ne[j] > INT64_MAX)
            return fail(r, RF_ERR_FORMAT, "%s: dimension %u at offset %llu is %lld, expected >= 0",
                        where(r, w, sizeof w), j, (unsigned long long)at, (long long)t->ne[j]);
        if (!overflow && __builtin_mul_overflow(elements, t->ne[j], &elements))
            overflow = true;
    }
    /* llama.cpp's loader then calls ggml_new_tensor, which aborts unless ne[0] times every
     * later dimension above 1 (zeros skipped) stays below INT64_MAX: without this, a tensor of
     * zero elements with huge other dimensions passes every check above and crashes llama.cpp. */
    bool ggml_abort = false;
    if (!overflow && elements <= INT64_MAX && t->n_dims > 0) {
        uint64_t running = t->ne[0];
        for (uint32_t j = 1; j < t->n_dims && !ggml_abort; j++) {
            if (t->ne[j] <= 1)
                continue;
            if ((uint64_t)INT64_MAX / t->ne[j] <= running)
                ggml_abort = true;
            else
                running *= t->ne[j];
        }
    }
    if (overflow || elements > INT64_MAX || ggml_abort) {
        char dims[200];
        size_t n = 0;
        for (uint32_t j = 0; j < t->n_dims && n < sizeof dims - 24; j++)
            n += (size_t)snprintf(dims + n, sizeof dims - n, "%s%llu", j ? ", " : "",
                                  (unsigned long long)t->ne[j]);
        dims[n] = '\0';
        if (ggml_abort)
            return fail(r, RF_ERR_FORMAT,
                        "%s: shape (%s) at offset %llu: ne[0] times the dimensions above 1 "
                        "reaches INT64_MAX (ggml_new_tensor aborts on it)",
                        where(r, w, sizeof w), dims, (unsigned long long)dims_offset);
        return fail(r, RF_ERR_FORMAT,
                    "%s: shape (%s) at offset %llu: element count overflows int64",
                    where(r, w, sizeof w), dims, (unsigned long long)dims_offset);
    }

    t->type_offset = r->pos;
    if ((st = rd_u32(r, &t->ggml_type, "type")))
        return st;
    t->size_known = rf_dtype_from_ggml(t->ggml_type, &t->dtype);
    if (!t->size_known) {
        const char *removed = removed_type_name(t->ggml_type);
        if (removed)
            st = problem(r, RF_ERR_UNSUPPORTED,
                         "%s: type %u (%s) at offset %llu was removed from ggml; files using it "
                         "are rejected",
                         where(r, w, sizeof w), t->ggml_type, removed,
                         (unsigned long long)t->type_offset);
        else
            st = problem(r, RF_ERR_FORMAT,
                         "%s: unknown tensor type %u at offset %llu (expected a ggml type code "
                         "0..42)",
                         where(r, w, sizeof w), t->ggml_type, (unsigned long long)t->type_offset);
        if (st)
            return st;
        t->skip = true;
    } else {
        const rf_dtype_info *info = rf_dtype_get(t->dtype);
        uint64_t row = t->n_dims ? t->ne[0] : 1;
        if (row % info->block_elems != 0) {
            if ((st = problem(r, RF_ERR_FORMAT,
                              "%s: type %s has %llu elements per row (ne[0]) at offset %llu, "
                              "not a multiple of the block size %u",
                              where(r, w, sizeof w), info->name, (unsigned long long)row,
                              (unsigned long long)(dims_offset + 4), info->block_elems)))
                return st;
            t->skip = true;
            t->size_known = false;
        } else if (rf_dtype_flat_bytes(t->dtype, elements, &t->nbytes, NULL) != RF_OK) {
            return fail(r, RF_ERR_FORMAT, "%s: byte size of %llu %s elements overflows",
                        where(r, w, sizeof w), (unsigned long long)elements, info->name);
        }
    }
    t->offset_offset = r->pos;
    return rd_u64(r, &t->offset, "data offset");
}

/* Byte-swaps a big-endian tensor of a plain type into memory the model owns. */
static rf_status swap_tensor_data(reader *r, const tensor_info *t, const uint8_t **data)
{
    const rf_dtype_info *info = rf_dtype_get(t->dtype);
    char w[200];
    if (info->kind == RF_KIND_QUANT) {
        rf_status st = problem(r, RF_ERR_UNSUPPORTED,
                               "%s: quantized type %s in a big-endian file: its blocks' byte "
                               "order is not defined (only plain types are byte-swapped)",
                               where(r, w, sizeof w), info->name);
        return st;
    }
    unsigned width = info->block_bytes;
    if (width == 1 || t->nbytes == 0)
        return RF_OK;
    if (t->nbytes > SIZE_MAX)
        return fail(r, RF_ERR_NOMEM, "%s: %llu bytes do not fit in memory", where(r, w, sizeof w),
                    (unsigned long long)t->nbytes);
    uint8_t *copy = rf_model_alloc(r->model, (size_t)t->nbytes);
    if (!copy)
        return fail(r, RF_ERR_NOMEM, "%s: out of memory byte-swapping %llu bytes",
                    where(r, w, sizeof w), (unsigned long long)t->nbytes);
    const uint8_t *src = *data;
    for (uint64_t i = 0; i < t->nbytes; i += width)
        for (unsigned b = 0; b < width; b++)
            copy[i + b] = src[i + width - 1 - b];
    *data = copy;
    return RF_OK;
}

static uint64_t pad_to(uint64_t x, uint64_t alignment)
{
    return x + (alignment - x % alignment) % alignment;
}

/* Checks the offsets against ggml's strict rule and adds the tensors to the model. */
static rf_status place_tensors(reader *r, tensor_info *infos)
{
    char w[200];
    rf_status st;
    r->section = SECTION_TENSOR;
    if (r->n_tensors > 0 && r->data_offset > r->size) {
        r->section = SECTION_HEADER;
        if ((st = problem(r, RF_ERR_FORMAT,
                          "truncated file: the data section would start at offset %llu, past the "
                          "end of the file (%llu bytes)",
                          (unsigned long long)r->data_offset, (unsigned long long)r->size)))
            return st;
        r->section = SECTION_TENSOR;
    }
    uint64_t expected = 0; /* running sum of padded sizes: where the next tensor must start */
    bool sequence_known = true;
    bool all_inside = true;
    char *name = NULL;
    size_t name_cap = 0;
    st = RF_OK;
    for (uint64_t i = 0; i < r->n_tensors && st == RF_OK; i++) {
        tensor_info *t = &infos[i];
        r->item = i;
        r->item_name = t->name;
        r->item_name_len = t->name_len;
        if (t->offset % r->alignment != 0) {
            if ((st = problem(r, RF_ERR_FORMAT,
                              "%s: data offset %llu (stored at offset %llu) is misaligned: not a "
                              "multiple of the alignment %u",
                              where(r, w, sizeof w), (unsigned long long)t->offset,
                              (unsigned long long)t->offset_offset, r->alignment)))
                break;
        } else if (sequence_known && t->offset != expected) {
            if ((st = problem(r, RF_ERR_FORMAT,
                              "%s: data offset %llu (stored at offset %llu), expected %llu: data "
                              "must follow the tensor infos in order with no gaps or overlaps "
                              "(llama.cpp rejects this file)",
                              where(r, w, sizeof w), (unsigned long long)t->offset,
                              (unsigned long long)t->offset_offset, (unsigned long long)expected)))
                break;
        }
        const uint8_t *data = NULL;
        if (t->size_known) {
            uint64_t start, end, padded;
            if (__builtin_add_overflow(r->data_offset, t->offset, &start) ||
                __builtin_add_overflow(start, t->nbytes, &end) || end > r->size) {
                all_inside = false;
                if ((st = problem(r, RF_ERR_FORMAT,
                                  "%s: data offset out of range: %llu bytes at data offset %llu "
                                  "(stored at offset %llu) end past the end of the file (%llu "
                                  "bytes, data section at %llu)",
                                  where(r, w, sizeof w), (unsigned long long)t->nbytes,
                                  (unsigned long long)t->offset,
                                  (unsigned long long)t->offset_offset, (unsigned long long)r->size,
                                  (unsigned long long)r->data_offset)))
                    break;
            } else {
                data = r->data + start;
            }
            if (t->nbytes > UINT64_MAX - r->alignment ||
                __builtin_add_overflow(pad_to(t->nbytes, r->alignment), expected, &padded)) {
                st = fail(r, RF_ERR_OVERFLOW, "%s: data section size overflows",
                          where(r, w, sizeof w));
                break;
            }
            expected = padded;
        } else {
            sequence_known = false; /* lenient: the size of a skipped tensor is unknown */
        }
        if (t->skip)
            continue;
        if (data && r->swap && (st = swap_tensor_data(r, t, &data)))
            break;
        if (t->name_len + 1 > name_cap) {
            char *n = realloc(name, (size_t)t->name_len + 1);
            if (!n) {
                st = fail(r, RF_ERR_NOMEM, "out of memory");
                break;
            }
            name = n;
            name_cap = (size_t)t->name_len + 1;
        }
        memcpy(name, t->name, (size_t)t->name_len);
        name[t->name_len] = '\0';
        rf_tensor tensor = {
            .name = name,
            .dtype = t->dtype,
            .ndim = (int)t->n_dims,
            .data = data, /* NULL only in lenient mode, for data outside the file */
            .nbytes = t->nbytes,
            .file_offset = r->data_offset + t->offset,
            .source = r->file_index,
        };
        for (uint32_t j = 0; j < t->n_dims; j++) /* ne[] is innermost first: reverse it */
            tensor.shape[j] = t->ne[t->n_dims - 1 - j];
        if ((st = rf_model_add_tensor(r->model, &tensor, r->err)) != RF_OK)
            rf_error_prefix(r->err, "%s", r->path);
    }
    free(name);
    if (st != RF_OK)
        return st;
    /* ggml's full-load path (and llama-gguf-hash) reads the padding after the last tensor too. */
    r->section = SECTION_HEADER;
    uint64_t padded_end;
    if (r->n_tensors > 0 && sequence_known && all_inside &&
        !__builtin_add_overflow(r->data_offset, expected, &padded_end) && padded_end > r->size)
        note(r,
             "the file ends at %llu, %llu bytes before the padded end of the data section "
             "(%llu): ggml's full-load path (llama-gguf-hash) would reject it",
             (unsigned long long)r->size, (unsigned long long)(padded_end - r->size),
             (unsigned long long)padded_end);
    return RF_OK;
}

/* ---- typed configuration and tokenizer ---------------------------------------------------- */

/* The key "<arch>.<suffix>", else "<fallback>.<suffix>" (the file's own architecture when the
 * caller named another one; NULL for none). */
static const rf_kv *arch_kv(const rf_model *m, const char *arch, const char *fallback,
                            const char *suffix)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    const rf_kv *kv = rf_model_find_kv(m, key);
    if (kv || !fallback)
        return kv;
    snprintf(key, sizeof key, "%s.%s", fallback, suffix);
    return rf_model_find_kv(m, key);
}

/* An integer value, or an integer array whose entries are all equal (per-layer keys). */
static bool uniform_u64(const rf_value *v, uint64_t *out)
{
    if (v->type != RF_VALUE_ARRAY)
        return rf_value_as_u64(v, out);
    if (v->as.arr.count == 0 || !rf_value_as_u64(&v->as.arr.items[0], out))
        return false;
    for (uint64_t i = 1; i < v->as.arr.count; i++) {
        uint64_t x;
        if (!rf_value_as_u64(&v->as.arr.items[i], &x) || x != *out)
            return false;
    }
    return true;
}

static void config_u64(reader *r, const rf_kv *kv, uint64_t *field)
{
    if (!kv)
        return;
    if (!uniform_u64(&kv->value, field))
        note(r, "key '%s' has type %s, expected a non-negative integer; not used for the config",
             kv->key, rf_value_type_name(kv->value.type));
}

static void config_f64(reader *r, const rf_kv *kv, double *field)
{
    if (!kv)
        return;
    if (kv->value.type != RF_VALUE_F32 && kv->value.type != RF_VALUE_F64)
        note(r, "key '%s' has type %s, expected f32; not used for the config", kv->key,
             rf_value_type_name(kv->value.type));
    else
        *field = kv->value.as.f;
}

static void config_id(reader *r, const char *key, int64_t *field)
{
    const rf_kv *kv = rf_model_find_kv(r->model, key);
    if (kv && !rf_value_as_i64(&kv->value, field))
        note(r, "key '%s' has type %s, expected u32; not used for the config", key,
             rf_value_type_name(kv->value.type));
}

static const char *config_string(reader *r, const char *key)
{
    const rf_kv *kv = rf_model_find_kv(r->model, key);
    if (!kv)
        return NULL;
    if (kv->value.type != RF_VALUE_STRING) {
        note(r, "key '%s' has type %s, expected string; not used", key,
             rf_value_type_name(kv->value.type));
        return NULL;
    }
    return kv->value.as.str.data;
}

/* Lower-case letters, digits, '_' and '-', as every name of llama.cpp's architecture table. */
static bool architecture_name_ok(const char *name)
{
    if (!*name)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return false;
    return true;
}

const char *rf_gguf_file_type_name(uint64_t file_type)
{
    /* llama.h's llama_ftype values and the names llama_ftype_name gives them */
    static const struct {
        unsigned value;
        const char *name;
    } names[] = {
        {0, "all F32"},
        {1, "F16"},
        {2, "Q4_0"},
        {3, "Q4_1"},
        {7, "Q8_0"},
        {8, "Q5_0"},
        {9, "Q5_1"},
        {10, "Q2_K - Medium"},
        {11, "Q3_K - Small"},
        {12, "Q3_K - Medium"},
        {13, "Q3_K - Large"},
        {14, "Q4_K - Small"},
        {15, "Q4_K - Medium"},
        {16, "Q5_K - Small"},
        {17, "Q5_K - Medium"},
        {18, "Q6_K"},
        {19, "IQ2_XXS - 2.0625 bpw"},
        {20, "IQ2_XS - 2.3125 bpw"},
        {21, "Q2_K - Small"},
        {22, "IQ3_XS - 3.3 bpw"},
        {23, "IQ3_XXS - 3.0625 bpw"},
        {24, "IQ1_S - 1.5625 bpw"},
        {25, "IQ4_NL - 4.5 bpw"},
        {26, "IQ3_S - 3.4375 bpw"},
        {27, "IQ3_S mix - 3.66 bpw"},
        {28, "IQ2_S - 2.5 bpw"},
        {29, "IQ2_M - 2.7 bpw"},
        {30, "IQ4_XS - 4.25 bpw"},
        {31, "IQ1_M - 1.75 bpw"},
        {32, "BF16"},
        {36, "TQ1_0 - 1.69 bpw ternary"},
        {37, "TQ2_0 - 2.06 bpw ternary"},
        {38, "MXFP4 MoE"},
        {39, "NVFP4"},
        {40, "Q1_0"},
        {41, "Q2_0"},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].value == file_type)
            return names[i].name;
    return NULL;
}

/* RoPE pairing per architecture, as llama.cpp's llama_model_rope_type assigns it. */
static rf_rope_type rope_type_of(const char *arch)
{
    static const char *const neox[] = {
        "qwen",  "qwen2",  "qwen2moe",   "qwen3",      "qwen3moe", "phi2",    "phi3",
        "gemma", "gemma2", "gemma3",     "starcoder2", "stablelm", "gptneox", "falcon",
        "olmo2", "bert",   "nomic-bert", "codeshell",  "orion",    "exaone",  "minicpm3",
        "dbrx",  "grok",   "bitnet",     "openelm",
    };
    static const char *const norm[] = {
        "llama",      "baichuan",  "starcoder", "internlm2", "minicpm",   "xverse",
        "command-r",  "olmo",      "arctic",    "deepseek",  "deepseek2", "granite",
        "granitemoe", "chameleon", "smollm3",   "chatglm",   "mistral3",  "cohere2",
    };
    for (size_t i = 0; i < sizeof neox / sizeof neox[0]; i++)
        if (strcmp(arch, neox[i]) == 0)
            return RF_ROPE_NEOX;
    for (size_t i = 0; i < sizeof norm / sizeof norm[0]; i++)
        if (strcmp(arch, norm[i]) == 0)
            return RF_ROPE_NORM;
    return RF_ROPE_UNKNOWN;
}

/* An array of strings as NUL-terminated pointers into the model's copies (no new copies). */
static const char **string_list(reader *r, const char *key, uint64_t *count)
{
    const rf_kv *kv = rf_model_find_kv(r->model, key);
    if (!kv)
        return NULL;
    if (kv->value.type != RF_VALUE_ARRAY || kv->value.as.arr.elem_type != RF_VALUE_STRING) {
        note(r, "key '%s' has type %s, expected an array of strings; not used", key,
             kv->value.type == RF_VALUE_ARRAY ? "array of non-strings"
                                              : rf_value_type_name(kv->value.type));
        return NULL;
    }
    uint64_t n = kv->value.as.arr.count;
    const char **list = rf_model_alloc_array(r->model, n ? n : 1, sizeof *list);
    if (!list)
        return NULL;
    for (uint64_t i = 0; i < n; i++)
        list[i] = kv->value.as.arr.items[i].as.str.data;
    *count = n;
    return list;
}

static rf_status fill_tokenizer(reader *r)
{
    const rf_model *m = r->model;
    bool any = false;
    for (size_t i = 0; i < rf_model_n_kv(m) && !any; i++)
        any = strncmp(rf_model_kv(m, i)->key, "tokenizer.ggml.", 15) == 0;
    if (!any)
        return RF_OK;
    rf_tokenizer *tok = rf_model_tokenizer_mut(r->model);
    if (!tok)
        return fail(r, RF_ERR_NOMEM, "out of memory");
    tok->model = config_string(r, "tokenizer.ggml.model");
    tok->pre = config_string(r, "tokenizer.ggml.pre");
    tok->tokens = string_list(r, "tokenizer.ggml.tokens", &tok->n_tokens);
    tok->merges = string_list(r, "tokenizer.ggml.merges", &tok->n_merges);
    const rf_kv *types = rf_model_find_kv(m, "tokenizer.ggml.token_type");
    if (types) {
        const rf_value *v = &types->value;
        bool ok = v->type == RF_VALUE_ARRAY;
        int32_t *list = NULL;
        if (ok) {
            list = rf_model_alloc(r->model,
                                  (size_t)(v->as.arr.count ? v->as.arr.count : 1) * sizeof *list);
            if (!list)
                return fail(r, RF_ERR_NOMEM, "out of memory");
        }
        for (uint64_t i = 0; ok && i < v->as.arr.count; i++) {
            int64_t x;
            ok = rf_value_as_i64(&v->as.arr.items[i], &x) && x >= INT32_MIN && x <= INT32_MAX;
            if (ok)
                list[i] = (int32_t)x;
        }
        if (!ok)
            note(r, "key 'tokenizer.ggml.token_type' is not an array of i32; not used");
        else if (tok->tokens && v->as.arr.count != tok->n_tokens)
            note(r,
                 "tokenizer.ggml.token_type has %llu entries but tokenizer.ggml.tokens has "
                 "%llu; not used",
                 (unsigned long long)v->as.arr.count, (unsigned long long)tok->n_tokens);
        else
            tok->token_types = list;
    }
    const rf_kv *add_bos = rf_model_find_kv(m, "tokenizer.ggml.add_bos_token");
    if (add_bos) {
        if (add_bos->value.type == RF_VALUE_BOOL)
            tok->add_bos = add_bos->value.as.b;
        else
            note(r, "key 'tokenizer.ggml.add_bos_token' has type %s, expected bool; not used",
                 rf_value_type_name(add_bos->value.type));
    }
    return RF_OK;
}

static rf_status fill_config(reader *r)
{
    rf_model *m = r->model;
    rf_model_config *c = rf_model_config_mut(m);
    c->architecture = config_string(r, "general.architecture");
    const char *own = c->architecture; /* the file's, when the caller names another */
    /* llama.cpp loads nothing without it; Rosetta's writers refuse to copy such a file to GGUF
     * (rfi_gguf_check_architecture), and diagnostic tools show the warning. A caller that
     * names the architecture (rf_open_options.architecture, the tools' --arch) gets the config
     * read under "<that name>.*" instead (docs/reliability.md, "A GGUF without an
     * architecture"). */
    const rf_kv *type = rf_model_find_kv(m, "general.type"); /* "model", "adapter", "imatrix" */
    bool model = !type || type->value.type != RF_VALUE_STRING ||
                 strcmp(type->value.as.str.data, "model") == 0;
    bool has_key = rf_model_find_kv(m, "general.architecture") != NULL;
    if (r->architecture) {
        if (!has_key || !own)
            note(r, "general.architecture is %s: read as '%.64s', the architecture asked for",
                 has_key ? "not a string" : "missing", r->architecture);
        else if (strcmp(own, r->architecture) != 0)
            note(r, "general.architecture is '%.64s' but '%.64s' was asked for: read as '%.64s'",
                 own, r->architecture, r->architecture);
        else
            own = NULL;
        if (!(c->architecture = rf_model_strdup(m, r->architecture)))
            return fail(r, RF_ERR_NOMEM, "out of memory");
    } else if (model && !has_key)
        note(r, "general.architecture is missing: llama.cpp cannot load this file, and Rosetta "
                "will not convert it to GGUF (unless told the architecture: --arch)");
    else if (c->architecture && !architecture_name_ok(c->architecture))
        note(r,
             "general.architecture '%.64s' is not an architecture name (lower-case letters, "
             "digits, '_', '-'): llama.cpp cannot load this file",
             c->architecture);
    if (own == c->architecture)
        own = NULL;
    c->name = config_string(r, "general.name");
    if (c->architecture) {
        const char *a = c->architecture;
        config_u64(r, arch_kv(m, a, own, "context_length"), &c->context_length);
        config_u64(r, arch_kv(m, a, own, "embedding_length"), &c->hidden_size);
        config_u64(r, arch_kv(m, a, own, "block_count"), &c->n_layers);
        config_u64(r, arch_kv(m, a, own, "feed_forward_length"), &c->intermediate_size);
        config_u64(r, arch_kv(m, a, own, "attention.head_count"), &c->n_heads);
        config_u64(r, arch_kv(m, a, own, "attention.head_count_kv"), &c->n_kv_heads);
        if (!arch_kv(m, a, own, "attention.head_count_kv")) /* llama.cpp: absent means no GQA */
            c->n_kv_heads = c->n_heads;
        config_u64(r, arch_kv(m, a, own, "attention.key_length"), &c->head_dim);
        if (c->head_dim == 0)
            config_u64(r, arch_kv(m, a, own, "attention.value_length"), &c->head_dim);
        if (c->head_dim == 0 && c->n_heads && c->hidden_size % c->n_heads == 0)
            c->head_dim = c->hidden_size / c->n_heads;
        config_f64(r, arch_kv(m, a, own, "rope.freq_base"), &c->rope_theta);
        config_f64(r, arch_kv(m, a, own, "attention.layer_norm_rms_epsilon"), &c->rms_norm_eps);
        config_u64(r, arch_kv(m, a, own, "vocab_size"), &c->vocab_size);
        c->rope_type = rope_type_of(a);
    }
    config_id(r, "tokenizer.ggml.bos_token_id", &c->bos_token_id);
    config_id(r, "tokenizer.ggml.eos_token_id", &c->eos_token_id);
    config_id(r, "tokenizer.ggml.padding_token_id", &c->pad_token_id);
    c->chat_template = config_string(r, "tokenizer.chat_template");

    const rf_tensor *embd = rf_model_find_tensor(m, "token_embd.weight");
    if (rf_model_find_tensor(m, "output.weight"))
        c->tie_word_embeddings = 0;
    else if (embd) /* llama.cpp reuses token_embd when output.weight is absent */
        c->tie_word_embeddings = 1;

    rf_status st = fill_tokenizer(r);
    if (st != RF_OK)
        return st;
    const rf_tokenizer *tok = rf_model_tokenizer(m);
    if (tok && tok->tokens)
        c->vocab_size = tok->n_tokens; /* llama.cpp's vocabulary size */
    else if (c->vocab_size == 0 && embd && embd->ndim == 2)
        c->vocab_size = embd->shape[0];
    if (embd && embd->ndim == 2 && tok && tok->tokens && tok->n_tokens > embd->shape[0])
        note(r, "the tokenizer has %llu tokens but token_embd.weight has %llu rows",
             (unsigned long long)tok->n_tokens, (unsigned long long)embd->shape[0]);
    return RF_OK;
}

/* ---- entry points ------------------------------------------------------------------------- */

static rf_status parse(reader *r)
{
    rf_status st = read_header(r);
    if (st == RF_OK)
        st = read_kvs(r);
    if (st != RF_OK)
        return st;

    r->tensor_info_offset = r->pos;
    size_t cap = 0;
    r->section = SECTION_TENSOR;
    for (uint64_t i = 0; i < r->n_tensors; i++) {
        if (i == cap) { /* grow with what was actually read, not with the declared count */
            size_t n = cap ? cap * 2 : 64;
            tensor_info *p = realloc(r->infos, n * sizeof *p);
            if (!p) {
                st = fail(r, RF_ERR_NOMEM, "out of memory reading tensor r->infos");
                break;
            }
            r->infos = p;
            cap = n;
        }
        memset(&r->infos[i], 0, sizeof r->infos[i]);
        r->item = i;
        r->item_name = NULL;
        if ((st = read_tensor_info(r, &r->infos[i], &r->names)))
            break;
        if (r->obs && r->obs->tensor_info) {
            const tensor_info *t = &r->infos[i];
            gguf_tensor_event e = {
                .index = i,
                .record_offset = t->record_offset,
                .name = t->name,
                .name_len = t->name_len,
                .dims_offset = t->record_offset + 8 + t->name_len,
                .n_dims = t->n_dims,
                .ne = t->ne,
                .type_offset = t->type_offset,
                .ggml_type = t->ggml_type,
                .offset_offset = t->offset_offset,
                .offset = t->offset,
                .end = r->pos,
            };
            r->obs->tensor_info(r->obs->ctx, &e);
        }
    }
    free(r->names.slots);
    r->names = (name_set){0};
    if (st == RF_OK) {
        r->data_offset = pad_to(r->pos, r->alignment);
        if (r->model)
            st = place_tensors(r, r->infos);
    }
    free(r->infos);
    r->infos = NULL;
    r->section = SECTION_HEADER; /* config notes concern the metadata as a whole */
    if (st == RF_OK && r->model)
        st = fill_config(r);
    return st;
}

static rf_status run_parse(void *ctx, rf_error *err)
{
    (void)err; /* the reader reports through r->err */
    return parse(ctx);
}

/* parse(r) over data that is often a mapped file: a truncation underneath while it is read is
 * an RF_ERR_IO error ("file changed while in use"), not a SIGBUS. */
static rf_status parse_guarded(reader *r)
{
    rf_status st = rfi_mapped_guarded(run_parse, r, r->err);
    if (st != RF_OK) { /* what the parse held when a fault cut it short (NULL otherwise) */
        temps_free(r);
        free(r->keys.slots);
        free(r->names.slots);
        free(r->key);
        free(r->infos);
        r->keys = r->names = (name_set){0};
        r->key = NULL;
        r->infos = NULL;
    }
    return st;
}

static rf_model *open_file(rf_file *file, const char *path, const rf_open_options *opts,
                           rf_error *err)
{
    rf_model *m = rf_model_new(RF_FORMAT_GGUF, err);
    if (!m) {
        rf_file_close(file);
        return NULL;
    }
    uint32_t index = 0;
    if (rf_model_add_file(m, file, &index, err) != RF_OK) {
        rf_file_close(file);
        rf_model_free(m);
        return NULL;
    }
    reader r = {
        .path = path,
        .data = rf_file_data(file),
        .size = rf_file_size(file),
        .lenient = opts && opts->lenient,
        .architecture = opts ? opts->architecture : NULL,
        .model = m,
        .file_index = index,
        .err = err,
    };
    rf_status st = rf_model_set_path(m, path, err);
    if (st == RF_OK)
        st = parse_guarded(&r);
    free(r.temps);
    if (st != RF_OK) {
        rf_model_free(m);
        return NULL;
    }
    rf_model_set_format_version(m, r.version);
    return m;
}

rf_model *rf_gguf_open_model(const char *path, const rf_open_options *opts, rf_error *err)
{
    rf_file *file = rf_file_open(path, err);
    if (!file)
        return NULL;
    return open_file(file, path, opts, err);
}

rf_model *rf_gguf_open_memory(const void *data, uint64_t size, const char *name,
                              const rf_open_options *opts, rf_error *err)
{
    if (!name)
        name = "<memory>";
    rf_file *file = rf_file_from_memory(data, size, name, err);
    if (!file)
        return NULL;
    return open_file(file, name, opts, err);
}

rf_status rf_gguf_scan_layout(const uint8_t *data, uint64_t size, const char *name,
                              rf_gguf_layout *out, rf_error *err)
{
    reader r = {
        .path = name ? name : "<memory>",
        .data = data,
        .size = size,
        .lenient = true,
        .err = err,
    };
    rf_status st = parse_guarded(&r);
    free(r.temps);
    if (st != RF_OK)
        return st;
    out->version = r.version;
    out->big_endian = r.swap;
    out->n_tensors = r.n_tensors;
    out->n_kv = r.n_kv;
    out->alignment = r.alignment;
    out->tensor_info_offset = r.tensor_info_offset;
    out->data_offset = r.data_offset;
    return RF_OK;
}

rf_status rfi_gguf_parse_observed(const uint8_t *data, uint64_t size, const char *path, rf_model *m,
                                  uint32_t file_index, const gguf_observer *obs,
                                  rf_gguf_layout *layout, rf_error *err)
{
    reader r = {
        .path = path,
        .data = data,
        .size = size,
        .lenient = true,
        .model = m,
        .file_index = file_index,
        .err = err,
        .obs = obs,
    };
    rf_status st = parse_guarded(&r);
    free(r.temps);
    if (st == RF_OK)
        rf_model_set_format_version(m, r.version);
    *layout = (rf_gguf_layout){
        .version = r.version,
        .big_endian = r.swap,
        .n_tensors = r.n_tensors,
        .n_kv = r.n_kv,
        .alignment = r.alignment ? r.alignment : RF_GGUF_DEFAULT_ALIGNMENT,
        .tensor_info_offset = r.tensor_info_offset,
        .data_offset = r.data_offset,
    };
    return st;
}

rf_status rf_gguf_model_layout(const rf_model *m, rf_gguf_layout *out, rf_error *err)
{
    const rf_file *file = rf_model_file(m, 0);
    if (rf_model_format(m) != RF_FORMAT_GGUF || !file)
        return rf_error_set(err, RF_ERR_ARGUMENT, "%s: not a model read from a GGUF file",
                            rf_model_path(m) ? rf_model_path(m) : "<model>");
    return rf_gguf_scan_layout(rf_file_data(file), rf_file_size(file), rf_file_path(file), out,
                               err);
}
