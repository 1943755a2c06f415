/* Quantization type plans (rosetta/quant_plan.h) against llama-quantize's rules: the worked Qwen2.5
 * mixes of docs/formats/quantization.md (0.5B confirmed by a public llama.cpp log), the
 * fallback class of rows that are not a multiple of 256, and every option. Models are synthetic
 * tensor lists with the real shapes; no weights. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosetta/quant_plan.h"

/* ---- synthetic Qwen2 models --------------------------------------------------------------- */

typedef struct qwen2_shape {
    uint64_t hidden, ff, n_layer, n_head, n_kv, head_dim, vocab;
    bool tied;
} qwen2_shape;

typedef struct synth {
    rf_tensor tensors[1024];
    char names[1024][64];
    size_t n;
    rf_quant_model_info info;
} synth;

static void add(synth *s, rf_dtype dtype, int ndim, uint64_t d0, uint64_t d1, const char *fmt,
                int layer)
{
    cr_assert_lt(s->n, 1024);
    snprintf(s->names[s->n], sizeof s->names[0], fmt, layer);
    rf_tensor *t = &s->tensors[s->n];
    memset(t, 0, sizeof *t);
    t->name = s->names[s->n];
    t->dtype = dtype;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    s->n++;
}

/* Tensors of a Qwen2 GGUF (convert_hf_to_gguf names, row-major shapes), all in dtype. */
static synth *make_qwen2(const qwen2_shape *q, rf_dtype dtype)
{
    synth *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    uint64_t H = q->hidden, QD = q->n_head * q->head_dim, KD = q->n_kv * q->head_dim;
    add(s, dtype, 2, q->vocab, H, "token_embd.weight", 0);
    if (!q->tied)
        add(s, dtype, 2, q->vocab, H, "output.weight", 0);
    add(s, dtype, 1, H, 0, "output_norm.weight", 0);
    for (int i = 0; i < (int)q->n_layer; i++) {
        add(s, dtype, 1, H, 0, "blk.%d.attn_norm.weight", i);
        add(s, dtype, 2, QD, H, "blk.%d.attn_q.weight", i);
        add(s, dtype, 1, QD, 0, "blk.%d.attn_q.bias", i);
        add(s, dtype, 2, KD, H, "blk.%d.attn_k.weight", i);
        add(s, dtype, 1, KD, 0, "blk.%d.attn_k.bias", i);
        add(s, dtype, 2, KD, H, "blk.%d.attn_v.weight", i);
        add(s, dtype, 1, KD, 0, "blk.%d.attn_v.bias", i);
        add(s, dtype, 2, H, QD, "blk.%d.attn_output.weight", i);
        add(s, dtype, 1, H, 0, "blk.%d.ffn_norm.weight", i);
        add(s, dtype, 2, q->ff, H, "blk.%d.ffn_gate.weight", i);
        add(s, dtype, 2, q->ff, H, "blk.%d.ffn_up.weight", i);
        add(s, dtype, 2, H, q->ff, "blk.%d.ffn_down.weight", i);
    }
    s->info.architecture = "qwen2";
    s->info.n_layer = (uint32_t)q->n_layer;
    s->info.n_head = (uint32_t)q->n_head;
    s->info.n_head_kv = (uint32_t)q->n_kv;
    return s;
}

static const qwen2_shape QWEN25_05B = {896, 4864, 24, 14, 2, 64, 151936, true};
static const qwen2_shape QWEN25_15B = {1536, 8960, 28, 12, 2, 128, 151936, true};
static const qwen2_shape QWEN25_3B = {2048, 11008, 36, 16, 2, 128, 151936, true};
static const qwen2_shape QWEN25_7B = {3584, 18944, 28, 28, 4, 128, 152064, false};
static const qwen2_shape TINY = {256, 768, 2, 4, 2, 64, 1024, false};     /* fixtures/tiny-qwen2 */
static const qwen2_shape TINY_TIED = {256, 768, 2, 4, 2, 64, 1024, true}; /* tiny-qwen2-tied */
static const qwen2_shape TINY_ODD = {160, 416, 3, 5, 1, 32, 1024, true};  /* tiny-qwen2-odd */

static rf_quant_plan *plan_of(const synth *s, const rf_quant_plan_options *o)
{
    rf_error err = {0};
    rf_quant_plan *plan = NULL;
    rf_status st = rf_quant_plan_make(s->tensors, s->n, &s->info, o, &plan, &err);
    cr_assert_eq(st, RF_OK, "plan failed: %s", err.message);
    cr_assert_not_null(plan);
    cr_assert_eq(plan->n_entries, s->n);
    return plan;
}

static rf_quant_plan *plan_mix(const synth *s, rf_quant_mix mix)
{
    rf_quant_plan_options o = rf_quant_plan_options_default(mix);
    return plan_of(s, &o);
}

static rf_dtype type_of(const rf_quant_plan *plan, const char *fmt, int layer)
{
    char name[64];
    snprintf(name, sizeof name, fmt, layer);
    const rf_quant_plan_entry *e = rf_quant_plan_find(plan, name);
    cr_assert_not_null(e, "no plan entry for %s", name);
    return e->dtype;
}

#define ASSERT_TYPE(plan, want, fmt, layer)                                                        \
    do {                                                                                           \
        rf_dtype got_ = type_of(plan, fmt, layer);                                                 \
        cr_assert_eq(got_, want, fmt ": got %s, want %s", layer, rf_dtype_name(got_),              \
                     rf_dtype_name(want));                                                         \
    } while (0)

static size_t count_type(const rf_quant_plan *plan, rf_dtype dtype)
{
    size_t n = 0;
    for (size_t i = 0; i < plan->n_entries; i++)
        n += plan->entries[i].dtype == dtype;
    return n;
}

