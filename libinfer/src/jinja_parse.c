/* Lexer and parser of the Jinja subset of chat templates. Whitespace rules are those of
 * Hugging Face transformers' template environment: trim_blocks (the newline after a block tag
 * goes), lstrip_blocks (blanks before a block tag at the start of a line go), "-" on a tag strips
 * all whitespace on that side, "+" keeps it, newlines of the source read as \n and one trailing
 * newline dropped (jinja2's lexer, jinja2/lexer.py, tokeniter). Operator precedence follows
 * jinja2's parser (jinja2/parser.py): conditional < or < and < not < comparisons < + - < ~ <
 * * / // % < ** < unary - + < postfix, filters and tests.
 * Not for: evaluation (jinja_eval.c), or the arena and values it builds on (jinja_arena.c,
 * jinja_value.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

/* Deepest nesting of expressions and blocks: bounds the recursion on hostile templates. */
#define MAX_DEPTH 200

/* ---- tokens ------------------------------------------------------------------------------- */

typedef enum tok_kind {
    T_END_VAR,   /* }} */
    T_END_BLOCK, /* %} */
    T_NAME,
    T_INT,
    T_FLOAT,
    T_STRING,
    T_OP,
    T_EOF, /* the source ended inside a tag */
} tok_kind;

typedef struct token {
    tok_kind kind;
    size_t offset, len; /* the token's text in the source */
    char op[3];         /* T_OP: the operator */
    const char *str;    /* T_STRING: the unescaped value; T_NAME: the name */
    size_t str_len;
    int64_t i;
    double f;
    char strip; /* T_END_*: '-' or '+' before the end marker, or 0 */
} token;

typedef struct parser {
    jinja_arena *arena;
    const char *src;
    size_t len;
    size_t pos;      /* next byte to lex */
    int depth;       /* bracket depth inside the current tag */
    int nesting;     /* recursion depth */
    int loops;       /* enclosing for loops (break and continue need one) */
    bool line_start; /* the last tag ended at the start of a line (jinja2's line_starting) */
    token tok;       /* current token */
    rf_error *err;
    rf_status status;
} parser;

static rf_status error_at(parser *p, rf_status status, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static rf_status error_at(parser *p, rf_status status, size_t offset, const char *fmt, ...)
{
    if (p->status != RF_OK)
        return p->status;
    char what[512], where[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    jinja_where(p->src, p->len, offset, where, sizeof where);
    p->status = rf_error_set(p->err, status, "chat template: %s at %s", what, where);
    return p->status;
}

static rf_status out_of_memory(parser *p)
{
    if (p->status == RF_OK)
        p->status = p->arena->over_limit
                        ? rf_error_set(p->err, RF_ERR_LIMIT,
                                       "chat template: parsing needs more than %zu MiB",
                                       JINJA_MAX_MEMORY >> 20)
                        : rf_error_set(p->err, RF_ERR_NOMEM, "chat template: out of memory");
    return p->status;
}

/* Python's str.isspace for the ASCII range (jinja2 strips with str.rstrip and \s). */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
           (c >= 0x1c && c <= 0x1f);
}

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Unescapes a string literal body as Python's unicode-escape codec does (jinja2/lexer.py):
 * \n \t \r \\ \' \" \a \b \f \v, octal \ooo, \xhh, \uXXXX, \UXXXXXXXX; an unknown escape keeps
 * its backslash. Newlines in the body are already \n. */
static bool unescape(parser *p, const char *s, size_t n, size_t offset, token *t)
{
    char *out = jinja_alloc(p->arena, n + 1);
    if (!out)
        return out_of_memory(p), false;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 == n) {
            out[o++] = s[i];
            continue;
        }
        char c = s[++i];
        int digits = 0;
        switch (c) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'v': out[o++] = '\v'; break;
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case '\n': break; /* a backslash-newline continues the line */
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (c >= '0' && c <= '7') {
                unsigned v = 0;
                int k = 0;
                for (; k < 3 && i < n && s[i] >= '0' && s[i] <= '7'; k++, i++)
                    v = v * 8 + (unsigned)(s[i] - '0');
                i--;
                o += tok_utf8_encode(v, out + o);
            } else {
                out[o++] = '\\';
                out[o++] = c;
            }
        }
        if (digits) {
            uint32_t v = 0;
            for (int k = 0; k < digits; k++) {
                int h = i + 1 + (size_t)k < n ? hex_value(s[i + 1 + (size_t)k]) : -1;
                if (h < 0) {
                    error_at(p, RF_ERR_FORMAT, offset, "truncated \\%c escape in a string", c);
                    return false;
                }
                v = v * 16 + (uint32_t)h;
            }
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
                error_at(p, RF_ERR_UNSUPPORTED, offset,
                         "escape \\%c of code point 0x%X (a surrogate or beyond Unicode)", c,
                         (unsigned)v);
                return false;
            }
            i += (size_t)digits;
            o += tok_utf8_encode(v, out + o);
        }
    }
    t->str = out;
    t->str_len = o;
    return true;
}

static const char *const OPERATORS[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                        "/",  "%",  "~",  "<",  ">",  "=",  ".", ",", ":",
                                        "|",  "(",  ")",  "[",  "]",  "{",  "}", NULL};

