/* UTF-8 validation with the strict rules every Rosetta reader applies to names and JSON text
 * (Unicode table 3-7, as Rust's str: no overlong forms, no surrogates, nothing above U+10FFFF).
 * Not for: decoding or normalizing text. */
#ifndef ROSETTA_TEXT_H
#define ROSETTA_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "rosetta/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Length in bytes (1..4) of the valid UTF-8 character at s[0..n), or 0 when the bytes there are
 * not one (or n is 0). An ASCII byte, NUL included, is a character of length 1. */
RF_API size_t rf_utf8_char_len(const void *s, size_t n);

/* Length of the longest valid UTF-8 prefix of s[0..n): n when all of it is valid, else the
 * offset of the first byte that does not start a valid character. */
RF_API size_t rf_utf8_valid_prefix(const void *s, size_t n);

/* Whether all of s[0..n) is valid UTF-8. */
RF_API bool rf_utf8_valid(const void *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif
