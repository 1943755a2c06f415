/* AVX-512 matmul kernels, compiled twice: matmul_avx512.c (RK_VNNI 0: vpmaddubsw + vpmaddwd)
 * and matmul_avx512vnni.c (RK_VNNI 1: vpdpbusd / vpdpwssd). Every kernel computes rk math
 * (matmul.h) and returns the scalar reference's bits: exact integer sums, then the reference's
 * float operations per row, in lanes (one row per lane, 16 rows per vector).
 * Not for: inclusion anywhere else. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "common/half.h"
#include "cpu/matmul_internal.h"

#define PANEL_R 16
#include "cpu/matmul_panel.h"

#if RK_VNNI
#define MM_FN(name) name##_avx512vnni
static inline __m512i dot_u8s8(__m512i acc, __m512i u, __m512i s)
{
    return _mm512_dpbusd_epi32(acc, u, s);
}
static inline __m512i dot_s16(__m512i acc, __m512i a, __m512i b)
{
    return _mm512_dpwssd_epi32(acc, a, b);
}
#else
#define MM_FN(name) name##_avx512
/* u8 x s8 products summed in groups of 4; exact while 2 * u * |s| <= 32767 (u <= 128) */
static inline __m512i dot_u8s8(__m512i acc, __m512i u, __m512i s)
{
    const __m512i p16 = _mm512_maddubs_epi16(u, s);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p16, _mm512_set1_epi16(1)));
}
static inline __m512i dot_s16(__m512i acc, __m512i a, __m512i b)
{
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}
#endif

/* s8 x s8 in groups of 4 (8-bit weights): |w| as the unsigned operand, x with w's sign */
static inline __m512i dot_s8s8(__m512i acc, __m512i w, __m512i x)
{
    const __m512i aw = _mm512_abs_epi8(w);
    const __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
    return dot_u8s8(acc, aw, sx);
}

static inline uint32_t load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline float load_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static inline __mmask16 row_mask(int nr) { return (__mmask16)((1u << nr) - 1u); }

/* ---- GEMM over a decoded panel ------------------------------------------------------------- */

#define GEMM_C 4 /* columns per register tile */

/* acc[c] for the rows of the panel: loaded from y (or 0 for the first chunk), stored back. */
static inline void acc_load(__m512 acc[GEMM_C], float *const yc[GEMM_C], __mmask16 m, int first)
{
    for (int c = 0; c < GEMM_C; c++)
        acc[c] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, yc[c]);
}

static inline void acc_store(const __m512 acc[GEMM_C], float *const yc[GEMM_C], __mmask16 m, int nc)
{
    for (int c = 0; c < nc; c++)
        _mm512_mask_storeu_ps(yc[c], m, acc[c]);
}

/* 32-element blocks against Q8_0 (or Q8_1 for the _MIN kind): n_blk blocks of the chunk
 * starting at activation block b0. xs[c] = activation row of column c. */
static void gemm_blk32(const rk_panel *p, panel_info info, int n_blk, int64_t b0, int64_t nb,
                       const uint8_t *const xs[GEMM_C], __m512 acc[GEMM_C])
{
    const int min = info.kind == PANEL_BLK32_MIN;
    const size_t ab = min ? 36 : 34; /* activation block bytes */
    const size_t aq = min ? 4 : 2;   /* offset of the quants in it */
    for (int b = 0; b < n_blk; b++) {
        const int64_t ba = b0 + b;
        __m512i isum[GEMM_C];
        for (int c = 0; c < GEMM_C; c++) {
            int32_t init = 0;
            if (info.bias) {
                const int32_t xsum = (int32_t)load_u32(rk_act_q8_0_sums_at(xs[c], nb) + 4 * ba);
                init = -info.bias * xsum;
            }
            isum[c] = _mm512_set1_epi32(init);
        }
        const uint8_t *q = p->q + (size_t)b * 8 * 64;
        for (int g = 0; g < 8; g++) {
            const __m512i wv = _mm512_load_si512((const void *)(q + g * 64));
            for (int c = 0; c < GEMM_C; c++) {
                const __m512i xv =
                    _mm512_set1_epi32((int32_t)load_u32(xs[c] + ba * ab + aq + 4 * g));
                isum[c] = info.signed_w ? dot_s8s8(isum[c], wv, xv) : dot_u8s8(isum[c], wv, xv);
            }
        }
        const __m512 dw = _mm512_load_ps(p->d[b]);
        for (int c = 0; c < GEMM_C; c++) {
            const float dx = load_f16(xs[c] + ba * ab);
            const __m512 t = _mm512_mul_ps(dw, _mm512_set1_ps(dx));
            const __m512 fi = _mm512_cvtepi32_ps(isum[c]);
            if (min) {
                const float sx = load_f16(xs[c] + ba * ab + 2);
                const __m512 u =
                    _mm512_add_ps(_mm512_mul_ps(t, fi),
                                  _mm512_mul_ps(_mm512_load_ps(p->m[b]), _mm512_set1_ps(sx)));
                acc[c] = _mm512_add_ps(acc[c], u);
            } else {
                acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(fi, t));
            }
        }
    }
}

