/* Captures of a forward pass for the verifier (docs/verifier.md): the trace hook copies every
 * stage of every layer of one prefill into per-stage buffers, the logits of every position are
 * kept, and a greedy continuation is decoded afterwards with tracing off. Also the precision
 * level of a model's weights, the statistics and anomaly flags of `apr trace` and the attention
 * recomputed from the captured queries and keys.
 * Not for: comparing captures (compare.c), trace files (trace_file.c), llama.cpp (llama_dl.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture_internal.h"
#include "internal.h"

#define MAX_POSITIONS 4096u

ri_capture_params ri_capture_params_default(void)
{
    return (ri_capture_params){.n_greedy = 8, .n_threads = 0, .no_stages = false};
}

const char *ri_level_name(ri_level level)
{
    static const char *const names[RI_LEVEL_COUNT] = {"f32", "f16/bf16", "q8", "q6",
                                                      "q5",  "q4",       "q3"};
    return (int)level >= 0 && level < RI_LEVEL_COUNT ? names[level] : NULL;
}

ri_level rcap_dtype_level(rf_dtype dtype)
{
    switch (dtype) {
    case RF_DTYPE_F32:
    case RF_DTYPE_F64:
    case RF_DTYPE_I8:
    case RF_DTYPE_I16:
    case RF_DTYPE_I32:
    case RF_DTYPE_I64:
    case RF_DTYPE_U8:
    case RF_DTYPE_U16:
    case RF_DTYPE_U32:
    case RF_DTYPE_U64:
    case RF_DTYPE_BOOL:
    case RF_DTYPE_C64: return RI_LEVEL_F32;
    case RF_DTYPE_F16:
    case RF_DTYPE_BF16: return RI_LEVEL_HALF;
    case RF_DTYPE_Q8_0:
    case RF_DTYPE_Q8_1:
    case RF_DTYPE_Q8_K:
    case RF_DTYPE_APR_Q8:
    case RF_DTYPE_F8_E5M2:
    case RF_DTYPE_F8_E4M3:
    case RF_DTYPE_F8_E8M0:
    case RF_DTYPE_F8_E4M3FNUZ:
    case RF_DTYPE_F8_E5M2FNUZ: return RI_LEVEL_Q8;
    case RF_DTYPE_Q6_K:
    case RF_DTYPE_F6_E2M3:
    case RF_DTYPE_F6_E3M2: return RI_LEVEL_Q6;
    case RF_DTYPE_Q5_0:
    case RF_DTYPE_Q5_1:
    case RF_DTYPE_Q5_K: return RI_LEVEL_Q5;
    case RF_DTYPE_Q4_0:
    case RF_DTYPE_Q4_1:
    case RF_DTYPE_Q4_K:
    case RF_DTYPE_APR_Q4:
    case RF_DTYPE_IQ4_NL:
    case RF_DTYPE_IQ4_XS:
    case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4:
    case RF_DTYPE_F4: return RI_LEVEL_Q4;
    case RF_DTYPE_Q2_K:
    case RF_DTYPE_Q3_K:
    case RF_DTYPE_IQ2_XXS:
    case RF_DTYPE_IQ2_XS:
    case RF_DTYPE_IQ3_XXS:
    case RF_DTYPE_IQ1_S:
    case RF_DTYPE_IQ3_S:
    case RF_DTYPE_IQ2_S:
    case RF_DTYPE_IQ1_M:
    case RF_DTYPE_TQ1_0:
    case RF_DTYPE_TQ2_0:
    case RF_DTYPE_Q1_0:
    case RF_DTYPE_Q2_0: return RI_LEVEL_Q3;
    }
    return RI_LEVEL_Q3;
}

/* ---- the capture object ------------------------------------------------------------------- */

