/* Evaluation of the Jinja subset of chat templates with Python's semantics, as jinja2 runs
 * them inside transformers' sandboxed environment: Python truthiness, equality, str() and repr()
 * of values, integer floor division, short-circuit and/or returning an operand; a missing
 * variable, attribute or item is "undefined" (empty text, false, an empty loop) and an error as
 * soon as it is used in arithmetic, compared by order or has an attribute taken (jinja2's
 * Undefined). Scopes as jinja2's: each loop iteration has its own, {% set %} elsewhere writes the
 * enclosing one. Filters, tests, methods and functions: docs/tokenizer.md.
 * Not for: parsing (jinja_parse.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "jinja.h"

/* Bounds on hostile templates: evaluation steps, output bytes, items of range(). */
#define MAX_STEPS  50000000u
#define MAX_OUTPUT ((size_t)64 << 20)
#define MAX_RANGE  1000000
#define MAX_DEPTH  200

typedef struct frame {
    struct frame *parent;
    jinja_var *vars;
    size_t n, cap;
} frame;

typedef struct evaluator {
    jinja_arena *arena;
    const jinja_template *t;
    tok_buf *out;
    rf_error *err;
    rf_status status;
    frame *scope;
    uint64_t steps;
    int depth;
    int loop_control; /* 1 after {% break %}, 2 after {% continue %} */
} evaluator;

static const jinja_value UNDEFINED = {.type = JV_UNDEFINED};

static bool fail(evaluator *e, rf_status status, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail(evaluator *e, rf_status status, size_t offset, const char *fmt, ...)
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

static bool oom(evaluator *e)
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

static bool values_equal(jinja_value a, jinja_value b);

bool jinja_dict_set(jinja_arena *a, jinja_dict *d, jinja_value key, jinja_value v)
{
    for (size_t i = 0; i < d->n; i++)
        if (values_equal(d->keys[i], key)) {
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

static const jinja_value *dict_get(const jinja_dict *d, jinja_value key)
{
    for (size_t i = 0; i < d->n; i++)
        if (values_equal(d->keys[i], key))
            return &d->values[i];
    return NULL;
}

static const jinja_value *dict_get_str(const jinja_dict *d, const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->keys[i].type == JV_STRING && d->keys[i].as.str.len == len &&
            memcmp(d->keys[i].as.str.s, key, len) == 0)
            return &d->values[i];
    return NULL;
}

static const char *type_name(jinja_type t)
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

static bool is_number(jinja_value v)
{
    return v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL;
}

static double as_double(jinja_value v)
{
    if (v.type == JV_FLOAT)
        return v.as.f;
    if (v.type == JV_INT)
        return (double)v.as.i;
    return v.type == JV_BOOL && v.as.b ? 1.0 : 0.0;
}

/* The value of an int or bool (0 for anything else: callers check the type first). */
static int64_t as_int(jinja_value v)
{
    if (v.type == JV_INT)
        return v.as.i;
    return v.type == JV_BOOL && v.as.b ? 1 : 0;
}

static bool truthy(jinja_value v)
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

static bool values_equal(jinja_value a, jinja_value b)
{
    if (is_number(a) && is_number(b)) {
        if (a.type != JV_FLOAT && b.type != JV_FLOAT)
            return as_int(a) == as_int(b);
        return as_double(a) == as_double(b);
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
            if (!values_equal(a.as.list->items[i], b.as.list->items[i]))
                return false;
        return true;
    case JV_DICT:
        if (a.as.dict->n != b.as.dict->n)
            return false;
        for (size_t i = 0; i < a.as.dict->n; i++) {
            const jinja_value *v = dict_get(b.as.dict, a.as.dict->keys[i]);
            if (!v || !values_equal(a.as.dict->values[i], *v))
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

static void to_text(jinja_value v, bool repr, tok_buf *b)
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
            to_text(v.as.list->items[i], true, b);
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
            to_text(v.as.dict->keys[i], true, b);
            tok_buf_append(b, ": ", 2);
            to_text(v.as.dict->values[i], true, b);
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
static jinja_value str_value(evaluator *e, jinja_value v)
{
    if (v.type == JV_STRING)
        return v;
    tok_buf b = {0};
    to_text(v, false, &b);
    jinja_value s = jinja_string(e->arena, b.data ? b.data : "", b.len);
    bool failed = b.failed || s.type != JV_STRING;
    tok_buf_free(&b);
    if (failed)
        oom(e);
    return s;
}

/* ---- strings ------------------------------------------------------------------------------ */

/* The code points of a valid UTF-8 string (strings come from the template and the messages,
 * which chat.c checked). */
static size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((uint8_t)s[i] & 0xC0) != 0x80;
    return n;
}

/* Byte offset of code point index k (k <= count). */
static size_t utf8_offset(const char *s, size_t len, size_t k)
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
static uint32_t cp_at(const char *s, size_t len, size_t i, size_t *cl)
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
        if (cp_at(s, chars->as.str.len, i, &cl) == c)
            return true;
    return false;
}

/* str.strip / lstrip / rstrip with Python's whitespace or the given characters. */
static jinja_value strip(evaluator *e, jinja_value v, bool left, bool right,
                         const jinja_value *chars)
{
    const char *s = v.as.str.s;
    size_t len = v.as.str.len, start = 0, end = len;
    while (left && start < end) {
        size_t cl;
        if (!in_chars(cp_at(s, len, start, &cl), chars))
            break;
        start += cl;
    }
    while (right && end > start) {
        size_t k = end - 1;
        while (k > start && ((uint8_t)s[k] & 0xC0) == 0x80)
            k--;
        size_t cl;
        if (!in_chars(cp_at(s, len, k, &cl), chars))
            break;
        end = k;
    }
    (void)e;
    return (jinja_value){.type = JV_STRING, .as.str = {s + start, end - start}};
}

static jinja_value case_map(evaluator *e, jinja_value v, int mode /* 0 lower 1 upper 2 cap */)
{
    tok_buf b = {0};
    const char *s = v.as.str.s;
    size_t len = v.as.str.len, index = 0;
    for (size_t i = 0, cl; i < len; i += cl, index++) {
        uint32_t c = cp_at(s, len, i, &cl);
        bool up = mode == 1 || (mode == 2 && index == 0);
        c = (uint32_t)(up ? utf8proc_toupper((utf8proc_int32_t)c)
                          : utf8proc_tolower((utf8proc_int32_t)c));
        char enc[4];
        tok_buf_append(&b, enc, tok_utf8_encode(c, enc));
    }
    jinja_value r = jinja_string(e->arena, b.data ? b.data : "", b.len);
    if (b.failed || r.type != JV_STRING)
        oom(e);
    tok_buf_free(&b);
    return r;
}

static jinja_value concat_strings(evaluator *e, jinja_value a, jinja_value b)
{
    size_t len = a.as.str.len + b.as.str.len;
    char *p = jinja_alloc(e->arena, len + 1);
    if (!p) {
        oom(e);
        return UNDEFINED;
    }
    memcpy(p, a.as.str.s, a.as.str.len);
    memcpy(p + a.as.str.len, b.as.str.s, b.as.str.len);
    return (jinja_value){.type = JV_STRING, .as.str = {p, len}};
}

static jinja_value replace(evaluator *e, jinja_value s, jinja_value old, jinja_value new,
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
            cp_at(s.as.str.s, s.as.str.len, i, &cl);
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
        oom(e);
    tok_buf_free(&b);
    return r;
}

/* str.split(sep=None, maxsplit=-1). */
static jinja_value split(evaluator *e, jinja_value s, const jinja_value *sep, int64_t maxsplit)
{
    jinja_value list = jinja_new_list(e->arena);
    if (list.type != JV_LIST)
        return oom(e), UNDEFINED;
    const char *p = s.as.str.s;
    size_t len = s.as.str.len, i = 0;
    int64_t splits = 0;
    if (!sep) {
        for (;;) {
            size_t cl;
            while (i < len && py_space(cp_at(p, len, i, &cl)))
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
                    if (!py_space(cp_at(p, len, k, &cl)))
                        break;
                    end = k;
                }
                if (!jinja_list_push(
                        e->arena, list.as.list,
                        (jinja_value){.type = JV_STRING, .as.str = {p + start, end - start}}))
                    return oom(e), UNDEFINED;
                break;
            }
            while (i < len && !py_space(cp_at(p, len, i, &cl)))
                i += cl;
            if (!jinja_list_push(
                    e->arena, list.as.list,
                    (jinja_value){.type = JV_STRING, .as.str = {p + start, i - start}}))
                return oom(e), UNDEFINED;
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
            return oom(e), UNDEFINED;
        if (!hit)
            break;
        i = end + slen;
        splits++;
    }
    return list;
}

/* ---- JSON (transformers' tojson: json.dumps with ensure_ascii=False) ---------------------- */

static bool to_json(evaluator *e, jinja_value v, int indent, int level, tok_buf *b, size_t offset)
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
                    if (!is_number(key) && key.type != JV_NONE)
                        return fail(e, RF_ERR_FORMAT, offset, "tojson: a dict key of type %s",
                                    type_name(key.type));
                    tok_buf k = {0};
                    if (key.type == JV_NONE)
                        tok_buf_append(&k, "null", 4);
                    else if (key.type == JV_BOOL)
                        tok_buf_append(&k, key.as.b ? "true" : "false", key.as.b ? 4 : 5);
                    else
                        to_text(key, false, &k);
                    key = jinja_string(e->arena, k.data ? k.data : "", k.len);
                    tok_buf_free(&k);
                    if (key.type != JV_STRING)
                        return oom(e);
                }
                to_json(e, key, indent, level + 1, b, offset);
                tok_buf_append(b, ": ", 2);
                if (!to_json(e, v.as.dict->values[i], indent, level + 1, b, offset))
                    return false;
            } else if (!to_json(e, v.as.list->items[i], indent, level + 1, b, offset))
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
    return fail(e, RF_ERR_FORMAT, offset, "tojson: a value of type %s is not JSON",
                type_name(v.type));
}

