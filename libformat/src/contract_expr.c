/* The small integer expression language of the contracts' shapes and conditions
 * (docs/contracts.md): integers, identifiers, + - * /, unary minus, parentheses.
 * Not for: anything with side effects, floating point or comparisons. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "contract_internal.h"

/* Parentheses and unary minus nest at most this deep (a bound on the recursion). */
#define MAX_DEPTH 64

typedef struct parser {
    const char *expr;
    const char *p;
    bool evaluate;
    rf_expr_lookup lookup;
    bool (*known)(void *ctx, const char *, size_t);
    void *ctx;
    int depth;
    rf_error *err;
} parser;

static rf_status fail(parser *ps, rf_status st, const char *what)
{
    return rf_error_set(ps->err, st, "expression \"%s\": %s at position %zu", ps->expr, what,
                        (size_t)(ps->p - ps->expr) + 1);
}

static void skip_space(parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t')
        ps->p++;
}

static rf_status parse_sum(parser *ps, int64_t *out);

static rf_status parse_primary(parser *ps, int64_t *out)
{
    skip_space(ps);
    const char *start = ps->p;
    if (*ps->p >= '0' && *ps->p <= '9') {
        int64_t v = 0;
        while (*ps->p >= '0' && *ps->p <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) ||
                __builtin_add_overflow(v, (int64_t)(*ps->p - '0'), &v)) {
                ps->p = start;
                return fail(ps, RF_ERR_OVERFLOW, "integer does not fit in 64 bits");
            }
            ps->p++;
        }
        *out = v;
        return RF_OK;
    }
    if (isalpha((unsigned char)*ps->p) || *ps->p == '_') {
        while (isalnum((unsigned char)*ps->p) || *ps->p == '_')
            ps->p++;
        size_t len = (size_t)(ps->p - start);
        bool ok = ps->evaluate ? ps->lookup(ps->ctx, start, len, out)
                               : (!ps->known || ps->known(ps->ctx, start, len));
        if (!ok) {
            ps->p = start;
            char what[160];
            snprintf(what, sizeof what, "identifier '%.*s' %s", (int)(len > 64 ? 64 : len), start,
                     ps->evaluate ? "has no value" : "is not known");
            return fail(ps, RF_ERR_FORMAT, what);
        }
        if (!ps->evaluate)
            *out = 1;
        return RF_OK;
    }
    if (*ps->p == '(') {
        if (++ps->depth > MAX_DEPTH)
            return fail(ps, RF_ERR_LIMIT, "parentheses nest too deep");
        ps->p++;
        rf_status st = parse_sum(ps, out);
        if (st != RF_OK)
            return st;
        skip_space(ps);
        if (*ps->p != ')')
            return fail(ps, RF_ERR_FORMAT, "expected ')'");
        ps->p++;
        ps->depth--;
        return RF_OK;
    }
    if (*ps->p == '-') {
        if (++ps->depth > MAX_DEPTH)
            return fail(ps, RF_ERR_LIMIT, "unary minus nests too deep");
        ps->p++;
        int64_t v;
        rf_status st = parse_primary(ps, &v);
        if (st != RF_OK)
            return st;
        ps->depth--;
        if (ps->evaluate && v == INT64_MIN) {
            ps->p = start;
            return fail(ps, RF_ERR_OVERFLOW, "negation overflows");
        }
        *out = ps->evaluate ? -v : 1;
        return RF_OK;
    }
    if (*ps->p == '\0')
        return fail(ps, RF_ERR_FORMAT, "unexpected end, expected a number, a name or '('");
    return fail(ps, RF_ERR_FORMAT, "unexpected character, expected a number, a name or '('");
}

static rf_status parse_product(parser *ps, int64_t *out)
{
    int64_t acc;
    rf_status st = parse_primary(ps, &acc);
    for (;;) {
        if (st != RF_OK)
            return st;
        skip_space(ps);
        char op = *ps->p;
        if (op != '*' && op != '/')
            break;
        const char *at = ps->p++;
        int64_t rhs;
        if ((st = parse_primary(ps, &rhs)) != RF_OK)
            return st;
        if (!ps->evaluate)
            continue;
        if (op == '*') {
            if (__builtin_mul_overflow(acc, rhs, &acc)) {
                ps->p = at;
                return fail(ps, RF_ERR_OVERFLOW, "product overflows 64 bits");
            }
        } else if (rhs == 0) {
            ps->p = at;
            return fail(ps, RF_ERR_ARGUMENT, "division by zero");
        } else if (acc == INT64_MIN && rhs == -1) {
            ps->p = at;
            return fail(ps, RF_ERR_OVERFLOW, "quotient overflows 64 bits");
        } else {
            acc /= rhs;
        }
    }
    *out = acc;
    return RF_OK;
}

static rf_status parse_sum(parser *ps, int64_t *out)
{
    int64_t acc;
    rf_status st = parse_product(ps, &acc);
    for (;;) {
        if (st != RF_OK)
            return st;
        skip_space(ps);
        char op = *ps->p;
        if (op != '+' && op != '-')
            break;
        const char *at = ps->p++;
        int64_t rhs;
        if ((st = parse_product(ps, &rhs)) != RF_OK)
            return st;
        if (!ps->evaluate)
            continue;
        bool overflow = op == '+' ? __builtin_add_overflow(acc, rhs, &acc)
                                  : __builtin_sub_overflow(acc, rhs, &acc);
        if (overflow) {
            ps->p = at;
            return fail(ps, RF_ERR_OVERFLOW,
                        op == '+' ? "sum overflows 64 bits" : "difference overflows 64 bits");
        }
    }
    *out = acc;
    return RF_OK;
}

static rf_status run(parser *ps, int64_t *value)
{
    if (!ps->expr)
        return rf_error_set(ps->err, RF_ERR_ARGUMENT, "NULL expression");
    ps->p = ps->expr;
    int64_t v = 0;
    rf_status st = parse_sum(ps, &v);
    if (st != RF_OK)
        return st;
    skip_space(ps);
    if (*ps->p != '\0')
        return fail(ps, RF_ERR_FORMAT, "unexpected character after the expression");
    if (value)
        *value = v;
    return RF_OK;
}

rf_status rf_expr_eval(const char *expr, rf_expr_lookup lookup, void *ctx, int64_t *value,
                       rf_error *err)
{
    if (!lookup)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL lookup");
    parser ps = {.expr = expr, .evaluate = true, .lookup = lookup, .ctx = ctx, .err = err};
    return run(&ps, value);
}

rf_status rfi_contract_expr_check(const char *expr, bool (*known)(void *ctx, const char *, size_t),
                                  void *ctx, rf_error *err)
{
    parser ps = {.expr = expr, .evaluate = false, .known = known, .ctx = ctx, .err = err};
    return run(&ps, NULL);
}
