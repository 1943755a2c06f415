/* APR v2 structure: the header codec, the tensor-size rule, and the scan that bounds-checks
 * header, metadata range, tensor index and every tensor extent before anything is trusted
 * (docs/formats/apr.md). Shared by the reader and the checksum report.
 * Not for: metadata contents (apr_metadata.c) or building the model (apr_read.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "apr_internal.h"
#include "io.h"
#include "io_internal.h"
#include "pages.h"

#define ENTRY_MIN 20 /* name length, dtype, ndim, offset, size with an empty name and no dims */

rf_status rf_apr_header_decode(const uint8_t *b, size_t len, rf_apr_header *h, rf_error *err)
{
    if (len < RF_APR_HEADER_SIZE)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "truncated header: %zu bytes, the APR v2 header needs 64 (offset 0)",
                            len);
    memcpy(h->magic, b, 4);
    h->version_major = b[4];
    h->version_minor = b[5];
    h->flags = rf_load_le16(b + 6);
    h->tensor_count = rf_load_le32(b + 8);
    h->metadata_offset = rf_load_le64(b + 12);
    h->metadata_size = rf_load_le32(b + 20);
    h->tensor_index_offset = rf_load_le64(b + 24);
    h->data_offset = rf_load_le64(b + 32);
    h->checksum = rf_load_le32(b + 40);
    memcpy(h->reserved, b + 44, sizeof h->reserved);
    return RF_OK;
}

void rf_apr_header_encode(const rf_apr_header *h, uint8_t out[RF_APR_HEADER_SIZE])
{
    memcpy(out, h->magic, 4);
    out[4] = h->version_major;
    out[5] = h->version_minor;
    rf_store_le16(out + 6, h->flags);
    rf_store_le32(out + 8, h->tensor_count);
    rf_store_le64(out + 12, h->metadata_offset);
    rf_store_le32(out + 20, h->metadata_size);
    rf_store_le64(out + 24, h->tensor_index_offset);
    rf_store_le64(out + 32, h->data_offset);
    rf_store_le32(out + 40, h->checksum);
    memcpy(out + 44, h->reserved, sizeof h->reserved);
}

uint32_t rf_apr_header_crc(const uint8_t header[RF_APR_HEADER_SIZE])
{
    /* docs/formats/apr.md: bytes [0,40) then [44,64); the checksum field itself is skipped */
    return rf_crc32(rf_crc32(0, header, 40), header + 44, 20);
}

rf_status rf_apr_tensor_bytes(rf_dtype dtype, const uint64_t *shape, int ndim, uint64_t *out,
                              rf_error *err)
{
    uint64_t n;
    rf_status st = rf_shape_elements(shape, ndim, &n, err);
    if (st != RF_OK)
        return st;
    if (dtype == RF_DTYPE_Q4_K || dtype == RF_DTYPE_Q6_K) {
        /* aprender's quantizer pads every row to whole super-blocks (docs/formats/apr.md) */
        uint64_t block = dtype == RF_DTYPE_Q4_K ? 144 : 210, blocks, bytes;
        if (ndim == 2) {
            uint64_t per_row = shape[1] / 256 + (shape[1] % 256 != 0);
            if (__builtin_mul_overflow(shape[0], per_row, &blocks))
                return rf_error_set(err, RF_ERR_OVERFLOW, "Q_K block count overflows");
        } else {
            blocks = n / 256 + (n % 256 != 0);
        }
        if (__builtin_mul_overflow(blocks, block, &bytes))
            return rf_error_set(err, RF_ERR_OVERFLOW, "%s size overflows", rf_dtype_name(dtype));
        *out = bytes;
        return RF_OK;
    }
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (!info || (info->apr_code < 0 && info->ggml_code < 0))
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "dtype %s has no APR encoding",
                            rf_dtype_name(dtype));
    if (info->apr_code >= 0)
        return rf_dtype_flat_bytes(dtype, n, out, err);
    return rf_dtype_tensor_bytes(dtype, shape, ndim, out, err); /* GGML type from realizar */
}

