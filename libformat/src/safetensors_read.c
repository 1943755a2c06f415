/* safetensors reader: placeholder until the Format I/O issue lands; refuses every file. */
#include "model_internal.h"

rf_model *rf_safetensors_open_model(const char *path, const rf_open_options *opts, rf_error *err)
{
    (void)opts;
    rf_error_set(err, RF_ERR_UNSUPPORTED, "%s: reading safetensors is not available in this build", path);
    return NULL;
}
