/* Values of the Jinja subset with Python's semantics, as jinja2 computes with them inside
 * transformers' sandboxed environment: truthiness, equality, str() and repr(), the JSON of
 * transformers' tojson, string helpers (strip, split, replace, case mapping by code point),
 * slices, arithmetic (integer floor division and modulo, overflow to float), ordering and `in`.
 * An undefined value is an error as soon as it is used in arithmetic or ordered (jinja2's
 * Undefined).
 * Not for: names, calls, filters and statements (jinja_eval.c); parsing (jinja_parse.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "jinja.h"

static const jinja_value UNDEFINED = {.type = JV_UNDEFINED};

bool jv_fail(jinja_eval *e, rf_status status, size_t offset, const char *fmt, ...)
{
    if (e->status != RF_OK)
        return false;
    char what[512], where[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    jinja_where(e->t->src, e->t->len, offset, where, sizeof where);
    e->status = rf_error_set(e->err, status, "chat template: %s at %s", what, where);
    return false;
}

bool jv_oom(jinja_eval *e)
{
    if (e->status == RF_OK)
        e->status = e->arena->over_limit
                        ? rf_error_set(e->err, RF_ERR_LIMIT,
                                       "chat template: rendering needs more than %zu MiB",
                                       JINJA_MAX_MEMORY >> 20)
                        : rf_error_set(e->err, RF_ERR_NOMEM, "chat template: out of memory");
    return false;
}

/* ---- values ------------------------------------------------------------------------------- */

jinja_value jinja_string(jinja_arena *a, const char *s, size_t len)
{
    char *p = jinja_strndup(a, s, len);
    if (!p)
        return UNDEFINED;
    return (jinja_value){.type = JV_STRING, .as.str = {p, len}};
}

jinja_value jinja_new_list(jinja_arena *a)
{
    jinja_list *l = jinja_alloc(a, sizeof *l);
    return l ? (jinja_value){.type = JV_LIST, .as.list = l} : UNDEFINED;
}

jinja_value jinja_new_dict(jinja_arena *a)
{
    jinja_dict *d = jinja_alloc(a, sizeof *d);
    return d ? (jinja_value){.type = JV_DICT, .as.dict = d} : UNDEFINED;
}

bool jinja_list_push(jinja_arena *a, jinja_list *l, jinja_value v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        jinja_value *items = jinja_alloc(a, cap * sizeof *items);
        if (!items)
            return false;
        if (l->n)
            memcpy(items, l->items, l->n * sizeof *items);
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = v;
    return true;
}

bool jv_equal(jinja_value a, jinja_value b);

bool jinja_dict_set(jinja_arena *a, jinja_dict *d, jinja_value key, jinja_value v)
{
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->keys[i], key)) {
            d->values[i] = v;
            return true;
        }
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 4;
        jinja_value *keys = jinja_alloc(a, cap * sizeof *keys);
        jinja_value *values = jinja_alloc(a, cap * sizeof *values);
        if (!keys || !values)
            return false;
        if (d->n) {
            memcpy(keys, d->keys, d->n * sizeof *keys);
            memcpy(values, d->values, d->n * sizeof *values);
        }
        d->keys = keys;
        d->values = values;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->values[d->n++] = v;
    return true;
}

const jinja_value *jv_dict_get(const jinja_dict *d, jinja_value key)
{
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->keys[i], key))
            return &d->values[i];
    return NULL;
}

const jinja_value *jv_dict_get_str(const jinja_dict *d, const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->keys[i].type == JV_STRING && d->keys[i].as.str.len == len &&
            memcmp(d->keys[i].as.str.s, key, len) == 0)
            return &d->values[i];
    return NULL;
}

const char *jv_type_name(jinja_type t)
{
    switch (t) {
    case JV_UNDEFINED: return "undefined";
    case JV_NONE: return "none";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STRING: return "str";
    case JV_LIST: return "list";
    case JV_DICT: return "dict";
    case JV_METHOD: return "method";
    case JV_FUNC: return "function";
    }
    return "?";
}

bool jv_is_number(jinja_value v)
{
    return v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL;
}

double jv_as_double(jinja_value v)
{
    if (v.type == JV_FLOAT)
        return v.as.f;
    if (v.type == JV_INT)
        return (double)v.as.i;
    return v.type == JV_BOOL && v.as.b ? 1.0 : 0.0;
}

