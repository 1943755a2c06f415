/* rf_models_diff: tensors of two models paired by canonical name and compared value by value,
 * one pair at a time, TV_CHUNK values per step (docs/diff-tensors.md). A pair whose 2-D shapes
 * are swapped is compared against the transpose in tiles: a band of A's rows against the same
 * band of B's columns, so memory stays bounded (TILE_VALUES floats) whatever the shapes. */
#include "rosetta/tensor_diff.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "canonical_name.h"
#include "tensor_values.h"

/* Floats of B held for one band of a transposed comparison (16 MiB). */
#define TILE_VALUES (UINT64_C(1) << 22)

struct rf_diff_report {
    rf_tensor_diff *items;
    size_t n, cap;
};

const char *rf_diff_class_name(rf_diff_class c)
{
    switch (c) {
    case RF_DIFF_IDENTICAL: return "identical";
    case RF_DIFF_SAME_VALUES: return "same-values";
    case RF_DIFF_WITHIN_TOLERANCE: return "within-tolerance";
    case RF_DIFF_SMALL: return "small";
    case RF_DIFF_MEDIUM: return "medium";
    case RF_DIFF_LARGE: return "large";
    case RF_DIFF_TRANSPOSED: return "transposed";
    case RF_DIFF_CRITICAL: return "critical";
    case RF_DIFF_ONLY_IN_A: return "only-in-a";
    case RF_DIFF_ONLY_IN_B: return "only-in-b";
    }
    return "?";
}

bool rf_diff_class_ok(rf_diff_class c)
{
    return c == RF_DIFF_IDENTICAL || c == RF_DIFF_SAME_VALUES || c == RF_DIFF_WITHIN_TOLERANCE;
}

double rf_diff_default_tolerance(rf_dtype dtype)
{
    switch (dtype) {
    case RF_DTYPE_F32:
    case RF_DTYPE_F64:
    case RF_DTYPE_I8:
    case RF_DTYPE_I16:
    case RF_DTYPE_I32:
    case RF_DTYPE_I64:
    case RF_DTYPE_U8:
    case RF_DTYPE_U16:
    case RF_DTYPE_U32:
    case RF_DTYPE_U64:
    case RF_DTYPE_BOOL: return 0;
    case RF_DTYPE_F16: return 1.0 / 2048;
    case RF_DTYPE_BF16: return 1.0 / 256;
    case RF_DTYPE_Q8_0:
    case RF_DTYPE_Q8_1:
    case RF_DTYPE_Q8_K:
    case RF_DTYPE_APR_Q8:
    case RF_DTYPE_F8_E4M3:
    case RF_DTYPE_F8_E4M3FNUZ: return 1.0 / 64;
    case RF_DTYPE_Q5_0:
    case RF_DTYPE_Q5_1:
    case RF_DTYPE_Q5_K:
    case RF_DTYPE_Q6_K:
    case RF_DTYPE_F8_E5M2:
    case RF_DTYPE_F8_E5M2FNUZ: return 1.0 / 16;
    case RF_DTYPE_Q4_0:
    case RF_DTYPE_Q4_1:
    case RF_DTYPE_Q4_K:
    case RF_DTYPE_IQ4_NL:
    case RF_DTYPE_IQ4_XS:
    case RF_DTYPE_APR_Q4:
    case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4:
    case RF_DTYPE_F4: return 1.0 / 8;
    case RF_DTYPE_Q3_K:
    case RF_DTYPE_IQ3_XXS:
    case RF_DTYPE_IQ3_S:
    case RF_DTYPE_F6_E2M3:
    case RF_DTYPE_F6_E3M2: return 1.0 / 4;
    case RF_DTYPE_Q2_K:
    case RF_DTYPE_IQ2_XXS:
    case RF_DTYPE_IQ2_XS:
    case RF_DTYPE_IQ2_S:
    case RF_DTYPE_IQ1_S:
    case RF_DTYPE_IQ1_M:
    case RF_DTYPE_TQ1_0:
    case RF_DTYPE_TQ2_0:
    case RF_DTYPE_Q1_0:
    case RF_DTYPE_Q2_0:
    case RF_DTYPE_F8_E8M0:
    case RF_DTYPE_C64: return 1.0 / 2;
    }
    return 1.0 / 2;
}

/* ---- metrics ------------------------------------------------------------------------------- */

