/* The verifier's pieces (rosetta/verify.h, docs/verifier.md) on hand-made captures and on the
 * fixtures: each metric against a value computed by hand, the limits per pair of precision
 * levels and engines, the choice of the first divergence, the trace container written and read
 * back bit for bit (and refused when damaged), logits bit-identical with and without the trace
 * hook, and the diff-tensors status of feeding weights. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture_internal.h"
#include "helpers/test_fs.h"
#include "rosetta/verify.h"

/* ---- hand-made captures ------------------------------------------------------------------- */

/* A capture of a 2-layer model (n_embd 4, vocab 3) over n_tokens prompt ids, with no stage
 * filled: the tests fill what they need. Same engine and dtype signature unless changed. */
static ri_capture *fake(size_t n_tokens)
{
    ri_model_info I = {.n_vocab = 3,
                       .n_embd = 4,
                       .n_layers = 2,
                       .n_heads = 2,
                       .n_kv_heads = 1,
                       .head_dim = 2,
                       .n_ff = 6};
    ri_capture *c = rcap_new(&I, n_tokens);
    cr_assert_not_null(c);
    for (size_t i = 0; i < n_tokens; i++)
        c->tokens[i] = (int32_t)(i % 3);
    c->engine = strdup("rosetta reference");
    c->label = strdup("fake");
    c->dtypes = strdup("F32");
    c->dtype_sig = strdup("0,0");
    c->level = RI_LEVEL_F32;
    return c;
}

static void fill(ri_capture *c, ri_stage stage, int32_t layer, uint32_t rows, uint32_t cols,
                 const float *values)
{
    float *dst = rcap_alloc_slot(c, stage, layer, rows, cols);
    cr_assert_not_null(dst);
    memcpy(dst, values, (size_t)rows * cols * sizeof(float));
}

static const ri_compare_row *row_of(const ri_compare *cmp, ri_point point, ri_stage stage,
                                    int32_t layer)
{
    for (size_t i = 0; i < ri_compare_n_rows(cmp); i++) {
        const ri_compare_row *r = ri_compare_row_at(cmp, i);
        if (r->point == point &&
            (point != RI_POINT_STAGE || (r->stage == stage && r->layer == layer)))
            return r;
    }
    cr_assert_fail("no row %d %d %d", point, stage, layer);
    return NULL;
}

static void near(double got, double want, double tol, const char *what)
{
    cr_assert(fabs(got - want) <= tol * fmax(1.0, fabs(want)), "%s: %.17g, expected %.17g", what,
              got, want);
}

Test(verify_metrics, stage_metrics_equal_hand_computed_values)
{
    /* a = [1 2 | 3 4], b = [1 2 | 3 5] (2 positions x 2 values):
     * max |d| = 1; rel max = 1 / 4; cosine = 34 / sqrt(30 * 39);
     * NMSE = 1 / sum (a - 2.5)^2 = 1 / 5; position 1 is the first over a 1e-9 limit. */
    ri_capture *a = fake(2), *b = fake(2);
    const float va[] = {1, 2, 3, 4}, vb[] = {1, 2, 3, 5};
    fill(a, RI_STAGE_EMBEDDING, -1, 2, 2, va);
    fill(b, RI_STAGE_EMBEDDING, -1, 2, 2, vb);
    rf_error err = {0};
    ri_compare *cmp = ri_compare_new(a, b, NULL, &err);
    cr_assert_not_null(cmp, "%s", err.message);
    const ri_compare_row *r = row_of(cmp, RI_POINT_STAGE, RI_STAGE_EMBEDDING, -1);
    cr_assert(r->compared && !r->pass);
    near(r->max_abs, 1.0, 1e-15, "max_abs");
    near(r->rel_max, 0.25, 1e-15, "rel_max");
    near(r->cosine, 34.0 / sqrt(30.0 * 39.0), 1e-15, "cosine");
    near(r->nmse, 0.2, 1e-15, "nmse");
    cr_assert_eq(r->first_position, 1);
    cr_assert_eq(r->bad_a, 0);
    cr_assert_eq(r->bad_b, 0);
    ri_compare_free(cmp);

    /* NaN on one side only: counted, and the stage fails even with a huge limit */
    const float vn[] = {1, 2, NAN, 4};
    ri_capture *n = fake(2);
    fill(n, RI_STAGE_EMBEDDING, -1, 2, 2, vn);
    ri_compare_options o = ri_compare_options_default();
    o.tolerance = 1e30;
    cmp = ri_compare_new(a, n, &o, &err);
    r = row_of(cmp, RI_POINT_STAGE, RI_STAGE_EMBEDDING, -1);
    cr_assert_eq(r->bad_b, 1);
    cr_assert_eq(r->bad_a, 0);
    cr_assert(!r->pass);
    ri_compare_free(cmp);
    ri_capture_free(n);
    ri_capture_free(a);
    ri_capture_free(b);
}

