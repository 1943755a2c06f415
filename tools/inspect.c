/* apr-inspect: what a model file holds (format, sizes, dtypes, typed config, tokenizer, raw
 * metadata, damage), read from the headers only. Not for tensor values: see apr-tensors --stats. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosetta/apr.h"
#include "rosetta/convert.h"
#include "rosetta/gguf.h"
#include "rosetta/model.h"

static const cli_tool TOOL = {
    "inspect", "show a model file's format, config, tokenizer and metadata (headers only)",
    "usage: apr inspect [--json] [--full] [--checksums] [--arch NAME] FILE\n\n"
    "Prints the format and version, file size, tensor and parameter counts, the dtype histogram,\n"
    "the typed model config, a tokenizer summary, every metadata key with its type, and the\n"
    "problems found. Only headers are read, so large files take milliseconds; whole-file\n"
    "checksums (APR footer) are verified for files up to 64 MiB or with --checksums.\n\n"
    "FILE is a GGUF, APR or SafeTensors file, a SafeTensors directory or index. A damaged file\n"
    "is shown as far as it can be read; its problems go to stderr and the exit code is 3.\n\n"
    "Options:\n"
    "      --json       print one JSON object (schema in docs/tools.md)\n"
    "      --full       print long arrays and strings in full instead of their first items\n"
    "      --checksums  verify checksums that cover the whole file (APR footer CRC-32) even\n"
    "                   when it is large; files up to 64 MiB are always verified\n"
    "      --arch NAME  read FILE as architecture NAME: a GGUF without general.architecture\n"
    "                   gets its config from the NAME.* keys (docs/reliability.md)\n"};

/* Items shown of a long array and characters of a long string, unless --full. */
#define ARRAY_PREVIEW      6
#define STRING_PREVIEW     60
#define JSON_ARRAY_PREVIEW 16
/* JSON metadata values longer than this are cut to JSON_ARRAY_PREVIEW members per level. */
#define JSON_TEXT_PREVIEW 8192
#define MAX_VALUE_DEPTH   8
/* Warnings printed on stderr unless --full; --json lists them all. */
#define MAX_WARNINGS 10

/* ---- a growable string --------------------------------------------------------------------- */

typedef struct text {
    char *buf;
    size_t len, cap;
    bool failed;
} text;

static bool text_reserve(text *t, size_t extra)
{
    if (t->failed)
        return false;
    if (t->len + extra + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            t->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *grown = realloc(t->buf, cap);
    if (!grown) {
        t->failed = true;
        return false;
    }
    t->buf = grown;
    t->cap = cap;
    return true;
}

static void text_add(text *t, const char *s)
{
    size_t n = strlen(s);
    if (!text_reserve(t, n))
        return;
    memcpy(t->buf + t->len, s, n + 1);
    t->len += n;
}

static void text_quote(text *t, const char *s, size_t len, size_t max_chars)
{
    /* cli_quote writes at most 4 bytes per input byte plus quotes and "...". */
    size_t shown = max_chars && max_chars < len ? max_chars : len;
    if (shown > (SIZE_MAX - 16) / 4 || !text_reserve(t, shown * 4 + 16))
        return;
    t->len = cli_quote(t->buf, t->cap, t->len, s, len, max_chars);
}

/* ---- model summary ------------------------------------------------------------------------ */

typedef struct dtype_row {
    const char *name;
    uint64_t tensors, parameters, bytes;
} dtype_row;

typedef struct summary {
    uint64_t parameters;
    bool parameters_overflow;
    dtype_row rows[64];
    size_t n_rows;
    bool has_data_offset;
    uint64_t data_offset; /* GGUF: start of the data section; others: the lowest tensor offset */
    bool has_gguf;        /* GGUF layout facts (absent when the header cannot be walked) */
    rf_gguf_layout gguf;
    bool has_apr; /* APR header facts (absent when the header cannot be decoded) */
    rf_apr_header apr;
    uint32_t apr_header_crc; /* computed over the stored header */
    bool apr_footer_checked; /* --checksums: apr_sums holds the footer result */
    rf_apr_checksums apr_sums;
    rf_error apr_footer_err; /* why the footer could not be checked */
} summary;

static int compare_rows(const void *a, const void *b)
{
    const dtype_row *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* APR facts: the 64-byte header as stored (it is never compressed) and its CRC; with
 * verify_whole_file, also the footer CRC, which covers every byte of the file. */
static void summarize_apr(const rf_model *m, summary *s, bool verify_whole_file)
{
    if (rf_apr_model_header(m, &s->apr, &s->apr_header_crc, NULL) != RF_OK)
        return;
    s->has_apr = true;
    s->has_data_offset = !(s->apr.flags & (RF_APR_FLAG_LZ4 | RF_APR_FLAG_ZSTD));
    s->data_offset = s->apr.data_offset;
    if (verify_whole_file) {
        s->apr_footer_checked = true;
        rf_error_clear(&s->apr_footer_err);
        rf_apr_model_checksums(m, &s->apr_sums, &s->apr_footer_err);
    }
}

static void summarize(const rf_model *m, summary *s, bool verify_whole_file)
{
    memset(s, 0, sizeof *s);
    size_t n = rf_model_n_tensors(m);
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        uint64_t elems = 0;
        if (rf_shape_elements(t->shape, t->ndim, &elems, NULL) != RF_OK ||
            __builtin_add_overflow(s->parameters, elems, &s->parameters))
            s->parameters_overflow = true;
        const char *name = rf_dtype_name(t->dtype);
        size_t r = 0;
        while (r < s->n_rows && strcmp(s->rows[r].name, name) != 0)
            r++;
        if (r == s->n_rows && s->n_rows < sizeof s->rows / sizeof s->rows[0])
            s->rows[s->n_rows++] = (dtype_row){name, 0, 0, 0};
        if (r < s->n_rows) {
            /* Sums saturate: a damaged file opened leniently may claim absurd sizes. */
            dtype_row *row = &s->rows[r];
            row->tensors++;
            if (__builtin_add_overflow(row->parameters, elems, &row->parameters))
                row->parameters = UINT64_MAX;
            if (__builtin_add_overflow(row->bytes, t->nbytes, &row->bytes))
                row->bytes = UINT64_MAX;
        }
        if (t->nbytes > 0 && (!s->has_data_offset || t->file_offset < s->data_offset)) {
            s->has_data_offset = true;
            s->data_offset = t->file_offset;
        }
    }
    qsort(s->rows, s->n_rows, sizeof s->rows[0], compare_rows);
    if (rf_model_n_files(m) > 1)
        s->has_data_offset = false; /* each shard has its own */
    if (rf_model_format(m) == RF_FORMAT_GGUF && rf_gguf_model_layout(m, &s->gguf, NULL) == RF_OK) {
        s->has_gguf = true;
        s->has_data_offset = true;
        s->data_offset = s->gguf.data_offset;
    }
    if (rf_format_is_apr(rf_model_format(m)))
        summarize_apr(m, s, verify_whole_file);
}

/* The file is damaged in a way only --checksums finds: the footer was checked and is wrong. */
static bool footer_mismatch(const summary *s)
{
    return s->apr_footer_checked && s->apr_footer_err.status == RF_OK &&
           s->apr_sums.footer_present && !s->apr_sums.footer_valid;
}

static void apr_flag_names(uint16_t flags, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned bit = 1; bit < 0x1000u; bit <<= 1)
        if ((flags & bit) && rf_apr_flag_name((uint16_t)bit) && used < size)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                                     rf_apr_flag_name((uint16_t)bit));
    unsigned unknown = flags & 0xF000u;
    if (unknown && used < size)
        snprintf(buf + used, size - used, "%sundefined bits 0x%04x", used ? ", " : "", unknown);
}

