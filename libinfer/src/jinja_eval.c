/* Evaluation of the Jinja subset of chat templates, as jinja2 runs them inside transformers'
 * sandboxed environment: names and scopes (each loop iteration has its own scope, {% set %}
 * elsewhere writes the enclosing one), attributes before items for `.name` and items before
 * attributes for `[key]` (jinja2's Environment.getattr / getitem), a missing variable, attribute
 * or item is undefined (empty text, false, an empty loop) and an error once an attribute of it is
 * taken; calls, methods, filters, tests and the statements. Filters, tests, methods and
 * functions: docs/tokenizer.md.
 * Not for: the values themselves (jinja_value.c), parsing (jinja_parse.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

/* Bounds on hostile templates: evaluation steps, nesting, items of range(). */
#define MAX_STEPS 50000000u
#define MAX_RANGE 1000000
#define MAX_DEPTH 200

static const jinja_value UNDEFINED = {.type = JV_UNDEFINED};

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

static jinja_value method(jinja_eval *e, jinja_value self, const char *name)
{
    jinja_value *copy = jinja_alloc(e->arena, sizeof *copy);
    if (!copy)
        return jv_oom(e), UNDEFINED;
    *copy = self;
    return (jinja_value){.type = JV_METHOD, .as.method = {name, copy}};
}

