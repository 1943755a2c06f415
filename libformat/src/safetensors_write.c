/* SafeTensors writer with the reference writer's conventions (docs/formats/safetensors.md): one
 * file or transformers-style shards plus index, and the companion JSON files, every file through
 * the atomic writer with a re-read check before it is renamed into place.
 * Not for: converting dtypes or choosing what to write (callers prepare the model). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_internal.h"
#include "hf_internal.h"
#include "io.h"
#include "rosetta/contract.h"
#include "rosetta/safetensors.h"
#include "safetensors_internal.h"
#include "pages.h"
#include "write_hook.h"

/* Longest tensor name Rosetta writes after renaming (HF names are well below this). */
#define NAME_MAX_BYTES 512

typedef struct out_tensor {
    const rf_tensor *t;
    const char *name; /* the name written (points into names or into the model) */
    int rank;         /* rf_safetensors_dtype_rank */
} out_tensor;

typedef struct meta_pair {
    const char *key;
    const char *value;
} meta_pair;

/* Files committed by this call, removed again if a later step fails. */
typedef struct written {
    char **paths;
    size_t n, cap;
} written;

static void written_add(written *w, const char *path)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        char **p = realloc(w->paths, cap * sizeof *p);
        if (!p)
            return;
        w->paths = p;
        w->cap = cap;
    }
    w->paths[w->n] = strdup(path);
    if (w->paths[w->n])
        w->n++;
}

static void written_free(written *w, bool remove_files)
{
    for (size_t i = 0; i < w->n; i++) {
        if (remove_files)
            unlink(w->paths[i]);
        free(w->paths[i]);
    }
    free(w->paths);
}

static int compare_out(const void *pa, const void *pb)
{
    const out_tensor *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank > b->rank ? -1 : 1; /* dtype descending */
    return strcmp(a->name, b->name);       /* then name, byte order */
}

static int compare_out_name(const void *pa, const void *pb)
{
    return strcmp(((const out_tensor *)pa)->name, ((const out_tensor *)pb)->name);
}

static int compare_meta(const void *pa, const void *pb)
{
    return strcmp(((const meta_pair *)pa)->key, ((const meta_pair *)pb)->key);
}

static bool is_safetensors_model(const rf_model *m)
{
    rf_format f = rf_model_format(m);
    return f == RF_FORMAT_SAFETENSORS || f == RF_FORMAT_SAFETENSORS_INDEX ||
           f == RF_FORMAT_SAFETENSORS_DIR;
}

/* Checks one tensor can be written and that its byte count agrees with its shape. */
static rf_status check_tensor(const rf_tensor *t, const char *name, int *rank, rf_error *err)
{
    *rank = rf_safetensors_dtype_rank(t->dtype);
    if (*rank < 0)
        return rf_error_set(err, RF_ERR_UNSUPPORTED,
                            "tensor \"%s\" is %s, which SafeTensors cannot hold (dequantize it "
                            "first)",
                            name, rf_dtype_name(t->dtype));
    uint64_t elements;
    if (rf_shape_elements(t->shape, t->ndim, &elements, err) != RF_OK) {
        rf_error_prefix(err, "tensor \"%s\"", name);
        return RF_ERR_OVERFLOW;
    }
    unsigned bits = rf_safetensors_dtype_bits(t->dtype);
    if (elements > UINT64_MAX / bits)
        return rf_error_set(err, RF_ERR_OVERFLOW, "tensor \"%s\": bit size overflows 64 bits",
                            name);
    if (elements * bits % 8 != 0)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "tensor \"%s\": %llu %s elements are not a whole number of bytes", name,
                            (unsigned long long)elements, rf_dtype_name(t->dtype));
    uint64_t need = elements * bits / 8;
    if (t->nbytes != need)
        return rf_error_set(
            err, RF_ERR_ARGUMENT, "tensor \"%s\": holds %llu bytes but its %s shape needs %llu",
            name, (unsigned long long)t->nbytes, rf_dtype_name(t->dtype), (unsigned long long)need);
    if (need > 0 && !t->data)
        return rf_error_set(err, RF_ERR_ARGUMENT, "tensor \"%s\": no data", name);
    return RF_OK;
}