/* Config floats that came from a float32 (GGUF f32 keys) print as that float32's shortest
 * text (1e-06, not 9.9999999747524271e-07). */
static bool is_float32(double v) { return (double)(float)v == v; }

/* Token text of id, or NULL if the tokenizer has no such id. */
static const char *token_text(const rf_tokenizer *tok, int64_t id)
{
    if (!tok || id < 0 || (uint64_t)id >= tok->n_tokens || !tok->tokens)
        return NULL;
    return tok->tokens[id];
}

static uint64_t count_token_type(const rf_tokenizer *tok, int32_t type)
{
    uint64_t n = 0;
    if (tok->token_types)
        for (uint64_t i = 0; i < tok->n_tokens; i++)
            n += tok->token_types[i] == type;
    return n;
}

/* ---- human output ------------------------------------------------------------------------- */

/* Appends a one-line rendering of v: strings quoted, arrays as "[type × N] a, b, ...". */
static void render_value(text *out, const rf_value *v, bool full, int depth)
{
    char num[64];
    switch (v->type) {
    case RF_VALUE_U8:
    case RF_VALUE_U16:
    case RF_VALUE_U32:
    case RF_VALUE_U64:
        snprintf(num, sizeof num, "%" PRIu64, v->as.u);
        text_add(out, num);
        return;
    case RF_VALUE_I8:
    case RF_VALUE_I16:
    case RF_VALUE_I32:
    case RF_VALUE_I64:
        snprintf(num, sizeof num, "%" PRId64, v->as.i);
        text_add(out, num);
        return;
    case RF_VALUE_F32:
    case RF_VALUE_F64:
        text_add(out, cli_shortest(v->as.f, v->type == RF_VALUE_F32, num, sizeof num));
        return;
    case RF_VALUE_BOOL: text_add(out, v->as.b ? "true" : "false"); return;
    case RF_VALUE_STRING:
        text_quote(out, v->as.str.data, v->as.str.len, full ? 0 : STRING_PREVIEW);
        return;
    case RF_VALUE_JSON: {
        /* Compact JSON text; shown raw (it is already escaped JSON), cut unless --full. */
        size_t len = v->as.str.len;
        size_t shown = full || len <= STRING_PREVIEW ? len : STRING_PREVIEW;
        if (!text_reserve(out, shown + 4))
            return;
        for (size_t i = 0; i < shown; i++) {
            unsigned char c = (unsigned char)v->as.str.data[i];
            out->buf[out->len++] = c < 0x20 ? ' ' : (char)c;
        }
        out->buf[out->len] = '\0';
        if (shown < len)
            text_add(out, "...");
        return;
    }
    case RF_VALUE_ARRAY: {
        uint64_t n = v->as.arr.count;
        snprintf(num, sizeof num, "[%s \xC3\x97 %" PRIu64 "]",
                 rf_value_type_name(v->as.arr.elem_type), n);
        text_add(out, num);
        if (depth >= MAX_VALUE_DEPTH) {
            text_add(out, " ...");
            return;
        }
        uint64_t shown = full || n <= ARRAY_PREVIEW ? n : ARRAY_PREVIEW;
        for (uint64_t i = 0; i < shown; i++) {
            text_add(out, i ? ", " : " ");
            render_value(out, &v->as.arr.items[i], full, depth + 1);
        }
        if (shown < n)
            text_add(out, ", ...");
        return;
    }
    }
    text_add(out, "?");
}

static void add_row2(cli_table *t, const char *key, const char *value)
{
    const char *cells[2] = {key, value ? value : "-"};
    cli_table_add(t, cells);
}

