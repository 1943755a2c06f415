/* Contracts (rosetta/contract.h): loading contracts/ and its errors (file and JSON path), the
 * expression evaluator, the role and name map in the three spellings both ways, families and
 * their sizes (checked against the layout's shape expressions), and rf_contract_check on the
 * fixtures. The rules on crafted bad models are tested end to end in tests/tools/validate.sh. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/test_fs.h"
#include "rosetta/contract.h"
#include "rosetta/names.h"

#define CONTRACTS ROSETTA_ROOT "/contracts"

static rf_contracts *load_repo(void)
{
    rf_error err = {0};
    rf_contracts *c = rf_contracts_load(CONTRACTS, &err);
    cr_assert_not_null(c, "%s", err.message);
    return c;
}

/* ---- loading and its errors ------------------------------------------------------------------ */

Test(contract_load, repository_contracts_load)
{
    rf_contracts *c = load_repo();
    cr_assert_str_eq(rf_contracts_dir(c), CONTRACTS);
    cr_assert_eq(rf_contracts_n_roles(c), 18);
    cr_assert_eq(rf_contracts_n_families(c), 3);
    /* families sorted by file name, whatever the directory order */
    cr_assert_str_eq(rf_family_name(rf_contracts_family(c, 0)), "llama");
    cr_assert_str_eq(rf_family_name(rf_contracts_family(c, 1)), "qwen2");
    cr_assert_str_eq(rf_family_name(rf_contracts_family(c, 2)), "qwen3");
    rf_contracts_free(c);
}

Test(contract_load, default_contracts_are_the_source_tree)
{
    /* unit tests run uninstalled: the search order ends in this source tree */
    unsetenv(RF_CONTRACTS_ENV);
    char dir[4096];
    rf_error err = {0};
    cr_assert_eq(rf_contracts_locate(dir, sizeof dir, &err), RF_OK, "%s", err.message);
    char a[4096], b[4096];
    cr_assert_not_null(realpath(dir, a));
    cr_assert_not_null(realpath(CONTRACTS, b));
    cr_assert_str_eq(a, b);
    const rf_contracts *c = rf_contracts_default(&err);
    cr_assert_not_null(c, "%s", err.message);
    cr_assert_eq(rf_contracts_default(NULL), c, "loaded once");
    cr_assert_neq(rf_contracts_set_default(CONTRACTS, &err), RF_OK, "already in use");
    cr_assert_not_null(strstr(err.message, "already in use"));
}

Test(contract_load, environment_variable_wins_and_must_hold_contracts)
{
    char dir[4096];
    rf_error err = {0};
    setenv(RF_CONTRACTS_ENV, "/nonexistent-contracts", 1);
    cr_assert_eq(rf_contracts_locate(dir, sizeof dir, &err), RF_ERR_NOT_FOUND);
    cr_assert_not_null(strstr(err.message, "ROSETTA_CONTRACTS=/nonexistent-contracts"), "%s",
                       err.message);
    cr_assert_null(rf_contracts_load(NULL, &err), "no silent fallback");
    setenv(RF_CONTRACTS_ENV, CONTRACTS, 1);
    cr_assert_eq(rf_contracts_locate(dir, sizeof dir, &err), RF_OK);
    cr_assert_str_eq(dir, CONTRACTS);
    unsetenv(RF_CONTRACTS_ENV);
    char tiny[4];
    cr_assert_eq(rf_contracts_locate(tiny, sizeof tiny, &err), RF_ERR_LIMIT);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* Copies the repository's contracts to a fresh directory, replacing the first occurrence of old
 * by new in file (relative to the directory; NULL: no change). */
static void make_dir(char *dir, size_t size, const char *file, const char *old, const char *new)
{
    mkdir(ROSETTA_BUILD "/test-tmp", 0755);
    snprintf(dir, size, "%s/test-tmp/contract-unit-XXXXXX", ROSETTA_BUILD);
    cr_assert_not_null(mkdtemp(dir));
    char path[4096];
    snprintf(path, sizeof path, "%s/families", dir);
    mkdir(path, 0755);
    static const char *const files[] = {"tensor-layout.json", "quality.json", "families/qwen2.json",
                                        "families/llama.json", "families/qwen3.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/%s", CONTRACTS, files[i]);
        char *text = read_text(src);
        if (file && strcmp(file, files[i]) == 0) {
            char *at = strstr(text, old);
            cr_assert_not_null(at, "'%s' is not in %s", old, files[i]);
            size_t len = strlen(text) + strlen(new) + 1;
            char *out = malloc(len);
            snprintf(out, len, "%.*s%s%s", (int)(at - text), text, new, at + strlen(old));
            free(text);
            text = out;
        }
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        write_text(path, text);
        free(text);
    }
}

/* Loading the mutated copy fails with status and a message containing every one of want[]. */
static void expect_load_error(const char *file, const char *old, const char *new, rf_status status,
                              const char *const *want)
{
    char dir[4096];
    make_dir(dir, sizeof dir, file, old, new);
    rf_error err = {0};
    rf_contracts *c = rf_contracts_load(dir, &err);
    cr_assert_null(c, "%s: '%s' -> '%s' was accepted", file, old, new);
    cr_assert_eq(err.status, status, "status %d: %s", err.status, err.message);
    for (size_t i = 0; want[i]; i++)
        cr_assert_not_null(strstr(err.message, want[i]), "'%s' not in: %s", want[i], err.message);
    test_remove_tree(dir);
}