typedef struct metrics {
    uint64_t count, finite, nonfinite, n_diff, first_diff, max_ulp;
    bool any_diff;
    double max_abs, sum_abs, sum_sq, dot, na, nb, max_abs_a;
} metrics;

static inline uint32_t bits_of(float v)
{
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static inline int64_t ordered(uint32_t b)
{
    return (b & 0x80000000u) ? -(int64_t)(b & 0x7fffffffu) : (int64_t)b;
}

/* Pairs (a[k], b[k]) at row-major indices index(k) of A: base + k, or given by idx. */
static void accumulate(metrics *m, const float *a, const float *b, size_t n, uint64_t base,
                       const uint64_t *idx)
{
    for (size_t k = 0; k < n; k++) {
        float x = a[k], y = b[k];
        uint32_t bx = bits_of(x), by = bits_of(y);
        m->count++;
        bool fx = isfinite(x), fy = isfinite(y);
        if (fx && fabs((double)x) > m->max_abs_a)
            m->max_abs_a = fabs((double)x);
        bool differ = bx != by && !(isnan(x) && isnan(y));
        if (differ) {
            if (!m->any_diff)
                m->first_diff = idx ? idx[k] : base + k;
            m->any_diff = true;
            m->n_diff++;
        }
        if (!fx || !fy) {
            m->nonfinite += differ;
            continue;
        }
        double dx = x, dy = y, d = dx - dy, ad = fabs(d);
        m->finite++;
        m->max_abs = ad > m->max_abs ? ad : m->max_abs;
        m->sum_abs += ad;
        m->sum_sq += d * d;
        m->dot += dx * dy;
        m->na += dx * dx;
        m->nb += dy * dy;
        int64_t u = ordered(bx) - ordered(by);
        uint64_t ulp = (uint64_t)(u < 0 ? -u : u);
        m->max_ulp = ulp > m->max_ulp ? ulp : m->max_ulp;
    }
}

/* ---- reading both sides -------------------------------------------------------------------- */

typedef struct diff_ctx {
    const rf_model *a, *b;
    char **canon_a, **canon_b; /* canonical names, by tensor index */
    const rf_diff_options *opts;
    rf_diff_report *report;
    tv_reader *ra, *rb;
    float *va, *vb, *tile;
    uint64_t *idx;
    bool nomem;
} diff_ctx;

static rf_status compare_straight(diff_ctx *c, metrics *m, rf_error *err)
{
    for (uint64_t first = 0; first < c->ra->count; first += TV_CHUNK) {
        uint64_t n = c->ra->count - first < TV_CHUNK ? c->ra->count - first : TV_CHUNK;
        rf_status st = rfi_tv_read(c->ra, first, n, c->va, err);
        if (st == RF_OK)
            st = rfi_tv_read(c->rb, first, n, c->vb, err);
        if (st != RF_OK)
            return st;
        accumulate(m, c->va, c->vb, (size_t)n, first, NULL);
    }
    return RF_OK;
}

/* A is [rows, cols], B is [cols, rows]: A[i][j] against B[j][i]. */
static rf_status compare_transposed(diff_ctx *c, uint64_t rows, uint64_t cols, metrics *m,
                                    rf_error *err)
{
    if (cols > TILE_VALUES)
        return rf_error_set(err, RF_ERR_LIMIT,
                            "rows of %llu values are too long to compare transposed (at most %llu)",
                            (unsigned long long)cols, (unsigned long long)TILE_VALUES);
    uint64_t band = TILE_VALUES / (cols ? cols : 1);
    band = band < 1 ? 1 : band > rows ? rows : band;
    if (band > TV_CHUNK)
        band = TV_CHUNK;
    for (uint64_t i0 = 0; i0 < rows; i0 += band) {
        uint64_t h = rows - i0 < band ? rows - i0 : band;
        for (uint64_t j = 0; j < cols; j++) { /* B[j][i0 .. i0+h) */
            rf_status st = rfi_tv_read(c->rb, j * rows + i0, h, c->tile + j * h, err);
            if (st != RF_OK)
                return st;
        }
        for (uint64_t i = i0; i < i0 + h; i++) {
            for (uint64_t j0 = 0; j0 < cols; j0 += TV_CHUNK) {
                uint64_t n = cols - j0 < TV_CHUNK ? cols - j0 : TV_CHUNK;
                rf_status st = rfi_tv_read(c->ra, i * cols + j0, n, c->va, err);
                if (st != RF_OK)
                    return st;
                for (uint64_t k = 0; k < n; k++) {
                    c->vb[k] = c->tile[(j0 + k) * h + (i - i0)];
                    c->idx[k] = i * cols + j0 + k;
                }
                accumulate(m, c->va, c->vb, (size_t)n, 0, c->idx);
            }
        }
    }
    return RF_OK;
}

static bool same_shape(const rf_tensor *a, const rf_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

static bool swapped_2d(const rf_tensor *a, const rf_tensor *b)
{
    return a->ndim == 2 && b->ndim == 2 && a->shape[0] == b->shape[1] &&
           a->shape[1] == b->shape[0] && a->shape[0] != a->shape[1];
}

static rf_diff_class class_of(const rf_tensor_diff *d)
{
    if (d->nonfinite > 0)
        return RF_DIFF_CRITICAL;
    if (d->max_abs <= d->tolerance)
        return RF_DIFF_WITHIN_TOLERANCE;
    if (d->max_abs < 0.01)
        return RF_DIFF_SMALL;
    if (d->max_abs < 0.1)
        return RF_DIFF_MEDIUM;
    if (d->max_abs < 1.0)
        return RF_DIFF_LARGE;
    return RF_DIFF_CRITICAL;
}

static void keep_window(diff_ctx *c, rf_tensor_diff *d, rf_error *err)
{
    uint32_t want = c->opts ? c->opts->show : 0;
    if (!want || d->n_diff == 0 || d->cls == RF_DIFF_TRANSPOSED)
        return;
    uint64_t first = d->first_diff > want / 2 ? d->first_diff - want / 2 : 0;
    uint64_t n = c->ra->count - first < want ? c->ra->count - first : want;
    if (n > TV_CHUNK)
        n = TV_CHUNK;
    float *sa = malloc(n * sizeof *sa), *sb = malloc(n * sizeof *sb);
    if (!sa || !sb || rfi_tv_read(c->ra, first, n, sa, err) != RF_OK ||
        rfi_tv_read(c->rb, first, n, sb, err) != RF_OK) {
        free(sa);
        free(sb);
        return;
    }
    d->show_a = sa;
    d->show_b = sb;
    d->n_show = (uint32_t)n;
    d->show_first = first;
}

/* Compares one pair into d. Errors other than RF_ERR_IO become d->error. */
static rf_status compare_pair(diff_ctx *c, const rf_tensor *ta, const rf_tensor *tb,
                              rf_tensor_diff *d, rf_error *err)
{
    rf_error local;
    rf_error_clear(&local);
    rf_status st = rfi_tv_open(c->a, ta, c->ra, &local);
    if (st == RF_OK)
        st = rfi_tv_open(c->b, tb, c->rb, &local);
    if (st == RF_OK && c->ra->count != c->rb->count)
        st = rf_error_set(&local, RF_ERR_FORMAT, "value counts differ");
    bool straight = same_shape(ta, tb), transposed = !straight && swapped_2d(ta, tb);
    if (st != RF_OK || (!straight && !transposed)) {
        d->cls = RF_DIFF_CRITICAL;
        if (st != RF_OK && !(d->error = strdup(local.message)))
            c->nomem = true;
        return RF_OK;
    }
    metrics m;
    memset(&m, 0, sizeof m);
    st = straight ? compare_straight(c, &m, &local)
                  : compare_transposed(c, ta->shape[0], ta->shape[1], &m, &local);
    if (st == RF_ERR_IO) {
        *err = local;
        return st;
    }
    if (st != RF_OK) {
        d->cls = RF_DIFF_CRITICAL;
        if (!(d->error = strdup(local.message)))
            c->nomem = true;
        return RF_OK;
    }
    d->compared = true;
    d->count = m.count;
    d->nonfinite = m.nonfinite;
    d->max_abs = m.max_abs;
    d->mean_abs = m.finite ? m.sum_abs / (double)m.finite : 0;
    d->rmse = m.finite ? sqrt(m.sum_sq / (double)m.finite) : 0;
    d->cosine = m.na == 0 && m.nb == 0   ? 1.0
                : m.na == 0 || m.nb == 0 ? 0.0
                                         : m.dot / (sqrt(m.na) * sqrt(m.nb));
    d->cosine = d->cosine > 1 ? 1 : d->cosine < -1 ? -1 : d->cosine; /* rounding past +-1 */
    d->has_ulp = ta->dtype == tb->dtype;
    d->max_ulp = d->has_ulp ? m.max_ulp : 0;
    d->n_diff = m.n_diff;
    d->first_diff = m.first_diff;
    d->max_abs_a = m.max_abs_a;
    double rel = fmax(rf_diff_default_tolerance(ta->dtype), rf_diff_default_tolerance(tb->dtype));
    d->tolerance = c->opts && c->opts->tolerance >= 0 ? c->opts->tolerance : rel * m.max_abs_a;
    if (transposed) {
        d->cls = class_of(d) == RF_DIFF_WITHIN_TOLERANCE ? RF_DIFF_TRANSPOSED : RF_DIFF_CRITICAL;
        return RF_OK;
    }
    if (m.n_diff == 0)
        d->cls = ta->dtype == tb->dtype && ta->nbytes == tb->nbytes &&
                         memcmp(ta->data, tb->data, (size_t)ta->nbytes) == 0
                     ? RF_DIFF_IDENTICAL
                     : RF_DIFF_SAME_VALUES;
    else
        d->cls = class_of(d);
    keep_window(c, d, &local);
    return RF_OK;
}

static rf_tensor_diff *add_item(diff_ctx *c)
{
    rf_diff_report *r = c->report;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        rf_tensor_diff *items = realloc(r->items, cap * sizeof *items);
        if (!items) {
            c->nomem = true;
            return NULL;
        }
        r->items = items;
        r->cap = cap;
    }
    rf_tensor_diff *d = &r->items[r->n++];
    memset(d, 0, sizeof *d);
    return d;
}

static void describe(rf_tensor_diff *d, const rf_tensor *t, bool side_a)
{
    if (side_a) {
        d->dtype_a = t->dtype;
        d->ndim_a = t->ndim;
        memcpy(d->shape_a, t->shape, sizeof d->shape_a);
    } else {
        d->dtype_b = t->dtype;
        d->ndim_b = t->ndim;
        memcpy(d->shape_b, t->shape, sizeof d->shape_b);
    }
}

static bool selected(const rf_diff_options *o, const char *name, const char *canonical)
{
    return !o || !o->filter || fnmatch(o->filter, name, 0) == 0 ||
           fnmatch(o->filter, canonical, 0) == 0;
}

/* The tensor whose canonical name is canonical, given the canonical names of m's tensors
 * (models have hundreds of tensors, and this runs once per tensor). */
static const rf_tensor *find_canonical(const rf_model *m, char *const *names, const char *canonical)
{
    for (size_t i = 0; i < rf_model_n_tensors(m); i++)
        if (strcmp(names[i], canonical) == 0)
            return rf_model_tensor(m, i);
    return NULL;
}

/* A tied output head: a model whose config does not say its embeddings are untied stores the
 * head as the token embedding (GGUF and SafeTensors leave lm_head out, an APR keeps a copy), so
 * an lm_head on the other side is compared with that embedding. */
static const rf_tensor *tied_partner(const rf_model *m, char *const *names, const char *canonical)
{
    if (strcmp(canonical, "lm_head.weight") != 0 ||
        rf_model_config_get(m)->tie_word_embeddings == 0)
        return NULL;
    return find_canonical(m, names, "model.embed_tokens.weight");
}

static rf_status diff_b_guarded(void *ctx, rf_error *err)
{
    diff_ctx *c = ctx;
    for (size_t i = 0; i < rf_model_n_tensors(c->a) && !c->nomem; i++) {
        const rf_tensor *ta = rf_model_tensor(c->a, i);
        char *canonical = strdup(c->canon_a[i]);
        if (!canonical) {
            c->nomem = true;
            break;
        }
        const rf_tensor *tb = find_canonical(c->b, c->canon_b, canonical);
        if (!tb)
            tb = tied_partner(c->b, c->canon_b, canonical);
        if (!selected(c->opts, ta->name, canonical) &&
            !(tb && selected(c->opts, tb->name, canonical))) {
            free(canonical);
            continue;
        }
        rf_tensor_diff *d = add_item(c);
        if (!d) {
            free(canonical);
            break;
        }
        d->canonical = canonical;
        d->name_a = strdup(ta->name);
        describe(d, ta, true);
        if (!tb) {
            d->cls = RF_DIFF_ONLY_IN_A;
            continue;
        }
        d->name_b = strdup(tb->name);
        describe(d, tb, false);
        rf_status st = compare_pair(c, ta, tb, d, err);
        if (st != RF_OK)
            return st;
    }
    for (size_t i = 0; i < rf_model_n_tensors(c->b) && !c->nomem; i++) {
        const rf_tensor *tb = rf_model_tensor(c->b, i);
        char *canonical = strdup(c->canon_b[i]);
        if (!canonical) {
            c->nomem = true;
            break;
        }
        if (find_canonical(c->a, c->canon_a, canonical) ||
            !selected(c->opts, tb->name, canonical)) {
            free(canonical);
            continue;
        }
        rf_tensor_diff *d = add_item(c);
        if (!d) {
            free(canonical);
            break;
        }
        d->canonical = canonical;
        d->name_b = strdup(tb->name);
        describe(d, tb, false);
        d->cls = RF_DIFF_ONLY_IN_B;
        const rf_tensor *ta = tied_partner(c->a, c->canon_a, canonical);
        if (ta) {
            d->name_a = strdup(ta->name);
            describe(d, ta, true);
            rf_status st = compare_pair(c, ta, tb, d, err);
            if (st != RF_OK)
                return st;
        }
    }
    return RF_OK;
}

static void free_names(const rf_model *m, char **names)
{
    for (size_t i = 0; names && i < rf_model_n_tensors(m); i++)
        free(names[i]);
    free(names);
}

/* The canonical names of m's tensors (reading no tensor data). */
static char **canonical_names(const rf_model *m, bool *nomem)
{
    size_t n = rf_model_n_tensors(m);
    char **names = calloc(n ? n : 1, sizeof *names);
    for (size_t i = 0; names && i < n; i++) {
        if (!(names[i] = rfi_canonical_tensor_name(rf_model_tensor(m, i)->name))) {
            free_names(m, names);
            names = NULL;
        }
    }
    if (!names)
        *nomem = true;
    return names;
}

static rf_status diff_a_guarded(void *ctx, rf_error *err)
{
    diff_ctx *c = ctx;
    return rf_model_mapped_call(c->b, diff_b_guarded, c, err);
}

rf_status rf_models_diff(const rf_model *a, const rf_model *b, const rf_diff_options *opts,
                         rf_diff_report **out, rf_error *err)
{
    *out = NULL;
    if (!a || !b)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL model");
    diff_ctx c;
    memset(&c, 0, sizeof c);
    c.a = a;
    c.b = b;
    c.opts = opts;
    c.report = calloc(1, sizeof *c.report);
    c.ra = malloc(sizeof *c.ra);
    c.rb = malloc(sizeof *c.rb);
    c.va = malloc(TV_CHUNK * sizeof *c.va);
    c.vb = malloc(TV_CHUNK * sizeof *c.vb);
    c.idx = malloc(TV_CHUNK * sizeof *c.idx);
    c.tile = malloc((TILE_VALUES + TV_CHUNK) * sizeof *c.tile);
    c.canon_a = canonical_names(a, &c.nomem);
    c.canon_b = canonical_names(b, &c.nomem);
    rf_status st = RF_OK;
    if (!c.report || !c.ra || !c.rb || !c.va || !c.vb || !c.idx || !c.tile)
        c.nomem = true;
    else if (!c.nomem)
        st = rf_model_mapped_call(a, diff_a_guarded, &c, err);
    if (c.nomem && st == RF_OK)
        st = rf_error_set(err, RF_ERR_NOMEM, "out of memory while comparing tensors");
    free_names(a, c.canon_a);
    free_names(b, c.canon_b);
    free(c.ra);
    free(c.rb);
    free(c.va);
    free(c.vb);
    free(c.idx);
    free(c.tile);
    if (st != RF_OK) {
        rf_diff_report_free(c.report);
        return st;
    }
    *out = c.report;
    return RF_OK;
}

void rf_diff_report_free(rf_diff_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        rf_tensor_diff *d = &r->items[i];
        free((char *)d->name_a);
        free((char *)d->name_b);
        free((char *)d->canonical);
        free((char *)d->error);
        free((float *)d->show_a);
        free((float *)d->show_b);
    }
    free(r->items);
    free(r);
}

size_t rf_diff_report_count(const rf_diff_report *r) { return r ? r->n : 0; }

const rf_tensor_diff *rf_diff_report_get(const rf_diff_report *r, size_t index)
{
    return r && index < r->n ? &r->items[index] : NULL;
}

bool rf_diff_report_ok(const rf_diff_report *r)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (!rf_diff_class_ok(r->items[i].cls))
            return false;
    return r != NULL;
}