static void print_header(const rf_model *m, const char *path, const summary *s)
{
    char a[64], b[64], line[1200];
    cli_table *t = cli_table_new(2, "ll");
    if (!t)
        return;
    add_row2(t, "file", path);
    snprintf(line, sizeof line, "%s (%s)", rf_format_name(rf_model_format(m)),
             rf_format_description(rf_model_format(m)));
    add_row2(t, "format", line);
    add_row2(t, "version",
             rf_format_version_text(rf_model_format(m), rf_model_format_version(m), a, sizeof a));
    uint64_t size = rf_model_file_size(m);
    size_t n_files = rf_model_n_files(m);
    snprintf(line, sizeof line, "%s (%s bytes)%s", cli_human_bytes(size, a, sizeof a),
             cli_thousands(size, b, sizeof b), n_files > 1 ? " in several files" : "");
    add_row2(t, "file size", line);
    if (n_files > 1)
        for (size_t i = 0; i < n_files; i++) {
            snprintf(line, sizeof line, "%s (%s bytes)", rf_model_source_path(m, i),
                     cli_thousands(rf_model_source_size(m, i), a, sizeof a));
            add_row2(t, i == 0 ? "files" : "", line);
        }
    add_row2(t, "tensors", cli_thousands(rf_model_n_tensors(m), a, sizeof a));
    if (s->parameters_overflow)
        add_row2(t, "parameters", "overflow (a shape product does not fit in 64 bits)");
    else {
        snprintf(line, sizeof line, "%s", cli_thousands(s->parameters, a, sizeof a));
        add_row2(t, "parameters", line);
    }
    if (s->has_data_offset) {
        snprintf(line, sizeof line, "%s (0x%" PRIx64 ")",
                 cli_thousands(s->data_offset, a, sizeof a), s->data_offset);
        add_row2(t, "data offset", line);
    }
    const rf_kv *ftype =
        rf_model_format(m) == RF_FORMAT_GGUF ? rf_model_find_kv(m, "general.file_type") : NULL;
    uint64_t ftype_value;
    if (ftype && rf_value_as_u64(&ftype->value, &ftype_value)) {
        const char *name = rf_gguf_file_type_name(ftype_value);
        snprintf(line, sizeof line, "%s (general.file_type %" PRIu64 ")",
                 name ? name : "unknown to llama.cpp", ftype_value);
        add_row2(t, "file type", line);
    }
    if (s->has_gguf) {
        snprintf(line, sizeof line, "%" PRIu32, s->gguf.alignment);
        add_row2(t, "alignment", line);
        add_row2(t, "byte order", s->gguf.big_endian ? "big-endian" : "little-endian");
        snprintf(line, sizeof line, "%s (0x%" PRIx64 ")",
                 cli_thousands(s->gguf.tensor_info_offset, a, sizeof a),
                 s->gguf.tensor_info_offset);
        add_row2(t, "tensor infos at", line);
    }
    if (s->has_apr) {
        char names[256];
        apr_flag_names(s->apr.flags, names, sizeof names);
        snprintf(line, sizeof line, "0x%04x%s%s%s", s->apr.flags, names[0] ? " (" : "", names,
                 names[0] ? ")" : "");
        add_row2(t, "flags", line);
        snprintf(line, sizeof line, "%s bytes at %" PRIu64,
                 cli_thousands(s->apr.metadata_size, a, sizeof a), s->apr.metadata_offset);
        add_row2(t, "metadata", line);
        snprintf(line, sizeof line, "%s (0x%" PRIx64 ")",
                 cli_thousands(s->apr.tensor_index_offset, a, sizeof a),
                 s->apr.tensor_index_offset);
        add_row2(t, "tensor index at", line);
        if (s->apr.checksum == s->apr_header_crc)
            snprintf(line, sizeof line, "0x%08x valid", s->apr.checksum);
        else
            snprintf(line, sizeof line, "MISMATCH: stored 0x%08x, computed 0x%08x", s->apr.checksum,
                     s->apr_header_crc);
        add_row2(t, "header CRC", line);
        const rf_apr_checksums *c = &s->apr_sums;
        if (!s->apr_footer_checked)
            snprintf(line, sizeof line, "not checked (%s file; --checksums reads it all)",
                     cli_human_bytes(rf_model_file_size(m), a, sizeof a));
        else if (s->apr_footer_err.status != RF_OK)
            snprintf(line, sizeof line, "cannot be checked: %s", s->apr_footer_err.message);
        else if (!c->footer_present)
            snprintf(line, sizeof line, "absent (no footer at offset %" PRIu64 ")",
                     c->footer_offset);
        else if (c->footer_valid)
            snprintf(line, sizeof line, "0x%08x valid", c->footer_stored);
        else
            snprintf(line, sizeof line,
                     "MISMATCH at offset %" PRIu64 ": stored 0x%08x, computed 0x%08x",
                     c->footer_offset, c->footer_stored, c->footer_computed);
        add_row2(t, "footer CRC", line);
    }
    cli_table_print(t, stdout, "");
    cli_table_free(t);
}

static void print_dtypes(const summary *s)
{
    if (s->n_rows == 0)
        return;
    printf("\ndtypes\n");
    cli_table *t = cli_table_new(4, "lrrr");
    if (!t)
        return;
    const char *head[4] = {"dtype", "tensors", "parameters", "bytes"};
    cli_table_add(t, head);
    for (size_t i = 0; i < s->n_rows; i++) {
        char a[32], b[32], c[32], d[32], e[64];
        snprintf(e, sizeof e, "%s (%s)", cli_thousands(s->rows[i].bytes, c, sizeof c),
                 cli_human_bytes(s->rows[i].bytes, d, sizeof d));
        const char *cells[4] = {s->rows[i].name, cli_thousands(s->rows[i].tensors, a, sizeof a),
                                cli_thousands(s->rows[i].parameters, b, sizeof b), e};
        cli_table_add(t, cells);
    }
    cli_table_print(t, stdout, "  ");
    cli_table_free(t);
}

