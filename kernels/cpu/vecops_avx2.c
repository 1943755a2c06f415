/* AVX2 (+FMA, F16C) vector operations (vecops_internal.h): the reference's operations 8 lanes
 * at a time; the 16-lane sums keep two 8-lane halves (lanes 0-7 and 8-15), so every result has
 * the reference's bits. Tails go through small zero-padded buffers. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu/vecops_internal.h"

static inline float hsum16(__m256 lo, __m256 hi)
{
    const __m256 a = _mm256_add_ps(lo, hi);
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

/* lanes [0, n) set, n in 0..8 */
static inline __m256i lane_mask(int64_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 : (n > 8 ? 8 : n))), idx);
}

static inline __m256 loadn(const float *p, int64_t n)
{
    if (n >= 8)
        return _mm256_loadu_ps(p);
    return _mm256_maskload_ps(p, lane_mask(n));
}

static inline void storen(float *p, int64_t n, __m256 v)
{
    if (n >= 8)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, lane_mask(n), v);
}

static inline __m256 loadh(const uint16_t *p, int64_t n)
{
    if (n >= 8)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
    uint16_t t[8] = {0};
    if (n > 0)
        memcpy(t, p, (size_t)n * 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)t));
}

/* fma on lanes [0, n), the others keep acc */
static inline __m256 fma_n(__m256 a, __m256 b, __m256 acc, int64_t n)
{
    const __m256 f = _mm256_fmadd_ps(a, b, acc);
    if (n >= 8)
        return f;
    return _mm256_blendv_ps(acc, f, _mm256_castsi256_ps(lane_mask(n)));
}

static float dot_f32(int64_t n, const float *a, const float *b)
{
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), hi);
    }
    if (i < n) {
        const int64_t r = n - i;
        lo = fma_n(loadn(a + i, r), loadn(b + i, r), lo, r);
        if (r > 8)
            hi = fma_n(loadn(a + i + 8, r - 8), loadn(b + i + 8, r - 8), hi, r - 8);
    }
    return hsum16(lo, hi);
}

static float dot_f16_f32(int64_t n, const uint16_t *a, const float *b)
{
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        lo = _mm256_fmadd_ps(loadh(a + i, 8), _mm256_loadu_ps(b + i), lo);
        hi = _mm256_fmadd_ps(loadh(a + i + 8, 8), _mm256_loadu_ps(b + i + 8), hi);
    }
    if (i < n) {
        const int64_t r = n - i;
        lo = fma_n(loadh(a + i, r), loadn(b + i, r), lo, r);
        if (r > 8)
            hi = fma_n(loadh(a + i + 8, r - 8), loadn(b + i + 8, r - 8), hi, r - 8);
    }
    return hsum16(lo, hi);
}

static void axpy_f32(int64_t n, float a, const float *x, float *y)
{
    const __m256 av = _mm256_set1_ps(a);
    for (int64_t i = 0; i < n; i += 8)
        storen(y + i, n - i, _mm256_fmadd_ps(av, loadn(x + i, n - i), loadn(y + i, n - i)));
}

static void axpy_f16(int64_t n, float a, const uint16_t *x, float *y)
{
    const __m256 av = _mm256_set1_ps(a);
    for (int64_t i = 0; i < n; i += 8)
        storen(y + i, n - i, _mm256_fmadd_ps(av, loadh(x + i, n - i), loadn(y + i, n - i)));
}

static void add_f32(int64_t n, const float *a, const float *b, float *y)
{
    for (int64_t i = 0; i < n; i += 8)
        storen(y + i, n - i, _mm256_add_ps(loadn(a + i, n - i), loadn(b + i, n - i)));
}

static void scale_f32(int64_t n, float a, float *y)
{
    const __m256 av = _mm256_set1_ps(a);
    for (int64_t i = 0; i < n; i += 8)
        storen(y + i, n - i, _mm256_mul_ps(av, loadn(y + i, n - i)));
}

static float sumsq_f32(int64_t n, const float *x) { return dot_f32(n, x, x); }

