/* The engine's invariants on the fixtures, for the reference and the fast path: cached decode
 * equals recomputation, chunked prefill equals one batch, a second run after reset repeats the
 * first, the thread count changes nothing, tracing changes nothing, F16 cache stays close, and
 * bad calls fail cleanly. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/fixture_ref.h"
#include "rosetta/infer.h"

static const char *const MODELS[] = {"tiny-qwen2", "tiny-qwen2-tied", "tiny-qwen2-odd"};
static const ri_path PATHS[] = {RI_PATH_REFERENCE, RI_PATH_FAST};

/* The fast path runs on every fixture; the (slow) reference path on the smallest one. */
static bool skip(size_t path_index, size_t model_index)
{
    return PATHS[path_index] == RI_PATH_REFERENCE && model_index != 2;
}

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

static ri_context *new_ctx(ri_model *m, int threads, uint32_t n_batch, ri_kv_type kv)
{
    ri_context_params cp = ri_context_params_default();
    cp.n_ctx = 256;
    cp.n_batch = n_batch;
    cp.n_threads = threads;
    cp.kv_type = kv;
    rf_error err = {0};
    ri_context *ctx = ri_context_new(m, &cp, &err);
    cr_assert_not_null(ctx, "%s", err.message);
    return ctx;
}

static double max_abs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static int32_t argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

/* the first 64 ids of the long prompt */
static size_t prompt64(const char *model, int32_t *ids)
{
    fixture_ref ref;
    cr_assert(fixture_ref_load(model, "long", &ref));
    cr_assert_geq(ref.n_ids, 64);
    memcpy(ids, ref.ids, 64 * sizeof *ids);
    return 64;
}

Test(engine, cached_decode_equals_recompute)
{
    for (size_t pi = 0; pi < 2; pi++)
        for (size_t mi = 0; mi < 3; mi++) {
            if (skip(pi, mi))
                continue;
            ri_model *m = open_fixture(MODELS[mi], PATHS[pi]);
            size_t V = ri_model_get_info(m).n_vocab;
            int32_t ids[64];
            size_t n = prompt64(MODELS[mi], ids);
            float *full = malloc(n * V * sizeof *full), *step = malloc(n * V * sizeof *step);
            float *chunked = malloc(n * V * sizeof *chunked);
            rf_error err = {0};
            ri_context *ctx = new_ctx(m, 2, 0, RI_KV_F32);
            cr_assert_eq(ri_forward(ctx, ids, n, RI_LOGITS_ALL, full, &err), RF_OK, "%s",
                         err.message);
            ri_context_reset(ctx);
            for (size_t t = 0; t < n; t++)
                cr_assert_eq(ri_forward(ctx, ids + t, 1, RI_LOGITS_LAST, step + t * V, &err), RF_OK,
                             "%s", err.message);
            cr_assert_eq(ri_context_n_past(ctx), n);
            ri_context_free(ctx);
            ctx = new_ctx(m, 2, 7, RI_KV_F32); /* prefill in chunks of 7 */
            cr_assert_eq(ri_forward(ctx, ids, n, RI_LOGITS_ALL, chunked, &err), RF_OK, "%s",
                         err.message);
            ri_context_free(ctx);
            double worst = 0, worst_chunk = 0;
            for (size_t t = 0; t < n; t++) {
                double scale = max_abs(full + t * V, V);
                worst = fmax(worst, max_diff(full + t * V, step + t * V, V) / scale);
                worst_chunk = fmax(worst_chunk, max_diff(full + t * V, chunked + t * V, V) / scale);
            }
            cr_log_info("%s %s: cached decode vs recompute %.3g, chunked %.3g (relative)",
                        ri_model_path_name(m), MODELS[mi], worst, worst_chunk);
            cr_expect_leq(worst, 1e-5, "%s %s: cached decode differs by %g", ri_model_path_name(m),
                          MODELS[mi], worst);
            cr_expect_leq(worst_chunk, 1e-5, "%s %s: chunked prefill differs by %g",
                          ri_model_path_name(m), MODELS[mi], worst_chunk);
            free(full);
            free(step);
            free(chunked);
            ri_model_free(m);
        }
}

/* 24 greedy tokens after the code prompt; logits of every step into out */
static void greedy(ri_context *ctx, const int32_t *prompt, size_t n, size_t V, int32_t *out,
                   float *step_logits)
{
    rf_error err = {0};
    cr_assert_eq(ri_forward(ctx, prompt, n, RI_LOGITS_LAST, step_logits, &err), RF_OK, "%s",
                 err.message);
    for (int g = 0; g < 24; g++) {
        out[g] = argmax(step_logits + (size_t)g * V, V);
        if (g < 23)
            cr_assert_eq(
                ri_forward(ctx, &out[g], 1, RI_LOGITS_LAST, step_logits + (g + 1) * V, &err), RF_OK,
                "%s", err.message);
    }
}

