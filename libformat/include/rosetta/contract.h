/* Contracts (docs/contracts.md): the JSON files of contracts/ read at run time (tensor roles and
 * their names in the three formats, shapes as expressions of config values, model families,
 * data-quality thresholds), the tensor-name map built on them, and rf_contract_check, which
 * checks a model against them and lists every violation with a stable rule id.
 * Not for: reading or writing model files (model.h), config or tokenizer key maps. */
#ifndef ROSETTA_CONTRACT_H
#define ROSETTA_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- loading --------------------------------------------------------------------------------- */

/* A loaded set of contracts: tensor-layout.json, families/<name>.json, quality.json. Immutable
 * once loaded; safe to share between threads. */
typedef struct rf_contracts rf_contracts;

/* Environment variable naming the contracts directory (second in the search order). */
#define RF_CONTRACTS_ENV "ROSETTA_CONTRACTS"

/* The contracts directory the search order finds, written to out: the environment variable
 * ROSETTA_CONTRACTS when set (it must then hold the contracts: no fallback), the installed share
 * directory next to the program or library (<prefix>/share/rosetta/contracts), the source tree
 * the library was built from (uninstalled runs), the share directory of the configured install
 * prefix. RF_ERR_NOT_FOUND naming every place looked at when none holds tensor-layout.json;
 * RF_ERR_LIMIT when out is too small. */
RF_API rf_status rf_contracts_locate(char *out, size_t out_size, rf_error *err);

/* Loads and validates every contract file of dir (NULL: rf_contracts_locate). Returns NULL and
 * fills err on failure: RF_ERR_IO unreadable file, RF_ERR_FORMAT bad JSON ("file:line:col") or
 * a value against the schema ("file: $.roles[3].shape[1]: expected ..."), RF_ERR_NOT_FOUND no
 * such directory. Free with rf_contracts_free. */
RF_API rf_contracts *rf_contracts_load(const char *dir, rf_error *err);
RF_API void rf_contracts_free(rf_contracts *contracts);

/* The directory the contracts were loaded from. */
RF_API const char *rf_contracts_dir(const rf_contracts *contracts);

/* The process-wide contracts, loaded on first use from rf_contracts_set_default's directory or
 * else by the search order, and kept until exit. NULL with err filled when they cannot be
 * loaded (the failure is remembered: later calls return it again). Thread-safe. */
RF_API const rf_contracts *rf_contracts_default(rf_error *err);

/* Makes the contracts of dir the process-wide default (tools' --contracts DIR). Call it before
 * anything uses the default; it fails with RF_ERR_ARGUMENT once they are in use. */
RF_API rf_status rf_contracts_set_default(const char *dir, rf_error *err);

/* ---- tensor roles and names -------------------------------------------------------------------
 */

/* The three spellings of tensor names. APR files written from SafeTensors (and, for families
 * whose contract says "map", from GGUF) use the APR spelling, which equals the Hugging Face one
 * for every role of tensor-layout.json. */
typedef enum rf_naming {
    RF_NAMING_HF = 0,   /* model.layers.3.self_attn.q_proj.weight */
    RF_NAMING_GGUF = 1, /* blk.3.attn_q.weight */
    RF_NAMING_APR = 2,  /* as written by aprender */
} rf_naming;
#define RF_NAMING_COUNT 3

/* "hf", "gguf", "apr" (the keys of a role's "names" object); "?" for other values. */
RF_API const char *rf_naming_key(rf_naming naming);

/* What a role's values are, which selects its data-quality rules. */
typedef enum rf_role_kind {
    RF_ROLE_EMBEDDING = 0, /* token embedding [vocab, hidden] */
    RF_ROLE_HEAD = 1,      /* output projection [vocab, hidden] */
    RF_ROLE_WEIGHT = 2,    /* projection matrices */
    RF_ROLE_NORM = 3,      /* norm weights */
    RF_ROLE_BIAS = 4,      /* biases */
} rf_role_kind;

/* "embedding", "head", "weight", "norm", "bias". */
RF_API const char *rf_role_kind_name(rf_role_kind kind);

