/* Private declarations of the model view (not installed): building a model (readers, writers,
 * the pipeline, tests linked with the internal library), the readers' openers, deep copies. */
#ifndef ROSETTA_MODEL_INTERNAL_H
#define ROSETTA_MODEL_INTERNAL_H

#include "io.h"
#include "rosetta/model.h"

/* ---- building (readers, writers, the pipeline, tests)
 * ---------------------------------------------- */

/* An empty model of the given source format. NULL on allocation failure. */
rf_model *rf_model_new(rf_format format, rf_error *err);
void rf_model_set_format_version(rf_model *model, uint32_t version);
rf_status rf_model_set_path(rf_model *model, const char *path, rf_error *err);

/* Memory owned by the model, freed with it (zeroed). NULL on failure, including a size so large
 * that rounding it up would wrap. */
void *rf_model_alloc(rf_model *model, size_t size);
/* count elements of elem bytes each, zeroed, owned by the model: NULL on failure, including a
 * count x elem that does not fit in size_t. Use it for every array (never multiply by hand). */
void *rf_model_alloc_array(rf_model *model, uint64_t count, size_t elem);
/* A copy of s (or of its first n bytes, NUL-terminated) owned by the model. */
char *rf_model_strdup(rf_model *model, const char *s);
char *rf_model_strndup(rf_model *model, const char *s, size_t n);

/* The model takes ownership of a mapped file (tensor data may point into it). Returns its
 * source index. */
rf_status rf_model_add_file(rf_model *model, rf_file *file, uint32_t *index, rf_error *err);

/* Appends a tensor; the descriptor is copied and the name interned. Fails on a duplicate name
 * (RF_ERR_FORMAT) or ndim > RF_MAX_DIMS. */
rf_status rf_model_add_tensor(rf_model *model, const rf_tensor *tensor, rf_error *err);

/* Appends a key/value pair; key and value (deeply) are copied into the model. */
rf_status rf_model_add_kv(rf_model *model, const char *key, const rf_value *value, rf_error *err);

/* Mutable views for readers filling them in. Strings and arrays stored in them must belong to
 * the same model (rf_model_alloc / rf_model_strdup), never to another model. */
rf_model_config *rf_model_config_mut(rf_model *model);
rf_tokenizer *rf_model_tokenizer_mut(rf_model *model); /* creates an empty one on first use */

rf_status rf_model_add_warning(rf_model *model, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Source file i (mapped), or NULL past the end. */
const rf_file *rf_model_file(const rf_model *model, size_t index);

/* Each reader opens one format and returns a filled model, or NULL with err set. */
rf_model *rf_gguf_open_model(const char *path, const rf_open_options *opts, rf_error *err);
rf_model *rf_safetensors_open_model(const char *path, const rf_open_options *opts, rf_error *err);
rf_model *rf_apr_open_model(const char *path, const rf_open_options *opts, rf_error *err);

/* rf_open_options.architecture for the readers whose config is not keyed by architecture
 * (SafeTensors, APR): config.architecture becomes arch (and the RoPE type, when unknown, the
 * one arch implies), with a warning when the file names another or none. arch NULL: nothing.
 * RF_ERR_NOMEM on failure. */
rf_status rfi_model_use_architecture(rf_model *model, const char *arch, rf_error *err);

/* Deep copies of src's configuration and tokenizer into dst's arena (strings, token lists,
 * merges and types): dst then holds no pointer into src. A src without tokenizer leaves dst's
 * as it is. RF_ERR_NOMEM on failure. */
rf_status rfi_model_copy_config(rf_model *dst, const rf_model *src, rf_error *err);
rf_status rfi_model_copy_tokenizer(rf_model *dst, const rf_model *src, rf_error *err);

#endif
