/* Importance-matrix files of llama-imatrix (GGUF and legacy .dat), read and normalized the way
 * llama-quantize prepares them (see rosetta/imatrix.h). Not for: writing or computing them. */
#include "rosetta/imatrix.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "rosetta/model.h"

typedef struct entry {
    char *name;
    float *values;
    uint64_t n_values;
} entry;

struct rf_imatrix {
    rf_imatrix_format format;
    entry *entries;
    size_t n_entries;
    char *dataset;
    uint32_t chunk_count;
};

static const char SUMS_SUFFIX[] = ".in_sum2";
static const char COUNTS_SUFFIX[] = ".counts";

void rf_imatrix_free(rf_imatrix *im)
{
    if (im == NULL)
        return;
    for (size_t i = 0; i < im->n_entries; i++) {
        free(im->entries[i].name);
        free(im->entries[i].values);
    }
    free(im->entries);
    free(im->dataset);
    free(im);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* Adds an entry; a later entry of the same name replaces an earlier one (as a std::map does). */
static rf_status add_entry(rf_imatrix *im, const char *name, size_t name_len, float *values,
                           uint64_t n_values, size_t *capacity, rf_error *err)
{
    for (size_t i = 0; i < im->n_entries; i++) {
        if (strlen(im->entries[i].name) == name_len &&
            memcmp(im->entries[i].name, name, name_len) == 0) {
            free(im->entries[i].values);
            im->entries[i].values = values;
            im->entries[i].n_values = n_values;
            return RF_OK;
        }
    }
    if (im->n_entries == *capacity) {
        size_t cap = *capacity ? *capacity * 2 : 64;
        entry *grown = realloc(im->entries, cap * sizeof *grown);
        if (grown == NULL) {
            free(values);
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory reading an importance matrix");
        }
        im->entries = grown;
        *capacity = cap;
    }
    char *copy = malloc(name_len + 1);
    if (copy == NULL) {
        free(values);
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory reading an importance matrix");
    }
    memcpy(copy, name, name_len);
    copy[name_len] = '\0';
    im->entries[im->n_entries++] = (entry){copy, values, n_values};
    return RF_OK;
}

/* ---- legacy .dat ---------------------------------------------------------------------------- */

static rf_status read_i32(rf_cursor *c, int32_t *out, rf_error *err)
{
    uint32_t v;
    rf_status st = rf_cursor_u32(c, &v, err);
    if (st == RF_OK)
        *out = (int32_t)v;
    return st;
}

static rf_status load_legacy(rf_imatrix *im, const rf_file *file, rf_error *err)
{
    const char *path = rf_file_path(file);
    rf_cursor c = rf_cursor_make(rf_file_data(file), rf_file_size(file), path);
    int32_t n_entries = 0;
    rf_status st = read_i32(&c, &n_entries, err);
    if (st != RF_OK)
        return st;
    /* each entry takes at least 16 bytes: a count that cannot fit is malformed */
    if (n_entries < 1 || (uint64_t)n_entries > rf_cursor_remaining(&c) / 16)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: legacy imatrix (offset 0): entry count %d is not in [1, %llu] "
                            "for a file of %llu bytes",
                            path, n_entries, (unsigned long long)(rf_cursor_remaining(&c) / 16),
                            (unsigned long long)rf_file_size(file));
    size_t capacity = 0;
    for (int32_t i = 0; i < n_entries; i++) {
        uint64_t at = c.pos;
        int32_t len = 0, ncall = 0, nval = 0;
        const uint8_t *name = NULL, *raw = NULL;
        if ((st = read_i32(&c, &len, err)) != RF_OK)
            return st;
        if (len < 0 || (uint64_t)len > rf_cursor_remaining(&c))
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%s: legacy imatrix entry %d (offset %llu): name length %d is "
                                "negative or beyond the end of the file",
                                path, i, (unsigned long long)at, len);
        if ((st = rf_cursor_bytes(&c, (uint64_t)len, &name, err)) != RF_OK ||
            (st = read_i32(&c, &ncall, err)) != RF_OK || (st = read_i32(&c, &nval, err)) != RF_OK)
            return st;
        if (nval < 1 || (uint64_t)nval > rf_cursor_remaining(&c) / 4)
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%s: legacy imatrix entry '%.*s' (offset %llu): value count %d is "
                                "not in [1, %llu]",
                                path, len, (const char *)name, (unsigned long long)at, nval,
                                (unsigned long long)(rf_cursor_remaining(&c) / 4));
        if (memchr(name, '\0', (size_t)len) != NULL)
            return rf_error_set(
                err, RF_ERR_FORMAT,
                "%s: legacy imatrix entry %d (offset %llu): name contains a NUL byte", path, i,
                (unsigned long long)at);
        if ((st = rf_cursor_bytes(&c, (uint64_t)nval * 4, &raw, err)) != RF_OK)
            return st;
        float *values = malloc((size_t)nval * sizeof *values);
        if (values == NULL)
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory reading %s", path);
        for (int32_t k = 0; k < nval; k++) {
            uint32_t bits = rf_load_le32(raw + 4 * (size_t)k);
            float v;
            memcpy(&v, &bits, sizeof v);
            /* llama-quantize: sums hold (raw/count)*ncall; divide by ncall when it is positive */
            values[k] = ncall > 0 ? v / (float)ncall : v;
        }
        if ((st = add_entry(im, (const char *)name, (size_t)len, values, (uint64_t)nval, &capacity,
                            err)) != RF_OK)
            return st;
    }
    /* optional trailer: chunk count, then the dataset name */
    int32_t n_calls = 0, len = 0;
    if (rf_cursor_remaining(&c) >= 4 && read_i32(&c, &n_calls, err) == RF_OK) {
        im->chunk_count = n_calls > 0 ? (uint32_t)n_calls : 0;
        const uint8_t *ds = NULL;
        if (rf_cursor_remaining(&c) >= 4 && read_i32(&c, &len, err) == RF_OK && len > 0 &&
            (uint64_t)len <= rf_cursor_remaining(&c) &&
            rf_cursor_bytes(&c, (uint64_t)len, &ds, err) == RF_OK) {
            size_t n = strnlen((const char *)ds, (size_t)len);
            im->dataset = malloc(n + 1);
            if (im->dataset == NULL)
                return rf_error_set(err, RF_ERR_NOMEM, "out of memory reading %s", path);
            memcpy(im->dataset, ds, n);
            im->dataset[n] = '\0';
        }
    }
    im->format = RF_IMATRIX_LEGACY;
    return RF_OK;
}

