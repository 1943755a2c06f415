/* Private hooks of the GGUF reader (not installed): an observer that sees every key/value record
 * and tensor info with its byte offsets, and every problem the reader finds, so that the file map
 * (filemap_gguf.c) describes a file with the reader's own validation instead of a second parser.
 * Not for: anything but diagnostics; rf_model_open is the way to read a model. */
#ifndef ROSETTA_GGUF_INTERNAL_H
#define ROSETTA_GGUF_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "rosetta/gguf.h"
#include "rosetta/model.h"

/* Where the reader was when it reported something. */
typedef enum gguf_section {
    GGUF_SECTION_HEADER,
    GGUF_SECTION_KV,
    GGUF_SECTION_TENSOR,
} gguf_section;

typedef enum gguf_problem_kind {
    GGUF_NOTE,    /* accepted by ggml, worth a mention */
    GGUF_PROBLEM, /* ggml rejects it; the lenient reader went on */
    GGUF_FATAL,   /* the reader stopped here */
} gguf_problem_kind;

/* One key/value record, reported once it has been read completely. */
typedef struct gguf_kv_event {
    uint64_t index;
    uint64_t record_offset; /* = the key's length prefix */
    const uint8_t *key;     /* in the file, not NUL-terminated */
    uint64_t key_len;
    uint64_t type_offset;
    uint32_t type;
    uint64_t value_offset;
    uint64_t end; /* one past the value */
    const rf_value *value;
} gguf_kv_event;

/* One tensor info record, reported once it has been read completely. */
typedef struct gguf_tensor_event {
    uint64_t index;
    uint64_t record_offset; /* = the name's length prefix */
    const uint8_t *name;
    uint64_t name_len;
    uint64_t dims_offset; /* the n_dims field */
    uint32_t n_dims;
    const uint64_t *ne; /* n_dims values, innermost first */
    uint64_t type_offset;
    uint32_t ggml_type;
    uint64_t offset_offset;
    uint64_t offset; /* relative to the data section */
    uint64_t end;
} gguf_tensor_event;

typedef struct gguf_observer {
    void *ctx;
    void (*kv)(void *ctx, const gguf_kv_event *e);
    void (*tensor_info)(void *ctx, const gguf_tensor_event *e);
    /* message is the reader's text (without the file name); item is the pair or tensor index
     * for GGUF_SECTION_KV / GGUF_SECTION_TENSOR. */
    void (*problem)(void *ctx, gguf_section section, uint64_t item, gguf_problem_kind kind,
                    const char *message);
} gguf_observer;

/* Reads data[0..size) leniently into m (created by the caller, file already added as source
 * file_index), reporting every record and problem to obs. On failure m holds what was read
 * before the reader stopped and the error is in err. layout receives what the header walk found
 * (valid fields only up to where it stopped; data_offset is 0 when the tensor infos were not
 * all read). */
rf_status rfi_gguf_parse_observed(const uint8_t *data, uint64_t size, const char *path, rf_model *m,
                                  uint32_t file_index, const gguf_observer *obs,
                                  rf_gguf_layout *layout, rf_error *err);

#endif
