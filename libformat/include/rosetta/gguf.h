/* GGUF v3 (docs/formats/gguf.md): writing a model view to a file llama.cpp accepts, and the layout
 * facts of a GGUF file that the model view does not carry (alignment, data offset, byte order).
 * Reading goes through rf_model_open (model.h), which validates like ggml's reader.
 * Not for: name mapping between formats (names.h) or quantization (quant.h). */
#ifndef ROSETTA_GGUF_H
#define ROSETTA_GGUF_H

#include <stdbool.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_GGUF_VERSION           3
#define RF_GGUF_DEFAULT_ALIGNMENT 32u
/* Longest tensor name in bytes: ggml's GGML_MAX_NAME is 64 including the NUL. */
#define RF_GGUF_MAX_NAME 63
/* ggml's GGUF_MAX_DIMS / GGML_MAX_DIMS. */
#define RF_GGUF_MAX_DIMS 4
/* Value of general.quantization_version for the current block formats (GGML_QNT_VERSION). */
#define RF_GGUF_QUANTIZATION_VERSION 2u
/* ggml's limits on one string (GGUF_MAX_STRING_LENGTH) and one array (GGUF_MAX_ARRAY_ELEMENTS). */
#define RF_GGUF_MAX_STRING_LENGTH  (1ull << 30)
#define RF_GGUF_MAX_ARRAY_ELEMENTS (1ull << 30)
/* Rosetta's limit on metadata values in one file (array elements included), so that a crafted
 * file cannot make the reader allocate without bound (real tokenizers hold about 10^6). */
#define RF_GGUF_MAX_VALUES (1ull << 25)
/* Deepest nesting of arrays of arrays the reader accepts. */
#define RF_GGUF_MAX_NESTING 16

typedef struct rf_gguf_write_options {
    /* Data alignment: 0 keeps the source's general.alignment (GGUF sources) or uses 32; any
     * other value must be a power of two and is recorded in general.alignment when it is not 32
     * or when the source already had the key. */
    uint32_t alignment;
    /* Write metadata arrays of arrays. The spec allows them but ggml's reader (llama.cpp)
     * rejects the file, so the writer refuses them unless this is set. */
    bool allow_nested_arrays;
} rf_gguf_write_options;

/* Writes m as a little-endian GGUF v3 file at path, atomically (temp file, fsync, verify by
 * re-reading it with Rosetta's strict reader, rename). opts may be NULL.
 *
 * Tensors: in the model's order, data bytes copied verbatim, ne[] = the row-major shape reversed,
 * n_dims = the tensor's rank (a rank-0 tensor becomes n_dims 1), offsets = running sum of sizes
 * padded to the alignment, zero padding after every tensor including the last.
 * Metadata of a GGUF source: every KV pair in order with its exact type (general.alignment
 * updated if opts->alignment changes it; general.quantization_version = 2 appended when a tensor
 * is quantized and the key is missing). So reading a canonical GGUF and writing it back gives
 * the same bytes.
 * Other sources (SafeTensors, APR): metadata synthesized from the typed config and tokenizer the
 * way llama.cpp's convert_hf_to_gguf.py writes a Qwen2 model (docs/formats/gguf.md), tensor
 * names mapped to GGUF (names.h), the output head omitted when tie_word_embeddings is 1, and F16
 * or BF16 vectors (norms, biases; also *_norm.weight of any rank) widened exactly to F32, as the
 * converter stores them: llama.cpp's CPU backend cannot apply an F16/BF16 norm or bias.
 *
 * Fails with RF_ERR_UNSUPPORTED (a dtype GGUF cannot hold, rank > 4, name longer than 63 bytes,
 * nested arrays, a tokenizer larger than the embedding), RF_ERR_ARGUMENT (bad alignment,
 * duplicate or empty keys, a value out of its type's range), RF_ERR_WRITE; nothing is left at
 * path on failure. */
RF_API rf_status rf_gguf_write(const rf_model *m, const char *path,
                               const rf_gguf_write_options *opts, rf_error *err);

/* The key/value pairs rf_gguf_write(m, ..., opts) would write, in order, in memory (no file):
 * a GGUF source's own pairs (general.alignment and general.quantization_version settled as the
 * writer settles them), or the pairs synthesized from a SafeTensors/APR model's config and
 * tokenizer (architecture, sizes, rope, general.file_type when the matrices share one type,
 * tokenizer.ggml.*, chat template). The list owns copies of everything (free it with
 * rf_kv_list_free). Fails as rf_gguf_write's checks do (e.g. RF_ERR_UNSUPPORTED when the
 * architecture cannot be named), naming the model's path. */
RF_API rf_status rf_gguf_metadata(const rf_model *m, const rf_gguf_write_options *opts,
                                  rf_kv_list **out, rf_error *err);

/* Reads a GGUF image held in memory (tests, fuzzers) like rf_model_open reads a file; the
 * memory must outlive the model, whose tensor data points into it. name is used in messages. */
RF_API rf_model *rf_gguf_open_memory(const void *data, uint64_t size, const char *name,
                                     const rf_open_options *opts, rf_error *err);

/* Layout of a GGUF file, found by scanning its header (no allocation proportional to the file). */
typedef struct rf_gguf_layout {
    uint32_t version;
    bool big_endian; /* every scalar and plain tensor element is byte-swapped */
    uint64_t n_tensors;
    uint64_t n_kv;
    uint32_t alignment;          /* general.alignment, or 32 when absent or invalid */
    uint64_t tensor_info_offset; /* where the tensor-info records start */
    uint64_t data_offset;        /* start of the data section: the padded end of the tensor infos */
} rf_gguf_layout;

/* Scans the GGUF header in data[0..size) (name is used in messages). Fails with RF_ERR_FORMAT
 * when the header cannot be walked (bad magic or version, truncation, unknown value type). */
RF_API rf_status rf_gguf_scan_layout(const uint8_t *data, uint64_t size, const char *name,
                                     rf_gguf_layout *out, rf_error *err);

/* The layout of the file a GGUF model was read from (its first source file). */
RF_API rf_status rf_gguf_model_layout(const rf_model *m, rf_gguf_layout *out, rf_error *err);

/* The name llama.cpp gives a general.file_type value (its llama_ftype, named as
 * llama_ftype_name in llama.cpp's src/llama-model-loader.cpp does): 15 -> "Q4_K - Medium",
 * 0 -> "all F32", 7 -> "Q8_0". NULL for a value llama.cpp does not name. */
RF_API const char *rf_gguf_file_type_name(uint64_t file_type);

#ifdef __cplusplus
}
#endif
#endif