bool rf_apr_tensor_row_padded(const rf_tensor *t, uint64_t *row_bytes)
{
    if ((t->dtype != RF_DTYPE_Q4_K && t->dtype != RF_DTYPE_Q6_K) || t->ndim != 2 ||
        t->shape[1] % 256 == 0)
        return false;
    if (row_bytes)
        *row_bytes = (t->shape[1] / 256 + 1) * (t->dtype == RF_DTYPE_Q4_K ? 144u : 210u);
    return true;
}

/* ---- scan ----------------------------------------------------------------------------------- */

static void warn(const apr_scan_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void warn(const apr_scan_options *o, const char *fmt, ...)
{
    if (!o->warnings)
        return;
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    rf_model_add_warning(o->warnings, "%s", buf);
}

static bool align64(uint64_t x, uint64_t *out)
{
    if (x > UINT64_MAX - 63)
        return false;
    *out = (x + 63) & ~(uint64_t)63;
    return true;
}

/* A name for messages: printable, bounded, never trusting the bytes. */
static void show_name(const apr_entry *e, char *buf, size_t cap)
{
    size_t n = 0, i = 0;
    for (; i < e->name_len && n + 8 < cap; i++) {
        unsigned char c = (unsigned char)e->name[i];
        if (c >= 0x20 && c != 0x7f && c != '\'')
            buf[n++] = (char)c;
        else
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
    }
    if (i < e->name_len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

static int cmp_extent(const void *a, const void *b, void *ctx)
{
    const apr_entry *e = ctx;
    const apr_entry *x = &e[*(const uint32_t *)a], *y = &e[*(const uint32_t *)b];
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->size < y->size ? -1 : x->size > y->size;
}

static rf_status scan_index(const char *path, apr_layout *l, const apr_scan_options *o,
                            rf_error *err)
{
    const rf_apr_header *h = &l->h;
    uint64_t start = h->tensor_index_offset, end = h->data_offset;
    if (h->tensor_count > (end - start) / ENTRY_MIN)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: tensor_count %u (header offset 8) cannot fit: the tensor index "
                            "[%llu, %llu) has %llu bytes and each entry needs at least %d",
                            path, h->tensor_count, (unsigned long long)start,
                            (unsigned long long)end, (unsigned long long)(end - start), ENTRY_MIN);
    l->entries = calloc(h->tensor_count ? h->tensor_count : 1, sizeof *l->entries);
    if (!l->entries)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for %u index entries", path,
                            h->tensor_count);
    const uint8_t *d = l->image;
    uint64_t pos = start;
    char name[160], prev_name[160];
    for (uint32_t i = 0; i < h->tensor_count; i++) {
        apr_entry *e = &l->entries[i];
        e->entry_offset = pos;
        if (end - pos < 2)
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%s: tensor index entry %u at offset %llu is truncated: need 2 "
                                "bytes of name length, %llu remain before the data offset %llu",
                                path, i, (unsigned long long)pos, (unsigned long long)(end - pos),
                                (unsigned long long)end);
        e->name_len = rf_load_le16(d + pos);
        /* aprender's rule: name + dtype + ndim + offset + size must remain */
        if (end - pos - 2 < (uint64_t)e->name_len + 18)
            return rf_error_set(
                err, RF_ERR_FORMAT,
                "%s: tensor index entry %u at offset %llu: name length %u runs past "
                "the index (needs %u more bytes, %llu remain before the data "
                "offset %llu)",
                path, i, (unsigned long long)pos, e->name_len, e->name_len + 18u,
                (unsigned long long)(end - pos - 2), (unsigned long long)end);
        e->name = (const char *)d + pos + 2;
        show_name(e, name, sizeof name);
        if (memchr(e->name, 0, e->name_len) || !rf_utf8_valid(e->name, e->name_len))
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%s: tensor index entry %u at offset %llu: name '%s' is not valid "
                                "UTF-8 without NUL bytes",
                                path, i, (unsigned long long)pos, name);
        pos += 2 + (uint64_t)e->name_len;
        e->code = d[pos];
        e->ndim = d[pos + 1];
        pos += 2;
        if (e->ndim > RF_APR_MAX_DIMS)
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%s: tensor '%s' (index entry at offset %llu): %u dimensions at "
                                "offset %llu, at most %d",
                                path, name, (unsigned long long)e->entry_offset, e->ndim,
                                (unsigned long long)(pos - 1), RF_APR_MAX_DIMS);
        uint64_t rest = 8u * e->ndim + 16u;
        if (end - pos < rest)
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%s: tensor '%s' (index entry at offset %llu) is truncated at "
                                "offset %llu: needs %llu more bytes, %llu remain before the data "
                                "offset %llu",
                                path, name, (unsigned long long)e->entry_offset,
                                (unsigned long long)pos, (unsigned long long)rest,
                                (unsigned long long)(end - pos), (unsigned long long)end);
        for (unsigned k = 0; k < e->ndim; k++, pos += 8)
            e->shape[k] = rf_load_le64(d + pos);
        e->offset = rf_load_le64(d + pos);
        e->size = rf_load_le64(d + pos + 8);
        pos += 16;
        if (i > 0) {
            const apr_entry *p = &l->entries[i - 1];
            size_t n = p->name_len < e->name_len ? p->name_len : e->name_len;
            int c = memcmp(p->name, e->name, n);
            if (c > 0 || (c == 0 && p->name_len >= e->name_len)) {
                show_name(p, prev_name, sizeof prev_name);
                return rf_error_set(
                    err, RF_ERR_FORMAT,
                    "%s: tensor index not sorted at entry %u (offset %llu): '%s' "
                    "%s '%s' (names must be strictly increasing in byte order)",
                    path, i, (unsigned long long)e->entry_offset, name,
                    c == 0 && p->name_len == e->name_len ? "duplicates" : "comes after", prev_name);
            }
        }
        l->n_entries = i + 1; /* entries before a failure stay described (the file map) */
        l->index_end = pos;
    }
    l->n_entries = h->tensor_count;
    l->index_end = pos;

    /* every extent inside the image, none overlapping another (streaming-writer files have
     * offsets out of index order, so sort a copy) */
    uint64_t data_end = end;
    bool unaligned = false;
    for (uint32_t i = 0; i < l->n_entries; i++) {
        apr_entry *e = &l->entries[i];
        uint64_t abs, stop, padded;
        if (__builtin_add_overflow(end, e->offset, &abs) ||
            __builtin_add_overflow(abs, e->size, &stop) || stop > l->size ||
            !align64(stop, &padded)) {
            show_name(e, name, sizeof name);
            return rf_error_set(
                err, RF_ERR_FORMAT,
                "%s: tensor '%s' (index entry at offset %llu): data at offset %llu "
                "+ %llu bytes (data_offset %llu + relative offset %llu) extends past "
                "the end of the file (%llu bytes)",
                path, name, (unsigned long long)e->entry_offset,
                (unsigned long long)(end + e->offset), (unsigned long long)e->size,
                (unsigned long long)end, (unsigned long long)e->offset,
                (unsigned long long)l->size);
        }
        if (padded > data_end)
            data_end = padded;
        if (abs % RF_APR_ALIGNMENT && !unaligned) {
            show_name(e, name, sizeof name);
            warn(o, "tensor '%s' at offset %llu is not 64-byte aligned", name,
                 (unsigned long long)abs);
            unaligned = true;
        }
    }
    uint32_t *order = malloc((l->n_entries ? l->n_entries : 1) * sizeof *order);
    if (!order)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
    uint32_t n = 0;
    for (uint32_t i = 0; i < l->n_entries; i++)
        if (l->entries[i].size > 0)
            order[n++] = i;
    qsort_r(order, n, sizeof *order, cmp_extent, l->entries);
    for (uint32_t i = 1; i < n; i++) {
        const apr_entry *a = &l->entries[order[i - 1]], *b = &l->entries[order[i]];
        if (a->offset + a->size > b->offset) {
            show_name(a, name, sizeof name);
            show_name(b, prev_name, sizeof prev_name);
            free(order);
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%s: tensors '%s' (data at offset %llu, %llu bytes) and '%s' (data "
                                "at offset %llu) overlap",
                                path, name, (unsigned long long)(end + a->offset),
                                (unsigned long long)a->size, prev_name,
                                (unsigned long long)(end + b->offset));
        }
    }
    free(order);
    l->data_end = data_end;
    return RF_OK;
}