/* Reads the next token of a tag into p->tok. */
static bool next_token(parser *p)
{
    if (p->status != RF_OK)
        return false;
    const char *s = p->src;
    while (p->pos < p->len && is_space(s[p->pos]))
        p->pos++;
    token *t = &p->tok;
    memset(t, 0, sizeof *t);
    t->offset = p->pos;
    if (p->pos >= p->len) {
        t->kind = T_EOF;
        return true;
    }
    size_t rest = p->len - p->pos;
    const char *c = s + p->pos;
    /* end markers, only outside brackets (jinja2's balancing stack) */
    if (p->depth == 0) {
        char sign = (c[0] == '-' || c[0] == '+') ? c[0] : 0;
        size_t k = sign ? 1 : 0;
        if (rest >= k + 2 && c[k] == '}' && c[k + 1] == '}' && sign != '+') {
            t->kind = T_END_VAR;
        } else if (rest >= k + 2 && c[k] == '%' && c[k + 1] == '}') {
            t->kind = T_END_BLOCK;
        } else
            k = SIZE_MAX;
        if (k != SIZE_MAX) {
            t->strip = sign;
            t->len = k + 2;
            p->pos += t->len;
            return true;
        }
    }
    if (is_name_start(c[0])) {
        size_t n = 1;
        while (n < rest && (is_name_start(c[n]) || is_digit(c[n])))
            n++;
        t->kind = T_NAME;
        t->len = n;
        t->str = jinja_strndup(p->arena, c, n);
        t->str_len = n;
        p->pos += n;
        return t->str ? true : (out_of_memory(p), false);
    }
    if (is_digit(c[0])) {
        size_t n = 0;
        char digits[64];
        size_t nd = 0;
        bool is_float = false;
        while (n < rest && (is_digit(c[n]) || c[n] == '_' ||
                            (c[n] == '.' && !is_float && n + 1 < rest && is_digit(c[n + 1])) ||
                            ((c[n] == 'e' || c[n] == 'E') && n + 1 < rest &&
                             (is_digit(c[n + 1]) || c[n + 1] == '-' || c[n + 1] == '+')))) {
            if (c[n] == '.' || c[n] == 'e' || c[n] == 'E')
                is_float = true;
            if ((c[n] == 'e' || c[n] == 'E') && (c[n + 1] == '-' || c[n + 1] == '+')) {
                if (nd + 2 < sizeof digits) {
                    digits[nd++] = c[n];
                    digits[nd++] = c[n + 1];
                }
                n += 2;
                continue;
            }
            if (c[n] != '_' && nd + 1 < sizeof digits)
                digits[nd++] = c[n];
            n++;
        }
        digits[nd] = '\0';
        if (nd + 1 >= sizeof digits)
            return error_at(p, RF_ERR_UNSUPPORTED, p->pos, "a number of more than 60 digits"),
                   false;
        t->len = n;
        p->pos += n;
        if (is_float) {
            t->kind = T_FLOAT;
            t->f = strtod(digits, NULL);
        } else {
            t->kind = T_INT;
            char *end;
            unsigned long long v = strtoull(digits, &end, 10);
            if (v > INT64_MAX)
                return error_at(p, RF_ERR_UNSUPPORTED, t->offset, "an integer beyond 64 bits"),
                       false;
            t->i = (int64_t)v;
        }
        return true;
    }
    if (c[0] == '\'' || c[0] == '"') {
        size_t n = 1;
        while (n < rest && c[n] != c[0]) {
            if (c[n] == '\\' && n + 1 < rest)
                n++;
            n++;
        }
        if (n >= rest)
            return error_at(p, RF_ERR_FORMAT, t->offset, "unterminated string"), false;
        t->kind = T_STRING;
        t->len = n + 1;
        p->pos += n + 1;
        return unescape(p, c + 1, n - 1, t->offset, t);
    }
    for (size_t k = 0; OPERATORS[k]; k++) {
        size_t n = strlen(OPERATORS[k]);
        if (n <= rest && memcmp(c, OPERATORS[k], n) == 0) {
            t->kind = T_OP;
            memcpy(t->op, c, n);
            t->len = n;
            p->pos += n;
            if (strchr("([{", c[0]) && n == 1)
                p->depth++;
            else if (strchr(")]}", c[0]) && n == 1 && p->depth > 0)
                p->depth--;
            return true;
        }
    }
    return error_at(p, RF_ERR_UNSUPPORTED, p->pos, "unexpected character '%c' in a tag",
                    c[0] >= 0x20 && c[0] < 0x7f ? c[0] : '?'),
           false;
}

static bool is_op(const parser *p, const char *op)
{
    return p->tok.kind == T_OP && strcmp(p->tok.op, op) == 0;
}

static bool is_name(const parser *p, const char *name)
{
    return p->tok.kind == T_NAME && strcmp(p->tok.str, name) == 0;
}

static const char *token_desc(const token *t, char *buf, size_t size)
{
    switch (t->kind) {
    case T_END_VAR: return "'}}'";
    case T_END_BLOCK: return "'%}'";
    case T_NAME: snprintf(buf, size, "'%.60s'", t->str); return buf;
    case T_INT:
    case T_FLOAT: return "a number";
    case T_STRING: return "a string";
    case T_OP: snprintf(buf, size, "'%s'", t->op); return buf;
    case T_EOF: return "the end of the template";
    }
    return "?";
}

