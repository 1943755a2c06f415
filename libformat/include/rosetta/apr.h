/* APR v2, aprender's model container (docs/formats/apr.md, docs/design.md section 3): header access
 * for diagnostic tools, checksum reports, the APR tensor-size rule, and the writer. Reading goes
 * through rf_model_open (rosetta/model.h); this header adds what is APR-specific. Not for: APR v1
 * (APRN) payloads, aprender-tsp files, encryption or signatures (refused). */
#ifndef ROSETTA_APR_H
#define ROSETTA_APR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/dtype.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_APR_HEADER_SIZE       64
#define RF_APR_ALIGNMENT         64
#define RF_APR_MAX_METADATA_SIZE (16u * 1024u * 1024u) /* the writer refuses more */
#define RF_APR_MAX_NAME_LEN      256                   /* the writer refuses longer names */
#define RF_APR_MAX_DIMS          8
/* Decompressing a compressed (realizar-style) file: the uncompressed image may be at most this
 * many times the compressed payload (checked before allocating). LZ4 cannot exceed 255. */
#define RF_APR_MAX_EXPANSION 1024u

/* Header flags (u16 at offset 6), docs/formats/apr.md */
enum {
    RF_APR_FLAG_LZ4 = 0x0001,       /* realizar-style: bytes after the header are one LZ4 block */
    RF_APR_FLAG_ZSTD = 0x0002,      /* realizar-style: bytes after the header are one zstd frame */
    RF_APR_FLAG_ENCRYPTED = 0x0004, /* refused: layout unknown */
    RF_APR_FLAG_SIGNED = 0x0008,    /* refused: layout unknown */
    RF_APR_FLAG_SHARDED = 0x0010,
    RF_APR_FLAG_QUANTIZED = 0x0020,
    RF_APR_FLAG_HAS_FILTERBANK = 0x0040,
    RF_APR_FLAG_HAS_MODEL_CARD = 0x0080,
    RF_APR_FLAG_STREAMING = 0x0100,
    RF_APR_FLAG_HAS_VOCAB = 0x0200,
    RF_APR_FLAG_ROW_MAJOR = 0x0400,    /* set by every current writer, Rosetta's included */
    RF_APR_FLAG_COLUMN_MAJOR = 0x0800, /* refused ("dirty GGUF import") */
};

/* Lower-case name of one flag bit ("lz4", "row-major", ...), or NULL for a bit APR does not
 * define (0x1000 and above) or a value that is not a single bit. */
RF_API const char *rf_apr_flag_name(uint16_t bit);

/* The 64-byte header, field by field (all little-endian on disk). */
typedef struct rf_apr_header {
    uint8_t magic[4];      /* "APR\0" (current) or "APR2" (old magic) */
    uint8_t version_major; /* 2 */
    uint8_t version_minor; /* 0 */
    uint16_t flags;        /* RF_APR_FLAG_* */
    uint32_t tensor_count;
    uint64_t metadata_offset; /* 64 */
    uint32_t metadata_size;   /* JSON length without padding */
    uint64_t tensor_index_offset;
    uint64_t data_offset;
    uint32_t checksum; /* CRC-32 of bytes [0,40) followed by [44,64) */
    uint8_t reserved[20];
} rf_apr_header;

/* Decodes the first 64 bytes (no validation besides the length; RF_ERR_FORMAT when len < 64). */
RF_API rf_status rf_apr_header_decode(const uint8_t *bytes, size_t len, rf_apr_header *out,
                                      rf_error *err);
/* Encodes h into 64 bytes exactly as stored (the checksum field as given). */
RF_API void rf_apr_header_encode(const rf_apr_header *h, uint8_t out[RF_APR_HEADER_SIZE]);
/* The header checksum of 64 encoded header bytes (the stored checksum field is skipped). */
RF_API uint32_t rf_apr_header_crc(const uint8_t header[RF_APR_HEADER_SIZE]);

/* The stored header of the APR file a model was read from, and the CRC computed over it
 * (crc may be NULL). RF_ERR_ARGUMENT when the model was not read from APR. */
RF_API rf_status rf_apr_model_header(const rf_model *m, rf_apr_header *out, uint32_t *crc,
                                     rf_error *err);

/* ---- reading ----------------------------------------------------------------------------- */

typedef struct rf_apr_open_options {
    bool skip_footer_crc; /* do not read the whole file to verify the footer CRC (the footer is
                             still located; rf_apr_checksums_* verify it on request) */
} rf_apr_open_options;

/* rf_model_open for APR files with APR-specific options (apr_opts may be NULL: the defaults of
 * rf_model_open, which verify the footer CRC). Identical errors and warnings otherwise. */
RF_API rf_model *rf_apr_open(const char *path, const rf_open_options *opts,
                             const rf_apr_open_options *apr_opts, rf_error *err);

/* Checksum report for `apr inspect`. For a compressed file the footer is looked for at the end
 * of the uncompressed image (the header's offsets refer to that image). */