typedef struct crc_call {
    const uint8_t *data;
    uint64_t n;
    uint32_t crc;
    const rf_file *mapped; /* non-NULL: drop the pages of data once they are summed */
} crc_call;

static rf_status run_crc(void *ctx, rf_error *err)
{
    (void)err;
    crc_call *c = ctx;
    for (uint64_t done = 0; done < c->n;) { /* rf_crc32 takes size_t chunks */
        size_t take = c->n - done > (64u << 20) ? (64u << 20) : (size_t)(c->n - done);
        c->crc = rf_crc32(c->crc, c->data + done, take);
        if (c->mapped != NULL)
            rfi_file_release_range(c->mapped, c->data + done, take);
        done += take;
    }
    return RF_OK;
}

static rf_status scan_footer(const char *path, apr_layout *l, const apr_scan_options *o,
                             rf_error *err)
{
    uint64_t end = l->data_end;
    if (l->size == end + 4) {
        l->footer_present = true;
        l->footer_offset = end;
        l->footer_stored = rf_load_le32(l->image + end);
        if (!o->verify_footer)
            return RF_OK;
        /* the whole mapped file is read: a truncation underneath is an error, not a SIGBUS */
        crc_call call = {l->image, end, 0, l->owned == NULL ? o->mapped : NULL};
        rf_status st = rfi_mapped_guarded(run_crc, &call, err);
        if (st != RF_OK)
            return st;
        uint32_t crc = call.crc;
        l->footer_computed = crc;
        if (crc != l->footer_stored) {
            if (o->strict_checksums)
                return rf_error_set(err, RF_ERR_CHECKSUM,
                                    "%s: footer CRC mismatch (offset %llu): stored 0x%08x, "
                                    "computed 0x%08x over bytes [0, %llu)",
                                    path, (unsigned long long)end, l->footer_stored, crc,
                                    (unsigned long long)end);
            warn(o, "footer CRC mismatch (offset %llu): stored 0x%08x, computed 0x%08x",
                 (unsigned long long)end, l->footer_stored, crc);
        }
        return RF_OK;
    }
    l->footer_offset = end;
    if (l->size == end) {
        warn(o,
             "no footer CRC (the file ends at the padded end of the data, offset %llu), as "
             "realizar-written files do",
             (unsigned long long)end);
        return RF_OK;
    }
    if (l->size < end) {
        warn(o,
             "no footer CRC; the file ends %llu bytes before the padded end of the last "
             "tensor (offset %llu)",
             (unsigned long long)(end - l->size), (unsigned long long)end);
        return RF_OK;
    }
    if (o->strict_layout && l->size - end < 4)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: truncated footer: %llu of its 4 bytes at offset %llu", path,
                            (unsigned long long)(l->size - end), (unsigned long long)end);
    if (o->strict_layout)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: %llu unexpected bytes after the tensor data (offset %llu): "
                            "expected a 4-byte footer CRC or nothing",
                            path, (unsigned long long)(l->size - end), (unsigned long long)end);
    warn(o, "%llu unexpected bytes after the tensor data (offset %llu); footer not identified",
         (unsigned long long)(l->size - end), (unsigned long long)end);
    return RF_OK;
}