/* obj.name: an attribute first (methods), then an item (jinja2's Environment.getattr). */
static jinja_value get_attr(jinja_eval *e, jinja_value obj, const char *name, size_t offset,
                            const char *what)
{
    switch (obj.type) {
    case JV_UNDEFINED:
        jv_fail(e, RF_ERR_FORMAT, offset, "'%s' is undefined (taking its attribute '%s')",
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
        const jinja_value *v = jv_dict_get_str(obj.as.dict, name);
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
        snprintf(missing, strlen(name) + 64, "%s object's attribute '%s'", jv_type_name(obj.type),
                 name);
    return (jinja_value){.type = JV_UNDEFINED, .as.undefined = missing};
}

/* obj[key]: an item first, then an attribute for string keys (jinja2's Environment.getitem). */
static jinja_value get_item(jinja_eval *e, jinja_value obj, jinja_value key, size_t offset)
{
    switch (obj.type) {
    case JV_UNDEFINED:
        jv_fail(e, RF_ERR_FORMAT, offset, "'%s' is undefined (taking an item of it)",
                obj.as.undefined ? obj.as.undefined : "value");
        return UNDEFINED;
    case JV_LIST:
    case JV_STRING:
        if (key.type == JV_INT || key.type == JV_BOOL) {
            int64_t i = jv_as_int(key);
            int64_t n = obj.type == JV_LIST ? (int64_t)obj.as.list->n
                                            : (int64_t)jv_utf8_count(obj.as.str.s, obj.as.str.len);
            if (i < 0)
                i += n;
            if (i < 0 || i >= n) {
                char *missing = jinja_alloc(e->arena, 64);
                if (missing)
                    snprintf(missing, 64, "%s object's element %lld", jv_type_name(obj.type),
                             (long long)jv_as_int(key));
                return (jinja_value){.type = JV_UNDEFINED, .as.undefined = missing};
            }
            if (obj.type == JV_LIST)
                return obj.as.list->items[i];
            size_t at = jv_utf8_offset(obj.as.str.s, obj.as.str.len, (size_t)i), cl;
            jv_cp_at(obj.as.str.s, obj.as.str.len, at, &cl);
            return (jinja_value){.type = JV_STRING, .as.str = {obj.as.str.s + at, cl}};
        }
        break;
    case JV_DICT: {
        const jinja_value *v = jv_dict_get(obj.as.dict, key);
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
            return jv_oom(e), UNDEFINED;
        return get_attr(e, obj, name, offset, "value");
    }
    return UNDEFINED;
}

/* ---- scopes ------------------------------------------------------------------------------- */

static const char *const GLOBAL_FUNCS[] = {"range",  "namespace",    "raise_exception",
                                           "dict",   "strftime_now", "lipsum",
                                           "cycler", "joiner",       NULL};

static bool scope_set(jinja_eval *e, jinja_frame *f, const char *name, jinja_value v)
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
            return jv_oom(e);
        if (f->n)
            memcpy(vars, f->vars, f->n * sizeof *vars);
        f->vars = vars;
        f->cap = cap;
    }
    f->vars[f->n++] = (jinja_var){name, v};
    return true;
}

static jinja_value lookup(jinja_eval *e, const char *name)
{
    for (const jinja_frame *f = e->scope; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (!strcmp(f->vars[i].name, name))
                return f->vars[i].value;
    for (size_t i = 0; GLOBAL_FUNCS[i]; i++)
        if (!strcmp(GLOBAL_FUNCS[i], name))
            return (jinja_value){.type = JV_FUNC, .as.func = GLOBAL_FUNCS[i]};
    return (jinja_value){.type = JV_UNDEFINED, .as.undefined = name};
}

/* ---- calls, filters, tests ---------------------------------------------------------------- */

static jinja_value eval(jinja_eval *e, const jinja_node *n);

/* Evaluated arguments of a call, filter or test node. */
typedef struct args {
    jinja_value pos[8];
    size_t n_pos;
    const char *kw_names[16];
    jinja_value kw[16];
    size_t n_kw;
} args;

static bool eval_args(jinja_eval *e, const jinja_node *n, args *a)
{
    memset(a, 0, sizeof *a);
    if (n->n_args > 8 || n->args.n - n->n_args > 16)
        return jv_fail(e, RF_ERR_UNSUPPORTED, n->offset, "more than 8 arguments");
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

static bool want_string(jinja_eval *e, const jinja_value *v, const char *what, size_t offset)
{
    if (v && v->type == JV_STRING)
        return true;
    return jv_fail(e, RF_ERR_FORMAT, offset, "%s needs a string, not %s", what,
                   v ? jv_type_name(v->type) : "nothing");
}

static jinja_value call_method(jinja_eval *e, jinja_value m, const args *a, size_t offset)
{
    const char *name = m.as.method.name;
    jinja_value self = *m.as.method.self;
    if (self.type == JV_LIST || in_names(OTHER_STRING_METHODS, name) ||
        in_names(OTHER_DICT_METHODS, name))
        return jv_fail(e, RF_ERR_UNSUPPORTED, offset, "unsupported method %s.%s()",
                       jv_type_name(self.type), name),
               UNDEFINED;
    if (self.type == JV_DICT) {
        jinja_dict *d = self.as.dict;
        if (!strcmp(name, "get")) {
            const jinja_value *key = arg(a, 0, "key"), *def = arg(a, 1, "default");
            if (!key)
                return jv_fail(e, RF_ERR_FORMAT, offset, "get() needs a key"), UNDEFINED;
            const jinja_value *v = jv_dict_get(d, *key);
            return v ? *v : def ? *def : (jinja_value){.type = JV_NONE};
        }
        jinja_value list = jinja_new_list(e->arena);
        if (list.type != JV_LIST)
            return jv_oom(e), UNDEFINED;
        for (size_t i = 0; i < d->n; i++) {
            jinja_value item = d->keys[i];
            if (!strcmp(name, "values"))
                item = d->values[i];
            else if (!strcmp(name, "items")) {
                item = jinja_new_list(e->arena);
                if (item.type != JV_LIST || !jinja_list_push(e->arena, item.as.list, d->keys[i]) ||
                    !jinja_list_push(e->arena, item.as.list, d->values[i]))
                    return jv_oom(e), UNDEFINED;
                item.as.list->is_tuple = true;
            }
            if (!jinja_list_push(e->arena, list.as.list, item))
                return jv_oom(e), UNDEFINED;
        }
        return list;
    }
    /* string methods */
    const jinja_value *a0 = arg(a, 0, NULL), *a1 = arg(a, 1, NULL);
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
        if (a0 && a0->type != JV_NONE && !want_string(e, a0, name, offset))
            return UNDEFINED;
        return jv_strip(e, self, name[0] != 'r', name[0] != 'l',
                        a0 && a0->type != JV_NONE ? a0 : NULL);
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "capitalize")) {
        if (name[0] == 'c') { /* first character upper, the rest lower */
            jinja_value low = jv_case_map(e, self, 0);
            if (low.type != JV_STRING || low.as.str.len == 0)
                return low;
            size_t cl;
            jv_cp_at(low.as.str.s, low.as.str.len, 0, &cl);
            jinja_value head =
                jv_case_map(e, (jinja_value){.type = JV_STRING, .as.str = {low.as.str.s, cl}}, 1);
            if (head.type != JV_STRING)
                return UNDEFINED;
            return jv_concat(e, head,
                             (jinja_value){.type = JV_STRING,
                                           .as.str = {low.as.str.s + cl, low.as.str.len - cl}});
        }
        return jv_case_map(e, self, name[0] == 'u' ? 1 : 0);
    }
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        if (!a0)
            return jv_fail(e, RF_ERR_FORMAT, offset, "%s() needs an argument", name), UNDEFINED;
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
            return jv_fail(e, RF_ERR_FORMAT, offset, "split() with an empty separator"), UNDEFINED;
        int64_t maxsplit = a1 && (a1->type == JV_INT) ? a1->as.i : -1;
        return jv_split(e, self, a0 && a0->type != JV_NONE ? a0 : NULL, maxsplit);
    }
    if (!strcmp(name, "replace")) {
        if (!want_string(e, a0, "replace", offset) || !want_string(e, a1, "replace", offset))
            return UNDEFINED;
        const jinja_value *count = arg(a, 2, NULL);
        return jv_replace(e, self, *a0, *a1, count && count->type == JV_INT ? count->as.i : -1);
    }
    if (!strcmp(name, "find")) {
        if (!want_string(e, a0, "find", offset))
            return UNDEFINED;
        const char *hit = a0->as.str.len == 0 ? self.as.str.s
                                              : memmem(self.as.str.s, self.as.str.len, a0->as.str.s,
                                                       a0->as.str.len);
        return (jinja_value){
            .type = JV_INT,
            .as.i =
                hit ? (int64_t)jv_utf8_count(self.as.str.s, (size_t)(hit - self.as.str.s)) : -1};
    }
    if (!strcmp(name, "join")) {
        if (!a0 || a0->type != JV_LIST)
            return jv_fail(e, RF_ERR_FORMAT, offset, "join() needs a list"), UNDEFINED;
        tok_buf b = {0};
        for (size_t i = 0; i < a0->as.list->n; i++) {
            if (a0->as.list->items[i].type != JV_STRING) {
                tok_buf_free(&b);
                return jv_fail(e, RF_ERR_FORMAT, offset, "join() of a %s item",
                               jv_type_name(a0->as.list->items[i].type)),
                       UNDEFINED;
            }
            if (i)
                tok_buf_append(&b, self.as.str.s, self.as.str.len);
            tok_buf_append(&b, a0->as.list->items[i].as.str.s, a0->as.list->items[i].as.str.len);
        }
        jinja_value r = jinja_string(e->arena, b.data ? b.data : "", b.len);
        bool failed = b.failed || r.type != JV_STRING;
        tok_buf_free(&b);
        return failed ? (jv_oom(e), UNDEFINED) : r;
    }
    return jv_fail(e, RF_ERR_UNSUPPORTED, offset, "unsupported method %s()", name), UNDEFINED;
}

