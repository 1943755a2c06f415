/* Loading the contracts of contracts/ (docs/contracts.md) and the queries on them: roles and
 * their names in the three spellings, families, expression values and expected shapes.
 * Not for: checking a model (contract_rules.c) or the expression parser (contract_expr.c). */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "contract_internal.h"
#include "hf_internal.h"

/* Contract files are small; anything larger is a mistake, not a contract. */
#define CONTRACT_FILE_MAX (UINT64_C(4) << 20)
#define MAX_FAMILIES      256
#define JPATH_MAX         256

static const char *const NAMING_KEYS[RF_NAMING_COUNT] = {"hf", "gguf", "apr"};
static const char *const KIND_NAMES[QUALITY_KINDS] = {"embedding", "head", "weight",
                                                      "norm",      "bias", "unknown"};

/* ---- arena --------------------------------------------------------------------------------- */

void *rfi_contract_arena_keep(arena *a, void *p)
{
    if (!p)
        return NULL;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        void **blocks = realloc(a->blocks, cap * sizeof *blocks);
        if (!blocks) {
            free(p);
            return NULL;
        }
        a->blocks = blocks;
        a->cap = cap;
    }
    a->blocks[a->n++] = p;
    return p;
}

static void *arena_calloc(arena *a, size_t n, size_t size)
{
    return rfi_contract_arena_keep(a, calloc(n ? n : 1, size));
}

char *rfi_contract_arena_strdup(arena *a, const char *s)
{
    return rfi_contract_arena_keep(a, strdup(s));
}

void rfi_contract_arena_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->blocks[i]);
    free(a->blocks);
    a->blocks = NULL;
    a->n = a->cap = 0;
}

/* ---- where the contracts are ------------------------------------------------------------- */

