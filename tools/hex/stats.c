/* apr-hex --distribution and --entropy: statistics of a tensor's dequantized values (streamed in
 * chunks through rf_filemap_values) and Shannon entropy of the bytes of each region.
 * Not for: fingerprints or exact whole-model percentiles (apr fingerprint). */
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "rosetta/dtype.h"

const double HEX_QUANTILES[9] = {0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999};

#define CHUNK (UINT64_C(1) << 16)
/* Quantiles are exact (sorting a copy) up to this many values, else read from a fine histogram. */
#define EXACT_LIMIT (UINT64_C(1) << 24)
#define FINE_BINS   65536u

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* numpy's default ("linear"): position h = (n - 1) p between the sorted values. */
static double quantile_sorted(const float *v, uint64_t n, double p)
{
    double h = (double)(n - 1) * p;
    uint64_t lo = (uint64_t)floor(h);
    if (lo + 1 >= n)
        return v[n - 1];
    return (double)v[lo] + (h - (double)lo) * ((double)v[lo + 1] - (double)v[lo]);
}

/* The same position read from histogram counts over [min, max], linear inside the bin. */
static double quantile_hist(const uint64_t *counts, unsigned bins, double min, double max,
                            uint64_t n, double p)
{
    double h = (double)(n - 1) * p, width = (max - min) / bins;
    uint64_t seen = 0;
    for (unsigned b = 0; b < bins; b++) {
        if ((double)(seen + counts[b]) > h) {
            double inside = counts[b] ? (h - (double)seen + 0.5) / (double)counts[b] : 0;
            if (inside > 1)
                inside = 1;
            return min + width * ((double)b + inside);
        }
        seen += counts[b];
    }
    return max;
}

static unsigned bin_of(double v, double min, double max, unsigned bins)
{
    if (!(max > min))
        return 0;
    double x = (v - min) / (max - min) * bins;
    unsigned b = x <= 0 ? 0 : (unsigned)x;
    return b >= bins ? bins - 1 : b;
}

void hex_stats_free(hex_stats *s)
{
    free(s->counts);
    s->counts = NULL;
}