/* ---- attributes and items ----------------------------------------------------------------- */

static const char *const STRING_METHODS[] = {
    "strip", "lstrip",  "rstrip",     "split", "startswith", "endswith", "upper",
    "lower", "replace", "capitalize", "find",  "join",       NULL};
static const char *const DICT_METHODS[] = {"items", "keys", "values", "get", NULL};
/* Python methods outside the subset: taking one is fine, calling it is "unsupported". */
static const char *const OTHER_STRING_METHODS[] = {
    "casefold",     "center",       "count",   "encode",    "expandtabs",  "format",
    "format_map",   "index",        "isalnum", "isalpha",   "isascii",     "isdecimal",
    "isdigit",      "isidentifier", "islower", "isnumeric", "isprintable", "isspace",
    "istitle",      "isupper",      "ljust",   "maketrans", "partition",   "removeprefix",
    "removesuffix", "rfind",        "rindex",  "rjust",     "rpartition",  "rsplit",
    "splitlines",   "swapcase",     "title",   "translate", "zfill",       NULL};
static const char *const OTHER_DICT_METHODS[] = {"clear",   "copy",       "fromkeys", "pop",
                                                 "popitem", "setdefault", "update",   NULL};
static const char *const LIST_METHODS[] = {"append", "extend",  "insert", "pop",
                                           "remove", "reverse", "sort",   "index",
                                           "count",  "copy",    "clear",  NULL};

static bool in_names(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i]; i++)
        if (!strcmp(list[i], name))
            return true;
    return false;
}

static jinja_value method(evaluator *e, jinja_value self, const char *name)
{
    jinja_value *copy = jinja_alloc(e->arena, sizeof *copy);
    if (!copy)
        return oom(e), UNDEFINED;
    *copy = self;
    return (jinja_value){.type = JV_METHOD, .as.method = {name, copy}};
}

/* obj.name: an attribute first (methods), then an item (jinja2's Environment.getattr). */
static jinja_value get_attr(evaluator *e, jinja_value obj, const char *name, size_t offset,
                            const char *what)
{
    switch (obj.type) {
    case JV_UNDEFINED:
        fail(e, RF_ERR_FORMAT, offset, "'%s' is undefined (taking its attribute '%s')",
             obj.as.undefined ? obj.as.undefined : what, name);
        return UNDEFINED;
    case JV_STRING:
        if (in_names(STRING_METHODS, name) || in_names(OTHER_STRING_METHODS, name))
            return method(e, obj, name);
        break;
    case JV_LIST:
        if (in_names(LIST_METHODS, name))
            return method(e, obj, name);
        break;
    case JV_DICT: {
        if (!obj.as.dict->is_namespace &&
            (in_names(DICT_METHODS, name) || in_names(OTHER_DICT_METHODS, name)))
            return method(e, obj, name);
        const jinja_value *v = dict_get_str(obj.as.dict, name);
        if (v)
            return *v;
        break;
    }
    case JV_NONE:
    case JV_BOOL:
    case JV_INT:
    case JV_FLOAT:
    case JV_METHOD:
    case JV_FUNC: break;
    }
    char *missing = jinja_alloc(e->arena, strlen(name) + 64);
    if (missing)
        snprintf(missing, strlen(name) + 64, "%s object's attribute '%s'", type_name(obj.type),
                 name);
    return (jinja_value){.type = JV_UNDEFINED, .as.undefined = missing};
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
        int64_t v = as_int(*bounds[k]);
        if (v < 0) {
            v += n;
            if (v < 0)
                v = step > 0 ? 0 : -1;
        } else if (v >= n)
            v = step > 0 ? n : n - 1;
        *outs[k] = v;
    }
}

static jinja_value get_slice(evaluator *e, jinja_value obj, const jinja_value *start,
                             const jinja_value *stop, const jinja_value *step_v, size_t offset)
{
    for (int k = 0; k < 3; k++) {
        const jinja_value *b = k == 0 ? start : k == 1 ? stop : step_v;
        if (b && b->type != JV_NONE && b->type != JV_INT && b->type != JV_BOOL)
            return fail(e, RF_ERR_FORMAT, offset, "a slice bound of type %s", type_name(b->type)),
                   UNDEFINED;
    }
    int64_t step = step_v && step_v->type != JV_NONE ? as_int(*step_v) : 1;
    if (step == 0)
        return fail(e, RF_ERR_FORMAT, offset, "a slice step of zero"), UNDEFINED;
    if (obj.type == JV_LIST) {
        int64_t lo, hi, n = (int64_t)obj.as.list->n;
        slice_indices(n, start, stop, step, &lo, &hi);
        jinja_value r = jinja_new_list(e->arena);
        if (r.type != JV_LIST)
            return oom(e), UNDEFINED;
        r.as.list->is_tuple = obj.as.list->is_tuple;
        for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step)
            if (!jinja_list_push(e->arena, r.as.list, obj.as.list->items[i]))
                return oom(e), UNDEFINED;
        return r;
    }
    if (obj.type == JV_STRING) {
        const char *s = obj.as.str.s;
        size_t len = obj.as.str.len;
        int64_t lo, hi, n = (int64_t)utf8_count(s, len);
        slice_indices(n, start, stop, step, &lo, &hi);
        tok_buf b = {0};
        for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) {
            size_t at = utf8_offset(s, len, (size_t)i), cl;
            cp_at(s, len, at, &cl);
            tok_buf_append(&b, s + at, cl);
        }
        jinja_value r = jinja_string(e->arena, b.data ? b.data : "", b.len);
        bool failed = b.failed || r.type != JV_STRING;
        tok_buf_free(&b);
        return failed ? (oom(e), UNDEFINED) : r;
    }
    if (obj.type == JV_UNDEFINED)
        return fail(e, RF_ERR_FORMAT, offset, "'%s' is undefined (slicing it)",
                    obj.as.undefined ? obj.as.undefined : "value"),
               UNDEFINED;
    return UNDEFINED;
}

/* obj[key]: an item first, then an attribute for string keys (jinja2's Environment.getitem). */
static jinja_value get_item(evaluator *e, jinja_value obj, jinja_value key, size_t offset)
{
    switch (obj.type) {
    case JV_UNDEFINED:
        fail(e, RF_ERR_FORMAT, offset, "'%s' is undefined (taking an item of it)",
             obj.as.undefined ? obj.as.undefined : "value");
        return UNDEFINED;
    case JV_LIST:
    case JV_STRING:
        if (key.type == JV_INT || key.type == JV_BOOL) {
            int64_t i = as_int(key);
            int64_t n = obj.type == JV_LIST ? (int64_t)obj.as.list->n
                                            : (int64_t)utf8_count(obj.as.str.s, obj.as.str.len);
            if (i < 0)
                i += n;
            if (i < 0 || i >= n) {
                char *missing = jinja_alloc(e->arena, 64);
                if (missing)
                    snprintf(missing, 64, "%s object's element %lld", type_name(obj.type),
                             (long long)as_int(key));
                return (jinja_value){.type = JV_UNDEFINED, .as.undefined = missing};
            }
            if (obj.type == JV_LIST)
                return obj.as.list->items[i];
            size_t at = utf8_offset(obj.as.str.s, obj.as.str.len, (size_t)i), cl;
            cp_at(obj.as.str.s, obj.as.str.len, at, &cl);
            return (jinja_value){.type = JV_STRING, .as.str = {obj.as.str.s + at, cl}};
        }
        break;
    case JV_DICT: {
        const jinja_value *v = dict_get(obj.as.dict, key);
        if (v)
            return *v;
        break;
    }
    case JV_NONE:
    case JV_BOOL:
    case JV_INT:
    case JV_FLOAT:
    case JV_METHOD:
    case JV_FUNC: break;
    }
    if (key.type == JV_STRING) {
        char *name = jinja_strndup(e->arena, key.as.str.s, key.as.str.len);
        if (!name)
            return oom(e), UNDEFINED;
        return get_attr(e, obj, name, offset, "value");
    }
    return UNDEFINED;
}

/* ---- operators ---------------------------------------------------------------------------- */

static const char *op_name(int op)
{
    static const char *const NAMES[] = {"+",  "-",  "*",  "/", "//", "%", "**", "~",  "and",
                                        "or", "==", "!=", "<", "<=", ">", ">=", "in", "not in"};
    return op >= 0 && op <= JOP_NOT_IN ? NAMES[op] : "?";
}

static jinja_value undefined_error(evaluator *e, jinja_value a, jinja_value b, int op,
                                   size_t offset)
{
    jinja_value u = a.type == JV_UNDEFINED ? a : b;
    fail(e, RF_ERR_FORMAT, offset, "'%s' is undefined (used with '%s')",
         u.as.undefined ? u.as.undefined : "value", op_name(op));
    return UNDEFINED;
}

static jinja_value type_error(evaluator *e, jinja_value a, jinja_value b, int op, size_t offset)
{
    fail(e, RF_ERR_FORMAT, offset, "'%s' between %s and %s", op_name(op), type_name(a.type),
         type_name(b.type));
    return UNDEFINED;
}

static jinja_value arith(evaluator *e, int op, jinja_value a, jinja_value b, size_t offset)
{
    if (a.type == JV_UNDEFINED || b.type == JV_UNDEFINED)
        return undefined_error(e, a, b, op, offset);
    if (op == JOP_ADD && a.type == JV_STRING && b.type == JV_STRING)
        return concat_strings(e, a, b);
    if (op == JOP_ADD && a.type == JV_LIST && b.type == JV_LIST &&
        a.as.list->is_tuple == b.as.list->is_tuple) {
        jinja_value r = jinja_new_list(e->arena);
        if (r.type != JV_LIST)
            return oom(e), UNDEFINED;
        r.as.list->is_tuple = a.as.list->is_tuple;
        for (int k = 0; k < 2; k++) {
            const jinja_list *l = k ? b.as.list : a.as.list;
            for (size_t i = 0; i < l->n; i++)
                if (!jinja_list_push(e->arena, r.as.list, l->items[i]))
                    return oom(e), UNDEFINED;
        }
        return r;
    }
    if (op == JOP_MUL && ((a.type == JV_STRING && (b.type == JV_INT || b.type == JV_BOOL)) ||
                          (b.type == JV_STRING && (a.type == JV_INT || a.type == JV_BOOL)))) {
        jinja_value s = a.type == JV_STRING ? a : b;
        int64_t times = as_int(a.type == JV_STRING ? b : a);
        if (times <= 0)
            return jinja_string(e->arena, "", 0);
        if (s.as.str.len && (uint64_t)times > MAX_OUTPUT / s.as.str.len)
            return fail(e, RF_ERR_LIMIT, offset, "a repeated string over %zu MiB",
                        MAX_OUTPUT >> 20),
                   UNDEFINED;
        char *p = jinja_alloc(e->arena, s.as.str.len * (size_t)times + 1);
        if (!p)
            return oom(e), UNDEFINED;
        for (int64_t i = 0; i < times; i++)
            memcpy(p + (size_t)i * s.as.str.len, s.as.str.s, s.as.str.len);
        return (jinja_value){.type = JV_STRING, .as.str = {p, s.as.str.len * (size_t)times}};
    }
    if (!is_number(a) || !is_number(b))
        return type_error(e, a, b, op, offset);
    bool ints = a.type != JV_FLOAT && b.type != JV_FLOAT;
    int64_t x = as_int(a), y = as_int(b), r;
    double fx = as_double(a), fy = as_double(b);
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
            return fail(e, RF_ERR_FORMAT, offset, "division by zero"), UNDEFINED;
        return (jinja_value){.type = JV_FLOAT, .as.f = fx / fy};
    case JOP_FLOORDIV:
    case JOP_MOD:
        if (fy == 0.0)
            return fail(e, RF_ERR_FORMAT, offset, "division by zero"), UNDEFINED;
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
            return fail(e, RF_ERR_LIMIT, offset, "an integer power beyond 64 bits"), UNDEFINED;
        }
        return (jinja_value){.type = JV_FLOAT, .as.f = pow(fx, fy)};
    default: break;
    }
    return type_error(e, a, b, op, offset);
}

static int compare_order(evaluator *e, jinja_value a, jinja_value b, int op, size_t offset,
                         bool *ok)
{
    *ok = true;
    if (a.type == JV_UNDEFINED || b.type == JV_UNDEFINED) {
        undefined_error(e, a, b, op, offset);
        *ok = false;
        return 0;
    }
    if (is_number(a) && is_number(b)) {
        if (a.type != JV_FLOAT && b.type != JV_FLOAT)
            return (as_int(a) > as_int(b)) - (as_int(a) < as_int(b));
        double x = as_double(a), y = as_double(b);
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
            if (values_equal(a.as.list->items[i], b.as.list->items[i]))
                continue;
            return compare_order(e, a.as.list->items[i], b.as.list->items[i], op, offset, ok);
        }
        return (a.as.list->n > b.as.list->n) - (a.as.list->n < b.as.list->n);
    }
    type_error(e, a, b, op, offset);
    *ok = false;
    return 0;
}

static bool contains(evaluator *e, jinja_value item, jinja_value container, size_t offset,
                     bool *result)
{
    *result = false;
    switch (container.type) {
    case JV_UNDEFINED: /* iterates as empty */ return true;
    case JV_STRING:
        if (item.type != JV_STRING)
            return fail(e, RF_ERR_FORMAT, offset,
                        "'in <string>' needs a string on the left, "
                        "not %s",
                        type_name(item.type));
        *result = item.as.str.len == 0 || memmem(container.as.str.s, container.as.str.len,
                                                 item.as.str.s, item.as.str.len) != NULL;
        return true;
    case JV_LIST:
        for (size_t i = 0; i < container.as.list->n; i++)
            if (values_equal(container.as.list->items[i], item)) {
                *result = true;
                break;
            }
        return true;
    case JV_DICT: *result = dict_get(container.as.dict, item) != NULL; return true;
    case JV_NONE:
    case JV_BOOL:
    case JV_INT:
    case JV_FLOAT:
    case JV_METHOD:
    case JV_FUNC: break;
    }
    return fail(e, RF_ERR_FORMAT, offset, "'in' on a %s", type_name(container.type));
}