static bool expect_op(parser *p, const char *op)
{
    if (!is_op(p, op)) {
        char buf[80];
        error_at(p, RF_ERR_FORMAT, p->tok.offset, "expected '%s', found %s", op,
                 token_desc(&p->tok, buf, sizeof buf));
        return false;
    }
    return next_token(p);
}

/* ---- nodes -------------------------------------------------------------------------------- */

static jinja_node *new_node(parser *p, jinja_kind kind, size_t offset)
{
    jinja_node *n = jinja_alloc(p->arena, sizeof *n);
    if (!n) {
        out_of_memory(p);
        return NULL;
    }
    n->kind = kind;
    n->offset = offset;
    return n;
}

static bool push_node(parser *p, jinja_nodes *list, jinja_node *n)
{
    if (!n)
        return false;
    if (list->n == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 4;
        jinja_node **items = jinja_alloc(p->arena, cap * sizeof *items);
        if (!items)
            return out_of_memory(p), false;
        if (list->n)
            memcpy(items, list->items, list->n * sizeof *items);
        list->items = items;
        list->cap = cap;
    }
    list->items[list->n++] = n;
    return true;
}

/* ---- expressions -------------------------------------------------------------------------- */

static jinja_node *parse_expr(parser *p);
static jinja_node *parse_or(parser *p);
static jinja_node *parse_unary(parser *p, bool with_filter);
static jinja_node *parse_math1(parser *p);

static bool enter(parser *p)
{
    if (++p->nesting > MAX_DEPTH) {
        error_at(p, RF_ERR_LIMIT, p->tok.offset, "expressions nested more than %d deep", MAX_DEPTH);
        return false;
    }
    return true;
}

/* Arguments of a call or filter after '(': positional, then name=value keywords. */
static bool parse_args(parser *p, jinja_node *n)
{
    if (!expect_op(p, "("))
        return false;
    size_t n_kw = 0;
    const char *kw[16];
    while (!is_op(p, ")") && p->status == RF_OK) {
        if (n->args.n > 0 && !expect_op(p, ","))
            return false;
        if (is_op(p, ")"))
            break;
        if (p->tok.kind == T_NAME) {
            /* name=value: look one token ahead without consuming */
            size_t save_pos = p->pos;
            int save_depth = p->depth;
            token save = p->tok;
            if (!next_token(p))
                return false;
            if (is_op(p, "=")) {
                if (n_kw == sizeof kw / sizeof kw[0])
                    return error_at(p, RF_ERR_UNSUPPORTED, save.offset,
                                    "more than 16 keyword arguments"),
                           false;
                kw[n_kw++] = save.str;
                if (!next_token(p) || !push_node(p, &n->args, parse_expr(p)))
                    return false;
                continue;
            }
            p->pos = save_pos;
            p->depth = save_depth;
            p->tok = save;
        }
        if (n_kw)
            return error_at(p, RF_ERR_FORMAT, p->tok.offset,
                            "a positional argument after keyword arguments"),
                   false;
        if (!push_node(p, &n->args, parse_expr(p)))
            return false;
        n->n_args++;
    }
    if (n_kw) {
        n->kwarg_names = jinja_alloc(p->arena, n_kw * sizeof *n->kwarg_names);
        if (!n->kwarg_names)
            return out_of_memory(p), false;
        memcpy(n->kwarg_names, kw, n_kw * sizeof *kw);
    }
    return expect_op(p, ")");
}

/* [a], [a:b], [a:b:c] after '['. */
static jinja_node *parse_subscript(parser *p, jinja_node *obj)
{
    size_t offset = p->tok.offset;
    if (!next_token(p))
        return NULL;
    jinja_node *parts[3] = {NULL, NULL, NULL};
    int n_colons = 0;
    for (;;) {
        if (is_op(p, ":")) {
            if (++n_colons > 2)
                return error_at(p, RF_ERR_FORMAT, p->tok.offset, "too many ':' in a slice"), NULL;
            if (!next_token(p))
                return NULL;
            continue;
        }
        if (is_op(p, "]"))
            break;
        if (parts[n_colons])
            return error_at(p, RF_ERR_UNSUPPORTED, p->tok.offset,
                            "a tuple as a subscript (expected ']' or ':')"),
                   NULL;
        if (!(parts[n_colons] = parse_expr(p)))
            return NULL;
    }
    if (!next_token(p))
        return NULL;
    jinja_node *n = new_node(p, n_colons ? JN_SLICE : JN_ITEM, offset);
    if (!n)
        return NULL;
    n->a = obj;
    n->b = parts[0];
    n->c = parts[1];
    if (n_colons == 2 && parts[2]) {
        /* the step goes in args */
        if (!push_node(p, &n->args, parts[2]))
            return NULL;
    }
    if (!n_colons && !parts[0])
        return error_at(p, RF_ERR_FORMAT, offset, "an empty subscript"), NULL;
    return n;
}