Test(engine, reset_and_threads_repeat)
{
    for (size_t pi = 0; pi < 2; pi++)
        for (size_t mi = 0; mi < 3; mi++) {
            if (skip(pi, mi))
                continue;
            ri_model *m = open_fixture(MODELS[mi], PATHS[pi]);
            size_t V = ri_model_get_info(m).n_vocab;
            fixture_ref ref;
            cr_assert(fixture_ref_load(MODELS[mi], "code", &ref));
            int32_t a[24], b[24], c[24];
            float *la = malloc(24 * V * sizeof *la), *lb = malloc(24 * V * sizeof *lb);
            float *lc = malloc(24 * V * sizeof *lc);
            ri_context *ctx = new_ctx(m, 1, 0, RI_KV_F32);
            greedy(ctx, ref.ids, ref.n_ids, V, a, la);
            ri_context_reset(ctx);
            greedy(ctx, ref.ids, ref.n_ids, V, b, lb);
            ri_context_free(ctx);
            ctx = new_ctx(m, 2, 0, RI_KV_F32);
            greedy(ctx, ref.ids, ref.n_ids, V, c, lc);
            ri_context_free(ctx);
            cr_expect_arr_eq(a, b, sizeof a, "%s %s: second run after reset differs",
                             ri_model_path_name(m), MODELS[mi]);
            cr_expect_arr_eq(a, c, sizeof a, "%s %s: 1 and 2 threads differ", ri_model_path_name(m),
                             MODELS[mi]);
            cr_expect_eq(memcmp(la, lb, 24 * V * sizeof *la), 0, "%s: logits after reset",
                         MODELS[mi]);
            cr_expect_eq(memcmp(la, lc, 24 * V * sizeof *la), 0, "%s: logits with 2 threads",
                         MODELS[mi]);
            free(la);
            free(lb);
            free(lc);
            ri_model_free(m);
        }
}

typedef struct trace_count {
    int per_stage[RI_STAGE_COUNT];
    int bad_shape;
} trace_count;

static void count_stage(void *user, const ri_trace_event *ev)
{
    trace_count *c = user;
    c->per_stage[ev->stage]++;
    bool global = ev->stage == RI_STAGE_EMBEDDING || ev->stage == RI_STAGE_FINAL_NORM ||
                  ev->stage == RI_STAGE_LOGITS;
    if ((global && ev->layer != -1) || (!global && ev->layer < 0) || ev->rows == 0 ||
        ev->cols == 0 || !ev->data)
        c->bad_shape++;
}

Test(engine, trace_sees_every_stage_and_changes_nothing)
{
    for (size_t pi = 0; pi < 2; pi++) {
        ri_model *m = open_fixture("tiny-qwen2-odd", PATHS[pi]);
        ri_model_info info = ri_model_get_info(m);
        size_t V = info.n_vocab;
        int32_t ids[64];
        size_t n = prompt64("tiny-qwen2-odd", ids);
        float *plain = malloc(n * V * sizeof *plain), *traced = malloc(n * V * sizeof *traced);
        rf_error err = {0};
        ri_context *ctx = new_ctx(m, 2, 0, RI_KV_F32);
        cr_assert_eq(ri_forward(ctx, ids, n, RI_LOGITS_ALL, plain, &err), RF_OK);
        ri_context_reset(ctx);
        trace_count tc = {0};
        ri_context_set_trace(ctx, count_stage, &tc);
        cr_assert_eq(ri_forward(ctx, ids, n, RI_LOGITS_ALL, traced, &err), RF_OK);
        cr_expect_eq(memcmp(plain, traced, n * V * sizeof *plain), 0, "tracing changed logits");
        for (int s = 0; s < RI_STAGE_COUNT; s++) {
            bool global =
                s == RI_STAGE_EMBEDDING || s == RI_STAGE_FINAL_NORM || s == RI_STAGE_LOGITS;
            cr_expect_eq(tc.per_stage[s], global ? 1 : (int)info.n_layers, "stage %s seen %d times",
                         ri_stage_name((ri_stage)s), tc.per_stage[s]);
            ri_stage back;
            cr_expect(ri_stage_from_name(ri_stage_name((ri_stage)s), &back) && (int)back == s);
        }
        cr_expect_eq(tc.bad_shape, 0);
        free(plain);
        free(traced);
        ri_context_free(ctx);
        ri_model_free(m);
    }
    cr_expect_str_eq(ri_stage_name(RI_STAGE_Q_ROPE), "q_rope");
    cr_expect_str_eq(ri_stage_name(RI_STAGE_ATTN_RESIDUAL), "attn_residual");
    cr_expect_null(ri_stage_name(RI_STAGE_COUNT));
}