static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* ---- worked mixes (docs/formats/quantization.md) ---------------------------------------- */

Test(quant_plan, qwen25_05b_q4_k_m_matches_public_log)
{
    synth *s = make_qwen2(&QWEN25_05B, RF_DTYPE_F32);
    rf_quant_plan *p = plan_mix(s, RF_MIX_Q4_K_M);
    cr_assert_eq(p->n_entries, 290);
    /* counts printed by llama.cpp's loader for the public Qwen2.5-0.5B-Instruct Q4_K_M file */
    cr_assert_eq(count_type(p, RF_DTYPE_F32), 121);
    cr_assert_eq(count_type(p, RF_DTYPE_Q5_0), 132);
    cr_assert_eq(count_type(p, RF_DTYPE_Q8_0), 13);
    cr_assert_eq(count_type(p, RF_DTYPE_Q4_K), 12);
    cr_assert_eq(count_type(p, RF_DTYPE_Q6_K), 12);
    cr_assert_eq(p->dst_bytes, 391859712ull, "tensor data %llu", (unsigned long long)p->dst_bytes);
    cr_assert_eq(p->n_fallback, 144);
    cr_assert_eq(p->file_type, 15);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "token_embd.weight%.0d", 0);
    ASSERT_TYPE(p, RF_DTYPE_F32, "output_norm.weight%.0d", 0);
    int layers_q6 = 0;
    for (int i = 0; i < 24; i++) {
        bool mb = more_bits(i, 24);
        layers_q6 += mb;
        ASSERT_TYPE(p, RF_DTYPE_Q5_0, "blk.%d.attn_q.weight", i);
        ASSERT_TYPE(p, RF_DTYPE_Q5_0, "blk.%d.attn_k.weight", i);
        ASSERT_TYPE(p, RF_DTYPE_Q5_0, "blk.%d.attn_output.weight", i);
        ASSERT_TYPE(p, RF_DTYPE_Q5_0, "blk.%d.ffn_gate.weight", i);
        ASSERT_TYPE(p, RF_DTYPE_Q5_0, "blk.%d.ffn_up.weight", i);
        ASSERT_TYPE(p, mb ? RF_DTYPE_Q8_0 : RF_DTYPE_Q5_0, "blk.%d.attn_v.weight", i);
        ASSERT_TYPE(p, mb ? RF_DTYPE_Q6_K : RF_DTYPE_Q4_K, "blk.%d.ffn_down.weight", i);
        ASSERT_TYPE(p, RF_DTYPE_F32, "blk.%d.attn_norm.weight", i);
        ASSERT_TYPE(p, RF_DTYPE_F32, "blk.%d.ffn_norm.weight", i);
        ASSERT_TYPE(p, RF_DTYPE_F32, "blk.%d.attn_q.bias", i);
        ASSERT_TYPE(p, RF_DTYPE_F32, "blk.%d.attn_k.bias", i);
        ASSERT_TYPE(p, RF_DTYPE_F32, "blk.%d.attn_v.bias", i);
    }
    cr_assert_eq(layers_q6, 12);
    /* the layer list of section 10.4 for n = 24 */
    static const int MB24[] = {0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23};
    for (size_t k = 0; k < sizeof MB24 / sizeof MB24[0]; k++)
        ASSERT_TYPE(p, RF_DTYPE_Q6_K, "blk.%d.ffn_down.weight", MB24[k]);
    const rf_quant_plan_entry *e = rf_quant_plan_find(p, "blk.5.attn_v.weight");
    cr_assert(e->fallback && e->chosen_dtype == RF_DTYPE_Q6_K);
    cr_assert(strstr(e->reason, "use_more_bits") && strstr(e->reason, "fallback"), "%s", e->reason);
    cr_assert(strstr(e->reason, "896"), "%s", e->reason);
    rf_quant_plan_free(p);
    free(s);
}

Test(quant_plan, qwen25_15b_3b_7b_q4_k_m_derived)
{
    struct {
        const qwen2_shape *shape;
        size_t n, f32, q4k, q6k;
        unsigned long long bytes;
    } CASES[] = {
        {&QWEN25_15B, 338, 141, 168, 29, 980097536ull},
        {&QWEN25_3B, 434, 181, 216, 37, 1923946496ull},
        {&QWEN25_7B, 339, 141, 169, 29, 4677120000ull},
    };
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        synth *s = make_qwen2(CASES[c].shape, RF_DTYPE_BF16);
        rf_quant_plan *p = plan_mix(s, RF_MIX_Q4_K_M);
        cr_assert_eq(p->n_entries, CASES[c].n);
        cr_assert_eq(count_type(p, RF_DTYPE_F32), 0, "BF16 norms stay BF16 in a GGUF source");
        cr_assert_eq(count_type(p, RF_DTYPE_BF16), CASES[c].f32);
        cr_assert_eq(count_type(p, RF_DTYPE_Q4_K), CASES[c].q4k);
        cr_assert_eq(count_type(p, RF_DTYPE_Q6_K), CASES[c].q6k);
        cr_assert_eq(p->n_fallback, 0);
        int n = (int)CASES[c].shape->n_layer;
        for (int i = 0; i < n; i++) {
            rf_dtype want = more_bits(i, n) ? RF_DTYPE_Q6_K : RF_DTYPE_Q4_K;
            ASSERT_TYPE(p, want, "blk.%d.attn_v.weight", i);
            ASSERT_TYPE(p, want, "blk.%d.ffn_down.weight", i);
            ASSERT_TYPE(p, RF_DTYPE_Q4_K, "blk.%d.attn_q.weight", i);
        }
        if (CASES[c].shape->tied) {
            ASSERT_TYPE(p, RF_DTYPE_Q6_K, "token_embd.weight%.0d", 0);
        } else {
            ASSERT_TYPE(p, RF_DTYPE_Q6_K, "output.weight%.0d", 0);
            ASSERT_TYPE(p, RF_DTYPE_Q4_K, "token_embd.weight%.0d", 0);
        }
        rf_quant_plan_free(p);
        /* sizes are computed with the F32 norms/biases of a converted GGUF */
        rf_quant_plan_options o = rf_quant_plan_options_default(RF_MIX_Q4_K_M);
        o.widen_kept_to_f32 = true;
        p = plan_of(s, &o);
        cr_assert_eq(count_type(p, RF_DTYPE_F32), CASES[c].f32);
        cr_assert_eq(p->dst_bytes, CASES[c].bytes, "case %zu: %llu bytes", c,
                     (unsigned long long)p->dst_bytes);
        rf_quant_plan_free(p);
        free(s);
    }
}

