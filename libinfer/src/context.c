/* Context: the KV cache position, the batch split of ri_forward and the stage names of the trace
 * hooks; the backend of the model does the arithmetic.
 * Not for: the forward pass itself (reference.c, cpu.c). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const STAGE_NAMES[RI_STAGE_COUNT] = {
    [RI_STAGE_EMBEDDING] = "embedding",
    [RI_STAGE_ATTN_NORM] = "attn_norm",
    [RI_STAGE_Q] = "q",
    [RI_STAGE_K] = "k",
    [RI_STAGE_V] = "v",
    [RI_STAGE_Q_ROPE] = "q_rope",
    [RI_STAGE_K_ROPE] = "k_rope",
    [RI_STAGE_ATTN_OUT] = "attn_out",
    [RI_STAGE_O_PROJ] = "o_proj",
    [RI_STAGE_ATTN_RESIDUAL] = "attn_residual",
    [RI_STAGE_FFN_NORM] = "ffn_norm",
    [RI_STAGE_GATE] = "gate",
    [RI_STAGE_UP] = "up",
    [RI_STAGE_SWIGLU] = "swiglu",
    [RI_STAGE_DOWN] = "down",
    [RI_STAGE_LAYER_OUT] = "layer_out",
    [RI_STAGE_FINAL_NORM] = "final_norm",
    [RI_STAGE_LOGITS] = "logits",
};

const char *ri_stage_name(ri_stage stage)
{
    if ((int)stage < 0 || stage >= RI_STAGE_COUNT)
        return NULL;
    return STAGE_NAMES[stage];
}

bool ri_stage_from_name(const char *name, ri_stage *out)
{
    for (int s = 0; name && s < RI_STAGE_COUNT; s++) {
        if (strcmp(STAGE_NAMES[s], name) == 0) {
            *out = (ri_stage)s;
            return true;
        }
    }
    return false;
}

ri_context_params ri_context_params_default(void)
{
    return (ri_context_params){.n_ctx = 0, .n_batch = 0, .n_threads = 0, .kv_type = RI_KV_F32};
}

#define DEFAULT_MAX_CTX 4096u
#define DEFAULT_BATCH   512u
#define MAX_THREADS     256

ri_context *ri_context_new(ri_model *model, const ri_context_params *params, rf_error *err)
{
    ri_context_params p = params ? *params : ri_context_params_default();
    if (!model) {
        rf_error_set(err, RF_ERR_ARGUMENT, "no model");
        return NULL;
    }
    if (p.kv_type != RI_KV_F32 && p.kv_type != RI_KV_F16) {
        rf_error_set(err, RF_ERR_ARGUMENT, "kv_type %d is not a KV cache type", (int)p.kv_type);
        return NULL;
    }
    if (p.n_threads < 0 || p.n_threads > MAX_THREADS) {
        rf_error_set(err, RF_ERR_ARGUMENT, "n_threads %d out of 0..%d", p.n_threads, MAX_THREADS);
        return NULL;
    }
    uint32_t n_ctx = p.n_ctx;
    if (n_ctx == 0) {
        n_ctx = model->info.n_ctx_train ? model->info.n_ctx_train : DEFAULT_MAX_CTX;
        if (n_ctx > DEFAULT_MAX_CTX)
            n_ctx = DEFAULT_MAX_CTX;
    }
    if (n_ctx > (1u << 24)) {
        rf_error_set(err, RF_ERR_ARGUMENT, "n_ctx %u is too large", n_ctx);
        return NULL;
    }
    ri_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ctx->model = model;
    ctx->n_ctx = n_ctx;
    ctx->n_batch = p.n_batch ? p.n_batch : DEFAULT_BATCH;
    if (ctx->n_batch > n_ctx)
        ctx->n_batch = n_ctx;
    ctx->n_threads = p.n_threads;
    ctx->kv_type = p.kv_type;
    ctx->trace = p.trace;
    ctx->trace_user = p.trace_user;
    ctx->tokens = malloc((size_t)n_ctx * sizeof *ctx->tokens);
    if (!ctx->tokens) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        ri_context_free(ctx);
        return NULL;
    }
    if (model->backend->context_init(ctx, err) != RF_OK) {
        ri_context_free(ctx);
        return NULL;
    }
    return ctx;
}

void ri_context_free(ri_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->backend_data && ctx->model->backend->context_free)
        ctx->model->backend->context_free(ctx);
    free(ctx->tokens);
    free(ctx);
}

void ri_context_reset(ri_context *ctx) { ctx->n_past = 0; }
uint32_t ri_context_n_past(const ri_context *ctx) { return ctx->n_past; }
uint32_t ri_context_n_ctx(const ri_context *ctx) { return ctx->n_ctx; }
const int32_t *ri_context_tokens(const ri_context *ctx) { return ctx->tokens; }

rf_status ri_context_truncate(ri_context *ctx, uint32_t n_past, rf_error *err)
{
    if (n_past > ctx->n_past)
        return rf_error_set(err, RF_ERR_ARGUMENT, "cannot truncate %u cached positions to %u",
                            ctx->n_past, n_past);
    ctx->n_past = n_past;
    return RF_OK;
}

void ri_context_set_trace(ri_context *ctx, ri_trace_fn trace, void *user)
{
    ctx->trace = trace;
    ctx->trace_user = user;
}

rf_status ri_forward(ri_context *ctx, const int32_t *tokens, size_t n_tokens, ri_logits_mode mode,
                     float *logits, rf_error *err)
{
    if (!ctx || (n_tokens > 0 && !tokens))
        return rf_error_set(err, RF_ERR_ARGUMENT, "no context or no tokens");
    if (mode != RI_LOGITS_LAST && mode != RI_LOGITS_ALL && mode != RI_LOGITS_NONE)
        return rf_error_set(err, RF_ERR_ARGUMENT, "logits mode %d unknown", (int)mode);
    if (mode != RI_LOGITS_NONE && !logits)
        return rf_error_set(err, RF_ERR_ARGUMENT, "no buffer for the logits");
    if (n_tokens == 0)
        return mode == RI_LOGITS_LAST ? rf_error_set(err, RF_ERR_ARGUMENT, "no tokens") : RF_OK;
    if (n_tokens > ctx->n_ctx - ctx->n_past)
        return rf_error_set(err, RF_ERR_LIMIT,
                            "%zu tokens do not fit the context: %u of %u positions are used",
                            n_tokens, ctx->n_past, ctx->n_ctx);
    uint32_t n_vocab = ctx->model->info.n_vocab;
    for (size_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= n_vocab)
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "token %zu: id %d outside the vocabulary (0..%u)", i, tokens[i],
                                n_vocab - 1);
    uint32_t start = ctx->n_past;
    for (size_t done = 0; done < n_tokens;) {
        uint32_t n = (uint32_t)(n_tokens - done < ctx->n_batch ? n_tokens - done : ctx->n_batch);
        bool last_chunk = done + n == n_tokens;
        ri_logits_mode m = mode == RI_LOGITS_ALL                    ? RI_LOGITS_ALL
                           : (mode == RI_LOGITS_LAST && last_chunk) ? RI_LOGITS_LAST
                                                                    : RI_LOGITS_NONE;
        float *out = mode == RI_LOGITS_ALL ? logits + done * (size_t)n_vocab : logits;
        rf_status st = ctx->model->backend->forward(ctx, tokens + done, n, m, out, err);
        if (st != RF_OK) {
            ctx->n_past = start;
            return st;
        }
        memcpy(ctx->tokens + ctx->n_past, tokens + done, n * sizeof *tokens);
        ctx->n_past += n;
        done += n;
    }
    return RF_OK;
}