Test(engine, f16_cache_is_close)
{
    for (size_t pi = 0; pi < 2; pi++) {
        ri_model *m = open_fixture("tiny-qwen2", PATHS[pi]);
        size_t V = ri_model_get_info(m).n_vocab;
        int32_t ids[64];
        size_t n = prompt64("tiny-qwen2", ids);
        float *a = malloc(n * V * sizeof *a), *b = malloc(n * V * sizeof *b);
        rf_error err = {0};
        ri_context *c32 = new_ctx(m, 2, 0, RI_KV_F32), *c16 = new_ctx(m, 2, 0, RI_KV_F16);
        cr_assert_eq(ri_forward(c32, ids, n, RI_LOGITS_ALL, a, &err), RF_OK);
        cr_assert_eq(ri_forward(c16, ids, n, RI_LOGITS_ALL, b, &err), RF_OK);
        double rel = max_diff(a, b, n * V) / max_abs(a, n * V);
        cr_log_info("%s: F16 cache vs F32 cache %.3g relative", ri_model_path_name(m), rel);
        cr_expect_leq(rel, 1e-2);
        cr_expect_gt(rel, 0.0, "the F16 cache rounded nothing");
        free(a);
        free(b);
        ri_context_free(c32);
        ri_context_free(c16);
        ri_model_free(m);
    }
}