Test(quant_plan, use_more_bits_layer_lists)
{
    static const int MB28[] = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27};
    static const int MB36[] = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32, 33, 34, 35};
    struct {
        const qwen2_shape *shape;
        const int *layers;
        size_t n;
    } CASES[] = {{&QWEN25_15B, MB28, 14}, {&QWEN25_3B, MB36, 18}};
    for (size_t c = 0; c < 2; c++) {
        synth *s = make_qwen2(CASES[c].shape, RF_DTYPE_F32);
        for (int mix = 0; mix < 2; mix++) {
            rf_quant_plan *p = plan_mix(s, mix ? RF_MIX_Q5_K_M : RF_MIX_Q4_K_M);
            rf_dtype base = mix ? RF_DTYPE_Q5_K : RF_DTYPE_Q4_K;
            int n = (int)CASES[c].shape->n_layer;
            for (int i = 0; i < n; i++) {
                bool listed = false;
                for (size_t k = 0; k < CASES[c].n; k++)
                    listed |= CASES[c].layers[k] == i;
                ASSERT_TYPE(p, listed ? RF_DTYPE_Q6_K : base, "blk.%d.attn_v.weight", i);
                ASSERT_TYPE(p, listed ? RF_DTYPE_Q6_K : base, "blk.%d.ffn_down.weight", i);
                ASSERT_TYPE(p, base, "blk.%d.ffn_up.weight", i);
            }
            rf_quant_plan_free(p);
        }
        free(s);
    }
}

Test(quant_plan, processing_order)
{
    synth *s = make_qwen2(&QWEN25_05B, RF_DTYPE_F32);
    rf_quant_plan *p = plan_mix(s, RF_MIX_Q8_0);
    static const char *FIRST[] = {
        "output_norm.weight",    "token_embd.weight",      "blk.0.attn_k.bias",
        "blk.0.attn_k.weight",   "blk.0.attn_norm.weight", "blk.0.attn_output.weight",
        "blk.0.attn_q.bias",     "blk.0.attn_q.weight",    "blk.0.attn_v.bias",
        "blk.0.attn_v.weight",   "blk.0.ffn_down.weight",  "blk.0.ffn_gate.weight",
        "blk.0.ffn_norm.weight", "blk.0.ffn_up.weight",    "blk.1.attn_k.bias",
    };
    for (size_t i = 0; i < sizeof FIRST / sizeof FIRST[0]; i++)
        cr_assert_str_eq(p->entries[i].name, FIRST[i], "entry %zu", i);
    /* numeric layer order: blk.9 before blk.10 */
    size_t i9 = 0, i10 = 0;
    for (size_t i = 0; i < p->n_entries; i++) {
        if (strcmp(p->entries[i].name, "blk.9.ffn_up.weight") == 0)
            i9 = i;
        if (strcmp(p->entries[i].name, "blk.10.attn_k.bias") == 0)
            i10 = i;
        cr_assert_str_eq(p->entries[i].name, s->tensors[p->entries[i].tensor_index].name);
    }
    cr_assert_eq(i10, i9 + 1);
    rf_quant_plan_free(p);
    free(s);
}

/* ---- the odd-width fallback class (tiny-qwen2-odd, like Qwen2.5-0.5B's 896) --------------- */