static bool holds_contracts(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/tensor-layout.json", dir);
    return n > 0 && (size_t)n < sizeof path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory of the file that holds this code: the shared library, or the program it is
 * linked into. */
static bool code_dir(char *out, size_t size)
{
    Dl_info info;
    char resolved[PATH_MAX];
    const char *file = NULL;
    if (dladdr((void *)&rf_contracts_locate, &info) && info.dli_fname && info.dli_fname[0] &&
        realpath(info.dli_fname, resolved))
        file = resolved;
    else if (realpath("/proc/self/exe", resolved))
        file = resolved;
    if (!file)
        return false;
    const char *slash = strrchr(file, '/');
    if (!slash || (size_t)(slash - file) >= size)
        return false;
    memcpy(out, file, (size_t)(slash - file));
    out[slash - file] = '\0';
    return true;
}

static rf_status copy_dir(char *out, size_t out_size, const char *dir, rf_error *err)
{
    int n = snprintf(out, out_size, "%s", dir);
    if (n < 0 || (size_t)n >= out_size)
        return rf_error_set(err, RF_ERR_LIMIT, "contracts directory path '%s' is too long", dir);
    return RF_OK;
}

rf_status rf_contracts_locate(char *out, size_t out_size, rf_error *err)
{
    if (!out || out_size == 0)
        return rf_error_set(err, RF_ERR_ARGUMENT, "no output buffer");
    const char *env = getenv(RF_CONTRACTS_ENV);
    if (env && env[0]) {
        if (!holds_contracts(env))
            return rf_error_set(err, RF_ERR_NOT_FOUND,
                                "%s=%s: no tensor-layout.json in that directory", RF_CONTRACTS_ENV,
                                env);
        return copy_dir(out, out_size, env, err);
    }
    char tried[4][PATH_MAX];
    size_t n_tried = 0;
    char here[PATH_MAX];
    if (code_dir(here, sizeof here)) {
        /* installed layout: <prefix>/bin/apr-x or <prefix>/lib/librosetta-format.so */
        static const char *const rel[] = {ROSETTA_CONTRACTS_REL_BIN, ROSETTA_CONTRACTS_REL_LIB};
        for (size_t i = 0; i < 2; i++) {
            if (i == 1 && strcmp(rel[0], rel[1]) == 0)
                break;
            int k = snprintf(tried[n_tried], PATH_MAX, "%s/%s", here, rel[i]);
            if (k < 0 || k >= PATH_MAX)
                continue;
            char resolved[PATH_MAX];
            if (holds_contracts(tried[n_tried]))
                return copy_dir(out, out_size,
                                realpath(tried[n_tried], resolved) ? resolved : tried[n_tried],
                                err);
            n_tried++;
        }
    }
    static const char *const fixed[] = {ROSETTA_CONTRACTS_SOURCE_DIR,
                                        ROSETTA_CONTRACTS_INSTALL_DIR};
    for (size_t i = 0; i < 2; i++) {
        if (holds_contracts(fixed[i]))
            return copy_dir(out, out_size, fixed[i], err);
        snprintf(tried[n_tried++], PATH_MAX, "%s", fixed[i]);
    }
    char list[4 * PATH_MAX + 16] = "";
    size_t used = 0;
    for (size_t i = 0; i < n_tried && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", tried[i]);
    return rf_error_set(err, RF_ERR_NOT_FOUND,
                        "no contracts found (looked for tensor-layout.json in %s); set %s or "
                        "pass --contracts DIR",
                        list, RF_CONTRACTS_ENV);
}

/* ---- JSON with paths ------------------------------------------------------------------------ */

/* The file being loaded and the JSON path of the value at hand, for messages. */
typedef struct loader {
    rf_contracts *c;
    const char *file;
    char path[JPATH_MAX];
    rf_error *err;
} loader;

static size_t path_push_key(loader *ld, const char *key)
{
    size_t len = strlen(ld->path);
    snprintf(ld->path + len, sizeof ld->path - len, ".%s", key);
    return len;
}

static size_t path_push_index(loader *ld, size_t index)
{
    size_t len = strlen(ld->path);
    snprintf(ld->path + len, sizeof ld->path - len, "[%zu]", index);
    return len;
}

static void path_pop(loader *ld, size_t len) { ld->path[len] = '\0'; }

static rf_status bad(loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static rf_status bad(loader *ld, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return rf_error_set(ld->err, RF_ERR_FORMAT, "%s: %s: %s", ld->file, ld->path, what);
}

static rf_status bad_kind(loader *ld, const cJSON *item, const char *expected)
{
    return bad(ld, "expected %s, found %s", expected, rfi_hf_json_kind(item));
}

/* Every member of obj must be one of keys (a NULL-terminated list): typos are errors. */
static rf_status only_keys(loader *ld, const cJSON *obj, const char *const *keys)
{
    for (const cJSON *m = obj->child; m; m = m->next) {
        bool ok = false;
        for (size_t i = 0; keys[i] && !ok; i++)
            ok = strcmp(m->string, keys[i]) == 0;
        if (!ok) {
            size_t mark = path_push_key(ld, m->string);
            rf_status st = bad(ld, "unknown key (the schema in docs/contracts.md lists the keys)");
            path_pop(ld, mark);
            return st;
        }
    }
    return RF_OK;
}

/* A required (or optional, when out may stay NULL) string member, copied into the arena. */
static rf_status get_string(loader *ld, const cJSON *obj, const char *key, bool required,
                            const char **out)
{
    const cJSON *item = rfi_hf_json_get(obj, key);
    *out = NULL;
    if (!item && !required)
        return RF_OK;
    size_t mark = path_push_key(ld, key);
    rf_status st = RF_OK;
    if (!cJSON_IsString(item))
        st = bad_kind(ld, item, "a string");
    else if (!item->valuestring[0])
        st = bad(ld, "expected a non-empty string");
    else if (!(*out = rfi_contract_arena_strdup(&ld->c->mem, item->valuestring)))
        st = rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
    path_pop(ld, mark);
    return st;
}

static rf_status get_bool(loader *ld, const cJSON *obj, const char *key, bool required, bool *out)
{
    const cJSON *item = rfi_hf_json_get(obj, key);
    if (!item && !required)
        return RF_OK;
    size_t mark = path_push_key(ld, key);
    rf_status st = RF_OK;
    if (!cJSON_IsBool(item))
        st = bad_kind(ld, item, "true or false");
    else
        *out = cJSON_IsTrue(item);
    path_pop(ld, mark);
    return st;
}

/* A whole number in [min, 2^53] (cJSON holds numbers as doubles). */
static rf_status item_u64(loader *ld, const cJSON *item, uint64_t min, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return bad_kind(ld, item, "an integer");
    double v = item->valuedouble;
    if (!(v >= (double)min && v <= 9007199254740992.0) || v != floor(v))
        return bad(ld, "expected an integer >= %" PRIu64 " (at most 2^53), found %.17g", min, v);
    *out = (uint64_t)v;
    return RF_OK;
}

static rf_status get_u64(loader *ld, const cJSON *obj, const char *key, bool required, uint64_t min,
                         uint64_t *out)
{
    const cJSON *item = rfi_hf_json_get(obj, key);
    if (!item && !required)
        return RF_OK;
    size_t mark = path_push_key(ld, key);
    rf_status st = item_u64(ld, item, min, out);
    path_pop(ld, mark);
    return st;
}

/* A finite number in the open interval (lo, hi). */
static rf_status get_real(loader *ld, const cJSON *obj, const char *key, bool required, double lo,
                          double hi, double *out)
{
    const cJSON *item = rfi_hf_json_get(obj, key);
    if (!item && !required)
        return RF_OK;
    size_t mark = path_push_key(ld, key);
    rf_status st = RF_OK;
    if (!cJSON_IsNumber(item))
        st = bad_kind(ld, item, "a number");
    else if (!(item->valuedouble > lo && item->valuedouble < hi))
        st = bad(ld, "expected a number in (%g, %g), found %.17g", lo, hi, item->valuedouble);
    else
        *out = item->valuedouble;
    path_pop(ld, mark);
    return st;
}

/* A fraction in (0, 1]. */
static rf_status get_fraction(loader *ld, const cJSON *obj, const char *key, double *out)
{
    const cJSON *item = rfi_hf_json_get(obj, key);
    size_t mark = path_push_key(ld, key);
    rf_status st = RF_OK;
    if (!cJSON_IsNumber(item))
        st = bad_kind(ld, item, "a number");
    else if (!(item->valuedouble > 0 && item->valuedouble <= 1))
        st = bad(ld, "expected a fraction in (0, 1], found %.17g", item->valuedouble);
    else
        *out = item->valuedouble;
    path_pop(ld, mark);
    return st;
}

/* The members of obj's array member key (required); *out NULL for an absent optional one. */
static rf_status get_array(loader *ld, const cJSON *obj, const char *key, bool required,
                           bool non_empty, const cJSON **out)
{
    const cJSON *item = rfi_hf_json_get(obj, key);
    *out = NULL;
    if (!item && !required)
        return RF_OK;
    size_t mark = path_push_key(ld, key);
    rf_status st = RF_OK;
    if (!cJSON_IsArray(item))
        st = bad_kind(ld, item, "an array");
    else if (non_empty && !item->child)
        st = bad(ld, "expected a non-empty array");
    else
        *out = item;
    path_pop(ld, mark);
    return st;
}

static rf_status get_object(loader *ld, const cJSON *obj, const char *key, bool required,
                            const cJSON **out)
{
    const cJSON *item = rfi_hf_json_get(obj, key);
    *out = NULL;
    if (!item && !required)
        return RF_OK;
    size_t mark = path_push_key(ld, key);
    rf_status st = RF_OK;
    if (!cJSON_IsObject(item))
        st = bad_kind(ld, item, "an object");
    else
        *out = item;
    path_pop(ld, mark);
    return st;
}

static rf_status check_schema(loader *ld, const cJSON *root, const char *schema)
{
    const char *found;
    rf_status st = get_string(ld, root, "schema", true, &found);
    if (st != RF_OK)
        return st;
    if (strcmp(found, schema) != 0) {
        size_t mark = path_push_key(ld, "schema");
        st = bad(ld, "expected \"%s\", found \"%s\"", schema, found);
        path_pop(ld, mark);
    }
    return st;
}

/* Reads and parses one file (strict JSON, duplicate keys refused). */
static cJSON *load_json(loader *ld, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        rf_error_set(ld->err, errno == ENOENT ? RF_ERR_NOT_FOUND : RF_ERR_IO, "%s: %s", path,
                     strerror(errno));
        return NULL;
    }
    char *text = malloc(CONTRACT_FILE_MAX + 1);
    size_t len = text ? fread(text, 1, CONTRACT_FILE_MAX + 1, f) : 0;
    bool read_error = ferror(f);
    fclose(f);
    cJSON *root = NULL;
    if (!text)
        rf_error_set(ld->err, RF_ERR_NOMEM, "%s: out of memory", path);
    else if (read_error)
        rf_error_set(ld->err, RF_ERR_IO, "%s: read error", path);
    else if (len > CONTRACT_FILE_MAX)
        rf_error_set(ld->err, RF_ERR_LIMIT, "%s: larger than %" PRIu64 " bytes", path,
                     CONTRACT_FILE_MAX);
    else
        root = rfi_hf_json_parse_object(path, text, len, ld->err);
    free(text);
    return root;
}

/* ---- tensor-layout.json ------------------------------------------------------------------- */

static bool is_identifier(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

static bool is_flag(const rf_contracts *c, const char *name, size_t len, size_t *index)
{
    for (size_t i = 0; i < c->n_flags; i++)
        if (strlen(c->flags[i]) == len && memcmp(c->flags[i], name, len) == 0) {
            if (index)
                *index = i;
            return true;
        }
    return false;
}

static bool known_shape_ident(void *ctx, const char *name, size_t len)
{
    (void)ctx;
    return rfi_contract_is_config_ident(name, len);
}

static bool known_condition_ident(void *ctx, const char *name, size_t len)
{
    return rfi_contract_is_config_ident(name, len) || is_flag(ctx, name, len, NULL);
}

/* An expression member: a string checked against the identifiers, or an integer. */
static rf_status get_expr(loader *ld, const cJSON *item, bool condition, const char **out)
{
    if (cJSON_IsNumber(item)) {
        uint64_t v = 0;
        rf_status st = item_u64(ld, item, 0, &v);
        if (st != RF_OK)
            return st;
        char text[32];
        snprintf(text, sizeof text, "%" PRIu64, v);
        *out = rfi_contract_arena_strdup(&ld->c->mem, text);
    } else if (cJSON_IsString(item)) {
        rf_error sub;
        if (rfi_contract_expr_check(item->valuestring,
                                    condition ? known_condition_ident : known_shape_ident, ld->c,
                                    &sub) != RF_OK)
            return bad(ld, "%s", sub.message);
        *out = rfi_contract_arena_strdup(&ld->c->mem, item->valuestring);
    } else {
        return bad_kind(ld, item, "an expression string or an integer");
    }
    return *out ? RF_OK : rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
}

static rf_status parse_pattern(loader *ld, rf_role *role, rf_naming naming, const char *text)
{
    name_pattern *p = &role->names[naming];
    const char *ph = ld->c->placeholder;
    const char *at = strstr(text, ph);
    p->text = text;
    if (!role->per_layer) {
        if (at)
            return bad(ld, "a whole-model role's name must not contain %s", ph);
        p->prefix = text;
        p->prefix_len = strlen(text);
        return RF_OK;
    }
    if (!at)
        return bad(ld, "a per-layer role's name must contain %s", ph);
    if (strstr(at + strlen(ph), ph))
        return bad(ld, "%s must appear once", ph);
    p->prefix = text;
    p->prefix_len = (size_t)(at - text);
    p->suffix = at + strlen(ph);
    p->suffix_len = strlen(p->suffix);
    /* a layer number must be delimited, or "blk.1" + "2.x" could read as layer 12 */
    if (p->suffix_len == 0 || isdigit((unsigned char)p->suffix[0]) ||
        (p->prefix_len > 0 && isdigit((unsigned char)text[p->prefix_len - 1])))
        return bad(ld, "%s must sit between non-digit characters", ph);
    return RF_OK;
}

static rf_status parse_role(loader *ld, const cJSON *obj, rf_role *role)
{
    static const char *const keys[] = {
        "role",        "scope",      "names",         "shape",      "vector", "kind", "critical",
        "required_if", "allowed_if", "presence_rule", "shape_rule", "note",   NULL};
    if (!cJSON_IsObject(obj))
        return bad_kind(ld, obj, "an object");
    rf_status st = only_keys(ld, obj, keys);
    const char *scope = NULL, *kind = NULL, *shape_rule = NULL, *presence_rule = NULL;
    if (st == RF_OK)
        st = get_string(ld, obj, "role", true, &role->id);
    if (st == RF_OK && !is_identifier(role->id)) {
        size_t mark = path_push_key(ld, "role");
        st = bad(ld, "expected an identifier ([A-Za-z_][A-Za-z0-9_]*), found \"%s\"", role->id);
        path_pop(ld, mark);
    }
    if (st == RF_OK)
        st = get_string(ld, obj, "scope", true, &scope);
    if (st == RF_OK) {
        role->per_layer = strcmp(scope, "layer") == 0;
        if (!role->per_layer && strcmp(scope, "model") != 0) {
            size_t mark = path_push_key(ld, "scope");
            st = bad(ld, "expected \"model\" or \"layer\", found \"%s\"", scope);
            path_pop(ld, mark);
        }
    }
    const cJSON *names = NULL;
    if (st == RF_OK)
        st = get_object(ld, obj, "names", true, &names);
    if (st == RF_OK) {
        size_t mark = path_push_key(ld, "names");
        static const char *const naming_keys[] = {"hf", "gguf", "apr", NULL};
        st = only_keys(ld, names, naming_keys);
        for (int n = 0; n < RF_NAMING_COUNT && st == RF_OK; n++) {
            const char *text;
            st = get_string(ld, names, NAMING_KEYS[n], true, &text);
            if (st == RF_OK) {
                size_t inner = path_push_key(ld, NAMING_KEYS[n]);
                st = parse_pattern(ld, role, (rf_naming)n, text);
                path_pop(ld, inner);
            }
        }
        path_pop(ld, mark);
    }
    const cJSON *shape = NULL;
    if (st == RF_OK)
        st = get_array(ld, obj, "shape", true, true, &shape);
    if (st == RF_OK) {
        size_t mark = path_push_key(ld, "shape");
        int n = cJSON_GetArraySize(shape);
        if (n > RF_MAX_DIMS)
            st = bad(ld, "expected at most %d dimensions, found %d", RF_MAX_DIMS, n);
        role->ndim = 0;
        for (const cJSON *d = shape->child; d && st == RF_OK; d = d->next) {
            size_t inner = path_push_index(ld, (size_t)role->ndim);
            st = get_expr(ld, d, false, &role->dims[role->ndim]);
            role->ndim++;
            path_pop(ld, inner);
        }
        path_pop(ld, mark);
    }
    bool vector = false;
    if (st == RF_OK)
        st = get_bool(ld, obj, "vector", true, &vector);
    if (st == RF_OK && vector != (role->ndim == 1)) {
        size_t mark = path_push_key(ld, "vector");
        st = bad(ld, "is %s but the shape has %d dimension%s", vector ? "true" : "false",
                 role->ndim, role->ndim == 1 ? "" : "s");
        path_pop(ld, mark);
    }
    if (st == RF_OK)
        st = get_string(ld, obj, "kind", true, &kind);
    if (st == RF_OK) {
        bool found = false;
        for (int k = 0; k < QUALITY_KIND_UNKNOWN && !found; k++)
            if (strcmp(kind, KIND_NAMES[k]) == 0) {
                role->kind = (rf_role_kind)k;
                found = true;
            }
        if (!found) {
            size_t mark = path_push_key(ld, "kind");
            st = bad(ld, "expected embedding, head, weight, norm or bias, found \"%s\"", kind);
            path_pop(ld, mark);
        }
    }
    if (st == RF_OK)
        st = get_bool(ld, obj, "critical", true, &role->critical);
    static const char *const cond_keys[2] = {"required_if", "allowed_if"};
    const char **conds[2] = {&role->required_if, &role->allowed_if};
    for (int i = 0; i < 2 && st == RF_OK; i++) {
        const cJSON *item = rfi_hf_json_get(obj, cond_keys[i]);
        *conds[i] = "1";
        if (!item)
            continue;
        size_t mark = path_push_key(ld, cond_keys[i]);
        st = cJSON_IsString(item) ? get_expr(ld, item, true, conds[i])
                                  : bad_kind(ld, item, "an expression string");
        path_pop(ld, mark);
    }
    role->shape_rule = RULE_LAYOUT_SHAPE;
    role->presence_rule = -1;
    if (st == RF_OK)
        st = get_string(ld, obj, "shape_rule", false, &shape_rule);
    if (st == RF_OK && shape_rule) {
        int r = rfi_contract_rule_index(shape_rule);
        if (r != RULE_LAYOUT_SHAPE && r != RULE_LAYOUT_EMBEDDING_SHAPE &&
            r != RULE_LAYOUT_LM_HEAD_SHAPE) {
            size_t mark = path_push_key(ld, "shape_rule");
            st = bad(ld,
                     "expected layout.shape, layout.embedding_shape or layout.lm_head_shape, "
                     "found \"%s\"",
                     shape_rule);
            path_pop(ld, mark);
        } else {
            role->shape_rule = (rule_index)r;
        }
    }
    if (st == RF_OK)
        st = get_string(ld, obj, "presence_rule", false, &presence_rule);
    if (st == RF_OK && presence_rule) {
        int r = rfi_contract_rule_index(presence_rule);
        if (r != RULE_LAYOUT_BIAS) {
            size_t mark = path_push_key(ld, "presence_rule");
            st = bad(ld, "expected layout.bias_presence, found \"%s\"", presence_rule);
            path_pop(ld, mark);
        } else {
            role->presence_rule = r;
        }
    }
    return st;
}

/* No two roles may share an id or a spelling: a name must map to one role. */
static rf_status check_roles_unique(loader *ld)
{
    const rf_contracts *c = ld->c;
    for (size_t i = 0; i < c->n_roles; i++)
        for (size_t j = 0; j < i; j++) {
            const rf_role *a = &c->roles[i], *b = &c->roles[j];
            if (strcmp(a->id, b->id) == 0) {
                snprintf(ld->path, sizeof ld->path, "$.roles[%zu].role", i);
                return bad(ld, "\"%s\" is also the id of $.roles[%zu]", a->id, j);
            }
            for (int n = 0; n < RF_NAMING_COUNT; n++)
                for (int m = 0; m < RF_NAMING_COUNT; m++)
                    if (strcmp(a->names[n].text, b->names[m].text) == 0) {
                        snprintf(ld->path, sizeof ld->path, "$.roles[%zu].names.%s", i,
                                 NAMING_KEYS[n]);
                        return bad(ld, "\"%s\" is also a name of role %s", a->names[n].text, b->id);
                    }
        }
    return RF_OK;
}

static rf_status parse_layout(loader *ld, const cJSON *root)
{
    static const char *const keys[] = {"schema", "description", "layer_placeholder",
                                       "flags",  "roles",       NULL};
    rf_contracts *c = ld->c;
    rf_status st = only_keys(ld, root, keys);
    if (st == RF_OK)
        st = check_schema(ld, root, "rosetta.tensor-layout/1");
    if (st == RF_OK)
        st = get_string(ld, root, "layer_placeholder", true, &c->placeholder);
    const cJSON *flags = NULL, *roles = NULL;
    if (st == RF_OK)
        st = get_array(ld, root, "flags", false, false, &flags);
    size_t index = 0;
    for (const cJSON *f = flags ? flags->child : NULL; f && st == RF_OK; f = f->next, index++) {
        size_t mark = path_push_key(ld, "flags");
        path_push_index(ld, index);
        if (!cJSON_IsString(f) || !is_identifier(f->valuestring))
            st = bad(ld, "expected an identifier string, found %s", rfi_hf_json_kind(f));
        else if (rfi_contract_is_config_ident(f->valuestring, strlen(f->valuestring)) ||
                 is_flag(c, f->valuestring, strlen(f->valuestring), NULL))
            st = bad(ld, "\"%s\" is already a config value or a flag", f->valuestring);
        else if (c->n_flags == CONTRACT_MAX_FLAGS)
            st = bad(ld, "more than %d flags", CONTRACT_MAX_FLAGS);
        else if (!(c->flags[c->n_flags++] = rfi_contract_arena_strdup(&c->mem, f->valuestring)))
            st = rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
        path_pop(ld, mark);
    }
    if (st == RF_OK)
        st = get_array(ld, root, "roles", true, true, &roles);
    if (st != RF_OK)
        return st;
    c->n_roles = (size_t)cJSON_GetArraySize(roles);
    c->roles = arena_calloc(&c->mem, c->n_roles, sizeof *c->roles);
    if (!c->roles)
        return rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
    index = 0;
    for (const cJSON *r = roles->child; r && st == RF_OK; r = r->next, index++) {
        size_t mark = path_push_key(ld, "roles");
        path_push_index(ld, index);
        st = parse_role(ld, r, &c->roles[index]);
        path_pop(ld, mark);
    }
    return st == RF_OK ? check_roles_unique(ld) : st;
}

/* ---- families/<name>.json ------------------------------------------------------------------ */

static rf_status parse_string_list(loader *ld, const cJSON *arr, rf_family *f)
{
    size_t index = 0;
    for (const cJSON *s = arr->child; s; s = s->next, index++) {
        size_t mark = path_push_index(ld, index);
        rf_status st = RF_OK;
        if (!cJSON_IsString(s) || !s->valuestring[0])
            st = bad_kind(ld, s, "a non-empty string");
        else if (!(f->arch_names[f->n_arch_names++] =
                       rfi_contract_arena_strdup(&ld->c->mem, s->valuestring)))
            st = rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
        path_pop(ld, mark);
        if (st != RF_OK)
            return st;
    }
    return RF_OK;
}

static rf_status parse_architectures(loader *ld, const cJSON *obj, rf_family *f)
{
    static const char *const keys[] = {"hf_class", "hf_model_type", "gguf", "apr", NULL};
    rf_status st = only_keys(ld, obj, keys);
    size_t total = 0;
    for (const cJSON *m = obj->child; m; m = m->next)
        total += cJSON_IsArray(m) ? (size_t)cJSON_GetArraySize(m) : 0;
    f->arch_names = arena_calloc(&ld->c->mem, total, sizeof *f->arch_names);
    if (!f->arch_names)
        return rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; keys[i] && st == RF_OK; i++) {
        const cJSON *arr;
        st = get_array(ld, obj, keys[i], false, true, &arr);
        if (st == RF_OK && arr) {
            size_t mark = path_push_key(ld, keys[i]);
            st = parse_string_list(ld, arr, f);
            path_pop(ld, mark);
        }
    }
    if (st == RF_OK && f->n_arch_names == 0)
        st = bad(ld, "expected at least one architecture name");
    return st;
}

static rf_status parse_constraints(loader *ld, const cJSON *obj, rf_family *f)
{
    rf_contracts *c = ld->c;
    f->n_constraints = 0;
    f->constraints = arena_calloc(&c->mem, (size_t)cJSON_GetArraySize(obj), sizeof(key_text));
    if (!f->constraints)
        return rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < CONTRACT_MAX_FLAGS; i++)
        f->flags[i] = -1;
    for (const cJSON *m = obj->child; m; m = m->next) {
        size_t mark = path_push_key(ld, m->string);
        size_t flag;
        bool flagged = is_flag(c, m->string, strlen(m->string), &flag);
        rf_status st = RF_OK;
        key_text *kt = &f->constraints[f->n_constraints++];
        kt->key = rfi_contract_arena_strdup(&c->mem, m->string);
        if (flagged && !cJSON_IsBool(m))
            st = bad(ld, "is a flag of tensor-layout.json: expected true or false, found %s",
                     rfi_hf_json_kind(m));
        else if (cJSON_IsBool(m)) {
            kt->text = cJSON_IsTrue(m) ? "true" : "false";
            if (flagged)
                f->flags[flag] = cJSON_IsTrue(m) ? 1 : 0;
        } else if (cJSON_IsString(m) && m->valuestring[0]) {
            kt->text = rfi_contract_arena_strdup(&c->mem, m->valuestring);
        } else {
            st = bad_kind(ld, m, "a non-empty string or a boolean");
        }
        if (st == RF_OK && (!kt->key || !kt->text))
            st = rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
        if (st == RF_OK && strcmp(m->string, "rope_type") == 0) {
            if (strcmp(kt->text, "neox") == 0)
                f->rope_type = RF_ROPE_NEOX;
            else if (strcmp(kt->text, "norm") == 0)
                f->rope_type = RF_ROPE_NORM;
            else
                st = bad(ld, "expected \"neox\" or \"norm\", found \"%s\"", kt->text);
        }
        path_pop(ld, mark);
        if (st != RF_OK)
            return st;
    }
    for (size_t i = 0; i < c->n_flags; i++)
        if (f->flags[i] < 0)
            return bad(ld, "the flag \"%s\" of tensor-layout.json is not given", c->flags[i]);
    return RF_OK;
}

static rf_status parse_size(loader *ld, const cJSON *obj, rf_family *f, rf_family_size *s)
{
    static const char *const keys[] = {
        "name",         "hidden_size",         "num_layers", "num_heads",      "num_kv_heads",
        "head_dim",     "intermediate_size",   "vocab_size", "context_length", "rope_theta",
        "rms_norm_eps", "tie_word_embeddings", "parameters", "tensors",        NULL};
    if (!cJSON_IsObject(obj))
        return bad_kind(ld, obj, "an object");
    rf_model_config *cfg = &s->config;
    memset(cfg, 0, sizeof *cfg);
    cfg->architecture = f->name;
    cfg->tie_word_embeddings = -1;
    cfg->bos_token_id = cfg->eos_token_id = cfg->pad_token_id = -1;
    cfg->rope_type = f->rope_type;
    rf_status st = only_keys(ld, obj, keys);
    if (st == RF_OK)
        st = get_string(ld, obj, "name", true, &s->name);
    struct {
        const char *key;
        uint64_t *field;
    } ints[] = {{"hidden_size", &cfg->hidden_size}, {"num_layers", &cfg->n_layers},
                {"num_heads", &cfg->n_heads},       {"num_kv_heads", &cfg->n_kv_heads},
                {"head_dim", &cfg->head_dim},       {"intermediate_size", &cfg->intermediate_size},
                {"vocab_size", &cfg->vocab_size},   {"context_length", &cfg->context_length}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && st == RF_OK; i++)
        st = get_u64(ld, obj, ints[i].key, true, 1, ints[i].field);
    if (st == RF_OK)
        st = get_real(ld, obj, "rope_theta", true, 0, INFINITY, &cfg->rope_theta);
    if (st == RF_OK)
        st = get_real(ld, obj, "rms_norm_eps", true, 0, 1, &cfg->rms_norm_eps);
    bool tie = false;
    if (st == RF_OK)
        st = get_bool(ld, obj, "tie_word_embeddings", true, &tie);
    cfg->tie_word_embeddings = tie ? 1 : 0;
    if (st == RF_OK)
        st = get_u64(ld, obj, "parameters", false, 1, &s->parameters);
    if (st == RF_OK)
        st = get_u64(ld, obj, "tensors", false, 1, &s->n_tensors);
    return st;
}

static rf_status parse_token(loader *ld, const cJSON *obj, family_token *t)
{
    static const char *const keys[] = {"id", "text", NULL};
    if (!cJSON_IsObject(obj))
        return bad_kind(ld, obj, "an object");
    rf_status st = only_keys(ld, obj, keys);
    uint64_t id = 0;
    if (st == RF_OK)
        st = get_u64(ld, obj, "id", true, 0, &id);
    if (st == RF_OK)
        st = get_string(ld, obj, "text", true, &t->text);
    t->id = (int64_t)id;
    return st;
}

static rf_status parse_tokens(loader *ld, const cJSON *obj, rf_family *f)
{
    static const char *const keys[] = {"bos", "eos", "pad", "add_bos_token", "stop", "added", NULL};
    static const char *const special[] = {"bos", "eos", "pad"};
    rf_status st = only_keys(ld, obj, keys);
    f->tokens = arena_calloc(&ld->c->mem, 3, sizeof *f->tokens);
    if (!f->tokens)
        return rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < 3 && st == RF_OK; i++) {
        const cJSON *item = rfi_hf_json_get(obj, special[i]);
        if (!item)
            continue;
        size_t mark = path_push_key(ld, special[i]);
        family_token *t = &f->tokens[f->n_tokens++];
        t->which = special[i];
        st = parse_token(ld, item, t);
        path_pop(ld, mark);
    }
    bool add_bos;
    if (st == RF_OK)
        st = get_bool(ld, obj, "add_bos_token", false, &add_bos);
    const cJSON *stop = NULL, *added = NULL;
    if (st == RF_OK)
        st = get_array(ld, obj, "stop", false, false, &stop);
    size_t index = 0;
    for (const cJSON *s = stop ? stop->child : NULL; s && st == RF_OK; s = s->next, index++) {
        size_t mark = path_push_key(ld, "stop");
        path_push_index(ld, index);
        uint64_t id;
        st = item_u64(ld, s, 0, &id);
        path_pop(ld, mark);
    }
    if (st == RF_OK)
        st = get_array(ld, obj, "added", false, false, &added);
    index = 0;
    for (const cJSON *a = added ? added->child : NULL; a && st == RF_OK; a = a->next, index++) {
        size_t mark = path_push_key(ld, "added");
        path_push_index(ld, index);
        family_token t;
        st = parse_token(ld, a, &t);
        path_pop(ld, mark);
    }
    return st;
}