/* ---- GGUF ----------------------------------------------------------------------------------- */

static bool strip_suffix(const char *name, const char *suffix, size_t *stem)
{
    size_t n = strlen(name), m = strlen(suffix);
    if (n <= m || strcmp(name + n - m, suffix) != 0)
        return false;
    *stem = n - m;
    return true;
}

static rf_status gguf_u32_key(const rf_model *m, const char *path, const char *key, uint32_t *out,
                              rf_error *err)
{
    const rf_kv *kv = rf_model_find_kv(m, key);
    uint64_t v = 0;
    if (kv == NULL)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: imatrix GGUF lacks the key %s (llama-quantize requires "
                            "imatrix.datasets, imatrix.chunk_count and imatrix.chunk_size)",
                            path, key);
    if (!rf_value_as_u64(&kv->value, &v) || v > UINT32_MAX)
        return rf_error_set(err, RF_ERR_FORMAT, "%s: key %s: expected a u32, found %s", path, key,
                            rf_value_type_name(kv->value.type));
    *out = (uint32_t)v;
    return RF_OK;
}

static rf_status f32_tensor(const rf_tensor *t, const char *path, uint64_t *n, rf_error *err)
{
    if (t->dtype != RF_DTYPE_F32)
        return rf_error_set(err, RF_ERR_FORMAT, "%s: tensor %s: expected F32, found %s", path,
                            t->name, rf_dtype_name(t->dtype));
    rf_status st = rf_shape_elements(t->shape, t->ndim, n, err);
    if (st != RF_OK)
        return st;
    if (t->nbytes != *n * 4 || t->data == NULL)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: tensor %s: %llu elements need %llu bytes, the file gives %llu",
                            path, t->name, (unsigned long long)*n, (unsigned long long)(*n * 4),
                            (unsigned long long)t->nbytes);
    return RF_OK;
}

