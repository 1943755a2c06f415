/* rf_contract_check: a model against the contracts (docs/contracts.md). Structural rules read
 * names, shapes, the typed config and the tokenizer; data-quality rules stream every tensor's
 * dequantized values a bounded number of rows at a time.
 * Not for: loading the contracts (contract.c) or fixing what it finds. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract_internal.h"
#include "rosetta/apr.h"
#include "rosetta/quant.h"

/* ---- the report ------------------------------------------------------------------------------ */

struct rf_contract_report {
    arena mem;
    rf_violation *violations;
    size_t n_violations, cap;
    rf_rule_result results[RULE_COUNT];
    size_t n_results;
    const rf_family *family;
    const rf_family_size *size;
};

void rf_contract_report_free(rf_contract_report *report)
{
    if (!report)
        return;
    rfi_contract_arena_free(&report->mem);
    free(report->violations);
    free(report);
}

size_t rf_contract_report_n_violations(const rf_contract_report *report)
{
    return report ? report->n_violations : 0;
}

const rf_violation *rf_contract_report_violation(const rf_contract_report *report, size_t index)
{
    return report && index < report->n_violations ? &report->violations[index] : NULL;
}

size_t rf_contract_report_n_results(const rf_contract_report *report)
{
    return report ? report->n_results : 0;
}

const rf_rule_result *rf_contract_report_result(const rf_contract_report *report, size_t index)
{
    return report && index < report->n_results ? &report->results[index] : NULL;
}

const rf_family *rf_contract_report_family(const rf_contract_report *report)
{
    return report ? report->family : NULL;
}

const rf_family_size *rf_contract_report_size(const rf_contract_report *report)
{
    return report ? report->size : NULL;
}

size_t rf_contract_report_n_failures(const rf_contract_report *report, bool strict)
{
    size_t n = 0;
    for (size_t i = 0; report && i < report->n_violations; i++)
        n += strict || report->violations[i].severity == RF_SEVERITY_ERROR;
    return n;
}

rf_status rf_contract_report_status(const rf_contract_report *report, bool strict, rf_error *err)
{
    if (!report)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL report");
    if (rf_contract_report_n_failures(report, strict) == 0)
        return RF_OK;
    char list[512] = "";
    size_t used = 0;
    const rf_violation *first = NULL;
    for (size_t i = 0; i < report->n_results; i++) {
        const rf_rule_result *r = &report->results[i];
        if (r->failed == 0 || (!strict && r->rule->severity == RF_SEVERITY_WARNING))
            continue;
        if (used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s (%" PRIu64 ")",
                                     used ? ", " : "", r->rule->id, r->failed);
    }
    for (size_t i = 0; i < report->n_violations && !first; i++)
        if (strict || report->violations[i].severity == RF_SEVERITY_ERROR)
            first = &report->violations[i];
    return rf_error_set(err, RF_ERR_CONTRACT, "contract violated: %s: %s", list,
                        first ? first->message : "");
}

/* ---- checking ------------------------------------------------------------------------------- */

typedef struct checker {
    const rf_contracts *c;
    const rf_model *m;
    const rf_family *family;
    rf_model_config cfg; /* the model's, with vocab_size and the tie flag resolved */
    unsigned rules;
    rf_naming naming; /* the spelling the model uses, for names of missing tensors */
    rf_contract_report *r;
    uint64_t checked[RULE_COUNT];
    uint64_t failed[RULE_COUNT];
    /* per tensor */
    const rf_role **roles;
    int64_t *layers;
    float *buf;
    size_t buf_floats;
    rf_error *err;
} checker;

static bool rule_on(const checker *ck, rule_index rule)
{
    const rf_rule_info *info = rf_contract_rule(rule);
    if (!(ck->rules & (unsigned)info->rule_class))
        return false;
    return info->rule_class != RF_RULE_QUALITY || ck->c->quality[rule].enabled;
}

static char *keep_text(checker *ck, const char *s)
{
    return s ? rfi_contract_arena_strdup(&ck->r->mem, s) : NULL;
}

/* Records a violation of rule on tensor (NULL: the model) of role/layer. */
static rf_status violation(checker *ck, rule_index rule, const char *tensor, const rf_role *role,
                           int64_t layer, const char *expected, const char *found, const char *what)
{
    rf_contract_report *r = ck->r;
    if (r->n_violations == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        rf_violation *v = realloc(r->violations, cap * sizeof *v);
        if (!v)
            return rf_error_set(ck->err, RF_ERR_NOMEM, "out of memory for the report");
        r->violations = v;
        r->cap = cap;
    }
    char message[1024];
    snprintf(message, sizeof message, "%s%s%s: expected %s, found %s", tensor ? tensor : "",
             tensor ? ": " : "", what, expected, found);
    rf_violation *v = &r->violations[r->n_violations];
    *v = (rf_violation){.rule = rf_contract_rule(rule)->id,
                        .severity = rf_contract_rule(rule)->severity,
                        .tensor = keep_text(ck, tensor),
                        .role = role ? role->id : NULL,
                        .layer = role ? layer : -1,
                        .critical = role && role->critical,
                        .expected = keep_text(ck, expected),
                        .found = keep_text(ck, found),
                        .message = keep_text(ck, message)};
    if (!v->message || !v->expected || !v->found || (tensor && !v->tensor))
        return rf_error_set(ck->err, RF_ERR_NOMEM, "out of memory for the report");
    r->n_violations++;
    ck->failed[rule]++;
    return RF_OK;
}