/* The value of an int or bool (0 for anything else: callers check the type first). */
int64_t jv_as_int(jinja_value v)
{
    if (v.type == JV_INT)
        return v.as.i;
    return v.type == JV_BOOL && v.as.b ? 1 : 0;
}

bool jv_truthy(jinja_value v)
{
    switch (v.type) {
    case JV_UNDEFINED:
    case JV_NONE: return false;
    case JV_BOOL: return v.as.b;
    case JV_INT: return v.as.i != 0;
    case JV_FLOAT: return v.as.f != 0.0;
    case JV_STRING: return v.as.str.len > 0;
    case JV_LIST: return v.as.list->n > 0;
    case JV_DICT: return v.as.dict->n > 0;
    case JV_METHOD:
    case JV_FUNC: return true;
    }
    return false;
}

bool jv_equal(jinja_value a, jinja_value b)
{
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.type != JV_FLOAT && b.type != JV_FLOAT)
            return jv_as_int(a) == jv_as_int(b);
        return jv_as_double(a) == jv_as_double(b);
    }
    if (a.type != b.type)
        return false;
    switch (a.type) {
    case JV_UNDEFINED:
    case JV_NONE: return true;
    case JV_STRING:
        return a.as.str.len == b.as.str.len && memcmp(a.as.str.s, b.as.str.s, a.as.str.len) == 0;
    case JV_LIST:
        if (a.as.list->is_tuple != b.as.list->is_tuple || a.as.list->n != b.as.list->n)
            return false;
        for (size_t i = 0; i < a.as.list->n; i++)
            if (!jv_equal(a.as.list->items[i], b.as.list->items[i]))
                return false;
        return true;
    case JV_DICT:
        if (a.as.dict->n != b.as.dict->n)
            return false;
        for (size_t i = 0; i < a.as.dict->n; i++) {
            const jinja_value *v = jv_dict_get(b.as.dict, a.as.dict->keys[i]);
            if (!v || !jv_equal(a.as.dict->values[i], *v))
                return false;
        }
        return true;
    case JV_METHOD:
        return a.as.method.self == b.as.method.self && !strcmp(a.as.method.name, b.as.method.name);
    case JV_FUNC: return !strcmp(a.as.func, b.as.func);
    case JV_BOOL:
    case JV_INT:
    case JV_FLOAT: break;
    }
    return false;
}

/* Python's repr(float): the shortest digits that read back as the same double, in fixed
 * notation for decimal exponents -4..15 and in scientific notation otherwise. */
static void format_float(double f, tok_buf *b)
{
    if (isnan(f)) {
        tok_buf_append(b, "nan", 3);
        return;
    }
    if (isinf(f)) {
        tok_buf_append(b, f < 0 ? "-inf" : "inf", f < 0 ? 4 : 3);
        return;
    }
    char sci[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec, f);
        if (strtod(sci, NULL) == f)
            break;
    }
    /* sci is [-]d[.ddd]e[+-]xx */
    char *e_pos = strchr(sci, 'e');
    int exp = atoi(e_pos + 1);
    *e_pos = '\0';
    bool neg = sci[0] == '-';
    char digits[32];
    size_t nd = 0;
    for (const char *c = sci + neg; *c; c++)
        if (*c != '.')
            digits[nd++] = *c;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    char out[64];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int k = 0; k < -exp - 1; k++)
                out[o++] = '0';
            memcpy(out + o, digits, nd);
            o += nd;
        } else {
            for (int k = 0; k <= exp; k++)
                out[o++] = (size_t)k < nd ? digits[k] : '0';
            out[o++] = '.';
            if ((size_t)exp + 1 < nd) {
                memcpy(out + o, digits + exp + 1, nd - (size_t)exp - 1);
                o += nd - (size_t)exp - 1;
            } else
                out[o++] = '0';
        }
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", exp < 0 ? '-' : '+',
                              exp < 0 ? -exp : exp);
    }
    tok_buf_append(b, out, o);
}

/* Python's repr of a string: single quotes unless the text holds ' and no ". */
static void repr_string(const char *s, size_t len, tok_buf *b)
{
    bool has_single = memchr(s, '\'', len) != NULL, has_double = memchr(s, '"', len) != NULL;
    char q = has_single && !has_double ? '"' : '\'';
    tok_buf_append(b, &q, 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == (unsigned char)q || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            tok_buf_append(b, esc, 2);
        } else if (c == '\n')
            tok_buf_append(b, "\\n", 2);
        else if (c == '\r')
            tok_buf_append(b, "\\r", 2);
        else if (c == '\t')
            tok_buf_append(b, "\\t", 2);
        else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            tok_buf_append(b, esc, 4);
        } else
            tok_buf_append(b, s + i, 1);
    }
    tok_buf_append(b, &q, 1);
}

