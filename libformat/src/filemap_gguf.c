/* File map of a GGUF file (docs/formats/gguf.md): the fixed header, every key/value record with
 * its key, type and value, every tensor info with its fields, the padding before the data, and
 * the data section. The records and every problem come from the GGUF reader itself (through the
 * observer of gguf_internal.h), so the map and `apr inspect` judge a file the same way.
 * Not for: validation rules (gguf_read.c owns them). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filemap_internal.h"
#include "gguf_internal.h"
#include "model_internal.h"
#include "rosetta/half.h"

#define STRING_PREVIEW 60
#define ARRAY_PREVIEW  6

typedef struct gguf_problem {
    gguf_section section;
    uint64_t item;
    gguf_problem_kind kind;
    const char *message;
} gguf_problem;

typedef struct gmap {
    rf_filemap *m;
    int64_t *kv_regions; /* builder index of kv record i */
    size_t n_kv, cap_kv;
    uint64_t kv_end; /* end of the last complete record */
    int64_t *info_regions;
    size_t n_info, cap_info;
    uint64_t info_end;
    gguf_problem *problems;
    size_t n_problems, cap_problems;
    bool fatal;
    int64_t header_section, metadata_section, info_section;
    bool swap;
} gmap;

static bool grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 64;
    void *q = realloc(*p, c * size);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

/* ---- values as text ------------------------------------------------------------------------- */