static void shape_text(const uint64_t *shape, int ndim, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%" PRIu64, i ? ", " : "", shape[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

typedef struct eval_ctx {
    const checker *ck;
} eval_ctx;

static bool lookup(void *ctx, const char *name, size_t len, int64_t *value)
{
    const checker *ck = ((eval_ctx *)ctx)->ck;
    return rf_contract_value(&ck->cfg, ck->family, name, len, value);
}

/* A condition of the contract: true/false, or `otherwise` when it cannot be evaluated (a value
 * it needs is unknown, e.g. the family's flags without a family). */
static bool condition(const checker *ck, const char *expr, bool otherwise)
{
    eval_ctx ctx = {ck};
    int64_t v;
    if (rf_expr_eval(expr, lookup, &ctx, &v, NULL) != RF_OK)
        return otherwise;
    return v != 0;
}

/* ---- family and config ----------------------------------------------------------------------- */

static rf_status check_family(checker *ck, const char *arch)
{
    if (!rule_on(ck, RULE_FAMILY_UNKNOWN))
        return RF_OK;
    ck->checked[RULE_FAMILY_UNKNOWN]++;
    if (ck->family)
        return RF_OK;
    char expected[512];
    size_t used = (size_t)snprintf(expected, sizeof expected, "an architecture of ");
    for (size_t i = 0; i < ck->c->n_families && used < sizeof expected; i++)
        used += (size_t)snprintf(expected + used, sizeof expected - used, "%s%s", i ? ", " : "",
                                 ck->c->families[i].name);
    char found[256];
    snprintf(found, sizeof found, arch ? "\"%s\"" : "%s", arch ? arch : "no architecture");
    return violation(ck, RULE_FAMILY_UNKNOWN, NULL, NULL, -1, expected, found,
                     "architecture has no contract family");
}

static rf_status check_config(checker *ck)
{
    const rf_model_config *c = &ck->cfg;
    rf_status st = RF_OK;
    if (rule_on(ck, RULE_CONFIG_MISSING)) {
        const struct {
            const char *key;
            uint64_t v;
        } need[] = {{"hidden_size", c->hidden_size}, {"num_layers", c->n_layers},
                    {"num_heads", c->n_heads},       {"num_kv_heads", c->n_kv_heads},
                    {"head_dim", c->head_dim},       {"intermediate_size", c->intermediate_size},
                    {"vocab_size", c->vocab_size}};
        for (size_t i = 0; i < sizeof need / sizeof need[0] && st == RF_OK; i++) {
            ck->checked[RULE_CONFIG_MISSING]++;
            if (need[i].v == 0) {
                char what[96];
                snprintf(what, sizeof what, "config value %s is unknown", need[i].key);
                st = violation(ck, RULE_CONFIG_MISSING, NULL, NULL, -1, "a value > 0",
                               "missing or 0", what);
            }
        }
    }
    if (st == RF_OK && rule_on(ck, RULE_CONFIG_RANGE)) {
        char found[64];
        ck->checked[RULE_CONFIG_RANGE] += 3;
        if (c->rope_theta != 0 && !(isfinite(c->rope_theta) && c->rope_theta > 0)) {
            snprintf(found, sizeof found, "%g", c->rope_theta);
            st = violation(ck, RULE_CONFIG_RANGE, NULL, NULL, -1, "finite and > 0", found,
                           "rope_theta out of range");
        }
        if (st == RF_OK && c->rms_norm_eps != 0 && !(c->rms_norm_eps > 0 && c->rms_norm_eps < 1)) {
            snprintf(found, sizeof found, "%g", c->rms_norm_eps);
            st = violation(ck, RULE_CONFIG_RANGE, NULL, NULL, -1, "in (0, 1)", found,
                           "rms_norm_eps out of range");
        }
        if (st == RF_OK && c->n_layers > CONTRACT_LAYER_MAX) {
            snprintf(found, sizeof found, "%" PRIu64, c->n_layers);
            st = violation(ck, RULE_CONFIG_RANGE, NULL, NULL, -1, "at most 65536", found,
                           "num_layers out of range");
        }
    }
    if (st == RF_OK && rule_on(ck, RULE_CONFIG_GQA) && c->n_heads && c->n_kv_heads) {
        ck->checked[RULE_CONFIG_GQA]++;
        if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0) {
            char found[96];
            snprintf(found, sizeof found, "num_heads %" PRIu64 ", num_kv_heads %" PRIu64,
                     c->n_heads, c->n_kv_heads);
            st = violation(ck, RULE_CONFIG_GQA, NULL, NULL, -1,
                           "num_kv_heads <= num_heads and dividing it", found,
                           "query heads cannot be grouped over the KV heads");
        }
    }
    if (st == RF_OK && rule_on(ck, RULE_CONFIG_HEAD_DIM_EVEN) && c->head_dim) {
        ck->checked[RULE_CONFIG_HEAD_DIM_EVEN]++;
        if (c->head_dim % 2 != 0) {
            char found[48];
            snprintf(found, sizeof found, "head_dim %" PRIu64, c->head_dim);
            st = violation(ck, RULE_CONFIG_HEAD_DIM_EVEN, NULL, NULL, -1, "an even head_dim", found,
                           "RoPE needs pairs of values");
        }
    }
    rf_rope_type want = rf_family_rope_type(ck->family);
    if (st == RF_OK && rule_on(ck, RULE_CONFIG_ROPE) && want != RF_ROPE_UNKNOWN &&
        c->rope_type != RF_ROPE_UNKNOWN) {
        ck->checked[RULE_CONFIG_ROPE]++;
        if (c->rope_type != want) {
            char what[96];
            snprintf(what, sizeof what, "RoPE type against the %s family", ck->family->name);
            st = violation(ck, RULE_CONFIG_ROPE, NULL, NULL, -1,
                           want == RF_ROPE_NEOX ? "neox" : "norm",
                           c->rope_type == RF_ROPE_NEOX ? "neox" : "norm", what);
        }
    }
    return st;
}

