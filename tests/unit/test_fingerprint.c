/* Unit tests of the fingerprint and statistics code: the chunk kernels (every SIMD variant the
 * CPU has equals the scalar reference bit for bit), exact percentiles against a sorted copy on
 * both paths (quickselect for small tensors, histograms for large ones), chunked reads of
 * arbitrary ranges of block-quantized tensors, the JSON round trip, thread-count independence,
 * and single bit flips at many random positions of a model held in memory. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_features.h"
#include "cpu/value_scan.h"
#include "rosetta/fingerprint.h"
#include "rosetta/quant.h"
#include "rosetta/safetensors.h"
#include "tensor_values.h"
#include "value_stats.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static float gauss(void)
{
    double s = 0;
    for (int k = 0; k < 6; k++)
        s += (double)rnd() / 4294967296.0;
    return (float)((s - 3.0) * 0.7);
}

/* Random values with ties, zeros of both signs, NaN and infinities. */
static void fill_special(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rnd() % 100;
        x[i] = r == 0   ? NAN
               : r == 1 ? INFINITY
               : r == 2 ? -INFINITY
               : r < 6  ? 0.0f
               : r < 9  ? -0.0f
               : r < 20 ? 0.25f
                        : gauss();
    }
}

Test(value_scan, simd_variants_equal_reference)
{
    static float x[4099];
    rk_simd_level level = rk_cpu_simd_level();
    for (int round = 0; round < 20; round++) {
        size_t n = round == 0 ? 0 : 1 + rnd() % 4099;
        if (round % 2)
            fill_special(x, n);
        else
            for (size_t i = 0; i < n; i++)
                x[i] = gauss();
        rk_scan ref, got;
        rk_value_scan_ref(x, (int64_t)n, &ref);
        double m2_ref = rk_value_m2_ref(x, (int64_t)n, 0.125);
        static uint64_t low_ref[3][65536], low_got[3][65536];
        memset(low_ref, 0, sizeof low_ref);
        uint32_t bins[3] = {0x8000u, 0xbe80u, 0x3e7fu};
        rk_value_select_ref(x, (int64_t)n, bins, 3, low_ref, NULL);
        /* the listing mode: each bin's keys in index order, as many as the counts say */
        static uint32_t list_ref[3][4099], list_got[3][4099];
        uint32_t *cur[3] = {list_ref[0], list_ref[1], list_ref[2]};
        rk_value_select_ref(x, (int64_t)n, bins, 3, NULL, cur);
        for (int s = 0; s < 3; s++) {
            uint64_t c = 0;
            for (size_t b = 0; b < 65536; b++)
                c += low_ref[s][b];
            cr_assert_eq((uint64_t)(cur[s] - list_ref[s]), c, "listed keys of bin %d", s);
            for (uint64_t i = 0; i < c; i++)
                cr_assert_eq(list_ref[s][i] >> 16, bins[s]);
        }
        for (int v = 1; v <= 2; v++) {
            if ((int)level < v)
                continue;
            if (v == 1)
                rk_value_scan_avx2(x, (int64_t)n, &got);
            else
                rk_value_scan_avx512(x, (int64_t)n, &got);
            cr_assert(memcmp(&ref, &got, sizeof ref) == 0, "scan variant %d differs (n %zu)", v, n);
            double m2 = v == 1 ? rk_value_m2_avx2(x, (int64_t)n, 0.125)
                               : rk_value_m2_avx512(x, (int64_t)n, 0.125);
            cr_assert(memcmp(&m2, &m2_ref, sizeof m2) == 0, "m2 variant %d differs", v);
            memset(low_got, 0, sizeof low_got);
            if (v == 1)
                rk_value_select_avx2(x, (int64_t)n, bins, 3, low_got, NULL);
            else
                rk_value_select_avx512(x, (int64_t)n, bins, 3, low_got, NULL);
            cr_assert(memcmp(low_ref, low_got, sizeof low_ref) == 0, "select variant %d", v);
            uint32_t *gc[3] = {list_got[0], list_got[1], list_got[2]};
            if (v == 1)
                rk_value_select_avx2(x, (int64_t)n, bins, 3, NULL, gc);
            else
                rk_value_select_avx512(x, (int64_t)n, bins, 3, NULL, gc);
            for (int s = 0; s < 3; s++)
                cr_assert(gc[s] - list_got[s] == cur[s] - list_ref[s] &&
                              memcmp(list_got[s], list_ref[s],
                                     (size_t)(cur[s] - list_ref[s]) * sizeof(uint32_t)) == 0,
                          "listing variant %d bin %d", v, s);
        }
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    if (x == y)
        return (signbit(y) != 0) - (signbit(x) != 0); /* -0 before +0 */
    return (x > y) - (x < y);
}

/* Statistics of an F32 tensor held in memory, against a sorted copy. */
static void check_stats(float *x, uint64_t n)
{
    rf_tensor t = {.name = "t",
                   .dtype = RF_DTYPE_F32,
                   .ndim = 1,
                   .shape = {n},
                   .data = (const uint8_t *)x,
                   .nbytes = n * 4};
    vs_work *w = rfi_vs_work_new();
    cr_assert(w);
    rf_value_stats s;
    rf_error err;
    uint64_t digest;
    cr_assert(rfi_vs_tensor(w, NULL, &t, &s, &digest, NULL, &err) == RF_OK, "%s", err.message);
    rfi_vs_work_free(w);
    float *fin = malloc((n ? n : 1) * sizeof *fin);
    uint64_t m = 0, nan = 0, inf = 0, zeros = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            nan++;
        else if (isinf(x[i]))
            inf++;
        else {
            zeros += x[i] == 0;
            fin[m++] = x[i];
        }
    }
    cr_assert_eq(s.count, n);
    cr_assert_eq(s.finite, m);
    cr_assert_eq(s.nan, nan);
    cr_assert_eq(s.inf, inf);
    cr_assert_eq(s.zeros, zeros);
    qsort(fin, m, sizeof *fin, cmp_float);
    if (m == 0) {
        cr_assert(isnan(s.min) && isnan(s.percentiles[3]));
    } else {
        cr_assert(memcmp(&s.min, &fin[0], 4) == 0 && memcmp(&s.max, &fin[m - 1], 4) == 0);
        for (int k = 0; k < RF_N_PERCENTILES; k++) {
            float want = fin[(m - 1) * rf_percentile_point(k) / 100];
            cr_assert(memcmp(&s.percentiles[k], &want, 4) == 0, "p%u of %llu values: %g, want %g",
                      rf_percentile_point(k), (unsigned long long)n, s.percentiles[k], want);
        }
    }
    free(fin);
}

