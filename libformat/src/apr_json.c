/* JSON for APR metadata: a strict parser that keeps the distinctions serde_json makes, and output
 * that reproduces serde_json's compact bytes (docs/formats/apr.md). Not a general JSON library:
 * the rest of Rosetta uses cJSON; cJSON cannot tell 1 from 1.0 or keep u64 values exact. */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_internal.h"

#define MAX_DEPTH 128 /* serde_json's recursion limit */

void rfi_apr_buf_free(apr_buf *b) { rfi_text_buf_free(b); }

/* ---- output --------------------------------------------------------------------------------- */

void rfi_apr_json_u64(text_buf *b, uint64_t v)
{
    char t[24];
    rfi_text_buf_put(b, t, (size_t)snprintf(t, sizeof t, "%llu", (unsigned long long)v));
}

void rfi_apr_json_i64(text_buf *b, int64_t v)
{
    char t[24];
    rfi_text_buf_put(b, t, (size_t)snprintf(t, sizeof t, "%lld", (long long)v));
}

/* strtod follows LC_NUMERIC; metadata must not depend on the caller's locale (printf's digits
 * are read without its decimal point, so only parsing needs the C locale). */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static locale_t numeric_locale(void)
{
    pthread_once(&c_locale_once, make_c_locale);
    return c_locale;
}

/* Exact decimal "d.ddd...e±x" of v with prec significant digits (glibc rounds the exact binary
 * value, ties to even): the digits and the decimal exponent of the first one. */
static void decimal_digits(double v, int prec, char *digits, int *exp10)
{
    char t[64];
    snprintf(t, sizeof t, "%.*e", prec - 1, v);
    int n = 0;
    const char *p = t;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[n++] = *p;
    digits[n] = '\0';
    *exp10 = atoi(p + 1);
}

/* "d.ddde<exp>" without printf (this runs for every float of a tokenizer's score list). */
static void sci_text(const char *digits, int exp10, char *t)
{
    size_t n = 0;
    t[n++] = digits[0];
    if (digits[1]) {
        t[n++] = '.';
        for (const char *d = digits + 1; *d; d++)
            t[n++] = *d;
    }
    t[n++] = 'e';
    if (exp10 < 0) {
        t[n++] = '-';
        exp10 = -exp10;
    }
    char rev[8];
    int k = 0;
    do
        rev[k++] = (char)('0' + exp10 % 10);
    while ((exp10 /= 10) > 0);
    while (k)
        t[n++] = rev[--k];
    t[n] = '\0';
}

static double parse_digits(const char *digits, int exp10)
{
    char t[48];
    sci_text(digits, exp10, t);
    return strtod_l(t, NULL, numeric_locale());
}

/* Does the decimal parse back to v in its own precision? */
static bool round_trips(const char *digits, int exp10, double v, bool single)
{
    char t[48];
    sci_text(digits, exp10, t);
    if (single)
        return strtof_l(t, NULL, numeric_locale()) == (float)v;
    return strtod_l(t, NULL, numeric_locale()) == v;
}

/* Adds delta (+1 or -1) to the last digit of a prec-digit decimal, keeping prec digits. */
static void step_digits(char *digits, int *exp10, int prec, int delta)
{
    int i = prec - 1;
    if (delta > 0) {
        while (i >= 0 && digits[i] == '9')
            digits[i--] = '0';
        if (i < 0) { /* 99..9 + 1 = 100..0 with one more power of ten */
            digits[0] = '1';
            (*exp10)++;
        } else {
            digits[i]++;
        }
    } else {
        while (i >= 0 && digits[i] == '0')
            digits[i--] = '9';
        digits[i]--;
        if (digits[0] == '0') { /* 10..0 - 1 = 99..9 one power of ten lower */
            for (int k = 0; k < prec; k++)
                digits[k] = '9';
            (*exp10)--;
        }
    }
}

/* The nearest prec-digit decimal to v, derived from v's correctly rounded max-digit form `full`:
 * the tail after prec digits decides the rounding, except when it reads exactly 5000..., where
 * the exact value may lie on either side and glibc is asked. */
static void nearest_digits(double v, const char *full, int full_exp, int max_prec, int prec,
                           char *digits, int *exp10)
{
    if (prec >= max_prec) {
        memcpy(digits, full, (size_t)max_prec + 1);
        *exp10 = full_exp;
        return;
    }
    const char *tail = full + prec;
    bool tie = tail[0] == '5';
    for (const char *t = tail + 1; tie && *t; t++)
        tie = *t == '0';
    if (tie) {
        decimal_digits(v, prec, digits, exp10);
        return;
    }
    memcpy(digits, full, (size_t)prec);
    digits[prec] = '\0';
    *exp10 = full_exp;
    if (tail[0] >= '5')
        step_digits(digits, exp10, prec, 1);
}

