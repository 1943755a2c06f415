/* apr-hex --contract: each tensor's role in the contracts (contracts/, docs/contracts.md), its
 * names in the three spellings, its expected shape under the file's config against the actual
 * one (a reversed shape is reported as a swap), critical roles marked, and the roles the
 * contracts require that the file lacks. A diagnostic view: mismatches are shown, never a reason
 * to refuse (apr validate is the check with an exit status for them).
 * Not for: the data-quality rules (apr validate runs them). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "rosetta/contract.h"

typedef struct row {
    const rf_role *role;
    int64_t layer;
    rf_naming naming;
    bool have_expected;
    uint64_t expected[RF_MAX_DIMS];
    int expected_ndim;
    const char *status; /* "ok", "SWAPPED", "MISMATCH", "no role", "not checked" */
    char why[256];      /* why the expected shape is unknown */
} row;

static bool same_shape(const uint64_t *a, int na, const uint64_t *b, int nb)
{
    return na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
}

static bool reversed_shape(const uint64_t *a, int na, const uint64_t *b, int nb)
{
    if (na != nb || na < 2)
        return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[na - 1 - i])
            return false;
    return true;
}

/* The config the shapes are evaluated with. The vocabulary is the token embedding's rows when
 * that tensor is 2-D and hidden_size wide, as rf_contract_check takes it (docs/contracts.md,
 * "Expressions"). */
static rf_model_config config_of(const rf_filemap *map, const rf_model *model,
                                 const rf_contracts *c)
{
    rf_model_config cfg = {0};
    if (model)
        cfg = *rf_model_config_get(model);
    else
        cfg.tie_word_embeddings = -1;
    for (size_t i = 0; i < rf_filemap_n_tensors(map); i++) {
        const rf_tensor *t = &rf_filemap_tensor(map, i)->tensor;
        const rf_role *r = rf_contracts_role_of(c, t->name, NULL, NULL);
        if (r && rf_role_kind_of(r) == RF_ROLE_EMBEDDING && t->ndim == 2 &&
            t->shape[1] == cfg.hidden_size && cfg.hidden_size)
            cfg.vocab_size = t->shape[0];
    }
    return cfg;
}

static void classify(const rf_contracts *c, const rf_model_config *cfg, const rf_family *family,
                     const rf_map_tensor *mt, row *r)
{
    memset(r, 0, sizeof *r);
    r->layer = -1;
    r->role = rf_contracts_role_of(c, mt->tensor.name, &r->layer, &r->naming);
    if (!r->role) {
        r->status = "no role";
        return;
    }
    rf_error err;
    if (rf_role_expected_shape(r->role, cfg, family, r->expected, &r->expected_ndim, &err) !=
        RF_OK) {
        snprintf(r->why, sizeof r->why, "%.250s", err.message);
        r->status = "not checked";
        return;
    }
    r->have_expected = true;
    if (same_shape(mt->tensor.shape, mt->tensor.ndim, r->expected, r->expected_ndim))
        r->status = "ok";
    else if (reversed_shape(mt->tensor.shape, mt->tensor.ndim, r->expected, r->expected_ndim))
        r->status = "SWAPPED";
    else
        r->status = "MISMATCH";
}

/* Whether an expression of the contracts holds for this config ("1" when it cannot be
 * evaluated: a missing value is not a reason to call a role missing). */
typedef struct expr_ctx {
    const rf_model_config *cfg;
    const rf_family *family;
} expr_ctx;

static bool lookup(void *ctx, const char *name, size_t len, int64_t *value)
{
    const expr_ctx *e = ctx;
    return rf_contract_value(e->cfg, e->family, name, len, value);
}

static bool holds(const char *expr, const expr_ctx *e)
{
    int64_t v;
    rf_error err;
    if (!expr || rf_expr_eval(expr, lookup, (void *)e, &v, &err) != RF_OK)
        return false;
    return v != 0;
}

static cJSON *json_names(const rf_role *role, int64_t layer)
{
    cJSON *o = cJSON_CreateObject();
    for (int n = 0; n < RF_NAMING_COUNT; n++) {
        char name[512];
        rf_error err;
        if (rf_role_name(role, (rf_naming)n, layer, name, sizeof name, &err) == RF_OK)
            cJSON_AddStringToObject(o, rf_naming_key((rf_naming)n), name);
        else
            cJSON_AddNullToObject(o, rf_naming_key((rf_naming)n));
    }
    return o;
}

