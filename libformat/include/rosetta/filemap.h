/* The file map: where every byte of a model file belongs. Given a GGUF, SafeTensors or APR file,
 * rf_filemap_open lists its regions in file order (header fields, key/value records, tensor
 * infos, JSON headers and their entries, index entries, padding, tensor data, checksums), each
 * with its absolute offset and size, a label and the decoded value, and marks the regions that
 * fail validation with the reason. It is lenient: a damaged file is mapped, not refused. Where a
 * region cannot be bounded (a length that runs past the end, an unreadable record), mapping stops
 * and the rest of the file is one damaged "unparsed" region.
 *
 * Invariant: the leaf regions (those without children) tile the file exactly, in order, without
 * gaps or overlaps; a parent covers exactly its children.
 *
 * The map also lists the tensors with their byte layout (alignment, padding before) and reads
 * their values (rf_filemap_values) and quantized blocks (rf_filemap_block).
 * Not for: converting or writing models (model.h); the map is for forensic views (apr hex). */
#ifndef ROSETTA_FILEMAP_H
#define ROSETTA_FILEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/block.h"
#include "rosetta/detect.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rf_region_kind {
    RF_REGION_SECTION,     /* a group: "header", "metadata", "tensor infos", "data" ... */
    RF_REGION_MAGIC,       /* the magic bytes */
    RF_REGION_VERSION,     /* format version */
    RF_REGION_COUNT,       /* a count (tensors, key/value pairs, header length) */
    RF_REGION_FIELD,       /* any other fixed field (offsets, sizes, flags, names, shapes) */
    RF_REGION_CHECKSUM,    /* a stored CRC, with the computed one in the value */
    RF_REGION_KV,          /* one key/value record (GGUF) or metadata member (JSON) */
    RF_REGION_KV_KEY,      /* GGUF: the key string (length prefix included) */
    RF_REGION_KV_TYPE,     /* GGUF: the value type code */
    RF_REGION_KV_VALUE,    /* GGUF: the value */
    RF_REGION_TENSOR_INFO, /* GGUF tensor info record, SafeTensors header entry */
    RF_REGION_INDEX_ENTRY, /* APR tensor index entry */
    RF_REGION_JSON,        /* JSON text (SafeTensors header, APR metadata) */
    RF_REGION_PADDING,     /* alignment padding (zero bytes, or spaces in a SafeTensors header) */
    RF_REGION_TENSOR_DATA, /* the bytes of one tensor */
    RF_REGION_UNPARSED,    /* bytes the map could not account for (always damaged) */
} rf_region_kind;

typedef struct rf_region {
    uint64_t offset; /* absolute, in the file */
    uint64_t size;
    rf_region_kind kind;
    int depth;          /* 0 for top-level sections */
    int64_t parent;     /* index of the enclosing region, -1 at depth 0 */
    size_t n_children;  /* direct children (0 for a leaf) */
    const char *label;  /* "version", "kv[3]", "blk.0.attn_q.weight" ... never NULL */
    const char *value;  /* decoded value ("3", "general.name = \"x\""), never NULL (may be "") */
    int64_t tensor;     /* index of the tensor this region belongs to (rf_filemap_tensor), or -1 */
    bool damaged;       /* validation of this region failed */
    const char *reason; /* why (the reader's message), NULL when not damaged */
} rf_region;

/* A tensor as the file lays it out. */
typedef struct rf_map_tensor {
    rf_tensor tensor;       /* name, dtype, row-major shape, nbytes, file_offset; data points into
                               the mapped file, or is NULL when the bytes are not all in the file */
    bool dtype_known;       /* false: tensor.dtype is meaningless, see dtype_text */
    bool size_known;        /* false: the byte size could not be computed (tensor.nbytes is 0) */
    const char *dtype_text; /* "Q4_K", or "unknown type 99" */
    uint64_t alignment;     /* data alignment the format asks for (GGUF general.alignment, APR 64,
                               SafeTensors 1) */
    uint64_t pad_before;    /* bytes between the previous tensor's end (file order) and this one */
    uint64_t info_offset;   /* its header record (tensor info, index entry, JSON entry) */
    int64_t info_region;    /* index of that record's region, -1 when none */
    int64_t data_region;    /* index of its data region, -1 when none */
    /* How values lie in the bytes: rows of row_bytes bytes, each decoding to row_elems values of
     * which the first cols count (APR row-padded K-quants); one row for every other tensor. */
    uint64_t rows, cols, row_elems, row_bytes;
    bool damaged;
    const char *reason; /* NULL when not damaged */
} rf_map_tensor;

