/* AVX2 (+FMA, F16C) matmul kernels: rk math (matmul.h) with 8 rows per vector, returning the
 * scalar reference's bits (exact integer sums via vpmaddubsw / vpmaddwd, then the reference's
 * float operations lane by lane). Not for: CPUs without AVX2, FMA and F16C. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "common/half.h"
#include "cpu/matmul_internal.h"

#define PANEL_R 8
#include "cpu/matmul_panel.h"

/* u8 x s8 products summed in groups of 4; exact while u <= 128 */
static inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s)
{
    const __m256i p16 = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

static inline __m256i dot_s8s8(__m256i acc, __m256i w, __m256i x)
{
    return dot_u8s8(acc, _mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
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

/* lanes [0, n) set */
static inline __m256i lane_mask(int n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

/* ---- GEMM over a decoded panel ------------------------------------------------------------- */

#define GEMM_C 4

static inline void acc_load(__m256 acc[GEMM_C], float *const yc[GEMM_C], __m256i m, int first)
{
    for (int c = 0; c < GEMM_C; c++)
        acc[c] = first ? _mm256_setzero_ps() : _mm256_maskload_ps(yc[c], m);
}

static inline void acc_store(const __m256 acc[GEMM_C], float *const yc[GEMM_C], __m256i m, int nc)
{
    for (int c = 0; c < nc; c++)
        _mm256_maskstore_ps(yc[c], m, acc[c]);
}

static void gemm_blk32(const rk_panel *p, panel_info info, int n_blk, int64_t b0, int64_t nb,
                       const uint8_t *const xs[GEMM_C], __m256 acc[GEMM_C])
{
    const int min = info.kind == PANEL_BLK32_MIN;
    const size_t ab = min ? 36 : 34;
    const size_t aq = min ? 4 : 2;
    for (int b = 0; b < n_blk; b++) {
        const int64_t ba = b0 + b;
        __m256i isum[GEMM_C];
        for (int c = 0; c < GEMM_C; c++) {
            int32_t init = 0;
            if (info.bias) {
                const int32_t xsum = (int32_t)load_u32(rk_act_q8_0_sums_at(xs[c], nb) + 4 * ba);
                init = -info.bias * xsum;
            }
            isum[c] = _mm256_set1_epi32(init);
        }
        const uint8_t *q = p->q + (size_t)b * 8 * 32;
        for (int g = 0; g < 8; g++) {
            const __m256i wv = _mm256_load_si256((const __m256i *)(const void *)(q + g * 32));
            for (int c = 0; c < GEMM_C; c++) {
                const __m256i xv =
                    _mm256_set1_epi32((int32_t)load_u32(xs[c] + ba * ab + aq + 4 * g));
                isum[c] = info.signed_w ? dot_s8s8(isum[c], wv, xv) : dot_u8s8(isum[c], wv, xv);
            }
        }
        const __m256 dw = _mm256_load_ps(p->d[b]);
        for (int c = 0; c < GEMM_C; c++) {
            const float dx = load_f16(xs[c] + ba * ab);
            const __m256 t = _mm256_mul_ps(dw, _mm256_set1_ps(dx));
            const __m256 fi = _mm256_cvtepi32_ps(isum[c]);
            if (min) {
                const float sx = load_f16(xs[c] + ba * ab + 2);
                const __m256 u =
                    _mm256_add_ps(_mm256_mul_ps(t, fi),
                                  _mm256_mul_ps(_mm256_load_ps(p->m[b]), _mm256_set1_ps(sx)));
                acc[c] = _mm256_add_ps(acc[c], u);
            } else {
                acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(fi, t));
            }
        }
    }
}

static void gemm_kquant(const rk_panel *p, panel_info info, int n_sb, int64_t s0,
                        const uint8_t *const xs[GEMM_C], __m256 acc[GEMM_C])
{
    const int nsub = 256 / info.sub, groups = info.sub / 4;
    for (int s = 0; s < n_sb; s++) {
        const int64_t sa = s0 + s;
        const uint8_t *xq[GEMM_C];
        for (int c = 0; c < GEMM_C; c++)
            xq[c] = xs[c] + sa * 292 + 4;
        __m256i isum[GEMM_C], msum[GEMM_C];
        for (int c = 0; c < GEMM_C; c++) {
            isum[c] = _mm256_setzero_si256();
            msum[c] = _mm256_setzero_si256();
        }
        const uint8_t *q = p->q + (size_t)s * 256 * 8;
        for (int j = 0; j < nsub; j++) {
            __m256i t[GEMM_C];
            for (int c = 0; c < GEMM_C; c++)
                t[c] = _mm256_setzero_si256();
            for (int g = 0; g < groups; g++) {
                const int e = j * info.sub + 4 * g;
                const __m256i wv =
                    _mm256_load_si256((const __m256i *)(const void *)(q + (e / 4) * 32));
                for (int c = 0; c < GEMM_C; c++)
                    t[c] = dot_u8s8(t[c], wv, _mm256_set1_epi32((int32_t)load_u32(xq[c] + e)));
            }
            const __m256i scv = _mm256_load_si256((const __m256i *)(const void *)p->sc[s][j]);
            for (int c = 0; c < GEMM_C; c++)
                isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(t[c], scv));
        }
        for (int i = 0; i < 8; i++) {
            const __m256i mv = _mm256_load_si256((const __m256i *)(const void *)p->mn[s][i]);
            for (int c = 0; c < GEMM_C; c++) {
                const uint8_t *bs = xs[c] + sa * 292 + 260 + 4 * i;
                msum[c] = _mm256_add_epi32(
                    msum[c], _mm256_madd_epi16(mv, _mm256_set1_epi32((int32_t)load_u32(bs))));
            }
        }
        const __m256 dw = _mm256_load_ps(p->d[s]);
        for (int c = 0; c < GEMM_C; c++) {
            const __m256 dx = _mm256_set1_ps(load_f32(xs[c] + sa * 292));
            const __m256 dd = _mm256_mul_ps(dw, dx);
            if (info.kind == PANEL_KQ_MIN) {
                const __m256 dm = _mm256_mul_ps(_mm256_load_ps(p->m[s]), dx);
                const __m256 u = _mm256_sub_ps(_mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum[c])),
                                               _mm256_mul_ps(dm, _mm256_cvtepi32_ps(msum[c])));
                acc[c] = _mm256_add_ps(acc[c], u);
            } else {
                const __m256i it = _mm256_sub_epi32(isum[c], msum[c]);
                acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(dd, _mm256_cvtepi32_ps(it)));
            }
        }
    }
}

