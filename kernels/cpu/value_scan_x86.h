/* rk_value_scan and rk_value_m2 with AVX2 intrinsics (value_scan_avx2.c, value_scan_avx512.c;
 * the AVX-512 build keeps the eight double lanes in one 512-bit vector): eight floats per step,
 * lane j of the double accumulators taking element i with i % 8 == j as the scalar reference does
 * (value_scan.h); products are rounded before they are added (no FMA intrinsic; -ffp-contract=off).
 * Needs n < 2^34 (per-lane counts are 32-bit): callers pass chunks of at most 65,536 values. */
#include <immintrin.h>
#include <string.h>

#include "value_scan.h"

static inline uint64_t x86_count(__m256i c)
{
    /* c holds per-lane counts as negative numbers (compares add -1). */
    int32_t v[8];
    _mm256_storeu_si256((__m256i *)v, c);
    uint64_t t = 0;
    for (int j = 0; j < 8; j++)
        t += (uint64_t)(uint32_t)(-v[j]);
    return t;
}

void SCAN_FN(rk_value_scan)(const float *x, int64_t n, rk_scan *out)
{
    const __m256i expo = _mm256_set1_epi32(0x7f800000), mant = _mm256_set1_epi32(0x007fffff);
    const __m256i magn = _mm256_set1_epi32(0x7fffffff), sign = _mm256_set1_epi32((int)0x80000000u);
    const __m256i zero = _mm256_setzero_si256();
#ifdef __AVX512F__ /* lane j of one 512-bit vector: the eight lanes of value_scan.h */
    __m512d sum = _mm512_setzero_pd(), sq = _mm512_setzero_pd();
#else
    __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
    __m256d sq_lo = _mm256_setzero_pd(), sq_hi = _mm256_setzero_pd();
#endif
    __m256i lo = _mm256_set1_epi32(-1), hi = zero, low_or = zero;
    __m256i c_nf = zero, c_nan = zero, c_zero = zero;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i nf = _mm256_cmpeq_epi32(_mm256_and_si256(b, expo), expo);
        __m256i fin = _mm256_andnot_si256(nf, b); /* non-finite values become +0 */
        __m256 v = _mm256_castsi256_ps(fin);
#ifdef __AVX512F__
        __m512d d = _mm512_cvtps_pd(v);
        sum = _mm512_add_pd(sum, d);
        sq = _mm512_add_pd(sq, _mm512_mul_pd(d, d));
#else
        __m256d d_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        __m256d d_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        sum_lo = _mm256_add_pd(sum_lo, d_lo);
        sum_hi = _mm256_add_pd(sum_hi, d_hi);
        sq_lo = _mm256_add_pd(sq_lo, _mm256_mul_pd(d_lo, d_lo));
        sq_hi = _mm256_add_pd(sq_hi, _mm256_mul_pd(d_hi, d_hi));
#endif
        __m256i key = _mm256_xor_si256(b, _mm256_or_si256(_mm256_srai_epi32(b, 31), sign));
        lo = _mm256_min_epu32(lo, _mm256_or_si256(key, nf));
        hi = _mm256_max_epu32(hi, _mm256_andnot_si256(nf, key));
        low_or = _mm256_or_si256(low_or, fin);
        c_nf = _mm256_add_epi32(c_nf, nf);
        __m256i has_mant = _mm256_xor_si256(_mm256_cmpeq_epi32(_mm256_and_si256(b, mant), zero),
                                            _mm256_set1_epi32(-1));
        c_nan = _mm256_add_epi32(c_nan, _mm256_and_si256(nf, has_mant));
        c_zero = _mm256_add_epi32(c_zero, _mm256_cmpeq_epi32(_mm256_and_si256(b, magn), zero));
    }
    double s[8], q[8];
    uint32_t l[8], h[8], o[8];
#ifdef __AVX512F__
    _mm512_storeu_pd(s, sum);
    _mm512_storeu_pd(q, sq);
#else
    _mm256_storeu_pd(s, sum_lo);
    _mm256_storeu_pd(s + 4, sum_hi);
    _mm256_storeu_pd(q, sq_lo);
    _mm256_storeu_pd(q + 4, sq_hi);
#endif
    _mm256_storeu_si256((__m256i *)l, lo);
    _mm256_storeu_si256((__m256i *)h, hi);
    _mm256_storeu_si256((__m256i *)o, low_or);
    uint64_t nonfinite = x86_count(c_nf), nan = x86_count(c_nan), zeros = x86_count(c_zero);
    for (int j = 0; i < n; i++, j++) { /* the tail, lane by lane as the reference */
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        uint32_t nf = (b & 0x7f800000u) == 0x7f800000u;
        uint32_t key = b ^ ((0u - (b >> 31)) | 0x80000000u);
        double d = nf ? 0.0 : (double)x[i];
        s[j] += d;
        q[j] += d * d;
        uint32_t kmin = nf ? UINT32_MAX : key, kmax = nf ? 0 : key;
        l[j] = kmin < l[j] ? kmin : l[j];
        h[j] = kmax > h[j] ? kmax : h[j];
        o[j] |= nf ? 0 : b;
        nonfinite += nf;
        nan += nf & ((b & 0x007fffffu) != 0);
        zeros += (b & 0x7fffffffu) == 0;
    }
    memset(out, 0, sizeof *out);
    out->nonfinite = nonfinite;
    out->nan = nan;
    out->zeros = zeros;
    out->min_key = UINT32_MAX;
    for (int j = 0; j < 8; j++) {
        out->min_key = l[j] < out->min_key ? l[j] : out->min_key;
        out->max_key = h[j] > out->max_key ? h[j] : out->max_key;
        out->low_or |= o[j];
    }
    out->low_or &= 0xffffu;
    out->sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    out->sumsq = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
}

