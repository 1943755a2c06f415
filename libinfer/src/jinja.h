/* The Jinja subset of chat templates (docs/tokenizer.md, "Chat templates"): the syntax tree the
 * parser (jinja_parse.c) builds, the values the evaluator (jinja_eval.c) computes with, and the
 * arena both allocate from (one per rendering, freed at once).
 * Not for: the public API (chat.c implements rosetta/tokenizer.h's ri_chat_*). */
#ifndef RI_JINJA_H
#define RI_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/status.h"
#include "tokenizer_internal.h"

/* ---- arena -------------------------------------------------------------------------------- */

typedef struct jinja_chunk jinja_chunk;
typedef struct jinja_arena {
    jinja_chunk *head;
    size_t used, size; /* of the head chunk */
    size_t total;      /* bytes allocated, bounded by JINJA_MAX_MEMORY */
    bool over_limit;   /* an allocation was refused for JINJA_MAX_MEMORY (not by malloc) */
} jinja_arena;

#define JINJA_MAX_MEMORY ((size_t)64 << 20)

/* Zeroed memory, or NULL when out of memory or over JINJA_MAX_MEMORY. */
void *jinja_alloc(jinja_arena *a, size_t size);
char *jinja_strndup(jinja_arena *a, const char *s, size_t len);
void jinja_arena_free(jinja_arena *a);

/* ---- values ------------------------------------------------------------------------------- */

typedef enum jinja_type {
    JV_UNDEFINED, /* a missing variable, attribute or item: empty text, false, empty loop */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STRING,
    JV_LIST,   /* also tuples (is_tuple) */
    JV_DICT,   /* also namespace() objects (is_namespace) */
    JV_METHOD, /* a bound method of a string or dict: "abc".strip, d.items */
    JV_FUNC,   /* a global function: range, namespace, raise_exception */
} jinja_type;

typedef struct jinja_list jinja_list;
typedef struct jinja_dict jinja_dict;
typedef struct jinja_value jinja_value;

struct jinja_value {
    jinja_type type;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *s;
            size_t len;
        } str;
        jinja_list *list;
        jinja_dict *dict;
        struct {
            const char *name; /* the method's name */
            jinja_value *self;
        } method;
        const char *func;      /* the function's name */
        const char *undefined; /* what was missing, for error messages (may be NULL) */
    } as;
};

struct jinja_list {
    jinja_value *items;
    size_t n, cap;
    bool is_tuple;
};

struct jinja_dict {
    jinja_value *keys, *values;
    size_t n, cap;
    bool is_namespace;
};

/* ---- syntax tree -------------------------------------------------------------------------- */

typedef enum jinja_kind {
    /* expressions */
    JN_LITERAL, /* value */
    JN_NAME,    /* name */
    JN_ATTR,    /* a.name */
    JN_ITEM,    /* a[b] */
    JN_SLICE,   /* a[b:c:d]; b, c, d may be NULL */
    JN_CALL,    /* a(args..., names=kwargs...) */
    JN_FILTER,  /* a | name(args..., kwargs...) */
    JN_TEST,    /* a is [not] name(args...); op = 1 when negated */
    JN_NOT,     /* not a */
    JN_NEG,     /* -a */
    JN_POS,     /* +a */
    JN_BINARY,  /* a op b; op is a JOP_* */
    JN_COMPARE, /* a ops[0] args[0] ops[1] args[1] ... (ops are JOP_*) */
    JN_COND,    /* b if a else c; c may be NULL */
    JN_LIST,    /* [args...] */
    JN_TUPLE,   /* (args...) */
    JN_DICT,    /* {args[0]: args[1], args[2]: args[3], ...} */
    /* statements */
    JN_TEXT,     /* literal text: value */
    JN_OUTPUT,   /* {{ a }} */
    JN_IF,       /* if args[0] body[0] elif args[1] body[1] ... else else_body */
    JN_FOR,      /* for names in a [if b]: body[0] else else_body */
    JN_SET,      /* set name = b, or set a.name = b (a a namespace name) */
    JN_BREAK,    /* break */
    JN_CONTINUE, /* continue */
} jinja_kind;

typedef enum jinja_op {
    JOP_ADD,
    JOP_SUB,
    JOP_MUL,
    JOP_DIV,
    JOP_FLOORDIV,
    JOP_MOD,
    JOP_POW,
    JOP_CONCAT,
    JOP_AND,
    JOP_OR,
    JOP_EQ,
    JOP_NE,
    JOP_LT,
    JOP_LE,
    JOP_GT,
    JOP_GE,
    JOP_IN,
    JOP_NOT_IN,
} jinja_op;

/* A list of nodes: statement bodies, call arguments, list items. */
typedef struct jinja_nodes {
    struct jinja_node **items;
    size_t n, cap;
} jinja_nodes;

typedef struct jinja_node jinja_node;
struct jinja_node {
    jinja_kind kind;
    size_t offset; /* in the template, for error messages */
    int op;
    int ops[8]; /* JN_COMPARE */
    jinja_node *a, *b, *c;
    const char *name;
    const char *names[2]; /* for: the loop variables (names[1] NULL for one) */
    jinja_value value;
    jinja_nodes args;
    const char **kwarg_names; /* JN_CALL, JN_FILTER: names of args[n_args ..] */
    size_t n_args;            /* positional arguments among args (the rest are keywords) */
    jinja_nodes *body;        /* JN_IF: one body per condition; JN_FOR: body[0] */
    jinja_nodes else_body;
};

/* ---- parsing and rendering ---------------------------------------------------------------- */

/* A parsed template: the statements and the source (for line and column in messages). */
typedef struct jinja_template {
    jinja_nodes body;
    const char *src;
    size_t len;
} jinja_template;