Test(quant_plan, odd_width_fallbacks)
{
    synth *s = make_qwen2(&TINY_ODD, RF_DTYPE_F32);
    rf_quant_plan *p = plan_mix(s, RF_MIX_Q4_K_M);
    /* tied embedding, ne[0] = 160 is not a multiple of 256: the output rule picks Q8_0 */
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "token_embd.weight%.0d", 0);
    cr_assert(!rf_quant_plan_find(p, "token_embd.weight")->fallback);
    for (int i = 0; i < 3; i++) {
        bool mb = more_bits(i, 3); /* only layer 2 */
        cr_assert_eq(mb, i == 2);
        ASSERT_TYPE(p, RF_DTYPE_Q5_0, "blk.%d.attn_q.weight", i);
        ASSERT_TYPE(p, RF_DTYPE_Q5_0, "blk.%d.ffn_gate.weight", i);
        ASSERT_TYPE(p, mb ? RF_DTYPE_Q8_0 : RF_DTYPE_Q5_0, "blk.%d.attn_v.weight", i);
        /* ne[0] = 416 = 13 x 32 */
        ASSERT_TYPE(p, mb ? RF_DTYPE_Q8_0 : RF_DTYPE_Q5_0, "blk.%d.ffn_down.weight", i);
    }
    cr_assert_eq(p->n_fallback, 21); /* 7 weight matrices x 3 layers */
    const rf_quant_plan_entry *e = rf_quant_plan_find(p, "blk.0.ffn_down.weight");
    cr_assert(strstr(e->reason, "fallback: ne[0]=416 not a multiple of 256 (Q4_K) -> Q5_0"), "%s",
              e->reason);
    rf_quant_plan_free(p);

    /* Q5_K falls back to Q5_1, Q6_K to Q8_0 */
    p = plan_mix(s, RF_MIX_Q5_K_S);
    ASSERT_TYPE(p, RF_DTYPE_Q5_1, "blk.%d.attn_q.weight", 1);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "token_embd.weight%.0d", 0);
    rf_quant_plan_free(p);
    p = plan_mix(s, RF_MIX_Q6_K);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "blk.%d.attn_q.weight", 1);
    rf_quant_plan_free(p);
    /* Q3_K (and Q2_K) fall back to Q4_0 */
    p = plan_mix(s, RF_MIX_Q3_K_S);
    ASSERT_TYPE(p, RF_DTYPE_Q4_0, "blk.%d.attn_q.weight", 1);
    rf_quant_plan_free(p);
    /* 32-element mixes need no fallback at 160 and 416; the output rule gives Q6_K -> Q8_0 */
    p = plan_mix(s, RF_MIX_Q4_0);
    ASSERT_TYPE(p, RF_DTYPE_Q4_0, "blk.%d.attn_q.weight", 1);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "token_embd.weight%.0d", 0);
    e = rf_quant_plan_find(p, "token_embd.weight");
    cr_assert(e->fallback && e->chosen_dtype == RF_DTYPE_Q6_K);
    cr_assert_eq(p->n_fallback, 1);
    rf_quant_plan_free(p);
    p = plan_mix(s, RF_MIX_Q8_0);
    cr_assert_eq(count_type(p, RF_DTYPE_Q8_0), 1 + 7 * 3);
    cr_assert_eq(p->n_fallback, 0);
    rf_quant_plan_free(p);
    free(s);
}

Test(quant_plan, rows_not_multiple_of_32_fall_to_f16)
{
    synth s;
    memset(&s, 0, sizeof s);
    add(&s, RF_DTYPE_F32, 2, 64, 100, "blk.%d.attn_q.weight", 0);
    add(&s, RF_DTYPE_F32, 2, 64, 100, "blk.%d.ffn_down.weight", 0);
    add(&s, RF_DTYPE_F32, 2, 64, 100, "token_embd.weight%.0d", 0);
    s.info.n_layer = 1;
    rf_quant_mix mixes[] = {RF_MIX_Q4_K_M, RF_MIX_Q8_0, RF_MIX_Q4_0, RF_MIX_Q5_1, RF_MIX_Q6_K};
    for (size_t m = 0; m < sizeof mixes / sizeof mixes[0]; m++) {
        rf_quant_plan *p = plan_mix(&s, mixes[m]);
        ASSERT_TYPE(p, RF_DTYPE_F16, "blk.%d.attn_q.weight", 0);
        ASSERT_TYPE(p, RF_DTYPE_F16, "blk.%d.ffn_down.weight", 0);
        /* the output rule gives Q8_0 (100 % qk != 0), which does not divide 100 either */
        ASSERT_TYPE(p, RF_DTYPE_F16, "token_embd.weight%.0d", 0);
        cr_assert_eq(p->n_fallback, 3);
        cr_assert(strstr(rf_quant_plan_find(p, "blk.0.attn_q.weight")->reason, "-> F16"));
        rf_quant_plan_free(p);
    }
}

Test(quant_plan, what_is_never_quantized)
{
    synth s;
    memset(&s, 0, sizeof s);
    add(&s, RF_DTYPE_F32, 2, 1, 256, "blk.%d.attn_q.weight", 0); /* ne = [256, 1]: 1-D for ggml */
    add(&s, RF_DTYPE_F32, 2, 256, 256, "blk.%d.attn_q.bias", 0);
    add(&s, RF_DTYPE_F32, 2, 256, 256, "blk.%d.attn_q_norm.weight", 0);
    add(&s, RF_DTYPE_F32, 2, 256, 256, "blk.%d.ffn_gate_inp.weight", 0);
    add(&s, RF_DTYPE_F32, 2, 256, 256, "position_embd.weight%.0d", 0);
    add(&s, RF_DTYPE_F32, 2, 256, 256, "blk.%d.ssm_conv1d.weight", 0);
    add(&s, RF_DTYPE_F32, 3, 2, 256, "blk.%d.ffn_up_exps.weight", 0);
    s.tensors[s.n - 1].shape[2] = 256;
    add(&s, RF_DTYPE_F32, 2, 256, 256, "blk.%d.some_weight", 0);
    add(&s, RF_DTYPE_I32, 1, 8, 0, "blk.%d.ids", 0);
    s.info.n_layer = 1;
    rf_quant_plan *p = plan_mix(&s, RF_MIX_Q4_K_M);
    const char *kept[] = {"blk.0.attn_q.weight",
                          "blk.0.attn_q.bias",
                          "blk.0.attn_q_norm.weight",
                          "blk.0.ffn_gate_inp.weight",
                          "position_embd.weight",
                          "blk.0.ssm_conv1d.weight",
                          "blk.0.ids"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        const rf_quant_plan_entry *e = rf_quant_plan_find(p, kept[i]);
        cr_assert(!e->quantizable && !e->convert, "%s", kept[i]);
        cr_assert(strstr(e->reason, "not quantized"), "%s: %s", kept[i], e->reason);
    }
    cr_assert(strstr(rf_quant_plan_find(p, "blk.0.attn_q_norm.weight")->reason, "norm"));
    ASSERT_TYPE(p, RF_DTYPE_Q4_K, "blk.%d.ffn_up_exps.weight", 0);
    ASSERT_TYPE(p, RF_DTYPE_Q4_K, "blk.%d.some_weight", 0); /* ends in "weight" */
    rf_quant_plan_free(p);
}