/* ---- vocabulary -------------------------------------------------------------------------------
 */

static rf_status check_vocab(checker *ck, uint64_t config_vocab, uint64_t rows)
{
    rf_status st = RF_OK;
    const rf_tokenizer *tok = rf_model_tokenizer(ck->m);
    uint64_t tokens = tok && tok->tokens ? tok->n_tokens : 0;
    if (rule_on(ck, RULE_VOCAB_SIZE)) {
        ck->checked[RULE_VOCAB_SIZE]++;
        uint64_t limit = rows ? rows : config_vocab;
        bool bad = (rows && config_vocab && config_vocab != rows) || (limit && tokens > limit);
        if (bad) {
            char found[160], part[48];
            size_t n = 0;
            found[0] = '\0';
            if (config_vocab) {
                snprintf(part, sizeof part, "config %" PRIu64, config_vocab);
                n += (size_t)snprintf(found + n, sizeof found - n, "%s", part);
            }
            if (rows) {
                snprintf(part, sizeof part, "embedding rows %" PRIu64, rows);
                n += (size_t)snprintf(found + n, sizeof found - n, "%s%s", n ? ", " : "", part);
            }
            if (tokens) {
                snprintf(part, sizeof part, "tokenizer %" PRIu64 " tokens", tokens);
                snprintf(found + n, sizeof found - n, "%s%s", n ? ", " : "", part);
            }
            st = violation(ck, RULE_VOCAB_SIZE, NULL, NULL, -1,
                           "config vocab_size = embedding rows >= tokenizer tokens", found,
                           "vocabulary sizes disagree");
        }
    }
    uint64_t limit = rows ? rows : config_vocab;
    if (st == RF_OK && rule_on(ck, RULE_VOCAB_SPECIAL) && limit) {
        const rf_model_config *c = rf_model_config_get(ck->m);
        const struct {
            const char *name;
            int64_t id;
        } ids[] = {{"bos_token_id", c->bos_token_id},
                   {"eos_token_id", c->eos_token_id},
                   {"pad_token_id", c->pad_token_id}};
        for (size_t i = 0; i < 3 && st == RF_OK; i++) {
            if (ids[i].id < 0)
                continue;
            ck->checked[RULE_VOCAB_SPECIAL]++;
            if ((uint64_t)ids[i].id >= limit) {
                char expected[64], found[64], what[64];
                snprintf(expected, sizeof expected, "an id below %" PRIu64, limit);
                snprintf(found, sizeof found, "%" PRId64, ids[i].id);
                snprintf(what, sizeof what, "%s outside the vocabulary", ids[i].name);
                st = violation(ck, RULE_VOCAB_SPECIAL, NULL, NULL, -1, expected, found, what);
            }
        }
    }
    return st;
}

/* ---- tensors ------------------------------------------------------------------------------- */

/* The first tensor of role r (any layer), or NULL. */
static const rf_tensor *find_role(const checker *ck, const rf_role *role)
{
    for (size_t i = 0; i < rf_model_n_tensors(ck->m); i++)
        if (ck->roles[i] == role)
            return rf_model_tensor(ck->m, i);
    return NULL;
}

static rf_status check_shape(checker *ck, const rf_tensor *t, const rf_role *role, int64_t layer)
{
    rule_index rule = role->shape_rule;
    if (!rule_on(ck, rule))
        return RF_OK;
    uint64_t want[RF_MAX_DIMS];
    int ndim;
    if (rf_role_expected_shape(role, &ck->cfg, ck->family, want, &ndim, NULL) != RF_OK)
        return RF_OK; /* a value it needs is unknown: config.missing_value says which */
    ck->checked[rule]++;
    if (ndim == t->ndim && memcmp(want, t->shape, (size_t)ndim * sizeof want[0]) == 0)
        return RF_OK;
    char expected[160], found[160], what[64];
    shape_text(want, ndim, expected, sizeof expected);
    size_t n = strlen(expected);
    snprintf(expected + n, sizeof expected - n, " (");
    for (int d = 0; d < ndim; d++) {
        n = strlen(expected);
        snprintf(expected + n, sizeof expected - n, "%s%s", d ? ", " : "", role->dims[d]);
    }
    n = strlen(expected);
    snprintf(expected + n, sizeof expected - n, ")");
    shape_text(t->shape, t->ndim, found, sizeof found);
    snprintf(what, sizeof what, "shape of role %s", role->id);
    return violation(ck, rule, t->name, role, layer, expected, found, what);
}