/* ---- scopes ------------------------------------------------------------------------------- */

static const char *const GLOBAL_FUNCS[] = {"range",  "namespace",    "raise_exception",
                                           "dict",   "strftime_now", "lipsum",
                                           "cycler", "joiner",       NULL};

static bool scope_set(evaluator *e, frame *f, const char *name, jinja_value v)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->vars[i].name, name)) {
            f->vars[i].value = v;
            return true;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        jinja_var *vars = jinja_alloc(e->arena, cap * sizeof *vars);
        if (!vars)
            return oom(e);
        if (f->n)
            memcpy(vars, f->vars, f->n * sizeof *vars);
        f->vars = vars;
        f->cap = cap;
    }
    f->vars[f->n++] = (jinja_var){name, v};
    return true;
}

static jinja_value lookup(evaluator *e, const char *name)
{
    for (const frame *f = e->scope; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (!strcmp(f->vars[i].name, name))
                return f->vars[i].value;
    for (size_t i = 0; GLOBAL_FUNCS[i]; i++)
        if (!strcmp(GLOBAL_FUNCS[i], name))
            return (jinja_value){.type = JV_FUNC, .as.func = GLOBAL_FUNCS[i]};
    return (jinja_value){.type = JV_UNDEFINED, .as.undefined = name};
}

/* ---- calls, filters, tests ---------------------------------------------------------------- */

static jinja_value eval(evaluator *e, const jinja_node *n);

/* Evaluated arguments of a call, filter or test node. */
typedef struct args {
    jinja_value pos[8];
    size_t n_pos;
    const char *kw_names[16];
    jinja_value kw[16];
    size_t n_kw;
} args;

static bool eval_args(evaluator *e, const jinja_node *n, args *a)
{
    memset(a, 0, sizeof *a);
    if (n->n_args > 8 || n->args.n - n->n_args > 16)
        return fail(e, RF_ERR_UNSUPPORTED, n->offset, "more than 8 arguments");
    for (size_t i = 0; i < n->args.n; i++) {
        jinja_value v = eval(e, n->args.items[i]);
        if (e->status != RF_OK)
            return false;
        if (i < n->n_args)
            a->pos[a->n_pos++] = v;
        else {
            a->kw_names[a->n_kw] = n->kwarg_names[i - n->n_args];
            a->kw[a->n_kw++] = v;
        }
    }
    return true;
}

/* Argument k: positional k, or the keyword name; NULL when absent. */
static const jinja_value *arg(const args *a, size_t k, const char *name)
{
    if (k < a->n_pos)
        return &a->pos[k];
    for (size_t i = 0; i < a->n_kw; i++)
        if (name && !strcmp(a->kw_names[i], name))
            return &a->kw[i];
    return NULL;
}

static bool want_string(evaluator *e, const jinja_value *v, const char *what, size_t offset)
{
    if (v && v->type == JV_STRING)
        return true;
    return fail(e, RF_ERR_FORMAT, offset, "%s needs a string, not %s", what,
                v ? type_name(v->type) : "nothing");
}

static jinja_value call_method(evaluator *e, jinja_value m, const args *a, size_t offset)
{
    const char *name = m.as.method.name;
    jinja_value self = *m.as.method.self;
    if (self.type == JV_LIST || in_names(OTHER_STRING_METHODS, name) ||
        in_names(OTHER_DICT_METHODS, name))
        return fail(e, RF_ERR_UNSUPPORTED, offset, "unsupported method %s.%s()",
                    type_name(self.type), name),
               UNDEFINED;
    if (self.type == JV_DICT) {
        jinja_dict *d = self.as.dict;
        if (!strcmp(name, "get")) {
            const jinja_value *key = arg(a, 0, "key"), *def = arg(a, 1, "default");
            if (!key)
                return fail(e, RF_ERR_FORMAT, offset, "get() needs a key"), UNDEFINED;
            const jinja_value *v = dict_get(d, *key);
            return v ? *v : def ? *def : (jinja_value){.type = JV_NONE};
        }
        jinja_value list = jinja_new_list(e->arena);
        if (list.type != JV_LIST)
            return oom(e), UNDEFINED;
        for (size_t i = 0; i < d->n; i++) {
            jinja_value item = d->keys[i];
            if (!strcmp(name, "values"))
                item = d->values[i];
            else if (!strcmp(name, "items")) {
                item = jinja_new_list(e->arena);
                if (item.type != JV_LIST || !jinja_list_push(e->arena, item.as.list, d->keys[i]) ||
                    !jinja_list_push(e->arena, item.as.list, d->values[i]))
                    return oom(e), UNDEFINED;
                item.as.list->is_tuple = true;
            }
            if (!jinja_list_push(e->arena, list.as.list, item))
                return oom(e), UNDEFINED;
        }
        return list;
    }
    /* string methods */
    const jinja_value *a0 = arg(a, 0, NULL), *a1 = arg(a, 1, NULL);
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
        if (a0 && a0->type != JV_NONE && !want_string(e, a0, name, offset))
            return UNDEFINED;
        return strip(e, self, name[0] != 'r', name[0] != 'l',
                     a0 && a0->type != JV_NONE ? a0 : NULL);
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "capitalize")) {
        if (name[0] == 'c') { /* first character upper, the rest lower */
            jinja_value low = case_map(e, self, 0);
            if (low.type != JV_STRING || low.as.str.len == 0)
                return low;
            size_t cl;
            cp_at(low.as.str.s, low.as.str.len, 0, &cl);
            jinja_value head =
                case_map(e, (jinja_value){.type = JV_STRING, .as.str = {low.as.str.s, cl}}, 1);
            if (head.type != JV_STRING)
                return UNDEFINED;
            return concat_strings(
                e, head,
                (jinja_value){.type = JV_STRING,
                              .as.str = {low.as.str.s + cl, low.as.str.len - cl}});
        }
        return case_map(e, self, name[0] == 'u' ? 1 : 0);
    }
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        if (!a0)
            return fail(e, RF_ERR_FORMAT, offset, "%s() needs an argument", name), UNDEFINED;
        bool start = name[0] == 's', hit = false;
        size_t n_cand = a0->type == JV_LIST ? a0->as.list->n : 1;
        for (size_t i = 0; i < n_cand && !hit; i++) {
            const jinja_value *c = a0->type == JV_LIST ? &a0->as.list->items[i] : a0;
            if (!want_string(e, c, name, offset))
                return UNDEFINED;
            size_t cl = c->as.str.len;
            hit = cl <= self.as.str.len &&
                  memcmp(start ? self.as.str.s : self.as.str.s + self.as.str.len - cl, c->as.str.s,
                         cl) == 0;
        }
        return (jinja_value){.type = JV_BOOL, .as.b = hit};
    }
    if (!strcmp(name, "split")) {
        if (a0 && a0->type != JV_NONE &&
            (!want_string(e, a0, "split", offset) || a0->as.str.len == 0))
            return fail(e, RF_ERR_FORMAT, offset, "split() with an empty separator"), UNDEFINED;
        int64_t maxsplit = a1 && (a1->type == JV_INT) ? a1->as.i : -1;
        return split(e, self, a0 && a0->type != JV_NONE ? a0 : NULL, maxsplit);
    }
    if (!strcmp(name, "replace")) {
        if (!want_string(e, a0, "replace", offset) || !want_string(e, a1, "replace", offset))
            return UNDEFINED;
        const jinja_value *count = arg(a, 2, NULL);
        return replace(e, self, *a0, *a1, count && count->type == JV_INT ? count->as.i : -1);
    }
    if (!strcmp(name, "find")) {
        if (!want_string(e, a0, "find", offset))
            return UNDEFINED;
        const char *hit = a0->as.str.len == 0 ? self.as.str.s
                                              : memmem(self.as.str.s, self.as.str.len, a0->as.str.s,
                                                       a0->as.str.len);
        return (jinja_value){
            .type = JV_INT,
            .as.i = hit ? (int64_t)utf8_count(self.as.str.s, (size_t)(hit - self.as.str.s)) : -1};
    }
    if (!strcmp(name, "join")) {
        if (!a0 || a0->type != JV_LIST)
            return fail(e, RF_ERR_FORMAT, offset, "join() needs a list"), UNDEFINED;
        tok_buf b = {0};
        for (size_t i = 0; i < a0->as.list->n; i++) {
            if (a0->as.list->items[i].type != JV_STRING) {
                tok_buf_free(&b);
                return fail(e, RF_ERR_FORMAT, offset, "join() of a %s item",
                            type_name(a0->as.list->items[i].type)),
                       UNDEFINED;
            }
            if (i)
                tok_buf_append(&b, self.as.str.s, self.as.str.len);
            tok_buf_append(&b, a0->as.list->items[i].as.str.s, a0->as.list->items[i].as.str.len);
        }
        jinja_value r = jinja_string(e->arena, b.data ? b.data : "", b.len);
        bool failed = b.failed || r.type != JV_STRING;
        tok_buf_free(&b);
        return failed ? (oom(e), UNDEFINED) : r;
    }
    return fail(e, RF_ERR_UNSUPPORTED, offset, "unsupported method %s()", name), UNDEFINED;
}