Test(quant_plan, widen_kept_to_f32_for_converted_sources)
{
    synth *s = make_qwen2(&TINY, RF_DTYPE_BF16);
    rf_quant_plan_options o = rf_quant_plan_options_default(RF_MIX_Q8_0);
    rf_quant_plan *p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_BF16, "blk.%d.attn_norm.weight", 0);
    cr_assert_eq(p->n_convert, 2 + 7 * 2);
    rf_quant_plan_free(p);
    o.widen_kept_to_f32 = true;
    p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_F32, "blk.%d.attn_norm.weight", 0);
    ASSERT_TYPE(p, RF_DTYPE_F32, "blk.%d.attn_v.bias", 1);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "output.weight%.0d", 0);
    cr_assert_eq(p->n_convert, p->n_entries);
    rf_quant_plan_free(p);
    free(s);
}

/* ---- every mix on the fixtures' shapes ----------------------------------------------------- */

Test(quant_plan, mixes_on_tiny_untied)
{
    synth *s = make_qwen2(&TINY, RF_DTYPE_F32); /* 2 layers, width 256, FF 768 */
    struct {
        rf_quant_mix mix;
        rf_dtype output, token, attn_v0, attn_v1, ffn_down0, ffn_down1, other;
    } CASES[] = {
        /* n = 2: use_more_bits holds for layer 1 only (1 >= 7*2/8) */
        {RF_MIX_Q4_K_M, RF_DTYPE_Q6_K, RF_DTYPE_Q4_K, RF_DTYPE_Q4_K, RF_DTYPE_Q6_K, RF_DTYPE_Q4_K,
         RF_DTYPE_Q6_K, RF_DTYPE_Q4_K},
        {RF_MIX_Q5_K_M, RF_DTYPE_Q6_K, RF_DTYPE_Q5_K, RF_DTYPE_Q5_K, RF_DTYPE_Q6_K, RF_DTYPE_Q5_K,
         RF_DTYPE_Q6_K, RF_DTYPE_Q5_K},
        /* Q4_K_S: attn_v of layers < 4 -> Q5_K; ffn_down i < n/8 = 0: none */
        {RF_MIX_Q4_K_S, RF_DTYPE_Q6_K, RF_DTYPE_Q4_K, RF_DTYPE_Q5_K, RF_DTYPE_Q5_K, RF_DTYPE_Q4_K,
         RF_DTYPE_Q4_K, RF_DTYPE_Q4_K},
        {RF_MIX_Q5_K_S, RF_DTYPE_Q6_K, RF_DTYPE_Q5_K, RF_DTYPE_Q5_K, RF_DTYPE_Q5_K, RF_DTYPE_Q5_K,
         RF_DTYPE_Q5_K, RF_DTYPE_Q5_K},
        {RF_MIX_Q6_K, RF_DTYPE_Q6_K, RF_DTYPE_Q6_K, RF_DTYPE_Q6_K, RF_DTYPE_Q6_K, RF_DTYPE_Q6_K,
         RF_DTYPE_Q6_K, RF_DTYPE_Q6_K},
        {RF_MIX_Q8_0, RF_DTYPE_Q8_0, RF_DTYPE_Q8_0, RF_DTYPE_Q8_0, RF_DTYPE_Q8_0, RF_DTYPE_Q8_0,
         RF_DTYPE_Q8_0, RF_DTYPE_Q8_0},
        {RF_MIX_Q4_0, RF_DTYPE_Q6_K, RF_DTYPE_Q4_0, RF_DTYPE_Q4_0, RF_DTYPE_Q4_0, RF_DTYPE_Q4_0,
         RF_DTYPE_Q4_0, RF_DTYPE_Q4_0},
        {RF_MIX_Q5_0, RF_DTYPE_Q6_K, RF_DTYPE_Q5_0, RF_DTYPE_Q5_0, RF_DTYPE_Q5_0, RF_DTYPE_Q5_0,
         RF_DTYPE_Q5_0, RF_DTYPE_Q5_0},
        {RF_MIX_Q4_1, RF_DTYPE_Q6_K, RF_DTYPE_Q4_1, RF_DTYPE_Q4_1, RF_DTYPE_Q4_1, RF_DTYPE_Q4_1,
         RF_DTYPE_Q4_1, RF_DTYPE_Q4_1},
        /* Q3_K_M: attn_v Q5_K for the first 2, ffn_down Q4_K (i >= n/16), attn_output Q4_K */
        {RF_MIX_Q3_K_M, RF_DTYPE_Q6_K, RF_DTYPE_Q3_K, RF_DTYPE_Q5_K, RF_DTYPE_Q5_K, RF_DTYPE_Q4_K,
         RF_DTYPE_Q4_K, RF_DTYPE_Q3_K},
        /* Q2_K: n_gqa = 4/2 = 2 < 4 -> attn_v Q3_K; ffn_down Q3_K */
        {RF_MIX_Q2_K, RF_DTYPE_Q6_K, RF_DTYPE_Q2_K, RF_DTYPE_Q3_K, RF_DTYPE_Q3_K, RF_DTYPE_Q3_K,
         RF_DTYPE_Q3_K, RF_DTYPE_Q2_K},
        {RF_MIX_F16, RF_DTYPE_F16, RF_DTYPE_F16, RF_DTYPE_F16, RF_DTYPE_F16, RF_DTYPE_F16,
         RF_DTYPE_F16, RF_DTYPE_F16},
        {RF_MIX_BF16, RF_DTYPE_BF16, RF_DTYPE_BF16, RF_DTYPE_BF16, RF_DTYPE_BF16, RF_DTYPE_BF16,
         RF_DTYPE_BF16, RF_DTYPE_BF16},
        {RF_MIX_F32, RF_DTYPE_F32, RF_DTYPE_F32, RF_DTYPE_F32, RF_DTYPE_F32, RF_DTYPE_F32,
         RF_DTYPE_F32, RF_DTYPE_F32},
    };
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        rf_quant_plan *p = plan_mix(s, CASES[c].mix);
        cr_assert_eq(p->file_type, (uint32_t)CASES[c].mix);
        cr_assert_eq(type_of(p, "output.weight%.0d", 0), CASES[c].output, "%s output",
                     rf_quant_mix_name(CASES[c].mix));
        cr_assert_eq(type_of(p, "token_embd.weight%.0d", 0), CASES[c].token, "%s token_embd",
                     rf_quant_mix_name(CASES[c].mix));
        cr_assert_eq(type_of(p, "blk.%d.attn_v.weight", 0), CASES[c].attn_v0, "%s attn_v 0",
                     rf_quant_mix_name(CASES[c].mix));
        cr_assert_eq(type_of(p, "blk.%d.attn_v.weight", 1), CASES[c].attn_v1, "%s attn_v 1",
                     rf_quant_mix_name(CASES[c].mix));
        cr_assert_eq(type_of(p, "blk.%d.ffn_down.weight", 0), CASES[c].ffn_down0, "%s ffn_down 0",
                     rf_quant_mix_name(CASES[c].mix));
        cr_assert_eq(type_of(p, "blk.%d.ffn_down.weight", 1), CASES[c].ffn_down1, "%s ffn_down 1",
                     rf_quant_mix_name(CASES[c].mix));
        cr_assert_eq(type_of(p, "blk.%d.ffn_gate.weight", 1), CASES[c].other, "%s ffn_gate",
                     rf_quant_mix_name(CASES[c].mix));
        cr_assert_eq(type_of(p, "blk.%d.attn_k.weight", 0), CASES[c].other, "%s attn_k",
                     rf_quant_mix_name(CASES[c].mix));
        ASSERT_TYPE(p, RF_DTYPE_F32, "blk.%d.ffn_norm.weight", 1);
        cr_assert_eq(p->n_fallback, 0);
        rf_quant_plan_free(p);
    }
    free(s);
}