rf_status hex_tensor_stats(const rf_filemap *map, size_t index, unsigned bins, hex_stats *s,
                           rf_error *err)
{
    memset(s, 0, sizeof *s);
    const rf_map_tensor *t = rf_filemap_tensor(map, index);
    uint64_t n = t->rows * t->cols;
    float *chunk = malloc(CHUNK * sizeof *chunk);
    s->bins = bins;
    s->counts = calloc(bins, sizeof *s->counts);
    bool exact = n <= EXACT_LIMIT;
    float *all = exact && n ? malloc((size_t)n * sizeof *all) : NULL;
    uint64_t *fine = exact ? NULL : calloc(FINE_BINS, sizeof *fine);
    rf_status st = RF_OK;
    if (!chunk || !s->counts || (exact && n && !all) || (!exact && !fine)) {
        st = rf_error_set(err, RF_ERR_NOMEM, "out of memory for the statistics of '%s'",
                          t->tensor.name);
        goto done;
    }
    /* pass 1: counts, range, mean (and the values themselves when few enough) */
    double sum = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
    for (uint64_t at = 0; at < n; at += CHUNK) {
        uint64_t k = n - at < CHUNK ? n - at : CHUNK;
        if ((st = rf_filemap_values(map, index, at, k, chunk, err)) != RF_OK)
            goto done;
        for (uint64_t i = 0; i < k; i++) {
            float v = chunk[i];
            if (isnan(v)) {
                s->nan++;
                continue;
            }
            if (isinf(v)) {
                s->inf++;
                continue;
            }
            s->zeros += v == 0.0f;
            if (all)
                all[s->finite] = v;
            s->finite++;
            sum += v;
            if (v < s->min)
                s->min = v;
            if (v > s->max)
                s->max = v;
        }
    }
    s->count = n;
    if (s->finite == 0)
        goto done;
    s->mean = sum / (double)s->finite;
    /* pass 2: central moments around the mean, histograms */
    double m2 = 0, m3 = 0, m4 = 0;
    for (uint64_t at = 0; at < n; at += CHUNK) {
        uint64_t k = n - at < CHUNK ? n - at : CHUNK;
        const float *v = chunk;
        if (all) {
            if (at > 0)
                break; /* the values are in memory: one pass over them below */
        } else if ((st = rf_filemap_values(map, index, at, k, chunk, err)) != RF_OK) {
            goto done;
        }
        uint64_t m = all ? s->finite : k;
        if (all)
            v = all;
        for (uint64_t i = 0; i < m; i++) {
            if (!isfinite(v[i]))
                continue;
            double d = (double)v[i] - s->mean, d2 = d * d;
            m2 += d2;
            m3 += d2 * d;
            m4 += d2 * d2;
            s->counts[bin_of(v[i], s->min, s->max, bins)]++;
            if (fine)
                fine[bin_of(v[i], s->min, s->max, FINE_BINS)]++;
        }
    }
    double nf = (double)s->finite;
    s->std = sqrt(m2 / nf);
    s->skewness = m2 > 0 ? (m3 / nf) / pow(m2 / nf, 1.5) : NAN;
    s->kurtosis = m2 > 0 ? (m4 / nf) / ((m2 / nf) * (m2 / nf)) - 3.0 : NAN;
    s->exact_quantiles = all != NULL;
    if (all)
        qsort(all, (size_t)s->finite, sizeof *all, cmp_float);
    for (size_t q = 0; q < 9; q++)
        s->quantiles[q] =
            all ? quantile_sorted(all, s->finite, HEX_QUANTILES[q])
                : quantile_hist(fine, FINE_BINS, s->min, s->max, s->finite, HEX_QUANTILES[q]);
done:
    free(chunk);
    free(all);
    free(fine);
    if (st != RF_OK)
        hex_stats_free(s);
    return st;
}

/* ---- --distribution ------------------------------------------------------------------------- */

static const char *num(double v, char *buf, size_t size)
{
    if (isnan(v))
        return "n/a";
    snprintf(buf, size, "%.6g", v);
    return buf;
}

static bool utf8_terminal(void)
{
    setlocale(LC_CTYPE, "");
    const char *cs = nl_langinfo(CODESET);
    return cs && strcmp(cs, "UTF-8") == 0;
}

static void print_bar(uint64_t count, uint64_t most, unsigned width, bool utf8)
{
    /* eighths of a cell with the Unicode block elements, '#' otherwise */
    static const char *const parts[] = {"",       "\u258f", "\u258e", "\u258d",
                                        "\u258c", "\u258b", "\u258a", "\u2589"};
    uint64_t eighths = most ? (count * width * 8 + most / 2) / most : 0;
    if (count && eighths == 0)
        eighths = 1;
    for (uint64_t i = 0; i < eighths / 8; i++)
        fputs(utf8 ? "\u2588" : "#", stdout);
    if (utf8)
        fputs(parts[eighths % 8], stdout);
}

static cJSON *json_num(double v) { return cli_json_double(v, false); }