static jinja_value call(jinja_eval *e, const jinja_node *n)
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
            return jv_fail(e, RF_ERR_FORMAT, n->offset, "'%s' is undefined (called)",
                           callee.as.undefined ? callee.as.undefined : "value"),
                   UNDEFINED;
        return jv_fail(e, RF_ERR_FORMAT, n->offset, "a %s is not callable",
                       jv_type_name(callee.type)),
               UNDEFINED;
    }
    const char *f = callee.as.func;
    if (!strcmp(f, "raise_exception")) {
        jinja_value msg = a.n_pos ? jv_str(e, a.pos[0]) : jinja_string(e->arena, "", 0);
        jv_fail(e, RF_ERR_FORMAT, n->offset, "the template raised an exception: %.*s",
                (int)(msg.type == JV_STRING && msg.as.str.len < 400 ? msg.as.str.len : 400),
                msg.type == JV_STRING ? msg.as.str.s : "");
        return UNDEFINED;
    }
    if (!strcmp(f, "namespace") || !strcmp(f, "dict")) {
        if (a.n_pos)
            return jv_fail(e, RF_ERR_UNSUPPORTED, n->offset, "%s() with positional arguments", f),
                   UNDEFINED;
        jinja_value ns = jinja_new_dict(e->arena);
        if (ns.type != JV_DICT)
            return jv_oom(e), UNDEFINED;
        ns.as.dict->is_namespace = f[0] == 'n';
        for (size_t i = 0; i < a.n_kw; i++) {
            jinja_value key = jinja_string(e->arena, a.kw_names[i], strlen(a.kw_names[i]));
            if (key.type != JV_STRING || !jinja_dict_set(e->arena, ns.as.dict, key, a.kw[i]))
                return jv_oom(e), UNDEFINED;
        }
        return ns;
    }
    if (strcmp(f, "range") != 0)
        return jv_fail(e, RF_ERR_UNSUPPORTED, n->offset, "unsupported function %s()", f), UNDEFINED;
    /* range(stop), range(start, stop[, step]) */
    int64_t v[3] = {0, 0, 1};
    if (a.n_pos < 1 || a.n_pos > 3 || a.n_kw)
        return jv_fail(e, RF_ERR_FORMAT, n->offset, "range() takes 1 to 3 integers"), UNDEFINED;
    for (size_t i = 0; i < a.n_pos; i++) {
        if (a.pos[i].type != JV_INT && a.pos[i].type != JV_BOOL)
            return jv_fail(e, RF_ERR_FORMAT, n->offset, "range() of a %s",
                           jv_type_name(a.pos[i].type)),
                   UNDEFINED;
        v[a.n_pos == 1 ? 1 : i] = jv_as_int(a.pos[i]);
    }
    if (v[2] == 0)
        return jv_fail(e, RF_ERR_FORMAT, n->offset, "range() with a step of zero"), UNDEFINED;
    jinja_value list = jinja_new_list(e->arena);
    if (list.type != JV_LIST)
        return jv_oom(e), UNDEFINED;
    for (int64_t i = v[0], count = 0; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2], count++) {
        if (count >= MAX_RANGE)
            return jv_fail(e, RF_ERR_LIMIT, n->offset, "range() of more than %d items", MAX_RANGE),
                   UNDEFINED;
        if (!jinja_list_push(e->arena, list.as.list, (jinja_value){.type = JV_INT, .as.i = i}))
            return jv_oom(e), UNDEFINED;
        if ((v[2] > 0 && i > INT64_MAX - v[2]) || (v[2] < 0 && i < INT64_MIN - v[2]))
            break;
    }
    return list;
}