static jinja_node *parse_postfix(parser *p, jinja_node *n)
{
    while (n && p->status == RF_OK) {
        if (is_op(p, ".")) {
            size_t offset = p->tok.offset;
            if (!next_token(p))
                return NULL;
            jinja_node *m;
            if (p->tok.kind == T_NAME) {
                m = new_node(p, JN_ATTR, offset);
                if (m)
                    m->name = p->tok.str;
            } else if (p->tok.kind == T_INT) { /* a.0 is a[0] */
                m = new_node(p, JN_ITEM, offset);
                jinja_node *idx = new_node(p, JN_LITERAL, p->tok.offset);
                if (!m || !idx)
                    return NULL;
                idx->value = (jinja_value){.type = JV_INT, .as.i = p->tok.i};
                m->b = idx;
            } else {
                char buf[80];
                return error_at(p, RF_ERR_FORMAT, p->tok.offset,
                                "expected a name after '.', found %s",
                                token_desc(&p->tok, buf, sizeof buf)),
                       NULL;
            }
            if (!m || !next_token(p))
                return NULL;
            m->a = n;
            n = m;
        } else if (is_op(p, "[")) {
            n = parse_subscript(p, n);
        } else if (is_op(p, "(")) {
            jinja_node *call = new_node(p, JN_CALL, p->tok.offset);
            if (!call)
                return NULL;
            call->a = n;
            if (!parse_args(p, call))
                return NULL;
            n = call;
        } else
            break;
    }
    return n;
}

static jinja_node *parse_filter_or_test(parser *p, jinja_node *n)
{
    while (n && p->status == RF_OK) {
        if (is_op(p, "|")) {
            size_t offset = p->tok.offset;
            if (!next_token(p))
                return NULL;
            if (p->tok.kind != T_NAME)
                return error_at(p, RF_ERR_FORMAT, p->tok.offset, "expected a filter name"), NULL;
            jinja_node *f = new_node(p, JN_FILTER, offset);
            if (!f)
                return NULL;
            f->a = n;
            f->name = p->tok.str;
            if (!next_token(p))
                return NULL;
            if (is_op(p, ".")) /* dotted filter names (filters from extensions) */
                return error_at(p, RF_ERR_UNSUPPORTED, p->tok.offset, "a dotted filter name"), NULL;
            if (is_op(p, "(") && !parse_args(p, f))
                return NULL;
            n = f;
        } else if (is_name(p, "is")) {
            size_t offset = p->tok.offset;
            if (!next_token(p))
                return NULL;
            jinja_node *t = new_node(p, JN_TEST, offset);
            if (!t)
                return NULL;
            t->a = n;
            if (is_name(p, "not")) {
                t->op = 1;
                if (!next_token(p))
                    return NULL;
            }
            if (p->tok.kind != T_NAME)
                return error_at(p, RF_ERR_FORMAT, p->tok.offset, "expected a test name"), NULL;
            t->name = p->tok.str;
            if (!next_token(p))
                return NULL;
            if (is_op(p, "(")) {
                if (!parse_args(p, t))
                    return NULL;
            } else if ((p->tok.kind == T_NAME || p->tok.kind == T_STRING || p->tok.kind == T_INT ||
                        p->tok.kind == T_FLOAT || is_op(p, "[") || is_op(p, "{")) &&
                       !is_name(p, "else") && !is_name(p, "or") && !is_name(p, "and")) {
                /* a test with one argument written without parentheses: x is divisibleby 3 */
                jinja_node *arg = parse_unary(p, false);
                if (!push_node(p, &t->args, arg))
                    return NULL;
                t->n_args = 1;
            }
            n = t;
        } else if (is_op(p, "(")) {
            jinja_node *call = new_node(p, JN_CALL, p->tok.offset);
            if (!call)
                return NULL;
            call->a = n;
            if (!parse_args(p, call))
                return NULL;
            n = call;
        } else
            break;
    }
    return n;
}

/* Items of a list, tuple or dict up to the closing bracket. */
static bool parse_items(parser *p, jinja_node *n, const char *close, bool pairs)
{
    while (!is_op(p, close) && p->status == RF_OK) {
        if (n->args.n > 0) {
            if (!expect_op(p, ","))
                return false;
            if (is_op(p, close))
                break;
        }
        if (!push_node(p, &n->args, parse_expr(p)))
            return false;
        if (pairs && (!expect_op(p, ":") || !push_node(p, &n->args, parse_expr(p))))
            return false;
    }
    return expect_op(p, close);
}

static jinja_node *literal(parser *p, size_t offset, jinja_value v)
{
    jinja_node *n = new_node(p, JN_LITERAL, offset);
    if (n)
        n->value = v;
    return n;
}