/* The compact header of one file, padded with spaces to a multiple of 8 (data then starts
 * 8-aligned). tensors must already be in file order. */
static void build_header(text_buf *b, const meta_pair *meta, size_t n_meta, const out_tensor *ts,
                         size_t n)
{
    rfi_text_buf_puts(b, "{");
    bool first = true;
    if (n_meta) {
        rfi_text_buf_puts(b, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i)
                rfi_text_buf_puts(b, ",");
            rfi_json_put_cstring(b, meta[i].key);
            rfi_text_buf_puts(b, ":");
            rfi_json_put_cstring(b, meta[i].value);
        }
        rfi_text_buf_puts(b, "}");
        first = false;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = ts[i].t;
        if (!first)
            rfi_text_buf_puts(b, ",");
        first = false;
        rfi_json_put_cstring(b, ts[i].name);
        rfi_text_buf_puts(b, ":{\"dtype\":");
        rfi_json_put_cstring(b, rf_dtype_get(t->dtype)->st_name);
        rfi_text_buf_puts(b, ",\"shape\":[");
        for (int d = 0; d < t->ndim; d++)
            rfi_text_buf_printf(b, "%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
        rfi_text_buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                            (unsigned long long)(offset + t->nbytes));
        offset += t->nbytes;
    }
    rfi_text_buf_puts(b, "}");
    while (b->len % 8 != 0)
        rfi_text_buf_puts(b, " ");
}

/* ---- verification of a finished temp file ------------------------------------------------- */

typedef struct verify_st {
    const char *final_path;
    const text_buf *header;
    size_t n_tensors;
    uint64_t size;
    uint32_t crc;
} verify_st;

/* The CRC-32 of a whole file, its mapped pages dropped as the pass goes (pages.h). */
static uint32_t crc_released(const rf_file *f)
{
    const uint8_t *d = rf_file_data(f);
    uint64_t size = rf_file_size(f);
    uint32_t crc = 0;
    for (uint64_t done = 0; done < size;) {
        size_t take = size - done > (64u << 20) ? (64u << 20) : (size_t)(size - done);
        crc = rf_crc32(crc, d + done, take);
        rfi_file_release_range(f, d + done, take);
        done += take;
    }
    return crc;
}

static rf_status verify_safetensors(const char *temp_path, void *ctx, rf_error *err)
{
    const verify_st *v = ctx;
    rf_file *f = rf_file_open(temp_path, err);
    if (!f)
        return RF_ERR_WRITE;
    rf_status st = RF_OK;
    const uint8_t *d = rf_file_data(f);
    if (rf_file_size(f) != v->size || memcmp(d + 8, v->header->data, v->header->len) != 0)
        st = rf_error_set(err, RF_ERR_WRITE, "%s: re-read check failed: size %llu, expected %llu",
                          v->final_path, (unsigned long long)rf_file_size(f),
                          (unsigned long long)v->size);
    else if (crc_released(f) != v->crc)
        st = rf_error_set(err, RF_ERR_WRITE,
                          "%s: re-read check failed: CRC-32 differs from the bytes written",
                          v->final_path);
    if (st == RF_OK) {
        rf_model *check = rf_model_new(RF_FORMAT_SAFETENSORS, err);
        if (!check)
            st = RF_ERR_NOMEM;
        else {
            st = rfi_st_load_file(check, d, v->size, v->final_path, 0, NULL, err);
            if (st == RF_OK && rf_model_n_tensors(check) != v->n_tensors)
                st = rf_error_set(err, RF_ERR_WRITE,
                                  "%s: re-read check found %zu tensors, expected %zu",
                                  v->final_path, rf_model_n_tensors(check), v->n_tensors);
            else if (st != RF_OK) {
                rf_error_prefix(err, "re-read check of the written file failed");
                st = RF_ERR_WRITE;
            }
            rf_model_free(check);
        }
    }
    rf_file_close(f);
    return st;
}

typedef struct verify_bytes {
    const char *final_path;
    const text_buf *content;
} verify_bytes;

