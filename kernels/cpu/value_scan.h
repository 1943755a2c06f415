/* Chunk kernels of the value statistics (libformat/src/value_stats.c, docs/fingerprint.md):
 * counts, extremes, sums and the percentile histograms of F32 values, in a summation order that
 * is part of the definition, so every variant (scalar, AVX2, AVX-512) gives the same bits.
 *
 * Order: element i of a chunk belongs to lane i % RK_SCAN_LANES; each lane sums its elements in
 * index order (in double, products rounded before the add: no FMA); the lanes are then added as
 * ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). NaN and +-Inf add nothing.
 * Keys: the bits b of a value map to b ^ ((0 - (b >> 31)) | 0x80000000) (all bits flipped when
 * the sign is set, else the sign bit set), which orders keys as the values (-0 before +0).
 * Not for: choosing a variant (value_stats.c does, from rk_simd_active()). */
#ifndef RK_VALUE_SCAN_H
#define RK_VALUE_SCAN_H

#include <stdint.h>

#define RK_SCAN_LANES 8

typedef struct rk_scan {
    uint64_t nonfinite, nan, zeros;
    uint32_t min_key, max_key; /* over finite values; UINT32_MAX / 0 when there are none */
    uint32_t low_or;           /* OR of the low 16 bits of the finite values' bits */
    double sum, sumsq;         /* of the finite values, in the lane order above */
} rk_scan;

/* Scans x[0..n). */
void rk_value_scan_ref(const float *x, int64_t n, rk_scan *out);
void rk_value_scan_avx2(const float *x, int64_t n, rk_scan *out);
void rk_value_scan_avx512(const float *x, int64_t n, rk_scan *out);

/* Sum of (x - mean)^2 over the finite values of x[0..n), in the lane order above. */
double rk_value_m2_ref(const float *x, int64_t n, double mean);
double rk_value_m2_avx2(const float *x, int64_t n, double mean);
double rk_value_m2_avx512(const float *x, int64_t n, double mean);

/* Pass 2 of the percentiles: for each finite value whose key's top 16 bits equal bins[k]
 * (k < n_bins <= 8), in index order: when keys is NULL, low[k][key & 0xffff] += 1; else the key
 * is stored at *keys[k]++ (the caller sized each list from the pass-1 counts; low is unused). */
void rk_value_select_ref(const float *x, int64_t n, const uint32_t *bins, int n_bins,
                         uint64_t (*low)[65536], uint32_t **keys);
void rk_value_select_avx2(const float *x, int64_t n, const uint32_t *bins, int n_bins,
                          uint64_t (*low)[65536], uint32_t **keys);
void rk_value_select_avx512(const float *x, int64_t n, const uint32_t *bins, int n_bins,
                            uint64_t (*low)[65536], uint32_t **keys);

#endif