Test(quant_plan, tied_token_embedding_takes_the_output_rule)
{
    synth *s = make_qwen2(&TINY_TIED, RF_DTYPE_F32);
    rf_quant_plan *p = plan_mix(s, RF_MIX_Q4_K_M);
    ASSERT_TYPE(p, RF_DTYPE_Q6_K, "token_embd.weight%.0d", 0);
    cr_assert(strstr(rf_quant_plan_find(p, "token_embd.weight")->reason, "tied"));
    rf_quant_plan_free(p);
    p = plan_mix(s, RF_MIX_Q8_0);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "token_embd.weight%.0d", 0);
    rf_quant_plan_free(p);
    free(s);
}

/* ---- options -------------------------------------------------------------------------------- */

Test(quant_plan, pure_disables_the_mix_not_the_fallback)
{
    synth *s = make_qwen2(&TINY, RF_DTYPE_F32);
    rf_quant_plan_options o = rf_quant_plan_options_default(RF_MIX_Q4_K_M);
    o.pure = true;
    rf_quant_plan *p = plan_of(s, &o);
    cr_assert_eq(count_type(p, RF_DTYPE_Q4_K), 2 + 7 * 2);
    cr_assert(strstr(rf_quant_plan_find(p, "output.weight")->reason, "--pure"));
    rf_quant_plan_free(p);
    free(s);
    s = make_qwen2(&TINY_ODD, RF_DTYPE_F32);
    p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_Q5_0, "token_embd.weight%.0d", 0);
    ASSERT_TYPE(p, RF_DTYPE_Q5_0, "blk.%d.attn_v.weight", 2);
    cr_assert_eq(p->n_fallback, 1 + 7 * 3);
    rf_quant_plan_free(p);
    free(s);
}