static const char *u64_or_dash(uint64_t v, char *buf, size_t size)
{
    if (v == 0)
        return NULL;
    snprintf(buf, size, "%" PRIu64, v);
    return buf;
}

static const char *id_text(const rf_tokenizer *tok, int64_t id, char *buf, size_t size)
{
    if (id < 0)
        return NULL;
    size_t used = (size_t)snprintf(buf, size, "%" PRId64, id);
    const char *s = token_text(tok, id);
    if (s && used + 2 < size) {
        buf[used++] = ' ';
        buf[used] = '\0';
        cli_quote(buf, size, used, s, strlen(s), 40);
    }
    return buf;
}

/* Whether the reader found any configuration at all (a damaged file may yield none). */
static bool config_known(const rf_model_config *c)
{
    return c->architecture || c->name || c->hidden_size || c->n_layers || c->n_heads ||
           c->n_kv_heads || c->head_dim || c->intermediate_size || c->vocab_size ||
           c->context_length || c->rope_theta != 0 || c->rope_type != RF_ROPE_UNKNOWN ||
           c->rms_norm_eps != 0 || c->tie_word_embeddings >= 0 || c->bos_token_id >= 0 ||
           c->eos_token_id >= 0 || c->pad_token_id >= 0 || c->chat_template;
}

static void print_config(const rf_model *m, bool full)
{
    const rf_model_config *c = rf_model_config_get(m);
    const rf_tokenizer *tok = rf_model_tokenizer(m);
    char buf[256];
    printf("\nconfig\n");
    if (!config_known(c)) {
        printf("  none\n");
        return;
    }
    cli_table *t = cli_table_new(2, "ll");
    if (!t)
        return;
    add_row2(t, "architecture", c->architecture);
    add_row2(t, "name", c->name);
    add_row2(t, "hidden_size", u64_or_dash(c->hidden_size, buf, sizeof buf));
    add_row2(t, "n_layers", u64_or_dash(c->n_layers, buf, sizeof buf));
    add_row2(t, "n_heads", u64_or_dash(c->n_heads, buf, sizeof buf));
    add_row2(t, "n_kv_heads", u64_or_dash(c->n_kv_heads, buf, sizeof buf));
    add_row2(t, "head_dim", u64_or_dash(c->head_dim, buf, sizeof buf));
    add_row2(t, "intermediate_size", u64_or_dash(c->intermediate_size, buf, sizeof buf));
    add_row2(t, "vocab_size", u64_or_dash(c->vocab_size, buf, sizeof buf));
    add_row2(t, "context_length", u64_or_dash(c->context_length, buf, sizeof buf));
    add_row2(t, "rope_theta",
             c->rope_theta != 0
                 ? cli_shortest(c->rope_theta, is_float32(c->rope_theta), buf, sizeof buf)
                 : NULL);
    add_row2(t, "rope_type", rf_rope_type_name(c->rope_type));
    add_row2(t, "rms_norm_eps",
             c->rms_norm_eps != 0
                 ? cli_shortest(c->rms_norm_eps, is_float32(c->rms_norm_eps), buf, sizeof buf)
                 : NULL);
    add_row2(t, "tie_word_embeddings",
             c->tie_word_embeddings < 0 ? NULL
             : c->tie_word_embeddings   ? "true"
                                        : "false");
    add_row2(t, "bos_token_id", id_text(tok, c->bos_token_id, buf, sizeof buf));
    add_row2(t, "eos_token_id", id_text(tok, c->eos_token_id, buf, sizeof buf));
    add_row2(t, "pad_token_id", id_text(tok, c->pad_token_id, buf, sizeof buf));
    if (c->chat_template && full) {
        text q = {0};
        text_quote(&q, c->chat_template, strlen(c->chat_template), 0);
        add_row2(t, "chat_template", q.failed ? "(out of memory)" : q.buf);
        free(q.buf);
    } else if (c->chat_template) {
        char n[32];
        snprintf(buf, sizeof buf, "present (%s characters; --full prints it)",
                 cli_thousands(strlen(c->chat_template), n, sizeof n));
        add_row2(t, "chat_template", buf);
    } else {
        add_row2(t, "chat_template", NULL);
    }
    cli_table_print(t, stdout, "  ");
    cli_table_free(t);
}

