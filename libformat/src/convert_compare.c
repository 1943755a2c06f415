/* rf_convert_compare: every tensor of a converted model against its source (docs/convert.md,
 * "Verification"): the stored bytes where the dtype was kept, the values where it changed,
 * bit for bit where the new type holds every source value, within the type's documented
 * relative RMSE otherwise. One tensor pair in memory at a time.
 * Not for: general model diffs with tolerances and transposition detection (a forensic tool's
 * job); this answers one question: did the conversion keep what it promised? */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert_internal.h"
#include "model_internal.h"
#include "pages.h"
#include "rosetta/convert.h"
#include "rosetta/names.h"
#include "rosetta/quant.h"

const char *rf_compare_kind_name(rf_compare_kind kind)
{
    switch (kind) {
    case RF_COMPARE_IDENTICAL: return "identical";
    case RF_COMPARE_EXACT: return "exact";
    case RF_COMPARE_BOUNDED: return "bounded";
    case RF_COMPARE_OMITTED: return "omitted";
    case RF_COMPARE_VIOLATION: return "violation";
    }
    return "?";
}

/* The bounds of docs/convert.md: about 1.5 times the largest relative RMSE each type showed on
 * Gaussian weights, the fixtures and every matrix of the real Qwen2.5-Coder-0.5B (outliers make
 * real weights worse than Gaussian ones), so that a broken quantizer or a mix-up of tensors
 * fails while the ordinary error of the type passes. APR_Q8 keeps one scale per tensor: on a
 * matrix with outliers it loses most small values (0.87 measured), so its bound only catches a
 * broken file. */
double rf_compare_bound(rf_dtype dtype)
{
    switch (dtype) {
    case RF_DTYPE_F32:
    case RF_DTYPE_F64: return 0.0;
    case RF_DTYPE_F16: return 1e-3;
    case RF_DTYPE_BF16: return 5e-3;
    case RF_DTYPE_Q8_0:
    case RF_DTYPE_Q8_1:
    case RF_DTYPE_Q8_K: return 0.01;
    case RF_DTYPE_Q6_K: return 0.03;
    case RF_DTYPE_Q5_0:
    case RF_DTYPE_Q5_1:
    case RF_DTYPE_Q5_K: return 0.12;
    case RF_DTYPE_Q4_0:
    case RF_DTYPE_Q4_1:
    case RF_DTYPE_Q4_K:
    case RF_DTYPE_IQ4_NL:
    case RF_DTYPE_IQ4_XS:
    case RF_DTYPE_APR_Q4: return 0.27;
    case RF_DTYPE_Q3_K: return 0.35;
    case RF_DTYPE_Q2_K: return 0.6;
    case RF_DTYPE_APR_Q8: return 1.3;
    case RF_DTYPE_IQ2_XXS:
    case RF_DTYPE_IQ2_XS:
    case RF_DTYPE_IQ3_XXS:
    case RF_DTYPE_IQ1_S:
    case RF_DTYPE_IQ3_S:
    case RF_DTYPE_IQ2_S:
    case RF_DTYPE_IQ1_M:
    case RF_DTYPE_TQ1_0:
    case RF_DTYPE_TQ2_0:
    case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4:
    case RF_DTYPE_Q1_0:
    case RF_DTYPE_Q2_0:
    case RF_DTYPE_I8:
    case RF_DTYPE_I16:
    case RF_DTYPE_I32:
    case RF_DTYPE_I64:
    case RF_DTYPE_U8:
    case RF_DTYPE_U16:
    case RF_DTYPE_U32:
    case RF_DTYPE_U64:
    case RF_DTYPE_BOOL:
    case RF_DTYPE_C64:
    case RF_DTYPE_F8_E5M2:
    case RF_DTYPE_F8_E4M3:
    case RF_DTYPE_F8_E8M0:
    case RF_DTYPE_F8_E4M3FNUZ:
    case RF_DTYPE_F8_E5M2FNUZ:
    case RF_DTYPE_F6_E2M3:
    case RF_DTYPE_F6_E3M2:
    case RF_DTYPE_F4: return 0.0;
    }
    return 0.0;
}

typedef struct compare_job {
    const rf_model *src, *out;
    const rf_compare_options *opts;
    rf_compare_entry *entries;
    size_t n;
    char **keys_src, **keys_out; /* canonical names (GGUF spelling, else the name) */
    bool *matched;               /* per source tensor */
    float *a, *b;                /* value buffers, kept here so that a SIGBUS abandon leaks none */
    uint64_t cap;
} compare_job;