#define EXPECT(file, old, new, status, ...)                                                        \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__, NULL};                                    \
        expect_load_error(file, old, new, status, want_);                                          \
    } while (0)

Test(contract_load, unchanged_copy_loads)
{
    char dir[4096];
    make_dir(dir, sizeof dir, NULL, NULL, NULL);
    rf_error err = {0};
    rf_contracts *c = rf_contracts_load(dir, &err);
    cr_assert_not_null(c, "%s", err.message);
    rf_contracts_free(c);
    test_remove_tree(dir);
}

Test(contract_load, layout_errors_name_file_and_json_path)
{
    const char *L = "tensor-layout.json";
    EXPECT(L, "[\"num_kv_heads*head_dim\", \"hidden_size\"]",
           "[\"num_kv_head*head_dim\", \"hidden_size\"]", RF_ERR_FORMAT, "tensor-layout.json",
           "$.roles[6].shape[0]", "identifier 'num_kv_head' is not known");
    EXPECT(L, "[\"num_heads*head_dim\", \"hidden_size\"]", "[\"num_heads*head_dim\", {}]",
           RF_ERR_FORMAT, "$.roles[4].shape[1]", "expected an expression string or an integer");
    EXPECT(L, "[\"num_heads*head_dim\", \"hidden_size\"]", "[\"num_heads*(head_dim\", 1]",
           RF_ERR_FORMAT, "$.roles[4].shape[0]", "expected ')'");
    EXPECT(L, "\"required_if\": \"qkv_bias\"", "\"required_if\": \"qkv_bais\"", RF_ERR_FORMAT,
           "$.roles[5].required_if", "qkv_bais");
    EXPECT(L, "\"required_if\": \"qkv_bias\"", "\"requred_if\": \"qkv_bias\"", RF_ERR_FORMAT,
           "$.roles[5].requred_if", "unknown key");
    EXPECT(L, "\"gguf\": \"blk.{layer}.attn_q.weight\"", "\"gguf\": \"blk.attn_q.weight\"",
           RF_ERR_FORMAT, "$.roles[4].names.gguf", "must contain {layer}");
    EXPECT(L, "\"gguf\": \"blk.{layer}.attn_q.weight\"", "\"gguf\": \"blk.{layer}.attn_k.weight\"",
           RF_ERR_FORMAT, "$.roles[6].names.gguf", "also a name of role attn_q");
    EXPECT(L, "\"shape\": [\"hidden_size\"],\n      \"vector\": true",
           "\"shape\": [\"hidden_size\"],\n      \"vector\": false", RF_ERR_FORMAT,
           "$.roles[1].vector", "1 dimension");
    EXPECT(L, "\"kind\": \"norm\"", "\"kind\": \"normal\"", RF_ERR_FORMAT, "$.roles[1].kind");
    EXPECT(L, "\"scope\": \"model\"", "\"scope\": \"global\"", RF_ERR_FORMAT, "$.roles[0].scope");
    EXPECT(L, "\"shape_rule\": \"layout.lm_head_shape\"", "\"shape_rule\": \"layout.head\"",
           RF_ERR_FORMAT, "$.roles[2].shape_rule");
    EXPECT(L, "\"critical\": true", "\"critical\": 1", RF_ERR_FORMAT, "$.roles[0].critical",
           "expected true or false, found a number");
    EXPECT(L, "rosetta.tensor-layout/1", "rosetta.tensor-layout/2", RF_ERR_FORMAT, "$.schema");
    EXPECT(L, "\"flags\": [\"qkv_bias\"", "\"flags\": [\"hidden_size\"", RF_ERR_FORMAT,
           "$.flags[0]", "already a config value");
    EXPECT(L, "\"role\": \"attn_k\"", "\"role\": \"attn_q\"", RF_ERR_FORMAT, "$.roles[6].role",
           "also the id");
    EXPECT(L, "\"layer_placeholder\": \"{layer}\",", "\"layer_placeholder\": \"{layer}\",,",
           RF_ERR_FORMAT, "tensor-layout.json", "offset");
    EXPECT(L, "\"critical\": true", "\"critical\": true, \"critical\": false", RF_ERR_FORMAT,
           "tensor-layout.json", "duplicate key");
}