static jinja_value filter(jinja_eval *e, const jinja_node *n)
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
                                 .as.i = (int64_t)jv_utf8_count(v.as.str.s, v.as.str.len)};
        case JV_LIST: return (jinja_value){.type = JV_INT, .as.i = (int64_t)v.as.list->n};
        case JV_DICT: return (jinja_value){.type = JV_INT, .as.i = (int64_t)v.as.dict->n};
        case JV_NONE:
        case JV_BOOL:
        case JV_INT:
        case JV_FLOAT:
        case JV_METHOD:
        case JV_FUNC: break;
        }
        return jv_fail(e, RF_ERR_FORMAT, n->offset, "length of a %s", jv_type_name(v.type)),
               UNDEFINED;
    }
    if (!strcmp(f, "trim")) {
        jinja_value s = jv_str(e, v);
        const jinja_value *chars = arg(&a, 0, "chars");
        if (chars && chars->type != JV_NONE && !want_string(e, chars, "trim", n->offset))
            return UNDEFINED;
        return s.type == JV_STRING
                   ? jv_strip(e, s, true, true, chars && chars->type != JV_NONE ? chars : NULL)
                   : UNDEFINED;
    }
    if (!strcmp(f, "tojson")) {
        const jinja_value *indent = arg(&a, 0, "indent");
        int ind = indent && (indent->type == JV_INT) ? (int)(indent->as.i < 0    ? 0
                                                             : indent->as.i > 64 ? 64
                                                                                 : indent->as.i)
                                                     : -1;
        tok_buf b = {0};
        bool ok = jv_to_json(e, v, ind, 0, &b, n->offset);
        jinja_value r = ok ? jinja_string(e->arena, b.data ? b.data : "", b.len) : UNDEFINED;
        if (ok && (b.failed || r.type != JV_STRING))
            jv_oom(e);
        tok_buf_free(&b);
        return r;
    }
    if (!strcmp(f, "string"))
        return jv_str(e, v);
    if (!strcmp(f, "upper") || !strcmp(f, "lower") || !strcmp(f, "capitalize")) {
        jinja_value s = jv_str(e, v);
        if (s.type != JV_STRING)
            return UNDEFINED;
        jinja_value m = method(e, s, f);
        args none = {0};
        return m.type == JV_METHOD ? call_method(e, m, &none, n->offset) : UNDEFINED;
    }
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        const jinja_value *def = arg(&a, 0, "default_value"), *boolean = arg(&a, 1, "boolean");
        bool use = v.type == JV_UNDEFINED || (boolean && jv_truthy(*boolean) && !jv_truthy(v));
        return use ? (def ? *def : jinja_string(e->arena, "", 0)) : v;
    }
    if (!strcmp(f, "join")) {
        const jinja_value *sep = arg(&a, 0, "d");
        if (v.type != JV_LIST)
            return jv_fail(e, RF_ERR_FORMAT, n->offset, "join of a %s", jv_type_name(v.type)),
                   UNDEFINED;
        tok_buf b = {0};
        for (size_t i = 0; i < v.as.list->n; i++) {
            if (i && sep) {
                jinja_value s = jv_str(e, *sep);
                if (s.type == JV_STRING)
                    tok_buf_append(&b, s.as.str.s, s.as.str.len);
            }
            jinja_value s = jv_str(e, v.as.list->items[i]);
            if (s.type == JV_STRING)
                tok_buf_append(&b, s.as.str.s, s.as.str.len);
        }
        jinja_value r = jinja_string(e->arena, b.data ? b.data : "", b.len);
        if (b.failed || r.type != JV_STRING)
            jv_oom(e);
        tok_buf_free(&b);
        return r;
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        if (v.type == JV_LIST)
            return v.as.list->n ? v.as.list->items[f[0] == 'f' ? 0 : v.as.list->n - 1] : UNDEFINED;
        if (v.type == JV_STRING)
            return get_item(e, v, (jinja_value){.type = JV_INT, .as.i = f[0] == 'f' ? 0 : -1},
                            n->offset);
        return jv_fail(e, RF_ERR_FORMAT, n->offset, "%s of a %s", f, jv_type_name(v.type)),
               UNDEFINED;
    }
    if (!strcmp(f, "list")) {
        if (v.type == JV_LIST) {
            jinja_value r = jv_slice(e, v, NULL, NULL, NULL, n->offset);
            if (r.type == JV_LIST)
                r.as.list->is_tuple = false;
            return r;
        }
        if (v.type == JV_DICT)
            return call_method(e, method(e, v, "keys"), &a, n->offset);
        if (v.type == JV_STRING) {
            jinja_value r = jinja_new_list(e->arena);
            for (size_t i = 0, cl; r.type == JV_LIST && i < v.as.str.len; i += cl) {
                jv_cp_at(v.as.str.s, v.as.str.len, i, &cl);
                if (!jinja_list_push(
                        e->arena, r.as.list,
                        (jinja_value){.type = JV_STRING, .as.str = {v.as.str.s + i, cl}}))
                    return jv_oom(e), UNDEFINED;
            }
            return r;
        }
        return jv_fail(e, RF_ERR_FORMAT, n->offset, "list of a %s", jv_type_name(v.type)),
               UNDEFINED;
    }
    if (!strcmp(f, "items")) {
        if (v.type == JV_UNDEFINED)
            return jinja_new_list(e->arena);
        if (v.type != JV_DICT)
            return jv_fail(e, RF_ERR_FORMAT, n->offset, "items of a %s", jv_type_name(v.type)),
                   UNDEFINED;
        return call_method(e, method(e, v, "items"), &a, n->offset);
    }
    if (!strcmp(f, "replace")) {
        jinja_value s = jv_str(e, v);
        const jinja_value *old = arg(&a, 0, "old"), *new = arg(&a, 1, "new");
        const jinja_value *count = arg(&a, 2, "count");
        if (s.type != JV_STRING || !want_string(e, old, "replace", n->offset) ||
            !want_string(e, new, "replace", n->offset))
            return UNDEFINED;
        return jv_replace(e, s, *old, *new, count && count->type == JV_INT ? count->as.i : -1);
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
        return jv_fail(e, RF_ERR_FORMAT, n->offset, "abs of a %s", jv_type_name(v.type)), UNDEFINED;
    }
    if (!strcmp(f, "safe"))
        return v;
    return jv_fail(e, RF_ERR_UNSUPPORTED, n->offset, "unsupported filter '%s'", f), UNDEFINED;
}