/* One role of tensor-layout.json; owned by its rf_contracts. */
typedef struct rf_role rf_role;

RF_API size_t rf_contracts_n_roles(const rf_contracts *contracts);
RF_API const rf_role *rf_contracts_role(const rf_contracts *contracts, size_t index);
/* The role with this id ("attn_q"), NULL if none. */
RF_API const rf_role *rf_contracts_find_role(const rf_contracts *contracts, const char *id);

RF_API const char *rf_role_id(const rf_role *role);
/* The name pattern of the role in naming: per-layer roles contain "{layer}". */
RF_API const char *rf_role_pattern(const rf_role *role, rf_naming naming);
RF_API bool rf_role_per_layer(const rf_role *role);
RF_API bool rf_role_critical(const rf_role *role);
RF_API rf_role_kind rf_role_kind_of(const rf_role *role);
/* Number of dimensions of the role's shape (1 for vectors), and the expression of dimension
 * dim (outermost first, row-major), e.g. "num_kv_heads*head_dim"; NULL out of range. */
RF_API int rf_role_ndim(const rf_role *role);
RF_API const char *rf_role_dim_expr(const rf_role *role, int dim);
/* The conditions under which a model must have / may have the role (expressions; "1" when
 * the contract gives none). */
RF_API const char *rf_role_required_if(const rf_role *role);
RF_API const char *rf_role_allowed_if(const rf_role *role);

/* The role a tensor name spells in any of the three namings, or NULL when no role matches
 * (names are matched whole; a layer number is decimal without leading zeros). *layer gets the
 * layer (-1 for whole-model roles) and *naming the first naming that matched (HF, then GGUF,
 * then APR); either may be NULL. */
RF_API const rf_role *rf_contracts_role_of(const rf_contracts *contracts, const char *name,
                                           int64_t *layer, rf_naming *naming);

/* Writes the name of role in naming for layer (ignored for whole-model roles; must be >= 0 for
 * per-layer ones) to out, NUL-terminated. RF_ERR_ARGUMENT for a bad layer, RF_ERR_LIMIT when
 * out is too small. */
RF_API rf_status rf_role_name(const rf_role *role, rf_naming naming, int64_t layer, char *out,
                              size_t out_size, rf_error *err);

/* Writes name respelled in naming `to` to out. RF_OK when name spells a role;
 * RF_ERR_NOT_FOUND when it does not (out then holds name unchanged, so that callers can pass
 * unknown names through); RF_ERR_LIMIT when out is too small. */
RF_API rf_status rf_contracts_map_name(const rf_contracts *contracts, const char *name,
                                       rf_naming to, char *out, size_t out_size, rf_error *err);

/* The name an APR file uses for a tensor called name in a source of architecture arch (may be
 * NULL), as aprender writes it: GGUF spellings become APR spellings for families whose contract
 * says "apr_names_from_gguf": "map" (the Qwen families); every other name, and every name of
 * other or unknown architectures, is kept. RF_ERR_LIMIT when out is too small. */
RF_API rf_status rf_contracts_apr_name(const rf_contracts *contracts, const char *name,
                                       const char *arch, char *out, size_t out_size, rf_error *err);

/* ---- expressions ------------------------------------------------------------------------------
 */

/* Resolves an identifier of an expression (name[0..len), not NUL-terminated). Returns false
 * when the identifier has no value. */
typedef bool (*rf_expr_lookup)(void *ctx, const char *name, size_t len, int64_t *value);

/* Evaluates expr, an integer expression of decimal integers, identifiers ([A-Za-z_][A-Za-z0-9_]*,
 * resolved by lookup), + - * / (integer division, truncating), unary minus and parentheses,
 * in 64-bit signed arithmetic. RF_ERR_FORMAT for a syntax error or an unknown identifier,
 * RF_ERR_ARGUMENT for a division by zero, RF_ERR_OVERFLOW when a value leaves int64; the
 * message quotes the expression and the character position. */