ri_capture *rcap_new(const ri_model_info *info, size_t n_tokens)
{
    ri_capture *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->info = *info;
    c->n_tokens = n_tokens;
    c->tokens = calloc(n_tokens ? n_tokens : 1, sizeof *c->tokens);
    size_t n_slots = (size_t)RI_STAGE_COUNT * (info->n_layers + 1);
    c->slots = calloc(n_slots, sizeof *c->slots);
    c->weights = calloc(n_slots, sizeof *c->weights);
    if (!c->tokens || !c->slots || !c->weights) {
        ri_capture_free(c);
        return NULL;
    }
    return c;
}

bool rcap_stage_global(ri_stage stage)
{
    return stage == RI_STAGE_EMBEDDING || stage == RI_STAGE_FINAL_NORM || stage == RI_STAGE_LOGITS;
}

/* Slot index of (stage, layer), or -1 when the pair is not a stage of this model. */
long rcap_slot(const ri_capture *c, ri_stage stage, int32_t layer)
{
    if ((int)stage < 0 || stage >= RI_STAGE_COUNT)
        return -1;
    if (rcap_stage_global(stage))
        return layer == -1 ? (long)stage * (c->info.n_layers + 1) : -1;
    if (layer < 0 || (uint32_t)layer >= c->info.n_layers)
        return -1;
    return (long)stage * (c->info.n_layers + 1) + 1 + layer;
}

float *rcap_alloc_slot(ri_capture *c, ri_stage stage, int32_t layer, uint32_t rows, uint32_t cols)
{
    long s = rcap_slot(c, stage, layer);
    if (s < 0)
        return NULL;
    rcap_slot_t *slot = &c->slots[s];
    if (slot->data)
        return slot->rows == rows && slot->cols == cols ? slot->data : NULL;
    size_t n = (size_t)rows * cols;
    slot->data = calloc(n ? n : 1, sizeof(float));
    if (!slot->data)
        return NULL;
    slot->rows = rows;
    slot->cols = cols;
    return slot->data;
}

rf_status rcap_set_weights(ri_capture *c, ri_stage stage, int32_t layer, const char *names,
                           rf_error *err)
{
    long s = rcap_slot(c, stage, layer);
    if (s < 0)
        return RF_OK;
    free(c->weights[s]);
    c->weights[s] = strdup(names);
    return c->weights[s] ? RF_OK : rf_error_set(err, RF_ERR_NOMEM, "out of memory");
}

void ri_capture_free(ri_capture *c)
{
    if (!c)
        return;
    size_t n_slots = (size_t)RI_STAGE_COUNT * (c->info.n_layers + 1);
    for (size_t i = 0; c->slots && i < n_slots; i++)
        free(c->slots[i].data);
    for (size_t i = 0; c->weights && i < n_slots; i++)
        free(c->weights[i]);
    free(c->slots);
    free(c->weights);
    free(c->tokens);
    free(c->greedy);
    free(c->label);
    free(c->engine);
    free(c->dtypes);
    free(c->prompt);
    free(c->dtype_sig);
    ri_tokenizer_free(c->tok);
    free(c);
}

const char *ri_capture_label(const ri_capture *c) { return c->label ? c->label : ""; }
const char *ri_capture_engine(const ri_capture *c) { return c->engine ? c->engine : ""; }
const char *ri_capture_prompt(const ri_capture *c) { return c->prompt; }
ri_model_info ri_capture_info(const ri_capture *c) { return c->info; }
ri_level ri_capture_level(const ri_capture *c) { return c->level; }
const char *ri_capture_dtypes(const ri_capture *c) { return c->dtypes ? c->dtypes : ""; }
const ri_tokenizer *ri_capture_tokenizer(const ri_capture *c) { return c->tok; }

const int32_t *ri_capture_tokens(const ri_capture *c, size_t *n)
{
    *n = c->n_tokens;
    return c->tokens;
}

const int32_t *ri_capture_greedy(const ri_capture *c, size_t *n)
{
    *n = c->n_greedy;
    return c->greedy;
}

const float *ri_capture_stage(const ri_capture *c, ri_stage stage, int32_t layer, uint32_t *rows,
                              uint32_t *cols)
{
    long s = rcap_slot(c, stage, layer);
    if (s < 0 || !c->slots[s].data)
        return NULL;
    if (rows)
        *rows = c->slots[s].rows;
    if (cols)
        *cols = c->slots[s].cols;
    return c->slots[s].data;
}