void rfi_apr_layout_free(apr_layout *l, const apr_allocator *a)
{
    free(l->entries);
    if (l->owned && a)
        a->release(a->ctx, l->owned);
    memset(l, 0, sizeof *l);
}

rf_status rfi_apr_scan(const char *path, const uint8_t *data, uint64_t size,
                       const apr_scan_options *o, apr_layout *l, rf_error *err)
{
    memset(l, 0, sizeof *l);
    if (size < RF_APR_HEADER_SIZE)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: truncated header: the file has %llu bytes, the APR v2 header "
                            "needs 64 (offset 0)",
                            path, (unsigned long long)size);
    rf_apr_header *h = &l->h;
    rf_apr_header_decode(data, RF_APR_HEADER_SIZE, h, NULL);
    if (memcmp(h->magic, "APR\0", 4) == 0) {
        if (data[4] == 1 && data[5] == 0 && data[6] == 0 && data[7] == 0)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: aprender-tsp model, not APR v2 (offset 4: version 1, model "
                                "type 0x%08x at offset 8)",
                                path, rf_load_le32(data + 8));
    } else if (memcmp(h->magic, "APR2", 4) == 0) {
        l->old_magic = true;
        warn(o, "old magic \"APR2\" (the first v2 module); the current aprender refuses it");
    } else {
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: not an APR v2 file (offset 0): expected magic 41 50 52 00, "
                            "found %02x %02x %02x %02x",
                            path, data[0], data[1], data[2], data[3]);
    }
    l->header_crc = rf_apr_header_crc(data);
    if (l->header_crc != h->checksum) {
        if (o->strict_checksums)
            return rf_error_set(err, RF_ERR_CHECKSUM,
                                "%s: header CRC mismatch (offset 40): stored 0x%08x, computed "
                                "0x%08x over bytes [0, 40) and [44, 64)",
                                path, h->checksum, l->header_crc);
        warn(o, "header CRC mismatch (offset 40): stored 0x%08x, computed 0x%08x", h->checksum,
             l->header_crc);
    }
    if (h->version_major != 2) {
        if (o->strict_layout)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: APR version %u.%u (offset 4): expected major version 2", path,
                                h->version_major, h->version_minor);
        warn(o, "APR version %u.%u (offset 4): read as 2.0", h->version_major, h->version_minor);
    }
    uint16_t f = h->flags;
    if (f & RF_APR_FLAG_COLUMN_MAJOR) {
        if (o->strict_layout)
            return rf_error_set(
                err, RF_ERR_FORMAT,
                "%s: column-major layout flag 0x0800 is set (flags 0x%04x at offset "
                "6): APR tensors must be row-major (aprender refuses such a file as "
                "a dirty GGUF import)",
                path, f);
        warn(o, "column-major layout flag 0x0800 is set (offset 6); aprender refuses this file");
    }
    if (f & (RF_APR_FLAG_ENCRYPTED | RF_APR_FLAG_SIGNED)) {
        const char *what =
            (f & RF_APR_FLAG_ENCRYPTED) ? "encrypted (flag 0x0004)" : "signed (flag 0x0008)";
        if (o->strict_layout)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: the file is %s (flags 0x%04x at offset 6): that layout is not "
                                "specified and cannot be read",
                                path, what, f);
        warn(o, "the file is %s (offset 6); its layout is unknown, the data may not be usable",
             what);
    }
    if (f & 0xf000)
        warn(o, "undefined flag bits 0x%04x set (offset 6)", f & 0xf000);
    if (!(f & RF_APR_FLAG_ROW_MAJOR) && !(f & RF_APR_FLAG_COLUMN_MAJOR))
        warn(o, "row-major flag 0x0400 absent (offset 6): assumed row-major, as for older aprender "
                "and realizar files");

    l->image = data;
    l->size = size;
    if (f & (RF_APR_FLAG_LZ4 | RF_APR_FLAG_ZSTD)) {
        uint8_t *img;
        uint64_t n;
        rf_status st =
            rfi_apr_decompress(path, f, data + RF_APR_HEADER_SIZE, size - RF_APR_HEADER_SIZE,
                               RF_APR_HEADER_SIZE, o->alloc, &img, &n, err);
        if (st != RF_OK)
            return st;
        memcpy(img, data, RF_APR_HEADER_SIZE);
        l->compressed = true;
        l->owned = img;
        l->image = img;
        l->size = RF_APR_HEADER_SIZE + n;
    }

    /* sections in order: header, metadata, index, data; none may overlap the one before */
    uint64_t meta_end;
    if (h->metadata_offset < RF_APR_HEADER_SIZE)
        return rf_error_set(
            err, RF_ERR_FORMAT,
            "%s: metadata offset %llu (header offset 12) overlaps the 64-byte header", path,
            (unsigned long long)h->metadata_offset);
    if (__builtin_add_overflow(h->metadata_offset, (uint64_t)h->metadata_size, &meta_end) ||
        meta_end > l->size)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: metadata at offset %llu with metadata_size %u (header offset 20) "
                            "extends past the end of the %s (%llu bytes)",
                            path, (unsigned long long)h->metadata_offset, h->metadata_size,
                            l->compressed ? "decompressed image" : "file",
                            (unsigned long long)l->size);
    if (h->tensor_index_offset < meta_end)
        return rf_error_set(
            err, RF_ERR_FORMAT,
            "%s: tensor index offset %llu (header offset 24) overlaps the metadata, "
            "which ends at offset %llu",
            path, (unsigned long long)h->tensor_index_offset, (unsigned long long)meta_end);
    if (h->tensor_index_offset > l->size)
        return rf_error_set(
            err, RF_ERR_FORMAT,
            "%s: tensor index offset %llu (header offset 24) is past the end of the "
            "file (%llu bytes)",
            path, (unsigned long long)h->tensor_index_offset, (unsigned long long)l->size);
    if (h->data_offset < h->tensor_index_offset)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: data offset %llu (header offset 32) is before the tensor index "
                            "offset %llu",
                            path, (unsigned long long)h->data_offset,
                            (unsigned long long)h->tensor_index_offset);
    if (h->data_offset > l->size)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: data offset %llu (header offset 32) is past the end of the file "
                            "(%llu bytes): truncated",
                            path, (unsigned long long)h->data_offset, (unsigned long long)l->size);
    if (h->data_offset % RF_APR_ALIGNMENT)
        warn(o, "data offset %llu (header offset 32) is not a multiple of 64",
             (unsigned long long)h->data_offset);
    rf_status st = scan_index(path, l, o, err);
    if (st == RF_OK)
        st = scan_footer(path, l, o, err);
    return st;
}