void jv_to_text(jinja_value v, bool repr, tok_buf *b)
{
    char num[32];
    switch (v.type) {
    case JV_UNDEFINED:
        if (repr)
            tok_buf_append(b, "Undefined", 9);
        return;
    case JV_NONE: tok_buf_append(b, "None", 4); return;
    case JV_BOOL: tok_buf_append(b, v.as.b ? "True" : "False", v.as.b ? 4 : 5); return;
    case JV_INT:
        tok_buf_append(b, num, (size_t)snprintf(num, sizeof num, "%lld", (long long)v.as.i));
        return;
    case JV_FLOAT: format_float(v.as.f, b); return;
    case JV_STRING:
        if (repr)
            repr_string(v.as.str.s, v.as.str.len, b);
        else
            tok_buf_append(b, v.as.str.s, v.as.str.len);
        return;
    case JV_LIST: {
        bool tuple = v.as.list->is_tuple;
        tok_buf_append(b, tuple ? "(" : "[", 1);
        for (size_t i = 0; i < v.as.list->n; i++) {
            if (i)
                tok_buf_append(b, ", ", 2);
            jv_to_text(v.as.list->items[i], true, b);
        }
        if (tuple && v.as.list->n == 1)
            tok_buf_append(b, ",", 1);
        tok_buf_append(b, tuple ? ")" : "]", 1);
        return;
    }
    case JV_DICT:
        if (v.as.dict->is_namespace) {
            tok_buf_append(b, "<Namespace ", 11);
            tok_buf_append(b, ">", 1);
            return;
        }
        tok_buf_append(b, "{", 1);
        for (size_t i = 0; i < v.as.dict->n; i++) {
            if (i)
                tok_buf_append(b, ", ", 2);
            jv_to_text(v.as.dict->keys[i], true, b);
            tok_buf_append(b, ": ", 2);
            jv_to_text(v.as.dict->values[i], true, b);
        }
        tok_buf_append(b, "}", 1);
        return;
    case JV_METHOD:
        tok_buf_append(b, "<method ", 8);
        tok_buf_append(b, v.as.method.name, strlen(v.as.method.name));
        tok_buf_append(b, ">", 1);
        return;
    case JV_FUNC:
        tok_buf_append(b, "<function ", 10);
        tok_buf_append(b, v.as.func, strlen(v.as.func));
        tok_buf_append(b, ">", 1);
        return;
    }
}

/* str(v) as a new string value. */
jinja_value jv_str(jinja_eval *e, jinja_value v)
{
    if (v.type == JV_STRING)
        return v;
    tok_buf b = {0};
    jv_to_text(v, false, &b);
    jinja_value s = jinja_string(e->arena, b.data ? b.data : "", b.len);
    bool failed = b.failed || s.type != JV_STRING;
    tok_buf_free(&b);
    if (failed)
        jv_oom(e);
    return s;
}

/* ---- strings ------------------------------------------------------------------------------ */

/* The code points of a valid UTF-8 string (strings come from the template and the messages,
 * which chat.c checked). */
size_t jv_utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((uint8_t)s[i] & 0xC0) != 0x80;
    return n;
}

/* Byte offset of code point index k (k <= count). */
size_t jv_utf8_offset(const char *s, size_t len, size_t k)
{
    size_t i = 0;
    while (i < len && k > 0) {
        i++;
        while (i < len && ((uint8_t)s[i] & 0xC0) == 0x80)
            i++;
        k--;
    }
    return i;
}

/* Python's str.isspace() for one code point. */
static bool py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* The code point at s[i] and its length. */
uint32_t jv_cp_at(const char *s, size_t len, size_t i, size_t *cl)
{
    size_t bad;
    bool incomplete;
    *cl = tok_utf8_next((const uint8_t *)s + i, len - i, &bad, &incomplete);
    if (*cl == 0) {
        *cl = 1;
        return 0xFFFD;
    }
    return tok_utf8_decode((const uint8_t *)s + i, *cl);
}

static bool in_chars(uint32_t c, const jinja_value *chars)
{
    if (!chars)
        return py_space(c);
    const char *s = chars->as.str.s;
    for (size_t i = 0, cl; i < chars->as.str.len; i += cl)
        if (jv_cp_at(s, chars->as.str.len, i, &cl) == c)
            return true;
    return false;
}