/* The slot of (role, layer) in the presence table, or SIZE_MAX when it is not tracked. */
static size_t slot_of(const checker *ck, size_t role_index, int64_t layer, uint64_t n_layers)
{
    const rf_role *role = &ck->c->roles[role_index];
    if (!role->per_layer)
        return role_index * (n_layers + 1);
    if (layer < 0 || (uint64_t)layer >= n_layers)
        return SIZE_MAX;
    return role_index * (n_layers + 1) + 1 + (size_t)layer;
}

static rf_status check_tensors(checker *ck)
{
    const rf_contracts *c = ck->c;
    size_t n = rf_model_n_tensors(ck->m);
    uint64_t n_layers = ck->cfg.n_layers <= CONTRACT_LAYER_MAX ? ck->cfg.n_layers : 0;
    size_t n_slots = c->n_roles * (size_t)(n_layers + 1);
    size_t *first = malloc((n_slots ? n_slots : 1) * sizeof *first);
    if (!first)
        return rf_error_set(ck->err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_slots; i++)
        first[i] = SIZE_MAX;
    rf_status st = RF_OK;
    for (size_t i = 0; i < n && st == RF_OK; i++) {
        const rf_tensor *t = rf_model_tensor(ck->m, i);
        const rf_role *role = ck->roles[i];
        int64_t layer = ck->layers[i];
        if (!role) {
            if (rule_on(ck, RULE_LAYOUT_UNKNOWN)) {
                ck->checked[RULE_LAYOUT_UNKNOWN]++;
                st = violation(ck, RULE_LAYOUT_UNKNOWN, t->name, NULL, -1,
                               "a name of a tensor-layout.json role", "no role",
                               "unknown tensor name (kept as is)");
            }
            continue;
        }
        if (rule_on(ck, RULE_LAYOUT_UNKNOWN))
            ck->checked[RULE_LAYOUT_UNKNOWN]++;
        size_t role_index = (size_t)(role - c->roles);
        /* a layer beyond the config's count */
        if (role->per_layer && ck->cfg.n_layers && (uint64_t)layer >= ck->cfg.n_layers) {
            if (rule_on(ck, RULE_LAYOUT_EXTRA)) {
                char expected[64], found[64];
                snprintf(expected, sizeof expected, "layers 0..%" PRIu64, ck->cfg.n_layers - 1);
                snprintf(found, sizeof found, "layer %" PRId64, layer);
                ck->checked[RULE_LAYOUT_EXTRA]++;
                st = violation(ck, RULE_LAYOUT_EXTRA, t->name, role, layer, expected, found,
                               "tensor of a layer the config does not have");
            }
            continue;
        }
        /* a role the family does not have */
        rule_index presence =
            role->presence_rule >= 0 ? (rule_index)role->presence_rule : RULE_LAYOUT_EXTRA;
        if (rule_on(ck, presence)) {
            ck->checked[presence]++;
            if (!condition(ck, role->allowed_if, true)) {
                char expected[128];
                snprintf(expected, sizeof expected, "no tensor of role %s (%s is false for %s)",
                         role->id, role->allowed_if, ck->family ? ck->family->name : "this model");
                st = violation(ck, presence, t->name, role, layer, expected, "present",
                               "tensor the family does not have");
                continue;
            }
        }
        size_t slot = slot_of(ck, role_index, layer, n_layers);
        if (slot != SIZE_MAX && first[slot] != SIZE_MAX) {
            if (rule_on(ck, RULE_LAYOUT_DUPLICATE)) {
                char found[300];
                snprintf(found, sizeof found, "also stored as %s",
                         rf_model_tensor(ck->m, first[slot])->name);
                ck->checked[RULE_LAYOUT_DUPLICATE]++;
                st = violation(ck, RULE_LAYOUT_DUPLICATE, t->name, role, layer,
                               "one tensor per role and layer", found, "role stored twice");
            }
            continue;
        }
        if (slot != SIZE_MAX) {
            first[slot] = i;
            if (rule_on(ck, RULE_LAYOUT_DUPLICATE))
                ck->checked[RULE_LAYOUT_DUPLICATE]++;
        }
        st = check_shape(ck, t, role, layer);
    }
    /* every role the family requires, in every layer */
    for (size_t ri = 0; ri < c->n_roles && st == RF_OK; ri++) {
        const rf_role *role = &c->roles[ri];
        rule_index presence =
            role->presence_rule >= 0 ? (rule_index)role->presence_rule : RULE_LAYOUT_MISSING;
        if (!rule_on(ck, presence) || !condition(ck, role->required_if, false))
            continue;
        uint64_t layers = role->per_layer ? n_layers : 1;
        for (uint64_t l = 0; l < layers && st == RF_OK; l++) {
            int64_t layer = role->per_layer ? (int64_t)l : -1;
            ck->checked[presence]++;
            if (first[slot_of(ck, ri, layer, n_layers)] != SIZE_MAX)
                continue;
            char name[256], expected[320];
            if (rf_role_name(role, ck->naming, layer, name, sizeof name, NULL) != RF_OK)
                snprintf(name, sizeof name, "%s", role->id);
            if (strcmp(role->required_if, "1") == 0)
                snprintf(expected, sizeof expected, "a tensor of role %s", role->id);
            else
                snprintf(expected, sizeof expected, "a tensor of role %s (required when %s)",
                         role->id, role->required_if);
            st = violation(ck, presence, name, role, layer, expected, "absent",
                           "required tensor missing");
        }
    }
    free(first);
    return st;
}

