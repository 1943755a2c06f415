/* Private declarations shared by safetensors_read.c, safetensors_index.c and safetensors_write.c.
 */
#ifndef ROSETTA_SAFETENSORS_INTERNAL_H
#define ROSETTA_SAFETENSORS_INTERNAL_H

#include "rosetta/model.h"
#include "rosetta/safetensors.h"

/* Validates one SafeTensors file (the seven rules of docs/formats/safetensors.md plus duplicate
 * keys) held in data[0..size), then appends its tensors in data-offset order (source = source)
 * and its __metadata__ pairs as RF_VALUE_STRING key/values (kept as they are; a key already
 * present with the same value is not repeated, a different value is a warning). name is the
 * path used in messages. A tensor name already in m fails, naming the file that holds it. In
 * lenient mode, per-tensor problems (offsets, sizes, unknown dtypes) become warnings and the
 * affected tensors are left out. */
rf_status rfi_st_load_file(rf_model *m, const uint8_t *data, uint64_t size, const char *name,
                           uint32_t source, const rf_open_options *opts, rf_error *err);

/* Maps path (a regular file) and loads it as source number n_files(m). */
rf_status rfi_st_load_path(rf_model *m, const char *path, const rf_open_options *opts,
                           rf_error *err);

/* Loads a sharded checkpoint through its index (model.safetensors.index.json): every shard named
 * in the weight map is loaded once (in file-name order) and the weight map and the shards must
 * agree exactly. */
rf_status rfi_st_load_index(rf_model *m, const char *index_path, const rf_open_options *opts,
                            rf_error *err);

/* Loads every *.safetensors file of dir (in file-name order) as one model; no tensor may appear
 * twice. RF_ERR_NOT_FOUND when there is none. */
rf_status rfi_st_load_set(rf_model *m, const char *dir, const rf_open_options *opts, rf_error *err);

/* Writes "[d0,d1,...]" of a shape into buf (truncated with "..." when too long). */
void rfi_st_format_shape(char *buf, size_t size, const uint64_t *shape, int ndim);

#endif