Test(contract_load, family_and_quality_errors_name_file_and_json_path)
{
    const char *F = "families/qwen2.json";
    EXPECT(F, "\"qkv_bias\": true,", "", RF_ERR_FORMAT, "qwen2.json", "$.constraints",
           "\"qkv_bias\"");
    EXPECT(F, "\"qkv_bias\": true", "\"qkv_bias\": \"yes\"", RF_ERR_FORMAT,
           "$.constraints.qkv_bias", "expected true or false");
    EXPECT(F, "\"family\": \"qwen2\"", "\"family\": \"qwen\"", RF_ERR_FORMAT, "$.family",
           "the file name");
    EXPECT(F, "\"name\": \"3B\", \"hidden_size\": 2048", "\"name\": \"3B\", \"hidden_size\": 0",
           RF_ERR_FORMAT, "$.sizes[2].hidden_size", "integer >= 1");
    EXPECT(F, "\"rms_norm_eps\": 1e-06, \"tie_word_embeddings\": true, \"parameters\": 494032768",
           "\"rms_norm_eps\": 2, \"tie_word_embeddings\": true, \"parameters\": 494032768",
           RF_ERR_FORMAT, "$.sizes[0].rms_norm_eps");
    EXPECT(F, "\"name\": \"1.5B\"", "\"name\": \"0.5B\"", RF_ERR_FORMAT, "$.sizes[1]",
           "also $.sizes[0]");
    EXPECT(F, "\"rope_type\": \"neox\"", "\"rope_type\": \"yarn\"", RF_ERR_FORMAT,
           "$.constraints.rope_type");
    EXPECT(F, "\"gguf\": [\"qwen2\"]", "\"gguf\": [\"llama\"]", RF_ERR_FORMAT, "qwen2.json",
           "$.architectures", "family llama");
    EXPECT(F, "\"bos\": {\"id\": 151643,", "\"bos\": {\"id\": -1,", RF_ERR_FORMAT,
           "$.tokens.bos.id");
    EXPECT(F, "\"apr_names_from_gguf\": \"map\"", "\"apr_names_from_gguf\": \"hf\"", RF_ERR_FORMAT,
           "$.apr_names_from_gguf");
    const char *Q = "quality.json";
    EXPECT(Q, "{\"id\": \"quality.l2\"", "{\"id\": \"quality.l3\"", RF_ERR_FORMAT, "quality.json",
           "$.rules[3].id", "not a quality rule");
    EXPECT(Q, "{\"id\": \"quality.l2\"", "{\"id\": \"layout.shape\"", RF_ERR_FORMAT,
           "$.rules[3].id");
    EXPECT(Q, "\"embedding\": 0.5", "\"embedding\": 1.5", RF_ERR_FORMAT,
           "$.rules[2].max_fraction.embedding");
    EXPECT(Q, "\"at\": [0.1, 0.5, 0.9]", "\"at\": [0.1, 1.5]", RF_ERR_FORMAT, "$.rules[5].at[1]");
    EXPECT(Q, "\"max_count\": 0", "\"max_count\": 0, \"limit\": 3", RF_ERR_FORMAT,
           "$.rules[1].limit", "unknown key");
    EXPECT(Q, "{\"id\": \"quality.constant\"", "{\"id\": \"quality.nan_inf\"", RF_ERR_FORMAT,
           "given twice");
}

Test(contract_load, missing_files)
{
    rf_error err = {0};
    cr_assert_null(rf_contracts_load(ROSETTA_BUILD "/no-such-contracts", &err));
    cr_assert_eq(err.status, RF_ERR_NOT_FOUND);
    char dir[4096];
    make_dir(dir, sizeof dir, NULL, NULL, NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/quality.json", dir);
    unlink(path);
    cr_assert_null(rf_contracts_load(dir, &err));
    cr_assert_not_null(strstr(err.message, "quality.json"), "%s", err.message);
    test_remove_tree(dir);
}

/* ---- expressions ------------------------------------------------------------------------------
 */

static bool lookup(void *ctx, const char *name, size_t len, int64_t *value)
{
    (void)ctx;
    static const struct {
        const char *name;
        int64_t v;
    } vars[] = {{"a", 7}, {"b", 3}, {"big", INT64_MAX}, {"zero", 0}, {"x_1", 100}};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0) {
            *value = vars[i].v;
            return true;
        }
    return false;
}

static int64_t eval_ok(const char *expr)
{
    int64_t v = -12345;
    rf_error err = {0};
    cr_assert_eq(rf_expr_eval(expr, lookup, NULL, &v, &err), RF_OK, "%s: %s", expr, err.message);
    return v;
}

static void eval_fails(const char *expr, rf_status status, const char *want)
{
    int64_t v = -12345;
    rf_error err = {0};
    cr_assert_eq(rf_expr_eval(expr, lookup, NULL, &v, &err), status, "%s: %s", expr, err.message);
    cr_assert_not_null(strstr(err.message, want), "'%s' not in: %s", want, err.message);
    cr_assert_eq(v, -12345, "value untouched on error");
}

Test(contract_expr, arithmetic)
{
    cr_assert_eq(eval_ok("42"), 42);
    cr_assert_eq(eval_ok("a*b"), 21);
    cr_assert_eq(eval_ok("a+b*2"), 13, "* binds tighter than +");
    cr_assert_eq(eval_ok("(a+b)*2"), 20);
    cr_assert_eq(eval_ok("a-b-1"), 3, "left associative");
    cr_assert_eq(eval_ok("100/a/b"), 4, "left associative, truncating");
    cr_assert_eq(eval_ok("-a/2"), -3, "truncates toward zero");
    cr_assert_eq(eval_ok("1 - -a"), 8);
    cr_assert_eq(eval_ok("  x_1 *\t( a - b ) "), 400);
    cr_assert_eq(eval_ok("big"), INT64_MAX);
    cr_assert_eq(eval_ok("-big-1"), INT64_MIN);
    cr_assert_eq(eval_ok("9223372036854775807"), INT64_MAX);
    cr_assert_eq(eval_ok("((((((((((a))))))))))"), 7);
}

