/* UTF-8 validation (rosetta/text.h): the one implementation used by the SafeTensors, APR and
 * Hugging Face readers and by the tools. Not for: decoding \u escapes (apr_json.c). */
#include "rosetta/text.h"

size_t rf_utf8_char_len(const void *s, size_t n)
{
    const unsigned char *p = s;
    if (n == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    /* Unicode 6.0 table 3-7: the second byte's range excludes overlong forms (E0, F0),
     * surrogates (ED) and code points above U+10FFFF (F4). */
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

size_t rf_utf8_valid_prefix(const void *s, size_t n)
{
    const unsigned char *p = s;
    size_t i = 0;
    while (i < n) {
        size_t len = rf_utf8_char_len(p + i, n - i);
        if (len == 0)
            return i;
        i += len;
    }
    return n;
}

bool rf_utf8_valid(const void *s, size_t n) { return rf_utf8_valid_prefix(s, n) == n; }
