/* rf_fingerprint_check: a model's fingerprint against a reference fingerprint, tensors paired by
 * canonical name. Rules (docs/fingerprint.md, "Checking"): stored bytes equal (same dtype, raw
 * digest) or values equal (canonical digest) pass; when the checked dtype holds the reference's
 * values exactly (F32/F64, or the same dtype) the digests must match; any other (lossy)
 * conversion passes when every compared statistic is within tolerance_sigma reference standard
 * deviations and the NaN/Inf counts are equal. */
#include "fingerprint_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosetta/dtype.h"

#define DEFAULT_SIGMA 0.25

struct rf_check_report {
    rf_check_deviation *devs;
    size_t n_devs, cap_devs;
    rf_check_tensor *tensors;
    size_t n_tensors, cap_tensors;
    bool nomem;
};

const char *rf_check_verdict_name(rf_check_verdict v)
{
    switch (v) {
    case RF_CHECK_RAW: return "raw";
    case RF_CHECK_CANONICAL: return "canonical";
    case RF_CHECK_STATISTICS: return "statistics";
    case RF_CHECK_DEVIATES: return "deviates";
    case RF_CHECK_MISSING: return "missing";
    case RF_CHECK_EXTRA: return "extra";
    }
    return "?";
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static void deviation(rf_check_report *r, const char *tensor, const char *field, char *expected,
                      char *found, char *detail)
{
    if (r->n_devs == r->cap_devs) {
        size_t cap = r->cap_devs ? 2 * r->cap_devs : 16;
        rf_check_deviation *d = realloc(r->devs, cap * sizeof *d);
        if (!d) {
            r->nomem = true;
            free(expected);
            free(found);
            free(detail);
            return;
        }
        r->devs = d;
        r->cap_devs = cap;
    }
    rf_check_deviation *d = &r->devs[r->n_devs++];
    d->tensor = tensor ? strdup(tensor) : NULL;
    d->field = strdup(field);
    d->expected = expected;
    d->found = found;
    d->detail = detail;
    /* The report is dropped as a whole when any of them is missing (rf_fingerprint_check). */
    if (!d->expected || !d->found || !d->field || (tensor && !d->tensor) || !d->detail)
        r->nomem = true;
}

static void verdict(rf_check_report *r, const char *name, const char *canonical, rf_check_verdict v)
{
    if (r->n_tensors == r->cap_tensors) {
        size_t cap = r->cap_tensors ? 2 * r->cap_tensors : 64;
        rf_check_tensor *t = realloc(r->tensors, cap * sizeof *t);
        if (!t) {
            r->nomem = true;
            return;
        }
        r->tensors = t;
        r->cap_tensors = cap;
    }
    r->tensors[r->n_tensors++] = (rf_check_tensor){strdup(name), strdup(canonical), v};
}

static char *hex(uint64_t v)
{
    char h[17];
    rfi_fp_hex64(v, h);
    return strdup(h);
}

static char *shape_text(const rf_tensor_fingerprint *t)
{
    char buf[256];
    size_t used = (size_t)snprintf(buf, sizeof buf, "[");
    for (int d = 0; d < t->ndim && used < sizeof buf; d++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%" PRIu64, d ? ", " : "",
                                 t->shape[d]);
    if (used < sizeof buf)
        snprintf(buf + used, sizeof buf - used, "]");
    return strdup(buf);
}

static bool same_shape(const rf_tensor_fingerprint *a, const rf_tensor_fingerprint *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

/* Whether a tensor stored as dtype `to` keeps every canonical value of a `from` tensor: F32 and
 * F64 hold any canonical (F32) value; otherwise only the same dtype does. */
static bool holds_exactly(const char *from, const char *to, bool allow_requantized)
{
    rf_dtype dt;
    if (strcmp(to, "F32") == 0 || strcmp(to, "F64") == 0)
        return true;
    if (strcmp(from, to) != 0)
        return false;
    if (allow_requantized && rf_dtype_from_name(to, &dt)) {
        const rf_dtype_info *info = rf_dtype_get(dt);
        if (info && info->kind == RF_KIND_QUANT)
            return false;
    }
    return true;
}

static char *num(double v) { return isnan(v) ? strdup("null") : fmt("%.9g", v); }

/* The statistics of a lossy conversion: within k reference standard deviations. */
static void compare_stats(rf_check_report *r, const rf_tensor_fingerprint *ref,
                          const rf_tensor_fingerprint *t, double k)
{
    const rf_value_stats *a = &ref->stats, *b = &t->stats;
    if (a->count != b->count)
        deviation(r, t->name, "stats.count", fmt("%" PRIu64, a->count), fmt("%" PRIu64, b->count),
                  strdup(""));
    if (a->nan != b->nan)
        deviation(r, t->name, "stats.nan", fmt("%" PRIu64, a->nan), fmt("%" PRIu64, b->nan),
                  strdup(""));
    if (a->inf != b->inf)
        deviation(r, t->name, "stats.inf", fmt("%" PRIu64, a->inf), fmt("%" PRIu64, b->inf),
                  strdup(""));
    if (a->finite == 0 || b->finite == 0)
        return;
    /* The unit: the reference's std, or for a constant tensor its magnitude. */
    double sigma = a->std;
    if (!(sigma > 0))
        sigma = fmax(fabs(a->mean), 1e-30);
    typedef struct field {
        const char *field;
        double ref, got;
    } field;
    field f[6 + RF_N_PERCENTILES] = {
        {"stats.mean", a->mean, b->mean},
        {"stats.std", a->std, b->std},
        {"stats.rms", a->l2 / sqrt((double)a->finite), b->l2 / sqrt((double)b->finite)},
        {"stats.min", a->min, b->min},
        {"stats.max", a->max, b->max},
        {NULL, 0, 0},
    };
    static const char *const pnames[RF_N_PERCENTILES] = {
        "stats.p1", "stats.p5", "stats.p25", "stats.p50", "stats.p75", "stats.p95", "stats.p99"};
    for (int i = 0; i < RF_N_PERCENTILES; i++)
        f[5 + i] = (field){pnames[i], a->percentiles[i], b->percentiles[i]};
    for (int i = 0; i < 5 + RF_N_PERCENTILES; i++) {
        double off = fabs(f[i].got - f[i].ref) / sigma;
        if (!(off <= k))
            deviation(r, t->name, f[i].field, num(f[i].ref), num(f[i].got),
                      fmt("off by %.3g sigma (tolerance %.3g; sigma %.6g)", off, k, sigma));
    }
}

/* A tied lm_head: a copy of the token embedding (an APR written from a tied model has one, a
 * GGUF or SafeTensors file of the same model has none). */
static bool tied_copy(const rf_fingerprint *fp, const rf_tensor_fingerprint *t)
{
    if (strcmp(t->canonical, "lm_head.weight") != 0 || !t->has_values)
        return false;
    const rf_tensor_fingerprint *e = rf_fingerprint_find(fp, "model.embed_tokens.weight");
    return e && e->has_values && e->canonical_digest == t->canonical_digest && same_shape(e, t);
}

static void check_config(rf_check_report *r, const rf_fingerprint *ref, const rf_fingerprint *fp)
{
    const rf_model_config *a = &ref->config, *b = &fp->config;
    if (a->architecture && b->architecture && strcmp(a->architecture, b->architecture) != 0)
        deviation(r, NULL, "config.architecture", strdup(a->architecture), strdup(b->architecture),
                  strdup(""));
    struct {
        const char *field;
        uint64_t x, y;
    } u[] = {{"config.hidden_size", a->hidden_size, b->hidden_size},
             {"config.n_layers", a->n_layers, b->n_layers},
             {"config.n_heads", a->n_heads, b->n_heads},
             {"config.n_kv_heads", a->n_kv_heads, b->n_kv_heads},
             {"config.intermediate_size", a->intermediate_size, b->intermediate_size},
             {"config.vocab_size", a->vocab_size, b->vocab_size}};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (u[i].x && u[i].y && u[i].x != u[i].y)
            deviation(r, NULL, u[i].field, fmt("%" PRIu64, u[i].x), fmt("%" PRIu64, u[i].y),
                      strdup(""));
}

rf_check_report *rf_fingerprint_check(const rf_fingerprint *ref, const rf_fingerprint *fp,
                                      const rf_fingerprint_check_options *opts, rf_error *err)
{
    rf_check_report *r = calloc(1, sizeof *r);
    if (!r || !ref || !fp) {
        free(r);
        rf_error_set(err, r ? RF_ERR_ARGUMENT : RF_ERR_NOMEM, "cannot check fingerprints");
        return NULL;
    }
    double k = opts && opts->tolerance_sigma > 0 ? opts->tolerance_sigma : DEFAULT_SIGMA;
    bool allow_requantized = opts && opts->allow_requantized;
    check_config(r, ref, fp);

    for (size_t i = 0; i < ref->n_tensors; i++) {
        const rf_tensor_fingerprint *a = &ref->tensors[ref->by_canonical[i]];
        const rf_tensor_fingerprint *b = rf_fingerprint_find(fp, a->canonical);
        if (!b) {
            if (tied_copy(ref, a)) {
                verdict(r, a->name, a->canonical, RF_CHECK_CANONICAL);
                continue;
            }
            deviation(r, a->name, "missing", strdup("present"), strdup("absent"), strdup(""));
            verdict(r, a->name, a->canonical, RF_CHECK_MISSING);
            continue;
        }
        size_t before = r->n_devs;
        rf_check_verdict v = RF_CHECK_DEVIATES;
        if (!same_shape(a, b)) {
            deviation(r, b->name, "shape", shape_text(a), shape_text(b), strdup(""));
        } else if (strcmp(a->dtype, b->dtype) == 0 && a->nbytes == b->nbytes &&
                   a->raw_digest == b->raw_digest) {
            v = RF_CHECK_RAW;
        } else if (a->has_values && b->has_values && a->canonical_digest == b->canonical_digest) {
            v = RF_CHECK_CANONICAL;
        } else if (!a->has_values || !b->has_values) {
            deviation(r, b->name, "values",
                      a->has_values ? strdup("readable") : strdup("unreadable"),
                      b->has_values ? strdup("readable") : strdup("unreadable"),
                      strdup(b->values_error   ? b->values_error
                             : a->values_error ? a->values_error
                                               : ""));
        } else if (holds_exactly(a->dtype, b->dtype, allow_requantized)) {
            if (strcmp(a->dtype, b->dtype) == 0)
                deviation(r, b->name, "raw_xxh3", hex(a->raw_digest), hex(b->raw_digest),
                          fmt("same dtype %s, other bytes", a->dtype));
            deviation(r, b->name, "canonical_xxh3", hex(a->canonical_digest),
                      hex(b->canonical_digest),
                      fmt("%s -> %s keeps every value, but the values differ", a->dtype, b->dtype));
        } else {
            compare_stats(r, a, b, k);
            if (r->n_devs == before)
                v = RF_CHECK_STATISTICS;
        }
        verdict(r, b->name, b->canonical, v);
    }
    for (size_t i = 0; i < fp->n_tensors; i++) {
        const rf_tensor_fingerprint *b = &fp->tensors[fp->by_canonical[i]];
        if (rf_fingerprint_find(ref, b->canonical))
            continue;
        if (tied_copy(fp, b)) {
            verdict(r, b->name, b->canonical, RF_CHECK_CANONICAL);
            continue;
        }
        deviation(r, b->name, "extra", strdup("absent"), strdup("present"), strdup(""));
        verdict(r, b->name, b->canonical, RF_CHECK_EXTRA);
    }
    if (r->nomem) {
        rf_check_report_free(r);
        rf_error_set(err, RF_ERR_NOMEM, "out of memory while checking a fingerprint");
        return NULL;
    }
    return r;
}

void rf_check_report_free(rf_check_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_devs; i++) {
        free((char *)r->devs[i].tensor);
        free((char *)r->devs[i].field);
        free((char *)r->devs[i].expected);
        free((char *)r->devs[i].found);
        free((char *)r->devs[i].detail);
    }
    for (size_t i = 0; i < r->n_tensors; i++) {
        free((char *)r->tensors[i].name);
        free((char *)r->tensors[i].canonical);
    }
    free(r->devs);
    free(r->tensors);
    free(r);
}

bool rf_check_report_passed(const rf_check_report *r) { return r && r->n_devs == 0; }
size_t rf_check_report_n_deviations(const rf_check_report *r) { return r ? r->n_devs : 0; }
const rf_check_deviation *rf_check_report_deviation(const rf_check_report *r, size_t i)
{
    return r && i < r->n_devs ? &r->devs[i] : NULL;
}
size_t rf_check_report_n_tensors(const rf_check_report *r) { return r ? r->n_tensors : 0; }
const rf_check_tensor *rf_check_report_tensor(const rf_check_report *r, size_t i)
{
    return r && i < r->n_tensors ? &r->tensors[i] : NULL;
}
