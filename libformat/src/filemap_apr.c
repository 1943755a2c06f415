/* File map of an APR file (docs/formats/apr.md): the 64-byte v2 header field by field with the
 * flags decoded and the header CRC recomputed, the metadata JSON member by member, every index
 * entry with its fields, the tensor data, and the footer CRC (recomputed on request). The layout
 * comes from the reader's own scan (apr_layout.c) and the verdict from the lenient reader
 * (apr_read.c), whose messages become the reasons of the regions they name. Files that only share
 * the "APR" prefix (v1 APRN, aprender-tsp, APR1, APRT) are identified and their headers shown.
 * Not for: validation rules (apr_layout.c and apr_read.c own them). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_internal.h"
#include "filemap_internal.h"

static const struct {
    uint16_t bit;
    const char *name;
} FLAGS[] = {
    {RF_APR_FLAG_LZ4, "lz4"},
    {RF_APR_FLAG_ZSTD, "zstd"},
    {RF_APR_FLAG_ENCRYPTED, "encrypted"},
    {RF_APR_FLAG_SIGNED, "signed"},
    {RF_APR_FLAG_SHARDED, "sharded"},
    {RF_APR_FLAG_QUANTIZED, "quantized"},
    {RF_APR_FLAG_HAS_FILTERBANK, "has-filterbank"},
    {RF_APR_FLAG_HAS_MODEL_CARD, "has-model-card"},
    {RF_APR_FLAG_STREAMING, "streaming"},
    {RF_APR_FLAG_HAS_VOCAB, "has-vocab"},
    {RF_APR_FLAG_ROW_MAJOR, "row-major"},
    {RF_APR_FLAG_COLUMN_MAJOR, "column-major"},
};

/* Lenient-reader warnings that state something aprender's (or Rosetta's strict) reader refuses
 * (docs/formats/apr.md, "Validation"); every other warning is informational. */
static const char *const REJECTED[] = {
    "CRC mismatch", "column-major",     "encrypted",   "signed (flag", "unknown dtype",
    "needs",        "unexpected bytes", "APR version", "overlap",      "not sorted",
    "extends past", "truncated",        "skipped",     "overflows",
};

static rf_problem_severity severity_of(const char *message)
{
    for (size_t i = 0; i < sizeof REJECTED / sizeof REJECTED[0]; i++)
        if (strstr(message, REJECTED[i]))
            return RF_PROBLEM_ERROR;
    return RF_PROBLEM_WARNING;
}

static uint64_t align64(uint64_t x) { return x > UINT64_MAX - 63 ? x : (x + 63) & ~(uint64_t)63; }

static void *heap_alloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n ? n : 1);
}