/* ---- data quality ------------------------------------------------------------------------- */

/* Elements dequantized per step (256 KiB of floats), at least one row. */
#define CHUNK_ELEMS (UINT64_C(1) << 16)
#define MAX_SPOT    16

/* How a tensor's values lie in its bytes: rows of row_bytes bytes, each decoding to row_elems
 * values of which the first cols are meaningful (APR pads K-quant rows to whole super-blocks);
 * flat tensors (APR_Q4 / APR_Q8: one run of blocks, or one scale for the whole tensor) are
 * streamed by element ranges. */
typedef struct value_layout {
    uint64_t rows, cols, row_elems, row_bytes;
    bool flat;
} value_layout;

static bool is_apr(const rf_model *m)
{
    return rf_model_format(m) == RF_FORMAT_APR || rf_model_format(m) == RF_FORMAT_APR2_MAGIC;
}

static rf_status layout_of(const rf_model *m, const rf_tensor *t, value_layout *out, rf_error *err)
{
    uint64_t elems, need;
    rf_status st = rf_shape_elements(t->shape, t->ndim, &elems, err);
    if (st != RF_OK)
        return st;
    const rf_dtype_info *info = rf_dtype_get(t->dtype);
    if (!info)
        return rf_error_set(err, RF_ERR_FORMAT, "tensor '%s': unknown dtype", t->name);
    uint64_t rows = t->ndim >= 2 ? t->shape[0] : 1;
    *out = (value_layout){rows, rows ? elems / rows : 0, rows ? elems / rows : 0, 0, false};
    bool apr = is_apr(m);
    uint64_t row_bytes;
    if (apr && (t->dtype == RF_DTYPE_APR_Q4 || t->dtype == RF_DTYPE_APR_Q8)) {
        out->flat = true;
        st = rf_apr_tensor_bytes(t->dtype, t->shape, t->ndim, &need, err);
    } else if (apr && rf_apr_tensor_row_padded(t, &row_bytes)) {
        need = row_bytes * rows;
        out->row_bytes = row_bytes;
        out->row_elems = row_bytes / info->block_bytes * info->block_elems;
    } else if (apr && (t->dtype == RF_DTYPE_Q4_K || t->dtype == RF_DTYPE_Q6_K)) {
        st = rf_apr_tensor_bytes(t->dtype, t->shape, t->ndim, &need, err);
        if (st == RF_OK && need / info->block_bytes * info->block_elems != elems) {
            /* padded last super-block: decode the tensor as one padded row */
            *out =
                (value_layout){1, elems, need / info->block_bytes * info->block_elems, need, false};
        } else if (rows) {
            out->row_bytes = need / rows;
        }
    } else {
        st = rf_dtype_tensor_bytes(t->dtype, t->shape, t->ndim, &need, err);
        if (st == RF_OK && rows)
            out->row_bytes = need / rows;
    }
    if (st != RF_OK) {
        rf_error_prefix(err, "tensor '%s'", t->name);
        return st;
    }
    if (t->nbytes < need)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "tensor '%s': %" PRIu64 " data bytes, its shape needs %" PRIu64,
                            t->name, t->nbytes, need);
    if (elems > 0 && !t->data)
        return rf_error_set(err, RF_ERR_FORMAT, "tensor '%s': no data", t->name);
    return RF_OK;
}

typedef struct value_stats {
    uint64_t n, nan, inf, zeros, finite;
    double sumsq;
    bool constant;
    float first;
    uint64_t cols;            /* values per row */
    uint64_t rows, dead_rows; /* completed rows */
    uint64_t col;             /* position in the current row */
    bool row_dead;            /* the current row is all zeros so far */
    double row_sumsq;         /* of the current row */
    size_t n_spot;
    uint64_t spot_row[MAX_SPOT];
    double spot_sumsq[MAX_SPOT];
} value_stats;

/* Folds the next n values (in row-major order) into s. */
static void stats_feed(value_stats *s, const float *x, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        float v = x[i];
        if (isnan(v)) {
            s->nan++;
            s->row_dead = false;
        } else if (isinf(v)) {
            s->inf++;
            s->row_dead = false;
        } else {
            if (v == 0.0f)
                s->zeros++;
            else
                s->row_dead = false;
            s->row_sumsq += (double)v * (double)v;
            if (s->finite == 0)
                s->first = v;
            else if (v != s->first)
                s->constant = false;
            s->finite++;
        }
        if (++s->col == s->cols) {
            for (size_t k = 0; k < s->n_spot; k++)
                if (s->spot_row[k] == s->rows)
                    s->spot_sumsq[k] = s->row_sumsq;
            s->sumsq += s->row_sumsq;
            s->dead_rows += s->row_dead;
            s->rows++;
            s->col = 0;
            s->row_dead = true;
            s->row_sumsq = 0;
        }
    }
    s->n += n;
}

