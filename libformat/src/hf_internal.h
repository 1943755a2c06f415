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

/* Length of the longest valid UTF-8 prefix of s[0..n) (n when all of it is valid). */
size_t hf_utf8_valid_prefix(const unsigned char *s, size_t n);

/* ---- strict JSON ------------------------------------------------------------------------- */

/* Deepest nesting accepted (cJSON's own limit is 1000). */
#define HF_JSON_MAX_DEPTH 512

/* Checks that text[0..len) is exactly one JSON value under RFC 8259 (valid UTF-8, no control
 * characters in strings, strict numbers, no NaN/Infinity, nothing but whitespace after the
 * value, nesting <= HF_JSON_MAX_DEPTH). cJSON alone is more lenient than the reference readers.
 * On failure err holds "invalid JSON at offset N: <what>" where N = base_offset + position;
 * NaN/Infinity name the key they belong to. */
rf_status hf_json_check(const char *text, size_t len, uint64_t base_offset, rf_error *err);

/* hf_json_check, then cJSON, then a duplicate-key check of every object (cJSON keeps both
 * copies of a duplicated key; Rosetta rejects them). Returns the tree (cJSON_Delete it) or NULL
 * with err set ("duplicate key \"k\" in <where>"). */
cJSON *hf_json_parse(const char *text, size_t len, uint64_t base_offset, rf_error *err);

/* Outcome of reading a JSON number as an exact unsigned integer. */
typedef enum hf_num {
    HF_NUM_OK = 0,
    HF_NUM_NOT_NUMBER,
    HF_NUM_NEGATIVE,
    HF_NUM_FRACTION,
    HF_NUM_TOO_LARGE, /* above 2^53: cJSON holds numbers as doubles, so larger values are inexact */
    HF_NUM_NOT_FINITE,
} hf_num;

hf_num hf_json_u64(const cJSON *item, uint64_t *out);
const char *hf_num_problem(hf_num n); /* "is negative", "is not an integer", ... */

/* A JSON item's kind for messages: "an object", "a string", "null", ... ("missing" for NULL). */
const char *hf_json_kind(const cJSON *item);

/* Case-sensitive object member lookup (cJSON_GetObjectItem ignores case). */
const cJSON *hf_json_get(const cJSON *object, const char *key);

/* Compact copy of checked JSON text: whitespace outside strings removed, every token (numbers,
 * string escapes) kept byte for byte. Owned by the model; NULL on allocation failure. */
char *hf_json_minify(rf_model *m, const char *text, size_t len, size_t *out_len);

/* ---- text building ----------------------------------------------------------------------- */

/* A growable byte buffer; after an allocation failure it stays failed and ignores writes. */
typedef struct hf_buf {
    char *data;
    size_t len, cap;
    bool failed;
} hf_buf;

void hf_buf_free(hf_buf *b);
void hf_buf_put(hf_buf *b, const void *data, size_t n);
void hf_buf_puts(hf_buf *b, const char *s);
void hf_buf_printf(hf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal with serde_json's escaping (the SafeTensors reference writer): \" \\
 * \b \f \n \r \t, other control characters as \u00xx (lower-case hex), everything else raw. */
void hf_buf_put_json_string(hf_buf *b, const char *s);
void hf_buf_put_json_stringn(hf_buf *b, const char *s, size_t n);
/* A double the way Python's repr() prints it (shortest round trip, "1e-06", "1000000.0"). The
 * value must be finite. */
void hf_buf_put_double(hf_buf *b, double v);
/* hf_buf_put_double, except that with as_float a value that is exactly a binary32 number (GGUF and
 * APR store config reals as f32) is spelled with the fewest digits that read back to that f32:
 * the f32 of 1e-6 prints as 1e-06, not 9.999999974752427e-07. */
void hf_buf_put_real(hf_buf *b, double v, bool as_float);
/* Re-indents compact JSON text (as produced by hf_json_minify or by the builders) the way
 * Python's json.dumps(indent=2) and serde_json's pretty printer do; transformers ends its files
 * with a newline, the tokenizers library (tokenizer.json) does not. */
void hf_buf_put_pretty(hf_buf *b, const char *compact, size_t len, bool final_newline);

/* ---- files ------------------------------------------------------------------------------- */

/* Reads a whole regular file of at most max_bytes into a malloc'd, NUL-terminated buffer.
 * RF_ERR_NOT_FOUND when it does not exist, RF_ERR_IO / RF_ERR_LIMIT otherwise. */
rf_status hf_read_file(const char *path, uint64_t max_bytes, char **out, size_t *out_len,
                       rf_error *err);

/* "dir/name" in a malloc'd string (NULL on allocation failure). */
char *hf_path_join(const char *dir, const char *name);
/* The directory part of path ("." when there is none), malloc'd. */
char *hf_path_dir(const char *path);

/* ---- companion files --------------------------------------------------------------------- */

/* Raw-metadata keys under which the companion files are kept (RF_VALUE_JSON, compact text). */
#define HF_KV_PREFIX "hf."

/* Reads config.json, generation_config.json, tokenizer.json, tokenizer_config.json and
 * chat_template.jinja from dir when present, into m's typed config, tokenizer and raw metadata
 * ("hf.<file name>"). Absent files are skipped; malformed ones fail with the file named. */
rf_status hf_read_companions(rf_model *m, const char *dir, rf_error *err);

/* Parsers of the individual files (text is the whole file; path is for messages). */
rf_status hf_config_read(rf_model *m, const char *path, const char *text, size_t len,
                         rf_error *err);
rf_status hf_generation_config_read(rf_model *m, const char *path, const char *text, size_t len,
                                    rf_error *err);
rf_status hf_tokenizer_read(rf_model *m, const char *path, const char *text, size_t len,
                            rf_error *err);
rf_status hf_tokenizer_config_read(rf_model *m, const char *path, const char *text, size_t len,
                                   rf_error *err);

/* Builders of compact JSON for the companion files from the typed view (models that did not
 * come from SafeTensors). Each returns false when there is nothing to write (no architecture,
 * no tokenizer); out is left empty then. */
bool hf_config_build(const rf_model *m, hf_buf *out);
bool hf_generation_config_build(const rf_model *m, hf_buf *out);
bool hf_tokenizer_build(const rf_model *m, hf_buf *out);
bool hf_tokenizer_config_build(const rf_model *m, hf_buf *out);

/* Rope type implied by an architecture name (qwen2 -> NEOX, llama -> NORM), UNKNOWN otherwise. */
rf_rope_type hf_rope_type_for(const char *architecture);

#endif