static jinja_node *parse_primary(parser *p)
{
    token t = p->tok;
    size_t offset = t.offset;
    switch (t.kind) {
    case T_NAME: {
        if (!next_token(p))
            return NULL;
        if (!strcmp(t.str, "true") || !strcmp(t.str, "True"))
            return literal(p, offset, (jinja_value){.type = JV_BOOL, .as.b = true});
        if (!strcmp(t.str, "false") || !strcmp(t.str, "False"))
            return literal(p, offset, (jinja_value){.type = JV_BOOL, .as.b = false});
        if (!strcmp(t.str, "none") || !strcmp(t.str, "None"))
            return literal(p, offset, (jinja_value){.type = JV_NONE});
        jinja_node *n = new_node(p, JN_NAME, offset);
        if (n)
            n->name = t.str;
        return n;
    }
    case T_STRING: {
        /* adjacent string literals are one string */
        tok_buf b = {0};
        while (p->tok.kind == T_STRING) {
            tok_buf_append(&b, p->tok.str, p->tok.str_len);
            if (!next_token(p)) {
                tok_buf_free(&b);
                return NULL;
            }
        }
        jinja_value v = jinja_string(p->arena, b.data ? b.data : "", b.len);
        bool failed = b.failed || v.type != JV_STRING;
        tok_buf_free(&b);
        if (failed)
            return out_of_memory(p), NULL;
        return literal(p, offset, v);
    }
    case T_INT:
        if (!next_token(p))
            return NULL;
        return literal(p, offset, (jinja_value){.type = JV_INT, .as.i = t.i});
    case T_FLOAT:
        if (!next_token(p))
            return NULL;
        return literal(p, offset, (jinja_value){.type = JV_FLOAT, .as.f = t.f});
    case T_OP:
        if (is_op(p, "(")) {
            if (!next_token(p))
                return NULL;
            if (is_op(p, ")")) { /* the empty tuple */
                jinja_node *n = new_node(p, JN_TUPLE, offset);
                return n && next_token(p) ? n : NULL;
            }
            jinja_node *first = parse_expr(p);
            if (!first)
                return NULL;
            if (is_op(p, ")")) {
                if (!next_token(p))
                    return NULL;
                return first;
            }
            jinja_node *n = new_node(p, JN_TUPLE, offset);
            if (!n || !push_node(p, &n->args, first))
                return NULL;
            return parse_items(p, n, ")", false) ? n : NULL;
        }
        if (is_op(p, "[") || is_op(p, "{")) {
            bool dict = is_op(p, "{");
            jinja_node *n = new_node(p, dict ? JN_DICT : JN_LIST, offset);
            if (!n || !next_token(p))
                return NULL;
            return parse_items(p, n, dict ? "}" : "]", dict) ? n : NULL;
        }
        break;
    case T_END_VAR:
    case T_END_BLOCK:
    case T_EOF: break;
    }
    char buf[80];
    error_at(p, RF_ERR_FORMAT, offset, "expected an expression, found %s",
             token_desc(&t, buf, sizeof buf));
    return NULL;
}

static jinja_node *parse_unary(parser *p, bool with_filter)
{
    if (!enter(p))
        return NULL;
    jinja_node *n;
    size_t offset = p->tok.offset;
    if (is_op(p, "-") || is_op(p, "+")) {
        bool neg = is_op(p, "-");
        if (!next_token(p))
            return NULL;
        n = new_node(p, neg ? JN_NEG : JN_POS, offset);
        if (n && !(n->a = parse_unary(p, false)))
            return NULL;
    } else
        n = parse_primary(p);
    n = parse_postfix(p, n);
    if (with_filter)
        n = parse_filter_or_test(p, n);
    p->nesting--;
    return n;
}

static jinja_node *binary(parser *p, size_t offset, int op, jinja_node *a, jinja_node *b)
{
    if (!a || !b)
        return NULL;
    jinja_node *n = new_node(p, JN_BINARY, offset);
    if (n) {
        n->op = op;
        n->a = a;
        n->b = b;
    }
    return n;
}

static jinja_node *parse_pow(parser *p)
{
    jinja_node *n = parse_unary(p, true);
    while (n && is_op(p, "**")) {
        size_t offset = p->tok.offset;
        if (!next_token(p))
            return NULL;
        n = binary(p, offset, JOP_POW, n, parse_unary(p, true));
    }
    return n;
}

static jinja_node *parse_math2(parser *p)
{
    jinja_node *n = parse_pow(p);
    while (n) {
        int op;
        if (is_op(p, "*"))
            op = JOP_MUL;
        else if (is_op(p, "/"))
            op = JOP_DIV;
        else if (is_op(p, "//"))
            op = JOP_FLOORDIV;
        else if (is_op(p, "%"))
            op = JOP_MOD;
        else
            break;
        size_t offset = p->tok.offset;
        if (!next_token(p))
            return NULL;
        n = binary(p, offset, op, n, parse_pow(p));
    }
    return n;
}

static jinja_node *parse_concat(parser *p)
{
    jinja_node *n = parse_math2(p);
    while (n && is_op(p, "~")) {
        size_t offset = p->tok.offset;
        if (!next_token(p))
            return NULL;
        n = binary(p, offset, JOP_CONCAT, n, parse_math2(p));
    }
    return n;
}

static jinja_node *parse_math1(parser *p)
{
    jinja_node *n = parse_concat(p);
    while (n && (is_op(p, "+") || is_op(p, "-"))) {
        int op = is_op(p, "+") ? JOP_ADD : JOP_SUB;
        size_t offset = p->tok.offset;
        if (!next_token(p))
            return NULL;
        n = binary(p, offset, op, n, parse_concat(p));
    }
    return n;
}

static jinja_node *parse_compare(parser *p)
{
    size_t offset = p->tok.offset;
    jinja_node *first = parse_math1(p);
    jinja_node *n = NULL;
    while (first && p->status == RF_OK) {
        int op;
        static const char *const OPS[] = {"==", "!=", "<", "<=", ">", ">="};
        static const int CODES[] = {JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE};
        op = -1;
        for (int k = 0; k < 6; k++)
            if (is_op(p, OPS[k]))
                op = CODES[k];
        if (op < 0 && is_name(p, "in"))
            op = JOP_IN;
        if (op < 0 && is_name(p, "not")) {
            /* "not in"; a lone "not" here ends the comparison */
            size_t save_pos = p->pos;
            int save_depth = p->depth;
            token save = p->tok;
            if (!next_token(p))
                return NULL;
            if (is_name(p, "in"))
                op = JOP_NOT_IN;
            else {
                p->pos = save_pos;
                p->depth = save_depth;
                p->tok = save;
            }
        }
        if (op < 0)
            break;
        if (!next_token(p))
            return NULL;
        if (!n) {
            n = new_node(p, JN_COMPARE, offset);
            if (!n)
                return NULL;
            n->a = first;
        }
        if (n->args.n == sizeof n->ops / sizeof n->ops[0])
            return error_at(p, RF_ERR_UNSUPPORTED, p->tok.offset,
                            "a chain of more than 8 comparisons"),
                   NULL;
        n->ops[n->args.n] = op;
        if (!push_node(p, &n->args, parse_math1(p)))
            return NULL;
    }
    return n ? n : first;
}

