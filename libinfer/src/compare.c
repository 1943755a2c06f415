/* Stage-by-stage comparison of two captures (docs/verifier.md, "Metrics and limits"): per stage
 * max |diff|, relative max, cosine and NMSE against a limit chosen from the precision levels of
 * the two models; the logits also as distributions (KL divergence, top-1 agreement, RMS of the
 * next-token probability difference, as llama-perplexity --kl-divergence reports them); the
 * tokens and the greedy continuations id by id; the first failing row is the first divergence.
 * Not for: running models (capture.c, llama_dl.c) or printing (tools/compare-inference.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture_internal.h"

struct ri_compare {
    ri_compare_row *rows;
    size_t n_rows, cap;
    long first;
    ri_limits limits;
    char *warnings[8];
    size_t n_warnings;
};

ri_compare_options ri_compare_options_default(void)
{
    ri_compare_options o = {.tolerance = -1, .top_k = 10, .kl_tolerance = -1};
    for (int s = 0; s < RI_STAGE_COUNT; s++)
        o.stage_tolerance[s] = -1;
    return o;
}

/* NMSE and KL limits per precision level, for two different weight sets (or two engines):
 * plausibility limits that a correct conversion stays under. Measured (docs/verifier.md) on the
 * three fixtures, whose random weights are the hardest case (no redundancy: Q4_K_M gives a
 * stage NMSE up to 0.27 and a mean KL up to 0.63 there), and on the real 0.5B model. Same
 * weights through one engine get the strict limits of ri_compare_default_limits instead,
 * which is what locates a planted fault. */
static const ri_limits LEVEL_LIMITS[RI_LEVEL_COUNT] = {
    [RI_LEVEL_F32] = {1e-8, 1e-6, false}, [RI_LEVEL_HALF] = {1e-3, 1e-3, false},
    [RI_LEVEL_Q8] = {2e-2, 2e-2, false},  [RI_LEVEL_Q6] = {1e-1, 2e-1, false},
    [RI_LEVEL_Q5] = {3e-1, 5e-1, false},  [RI_LEVEL_Q4] = {6e-1, 1.5, false},
    [RI_LEVEL_Q3] = {1.0, 3.0, false},
};

ri_limits ri_compare_default_limits(ri_level a, ri_level b, bool same_weights, ri_engines engines)
{
    if (same_weights && engines == RI_ENGINES_SAME)
        return (ri_limits){1e-9, 1e-7, true};
    ri_level lv = a > b ? a : b;
    if ((int)lv < 0 || lv >= RI_LEVEL_COUNT)
        lv = RI_LEVEL_Q3;
    if (same_weights && engines == RI_ENGINES_OTHER_F32)
        return (ri_limits){1e-6, 1e-5, false}; /* the same products summed in another order */
    /* llama.cpp multiplies quantized weights with activations rounded to 8 bits (Q8_0 / Q8_K)
     * and F16/BF16 weights with activations in that 16-bit type: one level coarser. */
    if (engines == RI_ENGINES_OTHER_ROUNDED && lv > RI_LEVEL_F32 && lv < RI_LEVEL_Q8)
        lv = RI_LEVEL_Q8;
    ri_limits l = LEVEL_LIMITS[lv];
    if (engines != RI_ENGINES_SAME && lv == RI_LEVEL_F32)
        l = (ri_limits){1e-6, 1e-5, false};
    return l;
}

/* ---- the rows ------------------------------------------------------------------------------ */

static ri_compare_row *add_row(ri_compare *cmp)
{
    if (cmp->n_rows == cmp->cap) {
        size_t cap = cmp->cap ? cmp->cap * 2 : 64;
        ri_compare_row *r = realloc(cmp->rows, cap * sizeof *r);
        if (!r)
            return NULL;
        cmp->rows = r;
        cmp->cap = cap;
    }
    ri_compare_row *row = &cmp->rows[cmp->n_rows++];
    *row = (ri_compare_row){.layer = -1,
                            .first_position = -1,
                            .first_diff = -1,
                            .argmax_a = -1,
                            .argmax_b = -1,
                            .cosine = NAN,
                            .nmse = NAN,
                            .max_abs = NAN,
                            .rel_max = NAN,
                            .kl_mean = NAN,
                            .kl_max = NAN,
                            .top1_agreement = NAN,
                            .rms_dp = NAN,
                            .top_k_overlap = NAN,
                            .kl_limit = NAN};
    return row;
}

static void warn(ri_compare *cmp, const char *fmt, const char *a, const char *b)
{
    if (cmp->n_warnings >= sizeof cmp->warnings / sizeof cmp->warnings[0])
        return;
    char buf[512];
    snprintf(buf, sizeof buf, fmt, a, b);
    char *w = strdup(buf);
    if (w)
        cmp->warnings[cmp->n_warnings++] = w;
}