Test(quant_plan, output_and_token_embedding_types)
{
    synth *s = make_qwen2(&TINY, RF_DTYPE_F32);
    rf_quant_plan_options o = rf_quant_plan_options_default(RF_MIX_Q4_K_M);
    o.set_output_tensor_type = true;
    o.output_tensor_type = RF_DTYPE_Q8_0;
    o.set_token_embedding_type = true;
    o.token_embedding_type = RF_DTYPE_Q5_K;
    rf_quant_plan *p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "output.weight%.0d", 0);
    ASSERT_TYPE(p, RF_DTYPE_Q5_K, "token_embd.weight%.0d", 0);
    ASSERT_TYPE(p, RF_DTYPE_Q6_K, "blk.%d.attn_v.weight", 1);
    rf_quant_plan_free(p);
    /* they apply to the F16 mix too, and skip the fallback (llama-quantize returns early) */
    o.mix = RF_MIX_F16;
    o.output_tensor_type = RF_DTYPE_Q4_0;
    o.token_embedding_type = RF_DTYPE_Q8_0;
    free(s);
    s = make_qwen2(&(qwen2_shape){160, 416, 2, 5, 1, 32, 1024, false}, RF_DTYPE_F32);
    p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_Q4_0, "output.weight%.0d", 0);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "token_embd.weight%.0d", 0);
    ASSERT_TYPE(p, RF_DTYPE_F16, "blk.%d.attn_q.weight", 0);
    cr_assert_eq(p->n_fallback, 0);
    rf_quant_plan_free(p);
    /* so a type whose block does not divide the row is an error (llama-quantize aborts) */
    o.output_tensor_type = RF_DTYPE_Q4_K;
    rf_error err = {0};
    p = NULL;
    cr_assert_eq(rf_quant_plan_make(s->tensors, s->n, &s->info, &o, &p, &err), RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "output.weight") && strstr(err.message, "160"), "%s",
              err.message);
    cr_assert_null(p);
    free(s);
    /* tied: --output-tensor-type reaches token_embd through the output rule, then the
     * fallback applies */
    s = make_qwen2(&TINY_ODD, RF_DTYPE_F32);
    o = rf_quant_plan_options_default(RF_MIX_Q4_K_M);
    o.set_output_tensor_type = true;
    o.output_tensor_type = RF_DTYPE_Q6_K;
    p = plan_of(s, &o);
    const rf_quant_plan_entry *e = rf_quant_plan_find(p, "token_embd.weight");
    cr_assert_eq(e->chosen_dtype, RF_DTYPE_Q6_K);
    cr_assert_eq(e->dtype, RF_DTYPE_Q8_0);
    rf_quant_plan_free(p);
    /* leave the output tensor alone */
    free(s);
    s = make_qwen2(&TINY, RF_DTYPE_F32);
    o = rf_quant_plan_options_default(RF_MIX_Q4_K_M);
    o.leave_output_tensor = true;
    p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_F32, "output.weight%.0d", 0);
    cr_assert(strstr(rf_quant_plan_find(p, "output.weight")->reason, "--leave-output-tensor"));
    rf_quant_plan_free(p);
    free(s);
}

Test(quant_plan, tensor_type_overrides)
{
    synth *s = make_qwen2(&QWEN25_05B, RF_DTYPE_F32);
    rf_quant_override ov[] = {{"ffn_up", RF_DTYPE_Q8_0},
                              {"BLK\\.\\d+\\.FFN_GATE=", RF_DTYPE_Q4_K},
                              {"blk\\.1[0-9]\\.ffn_gate", RF_DTYPE_Q6_K},
                              {"ffn_gate", RF_DTYPE_Q5_1}};
    rf_quant_plan_options o = rf_quant_plan_options_default(RF_MIX_Q4_K_M);
    o.overrides = ov;
    o.n_overrides = 4;
    rf_quant_plan *p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "blk.%d.ffn_up.weight", 3);
    /* pattern 2 never matches ("=" is not in any name); 3 beats 4 for layers 10-19 */
    ASSERT_TYPE(p, RF_DTYPE_Q5_1, "blk.%d.ffn_gate.weight", 3);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "blk.%d.ffn_gate.weight", 12); /* Q6_K -> fallback Q8_0 */
    cr_assert(strstr(rf_quant_plan_find(p, "blk.12.ffn_gate.weight")->reason, "--tensor-type"));
    rf_quant_plan_free(p);

    /* an override skips the mix rules, so it also skips their counters (as in llama-quantize):
     * with blk.0's attn_v overridden, blk.k's attn_v is counted as number k-1 */
    free(s);
    s = make_qwen2(&QWEN25_15B, RF_DTYPE_F32);
    rf_quant_override first[] = {{"blk\\.0\\.attn_v", RF_DTYPE_Q8_0}};
    o.overrides = first;
    o.n_overrides = 1;
    p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "blk.%d.attn_v.weight", 0);
    for (int k = 1; k < 28; k++) {
        rf_dtype want = more_bits(k - 1, 28) ? RF_DTYPE_Q6_K : RF_DTYPE_Q4_K;
        ASSERT_TYPE(p, want, "blk.%d.attn_v.weight", k);
        /* ffn_down has its own counter */
        ASSERT_TYPE(p, more_bits(k, 28) ? RF_DTYPE_Q6_K : RF_DTYPE_Q4_K, "blk.%d.ffn_down.weight",
                    k);
    }
    rf_quant_plan_free(p);
    /* overrides apply only when the mix's default type is quantized */
    o.mix = RF_MIX_BF16;
    p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_BF16, "blk.%d.attn_v.weight", 0);
    rf_quant_plan_free(p);
    free(s);
}

Test(quant_plan, override_parsing_and_errors)
{
    size_t len = 0;
    rf_dtype dt;
    rf_error err = {0};
    cr_assert_eq(rf_quant_override_parse("attn_v=q8_0", &len, &dt, &err), RF_OK);
    cr_assert_eq(len, 6);
    cr_assert_eq(dt, RF_DTYPE_Q8_0);
    cr_assert_eq(rf_quant_override_parse("blk\\.[0-3]\\.ffn=Q6_K", &len, &dt, &err), RF_OK);
    cr_assert_eq(dt, RF_DTYPE_Q6_K);
    cr_assert_eq(rf_quant_override_parse("attn_v", &len, &dt, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "PATTERN=TYPE"));
    cr_assert_eq(rf_quant_override_parse("=q8_0", &len, &dt, &err), RF_ERR_ARGUMENT);
    cr_assert_eq(rf_quant_override_parse("attn_v=", &len, &dt, &err), RF_ERR_ARGUMENT);
    cr_assert_eq(rf_quant_override_parse("attn_v=q9_9", &len, &dt, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "q9_9"), "%s", err.message);
    cr_assert_eq(rf_quant_override_parse("attn_v=apr_q4", &len, &dt, &err), RF_ERR_ARGUMENT);

    synth *s = make_qwen2(&TINY, RF_DTYPE_F32);
    rf_quant_override bad[] = {{"blk.(0", RF_DTYPE_Q8_0}};
    rf_quant_plan_options o = rf_quant_plan_options_default(RF_MIX_Q4_K_M);
    o.overrides = bad;
    o.n_overrides = 1;
    rf_quant_plan *p = NULL;
    cr_assert_eq(rf_quant_plan_make(s->tensors, s->n, &s->info, &o, &p, &err), RF_ERR_ARGUMENT);
    cr_assert_null(p);
    cr_assert(strstr(err.message, "blk.(0"), "%s", err.message);
    o = rf_quant_plan_options_default((rf_quant_mix)23); /* IQ3_XXS: not offered */
    cr_assert_eq(rf_quant_plan_make(s->tensors, s->n, &s->info, &o, &p, &err), RF_ERR_ARGUMENT);
    /* duplicate tensor names */
    s->names[1][0] = 't';
    strcpy(s->names[1], "token_embd.weight");
    o = rf_quant_plan_options_default(RF_MIX_Q8_0);
    cr_assert_eq(rf_quant_plan_make(s->tensors, s->n, &s->info, &o, &p, &err), RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "token_embd.weight"), "%s", err.message);
    free(s);
}