RF_API rf_status rf_expr_eval(const char *expr, rf_expr_lookup lookup, void *ctx, int64_t *value,
                              rf_error *err);

/* ---- families ---------------------------------------------------------------------------------
 */

/* One families/<name>.json; owned by its rf_contracts. */
typedef struct rf_family rf_family;

RF_API size_t rf_contracts_n_families(const rf_contracts *contracts);
RF_API const rf_family *rf_contracts_family(const rf_contracts *contracts, size_t index);
/* The family that lists architecture under any of its architecture names (HF class
 * "Qwen2ForCausalLM", HF model_type "qwen2", GGUF "qwen2", APR "qwen2"; ASCII case ignored).
 * NULL when none does or architecture is NULL. */
RF_API const rf_family *rf_contracts_family_for(const rf_contracts *contracts,
                                                const char *architecture);

RF_API const char *rf_family_name(const rf_family *family);         /* "qwen2" */
RF_API const char *rf_family_display_name(const rf_family *family); /* "Qwen2 / Qwen2.5 / ..." */
/* A constraint's value as text ("rmsnorm", "neox"; booleans "true" / "false"); NULL when the
 * family does not state it. */
RF_API const char *rf_family_constraint(const rf_family *family, const char *key);
/* A boolean constraint declared as a flag in tensor-layout.json ("qkv_bias"): 1, 0, or -1 when
 * the family does not state it. */
RF_API int rf_family_flag(const rf_family *family, const char *flag);
/* The constraint "rope_type" as an rf_rope_type (RF_ROPE_UNKNOWN when absent). */
RF_API rf_rope_type rf_family_rope_type(const rf_family *family);
/* Whether aprender maps GGUF tensor names of this family to APR names. */
RF_API bool rf_family_apr_maps_gguf_names(const rf_family *family);

/* A size variant: its name and configuration (architecture = the family name; fields the file
 * does not give are 0 / -1 as in rf_model_config), its parameter count and tensor count in HF
 * layout (0 when not given). */
typedef struct rf_family_size {
    const char *name;
    rf_model_config config;
    uint64_t parameters;
    uint64_t n_tensors;
} rf_family_size;

RF_API size_t rf_family_n_sizes(const rf_family *family);
RF_API const rf_family_size *rf_family_size_at(const rf_family *family, size_t index);
/* The size whose hidden size, layers, heads, KV heads, head_dim, FF size and vocabulary equal
 * config's; NULL when none does. */
RF_API const rf_family_size *rf_family_match_size(const rf_family *family,
                                                  const rf_model_config *config);

/* A special token of the family ("bos", "eos", "pad"): its text, and its id in *id (may be
 * NULL); NULL when the family does not give it. */
RF_API const char *rf_family_token(const rf_family *family, const char *which, int64_t *id);
/* A field of the family's chat template ("format", "message", "generation_prompt",
 * "default_system"); NULL when absent. */
RF_API const char *rf_family_chat_template(const rf_family *family, const char *field);

/* The value of an expression identifier for a model config and family: hidden_size,
 * num_layers, num_heads, num_kv_heads, head_dim, intermediate_size, vocab_size,
 * context_length (0 = unknown: no value), tie_word_embeddings (0 or 1; unknown -1: no value),
 * and the family's flags (qkv_bias ... as 0 or 1; no value without a family). */
RF_API bool rf_contract_value(const rf_model_config *config, const rf_family *family,
                              const char *name, size_t len, int64_t *value);

/* The shape a role must have under config and family (row-major, shape[0] outermost): every
 * dimension expression evaluated with rf_contract_value. Errors of rf_expr_eval (an identifier
 * without value is RF_ERR_FORMAT "... has no value"), RF_ERR_FORMAT for a negative dimension. */
RF_API rf_status rf_role_expected_shape(const rf_role *role, const rf_model_config *config,
                                        const rf_family *family, uint64_t shape[RF_MAX_DIMS],
                                        int *ndim, rf_error *err);

/* ---- checking a model -------------------------------------------------------------------------
 */