Test(contract_expr, errors)
{
    eval_fails("a*c", RF_ERR_FORMAT, "identifier 'c' has no value");
    eval_fails("a*c", RF_ERR_FORMAT, "position 3");
    eval_fails("a/zero", RF_ERR_ARGUMENT, "division by zero");
    eval_fails("a/(b-3)", RF_ERR_ARGUMENT, "division by zero");
    eval_fails("big+1", RF_ERR_OVERFLOW, "sum overflows");
    eval_fails("-big-2", RF_ERR_OVERFLOW, "difference overflows");
    eval_fails("big*2", RF_ERR_OVERFLOW, "product overflows");
    eval_fails("(-big-1)/-1", RF_ERR_OVERFLOW, "quotient overflows");
    eval_fails("-(-big-1)", RF_ERR_OVERFLOW, "negation overflows");
    eval_fails("9223372036854775808", RF_ERR_OVERFLOW, "does not fit");
    eval_fails("", RF_ERR_FORMAT, "unexpected end");
    eval_fails("a+", RF_ERR_FORMAT, "unexpected end");
    eval_fails("(a", RF_ERR_FORMAT, "expected ')'");
    eval_fails("a b", RF_ERR_FORMAT, "after the expression");
    eval_fails("a$", RF_ERR_FORMAT, "after the expression");
    eval_fails("a == b", RF_ERR_FORMAT, "position 3");
    eval_fails("1.5", RF_ERR_FORMAT, "after the expression");
    char deep[400];
    memset(deep, '(', 200);
    deep[200] = '1';
    memset(deep + 201, ')', 198);
    deep[399] = '\0';
    eval_fails(deep, RF_ERR_LIMIT, "nest too deep");
    rf_error err = {0};
    cr_assert_eq(rf_expr_eval(NULL, lookup, NULL, NULL, &err), RF_ERR_ARGUMENT);
}

/* ---- roles and names ------------------------------------------------------------------------- */

typedef struct cond_ctx {
    const rf_model_config *cfg;
    const rf_family *family;
} cond_ctx;

static bool cond_lookup(void *ctx, const char *name, size_t len, int64_t *value)
{
    cond_ctx *cc = ctx;
    return rf_contract_value(cc->cfg, cc->family, name, len, value);
}

/* A condition of the layout evaluated on cfg and family: 1, 0, or -1 when it has no value. */
static int condition(const char *expr, const rf_model_config *cfg, const rf_family *f)
{
    cond_ctx cc = {cfg, f};
    int64_t v;
    if (rf_expr_eval(expr, cond_lookup, &cc, &v, NULL) != RF_OK)
        return -1;
    return v != 0;
}

/* Spellings written out by hand (llama.cpp's tensor names, Hugging Face's Qwen2 module names):
 * an independent statement of the map the contract must reproduce. */
static const char *const KNOWN[][3] = {
    {"model.embed_tokens.weight", "token_embd.weight", "token_embd"},
    {"model.norm.weight", "output_norm.weight", "output_norm"},
    {"lm_head.weight", "output.weight", "output"},
    {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight", "attn_norm"},
    {"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight", "attn_q"},
    {"model.layers.1.self_attn.q_proj.bias", "blk.1.attn_q.bias", "attn_q_bias"},
    {"model.layers.2.self_attn.k_proj.weight", "blk.2.attn_k.weight", "attn_k"},
    {"model.layers.3.self_attn.k_proj.bias", "blk.3.attn_k.bias", "attn_k_bias"},
    {"model.layers.4.self_attn.v_proj.weight", "blk.4.attn_v.weight", "attn_v"},
    {"model.layers.5.self_attn.v_proj.bias", "blk.5.attn_v.bias", "attn_v_bias"},
    {"model.layers.10.self_attn.o_proj.weight", "blk.10.attn_output.weight", "attn_output"},
    {"model.layers.23.post_attention_layernorm.weight", "blk.23.ffn_norm.weight", "ffn_norm"},
    {"model.layers.27.mlp.gate_proj.weight", "blk.27.ffn_gate.weight", "ffn_gate"},
    {"model.layers.35.mlp.up_proj.weight", "blk.35.ffn_up.weight", "ffn_up"},
    {"model.layers.63.mlp.down_proj.weight", "blk.63.ffn_down.weight", "ffn_down"},
    {"model.layers.2.self_attn.q_norm.weight", "blk.2.attn_q_norm.weight", "attn_q_norm"},
    {"model.layers.2.self_attn.k_norm.weight", "blk.2.attn_k_norm.weight", "attn_k_norm"},
    {"model.layers.2.self_attn.o_proj.bias", "blk.2.attn_output.bias", "attn_output_bias"},
};

Test(contract_names, known_spellings_both_ways)
{
    rf_contracts *c = load_repo();
    char out[256];
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++) {
        const char *hf = KNOWN[i][0], *gguf = KNOWN[i][1];
        int64_t layer;
        rf_naming naming;
        const rf_role *r = rf_contracts_role_of(c, hf, &layer, &naming);
        cr_assert_not_null(r, "%s", hf);
        cr_assert_str_eq(rf_role_id(r), KNOWN[i][2]);
        cr_assert_eq(naming, RF_NAMING_HF);
        cr_assert_eq(rf_contracts_role_of(c, gguf, NULL, &naming), r, "%s", gguf);
        cr_assert_eq(naming, RF_NAMING_GGUF);
        cr_assert_eq(rf_contracts_map_name(c, hf, RF_NAMING_GGUF, out, sizeof out, NULL), RF_OK);
        cr_assert_str_eq(out, gguf);
        cr_assert_eq(rf_contracts_map_name(c, gguf, RF_NAMING_HF, out, sizeof out, NULL), RF_OK);
        cr_assert_str_eq(out, hf);
        cr_assert_eq(rf_contracts_map_name(c, gguf, RF_NAMING_APR, out, sizeof out, NULL), RF_OK);
        cr_assert_str_eq(out, hf, "APR spells roles as Hugging Face does (aprender)");
        /* the names.h wrappers give the same answers */
        cr_assert(rf_name_to_gguf(hf, out, sizeof out));
        cr_assert_str_eq(out, gguf);
        cr_assert(rf_name_to_hf(gguf, out, sizeof out));
        cr_assert_str_eq(out, hf);
    }
    rf_contracts_free(c);
}