const char *ri_capture_weights(const ri_capture *c, ri_stage stage, int32_t layer)
{
    long s = rcap_slot(c, stage, layer);
    return s < 0 ? NULL : c->weights[s];
}

/* ---- running Rosetta's engine ------------------------------------------------------------- */

typedef struct hook_state {
    ri_capture *c;
    bool failed;
} hook_state;

static void capture_hook(void *user, const ri_trace_event *ev)
{
    hook_state *h = user;
    ri_capture *c = h->c;
    if (ev->stage == RI_STAGE_LOGITS)
        return; /* the logits of every position come from ri_forward itself */
    uint32_t total = (uint32_t)c->n_tokens;
    if (ev->pos + ev->rows > total) {
        h->failed = true;
        return;
    }
    float *dst = rcap_alloc_slot(c, ev->stage, ev->layer, total, ev->cols);
    if (!dst) {
        h->failed = true;
        return;
    }
    memcpy(dst + (size_t)ev->pos * ev->cols, ev->data, (size_t)ev->rows * ev->cols * sizeof(float));
}

/* The name of the tensor hf (or its GGUF spelling gguf) in src, NULL when neither exists. */
static const char *tensor_name(const rf_model *src, const char *hf, const char *gguf)
{
    const rf_tensor *t = rf_model_find_tensor(src, hf);
    if (!t)
        t = rf_model_find_tensor(src, gguf);
    return t ? t->name : NULL;
}

/* Appends name (if not NULL) to the comma-separated list buf. */
static void add_name(char *buf, size_t size, const char *name)
{
    if (!name)
        return;
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", used ? "," : "", name);
}

static rf_status record_weights(ri_capture *c, const ri_model *m, rf_error *err)
{
    const rf_model *src = m->src;
    char buf[1024], hf[160], gg[160];
    rf_status st;
#define NAME(hfs, ggs)                                                                             \
    (snprintf(hf, sizeof hf, "model.layers.%u.%s", l, hfs),                                        \
     snprintf(gg, sizeof gg, "blk.%u.%s", l, ggs), tensor_name(src, hf, gg))
#define SET(stage, layer)                                                                          \
    do {                                                                                           \
        if ((st = rcap_set_weights(c, stage, layer, buf, err)) != RF_OK)                           \
            return st;                                                                             \
        buf[0] = '\0';                                                                             \
    } while (0)
    buf[0] = '\0';
    add_name(buf, sizeof buf, m->embd.name);
    SET(RI_STAGE_EMBEDDING, -1);
    for (uint32_t l = 0; l < c->info.n_layers; l++) {
        const ri_layer *L = &m->layers[l];
        add_name(buf, sizeof buf, NAME("input_layernorm.weight", "attn_norm.weight"));
        add_name(buf, sizeof buf, "rms_norm_eps");
        SET(RI_STAGE_ATTN_NORM, (int32_t)l);
        add_name(buf, sizeof buf, L->wq.name);
        add_name(buf, sizeof buf, NAME("self_attn.q_proj.bias", "attn_q.bias"));
        SET(RI_STAGE_Q, (int32_t)l);
        add_name(buf, sizeof buf, L->wk.name);
        add_name(buf, sizeof buf, NAME("self_attn.k_proj.bias", "attn_k.bias"));
        SET(RI_STAGE_K, (int32_t)l);
        add_name(buf, sizeof buf, L->wv.name);
        add_name(buf, sizeof buf, NAME("self_attn.v_proj.bias", "attn_v.bias"));
        SET(RI_STAGE_V, (int32_t)l);
        add_name(buf, sizeof buf, "rope_theta");
        add_name(buf, sizeof buf, "rope_type");
        SET(RI_STAGE_Q_ROPE, (int32_t)l);
        add_name(buf, sizeof buf, "rope_theta");
        add_name(buf, sizeof buf, "rope_type");
        SET(RI_STAGE_K_ROPE, (int32_t)l);
        SET(RI_STAGE_ATTN_OUT, (int32_t)l);
        add_name(buf, sizeof buf, L->wo.name);
        SET(RI_STAGE_O_PROJ, (int32_t)l);
        SET(RI_STAGE_ATTN_RESIDUAL, (int32_t)l);
        add_name(buf, sizeof buf, NAME("post_attention_layernorm.weight", "ffn_norm.weight"));
        add_name(buf, sizeof buf, "rms_norm_eps");
        SET(RI_STAGE_FFN_NORM, (int32_t)l);
        add_name(buf, sizeof buf, L->gate.name);
        SET(RI_STAGE_GATE, (int32_t)l);
        add_name(buf, sizeof buf, L->up.name);
        SET(RI_STAGE_UP, (int32_t)l);
        SET(RI_STAGE_SWIGLU, (int32_t)l);
        add_name(buf, sizeof buf, L->down.name);
        SET(RI_STAGE_DOWN, (int32_t)l);
        SET(RI_STAGE_LAYER_OUT, (int32_t)l);
    }
    add_name(buf, sizeof buf, tensor_name(src, "model.norm.weight", "output_norm.weight"));
    add_name(buf, sizeof buf, "rms_norm_eps");
    SET(RI_STAGE_FINAL_NORM, -1);
    add_name(buf, sizeof buf, m->head.name);
    SET(RI_STAGE_LOGITS, -1);
#undef NAME
#undef SET
    return RF_OK;
}