Test(quant_plan, mix_names)
{
    rf_quant_mix m;
    cr_assert(rf_quant_mix_from_name("q4_k_m", &m) && m == RF_MIX_Q4_K_M);
    cr_assert(rf_quant_mix_from_name("Q4_K", &m) && m == RF_MIX_Q4_K_M);
    cr_assert(rf_quant_mix_from_name("q5_k", &m) && m == RF_MIX_Q5_K_M);
    cr_assert(rf_quant_mix_from_name("Q3_K", &m) && m == RF_MIX_Q3_K_M);
    cr_assert(rf_quant_mix_from_name("bf16", &m) && m == RF_MIX_BF16);
    cr_assert(rf_quant_mix_from_name("7", &m) && m == RF_MIX_Q8_0);
    cr_assert(rf_quant_mix_from_name("0", &m) && m == RF_MIX_F32);
    cr_assert(!rf_quant_mix_from_name("iq2_xxs", &m));
    cr_assert(!rf_quant_mix_from_name("19", &m));
    cr_assert(!rf_quant_mix_from_name("", &m));
    cr_assert(!rf_quant_mix_from_name("q4_k_mm", &m));
    cr_assert_str_eq(rf_quant_mix_name(RF_MIX_Q5_K_S), "Q5_K_S");
    cr_assert_null(rf_quant_mix_name((rf_quant_mix)4));
    rf_dtype d;
    cr_assert(rf_quant_mix_default_dtype(RF_MIX_Q4_K_S, &d) && d == RF_DTYPE_Q4_K);
    cr_assert(rf_quant_mix_default_dtype(RF_MIX_Q3_K_L, &d) && d == RF_DTYPE_Q3_K);
}

Test(quant_plan, imatrix_changes_q4_0_ffn_down)
{
    synth *s = make_qwen2(&QWEN25_15B, RF_DTYPE_F32);
    rf_quant_plan_options o = rf_quant_plan_options_default(RF_MIX_Q4_0);
    rf_quant_plan *p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_Q4_0, "blk.%d.ffn_down.weight", 0);
    rf_quant_plan_free(p);
    o.has_imatrix = true;
    p = plan_of(s, &o);
    for (int i = 0; i < 28; i++)
        ASSERT_TYPE(p, i < 28 / 8 ? RF_DTYPE_Q4_1 : RF_DTYPE_Q4_0, "blk.%d.ffn_down.weight", i);
    rf_quant_plan_free(p);
    o.mix = RF_MIX_Q5_0;
    p = plan_of(s, &o);
    ASSERT_TYPE(p, RF_DTYPE_Q5_1, "blk.%d.ffn_down.weight", 2);
    ASSERT_TYPE(p, RF_DTYPE_Q5_0, "blk.%d.ffn_down.weight", 3);
    rf_quant_plan_free(p);
    free(s);
}

Test(quant_plan, model_type_rules)
{
    /* a Llama-70B-like model (80 layers, GQA): attn_v Q4_K -> Q5_K */
    qwen2_shape big = {256, 768, 80, 8, 1, 32, 1024, false};
    synth *s = make_qwen2(&big, RF_DTYPE_F32);
    s->info.architecture = "llama";
    rf_quant_plan *p = plan_mix(s, RF_MIX_Q4_K_M);
    ASSERT_TYPE(p, RF_DTYPE_Q5_K, "blk.%d.attn_v.weight", 11); /* not use_more_bits */
    ASSERT_TYPE(p, RF_DTYPE_Q6_K, "blk.%d.attn_v.weight", 12);
    rf_quant_plan_free(p);
    s->info.n_head_kv = 8; /* MHA: the 65B type, no rule */
    p = plan_mix(s, RF_MIX_Q4_K_M);
    ASSERT_TYPE(p, RF_DTYPE_Q4_K, "blk.%d.attn_v.weight", 11);
    rf_quant_plan_free(p);
    /* falcon: output Q8_0 */
    s->info.architecture = "falcon";
    p = plan_mix(s, RF_MIX_Q4_K_M);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "output.weight%.0d", 0);
    rf_quant_plan_free(p);
    /* 8 experts: attn_v and attn_k Q8_0 */
    s->info.architecture = "llama";
    s->info.n_expert = 8;
    p = plan_mix(s, RF_MIX_Q4_K_M);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "blk.%d.attn_v.weight", 4);
    ASSERT_TYPE(p, RF_DTYPE_Q8_0, "blk.%d.attn_k.weight", 4);
    ASSERT_TYPE(p, RF_DTYPE_Q5_K, "blk.%d.attn_output.weight", 4);
    rf_quant_plan_free(p);
    free(s);
}