static jinja_value test(jinja_eval *e, const jinja_node *n)
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
        r = jv_is_number(v);
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
            return jv_fail(e, RF_ERR_FORMAT, n->offset, "'%s' test of a %s", t,
                           jv_type_name(v.type)),
                   UNDEFINED;
        int64_t d = 2;
        if (t[0] == 'd') {
            const jinja_value *dv = arg(&a, 0, "num");
            if (!dv || (dv->type != JV_INT) || dv->as.i == 0)
                return jv_fail(e, RF_ERR_FORMAT, n->offset, "divisibleby needs a non-zero integer"),
                       UNDEFINED;
            d = dv->as.i;
        }
        int64_t m = d == -1 ? 0 : jv_as_int(v) % d;
        r = t[0] == 'o' ? m != 0 : m == 0;
    } else if (!strcmp(t, "eq") || !strcmp(t, "equalto") || !strcmp(t, "==") || !strcmp(t, "ne") ||
               !strcmp(t, "sameas")) {
        const jinja_value *other = arg(&a, 0, NULL);
        if (!other)
            return jv_fail(e, RF_ERR_FORMAT, n->offset, "'%s' test needs an argument", t),
                   UNDEFINED;
        r = jv_equal(v, *other) != (t[0] == 'n');
    } else
        return jv_fail(e, RF_ERR_UNSUPPORTED, n->offset, "unsupported test '%s'", t), UNDEFINED;
    return (jinja_value){.type = JV_BOOL, .as.b = n->op ? !r : r};
}