/* The coarsest level among the matrices and a list of the distinct dtypes (source dtypes:
 * what the file holds, before any conversion at load), plus the signature of every matrix's
 * dtype in role order (embedding, head, then q k v o gate up down of each layer). */
typedef struct level_acc {
    ri_level level;
    bool seen[256];
    char list[256];
    char *sig;
    size_t sig_len;
} level_acc;

static void note_dtype(level_acc *acc, rf_dtype dt)
{
    ri_level lv = rcap_dtype_level(dt);
    acc->sig_len +=
        (size_t)sprintf(acc->sig + acc->sig_len, "%s%u", acc->sig_len ? "," : "", (unsigned)dt);
    if (lv > acc->level)
        acc->level = lv;
    unsigned code = (unsigned)dt & 0xff;
    if (acc->seen[code])
        return;
    acc->seen[code] = true;
    size_t used = strlen(acc->list);
    snprintf(acc->list + used, sizeof acc->list - used, "%s%s", used ? " " : "", rf_dtype_name(dt));
}

static const rf_tensor *find_role(const rf_model *src, const char *hf, const char *gguf)
{
    const rf_tensor *t = rf_model_find_tensor(src, hf);
    return t ? t : rf_model_find_tensor(src, gguf);
}

rf_status rcap_level_from_source(ri_capture *c, const rf_model *src, rf_error *err)
{
    level_acc acc = {.level = RI_LEVEL_F32};
    acc.sig = malloc((2 + 7 * (size_t)c->info.n_layers) * 5 + 1);
    if (!acc.sig)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    acc.sig[0] = '\0';
    const rf_tensor *embd = find_role(src, "model.embed_tokens.weight", "token_embd.weight");
    const rf_tensor *head = find_role(src, "lm_head.weight", "output.weight");
    if (embd)
        note_dtype(&acc, embd->dtype);
    if (head || embd)
        note_dtype(&acc, (head ? head : embd)->dtype);
    static const char *const roles[7][2] = {
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
    };
    for (uint32_t l = 0; l < c->info.n_layers; l++)
        for (int i = 0; i < 7; i++) {
            char hf[160], gg[160];
            snprintf(hf, sizeof hf, "model.layers.%u.%s", l, roles[i][0]);
            snprintf(gg, sizeof gg, "blk.%u.%s", l, roles[i][1]);
            const rf_tensor *t = find_role(src, hf, gg);
            if (t)
                note_dtype(&acc, t->dtype);
        }
    free(c->dtype_sig);
    free(c->dtypes);
    c->level = acc.level;
    c->dtype_sig = acc.sig;
    c->dtypes = strdup(acc.list);
    return c->dtypes ? RF_OK : rf_error_set(err, RF_ERR_NOMEM, "out of memory");
}