int hex_distribution(const rf_filemap *map, const hex_options *o)
{
    size_t n = 0;
    size_t *sel = hex_select(map, o->tensor, true, &n);
    if (!sel)
        return hex_no_tensor(map, o);
    if (!o->tensor)
        n = 1;
    unsigned bins = o->bins ? o->bins : 20, width = o->has_width ? o->width : 40;
    bool utf8 = !o->json && utf8_terminal();
    cJSON *root = o->json ? hex_json_root(map, "distribution") : NULL;
    cJSON *list = root ? cJSON_AddArrayToObject(root, "tensors") : NULL;
    int code = APR_EXIT_OK;
    for (size_t k = 0; k < n; k++) {
        const rf_map_tensor *t = rf_filemap_tensor(map, sel[k]);
        hex_stats s;
        rf_error err;
        char shape[256], a[32], b[32], c[32], d[32];
        if (hex_tensor_stats(map, sel[k], bins, &s, &err) != RF_OK) {
            cli_error(&HEX_TOOL, "%s", err.message);
            code = APR_EXIT_INPUT;
            if (list) {
                cJSON *jt = cJSON_CreateObject();
                cJSON_AddItemToObject(jt, "tensor",
                                      cli_json_string(t->tensor.name, strlen(t->tensor.name)));
                cJSON_AddItemToObject(jt, "error",
                                      cli_json_string(err.message, strlen(err.message)));
                cJSON_AddItemToArray(list, jt);
            }
            continue;
        }
        bool any = s.finite > 0;
        if (list) {
            cJSON *jt = cJSON_CreateObject();
            cJSON_AddItemToObject(jt, "tensor",
                                  cli_json_string(t->tensor.name, strlen(t->tensor.name)));
            cJSON_AddStringToObject(jt, "dtype", t->dtype_text);
            cJSON *sh = cJSON_AddArrayToObject(jt, "shape");
            for (int dd = 0; dd < t->tensor.ndim; dd++)
                cJSON_AddItemToArray(sh, cli_json_u64(t->tensor.shape[dd]));
            cJSON_AddItemToObject(jt, "count", cli_json_u64(s.count));
            cJSON_AddItemToObject(jt, "finite", cli_json_u64(s.finite));
            cJSON_AddItemToObject(jt, "nan", cli_json_u64(s.nan));
            cJSON_AddItemToObject(jt, "inf", cli_json_u64(s.inf));
            cJSON_AddItemToObject(jt, "zeros", cli_json_u64(s.zeros));
            const char *names[] = {"min", "max", "mean", "std", "skewness", "kurtosis"};
            double vals[] = {s.min, s.max, s.mean, s.std, s.skewness, s.kurtosis};
            for (int i = 0; i < 6; i++)
                cJSON_AddItemToObject(jt, names[i], any ? json_num(vals[i]) : cJSON_CreateNull());
            cJSON *qs = cJSON_AddObjectToObject(jt, "quantiles");
            for (size_t q = 0; q < 9; q++) {
                char key[16];
                snprintf(key, sizeof key, "p%g", HEX_QUANTILES[q] * 100);
                cJSON_AddItemToObject(qs, key, any ? json_num(s.quantiles[q]) : cJSON_CreateNull());
            }
            cJSON_AddStringToObject(jt, "quantile_method",
                                    s.exact_quantiles ? "exact" : "histogram");
            cJSON *h = cJSON_AddObjectToObject(jt, "histogram");
            cJSON *edges = cJSON_AddArrayToObject(h, "edges");
            cJSON *counts = cJSON_AddArrayToObject(h, "counts");
            for (unsigned i = 0; any && i <= bins; i++)
                cJSON_AddItemToArray(edges, json_num(s.min + (s.max - s.min) * i / bins));
            for (unsigned i = 0; any && i < bins; i++)
                cJSON_AddItemToArray(counts, cli_json_u64(s.counts[i]));
            cJSON_AddItemToArray(list, jt);
            hex_stats_free(&s);
            continue;
        }
        printf("%s%s %s %s: %s values\n", k ? "\n" : "", t->tensor.name, t->dtype_text,
               hex_shape(&t->tensor, shape, sizeof shape), cli_thousands(s.count, a, sizeof a));
        printf("  finite %" PRIu64 ", NaN %" PRIu64 ", Inf %" PRIu64 ", zeros %" PRIu64 "\n",
               s.finite, s.nan, s.inf, s.zeros);
        if (!any) {
            printf("  (no finite values)\n");
            hex_stats_free(&s);
            continue;
        }
        printf("  min %s  max %s  mean %s  std %s\n", num(s.min, a, sizeof a),
               num(s.max, b, sizeof b), num(s.mean, c, sizeof c), num(s.std, d, sizeof d));
        printf("  skewness %s  kurtosis (excess) %s\n", num(s.skewness, a, sizeof a),
               num(s.kurtosis, b, sizeof b));
        printf("  quantiles (%s):", s.exact_quantiles ? "exact" : "from a 65,536-bin histogram");
        for (size_t q = 0; q < 9; q++)
            printf(" p%g %s", HEX_QUANTILES[q] * 100, num(s.quantiles[q], a, sizeof a));
        printf("\n  histogram (%u bins):\n", bins);
        uint64_t most = 0;
        for (unsigned i = 0; i < bins; i++)
            if (s.counts[i] > most)
                most = s.counts[i];
        for (unsigned i = 0; i < bins; i++) {
            double lo = s.min + (s.max - s.min) * i / bins,
                   hi = s.min + (s.max - s.min) * (i + 1) / bins;
            printf("  %12.5g .. %-12.5g %10" PRIu64 " ", lo, hi, s.counts[i]);
            print_bar(s.counts[i], most, width, utf8);
            printf("\n");
        }
        hex_stats_free(&s);
    }
    free(sel);
    if (root) {
        int cj = hex_json_print(root);
        return code != APR_EXIT_OK ? code : cj;
    }
    return code;
}

