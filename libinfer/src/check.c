/* The ten-stage self-test of `apr check` (docs/verifier.md, "apr check"): one real forward pass
 * of the model on a fixed prompt with every stage captured, and each stage's invariant checked
 * on the captured values against an independent recomputation (RoPE in closed form, softmax
 * attention, SwiGLU, RMSNorm) rather than against the engine's own intermediate results.
 * Not for: comparing two models (compare.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture_internal.h"
#include "internal.h"

#define CHECK_PROMPT "The quick brown fox jumps over the lazy dog. 1 2 3"
#define GREEDY_N     8

static ri_check_item *item(ri_check_report *r, const char *name, const char *plain)
{
    ri_check_item *it = &r->items[r->n_items++];
    it->name = name;
    it->plain = plain;
    it->pass = false;
    it->details[0] = '\0';
    return it;
}

static void say(ri_check_item *it, bool pass, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(ri_check_item *it, bool pass, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->details, sizeof it->details, fmt, ap);
    va_end(ap);
    it->pass = pass;
}

static double std_of(const float *x, size_t n, bool *finite)
{
    double s = 0, ss = 0;
    *finite = true;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            *finite = false;
        s += x[i];
    }
    double mean = n ? s / n : 0;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    return n ? sqrt(ss / n) : 0;
}

static void check_tokenizer(ri_check_item *it, const ri_tokenizer *tok)
{
    static const char *const texts[] = {"Hello, world!", "  two  spaces\nand a newline",
                                        "numbers 12345 and caf\xc3\xa9", "def f(x):\n    return x"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        char *back = NULL;
        size_t len = 0;
        rf_error e = {0};
        bool ok = ri_tokenize_alloc(tok, texts[i], strlen(texts[i]), 0, &ids, &n, &e) == RF_OK &&
                  ri_detokenize(tok, ids, n, 0, &back, &len, &e) == RF_OK &&
                  len == strlen(texts[i]) && memcmp(back, texts[i], len) == 0;
        free(ids);
        free(back);
        if (!ok) {
            say(it, false, "decode(encode(\"%.20s...\")) differs from the text", texts[i]);
            return;
        }
    }
    int32_t eos = ri_token_eos(tok);
    if (eos < 0) {
        say(it, true, "4 texts round-trip; the model names no EOS token");
        return;
    }
    const char *text = ri_token_text(tok, eos);
    int32_t *ids = NULL;
    size_t n = 0;
    rf_error e = {0};
    bool special = ri_token_is_special(tok, eos);
    bool back = special && text &&
                ri_tokenize_alloc(tok, text, strlen(text), RI_TOKENIZE_PARSE_SPECIAL, &ids, &n,
                                  &e) == RF_OK &&
                n == 1 && ids[0] == eos;
    free(ids);
    if (!special || !back)
        say(it, false, "EOS id %d is \"%s\", %s", eos, text ? text : "?",
            special ? "which does not tokenize back to it" : "not a special token: ids shifted?");
    else
        say(it, true, "4 texts round-trip; EOS %d = \"%s\" round-trips", eos, text);
}

/* q (before RoPE) rotated in closed form at position pos equals q_rope. */
static void check_rope(ri_check_item *it, const ri_model *m, const ri_capture *c)
{
    const ri_model_info *I = &c->info;
    uint32_t rows, cols;
    const float *q = ri_capture_stage(c, RI_STAGE_Q, 0, &rows, &cols);
    const float *qr = ri_capture_stage(c, RI_STAGE_Q_ROPE, 0, NULL, NULL);
    if (!q || !qr || rows < 2) {
        say(it, false, "q / q_rope of layer 0 not captured");
        return;
    }
    uint32_t pos = rows - 1 < 5 ? rows - 1 : 5, d = I->head_dim, half = d / 2;
    double max_err = 0, max_q = 0;
    for (uint32_t h = 0; h < I->n_heads; h++) {
        const float *x = q + (size_t)pos * cols + (size_t)h * d;
        const float *y = qr + (size_t)pos * cols + (size_t)h * d;
        for (uint32_t i = 0; i < half; i++) {
            double angle = pos * pow(m->rope_theta, -2.0 * i / d);
            uint32_t i0 = m->rope_type == RF_ROPE_NEOX ? i : 2 * i;
            uint32_t i1 = m->rope_type == RF_ROPE_NEOX ? i + half : 2 * i + 1;
            double a = x[i0], b = x[i1];
            double e0 = a * cos(angle) - b * sin(angle), e1 = b * cos(angle) + a * sin(angle);
            max_err = fmax(max_err, fmax(fabs(e0 - y[i0]), fabs(e1 - y[i1])));
            max_q = fmax(max_q, fmax(fabs(a), fabs(b)));
        }
    }
    bool moved = false;
    for (uint32_t i = 0; i < cols && !moved; i++)
        moved = q[(size_t)pos * cols + i] != qr[(size_t)pos * cols + i];
    bool ok = moved && max_err <= 1e-5 * fmax(max_q, 1.0);
    say(it, ok, "position %u, theta %g, %s: max |q_rope - closed form| %.2g%s", pos, m->rope_theta,
        m->rope_type == RF_ROPE_NEOX ? "NEOX" : "NORM", max_err,
        moved ? "" : " (no rotation applied)");
}

