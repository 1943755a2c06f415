/* ri_generate: prompt (reusing the cached prefix), then sample, stream the text, feed back, until
 * an end-of-generation token, the length limit, a full cache or the caller says stop
 * (docs/engine.md, "Generation").
 * Not for: chat templates or tokenizing (rosetta/tokenizer.h); the tools do that first. */
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "rosetta/tokenizer.h"

const char *ri_stop_reason_name(ri_stop_reason reason)
{
    switch (reason) {
    case RI_STOP_EOG: return "eog";
    case RI_STOP_LENGTH: return "length";
    case RI_STOP_CONTEXT: return "context";
    case RI_STOP_CALLER: return "caller";
    }
    return "unknown";
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Ids a sampler may choose: below the vocabulary's trailing run of unused ids ([PAD...] rows,
 * which a trained model never produces) and below the model's rows. */
static size_t valid_ids(const ri_tokenizer *tok, size_t n_vocab)
{
    size_t n = ri_n_vocab(tok) < n_vocab ? ri_n_vocab(tok) : n_vocab;
    while (n > 1 && ri_token_type(tok, (int32_t)(n - 1)) == RF_TOKEN_UNUSED)
        n--;
    return n;
}

rf_status ri_generate(ri_context *ctx, const ri_tokenizer *tok, ri_sampler *sampler,
                      const int32_t *prompt, size_t n_prompt, const ri_generate_params *params,
                      ri_token_fn on_token, void *user, ri_generate_result *result, rf_error *err)
{
    ri_generate_params p = params ? *params : (ri_generate_params){.n_predict = -1};
    ri_generate_result r = {.stop = RI_STOP_LENGTH, .stop_token = -1};
    if (!ctx || !tok || !sampler || !prompt || n_prompt == 0)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "generate: no context, tokenizer, sampler or prompt");
    if (n_prompt > ctx->n_ctx)
        return rf_error_set(err, RF_ERR_LIMIT,
                            "the prompt has %zu tokens, more than the context's %u positions",
                            n_prompt, ctx->n_ctx);
    size_t n_vocab = ctx->model->info.n_vocab;
    float *logits = malloc(n_vocab * sizeof *logits);
    ri_detok *detok = ri_detok_new(tok, p.detok_flags, err);
    if (!logits || !detok) {
        free(logits);
        ri_detok_free(detok);
        return detok ? rf_error_set(err, RF_ERR_NOMEM, "out of memory") : err->status;
    }
    size_t n_valid = valid_ids(tok, n_vocab);

    /* the cached prefix; at least the last prompt id is computed again, for its logits */
    size_t reuse = 0;
    while (reuse < ctx->n_past && reuse < n_prompt && ctx->tokens[reuse] == prompt[reuse])
        reuse++;
    if (reuse == n_prompt)
        reuse--;
    ctx->n_past = (uint32_t)reuse;
    for (size_t i = 0; i < n_prompt; i++)
        ri_sampler_accept(sampler, prompt[i]);
    r.n_reused = reuse;
    r.n_prompt = n_prompt - reuse;
    double t0 = now();
    rf_status st = ri_forward(ctx, prompt + reuse, n_prompt - reuse, RI_LOGITS_LAST, logits, err);
    r.prefill_s = now() - t0;
    t0 = now();
    const char *text;
    size_t len;
    while (st == RF_OK) {
        if (p.n_predict >= 0 && r.n_generated >= (size_t)p.n_predict) {
            r.stop = RI_STOP_LENGTH;
            break;
        }
        int32_t id = ri_sampler_sample(sampler, logits, n_vocab, n_valid);
        if (id < 0) {
            st = rf_error_set(err, RF_ERR_FORMAT, "the logits hold no finite value");
            break;
        }
        if (!p.ignore_eog && ri_token_is_eog(tok, id)) {
            r.stop = RI_STOP_EOG;
            r.stop_token = id;
            break;
        }
        ri_sampler_accept(sampler, id);
        if ((st = ri_detok_push(detok, id, &text, &len, err)) != RF_OK)
            break;
        r.n_generated++;
        if (on_token && !on_token(user, id, text, len)) {
            r.stop = RI_STOP_CALLER;
            break;
        }
        if (p.n_predict >= 0 && r.n_generated >= (size_t)p.n_predict) {
            r.stop = RI_STOP_LENGTH; /* the last token is not fed back: nothing would read it */
            break;
        }
        if (ctx->n_past >= ctx->n_ctx) {
            r.stop = RI_STOP_CONTEXT;
            break;
        }
        st = ri_forward(ctx, &id, 1, RI_LOGITS_LAST, logits, err);
    }
    r.decode_s = now() - t0;
    if (st == RF_OK) {
        ri_detok_flush(detok, &text, &len);
        if (len > 0 && on_token)
            on_token(user, -1, text, len);
    }
    ri_detok_free(detok);
    free(logits);
    if (result)
        *result = r;
    return st;
}
