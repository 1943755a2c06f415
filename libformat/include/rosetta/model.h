/* The one model view (docs/design.md section 2): every format loads into it and every writer takes
 * it. A model is a list of tensors (name, dtype, row-major shape, byte span mapped from the source,
 * never copied unless asked), typed configuration, the raw metadata of the source format (kept
 * so that a round trip loses nothing) and the tokenizer when present.
 * Not for: format-specific parsing (gguf.h, safetensors.h, apr.h) or name mapping (names.h). */
#ifndef ROSETTA_MODEL_H
#define ROSETTA_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/detect.h"
#include "rosetta/dtype.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_MAX_DIMS 8

/* A tensor descriptor. shape is row-major [outer ... inner] in every format (GGUF ne[] is
 * reversed on read). data points into a mapped source file or into memory the model owns.
 * How the values lie in data is the format's business: read them with rf_tensor_dequantize or
 * rf_tensor_dequantize_range (quant.h), which follow row_stride, never by offsets of one's own. */
typedef struct rf_tensor {
    const char *name;
    rf_dtype dtype;
    int ndim;
    uint64_t shape[RF_MAX_DIMS];
    const uint8_t *data;
    uint64_t nbytes;
    uint64_t file_offset; /* absolute offset of the data in its source file */
    uint32_t source;      /* index of the source file (shard) it came from */
    /* 0: the values are one run of elements or blocks (aprender may pad the last block of a
     * K-quant run). Otherwise every row of the innermost dimension starts row_stride bytes after
     * the previous one and is padded to whole blocks (APR Q4_K/Q6_K whose rows are not a
     * multiple of 256 values); such a tensor has no GGUF form. */
    uint64_t row_stride;
} rf_tensor;

/* Metadata values. Codes 0..12 equal the GGUF metadata value types. */
typedef enum rf_value_type {
    RF_VALUE_U8 = 0,
    RF_VALUE_I8 = 1,
    RF_VALUE_U16 = 2,
    RF_VALUE_I16 = 3,
    RF_VALUE_U32 = 4,
    RF_VALUE_I32 = 5,
    RF_VALUE_F32 = 6,
    RF_VALUE_BOOL = 7,
    RF_VALUE_STRING = 8,
    RF_VALUE_ARRAY = 9,
    RF_VALUE_U64 = 10,
    RF_VALUE_I64 = 11,
    RF_VALUE_F64 = 12,
    RF_VALUE_JSON = 64, /* a JSON value kept as compact text (APR / SafeTensors metadata) */
} rf_value_type;

typedef struct rf_value rf_value;
struct rf_value {
    rf_value_type type;
    union {
        uint64_t u; /* U8, U16, U32, U64 */
        int64_t i;  /* I8, I16, I32, I64 */
        double f;   /* F32 (exactly representable), F64 */
        bool b;     /* BOOL */
        struct {    /* STRING and JSON: NUL-terminated copy; len excludes the NUL */
            const char *data;
            uint64_t len;
        } str;
        struct { /* ARRAY */
            rf_value_type elem_type;
            uint64_t count;
            const rf_value *items; /* count values of elem_type (nested arrays allowed) */
        } arr;
    } as;
};

typedef struct rf_kv {
    const char *key;
    rf_value value;
} rf_kv;

/* A list of key/value pairs that owns its keys and values (deep copies), e.g. the metadata a
 * writer would store (rf_gguf_metadata). Independent of the model it was made from. */
typedef struct rf_kv_list rf_kv_list;
RF_API size_t rf_kv_list_count(const rf_kv_list *list);
/* Pair i in order, or NULL past the end. */
RF_API const rf_kv *rf_kv_list_get(const rf_kv_list *list, size_t index);
/* First pair with this key, or NULL. */
RF_API const rf_kv *rf_kv_list_find(const rf_kv_list *list, const char *key);
RF_API void rf_kv_list_free(rf_kv_list *list);