/* ---- --entropy ------------------------------------------------------------------------------ */

/* The lowest window entropy that is normal for a dtype's data (docs/tools.md, apr hex
 * --entropy): quantized blocks are dense (5.8 to 7.9 bits per 4 KiB window on real Q4_K_M weights),
 * floats vary more (4 bits for F32 widened from BF16, 3 to 4.6 for small norm vectors) but stay
 * above 2 unless most values repeat. Lower windows are flagged. 0: no expectation. */
static double expected_low(const rf_map_tensor *t)
{
    if (!t || !t->dtype_known)
        return 0;
    const rf_dtype_info *info = rf_dtype_get(t->tensor.dtype);
    if (!info)
        return 0;
    switch (info->kind) {
    case RF_KIND_QUANT: return 5.0;
    case RF_KIND_FLOAT: return info->block_bytes >= 2 ? 2.0 : 0;
    case RF_KIND_INT: return 0;
    }
    return 0;
}

typedef struct entropy_row {
    const rf_region *region;
    const rf_map_tensor *tensor;
    double total, min, max;
    uint64_t windows, zero_windows, constant_windows, low_windows;
    uint64_t first_zero, first_constant, first_low;
    uint64_t nonzero_padding, first_nonzero;
    double low_bound;
    uint64_t period; /* bytes of one element or block: a constant tensor repeats it */
} entropy_row;

/* c log2 c for the counts of one window, tabulated when the window is small enough. */
typedef struct xlogx {
    double *table;
    uint64_t n;
} xlogx;

static double xlog(const xlogx *x, uint64_t c)
{
    if (c < x->n)
        return x->table[c];
    return c ? (double)c * log2((double)c) : 0;
}

/* Entropy of a window from its counts: log2 n - (sum c log2 c) / n. */
static double window_entropy(const xlogx *x, const uint64_t *c, uint64_t n)
{
    double sum = 0;
    for (int b = 0; b < 256; b++)
        sum += xlog(x, c[b]);
    double h = log2((double)n) - sum / (double)n;
    return h < 1e-12 ? 0 : h; /* rounding noise of a constant window */
}

/* Whether the window repeats one element (period bytes) all along: a constant tensor. A window
 * with period p holds at most p distinct bytes, so only low-entropy windows are compared. */
static bool periodic(const uint8_t *win, uint64_t w, uint64_t period, double h)
{
    if (period == 0 || w <= period || h > log2((double)period) + 1e-9)
        return false;
    return memcmp(win, win + period, (size_t)(w - period)) == 0;
}

