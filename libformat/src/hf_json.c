/* Strict JSON on top of cJSON for SafeTensors headers and Hugging Face companion files: an RFC 8259
 * syntax check with byte offsets, duplicate-key detection, exact integers, compact and pretty text.
 * Not for: interpreting any particular file (safetensors_read.c, hf_config.c, hf_tokenizer.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_internal.h"
#include "hf_internal.h"

/* ---- syntax check ------------------------------------------------------------------------ */

typedef struct jscan {
    const unsigned char *s;
    size_t len, pos;
    uint64_t base;
    const unsigned char *key; /* innermost object key seen, for messages */
    size_t key_len;
    rf_error *err;
    int max_depth;   /* containers nested deeper than this are refused */
    bool reject_nul; /* \u0000 in a string is refused (the value becomes a C string) */
} jscan;

static rf_status scan_fail(jscan *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static rf_status scan_fail(jscan *j, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return rf_error_set(j->err, RF_ERR_FORMAT, "invalid JSON at offset %llu: %s",
                        (unsigned long long)(j->base + j->pos), what);
}

static void scan_ws(jscan *j)
{
    while (j->pos < j->len) {
        unsigned char c = j->s[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        j->pos++;
    }
}

static rf_status scan_u_escape(jscan *j, unsigned *out)
{
    /* j->pos is at the 'u' */
    if (j->len - j->pos < 5)
        return scan_fail(j, "truncated \\u escape");
    uint32_t v;
    if (!rfi_json_hex4(j->s + j->pos + 1, &v))
        return scan_fail(j, "\\u escape needs 4 hex digits");
    j->pos += 5;
    *out = v;
    return RF_OK;
}

static rf_status scan_string(jscan *j)
{
    /* j->pos is at the opening quote */
    j->pos++;
    while (j->pos < j->len) {
        unsigned char c = j->s[j->pos];
        if (c == '"') {
            j->pos++;
            return RF_OK;
        }
        if (c < 0x20)
            return scan_fail(j, "control character 0x%02x inside a string (must be escaped)", c);
        if (c == '\\') {
            j->pos++;
            if (j->pos >= j->len)
                break;
            c = j->s[j->pos];
            if (c == 'u') {
                unsigned u = 0;
                if (scan_u_escape(j, &u) != RF_OK)
                    return RF_ERR_FORMAT;
                if (u == 0 && j->reject_nul) {
                    j->pos -= 6;
                    return scan_fail(j, "\\u0000 (NUL) inside a string: names and metadata "
                                        "are C strings here, a NUL would cut them short");
                }
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return scan_fail(j, "lone low surrogate \\u%04x", u);
                if (u >= 0xD800 && u <= 0xDBFF) {
                    unsigned low = 0;
                    if (j->len - j->pos < 2 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u')
                        return scan_fail(j, "high surrogate \\u%04x not followed by a low one", u);
                    j->pos++;
                    if (scan_u_escape(j, &low) != RF_OK)
                        return RF_ERR_FORMAT;
                    if (low < 0xDC00 || low > 0xDFFF)
                        return scan_fail(j, "high surrogate \\u%04x followed by \\u%04x", u, low);
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", c) || c == 0)
                return scan_fail(j, "invalid escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
            j->pos++;
            continue;
        }
        size_t n = rf_utf8_char_len(j->s + j->pos, j->len - j->pos);
        if (n == 0)
            return scan_fail(j, "invalid UTF-8 byte 0x%02x inside a string", c);
        j->pos += n;
    }
    return scan_fail(j, "unterminated string");
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static rf_status non_finite(jscan *j, const char *word)
{
    if (j->key)
        return scan_fail(j, "key \"%.*s\": %s is not a finite number (JSON has no NaN or Infinity)",
                         (int)(j->key_len < 200 ? j->key_len : 200), (const char *)j->key, word);
    return scan_fail(j, "%s is not a finite number (JSON has no NaN or Infinity)", word);
}

static bool starts_with(const jscan *j, const char *word)
{
    size_t n = strlen(word);
    return j->len - j->pos >= n && memcmp(j->s + j->pos, word, n) == 0;
}

static rf_status scan_number(jscan *j)
{
    if (j->s[j->pos] == '-') {
        j->pos++;
        if (starts_with(j, "Infinity") || starts_with(j, "inf"))
            return non_finite(j, "-Infinity");
    }
    if (j->pos >= j->len || !is_digit(j->s[j->pos]))
        return scan_fail(j, "a number needs a digit here");
    if (j->s[j->pos] == '0') {
        j->pos++;
        if (j->pos < j->len && is_digit(j->s[j->pos]))
            return scan_fail(j, "leading zero in a number");
    } else
        while (j->pos < j->len && is_digit(j->s[j->pos]))
            j->pos++;
    if (j->pos < j->len && j->s[j->pos] == '.') {
        j->pos++;
        if (j->pos >= j->len || !is_digit(j->s[j->pos]))
            return scan_fail(j, "a fraction needs a digit after '.'");
        while (j->pos < j->len && is_digit(j->s[j->pos]))
            j->pos++;
    }
    if (j->pos < j->len && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
        j->pos++;
        if (j->pos < j->len && (j->s[j->pos] == '+' || j->s[j->pos] == '-'))
            j->pos++;
        if (j->pos >= j->len || !is_digit(j->s[j->pos]))
            return scan_fail(j, "an exponent needs a digit");
        while (j->pos < j->len && is_digit(j->s[j->pos]))
            j->pos++;
    }
    return RF_OK;
}

static rf_status scan_value(jscan *j, int depth);

static rf_status scan_container(jscan *j, int depth, bool object)
{
    if (depth >= j->max_depth)
        return scan_fail(j, "nesting deeper than %d levels", j->max_depth);
    const unsigned char *saved_key = j->key;
    size_t saved_key_len = j->key_len;
    char close = object ? '}' : ']';
    j->pos++;
    scan_ws(j);
    if (j->pos < j->len && j->s[j->pos] == (unsigned char)close) {
        j->pos++;
        return RF_OK;
    }
    for (;;) {
        scan_ws(j);
        if (object) {
            if (j->pos >= j->len || j->s[j->pos] != '"')
                return scan_fail(j, "expected a string key");
            size_t key_start = j->pos + 1;
            if (scan_string(j) != RF_OK)
                return RF_ERR_FORMAT;
            j->key = j->s + key_start;
            j->key_len = j->pos - 1 - key_start;
            scan_ws(j);
            if (j->pos >= j->len || j->s[j->pos] != ':')
                return scan_fail(j, "expected ':' after a key");
            j->pos++;
        }
        if (scan_value(j, depth + 1) != RF_OK)
            return RF_ERR_FORMAT;
        scan_ws(j);
        if (j->pos >= j->len)
            return scan_fail(j, "unexpected end of JSON inside %s",
                             object ? "an object" : "an array");
        unsigned char c = j->s[j->pos];
        if (c == (unsigned char)close) {
            j->pos++;
            j->key = saved_key;
            j->key_len = saved_key_len;
            return RF_OK;
        }
        if (c != ',')
            return scan_fail(j, "expected ',' or '%c'", close);
        j->pos++;
    }
}

static rf_status scan_value(jscan *j, int depth)
{
    scan_ws(j);
    if (j->pos >= j->len)
        return scan_fail(j, "unexpected end of JSON (a value was expected)");
    unsigned char c = j->s[j->pos];
    switch (c) {
    case '{': return scan_container(j, depth, true);
    case '[': return scan_container(j, depth, false);
    case '"': return scan_string(j);
    case 't':
        if (!starts_with(j, "true"))
            break;
        j->pos += 4;
        return RF_OK;
    case 'f':
        if (!starts_with(j, "false"))
            break;
        j->pos += 5;
        return RF_OK;
    case 'n':
        if (!starts_with(j, "null"))
            break;
        j->pos += 4;
        return RF_OK;
    case 'N':
        if (starts_with(j, "NaN") || starts_with(j, "Nan"))
            return non_finite(j, "NaN");
        break;
    case 'I':
        if (starts_with(j, "Infinity"))
            return non_finite(j, "Infinity");
        break;
    default:
        if (c == '-' || is_digit(c))
            return scan_number(j);
        break;
    }
    if (c >= 0x20 && c < 0x7f)
        return scan_fail(j, "unexpected character '%c'", c);
    return scan_fail(j, "unexpected byte 0x%02x", c);
}

static rf_status check_text(const char *text, size_t len, uint64_t base_offset, int max_depth,
                            bool reject_nul, rf_error *err)
{
    jscan j = {
        (const unsigned char *)text, len, 0, base_offset, NULL, 0, err, max_depth, reject_nul};
    if (scan_value(&j, 0) != RF_OK)
        return RF_ERR_FORMAT;
    scan_ws(&j);
    if (j.pos < j.len)
        return scan_fail(&j, "unexpected data after the end of the JSON value");
    return RF_OK;
}

rf_status rfi_hf_json_check(const char *text, size_t len, uint64_t base_offset, rf_error *err)
{
    return check_text(text, len, base_offset, HF_JSON_MAX_DEPTH, false, err);
}

/* ---- parse with duplicate detection ------------------------------------------------------ */

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks every object under item for repeated keys. parent_key names the object holding item
 * (NULL at the top level); messages are only formatted when a duplicate is found. */
static rf_status check_duplicates(const cJSON *item, const char *parent_key, rf_error *err)
{
    if (!cJSON_IsObject(item) && !cJSON_IsArray(item))
        return RF_OK;
    size_t n = 0;
    for (const cJSON *c = item->child; c; c = c->next)
        n++;
    if (cJSON_IsObject(item) && n > 1) {
        const char **keys = malloc(n * sizeof *keys);
        if (!keys)
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory checking JSON keys");
        size_t i = 0;
        for (const cJSON *c = item->child; c; c = c->next)
            keys[i++] = c->string ? c->string : "";
        qsort(keys, n, sizeof *keys, compare_keys);
        for (i = 1; i < n; i++)
            if (strcmp(keys[i - 1], keys[i]) == 0) {
                if (parent_key)
                    rf_error_set(err, RF_ERR_FORMAT,
                                 "duplicate key \"%.200s\" in the object "
                                 "\"%.200s\"",
                                 keys[i], parent_key);
                else
                    rf_error_set(err, RF_ERR_FORMAT,
                                 "duplicate key \"%.200s\" in the top-level "
                                 "object",
                                 keys[i]);
                free(keys);
                return RF_ERR_FORMAT;
            }
        free(keys);
    }
    for (const cJSON *c = item->child; c; c = c->next) {
        /* members of an object are named by their key; array elements by the array's name */
        const char *inner = cJSON_IsObject(item) ? (c->string ? c->string : "") : parent_key;
        if (check_duplicates(c, inner, err) != RF_OK)
            return RF_ERR_FORMAT;
    }
    return RF_OK;
}

static cJSON *parse_checked(const char *text, size_t len, uint64_t base_offset, int max_depth,
                            bool reject_nul, rf_error *err)
{
    if (check_text(text, len, base_offset, max_depth, reject_nul, err) != RF_OK)
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        /* The syntax check passed, so this is cJSON running out of memory (or a cJSON limit). */
        rf_error_set(err, RF_ERR_NOMEM, "JSON of %zu bytes could not be parsed (out of memory?)",
                     len);
        return NULL;
    }
    if (check_duplicates(root, NULL, err) != RF_OK) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

cJSON *rfi_hf_json_parse(const char *text, size_t len, uint64_t base_offset, rf_error *err)
{
    return parse_checked(text, len, base_offset, HF_JSON_MAX_DEPTH, false, err);
}

/* Moves *pos to the start of the next number token of checked JSON text (strings skipped). */
static bool next_number(const char *text, size_t len, size_t *pos)
{
    size_t i = *pos;
    while (i < len) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            *pos = i;
            return true;
        } else
            i++;
    }
    return false;
}

/* Walks the tree in document order (the order of the text: cJSON keeps members in order) and
 * stores each number's text offset in its valueint. */
static void mark_numbers(cJSON *item, const char *text, size_t len, size_t *pos)
{
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item) && next_number(text, len, pos)) {
            item->valueint = (int)*pos;
            while (*pos < len && strchr("-+.eE0123456789", text[*pos]))
                (*pos)++;
        }
        if (item->child)
            mark_numbers(item->child, text, len, pos);
    }
}

cJSON *rfi_hf_json_parse_header(const char *text, size_t len, uint64_t base_offset, rf_error *err)
{
    if (len > INT_MAX) {
        rf_error_set(err, RF_ERR_LIMIT, "JSON of %zu bytes is too large", len);
        return NULL;
    }
    cJSON *root = parse_checked(text, len, base_offset, HF_JSON_HEADER_MAX_DEPTH, true, err);
    if (root) {
        size_t pos = 0;
        mark_numbers(root, text, len, &pos);
    }
    return root;
}

hf_num rfi_hf_json_exact_u64(const cJSON *item, const char *text, size_t len, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return HF_NUM_NOT_NUMBER;
    size_t i = (size_t)item->valueint;
    if (i >= len)
        return HF_NUM_NOT_NUMBER;
    if (text[i] == '-')
        return item->valuedouble == 0 ? HF_NUM_FLOAT_SPELLING : HF_NUM_NEGATIVE;
    uint64_t v = 0;
    bool wraps = false;
    for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
        unsigned d = (unsigned)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            wraps = true;
        v = v * 10 + d;
    }
    if (i < len && (text[i] == '.' || text[i] == 'e' || text[i] == 'E'))
        return item->valuedouble == floor(item->valuedouble) ? HF_NUM_FLOAT_SPELLING
                                                             : HF_NUM_FRACTION;
    if (wraps)
        return HF_NUM_OVER_U64;
    *out = v;
    return HF_NUM_OK;
}

const char *rfi_hf_json_number_text(const cJSON *item, const char *text, size_t len, int *n)
{
    size_t i = cJSON_IsNumber(item) ? (size_t)item->valueint : len;
    size_t e = i;
    while (e < len && strchr("-+.eE0123456789", text[e]))
        e++;
    *n = e - i > 64 ? 64 : (int)(e - i);
    return i < len ? text + i : "";
}

cJSON *rfi_hf_json_parse_object(const char *path, const char *text, size_t len, rf_error *err)
{
    cJSON *root = rfi_hf_json_parse(text, len, 0, err);
    if (!root) {
        rf_error_prefix(err, "%s", path);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        rf_error_set(err, RF_ERR_FORMAT, "%s: is %s, expected a JSON object", path,
                     rfi_hf_json_kind(root));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

const char *rfi_hf_json_kind(const cJSON *item)
{
    if (!item)
        return "missing";
    if (cJSON_IsObject(item))
        return "an object";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNull(item))
        return "null";
    return "an invalid value";
}

const cJSON *rfi_hf_json_get(const cJSON *object, const char *key)
{
    if (!cJSON_IsObject(object))
        return NULL;
    for (const cJSON *c = object->child; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0)
            return c;
    return NULL;
}

hf_num rfi_hf_json_u64(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return HF_NUM_NOT_NUMBER;
    double v = item->valuedouble;
    if (!isfinite(v))
        return HF_NUM_NOT_FINITE;
    if (v < 0)
        return HF_NUM_NEGATIVE;
    if (v != floor(v))
        return HF_NUM_FRACTION;
    if (v > 9007199254740992.0)
        return HF_NUM_TOO_LARGE;
    *out = (uint64_t)v;
    return HF_NUM_OK;
}

const char *rfi_hf_num_problem(hf_num n)
{
    switch (n) {
    case HF_NUM_OK: return "is valid";
    case HF_NUM_NOT_NUMBER: return "is not a number";
    case HF_NUM_NEGATIVE: return "is negative";
    case HF_NUM_FRACTION: return "is not an integer";
    case HF_NUM_TOO_LARGE: return "is larger than 2^53 (not exactly representable)";
    case HF_NUM_NOT_FINITE: return "is not finite";
    case HF_NUM_FLOAT_SPELLING:
        return "is a floating-point number in JSON (written with '.', an exponent or as -0)";
    case HF_NUM_OVER_U64: return "does not fit in 64 bits";
    }
    return "is invalid";
}

char *rfi_hf_json_minify(rf_model *m, const char *text, size_t len, size_t *out_len)
{
    char *out = rf_model_alloc(m, len + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            out[n++] = c;
            if (c == '\\' && i + 1 < len)
                out[n++] = text[++i];
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
            out[n++] = c;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            out[n++] = c;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* ---- text building ----------------------------------------------------------------------- */

void rfi_hf_buf_put_double(text_buf *b, double v) { rfi_hf_buf_put_real(b, v, false); }

void rfi_hf_buf_put_real(text_buf *b, double v, bool as_float)
{
    /* Shortest decimal that reads back to the same value, laid out as Python's repr(): plain
     * notation with at least one fractional digit for exponents -4..15, otherwise d.ddde[+-]XX. */
    char digits[40];
    int exp10 = 0;
    bool single = as_float && (double)(float)v == v;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec - 1, v);
        if (single ? strtof(digits, NULL) == (float)v : strtod(digits, NULL) == v)
            break;
    }
    /* digits is "[-]d[.ddd]e[+-]XX": split into sign, mantissa digits and exponent */
    char *e = strchr(digits, 'e');
    exp10 = atoi(e + 1);
    *e = '\0';
    bool negative = digits[0] == '-';
    char mant[40];
    size_t nm = 0;
    for (const char *p = digits + (negative ? 1 : 0); *p; p++)
        if (*p != '.')
            mant[nm++] = *p;
    while (nm > 1 && mant[nm - 1] == '0')
        nm--;
    mant[nm] = '\0';
    if (negative)
        rfi_text_buf_puts(b, "-");
    if (exp10 < -4 || exp10 >= 16) {
        rfi_text_buf_put(b, mant, 1);
        if (nm > 1) {
            rfi_text_buf_puts(b, ".");
            rfi_text_buf_put(b, mant + 1, nm - 1);
        }
        rfi_text_buf_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
        return;
    }
    if (exp10 < 0) {
        rfi_text_buf_puts(b, "0.");
        for (int i = 0; i < -exp10 - 1; i++)
            rfi_text_buf_puts(b, "0");
        rfi_text_buf_put(b, mant, nm);
        return;
    }
    size_t int_digits = (size_t)exp10 + 1;
    if (nm <= int_digits) {
        rfi_text_buf_put(b, mant, nm);
        for (size_t i = nm; i < int_digits; i++)
            rfi_text_buf_puts(b, "0");
        rfi_text_buf_puts(b, ".0");
    } else {
        rfi_text_buf_put(b, mant, int_digits);
        rfi_text_buf_puts(b, ".");
        rfi_text_buf_put(b, mant + int_digits, nm - int_digits);
    }
}

static void put_indent(text_buf *b, int level)
{
    static const char spaces[] = "                                                                ";
    size_t n = (size_t)level * 2;
    while (n > 0) {
        size_t take = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        rfi_text_buf_put(b, spaces, take);
        n -= take;
    }
}

void rfi_hf_buf_put_pretty(text_buf *b, const char *s, size_t len, bool final_newline)
{
    int level = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            size_t start = i++;
            while (i < len && s[i] != '"')
                i += s[i] == '\\' ? 2 : 1;
            rfi_text_buf_put(b, s + start, (i < len ? i + 1 : len) - start);
            continue;
        }
        switch (c) {
        case '{':
        case '[':
            if (i + 1 < len && (s[i + 1] == '}' || s[i + 1] == ']')) {
                rfi_text_buf_put(b, s + i, 2);
                i++;
                break;
            }
            rfi_text_buf_put(b, &c, 1);
            rfi_text_buf_puts(b, "\n");
            put_indent(b, ++level);
            break;
        case '}':
        case ']':
            rfi_text_buf_puts(b, "\n");
            put_indent(b, --level);
            rfi_text_buf_put(b, &c, 1);
            break;
        case ',':
            rfi_text_buf_puts(b, ",\n");
            put_indent(b, level);
            break;
        case ':': rfi_text_buf_puts(b, ": "); break;
        default: rfi_text_buf_put(b, &c, 1); break;
        }
    }
    if (final_newline)
        rfi_text_buf_puts(b, "\n");
}

