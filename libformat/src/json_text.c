/* JSON string escaping and \u digits (json_text.h), one implementation for the SafeTensors
 * header, the Hugging Face companion files and the APR metadata. */
#include <string.h>

#include "json_text.h"

void rfi_json_put_string(text_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    rfi_text_buf_putc(b, '"');
    size_t run = 0; /* start of the bytes not yet copied: they go verbatim in one piece */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
                u[4] = hex[c >> 4], u[5] = hex[c & 15];
            }
            break;
        }
        if (!esc && c >= 0x20)
            continue;
        rfi_text_buf_put(b, s + run, i - run);
        if (esc)
            rfi_text_buf_puts(b, esc);
        else
            rfi_text_buf_put(b, u, 6);
        run = i + 1;
    }
    rfi_text_buf_put(b, s + run, n - run);
    rfi_text_buf_putc(b, '"');
}

void rfi_json_put_cstring(text_buf *b, const char *s) { rfi_json_put_string(b, s, strlen(s)); }

bool rfi_json_hex4(const unsigned char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return false;
    }
    *out = v;
    return true;
}