/* Can prec digits represent v? On success the chosen decimal is in digits / exp10: the nearest
 * prec-digit decimal when it parses back to v, else its neighbour on the other side of v (the
 * rounding interval is wider above a power of two than below it). */
static bool try_prec(double v, bool single, bool power_of_two, const char *full, int full_exp,
                     int max_prec, int prec, char *digits, int *exp10)
{
    nearest_digits(v, full, full_exp, max_prec, prec, digits, exp10);
    if (round_trips(digits, *exp10, v, single))
        return true;
    if (!power_of_two) /* a symmetric interval holds the nearest decimal if it holds any */
        return false;
    double near = parse_digits(digits, *exp10);
    step_digits(digits, exp10, prec, near < v ? 1 : -1);
    return round_trips(digits, *exp10, v, single);
}

/* Shortest digits that parse back to v (positive, finite), the nearest one to v among those,
 * ties to an even last digit: Ryu's output, computed from exact printf digits and round-trip
 * tests rather than Ryu's tables. Whether some prec-digit decimal parses back to v is monotonic
 * in prec (append a zero), so the shortest length is found by bisection. */
static void shortest_digits(double v, bool single, char *digits, int *exp10)
{
    int max_prec = single ? 9 : 17;
    char full[24];
    int full_exp;
    decimal_digits(v, max_prec, full, &full_exp);
    /* only a power of two has a rounding interval that is wider on one side */
    int e2;
    bool power_of_two =
        single ? frexpf((float)v, &e2) == 0.5f && e2 > -125 : frexp(v, &e2) == 0.5 && e2 > -1021;
    int lo = 1, hi = max_prec;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int e;
        if (try_prec(v, single, power_of_two, full, full_exp, max_prec, mid, digits, &e))
            hi = mid;
        else
            lo = mid + 1;
    }
    try_prec(v, single, power_of_two, full, full_exp, max_prec, lo, digits, exp10);
    size_t n = strlen(digits);
    while (n > 1 && digits[n - 1] == '0')
        digits[--n] = '\0';
}

/* serde_json / ryu layout (ryu's format32 / format64): kk = len + e with v = D x 10^e. */
static void write_float(text_buf *b, double v, bool single)
{
    if (!isfinite(v)) {
        rfi_text_buf_puts(b, "null");
        return;
    }
    if (signbit(v))
        rfi_text_buf_putc(b, '-');
    v = fabs(v);
    if (v == 0) {
        rfi_text_buf_puts(b, "0.0");
        return;
    }
    char digits[32];
    int exp10;
    shortest_digits(v, single, digits, &exp10);
    int len = (int)strlen(digits);
    int e = exp10 - len + 1;
    int kk = len + e;
    int max_kk = single ? 13 : 16;
    int min_kk = single ? -6 : -5;
    char t[64];
    if (e >= 0 && kk <= max_kk) { /* 1234e7 -> 12340000000.0 */
        rfi_text_buf_put(b, digits, (size_t)len);
        for (int i = len; i < kk; i++)
            rfi_text_buf_putc(b, '0');
        rfi_text_buf_puts(b, ".0");
    } else if (kk > 0 && kk <= max_kk) { /* 1234e-2 -> 12.34 */
        rfi_text_buf_put(b, digits, (size_t)kk);
        rfi_text_buf_putc(b, '.');
        rfi_text_buf_put(b, digits + kk, (size_t)(len - kk));
    } else if (kk > min_kk && kk <= 0) { /* 1234e-6 -> 0.001234 */
        rfi_text_buf_puts(b, "0.");
        for (int i = 0; i < -kk; i++)
            rfi_text_buf_putc(b, '0');
        rfi_text_buf_put(b, digits, (size_t)len);
    } else if (len == 1) { /* 1e30 */
        rfi_text_buf_putc(b, digits[0]);
        rfi_text_buf_put(b, t, (size_t)snprintf(t, sizeof t, "e%d", kk - 1));
    } else { /* 1234e30 -> 1.234e33 */
        rfi_text_buf_putc(b, digits[0]);
        rfi_text_buf_putc(b, '.');
        rfi_text_buf_put(b, digits + 1, (size_t)(len - 1));
        rfi_text_buf_put(b, t, (size_t)snprintf(t, sizeof t, "e%d", kk - 1));
    }
}