static char *canonical(const char *name)
{
    char buf[512];
    return strdup(rf_name_to_gguf(name, buf, sizeof buf) ? buf : name);
}

static bool same_shape(const rf_tensor *x, const rf_tensor *y)
{
    return x->ndim == y->ndim &&
           memcmp(x->shape, y->shape, sizeof(uint64_t) * (size_t)(x->ndim > 0 ? x->ndim : 0)) == 0;
}

static void shape_text(const rf_tensor *t, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%llu", d ? ", " : "",
                                 (unsigned long long)t->shape[d]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

/* Drops the mapped pages of [p, p + n) when they lie in one of m's files (pages.h): memory
 * holds the pieces being compared, not whole tensors. */
static void release_bytes(const rf_model *m, const uint8_t *p, uint64_t n)
{
    for (size_t k = 0; k < rf_model_n_files(m); k++)
        if (rfi_file_release_range(rf_model_file(m, k), p, n))
            return;
}

/* Compares output tensor o with source tensor s into e. */
static rf_status compare_pair(compare_job *j, const rf_tensor *s, const rf_tensor *o,
                              rf_compare_entry *e, rf_error *err)
{
    e->src_dtype = s->dtype;
    e->dtype = o->dtype;
    char sa[64], sb[64];
    uint64_t n = 0, n_out = 0;
    if (rf_shape_elements(s->shape, s->ndim, &n, NULL) != RF_OK ||
        rf_shape_elements(o->shape, o->ndim, &n_out, NULL) != RF_OK || n != n_out ||
        !same_shape(s, o)) {
        shape_text(s, sa, sizeof sa);
        shape_text(o, sb, sizeof sb);
        e->kind = RF_COMPARE_VIOLATION;
        snprintf(e->detail, sizeof e->detail, "shape %s in the source, %s in the output", sa, sb);
        return RF_OK;
    }
    e->n_values = n;
    if (s->dtype == o->dtype) {
        bool same = s->nbytes == o->nbytes;
        const uint64_t piece = (uint64_t)64 << 20;
        for (uint64_t at = 0; same && at < s->nbytes; at += piece) {
            uint64_t k = s->nbytes - at < piece ? s->nbytes - at : piece;
            same = memcmp(s->data + at, o->data + at, (size_t)k) == 0;
            release_bytes(j->src, s->data + at, k);
            release_bytes(j->out, o->data + at, k);
        }
        if (same) {
            e->kind = RF_COMPARE_IDENTICAL;
            return RF_OK;
        }
        uint64_t at = 0;
        while (at < s->nbytes && at < o->nbytes && s->data[at] == o->data[at])
            at++;
        e->kind = RF_COMPARE_VIOLATION;
        snprintf(e->detail, sizeof e->detail,
                 "%s kept, but the bytes differ (first at byte %llu of %llu)",
                 rf_dtype_name(s->dtype), (unsigned long long)at, (unsigned long long)s->nbytes);
        return RF_OK;
    }
    if (!rf_can_dequantize(s->dtype) || !rf_can_dequantize(o->dtype)) {
        e->kind = RF_COMPARE_VIOLATION;
        snprintf(e->detail, sizeof e->detail, "%s -> %s: values cannot be compared",
                 rf_dtype_name(s->dtype), rf_dtype_name(o->dtype));
        return RF_OK;
    }
    /* both sides stream through the same chunks (a multiple of both blocks) */
    uint64_t chunk = rfi_chunk_elems(s, n), chunk_o = rfi_chunk_elems(o, n);
    if (chunk_o != chunk)
        chunk = chunk_o == n || chunk == n ? n : (chunk < chunk_o ? chunk : chunk_o);
    if (chunk > j->cap) {
        if (chunk > SIZE_MAX / sizeof(float))
            return rf_error_set(err, RF_ERR_OVERFLOW, "tensor %s: too many values", o->name);
        float *a = realloc(j->a, (size_t)chunk * sizeof *a);
        if (a)
            j->a = a;
        float *b = realloc(j->b, (size_t)chunk * sizeof *b);
        if (b)
            j->b = b;
        if (!a || !b)
            return rf_error_set(err, RF_ERR_NOMEM, "tensor %s: out of memory for %llu values",
                                o->name, (unsigned long long)chunk);
        j->cap = chunk;
    }
    double sum_d2 = 0, sum_s2 = 0, max_abs = 0;
    uint64_t n_diff = 0, bad = 0, first = 0;
    for (uint64_t at = 0; at < n; at += chunk) {
        uint64_t k = n - at < chunk ? n - at : chunk;
        rf_status st = rf_tensor_dequantize_range(s, at, k, j->a, err);
        if (st == RF_OK)
            st = rf_tensor_dequantize_range(o, at, k, j->b, err);
        if (st != RF_OK)
            return st;
        uint64_t off, len;
        rfi_value_bytes(s, at, k, n, &off, &len);
        release_bytes(j->src, s->data + off, len);
        rfi_value_bytes(o, at, k, n, &off, &len);
        release_bytes(j->out, o->data + off, len);
        const uint32_t *ba = (const void *)j->a, *bb = (const void *)j->b;
        for (uint64_t i = 0; i < k; i++) {
            if (ba[i] == bb[i]) {
                if (isfinite(j->a[i]))
                    sum_s2 += (double)j->a[i] * j->a[i];
                continue;
            }
            if (n_diff++ == 0)
                first = at + i;
            if (!isfinite(j->a[i]) || !isfinite(j->b[i])) {
                bad++;
                continue;
            }
            double d = (double)j->b[i] - (double)j->a[i];
            sum_d2 += d * d;
            sum_s2 += (double)j->a[i] * j->a[i];
            if (fabs(d) > max_abs)
                max_abs = fabs(d);
        }
    }
    e->max_abs = max_abs;
    if (n_diff == 0) {
        e->kind = RF_COMPARE_EXACT;
        return RF_OK;
    }
    double rms = n ? sqrt(sum_s2 / (double)n) : 0, rmse = n ? sqrt(sum_d2 / (double)n) : 0;
    e->rel_rmse = rms > 0 ? rmse / rms : INFINITY;
    e->bound = rf_compare_bound(o->dtype);
    if (bad == 0 && e->bound > 0 && e->rel_rmse <= e->bound) {
        e->kind = RF_COMPARE_BOUNDED;
        return RF_OK;
    }
    e->kind = RF_COMPARE_VIOLATION;
    if (bad > 0)
        snprintf(e->detail, sizeof e->detail,
                 "%llu value(s) NaN or infinite on one side only (first at index %llu)",
                 (unsigned long long)bad, (unsigned long long)first);
    else if (e->bound > 0)
        snprintf(e->detail, sizeof e->detail,
                 "%s -> %s: relative RMSE %.4g exceeds the bound %.4g (max |diff| %.4g)",
                 rf_dtype_name(s->dtype), rf_dtype_name(o->dtype), e->rel_rmse, e->bound, max_abs);
    else
        snprintf(e->detail, sizeof e->detail,
                 "%s -> %s: %llu of %llu values differ (first at index %llu), the type "
                 "should keep them exactly",
                 rf_dtype_name(s->dtype), rf_dtype_name(o->dtype), (unsigned long long)n_diff,
                 (unsigned long long)n, (unsigned long long)first);
    return RF_OK;
}

static long find_key(char *const *keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return (long)i;
    return -1;
}

static rf_status compare_all(void *ctx, rf_error *err);

static rf_status compare_out(void *ctx, rf_error *err)
{
    compare_job *j = ctx;
    return rf_model_mapped_call(j->out, compare_all, j, err);
}

static rf_status compare_all(void *ctx, rf_error *err)
{
    compare_job *j = ctx;
    const size_t n_src = rf_model_n_tensors(j->src), n_out = rf_model_n_tensors(j->out);
    const long embd = find_key(j->keys_src, n_src, "token_embd.weight");
    rf_status st = RF_OK;
    for (size_t i = 0; st == RF_OK && i < n_out; i++) {
        const rf_tensor *o = rf_model_tensor(j->out, i);
        rf_compare_entry *e = &j->entries[j->n++];
        e->name = o->name;
        e->dtype = o->dtype;
        long s = find_key(j->keys_src, n_src, j->keys_out[i]);
        if (s < 0 && strcmp(j->keys_out[i], "output.weight") == 0)
            s = embd; /* a tied head the output stores (APR keeps a copy) */
        if (s < 0) {
            e->kind = RF_COMPARE_VIOLATION;
            snprintf(e->detail, sizeof e->detail, "no tensor of the source corresponds");
            continue;
        }
        j->matched[s] = true;
        const rf_tensor *t = rf_model_tensor(j->src, (size_t)s);
        e->source_name = t->name;
        st = compare_pair(j, t, o, e, err);
    }
    /* source tensors the output does not hold */
    const long out_embd = find_key(j->keys_out, n_out, "token_embd.weight");
    for (size_t s = 0; st == RF_OK && s < n_src; s++) {
        if (j->matched[s])
            continue;
        const rf_tensor *t = rf_model_tensor(j->src, s);
        if (strcmp(j->keys_src[s], "output.weight") == 0 && out_embd >= 0) {
            /* a tied head left out (GGUF, SafeTensors): the embedding must carry its values */
            rf_compare_entry probe = {0};
            st = compare_pair(j, t, rf_model_tensor(j->out, (size_t)out_embd), &probe, err);
            if (st == RF_OK && probe.kind != RF_COMPARE_VIOLATION) {
                rf_compare_entry *e = &j->entries[j->n++];
                *e = probe;
                e->name = NULL;
                e->source_name = t->name;
                e->kind = RF_COMPARE_OMITTED;
                snprintf(e->detail, sizeof e->detail, "tied head: the output's %s holds it",
                         rf_model_tensor(j->out, (size_t)out_embd)->name);
                continue;
            }
        }
        if (j->opts->subset)
            continue;
        rf_compare_entry *e = &j->entries[j->n++];
        e->source_name = t->name;
        e->src_dtype = t->dtype;
        e->kind = RF_COMPARE_VIOLATION;
        snprintf(e->detail, sizeof e->detail, "missing from the output");
    }
    return st;
}

void rf_compare_report_free(rf_compare_report *report)
{
    if (report == NULL)
        return;
    free((void *)report->entries);
    free(report);
}

rf_status rf_convert_compare(const rf_model *src, const rf_model *out,
                             const rf_compare_options *opts, rf_compare_report **report,
                             rf_error *err)
{
    static const rf_compare_options defaults = {0};
    *report = NULL;
    if (src == NULL || out == NULL)
        return rf_error_set(err, RF_ERR_ARGUMENT, "rf_convert_compare: no model");
    compare_job j = {.src = src, .out = out, .opts = opts ? opts : &defaults};
    const size_t n_src = rf_model_n_tensors(src), n_out = rf_model_n_tensors(out);
    rf_compare_report *r = calloc(1, sizeof *r);
    j.entries = calloc(n_src + n_out + 1, sizeof *j.entries);
    j.keys_src = calloc(n_src + 1, sizeof *j.keys_src);
    j.keys_out = calloc(n_out + 1, sizeof *j.keys_out);
    j.matched = calloc(n_src + 1, sizeof *j.matched);
    rf_status st = r && j.entries && j.keys_src && j.keys_out && j.matched
                       ? RF_OK
                       : rf_error_set(err, RF_ERR_NOMEM, "out of memory comparing tensors");
    for (size_t i = 0; st == RF_OK && i < n_src; i++)
        if (!(j.keys_src[i] = canonical(rf_model_tensor(src, i)->name)))
            st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == RF_OK && i < n_out; i++)
        if (!(j.keys_out[i] = canonical(rf_model_tensor(out, i)->name)))
            st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    if (st == RF_OK)
        st = rf_model_mapped_call(src, compare_out, &j, err);
    for (size_t i = 0; j.keys_src && i < n_src; i++)
        free(j.keys_src[i]);
    for (size_t i = 0; j.keys_out && i < n_out; i++)
        free(j.keys_out[i]);
    free(j.keys_src);
    free(j.keys_out);
    free(j.matched);
    free(j.a);
    free(j.b);
    if (st != RF_OK) {
        free(j.entries);
        free(r);
        return st;
    }
    r->entries = j.entries;
    r->n_entries = j.n;
    double worst = -1;
    for (size_t i = 0; i < j.n; i++) {
        const rf_compare_entry *e = &j.entries[i];
        r->counts[e->kind]++;
        double score = e->bound > 0 ? e->rel_rmse / e->bound : e->rel_rmse;
        if (e->kind == RF_COMPARE_VIOLATION)
            score = INFINITY;
        if (score > worst) {
            worst = score;
            r->worst = i;
        }
    }
    *report = r;
    return RF_OK;
}
