/* rf_open_options.architecture for the readers whose config is not keyed by architecture
 * (SafeTensors, APR); the GGUF reader applies it itself (gguf_read.c, fill_config). A file of
 * its own so that the readers calling it and rf_model_open calling them form no cycle. */
#include <string.h>

#include "hf_internal.h"
#include "model_internal.h"

rf_status rfi_model_use_architecture(rf_model *model, const char *arch, rf_error *err)
{
    if (!arch)
        return RF_OK;
    rf_model_config *c = rf_model_config_mut(model);
    if (c->architecture && strcmp(c->architecture, arch) == 0)
        return RF_OK;
    rf_status st =
        c->architecture
            ? rf_model_add_warning(model,
                                   "the architecture is '%.64s' but '%.64s' was asked for: "
                                   "read as '%.64s'",
                                   c->architecture, arch, arch)
            : rf_model_add_warning(model,
                                   "the architecture is missing: read as '%.64s', the "
                                   "architecture asked for",
                                   arch);
    if (st != RF_OK)
        return rf_error_set(err, st, "out of memory");
    if (!(c->architecture = rf_model_strdup(model, arch)))
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    if (c->rope_type == RF_ROPE_UNKNOWN)
        c->rope_type = rfi_hf_rope_type_for(arch);
    return RF_OK;
}