static rf_status grow_buffer(checker *ck, uint64_t floats, const char *name)
{
    if (floats <= ck->buf_floats)
        return RF_OK;
    if (floats > SIZE_MAX / sizeof(float) - 1)
        return rf_error_set(ck->err, RF_ERR_LIMIT, "tensor '%s' is too large", name);
    /* 4 more bytes: APR_Q8 chunks are staged behind their scale in the same buffer's tail */
    float *b = realloc(ck->buf, ((size_t)floats + 1) * sizeof *b + (size_t)floats);
    if (!b)
        return rf_error_set(ck->err, RF_ERR_NOMEM, "tensor '%s': out of memory", name);
    ck->buf = b;
    ck->buf_floats = (size_t)floats;
    return RF_OK;
}

/* Flat APR tensors: APR_Q4 is a run of 32-value blocks (the last one may be partial), APR_Q8 one
 * f32 scale then one int8 per value (apr-v2.md); a chunk that starts on a block boundary is
 * decoded on its own. */
static rf_status stream_flat(checker *ck, const rf_tensor *t, uint64_t elems, value_stats *s)
{
    const rf_dtype_info *info = rf_dtype_get(t->dtype);
    rf_status st = grow_buffer(ck, CHUNK_ELEMS, t->name);
    uint8_t *stage = (uint8_t *)(ck->buf + ck->buf_floats);
    for (uint64_t e0 = 0; e0 < elems && st == RF_OK; e0 += CHUNK_ELEMS) {
        uint64_t n = elems - e0 < CHUNK_ELEMS ? elems - e0 : CHUNK_ELEMS;
        if (t->dtype == RF_DTYPE_APR_Q8) {
            memcpy(stage, t->data, 4);
            memcpy(stage + 4, t->data + 4 + e0, (size_t)n);
            st = rf_dequantize(t->dtype, stage, ck->buf, n, ck->err);
        } else {
            st = rf_dequantize(t->dtype, t->data + e0 / info->block_elems * info->block_bytes,
                               ck->buf, n, ck->err);
        }
        if (st == RF_OK)
            stats_feed(s, ck->buf, n);
    }
    if (st != RF_OK)
        rf_error_prefix(ck->err, "tensor '%s'", t->name);
    return st;
}

/* Streams t's dequantized values into s, CHUNK_ELEMS values (or one row) at a time, through
 * rf_tensor_dequantize on row ranges of the tensor. */
static rf_status stream_stats(checker *ck, const rf_tensor *t, const value_layout *l,
                              value_stats *s)
{
    if (l->flat)
        return stream_flat(ck, t, l->rows * l->cols, s);
    uint64_t per_chunk = l->row_elems ? CHUNK_ELEMS / l->row_elems : 1;
    if (per_chunk == 0)
        per_chunk = 1;
    rf_status st = grow_buffer(ck, per_chunk * l->row_elems, t->name);
    for (uint64_t r0 = 0; r0 < l->rows && st == RF_OK; r0 += per_chunk) {
        uint64_t k = l->rows - r0 < per_chunk ? l->rows - r0 : per_chunk;
        rf_tensor part = *t;
        part.ndim = 2;
        memset(part.shape, 0, sizeof part.shape);
        part.shape[0] = k;
        part.shape[1] = l->row_elems;
        part.data = t->data + r0 * l->row_bytes;
        part.nbytes = k * l->row_bytes;
        st = rf_tensor_dequantize(&part, ck->buf, ck->err);
        for (uint64_t r = 0; r < k && st == RF_OK; r++)
            stats_feed(s, ck->buf + r * l->row_elems, l->cols);
    }
    return st;
}

static bool quality_applies(const checker *ck, rule_index rule, int kind)
{
    return rule_on(ck, rule) && ck->c->quality[rule].applies[kind];
}

static void percent(char *buf, size_t size, uint64_t part, uint64_t whole, const char *unit)
{
    snprintf(buf, size, "%.1f %% (%" PRIu64 " of %" PRIu64 " %s)",
             whole ? 100.0 * (double)part / (double)whole : 0.0, part, whole, unit);
}