static void judge_window(entropy_row *row, const uint64_t *c, uint64_t w, uint64_t at, double h,
                         const uint8_t *win)
{
    row->windows++;
    if (h < row->min)
        row->min = h;
    if (h > row->max)
        row->max = h;
    bool padding = row->region->kind == RF_REGION_PADDING;
    bool small = row->region->kind != RF_REGION_TENSOR_DATA && w < 256;
    if (padding || small)
        return; /* padding is meant to be constant; tiny header pieces say nothing */
    if (c[0] == w) {
        if (row->zero_windows++ == 0)
            row->first_zero = at;
    } else if (h == 0 || periodic(win, w, row->period, h)) {
        if (row->constant_windows++ == 0)
            row->first_constant = at;
    } else if (row->low_bound > 0 && w >= 256 && h < row->low_bound) {
        if (row->low_windows++ == 0)
            row->first_low = at;
    }
}

/* Windows of w bytes every w/2 bytes, the last one ending at the region's end (one window over
 * a smaller region). Each half-window is counted once; a window is two halves. */
static void entropy_scan(const rf_filemap *map, entropy_row *row, uint64_t window, const xlogx *x)
{
    const uint8_t *d = rf_filemap_bytes(map) + row->region->offset;
    uint64_t size = row->region->size;
    uint64_t all[256] = {0}, prev[256], cur[256], win[256];
    row->min = INFINITY;
    row->max = -INFINITY;
    if (row->region->kind == RF_REGION_PADDING) {
        uint8_t pad = strstr(row->region->value, "spaces") ? 0x20 : 0x00; /* SafeTensors: spaces */
        for (uint64_t i = 0; i < size; i++)
            if (d[i] != pad && row->nonzero_padding++ == 0)
                row->first_nonzero = row->region->offset + i;
    }
    /* A window is two half-windows, so its length is even (but one byte for a 1-byte region):
     * an odd w would judge w bytes of which only 2 * (w / 2) were counted, and the last such
     * window would reach a byte past the region. */
    uint64_t w = size < window ? size : window;
    if (w > 1)
        w &= ~(uint64_t)1;
    uint64_t step = w / 2 ? w / 2 : 1;
    uint64_t last_start = 0;
    bool have_prev = false;
    for (uint64_t at = 0; at < size; at += step) {
        uint64_t n = size - at < step ? size - at : step;
        memset(cur, 0, sizeof cur);
        for (uint64_t i = 0; i < n; i++)
            cur[d[at + i]]++;
        for (int b = 0; b < 256; b++)
            all[b] += cur[b];
        if (w == step && n == step) { /* windows of one half (w == 1) */
            judge_window(row, cur, w, row->region->offset + at, window_entropy(x, cur, w), d + at);
            last_start = at;
        } else if (have_prev && n == step) {
            for (int b = 0; b < 256; b++)
                win[b] = prev[b] + cur[b];
            judge_window(row, win, w, row->region->offset + at - step, window_entropy(x, win, w),
                         d + at - step);
            last_start = at - step;
        }
        memcpy(prev, cur, sizeof prev);
        have_prev = true;
    }
    if (w > 0 && (row->windows == 0 || last_start + w < size)) {
        /* the window that ends at the region's end */
        uint64_t from = size - w;
        memset(win, 0, sizeof win);
        for (uint64_t i = 0; i < w; i++)
            win[d[from + i]]++;
        judge_window(row, win, w, row->region->offset + from, window_entropy(x, win, w), d + from);
    }
    row->total = size ? window_entropy(x, all, size) : 0;
    if (row->windows == 0)
        row->min = row->max = 0;
}