static void check_qkv(ri_check_item *it, const ri_capture *c)
{
    const ri_model_info *I = &c->info;
    uint32_t want[3] = {I->n_heads * I->head_dim, I->n_kv_heads * I->head_dim,
                        I->n_kv_heads * I->head_dim};
    ri_stage st[3] = {RI_STAGE_Q, RI_STAGE_K, RI_STAGE_V};
    double min_std = INFINITY;
    for (uint32_t l = 0; l < I->n_layers; l++)
        for (int k = 0; k < 3; k++) {
            uint32_t rows, cols;
            const float *x = ri_capture_stage(c, st[k], (int32_t)l, &rows, &cols);
            bool finite;
            if (!x || cols != want[k]) {
                say(it, false, "layer %u %s: width %u, expected %u", l, ri_stage_name(st[k]),
                    x ? cols : 0, want[k]);
                return;
            }
            double s = std_of(x, (size_t)rows * cols, &finite);
            if (!finite || !(s > 1e-6)) {
                say(it, false, "layer %u %s: %s (std %.2g)", l, ri_stage_name(st[k]),
                    finite ? "collapsed" : "NaN/Inf", s);
                return;
            }
            min_std = fmin(min_std, s);
        }
    say(it, true, "q %u, k %u, v %u wide in %u layers; smallest std %.3g", want[0], want[1],
        want[2], I->n_layers, min_std);
}

/* Softmax attention recomputed from q_rope / k_rope / v: rows sum to 1, the mean entropy is
 * above 0.1 nats, and the weighted sum of v equals the captured attention output. */
static void check_attention(ri_check_item *it, const ri_capture *c)
{
    const ri_model_info *I = &c->info;
    uint32_t n, cv;
    const float *v = ri_capture_stage(c, RI_STAGE_V, 0, &n, &cv);
    const float *out = ri_capture_stage(c, RI_STAGE_ATTN_OUT, 0, NULL, NULL);
    float *p = v ? malloc((size_t)n * n * sizeof *p) : NULL;
    if (!v || !out || !p || n < 2) {
        free(p);
        say(it, false, "layer 0 attention not captured");
        return;
    }
    uint32_t d = I->head_dim, group = I->n_heads / I->n_kv_heads;
    double worst_sum = 0, entropy = 0, max_err = 0, max_out = 0;
    for (uint32_t h = 0; h < I->n_heads; h++) {
        rf_error e = {0};
        if (ri_capture_attention(c, 0, h, p, &e) != RF_OK) {
            free(p);
            say(it, false, "%s", e.message);
            return;
        }
        for (uint32_t t = 0; t < n; t++) {
            float sum = 0;
            double ent = 0;
            for (uint32_t j = 0; j <= t; j++) {
                sum += p[(size_t)t * n + j];
                if (p[(size_t)t * n + j] > 0)
                    ent -= p[(size_t)t * n + j] * log((double)p[(size_t)t * n + j]);
            }
            worst_sum = fmax(worst_sum, fabs((double)(sum - 1.0f)));
            if (t > 0)
                entropy += ent;
            for (uint32_t i = 0; i < d; i++) {
                double o = 0;
                for (uint32_t j = 0; j <= t; j++)
                    o += p[(size_t)t * n + j] * v[(size_t)j * cv + (size_t)(h / group) * d + i];
                double got = out[(size_t)t * I->n_heads * d + (size_t)h * d + i];
                max_err = fmax(max_err, fabs(o - got));
                max_out = fmax(max_out, fabs(o));
            }
        }
    }
    free(p);
    entropy /= (double)I->n_heads * (n - 1);
    bool ok = worst_sum <= 1e-5 && entropy > 0.1 && max_err <= 1e-4 * fmax(max_out, 1.0);
    say(it, ok, "rows sum to 1 within %.1g; mean entropy %.3f nats; output vs softmax(qk)v %.2g",
        worst_sum, entropy, max_err);
}

