/* AVX-512 quantizers and dequantizers: 16-lane primitives for quant_simd_body.h.
 * Every primitive is one IEEE operation per lane (no FMA: the build has -ffp-contract=off and
 * no fused intrinsic is used), so each lane computes what the scalar reference computes. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define VW            16
#define SIMD_FN(name) name##_avx512

typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vm;

static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_set1(float a) { return _mm512_set1_ps(a); }
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf a) { _mm512_storeu_ps(p, a); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vf_sqrt(vf a) { return _mm512_sqrt_ps(a); }
static inline vf vf_abs(vf a)
{
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)));
}
static inline vf vf_neg(vf a)
{
    return _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int32_t)0x80000000u)));
}
/* x < cur ? x : cur and x > cur ? x : cur: exactly the VMINPS / VMAXPS rule, NaN included */
static inline vf vf_pick_less(vf x, vf cur) { return _mm512_min_ps(x, cur); }
static inline vf vf_pick_greater(vf x, vf cur) { return _mm512_max_ps(x, cur); }
/* ordered comparisons are false for NaN, like C's relational operators; != is unordered */
static inline vm vf_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vm vf_ge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vm vf_ne(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }
static inline vf vf_select(vm m, vf t, vf f) { return _mm512_mask_blend_ps(m, f, t); }
static inline vf vf_trunc(vf a)
{
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}
static inline vf vf_copysign1(vf a) /* +1 or -1 with the sign of a */
{
    return _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(_mm512_set1_ps(1.0f)),
        _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int32_t)0x80000000u))));
}
static inline float vf_hmax(vf a) { return _mm512_reduce_max_ps(a); } /* inputs without NaN */
static inline vm vf_nonfinite(vf a)
{
    vi e = _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7f800000));
    return _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(0x7f800000));
}

static inline vm vm_and(vm a, vm b) { return (vm)(a & b); }
static inline vm vm_or(vm a, vm b) { return (vm)(a | b); }
static inline vm vm_andnot(vm a, vm b) { return (vm)(a & ~b); } /* a and not b */
static inline int vm_any(vm m) { return m != 0; }
static inline uint32_t vm_bits(vm m) { return (uint32_t)m; }

static inline vi vi_set1(int32_t a) { return _mm512_set1_epi32(a); }
static inline vi vi_load(const int32_t *p) { return _mm512_loadu_si512(p); }
static inline void vi_store(int32_t *p, vi a) { _mm512_storeu_si512(p, a); }
static inline vi vi_add(vi a, vi b) { return _mm512_add_epi32(a, b); }
static inline vi vi_sub(vi a, vi b) { return _mm512_sub_epi32(a, b); }
static inline vi vi_and(vi a, vi b) { return _mm512_and_si512(a, b); }
static inline vi vi_or(vi a, vi b) { return _mm512_or_si512(a, b); }
static inline vi vi_shl(vi a, int n) { return _mm512_sll_epi32(a, _mm_cvtsi32_si128(n)); }
static inline vi vi_shr(vi a, int n) { return _mm512_srl_epi32(a, _mm_cvtsi32_si128(n)); }
static inline vi vi_mullo(vi a, vi b) { return _mm512_mullo_epi32(a, b); }
static inline vi vi_min(vi a, vi b) { return _mm512_min_epi32(a, b); }
static inline vi vi_max(vi a, vi b) { return _mm512_max_epi32(a, b); }
static inline vi vi_iota(void)
{
    return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
static inline vi vi_shrv(vi a, vi n) { return _mm512_srlv_epi32(a, n); }
/* base[idx[lane]] for every lane */
static inline vf vf_gather(const float *base, vi idx) { return _mm512_i32gather_ps(idx, base, 4); }
static inline vi vi_gather(const int32_t *base, vi idx)
{
    return _mm512_i32gather_epi32(idx, base, 4);
}
static inline vm vi_gt(vi a, vi b) { return _mm512_cmpgt_epi32_mask(a, b); }
static inline vi vi_select(vm m, vi t, vi f) { return _mm512_mask_blend_epi32(m, f, t); }
static inline vf vi_to_vf(vi a) { return _mm512_cvtepi32_ps(a); }
static inline vi vf_to_vi_exact(vf a) { return _mm512_cvtps_epi32(a); } /* a already integral */
static inline vi vf_to_vi_trunc(vf a) { return _mm512_cvttps_epi32(a); }
/* ggml-quants.c nearest_int: nearest_int by its bit formula, for every argument */
static inline vi vf_nearest_int(vf f)
{
    vi b = _mm512_castps_si512(_mm512_add_ps(f, _mm512_set1_ps(12582912.f)));
    return _mm512_sub_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0x007fffff)),
                            _mm512_set1_epi32(0x00400000));
}
/* VW bytes, zero- or sign-extended to 32 bits */
static inline vi vi_load_u8(const uint8_t *p)
{
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
}
static inline vi vi_load_s8(const int8_t *p)
{
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p));
}
/* the low byte of each of 16 int32 (one vector, values already in 0..255) */
static inline void vi_store_u8x16(uint8_t *dst, const vi *v)
{
    _mm_storeu_si128((__m128i *)dst, _mm512_cvtepi32_epi8(v[0]));
}
/* 32 int32 in -128..127 (two vectors) as 32 signed bytes */
static inline void vi_store_s8x32(int8_t *dst, const vi *v)
{
    _mm_storeu_si128((__m128i *)dst, _mm512_cvtepi32_epi8(v[0]));
    _mm_storeu_si128((__m128i *)(dst + 16), _mm512_cvtepi32_epi8(v[1]));
}

/* F16 / BF16 <-> F32 for VW elements (NaN lanes are fixed up by the caller) */
static inline vf vf_from_f16(const uint8_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
static inline uint32_t f16_nan_lanes(const uint8_t *p)
{
    __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    __m512i mag = _mm512_and_si512(h, _mm512_set1_epi32(0x7fff));
    return (uint32_t)_mm512_cmpgt_epi32_mask(mag, _mm512_set1_epi32(0x7c00));
}
static inline void vf_to_f16(uint8_t *p, vf a)
{
    _mm256_storeu_si256((__m256i *)p,
                        _mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline vf vf_from_bf16(const uint8_t *p)
{
    __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
}
static inline void vi_store_u16(uint8_t *p, vi a) /* low 16 bits of each lane */
{
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(a));
}
static inline vi vf_bits(vf a) { return _mm512_castps_si512(a); }

#include "cpu/quant_simd_body.h"