/* str.strip / lstrip / rstrip with Python's whitespace or the given characters. */
jinja_value jv_strip(jinja_eval *e, jinja_value v, bool left, bool right, const jinja_value *chars)
{
    const char *s = v.as.str.s;
    size_t len = v.as.str.len, start = 0, end = len;
    while (left && start < end) {
        size_t cl;
        if (!in_chars(jv_cp_at(s, len, start, &cl), chars))
            break;
        start += cl;
    }
    while (right && end > start) {
        size_t k = end - 1;
        while (k > start && ((uint8_t)s[k] & 0xC0) == 0x80)
            k--;
        size_t cl;
        if (!in_chars(jv_cp_at(s, len, k, &cl), chars))
            break;
        end = k;
    }
    (void)e;
    return (jinja_value){.type = JV_STRING, .as.str = {s + start, end - start}};
}

jinja_value jv_case_map(jinja_eval *e, jinja_value v, int mode /* 0 lower 1 upper 2 cap */)
{
    tok_buf b = {0};
    const char *s = v.as.str.s;
    size_t len = v.as.str.len, index = 0;
    for (size_t i = 0, cl; i < len; i += cl, index++) {
        uint32_t c = jv_cp_at(s, len, i, &cl);
        bool up = mode == 1 || (mode == 2 && index == 0);
        c = (uint32_t)(up ? utf8proc_toupper((utf8proc_int32_t)c)
                          : utf8proc_tolower((utf8proc_int32_t)c));
        char enc[4];
        tok_buf_append(&b, enc, tok_utf8_encode(c, enc));
    }
    jinja_value r = jinja_string(e->arena, b.data ? b.data : "", b.len);
    if (b.failed || r.type != JV_STRING)
        jv_oom(e);
    tok_buf_free(&b);
    return r;
}

jinja_value jv_concat(jinja_eval *e, jinja_value a, jinja_value b)
{
    size_t len = a.as.str.len + b.as.str.len;
    char *p = jinja_alloc(e->arena, len + 1);
    if (!p) {
        jv_oom(e);
        return UNDEFINED;
    }
    memcpy(p, a.as.str.s, a.as.str.len);
    memcpy(p + a.as.str.len, b.as.str.s, b.as.str.len);
    return (jinja_value){.type = JV_STRING, .as.str = {p, len}};
}

jinja_value jv_replace(jinja_eval *e, jinja_value s, jinja_value old, jinja_value new,
                       int64_t count)
{
    tok_buf b = {0};
    const char *p = s.as.str.s, *end = p + s.as.str.len;
    size_t olen = old.as.str.len;
    int64_t done = 0;
    if (olen == 0) { /* Python inserts the replacement between characters */
        for (size_t i = 0, cl; i <= s.as.str.len; i += cl) {
            if (count < 0 || done < count) {
                tok_buf_append(&b, new.as.str.s, new.as.str.len);
                done++;
            }
            if (i == s.as.str.len)
                break;
            jv_cp_at(s.as.str.s, s.as.str.len, i, &cl);
            tok_buf_append(&b, s.as.str.s + i, cl);
        }
    } else {
        while (p < end) {
            const char *hit = (count < 0 || done < count)
                                  ? memmem(p, (size_t)(end - p), old.as.str.s, olen)
                                  : NULL;
            if (!hit) {
                tok_buf_append(&b, p, (size_t)(end - p));
                break;
            }
            tok_buf_append(&b, p, (size_t)(hit - p));
            tok_buf_append(&b, new.as.str.s, new.as.str.len);
            p = hit + olen;
            done++;
        }
    }
    jinja_value r = jinja_string(e->arena, b.data ? b.data : "", b.len);
    if (b.failed || r.type != JV_STRING)
        jv_oom(e);
    tok_buf_free(&b);
    return r;
}