double SCAN_FN(rk_value_m2)(const float *x, int64_t n, double mean)
{
    const __m256i expo = _mm256_set1_epi32(0x7f800000);
    int64_t i = 0;
    double s[8];
#ifdef __AVX512F__ /* one 512-bit vector of the eight lanes; non-finite lanes' differences are +0  \
                    */
    const __m512d m8 = _mm512_set1_pd(mean);
    __m512d acc = _mm512_setzero_pd();
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __mmask8 fin =
            _mm256_cmpneq_epi32_mask(_mm256_and_si256(_mm256_castps_si256(v), expo), expo);
        __m512d d = _mm512_maskz_sub_pd(fin, _mm512_cvtps_pd(v), m8);
        acc = _mm512_add_pd(acc, _mm512_mul_pd(d, d));
    }
    _mm512_storeu_pd(s, acc);
#else
    const __m256d m = _mm256_set1_pd(mean);
    __m256d acc_lo = _mm256_setzero_pd(), acc_hi = _mm256_setzero_pd();
    for (; i + 8 <= n; i += 8) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i nf = _mm256_cmpeq_epi32(_mm256_and_si256(b, expo), expo);
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d d_lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), m);
        __m256d d_hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), m);
        /* non-finite lanes contribute +0: mask the differences (sign-extended to 64 bits) */
        __m256d k_lo = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(nf)));
        __m256d k_hi = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(nf, 1)));
        d_lo = _mm256_andnot_pd(k_lo, d_lo);
        d_hi = _mm256_andnot_pd(k_hi, d_hi);
        acc_lo = _mm256_add_pd(acc_lo, _mm256_mul_pd(d_lo, d_lo));
        acc_hi = _mm256_add_pd(acc_hi, _mm256_mul_pd(d_hi, d_hi));
    }
    _mm256_storeu_pd(s, acc_lo);
    _mm256_storeu_pd(s + 4, acc_hi);
#endif
    for (int j = 0; i < n; i++, j++) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        double d = (b & 0x7f800000u) == 0x7f800000u ? 0.0 : (double)x[i] - mean;
        s[j] += d * d;
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* The keys of a step of values: compare their top 16 bits with the wanted bins (broadcast), and
 * count only the lanes that match (counting does not depend on the order). AVX-512 builds take
 * sixteen values per step, AVX2 builds eight. */
static inline void select_one(const float *x, const uint32_t *bins, int n_bins,
                              uint64_t (*low)[65536], uint32_t **keys)
{
    uint32_t bits;
    memcpy(&bits, x, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u)
        return;
    uint32_t kk = bits ^ ((0u - (bits >> 31)) | 0x80000000u);
    for (int s = 0; s < n_bins; s++)
        if (kk >> 16 == bins[s]) {
            if (keys)
                *keys[s]++ = kk;
            else
                low[s][kk & 0xffffu]++;
            return;
        }
}

void SCAN_FN(rk_value_select)(const float *x, int64_t n, const uint32_t *bins, int n_bins,
                              uint64_t (*low)[65536], uint32_t **keys)
{
    int64_t i = 0;
#ifdef __AVX512F__
    const __m512i expo = _mm512_set1_epi32(0x7f800000), sign = _mm512_set1_epi32((int)0x80000000u);
    __m512i want[8];
    for (int k = 0; k < 8; k++)
        want[k] = _mm512_set1_epi32((int)(k < n_bins ? bins[k] : bins[0]));
    for (; i + 16 <= n; i += 16) {
        __m512i b = _mm512_loadu_si512((const void *)(x + i));
        __m512i key = _mm512_xor_si512(b, _mm512_or_si512(_mm512_srai_epi32(b, 31), sign));
        __m512i top = _mm512_srli_epi32(key, 16);
        __mmask16 hit = _mm512_cmpeq_epi32_mask(top, want[0]);
        for (int k = 1; k < n_bins; k++)
            hit |= _mm512_cmpeq_epi32_mask(top, want[k]);
        hit &= _mm512_cmpneq_epi32_mask(_mm512_and_si512(b, expo), expo);
        unsigned mask = hit;
        while (mask) {
            int j = __builtin_ctz(mask);
            mask &= mask - 1;
            select_one(x + i + j, bins, n_bins, low, keys);
        }
    }
#else
    const __m256i expo = _mm256_set1_epi32(0x7f800000), sign = _mm256_set1_epi32((int)0x80000000u);
    __m256i want[8];
    for (int k = 0; k < 8; k++)
        want[k] = _mm256_set1_epi32((int)(k < n_bins ? bins[k] : bins[0]));
    for (; i + 8 <= n; i += 8) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i key = _mm256_xor_si256(b, _mm256_or_si256(_mm256_srai_epi32(b, 31), sign));
        __m256i top = _mm256_srli_epi32(key, 16);
        __m256i hit = _mm256_cmpeq_epi32(top, want[0]);
        for (int k = 1; k < n_bins; k++)
            hit = _mm256_or_si256(hit, _mm256_cmpeq_epi32(top, want[k]));
        hit = _mm256_andnot_si256(_mm256_cmpeq_epi32(_mm256_and_si256(b, expo), expo), hit);
        unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(hit));
        while (mask) {
            int j = __builtin_ctz(mask);
            mask &= mask - 1;
            select_one(x + i + j, bins, n_bins, low, keys);
        }
    }
#endif
    for (; i < n; i++)
        select_one(x + i, bins, n_bins, low, keys);
}