/* ---- checksum report ------------------------------------------------------------------------ */

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

static rf_status checksums(const char *name, const uint8_t *data, uint64_t size,
                           rf_apr_checksums *out, rf_error *err)
{
    memset(out, 0, sizeof *out);
    apr_scan_options o = {.verify_footer = true, .alloc = &HEAP};
    apr_layout l;
    rf_status st = rfi_apr_scan(name, data, size, &o, &l, err);
    if (st == RF_OK) {
        out->header_stored = l.h.checksum;
        out->header_computed = l.header_crc;
        out->header_valid = l.h.checksum == l.header_crc;
        out->compressed = l.compressed;
        out->footer_present = l.footer_present;
        out->footer_offset = l.footer_offset;
        out->footer_stored = l.footer_stored;
        out->footer_computed = l.footer_computed;
        out->footer_valid = l.footer_present && l.footer_stored == l.footer_computed;
    }
    rfi_apr_layout_free(&l, &HEAP);
    return st;
}

rf_status rf_apr_checksums_bytes(const uint8_t *data, uint64_t size, rf_apr_checksums *out,
                                 rf_error *err)
{
    return checksums("<memory>", data, size, out, err);
}

/* The mapped first source file of an APR model. */
static const rf_file *apr_file(const rf_model *m, rf_error *err)
{
    const rf_file *f = m && rf_format_is_apr(rf_model_format(m)) ? rf_model_file(m, 0) : NULL;
    if (!f)
        rf_error_set(err, RF_ERR_ARGUMENT, "the model was not read from an APR file");
    return f;
}