/* ---- expressions -------------------------------------------------------------------------- */

static jinja_value eval(jinja_eval *e, const jinja_node *n)
{
    if (e->status != RF_OK)
        return UNDEFINED;
    if (++e->steps > MAX_STEPS)
        return jv_fail(e, RF_ERR_LIMIT, n->offset, "more than %u evaluation steps", MAX_STEPS),
               UNDEFINED;
    if (++e->depth > MAX_DEPTH)
        return jv_fail(e, RF_ERR_LIMIT, n->offset, "nesting deeper than %d", MAX_DEPTH), UNDEFINED;
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
            r = jv_slice(e, x, &lo, &hi, &step, n->offset);
        break;
    }
    case JN_CALL: r = call(e, n); break;
    case JN_FILTER: r = filter(e, n); break;
    case JN_TEST: r = test(e, n); break;
    case JN_NOT:
        x = eval(e, n->a);
        r = (jinja_value){.type = JV_BOOL, .as.b = !jv_truthy(x)};
        break;
    case JN_NEG:
    case JN_POS:
        x = eval(e, n->a);
        if (e->status != RF_OK)
            break;
        if (x.type == JV_UNDEFINED)
            r = jv_undefined_error(e, x, x, n->kind == JN_NEG ? JOP_SUB : JOP_ADD, n->offset);
        else if (!jv_is_number(x))
            jv_fail(e, RF_ERR_FORMAT, n->offset, "unary %c of a %s", n->kind == JN_NEG ? '-' : '+',
                    jv_type_name(x.type));
        else if (n->kind == JN_POS)
            r = x.type == JV_BOOL ? (jinja_value){.type = JV_INT, .as.i = x.as.b} : x;
        else if (x.type == JV_FLOAT)
            r = (jinja_value){.type = JV_FLOAT, .as.f = -x.as.f};
        else if (jv_as_int(x) == INT64_MIN)
            jv_fail(e, RF_ERR_LIMIT, n->offset, "an integer beyond 64 bits");
        else
            r = (jinja_value){.type = JV_INT, .as.i = -jv_as_int(x)};
        break;
    case JN_BINARY:
        x = eval(e, n->a);
        if (e->status != RF_OK)
            break;
        if (n->op == JOP_AND) {
            r = jv_truthy(x) ? eval(e, n->b) : x;
            break;
        }
        if (n->op == JOP_OR) {
            r = jv_truthy(x) ? x : eval(e, n->b);
            break;
        }
        y = eval(e, n->b);
        if (e->status != RF_OK)
            break;
        if (n->op == JOP_CONCAT) {
            x = jv_str(e, x);
            y = jv_str(e, y);
            if (x.type == JV_STRING && y.type == JV_STRING)
                r = jv_concat(e, x, y);
        } else
            r = jv_arith(e, n->op, x, y, n->offset);
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
            case JOP_EQ: result = jv_equal(x, y); break;
            case JOP_NE: result = !jv_equal(x, y); break;
            case JOP_IN:
            case JOP_NOT_IN:
                ok = jv_contains(e, x, y, n->offset, &in);
                result = op == JOP_IN ? in : !in;
                break;
            default: {
                int c = jv_compare(e, x, y, op, n->offset, &ok);
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
            r = jv_truthy(x) ? eval(e, n->b) : n->c ? eval(e, n->c) : UNDEFINED;
        break;
    case JN_LIST:
    case JN_TUPLE: {
        r = jinja_new_list(e->arena);
        if (r.type != JV_LIST) {
            jv_oom(e);
            break;
        }
        r.as.list->is_tuple = n->kind == JN_TUPLE;
        for (size_t i = 0; i < n->args.n && e->status == RF_OK; i++)
            if (!jinja_list_push(e->arena, r.as.list, eval(e, n->args.items[i])))
                jv_oom(e);
        break;
    }
    case JN_DICT:
        r = jinja_new_dict(e->arena);
        if (r.type != JV_DICT) {
            jv_oom(e);
            break;
        }
        for (size_t i = 0; i + 1 < n->args.n && e->status == RF_OK; i += 2) {
            x = eval(e, n->args.items[i]);
            y = eval(e, n->args.items[i + 1]);
            if (e->status == RF_OK && !jinja_dict_set(e->arena, r.as.dict, x, y))
                jv_oom(e);
        }
        break;
    case JN_TEXT:
    case JN_OUTPUT:
    case JN_IF:
    case JN_FOR:
    case JN_SET:
    case JN_BREAK:
    case JN_CONTINUE:
        jv_fail(e, RF_ERR_FORMAT, n->offset, "a statement where an expression belongs");
        break;
    }
    e->depth--;
    return e->status == RF_OK ? r : UNDEFINED;
}