static rf_status parse_chat(loader *ld, const cJSON *obj, rf_family *f)
{
    static const char *const keys[] = {"format", "message", "generation_prompt", "default_system",
                                       NULL};
    rf_status st = only_keys(ld, obj, keys);
    f->chat = arena_calloc(&ld->c->mem, 4, sizeof *f->chat);
    if (!f->chat)
        return rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; keys[i] && st == RF_OK; i++) {
        const char *text;
        st = get_string(ld, obj, keys[i], false, &text);
        if (st == RF_OK && text)
            f->chat[f->n_chat++] = (key_text){keys[i], text};
    }
    return st;
}

static rf_status parse_family(loader *ld, const cJSON *root, const char *stem, rf_family *f)
{
    static const char *const keys[] = {"schema",
                                       "family",
                                       "display_name",
                                       "description",
                                       "architectures",
                                       "apr_names_from_gguf",
                                       "constraints",
                                       "sizes",
                                       "tokens",
                                       "chat_template",
                                       NULL};
    rf_contracts *c = ld->c;
    f->owner = c;
    rf_status st = only_keys(ld, root, keys);
    if (st == RF_OK)
        st = check_schema(ld, root, "rosetta.family/1");
    if (st == RF_OK)
        st = get_string(ld, root, "family", true, &f->name);
    if (st == RF_OK && strcmp(f->name, stem) != 0) {
        size_t mark = path_push_key(ld, "family");
        st = bad(ld, "expected \"%s\" (the file name), found \"%s\"", stem, f->name);
        path_pop(ld, mark);
    }
    if (st == RF_OK)
        st = get_string(ld, root, "display_name", true, &f->display_name);
    const cJSON *obj = NULL;
    if (st == RF_OK)
        st = get_object(ld, root, "architectures", true, &obj);
    if (st == RF_OK) {
        size_t mark = path_push_key(ld, "architectures");
        st = parse_architectures(ld, obj, f);
        path_pop(ld, mark);
    }
    const char *apr = NULL;
    if (st == RF_OK)
        st = get_string(ld, root, "apr_names_from_gguf", true, &apr);
    if (st == RF_OK) {
        f->apr_map = strcmp(apr, "map") == 0;
        if (!f->apr_map && strcmp(apr, "keep") != 0) {
            size_t mark = path_push_key(ld, "apr_names_from_gguf");
            st = bad(ld, "expected \"map\" or \"keep\", found \"%s\"", apr);
            path_pop(ld, mark);
        }
    }
    if (st == RF_OK)
        st = get_object(ld, root, "constraints", true, &obj);
    if (st == RF_OK) {
        size_t mark = path_push_key(ld, "constraints");
        st = parse_constraints(ld, obj, f);
        path_pop(ld, mark);
    }
    const cJSON *sizes = NULL;
    if (st == RF_OK)
        st = get_array(ld, root, "sizes", true, false, &sizes);
    if (st == RF_OK) {
        f->n_sizes = (size_t)cJSON_GetArraySize(sizes);
        f->sizes = arena_calloc(&c->mem, f->n_sizes, sizeof *f->sizes);
        if (!f->sizes)
            st = rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
    }
    size_t index = 0;
    for (const cJSON *s = sizes ? sizes->child : NULL; s && st == RF_OK; s = s->next, index++) {
        size_t mark = path_push_key(ld, "sizes");
        path_push_index(ld, index);
        st = parse_size(ld, s, f, &f->sizes[index]);
        for (size_t j = 0; j < index && st == RF_OK; j++)
            if (strcmp(f->sizes[j].name, f->sizes[index].name) == 0)
                st = bad(ld, "the size name \"%s\" is also $.sizes[%zu]'s", f->sizes[j].name, j);
        path_pop(ld, mark);
    }
    if (st == RF_OK)
        st = get_object(ld, root, "tokens", false, &obj);
    if (st == RF_OK && obj) {
        size_t mark = path_push_key(ld, "tokens");
        st = parse_tokens(ld, obj, f);
        path_pop(ld, mark);
    }
    if (st == RF_OK)
        st = get_object(ld, root, "chat_template", false, &obj);
    if (st == RF_OK && obj) {
        size_t mark = path_push_key(ld, "chat_template");
        st = parse_chat(ld, obj, f);
        path_pop(ld, mark);
    }
    return st;
}

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static rf_status load_families(loader *ld, const char *dir)
{
    rf_contracts *c = ld->c;
    char fam_dir[PATH_MAX];
    int n = snprintf(fam_dir, sizeof fam_dir, "%s/families", dir);
    if (n < 0 || (size_t)n >= sizeof fam_dir)
        return rf_error_set(ld->err, RF_ERR_LIMIT, "%s/families: path too long", dir);
    DIR *d = opendir(fam_dir);
    if (!d)
        return rf_error_set(ld->err, errno == ENOENT ? RF_ERR_NOT_FOUND : RF_ERR_IO, "%s: %s",
                            fam_dir, strerror(errno));
    char *names[MAX_FAMILIES] = {0};
    size_t count = 0;
    rf_status st = RF_OK;
    for (struct dirent *e; (e = readdir(d)) && st == RF_OK;) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || e->d_name[0] == '.' || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (count == MAX_FAMILIES)
            st = rf_error_set(ld->err, RF_ERR_LIMIT, "%s: more than %d family files", fam_dir,
                              MAX_FAMILIES);
        else if (!(names[count++] = rfi_contract_arena_strdup(&c->mem, e->d_name)))
            st = rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
    }
    closedir(d);
    if (st != RF_OK)
        return st;
    /* sorted, so that the families' order does not depend on the file system */
    qsort(names, count, sizeof names[0], compare_names);
    c->families = arena_calloc(&c->mem, count, sizeof *c->families);
    if (!c->families)
        return rf_error_set(ld->err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < count && st == RF_OK; i++) {
        char path[PATH_MAX];
        int k = snprintf(path, sizeof path, "%s/%s", fam_dir, names[i]);
        if (k < 0 || (size_t)k >= sizeof path)
            return rf_error_set(ld->err, RF_ERR_LIMIT, "%s/%s: path too long", fam_dir, names[i]);
        names[i][strlen(names[i]) - 5] = '\0';
        loader sub = {c, path, "$", ld->err};
        cJSON *root = load_json(&sub, path);
        if (!root)
            return ld->err ? ld->err->status : RF_ERR_FORMAT;
        rf_family *f = &c->families[c->n_families++];
        st = parse_family(&sub, root, names[i], f);
        cJSON_Delete(root);
        /* an architecture name belongs to one family */
        for (size_t j = 0; j + 1 < c->n_families && st == RF_OK; j++)
            for (size_t a = 0; a < f->n_arch_names && st == RF_OK; a++)
                for (size_t b = 0; b < c->families[j].n_arch_names && st == RF_OK; b++)
                    if (ascii_ieq(f->arch_names[a], c->families[j].arch_names[b])) {
                        snprintf(sub.path, sizeof sub.path, "$.architectures");
                        st = bad(&sub, "\"%s\" is also an architecture of family %s",
                                 f->arch_names[a], c->families[j].name);
                    }
    }
    return st;
}

