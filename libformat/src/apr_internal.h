/* Private pieces of the APR v2 reader and writer (not installed): a strict JSON parser that
 * keeps what serde_json distinguishes (u64 / i64 / f64 numbers, raw UTF-8 strings, duplicate
 * keys), serde_json's compact output rules, the metadata <-> model mapping, the layout scan
 * shared by the reader and the checksum report, and compression. */
#ifndef ROSETTA_APR_INTERNAL_H
#define ROSETTA_APR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "rosetta/apr.h"
#include "rosetta/model.h"
#include "rosetta/text.h"
#include "json_text.h"
#include "text_buf.h"

/* ---- text buffer -------------------------------------------------------------------------- */

/* Metadata is built in a text_buf (text_buf.h). apr_buf, apr_buf_putc and rfi_apr_buf_free are its
 * former names here, kept for the unit tests and tests/tools/serde_numbers.c. */
typedef text_buf apr_buf;
static inline void apr_buf_putc(apr_buf *b, char c) { rfi_text_buf_putc(b, c); }
void rfi_apr_buf_free(apr_buf *b);

/* ---- serde_json output rules (apr_json.c, docs/formats/apr.md) ------------------------------- */

/* Strings are escaped by rfi_json_put_string (json_text.h), which follows serde_json;
 * apr_json_string is its former name here, kept for the unit tests. */
static inline void apr_json_string(text_buf *b, const char *s, size_t n)
{
    rfi_json_put_string(b, s, n);
}
void rfi_apr_json_u64(text_buf *b, uint64_t v);
void rfi_apr_json_i64(text_buf *b, int64_t v);
/* Ryu shortest digits laid out as serde_json does; NaN and infinities are written null. */
void rfi_apr_json_f32(text_buf *b, float v);
void rfi_apr_json_f64(text_buf *b, double v);
/* The double a JSON number text denotes (C locale, correctly rounded); NaN when it is not one. */
double rfi_apr_json_number(const char *text);

/* ---- JSON parse tree (apr_json.c) ---------------------------------------------------------- */

typedef enum apr_jtype {
    APR_J_NULL,
    APR_J_BOOL,
    APR_J_U64, /* integer literal that fits u64 (serde_json PosInt) */
    APR_J_I64, /* negative integer literal that fits i64 (NegInt) */
    APR_J_F64, /* anything else numeric: fraction, exponent, -0, out-of-range integers */
    APR_J_STRING,
    APR_J_ARRAY,
    APR_J_OBJECT,
} apr_jtype;

typedef struct apr_jnode {
    apr_jtype type;
    uint32_t first, next; /* first child and next sibling (0 = none; node 0 is the root) */
    uint32_t count;       /* number of children */
    const char *key;      /* member name when the parent is an object (NUL-terminated) */
    uint32_t key_len;
    const char *str; /* STRING: decoded UTF-8, NUL-terminated (may contain NUL) */
    uint64_t str_len;
    union {
        bool b;
        uint64_t u;
        int64_t i;
        double f;
    } as;
    uint64_t offset;     /* offset of the value in the file (base + position in the text) */
    uint64_t end;        /* one past the value's last byte, in the same terms */
    uint64_t key_offset; /* the opening quote of the member name (members of objects) */
} apr_jnode;

typedef struct apr_json {
    apr_jnode *nodes;
    size_t n, cap;
    char *strings; /* decoded strings and keys */
    size_t strings_used, strings_cap;
} apr_json;

/* Parses text strictly as serde_json does (RFC 8259, UTF-8 validated, depth <= 128, no trailing
 * characters). Errors name base + the offset of the problem and what was expected. */
rf_status rfi_apr_json_parse(const uint8_t *text, size_t len, uint64_t base, const char *what,
                             apr_json *out, rf_error *err);
void rfi_apr_json_free(apr_json *j);

/* Writes node idx as serde_json would re-serialize the parsed value: compact, object keys sorted
 * by byte order with the last duplicate winning (serde_json's default BTreeMap). */
void rfi_apr_json_write(text_buf *b, const apr_json *j, uint32_t idx);

/* Member of an object by name (the last one when duplicated); 0 when absent. */
uint32_t rfi_apr_json_member(const apr_json *j, uint32_t object, const char *key);

/* qsort_r comparator of member node indices (ctx: the apr_json): byte order of the keys (Rust
 * String ordering: memcmp, a shorter prefix first), node order between equal keys, so that
 * duplicates end up adjacent with the last one last. */
int rfi_apr_json_cmp_members(const void *a, const void *b, void *ctx);

/* ---- metadata (apr_metadata.c) ------------------------------------------------------------- */

/* Parses the metadata JSON into the model's key/value pairs (one per distinct top-level key, in
 * order of first appearance; a repeated key keeps its last value, as aprender does), then fills
 * the typed config and tokenizer. model_type receives the model_type string (or NULL). */
rf_status rfi_apr_metadata_read(rf_model *m, const uint8_t *text, size_t len, uint64_t offset,
                                const char **model_type, rf_error *err);

/* Fills config and tokenizer from the key/value pairs already in m (aliases of docs/formats/apr.md
 * accepted and reported as warnings). */