/* str.split(sep=None, maxsplit=-1). */
jinja_value jv_split(jinja_eval *e, jinja_value s, const jinja_value *sep, int64_t maxsplit)
{
    jinja_value list = jinja_new_list(e->arena);
    if (list.type != JV_LIST)
        return jv_oom(e), UNDEFINED;
    const char *p = s.as.str.s;
    size_t len = s.as.str.len, i = 0;
    int64_t splits = 0;
    if (!sep) {
        for (;;) {
            size_t cl;
            while (i < len && py_space(jv_cp_at(p, len, i, &cl)))
                i += cl;
            if (i >= len)
                break;
            size_t start = i;
            if (maxsplit >= 0 && splits >= maxsplit) {
                size_t end = len;
                while (end > start) {
                    size_t k = end - 1;
                    while (k > start && ((uint8_t)p[k] & 0xC0) == 0x80)
                        k--;
                    if (!py_space(jv_cp_at(p, len, k, &cl)))
                        break;
                    end = k;
                }
                if (!jinja_list_push(
                        e->arena, list.as.list,
                        (jinja_value){.type = JV_STRING, .as.str = {p + start, end - start}}))
                    return jv_oom(e), UNDEFINED;
                break;
            }
            while (i < len && !py_space(jv_cp_at(p, len, i, &cl)))
                i += cl;
            if (!jinja_list_push(
                    e->arena, list.as.list,
                    (jinja_value){.type = JV_STRING, .as.str = {p + start, i - start}}))
                return jv_oom(e), UNDEFINED;
            splits++;
        }
        return list;
    }
    size_t slen = sep->as.str.len;
    for (;;) {
        const char *hit = (maxsplit < 0 || splits < maxsplit)
                              ? memmem(p + i, len - i, sep->as.str.s, slen)
                              : NULL;
        size_t end = hit ? (size_t)(hit - p) : len;
        if (!jinja_list_push(e->arena, list.as.list,
                             (jinja_value){.type = JV_STRING, .as.str = {p + i, end - i}}))
            return jv_oom(e), UNDEFINED;
        if (!hit)
            break;
        i = end + slen;
        splits++;
    }
    return list;
}

/* ---- JSON (transformers' tojson: json.dumps with ensure_ascii=False) ---------------------- */

bool jv_to_json(jinja_eval *e, jinja_value v, int indent, int level, tok_buf *b, size_t offset)
{
    char num[32];
    switch (v.type) {
    case JV_NONE: tok_buf_append(b, "null", 4); return true;
    case JV_BOOL: tok_buf_append(b, v.as.b ? "true" : "false", v.as.b ? 4 : 5); return true;
    case JV_INT:
        tok_buf_append(b, num, (size_t)snprintf(num, sizeof num, "%lld", (long long)v.as.i));
        return true;
    case JV_FLOAT:
        if (isnan(v.as.f))
            tok_buf_append(b, "NaN", 3);
        else if (isinf(v.as.f))
            tok_buf_append(b, v.as.f < 0 ? "-Infinity" : "Infinity", v.as.f < 0 ? 9 : 8);
        else
            format_float(v.as.f, b);
        return true;
    case JV_STRING:
        tok_buf_append(b, "\"", 1);
        for (size_t i = 0; i < v.as.str.len; i++) {
            unsigned char c = (unsigned char)v.as.str.s[i];
            const char *esc = NULL;
            switch (c) {
            case '"': esc = "\\\""; break;
            case '\\': esc = "\\\\"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            default: break;
            }
            if (esc)
                tok_buf_append(b, esc, 2);
            else if (c < 0x20)
                tok_buf_append(b, num, (size_t)snprintf(num, sizeof num, "\\u%04x", c));
            else
                tok_buf_append(b, &v.as.str.s[i], 1);
        }
        tok_buf_append(b, "\"", 1);
        return true;
    case JV_LIST:
    case JV_DICT: {
        bool dict = v.type == JV_DICT;
        size_t n = dict ? v.as.dict->n : v.as.list->n;
        tok_buf_append(b, dict ? "{" : "[", 1);
        for (size_t i = 0; i < n; i++) {
            if (i)
                tok_buf_append(b, indent >= 0 ? "," : ", ", indent >= 0 ? 1 : 2);
            if (indent >= 0) {
                tok_buf_append(b, "\n", 1);
                for (int k = 0; k < indent * (level + 1); k++)
                    tok_buf_append(b, " ", 1);
            }
            if (dict) {
                jinja_value key = v.as.dict->keys[i];
                if (key.type != JV_STRING) {
                    if (!jv_is_number(key) && key.type != JV_NONE)
                        return jv_fail(e, RF_ERR_FORMAT, offset, "tojson: a dict key of type %s",
                                       jv_type_name(key.type));
                    tok_buf k = {0};
                    if (key.type == JV_NONE)
                        tok_buf_append(&k, "null", 4);
                    else if (key.type == JV_BOOL)
                        tok_buf_append(&k, key.as.b ? "true" : "false", key.as.b ? 4 : 5);
                    else
                        jv_to_text(key, false, &k);
                    key = jinja_string(e->arena, k.data ? k.data : "", k.len);
                    tok_buf_free(&k);
                    if (key.type != JV_STRING)
                        return jv_oom(e);
                }
                jv_to_json(e, key, indent, level + 1, b, offset);
                tok_buf_append(b, ": ", 2);
                if (!jv_to_json(e, v.as.dict->values[i], indent, level + 1, b, offset))
                    return false;
            } else if (!jv_to_json(e, v.as.list->items[i], indent, level + 1, b, offset))
                return false;
        }
        if (indent >= 0 && n) {
            tok_buf_append(b, "\n", 1);
            for (int k = 0; k < indent * level; k++)
                tok_buf_append(b, " ", 1);
        }
        tok_buf_append(b, dict ? "}" : "]", 1);
        return true;
    }
    case JV_UNDEFINED:
    case JV_METHOD:
    case JV_FUNC: break;
    }
    return jv_fail(e, RF_ERR_FORMAT, offset, "tojson: a value of type %s is not JSON",
                   jv_type_name(v.type));
}