static float load_f32(const uint8_t *p)
{
    uint32_t bits = rf_load_le32(p);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static rf_status load_gguf(rf_imatrix *im, const char *path, rf_error *err)
{
    rf_model *m = rf_model_open(path, NULL, err);
    if (m == NULL)
        return err ? err->status : RF_ERR_FORMAT;
    rf_status st = RF_OK;
    uint32_t chunk_size = 0;
    const rf_kv *ds = rf_model_find_kv(m, "imatrix.datasets");
    if (ds == NULL)
        st = rf_error_set(err, RF_ERR_FORMAT,
                          "%s: imatrix GGUF lacks the key imatrix.datasets (llama-quantize "
                          "requires imatrix.datasets, imatrix.chunk_count and imatrix.chunk_size)",
                          path);
    if (st == RF_OK)
        st = gguf_u32_key(m, path, "imatrix.chunk_count", &im->chunk_count, err);
    if (st == RF_OK)
        st = gguf_u32_key(m, path, "imatrix.chunk_size", &chunk_size, err);
    if (st == RF_OK && ds->value.type == RF_VALUE_ARRAY &&
        ds->value.as.arr.elem_type == RF_VALUE_STRING && ds->value.as.arr.count > 0) {
        im->dataset = strdup(ds->value.as.arr.items[0].as.str.data);
        if (im->dataset == NULL)
            st = rf_error_set(err, RF_ERR_NOMEM, "out of memory reading %s", path);
    }
    size_t capacity = 0, n_sums = 0;
    for (size_t i = 0; st == RF_OK && i < rf_model_n_tensors(m); i++) {
        const rf_tensor *sums = rf_model_tensor(m, i);
        size_t stem;
        if (!strip_suffix(sums->name, SUMS_SUFFIX, &stem))
            continue;
        n_sums++;
        char counts_name[512];
        if (stem + sizeof COUNTS_SUFFIX > sizeof counts_name) {
            st = rf_error_set(err, RF_ERR_FORMAT, "%s: tensor name %s is too long", path,
                              sums->name);
            break;
        }
        memcpy(counts_name, sums->name, stem);
        memcpy(counts_name + stem, COUNTS_SUFFIX, sizeof COUNTS_SUFFIX);
        const rf_tensor *counts = rf_model_find_tensor(m, counts_name);
        if (counts == NULL) {
            st = rf_error_set(err, RF_ERR_FORMAT, "%s: %s has no matching %s tensor", path,
                              sums->name, counts_name);
            break;
        }
        uint64_t n_values = 0, n_counts = 0;
        if ((st = f32_tensor(sums, path, &n_values, err)) != RF_OK ||
            (st = f32_tensor(counts, path, &n_counts, err)) != RF_OK)
            break;
        if (n_counts == 0 || n_values == 0 || n_values % n_counts != 0) {
            st = rf_error_set(err, RF_ERR_FORMAT,
                              "%s: %s holds %llu values, not a positive multiple of the %llu "
                              "counts in %s",
                              path, sums->name, (unsigned long long)n_values,
                              (unsigned long long)n_counts, counts_name);
            break;
        }
        float *values = malloc((size_t)n_values * sizeof *values);
        if (values == NULL) {
            st = rf_error_set(err, RF_ERR_NOMEM, "out of memory reading %s", path);
            break;
        }
        const uint64_t per_expert = n_values / n_counts;
        for (uint64_t j = 0; j < n_counts; j++) {
            float raw = load_f32(counts->data + 4 * j);
            /* llama.cpp keeps counts as lround()ed integers and divides by them as float */
            double rounded = isfinite(raw) ? round((double)raw) : 0.0;
            const float count = rounded > 0.0 ? (float)(int64_t)rounded : 0.0f;
            for (uint64_t k = 0; k < per_expert; k++) {
                uint64_t idx = j * per_expert + k;
                values[idx] = count > 0.0f ? load_f32(sums->data + 4 * idx) / count : 1.0f;
            }
        }
        st = add_entry(im, sums->name, stem, values, n_values, &capacity, err);
    }
    for (size_t i = 0; st == RF_OK && i < rf_model_n_tensors(m); i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        size_t stem;
        if (strip_suffix(t->name, COUNTS_SUFFIX, &stem)) {
            char sums_name[512];
            if (stem + sizeof SUMS_SUFFIX > sizeof sums_name)
                continue;
            memcpy(sums_name, t->name, stem);
            memcpy(sums_name + stem, SUMS_SUFFIX, sizeof SUMS_SUFFIX);
            if (rf_model_find_tensor(m, sums_name) == NULL)
                st = rf_error_set(err, RF_ERR_FORMAT, "%s: %s has no matching %s tensor", path,
                                  t->name, sums_name);
        }
    }
    if (st == RF_OK && n_sums == 0)
        st = rf_error_set(err, RF_ERR_FORMAT, "%s: imatrix GGUF holds no *.in_sum2 tensors", path);
    rf_model_free(m);
    im->format = RF_IMATRIX_GGUF;
    return st;
}

rf_imatrix *rf_imatrix_open(const char *path, rf_error *err)
{
    rf_imatrix *im = calloc(1, sizeof *im);
    if (im == NULL) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory opening %s", path);
        return NULL;
    }
    rf_file *file = rf_file_open(path, err);
    if (file == NULL) {
        free(im);
        return NULL;
    }
    rf_status st;
    const uint8_t *data = rf_file_data(file);
    if (rf_file_size(file) >= 4 && memcmp(data, "GGUF", 4) == 0) {
        rf_file_close(file);
        st = load_gguf(im, path, err);
    } else {
        st = load_legacy(im, file, err);
        rf_file_close(file);
    }
    /* llama-quantize refuses a matrix with a NaN or an infinity anywhere */
    for (size_t i = 0; st == RF_OK && i < im->n_entries; i++) {
        for (uint64_t k = 0; k < im->entries[i].n_values; k++) {
            if (!isfinite(im->entries[i].values[k])) {
                st = rf_error_set(
                    err, RF_ERR_FORMAT, "%s: imatrix entry %s: value %llu is not finite (%g)", path,
                    im->entries[i].name, (unsigned long long)k, (double)im->entries[i].values[k]);
                break;
            }
        }
    }
    if (st != RF_OK) {
        rf_imatrix_free(im);
        return NULL;
    }
    if (im->n_entries > 1)
        qsort(im->entries, im->n_entries, sizeof *im->entries, entry_cmp);
    return im;
}

rf_imatrix_format rf_imatrix_format_of(const rf_imatrix *im) { return im->format; }

size_t rf_imatrix_n_entries(const rf_imatrix *im) { return im ? im->n_entries : 0; }

const char *rf_imatrix_entry_name(const rf_imatrix *im, size_t i)
{
    return im && i < im->n_entries ? im->entries[i].name : NULL;
}

const float *rf_imatrix_find(const rf_imatrix *im, const char *name, uint64_t *n_values)
{
    if (im == NULL || name == NULL)
        return NULL;
    entry key = {(char *)name, NULL, 0};
    const entry *e = bsearch(&key, im->entries, im->n_entries, sizeof *im->entries, entry_cmp);
    if (e == NULL)
        return NULL;
    if (n_values)
        *n_values = e->n_values;
    return e->values;
}

const char *rf_imatrix_dataset(const rf_imatrix *im) { return im ? im->dataset : NULL; }

uint32_t rf_imatrix_chunk_count(const rf_imatrix *im) { return im ? im->chunk_count : 0; }