double rfi_apr_json_number(const char *text)
{
    char *end;
    double v = strtod_l(text, &end, numeric_locale());
    return end != text && *end == '\0' ? v : NAN;
}

void rfi_apr_json_f32(text_buf *b, float v) { write_float(b, (double)v, true); }
void rfi_apr_json_f64(text_buf *b, double v) { write_float(b, v, false); }

/* ---- parser --------------------------------------------------------------------------------- */

typedef struct parser {
    const uint8_t *s;
    size_t len, pos;
    uint64_t base;
    const char *what;
    apr_json *j;
    rf_error *err;
} parser;

static rf_status fail(parser *p, size_t at, const char *expected)
{
    if (at < p->len) {
        unsigned char c = p->s[at];
        if (c >= 0x20 && c < 0x7f)
            return rf_error_set(p->err, RF_ERR_FORMAT,
                                "%s: invalid JSON at offset %llu: %s, found '%c'", p->what,
                                (unsigned long long)(p->base + at), expected, c);
        return rf_error_set(p->err, RF_ERR_FORMAT,
                            "%s: invalid JSON at offset %llu: %s, found byte 0x%02x", p->what,
                            (unsigned long long)(p->base + at), expected, c);
    }
    return rf_error_set(p->err, RF_ERR_FORMAT,
                        "%s: invalid JSON at offset %llu: %s, found the end of the text", p->what,
                        (unsigned long long)(p->base + at), expected);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        uint8_t c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static rf_status new_node(parser *p, apr_jtype type, uint32_t *out)
{
    apr_json *j = p->j;
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 64;
        if (cap > UINT32_MAX)
            return rf_error_set(p->err, RF_ERR_LIMIT, "%s: too many JSON values", p->what);
        apr_jnode *nodes = realloc(j->nodes, cap * sizeof *nodes);
        if (!nodes)
            return rf_error_set(p->err, RF_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
        j->nodes = nodes;
        j->cap = cap;
    }
    memset(&j->nodes[j->n], 0, sizeof j->nodes[j->n]);
    j->nodes[j->n].type = type;
    j->nodes[j->n].offset = p->base + p->pos;
    *out = (uint32_t)j->n++;
    return RF_OK;
}

static size_t put_utf8(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Parses the string at p->pos (on the opening quote) into the strings buffer. A decoded string
 * never exceeds its quoted source, so the buffer sized from the text never overflows. */
static rf_status parse_string(parser *p, const char **out, uint64_t *out_len)
{
    apr_json *j = p->j;
    char *d = j->strings + j->strings_used;
    size_t n = 0;
    p->pos++; /* opening quote */
    for (;;) {
        if (p->pos >= p->len)
            return fail(p, p->pos, "expected '\"' closing the string");
        uint8_t c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            return fail(p, p->pos, "control character in a string (must be escaped)");
        if (c == '\\') {
            if (p->pos + 1 >= p->len)
                return fail(p, p->pos + 1, "expected an escape character");
            uint8_t e = p->s[p->pos + 1];
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) {
                static const char map[] = "\"\\/\b\f\n\r\t";
                d[n++] = map[simple - "\"\\/bfnrt"];
                p->pos += 2;
                continue;
            }
            if (e != 'u')
                return fail(
                    p, p->pos + 1,
                    "invalid escape (expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u)");
            uint32_t cp;
            if (p->pos + 6 > p->len || !rfi_json_hex4(p->s + p->pos + 2, &cp))
                return fail(p, p->pos + 2, "expected 4 hex digits after \\u");
            p->pos += 6;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail(p, p->pos - 6, "lone trailing surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (p->pos + 6 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                    !rfi_json_hex4(p->s + p->pos + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return fail(p, p->pos, "expected a \\u escape of a trailing surrogate");
                p->pos += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            n += put_utf8(d + n, cp);
            continue;
        }
        size_t seq = rf_utf8_char_len(p->s + p->pos, p->len - p->pos);
        if (seq == 0)
            return rf_error_set(
                p->err, RF_ERR_FORMAT,
                "%s: invalid UTF-8 at offset %llu (byte 0x%02x): JSON text must be UTF-8", p->what,
                (unsigned long long)(p->base + p->pos), c);
        memcpy(d + n, p->s + p->pos, seq);
        n += seq;
        p->pos += seq;
    }
    d[n] = '\0';
    j->strings_used += n + 1;
    *out = d;
    *out_len = n;
    return RF_OK;
}

static rf_status parse_number(parser *p, apr_jnode *node)
{
    size_t start = p->pos;
    bool neg = false;
    if (p->s[p->pos] == '-') {
        neg = true;
        p->pos++;
    }
    if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return fail(p, p->pos, "expected a digit");
    uint64_t mag = 0;
    bool overflow = false;
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            return fail(p, p->pos, "leading zeros are not allowed in numbers");
    } else {
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            if (__builtin_mul_overflow(mag, 10, &mag) ||
                __builtin_add_overflow(mag, (uint64_t)(p->s[p->pos] - '0'), &mag))
                overflow = true;
            p->pos++;
        }
    }
    bool is_float = false;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        is_float = true;
        p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return fail(p, p->pos, "expected a digit after the decimal point");
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        is_float = true;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return fail(p, p->pos, "expected a digit in the exponent");
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    if (!is_float && !overflow) {
        if (!neg) {
            node->type = APR_J_U64;
            node->as.u = mag;
            return RF_OK;
        }
        /* serde_json: a negative integer is i64 unless it is -0 or below i64::MIN (then f64) */
        if (mag != 0 && mag <= (uint64_t)INT64_MAX + 1) {
            node->type = APR_J_I64;
            node->as.i = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
            return RF_OK;
        }
    }
    char stack[64];
    size_t n = p->pos - start;
    char *t = n < sizeof stack ? stack : malloc(n + 1);
    if (!t)
        return rf_error_set(p->err, RF_ERR_NOMEM, "%s: out of memory parsing a number", p->what);
    memcpy(t, p->s + start, n);
    t[n] = '\0';
    double v = strtod_l(t, NULL, numeric_locale());
    if (t != stack)
        free(t);
    if (!isfinite(v))
        return rf_error_set(p->err, RF_ERR_FORMAT,
                            "%s: number out of range at offset %llu (does not fit an f64)", p->what,
                            (unsigned long long)(p->base + start));
    node->type = APR_J_F64;
    node->as.f = v;
    return RF_OK;
}

