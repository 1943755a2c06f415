/* The engine's reference path against the fixtures' transformers float32 outputs
 * (fixtures/README.md): last-position logits within 1e-4 x max|logit|, the argmax at every
 * prompt position, the 16-token greedy continuation (decoded with the KV cache), and the
 * statistics of the embedding, every layer output and the final norm within 1e-4 relative.
 * Also: cached decode equals recompute, reset repeats, thread count does not matter. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/fixture_ref.h"
#include "rosetta/infer.h"

static const char *const MODELS[] = {"tiny-qwen2", "tiny-qwen2-tied", "tiny-qwen2-odd"};
static const char *const PROMPTS[] = {"plain", "code", "chat", "long"};

static ri_model *open_fixture(const char *name, ri_path path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fixtures/%s", ROSETTA_ROOT, name);
    ri_model_params mp = ri_model_params_default();
    mp.path = path;
    rf_error err = {0};
    ri_model *m = ri_model_open(dir, &mp, &err);
    cr_assert_not_null(m, "%s: %s", name, err.message);
    return m;
}

static ri_context *new_ctx(ri_model *m, int threads, ri_trace_fn trace, void *user)
{
    ri_context_params cp = ri_context_params_default();
    cp.n_ctx = 512;
    cp.n_threads = threads;
    cp.trace = trace;
    cp.trace_user = user;
    rf_error err = {0};
    ri_context *ctx = ri_context_new(m, &cp, &err);
    cr_assert_not_null(ctx, "%s", err.message);
    return ctx;
}

static int32_t argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

/* ---- per-stage statistics through the trace hook ------------------------------------------ */

typedef struct capture {
    const fixture_ref *ref;
    size_t checked;
    double worst;
    char worst_what[96];
} capture;

static double rel(double got, double want, double scale)
{
    return fabs(got - want) / (scale > 0 ? scale : 1.0);
}

static void check_stats(capture *c, const char *name, const char *which, fixture_stats got,
                        fixture_stats want)
{
    double span = fmax(fabs(want.min), fabs(want.max));
    double e[] = {rel(got.l2, want.l2, want.l2), rel(got.std, want.std, want.std),
                  rel(got.mean, want.mean, want.std), rel(got.min, want.min, span),
                  rel(got.max, want.max, span)};
    for (size_t i = 0; i < 5; i++)
        if (e[i] > c->worst) {
            c->worst = e[i];
            snprintf(c->worst_what, sizeof c->worst_what, "%s %s stat %zu", name, which, i);
        }
}

static void on_stage(void *user, const ri_trace_event *ev)
{
    capture *c = user;
    char name[32] = "";
    if (ev->stage == RI_STAGE_EMBEDDING)
        snprintf(name, sizeof name, "embeddings");
    else if (ev->stage == RI_STAGE_LAYER_OUT)
        snprintf(name, sizeof name, "layer.%d", ev->layer);
    else if (ev->stage == RI_STAGE_FINAL_NORM)
        snprintf(name, sizeof name, "final_norm");
    else
        return;
    for (size_t s = 0; s < c->ref->n_stages; s++) {
        if (strcmp(c->ref->stage_names[s], name) != 0)
            continue;
        check_stats(c, name, "all", fixture_stats_of(ev->data, (size_t)ev->rows * ev->cols),
                    c->ref->stage_all[s]);
        check_stats(c, name, "last",
                    fixture_stats_of(ev->data + (size_t)(ev->rows - 1) * ev->cols, ev->cols),
                    c->ref->stage_last[s]);
        c->checked++;
    }
}

Test(reference, matches_transformers)
{
    for (size_t mi = 0; mi < 3; mi++) {
        ri_model *m = open_fixture(MODELS[mi], RI_PATH_REFERENCE);
        ri_model_info info = ri_model_get_info(m);
        for (size_t pi = 0; pi < 4; pi++) {
            fixture_ref ref;
            cr_assert(fixture_ref_load(MODELS[mi], PROMPTS[pi], &ref));
            cr_assert_eq(ref.n_logits, info.n_vocab);
            capture cap = {.ref = &ref};
            ri_context *ctx = new_ctx(m, 2, on_stage, &cap);
            float *logits = malloc(ref.n_ids * info.n_vocab * sizeof *logits);
            rf_error err = {0};
            cr_assert_eq(ri_forward(ctx, ref.ids, ref.n_ids, RI_LOGITS_ALL, logits, &err), RF_OK,
                         "%s", err.message);
            const float *last = logits + (ref.n_ids - 1) * info.n_vocab;
            double max_ref = 0, max_diff = 0;
            for (size_t i = 0; i < info.n_vocab; i++) {
                max_ref = fmax(max_ref, fabs(ref.logits[i]));
                max_diff = fmax(max_diff, fabs(last[i] - ref.logits[i]));
            }
            cr_log_info("%s/%s: max|diff| %.3g = %.3g x max|logit|; stages: worst %.3g (%s)",
                        MODELS[mi], PROMPTS[pi], max_diff, max_diff / max_ref, cap.worst,
                        cap.worst_what);
            cr_expect_leq(max_diff, 1e-4 * max_ref, "%s/%s: max|diff| %g > 1e-4 x %g", MODELS[mi],
                          PROMPTS[pi], max_diff, max_ref);
            cr_expect_eq(cap.checked, info.n_layers + 2, "%s/%s: %zu stages compared", MODELS[mi],
                         PROMPTS[pi], cap.checked);
            cr_expect_leq(cap.worst, 1e-4, "%s/%s: stage statistic off by %g (%s)", MODELS[mi],
                          PROMPTS[pi], cap.worst, cap.worst_what);
            for (size_t t = 0; t < ref.n_ids; t++) {
                if (ref.margin[t] < 1e-3) /* a near tie: either answer is right */
                    continue;
                cr_expect_eq(argmax(logits + t * info.n_vocab, info.n_vocab), ref.argmax[t],
                             "%s/%s: argmax at position %zu", MODELS[mi], PROMPTS[pi], t);
            }
            /* greedy continuation, one cached decode step at a time */
            int32_t tok = argmax(last, info.n_vocab);
            ri_context_set_trace(ctx, NULL, NULL);
            for (size_t g = 0; g < ref.n_greedy; g++) {
                cr_expect_eq(tok, ref.greedy[g], "%s/%s: greedy token %zu: %d, expected %d",
                             MODELS[mi], PROMPTS[pi], g, tok, ref.greedy[g]);
                if (tok != ref.greedy[g])
                    break;
                cr_assert_eq(ri_forward(ctx, &tok, 1, RI_LOGITS_LAST, logits, &err), RF_OK, "%s",
                             err.message);
                tok = argmax(logits, info.n_vocab);
            }
            free(logits);
            ri_context_free(ctx);
        }
        ri_model_free(m);
    }
}