/* ---- quality.json ------------------------------------------------------------------------- */

static rf_status parse_kinds(loader *ld, const cJSON *arr, quality_rule *q)
{
    size_t index = 0;
    for (const cJSON *k = arr->child; k; k = k->next, index++) {
        size_t mark = path_push_index(ld, index);
        int found = -1;
        for (int i = 0; i < QUALITY_KINDS && cJSON_IsString(k); i++)
            if (strcmp(k->valuestring, KIND_NAMES[i]) == 0)
                found = i;
        rf_status st = RF_OK;
        if (found < 0)
            st = bad(ld, "expected embedding, head, weight, norm, bias or unknown");
        else
            q->applies[found] = true;
        path_pop(ld, mark);
        if (st != RF_OK)
            return st;
    }
    return RF_OK;
}

static rf_status parse_quality_rule(loader *ld, const cJSON *obj)
{
    if (!cJSON_IsObject(obj))
        return bad_kind(ld, obj, "an object");
    const char *id;
    rf_status st = get_string(ld, obj, "id", true, &id);
    if (st != RF_OK)
        return st;
    int r = rfi_contract_rule_index(id);
    if (r < 0 || rf_contract_rule((size_t)r)->rule_class != RF_RULE_QUALITY) {
        size_t mark = path_push_key(ld, "id");
        st = bad(ld, "\"%s\" is not a quality rule (docs/contracts.md lists them)", id);
        path_pop(ld, mark);
        return st;
    }
    quality_rule *q = &ld->c->quality[r];
    if (q->enabled) {
        size_t mark = path_push_key(ld, "id");
        st = bad(ld, "rule \"%s\" is given twice", id);
        path_pop(ld, mark);
        return st;
    }
    q->enabled = true;
    const cJSON *kinds = NULL;
    switch ((rule_index)r) {
    case RULE_QUALITY_ZERO_FRACTION: {
        static const char *const keys[] = {"id", "max_fraction", NULL};
        const cJSON *fr = NULL;
        if ((st = only_keys(ld, obj, keys)) == RF_OK)
            st = get_object(ld, obj, "max_fraction", true, &fr);
        if (st != RF_OK)
            return st;
        size_t mark = path_push_key(ld, "max_fraction");
        for (const cJSON *m = fr->child; m && st == RF_OK; m = m->next) {
            int found = -1;
            for (int i = 0; i < QUALITY_KINDS; i++)
                if (strcmp(m->string, KIND_NAMES[i]) == 0)
                    found = i;
            if (found < 0) {
                size_t inner = path_push_key(ld, m->string);
                st = bad(ld, "expected a tensor kind (embedding, head, weight, norm, bias, "
                             "unknown)");
                path_pop(ld, inner);
                break;
            }
            q->applies[found] = true;
            st = get_fraction(ld, fr, m->string, &q->max_fraction[found]);
        }
        path_pop(ld, mark);
        return st;
    }
    case RULE_QUALITY_NAN_INF: {
        static const char *const keys[] = {"id", "applies_to", "max_count", NULL};
        if ((st = only_keys(ld, obj, keys)) == RF_OK)
            st = get_u64(ld, obj, "max_count", true, 0, &q->max_count);
        break;
    }
    case RULE_QUALITY_L2: {
        static const char *const keys[] = {"id", "applies_to", "min", NULL};
        if ((st = only_keys(ld, obj, keys)) == RF_OK)
            st = get_real(ld, obj, "min", true, 0, INFINITY, &q->min);
        break;
    }
    case RULE_QUALITY_CONSTANT:
    case RULE_QUALITY_DEQUANTIZE: {
        static const char *const keys[] = {"id", "applies_to", NULL};
        st = only_keys(ld, obj, keys);
        break;
    }
    case RULE_QUALITY_SPOT_ROWS: {
        static const char *const keys[] = {"id", "applies_to", "at", "min_row_l2", NULL};
        const cJSON *at = NULL;
        if ((st = only_keys(ld, obj, keys)) == RF_OK)
            st = get_real(ld, obj, "min_row_l2", true, 0, INFINITY, &q->min_row_l2);
        if (st == RF_OK)
            st = get_array(ld, obj, "at", true, true, &at);
        size_t index = 0;
        for (const cJSON *a = at ? at->child : NULL; a && st == RF_OK; a = a->next, index++) {
            size_t mark = path_push_key(ld, "at");
            path_push_index(ld, index);
            if (index == sizeof q->at / sizeof q->at[0])
                st = bad(ld, "at most %zu rows", sizeof q->at / sizeof q->at[0]);
            else if (!cJSON_IsNumber(a) || !(a->valuedouble >= 0 && a->valuedouble < 1))
                st = bad(ld, "expected a fraction in [0, 1), found %s", rfi_hf_json_kind(a));
            else
                q->at[q->n_at++] = a->valuedouble;
            path_pop(ld, mark);
        }
        break;
    }
    case RULE_QUALITY_DEAD_ROWS: {
        static const char *const keys[] = {"id", "applies_to", "max_fraction", NULL};
        double max = 0;
        if ((st = only_keys(ld, obj, keys)) == RF_OK)
            st = get_fraction(ld, obj, "max_fraction", &max);
        for (int i = 0; i < QUALITY_KINDS; i++)
            q->max_fraction[i] = max;
        break;
    }
    case RULE_FAMILY_UNKNOWN:
    case RULE_CONFIG_MISSING:
    case RULE_CONFIG_RANGE:
    case RULE_CONFIG_GQA:
    case RULE_CONFIG_HEAD_DIM_EVEN:
    case RULE_CONFIG_ROPE:
    case RULE_VOCAB_SIZE:
    case RULE_VOCAB_SPECIAL:
    case RULE_LAYOUT_MISSING:
    case RULE_LAYOUT_EXTRA:
    case RULE_LAYOUT_DUPLICATE:
    case RULE_LAYOUT_UNKNOWN:
    case RULE_LAYOUT_SHAPE:
    case RULE_LAYOUT_EMBEDDING_SHAPE:
    case RULE_LAYOUT_LM_HEAD_SHAPE:
    case RULE_LAYOUT_BIAS:
    case RULE_COUNT: return bad(ld, "\"%s\" is not a quality rule", id);
    }
    if (st == RF_OK)
        st = get_array(ld, obj, "applies_to", true, true, &kinds);
    if (st == RF_OK) {
        size_t mark = path_push_key(ld, "applies_to");
        st = parse_kinds(ld, kinds, q);
        path_pop(ld, mark);
    }
    return st;
}