static rf_status parse_value(parser *p, int depth, uint32_t *out);
static rf_status parse_token(parser *p, int depth, uint8_t c, uint32_t idx);

static rf_status parse_container(parser *p, int depth, bool object, uint32_t self)
{
    if (depth >= MAX_DEPTH)
        return rf_error_set(p->err, RF_ERR_FORMAT,
                            "%s: JSON nested deeper than %d levels at offset %llu", p->what,
                            MAX_DEPTH, (unsigned long long)(p->base + p->pos));
    char close = object ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return RF_OK;
    }
    uint32_t last = 0;
    for (;;) {
        const char *key = NULL;
        uint64_t key_len = 0, key_offset = p->base + p->pos;
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail(p, p->pos, "expected '\"' starting an object key");
            rf_status st = parse_string(p, &key, &key_len);
            if (st != RF_OK)
                return st;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, p->pos, "expected ':' after an object key");
            p->pos++;
        }
        uint32_t child;
        rf_status st = parse_value(p, depth + 1, &child);
        if (st != RF_OK)
            return st;
        apr_jnode *nodes = p->j->nodes;
        nodes[child].key = key;
        nodes[child].key_len = (uint32_t)key_len;
        nodes[child].key_offset = key_offset;
        if (last)
            nodes[last].next = child;
        else
            nodes[self].first = child;
        last = child;
        nodes[self].count++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return RF_OK;
        }
        return fail(p, p->pos,
                    object ? "expected ',' or '}' in an object"
                           : "expected ',' or ']' in an array");
    }
}

static rf_status literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, p->pos, "expected a JSON value");
    p->pos += n;
    return RF_OK;
}

static rf_status parse_value(parser *p, int depth, uint32_t *out)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, p->pos, "expected a JSON value");
    uint8_t c = p->s[p->pos];
    uint32_t idx = 0;
    rf_status st = new_node(p, APR_J_NULL, &idx);
    if (st != RF_OK)
        return st;
    *out = idx;
    st = parse_token(p, depth, c, idx);
    p->j->nodes[idx].end = p->base + p->pos; /* nodes may have moved: index again */
    return st;
}