Test(verify_metrics, logits_as_distributions)
{
    /* vocab 3, 2 positions, prompt ids 0 1.
     * position 0: A (0, 0, -inf-ish) vs B (ln 3, 0, ...): with the third logit at -1000 its
     *   probability is 0 on both sides, so p_A = (1/2, 1/2), p_B = (3/4, 1/4):
     *   KL(A||B) = 1/2 ln((1/2)/(3/4)) + 1/2 ln((1/2)/(1/4)) = 1/2 ln(4/3);
     *   argmax 0 on both (ties go to the lower id); dp of the next token (id 1) = 1/4 - 1/2.
     * position 1: A (1, 0, -1000) vs B (0, 1, -1000): KL = (e - 1) / (e + 1) (both sides are
     *   a two-way softmax with logit gap 1, mirrored), argmaxes 0 and 1 differ.
     * mean KL = (1/2 ln(4/3) + (e - 1)/(e + 1)) / 2, max KL = (e - 1)/(e + 1) = tanh(1/2),
     * same top p = 1/2, RMS dp = 1/4 (one position), top-2 overlap at the last position 1. */
    ri_capture *a = fake(2), *b = fake(2);
    const float la[] = {0, 0, -1000, 1, 0, -1000};
    const float lb[] = {(float)log(3.0), 0, -1000, 0, 1, -1000};
    fill(a, RI_STAGE_LOGITS, -1, 2, 3, la);
    fill(b, RI_STAGE_LOGITS, -1, 2, 3, lb);
    ri_compare_options o = ri_compare_options_default();
    o.top_k = 2;
    rf_error err = {0};
    ri_compare *cmp = ri_compare_new(a, b, &o, &err);
    cr_assert_not_null(cmp, "%s", err.message);
    const ri_compare_row *r = row_of(cmp, RI_POINT_STAGE, RI_STAGE_LOGITS, -1);
    double e = exp(1.0), kl1 = (e - 1) / (e + 1);
    /* the logits are float: ln 3 is rounded to float, hence 1e-7 */
    near(r->kl_mean, (0.5 * log(4.0 / 3.0) + kl1) / 2, 1e-7, "kl_mean");
    near(r->kl_max, kl1, 1e-7, "kl_max");
    near(r->top1_agreement, 0.5, 0, "same top p");
    near(r->rms_dp, 0.25, 1e-7, "rms_dp");
    cr_assert_eq(r->argmax_a, 0);
    cr_assert_eq(r->argmax_b, 1);
    near(r->top_k_overlap, 1.0, 0, "top-2 overlap");
    cr_assert(!r->pass, "a KL of 0.3 passes the same-weights limit");
    ri_compare_free(cmp);

    /* the same logits: KL 0, everything agrees, the row passes */
    cmp = ri_compare_new(a, a, &o, &err);
    r = row_of(cmp, RI_POINT_STAGE, RI_STAGE_LOGITS, -1);
    cr_assert_eq(r->kl_mean, 0.0);
    cr_assert_eq(r->kl_max, 0.0);
    cr_assert_eq(r->rms_dp, 0.0);
    cr_assert_eq(r->top1_agreement, 1.0);
    cr_assert(r->pass);
    cr_assert(ri_compare_parity(cmp));
    ri_compare_free(cmp);
    ri_capture_free(a);
    ri_capture_free(b);
}

