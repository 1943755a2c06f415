/* JSON text pieces shared by the two strict JSON readers and writers: the Hugging Face side
 * (hf_json.c, on top of cJSON) and the APR side (apr_json.c, serde_json's rules).
 * Not for: number spelling, which differs on purpose (Python repr in hf_json.c, serde_json's
 * ryu layout in apr_json.c). */
#ifndef ROSETTA_JSON_TEXT_H
#define ROSETTA_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text_buf.h"

/* Appends s[0..n) as a JSON string literal with the escapes serde_json and Python's json.dumps
 * (ensure_ascii=False) both use: \" \\ \b \f \n \r \t, other control characters as \u00xx
 * (lower-case hex), every other byte (DEL and UTF-8 included) as it is. */
void rfi_json_put_string(text_buf *b, const char *s, size_t n);
/* rfi_json_put_string of a NUL-terminated string. */
void rfi_json_put_cstring(text_buf *b, const char *s);

/* The value of the four hex digits at s (either case), the payload of a \u escape; false when
 * one of them is not a hex digit. s must have 4 readable bytes. */
bool rfi_json_hex4(const unsigned char *s, uint32_t *out);

#endif