Test(value_stats, percentiles_exact_on_both_paths)
{
    uint64_t sizes[] = {0, 1, 2, 7, 100, 16384, 16385, 70000, 300001};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        float *x = malloc((sizes[i] ? sizes[i] : 1) * sizeof *x);
        fill_special(x, sizes[i]);
        check_stats(x, sizes[i]);
        for (uint64_t j = 0; j < sizes[i]; j++) /* all equal: one bin holds everything */
            x[j] = -1.5f;
        check_stats(x, sizes[i]);
        for (uint64_t j = 0; j < sizes[i]; j++)
            x[j] = NAN;
        check_stats(x, sizes[i]);
        free(x);
    }
}

/* A Q4_K tensor read in arbitrary ranges equals the same range of the whole dequantization. */
Test(tensor_values, ranges_of_block_tensors)
{
    enum { ROWS = 6, COLS = 512 };
    static float src[ROWS * COLS], whole[ROWS * COLS], part[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++)
        src[i] = gauss();
    uint64_t bytes;
    cr_assert(rf_quant_bytes(RF_DTYPE_Q4_K, ROWS, COLS, &bytes, NULL) == RF_OK);
    uint8_t *q = malloc(bytes);
    cr_assert(rf_quantize(RF_DTYPE_Q4_K, src, q, ROWS, COLS, NULL, NULL, NULL) == RF_OK);
    rf_tensor t = {.name = "q",
                   .dtype = RF_DTYPE_Q4_K,
                   .ndim = 2,
                   .shape = {ROWS, COLS},
                   .data = q,
                   .nbytes = bytes};
    cr_assert(rf_tensor_dequantize(&t, whole, NULL) == RF_OK);
    tv_reader *r = malloc(sizeof *r);
    rf_error err;
    cr_assert(rfi_tv_open(NULL, &t, r, &err) == RF_OK, "%s", err.message);
    for (int round = 0; round < 200; round++) {
        uint64_t first = rnd() % (ROWS * COLS), n = rnd() % (ROWS * COLS - first + 1);
        cr_assert(rfi_tv_read(r, first, n, part, &err) == RF_OK, "%s", err.message);
        cr_assert(memcmp(part, whole + first, n * sizeof *part) == 0, "[%llu, +%llu)",
                  (unsigned long long)first, (unsigned long long)n);
    }
    free(r);
    free(q);
}