/* ---- limits -------------------------------------------------------------------------------- */

Test(verify_limits, per_level_pair_and_engine)
{
    /* one engine, the same dtype for every matrix: bit-level agreement expected */
    ri_limits l = ri_compare_default_limits(RI_LEVEL_Q4, RI_LEVEL_Q4, true, RI_ENGINES_SAME);
    cr_assert_eq(l.nmse, 1e-9);
    cr_assert_eq(l.kl_mean, 1e-7);
    cr_assert(l.judge_greedy);
    /* different weights: the coarser level's plausibility limit, whichever side holds it */
    const struct {
        ri_level a, b;
        double nmse, kl;
    } cases[] = {
        {RI_LEVEL_F32, RI_LEVEL_F32, 1e-8, 1e-6},  {RI_LEVEL_F32, RI_LEVEL_HALF, 1e-3, 1e-3},
        {RI_LEVEL_HALF, RI_LEVEL_F32, 1e-3, 1e-3}, {RI_LEVEL_HALF, RI_LEVEL_Q8, 2e-2, 2e-2},
        {RI_LEVEL_Q6, RI_LEVEL_F32, 1e-1, 2e-1},   {RI_LEVEL_F32, RI_LEVEL_Q5, 3e-1, 5e-1},
        {RI_LEVEL_Q4, RI_LEVEL_Q8, 6e-1, 1.5},     {RI_LEVEL_Q3, RI_LEVEL_Q4, 1.0, 3.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        l = ri_compare_default_limits(cases[i].a, cases[i].b, false, RI_ENGINES_SAME);
        cr_assert_eq(l.nmse, cases[i].nmse, "case %zu: nmse %g", i, l.nmse);
        cr_assert_eq(l.kl_mean, cases[i].kl, "case %zu: kl %g", i, l.kl_mean);
        cr_assert(!l.judge_greedy, "case %zu judges the continuation", i);
    }
    /* transformers in float32 on the same weights: summation order only */
    l = ri_compare_default_limits(RI_LEVEL_HALF, RI_LEVEL_HALF, true, RI_ENGINES_OTHER_F32);
    cr_assert_eq(l.nmse, 1e-6);
    cr_assert_eq(l.kl_mean, 1e-5);
    /* llama.cpp rounds activations: BF16 weights are judged as q8, Q4 stays q4, F32 as F32
     * arithmetic of another engine */
    l = ri_compare_default_limits(RI_LEVEL_HALF, RI_LEVEL_HALF, true, RI_ENGINES_OTHER_ROUNDED);
    cr_assert_eq(l.nmse, 2e-2);
    l = ri_compare_default_limits(RI_LEVEL_Q4, RI_LEVEL_Q4, true, RI_ENGINES_OTHER_ROUNDED);
    cr_assert_eq(l.nmse, 6e-1);
    l = ri_compare_default_limits(RI_LEVEL_F32, RI_LEVEL_F32, true, RI_ENGINES_OTHER_ROUNDED);
    cr_assert_eq(l.nmse, 1e-6);
}

Test(verify_limits, levels_from_dtypes)
{
    const struct {
        rf_dtype dt;
        ri_level lv;
    } cases[] = {
        {RF_DTYPE_F32, RI_LEVEL_F32},   {RF_DTYPE_F16, RI_LEVEL_HALF},
        {RF_DTYPE_BF16, RI_LEVEL_HALF}, {RF_DTYPE_Q8_0, RI_LEVEL_Q8},
        {RF_DTYPE_APR_Q8, RI_LEVEL_Q8}, {RF_DTYPE_Q6_K, RI_LEVEL_Q6},
        {RF_DTYPE_Q5_0, RI_LEVEL_Q5},   {RF_DTYPE_Q5_K, RI_LEVEL_Q5},
        {RF_DTYPE_Q4_K, RI_LEVEL_Q4},   {RF_DTYPE_APR_Q4, RI_LEVEL_Q4},
        {RF_DTYPE_Q3_K, RI_LEVEL_Q3},   {RF_DTYPE_Q2_K, RI_LEVEL_Q3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(rcap_dtype_level(cases[i].dt), cases[i].lv, "%s", rf_dtype_name(cases[i].dt));
    cr_assert_str_eq(ri_level_name(RI_LEVEL_HALF), "f16/bf16");
    cr_assert_null(ri_level_name(RI_LEVEL_COUNT));
}

Test(verify_limits, the_comparison_picks_limits_and_warns_on_levels)
{
    ri_capture *a = fake(1), *b = fake(1);
    rf_error err = {0};
    /* same engine, same signature: strict */
    ri_compare *cmp = ri_compare_new(a, b, NULL, &err);
    cr_assert_eq(ri_compare_limits(cmp).nmse, 1e-9);
    cr_assert_eq(ri_compare_n_warnings(cmp), 0);
    ri_compare_free(cmp);
    /* B quantized to Q8: the q8 limit and one warning naming both levels */
    b->level = RI_LEVEL_Q8;
    free(b->dtype_sig);
    b->dtype_sig = strdup("8,8");
    cmp = ri_compare_new(a, b, NULL, &err);
    cr_assert_eq(ri_compare_limits(cmp).nmse, 2e-2);
    cr_assert_eq(ri_compare_n_warnings(cmp), 1);
    cr_assert(strstr(ri_compare_warning(cmp, 0), "A: f32, B: q8") != NULL, "%s",
              ri_compare_warning(cmp, 0));
    ri_compare_free(cmp);
    /* another engine that rounds activations: a second warning */
    b->rounded_activations = true;
    free(b->engine);
    b->engine = strdup("llama.cpp");
    cmp = ri_compare_new(a, b, NULL, &err);
    cr_assert_eq(ri_compare_n_warnings(cmp), 2);
    cr_assert(strstr(ri_compare_warning(cmp, 1), "two engines") != NULL);
    ri_compare_free(cmp);
    ri_capture_free(a);
    ri_capture_free(b);
}

/* ---- the first divergence ------------------------------------------------------------------ */

/* Fills every stage of every layer of a and b with the same values. */
static void fill_all(ri_capture *a, ri_capture *b)
{
    float v[2 * 8];
    for (int i = 0; i < 16; i++)
        v[i] = (float)(i % 7) - 2.5f + 0.1f * (float)i;
    for (int s = 0; s < RI_STAGE_COUNT; s++)
        for (int32_t l = -1; l < 2; l++) {
            if (rcap_slot(a, (ri_stage)s, l) < 0)
                continue;
            uint32_t cols = s == RI_STAGE_LOGITS ? 3 : 4;
            fill(a, (ri_stage)s, l, 2, cols, v);
            fill(b, (ri_stage)s, l, 2, cols, v);
        }
}

static void bump(ri_capture *c, ri_stage stage, int32_t layer, float by)
{
    uint32_t rows, cols;
    float *x = (float *)ri_capture_stage(c, stage, layer, &rows, &cols);
    cr_assert_not_null(x);
    x[rows * cols - 1] += by;
}

Test(verify_divergence, the_first_failing_row_in_report_order)
{
    ri_capture *a = fake(2), *b = fake(2);
    fill_all(a, b);
    rf_error err = {0};
    ri_compare *cmp = ri_compare_new(a, b, NULL, &err);
    cr_assert(ri_compare_parity(cmp));
    cr_assert_eq(ri_compare_first_divergence(cmp), -1);
    /* tokens, embedding, 2 x 15 layer stages, final norm, logits, greedy */
    cr_assert_eq(ri_compare_n_rows(cmp), 1 + 1 + 30 + 2 + 1);
    ri_compare_free(cmp);

    /* differences at layer 1 down (large) and layer 1 k (small, but over the limit): k comes
     * first in computation order, and is the first divergence */
    bump(b, RI_STAGE_DOWN, 1, 100.0f);
    bump(b, RI_STAGE_K, 1, 1e-3f);
    cmp = ri_compare_new(a, b, NULL, &err);
    long first = ri_compare_first_divergence(cmp);
    cr_assert_geq(first, 0);
    const ri_compare_row *r = ri_compare_row_at(cmp, (size_t)first);
    cr_assert_eq(r->stage, RI_STAGE_K);
    cr_assert_eq(r->layer, 1);
    cr_assert_str_eq(ri_compare_row_name(r), "k");
    cr_assert_eq(r->first_position, 1);
    ri_compare_free(cmp);

    /* a looser limit for k alone moves the first divergence to down */
    ri_compare_options o = ri_compare_options_default();
    o.stage_tolerance[RI_STAGE_K] = 1.0;
    cmp = ri_compare_new(a, b, &o, &err);
    r = ri_compare_row_at(cmp, (size_t)ri_compare_first_divergence(cmp));
    cr_assert_eq(r->stage, RI_STAGE_DOWN);
    cr_assert_eq(r->layer, 1);
    ri_compare_free(cmp);

    /* a stage B did not capture is reported, not judged */
    long slot = rcap_slot(b, RI_STAGE_K, 1);
    free(b->slots[slot].data);
    b->slots[slot].data = NULL;
    cmp = ri_compare_new(a, b, NULL, &err);
    r = ri_compare_row_at(cmp, (size_t)ri_compare_first_divergence(cmp));
    cr_assert_eq(r->stage, RI_STAGE_DOWN);
    const ri_compare_row *k = row_of(cmp, RI_POINT_STAGE, RI_STAGE_K, 1);
    cr_assert(!k->compared && k->pass);
    cr_assert_str_eq(k->note, "not captured in B");
    ri_compare_free(cmp);

    /* differing prompt ids come before every stage */
    b->tokens[1] = 2;
    cmp = ri_compare_new(a, b, NULL, &err);
    r = ri_compare_row_at(cmp, (size_t)ri_compare_first_divergence(cmp));
    cr_assert_eq(r->point, RI_POINT_TOKENS);
    cr_assert_eq(r->first_diff, 1);
    cr_assert_str_eq(ri_compare_row_name(r), "tokens");
    ri_compare_free(cmp);
    ri_capture_free(a);
    ri_capture_free(b);
}

Test(verify_divergence, greedy_judged_only_under_strict_limits)
{
    ri_capture *a = fake(2), *b = fake(2);
    fill_all(a, b);
    const int32_t ga[] = {1, 2, 0}, gb[] = {1, 0, 0};
    a->greedy = malloc(sizeof ga);
    b->greedy = malloc(sizeof gb);
    memcpy(a->greedy, ga, sizeof ga);
    memcpy(b->greedy, gb, sizeof gb);
    a->n_greedy = b->n_greedy = 3;
    rf_error err = {0};
    ri_compare *cmp = ri_compare_new(a, b, NULL, &err);
    const ri_compare_row *r = ri_compare_row_at(cmp, (size_t)ri_compare_first_divergence(cmp));
    cr_assert_eq(r->point, RI_POINT_GREEDY);
    cr_assert_eq(r->first_diff, 1);
    ri_compare_free(cmp);
    /* other dtypes on B: the continuation is reported, not judged */
    free(b->dtype_sig);
    b->dtype_sig = strdup("1,1");
    b->level = RI_LEVEL_HALF;
    cmp = ri_compare_new(a, b, NULL, &err);
    cr_assert(ri_compare_parity(cmp));
    r = row_of(cmp, RI_POINT_GREEDY, RI_STAGE_COUNT, -1);
    cr_assert_eq(r->first_diff, 1);
    cr_assert(r->pass && r->note);
    ri_compare_free(cmp);
    /* a shorter continuation (a trace recorded with another -n) is compared over the common
     * length */
    free(b->dtype_sig);
    b->dtype_sig = strdup("0,0");
    b->level = RI_LEVEL_F32;
    b->n_greedy = 1;
    cmp = ri_compare_new(a, b, NULL, &err);
    cr_assert(ri_compare_parity(cmp));
    ri_compare_free(cmp);
    ri_capture_free(a);
    ri_capture_free(b);
}

/* ---- real runs on the fixture ---------------------------------------------------------------- */

static ri_model *open_fixture(const char *name)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fixtures/%s", ROSETTA_ROOT, name);
    ri_model_params mp = ri_model_params_default();
    rf_error err = {0};
    ri_model *m = ri_model_open(dir, &mp, &err);
    cr_assert_not_null(m, "%s: %s", name, err.message);
    return m;
}

typedef struct count_hook {
    size_t events;
} count_hook;

static void counting(void *user, const ri_trace_event *ev)
{
    (void)ev;
    ((count_hook *)user)->events++;
}

/* Both paths: a prompt of 70 tokens (three query blocks of the fast path's attention) with every
 * position's logits, then two decode steps through the KV caches with the last logits. */
static void logits_with_and_without_trace(ri_path path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fixtures/tiny-qwen2-odd", ROSETTA_ROOT);
    ri_model_params mp = ri_model_params_default();
    mp.path = path;
    rf_error err = {0};
    ri_model *m = ri_model_open(dir, &mp, &err);
    cr_assert_not_null(m, "%s", err.message);
    ri_model_info I = ri_model_get_info(m);
    enum { N_PROMPT = 70, N_DECODE = 2 };
    int32_t ids[N_PROMPT + N_DECODE];
    for (size_t i = 0; i < N_PROMPT + N_DECODE; i++)
        ids[i] = (int32_t)((i * 37 + 11) % I.n_vocab);
    size_t values = (N_PROMPT + N_DECODE) * (size_t)I.n_vocab;
    float *plain = malloc(values * sizeof(float));
    float *traced = malloc(values * sizeof(float));
    cr_assert(plain && traced);
    count_hook hook = {0};
    for (int traced_run = 0; traced_run < 2; traced_run++) {
        float *out = traced_run ? traced : plain;
        ri_context_params cp = ri_context_params_default();
        cp.n_ctx = 128;
        if (traced_run) {
            cp.trace = counting;
            cp.trace_user = &hook;
        }
        ri_context *ctx = ri_context_new(m, &cp, &err);
        cr_assert_not_null(ctx, "%s", err.message);
        cr_assert_eq(ri_forward(ctx, ids, N_PROMPT, RI_LOGITS_ALL, out, &err), RF_OK, "%s",
                     err.message);
        for (size_t d = 0; d < N_DECODE; d++)
            cr_assert_eq(ri_forward(ctx, ids + N_PROMPT + d, 1, RI_LOGITS_LAST,
                                    out + (N_PROMPT + d) * I.n_vocab, &err),
                         RF_OK, "%s", err.message);
        ri_context_free(ctx);
    }
    cr_assert_gt(hook.events, (1 + N_DECODE) * 15 * I.n_layers, "the hook saw %zu events",
                 hook.events);
    cr_assert(memcmp(plain, traced, values * sizeof(float)) == 0,
              "%s path: tracing changed the logits", ri_model_path_name(m));
    /* the capture's logits are those of the untraced forward pass, bit for bit */
    ri_capture *c = ri_capture_run_ids(m, ids, N_PROMPT, NULL, &err);
    cr_assert_not_null(c, "%s", err.message);
    uint32_t rows, cols;
    const float *lg = ri_capture_stage(c, RI_STAGE_LOGITS, -1, &rows, &cols);
    cr_assert(lg && rows == N_PROMPT && cols == I.n_vocab);
    cr_assert(memcmp(plain, lg, (size_t)N_PROMPT * I.n_vocab * sizeof(float)) == 0);
    /* every stage of every layer captured with its width */
    for (uint32_t l = 0; l < I.n_layers; l++)
        for (int s = RI_STAGE_ATTN_NORM; s <= RI_STAGE_LAYER_OUT; s++)
            cr_assert_not_null(ri_capture_stage(c, (ri_stage)s, (int32_t)l, &rows, &cols),
                               "layer %u %s", l, ri_stage_name((ri_stage)s));
    ri_capture_free(c);
    free(plain);
    free(traced);
    ri_model_free(m);
}

Test(verify_capture, logits_bit_identical_with_and_without_trace_fast)
{
    logits_with_and_without_trace(RI_PATH_FAST);
}

Test(verify_capture, logits_bit_identical_with_and_without_trace_reference)
{
    logits_with_and_without_trace(RI_PATH_REFERENCE);
}

static char *temp_dir(void)
{
    char *dir = strdup("/tmp/test_verify_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

Test(verify_trace, container_round_trip_and_damage)
{
    ri_model *m = open_fixture("tiny-qwen2");
    rf_error err = {0};
    const char *prompt = "Round trip: <|im_start|>user 12 + 30<|im_end|>";
    ri_capture_params p = ri_capture_params_default();
    p.n_greedy = 5;
    ri_capture *c = ri_capture_run(m, prompt, strlen(prompt), &p, &err);
    cr_assert_not_null(c, "%s", err.message);
    char *dir = temp_dir(), path[1100];
    snprintf(path, sizeof path, "%s/t.rtrc", dir);
    cr_assert_eq(ri_capture_write(c, path, &err), RF_OK, "%s", err.message);
    ri_capture *r = ri_capture_read(path, &err);
    cr_assert_not_null(r, "%s", err.message);

    cr_assert_str_eq(ri_capture_engine(r), ri_capture_engine(c));
    cr_assert_str_eq(ri_capture_prompt(r), prompt);
    cr_assert_str_eq(ri_capture_dtypes(r), ri_capture_dtypes(c));
    cr_assert_eq(ri_capture_level(r), ri_capture_level(c));
    cr_assert_str_eq(r->dtype_sig, c->dtype_sig);
    ri_model_info ic = ri_capture_info(c), ir = ri_capture_info(r);
    cr_assert(ic.n_vocab == ir.n_vocab && ic.n_embd == ir.n_embd && ic.n_layers == ir.n_layers &&
              ic.n_heads == ir.n_heads && ic.n_kv_heads == ir.n_kv_heads &&
              ic.head_dim == ir.head_dim && ic.n_ff == ir.n_ff);
    size_t n1, n2;
    const int32_t *t1 = ri_capture_tokens(c, &n1), *t2 = ri_capture_tokens(r, &n2);
    cr_assert(n1 == n2 && memcmp(t1, t2, n1 * sizeof *t1) == 0);
    t1 = ri_capture_greedy(c, &n1);
    t2 = ri_capture_greedy(r, &n2);
    cr_assert(n1 == 5 && n2 == 5 && memcmp(t1, t2, n1 * sizeof *t1) == 0);
    size_t slots = 0;
    for (int s = 0; s < RI_STAGE_COUNT; s++)
        for (int32_t l = -1; l < (int32_t)ic.n_layers; l++) {
            uint32_t ra, ca, rb, cb;
            const float *xa = ri_capture_stage(c, (ri_stage)s, l, &ra, &ca);
            const float *xb = ri_capture_stage(r, (ri_stage)s, l, &rb, &cb);
            cr_assert_eq(xa == NULL, xb == NULL, "%s %d", ri_stage_name((ri_stage)s), l);
            if (!xa)
                continue;
            slots++;
            cr_assert(ra == rb && ca == cb);
            cr_assert(memcmp(xa, xb, (size_t)ra * ca * sizeof(float)) == 0, "%s %d differs",
                      ri_stage_name((ri_stage)s), l);
            const char *wa = ri_capture_weights(c, (ri_stage)s, l);
            const char *wb = ri_capture_weights(r, (ri_stage)s, l);
            cr_assert_str_eq(wa ? wa : "", wb ? wb : "");
        }
    cr_assert_eq(slots, 3 + 15 * ic.n_layers);
    /* the read trace compares at parity with the capture under the strictest limits */
    ri_compare *cmp = ri_compare_new(c, r, NULL, &err);
    cr_assert(ri_compare_parity(cmp));
    cr_assert_eq(ri_compare_limits(cmp).nmse, 1e-9);
    ri_compare_free(cmp);
    ri_capture_free(r);

    /* damage: every truncation point in the fixed header and JSON, a flipped payload byte */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    unsigned char *bytes = malloc((size_t)size);
    cr_assert_eq(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    char bad[1200];
    snprintf(bad, sizeof bad, "%s/bad.rtrc", dir);
    const long cuts[] = {0, 3, 31, 32, 100, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(ri_write_file_atomic(bad, bytes, (size_t)cuts[i], &err), RF_OK);
        err = (rf_error){0};
        cr_assert_null(ri_capture_read(bad, &err), "a trace cut at %ld was read", cuts[i]);
        cr_assert_eq(err.status, RF_ERR_FORMAT, "cut %ld: %s", cuts[i], err.message);
        cr_assert(strstr(err.message, "bad.rtrc") != NULL, "%s", err.message);
    }
    bytes[size - 10] ^= 0x40;
    cr_assert_eq(ri_write_file_atomic(bad, bytes, (size_t)size, &err), RF_OK);
    cr_assert_null(ri_capture_read(bad, &err));
    cr_assert_eq(err.status, RF_ERR_FORMAT);
    free(bytes);
    ri_capture_free(c);
    ri_model_free(m);
    test_remove_tree(dir);
    free(dir);
}

Test(verify_weights, diff_tensors_status_of_feeding_weights)
{
    char st[1024];
    snprintf(st, sizeof st, "%s/fixtures/tiny-qwen2", ROSETTA_ROOT);
    rf_error err = {0};
    rf_model *a = rf_model_open(st, NULL, &err);
    cr_assert_not_null(a, "%s", err.message);
    ri_weight_diff d[8];
    size_t n = 0;
    /* the model against itself: identical tensors, equal config values; an unknown name (here
     * a GGUF spelling in a SafeTensors model) is reported as not found */
    cr_assert_eq(ri_weights_diff(a, a,
                                 "model.layers.1.self_attn.k_proj.weight,"
                                 "model.layers.1.self_attn.k_proj.bias,"
                                 "rope_theta,rope_type,rms_norm_eps,blk.1.attn_k.bias",
                                 d, 8, &n, &err),
                 RF_OK, "%s", err.message);
    cr_assert_eq(n, 6);
    cr_assert(d[0].is_tensor && d[0].found && d[0].ok && !d[0].changed &&
              d[0].cls == RF_DIFF_IDENTICAL);
    cr_assert_str_eq(d[0].status, "identical");
    cr_assert(d[1].is_tensor && d[1].found && d[1].ok, "%s: %s", d[1].name, d[1].status);
    for (int i = 2; i < 5; i++)
        cr_assert(!d[i].is_tensor && d[i].ok && strcmp(d[i].status, "equal") == 0, "%s", d[i].name);
    cr_assert_str_eq(d[2].detail, "A 1000000, B 1000000");
    cr_assert(!d[5].found && !d[5].ok);
    cr_assert_str_eq(d[5].status, "not found");
    /* cap bounds the output */
    cr_assert_eq(ri_weights_diff(a, a, "rope_theta,rope_type,rms_norm_eps", d, 2, &n, &err), RF_OK);
    cr_assert_eq(n, 2);
    rf_model_free(a);
}