Test(engine, bad_calls_fail_cleanly)
{
    ri_model *m = open_fixture("tiny-qwen2", RI_PATH_REFERENCE);
    size_t V = ri_model_get_info(m).n_vocab;
    float *logits = malloc(V * sizeof *logits);
    rf_error err = {0};
    ri_context_params cp = ri_context_params_default();
    cp.n_ctx = 8;
    ri_context *ctx = ri_context_new(m, &cp, &err);
    cr_assert_not_null(ctx);
    int32_t bad[] = {1, 2, (int32_t)V};
    cr_expect_eq(ri_forward(ctx, bad, 3, RI_LOGITS_LAST, logits, &err), RF_ERR_ARGUMENT);
    cr_expect(strstr(err.message, "outside the vocabulary") != NULL, "%s", err.message);
    int32_t neg = -1;
    cr_expect_eq(ri_forward(ctx, &neg, 1, RI_LOGITS_LAST, logits, &err), RF_ERR_ARGUMENT);
    int32_t many[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    cr_expect_eq(ri_forward(ctx, many, 9, RI_LOGITS_LAST, logits, &err), RF_ERR_LIMIT);
    cr_expect(strstr(err.message, "context") != NULL, "%s", err.message);
    cr_expect_eq(ri_context_n_past(ctx), 0);
    cr_expect_eq(ri_forward(ctx, many, 8, RI_LOGITS_LAST, logits, &err), RF_OK);
    cr_expect_eq(ri_forward(ctx, many, 1, RI_LOGITS_LAST, logits, &err), RF_ERR_LIMIT);
    cr_expect_eq(ri_context_truncate(ctx, 9, &err), RF_ERR_ARGUMENT);
    cr_expect_eq(ri_context_truncate(ctx, 3, &err), RF_OK);
    cr_expect_eq(ri_context_n_past(ctx), 3);
    cr_expect_eq(ri_forward(ctx, many, 1, RI_LOGITS_LAST, NULL, &err), RF_ERR_ARGUMENT);
    cr_expect_eq(ri_forward(ctx, many, 1, RI_LOGITS_NONE, NULL, &err), RF_OK);
    cp.n_threads = -1;
    cr_expect_null(ri_context_new(m, &cp, &err));
    cr_expect_null(ri_model_load(NULL, NULL, &err));
    cr_expect_null(ri_model_open("/nonexistent/model.gguf", NULL, &err));
    cr_expect_neq(err.status, RF_OK);
    ri_context_free(ctx);
    free(logits);
    ri_model_free(m);
}

/* ---- sampler ------------------------------------------------------------------------------------
 */

Test(sampler, greedy_ties_and_valid_range)
{
    ri_sampler *s = ri_sampler_new(NULL, NULL);
    cr_assert_not_null(s);
    float l[6] = {0.5f, 2.0f, -1.0f, 2.0f, 9.0f, NAN};
    cr_expect_eq(ri_sampler_sample(s, l, 6, 0), 4);
    cr_expect_eq(ri_sampler_sample(s, l, 6, 4), 1, "lowest id on ties, ids >= n_valid ignored");
    float nan[2] = {NAN, NAN};
    cr_expect_eq(ri_sampler_sample(s, nan, 2, 0), -1);
    ri_sampler_free(s);
}

Test(sampler, seeded_draws_repeat_and_follow_softmax)
{
    ri_sampler_params p = ri_sampler_params_default();
    p.temperature = 1.0f;
    p.seed = 42;
    ri_sampler *a = ri_sampler_new(&p, NULL), *b = ri_sampler_new(&p, NULL);
    float l[4] = {0.0f, logf(2.0f), logf(3.0f), logf(4.0f)}; /* p = 0.1 0.2 0.3 0.4 */
    int counts[4] = {0};
    for (int i = 0; i < 20000; i++) {
        int32_t x = ri_sampler_sample(a, l, 4, 0), y = ri_sampler_sample(b, l, 4, 0);
        cr_assert_eq(x, y, "same seed, same draws");
        cr_assert(x >= 0 && x < 4);
        counts[x]++;
    }
    for (int i = 0; i < 4; i++)
        cr_expect(fabs(counts[i] / 20000.0 - 0.1 * (i + 1)) < 0.015, "token %d drawn %d times", i,
                  counts[i]);
    ri_sampler_reset(a);
    ri_sampler_reset(b);
    p.seed = 43;
    ri_sampler *c = ri_sampler_new(&p, NULL);
    int same = 0;
    for (int i = 0; i < 200; i++)
        same += ri_sampler_sample(a, l, 4, 0) == ri_sampler_sample(c, l, 4, 0);
    cr_expect_lt(same, 200, "another seed gives other draws");
    ri_sampler_free(a);
    ri_sampler_free(b);
    ri_sampler_free(c);
}

Test(sampler, filters)
{
    float l[5] = {1.0f, 3.0f, 2.9f, 0.0f, -5.0f};
    ri_sampler_params p = ri_sampler_params_default();
    p.temperature = 5.0f;
    p.top_k = 1;
    ri_sampler *s = ri_sampler_new(&p, NULL);
    for (int i = 0; i < 50; i++)
        cr_expect_eq(ri_sampler_sample(s, l, 5, 0), 1, "top_k 1 is greedy");
    ri_sampler_free(s);
    p.top_k = 0;
    p.top_p = 0.3f; /* the top token alone has p > 0.3 at temperature 1 */
    s = ri_sampler_new(&p, NULL);
    for (int i = 0; i < 50; i++)
        cr_expect_eq(ri_sampler_sample(s, l, 5, 0), 1, "top_p keeps the head only");
    ri_sampler_free(s);
    p.top_p = 1.0f;
    p.min_p = 0.5f; /* keeps 1 (p_max) and 2 (e^-0.1 of it), drops the rest */
    s = ri_sampler_new(&p, NULL);
    int seen[5] = {0};
    for (int i = 0; i < 400; i++)
        seen[ri_sampler_sample(s, l, 5, 0)]++;
    cr_expect(seen[1] > 0 && seen[2] > 0 && seen[0] == 0 && seen[3] == 0 && seen[4] == 0);
    ri_sampler_free(s);
    p.min_p = 2.0f;
    cr_expect_null(ri_sampler_new(&p, NULL));
}

Test(sampler, penalties)
{
    float l[3] = {2.0f, 1.9f, -1.0f};
    ri_sampler_params p = ri_sampler_params_default();
    p.repeat_penalty = 1.1f; /* 2.0 / 1.1 = 1.82 < 1.9 */
    ri_sampler *s = ri_sampler_new(&p, NULL);
    cr_expect_eq(ri_sampler_sample(s, l, 3, 0), 0);
    ri_sampler_accept(s, 0);
    cr_expect_eq(ri_sampler_sample(s, l, 3, 0), 1);
    ri_sampler_reset(s);
    cr_expect_eq(ri_sampler_sample(s, l, 3, 0), 0, "reset forgets the history");
    ri_sampler_free(s);
    p = ri_sampler_params_default();
    p.frequency_penalty = 1.0f;
    s = ri_sampler_new(&p, NULL);
    ri_sampler_accept(s, 1);
    ri_sampler_accept(s, 0);
    cr_expect_eq(ri_sampler_sample(s, l, 3, 0), 0, "one of each: both lose 1");
    ri_sampler_accept(s, 0);
    cr_expect_eq(ri_sampler_sample(s, l, 3, 0), 1, "two of 0: 0 loses 2");
    ri_sampler_free(s);
    p = ri_sampler_params_default();
    p.presence_penalty = 0.5f;
    p.penalty_last_n = 1;
    s = ri_sampler_new(&p, NULL);
    ri_sampler_accept(s, 0);
    ri_sampler_accept(s, 1); /* only the last token counts */
    cr_expect_eq(ri_sampler_sample(s, l, 3, 0), 0);
    ri_sampler_free(s);
}