static void print_tokenizer(const rf_model *m, bool full)
{
    const rf_tokenizer *tok = rf_model_tokenizer(m);
    printf("\ntokenizer\n");
    if (!tok) {
        printf("  none\n");
        return;
    }
    char buf[128];
    cli_table *t = cli_table_new(2, "ll");
    if (!t)
        return;
    add_row2(t, "model", tok->model);
    add_row2(t, "pre", tok->pre);
    add_row2(t, "tokens", cli_thousands(tok->n_tokens, buf, sizeof buf));
    add_row2(t, "merges", cli_thousands(tok->n_merges, buf, sizeof buf));
    add_row2(t, "add_bos", tok->add_bos ? "true" : "false");
    if (tok->token_types) {
        uint64_t control = count_token_type(tok, RF_TOKEN_CONTROL);
        uint64_t user = count_token_type(tok, RF_TOKEN_USER_DEFINED);
        snprintf(buf, sizeof buf, "%" PRIu64 " control, %" PRIu64 " user-defined", control, user);
        add_row2(t, "special tokens", buf);
        /* The control tokens themselves: few in practice, all of them with --full. */
        text list = {0};
        uint64_t shown = 0;
        for (uint64_t i = 0; i < tok->n_tokens; i++) {
            if (tok->token_types[i] != RF_TOKEN_CONTROL)
                continue;
            if (!full && shown == ARRAY_PREVIEW) {
                text_add(&list, ", ...");
                break;
            }
            snprintf(buf, sizeof buf, "%s%" PRIu64 " ", shown ? ", " : "", i);
            text_add(&list, buf);
            const char *s = tok->tokens ? tok->tokens[i] : NULL;
            if (s)
                text_quote(&list, s, strlen(s), 40);
            shown++;
        }
        if (shown)
            add_row2(t, "control", list.failed ? "(out of memory)" : list.buf);
        free(list.buf);
    }
    cli_table_print(t, stdout, "  ");
    cli_table_free(t);
}

static void print_metadata(const rf_model *m, bool full)
{
    size_t n = rf_model_n_kv(m);
    char count[32];
    printf("\nmetadata (%s keys)\n", cli_thousands(n, count, sizeof count));
    cli_table *t = cli_table_new(3, "lll");
    if (!t)
        return;
    for (size_t i = 0; i < n; i++) {
        const rf_kv *kv = rf_model_kv(m, i);
        text key = {0}, value = {0};
        /* Keys come from the file: quote them only when they hold something unprintable. */
        bool plain = true;
        for (const unsigned char *p = (const unsigned char *)kv->key; *p; p++)
            plain &= *p > 0x20 && *p < 0x7F && *p != '"';
        if (plain)
            text_add(&key, kv->key);
        else
            text_quote(&key, kv->key, strlen(kv->key), 0);
        render_value(&value, &kv->value, full, 0);
        uint64_t ftype_value;
        if (rf_model_format(m) == RF_FORMAT_GGUF && strcmp(kv->key, "general.file_type") == 0 &&
            rf_value_as_u64(&kv->value, &ftype_value) && rf_gguf_file_type_name(ftype_value)) {
            text_add(&value, " (");
            text_add(&value, rf_gguf_file_type_name(ftype_value));
            text_add(&value, ")");
        }
        const char *cells[3] = {key.failed ? "?" : key.buf, rf_value_type_name(kv->value.type),
                                value.failed ? "(out of memory)" : value.buf};
        cli_table_add(t, cells);
        free(key.buf);
        free(value.buf);
    }
    cli_table_print(t, stdout, "  ");
    cli_table_free(t);
}

/* Where a converted file came from (rf_model_provenance): one row per field. */
static void print_provenance(const rf_model *m)
{
    char *json = rf_model_provenance(m);
    cJSON *record = json ? cJSON_Parse(json) : NULL;
    free(json);
    if (record == NULL)
        return;
    printf("\nprovenance\n");
    cli_table *t = cli_table_new(2, "ll");
    /* the record's order (APR stores its keys sorted), then anything else */
    static const char *const order[] = {"source",          "source_format", "source_digest",
                                        "rosetta_version", "options",       "created"};
    const size_t n_order = sizeof order / sizeof order[0];
    for (size_t k = 0; t && k <= n_order; k++)
        for (const cJSON *f = record->child; f; f = f->next) {
            bool known = false;
            for (size_t i = 0; i < n_order; i++)
                known |= strcmp(f->string, order[i]) == 0;
            if (k < n_order ? strcmp(f->string, order[k]) == 0 : !known)
                add_row2(t, f->string, cJSON_IsString(f) ? f->valuestring : "?");
        }
    cli_table_print(t, stdout, "  ");
    cli_table_free(t);
    cJSON_Delete(record);
}

static void print_human(const rf_model *m, const char *path, const summary *s, bool full)
{
    print_header(m, path, s);
    print_dtypes(s);
    print_config(m, full);
    print_tokenizer(m, full);
    print_provenance(m);
    print_metadata(m, full);
}

/* ---- JSON output -------------------------------------------------------------------------- */

/* A float as JSON: NaN and infinities as the strings "NaN", "Infinity", "-Infinity". */
static cJSON *json_float(double v, bool single)
{
    if (isnan(v))
        return cJSON_CreateString("NaN");
    if (isinf(v))
        return cJSON_CreateString(v > 0 ? "Infinity" : "-Infinity");
    return cli_json_double(v, single);
}

static cJSON *json_value(const rf_value *v, bool full, int depth);

static cJSON *json_array_items(const rf_value *v, bool full, int depth, uint64_t *shown)
{
    cJSON *items = cJSON_CreateArray();
    uint64_t n = v->as.arr.count;
    *shown = full || n <= JSON_ARRAY_PREVIEW ? n : JSON_ARRAY_PREVIEW;
    if (depth >= MAX_VALUE_DEPTH)
        *shown = 0;
    for (uint64_t i = 0; items && i < *shown; i++)
        cJSON_AddItemToArray(items, json_value(&v->as.arr.items[i], full, depth + 1));
    return items;
}

/* A metadata value as JSON: numbers as numbers (integers beyond 2^53 as strings, non-finite
 * floats as "NaN"/"Infinity"), strings as strings, JSON text parsed, arrays as arrays (nested
 * arrays of arrays keep their first items only unless full). */
