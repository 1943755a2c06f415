/* Private declarations shared by the format readers and rf_model_open (not installed). */
#ifndef ROSETTA_MODEL_INTERNAL_H
#define ROSETTA_MODEL_INTERNAL_H

#include "rosetta/model.h"

/* Each reader opens one format and returns a filled model, or NULL with err set. */
rf_model *rf_gguf_open_model(const char *path, const rf_open_options *opts, rf_error *err);
rf_model *rf_safetensors_open_model(const char *path, const rf_open_options *opts, rf_error *err);
rf_model *rf_apr_open_model(const char *path, const rf_open_options *opts, rf_error *err);

/* Deep copies of src's configuration and tokenizer into dst's arena (strings, token lists,
 * merges and types): dst then holds no pointer into src. A src without tokenizer leaves dst's
 * as it is. RF_ERR_NOMEM on failure. */
rf_status model_copy_config(rf_model *dst, const rf_model *src, rf_error *err);
rf_status model_copy_tokenizer(rf_model *dst, const rf_model *src, rf_error *err);

#endif