static rf_status parse_quality(loader *ld, const cJSON *root)
{
    static const char *const keys[] = {"schema", "description", "rules", NULL};
    rf_status st = only_keys(ld, root, keys);
    if (st == RF_OK)
        st = check_schema(ld, root, "rosetta.quality/1");
    const cJSON *rules = NULL;
    if (st == RF_OK)
        st = get_array(ld, root, "rules", true, false, &rules);
    size_t index = 0;
    for (const cJSON *r = rules ? rules->child : NULL; r && st == RF_OK; r = r->next, index++) {
        size_t mark = path_push_key(ld, "rules");
        path_push_index(ld, index);
        st = parse_quality_rule(ld, r);
        path_pop(ld, mark);
    }
    return st;
}

/* ---- loading -------------------------------------------------------------------------------- */

typedef rf_status (*file_parser)(loader *ld, const cJSON *root);

static rf_status load_file(rf_contracts *c, const char *dir, const char *name, file_parser parse,
                           rf_error *err)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return rf_error_set(err, RF_ERR_LIMIT, "%s/%s: path too long", dir, name);
    loader ld = {c, path, "$", err};
    cJSON *root = load_json(&ld, path);
    if (!root)
        return err ? err->status : RF_ERR_FORMAT;
    rf_status st = parse(&ld, root);
    cJSON_Delete(root);
    return st;
}

