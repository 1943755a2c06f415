/* The weights behind a divergence (docs/verifier.md, "The first divergence"): each weight that
 * feeds the divergent stage compared between the two models with libformat's value-by-value
 * comparison (rosetta/tensor_diff.h: tensors paired by canonical name, per-dtype default
 * tolerances), and the config values a stage depends on (rope_theta, rope_type, rms_norm_eps)
 * compared directly.
 * Not for: comparing activations (compare.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rosetta/verify.h"

static const char *rope_name(rf_rope_type t)
{
    switch (t) {
    case RF_ROPE_NORM: return "norm";
    case RF_ROPE_NEOX: return "neox";
    case RF_ROPE_UNKNOWN: return "unknown";
    }
    return "unknown";
}

/* A config value the stage depends on: equal or not, with both values in detail. */
static bool config_item(const rf_model *a, const rf_model *b, const char *key, ri_weight_diff *d)
{
    const rf_model_config *ca = rf_model_config_get(a), *cb = rf_model_config_get(b);
    if (strcmp(key, "rope_theta") == 0) {
        d->ok = ca->rope_theta == cb->rope_theta;
        snprintf(d->detail, sizeof d->detail, "A %.9g, B %.9g", ca->rope_theta, cb->rope_theta);
    } else if (strcmp(key, "rope_type") == 0) {
        d->ok = ca->rope_type == cb->rope_type;
        snprintf(d->detail, sizeof d->detail, "A %s, B %s", rope_name(ca->rope_type),
                 rope_name(cb->rope_type));
    } else if (strcmp(key, "rms_norm_eps") == 0) {
        d->ok = ca->rms_norm_eps == cb->rms_norm_eps;
        snprintf(d->detail, sizeof d->detail, "A %.9g, B %.9g", ca->rms_norm_eps, cb->rms_norm_eps);
    } else {
        return false;
    }
    d->is_tensor = false;
    d->found = true;
    d->changed = !d->ok;
    snprintf(d->status, sizeof d->status, "%s", d->ok ? "equal" : "differs");
    return true;
}

/* One tensor, named as either model spells it: the pair rf_models_diff makes for it. */
static rf_status tensor_item(const rf_model *a, const rf_model *b, ri_weight_diff *d, rf_error *err)
{
    rf_diff_options o = {.tolerance = -1, .filter = d->name, .show = 0};
    rf_diff_report *rep = NULL;
    rf_status st = rf_models_diff(a, b, &o, &rep, err);
    if (st != RF_OK)
        return st;
    d->is_tensor = true;
    d->found = false;
    snprintf(d->status, sizeof d->status, "not found");
    for (size_t i = 0; i < rf_diff_report_count(rep); i++) {
        const rf_tensor_diff *t = rf_diff_report_get(rep, i);
        bool named = (t->name_a && strcmp(t->name_a, d->name) == 0) ||
                     (t->name_b && strcmp(t->name_b, d->name) == 0) ||
                     strcmp(t->canonical, d->name) == 0;
        if (!named)
            continue;
        d->found = t->name_a && t->name_b;
        d->cls = t->cls;
        d->ok = rf_diff_class_ok(t->cls);
        d->changed = t->cls != RF_DIFF_IDENTICAL && t->cls != RF_DIFF_SAME_VALUES;
        d->max_abs = t->max_abs;
        d->tolerance = t->tolerance;
        snprintf(d->status, sizeof d->status, "%s", rf_diff_class_name(t->cls));
        if (t->error)
            snprintf(d->detail, sizeof d->detail, "%s", t->error);
        else if (t->name_a && t->name_b)
            snprintf(d->detail, sizeof d->detail, "%s %s, max |diff| %.3g (tolerance %.3g)",
                     rf_dtype_name(t->dtype_a), rf_dtype_name(t->dtype_b), t->max_abs,
                     t->tolerance);
        break;
    }
    rf_diff_report_free(rep);
    return RF_OK;
}

rf_status ri_weights_diff(const rf_model *a, const rf_model *b, const char *names,
                          ri_weight_diff *out, size_t cap, size_t *n, rf_error *err)
{
    *n = 0;
    if (!a || !b || !names)
        return rf_error_set(err, RF_ERR_ARGUMENT, "ri_weights_diff: no model or no names");
    for (const char *p = names; *p && *n < cap;) {
        size_t len = strcspn(p, ",");
        ri_weight_diff *d = &out[*n];
        *d = (ri_weight_diff){.cls = RF_DIFF_CRITICAL, .max_abs = NAN, .tolerance = NAN};
        if (len == 0 || len >= sizeof d->name) {
            p += len + (p[len] == ',');
            continue;
        }
        memcpy(d->name, p, len);
        d->name[len] = '\0';
        p += len + (p[len] == ',');
        if (!config_item(a, b, d->name, d)) {
            rf_status st = tensor_item(a, b, d, err);
            if (st != RF_OK)
                return st;
        }
        (*n)++;
    }
    return RF_OK;
}