static void check_swiglu(ri_check_item *it, const ri_capture *c)
{
    uint32_t rows, cols;
    const float *g = ri_capture_stage(c, RI_STAGE_GATE, 0, &rows, &cols);
    const float *u = ri_capture_stage(c, RI_STAGE_UP, 0, NULL, NULL);
    const float *s = ri_capture_stage(c, RI_STAGE_SWIGLU, 0, NULL, NULL);
    if (!g || !u || !s) {
        say(it, false, "gate / up / swiglu of layer 0 not captured");
        return;
    }
    size_t n = (size_t)rows * cols;
    double err = 0, scale = 0, diff_up = 0, up2 = 0;
    for (size_t i = 0; i < n; i++) {
        double want = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
        err = fmax(err, fabs(want - s[i]));
        scale = fmax(scale, fabs(want));
        diff_up += ((double)s[i] - u[i]) * ((double)s[i] - u[i]);
        up2 += (double)u[i] * u[i];
    }
    double rel_change = up2 > 0 ? sqrt(diff_up / up2) : 0;
    bool ok = err <= 1e-5 * fmax(scale, 1.0) && rel_change > 1e-3;
    say(it, ok, "silu(gate) * up within %.2g; output differs from up by %.1f %%", err,
        100 * rel_change);
}

/* attn_norm of layer 0 divided by its gain is x / rms(x) of the embedding rows: RMS 1. */
static void check_rmsnorm(ri_check_item *it, const ri_model *m, const ri_capture *c)
{
    uint32_t rows, cols;
    const float *x = ri_capture_stage(c, RI_STAGE_EMBEDDING, -1, &rows, &cols);
    const float *y = ri_capture_stage(c, RI_STAGE_ATTN_NORM, 0, NULL, NULL);
    const float *gain = m->layers[0].attn_norm;
    if (!x || !y) {
        say(it, false, "embedding / attn_norm not captured");
        return;
    }
    double worst_rms = 0, worst_err = 0;
    for (uint32_t t = 0; t < rows; t++) {
        double ss = 0, rr = 0, err = 0;
        for (uint32_t i = 0; i < cols; i++)
            ss += (double)x[(size_t)t * cols + i] * x[(size_t)t * cols + i];
        double scale = 1.0 / sqrt(ss / cols + m->rms_eps);
        uint32_t used = 0;
        for (uint32_t i = 0; i < cols; i++) {
            if (gain[i] == 0)
                continue;
            double before = y[(size_t)t * cols + i] / gain[i];
            rr += before * before;
            used++;
            err = fmax(err, fabs(before - x[(size_t)t * cols + i] * scale));
        }
        double rms = used ? sqrt(rr / used) : 0;
        worst_rms = fmax(worst_rms, fabs(rms - 1.0));
        worst_err = fmax(worst_err, err);
    }
    bool ok = worst_rms <= 1e-2 && worst_err <= 1e-4;
    say(it, ok, "RMS before the gain within %.2g of 1; vs x / rms(x) %.2g (eps %g)", worst_rms,
        worst_err, (double)m->rms_eps);
}

static void check_head(ri_check_item *it, const ri_capture *c, const ri_tokenizer *tok)
{
    uint32_t rows, cols;
    const float *lg = ri_capture_stage(c, RI_STAGE_LOGITS, -1, &rows, &cols);
    if (!lg) {
        say(it, false, "no logits");
        return;
    }
    bool finite;
    double s = std_of(lg + (size_t)(rows - 1) * cols, cols, &finite);
    bool ok = cols == c->info.n_vocab && ri_n_vocab(tok) <= cols && finite && s > 1e-6;
    say(it, ok, "%u logits per position (vocabulary %zu); last position std %.3g%s", cols,
        ri_n_vocab(tok), s, finite ? "" : ", NaN/Inf");
}

static void check_softmax(ri_check_item *it, const ri_capture *c)
{
    uint32_t rows, cols;
    const float *lg = ri_capture_stage(c, RI_STAGE_LOGITS, -1, &rows, &cols);
    double worst = 0;
    for (uint32_t t = 0; lg && t < rows; t++) {
        const float *x = lg + (size_t)t * cols;
        /* sums in double: in float, 151,936 terms (Qwen2's vocabulary) drift by ~3e-4 from
         * rounding alone, which says nothing about the model */
        float max = -INFINITY;
        double sum = 0, total = 0;
        for (uint32_t i = 0; i < cols; i++)
            max = fmaxf(max, x[i]);
        for (uint32_t i = 0; i < cols; i++)
            sum += exp((double)(x[i] - max));
        for (uint32_t i = 0; i < cols; i++)
            total += exp((double)(x[i] - max)) / sum;
        worst = isfinite(total) ? fmax(worst, fabs(total - 1.0)) : INFINITY;
    }
    say(it, lg && worst <= 1e-4, "sum of probabilities within %.2g of 1 at %u positions", worst,
        lg ? rows : 0);
}