int hex_contract(const rf_filemap *map, const hex_options *o)
{
    rf_error err;
    const rf_contracts *c = rf_contracts_default(&err);
    if (!c) {
        cli_error(&HEX_TOOL, "%s", err.message);
        return APR_EXIT_INPUT;
    }
    size_t n = 0;
    size_t *sel = hex_select(map, o->tensor, true, &n);
    if (o->tensor && !sel)
        return hex_no_tensor(map, o);

    /* The config: the map's model, or for a SafeTensors file the model read with its companion
     * files (config.json beside the weights), which the map of the file alone does not read. */
    const rf_model *model = rf_filemap_model(map);
    rf_model *with_companions = NULL;
    if (rf_filemap_format(map) == RF_FORMAT_SAFETENSORS &&
        (!model || !rf_model_config_get(model)->architecture)) {
        const rf_open_options lenient = {.lenient = true};
        with_companions = rf_model_open(rf_filemap_path(map), &lenient, &err);
        if (with_companions)
            model = with_companions;
    }
    rf_model_config cfg = config_of(map, model, c);
    const rf_family *family = rf_contracts_family_for(c, cfg.architecture);
    expr_ctx ectx = {&cfg, family};

    /* required roles the file lacks (only without --tensor: a selection says nothing about them) */
    cJSON *root = o->json ? hex_json_root(map, "contract") : NULL;
    cJSON *list = root ? cJSON_AddArrayToObject(root, "tensors") : NULL;
    cli_table *table = root ? NULL : cli_table_new(9, "lllllllll");
    if (table) {
        const char *head[] = {"tensor",   "role",    "shape",     "expected", "status",
                              "critical", "HF name", "GGUF name", "APR name"};
        cli_table_add(table, head);
    }
    size_t mismatches = 0, swaps = 0, unknown = 0;
    for (size_t k = 0; k < n; k++) {
        const rf_map_tensor *mt = rf_filemap_tensor(map, sel[k]);
        row r;
        classify(c, &cfg, family, mt, &r);
        mismatches += strcmp(r.status, "MISMATCH") == 0;
        swaps += strcmp(r.status, "SWAPPED") == 0;
        unknown += strcmp(r.status, "no role") == 0;
        char shape[128], expected[128], role[96];
        hex_shape(&mt->tensor, shape, sizeof shape);
        if (r.have_expected)
            cli_shape(r.expected, r.expected_ndim, false, expected, sizeof expected);
        else
            snprintf(expected, sizeof expected, "%s", r.role ? "?" : "-");
        if (r.role && r.layer >= 0)
            snprintf(role, sizeof role, "%s[%" PRId64 "]", rf_role_id(r.role), r.layer);
        else
            snprintf(role, sizeof role, "%s", r.role ? rf_role_id(r.role) : "-");
        if (list) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddItemToObject(j, "name",
                                  cli_json_string(mt->tensor.name, strlen(mt->tensor.name)));
            if (r.role) {
                cJSON_AddStringToObject(j, "role", rf_role_id(r.role));
                cJSON_AddStringToObject(j, "kind", rf_role_kind_name(rf_role_kind_of(r.role)));
                cJSON_AddNumberToObject(j, "layer", (double)r.layer);
                cJSON_AddBoolToObject(j, "critical", rf_role_critical(r.role));
                cJSON_AddStringToObject(j, "naming", rf_naming_key(r.naming));
                cJSON_AddItemToObject(j, "names", json_names(r.role, r.layer));
            } else {
                cJSON_AddNullToObject(j, "role");
            }
            cJSON *sh = cJSON_AddArrayToObject(j, "shape");
            for (int d = 0; d < mt->tensor.ndim; d++)
                cJSON_AddItemToArray(sh, cli_json_u64(mt->tensor.shape[d]));
            if (r.have_expected) {
                cJSON *ex = cJSON_AddArrayToObject(j, "expected");
                for (int d = 0; d < r.expected_ndim; d++)
                    cJSON_AddItemToArray(ex, cli_json_u64(r.expected[d]));
            } else {
                cJSON_AddNullToObject(j, "expected");
            }
            cJSON_AddStringToObject(j, "status", r.status);
            cJSON_AddBoolToObject(j, "swap_needed", strcmp(r.status, "SWAPPED") == 0);
            if (r.why[0])
                cJSON_AddItemToObject(j, "why", cli_json_string(r.why, strlen(r.why)));
            cJSON_AddItemToArray(list, j);
            continue;
        }
        char names[RF_NAMING_COUNT][256];
        for (int nm = 0; nm < RF_NAMING_COUNT; nm++) {
            names[nm][0] = '\0';
            if (r.role && rf_role_name(r.role, (rf_naming)nm, r.layer, names[nm], sizeof names[nm],
                                       &err) != RF_OK)
                names[nm][0] = '\0';
        }
        const char *status =
            strcmp(r.status, "SWAPPED") == 0 ? "SWAPPED (reverse the shape)" : r.status;
        const char *cells[] = {mt->tensor.name,
                               role,
                               shape,
                               expected,
                               status,
                               r.role && rf_role_critical(r.role) ? "CRITICAL" : "",
                               names[RF_NAMING_HF],
                               names[RF_NAMING_GGUF],
                               names[RF_NAMING_APR]};
        cli_table_add(table, cells);
    }

    /* roles the contracts require for this config that no tensor fills */
    cJSON *missing = root ? cJSON_AddArrayToObject(root, "missing") : NULL;
    size_t n_missing = 0;
    if (!o->tensor && model && family) {
        int64_t layers = (int64_t)cfg.n_layers;
        for (size_t i = 0; i < rf_contracts_n_roles(c); i++) {
            const rf_role *role = rf_contracts_role(c, i);
            if (!holds(rf_role_required_if(role), &ectx))
                continue;
            int64_t first = rf_role_per_layer(role) ? 0 : -1;
            int64_t last = rf_role_per_layer(role) ? layers - 1 : -1;
            for (int64_t l = first; l <= last; l++) {
                bool present = false;
                for (size_t t = 0; t < rf_filemap_n_tensors(map) && !present; t++) {
                    int64_t layer;
                    const rf_role *tr = rf_contracts_role_of(
                        c, rf_filemap_tensor(map, t)->tensor.name, &layer, NULL);
                    present = tr == role && layer == l;
                }
                if (present)
                    continue;
                n_missing++;
                char name[512];
                if (rf_role_name(role, RF_NAMING_HF, l, name, sizeof name, &err) != RF_OK)
                    snprintf(name, sizeof name, "%s", rf_role_id(role));
                if (missing) {
                    cJSON *j = cJSON_CreateObject();
                    cJSON_AddStringToObject(j, "role", rf_role_id(role));
                    cJSON_AddNumberToObject(j, "layer", (double)l);
                    cJSON_AddBoolToObject(j, "critical", rf_role_critical(role));
                    cJSON_AddItemToObject(j, "names", json_names(role, l));
                    cJSON_AddItemToArray(missing, j);
                } else if (n_missing <= 20) {
                    cli_error(&HEX_TOOL, "%s: missing: role %s (%s)%s", rf_filemap_path(map),
                              rf_role_id(role), name, rf_role_critical(role) ? " CRITICAL" : "");
                }
            }
        }
    }
    free(sel);
    rf_model_free(with_companions);
    if (root) {
        cJSON_AddStringToObject(root, "contracts", rf_contracts_dir(c));
        if (family)
            cJSON_AddStringToObject(root, "family", rf_family_name(family));
        else
            cJSON_AddNullToObject(root, "family");
        cJSON_AddItemToObject(root, "mismatches", cli_json_u64(mismatches));
        cJSON_AddItemToObject(root, "swaps", cli_json_u64(swaps));
        cJSON_AddItemToObject(root, "without_role", cli_json_u64(unknown));
        return hex_json_print(root);
    }
    printf("family %s\n", family ? rf_family_name(family) : "unknown (shapes not checked)");
    cli_table_print(table, stdout, "");
    cli_table_free(table);
    printf("%zu tensor%s: %zu shape mismatch%s, %zu swapped, %zu without a role, %zu required "
           "role%s missing\n",
           n, n == 1 ? "" : "s", mismatches, mismatches == 1 ? "" : "es", swaps, unknown, n_missing,
           n_missing == 1 ? "" : "s");
    return APR_EXIT_OK;
}
