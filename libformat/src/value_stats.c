/* Streaming value statistics with exact percentiles (docs/fingerprint.md, "Statistics").
 *
 * Percentiles without sorting: each finite value is mapped to a 32-bit key that orders like the
 * value (kernels/cpu/value_scan.h), so the k-th smallest value is the k-th smallest key. Pass 1
 * counts the keys' top 16 bits in a 65,536-bin histogram; the cumulative counts give the bin and
 * the rank inside it of every wanted order statistic. Pass 2 reads the values again and counts
 * the low 16 bits of the keys that fall in those (at most seven) bins, which settles each key
 * exactly. When those bins hold few values (their counts are known from pass 1; at most
 * PICK_KEYS in all, the usual case: a bin of a spread-out tensor holds well under 1% of it), pass 2
 * instead copies their keys into one list per bin and quickselect finds each rank: no 512 KiB
 * low-bit histogram per bin to clear and walk. Pass 2 is skipped when every finite value has zero
 * low 16 bits (BF16 data, F16 values whose mantissa fits): the bin is then the value. Memory is
 * bounded by the histograms, whatever the tensor size.
 *
 * mean and std: each chunk's sum and its squared deviations from the chunk mean are taken in
 * double in a fixed lane order (value_scan.h), then merged in chunk order with Chan et al.'s
 * pairwise update. Chunks are fixed TV_CHUNK-value ranges of the tensor, so no result depends
 * on the number of threads or on the SIMD level. */
#include "value_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cpu/cpu_features.h"
#include "cpu/value_scan.h"
#include "rosetta/quant.h"

#define BINS  65536
#define HISTS 4 /* interleaved sub-histograms of pass 1 */
/* Tensors of at most this many values keep their keys and select the percentiles with
 * quickselect: cheaper than clearing and walking the histograms. */
#define SMALL_VALUES (UINT64_C(1) << 14)
/* Pass 2 lists the keys of the wanted bins when they are at most this many in all (16 MiB). */
#define PICK_KEYS (UINT64_C(1) << 22)

static const unsigned POINTS[RF_N_PERCENTILES] = {1, 5, 25, 50, 75, 95, 99};

unsigned rf_percentile_point(int index)
{
    return index >= 0 && index < RF_N_PERCENTILES ? POINTS[index] : 0;
}

struct vs_work {
    tv_reader reader;
    float buf[TV_CHUNK];
    uint32_t hist32[HISTS][BINS]; /* pass 1, flushed into hist before it can overflow */
    uint64_t hist[BINS];
    uint64_t (*low)[BINS];       /* pass 2: low-bit counts per wanted bin (RF_N_PERCENTILES rows,
                                    allocated on first use: 3.5 MiB) */
    uint32_t keys[SMALL_VALUES]; /* small tensors: the keys of the finite values */
    uint64_t n_keys;
    uint32_t *picked; /* pass 2: the keys of the wanted bins, n_picked_max of room */
    uint64_t n_picked_max;
    XXH3_state_t *digest; /* the canonical digest's running state */
};

vs_work *rfi_vs_work_new(void)
{
    vs_work *w = malloc(sizeof *w);
    if (w && !(w->digest = XXH3_createState())) {
        free(w);
        return NULL;
    }
    if (w) {
        w->low = NULL;
        w->picked = NULL;
        w->n_picked_max = 0;
    }
    return w;
}

void rfi_vs_work_free(vs_work *w)
{
    if (w) {
        XXH3_freeState(w->digest);
        free(w->low);
        free(w->picked);
    }
    free(w);
}

static inline uint32_t key_of(const float *v)
{
    uint32_t b;
    memcpy(&b, v, sizeof b);
    return b ^ ((0u - (b >> 31)) | 0x80000000u);
}

