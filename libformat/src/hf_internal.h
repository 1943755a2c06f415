/* Private helpers shared by the SafeTensors reader/writer and the Hugging Face companion-file code
 * (config.json, generation_config.json, tokenizer.json, tokenizer_config.json): strict JSON
 * checking on top of cJSON, JSON text builders, bounded file reading.
 * Not for: format logic (safetensors_*.c, hf_config.c, hf_tokenizer.c). */
#ifndef ROSETTA_HF_INTERNAL_H
#define ROSETTA_HF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "rosetta/model.h"
#include "rosetta/text.h"
#include "json_text.h"
#include "text_buf.h"

/* ---- strict JSON ------------------------------------------------------------------------- */

/* Deepest nesting accepted (cJSON's own limit is 1000). */
#define HF_JSON_MAX_DEPTH 512

/* Checks that text[0..len) is exactly one JSON value under RFC 8259 (valid UTF-8, no control
 * characters in strings, strict numbers, no NaN/Infinity, nothing but whitespace after the
 * value, nesting <= HF_JSON_MAX_DEPTH). cJSON alone is more lenient than the reference readers.
 * On failure err holds "invalid JSON at offset N: <what>" where N = base_offset + position;
 * NaN/Infinity name the key they belong to. */
rf_status rfi_hf_json_check(const char *text, size_t len, uint64_t base_offset, rf_error *err);

/* rfi_hf_json_check, then cJSON, then a duplicate-key check of every object (cJSON keeps both
 * copies of a duplicated key; Rosetta rejects them). Returns the tree (cJSON_Delete it) or NULL
 * with err set ("duplicate key \"k\" in <where>"). */
cJSON *rfi_hf_json_parse(const char *text, size_t len, uint64_t base_offset, rf_error *err);

/* rfi_hf_json_parse of a whole companion file that must hold an object; errors start with path
 * ("<path>: is an array, expected a JSON object"). */
cJSON *rfi_hf_json_parse_object(const char *path, const char *text, size_t len, rf_error *err);

/* Outcome of reading a JSON number as an exact unsigned integer. */
typedef enum hf_num {
    HF_NUM_OK = 0,
    HF_NUM_NOT_NUMBER,
    HF_NUM_NEGATIVE,
    HF_NUM_FRACTION,
    HF_NUM_TOO_LARGE, /* above 2^53: cJSON holds numbers as doubles, so larger values are inexact */
    HF_NUM_NOT_FINITE,
    HF_NUM_FLOAT_SPELLING, /* rfi_hf_json_exact_u64: "4.0", "4e0", "-0" (floats for serde) */
    HF_NUM_OVER_U64,       /* rfi_hf_json_exact_u64: at least 2^64 */
} hf_num;

hf_num rfi_hf_json_u64(const cJSON *item, uint64_t *out);
const char *rfi_hf_num_problem(hf_num n); /* "is negative", "is not an integer", ... */

/* The reference SafeTensors reader (serde_json) refuses more than 127 nested containers. */
#define HF_JSON_HEADER_MAX_DEPTH 127

/* rfi_hf_json_parse for a SafeTensors header (len <= INT_MAX): nesting limited to
 * HF_JSON_HEADER_MAX_DEPTH, \u0000 refused in strings (names and metadata become C strings), and
 * every number node's valueint holds the offset of its token in text, for rfi_hf_json_exact_u64. */
cJSON *rfi_hf_json_parse_header(const char *text, size_t len, uint64_t base_offset, rf_error *err);

/* Reads a number of a rfi_hf_json_parse_header tree from its text, exactly as serde reads a usize:
 * digits only (no sign, fraction or exponent), below 2^64. */
hf_num rfi_hf_json_exact_u64(const cJSON *item, const char *text, size_t len, uint64_t *out);

/* The token text of such a number (at most 64 bytes, *n of them), for messages. */
const char *rfi_hf_json_number_text(const cJSON *item, const char *text, size_t len, int *n);

/* A JSON item's kind for messages: "an object", "a string", "null", ... ("missing" for NULL). */
const char *rfi_hf_json_kind(const cJSON *item);

