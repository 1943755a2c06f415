/* UTF-8 decoding with replacement, as the tokenizer reads text and the detokenizer writes it:
 * every invalid sequence becomes one U+FFFD per maximal subpart (Unicode chapter 3, "U+FFFD
 * substitution of maximal subparts"; what Python's bytes.decode(errors="replace") and Rust's
 * String::from_utf8_lossy do). Also the growable buffer used by the tokenizer.
 * Not for: normalization (encode.c calls utf8proc). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static const char REPLACEMENT[3] = {'\xEF', '\xBF', '\xBD'};

size_t tok_utf8_next(const uint8_t *s, size_t n, size_t *bad, bool *incomplete)
{
    *bad = 1;
    *incomplete = false;
    if (n == 0)
        return 0;
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte (Unicode table 3-7) */
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return 0; /* a continuation byte, C0, C1 or F5..FF: never valid */
    for (size_t i = 1; i < need; i++) {
        if (i >= n) {
            *bad = i;
            *incomplete = true;
            return 0;
        }
        uint8_t b = s[i];
        bool ok = i == 1 ? b >= lo && b <= hi : b >= 0x80 && b <= 0xBF;
        if (!ok) {
            *bad = i;
            return 0;
        }
    }
    return need;
}

uint32_t tok_utf8_decode(const uint8_t *s, size_t len)
{
    switch (len) {
    case 1: return s[0];
    case 2: return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    case 3: return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    default:
        return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
               (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    }
}

size_t tok_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool tok_buf_reserve(tok_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra <= b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void tok_buf_append(tok_buf *b, const void *data, size_t len)
{
    if (len == 0 || !tok_buf_reserve(b, len))
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void tok_buf_free(tok_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

size_t tok_utf8_append_lossy(tok_buf *b, const uint8_t *s, size_t n, bool hold)
{
    if (n == 0)
        return 0;
    size_t i = 0, run = 0; /* s[run..i) is valid and not yet appended */
    while (i < n) {
        if (s[i] < 0x80) { /* ASCII fast path */
            i++;
            continue;
        }
        size_t bad;
        bool incomplete;
        size_t len = tok_utf8_next(s + i, n - i, &bad, &incomplete);
        if (len) {
            i += len;
            continue;
        }
        tok_buf_append(b, s + run, i - run);
        if (incomplete && hold)
            return n - i;
        tok_buf_append(b, REPLACEMENT, sizeof REPLACEMENT);
        i += bad;
        run = i;
    }
    tok_buf_append(b, s + run, n - run);
    return 0;
}