typedef struct rf_apr_checksums {
    uint32_t header_stored, header_computed;
    bool header_valid;
    bool compressed;
    bool footer_present;    /* false for realizar-written files, which have no footer */
    uint64_t footer_offset; /* where the 4-byte footer is (or would be) */
    uint32_t footer_stored, footer_computed;
    bool footer_valid; /* footer_present and stored == computed */
} rf_apr_checksums;

/* Computes both checksums of an APR v2 file (reads the whole file once for the footer).
 * Fails (RF_ERR_FORMAT / RF_ERR_IO ...) only when the file is not APR v2 or so damaged that
 * the footer position cannot be determined; a wrong checksum is a result, not an error. */
RF_API rf_status rf_apr_checksums_path(const char *path, rf_apr_checksums *out, rf_error *err);
RF_API rf_status rf_apr_checksums_bytes(const uint8_t *data, uint64_t size, rf_apr_checksums *out,
                                        rf_error *err);
/* The same for the file a model was read from (its mapping; nothing is read again from disk). */
RF_API rf_status rf_apr_model_checksums(const rf_model *m, rf_apr_checksums *out, rf_error *err);

/* Bytes an APR tensor of this dtype and shape occupies (docs/formats/apr.md): plain types N x
 * element; Q4_K/Q6_K of rank 2 row-aligned, rows x ceil(cols/256) x block (aprender's quantizer
 * pads each row inside its last block), otherwise ceil(N/256) x block; APR_Q4 ceil(N/32) x 18;
 * APR_Q8 4 + N (0 when N = 0); GGML types read from realizar-written files by the ggml rule. Fails
 * with RF_ERR_OVERFLOW, RF_ERR_FORMAT (ggml block rule) or RF_ERR_UNSUPPORTED. */
RF_API rf_status rf_apr_tensor_bytes(rf_dtype dtype, const uint64_t *shape, int ndim, uint64_t *out,
                                     rf_error *err);

/* True when t is a row-padded K-quant (rank 2, Q4_K or Q6_K, last dimension not a multiple of
 * 256): each of shape[0] rows then takes *row_bytes bytes (ceil(cols/256) super-blocks) and
 * only the first shape[1] values of a row are meaningful. Such tensors have no GGUF form. */
RF_API bool rf_apr_tensor_row_padded(const rf_tensor *t, uint64_t *row_bytes);

/* ---- writing ----------------------------------------------------------------------------- */

typedef enum rf_apr_compression {
    RF_APR_COMPRESSION_NONE = 0,
    RF_APR_COMPRESSION_LZ4,  /* realizar-style size-prefixed LZ4 block; aprender ignores it */
    RF_APR_COMPRESSION_ZSTD, /* realizar-style single zstd frame; aprender ignores it */
} rf_apr_compression;

typedef enum rf_apr_metadata_source {
    RF_APR_METADATA_AUTO = 0,   /* KEEP for models read from APR, SYNTHESIZE otherwise */
    RF_APR_METADATA_KEEP,       /* the model's key/value pairs are the APR metadata */
    RF_APR_METADATA_SYNTHESIZE, /* aprender's importer metadata from config + tokenizer
                                   (docs/formats/apr.md): SafeTensors path, or GGUF raw path when
                                   the model came from GGUF; tied embeddings get lm_head.weight */
} rf_apr_metadata_source;

typedef struct rf_apr_write_options {
    rf_apr_compression compression;
    int zstd_level; /* 0 means 3 */
    rf_apr_metadata_source metadata;
    const char *model_type; /* SYNTHESIZE: overrides the typed key model_type */
    const char *name;       /* SYNTHESIZE: overrides name (default: the output file
                               stem for the SafeTensors path, the architecture for GGUF) */
    const rf_kv *extra;     /* extra metadata keys (e.g. rosetta.provenance); a key
                               given here replaces the model's key of the same name */
    size_t n_extra;
    uint16_t extra_flags; /* OR-ed into the header flags (row-major is always set) */
} rf_apr_write_options;

/* Writes m as APR v2 exactly as aprender's in-memory writer lays it out: magic APR\0 2.0,
 * 64-byte header with CRC, compact serde_json metadata (typed keys in aprender's declaration
 * order, custom keys sorted by byte order), index sorted by the byte order of the names,
 * tensor data 64-aligned in index order, footer CRC-32, flag 0x0400. Writes through the atomic
 * writer and re-reads the result before renaming it into place. opts may be NULL.
 * Errors: RF_ERR_UNSUPPORTED for a dtype APR cannot hold (names the tensor and dtype; convert
 * first), RF_ERR_ARGUMENT for invalid metadata values or sizes, RF_ERR_LIMIT for names over 256
 * bytes or metadata over 16 MiB, RF_ERR_WRITE for I/O. Nothing appears at path on failure. */
RF_API rf_status rf_apr_write(const rf_model *m, const char *path, const rf_apr_write_options *opts,
                              rf_error *err);

/* The metadata JSON rf_apr_write would store for m (path only supplies the default name of
 * the SafeTensors path and may be NULL). *json is malloc'd, NUL-terminated; free() it. */
RF_API rf_status rf_apr_metadata_json(const rf_model *m, const char *path,
                                      const rf_apr_write_options *opts, char **json, size_t *len,
                                      rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