/* Python slice indices for a sequence of length n (slice.indices). */
static void slice_indices(int64_t n, const jinja_value *start, const jinja_value *stop,
                          int64_t step, int64_t *lo, int64_t *hi)
{
    int64_t def_lo = step > 0 ? 0 : n - 1, def_hi = step > 0 ? n : -1;
    *lo = def_lo;
    *hi = def_hi;
    const jinja_value *bounds[2] = {start, stop};
    int64_t *outs[2] = {lo, hi};
    for (int k = 0; k < 2; k++) {
        if (!bounds[k] || bounds[k]->type == JV_NONE)
            continue;
        int64_t v = jv_as_int(*bounds[k]);
        if (v < 0) {
            v += n;
            if (v < 0)
                v = step > 0 ? 0 : -1;
        } else if (v >= n)
            v = step > 0 ? n : n - 1;
        *outs[k] = v;
    }
}

jinja_value jv_slice(jinja_eval *e, jinja_value obj, const jinja_value *start,
                     const jinja_value *stop, const jinja_value *step_v, size_t offset)
{
    for (int k = 0; k < 3; k++) {
        const jinja_value *b = k == 0 ? start : k == 1 ? stop : step_v;
        if (b && b->type != JV_NONE && b->type != JV_INT && b->type != JV_BOOL)
            return jv_fail(e, RF_ERR_FORMAT, offset, "a slice bound of type %s",
                           jv_type_name(b->type)),
                   UNDEFINED;
    }
    int64_t step = step_v && step_v->type != JV_NONE ? jv_as_int(*step_v) : 1;
    if (step == 0)
        return jv_fail(e, RF_ERR_FORMAT, offset, "a slice step of zero"), UNDEFINED;
    if (obj.type == JV_LIST) {
        int64_t lo, hi, n = (int64_t)obj.as.list->n;
        slice_indices(n, start, stop, step, &lo, &hi);
        jinja_value r = jinja_new_list(e->arena);
        if (r.type != JV_LIST)
            return jv_oom(e), UNDEFINED;
        r.as.list->is_tuple = obj.as.list->is_tuple;
        for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step)
            if (!jinja_list_push(e->arena, r.as.list, obj.as.list->items[i]))
                return jv_oom(e), UNDEFINED;
        return r;
    }
    if (obj.type == JV_STRING) {
        const char *s = obj.as.str.s;
        size_t len = obj.as.str.len;
        int64_t lo, hi, n = (int64_t)jv_utf8_count(s, len);
        slice_indices(n, start, stop, step, &lo, &hi);
        tok_buf b = {0};
        for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) {
            size_t at = jv_utf8_offset(s, len, (size_t)i), cl;
            jv_cp_at(s, len, at, &cl);
            tok_buf_append(&b, s + at, cl);
        }
        jinja_value r = jinja_string(e->arena, b.data ? b.data : "", b.len);
        bool failed = b.failed || r.type != JV_STRING;
        tok_buf_free(&b);
        return failed ? (jv_oom(e), UNDEFINED) : r;
    }
    if (obj.type == JV_UNDEFINED)
        return jv_fail(e, RF_ERR_FORMAT, offset, "'%s' is undefined (slicing it)",
                       obj.as.undefined ? obj.as.undefined : "value"),
               UNDEFINED;
    return UNDEFINED;
}

/* ---- operators ---------------------------------------------------------------------------- */