static jinja_node *parse_not(parser *p)
{
    if (is_name(p, "not")) {
        size_t offset = p->tok.offset;
        if (!enter(p) || !next_token(p))
            return NULL;
        jinja_node *n = new_node(p, JN_NOT, offset);
        if (n && !(n->a = parse_not(p)))
            return NULL;
        p->nesting--;
        return n;
    }
    return parse_compare(p);
}

static jinja_node *parse_and(parser *p)
{
    jinja_node *n = parse_not(p);
    while (n && is_name(p, "and")) {
        size_t offset = p->tok.offset;
        if (!next_token(p))
            return NULL;
        n = binary(p, offset, JOP_AND, n, parse_not(p));
    }
    return n;
}

static jinja_node *parse_or(parser *p)
{
    jinja_node *n = parse_and(p);
    while (n && is_name(p, "or")) {
        size_t offset = p->tok.offset;
        if (!next_token(p))
            return NULL;
        n = binary(p, offset, JOP_OR, n, parse_and(p));
    }
    return n;
}

/* A conditional expression: a if cond else b (else optional). */
static jinja_node *parse_expr(parser *p)
{
    if (!enter(p))
        return NULL;
    jinja_node *n = parse_or(p);
    while (n && is_name(p, "if")) {
        size_t offset = p->tok.offset;
        if (!next_token(p))
            return NULL;
        jinja_node *c = new_node(p, JN_COND, offset);
        if (!c || !(c->a = parse_or(p)))
            return NULL;
        c->b = n;
        if (is_name(p, "else")) {
            if (!next_token(p) || !(c->c = parse_expr(p)))
                return NULL;
        }
        n = c;
    }
    p->nesting--;
    return n;
}

/* An expression or an unparenthesized tuple "a, b" (as {{ }}, for and set allow). */
static jinja_node *parse_tuple(parser *p, bool with_cond)
{
    size_t offset = p->tok.offset;
    jinja_node *first = with_cond ? parse_expr(p) : parse_or(p);
    if (!first || !is_op(p, ","))
        return first;
    jinja_node *n = new_node(p, JN_TUPLE, offset);
    if (!n || !push_node(p, &n->args, first))
        return NULL;
    while (is_op(p, ",")) {
        if (!next_token(p))
            return NULL;
        if (p->tok.kind == T_END_VAR || p->tok.kind == T_END_BLOCK || is_name(p, "if"))
            break;
        if (!push_node(p, &n->args, with_cond ? parse_expr(p) : parse_or(p)))
            return NULL;
    }
    return n;
}

/* ---- template structure ------------------------------------------------------------------- */

static bool at_end_tag(parser *p, tok_kind end)
{
    if (p->tok.kind == end)
        return true;
    char buf[80];
    error_at(p, RF_ERR_FORMAT, p->tok.offset, "expected '%s', found %s",
             end == T_END_VAR ? "}}" : "%}", token_desc(&p->tok, buf, sizeof buf));
    return false;
}

/* After an end marker: "-" strips the whitespace that follows, trim_blocks drops one newline
 * after a block or comment end, and line_start records whether the tag ended a line. */
static void after_tag(parser *p, char strip, bool block)
{
    size_t start = p->pos;
    if (strip == '-') {
        while (p->pos < p->len && is_space(p->src[p->pos]))
            p->pos++;
    } else if (strip != '+' && block && p->pos < p->len && p->src[p->pos] == '\n')
        p->pos++;
    p->line_start = p->pos > start ? p->src[p->pos - 1] == '\n' : false;
}

static const char *const UNSUPPORTED_STATEMENTS[] = {
    "macro", "call", "filter", "include",    "import", "from",      "extends",    "block",
    "raw",   "with", "do",     "autoescape", "trans",  "pluralize", "generation", NULL};

static bool parse_body(parser *p, jinja_nodes *body, const char *const *ends,
                       const char **ended_by);