static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(*size);
    cr_assert(fread(p, 1, *size, f) == *size);
    fclose(f);
    return p;
}

static const char *FIXTURE = ROSETTA_ROOT "/fixtures/tiny-qwen2/model.safetensors";

Test(fingerprint, json_round_trip_and_threads)
{
    rf_error err;
    rf_model *m = rf_model_open(FIXTURE, NULL, &err);
    cr_assert(m, "%s", err.message);
    char *texts[3];
    for (int t = 1; t <= 3; t++) {
        rf_fingerprint_options o = {t, false};
        rf_fingerprint *fp = rf_fingerprint_model(m, "fixture", &o, &err);
        cr_assert(fp, "%s", err.message);
        texts[t - 1] = rf_fingerprint_to_json(fp, false);
        rf_fingerprint_free(fp);
    }
    cr_assert_str_eq(texts[0], texts[1]);
    cr_assert_str_eq(texts[0], texts[2]);
    rf_fingerprint *back = rf_fingerprint_from_json(texts[0], strlen(texts[0]), &err);
    cr_assert(back, "%s", err.message);
    char *again = rf_fingerprint_to_json(back, false);
    cr_assert_str_eq(texts[0], again, "JSON does not survive a round trip");
    rf_check_report *r = rf_fingerprint_check(back, back, NULL, &err);
    cr_assert(r && rf_check_report_passed(r));
    for (size_t i = 0; i < rf_check_report_n_tensors(r); i++)
        cr_assert_eq(rf_check_report_tensor(r, i)->verdict, RF_CHECK_RAW);
    rf_check_report_free(r);
    /* A wrong field is named. */
    char *bad = strdup(texts[0]);
    char *at = strstr(bad, "\"raw_xxh3\":\"");
    cr_assert(at);
    at[12] = 'X';
    cr_assert_null(rf_fingerprint_from_json(bad, strlen(bad), &err));
    cr_assert(strstr(err.message, "tensors[0].raw_xxh3"), "%s", err.message);
    free(bad);
    free(again);
    rf_fingerprint_free(back);
    for (int t = 0; t < 3; t++)
        free(texts[t]);
    rf_model_free(m);
}

/* Any single bit flipped in any tensor's bytes changes that tensor's raw digest (and no other)
 * and the model digest: 2000 random positions. */
Test(fingerprint, bit_flips_change_digests)
{
    size_t size;
    uint8_t *image = read_file(FIXTURE, &size);
    rf_error err;
    rf_fingerprint_options o = {1, true};
    rf_model *m = rf_safetensors_open_memory(image, size, "fixture", NULL, &err);
    cr_assert(m, "%s", err.message);
    rf_fingerprint *base = rf_fingerprint_model(m, "fixture", &o, &err);
    cr_assert(base);
    size_t n = rf_model_n_tensors(m);
    uint64_t *offs = malloc(n * sizeof *offs), *lens = malloc(n * sizeof *lens);
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        offs[i] = (uint64_t)(t->data - image);
        lens[i] = t->nbytes;
    }
    rf_model_free(m);
    for (int trial = 0; trial < 2000; trial++) {
        size_t ti = rnd() % n;
        uint64_t pos = offs[ti] + (uint64_t)rnd() % lens[ti];
        uint8_t bit = (uint8_t)(1u << (rnd() % 8));
        image[pos] ^= bit;
        m = rf_safetensors_open_memory(image, size, "fixture", NULL, &err);
        cr_assert(m, "%s", err.message);
        rf_fingerprint *fp = rf_fingerprint_model(m, "fixture", &o, &err);
        cr_assert(fp);
        for (size_t i = 0; i < n; i++)
            cr_assert((rf_fingerprint_tensor(fp, i)->raw_digest !=
                       rf_fingerprint_tensor(base, i)->raw_digest) == (i == ti),
                      "flip at %llu: tensor %zu", (unsigned long long)pos, i);
        cr_assert_neq(rf_fingerprint_raw_digest(fp), rf_fingerprint_raw_digest(base));
        rf_fingerprint_free(fp);
        rf_model_free(m);
        image[pos] ^= bit;
    }
    free(offs);
    free(lens);
    rf_fingerprint_free(base);
    free(image);
}