static rf_status verify_text(const char *temp_path, void *ctx, rf_error *err)
{
    const verify_bytes *v = ctx;
    char *data = NULL;
    size_t len = 0;
    rf_status st = rfi_hf_read_file(temp_path, v->content->len + 1, &data, &len, err);
    if (st == RF_OK && (len != v->content->len || memcmp(data, v->content->data, len) != 0))
        st = rf_error_set(err, RF_ERR_WRITE, "%s: re-read check failed: content differs",
                          v->final_path);
    free(data);
    return st == RF_OK ? RF_OK : RF_ERR_WRITE;
}

/* ---- writing ------------------------------------------------------------------------------ */

static rf_status write_shard(const char *path, const meta_pair *meta, size_t n_meta, out_tensor *ts,
                             size_t n, written *done, const write_hook *hook, rf_error *err)
{
    qsort(ts, n, sizeof *ts, compare_out);
    text_buf header = {0};
    build_header(&header, meta, n_meta, ts, n);
    if (header.failed) {
        rfi_text_buf_free(&header);
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    if (header.len > RF_SAFETENSORS_MAX_HEADER) {
        rfi_text_buf_free(&header);
        return rf_error_set(err, RF_ERR_LIMIT,
                            "%s: header of %zu bytes exceeds the %u-byte limit "
                            "of SafeTensors readers (too many tensors for one file)",
                            path, header.len, RF_SAFETENSORS_MAX_HEADER);
    }
    rf_writer *w = rf_writer_open(path, err);
    if (!w) {
        rfi_text_buf_free(&header);
        return RF_ERR_WRITE;
    }
    uint8_t prefix[8];
    rf_store_le64(prefix, (uint64_t)header.len);
    rf_status st = rf_writer_write(w, prefix, 8, err);
    if (st == RF_OK)
        st = rf_writer_write(w, header.data, header.len, err);
    for (size_t i = 0; i < n && st == RF_OK; i++)
        for (uint64_t at = 0; st == RF_OK && at < ts[i].t->nbytes; at += WRITE_HOOK_PIECE) {
            uint64_t k = ts[i].t->nbytes - at;
            k = k < WRITE_HOOK_PIECE ? k : WRITE_HOOK_PIECE;
            st = rf_writer_write(w, ts[i].t->data + at, (size_t)k, err);
            rfi_write_hook_release(hook, ts[i].t->data + at, k);
        }
    if (st != RF_OK) {
        rf_writer_abort(w);
        rfi_text_buf_free(&header);
        return st;
    }
    verify_st v = {path, &header, n, rf_writer_offset(w), rf_writer_crc32(w)};
    st = rfi_write_hook_commit(w, path, verify_safetensors, &v, hook, err);
    rfi_text_buf_free(&header);
    if (st == RF_OK)
        written_add(done, path);
    return st;
}

static rf_status write_text(const char *dir, const char *file, const text_buf *content,
                            written *done, rf_error *err)
{
    if (content->failed)
        return rf_error_set(err, RF_ERR_NOMEM, "%s/%s: out of memory", dir, file);
    char *path = rfi_hf_path_join(dir, file);
    if (!path)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    rf_status st = RF_OK;
    rf_writer *w = rf_writer_open(path, err);
    if (!w)
        st = RF_ERR_WRITE;
    else if ((st = rf_writer_write(w, content->data, content->len, err)) != RF_OK)
        rf_writer_abort(w);
    else {
        verify_bytes v = {path, content};
        st = rf_writer_commit(w, verify_text, &v, err);
        if (st == RF_OK)
            written_add(done, path);
    }
    free(path);
    return st;
}

/* The raw companion kept by the reader, when it is there and wanted. */
static const rf_kv *raw_companion(const rf_model *m, const char *file, bool regenerate)
{
    if (regenerate)
        return NULL;
    char key[64];
    snprintf(key, sizeof key, HF_KV_PREFIX "%s", file);
    const rf_kv *kv = rf_model_find_kv(m, key);
    return kv && kv->value.type == RF_VALUE_JSON ? kv : NULL;
}

static rf_status write_companions(const rf_model *m, const char *dir, bool regenerate,
                                  written *done, rf_error *err)
{
    typedef bool (*build_fn)(const rf_model *, text_buf *);
    static const struct {
        const char *file;
        build_fn build;
    } files[] = {
        {"config.json", rfi_hf_config_build},
        {"generation_config.json", rfi_hf_generation_config_build},
        {"tokenizer.json", rfi_hf_tokenizer_build},
        {"tokenizer_config.json", rfi_hf_tokenizer_config_build},
    };
    rf_status st = RF_OK;
    for (size_t i = 0; i < sizeof files / sizeof files[0] && st == RF_OK; i++) {
        text_buf compact = {0}, pretty = {0};
        const rf_kv *raw = raw_companion(m, files[i].file, regenerate);
        bool have = true;
        if (raw)
            rfi_text_buf_put(&compact, raw->value.as.str.data, (size_t)raw->value.as.str.len);
        else
            have = files[i].build(m, &compact);
        if (have) {
            rfi_hf_buf_put_pretty(&pretty, compact.data ? compact.data : "", compact.len,
                                  strcmp(files[i].file, "tokenizer.json") != 0);
            st = write_text(dir, files[i].file, &pretty, done, err);
        }
        rfi_text_buf_free(&compact);
        rfi_text_buf_free(&pretty);
    }
    const rf_kv *jinja = raw_companion(m, "chat_template.jinja", regenerate);
    if (st == RF_OK && jinja) {
        /* kept as a JSON string literal: decode it back to the file's text */
        cJSON *s = cJSON_ParseWithLength(jinja->value.as.str.data, (size_t)jinja->value.as.str.len);
        if (!cJSON_IsString(s))
            st = rf_error_set(err, RF_ERR_ARGUMENT,
                              "raw metadata \"hf.chat_template.jinja\" is not a JSON string");
        else {
            text_buf text = {0};
            rfi_text_buf_puts(&text, s->valuestring);
            st = write_text(dir, "chat_template.jinja", &text, done, err);
            rfi_text_buf_free(&text);
        }
        cJSON_Delete(s);
    }
    return st;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static rf_status ensure_dir(const char *dir, rf_error *err)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return RF_OK;
        return rf_error_set(err, RF_ERR_WRITE, "%s: exists and is not a directory", dir);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return rf_error_set(err, RF_ERR_WRITE, "%s: cannot create directory: %s", dir,
                            strerror(errno));
    return RF_OK;
}

/* The tensors to write, renamed to Hugging Face names when the model came from GGUF, without
 * lm_head.weight when the model is tied. Names are allocated in one block (*names). */
static rf_status collect(const rf_model *m, out_tensor **out, size_t *n_out, char **names,
                         rf_error *err)
{
    size_t n = rf_model_n_tensors(m);
    bool rename = rf_model_format(m) == RF_FORMAT_GGUF;
    bool tied = rf_model_config_get(m)->tie_word_embeddings == 1;
    const rf_contracts *contracts = rename ? rf_contracts_default(err) : NULL;
    if (rename && !contracts)
        return err ? err->status : RF_ERR_NOT_FOUND;
    out_tensor *ts = calloc(n ? n : 1, sizeof *ts);
    char *block = rename ? malloc((n ? n : 1) * NAME_MAX_BYTES) : NULL;
    if (!ts || (rename && !block)) {
        free(ts);
        free(block);
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory for %zu tensors", n);
    }
    size_t k = 0;
    rf_status st = RF_OK;
    for (size_t i = 0; i < n && st == RF_OK; i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        const char *name = t->name;
        if (rename) {
            char *slot = block + i * NAME_MAX_BYTES;
            if (rf_contracts_map_name(contracts, t->name, RF_NAMING_HF, slot, NAME_MAX_BYTES,
                                      NULL) == RF_OK)
                name = slot;
        }
        if (tied && strcmp(name, "lm_head.weight") == 0)
            continue; /* Hugging Face leaves the head out of tied checkpoints */
        ts[k].t = t;
        ts[k].name = name;
        st = check_tensor(t, name, &ts[k].rank, err);
        k++;
    }
    if (st == RF_OK && k > 1) { /* two source names may map to one output name */
        out_tensor *sorted = malloc(k * sizeof *sorted);
        if (!sorted)
            st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        else {
            memcpy(sorted, ts, k * sizeof *sorted);
            qsort(sorted, k, sizeof *sorted, compare_out_name);
            for (size_t i = 1; i < k && st == RF_OK; i++)
                if (strcmp(sorted[i - 1].name, sorted[i].name) == 0)
                    st = rf_error_set(err, RF_ERR_ARGUMENT,
                                      "tensors \"%s\" and \"%s\" would both be written as \"%s\"",
                                      sorted[i - 1].t->name, sorted[i].t->name, sorted[i].name);
            free(sorted);
        }
    }
    if (st != RF_OK) {
        free(ts);
        free(block);
        return st;
    }
    *out = ts;
    *n_out = k;
    *names = block;
    return RF_OK;
}

/* __metadata__: the source's string pairs (SafeTensors sources) or {"format":"pt"}, plus
 * provenance; sorted by key so that the bytes do not depend on insertion order. */
static rf_status collect_meta(const rf_model *m, const char *provenance, meta_pair **out,
                              size_t *n_out, rf_error *err)
{
    size_t n_kv = rf_model_n_kv(m);
    meta_pair *meta = calloc(n_kv + 3, sizeof *meta);
    if (!meta)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    size_t n = 0;
    if (is_safetensors_model(m)) {
        for (size_t i = 0; i < n_kv; i++) {
            const rf_kv *kv = rf_model_kv(m, i);
            if (kv->value.type != RF_VALUE_STRING)
                continue;
            if (provenance && strcmp(kv->key, "rosetta.provenance") == 0)
                continue;
            if (strlen(kv->value.as.str.data) != kv->value.as.str.len) {
                free(meta);
                return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                    "__metadata__ \"%s\": value holds a NUL byte", kv->key);
            }
            meta[n++] = (meta_pair){kv->key, kv->value.as.str.data};
        }
    } else
        meta[n++] = (meta_pair){"format", "pt"};
    if (provenance) {
        /* transformers 4.x refuses a __metadata__ without "format": do not create one */
        bool has_format = false;
        for (size_t i = 0; i < n; i++)
            has_format = has_format || strcmp(meta[i].key, "format") == 0;
        if (!has_format)
            meta[n++] = (meta_pair){"format", "pt"};
        meta[n++] = (meta_pair){"rosetta.provenance", provenance};
    }
    qsort(meta, n, sizeof *meta, compare_meta);
    *out = meta;
    *n_out = n;
    return RF_OK;
}