typedef enum rf_rope_type {
    RF_ROPE_UNKNOWN = 0,
    RF_ROPE_NORM, /* adjacent pairs (llama) */
    RF_ROPE_NEOX, /* halves (Qwen2, GPT-NeoX) */
} rf_rope_type;

/* Typed configuration. Integer fields are 0 and ids -1 when unknown; tie_word_embeddings is
 * -1 when unknown. Strings are owned by the model (NULL when absent). */
typedef struct rf_model_config {
    const char *architecture; /* "qwen2" */
    const char *name;         /* general.name or the HF _name_or_path, if any */
    uint64_t hidden_size;
    uint64_t n_layers;
    uint64_t n_heads;
    uint64_t n_kv_heads;
    uint64_t head_dim;
    uint64_t intermediate_size;
    uint64_t vocab_size;
    uint64_t context_length;
    double rope_theta;
    rf_rope_type rope_type;
    double rms_norm_eps;
    int tie_word_embeddings;
    int64_t bos_token_id;
    int64_t eos_token_id;
    int64_t pad_token_id;
    const char *chat_template;
} rf_model_config;

typedef enum rf_token_type {
    RF_TOKEN_NORMAL = 1,
    RF_TOKEN_UNKNOWN = 2,
    RF_TOKEN_CONTROL = 3,
    RF_TOKEN_USER_DEFINED = 4,
    RF_TOKEN_UNUSED = 5,
    RF_TOKEN_BYTE = 6,
} rf_token_type;

/* Tokenizer data as stored in the file (GGUF tokenizer.ggml.*, HF tokenizer.json, APR
 * tokenizer.*). tokens[i] is the byte-level string of id i; token_types may be NULL. */
typedef struct rf_tokenizer {
    const char *model; /* "gpt2" for byte-level BPE */
    const char *pre;   /* pre-tokenizer name: "qwen2" */
    uint64_t n_tokens;
    const char **tokens;
    const int32_t *token_types;
    uint64_t n_merges;
    const char **merges; /* "a b" pairs in rank order */
    bool add_bos;
} rf_tokenizer;

/* Lifetimes. Everything a model hands out lives as long as the model and no longer:
 *   - tensor descriptors, names, metadata keys and values, the config strings and the tokenizer
 *     are in the model's own memory (its arena), freed by rf_model_free;
 *   - tensor data points into the source files the model maps (or, for models read from memory,
 *     into the caller's buffer, which must outlive the model);
 *   - a model never points into another model: copy values with rf_model_add_kv (deep copy),
 *     strings with rf_model_strdup, and config/tokenizer field by field into the same model.
 * Only tensor data may be borrowed: rf_model_add_tensor copies the descriptor and the name, not
 * the bytes, so data given to it must stay valid until the model is freed. */
typedef struct rf_model rf_model;

/* ---- opening ----------------------------------------------------------------------------- */

typedef struct rf_open_options {
    bool lenient; /* diagnostic tools: accept damaged files where memory safety allows (bad
                     checksums, unknown dtypes reported as such); the problems are listed by
                     rf_model_warning() */
    /* The architecture to read the model as (the tools' --arch), or NULL for the file's own.
     * For a GGUF whose general.architecture is missing or not a string, the config is read
     * from the "<architecture>.*" keys; when the file names another architecture, this one
     * wins: its keys first, the file's as a fallback. In both cases the model gets one
     * warning naming the file's architecture (or its absence) and this one. SafeTensors and
     * APR: config.architecture becomes this name, with the same warning when it differs.
     * The raw metadata is kept as the file has it; rf_convert writes the named architecture.
     * See docs/reliability.md. */
    const char *architecture;
} rf_open_options;

/* Opens any supported model by content (file or SafeTensors directory / index). opts may be
 * NULL. Returns NULL and fills err on failure (RF_ERR_IO unreadable, RF_ERR_FORMAT malformed,
 * RF_ERR_UNSUPPORTED recognised but not readable, ...). The message names the file, the
 * offset or tensor and what was expected. */