void rfi_apr_metadata_config(rf_model *m);

/* A key/value list for writing. Entries later in the list replace earlier ones of the same key.
 * Keys and values are borrowed; memory handed to rfi_apr_kvlist_own is freed with the list. */
typedef struct apr_kvlist {
    rf_kv *items;
    size_t n, cap;
    void **owned;
    size_t n_owned, cap_owned;
    bool failed; /* an allocation failed */
} apr_kvlist;

void rfi_apr_kvlist_add(apr_kvlist *l, const char *key, rf_value value);
/* Takes ownership of p (freed by rfi_apr_kvlist_free) and returns it; NULL stays NULL. */
void *rfi_apr_kvlist_own(apr_kvlist *l, void *p);
void rfi_apr_kvlist_free(apr_kvlist *l);

/* Serializes keys as AprV2Metadata: typed keys in declaration order (docs/formats/apr.md), alias
 * keys folded into their canonical field (6.7), then the custom keys sorted by byte order (6.5). */
rf_status rfi_apr_metadata_write(const apr_kvlist *kvs, text_buf *out, rf_error *err);

/* Where a decompressed image goes (the model's arena, or malloc for the checksum report). */
typedef struct apr_allocator {
    void *(*alloc)(void *ctx, size_t n);
    void (*release)(void *ctx, void *p);
    void *ctx;
} apr_allocator;

/* ---- layout scan (apr_layout.c) -------------------------------------------------------------- */

typedef struct apr_entry {
    const char *name; /* points into the image (not NUL-terminated) */
    uint16_t name_len;
    uint8_t code; /* dtype byte */
    uint8_t ndim;
    uint64_t shape[RF_APR_MAX_DIMS];
    uint64_t offset, size;
    uint64_t entry_offset; /* absolute offset of the index entry */
} apr_entry;

/* What the structural scan of a file found. Offsets refer to the image: the file itself, or the
 * header followed by the decompressed payload for a compressed file. */
typedef struct apr_layout {
    rf_apr_header h;
    bool old_magic;      /* "APR2" */
    uint32_t header_crc; /* computed */
    bool compressed;
    const uint8_t *image;
    uint64_t size;      /* image size */
    uint8_t *owned;     /* the decompressed image when the allocator owns it */
    apr_entry *entries; /* malloc'd, index order */
    uint32_t n_entries;
    uint64_t index_end; /* absolute end of the last index entry */
    uint64_t data_end;  /* data_offset + max(offset + align64(size)) */
    bool footer_present;
    uint64_t footer_offset;
    uint32_t footer_stored, footer_computed;
} apr_layout;

typedef struct apr_scan_options {
    bool strict_checksums; /* a wrong header or footer CRC is an error (else a warning) */
    bool strict_layout;    /* column-major flag, unknown version: errors (else warnings) */
    bool verify_footer;    /* compute the footer CRC (one pass over the image) */
    const rf_file *mapped; /* the file data is mapped from: its pages are dropped after the CRC
                              pass reads them (pages.h); NULL when data is not such a mapping */
    rf_model *warnings;    /* tolerated problems are recorded here (may be NULL) */
    const apr_allocator *alloc;
} apr_scan_options;

/* Checks the header, decompresses a compressed payload, bounds-checks metadata, index and every
 * tensor extent (no overlaps), and locates the footer. Every error names path, the offset and
 * what was expected. Free with rfi_apr_layout_free (the image is released by the allocator). */
rf_status rfi_apr_scan(const char *path, const uint8_t *data, uint64_t size,
                       const apr_scan_options *opts, apr_layout *out, rf_error *err);
void rfi_apr_layout_free(apr_layout *l, const apr_allocator *a);

/* ---- reading (apr_read.c) ------------------------------------------------------------------ */

/* rf_apr_open over a file already mapped (or wrapped memory); the model takes ownership of file
 * (closed on failure too). path names the file in messages. */
rf_model *rfi_apr_open_file(rf_file *file, const char *path, const rf_open_options *opts,
                            const rf_apr_open_options *apr_opts, rf_error *err);

/* ---- compression (apr_compress.c) ---------------------------------------------------------- */

/* Decompresses payload (everything after the header of a file with flag LZ4 or ZSTD) into a
 * buffer from a with prefix free bytes in front (for the header): *out_len is the decompressed
 * length. The size is checked against RF_APR_MAX_EXPANSION before anything is allocated; on
 * failure nothing stays allocated. path names the file in messages. */
rf_status rfi_apr_decompress(const char *path, uint16_t flags, const uint8_t *payload, uint64_t len,
                             size_t prefix, const apr_allocator *a, uint8_t **out,
                             uint64_t *out_len, rf_error *err);

/* Compresses data with the given method into a malloc'd buffer (LZ4: 4-byte LE length prefix +
 * one raw block; ZSTD: one frame with the content size recorded). */
rf_status rfi_apr_compress(rf_apr_compression method, int zstd_level, const uint8_t *data,
                           uint64_t len, uint8_t **out, uint64_t *out_len, rf_error *err);

#endif