static cJSON *json_value(const rf_value *v, bool full, int depth)
{
    switch (v->type) {
    case RF_VALUE_U8:
    case RF_VALUE_U16:
    case RF_VALUE_U32:
    case RF_VALUE_U64: return cli_json_u64(v->as.u);
    case RF_VALUE_I8:
    case RF_VALUE_I16:
    case RF_VALUE_I32:
    case RF_VALUE_I64: return cli_json_i64(v->as.i);
    case RF_VALUE_F32:
    case RF_VALUE_F64: return json_float(v->as.f, v->type == RF_VALUE_F32);
    case RF_VALUE_BOOL: return cJSON_CreateBool(v->as.b);
    case RF_VALUE_STRING: return cli_json_string(v->as.str.data, v->as.str.len);
    case RF_VALUE_JSON: {
        cJSON *parsed = cJSON_ParseWithLength(v->as.str.data, v->as.str.len);
        return parsed ? parsed : cli_json_string(v->as.str.data, v->as.str.len);
    }
    case RF_VALUE_ARRAY: {
        uint64_t shown;
        return json_array_items(v, full, depth, &shown);
    }
    }
    return cJSON_CreateNull();
}

/* Keeps the first JSON_ARRAY_PREVIEW members of every array and object inside node (a whole
 * tokenizer.json kept as metadata would otherwise print megabytes). Returns whether it cut. */
static bool json_prune(cJSON *node)
{
    if (!node || !(cJSON_IsArray(node) || cJSON_IsObject(node)))
        return false;
    bool cut = false;
    cJSON *child = node->child, *last = NULL;
    for (int i = 0; child && i < JSON_ARRAY_PREVIEW; i++) {
        cut |= json_prune(child);
        last = child;
        child = child->next;
    }
    if (child) {
        /* cJSON keeps the last member in child->prev; cJSON_Delete frees a member and all
         * the siblings after it. */
        last->next = NULL;
        node->child->prev = last;
        child->prev = NULL;
        cJSON_Delete(child);
        cut = true;
    }
    return cut;
}

static cJSON *json_metadata(const rf_model *m, bool full)
{
    cJSON *list = cJSON_CreateArray();
    size_t n = rf_model_n_kv(m);
    for (size_t i = 0; list && i < n; i++) {
        const rf_kv *kv = rf_model_kv(m, i);
        cJSON *item = cJSON_CreateObject();
        if (!item)
            break;
        cJSON_AddItemToObject(item, "key", cli_json_string(kv->key, strlen(kv->key)));
        cJSON_AddStringToObject(item, "type", rf_value_type_name(kv->value.type));
        if (kv->value.type == RF_VALUE_ARRAY) {
            uint64_t shown;
            cJSON_AddStringToObject(item, "elem_type",
                                    rf_value_type_name(kv->value.as.arr.elem_type));
            cJSON_AddItemToObject(item, "count", cli_json_u64(kv->value.as.arr.count));
            cJSON_AddItemToObject(item, "value", json_array_items(&kv->value, full, 0, &shown));
            cJSON_AddBoolToObject(item, "truncated", shown < kv->value.as.arr.count);
        } else if (kv->value.type == RF_VALUE_JSON) {
            cJSON *value = json_value(&kv->value, full, 0);
            cJSON_AddItemToObject(item, "value", value);
            bool large = kv->value.as.str.len > JSON_TEXT_PREVIEW;
            cJSON_AddBoolToObject(item, "truncated", !full && large && json_prune(value));
        } else {
            cJSON_AddItemToObject(item, "value", json_value(&kv->value, full, 0));
        }
        uint64_t ftype_value;
        if (rf_model_format(m) == RF_FORMAT_GGUF && strcmp(kv->key, "general.file_type") == 0 &&
            rf_value_as_u64(&kv->value, &ftype_value) && rf_gguf_file_type_name(ftype_value))
            cJSON_AddStringToObject(item, "meaning", rf_gguf_file_type_name(ftype_value));
        cJSON_AddItemToArray(list, item);
    }
    return list;
}

static void add_u64_or_null(cJSON *obj, const char *key, uint64_t v)
{
    cJSON_AddItemToObject(obj, key, v ? cli_json_u64(v) : cJSON_CreateNull());
}

static void add_string_or_null(cJSON *obj, const char *key, const char *s)
{
    cJSON_AddItemToObject(obj, key, s ? cli_json_string(s, strlen(s)) : cJSON_CreateNull());
}

static cJSON *json_special(const rf_tokenizer *tok, int64_t id)
{
    if (id < 0)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "id", cli_json_i64(id));
    add_string_or_null(o, "token", token_text(tok, id));
    return o;
}

static cJSON *json_config(const rf_model *m)
{
    const rf_model_config *c = rf_model_config_get(m);
    const rf_tokenizer *tok = rf_model_tokenizer(m);
    cJSON *o = cJSON_CreateObject();
    add_string_or_null(o, "architecture", c->architecture);
    add_string_or_null(o, "name", c->name);
    add_u64_or_null(o, "hidden_size", c->hidden_size);
    add_u64_or_null(o, "n_layers", c->n_layers);
    add_u64_or_null(o, "n_heads", c->n_heads);
    add_u64_or_null(o, "n_kv_heads", c->n_kv_heads);
    add_u64_or_null(o, "head_dim", c->head_dim);
    add_u64_or_null(o, "intermediate_size", c->intermediate_size);
    add_u64_or_null(o, "vocab_size", c->vocab_size);
    add_u64_or_null(o, "context_length", c->context_length);
    cJSON_AddItemToObject(o, "rope_theta",
                          c->rope_theta != 0 ? json_float(c->rope_theta, is_float32(c->rope_theta))
                                             : cJSON_CreateNull());
    add_string_or_null(o, "rope_type", rf_rope_type_name(c->rope_type));
    cJSON_AddItemToObject(o, "rms_norm_eps",
                          c->rms_norm_eps != 0
                              ? json_float(c->rms_norm_eps, is_float32(c->rms_norm_eps))
                              : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "tie_word_embeddings",
                          c->tie_word_embeddings < 0 ? cJSON_CreateNull()
                                                     : cJSON_CreateBool(c->tie_word_embeddings));
    cJSON_AddItemToObject(o, "bos_token", json_special(tok, c->bos_token_id));
    cJSON_AddItemToObject(o, "eos_token", json_special(tok, c->eos_token_id));
    cJSON_AddItemToObject(o, "pad_token", json_special(tok, c->pad_token_id));
    add_string_or_null(o, "chat_template", c->chat_template);
    return o;
}

