/* Private structures of the contracts (rosetta/contract.h): the loaded files, the rule table
 * and the expression checker the loader uses. Not part of the public API. */
#ifndef ROSETTA_CONTRACT_INTERNAL_H
#define ROSETTA_CONTRACT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/contract.h"

/* Rule indices into the table of contract_rules.c (same order). */
typedef enum rule_index {
    RULE_FAMILY_UNKNOWN = 0,
    RULE_CONFIG_MISSING,
    RULE_CONFIG_RANGE,
    RULE_CONFIG_GQA,
    RULE_CONFIG_HEAD_DIM_EVEN,
    RULE_CONFIG_ROPE,
    RULE_VOCAB_SIZE,
    RULE_VOCAB_SPECIAL,
    RULE_LAYOUT_MISSING,
    RULE_LAYOUT_EXTRA,
    RULE_LAYOUT_DUPLICATE,
    RULE_LAYOUT_UNKNOWN,
    RULE_LAYOUT_SHAPE,
    RULE_LAYOUT_EMBEDDING_SHAPE,
    RULE_LAYOUT_LM_HEAD_SHAPE,
    RULE_LAYOUT_BIAS,
    RULE_QUALITY_DEQUANTIZE,
    RULE_QUALITY_NAN_INF,
    RULE_QUALITY_ZERO_FRACTION,
    RULE_QUALITY_L2,
    RULE_QUALITY_CONSTANT,
    RULE_QUALITY_SPOT_ROWS,
    RULE_QUALITY_DEAD_ROWS,
    RULE_COUNT
} rule_index;

/* The index of a rule id, or -1. */
int rfi_contract_rule_index(const char *id);

/* Tensor kinds of the quality rules: the role kinds plus "unknown" (a tensor without role). */
#define QUALITY_KIND_UNKNOWN 5
#define QUALITY_KINDS        6

/* Quality rule parameters from quality.json. A rule absent from the file does not run. */
typedef struct quality_rule {
    bool enabled;
    bool applies[QUALITY_KINDS];
    double max_fraction[QUALITY_KINDS]; /* zero_fraction: per kind; dead_rows: same for all */
    double min;                         /* l2 */
    uint64_t max_count;                 /* nan_inf */
    double at[16];                      /* spot_rows: fractions of the rows */
    size_t n_at;
    double min_row_l2; /* spot_rows */
} quality_rule;

#define CONTRACT_MAX_FLAGS 32
#define CONTRACT_LAYER_MAX 65536 /* more layers than this is a config error, not a model */

/* A name pattern split around the layer placeholder: prefix + <layer> + suffix, or, for
 * whole-model roles, the whole name in prefix. */
typedef struct name_pattern {
    const char *text;
    const char *prefix;
    size_t prefix_len;
    const char *suffix;
    size_t suffix_len;
} name_pattern;

struct rf_role {
    const char *id;
    bool per_layer, critical;
    rf_role_kind kind;
    int ndim;
    const char *dims[RF_MAX_DIMS];
    const char *required_if, *allowed_if;
    rule_index shape_rule; /* RULE_LAYOUT_SHAPE unless the contract names another */
    int presence_rule;     /* -1: missing_tensor / extra_tensor; else RULE_LAYOUT_BIAS */
    name_pattern names[RF_NAMING_COUNT];
};

typedef struct key_text {
    const char *key;
    const char *text;
} key_text;

typedef struct family_token {
    const char *which;
    const char *text;
    int64_t id;
} family_token;

struct rf_family {
    const rf_contracts *owner;
    const char *name, *display_name;
    const char **arch_names;
    size_t n_arch_names;
    bool apr_map;
    key_text *constraints;
    size_t n_constraints;
    int flags[CONTRACT_MAX_FLAGS]; /* by index of rf_contracts.flags; -1 not stated */
    rf_rope_type rope_type;
    rf_family_size *sizes;
    size_t n_sizes;
    family_token *tokens;
    size_t n_tokens;
    key_text *chat;
    size_t n_chat;
};

/* Every allocation of a loaded rf_contracts, freed together. */
typedef struct arena {
    void **blocks;
    size_t n, cap;
} arena;

struct rf_contracts {
    arena mem;
    const char *dir;
    const char *placeholder;
    const char *flags[CONTRACT_MAX_FLAGS];
    size_t n_flags;
    rf_role *roles;
    size_t n_roles;
    rf_family *families;
    size_t n_families;
    quality_rule quality[RULE_COUNT]; /* indexed by rule; only quality rules are used */
};

/* Arena helpers (contract.c): keep takes ownership of p (freed now if it cannot be kept). */
void *rfi_contract_arena_keep(arena *a, void *p);
char *rfi_contract_arena_strdup(arena *a, const char *s);
void rfi_contract_arena_free(arena *a);

/* Parses expr without evaluating it and checks each identifier with known (ctx, name, len).
 * Same syntax errors as rf_expr_eval; an identifier known rejects is RF_ERR_FORMAT. */
rf_status rfi_contract_expr_check(const char *expr, bool (*known)(void *ctx, const char *, size_t),
                                  void *ctx, rf_error *err);

/* Whether name[0..len) is one of the config identifiers of rf_contract_value. */
bool rfi_contract_is_config_ident(const char *name, size_t len);

#endif