/* ---- statements --------------------------------------------------------------------------- */

static bool exec_body(jinja_eval *e, const jinja_nodes *body);

static void emit(jinja_eval *e, const char *s, size_t len, size_t offset)
{
    if (e->out->len + len > JINJA_MAX_OUTPUT) {
        jv_fail(e, RF_ERR_LIMIT, offset, "output over %zu MiB", JINJA_MAX_OUTPUT >> 20);
        return;
    }
    tok_buf_append(e->out, s, len);
    if (e->out->failed)
        jv_oom(e);
}

static bool exec_for(jinja_eval *e, const jinja_node *n)
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
            jv_cp_at(seq.as.str.s, seq.as.str.len, i, &cl);
            if (!jinja_list_push(
                    e->arena, items.as.list,
                    (jinja_value){.type = JV_STRING, .as.str = {seq.as.str.s + i, cl}}))
                return jv_oom(e);
        }
        break;
    }
    case JV_NONE:
    case JV_BOOL:
    case JV_INT:
    case JV_FLOAT:
    case JV_METHOD:
    case JV_FUNC:
        return jv_fail(e, RF_ERR_FORMAT, n->a->offset, "a %s is not iterable",
                       jv_type_name(seq.type));
    }
    if (items.type != JV_LIST)
        return e->status == RF_OK ? jv_oom(e) : false;
    jinja_frame *outer = e->scope;
    /* the loop's own "if": items filtered first, so loop.length counts the kept ones */
    jinja_list *list = items.as.list;
    if (n->b) {
        jinja_value kept = jinja_new_list(e->arena);
        if (kept.type != JV_LIST)
            return jv_oom(e);
        for (size_t i = 0; i < list->n; i++) {
            jinja_frame f = {.parent = outer};
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
            bool keep = bind_ok && jv_truthy(eval(e, n->b));
            e->scope = outer;
            if (e->status != RF_OK)
                return false;
            if (!bind_ok)
                return jv_fail(e, RF_ERR_FORMAT, n->offset,
                               "cannot unpack a loop item into two "
                               "names");
            if (keep && !jinja_list_push(e->arena, kept.as.list, list->items[i]))
                return jv_oom(e);
        }
        list = kept.as.list;
    }
    if (list->n == 0)
        return exec_body(e, &n->else_body);
    for (size_t i = 0; i < list->n && e->status == RF_OK; i++) {
        jinja_frame f = {.parent = outer};
        jinja_value loop = jinja_new_dict(e->arena);
        if (loop.type != JV_DICT)
            return jv_oom(e);
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
                return jv_oom(e);
        }
        e->scope = &f;
        bool ok = scope_set(e, &f, "loop", loop);
        jinja_value it = list->items[i];
        if (ok && n->names[1]) {
            if (it.type != JV_LIST || it.as.list->n != 2) {
                e->scope = outer;
                return jv_fail(e, RF_ERR_FORMAT, n->offset,
                               "cannot unpack a loop item of type %s into two names",
                               jv_type_name(it.type));
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

static bool exec_node(jinja_eval *e, const jinja_node *n)
{
    switch (n->kind) {
    case JN_TEXT: emit(e, n->value.as.str.s, n->value.as.str.len, n->offset); break;
    case JN_OUTPUT: {
        jinja_value v = eval(e, n->a);
        if (e->status != RF_OK)
            break;
        if (v.type == JV_METHOD || v.type == JV_FUNC)
            return jv_fail(e, RF_ERR_UNSUPPORTED, n->offset,
                           "printing a %s (did the template forget '()'?)", jv_type_name(v.type));
        if (v.type == JV_STRING)
            emit(e, v.as.str.s, v.as.str.len, n->offset);
        else {
            tok_buf b = {0};
            jv_to_text(v, false, &b);
            if (b.failed)
                jv_oom(e);
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
            if (jv_truthy(c))
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
            return jv_fail(e, RF_ERR_FORMAT, n->offset,
                           "'set %s.%s': only a namespace() takes attribute assignments",
                           n->a->name, n->name);
        jinja_value key = jinja_string(e->arena, n->name, strlen(n->name));
        if (key.type != JV_STRING || !jinja_dict_set(e->arena, ns.as.dict, key, v))
            return jv_oom(e);
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
        return jv_fail(e, RF_ERR_FORMAT, n->offset, "an expression where a statement belongs");
    }
    return e->status == RF_OK;
}

static bool exec_body(jinja_eval *e, const jinja_nodes *body)
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
    jinja_eval e = {.arena = a, .t = t, .out = out, .err = err};
    jinja_frame root = {0};
    e.scope = &root;
    for (size_t i = 0; i < n_vars; i++)
        if (!scope_set(&e, &root, vars[i].name, vars[i].value))
            return e.status;
    exec_body(&e, &t->body);
    return e.status;
}