static void gemm_quant(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    const panel_info info = panel_info_of(w->type, 0);
    const int kq = info.kind == PANEL_KQ_MIN || info.kind == PANEL_KQ_BIAS;
    const int64_t nb = w->k / 32;
    _Alignas(64) rk_panel panel;
    for (int64_t rt = r0; rt < r1; rt += PANEL_R) {
        const int nr = (int)(r1 - rt < PANEL_R ? r1 - rt : PANEL_R);
        const __m256i m = lane_mask(nr);
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
                __m256 acc[GEMM_C];
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

/* ---- float weights: the 16-lane dot as two 8-lane halves ------------------------------------ */

typedef struct f16x2 {
    __m256 lo, hi; /* lanes 0-7 and 8-15 */
} f16x2;

/* 8 weights at element i (lanes past n are 0; n <= 8). */
static inline __m256 load_w8(rk_type type, const uint8_t *row, int64_t i, int n)
{
    if (n <= 0)
        return _mm256_setzero_ps();
    if (type == RK_TYPE_F32) {
        if (n >= 8)
            return _mm256_loadu_ps((const float *)(const void *)(row + 4 * i));
        return _mm256_maskload_ps((const float *)(const void *)(row + 4 * i), lane_mask(n));
    }
    uint16_t h[8] = {0};
    memcpy(h, row + 2 * i, (size_t)(n >= 8 ? 8 : n) * 2);
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)h);
    if (type == RK_TYPE_F16)
        return _mm256_cvtph_ps(v);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
}

static inline __m256 load_x8(const float *x, int64_t i, int n)
{
    if (n <= 0)
        return _mm256_setzero_ps();
    if (n >= 8)
        return _mm256_loadu_ps(x + i);
    return _mm256_maskload_ps(x + i, lane_mask(n));
}

/* acc = fma(w, x, acc) on lanes [0, n) only */
static inline __m256 fma_n(__m256 w, __m256 x, __m256 acc, int n)
{
    const __m256 f = _mm256_fmadd_ps(w, x, acc);
    if (n >= 8)
        return f;
    return _mm256_blendv_ps(acc, f, _mm256_castsi256_ps(lane_mask(n < 0 ? 0 : n)));
}

static inline float hsum16(f16x2 v)
{
    const __m256 a = _mm256_add_ps(v.lo, v.hi);
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

#define FLOAT_R 2

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
            f16x2 acc[FLOAT_R][GEMM_C];
            for (int r = 0; r < FLOAT_R; r++)
                for (int c = 0; c < GEMM_C; c++)
                    acc[r][c].lo = acc[r][c].hi = _mm256_setzero_ps();
            for (int64_t i = 0; i < k; i += 16) {
                const int n = (int)(k - i >= 16 ? 16 : k - i);
                __m256 xlo[GEMM_C], xhi[GEMM_C];
                for (int c = 0; c < GEMM_C; c++) {
                    xlo[c] = load_x8(xs[c], i, n);
                    xhi[c] = load_x8(xs[c], i + 8, n - 8);
                }
                for (int r = 0; r < FLOAT_R; r++) {
                    const __m256 wlo = load_w8(w->type, rows[r], i, n);
                    const __m256 whi = load_w8(w->type, rows[r], i + 8, n - 8);
                    for (int c = 0; c < GEMM_C; c++) {
                        acc[r][c].lo = fma_n(wlo, xlo[c], acc[r][c].lo, n);
                        acc[r][c].hi = fma_n(whi, xhi[c], acc[r][c].hi, n - 8);
                    }
                }
            }
            for (int c = 0; c < nc; c++)
                for (int r = 0; r < nr; r++)
                    y[(size_t)(c0 + c) * y_stride + (size_t)(rt + r)] = hsum16(acc[r][c]);
        }
    }
}

/* ---- entry points ---------------------------------------------------------------------------- */

static int is_float_type(rk_type t)
{
    return t == RK_TYPE_F32 || t == RK_TYPE_F16 || t == RK_TYPE_BF16;
}

void rk_mm_gemm_avx2(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                     size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    if (is_float_type(w->type))
        gemm_float(w, r0, r1, act, act_stride, n_cols, y, y_stride);
    else
        gemm_quant(w, r0, r1, act, act_stride, n_cols, y, y_stride);
}

void rk_mm_matvec_avx2(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    for (int64_t c = 0; c < n_cols; c++) {
        const uint8_t *x = act + (size_t)c * act_stride;
        float *yc = y + (size_t)c * y_stride;
        if (is_float_type(w->type))
            gemm_float(w, r0, r1, x, act_stride, 1, yc, y_stride);
        else
            gemm_quant(w, r0, r1, x, act_stride, 1, yc, y_stride);
    }
}