static rf_status judge(checker *ck, const rf_tensor *t, const rf_role *role, int64_t layer,
                       int kind, const value_stats *s)
{
    const quality_rule *q = ck->c->quality;
    char expected[128], found[192];
    rf_status st = RF_OK;
    if (quality_applies(ck, RULE_QUALITY_NAN_INF, kind)) {
        ck->checked[RULE_QUALITY_NAN_INF]++;
        if (s->nan + s->inf > q[RULE_QUALITY_NAN_INF].max_count) {
            snprintf(expected, sizeof expected, "at most %" PRIu64 " NaN/Inf",
                     q[RULE_QUALITY_NAN_INF].max_count);
            snprintf(found, sizeof found, "%" PRIu64 " NaN, %" PRIu64 " Inf of %" PRIu64 " values",
                     s->nan, s->inf, s->n);
            st = violation(ck, RULE_QUALITY_NAN_INF, t->name, role, layer, expected, found,
                           "non-finite values");
        }
    }
    if (st == RF_OK && quality_applies(ck, RULE_QUALITY_ZERO_FRACTION, kind)) {
        double max = q[RULE_QUALITY_ZERO_FRACTION].max_fraction[kind];
        ck->checked[RULE_QUALITY_ZERO_FRACTION]++;
        if ((double)s->zeros >= max * (double)s->n) {
            snprintf(expected, sizeof expected, "below %g %% zeros", 100 * max);
            percent(found, sizeof found, s->zeros, s->n, "values");
            st = violation(ck, RULE_QUALITY_ZERO_FRACTION, t->name, role, layer, expected, found,
                           "too many zeros");
        }
    }
    if (st == RF_OK && quality_applies(ck, RULE_QUALITY_L2, kind)) {
        double l2 = sqrt(s->sumsq), min = q[RULE_QUALITY_L2].min;
        ck->checked[RULE_QUALITY_L2]++;
        if (!(l2 > min)) {
            snprintf(expected, sizeof expected, "L2 norm > %g", min);
            snprintf(found, sizeof found, "L2 norm %.3g", l2);
            st = violation(ck, RULE_QUALITY_L2, t->name, role, layer, expected, found,
                           "values (nearly) all zero");
        }
    }
    if (st == RF_OK && quality_applies(ck, RULE_QUALITY_CONSTANT, kind) && s->finite >= 2) {
        ck->checked[RULE_QUALITY_CONSTANT]++;
        if (s->constant) {
            snprintf(found, sizeof found, "all %" PRIu64 " finite values are %.9g", s->finite,
                     (double)s->first);
            st = violation(ck, RULE_QUALITY_CONSTANT, t->name, role, layer, "values that vary",
                           found, "constant tensor");
        }
    }
    if (st == RF_OK && quality_applies(ck, RULE_QUALITY_SPOT_ROWS, kind) && s->n_spot) {
        double min = q[RULE_QUALITY_SPOT_ROWS].min_row_l2;
        size_t used = 0;
        found[0] = '\0';
        ck->checked[RULE_QUALITY_SPOT_ROWS]++;
        for (size_t k = 0; k < s->n_spot; k++)
            if (!(sqrt(s->spot_sumsq[k]) > min) && used < sizeof found)
                used +=
                    (size_t)snprintf(found + used, sizeof found - used, "%srow %" PRIu64 " L2 %.3g",
                                     used ? ", " : "", s->spot_row[k], sqrt(s->spot_sumsq[k]));
        if (used) {
            snprintf(expected, sizeof expected, "row L2 norms > %g", min);
            st = violation(ck, RULE_QUALITY_SPOT_ROWS, t->name, role, layer, expected, found,
                           "zero rows at the spot-check positions");
        }
    }
    if (st == RF_OK && quality_applies(ck, RULE_QUALITY_DEAD_ROWS, kind) && s->rows > 1) {
        double max = q[RULE_QUALITY_DEAD_ROWS].max_fraction[kind];
        ck->checked[RULE_QUALITY_DEAD_ROWS]++;
        if ((double)s->dead_rows >= max * (double)s->rows) {
            snprintf(expected, sizeof expected, "below %g %% all-zero rows", 100 * max);
            percent(found, sizeof found, s->dead_rows, s->rows, "rows");
            st = violation(ck, RULE_QUALITY_DEAD_ROWS, t->name, role, layer, expected, found,
                           "too many all-zero rows");
        }
    }
    return st;
}

static rf_status check_quality(void *ctx, rf_error *err)
{
    checker *ck = ctx;
    (void)err;
    const quality_rule *spot = &ck->c->quality[RULE_QUALITY_SPOT_ROWS];
    for (size_t i = 0; i < rf_model_n_tensors(ck->m); i++) {
        const rf_tensor *t = rf_model_tensor(ck->m, i);
        const rf_role *role = ck->roles[i];
        int64_t layer = ck->layers[i];
        int kind = role ? (int)role->kind : QUALITY_KIND_UNKNOWN;
        bool any = false;
        for (int r = RULE_QUALITY_NAN_INF; r <= RULE_QUALITY_DEAD_ROWS; r++)
            any = any || quality_applies(ck, (rule_index)r, kind);
        uint64_t elems;
        if (!any || rf_shape_elements(t->shape, t->ndim, &elems, NULL) != RF_OK || elems == 0)
            continue;
        if (!rf_can_dequantize(t->dtype)) {
            if (!quality_applies(ck, RULE_QUALITY_DEQUANTIZE, kind))
                continue;
            ck->checked[RULE_QUALITY_DEQUANTIZE]++;
            char found[64];
            snprintf(found, sizeof found, "dtype %s", rf_dtype_name(t->dtype));
            rf_status st = violation(ck, RULE_QUALITY_DEQUANTIZE, t->name, role, layer,
                                     "a dtype Rosetta can dequantize", found, "values not checked");
            if (st != RF_OK)
                return st;
            continue;
        }
        if (quality_applies(ck, RULE_QUALITY_DEQUANTIZE, kind))
            ck->checked[RULE_QUALITY_DEQUANTIZE]++;
        value_layout l = {0};
        rf_status st = layout_of(ck->m, t, &l, ck->err);
        if (st != RF_OK)
            return st;
        value_stats s = {.constant = true, .cols = l.cols, .row_dead = true};
        if (quality_applies(ck, RULE_QUALITY_SPOT_ROWS, kind) && l.rows > 1)
            for (size_t k = 0; k < spot->n_at && s.n_spot < MAX_SPOT; k++)
                s.spot_row[s.n_spot++] = (uint64_t)(spot->at[k] * (double)l.rows);
        if ((st = stream_stats(ck, t, &l, &s)) != RF_OK ||
            (st = judge(ck, t, role, layer, kind, &s)) != RF_OK)
            return st;
    }
    return RF_OK;
}

