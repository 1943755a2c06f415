/* Format detection by content (magic bytes), never by file name. */
#ifndef ROSETTA_DETECT_H
#define ROSETTA_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rf_format {
    RF_FORMAT_UNKNOWN = 0,
    RF_FORMAT_GGUF,              /* "GGUF" magic (either byte order) */
    RF_FORMAT_SAFETENSORS,       /* u64 header length + '{' */
    RF_FORMAT_SAFETENSORS_INDEX, /* model.safetensors.index.json (JSON with "weight_map") */
    RF_FORMAT_SAFETENSORS_DIR,   /* a directory holding a SafeTensors checkpoint */
    RF_FORMAT_APR,               /* "APR\0" + major version 2: APR v2, current */
    RF_FORMAT_APR2_MAGIC,        /* "APR2": APR v2 layout under the old magic */
    RF_FORMAT_APR_V1,            /* "APRN": APR v1 classical-ML container */
    RF_FORMAT_APR1,              /* "APR1": identify only */
    RF_FORMAT_APRT,              /* "APRT": legacy realizar transformer format, identify only */
    RF_FORMAT_APR_TSP,           /* "APR\0" 01 00 00 00 "\0PST": aprender-tsp model, not APR v2 */
} rf_format;

/* Stable lower-case name: "gguf", "safetensors", "apr", ... */
RF_API const char *rf_format_name(rf_format format);

/* One-line human description: "GGUF v3 (little-endian)" is built by the caller; this is
 * the kind only: "GGUF", "SafeTensors", "APR v2", ... */
RF_API const char *rf_format_description(rf_format format);

/* Whether format is APR v2 (the current "APR\0" magic or the old "APR2" one). */
RF_API bool rf_format_is_apr(rf_format format);

/* A format version as people write it: "3" for GGUF, "2.0" for APR (stored as 200), the number
 * for other formats; NULL (buf untouched) when version is 0 for a format without versions. */
RF_API const char *rf_format_version_text(rf_format format, uint32_t version, char *buf,
                                          size_t size);

/* Detects from the first bytes of a file (len may be short; 16 bytes suffice for every magic,
 * SafeTensors also needs the total file size to check the header length). */
RF_API rf_format rf_detect_bytes(const uint8_t *data, size_t len, uint64_t file_size);

/* Detects a path: a directory is RF_FORMAT_SAFETENSORS_DIR when it holds model.safetensors,
 * model.safetensors.index.json or *.safetensors files. Fails with RF_ERR_IO when the path
 * cannot be read; an unrecognised file is RF_OK with RF_FORMAT_UNKNOWN. */
RF_API rf_status rf_detect_path(const char *path, rf_format *out, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