Test(contract_names, every_qwen2_role_in_every_spelling_round_trips)
{
    rf_contracts *c = load_repo();
    const rf_family *qwen2 = rf_contracts_family_for(c, "qwen2");
    cr_assert_not_null(qwen2);
    static const int64_t layers[] = {0, 1, 9, 10, 23, 99, 123456789};
    size_t qwen2_roles = 0;
    for (size_t i = 0; i < rf_contracts_n_roles(c); i++) {
        const rf_role *r = rf_contracts_role(c, i);
        size_t n_layers = rf_role_per_layer(r) ? sizeof layers / sizeof layers[0] : 1;
        for (size_t k = 0; k < n_layers; k++) {
            int64_t layer = rf_role_per_layer(r) ? layers[k] : -1;
            char names[RF_NAMING_COUNT][256];
            for (int n = 0; n < RF_NAMING_COUNT; n++) {
                cr_assert_eq(rf_role_name(r, (rf_naming)n, layer, names[n], sizeof names[n], NULL),
                             RF_OK);
                int64_t got_layer = -7;
                cr_assert_eq(rf_contracts_role_of(c, names[n], &got_layer, NULL), r, "%s",
                             names[n]);
                cr_assert_eq(got_layer, layer, "%s", names[n]);
                if (n == RF_NAMING_GGUF)
                    cr_assert(strlen(names[n]) < 64, "GGUF names stay under GGML_MAX_NAME");
            }
            for (int from = 0; from < RF_NAMING_COUNT; from++)
                for (int to = 0; to < RF_NAMING_COUNT; to++) {
                    char out[256];
                    cr_assert_eq(
                        rf_contracts_map_name(c, names[from], (rf_naming)to, out, sizeof out, NULL),
                        RF_OK);
                    cr_assert_str_eq(out, names[to]);
                }
        }
        rf_model_config untied = {.tie_word_embeddings = 0};
        qwen2_roles += condition(rf_role_allowed_if(r), &untied, qwen2) == 1;
    }
    cr_assert_eq(qwen2_roles, 15, "3 whole-model roles and 12 per layer for Qwen2");
    rf_contracts_free(c);
}

Test(contract_names, unknown_and_malformed_names_pass_through)
{
    rf_contracts *c = load_repo();
    static const char *const unknown[] = {"model.layers.0.mlp.experts.0.w1",
                                          "blk.0.ffn_gate_exps.weight",
                                          "model.layers.x.self_attn.q_proj.weight",
                                          "blk..attn_q.weight",
                                          "blk.01.attn_q.weight",
                                          "blk.-1.attn_q.weight",
                                          "blk.1234567890.attn_q.weight",
                                          "model.layers.0",
                                          "transformer.h.0.attn.c_attn.weight",
                                          "",
                                          "blk.0.attn_q.weight.extra",
                                          "xblk.0.attn_q.weight",
                                          "rope_freqs.weight"};
    char out[256];
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        rf_error err = {0};
        cr_assert_null(rf_contracts_role_of(c, unknown[i], NULL, NULL), "%s", unknown[i]);
        cr_assert_eq(rf_contracts_map_name(c, unknown[i], RF_NAMING_GGUF, out, sizeof out, &err),
                     RF_ERR_NOT_FOUND, "%s", unknown[i]);
        cr_assert_str_eq(out, unknown[i], "unknown names are handed back unchanged");
        cr_assert_eq(rf_contracts_apr_name(c, unknown[i], "qwen2", out, sizeof out, NULL), RF_OK);
        cr_assert_str_eq(out, unknown[i]);
        cr_assert_eq(rf_name_scheme_of(unknown[i]), RF_NAMES_UNKNOWN, "%s", unknown[i]);
    }
    char tiny[8];
    cr_assert_eq(rf_contracts_map_name(c, "model.embed_tokens.weight", RF_NAMING_GGUF, tiny,
                                       sizeof tiny, NULL),
                 RF_ERR_LIMIT);
    cr_assert_eq(
        rf_contracts_map_name(c, "rope_freqs.weight", RF_NAMING_GGUF, tiny, sizeof tiny, NULL),
        RF_ERR_LIMIT);
    const rf_role *q = rf_contracts_find_role(c, "attn_q");
    cr_assert_eq(rf_role_name(q, RF_NAMING_GGUF, -1, out, sizeof out, NULL), RF_ERR_ARGUMENT);
    rf_contracts_free(c);
}