/* ---- entry point ---------------------------------------------------------------------------- */

static rf_status prepare(checker *ck, const rf_contract_options *opts)
{
    const rf_model *m = ck->m;
    size_t n = rf_model_n_tensors(m);
    ck->roles = calloc(n ? n : 1, sizeof *ck->roles);
    ck->layers = calloc(n ? n : 1, sizeof *ck->layers);
    if (!ck->roles || !ck->layers)
        return rf_error_set(ck->err, RF_ERR_NOMEM, "out of memory");
    int votes[RF_NAMING_COUNT] = {0};
    for (size_t i = 0; i < n; i++) {
        rf_naming naming;
        ck->roles[i] =
            rf_contracts_role_of(ck->c, rf_model_tensor(m, i)->name, &ck->layers[i], &naming);
        if (ck->roles[i])
            votes[naming]++;
    }
    ck->naming = rf_model_format(m) == RF_FORMAT_GGUF ? RF_NAMING_GGUF : RF_NAMING_HF;
    if (votes[RF_NAMING_GGUF] > votes[RF_NAMING_HF] + votes[RF_NAMING_APR])
        ck->naming = RF_NAMING_GGUF;
    else if (votes[RF_NAMING_HF] + votes[RF_NAMING_APR] > votes[RF_NAMING_GGUF])
        ck->naming = is_apr(m) ? RF_NAMING_APR : RF_NAMING_HF;

    ck->cfg = *rf_model_config_get(m);
    if (opts && opts->architecture)
        ck->cfg.architecture = opts->architecture;
    ck->family = rf_contracts_family_for(ck->c, ck->cfg.architecture);
    /* V comes from the embedding when its rows are hidden_size wide (a transposed embedding is
     * its own violation); the tie flag, when the file does not say, from the head's presence */
    const rf_tensor *embd = find_role(ck, rf_contracts_find_role(ck->c, "token_embd"));
    if (embd && embd->ndim == 2 && ck->cfg.hidden_size && embd->shape[1] == ck->cfg.hidden_size)
        ck->cfg.vocab_size = embd->shape[0];
    if (ck->cfg.tie_word_embeddings != 0 && ck->cfg.tie_word_embeddings != 1)
        ck->cfg.tie_word_embeddings =
            find_role(ck, rf_contracts_find_role(ck->c, "output")) ? 0 : 1;
    return RF_OK;
}

rf_status rf_contract_check(const rf_model *model, const rf_contract_options *opts,
                            rf_contract_report **report, rf_error *err)
{
    if (!model || !report)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL model or report");
    *report = NULL;
    const rf_contracts *c = opts && opts->contracts ? opts->contracts : rf_contracts_default(err);
    if (!c)
        return err ? err->status : RF_ERR_NOT_FOUND;
    checker ck = {.c = c, .m = model, .err = err};
    ck.rules = opts && opts->rules ? opts->rules & RF_RULES_ALL : RF_RULES_ALL;
    ck.r = calloc(1, sizeof *ck.r);
    if (!ck.r)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    rf_status st = prepare(&ck, opts);
    const rf_model_config *orig = rf_model_config_get(model);
    if (st == RF_OK)
        st = check_family(&ck, ck.cfg.architecture);
    if (st == RF_OK)
        st = check_config(&ck);
    if (st == RF_OK) {
        const rf_tensor *embd = find_role(&ck, rf_contracts_find_role(c, "token_embd"));
        uint64_t rows = embd && embd->ndim == 2 && embd->shape[0] == ck.cfg.vocab_size &&
                                embd->shape[1] == ck.cfg.hidden_size
                            ? embd->shape[0]
                            : 0;
        st = check_vocab(&ck, orig->vocab_size, rows);
    }
    if (st == RF_OK)
        st = check_tensors(&ck);
    if (st == RF_OK && (ck.rules & RF_RULE_QUALITY))
        st = rf_model_mapped_call(model, check_quality, &ck, err);
    free(ck.roles);
    free(ck.layers);
    free(ck.buf);
    if (st != RF_OK) {
        rf_contract_report_free(ck.r);
        return st;
    }
    for (size_t i = 0; i < RULE_COUNT; i++)
        if (rule_on(&ck, (rule_index)i))
            ck.r->results[ck.r->n_results++] =
                (rf_rule_result){rf_contract_rule(i), ck.checked[i], ck.failed[i]};
    ck.r->family = ck.family;
    ck.r->size = rf_family_match_size(ck.family, &ck.cfg);
    *report = ck.r;
    return RF_OK;
}