/* Metrics of b against a over rows x cols (row-major, same strides). */
static void metrics(ri_compare_row *row, const float *a, const float *b, uint32_t rows,
                    uint32_t cols)
{
    size_t n = (size_t)rows * cols;
    double sa = 0, saa = 0, sbb = 0, sab = 0, sdd = 0, max_d = 0, max_a = 0;
    size_t finite = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        bool fa = isfinite(x), fb = isfinite(y);
        row->bad_a += !fa;
        row->bad_b += !fb;
        if (!fa || !fb)
            continue;
        finite++;
        double d = y - x;
        sa += x;
        saa += x * x;
        sbb += y * y;
        sab += x * y;
        sdd += d * d;
        if (fabs(d) > max_d)
            max_d = fabs(d);
        if (fabs(x) > max_a)
            max_a = fabs(x);
    }
    row->max_abs = max_d;
    row->rel_max = max_a > 0 ? max_d / max_a : (max_d > 0 ? INFINITY : 0);
    row->cosine = saa > 0 && sbb > 0 ? sab / (sqrt(saa) * sqrt(sbb)) : (saa == sbb ? 1.0 : 0.0);
    double var = finite ? saa - sa * sa / (double)finite : 0;
    double denom = var > 1e-30 * saa && var > 0 ? var : saa;
    row->nmse = denom > 0 ? sdd / denom : (sdd > 0 ? INFINITY : 0);
    /* the first position whose own NMSE is above the limit */
    for (uint32_t r = 0; r < rows && row->limit >= 0; r++) {
        double s = 0, ss = 0, dd = 0;
        uint32_t k = 0;
        for (uint32_t j = 0; j < cols; j++) {
            double x = a[(size_t)r * cols + j], y = b[(size_t)r * cols + j];
            if (!isfinite(x) || !isfinite(y)) {
                if (isfinite(x) != isfinite(y)) {
                    dd = INFINITY;
                    break;
                }
                continue;
            }
            s += x;
            ss += x * x;
            dd += (y - x) * (y - x);
            k++;
        }
        double v = k ? ss - s * s / k : 0;
        double den = v > 0 ? v : ss;
        double e = den > 0 ? dd / den : (dd > 0 ? INFINITY : 0);
        if (e > row->limit) {
            row->first_position = (int32_t)r;
            break;
        }
    }
}

static void log_softmax(const float *x, size_t n, double *out)
{
    if (n == 0)
        return;
    /* the largest value's term is exp(0) = 1: the sum is at least 1 */
    size_t top = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[top])
            top = i;
    double max = x[top], sum = 1;
    for (size_t i = 0; i < n; i++)
        if (i != top)
            sum += exp((double)x[i] - max);
    double lse = max + log(sum);
    for (size_t i = 0; i < n; i++)
        out[i] = (double)x[i] - lse;
}

static int32_t argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

/* Marks the k largest entries of x (ties: lower id first) in mark. */
static void top_k_mark(const float *x, size_t n, uint32_t k, unsigned char *mark)
{
    memset(mark, 0, n);
    for (uint32_t m = 0; m < k && m < n; m++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (!mark[i] && (best == n || x[i] > x[best]))
                best = i;
        mark[best] = 1;
    }
}

/* KL divergence, top-1 agreement and RMS dp over the positions; argmax and top-k overlap at the
 * last position. a and b are rows x n_vocab; tokens are the prompt ids of a. */