static void check_greedy(ri_check_item *it, ri_model *m, const ri_capture *first,
                         const ri_tokenizer *tok, int n_threads)
{
    size_t n_ids, n0;
    const int32_t *ids = ri_capture_tokens(first, &n_ids);
    const int32_t *g0 = ri_capture_greedy(first, &n0);
    ri_capture_params p = ri_capture_params_default();
    p.n_greedy = GREEDY_N;
    p.n_threads = n_threads;
    p.no_stages = true;
    for (int run = 1; run < 3; run++) {
        rf_error e = {0};
        ri_capture *c = ri_capture_run_ids(m, ids, n_ids, &p, &e);
        size_t n;
        const int32_t *g = c ? ri_capture_greedy(c, &n) : NULL;
        bool same = g && n == n0 && memcmp(g, g0, n * sizeof *g) == 0;
        ri_capture_free(c);
        if (!same) {
            say(it, false, "run %d gave another continuation", run + 1);
            return;
        }
    }
    size_t distinct = 0;
    for (size_t i = 0; i < n0; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen |= g0[j] == g0[i];
        distinct += !seen;
        if ((size_t)g0[i] >= ri_n_vocab(tok) || ri_token_type(tok, g0[i]) == RF_TOKEN_UNUSED) {
            say(it, false, "3 runs agree, but token %d has no vocabulary entry (garbage)", g0[i]);
            return;
        }
    }
    bool ok = n0 < 4 || distinct > 1;
    say(it, ok, "3 runs give the same %zu tokens (%zu distinct)%s", n0, distinct,
        ok ? "" : ": one token repeated (garbage)");
}

rf_status ri_check_run(ri_model *model, int n_threads, ri_check_report *report, rf_error *err)
{
    memset(report, 0, sizeof *report);
    ri_capture_params p = ri_capture_params_default();
    p.n_greedy = GREEDY_N;
    p.n_threads = n_threads;
    ri_capture *c = ri_capture_run(model, CHECK_PROMPT, strlen(CHECK_PROMPT), &p, err);
    if (!c)
        return err ? err->status : RF_ERR_ARGUMENT;
    const ri_tokenizer *tok = ri_capture_tokenizer(c);
    check_tokenizer(item(report, "tokenizer",
                         "text -> tokens -> text is unchanged; EOS is a "
                         "special token"),
                    tok);
    ri_check_item *it = item(report, "embedding",
                             "the prompt's embedding rows are finite and "
                             "not degenerate");
    uint32_t rows, cols;
    const float *e = ri_capture_stage(c, RI_STAGE_EMBEDDING, -1, &rows, &cols);
    double min_std = INFINITY;
    bool all_finite = e != NULL, distinct = false;
    for (uint32_t t = 0; e && t < rows; t++) {
        bool finite;
        min_std = fmin(min_std, std_of(e + (size_t)t * cols, cols, &finite));
        all_finite &= finite;
        if (t > 0 && memcmp(e, e + (size_t)t * cols, cols * sizeof *e) != 0)
            distinct = true;
    }
    say(it, all_finite && min_std > 1e-6 && (rows < 2 || distinct),
        "%u rows of %u; smallest row std %.3g%s", rows, cols, min_std,
        rows > 1 && !distinct ? ", all rows equal" : "");
    check_rope(item(report, "rope", "RoPE rotates q as the closed form does at a position > 0"),
               model, c);
    check_qkv(item(report, "qkv", "Q, K, V have the configured widths and real spread"), c);
    check_attention(item(report, "attention",
                         "attention rows sum to 1, are not collapsed, and "
                         "mix V as softmax(QK) says"),
                    c);
    check_swiglu(item(report, "swiglu", "the MLP computes silu(gate) * up, not a copy"), c);
    check_rmsnorm(item(report, "rmsnorm", "RMSNorm scales each row to RMS 1 before its gain"),
                  model, c);
    check_head(item(report, "lm_head", "one logit per vocabulary entry, and they vary"), c, tok);
    check_softmax(item(report, "softmax", "the next-token probabilities sum to 1"), c);
    check_greedy(item(report, "greedy",
                      "greedy decoding repeats itself exactly over 3 runs and "
                      "makes real tokens"),
                 model, c, tok, n_threads);
    report->all_pass = true;
    for (size_t i = 0; i < report->n_items; i++)
        report->all_pass &= report->items[i].pass;
    ri_capture_free(c);
    return RF_OK;
}