static jinja_value call(evaluator *e, const jinja_node *n)
{
    jinja_value callee = eval(e, n->a);
    if (e->status != RF_OK)
        return UNDEFINED;
    args a;
    if (!eval_args(e, n, &a))
        return UNDEFINED;
    if (callee.type == JV_METHOD)
        return call_method(e, callee, &a, n->offset);
    if (callee.type != JV_FUNC) {
        if (callee.type == JV_UNDEFINED)
            return fail(e, RF_ERR_FORMAT, n->offset, "'%s' is undefined (called)",
                        callee.as.undefined ? callee.as.undefined : "value"),
                   UNDEFINED;
        return fail(e, RF_ERR_FORMAT, n->offset, "a %s is not callable", type_name(callee.type)),
               UNDEFINED;
    }
    const char *f = callee.as.func;
    if (!strcmp(f, "raise_exception")) {
        jinja_value msg = a.n_pos ? str_value(e, a.pos[0]) : jinja_string(e->arena, "", 0);
        fail(e, RF_ERR_FORMAT, n->offset, "the template raised an exception: %.*s",
             (int)(msg.type == JV_STRING && msg.as.str.len < 400 ? msg.as.str.len : 400),
             msg.type == JV_STRING ? msg.as.str.s : "");
        return UNDEFINED;
    }
    if (!strcmp(f, "namespace") || !strcmp(f, "dict")) {
        if (a.n_pos)
            return fail(e, RF_ERR_UNSUPPORTED, n->offset, "%s() with positional arguments", f),
                   UNDEFINED;
        jinja_value ns = jinja_new_dict(e->arena);
        if (ns.type != JV_DICT)
            return oom(e), UNDEFINED;
        ns.as.dict->is_namespace = f[0] == 'n';
        for (size_t i = 0; i < a.n_kw; i++) {
            jinja_value key = jinja_string(e->arena, a.kw_names[i], strlen(a.kw_names[i]));
            if (key.type != JV_STRING || !jinja_dict_set(e->arena, ns.as.dict, key, a.kw[i]))
                return oom(e), UNDEFINED;
        }
        return ns;
    }
    if (strcmp(f, "range") != 0)
        return fail(e, RF_ERR_UNSUPPORTED, n->offset, "unsupported function %s()", f), UNDEFINED;
    /* range(stop), range(start, stop[, step]) */
    int64_t v[3] = {0, 0, 1};
    if (a.n_pos < 1 || a.n_pos > 3 || a.n_kw)
        return fail(e, RF_ERR_FORMAT, n->offset, "range() takes 1 to 3 integers"), UNDEFINED;
    for (size_t i = 0; i < a.n_pos; i++) {
        if (a.pos[i].type != JV_INT && a.pos[i].type != JV_BOOL)
            return fail(e, RF_ERR_FORMAT, n->offset, "range() of a %s", type_name(a.pos[i].type)),
                   UNDEFINED;
        v[a.n_pos == 1 ? 1 : i] = as_int(a.pos[i]);
    }
    if (v[2] == 0)
        return fail(e, RF_ERR_FORMAT, n->offset, "range() with a step of zero"), UNDEFINED;
    jinja_value list = jinja_new_list(e->arena);
    if (list.type != JV_LIST)
        return oom(e), UNDEFINED;
    for (int64_t i = v[0], count = 0; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2], count++) {
        if (count >= MAX_RANGE)
            return fail(e, RF_ERR_LIMIT, n->offset, "range() of more than %d items", MAX_RANGE),
                   UNDEFINED;
        if (!jinja_list_push(e->arena, list.as.list, (jinja_value){.type = JV_INT, .as.i = i}))
            return oom(e), UNDEFINED;
        if ((v[2] > 0 && i > INT64_MAX - v[2]) || (v[2] < 0 && i < INT64_MIN - v[2]))
            break;
    }
    return list;
}