static int32_t argmax_row(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

static ri_capture *run_ids(ri_model *model, const int32_t *ids, size_t n_ids,
                           const ri_capture_params *params, ri_tokenizer *tok, rf_error *err)
{
    ri_capture_params p = params ? *params : ri_capture_params_default();
    if (n_ids == 0) {
        rf_error_set(err, RF_ERR_ARGUMENT, "empty prompt: no tokens to run");
        ri_tokenizer_free(tok);
        return NULL;
    }
    if (n_ids + p.n_greedy > MAX_POSITIONS) {
        rf_error_set(err, RF_ERR_LIMIT, "%zu prompt tokens + %u continuation tokens exceed %u",
                     n_ids, p.n_greedy, MAX_POSITIONS);
        ri_tokenizer_free(tok);
        return NULL;
    }
    ri_model_info info = ri_model_get_info(model);
    ri_capture *c = rcap_new(&info, n_ids);
    if (!c) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        ri_tokenizer_free(tok);
        return NULL;
    }
    c->tok = tok;
    memcpy(c->tokens, ids, n_ids * sizeof *ids);
    char engine[96];
    snprintf(engine, sizeof engine, "rosetta %s", ri_model_path_name(model));
    const char *path = rf_model_path(ri_model_source(model));
    c->engine = strdup(engine);
    c->label = strdup(path ? path : "");
    float *logits = rcap_alloc_slot(c, RI_STAGE_LOGITS, -1, (uint32_t)n_ids, info.n_vocab);
    c->greedy = calloc(p.n_greedy ? p.n_greedy : 1, sizeof *c->greedy);
    float *step = malloc((size_t)info.n_vocab * sizeof *step);
    ri_context *ctx = NULL;
    if (!c->engine || !c->label || !logits || !c->greedy || !step) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory for the logits of %zu positions", n_ids);
        goto fail;
    }
    if (record_weights(c, model, err) != RF_OK ||
        rcap_level_from_source(c, ri_model_source(model), err) != RF_OK)
        goto fail;
    hook_state hook = {c, false};
    ri_context_params cp = ri_context_params_default();
    cp.n_ctx = (uint32_t)(n_ids + p.n_greedy);
    cp.n_threads = p.n_threads;
    if (!p.no_stages) {
        cp.trace = capture_hook;
        cp.trace_user = &hook;
    }
    if (!(ctx = ri_context_new(model, &cp, err)))
        goto fail;
    if (ri_forward(ctx, ids, n_ids, RI_LOGITS_ALL, logits, err) != RF_OK)
        goto fail;
    if (hook.failed) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory capturing the stages of %zu positions",
                     n_ids);
        goto fail;
    }
    ri_context_set_trace(ctx, NULL, NULL);
    size_t n_valid = tok ? ri_n_vocab(tok) : info.n_vocab;
    if (n_valid == 0 || n_valid > info.n_vocab)
        n_valid = info.n_vocab;
    int32_t next = argmax_row(logits + (n_ids - 1) * (size_t)info.n_vocab, n_valid);
    for (uint32_t g = 0; g < p.n_greedy; g++) {
        c->greedy[g] = next;
        c->n_greedy = g + 1;
        if (g + 1 == p.n_greedy)
            break;
        if (ri_forward(ctx, &next, 1, RI_LOGITS_LAST, step, err) != RF_OK)
            goto fail;
        next = argmax_row(step, n_valid);
    }
    ri_context_free(ctx);
    free(step);
    return c;
fail:
    ri_context_free(ctx);
    free(step);
    ri_capture_free(c);
    return NULL;
}

ri_capture *ri_capture_run_ids(ri_model *model, const int32_t *ids, size_t n_ids,
                               const ri_capture_params *params, rf_error *err)
{
    if (!model || (!ids && n_ids)) {
        rf_error_set(err, RF_ERR_ARGUMENT, "no model or no ids");
        return NULL;
    }
    return run_ids(model, ids, n_ids, params, NULL, err);
}