static void heap_release(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static const apr_allocator HEAP = {heap_alloc, heap_release, NULL};

/* ---- header --------------------------------------------------------------------------------- */

static const char *flags_text(rf_filemap *m, uint16_t flags)
{
    char buf[256];
    size_t n = (size_t)snprintf(buf, sizeof buf, "0x%04x", flags);
    const char *sep = " (";
    for (size_t i = 0; i < sizeof FLAGS / sizeof FLAGS[0]; i++)
        if (flags & FLAGS[i].bit) {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", sep, FLAGS[i].name);
            sep = ", ";
        }
    if (flags & 0xf000)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%sundefined 0x%04x", sep, flags & 0xf000);
    if (strcmp(sep, ", ") == 0 || (flags & 0xf000))
        snprintf(buf + n, sizeof buf - n, ")");
    return rfi_fm_strdup(m, buf);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void map_header(rf_filemap *m, const rf_apr_header *h, uint32_t crc)
{
    const uint8_t *d = m->data;
    bool whole = m->size >= RF_APR_HEADER_SIZE;
    rfi_fm_open(m, RF_REGION_SECTION, 0, "header", "APR v2 header (64 bytes)");
    rfi_fm_add(m, RF_REGION_MAGIC, 0, 4, "magic", m->size >= 4 ? rfi_fm_quote(m, d, 4, 4) : "");
    rfi_fm_add(m, RF_REGION_VERSION, 4, 2, "version",
               m->size >= 6 ? rfi_fm_printf(m, "%u.%u", d[4], d[5]) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 6, 2, "flags", whole ? flags_text(m, h->flags) : "");
    rfi_fm_add(m, RF_REGION_COUNT, 8, 4, "tensor_count",
               whole ? rfi_fm_printf(m, "%u", h->tensor_count) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 12, 8, "metadata_offset",
               whole ? rfi_fm_printf(m, "%" PRIu64, h->metadata_offset) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 20, 4, "metadata_size",
               whole ? rfi_fm_printf(m, "%u", h->metadata_size) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 24, 8, "tensor_index_offset",
               whole ? rfi_fm_printf(m, "%" PRIu64, h->tensor_index_offset) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 32, 8, "data_offset",
               whole ? rfi_fm_printf(m, "%" PRIu64, h->data_offset) : "");
    rfi_fm_add(m, RF_REGION_CHECKSUM, 40, 4, "header checksum",
               whole ? rfi_fm_printf(
                           m, "stored 0x%08x, computed 0x%08x over bytes [0, 40) and [44, 64): %s",
                           h->checksum, crc, h->checksum == crc ? "valid" : "INVALID")
                     : "");
    rfi_fm_add(m, RF_REGION_FIELD, 44, 20, "reserved",
               whole ? (all_zero(d + 44, 20) ? "20 zero bytes" : rfi_fm_hex(m, d + 44, 20, 20))
                     : "");
    rfi_fm_close(m, RF_APR_HEADER_SIZE);
}

/* ---- metadata, index, data ------------------------------------------------------------------- */

static void map_metadata(rf_filemap *m, const rf_apr_header *h, uint64_t section_end)
{
    uint64_t mo = h->metadata_offset, end = mo + h->metadata_size;
    rfi_fm_open(m, RF_REGION_SECTION, mo, "metadata",
                rfi_fm_printf(m, "%u bytes of JSON", h->metadata_size));
    int64_t json = rfi_fm_open(m, RF_REGION_JSON, mo, "JSON", "");
    apr_json j;
    rf_error jerr;
    if (rfi_apr_json_parse(m->data + mo, h->metadata_size, mo, "metadata", &j, &jerr) == RF_OK) {
        if (j.nodes[0].type == APR_J_OBJECT) {
            for (uint32_t c = j.nodes[0].first; c; c = j.nodes[c].next) {
                const apr_jnode *e = &j.nodes[c];
                char text[200];
                size_t n = 0;
                for (uint64_t i = e->offset; i < e->end && n + 4 < sizeof text; i++)
                    text[n++] = m->data[i] < 0x20 ? ' ' : (char)m->data[i];
                snprintf(text + n, sizeof text - n, "%s", e->end - e->offset > n ? "..." : "");
                rfi_fm_add(m, RF_REGION_KV, e->key_offset, e->end - e->key_offset,
                           rfi_fm_quote(m, (const uint8_t *)e->key, e->key_len, 120),
                           rfi_fm_strdup(m, text));
            }
            m->regions[json].value = rfi_fm_printf(m, "%u keys", j.nodes[0].count);
        }
        rfi_apr_json_free(&j);
    } else {
        rfi_fm_damage(m, json, jerr.message);
    }
    rfi_fm_close(m, end);
    if (section_end > end)
        rfi_fm_add(m, RF_REGION_PADDING, end, section_end - end, "padding", "to a multiple of 64");
    rfi_fm_close(m, section_end);
}

static const char *dtype_of_code(rf_filemap *m, uint8_t code, const rf_model *model,
                                 const char *name, rf_dtype *dtype, bool *known)
{
    /* the reader's meaning of the code (it knows legacy and realizar codes); without a model
     * (the reader refused the file), aprender's current meaning */
    const rf_tensor *t = model ? rf_model_find_tensor(model, name) : NULL;
    *known = t != NULL;
    if (t) {
        *dtype = t->dtype;
        return rf_dtype_name(t->dtype);
    }
    if (rf_dtype_from_apr(code, dtype)) {
        *known = !model;
        return model ? rfi_fm_printf(m, "%s (skipped by the reader)", rf_dtype_name(*dtype))
                     : rf_dtype_name(*dtype);
    }
    return rfi_fm_printf(m, "unknown dtype code %u", code);
}

static void map_entry(rf_filemap *m, const apr_entry *e, uint64_t data_offset,
                      const rf_model *model, uint32_t index)
{
    char *name = malloc(e->name_len + 1u);
    if (!name) {
        m->oom = true;
        return;
    }
    memcpy(name, e->name, e->name_len);
    name[e->name_len] = '\0';
    rf_map_tensor t = {.tensor = {.name = name, .ndim = e->ndim}, .alignment = RF_APR_ALIGNMENT};
    for (int k = 0; k < e->ndim; k++)
        t.tensor.shape[k] = e->shape[k];
    t.dtype_text = dtype_of_code(m, e->code, model, name, &t.tensor.dtype, &t.dtype_known);
    char shape[256];
    size_t n = (size_t)snprintf(shape, sizeof shape, "[");
    for (int k = 0; k < e->ndim && n < sizeof shape - 32; k++)
        n +=
            (size_t)snprintf(shape + n, sizeof shape - n, "%s%" PRIu64, k ? ", " : "", e->shape[k]);
    snprintf(shape + n, sizeof shape - n, "]");

    uint64_t at = e->entry_offset, len = 20u + e->name_len + 8u * e->ndim;
    const char *quoted = rfi_fm_quote(m, (const uint8_t *)e->name, e->name_len, 200);
    int64_t r = rfi_fm_open(m, RF_REGION_INDEX_ENTRY, at, rfi_fm_printf(m, "entry[%u]", index),
                            rfi_fm_printf(m, "%s %s %s offset %" PRIu64 " size %" PRIu64, quoted,
                                          t.dtype_text, shape, e->offset, e->size));
    rfi_fm_add(m, RF_REGION_FIELD, at, 2, "name_len", rfi_fm_printf(m, "%u", e->name_len));
    rfi_fm_add(m, RF_REGION_FIELD, at + 2, e->name_len, "name", quoted);
    rfi_fm_add(m, RF_REGION_FIELD, at + 2 + e->name_len, 1, "dtype",
               rfi_fm_printf(m, "%u (%s)", e->code, t.dtype_text));
    rfi_fm_add(m, RF_REGION_FIELD, at + 3 + e->name_len, 1, "ndim",
               rfi_fm_printf(m, "%u", e->ndim));
    rfi_fm_add(m, RF_REGION_FIELD, at + 4 + e->name_len, 8u * e->ndim, "dims",
               rfi_fm_strdup(m, shape));
    uint64_t tail = at + 4 + e->name_len + 8u * e->ndim;
    rfi_fm_add(m, RF_REGION_FIELD, tail, 8, "offset",
               rfi_fm_printf(m, "%" PRIu64 " (file offset %" PRIu64 ")", e->offset,
                             data_offset + e->offset));
    rfi_fm_add(m, RF_REGION_FIELD, tail + 8, 8, "size", rfi_fm_printf(m, "%" PRIu64, e->size));
    rfi_fm_close(m, at + len);

    t.info_offset = at;
    t.info_region = r;
    t.size_known = !__builtin_add_overflow(data_offset, e->offset, &t.tensor.file_offset);
    t.tensor.nbytes = e->size;
    /* how values lie in the bytes: aprender pads K-quant rows to whole super-blocks */
    uint64_t need = 0, row_bytes, elems = 0, end;
    if (t.dtype_known &&
        rf_apr_tensor_bytes(t.tensor.dtype, t.tensor.shape, t.tensor.ndim, &need, NULL) == RF_OK &&
        rf_shape_elements(t.tensor.shape, t.tensor.ndim, &elems, NULL) == RF_OK) {
        const rf_dtype_info *info = rf_dtype_get(t.tensor.dtype);
        t.rows = 1;
        t.cols = t.row_elems = elems;
        t.row_bytes = need;
        if (rf_apr_tensor_row_padded(&t.tensor, &row_bytes)) {
            t.rows = t.tensor.shape[0];
            t.cols = t.tensor.shape[1];
            t.row_bytes = row_bytes;
            t.row_elems = row_bytes / info->block_bytes * info->block_elems;
        } else if (t.tensor.dtype == RF_DTYPE_Q4_K || t.tensor.dtype == RF_DTYPE_Q6_K) {
            t.row_elems = need / info->block_bytes * info->block_elems; /* last block padded */
        }
        if (t.size_known && !__builtin_add_overflow(t.tensor.file_offset, e->size, &end) &&
            end <= m->size)
            t.tensor.data = m->data + t.tensor.file_offset;
    }
    rfi_fm_add_tensor(m, &t);
    free(name);
}

static void map_index(rf_filemap *m, const apr_layout *l, const rf_model *model, uint64_t end)
{
    const rf_apr_header *h = &l->h;
    rfi_fm_open(m, RF_REGION_SECTION, h->tensor_index_offset, "tensor index",
                rfi_fm_printf(m, "%u entr%s", h->tensor_count, h->tensor_count == 1 ? "y" : "ies"));
    for (uint32_t i = 0; i < l->n_entries; i++)
        map_entry(m, &l->entries[i], h->data_offset, model, i);
    uint64_t index_end = l->n_entries ? l->index_end : h->tensor_index_offset;
    if (l->n_entries == h->tensor_count && end > index_end)
        rfi_fm_add(m, RF_REGION_PADDING, index_end, end - index_end, "padding",
                   "to a multiple of 64");
    rfi_fm_close(m, l->n_entries == h->tensor_count ? end : index_end);
}

/* The footer: 4 bytes right after the padded data, CRC-32 of everything before (computed only
 * when asked: it reads the whole file). */
static uint32_t crc_of(const uint8_t *p, uint64_t n)
{
    uint32_t crc = 0;
    for (uint64_t done = 0; done < n;) { /* rf_crc32 takes size_t chunks */
        size_t take = n - done > (1u << 30) ? (1u << 30) : (size_t)(n - done);
        crc = rf_crc32(crc, p + done, take);
        done += take;
    }
    return crc;
}

static void map_data(rf_filemap *m, const apr_layout *l, bool reader_reports)
{
    uint64_t start = l->h.data_offset;
    rfi_fm_open(m, RF_REGION_SECTION, start, "data",
                rfi_fm_printf(m, "%zu tensor%s", m->n_tensors, m->n_tensors == 1 ? "" : "s"));
    uint64_t end = rfi_fm_data_regions(m, start, m->size);
    uint64_t padded = m->n_tensors ? align64(end) : end;
    if (padded > m->size)
        padded = m->size;
    if (padded > end)
        rfi_fm_add(m, RF_REGION_PADDING, end, padded - end, "padding",
                   "after the last tensor, to a multiple of 64");
    rfi_fm_close(m, padded);
    if (m->size - padded == 4) {
        uint32_t stored = rf_load_le32(m->data + padded);
        uint32_t computed = m->opts.verify_checksums ? crc_of(m->data, padded) : 0;
        const char *value =
            m->opts.verify_checksums
                ? rfi_fm_printf(m, "stored 0x%08x, computed 0x%08x over bytes [0, %" PRIu64 "): %s",
                                stored, computed, padded, stored == computed ? "valid" : "INVALID")
                : rfi_fm_printf(m, "stored 0x%08x (not verified: it covers the whole file)",
                                stored);
        int64_t r = rfi_fm_add(m, RF_REGION_CHECKSUM, padded, 4, "footer checksum", value);
        if (m->opts.verify_checksums && stored != computed)
            rfi_fm_damage(m, r,
                          rfi_fm_printf(m,
                                        "footer CRC mismatch (offset %" PRIu64 "): stored 0x%08x, "
                                        "computed 0x%08x",
                                        padded, stored, computed));
    } else if (m->size > padded) {
        int64_t r = rfi_fm_add(m, RF_REGION_UNPARSED, padded, m->size - padded, "trailing bytes",
                               rfi_fm_printf(m, "%" PRIu64 " bytes", m->size - padded));
        const char *why =
            rfi_fm_printf(m,
                          "%" PRIu64 " unexpected bytes after the tensor data (offset "
                          "%" PRIu64 "): expected a 4-byte footer CRC or nothing",
                          m->size - padded, padded);
        if (reader_reports)
            rfi_fm_mark(m, r, why); /* the reader's own warning is listed on it */
        else
            rfi_fm_damage(m, r, why);
    }
}

/* A reader message: on the index entry of the tensor it names, else at the offset it names,
 * else on the header. */
static void reader_problem(rf_filemap *m, const char *message, rf_problem_severity sev,
                           int64_t header)
{
    bool damage = sev == RF_PROBLEM_ERROR;
    message = rfi_fm_without_path(m, message);
    for (size_t i = 0; i < m->n_tensors; i++) {
        char quoted[300];
        snprintf(quoted, sizeof quoted, "tensor '%s'", m->tensors[i].tensor.name);
        if (strstr(message, quoted) && m->tensors[i].info_region >= 0) {
            if (damage && !m->tensors[i].damaged) {
                m->tensors[i].damaged = true;
                m->tensors[i].reason = rfi_fm_strdup(m, message);
            }
            rfi_fm_problem(m, sev, m->tensors[i].info_offset, m->tensors[i].info_region, damage,
                           message);
            return;
        }
    }
    uint64_t at = rfi_fm_message_offset(message);
    rfi_fm_problem(m, sev, at == UINT64_MAX ? 0 : at, at == UINT64_MAX ? header : -1, damage,
                   message);
}

/* ---- the files that only look like APR v2 ---------------------------------------------------- */

static void map_v1(rf_filemap *m)
{
    const uint8_t *d = m->data;
    snprintf(m->description, sizeof m->description, "APR v1 (APRN, classical-ML container)");
    bool whole = m->size >= 32;
    uint32_t ms = whole ? rf_load_le32(d + 8) : 0, ps = whole ? rf_load_le32(d + 12) : 0;
    rfi_fm_open(m, RF_REGION_SECTION, 0, "header", "APR v1 header (32 bytes)");
    rfi_fm_add(m, RF_REGION_MAGIC, 0, 4, "magic", m->size >= 4 ? rfi_fm_quote(m, d, 4, 4) : "");
    rfi_fm_add(m, RF_REGION_VERSION, 4, 2, "version",
               whole ? rfi_fm_printf(m, "%u.%u", d[4], d[5]) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 6, 2, "model_type",
               whole ? rfi_fm_printf(m, "0x%04x", rf_load_le16(d + 6)) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 8, 4, "metadata_size", whole ? rfi_fm_printf(m, "%u", ms) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 12, 4, "payload_size", whole ? rfi_fm_printf(m, "%u", ps) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 16, 4, "uncompressed_size",
               whole ? rfi_fm_printf(m, "%u", rf_load_le32(d + 16)) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 20, 1, "compression",
               whole ? rfi_fm_printf(m, "%u", d[20]) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 21, 1, "flags", whole ? rfi_fm_printf(m, "0x%02x", d[21]) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 22, 1, "quality_score",
               whole ? rfi_fm_printf(m, "%u", d[22]) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 23, 9, "reserved", "");
    rfi_fm_close(m, 32);
    if (!whole)
        return;
    rfi_fm_add(m, RF_REGION_FIELD, 32, ms, "metadata", "MessagePack (not decoded)");
    rfi_fm_add(m, RF_REGION_FIELD, 32 + (uint64_t)ms, ps, "payload", "bincode model (not decoded)");
    rfi_fm_add(m, RF_REGION_CHECKSUM, 32 + (uint64_t)ms + ps, 4, "checksum",
               "CRC-32 of all preceding bytes");
    rfi_fm_problem(m, RF_PROBLEM_WARNING, 0, -1, false,
                   "APR v1 (APRN) classical-ML container: header shown, payload not decoded; not a "
                   "model Rosetta converts");
}

static void map_tsp(rf_filemap *m)
{
    const uint8_t *d = m->data;
    snprintf(m->description, sizeof m->description, "aprender-tsp model (not APR v2)");
    rfi_fm_open(m, RF_REGION_SECTION, 0, "header", "aprender-tsp header (16 bytes)");
    rfi_fm_add(m, RF_REGION_MAGIC, 0, 4, "magic", rfi_fm_quote(m, d, 4, 4));
    rfi_fm_add(m, RF_REGION_VERSION, 4, 4, "version",
               m->size >= 8 ? rfi_fm_printf(m, "%u", rf_load_le32(d + 4)) : "");
    rfi_fm_add(m, RF_REGION_FIELD, 8, 4, "model_type",
               m->size >= 12 ? rfi_fm_printf(m, "0x%08x", rf_load_le32(d + 8)) : "");
    rfi_fm_add(m, RF_REGION_CHECKSUM, 12, 4, "payload checksum",
               m->size >= 16 ? rfi_fm_printf(m, "0x%08x", rf_load_le32(d + 12)) : "");
    rfi_fm_close(m, 16);
    if (m->size > 16)
        rfi_fm_add(m, RF_REGION_FIELD, 16, m->size - 16, "payload", "solver model (not decoded)");
    rfi_fm_problem(
        m, RF_PROBLEM_WARNING, 0, -1, false,
        "aprender-tsp model (not APR v2): APR\\0 magic, version 1, model type 0x54535000; "
        "not a model Rosetta converts");
}

static void map_identified(rf_filemap *m, const char *what)
{
    snprintf(m->description, sizeof m->description, "%s", what);
    rfi_fm_add(m, RF_REGION_MAGIC, 0, 4, "magic", rfi_fm_quote(m, m->data, 4, 4));
    if (m->size > 4)
        rfi_fm_add(m, RF_REGION_FIELD, 4, m->size - 4, "payload", "not decoded");
    rfi_fm_problem(m, RF_PROBLEM_WARNING, 0, -1, false,
                   rfi_fm_printf(m, "%s: identified by its magic, layout not decoded", what));
}

/* ---- APR v2 ------------------------------------------------------------------------------- */

rf_status rfi_fm_map_apr(rf_filemap *m, rf_error *err)
{
    switch (m->format) {
    case RF_FORMAT_APR_V1:
        map_v1(m);
        return m->oom ? rf_error_set(err, RF_ERR_NOMEM, "out of memory") : RF_OK;
    case RF_FORMAT_APR_TSP:
        map_tsp(m);
        return m->oom ? rf_error_set(err, RF_ERR_NOMEM, "out of memory") : RF_OK;
    case RF_FORMAT_APR1: map_identified(m, "APR1 file"); return RF_OK;
    case RF_FORMAT_APRT:
        map_identified(m, "APRT file (legacy realizar transformer format)");
        return RF_OK;
    case RF_FORMAT_APR:
    case RF_FORMAT_APR2_MAGIC: break;
    case RF_FORMAT_UNKNOWN:
    case RF_FORMAT_GGUF:
    case RF_FORMAT_SAFETENSORS:
    case RF_FORMAT_SAFETENSORS_INDEX:
    case RF_FORMAT_SAFETENSORS_DIR: return rf_error_set(err, RF_ERR_ARGUMENT, "not an APR file");
    }
    rf_apr_header h = {0};
    uint32_t crc = 0;
    if (m->size >= RF_APR_HEADER_SIZE) {
        rf_apr_header_decode(m->data, RF_APR_HEADER_SIZE, &h, NULL);
        crc = rf_apr_header_crc(m->data);
    }
    bool compressed = (h.flags & (RF_APR_FLAG_LZ4 | RF_APR_FLAG_ZSTD)) != 0;
    unsigned major = m->size > 5 ? m->data[4] : 0u, minor = m->size > 5 ? m->data[5] : 0u;
    snprintf(m->description, sizeof m->description, "APR v%u.%u%s%s", major, minor,
             m->format == RF_FORMAT_APR2_MAGIC ? " (old magic APR2)" : "",
             compressed ? (h.flags & RF_APR_FLAG_LZ4 ? ", LZ4-compressed" : ", zstd-compressed")
                        : "");
    map_header(m, &h, crc);
    int64_t header = 0; /* the header section is the first region added */
    if (m->size < RF_APR_HEADER_SIZE) {
        rfi_fm_problem(m, RF_PROBLEM_ERROR, 0, header, true,
                       rfi_fm_printf(m,
                                     "truncated header: the file has %" PRIu64 " bytes, the APR v2 "
                                     "header needs 64 (offset 0)",
                                     m->size));
        return m->oom ? rf_error_set(err, RF_ERR_NOMEM, "out of memory") : RF_OK;
    }

    /* the reader's scan (offsets) and the lenient reader (verdict, dtypes) */
    apr_scan_options so = {.alloc = &HEAP}; /* the footer is verified by map_data */
    apr_layout l;
    rf_error serr;
    rf_status sst = rfi_apr_scan(m->path, m->data, m->size, &so, &l, &serr);
    rf_error merr;
    rf_model *model = NULL;
    rf_file *file = rf_file_from_memory(m->data, m->size, m->path, &merr);
    if (file) {
        const rf_open_options lenient = {.lenient = true};
        const rf_apr_open_options skip = {.skip_footer_crc = true};
        model = rfi_apr_open_file(file, m->path, &lenient, &skip, &merr);
    }

    const uint64_t mo = h.metadata_offset, ms = h.metadata_size;
    const uint64_t tio = h.tensor_index_offset, dof = h.data_offset;
    if (compressed) {
        rfi_fm_add(m, RF_REGION_SECTION, RF_APR_HEADER_SIZE, m->size - RF_APR_HEADER_SIZE,
                   "compressed payload",
                   sst == RF_OK
                       ? rfi_fm_printf(m,
                                       "%s: %" PRIu64 " bytes, %" PRIu64 " uncompressed (the "
                                       "header's offsets refer to the uncompressed image)",
                                       h.flags & RF_APR_FLAG_LZ4 ? "LZ4 block" : "zstd frame",
                                       m->size - RF_APR_HEADER_SIZE, l.size - RF_APR_HEADER_SIZE)
                       : "not decompressed");
        /* tensors live in the reader's decompressed image: values only, no regions */
        for (size_t i = 0; model && i < rf_model_n_tensors(model); i++) {
            const rf_tensor *mt = rf_model_tensor(model, i);
            rf_map_tensor t = {.tensor = *mt,
                               .dtype_known = true,
                               .size_known = true,
                               .alignment = RF_APR_ALIGNMENT,
                               .info_region = -1};
            rfi_fm_add_tensor(m, &t);
        }
        if (sst != RF_OK)
            reader_problem(m, serr.message, RF_PROBLEM_ERROR, header);
    } else {
        bool meta_ok = mo >= RF_APR_HEADER_SIZE && mo <= m->size && ms <= m->size - mo;
        bool index_ok = meta_ok && tio >= mo + ms && tio <= m->size && dof >= tio && dof <= m->size;
        if (meta_ok)
            map_metadata(m, &h, index_ok ? tio : mo + ms);
        if (index_ok)
            map_index(m, &l, model, dof);
        bool index_whole = index_ok && l.n_entries == h.tensor_count;
        if (index_whole) {
            map_data(m, &l, model != NULL);
            if (sst != RF_OK) /* extents the scan refused (past the end, overlaps) */
                reader_problem(m, serr.message, RF_PROBLEM_ERROR, header);
        } else {
            uint64_t from = index_ok ? (l.n_entries ? l.index_end : tio)
                                     : (meta_ok ? mo + ms : RF_APR_HEADER_SIZE);
            const char *why = rfi_fm_without_path(m, serr.message);
            uint64_t at = rfi_fm_message_offset(why);
            if (sst != RF_OK && at != UINT64_MAX && at < from) { /* a field before: mark it */
                rfi_fm_problem(m, RF_PROBLEM_ERROR, at, -1, true, why);
                why = rfi_fm_printf(
                    m, "not mapped: the reader stopped at the field at offset %" PRIu64, at);
            } else if (sst == RF_OK) {
                why = "not mapped: the header's offsets are invalid";
            }
            rfi_fm_unparsed_tail(m, from, why);
        }
    }

    if (model) {
        for (size_t i = 0; i < rf_model_n_warnings(model); i++) {
            const char *w = rf_model_warning(model, i);
            reader_problem(m, w, severity_of(w), header);
        }
        m->model = model;
    } else if (sst == RF_OK) {
        reader_problem(m, merr.message, RF_PROBLEM_ERROR, header);
    }
    rfi_apr_layout_free(&l, &HEAP);
    if (m->oom)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", m->path);
    return RF_OK;
}