static jinja_value filter(evaluator *e, const jinja_node *n)
{
    jinja_value v = eval(e, n->a);
    if (e->status != RF_OK)
        return UNDEFINED;
    args a;
    if (!eval_args(e, n, &a))
        return UNDEFINED;
    const char *f = n->name;
    if (!strcmp(f, "length") || !strcmp(f, "count")) {
        switch (v.type) {
        case JV_UNDEFINED: return (jinja_value){.type = JV_INT, .as.i = 0};
        case JV_STRING:
            return (jinja_value){.type = JV_INT,
                                 .as.i = (int64_t)utf8_count(v.as.str.s, v.as.str.len)};
        case JV_LIST: return (jinja_value){.type = JV_INT, .as.i = (int64_t)v.as.list->n};
        case JV_DICT: return (jinja_value){.type = JV_INT, .as.i = (int64_t)v.as.dict->n};
        case JV_NONE:
        case JV_BOOL:
        case JV_INT:
        case JV_FLOAT:
        case JV_METHOD:
        case JV_FUNC: break;
        }
        return fail(e, RF_ERR_FORMAT, n->offset, "length of a %s", type_name(v.type)), UNDEFINED;
    }
    if (!strcmp(f, "trim")) {
        jinja_value s = str_value(e, v);
        const jinja_value *chars = arg(&a, 0, "chars");
        if (chars && chars->type != JV_NONE && !want_string(e, chars, "trim", n->offset))
            return UNDEFINED;
        return s.type == JV_STRING
                   ? strip(e, s, true, true, chars && chars->type != JV_NONE ? chars : NULL)
                   : UNDEFINED;
    }
    if (!strcmp(f, "tojson")) {
        const jinja_value *indent = arg(&a, 0, "indent");
        int ind = indent && (indent->type == JV_INT) ? (int)(indent->as.i < 0    ? 0
                                                             : indent->as.i > 64 ? 64
                                                                                 : indent->as.i)
                                                     : -1;
        tok_buf b = {0};
        bool ok = to_json(e, v, ind, 0, &b, n->offset);
        jinja_value r = ok ? jinja_string(e->arena, b.data ? b.data : "", b.len) : UNDEFINED;
        if (ok && (b.failed || r.type != JV_STRING))
            oom(e);
        tok_buf_free(&b);
        return r;
    }
    if (!strcmp(f, "string"))
        return str_value(e, v);
    if (!strcmp(f, "upper") || !strcmp(f, "lower") || !strcmp(f, "capitalize")) {
        jinja_value s = str_value(e, v);
        if (s.type != JV_STRING)
            return UNDEFINED;
        jinja_value m = method(e, s, f);
        args none = {0};
        return m.type == JV_METHOD ? call_method(e, m, &none, n->offset) : UNDEFINED;
    }
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        const jinja_value *def = arg(&a, 0, "default_value"), *boolean = arg(&a, 1, "boolean");
        bool use = v.type == JV_UNDEFINED || (boolean && truthy(*boolean) && !truthy(v));
        return use ? (def ? *def : jinja_string(e->arena, "", 0)) : v;
    }
    if (!strcmp(f, "join")) {
        const jinja_value *sep = arg(&a, 0, "d");
        if (v.type != JV_LIST)
            return fail(e, RF_ERR_FORMAT, n->offset, "join of a %s", type_name(v.type)), UNDEFINED;
        tok_buf b = {0};
        for (size_t i = 0; i < v.as.list->n; i++) {
            if (i && sep) {
                jinja_value s = str_value(e, *sep);
                if (s.type == JV_STRING)
                    tok_buf_append(&b, s.as.str.s, s.as.str.len);
            }
            jinja_value s = str_value(e, v.as.list->items[i]);
            if (s.type == JV_STRING)
                tok_buf_append(&b, s.as.str.s, s.as.str.len);
        }
        jinja_value r = jinja_string(e->arena, b.data ? b.data : "", b.len);
        if (b.failed || r.type != JV_STRING)
            oom(e);
        tok_buf_free(&b);
        return r;
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        if (v.type == JV_LIST)
            return v.as.list->n ? v.as.list->items[f[0] == 'f' ? 0 : v.as.list->n - 1] : UNDEFINED;
        if (v.type == JV_STRING)
            return get_item(e, v, (jinja_value){.type = JV_INT, .as.i = f[0] == 'f' ? 0 : -1},
                            n->offset);
        return fail(e, RF_ERR_FORMAT, n->offset, "%s of a %s", f, type_name(v.type)), UNDEFINED;
    }
    if (!strcmp(f, "list")) {
        if (v.type == JV_LIST) {
            jinja_value r = get_slice(e, v, NULL, NULL, NULL, n->offset);
            if (r.type == JV_LIST)
                r.as.list->is_tuple = false;
            return r;
        }
        if (v.type == JV_DICT)
            return call_method(e, method(e, v, "keys"), &a, n->offset);
        if (v.type == JV_STRING) {
            jinja_value r = jinja_new_list(e->arena);
            for (size_t i = 0, cl; r.type == JV_LIST && i < v.as.str.len; i += cl) {
                cp_at(v.as.str.s, v.as.str.len, i, &cl);
                if (!jinja_list_push(
                        e->arena, r.as.list,
                        (jinja_value){.type = JV_STRING, .as.str = {v.as.str.s + i, cl}}))
                    return oom(e), UNDEFINED;
            }
            return r;
        }
        return fail(e, RF_ERR_FORMAT, n->offset, "list of a %s", type_name(v.type)), UNDEFINED;
    }
    if (!strcmp(f, "items")) {
        if (v.type == JV_UNDEFINED)
            return jinja_new_list(e->arena);
        if (v.type != JV_DICT)
            return fail(e, RF_ERR_FORMAT, n->offset, "items of a %s", type_name(v.type)), UNDEFINED;
        return call_method(e, method(e, v, "items"), &a, n->offset);
    }
    if (!strcmp(f, "replace")) {
        jinja_value s = str_value(e, v);
        const jinja_value *old = arg(&a, 0, "old"), *new = arg(&a, 1, "new");
        const jinja_value *count = arg(&a, 2, "count");
        if (s.type != JV_STRING || !want_string(e, old, "replace", n->offset) ||
            !want_string(e, new, "replace", n->offset))
            return UNDEFINED;
        return replace(e, s, *old, *new, count && count->type == JV_INT ? count->as.i : -1);
    }
    if (!strcmp(f, "int")) {
        if (v.type == JV_INT)
            return v;
        if (v.type == JV_BOOL)
            return (jinja_value){.type = JV_INT, .as.i = v.as.b};
        if (v.type == JV_FLOAT && v.as.f > -9.2e18 && v.as.f < 9.2e18)
            return (jinja_value){.type = JV_INT, .as.i = (int64_t)v.as.f};
        if (v.type == JV_STRING) {
            char buf[64];
            size_t len = v.as.str.len < 63 ? v.as.str.len : 63;
            memcpy(buf, v.as.str.s, len);
            buf[len] = '\0';
            char *end;
            long long x = strtoll(buf, &end, 10);
            if (end != buf && *end == '\0')
                return (jinja_value){.type = JV_INT, .as.i = x};
        }
        const jinja_value *def = arg(&a, 0, "default");
        return def ? *def : (jinja_value){.type = JV_INT, .as.i = 0};
    }
    if (!strcmp(f, "abs")) {
        if (v.type == JV_INT && v.as.i != INT64_MIN)
            return (jinja_value){.type = JV_INT, .as.i = v.as.i < 0 ? -v.as.i : v.as.i};
        if (v.type == JV_FLOAT)
            return (jinja_value){.type = JV_FLOAT, .as.f = fabs(v.as.f)};
        return fail(e, RF_ERR_FORMAT, n->offset, "abs of a %s", type_name(v.type)), UNDEFINED;
    }
    if (!strcmp(f, "safe"))
        return v;
    return fail(e, RF_ERR_UNSUPPORTED, n->offset, "unsupported filter '%s'", f), UNDEFINED;
}

static jinja_value test(evaluator *e, const jinja_node *n)
{
    jinja_value v = eval(e, n->a);
    if (e->status != RF_OK)
        return UNDEFINED;
    args a;
    if (!eval_args(e, n, &a))
        return UNDEFINED;
    const char *t = n->name;
    bool r;
    if (!strcmp(t, "defined"))
        r = v.type != JV_UNDEFINED;
    else if (!strcmp(t, "undefined"))
        r = v.type == JV_UNDEFINED;
    else if (!strcmp(t, "none"))
        r = v.type == JV_NONE;
    else if (!strcmp(t, "string"))
        r = v.type == JV_STRING;
    else if (!strcmp(t, "number"))
        r = is_number(v);
    else if (!strcmp(t, "integer"))
        r = v.type == JV_INT;
    else if (!strcmp(t, "float"))
        r = v.type == JV_FLOAT;
    else if (!strcmp(t, "boolean"))
        r = v.type == JV_BOOL;
    else if (!strcmp(t, "true") || !strcmp(t, "false"))
        r = v.type == JV_BOOL && v.as.b == (t[0] == 't');
    else if (!strcmp(t, "mapping"))
        r = v.type == JV_DICT;
    else if (!strcmp(t, "sequence"))
        r = v.type == JV_LIST || v.type == JV_STRING || v.type == JV_DICT;
    else if (!strcmp(t, "iterable"))
        r = v.type == JV_LIST || v.type == JV_STRING || v.type == JV_DICT || v.type == JV_UNDEFINED;
    else if (!strcmp(t, "callable"))
        r = v.type == JV_METHOD || v.type == JV_FUNC;
    else if (!strcmp(t, "odd") || !strcmp(t, "even") || !strcmp(t, "divisibleby")) {
        if (v.type != JV_INT && v.type != JV_BOOL)
            return fail(e, RF_ERR_FORMAT, n->offset, "'%s' test of a %s", t, type_name(v.type)),
                   UNDEFINED;
        int64_t d = 2;
        if (t[0] == 'd') {
            const jinja_value *dv = arg(&a, 0, "num");
            if (!dv || (dv->type != JV_INT) || dv->as.i == 0)
                return fail(e, RF_ERR_FORMAT, n->offset, "divisibleby needs a non-zero integer"),
                       UNDEFINED;
            d = dv->as.i;
        }
        int64_t m = d == -1 ? 0 : as_int(v) % d;
        r = t[0] == 'o' ? m != 0 : m == 0;
    } else if (!strcmp(t, "eq") || !strcmp(t, "equalto") || !strcmp(t, "==") || !strcmp(t, "ne") ||
               !strcmp(t, "sameas")) {
        const jinja_value *other = arg(&a, 0, NULL);
        if (!other)
            return fail(e, RF_ERR_FORMAT, n->offset, "'%s' test needs an argument", t), UNDEFINED;
        r = values_equal(v, *other) != (t[0] == 'n');
    } else
        return fail(e, RF_ERR_UNSUPPORTED, n->offset, "unsupported test '%s'", t), UNDEFINED;
    return (jinja_value){.type = JV_BOOL, .as.b = n->op ? !r : r};
}