static inline float value_of_key(uint32_t key)
{
    uint32_t b = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
    float v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* Running totals of pass 1. */
typedef struct acc {
    uint64_t count, finite, nan, inf, zeros, pending;
    uint32_t min_key, max_key;
    double mean, m2, sumsq;
    uint32_t low_or; /* OR of the low 16 bits of the finite values' bits */
    bool flushed;    /* w->hist holds counts */
} acc;

typedef struct scan_kernels {
    void (*scan)(const float *x, int64_t n, rk_scan *out);
    double (*m2)(const float *x, int64_t n, double mean);
    void (*select)(const float *x, int64_t n, const uint32_t *bins, int n_bins,
                   uint64_t (*low)[BINS], uint32_t **keys);
} scan_kernels;

/* The variant for this CPU; all give the same bits (value_scan.h). */
static scan_kernels kernels(void)
{
    switch (rk_simd_active()) {
    case RK_SIMD_SCALAR: break;
    case RK_SIMD_AVX2:
        return (scan_kernels){rk_value_scan_avx2, rk_value_m2_avx2, rk_value_select_avx2};
    case RK_SIMD_AVX512:
        return (scan_kernels){rk_value_scan_avx512, rk_value_m2_avx512, rk_value_select_avx512};
    }
    return (scan_kernels){rk_value_scan_ref, rk_value_m2_ref, rk_value_select_ref};
}

/* Moves the 32-bit counts into the 64-bit histogram (tensors of 2^32 values and more). */
static void flush_hist(vs_work *w, acc *a)
{
    if (!a->flushed)
        memset(w->hist, 0, sizeof w->hist);
    a->flushed = true;
    for (size_t i = 0; i < BINS; i++)
        for (int h = 0; h < HISTS; h++)
            w->hist[i] += w->hist32[h][i];
    memset(w->hist32, 0, sizeof w->hist32);
    a->pending = 0;
}

/* Folds n values into a: counts, extremes, sums and the top-bit histogram (four interleaved
 * sub-histograms, so that runs of equal values do not wait on one counter). */
static void add_chunk(vs_work *w, const scan_kernels *k, acc *a, const float *x, size_t n,
                      bool small)
{
    if (a->pending + n > UINT32_MAX)
        flush_hist(w, a);
    a->pending += n;
    a->count += n;
    rk_scan s;
    k->scan(x, (int64_t)n, &s);
    if (small) {
        uint32_t *keys = w->keys + w->n_keys;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            keys[m] = key_of(&x[i]);
            m += isfinite(x[i]);
        }
        w->n_keys += m;
    } else if (s.nonfinite == 0) {
        /* Blocks of BLOCK values: their bins first (a loop the compiler vectorizes), then the
         * increments, which are then all that the loop of counters does. */
        enum { BLOCK = 512 };
        uint32_t top[BLOCK];
        for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
            size_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
            for (size_t i = 0; i < m; i++)
                top[i] = key_of(&x[i0 + i]) >> 16;
            size_t i = 0;
            for (; i + HISTS <= m; i += HISTS)
                for (int h = 0; h < HISTS; h++)
                    w->hist32[h][top[i + h]]++;
            for (; i < m; i++)
                w->hist32[0][top[i]]++;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            if (isfinite(x[i]))
                w->hist32[0][key_of(&x[i]) >> 16]++;
    }
    uint64_t finite = n - s.nonfinite;
    a->nan += s.nan;
    a->inf += s.nonfinite - s.nan;
    a->zeros += s.zeros;
    a->low_or |= s.low_or;
    if (finite == 0)
        return;
    double mean = s.sum / (double)finite;
    double m2 = k->m2(x, (int64_t)n, mean);
    a->sumsq += s.sumsq;
    if (a->finite == 0) {
        a->min_key = s.min_key;
        a->max_key = s.max_key;
        a->mean = mean;
        a->m2 = m2;
        a->finite = finite;
        return;
    }
    double total = (double)(a->finite + finite);
    double delta = mean - a->mean;
    a->mean += delta * ((double)finite / total);
    a->m2 += m2 + delta * delta * ((double)a->finite * (double)finite / total);
    a->finite += finite;
    a->min_key = s.min_key < a->min_key ? s.min_key : a->min_key;
    a->max_key = s.max_key > a->max_key ? s.max_key : a->max_key;
}

typedef struct pass {
    vs_work *w;
    scan_kernels k;
    acc *a;
    bool small;                      /* keys kept for quickselect, no histograms */
    uint32_t bins[RF_N_PERCENTILES]; /* pass 2: the wanted bins */
    int n_bins;
    uint32_t *cursor[RF_N_PERCENTILES]; /* pass 2 listing keys: where each bin's next goes */
    bool listing;                       /* pass 2 lists keys (else counts low bits) */
    XXH3_state_t *digest;               /* NULL: no canonical digest */
    bool second;
} pass;