typedef struct index_row {
    const char *tensor;
    const char *shard;
} index_row;

static int compare_row(const void *a, const void *b)
{
    return strcmp(((const index_row *)a)->tensor, ((const index_row *)b)->tensor);
}

/* model.safetensors.index.json as transformers writes it: total_size = bytes of tensor data,
 * weight_map sorted by tensor name. */
static rf_status write_index(const char *dir, char **shard_names, const out_tensor *ts,
                             const size_t *shard_of, size_t n, written *done, rf_error *err)
{
    index_row *rows = malloc((n ? n : 1) * sizeof *rows);
    if (!rows)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        rows[i] = (index_row){ts[i].name, shard_names[shard_of[i]]};
        total += ts[i].t->nbytes;
    }
    qsort(rows, n, sizeof *rows, compare_row);
    text_buf compact = {0}, pretty = {0};
    rfi_text_buf_printf(&compact, "{\"metadata\":{\"total_size\":%llu},\"weight_map\":{",
                        (unsigned long long)total);
    for (size_t i = 0; i < n; i++) {
        if (i)
            rfi_text_buf_puts(&compact, ",");
        rfi_json_put_cstring(&compact, rows[i].tensor);
        rfi_text_buf_puts(&compact, ":");
        rfi_json_put_cstring(&compact, rows[i].shard);
    }
    rfi_text_buf_puts(&compact, "}}");
    rfi_hf_buf_put_pretty(&pretty, compact.data, compact.len, true);
    rf_status st = compact.failed ? rf_error_set(err, RF_ERR_NOMEM, "out of memory")
                                  : write_text(dir, RF_SAFETENSORS_INDEX_FILE, &pretty, done, err);
    rfi_text_buf_free(&compact);
    rfi_text_buf_free(&pretty);
    free(rows);
    return st;
}

