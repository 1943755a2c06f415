/* APR v2 reader: builds the model view from a scanned file (docs/formats/apr.md).
 * Lenient where real files differ (APR2 magic, no footer, no row-major flag, GGUF names, alias
 * keys, legacy dtype codes 8/9, GGML codes in realizar-written files), strict where safety is at
 * stake (bounds, overlaps, sizes, unknown dtypes, index order, column-major flag, checksums
 * unless opts->lenient). Tensor data stays in the mapped file (or in the decompressed image). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_internal.h"
#include "io_internal.h"
#include "model_internal.h"

static void *arena_alloc(void *ctx, size_t n) { return rf_model_alloc(ctx, n); }
static void arena_release(void *ctx, void *p)
{
    (void)ctx;
    (void)p; /* arena memory is freed with the model */
}

/* The dtype a code means in this file (docs/formats/apr.md). note explains a non-current meaning.
 */
static bool map_dtype(uint8_t code, bool old_magic, bool realizar, rf_dtype *out, const char **note)
{
    *note = NULL;
    if (old_magic && code == 2) {
        *out = RF_DTYPE_BF16;
        *note = "legacy BF16 code 2 of the APR2-era module";
        return true;
    }
    if (realizar) {
        switch (code) {
        case 2: *out = RF_DTYPE_Q4_0; break;
        case 3: *out = RF_DTYPE_Q4_1; break;
        case 6: *out = RF_DTYPE_Q5_0; break;
        case 7: *out = RF_DTYPE_Q5_1; break;
        case 8: *out = RF_DTYPE_Q8_0; break;
        case 13: *out = RF_DTYPE_Q5_K; break;
        default: goto aprender;
        }
        *note = "GGML code in a realizar-written APR file, read with its GGML meaning";
        return true;
    }
aprender:
    if (code == 8 || code == 9)
        *note = code == 8 ? "legacy code 8 of APR_Q4" : "legacy code 9 of APR_Q8";
    return rf_dtype_from_apr(code, out);
}

