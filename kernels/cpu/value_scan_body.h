/* The body of the value_scan.h kernels, included once per variant with SCAN_FN(name) naming
 * the function, with SCAN_SCALAR defined: the scalar reference, which defines the lane order (the
 * SIMD variants implement the same order, and the same counts, with intrinsics in
 * value_scan_x86.h). No reassociation, no fused operations (the build uses
 * -ffp-contract=off and never -ffast-math). */
#include <string.h>

#include "value_scan.h"

#define L RK_SCAN_LANES

static inline uint32_t scan_bits(float v)
{
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static inline double combine(const double *s)
{
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

#ifdef SCAN_SCALAR
void SCAN_FN(rk_value_scan)(const float *x, int64_t n, rk_scan *out)
{
    double sum[L] = {0}, sq[L] = {0};
    uint32_t lo[L], hi[L], low_or[L] = {0};
    uint64_t nonfinite[L] = {0}, nan[L] = {0}, zeros[L] = {0};
    for (int j = 0; j < L; j++) {
        lo[j] = UINT32_MAX;
        hi[j] = 0;
    }
    int64_t i = 0;
    for (; i + L <= n; i += L) {
        for (int j = 0; j < L; j++) {
            uint32_t b = scan_bits(x[i + j]);
            uint32_t nf = (b & 0x7f800000u) == 0x7f800000u;
            uint32_t key = b ^ ((0u - (b >> 31)) | 0x80000000u);
            double d = nf ? 0.0 : (double)x[i + j];
            sum[j] += d;
            sq[j] += d * d;
            uint32_t kmin = nf ? UINT32_MAX : key, kmax = nf ? 0 : key;
            lo[j] = kmin < lo[j] ? kmin : lo[j];
            hi[j] = kmax > hi[j] ? kmax : hi[j];
            low_or[j] |= nf ? 0 : b;
            nonfinite[j] += nf;
            nan[j] += nf & ((b & 0x007fffffu) != 0);
            zeros[j] += (b & 0x7fffffffu) == 0;
        }
    }
    for (int j = 0; i < n; i++, j++) {
        uint32_t b = scan_bits(x[i]);
        uint32_t nf = (b & 0x7f800000u) == 0x7f800000u;
        uint32_t key = b ^ ((0u - (b >> 31)) | 0x80000000u);
        double d = nf ? 0.0 : (double)x[i];
        sum[j] += d;
        sq[j] += d * d;
        uint32_t kmin = nf ? UINT32_MAX : key, kmax = nf ? 0 : key;
        lo[j] = kmin < lo[j] ? kmin : lo[j];
        hi[j] = kmax > hi[j] ? kmax : hi[j];
        low_or[j] |= nf ? 0 : b;
        nonfinite[j] += nf;
        nan[j] += nf & ((b & 0x007fffffu) != 0);
        zeros[j] += (b & 0x7fffffffu) == 0;
    }
    memset(out, 0, sizeof *out);
    out->min_key = UINT32_MAX;
    for (int j = 0; j < L; j++) {
        out->nonfinite += nonfinite[j];
        out->nan += nan[j];
        out->zeros += zeros[j];
        out->min_key = lo[j] < out->min_key ? lo[j] : out->min_key;
        out->max_key = hi[j] > out->max_key ? hi[j] : out->max_key;
        out->low_or |= low_or[j];
    }
    out->low_or &= 0xffffu;
    out->sum = combine(sum);
    out->sumsq = combine(sq);
}

double SCAN_FN(rk_value_m2)(const float *x, int64_t n, double mean)
{
    double m2[L] = {0};
    int64_t i = 0;
    for (; i + L <= n; i += L) {
        for (int j = 0; j < L; j++) {
            uint32_t nf = (scan_bits(x[i + j]) & 0x7f800000u) == 0x7f800000u;
            double d = nf ? 0.0 : (double)x[i + j] - mean;
            m2[j] += d * d;
        }
    }
    for (int j = 0; i < n; i++, j++) {
        uint32_t nf = (scan_bits(x[i]) & 0x7f800000u) == 0x7f800000u;
        double d = nf ? 0.0 : (double)x[i] - mean;
        m2[j] += d * d;
    }
    return combine(m2);
}

#endif

#ifdef SCAN_SCALAR
/* Blocks of 64 values: flag the values in a wanted bin (vectorized compares), list the flagged
 * positions without branches, then count only those. */
void SCAN_FN(rk_value_select)(const float *x, int64_t n, const uint32_t *bins, int n_bins,
                              uint64_t (*low)[65536], uint32_t **keys)
{
    enum { BLOCK = 64 };
    uint32_t want[8];
    for (int k = 0; k < 8; k++)
        want[k] = k < n_bins ? bins[k] : bins[0];
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
        int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
        uint32_t hit[BLOCK], any = 0;
        for (int64_t i = 0; i < m; i++) {
            uint32_t b = scan_bits(x[i0 + i]);
            uint32_t key = b ^ ((0u - (b >> 31)) | 0x80000000u);
            uint32_t top = key >> 16, h = 0;
            for (int k = 0; k < 8; k++)
                h |= top == want[k];
            h &= (b & 0x7f800000u) != 0x7f800000u;
            hit[i] = h;
            any |= h;
        }
        if (!any)
            continue;
        uint32_t pos[BLOCK] = {0}, count = 0;
        for (uint32_t i = 0; i < (uint32_t)m; i++) {
            pos[count] = i;
            count += hit[i];
        }
        for (uint32_t c = 0; c < count; c++) {
            uint32_t b = scan_bits(x[i0 + pos[c]]);
            uint32_t key = b ^ ((0u - (b >> 31)) | 0x80000000u);
            int k = 0;
            while (k < n_bins - 1 && key >> 16 != bins[k])
                k++;
            if (keys)
                *keys[k]++ = key;
            else
                low[k][key & 0xffffu]++;
        }
    }
}
#endif

#undef L
