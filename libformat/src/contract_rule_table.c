/* The table of contract rules (docs/contracts.md): id, class, severity and what each rule
 * requires, and the lookups by index and id. Its own file so that the loader (contract.c) and
 * the checks (contract_rules.c) both use it without depending on each other both ways.
 * Not for: checking anything (contract_rules.c). */
#include <string.h>

#include "contract_internal.h"

/* ---- the rule table ------------------------------------------------------------------------ */

#define S RF_RULE_STRUCTURAL
#define Q RF_RULE_QUALITY
#define E RF_SEVERITY_ERROR
#define W RF_SEVERITY_WARNING
static const rf_rule_info RULES[RULE_COUNT] = {
    [RULE_FAMILY_UNKNOWN] = {"family.unknown_architecture", S, E,
                             "the architecture belongs to a family of contracts/families/"},
    [RULE_CONFIG_MISSING] = {"config.missing_value", S, E,
                             "hidden_size, num_layers, num_heads, num_kv_heads, head_dim, "
                             "intermediate_size and vocab_size are known"},
    [RULE_CONFIG_RANGE] = {"config.value_range", S, E,
                           "rope theta finite and > 0, 0 < rms eps < 1, at most 65,536 layers"},
    [RULE_CONFIG_GQA] = {"config.gqa_divisible", S, E,
                         "num_kv_heads is at most num_heads and divides it"},
    [RULE_CONFIG_HEAD_DIM_EVEN] = {"config.head_dim_even", S, E,
                                   "head_dim is even (RoPE rotates pairs of values)"},
    [RULE_CONFIG_ROPE] = {"config.rope_type", S, E, "the RoPE type is the family's"},
    [RULE_VOCAB_SIZE] = {"vocab.size_mismatch", S, E,
                         "config vocab_size equals the embedding rows, and the tokenizer has no "
                         "more tokens than rows"},
    [RULE_VOCAB_SPECIAL] = {"vocab.special_ids", S, E,
                            "BOS, EOS and PAD ids lie inside the vocabulary"},
    [RULE_LAYOUT_MISSING] = {"layout.missing_tensor", S, E,
                             "every tensor the family requires is present, in every layer"},
    [RULE_LAYOUT_EXTRA] = {"layout.extra_tensor", S, E,
                           "no tensor of a role the family lacks or of a layer beyond "
                           "num_layers"},
    [RULE_LAYOUT_DUPLICATE] = {"layout.duplicate_role", S, E,
                               "no role stored twice (under two spellings)"},
    [RULE_LAYOUT_UNKNOWN] = {"layout.unknown_tensor", S, W,
                             "every tensor name spells a role of tensor-layout.json"},
    [RULE_LAYOUT_SHAPE] = {"layout.shape", S, E,
                           "every tensor's shape equals its role's expressions on the config"},
    [RULE_LAYOUT_EMBEDDING_SHAPE] = {"layout.embedding_shape", S, E,
                                     "the token embedding is [vocab_size, hidden_size]"},
    [RULE_LAYOUT_LM_HEAD_SHAPE] = {"layout.lm_head_shape", S, E,
                                   "the output head is [vocab_size, hidden_size]"},
    [RULE_LAYOUT_BIAS] = {"layout.bias_presence", S, E,
                          "attention biases are present exactly when the family has them"},
    [RULE_QUALITY_DEQUANTIZE] = {"quality.dequantize", Q, W,
                                 "every tensor's dtype can be dequantized, so its values are "
                                 "checked"},
    [RULE_QUALITY_NAN_INF] = {"quality.nan_inf", Q, E, "no NaN or infinite values"},
    [RULE_QUALITY_ZERO_FRACTION] = {"quality.zero_fraction", Q, E,
                                    "the fraction of zeros is below the limit of the tensor's "
                                    "kind"},
    [RULE_QUALITY_L2] = {"quality.l2", Q, E, "the L2 norm is above the minimum"},
    [RULE_QUALITY_CONSTANT] = {"quality.constant", Q, E, "the values are not all equal"},
    [RULE_QUALITY_SPOT_ROWS] = {"quality.spot_rows", Q, E,
                                "the rows at fixed fractions of the vocabulary are not zero"},
    [RULE_QUALITY_DEAD_ROWS] = {"quality.dead_rows", Q, E,
                                "the fraction of all-zero rows is below the limit"},
};
#undef S
#undef Q
#undef E
#undef W

size_t rf_contract_n_rules(void) { return RULE_COUNT; }

const rf_rule_info *rf_contract_rule(size_t index)
{
    return index < RULE_COUNT ? &RULES[index] : NULL;
}

int rfi_contract_rule_index(const char *id)
{
    for (int i = 0; id && i < RULE_COUNT; i++)
        if (strcmp(RULES[i].id, id) == 0)
            return i;
    return -1;
}

const rf_rule_info *rf_contract_find_rule(const char *id)
{
    int i = rfi_contract_rule_index(id);
    return i < 0 ? NULL : &RULES[i];
}