/* K-quants against Q8_K: n_sb super-blocks starting at activation super-block s0. */
static void gemm_kquant(const rk_panel *p, panel_info info, int n_sb, int64_t s0,
                        const uint8_t *const xs[GEMM_C], __m512 acc[GEMM_C])
{
    const int nsub = 256 / info.sub, groups = info.sub / 4;
    for (int s = 0; s < n_sb; s++) {
        const int64_t sa = s0 + s;
        const uint8_t *xq[GEMM_C];
        for (int c = 0; c < GEMM_C; c++)
            xq[c] = xs[c] + sa * 292 + 4;
        __m512i isum[GEMM_C], msum[GEMM_C];
        for (int c = 0; c < GEMM_C; c++) {
            isum[c] = _mm512_setzero_si512();
            msum[c] = _mm512_setzero_si512();
        }
        const uint8_t *q = p->q + (size_t)s * 256 * 16;
        for (int j = 0; j < nsub; j++) {
            __m512i t[GEMM_C];
            for (int c = 0; c < GEMM_C; c++)
                t[c] = _mm512_setzero_si512();
            for (int g = 0; g < groups; g++) {
                const int e = j * info.sub + 4 * g;
                const __m512i wv = _mm512_load_si512((const void *)(q + (e / 4) * 64));
                for (int c = 0; c < GEMM_C; c++)
                    t[c] = dot_u8s8(t[c], wv, _mm512_set1_epi32((int32_t)load_u32(xq[c] + e)));
            }
            const __m512i scv = _mm512_load_si512((const void *)p->sc[s][j]);
            for (int c = 0; c < GEMM_C; c++)
                isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(t[c], scv));
        }
        for (int i = 0; i < 8; i++) {
            const __m512i mv = _mm512_load_si512((const void *)p->mn[s][i]);
            for (int c = 0; c < GEMM_C; c++) {
                const uint8_t *bs = xs[c] + sa * 292 + 260 + 4 * i;
                msum[c] = dot_s16(msum[c], mv, _mm512_set1_epi32((int32_t)load_u32(bs)));
            }
        }
        const __m512 dw = _mm512_load_ps(p->d[s]);
        for (int c = 0; c < GEMM_C; c++) {
            const __m512 dx = _mm512_set1_ps(load_f32(xs[c] + sa * 292));
            const __m512 dd = _mm512_mul_ps(dw, dx);
            if (info.kind == PANEL_KQ_MIN) {
                const __m512 dm = _mm512_mul_ps(_mm512_load_ps(p->m[s]), dx);
                const __m512 u = _mm512_sub_ps(_mm512_mul_ps(dd, _mm512_cvtepi32_ps(isum[c])),
                                               _mm512_mul_ps(dm, _mm512_cvtepi32_ps(msum[c])));
                acc[c] = _mm512_add_ps(acc[c], u);
            } else {
                const __m512i it = _mm512_sub_epi32(isum[c], msum[c]);
                acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(dd, _mm512_cvtepi32_ps(it)));
            }
        }
    }
}

static void gemm_quant(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    const panel_info info = panel_info_of(w->type, RK_VNNI);
    const int kq = info.kind == PANEL_KQ_MIN || info.kind == PANEL_KQ_BIAS;
    const int64_t nb = w->k / 32;
    _Alignas(64) rk_panel panel;
    for (int64_t rt = r0; rt < r1; rt += PANEL_R) {
        const int nr = (int)(r1 - rt < PANEL_R ? r1 - rt : PANEL_R);
        const __mmask16 m = row_mask(nr);
        for (int64_t k0 = 0; k0 < w->k; k0 += RK_PANEL_K) {
            const int kn = (int)(w->k - k0 < RK_PANEL_K ? w->k - k0 : RK_PANEL_K);
            panel_decode(&panel, w, rt, nr, k0, kn, info);
            for (int64_t c0 = 0; c0 < n_cols; c0 += GEMM_C) {
                const int nc = (int)(n_cols - c0 < GEMM_C ? n_cols - c0 : GEMM_C);
                const uint8_t *xs[GEMM_C];
                float *yc[GEMM_C];
                for (int c = 0; c < GEMM_C; c++) {
                    const int64_t cc = c0 + (c < nc ? c : nc - 1);
                    xs[c] = act + (size_t)cc * act_stride;
                    yc[c] = y + (size_t)cc * y_stride + (size_t)rt;
                }
                __m512 acc[GEMM_C];
                acc_load(acc, yc, m, k0 == 0);
                if (kq)
                    gemm_kquant(&panel, info, kn / 256, k0 / 256, xs, acc);
                else
                    gemm_blk32(&panel, info, kn / 32, k0 / 32, nb, xs, acc);
                acc_store(acc, yc, m, nc);
            }
        }
    }
}

/* ---- float weights: 16-lane dot products -------------------------------------------------- */