ri_capture *ri_capture_run(ri_model *model, const char *text, size_t len,
                           const ri_capture_params *params, rf_error *err)
{
    if (!model || !text) {
        rf_error_set(err, RF_ERR_ARGUMENT, "no model or no prompt");
        return NULL;
    }
    ri_tokenizer *tok = ri_tokenizer_from_model(ri_model_source(model), err);
    if (!tok)
        return NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    if (ri_tokenize_alloc(tok, text, len, RI_TOKENIZE_PARSE_SPECIAL, &ids, &n, err) != RF_OK) {
        ri_tokenizer_free(tok);
        return NULL;
    }
    ri_capture *c = run_ids(model, ids, n, params, tok, err);
    free(ids);
    if (c && !(c->prompt = strndup(text, len))) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        ri_capture_free(c);
        return NULL;
    }
    return c;
}

/* ---- statistics and anomalies ------------------------------------------------------------- */

ri_tensor_stats ri_tensor_stats_compute(const float *x, size_t n)
{
    ri_tensor_stats s = {.count = n, .min = INFINITY, .max = -INFINITY};
    double sum = 0, sq = 0;
    uint64_t finite = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (isnan(v)) {
            s.nan++;
            continue;
        }
        if (isinf(v)) {
            s.inf++;
            continue;
        }
        finite++;
        sum += v;
        sq += (double)v * v;
        if (v < s.min)
            s.min = v;
        if (v > s.max)
            s.max = v;
    }
    if (finite == 0) {
        s.min = s.max = NAN;
        s.mean = s.std = NAN;
        return s;
    }
    s.mean = sum / (double)finite;
    double var = sq / (double)finite - s.mean * s.mean;
    /* a second pass for an exact variance (the one-pass form cancels for large means) */
    double acc = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]))
            acc += ((double)x[i] - s.mean) * ((double)x[i] - s.mean);
    var = acc / (double)finite;
    s.std = sqrt(var > 0 ? var : 0);
    s.l2 = sqrt(sq);
    return s;
}

unsigned ri_tensor_stats_anomalies(const ri_tensor_stats *s)
{
    unsigned a = 0;
    if (s->nan || s->inf)
        a |= RI_ANOMALY_NAN;
    if (isfinite(s->min) && (fabs(s->min) > 1e6 || fabs(s->max) > 1e6))
        a |= RI_ANOMALY_HUGE;
    if (s->count > 1 && !(s->std >= 1e-6))
        a |= RI_ANOMALY_FLAT;
    return a;
}

const char *ri_anomaly_names(unsigned anomalies, char *buf, size_t size)
{
    static const char *const names[] = {"nan", "huge", "flat", "attn_entropy", "residual"};
    if (size == 0)
        return buf;
    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(anomalies & (1u << i)))
            continue;
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", used ? "," : "", names[i]);
    }
    return buf;
}

rf_status ri_capture_attention(const ri_capture *c, uint32_t layer, uint32_t head, float *probs,
                               rf_error *err)
{
    uint32_t rq, cq, rk, ck;
    const float *q = ri_capture_stage(c, RI_STAGE_Q_ROPE, (int32_t)layer, &rq, &cq);
    const float *k = ri_capture_stage(c, RI_STAGE_K_ROPE, (int32_t)layer, &rk, &ck);
    const ri_model_info *I = &c->info;
    if (!q || !k)
        return rf_error_set(err, RF_ERR_NOT_FOUND, "layer %u: q_rope / k_rope not captured", layer);
    if (head >= I->n_heads || I->n_kv_heads == 0 || I->head_dim == 0 ||
        cq != I->n_heads * I->head_dim || ck != I->n_kv_heads * I->head_dim || rq != rk)
        return rf_error_set(err, RF_ERR_ARGUMENT, "layer %u head %u: shapes do not match", layer,
                            head);
    uint32_t d = I->head_dim, n = rq, g = head / (I->n_heads / I->n_kv_heads);
    double scale = 1.0 / sqrt((double)d);
    double *row = malloc((size_t)n * sizeof *row);
    if (!row)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    for (uint32_t t = 0; t < n; t++) {
        const float *qt = q + (size_t)t * cq + (size_t)head * d;
        double max = -INFINITY;
        for (uint32_t j = 0; j <= t; j++) {
            const float *kj = k + (size_t)j * ck + (size_t)g * d;
            double s = 0;
            for (uint32_t i = 0; i < d; i++)
                s += (double)qt[i] * kj[i];
            row[j] = s * scale;
            if (row[j] > max)
                max = row[j];
        }
        double sum = 0;
        for (uint32_t j = 0; j <= t; j++) {
            row[j] = exp(row[j] - max);
            sum += row[j];
        }
        for (uint32_t j = 0; j < n; j++)
            probs[(size_t)t * n + j] = j <= t ? (float)(row[j] / sum) : 0.0f;
    }
    free(row);
    return RF_OK;
}