static size_t put(char *buf, size_t cap, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put(char *buf, size_t cap, size_t n, const char *fmt, ...)
{
    if (n >= cap)
        return n;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
    return k < 0 ? n : (n + (size_t)k < cap ? n + (size_t)k : cap - 1);
}

static size_t scalar_text(char *buf, size_t cap, size_t n, const rf_value *v)
{
    switch (v->type) {
    case RF_VALUE_U8:
    case RF_VALUE_U16:
    case RF_VALUE_U32:
    case RF_VALUE_U64: return put(buf, cap, n, "%" PRIu64, v->as.u);
    case RF_VALUE_I8:
    case RF_VALUE_I16:
    case RF_VALUE_I32:
    case RF_VALUE_I64: return put(buf, cap, n, "%" PRId64, v->as.i);
    case RF_VALUE_F32: return put(buf, cap, n, "%.9g", v->as.f);
    case RF_VALUE_F64: return put(buf, cap, n, "%.17g", v->as.f);
    case RF_VALUE_BOOL: return put(buf, cap, n, "%s", v->as.b ? "true" : "false");
    case RF_VALUE_STRING:
    case RF_VALUE_JSON: {
        n = put(buf, cap, n, "\"");
        uint64_t i = 0;
        for (; i < v->as.str.len && i < STRING_PREVIEW && n + 8 < cap; i++) {
            unsigned char c = (unsigned char)v->as.str.data[i];
            if (c == '"' || c == '\\')
                n = put(buf, cap, n, "\\%c", c);
            else if (c == '\n')
                n = put(buf, cap, n, "\\n");
            else if (c < 0x20 || c == 0x7f)
                n = put(buf, cap, n, "\\x%02x", c);
            else
                n = put(buf, cap, n, "%c", c);
        }
        n = put(buf, cap, n, "\"");
        if (i < v->as.str.len)
            n = put(buf, cap, n, "... (%" PRIu64 " bytes)", v->as.str.len);
        return n;
    }
    case RF_VALUE_ARRAY: {
        n = put(buf, cap, n, "[");
        uint64_t shown = v->as.arr.count < ARRAY_PREVIEW ? v->as.arr.count : ARRAY_PREVIEW;
        for (uint64_t i = 0; i < shown && v->as.arr.items; i++) {
            n = put(buf, cap, n, "%s", i ? ", " : "");
            n = scalar_text(buf, cap, n, &v->as.arr.items[i]);
        }
        if (shown < v->as.arr.count)
            n = put(buf, cap, n, ", ... %" PRIu64 " more", v->as.arr.count - shown);
        return put(buf, cap, n, "]");
    }
    }
    return n;
}

static const char *type_text(uint32_t type)
{
    return type <= RF_VALUE_F64 ? rf_value_type_name((rf_value_type)type) : "unknown";
}

static const char *value_text(rf_filemap *m, uint32_t type, const rf_value *v)
{
    char buf[1024];
    size_t n = 0;
    if (v && v->type == RF_VALUE_ARRAY)
        n = put(buf, sizeof buf, n, "array of %" PRIu64 " %s: ", v->as.arr.count,
                type_text(v->as.arr.elem_type));
    if (v)
        scalar_text(buf, sizeof buf, n, v);
    else
        snprintf(buf, sizeof buf, "(%s)", type_text(type));
    return rfi_fm_strdup(m, buf);
}

/* ---- observer ------------------------------------------------------------------------------- */

static void on_kv(void *ctx, const gguf_kv_event *e)
{
    gmap *g = ctx;
    rf_filemap *m = g->m;
    if (!grow((void **)&g->kv_regions, &g->cap_kv, g->n_kv, sizeof *g->kv_regions)) {
        m->oom = true;
        return;
    }
    if (g->metadata_section < 0)
        g->metadata_section = rfi_fm_open(m, RF_REGION_SECTION, 24, "metadata", "");
    const char *key = rfi_fm_quote(m, e->key, e->key_len, 120);
    const char *value = value_text(m, e->type, e->value);
    int64_t r = rfi_fm_open(m, RF_REGION_KV, e->record_offset,
                            rfi_fm_printf(m, "kv[%" PRIu64 "]", e->index),
                            rfi_fm_printf(m, "%.*s: %s = %s", (int)(strlen(key) - 2), key + 1,
                                          type_text(e->type), value));
    rfi_fm_add(m, RF_REGION_KV_KEY, e->record_offset, e->type_offset - e->record_offset, "key",
               key);
    rfi_fm_add(m, RF_REGION_KV_TYPE, e->type_offset, 4, "type",
               rfi_fm_printf(m, "%u (%s)", e->type, type_text(e->type)));
    rfi_fm_add(m, RF_REGION_KV_VALUE, e->value_offset, e->end - e->value_offset, "value", value);
    rfi_fm_close(m, e->end);
    g->kv_regions[g->n_kv++] = r;
    g->kv_end = e->end;
}

static void on_tensor_info(void *ctx, const gguf_tensor_event *e)
{
    gmap *g = ctx;
    rf_filemap *m = g->m;
    if (!grow((void **)&g->info_regions, &g->cap_info, g->n_info, sizeof *g->info_regions)) {
        m->oom = true;
        return;
    }
    if (g->info_section < 0) { /* the first tensor info ends the metadata section */
        if (g->metadata_section < 0)
            g->metadata_section = rfi_fm_add(m, RF_REGION_SECTION, 24, 0, "metadata", "");
        else
            rfi_fm_close(m, g->kv_end);
        g->info_section = rfi_fm_open(m, RF_REGION_SECTION, e->record_offset, "tensor infos", "");
        g->info_end = e->record_offset;
    }
    char ne[256];
    size_t n = put(ne, sizeof ne, 0, "[");
    for (uint32_t j = 0; j < e->n_dims && j < RF_MAX_DIMS; j++)
        n = put(ne, sizeof ne, n, "%s%" PRIu64, j ? ", " : "", e->ne[j]);
    put(ne, sizeof ne, n, "]");
    rf_dtype dtype;
    bool known = rf_dtype_from_ggml(e->ggml_type, &dtype);
    const char *type =
        known ? rf_dtype_name(dtype) : rfi_fm_printf(m, "unknown type %u", e->ggml_type);
    const char *name = rfi_fm_quote(m, e->name, e->name_len, 200);
    int64_t r =
        rfi_fm_open(m, RF_REGION_TENSOR_INFO, e->record_offset,
                    rfi_fm_printf(m, "tensor info[%" PRIu64 "]", e->index),
                    rfi_fm_printf(m, "%s %s ne %s offset %" PRIu64, name, type, ne, e->offset));
    rfi_fm_add(m, RF_REGION_FIELD, e->record_offset, e->dims_offset - e->record_offset, "name",
               name);
    rfi_fm_add(m, RF_REGION_FIELD, e->dims_offset, 4, "n_dims", rfi_fm_printf(m, "%u", e->n_dims));
    rfi_fm_add(m, RF_REGION_FIELD, e->dims_offset + 4, e->type_offset - e->dims_offset - 4, "ne",
               rfi_fm_strdup(m, ne));
    rfi_fm_add(m, RF_REGION_FIELD, e->type_offset, 4, "type",
               rfi_fm_printf(m, "%u (%s)", e->ggml_type, type));
    rfi_fm_add(m, RF_REGION_FIELD, e->offset_offset, 8, "offset",
               rfi_fm_printf(m, "%" PRIu64 " (relative to the data section)", e->offset));
    rfi_fm_close(m, e->end);
    g->info_regions[g->n_info++] = r;
    g->info_end = e->end;

    /* the tensor, placed once the data section's start is known */
    rf_map_tensor t = {
        .tensor = {.name = "", .ndim = (int)(e->n_dims < RF_MAX_DIMS ? e->n_dims : RF_MAX_DIMS)},
        .dtype_known = known,
        .dtype_text = type,
        .info_offset = e->record_offset,
        .info_region = r,
    };
    char *cname = malloc(e->name_len + 1);
    if (!cname) {
        m->oom = true;
        return;
    }
    memcpy(cname, e->name, e->name_len);
    cname[e->name_len] = '\0';
    t.tensor.name = cname;
    for (int j = 0; j < t.tensor.ndim; j++) /* ne[] is innermost first: row-major reverses it */
        t.tensor.shape[j] = e->ne[t.tensor.ndim - 1 - j];
    if (known) {
        t.tensor.dtype = dtype;
        t.size_known = rf_dtype_tensor_bytes(dtype, t.tensor.shape, t.tensor.ndim, &t.tensor.nbytes,
                                             NULL) == RF_OK;
    }
    t.tensor.file_offset = e->offset; /* relative for now */
    rfi_fm_add_tensor(m, &t);
    free(cname);
}

static void on_problem(void *ctx, gguf_section section, uint64_t item, gguf_problem_kind kind,
                       const char *message)
{
    gmap *g = ctx;
    if (!grow((void **)&g->problems, &g->cap_problems, g->n_problems, sizeof *g->problems)) {
        g->m->oom = true;
        return;
    }
    g->problems[g->n_problems++] =
        (gguf_problem){section, item, kind, rfi_fm_strdup(g->m, message)};
    if (kind == GGUF_FATAL)
        g->fatal = true;
}

/* ---- the fixed header ----------------------------------------------------------------------- */

static void map_header(gmap *g, const rf_gguf_layout *layout)
{
    rf_filemap *m = g->m;
    const uint8_t *d = m->data;
    g->header_section = rfi_fm_open(m, RF_REGION_SECTION, 0, "header", "GGUF header");
    rfi_fm_add(m, RF_REGION_MAGIC, 0, 4, "magic", m->size >= 4 ? rfi_fm_quote(m, d, 4, 4) : "");
    const char *version = "";
    if (m->size >= 8) {
        uint32_t raw = rf_load_le32(d + 4);
        version = layout->big_endian
                      ? rfi_fm_printf(m, "%u (big-endian: stored as 0x%08x)", layout->version, raw)
                      : rfi_fm_printf(m, "%u", raw);
    }
    rfi_fm_add(m, RF_REGION_VERSION, 4, 4, "version", version);
    const char *counts[2] = {"", ""};
    for (int i = 0; i < 2; i++)
        if (m->size >= 16u + 8u * (unsigned)i) {
            uint64_t v = rf_load_le64(d + 8 + 8 * i);
            counts[i] = rfi_fm_printf(m, "%" PRIu64, layout->big_endian ? __builtin_bswap64(v) : v);
        }
    rfi_fm_add(m, RF_REGION_COUNT, 8, 8, "tensor_count", counts[0]);
    rfi_fm_add(m, RF_REGION_COUNT, 16, 8, "kv_count", counts[1]);
    rfi_fm_close(m, 24);
}

/* The region a problem belongs to: the record it names, or the leaf at the offset it names. */
static void attach(gmap *g, const gguf_problem *p)
{
    rf_filemap *m = g->m;
    rf_problem_severity sev = p->kind == GGUF_NOTE ? RF_PROBLEM_WARNING : RF_PROBLEM_ERROR;
    bool damage = p->kind != GGUF_NOTE;
    uint64_t at = rfi_fm_message_offset(p->message);
    int64_t record = -1;
    if (p->section == GGUF_SECTION_KV && p->item < g->n_kv)
        record = g->kv_regions[p->item];
    else if (p->section == GGUF_SECTION_TENSOR && p->item < g->n_info)
        record = g->info_regions[p->item];
    if (p->section == GGUF_SECTION_TENSOR && p->item < m->n_tensors && damage) {
        rf_map_tensor *t = &m->tensors[p->item];
        if (!t->damaged) {
            t->damaged = true;
            t->reason = p->message;
        }
    }
    if (record < 0) {
        /* header problems (or a record that was never completed): the leaf at the offset */
        rfi_fm_problem(m, sev, at != UINT64_MAX ? at : 0, at != UINT64_MAX ? -1 : g->header_section,
                       damage, p->message);
        return;
    }
    /* a field of the record when the message names its offset */
    const rf_region *rec = &m->regions[record];
    if (at != UINT64_MAX && at >= rec->offset && at < rec->offset + rec->size) {
        for (size_t i = (size_t)record + 1; i < m->n_regions && m->regions[i].parent == record; i++)
            if (at >= m->regions[i].offset && at < m->regions[i].offset + m->regions[i].size) {
                rfi_fm_problem(m, sev, at, (int64_t)i, damage, p->message);
                if (damage)
                    rfi_fm_mark(m, record, p->message);
                return;
            }
    }
    rfi_fm_problem(m, sev, rec->offset, record, damage, p->message);
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    uint64_t r = x % a;
    return r == 0 || x > UINT64_MAX - (a - r) ? x : x + (a - r);
}

/* Tensors get their absolute offsets, alignment and data once the data section is known. */
static void place(gmap *g, const rf_gguf_layout *layout, rf_model *model)
{
    rf_filemap *m = g->m;
    for (size_t i = 0; i < m->n_tensors; i++) {
        rf_map_tensor *t = &m->tensors[i];
        t->alignment = layout->alignment;
        if (__builtin_add_overflow(t->tensor.file_offset, layout->data_offset,
                                   &t->tensor.file_offset)) {
            t->size_known = false;
            t->damaged = true;
            t->reason = "data offset overflows";
            continue;
        }
        t->row_bytes = t->tensor.nbytes;
        uint64_t end;
        if (!t->size_known ||
            __builtin_add_overflow(t->tensor.file_offset, t->tensor.nbytes, &end) || end > m->size)
            continue;
        t->tensor.data = m->data + t->tensor.file_offset;
        if (layout->big_endian) { /* the reader's byte-swapped copy, when it made one */
            const rf_tensor *mt = rf_model_find_tensor(model, t->tensor.name);
            t->tensor.data = mt ? mt->data : NULL;
        }
    }
}

rf_status rfi_fm_map_gguf(rf_filemap *m, rf_error *err)
{
    rf_model *model = rf_model_new(RF_FORMAT_GGUF, err);
    if (!model)
        return RF_ERR_NOMEM;
    rf_status st = rf_model_set_path(model, m->path, err);
    if (st != RF_OK) {
        rf_model_free(model);
        return st;
    }
    gmap g = {.m = m, .header_section = -1, .metadata_section = -1, .info_section = -1};
    gguf_observer obs = {&g, on_kv, on_tensor_info, on_problem};

    /* The fixed header is mapped from its 24 bytes; the reader then validates it and reports the
     * records, which the observer adds to the open section. */
    rf_gguf_layout peek = {0};
    if (m->size >= 8) {
        uint32_t raw = rf_load_le32(m->data + 4);
        peek.big_endian = raw != 0 && (raw & 0xFFFFu) == 0;
        peek.version = peek.big_endian ? __builtin_bswap32(raw) : raw;
    }
    map_header(&g, &peek);
    g.kv_end = 24;
    rf_gguf_layout layout;
    rf_error perr;
    st = rfi_gguf_parse_observed(m->data, m->size, m->path, model, 0, &obs, &layout, &perr);
    if (m->oom)
        goto oom;
    /* The header was read when the reader got past it: then the (possibly empty) sections exist. */
    bool header_read = g.n_kv > 0 || g.n_info > 0 || st == RF_OK || layout.tensor_info_offset > 0;
    for (size_t i = 0; i < g.n_problems && header_read; i++)
        if (g.problems[i].kind == GGUF_FATAL && g.problems[i].section == GGUF_SECTION_HEADER &&
            g.n_kv == 0 && g.n_info == 0)
            header_read = false;
    if (g.info_section < 0) { /* no tensor info arrived */
        if (g.metadata_section >= 0)
            rfi_fm_close(m, g.kv_end);
        else if (header_read)
            g.metadata_section = rfi_fm_add(m, RF_REGION_SECTION, 24, 0, "metadata", "");
        if (st == RF_OK)
            g.info_section = rfi_fm_open(m, RF_REGION_SECTION, g.kv_end, "tensor infos", "");
        g.info_end = g.kv_end;
    }
    if (g.info_section >= 0)
        rfi_fm_close(m, g.info_end);
    if (g.metadata_section >= 0)
        m->regions[g.metadata_section].value =
            rfi_fm_printf(m, "%zu key/value pair%s", g.n_kv, g.n_kv == 1 ? "" : "s");
    if (g.info_section >= 0)
        m->regions[g.info_section].value =
            rfi_fm_printf(m, "%zu tensor info%s", g.n_info, g.n_info == 1 ? "" : "s");
    snprintf(m->description, sizeof m->description, "GGUF v%u, %s-endian", peek.version,
             peek.big_endian ? "big" : "little");

    /* Where the reader stopped, if it did: the rest is unparsed. */
    const gguf_problem *fatal = NULL;
    for (size_t i = 0; i < g.n_problems; i++)
        if (g.problems[i].kind == GGUF_FATAL)
            fatal = &g.problems[i];
    uint64_t tail = UINT64_MAX;
    if (fatal) {
        if (fatal->section == GGUF_SECTION_KV ||
            (fatal->section == GGUF_SECTION_HEADER && g.n_kv == 0 && g.n_info == 0))
            tail = g.kv_end;
        else if (fatal->section == GGUF_SECTION_TENSOR && g.n_info < layout.n_tensors)
            tail = g.info_end;
        else
            tail = layout.data_offset > g.info_end ? layout.data_offset : g.info_end;
    } else if (st != RF_OK) {
        tail = g.info_end; /* the reader failed without saying where (out of memory) */
    }

    if (tail == UINT64_MAX || tail > g.info_end) {
        /* the data section */
        place(&g, &layout, model);
        uint64_t a = layout.alignment ? layout.alignment : RF_GGUF_DEFAULT_ALIGNMENT;
        uint64_t data = layout.data_offset;
        if (m->n_tensors == 0 && data > m->size) /* ggml does not seek to an empty data section */
            data = m->size;
        if (data > g.info_end)
            rfi_fm_add(m, RF_REGION_PADDING, g.info_end, data - g.info_end, "padding",
                       rfi_fm_printf(m, "to a multiple of %" PRIu64 " (general.alignment)", a));
        rfi_fm_open(m, RF_REGION_SECTION, data, "data",
                    rfi_fm_printf(m, "%zu tensor%s", m->n_tensors, m->n_tensors == 1 ? "" : "s"));
        uint64_t end = rfi_fm_data_regions(m, data, m->size);
        uint64_t padded = m->n_tensors ? align_up(end, a) : end;
        if (padded > m->size)
            padded = m->size;
        if (padded > end)
            rfi_fm_add(m, RF_REGION_PADDING, end, padded - end, "padding",
                       rfi_fm_printf(m, "after the last tensor, to a multiple of %" PRIu64, a));
        rfi_fm_close(m, padded > data ? padded : data);
        if (padded < m->size && padded >= data) {
            int64_t r =
                rfi_fm_add(m, RF_REGION_UNPARSED, padded, m->size - padded, "trailing bytes",
                           rfi_fm_printf(m, "%" PRIu64 " bytes", m->size - padded));
            rfi_fm_problem(m, RF_PROBLEM_WARNING, padded, r, true,
                           rfi_fm_printf(m,
                                         "%" PRIu64
                                         " bytes after the padded end of the data section "
                                         "(offset %" PRIu64 ") belong to nothing",
                                         m->size - padded, padded));
        }
    }
    for (size_t i = 0; i < g.n_problems; i++) {
        const gguf_problem *p = &g.problems[i];
        uint64_t at = rfi_fm_message_offset(p->message);
        if (p == fatal && (at == UINT64_MAX || at >= tail))
            continue; /* stated by the unparsed tail below */
        attach(&g, p);
    }
    uint64_t fatal_at = fatal ? rfi_fm_message_offset(fatal->message) : UINT64_MAX;
    if (fatal && fatal_at != UINT64_MAX && fatal_at < tail && tail >= m->size) {
        /* the reader stopped on a field that is mapped, and nothing is left after it */
    } else if (fatal) {
        uint64_t at = fatal_at;
        rfi_fm_unparsed_tail(
            m, tail,
            at != UINT64_MAX && at < tail
                ? rfi_fm_printf(m,
                                "not mapped: the reader stopped at the field at offset "
                                "%" PRIu64,
                                at)
                : fatal->message);
    } else if (st != RF_OK)
        rfi_fm_unparsed_tail(m, tail, perr.message);
    if (m->oom)
        goto oom;
    free(g.kv_regions);
    free(g.info_regions);
    free(g.problems);
    if (st == RF_OK)
        m->model = model;
    else
        rf_model_free(model);
    return RF_OK;
oom:
    rf_model_free(model);
    free(g.kv_regions);
    free(g.info_regions);
    free(g.problems);
    return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", m->path);
}