/* The flags of a row as text ("" when nothing is wrong). */
static const char *entropy_flags(const entropy_row *row, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    if (row->zero_windows && row->region->kind != RF_REGION_PADDING)
        n += (size_t)snprintf(buf + n, size - n, "%sALL-ZERO: %" PRIu64 " window%s from 0x%" PRIx64,
                              n ? "; " : "", row->zero_windows, row->zero_windows == 1 ? "" : "s",
                              row->first_zero);
    if (row->constant_windows && n < size)
        n += (size_t)snprintf(buf + n, size - n, "%sCONSTANT: %" PRIu64 " window%s from 0x%" PRIx64,
                              n ? "; " : "", row->constant_windows,
                              row->constant_windows == 1 ? "" : "s", row->first_constant);
    if (row->low_windows && n < size)
        n += (size_t)snprintf(
            buf + n, size - n, "%sLOW for %s (< %.1f bits): %" PRIu64 " window%s from 0x%" PRIx64,
            n ? "; " : "", row->tensor ? row->tensor->dtype_text : "data", row->low_bound,
            row->low_windows, row->low_windows == 1 ? "" : "s", row->first_low);
    if (row->nonzero_padding && n < size)
        snprintf(buf + n, size - n, "%sPADDING NOT ZERO: %" PRIu64 " byte%s from 0x%" PRIx64,
                 n ? "; " : "", row->nonzero_padding, row->nonzero_padding == 1 ? "" : "s",
                 row->first_nonzero);
    return buf;
}

/* The allocations of a running hex_entropy: the view runs under the SIGBUS guard, and a file
 * truncated underneath abandons it mid-way (hex_release_scratch frees them then). */
static struct {
    double *table;
    bool *selected;
    cJSON *root;
} scratch;

void hex_release_scratch(void)
{
    free(scratch.table);
    free(scratch.selected);
    cJSON_Delete(scratch.root);
    memset(&scratch, 0, sizeof scratch);
}

