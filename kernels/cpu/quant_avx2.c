/* AVX2 quantizers and dequantizers: 8-lane primitives for quant_simd_body.h.
 * Every primitive is one IEEE operation per lane (no FMA: the build has -ffp-contract=off and
 * no fused intrinsic is used), so each lane computes what the scalar reference computes. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define VW            8
#define SIMD_FN(name) name##_avx2

typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vm; /* lane mask: all ones or all zeros */

static inline vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline vf vf_set1(float a) { return _mm256_set1_ps(a); }
static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf a) { _mm256_storeu_ps(p, a); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vf_sqrt(vf a) { return _mm256_sqrt_ps(a); }
static inline vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf vf_neg(vf a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
/* x < cur ? x : cur and x > cur ? x : cur: exactly the MINPS / MAXPS rule, NaN included */
static inline vf vf_pick_less(vf x, vf cur) { return _mm256_min_ps(x, cur); }
static inline vf vf_pick_greater(vf x, vf cur) { return _mm256_max_ps(x, cur); }
/* ordered comparisons are false for NaN, like C's relational operators; != is unordered */
static inline vm vf_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vm vf_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vm vf_ne(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
static inline vf vf_select(vm m, vf t, vf f) { return _mm256_blendv_ps(f, t, m); }
static inline vf vf_trunc(vf a)
{
    return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}
static inline vf vf_copysign1(vf a) /* +1 or -1 with the sign of a */
{
    return _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(a, _mm256_set1_ps(-0.0f)));
}
static inline float vf_hmax(vf a) /* for inputs without NaN, where max is order-free */
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline vm vf_nonfinite(vf a)
{
    vi e = _mm256_and_si256(_mm256_castps_si256(a), _mm256_set1_epi32(0x7f800000));
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(e, _mm256_set1_epi32(0x7f800000)));
}

static inline vm vm_and(vm a, vm b) { return _mm256_and_ps(a, b); }
static inline vm vm_or(vm a, vm b) { return _mm256_or_ps(a, b); }
static inline vm vm_andnot(vm a, vm b) { return _mm256_andnot_ps(b, a); } /* a and not b */
static inline int vm_any(vm m) { return _mm256_movemask_ps(m) != 0; }
static inline uint32_t vm_bits(vm m) { return (uint32_t)_mm256_movemask_ps(m); }

static inline vi vi_set1(int32_t a) { return _mm256_set1_epi32(a); }
static inline vi vi_load(const int32_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline void vi_store(int32_t *p, vi a) { _mm256_storeu_si256((__m256i *)p, a); }
static inline vi vi_add(vi a, vi b) { return _mm256_add_epi32(a, b); }
static inline vi vi_sub(vi a, vi b) { return _mm256_sub_epi32(a, b); }
static inline vi vi_and(vi a, vi b) { return _mm256_and_si256(a, b); }
static inline vi vi_or(vi a, vi b) { return _mm256_or_si256(a, b); }
static inline vi vi_shl(vi a, int n) { return _mm256_sll_epi32(a, _mm_cvtsi32_si128(n)); }
static inline vi vi_shr(vi a, int n) { return _mm256_srl_epi32(a, _mm_cvtsi32_si128(n)); }
static inline vi vi_mullo(vi a, vi b) { return _mm256_mullo_epi32(a, b); }
static inline vi vi_min(vi a, vi b) { return _mm256_min_epi32(a, b); }
static inline vi vi_max(vi a, vi b) { return _mm256_max_epi32(a, b); }
static inline vi vi_iota(void) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
static inline vi vi_shrv(vi a, vi n) { return _mm256_srlv_epi32(a, n); }
/* base[idx[lane]] for every lane */
static inline vf vf_gather(const float *base, vi idx) { return _mm256_i32gather_ps(base, idx, 4); }
static inline vi vi_gather(const int32_t *base, vi idx)
{
    return _mm256_i32gather_epi32(base, idx, 4);
}
static inline vm vi_gt(vi a, vi b) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(a, b)); }
static inline vi vi_select(vm m, vi t, vi f)
{
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(f), _mm256_castsi256_ps(t), m));
}
static inline vf vi_to_vf(vi a) { return _mm256_cvtepi32_ps(a); }
static inline vi vf_to_vi_exact(vf a) { return _mm256_cvtps_epi32(a); } /* a already integral */
static inline vi vf_to_vi_trunc(vf a) { return _mm256_cvttps_epi32(a); }
/* ggml-quants.c nearest_int: nearest_int by its bit formula, for every argument */
static inline vi vf_nearest_int(vf f)
{
    vi b = _mm256_castps_si256(_mm256_add_ps(f, _mm256_set1_ps(12582912.f)));
    return _mm256_sub_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x007fffff)),
                            _mm256_set1_epi32(0x00400000));
}
/* VW bytes, zero- or sign-extended to 32 bits */
static inline vi vi_load_u8(const uint8_t *p)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}
static inline vi vi_load_s8(const int8_t *p)
{
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}
/* the low byte of each of 16 int32 (two vectors, values already in 0..255) */
static inline void vi_store_u8x16(uint8_t *dst, const vi *v)
{
    __m256i p = _mm256_packus_epi32(v[0], v[1]); /* a0-3 b0-3 | a4-7 b4-7 */
    p = _mm256_permute4x64_epi64(p, 0xD8);       /* a0-7 | b0-7 */
    __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    _mm_storeu_si128((__m128i *)dst, b);
}
/* 32 int32 in -128..127 (four vectors) as 32 signed bytes */
static inline void vi_store_s8x32(int8_t *dst, const vi *v)
{
    __m256i a = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[0], v[1]), 0xD8);
    __m256i b = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[2], v[3]), 0xD8);
    __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), 0xD8);
    _mm256_storeu_si256((__m256i *)dst, p);
}

/* F16 / BF16 <-> F32 for VW elements (NaN lanes are fixed up by the caller) */
static inline vf vf_from_f16(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
static inline uint32_t f16_nan_lanes(const uint8_t *p)
{
    __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    __m256i mag = _mm256_and_si256(h, _mm256_set1_epi32(0x7fff));
    return (uint32_t)_mm256_movemask_ps(
        _mm256_castsi256_ps(_mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7c00))));
}
static inline void vf_to_f16(uint8_t *p, vf a)
{
    _mm_storeu_si128((__m128i *)p,
                     _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline vf vf_from_bf16(const uint8_t *p)
{
    __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}
static inline void vi_store_u16(uint8_t *p, vi a) /* low 16 bits of each lane */
{
    __m256i s = _mm256_shuffle_epi8(a, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1,
                                                        -1, -1, -1, -1, 0, 1, 4, 5, 8, 9, 12, 13,
                                                        -1, -1, -1, -1, -1, -1, -1, -1));
    s = _mm256_permute4x64_epi64(s, 0x08);
    _mm_storeu_si128((__m128i *)p, _mm256_castsi256_si128(s));
}
static inline vi vf_bits(vf a) { return _mm256_castps_si256(a); }

#include "cpu/quant_simd_body.h"