/* ---- expressions -------------------------------------------------------------------------- */

static jinja_value eval(evaluator *e, const jinja_node *n)
{
    if (e->status != RF_OK)
        return UNDEFINED;
    if (++e->steps > MAX_STEPS)
        return fail(e, RF_ERR_LIMIT, n->offset, "more than %u evaluation steps", MAX_STEPS),
               UNDEFINED;
    if (++e->depth > MAX_DEPTH)
        return fail(e, RF_ERR_LIMIT, n->offset, "nesting deeper than %d", MAX_DEPTH), UNDEFINED;
    jinja_value r = UNDEFINED, x, y;
    switch (n->kind) {
    case JN_LITERAL: r = n->value; break;
    case JN_NAME: r = lookup(e, n->name); break;
    case JN_ATTR:
        x = eval(e, n->a);
        if (e->status == RF_OK)
            r = get_attr(e, x, n->name, n->offset, n->a->kind == JN_NAME ? n->a->name : "value");
        break;
    case JN_ITEM:
        x = eval(e, n->a);
        y = eval(e, n->b);
        if (e->status == RF_OK)
            r = get_item(e, x, y, n->offset);
        break;
    case JN_SLICE: {
        x = eval(e, n->a);
        jinja_value lo = n->b ? eval(e, n->b) : (jinja_value){.type = JV_NONE};
        jinja_value hi = n->c ? eval(e, n->c) : (jinja_value){.type = JV_NONE};
        jinja_value step = n->args.n ? eval(e, n->args.items[0]) : (jinja_value){.type = JV_NONE};
        if (e->status == RF_OK)
            r = get_slice(e, x, &lo, &hi, &step, n->offset);
        break;
    }
    case JN_CALL: r = call(e, n); break;
    case JN_FILTER: r = filter(e, n); break;
    case JN_TEST: r = test(e, n); break;
    case JN_NOT:
        x = eval(e, n->a);
        r = (jinja_value){.type = JV_BOOL, .as.b = !truthy(x)};
        break;
    case JN_NEG:
    case JN_POS:
        x = eval(e, n->a);
        if (e->status != RF_OK)
            break;
        if (x.type == JV_UNDEFINED)
            r = undefined_error(e, x, x, n->kind == JN_NEG ? JOP_SUB : JOP_ADD, n->offset);
        else if (!is_number(x))
            fail(e, RF_ERR_FORMAT, n->offset, "unary %c of a %s", n->kind == JN_NEG ? '-' : '+',
                 type_name(x.type));
        else if (n->kind == JN_POS)
            r = x.type == JV_BOOL ? (jinja_value){.type = JV_INT, .as.i = x.as.b} : x;
        else if (x.type == JV_FLOAT)
            r = (jinja_value){.type = JV_FLOAT, .as.f = -x.as.f};
        else if (as_int(x) == INT64_MIN)
            fail(e, RF_ERR_LIMIT, n->offset, "an integer beyond 64 bits");
        else
            r = (jinja_value){.type = JV_INT, .as.i = -as_int(x)};
        break;
    case JN_BINARY:
        x = eval(e, n->a);
        if (e->status != RF_OK)
            break;
        if (n->op == JOP_AND) {
            r = truthy(x) ? eval(e, n->b) : x;
            break;
        }
        if (n->op == JOP_OR) {
            r = truthy(x) ? x : eval(e, n->b);
            break;
        }
        y = eval(e, n->b);
        if (e->status != RF_OK)
            break;
        if (n->op == JOP_CONCAT) {
            x = str_value(e, x);
            y = str_value(e, y);
            if (x.type == JV_STRING && y.type == JV_STRING)
                r = concat_strings(e, x, y);
        } else
            r = arith(e, n->op, x, y, n->offset);
        break;
    case JN_COMPARE: {
        x = eval(e, n->a);
        bool result = true;
        for (size_t i = 0; i < n->args.n && e->status == RF_OK && result; i++) {
            y = eval(e, n->args.items[i]);
            if (e->status != RF_OK)
                break;
            int op = n->ops[i];
            bool ok = true, in;
            switch (op) {
            case JOP_EQ: result = values_equal(x, y); break;
            case JOP_NE: result = !values_equal(x, y); break;
            case JOP_IN:
            case JOP_NOT_IN:
                ok = contains(e, x, y, n->offset, &in);
                result = op == JOP_IN ? in : !in;
                break;
            default: {
                int c = compare_order(e, x, y, op, n->offset, &ok);
                result = op == JOP_LT   ? c < 0
                         : op == JOP_LE ? c <= 0
                         : op == JOP_GT ? c > 0
                                        : c >= 0;
            }
            }
            if (!ok)
                break;
            x = y;
        }
        r = (jinja_value){.type = JV_BOOL, .as.b = result};
        break;
    }
    case JN_COND:
        x = eval(e, n->a);
        if (e->status == RF_OK)
            r = truthy(x) ? eval(e, n->b) : n->c ? eval(e, n->c) : UNDEFINED;
        break;
    case JN_LIST:
    case JN_TUPLE: {
        r = jinja_new_list(e->arena);
        if (r.type != JV_LIST) {
            oom(e);
            break;
        }
        r.as.list->is_tuple = n->kind == JN_TUPLE;
        for (size_t i = 0; i < n->args.n && e->status == RF_OK; i++)
            if (!jinja_list_push(e->arena, r.as.list, eval(e, n->args.items[i])))
                oom(e);
        break;
    }
    case JN_DICT:
        r = jinja_new_dict(e->arena);
        if (r.type != JV_DICT) {
            oom(e);
            break;
        }
        for (size_t i = 0; i + 1 < n->args.n && e->status == RF_OK; i += 2) {
            x = eval(e, n->args.items[i]);
            y = eval(e, n->args.items[i + 1]);
            if (e->status == RF_OK && !jinja_dict_set(e->arena, r.as.dict, x, y))
                oom(e);
        }
        break;
    case JN_TEXT:
    case JN_OUTPUT:
    case JN_IF:
    case JN_FOR:
    case JN_SET:
    case JN_BREAK:
    case JN_CONTINUE:
        fail(e, RF_ERR_FORMAT, n->offset, "a statement where an expression belongs");
        break;
    }
    e->depth--;
    return e->status == RF_OK ? r : UNDEFINED;
}

/* ---- statements --------------------------------------------------------------------------- */

static bool exec_body(evaluator *e, const jinja_nodes *body);

static void emit(evaluator *e, const char *s, size_t len, size_t offset)
{
    if (e->out->len + len > MAX_OUTPUT) {
        fail(e, RF_ERR_LIMIT, offset, "output over %zu MiB", MAX_OUTPUT >> 20);
        return;
    }
    tok_buf_append(e->out, s, len);
    if (e->out->failed)
        oom(e);
}

