/* apr reader: placeholder until the Format I/O issue lands; refuses every file. */
#include "model_internal.h"

rf_model *rf_apr_open_model(const char *path, const rf_open_options *opts, rf_error *err)
{
    (void)opts;
    rf_error_set(err, RF_ERR_UNSUPPORTED, "%s: reading apr is not available in this build", path);
    return NULL;
}