static bool logits_metrics(ri_compare_row *row, const float *a, const float *b, uint32_t rows,
                           uint32_t n_vocab, const int32_t *tokens, size_t n_tokens, uint32_t top_k)
{
    double *la = malloc((size_t)n_vocab * sizeof *la), *lb = malloc((size_t)n_vocab * sizeof *lb);
    unsigned char *ma = malloc(n_vocab), *mb = malloc(n_vocab);
    if (!la || !lb || !ma || !mb) {
        free(la);
        free(lb);
        free(ma);
        free(mb);
        return false;
    }
    double kl_sum = 0, kl_max = 0, dp_sum = 0;
    uint32_t agree = 0, n_dp = 0;
    for (uint32_t r = 0; r < rows; r++) {
        const float *xa = a + (size_t)r * n_vocab, *xb = b + (size_t)r * n_vocab;
        log_softmax(xa, n_vocab, la);
        log_softmax(xb, n_vocab, lb);
        double kl = 0;
        for (uint32_t i = 0; i < n_vocab; i++) {
            double pa = exp(la[i]);
            if (pa > 0)
                kl += pa * (la[i] - lb[i]);
        }
        if (!(kl >= 0))
            kl = isnan(kl) ? INFINITY : 0; /* rounding can give -1e-17 */
        kl_sum += kl;
        if (kl > kl_max)
            kl_max = kl;
        agree += argmax(xa, n_vocab) == argmax(xb, n_vocab);
        if (r + 1 < n_tokens && tokens[r + 1] >= 0 && (uint32_t)tokens[r + 1] < n_vocab) {
            double d = exp(lb[tokens[r + 1]]) - exp(la[tokens[r + 1]]);
            dp_sum += d * d;
            n_dp++;
        }
    }
    row->kl_mean = rows ? kl_sum / rows : 0;
    row->kl_max = kl_max;
    row->top1_agreement = rows ? (double)agree / rows : 1;
    row->rms_dp = n_dp ? sqrt(dp_sum / n_dp) : 0;
    const float *last_a = a + (size_t)(rows - 1) * n_vocab,
                *last_b = b + (size_t)(rows - 1) * n_vocab;
    row->argmax_a = argmax(last_a, n_vocab);
    row->argmax_b = argmax(last_b, n_vocab);
    uint32_t k = top_k < n_vocab ? top_k : n_vocab;
    top_k_mark(last_a, n_vocab, k, ma);
    top_k_mark(last_b, n_vocab, k, mb);
    uint32_t both = 0;
    for (uint32_t i = 0; i < n_vocab; i++)
        both += ma[i] && mb[i];
    row->top_k_overlap = k ? (double)both / k : 1;
    free(la);
    free(lb);
    free(ma);
    free(mb);
    return true;
}

/* Compares one stage at one layer. */
static bool compare_stage(ri_compare *cmp, const ri_capture *a, const ri_capture *b, ri_stage stage,
                          int32_t layer, const ri_compare_options *o)
{
    uint32_t ra = 0, ca = 0, rb = 0, cb = 0;
    const float *xa = ri_capture_stage(a, stage, layer, &ra, &ca);
    const float *xb = ri_capture_stage(b, stage, layer, &rb, &cb);
    bool has_a = rcap_slot(a, stage, layer) >= 0, has_b = rcap_slot(b, stage, layer) >= 0;
    if (!xa && !xb && !has_a && !has_b)
        return true; /* a layer neither model has */
    ri_compare_row *row = add_row(cmp);
    if (!row)
        return false;
    row->point = RI_POINT_STAGE;
    row->stage = stage;
    row->layer = layer;
    row->limit = o->stage_tolerance[stage] >= 0 ? o->stage_tolerance[stage]
                 : o->tolerance >= 0            ? o->tolerance
                                                : cmp->limits.nmse;
    if (has_a != has_b) {
        row->compared = true;
        row->pass = false;
        row->note = has_a ? "layer missing in B" : "layer missing in A";
        return true;
    }
    if (!xa || !xb) {
        row->compared = false;
        row->pass = true;
        row->note = !xa && !xb ? "captured by neither"
                    : !xa      ? "not captured in A"
                               : "not captured in B";
        return true;
    }
    row->compared = true;
    if (ca != cb) {
        row->pass = false;
        row->note = "widths differ";
        row->cols = ca;
        return true;
    }
    row->rows = ra < rb ? ra : rb;
    row->cols = ca;
    metrics(row, xa, xb, row->rows, row->cols);
    row->pass = row->bad_a == row->bad_b && row->nmse <= row->limit;
    if (stage == RI_STAGE_LOGITS && row->rows > 0) {
        size_t n_tok;
        const int32_t *tok = ri_capture_tokens(a, &n_tok);
        if (!logits_metrics(row, xa, xb, row->rows, ca, tok, n_tok, o->top_k ? o->top_k : 10))
            return false;
        row->kl_limit = o->kl_tolerance >= 0 ? o->kl_tolerance : cmp->limits.kl_mean;
        if (!(row->kl_mean <= row->kl_limit))
            row->pass = false;
    }
    return true;
}

static bool compare_ids(ri_compare *cmp, ri_point point, const int32_t *a, size_t na,
                        const int32_t *b, size_t nb, bool judge)
{
    ri_compare_row *row = add_row(cmp);
    if (!row)
        return false;
    row->point = point;
    row->n_a = na;
    row->n_b = nb;
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n && row->first_diff < 0; i++)
        if (a[i] != b[i])
            row->first_diff = (int64_t)i;
    /* Prompt ids of different lengths differ; continuations of different lengths (a trace
     * recorded with another -n) are compared over the common length. */
    if (row->first_diff < 0 && na != nb && point == RI_POINT_TOKENS)
        row->first_diff = (int64_t)n;
    row->compared = na > 0 || nb > 0;
    row->pass = row->first_diff < 0 || !judge;
    if (!judge && row->first_diff >= 0)
        row->note = "differs (reported, not judged at these precision levels)";
    else if (row->first_diff < 0 && na != nb)
        row->note = "lengths differ: the common part compared";
    return true;
}