/* {% if %} ... {% elif %} ... {% else %} ... {% endif %} after "if". */
static jinja_node *parse_if(parser *p, size_t offset)
{
    jinja_node *n = new_node(p, JN_IF, offset);
    if (!n)
        return NULL;
    static const char *const ENDS[] = {"elif", "else", "endif", NULL};
    size_t cap = 4;
    n->body = jinja_alloc(p->arena, cap * sizeof *n->body);
    if (!n->body)
        return out_of_memory(p), NULL;
    for (;;) {
        jinja_node *cond = parse_tuple(p, false);
        if (!push_node(p, &n->args, cond) || !at_end_tag(p, T_END_BLOCK))
            return NULL;
        after_tag(p, p->tok.strip, true);
        if (n->args.n > cap) {
            jinja_nodes *grown = jinja_alloc(p->arena, 2 * cap * sizeof *grown);
            if (!grown)
                return out_of_memory(p), NULL;
            memcpy(grown, n->body, cap * sizeof *grown);
            n->body = grown;
            cap *= 2;
        }
        const char *ended;
        if (!parse_body(p, &n->body[n->args.n - 1], ENDS, &ended))
            return NULL;
        if (!strcmp(ended, "elif"))
            continue;
        if (!strcmp(ended, "else")) {
            static const char *const ENDIF[] = {"endif", NULL};
            if (!at_end_tag(p, T_END_BLOCK))
                return NULL;
            after_tag(p, p->tok.strip, true);
            if (!parse_body(p, &n->else_body, ENDIF, &ended))
                return NULL;
        }
        break;
    }
    return n;
}

/* {% for x in items [if cond] %} ... {% else %} ... {% endfor %} after "for". */
static jinja_node *parse_for(parser *p, size_t offset)
{
    jinja_node *n = new_node(p, JN_FOR, offset);
    if (!n)
        return NULL;
    bool paren = is_op(p, "(");
    if (paren && !next_token(p))
        return NULL;
    for (int k = 0; k < 2; k++) {
        if (p->tok.kind != T_NAME)
            return error_at(p, RF_ERR_FORMAT, p->tok.offset, "expected a loop variable name"), NULL;
        n->names[k] = p->tok.str;
        if (!next_token(p))
            return NULL;
        if (!is_op(p, ","))
            break;
        if (k == 1)
            return error_at(p, RF_ERR_UNSUPPORTED, p->tok.offset, "more than two loop variables"),
                   NULL;
        if (!next_token(p))
            return NULL;
    }
    if (paren && !expect_op(p, ")"))
        return NULL;
    if (!is_name(p, "in"))
        return error_at(p, RF_ERR_FORMAT, p->tok.offset, "expected 'in' in a for loop"), NULL;
    if (!next_token(p) || !(n->a = parse_tuple(p, false)))
        return NULL;
    if (is_name(p, "if")) {
        if (!next_token(p) || !(n->b = parse_expr(p)))
            return NULL;
    }
    if (is_name(p, "recursive"))
        return error_at(p, RF_ERR_UNSUPPORTED, p->tok.offset, "recursive for loops"), NULL;
    if (!at_end_tag(p, T_END_BLOCK))
        return NULL;
    after_tag(p, p->tok.strip, true);
    n->body = jinja_alloc(p->arena, sizeof *n->body);
    if (!n->body)
        return out_of_memory(p), NULL;
    static const char *const ENDS[] = {"else", "endfor", NULL};
    const char *ended;
    p->loops++;
    bool ok = parse_body(p, &n->body[0], ENDS, &ended);
    p->loops--;
    if (!ok)
        return NULL;
    if (!strcmp(ended, "else")) {
        static const char *const ENDFOR[] = {"endfor", NULL};
        if (!at_end_tag(p, T_END_BLOCK))
            return NULL;
        after_tag(p, p->tok.strip, true);
        if (!parse_body(p, &n->else_body, ENDFOR, &ended))
            return NULL;
    }
    return n;
}

/* {% set name = value %} or {% set ns.attr = value %} after "set". */
static jinja_node *parse_set(parser *p, size_t offset)
{
    jinja_node *n = new_node(p, JN_SET, offset);
    if (!n)
        return NULL;
    if (p->tok.kind != T_NAME)
        return error_at(p, RF_ERR_FORMAT, p->tok.offset, "expected a name after 'set'"), NULL;
    const char *name = p->tok.str;
    if (!next_token(p))
        return NULL;
    if (is_op(p, ".")) {
        if (!next_token(p))
            return NULL;
        if (p->tok.kind != T_NAME)
            return error_at(p, RF_ERR_FORMAT, p->tok.offset, "expected an attribute name"), NULL;
        jinja_node *obj = new_node(p, JN_NAME, offset);
        if (!obj)
            return NULL;
        obj->name = name;
        n->a = obj;
        n->name = p->tok.str;
        if (!next_token(p))
            return NULL;
    } else
        n->name = name;
    if (is_op(p, ","))
        return error_at(p, RF_ERR_UNSUPPORTED, p->tok.offset, "set with several targets"), NULL;
    if (p->tok.kind == T_END_BLOCK)
        return error_at(p, RF_ERR_UNSUPPORTED, offset, "block assignment ({%% set x %%}...)"), NULL;
    if (!expect_op(p, "=") || !(n->b = parse_tuple(p, true)))
        return NULL;
    return n;
}

/* Statements until a block tag whose keyword is in ends (NULL: until the end of the source).
 * On return p->tok is that tag's next token and *ended_by its keyword. */