static double l2_of(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return sqrt(s);
}

rf_status ri_capture_layer_health(const ri_capture *c, uint32_t layer, ri_layer_health *out,
                                  rf_error *err)
{
    const ri_model_info *I = &c->info;
    *out =
        (ri_layer_health){.attn_entropy = NAN, .attn_entropy_min_head = NAN, .residual_ratio = NAN};
    if (layer >= I->n_layers)
        return rf_error_set(err, RF_ERR_ARGUMENT, "layer %u out of range", layer);
    uint32_t rows, cols, rin, cin;
    const float *x_out = ri_capture_stage(c, RI_STAGE_LAYER_OUT, (int32_t)layer, &rows, &cols);
    const float *x_in =
        layer == 0 ? ri_capture_stage(c, RI_STAGE_EMBEDDING, -1, &rin, &cin)
                   : ri_capture_stage(c, RI_STAGE_LAYER_OUT, (int32_t)layer - 1, &rin, &cin);
    if (x_out && x_in && rows == rin && cols == cin) {
        size_t n = (size_t)rows * cols;
        double in = l2_of(x_in, n), delta = 0;
        for (size_t i = 0; i < n; i++)
            delta += ((double)x_out[i] - x_in[i]) * ((double)x_out[i] - x_in[i]);
        delta = sqrt(delta);
        out->residual_ratio = in + delta > 0 ? in / (in + delta) : 0;
        if (out->residual_ratio > 0.99)
            out->anomalies |= RI_ANOMALY_RESIDUAL;
    }
    uint32_t n;
    if (!ri_capture_stage(c, RI_STAGE_Q_ROPE, (int32_t)layer, &n, NULL) ||
        !ri_capture_stage(c, RI_STAGE_K_ROPE, (int32_t)layer, NULL, NULL))
        return isnan(out->residual_ratio)
                   ? rf_error_set(err, RF_ERR_NOT_FOUND, "layer %u: stages not captured", layer)
                   : RF_OK;
    if (n < 2)
        return RF_OK; /* one position: attention has a single key, its entropy is 0 by design */
    float *p = malloc((size_t)n * n * sizeof *p);
    if (!p)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    double total = 0, min_head = INFINITY;
    for (uint32_t h = 0; h < I->n_heads; h++) {
        rf_status st = ri_capture_attention(c, layer, h, p, err);
        if (st != RF_OK) {
            free(p);
            return st;
        }
        double head_sum = 0;
        for (uint32_t t = 1; t < n; t++) {
            double e = 0;
            for (uint32_t j = 0; j <= t; j++) {
                double v = p[(size_t)t * n + j];
                if (v > 0)
                    e -= v * log(v);
            }
            head_sum += e;
        }
        head_sum /= (n - 1);
        total += head_sum;
        if (head_sum < min_head)
            min_head = head_sum;
    }
    free(p);
    out->attn_entropy = total / I->n_heads;
    out->attn_entropy_min_head = min_head;
    if (out->attn_entropy < 0.1)
        out->anomalies |= RI_ANOMALY_ATTN_ENTROPY;
    return RF_OK;
}
