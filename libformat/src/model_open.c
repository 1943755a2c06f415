/* rf_model_open: detect the format by content and hand the path to its reader. */
#include "rosetta/model.h"

#include "model_internal.h"

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
    rf_error_set(err, RF_ERR_FORMAT,
                 "%s: unknown format (offset 0): expected GGUF, SafeTensors or APR magic bytes",
                 path);
    return NULL;
}
