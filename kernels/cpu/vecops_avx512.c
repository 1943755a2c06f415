/* AVX-512 vector operations (vecops_internal.h): the reference's operations 16 lanes at a time,
 * so every result has the reference's bits; tails use masked loads and masked updates. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "cpu/vecops_internal.h"

static inline __mmask16 tail_mask(int64_t n) { return (__mmask16)((1u << n) - 1u); }

/* the 16-lane reduction: l + 8, l + 4, l + 2, l + 1 */
static inline float hsum16(__m512 v)
{
    const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

static inline __m512 load_h(const uint16_t *p, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static float dot_f32(int64_t n, const float *a, const float *b)
{
    __m512 s = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        s = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s);
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        s = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i),
                                  s, m);
    }
    return hsum16(s);
}

static float dot_f16_f32(int64_t n, const uint16_t *a, const float *b)
{
    __m512 s = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        s = _mm512_fmadd_ps(load_h(a + i, 0xffff), _mm512_loadu_ps(b + i), s);
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        s = _mm512_mask3_fmadd_ps(load_h(a + i, m), _mm512_maskz_loadu_ps(m, b + i), s, m);
    }
    return hsum16(s);
}

static void axpy_f32(int64_t n, float a, const float *x, float *y)
{
    const __m512 av = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        const __m512 r =
            _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

static void axpy_f16(int64_t n, float a, const uint16_t *x, float *y)
{
    const __m512 av = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        const __m512 r = _mm512_fmadd_ps(av, load_h(x + i, m), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

static void add_f32(int64_t n, const float *a, const float *b, float *y)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        _mm512_mask_storeu_ps(
            y + i, m,
            _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
}

static void scale_f32(int64_t n, float a, float *y)
{
    const __m512 av = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(av, _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static float sumsq_f32(int64_t n, const float *x) { return dot_f32(n, x, x); }

static void scale_mul_f32(int64_t n, const float *x, float r, const float *w, float *y)
{
    const __m512 rv = _mm512_set1_ps(r);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), rv);
        if (w)
            v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static float max_f32(int64_t n, const float *x)
{
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        /* max(x, cur) keeps cur when x is NaN or not greater: the reference's x > m ? x : m */
        mx = _mm512_mask_max_ps(mx, m, _mm512_maskz_loadu_ps(m, x + i), mx);
    }
    return _mm512_reduce_max_ps(mx);
}

static inline __m512 pow2i(__m512i k)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(127)), 23));
}

static inline __m512 exp16(__m512 x)
{
    const __m512 xc =
        _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(RK_EXP_LO)), _mm512_set1_ps(RK_EXP_HI));
    const __m512 z = _mm512_mul_ps(xc, _mm512_set1_ps(RK_EXP_LOG2E));
    const __m512 kf =
        _mm512_sub_ps(_mm512_add_ps(z, _mm512_set1_ps(RK_EXP_SHIFT)), _mm512_set1_ps(RK_EXP_SHIFT));
    __m512 r = _mm512_fmadd_ps(kf, _mm512_set1_ps(-RK_EXP_LN2_HI), xc);
    r = _mm512_fmadd_ps(kf, _mm512_set1_ps(-RK_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(RK_EXP_C7);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(RK_EXP_C6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(RK_EXP_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(RK_EXP_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(RK_EXP_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(RK_EXP_C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i k = _mm512_cvttps_epi32(kf);
    const __m512i k1 = _mm512_srai_epi32(k, 1);
    __m512 e = _mm512_mul_ps(_mm512_mul_ps(p, pow2i(k1)), pow2i(_mm512_sub_epi32(k, k1)));
    e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(RK_EXP_OVER), _CMP_GT_OQ), e,
                             _mm512_set1_ps(INFINITY));
    e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(RK_EXP_UNDER), _CMP_LT_OQ), e,
                             _mm512_setzero_ps());
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), e, x);
}

static float exp_sum_f32(int64_t n, float *x, float mval)
{
    const __m512 mv = _mm512_set1_ps(mval);
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv));
        _mm512_mask_storeu_ps(x + i, m, e);
        s = _mm512_mask_add_ps(s, m, s, e);
    }
    return hsum16(s);
}

static void silu_mul_f32(int64_t n, const float *g, const float *u, float *y)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        const __m512 gv = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 e = exp16(_mm512_xor_ps(gv, _mm512_set1_ps(-0.0f)));
        const __m512 v = _mm512_mul_ps(_mm512_div_ps(gv, _mm512_add_ps(one, e)),
                                       _mm512_maskz_loadu_ps(m, u + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static void rope_neox_f32(float *x, int64_t n_heads, int64_t head_dim, const float *c,
                          const float *s)
{
    const int64_t half = head_dim / 2;
    for (int64_t h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim;
        for (int64_t i = 0; i < half; i += 16) {
            const __mmask16 m = half - i >= 16 ? (__mmask16)0xffff : tail_mask(half - i);
            const __m512 a = _mm512_maskz_loadu_ps(m, v + i);
            const __m512 b = _mm512_maskz_loadu_ps(m, v + half + i);
            const __m512 cv = _mm512_maskz_loadu_ps(m, c + i);
            const __m512 sv = _mm512_maskz_loadu_ps(m, s + i);
            _mm512_mask_storeu_ps(v + i, m,
                                  _mm512_sub_ps(_mm512_mul_ps(a, cv), _mm512_mul_ps(b, sv)));
            _mm512_mask_storeu_ps(v + half + i, m,
                                  _mm512_add_ps(_mm512_mul_ps(a, sv), _mm512_mul_ps(b, cv)));
        }
    }
}

const rk_vec_ops rk_vec_ops_avx512 = {
    dot_f32,   dot_f16_f32,   axpy_f32, axpy_f16,    add_f32,      scale_f32,
    sumsq_f32, scale_mul_f32, max_f32,  exp_sum_f32, silu_mul_f32, rope_neox_f32,
};