int hex_entropy(const rf_filemap *map, const hex_options *o)
{
    /* two half-windows make a window: an odd --width is taken one byte smaller */
    uint64_t window = o->has_width ? o->width & ~(uint64_t)1 : 4096;
    xlogx x = {NULL, window <= 65536 ? window + 1 : 0};
    if (x.n) {
        x.table = scratch.table = malloc(x.n * sizeof *x.table);
        if (!x.table)
            x.n = 0;
        for (uint64_t c = 0; c < x.n; c++)
            x.table[c] = c ? (double)c * log2((double)c) : 0;
    }
    bool *selected = NULL;
    if (o->tensor) {
        size_t n = 0;
        size_t *sel = hex_select(map, o->tensor, true, &n);
        if (!sel) {
            hex_release_scratch();
            return hex_no_tensor(map, o);
        }
        selected = scratch.selected = calloc(rf_filemap_n_tensors(map), sizeof *selected);
        for (size_t i = 0; selected && i < n; i++)
            selected[sel[i]] = true;
        free(sel);
        if (!selected) {
            hex_release_scratch();
            return APR_EXIT_WRITE;
        }
    }
    uint64_t lo = o->has_offset ? o->offset : 0;
    uint64_t hi = o->has_limit && o->limit <= UINT64_MAX - lo ? lo + o->limit : UINT64_MAX;
    cJSON *root = scratch.root = o->json ? hex_json_root(map, "entropy") : NULL;
    cJSON *list = root ? cJSON_AddArrayToObject(root, "regions") : NULL;
    if (root)
        cJSON_AddItemToObject(root, "window", cli_json_u64(window));
    if (!root)
        printf("%-10s %13s  %-11s %7s %7s %7s  %s\n", "offset", "size", "kind", "H", "min", "max",
               "region");
    size_t flagged = 0;
    for (size_t i = 0; i < rf_filemap_n_regions(map); i++) {
        const rf_region *r = rf_filemap_region(map, i);
        const rf_region *top = r;
        while (top->parent >= 0)
            top = rf_filemap_region(map, (size_t)top->parent);
        bool in_data = top->kind == RF_REGION_SECTION && strcmp(top->label, "data") == 0;
        /* rows: the sections outside the data, every region inside it, padding anywhere */
        bool row_region = (r->depth == 0 && !in_data) || (in_data && r->depth == 1) ||
                          (r->kind == RF_REGION_PADDING && !in_data);
        if (!row_region || r->size == 0 || r->offset >= hi || r->offset + r->size <= lo)
            continue;
        const rf_map_tensor *t = r->tensor >= 0 ? rf_filemap_tensor(map, (size_t)r->tensor) : NULL;
        if (selected && (!t || !selected[r->tensor]))
            continue;
        entropy_row row = {.region = r, .tensor = t};
        if (r->kind == RF_REGION_TENSOR_DATA) {
            row.low_bound = expected_low(t);
            const rf_dtype_info *info = t && t->dtype_known ? rf_dtype_get(t->tensor.dtype) : NULL;
            row.period = info ? info->block_bytes : 1;
        }
        entropy_scan(map, &row, window, &x);
        char flags[600], sz[32];
        entropy_flags(&row, flags, sizeof flags);
        flagged += *flags != '\0';
        if (list) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddItemToObject(j, "offset", cli_json_u64(r->offset));
            cJSON_AddItemToObject(j, "size", cli_json_u64(r->size));
            cJSON_AddStringToObject(j, "kind", rf_region_kind_name(r->kind));
            cJSON_AddItemToObject(j, "label", cli_json_string(r->label, strlen(r->label)));
            if (t)
                cJSON_AddStringToObject(j, "dtype", t->dtype_text);
            cJSON_AddItemToObject(j, "entropy", json_num(row.total));
            cJSON_AddItemToObject(j, "window_min", json_num(row.min));
            cJSON_AddItemToObject(j, "window_max", json_num(row.max));
            cJSON_AddItemToObject(j, "windows", cli_json_u64(row.windows));
            cJSON_AddItemToObject(j, "zero_windows", cli_json_u64(row.zero_windows));
            cJSON_AddItemToObject(j, "constant_windows", cli_json_u64(row.constant_windows));
            cJSON_AddItemToObject(j, "low_windows", cli_json_u64(row.low_windows));
            if (row.low_bound > 0)
                cJSON_AddItemToObject(j, "expected_min", json_num(row.low_bound));
            if (r->kind == RF_REGION_PADDING)
                cJSON_AddItemToObject(j, "nonzero_padding", cli_json_u64(row.nonzero_padding));
            cJSON *fl = cJSON_AddArrayToObject(j, "flags");
            if (row.zero_windows && r->kind != RF_REGION_PADDING)
                cJSON_AddItemToArray(fl, cJSON_CreateString("all-zero"));
            if (row.constant_windows)
                cJSON_AddItemToArray(fl, cJSON_CreateString("constant"));
            if (row.low_windows)
                cJSON_AddItemToArray(fl, cJSON_CreateString("low-entropy-for-dtype"));
            if (row.nonzero_padding)
                cJSON_AddItemToArray(fl, cJSON_CreateString("padding-not-zero"));
            cJSON_AddItemToArray(list, j);
            continue;
        }
        printf("0x%08" PRIx64 " %13s  %-11s %7.3f %7.3f %7.3f  %s%s%s%s\n", r->offset,
               cli_thousands(r->size, sz, sizeof sz), rf_region_kind_name(r->kind), row.total,
               row.min, row.max, r->label, t ? " (" : "", t ? t->dtype_text : "", t ? ")" : "");
        if (*flags)
            printf("%-10s %13s  %s  <-- %s\n", "", "", "", flags);
    }
    scratch.root = NULL; /* printed (and deleted) below */
    hex_release_scratch();
    if (root) {
        cJSON_AddItemToObject(root, "flagged", cli_json_u64(flagged));
        return hex_json_print(root);
    }
    printf("%zu region%s flagged (window %" PRIu64 " bytes, step %" PRIu64 ")\n", flagged,
           flagged == 1 ? "" : "s", window, window / 2 ? window / 2 : 1);
    return APR_EXIT_OK;
}