rf_contracts *rf_contracts_load(const char *dir, rf_error *err)
{
    char found[PATH_MAX];
    if (!dir) {
        if (rf_contracts_locate(found, sizeof found, err) != RF_OK)
            return NULL;
        dir = found;
    }
    struct stat st_dir;
    if (stat(dir, &st_dir) != 0 || !S_ISDIR(st_dir.st_mode)) {
        rf_error_set(err, RF_ERR_NOT_FOUND, "%s: not a contracts directory (%s)", dir,
                     stat(dir, &st_dir) != 0 ? strerror(errno) : "not a directory");
        return NULL;
    }
    rf_contracts *c = calloc(1, sizeof *c);
    if (!c) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    rf_status st = (c->dir = rfi_contract_arena_strdup(&c->mem, dir))
                       ? RF_OK
                       : rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    if (st == RF_OK)
        st = load_file(c, dir, "tensor-layout.json", parse_layout, err);
    if (st == RF_OK) {
        loader ld = {c, dir, "$", err};
        st = load_families(&ld, dir);
    }
    if (st == RF_OK)
        st = load_file(c, dir, "quality.json", parse_quality, err);
    if (st != RF_OK) {
        rf_contracts_free(c);
        return NULL;
    }
    return c;
}

void rf_contracts_free(rf_contracts *contracts)
{
    if (!contracts)
        return;
    rfi_contract_arena_free(&contracts->mem);
    free(contracts);
}