rf_status rf_safetensors_write(const rf_model *m, const char *path_or_dir,
                               const rf_safetensors_write_options *opts, rf_error *err)
{
    return rfi_safetensors_write_hooked(m, path_or_dir, opts, NULL, err);
}

rf_status rfi_safetensors_write_hooked(const rf_model *m, const char *path_or_dir,
                                       const rf_safetensors_write_options *opts,
                                       const write_hook *hook, rf_error *err)
{
    static const rf_safetensors_write_options defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!m || !path_or_dir || !path_or_dir[0])
        return rf_error_set(err, RF_ERR_ARGUMENT, "rf_safetensors_write: no model or no path");
    struct stat sb;
    bool is_dir = stat(path_or_dir, &sb) == 0 && S_ISDIR(sb.st_mode);
    bool single_file = !is_dir && has_suffix(path_or_dir, ".safetensors");
    if (single_file && opts->max_shard_size)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "%s: sharded output needs a directory, not a .safetensors file name",
                            path_or_dir);
    if (opts->provenance && strlen(opts->provenance) == 0)
        return rf_error_set(err, RF_ERR_ARGUMENT, "empty provenance string");

    out_tensor *ts = NULL;
    char *names = NULL;
    meta_pair *meta = NULL;
    size_t n = 0, n_meta = 0;
    size_t *shard_of = NULL;
    char **shard_names = NULL;
    size_t n_shards = 0;
    written done = {0};
    rf_status st = collect(m, &ts, &n, &names, err);
    if (st != RF_OK)
        goto out;
    if ((st = collect_meta(m, opts->provenance, &meta, &n_meta, err)) != RF_OK)
        goto out;
    if (single_file) {
        st = write_shard(path_or_dir, meta, n_meta, ts, n, &done, hook, err);
        goto out;
    }
    if ((st = ensure_dir(path_or_dir, err)) != RF_OK)
        goto out;
    /* split in model order: a new shard when the next tensor would overflow the current one */
    shard_of = calloc(n ? n : 1, sizeof *shard_of);
    if (!shard_of) {
        st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        goto out;
    }
    uint64_t used = 0, max = opts->max_shard_size;
    n_shards = n ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t size = ts[i].t->nbytes;
        if (max && used > 0 && (used >= max || size > max - used)) {
            n_shards++;
            used = 0;
        }
        shard_of[i] = n_shards - 1;
        used += size;
    }
    if (n_shards <= 1) {
        char *path = rfi_hf_path_join(path_or_dir, RF_SAFETENSORS_MODEL_FILE);
        if (!path) {
            st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
            goto out;
        }
        st = write_shard(path, meta, n_meta, ts, n, &done, hook, err);
        free(path);
    } else {
        if (n_shards > 99999) {
            st = rf_error_set(err, RF_ERR_ARGUMENT,
                              "%s: %zu shards (at most 99999); raise the shard size", path_or_dir,
                              n_shards);
            goto out;
        }
        shard_names = calloc(n_shards, sizeof *shard_names);
        out_tensor *group = malloc(n * sizeof *group);
        if (!shard_names || !group) {
            free(group);
            st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t s = 0; s < n_shards && st == RF_OK; s++) {
            char file[64];
            snprintf(file, sizeof file, "model-%05zu-of-%05zu.safetensors", s + 1, n_shards);
            shard_names[s] = strdup(file);
            char *path = rfi_hf_path_join(path_or_dir, file);
            if (!shard_names[s] || !path) {
                free(path);
                st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
                break;
            }
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (shard_of[i] == s)
                    group[k++] = ts[i];
            st = write_shard(path, meta, n_meta, group, k, &done, hook, err);
            free(path);
        }
        free(group);
    }
    if (st == RF_OK && !opts->no_companions)
        st = write_companions(m, path_or_dir, opts->regenerate_companions, &done, err);
    if (st == RF_OK && n_shards > 1)
        st = write_index(path_or_dir, shard_names, ts, shard_of, n, &done, err);
out:
    written_free(&done, st != RF_OK);
    if (shard_names)
        for (size_t s = 0; s < n_shards; s++)
            free(shard_names[s]);
    free(shard_names);
    free(shard_of);
    free(ts);
    free(names);
    free(meta);
    return st;
}
