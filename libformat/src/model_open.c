/* rf_model_open: detect the format by content and hand the path to its reader. */
#include "rosetta/model.h"

#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "model_internal.h"

static bool has_model_extension(const char *path)
{
    static const char *const ext[] = {".gguf", ".apr", ".safetensors"};
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        size_t n = strlen(ext[i]);
        if (len >= n && strncasecmp(path + len - n, ext[i], n) == 0)
            return true;
    }
    return false;
}

rf_model *rf_model_open(const char *path, const rf_open_options *opts, rf_error *err)
{
    static const rf_open_options defaults = {0};
    if (!opts)
        opts = &defaults;
    rf_format format;
    if (rf_detect_path(path, &format, err) != RF_OK)
        return NULL;
    switch (format) {
    case RF_FORMAT_GGUF: return rf_gguf_open_model(path, opts, err);
    case RF_FORMAT_SAFETENSORS:
    case RF_FORMAT_SAFETENSORS_INDEX:
    case RF_FORMAT_SAFETENSORS_DIR: return rf_safetensors_open_model(path, opts, err);
    case RF_FORMAT_APR:
    case RF_FORMAT_APR2_MAGIC: return rf_apr_open_model(path, opts, err);
    case RF_FORMAT_APR_V1:
    case RF_FORMAT_APR1:
    case RF_FORMAT_APRT:
    case RF_FORMAT_APR_TSP:
        rf_error_set(err, RF_ERR_UNSUPPORTED,
                     "%s: %s is recognised but cannot be loaded as a model", path,
                     rf_format_description(format));
        return NULL;
    case RF_FORMAT_UNKNOWN: break;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (has_model_extension(path))
            rf_error_set(err, RF_ERR_IO, "%s: is a directory, not a model file", path);
        else
            rf_error_set(err, RF_ERR_IO,
                         "%s: no model files in the directory (a SafeTensors checkpoint directory "
                         "holds *.safetensors or model.safetensors.index.json)",
                         path);
        return NULL;
    }
    rf_error_set(err, RF_ERR_FORMAT,
                 "%s: unknown format (offset 0): expected GGUF, SafeTensors or APR magic bytes",
                 path);
    return NULL;
}
