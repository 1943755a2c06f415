/* Opening a SafeTensors model by path: a single file, a checkpoint directory (model.safetensors,
 * a shard index, or a set of *.safetensors files) or an index file, plus the Hugging Face
 * companion files beside the weights. Calls the file reader (safetensors_read.c) and the index
 * and set loaders (safetensors_index.c), which call only the file reader.
 * Not for: validating a file's bytes (safetensors_read.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hf_internal.h"
#include "model_internal.h"
#include "rosetta/detect.h"
#include "rosetta/safetensors.h"
#include "safetensors_internal.h"

static bool is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads the companion files beside the weights; in lenient mode a bad one becomes a warning. */
static rf_status load_companions(rf_model *m, const char *dir, const rf_open_options *opts,
                                 rf_error *err)
{
    rf_error local;
    rf_status st = rfi_hf_read_companions(m, dir, &local);
    if (st == RF_OK)
        return RF_OK;
    if (opts && opts->lenient && st != RF_ERR_NOMEM) {
        rf_model_add_warning(m, "%s", local.message);
        return RF_OK;
    }
    if (err)
        *err = local;
    return st;
}

rf_model *rf_safetensors_open_model(const char *path, const rf_open_options *opts, rf_error *err)
{
    static const rf_open_options defaults = {0};
    if (!opts)
        opts = &defaults;
    struct stat st;
    if (stat(path, &st) != 0) {
        rf_error_set(err, RF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        return NULL;
    }
    rf_model *m = rf_model_new(RF_FORMAT_SAFETENSORS, err);
    if (!m)
        return NULL;
    rf_status status = rf_model_set_path(m, path, err);
    char *dir = NULL, *file = NULL;
    if (status != RF_OK)
        goto fail;
    if (S_ISDIR(st.st_mode)) {
        dir = strdup(path);
        file = rfi_hf_path_join(path, RF_SAFETENSORS_MODEL_FILE);
        if (!dir || !file) {
            status = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        if (is_regular(file))
            status = rfi_st_load_path(m, file, opts, err);
        else {
            free(file);
            file = rfi_hf_path_join(path, RF_SAFETENSORS_INDEX_FILE);
            if (!file) {
                status = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
                goto fail;
            }
            if (is_regular(file))
                status = rfi_st_load_index(m, file, opts, err);
            else
                status = rfi_st_load_set(m, path, opts, err);
        }
    } else {
        dir = rfi_hf_path_dir(path);
        if (!dir) {
            status = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        rf_format format;
        status = rf_detect_path(path, &format, err);
        if (status == RF_OK) {
            if (format == RF_FORMAT_SAFETENSORS_INDEX)
                status = rfi_st_load_index(m, path, opts, err);
            else
                status = rfi_st_load_path(m, path, opts, err);
        }
    }
    if (status == RF_OK)
        status = load_companions(m, dir, opts, err);
    if (status == RF_OK)
        status = rfi_model_use_architecture(m, opts->architecture, err);
    if (status != RF_OK)
        goto fail;
    free(dir);
    free(file);
    return m;
fail:
    free(dir);
    free(file);
    rf_model_free(m);
    return NULL;
}