const char *rf_contracts_dir(const rf_contracts *contracts)
{
    return contracts ? contracts->dir : NULL;
}

/* ---- the process-wide default ---------------------------------------------------------------- */

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static rf_contracts *default_contracts;
static bool default_tried;
static rf_error default_error;

const rf_contracts *rf_contracts_default(rf_error *err)
{
    pthread_mutex_lock(&default_lock);
    if (!default_tried) {
        default_tried = true;
        rf_error_clear(&default_error);
        default_contracts = rf_contracts_load(NULL, &default_error);
    }
    const rf_contracts *c = default_contracts;
    if (!c && err)
        *err = default_error;
    pthread_mutex_unlock(&default_lock);
    return c;
}

rf_status rf_contracts_set_default(const char *dir, rf_error *err)
{
    if (!dir)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL contracts directory");
    rf_contracts *c = rf_contracts_load(dir, err);
    if (!c)
        return err ? err->status : RF_ERR_FORMAT;
    pthread_mutex_lock(&default_lock);
    rf_status st = RF_OK;
    if (default_tried && default_contracts) {
        st = rf_error_set(err, RF_ERR_ARGUMENT,
                          "the default contracts (%s) are already in use; set the directory "
                          "before anything uses them",
                          default_contracts->dir);
    } else {
        default_contracts = c;
        c = NULL;
        default_tried = true;
    }
    pthread_mutex_unlock(&default_lock);
    rf_contracts_free(c);
    return st;
}

/* ---- roles and names ----------------------------------------------------------------------- */

const char *rf_naming_key(rf_naming naming)
{
    return (unsigned)naming < RF_NAMING_COUNT ? NAMING_KEYS[naming] : "?";
}

const char *rf_role_kind_name(rf_role_kind kind)
{
    return (unsigned)kind < QUALITY_KIND_UNKNOWN ? KIND_NAMES[kind] : "?";
}

size_t rf_contracts_n_roles(const rf_contracts *contracts)
{
    return contracts ? contracts->n_roles : 0;
}

const rf_role *rf_contracts_role(const rf_contracts *contracts, size_t index)
{
    return contracts && index < contracts->n_roles ? &contracts->roles[index] : NULL;
}

const rf_role *rf_contracts_find_role(const rf_contracts *contracts, const char *id)
{
    for (size_t i = 0; contracts && id && i < contracts->n_roles; i++)
        if (strcmp(contracts->roles[i].id, id) == 0)
            return &contracts->roles[i];
    return NULL;
}

const char *rf_role_id(const rf_role *role) { return role ? role->id : NULL; }

const char *rf_role_pattern(const rf_role *role, rf_naming naming)
{
    return role && (unsigned)naming < RF_NAMING_COUNT ? role->names[naming].text : NULL;
}

bool rf_role_per_layer(const rf_role *role) { return role && role->per_layer; }
bool rf_role_critical(const rf_role *role) { return role && role->critical; }
rf_role_kind rf_role_kind_of(const rf_role *role) { return role ? role->kind : RF_ROLE_WEIGHT; }
int rf_role_ndim(const rf_role *role) { return role ? role->ndim : 0; }

const char *rf_role_dim_expr(const rf_role *role, int dim)
{
    return role && dim >= 0 && dim < role->ndim ? role->dims[dim] : NULL;
}

const char *rf_role_required_if(const rf_role *role) { return role ? role->required_if : NULL; }
const char *rf_role_allowed_if(const rf_role *role) { return role ? role->allowed_if : NULL; }

/* Whether name matches pattern; the layer for per-layer patterns. */
static bool match_pattern(const name_pattern *p, bool per_layer, const char *name, size_t len,
                          int64_t *layer)
{
    if (!per_layer) {
        *layer = -1;
        return len == p->prefix_len && memcmp(name, p->prefix, len) == 0;
    }
    if (len < p->prefix_len + 1 + p->suffix_len || memcmp(name, p->prefix, p->prefix_len) != 0 ||
        memcmp(name + len - p->suffix_len, p->suffix, p->suffix_len) != 0)
        return false;
    const char *d = name + p->prefix_len, *end = name + len - p->suffix_len;
    size_t digits = (size_t)(end - d);
    if (digits == 0 || digits > 9 || (digits > 1 && d[0] == '0'))
        return false;
    int64_t v = 0;
    for (; d < end; d++) {
        if (*d < '0' || *d > '9')
            return false;
        v = v * 10 + (*d - '0');
    }
    *layer = v;
    return true;
}

const rf_role *rf_contracts_role_of(const rf_contracts *contracts, const char *name, int64_t *layer,
                                    rf_naming *naming)
{
    if (!contracts || !name)
        return NULL;
    size_t len = strlen(name);
    for (int n = 0; n < RF_NAMING_COUNT; n++)
        for (size_t i = 0; i < contracts->n_roles; i++) {
            const rf_role *r = &contracts->roles[i];
            int64_t l;
            if (match_pattern(&r->names[n], r->per_layer, name, len, &l)) {
                if (layer)
                    *layer = l;
                if (naming)
                    *naming = (rf_naming)n;
                return r;
            }
        }
    return NULL;
}

rf_status rf_role_name(const rf_role *role, rf_naming naming, int64_t layer, char *out,
                       size_t out_size, rf_error *err)
{
    if (!role || (unsigned)naming >= RF_NAMING_COUNT || !out)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL role, bad naming or no output buffer");
    const name_pattern *p = &role->names[naming];
    int n;
    if (!role->per_layer) {
        n = snprintf(out, out_size, "%s", p->text);
    } else {
        if (layer < 0 || layer > 999999999)
            return rf_error_set(err, RF_ERR_ARGUMENT, "role %s: layer %" PRId64 " out of range",
                                role->id, layer);
        n = snprintf(out, out_size, "%.*s%" PRId64 "%s", (int)p->prefix_len, p->prefix, layer,
                     p->suffix);
    }
    if (n < 0 || (size_t)n >= out_size)
        return rf_error_set(err, RF_ERR_LIMIT, "role %s: name of %d bytes does not fit in %zu",
                            role->id, n, out_size);
    return RF_OK;
}

