/* Sharded SafeTensors checkpoints: model.safetensors.index.json (weight_map: tensor -> shard file)
 * checked against the shards themselves, and directories holding a plain set of *.safetensors.
 * Not for: validating one file (safetensors_read.c). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "model_internal.h"
#include "hf_internal.h"
#include "safetensors_internal.h"

/* Largest index file accepted (Qwen2.5-72B's is about 80 KB). */
#define INDEX_MAX_BYTES (64u << 20)

typedef struct map_entry {
    const char *tensor;
    const char *shard;
    bool found;
} map_entry;

static int compare_map(const void *a, const void *b)
{
    return strcmp(((const map_entry *)a)->tensor, ((const map_entry *)b)->tensor);
}

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A shard must be a plain file name in the index's directory: no path separators, no "." or "..",
 * so an index cannot make Rosetta open files elsewhere. */
static bool plain_file_name(const char *s)
{
    return s[0] != '\0' && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/') &&
           !strchr(s, '\\');
}

static map_entry *find_entry(map_entry *map, size_t n, const char *tensor)
{
    map_entry key = {tensor, NULL, false};
    return bsearch(&key, map, n, sizeof *map, compare_map);
}

rf_status rfi_st_load_index(rf_model *m, const char *index_path, const rf_open_options *opts,
                            rf_error *err)
{
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    map_entry *map = NULL;
    const char **shards = NULL;
    rf_status st = rfi_hf_read_file(index_path, INDEX_MAX_BYTES, &text, &len, err);
    if (st != RF_OK)
        goto done;
    root = rfi_hf_json_parse(text, len, 0, err);
    if (!root) {
        rf_error_prefix(err, "%s", index_path);
        st = err ? err->status : RF_ERR_FORMAT;
        goto done;
    }
    const cJSON *weight_map = rfi_hf_json_get(root, "weight_map");
    if (!cJSON_IsObject(weight_map)) {
        st = rf_error_set(err, RF_ERR_FORMAT,
                          "%s: \"weight_map\" is %s, expected an object "
                          "mapping tensor names to shard files",
                          index_path,
                          cJSON_IsObject(root) ? rfi_hf_json_kind(weight_map)
                                               : "absent (the index is not an object)");
        goto done;
    }
    size_t n = 0;
    for (const cJSON *it = weight_map->child; it; it = it->next)
        n++;
    if (n == 0) {
        st = rf_error_set(err, RF_ERR_FORMAT, "%s: \"weight_map\" is empty", index_path);
        goto done;
    }
    map = calloc(n, sizeof *map);
    shards = calloc(n, sizeof *shards);
    dir = rfi_hf_path_dir(index_path);
    if (!map || !shards || !dir) {
        st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", index_path);
        goto done;
    }
    size_t i = 0;
    for (const cJSON *it = weight_map->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it)) {
            st = rf_error_set(err, RF_ERR_FORMAT,
                              "%s: weight_map[\"%s\"] is %s, expected a shard file name",
                              index_path, it->string, rfi_hf_json_kind(it));
            goto done;
        }
        if (!plain_file_name(it->valuestring)) {
            st = rf_error_set(err, RF_ERR_FORMAT,
                              "%s: weight_map[\"%s\"] names \"%.200s\": expected a plain file "
                              "name in the index's directory (no '/', no \"..\")",
                              index_path, it->string, it->valuestring);
            goto done;
        }
        map[i] = (map_entry){it->string, it->valuestring, false};
        shards[i] = it->valuestring;
    }
    qsort(map, n, sizeof *map, compare_map);
    qsort(shards, n, sizeof *shards, compare_str);
    size_t n_shards = 0;
    for (i = 0; i < n; i++)
        if (n_shards == 0 || strcmp(shards[n_shards - 1], shards[i]) != 0)
            shards[n_shards++] = shards[i];
    for (size_t s = 0; s < n_shards; s++) {
        char *path = rfi_hf_path_join(dir, shards[s]);
        if (!path) {
            st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", index_path);
            goto done;
        }
        size_t before = rf_model_n_tensors(m);
        st = rfi_st_load_path(m, path, opts, err);
        free(path);
        if (st != RF_OK) {
            rf_error_prefix(err, "%s: shard \"%s\"", index_path, shards[s]);
            goto done;
        }
        for (size_t t = before; t < rf_model_n_tensors(m); t++) {
            const char *name = rf_model_tensor(m, t)->name;
            map_entry *e = find_entry(map, n, name);
            char what[700];
            if (!e)
                snprintf(what, sizeof what,
                         "%s: shard \"%.200s\" holds tensor \"%.200s\" which the weight_map does "
                         "not list (extra tensor)",
                         index_path, shards[s], name);
            else if (strcmp(e->shard, shards[s]) != 0)
                snprintf(what, sizeof what,
                         "%s: tensor \"%.200s\" is in shard \"%.100s\" but the weight_map puts it "
                         "in \"%.100s\"",
                         index_path, name, shards[s], e->shard);
            else {
                e->found = true;
                continue;
            }
            if (!(opts && opts->lenient)) {
                st = rf_error_set(err, RF_ERR_FORMAT, "%s", what);
                goto done;
            }
            rf_model_add_warning(m, "%s", what);
            if (e)
                e->found = true; /* present, only in another shard than the map says */
        }
    }
    size_t n_missing = 0;
    for (i = 0; i < n; i++)
        if (!map[i].found)
            n_missing++;
    for (i = 0; i < n && n_missing; i++)
        if (!map[i].found) {
            char what[600];
            snprintf(what, sizeof what,
                     "%s: weight_map lists tensor \"%.200s\" in shard \"%.200s\" but that shard "
                     "does not hold it (missing tensor; %zu missing in all)",
                     index_path, map[i].tensor, map[i].shard, n_missing);
            if (opts && opts->lenient) {
                rf_model_add_warning(m, "%s", what);
                continue;
            }
            st = rf_error_set(err, RF_ERR_FORMAT, "%s", what);
            goto done;
        }
    /* metadata.total_size is informational (some tools write file sizes): warn on mismatch. */
    const cJSON *total = rfi_hf_json_get(rfi_hf_json_get(root, "metadata"), "total_size");
    uint64_t declared;
    if (total && rfi_hf_json_u64(total, &declared) == HF_NUM_OK) {
        uint64_t sum = 0;
        for (size_t t = 0; t < rf_model_n_tensors(m); t++)
            sum += rf_model_tensor(m, t)->nbytes;
        if (declared != sum)
            rf_model_add_warning(m,
                                 "%s: metadata.total_size is %llu but the tensors hold %llu bytes",
                                 index_path, (unsigned long long)declared, (unsigned long long)sum);
    }
done:
    cJSON_Delete(root);
    free(text);
    free(map);
    free(shards);
    free(dir);
    return st;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

rf_status rfi_st_load_set(rf_model *m, const char *dir, const rf_open_options *opts, rf_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return rf_error_set(err, RF_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    rf_status st = RF_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".safetensors"))
            continue;
        char *path = rfi_hf_path_join(dir, e->d_name);
        struct stat sb;
        if (!path || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            free(path);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **p = realloc(names, ncap * sizeof *names);
            if (!p) {
                free(path);
                st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", dir);
                break;
            }
            names = p;
            cap = ncap;
        }
        names[n++] = path;
    }
    closedir(d);
    if (st == RF_OK && n == 0)
        st = rf_error_set(err, RF_ERR_NOT_FOUND,
                          "%s: no %s, %s or *.safetensors file in this directory", dir,
                          RF_SAFETENSORS_MODEL_FILE, RF_SAFETENSORS_INDEX_FILE);
    if (st == RF_OK) {
        qsort(names, n, sizeof *names, compare_str);
        for (size_t i = 0; i < n && st == RF_OK; i++)
            st = rfi_st_load_path(m, names[i], opts, err);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}