static const char *jv_op_name(int op)
{
    static const char *const NAMES[] = {"+",  "-",  "*",  "/", "//", "%", "**", "~",  "and",
                                        "or", "==", "!=", "<", "<=", ">", ">=", "in", "not in"};
    return op >= 0 && op <= JOP_NOT_IN ? NAMES[op] : "?";
}

jinja_value jv_undefined_error(jinja_eval *e, jinja_value a, jinja_value b, int op, size_t offset)
{
    jinja_value u = a.type == JV_UNDEFINED ? a : b;
    jv_fail(e, RF_ERR_FORMAT, offset, "'%s' is undefined (used with '%s')",
            u.as.undefined ? u.as.undefined : "value", jv_op_name(op));
    return UNDEFINED;
}

static jinja_value jv_type_error(jinja_eval *e, jinja_value a, jinja_value b, int op, size_t offset)
{
    jv_fail(e, RF_ERR_FORMAT, offset, "'%s' between %s and %s", jv_op_name(op),
            jv_type_name(a.type), jv_type_name(b.type));
    return UNDEFINED;
}

jinja_value jv_arith(jinja_eval *e, int op, jinja_value a, jinja_value b, size_t offset)
{
    if (a.type == JV_UNDEFINED || b.type == JV_UNDEFINED)
        return jv_undefined_error(e, a, b, op, offset);
    if (op == JOP_ADD && a.type == JV_STRING && b.type == JV_STRING)
        return jv_concat(e, a, b);
    if (op == JOP_ADD && a.type == JV_LIST && b.type == JV_LIST &&
        a.as.list->is_tuple == b.as.list->is_tuple) {
        jinja_value r = jinja_new_list(e->arena);
        if (r.type != JV_LIST)
            return jv_oom(e), UNDEFINED;
        r.as.list->is_tuple = a.as.list->is_tuple;
        for (int k = 0; k < 2; k++) {
            const jinja_list *l = k ? b.as.list : a.as.list;
            for (size_t i = 0; i < l->n; i++)
                if (!jinja_list_push(e->arena, r.as.list, l->items[i]))
                    return jv_oom(e), UNDEFINED;
        }
        return r;
    }
    if (op == JOP_MUL && ((a.type == JV_STRING && (b.type == JV_INT || b.type == JV_BOOL)) ||
                          (b.type == JV_STRING && (a.type == JV_INT || a.type == JV_BOOL)))) {
        jinja_value s = a.type == JV_STRING ? a : b;
        int64_t times = jv_as_int(a.type == JV_STRING ? b : a);
        if (times <= 0)
            return jinja_string(e->arena, "", 0);
        if (s.as.str.len && (uint64_t)times > JINJA_MAX_OUTPUT / s.as.str.len)
            return jv_fail(e, RF_ERR_LIMIT, offset, "a repeated string over %zu MiB",
                           JINJA_MAX_OUTPUT >> 20),
                   UNDEFINED;
        char *p = jinja_alloc(e->arena, s.as.str.len * (size_t)times + 1);
        if (!p)
            return jv_oom(e), UNDEFINED;
        for (int64_t i = 0; i < times; i++)
            memcpy(p + (size_t)i * s.as.str.len, s.as.str.s, s.as.str.len);
        return (jinja_value){.type = JV_STRING, .as.str = {p, s.as.str.len * (size_t)times}};
    }
    if (!jv_is_number(a) || !jv_is_number(b))
        return jv_type_error(e, a, b, op, offset);
    bool ints = a.type != JV_FLOAT && b.type != JV_FLOAT;
    int64_t x = jv_as_int(a), y = jv_as_int(b), r;
    double fx = jv_as_double(a), fy = jv_as_double(b);
    switch (op) {
    case JOP_ADD:
        if (ints && !__builtin_add_overflow(x, y, &r))
            return (jinja_value){.type = JV_INT, .as.i = r};
        return (jinja_value){.type = JV_FLOAT, .as.f = fx + fy};
    case JOP_SUB:
        if (ints && !__builtin_sub_overflow(x, y, &r))
            return (jinja_value){.type = JV_INT, .as.i = r};
        return (jinja_value){.type = JV_FLOAT, .as.f = fx - fy};
    case JOP_MUL:
        if (ints && !__builtin_mul_overflow(x, y, &r))
            return (jinja_value){.type = JV_INT, .as.i = r};
        return (jinja_value){.type = JV_FLOAT, .as.f = fx * fy};
    case JOP_DIV:
        if (fy == 0.0)
            return jv_fail(e, RF_ERR_FORMAT, offset, "division by zero"), UNDEFINED;
        return (jinja_value){.type = JV_FLOAT, .as.f = fx / fy};
    case JOP_FLOORDIV:
    case JOP_MOD:
        if (fy == 0.0)
            return jv_fail(e, RF_ERR_FORMAT, offset, "division by zero"), UNDEFINED;
        if (ints && y != 0 && !(x == INT64_MIN && y == -1)) {
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                q--;
                m += y;
            }
            return (jinja_value){.type = JV_INT, .as.i = op == JOP_FLOORDIV ? q : m};
        } else {
            double q = floor(fx / fy), m = fx - q * fy;
            return (jinja_value){.type = JV_FLOAT, .as.f = op == JOP_FLOORDIV ? q : m};
        }
    case JOP_POW:
        if (ints && y >= 0) {
            int64_t acc = 1;
            bool over = false;
            for (int64_t i = 0; i < y && !over; i++)
                over = __builtin_mul_overflow(acc, x, &acc) ||
                       (i > 64 && (x == 0 || x == 1 || x == -1));
            if (x == 0 || x == 1 || x == -1)
                return (jinja_value){.type = JV_INT,
                                     .as.i = x == -1 ? (y % 2 ? -1 : 1) : (y == 0 ? 1 : x)};
            if (!over)
                return (jinja_value){.type = JV_INT, .as.i = acc};
            return jv_fail(e, RF_ERR_LIMIT, offset, "an integer power beyond 64 bits"), UNDEFINED;
        }
        return (jinja_value){.type = JV_FLOAT, .as.f = pow(fx, fy)};
    default: break;
    }
    return jv_type_error(e, a, b, op, offset);
}