RF_API rf_model *rf_model_open(const char *path, const rf_open_options *opts, rf_error *err);
RF_API void rf_model_free(rf_model *model);

RF_API rf_format rf_model_format(const rf_model *model);
/* Format version (GGUF 3, APR 2.0 as 200, SafeTensors 0). */
RF_API uint32_t rf_model_format_version(const rf_model *model);
/* Path the model was opened from (NULL for a model built in memory). */
RF_API const char *rf_model_path(const rf_model *model);

RF_API size_t rf_model_n_tensors(const rf_model *model);
RF_API const rf_tensor *rf_model_tensor(const rf_model *model, size_t index);
/* Exact-name lookup; NULL when absent. */
RF_API const rf_tensor *rf_model_find_tensor(const rf_model *model, const char *name);

RF_API const rf_model_config *rf_model_config_get(const rf_model *model);

RF_API size_t rf_model_n_kv(const rf_model *model);
RF_API const rf_kv *rf_model_kv(const rf_model *model, size_t index);
RF_API const rf_kv *rf_model_find_kv(const rf_model *model, const char *key);

/* NULL when the file carries no tokenizer. */
RF_API const rf_tokenizer *rf_model_tokenizer(const rf_model *model);

/* Problems a lenient open tolerated ("header CRC mismatch: stored X, computed Y"). */
RF_API size_t rf_model_n_warnings(const rf_model *model);
RF_API const char *rf_model_warning(const rf_model *model, size_t index);

/* Total size of the source files, and the number of source files (shards). */
RF_API uint64_t rf_model_file_size(const rf_model *model);
RF_API size_t rf_model_n_files(const rf_model *model);

/* Path and size of source file i (shards in order), or NULL / 0 past the end. */
RF_API const char *rf_model_source_path(const rf_model *model, size_t index);
RF_API uint64_t rf_model_source_size(const rf_model *model, size_t index);
/* Drops this process's resident copy of bytes [p, p + n) of tensor data when they lie in a
 * mapped source file (the whole pages inside the range; the file is untouched and a later read
 * maps them again from it). For a caller that has copied the data elsewhere (an engine that
 * repacks weights at load) and wants them resident once. Returns false, doing nothing, when the
 * range is not inside one mapped source (a model held in memory, a range past a file's end). */
RF_API bool rf_model_release_data(const rf_model *model, const void *p, uint64_t n);

/* "norm" or "neox"; NULL for RF_ROPE_UNKNOWN. */
RF_API const char *rf_rope_type_name(rf_rope_type type);

/* ---- values ------------------------------------------------------------------------------ */

/* Numeric value as u64/i64/double with range checks; false if the type does not fit. */
RF_API bool rf_value_as_u64(const rf_value *v, uint64_t *out);
RF_API bool rf_value_as_i64(const rf_value *v, int64_t *out);
RF_API bool rf_value_as_f64(const rf_value *v, double *out);
/* GGUF-style type name: "u32", "string", "array", "json". */
RF_API const char *rf_value_type_name(rf_value_type type);

/* ---- reliability ------------------------------------------------------------------------- */

/* A function run under rf_model_mapped_call; it returns a status and fills err like any other. */
typedef rf_status (*rf_mapped_fn)(void *ctx, rf_error *err);

/* Runs fn(ctx, err) so that a read of the model's tensor data that hits a source file truncated
 * by another process (SIGBUS) stops fn and returns RF_ERR_IO "<file>: file changed while in use:
 * ..." naming that file, instead of killing the process. fn is abandoned at the faulting read:
 * keep whatever it must release in ctx and release it after the call. Guards nest; each thread
 * has its own (reads on other threads are not guarded). The guard finds the file among every
 * mapping the library made, so model may be NULL (a tool reading a mapping that is not a
 * model's, as apr hex does). See docs/reliability.md. */
RF_API rf_status rf_model_mapped_call(const rf_model *model, rf_mapped_fn fn, void *ctx,
                                      rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