static void shape_text(const uint64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? ", " : "",
                              (unsigned long long)shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

/* Tied embeddings (docs/formats/apr.md): the flag, else lm_head missing (realizar's fallback), else
 * lm_head byte-identical to the embedding. */
static void detect_tie(rf_model *m)
{
    rf_model_config *c = rf_model_config_mut(m);
    if (c->tie_word_embeddings != -1)
        return;
    static const char *const heads[] = {"lm_head.weight", "output.weight"};
    static const char *const embeds[] = {"model.embed_tokens.weight", "embed_tokens.weight",
                                         "token_embd.weight", "tok_embeddings.weight"};
    const rf_tensor *head = NULL, *embed = NULL;
    for (size_t i = 0; i < 2 && !head; i++)
        head = rf_model_find_tensor(m, heads[i]);
    for (size_t i = 0; i < 4 && !embed; i++)
        embed = rf_model_find_tensor(m, embeds[i]);
    if (!embed)
        return;
    if (!head) {
        c->tie_word_embeddings = 1;
        return;
    }
    c->tie_word_embeddings = head->dtype == embed->dtype && head->nbytes == embed->nbytes &&
                             head->ndim == embed->ndim && head->nbytes > 0 &&
                             memcmp(head->shape, embed->shape, sizeof head->shape) == 0 &&
                             memcmp(head->data, embed->data, (size_t)head->nbytes) == 0;
}

static rf_status add_tensors(rf_model *m, const char *path, const apr_layout *l, bool lenient,
                             const char *model_type, uint32_t source, rf_error *err)
{
    bool realizar = (model_type && strcmp(model_type, "transformer_lm_q4k") == 0) ||
                    (l->h.flags == RF_APR_FLAG_QUANTIZED && !l->footer_present);
    if (realizar)
        rf_model_add_warning(m,
                             "file identified as realizar-written (%s): dtype codes 2, 3, 6, 7, 8 "
                             "and 13 take their GGML meaning",
                             model_type && strcmp(model_type, "transformer_lm_q4k") == 0
                                 ? "model_type transformer_lm_q4k"
                                 : "flags 0x0020 and no footer");
    const char *last_note = NULL;
    size_t noted = 0;
    char *name = malloc(65536);
    if (!name)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
    rf_status st = RF_OK;
    for (uint32_t i = 0; i < l->n_entries && st == RF_OK; i++) {
        const apr_entry *e = &l->entries[i];
        memcpy(name, e->name, e->name_len);
        name[e->name_len] = '\0';
        rf_tensor t = {.name = name, .ndim = e->ndim, .source = source};
        memcpy(t.shape, e->shape, sizeof t.shape);
        const char *note;
        if (!map_dtype(e->code, l->old_magic, realizar, &t.dtype, &note)) {
            if (!lenient) {
                st =
                    rf_error_set(err, RF_ERR_FORMAT,
                                 "%s: tensor '%s' (index entry at offset %llu): unknown dtype code "
                                 "%u at offset %llu (APR v2 codes: 0 F32, 1 F16, 3 F64, 4 I32, 5 "
                                 "I64, 6 I8, 7 U8, 12 Q4_K, 14 Q6_K, 30 BF16, 128 APR_Q4, 129 "
                                 "APR_Q8; legacy 8, 9)",
                                 path, name, (unsigned long long)e->entry_offset, e->code,
                                 (unsigned long long)(e->entry_offset + 2 + e->name_len));
                break;
            }
            rf_model_add_warning(m,
                                 "tensor '%s' (index entry at offset %llu): unknown dtype code "
                                 "%u; tensor skipped",
                                 name, (unsigned long long)e->entry_offset, e->code);
            continue;
        }
        if (note) {
            if (note != last_note) {
                rf_model_add_warning(m, "tensor '%s': dtype code %u read as %s (%s)", name, e->code,
                                     rf_dtype_name(t.dtype), note);
                last_note = note;
            }
            noted++;
        }
        uint64_t expected;
        rf_error size_err;
        char shape[256];
        shape_text(e->shape, e->ndim, shape, sizeof shape);
        rf_status sst = rf_apr_tensor_bytes(t.dtype, e->shape, e->ndim, &expected, &size_err);
        if (sst == RF_OK && expected != e->size) {
            sst = RF_ERR_FORMAT;
            snprintf(size_err.message, sizeof size_err.message,
                     "%llu bytes stored (offset %llu), but %s with shape %s needs %llu",
                     (unsigned long long)e->size,
                     (unsigned long long)(e->entry_offset + 4 + e->name_len + 8u * e->ndim + 8),
                     rf_dtype_name(t.dtype), shape, (unsigned long long)expected);
        }
        if (sst != RF_OK) {
            if (!lenient) {
                st = rf_error_set(err, sst == RF_ERR_OVERFLOW ? RF_ERR_OVERFLOW : RF_ERR_FORMAT,
                                  "%s: tensor '%s' (index entry at offset %llu): %s", path, name,
                                  (unsigned long long)e->entry_offset, size_err.message);
                break;
            }
            rf_model_add_warning(m, "tensor '%s' (index entry at offset %llu): %s; tensor skipped",
                                 name, (unsigned long long)e->entry_offset, size_err.message);
            continue;
        }
        t.file_offset = l->h.data_offset + e->offset;
        t.data = l->image + t.file_offset;
        t.nbytes = e->size;
        uint64_t row_bytes;
        t.row_stride = rf_apr_tensor_row_padded(&t, &row_bytes) ? row_bytes : 0;
        st = rf_model_add_tensor(m, &t, err);
        if (st != RF_OK)
            rf_error_prefix(err, "%s", path);
    }
    if (noted > 1)
        rf_model_add_warning(m, "%zu tensors use non-current dtype codes", noted);
    free(name);
    return st;
}

rf_model *rf_apr_open_model(const char *path, const rf_open_options *opts, rf_error *err)
{
    return rf_apr_open(path, opts, NULL, err);
}

rf_model *rf_apr_open(const char *path, const rf_open_options *opts,
                      const rf_apr_open_options *apr_opts, rf_error *err)
{
    rf_file *file = rf_file_open(path, err);
    if (!file)
        return NULL;
    return rfi_apr_open_file(file, path, opts, apr_opts, err);
}

/* The reading of a mapped APR file: layout, metadata, tensor entries. */
typedef struct parse_call {
    rf_model *m;
    const char *path;
    const uint8_t *data;
    uint64_t size;
    const apr_scan_options *so;
    bool lenient;
    uint32_t source;
    apr_layout *l;
} parse_call;

static rf_status run_parse(void *ctx, rf_error *err)
{
    parse_call *c = ctx;
    rf_status st = rfi_apr_scan(c->path, c->data, c->size, c->so, c->l, err);
    if (st == RF_OK)
        st = rf_model_set_path(c->m, c->path, err);
    const char *model_type = NULL;
    if (st == RF_OK) {
        st =
            rfi_apr_metadata_read(c->m, c->l->image + c->l->h.metadata_offset,
                                  c->l->h.metadata_size, c->l->h.metadata_offset, &model_type, err);
        if (st != RF_OK)
            rf_error_prefix(err, "%s", c->path);
    }
    if (st == RF_OK)
        st = add_tensors(c->m, c->path, c->l, c->lenient, model_type, c->source, err);
    return st;
}

rf_model *rfi_apr_open_file(rf_file *file, const char *path, const rf_open_options *opts,
                            const rf_apr_open_options *apr_opts, rf_error *err)
{
    static const rf_open_options defaults = {0};
    static const rf_apr_open_options apr_defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!apr_opts)
        apr_opts = &apr_defaults;
    const uint8_t *data = rf_file_data(file);
    uint64_t size = rf_file_size(file);
    rf_format format =
        size >= 4 && memcmp(data, "APR2", 4) == 0 ? RF_FORMAT_APR2_MAGIC : RF_FORMAT_APR;
    rf_model *m = rf_model_new(format, err);
    if (!m) {
        rf_file_close(file);
        return NULL;
    }
    uint32_t source;
    if (rf_model_add_file(m, file, &source, err) != RF_OK) {
        rf_file_close(file);
        rf_model_free(m);
        return NULL;
    }
    apr_allocator arena = {arena_alloc, arena_release, m};
    apr_scan_options so = {
        .strict_checksums = !opts->lenient,
        .strict_layout = !opts->lenient,
        .verify_footer = !apr_opts->skip_footer_crc,
        .mapped = file,
        .warnings = m,
        .alloc = &arena,
    };
    apr_layout l;
    memset(&l, 0, sizeof l);
    /* the file is mapped: a truncation underneath while it is read is an error, not a SIGBUS
     * (what was allocated is the model's or the layout's, freed below) */
    parse_call call = {m, path, data, size, &so, opts->lenient, source, &l};
    rf_status st = rfi_mapped_guarded(run_parse, &call, err);
    if (st == RF_OK) {
        rf_model_set_format_version(m, (uint32_t)l.h.version_major * 100u + l.h.version_minor);
        rfi_apr_metadata_config(m);
        detect_tie(m);
        st = rfi_model_use_architecture(m, opts->architecture, err);
    }
    rfi_apr_layout_free(&l, &arena);
    if (st != RF_OK) {
        rf_model_free(m);
        return NULL;
    }
    return m;
}