static cJSON *json_tokenizer(const rf_model *m, bool full)
{
    const rf_tokenizer *tok = rf_model_tokenizer(m);
    if (!tok)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    add_string_or_null(o, "model", tok->model);
    add_string_or_null(o, "pre", tok->pre);
    cJSON_AddItemToObject(o, "tokens", cli_json_u64(tok->n_tokens));
    cJSON_AddItemToObject(o, "merges", cli_json_u64(tok->n_merges));
    cJSON_AddBoolToObject(o, "add_bos", tok->add_bos);
    if (!tok->token_types) {
        cJSON_AddNullToObject(o, "control_tokens");
        cJSON_AddNullToObject(o, "user_defined_tokens");
        return o;
    }
    cJSON_AddItemToObject(o, "user_defined_tokens",
                          cli_json_u64(count_token_type(tok, RF_TOKEN_USER_DEFINED)));
    cJSON *control = cJSON_CreateArray();
    uint64_t shown = 0;
    for (uint64_t i = 0; control && i < tok->n_tokens; i++) {
        if (tok->token_types[i] != RF_TOKEN_CONTROL)
            continue;
        if (!full && shown == JSON_ARRAY_PREVIEW)
            break;
        cJSON *item = cJSON_CreateObject();
        cJSON_AddItemToObject(item, "id", cli_json_u64(i));
        add_string_or_null(item, "token", tok->tokens ? tok->tokens[i] : NULL);
        cJSON_AddItemToArray(control, item);
        shown++;
    }
    cJSON_AddItemToObject(o, "control_tokens", control);
    cJSON_AddItemToObject(o, "control_token_count",
                          cli_json_u64(count_token_type(tok, RF_TOKEN_CONTROL)));
    return o;
}

static cJSON *json_warnings(const rf_model *m)
{
    cJSON *list = cJSON_CreateArray();
    size_t n = m ? rf_model_n_warnings(m) : 0;
    for (size_t i = 0; list && i < n; i++) {
        const char *w = rf_model_warning(m, i);
        cJSON_AddItemToArray(list, cli_json_string(w, strlen(w)));
    }
    return list;
}

static cJSON *json_checksum(uint32_t stored, uint32_t computed)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "stored", cli_json_u64(stored));
    cJSON_AddItemToObject(o, "computed", cli_json_u64(computed));
    cJSON_AddBoolToObject(o, "valid", stored == computed);
    return o;
}

static cJSON *json_apr(const summary *s)
{
    if (!s->has_apr)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "flags", cli_json_u64(s->apr.flags));
    cJSON *names = cJSON_AddArrayToObject(o, "flag_names");
    for (unsigned bit = 1; names && bit < 0x1000u; bit <<= 1)
        if ((s->apr.flags & bit) && rf_apr_flag_name((uint16_t)bit))
            cJSON_AddItemToArray(names, cJSON_CreateString(rf_apr_flag_name((uint16_t)bit)));
    cJSON_AddBoolToObject(o, "compressed",
                          (s->apr.flags & (RF_APR_FLAG_LZ4 | RF_APR_FLAG_ZSTD)) != 0);
    cJSON_AddItemToObject(o, "metadata_offset", cli_json_u64(s->apr.metadata_offset));
    cJSON_AddItemToObject(o, "metadata_size", cli_json_u64(s->apr.metadata_size));
    cJSON_AddItemToObject(o, "tensor_index_offset", cli_json_u64(s->apr.tensor_index_offset));
    cJSON_AddItemToObject(o, "data_offset", cli_json_u64(s->apr.data_offset));
    cJSON_AddItemToObject(o, "header_checksum", json_checksum(s->apr.checksum, s->apr_header_crc));
    const rf_apr_checksums *c = &s->apr_sums;
    if (!s->apr_footer_checked || s->apr_footer_err.status != RF_OK) {
        cJSON_AddNullToObject(o, "footer_checksum");
    } else {
        cJSON *f = c->footer_present ? json_checksum(c->footer_stored, c->footer_computed)
                                     : cJSON_CreateObject();
        cJSON_AddBoolToObject(f, "present", c->footer_present);
        cJSON_AddItemToObject(f, "offset", cli_json_u64(c->footer_offset));
        cJSON_AddItemToObject(o, "footer_checksum", f);
    }
    return o;
}