rf_status rf_apr_model_header(const rf_model *m, rf_apr_header *out, uint32_t *crc, rf_error *err)
{
    const rf_file *f = apr_file(m, err);
    if (!f)
        return RF_ERR_ARGUMENT;
    rf_status st = rf_apr_header_decode(rf_file_data(f), rf_file_size(f), out, err);
    if (st == RF_OK && crc)
        *crc = rf_apr_header_crc(rf_file_data(f));
    return st;
}

rf_status rf_apr_model_checksums(const rf_model *m, rf_apr_checksums *out, rf_error *err)
{
    memset(out, 0, sizeof *out);
    const rf_file *f = apr_file(m, err);
    if (!f)
        return RF_ERR_ARGUMENT;
    return checksums(rf_file_path(f), rf_file_data(f), rf_file_size(f), out, err);
}

static const struct {
    uint16_t bit;
    const char *name;
} APR_FLAG_NAMES[] = {
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

const char *rf_apr_flag_name(uint16_t bit)
{
    for (size_t i = 0; i < sizeof APR_FLAG_NAMES / sizeof APR_FLAG_NAMES[0]; i++)
        if (APR_FLAG_NAMES[i].bit == bit)
            return APR_FLAG_NAMES[i].name;
    return NULL;
}

rf_status rf_apr_checksums_path(const char *path, rf_apr_checksums *out, rf_error *err)
{
    memset(out, 0, sizeof *out);
    rf_file *f = rf_file_open(path, err);
    if (!f)
        return RF_ERR_IO;
    rf_status st = checksums(path, rf_file_data(f), rf_file_size(f), out, err);
    rf_file_close(f);
    return st;
}