static rf_status pass_through(const char *name, char *out, size_t out_size, rf_status status,
                              rf_error *err)
{
    int n = snprintf(out, out_size, "%s", name);
    if (n < 0 || (size_t)n >= out_size)
        return rf_error_set(err, RF_ERR_LIMIT, "tensor name '%s' does not fit in %zu bytes", name,
                            out_size);
    if (status == RF_ERR_NOT_FOUND)
        return rf_error_set(err, RF_ERR_NOT_FOUND,
                            "tensor '%s' spells no role of tensor-layout.json", name);
    return RF_OK;
}

rf_status rf_contracts_map_name(const rf_contracts *contracts, const char *name, rf_naming to,
                                char *out, size_t out_size, rf_error *err)
{
    if (!contracts || !name || !out || out_size == 0)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL argument");
    int64_t layer;
    const rf_role *role = rf_contracts_role_of(contracts, name, &layer, NULL);
    if (!role)
        return pass_through(name, out, out_size, RF_ERR_NOT_FOUND, err);
    return rf_role_name(role, to, layer, out, out_size, err);
}

rf_status rf_contracts_apr_name(const rf_contracts *contracts, const char *name, const char *arch,
                                char *out, size_t out_size, rf_error *err)
{
    if (!contracts || !name || !out || out_size == 0)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL argument");
    const rf_family *f = rf_contracts_family_for(contracts, arch);
    int64_t layer;
    rf_naming naming;
    const rf_role *role = rf_contracts_role_of(contracts, name, &layer, &naming);
    if (f && f->apr_map && role && naming == RF_NAMING_GGUF)
        return rf_role_name(role, RF_NAMING_APR, layer, out, out_size, err);
    return pass_through(name, out, out_size, RF_OK, err);
}

/* ---- families ------------------------------------------------------------------------------- */

size_t rf_contracts_n_families(const rf_contracts *contracts)
{
    return contracts ? contracts->n_families : 0;
}

const rf_family *rf_contracts_family(const rf_contracts *contracts, size_t index)
{
    return contracts && index < contracts->n_families ? &contracts->families[index] : NULL;
}

const rf_family *rf_contracts_family_for(const rf_contracts *contracts, const char *architecture)
{
    for (size_t i = 0; contracts && architecture && i < contracts->n_families; i++)
        for (size_t a = 0; a < contracts->families[i].n_arch_names; a++)
            if (ascii_ieq(architecture, contracts->families[i].arch_names[a]))
                return &contracts->families[i];
    return NULL;
}

const char *rf_family_name(const rf_family *family) { return family ? family->name : NULL; }

const char *rf_family_display_name(const rf_family *family)
{
    return family ? family->display_name : NULL;
}

const char *rf_family_constraint(const rf_family *family, const char *key)
{
    for (size_t i = 0; family && key && i < family->n_constraints; i++)
        if (strcmp(family->constraints[i].key, key) == 0)
            return family->constraints[i].text;
    return NULL;
}

int rf_family_flag(const rf_family *family, const char *flag)
{
    size_t index;
    if (!family || !flag || !is_flag(family->owner, flag, strlen(flag), &index))
        return -1;
    return family->flags[index];
}

rf_rope_type rf_family_rope_type(const rf_family *family)
{
    return family ? family->rope_type : RF_ROPE_UNKNOWN;
}

bool rf_family_apr_maps_gguf_names(const rf_family *family) { return family && family->apr_map; }

size_t rf_family_n_sizes(const rf_family *family) { return family ? family->n_sizes : 0; }

const rf_family_size *rf_family_size_at(const rf_family *family, size_t index)
{
    return family && index < family->n_sizes ? &family->sizes[index] : NULL;
}

const rf_family_size *rf_family_match_size(const rf_family *family, const rf_model_config *config)
{
    for (size_t i = 0; family && config && i < family->n_sizes; i++) {
        const rf_model_config *s = &family->sizes[i].config;
        if (s->hidden_size == config->hidden_size && s->n_layers == config->n_layers &&
            s->n_heads == config->n_heads && s->n_kv_heads == config->n_kv_heads &&
            s->head_dim == config->head_dim && s->intermediate_size == config->intermediate_size &&
            s->vocab_size == config->vocab_size)
            return &family->sizes[i];
    }
    return NULL;
}

const char *rf_family_token(const rf_family *family, const char *which, int64_t *id)
{
    for (size_t i = 0; family && which && i < family->n_tokens; i++)
        if (strcmp(family->tokens[i].which, which) == 0) {
            if (id)
                *id = family->tokens[i].id;
            return family->tokens[i].text;
        }
    return NULL;
}

const char *rf_family_chat_template(const rf_family *family, const char *field)
{
    for (size_t i = 0; family && field && i < family->n_chat; i++)
        if (strcmp(family->chat[i].key, field) == 0)
            return family->chat[i].text;
    return NULL;
}

/* ---- expression values and shapes --------------------------------------------------------- */

static const char *const CONFIG_IDENTS[] = {
    "hidden_size",       "num_layers", "num_heads",      "num_kv_heads",        "head_dim",
    "intermediate_size", "vocab_size", "context_length", "tie_word_embeddings", NULL};

bool rfi_contract_is_config_ident(const char *name, size_t len)
{
    for (size_t i = 0; CONFIG_IDENTS[i]; i++)
        if (strlen(CONFIG_IDENTS[i]) == len && memcmp(CONFIG_IDENTS[i], name, len) == 0)
            return true;
    return false;
}

static bool ident_is(const char *name, size_t len, const char *what)
{
    return strlen(what) == len && memcmp(what, name, len) == 0;
}

bool rf_contract_value(const rf_model_config *config, const rf_family *family, const char *name,
                       size_t len, int64_t *value)
{
    if (!name || !value)
        return false;
    if (config) {
        const struct {
            const char *ident;
            uint64_t v;
        } counts[] = {
            {"hidden_size", config->hidden_size}, {"num_layers", config->n_layers},
            {"num_heads", config->n_heads},       {"num_kv_heads", config->n_kv_heads},
            {"head_dim", config->head_dim},       {"intermediate_size", config->intermediate_size},
            {"vocab_size", config->vocab_size},   {"context_length", config->context_length}};
        for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
            if (ident_is(name, len, counts[i].ident)) {
                if (counts[i].v == 0 || counts[i].v > INT64_MAX)
                    return false;
                *value = (int64_t)counts[i].v;
                return true;
            }
        if (ident_is(name, len, "tie_word_embeddings")) {
            if (config->tie_word_embeddings != 0 && config->tie_word_embeddings != 1)
                return false;
            *value = config->tie_word_embeddings;
            return true;
        }
    }
    size_t index;
    if (family && is_flag(family->owner, name, len, &index) && family->flags[index] >= 0) {
        *value = family->flags[index];
        return true;
    }
    return false;
}

typedef struct value_ctx {
    const rf_model_config *config;
    const rf_family *family;
} value_ctx;

static bool value_lookup(void *ctx, const char *name, size_t len, int64_t *value)
{
    const value_ctx *v = ctx;
    return rf_contract_value(v->config, v->family, name, len, value);
}

rf_status rf_role_expected_shape(const rf_role *role, const rf_model_config *config,
                                 const rf_family *family, uint64_t shape[RF_MAX_DIMS], int *ndim,
                                 rf_error *err)
{
    if (!role || !shape || !ndim)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL argument");
    value_ctx ctx = {config, family};
    for (int d = 0; d < role->ndim; d++) {
        int64_t v;
        rf_status st = rf_expr_eval(role->dims[d], value_lookup, &ctx, &v, err);
        if (st != RF_OK) {
            rf_error_prefix(err, "role %s, dimension %d", role->id, d);
            return st;
        }
        if (v < 0)
            return rf_error_set(err, RF_ERR_FORMAT,
                                "role %s, dimension %d: \"%s\" is %" PRId64 ", a negative size",
                                role->id, d, role->dims[d], v);
        shape[d] = (uint64_t)v;
    }
    *ndim = role->ndim;
    return RF_OK;
}