int jv_compare(jinja_eval *e, jinja_value a, jinja_value b, int op, size_t offset, bool *ok)
{
    *ok = true;
    if (a.type == JV_UNDEFINED || b.type == JV_UNDEFINED) {
        jv_undefined_error(e, a, b, op, offset);
        *ok = false;
        return 0;
    }
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.type != JV_FLOAT && b.type != JV_FLOAT)
            return (jv_as_int(a) > jv_as_int(b)) - (jv_as_int(a) < jv_as_int(b));
        double x = jv_as_double(a), y = jv_as_double(b);
        return (x > y) - (x < y);
    }
    if (a.type == JV_STRING && b.type == JV_STRING) {
        size_t n = a.as.str.len < b.as.str.len ? a.as.str.len : b.as.str.len;
        int c = memcmp(a.as.str.s, b.as.str.s, n);
        if (c)
            return c < 0 ? -1 : 1;
        return (a.as.str.len > b.as.str.len) - (a.as.str.len < b.as.str.len);
    }
    if (a.type == JV_LIST && b.type == JV_LIST && a.as.list->is_tuple == b.as.list->is_tuple) {
        for (size_t i = 0; i < a.as.list->n && i < b.as.list->n; i++) {
            if (jv_equal(a.as.list->items[i], b.as.list->items[i]))
                continue;
            return jv_compare(e, a.as.list->items[i], b.as.list->items[i], op, offset, ok);
        }
        return (a.as.list->n > b.as.list->n) - (a.as.list->n < b.as.list->n);
    }
    jv_type_error(e, a, b, op, offset);
    *ok = false;
    return 0;
}

bool jv_contains(jinja_eval *e, jinja_value item, jinja_value container, size_t offset,
                 bool *result)
{
    *result = false;
    switch (container.type) {
    case JV_UNDEFINED: /* iterates as empty */ return true;
    case JV_STRING:
        if (item.type != JV_STRING)
            return jv_fail(e, RF_ERR_FORMAT, offset,
                           "'in <string>' needs a string on the left, "
                           "not %s",
                           jv_type_name(item.type));
        *result = item.as.str.len == 0 || memmem(container.as.str.s, container.as.str.len,
                                                 item.as.str.s, item.as.str.len) != NULL;
        return true;
    case JV_LIST:
        for (size_t i = 0; i < container.as.list->n; i++)
            if (jv_equal(container.as.list->items[i], item)) {
                *result = true;
                break;
            }
        return true;
    case JV_DICT: *result = jv_dict_get(container.as.dict, item) != NULL; return true;
    case JV_NONE:
    case JV_BOOL:
    case JV_INT:
    case JV_FLOAT:
    case JV_METHOD:
    case JV_FUNC: break;
    }
    return jv_fail(e, RF_ERR_FORMAT, offset, "'in' on a %s", jv_type_name(container.type));
}