static void scale_mul_f32(int64_t n, const float *x, float r, const float *w, float *y)
{
    const __m256 rv = _mm256_set1_ps(r);
    for (int64_t i = 0; i < n; i += 8) {
        __m256 v = _mm256_mul_ps(loadn(x + i, n - i), rv);
        if (w)
            v = _mm256_mul_ps(v, loadn(w + i, n - i));
        storen(y + i, n - i, v);
    }
}

static float max_f32(int64_t n, const float *x)
{
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 m = _mm256_castsi256_ps(lane_mask(n - i));
        /* max(x, cur) keeps cur when x is NaN or not greater; lanes past n keep cur */
        mx = _mm256_blendv_ps(mx, _mm256_max_ps(loadn(x + i, n - i), mx), m);
    }
    float l[8];
    _mm256_storeu_ps(l, mx);
    float m = l[0];
    for (int j = 1; j < 8; j++)
        m = l[j] > m ? l[j] : m;
    return m;
}

static inline __m256 pow2i(__m256i k)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

static inline __m256 exp8(__m256 x)
{
    const __m256 xc =
        _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(RK_EXP_LO)), _mm256_set1_ps(RK_EXP_HI));
    const __m256 z = _mm256_mul_ps(xc, _mm256_set1_ps(RK_EXP_LOG2E));
    const __m256 kf =
        _mm256_sub_ps(_mm256_add_ps(z, _mm256_set1_ps(RK_EXP_SHIFT)), _mm256_set1_ps(RK_EXP_SHIFT));
    __m256 r = _mm256_fmadd_ps(kf, _mm256_set1_ps(-RK_EXP_LN2_HI), xc);
    r = _mm256_fmadd_ps(kf, _mm256_set1_ps(-RK_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(RK_EXP_C7);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(RK_EXP_C6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(RK_EXP_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(RK_EXP_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(RK_EXP_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(RK_EXP_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i k = _mm256_cvttps_epi32(kf);
    const __m256i k1 = _mm256_srai_epi32(k, 1);
    __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, pow2i(k1)), pow2i(_mm256_sub_epi32(k, k1)));
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY),
                         _mm256_cmp_ps(x, _mm256_set1_ps(RK_EXP_OVER), _CMP_GT_OQ));
    e = _mm256_blendv_ps(e, _mm256_setzero_ps(),
                         _mm256_cmp_ps(x, _mm256_set1_ps(RK_EXP_UNDER), _CMP_LT_OQ));
    return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

static float exp_sum_f32(int64_t n, float *x, float mval)
{
    const __m256 mv = _mm256_set1_ps(mval);
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        const int64_t r = n - i;
        const __m256 e = exp8(_mm256_sub_ps(loadn(x + i, r), mv));
        storen(x + i, r, e);
        const __m256 keep = _mm256_castsi256_ps(lane_mask(r));
        if ((i / 8) % 2 == 0)
            lo = _mm256_blendv_ps(lo, _mm256_add_ps(lo, e), keep);
        else
            hi = _mm256_blendv_ps(hi, _mm256_add_ps(hi, e), keep);
    }
    return hsum16(lo, hi);
}

static void silu_mul_f32(int64_t n, const float *g, const float *u, float *y)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 gv = loadn(g + i, n - i);
        const __m256 e = exp8(_mm256_xor_ps(gv, _mm256_set1_ps(-0.0f)));
        storen(y + i, n - i,
               _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)), loadn(u + i, n - i)));
    }
}

static void rope_neox_f32(float *x, int64_t n_heads, int64_t head_dim, const float *c,
                          const float *s)
{
    const int64_t half = head_dim / 2;
    for (int64_t h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim;
        for (int64_t i = 0; i < half; i += 8) {
            const int64_t r = half - i;
            const __m256 a = loadn(v + i, r), b = loadn(v + half + i, r);
            const __m256 cv = loadn(c + i, r), sv = loadn(s + i, r);
            storen(v + i, r, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(b, sv)));
            storen(v + half + i, r, _mm256_add_ps(_mm256_mul_ps(a, sv), _mm256_mul_ps(b, cv)));
        }
    }
}

const rk_vec_ops rk_vec_ops_avx2 = {
    dot_f32,   dot_f16_f32,   axpy_f32, axpy_f16,    add_f32,      scale_f32,
    sumsq_f32, scale_mul_f32, max_f32,  exp_sum_f32, silu_mul_f32, rope_neox_f32,
};
