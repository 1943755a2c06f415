/* File map of a SafeTensors file (docs/formats/safetensors.md): the 8-byte header length, the
 * JSON header with one region per member (each tensor entry at the offset of its name), the
 * space padding that ends the header, and the tensor data. The file is judged by the SafeTensors
 * reader (lenient), whose messages become the reasons of the regions they name; the member
 * offsets come from the project's offset-keeping JSON parser (apr_json.c).
 * Not for: validation rules (safetensors_read.c owns them). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_internal.h"
#include "filemap_internal.h"
#include "rosetta/safetensors.h"

#define ENTRY_PREVIEW 160

/* The member's JSON text as stored, cut for display. */
static const char *raw_text(rf_filemap *m, uint64_t from, uint64_t to)
{
    char buf[ENTRY_PREVIEW + 32];
    size_t n = 0;
    for (uint64_t i = from; i < to && n < ENTRY_PREVIEW; i++) {
        unsigned char c = m->data[i];
        buf[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    buf[n] = '\0';
    if (to - from > ENTRY_PREVIEW)
        snprintf(buf + n, sizeof buf - n, "...");
    return rfi_fm_strdup(m, buf);
}

/* The tensor an entry describes, as far as its JSON allows. */
static void entry_tensor(rf_filemap *m, const apr_json *j, uint32_t node, uint64_t data_start,
                         int64_t region)
{
    const apr_jnode *e = &j->nodes[node];
    char *name = malloc(e->key_len + 1u);
    if (!name) {
        m->oom = true;
        return;
    }
    memcpy(name, e->key, e->key_len);
    name[e->key_len] = '\0';
    rf_map_tensor t = {
        .tensor = {.name = name},
        .alignment = 1,
        .info_offset = e->key_offset,
        .info_region = region,
    };
    uint32_t dtype = e->type == APR_J_OBJECT ? rfi_apr_json_member(j, node, "dtype") : 0;
    uint32_t shape = e->type == APR_J_OBJECT ? rfi_apr_json_member(j, node, "shape") : 0;
    uint32_t offsets = e->type == APR_J_OBJECT ? rfi_apr_json_member(j, node, "data_offsets") : 0;
    if (dtype && j->nodes[dtype].type == APR_J_STRING) {
        t.dtype_known = rf_dtype_from_st(j->nodes[dtype].str, &t.tensor.dtype);
        if (!t.dtype_known)
            t.dtype_text = rfi_fm_printf(m, "unknown dtype \"%.40s\"", j->nodes[dtype].str);
    } else {
        t.dtype_text = "no dtype";
    }
    bool shape_ok =
        shape && j->nodes[shape].type == APR_J_ARRAY && j->nodes[shape].count <= RF_MAX_DIMS;
    if (shape_ok) {
        for (uint32_t d = j->nodes[shape].first; d; d = j->nodes[d].next) {
            if (j->nodes[d].type != APR_J_U64) {
                shape_ok = false;
                break;
            }
            t.tensor.shape[t.tensor.ndim++] = j->nodes[d].as.u;
        }
    }
    if (offsets && j->nodes[offsets].type == APR_J_ARRAY && j->nodes[offsets].count == 2) {
        uint32_t b = j->nodes[offsets].first, en = j->nodes[b].next;
        if (j->nodes[b].type == APR_J_U64 && j->nodes[en].type == APR_J_U64 &&
            j->nodes[en].as.u >= j->nodes[b].as.u &&
            !__builtin_add_overflow(data_start, j->nodes[b].as.u, &t.tensor.file_offset)) {
            t.tensor.nbytes = j->nodes[en].as.u - j->nodes[b].as.u;
            t.size_known = true;
        }
    }
    uint64_t elements, need, end;
    if (!shape_ok)
        t.dtype_known = false, t.dtype_text = t.dtype_text ? t.dtype_text : "bad shape";
    if (t.dtype_known && t.size_known &&
        rf_shape_elements(t.tensor.shape, t.tensor.ndim, &elements, NULL) == RF_OK &&
        rf_dtype_flat_bytes(t.tensor.dtype, elements, &need, NULL) == RF_OK) {
        t.rows = 1;
        t.cols = t.row_elems = elements;
        t.row_bytes = need;
        if (!__builtin_add_overflow(t.tensor.file_offset, t.tensor.nbytes, &end) && end <= m->size)
            t.tensor.data = m->data + t.tensor.file_offset;
    }
    int64_t idx = rfi_fm_add_tensor(m, &t);
    if (idx >= 0 && region >= 0)
        m->regions[region].tensor = idx;
    free(name);
}

/* The tensor a reader message names (`tensor "NAME"`), or -1. */
static int64_t named_tensor(const rf_filemap *m, const char *message)
{
    const char *p = strstr(message, "tensor \"");
    if (!p)
        return -1;
    p += strlen("tensor \"");
    for (size_t i = 0; i < m->n_tensors; i++) {
        size_t n = strlen(m->tensors[i].tensor.name);
        if (strncmp(p, m->tensors[i].tensor.name, n) == 0 && p[n] == '"')
            return (int64_t)i;
    }
    return -1;
}

/* A reader message: on the entry it names, else on the header. */
static void reader_problem(rf_filemap *m, const char *message, int64_t header,
                           rf_problem_severity sev)
{
    message = rfi_fm_without_path(m, message);
    int64_t t = named_tensor(m, message);
    if (t >= 0 && sev == RF_PROBLEM_ERROR && !m->tensors[t].damaged) {
        m->tensors[t].damaged = true;
        m->tensors[t].reason = rfi_fm_strdup(m, message);
    }
    int64_t region = t >= 0 && m->tensors[t].info_region >= 0 ? m->tensors[t].info_region : header;
    rfi_fm_problem(m, sev, region >= 0 ? m->regions[region].offset : 0, region,
                   sev == RF_PROBLEM_ERROR, message);
}

rf_status rfi_fm_map_safetensors(rf_filemap *m, rf_error *err)
{
    snprintf(m->description, sizeof m->description, "SafeTensors");
    const rf_open_options lenient = {.lenient = true};
    rf_error rerr;
    rf_model *model = rf_safetensors_open_memory(m->data, m->size, m->path, &lenient, &rerr);

    rfi_fm_open(m, RF_REGION_SECTION, 0, "header", "SafeTensors header");
    uint64_t n = m->size >= 8 ? rf_load_le64(m->data) : 0;
    int64_t length =
        rfi_fm_add(m, RF_REGION_COUNT, 0, 8, "header length",
                   m->size >= 8 ? rfi_fm_printf(m, "%" PRIu64 " bytes of JSON", n) : "");
    if (m->size < 8 || n > RF_SAFETENSORS_MAX_HEADER || n > m->size - 8) {
        rfi_fm_close(m, 8);
        const char *why =
            model ? "header length out of range" : rfi_fm_without_path(m, rerr.message);
        rfi_fm_problem(m, RF_PROBLEM_ERROR, 0, length, true, why);
        rfi_fm_unparsed_tail(m, 8, "not mapped: the header length is invalid");
        rf_model_free(model);
        return RF_OK;
    }
    uint64_t data_start = 8 + n;
    int64_t json_region = rfi_fm_open(m, RF_REGION_JSON, 8, "JSON header", "");
    apr_json j;
    rf_error jerr;
    bool parsed = rfi_apr_json_parse(m->data + 8, (size_t)n, 8, "header", &j, &jerr) == RF_OK;
    uint64_t json_end = data_start;
    size_t n_entries = 0;
    if (parsed && j.nodes[0].type == APR_J_OBJECT) {
        json_end = j.nodes[0].end;
        for (uint32_t c = j.nodes[0].first; c; c = j.nodes[c].next) {
            const apr_jnode *e = &j.nodes[c];
            bool meta = e->key_len == 12 && memcmp(e->key, "__metadata__", 12) == 0;
            int64_t r = rfi_fm_add(m, meta ? RF_REGION_KV : RF_REGION_TENSOR_INFO, e->key_offset,
                                   e->end - e->key_offset,
                                   rfi_fm_quote(m, (const uint8_t *)e->key, e->key_len, 200),
                                   raw_text(m, e->offset, e->end));
            if (!meta) {
                entry_tensor(m, &j, c, data_start, r);
                n_entries++;
            }
        }
    }
    rfi_fm_close(m, json_end);
    m->regions[json_region].value =
        parsed ? rfi_fm_printf(m, "%zu tensor entr%s", n_entries, n_entries == 1 ? "y" : "ies")
               : "unparsable";
    if (json_end < data_start)
        rfi_fm_add(m, RF_REGION_PADDING, json_end, data_start - json_end, "padding",
                   rfi_fm_printf(m, "%" PRIu64 " bytes (spaces) to a multiple of 8",
                                 data_start - json_end));
    rfi_fm_close(m, data_start);
    if (parsed)
        rfi_apr_json_free(&j);
    else
        rfi_fm_damage(m, json_region, model ? jerr.message : rfi_fm_without_path(m, rerr.message));

    if (!parsed) {
        rfi_fm_unparsed_tail(m, data_start, "tensor data not mapped: the JSON header is invalid");
    } else {
        rfi_fm_open(m, RF_REGION_SECTION, data_start, "data",
                    rfi_fm_printf(m, "%zu tensor%s", m->n_tensors, m->n_tensors == 1 ? "" : "s"));
        uint64_t end = rfi_fm_data_regions(m, data_start, m->size);
        rfi_fm_close(m, end > data_start ? end : data_start);
        if (end < m->size) {
            int64_t r = rfi_fm_add(m, RF_REGION_UNPARSED, end, m->size - end, "trailing bytes",
                                   rfi_fm_printf(m, "%" PRIu64 " bytes", m->size - end));
            rfi_fm_damage(m, r,
                          rfi_fm_printf(m,
                                        "%" PRIu64 " trailing bytes at offset %" PRIu64
                                        " after the last "
                                        "tensor (the reference reader rejects them)",
                                        m->size - end, end));
        }
    }

    /* The reader's verdict. */
    if (model) {
        for (size_t i = 0; i < rf_model_n_warnings(model); i++) {
            const char *w = rf_model_warning(model, i);
            bool minor = strstr(w, "whitespace bytes at offset 8") != NULL;
            reader_problem(m, w, json_region, minor ? RF_PROBLEM_WARNING : RF_PROBLEM_ERROR);
        }
        m->model = model;
    } else if (parsed) {
        reader_problem(m, rerr.message, json_region, RF_PROBLEM_ERROR);
    }
    if (m->oom)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", m->path);
    return RF_OK;
}