ri_compare *ri_compare_new(const ri_capture *a, const ri_capture *b,
                           const ri_compare_options *options, rf_error *err)
{
    ri_compare_options o = options ? *options : ri_compare_options_default();
    ri_compare *cmp = calloc(1, sizeof *cmp);
    if (!cmp) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cmp->first = -1;
    bool cross = strcmp(ri_capture_engine(a), ri_capture_engine(b)) != 0;
    ri_engines engines = !cross ? RI_ENGINES_SAME
                         : a->rounded_activations || b->rounded_activations
                             ? RI_ENGINES_OTHER_ROUNDED
                             : RI_ENGINES_OTHER_F32;
    bool same = a->dtype_sig && b->dtype_sig && strcmp(a->dtype_sig, b->dtype_sig) == 0;
    cmp->limits = ri_compare_default_limits(a->level, b->level, same, engines);
    if (a->level != b->level)
        warn(cmp,
             "the models hold different quantization levels (A: %s, B: %s): limits adapted to "
             "the coarser one",
             ri_level_name(a->level), ri_level_name(b->level));
    if (cross)
        warn(cmp, "two engines (A: %s, B: %s): limits allow for their different rounding",
             ri_capture_engine(a), ri_capture_engine(b));

    size_t na, nb, ga, gb;
    const int32_t *ta = ri_capture_tokens(a, &na), *tb = ri_capture_tokens(b, &nb);
    bool ok = compare_ids(cmp, RI_POINT_TOKENS, ta, na, tb, nb, true);
    ok = ok && compare_stage(cmp, a, b, RI_STAGE_EMBEDDING, -1, &o);
    uint32_t la = a->info.n_layers, lb = b->info.n_layers, n_layers = la > lb ? la : lb;
    for (uint32_t l = 0; ok && l < n_layers; l++)
        for (int s = RI_STAGE_ATTN_NORM; ok && s <= RI_STAGE_LAYER_OUT; s++)
            ok = compare_stage(cmp, a, b, (ri_stage)s, (int32_t)l, &o);
    ok = ok && compare_stage(cmp, a, b, RI_STAGE_FINAL_NORM, -1, &o);
    ok = ok && compare_stage(cmp, a, b, RI_STAGE_LOGITS, -1, &o);
    const int32_t *xa = ri_capture_greedy(a, &ga), *xb = ri_capture_greedy(b, &gb);
    bool judge = cmp->limits.judge_greedy && (o.tolerance < 0);
    ok = ok && compare_ids(cmp, RI_POINT_GREEDY, xa, ga, xb, gb, judge);
    if (!ok) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory comparing captures");
        ri_compare_free(cmp);
        return NULL;
    }
    for (size_t i = 0; i < cmp->n_rows; i++)
        if (!cmp->rows[i].pass) {
            cmp->first = (long)i;
            break;
        }
    return cmp;
}

void ri_compare_free(ri_compare *cmp)
{
    if (!cmp)
        return;
    for (size_t i = 0; i < cmp->n_warnings; i++)
        free(cmp->warnings[i]);
    free(cmp->rows);
    free(cmp);
}

size_t ri_compare_n_rows(const ri_compare *cmp) { return cmp->n_rows; }
const ri_compare_row *ri_compare_row_at(const ri_compare *cmp, size_t index)
{
    return index < cmp->n_rows ? &cmp->rows[index] : NULL;
}
long ri_compare_first_divergence(const ri_compare *cmp) { return cmp->first; }
bool ri_compare_parity(const ri_compare *cmp) { return cmp->first < 0; }
ri_limits ri_compare_limits(const ri_compare *cmp) { return cmp->limits; }
size_t ri_compare_n_warnings(const ri_compare *cmp) { return cmp->n_warnings; }
const char *ri_compare_warning(const ri_compare *cmp, size_t index)
{
    return index < cmp->n_warnings ? cmp->warnings[index] : NULL;
}

const char *ri_compare_row_name(const ri_compare_row *row)
{
    switch (row->point) {
    case RI_POINT_TOKENS: return "tokens";
    case RI_POINT_GREEDY: return "greedy";
    case RI_POINT_STAGE: return ri_stage_name(row->stage);
    }
    return "?";
}
