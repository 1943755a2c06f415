/* SafeTensors reading and writing (docs/formats/safetensors.md): single files, checkpoint
 * directories, sharded checkpoints with model.safetensors.index.json, and the Hugging Face
 * companion files (config.json, generation_config.json, tokenizer.json, tokenizer_config.json).
 * Reading goes through rf_model_open (model.h); this header adds what is SafeTensors-only.
 * Not for: other formats, or converting dtypes (a writer stores tensors as they are). */
#ifndef ROSETTA_SAFETENSORS_H
#define ROSETTA_SAFETENSORS_H

#include <stdbool.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The reference reader's cap on the JSON header length (bytes). */
#define RF_SAFETENSORS_MAX_HEADER 100000000u

/* Name of the weights file in a single-file checkpoint directory and of a shard index. */
#define RF_SAFETENSORS_MODEL_FILE "model.safetensors"
#define RF_SAFETENSORS_INDEX_FILE "model.safetensors.index.json"

/* Opens one SafeTensors file held in memory (fuzzers, tests, in-memory buffers). The memory must
 * outlive the model; name appears in messages. No companion files are read. Same rules as
 * rf_model_open on a file; NULL with err set on failure. */
RF_API rf_model *rf_safetensors_open_memory(const void *data, uint64_t size, const char *name,
                                            const rf_open_options *opts, rf_error *err);

typedef struct rf_safetensors_write_options {
    /* 0: one file. Otherwise the most tensor-data bytes per shard: tensors are taken in model
     * order and a new shard starts when the next tensor would overflow the current one (a tensor
     * larger than the limit gets a shard of its own), as transformers does. Output that fits in
     * one shard is written as model.safetensors without an index. Needs a directory target. */
    uint64_t max_shard_size;
    /* Do not write config.json, generation_config.json, tokenizer.json, tokenizer_config.json. */
    bool no_companions;
    /* Build the companion files from the typed config and tokenizer even when the model carries
     * the original files as raw metadata ("hf.config.json", ...). */
    bool regenerate_companions;
    /* Value of the __metadata__ key "rosetta.provenance" (docs/design.md section 6), or NULL. */
    const char *provenance;
} rf_safetensors_write_options;

/* Writes m as SafeTensors with the reference writer's conventions: compact header JSON,
 * __metadata__ first (keys sorted), each entry {dtype, shape, data_offsets}, tensors ordered by
 * dtype (descending in the reference enum order: U64, I64, F64, C64, F32, ..., BOOL) then by name,
 * header padded with spaces so the data starts at a multiple of 8, no padding between tensors.
 *
 * path_or_dir ending in ".safetensors" (and not an existing directory) is written as that single
 * file, without companions. Anything else is a checkpoint directory (created if missing) that
 * receives model.safetensors, or model-0000i-of-0000N.safetensors shards plus
 * model.safetensors.index.json (written last), and the companion files: reproduced from the raw
 * "hf.*" metadata when the model has it, else built from the typed config and tokenizer.
 *
 * __metadata__: the model's string key/values when it came from SafeTensors, else
 * {"format": "pt"}; plus "rosetta.provenance" when given. Tensor names are written as they are
 * in the model. When config says tie_word_embeddings, lm_head.weight is left out (Hugging Face
 * convention, docs/design.md section 3). Every file goes through the atomic writer and is re-read
 * and checked before it is renamed into place; on failure files already written by this call are
 * removed. Tensors whose dtype SafeTensors cannot hold (GGML block types, APR_Q4/APR_Q8) fail
 * with RF_ERR_UNSUPPORTED. The same model and options always give the same bytes. */
RF_API rf_status rf_safetensors_write(const rf_model *m, const char *path_or_dir,
                                      const rf_safetensors_write_options *opts, rf_error *err);

/* Rank of a dtype in the reference implementation's Dtype enum (BOOL 0, F4 1, ... U64 21), the
 * key of the writer's sort; -1 for dtypes SafeTensors cannot hold. */
RF_API int rf_safetensors_dtype_rank(rf_dtype dtype);

/* Bits per element of a SafeTensors dtype (4 for F4, 6 for F6_*, 8 for BOOL ...); 0 if none. */
RF_API unsigned rf_safetensors_dtype_bits(rf_dtype dtype);

#ifdef __cplusplus
}
#endif
#endif