static rf_status parse_token(parser *p, int depth, uint8_t c, uint32_t idx)
{
    rf_status st;
    switch (c) {
    case '{':
    case '[':
        p->j->nodes[idx].type = c == '{' ? APR_J_OBJECT : APR_J_ARRAY;
        return parse_container(p, depth, c == '{', idx);
    case '"': {
        const char *s;
        uint64_t n;
        st = parse_string(p, &s, &n);
        if (st == RF_OK) {
            p->j->nodes[idx].type = APR_J_STRING;
            p->j->nodes[idx].str = s;
            p->j->nodes[idx].str_len = n;
        }
        return st;
    }
    case 't':
        p->j->nodes[idx].type = APR_J_BOOL;
        p->j->nodes[idx].as.b = true;
        return literal(p, "true");
    case 'f': p->j->nodes[idx].type = APR_J_BOOL; return literal(p, "false");
    case 'n': return literal(p, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p, &p->j->nodes[idx]);
        return fail(p, p->pos, "expected a JSON value");
    }
}

rf_status rfi_apr_json_parse(const uint8_t *text, size_t len, uint64_t base, const char *what,
                             apr_json *out, rf_error *err)
{
    memset(out, 0, sizeof *out);
    out->strings_cap = len + 1;
    out->strings = malloc(out->strings_cap);
    if (!out->strings)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for %zu bytes of JSON", what,
                            len);
    parser p = {.s = text, .len = len, .base = base, .what = what, .j = out, .err = err};
    uint32_t root;
    rf_status st = parse_value(&p, 0, &root);
    if (st == RF_OK) {
        skip_ws(&p);
        if (p.pos != p.len)
            st = fail(&p, p.pos, "expected the end of the JSON text (trailing characters)");
    }
    if (st != RF_OK)
        rfi_apr_json_free(out);
    return st;
}

void rfi_apr_json_free(apr_json *j)
{
    free(j->nodes);
    free(j->strings);
    memset(j, 0, sizeof *j);
}

uint32_t rfi_apr_json_member(const apr_json *j, uint32_t object, const char *key)
{
    uint32_t found = 0;
    size_t n = strlen(key);
    for (uint32_t c = j->nodes[object].first; c; c = j->nodes[c].next)
        if (j->nodes[c].key_len == n && memcmp(j->nodes[c].key, key, n) == 0)
            found = c;
    return found;
}

int rfi_apr_json_cmp_members(const void *a, const void *b, void *ctx)
{
    const apr_json *j = ctx;
    const apr_jnode *x = &j->nodes[*(const uint32_t *)a];
    const apr_jnode *y = &j->nodes[*(const uint32_t *)b];
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
    return ia < ib ? -1 : ia > ib;
}

void rfi_apr_json_write(text_buf *b, const apr_json *j, uint32_t idx)
{
    const apr_jnode *node = &j->nodes[idx];
    switch (node->type) {
    case APR_J_NULL: rfi_text_buf_puts(b, "null"); return;
    case APR_J_BOOL: rfi_text_buf_puts(b, node->as.b ? "true" : "false"); return;
    case APR_J_U64: rfi_apr_json_u64(b, node->as.u); return;
    case APR_J_I64: rfi_apr_json_i64(b, node->as.i); return;
    case APR_J_F64: rfi_apr_json_f64(b, node->as.f); return;
    case APR_J_STRING: rfi_json_put_string(b, node->str, (size_t)node->str_len); return;
    case APR_J_ARRAY:
        rfi_text_buf_putc(b, '[');
        for (uint32_t c = node->first; c; c = j->nodes[c].next) {
            if (c != node->first)
                rfi_text_buf_putc(b, ',');
            rfi_apr_json_write(b, j, c);
        }
        rfi_text_buf_putc(b, ']');
        return;
    case APR_J_OBJECT: {
        uint32_t *order = malloc((node->count ? node->count : 1) * sizeof *order);
        if (!order) {
            b->failed = true;
            return;
        }
        uint32_t n = 0;
        for (uint32_t c = node->first; c; c = j->nodes[c].next)
            order[n++] = c;
        qsort_r(order, n, sizeof *order, rfi_apr_json_cmp_members, (void *)j);
        rfi_text_buf_putc(b, '{');
        bool first = true;
        for (uint32_t i = 0; i < n; i++) {
            const apr_jnode *m = &j->nodes[order[i]];
            if (i + 1 < n) { /* a repeated key: only its last occurrence is kept */
                const apr_jnode *next = &j->nodes[order[i + 1]];
                if (next->key_len == m->key_len && memcmp(next->key, m->key, m->key_len) == 0)
                    continue;
            }
            if (!first)
                rfi_text_buf_putc(b, ',');
            first = false;
            rfi_json_put_string(b, m->key, m->key_len);
            rfi_text_buf_putc(b, ':');
            rfi_apr_json_write(b, j, order[i]);
        }
        rfi_text_buf_putc(b, '}');
        free(order);
        return;
    }
    }
}