typedef enum rf_problem_severity {
    RF_PROBLEM_WARNING, /* accepted by the readers but worth a mention */
    RF_PROBLEM_ERROR,   /* the strict reader (llama.cpp, aprender, safetensors) rejects it */
} rf_problem_severity;

typedef struct rf_map_problem {
    rf_problem_severity severity;
    uint64_t offset; /* where (the start of the region it concerns) */
    int64_t region;  /* the region it is attached to, or -1 */
    const char *message;
} rf_map_problem;

typedef struct rf_filemap_options {
    /* Verify checksums that cover the whole file (the APR footer CRC-32): reads every byte.
     * Without it the footer is located and shown with its stored value only. */
    bool verify_checksums;
} rf_filemap_options;

typedef struct rf_filemap rf_filemap;

/* Maps the file at path (opts may be NULL). Fails only when the file cannot be read (RF_ERR_IO)
 * or memory runs out: a damaged or unknown file gives a map whose problems say what is wrong
 * (an unknown format is one unparsed region). Free with rf_filemap_free. */
RF_API rf_status rf_filemap_open(const char *path, const rf_filemap_options *opts, rf_filemap **out,
                                 rf_error *err);
/* The same over memory that outlives the map; name is used in messages. */
RF_API rf_status rf_filemap_open_memory(const void *data, uint64_t size, const char *name,
                                        const rf_filemap_options *opts, rf_filemap **out,
                                        rf_error *err);
RF_API void rf_filemap_free(rf_filemap *map);

RF_API const char *rf_filemap_path(const rf_filemap *map);
RF_API rf_format rf_filemap_format(const rf_filemap *map);
/* "GGUF v3, little-endian", "SafeTensors", "APR v2.0", "unknown format" ... */
RF_API const char *rf_filemap_description(const rf_filemap *map);
RF_API uint64_t rf_filemap_size(const rf_filemap *map);
/* The file's bytes (mapped read-only), rf_filemap_size of them. */
RF_API const uint8_t *rf_filemap_bytes(const rf_filemap *map);

RF_API size_t rf_filemap_n_regions(const rf_filemap *map);
RF_API const rf_region *rf_filemap_region(const rf_filemap *map, size_t index);
/* The deepest region containing offset (a leaf), or -1 when offset is past the end. */
RF_API int64_t rf_filemap_find(const rf_filemap *map, uint64_t offset);
/* Lower-case name of a kind: "section", "magic", "kv key", "tensor data" ... */
RF_API const char *rf_region_kind_name(rf_region_kind kind);

RF_API size_t rf_filemap_n_tensors(const rf_filemap *map);
RF_API const rf_map_tensor *rf_filemap_tensor(const rf_filemap *map, size_t index);

RF_API size_t rf_filemap_n_problems(const rf_filemap *map);
RF_API const rf_map_problem *rf_filemap_problem(const rf_filemap *map, size_t index);
/* Whether any problem has severity RF_PROBLEM_ERROR (the strict reader refuses the file). */
RF_API bool rf_filemap_damaged(const rf_filemap *map);

/* The model view of the file as the lenient reader builds it (config, tokenizer, metadata), or
 * NULL when even the lenient reader could not read it. Owned by the map. */
RF_API const rf_model *rf_filemap_model(const rf_filemap *map);

/* Dequantizes values [first, first + count) of tensor index (row-major element order) into out.
 * Only the blocks covering the range are read. Fails with RF_ERR_ARGUMENT (range outside the
 * tensor), RF_ERR_FORMAT (the tensor's bytes are not all in the file, or its dtype unknown) or
 * RF_ERR_UNSUPPORTED (a dtype Rosetta cannot dequantize). */
RF_API rf_status rf_filemap_values(const rf_filemap *map, size_t index, uint64_t first,
                                   uint64_t count, float *out, rf_error *err);

/* Number of quantized blocks of tensor index (0 when its dtype has no block decoder). */
RF_API uint64_t rf_filemap_n_blocks(const rf_filemap *map, size_t index);
/* Decodes block number block of tensor index; *offset receives its absolute file offset and
 * *first_element (nullable) the row-major index of its first value. */
RF_API rf_status rf_filemap_block(const rf_filemap *map, size_t index, uint64_t block,
                                  rf_block *out, uint64_t *offset, uint64_t *first_element,
                                  rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