static cJSON *json_report(const rf_model *m, const summary *s_in, const char *path, bool full,
                          const rf_error *damage, const rf_error *lenient_err)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "file", cli_json_string(path, strlen(path)));
    bool valid = damage->status == RF_OK;
    cJSON_AddBoolToObject(o, "valid", valid);
    const char *error = valid ? NULL : damage->message;
    add_string_or_null(o, "error", error);
    if (!m) {
        /* Nothing readable: the format as detected from the magic bytes, then the errors. */
        rf_format format = RF_FORMAT_UNKNOWN;
        rf_detect_path(path, &format, NULL);
        cJSON_AddStringToObject(o, "format", rf_format_name(format));
        add_string_or_null(o, "lenient_error",
                           lenient_err->status != RF_OK ? lenient_err->message : NULL);
        cJSON_AddItemToObject(o, "warnings", json_warnings(NULL));
        return o;
    }
    const summary s = *s_in;
    char buf[64];
    cJSON_AddStringToObject(o, "format", rf_format_name(rf_model_format(m)));
    cJSON_AddStringToObject(o, "format_description", rf_format_description(rf_model_format(m)));
    add_string_or_null(
        o, "version",
        rf_format_version_text(rf_model_format(m), rf_model_format_version(m), buf, sizeof buf));
    cJSON_AddItemToObject(o, "file_size", cli_json_u64(rf_model_file_size(m)));
    cJSON *files = cJSON_AddArrayToObject(o, "files");
    for (size_t i = 0; files && i < rf_model_n_files(m); i++) {
        cJSON *item = cJSON_CreateObject();
        add_string_or_null(item, "path", rf_model_source_path(m, i));
        cJSON_AddItemToObject(item, "size", cli_json_u64(rf_model_source_size(m, i)));
        cJSON_AddItemToArray(files, item);
    }
    cJSON_AddItemToObject(o, "tensor_count", cli_json_u64(rf_model_n_tensors(m)));
    cJSON_AddItemToObject(o, "parameter_count",
                          s.parameters_overflow ? cJSON_CreateNull() : cli_json_u64(s.parameters));
    cJSON_AddItemToObject(o, "data_offset",
                          s.has_data_offset ? cli_json_u64(s.data_offset) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "alignment",
                          s.has_gguf ? cli_json_u64(s.gguf.alignment) : cJSON_CreateNull());
    if (s.has_gguf) {
        cJSON *g = cJSON_AddObjectToObject(o, "gguf");
        cJSON_AddStringToObject(g, "byte_order", s.gguf.big_endian ? "big" : "little");
        cJSON_AddItemToObject(g, "kv_count", cli_json_u64(s.gguf.n_kv));
        cJSON_AddItemToObject(g, "tensor_info_offset", cli_json_u64(s.gguf.tensor_info_offset));
        cJSON_AddItemToObject(g, "data_offset", cli_json_u64(s.gguf.data_offset));
    } else {
        cJSON_AddNullToObject(o, "gguf");
    }
    cJSON_AddItemToObject(o, "apr", json_apr(&s));
    cJSON *dtypes = cJSON_AddArrayToObject(o, "dtypes");
    for (size_t i = 0; dtypes && i < s.n_rows; i++) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "dtype", s.rows[i].name);
        cJSON_AddItemToObject(item, "tensors", cli_json_u64(s.rows[i].tensors));
        cJSON_AddItemToObject(item, "parameters", cli_json_u64(s.rows[i].parameters));
        cJSON_AddItemToObject(item, "bytes", cli_json_u64(s.rows[i].bytes));
        cJSON_AddItemToArray(dtypes, item);
    }
    cJSON_AddItemToObject(o, "config", json_config(m));
    cJSON_AddItemToObject(o, "tokenizer", json_tokenizer(m, full));
    char *provenance = rf_model_provenance(m);
    cJSON *record = provenance ? cJSON_Parse(provenance) : NULL;
    free(provenance);
    cJSON_AddItemToObject(o, "provenance", record ? record : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "metadata", json_metadata(m, full));
    cJSON_AddItemToObject(o, "warnings", json_warnings(m));
    return o;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    bool json = false, full = false, checksums = false;
    const char *arch = NULL;
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                             {"full", no_argument, NULL, 'f'},
                                             {"checksums", no_argument, NULL, 'c'},
                                             {"arch", required_argument, NULL, 'a'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'j')
            json = true;
        else if (opt == 'f')
            full = true;
        else if (opt == 'c')
            checksums = true;
        else if (opt == 'a')
            arch = optarg;
        else
            return cli_option_error(&TOOL, argv, "", longopts);
    }
    if (optind >= argc)
        return cli_usage_error(&TOOL, "no FILE given");
    if (optind + 1 < argc)
        return cli_usage_error(&TOOL, "one FILE at a time (got %d)", argc - optind);
    const char *path = argv[optind];

    rf_error damage, lenient_err;
    /* Whole-file checksums when asked, or when the file is small enough to cost nothing. */
    bool verify = checksums || cli_cheap_to_verify(path);
    rf_model *model = cli_open_diagnostic(path, verify, arch, &damage, &lenient_err);
    summary s;
    if (model)
        summarize(model, &s, verify);
    /* Damage that only the whole-file checksum reveals makes the file malformed too. */
    if (model && damage.status == RF_OK && footer_mismatch(&s))
        rf_error_set(&damage, RF_ERR_CHECKSUM,
                     "%s: footer CRC mismatch (offset %" PRIu64 "): stored 0x%08x, computed 0x%08x",
                     path, s.apr_sums.footer_offset, s.apr_sums.footer_stored,
                     s.apr_sums.footer_computed);
    bool built = true;
    if (json) {
        cJSON *report = json_report(model, model ? &s : NULL, path, full, &damage, &lenient_err);
        built = report != NULL;
        if (report)
            cli_print_json(report, true);
    } else if (model) {
        print_human(model, path, &s, full);
    }
    int out_code = cli_finish_stdout(&TOOL, true);
    code = cli_report_damage(&TOOL, path, model, &damage, &lenient_err, full ? 0 : MAX_WARNINGS);
    rf_model_free(model);
    if (!built) {
        cli_error(&TOOL, "out of memory building the JSON report");
        return code != APR_EXIT_OK ? code : APR_EXIT_WRITE;
    }
    return code != APR_EXIT_OK ? code : out_code;
}