typedef enum rf_rule_class {
    RF_RULE_STRUCTURAL = 1, /* names, shapes, config, vocabulary: metadata only, fast */
    RF_RULE_QUALITY = 2,    /* values: every tensor dequantized */
} rf_rule_class;
#define RF_RULES_ALL (RF_RULE_STRUCTURAL | RF_RULE_QUALITY)

typedef enum rf_severity {
    RF_SEVERITY_ERROR = 0,   /* fails the check */
    RF_SEVERITY_WARNING = 1, /* fails it only when strict */
} rf_severity;

/* A rule: stable id ("layout.shape"), class, severity and a one-line summary. */
typedef struct rf_rule_info {
    const char *id;
    rf_rule_class rule_class;
    rf_severity severity;
    const char *summary;
} rf_rule_info;

/* Every rule rf_contract_check knows, in a fixed order (structural first). */
RF_API size_t rf_contract_n_rules(void);
RF_API const rf_rule_info *rf_contract_rule(size_t index);
RF_API const rf_rule_info *rf_contract_find_rule(const char *id);

typedef struct rf_contract_options {
    const rf_contracts *contracts; /* NULL: rf_contracts_default() */
    unsigned rules;                /* RF_RULE_* bits; 0 means RF_RULES_ALL */
    const char *architecture;      /* overrides the model's architecture; NULL: the model's */
} rf_contract_options;

/* One violation. Strings are owned by the report; tensor and role are NULL for model-wide
 * findings, layer is -1 for whole-model roles. */
typedef struct rf_violation {
    const char *rule;
    rf_severity severity;
    const char *tensor;
    const char *role;
    int64_t layer;
    bool critical;        /* the tensor's role is critical (embedding, head) */
    const char *expected; /* "[128, 256]", "< 50 %" */
    const char *found;    /* "[256, 128]", "61.3 % (40,172 of 65,536)" */
    const char *message;  /* one line: "<tensor>: <what>: expected X, found Y" */
} rf_violation;

/* How a rule fared: how many things it checked and how many violations it found. */
typedef struct rf_rule_result {
    const rf_rule_info *rule;
    uint64_t checked;
    uint64_t failed;
} rf_rule_result;

typedef struct rf_contract_report rf_contract_report;

/* Checks model against the contracts: structural rules (family, config, vocabulary, every
 * expected tensor, shapes, presence) and, when asked, data-quality rules on dequantized values
 * (streamed a bounded number of rows at a time, under rf_model_mapped_call). Returns RF_OK with
 * *report set when the check ran, whatever it found; an error (contracts not loadable, a tensor
 * whose bytes cannot be read, out of memory) otherwise. Free the report with
 * rf_contract_report_free. */
RF_API rf_status rf_contract_check(const rf_model *model, const rf_contract_options *opts,
                                   rf_contract_report **report, rf_error *err);
RF_API void rf_contract_report_free(rf_contract_report *report);

RF_API size_t rf_contract_report_n_violations(const rf_contract_report *report);
RF_API const rf_violation *rf_contract_report_violation(const rf_contract_report *report,
                                                        size_t index);
/* One result per rule that ran, in rf_contract_rule order. */
RF_API size_t rf_contract_report_n_results(const rf_contract_report *report);
RF_API const rf_rule_result *rf_contract_report_result(const rf_contract_report *report,
                                                       size_t index);
/* The family and size the model was matched to (NULL when none). */
RF_API const rf_family *rf_contract_report_family(const rf_contract_report *report);
RF_API const rf_family_size *rf_contract_report_size(const rf_contract_report *report);
/* Violations that fail the check: errors, plus warnings when strict. */
RF_API size_t rf_contract_report_n_failures(const rf_contract_report *report, bool strict);
/* RF_OK when the check passed; otherwise RF_ERR_CONTRACT with a message naming the failed rule
 * ids and the first violation ("contract violated: layout.shape (2), quality.nan_inf (1):
 * <first message>"), for action tools that stop on a violation. */
RF_API rf_status rf_contract_report_status(const rf_contract_report *report, bool strict,
                                           rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