/* Parses src[0..len) into t (allocated from a). Errors: RF_ERR_UNSUPPORTED naming a construct
 * outside the subset, RF_ERR_FORMAT for a syntax error; the message gives line, column and
 * offset. */
rf_status jinja_parse(jinja_arena *a, const char *src, size_t len, jinja_template *t,
                      rf_error *err);

/* A variable of the rendering context. */
typedef struct jinja_var {
    const char *name;
    jinja_value value;
} jinja_var;

/* Renders t with the variables vars[0..n_vars) (plus the globals range, namespace and
 * raise_exception), appending to out. */
rf_status jinja_render(jinja_arena *a, const jinja_template *t, const jinja_var *vars,
                       size_t n_vars, tok_buf *out, rf_error *err);

/* "line 3, column 8, offset 71" for offset in src. */
void jinja_where(const char *src, size_t len, size_t offset, char *buf, size_t size);

/* Value constructors used by chat.c and the evaluator (NULL-safe on allocation failure: they
 * return JV_UNDEFINED when the arena is exhausted, which the evaluator reports). */
jinja_value jinja_string(jinja_arena *a, const char *s, size_t len);
jinja_value jinja_new_list(jinja_arena *a);
jinja_value jinja_new_dict(jinja_arena *a);
bool jinja_list_push(jinja_arena *a, jinja_list *l, jinja_value v);
bool jinja_dict_set(jinja_arena *a, jinja_dict *d, jinja_value key, jinja_value v);

/* ---- evaluation state and the value operations (jinja_value.c, jinja_eval.c) -------------- */

/* Most bytes a rendering may produce (also the longest string a repetition may build). */
#define JINJA_MAX_OUTPUT ((size_t)64 << 20)

/* A scope: variables set in it and the enclosing scope. */
typedef struct jinja_frame {
    struct jinja_frame *parent;
    jinja_var *vars;
    size_t n, cap;
} jinja_frame;

/* One rendering in progress. The first error is kept in status and err; later ones are
 * ignored, and every operation returns at once when status is not RF_OK. */
typedef struct jinja_eval {
    jinja_arena *arena;
    const jinja_template *t;
    tok_buf *out;
    rf_error *err;
    rf_status status;
    jinja_frame *scope;
    uint64_t steps;
    int depth;
    int loop_control; /* 1 after {% break %}, 2 after {% continue %} */
} jinja_eval;

/* Records the first error, with the template position of offset; returns false. */
bool jv_fail(jinja_eval *e, rf_status status, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records an allocation failure (RF_ERR_LIMIT when the arena's cap refused it); returns false. */
bool jv_oom(jinja_eval *e);

const jinja_value *jv_dict_get(const jinja_dict *d, jinja_value key);
const jinja_value *jv_dict_get_str(const jinja_dict *d, const char *key);
const char *jv_type_name(jinja_type t);
bool jv_is_number(jinja_value v);            /* int, float or bool */
double jv_as_double(jinja_value v);          /* of an int, float or bool */
int64_t jv_as_int(jinja_value v);            /* of an int or bool (0 otherwise) */
bool jv_truthy(jinja_value v);               /* Python's bool() */
bool jv_equal(jinja_value a, jinja_value b); /* Python's == */
/* Appends str(v), or repr(v) when repr is set, to b. */
void jv_to_text(jinja_value v, bool repr, tok_buf *b);
/* str(v) as a string value (v itself when it is one). */
jinja_value jv_str(jinja_eval *e, jinja_value v);

/* Code points of valid UTF-8: their count, the byte offset of index k, the one at byte i (and
 * its length; U+FFFD for a bad byte). */
size_t jv_utf8_count(const char *s, size_t len);
size_t jv_utf8_offset(const char *s, size_t len, size_t k);
uint32_t jv_cp_at(const char *s, size_t len, size_t i, size_t *cl);

/* Python's str.strip / lstrip / rstrip (chars NULL: whitespace), upper (mode 1) / lower (0),
 * concatenation, replace (count < 0: all) and split (sep NULL: runs of whitespace). */
jinja_value jv_strip(jinja_eval *e, jinja_value v, bool left, bool right, const jinja_value *chars);
jinja_value jv_case_map(jinja_eval *e, jinja_value v, int mode);
jinja_value jv_concat(jinja_eval *e, jinja_value a, jinja_value b);
jinja_value jv_replace(jinja_eval *e, jinja_value s, jinja_value old, jinja_value new,
                       int64_t count);
jinja_value jv_split(jinja_eval *e, jinja_value s, const jinja_value *sep, int64_t maxsplit);

/* json.dumps(v, ensure_ascii=False, indent=indent or None when negative) appended to b. */
bool jv_to_json(jinja_eval *e, jinja_value v, int indent, int level, tok_buf *b, size_t offset);

/* obj[start:stop:step] of a list, tuple or string (bounds may be none). */
jinja_value jv_slice(jinja_eval *e, jinja_value obj, const jinja_value *start,
                     const jinja_value *stop, const jinja_value *step, size_t offset);

/* a op b for + - * / // % ** (JOP_*). */
jinja_value jv_arith(jinja_eval *e, int op, jinja_value a, jinja_value b, size_t offset);
/* The order of a and b (-1, 0, 1) for < <= > >=; *ok false after an error. */
int jv_compare(jinja_eval *e, jinja_value a, jinja_value b, int op, size_t offset, bool *ok);
/* item in container into *result; false after an error. */
bool jv_contains(jinja_eval *e, jinja_value item, jinja_value container, size_t offset,
                 bool *result);
/* The error for an undefined a or b used with op. */
jinja_value jv_undefined_error(jinja_eval *e, jinja_value a, jinja_value b, int op, size_t offset);

#endif