static bool exec_for(evaluator *e, const jinja_node *n)
{
    jinja_value seq = eval(e, n->a);
    if (e->status != RF_OK)
        return false;
    jinja_value items = seq;
    switch (seq.type) {
    case JV_UNDEFINED: items = jinja_new_list(e->arena); break;
    case JV_LIST: break;
    case JV_DICT: items = call_method(e, method(e, seq, "keys"), &(args){0}, n->offset); break;
    case JV_STRING: {
        items = jinja_new_list(e->arena);
        for (size_t i = 0, cl; items.type == JV_LIST && i < seq.as.str.len; i += cl) {
            cp_at(seq.as.str.s, seq.as.str.len, i, &cl);
            if (!jinja_list_push(
                    e->arena, items.as.list,
                    (jinja_value){.type = JV_STRING, .as.str = {seq.as.str.s + i, cl}}))
                return oom(e);
        }
        break;
    }
    case JV_NONE:
    case JV_BOOL:
    case JV_INT:
    case JV_FLOAT:
    case JV_METHOD:
    case JV_FUNC:
        return fail(e, RF_ERR_FORMAT, n->a->offset, "a %s is not iterable", type_name(seq.type));
    }
    if (items.type != JV_LIST)
        return e->status == RF_OK ? oom(e) : false;
    frame *outer = e->scope;
    /* the loop's own "if": items filtered first, so loop.length counts the kept ones */
    jinja_list *list = items.as.list;
    if (n->b) {
        jinja_value kept = jinja_new_list(e->arena);
        if (kept.type != JV_LIST)
            return oom(e);
        for (size_t i = 0; i < list->n; i++) {
            frame f = {.parent = outer};
            e->scope = &f;
            bool bind_ok = true;
            if (n->names[1]) {
                jinja_value it = list->items[i];
                bind_ok = it.type == JV_LIST && it.as.list->n == 2;
                if (bind_ok)
                    bind_ok = scope_set(e, &f, n->names[0], it.as.list->items[0]) &&
                              scope_set(e, &f, n->names[1], it.as.list->items[1]);
            } else
                bind_ok = scope_set(e, &f, n->names[0], list->items[i]);
            bool keep = bind_ok && truthy(eval(e, n->b));
            e->scope = outer;
            if (e->status != RF_OK)
                return false;
            if (!bind_ok)
                return fail(e, RF_ERR_FORMAT, n->offset,
                            "cannot unpack a loop item into two "
                            "names");
            if (keep && !jinja_list_push(e->arena, kept.as.list, list->items[i]))
                return oom(e);
        }
        list = kept.as.list;
    }
    if (list->n == 0)
        return exec_body(e, &n->else_body);
    for (size_t i = 0; i < list->n && e->status == RF_OK; i++) {
        frame f = {.parent = outer};
        jinja_value loop = jinja_new_dict(e->arena);
        if (loop.type != JV_DICT)
            return oom(e);
        int64_t len = (int64_t)list->n, idx = (int64_t)i;
        struct {
            const char *key;
            jinja_value v;
        } fields[] = {
            {"index", {.type = JV_INT, .as.i = idx + 1}},
            {"index0", {.type = JV_INT, .as.i = idx}},
            {"revindex", {.type = JV_INT, .as.i = len - idx}},
            {"revindex0", {.type = JV_INT, .as.i = len - idx - 1}},
            {"first", {.type = JV_BOOL, .as.b = idx == 0}},
            {"last", {.type = JV_BOOL, .as.b = idx == len - 1}},
            {"length", {.type = JV_INT, .as.i = len}},
            {"previtem", i > 0 ? list->items[i - 1] : UNDEFINED},
            {"nextitem", i + 1 < list->n ? list->items[i + 1] : UNDEFINED},
        };
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
            /* values are never modified, so the keys may point at static text */
            jinja_value key = {.type = JV_STRING, .as.str = {fields[k].key, strlen(fields[k].key)}};
            if (!jinja_dict_set(e->arena, loop.as.dict, key, fields[k].v))
                return oom(e);
        }
        e->scope = &f;
        bool ok = scope_set(e, &f, "loop", loop);
        jinja_value it = list->items[i];
        if (ok && n->names[1]) {
            if (it.type != JV_LIST || it.as.list->n != 2) {
                e->scope = outer;
                return fail(e, RF_ERR_FORMAT, n->offset,
                            "cannot unpack a loop item of type %s into two names",
                            type_name(it.type));
            }
            ok = scope_set(e, &f, n->names[0], it.as.list->items[0]) &&
                 scope_set(e, &f, n->names[1], it.as.list->items[1]);
        } else if (ok)
            ok = scope_set(e, &f, n->names[0], it);
        if (ok)
            exec_body(e, &n->body[0]);
        e->scope = outer;
        if (e->loop_control == 1) {
            e->loop_control = 0;
            break;
        }
        e->loop_control = 0;
    }
    return e->status == RF_OK;
}

static bool exec_node(evaluator *e, const jinja_node *n)
{
    switch (n->kind) {
    case JN_TEXT: emit(e, n->value.as.str.s, n->value.as.str.len, n->offset); break;
    case JN_OUTPUT: {
        jinja_value v = eval(e, n->a);
        if (e->status != RF_OK)
            break;
        if (v.type == JV_METHOD || v.type == JV_FUNC)
            return fail(e, RF_ERR_UNSUPPORTED, n->offset,
                        "printing a %s (did the template forget '()'?)", type_name(v.type));
        if (v.type == JV_STRING)
            emit(e, v.as.str.s, v.as.str.len, n->offset);
        else {
            tok_buf b = {0};
            to_text(v, false, &b);
            if (b.failed)
                oom(e);
            else
                emit(e, b.data, b.len, n->offset);
            tok_buf_free(&b);
        }
        break;
    }
    case JN_IF:
        for (size_t i = 0; i < n->args.n; i++) {
            jinja_value c = eval(e, n->args.items[i]);
            if (e->status != RF_OK)
                return false;
            if (truthy(c))
                return exec_body(e, &n->body[i]);
        }
        return exec_body(e, &n->else_body);
    case JN_FOR: return exec_for(e, n);
    case JN_SET: {
        jinja_value v = eval(e, n->b);
        if (e->status != RF_OK)
            break;
        if (!n->a)
            return scope_set(e, e->scope, n->name, v);
        jinja_value ns = eval(e, n->a);
        if (e->status != RF_OK)
            break;
        if (ns.type != JV_DICT || !ns.as.dict->is_namespace)
            return fail(e, RF_ERR_FORMAT, n->offset,
                        "'set %s.%s': only a namespace() takes attribute assignments", n->a->name,
                        n->name);
        jinja_value key = jinja_string(e->arena, n->name, strlen(n->name));
        if (key.type != JV_STRING || !jinja_dict_set(e->arena, ns.as.dict, key, v))
            return oom(e);
        break;
    }
    case JN_BREAK:
    case JN_CONTINUE: e->loop_control = n->kind == JN_BREAK ? 1 : 2; break;
    case JN_LITERAL:
    case JN_NAME:
    case JN_ATTR:
    case JN_ITEM:
    case JN_SLICE:
    case JN_CALL:
    case JN_FILTER:
    case JN_TEST:
    case JN_NOT:
    case JN_NEG:
    case JN_POS:
    case JN_BINARY:
    case JN_COMPARE:
    case JN_COND:
    case JN_LIST:
    case JN_TUPLE:
    case JN_DICT:
        return fail(e, RF_ERR_FORMAT, n->offset, "an expression where a statement belongs");
    }
    return e->status == RF_OK;
}

static bool exec_body(evaluator *e, const jinja_nodes *body)
{
    for (size_t i = 0; i < body->n && e->status == RF_OK; i++) {
        exec_node(e, body->items[i]);
        if (e->loop_control)
            break;
    }
    return e->status == RF_OK;
}

rf_status jinja_render(jinja_arena *a, const jinja_template *t, const jinja_var *vars,
                       size_t n_vars, tok_buf *out, rf_error *err)
{
    evaluator e = {.arena = a, .t = t, .out = out, .err = err};
    frame root = {0};
    e.scope = &root;
    for (size_t i = 0; i < n_vars; i++)
        if (!scope_set(&e, &root, vars[i].name, vars[i].value))
            return e.status;
    exec_body(&e, &t->body);
    return e.status;
}