/* Case-sensitive object member lookup (cJSON_GetObjectItem ignores case). */
const cJSON *rfi_hf_json_get(const cJSON *object, const char *key);

/* Compact copy of checked JSON text: whitespace outside strings removed, every token (numbers,
 * string escapes) kept byte for byte. Owned by the model; NULL on allocation failure. */
char *rfi_hf_json_minify(rf_model *m, const char *text, size_t len, size_t *out_len);

/* ---- text building ----------------------------------------------------------------------- */

/* Text is built in a text_buf (text_buf.h). hf_buf and hf_buf_free are its former names here,
 * kept for the unit tests. */
typedef text_buf hf_buf;
static inline void hf_buf_free(hf_buf *b) { rfi_text_buf_free(b); }

/* A double the way Python's repr() prints it (shortest round trip, "1e-06", "1000000.0"). The
 * value must be finite. */
void rfi_hf_buf_put_double(text_buf *b, double v);
/* rfi_hf_buf_put_double, except that with as_float a value that is exactly a binary32 number (GGUF
 * and APR store config reals as f32) is spelled with the fewest digits that read back to that f32:
 * the f32 of 1e-6 prints as 1e-06, not 9.999999974752427e-07. */
void rfi_hf_buf_put_real(text_buf *b, double v, bool as_float);
/* Re-indents compact JSON text (as produced by rfi_hf_json_minify or by the builders) the way
 * Python's json.dumps(indent=2) and serde_json's pretty printer do; transformers ends its files
 * with a newline, the tokenizers library (tokenizer.json) does not. */
void rfi_hf_buf_put_pretty(text_buf *b, const char *compact, size_t len, bool final_newline);

/* ---- files ------------------------------------------------------------------------------- */

/* Reads a whole regular file of at most max_bytes into a malloc'd, NUL-terminated buffer.
 * RF_ERR_NOT_FOUND when it does not exist, RF_ERR_IO / RF_ERR_LIMIT otherwise. */
rf_status rfi_hf_read_file(const char *path, uint64_t max_bytes, char **out, size_t *out_len,
                           rf_error *err);

/* "dir/name" in a malloc'd string (NULL on allocation failure). */
char *rfi_hf_path_join(const char *dir, const char *name);
/* The directory part of path ("." when there is none), malloc'd. */
char *rfi_hf_path_dir(const char *path);

/* ---- companion files --------------------------------------------------------------------- */

/* Raw-metadata keys under which the companion files are kept (RF_VALUE_JSON, compact text). */
#define HF_KV_PREFIX "hf."

/* Reads config.json, generation_config.json, tokenizer.json, tokenizer_config.json and
 * chat_template.jinja from dir when present, into m's typed config, tokenizer and raw metadata
 * ("hf.<file name>"). Absent files are skipped; malformed ones fail with the file named. */
rf_status rfi_hf_read_companions(rf_model *m, const char *dir, rf_error *err);

/* Parsers of the individual files (text is the whole file; path is for messages). */
rf_status rfi_hf_config_read(rf_model *m, const char *path, const char *text, size_t len,
                             rf_error *err);
rf_status rfi_hf_generation_config_read(rf_model *m, const char *path, const char *text, size_t len,
                                        rf_error *err);
rf_status rfi_hf_tokenizer_read(rf_model *m, const char *path, const char *text, size_t len,
                                rf_error *err);
rf_status rfi_hf_tokenizer_config_read(rf_model *m, const char *path, const char *text, size_t len,
                                       rf_error *err);

/* Builders of compact JSON for the companion files from the typed view (models that did not
 * come from SafeTensors). Each returns false when there is nothing to write (no architecture,
 * no tokenizer); out is left empty then. */
bool rfi_hf_config_build(const rf_model *m, text_buf *out);
bool rfi_hf_generation_config_build(const rf_model *m, text_buf *out);
bool rfi_hf_tokenizer_build(const rf_model *m, text_buf *out);
bool rfi_hf_tokenizer_config_build(const rf_model *m, text_buf *out);

/* Rope type implied by an architecture name (qwen2 -> NEOX, llama -> NORM), UNKNOWN otherwise. */
rf_rope_type rfi_hf_rope_type_for(const char *architecture);

#endif