static bool parse_body(parser *p, jinja_nodes *body, const char *const *ends, const char **ended_by)
{
    if (++p->nesting > MAX_DEPTH)
        return error_at(p, RF_ERR_LIMIT, p->pos, "blocks nested more than %d deep", MAX_DEPTH),
               false;
    const char *s = p->src;
    while (p->status == RF_OK) {
        /* the text up to the next tag */
        size_t start = p->pos, i = start;
        while (i + 1 < p->len &&
               !(s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#')))
            i++;
        if (i + 1 >= p->len)
            i = p->len;
        size_t text_end = i;
        char kind = i < p->len ? s[i + 1] : 0;
        char sign = i + 2 < p->len && (s[i + 2] == '-' || s[i + 2] == '+') ? s[i + 2] : 0;
        if (kind && sign == '-') {
            while (text_end > start && is_space(s[text_end - 1]))
                text_end--;
        } else if (kind && kind != '{' && sign != '+') { /* lstrip_blocks */
            size_t line = text_end;
            while (line > start && s[line - 1] != '\n')
                line--;
            bool blank = line < text_end;
            for (size_t k = line; k < text_end; k++)
                if (!is_space(s[k]))
                    blank = false;
            if (blank && (line > start || p->line_start))
                text_end = line;
        }
        if (text_end > start) {
            jinja_node *t = new_node(p, JN_TEXT, start);
            if (!t)
                return false;
            t->value = jinja_string(p->arena, s + start, text_end - start);
            if (t->value.type != JV_STRING)
                return out_of_memory(p), false;
            if (!push_node(p, body, t))
                return false;
        }
        if (!kind) {
            p->pos = p->len;
            if (ends) {
                size_t last = 0;
                while (ends[last + 1])
                    last++;
                error_at(p, RF_ERR_FORMAT, p->len, "the template ends before {%% %s %%}",
                         ends[last]);
                return false;
            }
            *ended_by = NULL;
            p->nesting--;
            return true;
        }
        size_t tag = i;
        p->pos = i + 2 + (sign ? 1 : 0);
        p->depth = 0;
        if (kind == '#') {
            const char *close = NULL;
            for (size_t k = p->pos; k + 1 < p->len; k++)
                if (s[k] == '#' && s[k + 1] == '}') {
                    close = s + k;
                    break;
                }
            if (!close)
                return error_at(p, RF_ERR_FORMAT, tag, "a comment without '#}'"), false;
            char end_sign =
                close > s + p->pos && (close[-1] == '-' || close[-1] == '+') ? close[-1] : 0;
            p->pos = (size_t)(close - s) + 2;
            after_tag(p, end_sign, true);
            continue;
        }
        if (!next_token(p))
            return false;
        if (kind == '{') {
            jinja_node *out = new_node(p, JN_OUTPUT, tag);
            if (!out || !(out->a = parse_tuple(p, true)) || !at_end_tag(p, T_END_VAR))
                return false;
            after_tag(p, p->tok.strip, false);
            if (!push_node(p, body, out))
                return false;
            continue;
        }
        /* a block tag */
        if (p->tok.kind != T_NAME)
            return error_at(p, RF_ERR_FORMAT, p->tok.offset, "expected a statement name"), false;
        const char *kw = p->tok.str;
        size_t kw_offset = p->tok.offset;
        for (size_t k = 0; ends && ends[k]; k++)
            if (!strcmp(kw, ends[k])) {
                *ended_by = ends[k];
                if (!next_token(p))
                    return false;
                if (strcmp(kw, "elif") != 0 && strcmp(kw, "else") != 0) {
                    if (!at_end_tag(p, T_END_BLOCK))
                        return false;
                    after_tag(p, p->tok.strip, true);
                }
                p->nesting--;
                return true;
            }
        for (size_t k = 0; UNSUPPORTED_STATEMENTS[k]; k++)
            if (!strcmp(kw, UNSUPPORTED_STATEMENTS[k]))
                return error_at(p, RF_ERR_UNSUPPORTED, kw_offset,
                                "unsupported construct {%% %s %%}", kw),
                       false;
        if (!next_token(p))
            return false;
        jinja_node *n = NULL;
        if (!strcmp(kw, "if"))
            n = parse_if(p, tag);
        else if (!strcmp(kw, "for"))
            n = parse_for(p, tag);
        else if (!strcmp(kw, "set")) {
            n = parse_set(p, tag);
            if (n && !at_end_tag(p, T_END_BLOCK))
                return false;
            if (n)
                after_tag(p, p->tok.strip, true);
        } else if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
            if (p->loops == 0)
                return error_at(p, RF_ERR_FORMAT, kw_offset, "{%% %s %%} outside a for loop", kw),
                       false;
            n = new_node(p, kw[0] == 'b' ? JN_BREAK : JN_CONTINUE, tag);
            if (n && !at_end_tag(p, T_END_BLOCK))
                return false;
            if (n)
                after_tag(p, p->tok.strip, true);
        } else
            return error_at(p, RF_ERR_FORMAT, kw_offset, "unknown statement {%% %s %%}%s", kw,
                            ends ? "" : " (or an end tag without its start)"),
                   false;
        if (!push_node(p, body, n))
            return false;
    }
    return false;
}

rf_status jinja_parse(jinja_arena *a, const char *src, size_t len, jinja_template *t, rf_error *err)
{
    memset(t, 0, sizeof *t);
    /* newlines read as \n, and one trailing newline dropped (jinja2's lexer) */
    char *norm = jinja_alloc(a, len + 1);
    if (!norm)
        return rf_error_set(err, RF_ERR_NOMEM, "chat template: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else
            norm[n++] = src[i];
    }
    if (n && norm[n - 1] == '\n')
        n--;
    parser p = {.arena = a, .src = norm, .len = n, .line_start = true, .err = err};
    t->src = norm;
    t->len = n;
    const char *ended;
    parse_body(&p, &t->body, NULL, &ended);
    return p.status;
}