Test(contract_names, apr_spelling_follows_the_family)
{
    rf_contracts *c = load_repo();
    char out[256];
    static const struct {
        const char *name, *arch, *want;
    } cases[] = {
        {"blk.3.attn_k.bias", "qwen2", "model.layers.3.self_attn.k_proj.bias"},
        {"token_embd.weight", "qwen3", "model.embed_tokens.weight"},
        {"blk.0.attn_q_norm.weight", "Qwen3ForCausalLM", "model.layers.0.self_attn.q_norm.weight"},
        {"output.weight", "QWEN2", "lm_head.weight"},
        {"model.layers.0.mlp.up_proj.weight", "qwen2", "model.layers.0.mlp.up_proj.weight"},
        {"blk.3.attn_k.bias", "llama", "blk.3.attn_k.bias"},
        {"blk.3.attn_k.bias", NULL, "blk.3.attn_k.bias"},
        {"blk.3.attn_k.bias", "mamba", "blk.3.attn_k.bias"},
        {"blk.0.ffn_gate_exps.weight", "qwen2", "blk.0.ffn_gate_exps.weight"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(rf_contracts_apr_name(c, cases[i].name, cases[i].arch, out, sizeof out, NULL),
                     RF_OK);
        cr_assert_str_eq(out, cases[i].want, "%s (%s)", cases[i].name,
                         cases[i].arch ? cases[i].arch : "no arch");
        cr_assert(rf_name_to_apr(cases[i].name, cases[i].arch, out, sizeof out));
        cr_assert_str_eq(out, cases[i].want);
    }
    char tiny[4];
    cr_assert(!rf_name_to_apr("output.weight", "llama", tiny, sizeof tiny));
    rf_contracts_free(c);
}

Test(contract_names, tied_and_untied_heads_and_biases)
{
    rf_contracts *c = load_repo();
    const rf_role *head = rf_contracts_find_role(c, "output");
    const rf_role *bias = rf_contracts_find_role(c, "attn_q_bias");
    const rf_role *qnorm = rf_contracts_find_role(c, "attn_q_norm");
    const rf_family *qwen2 = rf_contracts_family_for(c, "Qwen2ForCausalLM");
    const rf_family *llama = rf_contracts_family_for(c, "llama");
    const rf_family *qwen3 = rf_contracts_family_for(c, "qwen3");
    rf_model_config tied = {.tie_word_embeddings = 1}, untied = {.tie_word_embeddings = 0},
                    unknown = {.tie_word_embeddings = -1};
    cr_assert_eq(condition(rf_role_required_if(head), &tied, qwen2), 0, "tied: no head needed");
    cr_assert_eq(condition(rf_role_required_if(head), &untied, qwen2), 1);
    cr_assert_eq(condition(rf_role_allowed_if(head), &tied, qwen2), 1,
                 "a tied APR keeps a copy of the head");
    cr_assert_eq(condition(rf_role_required_if(head), &unknown, qwen2), -1, "no value");
    cr_assert_eq(condition(rf_role_required_if(bias), &untied, qwen2), 1, "Qwen2 has q/k/v bias");
    cr_assert_eq(condition(rf_role_allowed_if(bias), &untied, llama), 0, "LLaMA has none");
    cr_assert_eq(condition(rf_role_required_if(bias), &untied, NULL), -1, "no family: unknown");
    cr_assert_eq(condition(rf_role_required_if(qnorm), &untied, qwen3), 1);
    cr_assert_eq(condition(rf_role_allowed_if(qnorm), &untied, qwen2), 0);
    rf_contracts_free(c);
}

/* ---- families ----------------------------------------------------------------------------------
 */

Test(contract_family, lookup_and_fields)
{
    rf_contracts *c = load_repo();
    const rf_family *f = rf_contracts_family_for(c, "Qwen2ForCausalLM");
    cr_assert_not_null(f);
    cr_assert_eq(rf_contracts_family_for(c, "qwen2"), f);
    cr_assert_eq(rf_contracts_family_for(c, "QWEN2"), f);
    cr_assert_str_eq(rf_family_name(rf_contracts_family_for(c, "LlamaForCausalLM")), "llama");
    cr_assert_null(rf_contracts_family_for(c, "qwen2moe"));
    cr_assert_null(rf_contracts_family_for(c, NULL));
    cr_assert_eq(rf_family_flag(f, "qkv_bias"), 1);
    cr_assert_eq(rf_family_flag(f, "qk_norm"), 0);
    cr_assert_eq(rf_family_flag(f, "no_such_flag"), -1);
    cr_assert_eq(rf_family_rope_type(f), RF_ROPE_NEOX);
    cr_assert_eq(rf_family_rope_type(rf_contracts_family_for(c, "llama")), RF_ROPE_NORM);
    cr_assert_str_eq(rf_family_constraint(f, "norm"), "rmsnorm");
    cr_assert_str_eq(rf_family_constraint(f, "mlp"), "swiglu");
    cr_assert_str_eq(rf_family_constraint(f, "attention"), "gqa");
    cr_assert_str_eq(rf_family_constraint(f, "qkv_bias"), "true");
    cr_assert(rf_family_apr_maps_gguf_names(f));
    cr_assert(!rf_family_apr_maps_gguf_names(rf_contracts_family_for(c, "llama")));
    int64_t id;
    cr_assert_str_eq(rf_family_token(f, "eos", &id), "<|im_end|>");
    cr_assert_eq(id, 151645);
    cr_assert_str_eq(rf_family_token(f, "bos", &id), "<|endoftext|>");
    cr_assert_eq(id, 151643);
    cr_assert_null(rf_family_token(f, "unk", &id));
    cr_assert_str_eq(rf_family_chat_template(f, "format"), "chatml");
    cr_assert_str_eq(rf_family_chat_template(f, "generation_prompt"), "<|im_start|>assistant\n");
    static const char *const sizes[] = {"0.5B", "1.5B", "3B", "7B", "14B", "32B"};
    static const int tied[] = {1, 1, 1, 0, 0, 0};
    cr_assert_eq(rf_family_n_sizes(f), 6);
    for (size_t i = 0; i < 6; i++) {
        const rf_family_size *s = rf_family_size_at(f, i);
        cr_assert_str_eq(s->name, sizes[i]);
        cr_assert_eq(s->config.tie_word_embeddings, tied[i], "%s", sizes[i]);
        cr_assert_eq(s->config.rope_type, RF_ROPE_NEOX);
        cr_assert_eq(rf_family_match_size(f, &s->config), s);
    }
    rf_model_config half = rf_family_size_at(f, 0)->config;
    cr_assert_eq(half.hidden_size, 896);
    cr_assert_eq(half.n_kv_heads, 2);
    half.n_layers = 2;
    cr_assert_null(rf_family_match_size(f, &half));
    rf_contracts_free(c);
}

/* The layout's shape expressions, evaluated on each size's config, must add up to the parameter
 * and tensor counts the family file states (from the published model cards and qwen2.md). */
Test(contract_family, shapes_add_up_to_the_stated_sizes)
{
    rf_contracts *c = load_repo();
    size_t checked = 0;
    for (size_t fi = 0; fi < rf_contracts_n_families(c); fi++) {
        const rf_family *f = rf_contracts_family(c, fi);
        for (size_t si = 0; si < rf_family_n_sizes(f); si++) {
            const rf_family_size *s = rf_family_size_at(f, si);
            uint64_t params = 0, tensors = 0;
            for (size_t ri = 0; ri < rf_contracts_n_roles(c); ri++) {
                const rf_role *r = rf_contracts_role(c, ri);
                if (condition(rf_role_required_if(r), &s->config, f) != 1)
                    continue;
                uint64_t shape[RF_MAX_DIMS];
                int ndim;
                rf_error err = {0};
                cr_assert_eq(rf_role_expected_shape(r, &s->config, f, shape, &ndim, &err), RF_OK,
                             "%s", err.message);
                cr_assert_eq(ndim, rf_role_ndim(r));
                uint64_t elems = 1;
                for (int d = 0; d < ndim; d++)
                    elems *= shape[d];
                uint64_t copies = rf_role_per_layer(r) ? s->config.n_layers : 1;
                params += elems * copies;
                tensors += copies;
            }
            if (s->n_tensors)
                cr_assert_eq(tensors, s->n_tensors, "%s %s: tensors", rf_family_name(f), s->name);
            if (s->parameters)
                cr_assert_eq(params, s->parameters, "%s %s: %" PRIu64 " parameters",
                             rf_family_name(f), s->name, params);
            checked += s->parameters != 0;
        }
    }
    cr_assert_geq(checked, 9);
    rf_contracts_free(c);
}

Test(contract_family, expected_shapes_of_qwen2_0_5b)
{
    rf_contracts *c = load_repo();
    const rf_family *f = rf_contracts_family_for(c, "qwen2");
    const rf_model_config *cfg = &rf_family_size_at(f, 0)->config;
    static const struct {
        const char *role;
        int ndim;
        uint64_t d0, d1;
    } want[] = {
        {"token_embd", 2, 151936, 896}, {"output", 2, 151936, 896}, {"attn_q", 2, 896, 896},
        {"attn_k", 2, 128, 896},        {"attn_v_bias", 1, 128, 0}, {"attn_output", 2, 896, 896},
        {"ffn_gate", 2, 4864, 896},     {"ffn_down", 2, 896, 4864}, {"output_norm", 1, 896, 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint64_t shape[RF_MAX_DIMS];
        int ndim;
        cr_assert_eq(rf_role_expected_shape(rf_contracts_find_role(c, want[i].role), cfg, f, shape,
                                            &ndim, NULL),
                     RF_OK);
        cr_assert_eq(ndim, want[i].ndim, "%s", want[i].role);
        cr_assert_eq(shape[0], want[i].d0, "%s", want[i].role);
        if (ndim == 2)
            cr_assert_eq(shape[1], want[i].d1, "%s", want[i].role);
    }
    rf_model_config missing = *cfg;
    missing.n_kv_heads = 0;
    uint64_t shape[RF_MAX_DIMS];
    int ndim;
    rf_error err = {0};
    cr_assert_eq(rf_role_expected_shape(rf_contracts_find_role(c, "attn_k"), &missing, f, shape,
                                        &ndim, &err),
                 RF_ERR_FORMAT);
    cr_assert_not_null(strstr(err.message, "num_kv_heads"), "%s", err.message);
    rf_contracts_free(c);
}

/* ---- rf_contract_check on the fixtures --------------------------------------------------------
 */

Test(contract_check, fixtures_pass_and_report_the_family)
{
    rf_contracts *c = load_repo();
    static const char *const fixtures[] = {"tiny-qwen2", "tiny-qwen2-tied", "tiny-qwen2-odd"};
    for (size_t i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/fixtures/%s", ROSETTA_ROOT, fixtures[i]);
        rf_error err = {0};
        rf_model *m = rf_model_open(path, NULL, &err);
        cr_assert_not_null(m, "%s", err.message);
        rf_contract_options opts = {.contracts = c};
        rf_contract_report *r = NULL;
        cr_assert_eq(rf_contract_check(m, &opts, &r, &err), RF_OK, "%s", err.message);
        cr_assert_eq(
            rf_contract_report_n_violations(r), 0, "%s: %s", fixtures[i],
            rf_contract_report_n_violations(r) ? rf_contract_report_violation(r, 0)->message : "");
        cr_assert_eq(rf_contract_report_status(r, true, &err), RF_OK);
        cr_assert_str_eq(rf_family_name(rf_contract_report_family(r)), "qwen2");
        cr_assert_null(rf_contract_report_size(r), "tiny models are not a listed size");
        cr_assert_eq(rf_contract_report_n_results(r), rf_contract_n_rules());
        for (size_t k = 0; k < rf_contract_report_n_results(r); k++) {
            const rf_rule_result *res = rf_contract_report_result(r, k);
            cr_assert_eq(res->rule, rf_contract_rule(k), "results in rule order");
            cr_assert_eq(res->failed, 0);
        }
        rf_contract_report_free(r);

        /* structural only: no quality rule runs; --arch llama: LLaMA has no biases */
        opts.rules = RF_RULE_STRUCTURAL;
        opts.architecture = "llama";
        cr_assert_eq(rf_contract_check(m, &opts, &r, &err), RF_OK, "%s", err.message);
        for (size_t k = 0; k < rf_contract_report_n_results(r); k++)
            cr_assert_eq(rf_contract_report_result(r, k)->rule->rule_class, RF_RULE_STRUCTURAL);
        cr_assert_gt(rf_contract_report_n_violations(r), 0);
        bool bias = false, rope = false;
        for (size_t k = 0; k < rf_contract_report_n_violations(r); k++) {
            const rf_violation *v = rf_contract_report_violation(r, k);
            bias = bias || strcmp(v->rule, "layout.bias_presence") == 0;
            rope = rope || strcmp(v->rule, "config.rope_type") == 0;
        }
        cr_assert(bias && rope, "%s against llama: biases and RoPE type", fixtures[i]);
        cr_assert_eq(rf_contract_report_status(r, false, &err), RF_ERR_CONTRACT);
        cr_assert_not_null(strstr(err.message, "layout.bias_presence ("), "%s", err.message);
        cr_assert_not_null(strstr(err.message, "config.rope_type (1)"), "%s", err.message);
        rf_contract_report_free(r);
        rf_model_free(m);
    }
    rf_contracts_free(c);
}

Test(contract_check, rule_table)
{
    cr_assert_geq(rf_contract_n_rules(), 20);
    bool quality_seen = false;
    for (size_t i = 0; i < rf_contract_n_rules(); i++) {
        const rf_rule_info *r = rf_contract_rule(i);
        cr_assert_eq(rf_contract_find_rule(r->id), r);
        cr_assert(strchr(r->id, '.'), "ids are <area>.<what>: %s", r->id);
        if (r->rule_class == RF_RULE_QUALITY)
            quality_seen = true;
        else
            cr_assert(!quality_seen, "structural rules come first");
    }
    cr_assert_null(rf_contract_rule(rf_contract_n_rules()));
    cr_assert_null(rf_contract_find_rule("layout.nope"));
}
