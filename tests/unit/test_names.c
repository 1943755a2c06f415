/* Tensor-name map between Hugging Face, GGUF and APR spellings, both ways, through the names.h
 * wrappers over the default contracts (contracts/tensor-layout.json of the source tree). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "rosetta/names.h"

static const char *const PAIRS[][2] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
    {"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"},
    {"model.layers.0.self_attn.q_proj.bias", "blk.0.attn_q.bias"},
    {"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight"},
    {"model.layers.1.self_attn.k_proj.bias", "blk.1.attn_k.bias"},
    {"model.layers.2.self_attn.v_proj.weight", "blk.2.attn_v.weight"},
    {"model.layers.2.self_attn.v_proj.bias", "blk.2.attn_v.bias"},
    {"model.layers.10.self_attn.o_proj.weight", "blk.10.attn_output.weight"},
    {"model.layers.3.self_attn.q_norm.weight", "blk.3.attn_q_norm.weight"},
    {"model.layers.3.self_attn.k_norm.weight", "blk.3.attn_k_norm.weight"},
    {"model.layers.27.input_layernorm.weight", "blk.27.attn_norm.weight"},
    {"model.layers.27.post_attention_layernorm.weight", "blk.27.ffn_norm.weight"},
    {"model.layers.5.mlp.gate_proj.weight", "blk.5.ffn_gate.weight"},
    {"model.layers.5.mlp.up_proj.weight", "blk.5.ffn_up.weight"},
    {"model.layers.5.mlp.down_proj.weight", "blk.5.ffn_down.weight"},
};

Test(names, hf_and_gguf_both_ways)
{
    char out[128];
    for (size_t i = 0; i < sizeof PAIRS / sizeof PAIRS[0]; i++) {
        const char *hf = PAIRS[i][0], *gguf = PAIRS[i][1];
        cr_assert(rf_name_to_gguf(hf, out, sizeof out), "%s", hf);
        cr_assert_str_eq(out, gguf);
        cr_assert(rf_name_to_gguf(gguf, out, sizeof out), "GGUF spelling maps to itself");
        cr_assert_str_eq(out, gguf);
        cr_assert(rf_name_to_hf(gguf, out, sizeof out), "%s", gguf);
        cr_assert_str_eq(out, hf);
        cr_assert(rf_name_to_hf(hf, out, sizeof out));
        cr_assert_str_eq(out, hf);
        cr_assert_eq(rf_name_scheme_of(hf), RF_NAMES_HF);
        cr_assert_eq(rf_name_scheme_of(gguf), RF_NAMES_GGUF);
    }
}

Test(names, every_layer_of_a_qwen2_model_round_trips)
{
    static const char *const suffixes[] = {
        "self_attn.q_proj.weight", "self_attn.q_proj.bias",   "self_attn.k_proj.weight",
        "self_attn.k_proj.bias",   "self_attn.v_proj.weight", "self_attn.v_proj.bias",
        "self_attn.o_proj.weight", "input_layernorm.weight",  "post_attention_layernorm.weight",
        "mlp.gate_proj.weight",    "mlp.up_proj.weight",      "mlp.down_proj.weight"};
    char hf[128], gguf[128], back[128];
    for (int layer = 0; layer < 36; layer++)
        for (size_t s = 0; s < 12; s++) {
            snprintf(hf, sizeof hf, "model.layers.%d.%s", layer, suffixes[s]);
            cr_assert(rf_name_to_gguf(hf, gguf, sizeof gguf), "%s", hf);
            char prefix[32];
            snprintf(prefix, sizeof prefix, "blk.%d.", layer);
            cr_assert_eq(strncmp(gguf, prefix, strlen(prefix)), 0, "%s", gguf);
            cr_assert(strlen(gguf) < 64, "GGUF names stay under GGML_MAX_NAME");
            cr_assert(rf_name_to_hf(gguf, back, sizeof back));
            cr_assert_str_eq(back, hf);
        }
}

Test(names, unknown_and_malformed_names)
{
    char out[128];
    const char *unknown[] = {"model.layers.0.mlp.experts.0.w1",
                             "blk.0.ffn_gate_exps.weight",
                             "model.layers.x.self_attn.q_proj.weight",
                             "blk..attn_q.weight",
                             "model.layers.0",
                             "transformer.h.0.attn.c_attn.weight",
                             "",
                             "blk.0.attn_q.weight.extra",
                             "rope_freqs.weight"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        cr_assert(!rf_name_to_gguf(unknown[i], out, sizeof out), "%s", unknown[i]);
        cr_assert(!rf_name_to_hf(unknown[i], out, sizeof out), "%s", unknown[i]);
        cr_assert_eq(rf_name_scheme_of(unknown[i]), RF_NAMES_UNKNOWN, "%s", unknown[i]);
    }
    /* a layer number with leading zeros would not survive a round trip: not a role's name */
    cr_assert(!rf_name_to_gguf("model.layers.007.mlp.up_proj.weight", out, sizeof out));
    cr_assert(rf_name_to_gguf("model.layers.70.mlp.up_proj.weight", out, sizeof out));
    cr_assert_str_eq(out, "blk.70.ffn_up.weight");
    char tiny[8];
    cr_assert(!rf_name_to_gguf("model.embed_tokens.weight", tiny, sizeof tiny), "too small");
}

Test(names, apr_spelling_follows_aprender)
{
    char out[128];
    /* SafeTensors sources: HF names kept */
    cr_assert(rf_name_to_apr("model.layers.0.mlp.up_proj.weight", "qwen2", out, sizeof out));
    cr_assert_str_eq(out, "model.layers.0.mlp.up_proj.weight");
    /* GGUF sources of the Qwen families become HF names */
    cr_assert(rf_name_to_apr("blk.3.attn_k.bias", "qwen2", out, sizeof out));
    cr_assert_str_eq(out, "model.layers.3.self_attn.k_proj.bias");
    cr_assert(rf_name_to_apr("token_embd.weight", "qwen3", out, sizeof out));
    cr_assert_str_eq(out, "model.embed_tokens.weight");
    cr_assert(rf_name_to_apr("blk.0.attn_q_norm.weight", "qwen3", out, sizeof out));
    cr_assert_str_eq(out, "model.layers.0.self_attn.q_norm.weight");
    /* every other architecture keeps GGUF names, unknown suffixes are kept */
    cr_assert(rf_name_to_apr("blk.3.attn_k.bias", "llama", out, sizeof out));
    cr_assert_str_eq(out, "blk.3.attn_k.bias");
    cr_assert(rf_name_to_apr("blk.3.attn_k.bias", NULL, out, sizeof out));
    cr_assert_str_eq(out, "blk.3.attn_k.bias");
    cr_assert(rf_name_to_apr("blk.0.ffn_gate_exps.weight", "qwen2", out, sizeof out));
    cr_assert_str_eq(out, "blk.0.ffn_gate_exps.weight");
    char tiny[4];
    cr_assert(!rf_name_to_apr("output.weight", "llama", tiny, sizeof tiny));
}