static rf_status run_pass(tv_reader *r, pass *p, rf_error *err)
{
    for (uint64_t first = 0; first < r->count; first += TV_CHUNK) {
        uint64_t n = r->count - first < TV_CHUNK ? r->count - first : TV_CHUNK;
        const float *x = rfi_tv_view(r, first, n, p->w->buf, err);
        if (!x)
            return err ? err->status : RF_ERR_FORMAT;
        if (p->second) {
            p->k.select(x, (int64_t)n, p->bins, p->n_bins, p->w->low,
                        p->listing ? p->cursor : NULL);
            continue;
        }
        add_chunk(p->w, &p->k, p->a, x, (size_t)n, p->small);
        if (p->digest)
            XXH3_64bits_update(p->digest, x, (size_t)n * sizeof *x);
    }
    return RF_OK;
}

/* The k-th smallest of keys[lo..hi] (inclusive), rearranging them (Hoare's selection with the
 * median of three as pivot). */
static uint32_t select_key(uint32_t *keys, uint64_t lo, uint64_t hi, uint64_t k)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint32_t a = keys[lo], b = keys[mid], c = keys[hi];
        uint32_t pivot = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
        uint64_t i = lo, j = hi;
        while (i <= j) {
            while (keys[i] < pivot)
                i++;
            while (keys[j] > pivot)
                j--;
            if (i <= j) {
                uint32_t t = keys[i];
                keys[i] = keys[j];
                keys[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return keys[k];
    }
    return keys[k];
}

rf_status rfi_vs_tensor(vs_work *w, const rf_model *m, const rf_tensor *t, rf_value_stats *out,
                        uint64_t *canonical_digest, const uint64_t *raw_digest, rf_error *err)
{
    memset(out, 0, sizeof *out);
    tv_reader *r = &w->reader;
    rf_status st = rfi_tv_open(m, t, r, err);
    if (st != RF_OK)
        return st;
    acc a;
    memset(&a, 0, sizeof a);
    bool small = r->count <= SMALL_VALUES;
    w->n_keys = 0;
    if (!small)
        memset(w->hist32, 0, sizeof w->hist32);
    if (canonical_digest)
        XXH3_64bits_reset(w->digest);
    pass p = {
        w, kernels(), &a, small, {0}, 0, {NULL}, false, canonical_digest ? w->digest : NULL, false};
    /* F32 stored flat: the canonical bytes are the stored bytes (little-endian host). */
    bool canonical_is_raw =
        t->dtype == RF_DTYPE_F32 && t->row_stride == 0 && t->nbytes == r->count * 4;
    if (canonical_is_raw)
        p.digest = NULL;
    if ((st = run_pass(r, &p, err)) != RF_OK)
        return st;
    if (canonical_digest)
        *canonical_digest = !canonical_is_raw ? XXH3_64bits_digest(w->digest)
                            : raw_digest      ? *raw_digest
                                              : XXH3_64bits(t->data, (size_t)t->nbytes);

    out->count = a.count;
    out->finite = a.finite;
    out->nan = a.nan;
    out->inf = a.inf;
    out->zeros = a.zeros;
    if (a.finite == 0) {
        out->min = out->max = NAN;
        out->mean = out->std = out->l2 = NAN;
        for (int k = 0; k < RF_N_PERCENTILES; k++)
            out->percentiles[k] = NAN;
        return RF_OK;
    }
    out->min = value_of_key(a.min_key);
    out->max = value_of_key(a.max_key);
    out->mean = a.mean;
    out->std = sqrt(a.m2 / (double)a.finite);
    out->l2 = sqrt(a.sumsq);

    /* Ranks wanted, their bins, and the rank inside each bin. */
    uint64_t rank[RF_N_PERCENTILES], in_bin[RF_N_PERCENTILES] = {0}, bin_n[RF_N_PERCENTILES] = {0};
    uint32_t bin[RF_N_PERCENTILES] = {0};
    for (int k = 0; k < RF_N_PERCENTILES; k++)
        rank[k] = (a.finite - 1) * POINTS[k] / 100;
    if (small) { /* ranks ascend: each selection leaves the smaller keys to its left */
        uint64_t lo = 0;
        for (int k = 0; k < RF_N_PERCENTILES; k++) {
            out->percentiles[k] = value_of_key(select_key(w->keys, lo, w->n_keys - 1, rank[k]));
            lo = rank[k];
        }
        return RF_OK;
    }
    uint64_t cum = 0;
    int k = 0;
    for (uint32_t b = 0; b < BINS && k < RF_N_PERCENTILES; b++) {
        uint64_t c = a.flushed ? w->hist[b] : 0;
        for (int h = 0; h < HISTS; h++)
            c += w->hist32[h][b];
        while (k < RF_N_PERCENTILES && rank[k] < cum + c) {
            bin[k] = b;
            in_bin[k] = rank[k] - cum;
            bin_n[k] = c;
            k++;
        }
        cum += c;
    }
    if (a.low_or == 0) { /* every finite value's low 16 bits are 0: the bin is the value */
        for (k = 0; k < RF_N_PERCENTILES; k++)
            out->percentiles[k] = value_of_key(bin[k] << 16 | (bin[k] & 0x8000u ? 0 : 0xffffu));
        return RF_OK;
    }
    /* The distinct wanted bins (slots) and how many keys they hold in all. */
    int slot_of[RF_N_PERCENTILES];
    uint64_t slot_n[RF_N_PERCENTILES] = {0}, listed = 0;
    for (k = 0; k < RF_N_PERCENTILES; k++) {
        int s = 0;
        while (s < p.n_bins && p.bins[s] != bin[k])
            s++;
        if (s == p.n_bins) {
            p.bins[p.n_bins++] = bin[k];
            slot_n[s] = bin_n[k];
            listed += bin_n[k];
        }
        slot_of[k] = s;
    }
    p.listing = listed <= PICK_KEYS;
    if (p.listing && w->n_picked_max < listed) {
        free(w->picked);
        w->n_picked_max = 0;
        if (!(w->picked = malloc(listed * sizeof *w->picked)))
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory for the percentile keys");
        w->n_picked_max = listed;
    }
    if (!p.listing && !w->low && !(w->low = malloc(RF_N_PERCENTILES * sizeof *w->low)))
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory for the percentile histograms");
    uint32_t *start[RF_N_PERCENTILES];
    for (int s = 0, at = 0; s < p.n_bins; at += (int)slot_n[s], s++) {
        if (p.listing)
            start[s] = p.cursor[s] = w->picked + at;
        else
            memset(w->low[s], 0, sizeof w->low[0]);
    }
    p.second = true;
    p.digest = NULL;
    if ((st = run_pass(r, &p, err)) != RF_OK)
        return st;
    for (k = 0; k < RF_N_PERCENTILES; k++) {
        int s = slot_of[k];
        if (p.listing) { /* the list holds exactly the bin's bin_n[k] keys (pass 1 counted them) */
            out->percentiles[k] = value_of_key(
                select_key(start[s], 0, (uint64_t)(p.cursor[s] - start[s]) - 1, in_bin[k]));
            continue;
        }
        const uint64_t *low = w->low[s];
        uint64_t c = 0;
        uint32_t lb = 0;
        while (lb < BINS - 1 && c + low[lb] <= in_bin[k])
            c += low[lb++];
        out->percentiles[k] = value_of_key(bin[k] << 16 | lb);
    }
    return RF_OK;
}

typedef struct stats_call {
    const rf_model *m;
    const rf_tensor *t;
    vs_work *w;
    rf_value_stats *out;
} stats_call;

static rf_status stats_guarded(void *ctx, rf_error *err)
{
    stats_call *c = ctx;
    return rfi_vs_tensor(c->w, c->m, c->t, c->out, NULL, NULL, err);
}

rf_status rf_tensor_stats(const rf_model *m, const rf_tensor *t, rf_value_stats *out, rf_error *err)
{
    if (!m || !t || !out)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL model, tensor or output");
    vs_work *w = rfi_vs_work_new();
    if (!w)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory for the statistics of '%s'", t->name);
    stats_call c = {m, t, w, out};
    rf_status st = rf_model_mapped_call(m, stats_guarded, &c, err);
    rfi_vs_work_free(w);
    if (st != RF_OK)
        rf_error_prefix(err, "tensor '%s'", t->name);
    return st;
}