/* 16 weights of row at element i as floats (masked lanes 0). */
static inline __m512 load_w16(rk_type type, const uint8_t *row, int64_t i, __mmask16 m)
{
    switch (type) {
    case RK_TYPE_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
    case RK_TYPE_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * i)), 16));
    case RK_TYPE_F32:
    case RK_TYPE_Q4_0:
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_0:
    case RK_TYPE_Q5_1:
    case RK_TYPE_Q8_0:
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q2_K:
    case RK_TYPE_Q3_K:
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K:
    case RK_TYPE_Q6_K:
    case RK_TYPE_Q8_K:
    case RK_TYPE_APR_Q4:
    case RK_TYPE_APR_Q8: break;
    }
    return _mm512_maskz_loadu_ps(m, row + 4 * i);
}

/* The fixed reduction of the 16 lanes: l + 8, l + 4, l + 2, l + 1. */
static inline float hsum16(__m512 v)
{
    const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

#define FLOAT_R 4 /* rows per register tile */

static void gemm_float(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    const int64_t k = w->k;
    for (int64_t rt = r0; rt < r1; rt += FLOAT_R) {
        const int nr = (int)(r1 - rt < FLOAT_R ? r1 - rt : FLOAT_R);
        const uint8_t *rows[FLOAT_R];
        for (int r = 0; r < FLOAT_R; r++)
            rows[r] =
                (const uint8_t *)w->data + (size_t)(rt + (r < nr ? r : nr - 1)) * w->row_stride;
        for (int64_t c0 = 0; c0 < n_cols; c0 += GEMM_C) {
            const int nc = (int)(n_cols - c0 < GEMM_C ? n_cols - c0 : GEMM_C);
            const float *xs[GEMM_C];
            for (int c = 0; c < GEMM_C; c++)
                xs[c] = (const float *)(const void *)(act + (size_t)(c0 + (c < nc ? c : nc - 1)) *
                                                                act_stride);
            __m512 acc[FLOAT_R][GEMM_C];
            for (int r = 0; r < FLOAT_R; r++)
                for (int c = 0; c < GEMM_C; c++)
                    acc[r][c] = _mm512_setzero_ps();
            for (int64_t i = 0; i < k; i += 16) {
                const __mmask16 m = k - i >= 16 ? (__mmask16)0xffff : row_mask((int)(k - i));
                __m512 xv[GEMM_C];
                for (int c = 0; c < GEMM_C; c++)
                    xv[c] = _mm512_maskz_loadu_ps(m, xs[c] + i);
                for (int r = 0; r < FLOAT_R; r++) {
                    const __m512 wv = load_w16(w->type, rows[r], i, m);
                    for (int c = 0; c < GEMM_C; c++)
                        acc[r][c] = _mm512_mask3_fmadd_ps(wv, xv[c], acc[r][c], m);
                }
            }
            for (int c = 0; c < nc; c++)
                for (int r = 0; r < nr; r++)
                    y[(size_t)(c0 + c) * y_stride + (size_t)(rt + r)] = hsum16(acc[r][c]);
        }
    }
}

static void matvec_float(const rk_matrix *w, int64_t r0, int64_t r1, const float *x, float *y)
{
    const int64_t k = w->k;
    for (int64_t rt = r0; rt < r1; rt += FLOAT_R) {
        const int nr = (int)(r1 - rt < FLOAT_R ? r1 - rt : FLOAT_R);
        const uint8_t *rows[FLOAT_R];
        for (int r = 0; r < FLOAT_R; r++)
            rows[r] =
                (const uint8_t *)w->data + (size_t)(rt + (r < nr ? r : nr - 1)) * w->row_stride;
        __m512 acc[FLOAT_R];
        for (int r = 0; r < FLOAT_R; r++)
            acc[r] = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= k; i += 16) {
            const __m512 xv = _mm512_loadu_ps(x + i);
            for (int r = 0; r < FLOAT_R; r++)
                acc[r] = _mm512_fmadd_ps(load_w16(w->type, rows[r], i, 0xffff), xv, acc[r]);
        }
        if (i < k) {
            const __mmask16 m = row_mask((int)(k - i));
            const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
            for (int r = 0; r < FLOAT_R; r++)
                acc[r] = _mm512_mask3_fmadd_ps(load_w16(w->type, rows[r], i, m), xv, acc[r], m);
        }
        for (int r = 0; r < nr; r++)
            y[rt + r] = hsum16(acc[r]);
    }
}

/* ---- entry points ---------------------------------------------------------------------------- */

static int is_float_type(rk_type t)
{
    return t == RK_TYPE_F32 || t == RK_TYPE_F16 || t == RK_TYPE_BF16;
}

void MM_FN(rk_mm_gemm)(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    if (is_float_type(w->type))
        gemm_float(w, r0, r1, act, act_stride, n_cols, y, y_stride);
    else
        gemm_quant(w, r0, r1, act, act_stride, n_cols, y, y_stride);
}

void MM_FN(rk_mm_matvec)(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                         size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    for (int64_t c = 0; c < n_cols; c++) {
        const uint8_t *x = act + (size_t)c * act_stride;
        float *yc = y + (size_t)c * y_stride;
        if (is_float_type(w->type))
            matvec_float(w, r0, r1, (const float *)(const void *)x, yc);
        else
            gemm_quant(w, r0, r1, x, act_stride, 1, yc, y_stride);
    }
}