/* ---- files ------------------------------------------------------------------------------- */

rf_status rfi_hf_read_file(const char *path, uint64_t max_bytes, char **out, size_t *out_len,
                           rf_error *err)
{
    *out = NULL;
    *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        if (errno == ENOENT)
            return rf_error_set(err, RF_ERR_NOT_FOUND, "%s: no such file", path);
        return rf_error_set(err, RF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return rf_error_set(err, RF_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return rf_error_set(err, RF_ERR_LIMIT, "%s: %llu bytes, more than the %llu-byte limit",
                            path, (unsigned long long)st.st_size, (unsigned long long)max_bytes);
    }
    size_t size = (size_t)st.st_size;
    char *data = malloc(size + 1);
    if (!data) {
        fclose(f);
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, size);
    }
    size_t got = fread(data, 1, size, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != size) {
        free(data);
        return rf_error_set(err, RF_ERR_IO, "%s: read %zu of %zu bytes", path, got, size);
    }
    data[size] = '\0';
    *out = data;
    *out_len = size;
    return RF_OK;
}

char *rfi_hf_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t n = a;
    if (n > 0 && p[n - 1] != '/')
        p[n++] = '/';
    memcpy(p + n, name, b + 1);
    return p;
}

char *rfi_hf_path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, path, n);
    p[n] = '\0';
    return p;
}
